//! Connection abuse (issue 10, defects 17 to 22): slow and silent connections, stalled and
//! endless bodies, more connections than the cap (and than the process has descriptors),
//! session floods, oversized requests, a huge stdio line, hostile JSON-RPC ids, and SIGTERM
//! during calls that do not end. After each attack the server must still serve a real MCP
//! call, and the fake Port must have received only that call.
//!
//! The limits are set small here, so that every attack is over in a few seconds; each wait that
//! bounds a hang is a timeout, never a claim about speed.

use std::{net::SocketAddr, process::Stdio, sync::Arc, time::Duration};

use port_integrations_mcp::{
    config::HttpSettings, port::PortClient, sandbox::ScriptedResponse, tools::PortTools,
    transport::http::serve_listeners,
};
use rmcp::{
    ServiceExt,
    model::CallToolRequestParams,
    transport::{
        StreamableHttpClientTransport, common::client_side_sse::FixedInterval,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    process::{Child, Command},
};
use tokio_util::sync::CancellationToken;

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_port-integrations-mcp");

/// An in-process server (MCP and REST listeners), stopped when dropped.
struct Server {
    mcp: SocketAddr,
    rest: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start(fake: &FakePort, edit: impl FnOnce(&mut HttpSettings)) -> Server {
    let mut settings = HttpSettings::local(SocketAddr::from(([127, 0, 0, 1], 0)));
    edit(&mut settings);
    let tools = PortTools::new(PortClient::new(&fake.settings(static_token())).unwrap());
    let mcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rest = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (mcp_addr, rest_addr) = (mcp.local_addr().unwrap(), rest.local_addr().unwrap());
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        let stop = async move { stopped.cancelled().await };
        serve_listeners(mcp, Some(rest), tools, &settings, stop).await
    });
    Server {
        mcp: mcp_addr,
        rest: rest_addr,
        stop,
    }
}

/// A real MCP client's `get-integration` call is served, and it is all Port received.
async fn still_serves(fake: &FakePort, mcp: SocketAddr) {
    let health = reqwest::Client::new()
        .get(format!("http://{mcp}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let client = tokio::time::timeout(
        Duration::from_secs(10),
        ().serve(StreamableHttpClientTransport::from_uri(format!(
            "http://{mcp}/mcp"
        ))),
    )
    .await
    .expect("the MCP handshake was answered")
    .unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        call(
            &client,
            "get-integration",
            json!({"identifier": "github-ocean"}),
        ),
    )
    .await
    .expect("the call was answered");
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(
        r.structured_content.unwrap()["integration"]["identifier"],
        "github-ocean"
    );
    let only = fake.single_request();
    assert_eq!(
        (only.method.as_str(), only.path.as_str()),
        ("GET", "/v1/integration/github-ocean")
    );
    let _ = client.cancel().await;
}

/// Reads what the server sends until it closes the connection (or `limit` passes, which fails).
async fn read_until_closed(tcp: &mut TcpStream, limit: Duration) -> String {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = tokio::time::timeout(limit, async {
        loop {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&got).into_owned()
}

/// The status code and JSON body of a raw HTTP/1.1 answer.
fn parse_answer(raw: &str) -> (u16, Value, String) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {raw:?}"));
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, body, head.to_ascii_lowercase())
}

/// Defect 17: connections that send their headers a byte at a time are closed after the
/// header timeout, and the server serves others all along.
#[tokio::test(flavor = "multi_thread")]
async fn slowloris_connections_are_closed_after_the_header_timeout() {
    let fake = FakePort::start().await;
    let server = start(&fake, |s| s.header_timeout = Duration::from_secs(1)).await;
    let mut slow = Vec::new();
    for i in 0..40 {
        let addr = if i % 2 == 0 { server.mcp } else { server.rest };
        slow.push(tokio::spawn(async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let request =
                b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa";
            let dripping = async {
                for byte in request {
                    if tcp.write_all(&[*byte]).await.is_err() {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                false
            };
            // The whole request would take 15 s to send: the server must cut it well before.
            let cut = tokio::time::timeout(Duration::from_secs(8), dripping).await;
            assert!(matches!(cut, Ok(true)), "still open after 8 s");
        }));
    }
    // The server answers others meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    still_serves(&fake, server.mcp).await;
    for s in slow {
        s.await.unwrap();
    }
    fake.port.clear_requests();
    still_serves(&fake, server.mcp).await;
}

/// Defect 17: a body that stalls, or never ends, gets 408 in the listener's shape once the body
/// timeout passes, and its connection is closed; nothing reaches Port.
#[tokio::test(flavor = "multi_thread")]
async fn stalled_and_endless_bodies_get_408_and_are_closed() {
    let fake = FakePort::start().await;
    let server = start(&fake, |s| s.body_timeout = Duration::from_secs(1)).await;
    let mut attacks = Vec::new();
    for _ in 0..10 {
        // A stalled upload to /mcp: 10 of the 100,000 bytes announced.
        let mcp = server.mcp;
        attacks.push(tokio::spawn(async move {
            let mut tcp = TcpStream::connect(mcp).await.unwrap();
            let head = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100000\r\n\r\n{\"jsonrpc\"";
            tcp.write_all(head.as_bytes()).await.unwrap();
            let raw = read_until_closed(&mut tcp, Duration::from_secs(8)).await;
            let (status, body, head) = parse_answer(&raw);
            assert_eq!(status, 408, "{raw}");
            assert!(head.contains("content-type: application/json"), "{raw}");
            assert_eq!(body["jsonrpc"], "2.0", "{raw}");
            assert_eq!(body["id"], Value::Null, "{raw}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("--body-timeout-secs"), "{message}");
        }));
        // An endless chunked upload to REST: a small chunk every 100 ms, forever.
        let rest = server.rest;
        attacks.push(tokio::spawn(async move {
            let tcp = TcpStream::connect(rest).await.unwrap();
            let (mut read, mut write) = tcp.into_split();
            let head = "PATCH /v1/integration/github-ocean HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
            write.write_all(head.as_bytes()).await.unwrap();
            let drip = tokio::spawn(async move {
                while write.write_all(b"1\r\n \r\n").await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
            let mut got = Vec::new();
            let mut chunk = [0u8; 4096];
            let answered = tokio::time::timeout(Duration::from_secs(8), async {
                loop {
                    match read.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&chunk[..n]),
                    }
                }
            })
            .await;
            drip.abort();
            assert!(answered.is_ok(), "the endless upload was still held after 8 s");
            let raw = String::from_utf8_lossy(&got);
            let (status, body, _) = parse_answer(&raw);
            assert_eq!(status, 408, "{raw}");
            assert_eq!(body["ok"], false, "{raw}");
            assert_eq!(body["error"], "request_timeout", "{raw}");
        }));
    }
    for a in attacks {
        a.await.unwrap();
    }
    assert!(
        fake.port.requests().is_empty(),
        "{:?}",
        fake.port.requests()
    );
    still_serves(&fake, server.mcp).await;
}

/// Defect 17: beyond the connection cap a connection gets 503 naming the setting (in each
/// listener's shape), the idle connections holding the slots are closed after the header
/// timeout, and then everyone is served again.
#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_cap_get_503_until_idle_ones_time_out() {
    let fake = FakePort::start().await;
    let server = start(&fake, |s| {
        s.max_connections = 10;
        s.header_timeout = Duration::from_secs(2);
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(TcpStream::connect(server.mcp).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (addr, rest) in [
        (server.mcp, false),
        (server.rest, true),
        (server.mcp, false),
    ] {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let path = if rest { "/v1/integration" } else { "/healthz" };
        tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let raw = read_until_closed(&mut tcp, Duration::from_secs(5)).await;
        let (status, body, head) = parse_answer(&raw);
        assert_eq!(status, 503, "{raw}");
        assert!(head.contains("retry-after: 1"), "{raw}");
        let message = if rest {
            assert_eq!(body["error"], "too_many_connections", "{raw}");
            body["message"].as_str().unwrap()
        } else {
            assert_eq!(body["id"], Value::Null, "{raw}");
            body["error"]["message"].as_str().unwrap()
        };
        assert!(
            message.contains("10 connections") && message.contains("--max-connections"),
            "{message}"
        );
    }
    // The idle ones are closed by the server.
    for mut tcp in idle {
        let raw = read_until_closed(&mut tcp, Duration::from_secs(6)).await;
        assert!(!raw.starts_with("HTTP/1.1 2"), "{raw}");
    }
    assert!(fake.port.requests().is_empty());
    still_serves(&fake, server.mcp).await;
}

/// Defect 17: with few file descriptors (`ulimit -n 128`), more idle connections than the
/// process could hold used to leave it unable to accept anyone, for good. The cap is fitted to
/// the limit, so the server keeps descriptors for itself and serves again once the idle
/// connections time out.
#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_cannot_exhaust_the_descriptors() {
    let fake = FakePort::start().await;
    let port = free_port();
    let script = format!(
        "ulimit -n 128 && exec '{BIN}' http --listen 127.0.0.1:{port} --header-timeout-secs 2"
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .env_clear()
        .env("PORT_API_KEY", STATIC_TOKEN)
        .env("PORT_BASE_URL", &fake.url)
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_healthy(port).await;
    let mut idle = Vec::new();
    for _ in 0..300 {
        if let Ok(tcp) = TcpStream::connect(("127.0.0.1", port)).await {
            idle.push(tcp);
        }
    }
    assert!(idle.len() > 128, "only {} connections opened", idle.len());
    // Once the held ones time out, the server is reachable again.
    let mut healthy = false;
    for _ in 0..100 {
        let r = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        if r.is_ok_and(|r| r.status() == 200) {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "unreachable after the idle connections");
    drop(idle);
    still_serves(&fake, SocketAddr::from(([127, 0, 0, 1], port))).await;
    sigterm(&child);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exited")
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("--max-connections lowered from 512 to 64"),
        "{stderr}"
    );
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"flood","version":"1"}}}"#;

async fn post_mcp(addr: SocketAddr, body: impl Into<reqwest::Body>) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .timeout(Duration::from_secs(10))
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Defect 18: sessions beyond the cap are refused with 503, Retry-After and a JSON-RPC error
/// naming the setting; abandoned sessions expire after the idle time, and then new clients
/// are served.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_flood_meets_the_cap_and_idle_sessions_expire() {
    let fake = FakePort::start().await;
    let server = start(&fake, |s| {
        s.max_sessions = 3;
        s.session_idle = Duration::from_secs(2);
    })
    .await;
    for _ in 0..3 {
        let r = post_mcp(server.mcp, INITIALIZE).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().contains_key("mcp-session-id"));
    }
    for _ in 0..5 {
        let r = post_mcp(server.mcp, INITIALIZE).await;
        assert_eq!(r.status(), 503);
        assert!(!r.headers().contains_key("mcp-session-id"));
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=5).contains(&retry));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["id"], 1);
        assert_eq!(body["error"]["code"], -32000);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("3 MCP sessions") && message.contains("--max-sessions"),
            "{message}"
        );
    }
    // The 2026-07-28 era needs no session: it is served at the cap.
    let discover = r#"{"jsonrpc":"2.0","id":7,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"d","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let r = reqwest::Client::new()
        .post(format!("http://{}/mcp", server.mcp))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "server/discover")
        .body(discover)
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 503, "{:?}", r.text().await);
    // The abandoned sessions expire; a real client then gets one.
    let mut served = false;
    for _ in 0..50 {
        if post_mcp(server.mcp, INITIALIZE).await.status() == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(served, "the idle sessions did not expire");
    assert!(fake.port.requests().is_empty());
    // That session is idle too by the time the real client comes.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    still_serves(&fake, server.mcp).await;
}

/// Defect 21: oversized requests get 413 with a JSON body naming the setting, on MCP (a
/// JSON-RPC error, with or without Content-Length) and on REST (Port's error shape); nothing
/// reaches Port. And a body that is not a JSON-RPC message gets a JSON-RPC error over HTTP too
/// (defect 22): 400 with `id: null`.
#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_unreadable_requests_get_json_errors() {
    let fake = FakePort::start().await;
    let server = start(&fake, |s| s.max_request_bytes = 64 * 1024).await;
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"update-integration","arguments":{{"identifier":"x","body":{{"title":"{}"}}}}}}}}"#,
        "a".repeat(100 * 1024)
    );
    // With a Content-Length, and streamed (chunked, no length).
    let streamed = reqwest::Body::wrap_stream(futures::stream::iter(
        big.as_bytes()
            .chunks(8192)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    ));
    for r in [
        post_mcp(server.mcp, big.clone()).await,
        post_mcp(server.mcp, streamed).await,
    ] {
        assert_eq!(r.status(), 413);
        assert_eq!(r.headers()["content-type"], "application/json");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["jsonrpc"], "2.0");
        assert_eq!(body["id"], Value::Null);
        assert_eq!(body["error"]["code"], -32600);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("65536 bytes") && message.contains("--max-request-bytes"),
            "{message}"
        );
    }
    let r = reqwest::Client::new()
        .patch(format!(
            "http://{}/v1/integration/github-ocean",
            server.rest
        ))
        .header("content-type", "application/json")
        .body(format!(r#"{{"title":"{}"}}"#, "a".repeat(100 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["ok"], false);
    assert_eq!(body["error"], "request_too_large");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("--max-request-bytes"),
        "{body}"
    );
    // Hostile ids and broken JSON over HTTP.
    for (line, code) in [
        (
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}"#,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":[1],"method":"tools/list"}"#,
            -32600,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}"#,
            -32600,
        ),
        (r#"{"jsonrpc":"2.0","id":1,"method":"#, -32700),
    ] {
        let r = post_mcp(server.mcp, line).await;
        assert_eq!(r.status(), 400, "{line}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["id"], Value::Null, "{line}: {body}");
        assert_eq!(body["error"]["code"], code, "{line}: {body}");
    }
    assert!(
        fake.port.requests().is_empty(),
        "{:?}",
        fake.port.requests()
    );
    still_serves(&fake, server.mcp).await;
    // Port's own 413 (JSON) passes through REST as Port sent it.
    fake.port.clear_requests();
    fake.port.script(ScriptedResponse::json(
        413,
        json!({"ok": false, "error": "request_too_large", "message": "Port's own limit"}),
    ));
    let r = reqwest::Client::new()
        .patch(format!(
            "http://{}/v1/integration/github-ocean",
            server.rest
        ))
        .header("content-type", "application/json")
        .body(r#"{"title":"t"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Port's own limit");
    assert_eq!(fake.single_request().method, "PATCH");
}

/// A stdio server process on the fake Port, with raw line access.
struct StdioProcess {
    child: Child,
    stdin: tokio::process::ChildStdin,
    out: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl StdioProcess {
    async fn start(fake: &FakePort, args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .env_clear()
            .env("PORT_API_KEY", STATIC_TOKEN)
            .env("PORT_BASE_URL", &fake.url)
            .arg("stdio")
            .args(args)
            .kill_on_drop(true)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut p = StdioProcess { child, stdin, out };
        p.send(r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#).await;
        assert_eq!(p.next().await["id"], 0);
        p.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
        p
    }

    async fn send(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
    }

    /// The next line the server writes (at most 15 s away).
    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(15), self.out.next_line())
            .await
            .expect("the server answered")
            .unwrap()
            .expect("stdout still open");
        serde_json::from_str(&line).unwrap()
    }

    /// A `get-integration` call is answered, and it is all Port received.
    async fn still_serves(&mut self, fake: &FakePort, id: u64) {
        self.send(
            &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "get-integration", "arguments": {"identifier": "github-ocean"}}})
            .to_string(),
        )
        .await;
        let answer = self.next().await;
        assert_eq!(answer["id"], id, "{answer}");
        assert_eq!(answer["result"]["isError"], false, "{answer}");
        let only = fake.single_request();
        assert_eq!(only.path, "/v1/integration/github-ocean");
    }

    /// Peak resident memory so far, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id().unwrap())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

/// Defect 19: a line longer than --max-request-bytes is answered with an error naming the
/// setting (with the request's id, which came first) and skipped without being held in memory;
/// the server keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn a_huge_stdio_line_is_refused_without_being_buffered() {
    let fake = FakePort::start().await;
    let mut p = StdioProcess::start(&fake, &["--max-request-bytes", "65536"]).await;
    let before = p.peak_rss_kib();
    // 64 MiB in one line, written in pieces as a host would stream it.
    p.stdin
        .write_all(br#"{"jsonrpc":"2.0","id":"big-1","method":"tools/call","params":{"name":"update-integration","arguments":{"identifier":"x","body":{"title":""#)
        .await
        .unwrap();
    let piece = vec![b'a'; 1 << 20];
    for _ in 0..64 {
        p.stdin.write_all(&piece).await.unwrap();
    }
    p.stdin.write_all(b"\"}}}}\n").await.unwrap();
    let refused = p.next().await;
    assert_eq!(refused["id"], "big-1", "{refused}");
    assert_eq!(refused["error"]["code"], -32600);
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("65536 bytes") && message.contains("--max-request-bytes"),
        "{message}"
    );
    let grown = p.peak_rss_kib().saturating_sub(before);
    assert!(
        grown < 16 * 1024,
        "a 64 MiB line grew the peak RSS by {grown} KiB"
    );
    // A line without an id up front gets `id: null`.
    p.send(&format!(
        r#"{{"jsonrpc":"2.0","method":"x","params":"{}","id":5}}"#,
        "b".repeat(70_000)
    ))
    .await;
    assert_eq!(p.next().await["id"], Value::Null);
    assert!(fake.port.requests().is_empty());
    p.still_serves(&fake, 9).await;
}

/// Defect 22: JSON-RPC 2.0 on stdio: a request with `id: null` is answered (it is no
/// notification), and an id that cannot be echoed (object, array, fraction, boolean) is
/// answered with `id: null` and Invalid Request. A notification still gets nothing.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_json_rpc_ids_on_stdio() {
    let fake = FakePort::start().await;
    let mut p = StdioProcess::start(&fake, &[]).await;
    for id in ["null", r#"{"a":1}"#, "[1,2]", "1.5", "true"] {
        p.send(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"delete-integration","arguments":{{"identifier":"gh"}}}}}}"#
        ))
        .await;
        let answer = p.next().await;
        assert_eq!(answer["id"], Value::Null, "{id}: {answer}");
        assert_eq!(answer["error"]["code"], -32600, "{id}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("`id` must be a string or an integer"),
            "{answer}"
        );
    }
    // An unknown notification: no answer; the next answer is the next request's.
    p.send(r#"{"jsonrpc":"2.0","method":"notifications/whatever"}"#)
        .await;
    p.send(r#"{"jsonrpc":"2.0","id":"s","method":"tools/list"}"#)
        .await;
    assert_eq!(p.next().await["id"], "s");
    assert!(fake.port.requests().is_empty(), "nothing was deleted");
    p.still_serves(&fake, 10).await;
}

/// How the process ended, waiting at most `limit` for it.
async fn exited_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    tokio::time::timeout(limit, child.wait())
        .await
        .unwrap_or_else(|_| panic!("still running {limit:?} after SIGTERM"))
        .unwrap()
}

/// A mapping preview that never ends (on today's jq, `last(range(1e18))` runs for ever).
fn endless_preview() -> Value {
    json!({
        "config": {
            "kind": "repository",
            "selector": {"query": "true"},
            "port": {"entity": {"mappings": [{
                "identifier": "last(range(1e18)) | tostring",
                "blueprint": "'b'"
            }]}}
        },
        "items": [{"name": "a"}]
    })
}

/// Defect 20, HTTP: SIGTERM while calls never end (a Port that answers after a minute with a
/// two-minute budget, and a preview that loops): the process exits soon after the grace, and
/// the clients get an answer or a closed connection, never a hang.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_endless_calls_after_the_grace_on_http() {
    let fake = FakePort::start().await;
    fake.port.script(
        ScriptedResponse::json(200, json!({"ok": true, "integrations": []}))
            .after(Duration::from_secs(60)),
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .env_clear()
        .env("PORT_API_KEY", STATIC_TOKEN)
        .env("PORT_BASE_URL", &fake.url)
        .args(["http", "--listen", &listen, "--shutdown-grace-secs", "1"])
        .args(["--timeout-secs", "120", "--budget-secs", "120"])
        .args(["--toolsets", "integrations,mapping"])
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_healthy(port).await;
    let mut calls = Vec::new();
    for (tool, arguments) in [
        ("get-all-integrations", json!({})),
        ("preview-integration-mapping", endless_preview()),
    ] {
        // rmcp's client retries a cut stream for ever by default: once here, so that a closed
        // connection shows as an error rather than as a client waiting on its own.
        let mut config =
            StreamableHttpClientTransportConfig::with_uri(format!("http://{listen}/mcp"));
        let mut once = FixedInterval::default();
        once.max_times = Some(1);
        once.duration = Duration::from_millis(100);
        config.retry_config = Arc::new(once);
        let client = ().serve(StreamableHttpClientTransport::from_config(config)).await.unwrap();
        calls.push(tokio::spawn(async move {
            let r = client
                .call_tool(CallToolRequestParams::new(tool).with_arguments(args(arguments)))
                .await;
            (r, client)
        }));
    }
    while fake.api_requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigterm(&child);
    // Grace 1 s, then the calls are ended: well within 8 s.
    let status = exited_within(&mut child, Duration::from_secs(8)).await;
    assert!(status.code().is_some(), "{status:?}");
    let mut answers = Vec::new();
    for call in calls {
        let (answer, _client) = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("the client was not left hanging")
            .unwrap();
        answers.push(answer);
    }
    // The call waiting on Port is answered: ended by the shutdown.
    let waiting = answers[0]
        .as_ref()
        .expect("the call waiting on Port was answered");
    assert!(is_error(waiting), "{waiting:?}");
    assert!(
        text(waiting).contains("shut down before this call finished"),
        "{}",
        text(waiting)
    );
    // The preview cannot be interrupted where it runs: an error answer or a closed connection.
    if let Ok(r) = &answers[1] {
        assert!(is_error(r), "{r:?}");
    }
    assert_eq!(fake.api_requests().len(), 1, "nothing was retried");
}

/// Defect 20, stdio: on SIGTERM, a call that finishes within the grace is still answered
/// (today's stdio dropped it at once), new calls are refused as the server drains, and a call
/// that never ends is abandoned after the grace: the process exits, stdout closes.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_on_stdio_answers_what_ends_in_the_grace_and_exits() {
    let fake = FakePort::start().await;
    fake.port.script(
        ScriptedResponse::json(200, json!({"ok": true, "integrations": []}))
            .after(Duration::from_millis(1500)),
    );
    let mut p = StdioProcess::start(
        &fake,
        &[
            "--shutdown-grace-secs",
            "5",
            "--timeout-secs",
            "120",
            "--budget-secs",
            "120",
        ],
    )
    .await;
    p.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-all-integrations","arguments":{}}}"#).await;
    while fake.api_requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sigterm(&p.child);
    let answer = p.next().await;
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    let status = exited_within(&mut p.child, Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");

    // A call that outlives the grace: the process still exits soon after it.
    fake.port.clear_requests();
    fake.port
        .script(ScriptedResponse::json(200, json!({"ok": true})).after(Duration::from_secs(60)));
    let mut p = StdioProcess::start(
        &fake,
        &[
            "--shutdown-grace-secs",
            "1",
            "--timeout-secs",
            "120",
            "--budget-secs",
            "120",
            "--toolsets",
            "integrations,mapping",
        ],
    )
    .await;
    p.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get-all-integrations","arguments":{}}}"#).await;
    p.send(
        &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "preview-integration-mapping", "arguments": endless_preview()}})
        .to_string(),
    )
    .await;
    while fake.api_requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigterm(&p.child);
    let status = exited_within(&mut p.child, Duration::from_secs(8)).await;
    assert!(status.code().is_some(), "{status:?}");
    // stdout ends rather than hanging; the call waiting on Port was answered as ended, and
    // nothing came out as a success.
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        let mut lines = Vec::new();
        while let Ok(Some(line)) = p.out.next_line().await {
            lines.push(serde_json::from_str::<Value>(&line).unwrap());
        }
        lines
    })
    .await
    .expect("stdout closed");
    let ended = rest
        .iter()
        .find(|v| v["id"] == 2)
        .unwrap_or_else(|| panic!("call 2 was not answered: {rest:?}"));
    assert_eq!(ended["result"]["isError"], true, "{ended}");
    for v in &rest {
        assert_ne!(v["result"]["isError"], false, "{v}");
    }
    assert_eq!(fake.api_requests().len(), 1, "nothing was retried");
}
