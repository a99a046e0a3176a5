//! MCP over streamable HTTP, with health and readiness endpoints, in one axum app.
//!
//! [`app`] builds the router without binding a socket, so tests drive the exact app `serve` runs.
//! DNS-rebinding protection, which the MCP spec requires of local servers, is rmcp's: the `Host`
//! header must name loopback (or an `--allowed-host`), and a browser `Origin` must be a localhost
//! origin (or an `--allowed-origin`); requests without `Origin` (non-browser clients) pass.
//! With server-held Port credentials, anyone who reaches `/mcp` acts with them, so an inbound
//! bearer token can be required (and must be, off loopback).

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{any, get},
    serve::ListenerExt,
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::lean::LeanPath;
use crate::{
    RunError,
    config::{HttpSettings, Secret},
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

/// Accepted `Host` values: the loopback defaults plus `--allowed-host`.
pub fn allowed_hosts(settings: &HttpSettings) -> Vec<String> {
    DEFAULT_ALLOWED_HOSTS
        .iter()
        .map(|h| h.to_string())
        .chain(settings.allowed_hosts.iter().cloned())
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

/// [`app`], with or without the lean path (without it, rmcp serves every request: tests compare
/// the two, and read [`LeanPath::served`]).
pub fn app_with(
    tools: PortTools,
    settings: &HttpSettings,
    shutdown: CancellationToken,
    lean: bool,
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
    let sessions = Arc::new(LocalSessionManager::default());
    let lean = lean.then(|| {
        let sessions = (!settings.stateless).then(|| sessions.clone());
        LeanPath::new(tools.clone(), settings, sessions)
    });
    // Behind an `Arc`: axum clones the service it routes to for every request, and cloning
    // rmcp's service copies its whole config (a dozen strings of allowed hosts and origins).
    let mcp = Arc::new(StreamableHttpService::new(
        move || Ok(factory.clone()),
        sessions,
        config,
    ));
    let mcp = any(move |request: Request| {
        let mcp = mcp.clone();
        async move { mcp.handle(request).await }
    });
    let mut mcp_routes = Router::new().nest_service("/mcp", mcp);
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
    let router = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz).with_state(tools))
        .merge(mcp_routes);
    (router, lean)
}

/// Whether the request carries `token` as its bearer token (compared in constant time).
pub(crate) fn bearer_matches(headers: &axum::http::HeaderMap, token: &Secret) -> bool {
    let presented = crate::tools::bearer_token(headers).unwrap_or("");
    bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes()))
}

/// Refuses `/mcp` requests without the configured bearer token.
async fn require_token(State(token): State<Arc<Secret>>, request: Request, next: Next) -> Response {
    if bearer_matches(request.headers(), &token) {
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

/// Ready when calls can authenticate (credentials configured, or each caller brings a token)
/// and the server is not draining. Reports the last Port call without making one.
async fn readyz(State(tools): State<PortTools>) -> Response {
    let client = tools.client();
    let credentials = client.has_credentials() || client.is_passthrough();
    let draining = tools.draining().is_cancelled();
    let ready = credentials && !draining;
    let body = json!({
        "ready": ready,
        "credentialsConfigured": client.has_credentials(),
        "tokenPassthrough": client.is_passthrough(),
        "draining": draining,
        "lastPortCall": client.last_call(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Binds the listen address and serves until Ctrl-C or SIGTERM, then drains: new calls are
/// refused, in-flight calls get up to the grace period to finish, then sessions close.
pub async fn serve(tools: PortTools, settings: &HttpSettings) -> Result<(), RunError> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| RunError::Bind(settings.listen, e))?;
    if let Some(addr) = settings.rest_listen {
        let rest = TcpListener::bind(addr)
            .await
            .map_err(|e| RunError::Bind(addr, e))?;
        let app = super::rest::router(tools.clone(), settings);
        let draining = tools.draining().clone();
        tracing::info!("serving REST on http://{addr}/v1/integration (OpenAPI at /openapi.json)");
        let rest = rest.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            let served = axum::serve(rest, app)
                .with_graceful_shutdown(async move { draining.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "REST server stopped");
            }
        });
    }
    serve_on(listener, tools, settings, super::shutdown_signal()).await
}

/// [`serve`] on a bound listener, stopping when `stop` resolves.
pub async fn serve_on(
    listener: TcpListener,
    tools: PortTools,
    settings: &HttpSettings,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let sessions = CancellationToken::new();
    let router = app(tools.clone(), settings, sessions.clone());
    let addr = listener.local_addr().map_err(RunError::Io)?;
    tracing::info!(
        "serving MCP on http://{addr}/mcp{}{}",
        if settings.stateless {
            " (stateless)"
        } else {
            ""
        },
        if settings.auth_token.is_some() {
            " (inbound token required)"
        } else {
            ""
        },
    );
    let grace = settings.shutdown_grace;
    let stopping = CancellationToken::new();
    let drain = {
        let stopping = stopping.clone();
        let sessions = sessions.clone();
        async move {
            stop.await;
            tools.draining().cancel();
            stopping.cancel();
            tools.calls().close();
            let started = std::time::Instant::now();
            if tokio::time::timeout(grace, tools.calls().wait())
                .await
                .is_err()
            {
                tracing::warn!("calls still in flight after the {grace:?} grace period; closing");
            }
            // A call is done when its handler returns, but its answer is still on its way
            // through the session's stream: give it a moment before the streams are closed.
            let flush = Duration::from_millis(500).min(grace.saturating_sub(started.elapsed()));
            tokio::time::sleep(flush).await;
            sessions.cancel();
        }
    };
    tokio::spawn(drain);
    // SSE answers go out as several small writes; without TCP_NODELAY, Nagle's algorithm and
    // the client's delayed ACK hold each one back by ~40 ms.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(async move { stopping.cancelled().await })
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        outcome = &mut server => outcome.map_err(RunError::Io)?,
        // Keep-alive connections and open streams must not hold the process past the grace.
        _ = async { sessions.cancelled().await; tokio::time::sleep(Duration::from_secs(2)).await } => {}
    }
    tracing::info!("HTTP server stopped");
    Ok(())
}
