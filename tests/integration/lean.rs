//! The lean stateless path answers exactly as rmcp does: the same requests are sent to an app
//! with it and to one without it, and Port's requests and the answers are compared. Also: which
//! requests take it, a real rmcp client taking it, and a dropped connection on it.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use port_integrations_mcp::{
    port::PortClient,
    sandbox::{RecordedRequest, ScriptedResponse},
    tools::PortTools,
    transport::{
        http::{app, app_with},
        lean::LeanPath,
    },
};
use rmcp::{ServiceExt, transport::StreamableHttpClientTransport};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{common::*, http::http_args};

/// Two stateless apps on one fake Port: with the lean path, and rmcp only.
struct Pair {
    port: FakePort,
    lean: Arc<LeanPath>,
    with_lean: SocketAddr,
    rmcp_only: SocketAddr,
}

async fn listen(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

async fn pair(max_structured_bytes: usize) -> Pair {
    let port = FakePort::start().await;
    let mut settings = port.settings(static_token());
    settings.max_structured_bytes = max_structured_bytes;
    let http = http_args(true);
    let tools = || PortTools::new(PortClient::new(&settings).unwrap());
    let lean_tools = tools();
    let lean = LeanPath::new(lean_tools.clone(), &http);
    let with_lean = listen(app_with(
        lean_tools,
        &http,
        CancellationToken::new(),
        Some(lean.clone()),
    ))
    .await;
    let rmcp_only = listen(app_with(tools(), &http, CancellationToken::new(), None)).await;
    Pair {
        port,
        lean,
        with_lean,
        rmcp_only,
    }
}

/// What a client sees of one answer: status, content type, and the body (parsed when JSON).
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    content_type: Option<String>,
    body: Value,
}

async fn post(addr: SocketAddr, headers: &[(&str, &str)], body: &str) -> Seen {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/mcp"))
        .body(body.to_string());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let text = same_trace_ids(&response.text().await.unwrap());
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Seen {
        status,
        content_type,
        body,
    }
}

/// The fake Port numbers its trace ids (`sandbox-trace-<n>`), so two sends differ there only.
fn same_trace_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("sandbox-trace-") {
        let (head, tail) = rest.split_at(at + "sandbox-trace-".len());
        out.push_str(head);
        out.push('N');
        rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// Port's side of the requests, without the `Host` header (each app has its own connection).
fn upstream(requests: Vec<RecordedRequest>) -> Vec<RecordedRequest> {
    requests
        .into_iter()
        .map(|mut r| {
            r.headers.retain(|(k, _)| k != "host");
            r
        })
        .collect()
}

const STANDARD: [(&str, &str); 2] = [
    ("content-type", "application/json"),
    ("accept", "application/json, text/event-stream"),
];

fn tool_call(id: Value, name: &str, arguments: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": arguments}})
    .to_string()
}

struct Case {
    what: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
    /// Port's answer, scripted (for writes, whose real answers carry the time).
    script: Option<ScriptedResponse>,
    lean: bool,
}

fn case(what: &'static str, body: String, lean: bool) -> Case {
    Case {
        what,
        headers: STANDARD.to_vec(),
        body,
        script: None,
        lean,
    }
}

fn scripted_ok() -> ScriptedResponse {
    ScriptedResponse::json(
        200,
        json!({"ok": true, "integration": {"identifier": "github-ocean", "title": "GitHub", "n": [1, 2.5, -3e2]}}),
    )
    .with_header("x-trace-id", "trace-lean-1")
}

fn cases() -> Vec<Case> {
    let config = json!({"identifier": "github-ocean", "body": {"config": {"resources": [{
        "kind": "repository", "selector": {"query": "true"},
        "port": {"entity": {"mappings": {"identifier": ".name", "title": ".name",
            "blueprint": "\"service\"", "properties": {"url": ".html_url"}}}}}]}}});
    let unchecked = json!({"identifier": "github-ocean", "body": {"config": {"resources": [{
        "kind": "repository", "selector": {"query": ".name | IN(\"a\", \"b\")"},
        "port": {"entity": {"mappings": {"identifier": ".name", "blueprint": "\"service\""}}}}]}}});
    let broken = json!({"identifier": "github-ocean", "body": {"config": {"resources": [{
        "kind": "repository", "selector": {"query": ".name |"},
        "port": {"entity": {"mappings": {"identifier": ".name", "blueprint": "\"service\""}}}}]}}});
    vec![
        case(
            "get-integration",
            tool_call(
                json!(1),
                "get-integration",
                json!({"identifier": "github-ocean", "isPolling": true}),
            ),
            true,
        ),
        case(
            "get-all-integrations",
            tool_call(
                json!(2),
                "get-all-integrations",
                json!({"actionsProcessingEnabled": false}),
            ),
            true,
        ),
        case(
            "metadata, no arguments at all",
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                   "params": {"name": "get-all-integrations-meta-data"}})
            .to_string(),
            true,
        ),
        case(
            "event logs with filters",
            tool_call(
                json!("logs-1"),
                "get-integration-s-event-logs",
                json!({"identifier": "github-ocean", "levels": ["ERROR", "WARNING"], "limit": 5}),
            ),
            true,
        ),
        case(
            "invalid argument",
            tool_call(
                json!(5),
                "get-integration-s-event-logs",
                json!({"identifier": "x", "limit": 500}),
            ),
            true,
        ),
        case(
            "unknown integration (Port's 404)",
            tool_call(
                json!(6),
                "get-integration",
                json!({"identifier": "no-such-one"}),
            ),
            true,
        ),
        case(
            "refused mapping",
            tool_call(json!(7), "update-integration-s-config", broken),
            true,
        ),
        Case {
            script: Some(scripted_ok()),
            ..case(
                "update-integration (resync)",
                tool_call(
                    json!(8),
                    "update-integration",
                    json!({"identifier": "github-ocean"}),
                ),
                true,
            )
        },
        Case {
            script: Some(scripted_ok()),
            ..case(
                "config update",
                tool_call(json!(9), "update-integration-s-config", config),
                true,
            )
        },
        Case {
            script: Some(scripted_ok()),
            ..case(
                "config update with an unchecked expression (a note follows the answer)",
                tool_call(json!(10), "update-integration-s-config", unchecked),
                true,
            )
        },
        Case {
            script: Some(
                ScriptedResponse::json(
                    429,
                    json!({"ok": false, "error": "rate_limited", "message": "slow down"}),
                )
                .with_header("retry-after", "120")
                .with_header("x-trace-id", "trace-429"),
            ),
            ..case(
                "Port's 429",
                tool_call(json!(11), "get-all-integrations", json!({})),
                true,
            )
        },
        Case {
            script: Some(ScriptedResponse::json(200, json!([1, 2, 3]))),
            ..case(
                "an answer that is not an object",
                tool_call(json!(12), "get-all-integrations", json!({})),
                true,
            )
        },
        Case {
            headers: vec![
                ("content-type", "application/json; charset=utf-8"),
                ("accept", "text/event-stream, application/json"),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            ..case(
                "a 2025-11-25 client's headers",
                tool_call(
                    json!(13),
                    "get-integration",
                    json!({"identifier": "github-ocean"}),
                ),
                true,
            )
        },
        Case {
            headers: [STANDARD.to_vec(), vec![("x-read-only-mode", "1")]].concat(),
            ..case(
                "read-only request, read tool",
                tool_call(
                    json!(14),
                    "get-integration",
                    json!({"identifier": "github-ocean"}),
                ),
                true,
            )
        },
        case(
            "_meta with a progress token (rmcp's client sends one with every call)",
            json!({"jsonrpc": "2.0", "id": 15, "method": "tools/call", "params": {
                "name": "get-integration", "arguments": {"identifier": "github-ocean"},
                "_meta": {"progressToken": 0}}})
            .to_string(),
            true,
        ),
        // Everything below is rmcp's to answer.
        Case {
            headers: [STANDARD.to_vec(), vec![("x-read-only-mode", "1")]].concat(),
            ..case(
                "read-only request, write tool",
                tool_call(
                    json!(20),
                    "update-integration",
                    json!({"identifier": "github-ocean"}),
                ),
                false,
            )
        },
        case(
            "delete (asks for confirmation)",
            tool_call(
                json!(21),
                "delete-integration",
                json!({"identifier": "no-such-one"}),
            ),
            false,
        ),
        case(
            "unknown tool",
            tool_call(json!(22), "no-such-tool", json!({})),
            false,
        ),
        case(
            "tools/list",
            json!({"jsonrpc": "2.0", "id": 23, "method": "tools/list"}).to_string(),
            false,
        ),
        case(
            "a float id",
            tool_call(json!(1.5), "get-integration", json!({"identifier": "a"})),
            false,
        ),
        case(
            "_meta with more than a progress token",
            json!({"jsonrpc": "2.0", "id": 25, "method": "tools/call", "params": {
                "name": "get-integration", "arguments": {"identifier": "github-ocean"},
                "_meta": {"progressToken": "p1", "io.example/trace": "t"}}})
            .to_string(),
            false,
        ),
        case(
            "a batch",
            json!([{"jsonrpc": "2.0", "id": 26, "method": "tools/list"}]).to_string(),
            false,
        ),
        case(
            "not JSON",
            "{\"jsonrpc\": \"2.0\", \"id\": 27,".into(),
            false,
        ),
        case(
            "arguments that are not an object",
            json!({"jsonrpc": "2.0", "id": 28, "method": "tools/call",
                   "params": {"name": "get-integration", "arguments": [1]}})
            .to_string(),
            false,
        ),
        Case {
            headers: [STANDARD.to_vec(), vec![("origin", "http://localhost:3000")]].concat(),
            ..case(
                "a browser Origin",
                tool_call(
                    json!(29),
                    "get-integration",
                    json!({"identifier": "github-ocean"}),
                ),
                false,
            )
        },
        Case {
            headers: [STANDARD.to_vec(), vec![("origin", "https://evil.example")]].concat(),
            ..case(
                "a foreign Origin",
                tool_call(
                    json!(30),
                    "get-integration",
                    json!({"identifier": "github-ocean"}),
                ),
                false,
            )
        },
        Case {
            headers: vec![
                ("content-type", "application/json"),
                ("accept", "application/json"),
            ],
            ..case(
                "no text/event-stream in Accept",
                tool_call(
                    json!(31),
                    "get-integration",
                    json!({"identifier": "github-ocean"}),
                ),
                false,
            )
        },
        Case {
            headers: vec![("content-type", "text/plain"), STANDARD[1]],
            ..case(
                "not application/json",
                tool_call(
                    json!(32),
                    "get-integration",
                    json!({"identifier": "github-ocean"}),
                ),
                false,
            )
        },
        Case {
            headers: [
                STANDARD.to_vec(),
                vec![("mcp-protocol-version", "1999-01-01")],
            ]
            .concat(),
            ..case(
                "an unknown protocol version",
                tool_call(
                    json!(33),
                    "get-integration",
                    json!({"identifier": "github-ocean"}),
                ),
                false,
            )
        },
    ]
}

#[tokio::test]
async fn the_lean_path_answers_as_rmcp_does() {
    let p = pair(512 * 1024).await;
    for c in cases() {
        let served_before = p.lean.served();
        let mut seen = Vec::new();
        let mut sent = Vec::new();
        for addr in [p.with_lean, p.rmcp_only] {
            p.port.port.clear_requests();
            if let Some(script) = &c.script {
                p.port.port.script(script.clone());
            }
            seen.push(post(addr, &c.headers, &c.body).await);
            sent.push(upstream(p.port.api_requests()));
        }
        assert_eq!(seen[0], seen[1], "{}: the answers differ", c.what);
        assert_eq!(sent[0], sent[1], "{}: Port's requests differ", c.what);
        if c.script.is_some() {
            assert_eq!(
                sent[0].len(),
                1,
                "{}: the scripted answer was not used",
                c.what
            );
        }
        let took_lean = p.lean.served() - served_before;
        assert_eq!(
            took_lean,
            u64::from(c.lean),
            "{}: lean path taken {took_lean} times",
            c.what
        );
        if c.lean {
            assert_eq!(seen[0].status, 200, "{}", c.what);
            assert!(
                seen[0].body.get("result").is_some(),
                "{}: {:?}",
                c.what,
                seen[0]
            );
        }
    }
}

#[tokio::test]
async fn the_answers_compared_are_the_expected_ones() {
    // The comparison above holds trivially if both paths fail alike; pin a few answers.
    let p = pair(512 * 1024).await;
    let seen = post(
        p.with_lean,
        &STANDARD,
        &tool_call(
            json!(1),
            "get-integration",
            json!({"identifier": "github-ocean"}),
        ),
    )
    .await;
    let result = &seen.body["result"];
    assert_eq!(seen.body["id"], json!(1));
    assert_eq!(result["isError"], json!(false));
    let text = result["content"][0]["text"].as_str().unwrap();
    let from_text: Value = serde_json::from_str(text).unwrap();
    assert_eq!(result["structuredContent"], from_text);
    assert_eq!(from_text["integration"]["title"], json!("GitHub"));
    let req = p.port.single_request();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/v1/integration/github-ocean")
    );
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {STATIC_TOKEN}").as_str())
    );

    p.port.port.clear_requests();
    p.port.port.script(scripted_ok());
    let seen = post(
        p.with_lean,
        &STANDARD,
        &tool_call(
            json!("u"),
            "update-integration",
            json!({"identifier": "github-ocean"}),
        ),
    )
    .await;
    assert_eq!(seen.body["id"], json!("u"));
    assert_eq!(
        seen.body["result"]["structuredContent"]["integration"]["n"],
        json!([1, 2.5, -300.0])
    );
    let req = p.port.single_request();
    assert_eq!((req.method.as_str(), req.body.as_str()), ("PATCH", "{}"));

    let seen = post(
        p.with_lean,
        &STANDARD,
        &tool_call(
            json!(3),
            "get-integration-s-event-logs",
            json!({"identifier": "x", "limit": 500}),
        ),
    )
    .await;
    assert_eq!(seen.body["result"]["isError"], json!(true));
    let text = seen.body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("Invalid argument `limit`"), "{text}");
    assert_eq!(
        p.port.api_requests().len(),
        1,
        "the invalid call reached Port"
    );
    assert_eq!(p.lean.served(), 3);
}

#[tokio::test]
async fn answers_over_the_structured_limit_are_text_only_on_both_paths() {
    let p = pair(64).await;
    let body = tool_call(json!(1), "get-all-integrations", json!({}));
    let lean = post(p.with_lean, &STANDARD, &body).await;
    let rmcp = post(p.rmcp_only, &STANDARD, &body).await;
    assert_eq!(lean, rmcp);
    assert_eq!(lean.body["result"].get("structuredContent"), None);
    let text = lean.body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.len() > 64 && text.contains("\"integrations\""),
        "{text}"
    );
    assert_eq!(p.lean.served(), 1);
}

#[tokio::test]
async fn rmcps_legacy_client_takes_the_lean_path() {
    let port = FakePort::start().await;
    let http = http_args(true);
    let tools = PortTools::new(PortClient::new(&port.settings(static_token())).unwrap());
    let lean = LeanPath::new(tools.clone(), &http);
    let addr = listen(app_with(
        tools,
        &http,
        CancellationToken::new(),
        Some(lean.clone()),
    ))
    .await;
    let transport = StreamableHttpClientTransport::from_uri(format!("http://{addr}/mcp"));
    let client = ().serve(transport).await.unwrap();
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(
        r.structured_content.unwrap()["integration"]["title"],
        "GitHub"
    );
    assert_eq!(lean.served(), 1, "rmcp's client did not take the lean path");
    assert_eq!(port.single_request().path, "/v1/integration/github-ocean");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_stateless_app_uses_the_lean_path_and_the_stateful_one_does_not() {
    // `app` itself wires the path in stateless mode only: a stateful request without a
    // session is refused by rmcp (no lean answer in its place).
    let port = FakePort::start().await;
    let tools = || PortTools::new(PortClient::new(&port.settings(static_token())).unwrap());
    let stateless = listen(app(tools(), &http_args(true), CancellationToken::new())).await;
    let stateful = listen(app(tools(), &http_args(false), CancellationToken::new())).await;
    let body = tool_call(
        json!(1),
        "get-integration",
        json!({"identifier": "github-ocean"}),
    );
    let seen = post(stateless, &STANDARD, &body).await;
    assert_eq!(seen.body["result"]["isError"], json!(false), "{seen:?}");
    let seen = post(stateful, &STANDARD, &body).await;
    assert_ne!(seen.status, 200, "{seen:?}");
    assert_eq!(port.api_requests().len(), 1);
}

#[tokio::test]
async fn a_dropped_connection_on_the_lean_path_aborts_the_port_request() {
    let p = pair(512 * 1024).await;
    p.port
        .port
        .script(ScriptedResponse::json(200, json!({"ok": true})).after(Duration::from_secs(3)));
    let outcome = reqwest::Client::new()
        .post(format!("http://{}/mcp", p.with_lean))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .timeout(Duration::from_millis(400))
        .body(tool_call(json!(1), "get-all-integrations", json!({})))
        .send()
        .await;
    assert!(outcome.is_err(), "the client gave up first: {outcome:?}");
    assert_eq!(p.port.api_requests().len(), 1, "the call reached Port");
    let mut waited = 0;
    while p.port.port.aborted() == 0 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    assert_eq!(p.port.port.aborted(), 1, "Port's request was left running");
}
