//! The accept loop of both HTTP listeners (MCP and REST), with the limits that keep one client
//! from starving the others.
//!
//! `axum::serve` exposes none of hyper's connection settings: with it, a connection that sends
//! its headers one byte a second, or a body that never ends, was held forever, and enough idle
//! connections used up the process's file descriptors, after which nobody could connect. Here:
//! - a request's headers must arrive within the header timeout, which hyper also applies to an
//!   idle keep-alive connection waiting for its next request (not to a response being
//!   streamed, so SSE streams are not cut);
//! - a request's body must arrive within the body timeout, or the request gets 408;
//! - connections are counted against one cap shared by both listeners; one beyond it gets 503
//!   and is closed (a few such refusals at a time; beyond that it is closed unanswered);
//! - on shutdown the listeners close at once, idle connections are closed, requests in progress
//!   may finish, and whatever is still open when the caller says so is dropped.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    http::{HeaderValue, Request, Response, StatusCode, header},
};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::{net::TcpListener, sync::Semaphore, time::Sleep};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

/// Connections over the cap that are answered 503 at a time; more are closed unanswered, so
/// refusing cannot itself use up descriptors.
const REFUSALS_AT_ONCE: usize = 32;

/// How long a refused connection may take to send the request its 503 answers.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(2);

/// Descriptors kept free for everything but client connections: Port's connection pool, the
/// listeners, stdio, the refusals above, and logs.
pub const RESERVED_DESCRIPTORS: usize = 64;

/// How a listener words the answers it writes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// JSON-RPC error objects, as `/mcp` answers.
    Mcp,
    /// Port's error shape `{ok:false, error, message}`, as the REST surface answers.
    Rest,
    /// The metrics listener (`--metrics-listen`): the REST shape, and its own connection cap.
    Metrics,
}

impl Dialect {
    /// A refusal in this listener's shape. `code` names it for REST; MCP uses JSON-RPC's
    /// server-error code, with no id (the request was not read, or not usable).
    pub fn refusal(self, status: StatusCode, code: &str, message: String) -> Response<Body> {
        let body = match self {
            Dialect::Mcp => super::rpc_error(serde_json::Value::Null, -32000, message),
            Dialect::Rest | Dialect::Metrics => {
                json!({"ok": false, "error": code, "message": message})
            }
        };
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// The limits of [`serve`]; `slots` is shared by the listeners of one server.
#[derive(Clone)]
pub struct Limits {
    /// Longest wait for a request's headers (and longest idle keep-alive).
    pub header_timeout: Duration,
    /// Longest wait for a request's whole body, from its first stall.
    pub body_timeout: Duration,
    /// One permit per open connection.
    pub slots: Arc<Semaphore>,
    /// The cap `slots` was made with, for the refusal's message.
    pub max_connections: usize,
}

impl Limits {
    /// Limits with a fresh connection cap of `max_connections`.
    pub fn new(header_timeout: Duration, body_timeout: Duration, max_connections: usize) -> Self {
        Limits {
            header_timeout,
            body_timeout,
            slots: Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS))),
            max_connections,
        }
    }
}

/// When to stop: `stop` closes the listener and lets each connection finish the request it is
/// serving; `kill` drops every connection still open.
#[derive(Clone, Default)]
pub struct Stop {
    /// Stop accepting; close connections once idle.
    pub stop: CancellationToken,
    /// Close every connection now.
    pub kill: CancellationToken,
}

/// Serves `router` on `listener` until `stop.stop`; returns once every connection has ended
/// (at the latest soon after `stop.kill`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    dialect: Dialect,
    stop: Stop,
) {
    let connections = TaskTracker::new();
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of descriptors, most likely: the next accept would fail the same way at
                // once, so give connections a moment to end.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::select! {
                    _ = stop.stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        // SSE answers go out as several small writes; without TCP_NODELAY, Nagle's algorithm
        // and the client's delayed ACK hold each one back by ~40 ms.
        let _ = tcp.set_nodelay(true);
        if let Ok(slot) = limits.slots.clone().try_acquire_owned() {
            let (router, limits, stop) = (router.clone(), limits.clone(), stop.clone());
            connections.spawn(async move {
                serve_connection(tcp, router, &limits, dialect, &stop).await;
                drop(slot);
            });
        } else if let Ok(refusal) = refusals.clone().try_acquire_owned() {
            let max = limits.max_connections;
            connections.spawn(async move {
                refuse_connection(tcp, dialect, max).await;
                drop(refusal);
            });
        } else {
            drop(tcp);
        }
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Accept errors that concern one connection only (the next accept is fine).
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    router: Router,
    limits: &Limits,
    dialect: Dialect,
    stop: &Stop,
) {
    let body_timeout = limits.body_timeout;
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let router = router.clone();
        async move {
            let expired = Arc::new(AtomicBool::new(false));
            let request =
                request.map(|body| Body::new(DeadlineBody::new(body, body_timeout, &expired)));
            let response = router.oneshot(request).await;
            if expired.load(Ordering::Relaxed) {
                return Ok(body_timed_out(dialect, body_timeout));
            }
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let connection = builder.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(connection);
    tokio::select! {
        served = connection.as_mut() => {
            if served.is_err_and(|e| e.is_timeout()) {
                tracing::debug!(
                    "closed a connection whose request headers did not come within \
                     --header-timeout-secs (PORT_MCP_HEADER_TIMEOUT_SECS)"
                );
            }
            return;
        }
        _ = stop.kill.cancelled() => return,
        _ = stop.stop.cancelled() => connection.as_mut().graceful_shutdown(),
    }
    tokio::select! {
        _ = connection => {}
        _ = stop.kill.cancelled() => {}
    }
}

/// The 408 of a body that did not arrive in time; the connection is closed after it, since
/// the rest of the body may still be on its way.
fn body_timed_out(dialect: Dialect, limit: Duration) -> Response<Body> {
    let mut response = dialect.refusal(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "the request body did not arrive within {} s (--body-timeout-secs / \
             PORT_MCP_BODY_TIMEOUT_SECS); nothing was sent to Port",
            limit.as_secs()
        ),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Answers one request on a connection over the cap with 503, then closes it.
async fn refuse_connection(tcp: tokio::net::TcpStream, dialect: Dialect, max: usize) {
    let service = hyper::service::service_fn(move |_request: Request<Incoming>| async move {
        let mut response = dialect.refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            match dialect {
                Dialect::Metrics => format!(
                    "the metrics listener has {max} connections open, its fixed limit; \
                     retry in a moment"
                ),
                _ => format!(
                    "the server has {max} connections open, its limit (--max-connections / \
                     PORT_MCP_MAX_CONNECTIONS); retry in a moment"
                ),
            },
        );
        let headers = response.headers_mut();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        Ok::<_, Infallible>(response)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(REFUSAL_DEADLINE)
        .keep_alive(false);
    let connection = builder.serve_connection(TokioIo::new(tcp), service);
    let _ = tokio::time::timeout(REFUSAL_DEADLINE * 2, connection).await;
}

/// Why a request body was cut.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimeout;

/// A request body that fails once it has been waited on for longer than its limit. The clock
/// starts at the first wait, so a body that came with its headers costs no timer.
struct DeadlineBody {
    inner: Incoming,
    limit: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl DeadlineBody {
    fn new(inner: Incoming, limit: Duration, expired: &Arc<AtomicBool>) -> Self {
        DeadlineBody {
            inner,
            limit,
            deadline: None,
            expired: expired.clone(),
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let limit = this.limit;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if deadline.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The soft limit on open descriptors, raised to the hard limit where it is lower (the usual
/// soft default of 1024 is small for a server). None where it cannot be read.
pub fn raise_descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        // rlim_t is u64 on Linux, but not everywhere.
        #[allow(clippy::useless_conversion)]
        let soft = u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX);
        Some(soft)
    }
    #[cfg(not(unix))]
    None
}

/// The connection cap that fits `descriptors` (after [`RESERVED_DESCRIPTORS`]), never above
/// `wanted` and never below 1.
pub fn fit_connections(wanted: usize, descriptors: Option<u64>) -> usize {
    match descriptors {
        Some(d) => {
            let room = usize::try_from(d)
                .unwrap_or(usize::MAX)
                .saturating_sub(RESERVED_DESCRIPTORS)
                .max(1);
            wanted.min(room)
        }
        None => wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_descriptors() {
        assert_eq!(fit_connections(512, Some(1024)), 512);
        assert_eq!(fit_connections(512, Some(200)), 136);
        assert_eq!(fit_connections(512, Some(10)), 1);
        assert_eq!(fit_connections(512, None), 512);
        assert_eq!(fit_connections(512, Some(u64::MAX)), 512);
    }
}
