//! Each of the seven tools: the exact request Port receives and the exact result the client sees.

use port_integrations_mcp::{port::USER_AGENT, sandbox::ScriptedResponse};
use serde_json::{Value, json};

use crate::common::*;

/// Headers every call to Port carries.
fn assert_standard_headers(req: &port_integrations_mcp::sandbox::RecordedRequest) {
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {STATIC_TOKEN}").as_str())
    );
    assert_eq!(req.header("user-agent"), Some(USER_AGENT));
    assert_eq!(req.header("accept"), Some("application/json"));
    assert!(USER_AGENT.starts_with("port-integrations-mcp/"));
}

#[tokio::test]
async fn get_all_integrations_without_filter() {
    let (port, client) = setup().await;
    let result = call(&client, "get-all-integrations", json!({})).await;

    let req = port.single_request();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/v1/integration")
    );
    assert_eq!(req.query, None);
    assert_eq!(req.body, "");
    assert_standard_headers(&req);
    assert_eq!(req.header("content-type"), None);

    assert!(!is_error(&result));
    let body = result.structured_content.clone().unwrap();
    assert_eq!(body["ok"], json!(true));
    let ids: Vec<&str> = body["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "github-ocean",
            "pagerduty-prod",
            "k8s-exporter-eu",
            "jira-cloud"
        ]
    );
    assert_eq!(serde_json::from_str::<Value>(&text(&result)).unwrap(), body);
}

#[tokio::test]
async fn get_all_integrations_with_filter() {
    let (port, client) = setup().await;
    let result = call(
        &client,
        "get-all-integrations",
        json!({"actionsProcessingEnabled": true}),
    )
    .await;
    let req = port.single_request();
    assert_eq!(req.path, "/v1/integration");
    assert_eq!(req.query.as_deref(), Some("actionsProcessingEnabled=true"));
    let body = result.structured_content.unwrap();
    assert_eq!(body["integrations"].as_array().unwrap().len(), 1);
    assert_eq!(body["integrations"][0]["identifier"], "github-ocean");
}

#[tokio::test]
async fn success_body_is_passed_through_byte_for_byte() {
    let (port, client) = setup().await;
    // Odd spacing and key order prove the text is Port's own bytes, not a re-encoding.
    let raw = "{ \"ok\" : true,\n  \"integrations\": [ {\"zeta\": 1, \"alpha\": \"é\"} ] }";
    port.port.script(ScriptedResponse {
        body: raw.into(),
        ..ScriptedResponse::json(200, json!(null))
    });
    let result = call(&client, "get-all-integrations-meta-data", json!({})).await;
    assert!(!is_error(&result));
    assert_eq!(text(&result), raw);
    assert_eq!(
        result.structured_content,
        Some(json!({"ok": true, "integrations": [{"zeta": 1, "alpha": "é"}]}))
    );
}

#[tokio::test]
async fn get_all_integrations_meta_data() {
    let (port, client) = setup().await;
    let result = call(&client, "get-all-integrations-meta-data", json!({})).await;
    let req = port.single_request();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/v1/integration/metadata")
    );
    assert_eq!(req.query, None);
    assert_standard_headers(&req);
    let body = result.structured_content.unwrap();
    assert_eq!(
        body["integrations"][1],
        json!({
            "identifier": "pagerduty-prod",
            "installationId": "pagerduty-prod",
            "integrationType": "pagerduty",
            "updatedAt": "2026-11-23T07:00:41.000Z"
        })
    );
}

#[tokio::test]
async fn get_integration_plain_and_with_every_query_parameter() {
    let (port, client) = setup().await;
    let expected = port.port.integration("github-ocean").unwrap();
    let result = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    let req = port.single_request();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/v1/integration/github-ocean")
    );
    assert_eq!(req.query, None);
    assert_standard_headers(&req);
    assert_eq!(
        result.structured_content,
        Some(json!({"ok": true, "integration": expected}))
    );

    port.port.clear_requests();
    let result = call(
        &client,
        "get-integration",
        json!({
            "identifier": "log-gh-1a2b",
            "byField": "logIngestId",
            "isPolling": false,
            "oceanCoreVersion": "0.28.3"
        }),
    )
    .await;
    let req = port.single_request();
    assert_eq!(req.path, "/v1/integration/log-gh-1a2b");
    assert_eq!(
        req.query.as_deref(),
        Some("byField=logIngestId&isPolling=false&oceanCoreVersion=0.28.3")
    );
    assert_eq!(
        result.structured_content.unwrap()["integration"]["identifier"],
        "github-ocean"
    );
}

#[tokio::test]
async fn identifier_is_one_percent_encoded_path_segment() {
    let (port, client) = setup().await;
    let result = call(
        &client,
        "get-integration",
        json!({"identifier": "a/b c?d#e%f"}),
    )
    .await;
    let req = port.single_request();
    assert_eq!(req.path, "/v1/integration/a%2Fb%20c%3Fd%23e%25f");
    assert_eq!(req.query, None);
    // The fake decodes the segment back and looks it up: a 404 naming the whole identifier.
    assert!(is_error(&result));
    assert!(text(&result).contains("Integration with identifier \"a/b c?d#e%f\" was not found"));

    // `..` would be resolved away by the URL library and reach another route: refused.
    port.port.clear_requests();
    for id in [".", ".."] {
        let r = call(&client, "delete-integration", json!({"identifier": id})).await;
        assert!(
            text(&r).starts_with("Invalid argument `identifier`"),
            "{}",
            text(&r)
        );
    }
    assert!(port.api_requests().is_empty());

    // Dots inside a segment are ordinary characters.
    call(&client, "get-integration", json!({"identifier": "../x"})).await;
    assert_eq!(port.single_request().path, "/v1/integration/..%2Fx");
}

#[tokio::test]
async fn update_integration_without_body_sends_empty_object_and_triggers_resync() {
    let (port, client) = setup().await;
    let result = call(
        &client,
        "update-integration",
        json!({"identifier": "pagerduty-prod"}),
    )
    .await;
    let req = port.single_request();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("PATCH", "/v1/integration/pagerduty-prod")
    );
    assert_eq!(req.query, None);
    assert_eq!(req.body, "{}");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_standard_headers(&req);
    assert!(!is_error(&result));
    let body = result.structured_content.unwrap();
    assert_eq!(body["integration"]["resyncState"]["status"], "running");
    assert_eq!(
        port.port.integration("pagerduty-prod").unwrap()["resyncState"]["status"],
        "running"
    );

    // An explicit empty body and a null body are the same resync.
    for args in [
        json!({"identifier": "pagerduty-prod", "body": {}}),
        json!({"identifier": "pagerduty-prod", "body": null}),
    ] {
        port.port.clear_requests();
        call(&client, "update-integration", args).await;
        assert_eq!(port.single_request().body, "{}");
    }
}

#[tokio::test]
async fn update_integration_forwards_the_body_as_written() {
    let (port, client) = setup().await;
    let body = json!({
        "title": "GitHub (org)",
        "version": "3.5.0",
        "installationAppType": "github-ocean",
        "processingMode": "batch",
        "changelogDestination": {"type": "WEBHOOK", "url": "https://hooks.example.com/x", "agent": false},
        "config": {
            "deleteDependentEntities": false,
            "createMissingRelatedEntities": true,
            "enableMergeEntity": true,
            "resources": [{
                "kind": "repository",
                "selector": {"query": "true", "includedFiles": ["README.md"]},
                "port": {"entity": {"mappings": [{
                    "identifier": {"combinator": "and", "rules": [{"property": "url", "operator": "=", "value": ".html_url"}]},
                    "blueprint": "\"service\"",
                    "properties": {"url": ".html_url"}
                }]}}
            }]
        }
    });
    let result = call(
        &client,
        "update-integration",
        json!({"identifier": "github-ocean", "body": body}),
    )
    .await;
    assert!(!is_error(&result), "{result:?}");
    let req = port.single_request();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("PATCH", "/v1/integration/github-ocean")
    );
    assert_eq!(req.json(), body);
    let updated = result.structured_content.unwrap();
    assert_eq!(updated["integration"]["title"], "GitHub (org)");
    assert_eq!(updated["integration"]["processingMode"], "batch");
}

#[tokio::test]
async fn delete_integration() {
    let (port, client) = setup().await;
    let result = call(
        &client,
        "delete-integration",
        json!({"identifier": "k8s-exporter-eu"}),
    )
    .await;
    let req = port.single_request();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("DELETE", "/v1/integration/k8s-exporter-eu")
    );
    assert_eq!((req.query.as_deref(), req.body.as_str()), (None, ""));
    assert_standard_headers(&req);
    assert_eq!(result.structured_content, Some(json!({"ok": true})));
    assert_eq!(text(&result), r#"{"ok":true}"#);
    assert!(port.port.integration("k8s-exporter-eu").is_none());
}

#[tokio::test]
async fn update_integration_s_config() {
    let (port, client) = setup().await;
    let config = json!({
        "deleteDependentEntities": true,
        "resources": [{
            "kind": "services",
            "selector": {"query": ".status != \"disabled\""},
            "port": {"entity": {"mappings": {
                "identifier": ".id",
                "title": ".name",
                "blueprint": "\"pagerdutyService\"",
                "properties": {"oncall": ".escalation_policy.summary // \"\""}
            }}}
        }]
    });
    let result = call(
        &client,
        "update-integration-s-config",
        json!({"identifier": "pagerduty-prod", "body": {"config": config}}),
    )
    .await;
    assert!(!is_error(&result), "{result:?}");
    let req = port.single_request();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("PATCH", "/v1/integration/pagerduty-prod/config")
    );
    assert_eq!(req.query, None);
    assert_eq!(req.json(), json!({"config": config}));
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_standard_headers(&req);
    let body = result.structured_content.unwrap();
    assert_eq!(body["integration"]["config"], config);
    assert_eq!(body["integration"]["resyncState"]["status"], "running");
}

#[tokio::test]
async fn event_logs_with_every_filter_use_repeated_keys() {
    let (port, client) = setup().await;
    let result = call(
        &client,
        "get-integration-s-event-logs",
        json!({
            "identifier": "pagerduty-prod",
            "limit": 2,
            "timestamp": "2026-11-23T07:00:41.000Z",
            "log_id": "log_pd_003",
            "direction": "up",
            "event_id": "evt_pd_7",
            "levels": ["ERROR", "FATAL"],
            "etl_phases": ["transform", "load"],
            "kinds": ["services", "incidents"]
        }),
    )
    .await;
    let req = port.single_request();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/v1/integration/pagerduty-prod/logs")
    );
    assert_eq!(
        req.query.as_deref(),
        Some(
            "limit=2&timestamp=2026-11-23T07%3A00%3A41.000Z&log_id=log_pd_003&direction=up\
             &event_id=evt_pd_7&levels=ERROR&levels=FATAL&etl_phases=transform&etl_phases=load\
             &kinds=services&kinds=incidents"
        )
    );
    assert_standard_headers(&req);
    let logs = result.structured_content.unwrap()["data"]["logs"].clone();
    let ids: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["log_pd_003", "log_pd_002"]);
}

#[tokio::test]
async fn event_logs_minimal_sends_no_query() {
    let (port, client) = setup().await;
    let result = call(
        &client,
        "get-integration-s-event-logs",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    let req = port.single_request();
    assert_eq!(req.path, "/v1/integration/github-ocean/logs");
    assert_eq!(req.query, None);
    assert_eq!(
        result.structured_content.unwrap()["data"]["logs"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn all_seven_tools_work_in_the_2026_protocol_era() {
    let port = FakePort::start().await;
    let client = connect_modern(&port.settings(static_token())).await;
    let calls = [
        ("get-all-integrations", json!({}), "GET /v1/integration"),
        (
            "get-all-integrations-meta-data",
            json!({}),
            "GET /v1/integration/metadata",
        ),
        (
            "get-integration",
            json!({"identifier": "github-ocean"}),
            "GET /v1/integration/github-ocean",
        ),
        (
            "update-integration",
            json!({"identifier": "github-ocean"}),
            "PATCH /v1/integration/github-ocean",
        ),
        (
            "update-integration-s-config",
            json!({"identifier": "github-ocean", "body": {"config": {"resources": []}}}),
            "PATCH /v1/integration/github-ocean/config",
        ),
        (
            "get-integration-s-event-logs",
            json!({"identifier": "github-ocean", "limit": 1}),
            "GET /v1/integration/github-ocean/logs",
        ),
        (
            "delete-integration",
            json!({"identifier": "github-ocean"}),
            "DELETE /v1/integration/github-ocean",
        ),
    ];
    for (name, arguments, _) in &calls {
        let result = call(&client, name, arguments.clone()).await;
        assert!(!is_error(&result), "{name}: {result:?}");
        assert_eq!(
            result.structured_content.unwrap()["ok"],
            json!(true),
            "{name}"
        );
    }
    let seen: Vec<String> = port
        .api_requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let expected: Vec<&str> = calls.iter().map(|c| c.2).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn answers_over_the_structured_limit_come_as_text_only() {
    let port = FakePort::start().await;
    let mut settings = port.settings(static_token());
    settings.max_structured_bytes = 200;
    let client = connect(&settings).await;
    let expected = port.port.integration("github-ocean").unwrap();
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r));
    assert_eq!(
        r.structured_content, None,
        "a large answer carries no JSON tree"
    );
    let body: Value = serde_json::from_str(&text(&r)).unwrap();
    assert_eq!(body, json!({"ok": true, "integration": expected}));
    // Small answers keep both.
    let r = call(
        &client,
        "delete-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert_eq!(r.structured_content, Some(json!({"ok": true})));
}
