//! What operators see of a running server beyond stderr text: Prometheus metrics
//! ([`metrics`]), OpenTelemetry traces ([`traces`]) and the audit trail of write calls
//! ([`audit`]).
//!
//! One [`Telemetry`] per server, handed down from `run` through the Port client, never global:
//! tests run many servers in one process and read each one's exact counts and spans. It sits
//! beside the layers (`port/`, `tools/` and `transport/` report into it) and reaches into none
//! of them.

pub mod audit;
pub mod logs;
pub mod metrics;
pub mod traces;

use std::sync::Arc;

/// A server's telemetry. Cheap to clone; [`Default`] is everything off (audit lines to stderr).
#[derive(Clone, Default)]
pub struct Telemetry {
    parts: Arc<Parts>,
}

/// What a [`Telemetry`] is made of; each part is built from its settings at start.
#[derive(Default)]
pub struct Parts {
    /// Prometheus metrics, when on.
    pub metrics: Option<metrics::Metrics>,
    /// OpenTelemetry traces, when an exporter is configured.
    pub traces: Option<traces::Traces>,
    /// Where audit lines go.
    pub audit: audit::Sink,
}

impl Telemetry {
    /// Telemetry made of these parts.
    pub fn new(parts: Parts) -> Self {
        Telemetry {
            parts: Arc::new(parts),
        }
    }

    /// The metrics, when on.
    pub fn metrics(&self) -> Option<&metrics::Metrics> {
        self.parts.metrics.as_ref()
    }

    /// The traces, when on.
    pub fn traces(&self) -> Option<&traces::Traces> {
        self.parts.traces.as_ref()
    }

    /// The audit sink.
    pub fn audit(&self) -> &audit::Sink {
        &self.parts.audit
    }
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("metrics", &self.parts.metrics.is_some())
            .field("traces", &self.parts.traces.is_some())
            .finish_non_exhaustive()
    }
}

/// Now, in RFC 3339 UTC to `precision` (the audit line's `time`, the last log line's
/// `timestamp`). chrono is built without its clock, so the system's is read here.
pub(crate) fn now_rfc3339(precision: chrono::SecondsFormat) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(precision, true)
}
