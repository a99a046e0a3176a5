//! What can go wrong between us and Port, as data.
//!
//! Errors carry what the model needs to act (status, Port's own code and message, the
//! `x-trace-id` Port support asks for) and never a credential: tokens and secrets are not
//! part of any variant. Turning these into tool results happens in one place,
//! `tools::result`.

use std::time::Duration;

/// A failed call to Port.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum PortError {
    /// No credentials were configured.
    #[error(
        "no Port credentials are configured: set PORT_API_KEY (an access token), or \
         PORT_CLIENT_ID and PORT_CLIENT_SECRET (exchanged for a token), then restart the server"
    )]
    NoCredentials,

    /// Port answered with a non-2xx status, or a 2xx body with `ok: false`.
    #[error("Port answered HTTP {}", .0.status)]
    Api(Box<ApiFailure>),

    /// The client-credentials exchange was refused.
    #[error("Port refused the client credentials (HTTP {})", .0.status)]
    TokenExchange(Box<ApiFailure>),

    /// Port could not be reached (DNS, connect, TLS, connection reset).
    #[error("could not reach Port at {origin}: {detail}")]
    Unreachable {
        /// The API origin called.
        origin: String,
        /// The transport's description of the failure.
        detail: String,
    },

    /// The connection broke after the request may have reached Port: unlike
    /// [`PortError::Unreachable`], Port may have acted on it.
    #[error("the connection to Port at {origin} broke after the request was sent: {detail}")]
    ConnectionLost {
        /// The API origin called.
        origin: String,
        /// The transport's description of the failure.
        detail: String,
    },

    /// Port did not answer in time.
    #[error("Port did not answer within {} s", .after.as_secs())]
    Timeout {
        /// The limit that ran out.
        after: Duration,
    },

    /// Too many calls were already waiting for Port; this one could not start while enough of
    /// its budget was left (`--min-request-budget-ms`), so nothing was sent.
    #[error(
        "too many calls to Port are in flight; this one waited {} s and did not start, as too \
         little of its time budget was left for a request (--min-request-budget-ms)",
        .waited.as_secs()
    )]
    Busy {
        /// How long it waited for a slot.
        waited: Duration,
    },

    /// Port's answer was larger than the configured cap.
    #[error("Port's answer is larger than the {limit}-byte cap (--max-response-bytes)")]
    ResponseTooLarge {
        /// The cap in bytes.
        limit: usize,
    },

    /// The call was made without credentials in token-passthrough mode.
    #[error(
        "this server forwards each caller's own Port token (--token-passthrough), and the \
         request carried none: send `Authorization: Bearer <Port access token>`"
    )]
    NoCallerToken,

    /// Port (or something in between) answered with a redirect, which is never followed: it
    /// would send the request, and its credentials, to wherever the answer points.
    #[error(
        "Port answered HTTP {status} (a redirect{}); redirects are not followed, so that \
         credentials go only to the configured Port API origin",
        .location.as_deref().map(|l| format!(" to {l}")).unwrap_or_default()
    )]
    Redirected {
        /// HTTP status (3xx).
        status: u16,
        /// Where it pointed, without userinfo or query.
        location: Option<String>,
    },

    /// Port answered 2xx with a body that is not JSON.
    #[error("Port answered HTTP {status} with a body that is not JSON: {detail}")]
    InvalidBody {
        /// HTTP status.
        status: u16,
        /// The parser's message.
        detail: String,
    },
}

/// Port's side of a failed call: what it said and how to find it in Port's logs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApiFailure {
    /// HTTP status.
    pub status: u16,
    /// Port's `error` code (the string, or `name` of the object form).
    pub code: Option<String>,
    /// Port's `message` (top level, or inside the object form of `error`).
    pub message: Option<String>,
    /// The `x-trace-id` response header.
    pub trace_id: Option<String>,
    /// Seconds to wait before retrying: Port's `Retry-After`, or `x-ratelimit-reset` when the
    /// answer is a 429 or the rate window is used up (Port sends that header on every answer).
    pub retry_after: Option<u64>,
    /// The body as Port sent it, when it was JSON.
    pub body: Option<serde_json::Value>,
}

impl ApiFailure {
    /// Reads Port's error body, which comes as `{ok:false, error:"code", message}` or, on newer
    /// routes, with `error` as an object `{name, message, details}`.
    pub fn from_body(status: u16, body: Option<serde_json::Value>) -> Self {
        let mut failure = ApiFailure {
            status,
            ..Default::default()
        };
        if let Some(obj) = body.as_ref().and_then(|b| b.as_object()) {
            match obj.get("error") {
                Some(serde_json::Value::String(code)) => failure.code = Some(code.clone()),
                Some(serde_json::Value::Object(e)) => {
                    failure.code = e
                        .get("name")
                        .or_else(|| e.get("code"))
                        .and_then(|v| v.as_str())
                        .map(str::to_string);
                    failure.message = e
                        .get("message")
                        .and_then(|v| v.as_str())
                        .map(str::to_string);
                }
                _ => {}
            }
            if let Some(m) = obj.get("message").and_then(|v| v.as_str()) {
                failure.message = Some(m.to_string());
            }
        }
        failure.body = body;
        failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_string_and_object_error_forms() {
        let f = ApiFailure::from_body(
            404,
            Some(json!({"ok": false, "error": "not_found", "message": "gone"})),
        );
        assert_eq!(f.code.as_deref(), Some("not_found"));
        assert_eq!(f.message.as_deref(), Some("gone"));
        let f = ApiFailure::from_body(
            409,
            Some(
                json!({"ok": false, "error": {"name": "resync_stale", "message": "stale", "details": {}}}),
            ),
        );
        assert_eq!(f.code.as_deref(), Some("resync_stale"));
        assert_eq!(f.message.as_deref(), Some("stale"));
        let f = ApiFailure::from_body(502, None);
        assert_eq!((f.code, f.message), (None, None));
    }
}
