//! The one place where outcomes become what the model sees.
//!
//! Success passes Port's body through unchanged (as text, and parsed as structuredContent);
//! the client has already checked it and masked any credential in it (`port::redact`).
//! Every failure becomes a tool result with `isError: true` whose text says what happened, what
//! Port said, the trace id Port support asks for, and what to do next; the same facts are also
//! given as structuredContent for programs. Protocol errors are left to rmcp for unknown tools
//! and malformed requests.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value, json};

use super::args::ArgError;
use crate::port::{ApiFailure, PortError, PortResponse};

/// A successful Port answer as a tool result.
pub fn success(response: PortResponse) -> CallToolResult {
    let PortResponse {
        status, text, json, ..
    } = response;
    if text.trim().is_empty() {
        return CallToolResult::success(vec![ContentBlock::text(format!(
            "Port answered HTTP {status} with an empty body."
        ))]);
    }
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    // structuredContent must be an object; Port's bodies are, but do not assume it. Very large
    // bodies come as text only (`json` is None): the same JSON, without a second, tree-shaped
    // copy that would cost many times the body's size in memory.
    if let Some(json @ serde_json::Value::Object(_)) = json {
        result.structured_content = Some(json);
    }
    result
}

/// Arguments refused before anything was sent.
pub fn invalid_arguments(error: &ArgError) -> CallToolResult {
    let text = format!(
        "Invalid argument `{}`: {}. Nothing was sent to Port.",
        error.argument, error.message
    );
    error_result(
        text,
        json!({
            "error": "invalid_argument",
            "argument": error.argument,
            "message": error.message,
        }),
    )
}

/// A mapping with jq expressions that Port's framework would refuse: nothing was sent.
pub fn mapping_refused(findings: &[crate::mapping::Finding]) -> CallToolResult {
    let refused: Vec<&crate::mapping::Finding> =
        findings.iter().filter(|f| f.outcome == "refused").collect();
    let mut text = format!(
        "The mapping has {} jq expression(s) that Port's integration framework would refuse, so \
         nothing was sent to Port (no resync was started):",
        refused.len()
    );
    for f in &refused {
        text.push_str(&format!(
            "\n- resources[{}] (kind `{}`) {}: {} (expression: {})",
            f.resource, f.kind, f.field, f.message, f.expression
        ));
    }
    text.push_str("\nFix the expressions and send the update again.");
    error_result(
        text,
        json!({"error": "invalid_mapping", "findings": refused}),
    )
}

/// jq work that could not be done within its limits (busy, too slow, too big): nothing was sent.
pub fn jq_unavailable(message: &str) -> CallToolResult {
    error_result(
        format!("{message}. Nothing was sent to Port."),
        json!({"error": "jq_limit", "message": message}),
    )
}

/// Adds a note about expressions the local check could not fully verify.
pub fn add_mapping_notes(result: &mut CallToolResult, findings: &[crate::mapping::Finding]) {
    for f in findings.iter().filter(|f| f.outcome == "unchecked") {
        result.content.push(ContentBlock::text(format!(
            "Note: resources[{}] (kind `{}`) {} {}.",
            f.resource, f.kind, f.field, f.message
        )));
    }
}

/// The call was cancelled by the client before Port answered.
pub fn cancelled() -> CallToolResult {
    error_result(
        "Cancelled by the client; the request to Port was abandoned.".into(),
        json!({"error": "cancelled"}),
    )
}

/// The server is shutting down and takes no new calls.
pub fn shutting_down() -> CallToolResult {
    error_result(
        "The server is shutting down and takes no new calls; nothing was sent to Port. Retry in \
         a moment (another replica, or this server once restarted, will answer)."
            .into(),
        json!({"error": "shutting_down"}),
    )
}

/// The server shut down before the call finished: its grace period ran out.
pub fn ended_by_shutdown() -> CallToolResult {
    error_result(
        "The server shut down before this call finished (its shutdown grace period ran out). A \
         request to Port may have been sent: check before retrying a change."
            .into(),
        json!({"error": "shutting_down"}),
    )
}

/// A confirmation the person declined or cancelled: nothing was deleted.
pub fn not_confirmed(identifier: &str, answer: &str) -> CallToolResult {
    error_result(
        format!(
            "Nothing was deleted: the user {answer} the deletion of integration `{identifier}`. \
             Do not retry unless the user asks again."
        ),
        json!({"error": "not_confirmed", "answer": answer, "identifier": identifier, "deleted": false}),
    )
}

/// A confirmation the person declined or cancelled: the mapping was not restored.
pub fn restore_not_confirmed(identifier: &str, answer: &str) -> CallToolResult {
    error_result(
        format!(
            "Nothing was restored: the user {answer} restoring the mapping of integration \
             `{identifier}`. Do not retry unless the user asks again."
        ),
        json!({"error": "not_confirmed", "answer": answer, "identifier": identifier, "restored": false}),
    )
}

/// `--max-tasks` tasks are already running: this one was not started.
pub fn tasks_busy(max: usize) -> CallToolResult {
    error_result(
        format!(
            "The server is already running as many tasks as it allows ({max}; --max-tasks / \
             PORT_MCP_MAX_TASKS), or keeps as many recent ones as it may; nothing was sent to \
             Port. Wait for a running task to finish (tasks/get) or cancel one (tasks/cancel), \
             then retry."
        ),
        json!({"error": "busy", "setting": "--max-tasks", "maxTasks": max}),
    )
}

/// Port answered, but not with what the tool needs (e.g. an integration without `_id`).
pub fn unexpected_answer(message: &str) -> CallToolResult {
    error_result(
        format!("{message}. Nothing more was sent to Port."),
        json!({"error": "unexpected_answer", "message": message}),
    )
}

/// A failed Port call as a tool result.
pub fn port_failure(error: &PortError) -> CallToolResult {
    let (text, structured) = describe(error);
    error_result(text, structured)
}

/// A failed Port call as a tool result, with `hint` in place of the usual one when Port
/// answered with an error status (the route's own meaning of that status).
pub fn port_failure_with_hint(error: &PortError, hint: &str) -> CallToolResult {
    let (text, structured) = match error {
        PortError::Api(f) => api_failure(f, hint.to_string()),
        other => describe(other),
    };
    error_result(text, structured)
}

/// A successful answer of the server's own making: `text` for the model, `structured` for
/// programs.
pub(crate) fn success_result(text: String, structured: Value) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    result
}

/// A failure of the server's own making (`isError: true`): `text` for the model, `structured`
/// for programs.
pub(crate) fn error_result(text: String, structured: Value) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    result
}

/// A failed Port call as text and as structured facts (status, code, message, trace id, hint).
pub(crate) fn describe(error: &PortError) -> (String, Value) {
    match error {
        PortError::NoCredentials => (
            format!("{error}."),
            json!({"error": "no_credentials", "hint": "set PORT_API_KEY, or PORT_CLIENT_ID and PORT_CLIENT_SECRET"}),
        ),
        PortError::Api(f) => api_failure(f, hint_for(f)),
        PortError::TokenExchange(f) => api_failure(
            f,
            "Port refused PORT_CLIENT_ID/PORT_CLIENT_SECRET when exchanging them for an access \
             token. Check the credentials, and that --region / PORT_REGION (eu or us) is the \
             region of the Port organization they belong to."
                .into(),
        ),
        PortError::Unreachable { origin, detail } => (
            format!(
                "Could not reach Port at {origin}: {detail}. Nothing was processed. Check network \
                 access and the region (--region / PORT_REGION) or PORT_BASE_URL; retrying later may help."
            ),
            json!({"error": "unreachable", "origin": origin, "message": detail}),
        ),
        PortError::ConnectionLost { origin, detail } => (
            format!(
                "The connection to Port at {origin} broke after the request was sent: {detail}. \
                 A read can simply be retried; an update or delete may or may not have been \
                 applied, so check with get-integration before repeating it."
            ),
            json!({"error": "connection_lost", "origin": origin, "message": detail}),
        ),
        PortError::Timeout { after } => (
            format!(
                "Port did not answer within {} s (the call's time budget is \
                 --budget-secs / PORT_CALL_BUDGET_SECS). A read can simply be retried; an update or \
                 delete may or may not have been applied, so check with get-integration before \
                 repeating it.",
                after.as_secs()
            ),
            json!({"error": "timeout", "afterSeconds": after.as_secs()}),
        ),
        PortError::Busy { waited } => (
            format!(
                "{error}. Nothing was sent to Port. The server bounds the calls in flight to Port \
                 (--max-in-flight / PORT_MAX_IN_FLIGHT) so a burst does not turn into rate \
                 limiting, and starts a request only with at least --min-request-budget-ms / \
                 PORT_MIN_REQUEST_BUDGET_MS of the call's budget left; retry shortly, or make \
                 fewer calls at once."
            ),
            json!({"error": "busy", "waitedSeconds": waited.as_secs()}),
        ),
        PortError::ResponseTooLarge { limit } => (
            format!(
                "{error}. Narrow the request (e.g. a smaller `limit` for event logs), or raise \
                 --max-response-bytes / PORT_MAX_RESPONSE_BYTES."
            ),
            json!({"error": "response_too_large", "limitBytes": limit}),
        ),
        PortError::NoCallerToken => (
            format!("{error}."),
            json!({"error": "no_caller_token", "hint": "send Authorization: Bearer <Port access token>"}),
        ),
        PortError::Redirected { status, location } => (
            format!(
                "{error}. Nothing was processed. Check PORT_BASE_URL / --region: it should name \
                 Port's API origin itself (https, no proxy that redirects)."
            ),
            json!({"error": "redirected", "status": status, "location": location}),
        ),
        PortError::InvalidBody { status, detail } => (
            format!("Port answered HTTP {status} with a body that is not JSON ({detail})."),
            json!({"error": "invalid_response", "status": status, "message": detail}),
        ),
    }
}

fn api_failure(f: &ApiFailure, hint: String) -> (String, Value) {
    let mut text = format!("Port answered HTTP {}", f.status);
    if let Some(code) = &f.code {
        text.push_str(&format!(" ({code})"));
    }
    match &f.message {
        Some(m) => text.push_str(&format!(": {m}")),
        None => text.push('.'),
    }
    if let Some(trace) = &f.trace_id {
        text.push_str(&format!(" [x-trace-id: {trace}]"));
    }
    text.push_str(&format!("\nHint: {hint}"));
    let mut obj = Map::new();
    obj.insert("status".into(), json!(f.status));
    obj.insert("error".into(), json!(f.code));
    obj.insert("message".into(), json!(f.message));
    obj.insert("traceId".into(), json!(f.trace_id));
    if let Some(secs) = f.retry_after {
        obj.insert("retryAfterSeconds".into(), json!(secs));
    }
    obj.insert("hint".into(), json!(hint));
    if let Some(body) = &f.body {
        obj.insert("body".into(), body.clone());
    }
    (text, Value::Object(obj))
}

fn hint_for(f: &ApiFailure) -> String {
    match f.status {
        401 => "Port rejected the credentials or the access token expired. A PORT_API_KEY token \
                lasts about 3 hours: issue a new one, or use PORT_CLIENT_ID/PORT_CLIENT_SECRET, \
                which the server refreshes by itself."
            .into(),
        403 => "The credentials lack the role this route needs (reading integrations and their \
                logs needs the moderator or admin role; only get-all-integrations-meta-data works \
                for members), or this machine's IP is not on the organization's allow-list."
            .into(),
        404 => "No integration has that identifier. Call get-all-integrations (or \
                get-all-integrations-meta-data) to find the right identifier."
            .into(),
        413 => "The request body is over Port's 1 MiB limit; send a smaller config.".into(),
        422 => "The body does not match the route's schema: compare its field names and types \
                with the tool's input schema (update-integration-s-config takes exactly {config})."
            .into(),
        429 => match f.retry_after {
            Some(secs) => format!(
                "Port rate limited, retry after {secs} s. Port limits calls per organization; \
                 make fewer calls at once."
            ),
            None => "Port rate limited, retry after a few seconds. Port limits calls per \
                     organization; make fewer calls at once."
                .into(),
        },
        500..=599 => "Port failed to process the call. Retrying later may help; if it persists, \
                      give the x-trace-id to Port support."
            .into(),
        200..=299 => "Port reported the call as failed (ok: false); see the message.".into(),
        _ => "See Port's message; the x-trace-id identifies the call for Port support.".into(),
    }
}
