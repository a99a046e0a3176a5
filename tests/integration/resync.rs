//! resync-integration (in the `mapping` and the `sync` toolset): the baseline read, Port's
//! resync request, the follow to its end (completed, failed, still running) with the progress a
//! real client receives, and the run's per-kind counts.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use port_integrations_mcp::{
    config::{ToolSelection, Toolset},
    sandbox::{Sandbox, ScriptedResponse},
};
use rmcp::{
    ClientHandler, RoleClient,
    model::{
        CallToolRequestParams, NumberOrString, ProgressNotificationParam, ProgressToken,
        RequestMetaObject, RequestParamsMeta,
    },
    service::{ClientLifecycleMode, NotificationContext, RunningService},
};
use serde_json::{Value, json};

use crate::common::*;

#[derive(Clone, Default)]
pub struct Watcher {
    progress: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Watcher {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.progress
            .lock()
            .unwrap()
            .push(params.message.unwrap_or_default());
    }
}

pub fn selection(sets: &[Toolset]) -> ToolSelection {
    ToolSelection {
        toolsets: sets.to_vec(),
        ..Default::default()
    }
}

pub async fn start_with(
    selection: &ToolSelection,
) -> (FakePort, RunningService<RoleClient, Watcher>, Watcher) {
    let port = FakePort::start().await;
    let tools = port.tools(selection);
    let watcher = Watcher::default();
    let client = connect_tools(tools, watcher.clone(), ClientLifecycleMode::Initialize).await;
    (port, client, watcher)
}

async fn start(sets: &[Toolset]) -> (FakePort, RunningService<RoleClient, Watcher>, Watcher) {
    start_with(&selection(sets)).await
}

fn with_progress(args: serde_json::Value) -> CallToolRequestParams {
    let mut params =
        CallToolRequestParams::new("resync-integration").with_arguments(crate::common::args(args));
    params.set_meta(RequestMetaObject::with_progress_token(ProgressToken(
        NumberOrString::Number(7),
    )));
    params
}

/// Every API request as `METHOD /path?query`.
pub fn seen(port: &FakePort) -> Vec<String> {
    port.api_requests()
        .iter()
        .map(|r| {
            format!(
                "{} {}{}",
                r.method,
                r.path,
                r.query
                    .as_ref()
                    .map(|q| format!("?{q}"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// Port accepts the next resync request of `identifier` (whatever the fake itself does).
pub fn accept_resync(port: &Sandbox, identifier: &str) {
    port.script(
        ScriptedResponse::json(200, json!({"ok": true}))
            .on_path(&format!("/v1/integration/{identifier}/resync")),
    );
}

/// A `syncMetrics` answer for one run: `(kind, state, extracted, loaded, failed)` per kind,
/// created at `created_at`.
pub fn metrics_body(
    resync_id: &str,
    created_at: &str,
    kinds: &[(&str, &str, f64, f64, f64)],
) -> Value {
    let data: Vec<Value> = kinds
        .iter()
        .enumerate()
        .map(|(i, (kind, state, extracted, loaded, failed))| {
            json!({
                "integrationType": "github-ocean", "integrationIdentifier": "github-ocean",
                "integrationVersion": "1.2.0", "oceanVersion": "0.48.12",
                "kindIdentifier": format!("{kind}-{i}"), "kind": kind, "kindIndex": i,
                "eventId": resync_id, "syncState": state, "blueprint": format!("bp_{kind}"),
                "metrics": {"phase": {
                    "resync": {"duration_seconds": 8.44, "success": if *state == "completed" { 1 } else { 0 }},
                    "extract": {"object_count_type": {"raw_extracted": {"object_count": extracted}}},
                    "transform": {"object_count_type": {"transformed": {"object_count": extracted},
                        "filtered_out": {"object_count": 0.0}, "failed": {"object_count": 0.0}}},
                    "load": {"object_count_type": {"loaded": {"object_count": loaded},
                        "failed": {"object_count": failed}, "skipped": {"object_count": 0.0}}}
                }},
                "createdAt": created_at, "updatedAt": created_at
            })
        })
        .collect();
    json!({"ok": true, "count": data.len(), "data": data})
}

/// Now, as Port writes times.
pub fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The answer of the next `syncMetrics` request for the integration with this `_id`.
pub fn script_metrics(port: &Sandbox, internal_id: &str, body: Value) {
    port.script(
        ScriptedResponse::json(200, body)
            .on_path(&format!("/v1/integration/{internal_id}/syncMetrics")),
    );
}

#[tokio::test]
async fn toolsets_choose_the_surface() {
    let port = FakePort::start().await;
    let names = |selection: ToolSelection| {
        let mut n = port.tools(&selection).tool_names();
        n.sort();
        n
    };
    assert_eq!(
        names(selection(&[])).len(),
        7,
        "the default is the seven tools alone"
    );
    assert!(!names(selection(&[])).contains(&"resync-integration".to_string()));
    assert_eq!(
        names(selection(&[Toolset::Integrations, Toolset::Mapping])).len(),
        9
    );
    assert_eq!(
        names(selection(&[Toolset::Mapping])),
        ["preview-integration-mapping", "resync-integration"]
    );
    assert_eq!(
        names(selection(&[Toolset::Sync])),
        [
            "get-integration-kind-examples",
            "get-integration-sync-history",
            "get-integration-sync-status",
            "restore-integration-mapping",
            "resync-integration"
        ]
    );
    assert_eq!(
        names(selection(&[
            Toolset::Integrations,
            Toolset::Mapping,
            Toolset::Sync
        ]))
        .len(),
        13,
        "resync-integration once, though two toolsets offer it"
    );
    assert_eq!(
        names(ToolSelection {
            read_only: true,
            ..selection(&[Toolset::Mapping])
        }),
        ["preview-integration-mapping"],
        "resync-integration writes; the preview only reads"
    );
    assert_eq!(
        names(ToolSelection {
            read_only: true,
            ..selection(&[Toolset::Sync])
        }),
        [
            "get-integration-kind-examples",
            "get-integration-sync-history",
            "get-integration-sync-status"
        ],
        "resync and restore write"
    );
}

#[tokio::test]
async fn a_completed_resync_with_progress_and_counts() {
    let (port, client, watcher) = start(&[Toolset::Integrations, Toolset::Sync]).await;
    accept_resync(&port.port, "github-ocean");
    let finisher = port.port.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        script_metrics(
            &finisher,
            "integration_5f1c2a9e",
            metrics_body(
                "run-42",
                &now(),
                &[
                    ("repository", "completed", 12.0, 12.0, 0.0),
                    ("pull-request", "completed", 3.0, 2.0, 1.0),
                ],
            ),
        );
        finisher.finish_resync("github-ocean", "completed");
    });
    let r = client
        .call_tool(with_progress(
            json!({"identifier": "github-ocean", "timeoutSeconds": 20}),
        ))
        .await
        .unwrap();
    assert!(!is_error(&r), "{r:?}");
    let t = text(&r);
    assert!(
        t.starts_with(
            "The resync of `github-ocean` finished: status completed.\nPer kind (resyncId run-42):\n\
             - repository (repository-0, blueprint bp_repository): completed; extracted 12, \
             transformed 12, filtered out 0, loaded 12, failed 0, skipped 0, deleted 0; 8.4 s; success\n\
             - pull-request (pull-request-1, blueprint bp_pull-request): completed; extracted 3, \
             transformed 3, filtered out 0, loaded 2, failed 1 (load 1), skipped 0, deleted 0; 8.4 s; \
             success\n\
             ERROR-level event logs of the run: "
        ),
        "{t}"
    );
    let s = r.structured_content.unwrap();
    assert_eq!(s["status"], "completed");
    assert_eq!(s["resyncState"]["status"], "completed");
    assert_eq!(s["countsAvailable"], true);
    assert_eq!(s["resyncId"], "run-42");
    assert_eq!(
        s["kinds"][1],
        json!({
            "kind": "pull-request", "kindIdentifier": "pull-request-1",
            "blueprint": "bp_pull-request", "state": "completed",
            "raw_extracted": 3, "transformed": 3, "filtered_out": 0, "loaded": 2, "failed": 1,
            "skipped": 0, "deleted": 0, "duration_seconds": 8.44, "success": true,
            "phases": {
                "extract": {"raw_extracted": 3},
                "transform": {"transformed": 3, "filtered_out": 0, "failed": 0},
                "load": {"loaded": 2, "failed": 1, "skipped": 0}
            }
        })
    );
    assert_eq!(s["errors"]["ok"], true);
    let requests = seen(&port);
    assert_eq!(requests[0], "GET /v1/integration/github-ocean");
    assert_eq!(requests[1], "POST /v1/integration/github-ocean/resync");
    let post = &port.api_requests()[1];
    assert_eq!(post.body, "{}");
    assert_eq!(post.header("content-type"), Some("application/json"));
    let n = requests.len();
    assert!(
        requests[2..n - 2]
            .iter()
            .all(|r| r == "GET /v1/integration/github-ocean"),
        "{requests:?}"
    );
    assert_eq!(
        requests[n - 2],
        "GET /v1/integration/integration_5f1c2a9e/syncMetrics"
    );
    assert_eq!(
        requests[n - 1],
        "GET /v1/integration/github-ocean/logs?levels=ERROR&event_id=run-42&limit=50",
        "the run's own ERROR logs"
    );
    let progress = watcher.progress.lock().unwrap().clone();
    assert!(!progress.is_empty(), "no progress notification arrived");
    assert!(
        progress
            .iter()
            .all(|m| m == "resync of github-ocean: completed"
                || m == "resync of github-ocean: running"),
        "{progress:?}"
    );
}

/// Ends the sandbox run a resync-integration call starts, once Port has its request, with the
/// outcome of the mapping (the sandbox applies it to the kind examples).
pub fn settle_when_requested(port: &FakePort, identifier: &str) {
    let sandbox = port.port.clone();
    let post = format!("/v1/integration/{identifier}/resync");
    let identifier = identifier.to_string();
    tokio::spawn(async move {
        for _ in 0..500 {
            if sandbox
                .api_requests()
                .iter()
                .any(|r| r.method == "POST" && r.path == post)
            {
                sandbox.settle_resync(&identifier).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

#[tokio::test]
async fn a_failed_resync_is_an_error_with_its_counts_and_errors() {
    // The sandbox's jira-cloud maps issues with `.fields.key`, which is null in Jira's raw issues.
    let port = FakePort::with_mapping().await;
    let tools = port.tools(&selection(&[Toolset::Sync]));
    let client = connect_tools(tools, (), ClientLifecycleMode::Initialize).await;
    settle_when_requested(&port, "jira-cloud");
    let r = call(
        &client,
        "resync-integration",
        json!({"identifier": "jira-cloud", "timeoutSeconds": 30}),
    )
    .await;
    assert!(is_error(&r), "{r:?}");
    let run = port.port.latest_event_id("jira-cloud").unwrap();
    let t = text(&r);
    assert!(
        t.starts_with(&format!(
            "The resync of `jira-cloud` ended: status failed.\nPer kind (resyncId {run}):\n"
        )),
        "{t}"
    );
    let s = r.structured_content.unwrap();
    let kind = |id: &str| {
        s["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kindIdentifier"] == id)
            .unwrap_or_else(|| panic!("no {id}: {s:#}"))
            .clone()
    };
    let issue = kind("issue-1");
    assert_eq!(
        (
            &issue["state"],
            &issue["raw_extracted"],
            &issue["transformed"],
            &issue["failed"],
            &issue["loaded"]
        ),
        (&json!("failed"), &json!(4), &json!(0), &json!(4), &json!(0))
    );
    let project = kind("project-0");
    assert_eq!(
        (&project["state"], &project["loaded"]),
        (&json!("completed"), &json!(2))
    );
    assert!(
        t.contains(
            "- issue (issue-1, blueprint jiraIssue): failed; extracted 4, transformed 0, filtered \
         out 0, loaded 0, failed 4 (transform 4), skipped 0, deleted 0"
        ),
        "{t}"
    );
    assert!(
        t.contains(
            "\n- Item ex_jira_issue_1 of kind `issue` (resource 1) was not loaded: identifier is \
             null (`.fields.key`: gave null: Port's framework skips this entity)"
        ),
        "the text quotes the run's ERROR logs: {t}"
    );
    assert!(t.contains("A kind with failed > 0 and loaded 0"), "{t}");
    let logs = s["errors"]["data"]["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 5, "four items and the summary: {logs:#?}");
    assert!(logs.iter().all(|l| l["level"] == "ERROR"));
    let requests = seen(&port);
    assert_eq!(
        requests.last().unwrap(),
        &format!("GET /v1/integration/jira-cloud/logs?levels=ERROR&event_id={run}&limit=50")
    );
    assert!(requests.contains(&"GET /v1/integration/integration_3b9d7c42/syncMetrics".to_string()));
}

#[tokio::test]
async fn metrics_of_an_earlier_run_are_not_reported_as_this_ones() {
    let (port, client, _) = start(&[Toolset::Sync]).await;
    accept_resync(&port.port, "github-ocean");
    // Created before the baseline (the seed's last run ended 2026-11-23T08:03:12).
    script_metrics(
        &port.port,
        "integration_5f1c2a9e",
        metrics_body(
            "old-run",
            "2026-11-23T08:00:00.000Z",
            &[("repository", "completed", 1.0, 1.0, 0.0)],
        ),
    );
    let finisher = port.port.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        finisher.finish_resync("github-ocean", "completed");
    });
    let r = call(
        &client,
        "resync-integration",
        json!({"identifier": "github-ocean", "timeoutSeconds": 20}),
    )
    .await;
    assert!(!is_error(&r));
    assert!(
        text(&r).contains(
            "Per-kind counts: not available. Port's latest sync metrics (resyncId old-run) are \
             from an earlier run"
        ),
        "{}",
        text(&r)
    );
    let s = r.structured_content.unwrap();
    assert_eq!(s["countsAvailable"], false);
    assert_eq!(s["kinds"], json!([]));
}

#[tokio::test]
async fn a_long_resync_is_reported_still_running() {
    let (port, client, _) = start(&[Toolset::Mapping]).await;
    accept_resync(&port.port, "k8s-exporter-eu");
    let r = call(
        &client,
        "resync-integration",
        json!({"identifier": "k8s-exporter-eu", "timeoutSeconds": 1}),
    )
    .await;
    assert!(!is_error(&r));
    assert!(
        text(&r).starts_with("The resync of `k8s-exporter-eu` is still running after 1 s"),
        "{}",
        text(&r)
    );
    assert_eq!(r.structured_content.unwrap()["status"], "still running");
    assert_eq!(
        seen(&port)[..2],
        [
            "GET /v1/integration/k8s-exporter-eu",
            "POST /v1/integration/k8s-exporter-eu/resync"
        ]
    );
}

#[tokio::test]
async fn a_previous_runs_state_is_not_taken_for_this_one() {
    // github-ocean's last run "completed" at 08:03 (seed); the exporter has not picked our
    // request up yet, so the state still shows that run.
    let (port, client, _) = start(&[Toolset::Mapping]).await;
    accept_resync(&port.port, "github-ocean");
    let r = call(
        &client,
        "resync-integration",
        json!({"identifier": "github-ocean", "timeoutSeconds": 1}),
    )
    .await;
    assert_eq!(
        r.structured_content.unwrap()["status"],
        "still running",
        "the old run was taken for ours"
    );
    assert_eq!(seen(&port)[1], "POST /v1/integration/github-ocean/resync");
}

#[tokio::test]
async fn an_unknown_integration_or_a_refused_request_sends_no_more() {
    let (port, client, _) = start(&[Toolset::Sync]).await;
    let r = call(
        &client,
        "resync-integration",
        json!({"identifier": "ghost", "timeoutSeconds": 5}),
    )
    .await;
    assert!(is_error(&r));
    assert!(
        text(&r).starts_with("Port answered HTTP 404 (not_found)"),
        "{}",
        text(&r)
    );
    assert_eq!(seen(&port), ["GET /v1/integration/ghost"]);
    port.port.clear_requests();
    port.port.script(
        ScriptedResponse::json(
            403,
            json!({"ok": false, "error": "forbidden", "message": "no"}),
        )
        .with_trace_id("trace-403")
        .on_path("/v1/integration/github-ocean/resync"),
    );
    let r = call(
        &client,
        "resync-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(is_error(&r));
    assert!(text(&r).starts_with("Port answered HTTP 403 (forbidden): no [x-trace-id: trace-403]"));
    assert_eq!(
        seen(&port),
        [
            "GET /v1/integration/github-ocean",
            "POST /v1/integration/github-ocean/resync"
        ],
        "a refused POST is not retried and nothing is followed"
    );
}

#[tokio::test]
async fn bad_arguments_never_reach_port() {
    let (port, client, _) = start(&[Toolset::Sync]).await;
    for (args, argument) in [
        (json!({}), "identifier"),
        (json!({"identifier": ""}), "identifier"),
        (json!({"identifier": "a\nb"}), "identifier"),
        (json!({"identifier": ".."}), "identifier"),
        (
            json!({"identifier": "gh", "timeoutSeconds": 0}),
            "timeoutSeconds",
        ),
        (
            json!({"identifier": "gh", "timeoutSeconds": -3}),
            "timeoutSeconds",
        ),
        (json!({"identifier": "gh", "force": true}), "force"),
    ] {
        let r = call(&client, "resync-integration", args.clone()).await;
        assert!(is_error(&r), "{args}");
        assert!(
            text(&r).starts_with(&format!("Invalid argument `{argument}`")),
            "{args}: {}",
            text(&r)
        );
    }
    assert!(port.api_requests().is_empty());
}

#[tokio::test]
async fn cancelling_stops_the_polling() {
    use rmcp::model::{CallToolRequest, ClientRequest};
    use rmcp::service::PeerRequestOptions;
    let (port, client, _) = start(&[Toolset::Mapping]).await;
    accept_resync(&port.port, "k8s-exporter-eu");
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new("resync-integration").with_arguments(crate::common::args(
            json!({"identifier": "k8s-exporter-eu", "timeoutSeconds": 30}),
        )),
    ));
    let handle = client
        .peer()
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    for _ in 0..250 {
        if port.api_requests().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let polls = port.api_requests().len();
    assert!(
        polls >= 3,
        "the baseline, the trigger and at least one poll: {:?}",
        seen(&port)
    );
    handle.cancel(Some("stop".into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        port.api_requests().len(),
        polls,
        "polling went on after cancel: {:?}",
        seen(&port)
    );
}
