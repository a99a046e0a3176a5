//! Modes: read-only (flag and per-request header), the tool allow-list, and the confirmation
//! asked of the person before a delete, in both protocol eras.

use std::sync::{Arc, Mutex};

use port_integrations_mcp::{config::ToolSelection, port::PortClient, tools::PortTools};
use rmcp::{
    ClientHandler, ErrorData, RoleClient,
    model::{
        CallToolRequestParams, ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult,
        ElicitationAction, Implementation,
    },
    service::{ClientLifecycleMode, RequestContext},
};
use serde_json::json;

use crate::common::*;

fn selection(read_only: bool, tools: &[&str]) -> ToolSelection {
    ToolSelection {
        read_only,
        tools: tools.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    }
}

async fn names<S: rmcp::Service<RoleClient>>(
    client: &rmcp::service::RunningService<RoleClient, S>,
) -> Vec<String> {
    let mut n: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    n.sort();
    n
}

#[tokio::test]
async fn read_only_mode_neither_lists_nor_runs_write_tools() {
    let port = FakePort::start().await;
    let tools = port.tools(&selection(true, &[]));
    let client = connect_tools(tools, (), ClientLifecycleMode::Initialize).await;
    assert_eq!(
        names(&client).await,
        [
            "get-all-integrations",
            "get-all-integrations-meta-data",
            "get-integration",
            "get-integration-s-event-logs"
        ]
    );
    for tool in [
        "update-integration",
        "update-integration-s-config",
        "delete-integration",
    ] {
        let err = client
            .call_tool(
                CallToolRequestParams::new(tool)
                    .with_arguments(args(json!({"identifier": "github-ocean"}))),
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("not found") || err.to_string().contains("-32602"),
            "{err}"
        );
    }
    assert!(port.port.requests().is_empty());
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r));
}

#[tokio::test]
async fn tool_allow_list() {
    let port = FakePort::start().await;
    let client_port = PortClient::new(&port.settings(static_token())).unwrap();
    let tools = PortTools::with_selection(
        client_port.clone(),
        &selection(false, &["get-integration", "update-integration"]),
    )
    .unwrap();
    let client = connect_tools(tools, (), ClientLifecycleMode::Initialize).await;
    assert_eq!(
        names(&client).await,
        ["get-integration", "update-integration"]
    );
    assert!(
        client
            .call_tool(
                CallToolRequestParams::new("delete-integration")
                    .with_arguments(args(json!({"identifier": "x"})))
            )
            .await
            .is_err()
    );

    // With read-only too, only the read tools of the list remain.
    let tools = PortTools::with_selection(
        client_port.clone(),
        &selection(true, &["get-integration", "update-integration"]),
    )
    .unwrap();
    assert_eq!(tools.tool_names(), ["get-integration"]);

    let err = PortTools::with_selection(
        client_port,
        &selection(false, &["get-integration", "resync-all"]),
    )
    .err()
    .unwrap();
    let msg = err.to_string();
    assert!(msg.contains("unknown tool `resync-all`"), "{msg}");
    assert!(msg.contains("get-integration-s-event-logs"), "{msg}");
}

/// A client whose person answers every confirmation the same way.
#[derive(Clone)]
struct Person {
    action: ElicitationAction,
    confirm: bool,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Person {
    fn new(action: ElicitationAction, confirm: bool) -> Self {
        Person {
            action,
            confirm,
            asked: Arc::default(),
        }
    }
    fn questions(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl ClientHandler for Person {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_elicitation().build(),
            Implementation::new("person", "1.0"),
        )
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::FormElicitationParams {
            message,
            requested_schema,
            ..
        } = request
        {
            let schema = serde_json::to_value(&requested_schema).unwrap();
            assert_eq!(
                schema["properties"]["confirm"]["type"], "boolean",
                "{schema}"
            );
            self.asked.lock().unwrap().push(message);
        }
        Ok(match self.action {
            ElicitationAction::Accept => ElicitResult::new(ElicitationAction::Accept)
                .with_content(json!({"confirm": self.confirm})),
            ref other => ElicitResult::new(other.clone()),
        })
    }
}

const QUESTION: &str = "Delete the Port integration \"Kubernetes (eu-west-1)\" (k8s-exporter-eu, type kubernetes)? \
Port removes its record and this cannot be undone; an exporter that is still running is not stopped.";

async fn delete_as(
    person: Person,
    mode: ClientLifecycleMode,
) -> (FakePort, rmcp::model::CallToolResult) {
    let port = FakePort::start().await;
    let tools = PortTools::new(PortClient::new(&port.settings(static_token())).unwrap());
    let client = connect_tools(tools, person, mode).await;
    let r = call(
        &client,
        "delete-integration",
        json!({"identifier": "k8s-exporter-eu"}),
    )
    .await;
    (port, r)
}

fn seen(port: &FakePort) -> Vec<String> {
    port.api_requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[tokio::test]
async fn delete_asks_first_and_deletes_on_yes_in_both_eras() {
    for mode in [ClientLifecycleMode::Initialize, modern()] {
        let person = Person::new(ElicitationAction::Accept, true);
        let (port, r) = delete_as(person.clone(), mode.clone()).await;
        assert!(!is_error(&r), "{mode:?}: {r:?}");
        assert_eq!(r.structured_content, Some(json!({"ok": true})));
        assert_eq!(person.questions(), [QUESTION], "{mode:?}");
        assert_eq!(
            seen(&port),
            [
                "GET /v1/integration/k8s-exporter-eu",
                "DELETE /v1/integration/k8s-exporter-eu"
            ],
            "{mode:?}"
        );
        assert!(port.port.integration("k8s-exporter-eu").is_none());
    }
}

#[tokio::test]
async fn delete_declined_or_cancelled_deletes_nothing_and_says_so() {
    for mode in [ClientLifecycleMode::Initialize, modern()] {
        for (action, confirm, word) in [
            (ElicitationAction::Decline, false, "declined"),
            (ElicitationAction::Cancel, false, "cancelled"),
            (ElicitationAction::Accept, false, "declined"),
        ] {
            let person = Person::new(action, confirm);
            let (port, r) = delete_as(person.clone(), mode.clone()).await;
            assert!(is_error(&r), "{mode:?} {word}");
            assert_eq!(
                text(&r),
                format!(
                    "Nothing was deleted: the user {word} the deletion of integration `k8s-exporter-eu`. \
                     Do not retry unless the user asks again."
                )
            );
            assert_eq!(person.questions().len(), 1);
            assert_eq!(
                seen(&port),
                ["GET /v1/integration/k8s-exporter-eu"],
                "{mode:?} {word}"
            );
            assert!(port.port.integration("k8s-exporter-eu").is_some());
        }
    }
}

#[tokio::test]
async fn delete_of_an_unknown_integration_asks_nothing() {
    let person = Person::new(ElicitationAction::Accept, true);
    let port = FakePort::start().await;
    let tools = PortTools::new(PortClient::new(&port.settings(static_token())).unwrap());
    let client = connect_tools(tools, person.clone(), ClientLifecycleMode::Initialize).await;
    let r = call(
        &client,
        "delete-integration",
        json!({"identifier": "ghost"}),
    )
    .await;
    assert!(is_error(&r));
    assert!(text(&r).starts_with("Port answered HTTP 404 (not_found)"));
    assert!(person.questions().is_empty());
    assert_eq!(seen(&port), ["GET /v1/integration/ghost"]);
}

#[tokio::test]
async fn a_client_that_cannot_elicit_deletes_directly() {
    // The destructive hint leaves the decision to the host's own approval prompt.
    for mode in [ClientLifecycleMode::Initialize, modern()] {
        let port = FakePort::start().await;
        let tools = PortTools::new(PortClient::new(&port.settings(static_token())).unwrap());
        let client = connect_tools(tools, (), mode).await;
        let r = call(
            &client,
            "delete-integration",
            json!({"identifier": "k8s-exporter-eu"}),
        )
        .await;
        assert!(!is_error(&r));
        assert_eq!(seen(&port), ["DELETE /v1/integration/k8s-exporter-eu"]);
    }
}
