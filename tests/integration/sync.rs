//! The `sync` toolset: sync status and history (by the RESOLVED internal id), raw kind
//! examples, restore with its confirmation in both eras, resync as an MCP task (poll, cancel,
//! the `--max-tasks` cap), and the read-only and allow-list rules for the new tools.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use port_integrations_mcp::{
    config::{ToolSelection, Toolset},
    port::PortClient,
    sandbox::ScriptedResponse,
    tools::PortTools,
    transport::http::app,
};
use rmcp::{
    ClientHandler, ErrorData, RoleClient,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams,
        ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult, ElicitationAction,
        GetTaskParams, Implementation, TaskPayload, TaskStatus,
    },
    service::{ClientLifecycleMode, ClientServiceExt, RequestContext, RunningService},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    common::*,
    http::http_args,
    resync::{accept_resync, metrics_body, now, script_metrics, seen, selection, start_with},
};

const GH_ID: &str = "integration_5f1c2a9e";

fn sync_only() -> ToolSelection {
    selection(&[Toolset::Sync])
}

fn script(port: &FakePort, path: &str, status: u16, body: Value) {
    port.port
        .script(ScriptedResponse::json(status, body).on_path(path));
}

fn empty() -> Value {
    json!({"ok": true, "count": 0, "data": []})
}

#[tokio::test]
async fn status_resolves_the_internal_id_and_reports_per_kind() {
    let (port, client, _) = start_with(&sync_only()).await;
    script_metrics(
        &port.port,
        GH_ID,
        metrics_body(
            "run-9",
            "2026-11-23T08:00:00.000Z",
            &[("repository", "completed", 12.0, 12.0, 0.0)],
        ),
    );
    let r = call(
        &client,
        "get-integration-sync-status",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(
        seen(&port),
        [
            "GET /v1/integration/github-ocean",
            "GET /v1/integration/integration_5f1c2a9e/syncMetrics"
        ]
    );
    assert_eq!(
        text(&r),
        "Sync run run-9 of `github-ocean` (the latest):\n- repository (repository-0, blueprint \
         bp_repository): completed; extracted 12, transformed 12, filtered out 0, loaded 12, \
         failed 0, skipped 0, deleted 0; 8.4 s; success\nThe integration's resyncState status \
         is completed."
    );
    let s = r.structured_content.unwrap();
    assert_eq!(s["resyncId"], "run-9");
    assert_eq!(s["resyncState"]["status"], "completed");
    assert_eq!(s["kinds"][0]["loaded"], 12);
    assert_eq!(s["kinds"][0]["kindIdentifier"], "repository-0");

    port.port.clear_requests();
    script_metrics(
        &port.port,
        GH_ID,
        metrics_body(
            "0f1c-42",
            &now(),
            &[("repository", "failed", 3.0, 0.0, 3.0)],
        ),
    );
    let r = call(
        &client,
        "get-integration-sync-status",
        json!({"identifier": "github-ocean", "resyncId": "0f1c-42"}),
    )
    .await;
    assert!(!is_error(&r));
    assert_eq!(
        seen(&port)[1],
        "GET /v1/integration/integration_5f1c2a9e/syncMetrics?resyncId=0f1c-42"
    );
    assert!(text(&r).starts_with("Sync run 0f1c-42 of `github-ocean`:\n"));
}

#[tokio::test]
async fn status_says_what_an_empty_answer_means() {
    let (port, client, _) = start_with(&sync_only()).await;
    script(
        &port,
        "/v1/integration/integration_5f1c2a9e/syncMetrics",
        200,
        empty(),
    );
    let r = call(
        &client,
        "get-integration-sync-status",
        json!({"identifier": "github-ocean", "resyncId": "nope-1"}),
    )
    .await;
    assert!(is_error(&r));
    assert_eq!(
        text(&r),
        "No sync run with resyncId `nope-1` was found for integration `github-ocean` (Port \
         answered with no metrics for it). Call get-integration-sync-history to list the runs \
         and their resyncIds."
    );
    assert_eq!(r.structured_content.unwrap()["error"], "unknown_resync_id");

    script(
        &port,
        "/v1/integration/integration_5f1c2a9e/syncMetrics",
        200,
        empty(),
    );
    let r = call(
        &client,
        "get-integration-sync-status",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r));
    assert_eq!(
        text(&r),
        "Integration `github-ocean` has no recorded sync: Port has no sync metrics for it. Its \
         resyncState status is completed."
    );
}

#[tokio::test]
async fn history_is_newest_first_from_the_internal_id() {
    let (port, client, _) = start_with(&sync_only()).await;
    script(
        &port,
        "/v1/integration/integration_5f1c2a9e/syncsMetadata",
        200,
        json!({"ok": true, "count": 3, "data": [
            {"eventId": "r1", "syncState": "completed", "createdAt": "2026-11-20T10:00:00.000Z", "updatedAt": "2026-11-20T10:01:00.000Z"},
            {"eventId": "r3", "syncState": "failed", "createdAt": "2026-11-22T10:00:00.000Z", "updatedAt": "2026-11-22T10:00:12.500Z"},
            {"eventId": "r2", "syncState": "aborted", "createdAt": "2026-11-21T10:00:00.000Z", "updatedAt": "2026-11-21T10:00:05.000Z"}
        ]}),
    );
    let r = call(
        &client,
        "get-integration-sync-history",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(
        seen(&port),
        [
            "GET /v1/integration/github-ocean",
            "GET /v1/integration/integration_5f1c2a9e/syncsMetadata"
        ]
    );
    assert_eq!(
        text(&r),
        "Sync runs of `github-ocean`, newest first (pass a resyncId to \
         get-integration-sync-status for its per-kind counts):\n\
         - r3: failed, 2026-11-22T10:00:00.000Z to 2026-11-22T10:00:12.500Z (12.5 s)\n\
         - r2: aborted, 2026-11-21T10:00:00.000Z to 2026-11-21T10:00:05.000Z (5.0 s)\n\
         - r1: completed, 2026-11-20T10:00:00.000Z to 2026-11-20T10:01:00.000Z (60.0 s)"
    );
    let s = r.structured_content.unwrap();
    assert_eq!(
        s["runs"][0],
        json!({"resyncId": "r3", "state": "failed", "start": "2026-11-22T10:00:00.000Z",
               "end": "2026-11-22T10:00:12.500Z", "durationSeconds": 12.5})
    );

    script(
        &port,
        "/v1/integration/integration_5f1c2a9e/syncsMetadata",
        200,
        empty(),
    );
    let r = call(
        &client,
        "get-integration-sync-history",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r));
    assert!(text(&r).starts_with("Integration `github-ocean` has no recorded sync"));
}

#[tokio::test]
async fn kind_examples_are_ready_for_a_preview() {
    let (port, client, _) = start_with(&sync_only()).await;
    let kinds = json!({"ok": true, "data": {
        "repository": {"examples": [
            {"_id": "e1", "data": {"name": "api", "id": 1}},
            {"_id": "e2", "data": {"name": "web", "id": 2}}
        ]},
        "pull-request": {"examples": [{"_id": "e3", "data": {"title": "fix", "number": 7}}]}
    }});
    script(
        &port,
        "/v1/integration/github-ocean/kinds",
        200,
        kinds.clone(),
    );
    let r = call(
        &client,
        "get-integration-kind-examples",
        json!({"identifier": "github-ocean", "kind": "repository", "limit": 1}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(seen(&port), ["GET /v1/integration/github-ocean/kinds"]);
    let s = r.structured_content.clone().unwrap();
    assert_eq!(s["items"], json!([{"name": "api", "id": 1}]));
    assert_eq!(
        s["kinds"],
        json!([{"kind": "repository", "available": 2, "items": [{"name": "api", "id": 1}]}])
    );
    assert!(
        text(&r).contains("- repository: 1 of 2 example(s)"),
        "{}",
        text(&r)
    );

    script(
        &port,
        "/v1/integration/github-ocean/kinds",
        200,
        kinds.clone(),
    );
    let r = call(
        &client,
        "get-integration-kind-examples",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    let s = r.structured_content.unwrap();
    assert_eq!(s["kinds"].as_array().unwrap().len(), 2);
    assert!(s.get("items").is_none());

    script(&port, "/v1/integration/github-ocean/kinds", 200, kinds);
    let r = call(
        &client,
        "get-integration-kind-examples",
        json!({"identifier": "github-ocean", "kind": "issue"}),
    )
    .await;
    assert!(is_error(&r));
    assert_eq!(
        text(&r),
        "Integration `github-ocean` has no raw examples for kind `issue`. Kinds with examples: \
         pull-request, repository."
    );

    script(
        &port,
        "/v1/integration/github-ocean/kinds",
        200,
        json!({"ok": true, "data": {}}),
    );
    let r = call(
        &client,
        "get-integration-kind-examples",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r));
    assert!(text(&r).starts_with("Integration `github-ocean` has no stored raw examples."));
}

#[tokio::test]
async fn unknown_integrations_are_the_usual_404() {
    let (port, client, _) = start_with(&sync_only()).await;
    for tool in [
        "get-integration-sync-status",
        "get-integration-sync-history",
    ] {
        port.port.clear_requests();
        let r = call(&client, tool, json!({"identifier": "ghost"})).await;
        assert!(is_error(&r), "{tool}");
        assert!(
            text(&r).starts_with("Port answered HTTP 404 (not_found)"),
            "{tool}: {}",
            text(&r)
        );
        assert!(text(&r).contains("Call get-all-integrations"), "{tool}");
        assert_eq!(seen(&port), ["GET /v1/integration/ghost"], "{tool}");
    }
    port.port.clear_requests();
    script(
        &port,
        "/v1/integration/ghost/kinds",
        404,
        json!({"ok": false, "error": "not_found", "message": "Integration with identifier \"ghost\" was not found"}),
    );
    let r = call(
        &client,
        "get-integration-kind-examples",
        json!({"identifier": "ghost"}),
    )
    .await;
    assert!(is_error(&r));
    assert!(text(&r).starts_with("Port answered HTTP 404 (not_found)"));
    assert_eq!(seen(&port), ["GET /v1/integration/ghost/kinds"]);
}

#[tokio::test]
async fn port_failures_carry_status_and_trace_id() {
    let (port, client, _) = start_with(&sync_only()).await;
    port.port.script(
        ScriptedResponse::json(
            500,
            json!({"ok": false, "error": "internal_error", "message": "boom"}),
        )
        .with_trace_id("trace-500")
        .on_path("/v1/integration/integration_5f1c2a9e/syncMetrics"),
    );
    let r = call(
        &client,
        "get-integration-sync-status",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(is_error(&r));
    assert!(
        text(&r)
            .starts_with("Port answered HTTP 500 (internal_error): boom [x-trace-id: trace-500]"),
        "{}",
        text(&r)
    );
    let s = r.structured_content.unwrap();
    assert_eq!(s["status"], 500);
    assert_eq!(s["traceId"], "trace-500");

    port.port.script(
        ScriptedResponse::json(
            403,
            json!({"ok": false, "error": "forbidden", "message": "role"}),
        )
        .with_trace_id("trace-403")
        .on_path("/v1/integration/integration_5f1c2a9e/syncsMetadata"),
    );
    let r = call(
        &client,
        "get-integration-sync-history",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(is_error(&r));
    assert!(
        text(&r).starts_with("Port answered HTTP 403 (forbidden): role [x-trace-id: trace-403]")
    );

    port.port.script(
        ScriptedResponse::json(502, json!({"ok": false})).on_path("/v1/integration/gh/kinds"),
    );
    port.port.script(
        ScriptedResponse::json(502, json!({"ok": false})).on_path("/v1/integration/gh/kinds"),
    );
    port.port.script(
        ScriptedResponse::json(502, json!({"ok": false})).on_path("/v1/integration/gh/kinds"),
    );
    port.port.script(
        ScriptedResponse::json(502, json!({"ok": false}))
            .with_trace_id("trace-502")
            .on_path("/v1/integration/gh/kinds"),
    );
    port.port.clear_requests();
    let r = call(
        &client,
        "get-integration-kind-examples",
        json!({"identifier": "gh"}),
    )
    .await;
    assert!(is_error(&r));
    assert!(
        text(&r).starts_with("Port answered HTTP 502"),
        "{}",
        text(&r)
    );
    assert!(text(&r).contains("[x-trace-id: trace-502]"), "{}", text(&r));
    assert_eq!(
        seen(&port).len(),
        4,
        "a read is retried per the client's policy (4 attempts)"
    );
}

#[tokio::test]
async fn an_integration_without_internal_id_is_refused_before_the_metrics() {
    let (port, client, _) = start_with(&sync_only()).await;
    script(
        &port,
        "/v1/integration/github-ocean",
        200,
        json!({"ok": true, "integration": {"identifier": "github-ocean", "_id": "../x\n"}}),
    );
    let r = call(
        &client,
        "get-integration-sync-status",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(is_error(&r));
    assert!(
        text(&r)
            .starts_with("Port's record of integration `github-ocean` has no usable internal id"),
        "{}",
        text(&r)
    );
    assert_eq!(seen(&port), ["GET /v1/integration/github-ocean"]);
}

#[tokio::test]
async fn bad_arguments_never_reach_port() {
    let (port, client, _) = start_with(&sync_only()).await;
    let long = "x".repeat(129);
    for (tool, args, argument) in [
        ("get-integration-sync-status", json!({}), "identifier"),
        (
            "get-integration-sync-status",
            json!({"identifier": ""}),
            "identifier",
        ),
        (
            "get-integration-sync-status",
            json!({"identifier": "gh", "resyncId": ""}),
            "resyncId",
        ),
        (
            "get-integration-sync-status",
            json!({"identifier": "gh", "resyncId": "a\tb"}),
            "resyncId",
        ),
        (
            "get-integration-sync-status",
            json!({"identifier": "gh", "resyncId": long}),
            "resyncId",
        ),
        (
            "get-integration-sync-status",
            json!({"identifier": "gh", "resyncId": 5}),
            "resyncId",
        ),
        (
            "get-integration-sync-history",
            json!({"identifier": "."}),
            "identifier",
        ),
        (
            "get-integration-sync-history",
            json!({"identifier": "gh", "limit": 2}),
            "limit",
        ),
        (
            "get-integration-kind-examples",
            json!({"identifier": "gh", "limit": 0}),
            "limit",
        ),
        (
            "get-integration-kind-examples",
            json!({"identifier": "gh", "limit": 51}),
            "limit",
        ),
        (
            "get-integration-kind-examples",
            json!({"identifier": "gh", "kind": " "}),
            "kind",
        ),
        (
            "get-integration-kind-examples",
            json!({"identifier": "g\u{7f}h"}),
            "identifier",
        ),
        (
            "restore-integration-mapping",
            json!({"identifier": ""}),
            "identifier",
        ),
        (
            "restore-integration-mapping",
            json!({"identifier": "gh", "timeoutSeconds": 0}),
            "timeoutSeconds",
        ),
        (
            "restore-integration-mapping",
            json!({"identifier": "gh", "config": {}}),
            "config",
        ),
    ] {
        let r = call(&client, tool, args.clone()).await;
        assert!(is_error(&r), "{tool} {args}");
        assert!(
            text(&r).starts_with(&format!("Invalid argument `{argument}`")),
            "{tool} {args}: {}",
            text(&r)
        );
        assert!(
            text(&r).ends_with("Nothing was sent to Port."),
            "{}",
            text(&r)
        );
    }
    assert!(port.api_requests().is_empty(), "{:?}", seen(&port));
}

/// A client whose person answers every confirmation the same way.
#[derive(Clone)]
struct Person {
    action: ElicitationAction,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Person {
    fn new(action: ElicitationAction) -> Self {
        Person {
            action,
            asked: Arc::default(),
        }
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
        if let ElicitRequestParams::FormElicitationParams { message, .. } = request {
            self.asked.lock().unwrap().push(message);
        }
        Ok(match self.action {
            ElicitationAction::Accept => {
                ElicitResult::new(ElicitationAction::Accept).with_content(json!({"confirm": true}))
            }
            ref other => ElicitResult::new(other.clone()),
        })
    }
}

/// Scripts github-ocean's history (one completed run, r1) and that run's metrics.
fn script_restorable_history(port: &FakePort) {
    script(
        port,
        "/v1/integration/integration_5f1c2a9e/syncsMetadata",
        200,
        json!({"ok": true, "count": 2, "data": [
            {"eventId": "r1", "syncState": "completed", "createdAt": "2026-11-20T10:00:00.000Z", "updatedAt": "2026-11-20T10:01:00.000Z"},
            {"eventId": "r2", "syncState": "failed", "createdAt": "2026-11-22T10:00:00.000Z", "updatedAt": "2026-11-22T10:00:12.000Z"}
        ]}),
    );
    script_metrics(
        &port.port,
        GH_ID,
        metrics_body(
            "r1",
            "2026-11-20T10:00:00.000Z",
            &[("repository", "completed", 2.0, 2.0, 0.0)],
        ),
    );
}

const QUESTION: &str = "Restore the mapping of the Port integration \"GitHub\" (github-ocean, \
type github-ocean) to the one its last successful resync used? Port replaces the current mapping \
and resyncs. Current mapping kinds: repository, pull-request; kinds synced by its last successful \
resync (r1): repository.";

const QUESTION_GETS: [&str; 3] = [
    "GET /v1/integration/github-ocean",
    "GET /v1/integration/integration_5f1c2a9e/syncsMetadata",
    "GET /v1/integration/integration_5f1c2a9e/syncMetrics?resyncId=r1",
];

async fn restore_as<C: ClientHandler>(
    handler: C,
    mode: ClientLifecycleMode,
    prepare: impl FnOnce(&FakePort),
) -> (FakePort, CallToolResult) {
    let port = FakePort::start().await;
    prepare(&port);
    let tools = port.tools(&sync_only());
    let client = connect_tools(tools, handler, mode).await;
    let finisher = port.port.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(900)).await;
        finisher.finish_resync("github-ocean", "completed");
    });
    let r = call(
        &client,
        "restore-integration-mapping",
        json!({"identifier": "github-ocean", "timeoutSeconds": 20}),
    )
    .await;
    (port, r)
}

fn accept_restore(port: &FakePort, id: &str) {
    script(
        port,
        &format!("/v1/integration/{id}/restore"),
        200,
        json!({"ok": true}),
    );
}

#[tokio::test]
async fn restore_asks_first_then_restores_and_follows_in_both_eras() {
    for mode in [ClientLifecycleMode::Initialize, modern()] {
        let person = Person::new(ElicitationAction::Accept);
        let (port, r) = restore_as(person.clone(), mode.clone(), |port| {
            script_restorable_history(port);
            accept_restore(port, "github-ocean");
        })
        .await;
        assert!(!is_error(&r), "{mode:?}: {r:?}");
        assert!(
            text(&r).starts_with(
                "The resync after restoring the mapping of `github-ocean` finished: status completed."
            ),
            "{}",
            text(&r)
        );
        assert_eq!(*person.asked.lock().unwrap(), [QUESTION], "{mode:?}");
        let requests = seen(&port);
        assert_eq!(requests[..3], QUESTION_GETS, "{mode:?}");
        assert_eq!(
            requests[3..5],
            [
                "GET /v1/integration/github-ocean",
                "POST /v1/integration/github-ocean/restore"
            ],
            "{mode:?}"
        );
        let post = &port.api_requests()[4];
        assert_eq!(post.body, "{}");
        assert!(
            requests[5..]
                .iter()
                .any(|r| r == "GET /v1/integration/integration_5f1c2a9e/syncMetrics"),
            "the run's counts are read: {requests:?}"
        );
        assert!(
            requests
                .last()
                .unwrap()
                .starts_with("GET /v1/integration/github-ocean/logs?")
        );
    }
}

#[tokio::test]
async fn restore_declined_or_cancelled_sends_only_the_reads() {
    for mode in [ClientLifecycleMode::Initialize, modern()] {
        for (action, word) in [
            (ElicitationAction::Decline, "declined"),
            (ElicitationAction::Cancel, "cancelled"),
        ] {
            let person = Person::new(action);
            let (port, r) =
                restore_as(person.clone(), mode.clone(), script_restorable_history).await;
            assert!(is_error(&r), "{mode:?} {word}");
            assert_eq!(
                text(&r),
                format!(
                    "Nothing was restored: the user {word} restoring the mapping of integration \
                     `github-ocean`. Do not retry unless the user asks again."
                )
            );
            assert_eq!(seen(&port), QUESTION_GETS, "{mode:?} {word}");
        }
    }
}

#[tokio::test]
async fn restore_says_when_the_restored_kinds_are_not_known() {
    let person = Person::new(ElicitationAction::Decline);
    let (port, _) = restore_as(person.clone(), ClientLifecycleMode::Initialize, |port| {
        script(
            port,
            "/v1/integration/integration_5f1c2a9e/syncsMetadata",
            200,
            empty(),
        );
    })
    .await;
    let asked = person.asked.lock().unwrap().clone();
    assert!(
        asked[0].ends_with(
            "Current mapping kinds: repository, pull-request; the restored mapping's kinds are \
             not known (Port's recent sync history shows no successful run with metrics)."
        ),
        "{asked:?}"
    );
    assert_eq!(seen(&port), QUESTION_GETS[..2]);
}

#[tokio::test]
async fn a_client_that_cannot_elicit_restores_directly() {
    for mode in [ClientLifecycleMode::Initialize, modern()] {
        let (port, r) = restore_as((), mode.clone(), |port| {
            accept_restore(port, "github-ocean")
        })
        .await;
        assert!(!is_error(&r), "{mode:?} {r:?}");
        assert_eq!(
            seen(&port)[..2],
            [
                "GET /v1/integration/github-ocean",
                "POST /v1/integration/github-ocean/restore"
            ],
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn restore_without_a_snapshot_is_an_error_with_a_hint() {
    let (port, r) = restore_as((), ClientLifecycleMode::Initialize, |port| {
        port.port.script(
            ScriptedResponse::json(
                400,
                json!({"ok": false, "error": "no_successful_config", "message": "No successful config to restore"}),
            )
            .with_trace_id("trace-400")
            .on_path("/v1/integration/github-ocean/restore"),
        );
    })
    .await;
    assert!(is_error(&r));
    assert_eq!(
        text(&r),
        "Port answered HTTP 400 (no_successful_config): No successful config to restore \
         [x-trace-id: trace-400]\nHint: Port has nothing to restore: a restore needs an earlier \
         resync that completed successfully (see get-integration-sync-history), and works only \
         for Ocean integrations. Fix the mapping with update-integration-s-config instead."
    );
    assert_eq!(
        seen(&port),
        [
            "GET /v1/integration/github-ocean",
            "POST /v1/integration/github-ocean/restore"
        ],
        "a refused restore is neither retried nor followed"
    );
}

#[tokio::test]
async fn restore_retries_once_with_the_internal_id_on_404() {
    let (port, r) = restore_as((), ClientLifecycleMode::Initialize, |port| {
        script(
            port,
            "/v1/integration/github-ocean/restore",
            404,
            json!({"ok": false, "error": "not_found", "message": "Integration not found"}),
        );
        accept_restore(port, GH_ID);
    })
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(
        seen(&port)[..3],
        [
            "GET /v1/integration/github-ocean",
            "POST /v1/integration/github-ocean/restore",
            "POST /v1/integration/integration_5f1c2a9e/restore"
        ]
    );

    // Both refuse: the second 404 is the answer, and there is no third try.
    let (port, r) = restore_as((), ClientLifecycleMode::Initialize, |port| {
        for path in [
            "/v1/integration/github-ocean/restore",
            "/v1/integration/integration_5f1c2a9e/restore",
        ] {
            script(
                port,
                path,
                404,
                json!({"ok": false, "error": "not_found", "message": "nope"}),
            );
        }
    })
    .await;
    assert!(is_error(&r));
    assert!(text(&r).starts_with("Port answered HTTP 404 (not_found): nope"));
    assert_eq!(seen(&port).len(), 3, "{:?}", seen(&port));
}

fn tasks_client() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::builder().enable_tasks().build(),
        Implementation::new("tasks", "1.0"),
    )
}

async fn task_of<S: rmcp::Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    tool: &str,
    args: Value,
) -> String {
    let response = client
        .call_tool_once(
            CallToolRequestParams::new(tool.to_string()).with_arguments(crate::common::args(args)),
        )
        .await
        .unwrap();
    match response {
        CallToolResponse::Task(created) => {
            assert_eq!(created.task.status, TaskStatus::Working);
            created.task.task_id
        }
        other => panic!("expected a task, got {other:?}"),
    }
}

/// A resync of github-ocean as a task, followed for 1 s: the task completes, with the
/// tool's "still running" answer as its result.
async fn a_one_second_task_completes_still_running<S: rmcp::Service<RoleClient>>(
    port: &FakePort,
    client: &RunningService<RoleClient, S>,
) {
    accept_resync(&port.port, "github-ocean");
    let id = task_of(
        client,
        "resync-integration",
        json!({"identifier": "github-ocean", "timeoutSeconds": 1}),
    )
    .await;
    let TaskPayload::Completed { result } = settle(client, &id).await else {
        panic!("expected completed");
    };
    assert_eq!(result["structuredContent"]["status"], "still running");
}

/// Polls `tasks/get` (up to 30 s) until the task is terminal.
async fn settle<S: rmcp::Service<RoleClient>>(
    client: &RunningService<RoleClient, S>,
    id: &str,
) -> TaskPayload {
    for _ in 0..300 {
        let info = client
            .peer()
            .get_task(GetTaskParams::new(id.to_string()))
            .await
            .unwrap();
        if info.task.status().is_terminal() {
            return info.task.payload;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("task {id} did not settle");
}

#[tokio::test]
async fn resync_as_a_task_completes_with_the_same_result() {
    let port = FakePort::start().await;
    let tools = port.tools(&sync_only());
    let client = connect_tools(tools, tasks_client(), ClientLifecycleMode::Initialize).await;
    assert!(
        client.peer_info().unwrap().capabilities.supports_tasks(),
        "the server advertises tasks"
    );
    accept_resync(&port.port, "github-ocean");
    let id = task_of(
        &client,
        "resync-integration",
        json!({"identifier": "github-ocean", "timeoutSeconds": 20}),
    )
    .await;
    script_metrics(
        &port.port,
        GH_ID,
        metrics_body(
            "run-t",
            &now(),
            &[("repository", "completed", 4.0, 4.0, 0.0)],
        ),
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    port.port.finish_resync("github-ocean", "completed");
    let payload = settle(&client, &id).await;
    let TaskPayload::Completed { result } = payload else {
        panic!("expected completed, got {payload:?}");
    };
    let result: CallToolResult = serde_json::from_value(Value::Object(result)).unwrap();
    assert!(!is_error(&result));
    assert!(
        text(&result).starts_with(
            "The resync of `github-ocean` finished: status completed.\nPer kind (resyncId run-t):\n\
             - repository (repository-0, blueprint bp_repository): completed; extracted 4"
        ),
        "{}",
        text(&result)
    );
    assert_eq!(result.structured_content.unwrap()["kinds"][0]["loaded"], 4);
    assert_eq!(seen(&port)[1], "POST /v1/integration/github-ocean/resync");
}

#[tokio::test]
async fn a_cancelled_task_stops_following() {
    let port = FakePort::start().await;
    let tools = port.tools(&sync_only());
    let client = connect_tools(tools, tasks_client(), ClientLifecycleMode::Initialize).await;
    accept_resync(&port.port, "k8s-exporter-eu");
    let id = task_of(
        &client,
        "resync-integration",
        json!({"identifier": "k8s-exporter-eu"}),
    )
    .await;
    for _ in 0..250 {
        if port.api_requests().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(port.api_requests().len() >= 3, "{:?}", seen(&port));
    client
        .peer()
        .cancel_task(CancelTaskParams::new(id.clone()))
        .await
        .unwrap();
    assert!(matches!(settle(&client, &id).await, TaskPayload::Cancelled));
    let after = port.api_requests().len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        port.api_requests().len(),
        after,
        "polling went on after tasks/cancel: {:?}",
        seen(&port)
    );
}

#[tokio::test]
async fn a_task_ends_with_the_servers_shutdown() {
    let port = FakePort::start().await;
    let tools = port.tools(&sync_only());
    let server = tools.clone();
    let client = connect_tools(tools, tasks_client(), ClientLifecycleMode::Initialize).await;
    accept_resync(&port.port, "k8s-exporter-eu");
    let id = task_of(
        &client,
        "resync-integration",
        json!({"identifier": "k8s-exporter-eu"}),
    )
    .await;
    for _ in 0..250 {
        if port.api_requests().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        server.calls().len(),
        1,
        "a running task counts as a call in flight"
    );
    // What the transports do once the shutdown's grace period is over.
    server.ended().cancel();
    let TaskPayload::Completed { result } = settle(&client, &id).await else {
        panic!("expected the shutdown answer");
    };
    assert_eq!(result["structuredContent"]["error"], "shutting_down");
    assert_eq!(server.calls().len(), 0);
    let after = port.api_requests().len();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(port.api_requests().len(), after, "{:?}", seen(&port));
}

#[tokio::test]
async fn the_task_cap_refuses_clearly_and_the_server_keeps_serving() {
    let port = FakePort::start().await;
    let tools = PortTools::with_selection(
        PortClient::new(&port.settings(static_token())).unwrap(),
        &ToolSelection {
            max_tasks: 1,
            ..selection(&[Toolset::Integrations, Toolset::Sync])
        },
    )
    .unwrap();
    let client = connect_tools(tools, tasks_client(), ClientLifecycleMode::Initialize).await;
    accept_resync(&port.port, "k8s-exporter-eu");
    let first = task_of(
        &client,
        "resync-integration",
        json!({"identifier": "k8s-exporter-eu"}),
    )
    .await;
    let before = port.api_requests().len();
    let r = call(
        &client,
        "resync-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(is_error(&r));
    assert_eq!(
        text(&r),
        "The server is already running as many tasks as it allows (1; --max-tasks / \
         PORT_MCP_MAX_TASKS), or keeps as many recent ones as it may; nothing was sent to Port. \
         Wait for a running task to finish (tasks/get) or cancel one (tasks/cancel), then retry."
    );
    assert!(
        !seen(&port)[before..]
            .iter()
            .any(|r| r.contains("github-ocean")),
        "the refused call sent nothing: {:?}",
        seen(&port)
    );
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r), "the server still serves other calls");
    client
        .peer()
        .cancel_task(CancelTaskParams::new(first.clone()))
        .await
        .unwrap();
    settle(&client, &first).await;
    // The slot is free again.
    a_one_second_task_completes_still_running(&port, &client).await;
}

#[tokio::test]
async fn finished_tasks_kept_for_polling_are_bounded_too() {
    let port = FakePort::start().await;
    let tools = PortTools::with_selection(
        PortClient::new(&port.settings(static_token())).unwrap(),
        &ToolSelection {
            max_tasks: 1,
            ..sync_only()
        },
    )
    .unwrap();
    let client = connect_tools(tools, tasks_client(), ClientLifecycleMode::Initialize).await;
    // Each task ends at once (404), but stays in the store for polling.
    for n in 0..16 {
        let id = task_of(
            &client,
            "resync-integration",
            json!({"identifier": "ghost"}),
        )
        .await;
        let TaskPayload::Completed { result } = settle(&client, &id).await else {
            panic!("task {n}");
        };
        assert_eq!(result["isError"], true);
    }
    let r = call(
        &client,
        "resync-integration",
        json!({"identifier": "ghost"}),
    )
    .await;
    assert!(is_error(&r));
    assert!(text(&r).contains("--max-tasks"), "{}", text(&r));
    assert_eq!(
        port.api_requests().len(),
        16,
        "the refused call sent nothing"
    );
}

async fn serve_http(port: &FakePort, selection: &ToolSelection, stateless: bool) -> SocketAddr {
    let tools = port.tools(selection);
    let router = app(tools, &http_args(stateless), CancellationToken::new());
    listen(router).await
}

fn transport(
    addr: SocketAddr,
    headers: &[(&'static str, &'static str)],
) -> StreamableHttpClientTransport<reqwest::Client> {
    let headers: HashMap<_, _> = headers
        .iter()
        .map(|(k, v)| {
            (
                reqwest::header::HeaderName::from_static(k),
                reqwest::header::HeaderValue::from_static(v),
            )
        })
        .collect();
    StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("http://{addr}/mcp"))
            .custom_headers(headers),
    )
}

#[tokio::test]
async fn tasks_survive_stateless_http_where_each_request_has_its_own_server() {
    let port = FakePort::start().await;
    let addr = serve_http(&port, &sync_only(), true).await;
    // Stateless HTTP knows a client's capabilities only from the 2026-07-28 era's per-request
    // metadata: a legacy client there gets plain calls.
    let client = tasks_client()
        .serve_with_lifecycle(transport(addr, &[]), modern())
        .await
        .unwrap();
    a_one_second_task_completes_still_running(&port, &client).await;
}

#[tokio::test]
async fn read_only_header_and_allow_list_cover_the_new_tools() {
    let port = FakePort::start().await;
    let addr = serve_http(&port, &sync_only(), false).await;
    let read_only = ()
        .serve_with_lifecycle(
            transport(addr, &[("x-read-only-mode", "1")]),
            ClientLifecycleMode::Initialize,
        )
        .await
        .unwrap();
    let mut names: Vec<String> = read_only
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "get-integration-kind-examples",
            "get-integration-sync-history",
            "get-integration-sync-status"
        ]
    );
    for tool in ["restore-integration-mapping", "resync-integration"] {
        let err = read_only
            .call_tool(
                CallToolRequestParams::new(tool)
                    .with_arguments(crate::common::args(json!({"identifier": "github-ocean"}))),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("read-only mode"), "{tool}: {err}");
    }
    assert!(port.port.requests().is_empty());

    let listed = PortTools::with_selection(
        PortClient::new(&port.settings(static_token())).unwrap(),
        &ToolSelection {
            tools: vec![
                "get-integration-sync-status".into(),
                "get-integration".into(),
            ],
            ..selection(&[Toolset::Integrations, Toolset::Sync])
        },
    )
    .unwrap();
    let mut names = listed.tool_names();
    names.sort();
    assert_eq!(names, ["get-integration", "get-integration-sync-status"]);
    let unknown = PortTools::with_selection(
        PortClient::new(&port.settings(static_token())).unwrap(),
        &ToolSelection {
            tools: vec!["restore-integration-mapping".into()],
            ..selection(&[])
        },
    );
    assert!(
        unknown.is_err(),
        "restore is not offered without the sync toolset"
    );
}

const JIRA_FAILED_RUN: &str = "a41c7e92-8b3d-4f25-b6e0-7d9f1c2a3b48";
const JIRA_GOOD_RUN: &str = "5d2f8a61-3c4e-4b7a-9f10-2e6b8c9d0a13";

fn kind_of(structured: &Value, kind_identifier: &str) -> Value {
    structured["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kindIdentifier"] == kind_identifier)
        .unwrap_or_else(|| panic!("no {kind_identifier}: {structured:#}"))
        .clone()
}

/// The demo's story end to end, against the sandbox's own sync routes: jira-cloud's last run
/// failed; status, history and raw examples show why; the preview confirms the fix; the fixed
/// mapping is saved and a resync loads every issue.
#[tokio::test]
async fn the_jira_story_from_failure_to_fix() {
    let port = FakePort::with_mapping().await;
    let tools = port
        .tools(&selection(&[
            Toolset::Integrations,
            Toolset::Mapping,
            Toolset::Sync,
        ]))
        .with_mapping_limits(mapping_limits());
    let client = connect_tools(tools, (), ClientLifecycleMode::Initialize).await;

    let r = call(
        &client,
        "get-integration-sync-status",
        json!({"identifier": "jira-cloud"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(
        seen(&port),
        [
            "GET /v1/integration/jira-cloud",
            "GET /v1/integration/integration_3b9d7c42/syncMetrics"
        ]
    );
    let s = r.structured_content.unwrap();
    assert_eq!(s["resyncId"], JIRA_FAILED_RUN);
    assert_eq!(s["resyncState"]["status"], "failed");
    let issue = kind_of(&s, "issue-1");
    assert_eq!(issue["state"], "failed");
    assert!(issue["failed"].as_u64().unwrap() > 0, "{issue}");
    assert_eq!(issue["loaded"], 0);
    assert_eq!(kind_of(&s, "project-0")["state"], "completed");

    let r = call(
        &client,
        "get-integration-sync-history",
        json!({"identifier": "jira-cloud"}),
    )
    .await;
    let runs = r.structured_content.unwrap()["runs"].clone();
    assert_eq!(runs[0]["resyncId"], JIRA_FAILED_RUN);
    assert_eq!(runs[0]["state"], "failed");
    assert_eq!(runs[1]["resyncId"], JIRA_GOOD_RUN);
    assert_eq!(runs[1]["state"], "completed");
    let r = call(
        &client,
        "get-integration-sync-status",
        json!({"identifier": "jira-cloud", "resyncId": JIRA_GOOD_RUN}),
    )
    .await;
    let good = r.structured_content.unwrap();
    assert_eq!(kind_of(&good, "issue-1")["failed"], 0);
    assert!(kind_of(&good, "issue-1")["loaded"].as_u64().unwrap() > 0);

    let r = call(
        &client,
        "get-integration-kind-examples",
        json!({"identifier": "jira-cloud", "kind": "issue"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    let items = r.structured_content.unwrap()["items"].clone();
    let items = items.as_array().unwrap().clone();
    assert!(items.len() >= 3, "{items:#?}");
    assert!(
        items
            .iter()
            .all(|i| i["key"].is_string() && i["fields"]["key"].is_null())
    );

    // The examples go straight into a preview of the fixed mapping.
    let mut config = port.port.integration("jira-cloud").unwrap()["config"].clone();
    config["resources"][1]["port"]["entity"]["mappings"]["identifier"] = json!(".key");
    let r = call(
        &client,
        "preview-integration-mapping",
        json!({"config": config, "kind": "issue", "items": items}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    let preview = r.structured_content.unwrap().to_string();
    assert!(
        preview.contains(items[0]["key"].as_str().unwrap()),
        "{preview}"
    );

    let r = call(
        &client,
        "update-integration-s-config",
        json!({"identifier": "jira-cloud", "body": {"config": config}}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    port.port.clear_requests();
    crate::resync::settle_when_requested(&port, "jira-cloud");
    let r = call(
        &client,
        "resync-integration",
        json!({"identifier": "jira-cloud", "timeoutSeconds": 30}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert!(
        text(&r).starts_with("The resync of `jira-cloud` finished: status completed."),
        "{}",
        text(&r)
    );
    let s = r.structured_content.unwrap();
    let issue = kind_of(&s, "issue-1");
    assert_eq!(issue["state"], "completed");
    assert_eq!(issue["failed"], 0);
    assert!(issue["loaded"].as_u64().unwrap() > 0, "{issue}");
    assert_eq!(seen(&port)[1], "POST /v1/integration/jira-cloud/resync");
}

/// Restore against the sandbox: the question names the broken mapping's kinds and the good
/// run's, and the accepted restore brings back the good config and follows its run.
#[tokio::test]
async fn restoring_jira_brings_back_the_working_mapping() {
    let port = FakePort::with_mapping().await;
    let tools = port.tools(&sync_only());
    let person = Person::new(ElicitationAction::Accept);
    let client = connect_tools(tools, person.clone(), ClientLifecycleMode::Initialize).await;
    let broken = port.port.integration("jira-cloud").unwrap()["config"].clone();
    let sandbox = port.port.clone();
    tokio::spawn(async move {
        for _ in 0..500 {
            if sandbox
                .api_requests()
                .iter()
                .any(|r| r.method == "POST" && r.path.ends_with("/restore"))
            {
                sandbox.settle_resync("jira-cloud").await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let r = call(
        &client,
        "restore-integration-mapping",
        json!({"identifier": "jira-cloud", "timeoutSeconds": 30}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(
        *person.asked.lock().unwrap(),
        [format!(
            "Restore the mapping of the Port integration \"Jira\" (jira-cloud, type jira) to the \
             one its last successful resync used? Port replaces the current mapping and resyncs. \
             Current mapping kinds: project, issue; kinds synced by its last successful resync \
             ({JIRA_GOOD_RUN}): project, issue."
        )]
    );
    let restored = port.port.integration("jira-cloud").unwrap()["config"].clone();
    assert_ne!(restored, broken);
    assert_eq!(
        restored["resources"][1]["port"]["entity"]["mappings"]["identifier"],
        ".key"
    );
    assert_eq!(
        seen(&port)[3..5],
        [
            "GET /v1/integration/jira-cloud",
            "POST /v1/integration/jira-cloud/restore"
        ]
    );
    let s = r.structured_content.unwrap();
    assert_eq!(s["status"], "completed");
    assert_eq!(kind_of(&s, "issue-1")["failed"], 0);
}
