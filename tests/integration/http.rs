//! Streamable HTTP: rmcp's client through the real axum app, the health endpoint, and the
//! DNS-rebinding checks (Host and Origin).

use std::net::SocketAddr;

use port_integrations_mcp::{
    config::HttpSettings, port::PortClient, tools::PortTools, transport::http::app,
};
use rmcp::{
    model::ProtocolVersion,
    service::{ClientLifecycleMode, ClientServiceExt},
    transport::StreamableHttpClientTransport,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::common::*;

pub fn http_args(stateless: bool) -> HttpSettings {
    let mut settings = HttpSettings::local(SocketAddr::from(([127, 0, 0, 1], 0)));
    settings.stateless = stateless;
    settings
}

/// Serves the app on an ephemeral loopback port; returns its address.
pub async fn serve(port: &FakePort, args: HttpSettings) -> SocketAddr {
    let client = PortClient::new(&port.settings(static_token())).unwrap();
    let router = app(PortTools::new(client), &args, CancellationToken::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

async fn round_trip(stateless: bool, mode: ClientLifecycleMode) {
    let port = FakePort::start().await;
    let addr = serve(&port, http_args(stateless)).await;
    let transport = StreamableHttpClientTransport::from_uri(format!("http://{addr}/mcp"));
    let client = ().serve_with_lifecycle(transport, mode).await.unwrap();

    assert_eq!(client.list_all_tools().await.unwrap().len(), 7);
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean", "isPolling": true}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(
        r.structured_content.unwrap()["integration"]["title"],
        "GitHub"
    );
    let req = port.single_request();
    assert_eq!(req.path, "/v1/integration/github-ocean");
    assert_eq!(req.query.as_deref(), Some("isPolling=true"));

    port.port.clear_requests();
    let r = call(
        &client,
        "update-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r));
    let req = port.single_request();
    assert_eq!((req.method.as_str(), req.body.as_str()), ("PATCH", "{}"));

    let r = call(
        &client,
        "get-integration-s-event-logs",
        json!({"identifier": "x", "limit": 500}),
    )
    .await;
    assert!(is_error(&r));
    assert!(text(&r).starts_with("Invalid argument `limit`"));
    assert_eq!(
        port.api_requests().len(),
        1,
        "the invalid call reached Port"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn stateful_legacy_client() {
    round_trip(false, ClientLifecycleMode::Initialize).await;
}

#[tokio::test]
async fn stateful_server_2026_client() {
    round_trip(
        false,
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    )
    .await;
}

#[tokio::test]
async fn stateless_legacy_client() {
    round_trip(true, ClientLifecycleMode::Initialize).await;
}

#[tokio::test]
async fn stateless_2026_client() {
    round_trip(
        true,
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    )
    .await;
}

#[tokio::test]
async fn healthz_answers_without_calling_port() {
    let port = FakePort::start().await;
    let addr = serve(&port, http_args(false)).await;
    let response = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"status":"ok"}"#);
    assert!(port.port.requests().is_empty());
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#;

async fn post_initialize(addr: SocketAddr, headers: &[(&str, &str)]) -> u16 {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn origin_and_host_are_checked() {
    let port = FakePort::start().await;
    let addr = serve(&port, http_args(false)).await;
    let local = format!("localhost:{}", addr.port());
    let cases: [(&[(&str, &str)], u16); 9] = [
        (&[], 200),
        (&[("origin", "http://localhost:3000")], 200),
        (&[("origin", "http://127.0.0.1:6274")], 200),
        (&[("origin", "https://localhost")], 200),
        (&[("origin", "http://evil.example")], 403),
        (&[("origin", "https://localhost.evil.example")], 403),
        (&[("origin", "null")], 403),
        (&[("host", "evil.example")], 403),
        (
            &[
                ("host", local.as_str()),
                ("origin", "http://attacker.test:80"),
            ],
            403,
        ),
    ];
    for (headers, status) in cases {
        assert_eq!(post_initialize(addr, headers).await, status, "{headers:?}");
    }
    assert!(port.port.requests().is_empty());
}

#[tokio::test]
async fn allowed_hosts_and_origins_extend_the_lists() {
    let port = FakePort::start().await;
    let mut args = http_args(false);
    args.allowed_hosts = vec!["mcp.example.com".into()];
    args.allowed_origins = vec!["https://portal.example.com:443".into()];
    let addr = serve(&port, args).await;
    assert_eq!(
        post_initialize(addr, &[("host", "mcp.example.com")]).await,
        200
    );
    assert_eq!(
        post_initialize(addr, &[("origin", "https://portal.example.com")]).await,
        200
    );
    assert_eq!(
        post_initialize(addr, &[("origin", "https://other.example.com")]).await,
        403
    );
    assert_eq!(
        post_initialize(addr, &[("host", "other.example.com")]).await,
        403
    );
    // The defaults still hold.
    assert_eq!(
        post_initialize(addr, &[("origin", "http://localhost:3000")]).await,
        200
    );
}
