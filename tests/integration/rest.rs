//! The REST surface: each operation's exact upstream request and passthrough answer, the same
//! upstream request as the MCP tool, refusals in Port's shape, the same access rules, and an
//! OpenAPI document that matches the routes served.

use std::net::SocketAddr;

use port_integrations_mcp::{
    config::{HttpSettings, Secret, ToolSelection, Toolset},
    port::PortClient,
    sandbox::{RecordedRequest, Sandbox, ScriptedResponse},
    tools::PortTools,
    transport::rest,
};
use serde_json::{Value, json};

use crate::{common::*, http::http_args};

async fn serve_rest(
    port: &FakePort,
    settings: HttpSettings,
    selection: ToolSelection,
) -> SocketAddr {
    let client = PortClient::new(&port.settings(static_token())).unwrap();
    let tools = PortTools::with_selection(client, &selection).unwrap();
    let app = rest::router(tools, &settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn setup_rest() -> (FakePort, SocketAddr) {
    let port = FakePort::start().await;
    let addr = serve_rest(&port, http_args(true), ToolSelection::default()).await;
    (port, addr)
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req =
        reqwest::Client::new().request(method.parse().unwrap(), format!("http://{addr}{path}"));
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        headers,
    )
}

fn without_times(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        obj.remove("updatedAt");
        obj.remove("lastResyncStart");
        obj.remove("nextResync");
        for child in obj.values_mut() {
            *child = without_times(child.take());
        }
    }
    v
}

fn upstream(r: &RecordedRequest) -> (String, String, Option<String>, String) {
    (
        r.method.clone(),
        r.path.clone(),
        r.query.clone(),
        r.body.clone(),
    )
}

/// (REST method, REST path after the prefix, REST body, MCP tool, MCP arguments)
fn cases() -> Vec<(
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    Value,
)> {
    vec![
        (
            "GET",
            "/integration?actionsProcessingEnabled=true",
            None,
            "get-all-integrations",
            json!({"actionsProcessingEnabled": true}),
        ),
        (
            "GET",
            "/integration/metadata",
            None,
            "get-all-integrations-meta-data",
            json!({}),
        ),
        (
            "GET",
            "/integration/github-ocean?byField=installationId&isPolling=true",
            None,
            "get-integration",
            json!({"identifier": "github-ocean", "byField": "installationId", "isPolling": true}),
        ),
        (
            "PATCH",
            "/integration/pagerduty-prod",
            None,
            "update-integration",
            json!({"identifier": "pagerduty-prod"}),
        ),
        (
            "PATCH",
            "/integration/pagerduty-prod",
            Some(r#"{"title":"PD"}"#),
            "update-integration",
            json!({"identifier": "pagerduty-prod", "body": {"title": "PD"}}),
        ),
        (
            "PATCH",
            "/integration/pagerduty-prod/config",
            Some(r#"{"config":{"resources":[]}}"#),
            "update-integration-s-config",
            json!({"identifier": "pagerduty-prod", "body": {"config": {"resources": []}}}),
        ),
        (
            "GET",
            "/integration/pagerduty-prod/logs?limit=2&levels=ERROR&levels=FATAL&kinds=services",
            None,
            "get-integration-s-event-logs",
            json!({"identifier": "pagerduty-prod", "limit": 2, "levels": ["ERROR", "FATAL"], "kinds": ["services"]}),
        ),
        (
            "DELETE",
            "/integration/k8s-exporter-eu",
            None,
            "delete-integration",
            json!({"identifier": "k8s-exporter-eu"}),
        ),
    ]
}

#[tokio::test]
async fn every_operation_sends_what_the_mcp_tool_sends_under_both_prefixes() {
    for prefix in rest::PREFIXES {
        for (method, path, body, tool, arguments) in cases() {
            // MCP first, on a fresh organization.
            let (mcp_port, client) = setup().await;
            let mcp_result = call(&client, tool, arguments.clone()).await;
            assert!(!is_error(&mcp_result), "{tool}: {mcp_result:?}");
            let mcp_request = upstream(&mcp_port.single_request());

            // Then REST, on another fresh organization.
            let (port, addr) = setup_rest().await;
            let (status, answer, headers) =
                send(addr, method, &format!("{prefix}{path}"), body).await;
            assert_eq!(status, 200, "{prefix}{path}: {answer}");
            let request = port.single_request();
            assert_eq!(upstream(&request), mcp_request, "{method} {prefix}{path}");
            assert_eq!(
                request.header("authorization"),
                Some(format!("Bearer {STATIC_TOKEN}").as_str())
            );
            // Port's body, as Port sent it.
            assert_eq!(answer["ok"], json!(true));
            // (Resync times differ between the two organizations; nothing else may.)
            assert_eq!(
                without_times(answer),
                without_times(mcp_result.structured_content.clone().unwrap()),
                "{tool}"
            );
            assert!(
                headers["x-trace-id"]
                    .to_str()
                    .unwrap()
                    .starts_with("sandbox-trace-")
            );
        }
    }
}

#[tokio::test]
async fn port_failures_pass_through_with_their_status() {
    let (port, addr) = setup_rest().await;
    let (status, body, headers) = send(addr, "GET", "/v1/v1/integration/ghost", None).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"ok": false, "error": "not_found", "message": "Integration with identifier \"ghost\" was not found"})
    );
    assert!(headers.contains_key("x-trace-id"));

    port.port.script(
        ScriptedResponse::json(
            429,
            json!({"ok": false, "error": "rate_limited", "message": "slow down"}),
        )
        .with_header("retry-after", "120"),
    );
    let (status, body, headers) = send(addr, "PATCH", "/v1/integration/github-ocean", None).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(headers["retry-after"], "120");
}

#[tokio::test]
async fn refusals_use_ports_shape_and_send_nothing() {
    let (port, addr) = setup_rest().await;
    let (status, body, _) = send(addr, "GET", "/v1/integration/x/logs?limit=301", None).await;
    assert_eq!(status, 400);
    assert_eq!(body["ok"], json!(false));
    assert_eq!(body["error"], "invalid_argument");
    assert!(
        body["message"].as_str().unwrap().contains("`limit`"),
        "{body}"
    );
    let (status, body, _) = send(addr, "GET", "/v1/integration/x/logs?levels=LOUD", None).await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_argument"))
    );
    let (status, body, _) = send(
        addr,
        "PATCH",
        "/v1/integration/x/config",
        Some(r#"{"title":"t"}"#),
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_argument"))
    );
    let (status, body, _) = send(addr, "PATCH", "/v1/integration/x", Some("{not json")).await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_body"))
    );
    // A body where the tool takes none is refused, not dropped on the way.
    let (status, body, _) = send(addr, "DELETE", "/v1/integration/x", Some("{}")).await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_body"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("`delete-integration` takes no request body"),
        "{body}"
    );
    assert!(port.port.requests().is_empty());

    // Read-only: by header for one request, or for the whole server.
    let r = reqwest::Client::new()
        .delete(format!("http://{addr}/v1/integration/github-ocean"))
        .header("x-read-only-mode", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let ro = serve_rest(
        &port,
        http_args(true),
        ToolSelection {
            read_only: true,
            ..Default::default()
        },
    )
    .await;
    let (status, body, _) = send(ro, "PATCH", "/v1/integration/github-ocean", None).await;
    assert_eq!((status, body["error"].clone()), (403, json!("read_only")));
    let (status, _, _) = send(ro, "GET", "/v1/integration/github-ocean", None).await;
    assert_eq!(status, 200);
    assert_eq!(port.api_requests().len(), 1, "only the read reached Port");
}

#[tokio::test]
async fn same_access_rules_as_mcp() {
    let port = FakePort::start().await;
    let mut settings = http_args(true);
    settings.auth_token = Some(Secret::new("rest-token-9"));
    let addr = serve_rest(&port, settings, ToolSelection::default()).await;
    let url = format!("http://{addr}/v1/integration");
    let c = reqwest::Client::new();
    assert_eq!(c.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        c.get(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        c.get(&url)
            .bearer_auth("rest-token-9")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let bad_host = c
        .get(&url)
        .bearer_auth("rest-token-9")
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_host.status(), 403);
    let bad_origin = c
        .get(&url)
        .bearer_auth("rest-token-9")
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_origin.status(), 403);
    let local_origin = c
        .get(&url)
        .bearer_auth("rest-token-9")
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(local_origin.status(), 200);
    assert_eq!(port.api_requests().len(), 2);
}

#[tokio::test]
async fn openapi_matches_the_routes_served() {
    let port = FakePort::start().await;
    let every_toolset = ToolSelection {
        toolsets: vec![Toolset::Integrations, Toolset::Mapping, Toolset::Sync],
        ..Default::default()
    };
    let addr = serve_rest(&port, http_args(true), every_toolset).await;
    let (status, doc, _) = send(addr, "GET", "/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            documented.push(format!("{} {path}", method.to_uppercase()));
            // Every documented operation is served: the router answers it (not 404/405 from
            // routing). Arguments come from the document itself.
            let mut concrete = path.replace("{identifier}", "github-ocean");
            if method == "post" {
                // A resync or restore is followed to its end; nothing ends it here.
                concrete.push_str("?timeoutSeconds=1");
            }
            let body = op.get("requestBody").map(|_| {
                if path.ends_with("/config") {
                    r#"{"config":{"resources":[]}}"#
                } else {
                    "{}"
                }
            });
            let before = port.api_requests().len();
            let (status, answer, _) = send(addr, &method.to_uppercase(), &concrete, body).await;
            // Served means routed to the operation and forwarded to Port, whose answer (even a
            // 404 once an earlier DELETE removed the integration) comes back in Port's shape.
            assert_ne!(status, 405, "{method} {path}");
            assert!(
                answer.get("ok").is_some(),
                "{method} {path}: {status} {answer}"
            );
            // One request for a plain operation; a tool that resolves or follows makes more.
            let sent = port.api_requests().len() - before;
            let forwarded = op["x-forwards"] == json!(true);
            assert!(
                if forwarded { sent == 1 } else { sent >= 1 },
                "{method} {path}: {sent} requests"
            );
            // Query parameters are the tool's own arguments.
            for p in op["parameters"].as_array().unwrap() {
                assert!(p["schema"].is_object(), "{path} {p}");
            }
        }
    }
    documented.sort();
    let mut served: Vec<String> = rest::PREFIXES
        .iter()
        .flat_map(|prefix| {
            rest::routes()
                .map(move |(_, o)| format!("{} {prefix}{}", o.method.to_uppercase(), o.path))
        })
        .collect();
    served.sort();
    assert_eq!(documented, served);
    // The logs operation documents the tool's filters, typed as the tool types them.
    let logs = &paths["/v1/integration/{identifier}/logs"]["get"]["parameters"];
    let names: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for n in [
        "identifier",
        "limit",
        "timestamp",
        "log_id",
        "direction",
        "event_id",
        "levels",
        "etl_phases",
        "kinds",
    ] {
        assert!(names.contains(&n), "{n} missing: {names:?}");
    }
    let levels = logs
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "levels")
        .unwrap();
    assert_eq!(
        levels["schema"]["items"]["enum"],
        json!(["DEBUG", "INFO", "WARNING", "ERROR", "FATAL"])
    );
}

#[tokio::test]
async fn passthrough_forwards_the_callers_token_over_rest_too() {
    let port = FakePort::start().await;
    let client =
        PortClient::new(&port.settings(port_integrations_mcp::config::Credentials::Passthrough))
            .unwrap();
    let mut settings = http_args(true);
    settings.token_passthrough = true;
    let app = rest::router(PortTools::new(client), &settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let c = reqwest::Client::new();
    let url = format!("http://{addr}/v1/integration/metadata");
    let r = c.get(&url).bearer_auth(STATIC_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        port.single_request().header("authorization"),
        Some(format!("Bearer {STATIC_TOKEN}").as_str())
    );
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["error"], "no_caller_token");
    assert_eq!(port.api_requests().len(), 1);
}

#[tokio::test]
async fn the_mapping_check_and_read_only_header_hold_over_rest_too() {
    let (port, addr) = setup_rest().await;
    let broken = r#"{"config":{"resources":[{"kind":"repository","selector":{"query":".a =="},"port":{"entity":{"mappings":{"identifier":".id","blueprint":"\"s\""}}}}]}}"#;
    let (status, body, _) = send(
        addr,
        "PATCH",
        "/v1/integration/github-ocean/config",
        Some(broken),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_mapping");
    assert_eq!(body["findings"][0]["field"], "selector.query");
    assert_eq!(body["findings"][0]["resource"], 0);
    assert!(
        body["findings"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("jq syntax error")
    );
    // The same header spelling MCP accepts.
    let r = reqwest::Client::new()
        .patch(format!("http://{addr}/v1/integration/github-ocean"))
        .header("x-read-only-mode", "TRUE")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(port.port.requests().is_empty(), "Port received nothing");
}

/// The sync tools are more than one Port request each: over REST they run the tool's whole
/// work (resolve the internal id, follow the resync) and answer with its result.
#[tokio::test]
async fn sync_tools_run_whole_over_rest() {
    let port = FakePort::serving(
        Sandbox::new(test_auth()).with_auto_resync(std::time::Duration::from_millis(300)),
    )
    .await;
    let selection = ToolSelection {
        toolsets: vec![Toolset::Integrations, Toolset::Sync],
        ..Default::default()
    };
    let addr = serve_rest(&port, http_args(true), selection).await;

    let calls = |port: &FakePort| -> Vec<String> {
        let seen = port
            .api_requests()
            .iter()
            .map(|r| {
                let (method, path, query, body) = upstream(r);
                format!(
                    "{method} {path}{} {body}",
                    query.map(|q| format!("?{q}")).unwrap_or_default()
                )
            })
            .collect();
        port.port.clear_requests();
        seen
    };

    let (status, body, _) = send(addr, "GET", "/v1/integration/jira-cloud/sync-status", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(body["resyncId"], "a41c7e92-8b3d-4f25-b6e0-7d9f1c2a3b48");
    let issue = &body["kinds"][1];
    assert_eq!(
        (
            &issue["kind"],
            &issue["state"],
            &issue["failed"],
            &issue["loaded"]
        ),
        (&json!("issue"), &json!("failed"), &json!(4), &json!(0))
    );
    assert_eq!(
        calls(&port),
        [
            "GET /v1/integration/jira-cloud ",
            "GET /v1/integration/integration_3b9d7c42/syncMetrics "
        ]
    );

    let (status, body, _) =
        send(addr, "GET", "/v1/integration/jira-cloud/sync-history", None).await;
    assert_eq!(status, 200, "{body}");
    let states: Vec<&Value> = body["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["state"])
        .collect();
    assert_eq!(states, [&json!("failed"), &json!("completed")]);
    assert_eq!(
        calls(&port),
        [
            "GET /v1/integration/jira-cloud ",
            "GET /v1/integration/integration_3b9d7c42/syncsMetadata "
        ]
    );

    let (status, body, _) = send(
        addr,
        "GET",
        "/v1/integration/jira-cloud/kinds?kind=issue&limit=2",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let keys: Vec<&Value> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["key"])
        .collect();
    assert_eq!(keys, [&json!("PAY-101"), &json!("PAY-102")]);
    assert_eq!(calls(&port), ["GET /v1/integration/jira-cloud/kinds "]);

    // A resync is triggered with Port's POST and followed to its end.
    let (status, body, _) = send(
        addr,
        "POST",
        "/v1/integration/jira-cloud/resync?timeoutSeconds=10",
        None,
    )
    .await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("completed")),
        "{body}"
    );
    let seen = calls(&port);
    assert_eq!(
        &seen[..2],
        [
            "GET /v1/integration/jira-cloud ",
            "POST /v1/integration/jira-cloud/resync {}"
        ]
    );
    assert!(
        seen.contains(&"GET /v1/integration/integration_3b9d7c42/syncMetrics ".to_string()),
        "{seen:#?}"
    );

    // Port's 404 keeps its status; a run that matches nothing is a 404 of ours.
    let (status, body, _) = send(addr, "GET", "/v1/integration/nope/sync-status", None).await;
    assert_eq!(
        (status, &body["error"], &body["ok"]),
        (404, &json!("not_found"), &json!(false))
    );
    assert_eq!(calls(&port), ["GET /v1/integration/nope "]);
    let (status, body, _) = send(
        addr,
        "GET",
        "/v1/integration/jira-cloud/sync-status?resyncId=zzz",
        None,
    )
    .await;
    assert_eq!((status, &body["error"]), (404, &json!("unknown_resync_id")));
    assert_eq!(
        calls(&port),
        [
            "GET /v1/integration/jira-cloud ",
            "GET /v1/integration/integration_3b9d7c42/syncMetrics?resyncId=zzz "
        ]
    );

    // Read-only per request, and arguments checked before anything is sent.
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/v1/integration/jira-cloud/resync"))
        .header("x-read-only-mode", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (status, body, _) = send(
        addr,
        "POST",
        "/v1/integration/jira-cloud/restore?timeoutSeconds=zero",
        None,
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_argument")),
        "{body}"
    );
    assert!(calls(&port).is_empty());
}
