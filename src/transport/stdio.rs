//! MCP over stdin/stdout, for hosts that launch the server as a child process.
//!
//! stdout carries only protocol messages: every log line goes to stderr (see `main.rs`), since a
//! single stray byte on stdout breaks strict hosts.
//!
//! The transport is our own rather than rmcp's byte-stream adapter, for two reasons. rmcp
//! silently drops a line it cannot parse, which leaves the sender waiting forever; JSON-RPC asks
//! for a `-32700 Parse error` (or `-32600 Invalid Request`) answer instead. And tokio's
//! stdin/stdout hand every read and write to its blocking pool, a thread switch per operation:
//! one plain thread reading lines and one writing them (flushing only when nothing else is
//! queued) costs far fewer switches under load. The reader also hands the hot request, a
//! `tools/call` of a forwarding tool, to the lean path (`lean.rs`), as the HTTP app does.

use std::{
    io::{BufRead, BufReader, BufWriter, Read, Write},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc as std_mpsc,
    },
    time::Duration,
};

use rmcp::{
    RoleServer, ServiceExt,
    model::{JsonRpcMessage, ServerResult},
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::lean::{self, InFlight, LeanCall};
use crate::{RunError, config::StdioSettings, tools::PortTools};

/// What the writer thread receives.
enum Out {
    Line(Vec<u8>),
    /// Flush and end.
    Stop,
}

/// rmcp's view of stdio: parsed messages in, serialized lines out.
struct LineTransport {
    incoming: mpsc::UnboundedReceiver<RxJsonRpcMessage<RoleServer>>,
    outgoing: std_mpsc::Sender<Out>,
}

impl Transport<RoleServer> for LineTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let mut line = Vec::with_capacity(size_hint(&item));
        let sent = serde_json::to_writer(&mut line, &item)
            .map(|()| line)
            .map_err(std::io::Error::other)
            .and_then(|line| {
                self.outgoing.send(Out::Line(line)).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdout closed")
                })
            });
        std::future::ready(sent)
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleServer>>> + Send {
        self.incoming.recv()
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.incoming.close();
        std::future::ready(Ok(()))
    }
}

/// Room for a message's serialized form. A large tool result is then written into one buffer,
/// rather than into one that doubles its way up, copying itself and holding two copies at each
/// step (for a 2 MB answer, several megabytes at peak).
fn size_hint(item: &TxJsonRpcMessage<RoleServer>) -> usize {
    let JsonRpcMessage::Response(response) = item else {
        return 256;
    };
    let ServerResult::CallToolResult(result) = &response.result else {
        return 256;
    };
    let text: usize = result
        .content
        .iter()
        .filter_map(|block| block.as_text())
        .map(|t| t.text.len())
        .sum();
    // Escaping adds a backslash before each quote of Port's JSON; the structured copy, when
    // there is one, is about the text's size again.
    let structured = if result.structured_content.is_some() {
        text
    } else {
        0
    };
    256 + text + text / 4 + structured
}

/// The lean path on stdio (see `lean.rs`): a `tools/call` of a forwarding tool is answered
/// without going through rmcp, and its answer is written as rmcp would write it. Everything
/// else, and any call it declines, goes to rmcp.
struct StdioLean {
    tools: PortTools,
    /// Where answers go (the writer thread).
    out: std_mpsc::Sender<Out>,
    /// rmcp's input, for calls the lean path declines. While a lean call holds this, rmcp's
    /// input stays open, so rmcp (and then the writer) end only after the call has answered.
    rmcp: mpsc::UnboundedSender<RxJsonRpcMessage<RoleServer>>,
    runtime: tokio::runtime::Handle,
    /// Calls in flight by request id, for `notifications/cancelled`.
    in_flight: Arc<InFlight<String>>,
    served: Arc<AtomicU64>,
}

impl StdioLean {
    /// Registers the call now (before the reader moves on, so a cancel on the next line finds
    /// it), then runs it on the runtime.
    fn start(self: &Arc<Self>, call: LeanCall, line: Vec<u8>) {
        let lean = self.clone();
        let registered = self.in_flight.register(call.key());
        self.runtime.spawn(async move {
            let headers = axum::http::HeaderMap::new();
            match call
                .run(&lean.tools, &headers, None, Some(&registered), "pipe")
                .await
            {
                // rmcp's to answer (delete, the mapping tools, a draining server).
                None => {
                    deliver(&line, &lean.rmcp, &lean.out);
                }
                Some(Ok(answer)) => {
                    lean.served.fetch_add(1, Ordering::Relaxed);
                    let _ = lean.out.send(Out::Line(answer));
                }
                Some(Err(e)) => tracing::error!(error = %e, "could not serialize a tool result"),
            }
        });
    }

    fn cancel(&self, line: &[u8]) {
        if let Some(key) = lean::cancelled_request(line) {
            self.in_flight.cancel(&key);
        }
    }
}

/// Serves until the host closes stdin or a shutdown signal arrives.
pub async fn serve(tools: PortTools, settings: &StdioSettings) -> Result<(), RunError> {
    let served = Some(Arc::default());
    let grace = settings.shutdown_grace;
    let stop = async move {
        super::shutdown_signal().await;
        super::exit_after(grace + super::SHUTDOWN_MARGIN);
    };
    serve_until(
        std::io::stdin(),
        std::io::stdout(),
        tools,
        served,
        settings,
        stop,
    )
    .await
}

/// Serves MCP over any blocking byte streams (stdin/stdout in production), with the default
/// settings. With `lean`, the lean path answers the calls it can, counting them there;
/// without, rmcp answers everything (tests compare the two).
pub async fn serve_with<R, W>(
    input: R,
    output: W,
    tools: PortTools,
    lean: Option<Arc<AtomicU64>>,
) -> Result<(), RunError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let stop = super::shutdown_signal();
    serve_until(input, output, tools, lean, &StdioSettings::default(), stop).await
}

/// [`serve_with`] with `settings`, until the input ends or `stop` resolves. On `stop`, new
/// calls are refused, calls in flight get the grace period to finish (their answers are
/// written), and whatever is still running then is abandoned.
pub async fn serve_until<R, W>(
    input: R,
    output: W,
    tools: PortTools,
    lean: Option<Arc<AtomicU64>>,
    settings: &StdioSettings,
    stop: impl Future<Output = ()> + Send,
) -> Result<(), RunError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let max_line = settings.max_request_bytes;
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let (out_tx, out_rx) = std_mpsc::channel();
    let rejects = out_tx.clone();
    let lean = lean.map(|served| {
        Arc::new(StdioLean {
            tools: tools.clone(),
            out: out_tx.clone(),
            rmcp: in_tx.clone(),
            runtime: tokio::runtime::Handle::current(),
            in_flight: InFlight::new(),
            served,
        })
    });
    // The reader blocks on stdin; it is never joined (the process may end while it waits).
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            read_lines(
                BufReader::with_capacity(1 << 16, input),
                in_tx,
                rejects,
                lean,
                max_line,
            )
        })
        .map_err(RunError::Io)?;
    let writer = std::thread::Builder::new()
        .name("stdout".into())
        .spawn(move || write_lines(output, out_rx))
        .map_err(RunError::Io)?;

    let transport = LineTransport {
        incoming: in_rx,
        outgoing: out_tx.clone(),
    };
    let running = tools
        .clone()
        .serve(transport)
        .await
        .map_err(|e| RunError::Mcp(e.to_string()))?;
    let cancel = running.cancellation_token();
    let waiting = running.waiting();
    tokio::pin!(waiting);
    let outcome = tokio::select! {
        outcome = &mut waiting => outcome.map(|_| ()).map_err(|e| RunError::Mcp(e.to_string())),
        _ = stop => {
            let grace = settings.shutdown_grace;
            tools.draining().cancel();
            tools.calls().close();
            let started = std::time::Instant::now();
            let ended = tokio::time::timeout(grace, tools.calls().wait()).await.is_err();
            if ended {
                tracing::warn!("calls still in flight after the {grace:?} grace period; ending them");
                tools.ended().cancel();
            }
            // A call is done when its handler returns; its answer is then a moment away from
            // the writer.
            let flush = if ended {
                Duration::from_millis(200)
            } else {
                Duration::from_millis(100).min(grace.saturating_sub(started.elapsed()))
            };
            tokio::time::sleep(flush).await;
            cancel.cancel();
            // rmcp writes what it still has, then ends; it is not waited for past a moment.
            let _ = tokio::time::timeout(Duration::from_millis(500), &mut waiting).await;
            Ok(())
        }
    };
    // Everything rmcp sent is queued before Stop, so it is all written and flushed.
    let _ = out_tx.send(Out::Stop);
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    outcome
}

fn read_lines(
    mut input: impl BufRead,
    messages: mpsc::UnboundedSender<RxJsonRpcMessage<RoleServer>>,
    rejects: std_mpsc::Sender<Out>,
    lean: Option<Arc<StdioLean>>,
    max_line: usize,
) {
    let mut buf = Vec::with_capacity(1 << 12);
    // Calls before 2026-07-28 need the session's handshake first: until the client says
    // `notifications/initialized`, rmcp answers them (with its errors).
    let mut initialized = false;
    loop {
        match read_line(&mut input, &mut buf, max_line) {
            Ok(Line::End) | Err(_) => break,
            Ok(Line::Message) => {}
            Ok(Line::TooLong) => {
                tracing::warn!(
                    limit = max_line,
                    "answered an stdin line over --max-request-bytes with a JSON-RPC error"
                );
                if rejects
                    .send(Out::Line(too_long(&buf, max_line).into_bytes()))
                    .is_err()
                {
                    break;
                }
                continue;
            }
        }
        // A large message's buffer is not kept for the small ones that follow.
        if buf.capacity() > 1 << 20 && buf.len() < 1 << 16 {
            buf.shrink_to(1 << 16);
        }
        let line = trim(&buf);
        if line.is_empty() {
            continue;
        }
        if let Some(lean) = &lean {
            if let Some(call) = LeanCall::parse(line, None)
                && (initialized || call.is_modern())
            {
                lean.start(call, line.to_vec());
                continue;
            }
            lean.cancel(line);
            initialized = initialized || is_initialized_notification(line);
        }
        if !deliver(line, &messages, &rejects) {
            break;
        }
    }
    // Dropping `messages` is the end of input: rmcp ends the session.
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A line (without its newline) is in the buffer.
    Message,
    /// A line longer than the limit was skipped; the buffer holds its first `limit` bytes.
    TooLong,
    /// The input ended.
    End,
}

/// Reads one line into `buf`, holding at most `limit` bytes of it: the rest of a longer line
/// is read and dropped as it comes, so a huge line costs no more memory than the limit.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>, limit: usize) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(match (too_long, buf.is_empty()) {
                (true, _) => Line::TooLong,
                (false, true) => Line::End,
                (false, false) => Line::Message,
            });
        }
        let newline = available.iter().position(|&b| b == b'\n');
        let content = newline.unwrap_or(available.len());
        if !too_long {
            let room = limit.saturating_sub(buf.len());
            if content > room {
                too_long = true;
                buf.extend_from_slice(&available[..room]);
            } else {
                buf.extend_from_slice(&available[..content]);
            }
        }
        let used = newline.map_or(available.len(), |n| n + 1);
        input.consume(used);
        if newline.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Message
            });
        }
    }
}

/// The answer to a line over the limit, with the request's id when its first bytes name one.
fn too_long(prefix: &[u8], limit: usize) -> String {
    let id = leading_id(trim(prefix)).unwrap_or(Value::Null);
    super::rpc_error(
        id,
        -32600,
        format!(
            "Invalid Request: the message is longer than {limit} bytes \
             (--max-request-bytes / PORT_MCP_MAX_REQUEST_BYTES); it was skipped"
        ),
    )
    .to_string()
}

/// The `id` of a JSON-RPC object whose start is `prefix`, when it comes before anything that
/// is cut off, and is one that may be echoed.
fn leading_id(prefix: &[u8]) -> Option<Value> {
    fn skip_ws(bytes: &[u8]) -> &[u8] {
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(bytes.len());
        &bytes[start..]
    }
    let mut rest = skip_ws(prefix).strip_prefix(b"{")?;
    loop {
        rest = skip_ws(rest);
        let mut keys = serde_json::Deserializer::from_slice(rest).into_iter::<String>();
        let key = keys.next()?.ok()?;
        rest = skip_ws(&rest[keys.byte_offset()..]).strip_prefix(b":")?;
        rest = skip_ws(rest);
        if key == "id" {
            let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Value>();
            return values.next()?.ok().filter(super::valid_id);
        }
        let mut values =
            serde_json::Deserializer::from_slice(rest).into_iter::<serde::de::IgnoredAny>();
        values.next()?.ok()?;
        rest = skip_ws(&rest[values.byte_offset()..]).strip_prefix(b",")?;
    }
}

fn trim(line: &[u8]) -> &[u8] {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &line[start..end]
}

fn write_lines(output: impl Write, lines: std_mpsc::Receiver<Out>) {
    let mut out = BufWriter::with_capacity(1 << 16, output);
    while let Ok(first) = lines.recv() {
        let mut next = Some(first);
        while let Some(item) = next {
            match item {
                Out::Line(line) => {
                    if out
                        .write_all(&line)
                        .and_then(|_| out.write_all(b"\n"))
                        .is_err()
                    {
                        return;
                    }
                }
                Out::Stop => {
                    let _ = out.flush();
                    return;
                }
            }
            next = lines.try_recv().ok();
        }
        // Nothing else queued: hand what we have to the host now.
        if out.flush().is_err() {
            return;
        }
    }
    let _ = out.flush();
}

/// Hands a line to rmcp, or answers it with a JSON-RPC error when rmcp could not parse it.
/// False once either side is gone.
fn deliver(
    line: &[u8],
    messages: &mpsc::UnboundedSender<RxJsonRpcMessage<RoleServer>>,
    rejects: &std_mpsc::Sender<Out>,
) -> bool {
    match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(line) {
        Ok(message) => messages.send(message).is_ok(),
        Err(error) => match reject(line, &error) {
            Some(answer) => {
                tracing::warn!(%error, "answered an unusable stdin line with a JSON-RPC error");
                rejects.send(Out::Line(answer.into_bytes())).is_ok()
            }
            None => true,
        },
    }
}

/// Whether a line is the client's `notifications/initialized`.
fn is_initialized_notification(line: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Method<'a> {
        #[serde(borrow)]
        method: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Method>(line)
        .is_ok_and(|m| m.method.as_deref() == Some("notifications/initialized"))
}

/// Just enough of a JSON-RPC message to answer one that rmcp could not parse.
#[derive(Deserialize)]
struct Probe {
    /// `Some(Null)` for `"id": null`, which is no notification.
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    method: Option<serde::de::IgnoredAny>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The answer to a line rmcp could not parse, or None for a notification (which never gets an
/// answer; rmcp likewise ignores notifications it does not know).
fn reject(line: &[u8], error: &serde_json::Error) -> Option<String> {
    let answer = |id: Value, code: i64, message: String| {
        Some(super::rpc_error(id, code, message).to_string())
    };
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(line) {
        return answer(Value::Null, -32700, format!("Parse error: {e}"));
    }
    match serde_json::from_slice::<Probe>(line) {
        Ok(Probe {
            id: None,
            method: Some(_),
        }) => None,
        // JSON-RPC 2.0: an id that cannot be echoed (null, an object, an array, a fraction,
        // a boolean) is answered with `id: null`.
        Ok(Probe { id: Some(id), .. }) if !super::valid_id(&id) => answer(
            Value::Null,
            -32600,
            format!(
                "Invalid Request: `id` must be a string or an integer, not {}",
                kind_of(&id)
            ),
        ),
        Ok(Probe { id, .. }) => answer(
            id.unwrap_or(Value::Null),
            -32600,
            format!("Invalid Request: {error}"),
        ),
        // A batch (array) or another JSON value.
        Err(_) => answer(
            Value::Null,
            -32600,
            "Invalid Request: expected one JSON-RPC 2.0 object per line".into(),
        ),
    }
}

/// How an unusable id is named in the refusal.
fn kind_of(id: &Value) -> &'static str {
    match id {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number with a fractional part",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(line: &str) -> Option<String> {
        match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(line.as_bytes()) {
            Ok(_) => None,
            Err(e) => reject(line.as_bytes(), &e),
        }
    }

    #[test]
    fn tells_usable_lines_from_unusable_ones() {
        assert_eq!(
            check(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            None
        );
        assert_eq!(
            check(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            None
        );
        let parse = check("this is not json").unwrap();
        assert!(
            parse.contains(r#""code":-32700"#) && parse.contains(r#""id":null"#),
            "{parse}"
        );
        let invalid = check(r#"{"id":7,"method":"tools/list"}"#).unwrap();
        assert!(
            invalid.contains(r#""code":-32600"#) && invalid.contains(r#""id":7"#),
            "{invalid}"
        );
        assert!(check("[1,2]").unwrap().contains("-32600"));
        assert!(
            check(r#"{"jsonrpc":"2.0","id":3}"#)
                .unwrap()
                .contains("-32600")
        );
        // Ids that cannot be echoed are answered with `id: null`; `"id": null` is no
        // notification.
        for id in ["null", "{\"a\":1}", "[1]", "1.5", "true"] {
            let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#);
            let answer = check(&line).unwrap_or_else(|| panic!("{line} got no answer"));
            assert!(
                answer.contains(r#""id":null"#) && answer.contains("-32600"),
                "{answer}"
            );
        }
        // An unknown notification is ignored, as JSON-RPC requires.
        assert_eq!(check(r#"{"jsonrpc":"2.0","method":"$/lsp-thing"}"#), None);
        assert_eq!(trim(b"\xEF\xBB\xBF {\"a\":1} \r"), b"{\"a\":1}");
    }

    /// An endless line, produced as it is read.
    struct Endless {
        left: u64,
    }

    impl Read for Endless {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = out
                .len()
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            out[..n].fill(b'x');
            if n > 0 && self.left == n as u64 {
                out[n - 1] = b'\n';
            }
            self.left -= n as u64;
            Ok(n)
        }
    }

    #[test]
    fn a_line_over_the_limit_is_skipped_without_being_held() {
        let mut input = BufReader::with_capacity(1 << 16, Endless { left: 200 << 20 });
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut input, &mut buf, 1000).unwrap(),
            Line::TooLong
        );
        assert_eq!(buf.len(), 1000);
        assert!(buf.capacity() < 1 << 16, "{}", buf.capacity());
        assert_eq!(read_line(&mut input, &mut buf, 1000).unwrap(), Line::End);

        let mut input = BufReader::new(&b"{\"a\":1}\r\nxxxxxxxxxxxx\nlast"[..]);
        assert_eq!(read_line(&mut input, &mut buf, 10).unwrap(), Line::Message);
        assert_eq!(buf, b"{\"a\":1}\r");
        assert_eq!(read_line(&mut input, &mut buf, 10).unwrap(), Line::TooLong);
        assert_eq!(read_line(&mut input, &mut buf, 10).unwrap(), Line::Message);
        assert_eq!(buf, b"last");
        assert_eq!(read_line(&mut input, &mut buf, 10).unwrap(), Line::End);
    }

    #[test]
    fn the_id_of_a_cut_message_is_found_when_it_came_first() {
        let id = |s: &str| leading_id(s.as_bytes());
        assert_eq!(
            id(r#"{"jsonrpc":"2.0","id":7,"params":{"x":"aaa"#),
            Some(json!(7))
        );
        assert_eq!(id(r#" { "id" : "a-1" , "method""#), Some(json!("a-1")));
        assert_eq!(
            id(r#"{"jsonrpc":"2.0","method":"m","id":"x","params":[1,2"#),
            Some(json!("x"))
        );
        assert_eq!(id(r#"{"params":{"x":"aaaa"#), None);
        assert_eq!(id(r#"{"id":{"a":1},"x":"#), None);
        assert_eq!(id(r#"{"id":1.5,"x":"#), None);
        assert_eq!(id("xxxx"), None);
        assert_eq!(id(""), None);
    }
}
