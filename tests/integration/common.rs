//! Shared harness: a fake Port, a server wired to it, and an MCP client talking to that server.

use std::time::Duration;

use port_integrations_mcp::{
    config::{Credentials, PortSettings, Secret, normalize_base_url},
    port::PortClient,
    sandbox::{RecordedRequest, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, Sandbox, SandboxAuth},
    tools::PortTools,
};
use rmcp::{
    ClientHandler, RoleClient, Service, ServiceExt,
    model::{CallToolRequestParams, CallToolResult, ProtocolVersion},
    service::{ClientLifecycleMode, ClientServiceExt, RunningService},
};
use serde_json::Value;

/// A static token the fake Port accepts.
pub const STATIC_TOKEN: &str = "static-test-token-0123456789";

pub type Client = RunningService<RoleClient, ()>;

/// A fake Port on loopback, and its base URL.
pub struct FakePort {
    pub port: Sandbox,
    pub url: String,
}

impl FakePort {
    pub async fn start() -> Self {
        Self::with_auth(test_auth()).await
    }

    pub async fn with_auth(auth: SandboxAuth) -> Self {
        Self::serving(Sandbox::new(auth)).await
    }

    /// Serves a sandbox built by the test (e.g. with `with_mapping`, `with_auto_resync`).
    pub async fn serving(port: Sandbox) -> Self {
        port_integrations_mcp::install_crypto_provider();
        let url = port.spawn().await.unwrap();
        FakePort { port, url }
    }

    /// A fake Port whose resyncs apply the mapping to the kind examples in the real preview
    /// worker (this crate's binary), so their outcome follows the config.
    pub async fn with_mapping() -> Self {
        Self::serving(Sandbox::new(test_auth()).with_mapping(mapping_limits())).await
    }

    pub fn settings(&self, credentials: Credentials) -> PortSettings {
        settings_for(&self.url, credentials)
    }

    /// A server offering `selection`'s tools over a client of this fake, with the static token.
    pub fn tools(&self, selection: &port_integrations_mcp::config::ToolSelection) -> PortTools {
        PortTools::with_selection(
            PortClient::new(&self.settings(static_token())).unwrap(),
            selection,
        )
        .unwrap()
    }

    /// Requests to the seven routes (token exchanges left out).
    pub fn api_requests(&self) -> Vec<RecordedRequest> {
        self.port.api_requests()
    }

    /// The only API request received since the last clear; fails if there were others.
    pub fn single_request(&self) -> RecordedRequest {
        let reqs = self.api_requests();
        assert_eq!(
            reqs.len(),
            1,
            "expected exactly one request to Port, got {reqs:#?}"
        );
        reqs.into_iter().next().unwrap()
    }
}

/// The sandbox's default auth plus [`STATIC_TOKEN`].
pub fn test_auth() -> SandboxAuth {
    SandboxAuth {
        static_tokens: vec![STATIC_TOKEN.into()],
        ..SandboxAuth::default()
    }
}

/// Mapping limits whose preview worker is this crate's binary.
pub fn mapping_limits() -> port_integrations_mcp::mapping::MappingLimits {
    port_integrations_mcp::mapping::MappingLimits {
        preview_worker: Some(env!("CARGO_BIN_EXE_port-integrations-mcp").into()),
        ..Default::default()
    }
}

pub fn settings_for(url: &str, credentials: Credentials) -> PortSettings {
    PortSettings {
        base_url: normalize_base_url(url).unwrap(),
        credentials,
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        budget: Duration::from_secs(5),
        max_in_flight: 8,
        max_response_bytes: 1 << 20,
        max_attempts: 4,
        max_structured_bytes: 512 * 1024,
        min_request_budget: Duration::from_secs(2),
    }
}

pub fn static_token() -> Credentials {
    Credentials::Token(Secret::new(STATIC_TOKEN))
}

pub fn client_credentials() -> Credentials {
    Credentials::ClientCredentials {
        client_id: Secret::new(SANDBOX_CLIENT_ID),
        client_secret: Secret::new(SANDBOX_CLIENT_SECRET),
    }
}

/// The server over an in-memory duplex pipe, with rmcp's client on the other end (legacy
/// `initialize` handshake).
pub async fn connect(settings: &PortSettings) -> Client {
    connect_with(settings, ClientLifecycleMode::Initialize).await
}

/// Same, in the 2026-07-28 era (`server/discover`, no initialize).
pub async fn connect_modern(settings: &PortSettings) -> Client {
    connect_with(
        settings,
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    )
    .await
}

async fn connect_with(settings: &PortSettings, mode: ClientLifecycleMode) -> Client {
    connect_tools(PortTools::new(PortClient::new(settings).unwrap()), (), mode).await
}

/// A given server and client handler, joined by an in-memory pipe.
pub async fn connect_tools<C: ClientHandler>(
    server: PortTools,
    handler: C,
    mode: ClientLifecycleMode,
) -> RunningService<RoleClient, C> {
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    handler.serve_with_lifecycle(client_io, mode).await.unwrap()
}

pub fn modern() -> ClientLifecycleMode {
    ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    }
}

/// Connects to a fake Port with the static token.
pub async fn setup() -> (FakePort, Client) {
    let port = FakePort::start().await;
    let client = connect(&port.settings(static_token())).await;
    (port, client)
}

pub fn args(value: Value) -> serde_json::Map<String, Value> {
    value
        .as_object()
        .cloned()
        .expect("arguments must be an object")
}

/// Calls a tool; a protocol error fails the test.
pub async fn call<S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    name: &str,
    arguments: Value,
) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(args(arguments)))
        .await
        .unwrap_or_else(|e| panic!("tools/call {name} failed at protocol level: {e}"))
}

/// The text of a result's single text block.
pub fn text(result: &CallToolResult) -> String {
    assert_eq!(
        result.content.len(),
        1,
        "expected one content block: {result:?}"
    );
    result.content[0]
        .as_text()
        .map(|t| t.text.clone())
        .expect("text content")
}

pub fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

/// Starts a `get-all-integrations` call that the fake Port answers only after 8 s, waits until
/// Port has it, cancels it with `notifications/cancelled`, and checks that Port's request was
/// dropped and nothing was retried.
pub async fn cancel_a_slow_call<S: Service<RoleClient>>(
    port: &FakePort,
    client: &RunningService<RoleClient, S>,
) {
    use rmcp::model::{CallToolRequest, ClientRequest};
    use rmcp::service::PeerRequestOptions;
    port.port.script(
        port_integrations_mcp::sandbox::ScriptedResponse::json(
            200,
            serde_json::json!({"ok": true}),
        )
        .after(Duration::from_secs(8)),
    );
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new("get-all-integrations")
            .with_arguments(args(serde_json::json!({}))),
    ));
    let handle = client
        .peer()
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    // Poll rather than sleep a fixed time: on a loaded machine the call may take a while.
    for _ in 0..150 {
        if !port.api_requests().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(port.api_requests().len(), 1, "the request reached Port");
    assert_eq!(port.port.aborted(), 0);
    handle
        .cancel(Some("user pressed stop".into()))
        .await
        .unwrap();
    wait_for_abort(port).await;
    assert_eq!(port.api_requests().len(), 1, "nothing retried after cancel");
}

/// Waits (up to 2 s) for the fake Port to count one abandoned answer.
pub async fn wait_for_abort(port: &FakePort) {
    let mut waited = 0;
    while port.port.aborted() == 0 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    assert_eq!(port.port.aborted(), 1, "Port's request was left running");
}

/// Serves `router` on an ephemeral loopback port; returns its address.
pub async fn listen(router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A loopback port free at the time of asking, for a server process to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (up to 5 s) until a server process answers `/healthz` on `port`.
pub async fn wait_healthy(port: u16) {
    port_integrations_mcp::install_crypto_provider();
    for _ in 0..250 {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server did not come up on {port}");
}

/// Sends SIGTERM, as an orchestrator stopping the server would.
pub fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
}
