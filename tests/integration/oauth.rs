//! Issue 12: the server as an OAuth 2.1 resource server, checked against a real authorization
//! server (`tests/oauth/issuer.mjs`, oidc-provider): the RFC 9728 metadata a client discovers
//! from a 401, tokens it accepts and the exact challenges of those it refuses, scopes deciding
//! the tools, key rotation and a flood of unknown keys, an unreachable issuer, the audit lines
//! of the real binary, the REST listener, introspection of opaque tokens, and start-up refusals.
//! Every refusal is checked to send nothing to Port; every success to reach Port with the
//! server's own credentials, never the caller's token.

use std::{net::SocketAddr, process::Stdio, time::Duration};

use port_integrations_mcp::{
    config::{HttpSettings, Introspection, OAuthSettings, Secret},
    port::PortClient,
    tools::PortTools,
    transport::{http::app, rest},
};
use rmcp::{
    model::CallToolRequestParams,
    service::{ClientLifecycleMode, ClientServiceExt},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tokio::{io::AsyncReadExt, net::TcpListener};
use tokio_util::sync::CancellationToken;

use crate::{
    common::*,
    http::http_args,
    issuer::{Issuer, READ, READ_WRITE, WRITE, decode},
};

/// What the fake Port received: method, path and the Authorization header of each request.
fn seen_by_port(port: &FakePort) -> Vec<(String, String, Option<String>)> {
    port.api_requests()
        .iter()
        .map(|r| {
            (
                r.method.clone(),
                r.path.clone(),
                r.header("authorization").map(str::to_string),
            )
        })
        .collect()
}

const ALL_TOOLS: [&str; 7] = [
    "delete-integration",
    "get-all-integrations",
    "get-all-integrations-meta-data",
    "get-integration",
    "get-integration-s-event-logs",
    "update-integration",
    "update-integration-s-config",
];
const READ_TOOLS: [&str; 4] = [
    "get-all-integrations",
    "get-all-integrations-meta-data",
    "get-integration",
    "get-integration-s-event-logs",
];
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#;

/// A listener bound before anything else, so the public URL (the token audience) names it.
struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
    public_url: String,
}

async fn bind() -> Bound {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    Bound {
        listener,
        addr,
        public_url: format!("http://{addr}/mcp"),
    }
}

impl Bound {
    /// HTTP settings with OAuth on: `issuer` trusted, every other OAuth setting at its default.
    fn settings(&self, issuer: &str) -> HttpSettings {
        let mut settings = http_args(false);
        settings.oauth =
            Some(OAuthSettings::new(vec![issuer.to_string()], &self.public_url).unwrap());
        settings
    }

    /// Serves the MCP app (the fake Port behind it, with the server's static token).
    fn serve(self, port: &FakePort, settings: &HttpSettings) -> SocketAddr {
        let client = PortClient::new(&port.settings(static_token())).unwrap();
        let router = app(PortTools::new(client), settings, CancellationToken::new());
        tokio::spawn(async move { axum::serve(self.listener, router).await });
        self.addr
    }
}

/// A running server, its fake Port and its issuer.
struct Env {
    port: FakePort,
    issuer: Issuer,
    addr: SocketAddr,
    public_url: String,
}

impl Env {
    async fn start() -> Self {
        Self::start_with(&[], |_| {}).await
    }

    /// `extra` issuer flags after `--resource <public url>`; `edit` changes the OAuth settings.
    async fn start_with(extra: &[&str], edit: impl FnOnce(&mut OAuthSettings)) -> Self {
        let port = FakePort::start().await;
        let bound = bind().await;
        let public_url = bound.public_url.clone();
        let mut args = vec!["--resource", public_url.as_str()];
        args.extend_from_slice(extra);
        let issuer = Issuer::with_args(&args).await;
        let mut settings = bound.settings(&issuer.issuer);
        edit(settings.oauth.as_mut().unwrap());
        let addr = bound.serve(&port, &settings);
        Env {
            port,
            issuer,
            addr,
            public_url,
        }
    }

    fn metadata_url(&self) -> String {
        format!(
            "http://{}/.well-known/oauth-protected-resource/mcp",
            self.addr
        )
    }

    /// A 401/400 challenge with every scope, as the server answers a missing or bad token.
    fn challenge(&self, error: Option<(&str, &str)>) -> String {
        challenge(&self.metadata_url(), error, READ_WRITE)
    }

    async fn client(&self, token: &str) -> Client {
        client(self.addr, token).await
    }

    /// A full token from the token endpoint for this server, with `scope`.
    async fn token(&self, scope: &str) -> String {
        self.issuer.token(scope, &self.public_url).await
    }

    /// Posts an MCP `initialize` with this `Authorization` header and checks the refusal:
    /// status, exact `WWW-Authenticate`, the JSON body, and that Port got nothing.
    async fn refused(&self, authorization: Option<&str>, status: u16, header: &str) -> Value {
        let (got, headers, body) = post(self.addr, "/mcp", INITIALIZE, authorization).await;
        assert_eq!(got, status, "{authorization:?}: {body}");
        assert_eq!(
            headers.get("www-authenticate").map(|v| v.to_str().unwrap()),
            Some(header),
            "{authorization:?}"
        );
        assert!(self.port.port.requests().is_empty(), "Port was called");
        body
    }

    /// Refused as an invalid token, with this reason (the body holds it as is; the header with
    /// `"` turned into `'`, as a quoted-string cannot hold it).
    async fn invalid_token(&self, token: &str, why: &str) {
        let header = self.challenge(Some(("invalid_token", &why.replace('"', "'"))));
        let body = self
            .refused(Some(&format!("Bearer {token}")), 401, &header)
            .await;
        assert_eq!(
            body,
            json!({"error": "invalid_token", "error_description": why})
        );
        assert!(!body.to_string().contains(token));
    }
}

/// The exact `WWW-Authenticate` of a challenge.
fn challenge(metadata: &str, error: Option<(&str, &str)>, scope: &str) -> String {
    let error = error.map_or(String::new(), |(e, d)| {
        format!("error=\"{e}\", error_description=\"{d}\", ")
    });
    format!("Bearer {error}resource_metadata=\"{metadata}\", scope=\"{scope}\"")
}

/// rmcp's client over streamable HTTP, sending `token` as its bearer token.
async fn client(addr: SocketAddr, token: &str) -> Client {
    ().serve_with_lifecycle(transport(addr, token), ClientLifecycleMode::Initialize)
        .await
        .unwrap()
}

fn transport(addr: SocketAddr, token: &str) -> StreamableHttpClientTransport<reqwest::Client> {
    StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("http://{addr}/mcp"))
            .auth_header(token),
    )
}

async fn post(
    addr: SocketAddr,
    path: &str,
    body: &str,
    authorization: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .timeout(Duration::from_secs(30))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    if let Some(a) = authorization {
        request = request.header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(a.as_bytes()).unwrap(),
        );
    }
    answer(request.send().await.unwrap()).await
}

/// POSTs an MCP message to `/mcp` with these headers.
async fn send(
    addr: SocketAddr,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/mcp"))
        .timeout(Duration::from_secs(30))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    answer(request.send().await.unwrap()).await
}

async fn answer(r: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    answer(
        reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A raw `initialize` with `token` as the bearer token.
async fn initialize_as(addr: SocketAddr, token: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    post(addr, "/mcp", INITIALIZE, Some(&format!("Bearer {token}"))).await
}

fn tools_call(name: &str, arguments: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
           "params": {"name": name, "arguments": arguments}})
    .to_string()
}

async fn names(client: &Client) -> Vec<String> {
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    names
}

/// Calls `get-integration` and checks Port got it with the server's own token.
async fn reads_through(env: &Env, client: &Client) {
    env.port.port.clear_requests();
    let r = call(
        client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(
        r.structured_content.unwrap()["integration"]["title"],
        "GitHub"
    );
    let request = env.port.single_request();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/v1/integration/github-ocean")
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {STATIC_TOKEN}").as_str())
    );
}

// ------------------------------------------------------------------ 1. metadata and discovery

#[tokio::test]
async fn the_401_leads_to_the_metadata_and_the_issuer() {
    let env = Env::start().await;
    let body = env.refused(None, 401, &env.challenge(None)).await;
    assert_eq!(body["error"], "unauthorized");
    assert!(body["error_description"].as_str().unwrap().len() > 10);

    let expected = json!({
        "resource": env.public_url,
        "authorization_servers": [env.issuer.issuer],
        "scopes_supported": [READ, WRITE],
        "bearer_methods_supported": ["header"],
        "resource_name": "Port Integrations MCP",
    });
    // The client follows resource_metadata from the challenge.
    let (_, headers, _) = post(env.addr, "/mcp", INITIALIZE, None).await;
    let challenge = headers["www-authenticate"].to_str().unwrap();
    let followed = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    assert_eq!(followed, env.metadata_url());
    for url in [
        followed.to_string(),
        format!("http://{}/.well-known/oauth-protected-resource", env.addr),
    ] {
        let (status, headers, body) = get(&url).await;
        assert_eq!(status, 200, "{url}");
        assert_eq!(body, expected, "{url}");
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
    }
    // Its authorization server publishes its discovery document (RFC 8414).
    let (status, _, discovery) = get(&format!(
        "{}/.well-known/oauth-authorization-server",
        expected["authorization_servers"][0].as_str().unwrap()
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(discovery["issuer"], env.issuer.issuer);
    assert!(
        discovery["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("client_credentials"))
    );
    // A Basic header is no bearer token: the same challenge as none.
    env.refused(Some("Basic dXNlcjpwYXNz"), 401, &env.challenge(None))
        .await;
    // The probes stay open.
    let (status, _, _) = get(&format!("http://{}/healthz", env.addr)).await;
    assert_eq!(status, 200);
    assert!(env.port.port.requests().is_empty());
}

/// A public URL at the root of its origin (a proxy maps it to `/mcp`): the metadata names it as
/// given, at the root well-known path, and a token asked for that resource is accepted.
#[tokio::test]
async fn a_public_url_without_a_path_is_the_resource_as_given() {
    let port = FakePort::start().await;
    let bound = bind().await;
    let public_url = format!("http://{}", bound.addr);
    let issuer = Issuer::start(&[&public_url]).await;
    let mut settings = http_args(false);
    settings.oauth = Some(OAuthSettings::new(vec![issuer.issuer.clone()], &public_url).unwrap());
    let addr = bound.serve(&port, &settings);
    let metadata_url = format!("{public_url}/.well-known/oauth-protected-resource");
    let (status, _, metadata) = get(&metadata_url).await;
    assert_eq!(status, 200);
    assert_eq!(metadata["resource"], public_url);
    let (_, headers, _) = post(addr, "/mcp", INITIALIZE, None).await;
    assert_eq!(
        headers["www-authenticate"],
        challenge(&metadata_url, None, READ_WRITE).as_str()
    );
    let token = issuer.token(READ, &public_url).await;
    assert_eq!(decode(&token).1["aud"], public_url);
    let (status, _, body) = initialize_as(addr, &token).await;
    assert_eq!(status, 200, "{body}");
}

/// Behind a proxy: the public URL's host is accepted as `Host` (DNS-rebinding checks stay on
/// for any other), and the challenge points at the public origin.
#[tokio::test]
async fn the_public_urls_host_is_accepted_behind_a_proxy() {
    let public_url = "https://mcp.example.com/mcp";
    let issuer = Issuer::start(&[public_url]).await;
    let port = FakePort::start().await;
    let bound = bind().await;
    let mut settings = http_args(false);
    settings.oauth = Some(OAuthSettings::new(vec![issuer.issuer.clone()], public_url).unwrap());
    let addr = bound.serve(&port, &settings);
    let token = issuer.token(READ, public_url).await;
    let bearer = format!("Bearer {token}");
    let (status, headers, _) = send(addr, INITIALIZE, &[("host", "mcp.example.com")]).await;
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        challenge(
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
            None,
            READ_WRITE
        )
        .as_str()
    );
    let (status, _, body) = send(
        addr,
        INITIALIZE,
        &[("host", "mcp.example.com"), ("authorization", &bearer)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = send(
        addr,
        INITIALIZE,
        &[("host", "evil.example"), ("authorization", &bearer)],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(port.port.requests().is_empty());
}

/// Microsoft Entra ID: clients ask for `api://<app>/<scope>`, tokens carry `scp` with the last
/// segment only (a string, or a list).
#[tokio::test]
async fn entra_style_scopes_match_their_short_names() {
    let read = "api://port-mcp/port-integrations.read";
    let write = "api://port-mcp/port-integrations.write";
    let env = Env::start_with(&[], |o| {
        o.read_scope = read.into();
        o.write_scope = write.into();
    })
    .await;
    let (_, _, metadata) = get(&env.metadata_url()).await;
    assert_eq!(metadata["scopes_supported"], json!([read, write]));
    for (scp, tools) in [
        (json!("port-integrations.read"), READ_TOOLS.to_vec()),
        (
            json!(["openid", "port-integrations.write"]),
            ALL_TOOLS.to_vec(),
        ),
        (json!(read), READ_TOOLS.to_vec()),
    ] {
        let token = env
            .issuer
            .sign(json!({"claims": {"scope": null, "scp": scp}}))
            .await;
        let client = env.client(&token).await;
        assert_eq!(names(&client).await, tools, "{scp}");
        client.cancel().await.unwrap();
    }
    // A short name that is neither scope's last segment gives no access.
    let token = env
        .issuer
        .sign(json!({"claims": {"scope": null, "scp": "port-integrations.admin"}}))
        .await;
    let (status, _, body) = initialize_as(env.addr, &token).await;
    assert_eq!(status, 403, "{body}");
    assert!(env.port.port.requests().is_empty());
}

// ------------------------------------------------------------------ 2. a valid token

#[tokio::test]
async fn a_valid_token_serves_every_tool_with_the_servers_own_port_token() {
    let env = Env::start().await;
    let token = env.token(READ_WRITE).await;
    let client = env.client(&token).await;
    assert_eq!(names(&client).await, ALL_TOOLS);
    reads_through(&env, &client).await;
    assert!(!format!("{:?}", env.port.port.requests()).contains(&token));

    // A write goes through too, with the server's token.
    env.port.port.clear_requests();
    let r = call(
        &client,
        "update-integration",
        json!({"identifier": "github-ocean", "body": {"title": "GH"}}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    let request = env.port.single_request();
    assert_eq!(
        (
            request.method.as_str(),
            request.path.as_str(),
            request.body.as_str()
        ),
        ("PATCH", "/v1/integration/github-ocean", r#"{"title":"GH"}"#)
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {STATIC_TOKEN}").as_str())
    );
    client.cancel().await.unwrap();
}

// ------------------------------------------------------------------ 3. refused tokens

#[tokio::test]
async fn wrong_audience_is_refused() {
    let other = "http://127.0.0.1:9/other-mcp";
    let env = Env::start_with(&["--resource", other], |_| {}).await;
    // A real token, for the other resource this issuer also serves.
    let token = env.issuer.token(READ_WRITE, other).await;
    assert_eq!(decode(&token).1["aud"], other);
    env.invalid_token(
        &token,
        &format!(
            "the token's audience (aud) does not include this server ({0}); ask for a token \
             with resource={0}",
            env.public_url
        ),
    )
    .await;
    // rmcp's client cannot even start a session with it, and says why.
    let Err(refused) =
        ().serve_with_lifecycle(transport(env.addr, &token), ClientLifecycleMode::Initialize)
            .await
    else {
        panic!("rmcp's client started a session with a token for another resource");
    };
    let shown = format!("{refused:?}");
    assert!(shown.contains("invalid_token"), "{shown}");
    assert!(env.port.port.requests().is_empty());
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused() {
    let env = Env::start().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Beyond the 30 s leeway either way.
    let expired = env
        .issuer
        .sign(json!({"claims": {"iat": now - 600, "exp": now - 120}}))
        .await;
    env.invalid_token(&expired, "the token has expired").await;
    let early = env.issuer.sign(json!({"claims": {"nbf": now + 600}})).await;
    env.invalid_token(&early, "the token is not valid yet (nbf)")
        .await;
    // Within the leeway, both are accepted.
    let barely = env
        .issuer
        .sign(json!({"claims": {"exp": now - 5, "nbf": now + 5}}))
        .await;
    let (status, _, body) = initialize_as(env.addr, &barely).await;
    assert_eq!(status, 200, "{body}");
    assert!(env.port.port.requests().is_empty());
}

#[tokio::test]
async fn a_foreign_issuer_is_refused() {
    let env = Env::start().await;
    let token = env
        .issuer
        .sign(json!({"claims": {"iss": "https://other.example"}}))
        .await;
    env.invalid_token(
        &token,
        "the token was issued by \"https://other.example\", which is not an accepted issuer \
         (--oauth-issuer)",
    )
    .await;
    // With a trailing slash it is another issuer too (compared exactly).
    let slash = env
        .issuer
        .sign(json!({"claims": {"iss": format!("{}/", env.issuer.issuer)}}))
        .await;
    env.invalid_token(
        &slash,
        &format!(
            "the token was issued by \"{}/\", which is not an accepted issuer (--oauth-issuer)",
            env.issuer.issuer
        ),
    )
    .await;
}

#[tokio::test]
async fn forged_signatures_are_refused() {
    let env = Env::start().await;
    let other_key = env.issuer.sign(json!({"key": "other"})).await;
    env.invalid_token(
        &other_key,
        "the token's signature does not match the issuer's key",
    )
    .await;
    let none = env.issuer.sign(json!({"key": "none"})).await;
    assert!(none.ends_with('.'));
    env.invalid_token(
        &none,
        "the token is unsigned (alg none), which is never accepted",
    )
    .await;
    let hmac = env.issuer.sign(json!({"key": "hmac-with-public"})).await;
    assert_eq!(decode(&hmac).0["alg"], "HS256");
    env.invalid_token(
        &hmac,
        "the token is HMAC-signed (a shared secret), which is never accepted: tokens must be \
         signed with the issuer's private key",
    )
    .await;
    // A real signature under a tampered payload.
    let real = env.token(READ).await;
    let parts: Vec<&str> = real.split('.').collect();
    let mut payload = decode(&real).1;
    payload["scope"] = json!(READ_WRITE);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        base64url(payload.to_string().as_bytes()),
        parts[2]
    );
    env.invalid_token(
        &tampered,
        "the token's signature does not match the issuer's key",
    )
    .await;
    // Not a JWT, and no introspection configured.
    env.invalid_token(
        "opaque-token-0123456789",
        "the token is not a JWT, and this server has no introspection endpoint for opaque \
         tokens (--oauth-introspection-url)",
    )
    .await;
}

/// What the server shows of a reason inside a challenge's quoted-string: `"`, `\` and anything
/// outside visible ASCII become `'`, so an outside value cannot end the string or forge a
/// parameter.
fn quoted(why: &str) -> String {
    why.chars()
        .map(|c| {
            if c == '"' || c == '\\' || !(' '..='~').contains(&c) {
                '\''
            } else {
                c
            }
        })
        .collect()
}

#[tokio::test]
async fn hostile_token_parts_cannot_shape_the_challenge() {
    let env = Env::start().await;
    // A kid built to close the quoted-string and add a parameter; long, and not ASCII.
    let kid = format!("evil\", error=\"forged\\ \u{e9}{}", "x".repeat(300));
    let token = env.issuer.sign(json!({"kid": kid})).await;
    let shown: String = kid.chars().take(128).collect();
    let why = format!(
        "the token is signed with a key ({shown:?}) that {} does not publish",
        env.issuer.issuer
    );
    let header = env.challenge(Some(("invalid_token", &quoted(&why))));
    let body = env
        .refused(Some(&format!("Bearer {token}")), 401, &header)
        .await;
    assert_eq!(
        body,
        json!({"error": "invalid_token", "error_description": why})
    );
    assert_eq!(header.matches('"').count(), 8, "{header}");

    for (sign, why) in [
        (
            json!({"header": {"alg": "RS1"}}),
            "the token's algorithm \"RS1\" is not supported".to_string(),
        ),
        (
            json!({"claims": {"iss": 5}}),
            "the token has no `iss` claim".to_string(),
        ),
        (
            json!({"claims": {"exp": null}}),
            "the token has no `exp` claim".to_string(),
        ),
    ] {
        let token = env.issuer.sign(sign).await;
        env.invalid_token(&token, &why).await;
    }
    env.invalid_token(
        "abc.def.ghi",
        "the token's header is not a well-formed JWT header",
    )
    .await;
}

const TOO_LONG: &str = "the bearer token is longer than --oauth-max-token-bytes / PORT_MCP_OAUTH_MAX_TOKEN_BYTES allows";

#[tokio::test]
async fn malformed_and_missing_headers() {
    let env = Env::start().await;
    env.refused(None, 401, &env.challenge(None)).await;
    let cases = [
        (
            "Bearer".to_string(),
            "the Authorization header has no token after `Bearer`",
        ),
        (
            "Bearer    ".to_string(),
            "the Authorization header has no token after `Bearer`",
        ),
        (
            "Bearer abc def".to_string(),
            "the bearer token has characters a token cannot have (RFC 6750)",
        ),
        (
            "Bearer t\u{f6}ken".to_string(),
            "the Authorization header is not visible ASCII",
        ),
        (format!("Bearer {}", "a".repeat(16 * 1024 + 1)), TOO_LONG),
    ];
    for (header, why) in cases {
        let body = env
            .refused(
                Some(&header),
                400,
                &env.challenge(Some(("invalid_request", why))),
            )
            .await;
        assert_eq!(
            body,
            json!({"error": "invalid_request", "error_description": why})
        );
    }
    let token = env.token(READ_WRITE).await;
    // Two Authorization headers: which one counts is ambiguous, so neither does.
    let why = "the request has more than one Authorization header";
    let (status, headers, body) = send(
        env.addr,
        INITIALIZE,
        &[
            ("authorization", &format!("Bearer {token}")),
            ("authorization", "Bearer other"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        headers["www-authenticate"],
        env.challenge(Some(("invalid_request", why))).as_str()
    );
    // Only the header carries a token (bearer_methods_supported: header): not the query.
    let (status, headers, _) = post(
        env.addr,
        &format!("/mcp?access_token={token}"),
        INITIALIZE,
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], env.challenge(None).as_str());
    assert!(env.port.port.requests().is_empty());
    // The scheme is case-insensitive (RFC 9110).
    let (status, _, body) = post(
        env.addr,
        "/mcp",
        INITIALIZE,
        Some(&format!("bEaReR {token}")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // 16 KiB exactly is a token to check (and not a JWT), one byte more is not read at all.
    let (status, _, body) = post(
        env.addr,
        "/mcp",
        INITIALIZE,
        Some(&format!("Bearer {}", "a".repeat(16 * 1024))),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_token");

    // --oauth-max-token-bytes lowered below a real token's size.
    let small = Env::start_with(&[], |o| o.max_token_bytes = 256).await;
    let real = small.token(READ_WRITE).await;
    assert!(real.len() > 256);
    small
        .refused(
            Some(&format!("Bearer {real}")),
            400,
            &small.challenge(Some(("invalid_request", TOO_LONG))),
        )
        .await;
}

#[tokio::test]
async fn an_audience_in_a_list_or_set_apart_from_the_url() {
    let env = Env::start().await;
    // `aud` may be a list; the server's audience has to be in it.
    let listed = env
        .issuer
        .sign(json!({"claims": {"aud": ["https://api.example.com", env.public_url]}}))
        .await;
    let (status, _, body) = initialize_as(env.addr, &listed).await;
    assert_eq!(status, 200, "{body}");
    // Near misses are not the audience.
    for aud in [
        json!(format!("{}/", env.public_url)),
        json!(env.public_url.to_uppercase()),
        json!(["https://api.example.com"]),
        json!([]),
    ] {
        let token = env.issuer.sign(json!({"claims": {"aud": aud}})).await;
        let (status, _, body) = initialize_as(env.addr, &token).await;
        assert_eq!(status, 401, "{aud}: {body}");
        assert_eq!(body["error"], "invalid_token", "{aud}");
    }
    let missing = env.issuer.sign(json!({"claims": {"aud": null}})).await;
    env.invalid_token(&missing, "the token has no `aud` claim")
        .await;

    // --oauth-audience: that value, and no longer the URL.
    let audience = "api://port-integrations";
    let env = Env::start_with(&[], |o| o.audience = audience.into()).await;
    let token = env.issuer.sign(json!({"claims": {"aud": audience}})).await;
    let client = env.client(&token).await;
    reads_through(&env, &client).await;
    client.cancel().await.unwrap();
    env.port.port.clear_requests();
    let for_url = env.token(READ_WRITE).await;
    let (status, _, body) = initialize_as(env.addr, &for_url).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "the token's audience (aud) does not include this server ({audience})"
            )),
        "{body}"
    );
    assert!(env.port.port.requests().is_empty());
}

#[tokio::test]
async fn two_issuers_each_with_their_own_keys() {
    let port = FakePort::start().await;
    let bound = bind().await;
    let public_url = bound.public_url.clone();
    let first = Issuer::start(&[&public_url]).await;
    let second = Issuer::start(&[&public_url]).await;
    let mut settings = bound.settings(&first.issuer);
    settings
        .oauth
        .as_mut()
        .unwrap()
        .issuers
        .push(second.issuer.clone());
    let addr = bound.serve(&port, &settings);
    let (_, _, metadata) = get(&format!(
        "http://{addr}/.well-known/oauth-protected-resource/mcp"
    ))
    .await;
    assert_eq!(
        metadata["authorization_servers"],
        json!([first.issuer, second.issuer])
    );
    for issuer in [&first, &second] {
        let token = issuer.token(READ, &public_url).await;
        let client = client(addr, &token).await;
        let r = call(&client, "get-all-integrations-meta-data", json!({})).await;
        assert!(!is_error(&r), "{r:?}");
        client.cancel().await.unwrap();
    }
    // Each issuer's key checks only its own tokens: the second's key under the first's name.
    let crossed = second
        .sign(json!({"claims": {"iss": first.issuer}, "kid": first.kid()}))
        .await;
    let (status, _, body) = initialize_as(addr, &crossed).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["error_description"],
        "the token's signature does not match the issuer's key"
    );
    let (status, _, ready) = get(&format!("http://{addr}/readyz")).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["oauth"]["issuers"].as_array().unwrap().len(), 2);
    assert_eq!(port.api_requests().len(), 2);
}

#[tokio::test]
async fn scope_names_can_be_set() {
    let env = Env::start_with(&["--scopes", "mcp.read mcp.write"], |o| {
        o.read_scope = "mcp.read".into();
        o.write_scope = "mcp.write".into();
    })
    .await;
    let (_, _, metadata) = get(&env.metadata_url()).await;
    assert_eq!(
        metadata["scopes_supported"],
        json!(["mcp.read", "mcp.write"])
    );
    env.refused(
        None,
        401,
        &challenge(&env.metadata_url(), None, "mcp.read mcp.write"),
    )
    .await;
    let read = env.token("mcp.read").await;
    let client = env.client(&read).await;
    assert_eq!(names(&client).await, READ_TOOLS);
    client.cancel().await.unwrap();
    // The default names mean nothing here.
    let defaults = env
        .issuer
        .sign(json!({"claims": {"scope": READ_WRITE}}))
        .await;
    let (status, _, body) = initialize_as(env.addr, &defaults).await;
    assert_eq!(status, 403, "{body}");
    let write = env.token("mcp.write").await;
    let client = env.client(&write).await;
    assert_eq!(names(&client).await, ALL_TOOLS, "write implies read");
    client.cancel().await.unwrap();
    assert!(env.port.port.requests().is_empty());
}

// ------------------------------------------------------------------ 4. scopes decide the tools

#[tokio::test]
async fn a_read_only_token_sees_and_calls_only_read_tools() {
    let env = Env::start().await;
    let token = env.token(READ).await;
    let client = env.client(&token).await;
    assert_eq!(names(&client).await, READ_TOOLS);
    reads_through(&env, &client).await;

    let scope_challenge = |tool: &str| {
        challenge(
            &env.metadata_url(),
            Some((
                "insufficient_scope",
                &format!(
                    "`{tool}` changes Port and needs the {WRITE} scope; the token has read \
                     access only"
                ),
            )),
            WRITE,
        )
    };
    env.port.port.clear_requests();
    for (tool, arguments) in [
        ("delete-integration", json!({"identifier": "github-ocean"})),
        (
            "update-integration",
            json!({"identifier": "github-ocean", "body": {"title": "x"}}),
        ),
        (
            "update-integration-s-config",
            json!({"identifier": "github-ocean", "body": {"config": null}}),
        ),
    ] {
        // rmcp's client gets the 403 and the scope to ask for.
        let refused = client
            .call_tool(
                CallToolRequestParams::new(tool.to_string())
                    .with_arguments(args(arguments.clone())),
            )
            .await
            .err()
            .unwrap_or_else(|| panic!("{tool} was served"));
        let shown = format!("{refused:?}");
        assert!(
            shown.contains(&format!("required_scope: Some({WRITE:?})")),
            "{shown}"
        );
        // The exact answer, on the wire.
        let (status, headers, body) = post(
            env.addr,
            "/mcp",
            &tools_call(tool, arguments),
            Some(&format!("Bearer {token}")),
        )
        .await;
        assert_eq!(status, 403, "{tool}: {body}");
        assert_eq!(headers["www-authenticate"], scope_challenge(tool).as_str());
        assert_eq!(
            body,
            json!({"error": "insufficient_scope", "error_description": format!(
                "`{tool}` changes Port and needs the {WRITE} scope; the token has read access only"
            )})
        );
    }
    assert!(
        env.port.port.requests().is_empty(),
        "{:?}",
        env.port.port.requests()
    );
    // The caller's own read-only header cannot lift what the token lacks.
    let (status, _, body) = send(
        env.addr,
        &tools_call("delete-integration", json!({"identifier": "github-ocean"})),
        &[
            ("authorization", &format!("Bearer {token}")),
            ("x-read-only-mode", "0"),
        ],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(env.port.port.requests().is_empty());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_write_hidden_from_the_scope_check_still_reaches_nothing() {
    let env = Env::start().await;
    let token = env.token(READ).await;
    let bearer = format!("Bearer {token}");
    // A raw session, so the requests reach rmcp as they are.
    let (status, headers, _) = send(env.addr, INITIALIZE, &[("authorization", &bearer)]).await;
    assert_eq!(status, 200);
    let session = headers["mcp-session-id"].to_str().unwrap().to_string();
    let in_session = [
        ("authorization", bearer.as_str()),
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-06-18"),
    ];
    let (status, _, _) = send(
        env.addr,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        &in_session,
    )
    .await;
    assert_eq!(status, 202);
    // The session works: a read reaches Port.
    let (status, _, body) = send(
        env.addr,
        &tools_call("get-integration", json!({"identifier": "github-ocean"})),
        &in_session,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(env.port.single_request().method, "GET");
    env.port.port.clear_requests();
    // Duplicate keys: a parser keeping the first name sees a read, one keeping the last a delete.
    let sneaky = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get-integration","name":"delete-integration","arguments":{"identifier":"github-ocean"}}}"#;
    let (status, _, body) = send(env.addr, sneaky, &in_session).await;
    assert!(
        env.port.api_requests().iter().all(|r| r.method != "DELETE"),
        "a read-only token deleted ({status} {body}): {:?}",
        env.port.api_requests()
    );
}

#[tokio::test]
async fn a_token_without_either_scope_is_forbidden() {
    let env = Env::start().await;
    let token = env
        .issuer
        .sign(json!({"claims": {"scope": "openid"}}))
        .await;
    let why = format!("the token carries neither {READ} nor {WRITE}");
    let body = env
        .refused(
            Some(&format!("Bearer {token}")),
            403,
            &challenge(
                &env.metadata_url(),
                Some(("insufficient_scope", &why)),
                READ,
            ),
        )
        .await;
    assert_eq!(
        body,
        json!({"error": "insufficient_scope", "error_description": why})
    );
    // No scope claim at all (oidc-provider leaves it out when none was asked for).
    let (status, token) = env.issuer.token_response(None, &env.public_url).await;
    assert_eq!(status, 200);
    let token = token["access_token"].as_str().unwrap();
    assert!(decode(token).1.get("scope").is_none());
    let (status, _, _) = initialize_as(env.addr, token).await;
    assert_eq!(status, 403);
    assert!(env.port.port.requests().is_empty());
}

#[tokio::test]
async fn a_stateless_server_and_a_2026_client_are_gated_the_same() {
    let port = FakePort::start().await;
    let bound = bind().await;
    let public_url = bound.public_url.clone();
    let issuer = Issuer::start(&[&public_url]).await;
    let mut settings = bound.settings(&issuer.issuer);
    settings.stateless = true;
    let addr = bound.serve(&port, &settings);
    for (mode, deleted) in [
        (ClientLifecycleMode::Initialize, "k8s-exporter-eu"),
        (modern(), "pagerduty-prod"),
    ] {
        let read = issuer.token(READ, &public_url).await;
        let client = ().serve_with_lifecycle(transport(addr, &read), mode.clone()).await.unwrap();
        assert_eq!(names(&client).await, READ_TOOLS);
        let r = call(
            &client,
            "get-integration",
            json!({"identifier": "github-ocean"}),
        )
        .await;
        assert!(!is_error(&r), "{r:?}");
        let refused = client
            .call_tool(
                CallToolRequestParams::new("delete-integration")
                    .with_arguments(args(json!({"identifier": "github-ocean"}))),
            )
            .await;
        let shown = format!("{refused:?}");
        assert!(refused.is_err(), "{shown}");
        assert!(
            shown.contains(&format!("required_scope: Some({WRITE:?})")),
            "{shown}"
        );
        client.cancel().await.unwrap();

        let write = issuer.token(READ_WRITE, &public_url).await;
        let client = ().serve_with_lifecycle(transport(addr, &write), mode).await.unwrap();
        assert_eq!(names(&client).await, ALL_TOOLS);
        let r = call(
            &client,
            "delete-integration",
            json!({"identifier": deleted}),
        )
        .await;
        assert!(!is_error(&r), "{r:?}");
        client.cancel().await.unwrap();
    }
    let seen = seen_by_port(&port);
    let ours = Some(format!("Bearer {STATIC_TOKEN}"));
    assert_eq!(
        seen,
        [
            (
                "GET".into(),
                "/v1/integration/github-ocean".into(),
                ours.clone()
            ),
            (
                "DELETE".into(),
                "/v1/integration/k8s-exporter-eu".into(),
                ours.clone()
            ),
            (
                "GET".into(),
                "/v1/integration/github-ocean".into(),
                ours.clone()
            ),
            (
                "DELETE".into(),
                "/v1/integration/pagerduty-prod".into(),
                ours
            ),
        ]
    );
}

/// A remembered token is not remembered past its `exp`: a session outlives its token only
/// until the token expires.
#[tokio::test]
async fn a_token_that_expires_mid_session_is_refused_from_then_on() {
    let env = Env::start_with(&[], |o| o.leeway = Duration::ZERO).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = now + 3;
    let token = env.issuer.sign(json!({"claims": {"exp": exp}})).await;
    let client = env.client(&token).await;
    reads_through(&env, &client).await;
    // Until a second past `exp`.
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        <= exp
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    env.port.port.clear_requests();
    let refused = client
        .call_tool(
            CallToolRequestParams::new("get-integration")
                .with_arguments(args(json!({"identifier": "github-ocean"}))),
        )
        .await;
    let shown = format!("{refused:?}");
    assert!(refused.is_err(), "{shown}");
    assert!(shown.contains("the token has expired"), "{shown}");
    assert!(env.port.port.requests().is_empty());
}

/// MCP's security guidance: a session is bound to who opened it; another valid token cannot
/// ride on its id.
#[tokio::test]
async fn a_session_is_not_usable_with_someone_elses_token() {
    let env = Env::start().await;
    let alice = env
        .issuer
        .sign(json!({"claims": {"sub": "alice@example.com"}}))
        .await;
    let mallory = env
        .issuer
        .sign(json!({"claims": {"sub": "mallory@example.com", "scope": READ}}))
        .await;
    let (status, headers, _) = send(
        env.addr,
        INITIALIZE,
        &[("authorization", &format!("Bearer {alice}"))],
    )
    .await;
    assert_eq!(status, 200);
    let session = headers["mcp-session-id"].to_str().unwrap().to_string();
    let alice_bearer = format!("Bearer {alice}");
    let as_alice = [
        ("authorization", alice_bearer.as_str()),
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-06-18"),
    ];
    let (status, _, _) = send(
        env.addr,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        &as_alice,
    )
    .await;
    assert_eq!(status, 202);
    let mallory_bearer = format!("Bearer {mallory}");
    let (status, _, body) = send(
        env.addr,
        &tools_call("get-integration", json!({"identifier": "github-ocean"})),
        &[
            ("authorization", &mallory_bearer),
            ("mcp-session-id", &session),
            ("mcp-protocol-version", "2025-06-18"),
        ],
    )
    .await;
    assert!(
        env.port.port.requests().is_empty(),
        "another subject's token used alice's session ({status}): {body}"
    );
    assert!((400..500).contains(&status), "{status}: {body}");
}

// ------------------------------------------------------------------ 5. key rotation and floods

#[tokio::test]
async fn rotated_keys_are_fetched_and_dropped_keys_refused() {
    let env = Env::start_with(&[], |o| o.key_refresh = Duration::ZERO).await;
    let first_kid = env.issuer.kid();
    let used = env.token(READ_WRITE).await;
    reads_through(&env, &env.client(&used).await).await;
    // Two more tokens of the first key, never shown to the server yet.
    let kept = env.token(READ_WRITE).await;
    let dropped = env.token(READ_WRITE).await;
    assert_eq!(decode(&dropped).0["kid"], first_kid);

    // A new key, the old one still published: both kinds of token work.
    let second_kid = env.issuer.rotate(true).await;
    let second = env.token(READ_WRITE).await;
    assert_eq!(decode(&second).0["kid"], second_kid);
    reads_through(&env, &env.client(&second).await).await;
    reads_through(&env, &env.client(&kept).await).await;

    // A new key, the others dropped: a token of a dropped key is refused once the server has
    // seen the new key set.
    let third_kid = env.issuer.rotate(false).await;
    let third = env.token(READ_WRITE).await;
    assert_eq!(decode(&third).0["kid"], third_kid);
    reads_through(&env, &env.client(&third).await).await;
    env.port.port.clear_requests();
    env.invalid_token(
        &dropped,
        &format!(
            "the token is signed with a key (\"{first_kid}\") that {} does not publish",
            env.issuer.issuer
        ),
    )
    .await;
}

#[tokio::test]
async fn a_flood_of_unknown_keys_fetches_the_key_set_at_most_once_more() {
    let env = Env::start().await;
    let token = env.token(READ_WRITE).await;
    let client = env.client(&token).await;
    reads_through(&env, &client).await;
    let before = env.issuer.hits("/jwks").await;
    assert!(before >= 1);
    env.port.port.clear_requests();

    let mut forged = Vec::new();
    for i in 0..50 {
        // Signed by the issuer's real key, under a kid it never published.
        let kid = format!("k-unknown-{i:03}-{:x}", std::process::id());
        forged.push((kid.clone(), env.issuer.sign(json!({"kid": kid})).await));
    }
    // Half at once, half one after the other (each after the previous was answered: a refresh
    // shared by concurrent callers alone would not hold those back).
    let addr = env.addr;
    let (burst, one_by_one) = forged.split_at(25);
    let mut answers = futures::future::join_all(burst.iter().map(|(_, t)| {
        let bearer = format!("Bearer {t}");
        async move { post(addr, "/mcp", INITIALIZE, Some(&bearer)).await }
    }))
    .await;
    for (_, t) in one_by_one {
        answers.push(initialize_as(addr, t).await);
    }
    for ((kid, _), (status, _, body)) in forged.iter().zip(answers) {
        assert_eq!(status, 401, "{body}");
        assert_eq!(
            body["error_description"],
            format!(
                "the token is signed with a key (\"{kid}\") that {} does not publish",
                env.issuer.issuer
            )
        );
    }
    let after = env.issuer.hits("/jwks").await;
    assert!(
        after <= before + 2,
        "50 unknown kids fetched the key set {} more times",
        after - before
    );
    assert!(env.port.port.requests().is_empty());
    // Still serving the real token.
    reads_through(&env, &client).await;
    client.cancel().await.unwrap();
}

// ------------------------------------------------------------------ 6. an unreachable issuer

#[tokio::test]
async fn an_issuer_down_before_any_key_answers_503_then_recovers() {
    let port = FakePort::start().await;
    let bound = bind().await;
    let public_url = bound.public_url.clone();
    let issuer = Issuer::start(&[&public_url]).await;
    issuer.down(false).await;
    let mut settings = bound.settings(&issuer.issuer);
    {
        let o = settings.oauth.as_mut().unwrap();
        o.timeout = Duration::from_secs(1);
        o.key_refresh = Duration::ZERO;
    }
    let addr = bound.serve(&port, &settings);
    // The token endpoint still works while discovery and keys answer 503.
    let token = issuer.token(READ_WRITE, &public_url).await;
    let unused = issuer.token(READ_WRITE, &public_url).await;

    let (status, headers, body) = initialize_as(addr, &token).await;
    assert_eq!(status, 503, "{body}");
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    assert_eq!(body["error"], "temporarily_unavailable");
    let why = body["error_description"].as_str().unwrap();
    assert!(
        why.starts_with(&format!(
            "cannot fetch the signing keys of {}",
            issuer.issuer
        )),
        "{why}"
    );
    assert!(!why.contains(&token));
    let (status, _, ready) = get(&format!("http://{addr}/readyz")).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["oauth"]["keysLoaded"], false);
    assert_eq!(ready["oauth"]["issuers"][0]["issuer"], issuer.issuer);
    assert_eq!(ready["oauth"]["issuers"][0]["keysLoaded"], false);
    assert!(ready["oauth"]["issuers"][0]["error"].is_string(), "{ready}");
    assert!(port.port.requests().is_empty());

    issuer.up().await;
    let client = client(addr, &token).await;
    let r = call(&client, "get-all-integrations-meta-data", json!({})).await;
    assert!(!is_error(&r), "{r:?}");
    let (status, _, ready) = get(&format!("http://{addr}/readyz")).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(
        ready["oauth"],
        json!({"keysLoaded": true, "issuers": [{"issuer": issuer.issuer, "keysLoaded": true, "keys": 1}]})
    );

    // Down again, everything: the keys already loaded still check a token never seen before.
    issuer.down(true).await;
    port.port.clear_requests();
    let again = self::client(addr, &unused).await;
    let r = call(&again, "get-all-integrations-meta-data", json!({})).await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(
        port.single_request().header("authorization"),
        Some(format!("Bearer {STATIC_TOKEN}").as_str())
    );
    let (status, _, _) = get(&format!("http://{addr}/readyz")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_issuer_that_never_answers_gets_a_503_not_a_hang() {
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let port = FakePort::start().await;
    let bound = bind().await;
    let public_url = bound.public_url.clone();
    // The real issuer only signs a token that names the silent one.
    let signer = Issuer::start(&[&public_url]).await;
    let mut settings = bound.settings(&silent_url);
    settings.oauth.as_mut().unwrap().timeout = Duration::from_secs(1);
    let addr = bound.serve(&port, &settings);
    let token = signer.sign(json!({"claims": {"iss": silent_url}})).await;
    let (status, headers, body) = initialize_as(addr, &token).await;
    assert_eq!(status, 503, "{body}");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("cannot fetch the signing keys of {silent_url}")),
        "{body}"
    );
    let (status, _, ready) = get(&format!("http://{addr}/readyz")).await;
    assert_eq!(status, 503);
    assert_eq!(ready["oauth"]["keysLoaded"], false);
    assert!(port.port.requests().is_empty());
}

// ------------------------------------------------------------------ 7. audit lines of the binary

const BIN: &str = env!("CARGO_BIN_EXE_port-integrations-mcp");

/// The real binary serving HTTP with OAuth (`issuer` trusted), its stderr collected.
struct Binary {
    child: tokio::process::Child,
    logs: tokio::task::JoinHandle<String>,
    addr: SocketAddr,
}

impl Binary {
    /// Configured by flags, or (`extra_issuer`) by the environment with a second issuer in the
    /// comma-separated list.
    async fn start(
        fake: &FakePort,
        listen_port: u16,
        issuer: &Issuer,
        extra_issuer: Option<&str>,
    ) -> Self {
        let public_url = format!("http://127.0.0.1:{listen_port}/mcp");
        let mut command = tokio::process::Command::new(BIN);
        command
            .env_clear()
            .env("PORT_API_KEY", STATIC_TOKEN)
            .env("PORT_BASE_URL", &fake.url)
            .args(["http", "--listen", &format!("127.0.0.1:{listen_port}")]);
        match extra_issuer {
            None => command.args([
                "--oauth-issuer",
                &issuer.issuer,
                "--public-url",
                &public_url,
            ]),
            Some(other) => command
                .env(
                    "PORT_MCP_OAUTH_ISSUER",
                    format!("{},{other}", issuer.issuer),
                )
                .env("PORT_MCP_PUBLIC_URL", &public_url),
        };
        let mut child = command
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let logs = tokio::spawn(async move {
            let mut all = String::new();
            let _ = stderr.read_to_string(&mut all).await;
            all
        });
        wait_healthy(listen_port).await;
        Binary {
            child,
            logs,
            addr: SocketAddr::from(([127, 0, 0, 1], listen_port)),
        }
    }

    /// SIGTERM, then everything it logged.
    async fn stop(mut self) -> String {
        sigterm(&self.child);
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("exited")
            .unwrap();
        let logs = tokio::time::timeout(Duration::from_secs(5), self.logs)
            .await
            .expect("stderr closed")
            .unwrap();
        assert!(status.success(), "{logs}");
        logs
    }
}

/// The `audit` lines in a binary's logs.
fn audit_lines(logs: &str) -> Vec<&str> {
    logs.lines()
        .filter(|l| l.contains("audit:") && l.contains("write call"))
        .collect()
}

#[tokio::test]
async fn the_binary_audits_each_write_with_the_callers_subject() {
    let fake = FakePort::start().await;
    let listen_port = free_port();
    let public_url = format!("http://127.0.0.1:{listen_port}/mcp");
    let issuer = Issuer::start(&[&public_url]).await;
    let binary = Binary::start(&fake, listen_port, &issuer, None).await;
    let addr = binary.addr;
    let token = issuer
        .sign(json!({"claims": {"sub": "alice@example.com"}}))
        .await;
    let client = client(addr, &token).await;
    let deleted = call(
        &client,
        "delete-integration",
        json!({"identifier": "k8s-exporter-eu"}),
    )
    .await;
    assert!(!is_error(&deleted), "{deleted:?}");
    let updated = call(
        &client,
        "update-integration",
        json!({"identifier": "github-ocean", "body": {"title": "GH"}}),
    )
    .await;
    assert!(!is_error(&updated), "{updated:?}");
    let missing = call(
        &client,
        "delete-integration",
        json!({"identifier": "ghost"}),
    )
    .await;
    assert!(is_error(&missing));
    let read = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&read));
    let requests = seen_by_port(&fake);
    let ours = Some(format!("Bearer {STATIC_TOKEN}"));
    assert_eq!(
        requests,
        [
            (
                "DELETE".into(),
                "/v1/integration/k8s-exporter-eu".into(),
                ours.clone()
            ),
            (
                "PATCH".into(),
                "/v1/integration/github-ocean".into(),
                ours.clone()
            ),
            (
                "DELETE".into(),
                "/v1/integration/ghost".into(),
                ours.clone()
            ),
            ("GET".into(), "/v1/integration/github-ocean".into(), ours),
        ]
    );
    client.cancel().await.unwrap();
    // Refused tokens are logged without their text either.
    let expired = issuer
        .sign(json!({"claims": {"sub": "alice@example.com", "exp": 1_000_000_000}}))
        .await;
    let forged = issuer.sign(json!({"key": "other"})).await;
    for refused in [&expired, &forged] {
        let (status, _, _) = initialize_as(addr, refused).await;
        assert_eq!(status, 401);
    }
    let logs = binary.stop().await;

    let audit = audit_lines(&logs);
    assert_eq!(audit.len(), 3, "one audit line per write call: {logs}");
    let client_id = issuer.client_id();
    for (line, tool, identifier, outcome) in [
        (audit[0], "delete-integration", "k8s-exporter-eu", "ok"),
        (audit[1], "update-integration", "github-ocean", "ok"),
        (audit[2], "delete-integration", "ghost", "error"),
    ] {
        for field in [
            "sub=\"alice@example.com\"".to_string(),
            format!("client_id=\"{client_id}\""),
            format!("tool=\"{tool}\""),
            format!("identifier=\"{identifier}\""),
            format!("outcome=\"{outcome}\""),
        ] {
            assert!(line.contains(&field), "{field} missing in: {line}");
        }
        assert!(line.contains("INFO"), "{line}");
    }
    assert!(
        audit[0].contains("port_trace_id=\"sandbox-trace-"),
        "{}",
        audit[0]
    );
    // Every call, read or write, ends with one line naming its caller.
    let calls: Vec<&str> = logs.lines().filter(|l| l.contains(" tool call ")).collect();
    assert_eq!(calls.len(), 4, "one line per tool call: {logs}");
    for (line, tool, outcome) in [
        (calls[0], "delete-integration", "ok"),
        (calls[1], "update-integration", "ok"),
        (calls[2], "delete-integration", "error"),
        (calls[3], "get-integration", "ok"),
    ] {
        for field in [
            format!("tool=\"{tool}\""),
            "sub=\"alice@example.com\"".to_string(),
            format!("client_id=\"{client_id}\""),
            format!("outcome=\"{outcome}\""),
        ] {
            assert!(line.contains(&field), "{field} missing in: {line}");
        }
    }
    // No token in the logs, nor its signature alone.
    for secret in [&token, &expired, &forged] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!logs.contains(signature), "{logs}");
    }
    assert!(!logs.contains(STATIC_TOKEN), "{logs}");
}

/// A write the gate refuses for want of the write scope is a write call all the same: the
/// audit trail shows who tried.
#[tokio::test]
async fn the_binary_audits_a_write_refused_for_its_scope() {
    let fake = FakePort::start().await;
    let listen_port = free_port();
    let public_url = format!("http://127.0.0.1:{listen_port}/mcp");
    let issuer = Issuer::start(&[&public_url]).await;
    // Configured through the environment this time, with a second (unreachable) issuer.
    let binary = Binary::start(&fake, listen_port, &issuer, Some("http://127.0.0.1:1")).await;
    let (_, _, metadata) = get(&format!(
        "http://{}/.well-known/oauth-protected-resource/mcp",
        binary.addr
    ))
    .await;
    assert_eq!(
        metadata["authorization_servers"],
        json!([issuer.issuer, "http://127.0.0.1:1"])
    );
    assert_eq!(metadata["resource"], public_url);
    let token = issuer
        .sign(json!({"claims": {"sub": "bob@example.com", "scope": READ}}))
        .await;
    let (status, _, body) = post(
        binary.addr,
        "/mcp",
        &tools_call("delete-integration", json!({"identifier": "github-ocean"})),
        Some(&format!("Bearer {token}")),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let logs = binary.stop().await;
    assert!(fake.api_requests().is_empty());
    let audit = audit_lines(&logs);
    assert_eq!(
        audit.len(),
        1,
        "no audit line for the refused write: {logs}"
    );
    for field in [
        "sub=\"bob@example.com\"",
        "tool=\"delete-integration\"",
        "identifier=\"github-ocean\"",
        "outcome=\"refused\"",
    ] {
        assert!(audit[0].contains(field), "{field} missing in: {}", audit[0]);
    }
}

// ------------------------------------------------------------------ 8. the REST listener

#[tokio::test]
async fn rest_routes_answer_the_same_challenges() {
    let port = FakePort::start().await;
    let public_url = "http://127.0.0.1:9/mcp";
    let issuer = Issuer::start(&[public_url]).await;
    let mut settings = http_args(true);
    settings.oauth = Some(OAuthSettings::new(vec![issuer.issuer.clone()], public_url).unwrap());
    let tools = PortTools::new(PortClient::new(&port.settings(static_token())).unwrap());
    let addr = listen(rest::router(tools, &settings)).await;
    let metadata = "http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp";
    let send = |method: &'static str, path: &'static str, auth: Option<String>| async move {
        let mut r = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("http://{addr}{path}"))
            .timeout(Duration::from_secs(30));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        if method == "PATCH" {
            r = r
                .header("content-type", "application/json")
                .body(r#"{"title":"GH"}"#);
        }
        answer(r.send().await.unwrap()).await
    };

    let (status, headers, _) = send("GET", "/v1/integration/github-ocean", None).await;
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        challenge(metadata, None, READ_WRITE).as_str()
    );
    let expired = issuer.sign(json!({"claims": {"exp": 1_000_000_000}})).await;
    let (status, headers, body) = send(
        "GET",
        "/v1/integration/github-ocean",
        Some(format!("Bearer {expired}")),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        headers["www-authenticate"],
        challenge(
            metadata,
            Some(("invalid_token", "the token has expired")),
            READ_WRITE
        )
        .as_str()
    );
    let read = issuer.token(READ, public_url).await;
    for (method, path) in [
        ("PATCH", "/v1/integration/github-ocean"),
        ("DELETE", "/v1/v1/integration/github-ocean"),
    ] {
        let why = format!(
            "`{method} {path}` changes Port and needs the {WRITE} scope; the token has read \
             access only"
        );
        let (status, headers, body) = send(method, path, Some(format!("Bearer {read}"))).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(
            headers["www-authenticate"],
            challenge(metadata, Some(("insufficient_scope", &why)), WRITE).as_str()
        );
        assert_eq!(
            body,
            json!({"error": "insufficient_scope", "error_description": why})
        );
    }
    assert!(port.port.requests().is_empty());
    // The OpenAPI document stays open.
    let (status, _, _) = send("GET", "/openapi.json", None).await;
    assert_eq!(status, 200);

    // A read with the read scope, a write with the write scope.
    let (status, _, body) = send(
        "GET",
        "/v1/integration/github-ocean",
        Some(format!("Bearer {read}")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["integration"]["title"], "GitHub");
    let write = issuer.token(READ_WRITE, public_url).await;
    let (status, _, body) = send(
        "PATCH",
        "/v1/integration/github-ocean",
        Some(format!("Bearer {write}")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen: Vec<(String, String, String, Option<String>)> = port
        .api_requests()
        .iter()
        .map(|r| {
            (
                r.method.clone(),
                r.path.clone(),
                r.body.clone(),
                r.header("authorization").map(str::to_string),
            )
        })
        .collect();
    let ours = Some(format!("Bearer {STATIC_TOKEN}"));
    assert_eq!(
        seen,
        [
            (
                "GET".into(),
                "/v1/integration/github-ocean".into(),
                String::new(),
                ours.clone()
            ),
            (
                "PATCH".into(),
                "/v1/integration/github-ocean".into(),
                r#"{"title":"GH"}"#.into(),
                ours
            ),
        ]
    );
}

// ------------------------------------------------------------------ 9. opaque tokens

#[tokio::test]
async fn opaque_tokens_are_introspected() {
    let other = "http://127.0.0.1:9/other-mcp";
    let port = FakePort::start().await;
    let bound = bind().await;
    let public_url = bound.public_url.clone();
    let issuer =
        Issuer::with_args(&["--opaque-resource", &public_url, "--opaque-resource", other]).await;
    let mut settings = bound.settings(&issuer.issuer);
    settings.oauth.as_mut().unwrap().introspection = Some(Introspection {
        url: issuer.info["introspection_endpoint"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        client_id: Secret::new(issuer.info["introspector_id"].as_str().unwrap()),
        client_secret: Secret::new(issuer.info["introspector_secret"].as_str().unwrap()),
    });
    let addr = bound.serve(&port, &settings);
    let metadata = format!("http://{addr}/.well-known/oauth-protected-resource/mcp");

    let token = issuer.token(READ_WRITE, &public_url).await;
    assert!(!token.contains('.'), "not opaque: {token}");
    let client = client(addr, &token).await;
    assert_eq!(names(&client).await, ALL_TOOLS);
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(
        port.single_request().header("authorization"),
        Some(format!("Bearer {STATIC_TOKEN}").as_str())
    );
    // The answer is remembered: more calls do not introspect again.
    let introspected = issuer.hits("/token/introspection").await;
    assert!(introspected >= 1);
    for _ in 0..3 {
        call(&client, "get-all-integrations-meta-data", json!({})).await;
    }
    assert_eq!(issuer.hits("/token/introspection").await, introspected);
    client.cancel().await.unwrap();

    // The scope still decides: a read-only opaque token cannot delete.
    port.port.clear_requests();
    let read = issuer.token(READ, &public_url).await;
    let (status, _, body) = post(
        addr,
        "/mcp",
        &tools_call("delete-integration", json!({"identifier": "github-ocean"})),
        Some(&format!("Bearer {read}")),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "insufficient_scope");

    // Inactive (never issued) and for another resource: refused.
    for (token, why) in [
        (
            "never-issued-0123456789".to_string(),
            "the authorization server says the token is not active (expired, revoked or unknown)"
                .to_string(),
        ),
        (
            issuer.token(READ_WRITE, other).await,
            format!("the token's audience (aud) does not include this server ({public_url})"),
        ),
    ] {
        let (status, headers, body) = initialize_as(addr, &token).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(
            headers["www-authenticate"],
            challenge(&metadata, Some(("invalid_token", &why)), READ_WRITE).as_str()
        );
        assert_eq!(
            body,
            json!({"error": "invalid_token", "error_description": why})
        );
    }
    assert!(port.port.requests().is_empty());

    // The endpoint out of reach: 503, not a refusal of the token.
    let unseen = issuer.token(READ_WRITE, &public_url).await;
    issuer.down(true).await;
    let (status, headers, body) = initialize_as(addr, &unseen).await;
    assert_eq!(status, 503, "{body}");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "cannot introspect the token at {}",
                issuer.info["introspection_endpoint"].as_str().unwrap()
            )),
        "{body}"
    );
    assert!(!body.to_string().contains(&unseen));
    assert!(port.port.requests().is_empty());
}

// ------------------------------------------------------------------ 10. start-up refusals

#[tokio::test]
async fn conflicting_or_incomplete_oauth_settings_refuse_to_start() {
    let token_file = std::env::temp_dir().join(format!("oauth-inbound-{}", std::process::id()));
    std::fs::write(&token_file, "inbound-secret-0123456789").unwrap();
    let token_file = token_file.to_str().unwrap().to_string();
    let issuer = "http://127.0.0.1:1";
    let public = "http://127.0.0.1:2/mcp";
    // (arguments, environment, the flag the refusal must name)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                "--oauth-issuer",
                issuer,
                "--public-url",
                public,
                "--auth-token-file",
                &token_file,
            ],
            vec![],
            "--auth-token-file",
        ),
        (
            vec!["--oauth-issuer", issuer, "--public-url", public],
            vec![("PORT_MCP_AUTH_TOKEN", "inbound-secret-0123456789")],
            "PORT_MCP_AUTH_TOKEN",
        ),
        (
            vec![
                "--oauth-issuer",
                issuer,
                "--public-url",
                public,
                "--token-passthrough",
            ],
            vec![],
            "--token-passthrough",
        ),
        (vec!["--oauth-issuer", issuer], vec![], "--public-url"),
        (
            vec!["--oauth-audience", "api://port"],
            vec![],
            "--oauth-audience",
        ),
        (vec!["--public-url", public], vec![], "--public-url"),
        (
            vec![
                "--oauth-issuer",
                "http://idp.example.com",
                "--public-url",
                public,
            ],
            vec![],
            "--oauth-issuer",
        ),
        (
            vec![
                "--oauth-issuer",
                issuer,
                "--public-url",
                "http://mcp.example.com/mcp",
            ],
            vec![],
            "--public-url",
        ),
        (
            vec![
                "--oauth-issuer",
                issuer,
                "--public-url",
                public,
                "--oauth-introspection-url",
                "http://127.0.0.1:1/introspect",
            ],
            vec![],
            "PORT_MCP_OAUTH_CLIENT_ID",
        ),
    ];
    for (args, env, flag) in cases {
        let mut command = tokio::process::Command::new(BIN);
        command
            .env_clear()
            .env("PORT_API_KEY", STATIC_TOKEN)
            .env("PORT_BASE_URL", "http://127.0.0.1:1")
            .args(["http", "--listen", &format!("127.0.0.1:{}", free_port())])
            .args(&args)
            .kill_on_drop(true)
            .stdin(Stdio::null());
        for (k, v) in &env {
            command.env(k, v);
        }
        let out = tokio::time::timeout(Duration::from_secs(20), command.output())
            .await
            .expect("refused in time")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?} {env:?}: {stderr}");
        assert!(
            stderr.contains(flag),
            "{args:?}: {flag} not named in {stderr}"
        );
        assert!(!stderr.contains("inbound-secret-0123456789"), "{stderr}");
    }
    let _ = std::fs::remove_file(&token_file);
}

/// base64url without padding.
fn base64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
