//! The sandbox's sync routes (`port-sync-api.md`), driven over plain HTTP as Port's clients
//! would call them: resync and its request record, restore, syncMetrics and syncsMetadata by
//! internal id, kind examples, the resync-state write, and the failing-jira story, where runs
//! apply the config to the examples in the real preview worker.

use std::time::Duration;

use port_integrations_mcp::sandbox::Sandbox;
use serde_json::{Value, json};

use crate::common::*;

const GH_ID: &str = "integration_5f1c2a9e";
const JIRA_ID: &str = "integration_3b9d7c42";
const JIRA_FAILED_RUN: &str = "a41c7e92-8b3d-4f25-b6e0-7d9f1c2a3b48";
const JIRA_GOOD_RUN: &str = "5d2f8a61-3c4e-4b7a-9f10-2e6b8c9d0a13";

/// Sends a request with the static token; returns the status and the body as JSON.
async fn send(port: &FakePort, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", port.url),
        )
        .header("authorization", format!("Bearer {STATIC_TOKEN}"));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap())
}

async fn get(port: &FakePort, path: &str) -> (u16, Value) {
    send(port, "GET", path, None).await
}

fn is_uuid_like(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
        && parts[2].starts_with('4')
}

/// Every count of a metrics item, by phase and type.
fn counts(item: &Value) -> Vec<(String, String, f64)> {
    let mut out = Vec::new();
    for (phase, v) in item["metrics"]["phase"].as_object().unwrap() {
        if phase == "resync" {
            continue;
        }
        for (t, c) in v["object_count_type"].as_object().unwrap() {
            out.push((
                phase.clone(),
                t.clone(),
                c["object_count"].as_f64().unwrap(),
            ));
        }
    }
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

fn by_kind<'a>(data: &'a Value, kind_identifier: &str) -> &'a Value {
    data["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kindIdentifier"] == kind_identifier)
        .unwrap_or_else(|| panic!("no {kind_identifier} in {data:#}"))
}

fn count_of(item: &Value, phase: &str, kind: &str) -> Value {
    item["metrics"]["phase"][phase]["object_count_type"][kind]["object_count"].clone()
}

/// The fixed jira config: the broken issue identifier `.fields.key` back to `.key`.
fn fixed_jira_config(port: &FakePort) -> Value {
    let mut config = port.port.integration("jira-cloud").unwrap()["config"].clone();
    assert_eq!(
        config["resources"][1]["port"]["entity"]["mappings"]["identifier"],
        ".fields.key"
    );
    config["resources"][1]["port"]["entity"]["mappings"]["identifier"] = json!(".key");
    config
}

async fn logs_of(port: &FakePort, identifier: &str, event_id: &str) -> Vec<Value> {
    let (status, body) = get(
        port,
        &format!("/v1/integration/{identifier}/logs?event_id={event_id}"),
    )
    .await;
    assert_eq!(status, 200);
    body["data"]["logs"].as_array().unwrap().clone()
}

#[tokio::test]
async fn resync_records_a_request_and_a_run_that_finishes_with_metrics() {
    let port = FakePort::start().await;
    assert_eq!(
        get(&port, "/v1/integration/github-ocean/resync-request").await,
        (200, json!({"ok": true, "request": null}))
    );
    port.port.clear_requests();
    // Port documents neither the code nor the body of a successful trigger: only "2xx" is
    // asserted (the answer is configurable, see the_trigger_answer_is_configurable).
    let (status, _) = send(&port, "POST", "/v1/integration/github-ocean/resync", None).await;
    assert!((200..300).contains(&status), "{status}");
    let req = port.single_request();
    assert_eq!(
        (req.method.as_str(), req.path.as_str(), req.query.as_deref()),
        ("POST", "/v1/integration/github-ocean/resync", None)
    );
    assert_eq!(req.body, "");

    let integration = port.port.integration("github-ocean").unwrap();
    let state = &integration["resyncState"];
    assert_eq!(state["status"], "running");
    assert_eq!(state["lastResyncEnd"], Value::Null);
    assert_eq!(state["intervalInMinuets"], 60);
    assert_eq!(state["lastResyncStart"], state["updatedAt"]);
    // An hourly integration: the next resync is scheduled an hour later.
    let start = chrono::DateTime::parse_from_rfc3339(state["lastResyncStart"].as_str().unwrap());
    let next = chrono::DateTime::parse_from_rfc3339(state["nextResync"].as_str().unwrap());
    assert_eq!((next.unwrap() - start.unwrap()).num_minutes(), 60);
    // The integration itself was not edited.
    assert_eq!(integration["updatedAt"], "2026-11-23T08:03:12.000Z");

    let (status, request) = get(&port, "/v1/integration/github-ocean/resync-request").await;
    assert_eq!(status, 200);
    assert_eq!(request["ok"], true);
    let r = request["request"].as_object().unwrap();
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(is_uuid_like(r["id"].as_str().unwrap()), "{r:?}");
    assert_eq!(r["updatedAt"], state["lastResyncStart"]);

    let event = port.port.latest_event_id("github-ocean").unwrap();
    assert!(is_uuid_like(&event), "{event}");
    let (status, history) = get(&port, &format!("/v1/integration/{GH_ID}/syncsMetadata")).await;
    assert_eq!(status, 200);
    assert_eq!(history["count"], 3);
    assert_eq!(
        history["data"][0],
        json!({"eventId": event, "syncState": "syncing", "createdAt": r["updatedAt"], "updatedAt": r["updatedAt"]})
    );
    assert_eq!(
        history["data"][1],
        json!({"eventId": "evt_gh_42", "syncState": "completed",
               "createdAt": "2026-11-23T08:00:00.000Z", "updatedAt": "2026-11-23T08:03:12.000Z"})
    );
    assert_eq!(history["data"][2]["eventId"], "evt_gh_41");
    assert_eq!(
        port.port.sync_history("github-ocean"),
        *history["data"].as_array().unwrap()
    );

    // While running: every kind zeroed, as Ocean reports at a resync's start.
    let (_, running) = get(&port, &format!("/v1/integration/{GH_ID}/syncMetrics")).await;
    assert_eq!(running["count"], 4);
    let kinds: Vec<&str> = running["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kindIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "repository-0",
            "pull-request-1",
            "__reconciliation__",
            "__runtime__"
        ]
    );
    for item in running["data"].as_array().unwrap() {
        assert_eq!(item["eventId"], event.as_str());
        assert_eq!(item["syncState"], "syncing");
        assert!(counts(item).iter().all(|c| c.2 == 0.0), "{item:#}");
    }

    port.port.finish_resync("github-ocean", "completed");
    let (_, done) = get(&port, &format!("/v1/integration/{GH_ID}/syncMetrics")).await;
    let repo = by_kind(&done, "repository-0");
    let duration = repo["metrics"]["phase"]["resync"]["duration_seconds"].clone();
    assert!(duration.as_f64().unwrap() >= 0.0);
    let stamps = (repo["createdAt"].clone(), repo["updatedAt"].clone());
    // Without mapping limits every example (three of each kind) counts as loaded.
    assert_eq!(
        *repo,
        json!({
            "integrationType": "github-ocean",
            "integrationIdentifier": "github-ocean",
            "integrationVersion": "3.4.1",
            "oceanVersion": "0.48.12",
            "kindIdentifier": "repository-0",
            "kind": "repository",
            "kindIndex": 0,
            "eventId": event,
            "syncState": "completed",
            "blueprint": "service",
            "metrics": {"phase": {
                "resync": {"duration_seconds": duration, "success": 1.0},
                "extract": {"object_count_type": {"raw_extracted": {"object_count": 3.0}}},
                "transform": {"object_count_type": {
                    "transformed": {"object_count": 3.0},
                    "filtered_out": {"object_count": 0.0},
                    "failed": {"object_count": 0.0}}},
                "load": {"object_count_type": {
                    "loaded": {"object_count": 3.0},
                    "failed": {"object_count": 0.0},
                    "skipped": {"object_count": 0.0}}},
                "delete": {"object_count_type": {"deleted": {"object_count": 0.0}}}
            }},
            "createdAt": stamps.0,
            "updatedAt": stamps.1,
        })
    );
    // Counts are Port's gauges: floats on the wire.
    assert!(
        serde_json::to_string(&done)
            .unwrap()
            .contains(r#""raw_extracted":{"object_count":3.0}"#)
    );
    assert_eq!(
        by_kind(&done, "__runtime__")["metrics"],
        json!({"phase": {"resync": {"duration_seconds": duration, "success": 1.0}}})
    );
    assert_eq!(
        by_kind(&done, "__reconciliation__")["metrics"]["phase"]["delete"],
        json!({"object_count_type": {"deleted": {"object_count": 0.0}}})
    );
    assert_eq!(
        port.port.integration("github-ocean").unwrap()["resyncState"]["status"],
        "completed"
    );
    assert_eq!(
        port.port.sync_history("github-ocean")[0]["syncState"],
        "completed"
    );

    let logs = logs_of(&port, "github-ocean", &event).await;
    let lines: Vec<(&str, &str)> = logs
        .iter()
        .map(|l| (l["level"].as_str().unwrap(), l["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        lines,
        [
            ("INFO", "Resync finished successfully: 6 entities upserted"),
            ("INFO", "Resync started")
        ]
    );
    assert_eq!(logs[1]["extra"]["event_id"], event.as_str());
    assert_eq!(logs[1]["extra"]["etl_phase"], "extract");
}

#[tokio::test]
async fn a_second_resync_aborts_the_running_one() {
    let port = FakePort::start().await;
    let (status, _) = send(&port, "POST", "/v1/integration/jira-cloud/resync", None).await;
    assert_eq!(status, 200);
    let first = port.port.latest_event_id("jira-cloud").unwrap();
    let (_, first_request) = get(&port, "/v1/integration/jira-cloud/resync-request").await;
    let (status, _) = send(
        &port,
        "POST",
        "/v1/integration/jira-cloud/resync",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200);
    let second = port.port.latest_event_id("jira-cloud").unwrap();
    assert_ne!(first, second);
    let (_, second_request) = get(&port, "/v1/integration/jira-cloud/resync-request").await;
    assert_ne!(
        first_request["request"]["id"],
        second_request["request"]["id"]
    );

    let history = port.port.sync_history("jira-cloud");
    let states: Vec<(&str, &str)> = history
        .iter()
        .map(|h| {
            (
                h["eventId"].as_str().unwrap(),
                h["syncState"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (second.as_str(), "syncing"),
            (first.as_str(), "aborted"),
            (JIRA_FAILED_RUN, "failed"),
            (JIRA_GOOD_RUN, "completed")
        ]
    );
    let (_, aborted) = get(
        &port,
        &format!("/v1/integration/{JIRA_ID}/syncMetrics?resyncId={first}"),
    )
    .await;
    assert_eq!(aborted["count"], 4);
    for item in aborted["data"].as_array().unwrap() {
        assert_eq!(item["eventId"], first.as_str());
        assert_eq!(item["syncState"], "aborted");
        assert_eq!(item["metrics"]["phase"]["resync"]["success"], 0.0);
    }
    let logs = logs_of(&port, "jira-cloud", &first).await;
    assert_eq!(logs[0]["level"], "WARNING");
    assert_eq!(
        logs[0]["message"],
        "Resync aborted: a new resync was requested"
    );
    // Finishing ends the newest run only.
    port.port.finish_resync("jira-cloud", "completed");
    assert_eq!(
        port.port.sync_history("jira-cloud")[..2],
        [
            json!({"eventId": second, "syncState": "completed",
                   "createdAt": history[0]["createdAt"],
                   "updatedAt": port.port.sync_history("jira-cloud")[0]["updatedAt"]}),
            history[1].clone()
        ]
    );
}

#[tokio::test]
async fn identifier_routes_answer_404_for_an_unknown_integration() {
    let port = FakePort::start().await;
    let not_found = json!({"ok": false, "error": "not_found",
        "message": "Integration with identifier \"nope\" was not found"});
    for (method, path, body) in [
        ("POST", "/v1/integration/nope/resync", None),
        ("GET", "/v1/integration/nope/resync-request", None),
        ("POST", "/v1/integration/nope/restore", None),
        ("GET", "/v1/integration/nope/kinds", None),
        (
            "PATCH",
            "/v1/integration/nope/resync-state",
            Some(json!({"status": "completed"})),
        ),
        (
            "POST",
            "/v1/integration/nope/kinds/issue/examples",
            Some(json!({"examples": []})),
        ),
    ] {
        assert_eq!(
            send(&port, method, path, body).await,
            (404, not_found.clone()),
            "{method} {path}"
        );
    }
    assert_eq!(
        send(
            &port,
            "POST",
            "/v1/integration/jira-cloud/resync",
            Some(json!([1]))
        )
        .await,
        (
            422,
            json!({"ok": false, "error": "invalid_request", "message": "body must be object"})
        )
    );
    assert_eq!(
        port.port.sync_history("jira-cloud").len(),
        2,
        "a refused resync started nothing"
    );
    // Without a token, the sync routes refuse like the others.
    let response = reqwest::Client::new()
        .post(format!("{}/v1/integration/jira-cloud/resync", port.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test]
async fn metrics_routes_look_up_the_internal_id_only() {
    let port = FakePort::start().await;
    let empty = (200, json!({"ok": true, "count": 0, "data": []}));
    for path in [
        "/v1/integration/jira-cloud/syncMetrics",
        "/v1/integration/jira-cloud/syncsMetadata",
        "/v1/integration/integration_nope/syncMetrics",
        "/v1/integration/integration_nope/syncsMetadata",
        "/v1/integration/integration_3b9d7c42/syncMetrics?resyncId=no-such-run",
    ] {
        assert_eq!(get(&port, path).await, empty, "{path}");
    }
    assert_eq!(
        get(&port, &format!("/v1/integration/{JIRA_ID}/syncsMetadata")).await,
        (
            200,
            json!({"ok": true, "count": 2, "data": [
                {"eventId": JIRA_FAILED_RUN, "syncState": "failed",
                 "createdAt": "2026-11-30T06:00:00.000Z", "updatedAt": "2026-11-30T06:00:52.000Z"},
                {"eventId": JIRA_GOOD_RUN, "syncState": "completed",
                 "createdAt": "2026-11-29T06:00:00.000Z", "updatedAt": "2026-11-29T06:01:04.000Z"}
            ]})
        )
    );
    // The latest run: the failed one, whole.
    let item = |kind_identifier: &str, kind: &str, state: &str, phases: Value, extra: Value| {
        let mut v = json!({
            "integrationType": "jira",
            "integrationIdentifier": "jira-cloud",
            "integrationVersion": "0.4.21",
            "oceanVersion": "0.48.12",
            "kindIdentifier": kind_identifier,
            "kind": kind,
            "eventId": JIRA_FAILED_RUN,
            "syncState": state,
            "metrics": {"phase": phases},
            "createdAt": "2026-11-30T06:00:00.000Z",
            "updatedAt": "2026-11-30T06:00:52.000Z",
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let kind_phases = |success: f64, raw: f64, transformed: f64, failed: f64, loaded: f64| {
        json!({
            "resync": {"duration_seconds": 52.0, "success": success},
            "extract": {"object_count_type": {"raw_extracted": {"object_count": raw}}},
            "transform": {"object_count_type": {
                "transformed": {"object_count": transformed},
                "filtered_out": {"object_count": 0.0},
                "failed": {"object_count": failed}}},
            "load": {"object_count_type": {
                "loaded": {"object_count": loaded},
                "failed": {"object_count": 0.0},
                "skipped": {"object_count": 0.0}}},
            "delete": {"object_count_type": {"deleted": {"object_count": 0.0}}}
        })
    };
    let expected = json!({"ok": true, "count": 4, "data": [
        item("project-0", "project", "completed", kind_phases(1.0, 2.0, 2.0, 0.0, 2.0),
             json!({"kindIndex": 0, "blueprint": "jiraProject"})),
        item("issue-1", "issue", "failed", kind_phases(0.0, 4.0, 0.0, 4.0, 0.0),
             json!({"kindIndex": 1, "blueprint": "jiraIssue"})),
        item("__reconciliation__", "__reconciliation__", "failed", json!({
            "resync": {"duration_seconds": 52.0, "success": 0.0},
            "delete": {"object_count_type": {"deleted": {"object_count": 0.0}}}
        }), json!({})),
        item("__runtime__", "__runtime__", "failed", json!({
            "resync": {"duration_seconds": 52.0, "success": 0.0}
        }), json!({})),
    ]});
    assert_eq!(
        get(&port, &format!("/v1/integration/{JIRA_ID}/syncMetrics")).await,
        (200, expected.clone())
    );
    assert_eq!(
        get(
            &port,
            &format!("/v1/integration/{JIRA_ID}/syncMetrics?resyncId={JIRA_FAILED_RUN}")
        )
        .await,
        (200, expected)
    );
    // With resyncId: that run.
    let (_, good) = get(
        &port,
        &format!("/v1/integration/{JIRA_ID}/syncMetrics?resyncId={JIRA_GOOD_RUN}"),
    )
    .await;
    assert_eq!(good["count"], 4);
    let issue = by_kind(&good, "issue-1");
    assert_eq!(issue["eventId"], JIRA_GOOD_RUN);
    assert_eq!(issue["syncState"], "completed");
    assert_eq!(count_of(issue, "load", "loaded"), 4.0);
    assert_eq!(count_of(issue, "transform", "failed"), 0.0);
    assert_eq!(by_kind(&good, "__runtime__")["syncState"], "completed");
}

#[tokio::test]
async fn kinds_give_raw_examples_and_ocean_can_replace_them() {
    let port = FakePort::start().await;
    let (status, body) = get(&port, "/v1/integration/jira-cloud/kinds").await;
    assert_eq!(status, 200);
    assert_eq!(body["ok"], true);
    let data = body["data"].as_object().unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["issue", "project"]);
    let issues = data["issue"]["examples"].as_array().unwrap();
    let keys: Vec<&str> = issues
        .iter()
        .map(|e| e["data"]["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["PAY-101", "PAY-102", "WEB-7", "WEB-12"]);
    for e in issues {
        assert_eq!(e.as_object().unwrap().len(), 2, "{e}");
        assert!(e["_id"].is_string());
        assert_eq!(
            e["data"]["fields"].get("key"),
            None,
            "Jira's raw issue has no .fields.key"
        );
    }
    assert_eq!(
        data["project"]["examples"][0],
        json!({"_id": "ex_jira_project_1", "data": {
            "id": "10000", "key": "PAY", "name": "Payments", "projectTypeKey": "software",
            "self": "https://acme.atlassian.net/rest/api/3/project/10000",
            "lead": {"displayName": "Dana Cho", "emailAddress": "dana@acme.example"}}})
    );
    for id in ["github-ocean", "pagerduty-prod", "k8s-exporter-eu"] {
        let (_, body) = get(&port, &format!("/v1/integration/{id}/kinds")).await;
        let config = port.port.integration(id).unwrap()["config"].clone();
        for resource in config["resources"].as_array().unwrap() {
            let kind = resource["kind"].as_str().unwrap();
            let n = body["data"][kind]["examples"].as_array().unwrap().len();
            assert!((1..=5).contains(&n), "{id} {kind}: {n}");
        }
    }

    // Ocean's write: at most five examples per kind are kept.
    let sent: Vec<Value> = (0..7).map(|i| json!({"n": i})).collect();
    assert_eq!(
        send(
            &port,
            "POST",
            "/v1/integration/jira-cloud/kinds/epic/examples",
            Some(json!({"examples": sent}))
        )
        .await,
        (200, json!({"ok": true}))
    );
    let (_, body) = get(&port, "/v1/integration/jira-cloud/kinds").await;
    let epics: Vec<Value> = body["data"]["epic"]["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"].clone())
        .collect();
    assert_eq!(epics, sent[..5]);
    assert_eq!(
        send(
            &port,
            "POST",
            "/v1/integration/jira-cloud/kinds/epic/examples",
            Some(json!({"examples": "x"}))
        )
        .await,
        (
            422,
            json!({"ok": false, "error": "invalid_request", "message": "body/examples must be array"})
        )
    );
}

#[tokio::test]
async fn restore_brings_back_the_last_successful_config() {
    let port = FakePort::start().await;
    let broken = port.port.integration("jira-cloud").unwrap()["config"].clone();
    let good = fixed_jira_config(&port);
    assert_ne!(broken, good);
    let (status, _) = send(&port, "POST", "/v1/integration/jira-cloud/restore", None).await;
    assert!((200..300).contains(&status), "{status}");
    let integration = port.port.integration("jira-cloud").unwrap();
    assert_eq!(integration["config"], good);
    assert_eq!(integration["resyncState"]["status"], "running");
    let history = port.port.sync_history("jira-cloud");
    assert_eq!(history.len(), 3);
    assert_eq!(history[0]["syncState"], "syncing");
    let (_, request) = get(&port, "/v1/integration/jira-cloud/resync-request").await;
    assert_eq!(
        request["request"]["updatedAt"],
        integration["resyncState"]["lastResyncStart"]
    );

    // The internal id is accepted too.
    port.port.finish_resync("jira-cloud", "completed");
    let (status, _) = send(
        &port,
        "POST",
        &format!("/v1/integration/{JIRA_ID}/restore"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(port.port.sync_history("jira-cloud").len(), 4);
    assert_eq!(port.port.integration("jira-cloud").unwrap()["config"], good);
}

#[tokio::test]
async fn restore_without_a_successful_run_is_refused() {
    let port = FakePort::start().await;
    let mut fresh = port.port.integration("jira-cloud").unwrap();
    fresh["identifier"] = json!("jira-new");
    fresh["installationId"] = json!("jira-new");
    fresh["_id"] = json!("integration_new");
    port.port.set_integrations(vec![fresh.clone()]);
    assert_eq!(
        send(&port, "POST", "/v1/integration/jira-new/restore", None).await,
        (
            400,
            json!({"ok": false, "error": "no_successful_sync",
                   "message": "Integration \"jira-new\" has no successful resync to restore the mapping from"})
        )
    );
    assert_eq!(port.port.integration("jira-new").unwrap(), fresh);
    assert!(port.port.sync_history("jira-new").is_empty());
    // A run that failed does not count as successful.
    send(&port, "POST", "/v1/integration/jira-new/resync", None).await;
    port.port.finish_resync("jira-new", "failed");
    let (status, body) = send(&port, "POST", "/v1/integration/jira-new/restore", None).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("no_successful_sync"))
    );
    send(&port, "POST", "/v1/integration/jira-new/resync", None).await;
    port.port.finish_resync("jira-new", "completed");
    let (status, _) = send(&port, "POST", "/v1/integration/jira-new/restore", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_trigger_answer_is_configurable() {
    let port = FakePort::serving(
        Sandbox::new(test_auth()).with_trigger_answer(202, json!({"ok": true, "queued": 1})),
    )
    .await;
    assert_eq!(
        send(&port, "POST", "/v1/integration/jira-cloud/resync", None).await,
        (202, json!({"ok": true, "queued": 1}))
    );
    assert_eq!(
        send(&port, "POST", "/v1/integration/jira-cloud/restore", None).await,
        (202, json!({"ok": true, "queued": 1}))
    );
}

#[tokio::test]
async fn resync_state_writes_merge_into_the_record() {
    let port = FakePort::start().await;
    let (status, body) = send(
        &port,
        "PATCH",
        "/v1/integration/github-ocean/resync-state",
        Some(
            json!({"status": "aborted", "lastResyncEnd": "2026-12-01T00:00:00.000Z",
                    "nextResync": null, "intervalInMinuets": 30}),
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["ok"], true);
    let state = &body["integration"]["resyncState"];
    let updated = state["updatedAt"].as_str().unwrap();
    assert_ne!(updated, "2026-11-23T08:03:12.000Z");
    assert_eq!(
        *state,
        json!({"status": "aborted", "lastResyncStart": "2026-11-23T08:00:00.000Z",
               "lastResyncEnd": "2026-12-01T00:00:00.000Z", "nextResync": null,
               "intervalInMinuets": 30, "updatedAt": updated})
    );
    assert_eq!(
        port.port.integration("github-ocean").unwrap()["resyncState"],
        *state
    );
    assert_eq!(
        port.port.sync_history("github-ocean").len(),
        2,
        "Ocean's own state write starts no run"
    );
}

#[tokio::test]
async fn patches_still_start_runs_and_history_keeps_fifty() {
    let port = FakePort::start().await;
    let (status, body) = send(
        &port,
        "PATCH",
        "/v1/integration/pagerduty-prod",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["integration"]["resyncState"]["status"], "running");
    let patched = port.port.latest_event_id("pagerduty-prod").unwrap();
    assert_eq!(
        port.port.sync_history("pagerduty-prod")[0]["eventId"],
        patched.as_str()
    );
    let (_, request) = get(&port, "/v1/integration/pagerduty-prod/resync-request").await;
    assert_eq!(
        request["request"],
        Value::Null,
        "a PATCH writes no resync request"
    );
    for _ in 0..55 {
        send(&port, "POST", "/v1/integration/pagerduty-prod/resync", None).await;
    }
    let (_, history) = get(&port, "/v1/integration/integration_8d3e0b71/syncsMetadata").await;
    assert_eq!(history["count"], 50);
    let data = history["data"].as_array().unwrap();
    assert_eq!(data.len(), 50);
    assert_eq!(data[0]["syncState"], "syncing");
    assert!(data[1..].iter().all(|h| h["syncState"] == "aborted"));
    assert!(
        data.iter()
            .all(|h| h["eventId"] != "evt_pd_6" && h["eventId"] != patched.as_str())
    );
    let ids: std::collections::HashSet<&str> = data
        .iter()
        .map(|h| h["eventId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 50);
}

#[tokio::test]
async fn runs_end_by_themselves_with_auto_resync() {
    let port =
        FakePort::serving(Sandbox::new(test_auth()).with_auto_resync(Duration::from_millis(100)))
            .await;
    send(&port, "POST", "/v1/integration/jira-cloud/resync", None).await;
    let event = port.port.latest_event_id("jira-cloud").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while port.port.sync_history("jira-cloud")[0]["syncState"] == "syncing" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let history = port.port.sync_history("jira-cloud");
    assert_eq!(history[0]["eventId"], event.as_str());
    assert_eq!(
        history[0]["syncState"], "completed",
        "no evaluation: all loaded"
    );
    assert_eq!(
        port.port.integration("jira-cloud").unwrap()["resyncState"]["status"],
        "completed"
    );
}

#[tokio::test]
async fn the_broken_jira_mapping_fails_and_the_fix_loads() {
    let port = FakePort::with_mapping().await;
    let (status, _) = send(&port, "POST", "/v1/integration/jira-cloud/resync", None).await;
    assert_eq!(status, 200);
    let failed_run = port.port.latest_event_id("jira-cloud").unwrap();
    assert_eq!(
        port.port.settle_resync("jira-cloud").await.as_deref(),
        Some("failed")
    );
    let (_, metrics) = get(&port, &format!("/v1/integration/{JIRA_ID}/syncMetrics")).await;
    let issue = by_kind(&metrics, "issue-1");
    assert_eq!(issue["eventId"], failed_run.as_str());
    assert_eq!(issue["syncState"], "failed");
    assert_eq!(
        counts(issue),
        [
            ("delete".into(), "deleted".into(), 0.0),
            ("extract".into(), "raw_extracted".into(), 4.0),
            ("load".into(), "failed".into(), 0.0),
            ("load".into(), "loaded".into(), 0.0),
            ("load".into(), "skipped".into(), 0.0),
            ("transform".into(), "failed".into(), 4.0),
            ("transform".into(), "filtered_out".into(), 0.0),
            ("transform".into(), "transformed".into(), 0.0),
        ]
    );
    let project = by_kind(&metrics, "project-0");
    assert_eq!(project["syncState"], "completed");
    assert_eq!(count_of(project, "load", "loaded"), 2.0);
    assert_eq!(by_kind(&metrics, "__runtime__")["syncState"], "failed");
    assert_eq!(
        by_kind(&metrics, "__runtime__")["metrics"]["phase"]["resync"]["success"],
        0.0
    );
    assert_eq!(
        port.port.integration("jira-cloud").unwrap()["resyncState"]["status"],
        "failed"
    );
    let (_, errors) = get(
        &port,
        &format!("/v1/integration/jira-cloud/logs?levels=ERROR&event_id={failed_run}&kinds=issue&etl_phases=transform"),
    )
    .await;
    let messages: Vec<&str> = errors["data"]["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 4, "{messages:#?}");
    for n in 1..=4 {
        assert!(
            messages.contains(&format!(
                "Item ex_jira_issue_{n} of kind `issue` (resource 1) was not loaded: identifier \
                 is null (`.fields.key`: gave null: Port's framework skips this entity)"
            ).as_str()),
            "{messages:#?}"
        );
    }
    let (_, summary) = get(
        &port,
        &format!(
            "/v1/integration/jira-cloud/logs?levels=ERROR&event_id={failed_run}&kinds=issue&etl_phases=load"
        ),
    )
    .await;
    let summary = summary["data"]["logs"].as_array().unwrap();
    assert_eq!(summary.len(), 1, "{summary:#?}");
    assert_eq!(
        summary[0]["message"],
        "Resync failed: 4 objects failed (issue); 2 entities upserted"
    );
    assert_eq!(
        summary[0]["extra"],
        json!({"kind": "issue", "etl_phase": "load", "event_id": failed_run})
    );

    // The fix: PATCH the config with `.key` (that starts a run too), then resync.
    let (status, _) = send(
        &port,
        "PATCH",
        "/v1/integration/jira-cloud/config",
        Some(json!({"config": fixed_jira_config(&port)})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(&port, "POST", "/v1/integration/jira-cloud/resync", None).await;
    assert_eq!(status, 200);
    let fixed_run = port.port.latest_event_id("jira-cloud").unwrap();
    assert_eq!(
        port.port.settle_resync("jira-cloud").await.as_deref(),
        Some("completed")
    );
    let (_, metrics) = get(&port, &format!("/v1/integration/{JIRA_ID}/syncMetrics")).await;
    let issue = by_kind(&metrics, "issue-1");
    assert_eq!(issue["eventId"], fixed_run.as_str());
    assert_eq!(issue["syncState"], "completed");
    assert_eq!(count_of(issue, "load", "loaded"), 4.0);
    assert_eq!(count_of(issue, "transform", "transformed"), 4.0);
    assert_eq!(count_of(issue, "transform", "failed"), 0.0);
    assert_eq!(count_of(issue, "load", "failed"), 0.0);
    assert_eq!(
        by_kind(&metrics, "__runtime__")["metrics"]["phase"]["resync"]["success"],
        1.0
    );
    let states: Vec<String> = port.port.sync_history("jira-cloud")[..3]
        .iter()
        .map(|h| h["syncState"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, ["completed", "aborted", "failed"]);
    assert!(
        logs_of(&port, "jira-cloud", &fixed_run)
            .await
            .iter()
            .all(|l| l["level"] == "INFO")
    );
}

#[tokio::test]
async fn selectors_filter_and_a_broken_worker_fails_the_run() {
    let port = FakePort::with_mapping().await;
    send(&port, "POST", "/v1/integration/github-ocean/resync", None).await;
    assert_eq!(
        port.port.settle_resync("github-ocean").await.as_deref(),
        Some("completed")
    );
    let (_, metrics) = get(&port, &format!("/v1/integration/{GH_ID}/syncMetrics")).await;
    let prs = by_kind(&metrics, "pull-request-1");
    assert_eq!(count_of(prs, "extract", "raw_extracted"), 3.0);
    assert_eq!(
        count_of(prs, "transform", "filtered_out"),
        1.0,
        "the closed PR"
    );
    assert_eq!(count_of(prs, "load", "loaded"), 2.0);

    let broken = FakePort::serving(Sandbox::new(test_auth()).with_mapping(
        port_integrations_mcp::mapping::MappingLimits {
            preview_worker: Some("/nonexistent/port-integrations-mcp".into()),
            ..Default::default()
        },
    ))
    .await;
    send(
        &broken,
        "POST",
        "/v1/integration/pagerduty-prod/resync",
        None,
    )
    .await;
    let event = broken.port.latest_event_id("pagerduty-prod").unwrap();
    assert_eq!(
        broken.port.settle_resync("pagerduty-prod").await.as_deref(),
        Some("failed")
    );
    let errors: Vec<String> = logs_of(&broken, "pagerduty-prod", &event)
        .await
        .iter()
        .filter(|l| l["level"] == "ERROR")
        .map(|l| l["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        errors[1].starts_with(
            "The mapping of kind `services` could not be evaluated: the preview could not run: \
             cannot start /nonexistent/port-integrations-mcp"
        ),
        "{errors:#?}"
    );
}
