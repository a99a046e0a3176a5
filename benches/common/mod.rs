//! What the two benchmarks (`bench` and `soak`) share: the fast fake Port, starting the server
//! under test over HTTP or stdio, and reading its memory and file descriptors from `/proc`.
//!
//! Both run three processes on loopback (the fake Port, the server, the load generator); this
//! module exists so that the plumbing is written once and both measure the same server the same
//! way. Each bench uses only part of it.

#![allow(dead_code)]

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    io::{BufRead, BufReader as StdBufReader, Write as _},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    http::{Method, StatusCode, Uri},
    response::IntoResponse,
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    sync::{Mutex, oneshot},
};

/// The server under test: the release binary, or `BENCH_SERVER=path` (e.g. a `profiling` build).
pub fn server() -> String {
    std::env::var("BENCH_SERVER")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_port-integrations-mcp").to_string())
}

/// `BENCH_SERVER_ENV="K=V,K=V"` adds environment variables to the server under test (e.g.
/// `GLIBC_TUNABLES=glibc.malloc.arena_max=1` or `TOKIO_WORKER_THREADS=1`, to compare settings).
/// They are applied last, so they override the bench's own settings.
pub fn server_env() -> Vec<(String, String)> {
    std::env::var("BENCH_SERVER_ENV")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ----------------------------------------------------------------------------------------------
// The fake Port: fixed bodies, no locks, no parsing.

/// The first argument that makes a bench binary run as the fake Port instead.
pub const FAKE_PORT: &str = "fake-port";

/// One realistic integration (about 2 KB of JSON).
pub fn integration(i: usize) -> Value {
    json!({
        "_id": format!("integration_{i:08x}"),
        "_orgId": "org_bench",
        "identifier": format!("integration-{i}"),
        "installationId": format!("integration-{i}"),
        "title": format!("Integration number {i}"),
        "installationAppType": "github-ocean",
        "integrationType": "github-ocean",
        "installationType": "OnPrem",
        "version": "3.4.1",
        "actionsProcessingEnabled": false,
        "config": {
            "deleteDependentEntities": true,
            "createMissingRelatedEntities": true,
            "resources": (0..6).map(|k| json!({
                "kind": format!("kind-{k}"),
                "selector": {"query": ".archived == false and (.topics | index(\"internal\") | not)"},
                "port": {"entity": {"mappings": {
                    "identifier": ".name | ascii_downcase",
                    "title": ".full_name",
                    "blueprint": "\"service\"",
                    "properties": {
                        "url": ".html_url", "language": ".language", "stars": ".stargazers_count",
                        "visibility": ".visibility", "defaultBranch": ".default_branch"
                    },
                    "relations": {"team": ".owner.login"}
                }}}
            })).collect::<Vec<_>>()
        },
        "changelogDestination": {"type": "KAFKA"},
        "resyncState": {"status": "completed", "lastResyncStart": "2026-11-23T08:00:00.000Z",
            "lastResyncEnd": "2026-11-23T08:03:12.000Z", "nextResync": null, "intervalInMinuets": 60,
            "updatedAt": "2026-11-23T08:03:12.000Z"},
        "createdAt": "2026-01-12T09:30:00.000Z",
        "updatedAt": "2026-11-23T08:03:12.000Z"
    })
}

/// The event id of the fake Port's latest sync run, and of the `n`th run before it.
fn event_id(n: usize) -> String {
    format!("6f1c2a9e-0b7d-4c1e-9a55-{n:012x}")
}

/// GET /v1/integration/{_id}/syncMetrics of [`integration`]: the latest run, one item per
/// kind of its mapping (`kind-0` to `kind-5`) and the `__runtime__` pseudo-kind, in Port's
/// shape (counts are floats, as Prometheus gauges are).
pub fn sync_metrics(i: usize) -> Value {
    let item = |kind: &str, kind_identifier: &str, index: Option<usize>, loaded: f64| {
        let mut v = json!({
            "integrationType": "github-ocean",
            "integrationIdentifier": format!("integration-{i}"),
            "integrationVersion": "3.4.1",
            "oceanVersion": "0.48.12",
            "kindIdentifier": kind_identifier,
            "kind": kind,
            "eventId": event_id(0),
            "syncState": "completed",
            "metrics": {"phase": {
                "resync": {"duration_seconds": 8.4, "success": 1},
                "extract": {"object_count_type": {"raw_extracted": {"object_count": loaded + 3.0}}},
                "transform": {"object_count_type": {
                    "transformed": {"object_count": loaded},
                    "filtered_out": {"object_count": 3.0},
                    "failed": {"object_count": 0.0}
                }},
                "load": {"object_count_type": {
                    "loaded": {"object_count": loaded},
                    "failed": {"object_count": 0.0},
                    "skipped": {"object_count": 0.0}
                }},
                "delete": {"object_count_type": {"deleted": {"object_count": 0.0}}}
            }},
            "createdAt": "2026-11-23T08:00:00.000Z",
            "updatedAt": "2026-11-23T08:03:12.000Z"
        });
        if let Some(index) = index {
            v["kindIndex"] = json!(index);
            v["blueprint"] = json!("service");
        }
        v
    };
    let mut data: Vec<Value> = (0..6)
        .map(|k| {
            let kind = format!("kind-{k}");
            item(&kind, &format!("{kind}-{k}"), Some(k), 40.0 + k as f64)
        })
        .collect();
    data.push(item("__runtime__", "__runtime__", None, 255.0));
    json!({"ok": true, "count": data.len(), "data": data})
}

/// GET /v1/integration/{_id}/syncsMetadata: five hourly runs, the newest first.
pub fn syncs_metadata() -> Value {
    let data: Vec<Value> = (0..5)
        .map(|n| {
            json!({
                "eventId": event_id(n),
                "syncState": if n == 2 { "failed" } else { "completed" },
                "createdAt": format!("2026-11-23T{:02}:00:00.000Z", 8 - n),
                "updatedAt": format!("2026-11-23T{:02}:03:12.000Z", 8 - n)
            })
        })
        .collect();
    json!({"ok": true, "count": data.len(), "data": data})
}

/// GET /v1/integration/{identifier}/kinds: three raw repositories for each of three kinds.
pub fn kinds() -> Value {
    let repo = |k: usize, n: usize| {
        json!({
            "_id": format!("example_{k}_{n}"),
            "data": {
                "id": 1000 * k + n,
                "name": format!("repo-{k}-{n}"),
                "full_name": format!("bench-org/repo-{k}-{n}"),
                "html_url": format!("https://github.com/bench-org/repo-{k}-{n}"),
                "language": "Rust",
                "stargazers_count": 10 * n,
                "visibility": "private",
                "default_branch": "main",
                "archived": false,
                "topics": ["bench", "service"],
                "owner": {"login": "bench-org", "type": "Organization"}
            }
        })
    };
    let data: serde_json::Map<String, Value> = (0..3)
        .map(|k| {
            let examples: Vec<Value> = (0..3).map(|n| repo(k, n)).collect();
            (format!("kind-{k}"), json!({"examples": examples}))
        })
        .collect();
    json!({"ok": true, "data": data})
}

/// What the fake Port tells apart, by the identifier in the path. Each class has a counter, so
/// a bench can check that Port received exactly the requests it should (`GET /__counts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortClass {
    /// GET /v1/integration: the list (its size is the fake Port's argument).
    GetAll,
    /// GET /v1/integration/metadata.
    Metadata,
    /// GET of any other identifier: one integration (about 2 KB).
    GetOne,
    /// PATCH /v1/integration/{id}/config: the updated integration.
    PatchConfig,
    /// `missing-*`: 404 in Port's error shape.
    Missing,
    /// `fail-500`: 500 in Port's error shape.
    Fail500,
    /// `fail-503`: 503 in Port's error shape.
    Fail503,
    /// `limited-429`: 429 with `Retry-After: 1` and an exhausted rate window.
    Limited429,
    /// `never-*`: identifiers of calls the server must refuse before sending anything.
    Never,
    /// GET /v1/integration/{_id}/syncMetrics: per-kind metrics of the latest run.
    SyncMetrics,
    /// GET /v1/integration/{_id}/syncsMetadata: the sync history (a few runs).
    SyncsMetadata,
    /// GET /v1/integration/{identifier}/kinds: raw examples per kind.
    Kinds,
    /// Anything else (answered like [`PortClass::GetOne`]).
    Other,
}

impl PortClass {
    pub const ALL: [PortClass; 13] = [
        PortClass::GetAll,
        PortClass::Metadata,
        PortClass::GetOne,
        PortClass::PatchConfig,
        PortClass::Missing,
        PortClass::Fail500,
        PortClass::Fail503,
        PortClass::Limited429,
        PortClass::Never,
        PortClass::SyncMetrics,
        PortClass::SyncsMetadata,
        PortClass::Kinds,
        PortClass::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PortClass::GetAll => "GET /v1/integration",
            PortClass::Metadata => "GET /v1/integration/metadata",
            PortClass::GetOne => "GET /v1/integration/{id}",
            PortClass::PatchConfig => "PATCH /v1/integration/{id}/config",
            PortClass::Missing => "GET /v1/integration/missing-* (404)",
            PortClass::Fail500 => "GET /v1/integration/fail-500 (500)",
            PortClass::Fail503 => "GET /v1/integration/fail-503 (503)",
            PortClass::Limited429 => "GET /v1/integration/limited-429 (429)",
            PortClass::Never => "any request naming never-*",
            PortClass::SyncMetrics => "GET /v1/integration/{_id}/syncMetrics",
            PortClass::SyncsMetadata => "GET /v1/integration/{_id}/syncsMetadata",
            PortClass::Kinds => "GET /v1/integration/{id}/kinds",
            PortClass::Other => "any other request",
        }
    }

    fn of(method: &Method, path: &str) -> PortClass {
        match path {
            "/v1/integration" => return PortClass::GetAll,
            "/v1/integration/metadata" => return PortClass::Metadata,
            _ => {}
        }
        let Some(rest) = path.strip_prefix("/v1/integration/") else {
            return PortClass::Other;
        };
        let id = rest.split('/').next().unwrap_or_default();
        if id.starts_with("never-") {
            PortClass::Never
        } else if id.starts_with("missing-") {
            PortClass::Missing
        } else if id == "fail-500" {
            PortClass::Fail500
        } else if id == "fail-503" {
            PortClass::Fail503
        } else if id == "limited-429" {
            PortClass::Limited429
        } else if *method == Method::GET && rest.ends_with("/syncMetrics") {
            PortClass::SyncMetrics
        } else if *method == Method::GET && rest.ends_with("/syncsMetadata") {
            PortClass::SyncsMetadata
        } else if *method == Method::GET && rest.ends_with("/kinds") {
            PortClass::Kinds
        } else if *method == Method::PATCH && rest.ends_with("/config") {
            PortClass::PatchConfig
        } else if *method == Method::GET && !rest.contains('/') {
            PortClass::GetOne
        } else {
            PortClass::Other
        }
    }
}

/// Runs the fake Port (`<bench> fake-port [LIST_BYTES]`): prints its address on stdout, then
/// serves until killed. `LIST_BYTES` (default 2,000,000) sizes the answer of
/// GET /v1/integration.
pub fn fake_port(args: &[String]) {
    let list_bytes: usize = args
        .get(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let one = Bytes::from(json!({"ok": true, "integration": integration(1)}).to_string());
    let mut all = Vec::new();
    let mut size = 0;
    let mut i = 0;
    while size < list_bytes {
        let item = integration(i);
        size += item.to_string().len() + 1;
        all.push(item);
        i += 1;
    }
    let all = Bytes::from(json!({"ok": true, "integrations": all}).to_string());
    let meta = Bytes::from(json!({"ok": true, "integrations": []}).to_string());
    let sync_metrics = Bytes::from(sync_metrics(1).to_string());
    let syncs_metadata = Bytes::from(syncs_metadata().to_string());
    let kinds = Bytes::from(kinds().to_string());
    let error = |code: &str, message: &str| {
        Bytes::from(json!({"ok": false, "error": code, "message": message}).to_string())
    };
    let missing = error("not_found", "Integration was not found");
    let fail_500 = error("internal_error", "An internal error occurred");
    let fail_503 = error("service_unavailable", "Service unavailable");
    let limited = error("too_many_requests", "Rate limit exceeded");
    let counts: Arc<[AtomicU64; PortClass::ALL.len()]> = Arc::new(Default::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let app = Router::new().fallback(move |method: Method, uri: Uri| {
            let path = uri.path();
            if path == "/__counts" {
                let map: BTreeMap<&str, u64> = PortClass::ALL
                    .iter()
                    .zip(counts.iter())
                    .map(|(c, n)| (c.name(), n.load(Ordering::Relaxed)))
                    .collect();
                let body = Bytes::from(json!(map).to_string());
                return std::future::ready((StatusCode::OK, body).into_response());
            }
            let class = PortClass::of(&method, path);
            counts[class as usize].fetch_add(1, Ordering::Relaxed);
            let (status, retry_after, body) = match class {
                PortClass::GetAll => (200, None, all.clone()),
                PortClass::Metadata => (200, None, meta.clone()),
                PortClass::SyncMetrics => (200, None, sync_metrics.clone()),
                PortClass::SyncsMetadata => (200, None, syncs_metadata.clone()),
                PortClass::Kinds => (200, None, kinds.clone()),
                PortClass::Missing => (404, None, missing.clone()),
                PortClass::Fail500 => (500, None, fail_500.clone()),
                PortClass::Fail503 => (503, None, fail_503.clone()),
                PortClass::Limited429 => (429, Some("1"), limited.clone()),
                _ => (200, None, one.clone()),
            };
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = (
                status,
                [
                    ("content-type", "application/json"),
                    ("x-trace-id", "bench"),
                ],
                body,
            )
                .into_response();
            if let Some(secs) = retry_after {
                let headers = response.headers_mut();
                headers.insert("retry-after", secs.parse().unwrap());
                headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
                headers.insert("x-ratelimit-reset", secs.parse().unwrap());
            }
            std::future::ready(response)
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        axum::serve(listener, app).await.unwrap();
    });
}

/// Starts this bench binary as the fake Port, with a list of about `list_bytes`; returns the
/// process (killed on drop) and its address.
pub fn spawn_fake_port(list_bytes: usize) -> (Server, String) {
    let exe = std::env::current_exe().unwrap();
    let mut fake = Command::new(exe)
        .args([FAKE_PORT, &list_bytes.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    StdBufReader::new(fake.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let upstream: SocketAddr = first.trim().parse().unwrap();
    let server = Server {
        child: fake,
        addr: None,
        rest: None,
    };
    (server, upstream.to_string())
}

/// The fake Port's request counters, by [`PortClass::name`].
pub async fn port_counts(client: &reqwest::Client, upstream: &str) -> BTreeMap<String, u64> {
    let answer = client
        .get(format!("http://{upstream}/__counts"))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match answer {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => BTreeMap::new(),
    }
}

// ----------------------------------------------------------------------------------------------
// The server's resources, from /proc.

fn status_field(pid: u32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resident memory now and its high-water mark, in KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    (status_field(pid, "VmRSS:"), status_field(pid, "VmHWM:"))
}

/// Open file descriptors (sockets, pipes, epoll...).
pub fn fd_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// The process's TCP sockets connected to `remote_port` on loopback (its connections to the
/// fake Port), from `/proc/PID/net/tcp{,6}` matched against the inodes of its descriptors.
pub fn sockets_to(pid: u32, remote_port: u16) -> u64 {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    let inodes: std::collections::HashSet<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let mut count = 0;
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = fields
                .get(2)
                .and_then(|remote| remote.rsplit_once(':'))
                .and_then(|(_, port)| u16::from_str_radix(port, 16).ok());
            if port == Some(remote_port) && fields.get(9).is_some_and(|i| inodes.contains(*i)) {
                count += 1;
            }
        }
    }
    count
}

/// Threads of the process.
pub fn thread_count(pid: u32) -> u64 {
    status_field(pid, "Threads:")
}

/// CPU time the process has used (user and system), in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // first, utime the 12th and stime the 13th, in clock ticks.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // USER_HZ: 100 on every Linux architecture that matters here.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ----------------------------------------------------------------------------------------------
// The server under test.

pub struct Server {
    pub child: Child,
    pub addr: Option<String>,
    /// The REST adapter's address (the stateless server serves it too).
    pub rest: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the server over HTTP against `upstream` and waits (bounded) for `/healthz`. `env`
/// comes after the bench's defaults and before `BENCH_SERVER_ENV`.
pub async fn start_http(
    upstream: &str,
    stateless: bool,
    rest: bool,
    env: &[(&str, &str)],
) -> Server {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(server());
    cmd.env_clear()
        .env("PORT_BASE_URL", format!("http://{upstream}"))
        .env("PORT_API_KEY", "bench-token")
        .env("PORT_MCP_LOG", "error")
        .env("PORT_MAX_IN_FLIGHT", "64")
        .envs(env.iter().copied())
        .envs(server_env())
        .args(["http", "--listen", &listen])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if stateless {
        cmd.arg("--stateless");
    }
    let rest = rest.then(|| format!("127.0.0.1:{}", free_port()));
    if let Some(rest) = &rest {
        cmd.args(["--rest-listen", rest]);
    }
    let child = cmd.spawn().unwrap();
    let client = reqwest::Client::new();
    for _ in 0..500 {
        if client
            .get(format!("http://{listen}/healthz"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Server {
        child,
        addr: Some(listen),
        rest,
    }
}

/// Opens an MCP session (initialize, then notifications/initialized); returns its id.
pub async fn http_session(client: &reqwest::Client, url: &str) -> Option<String> {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"}}});
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(init.to_string())
        .send()
        .await
        .ok()?;
    let sid = r
        .headers()
        .get("mcp-session-id")?
        .to_str()
        .ok()?
        .to_string();
    let _ = r.bytes().await;
    client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &sid)
        .body(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
        .send()
        .await
        .ok()?;
    Some(sid)
}

// ----------------------------------------------------------------------------------------------
// stdio: one process, requests pipelined over stdin, answers matched by id.

type Waiting = Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<String>>>>;
type Unmatched = Arc<std::sync::Mutex<VecDeque<oneshot::Sender<String>>>>;

/// The write side of a stdio server and the answers it is waiting for; cheap to clone.
#[derive(Clone)]
pub struct StdioPipe {
    stdin: Arc<Mutex<tokio::process::ChildStdin>>,
    waiting: Waiting,
    /// Requests whose answer carries `"id": null` (lines that are not JSON), in order.
    unmatched: Unmatched,
}

pub struct StdioServer {
    pub child: tokio::process::Child,
    pub pipe: StdioPipe,
}

/// The numeric id of a JSON-RPC answer line (`"id"` comes first in the server's answers).
pub fn id_of(line: &str) -> Option<u64> {
    let at = line[..line.len().min(80)].find("\"id\":")? + 5;
    let rest = &line[at..];
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

/// Whether an answer has `"id": null` (the answer to a line that was not JSON); such answers
/// are short, and their `id` may come after the error.
fn null_id(line: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Id {
        id: Option<Value>,
    }
    line.len() < 64 * 1024
        && serde_json::from_str::<Id>(line).is_ok_and(|a| a.id.is_none_or(|id| id.is_null()))
}

/// Starts the server over stdio against `upstream` and initializes the session. `env` comes
/// after the bench's defaults and before `BENCH_SERVER_ENV`.
pub async fn start_stdio(upstream: &str, env: &[(&str, &str)]) -> StdioServer {
    let mut child = tokio::process::Command::new(server())
        .env_clear()
        .env("PORT_BASE_URL", format!("http://{upstream}"))
        .env("PORT_API_KEY", "bench-token")
        .env("PORT_MCP_LOG", "error")
        .env("PORT_MAX_IN_FLIGHT", "64")
        .envs(env.iter().copied())
        .envs(server_env())
        .arg("stdio")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let waiting: Waiting = Arc::default();
    let unmatched: Unmatched = Arc::default();
    let (w, u) = (waiting.clone(), unmatched.clone());
    tokio::spawn(async move {
        let mut lines = BufReader::with_capacity(1 << 20, stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let tx = match id_of(&line) {
                Some(id) => w.lock().unwrap().remove(&id),
                None if null_id(&line) => u.lock().unwrap().pop_front(),
                None => None,
            };
            if let Some(tx) = tx {
                let _ = tx.send(line);
            }
        }
    });
    let pipe = StdioPipe {
        stdin: Arc::new(Mutex::new(stdin)),
        waiting,
        unmatched,
    };
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"}}});
    let _ = pipe
        .call(0, init.to_string(), Duration::from_secs(30))
        .await;
    pipe.send("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}")
        .await;
    StdioServer { child, pipe }
}

impl StdioPipe {
    /// Writes one line (no answer expected); false if the server's stdin is closed.
    pub async fn send(&self, line: &str) -> bool {
        let mut w = self.stdin.lock().await;
        w.write_all(format!("{line}\n").as_bytes()).await.is_ok()
    }

    /// Sends request `id` (one JSON line without its newline) and waits up to `timeout` for the
    /// answer with that id.
    pub async fn call(&self, id: u64, line: String, timeout: Duration) -> Option<String> {
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap().insert(id, tx);
        if !self.send(&line).await {
            self.waiting.lock().unwrap().remove(&id);
            return None;
        }
        let answer = tokio::time::timeout(timeout, rx)
            .await
            .ok()
            .and_then(Result::ok);
        self.waiting.lock().unwrap().remove(&id);
        answer
    }

    /// Sends a line whose answer has `"id": null` and waits up to `timeout` for the next such
    /// answer. Registering and writing happen under the stdin lock, so answers pair in order.
    pub async fn call_unmatched(&self, line: &str, timeout: Duration) -> Option<String> {
        let (tx, rx) = oneshot::channel();
        {
            let mut w = self.stdin.lock().await;
            self.unmatched.lock().unwrap().push_back(tx);
            if w.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                return None;
            }
        }
        tokio::time::timeout(timeout, rx)
            .await
            .ok()
            .and_then(Result::ok)
    }
}

// ----------------------------------------------------------------------------------------------
// A real authorization server for the OAuth rows: tests/oauth/issuer.mjs (oidc-provider).

/// The test authorization server, stopped on drop.
pub struct Issuer {
    child: tokio::process::Child,
    /// Its issuer identifier (also its base URL).
    pub url: String,
    client_id: String,
    client_secret: String,
}

impl Issuer {
    /// Starts it for `resource` (installing its pinned packages once); `None` without Node.
    pub async fn start(resource: &str) -> Option<Issuer> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oauth");
        let node = std::env::var("PORT_MCP_TEST_NODE").unwrap_or_else(|_| "node".into());
        if !dir.join("node_modules").exists() {
            let npm = std::path::Path::new(&node).with_file_name("npm");
            let npm = if npm.exists() { npm } else { "npm".into() };
            let ok = Command::new(npm)
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .stdout(Stdio::null())
                .status()
                .ok()?
                .success();
            if !ok {
                return None;
            }
        }
        let mut child = tokio::process::Command::new(node)
            .arg(dir.join("issuer.mjs"))
            .args(["--resource", resource, "--ttl", "3600"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .ok()?;
        let stdout = child.stdout.take()?;
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .ok()?
        .ok()?;
        let ready: Value = serde_json::from_str(&line).ok()?;
        Some(Issuer {
            child,
            url: ready["issuer"].as_str()?.to_string(),
            client_id: ready["client_id"].as_str()?.to_string(),
            client_secret: ready["client_secret"].as_str()?.to_string(),
        })
    }

    /// A client-credentials access token (JWT, RS256) for `resource` with both scopes.
    pub async fn token(&self, resource: &str) -> String {
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/token", self.url))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&resource={}&scope=port-integrations%3Aread%20port-integrations%3Awrite",
                percent_encoding::utf8_percent_encode(resource, percent_encoding::NON_ALPHANUMERIC)
            ))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap();
        answer["access_token"].as_str().unwrap().to_string()
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
