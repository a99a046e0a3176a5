//! When a failed call to Port may be tried again, and how long to wait first.
//!
//! Reads (GET) and DELETE are idempotent: they are retried on 408, 429, 502, 503, 504 and on
//! transport failures. A PATCH is different: Port starts a resync for every PATCH it processes,
//! so a duplicate doubles the resync. A PATCH is therefore retried only when Port provably did
//! not act on it: a 429 (refused before processing) or a connection that was never made. A POST
//! (resync, restore) starts a run in the same way and follows the same rule.
//! Waits grow exponentially with full jitter, never below what Port asked for (`Retry-After`,
//! or `x-ratelimit-reset` on a 429 or a used-up rate window), and never past the call's
//! budget: a wait that would overrun it, or leave less than `--min-request-budget-ms` for the
//! next request, is not slept through; the failure is returned at once so the model can decide.

use std::time::Duration;

use super::request::Method;

/// What happened on one attempt, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Port answered with this status.
    Status(u16),
    /// The connection could not be established: the request never left.
    ConnectFailed,
    /// The connection broke or timed out after the request may have been sent.
    TransportFailed,
}

impl Attempt {
    /// Why an attempt is retried, as `port_request_retries_total{cause}` names it.
    pub fn cause(self) -> &'static str {
        match self {
            Attempt::Status(429) => "rate_limited",
            Attempt::Status(408) => "408",
            Attempt::Status(502) => "502",
            Attempt::Status(503) => "503",
            Attempt::Status(504) => "504",
            Attempt::Status(_) => "status",
            Attempt::ConnectFailed => "connect",
            Attempt::TransportFailed => "transport",
        }
    }
}

/// The retry rules.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff step.
    pub base_delay: Duration,
    /// Largest backoff step (before a server-requested wait).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Whether this outcome of this method may be retried at all.
    pub fn retryable(method: Method, attempt: Attempt) -> bool {
        match (method, attempt) {
            (_, Attempt::ConnectFailed) => true,
            (_, Attempt::Status(429)) => true,
            (Method::Patch | Method::Post, _) => false,
            (_, Attempt::Status(s)) => matches!(s, 408 | 502 | 503 | 504),
            (_, Attempt::TransportFailed) => true,
        }
    }

    /// The wait before attempt number `attempt + 1` (`attempt` counts from 1), given the wait
    /// Port asked for, if any. `jitter` is a number in [0, 1).
    pub fn delay(&self, attempt: u32, requested: Option<Duration>, jitter: f64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        let jittered = exp.mul_f64(jitter.clamp(0.0, 1.0));
        match requested {
            Some(r) => r.max(jittered),
            None => jittered.max(Duration::from_millis(10)),
        }
    }
}

/// A number in [0, 1) for jitter; quality does not matter, only that replicas spread out.
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_is_retried_only_when_port_did_not_process_it() {
        use Attempt::*;
        for (attempt, get, patch) in [
            (Status(429), true, true),
            (ConnectFailed, true, true),
            (Status(408), true, false),
            (Status(502), true, false),
            (Status(503), true, false),
            (Status(504), true, false),
            (TransportFailed, true, false),
            (Status(500), false, false),
            (Status(404), false, false),
            (Status(401), false, false),
        ] {
            assert_eq!(
                RetryPolicy::retryable(Method::Get, attempt),
                get,
                "{attempt:?}"
            );
            assert_eq!(
                RetryPolicy::retryable(Method::Delete, attempt),
                get,
                "{attempt:?}"
            );
            assert_eq!(
                RetryPolicy::retryable(Method::Patch, attempt),
                patch,
                "{attempt:?}"
            );
            assert_eq!(
                RetryPolicy::retryable(Method::Post, attempt),
                patch,
                "{attempt:?}"
            );
        }
    }

    #[test]
    fn delays_grow_are_capped_and_honour_the_server() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(1, None, 0.999_999),
            Duration::from_millis(200).mul_f64(0.999_999)
        );
        assert_eq!(p.delay(3, None, 0.5), Duration::from_millis(400));
        assert_eq!(p.delay(30, None, 0.5), Duration::from_millis(2500));
        assert_eq!(p.delay(1, None, 0.0), Duration::from_millis(10));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7)), 0.5),
            Duration::from_secs(7)
        );
        let j = jitter();
        assert!((0.0..1.0).contains(&j));
    }
}
