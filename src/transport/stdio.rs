//! MCP over stdin/stdout, for hosts that launch the server as a child process.
//!
//! stdout carries only protocol messages: every log line goes to stderr (see `main.rs`), since a
//! single stray byte on stdout breaks strict hosts.

use rmcp::{ServiceExt, transport::stdio};

use crate::{RunError, tools::PortTools};

/// Serves until the host closes stdin or a shutdown signal arrives.
pub async fn serve(tools: PortTools) -> Result<(), RunError> {
    let running = tools
        .serve(stdio())
        .await
        .map_err(|e| RunError::Mcp(e.to_string()))?;
    let cancel = running.cancellation_token();
    tokio::select! {
        outcome = running.waiting() => {
            outcome.map_err(|e| RunError::Mcp(e.to_string()))?;
        }
        _ = super::shutdown_signal() => cancel.cancel(),
    }
    Ok(())
}
