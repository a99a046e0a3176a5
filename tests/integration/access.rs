//! HTTP access control: the inbound token, token passthrough, the per-request read-only header,
//! the request-size limit, readiness, and a dropped stateless connection.

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use port_integrations_mcp::{
    config::{Credentials, HttpSettings, Secret},
    port::PortClient,
    sandbox::ScriptedResponse,
    tools::PortTools,
    transport::http::app,
};
use rmcp::{
    model::CallToolRequestParams,
    service::{ClientLifecycleMode, ClientServiceExt},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{common::*, http::http_args};

async fn serve_with(
    port: &FakePort,
    credentials: Credentials,
    settings: HttpSettings,
) -> SocketAddr {
    let client = PortClient::new(&port.settings(credentials)).unwrap();
    let router = app(PortTools::new(client), &settings, CancellationToken::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn transport(
    addr: SocketAddr,
    edit: impl FnOnce(StreamableHttpClientTransportConfig) -> StreamableHttpClientTransportConfig,
) -> StreamableHttpClientTransport<reqwest::Client> {
    StreamableHttpClientTransport::from_config(edit(StreamableHttpClientTransportConfig::with_uri(
        format!("http://{addr}/mcp"),
    )))
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#;

async fn post(
    addr: SocketAddr,
    path: &str,
    body: impl Into<reqwest::Body>,
    auth: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    if let Some(a) = auth {
        request = request.header("authorization", a);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn inbound_token_is_required_on_mcp_only() {
    let port = FakePort::start().await;
    let mut settings = http_args(false);
    settings.auth_token = Some(Secret::new("inbound-secret-42"));
    let addr = serve_with(&port, static_token(), settings).await;

    let refused = post(addr, "/mcp", INITIALIZE, None).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers()["www-authenticate"],
        "Bearer realm=\"port-integrations-mcp\""
    );
    let body = refused.text().await.unwrap();
    assert!(!body.contains("inbound-secret-42"));
    assert_eq!(
        post(addr, "/mcp", INITIALIZE, Some("Bearer wrong"))
            .await
            .status(),
        401
    );
    assert_eq!(
        post(addr, "/mcp", INITIALIZE, Some("inbound-secret-42"))
            .await
            .status(),
        401
    );
    assert_eq!(
        post(addr, "/mcp", INITIALIZE, Some("Bearer inbound-secret-42"))
            .await
            .status(),
        200
    );
    for probe in ["/healthz", "/readyz"] {
        let r = reqwest::get(format!("http://{addr}{probe}")).await.unwrap();
        assert_eq!(r.status(), 200, "{probe} stays open");
    }

    // rmcp's client with the token works end to end.
    let client = ()
        .serve_with_lifecycle(
            transport(addr, |c| c.auth_header("inbound-secret-42")),
            ClientLifecycleMode::Initialize,
        )
        .await
        .unwrap();
    let r = call(&client, "get-all-integrations-meta-data", json!({})).await;
    assert!(!is_error(&r));
    // The inbound token is ours: Port gets the server's own credentials, never the caller's.
    assert_eq!(
        port.single_request().header("authorization"),
        Some(format!("Bearer {STATIC_TOKEN}").as_str())
    );
}

#[tokio::test]
async fn passthrough_forwards_each_callers_port_token() {
    let port = FakePort::start().await;
    let mut settings = http_args(true);
    settings.token_passthrough = true;
    let addr = serve_with(&port, Credentials::Passthrough, settings).await;

    let with_token = ()
        .serve_with_lifecycle(
            transport(addr, |c| c.auth_header(STATIC_TOKEN)),
            ClientLifecycleMode::Initialize,
        )
        .await
        .unwrap();
    let r = call(
        &with_token,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(
        port.single_request().header("authorization"),
        Some(format!("Bearer {STATIC_TOKEN}").as_str())
    );

    port.port.clear_requests();
    let wrong = ()
        .serve_with_lifecycle(
            transport(addr, |c| c.auth_header("someone-elses-expired-token")),
            ClientLifecycleMode::Initialize,
        )
        .await
        .unwrap();
    let r = call(
        &wrong,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(
        text(&r).starts_with("Port answered HTTP 401"),
        "{}",
        text(&r)
    );
    assert!(!text(&r).contains("someone-elses-expired-token"));
    assert_eq!(
        port.single_request().header("authorization"),
        Some("Bearer someone-elses-expired-token")
    );

    port.port.clear_requests();
    let anonymous =
        ().serve_with_lifecycle(transport(addr, |c| c), ClientLifecycleMode::Initialize)
            .await
            .unwrap();
    let r = call(
        &anonymous,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(is_error(&r));
    assert!(
        text(&r).contains("send `Authorization: Bearer <Port access token>`"),
        "{}",
        text(&r)
    );
    assert!(port.port.requests().is_empty());
}

#[tokio::test]
async fn read_only_header_hides_and_blocks_write_tools_for_that_request() {
    let port = FakePort::start().await;
    let addr = serve_with(&port, static_token(), http_args(false)).await;
    let headers = HashMap::from([(
        reqwest::header::HeaderName::from_static("x-read-only-mode"),
        reqwest::header::HeaderValue::from_static("1"),
    )]);
    let read_only = ()
        .serve_with_lifecycle(
            transport(addr, |c| c.custom_headers(headers)),
            ClientLifecycleMode::Initialize,
        )
        .await
        .unwrap();
    assert_eq!(read_only.list_all_tools().await.unwrap().len(), 4);
    let err = read_only
        .call_tool(
            CallToolRequestParams::new("update-integration")
                .with_arguments(args(json!({"identifier": "github-ocean"}))),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only mode"), "{err}");
    assert!(port.port.requests().is_empty());

    let normal =
        ().serve_with_lifecycle(transport(addr, |c| c), ClientLifecycleMode::Initialize)
            .await
            .unwrap();
    assert_eq!(normal.list_all_tools().await.unwrap().len(), 7);
}

#[tokio::test]
async fn oversized_requests_get_413_before_parsing() {
    let port = FakePort::start().await;
    let mut settings = http_args(false);
    settings.max_request_bytes = 64 * 1024;
    let addr = serve_with(&port, static_token(), settings).await;
    let big = vec![b'x'; 100 * 1024];
    assert_eq!(post(addr, "/mcp", big, None).await.status(), 413);
    assert_eq!(post(addr, "/mcp", INITIALIZE, None).await.status(), 200);
    assert!(port.port.requests().is_empty());
}

#[tokio::test]
async fn readiness_reports_credentials_and_the_last_call() {
    let port = FakePort::start().await;
    let addr = serve_with(&port, static_token(), http_args(true)).await;
    let ready = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = serde_json::from_str(&ready.text().await.unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"ready": true, "credentialsConfigured": true, "tokenPassthrough": false, "draining": false, "lastPortCall": null})
    );
    assert!(
        port.port.requests().is_empty(),
        "readiness never calls Port"
    );

    let client =
        ().serve_with_lifecycle(transport(addr, |c| c), ClientLifecycleMode::Initialize)
            .await
            .unwrap();
    call(&client, "get-integration", json!({"identifier": "nope"})).await;
    let body: Value = serde_json::from_str(
        &reqwest::get(format!("http://{addr}/readyz"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["lastPortCall"]["ok"], json!(false));
    assert_eq!(body["lastPortCall"]["status"], json!(404));
    assert!(body["lastPortCall"]["at_unix"].as_u64().unwrap() > 1_700_000_000);

    let unconfigured = serve_with(&port, Credentials::None, http_args(true)).await;
    let r = reqwest::get(format!("http://{unconfigured}/readyz"))
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(body["ready"], json!(false));
    assert_eq!(body["credentialsConfigured"], json!(false));
}

#[tokio::test]
async fn a_dropped_stateless_connection_aborts_the_port_request() {
    let port = FakePort::start().await;
    let addr = serve_with(&port, static_token(), http_args(true)).await;
    port.port
        .script(ScriptedResponse::json(200, json!({"ok": true})).after(Duration::from_secs(3)));
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get-all-integrations","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"curl","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let outcome = reqwest::Client::new()
        .post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "get-all-integrations")
        .timeout(Duration::from_millis(1500))
        .body(call)
        .send()
        .await;
    assert!(outcome.is_err(), "the client gave up first: {outcome:?}");
    assert_eq!(port.api_requests().len(), 1, "the call reached Port");
    let mut waited = 0;
    while port.port.aborted() == 0 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    assert_eq!(port.port.aborted(), 1, "Port's request was left running");
}
