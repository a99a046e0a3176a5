//! Hostile jq and mapping input (issue 10, defects 1–4, 13 and 20): deep nesting, huge
//! expressions, `halt`, endless loops, memory bombs, many expressions, deep YAML. Each attack
//! goes through the real MCP client (in-process and over HTTP), the REST routes or
//! `check-mapping`; afterwards the server still answers a normal call, and the fake Port has
//! received nothing the attack should not have sent.

use std::{path::PathBuf, process::Stdio, time::Duration};

use port_integrations_mcp::{
    config::{ToolSelection, Toolset},
    mapping::MappingLimits,
    tools::PortTools,
    transport::rest,
};
use rmcp::{
    ServiceExt,
    model::{CallToolRequest, CallToolRequestParams, ClientRequest},
    service::{ClientLifecycleMode, PeerRequestOptions},
    transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess},
};
use serde_json::{Value, json};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_port-integrations-mcp");

/// Small limits, so the attacks end quickly (and burn little CPU on a shared machine).
fn test_limits() -> MappingLimits {
    MappingLimits {
        preview_timeout_secs: 1,
        preview_max_memory_mb: 512,
        preview_worker: Some(PathBuf::from(BIN)),
        ..MappingLimits::default()
    }
}

fn tools(port: &FakePort, limits: MappingLimits) -> PortTools {
    port.tools(&ToolSelection {
        toolsets: vec![Toolset::Integrations, Toolset::Mapping],
        ..ToolSelection::default()
    })
    .with_mapping_limits(limits)
}

async fn client(limits: MappingLimits) -> (FakePort, Client) {
    let port = FakePort::start().await;
    let client = connect_tools(tools(&port, limits), (), ClientLifecycleMode::Initialize).await;
    (port, client)
}

/// The examples of nesting that aborted the whole process.
fn deep_expressions() -> Vec<(&'static str, String)> {
    vec![
        (
            "parens",
            format!("{}.id{}", "(".repeat(1000), ")".repeat(1000)),
        ),
        (
            "brackets",
            format!("{}.id{}", "[".repeat(1000), "]".repeat(1000)),
        ),
        (
            "objects",
            format!("{}.id{}", "{a:".repeat(1000), "}".repeat(1000)),
        ),
        (
            "ifs",
            format!(
                "{}.{}",
                "if . then ".repeat(1000),
                " else . end".repeat(1000)
            ),
        ),
        ("minus", format!("{}.id", "-".repeat(3000))),
        ("pipes", vec![".id"; 3000].join("|")),
        ("plus", vec![".id"; 3000].join("+")),
        ("alternatives", vec![".id"; 3000].join("//")),
        (
            "reduce",
            format!(
                "{}.{}",
                "reduce .[] as $x (.; ".repeat(300),
                ")".repeat(300)
            ),
        ),
        ("defs", format!("{}.", "def f: ".repeat(1000))),
    ]
}

fn config_with_query(query: &str) -> Value {
    json!({"resources": [{"kind": "repository", "selector": {"query": query},
        "port": {"entity": {"mappings": {"identifier": ".name", "blueprint": "\"service\""}}}}]})
}

/// A normal call still works, and Port has seen only such calls: no update got through.
async fn still_serving(port: &FakePort, client: &Client) {
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        call(client, "get-all-integrations", json!({})),
    )
    .await
    .expect("the server still answers");
    assert!(!is_error(&r), "{r:?}");
    let methods: Vec<String> = port.api_requests().into_iter().map(|r| r.method).collect();
    assert!(
        methods.iter().all(|m| m == "GET"),
        "Port received more than reads: {methods:?}"
    );
}

fn refusal_names_a_limit(text: &str) -> bool {
    (text.contains("too deeply nested") && text.contains("PORT_MAPPING_MAX_DEPTH"))
        || text.contains("PORT_MAPPING_MAX_EXPRESSION_BYTES")
}

#[tokio::test]
async fn deep_jq_in_updates_is_refused_and_nothing_reaches_port() {
    let (port, client) = client(test_limits()).await;
    for (name, expr) in deep_expressions() {
        for (tool, body) in [
            (
                "update-integration-s-config",
                json!({"config": config_with_query(&expr)}),
            ),
            (
                "update-integration",
                json!({"title": "t", "config": config_with_query(&expr)}),
            ),
        ] {
            let r = call(
                &client,
                tool,
                json!({"identifier": "github-ocean", "body": body}),
            )
            .await;
            assert!(is_error(&r), "{name} via {tool}");
            let text = text(&r);
            assert!(
                text.starts_with("The mapping has 1 jq expression(s)"),
                "{name}: {text}"
            );
            assert!(refusal_names_a_limit(&text), "{name}: {text}");
            assert!(
                text.len() < 2000,
                "{name}: the expression is not echoed whole"
            );
        }
        still_serving(&port, &client).await;
    }
    // The preview refuses them before starting a worker.
    for (name, expr) in deep_expressions()
        .into_iter()
        .chain([("path chain", ".a".repeat(10_000))])
    {
        let r = call(
            &client,
            "preview-integration-mapping",
            json!({"config": config_with_query(&expr), "items": [{"name": "x"}]}),
        )
        .await;
        assert!(is_error(&r), "{name}");
        let text = text(&r);
        assert!(
            text.starts_with("Invalid argument `config.resources[0].selector.query`"),
            "{name}: {text}"
        );
        assert!(refusal_names_a_limit(&text), "{name}: {text}");
    }
    still_serving(&port, &client).await;
}

/// A 400 KB quote-free expression made the handler panic; now it is refused by its length.
#[tokio::test]
async fn a_huge_quote_free_expression_is_refused() {
    let (port, client) = client(test_limits()).await;
    let huge = ".a + ".repeat(80_000) + ".a";
    let r = call(
        &client,
        "update-integration-s-config",
        json!({"identifier": "github-ocean", "body": {"config": config_with_query(&huge)}}),
    )
    .await;
    assert!(is_error(&r));
    let text = text(&r);
    assert!(
        text.contains("is 400002 bytes long; at most 16384 are accepted (--mapping-max-expression-bytes / PORT_MAPPING_MAX_EXPRESSION_BYTES)"),
        "{text}"
    );
    still_serving(&port, &client).await;
}

/// Many expressions: refused by count with one clear error; under the count, checked off the
/// runtime while other calls are answered.
#[tokio::test]
async fn too_many_expressions_are_refused() {
    let limits = MappingLimits {
        max_expressions: 100,
        ..test_limits()
    };
    let (port, client) = client(limits).await;
    let props: serde_json::Map<String, Value> = (0..200)
        .map(|i| (format!("p{i}"), json!(format!(".p{i}"))))
        .collect();
    let config = json!({"resources": [{"kind": "k", "selector": {"query": "true"},
        "port": {"entity": {"mappings": {"identifier": ".id", "blueprint": "\"b\"", "properties": props}}}}]});
    let r = call(
        &client,
        "update-integration-s-config",
        json!({"identifier": "github-ocean", "body": {"config": config}}),
    )
    .await;
    assert!(is_error(&r));
    assert_eq!(
        text(&r),
        "Invalid argument `body.config`: the mapping has 203 jq expressions; at most 100 are \
         checked in one mapping (--mapping-max-expressions / PORT_MAPPING_MAX_EXPRESSIONS). \
         Nothing was sent to Port."
    );
    still_serving(&port, &client).await;
}

/// The check runs off the async runtime: on this test's single-threaded runtime (which also
/// runs the in-process server), a read sent after a heavy update is answered first. Before,
/// the check ran on the runtime's thread and every other call waited for it.
#[tokio::test]
async fn a_heavy_check_does_not_hold_up_other_calls() {
    let (port, client) = client(test_limits()).await;
    let props: serde_json::Map<String, Value> = (0..4900)
        .map(|i| {
            let e = if i % 700 == 0 {
                format!(".p{i} | nope")
            } else {
                format!(".p{i} | tostring // \"\"")
            };
            (format!("p{i}"), json!(e))
        })
        .collect();
    let config = json!({"resources": [{"kind": "k", "selector": {"query": "true"},
        "port": {"entity": {"mappings": {"identifier": ".id", "blueprint": "\"b\"", "properties": props}}}}]});
    let peer = client.peer().clone();
    let update = tokio::spawn(async move {
        peer.call_tool(
            CallToolRequestParams::new("update-integration-s-config").with_arguments(args(
                json!({"identifier": "github-ocean", "body": {"config": config}}),
            )),
        )
        .await
        .unwrap()
    });
    // Let the update reach the server and start its check.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = call(&client, "get-all-integrations", json!({})).await;
    assert!(!is_error(&r));
    assert!(
        !update.is_finished(),
        "the read waited for the update's check"
    );
    let r = update.await.unwrap();
    assert!(is_error(&r));
    assert!(
        text(&r).starts_with("The mapping has 7 jq expression(s)"),
        "{}",
        text(&r)
    );
    still_serving(&port, &client).await;
}

/// With every jq slot taken, checks and previews answer "busy" (REST: 503 with Retry-After)
/// after their wait, and send nothing; once a slot is free they work again.
#[tokio::test]
async fn busy_jq_slots_give_a_clear_busy_error() {
    let port = FakePort::start().await;
    let limits = MappingLimits {
        check_timeout_secs: 1,
        max_concurrent: 1,
        ..test_limits()
    };
    let server = tools(&port, limits);
    let slots = server.jq_slots().clone();
    let rest_app = rest::router(server.clone(), &crate::http::http_args(true));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rest_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, rest_app).await });
    let client = connect_tools(server, (), ClientLifecycleMode::Initialize).await;
    let good = config_with_query("true");
    let update = json!({"identifier": "github-ocean", "body": {"config": good}});

    let held = slots.checks.clone().acquire_owned().await.unwrap();
    let r = call(&client, "update-integration-s-config", update.clone()).await;
    assert!(is_error(&r));
    assert!(
        text(&r).contains("did not finish within 1 s")
            && text(&r).contains("PORT_MAPPING_CHECK_TIMEOUT_SECS")
            && text(&r).contains("PORT_JQ_MAX_CONCURRENT")
            && text(&r).ends_with("Nothing was sent to Port."),
        "{}",
        text(&r)
    );
    let r = reqwest::Client::new()
        .patch(format!(
            "http://{rest_addr}/v1/integration/github-ocean/config"
        ))
        .json(&json!({"config": good}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "busy", "{body}");
    still_serving(&port, &client).await;
    drop(held);

    let held = slots.previews.clone().acquire_owned().await.unwrap();
    let r = preview(&client, ".name").await;
    assert!(is_error(&r));
    assert!(
        text(&r).contains("busy with other previews"),
        "{}",
        text(&r)
    );
    drop(held);
    let r = preview(&client, ".name").await;
    assert!(!is_error(&r), "{r:?}");

    assert!(port.api_requests().iter().all(|r| r.method == "GET"));
    let r = call(&client, "update-integration-s-config", update).await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(port.api_requests().last().unwrap().method, "PATCH");
}

/// The same refusals over streamable HTTP and on the REST routes.
#[tokio::test]
async fn deep_jq_over_http_and_rest_is_refused() {
    let port = FakePort::start().await;
    let settings = crate::http::http_args(false);
    let app = port_integrations_mcp::transport::http::app(
        tools(&port, test_limits()),
        &settings,
        tokio_util::sync::CancellationToken::new(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = ()
        .serve(StreamableHttpClientTransport::from_uri(format!(
            "http://{addr}/mcp"
        )))
        .await
        .unwrap();
    let parens = format!("{}.id{}", "(".repeat(1000), ")".repeat(1000));
    let r = call(
        &client,
        "update-integration-s-config",
        json!({"identifier": "github-ocean", "body": {"config": config_with_query(&parens)}}),
    )
    .await;
    assert!(is_error(&r));
    assert!(refusal_names_a_limit(&text(&r)), "{}", text(&r));
    let r = call(&client, "get-all-integrations", json!({})).await;
    assert!(!is_error(&r));

    let rest_app = rest::router(tools(&port, test_limits()), &settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rest_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, rest_app).await });
    let http = reqwest::Client::new();
    for (name, expr) in deep_expressions() {
        for (path, body) in [
            (
                "/v1/integration/github-ocean/config",
                json!({"config": config_with_query(&expr)}),
            ),
            (
                "/v1/integration/github-ocean",
                json!({"config": config_with_query(&expr)}),
            ),
        ] {
            let r = http
                .patch(format!("http://{rest_addr}{path}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{name} {path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "invalid_mapping", "{name}: {body}");
            assert!(
                refusal_names_a_limit(body["findings"][0]["message"].as_str().unwrap()),
                "{name}: {body}"
            );
        }
    }
    let r = http
        .get(format!("http://{rest_addr}/v1/integration"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let methods: Vec<String> = port.api_requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["GET", "GET"], "only the two reads reached Port");
}

async fn preview(client: &Client, expr: &str) -> rmcp::model::CallToolResult {
    let resource = json!({"kind": "repository", "selector": {"query": "true"},
        "port": {"entity": {"mappings": {"identifier": ".name", "blueprint": "\"service\"",
        "properties": {"x": expr}}}}});
    tokio::time::timeout(
        Duration::from_secs(30),
        call(
            client,
            "preview-integration-mapping",
            json!({"config": resource, "items": [{"name": "api"}]}),
        ),
    )
    .await
    .expect("the preview ends")
}

/// `halt` in a preview is the error of its expression; the server goes on.
#[tokio::test]
async fn halt_in_a_preview_is_an_error_in_place() {
    let (port, client) = client(test_limits()).await;
    for expr in [
        "halt",
        "halt_error(0)",
        "halt(42)",
        "halt_error",
        "\"bye\" | halt_error(1)",
    ] {
        let r = preview(&client, expr).await;
        assert!(!is_error(&r), "{expr}: {r:?}");
        let entity = &r.structured_content.unwrap()["results"][0]["entities"][0];
        assert_eq!(entity["identifier"], "api", "{expr}");
        assert_eq!(entity["properties"]["x"], Value::Null, "{expr}");
        let error = entity["errors"]["properties.x"].as_str().unwrap();
        assert!(
            error.contains("calls halt") || error.starts_with("jq error"),
            "{expr}: {error}"
        );
    }
    still_serving(&port, &client).await;
    assert!(port.api_requests().iter().all(|r| r.method == "GET"));
}

/// Endless loops, memory bombs and runaway recursion stop at their limit, with a clear error.
#[tokio::test]
async fn runaway_previews_are_stopped_at_their_limits() {
    let (port, client) = client(test_limits()).await;
    for (expr, expected) in [
        ("last(range(1e18))", "PORT_PREVIEW_TIMEOUT_SECS"),
        ("until(false; .)", "PORT_PREVIEW_TIMEOUT_SECS"),
        ("def f: f; f", "PORT_PREVIEW_TIMEOUT_SECS"),
        ("[range(1e8)]", "PORT_PREVIEW_"),
        ("[range(1e8)] | length", "PORT_PREVIEW_"),
        // This one overflows the worker's stack, or reaches the time limit first: either way
        // the worker is what stops, not the server.
        ("def f: [f]; f", "was stopped"),
    ] {
        let r = preview(&client, expr).await;
        assert!(is_error(&r), "{expr}: {r:?}");
        let text = text(&r);
        assert!(text.contains(expected), "{expr}: {text}");
        assert!(
            text.ends_with("Nothing was sent to Port."),
            "{expr}: {text}"
        );
        assert_eq!(r.structured_content.unwrap()["error"], "jq_limit");
        still_serving(&port, &client).await;
    }
    // A 200000-deep result: the worker stops (stack or time), or the result is refused in
    // place as too deep to return; the server goes on either way.
    let r = preview(&client, "reduce range(200000) as $i (.; [.])").await;
    if is_error(&r) {
        assert!(text(&r).contains("was stopped"), "{}", text(&r));
    } else {
        let entity = &r.structured_content.unwrap()["results"][0]["entities"][0];
        assert!(entity["errors"]["properties.x"].is_string(), "{entity}");
    }
    still_serving(&port, &client).await;
    // jaq refuses this one itself, as an error in place.
    let r = preview(&client, "\"x\" * 1e9").await;
    let entity = &r.structured_content.unwrap()["results"][0]["entities"][0];
    assert!(
        entity["errors"]["properties.x"]
            .as_str()
            .unwrap()
            .starts_with("jq error"),
        "{entity}"
    );
    // A good preview still works after all that.
    let r = preview(&client, ".name | ascii_upcase").await;
    let entity = &r.structured_content.unwrap()["results"][0]["entities"][0];
    assert_eq!(entity["properties"]["x"], "API");
}

/// The result is bounded.
#[tokio::test]
async fn a_preview_result_over_the_output_limit_is_dropped() {
    let (_port, client) = client(MappingLimits {
        preview_max_output_bytes: 10_000,
        ..test_limits()
    })
    .await;
    let r = preview(&client, "[range(5000)]").await;
    assert!(is_error(&r));
    assert!(
        text(&r).contains("exceeds 10000 bytes")
            && text(&r).contains("PORT_PREVIEW_MAX_OUTPUT_BYTES"),
        "{}",
        text(&r)
    );
}

/// The workers whose command line starts with `exe` (a per-test link to the binary).
fn workers_of(exe: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false);
        if args.first() == Some(&exe.as_bytes())
            && args.get(1) == Some(&b"__jq-worker".as_slice())
            && alive
        {
            pids.push(pid);
        }
    }
    pids
}

/// A link to the binary under a name of the test's own, to tell its workers apart.
fn worker_link(name: &str) -> String {
    let link = std::env::temp_dir().join(format!("pim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    link.display().to_string()
}

async fn wait_for_worker(exe: &str) -> u32 {
    for _ in 0..500 {
        if let Some(pid) = workers_of(exe).first() {
            return *pid;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no worker started");
}

async fn wait_until_gone(exe: &str) {
    for _ in 0..500 {
        if workers_of(exe).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the worker of {exe} is still running");
}

/// A cancelled preview kills its worker; two endless previews cannot starve other calls, and
/// a third one waits for a slot, then gets a clear busy error.
#[tokio::test]
async fn cancelled_previews_end_and_endless_ones_do_not_starve_the_server() {
    let exe = worker_link("cancel");
    let (port, client) = client(MappingLimits {
        preview_timeout_secs: 60,
        max_concurrent: 1,
        preview_worker: Some(PathBuf::from(&exe)),
        ..test_limits()
    })
    .await;
    let resource = json!({"kind": "repository", "selector": {"query": "until(false; .)"},
        "port": {"entity": {"mappings": {"identifier": ".name", "blueprint": "\"service\""}}}});
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new("preview-integration-mapping")
            .with_arguments(args(json!({"config": resource, "items": [{}]}))),
    ));
    let handle = client
        .peer()
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    wait_for_worker(&exe).await;
    // The endless preview holds the only slot; other calls are answered meanwhile.
    still_serving(&port, &client).await;
    handle.cancel(Some("stop".into())).await.unwrap();
    wait_until_gone(&exe).await;

    // Once the client is gone, its preview's worker goes too.
    let (port2, client2) = client_with_exe(&exe, 60).await;
    let mut running = Box::pin(call(
        &client2,
        "preview-integration-mapping",
        json!({"config": resource, "items": [{}]}),
    ));
    tokio::select! {
        _ = &mut running => panic!("an endless preview ended"),
        _ = wait_for_worker(&exe) => {}
    }
    drop(running);
    client2.cancel().await.unwrap();
    wait_until_gone(&exe).await;
    assert!(port2.api_requests().is_empty());

    // Busy: with one slot taken by an endless preview, the next waits until its deadline.
    let (port3, client3) = client_with_exe(&exe, 3).await;
    let first = {
        let resource = resource.clone();
        let peer = client3.peer().clone();
        tokio::spawn(async move {
            peer.call_tool(
                CallToolRequestParams::new("preview-integration-mapping")
                    .with_arguments(args(json!({"config": resource, "items": [{}]}))),
            )
            .await
            .unwrap()
        })
    };
    wait_for_worker(&exe).await;
    let r = call(
        &client3,
        "preview-integration-mapping",
        json!({"config": resource, "items": [{}]}),
    )
    .await;
    assert!(is_error(&r));
    assert!(
        text(&r).contains("busy with other previews")
            && text(&r).contains("PORT_JQ_MAX_CONCURRENT"),
        "{}",
        text(&r)
    );
    let r = first.await.unwrap();
    assert!(
        text(&r).contains("did not finish within 3 s"),
        "{}",
        text(&r)
    );
    still_serving(&port3, &client3).await;
    wait_until_gone(&exe).await;
}

async fn client_with_exe(exe: &str, timeout: u64) -> (FakePort, Client) {
    client(MappingLimits {
        preview_timeout_secs: timeout,
        max_concurrent: 1,
        preview_worker: Some(PathBuf::from(exe)),
        ..test_limits()
    })
    .await
}

/// Over stdio, with the real binary: `halt` once ended the whole server.
#[tokio::test]
async fn the_stdio_server_survives_halt_and_an_endless_preview() {
    let cmd = tokio::process::Command::new(BIN).configure(|cmd| {
        cmd.env_clear()
            .env("PORT_TOOLSETS", "integrations,mapping")
            .env("PORT_PREVIEW_TIMEOUT_SECS", "1")
            .args(["stdio", "--sandbox"]);
    });
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = ().serve(transport).await.unwrap();
    for expr in ["halt", "halt_error(0)", "until(false; .)"] {
        let _ = preview(&client, expr).await;
        let r = call(&client, "get-all-integrations", json!({})).await;
        assert!(!is_error(&r), "after {expr}: {r:?}");
    }
}

/// SIGTERM during an endless preview: the grace period ends the call, the worker is killed,
/// and the server exits.
#[tokio::test]
async fn sigterm_during_an_endless_preview_exits() {
    let exe = worker_link("sigterm");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(BIN)
        .env_clear()
        .env("PORT_TOOLSETS", "integrations,mapping")
        .env("PORT_PREVIEW_TIMEOUT_SECS", "600")
        .env("PORT_PREVIEW_WORKER", &exe)
        .env("PORT_MCP_SHUTDOWN_GRACE_SECS", "1")
        .args(["http", "--sandbox", "--listen", &listen])
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    port_integrations_mcp::install_crypto_provider();
    let mut up = false;
    for _ in 0..250 {
        if let Ok(r) = reqwest::get(format!("http://{listen}/healthz")).await
            && r.status() == 200
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(up, "server did not come up");
    let client = ()
        .serve(StreamableHttpClientTransport::from_uri(format!(
            "http://{listen}/mcp"
        )))
        .await
        .unwrap();
    let resource = json!({"kind": "repository", "selector": {"query": "until(false; .)"},
        "port": {"entity": {"mappings": {"identifier": ".name", "blueprint": "\"service\""}}}});
    let in_flight = tokio::spawn(async move {
        let _ = client
            .call_tool(
                CallToolRequestParams::new("preview-integration-mapping")
                    .with_arguments(args(json!({"config": resource, "items": [{}]}))),
            )
            .await;
    });
    wait_for_worker(&exe).await;
    sigterm(&child);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the server exits after the grace period")
        .unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    wait_until_gone(&exe).await;
    in_flight.abort();
}

/// `check-mapping` refuses hostile files with a clear message and exit code 1, in bounded time.
#[tokio::test]
async fn check_mapping_refuses_hostile_files() {
    let dir = std::env::temp_dir().join(format!("pim-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |file: &PathBuf, env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.env_clear().arg("check-mapping").arg(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The shared hook's file: a 20000-deep selector.
    let deep = dir.join("deep.yml");
    std::fs::write(
        &deep,
        format!(
            "resources:\n- kind: x\n  selector:\n    query: \"{}true{}\"\n  port:\n    entity:\n      mappings:\n        identifier: .id\n        blueprint: \"'b'\"\n",
            "(".repeat(20000),
            ")".repeat(20000)
        ),
    )
    .unwrap();
    let (code, stdout, _) = run(&deep, &[]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("selector.query: refused: the expression is 40004 bytes long"),
        "{stdout}"
    );
    for (name, expr) in deep_expressions() {
        let file = dir.join(format!("{name}.json"));
        std::fs::write(&file, config_with_query(&expr).to_string()).unwrap();
        let (code, stdout, _) = run(&file, &[]);
        assert_eq!(code, Some(1), "{name}: {stdout}");
        assert!(refusal_names_a_limit(&stdout), "{name}: {stdout}");
    }
    // A 100k-deep YAML list and map, refused before the YAML parser runs.
    for (name, text) in [
        ("list", format!("resources:\n{}x\n", "- ".repeat(100_000))),
        (
            "flow",
            format!("resources: {}1{}", "[".repeat(100_000), "]".repeat(100_000)),
        ),
        (
            "map",
            format!(
                "resources: {}1{}",
                "{a: ".repeat(100_000),
                "}".repeat(100_000)
            ),
        ),
        (
            "indented",
            (0..2000)
                .map(|i| format!("{}k:\n", " ".repeat(i)))
                .collect(),
        ),
    ] {
        let file = dir.join(format!("yaml-{name}.yml"));
        std::fs::write(&file, text).unwrap();
        let (code, _, stderr) = run(&file, &[]);
        assert_eq!(code, Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains("too deeply nested") && stderr.contains("PORT_MAPPING_MAX_DEPTH"),
            "{name}: {stderr}"
        );
    }
    // Size and count limits, from the environment.
    let (code, _, stderr) = run(&deep, &[("PORT_MAPPING_MAX_FILE_BYTES", "1000")]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("at most 1000 are read") && stderr.contains("PORT_MAPPING_MAX_FILE_BYTES"),
        "{stderr}"
    );
    let github =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/mapping-corpus/ocean/github.yml");
    let (code, _, stderr) = run(&github, &[("PORT_MAPPING_MAX_EXPRESSIONS", "5")]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("at most 5 are checked") && stderr.contains("PORT_MAPPING_MAX_EXPRESSIONS"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
