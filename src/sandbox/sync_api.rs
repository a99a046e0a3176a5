//! Port's sync routes as the sandbox serves them (`port-sync-api.md` §1–5, §7): POST resync
//! and restore, the resync request Ocean polls, syncMetrics and syncsMetadata (looked up by the
//! internal `_id` only, 200 with empty data when nothing matches), the kind examples, and
//! Ocean's resync-state write. The runs behind them are `sync`'s.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{
    Org, Sandbox, fail, find, invalid, not_found, now,
    sync::{
        ABORTED, COMPLETED, FAILED, MAX_EXAMPLES, MAX_KINDS, OCEAN_VERSION, Run, SYNCING,
        blueprint, resources, start_run,
    },
};

/// Largest example kept, serialized.
const MAX_EXAMPLE_BYTES: usize = 64 * 1024;

/// One run as a syncsMetadata item.
pub fn metadata(run: &Run) -> Value {
    json!({
        "eventId": run.event_id,
        "syncState": run.state,
        "createdAt": run.created_at,
        "updatedAt": run.updated_at,
    })
}

fn count(n: f64) -> Value {
    json!({ "object_count": n })
}

/// One run as syncMetrics items: each resource, then `__reconciliation__` and `__runtime__`.
pub fn metrics(integration: &Value, run: &Run) -> Vec<Value> {
    let finished = run.state != SYNCING && run.state != ABORTED;
    let outcome = run.outcome.as_ref().filter(|_| finished);
    let any_kind_failed = outcome.is_some_and(|o| o.counts.values().any(|c| c.failed() > 0.0));
    let base = |kind_identifier: String, kind: &str, state: &str, metrics: Value| {
        json!({
            "integrationType": integration["installationAppType"].as_str()
                .or(integration["integrationType"].as_str()).unwrap_or(""),
            "integrationIdentifier": integration["identifier"],
            "integrationVersion": integration["version"].as_str().unwrap_or(""),
            "oceanVersion": OCEAN_VERSION,
            "kindIdentifier": kind_identifier,
            "kind": kind,
            "eventId": run.event_id,
            "syncState": state,
            "metrics": {"phase": metrics},
            "createdAt": run.created_at,
            "updatedAt": run.updated_at,
        })
    };
    let success = |state: &str| if state == COMPLETED { 1.0 } else { 0.0 };
    let resync = |state: &str| json!({"duration_seconds": run.duration, "success": success(state)});
    let mut items = Vec::new();
    for (i, kind) in resources(&run.config) {
        let c = outcome
            .and_then(|o| o.counts.get(&i))
            .copied()
            .unwrap_or_default();
        let state = match run.state.as_str() {
            FAILED if any_kind_failed && c.failed() == 0.0 => COMPLETED,
            other => other,
        };
        let mut item = base(
            format!("{kind}-{i}"),
            &kind,
            state,
            json!({
                "resync": resync(state),
                "extract": {"object_count_type": {"raw_extracted": count(c.raw)}},
                "transform": {"object_count_type": {
                    "transformed": count(c.transformed),
                    "filtered_out": count(c.filtered_out),
                    "failed": count(c.transform_failed),
                }},
                "load": {"object_count_type": {
                    "loaded": count(c.loaded),
                    "failed": count(c.load_failed),
                    "skipped": count(c.skipped),
                }},
                "delete": {"object_count_type": {"deleted": count(0.0)}},
            }),
        );
        item["kindIndex"] = json!(i);
        if let Some(b) = blueprint(&run.config["resources"][i]) {
            item["blueprint"] = json!(b);
        }
        items.push(item);
    }
    let state = run.state.as_str();
    let deleted = if finished { run.deleted } else { 0.0 };
    items.push(base(
        "__reconciliation__".into(),
        "__reconciliation__",
        state,
        json!({
            "resync": resync(state),
            "delete": {"object_count_type": {"deleted": count(deleted)}},
        }),
    ));
    items.push(base(
        "__runtime__".into(),
        "__runtime__",
        state,
        json!({ "resync": resync(state) }),
    ));
    items
}

fn empty() -> (StatusCode, Value) {
    (StatusCode::OK, json!({"ok": true, "count": 0, "data": []}))
}

fn listing(data: Vec<Value>) -> (StatusCode, Value) {
    (
        StatusCode::OK,
        json!({"ok": true, "count": data.len(), "data": data}),
    )
}

/// The integration whose `_id` is `id` (the metrics routes take the internal id only).
fn by_internal_id(org: &Org, id: &str) -> Option<usize> {
    org.integrations
        .iter()
        .position(|i| i["_id"].as_str() == Some(id))
}

/// Which sync route a request is for; `None` when it is not one.
pub fn route(
    sandbox: &Sandbox,
    org: &mut Org,
    method: &str,
    segs: &[&str],
    query: &[(String, String)],
    body: &[u8],
) -> Option<(StatusCode, Value)> {
    let ["v1", "integration", id, rest @ ..] = segs else {
        return None;
    };
    let id = *id;
    Some(match (method, rest) {
        ("POST", ["resync"]) => {
            let Some(idx) = find(&org.integrations, id) else {
                return Some(not_found(id));
            };
            if let Err(refusal) = object_or_empty(body) {
                return Some(refusal);
            }
            start_run(sandbox, org, idx, true);
            sandbox.trigger_answer.clone()
        }
        ("GET", ["resync-request"]) => {
            if find(&org.integrations, id).is_none() {
                return Some(not_found(id));
            }
            let request = org.sync.get(id).and_then(|d| d.request.clone());
            (StatusCode::OK, json!({"ok": true, "request": request}))
        }
        ("POST", ["restore"]) => {
            let Some(idx) = find(&org.integrations, id).or_else(|| by_internal_id(org, id)) else {
                return Some(not_found(id));
            };
            if let Err(refusal) = object_or_empty(body) {
                return Some(refusal);
            }
            let identifier = org.integrations[idx]["identifier"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let Some(config) = org
                .sync
                .get(&identifier)
                .and_then(|d| d.last_good_config.clone())
            else {
                return Some(fail(
                    StatusCode::BAD_REQUEST,
                    "no_successful_sync",
                    format!(
                        "Integration \"{identifier}\" has no successful resync to restore the \
                         mapping from"
                    ),
                ));
            };
            if let Some(integration) = org.integrations.get_mut(idx) {
                integration["config"] = config;
                integration["updatedAt"] = json!(now());
            }
            start_run(sandbox, org, idx, true);
            sandbox.trigger_answer.clone()
        }
        ("GET", ["syncMetrics"]) => {
            let Some(idx) = by_internal_id(org, id) else {
                return Some(empty());
            };
            let integration = &org.integrations[idx];
            let identifier = integration["identifier"].as_str().unwrap_or_default();
            let Some(data) = org.sync.get(identifier) else {
                return Some(empty());
            };
            let wanted = query
                .iter()
                .find(|(k, _)| k == "resyncId")
                .map(|(_, v)| v.as_str());
            let run = match wanted {
                Some(e) => data.runs.iter().find(|r| r.event_id == e),
                None => data.runs.front(),
            };
            match run {
                Some(run) => listing(metrics(integration, run)),
                None => empty(),
            }
        }
        ("GET", ["syncsMetadata"]) => {
            let data = by_internal_id(org, id)
                .and_then(|idx| org.integrations[idx]["identifier"].as_str())
                .and_then(|identifier| org.sync.get(identifier))
                .map(|d| d.runs.iter().map(metadata).collect())
                .unwrap_or_default();
            listing(data)
        }
        ("GET", ["kinds"]) => {
            if find(&org.integrations, id).is_none() {
                return Some(not_found(id));
            }
            let kinds: Map<String, Value> = org
                .sync
                .get(id)
                .map(|d| {
                    d.examples
                        .iter()
                        .filter(|(_, e)| !e.is_empty())
                        .map(|(k, e)| (k.clone(), json!({ "examples": e })))
                        .collect()
                })
                .unwrap_or_default();
            (StatusCode::OK, json!({"ok": true, "data": kinds}))
        }
        ("POST", ["kinds", kind, "examples"]) => {
            if find(&org.integrations, id).is_none() {
                return Some(not_found(id));
            }
            let examples = match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(mut o)) => match o.remove("examples") {
                    Some(Value::Array(list)) => list,
                    _ => return Some(invalid("body/examples must be array")),
                },
                _ => return Some(invalid("body must be object")),
            };
            let ids: Vec<u64> = examples
                .iter()
                .take(MAX_EXAMPLES)
                .map(|_| sandbox.next_id())
                .collect();
            let data = org.sync.entry(id.to_string()).or_default();
            if !data.examples.contains_key(*kind) && data.examples.len() >= MAX_KINDS {
                return Some(invalid("too many kinds with examples"));
            }
            let kept: Vec<Value> = examples
                .into_iter()
                .filter(|e| e.to_string().len() <= MAX_EXAMPLE_BYTES)
                .take(MAX_EXAMPLES)
                .zip(ids)
                .map(|(e, n)| json!({"_id": format!("example_{n}"), "data": e}))
                .collect();
            data.examples.insert(kind.to_string(), kept);
            (StatusCode::OK, json!({"ok": true}))
        }
        ("PATCH", ["resync-state"]) => {
            let Some(idx) = find(&org.integrations, id) else {
                return Some(not_found(id));
            };
            let patch = match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(o)) => o,
                _ => return Some(invalid("body must be object")),
            };
            let integration = &mut org.integrations[idx];
            if !integration["resyncState"].is_object() {
                integration["resyncState"] = json!({});
            }
            let state = &mut integration["resyncState"];
            for (k, v) in patch {
                state[k.as_str()] = v;
            }
            state["updatedAt"] = json!(now());
            (
                StatusCode::OK,
                json!({"ok": true, "integration": integration}),
            )
        }
        _ => return None,
    })
}

/// Port documents no body for resync and restore: none, or a JSON object, is accepted.
fn object_or_empty(body: &[u8]) -> Result<(), (StatusCode, Value)> {
    if body.is_empty() {
        return Ok(());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(_)) => Ok(()),
        _ => Err(invalid("body must be object")),
    }
}
