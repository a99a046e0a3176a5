//! `resync-integration`: trigger a resync and follow it to its end.
//!
//! Port answers a resync request at once; how the run ends shows up later in the
//! integration's `resyncState` (running, completed, failed, aborted), written by the exporter.
//! This tool triggers the resync (an empty PATCH), polls that state with backoff, reports
//! progress where the client asked for it, and returns the final state with the run's
//! ERROR-level event logs, within a time limit below what hosts wait. A run counts as ours only
//! once its state was written after Port recorded our request (Port's own clock on both sides),
//! so a previous run's "completed" is not mistaken for this one.

use std::time::{Duration, Instant};

use rmcp::{
    RoleServer,
    model::{CallToolResult, ContentBlock, ProgressNotificationParam},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{PortTools, args::ArgError, result};
use crate::port::{Method, PortRequest};

/// Default time to follow a resync (hosts give up at 60 s).
pub const DEFAULT_WAIT_SECS: u64 = 45;

/// Arguments of `resync-integration`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResyncArgs {
    /// The integration's identifier, as listed by get-all-integrations.
    #[schemars(length(min = 1))]
    pub identifier: String,
    /// How long to follow the resync, in seconds (default 45). When it runs longer, the tool
    /// answers "still running" with what it knows; call get-integration later.
    #[serde(rename = "timeoutSeconds", default)]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<u64>,
}

fn time(v: &Value) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
}

/// Triggers and follows one resync.
pub async fn run(
    tools: &PortTools,
    raw: rmcp::model::JsonObject,
    max_wait: Duration,
    ctx: &RequestContext<RoleServer>,
) -> CallToolResult {
    let args: ResyncArgs = match serde_json::from_value(Value::Object(raw)) {
        Ok(a) => a,
        Err(e) => {
            return result::invalid_arguments(&ArgError {
                argument: "arguments".into(),
                message: e.to_string(),
            });
        }
    };
    if args.identifier.trim().is_empty() {
        return result::invalid_arguments(&ArgError {
            argument: "identifier".into(),
            message: "must not be empty".into(),
        });
    }
    let wait = Duration::from_secs(args.timeout_seconds.unwrap_or(DEFAULT_WAIT_SECS)).min(max_wait);
    let path = PortRequest::get(&["integration", &args.identifier]);
    let trigger = tools
        .send(
            &path.clone().with_method(Method::Patch).with_body(json!({})),
            ctx,
        )
        .await;
    if trigger.is_error == Some(true) {
        return trigger;
    }
    // Port's clock: when it recorded our request.
    let requested_at = trigger
        .structured_content
        .as_ref()
        .and_then(|b| time(&b["integration"]["updatedAt"]));
    let started = Instant::now();
    let progress = ctx.meta.get_progress_token();
    let mut delay = Duration::from_millis(500);
    loop {
        tokio::select! {
            _ = ctx.ct.cancelled() => return result::cancelled(),
            _ = tokio::time::sleep(delay.min(wait.saturating_sub(started.elapsed()))) => {}
        }
        let lookup = tools.send(&path, ctx).await;
        if lookup.is_error == Some(true) {
            return lookup;
        }
        let state = lookup
            .structured_content
            .as_ref()
            .map(|b| b["integration"]["resyncState"].clone())
            .unwrap_or(Value::Null);
        let status = state["status"].as_str().unwrap_or("unknown").to_string();
        let ours = match (requested_at, time(&state["updatedAt"])) {
            (Some(asked), Some(written)) => written >= asked,
            _ => true,
        };
        if ours && matches!(status.as_str(), "completed" | "failed" | "aborted") {
            return finished(tools, &args.identifier, &status, state, ctx).await;
        }
        if let Some(token) = &progress {
            let _ = ctx
                .peer
                .notify_progress(
                    ProgressNotificationParam::new(token.clone(), started.elapsed().as_secs_f64())
                        .with_total(wait.as_secs_f64())
                        .with_message(format!("resync of {}: {status}", args.identifier)),
                )
                .await;
        }
        if started.elapsed() >= wait {
            let mut r = CallToolResult::success(vec![ContentBlock::text(format!(
                "The resync of `{}` is still running after {} s (status: {status}). Port keeps \
                 running it; check again later with get-integration (resyncState) or call \
                 resync-integration's follow-up via get-integration-s-event-logs.",
                args.identifier,
                wait.as_secs()
            ))]);
            r.structured_content = Some(json!({
                "identifier": args.identifier, "status": "still running", "resyncState": state
            }));
            return r;
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn finished(
    tools: &PortTools,
    identifier: &str,
    status: &str,
    state: Value,
    ctx: &RequestContext<RoleServer>,
) -> CallToolResult {
    let logs = tools
        .send(
            &PortRequest::get(&["integration", identifier, "logs"])
                .query_each("levels", &["ERROR"])
                .query_opt("timestamp", state["lastResyncStart"].as_str())
                .query_opt(
                    "direction",
                    state["lastResyncStart"].as_str().map(|_| "down"),
                )
                .query_opt("limit", Some(50)),
            ctx,
        )
        .await;
    let errors = logs.structured_content.clone().unwrap_or(Value::Null);
    let text = format!(
        "The resync of `{identifier}` {}: status {status}. ERROR-level event logs of the run \
         are in `errors`.",
        if status == "completed" {
            "finished"
        } else {
            "ended"
        }
    );
    let mut r = if status == "completed" {
        CallToolResult::success(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::error(vec![ContentBlock::text(text)])
    };
    r.structured_content = Some(json!({
        "identifier": identifier, "status": status, "resyncState": state, "errors": errors
    }));
    r
}
