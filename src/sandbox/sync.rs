//! Resync runs of the in-memory Port: what Port keeps about each integration's syncs (runs,
//! resync request, kind examples, event logs, the last good config), which `sync_api` serves.
//!
//! A run stands in for the exporter: it applies the config the integration had when the run
//! started to the integration's raw-data examples, so a broken mapping fails and a fixed one
//! loads. The jq runs in the preview worker process (bounded in time, memory and output) when
//! the sandbox was given mapping limits; without them every example counts as loaded, which is
//! all most tests need. A run ends by itself after the auto-resync delay, or when a test says so.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    time::Instant,
};

use serde_json::{Value, json};

use super::{Org, Sandbox, find, iso_millis, now, now_millis};
use crate::mapping::{
    JqSlots, MappingLimits,
    worker::{self, Job},
};

/// Port keeps the 50 most recent resyncs (syncsMetadata, §4).
pub const MAX_RUNS: usize = 50;
/// Ocean sends at most five examples per kind (§7).
pub const MAX_EXAMPLES: usize = 5;
/// Kinds with examples kept per integration.
pub const MAX_KINDS: usize = 100;
/// Event logs kept per integration (the oldest are dropped).
const MAX_LOGS: usize = 500;
/// Resources of a config that a run looks at.
pub const MAX_RESOURCES: usize = 100;
/// ERROR lines a run writes per kind; the rest are summed up in one line.
const MAX_FAILURE_LOGS: usize = 20;
/// The Ocean version the sandbox's exporters report.
pub const OCEAN_VERSION: &str = "0.48.12";

/// Run states, as Ocean names them (§3).
pub const SYNCING: &str = "syncing";
/// See [`SYNCING`].
pub const COMPLETED: &str = "completed";
/// See [`SYNCING`].
pub const FAILED: &str = "failed";
/// See [`SYNCING`].
pub const ABORTED: &str = "aborted";

/// The jq bounds a sandbox evaluates mappings under, and its worker slots.
#[derive(Debug)]
pub struct Mapping {
    pub limits: MappingLimits,
    pub slots: JqSlots,
}

/// One resource's object counts in a run, per Ocean's phases.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub raw: f64,
    pub transformed: f64,
    pub filtered_out: f64,
    pub transform_failed: f64,
    pub loaded: f64,
    pub load_failed: f64,
    pub skipped: f64,
}

impl Counts {
    /// `raw` objects, of which `filtered` were filtered out, `failed` failed to transform and
    /// `skipped` were skipped at load; the rest transformed and loaded.
    pub fn new(raw: f64, filtered: f64, failed: f64, skipped: f64) -> Self {
        let transformed = (raw - filtered - failed).max(0.0);
        Counts {
            raw,
            transformed,
            filtered_out: filtered,
            transform_failed: failed,
            loaded: (transformed - skipped).max(0.0),
            load_failed: 0.0,
            skipped,
        }
    }

    /// Objects that failed in any phase.
    pub fn failed(&self) -> f64 {
        self.transform_failed + self.load_failed
    }
}

/// An ERROR line a run writes when it ends.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: String,
    pub phase: &'static str,
    pub message: String,
}

/// What applying a config to the examples gave, per resource index.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub counts: BTreeMap<usize, Counts>,
    pub failures: Vec<Failure>,
    /// The mapping could not be evaluated at all (worker stopped, config refused).
    pub fatal: bool,
}

impl Outcome {
    fn failed(&self) -> bool {
        self.fatal || self.counts.values().any(|c| c.failed() > 0.0)
    }
}

/// One resync.
#[derive(Debug)]
pub struct Run {
    pub event_id: String,
    pub state: String,
    pub created_at: String,
    pub updated_at: String,
    /// The config the run applied (the integration's config when it started).
    pub config: Value,
    pub duration: f64,
    pub started: Option<Instant>,
    /// Set once the config was applied; shown only after the run ended.
    pub outcome: Option<Outcome>,
    pub deleted: f64,
}

/// What Port keeps about one integration's syncs.
#[derive(Debug, Default)]
pub struct SyncData {
    /// Newest first, at most [`MAX_RUNS`].
    pub runs: VecDeque<Run>,
    /// The last resync request: `{id, updatedAt}`.
    pub request: Option<Value>,
    /// Raw examples per kind: `[{_id, data}]`, at most [`MAX_EXAMPLES`] each.
    pub examples: BTreeMap<String, Vec<Value>>,
    /// Event logs, newest first, at most [`MAX_LOGS`].
    pub logs: VecDeque<Value>,
    /// The config of the last run that completed: what restore brings back.
    pub last_good_config: Option<Value>,
}

impl SyncData {
    /// Adds a log line (newest first), dropping the oldest past the bound.
    pub fn log(
        &mut self,
        id: String,
        level: &str,
        message: String,
        kind: Option<&str>,
        phase: &str,
        event_id: &str,
    ) {
        let mut extra = json!({"etl_phase": phase, "event_id": event_id});
        if let Some(kind) = kind {
            extra["kind"] = json!(kind);
        }
        self.logs.push_front(json!({
            "_id": id,
            "timestamp": now(),
            "level": level,
            "message": message,
            "extra": extra,
        }));
        self.logs.truncate(MAX_LOGS);
    }
}

/// A uuid4-shaped id (Ocean's eventIds are uuid4), unique within the process.
pub fn uuid_like(n: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let a = mix(nanos ^ n.rotate_left(32));
    let b = mix(a ^ n);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// `(index, kind)` of each resource of a config, bounded.
pub fn resources(config: &Value) -> Vec<(usize, String)> {
    config["resources"]
        .as_array()
        .map(|r| {
            r.iter()
                .take(MAX_RESOURCES)
                .enumerate()
                .map(|(i, r)| (i, r["kind"].as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The blueprint a resource maps to, when its mapping names it as a literal.
pub fn blueprint(resource: &Value) -> Option<String> {
    let mappings = &resource["port"]["entity"]["mappings"];
    let mapping = match mappings {
        Value::Array(list) => list.first()?,
        other => other,
    };
    let text = mapping["blueprint"].as_str()?.trim();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('"')).then(|| inner.to_string())
}

/// Every example counted as extracted, transformed and loaded (no evaluation).
fn plain_outcome(config: &Value, examples: &BTreeMap<String, Vec<Value>>) -> Outcome {
    let counts = resources(config)
        .into_iter()
        .map(|(i, kind)| {
            let n = examples.get(&kind).map_or(0, Vec::len) as f64;
            (i, Counts::new(n, 0.0, 0.0, 0.0))
        })
        .collect();
    Outcome {
        counts,
        ..Outcome::default()
    }
}

/// Applies `config` to the examples in the preview worker, one worker per kind.
/// Stops early, with what it has, once `running()` says the run ended (a newer one aborted it),
/// so back-to-back resyncs cost one evaluation at a time per integration.
async fn evaluate(
    mapping: &Mapping,
    config: &Value,
    examples: &BTreeMap<String, Vec<Value>>,
    running: impl Fn() -> bool,
) -> Outcome {
    let resources = resources(config);
    let mut outcome = Outcome::default();
    let kinds: BTreeSet<&str> = resources.iter().map(|(_, k)| k.as_str()).collect();
    for kind in kinds {
        if !running() {
            break;
        }
        let list = examples.get(kind).map(Vec::as_slice).unwrap_or(&[]);
        let ids: Vec<String> = list
            .iter()
            .map(|e| e["_id"].as_str().unwrap_or("?").to_string())
            .collect();
        let items: Vec<Value> = list.iter().map(|e| e["data"].clone()).collect();
        let indices: Vec<usize> = resources
            .iter()
            .filter(|(_, k)| k == kind)
            .map(|(i, _)| *i)
            .collect();
        for i in &indices {
            outcome.counts.insert(
                *i,
                Counts {
                    raw: items.len() as f64,
                    ..Counts::default()
                },
            );
        }
        if items.is_empty() {
            continue;
        }
        let n = items.len() as f64;
        let job = Job {
            config: config.clone(),
            kind: Some(kind.to_string()),
            items,
            max_expression_bytes: mapping.limits.max_expression_bytes,
            max_depth: mapping.limits.max_depth,
        };
        match worker::run(&job, &mapping.limits, &mapping.slots).await {
            Ok(preview) => tally(&preview, config, kind, &ids, &mut outcome),
            Err(e) => {
                for i in &indices {
                    if let Some(c) = outcome.counts.get_mut(i) {
                        c.transform_failed = n;
                    }
                }
                outcome.fatal = true;
                outcome.failures.push(Failure {
                    kind: kind.to_string(),
                    phase: "transform",
                    message: format!("The mapping of kind `{kind}` could not be evaluated: {e}"),
                });
            }
        }
    }
    outcome
}

/// Counts a preview's results (see `mapping::preview`) into the outcome.
fn tally(preview: &Value, config: &Value, kind: &str, ids: &[String], outcome: &mut Outcome) {
    let mut written = 0usize;
    let mut unwritten = 0usize;
    let mut note = |outcome: &mut Outcome, message: String| {
        if written < MAX_FAILURE_LOGS {
            written += 1;
            outcome.failures.push(Failure {
                kind: kind.to_string(),
                phase: "transform",
                message,
            });
        } else {
            unwritten += 1;
        }
    };
    for result in preview["results"].as_array().into_iter().flatten() {
        let Some(r) = result["resource"].as_u64().map(|r| r as usize) else {
            continue;
        };
        let item = result["item"]
            .as_u64()
            .and_then(|i| ids.get(i as usize))
            .map_or("?", String::as_str);
        let resource = &config["resources"][r];
        let mut counts = outcome.counts.get(&r).copied().unwrap_or_default();
        if let Some(error) = result.get("selectorError") {
            counts.transform_failed += 1.0;
            note(
                outcome,
                format!(
                    "Item {item} of kind `{kind}` (resource {r}) failed: selector query `{}` \
                     failed: {}",
                    resource["selector"]["query"].as_str().unwrap_or("true"),
                    text(error)
                ),
            );
        } else if result["kept"] != json!(true) {
            counts.filtered_out += 1.0;
        } else {
            for entity in result["entities"].as_array().into_iter().flatten() {
                match entity_failure(entity, resource) {
                    None => {
                        counts.transformed += 1.0;
                        counts.loaded += 1.0;
                    }
                    Some(reason) => {
                        counts.transform_failed += 1.0;
                        note(
                            outcome,
                            format!(
                                "Item {item} of kind `{kind}` (resource {r}) was not loaded: \
                                 {reason}"
                            ),
                        );
                    }
                }
            }
        }
        outcome.counts.insert(r, counts);
    }
    if unwritten > 0 {
        outcome.failures.push(Failure {
            kind: kind.to_string(),
            phase: "transform",
            message: format!("{unwritten} more items of kind `{kind}` failed the same way"),
        });
    }
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// Why a mapped entity cannot be loaded: an expression failed, or the identifier is not a
/// string (Port's framework skips such entities).
fn entity_failure(entity: &Value, resource: &Value) -> Option<String> {
    let mappings = &resource["port"]["entity"]["mappings"];
    let expression = match mappings {
        Value::Array(list) => list.first().map(|m| &m["identifier"]),
        other => Some(&other["identifier"]),
    }
    .map(text)
    .unwrap_or_default();
    let mut reasons: Vec<String> = Vec::new();
    let errors = entity["errors"].as_object();
    match &entity["identifier"] {
        Value::String(_) | Value::Object(_) => {}
        Value::Null => reasons.push(format!(
            "identifier is null (`{expression}`: {})",
            errors
                .and_then(|e| e.get("identifier"))
                .map_or_else(|| "gave null".into(), text)
        )),
        other => reasons.push(format!(
            "identifier `{expression}` gave {other}, not a string"
        )),
    }
    for (field, error) in errors.into_iter().flatten() {
        if field != "identifier" {
            reasons.push(format!("{field}: {}", text(error)));
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// Starts a run of the integration at `idx`: aborts a running one, records a resync request
/// when asked (POST /resync, restore), sets the resync state to running, and hands the
/// evaluation (and, with auto-resync, the ending) to a task.
pub fn start_run(sandbox: &Sandbox, org: &mut Org, idx: usize, request: bool) -> String {
    let Some(integration) = org.integrations.get(idx) else {
        return String::new();
    };
    let identifier = integration["identifier"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let config = integration["config"].clone();
    let stamp = now();
    let event_id = uuid_like(sandbox.next_id());
    let (abort_log, start_log) = (sandbox.next_id(), sandbox.next_id());
    let request_id = request.then(|| uuid_like(sandbox.next_id()));
    let data = org.sync.entry(identifier.clone()).or_default();
    if let Some(run) = data.runs.front_mut().filter(|r| r.state == SYNCING) {
        run.state = ABORTED.into();
        run.updated_at = stamp.clone();
        run.duration = run.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        let old = run.event_id.clone();
        data.log(
            format!("log_{abort_log}"),
            "WARNING",
            "Resync aborted: a new resync was requested".into(),
            None,
            "load",
            &old,
        );
    }
    if let Some(id) = request_id {
        data.request = Some(json!({"id": id, "updatedAt": stamp}));
    }
    let outcome = sandbox
        .mapping
        .is_none()
        .then(|| plain_outcome(&config, &data.examples));
    // The worker gets copies of the examples of the config's kinds only, taken now: the run
    // applies what was there when it started.
    let examples: BTreeMap<String, Vec<Value>> = match sandbox.mapping {
        Some(_) => {
            let kinds: BTreeSet<String> = resources(&config).into_iter().map(|(_, k)| k).collect();
            data.examples
                .iter()
                .filter(|(k, _)| kinds.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }
        None => BTreeMap::new(),
    };
    data.runs.push_front(Run {
        event_id: event_id.clone(),
        state: SYNCING.into(),
        created_at: stamp.clone(),
        updated_at: stamp.clone(),
        config: config.clone(),
        duration: 0.0,
        started: Some(Instant::now()),
        outcome,
        deleted: 0.0,
    });
    data.runs.truncate(MAX_RUNS);
    data.log(
        format!("log_{start_log}"),
        "INFO",
        "Resync started".into(),
        None,
        "extract",
        &event_id,
    );
    if let Some(integration) = org.integrations.get_mut(idx) {
        let interval = integration["resyncState"]["intervalInMinuets"].clone();
        // Ocean writes the next scheduled resync when it has an interval (§5).
        let next = interval
            .as_u64()
            .filter(|m| *m > 0)
            .and_then(|m| i64::try_from(m).ok())
            .map(|m| iso_millis(now_millis().saturating_add(m.saturating_mul(60_000))));
        integration["resyncState"] = json!({
            "status": "running",
            "lastResyncStart": stamp,
            "lastResyncEnd": null,
            "nextResync": next,
            "intervalInMinuets": interval,
            "updatedAt": stamp,
        });
    }
    if sandbox.mapping.is_some() || sandbox.auto_resync.is_some() {
        let (sandbox, event) = (sandbox.clone(), event_id.clone());
        tokio::spawn(async move {
            if let Some(mapping) = &sandbox.mapping {
                let running = || {
                    sandbox.org().sync.get(&identifier).is_some_and(|d| {
                        d.runs
                            .iter()
                            .any(|r| r.event_id == event && r.state == SYNCING)
                    })
                };
                let outcome = evaluate(mapping, &config, &examples, running).await;
                let mut org = sandbox.org();
                if let Some(run) = org
                    .sync
                    .get_mut(&identifier)
                    .and_then(|d| d.runs.iter_mut().find(|r| r.event_id == event))
                    .filter(|r| r.state == SYNCING)
                {
                    run.outcome = Some(outcome);
                }
            }
            if let Some(after) = sandbox.auto_resync {
                tokio::time::sleep(after).await;
                finish_run(&sandbox, &identifier, Some(&event), None);
            }
        });
    }
    event_id
}

/// Ends a running run (the given one, or the newest) with `status`, or with what its outcome
/// says; writes its logs and the integration's resync state. Returns the status, or None when
/// no such run is running.
pub fn finish_run(
    sandbox: &Sandbox,
    identifier: &str,
    event_id: Option<&str>,
    status: Option<&str>,
) -> Option<String> {
    let mut org = sandbox.org();
    let idx = find(&org.integrations, identifier)?;
    let data = org.sync.get_mut(identifier)?;
    let run = match event_id {
        Some(e) => data.runs.iter_mut().find(|r| r.event_id == e)?,
        None => data.runs.front_mut()?,
    };
    if run.state != SYNCING {
        return None;
    }
    let stamp = now();
    let outcome = run.outcome.clone().unwrap_or_default();
    let status = status
        .map(str::to_string)
        .unwrap_or_else(|| if outcome.failed() { FAILED } else { COMPLETED }.into());
    run.state = status.clone();
    run.updated_at = stamp.clone();
    run.duration = run.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    run.outcome = Some(outcome.clone());
    let event = run.event_id.clone();
    let config = run.config.clone();
    let mut logs: Vec<(&str, String, Option<String>, &str)> = Vec::new();
    if status != ABORTED {
        for f in &outcome.failures {
            logs.push(("ERROR", f.message.clone(), Some(f.kind.clone()), f.phase));
        }
    }
    let loaded: f64 = outcome.counts.values().map(|c| c.loaded).sum();
    let failed: f64 = outcome.counts.values().map(Counts::failed).sum();
    let failed_kinds: BTreeSet<&str> = outcome.failures.iter().map(|f| f.kind.as_str()).collect();
    let (level, message) = match status.as_str() {
        COMPLETED => (
            "INFO",
            format!("Resync finished successfully: {loaded} entities upserted"),
        ),
        ABORTED => ("WARNING", "Resync aborted".to_string()),
        _ if failed > 0.0 => (
            "ERROR",
            format!(
                "Resync failed: {failed} objects failed ({}); {loaded} entities upserted",
                failed_kinds.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        ),
        other => ("ERROR", format!("Resync ended: {other}")),
    };
    // A failure of one kind is filed under that kind, so a kind filter finds its summary too.
    let summary_kind = match (level, failed_kinds.len()) {
        ("ERROR", 1) => failed_kinds.first().map(|k| k.to_string()),
        _ => None,
    };
    logs.push((level, message, summary_kind, "load"));
    for (level, message, kind, phase) in logs {
        data.log(
            format!("log_{}", sandbox.next_id()),
            level,
            message,
            kind.as_deref(),
            phase,
            &event,
        );
    }
    if status == COMPLETED {
        data.last_good_config = Some(config);
    }
    if let Some(integration) = org.integrations.get_mut(idx) {
        let state = &mut integration["resyncState"];
        state["status"] = json!(status);
        state["lastResyncEnd"] = json!(stamp);
        state["updatedAt"] = json!(stamp);
    }
    Some(status)
}

/// Every integration's sync data, seeded.
pub fn seeded(integrations: &[Value]) -> HashMap<String, SyncData> {
    integrations
        .iter()
        .filter_map(|i| {
            let id = i["identifier"].as_str()?;
            Some((id.to_string(), super::seed::sync_data(id, &i["config"])))
        })
        .collect()
}
