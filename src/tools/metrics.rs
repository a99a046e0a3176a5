//! Port's sync metrics and sync history, read into what a model can act on.
//!
//! `GET /v1/integration/{_id}/syncMetrics` reports one item per kind of one run, with object
//! counts per phase as Prometheus gauges (floats); `syncsMetadata` lists recent runs. Both come
//! from outside: counts are clamped into safe integers (never a panic, never a wrapped value),
//! missing fields stay missing, lists are bounded, and the history is sorted here because
//! Port does not document its order.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use serde::Serialize;
use serde_json::{Value, json};

/// Most kinds reported from one run (Ocean integrations have a handful).
pub const MAX_KINDS: usize = 200;
/// Most runs reported from the history (Port keeps 4 days, or the 50 most recent).
pub const MAX_RUNS: usize = 50;
/// The largest count reported: JavaScript clients read JSON numbers as doubles, exact up to here.
pub const MAX_COUNT: u64 = (1 << 53) - 1;
/// The longest duration reported, in seconds (ten years): beyond it a value is nonsense.
const MAX_SECONDS: f64 = 315_360_000.0;

/// The count types Ocean reports, in pipeline order.
pub const COUNT_TYPES: [&str; 7] = [
    "raw_extracted",
    "transformed",
    "filtered_out",
    "loaded",
    "failed",
    "skipped",
    "deleted",
];

/// The phases whose counts are summed per count type (`failed` is reported by several).
const PHASES: [&str; 4] = ["extract", "transform", "load", "delete"];

/// One kind of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindSummary {
    /// The kind, e.g. `issue` (or a pseudo-kind: `__runtime__`, `__reconciliation__`).
    pub kind: String,
    /// `<kind>-<index of its resource in the mapping>`.
    #[serde(rename = "kindIdentifier")]
    pub kind_identifier: String,
    /// The blueprint its entities go to, when Port says.
    pub blueprint: Option<String>,
    /// The kind's sync state (`pending`, `syncing`, `completed`, `failed`, `aborted`).
    pub state: String,
    /// Raw objects the exporter fetched.
    pub raw_extracted: u64,
    /// Objects the mapping turned into entities.
    pub transformed: u64,
    /// Objects the selector query dropped.
    pub filtered_out: u64,
    /// Entities Port accepted.
    pub loaded: u64,
    /// Objects that failed, in any phase.
    pub failed: u64,
    /// Entities left unchanged.
    pub skipped: u64,
    /// Entities deleted.
    pub deleted: u64,
    /// How long the kind took.
    pub duration_seconds: Option<f64>,
    /// Whether the kind succeeded.
    pub success: Option<bool>,
    /// The counts per phase (`extract`, `transform`, `load`, `delete`) and count type, as
    /// Port reported them: only the phases and count types it sent. The totals above sum them
    /// (`failed` can come from several phases).
    pub phases: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
}

/// One run's metrics, as Port reported them.
#[derive(Debug, Clone, Default)]
pub struct RunMetrics {
    /// The run's id (`eventId`), what `resyncId` selects.
    pub resync_id: Option<String>,
    /// When the run's earliest item was created (Port's clock).
    pub created_at: Option<DateTime<FixedOffset>>,
    /// The kinds, in Port's order (at most [`MAX_KINDS`]).
    pub kinds: Vec<KindSummary>,
    /// Kinds left out beyond [`MAX_KINDS`].
    pub left_out: usize,
}

/// Reads a time in RFC 3339, as Port writes them.
pub fn time(v: &Value) -> Option<DateTime<FixedOffset>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
}

/// A count from Port, clamped: missing, negative or NaN is 0, huge or infinite is
/// [`MAX_COUNT`], fractions are rounded down.
pub fn count(v: &Value) -> u64 {
    match v.as_f64() {
        Some(f) if f.is_nan() || f <= 0.0 => 0,
        Some(f) if f >= MAX_COUNT as f64 => MAX_COUNT,
        // In range and finite: the cast cannot wrap.
        Some(f) => f as u64,
        None => 0,
    }
}

/// A duration from Port, clamped to `0..=`ten years; `None` when absent or not a number.
pub fn seconds(v: &Value) -> Option<f64> {
    let f = v.as_f64()?;
    if f.is_nan() {
        return None;
    }
    Some(f.clamp(0.0, MAX_SECONDS))
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// One kind's summary from a `syncMetrics` item.
pub fn kind_summary(item: &Value) -> KindSummary {
    let phase = &item["metrics"]["phase"];
    let total = |t: &str| {
        PHASES.iter().fold(0u64, |sum, p| {
            sum.saturating_add(count(&phase[p]["object_count_type"][t]["object_count"]))
        })
    };
    let resync = &phase["resync"];
    let mut phases = BTreeMap::new();
    for p in PHASES {
        let reported: BTreeMap<&'static str, u64> = COUNT_TYPES
            .iter()
            .filter_map(|t| {
                let n = &phase[p]["object_count_type"][*t]["object_count"];
                n.is_number().then(|| (*t, count(n)))
            })
            .collect();
        if !reported.is_empty() {
            phases.insert(p, reported);
        }
    }
    KindSummary {
        phases,
        kind: text(&item["kind"]).unwrap_or_default(),
        kind_identifier: text(&item["kindIdentifier"]).unwrap_or_default(),
        blueprint: text(&item["blueprint"]),
        state: text(&item["syncState"]).unwrap_or_else(|| "unknown".into()),
        raw_extracted: total("raw_extracted"),
        transformed: total("transformed"),
        filtered_out: total("filtered_out"),
        loaded: total("loaded"),
        failed: total("failed"),
        skipped: total("skipped"),
        deleted: total("deleted"),
        duration_seconds: seconds(&resync["duration_seconds"]),
        success: resync["success"].as_f64().and_then(|s| {
            if s == 1.0 {
                Some(true)
            } else if s == 0.0 {
                Some(false)
            } else {
                None
            }
        }),
    }
    .clamped()
}

impl KindSummary {
    /// Sums over phases may pass [`MAX_COUNT`]; bring every count back under it.
    fn clamped(mut self) -> Self {
        for c in [
            &mut self.raw_extracted,
            &mut self.transformed,
            &mut self.filtered_out,
            &mut self.loaded,
            &mut self.failed,
            &mut self.skipped,
            &mut self.deleted,
        ] {
            *c = (*c).min(MAX_COUNT);
        }
        self
    }

    fn counts(&self) -> [(&'static str, u64); 7] {
        [
            ("extracted", self.raw_extracted),
            ("transformed", self.transformed),
            ("filtered out", self.filtered_out),
            ("loaded", self.loaded),
            ("failed", self.failed),
            ("skipped", self.skipped),
            ("deleted", self.deleted),
        ]
    }

    /// One readable line.
    pub fn line(&self) -> String {
        let mut line = format!("- {} ({}", self.kind, self.kind_identifier);
        if let Some(b) = &self.blueprint {
            line.push_str(&format!(", blueprint {b}"));
        }
        line.push_str(&format!("): {}; ", self.state));
        let counts: Vec<String> = self
            .counts()
            .iter()
            .map(|(name, n)| {
                if *name != "failed" || *n == 0 {
                    return format!("{name} {n}");
                }
                // Where objects failed points at the cause: transform is the mapping, load is
                // Port refusing the entities (blueprint, relations, permissions).
                let at: Vec<String> = PHASES
                    .iter()
                    .filter_map(|phase| {
                        let f = self.phases.get(phase)?.get("failed")?;
                        (*f > 0).then(|| format!("{phase} {f}"))
                    })
                    .collect();
                if at.is_empty() {
                    format!("{name} {n}")
                } else {
                    format!("{name} {n} ({})", at.join(", "))
                }
            })
            .collect();
        line.push_str(&counts.join(", "));
        if let Some(d) = self.duration_seconds {
            line.push_str(&format!("; {d:.1} s"));
        }
        match self.success {
            Some(true) => line.push_str("; success"),
            Some(false) => line.push_str("; no success"),
            None => {}
        }
        line
    }
}

/// The run in a `syncMetrics` answer (`{ok, count, data: [...]}`).
pub fn run_metrics(body: &Value) -> RunMetrics {
    let items = body["data"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let mut run = RunMetrics {
        left_out: items.len().saturating_sub(MAX_KINDS),
        ..RunMetrics::default()
    };
    for item in items {
        if run.resync_id.is_none() {
            run.resync_id = text(&item["eventId"]);
        }
        if let Some(created) = time(&item["createdAt"]) {
            run.created_at = Some(run.created_at.map_or(created, |c| c.min(created)));
        }
    }
    run.kinds = items.iter().take(MAX_KINDS).map(kind_summary).collect();
    run
}

impl RunMetrics {
    /// The kinds as JSON (for structuredContent).
    pub fn kinds_json(&self) -> Value {
        serde_json::to_value(&self.kinds).unwrap_or(Value::Array(Vec::new()))
    }

    /// The kinds, one line each.
    pub fn lines(&self) -> String {
        let mut text: Vec<String> = self.kinds.iter().map(KindSummary::line).collect();
        if self.left_out > 0 {
            text.push(format!("- ({} more kinds left out)", self.left_out));
        }
        text.join("\n")
    }

    /// The kinds of the mapping (pseudo-kinds such as `__runtime__` left out), each once.
    pub fn mapping_kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = Vec::new();
        for k in &self.kinds {
            if !k.kind.is_empty() && !k.kind.starts_with("__") && !kinds.contains(&k.kind) {
                kinds.push(k.kind.clone());
            }
        }
        kinds
    }
}

/// One run in the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEntry {
    /// The run's id (`eventId`): pass it as get-integration-sync-status's `resyncId`.
    #[serde(rename = "resyncId")]
    pub resync_id: Option<String>,
    /// The run's sync state.
    pub state: Option<String>,
    /// When it started (`createdAt`).
    pub start: Option<String>,
    /// When it was last updated (`updatedAt`): its end once it is over.
    pub end: Option<String>,
    /// `end - start`, when both are times and in order.
    #[serde(rename = "durationSeconds")]
    pub duration_seconds: Option<f64>,
    #[serde(skip)]
    started: Option<DateTime<FixedOffset>>,
}

/// The runs in a `syncsMetadata` answer, newest first (runs without a readable start last),
/// at most [`MAX_RUNS`]; and how many were left out.
pub fn history(body: &Value) -> (Vec<RunEntry>, usize) {
    let items = body["data"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let mut runs: Vec<RunEntry> = items
        .iter()
        .map(|item| {
            let started = time(&item["createdAt"]);
            let ended = time(&item["updatedAt"]);
            let duration = match (started, ended) {
                (Some(s), Some(e)) if e >= s => {
                    let ms = (e - s).num_milliseconds();
                    seconds(&json!(ms as f64 / 1000.0))
                }
                _ => None,
            };
            RunEntry {
                resync_id: text(&item["eventId"]),
                state: text(&item["syncState"]),
                start: text(&item["createdAt"]),
                end: text(&item["updatedAt"]),
                duration_seconds: duration,
                started,
            }
        })
        .collect();
    // Newest first; `None` sorts below every time, so unreadable starts go last.
    runs.sort_by_key(|r| std::cmp::Reverse(r.started));
    let left_out = runs.len().saturating_sub(MAX_RUNS);
    runs.truncate(MAX_RUNS);
    (runs, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate() {
        assert_eq!(count(&json!(2.0)), 2);
        assert_eq!(count(&json!(2.9)), 2);
        assert_eq!(count(&json!(-5.0)), 0);
        assert_eq!(count(&json!(1e300)), MAX_COUNT);
        assert_eq!(count(&json!("7")), 0);
        assert_eq!(count(&Value::Null), 0);
        assert_eq!(seconds(&json!(-1.0)), Some(0.0));
        assert_eq!(seconds(&json!(1e300)), Some(MAX_SECONDS));
        assert_eq!(seconds(&json!("x")), None);
    }

    #[test]
    fn phases_add_up_and_clamp() {
        let item = json!({
            "kind": "issue", "kindIdentifier": "issue-1", "syncState": "failed",
            "metrics": {"phase": {
                "resync": {"duration_seconds": 3.25, "success": 0},
                "extract": {"object_count_type": {"raw_extracted": {"object_count": 5.0}}},
                "transform": {"object_count_type": {"transformed": {"object_count": 5.0},
                    "failed": {"object_count": 1e300}}},
                "load": {"object_count_type": {"loaded": {"object_count": 0.0},
                    "failed": {"object_count": 5.0}}}
            }}
        });
        let k = kind_summary(&item);
        assert_eq!(k.raw_extracted, 5);
        assert_eq!(k.failed, MAX_COUNT);
        assert_eq!(k.success, Some(false));
        assert_eq!(k.blueprint, None);
        assert_eq!(
            k.line(),
            format!(
                "- issue (issue-1): failed; extracted 5, transformed 5, filtered out 0, loaded 0, \
                 failed {MAX_COUNT} (transform {MAX_COUNT}, load 5), skipped 0, deleted 0; 3.2 s; \
                 no success"
            )
        );
    }

    #[test]
    fn history_is_sorted_newest_first() {
        let body = json!({"data": [
            {"eventId": "a", "syncState": "completed", "createdAt": "2026-11-20T10:00:00.000Z", "updatedAt": "2026-11-20T10:00:30.000Z"},
            {"eventId": "b", "syncState": "failed", "createdAt": "nonsense", "updatedAt": "x"},
            {"eventId": "c", "syncState": "failed", "createdAt": "2026-11-21T10:00:00.000Z", "updatedAt": "2026-11-21T09:00:00.000Z"}
        ]});
        let (runs, left_out) = history(&body);
        assert_eq!(left_out, 0);
        let ids: Vec<_> = runs.iter().map(|r| r.resync_id.as_deref()).collect();
        assert_eq!(ids, [Some("c"), Some("a"), Some("b")]);
        assert_eq!(runs[0].duration_seconds, None, "an end before the start");
        assert_eq!(runs[1].duration_seconds, Some(30.0));
    }
}
