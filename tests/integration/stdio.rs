//! The built binary over stdio, as hosts launch it: rmcp's client through a child process,
//! stdout reserved for the protocol, secrets absent from stderr, and start-up errors.

use std::process::Stdio;

use port_integrations_mcp::sandbox::{SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET};
use rmcp::{
    ServiceExt,
    model::ProtocolVersion,
    service::{ClientLifecycleMode, ClientServiceExt},
    transport::{ConfigureCommandExt, TokioChildProcess},
};
use serde_json::{Value, json};
use tokio::{io::AsyncReadExt, process::Command};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_port-integrations-mcp");

/// The binary with a clean environment pointing at `url`.
fn command(url: &str) -> Command {
    Command::new(BIN).configure(|c| {
        c.env_clear()
            .kill_on_drop(true)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT_BASE_URL", url)
            .env("PORT_CLIENT_ID", SANDBOX_CLIENT_ID)
            .env("PORT_CLIENT_SECRET", SANDBOX_CLIENT_SECRET)
            .env("PORT_MCP_LOG", "trace")
            .arg("stdio");
    })
}

#[tokio::test]
async fn rmcp_client_over_stdio_and_no_secret_on_stderr() {
    let port = FakePort::start().await;
    let (transport, stderr) = TokioChildProcess::builder(command(&port.url))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = stderr.unwrap();
    let stderr_task = tokio::spawn(async move {
        let mut out = String::new();
        stderr.read_to_string(&mut out).await.unwrap();
        out
    });
    let client = ().serve(transport).await.unwrap();
    assert_eq!(client.list_all_tools().await.unwrap().len(), 7);

    let r = call(
        &client,
        "update-integration-s-config",
        json!({
            "identifier": "github-ocean",
            "body": {"config": {"resources": []}}
        }),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    let r = call(&client, "get-integration", json!({"identifier": "nope"})).await;
    assert!(is_error(&r));
    assert!(text(&r).starts_with("Port answered HTTP 404 (not_found)"));

    let seen: Vec<String> = port
        .port
        .requests()
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.body))
        .collect();
    assert_eq!(
        seen,
        [
            format!(
                "POST /v1/auth/access_token {}",
                json!({"clientId": SANDBOX_CLIENT_ID, "clientSecret": SANDBOX_CLIENT_SECRET})
            ),
            r#"PATCH /v1/integration/github-ocean/config {"config":{"resources":[]}}"#.to_string(),
            "GET /v1/integration/nope ".to_string(),
        ]
    );

    client.cancel().await.unwrap();
    let stderr = stderr_task.await.unwrap();
    assert!(
        stderr.contains("Port client ready"),
        "logs go to stderr: {stderr}"
    );
    assert!(
        !stderr.contains(SANDBOX_CLIENT_SECRET),
        "client secret leaked to stderr"
    );
    assert!(
        !stderr.contains("sandbox-access-token"),
        "access token leaked to stderr"
    );
}

#[tokio::test]
async fn sandbox_flag_over_stdio_in_the_2026_era() {
    let cmd = Command::new(BIN).configure(|c| {
        c.env_clear().args(["stdio", "--sandbox"]);
    });
    let transport = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
        .0;
    let client = ()
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    let r = call(&client, "get-all-integrations", json!({})).await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(
        r.structured_content.unwrap()["integrations"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let r = call(
        &client,
        "delete-integration",
        json!({"identifier": "k8s-exporter-eu"}),
    )
    .await;
    assert_eq!(r.structured_content, Some(json!({"ok": true})));
    let r = call(&client, "get-all-integrations-meta-data", json!({})).await;
    assert_eq!(
        r.structured_content.unwrap()["integrations"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    client.cancel().await.unwrap();
}

/// Raw stdio: every line on stdout is a JSON-RPC message, even with trace logging on, and a
/// closed stdin ends the server with exit code 0.
#[tokio::test]
async fn stdout_carries_only_protocol_messages() {
    let port = FakePort::start().await;
    let mut child = command(&port.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Trace logs are plentiful; an undrained pipe would block the server.
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let input = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get-all-integrations","arguments":{}}}"#,
    ];
    let mut stdin = child.stdin.take().unwrap();
    use tokio::io::AsyncWriteExt;
    for line in input {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }
    // Give the call time to finish before closing stdin.
    let mut stdout = child.stdout.take().unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while !String::from_utf8_lossy(&out).contains(r#""id":3"#) {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stdout.read(&mut buf))
            .await
            .expect("server answered in time")
            .unwrap();
        assert!(n > 0, "stdout closed early");
        out.extend_from_slice(&buf[..n]);
    }
    drop(stdin);
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .expect("server exits after EOF")
        .unwrap();
    stdout.read_to_end(&mut out).await.unwrap();
    assert!(status.success(), "exit status {status:?}");
    let text = String::from_utf8(out).unwrap();
    let ids: Vec<Value> = text
        .lines()
        .map(|l| {
            let msg: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not JSON-RPC on stdout: {l:?} ({e})"));
            assert_eq!(msg["jsonrpc"], "2.0");
            msg["id"].clone()
        })
        .collect();
    assert_eq!(ids, [json!(1), json!(2), json!(3)]);
}

#[tokio::test]
async fn starts_without_credentials_and_explains() {
    let cmd = Command::new(BIN).configure(|c| {
        c.env_clear()
            .env("PORT_BASE_URL", "http://127.0.0.1:9")
            .arg("stdio");
    });
    let transport = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
        .0;
    let client = ().serve(transport).await.unwrap();
    assert_eq!(client.list_all_tools().await.unwrap().len(), 7);
    let r = call(&client, "get-integration", json!({"identifier": "x"})).await;
    assert!(is_error(&r));
    assert!(text(&r).contains("set PORT_API_KEY"), "{}", text(&r));
    client.cancel().await.unwrap();
}

async fn run_to_end(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(20), cmd.output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn invalid_settings_stop_the_start_with_a_clear_message() {
    let (code, stdout, stderr) = run_to_end(&["stdio"], &[("PORT_CLIENT_ID", "only-the-id")]).await;
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("PORT_CLIENT_ID and PORT_CLIENT_SECRET must be set together"),
        "{stderr}"
    );
    assert!(!stderr.contains("only-the-id"), "{stderr}");

    let (code, _, stderr) = run_to_end(&["stdio", "--base-url", "ftp://x"], &[]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("`ftp://x` is not a usable http(s) URL"),
        "{stderr}"
    );

    let (code, _, stderr) = run_to_end(&["stdio", "--region", "apac"], &[]).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid value 'apac'"), "{stderr}");
}

#[tokio::test]
async fn help_documents_every_flag_and_variable() {
    let (code, top, _) = run_to_end(&["--help"], &[]).await;
    assert_eq!(code, 0);
    for needle in [
        "stdio",
        "http",
        "sandbox-api",
        "PORT_REGION",
        "PORT_BASE_URL",
        "PORT_SANDBOX",
        "PORT_TIMEOUT_SECS",
        "PORT_API_KEY",
        "PORT_CLIENT_ID",
        "PORT_CLIENT_SECRET",
        "PORT_MCP_LOG",
    ] {
        assert!(top.contains(needle), "--help lacks {needle}:\n{top}");
    }
    let (code, http, _) = run_to_end(&["http", "--help"], &[]).await;
    assert_eq!(code, 0);
    for needle in [
        "--listen",
        "PORT_MCP_LISTEN",
        "127.0.0.1:9090",
        "--allowed-host",
        "PORT_MCP_ALLOWED_HOSTS",
        "--allowed-origin",
        "PORT_MCP_ALLOWED_ORIGINS",
        "--stateless",
        "PORT_MCP_STATELESS",
    ] {
        assert!(http.contains(needle), "http --help lacks {needle}:\n{http}");
    }
    // Secret values never show, even when set.
    let (_, top, _) = run_to_end(&["--help"], &[("PORT_CLIENT_SECRET", "shh-very-secret")]).await;
    assert!(!top.contains("shh-very-secret"));
}
