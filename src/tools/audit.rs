//! Who called which tool, in the logs: with inbound OAuth, every call ends with a `tool call`
//! line naming its caller (and runs in a span naming it, shown at debug level), and every call of a
//! tool that changes Port leaves one `audit` line: who, which tool, which integration, how it
//! ended, and the `x-trace-id` of Port's answer, to find the same call in Port's own logs.
//!
//! Values are Debug-quoted: they come from tokens and arguments, and a newline in one must not
//! forge a log line.

use rmcp::model::JsonObject;
use tracing::Instrument;

use super::catalog;
use crate::oauth::Caller;
use crate::telemetry::Telemetry;

/// What a transport knows of one call beyond its name and arguments, for its log lines,
/// metrics and spans. Transports fill it from what they saw (HTTP headers, the JSON-RPC
/// message); `tools/` never looks at HTTP itself for it.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallMeta<'a> {
    /// The caller the OAuth gate admitted, if inbound OAuth is on.
    pub caller: Option<&'a Caller>,
}

/// How a call ended, as the audit line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done (Port accepted it).
    Ok,
    /// Ended with an error result (Port refused, or the arguments were invalid).
    Error,
    /// Refused before any work: not allowed for this caller.
    Refused,
    /// Started as a task that goes on after the call returns.
    Task,
    /// Answered with a JSON-RPC error of this code (unknown tool, invalid parameters).
    Rpc(i32),
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Refused => "refused",
            Outcome::Task => "task",
            Outcome::Rpc(_) => "error",
        }
    }

    /// The OpenTelemetry `error.type` of a call that ended this way (semantic conventions for
    /// MCP): the JSON-RPC error code, `tool_error` for a result with `isError`, none on success.
    pub fn error_type(self) -> Option<std::borrow::Cow<'static, str>> {
        match self {
            Outcome::Ok | Outcome::Task => None,
            Outcome::Error => Some("tool_error".into()),
            // Refused for this caller: answered with an error result or HTTP 403.
            Outcome::Refused => Some("forbidden".into()),
            Outcome::Rpc(code) => Some(code.to_string().into()),
        }
    }
}

/// Runs one tool call's `work`, logged as above. Without a caller (stdio, static token, no
/// inbound auth) only write calls are logged, as `audit` lines without a subject.
pub async fn observe<T>(
    telemetry: &Telemetry,
    meta: &CallMeta<'_>,
    tool: &str,
    identifier: Option<&str>,
    work: impl Future<Output = T>,
    outcome: impl FnOnce(&T) -> Outcome,
) -> T {
    let caller = meta.caller;
    let writes = catalog::writes(tool);
    // Metrics: every call is timed, on all three paths.
    let started = std::time::Instant::now();
    let metered = |ended: Outcome| {
        if let Some(m) = telemetry.metrics() {
            m.tool_call(tool, started, ended.error_type().as_deref());
        }
    };
    if caller.is_none() && !writes {
        let out = work.await;
        metered(outcome(&out));
        return out;
    }
    // A span only at debug level: at info, formatting one per call cost more throughput than
    // checking the token (`cargo bench`, OAuth rows); the closing line names the caller anyway.
    let span = tracing::debug_span!(
        "call",
        tool = ?tool,
        sub = ?subject(caller),
        client_id = ?client_id(caller),
    );
    // Port's trace id is only wanted for the audit line of a write.
    let (out, trace) = if writes {
        crate::port::trace::recording(work.instrument(span)).await
    } else {
        (work.instrument(span).await, None)
    };
    let ended = outcome(&out);
    metered(ended);
    if caller.is_some() {
        tracing::info!(
            tool = ?tool,
            sub = ?subject(caller),
            client_id = ?client_id(caller),
            outcome = ended.as_str(),
            "tool call"
        );
    }
    if writes {
        record(caller, tool, identifier, ended, trace.as_deref());
    }
    out
}

/// How an MCP answer ended.
pub fn outcome_of(answer: &Result<rmcp::model::CallToolResponse, rmcp::ErrorData>) -> Outcome {
    use rmcp::model::CallToolResponse;
    match answer {
        Ok(CallToolResponse::Complete(r)) => outcome_of_result(r),
        Ok(CallToolResponse::Task(_)) => Outcome::Task,
        Ok(_) => Outcome::Ok,
        Err(e) => Outcome::Rpc(e.code.0),
    }
}

/// How a tool result ended.
pub fn outcome_of_result(result: &rmcp::model::CallToolResult) -> Outcome {
    if result.is_error == Some(true) {
        Outcome::Error
    } else {
        Outcome::Ok
    }
}

/// The audit line of one write call.
pub fn record(
    caller: Option<&Caller>,
    tool: &str,
    identifier: Option<&str>,
    outcome: Outcome,
    port_trace_id: Option<&str>,
) {
    let identifier: String = identifier.unwrap_or("").chars().take(256).collect();
    tracing::info!(
        target: "audit",
        sub = ?subject(caller),
        client_id = ?client_id(caller),
        tool = ?tool.chars().take(64).collect::<String>(),
        identifier = ?identifier,
        outcome = ?outcome.as_str(),
        port_trace_id = ?port_trace_id.unwrap_or(""),
        "write call"
    );
}

/// The integration a call's arguments name (`identifier`), for its audit line.
pub fn identifier(arguments: Option<&JsonObject>) -> Option<&str> {
    arguments?.get("identifier")?.as_str()
}

fn subject(caller: Option<&Caller>) -> &str {
    caller.and_then(|c| c.subject.as_deref()).unwrap_or("")
}

fn client_id(caller: Option<&Caller>) -> &str {
    caller.and_then(|c| c.client_id.as_deref()).unwrap_or("")
}

/// The caller of an HTTP request, as the OAuth gate admitted it.
pub fn caller_of(parts: Option<&axum::http::request::Parts>) -> Option<&Caller> {
    parts.and_then(|p| p.extensions.get::<Caller>())
}
