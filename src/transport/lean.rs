//! A lean path for the hot request of both transports: one `tools/call` of a tool that only
//! forwards to Port. On HTTP it is middleware in front of rmcp's service ([`serve`]); on stdio
//! the reader thread hands it such calls (`LeanCall`, see `stdio.rs`).
//!
//! Why it exists: profiling HTTP at 64 calls in flight showed that rmcp's per-request machinery
//! (in stateless mode a service, its task, channels and cancellation tokens built for every
//! POST; in sessions, the session worker and an SSE stream per call) and a JSON tree of Port's
//! answer (parsed for structuredContent, then serialized again) took about 40% of the server's
//! CPU per call. Here the same call is answered without either: Port's bytes are checked,
//! escaped once as the text content, and copied verbatim as structuredContent. The message is
//! the one rmcp sends (a test sends the same requests through both paths and compares them); in
//! a session it comes as a JSON body rather than a one-event SSE stream, which the transport
//! lets the server choose. A session's `notifications/cancelled` still cancels the call.
//!
//! It serves both protocol eras: calls before 2026-07-28 (stateless, or in a live session) and
//! 2026-07-28 calls (per-request metadata and `Mcp-Method`/`Mcp-Name` headers, no session).
//! It never refuses anything: a request it is not sure about (another method, a batch, a
//! browser `Origin`, headers rmcp would check or reject, metadata it does not know, a tool that
//! asks for confirmation or reports progress, read-only refusals, a draining server) goes to
//! rmcp untouched, and rmcp decides.

use std::{
    borrow::Cow,
    collections::HashMap,
    hash::Hash,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, uri::Authority},
    middleware::Next,
    response::{IntoResponse, Response},
};
use rmcp::{
    model::{JsonObject, ProtocolVersion, ServerResult},
    transport::streamable_http_server::session::{SessionManager, local::LocalSessionManager},
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{
    config::HttpSettings,
    tools::{Forwarded, PortTools, audit, result},
};

/// What the lean path needs to know; shared by every request of one app.
pub struct LeanPath {
    tools: PortTools,
    /// Accepted `Host` values, parsed as rmcp parses them.
    hosts: Vec<(String, Option<u16>)>,
    max_request_bytes: usize,
    /// rmcp's sessions (stateful mode); `None` in stateless mode.
    sessions: Option<Arc<LocalSessionManager>>,
    /// Calls in flight in a session, by (session id, request id), for `notifications/cancelled`.
    in_flight: Arc<InFlight<(String, String)>>,
    served: AtomicU64,
}

impl LeanPath {
    /// The lean path for `tools`, with the app's Host allow-list and request size limit. With
    /// `sessions`, it serves calls in rmcp's sessions (stateful mode); without, stateless calls.
    pub fn new(
        tools: PortTools,
        settings: &HttpSettings,
        sessions: Option<Arc<LocalSessionManager>>,
    ) -> Arc<Self> {
        let hosts = super::http::allowed_hosts(settings)
            .iter()
            .filter_map(|h| parse_authority(h.trim()))
            .collect();
        Arc::new(LeanPath {
            tools,
            hosts,
            max_request_bytes: settings.max_request_bytes,
            sessions,
            in_flight: InFlight::new(),
            served: AtomicU64::new(0),
        })
    }

    /// The session a request belongs to, when the lean path may serve it: a live session's id
    /// for a legacy call to a stateful server (`Some(Some(id))`); no session header at all for
    /// a legacy call to a stateless server, or for a 2026-07-28 call, which rmcp serves without
    /// a session in either mode (`Some(None)`). `None`: rmcp's to answer.
    async fn session_of(&self, headers: &HeaderMap, era: Era) -> Option<Option<String>> {
        let id = headers.get("mcp-session-id").map(|v| v.to_str().ok());
        match (era, &self.sessions, id) {
            (Era::Modern, _, None) | (Era::Legacy, None, None) => Some(None),
            (Era::Legacy, Some(sessions), Some(Some(id))) => {
                let live = sessions.has_session(&Arc::from(id)).await.unwrap_or(false);
                live.then(|| Some(id.to_string()))
            }
            _ => None,
        }
    }

    /// The live session named by a request's header, in stateful mode.
    async fn live_session(&self, headers: &HeaderMap) -> Option<String> {
        self.session_of(headers, Era::Legacy).await.flatten()
    }

    /// How many calls this path has answered (the rest went to rmcp).
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Whether the request's headers are ones rmcp surely accepts, with nothing for it to check
    /// beyond what this path does (the protocol headers are judged with the body, in `era_of`).
    /// Conservative: anything unusual is rmcp's to judge.
    fn headers_qualify(&self, headers: &HeaderMap) -> bool {
        let host_ok = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(parse_authority)
            .is_some_and(|(host, port)| {
                self.hosts
                    .iter()
                    .any(|(h, p)| *h == host && (p.is_none() || *p == port))
            });
        let content_type_ok = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
            });
        let accept_ok = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let items: Vec<&str> = v.split(',').map(str::trim).collect();
                let has = |m: &str| items.iter().any(|i| i.eq_ignore_ascii_case(m));
                !v.contains(';') && has("application/json") && has("text/event-stream")
            });
        let other_mcp_headers = headers.keys().any(|k| {
            let k = k.as_str();
            k.starts_with("mcp-")
                && !matches!(
                    k,
                    "mcp-protocol-version" | "mcp-session-id" | "mcp-method" | "mcp-name"
                )
        });
        let length_ok = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n <= self.max_request_bytes);
        host_ok
            && headers.get(header::ORIGIN).is_none()
            && content_type_ok
            && accept_ok
            && !other_mcp_headers
            && length_ok
    }
}

/// Host and port as rmcp compares them: the host lower-cased, without IPv6 brackets.
fn parse_authority(value: &str) -> Option<(String, Option<u16>)> {
    let authority = Authority::try_from(value).ok()?;
    let host = authority
        .host()
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    Some((host, authority.port_u16()))
}

/// A JSON-RPC request id, kept as rmcp keeps it (an integer or a string).
#[derive(Serialize)]
#[serde(untagged)]
enum Id {
    Number(i64),
    String(String),
}

impl Id {
    /// The id as a map key (its JSON text, so `1` and `"1"` stay apart).
    fn key(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn from_json(value: serde_json::Value) -> Option<Id> {
        match value {
            serde_json::Value::Number(n) => n.as_i64().map(Id::Number),
            serde_json::Value::String(s) => Some(Id::String(s)),
            _ => None,
        }
    }
}

/// The only message this path takes: nothing beyond these fields (no `_meta`, no task), so
/// that there is nothing else for rmcp to act on.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolCall<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    id: serde_json::Value,
    #[serde(borrow)]
    method: Cow<'a, str>,
    params: CallParams,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallParams {
    name: String,
    #[serde(default)]
    arguments: Option<JsonObject>,
    #[serde(default, rename = "_meta")]
    meta: CallMeta,
}

/// The metadata this path understands. rmcp's client sends a progress token with every call;
/// the forwarding tools never report progress, so it changes nothing. A 2026-07-28 call names
/// its protocol version, client and capabilities here. Any other key is rmcp's to read.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CallMeta {
    #[serde(default, rename = "progressToken")]
    #[allow(dead_code)]
    progress_token: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "io.modelcontextprotocol/protocolVersion")]
    protocol_version: Option<String>,
    #[serde(default, rename = "io.modelcontextprotocol/clientInfo")]
    client_info: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "io.modelcontextprotocol/clientCapabilities")]
    client_capabilities: Option<serde::de::IgnoredAny>,
    /// W3C trace context (MCP 2026-07-28): the parent of the call's span. rmcp does nothing
    /// with it either, so a call carrying it stays on this path.
    #[serde(default)]
    traceparent: Option<String>,
    #[serde(default)]
    tracestate: Option<String>,
}

/// Which protocol revision a call belongs to; rmcp shapes results differently for each.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Era {
    /// Before 2026-07-28: `initialize`, sessions in stateful mode, no per-request metadata.
    Legacy,
    /// 2026-07-28: per-request metadata and the SEP-2243 `Mcp-Method`/`Mcp-Name` headers.
    Modern,
}

/// The revision of a call, when its headers (on HTTP; stdio has none) and metadata are ones
/// rmcp surely accepts without anything for it to check beyond this; `None` otherwise.
fn era_of(headers: Option<&HeaderMap>, params: &CallParams) -> Option<Era> {
    let Some(headers) = headers else {
        let meta = &params.meta;
        return match meta.protocol_version.as_deref() {
            None if meta.client_info.is_none() && meta.client_capabilities.is_none() => {
                Some(Era::Legacy)
            }
            Some(v) if v == ProtocolVersion::V_2026_07_28.as_str() => {
                meta.client_capabilities.is_some().then_some(Era::Modern)
            }
            _ => None,
        };
    };
    let header = |name: &str| headers.get(name).map(|v| v.to_str().ok());
    let version = header("mcp-protocol-version");
    let meta = &params.meta;
    if meta.protocol_version.is_none()
        && meta.client_info.is_none()
        && meta.client_capabilities.is_none()
    {
        // rmcp neither negotiates per request nor checks the SEP-2243 headers below 2026-07-28.
        let legacy_version = version.is_none_or(|v| {
            v.is_some_and(|v| {
                v < ProtocolVersion::STANDARD_HEADERS.as_str()
                    && ProtocolVersion::KNOWN_VERSIONS
                        .iter()
                        .any(|k| k.as_str() == v)
            })
        });
        let no_standard_headers = header("mcp-method").is_none() && header("mcp-name").is_none();
        return (legacy_version && no_standard_headers).then_some(Era::Legacy);
    }
    let modern = ProtocolVersion::V_2026_07_28.as_str();
    let modern_ok = meta.protocol_version.as_deref() == Some(modern)
        && meta.client_capabilities.is_some()
        && version == Some(Some(modern))
        && header("mcp-method") == Some(Some("tools/call"))
        && header("mcp-name") == Some(Some(params.name.as_str()));
    modern_ok.then_some(Era::Modern)
}

/// Lean calls in flight by key, so that `notifications/cancelled` can reach them.
pub(crate) struct InFlight<K>(Mutex<HashMap<K, CancellationToken>>);

impl<K: Eq + Hash + Clone> InFlight<K> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(InFlight(Mutex::new(HashMap::new())))
    }

    /// Registers a call under `key` until the returned entry is dropped: when the call ends,
    /// or when its future is dropped (an HTTP client that hung up).
    pub(crate) fn register(self: &Arc<Self>, key: K) -> Registered<K> {
        let token = CancellationToken::new();
        self.calls().insert(key.clone(), token.clone());
        Registered {
            in_flight: self.clone(),
            key,
            token,
        }
    }

    /// Cancels the call registered under `key`, if it is still running.
    pub(crate) fn cancel(&self, key: &K) {
        if let Some(token) = self.calls().get(key) {
            token.cancel();
        }
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<K, CancellationToken>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A call's entry in an [`InFlight`]; dropping it removes the entry.
pub(crate) struct Registered<K: Eq + Hash + Clone> {
    in_flight: Arc<InFlight<K>>,
    key: K,
    token: CancellationToken,
}

impl<K: Eq + Hash + Clone> Drop for Registered<K> {
    fn drop(&mut self) {
        self.in_flight.calls().remove(&self.key);
    }
}

/// A call this path can answer: which tool, with what, and how to shape its answer.
pub(crate) struct LeanCall {
    pub(crate) name: String,
    pub(crate) arguments: JsonObject,
    id: Id,
    era: Era,
    /// The `_meta` fields the call's span records.
    protocol_version: Option<String>,
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl LeanCall {
    /// Parses a message that is one `tools/call` this path may answer (`headers`: the HTTP
    /// request's, or `None` on stdio); `None` for anything else.
    pub(crate) fn parse(body: &[u8], headers: Option<&HeaderMap>) -> Option<LeanCall> {
        let call = serde_json::from_slice::<ToolCall>(body).ok()?;
        if call.jsonrpc != "2.0" || call.method != "tools/call" {
            return None;
        }
        let era = era_of(headers, &call.params)?;
        let meta = call.params.meta;
        Some(LeanCall {
            id: Id::from_json(call.id)?,
            name: call.params.name,
            arguments: call.params.arguments.unwrap_or_default(),
            era,
            protocol_version: meta.protocol_version,
            traceparent: meta.traceparent,
            tracestate: meta.tracestate,
        })
    }

    /// Whether the call belongs to a 2026-07-28 client (which needs no session).
    pub(crate) fn is_modern(&self) -> bool {
        self.era == Era::Modern
    }

    /// The request id, as `notifications/cancelled` names it ([`cancelled_request`]).
    pub(crate) fn key(&self) -> String {
        self.id.key()
    }

    /// Runs the call: forwards it to Port, unless `notifications/cancelled` reaches its
    /// `registered` entry first. Returns the JSON-RPC answer rmcp would give, or `None` when
    /// the tool is not one this path serves (rmcp answers it).
    pub(crate) async fn run<K: Eq + Hash + Clone>(
        &self,
        tools: &PortTools,
        headers: &HeaderMap,
        meta: audit::CallMeta<'_>,
        registered: Option<&Registered<K>>,
    ) -> Option<serde_json::Result<Vec<u8>>> {
        let cancelled = async {
            match registered {
                Some(r) => r.token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let request_id = tools
            .client()
            .telemetry()
            .traces()
            .map(|_| self.id.to_string());
        let meta = audit::CallMeta {
            trace: match &request_id {
                Some(request_id) => self.trace_info(headers, request_id, meta.transport.network()),
                None => Default::default(),
            },
            ..meta
        };
        let forwarded = tokio::select! {
            _ = cancelled => Forwarded::Done(result::cancelled()),
            f = tools.forward_named(&self.name, &self.arguments, headers, &meta) => f?,
        };
        let max_structured = tools.client().max_structured_bytes();
        Some(encode(&self.id, forwarded, max_structured, self.era))
    }
}

impl LeanCall {
    /// What the call's span records: from the message's `_meta`, else the HTTP headers.
    fn trace_info<'a>(
        &'a self,
        headers: &'a HeaderMap,
        request_id: &'a str,
        transport: &'static str,
    ) -> crate::telemetry::traces::CallInfo<'a> {
        use crate::telemetry::traces::{CallInfo, Carrier};
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        CallInfo {
            transport: Some(transport),
            session_id: header("mcp-session-id"),
            request_id: Some(request_id),
            protocol_version: self
                .protocol_version
                .as_deref()
                .or_else(|| header("mcp-protocol-version")),
            meta: Carrier {
                traceparent: self.traceparent.as_deref(),
                tracestate: self.tracestate.as_deref(),
            },
            headers: Carrier::of_headers(headers),
        }
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Number(n) => n.fmt(f),
            Id::String(s) => s.fmt(f),
        }
    }
}

/// The request id (as [`LeanCall::key`]) a `notifications/cancelled` message names.
pub(crate) fn cancelled_request(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Cancelled {
        method: String,
        params: CancelledParams,
    }
    #[derive(Deserialize)]
    struct CancelledParams {
        #[serde(rename = "requestId")]
        request_id: serde_json::Value,
    }
    let note = serde_json::from_slice::<Cancelled>(body).ok()?;
    if note.method != "notifications/cancelled" {
        return None;
    }
    Id::from_json(note.params.request_id).map(|id| id.key())
}

/// Middleware in front of rmcp's service on `/mcp`.
pub async fn serve(State(lean): State<Arc<LeanPath>>, request: Request, next: Next) -> Response {
    if request.method() != axum::http::Method::POST || !lean.headers_qualify(request.headers()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, lean.max_request_bytes).await {
        Ok(bytes) => bytes,
        // The client went away or sent less than it announced: as rmcp answers a broken body.
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Internal Server Error: failed to read request body: {e}"),
            )
                .into_response();
        }
    };
    let Some(call) = LeanCall::parse(&bytes, Some(&parts.headers)) else {
        // rmcp still gets the notification; the lean path only cancels its own calls.
        if let Some(request) = cancelled_request(&bytes)
            && let Some(session) = lean.live_session(&parts.headers).await
        {
            lean.in_flight.cancel(&(session, request));
        }
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    };
    let Some(session) = lean.session_of(&parts.headers, call.era).await else {
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    };
    let registered = session.map(|s| lean.in_flight.register((s, call.key())));
    let (admission, transport) = audit::admission_of(Some(&parts));
    let meta = audit::CallMeta {
        caller: audit::caller_of(Some(&parts)),
        admission,
        transport,
        ..Default::default()
    };
    let answer = call
        .run(&lean.tools, &parts.headers, meta, registered.as_ref())
        .await;
    let Some(answer) = answer else {
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    };
    lean.served.fetch_add(1, Ordering::Relaxed);
    match answer {
        Ok(body) => {
            let mut response = Response::new(Body::from(body));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Internal Server Error: serialize json response: {e}"),
        )
            .into_response(),
    }
}

/// The JSON-RPC response for one call, written once into a buffer of the right size.
fn encode(
    id: &Id,
    forwarded: Forwarded,
    max_structured: usize,
    era: Era,
) -> serde_json::Result<Vec<u8>> {
    let mut size = 256;
    let (outcome, structured) = match forwarded {
        Forwarded::Answer(response, notes) => {
            let len = response.text.len();
            // Escaping adds a backslash before each quote: a quarter more covers Port's JSON.
            size += len + len / 4;
            // The same structuredContent rmcp's path gives (an object, up to the limit), but
            // as Port's bytes rather than a tree serialized again. The client has checked
            // that they are one JSON document, by the same rules as the tree rmcp's path
            // parses (`port::json::check`: UTF-8, serde_json's depth limit, no lone
            // surrogates), so a body one path refuses never reaches a client by the other.
            let structured = len <= max_structured && response.text.trim_start().starts_with('{');
            if structured {
                size += len;
            }
            let mut outcome = result::success(response);
            result::add_mapping_notes(&mut outcome, &notes);
            (outcome, structured)
        }
        Forwarded::Done(outcome) => (outcome, false),
    };
    // `ServerResult` serializes as the result it holds (it is untagged); rmcp gives peers
    // before 2026-07-28 the older shape (no `resultType`, object output only).
    let mut outcome = ServerResult::CallToolResult(outcome);
    if era == Era::Legacy {
        outcome.strip_result_type_for_legacy_peer();
        outcome.strip_non_object_output_for_legacy_peer();
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    serde_json::to_writer(&mut out, id)?;
    out.extend_from_slice(b",\"result\":");
    write_result(&mut out, &outcome, structured)?;
    out.push(b'}');
    Ok(out)
}

/// Writes `outcome` as rmcp would; with `structured`, its first text block (Port's answer, a
/// JSON object) also goes in verbatim as its structuredContent.
fn write_result(
    out: &mut Vec<u8>,
    outcome: &ServerResult,
    structured: bool,
) -> serde_json::Result<()> {
    let raw = match outcome {
        ServerResult::CallToolResult(r) if structured => r
            .content
            .first()
            .and_then(|block| block.as_text())
            .map(|t| t.text.as_str()),
        _ => None,
    };
    serde_json::to_writer(&mut *out, outcome)?;
    if let Some(raw) = raw {
        // `outcome` was written as an object: reopen it before its closing brace.
        out.pop();
        out.extend_from_slice(b",\"structuredContent\":");
        out.extend_from_slice(raw.trim().as_bytes());
        out.push(b'}');
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ended_or_dropped_call_leaves_no_entry() {
        let in_flight = InFlight::new();
        let registered = in_flight.register("7".to_string());
        in_flight.cancel(&"7".to_string());
        assert!(registered.token.is_cancelled());
        assert_eq!(in_flight.calls().len(), 1);
        // A call whose future is dropped (its HTTP client hung up) goes the same way.
        drop(registered);
        assert!(in_flight.calls().is_empty());
    }
}
