//! A hostile (or broken) Port: absurd wait headers, redirects to a foreign host, bodies that
//! are not UTF-8, nested 100k deep or carry lone surrogates, and error texts that quote the
//! credentials. Each attack goes through the real MCP client (rmcp's path, and the lean path
//! over HTTP), and REST where it matters; each test then checks exactly what Port (and the
//! foreign host) received, that no secret reached a result, an answer or a log line, and that
//! the server still serves a normal call.

use std::{net::SocketAddr, process::Stdio, sync::Arc, time::Duration};

use port_integrations_mcp::{
    config::{Credentials, PortSettings},
    port::PortClient,
    sandbox::{SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, Sandbox, SandboxAuth, ScriptedResponse},
    tools::PortTools,
    transport::{http::app_with, lean::LeanPath, rest},
};
use rmcp::{
    ServiceExt,
    model::CallToolResult,
    transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess},
};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

use crate::{common::*, http::http_args};

/// Bounds a call that the original code left unanswered (a panic in the handler).
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(15), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer (the server hung or its handler died)"))
}

fn requests(port: &FakePort) -> Vec<String> {
    port.api_requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// Everything a client sees of a result, as one text: content and structuredContent.
fn seen(result: &CallToolResult) -> String {
    format!(
        "{}\n{}",
        serde_json::to_string(&result.content).unwrap(),
        result
            .structured_content
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default()
    )
}

/// A normal call still gets Port's normal answer.
async fn still_serves(port: &FakePort, client: &Client) {
    port.port.clear_requests();
    let r = bounded(
        "a normal call",
        call(
            client,
            "get-integration",
            json!({"identifier": "github-ocean"}),
        ),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(
        r.structured_content.unwrap()["integration"]["identifier"],
        json!("github-ocean")
    );
    assert_eq!(requests(port), ["GET /v1/integration/github-ocean"]);
}

/// The MCP app (with the lean path) and the REST app on one client of one fake Port.
struct Apps {
    mcp: SocketAddr,
    rest: SocketAddr,
    lean: Arc<LeanPath>,
}

async fn apps(settings: &PortSettings) -> Apps {
    let tools = PortTools::new(PortClient::new(settings).unwrap());
    let (router, lean) = app_with(
        tools.clone(),
        &http_args(true),
        CancellationToken::new(),
        true,
    );
    Apps {
        mcp: listen(router).await,
        rest: listen(rest::router(tools, &http_args(true))).await,
        lean: lean.unwrap(),
    }
}

/// rmcp's own client over HTTP, on the app with the lean path.
async fn http_client(apps: &Apps) -> Client {
    let uri = format!("http://{}/mcp", apps.mcp);
    ().serve(StreamableHttpClientTransport::from_uri(uri))
        .await
        .unwrap()
}

/// One stateless `tools/call` over HTTP, as a 2025-11-25 client sends it (the lean path's).
async fn lean_call(apps: &Apps, name: &str, arguments: Value) -> Value {
    let served = apps.lean.served();
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": name, "arguments": arguments}});
    let r = reqwest::Client::new()
        .post(format!("http://{}/mcp", apps.mcp))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert_eq!(
        apps.lean.served(),
        served + 1,
        "not served by the lean path"
    );
    serde_json::from_str::<Value>(&text).unwrap()["result"].clone()
}

async fn rest_get(apps: &Apps, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    rest_send(apps, "GET", path, None).await
}

async fn rest_send(
    apps: &Apps,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new().request(
        method.parse().unwrap(),
        format!("http://{}{path}", apps.rest),
    );
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

// ---------------------------------------------------------------- defect 5: absurd durations

#[tokio::test]
async fn absurd_wait_headers_neither_panic_nor_wait() {
    let cases = [
        // (status, headers, requests Port gets)
        (429, vec![("retry-after", "18446744073709551615")], 1),
        (429, vec![("x-ratelimit-reset", "1e300")], 1),
        (
            503,
            vec![
                ("x-ratelimit-reset", "1e19"),
                ("x-ratelimit-remaining", "0"),
            ],
            1,
        ),
        // Without the window used up, the reset is no wait: the 503 is simply retried.
        (503, vec![("x-ratelimit-reset", "1e19")], 2),
    ];
    for (status, headers, expected) in cases {
        let (port, client) = setup().await;
        let mut script = ScriptedResponse::json(
            status,
            json!({"ok": false, "error": "limited", "message": "injected"}),
        );
        for (k, v) in &headers {
            script = script.with_header(k, v);
        }
        port.port.script(script);
        let r = bounded(
            &format!("{status} {headers:?}"),
            call(
                &client,
                "get-integration",
                json!({"identifier": "github-ocean"}),
            ),
        )
        .await;
        let what = format!("{status} {headers:?}");
        assert_eq!(requests(&port).len(), expected, "{what}");
        if expected == 1 {
            assert!(is_error(&r), "{what}");
            let structured = r.structured_content.clone().unwrap();
            assert_eq!(structured["status"], json!(status), "{what}");
            // Capped at a day, not "forever".
            assert_eq!(structured["retryAfterSeconds"], json!(86_400), "{what}");
        } else {
            assert!(!is_error(&r), "{what}: {r:?}");
        }
        still_serves(&port, &client).await;
    }
}

#[tokio::test]
async fn a_token_that_never_expires_does_not_overflow_the_clock() {
    let port = FakePort::with_auth(SandboxAuth {
        token_lifetime_secs: u64::MAX,
        ..SandboxAuth::default()
    })
    .await;
    let client = connect(&port.settings(client_credentials())).await;
    for _ in 0..2 {
        let r = bounded(
            "expiresIn u64::MAX",
            call(
                &client,
                "get-integration",
                json!({"identifier": "github-ocean"}),
            ),
        )
        .await;
        assert!(!is_error(&r), "{r:?}");
    }
    let token_requests = port
        .port
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/auth/access_token")
        .count();
    assert_eq!(token_requests, 1, "the token was cached");
    assert_eq!(requests(&port), ["GET /v1/integration/github-ocean"; 2]);
}

// ---------------------------------------------------- defect 9: x-ratelimit-reset is no wait

fn with_rate_window(script: ScriptedResponse, remaining: &str) -> ScriptedResponse {
    script
        .with_header("x-ratelimit-limit", "1000")
        .with_header("x-ratelimit-remaining", remaining)
        .with_header("x-ratelimit-period", "60")
        .with_header("x-ratelimit-reset", "59")
}

#[tokio::test]
async fn a_transient_503_is_retried_although_port_names_its_rate_window() {
    let (port, client) = setup().await;
    port.port.script(with_rate_window(
        ScriptedResponse::json(503, json!({"ok": false, "error": "unavailable"})),
        "998",
    ));
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(requests(&port), ["GET /v1/integration/github-ocean"; 2]);
}

#[tokio::test]
async fn no_retry_after_is_invented() {
    let port = FakePort::start().await;
    let settings = port.settings(static_token());
    let client = connect(&settings).await;
    let apps = apps(&settings).await;
    // 500 and 422 scripted with Port's rate headers; 404 is the fake's own answer, which
    // carries them too (as Port's answers all do).
    for status in [500u16, 422, 404] {
        let script = || {
            with_rate_window(
                ScriptedResponse::json(
                    status,
                    json!({"ok": false, "error": "e", "message": "injected"}),
                ),
                "998",
            )
        };
        let identifier = if status == 404 {
            "nope"
        } else {
            "github-ocean"
        };
        if status != 404 {
            port.port.script(script());
        }
        let r = call(
            &client,
            "get-integration",
            json!({"identifier": identifier}),
        )
        .await;
        assert!(is_error(&r), "{status}");
        let structured = r.structured_content.unwrap();
        assert_eq!(structured["status"], json!(status));
        assert_eq!(
            structured.get("retryAfterSeconds"),
            None,
            "{status}: {structured}"
        );
        if status != 404 {
            port.port.script(script());
        }
        let (got, headers, _) = rest_get(&apps, &format!("/v1/integration/{identifier}")).await;
        assert_eq!(got, status);
        assert_eq!(headers.get("retry-after"), None, "REST {status}");
    }
    // A 429, and an answer whose window is used up, do carry the wait.
    port.port.script(with_rate_window(
        ScriptedResponse::json(429, json!({"ok": false, "error": "rate_limited"})),
        "0",
    ));
    let (got, headers, _) =
        rest_send(&apps, "PATCH", "/v1/integration/github-ocean", Some("{}")).await;
    assert_eq!(got, 429);
    assert_eq!(headers["retry-after"], "59");
}

// --------------------------------------- defect 8: no request with only milliseconds to spare

#[tokio::test]
async fn a_call_that_queued_until_too_little_budget_is_left_sends_nothing() {
    let port = FakePort::start().await;
    let mut settings = port.settings(static_token());
    settings.max_in_flight = 1;
    settings.budget = Duration::from_secs(3);
    settings.min_request_budget = Duration::from_millis(1500);
    let client = connect(&settings).await;
    let apps = apps(&settings).await;
    for surface in ["mcp", "rest"] {
        port.port.clear_requests();
        // Holds the only slot for 2 s of the queued call's 3 s.
        port.port.script(
            ScriptedResponse::json(200, json!({"ok": true, "integrations": []}))
                .on_path("/v1/integration")
                .after(Duration::from_secs(2)),
        );
        let holder = match surface {
            "mcp" => {
                let first = call(&client, "get-all-integrations", json!({}));
                let (first, queued) = tokio::join!(first, async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    call(
                        &client,
                        "update-integration",
                        json!({"identifier": "github-ocean"}),
                    )
                    .await
                });
                assert!(!is_error(&first), "{first:?}");
                assert!(is_error(&queued));
                let text = text(&queued);
                assert!(
                    text.starts_with("too many calls to Port are in flight")
                        && text.contains("Nothing was sent to Port")
                        && text.contains("--min-request-budget-ms"),
                    "{text}"
                );
                assert_eq!(queued.structured_content.unwrap()["error"], json!("busy"));
                "mcp"
            }
            _ => {
                let first = rest_get(&apps, "/v1/integration");
                let (first, queued) = tokio::join!(first, async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    rest_send(&apps, "PATCH", "/v1/integration/github-ocean", Some("{}")).await
                });
                assert_eq!(first.0, 200);
                assert_eq!(queued.0, 503, "{}", queued.2);
                assert_eq!(queued.1["retry-after"], "1");
                let body: Value = serde_json::from_str(&queued.2).unwrap();
                assert_eq!(body["error"], json!("busy"));
                "rest"
            }
        };
        assert_eq!(
            requests(&port),
            ["GET /v1/integration"],
            "{holder}: the PATCH reached Port"
        );
    }
    still_serves(&port, &client).await;
}

// ------------------------------------------------------------- defect 14: no redirect followed

#[tokio::test]
async fn redirects_are_never_followed_with_credentials() {
    let foreign = Sandbox::default();
    let foreign_url = foreign.spawn().await.unwrap();
    // The token route: a 307 would make the client re-send the secret to the foreign host.
    for status in [301u16, 302, 303, 307, 308] {
        let port = FakePort::with_auth(SandboxAuth::default()).await;
        let client = connect(&port.settings(client_credentials())).await;
        port.port.script(
            ScriptedResponse::redirect(status, &format!("{foreign_url}/v1/auth/access_token?x=1"))
                .on_path("/v1/auth/access_token"),
        );
        let r = bounded(
            "token redirect",
            call(
                &client,
                "get-integration",
                json!({"identifier": "github-ocean"}),
            ),
        )
        .await;
        assert!(is_error(&r), "{status}");
        let shown = text(&r);
        assert!(
            shown.starts_with(&format!(
                "Port answered HTTP {status} (a redirect to {foreign_url}/v1/auth/access_token)"
            )),
            "{shown}"
        );
        assert!(!shown.contains("x=1"), "{shown}");
        let structured = r.structured_content.unwrap();
        assert_eq!(structured["error"], json!("redirected"));
        assert_eq!(structured["status"], json!(status));
        // Port got the one token request, and nothing else; the foreign host nothing at all.
        let sent: Vec<String> = port
            .port
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert_eq!(sent, ["POST /v1/auth/access_token"], "{status}");
        assert!(
            foreign.requests().is_empty(),
            "{status}: {:?}",
            foreign.requests()
        );
        // The next call exchanges the credentials normally.
        let r = call(
            &client,
            "get-integration",
            json!({"identifier": "github-ocean"}),
        )
        .await;
        assert!(!is_error(&r), "{r:?}");
    }
    // An API route, with a static token: over MCP (rmcp's path and the lean path) and REST.
    let port = FakePort::start().await;
    let settings = port.settings(static_token());
    let client = connect(&settings).await;
    let apps = apps(&settings).await;
    let redirect =
        || ScriptedResponse::redirect(307, &format!("{foreign_url}/v1/integration/github-ocean"));
    port.port.script(redirect());
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(is_error(&r));
    assert!(
        text(&r).starts_with("Port answered HTTP 307 (a redirect to"),
        "{}",
        text(&r)
    );
    assert_eq!(
        requests(&port),
        ["GET /v1/integration/github-ocean"],
        "not retried"
    );
    port.port.clear_requests();
    port.port.script(redirect());
    let lean = lean_call(
        &apps,
        "update-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert_eq!(lean["isError"], json!(true));
    assert_eq!(lean["structuredContent"]["error"], json!("redirected"));
    assert_eq!(requests(&port), ["PATCH /v1/integration/github-ocean"]);
    port.port.clear_requests();
    port.port.script(redirect());
    let (status, _, body) = rest_get(&apps, "/v1/integration/github-ocean").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("redirects are not followed"), "{body}");
    assert_eq!(requests(&port), ["GET /v1/integration/github-ocean"]);
    assert!(foreign.requests().is_empty(), "{:?}", foreign.requests());
    still_serves(&port, &client).await;
}

// ---------------------------------------- defects 10, 11: bodies strict clients would refuse

fn hostile_bodies() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    vec![
        (
            "not UTF-8",
            b"{\"ok\":true,\"integrations\":[{\"identifier\":\"\xff\xfe\"}]}".to_vec(),
            "it is not valid UTF-8 (invalid byte sequence at byte 42)",
        ),
        (
            // Large enough to be checked on a blocking thread.
            "not UTF-8, 300 KiB",
            [
                b"{\"ok\":true,\"pad\":\"".to_vec(),
                vec![b'a'; 300 * 1024],
                b"\",\"x\":\"\xff\"}".to_vec(),
            ]
            .concat(),
            "it is not valid UTF-8 (invalid byte sequence at byte 307225)",
        ),
        (
            "100k deep",
            format!(
                "{{\"ok\":true,\"x\":{}1{}}}",
                "[".repeat(100_000),
                "]".repeat(100_000)
            )
            .into_bytes(),
            "it nests arrays or objects deeper than 127 levels (at byte 141), which strict JSON \
             parsers refuse",
        ),
        (
            "a number beyond f64",
            br#"{"ok":true,"n":1e400}"#.to_vec(),
            "it has a number at byte 15 too large for a 64-bit float, which strict JSON parsers \
             refuse",
        ),
        (
            "lone surrogate",
            br#"{"ok":true,"integrations":[{"identifier":"\ud800"}]}"#.to_vec(),
            "it has a lone UTF-16 surrogate escape at byte 42, which strict JSON parsers refuse",
        ),
    ]
}

#[tokio::test]
async fn bodies_strict_parsers_refuse_are_errors_on_every_path() {
    let port = FakePort::start().await;
    let settings = port.settings(static_token());
    let rmcp_client = connect(&settings).await;
    let mut large = settings.clone();
    // Over the structured limit, rmcp's path reads the body the lean path's way.
    large.max_structured_bytes = 8;
    let rmcp_large = connect(&large).await;
    let apps = apps(&settings).await;
    let over_http = http_client(&apps).await;
    for (what, body, problem) in hostile_bodies() {
        let expected = format!("Port answered HTTP 200 with a body that is not JSON ({problem}).");
        for (path, client) in [("rmcp", &rmcp_client), ("rmcp, text only", &rmcp_large)] {
            port.port.clear_requests();
            port.port.script(ScriptedResponse::bytes(200, body.clone()));
            let r = bounded(what, call(client, "get-all-integrations", json!({}))).await;
            assert!(is_error(&r), "{what} ({path}): {r:?}");
            assert_eq!(text(&r), expected, "{what} ({path})");
            assert_eq!(
                r.structured_content.unwrap()["error"],
                json!("invalid_response")
            );
            assert_eq!(requests(&port), ["GET /v1/integration"], "{what} ({path})");
        }
        port.port.script(ScriptedResponse::bytes(200, body.clone()));
        let lean = lean_call(&apps, "get-all-integrations", json!({})).await;
        assert_eq!(lean["isError"], json!(true), "{what} (lean)");
        assert_eq!(lean["content"][0]["text"], json!(expected), "{what} (lean)");
        assert_eq!(
            lean["structuredContent"]["error"],
            json!("invalid_response")
        );
        port.port.script(ScriptedResponse::bytes(200, body.clone()));
        let r = call(&over_http, "get-all-integrations", json!({})).await;
        assert_eq!(text(&r), expected, "{what} (rmcp's HTTP client)");
        port.port.script(ScriptedResponse::bytes(200, body.clone()));
        let (status, _, answer) = rest_get(&apps, "/v1/integration").await;
        assert_eq!(status, 502, "{what} (REST): {answer}");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["error"], json!("bad_gateway"));
        assert!(
            answer["message"].as_str().unwrap().ends_with(problem),
            "{what} (REST): {answer}"
        );
    }
    // A large answer that is fine passes, byte for byte, on both paths.
    let fine = format!("{{\"ok\":true,\"pad\":\"{}\"}}", "é".repeat(150 * 1024));
    port.port.script(ScriptedResponse::bytes(200, fine.clone()));
    let r = call(&rmcp_large, "get-all-integrations", json!({})).await;
    assert!(!is_error(&r));
    assert_eq!(text(&r), fine);
    port.port.script(ScriptedResponse::bytes(200, fine.clone()));
    let lean = lean_call(&apps, "get-all-integrations", json!({})).await;
    assert_eq!(lean["content"][0]["text"], json!(fine));
    assert_eq!(
        lean["structuredContent"]["pad"].as_str().unwrap().len(),
        300 * 1024
    );
    still_serves(&port, &rmcp_client).await;
}

// ------------------------------------------------------------------- defect 15: no secret leaks

/// Every way a secret could be echoed back, and the secret each quotes.
fn echoes(secret: &str) -> Vec<(&'static str, ScriptedResponse)> {
    let long_page = format!(
        "<html>{}Authorization: Bearer {secret}</html>",
        // The secret starts 5 characters before the 200-character cut of the excerpt.
        "x".repeat(200 - "<html>".len() - "Authorization: Bearer ".len() - 5)
    );
    vec![
        (
            "a 502 page quoting the header",
            ScriptedResponse::bytes(502, format!("<html>Bad gateway. Request: GET /v1/integration\nAuthorization: Bearer {secret}</html>")),
        ),
        ("a page cut through the secret", ScriptedResponse::bytes(500, long_page)),
        (
            "a JSON error quoting it everywhere",
            ScriptedResponse::json(
                400,
                json!({"ok": false, "error": {"name": format!("bad {secret}"), "message": format!("token {secret} refused"),
                       "details": {"headers": {"authorization": format!("Bearer {secret}")}, secret: 1}}}),
            )
            .with_trace_id(&format!("trace-{secret}")),
        ),
        (
            "an ok:false success",
            ScriptedResponse::json(200, json!({"ok": false, "error": "e", "message": format!("Bearer {secret}")})),
        ),
        (
            "a success quoting it",
            ScriptedResponse::json(200, json!({"ok": true, "integrations": [], "echo": format!("Bearer {secret}")})),
        ),
    ]
}

#[tokio::test]
async fn secrets_echoed_by_port_never_reach_a_result_or_an_answer() {
    let port = FakePort::start().await;
    let settings = port.settings(static_token());
    let client = connect(&settings).await;
    let apps = apps(&settings).await;
    let over_http = http_client(&apps).await;
    let clean = |what: &str, surface: &str, shown: &str| {
        assert!(!shown.contains(STATIC_TOKEN), "{what} ({surface}): {shown}");
        // Not even the head of a secret cut by an excerpt.
        let head = format!("Bearer {}", &STATIC_TOKEN[..5]);
        assert!(!shown.contains(&head), "{what} ({surface}): {shown}");
        assert!(shown.contains("[RED"), "{what} ({surface}): {shown}");
    };
    let patch = json!({"identifier": "github-ocean"});
    for (what, script) in echoes(STATIC_TOKEN) {
        // A PATCH: never retried on a 5xx, so the echo is the answer seen.
        port.port.clear_requests();
        port.port.script(script.clone());
        let r = call(&client, "update-integration", patch.clone()).await;
        clean(what, "rmcp", &seen(&r));
        port.port.script(script.clone());
        let lean = lean_call(&apps, "update-integration", patch.clone()).await;
        clean(what, "lean", &lean.to_string());
        port.port.script(script.clone());
        let served = apps.lean.served();
        let r = call(&over_http, "update-integration", patch.clone()).await;
        assert_eq!(
            apps.lean.served(),
            served + 1,
            "rmcp's HTTP client, lean path"
        );
        clean(what, "rmcp's HTTP client", &seen(&r));
        port.port.script(script);
        let (_, headers, body) =
            rest_send(&apps, "PATCH", "/v1/integration/github-ocean", Some("{}")).await;
        clean(what, "REST", &format!("{headers:?} {body}"));
        assert_eq!(
            requests(&port),
            ["PATCH /v1/integration/github-ocean"; 4],
            "{what}"
        );
    }
    // The excerpt of a page is still there, only without the secret.
    port.port.script(echoes(STATIC_TOKEN).remove(0).1);
    let r = call(
        &client,
        "update-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(
        text(&r).starts_with("Port answered HTTP 502: <html>Bad gateway. Request: GET /v1/integration\nAuthorization: Bearer [REDACTED]</html>"),
        "{}",
        text(&r)
    );
    still_serves(&port, &client).await;
}

#[tokio::test]
async fn the_client_secret_and_the_exchanged_token_are_redacted() {
    let port = FakePort::with_auth(SandboxAuth::default()).await;
    let client = connect(&port.settings(client_credentials())).await;
    // The token endpoint refuses, quoting the request it got.
    let echo = format!(
        "invalid request body {{\"clientId\":\"{SANDBOX_CLIENT_ID}\",\"clientSecret\":\"{SANDBOX_CLIENT_SECRET}\"}}"
    );
    port.port.script(
        ScriptedResponse::json(
            401,
            json!({"ok": false, "error": "unauthorized", "message": echo}),
        )
        .on_path("/v1/auth/access_token"),
    );
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(is_error(&r));
    let shown = seen(&r);
    assert!(!shown.contains(SANDBOX_CLIENT_SECRET), "{shown}");
    assert!(
        shown.contains("\\\"clientSecret\\\":\\\"[REDACTED]\\\""),
        "{shown}"
    );
    assert_eq!(port.api_requests().len(), 0);
    // The access token the exchange gave (the fake numbers them) is masked too.
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    let issued = port
        .single_request()
        .header("authorization")
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_string();
    port.port.clear_requests();
    port.port.script(ScriptedResponse::bytes(
        500,
        format!("upstream said: token {issued} and secret {SANDBOX_CLIENT_SECRET}"),
    ));
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    let first_line = text(&r).lines().next().unwrap().to_string();
    assert!(
        first_line.starts_with(
            "Port answered HTTP 500: upstream said: token [REDACTED] and secret [REDACTED] [x-trace-id:"
        ),
        "{first_line}"
    );
    assert_eq!(requests(&port), ["GET /v1/integration/github-ocean"]);
    still_serves(&port, &client).await;
}

#[tokio::test]
async fn the_callers_passthrough_token_is_redacted() {
    let port = FakePort::with_auth(SandboxAuth {
        static_tokens: vec!["caller-token-abcdef".into()],
        ..SandboxAuth::default()
    })
    .await;
    let tools = PortTools::new(PortClient::new(&port.settings(Credentials::Passthrough)).unwrap());
    let addr = listen(rest::router(tools, &http_args(true))).await;
    port.port.script(ScriptedResponse::bytes(
        502,
        "proxy: Authorization: Bearer caller-token-abcdef",
    ));
    let r = reqwest::Client::new()
        .patch(format!("http://{addr}/v1/integration/github-ocean"))
        .header("authorization", "Bearer caller-token-abcdef")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(!body.contains("caller-token-abcdef"), "{body}");
    assert!(body.contains("Bearer [REDACTED]"), "{body}");
    assert_eq!(requests(&port), ["PATCH /v1/integration/github-ocean"]);
}

// ---------------------------------------- defects 15, 16: the real binary's log lines (stdio)

#[tokio::test]
async fn the_binarys_logs_hold_no_secret_and_no_url_password() {
    const BIN: &str = env!("CARGO_BIN_EXE_port-integrations-mcp");
    let port = FakePort::start().await;
    // A proxy URL with userinfo; the fake Port ignores it.
    let with_password = port
        .url
        .replacen("http://", "http://proxy-user:pr0xy-pa55word@", 1);
    let cmd = tokio::process::Command::new(BIN).configure(|c| {
        c.env_clear()
            .env("PORT_API_KEY", STATIC_TOKEN)
            .env("PORT_BASE_URL", &with_password)
            .env("PORT_MCP_LOG", "debug")
            .args(["stdio"]);
    });
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = stderr.unwrap();
    let logs = tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let mut all = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            all.push(line);
        }
        all
    });
    let client = ().serve(transport).await.unwrap();
    let mut shown = Vec::new();
    for (_, script) in echoes(STATIC_TOKEN) {
        port.port.script(script);
        let r = bounded(
            "binary",
            call(
                &client,
                "update-integration",
                json!({"identifier": "github-ocean"}),
            ),
        )
        .await;
        shown.push(seen(&r));
    }
    client.cancel().await.unwrap();
    let logs = bounded("stderr", logs).await.unwrap().join("\n");
    assert!(logs.contains("Port client ready"), "{logs}");
    assert!(logs.contains("[REDACTED]@127.0.0.1"), "{logs}");
    assert!(logs.contains("Port call failed"), "{logs}");
    for text in shown.iter().chain([&logs]) {
        for secret in [STATIC_TOKEN, "pr0xy-pa55word", "proxy-user"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
    // Port got each call once (a PATCH is not retried on these).
    assert_eq!(
        requests(&port),
        vec!["PATCH /v1/integration/github-ocean"; echoes(STATIC_TOKEN).len()]
    );
}

#[test]
fn a_refused_base_url_is_shown_without_its_password() {
    let error = port_integrations_mcp::config::normalize_base_url("ftp://me:s3cr3t-pw@proxy/")
        .unwrap_err()
        .to_string();
    assert!(!error.contains("s3cr3t-pw"), "{error}");
    assert!(error.contains("ftp://[REDACTED]@proxy/"), "{error}");
}

// ------------------------------------------------ absurd headers, huge and slow answers

#[tokio::test]
async fn huge_slow_and_oddly_headed_answers_are_bounded() {
    let port = FakePort::start().await;
    let mut settings = port.settings(static_token());
    settings.max_response_bytes = 64 * 1024;
    settings.timeout = Duration::from_millis(500);
    let client = connect(&settings).await;
    let apps = apps(&settings).await;
    // Larger than the cap: refused on every surface, whatever it announces.
    let huge = format!("{{\"ok\":true,\"x\":\"{}\"}}", "a".repeat(200 * 1024));
    port.port.script(ScriptedResponse::bytes(200, huge.clone()));
    let r = call(
        &client,
        "update-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(
        text(&r).starts_with("Port's answer is larger than the 65536-byte cap"),
        "{}",
        text(&r)
    );
    port.port.script(ScriptedResponse::bytes(200, huge.clone()));
    let lean = lean_call(
        &apps,
        "update-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert_eq!(
        lean["structuredContent"]["error"],
        json!("response_too_large")
    );
    port.port.script(ScriptedResponse::bytes(200, huge));
    let (status, _, _) =
        rest_send(&apps, "PATCH", "/v1/integration/github-ocean", Some("{}")).await;
    assert_eq!(status, 502);
    assert_eq!(requests(&port), ["PATCH /v1/integration/github-ocean"; 3]);
    // Slower than the timeout: a PATCH is reported as possibly applied, and not re-sent.
    port.port.clear_requests();
    port.port
        .script(ScriptedResponse::json(200, json!({"ok": true})).after(Duration::from_secs(3)));
    let r = bounded(
        "slow",
        call(
            &client,
            "update-integration",
            json!({"identifier": "github-ocean"}),
        ),
    )
    .await;
    assert_eq!(r.structured_content.unwrap()["error"], json!("timeout"));
    assert_eq!(requests(&port), ["PATCH /v1/integration/github-ocean"]);
    // A trace id of 8000 characters, and junk rate headers on a 429: cut, ignored, no panic.
    port.port.clear_requests();
    port.port.script(
        ScriptedResponse::json(429, json!({"ok": false, "error": "rate_limited"}))
            .with_trace_id(&"t".repeat(8000))
            .with_header("retry-after", "-5")
            .with_header("x-ratelimit-remaining", "NaN")
            .with_header("x-ratelimit-reset", "-1e308"),
    );
    let r = call(
        &client,
        "update-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(
        !is_error(&r),
        "a 429 with no usable wait is retried after a backoff: {r:?}"
    );
    port.port.script(
        ScriptedResponse::json(500, json!({"ok": false, "error": "e"}))
            .with_trace_id(&"t".repeat(8000)),
    );
    let r = call(
        &client,
        "update-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    let trace = r.structured_content.unwrap()["traceId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(trace, "t".repeat(200));
    // More headers than the HTTP client parses: a transport failure, not a crash.
    let mut crowded = ScriptedResponse::json(200, json!({"ok": true}));
    for n in 0..150 {
        crowded = crowded.with_header(&format!("x-junk-{n}"), "1");
    }
    port.port.script(crowded);
    let r = call(
        &client,
        "update-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(is_error(&r));
    assert_eq!(
        r.structured_content.clone().unwrap()["error"],
        json!("connection_lost"),
        "{}",
        text(&r)
    );
    assert_eq!(requests(&port), ["PATCH /v1/integration/github-ocean"; 4]);
    still_serves(&port, &client).await;
}
