//! Who called which tool, in the logs: with inbound OAuth, every call ends with a `tool call`
//! line naming its caller (and runs in a span naming it, shown at debug level), and every call of a
//! tool that changes Port leaves one `audit` line: who, which tool, which integration, how it
//! ended, and the `x-trace-id` of Port's answer, to find the same call in Port's own logs.
//!
//! Values are Debug-quoted: they come from tokens and arguments, and a newline in one must not
//! forge a log line.
//!
//! [`observe`] wraps every tool call on every path, so it is also where a call gets its
//! OpenTelemetry span (`telemetry::traces`), from what the transport put in [`CallMeta`].

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
    /// What the call's span records (session, request id, protocol, trace parent); filled
    /// only when tracing is on.
    pub trace: crate::telemetry::traces::CallInfo<'a>,
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

/// Runs one tool call's `work`, logged as above, in a span of its own when tracing is on.
/// Without a caller (stdio, static token, no inbound auth) only write calls are logged, as
/// `audit` lines without a subject.
pub async fn observe<T>(
    telemetry: &Telemetry,
    meta: &CallMeta<'_>,
    tool: &str,
    identifier: Option<&str>,
    work: impl Future<Output = T>,
    outcome: impl FnOnce(&T) -> Outcome,
) -> T {
    let Some(traces) = telemetry.traces() else {
        return logged(meta, tool, identifier, work, outcome).await.0;
    };
    let known = catalog::spec(tool).is_some();
    let call = traces.start_call("tools/call", Some(tool), known, &meta.trace);
    // The call's work runs in the span's context: the Port client's spans find their parent.
    let work = opentelemetry::trace::FutureExt::with_context(work, call.context().clone());
    let (out, ended) = logged(meta, tool, identifier, work, outcome).await;
    call.end(ended.error_type().as_deref());
    out
}

/// [`observe`] without the span: the log lines, and how the call ended.
async fn logged<T>(
    meta: &CallMeta<'_>,
    tool: &str,
    identifier: Option<&str>,
    work: impl Future<Output = T>,
    outcome: impl FnOnce(&T) -> Outcome,
) -> (T, Outcome) {
    let caller = meta.caller;
    let writes = catalog::writes(tool);
    if caller.is_none() && !writes {
        let out = work.await;
        let ended = outcome(&out);
        return (out, ended);
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
    (out, ended)
}

/// What rmcp tells of a `tools/call` request for its span, copied out before the request moves
/// into the call (only when tracing is on).
pub struct TraceFields {
    http: bool,
    session_id: Option<String>,
    request_id: String,
    protocol_version: Option<String>,
    meta_traceparent: Option<String>,
    meta_tracestate: Option<String>,
    header_traceparent: Option<String>,
    header_tracestate: Option<String>,
}

impl TraceFields {
    /// The fields of this request: its id, its `_meta` (in the request or as rmcp extracted
    /// it), and on HTTP its headers.
    pub fn of(
        request: &rmcp::model::CallToolRequestParams,
        ctx: &rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Self {
        use crate::telemetry::traces::{MAX_TRACEPARENT_BYTES, MAX_TRACESTATE_BYTES};
        let parts = ctx.extensions.get::<axum::http::request::Parts>();
        let header = |name: &str| {
            parts
                .and_then(|p| p.headers.get(name))
                .and_then(|v| v.to_str().ok())
        };
        // Bounded before they are copied; a longer one would be ignored anyway.
        let bounded = |v: Option<&str>, max: usize| v.filter(|v| v.len() <= max).map(str::to_owned);
        let meta = request.meta.as_ref();
        let traceparent = meta
            .and_then(|m| m.get_traceparent())
            .or_else(|| ctx.meta.get_traceparent());
        let tracestate = meta
            .and_then(|m| m.get_tracestate())
            .or_else(|| ctx.meta.get_tracestate());
        TraceFields {
            http: parts.is_some(),
            session_id: bounded(header("mcp-session-id"), 256),
            request_id: ctx.id.to_string(),
            protocol_version: ctx
                .protocol_version()
                .map(|v| v.as_str().to_owned())
                .or_else(|| bounded(header("mcp-protocol-version"), 64)),
            meta_traceparent: bounded(traceparent, MAX_TRACEPARENT_BYTES),
            meta_tracestate: bounded(tracestate, MAX_TRACESTATE_BYTES),
            header_traceparent: bounded(header("traceparent"), MAX_TRACEPARENT_BYTES),
            header_tracestate: bounded(header("tracestate"), MAX_TRACESTATE_BYTES),
        }
    }

    /// The fields as the span takes them.
    pub fn info(&self) -> crate::telemetry::traces::CallInfo<'_> {
        use crate::telemetry::traces::{CallInfo, Carrier};
        CallInfo {
            transport: Some(if self.http { "tcp" } else { "pipe" }),
            session_id: self.session_id.as_deref(),
            request_id: Some(&self.request_id),
            protocol_version: self.protocol_version.as_deref(),
            meta: Carrier {
                traceparent: self.meta_traceparent.as_deref(),
                tracestate: self.meta_tracestate.as_deref(),
            },
            headers: Carrier {
                traceparent: self.header_traceparent.as_deref(),
                tracestate: self.header_tracestate.as_deref(),
            },
        }
    }
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
