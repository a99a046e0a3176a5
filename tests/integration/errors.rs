//! Port's failures reach the model as `isError` tool results it can act on.

use std::time::Duration;

use port_integrations_mcp::{config::Credentials, sandbox::ScriptedResponse};
use serde_json::{Value, json};

use crate::common::*;

/// Scripts one answer, calls get-integration, and returns (text, structuredContent).
async fn failing_call(response: ScriptedResponse) -> (String, Value) {
    let (port, client) = setup().await;
    port.port.script(response);
    let result = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(is_error(&result), "{result:?}");
    assert_eq!(
        port.api_requests().len(),
        1,
        "GETs are not retried yet; one request expected"
    );
    (text(&result), result.structured_content.clone().unwrap())
}

#[tokio::test]
async fn status_codes_map_to_actionable_errors() {
    let cases: [(u16, &str, &str); 7] = [
        (401, "unauthorized", "access token expired"),
        (403, "forbidden", "moderator or admin"),
        (404, "not_found", "Call get-all-integrations"),
        (413, "request_too_large", "1 MiB"),
        (422, "invalid_request", "does not match the route's schema"),
        (429, "rate_limited", "rate limited, retry after 17 s"),
        (500, "Internal server error", "Retrying later may help"),
    ];
    for (status, code, hint) in cases {
        let response = ScriptedResponse::json(
            status,
            json!({"ok": false, "error": code, "message": format!("message for {status}")}),
        )
        .with_header("x-trace-id", &format!("trace-{status}"))
        .with_header("retry-after", "17");
        let (text, structured) = failing_call(response).await;
        assert!(
            text.starts_with(&format!(
                "Port answered HTTP {status} ({code}): message for {status} [x-trace-id: "
            )),
            "{text}"
        );
        assert!(text.contains("\nHint: "), "{text}");
        assert!(text.contains(hint), "{status}: {text}");
        assert_eq!(structured["status"], json!(status));
        assert_eq!(structured["error"], json!(code));
        assert_eq!(
            structured["message"],
            json!(format!("message for {status}"))
        );
        assert_eq!(structured["body"]["ok"], json!(false));
        // The fake adds its own x-trace-id first; ours is appended; the first one wins.
        assert!(
            structured["traceId"]
                .as_str()
                .unwrap()
                .starts_with("sandbox-trace-")
        );
    }
}

#[tokio::test]
async fn rate_limit_reset_header_gives_the_wait() {
    let response = ScriptedResponse::json(429, json!({"ok": false, "error": "too_many_requests"}))
        .with_header("x-ratelimit-reset", "42");
    let (text, structured) = failing_call(response).await;
    assert!(
        text.starts_with("Port answered HTTP 429 (too_many_requests). [x-trace-id:"),
        "{text}"
    );
    assert!(text.contains("retry after 42 s"), "{text}");
    assert_eq!(structured["retryAfterSeconds"], json!(42));
}

#[tokio::test]
async fn ok_false_on_a_2xx_is_an_error() {
    let (text, structured) = failing_call(ScriptedResponse::json(
        200,
        json!({"ok": false, "error": "invalid_request", "message": "mapping rejected"}),
    ))
    .await;
    assert!(
        text.starts_with("Port answered HTTP 200 (invalid_request): mapping rejected"),
        "{text}"
    );
    assert!(text.contains("ok: false"), "{text}");
    assert_eq!(structured["status"], json!(200));
}

#[tokio::test]
async fn error_object_form_is_understood() {
    let (text, structured) = failing_call(ScriptedResponse::json(
        409,
        json!({"ok": false, "error": {"name": "resync_stale", "message": "a newer resync exists", "details": {"a": 1}}}),
    ))
    .await;
    assert!(
        text.starts_with("Port answered HTTP 409 (resync_stale): a newer resync exists"),
        "{text}"
    );
    assert_eq!(structured["error"], json!("resync_stale"));
}

#[tokio::test]
async fn non_json_error_page_keeps_an_excerpt() {
    let (text, structured) = failing_call(ScriptedResponse {
        body: "<html>500 Internal Server Error</html>".into(),
        headers: vec![("content-type".into(), "text/html".into())],
        ..ScriptedResponse::json(500, json!(null))
    })
    .await;
    assert!(
        text.starts_with("Port answered HTTP 500: <html>500 Internal Server Error</html>"),
        "{text}"
    );
    assert_eq!(structured["error"], Value::Null);
}

#[tokio::test]
async fn non_json_success_is_an_error() {
    let (text, structured) = failing_call(ScriptedResponse {
        body: "not json".into(),
        ..ScriptedResponse::json(200, json!(null))
    })
    .await;
    assert!(
        text.starts_with("Port answered HTTP 200 with a body that is not JSON"),
        "{text}"
    );
    assert_eq!(structured["error"], json!("invalid_response"));
}

#[tokio::test]
async fn timeout_is_reported_within_the_limit() {
    let port = FakePort::start().await;
    let mut settings = port.settings(static_token());
    settings.timeout = Duration::from_millis(300);
    settings.budget = Duration::from_millis(300);
    let client = connect(&settings).await;
    port.port
        .script(ScriptedResponse::json(200, json!({"ok": true})).after(Duration::from_secs(5)));
    let started = std::time::Instant::now();
    let result = call(&client, "get-integration", json!({"identifier": "x"})).await;
    let elapsed = started.elapsed();
    assert!(is_error(&result));
    assert!(
        text(&result).starts_with("Port did not answer within 0 s"),
        "{}",
        text(&result)
    );
    assert_eq!(
        result.structured_content.unwrap()["error"],
        json!("timeout")
    );
    // Bounded: the call returns once the limit runs out, not when the fake answers.
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
}

#[tokio::test]
async fn unreachable_upstream_is_reported() {
    // Bind then drop a listener: nothing listens on that port any more.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let settings = settings_for(&format!("http://{addr}"), static_token());
    let client = connect(&settings).await;
    let result = call(&client, "get-all-integrations", json!({})).await;
    assert!(is_error(&result));
    let text = text(&result);
    assert!(
        text.starts_with(&format!("Could not reach Port at http://{addr}: ")),
        "{text}"
    );
    assert!(text.contains("Nothing was processed"), "{text}");
    assert_eq!(
        result.structured_content.unwrap()["error"],
        json!("unreachable")
    );
}

#[tokio::test]
async fn no_credentials_names_the_variables_and_sends_nothing() {
    let port = FakePort::start().await;
    let client = connect(&port.settings(Credentials::None)).await;
    // The tools are still listed.
    assert_eq!(client.list_all_tools().await.unwrap().len(), 7);
    let result = call(&client, "get-all-integrations", json!({})).await;
    assert!(is_error(&result));
    let text = text(&result);
    assert!(text.contains("PORT_API_KEY"), "{text}");
    assert!(
        text.contains("PORT_CLIENT_ID and PORT_CLIENT_SECRET"),
        "{text}"
    );
    assert!(port.port.requests().is_empty());
}

#[tokio::test]
async fn unknown_tool_is_a_protocol_error() {
    let (port, client) = setup().await;
    let err = client
        .call_tool(rmcp::model::CallToolRequestParams::new("resync-everything"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("-32602") || err.to_string().to_lowercase().contains("tool"),
        "{err}"
    );
    assert!(port.port.requests().is_empty());
}
