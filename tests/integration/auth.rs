//! Credentials: the token exchange, its reuse, its refresh after expiry or a 401, and secrets
//! kept out of results.

use std::time::Duration;

use port_integrations_mcp::{
    config::{Credentials, Secret},
    sandbox::{SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SandboxAuth, ScriptedResponse},
};
use serde_json::json;

use crate::common::*;

fn summary(port: &FakePort) -> Vec<String> {
    port.port
        .requests()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.method,
                r.path,
                r.header("authorization").unwrap_or("-")
            )
        })
        .collect()
}

#[tokio::test]
async fn client_credentials_are_exchanged_once_and_reused() {
    let port = FakePort::start().await;
    let client = connect(&port.settings(client_credentials())).await;
    for _ in 0..3 {
        let r = call(&client, "get-all-integrations-meta-data", json!({})).await;
        assert!(!is_error(&r), "{r:?}");
    }
    let requests = port.port.requests();
    let exchange = &requests[0];
    assert_eq!(
        (exchange.method.as_str(), exchange.path.as_str()),
        ("POST", "/v1/auth/access_token")
    );
    assert_eq!(exchange.header("content-type"), Some("application/json"));
    assert_eq!(exchange.header("authorization"), None);
    assert_eq!(
        exchange.json(),
        json!({"clientId": SANDBOX_CLIENT_ID, "clientSecret": SANDBOX_CLIENT_SECRET})
    );
    assert_eq!(
        summary(&port)[1..],
        [
            "GET /v1/integration/metadata Bearer sandbox-access-token-1",
            "GET /v1/integration/metadata Bearer sandbox-access-token-1",
            "GET /v1/integration/metadata Bearer sandbox-access-token-1",
        ]
    );
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_retries_once() {
    let port = FakePort::start().await;
    let client = connect(&port.settings(client_credentials())).await;
    call(&client, "get-all-integrations-meta-data", json!({})).await;
    port.port.expire_tokens();
    port.port.clear_requests();

    let r = call(
        &client,
        "update-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    let seen = summary(&port);
    assert_eq!(seen.len(), 3, "{seen:#?}");
    assert_eq!(
        seen,
        [
            "PATCH /v1/integration/github-ocean Bearer sandbox-access-token-1",
            "POST /v1/auth/access_token -",
            "PATCH /v1/integration/github-ocean Bearer sandbox-access-token-2",
        ]
    );
}

#[tokio::test]
async fn a_second_401_after_refresh_is_returned_not_looped() {
    let port = FakePort::start().await;
    let client = connect(&port.settings(client_credentials())).await;
    let unauthorized = || {
        ScriptedResponse::json(
            401,
            json!({"ok": false, "error": "unauthorized", "message": "nope"}),
        )
        .on_path("/v1/integration")
    };
    port.port.script(unauthorized());
    port.port.script(unauthorized());
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(is_error(&r));
    assert!(text(&r).starts_with("Port answered HTTP 401 (unauthorized): nope"));
    let seen = summary(&port);
    let paths: Vec<&str> = seen.iter().map(|s| s.split(' ').nth(1).unwrap()).collect();
    assert_eq!(
        paths,
        [
            "/v1/auth/access_token",
            "/v1/integration/github-ocean",
            "/v1/auth/access_token",
            "/v1/integration/github-ocean"
        ]
    );
}

#[tokio::test]
async fn concurrent_calls_share_one_refresh() {
    let port = FakePort::start().await;
    let client = connect(&port.settings(client_credentials())).await;
    call(&client, "get-all-integrations-meta-data", json!({})).await;
    port.port.expire_tokens();
    port.port.clear_requests();

    // Joined on one task, so all eight are in flight with the expired token at once.
    let calls = (0..8).map(|_| call(&client, "get-all-integrations-meta-data", json!({})));
    for r in futures::future::join_all(calls).await {
        assert!(!is_error(&r), "{r:?}");
    }
    let exchanges = port
        .port
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/auth/access_token")
        .count();
    assert_eq!(exchanges, 1);
}

#[tokio::test]
async fn token_is_refreshed_before_it_expires() {
    let port = FakePort::with_auth(SandboxAuth {
        token_lifetime_secs: 1,
        ..SandboxAuth::default()
    })
    .await;
    let client = connect(&port.settings(client_credentials())).await;
    call(&client, "get-all-integrations-meta-data", json!({})).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = call(&client, "get-all-integrations-meta-data", json!({})).await;
    assert!(!is_error(&r));
    let paths: Vec<String> = port
        .port
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        paths,
        [
            "/v1/auth/access_token",
            "/v1/integration/metadata",
            "/v1/auth/access_token",
            "/v1/integration/metadata"
        ]
    );
}

#[tokio::test]
async fn refused_client_credentials_explain_and_leak_nothing() {
    let port = FakePort::start().await;
    let secret = "wrong-secret-value-XYZ";
    let client = connect(&port.settings(Credentials::ClientCredentials {
        client_id: Secret::new(SANDBOX_CLIENT_ID),
        client_secret: Secret::new(secret),
    }))
    .await;
    let r = call(&client, "get-all-integrations", json!({})).await;
    assert!(is_error(&r));
    let text = text(&r);
    assert!(
        text.starts_with("Port answered HTTP 401 (unauthorized): Invalid client credentials"),
        "{text}"
    );
    assert!(text.contains("PORT_CLIENT_ID/PORT_CLIENT_SECRET"), "{text}");
    let everything = format!("{r:?}");
    assert!(!everything.contains(secret), "{everything}");
    assert!(
        port.api_requests().is_empty(),
        "no API call without a token"
    );
}

#[tokio::test]
async fn static_token_is_sent_as_bearer_and_not_refreshed() {
    // Given with its `Bearer ` prefix, it is kept as is.
    let port = FakePort::start().await;
    let client = connect(&port.settings(Credentials::Token(Secret::new(format!(
        "Bearer {STATIC_TOKEN}"
    )))))
    .await;
    call(&client, "get-all-integrations", json!({})).await;
    assert_eq!(
        port.single_request().header("authorization"),
        Some(format!("Bearer {STATIC_TOKEN}").as_str())
    );

    // An expired static token cannot be refreshed: one request, and an error saying so.
    port.port.clear_requests();
    port.port.script(ScriptedResponse::json(
        401,
        json!({"ok": false, "error": "unauthorized", "message": "token expired"}),
    ));
    let r = call(&client, "get-all-integrations", json!({})).await;
    assert!(is_error(&r));
    assert!(text(&r).contains("lasts about 3 hours"), "{}", text(&r));
    assert!(!format!("{r:?}").contains(STATIC_TOKEN));
    assert_eq!(port.port.requests().len(), 1);
}
