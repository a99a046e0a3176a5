//! The performance benchmark: `cargo bench --bench bench`.
//!
//! It starts three things on loopback: a fast fake Port (this same program, `fake-port` mode,
//! answering the seven routes and the sync routes with fixed bodies), the server under test
//! (the release binary), and a load generator (this process). It measures tool calls per second
//! and latency for `get-integration` (a ~2 KB answer) and `get-all-integrations` (a ~2 MB
//! answer) over streamable HTTP (stateful and stateless, 1 and 64 calls in flight) and over
//! stdio (sequential and 64 in flight); the `sync` toolset's reads
//! (`get-integration-sync-status`, two Port requests per call, and
//! `get-integration-kind-examples`), a prompt and a resource (local, no Port) over HTTP;
//! idle and peak memory; and the time from launch to the first tools/list. The same generator also calls the fake Port directly, so every figure is given
//! as a ratio to that physical limit measured in the same run: the machine is shared, so only
//! ratios within one run are comparable. Everything is bounded in time and stays on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    io::{BufRead, BufReader as StdBufReader, Write as _},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use common::{StdioServer, http_session, id_of, mib, rss_kib, server};
use serde_json::json;
use tokio::sync::Mutex;

/// How long each measurement runs (after a short warm-up).
const RUN: Duration = Duration::from_secs(3);

/// `BENCH_ONLY=text` runs only the scenarios whose name contains `text` (for profiling);
/// `BENCH_ONLY=a|b` those whose name contains `a` or `b`.
fn selected(name: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| only.split('|').any(|o| name.contains(o)))
}
const WARMUP: Duration = Duration::from_millis(500);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(common::FAKE_PORT) {
        common::fake_port(&args);
        return;
    }
    // `cargo bench` passes `--bench`; any other argument filters nothing here.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

// ----------------------------------------------------------------------------------------------
// Measurement plumbing.

#[derive(Default, Clone)]
struct Stats {
    calls: u64,
    errors: u64,
    seconds: f64,
    latencies_us: Vec<u64>,
}

impl Stats {
    fn rate(&self) -> f64 {
        self.calls as f64 / self.seconds
    }
    fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[idx] as f64 / 1000.0
    }
}

/// Runs `op` from `concurrency` workers for WARMUP + RUN; counts only calls ending after warm-up.
async fn drive<F, Fut>(concurrency: usize, op: F) -> Stats
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let measure_from = start + WARMUP;
    let stop_at = measure_from + RUN;
    let stats = Arc::new(Mutex::new(Stats::default()));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let op = op.clone();
        let stats = stats.clone();
        workers.push(tokio::spawn(async move {
            let mut local = Stats::default();
            loop {
                let t0 = Instant::now();
                if t0 >= stop_at {
                    break;
                }
                let ok = op().await;
                let t1 = Instant::now();
                if t0 >= measure_from && t1 <= stop_at + Duration::from_secs(1) {
                    local.calls += 1;
                    if !ok {
                        local.errors += 1;
                    }
                    local.latencies_us.push((t1 - t0).as_micros() as u64);
                }
            }
            let mut s = stats.lock().await;
            s.calls += local.calls;
            s.errors += local.errors;
            s.latencies_us.extend(local.latencies_us);
        }));
    }
    for w in workers {
        let _ = tokio::time::timeout(RUN + WARMUP + Duration::from_secs(30), w).await;
    }
    let mut s = stats.lock().await.clone();
    s.seconds = RUN.as_secs_f64();
    s
}

/// Resets the peak-RSS counter of a process (Linux `clear_refs` 5); returns its RSS now (MiB),
/// from which the scenario's own cost is counted (memory freed by earlier scenarios stays
/// resident).
fn reset_peak(pid: u32) -> f64 {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    mib(rss_kib(pid).0)
}

async fn start_http(upstream: &str, stateless: bool, rest: bool) -> common::Server {
    common::start_http(upstream, stateless, rest, &[]).await
}

/// What a scenario asks the server, again and again.
#[derive(Clone, Copy)]
enum Op {
    /// `tools/call` of this tool (on `integration-1` where the tool takes an identifier).
    Tool(&'static str),
    /// The same call with a `_meta` key the lean path does not know, so that rmcp answers it:
    /// what a forwarding tool costs on rmcp's path, and on the sync tools' path.
    ToolViaRmcp(&'static str),
    /// `prompts/get` of this prompt, for `integration-1`.
    Prompt(&'static str),
    /// `resources/read` of this URI.
    Resource(&'static str),
}

fn call_body(id: u64, op: Op) -> String {
    let (method, params) = match op {
        Op::Tool(tool) | Op::ToolViaRmcp(tool) => {
            let args = if tool.starts_with("get-integration") {
                json!({"identifier": "integration-1"})
            } else {
                json!({})
            };
            let mut params = json!({"name": tool, "arguments": args});
            if matches!(op, Op::ToolViaRmcp(_)) {
                params["_meta"] = json!({"bench/path": "rmcp"});
            }
            ("tools/call", params)
        }
        Op::Prompt(name) => (
            "prompts/get",
            json!({"name": name, "arguments": {"identifier": "integration-1"}}),
        ),
        Op::Resource(uri) => ("resources/read", json!({"uri": uri})),
    };
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

/// A tool result that is not an error, in a JSON body or an SSE `data:` line.
fn ok_result(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    text.contains("\"result\"") && !text.contains("\"isError\":true")
}

async fn bench_http(addr: &str, stateless: bool, op: Op, concurrency: usize) -> Stats {
    bench_http_as(addr, stateless, op, concurrency, None).await
}

/// [`bench_http`], sending `token` as the bearer token of every request (session set-up too).
async fn bench_http_as(
    addr: &str,
    stateless: bool,
    op: Op,
    concurrency: usize,
    token: Option<&str>,
) -> Stats {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .default_headers(headers)
        .build()
        .unwrap();
    let url = format!("http://{addr}/mcp");
    let session = if stateless {
        None
    } else {
        http_session(&client, &url).await
    };
    let ids = Arc::new(AtomicU64::new(1));
    drive(concurrency, move || {
        let client = client.clone();
        let url = url.clone();
        let session = session.clone();
        let id = ids.fetch_add(1, Ordering::Relaxed);
        async move {
            let mut req = client
                .post(&url)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(call_body(id, op));
            if let Some(sid) = &session {
                req = req.header("mcp-session-id", sid);
            }
            match req.send().await {
                Ok(r) => match r.bytes().await {
                    Ok(b) => ok_result(&b),
                    Err(_) => false,
                },
                Err(_) => false,
            }
        }
    })
    .await
}

async fn bench_direct(upstream: &str, path: &'static str, concurrency: usize) -> Stats {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let url = format!("http://{upstream}{path}");
    drive(concurrency, move || {
        let client = client.clone();
        let url = url.clone();
        async move {
            match client
                .get(&url)
                .header("authorization", "Bearer bench-token")
                .send()
                .await
            {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await
}

// ----------------------------------------------------------------------------------------------
// stdio: one process, requests pipelined over stdin, answers matched by id.

async fn bench_stdio(s: &StdioServer, tool: &'static str, concurrency: usize) -> Stats {
    let ids = Arc::new(AtomicU64::new(1));
    let pipe = s.pipe.clone();
    drive(concurrency, move || {
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let pipe = pipe.clone();
        async move {
            pipe.call(id, call_body(id, Op::Tool(tool)), Duration::from_secs(30))
                .await
                .is_some_and(|line| ok_result(line.as_bytes()))
        }
    })
    .await
}

/// Launch to the answer of the first tools/list over stdio, in milliseconds.
fn launch_to_tools_list() -> f64 {
    let start = Instant::now();
    let mut child = Command::new(server())
        .env_clear()
        .env("PORT_BASE_URL", "http://127.0.0.1:9")
        .env("PORT_MCP_LOG", "error")
        .arg("stdio")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"}}});
    write!(
        stdin,
        "{init}\n{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}}\n{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}}\n"
    )
    .unwrap();
    stdin.flush().unwrap();
    let mut out = StdBufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if id_of(&line) == Some(2) {
            break;
        }
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    drop(stdin);
    let _ = child.wait();
    ms
}

// ----------------------------------------------------------------------------------------------

struct Row {
    name: String,
    stats: Stats,
    direct: Option<Stats>,
    /// The server's peak RSS during the scenario, and its RSS when the scenario started.
    peak_mib: Option<(f64, f64)>,
}

/// Runs one scenario against the server `pid` (unless `BENCH_ONLY` leaves it out) and adds its
/// row, with the server's peak memory over what it held when the scenario started.
async fn scenario(
    rows: &mut Vec<Row>,
    pid: u32,
    name: String,
    direct: Option<&Stats>,
    run: impl std::future::Future<Output = Stats>,
) {
    if !selected(&name) {
        return;
    }
    let start = reset_peak(pid);
    let stats = run.await;
    rows.push(Row {
        name,
        stats,
        direct: direct.cloned(),
        peak_mib: Some((mib(rss_kib(pid).1), start)),
    });
}

fn print_table(rows: &[Row]) {
    println!(
        "| scenario | calls/s | p50 ms | p99 ms | errors | vs direct (rate) | p50 over direct | peak RSS MiB | peak over start MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let (ratio, over) = match &r.direct {
            Some(d) => (
                format!("{:.0}%", 100.0 * r.stats.rate() / d.rate()),
                format!("{:+.3} ms", r.stats.pct(0.5) - d.pct(0.5)),
            ),
            None => ("–".into(), "–".into()),
        };
        println!(
            "| {} | {:.0} | {:.3} | {:.3} | {} | {} | {} | {} | {} |",
            r.name,
            r.stats.rate(),
            r.stats.pct(0.5),
            r.stats.pct(0.99),
            r.stats.errors,
            ratio,
            over,
            r.peak_mib
                .map(|(peak, _)| format!("{peak:.1}"))
                .unwrap_or("–".into()),
            r.peak_mib
                .map(|(peak, start)| format!("{:+.1}", peak - start))
                .unwrap_or("–".into()),
        );
    }
}

async fn run() {
    port_integrations_mcp::install_crypto_provider();
    let (_fake, upstream) = common::spawn_fake_port(2_000_000);
    eprintln!("fake Port on {upstream}; server {}", server());

    let mut rows = Vec::new();
    let direct_1 = bench_direct(&upstream, "/v1/integration/integration-1", 1).await;
    let direct_64 = bench_direct(&upstream, "/v1/integration/integration-1", 64).await;
    let direct_big_1 = bench_direct(&upstream, "/v1/integration", 1).await;
    let direct_big_64 = bench_direct(&upstream, "/v1/integration", 64).await;
    for (name, s) in [
        ("direct to fake Port, 2 KB, 1 in flight", &direct_1),
        ("direct to fake Port, 2 KB, 64 in flight", &direct_64),
        ("direct to fake Port, 2 MB, 1 in flight", &direct_big_1),
        ("direct to fake Port, 2 MB, 64 in flight", &direct_big_64),
    ] {
        rows.push(Row {
            name: name.into(),
            stats: s.clone(),
            direct: None,
            peak_mib: None,
        });
    }

    let mut idle_http = 0;
    for stateless in [true, false] {
        let server = start_http(&upstream, stateless, false).await;
        let pid = server.child.id();
        tokio::time::sleep(Duration::from_millis(300)).await;
        idle_http = idle_http.max(rss_kib(pid).0);
        let addr = server.addr.clone().unwrap();
        let mode = if stateless { "stateless" } else { "stateful" };
        for (label, op, d1, d64) in [
            (
                "get-integration (2 KB)",
                Op::Tool("get-integration"),
                &direct_1,
                &direct_64,
            ),
            (
                "get-integration via rmcp (2 KB)",
                Op::ToolViaRmcp("get-integration"),
                &direct_1,
                &direct_64,
            ),
            (
                "get-all-integrations (2 MB)",
                Op::Tool("get-all-integrations"),
                &direct_big_1,
                &direct_big_64,
            ),
        ] {
            for (conc, direct) in [(1usize, d1), (64, d64)] {
                let name = format!("HTTP {mode}, {label}, {conc} in flight");
                let run = bench_http(&addr, stateless, op, conc);
                scenario(&mut rows, pid, name, Some(direct), run).await;
            }
        }
    }

    // The sync toolset (issue 11), in servers of their own that offer every toolset; the same
    // get-integration rows again, so that enabling the toolsets is compared within the run.
    // Only the rows' names tell these servers' rows from the ones above ("toolsets +sync"), so
    // that `BENCH_ONLY` can leave them out when measuring a build that has no sync toolset.
    let mut idle_sync = None;
    let (metrics_kb, kinds_kb) = (
        common::sync_metrics(1).to_string().len() as f64 / 1000.0,
        common::kinds().to_string().len() as f64 / 1000.0,
    );
    let status_name =
        format!("get-integration-sync-status (2 KB + {metrics_kb:.0} KB, 2 Port requests)");
    let examples_name = format!("get-integration-kind-examples ({kinds_kb:.0} KB)");
    for stateless in [true, false] {
        let mode = if stateless { "stateless" } else { "stateful" };
        let mut planned: Vec<(String, Op, usize, Option<&Stats>)> = Vec::new();
        for (label, op) in [
            (
                "get-integration (2 KB)".to_string(),
                Op::Tool("get-integration"),
            ),
            (status_name.clone(), Op::Tool("get-integration-sync-status")),
            (
                examples_name.clone(),
                Op::Tool("get-integration-kind-examples"),
            ),
        ] {
            for (conc, direct) in [(1usize, &direct_1), (64, &direct_64)] {
                let name = format!("HTTP {mode}, toolsets +sync, {label}, {conc} in flight");
                planned.push((name, op, conc, Some(direct)));
            }
        }
        for (label, op) in [
            (
                "prompts/get troubleshoot-integration (local)",
                Op::Prompt("troubleshoot-integration"),
            ),
            (
                "resources/read port://default-mappings/github (local)",
                Op::Resource("port://default-mappings/github"),
            ),
        ] {
            for conc in [1usize, 64] {
                let name = format!("HTTP {mode}, toolsets +sync, {label}, {conc} in flight");
                planned.push((name, op, conc, None));
            }
        }
        if !planned.iter().any(|(name, ..)| selected(name)) {
            continue;
        }
        let env = [("PORT_TOOLSETS", "integrations,mapping,sync")];
        let server = common::start_http(&upstream, stateless, false, &env).await;
        let pid = server.child.id();
        tokio::time::sleep(Duration::from_millis(300)).await;
        idle_sync = Some(idle_sync.unwrap_or(0).max(rss_kib(pid).0));
        let addr = server.addr.clone().unwrap();
        for (name, op, conc, direct) in planned {
            let run = bench_http(&addr, stateless, op, conc);
            scenario(&mut rows, pid, name, direct, run).await;
        }
    }

    // Inbound OAuth (issue 12): the same calls with and without a verified JWT, against a real
    // authorization server (oidc-provider, tests/oauth), rounds interleaved so that drift in
    // the machine's speed hits both sides alike. At the bench's log level (error) this is the
    // token check alone; the `info` pair adds the per-call line that names the caller.
    if selected("OAuth check") || selected("OAuth rows") {
        oauth_rows(&mut rows, &upstream, &direct_64).await;
    }

    // Telemetry (issue 13): the same calls with everything off, with Prometheus metrics on, and
    // with every call traced (100% sampling) to a local OTLP receiver; rounds interleaved.
    if selected("Telemetry rows") {
        telemetry_rows(&mut rows, &upstream, &direct_64).await;
    }

    // The same forwarding without MCP (the REST adapter, in its own server): what the protocol
    // layer itself costs.
    let server = start_http(&upstream, true, true).await;
    let pid = server.child.id();
    if let Some(rest) = &server.rest {
        for (path, size, d1, d64) in [
            (
                "/v1/integration/integration-1",
                "2 KB",
                &direct_1,
                &direct_64,
            ),
            ("/v1/integration", "2 MB", &direct_big_1, &direct_big_64),
        ] {
            for (conc, direct) in [(1usize, d1), (64, d64)] {
                let name = format!("REST adapter, GET {path} ({size}), {conc} in flight");
                let run = bench_direct(rest, path, conc);
                scenario(&mut rows, pid, name, Some(direct), run).await;
            }
        }
    }
    drop(server);

    let stdio = common::start_stdio(&upstream, &[]).await;
    let pid = stdio.child.id().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_stdio = rss_kib(pid).0;
    for (tool, size, d1, d64) in [
        ("get-integration", "2 KB", &direct_1, &direct_64),
        (
            "get-all-integrations",
            "2 MB",
            &direct_big_1,
            &direct_big_64,
        ),
    ] {
        for (conc, direct) in [(1usize, d1), (64, d64)] {
            let name = format!(
                "stdio, {tool} ({size}), {}",
                if conc == 1 {
                    "sequential".to_string()
                } else {
                    format!("{conc} in flight")
                }
            );
            let run = bench_stdio(&stdio, tool, conc);
            scenario(&mut rows, pid, name, Some(direct), run).await;
        }
    }
    drop(stdio);

    let mut launches: Vec<f64> = (0..20).map(|_| launch_to_tools_list()).collect();
    launches.sort_by(|a, b| a.total_cmp(b));

    println!();
    print_table(&rows);
    println!();
    println!(
        "launch -> first tools/list over stdio: median {:.1} ms, min {:.1} ms, max {:.1} ms (20 launches)",
        launches[10], launches[0], launches[19]
    );
    println!(
        "idle RSS: stdio {:.1} MiB, HTTP {:.1} MiB (after start-up, before any call)",
        mib(idle_stdio),
        mib(idle_http)
    );
    if let Some(idle) = idle_sync {
        println!(
            "idle RSS with PORT_TOOLSETS=integrations,mapping,sync: HTTP {:.1} MiB",
            mib(idle)
        );
    }
}

/// The OAuth rows: servers without and with `--oauth-issuer`, the same load, in one run.
async fn oauth_rows(rows: &mut Vec<Row>, upstream: &str, direct_64: &Stats) {
    let resource = "http://127.0.0.1/bench-mcp";
    let Some(issuer) = common::Issuer::start(resource).await else {
        eprintln!("OAuth rows skipped: cannot start tests/oauth/issuer.mjs (is Node installed?)");
        return;
    };
    let token = issuer.token(resource).await;
    eprintln!(
        "OAuth bench: issuer {}, token of {} bytes",
        issuer.url,
        token.len()
    );
    if selected("OAuth check") {
        oauth_check_cost(&issuer, resource, &token).await;
    }
    if !selected("OAuth rows") {
        return;
    }
    for stateless in [true, false] {
        let mode = if stateless { "stateless" } else { "stateful" };
        for log in ["error", "info"] {
            let oauth_env = [
                ("PORT_MCP_OAUTH_ISSUER", issuer.url.as_str()),
                ("PORT_MCP_PUBLIC_URL", resource),
                ("PORT_MCP_LOG", log),
            ];
            let plain_env = [("PORT_MCP_LOG", log)];
            let plain = common::start_http(upstream, stateless, false, &plain_env).await;
            let oauth = common::start_http(upstream, stateless, false, &oauth_env).await;
            let rounds = if log == "error" { 4 } else { 2 };
            // Three sides: the plain server without and with the same Authorization header
            // (which it ignores: what carrying 800 bytes more costs), and the OAuth server.
            let sides = [
                ("no inbound auth", &plain, None),
                (
                    "no inbound auth, token sent anyway",
                    &plain,
                    Some(token.as_str()),
                ),
                ("with a JWT", &oauth, Some(token.as_str())),
            ];
            let mut calls = [0u64; 3];
            let mut cpu = [0f64; 3];
            for round in 1..=rounds {
                for (side, (label, server, auth)) in sides.iter().enumerate() {
                    let name = format!(
                        "OAuth rows: HTTP {mode}, log {log}, get-integration (2 KB), 64 in flight, {label} (round {round})"
                    );
                    let (n, seconds) = turn(rows, server, stateless, *auth, name, direct_64).await;
                    calls[side] += n;
                    cpu[side] += seconds;
                }
            }
            if calls.iter().all(|c| *c > 0) {
                let per_call = |i: usize| cpu_per_call(cpu[i], calls[i]);
                let rate = |i: usize| calls[i] as f64 / calls[0] as f64 * 100.0;
                println!(
                    "OAuth cost, HTTP {mode}, log {log}, 64 in flight, {rounds} interleaved rounds: \
                     throughput {:.1}% (header sent, ignored) and {:.1}% (JWT checked) of the plain \
                     server's; server CPU per call {:.1} µs / {:.1} µs / {:.1} µs (JWT check: {:+.1}% \
                     over the same request unchecked)",
                    rate(1),
                    rate(2),
                    per_call(0),
                    per_call(1),
                    per_call(2),
                    (per_call(2) / per_call(1) - 1.0) * 100.0
                );
            }
        }
    }
}

/// The token check alone, in this process (no HTTP, no noise from the other processes): a token
/// seen before (the cache: every request after a client's first) and tokens seen for the first
/// time (signature and claims checked).
async fn oauth_check_cost(issuer: &common::Issuer, resource: &str, token: &str) {
    use port_integrations_mcp::{config::OAuthSettings, oauth::Verifier};
    let settings = OAuthSettings::new(vec![issuer.url.clone()], resource).unwrap();
    let verifier = Verifier::new(settings);
    verifier.verify(token).await.unwrap();
    let n = 200_000u32;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(verifier.verify(std::hint::black_box(token)).await.unwrap());
    }
    let cached = start.elapsed() / n;
    let mut fresh = Vec::new();
    for _ in 0..200 {
        fresh.push(issuer.token(resource).await);
    }
    let start = Instant::now();
    for t in &fresh {
        verifier.verify(t).await.unwrap();
    }
    let first = start.elapsed() / fresh.len() as u32;
    println!(
        "OAuth token check in-process: {:.2} µs for a token seen before ({n} checks), {:.1} µs for a \
         token seen for the first time (RS256 signature and claims, {} tokens)",
        cached.as_secs_f64() * 1e6,
        first.as_secs_f64() * 1e6,
        fresh.len()
    );
}

/// One side's turn in an interleaved comparison (the OAuth and telemetry rows):
/// `get-integration` at 64 in flight against `server`, as the row `name`, with `token` as the
/// bearer token if any. Returns the calls it measured (0 when `BENCH_ONLY` leaves the row out)
/// and the server's CPU seconds over the turn.
async fn turn(
    rows: &mut Vec<Row>,
    server: &common::Server,
    stateless: bool,
    token: Option<&str>,
    name: String,
    direct_64: &Stats,
) -> (u64, f64) {
    let addr = server.addr.clone().unwrap();
    let pid = server.child.id();
    let run = bench_http_as(&addr, stateless, Op::Tool("get-integration"), 64, token);
    let before = rows.len();
    let cpu_before = common::cpu_seconds(pid);
    scenario(rows, pid, name, Some(direct_64), run).await;
    let cpu = common::cpu_seconds(pid) - cpu_before;
    (rows.get(before).map_or(0, |row| row.stats.calls), cpu)
}

/// A server's CPU time per measured call, in µs: warm-up calls are not counted in `calls`, so
/// their share of the turn's CPU is scaled out. Steadier than throughput on a shared machine.
fn cpu_per_call(cpu_seconds: f64, calls: u64) -> f64 {
    let share = RUN.as_secs_f64() / (RUN + WARMUP).as_secs_f64();
    cpu_seconds * share / calls as f64 * 1e6
}

/// A local OTLP/HTTP receiver for the tracing rows: accepts every export at once (an empty
/// `ExportTraceServiceResponse` is an empty protobuf body) and keeps the bodies, decoded only
/// when counted ([`count_spans`]), after the measured runs: decoding is the collector's work,
/// not the server's, and on this machine it would take CPU from the server under test.
async fn otlp_receiver() -> (String, Arc<std::sync::Mutex<Vec<axum::body::Bytes>>>) {
    use axum::{body::Bytes, routing::post};
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(body);
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), bodies)
}

/// The spans in the exports received so far (which are then dropped).
fn count_spans(bodies: &std::sync::Mutex<Vec<axum::body::Bytes>>) -> usize {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let bodies = std::mem::take(&mut *bodies.lock().unwrap());
    bodies
        .into_iter()
        .map(|body| {
            let request = ExportTraceServiceRequest::decode(body).unwrap();
            request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum::<usize>()
        })
        .sum()
}

/// The telemetry rows: three servers (everything off, metrics on, tracing at 100% to a local
/// receiver), the same load, rounds interleaved, in one run.
async fn telemetry_rows(rows: &mut Vec<Row>, upstream: &str, direct_64: &Stats) {
    let (collector, spans) = otlp_receiver().await;
    let off_env = [("PORT_MCP_METRICS", "false")];
    let metrics_env = [("PORT_MCP_METRICS", "true")];
    let traces_env = [
        ("PORT_MCP_METRICS", "false"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
        ("OTEL_TRACES_SAMPLER", "always_on"),
    ];
    // A collector that is down: an address nothing listens on.
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let down_env = [
        ("PORT_MCP_METRICS", "false"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", down.as_str()),
        ("OTEL_TRACES_SAMPLER", "always_on"),
    ];
    for stateless in [true, false] {
        let mode = if stateless { "stateless" } else { "stateful" };
        let off = common::start_http(upstream, stateless, false, &off_env).await;
        let down = common::start_http(upstream, stateless, false, &down_env).await;
        let metrics = common::start_http(upstream, stateless, false, &metrics_env).await;
        let traced = common::start_http(upstream, stateless, false, &traces_env).await;
        let sides = [
            ("telemetry off", &off),
            ("metrics on", &metrics),
            ("traced, 100% sampled to a local OTLP receiver", &traced),
            ("traced, 100% sampled, collector down", &down),
        ];
        // The order turns each round, so that each side runs first, second, third and last
        // equally often (what ran just before, and drift over the run, fall on all sides).
        let rounds = 16;
        let mut calls = [0u64; 4];
        let mut round_calls = vec![[0u64; 4]; rounds];
        let mut cpu = [0f64; 4];
        count_spans(&spans);
        for round in 1..=rounds {
            for place in 0..sides.len() {
                let side = (place + round - 1) % sides.len();
                let (label, server) = &sides[side];
                let name = format!(
                    "Telemetry rows: HTTP {mode}, get-integration (2 KB), 64 in flight, {label} (round {round})"
                );
                let (n, seconds) = turn(rows, server, stateless, None, name, direct_64).await;
                calls[side] += n;
                cpu[side] += seconds;
                round_calls[round - 1][side] = n;
            }
        }
        // Each round's ratio to the server with both off in that round: the median of these is
        // robust to a round that the machine slowed down for one side only.
        let median_ratio = |side: usize| {
            let mut ratios: Vec<f64> = round_calls
                .iter()
                .filter(|r| r[0] > 0)
                .map(|r| r[side] as f64 / r[0] as f64 * 100.0)
                .collect();
            ratios.sort_by(f64::total_cmp);
            match ratios.len() {
                0 => (f64::NAN, f64::NAN, f64::NAN),
                n => (
                    (ratios[(n - 1) / 2] + ratios[n / 2]) / 2.0,
                    ratios[0],
                    ratios[n - 1],
                ),
            }
        };
        // Let the last batch reach the receiver before counting.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let exported = count_spans(&spans);
        if calls.iter().all(|c| *c > 0) {
            let per_call = |i: usize| cpu_per_call(cpu[i], calls[i]);
            let rate = |i: usize| calls[i] as f64 / calls[0] as f64 * 100.0;
            println!(
                "Telemetry cost, HTTP {mode}, 64 in flight, {rounds} interleaved rounds: throughput \
                 {:.1}% (metrics on), {:.1}% (traced) and {:.1}% (traced, collector down) of the \
                 server with both off; server CPU per call {:.1} µs (off) / {:.1} µs (metrics, \
                 {:+.1}%) / {:.1} µs (traced, {:+.1}%) / {:.1} µs (collector down, {:+.1}%); \
                 {exported} spans received from the traced server: {:.2} per measured call (two a \
                 call, plus those of the warm-up calls); median of the {rounds} per-round ratios \
                 {:.1}% (metrics on, range {:.1}-{:.1}%), {:.1}% (traced, {:.1}-{:.1}%), {:.1}% \
                 (collector down, {:.1}-{:.1}%)",
                rate(1),
                rate(2),
                rate(3),
                per_call(0),
                per_call(1),
                (per_call(1) / per_call(0) - 1.0) * 100.0,
                per_call(2),
                (per_call(2) / per_call(0) - 1.0) * 100.0,
                per_call(3),
                (per_call(3) / per_call(0) - 1.0) * 100.0,
                exported as f64 / calls[2] as f64,
                median_ratio(1).0,
                median_ratio(1).1,
                median_ratio(1).2,
                median_ratio(2).0,
                median_ratio(2).1,
                median_ratio(2).2,
                median_ratio(3).0,
                median_ratio(3).1,
                median_ratio(3).2,
            );
        }
    }
}
