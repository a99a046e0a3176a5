//! The guided workflow: the prompts (troubleshoot-integration, fix-integration-mapping), the
//! resources (port://integrations/{identifier}, port://default-mappings/{type}) and their
//! completion, through rmcp's real client on the pipe and over HTTP.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf};

use port_integrations_mcp::{
    config::{Credentials, HttpSettings, ToolSelection, Toolset},
    port::{PortClient, USER_AGENT},
    sandbox::ScriptedResponse,
    tools::{
        PortTools,
        guide::{Offer, prompts},
    },
    transport::http::app,
};
use rmcp::{
    RoleClient, Service,
    model::{
        ArgumentInfo, CompleteRequestParams, CompletionInfo, ErrorCode, ErrorData,
        GetPromptRequestParams, ReadResourceRequestParams, Reference, ResourceContents,
    },
    service::{ClientLifecycleMode, ClientServiceExt, RunningService, ServiceError},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{common::*, http::http_args};

/// The seven seed tools, the mapping toolset and the sync toolset: every tool a prompt can name.
const ALL_TOOLS: [&str; 13] = [
    "get-all-integrations",
    "get-all-integrations-meta-data",
    "get-integration",
    "update-integration",
    "delete-integration",
    "update-integration-s-config",
    "get-integration-s-event-logs",
    "preview-integration-mapping",
    "resync-integration",
    "get-integration-sync-status",
    "get-integration-sync-history",
    "restore-integration-mapping",
    "get-integration-kind-examples",
];

fn corpus_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets/mapping-corpus/ocean")
        .join(format!("{name}.yml"));
    std::fs::read_to_string(path).unwrap()
}

fn jira_cloud() -> Value {
    json!({
        "identifier": "jira-cloud",
        "_id": "integration_3b9d7c42",
        "installationId": "jira-cloud",
        "title": "Jira",
        "installationAppType": "jira",
        "integrationType": "jira",
        "version": "0.3.1",
        "resyncState": {"status": "failed"},
        "config": {
            "deleteDependentEntities": true,
            "createMissingRelatedEntities": true,
            "resources": [{
                "kind": "issue",
                "selector": {"query": "true"},
                "port": {"entity": {"mappings": {
                    "identifier": ".fields.key",
                    "title": ".fields.summary",
                    "blueprint": "\"jiraIssue\""
                }}}
            }]
        }
    })
}

async fn server(port: &FakePort, selection: &ToolSelection) -> PortTools {
    port.tools(selection)
}

pub fn toolsets(sets: &[Toolset]) -> ToolSelection {
    ToolSelection {
        toolsets: sets.to_vec(),
        ..Default::default()
    }
}

pub async fn prompt_text<S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    name: &str,
    arguments: Value,
) -> String {
    let result = client
        .get_prompt(GetPromptRequestParams::new(name).with_arguments(args(arguments)))
        .await
        .unwrap();
    assert_eq!(result.messages.len(), 1);
    result.messages[0].content.as_text().unwrap().text.clone()
}

/// The protocol error of a failed request.
fn mcp_error<T: std::fmt::Debug>(outcome: Result<T, ServiceError>) -> ErrorData {
    match outcome {
        Err(ServiceError::McpError(e)) => e,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

async fn prompt_error<S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    name: &str,
    arguments: Value,
) -> ErrorData {
    mcp_error(
        client
            .get_prompt(GetPromptRequestParams::new(name).with_arguments(args(arguments)))
            .await,
    )
}

pub async fn read<S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    uri: &str,
) -> Result<(String, Option<String>, String), ServiceError> {
    let result = client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await?;
    assert_eq!(result.contents.len(), 1);
    match result.contents.into_iter().next().unwrap() {
        ResourceContents::TextResourceContents {
            uri,
            mime_type,
            text,
            ..
        } => Ok((uri, mime_type, text)),
        other => panic!("expected text contents, got {other:?}"),
    }
}

async fn complete<S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    reference: Reference,
    argument: &str,
    value: &str,
) -> Result<CompletionInfo, ServiceError> {
    client
        .complete(CompleteRequestParams::new(
            reference,
            ArgumentInfo::new(argument, value),
        ))
        .await
        .map(|r| r.completion)
}

/// Where each tool name first appears at or after `from`, in the order given; fails if one is
/// missing or out of order.
fn assert_in_order(text: &str, names: &[&str]) {
    let mut from = 0;
    for name in names {
        let at = text[from..]
            .find(&format!("{name} {{"))
            .unwrap_or_else(|| panic!("`{name} {{...}}` missing after byte {from} in:\n{text}"));
        from += at + name.len();
    }
}

// ---------------------------------------------------------------------------------------------
// Surface

#[tokio::test]
async fn prompt_and_resource_surface_snapshot() {
    let (port, client) = setup().await;
    let info = client.peer_info().unwrap();
    assert!(info.capabilities.prompts.is_some());
    assert!(info.capabilities.resources.is_some());
    assert!(info.capabilities.completions.is_some());
    let prompts = client.list_all_prompts().await.unwrap();
    let templates = client.list_all_resource_templates().await.unwrap();
    insta::assert_json_snapshot!(
        "guide_surface",
        json!({"prompts": prompts, "resourceTemplates": templates})
    );
    assert!(port.port.requests().is_empty(), "listing calls nobody");
}

// ---------------------------------------------------------------------------------------------
// Prompts

#[test]
fn with_every_toolset_the_steps_name_each_tool_in_order() {
    let offer = Offer::new(ALL_TOOLS, false);
    let troubleshoot = prompts::render(
        prompts::TROUBLESHOOT,
        Some(&args(json!({"identifier": "jira-cloud"}))),
        &offer,
    )
    .unwrap();
    assert_eq!(
        troubleshoot.description.as_deref(),
        Some("Troubleshoot integration \"jira-cloud\".")
    );
    let text = troubleshoot.messages[0]
        .content
        .as_text()
        .unwrap()
        .text
        .clone();
    assert_in_order(
        &text,
        &[
            "get-integration-sync-status",
            "get-integration-s-event-logs",
            "get-integration",
            "get-integration-kind-examples",
            "preview-integration-mapping",
            "update-integration-s-config",
            "resync-integration",
            "get-integration-sync-status",
            "get-integration-sync-history",
            "restore-integration-mapping",
        ],
    );
    assert!(text.contains(
        r#"get-integration-s-event-logs {"identifier":"jira-cloud","levels":["ERROR"],"event_id":"<resyncId of the failed run>"}"#
    ));
    assert!(!text.contains("--toolsets"), "nothing is missing:\n{text}");
    insta::assert_snapshot!("troubleshoot_all_toolsets", text);

    let fix = prompts::render(
        prompts::FIX_MAPPING,
        Some(&args(json!({"identifier": "jira-cloud", "kind": "issue"}))),
        &offer,
    )
    .unwrap();
    let text = fix.messages[0].content.as_text().unwrap().text.clone();
    assert_in_order(
        &text,
        &[
            "get-integration",
            "get-integration-s-event-logs",
            "get-integration-kind-examples",
            "preview-integration-mapping",
            "update-integration-s-config",
            "resync-integration",
            "get-integration-sync-status",
            "get-integration-sync-history",
            "restore-integration-mapping",
        ],
    );
    assert!(
        text.contains(
            r#"get-integration-kind-examples {"identifier":"jira-cloud","kind":"issue"}"#
        )
    );
    assert!(text.contains("port://default-mappings/<installationAppType>"));
    insta::assert_snapshot!("fix_mapping_all_toolsets", text);
}

#[test]
fn read_only_with_every_toolset_proposes_yaml_and_names_no_write_tool() {
    let offer = Offer::new(ALL_TOOLS, true);
    for (name, arguments) in [
        (prompts::TROUBLESHOOT, json!({"identifier": "jira-cloud"})),
        (
            prompts::FIX_MAPPING,
            json!({"identifier": "jira-cloud", "kind": "issue"}),
        ),
    ] {
        let rendered = prompts::render(name, Some(&args(arguments)), &offer).unwrap();
        let text = rendered.messages[0].content.as_text().unwrap().text.clone();
        for write in [
            "update-integration-s-config {",
            "resync-integration {",
            "restore-integration-mapping",
        ] {
            assert!(!text.contains(write), "{name} names {write}:\n{text}");
        }
        assert!(text.contains("Propose the fix, do not apply it: this request is read-only"));
        assert!(text.contains("as YAML"));
        assert!(text.contains("once a person has applied the fix"));
        assert!(!text.contains("--toolsets"), "{text}");
        // The reading steps stay.
        assert!(text.contains("get-integration-kind-examples {"));
        assert!(text.contains("get-integration-sync-status {"));
    }
}

#[tokio::test]
async fn default_toolset_prompt_falls_back_and_names_the_toolsets_to_enable() {
    let (port, client) = setup().await;
    let text = prompt_text(
        &client,
        "troubleshoot-integration",
        json!({"identifier": "jira-cloud"}),
    )
    .await;
    assert!(text.starts_with("Troubleshoot the Port integration \"jira-cloud\""));
    assert_in_order(
        &text,
        &[
            "get-integration",
            "get-integration-s-event-logs",
            "get-integration",
            "update-integration-s-config",
            "get-integration",
        ],
    );
    for absent in [
        "get-integration-sync-status {",
        "get-integration-kind-examples {",
        "preview-integration-mapping {",
        "resync-integration {",
        "restore-integration-mapping {",
    ] {
        assert!(!text.contains(absent), "{absent} is not offered:\n{text}");
    }
    assert!(text.contains("ask the user for two or three raw items"));
    assert!(text.ends_with(
        "This server does not offer get-integration-sync-status, \
         get-integration-kind-examples, preview-integration-mapping, resync-integration, \
         get-integration-sync-history, restore-integration-mapping to this request. They are \
         in the mapping and sync toolsets: to use them, restart the server with --toolsets \
         integrations,mapping,sync."
    ));
    insta::assert_snapshot!("troubleshoot_default_toolset", text);
    assert!(port.port.requests().is_empty(), "rendering calls nobody");
}

#[tokio::test]
async fn mapping_toolset_prompt_previews_and_resyncs() {
    let port = FakePort::start().await;
    let tools = server(&port, &toolsets(&[Toolset::Integrations, Toolset::Mapping])).await;
    let client = connect_tools(tools, (), ClientLifecycleMode::Initialize).await;
    let text = prompt_text(
        &client,
        "fix-integration-mapping",
        json!({"identifier": "jira-cloud", "kind": "issue"}),
    )
    .await;
    assert_in_order(
        &text,
        &[
            "get-integration",
            "get-integration-s-event-logs",
            "preview-integration-mapping",
            "update-integration-s-config",
            "resync-integration",
            "get-integration",
        ],
    );
    assert!(text.contains(r#"resync-integration {"identifier":"jira-cloud"}"#));
    assert!(text.contains(
        r#"preview-integration-mapping {"config":"<the fixed config>","kind":"issue","items":"<the raw items>"}"#
    ));
    assert!(text.contains(
        "This server does not offer get-integration-kind-examples, \
         get-integration-sync-status, get-integration-sync-history, \
         restore-integration-mapping to this request."
    ));
    assert!(port.port.requests().is_empty());
}

#[tokio::test]
async fn read_only_selection_turns_the_write_steps_into_a_proposal() {
    let port = FakePort::start().await;
    let selection = ToolSelection {
        read_only: true,
        toolsets: vec![Toolset::Integrations, Toolset::Mapping, Toolset::Sync],
        ..Default::default()
    };
    let client = connect_tools(
        server(&port, &selection).await,
        (),
        ClientLifecycleMode::Initialize,
    )
    .await;
    let text = prompt_text(
        &client,
        "troubleshoot-integration",
        json!({"identifier": "jira-cloud"}),
    )
    .await;
    assert!(text.contains(
        "Propose the fix, do not apply it: this server does not offer \
         update-integration-s-config (read-only mode or a tool allow-list)."
    ));
    for write in [
        "update-integration-s-config {",
        "resync-integration {",
        "restore-integration-mapping",
    ] {
        assert!(!text.contains(write), "{text}");
    }
    assert_in_order(
        &text,
        &[
            "get-integration-sync-status",
            "get-integration-s-event-logs",
            "get-integration",
            "get-integration-kind-examples",
            "preview-integration-mapping",
            "get-integration-sync-status",
            "get-integration-sync-history",
        ],
    );
    // Every read tool is there; the missing write tools are the point, not a toolset to enable.
    assert!(!text.contains("--toolsets"), "{text}");
    assert!(port.port.requests().is_empty());
}

async fn serve_tools(tools: PortTools, settings: &HttpSettings) -> SocketAddr {
    listen(app(tools, settings, CancellationToken::new())).await
}

fn http_client_transport(
    addr: SocketAddr,
    edit: impl FnOnce(StreamableHttpClientTransportConfig) -> StreamableHttpClientTransportConfig,
) -> StreamableHttpClientTransport<reqwest::Client> {
    StreamableHttpClientTransport::from_config(edit(StreamableHttpClientTransportConfig::with_uri(
        format!("http://{addr}/mcp"),
    )))
}

#[tokio::test]
async fn the_read_only_header_changes_the_prompt_for_that_request_only() {
    let port = FakePort::start().await;
    let tools = server(&port, &toolsets(&[Toolset::Integrations, Toolset::Mapping])).await;
    let addr = serve_tools(tools, &http_args(false)).await;
    let headers = HashMap::from([(
        reqwest::header::HeaderName::from_static("x-read-only-mode"),
        reqwest::header::HeaderValue::from_static("1"),
    )]);
    let read_only = ()
        .serve_with_lifecycle(
            http_client_transport(addr, |c| c.custom_headers(headers)),
            ClientLifecycleMode::Initialize,
        )
        .await
        .unwrap();
    let normal =
        ().serve_with_lifecycle(http_client_transport(addr, |c| c), modern())
            .await
            .unwrap();
    let arguments = json!({"identifier": "jira-cloud", "kind": "issue"});
    let limited = prompt_text(&read_only, "fix-integration-mapping", arguments.clone()).await;
    assert!(limited.contains(
        "Propose the fix, do not apply it: this request is read-only (x-read-only-mode)."
    ));
    assert!(limited.contains("say that only the resource of kind \"issue\" changed, and why"));
    for write in ["update-integration-s-config {", "resync-integration {"] {
        assert!(!limited.contains(write), "{limited}");
    }
    let full = prompt_text(&normal, "fix-integration-mapping", arguments).await;
    assert_in_order(
        &full,
        &["update-integration-s-config", "resync-integration"],
    );
    assert!(!full.contains("Propose the fix"));
    assert!(port.port.requests().is_empty());
}

#[tokio::test]
async fn without_get_integration_there_are_no_prompts_and_no_integration_resource() {
    let port = FakePort::start().await;
    let selection = ToolSelection {
        tools: vec!["get-all-integrations".into()],
        ..Default::default()
    };
    let client = connect_tools(
        server(&port, &selection).await,
        (),
        ClientLifecycleMode::Initialize,
    )
    .await;
    assert!(client.list_all_prompts().await.unwrap().is_empty());
    let e = prompt_error(
        &client,
        "troubleshoot-integration",
        json!({"identifier": "jira-cloud"}),
    )
    .await;
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    assert!(
        e.message.contains("does not offer get-integration"),
        "{e:?}"
    );
    let templates: Vec<String> = client
        .list_all_resource_templates()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.uri_template)
        .collect();
    assert_eq!(templates, ["port://default-mappings/{type}"]);
    let e = mcp_error(read(&client, "port://integrations/jira-cloud").await);
    assert_eq!(e.code, ErrorCode::RESOURCE_NOT_FOUND);
    assert!(
        e.message.contains("does not offer get-integration"),
        "{e:?}"
    );
    // The default mappings stay: they are local.
    assert!(read(&client, "port://default-mappings/jira").await.is_ok());
    let e = mcp_error(
        complete(
            &client,
            Reference::for_prompt("troubleshoot-integration"),
            "identifier",
            "",
        )
        .await,
    );
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    assert!(port.port.requests().is_empty());
}

#[tokio::test]
async fn bad_prompt_arguments_are_refused_naming_the_argument() {
    let (port, client) = setup().await;
    let long = "a".repeat(300);
    let cases = [
        (
            "troubleshoot-integration",
            json!({}),
            "identifier",
            "is required",
        ),
        (
            "troubleshoot-integration",
            json!({"identifier": ""}),
            "identifier",
            "must not be empty",
        ),
        (
            "troubleshoot-integration",
            json!({"identifier": "  "}),
            "identifier",
            "must not be empty",
        ),
        (
            "troubleshoot-integration",
            json!({"identifier": "jira\ncloud"}),
            "identifier",
            "control character U+000A at byte 4",
        ),
        (
            "troubleshoot-integration",
            json!({"identifier": long}),
            "identifier",
            "is 300 bytes long; at most 256",
        ),
        (
            "troubleshoot-integration",
            json!({"identifier": ".."}),
            "identifier",
            "is not an integration identifier",
        ),
        (
            "troubleshoot-integration",
            json!({"identifier": "jira-cloud", "kind": "issue"}),
            "kind",
            "is not an argument of this prompt (it takes identifier)",
        ),
        (
            "fix-integration-mapping",
            json!({"identifier": "jira-cloud"}),
            "kind",
            "is required",
        ),
        (
            "fix-integration-mapping",
            json!({"identifier": "jira-cloud", "kind": ""}),
            "kind",
            "must not be empty",
        ),
        (
            "fix-integration-mapping",
            json!({"identifier": "jira-cloud", "kind": "is\u{7}sue"}),
            "kind",
            "control character U+0007",
        ),
    ];
    for (prompt, arguments, argument, message) in cases {
        let e = prompt_error(&client, prompt, arguments.clone()).await;
        assert_eq!(e.code, ErrorCode::INVALID_PARAMS, "{arguments}");
        assert!(
            e.message.starts_with(&format!(
                "invalid argument `{argument}` of prompt `{prompt}`: "
            )),
            "{arguments}: {}",
            e.message
        );
        assert!(e.message.contains(message), "{arguments}: {}", e.message);
        assert_eq!(e.data.as_ref().unwrap()["argument"], argument);
    }
    // Arguments come as strings on the wire; a host that sends no arguments at all is refused too.
    let e = mcp_error(
        client
            .get_prompt(GetPromptRequestParams::new("fix-integration-mapping"))
            .await,
    );
    assert!(e.message.contains("`identifier`"), "{e:?}");
    let e = prompt_error(&client, "no-such-prompt", json!({})).await;
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    assert!(e.message.contains("unknown prompt `no-such-prompt`"));
    // A hostile name is cut and its control characters replaced in the message.
    let e = prompt_error(
        &client,
        &format!("a\u{1b}[2J{}", "x".repeat(10_000)),
        json!({}),
    )
    .await;
    assert!(e.message.len() < 500, "{}", e.message.len());
    assert!(!e.message.contains('\u{1b}'));
    assert!(port.port.requests().is_empty());
}

#[test]
fn arguments_that_are_not_text_are_refused() {
    let e = prompts::render(
        prompts::TROUBLESHOOT,
        Some(&args(json!({"identifier": 42}))),
        &Offer::new(ALL_TOOLS, false),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    assert!(e.message.contains("`identifier`") && e.message.contains("must be a string"));
}

#[test]
fn quotes_in_arguments_cannot_break_the_calls() {
    let rendered = prompts::render(
        prompts::FIX_MAPPING,
        Some(&args(json!({"identifier": "a\"b", "kind": "x\\\"y"}))),
        &Offer::new(ALL_TOOLS, false),
    )
    .unwrap();
    let text = rendered.messages[0].content.as_text().unwrap().text.clone();
    assert!(
        text.contains(r#"get-integration {"identifier":"a\"b"}"#),
        "{text}"
    );
    assert!(text.contains(r#""kinds":["x\\\"y"]"#), "{text}");
}

// ---------------------------------------------------------------------------------------------
// port://integrations/{identifier}

#[tokio::test]
async fn the_integration_resource_is_get_integration_answer() {
    let (port, client) = setup().await;
    port.port.set_integrations(vec![jira_cloud()]);
    let (uri, mime, text) = read(&client, "port://integrations/jira-cloud")
        .await
        .unwrap();
    let req = port.single_request();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/v1/integration/jira-cloud")
    );
    assert_eq!(req.query, None);
    assert_eq!(req.body, "");
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {STATIC_TOKEN}").as_str())
    );
    assert_eq!(req.header("user-agent"), Some(USER_AGENT));
    assert_eq!(req.header("accept"), Some("application/json"));
    assert_eq!(uri, "port://integrations/jira-cloud");
    assert_eq!(mime.as_deref(), Some("application/json"));
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"ok": true, "integration": jira_cloud()})
    );

    // Port's bytes, not a re-encoding; a percent-encoded identifier reaches Port as one segment.
    let raw = "{ \"ok\": true,\n \"integration\": {\"identifier\": \"jira cloud\"} }";
    port.port.clear_requests();
    port.port.script(ScriptedResponse {
        body: raw.into(),
        ..ScriptedResponse::json(200, Value::Null)
    });
    let (uri, _, text) = read(&client, "port://integrations/jira%20cloud")
        .await
        .unwrap();
    assert_eq!(text, raw);
    assert_eq!(uri, "port://integrations/jira%20cloud");
    assert_eq!(port.single_request().path, "/v1/integration/jira%20cloud");
}

#[tokio::test]
async fn an_unknown_integration_is_resource_not_found_with_ports_message() {
    let (port, client) = setup().await;
    let e = mcp_error(read(&client, "port://integrations/nope").await);
    assert_eq!(e.code, ErrorCode::RESOURCE_NOT_FOUND);
    assert_eq!(
        e.message,
        "no integration \"nope\" in Port: Integration with identifier \"nope\" was not found"
    );
    let data = e.data.unwrap();
    assert_eq!(data["status"], 404);
    assert_eq!(data["error"], "not_found");
    assert!(data["traceId"].is_string());
    assert_eq!(port.single_request().path, "/v1/integration/nope");
}

#[tokio::test]
async fn other_port_failures_carry_status_and_trace_id_and_no_secret() {
    let (port, client) = setup().await;
    port.port.script(
        ScriptedResponse::json(
            403,
            json!({"ok": false, "error": "forbidden", "message": "Missing role"}),
        )
        .with_trace_id("trace-guide-1"),
    );
    let e = mcp_error(read(&client, "port://integrations/jira-cloud").await);
    assert_eq!(e.code, ErrorCode::INTERNAL_ERROR);
    assert!(
        e.message.starts_with(
            "Port answered HTTP 403 (forbidden): Missing role [x-trace-id: trace-guide-1]"
        ),
        "{}",
        e.message
    );
    let data = e.data.unwrap();
    assert_eq!(data["status"], 403);
    assert_eq!(data["traceId"], "trace-guide-1");
    let everything = format!("{} {data}", e.message);
    assert!(!everything.contains(STATIC_TOKEN));
    assert_eq!(port.single_request().path, "/v1/integration/jira-cloud");
}

#[tokio::test]
async fn hostile_integration_uris_are_refused_before_port() {
    let (port, client) = setup().await;
    let long = format!("port://integrations/{}", "a".repeat(300));
    let cases: [(&str, &str); 14] = [
        ("port://integrations/a%2Fb", "contains `/` once decoded"),
        ("port://integrations/a\tb", "control character U+0009"),
        ("port://integrations/a%2fb", "contains `/` once decoded"),
        ("port://integrations/a%5Cb", "contains `\\` once decoded"),
        ("port://integrations/a%3Fb", "contains `?` once decoded"),
        ("port://integrations/a/b", "has `/` after the identifier"),
        (
            "port://integrations/jira-cloud?x",
            "has `?` after the identifier",
        ),
        (
            "port://integrations/jira-cloud#top",
            "has `#` after the identifier",
        ),
        ("port://integrations/..", "is not an integration identifier"),
        (
            "port://integrations/%2E%2E",
            "is not an integration identifier",
        ),
        ("port://integrations/a%0Ab", "control character U+000A"),
        ("port://integrations/%FF", "is not UTF-8 once decoded"),
        ("port://integrations/", "is empty"),
        (&long, "is 300 bytes long"),
    ];
    for (uri, message) in cases {
        let e = mcp_error(read(&client, uri).await);
        assert_eq!(e.code, ErrorCode::INVALID_PARAMS, "{uri}");
        assert!(
            e.message.starts_with("invalid argument `uri`"),
            "{uri}: {}",
            e.message
        );
        assert!(e.message.contains(message), "{uri}: {}", e.message);
        assert!(e.message.ends_with("Nothing was sent to Port."), "{uri}");
    }
    for uri in [
        "port://other/x",
        "PORT://integrations/x",
        "file:///etc/passwd",
    ] {
        let e = mcp_error(read(&client, uri).await);
        assert_eq!(e.code, ErrorCode::RESOURCE_NOT_FOUND, "{uri}");
    }
    assert!(port.port.requests().is_empty(), "nothing reached Port");
}

#[tokio::test]
async fn the_integration_resource_forwards_the_callers_token_in_passthrough_mode() {
    let port = FakePort::start().await;
    port.port.set_integrations(vec![jira_cloud()]);
    let mut settings = http_args(true);
    settings.token_passthrough = true;
    let tools = PortTools::new(PortClient::new(&port.settings(Credentials::Passthrough)).unwrap());
    let addr = serve_tools(tools, &settings).await;
    let client = ()
        .serve_with_lifecycle(
            http_client_transport(addr, |c| c.auth_header(STATIC_TOKEN)),
            ClientLifecycleMode::Initialize,
        )
        .await
        .unwrap();
    let (_, _, text) = read(&client, "port://integrations/jira-cloud")
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["integration"]["identifier"],
        "jira-cloud"
    );
    assert_eq!(
        port.single_request().header("authorization"),
        Some(format!("Bearer {STATIC_TOKEN}").as_str())
    );
}

// ---------------------------------------------------------------------------------------------
// port://default-mappings/{type}

#[tokio::test]
async fn default_mappings_are_the_corpus_files_byte_for_byte() {
    let (port, client) = setup().await;
    let (uri, mime, text) = read(&client, "port://default-mappings/github")
        .await
        .unwrap();
    assert_eq!(uri, "port://default-mappings/github");
    assert_eq!(mime.as_deref(), Some("application/yaml"));
    assert_eq!(text, corpus_file("github"));
    // installationAppType aliases: `<type>-ocean`, and versioned types are types of their own.
    let (uri, _, alias) = read(&client, "port://default-mappings/github-ocean")
        .await
        .unwrap();
    assert_eq!(uri, "port://default-mappings/github-ocean");
    assert_eq!(alias, corpus_file("github"));
    let (_, _, v2) = read(&client, "port://default-mappings/gitlab-v2")
        .await
        .unwrap();
    assert_eq!(v2, corpus_file("gitlab-v2"));
    assert_ne!(v2, corpus_file("gitlab"));
    let (_, _, jira) = read(&client, "port://default-mappings/jira").await.unwrap();
    assert_eq!(jira, corpus_file("jira"));

    let e = mcp_error(read(&client, "port://default-mappings/jira-cloud").await);
    assert_eq!(e.code, ErrorCode::RESOURCE_NOT_FOUND);
    assert_eq!(
        e.message,
        "no default mapping for integration type \"jira-cloud\": close matches: jira, jira-server"
    );
    assert_eq!(
        e.data.unwrap()["closeMatches"],
        json!(["jira", "jira-server"])
    );
    let e = mcp_error(read(&client, "port://default-mappings/kubernetes").await);
    assert_eq!(e.code, ErrorCode::RESOURCE_NOT_FOUND);
    assert!(
        e.message.contains("complete the {type} argument"),
        "{}",
        e.message
    );
    for uri in [
        "port://default-mappings/..%2Fgithub",
        "port://default-mappings/github?x",
        "port://default-mappings/git%0Ahub",
    ] {
        assert_eq!(
            mcp_error(read(&client, uri).await).code,
            ErrorCode::INVALID_PARAMS,
            "{uri}"
        );
    }
    assert!(
        port.port.requests().is_empty(),
        "default mappings are local"
    );
}

#[tokio::test]
async fn resources_list_offers_every_default_mapping_and_calls_nobody() {
    let (port, client) = setup().await;
    let resources = client.list_all_resources().await.unwrap();
    let mut expected: Vec<String> = std::fs::read_dir(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/mapping-corpus/ocean"),
    )
    .unwrap()
    .map(|e| {
        e.unwrap()
            .path()
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    })
    .collect();
    expected.sort();
    assert_eq!(expected.len(), 49);
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    let wanted: Vec<String> = expected
        .iter()
        .map(|t| format!("port://default-mappings/{t}"))
        .collect();
    assert_eq!(uris, wanted);
    for (resource, name) in resources.iter().zip(&expected) {
        assert_eq!(&resource.name, name);
        assert_eq!(resource.mime_type.as_deref(), Some("application/yaml"));
        assert_eq!(resource.size, Some(corpus_file(name).len() as u64));
    }
    assert!(port.port.requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Completion

#[tokio::test]
async fn completion_of_the_default_mapping_type() {
    let (port, client) = setup().await;
    let template = || Reference::for_resource("port://default-mappings/{type}");
    let git = complete(&client, template(), "type", "git").await.unwrap();
    assert_eq!(
        git.values,
        ["github", "github-copilot", "gitlab", "gitlab-v2"]
    );
    assert_eq!((git.total, git.has_more), (Some(4), Some(false)));
    let all = complete(&client, template(), "type", "").await.unwrap();
    assert_eq!(all.values.len(), 49);
    assert!(all.values.windows(2).all(|w| w[0] < w[1]));
    assert!(
        complete(&client, template(), "type", "zzz")
            .await
            .unwrap()
            .values
            .is_empty()
    );
    let e = mcp_error(complete(&client, template(), "kind", "").await);
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    let e = mcp_error(complete(&client, Reference::for_resource("port://nope/{x}"), "x", "").await);
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    assert!(port.port.requests().is_empty());
}

#[tokio::test]
async fn completion_of_kind_lists_the_corpus_kinds() {
    let (port, client) = setup().await;
    let mut expected: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/mapping-corpus/ocean"),
    )
    .unwrap()
    {
        let config: Value =
            yaml_serde::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        for resource in config["resources"].as_array().unwrap() {
            let kind = resource["kind"].as_str().unwrap();
            if kind.starts_with("pull") {
                expected.push(kind.to_string());
            }
        }
    }
    expected.sort();
    expected.dedup();
    assert!(expected.contains(&"pull-request".to_string()));
    let kinds = complete(
        &client,
        Reference::for_prompt("fix-integration-mapping"),
        "kind",
        "pull",
    )
    .await
    .unwrap();
    assert_eq!(kinds.values, expected);
    // troubleshoot-integration has no `kind`.
    let e = mcp_error(
        complete(
            &client,
            Reference::for_prompt("troubleshoot-integration"),
            "kind",
            "",
        )
        .await,
    );
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    assert!(port.port.requests().is_empty());
}

#[tokio::test]
async fn completion_of_identifier_asks_port_for_the_integrations() {
    let (port, client) = setup().await;
    // Port's order is not ours: the answer is sorted.
    port.port.set_integrations(vec![
        json!({"identifier": "pagerduty-prod", "installationId": "pagerduty-prod"}),
        jira_cloud(),
        json!({"identifier": "github-ocean", "installationId": "github-ocean"}),
    ]);
    let all = complete(
        &client,
        Reference::for_prompt("troubleshoot-integration"),
        "identifier",
        "",
    )
    .await
    .unwrap();
    assert_eq!(all.values, ["github-ocean", "jira-cloud", "pagerduty-prod"]);
    assert_eq!((all.total, all.has_more), (Some(3), Some(false)));
    let req = port.single_request();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/v1/integration/metadata")
    );
    assert_eq!(req.query, None);
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {STATIC_TOKEN}").as_str())
    );
    let pag = complete(
        &client,
        Reference::for_resource("port://integrations/{identifier}"),
        "identifier",
        "pag",
    )
    .await
    .unwrap();
    assert_eq!(pag.values, ["pagerduty-prod"]);
    assert_eq!((pag.total, pag.has_more), (Some(1), Some(false)));

    // At most 100, sorted, with the true total.
    let many: Vec<Value> = (0..150)
        .map(|i| json!({"identifier": format!("int-{i:03}"), "installationId": format!("int-{i:03}")}))
        .collect();
    port.port.set_integrations(many);
    let capped = complete(
        &client,
        Reference::for_prompt("fix-integration-mapping"),
        "identifier",
        "int-",
    )
    .await
    .unwrap();
    assert_eq!(capped.values.len(), 100);
    assert_eq!(capped.values[0], "int-000");
    assert_eq!(capped.values[99], "int-099");
    assert_eq!((capped.total, capped.has_more), (Some(150), Some(true)));

    // Port failing gives an empty list, not an error in the host's input box.
    port.port.script(ScriptedResponse::json(
        403,
        json!({"ok": false, "error": "forbidden", "message": "no"}),
    ));
    let failed = complete(
        &client,
        Reference::for_prompt("troubleshoot-integration"),
        "identifier",
        "",
    )
    .await
    .unwrap();
    assert!(failed.values.is_empty());
    // A value with a control character is not sent anywhere.
    port.port.clear_requests();
    let odd = complete(
        &client,
        Reference::for_prompt("troubleshoot-integration"),
        "identifier",
        "a\u{0}",
    )
    .await
    .unwrap();
    assert!(odd.values.is_empty());
    assert!(port.port.requests().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Both protocol eras, and the built binary

#[tokio::test]
async fn the_2026_era_gets_the_same_prompts_and_resources() {
    let port = FakePort::start().await;
    port.port.set_integrations(vec![jira_cloud()]);
    let client = connect_modern(&port.settings(static_token())).await;
    assert_eq!(client.list_all_prompts().await.unwrap().len(), 2);
    let text = prompt_text(
        &client,
        "troubleshoot-integration",
        json!({"identifier": "jira-cloud"}),
    )
    .await;
    assert!(text.starts_with("Troubleshoot the Port integration \"jira-cloud\""));
    let (_, _, body) = read(&client, "port://integrations/jira-cloud")
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"ok": true, "integration": jira_cloud()})
    );
    // From 2026-07-28 on, rmcp sends resource-not-found as invalid params (SEP-2164).
    let e = mcp_error(read(&client, "port://integrations/nope").await);
    assert_eq!(e.code, ErrorCode::INVALID_PARAMS);
    assert!(e.message.contains("was not found"), "{}", e.message);
    let types = complete(
        &client,
        Reference::for_resource("port://default-mappings/{type}"),
        "type",
        "pager",
    )
    .await
    .unwrap();
    assert_eq!(types.values, ["pagerduty"]);
}

/// The binary over stdio, started away from the source tree: the default mappings are in the
/// binary, not read from disk.
#[tokio::test]
async fn the_binary_serves_the_embedded_mappings_over_stdio() {
    use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
    let port = FakePort::start().await;
    port.port.set_integrations(vec![jira_cloud()]);
    let dir = std::env::temp_dir().join(format!("guide-stdio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_port-integrations-mcp"))
        .configure(|c| {
            c.env_clear()
                .kill_on_drop(true)
                .current_dir(&dir)
                .env("PORT_BASE_URL", &port.url)
                .env("PORT_API_KEY", STATIC_TOKEN)
                .args(["stdio", "--toolsets", "integrations,mapping"]);
        });
    let transport = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
        .0;
    let client = rmcp::ServiceExt::serve((), transport).await.unwrap();
    let (_, mime, text) = read(&client, "port://default-mappings/pagerduty")
        .await
        .unwrap();
    assert_eq!(mime.as_deref(), Some("application/yaml"));
    assert_eq!(text, corpus_file("pagerduty"));
    assert!(port.port.requests().is_empty());
    let (_, _, body) = read(&client, "port://integrations/jira-cloud")
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["integration"]["_id"],
        "integration_3b9d7c42"
    );
    let req = port.single_request();
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("GET", "/v1/integration/jira-cloud")
    );
    let text = prompt_text(
        &client,
        "fix-integration-mapping",
        json!({"identifier": "jira-cloud", "kind": "issue"}),
    )
    .await;
    assert!(text.contains(r#"resync-integration {"identifier":"jira-cloud"}"#));
    let _ = client.cancel().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn identifier_completion_uses_only_an_offered_route() {
    let port = FakePort::start().await;
    let selection = ToolSelection {
        tools: vec!["get-integration".into()],
        ..Default::default()
    };
    let client = connect_tools(
        server(&port, &selection).await,
        (),
        ClientLifecycleMode::Initialize,
    )
    .await;
    let none = complete(
        &client,
        Reference::for_prompt("troubleshoot-integration"),
        "identifier",
        "",
    )
    .await
    .unwrap();
    assert!(none.values.is_empty());
    assert!(
        port.port.requests().is_empty(),
        "no call to a route the server does not offer"
    );
    // The prompt itself is offered: get-integration is.
    assert_eq!(client.list_all_prompts().await.unwrap().len(), 2);
}
