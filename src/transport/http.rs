//! MCP over streamable HTTP, with health and readiness endpoints, in one axum app.
//!
//! [`app`] builds the router without binding a socket, so tests drive the exact app `serve` runs.
//! DNS-rebinding protection, which the MCP spec requires of local servers, is rmcp's: the `Host`
//! header must name loopback (or an `--allowed-host`), and a browser `Origin` must be a localhost
//! origin (or an `--allowed-origin`); requests without `Origin` (non-browser clients) pass.
//! With server-held Port credentials, anyone who reaches `/mcp` acts with them, so an inbound
//! bearer token can be required (and must be, off loopback).
//!
//! One server is shared by many agents, so no client may starve the others: connections are
//! served by our own accept loop (`listener.rs`: header and body timeouts, a connection cap),
//! MCP sessions are capped and expire when idle (`CappedSessions`, `guard_mcp`), and a
//! shutdown ends, after its grace period, whatever is still running.

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Body,
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{any, get},
};
use futures_core::Stream;
use rmcp::{
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
        session::{
            ServerSseMessage, SessionId, SessionManager,
            local::{LocalSessionManager, LocalSessionManagerError},
        },
    },
};
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{lean::LeanPath, listener, metrics::TimedSession, oauth::Gate};
use crate::{
    RunError,
    config::{HttpSettings, Secret},
    telemetry::{Telemetry, metrics::Busy},
    tools::PortTools,
};

/// `Host` values always accepted (any port).
pub const DEFAULT_ALLOWED_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Browser origins always accepted.
pub const DEFAULT_ALLOWED_ORIGINS: [&str; 6] = [
    "http://localhost:*",
    "https://localhost:*",
    "http://127.0.0.1:*",
    "https://127.0.0.1:*",
    "http://[::1]:*",
    "https://[::1]:*",
];

/// Accepted `Host` values: the loopback defaults, `--allowed-host`, and with OAuth the host of
/// `--public-url` (the name clients reach this server by).
pub fn allowed_hosts(settings: &HttpSettings) -> Vec<String> {
    let public = settings
        .oauth
        .as_ref()
        .and_then(|o| o.public_url.host_str().map(str::to_string));
    DEFAULT_ALLOWED_HOSTS
        .iter()
        .map(|h| h.to_string())
        .chain(settings.allowed_hosts.iter().cloned())
        .chain(public)
        .collect()
}

/// Accepted browser origins: the localhost defaults plus `--allowed-origin`.
pub fn allowed_origins(settings: &HttpSettings) -> Vec<String> {
    DEFAULT_ALLOWED_ORIGINS
        .iter()
        .map(|o| o.to_string())
        .chain(settings.allowed_origins.iter().cloned())
        .collect()
}

/// The HTTP app: `/mcp` (MCP), `/healthz` (liveness) and `/readyz` (readiness); neither probe
/// calls Port. `shutdown` closes MCP sessions and streams when cancelled. The hot `tools/call`
/// requests take the [`LeanPath`].
pub fn app(tools: PortTools, settings: &HttpSettings, shutdown: CancellationToken) -> Router {
    app_with(tools, settings, shutdown, true).0
}

/// The OAuth gate for these settings, if OAuth is on; its keys start loading at once when a
/// runtime is there to load them, so the first caller does not wait for them.
pub fn gate(settings: &HttpSettings, tools: &PortTools) -> Option<Arc<Gate>> {
    let gate = Gate::new(
        settings.oauth.as_ref()?,
        settings.max_request_bytes,
        settings.max_sessions,
        tools.client().telemetry().clone(),
    );
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let loading = gate.clone();
        runtime.spawn(async move { loading.load_keys().await });
    }
    Some(gate)
}

/// [`app`], with or without the lean path (without it, rmcp serves every request: tests compare
/// the two, and read [`LeanPath::served`]).
pub fn app_with(
    tools: PortTools,
    settings: &HttpSettings,
    shutdown: CancellationToken,
    lean: bool,
) -> (Router, Option<Arc<LeanPath>>) {
    let gate = gate(settings, &tools);
    app_gated(tools, settings, shutdown, lean, gate)
}

/// [`app_with`], behind `gate` (shared with the REST listener, so both use one key cache).
fn app_gated(
    tools: PortTools,
    settings: &HttpSettings,
    shutdown: CancellationToken,
    lean: bool,
    gate: Option<Arc<Gate>>,
) -> (Router, Option<Arc<LeanPath>>) {
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts(settings))
        .with_allowed_origins(allowed_origins(settings))
        .with_max_request_body_bytes(settings.max_request_bytes)
        .with_cancellation_token(shutdown);
    if settings.stateless {
        config = config
            .with_legacy_session_mode(false)
            .with_json_response(true);
    }
    let factory = tools.clone();
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(settings.session_idle);
    let sessions = Arc::new(sessions);
    let guard = Arc::new(Guard {
        sessions: (!settings.stateless).then(|| sessions.clone()),
        max_sessions: settings.max_sessions,
        session_idle: settings.session_idle,
        max_request_bytes: settings.max_request_bytes,
        telemetry: tools.client().telemetry().clone(),
    });
    let lean = lean.then(|| {
        let sessions = (!settings.stateless).then(|| sessions.clone());
        LeanPath::new(tools.clone(), settings, sessions)
    });
    // Behind an `Arc`: axum clones the service it routes to for every request, and cloning
    // rmcp's service copies its whole config (a dozen strings of allowed hosts and origins).
    let mcp = Arc::new(StreamableHttpService::new(
        move || Ok(factory.clone()),
        Arc::new(CappedSessions {
            inner: sessions,
            max: settings.max_sessions,
            creating: tokio::sync::Mutex::new(()),
            telemetry: tools.client().telemetry().clone(),
        }),
        config,
    ));
    let mcp = any(move |request: Request| {
        let mcp = mcp.clone();
        async move { mcp.handle(request).await }
    });
    let mut mcp_routes = Router::new()
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(guard, guard_mcp));
    if let Some(lean) = &lean {
        mcp_routes = mcp_routes.layer(middleware::from_fn_with_state(
            lean.clone(),
            super::lean::serve,
        ));
    }
    if let Some(token) = &settings.auth_token {
        mcp_routes = mcp_routes.layer(middleware::from_fn_with_state(
            Arc::new(token.clone()),
            require_token,
        ));
    }
    // `/metrics` here, unless `--metrics-listen` serves it elsewhere.
    let metrics = match settings.metrics_listen {
        None => super::metrics::routes(tools.client().telemetry()),
        Some(_) => Router::new(),
    };
    let mut router = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz).with_state((tools, gate.clone())))
        .merge(metrics);
    if let Some(gate) = gate {
        // Outermost: the lean path and rmcp see only admitted requests, marked with the
        // caller (and read-only mode for a token without the write scope).
        mcp_routes = mcp_routes.layer(middleware::from_fn_with_state(
            gate.clone(),
            super::oauth::guard_mcp,
        ));
        router = router.merge(gate.metadata_routes());
    }
    (router.merge(mcp_routes), lean)
}

/// rmcp's session manager with a cap on live sessions: each costs memory (about 50 KiB) until
/// it ends or idles out, so an endless stream of `initialize` requests must not grow the
/// process without bound. [`guard_mcp`] answers the requests over the cap with a clear 503
/// first; this refuses the ones that race past it.
struct CappedSessions {
    inner: Arc<LocalSessionManager>,
    max: usize,
    /// Counting and creating are one step.
    creating: tokio::sync::Mutex<()>,
    /// Where sessions' durations and refusals are counted.
    telemetry: Telemetry,
}

/// Why a session was not created or used.
#[derive(Debug, thiserror::Error)]
enum SessionsError {
    #[error(
        "{0} MCP sessions are open, the limit (--max-sessions / PORT_MCP_MAX_SESSIONS); retry later"
    )]
    Full(usize),
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
}

impl SessionManager for CappedSessions {
    type Error = SessionsError;
    type Transport = TimedSession<<LocalSessionManager as SessionManager>::Transport>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let _one_at_a_time = self.creating.lock().await;
        if self.inner.sessions.read().await.len() >= self.max {
            if let Some(m) = self.telemetry.metrics() {
                m.busy(Busy::Sessions);
            }
            return Err(SessionsError::Full(self.max));
        }
        let (id, transport) = self.inner.create_session().await?;
        Ok((id, TimedSession::new(transport, &self.telemetry)))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        Ok(self.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        Ok(self.inner.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        Ok(self.inner.close_session(id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.create_stream(id, message).await?)
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        Ok(self.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.create_standalone_stream(id).await?)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.resume(id, last_event_id).await?)
    }
}

/// What [`guard_mcp`] needs.
struct Guard {
    /// rmcp's sessions, in stateful mode.
    sessions: Option<Arc<LocalSessionManager>>,
    max_sessions: usize,
    session_idle: Duration,
    max_request_bytes: usize,
    /// Where refusals over the session cap are counted.
    telemetry: Telemetry,
}

/// In front of rmcp on `/mcp`: refuses an `initialize` over the session cap with 503, and gives
/// rmcp's plain-text refusals of a request it could not read (too large, not JSON-RPC) the
/// JSON-RPC shape clients parse.
async fn guard_mcp(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let request = match session_cap(&guard, request).await {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let response = next.run(request).await;
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(guard.max_request_bytes),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => unreadable(response).await,
        _ => response,
    }
}

/// The request, unless it would open a session beyond the cap.
async fn session_cap(guard: &Guard, request: Request) -> Result<Request, Box<Response>> {
    let Some(sessions) = &guard.sessions else {
        return Ok(request);
    };
    if request.method() != axum::http::Method::POST
        || request.headers().contains_key("mcp-session-id")
        || sessions.sessions.read().await.len() < guard.max_sessions
    {
        return Ok(request);
    }
    // At the cap (rare): only an `initialize` opens a session, so read the body to tell.
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, guard.max_request_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => return Err(Box::new(too_large(guard.max_request_bytes))),
    };
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        id: Option<serde_json::Value>,
        method: Option<String>,
    }
    if let Ok(Probe {
        id,
        method: Some(method),
    }) = serde_json::from_slice::<Probe>(&bytes)
        && method == "initialize"
    {
        if let Some(m) = guard.telemetry.metrics() {
            m.busy(Busy::Sessions);
        }
        let retry = guard.session_idle.as_secs().clamp(1, 5);
        let id = id.filter(super::valid_id).unwrap_or_default();
        let mut refused = (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(super::rpc_error(
                id,
                -32000,
                SessionsError::Full(guard.max_sessions).to_string(),
            )),
        )
            .into_response();
        if let Ok(v) = header::HeaderValue::from_str(&retry.to_string()) {
            refused.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Err(Box::new(refused));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// rmcp's 413, as a JSON-RPC error naming the setting.
fn too_large(max: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(super::rpc_error(
            serde_json::Value::Null,
            -32600,
            format!(
                "Invalid Request: the request body is larger than {max} bytes \
                 (--max-request-bytes / PORT_MCP_MAX_REQUEST_BYTES)"
            ),
        )),
    )
        .into_response()
}

/// rmcp answers a body that is not one JSON-RPC message with a plain-text 415; JSON-RPC over
/// HTTP wants 400 with a JSON-RPC error (`id` null: the request's own could not be read).
/// Other 415s (a wrong Content-Type) stay as they are.
async fn unreadable(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(text) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Some(reason) = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.strip_prefix("fail to deserialize request body"))
    else {
        return Response::from_parts(parts, Body::from(text));
    };
    let reason = reason.trim();
    // serde_json's wording for a body that is not JSON at all; anything else is JSON that is
    // not a message we can take.
    let syntax = [
        "EOF while parsing",
        "expected value",
        "expected `",
        "trailing characters",
        "trailing comma",
        "key must be a string",
        "invalid escape",
        "invalid number",
        "invalid unicode code point",
        "control character",
        "lone leading surrogate",
        "recursion limit exceeded",
    ]
    .iter()
    .any(|m| reason.contains(m));
    let (code, message) = if syntax {
        (-32700, format!("Parse error: {reason}"))
    } else {
        (-32600, format!("Invalid Request: {reason}"))
    };
    (
        StatusCode::BAD_REQUEST,
        Json(super::rpc_error(serde_json::Value::Null, code, message)),
    )
        .into_response()
}

/// Whether the request carries `token` as its bearer token (compared in constant time).
pub(crate) fn bearer_matches(headers: &axum::http::HeaderMap, token: &Secret) -> bool {
    let presented = crate::tools::bearer_token(headers).unwrap_or("");
    bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes()))
}

/// Refuses `/mcp` requests without the configured bearer token.
async fn require_token(
    State(token): State<Arc<Secret>>,
    mut request: Request,
    next: Next,
) -> Response {
    if bearer_matches(request.headers(), &token) {
        // For the audit line: the call was let in by the static token.
        request
            .extensions_mut()
            .insert(crate::tools::audit::Admission::StaticToken);
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Bearer realm=\"port-integrations-mcp\"",
        )],
        Json(json!({
            "error": "unauthorized",
            "message": "send Authorization: Bearer <token> with this server's inbound token"
        })),
    )
        .into_response()
}

/// Ready when calls can authenticate (credentials configured, or each caller brings a token),
/// callers can be authenticated (with OAuth: every issuer's keys are loaded), and the server is
/// not draining. Reports the last Port call without making one.
async fn readyz(State((tools, gate)): State<(PortTools, Option<Arc<Gate>>)>) -> Response {
    let client = tools.client();
    let credentials = client.has_credentials() || client.is_passthrough();
    let draining = tools.draining().is_cancelled();
    let oauth = match &gate {
        Some(gate) => Some(gate.readiness().await),
        None => None,
    };
    let keys = oauth.as_ref().is_none_or(|(loaded, _)| *loaded);
    let ready = credentials && !draining && keys;
    let mut body = json!({
        "ready": ready,
        "credentialsConfigured": client.has_credentials(),
        "tokenPassthrough": client.is_passthrough(),
        "draining": draining,
        "lastPortCall": client.last_call(),
    });
    if let Some((_, report)) = oauth {
        body["oauth"] = report;
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Binds the listen address (and the REST one, if any) and serves until Ctrl-C or SIGTERM, then
/// drains: new calls are refused, in-flight calls get up to the grace period to finish, then
/// sessions close, and connections still open are dropped.
pub async fn serve(tools: PortTools, settings: &HttpSettings) -> Result<(), RunError> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| RunError::Bind(settings.listen, e))?;
    let rest = match settings.rest_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| RunError::Bind(addr, e))?,
        ),
        None => None,
    };
    // Connections must not be what runs the process out of descriptors: raise the soft limit
    // to the hard one, and keep the cap within it.
    let mut settings = settings.clone();
    let fitted =
        listener::fit_connections(settings.max_connections, listener::raise_descriptor_limit());
    if fitted < settings.max_connections {
        tracing::warn!(
            "--max-connections lowered from {} to {fitted} to fit the open-files limit (ulimit -n)",
            settings.max_connections
        );
        settings.max_connections = fitted;
    }
    let grace = settings.shutdown_grace;
    let stop = async move {
        super::shutdown_signal().await;
        super::exit_after(grace + super::SHUTDOWN_MARGIN);
    };
    serve_listeners(listener, rest, tools, &settings, stop).await
}

/// [`serve`] on a bound listener, stopping when `stop` resolves.
pub async fn serve_on(
    listener: TcpListener,
    tools: PortTools,
    settings: &HttpSettings,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    serve_listeners(listener, None, tools, settings, stop).await
}

/// [`serve`] on bound listeners: MCP on `listener`, REST on `rest`.
pub async fn serve_listeners(
    listener: TcpListener,
    rest: Option<TcpListener>,
    tools: PortTools,
    settings: &HttpSettings,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let sessions = CancellationToken::new();
    let gate = gate(settings, &tools);
    let router = app_gated(
        tools.clone(),
        settings,
        sessions.clone(),
        true,
        gate.clone(),
    )
    .0;
    let addr = listener.local_addr().map_err(RunError::Io)?;
    let limits = listener::Limits::new(
        settings.header_timeout,
        settings.body_timeout,
        settings.max_connections,
    );
    let lifecycle = listener::Stop::default();
    let rest = match rest {
        Some(rest) => {
            let addr = rest.local_addr().map_err(RunError::Io)?;
            let app = super::rest::router_gated(tools.clone(), settings, gate);
            tracing::info!(
                "serving REST on http://{addr}/v1/integration (OpenAPI at /openapi.json)"
            );
            Some(tokio::spawn(listener::serve(
                rest,
                app,
                limits.clone(),
                listener::Dialect::Rest,
                lifecycle.clone(),
            )))
        }
        None => None,
    };
    tracing::info!(
        "serving MCP on http://{addr}/mcp{}{}",
        if settings.stateless {
            " (stateless)"
        } else {
            ""
        },
        match (&settings.oauth, &settings.auth_token) {
            (Some(_), _) => " (OAuth access token required)",
            (None, Some(_)) => " (inbound token required)",
            (None, None) => "",
        },
    );
    if settings.metrics_listen.is_none()
        && tools.client().telemetry().metrics().is_some()
        && (settings.oauth.is_some() || settings.auth_token.is_some())
    {
        // Like the probes, a scrape needs no token; it holds no secret and no identifier, but
        // it does show how the server is used.
        tracing::warn!(
            "GET /metrics is open on the MCP listener, without a token; serve it on an address \
             only the scraper reaches with --metrics-listen / PORT_MCP_METRICS_LISTEN"
        );
    }
    let grace = settings.shutdown_grace;
    let drain = {
        let lifecycle = lifecycle.clone();
        let sessions = sessions.clone();
        async move {
            stop.await;
            tools.draining().cancel();
            // The listeners close now: no new connections once draining.
            lifecycle.stop.cancel();
            tools.calls().close();
            let started = std::time::Instant::now();
            let ended = tokio::time::timeout(grace, tools.calls().wait())
                .await
                .is_err();
            if ended {
                tracing::warn!(
                    "calls still in flight after the {grace:?} grace period; ending them"
                );
                tools.ended().cancel();
            }
            // A call is done when its handler returns, but its answer is still on its way
            // through the session's stream: give it a moment before the streams are closed.
            let flush = if ended {
                Duration::from_millis(300)
            } else {
                Duration::from_millis(500).min(grace.saturating_sub(started.elapsed()))
            };
            tokio::time::sleep(flush).await;
            sessions.cancel();
            // Streams end with their sessions; whatever is still open then (a call past the
            // grace, a client that does not close) is dropped.
            tokio::time::sleep(Duration::from_millis(500)).await;
            lifecycle.kill.cancel();
        }
    };
    tokio::spawn(drain);
    listener::serve(
        listener,
        router,
        limits,
        listener::Dialect::Mcp,
        lifecycle.clone(),
    )
    .await;
    if let Some(rest) = rest {
        let _ = rest.await;
    }
    tracing::info!("HTTP server stopped");
    Ok(())
}
