//! Label values from fixed sets: a value from outside (a client's method or tool name, an error
//! code, a Port status) is mapped onto one of a few `&'static str`s, so it can neither add a
//! series nor show up in a scrape.

/// What any value outside a fixed set becomes (OpenTelemetry's name for "another value").
pub const OTHER: &str = "_OTHER";

/// The MCP methods a server answers.
const METHODS: [&str; 16] = [
    "completion/complete",
    "initialize",
    "ping",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "server/discover",
    "tasks/cancel",
    "tasks/get",
    "tasks/list",
    "tasks/update",
    "tools/call",
    "tools/list",
    "logging/setLevel",
];

/// `error.type` values: the ones `tools::audit::Outcome` gives, and JSON-RPC's codes.
const ERROR_TYPES: [&str; 11] = [
    "tool_error",
    "forbidden",
    "-32700",
    "-32600",
    "-32601",
    "-32602",
    "-32603",
    "-32000",
    "-32001",
    "-32002",
    "-32042",
];

/// `method` if it is an MCP method, else [`OTHER`].
pub fn method(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or(OTHER)
}

/// `error_type` if it is a known one, else [`OTHER`].
pub fn error_type(error_type: &str) -> &'static str {
    ERROR_TYPES
        .iter()
        .find(|e| **e == error_type)
        .copied()
        .unwrap_or(OTHER)
}

/// `2xx` ... `5xx` for Port's status; `error` when there was no answer.
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        None => "error",
        Some(100..=199) => "1xx",
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) => OTHER,
    }
}

/// A duration a histogram can take: not negative, not NaN, finite.
pub fn seconds(seconds: f64) -> f64 {
    if seconds.is_finite() && seconds > 0.0 {
        seconds
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_outside_the_sets_are_other() {
        assert_eq!(method("tools/call"), "tools/call");
        assert_eq!(method("tools/call\n"), OTHER);
        assert_eq!(error_type("-32602"), "-32602");
        assert_eq!(error_type("-1"), OTHER);
        assert_eq!(status_class(Some(503)), "5xx");
        assert_eq!(status_class(Some(999)), OTHER);
        assert_eq!(status_class(None), "error");
        assert_eq!(seconds(-1.0), 0.0);
        assert_eq!(seconds(f64::NAN), 0.0);
        assert_eq!(seconds(f64::INFINITY), 0.0);
    }
}
