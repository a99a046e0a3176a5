//! `GET /metrics`: the Prometheus scrape, on the HTTP app (beside `/healthz`) or, with
//! `--metrics-listen`, on a listener of its own, in http and stdio mode alike.
//!
//! A scrape never calls Port and needs no token: like the probes, it is for the platform, and
//! it holds no secret and no identifier (see `telemetry::metrics`). Behind a public ingress,
//! `--metrics-listen` on an address only the scraper reaches keeps it private. The listener of
//! its own uses the project's accept loop (`listener.rs`) with small limits of its own: a
//! scraper needs one connection, so a client that opens many cannot take descriptors from MCP.

use std::{net::SocketAddr, time::Duration};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;

use super::listener;
use crate::{RunError, telemetry::Telemetry};

/// Connections the metrics listener holds at once; more are refused with 503.
pub const MAX_METRICS_CONNECTIONS: usize = 16;

/// How long the metrics listener waits for a request's headers (and an idle keep-alive).
pub const METRICS_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The `/metrics` route, when metrics are on (an empty router when they are off).
pub fn routes(telemetry: &Telemetry) -> Router {
    if telemetry.metrics().is_none() {
        return Router::new();
    }
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(telemetry.clone())
}

async fn scrape(State(telemetry): State<Telemetry>) -> Response {
    match telemetry.metrics() {
        Some(metrics) => (
            [(
                header::CONTENT_TYPE,
                crate::telemetry::metrics::CONTENT_TYPE,
            )],
            metrics.encode(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Binds `addr` for `/metrics` (a clear error naming `--metrics-listen` when it cannot), and
/// serves it for as long as the process runs.
pub async fn listen(addr: SocketAddr, telemetry: &Telemetry) -> Result<SocketAddr, RunError> {
    let bound = TcpListener::bind(addr)
        .await
        .map_err(|e| RunError::MetricsBind(addr, e))?;
    let local = bound.local_addr().map_err(RunError::Io)?;
    serve_on(bound, telemetry);
    Ok(local)
}

/// Serves `/metrics` on a bound listener, in the background, until the process ends.
pub fn serve_on(bound: TcpListener, telemetry: &Telemetry) {
    if let Ok(local) = bound.local_addr() {
        tracing::info!("serving Prometheus metrics on http://{local}/metrics");
    }
    let limits = listener::Limits::new(
        METRICS_HEADER_TIMEOUT,
        METRICS_HEADER_TIMEOUT,
        MAX_METRICS_CONNECTIONS,
    );
    tokio::spawn(listener::serve(
        bound,
        routes(telemetry),
        limits,
        listener::Dialect::Metrics,
        listener::Stop::default(),
    ));
}

/// An HTTP session's transport, timed: when rmcp drops it (the session was closed, expired or
/// ended with the server), its life goes into `mcp_server_session_duration_seconds`.
pub struct TimedSession<T> {
    inner: T,
    started: std::time::Instant,
    telemetry: Telemetry,
}

impl<T> TimedSession<T> {
    /// `inner`, timed from now.
    pub fn new(inner: T, telemetry: &Telemetry) -> Self {
        TimedSession {
            inner,
            started: std::time::Instant::now(),
            telemetry: telemetry.clone(),
        }
    }
}

impl<T> Drop for TimedSession<T> {
    fn drop(&mut self) {
        if let Some(m) = self.telemetry.metrics() {
            let seconds = self.started.elapsed().as_secs_f64();
            m.session_ended(crate::telemetry::metrics::SessionTransport::Tcp, seconds);
        }
    }
}

impl<T: rmcp::transport::Transport<rmcp::RoleServer>> rmcp::transport::Transport<rmcp::RoleServer>
    for TimedSession<T>
{
    type Error = T::Error;

    fn send(
        &mut self,
        item: rmcp::service::TxJsonRpcMessage<rmcp::RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    fn receive(
        &mut self,
    ) -> impl Future<Output = Option<rmcp::service::RxJsonRpcMessage<rmcp::RoleServer>>> + Send
    {
        self.inner.receive()
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
