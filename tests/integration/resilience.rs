//! Upstream faults and rate limits: what is retried, what never is, waits that respect the
//! call budget, bounded concurrency, oversized answers and cancellation. Each test injects its
//! fault into the fake Port and counts the requests Port received.

use std::time::{Duration, Instant};

use port_integrations_mcp::{
    config::PortSettings,
    port::{CallContext, PortClient, PortError, PortRequest},
    sandbox::ScriptedResponse,
};
use serde_json::json;

use crate::common::*;

fn status(code: u16) -> ScriptedResponse {
    ScriptedResponse::json(
        code,
        json!({"ok": false, "error": format!("e{code}"), "message": "injected"}),
    )
}

async fn setup_with(edit: impl FnOnce(&mut PortSettings)) -> (FakePort, Client) {
    let port = FakePort::start().await;
    let mut settings = port.settings(static_token());
    edit(&mut settings);
    let client = connect(&settings).await;
    (port, client)
}

fn methods(port: &FakePort) -> Vec<String> {
    port.api_requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test]
async fn reads_and_deletes_are_retried_on_transient_statuses() {
    for code in [408, 429, 502, 503, 504] {
        let (port, client) = setup().await;
        for (tool, method) in [("get-integration", "GET"), ("delete-integration", "DELETE")] {
            port.port.clear_requests();
            port.port
                .script(status(code).with_header("retry-after", "0"));
            let r = call(&client, tool, json!({"identifier": "github-ocean"})).await;
            assert!(!is_error(&r), "{tool} {code}: {r:?}");
            let expected = format!("{method} /v1/integration/github-ocean");
            assert_eq!(
                methods(&port),
                [expected.clone(), expected],
                "{tool} {code}"
            );
        }
    }
}

#[tokio::test]
async fn retries_stop_after_max_attempts() {
    let (port, client) = setup().await;
    for _ in 0..6 {
        port.port
            .script(status(503).with_header("retry-after", "0"));
    }
    let r = call(&client, "get-all-integrations", json!({})).await;
    assert!(is_error(&r));
    assert!(
        text(&r).starts_with("Port answered HTTP 503 (e503): injected"),
        "{}",
        text(&r)
    );
    assert_eq!(port.api_requests().len(), 4, "max_attempts is 4");
}

#[tokio::test]
async fn non_transient_failures_are_not_retried() {
    for code in [400, 401, 403, 404, 409, 413, 422, 500] {
        let (port, client) = setup().await;
        port.port.script(status(code));
        let r = call(&client, "get-all-integrations", json!({})).await;
        assert!(is_error(&r), "{code}");
        assert_eq!(port.api_requests().len(), 1, "{code}");
    }
}

#[tokio::test]
async fn a_patch_that_may_have_reached_port_is_never_retried() {
    for code in [408, 500, 502, 503, 504] {
        for (tool, args) in [
            ("update-integration", json!({"identifier": "github-ocean"})),
            (
                "update-integration-s-config",
                json!({"identifier": "github-ocean", "body": {"config": {"resources": []}}}),
            ),
        ] {
            let (port, client) = setup().await;
            port.port
                .script(status(code).with_header("retry-after", "0"));
            let r = call(&client, tool, args).await;
            assert!(is_error(&r), "{tool} {code}");
            assert_eq!(
                port.api_requests().len(),
                1,
                "{tool} {code}: a retry would double the resync"
            );
        }
    }
}

#[tokio::test]
async fn a_patch_that_timed_out_is_not_retried() {
    let (port, client) = setup_with(|s| s.timeout = Duration::from_millis(300)).await;
    port.port
        .script(ScriptedResponse::json(200, json!({"ok": true})).after(Duration::from_secs(2)));
    let r = call(
        &client,
        "update-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(is_error(&r));
    assert!(
        text(&r).contains("may or may not have been applied"),
        "{}",
        text(&r)
    );
    assert_eq!(port.api_requests().len(), 1);
}

#[tokio::test]
async fn a_read_that_timed_out_is_retried_within_the_budget() {
    let (port, client) = setup_with(|s| s.timeout = Duration::from_millis(300)).await;
    port.port
        .script(ScriptedResponse::json(200, json!({"ok": true})).after(Duration::from_secs(2)));
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(port.api_requests().len(), 2);
}

#[tokio::test]
async fn a_patch_refused_with_429_is_retried_once_allowed() {
    let (port, client) = setup().await;
    port.port
        .script(status(429).with_header("retry-after", "0"));
    let r = call(
        &client,
        "update-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(methods(&port), ["PATCH /v1/integration/github-ocean"; 2]);
    assert_eq!(port.api_requests()[1].body, "{}");
}

#[tokio::test]
async fn a_patch_whose_connection_was_never_made_is_retried() {
    // Nothing listens on the port yet; the fake starts listening there a moment later.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let port = FakePort::start().await;
    let mut settings = settings_for(&format!("http://{addr}"), static_token());
    settings.max_attempts = 12;
    let client = connect(&settings).await;
    let late = port.port.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        late.serve(addr).await.unwrap();
    });
    let r = call(
        &client,
        "update-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(
        methods(&port),
        ["PATCH /v1/integration/github-ocean"],
        "exactly one PATCH reached Port"
    );
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (port, client) = setup().await;
    port.port
        .script(status(503).with_header("retry-after", "1"));
    let started = Instant::now();
    let r = call(&client, "get-all-integrations", json!({})).await;
    assert!(!is_error(&r));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried before Retry-After"
    );
    assert_eq!(port.api_requests().len(), 2);
}

#[tokio::test]
async fn ratelimit_reset_is_read_as_epoch_or_delta() {
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2;
    for reset in [epoch.to_string(), "1".to_string()] {
        let (port, client) = setup().await;
        port.port
            .script(status(429).with_header("x-ratelimit-reset", &reset));
        let started = Instant::now();
        let r = call(&client, "get-all-integrations", json!({})).await;
        assert!(!is_error(&r), "{reset}");
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{reset}: waited {:?}",
            started.elapsed()
        );
        assert_eq!(port.api_requests().len(), 2);
    }
}

#[tokio::test]
async fn a_wait_past_the_budget_returns_at_once() {
    let (port, client) = setup().await; // budget 5 s
    port.port
        .script(status(429).with_header("retry-after", "120"));
    let started = Instant::now();
    let r = call(
        &client,
        "update-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "slept through a wait past the budget"
    );
    assert!(is_error(&r));
    assert!(
        text(&r).contains("rate limited, retry after 120 s"),
        "{}",
        text(&r)
    );
    assert_eq!(
        r.structured_content.unwrap()["retryAfterSeconds"],
        json!(120)
    );
    assert_eq!(port.api_requests().len(), 1);
}

#[tokio::test]
async fn requests_in_flight_are_bounded() {
    let (port, client) = setup_with(|s| s.max_in_flight = 2).await;
    for _ in 0..6 {
        port.port.script(
            ScriptedResponse::json(200, json!({"ok": true, "integrations": []}))
                .after(Duration::from_millis(150)),
        );
    }
    let calls = (0..6).map(|_| call(&client, "get-all-integrations", json!({})));
    for r in futures::future::join_all(calls).await {
        assert!(!is_error(&r), "{r:?}");
    }
    assert_eq!(port.api_requests().len(), 6);
    assert_eq!(port.port.max_concurrent(), 2);
}

#[tokio::test]
async fn a_call_queued_past_its_budget_gives_up_without_calling_port() {
    let port = FakePort::start().await;
    let mut settings = port.settings(static_token());
    settings.max_in_flight = 1;
    let client = PortClient::new(&settings).unwrap();
    port.port
        .script(ScriptedResponse::json(200, json!({"ok": true})).after(Duration::from_millis(800)));
    let slow = {
        let client = client.clone();
        tokio::spawn(async move { client.send(&PortRequest::get(&["integration"])).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let queued = client
        .send_with(
            &PortRequest::get(&["integration", "metadata"]),
            &CallContext {
                deadline: Some(Instant::now() + Duration::from_millis(200)),
                ..CallContext::default()
            },
        )
        .await;
    assert!(matches!(queued, Err(PortError::Busy { .. })), "{queued:?}");
    assert!(slow.await.unwrap().is_ok());
    assert_eq!(methods(&port), ["GET /v1/integration"]);
}

#[tokio::test]
async fn an_oversized_answer_is_refused() {
    let (port, client) = setup_with(|s| s.max_response_bytes = 1000).await;
    let r = call(&client, "get-all-integrations", json!({})).await;
    assert!(is_error(&r));
    assert!(
        text(&r)
            .starts_with("Port's answer is larger than the 1000-byte cap (--max-response-bytes)"),
        "{}",
        text(&r)
    );
    assert_eq!(port.api_requests().len(), 1);
    // A small answer still passes.
    let r = call(
        &client,
        "get-integration-s-event-logs",
        json!({"identifier": "github-ocean", "limit": 1}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
}

#[tokio::test]
async fn cancelling_a_call_aborts_the_port_request() {
    let (port, client) = setup().await;
    cancel_a_slow_call(&port, &client).await;
}
