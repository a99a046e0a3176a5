//! MCP over stdin/stdout, for hosts that launch the server as a child process.
//!
//! stdout carries only protocol messages: every log line goes to stderr (see `main.rs`), since a
//! single stray byte on stdout breaks strict hosts. rmcp silently drops a line it cannot parse,
//! which leaves the sender waiting forever; JSON-RPC asks for a `-32700 Parse error` (or
//! `-32600 Invalid Request`) answer instead. So stdin passes through a small filter that
//! answers such lines itself, and one writer task owns stdout so answers never interleave.

use rmcp::ServiceExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader},
    sync::mpsc,
};

use crate::{RunError, tools::PortTools};

/// Pipe capacity between the filter and rmcp.
const PIPE_BYTES: usize = 1 << 20;

/// Serves until the host closes stdin or a shutdown signal arrives.
pub async fn serve(tools: PortTools) -> Result<(), RunError> {
    serve_on(tokio::io::stdin(), tokio::io::stdout(), tools).await
}

/// Serves MCP over any pair of byte streams (stdin/stdout in production).
pub async fn serve_on<R, W>(input: R, output: W, tools: PortTools) -> Result<(), RunError>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (to_rmcp, rmcp_in) = tokio::io::duplex(PIPE_BYTES);
    let (rmcp_out, from_rmcp) = tokio::io::duplex(PIPE_BYTES);
    let (rejects_tx, rejects_rx) = mpsc::unbounded_channel::<String>();

    let reader = tokio::spawn(filter_input(input, to_rmcp, rejects_tx));
    let writer = tokio::spawn(write_output(from_rmcp, rejects_rx, output));

    let (rmcp_read, _) = tokio::io::split(rmcp_in);
    let (_, rmcp_write) = tokio::io::split(rmcp_out);
    let running = tools
        .serve((rmcp_read, rmcp_write))
        .await
        .map_err(|e| RunError::Mcp(e.to_string()))?;
    let cancel = running.cancellation_token();
    tokio::select! {
        outcome = running.waiting() => {
            outcome.map_err(|e| RunError::Mcp(e.to_string()))?;
        }
        _ = super::shutdown_signal() => cancel.cancel(),
    }
    reader.abort();
    // The writer ends once rmcp's side of the pipe is dropped and everything is flushed.
    let _ = writer.await;
    Ok(())
}

/// Just enough of a JSON-RPC message to tell a valid one from an invalid one.
#[derive(Deserialize)]
struct Probe {
    jsonrpc: Option<String>,
    #[serde(default)]
    id: Option<Value>,
    method: Option<serde::de::IgnoredAny>,
    result: Option<serde::de::IgnoredAny>,
    error: Option<serde::de::IgnoredAny>,
}

/// The answer to send back for an unusable line, if it is unusable.
fn reject(line: &str) -> Option<String> {
    let error = |id: Value, code: i64, message: String| {
        Some(
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
                .to_string(),
        )
    };
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(line) {
        return error(Value::Null, -32700, format!("Parse error: {e}"));
    }
    match serde_json::from_str::<Probe>(line) {
        Ok(p) if p.jsonrpc.as_deref() == Some("2.0")
            && (p.method.is_some() || p.result.is_some() || p.error.is_some()) => None,
        Ok(p) => error(
            p.id.unwrap_or(Value::Null),
            -32600,
            "Invalid Request: expected a JSON-RPC 2.0 object with `jsonrpc: \"2.0\"` and a `method`".into(),
        ),
        // A batch (array) or another JSON value: not something this server accepts.
        Err(_) => error(
            Value::Null,
            -32600,
            "Invalid Request: expected one JSON-RPC 2.0 object per line".into(),
        ),
    }
}

async fn filter_input<R>(
    input: R,
    mut to_rmcp: tokio::io::DuplexStream,
    rejects: mpsc::UnboundedSender<String>,
) where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut lines = BufReader::new(input).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(answer) = reject(&line) {
            tracing::warn!("answered an unusable stdin line with a JSON-RPC error");
            if rejects.send(answer).is_err() {
                break;
            }
            continue;
        }
        if to_rmcp.write_all(line.as_bytes()).await.is_err()
            || to_rmcp.write_all(b"\n").await.is_err()
        {
            break;
        }
    }
    // Dropping `to_rmcp` is the EOF that ends the session.
}

async fn write_output<W: AsyncWrite + Unpin>(
    from_rmcp: tokio::io::DuplexStream,
    mut rejects: mpsc::UnboundedReceiver<String>,
    mut output: W,
) {
    let mut lines = BufReader::new(from_rmcp).lines();
    let mut rejects_open = true;
    loop {
        let line = tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => line,
                _ => break,
            },
            reject = rejects.recv(), if rejects_open => match reject {
                Some(line) => line,
                None => { rejects_open = false; continue; }
            },
        };
        if output.write_all(line.as_bytes()).await.is_err()
            || output.write_all(b"\n").await.is_err()
            || output.flush().await.is_err()
        {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reject;

    #[test]
    fn tells_usable_lines_from_unusable_ones() {
        assert_eq!(
            reject(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            None
        );
        assert_eq!(
            reject(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            None
        );
        assert_eq!(reject(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#), None);
        let parse = reject("this is not json").unwrap();
        assert!(
            parse.contains(r#""code":-32700"#) && parse.contains(r#""id":null"#),
            "{parse}"
        );
        let invalid = reject(r#"{"id":7,"method":"tools/list"}"#).unwrap();
        assert!(
            invalid.contains(r#""code":-32600"#) && invalid.contains(r#""id":7"#),
            "{invalid}"
        );
        assert!(reject("[1,2]").unwrap().contains("-32600"));
        assert!(
            reject(r#"{"jsonrpc":"2.0","id":3}"#)
                .unwrap()
                .contains("-32600")
        );
    }
}
