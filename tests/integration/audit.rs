//! The audit trail: exactly one line per write call on every path (rmcp and the lean path over
//! HTTP and stdio, REST), none for reads; each field's exact value (who, how admitted, the
//! transport, the tool, the identifier, the arguments' digest computed here independently, the
//! outcome, Port's status and trace id); nothing secret in it; lines on disk before the answer
//! (`kill -9` right after it loses none); start errors; and `--log-format json`.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use port_integrations_mcp::{
    config::{Credentials, HttpSettings, OAuthSettings, Secret},
    port::PortClient,
    sandbox::{SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, ScriptedResponse},
    telemetry::{Parts, Telemetry, audit::Sink},
    tools::PortTools,
    transport::{http::app, rest},
};
use rmcp::{
    model::{CallToolRequest, CallToolRequestParams, ClientRequest},
    service::{ClientLifecycleMode, ClientServiceExt, PeerRequestOptions},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    process::Command,
};
use tokio_util::sync::CancellationToken;

use crate::{common::*, http::http_args, issuer::*};

const BIN: &str = env!("CARGO_BIN_EXE_port-integrations-mcp");
/// The HTTP server's inbound token in these tests.
const INBOUND: &str = "inbound-audit-token-77";
/// A value inside the configs sent: it must never reach the trail.
const PRIVATE: &str = "private-config-value-5150";

/// A fresh path for an audit file (removed if a previous run left it).
fn audit_path(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("pim-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{name}-{}.log",
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// Tools whose audit lines go to `path`, over a client of `port` with `credentials`.
fn audited(port: &FakePort, credentials: Credentials, path: &Path) -> PortTools {
    let telemetry = Telemetry::new(Parts {
        audit: Sink::new(Some(path)).unwrap(),
        ..Default::default()
    });
    PortTools::new(
        PortClient::new(&port.settings(credentials))
            .unwrap()
            .with_telemetry(telemetry),
    )
}

/// The audit file's text ("" before its first line).
fn file_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The lines of an audit file, each checked to be one JSON object with a well-formed time,
/// returned without the time (the rest is compared exactly).
fn lines(path: &Path) -> Vec<Value> {
    let text = file_text(path);
    assert!(text.is_empty() || text.ends_with('\n'), "{text}");
    text.lines().map(without_time).collect()
}

fn without_time(line: &str) -> Value {
    let mut v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let time = v
        .as_object_mut()
        .unwrap()
        .remove("time")
        .unwrap_or_else(|| panic!("no time: {line}"));
    let time = time.as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(time).is_ok() && time.ends_with('Z'),
        "{time}"
    );
    // Milliseconds: 2026-12-01T15:47:46.123Z.
    assert_eq!(time.len(), 24, "{time}");
    v
}

/// SHA-256 hex of `canonical`, written out by hand in each test: the digest the line must hold.
fn sha256(canonical: &str) -> String {
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The line every test expects, from its parts.
#[allow(clippy::too_many_arguments)]
fn line(
    (caller, auth, transport): (&str, &str, &str),
    (sub, client_id): (Option<&str>, Option<&str>),
    tool: &str,
    identifier: Option<&str>,
    args_sha256: Option<String>,
    outcome: &str,
    port_status: Option<u16>,
    port_trace_id: Option<&str>,
) -> Value {
    json!({
        "caller": caller,
        "auth": auth,
        "sub": sub,
        "client_id": client_id,
        "transport": transport,
        "tool": tool,
        "identifier": identifier,
        "args_sha256": args_sha256,
        "outcome": outcome,
        "port_status": port_status,
        "port_trace_id": port_trace_id,
    })
}

/// Nothing secret, and nothing of the configs, in `text`.
fn no_secret(text: &str, more: &[&str]) {
    for secret in [
        STATIC_TOKEN,
        SANDBOX_CLIENT_SECRET,
        "sandbox-access-token",
        INBOUND,
        PRIVATE,
    ]
    .iter()
    .chain(more)
    {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

fn requests(port: &FakePort) -> Vec<String> {
    port.api_requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn ok_answer(trace: &str) -> ScriptedResponse {
    ScriptedResponse::json(200, json!({"ok": true})).with_trace_id(trace)
}

fn not_found(trace: &str) -> ScriptedResponse {
    ScriptedResponse::json(
        404,
        json!({"ok": false, "error": "not_found", "message": "no such integration"}),
    )
    .with_trace_id(trace)
}

async fn serve_mcp(tools: PortTools, settings: &HttpSettings) -> SocketAddr {
    listen(app(tools, settings, CancellationToken::new())).await
}

fn http_client_config(addr: SocketAddr) -> StreamableHttpClientTransportConfig {
    StreamableHttpClientTransportConfig::with_uri(format!("http://{addr}/mcp"))
}

// ------------------------------------------------------------------------------- MCP over HTTP

#[tokio::test]
async fn http_with_the_static_token_one_line_per_write_on_both_paths() {
    let port = FakePort::start().await;
    let path = audit_path("http-static");
    let mut settings = http_args(false);
    settings.auth_token = Some(Secret::new(INBOUND));
    let addr = serve_mcp(audited(&port, static_token(), &path), &settings).await;
    let client = ()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_config(
                http_client_config(addr).auth_header(INBOUND),
            ),
            ClientLifecycleMode::Initialize,
        )
        .await
        .unwrap();

    // The lean path (update-integration only forwards), then rmcp's (delete asks first).
    port.port.script(ok_answer("trace-update-1"));
    let r = call(
        &client,
        "update-integration",
        json!({"identifier": "github-ocean", "body": {"title": PRIVATE}}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(lines(&path).len(), 1, "on disk before the answer");
    port.port.script(not_found("trace-ghost-2"));
    let r = call(
        &client,
        "delete-integration",
        json!({"identifier": "ghost"}),
    )
    .await;
    assert!(is_error(&r));
    assert!(
        text(&r).starts_with("Port answered HTTP 404"),
        "{}",
        text(&r)
    );
    // A read leaves no line.
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r));
    // Refused before Port: an invalid (hostile) identifier.
    let hostile = format!("evil\n{{\"outcome\":\"ok\"}}\"{}", "x".repeat(400));
    let r = call(
        &client,
        "update-integration-s-config",
        json!({"identifier": hostile, "body": {"config": {"resources": []}}}),
    )
    .await;
    assert!(is_error(&r));
    assert!(
        text(&r).starts_with("Invalid argument `identifier`"),
        "{}",
        text(&r)
    );
    client.cancel().await.unwrap();

    // Read-only mode asked by the request: rmcp refuses the write, and the trail says so.
    let mut read_only = std::collections::HashMap::new();
    read_only.insert(
        reqwest::header::HeaderName::from_static("x-read-only-mode"),
        reqwest::header::HeaderValue::from_static("1"),
    );
    let client = ()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_config(
                http_client_config(addr)
                    .auth_header(INBOUND)
                    .custom_headers(read_only),
            ),
            ClientLifecycleMode::Initialize,
        )
        .await
        .unwrap();
    let refused = client
        .call_tool(
            CallToolRequestParams::new("delete-integration")
                .with_arguments(args(json!({"identifier": "github-ocean"}))),
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    client.cancel().await.unwrap();

    assert_eq!(
        requests(&port),
        [
            "PATCH /v1/integration/github-ocean",
            "DELETE /v1/integration/ghost",
            "GET /v1/integration/github-ocean",
        ]
    );
    let static_http = ("static token", "static token", "http");
    let mut kept = hostile.as_bytes()[..256].to_vec();
    kept.extend_from_slice("…".as_bytes());
    let kept = String::from_utf8(kept).unwrap();
    assert_eq!(
        lines(&path),
        [
            line(
                static_http,
                (None, None),
                "update-integration",
                Some("github-ocean"),
                Some(sha256(&format!(
                    r#"{{"body":{{"title":"{PRIVATE}"}},"identifier":"github-ocean"}}"#
                ))),
                "ok",
                Some(200),
                Some("trace-update-1"),
            ),
            line(
                static_http,
                (None, None),
                "delete-integration",
                Some("ghost"),
                Some(sha256(r#"{"identifier":"ghost"}"#)),
                "error",
                Some(404),
                Some("trace-ghost-2"),
            ),
            line(
                static_http,
                (None, None),
                "update-integration-s-config",
                Some(&kept),
                Some(sha256(&format!(
                    r#"{{"body":{{"config":{{"resources":[]}}}},"identifier":{}}}"#,
                    serde_json::to_string(&hostile).unwrap()
                ))),
                "error",
                None,
                None,
            ),
            line(
                static_http,
                (None, None),
                "delete-integration",
                Some("github-ocean"),
                Some(sha256(r#"{"identifier":"github-ocean"}"#)),
                "refused",
                None,
                None,
            ),
        ]
    );
    let text = file_text(&path);
    assert_eq!(
        text.lines().count(),
        4,
        "one line each, nothing forged: {text}"
    );
    no_secret(&text, &[]);
}

#[tokio::test]
async fn http_without_inbound_auth_is_unauthenticated_in_the_2026_era_too() {
    let port = FakePort::start().await;
    let path = audit_path("http-open");
    let addr = serve_mcp(audited(&port, static_token(), &path), &http_args(true)).await;
    let client = ()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_config(http_client_config(addr)),
            modern(),
        )
        .await
        .unwrap();
    port.port.script(ok_answer("trace-open"));
    let r = call(
        &client,
        "update-integration-s-config",
        json!({"identifier": "github-ocean", "body": {"config": {"resources": [], "x": PRIVATE}}}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    let r = call(&client, "get-all-integrations", json!({})).await;
    assert!(!is_error(&r));
    client.cancel().await.unwrap();
    assert_eq!(
        lines(&path),
        [line(
            ("unauthenticated", "none", "http"),
            (None, None),
            "update-integration-s-config",
            Some("github-ocean"),
            Some(sha256(&format!(
                r#"{{"body":{{"config":{{"resources":[],"x":"{PRIVATE}"}}}},"identifier":"github-ocean"}}"#
            ))),
            "ok",
            Some(200),
            Some("trace-open"),
        )]
    );
    no_secret(&file_text(&path), &[]);
}

#[tokio::test]
async fn http_with_oauth_names_the_subject_and_its_client() {
    let port = FakePort::start().await;
    let path = audit_path("http-oauth");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let public_url = format!("http://{addr}/mcp");
    let issuer = Issuer::start(&[&public_url]).await;
    let mut settings = http_args(false);
    settings.oauth = Some(OAuthSettings::new(vec![issuer.issuer.clone()], &public_url).unwrap());
    let router = app(
        audited(&port, static_token(), &path),
        &settings,
        CancellationToken::new(),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });

    let writer = issuer
        .sign(json!({"claims": {"sub": "alice@example.com"}}))
        .await;
    let client = ()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_config(
                http_client_config(addr).auth_header(writer.clone()),
            ),
            ClientLifecycleMode::Initialize,
        )
        .await
        .unwrap();
    port.port.script(ok_answer("trace-alice"));
    let r = call(
        &client,
        "delete-integration",
        json!({"identifier": "k8s-exporter-eu"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    client.cancel().await.unwrap();
    // A token with the read scope only: the gate refuses the write before anything runs.
    let reader = issuer
        .sign(json!({"claims": {"sub": "bob@example.com", "scope": READ}}))
        .await;
    let refused = reqwest::Client::new()
        .post(&public_url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(&reader)
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "update-integration",
                "arguments": {"identifier": "github-ocean", "body": {"title": PRIVATE}}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(requests(&port), ["DELETE /v1/integration/k8s-exporter-eu"]);
    let client_id = issuer.client_id();
    assert_eq!(
        lines(&path),
        [
            line(
                ("alice@example.com", "oauth", "http"),
                (Some("alice@example.com"), Some(&client_id)),
                "delete-integration",
                Some("k8s-exporter-eu"),
                Some(sha256(r#"{"identifier":"k8s-exporter-eu"}"#)),
                "ok",
                Some(200),
                Some("trace-alice"),
            ),
            line(
                ("bob@example.com", "oauth", "http"),
                (Some("bob@example.com"), Some(&client_id)),
                "update-integration",
                Some("github-ocean"),
                Some(sha256(&format!(
                    r#"{{"body":{{"title":"{PRIVATE}"}},"identifier":"github-ocean"}}"#
                ))),
                "refused",
                None,
                None,
            ),
        ]
    );
    let text = file_text(&path);
    for token in [&writer, &reader] {
        let signature = token.rsplit('.').next().unwrap();
        no_secret(&text, &[token.as_str(), signature]);
    }
}

/// A write cancelled while Port has its request still leaves a line: the change may be made.
/// rmcp's path ends the call with a "cancelled" error result (`error`); the lean path drops it
/// (`cancelled`).
#[tokio::test]
async fn a_cancelled_write_still_leaves_its_line() {
    let port = FakePort::start().await;
    let path = audit_path("cancelled");
    let client = connect_tools(
        audited(&port, static_token(), &path),
        (),
        ClientLifecycleMode::Initialize,
    )
    .await;
    port.port
        .script(ok_answer("trace-slow").after(Duration::from_secs(8)));
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new("update-integration")
            .with_arguments(args(json!({"identifier": "github-ocean"}))),
    ));
    let handle = client
        .peer()
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    wait_for_requests(&port, 1).await;
    assert!(lines(&path).is_empty());
    handle.cancel(Some("stop".into())).await.unwrap();
    wait_for_abort(&port).await;
    wait_for_lines(&path, 1).await;

    // The binary on stdio: the lean path takes update-integration.
    port.port.clear_requests();
    port.port
        .script(ok_answer("trace-slow").after(Duration::from_secs(8)));
    let mut server = StdioServer::spawn(&port, &["--audit-log", path.to_str().unwrap()], &[]);
    server.initialize().await;
    server
        .send(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "update-integration", "arguments": {"identifier": "github-ocean"}}}),
        )
        .await;
    wait_for_requests(&port, 1).await;
    server
        .send(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": 2, "reason": "stop"}}),
        )
        .await;
    wait_for_lines(&path, 2).await;
    let (status, stderr) = server.close().await;
    assert!(status.success(), "{stderr}");

    let cancelled = |outcome| {
        line(
            ("stdio", "stdio", "stdio"),
            (None, None),
            "update-integration",
            Some("github-ocean"),
            Some(sha256(r#"{"identifier":"github-ocean"}"#)),
            outcome,
            None,
            None,
        )
    };
    assert_eq!(lines(&path), [cancelled("error"), cancelled("cancelled")]);
}

/// Waits (up to 5 s) until the fake Port has `n` requests.
async fn wait_for_requests(port: &FakePort, n: usize) {
    for _ in 0..250 {
        if port.api_requests().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(port.api_requests().len(), n, "{:?}", requests(port));
}

/// Waits (up to 5 s) until the audit file has `n` lines (written with nobody waiting).
async fn wait_for_lines(path: &Path, n: usize) {
    for _ in 0..250 {
        if file_text(path).lines().count() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(file_text(path).lines().count(), n, "{}", file_text(path));
}

// ------------------------------------------------------------------------------------ REST

#[tokio::test]
async fn rest_one_line_per_write_with_the_same_digest_as_mcp() {
    let port = FakePort::start().await;
    let path = audit_path("rest");
    let mut settings = http_args(true);
    settings.auth_token = Some(Secret::new(INBOUND));
    let addr = listen(rest::router(
        audited(&port, static_token(), &path),
        &settings,
    ))
    .await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{addr}/v1/integration{p}");

    port.port.script(ok_answer("trace-rest-patch"));
    let r = http
        .patch(url("/github-ocean"))
        .bearer_auth(INBOUND)
        .json(&json!({"title": PRIVATE}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    port.port.script(not_found("trace-rest-404"));
    let r = http
        .delete(url("/ghost"))
        .bearer_auth(INBOUND)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http.get(url("")).bearer_auth(INBOUND).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .delete(url("/github-ocean"))
        .bearer_auth(INBOUND)
        .header("x-read-only-mode", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Refused by the inbound token check: not a call at all, no line.
    let r = http.delete(url("/github-ocean")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    assert_eq!(
        requests(&port),
        [
            "PATCH /v1/integration/github-ocean",
            "DELETE /v1/integration/ghost",
            "GET /v1/integration",
        ]
    );
    let rest = ("static token", "static token", "rest");
    let update_digest = sha256(&format!(
        r#"{{"body":{{"title":"{PRIVATE}"}},"identifier":"github-ocean"}}"#
    ));
    assert_eq!(
        lines(&path),
        [
            line(
                rest,
                (None, None),
                "update-integration",
                Some("github-ocean"),
                Some(update_digest.clone()),
                "ok",
                Some(200),
                Some("trace-rest-patch"),
            ),
            line(
                rest,
                (None, None),
                "delete-integration",
                Some("ghost"),
                Some(sha256(r#"{"identifier":"ghost"}"#)),
                "error",
                Some(404),
                Some("trace-rest-404"),
            ),
            line(
                rest,
                (None, None),
                "delete-integration",
                Some("github-ocean"),
                Some(sha256(r#"{"identifier":"github-ocean"}"#)),
                "refused",
                None,
                None,
            ),
        ]
    );
    no_secret(&file_text(&path), &[]);

    // The same update through MCP (stdio-like, in memory) has the same digest.
    let client = connect_tools(
        audited(&port, static_token(), &path),
        (),
        ClientLifecycleMode::Initialize,
    )
    .await;
    let r = call(
        &client,
        "update-integration",
        json!({"body": {"title": PRIVATE}, "identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r));
    let all = lines(&path);
    assert_eq!(all.len(), 4);
    assert_eq!(all[3]["args_sha256"], update_digest.as_str());
    assert_eq!(all[3]["transport"], "stdio");
}

// ------------------------------------------------------------------------- the real binary

/// The binary on stdio, driven by hand: every stdout line must be a JSON-RPC message.
struct StdioServer {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
}

impl StdioServer {
    fn spawn(port: &FakePort, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .env_clear()
            .env("PORT_BASE_URL", &port.url)
            .env("PORT_CLIENT_ID", SANDBOX_CLIENT_ID)
            .env("PORT_CLIENT_SECRET", SANDBOX_CLIENT_SECRET)
            .envs(env.iter().copied())
            .arg("stdio")
            .args(extra)
            .kill_on_drop(true)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut err = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut all = String::new();
            let _ = err.read_to_string(&mut all).await;
            all
        });
        StdioServer {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    async fn send(&mut self, message: Value) {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The answer to request `id` (every line before it must be JSON-RPC too).
    async fn answer(&mut self, id: u64) -> Value {
        let read = async {
            loop {
                let line = self.stdout.next_line().await.unwrap().expect("stdout open");
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON on stdout ({e}): {line}"));
                assert_eq!(v["jsonrpc"], "2.0", "{line}");
                if v["id"] == id {
                    return v;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .expect("an answer")
    }

    async fn initialize(&mut self) {
        self.send(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "audit-test", "version": "1"}}}),
        )
        .await;
        let init = self.answer(1).await;
        assert!(init["result"]["serverInfo"].is_object(), "{init}");
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
    }

    async fn call(&mut self, id: u64, tool: &str, arguments: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}}))
            .await;
        self.answer(id).await
    }

    /// Closes stdin (the host went away) and returns the exit status and stderr.
    async fn close(mut self) -> (std::process::ExitStatus, String) {
        drop(self.stdin);
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("exited")
            .unwrap();
        let stderr = tokio::time::timeout(Duration::from_secs(5), self.stderr)
            .await
            .expect("stderr closed")
            .unwrap();
        (status, stderr)
    }
}

#[tokio::test]
async fn stdio_binary_writes_the_file_and_nothing_secret_anywhere() {
    let port = FakePort::start().await;
    let path = audit_path("stdio");
    let mut server = StdioServer::spawn(
        &port,
        &["--audit-log", path.to_str().unwrap()],
        &[("PORT_MCP_LOG", "trace")],
    );
    server.initialize().await;
    // The lean path (update-integration-s-config), then rmcp's (delete), then a read.
    port.port.script(ok_answer("trace-stdio-config"));
    let config = json!({"config": {"resources": [], "secretish": PRIVATE}});
    let r = server
        .call(
            2,
            "update-integration-s-config",
            json!({"identifier": "github-ocean", "body": config}),
        )
        .await;
    assert_eq!(r["result"]["isError"], false, "{r}");
    port.port.script(not_found("trace-stdio-404"));
    let r = server
        .call(3, "delete-integration", json!({"identifier": "ghost"}))
        .await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    let r = server
        .call(4, "get-integration", json!({"identifier": "github-ocean"}))
        .await;
    assert!(r["result"]["isError"] != true, "{r}");
    let (status, stderr) = server.close().await;
    assert!(status.success(), "{stderr}");

    assert_eq!(
        requests(&port),
        [
            "PATCH /v1/integration/github-ocean/config",
            "DELETE /v1/integration/ghost",
            "GET /v1/integration/github-ocean",
        ]
    );
    let stdio = ("stdio", "stdio", "stdio");
    assert_eq!(
        lines(&path),
        [
            line(
                stdio,
                (None, None),
                "update-integration-s-config",
                Some("github-ocean"),
                Some(sha256(&format!(
                    r#"{{"body":{{"config":{{"resources":[],"secretish":"{PRIVATE}"}}}},"identifier":"github-ocean"}}"#
                ))),
                "ok",
                Some(200),
                Some("trace-stdio-config"),
            ),
            line(
                stdio,
                (None, None),
                "delete-integration",
                Some("ghost"),
                Some(sha256(r#"{"identifier":"ghost"}"#)),
                "error",
                Some(404),
                Some("trace-stdio-404"),
            ),
        ]
    );
    // With a file, the lines go there only; stderr says where they go.
    assert!(stderr.contains("audit lines go to --audit-log"), "{stderr}");
    assert!(!stderr.contains("write call"), "{stderr}");
    no_secret(&file_text(&path), &[]);
    no_secret(&stderr, &[]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// The answer is sent only once the line is on disk: SIGKILL the moment it arrives, and the
/// line is there.
#[tokio::test]
async fn killed_right_after_the_answer_the_line_is_on_disk() {
    let port = FakePort::start().await;
    let path = audit_path("kill");
    for (tool, arguments, canonical) in [
        // The lean path and rmcp's, each in a process of its own.
        (
            "update-integration",
            json!({"identifier": "github-ocean", "body": {"title": "T"}}),
            r#"{"body":{"title":"T"},"identifier":"github-ocean"}"#,
        ),
        (
            "delete-integration",
            json!({"identifier": "k8s-exporter-eu"}),
            r#"{"identifier":"k8s-exporter-eu"}"#,
        ),
    ] {
        let before = file_text(&path).lines().count();
        let mut server = StdioServer::spawn(&port, &["--audit-log", path.to_str().unwrap()], &[]);
        server.initialize().await;
        let r = server.call(2, tool, arguments).await;
        server.child.start_kill().unwrap();
        assert_eq!(r["result"]["isError"], false, "{r}");
        let status = server.child.wait().await.unwrap();
        assert!(!status.success());
        let all = lines(&path);
        assert_eq!(all.len(), before + 1, "{tool}: the line was lost");
        let last = &all[before];
        assert_eq!(last["tool"], tool);
        assert_eq!(last["outcome"], "ok");
        assert_eq!(last["port_status"], 200);
        assert_eq!(last["args_sha256"], sha256(canonical).as_str());
    }
}

/// The same over HTTP: the binary with the static inbound token, and the file named by the
/// environment.
#[tokio::test]
async fn killed_right_after_an_http_answer_the_line_is_on_disk() {
    let port = FakePort::start().await;
    let path = audit_path("kill-http");
    let listen = free_port();
    let mut child = Command::new(BIN)
        .env_clear()
        .env("PORT_API_KEY", STATIC_TOKEN)
        .env("PORT_BASE_URL", &port.url)
        .env("PORT_MCP_AUTH_TOKEN", INBOUND)
        .env("PORT_MCP_AUDIT_LOG", &path)
        .args(["http", "--listen", &format!("127.0.0.1:{listen}")])
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_healthy(listen).await;
    let addr = SocketAddr::from(([127, 0, 0, 1], listen));
    let client = ()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_config(
                http_client_config(addr).auth_header(INBOUND),
            ),
            ClientLifecycleMode::Initialize,
        )
        .await
        .unwrap();
    port.port.script(ok_answer("trace-kill-http"));
    let r = call(
        &client,
        "update-integration",
        json!({"identifier": "github-ocean", "body": {"title": "T"}}),
    )
    .await;
    child.start_kill().unwrap();
    assert!(!is_error(&r), "{r:?}");
    child.wait().await.unwrap();
    assert_eq!(
        lines(&path),
        [line(
            ("static token", "static token", "http"),
            (None, None),
            "update-integration",
            Some("github-ocean"),
            Some(sha256(
                r#"{"body":{"title":"T"},"identifier":"github-ocean"}"#
            )),
            "ok",
            Some(200),
            Some("trace-kill-http"),
        )]
    );
    no_secret(&file_text(&path), &[]);
}

#[tokio::test]
async fn json_log_format_every_stderr_line_is_json_and_stdout_is_the_protocol() {
    let port = FakePort::start().await;
    let mut server = StdioServer::spawn(
        &port,
        &[],
        &[("PORT_MCP_LOG", "trace"), ("PORT_MCP_LOG_FORMAT", "json")],
    );
    server.initialize().await;
    port.port.script(ok_answer("trace-json"));
    let r = server
        .call(
            2,
            "update-integration",
            json!({"identifier": "github-ocean\n\"forged\"", "body": {"title": PRIVATE}}),
        )
        .await;
    // An invalid identifier: refused before Port, and audited all the same.
    assert_eq!(r["result"]["isError"], true, "{r}");
    let r = server
        .call(
            3,
            "update-integration",
            json!({"identifier": "github-ocean"}),
        )
        .await;
    assert_eq!(r["result"]["isError"], false, "{r}");
    let (status, stderr) = server.close().await;
    assert!(status.success(), "{stderr}");
    let logs: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(logs.len() > 10, "trace level logs a lot: {stderr}");
    for l in &logs {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
    }
    let audit: Vec<&Value> = logs.iter().filter(|l| l["target"] == "audit").collect();
    assert_eq!(audit.len(), 2, "{stderr}");
    let fields = |v: &Value| {
        let mut f = v["fields"].clone();
        let time = f.as_object_mut().unwrap().remove("time").unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(time.as_str().unwrap()).is_ok());
        f
    };
    assert_eq!(audit[0]["level"], "INFO");
    assert_eq!(
        fields(audit[0]),
        json!({
            "message": "write call",
            "caller": "stdio",
            "auth": "stdio",
            "transport": "stdio",
            "tool": "update-integration",
            "identifier": "github-ocean\n\"forged\"",
            "args_sha256": sha256(&format!(
                r#"{{"body":{{"title":"{PRIVATE}"}},"identifier":"github-ocean\n\"forged\""}}"#
            )),
            "outcome": "error",
        })
    );
    assert_eq!(
        fields(audit[1]),
        json!({
            "message": "write call",
            "caller": "stdio",
            "auth": "stdio",
            "transport": "stdio",
            "tool": "update-integration",
            "identifier": "github-ocean",
            "args_sha256": sha256(r#"{"identifier":"github-ocean"}"#),
            "outcome": "ok",
            "port_status": 200,
            "port_trace_id": "trace-json",
        })
    );
    no_secret(&stderr, &[]);
    assert_eq!(requests(&port), ["PATCH /v1/integration/github-ocean"]);
}

#[tokio::test]
async fn an_audit_log_that_cannot_be_opened_stops_the_start() {
    let dir = audit_path("start").with_extension("d");
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("no/such/dir/audit.log");
    // Arguments, environment, exit code, the line stderr must hold.
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, i32, String);
    let cases: [Case; 4] = [
        (
            vec!["stdio", "--audit-log", missing.to_str().unwrap()],
            vec![],
            1,
            format!(
                "port-integrations-mcp: cannot open the audit log {} (--audit-log / \
                 PORT_MCP_AUDIT_LOG) for appending: No such file or directory (os error 2)",
                missing.display()
            ),
        ),
        (
            vec!["http"],
            vec![("PORT_MCP_AUDIT_LOG", dir.to_str().unwrap())],
            1,
            format!(
                "port-integrations-mcp: cannot open the audit log {} (--audit-log / \
                 PORT_MCP_AUDIT_LOG) for appending: Is a directory (os error 21)",
                dir.display()
            ),
        ),
        (
            vec!["stdio", "--audit-log", "/dev/null"],
            vec![],
            1,
            "port-integrations-mcp: cannot open the audit log /dev/null (--audit-log / \
             PORT_MCP_AUDIT_LOG) for appending: it is not a regular file (each line is \
             fsynced; pipes and devices cannot be)"
                .to_string(),
        ),
        // clap's own refusal, before anything starts.
        (
            vec!["stdio"],
            vec![("PORT_MCP_AUDIT_LOG", "")],
            2,
            "error: a value is required for '--audit-log <AUDIT_LOG>' but none was supplied"
                .to_string(),
        ),
    ];
    for (args, env, code, message) in cases {
        let out = Command::new(BIN)
            .env_clear()
            .env("PORT_API_KEY", STATIC_TOKEN)
            .envs(env)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(
            stderr.lines().any(|l| l == message),
            "{args:?}: want {message}\n got: {stderr}"
        );
        assert!(out.stdout.is_empty());
        assert!(!stderr.contains("panicked"), "{stderr}");
        no_secret(&stderr, &[]);
    }
    // In the JSON log format, the start error is a JSON line too.
    let out = Command::new(BIN)
        .env_clear()
        .env("PORT_API_KEY", STATIC_TOKEN)
        .args(["stdio", "--log-format", "json", "--audit-log"])
        .arg(&missing)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let fatal = last.last().unwrap();
    assert_eq!(fatal["level"], "ERROR");
    assert!(
        fatal["fields"]["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot open the audit log "),
        "{fatal}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
