//! The opt-in `mapping` toolset's resync-integration: a resync triggered and followed to its
//! end (completed, failed, still running), with the progress a real client receives.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use port_integrations_mcp::{
    config::{ToolSelection, Toolset},
    port::PortClient,
    tools::PortTools,
};
use rmcp::{
    ClientHandler, RoleClient,
    model::{
        CallToolRequestParams, NumberOrString, ProgressNotificationParam, ProgressToken,
        RequestMetaObject, RequestParamsMeta,
    },
    service::{ClientLifecycleMode, NotificationContext, RunningService},
};
use serde_json::json;

use crate::common::*;

#[derive(Clone, Default)]
struct Watcher {
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

fn selection(sets: &[Toolset]) -> ToolSelection {
    ToolSelection {
        toolsets: sets.to_vec(),
        ..Default::default()
    }
}

async fn start(sets: &[Toolset]) -> (FakePort, RunningService<RoleClient, Watcher>, Watcher) {
    let port = FakePort::start().await;
    let tools = PortTools::with_selection(
        PortClient::new(&port.settings(static_token())).unwrap(),
        &selection(sets),
    )
    .unwrap();
    let watcher = Watcher::default();
    let client = connect_tools(tools, watcher.clone(), ClientLifecycleMode::Initialize).await;
    (port, client, watcher)
}

fn with_progress(args: serde_json::Value) -> CallToolRequestParams {
    let mut params =
        CallToolRequestParams::new("resync-integration").with_arguments(crate::common::args(args));
    params.set_meta(RequestMetaObject::with_progress_token(ProgressToken(
        NumberOrString::Number(7),
    )));
    params
}

fn seen(port: &FakePort) -> Vec<String> {
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

#[tokio::test]
async fn toolsets_choose_the_surface() {
    let port = FakePort::start().await;
    let names = |sets: &[Toolset]| {
        let mut n = PortTools::with_selection(
            PortClient::new(&port.settings(static_token())).unwrap(),
            &selection(sets),
        )
        .unwrap()
        .tool_names();
        n.sort();
        n
    };
    assert_eq!(names(&[]).len(), 7, "the default is the seven tools alone");
    assert!(!names(&[]).contains(&"resync-integration".to_string()));
    assert_eq!(names(&[Toolset::Integrations, Toolset::Mapping]).len(), 9);
    assert_eq!(
        names(&[Toolset::Mapping]),
        ["preview-integration-mapping", "resync-integration"]
    );
    let read_only = PortTools::with_selection(
        PortClient::new(&port.settings(static_token())).unwrap(),
        &ToolSelection {
            read_only: true,
            ..selection(&[Toolset::Mapping])
        },
    )
    .unwrap();
    assert_eq!(
        read_only.tool_names(),
        ["preview-integration-mapping"],
        "resync-integration writes; the preview only reads"
    );
}

#[tokio::test]
async fn a_completed_resync_with_progress() {
    let (port, client, watcher) = start(&[Toolset::Integrations, Toolset::Mapping]).await;
    let finisher = port.port.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        finisher.finish_resync("github-ocean", "completed");
    });
    let r = client
        .call_tool(with_progress(
            json!({"identifier": "github-ocean", "timeoutSeconds": 20}),
        ))
        .await
        .unwrap();
    assert!(!is_error(&r), "{r:?}");
    assert!(
        text(&r).starts_with("The resync of `github-ocean` finished: status completed."),
        "{}",
        text(&r)
    );
    let s = r.structured_content.unwrap();
    assert_eq!(s["status"], "completed");
    assert_eq!(s["resyncState"]["status"], "completed");
    assert_eq!(s["errors"]["ok"], true);
    let requests = seen(&port);
    assert_eq!(requests[0], "PATCH /v1/integration/github-ocean");
    assert_eq!(port.api_requests()[0].body, "{}");
    assert!(
        requests[1..requests.len() - 1]
            .iter()
            .all(|r| r == "GET /v1/integration/github-ocean"),
        "{requests:?}"
    );
    let last = requests.last().unwrap();
    assert!(
        last.starts_with("GET /v1/integration/github-ocean/logs?levels=ERROR&timestamp="),
        "{last}"
    );
    assert!(last.ends_with("&direction=down&limit=50"), "{last}");
    let progress = watcher.progress.lock().unwrap().clone();
    assert!(!progress.is_empty(), "no progress notification arrived");
    assert!(
        progress
            .iter()
            .all(|m| m == "resync of github-ocean: running"),
        "{progress:?}"
    );
}

#[tokio::test]
async fn a_failed_resync_returns_its_errors() {
    let (port, client, _) = start(&[Toolset::Mapping]).await;
    let finisher = port.port.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        finisher.finish_resync("pagerduty-prod", "failed");
    });
    let r = call(
        &client,
        "resync-integration",
        json!({"identifier": "pagerduty-prod", "timeoutSeconds": 20}),
    )
    .await;
    assert!(is_error(&r));
    assert!(
        text(&r).starts_with("The resync of `pagerduty-prod` ended: status failed."),
        "{}",
        text(&r)
    );
    let s = r.structured_content.unwrap();
    let logs = s["errors"]["data"]["logs"].as_array().unwrap();
    assert!(!logs.is_empty());
    assert!(logs.iter().all(|l| l["level"] == "ERROR"));
}

#[tokio::test]
async fn a_long_resync_is_reported_still_running() {
    let (port, client, _) = start(&[Toolset::Mapping]).await;
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
    assert_eq!(seen(&port)[0], "PATCH /v1/integration/k8s-exporter-eu");
}

#[tokio::test]
async fn a_previous_runs_state_is_not_taken_for_this_one() {
    // github-ocean's last run "completed" at 08:03 (seed). Port records our request at 10:00;
    // the exporter has not picked it up yet, so the state still shows the old run.
    let (port, client, _) = start(&[Toolset::Mapping]).await;
    port.port.script(
        port_integrations_mcp::sandbox::ScriptedResponse::json(
            200,
            json!({"ok": true, "integration": {"identifier": "github-ocean", "updatedAt": "2026-11-23T10:00:00.000Z"}}),
        )
        .on_path("/v1/integration/github-ocean"),
    );
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
    assert_eq!(seen(&port)[0], "PATCH /v1/integration/github-ocean");
}

#[tokio::test]
async fn cancelling_stops_the_polling() {
    use rmcp::model::{CallToolRequest, ClientRequest};
    use rmcp::service::PeerRequestOptions;
    let (port, client, _) = start(&[Toolset::Mapping]).await;
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
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let polls = port.api_requests().len();
    assert!(
        polls >= 2,
        "the trigger and at least one poll: {:?}",
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
