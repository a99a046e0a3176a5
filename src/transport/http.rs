//! MCP over streamable HTTP, with a health endpoint, in one axum app.
//!
//! [`app`] builds the router without binding a socket, so tests drive the exact app `serve` runs.
//! DNS-rebinding protection, which the MCP spec requires of local servers, is rmcp's: the `Host`
//! header must name loopback (or an `--allowed-host`), and a browser `Origin` must be a localhost
//! origin (or an `--allowed-origin`); requests without `Origin` (non-browser clients) pass.

use std::sync::Arc;

use axum::{Json, Router, routing::get};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{RunError, config::HttpArgs, port::PortClient, tools::PortTools};

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

/// The HTTP app: `/mcp` (MCP) and `/healthz` (liveness, never calls Port).
pub fn app(client: PortClient, args: &HttpArgs, shutdown: CancellationToken) -> Router {
    let hosts: Vec<String> = DEFAULT_ALLOWED_HOSTS
        .iter()
        .map(|h| h.to_string())
        .chain(args.allowed_hosts.iter().cloned())
        .collect();
    let origins: Vec<String> = DEFAULT_ALLOWED_ORIGINS
        .iter()
        .map(|o| o.to_string())
        .chain(args.allowed_origins.iter().cloned())
        .collect();
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .with_cancellation_token(shutdown);
    if args.stateless {
        config = config
            .with_legacy_session_mode(false)
            .with_json_response(true);
    }
    let mcp = StreamableHttpService::new(
        move || Ok(PortTools::new(client.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .nest_service("/mcp", mcp)
}

/// Binds `args.listen` and serves until Ctrl-C or SIGTERM.
pub async fn serve(client: PortClient, args: &HttpArgs) -> Result<(), RunError> {
    let shutdown = CancellationToken::new();
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| RunError::Bind(args.listen, e))?;
    let router = app(client, args, shutdown.child_token());
    tracing::info!(
        "serving MCP on http://{}/mcp{}",
        args.listen,
        if args.stateless { " (stateless)" } else { "" }
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            super::shutdown_signal().await;
            shutdown.cancel();
        })
        .await
        .map_err(RunError::Io)
}
