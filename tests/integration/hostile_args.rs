//! Hostile arguments and headers: an identifier reaches Port exactly as named or is refused
//! (control characters that URL parsing would drop), the read-only header cannot be bypassed
//! with repeated or folded values, the schemas state what the server enforces, and
//! property-based arguments through MCP (in-memory pipe and HTTP, both paths) and REST never
//! reach Port unless valid, and then exactly as given.

use std::net::SocketAddr;

use port_integrations_mcp::{
    config::{HttpSettings, ToolSelection, Toolset},
    port::PortClient,
    tools::PortTools,
    transport::{http::app, rest},
};
use proptest::{prelude::*, test_runner::TestRunner};
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{common::*, http::http_args};

/// Identifiers that URL parsing would alter (tab, CR and LF are dropped) or that no
/// integration has (other control characters, C0 and C1).
const CONTROL_IDENTIFIERS: [&str; 7] = [
    "gh-\t1",
    "k8s-\nprod",
    "a\rb",
    "nul\u{0}",
    "del\u{7f}",
    "next-line\u{85}",
    "\u{1b}[31m",
];

async fn serve_mcp(port: &FakePort, settings: HttpSettings) -> SocketAddr {
    let client = PortClient::new(&port.settings(static_token())).unwrap();
    let router = app(PortTools::new(client), &settings, CancellationToken::new());
    listen(router).await
}

async fn serve_rest(port: &FakePort) -> SocketAddr {
    let client = PortClient::new(&port.settings(static_token())).unwrap();
    let tools = PortTools::with_selection(client, &ToolSelection::default()).unwrap();
    listen(rest::router(tools, &http_args(true))).await
}

async fn http_client(addr: SocketAddr) -> Client {
    use rmcp::ServiceExt;
    ().serve(StreamableHttpClientTransport::from_uri(format!(
        "http://{addr}/mcp"
    )))
    .await
    .unwrap()
}

/// The arguments of each identifier-taking tool, with `identifier` set.
fn calls_naming(identifier: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("get-integration", json!({"identifier": identifier})),
        (
            "update-integration",
            json!({"identifier": identifier, "body": {}}),
        ),
        ("delete-integration", json!({"identifier": identifier})),
        (
            "update-integration-s-config",
            json!({"identifier": identifier, "body": {"config": null}}),
        ),
        (
            "get-integration-s-event-logs",
            json!({"identifier": identifier}),
        ),
    ]
}

/// Checks a refusal of `identifier` as the model sees it.
fn assert_identifier_refused(result: &rmcp::model::CallToolResult, what: &str) {
    assert!(is_error(result), "{what}: {result:?}");
    let s = result.structured_content.as_ref().unwrap();
    assert_eq!(s["error"], "invalid_argument", "{what}: {s}");
    assert_eq!(s["argument"], "identifier", "{what}: {s}");
    assert!(
        s["message"].as_str().unwrap().contains("control character"),
        "{what}: {s}"
    );
    assert!(
        text(result).ends_with("Nothing was sent to Port."),
        "{what}"
    );
}

/// A normal read still works and reaches Port exactly once, as named.
async fn still_serves(port: &FakePort, client: &Client) {
    port.port.clear_requests();
    let r = call(
        client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    let sent = port.single_request();
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("GET", "/v1/integration/github-ocean")
    );
    port.port.clear_requests();
}

#[tokio::test]
async fn control_characters_in_identifiers_are_refused_over_mcp() {
    let port = FakePort::start().await;
    let pipe = connect(&port.settings(static_token())).await;
    let stateless = http_client(serve_mcp(&port, http_args(true)).await).await;
    let session = http_client(serve_mcp(&port, http_args(false)).await).await;
    for (transport, client) in [
        ("pipe", &pipe),
        ("stateless", &stateless),
        ("session", &session),
    ] {
        for identifier in CONTROL_IDENTIFIERS {
            for (tool, arguments) in calls_naming(identifier) {
                let r = call(client, tool, arguments).await;
                assert_identifier_refused(&r, &format!("{transport} {tool} {identifier:?}"));
            }
        }
        assert!(
            port.port.requests().is_empty(),
            "{transport}: Port was called"
        );
        still_serves(&port, client).await;
    }
}

#[tokio::test]
async fn control_characters_in_identifiers_are_refused_over_rest() {
    let port = FakePort::start().await;
    let addr = serve_rest(&port).await;
    let http = reqwest::Client::new();
    for (method, path) in [
        ("DELETE", "/v1/integration/gh-%091"),
        ("DELETE", "/v1/integration/k8s-%0Aprod"),
        ("GET", "/v1/integration/a%0Db"),
        ("PATCH", "/v1/integration/gh-%091"),
        ("PATCH", "/v1/integration/gh-%091/config"),
        ("GET", "/v1/integration/gh-%091/logs"),
        ("GET", "/v1/integration/nul%00"),
    ] {
        let mut request = http.request(method.parse().unwrap(), format!("http://{addr}{path}"));
        if method == "PATCH" {
            request = request
                .header("content-type", "application/json")
                .body(r#"{"config": null}"#);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_argument", "{method} {path}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("`identifier`") && message.contains("control character"),
            "{method} {path}: {message}"
        );
    }
    assert!(port.port.requests().is_empty(), "Port was called");
    let ok = http
        .get(format!("http://{addr}/v1/integration/github-ocean"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(port.single_request().path, "/v1/integration/github-ocean");
}

/// The sync toolset resolves ids and follows runs, but an identifier still reaches Port exactly
/// or not at all: over MCP (every sync tool) and over REST (every sync route).
#[tokio::test]
async fn control_characters_in_identifiers_are_refused_by_the_sync_tools() {
    let port = FakePort::start().await;
    let every_toolset = ToolSelection {
        toolsets: vec![Toolset::Integrations, Toolset::Mapping, Toolset::Sync],
        ..Default::default()
    };
    let tools = || port.tools(&every_toolset);
    let client = connect_tools(tools(), (), rmcp::service::ClientLifecycleMode::Initialize).await;
    for identifier in CONTROL_IDENTIFIERS {
        for tool in [
            "resync-integration",
            "get-integration-sync-status",
            "get-integration-sync-history",
            "restore-integration-mapping",
            "get-integration-kind-examples",
        ] {
            let r = call(&client, tool, json!({"identifier": identifier})).await;
            assert_identifier_refused(&r, &format!("{tool} {identifier:?}"));
        }
    }
    assert!(port.port.requests().is_empty(), "Port was called");
    still_serves(&port, &client).await;

    let addr = listen(rest::router(tools(), &http_args(true))).await;
    let http = reqwest::Client::new();
    for (method, path) in [
        ("POST", "/v1/integration/gh-%091/resync"),
        ("POST", "/v1/integration/k8s-%0Aprod/restore"),
        ("GET", "/v1/integration/a%0Db/sync-status"),
        ("GET", "/v1/integration/nul%00/sync-history"),
        ("GET", "/v1/integration/del%7F/kinds"),
    ] {
        let response = http
            .request(method.parse().unwrap(), format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_argument", "{method} {path}: {body}");
        assert_eq!(body["argument"], "identifier", "{method} {path}: {body}");
    }
    assert!(port.port.requests().is_empty(), "Port was called over REST");
}

/// POSTs one JSON-RPC message to a stateless server with the given headers (repeated names are
/// sent as repeated header lines), and returns the JSON answer.
async fn raw_post(addr: SocketAddr, headers: &[(&str, &str)], message: Value) -> Value {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.body(message.to_string()).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

async fn raw_call(
    addr: SocketAddr,
    headers: &[(&str, &str)],
    name: &str,
    arguments: Value,
) -> Value {
    let message = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": name, "arguments": arguments}});
    raw_post(addr, headers, message).await
}

async fn raw_list(addr: SocketAddr, headers: &[(&str, &str)]) -> Vec<String> {
    let message = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let answer = raw_post(addr, headers, message).await;
    answer["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

const H: &str = "x-read-only-mode";

/// Header sets that must each put the request in read-only mode: any occurrence, any
/// comma-separated element, and (failing closed) values that are neither on nor off.
fn read_only_header_sets() -> Vec<Vec<(&'static str, &'static str)>> {
    vec![
        vec![(H, "1")],
        vec![(H, "1,1")],
        vec![(H, "0"), (H, "1")],
        vec![(H, "1"), (H, "0")],
        vec![(H, "0, true")],
        vec![(H, "false,yes")],
        vec![(H, " ON ")],
        vec![(H, "maybe")],
        vec![(H, "0"), (H, "2")],
    ]
}

#[tokio::test]
async fn repeated_or_folded_read_only_headers_refuse_writes() {
    let port = FakePort::start().await;
    let addr = serve_mcp(&port, http_args(true)).await;
    let rest_addr = serve_rest(&port).await;
    let http = reqwest::Client::new();
    for headers in read_only_header_sets() {
        let tools = raw_list(addr, &headers).await;
        assert_eq!(
            tools,
            [
                "get-all-integrations",
                "get-all-integrations-meta-data",
                "get-integration",
                "get-integration-s-event-logs"
            ],
            "{headers:?}"
        );
        for (tool, arguments) in [
            ("update-integration", json!({"identifier": "github-ocean"})),
            ("delete-integration", json!({"identifier": "github-ocean"})),
            (
                "update-integration-s-config",
                json!({"identifier": "github-ocean", "body": {"config": null}}),
            ),
        ] {
            let answer = raw_call(addr, &headers, tool, arguments).await;
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("read-only mode"),
                "{tool} {headers:?}: {answer}"
            );
        }
        for (method, path) in [
            ("PATCH", "/v1/integration/github-ocean"),
            ("DELETE", "/v1/integration/github-ocean"),
            ("PATCH", "/v1/integration/github-ocean/config"),
        ] {
            let mut request =
                http.request(method.parse().unwrap(), format!("http://{rest_addr}{path}"));
            for (k, v) in &headers {
                request = request.header(*k, *v);
            }
            if method == "PATCH" {
                request = request
                    .header("content-type", "application/json")
                    .body(r#"{"config": null}"#);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status().as_u16(),
                403,
                "{method} {path} {headers:?}"
            );
        }
        assert!(
            port.port.requests().is_empty(),
            "{headers:?}: Port was called"
        );
    }
    // Values that are clearly off leave writes available: the check is not a blanket refusal.
    for headers in [
        vec![(H, "0")],
        vec![(H, "0"), (H, "false")],
        vec![(H, "off, no")],
    ] {
        assert_eq!(raw_list(addr, &headers).await.len(), 7, "{headers:?}");
        let answer = raw_call(
            addr,
            &headers,
            "update-integration",
            json!({"identifier": "github-ocean", "body": {}}),
        )
        .await;
        assert_eq!(
            answer["result"]["isError"],
            json!(false),
            "{headers:?}: {answer}"
        );
        let sent = port.single_request();
        assert_eq!(
            (sent.method.as_str(), sent.path.as_str(), sent.body.as_str()),
            ("PATCH", "/v1/integration/github-ocean", "{}")
        );
        port.port.clear_requests();
    }
}

#[tokio::test]
async fn the_config_body_requires_config_in_every_schema() {
    let port = FakePort::start().await;
    let client = connect(&port.settings(static_token())).await;
    let tools = client.list_all_tools().await.unwrap();
    let tool = tools
        .iter()
        .find(|t| t.name == "update-integration-s-config")
        .unwrap();
    let schema = Value::Object(tool.input_schema.as_ref().clone());
    assert_eq!(schema["required"], json!(["identifier", "body"]));
    assert_eq!(schema["properties"]["body"]["required"], json!(["config"]));
    let openapi = rest::openapi();
    for path in [
        "/v1/integration/{identifier}/config",
        "/v1/v1/integration/{identifier}/config",
    ] {
        let body = &openapi["paths"][path]["patch"]["requestBody"];
        assert_eq!(body["required"], json!(true), "{path}");
        assert_eq!(
            body["content"]["application/json"]["schema"]["required"],
            json!(["config"]),
            "{path}"
        );
    }
    // And the server enforces what the schema says.
    let r = call(
        &client,
        "update-integration-s-config",
        json!({"identifier": "github-ocean", "body": {}}),
    )
    .await;
    assert!(is_error(&r));
    assert_eq!(r.structured_content.unwrap()["argument"], "body.config");
    assert!(port.port.requests().is_empty());
}

/// Identifiers made of ordinary text mixed with the characters that matter to URLs and to the
/// check: controls, separators, dots, percent signs, spaces, and any other Unicode.
fn identifiers() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::char::range('a', 'z'),
            1 => any::<char>(),
            1 => prop::sample::select(vec![
                '\t', '\n', '\r', '\u{0}', '\u{7f}', '\u{85}', '/', '%', '?', '#', '.', ' ', '\\',
                '\u{2028}', '\u{feff}', 'é', '😀'
            ]),
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Whether the server must refuse this identifier.
fn must_refuse(identifier: &str) -> bool {
    identifier.trim().is_empty()
        || identifier == "."
        || identifier == ".."
        || identifier.chars().any(char::is_control)
}

/// Decodes a percent-encoded path segment.
fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

#[test]
fn any_identifier_reaches_port_exactly_or_not_at_all() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (port, pipe, stateless, session, rest_addr) = runtime.block_on(async {
        let port = FakePort::start().await;
        let pipe = connect(&port.settings(static_token())).await;
        let stateless = http_client(serve_mcp(&port, http_args(true)).await).await;
        let session = http_client(serve_mcp(&port, http_args(false)).await).await;
        let rest_addr = serve_rest(&port).await;
        (port, pipe, stateless, session, rest_addr)
    });
    let http = reqwest::Client::new();
    let mut runner = TestRunner::new(proptest::test_runner::Config {
        cases: 96,
        failure_persistence: None,
        ..Default::default()
    });
    runner
        .run(
            &(identifiers(), 0..5usize, 0..4usize),
            |(id, which, transport)| {
                runtime.block_on(async {
                    port.port.clear_requests();
                    let (tool, arguments) = calls_naming(&id).swap_remove(which);
                    let (method, suffix) = match tool {
                        "get-integration" => ("GET", ""),
                        "update-integration" => ("PATCH", ""),
                        "delete-integration" => ("DELETE", ""),
                        "update-integration-s-config" => ("PATCH", "/config"),
                        _ => ("GET", "/logs"),
                    };
                    // `.` and `..` cannot travel as a path segment: URL parsers resolve them even
                    // percent-encoded (WHATWG), so no REST client can send them.
                    prop_assume!(transport != 3 || !matches!(id.as_str(), "." | ".."));
                    let refused = if transport == 3 {
                        // REST: the identifier travels percent-encoded in the path.
                        let encoded = percent_encoding::utf8_percent_encode(
                            &id,
                            percent_encoding::NON_ALPHANUMERIC,
                        );
                        let mut request = http.request(
                            method.parse().unwrap(),
                            format!("http://{rest_addr}/v1/integration/{encoded}{suffix}"),
                        );
                        if method == "PATCH" {
                            request = request
                                .header("content-type", "application/json")
                                .body(arguments["body"].to_string());
                        }
                        let status = request.send().await.unwrap().status().as_u16();
                        // An empty identifier matches no route (404 from the router), as it should.
                        status == 400 || (id.is_empty() && status == 404)
                    } else {
                        let client = [&pipe, &stateless, &session][transport];
                        let r = call(client, tool, arguments).await;
                        is_error(&r)
                            && r.structured_content.as_ref().unwrap()["error"] == "invalid_argument"
                    };
                    let sent = port.api_requests();
                    prop_assert_eq!(
                        refused,
                        must_refuse(&id),
                        "identifier {:?} via {}",
                        id,
                        transport
                    );
                    if refused {
                        prop_assert!(sent.is_empty(), "refused, yet Port got {:?}", sent);
                    } else {
                        prop_assert_eq!(sent.len(), 1, "{:?}", sent);
                        prop_assert_eq!(&sent[0].method, method);
                        let rest_of_path = sent[0]
                            .path
                            .strip_prefix("/v1/integration/")
                            .unwrap_or_default();
                        let segment = rest_of_path.strip_suffix(suffix).unwrap_or_default();
                        prop_assert!(!segment.contains('/'), "{}", sent[0].path);
                        prop_assert_eq!(decode(segment), id.clone(), "path {}", sent[0].path);
                    }
                    Ok(())
                })
            },
        )
        .unwrap();
    // After every case, the server still serves.
    runtime.block_on(async {
        for client in [&pipe, &stateless, &session] {
            still_serves(&port, client).await;
        }
    });
}

/// Arbitrary JSON values, a few levels deep.
fn json_values() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-zA-Z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Argument objects that mix each tool's real argument names with arbitrary values and names.
fn argument_objects() -> impl Strategy<Value = serde_json::Map<String, Value>> {
    let names = prop::sample::select(vec![
        "identifier",
        "body",
        "byField",
        "isPolling",
        "oceanCoreVersion",
        "limit",
        "timestamp",
        "log_id",
        "direction",
        "event_id",
        "levels",
        "etl_phases",
        "kinds",
        "actionsProcessingEnabled",
        "colour",
    ]);
    proptest::collection::btree_map(names, json_values(), 0..5).prop_map(|m| {
        m.into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<serde_json::Map<String, Value>>()
    })
}

#[test]
fn arbitrary_arguments_never_crash_and_refusals_send_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (port, pipe, stateless) = runtime.block_on(async {
        let port = FakePort::start().await;
        let pipe = connect(&port.settings(static_token())).await;
        let stateless = http_client(serve_mcp(&port, http_args(true)).await).await;
        (port, pipe, stateless)
    });
    let tools = [
        "get-all-integrations",
        "get-all-integrations-meta-data",
        "get-integration",
        "update-integration",
        "update-integration-s-config",
        "get-integration-s-event-logs",
    ];
    let mut runner = TestRunner::new(proptest::test_runner::Config {
        cases: 128,
        failure_persistence: None,
        ..Default::default()
    });
    runner
        .run(
            &(
                prop::sample::select(tools.to_vec()),
                argument_objects(),
                any::<bool>(),
            ),
            |(tool, arguments, over_http)| {
                runtime.block_on(async {
                    port.port.clear_requests();
                    let client = if over_http { &stateless } else { &pipe };
                    let r = call(client, tool, Value::Object(arguments.clone())).await;
                    let sent = port.api_requests();
                    let structured = r.structured_content.clone().unwrap_or(Value::Null);
                    if structured["error"] == "invalid_argument" {
                        prop_assert!(is_error(&r));
                        prop_assert!(sent.is_empty(), "refused, yet Port got {:?}", sent);
                        let named = structured["argument"].as_str().unwrap_or_default();
                        prop_assert!(!named.is_empty(), "{}", structured);
                    } else if structured["error"] == "invalid_mapping" {
                        prop_assert!(is_error(&r));
                        prop_assert!(sent.is_empty(), "refused, yet Port got {:?}", sent);
                    } else {
                        // Accepted: exactly one request, for that tool's route.
                        prop_assert_eq!(sent.len(), 1, "{} {:?}: {:?}", tool, arguments, sent);
                        if let Some(Value::String(id)) = arguments.get("identifier") {
                            let segment = sent[0].path.split('/').nth(3).unwrap_or_default();
                            prop_assert_eq!(decode(segment), id.clone());
                        }
                    }
                    Ok(())
                })
            },
        )
        .unwrap();
    runtime.block_on(async {
        still_serves(&port, &pipe).await;
        still_serves(&port, &stateless).await;
    });
}

/// Settings are outside input too: numbers that would overflow a deadline or a semaphore (and
/// so panic at the first call) stop the start with the setting named, before anything serves.
#[test]
fn absurd_numeric_settings_stop_the_start() {
    for (variable, value, flag) in [
        (
            "PORT_TIMEOUT_SECS",
            "18446744073709551615",
            "--timeout-secs",
        ),
        (
            "PORT_CALL_BUDGET_SECS",
            "18446744073709551615",
            "--budget-secs",
        ),
        (
            "PORT_MAX_IN_FLIGHT",
            "18446744073709551615",
            "--max-in-flight",
        ),
        ("PORT_MAX_ATTEMPTS", "4294967295", "--max-attempts"),
        (
            "PORT_MAX_RESYNC_WAIT_SECS",
            "18446744073709551615",
            "--max-resync-wait-secs",
        ),
        (
            "PORT_MCP_SHUTDOWN_GRACE_SECS",
            "18446744073709551615",
            "--shutdown-grace-secs",
        ),
        ("PORT_MCP_MAX_TASKS", "18446744073709551615", "--max-tasks"),
        ("PORT_MCP_MAX_TASKS", "0", "--max-tasks"),
        (
            "PORT_MAX_RESPONSE_BYTES",
            "18446744073709551615",
            "--max-response-bytes",
        ),
        (
            "PORT_MCP_MAX_REQUEST_BYTES",
            "18446744073709551615",
            "--max-request-bytes",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_port-integrations-mcp"))
            .args(["http", "--sandbox", "--listen", "127.0.0.1:0"])
            .env(variable, value)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{variable}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains("is not in"),
            "{variable}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}
