//! Inbound OAuth on HTTP: the MCP authorization spec's resource-server side.
//!
//! With `--oauth-issuer`, every MCP and REST tool request needs a bearer token that
//! [`Verifier`] accepts. The answers are the ones OAuth clients (MCP hosts) act on:
//! - 401 with `WWW-Authenticate: Bearer resource_metadata="..."` points the client at this
//!   server's RFC 9728 metadata, which names the authorization servers to get a token from;
//! - 403 `insufficient_scope` names the scope to ask for (step-up);
//! - 503 when the issuer's keys cannot be fetched, rather than a hang or a misleading 401.
//!
//! Scopes decide the tools: a token without the write scope is served as a read-only request
//! (the `x-read-only-mode` header is set for it, so every path that honours read-only mode
//! hides and refuses the write tools), and a call of a write tool is refused here, with the 403
//! that lets the host ask for more. The caller's identity goes to the tools as a [`Caller`] in
//! the request's extensions, for their logs and audit lines, and an MCP session serves only the
//! caller who opened it. The caller's token is never passed on: Port is always called with the
//! server's own credentials.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

use axum::{
    Json, Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use rmcp::model::JsonObject;
use serde::Deserialize;
use serde_json::json;

use crate::{
    config::OAuthSettings,
    oauth::{AuthError, Caller, Verifier},
    telemetry::Telemetry,
    tools::{READ_ONLY_HEADER, audit, catalog},
};

/// Where RFC 9728 puts protected-resource metadata.
const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";
/// The `resource_name` of the metadata.
const RESOURCE_NAME: &str = "Port Integrations MCP";

/// What the OAuth middleware needs: the verifier and the fixed parts of its answers.
pub struct Gate {
    verifier: Verifier,
    /// The `resource_metadata` URL clients follow from a 401.
    metadata_url: String,
    /// The paths the metadata is served at.
    metadata_paths: Vec<String>,
    metadata: serde_json::Value,
    max_request_bytes: usize,
    /// Who opened each MCP session: a session is used only by the caller who opened it, so a
    /// session id that leaks (a log, a proxy) is no use with another person's token.
    owners: SessionOwners,
    /// Where a write refused for want of the write scope is recorded.
    telemetry: Telemetry,
}

/// Session id → the caller who opened it, at most `max` (the session cap: there are never
/// more live sessions; the oldest binding goes first).
struct SessionOwners {
    max: usize,
    /// Read by every request of a session, written when one opens.
    map: std::sync::RwLock<(HashMap<String, Owner>, VecDeque<String>)>,
}

/// What identifies a session's owner.
type Owner = (Option<Arc<str>>, Option<Arc<str>>);

impl SessionOwners {
    fn bind(&self, session: &str, caller: &Caller) {
        let Ok(mut guard) = self.map.write() else {
            return;
        };
        let (map, order) = &mut *guard;
        if map.insert(session.to_string(), owner(caller)).is_none() {
            order.push_back(session.to_string());
        }
        while order.len() > self.max {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    /// Whether `caller` may use `session` (a session this gate did not see opened is left to
    /// rmcp, which answers 404 for ids it does not know).
    fn allows(&self, session: &str, caller: &Caller) -> bool {
        let Ok(guard) = self.map.read() else {
            return false;
        };
        guard.0.get(session).is_none_or(|(sub, client)| {
            sub.as_deref() == caller.subject.as_deref()
                && client.as_deref() == caller.client_id.as_deref()
        })
    }
}

fn owner(caller: &Caller) -> Owner {
    (caller.subject.clone(), caller.client_id.clone())
}

impl Gate {
    /// The gate for these settings; nothing is fetched until a token arrives (or readiness,
    /// or [`Gate::load_keys`], asks).
    pub fn new(
        settings: &OAuthSettings,
        max_request_bytes: usize,
        max_sessions: usize,
        telemetry: Telemetry,
    ) -> Arc<Self> {
        let url = &settings.public_url;
        let path = url.path().trim_end_matches('/');
        let origin = url.origin().ascii_serialization();
        let mut metadata_paths = vec![METADATA_PATH.to_string()];
        if !path.is_empty() {
            metadata_paths.push(format!("{METADATA_PATH}{path}"));
        }
        let metadata = json!({
            "resource": settings.resource,
            "authorization_servers": settings.issuers,
            "scopes_supported": [settings.read_scope, settings.write_scope],
            "bearer_methods_supported": ["header"],
            "resource_name": RESOURCE_NAME,
        });
        Arc::new(Gate {
            verifier: Verifier::new(settings.clone()),
            metadata_url: format!("{origin}{METADATA_PATH}{path}"),
            metadata_paths,
            metadata,
            max_request_bytes,
            owners: SessionOwners {
                max: max_sessions,
                map: std::sync::RwLock::new((HashMap::new(), VecDeque::new())),
            },
            telemetry,
        })
    }

    /// Fetches the issuers' keys not loaded yet (at start-up, so the first caller does not wait).
    pub async fn load_keys(&self) {
        self.verifier.load_keys().await;
    }

    /// Whether the keys are loaded, and the report `/readyz` shows; fetches keys not loaded yet
    /// (never calls Port).
    pub async fn readiness(&self) -> (bool, serde_json::Value) {
        self.verifier.load_keys().await;
        self.verifier.readiness()
    }

    /// The metadata routes (open: they tell a client how to get a token).
    pub fn metadata_routes(self: &Arc<Self>) -> Router {
        let mut router = Router::new();
        for path in &self.metadata_paths {
            let gate = self.clone();
            router = router.route(
                path,
                get(move || async move {
                    (
                        [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
                        Json(gate.metadata.clone()),
                    )
                }),
            );
        }
        router
    }

    /// The caller a request's token proves, or the answer that refuses it.
    async fn admit(&self, headers: &HeaderMap) -> Result<Caller, Box<Response>> {
        let settings = self.verifier.settings();
        let malformed = |why: &str| {
            self.challenge(
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
                why,
                &self.all_scopes(),
            )
        };
        let token = match presented(headers, settings.max_token_bytes) {
            Presented::Missing => {
                return Err(self.challenge(
                    StatusCode::UNAUTHORIZED,
                    None,
                    "this server needs an OAuth access token: send Authorization: Bearer <token>; \
                     the resource_metadata URL names the authorization servers that issue them",
                    &self.all_scopes(),
                ));
            }
            Presented::Malformed(why) => return Err(malformed(why)),
            Presented::Token(token) => token,
        };
        let verified = match self.verifier.remembered_token(token) {
            Some(caller) => Ok(caller),
            None => match well_formed(token) {
                Ok(token) => self.verifier.verify(token).await,
                Err(why) => return Err(malformed(why)),
            },
        };
        let caller = match verified {
            Ok(caller) => caller,
            Err(AuthError::Invalid(why)) => {
                tracing::info!(reason = %why, "refused an access token");
                return Err(self.challenge(
                    StatusCode::UNAUTHORIZED,
                    Some("invalid_token"),
                    &why,
                    &self.all_scopes(),
                ));
            }
            Err(AuthError::Unavailable(why)) => {
                let mut r = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "temporarily_unavailable", "error_description": why})),
                )
                    .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return Err(Box::new(r));
            }
        };
        if !caller.can_read {
            return Err(self.challenge(
                StatusCode::FORBIDDEN,
                Some("insufficient_scope"),
                &format!(
                    "the token carries neither {} nor {}",
                    settings.read_scope, settings.write_scope
                ),
                &settings.read_scope,
            ));
        }
        Ok(caller)
    }

    fn all_scopes(&self) -> String {
        let s = self.verifier.settings();
        format!("{} {}", s.read_scope, s.write_scope)
    }

    /// The 403 for a write with a read-only token.
    fn needs_write(&self, tool: &str) -> Box<Response> {
        let scope = &self.verifier.settings().write_scope;
        self.challenge(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            &format!(
                "`{tool}` changes Port and needs the {scope} scope; the token has read access only"
            ),
            scope,
        )
    }

    /// An RFC 6750 challenge: the status, `WWW-Authenticate`, and the same facts as JSON.
    fn challenge(
        &self,
        status: StatusCode,
        error: Option<&str>,
        description: &str,
        scope: &str,
    ) -> Box<Response> {
        // A quoted-string may not hold `"` or `\`, nor anything outside visible ASCII.
        let quoted = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c == '"' || c == '\\' || !(' '..='~').contains(&c) {
                        '\''
                    } else {
                        c
                    }
                })
                .collect()
        };
        let mut value = String::from("Bearer ");
        if let Some(error) = error {
            value.push_str(&format!(
                "error=\"{error}\", error_description=\"{}\", ",
                quoted(description)
            ));
        }
        value.push_str(&format!(
            "resource_metadata=\"{}\", scope=\"{}\"",
            quoted(&self.metadata_url),
            quoted(scope)
        ));
        let body = json!({
            "error": error.unwrap_or("unauthorized"),
            "error_description": description,
        });
        let mut response = (status, Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        Box::new(response)
    }
}

/// What a request's `Authorization` header holds.
enum Presented<'a> {
    Missing,
    Malformed(&'static str),
    /// The token's bytes, not checked yet: a token the verifier has seen passed
    /// [`well_formed`] then, so only new ones need the byte-by-byte check.
    Token(&'a [u8]),
}

fn presented(headers: &HeaderMap, max_bytes: usize) -> Presented<'_> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Presented::Missing;
    };
    if values.next().is_some() {
        return Presented::Malformed("the request has more than one Authorization header");
    }
    let value = value.as_bytes();
    let (scheme, rest) = match value.iter().position(|b| *b == b' ') {
        Some(at) => (&value[..at], &value[at + 1..]),
        None => (value, &value[value.len()..]),
    };
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        // Another scheme (Basic, ...) is no bearer token at all.
        return Presented::Missing;
    }
    let token = rest.trim_ascii();
    if token.is_empty() {
        return Presented::Malformed("the Authorization header has no token after `Bearer`");
    }
    if token.len() > max_bytes {
        return Presented::Malformed(
            "the bearer token is longer than --oauth-max-token-bytes / PORT_MCP_OAUTH_MAX_TOKEN_BYTES allows",
        );
    }
    Presented::Token(token)
}

/// The token, if its bytes are an RFC 6750 `b64token`.
fn well_formed(token: &[u8]) -> Result<&str, &'static str> {
    if !token.iter().all(|b| (b' '..=b'~').contains(b)) {
        return Err("the Authorization header is not visible ASCII");
    }
    // 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let padding = token.iter().rev().take_while(|b| **b == b'=').count();
    let body = &token[..token.len() - padding];
    if body.is_empty() || !body.iter().all(|b| B64TOKEN[usize::from(*b)]) {
        return Err("the bearer token has characters a token cannot have (RFC 6750)");
    }
    std::str::from_utf8(token).map_err(|_| "the Authorization header is not visible ASCII")
}

/// The bytes of an RFC 6750 `b64token` (a table: every request's token passes through it).
static B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

/// Marks a caller's request: its identity for the tools, and read-only mode when the token has
/// no write scope (overriding whatever the client sent in that header).
fn admit_as(request: &mut Request, caller: Caller) {
    if !caller.can_write {
        request
            .headers_mut()
            .insert(READ_ONLY_HEADER, HeaderValue::from_static("1"));
    }
    request.extensions_mut().insert(caller);
}

/// In front of `/mcp`.
pub async fn guard_mcp(
    State(gate): State<Arc<Gate>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match gate.admit(request.headers()).await {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    if !caller.can_write && request.method() == Method::POST {
        let (parts, body) = request.into_parts();
        let bytes = match axum::body::to_bytes(body, gate.max_request_bytes).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Json(super::rpc_error(
                        serde_json::Value::Null,
                        -32600,
                        format!(
                            "Invalid Request: the request body is larger than {} bytes \
                             (--max-request-bytes / PORT_MCP_MAX_REQUEST_BYTES)",
                            gate.max_request_bytes
                        ),
                    )),
                )
                    .into_response();
            }
        };
        if let Some((tool, arguments)) = write_tool_called(&bytes) {
            let meta = audit::CallMeta {
                caller: Some(&caller),
                admission: audit::Admission::OAuth,
                transport: audit::Transport::Http,
                args_digest: audit::digest(&tool, arguments.as_ref()),
                ..Default::default()
            };
            let identifier = audit::identifier(arguments.as_ref());
            audit::refused(&gate.telemetry, &meta, &tool, identifier).await;
            return *gate.needs_write(&tool);
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(session) = &session
        && !gate.owners.allows(session, &caller)
    {
        tracing::warn!(
            sub = ?caller.subject.as_deref().unwrap_or(""),
            "refused a request for an MCP session another caller opened"
        );
        return (
            StatusCode::NOT_FOUND,
            Json(super::rpc_error(
                serde_json::Value::Null,
                -32001,
                "Session not found: this MCP session belongs to another caller; initialize a new one",
            )),
        )
            .into_response();
    }
    admit_as(&mut request, caller.clone());
    let response = next.run(request).await;
    if session.is_none()
        && let Some(opened) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
    {
        gate.owners.bind(opened, &caller);
    }
    response
}

/// The header that carries the MCP session id.
const SESSION_HEADER: &str = "mcp-session-id";

/// In front of the REST tool routes: there, every method but GET changes Port.
pub async fn guard_rest(
    State(gate): State<Arc<Gate>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match gate.admit(request.headers()).await {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    if !caller.can_write && !matches!(*request.method(), Method::GET | Method::HEAD) {
        let what = format!("{} {}", request.method(), request.uri().path());
        let meta = audit::CallMeta {
            caller: Some(&caller),
            admission: audit::Admission::OAuth,
            transport: audit::Transport::Rest,
            ..Default::default()
        };
        audit::refused(&gate.telemetry, &meta, &what, None).await;
        return *gate.needs_write(&what);
    }
    admit_as(&mut request, caller);
    next.run(request).await
}

/// The write tool a JSON-RPC body calls, if any (a batch counts if any member does). A body
/// that does not parse is left to rmcp, which refuses it; the read-only mode set for the
/// caller refuses a write that slips past this check all the same.
fn write_tool_called(body: &[u8]) -> Option<(String, Option<JsonObject>)> {
    #[derive(Deserialize)]
    struct Message {
        method: Option<String>,
        params: Option<Params>,
    }
    #[derive(Deserialize)]
    struct Params {
        name: Option<serde_json::Value>,
        arguments: Option<serde_json::Value>,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Body {
        One(Message),
        Many(Vec<Message>),
    }
    let messages = match serde_json::from_slice::<Body>(body).ok()? {
        Body::One(m) => vec![m],
        Body::Many(m) => m,
    };
    messages.into_iter().find_map(|m| {
        if m.method.as_deref() != Some("tools/call") {
            return None;
        }
        let params = m.params?;
        let name = params.name?;
        let name = name.as_str()?;
        let arguments = match params.arguments {
            Some(serde_json::Value::Object(a)) => Some(a),
            _ => None,
        };
        catalog::spec(name)
            .is_some_and(|s| s.writes())
            .then(|| (name.to_string(), arguments))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn presented_(h: &HeaderMap) -> Presented<'_> {
        presented(h, 16 * 1024)
    }

    #[test]
    fn bearer_headers_are_read_strictly() {
        assert!(matches!(presented_(&headers(&[])), Presented::Missing));
        assert!(matches!(
            presented_(&headers(&["Basic dXNlcjpwYXNz"])),
            Presented::Missing
        ));
        assert!(matches!(
            presented_(&headers(&["bearer  abc.def.ghi "])),
            Presented::Token(b"abc.def.ghi")
        ));
        for bad in ["Bearer", "Bearer ", "Bearer    "] {
            assert!(
                matches!(presented_(&headers(&[bad])), Presented::Malformed(_)),
                "{bad}"
            );
        }
        for bad in ["a b", "a\"b", "====", "a\tb"] {
            assert!(well_formed(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(well_formed(b"ab.c-d_e~f+g/h=="), Ok("ab.c-d_e~f+g/h=="));
        assert!(matches!(
            presented_(&headers(&["Bearer a", "Bearer b"])),
            Presented::Malformed(_)
        ));
    }

    #[test]
    fn write_calls_are_found_in_single_and_batched_messages() {
        let call = |name: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}","arguments":{{}}}}}}"#
            )
        };
        assert_eq!(
            write_tool_called(call("delete-integration").as_bytes())
                .map(|c| c.0)
                .as_deref(),
            Some("delete-integration")
        );
        assert_eq!(write_tool_called(call("get-integration").as_bytes()), None);
        assert_eq!(write_tool_called(call("no-such-tool").as_bytes()), None);
        let batch = format!(
            "[{},{}]",
            call("get-integration"),
            call("update-integration")
        );
        assert_eq!(
            write_tool_called(batch.as_bytes()).map(|c| c.0).as_deref(),
            Some("update-integration")
        );
        assert_eq!(write_tool_called(b"not json"), None);
    }
}
