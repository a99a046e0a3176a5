//! `resync-integration`: ask Port for a resync and follow it to its per-kind outcome.
//!
//! Since Ocean 0.44.1 a polling exporter resyncs only on an explicit resync request, so the
//! trigger is `POST /v1/integration/{identifier}/resync` (an empty PATCH may start nothing).
//! How the run ends shows up later in the integration's `resyncState`, written by the exporter;
//! the objects it fetched, mapped, loaded and failed per kind show up in Port's sync metrics.
//! So the integration is read first (its `_id`, and its `resyncState` as the baseline), the
//! resync is requested, the state is polled with backoff until a terminal state written after
//! the baseline, and the run's per-kind counts and ERROR logs are read. A run counts as ours
//! only once its state was written after the baseline (Port's clock on both sides), so a
//! previous run's "completed" is not mistaken for this one; its metrics count only when created
//! after the baseline too. `restore-integration-mapping` follows its resync with the same code.
//!
//! Body of the POST (UNK in Port's docs): `{}` with `content-type: application/json`. Fastify
//! refuses that content type with an empty body (400), and a route with an object body schema
//! refuses no body at all; `{}` satisfies both a body-less route and an object schema.

use std::time::{Duration, Instant};

use rmcp::{
    RoleServer,
    model::{CallToolResponse, CallToolResult, JsonObject},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    PortTools,
    args::{self, ArgError},
    metrics::{self, RunMetrics},
    result,
    sync::{Integration, body_of, lookup},
    tasks::{Report, Tasks},
};
use crate::port::{CallContext, Method, PortRequest};

/// Default time to follow a resync in a plain call (hosts give up at 60 s).
pub const DEFAULT_WAIT_SECS: u64 = 45;
/// ERROR logs quoted in the text answer (all of them, up to 50, are in `errors`).
const QUOTED_LOGS: usize = 5;
/// Characters quoted from one log message.
const QUOTED_CHARS: usize = 300;

/// The tool's title.
pub const TITLE: &str = "Resync an integration and wait for the result";

/// The tool's description (the same in the `sync` and the `mapping` toolset).
pub const DESCRIPTION: &str = "Start a full resync of an integration with Port's resync \
    request (POST /v1/integration/{identifier}/resync), then follow it: polls the integration's \
    resyncState until the run completes, fails or is aborted, and returns the final state with \
    per-kind object counts from Port's sync metrics (extracted, transformed, filtered_out, \
    loaded, failed, skipped, deleted, duration, success) and the run's ERROR-level event logs. \
    A failed or aborted run is an error result: read its per-kind counts (failed > 0 with \
    loaded 0 usually means a broken mapping) and logs. Sends progress notifications while it \
    runs; clients with the tasks capability get a task to poll instead. Gives up after \
    timeoutSeconds (default 45, or the server's maximum as a task) and answers \"still \
    running\"; follow up with get-integration-sync-status. Needs a role allowed to update \
    integrations (moderator or admin).";

/// Arguments of `resync-integration`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResyncArgs {
    /// The integration's identifier, as listed by get-all-integrations.
    #[schemars(length(min = 1))]
    pub identifier: String,
    /// How long to follow the resync, in seconds (default 45; as a task, the server's
    /// maximum). Capped by the server's --max-resync-wait-secs. When the run takes longer,
    /// the tool answers "still running"; call get-integration-sync-status later.
    #[serde(rename = "timeoutSeconds", default)]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<u64>,
}

/// Parses and checks a follow-up tool's `identifier` and `timeoutSeconds`.
pub(crate) fn parse_follow(raw: &JsonObject) -> Result<ResyncArgs, ArgError> {
    let args: ResyncArgs = args::deserialize(raw)?;
    args::check_identifier(&args.identifier)?;
    if args.timeout_seconds == Some(0) {
        return Err(ArgError::new(
            "timeoutSeconds",
            "must be at least 1 (seconds to follow the run)",
        ));
    }
    Ok(args)
}

impl PortTools {
    /// How long a call may follow a run: what it asked for (or the default: 45 s for a plain
    /// call, whose host waits about a minute; the server's maximum for a task), capped by
    /// `--max-resync-wait-secs`.
    pub(crate) fn follow_wait(&self, asked: Option<u64>, as_task: bool) -> Duration {
        let default = if as_task {
            self.max_resync_wait
        } else {
            Duration::from_secs(DEFAULT_WAIT_SECS)
        };
        asked
            .map(Duration::from_secs)
            .unwrap_or(default)
            .min(self.max_resync_wait)
    }
}

/// The `resync-integration` tool: as a task where the client asked for tasks, else in the call.
pub async fn run(
    tools: &PortTools,
    raw: JsonObject,
    ctx: &RequestContext<RoleServer>,
) -> CallToolResponse {
    let args = match parse_follow(&raw) {
        Ok(a) => a,
        Err(e) => return result::invalid_arguments(&e).into(),
    };
    let call = tools.call_context(super::http_parts(ctx).map(|p| &p.headers));
    start_and_follow(
        tools,
        Start::Resync,
        args.identifier,
        args.timeout_seconds,
        call,
        ctx,
    )
    .await
}

/// What starts the run a follow watches.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Start {
    /// `POST .../resync`.
    Resync,
    /// `POST .../restore` (the mapping of the last successful run, then a resync).
    Restore,
}

impl Start {
    /// Reads the baseline (the integration, its `_id` and `resyncState`), asks Port to start
    /// the run, and follows it.
    async fn run(
        self,
        tools: &PortTools,
        identifier: &str,
        wait: Duration,
        call: &CallContext,
        report: &Report,
    ) -> CallToolResult {
        let baseline = match lookup(tools, identifier, call).await {
            Ok(i) => i,
            Err(failure) => return failure,
        };
        let (requested, lead) = match self {
            Start::Resync => {
                let trigger = PortRequest::get(&["integration", identifier, "resync"])
                    .with_method(Method::Post)
                    .with_body(json!({}));
                (
                    tools.send_with(&trigger, call).await.map(|_| ()),
                    format!("The resync of `{identifier}`"),
                )
            }
            Start::Restore => (
                super::sync::request_restore(tools, &baseline, call).await,
                format!("The resync after restoring the mapping of `{identifier}`"),
            ),
        };
        if let Err(failure) = requested {
            return failure;
        }
        follow(tools, &baseline, wait, call, report, &lead).await
    }

    /// The tool outside MCP (the REST adapter): no progress, no task, no one to ask for
    /// confirmation (as for a client that cannot elicit); the plain-call default wait.
    async fn outside_mcp(
        self,
        tools: &PortTools,
        raw: &JsonObject,
        call: &CallContext,
    ) -> CallToolResult {
        match parse_follow(raw) {
            Ok(args) => {
                let wait = tools.follow_wait(args.timeout_seconds, false);
                self.run(tools, &args.identifier, wait, call, &Report::Quiet)
                    .await
            }
            Err(e) => result::invalid_arguments(&e),
        }
    }
}

/// Starts a run and follows it: as a task where the client asked for tasks (the answer is the
/// task, at once), else within this call, with progress notifications when it has a token.
pub(crate) async fn start_and_follow(
    tools: &PortTools,
    start: Start,
    identifier: String,
    timeout_seconds: Option<u64>,
    call: CallContext,
    ctx: &RequestContext<RoleServer>,
) -> CallToolResponse {
    if Tasks::wanted(ctx) {
        let wait = tools.follow_wait(timeout_seconds, true);
        let owned = tools.clone();
        let label = match start {
            Start::Resync => format!("resync of {identifier}: starting"),
            Start::Restore => format!("restore of {identifier}'s mapping: starting"),
        };
        return tools.tasks.start(tools, label, move |task| {
            Box::pin(async move {
                start
                    .run(&owned, &identifier, wait, &call, &Report::Task(task))
                    .await
            })
        });
    }
    let wait = tools.follow_wait(timeout_seconds, false);
    let report = Report::for_call(ctx);
    tokio::select! {
        _ = ctx.ct.cancelled() => result::cancelled(),
        done = start.run(tools, &identifier, wait, &call, &report) => done,
    }
    .into()
}

/// `resync-integration` outside MCP (the REST adapter's [`super::catalog::RunFn`]).
pub(crate) fn run_plain<'a>(
    tools: &'a PortTools,
    raw: &'a JsonObject,
    call: &'a CallContext,
) -> super::catalog::Ran<'a> {
    Box::pin(Start::Resync.outside_mcp(tools, raw, call))
}

/// `restore-integration-mapping` outside MCP (the REST adapter's [`super::catalog::RunFn`]).
pub(crate) fn run_restore<'a>(
    tools: &'a PortTools,
    raw: &'a JsonObject,
    call: &'a CallContext,
) -> super::catalog::Ran<'a> {
    Box::pin(Start::Restore.outside_mcp(tools, raw, call))
}

fn terminal(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "aborted")
}

/// Polls the integration's `resyncState` until a run started after `baseline` ends, or `wait`
/// is over; then reports it. `lead` opens every answer (e.g. "The resync of `x`").
pub(crate) async fn follow(
    tools: &PortTools,
    baseline: &Integration,
    wait: Duration,
    call: &CallContext,
    report: &Report,
    lead: &str,
) -> CallToolResult {
    let identifier = baseline.identifier.as_str();
    let base_state = baseline.value["resyncState"].clone();
    let base_time = metrics::time(&base_state["updatedAt"]);
    // Port aborts a running resync when a new one is requested: that "aborted" is the old
    // run's end, not ours, unless our run was seen running first.
    let was_running = base_state["status"].as_str().is_some_and(|s| !terminal(s));
    let mut saw_ours_running = false;
    let path = PortRequest::get(&["integration", identifier]);
    let started = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        tokio::time::sleep(delay.min(wait.saturating_sub(started.elapsed()))).await;
        let state = match tools.send_with(&path, call).await {
            Ok(response) => body_of(response)["integration"]["resyncState"].clone(),
            Err(failure) => return failure,
        };
        let status = state["status"].as_str().unwrap_or("unknown").to_string();
        let newer = match (base_time, metrics::time(&state["updatedAt"])) {
            (Some(before), Some(written)) => written > before,
            _ => state != base_state,
        };
        if newer && !terminal(&status) {
            saw_ours_running = true;
        }
        let old_run_aborted = was_running && status == "aborted" && !saw_ours_running;
        if newer && terminal(&status) && !old_run_aborted {
            return finished(tools, baseline, base_time, &status, state, call, lead).await;
        }
        report
            .say(
                started.elapsed().as_secs_f64(),
                wait.as_secs_f64(),
                format!("resync of {identifier}: {status}"),
            )
            .await;
        if started.elapsed() >= wait {
            return result::success_result(
                format!(
                    "{lead} is still running after {} s (status: {status}). Port keeps running \
                     it; follow it later with get-integration-sync-status (per-kind counts) or \
                     get-integration (resyncState), and get-integration-s-event-logs.",
                    wait.as_secs()
                ),
                json!({
                    "identifier": identifier, "status": "still running", "resyncState": state
                }),
            );
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Per-kind counts of the run, when Port's latest metrics are provably from it; else why not.
async fn our_metrics(
    tools: &PortTools,
    baseline: &Integration,
    base_time: Option<chrono::DateTime<chrono::FixedOffset>>,
    call: &CallContext,
) -> Result<RunMetrics, String> {
    let request = PortRequest::get(&["integration", &baseline.id, "syncMetrics"]);
    let run = match tools.send_with(&request, call).await {
        Ok(response) => metrics::run_metrics(&body_of(response)),
        Err(failure) => {
            let why = failure
                .content
                .first()
                .and_then(|c| c.as_text())
                .map(|t| t.text.lines().next().unwrap_or("").to_string())
                .unwrap_or_default();
            return Err(format!("Port's sync metrics could not be read: {why}"));
        }
    };
    if run.kinds.is_empty() {
        return Err("Port has no sync metrics for this run yet; call \
                    get-integration-sync-status in a moment"
            .into());
    }
    let ours = match (base_time, run.created_at) {
        (Some(before), Some(created)) => created > before,
        (None, _) => true,
        (Some(_), None) => false,
    };
    if !ours {
        return Err(format!(
            "Port's latest sync metrics (resyncId {}) are from an earlier run, so the counts \
             are not available yet; call get-integration-sync-status in a moment",
            run.resync_id.as_deref().unwrap_or("unknown")
        ));
    }
    Ok(run)
}

async fn finished(
    tools: &PortTools,
    baseline: &Integration,
    base_time: Option<chrono::DateTime<chrono::FixedOffset>>,
    status: &str,
    state: Value,
    call: &CallContext,
    lead: &str,
) -> CallToolResult {
    let identifier = baseline.identifier.as_str();
    let counts = our_metrics(tools, baseline, base_time, call).await;
    // The run's own logs when its id is known (Ocean tags each log with the resync's event
    // id); else the newest ERROR logs from the run's start on.
    let run_id = counts.as_ref().ok().and_then(|r| r.resync_id.as_deref());
    let since = run_id.map_or(state["lastResyncStart"].as_str(), |_| None);
    let logs = tools
        .send_with(
            &PortRequest::get(&["integration", identifier, "logs"])
                .query_each("levels", &["ERROR"])
                .query_opt("event_id", run_id)
                .query_opt("timestamp", since)
                .query_opt("direction", since.map(|_| "down"))
                .query_opt("limit", Some(50)),
            call,
        )
        .await;
    let errors = match logs {
        Ok(response) => body_of(response),
        Err(failure) => failure.structured_content.unwrap_or(Value::Null),
    };
    let mut text = format!(
        "{lead} {}: status {status}.",
        if status == "completed" {
            "finished"
        } else {
            "ended"
        }
    );
    let mut structured = json!({
        "identifier": identifier,
        "status": status,
        "resyncState": state,
    });
    match &counts {
        Ok(run) => {
            text.push_str(&format!(
                "\nPer kind (resyncId {}):\n{}",
                run.resync_id.as_deref().unwrap_or("unknown"),
                run.lines()
            ));
            structured["resyncId"] = json!(run.resync_id);
            structured["countsAvailable"] = json!(true);
            structured["kinds"] = run.kinds_json();
        }
        Err(why) => {
            text.push_str(&format!("\nPer-kind counts: not available. {why}."));
            structured["countsAvailable"] = json!(false);
            structured["countsNote"] = json!(why);
            structured["kinds"] = json!([]);
        }
    }
    let messages: Vec<&str> = errors["data"]["logs"]
        .as_array()
        .map(|logs| logs.iter().filter_map(|l| l["message"].as_str()).collect())
        .unwrap_or_default();
    text.push_str(&format!(
        "\nERROR-level event logs of the run: {} (all in `errors`).",
        messages.len()
    ));
    for m in messages.iter().take(QUOTED_LOGS) {
        let quoted: String = m.chars().take(QUOTED_CHARS).collect();
        text.push_str(&format!("\n- {quoted}"));
    }
    if status != "completed" {
        text.push_str(
            "\nA kind with failed > 0 and loaded 0 usually has a broken mapping: compare it \
             with get-integration-kind-examples and try a fix with preview-integration-mapping.",
        );
    }
    structured["errors"] = errors;
    if status == "completed" {
        result::success_result(text, structured)
    } else {
        result::error_result(text, structured)
    }
}
