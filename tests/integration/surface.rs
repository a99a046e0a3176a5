//! The public tool surface: exactly seven tools by default (and five in the `sync` toolset),
//! schemas every host accepts, and snapshots that make any change to what hosts see a
//! deliberate one (`cargo insta review`).

use rmcp::model::Tool;
use serde_json::{Value, json};

use crate::common::*;

async fn tools() -> Vec<Tool> {
    let (_port, client) = setup().await;
    let mut tools = client.list_all_tools().await.unwrap();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    tools
}

#[tokio::test]
async fn tool_surface_snapshot() {
    let surface: Vec<Value> = tools()
        .await
        .into_iter()
        .map(|t| {
            json!({
                "name": t.name,
                "title": t.title,
                "description": t.description,
                "inputSchema": Value::Object(t.input_schema.as_ref().clone()),
                "annotations": t.annotations,
            })
        })
        .collect();
    insta::assert_json_snapshot!("tool_surface", surface);
}

/// The tools of the `sync` toolset, as a host lists them.
async fn sync_tools() -> Vec<Tool> {
    use port_integrations_mcp::{
        config::{ToolSelection, Toolset},
        port::PortClient,
        tools::PortTools,
    };
    let port = FakePort::start().await;
    let tools = PortTools::with_selection(
        PortClient::new(&port.settings(static_token())).unwrap(),
        &ToolSelection {
            toolsets: vec![Toolset::Sync],
            ..Default::default()
        },
    )
    .unwrap();
    let client = connect_tools(tools, (), rmcp::service::ClientLifecycleMode::Initialize).await;
    let mut tools = client.list_all_tools().await.unwrap();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    tools
}

#[tokio::test]
async fn sync_tool_surface_snapshot() {
    let tools = sync_tools().await;
    let expected = [
        // name, readOnly, destructive, idempotent
        ("get-integration-kind-examples", true, false, true),
        ("get-integration-sync-history", true, false, true),
        ("get-integration-sync-status", true, false, true),
        ("restore-integration-mapping", false, false, false),
        ("resync-integration", false, false, false),
    ];
    assert_eq!(tools.len(), expected.len());
    for (tool, (name, read_only, destructive, idempotent)) in tools.iter().zip(expected) {
        assert_eq!(tool.name, name);
        let a = tool.annotations.as_ref().expect("annotations");
        assert_eq!(a.read_only_hint, Some(read_only), "{name}");
        assert_eq!(a.destructive_hint, Some(destructive), "{name}");
        assert_eq!(a.idempotent_hint, Some(idempotent), "{name}");
        assert_eq!(a.open_world_hint, Some(true), "{name}");
        assert_eq!(tool.title.as_deref(), a.title.as_deref(), "{name}");
        assert!(
            tool.description.as_deref().is_some_and(|d| d.len() > 80),
            "{name}"
        );
        let schema = Value::Object(tool.input_schema.as_ref().clone());
        let mut found = Vec::new();
        host_unfriendly("", &schema, &mut found);
        assert!(found.is_empty(), "{name}: {found:#?}");
    }
    let surface: Vec<Value> = tools
        .into_iter()
        .map(|t| {
            json!({
                "name": t.name,
                "title": t.title,
                "description": t.description,
                "inputSchema": Value::Object(t.input_schema.as_ref().clone()),
                "annotations": t.annotations,
            })
        })
        .collect();
    insta::assert_json_snapshot!("sync_tool_surface", surface);
}

#[tokio::test]
async fn names_and_hints_are_exactly_as_specified() {
    let expected = [
        // name, readOnly, destructive, idempotent
        ("delete-integration", false, true, true),
        ("get-all-integrations", true, false, true),
        ("get-all-integrations-meta-data", true, false, true),
        ("get-integration", true, false, true),
        ("get-integration-s-event-logs", true, false, true),
        ("update-integration", false, false, true),
        ("update-integration-s-config", false, false, true),
    ];
    let tools = tools().await;
    assert_eq!(tools.len(), expected.len());
    for (tool, (name, read_only, destructive, idempotent)) in tools.iter().zip(expected) {
        assert_eq!(tool.name, name);
        let a = tool.annotations.as_ref().expect("annotations");
        assert_eq!(a.read_only_hint, Some(read_only), "{name}");
        assert_eq!(a.destructive_hint, Some(destructive), "{name}");
        assert_eq!(a.idempotent_hint, Some(idempotent), "{name}");
        assert_eq!(a.open_world_hint, Some(true), "{name}");
        assert!(a.title.as_deref().is_some_and(|t| !t.is_empty()), "{name}");
        assert_eq!(tool.title.as_deref(), a.title.as_deref(), "{name}");
        assert!(
            tool.description.as_deref().is_some_and(|d| d.len() > 80),
            "{name} needs a description a model can act on"
        );
    }
}

#[tokio::test]
async fn descriptions_state_the_side_effects() {
    let tools = tools().await;
    let desc = |name: &str| -> String {
        tools
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.description.clone())
            .unwrap()
            .to_string()
    };
    assert!(desc("update-integration").contains("empty body"));
    // Truthful since Ocean 0.44.1: an empty PATCH may start nothing.
    assert!(desc("update-integration").contains("Ocean 0.44.1 and later"));
    assert!(
        desc("update-integration")
            .contains("resync-integration (sync toolset) is the reliable way")
    );
    assert!(!desc("update-integration").contains("triggers a resync"));
    assert!(desc("update-integration-s-config").contains("triggers a resync"));
    assert!(desc("update-integration-s-config").contains("get-integration-sync-status"));
    assert!(desc("delete-integration").contains("does NOT stop an exporter"));
    for name in [
        "get-all-integrations",
        "get-integration",
        "get-integration-s-event-logs",
    ] {
        assert!(desc(name).contains("moderator or admin"), "{name}");
    }
}

/// Keywords or shapes that some hosts reject (Cursor, Gemini, VS Code, strict gateways).
fn host_unfriendly(path: &str, value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(obj) => {
            for (k, v) in obj {
                if [
                    "$ref",
                    "$defs",
                    "definitions",
                    "oneOf",
                    "anyOf",
                    "allOf",
                    "$schema",
                    "not",
                ]
                .contains(&k.as_str())
                    && !path.ends_with("/properties")
                {
                    found.push(format!("{path}/{k}"));
                }
                if k == "type" && !v.is_string() && !path.ends_with("/properties") {
                    found.push(format!("{path}/type = {v}"));
                }
                // A bare `true`/`false` where a schema belongs (schemars writes `true` for any
                // JSON value): the MCP Inspector's --strict check rejects it.
                if ["items", "additionalItems", "contains", "propertyNames"].contains(&k.as_str())
                    && v.is_boolean()
                    && !path.ends_with("/properties")
                {
                    found.push(format!("{path}/{k} = {v}"));
                }
                if k == "properties"
                    && !path.ends_with("/properties")
                    && let Some(props) = v.as_object()
                {
                    for (name, schema) in props.iter().filter(|(_, s)| s.is_boolean()) {
                        found.push(format!("{path}/properties/{name} = {schema}"));
                    }
                }
                if k == "enum"
                    && v.as_array()
                        .is_some_and(|a| a.iter().any(|e| !e.is_string()))
                {
                    found.push(format!("{path}/enum has non-string values"));
                }
                host_unfriendly(&format!("{path}/{k}"), v, found);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                host_unfriendly(&format!("{path}/{i}"), v, found);
            }
        }
        _ => {}
    }
}

/// Every tool of every toolset, as a host lists them.
async fn all_tools() -> Vec<Tool> {
    use port_integrations_mcp::{
        config::{ToolSelection, Toolset},
        port::PortClient,
        tools::PortTools,
    };
    let port = FakePort::start().await;
    let tools = PortTools::with_selection(
        PortClient::new(&port.settings(static_token())).unwrap(),
        &ToolSelection {
            toolsets: vec![Toolset::Integrations, Toolset::Mapping, Toolset::Sync],
            ..Default::default()
        },
    )
    .unwrap();
    let client = connect_tools(tools, (), rmcp::service::ClientLifecycleMode::Initialize).await;
    client.list_all_tools().await.unwrap()
}

#[tokio::test]
async fn schemas_work_in_every_host() {
    let tools = all_tools().await;
    assert_eq!(tools.len(), 13, "every toolset's tools are linted");
    for tool in tools {
        let name = tool.name.to_string();
        assert!(
            !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{name} does not match ^[a-zA-Z0-9_-]{{1,64}}$"
        );
        let schema = Value::Object(tool.input_schema.as_ref().clone());
        assert_eq!(schema["type"], "object", "{name}");
        assert!(schema["properties"].is_object(), "{name}");
        let mut found = Vec::new();
        host_unfriendly("", &schema, &mut found);
        assert!(found.is_empty(), "{name}: {found:#?}");
    }
}

#[test]
fn the_lint_catches_what_it_should() {
    let bad = json!({"type": "object", "properties": {
        "a": {"type": ["string", "null"]},
        "b": {"anyOf": [{"type": "string"}]},
        "c": {"$ref": "#/$defs/C"},
        "d": {"enum": ["x", null]},
        "oneOf": {"type": "string"},
        "e": {"type": "array", "items": true},
        "f": true
    }});
    let mut found = Vec::new();
    host_unfriendly("", &bad, &mut found);
    assert_eq!(found.len(), 6, "{found:#?}");
}

#[tokio::test]
async fn both_protocol_eras_list_the_same_tools() {
    let port = FakePort::start().await;
    let legacy = connect(&port.settings(static_token())).await;
    let modern = connect_modern(&port.settings(static_token())).await;
    let names = |tools: Vec<Tool>| {
        let mut n: Vec<String> = tools.into_iter().map(|t| t.name.to_string()).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(legacy.list_all_tools().await.unwrap()),
        names(modern.list_all_tools().await.unwrap())
    );
    assert!(
        port.port.requests().is_empty(),
        "listing tools never calls Port"
    );
}
