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
use rmcp::{
    ServiceExt,
    service::{ClientLifecycleMode, ClientServiceExt},
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{common::*, http::http_args};

/// One app on the fake Port; in stateful mode, with a session opened on it.
struct App {
    addr: SocketAddr,
    session: Option<String>,
}

/// Two apps of one mode on one fake Port: with the lean path, and rmcp only.
struct Pair {
    port: FakePort,
    lean: Arc<LeanPath>,
    with_lean: App,
    rmcp_only: App,
    stateless: bool,
}

/// Opens a session the way a 2025-11-25 client does: initialize, then initialized.
async fn open_session(addr: SocketAddr) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}});
    let client = reqwest::Client::new();
    let r = client
        .post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let _ = r.bytes().await;
    let r = client
        .post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .body(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    session
}

async fn app_on(
    port: &FakePort,
    max_structured_bytes: usize,
    stateless: bool,
    lean: bool,
) -> (App, Option<Arc<LeanPath>>) {
    let mut settings = port.settings(static_token());
    settings.max_structured_bytes = max_structured_bytes;
    let tools = PortTools::new(PortClient::new(&settings).unwrap());
    let (router, lean) = app_with(tools, &http_args(stateless), CancellationToken::new(), lean);
    let addr = listen(router).await;
    let session = if stateless {
        None
    } else {
        Some(open_session(addr).await)
    };
    (App { addr, session }, lean)
}

async fn pair(max_structured_bytes: usize, stateless: bool) -> Pair {
    let port = FakePort::start().await;
    let (with_lean, lean) = app_on(&port, max_structured_bytes, stateless, true).await;
    let (rmcp_only, none) = app_on(&port, max_structured_bytes, stateless, false).await;
    assert!(none.is_none());
    port.port.clear_requests();
    Pair {
        port,
        lean: lean.unwrap(),
        with_lean,
        rmcp_only,
        stateless,
    }
}

/// What a client sees of one answer: status, content type, and the body (parsed when JSON; the
/// JSON-RPC message when an SSE stream).
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    content_type: Option<String>,
    body: Value,
}

async fn post(app: &App, headers: &[(&str, &str)], body: &str) -> Seen {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}/mcp", app.addr))
        .body(body.to_string());
    if let Some(session) = &app.session {
        request = request.header("mcp-session-id", session);
    }
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
    let body = if content_type.as_deref() == Some("text/event-stream") {
        // The one message with an id (priming events carry no data).
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|m| m.get("id").is_some())
            .unwrap_or(Value::String(text))
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
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
    /// A 2026-07-28 call: sent without a session, in both modes.
    modern: bool,
}

fn case(what: &'static str, body: String, lean: bool) -> Case {
    Case {
        what,
        headers: STANDARD.to_vec(),
        body,
        script: None,
        lean,
        modern: false,
    }
}

/// A 2026-07-28 call: per-request metadata in the body, `Mcp-Method`/`Mcp-Name` headers.
fn modern(what: &'static str, id: Value, name: &'static str, arguments: Value, lean: bool) -> Case {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": name, "arguments": arguments, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}}});
    Case {
        headers: [
            STANDARD.to_vec(),
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", name),
            ],
        ]
        .concat(),
        modern: true,
        ..case(what, body.to_string(), lean)
    }
}

fn modern_cases() -> Vec<Case> {
    let one = json!({"identifier": "github-ocean"});
    let mut cases = vec![
        modern(
            "2026: get-integration",
            json!(40),
            "get-integration",
            one.clone(),
            true,
        ),
        modern(
            "2026: invalid argument",
            json!(41),
            "get-integration-s-event-logs",
            json!({"identifier": "x", "limit": 500}),
            true,
        ),
        modern(
            "2026: Port's 404",
            json!(42),
            "get-integration",
            json!({"identifier": "nope"}),
            true,
        ),
        Case {
            script: Some(scripted_ok()),
            ..modern(
                "2026: update-integration",
                json!(43),
                "update-integration",
                one.clone(),
                true,
            )
        },
        Case {
            script: Some(ScriptedResponse::json(200, json!([1, 2, 3]))),
            ..modern(
                "2026: an answer that is not an object",
                json!(44),
                "get-all-integrations",
                json!({}),
                true,
            )
        },
        // rmcp's to answer:
        modern(
            "2026: delete",
            json!(45),
            "delete-integration",
            json!({"identifier": "nope"}),
            false,
        ),
    ];
    let mut mismatch = modern(
        "2026: Mcp-Name not the body's",
        json!(46),
        "get-integration",
        one.clone(),
        false,
    );
    mismatch.headers.retain(|(k, _)| *k != "mcp-name");
    mismatch.headers.push(("mcp-name", "get-all-integrations"));
    let mut no_method = modern(
        "2026: no Mcp-Method",
        json!(47),
        "get-integration",
        one.clone(),
        false,
    );
    no_method.headers.retain(|(k, _)| *k != "mcp-method");
    let mut old_header = modern(
        "2026 metadata, 2025 header",
        json!(48),
        "get-integration",
        one.clone(),
        false,
    );
    old_header
        .headers
        .retain(|(k, _)| *k != "mcp-protocol-version");
    old_header
        .headers
        .push(("mcp-protocol-version", "2025-11-25"));
    let mut no_capabilities = modern(
        "2026: no client capabilities",
        json!(49),
        "get-integration",
        one,
        false,
    );
    let mut body: Value = serde_json::from_str(&no_capabilities.body).unwrap();
    body["params"]["_meta"]
        .as_object_mut()
        .unwrap()
        .remove("io.modelcontextprotocol/clientCapabilities");
    no_capabilities.body = body.to_string();
    assert!(!no_capabilities.body.contains("clientCapabilities"));
    cases.extend([mismatch, no_method, old_header, no_capabilities]);
    cases
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
        // Hostile answers: both paths must refuse the same bodies, with the same error.
        Case {
            script: Some(ScriptedResponse::bytes(
                200,
                format!(
                    "{{\"ok\":true,\"x\":{}1{}}}",
                    "[".repeat(100_000),
                    "]".repeat(100_000)
                ),
            )),
            ..case(
                "hostile: 100k-deep JSON",
                tool_call(json!(16), "get-all-integrations", json!({})),
                true,
            )
        },
        Case {
            script: Some(ScriptedResponse::bytes(
                200,
                r#"{"ok":true,"integrations":[{"identifier":"\ud800"}]}"#,
            )),
            ..case(
                "hostile: a lone surrogate escape",
                tool_call(json!(17), "get-all-integrations", json!({})),
                true,
            )
        },
        Case {
            script: Some(ScriptedResponse::bytes(
                200,
                b"{\"ok\":true,\"integrations\":[{\"identifier\":\"\xff\xfe\"}]}".to_vec(),
            )),
            ..case(
                "hostile: a body that is not UTF-8",
                tool_call(json!(18), "get-all-integrations", json!({})),
                true,
            )
        },
        Case {
            script: Some(ScriptedResponse::bytes(200, r#"{"ok":true,"n":1e400}"#)),
            ..case(
                "hostile: a number beyond f64",
                tool_call(json!(35), "get-all-integrations", json!({})),
                true,
            )
        },
        Case {
            script: Some(ScriptedResponse::json(
                200,
                json!({"ok": true, "echo": format!("Authorization: Bearer {STATIC_TOKEN}")}),
            )),
            ..case(
                "hostile: a success that quotes the token",
                tool_call(json!(19), "get-all-integrations", json!({})),
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
            headers: [STANDARD.to_vec(), vec![("host", "evil.example:9090")]].concat(),
            ..case(
                "a foreign Host (DNS rebinding)",
                tool_call(
                    json!(34),
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

async fn answers_as_rmcp_does(stateless: bool) {
    let p = pair(512 * 1024, stateless).await;
    for c in cases().into_iter().chain(modern_cases()) {
        let served_before = p.lean.served();
        let mut seen = Vec::new();
        let mut sent = Vec::new();
        for app in [&p.with_lean, &p.rmcp_only] {
            p.port.port.clear_requests();
            if let Some(script) = &c.script {
                p.port.port.script(script.clone());
            }
            let sessionless = App {
                addr: app.addr,
                session: None,
            };
            let app = if c.modern { &sessionless } else { app };
            seen.push(post(app, &c.headers, &c.body).await);
            sent.push(upstream(p.port.api_requests()));
        }
        let what = format!(
            "{} ({})",
            c.what,
            if p.stateless { "stateless" } else { "session" }
        );
        assert_eq!(
            (seen[0].status, &seen[0].body),
            (seen[1].status, &seen[1].body),
            "{what}: the answers differ"
        );
        // A stateful server streams its one message as SSE (in a session, and for 2026-07-28
        // calls); the lean path sends it as JSON.
        if p.stateless || !c.lean {
            assert_eq!(seen[0].content_type, seen[1].content_type, "{what}");
        }
        assert_eq!(sent[0], sent[1], "{what}: Port's requests differ");
        if c.script.is_some() {
            assert_eq!(sent[0].len(), 1, "{what}: the scripted answer was not used");
        }
        let took_lean = p.lean.served() - served_before;
        assert_eq!(
            took_lean,
            u64::from(c.lean),
            "{what}: lean path taken {took_lean} times"
        );
        if c.lean {
            assert_eq!(seen[0].status, 200, "{what}");
            assert_eq!(
                seen[0].content_type.as_deref(),
                Some("application/json"),
                "{what}"
            );
            assert!(
                seen[0].body.get("result").is_some(),
                "{what}: {:?}",
                seen[0]
            );
        }
    }
}

#[tokio::test]
async fn the_lean_path_answers_as_rmcp_does_stateless() {
    answers_as_rmcp_does(true).await;
}

#[tokio::test]
async fn the_lean_path_answers_as_rmcp_does_in_a_session() {
    answers_as_rmcp_does(false).await;
}

#[tokio::test]
async fn the_answers_compared_are_the_expected_ones() {
    // The comparison above holds trivially if both paths fail alike; pin a few answers.
    let p = pair(512 * 1024, true).await;
    let seen = post(
        &p.with_lean,
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
        &p.with_lean,
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
        &p.with_lean,
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
    for stateless in [true, false] {
        let p = pair(64, stateless).await;
        let body = tool_call(json!(1), "get-all-integrations", json!({}));
        let lean = post(&p.with_lean, &STANDARD, &body).await;
        let rmcp = post(&p.rmcp_only, &STANDARD, &body).await;
        assert_eq!((lean.status, &lean.body), (rmcp.status, &rmcp.body));
        assert_eq!(lean.body["result"].get("structuredContent"), None);
        let text = lean.body["result"]["content"][0]["text"].as_str().unwrap();
        assert!(
            text.len() > 64 && text.contains("\"integrations\""),
            "{text}"
        );
        assert_eq!(p.lean.served(), 1);
    }
}

#[tokio::test]
async fn rmcps_client_takes_the_lean_path_in_both_modes_and_eras() {
    for stateless in [true, false] {
        for (era, lifecycle) in [
            ("legacy", ClientLifecycleMode::Initialize),
            ("2026", crate::common::modern()),
        ] {
            let port = FakePort::start().await;
            let tools = PortTools::new(PortClient::new(&port.settings(static_token())).unwrap());
            let (router, lean) =
                app_with(tools, &http_args(stateless), CancellationToken::new(), true);
            let lean = lean.unwrap();
            let addr = listen(router).await;
            let transport = StreamableHttpClientTransport::from_uri(format!("http://{addr}/mcp"));
            let client = ().serve_with_lifecycle(transport, lifecycle).await.unwrap();
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
            assert_eq!(
                lean.served(),
                1,
                "rmcp's {era} client did not take the lean path (stateless: {stateless})"
            );
            assert_eq!(port.single_request().path, "/v1/integration/github-ocean");
            client.cancel().await.unwrap();
        }
    }
}

#[tokio::test]
async fn the_app_takes_the_lean_path_only_where_rmcp_would_serve_the_call() {
    // A call without a session on a stateful server is refused by rmcp, not answered.
    let port = FakePort::start().await;
    let tools = || PortTools::new(PortClient::new(&port.settings(static_token())).unwrap());
    let stateless = listen(app(tools(), &http_args(true), CancellationToken::new())).await;
    let stateful = listen(app(tools(), &http_args(false), CancellationToken::new())).await;
    let body = tool_call(
        json!(1),
        "get-integration",
        json!({"identifier": "github-ocean"}),
    );
    let no_session = |addr| App {
        addr,
        session: None,
    };
    let seen = post(&no_session(stateless), &STANDARD, &body).await;
    assert_eq!(seen.body["result"]["isError"], json!(false), "{seen:?}");
    let seen = post(&no_session(stateful), &STANDARD, &body).await;
    assert_ne!(seen.status, 200, "{seen:?}");
    let unknown = App {
        addr: stateful,
        session: Some("no-such-session".into()),
    };
    let seen = post(&unknown, &STANDARD, &body).await;
    assert_eq!(seen.status, 404, "{seen:?}");
    assert_eq!(port.api_requests().len(), 1);
}

#[tokio::test]
async fn a_dropped_connection_on_the_lean_path_aborts_the_port_request() {
    let p = pair(512 * 1024, true).await;
    p.port
        .port
        .script(ScriptedResponse::json(200, json!({"ok": true})).after(Duration::from_secs(3)));
    let outcome = reqwest::Client::new()
        .post(format!("http://{}/mcp", p.with_lean.addr))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .timeout(Duration::from_millis(1500))
        .body(tool_call(json!(1), "get-all-integrations", json!({})))
        .send()
        .await;
    assert!(outcome.is_err(), "the client gave up first: {outcome:?}");
    assert_eq!(p.port.api_requests().len(), 1, "the call reached Port");
    wait_for_abort(&p.port).await;
}

#[tokio::test]
async fn a_cancelled_notification_in_a_session_aborts_the_port_request() {
    let port = FakePort::start().await;
    let tools = PortTools::new(PortClient::new(&port.settings(static_token())).unwrap());
    let (router, lean) = app_with(tools, &http_args(false), CancellationToken::new(), true);
    let addr = listen(router).await;
    let transport = StreamableHttpClientTransport::from_uri(format!("http://{addr}/mcp"));
    let client = ().serve(transport).await.unwrap();
    cancel_a_slow_call(&port, &client).await;
    assert_eq!(lean.unwrap().served(), 0, "a cancelled call has no answer");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_notification_ends_a_lean_call_whose_client_still_waits() {
    // rmcp's client also hangs up on cancel; a client that keeps the request open gets the
    // cancelled result, and Port's request is dropped all the same.
    let p = pair(512 * 1024, false).await;
    p.port
        .port
        .script(ScriptedResponse::json(200, json!({"ok": true})).after(Duration::from_secs(8)));
    let app = App {
        addr: p.with_lean.addr,
        session: p.with_lean.session.clone(),
    };
    let slow = tokio::spawn(async move {
        post(
            &app,
            &STANDARD,
            &tool_call(json!("slow-1"), "get-all-integrations", json!({})),
        )
        .await
    });
    // Poll rather than sleep a fixed time: on a loaded machine the call may take a while.
    for _ in 0..150 {
        if !p.port.api_requests().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(p.port.api_requests().len(), 1, "the request reached Port");
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": "slow-1", "reason": "user pressed stop"}});
    let seen = post(&p.with_lean, &STANDARD, &cancel.to_string()).await;
    assert_eq!(seen.status, 202, "{seen:?}");
    let answer = tokio::time::timeout(Duration::from_secs(4), slow)
        .await
        .expect("the cancelled call still waited for Port")
        .unwrap();
    assert_eq!(answer.body["id"], json!("slow-1"));
    assert_eq!(answer.body["result"]["isError"], json!(true));
    assert_eq!(
        answer.body["result"]["structuredContent"]["error"],
        json!("cancelled")
    );
    wait_for_abort(&p.port).await;
    assert_eq!(p.lean.served(), 1);
}

/// A stdio server on socket pairs, with or without the lean path.
struct StdioPipe {
    to_server: std::os::unix::net::UnixStream,
    from_server: std::io::BufReader<std::os::unix::net::UnixStream>,
}

impl StdioPipe {
    /// Stands in while a pipe is lent to a blocking task.
    fn placeholder() -> Self {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        StdioPipe {
            to_server: a,
            from_server: std::io::BufReader::new(b),
        }
    }

    async fn start(port: &FakePort, served: Option<Arc<std::sync::atomic::AtomicU64>>) -> Self {
        use std::os::unix::net::UnixStream;
        let (server_in, to_server) = UnixStream::pair().unwrap();
        let (from_server, server_out) = UnixStream::pair().unwrap();
        from_server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let tools = PortTools::new(PortClient::new(&port.settings(static_token())).unwrap());
        tokio::spawn(port_integrations_mcp::transport::stdio::serve_with(
            server_in, server_out, tools, served,
        ));
        StdioPipe {
            to_server,
            from_server: std::io::BufReader::new(from_server),
        }
    }

    /// Sends one line; for a request, returns the one line that answers it.
    async fn send(mut self, line: String, answered: bool) -> (Self, Option<Value>) {
        tokio::task::spawn_blocking(move || {
            use std::io::{BufRead, Write};
            writeln!(self.to_server, "{line}").unwrap();
            if !answered {
                return (self, None);
            }
            let mut answer = String::new();
            self.from_server.read_line(&mut answer).unwrap();
            let answer = same_trace_ids(&answer);
            (self, Some(serde_json::from_str(&answer).unwrap()))
        })
        .await
        .unwrap()
    }

    async fn initialize(self) -> Self {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}});
        let (pipe, _) = self.send(init.to_string(), true).await;
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        pipe.send(initialized.to_string(), false).await.0
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_stdio_the_lean_path_answers_as_rmcp_does() {
    let port = FakePort::start().await;
    let served = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut with_lean = StdioPipe::start(&port, Some(served.clone()))
        .await
        .initialize()
        .await;
    let mut rmcp_only = StdioPipe::start(&port, None).await.initialize().await;
    // On stdio there are no headers: the cases whose point is a header are left out, and so
    // are unparsable lines (the stdio tests cover those).
    let skipped = [
        "a batch",
        "not JSON",
        "a float id",
        "arguments that are not an object",
    ];
    let mut expected_lean = 0;
    for c in cases().into_iter().chain(modern_cases()) {
        let plain_headers = c.headers == STANDARD.to_vec() || c.modern;
        if !plain_headers || skipped.contains(&c.what) {
            continue;
        }
        let mut seen = Vec::new();
        let mut sent = Vec::new();
        for pipe in [&mut with_lean, &mut rmcp_only] {
            port.port.clear_requests();
            if let Some(script) = &c.script {
                port.port.script(script.clone());
            }
            let taken = std::mem::replace(pipe, StdioPipe::placeholder());
            let (back, answer) = taken.send(c.body.clone(), true).await;
            *pipe = back;
            seen.push(answer.unwrap());
            sent.push(upstream(port.api_requests()));
        }
        assert_eq!(seen[0], seen[1], "stdio, {}: the answers differ", c.what);
        assert_eq!(
            sent[0], sent[1],
            "stdio, {}: Port's requests differ",
            c.what
        );
        // The body alone decides on stdio: a forwarding tool with known metadata.
        let declined = [
            "delete",
            "unknown tool",
            "tools/list",
            "_meta with more",
            "2026: delete",
        ];
        let body_lean = !declined.iter().any(|d| c.what.starts_with(d))
            && !c.what.starts_with("2026: no client capabilities");
        if body_lean {
            expected_lean += 1;
        }
        assert_eq!(
            served.load(std::sync::atomic::Ordering::Relaxed),
            expected_lean,
            "stdio, {}: lean path taken or not as expected",
            c.what
        );
    }
    assert!(expected_lean >= 15, "{expected_lean}");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_stdio_a_cancelled_notification_ends_a_lean_call() {
    let port = FakePort::start().await;
    let served = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let pipe = StdioPipe::start(&port, Some(served.clone()))
        .await
        .initialize()
        .await;
    port.port
        .script(ScriptedResponse::json(200, json!({"ok": true})).after(Duration::from_secs(3)));
    let call = tool_call(json!("slow-1"), "get-all-integrations", json!({}));
    let (pipe, _) = pipe.send(call, false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(port.api_requests().len(), 1, "the request reached Port");
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": "slow-1", "reason": "user pressed stop"}});
    let started = std::time::Instant::now();
    let (_pipe, answer) = pipe.send(cancel.to_string(), true).await;
    let answer = answer.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the call waited for Port"
    );
    assert_eq!(answer["id"], json!("slow-1"));
    assert_eq!(
        answer["result"]["structuredContent"]["error"],
        json!("cancelled")
    );
    wait_for_abort(&port).await;
    assert_eq!(served.load(std::sync::atomic::Ordering::Relaxed), 1);
}
