//! The opt-in `sync` toolset: resync, sync status and history, raw examples, and restore.
//!
//! These tools answer "did the last sync work, and why not" with Port's own records: the
//! per-kind sync metrics and sync history (which Port keys by the integration's internal `_id`,
//! resolved here from the identifier so the caller never handles it, and which answer 200 with
//! nothing for an id that matches nothing), the raw examples the exporter stored per kind, and
//! the restore of the last mapping that synced successfully.
//!
//! Restore's path id is UNK in Port's docs (`{integration_id}`): the identifier is sent, as on
//! every sibling route; when Port answers 404 although the integration was just found, the
//! request is repeated once with its `_id`.

use rmcp::{
    RoleServer,
    handler::server::{tool::InputResponses, wrapper::Parameters},
    model::{CallToolResponse, CallToolResult, JsonObject},
    service::RequestContext,
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    PortTools,
    args::{self, ArgError},
    catalog::Ran,
    confirm::{self, Action, Decision},
    metrics, result, resync,
};
use crate::port::{CallContext, Method, PortError, PortRequest, PortResponse};

/// Most raw examples returned per kind.
pub const MAX_EXAMPLES: u32 = 50;
/// Default raw examples per kind (Ocean stores at most 5 per kind and resync).
pub const DEFAULT_EXAMPLES: u32 = 5;
/// Most kinds returned from `/kinds`.
const MAX_EXAMPLE_KINDS: usize = 100;
/// Longest `resyncId` accepted (Ocean's are uuid4s, 36 characters).
const MAX_RESYNC_ID: usize = 128;

/// An integration as Port returned it, with the internal id the metrics routes are keyed by.
pub(crate) struct Integration {
    /// The identifier the caller gave.
    pub identifier: String,
    /// Port's `_id`.
    pub id: String,
    /// The `integration` object of Port's answer.
    pub value: Value,
}

/// A Port answer's body as JSON (`Null` when it is not JSON).
pub(crate) fn body_of(response: PortResponse) -> Value {
    match response.json {
        Some(v) => v,
        // Large answers come as text only: parse them here, where the tool needs the tree.
        None => serde_json::from_str(&response.text).unwrap_or(Value::Null),
    }
}

/// `GET /v1/integration/{identifier}`, with its `_id` checked as strictly as an identifier
/// (it goes into a path). A 404 and other failures are the tool's answer.
pub(crate) async fn lookup(
    tools: &PortTools,
    identifier: &str,
    call: &CallContext,
) -> Result<Integration, CallToolResult> {
    let response = tools
        .send_with(&PortRequest::get(&["integration", identifier]), call)
        .await?;
    let value = body_of(response)["integration"].take();
    let id = value["_id"].as_str().unwrap_or_default().to_string();
    if let Err(e) = args::check_identifier(&id) {
        return Err(result::unexpected_answer(&format!(
            "Port's record of integration `{identifier}` has no usable internal id (`_id`: {}), \
             which its sync metrics and history are looked up by",
            e.message
        )));
    }
    Ok(Integration {
        identifier: identifier.to_string(),
        id,
        value,
    })
}

fn resync_id_check(id: &str) -> Result<(), ArgError> {
    if id.trim().is_empty() {
        return Err(ArgError::new(
            "resyncId",
            "must not be empty; omit it for the latest run, or take one from \
             get-integration-sync-history",
        ));
    }
    if id.chars().count() > MAX_RESYNC_ID {
        return Err(ArgError::new(
            "resyncId",
            format!("is longer than {MAX_RESYNC_ID} characters; resync ids are uuids"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(ArgError::new(
            "resyncId",
            "contains a control character; resync ids never do",
        ));
    }
    Ok(())
}

/// Arguments of `get-integration-sync-status`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncStatusArgs {
    /// The integration's identifier, as listed by get-all-integrations.
    #[schemars(length(min = 1))]
    pub identifier: String,
    /// One run's id (`resyncId` from get-integration-sync-history). Omit for the latest run.
    #[serde(rename = "resyncId", default)]
    #[schemars(length(min = 1, max = 128))]
    pub resync_id: Option<String>,
}

/// Arguments of `get-integration-sync-history`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncHistoryArgs {
    /// The integration's identifier, as listed by get-all-integrations.
    #[schemars(length(min = 1))]
    pub identifier: String,
}

/// Arguments of `get-integration-kind-examples`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KindExamplesArgs {
    /// The integration's identifier, as listed by get-all-integrations.
    #[schemars(length(min = 1))]
    pub identifier: String,
    /// Only this kind (e.g. `issue`); omit for every kind with stored examples.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub kind: Option<String>,
    /// Most examples per kind (1 to 50, default 5).
    #[serde(default)]
    #[schemars(range(min = 1, max = 50))]
    pub limit: Option<u32>,
}

fn parse_status(raw: &JsonObject) -> Result<SyncStatusArgs, ArgError> {
    let args: SyncStatusArgs = args::deserialize(raw)?;
    args::check_identifier(&args.identifier)?;
    if let Some(id) = &args.resync_id {
        resync_id_check(id)?;
    }
    Ok(args)
}

fn parse_history(raw: &JsonObject) -> Result<SyncHistoryArgs, ArgError> {
    let args: SyncHistoryArgs = args::deserialize(raw)?;
    args::check_identifier(&args.identifier)?;
    Ok(args)
}

fn parse_examples(raw: &JsonObject) -> Result<KindExamplesArgs, ArgError> {
    let args: KindExamplesArgs = args::deserialize(raw)?;
    args::check_identifier(&args.identifier)?;
    if let Some(kind) = &args.kind
        && kind.trim().is_empty()
    {
        return Err(ArgError::new(
            "kind",
            "must not be empty; omit it for every kind",
        ));
    }
    if let Some(limit) = args.limit
        && !(1..=MAX_EXAMPLES).contains(&limit)
    {
        return Err(ArgError::new(
            "limit",
            format!("must be 1 to {MAX_EXAMPLES}, not {limit}"),
        ));
    }
    Ok(args)
}

/// `get-integration-sync-status`'s work.
async fn sync_status(
    tools: &PortTools,
    args: SyncStatusArgs,
    call: &CallContext,
) -> CallToolResult {
    let integration = match lookup(tools, &args.identifier, call).await {
        Ok(i) => i,
        Err(failure) => return failure,
    };
    let request = PortRequest::get(&["integration", &integration.id, "syncMetrics"])
        .query_opt("resyncId", args.resync_id.as_deref());
    let run = match tools.send_with(&request, call).await {
        Ok(response) => metrics::run_metrics(&body_of(response)),
        Err(failure) => return failure,
    };
    let identifier = &args.identifier;
    let state = integration.value["resyncState"].clone();
    let status = state["status"].as_str().unwrap_or("unknown");
    if run.kinds.is_empty() {
        return match &args.resync_id {
            Some(id) => result::error_result(
                format!(
                    "No sync run with resyncId `{id}` was found for integration `{identifier}` \
                     (Port answered with no metrics for it). Call get-integration-sync-history \
                     to list the runs and their resyncIds."
                ),
                json!({"error": "unknown_resync_id", "resyncId": id, "identifier": identifier}),
            ),
            None => result::success_result(
                format!(
                    "Integration `{identifier}` has no recorded sync: Port has no sync metrics \
                     for it. Its resyncState status is {status}."
                ),
                json!({"identifier": identifier, "resyncState": state, "kinds": []}),
            ),
        };
    }
    let resync_id = run.resync_id.clone().unwrap_or_else(|| "unknown".into());
    let text = format!(
        "Sync run {resync_id} of `{identifier}`{}:\n{}\nThe integration's resyncState status \
         is {status}.",
        if args.resync_id.is_some() {
            ""
        } else {
            " (the latest)"
        },
        run.lines()
    );
    result::success_result(
        text,
        json!({
            "identifier": identifier,
            "resyncId": run.resync_id,
            "resyncState": state,
            "kinds": run.kinds_json(),
            "kindsLeftOut": run.left_out,
        }),
    )
}

/// `get-integration-sync-history`'s work.
async fn sync_history(
    tools: &PortTools,
    args: SyncHistoryArgs,
    call: &CallContext,
) -> CallToolResult {
    let integration = match lookup(tools, &args.identifier, call).await {
        Ok(i) => i,
        Err(failure) => return failure,
    };
    let request = PortRequest::get(&["integration", &integration.id, "syncsMetadata"]);
    let (runs, left_out) = match tools.send_with(&request, call).await {
        Ok(response) => metrics::history(&body_of(response)),
        Err(failure) => return failure,
    };
    let identifier = &args.identifier;
    if runs.is_empty() {
        return result::success_result(
            format!(
                "Integration `{identifier}` has no recorded sync in Port's history (Port keeps \
                 the last 4 days, or the 50 most recent runs)."
            ),
            json!({"identifier": identifier, "runs": []}),
        );
    }
    let mut text = format!(
        "Sync runs of `{identifier}`, newest first (pass a resyncId to \
         get-integration-sync-status for its per-kind counts):"
    );
    for run in &runs {
        text.push_str(&format!(
            "\n- {}: {}, {} to {}",
            run.resync_id.as_deref().unwrap_or("?"),
            run.state.as_deref().unwrap_or("?"),
            run.start.as_deref().unwrap_or("?"),
            run.end.as_deref().unwrap_or("?"),
        ));
        if let Some(d) = run.duration_seconds {
            text.push_str(&format!(" ({d:.1} s)"));
        }
    }
    if left_out > 0 {
        text.push_str(&format!("\n- ({left_out} older runs left out)"));
    }
    result::success_result(
        text,
        json!({"identifier": identifier, "runs": runs, "runsLeftOut": left_out}),
    )
}

/// `get-integration-kind-examples`'s work.
async fn kind_examples(
    tools: &PortTools,
    args: KindExamplesArgs,
    call: &CallContext,
) -> CallToolResult {
    let identifier = &args.identifier;
    let request = PortRequest::get(&["integration", identifier, "kinds"]);
    let body = match tools.send_with(&request, call).await {
        Ok(response) => body_of(response),
        Err(failure) => return failure,
    };
    let limit = args.limit.unwrap_or(DEFAULT_EXAMPLES) as usize;
    let empty = serde_json::Map::new();
    let data = body["data"].as_object().unwrap_or(&empty);
    let names: Vec<&String> = data.keys().collect();
    if let Some(kind) = &args.kind
        && !data.contains_key(kind)
    {
        let known = if names.is_empty() {
            "none (Port has no stored examples for this integration)".to_string()
        } else {
            names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return result::error_result(
            format!(
                "Integration `{identifier}` has no raw examples for kind `{kind}`. Kinds with \
                 examples: {known}."
            ),
            json!({"error": "unknown_kind", "kind": kind, "identifier": identifier, "kinds": names}),
        );
    }
    let mut kinds = Vec::new();
    let mut lines = Vec::new();
    for (name, entry) in data.iter().take(MAX_EXAMPLE_KINDS) {
        if args.kind.as_ref().is_some_and(|k| k != name) {
            continue;
        }
        let examples = entry["examples"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let items: Vec<Value> = examples
            .iter()
            .take(limit)
            .map(|e| e["data"].clone())
            .collect();
        lines.push(format!(
            "- {name}: {} of {} example(s)",
            items.len(),
            examples.len()
        ));
        kinds.push(json!({"kind": name, "available": examples.len(), "items": items}));
    }
    if kinds.is_empty() {
        return result::success_result(
            format!(
                "Integration `{identifier}` has no stored raw examples. Port stores them when the \
                 exporter sends them during a resync (Ocean's send_raw_data_examples, on by \
                 default)."
            ),
            json!({"identifier": identifier, "kinds": []}),
        );
    }
    let mut structured = json!({"identifier": identifier, "kinds": kinds});
    if args.kind.is_some() {
        structured["items"] = kinds[0]["items"].clone();
    }
    let text = format!(
        "Raw examples of `{identifier}`'s kinds, as the exporter sent them (pass a kind's \
         `items` to preview-integration-mapping to try a mapping on them):\n{}\n{}",
        lines.join("\n"),
        structured
    );
    result::success_result(text, structured)
}

/// The kinds of a mapping (`config.resources[].kind`), each once.
fn config_kinds(integration: &Value) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    let resources = integration["config"]["resources"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for kind in resources.iter().filter_map(|r| r["kind"].as_str()) {
        if !kinds.iter().any(|k| k == kind) {
            kinds.push(kind.to_string());
        }
    }
    kinds
}

/// The kinds of the last successful run, which is what a restore brings back; `None` when
/// Port's records do not tell.
async fn restored_kinds(
    tools: &PortTools,
    integration: &Integration,
    call: &CallContext,
) -> Option<(String, Vec<String>)> {
    let history = PortRequest::get(&["integration", &integration.id, "syncsMetadata"]);
    let (runs, _) = metrics::history(&body_of(tools.send_with(&history, call).await.ok()?));
    let last_good = runs
        .iter()
        .find(|r| r.state.as_deref() == Some("completed"))?;
    let id = last_good.resync_id.clone()?;
    let request = PortRequest::get(&["integration", &integration.id, "syncMetrics"])
        .query_opt("resyncId", Some(&id));
    let run = metrics::run_metrics(&body_of(tools.send_with(&request, call).await.ok()?));
    let kinds = run.mapping_kinds();
    (!kinds.is_empty()).then_some((id, kinds))
}

/// The confirmation question of a restore.
async fn restore_question(
    tools: &PortTools,
    identifier: &str,
    call: &CallContext,
) -> Result<String, CallToolResult> {
    let integration = lookup(tools, identifier, call).await?;
    let field = |k: &str| integration.value[k].as_str().unwrap_or("?").to_string();
    let current = config_kinds(&integration.value);
    let current = if current.is_empty() {
        "none".to_string()
    } else {
        current.join(", ")
    };
    let restored = match restored_kinds(tools, &integration, call).await {
        Some((id, kinds)) => format!(
            "kinds synced by its last successful resync ({id}): {}",
            kinds.join(", ")
        ),
        None => "the restored mapping's kinds are not known (Port's recent sync history \
                 shows no successful run with metrics)"
            .to_string(),
    };
    Ok(format!(
        "Restore the mapping of the Port integration \"{}\" ({identifier}, type {}) to the one \
         its last successful resync used? Port replaces the current mapping and resyncs. \
         Current mapping kinds: {current}; {restored}.",
        field("title"),
        field("installationAppType"),
    ))
}

const RESTORE_400_HINT: &str = "Port has nothing to restore: a restore needs an earlier resync \
    that completed successfully (see get-integration-sync-history), and works only for Ocean \
    integrations. Fix the mapping with update-integration-s-config instead.";

/// Asks Port to restore the mapping: by identifier, and once more by `_id` when Port does not
/// know the identifier on this route although the integration exists.
pub(super) async fn request_restore(
    tools: &PortTools,
    integration: &Integration,
    call: &CallContext,
) -> Result<(), CallToolResult> {
    let send = |id: &str| {
        let request = PortRequest::get(&["integration", id, "restore"])
            .with_method(Method::Post)
            .with_body(json!({}));
        async move { tools.client.send_with(&request, call).await }
    };
    let failure = |e: &PortError| {
        tracing::warn!(error = %e, "restore request failed");
        match e {
            PortError::Api(f) if f.status == 400 => {
                result::port_failure_with_hint(e, RESTORE_400_HINT)
            }
            _ => result::port_failure(e),
        }
    };
    match send(&integration.identifier).await {
        Ok(_) => Ok(()),
        Err(PortError::Api(f)) if f.status == 404 && integration.id != integration.identifier => {
            send(&integration.id)
                .await
                .map(|_| ())
                .map_err(|e| failure(&e))
        }
        Err(e) => Err(failure(&e)),
    }
}

/// `get-integration-sync-status`'s whole work ([`super::catalog::RunFn`]): the MCP tool and
/// the REST adapter both run it.
pub(crate) fn run_sync_status<'a>(
    tools: &'a PortTools,
    raw: &'a JsonObject,
    call: &'a CallContext,
) -> Ran<'a> {
    Box::pin(async move {
        match parse_status(raw) {
            Ok(args) => sync_status(tools, args, call).await,
            Err(e) => result::invalid_arguments(&e),
        }
    })
}

/// `get-integration-sync-history`'s whole work (MCP and REST).
pub(crate) fn run_sync_history<'a>(
    tools: &'a PortTools,
    raw: &'a JsonObject,
    call: &'a CallContext,
) -> Ran<'a> {
    Box::pin(async move {
        match parse_history(raw) {
            Ok(args) => sync_history(tools, args, call).await,
            Err(e) => result::invalid_arguments(&e),
        }
    })
}

/// `get-integration-kind-examples`'s whole work (MCP and REST).
pub(crate) fn run_kind_examples<'a>(
    tools: &'a PortTools,
    raw: &'a JsonObject,
    call: &'a CallContext,
) -> Ran<'a> {
    Box::pin(async move {
        match parse_examples(raw) {
            Ok(args) => kind_examples(tools, args, call).await,
            Err(e) => result::invalid_arguments(&e),
        }
    })
}

/// The opt-in `sync` toolset (`--toolsets integrations,sync`). `resync-integration` is offered
/// by `mapping` too: the catalog says which toolsets offer each tool.
#[tool_router(router = sync_router, vis = "pub(crate)")]
impl PortTools {
    #[tool(
        name = "resync-integration",
        description = resync::DESCRIPTION
    )]
    async fn resync_integration(
        &self,
        Parameters(raw): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResponse {
        resync::run(self, raw, &ctx).await
    }

    #[tool(
        name = "get-integration-sync-status",
        description = "Get how an integration's latest sync run (or the run resyncId names) \
            went, per kind: its state and object counts per phase from Port's sync metrics \
            (raw_extracted, transformed, filtered_out, loaded, failed, skipped, deleted), \
            duration and success, plus the integration's resyncState. A kind with failed > 0 \
            and loaded 0 usually has a broken mapping. Take a resyncId from \
            get-integration-sync-history. Needs the moderator or admin role."
    )]
    async fn get_integration_sync_status(
        &self,
        Parameters(raw): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.run_in_call(run_sync_status, &raw, &ctx).await
    }

    #[tool(
        name = "get-integration-sync-history",
        description = "List an integration's recent sync runs (Port keeps the last 4 days, or \
            the 50 most recent), newest first: each run's resyncId, state, start, end and \
            duration. Pass a resyncId to get-integration-sync-status for that run's per-kind \
            counts, e.g. to compare a failed run with the last completed one. Needs the \
            moderator or admin role."
    )]
    async fn get_integration_sync_history(
        &self,
        Parameters(raw): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.run_in_call(run_sync_history, &raw, &ctx).await
    }

    #[tool(
        name = "restore-integration-mapping",
        description = "Set an Ocean integration's mapping back to the one its last successful \
            resync used, then follow the resync Port starts with it (as resync-integration \
            does: final state, per-kind counts, ERROR logs; a task for clients with the tasks \
            capability). Asks the user to confirm first where the client supports it, naming \
            the current and the restored mapping's kinds. Port refuses (400) when no earlier \
            successful run exists. Needs a role allowed to update integrations (moderator or \
            admin)."
    )]
    async fn restore_integration_mapping(
        &self,
        Parameters(raw): Parameters<JsonObject>,
        InputResponses(responses): InputResponses,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResponse {
        let args = match resync::parse_follow(&raw) {
            Ok(a) => a,
            Err(e) => return result::invalid_arguments(&e).into(),
        };
        let call = self.call_context(super::http_parts(&ctx).map(|p| &p.headers));
        let identifier = args.identifier;
        let decision = tokio::select! {
            _ = ctx.ct.cancelled() => return result::cancelled().into(),
            decision = confirm::confirm(Action::Restore, &identifier, responses, &ctx, || {
                restore_question(self, &identifier, &call)
            }) => decision,
        };
        if let Decision::Respond(response) = decision {
            return response;
        }
        resync::start_and_follow(
            self,
            resync::Start::Restore,
            identifier,
            args.timeout_seconds,
            call,
            &ctx,
        )
        .await
    }

    #[tool(
        name = "get-integration-kind-examples",
        description = "Get the raw data examples an integration's exporter stored per kind \
            (a few per kind and resync, secrets masked), as an `items` array per kind ready to \
            pass to preview-integration-mapping's `items`. Use them to see the raw shape a \
            mapping's jq expressions run on (e.g. where an issue's key really is). Reads \
            GET /v1/integration/{identifier}/kinds, which is not in Port's public API \
            reference. `kind` picks one kind; `limit` caps examples per kind (default 5). \
            Needs the moderator or admin role."
    )]
    async fn get_integration_kind_examples(
        &self,
        Parameters(raw): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.run_in_call(run_kind_examples, &raw, &ctx).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::{
        config::{Credentials, PortSettings, Secret, normalize_base_url},
        port::PortClient,
        sandbox::{Sandbox, SandboxAuth},
    };

    async fn tools() -> (Sandbox, PortTools) {
        crate::install_crypto_provider();
        let sandbox = Sandbox::new(SandboxAuth {
            static_tokens: vec!["unit-token".into()],
            ..SandboxAuth::default()
        });
        let url = sandbox.spawn().await.unwrap();
        let settings = PortSettings {
            base_url: normalize_base_url(&url).unwrap(),
            credentials: Credentials::Token(Secret::new("unit-token")),
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            budget: Duration::from_secs(5),
            max_in_flight: 4,
            max_response_bytes: 1 << 20,
            max_attempts: 2,
            max_structured_bytes: 512 * 1024,
            min_request_budget: Duration::from_secs(1),
        };
        (sandbox, PortTools::new(PortClient::new(&settings).unwrap()))
    }

    fn args(v: Value) -> JsonObject {
        v.as_object().cloned().unwrap()
    }

    fn paths(sandbox: &Sandbox) -> Vec<String> {
        sandbox
            .api_requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// The REST adapter's entry points do the same work as the MCP tools.
    #[tokio::test]
    async fn the_run_functions_do_the_tools_work() {
        let (sandbox, tools) = tools().await;
        let call = CallContext::default();
        let jira = args(json!({"identifier": "jira-cloud"}));

        let r = run_sync_status(&tools, &jira, &call).await;
        assert_eq!(r.is_error, Some(false), "{r:?}");
        let s = r.structured_content.unwrap();
        assert!(s["kinds"].as_array().is_some_and(|k| !k.is_empty()), "{s}");
        assert_eq!(
            paths(&sandbox),
            [
                "GET /v1/integration/jira-cloud",
                "GET /v1/integration/integration_3b9d7c42/syncMetrics"
            ]
        );

        let r = run_sync_history(&tools, &jira, &call).await;
        assert_eq!(r.structured_content.unwrap()["runs"][0]["state"], "failed");

        let r = run_kind_examples(
            &tools,
            &args(json!({"identifier": "jira-cloud", "kind": "issue"})),
            &call,
        )
        .await;
        assert!(r.structured_content.unwrap()["items"][0]["key"].is_string());

        let bad = run_sync_status(&tools, &args(json!({"identifier": ""})), &call).await;
        assert_eq!(bad.is_error, Some(true));

        sandbox.clear_requests();
        let r = resync::run_plain(
            &tools,
            &args(json!({"identifier": "github-ocean", "timeoutSeconds": 1})),
            &call,
        )
        .await;
        assert_eq!(r.structured_content.unwrap()["status"], "still running");
        assert_eq!(
            paths(&sandbox)[..2],
            [
                "GET /v1/integration/github-ocean",
                "POST /v1/integration/github-ocean/resync"
            ]
        );

        sandbox.clear_requests();
        let r = resync::run_restore(
            &tools,
            &args(json!({"identifier": "jira-cloud", "timeoutSeconds": 1})),
            &call,
        )
        .await;
        assert_eq!(r.structured_content.unwrap()["status"], "still running");
        assert_eq!(
            paths(&sandbox)[..2],
            [
                "GET /v1/integration/jira-cloud",
                "POST /v1/integration/jira-cloud/restore"
            ]
        );
    }
}
