//! The soak benchmark: `cargo bench --bench soak`.
//!
//! Why: a server that many agents share runs for weeks. A leak of a few bytes per call, a
//! socket never closed, or a session never freed does not show in a 3 s benchmark, but does
//! after a million calls. This bench makes `SOAK_CALLS` (default 1,000,000) tool calls through
//! each transport (streamable HTTP stateless, streamable HTTP with sessions, stdio) against the
//! release server and a fake Port on loopback, and checks that the server's resident memory at
//! the end is within 10% of what it held after the first 10,000 calls, and that it holds no more
//! file descriptors than then.
//!
//! The calls are a fixed mix that includes the error paths, since those are where cleanup is
//! most often forgotten: successes (get-integration, get-all-integrations,
//! update-integration-s-config, preview-integration-mapping, tools/list), invalid arguments and a
//! refused jq mapping (refused locally), Port's 404, 500, 503 and 429, an unknown tool, a line
//! that is not JSON, and, over HTTP, calls on a fresh TCP connection and (with sessions) a whole
//! session opened, used and closed. Every answer is classified and compared with what the
//! client must see, and the fake Port's counters with what it must receive: calls refused
//! locally must send Port nothing.
//!
//! Memory and descriptors are read from `/proc/PID` at checkpoints where no call is in flight
//! (after 10,000 calls, then at a quarter, half, three quarters and the end), so the figures
//! compare like with like. At each checkpoint the load generator first closes its HTTP
//! connections (see [`Clients`]) and waits for the server's descriptor count to settle, so what
//! is counted is what the server itself holds: listener, sessions' state, its connections to
//! Port. The bench ends by itself: the call count bounds every loop, every
//! call has a deadline, and `SOAK_MAX_SECS` bounds each transport's run. It exits non-zero if a
//! transport fails.
//!
//! Settings (environment): `SOAK_CALLS` (calls per transport, default 1,000,000),
//! `SOAK_CONCURRENCY` (calls in flight, default 64), `SOAK_TRANSPORTS` (any of
//! `stateless,stateful,stdio`, default all three), `SOAK_MAX_SECS` (per transport, default
//! 1800), `SOAK_ONLY` (only the kinds of call whose name contains this text, to measure one);
//! and as for `bench`, `BENCH_SERVER` (the server binary) and `BENCH_SERVER_ENV`. The server
//! runs with the mapping toolset on and one attempt per call (see [`SERVER_ENV`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use common::{PortClass, StdioPipe, fd_count, mib, rss_kib, thread_count};
use serde::Deserialize;
use serde_json::{Value, json};

/// RSS at the end may exceed RSS after the first 10,000 calls by at most this share.
const RSS_TOLERANCE: f64 = 0.10;
/// The first checkpoint: what the end is compared with.
const BASELINE_CALLS: u64 = 10_000;
/// The longest any one call may take before it counts as hung.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Size of the fake Port's list answer: large enough to be a real list, small enough not to
/// turn the soak into a bandwidth test (that is `bench`'s 2 MB scenario).
const LIST_BYTES: usize = 20_000;
/// Each server's retries are off (one attempt), so Port's 503 and 429 come back at once instead
/// of holding a slot through backoff, and the fake Port's counters can be checked exactly.
/// `BENCH_SERVER_ENV=PORT_MAX_ATTEMPTS=n` turns them on (the check then allows up to n each).
/// The servers' PORT_MAX_IN_FLIGHT (set by `common`): their pool of connections to Port may
/// fill up to it.
const MAX_IN_FLIGHT: u64 = 64;
const SERVER_ENV: &[(&str, &str)] = &[
    ("PORT_TOOLSETS", "integrations,mapping"),
    ("PORT_MAX_ATTEMPTS", "1"),
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(common::FAKE_PORT) {
        common::fake_port(&args);
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if !rt.block_on(run()) {
        std::process::exit(1);
    }
}

// ----------------------------------------------------------------------------------------------
// The mix of calls.

/// One sort of call in the mix, with what the client must see and what Port must receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Get,
    GetAll,
    UpdateConfig,
    Preview,
    ToolsList,
    InvalidArgs,
    JqRefused,
    NotFound,
    Port500,
    Port503,
    Port429,
    UnknownTool,
    NotJson,
    FreshConnection,
    NewSession,
}

impl Kind {
    const ALL: [Kind; 15] = [
        Kind::Get,
        Kind::GetAll,
        Kind::UpdateConfig,
        Kind::Preview,
        Kind::ToolsList,
        Kind::InvalidArgs,
        Kind::JqRefused,
        Kind::NotFound,
        Kind::Port500,
        Kind::Port503,
        Kind::Port429,
        Kind::UnknownTool,
        Kind::NotJson,
        Kind::FreshConnection,
        Kind::NewSession,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Get => "get-integration",
            Kind::GetAll => "get-all-integrations (20 KB)",
            Kind::UpdateConfig => "update-integration-s-config",
            Kind::Preview => "preview-integration-mapping",
            Kind::ToolsList => "tools/list",
            Kind::InvalidArgs => "invalid arguments",
            Kind::JqRefused => "refused jq mapping",
            Kind::NotFound => "Port 404",
            Kind::Port500 => "Port 500",
            Kind::Port503 => "Port 503",
            Kind::Port429 => "Port 429",
            Kind::UnknownTool => "unknown tool",
            Kind::NotJson => "line/body not JSON",
            Kind::FreshConnection => "get-integration, new TCP connection",
            Kind::NewSession => "new session: open, call, close",
        }
    }

    /// Calls of this kind per 1,000. The jq-heavy calls are rarer than in real use because
    /// each costs the server milliseconds of CPU (preview about 18 ms for 3 items, a refused
    /// mapping about 2 ms, a 66-expression config update about 1.5 ms, against 0.07 ms for a
    /// get), and a million calls must fit on a shared machine; thousands of them still run.
    fn weight(self) -> u64 {
        match self {
            Kind::Get => 400,
            Kind::GetAll => 40,
            Kind::UpdateConfig => 40,
            Kind::Preview => 5,
            Kind::ToolsList => 20,
            Kind::InvalidArgs => 120,
            Kind::JqRefused => 15,
            Kind::NotFound => 100,
            Kind::Port500 => 50,
            Kind::Port503 => 40,
            Kind::Port429 => 40,
            Kind::UnknownTool => 40,
            Kind::NotJson => 40,
            Kind::FreshConnection => 25,
            Kind::NewSession => 25,
        }
    }

    /// The kind actually sent on `transport` (connection and session churn exist on HTTP only).
    fn on(self, transport: Transport) -> Kind {
        match (self, transport) {
            (Kind::FreshConnection, Transport::Stdio) => Kind::Get,
            (Kind::NewSession, Transport::Stdio | Transport::Stateless) => Kind::Get,
            (k, _) => k,
        }
    }

    /// What the client must see (see [`classify`]): the label, or its beginning.
    fn expected(self, transport: Transport) -> &'static str {
        match self {
            Kind::Get
            | Kind::GetAll
            | Kind::UpdateConfig
            | Kind::Preview
            | Kind::ToolsList
            | Kind::FreshConnection
            | Kind::NewSession => "ok",
            Kind::InvalidArgs => "isError invalid_argument",
            Kind::JqRefused => "isError invalid_mapping",
            Kind::NotFound => "isError Port 404",
            Kind::Port500 => "isError Port 500",
            Kind::Port503 => "isError Port 503",
            Kind::Port429 => "isError Port 429",
            Kind::UnknownTool => "JSON-RPC error -32602",
            Kind::NotJson => match transport {
                Transport::Stdio => "JSON-RPC error -32700",
                // Any client error: which 4xx is the transport's business.
                Transport::Stateless | Transport::Stateful => "HTTP 4",
            },
        }
    }

    /// The fake Port counter each call of this kind adds one request to (one attempt each).
    fn port_class(self) -> Option<PortClass> {
        match self {
            Kind::Get | Kind::FreshConnection | Kind::NewSession => Some(PortClass::GetOne),
            Kind::GetAll => Some(PortClass::GetAll),
            Kind::UpdateConfig => Some(PortClass::PatchConfig),
            Kind::NotFound => Some(PortClass::Missing),
            Kind::Port500 => Some(PortClass::Fail500),
            Kind::Port503 => Some(PortClass::Fail503),
            Kind::Port429 => Some(PortClass::Limited429),
            Kind::Preview
            | Kind::ToolsList
            | Kind::InvalidArgs
            | Kind::JqRefused
            | Kind::UnknownTool
            | Kind::NotJson => None,
        }
    }

    /// The JSON-RPC request (one line) for call `id`.
    fn request(self, id: u64) -> String {
        static PARAMS: std::sync::OnceLock<BTreeMap<Kind, (&'static str, String)>> =
            std::sync::OnceLock::new();
        let params = PARAMS.get_or_init(|| Kind::ALL.iter().map(|k| (*k, k.params())).collect());
        match (self, params.get(&self)) {
            (Kind::NotJson, _) => format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\""
            ),
            (_, Some((method, params))) => format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"{method}\",\"params\":{params}}}"
            ),
            (_, None) => String::new(),
        }
    }

    /// The method and params of this kind's request (built once).
    fn params(self) -> (&'static str, String) {
        let call = |name: &str, arguments: Value| {
            (
                "tools/call",
                json!({"name": name, "arguments": arguments}).to_string(),
            )
        };
        let get = |identifier: &str| call("get-integration", json!({"identifier": identifier}));
        match self {
            Kind::Get | Kind::FreshConnection | Kind::NewSession => get("integration-1"),
            Kind::GetAll => call("get-all-integrations", json!({})),
            Kind::UpdateConfig => call(
                "update-integration-s-config",
                json!({"identifier": "integration-1",
                       "body": {"config": common::integration(1)["config"]}}),
            ),
            Kind::Preview => call(
                "preview-integration-mapping",
                json!({"config": common::integration(1)["config"], "kind": "kind-0",
                       "items": (0..3).map(|i| json!({
                           "name": format!("Repo-{i}"), "full_name": format!("org/repo-{i}"),
                           "archived": i == 2, "topics": ["go"], "html_url": "https://x/y",
                           "language": "Rust", "stargazers_count": i, "visibility": "public",
                           "default_branch": "main", "owner": {"login": "team-a"}
                       })).collect::<Vec<_>>()}),
            ),
            Kind::ToolsList => ("tools/list", "{}".into()),
            Kind::InvalidArgs => call(
                "get-integration",
                json!({"identifier": "never-invalid", "byField": "nope"}),
            ),
            Kind::JqRefused => call(
                "update-integration-s-config",
                json!({"identifier": "never-jq", "body": {"config": {"resources": [{
                    "kind": "repository", "selector": {"query": "true"},
                    "port": {"entity": {"mappings": {
                        "identifier": ".name | no_such_filter", "blueprint": "\"service\""
                    }}}
                }]}}}),
            ),
            Kind::NotFound => get("missing-integration"),
            Kind::Port500 => get("fail-500"),
            Kind::Port503 => get("fail-503"),
            Kind::Port429 => get("limited-429"),
            Kind::UnknownTool => call("no-such-tool", json!({"identifier": "never-tool"})),
            Kind::NotJson => ("", String::new()),
        }
    }
}

/// 1,000 calls in a fixed, interleaved order (a seeded shuffle of the weights), repeated.
/// `SOAK_ONLY=text` keeps only the kinds whose name contains `text` (to measure one alone).
fn schedule() -> Vec<Kind> {
    let only = std::env::var("SOAK_ONLY").unwrap_or_default();
    let mut kinds: Vec<Kind> = Kind::ALL
        .iter()
        .filter(|k| k.name().contains(only.as_str()))
        .flat_map(|k| std::iter::repeat_n(*k, k.weight() as usize))
        .collect();
    if kinds.is_empty() {
        kinds.push(Kind::Get);
    }
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..kinds.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        kinds.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    kinds
}

// ----------------------------------------------------------------------------------------------
// What the client saw.

#[derive(Deserialize)]
struct Answer {
    result: Option<AnswerResult>,
    error: Option<RpcError>,
}

#[derive(Deserialize)]
struct AnswerResult {
    #[serde(rename = "isError", default)]
    is_error: bool,
    #[serde(rename = "structuredContent")]
    structured: Option<Structured>,
}

#[derive(Deserialize)]
struct Structured {
    error: Option<Value>,
    status: Option<u16>,
}

#[derive(Deserialize)]
struct RpcError {
    code: i64,
}

/// One JSON-RPC answer as a label: `ok`, `isError <error code or Port status>`, or
/// `JSON-RPC error <code>`.
fn classify(answer: &[u8]) -> String {
    let Ok(answer) = serde_json::from_slice::<Answer>(answer) else {
        return "unparsable answer".into();
    };
    match (answer.result, answer.error) {
        (_, Some(e)) => format!("JSON-RPC error {}", e.code),
        (Some(r), None) if !r.is_error => "ok".into(),
        (Some(r), None) => match r.structured {
            Some(Structured {
                status: Some(s), ..
            }) => format!("isError Port {s}"),
            Some(Structured {
                error: Some(Value::String(e)),
                ..
            }) => format!("isError {e}"),
            _ => "isError (unlabelled)".into(),
        },
        (None, None) => "neither result nor error".into(),
    }
}

/// An HTTP answer: its status, then its JSON body or the first JSON-RPC message of its SSE
/// stream.
async fn classify_http(response: reqwest::Response) -> String {
    let status = response.status();
    let sse = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let Ok(body) = response.bytes().await else {
        return "body read failed".into();
    };
    if status != reqwest::StatusCode::OK {
        return format!("HTTP {}", status.as_u16());
    }
    if !sse {
        return classify(&body);
    }
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .find(|d| d.starts_with('{'))
        .map_or_else(
            || "SSE without a message".into(),
            |d| classify(d.as_bytes()),
        )
}

// ----------------------------------------------------------------------------------------------
// The transports.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Stateless,
    Stateful,
    Stdio,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Stateless => "HTTP stateless",
            Transport::Stateful => "HTTP sessions",
            Transport::Stdio => "stdio",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Transport::Stateless => "stateless",
            Transport::Stateful => "stateful",
            Transport::Stdio => "stdio",
        }
    }
}

/// The HTTP clients of one stretch of calls. They are replaced at each checkpoint, which
/// closes their connections: a client's pool grows past the calls in flight (a connection
/// that comes back a moment late makes it open another), and those sockets are the load
/// generator's doing, not the server's, so they must not count as the server's descriptors.
struct Clients {
    /// Kept-alive connections, as agents' MCP clients use.
    pooled: reqwest::Client,
    /// A new connection per call (connection churn).
    fresh: reqwest::Client,
}

impl Clients {
    fn new(concurrency: usize) -> Clients {
        Clients {
            pooled: reqwest::Client::builder()
                .pool_max_idle_per_host(concurrency * 2)
                .build()
                .unwrap(),
            fresh: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        }
    }
}

/// A running server and the clients that call it.
enum Target {
    Http {
        _server: common::Server,
        pid: u32,
        url: String,
        concurrency: usize,
        clients: std::sync::RwLock<Clients>,
        /// Long-lived sessions shared by the workers (stateful mode).
        sessions: Vec<String>,
    },
    Stdio {
        server: common::StdioServer,
        pipe: StdioPipe,
    },
}

impl Target {
    async fn start(transport: Transport, upstream: &str, concurrency: usize) -> Target {
        match transport {
            Transport::Stdio => {
                let server = common::start_stdio(upstream, SERVER_ENV).await;
                let pipe = server.pipe.clone();
                Target::Stdio { server, pipe }
            }
            Transport::Stateless | Transport::Stateful => {
                let stateless = transport == Transport::Stateless;
                let server = common::start_http(upstream, stateless, false, SERVER_ENV).await;
                let pid = server.child.id();
                let url = format!("http://{}/mcp", server.addr.clone().unwrap_or_default());
                let clients = Clients::new(concurrency);
                let mut sessions = Vec::new();
                if !stateless {
                    for _ in 0..concurrency.clamp(1, 16) {
                        if let Some(s) = common::http_session(&clients.pooled, &url).await {
                            sessions.push(s);
                        }
                    }
                }
                Target::Http {
                    _server: server,
                    pid,
                    url,
                    concurrency,
                    clients: std::sync::RwLock::new(clients),
                    sessions,
                }
            }
        }
    }

    fn pid(&self) -> u32 {
        match self {
            Target::Http { pid, .. } => *pid,
            Target::Stdio { server, .. } => server.child.id().unwrap_or(0),
        }
    }

    /// Closes the load generator's connections to the server (HTTP), so that the server's
    /// descriptors can be counted without them; the sessions stay open.
    fn close_connections(&self) {
        if let Target::Http {
            clients,
            concurrency,
            ..
        } = self
        {
            *clients.write().unwrap() = Clients::new(*concurrency);
        }
    }

    /// Makes call number `id` of `kind` from worker `worker`; returns how it was answered.
    async fn call(&self, kind: Kind, id: u64, worker: usize) -> String {
        let request = kind.request(id);
        match self {
            Target::Stdio { pipe, .. } => {
                let answer = if kind == Kind::NotJson {
                    pipe.call_unmatched(&request, CALL_TIMEOUT).await
                } else {
                    pipe.call(id, request, CALL_TIMEOUT).await
                };
                answer.map_or_else(|| "no answer".into(), |a| classify(a.as_bytes()))
            }
            Target::Http {
                url,
                clients,
                sessions,
                ..
            } => {
                let client = {
                    let clients = clients.read().unwrap();
                    if kind == Kind::FreshConnection {
                        clients.fresh.clone()
                    } else {
                        clients.pooled.clone()
                    }
                };
                if kind == Kind::NewSession {
                    return whole_session(&client, url, request).await;
                }
                let session = (!sessions.is_empty()).then(|| &sessions[worker % sessions.len()]);
                post(&client, url, session, request).await
            }
        }
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    session: Option<&String>,
    body: String,
) -> String {
    let mut request = client
        .post(url)
        .timeout(CALL_TIMEOUT)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    if let Some(sid) = session {
        request = request.header("mcp-session-id", sid);
    }
    match request.send().await {
        Ok(r) => classify_http(r).await,
        Err(e) if e.is_timeout() => "no answer".into(),
        Err(_) => "connection failed".into(),
    }
}

/// Opens a session, makes one call in it and closes it (DELETE), as a short-lived agent does.
async fn whole_session(client: &reqwest::Client, url: &str, request: String) -> String {
    let Ok(Some(sid)) = tokio::time::timeout(CALL_TIMEOUT, common::http_session(client, url)).await
    else {
        return "session not opened".into();
    };
    let label = post(client, url, Some(&sid), request).await;
    let closed = client
        .delete(url)
        .timeout(CALL_TIMEOUT)
        .header("mcp-session-id", &sid)
        .send()
        .await;
    match closed {
        Ok(r) if r.status().is_success() => label,
        Ok(r) => format!("session close: HTTP {}", r.status().as_u16()),
        Err(_) => "session close failed".into(),
    }
}

// ----------------------------------------------------------------------------------------------
// The run.

/// The server's resources at a checkpoint, with no call in flight.
#[derive(Debug, Clone, Copy)]
struct Sample {
    calls: u64,
    rss_kib: u64,
    fds: u64,
    /// Of `fds`, the connections to the fake Port: a pool that may fill up to the in-flight
    /// cap, so it is checked against that cap rather than against its size after 10,000 calls.
    to_port: u64,
    threads: u64,
    cpu_seconds: f64,
}

fn sample(pid: u32, calls: u64, port_port: u16) -> Sample {
    Sample {
        calls,
        rss_kib: rss_kib(pid).0,
        fds: fd_count(pid),
        to_port: common::sockets_to(pid, port_port),
        threads: thread_count(pid),
        cpu_seconds: common::cpu_seconds(pid),
    }
}

/// Waits (at most 10 s) until the server's descriptor count has not changed for 1 s: closed
/// connections take a moment to be noticed and released.
async fn settle(pid: u32) {
    let until = Instant::now() + Duration::from_secs(10);
    let mut last = fd_count(pid);
    let mut stable_since = Instant::now();
    while Instant::now() < until && stable_since.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = fd_count(pid);
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
    }
}

/// (kind, label) -> calls.
type Outcomes = BTreeMap<(Kind, String), u64>;

struct Report {
    transport: Transport,
    planned: u64,
    calls: u64,
    seconds: f64,
    outcomes: Outcomes,
    samples: Vec<Sample>,
    /// What the fake Port received against what it should have, where they differ.
    port_problems: Vec<String>,
    /// Set when `SOAK_MAX_SECS` ran out or the server died.
    stopped_early: Option<String>,
    /// The server's CPU time before the first call.
    cpu_at_start: f64,
}

impl Report {
    fn unexpected(&self) -> u64 {
        self.outcomes
            .iter()
            .filter(|((kind, label), _)| !label.starts_with(kind.expected(self.transport)))
            .map(|(_, n)| n)
            .sum()
    }

    /// Error answers by label (all expected unless listed under unexpected).
    fn errors_by_kind(&self) -> String {
        let mut by_label: BTreeMap<&str, u64> = BTreeMap::new();
        for ((_, label), n) in &self.outcomes {
            if label != "ok" {
                *by_label.entry(label.as_str()).or_default() += n;
            }
        }
        let mut text = String::new();
        for (label, n) in by_label {
            let label = label.trim_start_matches("isError ");
            let _ = write!(
                text,
                "{}{label}: {n}",
                if text.is_empty() { "" } else { "; " }
            );
        }
        text
    }

    /// The server's CPU time per call up to `at`, in microseconds.
    fn cpu_per_call_us(&self, at: Sample) -> f64 {
        1e6 * (at.cpu_seconds - self.cpu_at_start) / at.calls.max(1) as f64
    }

    fn baseline(&self) -> Option<Sample> {
        self.samples.first().copied()
    }

    fn end(&self) -> Option<Sample> {
        self.samples.last().copied()
    }

    fn rss_change(&self) -> f64 {
        match (self.baseline(), self.end()) {
            (Some(b), Some(e)) if b.rss_kib > 0 => e.rss_kib as f64 / b.rss_kib as f64 - 1.0,
            _ => f64::INFINITY,
        }
    }

    /// Why this transport fails, if it does.
    fn failures(&self) -> Vec<String> {
        let mut why = Vec::new();
        if let Some(reason) = &self.stopped_early {
            why.push(reason.clone());
        }
        if self.calls < self.planned {
            why.push(format!(
                "only {} of {} calls made",
                self.calls, self.planned
            ));
        }
        match (self.baseline(), self.end()) {
            (Some(b), Some(e)) => {
                if self.rss_change() > RSS_TOLERANCE {
                    why.push(format!(
                        "RSS grew {:+.1}% ({:.1} -> {:.1} MiB), over {:.0}%",
                        100.0 * self.rss_change(),
                        mib(b.rss_kib),
                        mib(e.rss_kib),
                        100.0 * RSS_TOLERANCE
                    ));
                }
                let (other_b, other_e) =
                    (b.fds - b.to_port.min(b.fds), e.fds - e.to_port.min(e.fds));
                if other_e > other_b {
                    why.push(format!(
                        "file descriptors other than connections to Port grew from {other_b} to {other_e}"
                    ));
                }
                if e.to_port > b.to_port.max(MAX_IN_FLIGHT) {
                    why.push(format!(
                        "connections to Port grew from {} to {}, over PORT_MAX_IN_FLIGHT ({MAX_IN_FLIGHT})",
                        b.to_port, e.to_port
                    ));
                }
            }
            _ => why.push("no samples".into()),
        }
        let unexpected = self.unexpected();
        if unexpected > 0 {
            why.push(format!("{unexpected} calls answered unexpectedly"));
        }
        why.extend(self.port_problems.iter().cloned());
        why
    }
}

/// Checkpoints where the server is sampled: after the first 10,000 calls, at each quarter, at
/// the end.
fn checkpoints(total: u64) -> Vec<u64> {
    let mut points = vec![BASELINE_CALLS.min(total)];
    for q in 1..=4 {
        let p = total / 4 * q;
        let p = if q == 4 { total } else { p };
        if p > *points.last().unwrap_or(&0) {
            points.push(p);
        }
    }
    points
}

async fn soak(
    transport: Transport,
    upstream: &str,
    total: u64,
    concurrency: usize,
    max_run: Duration,
) -> Report {
    let target = Arc::new(Target::start(transport, upstream, concurrency).await);
    let port_port: u16 = upstream
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(0);
    let pid = target.pid();
    let plan = Arc::new(schedule());
    let counter = reqwest::Client::new();
    let port_before = common::port_counts(&counter, upstream).await;
    let deadline = Instant::now() + max_run;
    let next = Arc::new(AtomicU64::new(0));
    let mut report = Report {
        transport,
        planned: total,
        calls: 0,
        seconds: 0.0,
        outcomes: Outcomes::new(),
        samples: Vec::new(),
        port_problems: Vec::new(),
        stopped_early: None,
        cpu_at_start: common::cpu_seconds(pid),
    };
    let mut run_time = Duration::ZERO;
    for checkpoint in checkpoints(total) {
        let started = Instant::now();
        let mut workers = Vec::new();
        for worker in 0..concurrency {
            let (target, plan, next) = (target.clone(), plan.clone(), next.clone());
            workers.push(tokio::spawn(async move {
                let mut seen = Outcomes::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= checkpoint || Instant::now() >= deadline {
                        break;
                    }
                    let kind = plan[(i % plan.len() as u64) as usize].on(transport);
                    let label = target.call(kind, i + 1, worker).await;
                    *seen.entry((kind, label)).or_default() += 1;
                }
                seen
            }));
        }
        for w in workers {
            // Each call is bounded by CALL_TIMEOUT; this bounds a worker that is not.
            let left = deadline.saturating_duration_since(Instant::now()) + 2 * CALL_TIMEOUT;
            if let Ok(Ok(seen)) = tokio::time::timeout(left, w).await {
                for (key, n) in seen {
                    *report.outcomes.entry(key).or_default() += n;
                }
            }
        }
        run_time += started.elapsed();
        next.store(checkpoint, Ordering::Relaxed);
        report.calls = report.outcomes.values().sum();
        target.close_connections();
        settle(pid).await;
        let s = sample(pid, report.calls, port_port);
        eprintln!(
            "  {}: {} calls, RSS {:.1} MiB, {} fds ({} to Port), {} threads, {:.0} calls/s and {:.0} µs of server CPU per call so far",
            transport.name(),
            s.calls,
            mib(s.rss_kib),
            s.fds,
            s.to_port,
            s.threads,
            report.calls as f64 / run_time.as_secs_f64(),
            report.cpu_per_call_us(s)
        );
        report.samples.push(s);
        if s.rss_kib == 0 {
            report.stopped_early = Some("the server exited".into());
            break;
        }
        if Instant::now() >= deadline {
            report.stopped_early = Some(format!("SOAK_MAX_SECS ({} s) ran out", max_run.as_secs()));
            break;
        }
    }
    report.seconds = run_time.as_secs_f64();
    let port_after = common::port_counts(&counter, upstream).await;
    report.port_problems = check_port(&report, &port_before, &port_after);
    report
}

/// Compares what the fake Port received during the run with what the calls made should have
/// sent: one request per call that reaches Port (up to PORT_MAX_ATTEMPTS for the retryable
/// 503 and 429), and nothing for calls refused locally.
fn check_port(
    report: &Report,
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> Vec<String> {
    if after.is_empty() {
        return vec!["could not read the fake Port's counters".into()];
    }
    let attempts = common::server_env()
        .iter()
        .rev()
        .find(|(k, _)| k == "PORT_MAX_ATTEMPTS")
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1);
    let mut problems = Vec::new();
    for class in PortClass::ALL {
        let name = class.name();
        let received = after
            .get(name)
            .copied()
            .unwrap_or(0)
            .saturating_sub(before.get(name).copied().unwrap_or(0));
        let calls: u64 = report
            .outcomes
            .iter()
            .filter(|((kind, _), _)| kind.port_class() == Some(class))
            .map(|(_, n)| n)
            .sum();
        let retried = matches!(class, PortClass::Fail503 | PortClass::Limited429);
        let most = if retried { calls * attempts } else { calls };
        if received < calls || received > most {
            problems.push(format!(
                "Port received {received} × {name}, expected {}",
                if most == calls {
                    calls.to_string()
                } else {
                    format!("{calls} to {most}")
                }
            ));
        }
    }
    problems
}

fn print_report(reports: &[Report]) {
    println!();
    println!("Checkpoints (no call in flight):");
    println!();
    println!("| transport | calls | RSS MiB | fds | of which to Port | threads | server CPU s |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in reports {
        for s in &r.samples {
            println!(
                "| {} | {} | {:.1} | {} | {} | {} | {:.1} |",
                r.transport.name(),
                s.calls,
                mib(s.rss_kib),
                s.fds,
                s.to_port,
                s.threads,
                s.cpu_seconds - r.cpu_at_start
            );
        }
    }
    println!();
    println!("Answers by kind of call:");
    println!();
    println!("| transport | call | calls | answered as | expected |");
    println!("|---|---|---:|---|---|");
    for r in reports {
        for ((kind, label), n) in &r.outcomes {
            let expected = kind.expected(r.transport);
            println!(
                "| {} | {} | {n} | {label} | {} |",
                r.transport.name(),
                kind.name(),
                if label.starts_with(expected) {
                    "yes".to_string()
                } else {
                    format!("**no**: {expected}")
                }
            );
        }
    }
    println!();
    println!(
        "| transport | calls | errors by kind | unexpected | calls/s | server CPU µs/call | RSS after 10k MiB | RSS at end MiB | change | fds after 10k | fds at end |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in reports {
        let (b, e) = (r.baseline(), r.end());
        println!(
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {:+.1}% | {} | {} |",
            r.transport.name(),
            r.calls,
            r.errors_by_kind(),
            r.unexpected(),
            r.calls as f64 / r.seconds.max(1e-9),
            e.map_or("–".into(), |s| format!("{:.0}", r.cpu_per_call_us(s))),
            b.map_or("–".into(), |s| format!("{:.1}", mib(s.rss_kib))),
            e.map_or("–".into(), |s| format!("{:.1}", mib(s.rss_kib))),
            100.0 * r.rss_change(),
            b.map_or("–".into(), |s| format!(
                "{} ({} to Port)",
                s.fds, s.to_port
            )),
            e.map_or("–".into(), |s| format!(
                "{} ({} to Port)",
                s.fds, s.to_port
            )),
        );
    }
    println!();
    for r in reports {
        let failures = r.failures();
        if failures.is_empty() {
            println!(
                "PASS {}: RSS {:+.1}% (within {:.0}%), no fd growth (connections to Port \
                 within PORT_MAX_IN_FLIGHT), every answer as expected, Port received exactly \
                 what it should",
                r.transport.name(),
                100.0 * r.rss_change(),
                100.0 * RSS_TOLERANCE
            );
        } else {
            println!("FAIL {}: {}", r.transport.name(), failures.join("; "));
        }
    }
}

async fn run() -> bool {
    port_integrations_mcp::install_crypto_provider();
    let total = env_u64("SOAK_CALLS", 1_000_000).max(1);
    let concurrency = env_u64("SOAK_CONCURRENCY", 64).clamp(1, 1024) as usize;
    let max_run = Duration::from_secs(env_u64("SOAK_MAX_SECS", 1800));
    let wanted = std::env::var("SOAK_TRANSPORTS").unwrap_or_default();
    let transports: Vec<Transport> = [Transport::Stateless, Transport::Stateful, Transport::Stdio]
        .into_iter()
        .filter(|t| wanted.is_empty() || wanted.split(',').any(|w| w.trim() == t.key()))
        .collect();
    let (_fake, upstream) = common::spawn_fake_port(LIST_BYTES);
    eprintln!(
        "soak: {total} calls per transport, {concurrency} in flight; fake Port on {upstream}; server {}",
        common::server()
    );
    let mut reports = Vec::new();
    for transport in transports {
        reports.push(soak(transport, &upstream, total, concurrency, max_run).await);
    }
    print_report(&reports);
    reports.iter().all(|r| r.failures().is_empty())
}
