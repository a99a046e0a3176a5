//! The whole troubleshooting loop, as an agent runs it, against the real binary in `--sandbox`
//! mode: jira-cloud's last resync failed on a broken mapping. Status shows the failure, the
//! ERROR logs and the kind examples explain it, a preview proves the fix, the config update
//! passes the jq check, `resync-integration` (POST /resync) ends `completed` with per-kind
//! counts, and the history shows both runs. Over stdio with a plain client, and over HTTP with
//! a client that supports MCP tasks, where the resync runs as a task.

use std::process::Stdio;

use rmcp::{
    RoleClient, Service, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig,
        GetTaskParams, Implementation, TaskPayload, TaskStatus,
    },
    service::RunningService,
    transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess},
};
use serde_json::{Value, json};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_port-integrations-mcp");
const FAILED_RUN: &str = "a41c7e92-8b3d-4f25-b6e0-7d9f1c2a3b48";

/// The per-kind row of a sync report.
fn kind<'a>(report: &'a Value, kind_identifier: &str) -> &'a Value {
    report["kinds"]
        .as_array()
        .and_then(|k| k.iter().find(|k| k["kindIdentifier"] == kind_identifier))
        .unwrap_or_else(|| panic!("no {kind_identifier} in {report:#}"))
}

async fn ok<S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    tool: &str,
    args: Value,
) -> Value {
    let r = call(client, tool, args.clone()).await;
    assert!(!is_error(&r), "{tool} {args}: {}", text(&r));
    r.structured_content
        .unwrap_or_else(|| panic!("{tool}: no structuredContent"))
}

/// Resyncs jira-cloud: as a task when `as_task`, else as a plain call. The tool's final result.
async fn resync<S: Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    as_task: bool,
) -> CallToolResult {
    let params = CallToolRequestParams::new("resync-integration").with_arguments(args(
        json!({"identifier": "jira-cloud", "timeoutSeconds": 40}),
    ));
    if !as_task {
        return client.call_tool(params).await.unwrap();
    }
    let CallToolResponse::Task(created) = client.call_tool_once(params).await.unwrap() else {
        panic!("a client with the tasks capability gets a task");
    };
    assert_eq!(created.task.status, TaskStatus::Working);
    let id = created.task.task_id;
    for _ in 0..400 {
        let info = client
            .peer()
            .get_task(GetTaskParams::new(id.clone()))
            .await
            .unwrap();
        if info.task.status().is_terminal() {
            let TaskPayload::Completed { result } = info.task.payload else {
                panic!("the resync task ended {:?}", info.task.payload);
            };
            return serde_json::from_value(Value::Object(result)).unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the resync task did not end");
}

async fn the_loop<S: Service<RoleClient>>(client: &RunningService<RoleClient, S>, as_task: bool) {
    // 1. Status: the last run failed, on `issue` only.
    let status = ok(
        client,
        "get-integration-sync-status",
        json!({"identifier": "jira-cloud"}),
    )
    .await;
    assert_eq!(status["resyncId"], FAILED_RUN);
    assert_eq!(status["resyncState"]["status"], "failed");
    let issue = kind(&status, "issue-1");
    assert_eq!(
        (&issue["state"], &issue["failed"], &issue["loaded"]),
        (&json!("failed"), &json!(4), &json!(0))
    );
    assert_eq!(kind(&status, "project-0")["state"], "completed");

    // 2. The ERROR logs of that run name the cause.
    let logs = ok(
        client,
        "get-integration-s-event-logs",
        json!({"identifier": "jira-cloud", "levels": ["ERROR"], "event_id": FAILED_RUN}),
    )
    .await;
    let lines = logs["data"]["logs"].as_array().unwrap();
    assert!(!lines.is_empty(), "{logs:#}");
    assert!(
        lines.iter().all(|l| l["level"] == "ERROR"),
        "only ERROR lines: {logs:#}"
    );
    let messages = logs.to_string();
    assert!(
        messages.contains("identifier is null") && messages.contains(".fields.key"),
        "{messages}"
    );

    // 3. The raw examples show the key is at `.key`.
    let examples = ok(
        client,
        "get-integration-kind-examples",
        json!({"identifier": "jira-cloud", "kind": "issue"}),
    )
    .await;
    let items = examples["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 4);
    let keys: Vec<&Value> = items.iter().map(|i| &i["key"]).collect();

    // 4. Preview: the current mapping gives no identifier, the fix gives the keys.
    let integration = ok(
        client,
        "get-integration",
        json!({"identifier": "jira-cloud"}),
    )
    .await;
    let mut config = integration["integration"]["config"].clone();
    let identifiers = |preview: &Value| -> Vec<Value> {
        preview["results"]
            .as_array()
            .unwrap_or_else(|| panic!("{preview:#}"))
            .iter()
            .map(|r| r["entities"][0]["identifier"].clone())
            .collect()
    };
    let before = ok(
        client,
        "preview-integration-mapping",
        json!({"config": config, "kind": "issue", "items": items}),
    )
    .await;
    assert!(
        identifiers(&before).iter().all(Value::is_null),
        "{before:#}"
    );
    config["resources"][1]["port"]["entity"]["mappings"]["identifier"] = json!(".key");
    let after = ok(
        client,
        "preview-integration-mapping",
        json!({"config": config, "kind": "issue", "items": items}),
    )
    .await;
    let fixed: Vec<Value> = identifiers(&after);
    assert_eq!(fixed.iter().collect::<Vec<_>>(), keys);

    // 5. The checked config update.
    let updated = ok(
        client,
        "update-integration-s-config",
        json!({"identifier": "jira-cloud", "body": {"config": config}}),
    )
    .await;
    assert_eq!(
        updated["integration"]["config"]["resources"][1]["port"]["entity"]["mappings"]["identifier"],
        ".key"
    );

    // 6. Resync (POST /resync), followed to its end, with per-kind counts.
    let r = resync(client, as_task).await;
    assert!(!is_error(&r), "{}", text(&r));
    let report = r.structured_content.clone().unwrap();
    assert_eq!(report["status"], "completed", "{report:#}");
    let issue = kind(&report, "issue-1");
    assert_eq!(
        (
            &issue["state"],
            &issue["raw_extracted"],
            &issue["loaded"],
            &issue["failed"]
        ),
        (&json!("completed"), &json!(4), &json!(4), &json!(0))
    );
    assert!(text(&r).contains("issue (issue-1"), "{}", text(&r));

    // 7. The history shows the new completed run above the failed one.
    let history = ok(
        client,
        "get-integration-sync-history",
        json!({"identifier": "jira-cloud"}),
    )
    .await;
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs[0]["resyncId"], report["resyncId"]);
    assert_eq!(runs[0]["state"], "completed");
    let failed_at = runs
        .iter()
        .position(|r| r["resyncId"] == FAILED_RUN)
        .unwrap();
    assert_eq!(runs[failed_at]["state"], "failed");
    assert!(failed_at > 0);

    // And status now agrees.
    let status = ok(
        client,
        "get-integration-sync-status",
        json!({"identifier": "jira-cloud"}),
    )
    .await;
    assert_eq!(status["resyncState"]["status"], "completed");
    assert_eq!(kind(&status, "issue-1")["loaded"], 4);
}

fn sandbox_command(args: &[&str]) -> tokio::process::Command {
    tokio::process::Command::new(BIN).configure(|cmd| {
        // A failing test must not leave servers behind, nor see the caller's Port settings.
        cmd.env_clear()
            .env("PORT_TOOLSETS", "integrations,mapping,sync")
            .args(args)
            .kill_on_drop(true);
    })
}

#[tokio::test]
async fn the_whole_loop_in_sandbox_mode_over_stdio() {
    let (transport, _) = TokioChildProcess::builder(sandbox_command(&["stdio", "--sandbox"]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = ().serve(transport).await.unwrap();
    the_loop(&client, false).await;
}

#[tokio::test]
async fn the_whole_loop_in_sandbox_mode_over_http_with_the_resync_as_a_task() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _server = sandbox_command(&["http", "--sandbox", "--listen", &listen])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_healthy(port).await;
    let tasks = ClientConfig::new(
        ClientCapabilities::builder().enable_tasks().build(),
        Implementation::new("troubleshooter", "1.0"),
    );
    let client = tasks
        .serve(StreamableHttpClientTransport::from_uri(format!(
            "http://{listen}/mcp"
        )))
        .await
        .unwrap();
    assert!(client.peer_info().unwrap().capabilities.supports_tasks());
    the_loop(&client, true).await;
}
