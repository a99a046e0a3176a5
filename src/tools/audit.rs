//! Who called which tool, in the logs: with inbound OAuth, every call ends with a `tool call`
//! line naming its caller (and runs in a span naming it, shown at debug level), and every call of a
//! tool that changes Port leaves one audit line (`telemetry::audit`): who, how admitted, through
//! which transport, which tool, which integration, a digest of the arguments, how it ended, and
//! the status and `x-trace-id` of Port's answer, to find the same call in Port's own logs.
//!
//! The transports say how they admitted a call ([`CallMeta`]). A write call cancelled before it
//! ends still leaves its line, since its request may have reached Port: `cancelled` when the
//! call is dropped (the lean path, a closed connection), `error` when rmcp ends it with its
//! "cancelled" result.
//!
//! Values are plain string fields: the text log format Debug-quotes them and the JSON one
//! escapes them, so a newline in one cannot forge a log line.
//!
//! [`observe`] wraps every tool call on every path, so it is also where a call is timed
//! (`telemetry::metrics`) and gets its OpenTelemetry span (`telemetry::traces`), from what the
//! transport put in [`CallMeta`].

use rmcp::model::JsonObject;
use tracing::Instrument;

use super::catalog;
use crate::oauth::Caller;
use crate::port::trace::PortAnswer;
use crate::telemetry::{
    Telemetry,
    audit::{ArgsDigest, Record},
    traces::ToolName,
};

/// What a transport knows of one call beyond its name and arguments, for its log lines,
/// metrics and spans. Transports fill it from what they saw (HTTP headers, the JSON-RPC
/// message); `tools/` never looks at HTTP itself for it.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallMeta<'a> {
    /// The caller the OAuth gate admitted, if inbound OAuth is on.
    pub caller: Option<&'a Caller>,
    /// How the transport let the call in.
    pub admission: Admission,
    /// Which surface the call came through.
    pub transport: Transport,
    /// For a write call, the digest of its arguments ([`digest`]).
    pub args_digest: Option<ArgsDigest>,
    /// What the call's span records (session, request id, protocol, trace parent); filled
    /// only when tracing is on.
    pub trace: crate::telemetry::traces::CallInfo<'a>,
}

impl CallMeta<'static> {
    /// A call on stdio: let in because whoever launched the process sent it.
    pub fn stdio() -> Self {
        CallMeta {
            admission: Admission::Stdio,
            transport: Transport::Stdio,
            ..Default::default()
        }
    }
}

/// How a transport let a call in, as the audit line's `auth` (and, without OAuth, `caller`)
/// says. On HTTP the inbound-token check marks the request with [`Admission::StaticToken`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Admission {
    /// HTTP without inbound authentication (loopback only, or behind the operator's proxy).
    #[default]
    Unauthenticated,
    /// The HTTP server's static inbound token (`--auth-token`).
    StaticToken,
    /// An OAuth access token (the caller is in [`CallMeta::caller`]).
    OAuth,
    /// The stdio transport: whoever launched the process.
    Stdio,
}

impl Admission {
    /// How an HTTP request was let in: by OAuth when the gate admitted a caller, else as the
    /// inbound-token check `marked` it, else without authentication.
    pub fn of(oauth_caller: bool, marked: Option<Admission>) -> Admission {
        if oauth_caller {
            Admission::OAuth
        } else {
            marked.unwrap_or_default()
        }
    }

    fn auth(self) -> &'static str {
        match self {
            Admission::Unauthenticated => "none",
            Admission::StaticToken => "static token",
            Admission::OAuth => "oauth",
            Admission::Stdio => "stdio",
        }
    }
}

/// The surface a call came through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    /// MCP over streamable HTTP (rmcp or the lean path).
    #[default]
    Http,
    /// MCP over stdin/stdout.
    Stdio,
    /// The REST surface (`--rest-listen`).
    Rest,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Stdio => "stdio",
            Transport::Rest => "rest",
        }
    }

    /// The OpenTelemetry `network.transport` of this surface: `pipe` for stdio, else `tcp`.
    pub fn network(self) -> &'static str {
        match self {
            Transport::Stdio => "pipe",
            Transport::Http | Transport::Rest => "tcp",
        }
    }
}

/// How an HTTP request (or, without one, a stdio message) was let in, and through which
/// transport: rmcp hands tools the request's parts, marked by the transport's checks.
pub fn admission_of(parts: Option<&axum::http::request::Parts>) -> (Admission, Transport) {
    let Some(parts) = parts else {
        return (Admission::Stdio, Transport::Stdio);
    };
    let extensions = &parts.extensions;
    let admission = Admission::of(
        extensions.get::<Caller>().is_some(),
        extensions.get::<Admission>().copied(),
    );
    (admission, Transport::Http)
}

/// The digest of a call's arguments for its audit line; only write calls get one (hashing a
/// read's arguments would be work for nothing).
pub fn digest(tool: &str, arguments: Option<&JsonObject>) -> Option<ArgsDigest> {
    if !catalog::writes(tool) {
        return None;
    }
    Some(match arguments {
        Some(arguments) => ArgsDigest::of(arguments),
        None => ArgsDigest::of(&JsonObject::new()),
    })
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

/// Runs one tool call's `work`, timed, logged as above, and in a span of its own when
/// tracing is on. Without a caller (stdio, static token, no inbound auth) only write calls are
/// logged, as audit lines.
pub async fn observe<T>(
    telemetry: &Telemetry,
    meta: &CallMeta<'_>,
    tool: &str,
    identifier: Option<&str>,
    work: impl Future<Output = T>,
    outcome: impl FnOnce(&T) -> Outcome,
) -> T {
    // Looked up once per call; an unknown tool counts as a write (as in `catalog::writes`).
    let spec = catalog::spec(tool);
    let writes = spec.is_none_or(catalog::ToolSpec::writes);
    let Some(traces) = telemetry.traces() else {
        return logged(telemetry, meta, tool, writes, identifier, work, outcome)
            .await
            .0;
    };
    let name = match spec {
        Some(spec) => ToolName::Known(spec.name),
        None => ToolName::Unknown(tool),
    };
    let call = traces.start_call("tools/call", name, &meta.trace);
    // The call's work runs in the span's context: the Port client's spans find their parent.
    let work = opentelemetry::trace::FutureExt::with_context(work, call.context().clone());
    let (out, ended) = logged(telemetry, meta, tool, writes, identifier, work, outcome).await;
    call.end(ended.error_type().as_deref());
    out
}

/// [`observe`] without the span: the log lines (an audit line when the tool `writes`), and how
/// the call ended.
async fn logged<T>(
    telemetry: &Telemetry,
    meta: &CallMeta<'_>,
    tool: &str,
    writes: bool,
    identifier: Option<&str>,
    work: impl Future<Output = T>,
    outcome: impl FnOnce(&T) -> Outcome,
) -> (T, Outcome) {
    let caller = meta.caller;
    // Metrics: every call is timed, on all three paths.
    let started = std::time::Instant::now();
    let metered = |ended: Outcome| {
        if let Some(m) = telemetry.metrics() {
            m.tool_call(tool, started, ended.error_type().as_deref());
        }
    };
    if caller.is_none() && !writes {
        let out = work.await;
        let ended = outcome(&out);
        metered(ended);
        return (out, ended);
    }
    // A span only at debug level: at info, formatting one per call cost more throughput than
    // checking the token (`cargo bench`, OAuth rows); the closing line names the caller anyway.
    let span = tracing::debug_span!(
        "call",
        tool = tool,
        sub = subject(caller),
        client_id = client_id(caller),
    );
    // Port's answer is only wanted for the audit line of a write.
    let (out, port) = if writes {
        let unfinished = Unfinished {
            telemetry,
            meta,
            tool,
            identifier,
        };
        let recorded = crate::port::trace::recording(work.instrument(span)).await;
        std::mem::forget(unfinished);
        recorded
    } else {
        (work.instrument(span).await, None)
    };
    let ended = outcome(&out);
    metered(ended);
    if caller.is_some() {
        tracing::info!(
            tool = tool,
            sub = subject(caller),
            client_id = client_id(caller),
            outcome = ended.as_str(),
            "tool call"
        );
    }
    if writes {
        let line = line(meta, tool, identifier, ended.as_str(), port.as_ref());
        telemetry.audit().write(&line).await;
    }
    (out, ended)
}

/// Runs one MCP request other than `tools/call` (`initialize`, `tools/list`, `prompts/get`, ...),
/// timed by method and in a span of its own when tracing is on, like a tool call in [`observe`].
pub async fn observe_request<T>(
    telemetry: &Telemetry,
    method: &'static str,
    ctx: &rmcp::service::RequestContext<rmcp::RoleServer>,
    work: impl Future<Output = Result<T, rmcp::ErrorData>>,
) -> Result<T, rmcp::ErrorData> {
    let (metrics, traces) = (telemetry.metrics(), telemetry.traces());
    if metrics.is_none() && traces.is_none() {
        return work.await;
    }
    let started = std::time::Instant::now();
    let call = traces.map(|t| {
        let fields = TraceFields::with_meta(None, ctx);
        t.start_call(method, ToolName::None, &fields.info())
    });
    let out = match &call {
        Some(call) => {
            opentelemetry::trace::FutureExt::with_context(work, call.context().clone()).await
        }
        None => work.await,
    };
    let error_type = out
        .as_ref()
        .err()
        .map(|e| Outcome::Rpc(e.code.0).error_type());
    let error_type = error_type.flatten();
    if let Some(m) = metrics {
        let seconds = started.elapsed().as_secs_f64();
        m.operation(method, None, error_type.as_deref(), seconds);
    }
    if let Some(call) = call {
        call.end(error_type.as_deref());
    }
    out
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
        Self::with_meta(request.meta.as_ref(), ctx)
    }

    /// The fields of a request whose `_meta` (if rmcp left it in the parameters) is `meta`.
    pub fn with_meta(
        meta: Option<&rmcp::model::RequestMetaObject>,
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

/// A write call under way: dropped before it ends (the client cancelled it, or went away), it
/// leaves a `cancelled` audit line, since its request may already have reached Port.
struct Unfinished<'a> {
    telemetry: &'a Telemetry,
    meta: &'a CallMeta<'a>,
    tool: &'a str,
    identifier: Option<&'a str>,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        let line = line(self.meta, self.tool, self.identifier, "cancelled", None);
        self.telemetry.audit().write_detached(&line);
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

/// Records one write call refused before it ran (not allowed for this caller); its line is
/// written (on disk, with `--audit-log`) when this returns.
pub async fn refused(
    telemetry: &Telemetry,
    meta: &CallMeta<'_>,
    tool: &str,
    identifier: Option<&str>,
) {
    let line = line(meta, tool, identifier, Outcome::Refused.as_str(), None);
    telemetry.audit().write(&line).await;
}

/// The audit line of one write call.
fn line<'a>(
    meta: &CallMeta<'a>,
    tool: &'a str,
    identifier: Option<&'a str>,
    outcome: &'a str,
    port: Option<&'a PortAnswer>,
) -> Record<'a> {
    let sub = meta.caller.and_then(|c| c.subject.as_deref());
    let admission = if meta.caller.is_some() {
        Admission::OAuth
    } else {
        meta.admission
    };
    let caller = match admission {
        Admission::OAuth => sub.unwrap_or("oauth token without sub"),
        Admission::StaticToken => "static token",
        Admission::Stdio => "stdio",
        Admission::Unauthenticated => "unauthenticated",
    };
    Record {
        caller,
        auth: admission.auth(),
        sub,
        client_id: meta.caller.and_then(|c| c.client_id.as_deref()),
        transport: meta.transport.as_str(),
        tool,
        identifier,
        args_sha256: meta.args_digest,
        outcome,
        port_status: port.map(|p| p.status),
        port_trace_id: port.and_then(|p| p.trace_id.as_deref()),
    }
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
