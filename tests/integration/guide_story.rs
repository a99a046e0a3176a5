//! The sandbox's jira-cloud story driven only by what fix-integration-mapping tells the agent to
//! call: the prompt's steps are executable as written, with every toolset on.

use std::collections::HashMap;

use port_integrations_mcp::config::Toolset;
use rmcp::service::ClientLifecycleMode;
use serde_json::{Value, json};

use crate::{
    common::*,
    guide::{prompt_text, read, toolsets},
};

/// Every `tool {json}` call in a prompt's text, in order.
fn calls_in(text: &str) -> Vec<(String, Value)> {
    let mut calls = Vec::new();
    for (at, _) in text.match_indices(" {\"") {
        let name = text[..at]
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap()
            .to_string();
        let mut stream = serde_json::Deserializer::from_str(&text[at + 1..]).into_iter::<Value>();
        if let Some(Ok(arguments)) = stream.next() {
            calls.push((name, arguments));
        }
    }
    calls
}

/// Fills a prompt's placeholders with what the earlier steps returned.
fn fill(value: &Value, known: &HashMap<&str, Value>) -> Value {
    match value {
        Value::String(s) if s.starts_with('<') && s.ends_with('>') => known
            .get(s.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("no value for the placeholder {s}")),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), fill(v, known))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| fill(v, known)).collect()),
        other => other.clone(),
    }
}

/// The sandbox's jira-cloud story, driven only by the calls fix-integration-mapping names: each
/// succeeds, and the last ones show kind `issue` loaded where it had failed.
#[tokio::test]
async fn following_fix_integration_mapping_fixes_jira_cloud() {
    let port = FakePort::with_mapping().await;
    let tools = port
        .tools(&toolsets(&[
            Toolset::Integrations,
            Toolset::Mapping,
            Toolset::Sync,
        ]))
        .with_mapping_limits(mapping_limits());
    let client = connect_tools(tools, (), ClientLifecycleMode::Initialize).await;
    let text = prompt_text(
        &client,
        "fix-integration-mapping",
        json!({"identifier": "jira-cloud", "kind": "issue"}),
    )
    .await;
    let calls = calls_in(&text);
    let names: Vec<&str> = calls.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "get-integration",
            "get-integration-s-event-logs",
            "get-integration-kind-examples",
            "preview-integration-mapping",
            "update-integration-s-config",
            "resync-integration",
            "get-integration-sync-status",
            "get-integration-sync-history",
            "restore-integration-mapping",
        ]
    );
    assert!(port.port.requests().is_empty(), "rendering calls nobody");

    let mut known: HashMap<&str, Value> = HashMap::new();
    for (name, arguments) in &calls[..calls.len() - 1] {
        if name == "preview-integration-mapping" {
            // The agent's part: the fix the logs and examples point to.
            let mut config = known["<current config>"].clone();
            for resource in config["resources"].as_array_mut().unwrap() {
                if resource["kind"] == "issue" {
                    resource["port"]["entity"]["mappings"]["identifier"] = json!(".key");
                }
            }
            known.insert("<the fixed config>", config.clone());
            known.insert("<the whole fixed config>", config);
        }
        if name == "resync-integration" {
            crate::resync::settle_when_requested(&port, "jira-cloud");
        }
        let r = call(&client, name, fill(arguments, &known)).await;
        assert!(!is_error(&r), "{name}: {r:?}");
        let s = r.structured_content.clone().unwrap_or_default();
        match name.as_str() {
            "get-integration" => {
                let integration = &s["integration"];
                assert_eq!(integration["installationAppType"], "jira");
                known.insert("<current config>", integration["config"].clone());
                // Step 2's resource: Port's default for the type has an `issue` resource.
                let (_, _, yaml) = read(&client, "port://default-mappings/jira").await.unwrap();
                assert!(yaml.contains("kind: issue"), "{yaml}");
            }
            "get-integration-s-event-logs" => {
                assert!(text_of(&r).contains("null"), "{}", text_of(&r));
            }
            "get-integration-kind-examples" => {
                known.insert("<the raw items>", s["items"].clone());
            }
            "get-integration-sync-status" => {
                let issue = s["kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|k| k["kind"] == "issue")
                    .unwrap()
                    .clone();
                assert_eq!(issue["state"], "completed", "{issue}");
                assert_eq!(issue["failed"], 0);
                assert!(issue["loaded"].as_u64().unwrap() > 0, "{issue}");
            }
            "get-integration-sync-history" => {
                let states: Vec<&str> = s["runs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["state"].as_str().unwrap())
                    .collect();
                // The new run first; the failed one below it (with, between them, the run
                // the config update started, which the resync aborted).
                assert_eq!(states[0], "completed", "{s}");
                assert!(states[1..].contains(&"failed"), "{s}");
            }
            _ => {}
        }
    }
}

fn text_of(result: &rmcp::model::CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}
