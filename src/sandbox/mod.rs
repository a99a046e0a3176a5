//! An in-memory Port organization served over HTTP on loopback.
//!
//! It backs `--sandbox` (try every tool without a Port account), the `sandbox-api` command
//! (interop checks and benchmarks) and the tests, which is why it records every request it
//! receives and can be told to answer the next requests with scripted faults. Its behaviour
//! follows `port-api-notes.md`: the token exchange, Bearer checks, the seven routes with the
//! `{ok, integration(s)}` shapes Port's own clients read, `{ok:false, error, message}` failures,
//! the 1 MiB body limit, `x-trace-id` on every answer, and a resync started by every PATCH.
//! The sync routes of `port-sync-api.md` (resync, restore, metrics, history, kind examples)
//! are in `sync_api`, the runs behind them in `sync`; the demo data, with its
//! failing-integration story, in `seed`.

mod seed;
mod sync;
mod sync_api;

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::Response,
};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::mapping::{JqSlots, MappingLimits};

/// Port refuses bodies above 1 MiB.
const PORT_BODY_LIMIT: usize = 1024 * 1024;

/// Client credentials the sandbox accepts by default (not secrets: they open only the sandbox).
pub const SANDBOX_CLIENT_ID: &str = "sandbox-client-id";
/// See [`SANDBOX_CLIENT_ID`].
pub const SANDBOX_CLIENT_SECRET: &str = "sandbox-client-secret";

/// One request as the sandbox received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// Method, e.g. `PATCH`.
    pub method: String,
    /// Path as sent (still percent-encoded).
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Headers, names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
}

impl RecordedRequest {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (`Null` when empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A scripted answer, used instead of the normal one for the next matching request.
#[derive(Debug, Clone)]
pub struct ScriptedResponse {
    /// Only requests whose path starts with this are answered (None: any route but the token one).
    pub path_prefix: Option<String>,
    /// Status to answer with.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
    /// Body as bytes, sent instead of `body` when set: for answers that are not UTF-8.
    pub raw_body: Option<Vec<u8>>,
    /// Wait this long before answering (to provoke timeouts).
    pub delay: Option<Duration>,
    /// Leave out the fake's own `x-trace-id` (a header in `headers` is then the only one).
    pub own_trace_id: bool,
}

impl ScriptedResponse {
    /// A JSON answer with the given status.
    pub fn json(status: u16, body: Value) -> Self {
        ScriptedResponse {
            path_prefix: None,
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            raw_body: None,
            delay: None,
            own_trace_id: false,
        }
    }

    /// An answer with these exact bytes as its body (any bytes: a hostile or broken Port).
    pub fn bytes(status: u16, body: impl Into<Vec<u8>>) -> Self {
        ScriptedResponse {
            raw_body: Some(body.into()),
            ..ScriptedResponse::json(status, Value::Null)
        }
    }

    /// Answers with this `x-trace-id` instead of the fake's own.
    pub fn with_trace_id(mut self, trace_id: &str) -> Self {
        self.own_trace_id = true;
        self.with_header("x-trace-id", trace_id)
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: &str) -> Self {
        ScriptedResponse::bytes(status, Vec::new()).with_header("location", location)
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Answers only requests under `prefix`.
    pub fn on_path(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    /// Delays the answer.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

/// Who may call the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxAuth {
    /// Accepted `clientId`.
    pub client_id: String,
    /// Accepted `clientSecret`.
    pub client_secret: String,
    /// Tokens accepted without an exchange (like a token copied from Port's UI).
    pub static_tokens: Vec<String>,
    /// `expiresIn` of issued tokens, in seconds.
    pub token_lifetime_secs: u64,
}

impl Default for SandboxAuth {
    fn default() -> Self {
        SandboxAuth {
            client_id: SANDBOX_CLIENT_ID.into(),
            client_secret: SANDBOX_CLIENT_SECRET.into(),
            static_tokens: Vec::new(),
            token_lifetime_secs: 10_800,
        }
    }
}

#[derive(Debug)]
struct Org {
    integrations: Vec<Value>,
    /// Runs, resync request, examples and logs per integration identifier.
    sync: HashMap<String, sync::SyncData>,
    issued_tokens: Vec<String>,
    tokens_issued: u64,
    recorded: Vec<RecordedRequest>,
    script: VecDeque<ScriptedResponse>,
}

/// Requests being answered now, the most seen at once, and answers abandoned by the caller.
#[derive(Debug, Default)]
struct Gauges {
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    aborted: AtomicU64,
}

/// Counts a request while it is being answered; an answer dropped before it was finished (the
/// caller hung up) counts as aborted.
struct InFlight {
    gauges: Arc<Gauges>,
    finished: bool,
}

impl InFlight {
    fn start(gauges: &Arc<Gauges>) -> Self {
        let now = gauges.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        gauges.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight {
            gauges: gauges.clone(),
            finished: false,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauges.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !self.finished {
            self.gauges.aborted.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The in-memory Port. Clone it to share: clones see the same organization.
#[derive(Clone)]
pub struct Sandbox {
    org: Arc<Mutex<Org>>,
    auth: Arc<SandboxAuth>,
    counter: Arc<AtomicU64>,
    gauges: Arc<Gauges>,
    /// When set, a run ends by itself this long after its mapping was applied (demos).
    auto_resync: Option<Duration>,
    /// When set, runs apply the mapping to the examples in the preview worker.
    mapping: Option<Arc<sync::Mapping>>,
    /// What POST /resync and /restore answer on success (Port's answer is undocumented).
    trigger_answer: (StatusCode, Value),
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new(SandboxAuth::default())
    }
}

impl Sandbox {
    /// A sandbox seeded with the demo integrations.
    pub fn new(auth: SandboxAuth) -> Self {
        let integrations = seed::integrations();
        Sandbox {
            org: Arc::new(Mutex::new(Org {
                sync: sync::seeded(&integrations),
                integrations,
                issued_tokens: Vec::new(),
                tokens_issued: 0,
                recorded: Vec::new(),
                script: VecDeque::new(),
            })),
            auth: Arc::new(auth),
            counter: Arc::new(AtomicU64::new(0)),
            gauges: Arc::new(Gauges::default()),
            auto_resync: None,
            mapping: None,
            trigger_answer: (StatusCode::OK, json!({"ok": true})),
        }
    }

    /// Resyncs complete by themselves `after` they start, as an exporter would report them.
    pub fn with_auto_resync(mut self, after: Duration) -> Self {
        self.auto_resync = Some(after);
        self
    }

    /// Runs apply the integration's mapping to its kind examples in the preview worker (under
    /// these limits), so their outcome and counts follow the config. Without this, every
    /// example counts as loaded.
    pub fn with_mapping(mut self, limits: MappingLimits) -> Self {
        self.mapping = Some(Arc::new(sync::Mapping {
            slots: JqSlots::new(limits.max_concurrent),
            limits,
        }));
        self
    }

    /// What POST /resync and POST /restore answer when they succeed (default `200 {"ok":true}`:
    /// Port does not document it).
    pub fn with_trigger_answer(mut self, status: u16, body: Value) -> Self {
        self.trigger_answer = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body);
        self
    }

    /// Ends the running resync of an integration with `status` (completed, failed, aborted),
    /// as the exporter would report it: the running run ends with that state (its counts are
    /// the mapping's outcome when it was already applied, zero otherwise) and the resync state
    /// follows, running run or not.
    pub fn finish_resync(&self, identifier: &str, status: &str) {
        if sync::finish_run(self, identifier, None, Some(status)).is_some() {
            return;
        }
        let mut org = self.org();
        let Some(i) = find(&org.integrations, identifier) else {
            return;
        };
        let now = now();
        let state = &mut org.integrations[i]["resyncState"];
        state["status"] = json!(status);
        state["lastResyncEnd"] = json!(now);
        state["updatedAt"] = json!(now);
    }

    /// Waits until the running run of an integration has applied its mapping (bounded by the
    /// preview time limit per kind), then ends it with the state its outcome gives: `failed` if
    /// any object failed, else `completed`. Returns that state; None when nothing was running.
    pub async fn settle_resync(&self, identifier: &str) -> Option<String> {
        let per_kind = self
            .mapping
            .as_ref()
            .map_or(Duration::ZERO, |m| m.limits.preview_timeout());
        let deadline = tokio::time::Instant::now()
            + per_kind.saturating_mul(sync::MAX_RESOURCES as u32 + 1)
            + Duration::from_secs(5);
        loop {
            let ready = {
                let org = self.org();
                match org.sync.get(identifier).and_then(|d| d.runs.front()) {
                    Some(run) if run.state == sync::SYNCING => run.outcome.is_some(),
                    _ => return None,
                }
            };
            if ready || tokio::time::Instant::now() >= deadline {
                return sync::finish_run(self, identifier, None, None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The eventId of an integration's newest run.
    pub fn latest_event_id(&self, identifier: &str) -> Option<String> {
        let org = self.org();
        org.sync
            .get(identifier)
            .and_then(|d| d.runs.front())
            .map(|r| r.event_id.clone())
    }

    /// An integration's runs as syncsMetadata items (`{eventId, syncState, createdAt,
    /// updatedAt}`), newest first.
    pub fn sync_history(&self, identifier: &str) -> Vec<Value> {
        let org = self.org();
        org.sync
            .get(identifier)
            .map(|d| d.runs.iter().map(sync_api::metadata).collect())
            .unwrap_or_default()
    }

    /// Replaces an integration's raw examples of `kind` (at most five are kept, as Ocean sends).
    pub fn set_kind_examples(&self, identifier: &str, kind: &str, examples: Vec<Value>) {
        let ids: Vec<u64> = (0..sync::MAX_EXAMPLES).map(|_| self.next_id()).collect();
        let mut org = self.org();
        let kept = examples
            .into_iter()
            .take(sync::MAX_EXAMPLES)
            .zip(ids)
            .map(|(e, n)| json!({"_id": format!("example_{n}"), "data": e}))
            .collect();
        org.sync
            .entry(identifier.to_string())
            .or_default()
            .examples
            .insert(kind.to_string(), kept);
    }

    /// The most requests that were being answered at the same time.
    pub fn max_concurrent(&self) -> u64 {
        self.gauges.max_in_flight.load(Ordering::SeqCst)
    }

    /// Requests whose caller hung up before the answer was finished.
    pub fn aborted(&self) -> u64 {
        self.gauges.aborted.load(Ordering::SeqCst)
    }

    fn org(&self) -> MutexGuard<'_, Org> {
        // A panic while holding the lock cannot leave the data half-written in a way that
        // matters for a fake, so a poisoned lock is simply taken over.
        self.org.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.org().recorded.clone()
    }

    /// Requests received so far, except token exchanges.
    pub fn api_requests(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path != "/v1/auth/access_token")
            .collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.org().recorded.clear();
    }

    /// Answers the next matching request with `response` instead of the normal answer.
    pub fn script(&self, response: ScriptedResponse) {
        self.org().script.push_back(response);
    }

    /// Invalidates every issued token, as if they had expired.
    pub fn expire_tokens(&self) {
        self.org().issued_tokens.clear();
    }

    /// The current record of an integration.
    pub fn integration(&self, identifier: &str) -> Option<Value> {
        let org = self.org();
        find(&org.integrations, identifier).map(|i| org.integrations[i].clone())
    }

    /// Replaces the organization's integrations.
    pub fn set_integrations(&self, integrations: Vec<Value>) {
        self.org().integrations = integrations;
    }

    /// The axum app serving the API.
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(16 * PORT_BODY_LIMIT))
            .with_state(self.clone())
    }

    /// Serves the API on `addr` until the process ends; returns the bound address.
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let app = self.router();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "sandbox server stopped");
            }
        });
        Ok(bound)
    }

    /// Serves the API on an ephemeral loopback port; returns its base URL.
    pub async fn spawn(&self) -> std::io::Result<String> {
        let bound = self.serve(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        Ok(format!("http://{bound}"))
    }

    fn next_id(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }
}

fn find(integrations: &[Value], identifier: &str) -> Option<usize> {
    integrations
        .iter()
        .position(|i| i["identifier"].as_str() == Some(identifier))
}

/// Port's timestamps: ISO 8601, UTC, milliseconds.
fn now() -> String {
    iso_millis(now_millis())
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0)
}

fn iso_millis(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

async fn handle(
    State(sandbox): State<Sandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let record = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let mut in_flight = InFlight::start(&sandbox.gauges);
    let trace_id = format!("sandbox-trace-{}", sandbox.next_id());
    let scripted = {
        let mut org = sandbox.org();
        org.recorded.push(record.clone());
        let is_token = record.path == "/v1/auth/access_token";
        let pos = org.script.iter().position(|s| match &s.path_prefix {
            Some(p) => record.path.starts_with(p.as_str()),
            None => !is_token,
        });
        pos.and_then(|p| org.script.remove(p))
    };
    if let Some(s) = scripted {
        if let Some(d) = s.delay {
            tokio::time::sleep(d).await;
        }
        in_flight.finished = true;
        let mut builder = Response::builder()
            .status(StatusCode::from_u16(s.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        if !s.own_trace_id {
            builder = builder.header("x-trace-id", &trace_id);
        }
        for (k, v) in &s.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let body = match s.raw_body {
            Some(bytes) => Body::from(bytes),
            None => Body::from(s.body),
        };
        return builder
            .body(body)
            .unwrap_or_else(|_| Response::new(Body::empty()));
    }
    let (status, value) = answer(&sandbox, &method, &record, &body);
    in_flight.finished = true;
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-trace-id", trace_id)
        .header("x-ratelimit-limit", "1000")
        .header("x-ratelimit-remaining", "999")
        .header("x-ratelimit-period", "60")
        // Port sends the window's reset on every answer, not only when it limits.
        .header("x-ratelimit-reset", "59")
        .body(Body::from(value.to_string()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn fail(status: StatusCode, error: &str, message: impl Into<String>) -> (StatusCode, Value) {
    (
        status,
        json!({"ok": false, "error": error, "message": message.into()}),
    )
}

fn answer(
    sandbox: &Sandbox,
    method: &Method,
    record: &RecordedRequest,
    body: &Bytes,
) -> (StatusCode, Value) {
    if body.len() > PORT_BODY_LIMIT {
        return fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            "Request body is too large (limit is 1MiB)",
        );
    }
    let segments: Vec<String> = record
        .path
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    if method == Method::POST && segs == ["v1", "auth", "access_token"] {
        return exchange(sandbox, body);
    }
    if !authorized(sandbox, record) {
        return fail(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "The provided token is invalid or expired",
        );
    }
    let query: Vec<(String, String)> = record
        .query
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let mut org = sandbox.org();
    if let Some(answer) = sync_api::route(sandbox, &mut org, method.as_str(), &segs, &query, body) {
        return answer;
    }
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["v1", "integration"]) => {
            let filter = query
                .iter()
                .find(|(k, _)| k == "actionsProcessingEnabled")
                .map(|(_, v)| v == "true");
            let list: Vec<Value> = org
                .integrations
                .iter()
                .filter(|i| {
                    filter.is_none_or(|f| i["actionsProcessingEnabled"].as_bool() == Some(f))
                })
                .cloned()
                .collect();
            (StatusCode::OK, json!({"ok": true, "integrations": list}))
        }
        ("GET", ["v1", "integration", "metadata"]) => {
            let list: Vec<Value> = org
                .integrations
                .iter()
                .map(|i| {
                    json!({
                        "identifier": i["identifier"],
                        "installationId": i["installationId"],
                        "integrationType": i["integrationType"],
                        "updatedAt": i["updatedAt"],
                    })
                })
                .collect();
            (StatusCode::OK, json!({"ok": true, "integrations": list}))
        }
        ("GET", ["v1", "integration", id]) => {
            let by_log_ingest = query
                .iter()
                .any(|(k, v)| k == "byField" && v == "logIngestId");
            let found = org.integrations.iter().find(|i| {
                if by_log_ingest {
                    i["logAttributes"]["ingestId"].as_str() == Some(*id)
                } else {
                    i["identifier"].as_str() == Some(*id)
                }
            });
            match found {
                Some(i) => (StatusCode::OK, json!({"ok": true, "integration": i})),
                None => not_found(id),
            }
        }
        ("PATCH", ["v1", "integration", id]) => {
            let Some(idx) = find(&org.integrations, id) else {
                return not_found(id);
            };
            let patch = if body.is_empty() {
                Value::Object(Default::default())
            } else {
                match serde_json::from_slice::<Value>(body) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => return invalid("body must be object"),
                }
            };
            let integration = &mut org.integrations[idx];
            if let (Some(target), Some(fields)) = (integration.as_object_mut(), patch.as_object()) {
                for (k, v) in fields {
                    target.insert(k.clone(), v.clone());
                }
            }
            integration["updatedAt"] = json!(now());
            sync::start_run(sandbox, &mut org, idx, false);
            (
                StatusCode::OK,
                json!({"ok": true, "integration": org.integrations[idx]}),
            )
        }
        ("DELETE", ["v1", "integration", id]) => match find(&org.integrations, id) {
            Some(idx) => {
                org.integrations.remove(idx);
                org.sync.remove(*id);
                (StatusCode::OK, json!({"ok": true}))
            }
            None => not_found(id),
        },
        ("PATCH", ["v1", "integration", id, "config"]) => {
            let Some(idx) = find(&org.integrations, id) else {
                return not_found(id);
            };
            let config = match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(o)) if o.len() == 1 && o.contains_key("config") => {
                    o["config"].clone()
                }
                Ok(Value::Object(o)) if !o.contains_key("config") => {
                    return invalid("body must have required property 'config'");
                }
                Ok(Value::Object(_)) => return invalid("body must NOT have additional properties"),
                _ => return invalid("body must be object"),
            };
            if !(config.is_object() || config.is_null()) {
                return invalid("body/config must be object,null");
            }
            let integration = &mut org.integrations[idx];
            integration["config"] = config;
            integration["updatedAt"] = json!(now());
            sync::start_run(sandbox, &mut org, idx, false);
            (
                StatusCode::OK,
                json!({"ok": true, "integration": org.integrations[idx]}),
            )
        }
        ("GET", ["v1", "integration", id, "logs"]) => {
            if find(&org.integrations, id).is_none() {
                return not_found(id);
            }
            logs(&org, id, &query)
        }
        _ => fail(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Route {method}:{} not found", record.path),
        ),
    }
}

fn not_found(id: &str) -> (StatusCode, Value) {
    fail(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("Integration with identifier \"{id}\" was not found"),
    )
}

fn invalid(message: &str) -> (StatusCode, Value) {
    fail(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
}

fn logs(org: &Org, id: &str, query: &[(String, String)]) -> (StatusCode, Value) {
    let values = |key: &str| -> Vec<&str> {
        query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let limit = match values("limit").first().map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(l)) if l <= 300 => l,
        Some(_) => return invalid("querystring/limit must be <= 300"),
    };
    let levels = values("levels");
    let kinds = values("kinds");
    let phases = values("etl_phases");
    let event = values("event_id");
    let list: Vec<Value> = org
        .sync
        .get(id)
        .map(|d| d.logs.iter())
        .into_iter()
        .flatten()
        .filter(|l| levels.is_empty() || levels.contains(&l["level"].as_str().unwrap_or("")))
        .filter(|l| kinds.is_empty() || kinds.contains(&l["extra"]["kind"].as_str().unwrap_or("")))
        .filter(|l| {
            phases.is_empty() || phases.contains(&l["extra"]["etl_phase"].as_str().unwrap_or(""))
        })
        .filter(|l| {
            event.is_empty() || event.contains(&l["extra"]["event_id"].as_str().unwrap_or(""))
        })
        .take(limit)
        .cloned()
        .collect();
    (StatusCode::OK, json!({"ok": true, "data": {"logs": list}}))
}

fn exchange(sandbox: &Sandbox, body: &Bytes) -> (StatusCode, Value) {
    let creds: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (Some(id), Some(secret)) = (creds["clientId"].as_str(), creds["clientSecret"].as_str())
    else {
        return invalid("body must have required property 'clientId' and 'clientSecret'");
    };
    if id != sandbox.auth.client_id || secret != sandbox.auth.client_secret {
        return fail(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Invalid client credentials",
        );
    }
    let token = {
        let mut org = sandbox.org();
        org.tokens_issued += 1;
        let token = format!("sandbox-access-token-{}", org.tokens_issued);
        org.issued_tokens.push(token.clone());
        token
    };
    (
        StatusCode::OK,
        json!({
            "ok": true,
            "accessToken": token,
            "expiresIn": sandbox.auth.token_lifetime_secs,
            "tokenType": "Bearer"
        }),
    )
}

fn authorized(sandbox: &Sandbox, record: &RecordedRequest) -> bool {
    let Some(token) = record
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
    else {
        return false;
    };
    sandbox.auth.static_tokens.iter().any(|t| t == token)
        || sandbox.org().issued_tokens.iter().any(|t| t == token)
}
