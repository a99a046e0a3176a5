//! The MCP tools: the seven of Port's Integrations API, and the opt-in `mapping` and `sync`
//! toolsets.
//!
//! Each of the seven parses and checks its arguments (`args`), turns them into one Port request,
//! sends it with the shared [`PortClient`], and hands the outcome to `result`; the toolsets'
//! tools do more (`sync`, `resync`, the mapping preview). Prompts and resources live in `guide`.
//! One catalog row per tool (`catalog`) gives its title, hints, toolsets and REST route. Tool
//! names, titles, hints and descriptions are the public surface hosts see; snapshot tests pin
//! them.

pub mod args;
pub mod audit;
pub mod catalog;
pub mod guide;
pub mod result;
pub mod schema;

use std::{collections::BTreeSet, sync::Arc};

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    handler::server::{
        router::tool::ToolRouter,
        tool::{InputResponses, ToolCallContext},
        wrapper::Parameters,
    },
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, GetTaskParams,
        GetTaskResult, Implementation, JsonObject, ListToolsResult, PaginatedRequestParams,
        ServerCapabilities, ServerConfig, UpdateTaskParams,
    },
    service::RequestContext,
    tool, tool_handler, tool_router,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use self::args::{
    DeleteArgs, GetArgs, ListArgs, LogsArgs, MetadataArgs, ToolArgs, UpdateArgs, UpdateConfigArgs,
};
use crate::{
    config::{ConfigError, Secret, ToolSelection, Toolset},
    port::{CallContext, PortClient, PortRequest, PortResponse},
};

mod confirm;
pub mod metrics;
pub mod resync;
pub mod sync;
pub mod tasks;

/// The header Port's hosted MCP uses to ask for read-only behaviour on one HTTP request.
pub const READ_ONLY_HEADER: &str = "x-read-only-mode";

const INSTRUCTIONS: &str = "Manage the integrations (data sources) of a Port organization. \
Find an integration with get-all-integrations, read its mapping with get-integration, change it \
with update-integration-s-config (Port starts a resync after a config change). To re-run an \
integration, use resync-integration (sync toolset), which sends Port's resync request and \
follows the run to its per-kind counts; an empty update-integration was Port's documented \
trigger, but current Ocean integrations (0.44.1 and later) may ignore it. Check how a run went \
with get-integration-sync-status (per-kind counts; sync toolset), get-integration (resyncState) \
and get-integration-s-event-logs (levels [\"ERROR\"]). For a guided fix of a failing sync, \
use the troubleshoot-integration prompt.";

/// The MCP server: the tool router over one shared Port client. Cheap to clone (one per HTTP
/// session or request); clones share the client, the in-flight tracker and the drain signal.
#[derive(Clone)]
pub struct PortTools {
    client: PortClient,
    // Shared: stateless HTTP builds a server per request, and the routes never change after
    // start-up.
    tool_router: Arc<ToolRouter<Self>>,
    calls: TaskTracker,
    draining: CancellationToken,
    ended: CancellationToken,
    check_mappings: bool,
    max_resync_wait: std::time::Duration,
    // Shared: a task created on one request is polled on the next, which stateless HTTP
    // serves with another clone.
    tasks: tasks::Tasks,
    mapping_limits: Arc<crate::mapping::MappingLimits>,
    jq_slots: crate::mapping::JqSlots,
}

/// The HTTP request behind a call, when there is one (not on stdio).
fn http_parts(ctx: &RequestContext<RoleServer>) -> Option<&axum::http::request::Parts> {
    ctx.extensions.get::<axum::http::request::Parts>()
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Whether this HTTP request asked for read-only mode (`x-read-only-mode: 1`).
fn read_only_requested(ctx: &RequestContext<RoleServer>) -> bool {
    http_parts(ctx).is_some_and(|p| read_only_header(&p.headers))
}

/// Whether these HTTP headers ask for read-only mode (`x-read-only-mode: 1`, `true`, `yes`, `on`).
///
/// A gateway may append its own header to the client's, or fold both into one comma-separated
/// value (`1,1`, or `0` then `1`): every occurrence and every comma-separated element counts,
/// and one that asks for read-only wins. It is a safety switch, so it fails closed: a value that
/// is neither clearly on nor clearly off (`0`, `false`, `no`, `off`, empty), or not text at
/// all, also asks for read-only.
pub fn read_only_header(headers: &axum::http::HeaderMap) -> bool {
    headers.get_all(READ_ONLY_HEADER).iter().any(|value| {
        let Ok(text) = value.to_str() else {
            return true;
        };
        text.split(',').any(|element| {
            !matches!(
                element.trim().to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off" | ""
            )
        })
    })
}

impl PortTools {
    /// A server offering the seven default tools through `client`.
    pub fn new(client: PortClient) -> Self {
        Self::assemble(
            client,
            Self::full_router(&[Toolset::Integrations]),
            std::time::Duration::from_secs(300),
            tasks::DEFAULT_MAX_TASKS,
        )
    }

    /// A server offering `router`'s tools, following a run for at most `max_resync_wait`, with
    /// at most `max_tasks` tasks at once.
    fn assemble(
        client: PortClient,
        router: ToolRouter<Self>,
        max_resync_wait: std::time::Duration,
        max_tasks: usize,
    ) -> Self {
        PortTools {
            client,
            tool_router: Arc::new(router),
            calls: TaskTracker::new(),
            draining: CancellationToken::new(),
            ended: CancellationToken::new(),
            check_mappings: true,
            max_resync_wait,
            tasks: tasks::Tasks::new(max_tasks, max_resync_wait),
            mapping_limits: Arc::new(crate::mapping::MappingLimits::default()),
            jq_slots: crate::mapping::JqSlots::new(2),
        }
    }

    /// The tools of these toolsets, each described by its catalog row: title, annotations and
    /// input schema come from [`catalog::CATALOG`], the description from its handler.
    pub(crate) fn full_router(sets: &[Toolset]) -> ToolRouter<Self> {
        let mut router = Self::tool_router();
        router.merge(Self::mapping_router());
        // `resync-integration` is in both: the two handlers are the same function.
        router.merge(Self::sync_router());
        let names: Vec<String> = router.map.keys().map(|k| k.to_string()).collect();
        for name in names {
            let Some(route) = router.map.get_mut(name.as_str()) else {
                continue;
            };
            match catalog::spec(&name) {
                Some(spec) if spec.toolsets.iter().any(|t| sets.contains(t)) => {
                    route.attr.title = Some(spec.title.into());
                    route.attr.annotations = Some(spec.annotations());
                    route.attr.input_schema = (spec.schema)();
                }
                // Not in these toolsets, or (a defect the catalog test catches) in no row.
                _ => router.remove_route(&name),
            }
        }
        router
    }

    /// The same server with these bounds on jq work (mapping checks and previews).
    pub fn with_mapping_limits(mut self, limits: crate::mapping::MappingLimits) -> Self {
        self.jq_slots = crate::mapping::JqSlots::new(limits.max_concurrent);
        self.mapping_limits = Arc::new(limits);
        self
    }

    /// A server offering the tools `selection` allows; an unknown tool name is an error.
    pub fn with_selection(
        client: PortClient,
        selection: &ToolSelection,
    ) -> Result<Self, ConfigError> {
        let sets: &[Toolset] = if selection.toolsets.is_empty() {
            &[Toolset::Integrations]
        } else {
            &selection.toolsets
        };
        let mut router = Self::full_router(sets);
        let all: BTreeSet<String> = router
            .list_all()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        let wanted: BTreeSet<String> = selection
            .tools
            .iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        if let Some(unknown) = wanted.iter().find(|t| !all.contains(*t)) {
            return Err(ConfigError::UnknownTool {
                name: unknown.clone(),
                known: all.iter().cloned().collect::<Vec<_>>().join(", "),
            });
        }
        for name in &all {
            let excluded = !wanted.is_empty() && !wanted.contains(name);
            if excluded || (selection.read_only && catalog::writes(name)) {
                router.remove_route(name);
            }
        }
        let mut tools = Self::assemble(
            client,
            router,
            std::time::Duration::from_secs(selection.max_resync_wait_secs),
            selection.max_tasks,
        );
        tools.check_mappings = !selection.no_mapping_validation;
        Ok(tools)
    }

    /// Names of the tools offered (before any per-request read-only header).
    pub fn tool_names(&self) -> Vec<String> {
        self.tool_router
            .list_all()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    /// The slots that bound concurrent jq work (mapping checks, previews).
    pub fn jq_slots(&self) -> &crate::mapping::JqSlots {
        &self.jq_slots
    }

    /// The store of MCP tasks (long calls run in the background), shared by every clone.
    pub fn tasks(&self) -> &tasks::Tasks {
        &self.tasks
    }

    /// The Port client.
    pub fn client(&self) -> &PortClient {
        &self.client
    }

    /// Tracks the tool calls in flight, so a shutdown can wait for them.
    pub fn calls(&self) -> &TaskTracker {
        &self.calls
    }

    /// Once cancelled, new tool calls are refused (the server is shutting down).
    pub fn draining(&self) -> &CancellationToken {
        &self.draining
    }

    /// Once cancelled, calls still in flight end with an error answer (the shutdown's grace
    /// period is over): their clients get an answer rather than a cut connection.
    pub fn ended(&self) -> &CancellationToken {
        &self.ended
    }

    /// How a call may use Port: its budget, and in passthrough mode the caller's token (taken
    /// from the HTTP request's headers, when there is one).
    pub fn call_context(&self, headers: Option<&axum::http::HeaderMap>) -> CallContext {
        let caller_token = if self.client.is_passthrough() {
            headers.and_then(bearer_token).map(Secret::new)
        } else {
            None
        };
        CallContext {
            caller_token,
            ..CallContext::default()
        }
    }

    /// Runs a tool's whole work (its catalog [`catalog::RunFn`], which REST runs too) as this
    /// MCP call: with the caller's call context, and ended by the client's cancellation.
    async fn run_in_call(
        &self,
        run: catalog::RunFn,
        raw: &JsonObject,
        ctx: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let call = self.call_context(http_parts(ctx).map(|p| &p.headers));
        tokio::select! {
            _ = ctx.ct.cancelled() => result::cancelled(),
            done = run(self, raw, &call) => done,
        }
    }

    /// Sends one request within the call's budget; a cancelled call drops the in-flight Port
    /// request at once (rmcp does not drop the handler future itself).
    async fn send(
        &self,
        request: &PortRequest,
        ctx: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let call = self.call_context(http_parts(ctx).map(|p| &p.headers));
        tokio::select! {
            _ = ctx.ct.cancelled() => result::cancelled(),
            outcome = self.send_with(request, &call) => match outcome {
                Ok(response) => result::success(response),
                Err(failure) => failure,
            },
        }
    }

    /// Sends one request; a failure comes back as the tool result the model sees.
    async fn send_with(
        &self,
        request: &PortRequest,
        call: &CallContext,
    ) -> Result<PortResponse, CallToolResult> {
        self.client.send_with(request, call).await.map_err(|e| {
            tracing::warn!(method = request.method.as_str(), error = %e, "Port call failed");
            result::port_failure(&e)
        })
    }

    /// The Port request these arguments make, with the mapping check's findings (expressions
    /// it could not fully verify); or why nothing may be sent. Shared by the MCP tools and the
    /// REST surface.
    ///
    /// The jq check is CPU work: it runs on a thread of its own, within the check limits.
    pub async fn prepare<T: ToolArgs>(
        &self,
        raw: &JsonObject,
    ) -> Result<(PortRequest, Vec<crate::mapping::Finding>), Refusal> {
        let args = args::parse::<T>(raw).map_err(Refusal::InvalidArgument)?;
        // The jq check (skipped with `--no-mapping-validation`) of the mapping they would send.
        let findings = match (self.check_mappings, args.mapping_config(raw)) {
            (true, Some(config)) => self.checked_mapping(config).await.map_err(|e| match e {
                crate::mapping::CheckError::TooManyExpressions { .. } => {
                    Refusal::InvalidArgument(args::ArgError {
                        argument: "body.config".into(),
                        message: e.to_string(),
                    })
                }
                other => Refusal::Busy(other.to_string()),
            })?,
            _ => Vec::new(),
        };
        if findings.iter().any(|f| f.outcome == "refused") {
            return Err(Refusal::Mapping(findings));
        }
        Ok((args.request(raw), findings))
    }

    /// The mapping check of a config, counted in the metrics and in a span of its own when
    /// tracing is on.
    async fn checked_mapping(
        &self,
        config: &serde_json::Value,
    ) -> Result<Vec<crate::mapping::Finding>, crate::mapping::CheckError> {
        use crate::mapping::CheckError;
        let telemetry = self.client.telemetry();
        let span = telemetry.traces().and_then(|t| t.start_mapping_check());
        let checked = crate::mapping::check_config_async(
            config.clone(),
            &self.mapping_limits,
            &self.jq_slots,
        )
        .await;
        // A finding is `refused` or `unchecked`.
        let refused = match &checked {
            Ok(findings) => findings.iter().filter(|f| f.outcome == "refused").count(),
            Err(_) => 0,
        };
        let unchecked = checked
            .as_ref()
            .map_or(0, |f| f.len().saturating_sub(refused));
        if let Some(m) = telemetry.metrics() {
            match &checked {
                Ok(_) => m.mapping_checked(refused, unchecked),
                Err(CheckError::Busy { .. }) => m.busy(crate::telemetry::metrics::Busy::JqSlots),
                Err(_) => {}
            }
        }
        if let Some(span) = span {
            let expressions = crate::mapping::expressions(config).len();
            let error = match &checked {
                Ok(_) if refused > 0 => Some("mapping_refused"),
                Ok(_) => None,
                Err(CheckError::TooManyExpressions { .. }) => Some("too_many_expressions"),
                Err(CheckError::Busy { .. }) => Some("busy"),
                Err(CheckError::Internal(_)) => Some("_OTHER"),
            };
            span.end(expressions, refused, unchecked, error);
        }
        checked
    }

    /// Parses the arguments, sends the request unless they are invalid, and maps the outcome.
    async fn forward<T: ToolArgs>(
        &self,
        raw: JsonObject,
        ctx: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let call = self.call_context(http_parts(ctx).map(|p| &p.headers));
        let forwarded = tokio::select! {
            _ = ctx.ct.cancelled() => return result::cancelled(),
            forwarded = self.forward_with::<T>(&raw, &call) => forwarded,
        };
        match forwarded {
            Forwarded::Answer(response, notes) => {
                let mut outcome = result::success(response);
                result::add_mapping_notes(&mut outcome, &notes);
                outcome
            }
            Forwarded::Done(outcome) => outcome,
        }
    }

    /// The part of a forwarding tool call that does not depend on how its answer is encoded:
    /// argument checks, the mapping check, and the request to Port.
    async fn forward_with<T: ToolArgs>(&self, raw: &JsonObject, call: &CallContext) -> Forwarded {
        self.forward_prepared(|tools, raw| Box::pin(tools.prepare::<T>(raw)), raw, call)
            .await
    }

    /// [`Self::forward_with`], for the argument type behind `prepare` (a catalog row's).
    async fn forward_prepared(
        &self,
        prepare: catalog::PrepareFn,
        raw: &JsonObject,
        call: &CallContext,
    ) -> Forwarded {
        let (request, findings) = match prepare(self, raw).await {
            Ok(prepared) => prepared,
            Err(Refusal::Busy(message)) => {
                return Forwarded::Done(result::jq_unavailable(&message));
            }
            Err(Refusal::InvalidArgument(e)) => {
                return Forwarded::Done(result::invalid_arguments(&e));
            }
            Err(Refusal::Mapping(findings)) => {
                return Forwarded::Done(result::mapping_refused(&findings));
            }
        };
        match self.send_with(&request, call).await {
            Ok(response) => Forwarded::Answer(response, findings),
            Err(failure) => Forwarded::Done(failure),
        }
    }

    /// One call of a tool that only forwards to Port, by name, for transports that encode the
    /// answer themselves (the lean path, on HTTP and stdio). `None` for any other tool (delete asks
    /// for confirmation, the mapping tools do their own work), and for tools not offered or
    /// refused by `headers` (read-only mode): rmcp's path answers those. Port's answer is not
    /// parsed into a JSON tree.
    pub async fn forward_named(
        &self,
        name: &str,
        raw: &JsonObject,
        headers: &axum::http::HeaderMap,
        meta: &audit::CallMeta<'_>,
    ) -> Option<Forwarded> {
        if self.draining.is_cancelled()
            || !self.tool_router.has_route(name)
            || (read_only_header(headers) && catalog::writes(name))
        {
            return None;
        }
        let _in_flight = self.calls.token();
        let call = CallContext {
            text_only: true,
            ..self.call_context(Some(headers))
        };
        let prepare = catalog::spec(name).filter(|s| s.lean)?.prepare?;
        let forwarded = async {
            tokio::select! {
                forwarded = self.forward_prepared(prepare, raw, &call) => forwarded,
                _ = self.ended.cancelled() => Forwarded::Done(result::ended_by_shutdown()),
            }
        };
        let outcome = |f: &Forwarded| match f {
            Forwarded::Answer(..) => audit::Outcome::Ok,
            Forwarded::Done(r) => audit::outcome_of_result(r),
        };
        let identifier = audit::identifier(Some(raw));
        let meta = audit::CallMeta {
            args_digest: audit::digest(name, Some(raw)),
            ..*meta
        };
        Some(
            audit::observe(
                self.client.telemetry(),
                &meta,
                name,
                identifier,
                forwarded,
                outcome,
            )
            .await,
        )
    }
}

/// Why a call was refused before anything was sent to Port.
pub enum Refusal {
    /// An argument is invalid.
    InvalidArgument(args::ArgError),
    /// The mapping has expressions Port's integration framework would refuse (all the
    /// findings, refused or not).
    Mapping(Vec<crate::mapping::Finding>),
    /// The mapping check could not run in time (busy, or over its time limit); the message
    /// names the limits.
    Busy(String),
}

/// What a forwarding tool call came to, before its answer is encoded.
pub enum Forwarded {
    /// Port answered: its answer, and the mapping check's notes on expressions it could not
    /// fully verify (shown after the answer).
    Answer(PortResponse, Vec<crate::mapping::Finding>),
    /// Anything else (invalid arguments, a refused mapping, Port's failure), as the tool result.
    Done(CallToolResult),
}

#[tool_router]
impl PortTools {
    #[tool(
        name = "get-all-integrations",
        description = "List every integration (data source) of the Port organization with its \
            full record: identifier, title, type (installationAppType), version, mapping config, \
            changelog destination and resyncState (running, completed, failed, aborted). Start \
            here to find an integration's identifier. Needs the moderator or admin role; members \
            can use get-all-integrations-meta-data instead."
    )]
    async fn get_all_integrations(
        &self,
        Parameters(raw): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.forward::<ListArgs>(raw, &ctx).await
    }

    #[tool(
        name = "get-all-integrations-meta-data",
        description = "List the integrations of the Port organization in brief: identifier, \
            installation ID, integration type and last update time, without configs. Works for \
            members as well as moderators and admins; cheaper than get-all-integrations."
    )]
    async fn get_all_integrations_meta_data(
        &self,
        Parameters(raw): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.forward::<MetadataArgs>(raw, &ctx).await
    }

    #[tool(
        name = "get-integration",
        description = "Get one integration by identifier: its mapping config (resources with \
            selector and entity mappings as jq expressions), version, changelog destination and \
            resyncState, which tells whether the last resync is running, completed, failed or \
            aborted. Needs the moderator or admin role."
    )]
    async fn get_integration(
        &self,
        Parameters(raw): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.forward::<GetArgs>(raw, &ctx).await
    }

    #[tool(
        name = "update-integration",
        description = "Change an integration's fields (title, version, installationAppType, \
            config, changelogDestination) with a partial update (PATCH). With no body, or an \
            empty body {}, nothing changes: an empty PATCH was Port's documented resync \
            trigger, but current Ocean polling integrations (Ocean 0.44.1 and later) resync \
            only on an explicit resync request and may ignore it; resync-integration (sync \
            toolset) is the reliable way to re-run an integration. A config sent here replaces \
            the whole current config (to change only the mapping, prefer \
            update-integration-s-config). Check the outcome with get-integration (resyncState) \
            and get-integration-s-event-logs. Needs a role allowed to update integrations \
            (moderator or admin)."
    )]
    async fn update_integration(
        &self,
        Parameters(raw): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.forward::<UpdateArgs>(raw, &ctx).await
    }

    #[tool(
        name = "delete-integration",
        description = "Delete an integration's record from the Port organization. This does \
            NOT stop an exporter that is still running: stop or uninstall it separately, or it \
            may keep ingesting data. Cannot be undone; confirm the identifier with \
            get-integration first. Needs a role allowed to delete integrations (moderator or admin)."
    )]
    async fn delete_integration(
        &self,
        Parameters(raw): Parameters<JsonObject>,
        InputResponses(responses): InputResponses,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResponse {
        let args = match args::parse::<DeleteArgs>(&raw) {
            Ok(args) => args,
            Err(e) => return result::invalid_arguments(&e).into(),
        };
        match confirm::confirm_delete(self, &args, responses, &ctx).await {
            confirm::Decision::Proceed => self.send(&args.request(&raw), &ctx).await.into(),
            confirm::Decision::Respond(response) => response,
        }
    }

    #[tool(
        name = "update-integration-s-config",
        description = "Replace an integration's whole config, i.e. its mapping: \
            {\"config\": {deleteDependentEntities, createMissingRelatedEntities, resources: [{kind, \
            selector: {query}, port: {entity: {mappings}}}]}}. Values in selector.query and in \
            the mappings are jq expressions over each raw item (a literal blueprint needs jq \
            quotes, e.g. \"\\\"service\\\"\"). Read the current config with get-integration \
            first and send it back complete. Port triggers a resync after the change; check its \
            outcome per kind with get-integration-sync-status (sync toolset), or with \
            get-integration (resyncState) and get-integration-s-event-logs; to run and follow a \
            fresh resync, use resync-integration. Needs a role allowed to update integrations \
            (moderator or admin)."
    )]
    async fn update_integration_s_config(
        &self,
        Parameters(raw): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.forward::<UpdateConfigArgs>(raw, &ctx).await
    }

    #[tool(
        name = "get-integration-s-event-logs",
        description = "Read an integration's event logs (what its exporter reported during \
            resyncs), newest first by default. Filter by levels (e.g. [\"ERROR\", \"FATAL\"] to \
            see why a resync failed), etl_phases, kinds or one event_id; page with limit \
            (0-300, default 100) and the timestamp and log_id of the last log seen plus \
            direction. Needs the moderator or admin role."
    )]
    async fn get_integration_s_event_logs(
        &self,
        Parameters(raw): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        self.forward::<LogsArgs>(raw, &ctx).await
    }
}

/// Arguments of `preview-integration-mapping`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewArgs {
    /// The mapping to try: a whole integration config (`{"resources": [...]}`, as
    /// get-integration returns under `integration.config`) or one resource
    /// (`{kind, selector, port}`).
    pub config: JsonObject,
    /// Only the resources of this kind (default: every resource of the config).
    #[serde(default)]
    pub kind: Option<String>,
    /// Sample raw items (1 to 100), as the integration's source API returns them.
    #[schemars(length(min = 1, max = 100))]
    pub items: Vec<serde_json::Value>,
}

/// The opt-in `mapping` toolset (`--toolsets integrations,mapping`).
#[tool_router(router = mapping_router)]
impl PortTools {
    #[tool(
        name = "preview-integration-mapping",
        description = "Run a mapping locally on sample raw items, as Port's integration \
            framework would, without touching Port or starting a resync: per item and \
            resource, whether selector.query keeps it, and the entity each mapping makes \
            (identifier, title, blueprint, properties, relations), with each jq expression's \
            error in place of its value. Use it to check a mapping change before \
            update-integration-s-config."
    )]
    async fn preview_integration_mapping(
        &self,
        Parameters(raw): Parameters<JsonObject>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let args: PreviewArgs =
            match serde_path_to_error::deserialize(serde_json::Value::Object(raw)) {
                Ok(a) => a,
                Err(e) => {
                    return result::invalid_arguments(&args::ArgError {
                        argument: e.path().to_string(),
                        message: e.inner().to_string(),
                    });
                }
            };
        if args.items.is_empty() || args.items.len() > 100 {
            return result::invalid_arguments(&args::ArgError {
                argument: "items".into(),
                message: format!("give 1 to 100 sample items, not {}", args.items.len()),
            });
        }
        let config = serde_json::Value::Object(args.config);
        // Refuse what breaks a limit before starting a worker, naming the expression.
        let limits = &self.mapping_limits;
        let found = crate::mapping::expressions(&config);
        if let Err(e) = crate::mapping::check_count(found.len(), limits) {
            return result::invalid_arguments(&args::ArgError {
                argument: "config".into(),
                message: e.to_string(),
            });
        }
        for (i, _, field, expression) in &found {
            if let Some(refusal) = limits.refuse_expression(expression) {
                return result::invalid_arguments(&args::ArgError {
                    argument: format!("config.resources[{i}].{field}"),
                    message: refusal,
                });
            }
        }
        let job = crate::mapping::worker::Job {
            config,
            kind: args.kind,
            items: args.items,
            max_expression_bytes: limits.max_expression_bytes,
            max_depth: limits.max_depth,
        };
        // A cancelled call drops the worker's future, which kills the worker.
        let outcome = tokio::select! {
            _ = ctx.ct.cancelled() => return result::cancelled(),
            outcome = crate::mapping::worker::run(&job, limits, &self.jq_slots) => outcome,
        };
        match outcome {
            Ok(value) => result::success_result(value.to_string(), value),
            Err(crate::mapping::worker::PreviewError::Invalid(m)) => {
                result::invalid_arguments(&args::ArgError {
                    argument: "config".into(),
                    message: m,
                })
            }
            Err(e) => {
                if let (Some(m), crate::mapping::worker::PreviewError::Busy { .. }) =
                    (self.client.telemetry().metrics(), &e)
                {
                    m.busy(crate::telemetry::metrics::Busy::JqSlots);
                }
                tracing::warn!(error = %e, "preview stopped");
                result::jq_unavailable(&e.to_string())
            }
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl PortTools {
    /// One MCP request other than `tools/call`, timed and traced by its method.
    async fn observed<T>(
        &self,
        method: &'static str,
        ctx: &RequestContext<RoleServer>,
        work: impl Future<Output = Result<T, ErrorData>>,
    ) -> Result<T, ErrorData> {
        audit::observe_request(self.client.telemetry(), method, ctx, work).await
    }
}

impl ServerHandler for PortTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                // The guided workflow (tools/guide): prompts, resources, completion.
                .enable_prompts()
                .enable_resources()
                .enable_completions()
                .enable_tasks()
                .build(),
        )
        .with_server_info(
            Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
                .with_title("Port integrations"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    // Every request is timed and traced by method (`audit::observe_request`); tools/call in
    // `audit::observe`, with its tool.
    async fn initialize(
        &self,
        request: rmcp::model::InitializeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::InitializeResult, ErrorData> {
        let work = async {
            ctx.peer.set_peer_info(request.clone());
            self.negotiate_initialize(&request)
        };
        self.observed("initialize", &ctx, work).await
    }

    async fn ping(&self, ctx: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        self.observed("ping", &ctx, async { Ok(()) }).await
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let read_only = read_only_requested(&ctx);
        let work = async {
            let tools = self
                .tool_router
                .list_all()
                .into_iter()
                .filter(|t| !(read_only && catalog::writes(&t.name)))
                .collect();
            Ok(ListToolsResult::with_all_items(tools))
        };
        self.observed("tools/list", &ctx, work).await
    }

    // The guided workflow: thin delegations to tools/guide.
    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListPromptsResult, ErrorData> {
        self.observed("prompts/list", &ctx, async {
            guide::list_prompts(self, &ctx)
        })
        .await
    }

    async fn get_prompt(
        &self,
        request: rmcp::model::GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetPromptResponse, ErrorData> {
        let work = async { guide::get_prompt(self, &request, &ctx) };
        self.observed("prompts/get", &ctx, work).await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourcesResult, ErrorData> {
        self.observed("resources/list", &ctx, async { guide::list_resources() })
            .await
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourceTemplatesResult, ErrorData> {
        let work = async { guide::list_resource_templates(self, &ctx) };
        self.observed("resources/templates/list", &ctx, work).await
    }

    async fn read_resource(
        &self,
        request: rmcp::model::ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ReadResourceResponse, ErrorData> {
        let work = guide::read_resource(self, &request, &ctx);
        self.observed("resources/read", &ctx, work).await
    }

    async fn complete(
        &self,
        request: rmcp::model::CompleteRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CompleteResult, ErrorData> {
        let work = guide::complete(self, &request, &ctx);
        self.observed("completion/complete", &ctx, work).await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let work = async {
            Ok(GetTaskResult::new(
                self.tasks.manager().get_task(&request.task_id)?,
            ))
        };
        self.observed("tasks/get", &ctx, work).await
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let work = async {
            self.tasks
                .manager()
                .update_task(&request.task_id, request.input_responses)
        };
        self.observed("tasks/update", &ctx, work).await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let work = async { self.tasks.manager().cancel_task(&request.task_id) };
        self.observed("tasks/cancel", &ctx, work).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = audit::caller_of(http_parts(&ctx)).cloned();
        let (admission, transport) = audit::admission_of(http_parts(&ctx));
        let meta = audit::CallMeta {
            caller: caller.as_ref(),
            admission,
            transport,
            args_digest: audit::digest(&request.name, request.arguments.as_ref()),
            ..Default::default()
        };
        if read_only_requested(&ctx) && catalog::writes(&request.name) {
            audit::refused(
                self.client.telemetry(),
                &meta,
                &request.name,
                audit::identifier(request.arguments.as_ref()),
            )
            .await;
            return Err(ErrorData::invalid_params(
                format!(
                    "tool `{}` is not available: this request asked for read-only mode ({READ_ONLY_HEADER})",
                    request.name
                ),
                None,
            ));
        }
        if self.draining.is_cancelled() {
            return Ok(result::shutting_down().into());
        }
        let _in_flight = self.calls.token();
        let name = request.name.clone();
        // The arguments move into the call; the audit line keeps only the identifier.
        let identifier = audit::identifier(request.arguments.as_ref()).map(str::to_owned);
        let traced = self
            .client
            .telemetry()
            .traces()
            .map(|_| audit::TraceFields::of(&request, &ctx));
        let tcc = ToolCallContext::new(self, request, ctx);
        let work = async {
            tokio::select! {
                answer = self.tool_router.call(tcc) => answer,
                _ = self.ended.cancelled() => Ok(result::ended_by_shutdown().into()),
            }
        };
        let meta = audit::CallMeta {
            trace: traced
                .as_ref()
                .map(audit::TraceFields::info)
                .unwrap_or_default(),
            ..meta
        };
        audit::observe(
            self.client.telemetry(),
            &meta,
            &name,
            identifier.as_deref(),
            work,
            audit::outcome_of,
        )
        .await
    }
}
