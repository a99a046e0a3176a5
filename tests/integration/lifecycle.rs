//! The built binary's life: graceful shutdown on SIGTERM, stdio robustness, and start-up checks
//! of the safety settings.

use std::{process::Stdio, time::Duration};

use port_integrations_mcp::sandbox::ScriptedResponse;
use rmcp::{
    ServiceExt,
    transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, Command},
};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_port-integrations-mcp");

fn base(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    // A failing test must not leave servers behind.
    cmd.env_clear()
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

async fn exit_code(mut child: Child) -> (i32, String) {
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("process ended in time")
        .unwrap();
    let mut err = String::new();
    if let Some(stderr) = child.stderr.take() {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            err.push_str(&l);
            err.push('\n');
        }
    }
    (status.code().unwrap_or(-1), err)
}

#[tokio::test]
async fn sigterm_lets_the_call_in_flight_finish_then_exits_0() {
    let fake = FakePort::start().await;
    fake.port.script(
        ScriptedResponse::json(200, json!({"ok": true, "integrations": []}))
            .after(Duration::from_millis(1500)),
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = base(&[("PORT_API_KEY", STATIC_TOKEN), ("PORT_BASE_URL", &fake.url)])
        .args(["http", "--listen", &listen])
        .spawn()
        .unwrap();
    wait_healthy(port).await;
    let client = ()
        .serve(StreamableHttpClientTransport::from_uri(format!(
            "http://{listen}/mcp"
        )))
        .await
        .unwrap();
    let in_flight = tokio::spawn(async move {
        let r = call(&client, "get-all-integrations", json!({})).await;
        (r, client)
    });
    while fake.api_requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sigterm(&child);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // No new connections once draining.
    let refused = reqwest::Client::new()
        .get(format!("http://{listen}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "accepted a new connection while draining: {refused:?}"
    );
    let (result, _client) = tokio::time::timeout(Duration::from_secs(20), in_flight)
        .await
        .expect("the call in flight got its answer")
        .unwrap();
    assert!(!is_error(&result), "the call in flight was cut: {result:?}");
    assert_eq!(
        result.structured_content,
        Some(json!({"ok": true, "integrations": []}))
    );
    let (code, stderr) = exit_code(child).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("shutdown requested"), "{stderr}");
}

#[tokio::test]
async fn stdio_answers_a_malformed_line_and_keeps_serving() {
    let mut child = Command::new(BIN)
        .env_clear()
        .kill_on_drop(true)
        .args(["stdio", "--sandbox"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), out.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        serde_json::from_str(&line).unwrap()
    };
    let send = |s: &str| format!("{s}\n");
    stdin.write_all(send(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#).as_bytes()).await.unwrap();
    assert_eq!(next().await["id"], 1);
    stdin
        .write_all(send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).as_bytes())
        .await
        .unwrap();
    stdin
        .write_all(b"{\"jsonrpc\": \"2.0\", \"id\": 2, \"method\": \n")
        .await
        .unwrap();
    let parse_error = next().await;
    assert_eq!(parse_error["id"], Value::Null);
    assert_eq!(parse_error["error"]["code"], -32700);
    stdin
        .write_all(send(r#"{"id":3,"method":"tools/list"}"#).as_bytes())
        .await
        .unwrap();
    let invalid = next().await;
    assert_eq!(
        (invalid["id"].clone(), invalid["error"]["code"].clone()),
        (json!(3), json!(-32600))
    );
    stdin
        .write_all(send(r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#).as_bytes())
        .await
        .unwrap();
    let listed = next().await;
    assert_eq!(listed["id"], 4);
    assert_eq!(listed["result"]["tools"].as_array().unwrap().len(), 7);
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "EOF ends the server with 0: {status:?}");
}

#[tokio::test]
async fn refuses_to_expose_credentials_off_loopback_without_a_token() {
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let child = base(&[("PORT_API_KEY", "x")])
        .args(["http", "--listen", &listen])
        .spawn()
        .unwrap();
    let (code, stderr) = exit_code(child).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!(
            "refusing to listen on {listen} without an inbound token"
        )),
        "{stderr}"
    );

    // With a token file it starts, and /mcp wants the token.
    let dir = std::env::temp_dir().join(format!("pim-token-{port}"));
    std::fs::write(&dir, "file-token-123\n").unwrap();
    let child = base(&[("PORT_API_KEY", "x")])
        .args([
            "http",
            "--listen",
            &listen,
            "--auth-token-file",
            dir.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    wait_healthy(port).await;
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", "Bearer file-token-123")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sigterm(&child);
    let (code, stderr) = exit_code(child).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("file-token-123"));
    let _ = std::fs::remove_file(dir);
}

#[tokio::test]
async fn settings_mistakes_stop_the_start() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 3] = [
        (
            &["stdio", "--tools", "get-integration,resync-all"],
            &[],
            "unknown tool `resync-all`",
        ),
        (
            &["http", "--token-passthrough"],
            &[("PORT_API_KEY", "x")],
            "--token-passthrough holds no Port credentials",
        ),
        (
            &["stdio", "--max-in-flight", "0"],
            &[],
            "must be at least 1",
        ),
    ];
    for (args, env, message) in cases {
        let child = base(env).args(args).spawn().unwrap();
        let (code, stderr) = exit_code(child).await;
        assert_eq!(code, 1, "{args:?}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn read_only_and_allow_list_from_the_environment() {
    let cmd = Command::new(BIN).configure(|c| {
        c.env_clear()
            .env("PORT_READ_ONLY", "1")
            .env(
                "PORT_TOOLS",
                "get-integration,delete-integration,get-all-integrations",
            )
            .args(["stdio", "--sandbox"]);
    });
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = ().serve(transport).await.unwrap();
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["get-all-integrations", "get-integration"]);
    client.cancel().await.unwrap();
}

/// Some hosts close the server's stderr. Logging must then fail silently: a tool call that logs
/// still gets its answer, and SIGTERM still ends the server with 0.
#[tokio::test]
async fn a_closed_stderr_breaks_nothing() {
    let fake = FakePort::start().await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = base(&[
        ("PORT_API_KEY", STATIC_TOKEN),
        ("PORT_BASE_URL", &fake.url),
        ("PORT_MCP_LOG", "debug"),
    ])
    .args(["http", "--listen", &listen])
    .spawn()
    .unwrap();
    drop(child.stderr.take());
    wait_healthy(port).await;
    let client = ()
        .serve(StreamableHttpClientTransport::from_uri(format!(
            "http://{listen}/mcp"
        )))
        .await
        .unwrap();
    // A failing call logs a warning on its way back.
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        call(&client, "get-integration", json!({"identifier": "nope"})),
    )
    .await
    .expect("the call was answered");
    assert!(
        text(&r).starts_with("Port answered HTTP 404"),
        "{}",
        text(&r)
    );
    sigterm(&child);
    let (code, _) = exit_code(child).await;
    assert_eq!(code, 0);
}

#[tokio::test]
async fn rest_listen_serves_the_rest_surface_next_to_mcp() {
    let mcp = free_port();
    let rest = free_port();
    let child = base(&[])
        .args([
            "http",
            "--sandbox",
            "--listen",
            &format!("127.0.0.1:{mcp}"),
            "--rest-listen",
            &format!("127.0.0.1:{rest}"),
        ])
        .spawn()
        .unwrap();
    wait_healthy(mcp).await;
    let body: Value = serde_json::from_str(
        &reqwest::get(format!("http://127.0.0.1:{rest}/v1/v1/integration"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["integrations"].as_array().unwrap().len(), 4);
    let doc = reqwest::get(format!("http://127.0.0.1:{rest}/openapi.json"))
        .await
        .unwrap();
    assert_eq!(doc.status(), 200);
    sigterm(&child);
    let (code, stderr) = exit_code(child).await;
    assert_eq!(code, 0, "{stderr}");

    // Off loopback, the REST address needs the inbound token too.
    let child = base(&[("PORT_API_KEY", "x")])
        .args(["http", "--rest-listen", "0.0.0.0:0"])
        .spawn()
        .unwrap();
    let (code, stderr) = exit_code(child).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0"),
        "{stderr}"
    );
}
