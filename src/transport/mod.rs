//! How the server is reached: stdio for hosts that launch it, streamable HTTP for services.

pub mod http;
pub mod lean;
pub mod listener;
pub mod metrics;
pub mod oauth;
pub mod rest;
pub mod stdio;

use std::time::Duration;

/// How long past the shutdown grace the process may take to end the calls still running and
/// exit, before [`exit_after`] ends it.
pub const SHUTDOWN_MARGIN: Duration = Duration::from_secs(5);

/// Ends the process after `limit`, from a plain thread, whatever the async runtime is doing.
/// Shutdown is bounded by its own timers; this is the backstop for when they cannot run (every
/// worker busy in a call that never yields).
pub fn exit_after(limit: Duration) {
    let spawned = std::thread::Builder::new()
        .name("shutdown-deadline".into())
        .spawn(move || {
            std::thread::sleep(limit);
            tracing::error!("shutdown did not finish within {limit:?}; exiting now");
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the shutdown deadline");
    }
}

/// Whether a JSON-RPC id may be echoed in an answer: JSON-RPC 2.0 allows a string or a number
/// without a fractional part (and null, which is answered as such anyway). An answer to any
/// other id carries `id: null`.
pub fn valid_id(id: &serde_json::Value) -> bool {
    match id {
        serde_json::Value::String(_) => true,
        serde_json::Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

/// A JSON-RPC error answer: every transport refuses in this one shape (`id` should already
/// have passed [`valid_id`], or be null).
pub fn rpc_error(
    id: serde_json::Value,
    code: i64,
    message: impl Into<String>,
) -> serde_json::Value {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message.into()},
    })
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
