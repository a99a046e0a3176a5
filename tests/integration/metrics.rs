//! Prometheus metrics (issue 13): a known sequence of calls through rmcp's HTTP client (a
//! success, a Port 404, a retried 503, a refused mapping, a busy refusal), then a scrape of
//! `/metrics` whose sample lines are compared whole; `--metrics-listen` on HTTP and stdio; and
//! attacks on the label sets (hostile tool names, thousands of identifiers, scrapes under load,
//! the metrics listener's connection cap). `promtool check metrics` reads a live scrape when it
//! is installed (`PORT_MCP_TEST_PROMTOOL`, else `promtool` on PATH).

use std::{net::SocketAddr, time::Duration};

use port_integrations_mcp::{
    config::{HttpSettings, PortSettings},
    port::PortClient,
    sandbox::ScriptedResponse,
    telemetry::{Parts, Telemetry},
    tools::{PortTools, catalog},
    transport::{http::serve_on, metrics as metrics_listener},
};
use rmcp::{ServiceExt, model::CallToolRequestParams, transport::StreamableHttpClientTransport};
use serde_json::json;
use tokio::net::TcpListener;

use crate::common::*;

/// Telemetry with metrics on, as `run` builds it.
fn metered() -> Telemetry {
    Telemetry::new(Parts {
        metrics: Some(catalog::metrics()),
        ..Default::default()
    })
}

/// A metered server over HTTP (our own accept loop, lean path included) for this fake Port.
async fn serve_metered(settings: &PortSettings, http: HttpSettings) -> (SocketAddr, PortTools) {
    let tools = PortTools::new(PortClient::new(settings).unwrap().with_telemetry(metered()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = tools.clone();
    tokio::spawn(async move { serve_on(listener, served, &http, std::future::pending()).await });
    (addr, tools)
}

async fn http_client(addr: SocketAddr) -> Client {
    let transport = StreamableHttpClientTransport::from_uri(format!("http://{addr}/mcp"));
    ().serve(transport).await.unwrap()
}

/// `GET /metrics`: 200, Prometheus text 0.0.4.
async fn scrape(addr: SocketAddr) -> String {
    let r = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    r.text().await.unwrap()
}

/// The sample lines of `name` (exactly that name, any labels), sorted.
fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let mut lines: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect();
    lines.sort_unstable();
    lines
}

/// The value of one sample line.
fn value(line: &str) -> f64 {
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Every line is a comment or `name{labels} value`: what a scraper needs to parse it.
fn assert_well_formed(text: &str) {
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, number) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(
            number.parse::<f64>().is_ok() || number == "+Inf",
            "not a number: {line}"
        );
        let name_end = series.find('{').unwrap_or(series.len());
        assert!(
            series[..name_end]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name: {line}"
        );
    }
}

fn status(code: u16) -> ScriptedResponse {
    ScriptedResponse::json(
        code,
        json!({"ok": false, "error": format!("e{code}"), "message": "injected"}),
    )
}

fn broken_config() -> serde_json::Value {
    json!({"resources": [
        {"kind": "repository", "selector": {"query": "true"}, "port": {"entity": {"mappings": {
            "identifier": ".name", "blueprint": "\"service\"",
            "properties": {"lang": ".language | ascii_downcasee"}
        }}}},
        {"kind": "pull-request", "selector": {"query": ".state == "}, "port": {"entity": {"mappings": {
            "identifier": ".id | tostring", "blueprint": "\"pr\""
        }}}}
    ]})
}

/// Settings under which a call queued behind a 1.2 s request is refused as busy: it gets the
/// slot with less than the 1 s a request needs left of its 2 s budget.
fn tight(port: &FakePort) -> PortSettings {
    PortSettings {
        max_in_flight: 1,
        budget: Duration::from_secs(2),
        min_request_budget: Duration::from_secs(2),
        ..port.settings(static_token())
    }
}

/// The known sequence: a success, a Port 404, a 503 retried once, a refused mapping, and a
/// call refused as busy behind a slow one. Returns the server's address.
async fn known_sequence(port: &FakePort) -> SocketAddr {
    let (addr, _) = serve_metered(&tight(port), http_args()).await;
    let client = http_client(addr).await;
    // A request other than tools/call is measured by its method.
    let listed = client.list_all_tools().await.unwrap();
    assert_eq!(listed.len(), 7);

    let ok = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&ok), "{ok:?}");

    let missing = call(
        &client,
        "get-integration",
        json!({"identifier": "no-such-integration-7"}),
    )
    .await;
    assert!(is_error(&missing));
    assert!(text(&missing).contains("404"), "{}", text(&missing));

    port.port
        .script(status(503).with_header("retry-after", "0"));
    let retried = call(&client, "get-all-integrations", json!({})).await;
    assert!(!is_error(&retried), "{retried:?}");

    let refused = call(
        &client,
        "update-integration-s-config",
        json!({"identifier": "github-ocean", "body": {"config": broken_config()}}),
    )
    .await;
    assert!(is_error(&refused));
    assert!(text(&refused).starts_with("The mapping has 2 jq expression(s)"));

    port.port.script(
        ScriptedResponse::json(200, json!({"ok": true, "integrations": []}))
            .after(Duration::from_millis(1200)),
    );
    let before = port.api_requests().len();
    let (slow, busy) = tokio::join!(
        call(&client, "get-all-integrations-meta-data", json!({})),
        async {
            for _ in 0..250 {
                if port.api_requests().len() > before {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            call(&client, "get-all-integrations", json!({})).await
        }
    );
    assert!(!is_error(&slow), "{slow:?}");
    assert!(is_error(&busy), "{busy:?}");
    assert!(text(&busy).contains("--max-in-flight"), "{}", text(&busy));
    assert_eq!(
        port.api_requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>(),
        [
            "GET /v1/integration/github-ocean",
            "GET /v1/integration/no-such-integration-7",
            "GET /v1/integration",
            "GET /v1/integration",
            "GET /v1/integration/metadata",
        ],
        "the refused mapping and the busy call sent nothing"
    );
    client.cancel().await.unwrap();
    addr
}

fn http_args() -> HttpSettings {
    HttpSettings::local(SocketAddr::from(([127, 0, 0, 1], 0)))
}

#[tokio::test]
async fn a_known_sequence_gives_exact_counts_and_labels() {
    let port = FakePort::start().await;
    let addr = known_sequence(&port).await;
    let text = scrape(addr).await;
    assert_well_formed(&text);

    let op = "mcp_server_operation_duration_seconds";
    let series = |tool: &str, error: &str| {
        format!(
            r#"{op}_count{{mcp_method_name="tools/call",gen_ai_tool_name="{tool}",error_type="{error}"}} 1"#
        )
    };
    let mut expected = vec![
        format!(
            r#"{op}_count{{mcp_method_name="initialize",gen_ai_tool_name="",error_type=""}} 1"#
        ),
        format!(
            r#"{op}_count{{mcp_method_name="tools/list",gen_ai_tool_name="",error_type=""}} 1"#
        ),
        series("get-all-integrations", ""),
        series("get-all-integrations", "tool_error"),
        series("get-all-integrations-meta-data", ""),
        series("get-integration", ""),
        series("get-integration", "tool_error"),
        series("update-integration-s-config", "tool_error"),
    ];
    expected.sort();
    assert_eq!(samples(&text, &format!("{op}_count")), expected, "{text}");
    for sum in samples(&text, &format!("{op}_sum")) {
        assert!(value(sum) > 0.0, "{sum}");
    }
    // Buckets are the semantic conventions' advice, +Inf equal to the count.
    let buckets = samples(&text, &format!("{op}_bucket"));
    assert_eq!(buckets.len(), 8 * 15, "{buckets:#?}");
    assert!(
        text.contains(r#"gen_ai_tool_name="get-integration",error_type="",le="300"} 1"#),
        "{text}"
    );

    let req = "port_request_duration_seconds";
    let series = |route: &str, class: &str| {
        format!(
            r#"{req}_count{{http_request_method="GET",route="{route}",status_class="{class}"}} 1"#
        )
    };
    let mut expected = vec![
        series("/v1/integration", "2xx"),
        series("/v1/integration", "5xx"),
        series("/v1/integration/metadata", "2xx"),
        series("/v1/integration/{identifier}", "2xx"),
        series("/v1/integration/{identifier}", "4xx"),
    ];
    expected.sort();
    assert_eq!(samples(&text, &format!("{req}_count")), expected, "{text}");
    for sum in samples(&text, &format!("{req}_sum")) {
        assert!(value(sum) > 0.0, "{sum}");
    }

    assert_eq!(
        samples(&text, "port_request_retries_total"),
        [r#"port_request_retries_total{cause="503"} 1"#]
    );
    assert_eq!(
        samples(&text, "busy_refusals_total"),
        [r#"busy_refusals_total{reason="port_slots"} 1"#]
    );
    // Five calls asked for a slot (the refused mapping never did); one waited in vain.
    assert_eq!(
        samples(&text, "port_request_queue_wait_seconds_count"),
        ["port_request_queue_wait_seconds_count 5"]
    );
    assert_eq!(
        samples(&text, "port_requests_in_flight"),
        ["port_requests_in_flight 0"]
    );
    assert_eq!(
        samples(&text, "mapping_checks_total"),
        ["mapping_checks_total 1"]
    );
    assert_eq!(
        samples(&text, "mapping_expressions_refused_total"),
        ["mapping_expressions_refused_total 2"]
    );
    assert_eq!(
        samples(&text, "mapping_expressions_unchecked_total"),
        ["mapping_expressions_unchecked_total 0"]
    );
    // A static token: no exchange.
    assert_eq!(
        samples(&text, "port_token_exchanges_total"),
        Vec::<&str>::new()
    );
    assert_eq!(
        samples(&text, "port_token_refresh_failures_total"),
        ["port_token_refresh_failures_total 0"]
    );
    // Process numbers, read at scrape time.
    for name in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        let line = samples(&text, name);
        assert_eq!(line.len(), 1, "{name}: {text}");
        assert!(value(line[0]) > 0.0, "{line:?}");
    }
    // No identifier, no token, no argument reaches a scrape.
    for secret in [
        "github-ocean",
        "no-such-integration-7",
        STATIC_TOKEN,
        "ascii_downcasee",
    ] {
        assert!(!text.contains(secret), "{secret} in the scrape");
    }

    // The client closed its session (DELETE): it is measured when rmcp drops it.
    let session = r#"mcp_server_session_duration_seconds_count{network_transport="tcp"} 1"#;
    let mut seen = String::new();
    for _ in 0..250 {
        seen = scrape(addr).await;
        if seen.contains(session) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        samples(&seen, "mcp_server_session_duration_seconds_count"),
        [session]
    );
}

/// The promtool named by `PORT_MCP_TEST_PROMTOOL`, else the one on PATH.
fn promtool() -> Option<String> {
    if let Ok(path) = std::env::var("PORT_MCP_TEST_PROMTOOL")
        && !path.is_empty()
    {
        return Some(path);
    }
    std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "promtool".into())
}

#[tokio::test]
async fn promtool_accepts_a_live_scrape() {
    let Some(promtool) = promtool() else {
        eprintln!("promtool not found (set PORT_MCP_TEST_PROMTOOL): skipping its check");
        return;
    };
    let port = FakePort::start().await;
    let addr = known_sequence(&port).await;
    let text = scrape(addr).await;
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {promtool}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool check metrics:\n{report}\n{text}"
    );
    assert_eq!(report.trim(), "", "promtool's lint findings");
}

#[tokio::test]
async fn hostile_tool_names_and_many_identifiers_add_no_series() {
    let port = FakePort::start().await;
    let (addr, _) = serve_metered(&port.settings(static_token()), http_args()).await;
    let client = http_client(addr).await;
    let long = "x".repeat(10_000);
    for name in [
        "no-such-tool",
        "get-integration ",
        "../../etc/passwd",
        "a\"b\\c\nd",
        long.as_str(),
    ] {
        let refused = client
            .call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(args(json!({}))))
            .await;
        assert!(refused.is_err(), "{name}: {refused:?}");
    }
    let text = scrape(addr).await;
    let op = samples(&text, "mcp_server_operation_duration_seconds_count");
    assert_eq!(
        op,
        [
            r#"mcp_server_operation_duration_seconds_count{mcp_method_name="initialize",gen_ai_tool_name="",error_type=""} 1"#,
            r#"mcp_server_operation_duration_seconds_count{mcp_method_name="tools/call",gen_ai_tool_name="_OTHER",error_type="-32602"} 5"#
        ],
        "{text}"
    );
    assert!(!text.contains("passwd") && !text.contains("xxxx") && !text.contains("no-such"));

    // Hundreds of distinct identifiers, with scrapes running all along: the series stay one
    // per route and class, and every scrape is whole.
    let size_before = text.len();
    let calls = async {
        let calls = (0..300).map(|i| {
            let client = &client;
            async move {
                call(
                    client,
                    "get-integration",
                    json!({"identifier": format!("id-{i}-x")}),
                )
                .await
            }
        });
        futures::future::join_all(calls).await
    };
    let scrapes = async {
        let mut n = 0;
        for _ in 0..20 {
            assert_well_formed(&scrape(addr).await);
            n += 1;
        }
        n
    };
    let (results, scraped) = tokio::join!(calls, scrapes);
    assert_eq!(scraped, 20);
    assert!(results.iter().all(is_error));
    let text = scrape(addr).await;
    assert_eq!(
        samples(&text, "port_request_duration_seconds_count"),
        [
            r#"port_request_duration_seconds_count{http_request_method="GET",route="/v1/integration/{identifier}",status_class="4xx"} 300"#
        ]
    );
    assert!(!text.contains("id-"), "an identifier reached the scrape");
    // One new operation series (get-integration, tool_error) and one Port series.
    let grown = text.len() - size_before;
    assert!(grown < 8 * 1024, "the scrape grew by {grown} bytes");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn metrics_listen_moves_metrics_off_the_main_listener() {
    let port = FakePort::start().await;
    let telemetry = metered();
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    metrics_listener::serve_on(metrics, &telemetry);
    let tools = PortTools::new(
        PortClient::new(&port.settings(static_token()))
            .unwrap()
            .with_telemetry(telemetry),
    );
    let http = HttpSettings {
        metrics_listen: Some(metrics_addr),
        ..http_args()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { serve_on(listener, tools, &http, std::future::pending()).await });

    let client = http_client(addr).await;
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r));
    let main = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(main.status(), 404, "the MCP listener still serves /metrics");
    let text = scrape(metrics_addr).await;
    assert_eq!(
        samples(&text, "mcp_server_operation_duration_seconds_count"),
        [
            r#"mcp_server_operation_duration_seconds_count{mcp_method_name="initialize",gen_ai_tool_name="",error_type=""} 1"#,
            r#"mcp_server_operation_duration_seconds_count{mcp_method_name="tools/call",gen_ai_tool_name="get-integration",error_type=""} 1"#
        ]
    );
    // The metrics listener serves only /metrics.
    let other = reqwest::get(format!("http://{metrics_addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_metrics_listener_caps_its_connections() {
    let telemetry = metered();
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = metrics.local_addr().unwrap();
    metrics_listener::serve_on(metrics, &telemetry);
    let mut held = Vec::new();
    for _ in 0..metrics_listener::MAX_METRICS_CONNECTIONS {
        held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let refused = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    let body = refused.text().await.unwrap();
    assert!(
        body.contains("the metrics listener has 16 connections open, its fixed limit"),
        "{body}"
    );
    drop(held);
    let mut status = 0;
    for _ in 0..100 {
        status = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200, "the listener recovers once connections close");
}

#[tokio::test]
async fn metrics_off_means_no_route_and_no_counting() {
    let port = FakePort::start().await;
    let tools = PortTools::new(PortClient::new(&port.settings(static_token())).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http = http_args();
    tokio::spawn(async move { serve_on(listener, tools, &http, std::future::pending()).await });
    let client = http_client(addr).await;
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r));
    let r = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn token_exchanges_and_refresh_failures_are_counted() {
    let port = FakePort::start().await;
    let settings = port.settings(client_credentials());
    let (addr, _) = serve_metered(&settings, http_args()).await;
    let client = http_client(addr).await;
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    // The token expires at Port, and the exchange that should replace it fails.
    port.port.expire_tokens();
    port.port
        .script(status(500).on_path("/v1/auth/access_token"));
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(is_error(&r), "{r:?}");
    let text = scrape(addr).await;
    assert_eq!(
        samples(&text, "port_token_exchanges_total"),
        [
            r#"port_token_exchanges_total{outcome="ok"} 1"#,
            r#"port_token_exchanges_total{outcome="refused"} 1"#,
        ]
    );
    assert_eq!(
        samples(&text, "port_token_refresh_failures_total"),
        ["port_token_refresh_failures_total 1"]
    );
    let req = "port_request_duration_seconds_count";
    let mut expected = vec![
        format!(
            r#"{req}{{http_request_method="GET",route="/v1/integration/{{identifier}}",status_class="2xx"}} 1"#
        ),
        format!(
            r#"{req}{{http_request_method="GET",route="/v1/integration/{{identifier}}",status_class="4xx"}} 1"#
        ),
        format!(
            r#"{req}{{http_request_method="POST",route="/v1/auth/access_token",status_class="2xx"}} 1"#
        ),
        format!(
            r#"{req}{{http_request_method="POST",route="/v1/auth/access_token",status_class="5xx"}} 1"#
        ),
    ];
    expected.sort();
    assert_eq!(samples(&text, req), expected, "{text}");
    for secret in [
        port_integrations_mcp::sandbox::SANDBOX_CLIENT_ID,
        port_integrations_mcp::sandbox::SANDBOX_CLIENT_SECRET,
    ] {
        assert!(!text.contains(secret), "a credential in the scrape");
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_stdio_session_is_measured_when_it_ends() {
    let port = FakePort::start().await;
    let telemetry = metered();
    let tools = PortTools::new(
        PortClient::new(&port.settings(static_token()))
            .unwrap()
            .with_telemetry(telemetry.clone()),
    );
    let input = concat!(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        "\n",
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        "\n",
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get-integration","arguments":{"identifier":"github-ocean"}}}"#,
        "\n",
    );
    port_integrations_mcp::transport::stdio::serve_with(
        std::io::Cursor::new(input.as_bytes().to_vec()),
        std::io::sink(),
        tools,
        Some(Default::default()),
    )
    .await
    .unwrap();
    let text = telemetry.metrics().unwrap().encode();
    assert_eq!(
        samples(&text, "mcp_server_session_duration_seconds_count"),
        [r#"mcp_server_session_duration_seconds_count{network_transport="pipe"} 1"#]
    );
    assert_eq!(
        samples(&text, "mcp_server_operation_duration_seconds_count"),
        [
            r#"mcp_server_operation_duration_seconds_count{mcp_method_name="initialize",gen_ai_tool_name="",error_type=""} 1"#,
            r#"mcp_server_operation_duration_seconds_count{mcp_method_name="tools/call",gen_ai_tool_name="get-integration",error_type=""} 1"#
        ]
    );
}

const BIN: &str = env!("CARGO_BIN_EXE_port-integrations-mcp");

#[tokio::test]
async fn stdio_serves_metrics_with_metrics_listen() {
    use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
    let port = FakePort::start().await;
    let metrics_port = free_port();
    let listen = format!("127.0.0.1:{metrics_port}");
    let cmd = tokio::process::Command::new(BIN).configure(|c| {
        c.env_clear()
            .kill_on_drop(true)
            .env("PORT_BASE_URL", &port.url)
            .env(
                "PORT_CLIENT_ID",
                port_integrations_mcp::sandbox::SANDBOX_CLIENT_ID,
            )
            .env(
                "PORT_CLIENT_SECRET",
                port_integrations_mcp::sandbox::SANDBOX_CLIENT_SECRET,
            )
            .env("PORT_MCP_METRICS_LISTEN", &listen)
            .arg("stdio");
    });
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = ().serve(transport).await.unwrap();
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    let text = scrape(listen.parse().unwrap()).await;
    assert_eq!(
        samples(&text, "mcp_server_operation_duration_seconds_count"),
        [
            r#"mcp_server_operation_duration_seconds_count{mcp_method_name="initialize",gen_ai_tool_name="",error_type=""} 1"#,
            r#"mcp_server_operation_duration_seconds_count{mcp_method_name="tools/call",gen_ai_tool_name="get-integration",error_type=""} 1"#
        ]
    );
    assert_eq!(
        samples(&text, "port_token_exchanges_total"),
        [r#"port_token_exchanges_total{outcome="ok"} 1"#]
    );
    client.cancel().await.unwrap();
}

async fn start_error(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.env_clear()
        .args(args)
        .stdin(std::process::Stdio::null())
        .env("PORT_API_KEY", STATIC_TOKEN)
        .env("PORT_BASE_URL", "http://127.0.0.1:9");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn metrics_settings_are_checked_at_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = start_error(&["stdio", "--metrics-listen", &addr], &[]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains(&format!(
            "cannot listen on {addr} for metrics (--metrics-listen / PORT_MCP_METRICS_LISTEN)"
        )),
        "{stderr}"
    );
    let (code, stderr) = start_error(
        &["stdio"],
        &[
            ("PORT_MCP_METRICS", "false"),
            ("PORT_MCP_METRICS_LISTEN", "127.0.0.1:0"),
        ],
    )
    .await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--metrics-listen / PORT_MCP_METRICS_LISTEN is set but metrics are off"),
        "{stderr}"
    );
    let (code, stderr) = start_error(&["stdio", "--metrics", "maybe"], &[]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--metrics"), "{stderr}");
    let (code, help) = {
        let out = tokio::process::Command::new(BIN)
            .args(["http", "--help"])
            .output()
            .await
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(code, 0);
    for needle in [
        "--metrics <BOOL>",
        "[env: PORT_MCP_METRICS=]",
        "--metrics-listen",
        "PORT_MCP_METRICS_LISTEN",
    ] {
        assert!(help.contains(needle), "http --help lacks {needle}:\n{help}");
    }
}

#[tokio::test]
async fn rest_and_mcp_calls_are_counted_alike() {
    let port = FakePort::start().await;
    let tools = PortTools::new(
        PortClient::new(&port.settings(static_token()))
            .unwrap()
            .with_telemetry(metered()),
    );
    let mcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rest = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, rest_addr) = (mcp.local_addr().unwrap(), rest.local_addr().unwrap());
    let http = http_args();
    tokio::spawn(async move {
        port_integrations_mcp::transport::http::serve_listeners(
            mcp,
            Some(rest),
            tools,
            &http,
            std::future::pending(),
        )
        .await
    });
    let client = http_client(addr).await;
    let r = call(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r));
    let r = reqwest::get(format!("http://{rest_addr}/v1/integration/github-ocean"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::get(format!("http://{rest_addr}/v1/integration/no-such-one"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let text = scrape(addr).await;
    assert_eq!(
        samples(&text, "mcp_server_operation_duration_seconds_count"),
        [
            r#"mcp_server_operation_duration_seconds_count{mcp_method_name="initialize",gen_ai_tool_name="",error_type=""} 1"#,
            r#"mcp_server_operation_duration_seconds_count{mcp_method_name="tools/call",gen_ai_tool_name="get-integration",error_type=""} 2"#,
            r#"mcp_server_operation_duration_seconds_count{mcp_method_name="tools/call",gen_ai_tool_name="get-integration",error_type="tool_error"} 1"#,
        ]
    );
    // The REST listener has no /metrics of its own.
    let r = reqwest::get(format!("http://{rest_addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn full_jq_slots_are_counted_as_busy() {
    use port_integrations_mcp::config::{ToolSelection, Toolset};
    let port = FakePort::start().await;
    let telemetry = metered();
    let server = PortTools::with_selection(
        PortClient::new(&port.settings(static_token()))
            .unwrap()
            .with_telemetry(telemetry.clone()),
        &ToolSelection {
            toolsets: vec![Toolset::Integrations, Toolset::Mapping],
            ..ToolSelection::default()
        },
    )
    .unwrap()
    .with_mapping_limits(port_integrations_mcp::mapping::MappingLimits {
        check_timeout_secs: 1,
        preview_timeout_secs: 2,
        max_concurrent: 1,
        ..mapping_limits()
    });
    let slots = server.jq_slots().clone();
    let client = connect_tools(server, (), rmcp::service::ClientLifecycleMode::Initialize).await;
    let config = json!({"resources": [{"kind": "repository", "selector": {"query": "true"},
        "port": {"entity": {"mappings": {"identifier": ".name", "blueprint": "\"service\""}}}}]});

    let held = slots.checks.clone().acquire_owned().await.unwrap();
    let r = call(
        &client,
        "update-integration-s-config",
        json!({"identifier": "github-ocean", "body": {"config": config}}),
    )
    .await;
    assert!(is_error(&r) && text(&r).contains("PORT_JQ_MAX_CONCURRENT"));
    drop(held);
    let held = slots.previews.clone().acquire_owned().await.unwrap();
    let r = call(
        &client,
        "preview-integration-mapping",
        json!({"config": config, "items": [{"name": "api"}]}),
    )
    .await;
    assert!(is_error(&r) && text(&r).contains("busy with other previews"));
    drop(held);

    let text = telemetry.metrics().unwrap().encode();
    assert_eq!(
        samples(&text, "busy_refusals_total"),
        [r#"busy_refusals_total{reason="jq_slots"} 2"#]
    );
    // The check that did not run is no check.
    assert_eq!(
        samples(&text, "mapping_checks_total"),
        ["mapping_checks_total 0"]
    );
    assert!(port.api_requests().is_empty());
}

#[tokio::test]
async fn sessions_over_the_cap_are_counted_as_busy() {
    let port = FakePort::start().await;
    let http = HttpSettings {
        max_sessions: 1,
        ..http_args()
    };
    let (addr, _) = serve_metered(&port.settings(static_token()), http).await;
    let first = http_client(addr).await;
    let transport = StreamableHttpClientTransport::from_uri(format!("http://{addr}/mcp"));
    let second = ().serve(transport).await;
    assert!(second.is_err(), "a second session over the cap of one");
    let text = scrape(addr).await;
    assert_eq!(
        samples(&text, "busy_refusals_total"),
        [r#"busy_refusals_total{reason="sessions"} 1"#]
    );
    first.cancel().await.unwrap();
}
