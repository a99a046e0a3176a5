//! OpenTelemetry traces, end to end: servers built in-process with their traces pointed at an
//! in-process OTLP/HTTP receiver (`POST /v1/traces`, decoded with the `opentelemetry-proto`
//! types), driven by rmcp's client over HTTP (the lean path and rmcp's) and over a pipe, and
//! checked span by span: names, kinds, attributes, parents, status, and the `traceparent` the
//! fake Port received. A collector that refuses connections, and one that never answers, cost
//! the calls nothing: every answer arrives, and the queue stays bounded.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{body::Bytes, extract::State, routing::post};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::any_value::Value as AnyValue,
    trace::v1::{Span, span::SpanKind, status::StatusCode},
};
use port_integrations_mcp::{
    config::{ConfigError, TraceArgs},
    port::PortClient,
    sandbox::ScriptedResponse,
    telemetry::{Parts, Telemetry, traces::Traces},
    tools::PortTools,
    transport::{http::app_with, lean::LeanPath},
};
use prost::Message;
use rmcp::{
    model::{CallToolRequestParams, CallToolResult, MetaObject, RequestMetaObject},
    service::{ClientLifecycleMode, ClientServiceExt},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::*;

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT: &str = "b7ad6b7169203331";
const HEADER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const HEADER_PARENT: &str = "00f067aa0ba902b7";

fn traceparent(trace: &str, span: &str) -> String {
    format!("00-{trace}-{span}-01")
}

/// An OTLP/HTTP receiver: every span it was sent, with its `service.name`.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    exports: Arc<Mutex<u32>>,
    /// The headers of each export.
    headers: Arc<Mutex<Vec<axum::http::HeaderMap>>>,
    /// Answers after this long (a slow collector).
    delay: Option<Duration>,
}

async fn receive(
    State(receiver): State<Receiver>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Vec<u8> {
    *receiver.exports.lock().unwrap() += 1;
    receiver.headers.lock().unwrap().push(headers);
    if let Some(delay) = receiver.delay {
        tokio::time::sleep(delay).await;
    }
    let request = ExportTraceServiceRequest::decode(body).unwrap();
    let mut spans = receiver.spans.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.as_ref()?.value.clone())
            .map(|v| match v {
                AnyValue::StringValue(s) => s,
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                spans.push((service.clone(), span));
            }
        }
    }
    Vec::new()
}

impl Receiver {
    async fn start(delay: Option<Duration>) -> (Self, String) {
        let receiver = Receiver {
            delay,
            ..Default::default()
        };
        let router = axum::Router::new()
            .route("/v1/traces", post(receive))
            .with_state(receiver.clone());
        let addr = listen(router).await;
        (receiver, format!("http://{addr}"))
    }

    /// The spans received, but for the `initialize` of each client's session (its own span,
    /// checked in `other_requests_get_spans_by_method`).
    fn spans(&self) -> Vec<Span> {
        self.all_spans()
            .into_iter()
            .filter(|s| s.name != "initialize")
            .collect()
    }

    fn all_spans(&self) -> Vec<Span> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.clone())
            .collect()
    }

    fn named(&self, name: &str) -> Span {
        let spans = self.spans();
        let found: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
        assert_eq!(found.len(), 1, "one `{name}` span expected: {spans:#?}");
        found[0].clone()
    }
}

/// Trace settings as the environment would give them, pointed at `endpoint`.
fn trace_args(endpoint: &str) -> TraceArgs {
    TraceArgs {
        endpoint: Some(endpoint.into()),
        // Exports happen when the test flushes, not on a timer.
        bsp_schedule_delay: Some("600000".into()),
        ..Default::default()
    }
}

fn traced(args: &TraceArgs) -> Telemetry {
    let settings = args.settings().unwrap().expect("tracing is configured");
    Telemetry::new(Parts {
        traces: Some(Traces::new(&settings).unwrap()),
        ..Default::default()
    })
}

fn tools_with(port: &FakePort, telemetry: Telemetry) -> PortTools {
    PortTools::new(
        PortClient::new(&port.settings(static_token()))
            .unwrap()
            .with_telemetry(telemetry),
    )
    .with_mapping_limits(mapping_limits())
}

async fn serve_http(tools: PortTools) -> SocketAddr {
    serve_http_lean(tools).await.0
}

/// The HTTP app, with its lean path (to tell which path answered).
async fn serve_http_lean(tools: PortTools) -> (SocketAddr, Arc<LeanPath>) {
    let settings = crate::http::http_args(false);
    let (router, lean) = app_with(tools, &settings, CancellationToken::new(), true);
    (listen(router).await, lean.unwrap())
}

async fn flush(telemetry: &Telemetry) {
    assert!(
        telemetry
            .traces()
            .unwrap()
            .flush(Duration::from_secs(20))
            .await,
        "the spans were exported"
    );
}

fn attributes(span: &Span) -> HashMap<String, Value> {
    span.attributes
        .iter()
        .map(|a| {
            let value = match a.value.as_ref().and_then(|v| v.value.clone()) {
                Some(AnyValue::StringValue(s)) => json!(s),
                Some(AnyValue::IntValue(i)) => json!(i),
                Some(AnyValue::BoolValue(b)) => json!(b),
                other => json!(format!("{other:?}")),
            };
            (a.key.clone(), value)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Calls a tool with these `_meta` entries.
async fn call_with_meta<S: rmcp::Service<rmcp::RoleClient>>(
    client: &rmcp::service::RunningService<rmcp::RoleClient, S>,
    name: &str,
    arguments: Value,
    meta: Value,
) -> CallToolResult {
    let meta = RequestMetaObject(MetaObject(meta.as_object().unwrap().clone()));
    let mut params = CallToolRequestParams::new(name.to_string()).with_arguments(args(arguments));
    params.meta = Some(meta);
    client.call_tool(params).await.unwrap()
}

fn http_client_config(
    addr: SocketAddr,
    header: Option<String>,
) -> StreamableHttpClientTransportConfig {
    let mut config = StreamableHttpClientTransportConfig::with_uri(format!("http://{addr}/mcp"));
    if let Some(value) = header {
        config.custom_headers.insert(
            reqwest::header::HeaderName::from_static("traceparent"),
            reqwest::header::HeaderValue::from_str(&value).unwrap(),
        );
    }
    config
}

/// The call span and the Port span of one `get-integration`, checked in full; `meta` decides
/// the path on HTTP (an unknown `_meta` key sends the call to rmcp instead of the lean path).
async fn one_http_call(extra_meta: Option<(&str, Value)>) {
    let port = FakePort::start().await;
    let (receiver, endpoint) = Receiver::start(None).await;
    let telemetry = traced(&trace_args(&endpoint));
    let (addr, lean) = serve_http_lean(tools_with(&port, telemetry.clone())).await;
    let lean_expected = u64::from(extra_meta.is_none());
    let transport = StreamableHttpClientTransport::from_config(http_client_config(addr, None));
    let client = ().serve_with_lifecycle(transport, ClientLifecycleMode::Initialize).await.unwrap();
    let mut meta = json!({"traceparent": traceparent(TRACE, PARENT), "tracestate": "vendor=abc"});
    if let Some((key, value)) = extra_meta {
        meta[key] = value;
    }
    let r = call_with_meta(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
        meta,
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(
        r.structured_content.unwrap()["integration"]["title"],
        "GitHub"
    );
    assert_eq!(lean.served(), lean_expected, "the path taken");
    flush(&telemetry).await;

    let call = receiver.named("tools/call get-integration");
    assert_eq!(call.kind, SpanKind::Server as i32);
    assert_eq!(hex(&call.trace_id), TRACE);
    assert_eq!(hex(&call.parent_span_id), PARENT, "the parent is _meta's");
    assert_eq!(call.trace_state, "vendor=abc");
    let attrs = attributes(&call);
    assert_eq!(attrs["mcp.method.name"], "tools/call");
    assert_eq!(attrs["gen_ai.tool.name"], "get-integration");
    assert_eq!(attrs["gen_ai.operation.name"], "execute_tool");
    assert_eq!(attrs["network.transport"], "tcp");
    assert_eq!(attrs["mcp.protocol.version"], "2025-11-25");
    // rmcp's client numbers its requests: initialize was 0, this call is 1.
    assert_eq!(attrs["jsonrpc.request.id"], "1");
    assert!(
        attrs["mcp.session.id"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{attrs:?}"
    );
    assert!(!attrs.contains_key("error.type"), "{attrs:?}");
    assert_ne!(
        call.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );

    let request = receiver.named("GET /v1/integration/{identifier}");
    assert_eq!(request.kind, SpanKind::Client as i32);
    assert_eq!(request.trace_id, call.trace_id);
    assert_eq!(
        request.parent_span_id, call.span_id,
        "the Port span is the call's child"
    );
    let attrs = attributes(&request);
    assert_eq!(attrs["http.request.method"], "GET");
    assert_eq!(attrs["url.template"], "/v1/integration/{identifier}");
    assert_eq!(attrs["http.response.status_code"], 200);
    assert_eq!(attrs["server.address"], "127.0.0.1");
    assert!(
        attrs["port.trace_id"]
            .as_str()
            .is_some_and(|t| t.starts_with("sandbox-trace-")),
        "{attrs:?}"
    );
    assert!(!attrs.contains_key("http.request.resend_count"));
    assert_eq!(receiver.spans().len(), 2, "{:#?}", receiver.spans());

    // Port got the trace context of the request's span.
    let sent = port.single_request();
    assert_eq!(
        sent.header("traceparent"),
        Some(traceparent(TRACE, &hex(&request.span_id)).as_str())
    );
    assert_eq!(sent.header("tracestate"), Some("vendor=abc"));
}

#[tokio::test]
async fn a_lean_http_call_is_traced_from_its_meta_traceparent() {
    one_http_call(None).await;
}

#[tokio::test]
async fn an_http_call_through_rmcp_is_traced_the_same() {
    // A `_meta` key the lean path does not know sends the call through rmcp's handler.
    one_http_call(Some(("com.example/other", json!(1)))).await;
}

/// The trace ids of the call spans a traced HTTP server exported for one call with this
/// `_meta` and this header.
async fn parent_of_call(meta: Option<String>, header: Option<String>) -> (String, String) {
    let port = FakePort::start().await;
    let (receiver, endpoint) = Receiver::start(None).await;
    let telemetry = traced(&trace_args(&endpoint));
    let addr = serve_http(tools_with(&port, telemetry.clone())).await;
    let transport = StreamableHttpClientTransport::from_config(http_client_config(addr, header));
    let client = ().serve_with_lifecycle(transport, ClientLifecycleMode::Initialize).await.unwrap();
    let meta = match meta {
        Some(tp) => json!({"traceparent": tp}),
        None => json!({}),
    };
    let r = call_with_meta(&client, "get-all-integrations", json!({}), meta).await;
    assert!(!is_error(&r), "{r:?}");
    flush(&telemetry).await;
    let call = receiver.named("tools/call get-all-integrations");
    let sent = port.single_request();
    let request = receiver.named("GET /v1/integration");
    assert_eq!(
        sent.header("traceparent"),
        Some(traceparent(&hex(&call.trace_id), &hex(&request.span_id)).as_str())
    );
    (hex(&call.trace_id), hex(&call.parent_span_id))
}

#[tokio::test]
async fn the_http_traceparent_header_is_the_parent_without_meta() {
    let got = parent_of_call(None, Some(traceparent(HEADER_TRACE, HEADER_PARENT))).await;
    assert_eq!(got, (HEADER_TRACE.into(), HEADER_PARENT.into()));
}

#[tokio::test]
async fn meta_wins_over_the_header_and_an_invalid_meta_is_ignored() {
    let both = parent_of_call(
        Some(traceparent(TRACE, PARENT)),
        Some(traceparent(HEADER_TRACE, HEADER_PARENT)),
    )
    .await;
    assert_eq!(both, (TRACE.into(), PARENT.into()));
    // An all-zero trace id is invalid (W3C): the header counts.
    let invalid = parent_of_call(
        Some(traceparent("00000000000000000000000000000000", PARENT)),
        Some(traceparent(HEADER_TRACE, HEADER_PARENT)),
    )
    .await;
    assert_eq!(invalid, (HEADER_TRACE.into(), HEADER_PARENT.into()));
    // Overlong or garbage: a new trace, with no parent.
    let long = format!("{}-{}", traceparent(TRACE, PARENT), "f".repeat(200));
    let (trace, parent) = parent_of_call(Some(long), Some("garbage".into())).await;
    assert_ne!(trace, TRACE);
    assert_eq!(parent, "", "a root span");
}

#[tokio::test]
async fn a_tool_error_marks_both_spans() {
    let port = FakePort::start().await;
    port.port.script(
        ScriptedResponse::json(
            404,
            json!({"ok": false, "error": "not_found", "message": "no such integration"}),
        )
        .with_trace_id("port-trace-404")
        .on_path("/v1/integration/ghost"),
    );
    let (receiver, endpoint) = Receiver::start(None).await;
    let telemetry = traced(&trace_args(&endpoint));
    let client = connect_tools(
        tools_with(&port, telemetry.clone()),
        (),
        ClientLifecycleMode::Initialize,
    )
    .await;
    let r = call(&client, "get-integration", json!({"identifier": "ghost"})).await;
    assert!(is_error(&r), "{r:?}");
    assert!(text(&r).contains("404"), "{}", text(&r));
    flush(&telemetry).await;

    let call = receiver.named("tools/call get-integration");
    let attrs = attributes(&call);
    assert_eq!(attrs["error.type"], "tool_error");
    assert_eq!(attrs["network.transport"], "pipe");
    assert_eq!(attrs["jsonrpc.request.id"], "1");
    assert!(
        !attrs.contains_key("mcp.session.id"),
        "no session on a pipe"
    );
    let status = call.status.unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "tool_error");
    assert_eq!(
        call.parent_span_id,
        Vec::<u8>::new(),
        "no parent: a root span"
    );

    let request = receiver.named("GET /v1/integration/{identifier}");
    let attrs = attributes(&request);
    assert_eq!(attrs["http.response.status_code"], 404);
    assert_eq!(attrs["error.type"], "404");
    assert_eq!(attrs["port.trace_id"], "port-trace-404");
    assert_eq!(request.status.unwrap().code, StatusCode::Error as i32);
    assert_eq!(request.parent_span_id, call.span_id);
}

#[tokio::test]
async fn a_pipe_call_takes_its_parent_from_meta_and_unknown_tools_keep_the_name_out() {
    let port = FakePort::start().await;
    let (receiver, endpoint) = Receiver::start(None).await;
    let telemetry = traced(&trace_args(&endpoint));
    let client = connect_tools(
        tools_with(&port, telemetry.clone()),
        (),
        ClientLifecycleMode::Initialize,
    )
    .await;
    let r = call_with_meta(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
        json!({"traceparent": traceparent(TRACE, PARENT)}),
    )
    .await;
    assert!(!is_error(&r));
    let unknown = client
        .call_tool(CallToolRequestParams::new("no-such-tool-x".to_string()))
        .await;
    assert!(unknown.is_err(), "an unknown tool is a protocol error");
    flush(&telemetry).await;

    let call = receiver.named("tools/call get-integration");
    assert_eq!(
        (hex(&call.trace_id), hex(&call.parent_span_id)),
        (TRACE.into(), PARENT.into())
    );
    assert_eq!(attributes(&call)["network.transport"], "pipe");
    // The unknown tool's name comes from the client: it is an attribute, not the span name.
    let unknown = receiver.named("tools/call");
    let attrs = attributes(&unknown);
    assert_eq!(attrs["gen_ai.tool.name"], "no-such-tool-x");
    assert_eq!(attrs["error.type"], "-32602");
    assert_eq!(receiver.spans().len(), 3, "{:#?}", receiver.spans());
}

#[tokio::test]
async fn a_refused_mapping_gets_a_check_span_and_nothing_reaches_port() {
    let port = FakePort::start().await;
    let (receiver, endpoint) = Receiver::start(None).await;
    let telemetry = traced(&trace_args(&endpoint));
    let client = connect_tools(
        tools_with(&port, telemetry.clone()),
        (),
        ClientLifecycleMode::Initialize,
    )
    .await;
    let config = json!({"resources": [
        {"kind": "repository", "selector": {"query": "true"}, "port": {"entity": {"mappings": {
            "identifier": ".name", "blueprint": "\"service\"",
            "properties": {"url": ".html_url", "lang": ".language | ascii_downcasee"}
        }}}}
    ]});
    let r = call(
        &client,
        "update-integration-s-config",
        json!({"identifier": "github-ocean", "body": {"config": config}}),
    )
    .await;
    assert!(is_error(&r));
    assert!(port.port.requests().is_empty(), "Port received nothing");
    flush(&telemetry).await;

    let call = receiver.named("tools/call update-integration-s-config");
    assert_eq!(attributes(&call)["error.type"], "tool_error");
    let check = receiver.named("mapping check");
    assert_eq!(check.kind, SpanKind::Internal as i32);
    assert_eq!(check.parent_span_id, call.span_id);
    let attrs = attributes(&check);
    // identifier, blueprint, url, lang and the selector query.
    assert_eq!(attrs["mapping.expressions"], 5);
    assert_eq!(attrs["mapping.expressions.refused"], 1);
    assert_eq!(attrs["mapping.expressions.unchecked"], 0);
    assert_eq!(attrs["error.type"], "mapping_refused");
    assert_eq!(check.status.unwrap().code, StatusCode::Error as i32);
    assert_eq!(receiver.spans().len(), 2, "no Port span: nothing was sent");
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_traced_and_port_gets_no_traceparent() {
    assert!(TraceArgs::default().settings().unwrap().is_none());
    let disabled = TraceArgs {
        sdk_disabled: Some("TRUE".into()),
        ..trace_args("http://127.0.0.1:4318")
    };
    assert!(disabled.settings().unwrap().is_none());

    // A caller's trace context is not passed on by a server that does not trace.
    let port = FakePort::start().await;
    let addr = serve_http(tools_with(&port, Telemetry::default())).await;
    let transport = StreamableHttpClientTransport::from_config(http_client_config(
        addr,
        Some(traceparent(HEADER_TRACE, HEADER_PARENT)),
    ));
    let client = ().serve_with_lifecycle(transport, ClientLifecycleMode::Initialize).await.unwrap();
    let r = call_with_meta(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
        json!({"traceparent": traceparent(TRACE, PARENT)}),
    )
    .await;
    assert!(!is_error(&r));
    let sent = port.single_request();
    assert_eq!(sent.header("traceparent"), None);
    assert_eq!(sent.header("tracestate"), None);
}

#[tokio::test]
async fn settings_follow_the_otel_environment() {
    let settings = TraceArgs {
        headers: Some("x-api-key=secret%20one,x-tenant=a".parse().unwrap()),
        traces_headers: Some("x-api-key=secret-two".parse().unwrap()),
        resource_attributes: Some("deployment.environment=prod,service.name=from-resource".into()),
        sampler: Some("parentbased_traceidratio".into()),
        sampler_arg: Some("0.25".into()),
        timeout: Some("2500".into()),
        bsp_max_queue_size: Some("100".into()),
        compression: Some("none".into()),
        ..trace_args("http://collector:4318/base/")
    }
    .settings()
    .unwrap()
    .unwrap();
    assert_eq!(
        settings.endpoint.as_str(),
        "http://collector:4318/base/v1/traces"
    );
    let headers: Vec<(&str, &str)> = settings
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.expose()))
        .collect();
    assert_eq!(headers, [("x-tenant", "a"), ("x-api-key", "secret-two")]);
    assert_eq!(settings.service_name, "from-resource");
    assert_eq!(
        settings.resource,
        [("deployment.environment".to_string(), "prod".to_string())]
    );
    assert_eq!(
        settings.sampler,
        port_integrations_mcp::config::TraceSampler {
            parent_based: true,
            root: port_integrations_mcp::config::RootSampler::Ratio(0.25)
        }
    );
    assert_eq!(settings.timeout, Duration::from_millis(2500));
    assert_eq!(
        (settings.max_queue_size, settings.max_export_batch_size),
        (100, 100)
    );
    assert!(!format!("{settings:?}").contains("secret"), "{settings:?}");
    let named = TraceArgs {
        service_name: Some("mine".into()),
        traces_endpoint: Some("https://otlp.example/v1/spans".into()),
        ..trace_args("http://ignored:4318")
    }
    .settings()
    .unwrap()
    .unwrap();
    assert_eq!(named.service_name, "mine");
    assert_eq!(named.endpoint.as_str(), "https://otlp.example/v1/spans");
    assert_eq!(
        TraceArgs::default().endpoint.as_deref(),
        None,
        "nothing is on by default"
    );
}

#[tokio::test]
async fn bad_otel_settings_are_refused_at_start_naming_the_variable() {
    let refused = |args: TraceArgs| match args.settings() {
        Err(ConfigError::Tracing { var, reason }) => (var, reason),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let base = || trace_args("http://127.0.0.1:4318");
    let (var, reason) = refused(TraceArgs {
        protocol: Some("grpc".into()),
        ..base()
    });
    assert_eq!(var, "OTEL_EXPORTER_OTLP_PROTOCOL");
    assert!(
        reason.contains("only (`http/protobuf`; no gRPC)"),
        "{reason}"
    );
    for (args, expected) in [
        (
            TraceArgs {
                endpoint: Some("ftp://collector".into()),
                ..base()
            },
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (
            TraceArgs {
                endpoint: Some("http://user:pass@collector:4318".into()),
                ..base()
            },
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (
            TraceArgs {
                sampler: Some("xray".into()),
                ..base()
            },
            "OTEL_TRACES_SAMPLER",
        ),
        (
            TraceArgs {
                sampler: Some("traceidratio".into()),
                sampler_arg: Some("1.5".into()),
                ..base()
            },
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        (
            TraceArgs {
                timeout: Some("0".into()),
                ..base()
            },
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ),
        (
            TraceArgs {
                bsp_max_queue_size: Some("1000000".into()),
                ..base()
            },
            "OTEL_BSP_MAX_QUEUE_SIZE",
        ),
        (
            TraceArgs {
                bsp_max_queue_size: Some("10".into()),
                bsp_max_export_batch_size: Some("11".into()),
                ..base()
            },
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        ),
        (
            TraceArgs {
                compression: Some("gzip".into()),
                ..base()
            },
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ),
        (
            TraceArgs {
                compression: Some("none".into()),
                traces_compression: Some("zstd".into()),
                ..base()
            },
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        ),
        (
            TraceArgs {
                sdk_disabled: Some("maybe".into()),
                ..base()
            },
            "OTEL_SDK_DISABLED",
        ),
        (
            TraceArgs {
                resource_attributes: Some("novalue".into()),
                ..base()
            },
            "OTEL_RESOURCE_ATTRIBUTES",
        ),
    ] {
        assert_eq!(refused(args).0, expected);
    }
    // A header's value may be an API key: the refusal names the header, never the value.
    let (var, reason) = refused(TraceArgs {
        headers: Some("authorization=Bearer%0Atopsecret".parse().unwrap()),
        ..base()
    });
    assert_eq!(var, "OTEL_EXPORTER_OTLP_HEADERS");
    assert!(reason.contains("`authorization`"), "{reason}");
    assert!(!reason.contains("topsecret"), "{reason}");
}

/// A server whose collector is `endpoint`, with a small queue; returns it over a pipe.
async fn with_collector(port: &FakePort, endpoint: &str, queue: &str) -> (Telemetry, Client) {
    let settings = TraceArgs {
        bsp_max_queue_size: Some(queue.into()),
        bsp_max_export_batch_size: Some("2".into()),
        timeout: Some("3000".into()),
        ..trace_args(endpoint)
    }
    .settings()
    .unwrap()
    .unwrap();
    let traces = Traces::new(&settings).unwrap();
    // With metrics, whose scrape reports what the exporter did.
    let metrics =
        port_integrations_mcp::tools::catalog::metrics().with_span_counts(traces.span_counts());
    let telemetry = Telemetry::new(Parts {
        metrics: Some(metrics),
        traces: Some(traces),
        ..Default::default()
    });
    let client = connect_tools(
        tools_with(port, telemetry.clone()),
        (),
        ClientLifecycleMode::Initialize,
    )
    .await;
    (telemetry, client)
}

async fn answers_correctly(client: &Client, calls: usize) {
    for _ in 0..calls {
        let r = call(
            client,
            "get-integration",
            json!({"identifier": "github-ocean"}),
        )
        .await;
        assert!(!is_error(&r), "{r:?}");
        assert_eq!(
            r.structured_content.unwrap()["integration"]["title"],
            "GitHub"
        );
    }
}

#[tokio::test]
async fn a_collector_that_refuses_connections_loses_spans_not_answers() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let port = FakePort::start().await;
    let (telemetry, client) = with_collector(&port, &format!("http://{closed}"), "64").await;
    answers_correctly(&client, 3).await;
    let traces = telemetry.traces().unwrap();
    // Flushing ends (each export fails at once); the stats say what was lost.
    traces.flush(Duration::from_secs(30)).await;
    let stats = traces.stats();
    assert_eq!(
        stats.queued, 7,
        "the initialize, then two spans per call: {stats:?}"
    );
    assert_eq!((stats.exported, stats.failed, stats.dropped), (0, 7, 0));
    let scrape = telemetry.metrics().unwrap().encode();
    for line in [
        "trace_spans_exported_total 0",
        "trace_spans_dropped_total 0",
        "trace_spans_failed_total 7",
    ] {
        assert!(scrape.lines().any(|l| l == line), "{line} in {scrape}");
    }
    // The server goes on serving.
    answers_correctly(&client, 2).await;
    assert_eq!(port.api_requests().len(), 5);
    assert!(
        port.api_requests()
            .iter()
            .all(|r| r.header("traceparent").is_some_and(|t| t.len() == 55))
    );
}

#[tokio::test]
async fn exports_carry_their_headers_as_protobuf_and_follow_no_redirect() {
    let (receiver, endpoint) = Receiver::start(None).await;
    // A collector address that redirects to the real one: the API key must not follow.
    let target = format!("{endpoint}/v1/traces");
    let redirector = listen(axum::Router::new().route(
        "/v1/traces",
        post(move || {
            let target = target.clone();
            async move {
                (
                    axum::http::StatusCode::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, target)],
                )
            }
        }),
    ))
    .await;
    let port = FakePort::start().await;
    let server = |endpoint: String| TraceArgs {
        headers: Some("x-api-key=otlp-secret-1,x-tenant=team%20a".parse().unwrap()),
        ..trace_args(&endpoint)
    };

    let telemetry = traced(&server(format!("http://{redirector}")));
    let client = connect_tools(
        tools_with(&port, telemetry.clone()),
        (),
        ClientLifecycleMode::Initialize,
    )
    .await;
    answers_correctly(&client, 1).await;
    let traces = telemetry.traces().unwrap();
    traces.flush(Duration::from_secs(10)).await;
    let stats = traces.stats();
    assert_eq!((stats.exported, stats.failed), (0, 3), "{stats:?}");
    assert_eq!(
        *receiver.exports.lock().unwrap(),
        0,
        "the redirect was followed"
    );

    let telemetry = traced(&server(endpoint));
    let client = connect_tools(
        tools_with(&port, telemetry.clone()),
        (),
        ClientLifecycleMode::Initialize,
    )
    .await;
    answers_correctly(&client, 1).await;
    flush(&telemetry).await;
    let headers = receiver.headers.lock().unwrap().clone();
    assert_eq!(headers.len(), 1);
    let header = |name: &str| {
        headers[0]
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(header("x-api-key").as_deref(), Some("otlp-secret-1"));
    assert_eq!(header("x-tenant").as_deref(), Some("team a"));
    assert_eq!(
        header("content-type").as_deref(),
        Some("application/x-protobuf")
    );
    assert!(header("content-encoding").is_none());
    assert_eq!(receiver.all_spans().len(), 3);
}

#[tokio::test]
async fn a_collector_that_never_answers_fills_a_bounded_queue_not_the_calls() {
    // The receiver holds every export for a minute: the exporter's thread waits on the first
    // batch (up to its 3 s timeout, then retries), while calls keep ending spans.
    let (receiver, endpoint) = Receiver::start(Some(Duration::from_secs(60))).await;
    let port = FakePort::start().await;
    let (telemetry, client) = with_collector(&port, &endpoint, "4").await;
    answers_correctly(&client, 20).await;
    let stats = telemetry.traces().unwrap().stats();
    // 41 spans ended (the initialize, then two per call): at most 4 waiting and the batch of 2
    // being exported were kept.
    assert_eq!(stats.queued + stats.dropped, 41, "{stats:?}");
    assert!(stats.queued <= 6, "{stats:?}");
    assert!(stats.dropped >= 35, "{stats:?}");
    let dropped = format!("trace_spans_dropped_total {}", stats.dropped);
    let scrape = telemetry.metrics().unwrap().encode();
    assert!(
        scrape.lines().any(|l| l == dropped),
        "{dropped} in {scrape}"
    );
    assert_eq!(port.api_requests().len(), 20);
    // Shutting down gives up at its deadline rather than waiting for the collector.
    assert!(
        !telemetry
            .traces()
            .unwrap()
            .shutdown(Duration::from_millis(200))
            .await
    );
    assert!(*receiver.exports.lock().unwrap() <= 4, "no export storm");
}

#[tokio::test]
async fn the_stdio_lean_path_traces_a_2026_call_from_its_meta() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let port = FakePort::start().await;
    let (receiver, endpoint) = Receiver::start(None).await;
    let telemetry = traced(&trace_args(&endpoint));
    // The real stdio transport over a socket pair, rmcp's client on the other end.
    let (server_end, client_end) = std::os::unix::net::UnixStream::pair().unwrap();
    let served = Arc::new(AtomicU64::new(0));
    tokio::spawn(port_integrations_mcp::transport::stdio::serve_with(
        server_end.try_clone().unwrap(),
        server_end,
        tools_with(&port, telemetry.clone()),
        Some(served.clone()),
    ));
    client_end.set_nonblocking(true).unwrap();
    let client_end = tokio::net::UnixStream::from_std(client_end).unwrap();
    let client = ().serve_with_lifecycle(client_end, modern()).await.unwrap();
    let r = call_with_meta(
        &client,
        "get-integration",
        json!({"identifier": "github-ocean"}),
        json!({"traceparent": traceparent(TRACE, PARENT)}),
    )
    .await;
    assert!(!is_error(&r), "{r:?}");
    assert_eq!(served.load(Ordering::Relaxed), 1, "the lean path answered");
    flush(&telemetry).await;

    let call = receiver.named("tools/call get-integration");
    assert_eq!(
        (hex(&call.trace_id), hex(&call.parent_span_id)),
        (TRACE.into(), PARENT.into())
    );
    let attrs = attributes(&call);
    assert_eq!(attrs["network.transport"], "pipe");
    assert_eq!(attrs["mcp.protocol.version"], "2026-07-28");
    assert!(!attrs.contains_key("mcp.session.id"));
    let request = receiver.named("GET /v1/integration/{identifier}");
    assert_eq!(request.parent_span_id, call.span_id);
    assert_eq!(
        port.single_request().header("traceparent"),
        Some(traceparent(TRACE, &hex(&request.span_id)).as_str())
    );
}

#[tokio::test]
async fn a_retried_request_gets_a_span_per_attempt() {
    let port = FakePort::start().await;
    port.port.script(
        ScriptedResponse::json(503, json!({"ok": false, "error": "unavailable"}))
            .with_trace_id("port-trace-503")
            .on_path("/v1/integration/github-ocean"),
    );
    let (receiver, endpoint) = Receiver::start(None).await;
    let telemetry = traced(&trace_args(&endpoint));
    let client = connect_tools(
        tools_with(&port, telemetry.clone()),
        (),
        ClientLifecycleMode::Initialize,
    )
    .await;
    answers_correctly(&client, 1).await;
    flush(&telemetry).await;

    let call = receiver.named("tools/call get-integration");
    let mut attempts: Vec<Span> = receiver
        .spans()
        .into_iter()
        .filter(|s| s.name == "GET /v1/integration/{identifier}")
        .collect();
    attempts.sort_by_key(|s| s.start_time_unix_nano);
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    let (first, second) = (attributes(&attempts[0]), attributes(&attempts[1]));
    assert_eq!(first["http.response.status_code"], 503);
    assert_eq!(first["error.type"], "503");
    assert_eq!(first["port.trace_id"], "port-trace-503");
    assert!(!first.contains_key("http.request.resend_count"));
    assert_eq!(second["http.response.status_code"], 200);
    assert_eq!(second["http.request.resend_count"], 1);
    assert!(!second.contains_key("error.type"));
    assert!(attempts.iter().all(|s| s.parent_span_id == call.span_id));
    assert!(!attributes(&call).contains_key("error.type"));
    // Each attempt carried its own span as Port's parent.
    let sent: Vec<String> = port
        .api_requests()
        .iter()
        .map(|r| r.header("traceparent").unwrap().to_string())
        .collect();
    let expected: Vec<String> = attempts
        .iter()
        .map(|s| traceparent(&hex(&s.trace_id), &hex(&s.span_id)))
        .collect();
    assert_eq!(sent, expected);
}

#[tokio::test]
async fn a_rest_call_takes_its_parent_from_the_header() {
    let port = FakePort::start().await;
    let (receiver, endpoint) = Receiver::start(None).await;
    let telemetry = traced(&trace_args(&endpoint));
    let router = port_integrations_mcp::transport::rest::router(
        tools_with(&port, telemetry.clone()),
        &crate::http::http_args(true),
    );
    let addr = listen(router).await;
    let answer = reqwest::Client::new()
        .get(format!("http://{addr}/v1/integration/github-ocean"))
        .header("traceparent", traceparent(HEADER_TRACE, HEADER_PARENT))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["integration"]["title"], "GitHub");
    flush(&telemetry).await;

    let call = receiver.named("tools/call get-integration");
    assert_eq!(
        (hex(&call.trace_id), hex(&call.parent_span_id)),
        (HEADER_TRACE.into(), HEADER_PARENT.into())
    );
    let attrs = attributes(&call);
    assert_eq!(attrs["network.transport"], "tcp");
    assert!(
        !attrs.contains_key("jsonrpc.request.id"),
        "REST is not JSON-RPC"
    );
    let request = receiver.named("GET /v1/integration/{identifier}");
    assert_eq!(request.parent_span_id, call.span_id);
}

#[tokio::test]
async fn a_task_s_port_requests_stay_in_the_call_s_trace() {
    use port_integrations_mcp::config::Toolset;
    use rmcp::model::{
        CallToolResponse, ClientCapabilities, ClientConfig, GetTaskParams, Implementation,
        TaskPayload,
    };
    let port = FakePort::start().await;
    crate::resync::accept_resync(&port.port, "github-ocean");
    let (receiver, endpoint) = Receiver::start(None).await;
    let telemetry = traced(&trace_args(&endpoint));
    let tools = PortTools::with_selection(
        PortClient::new(&port.settings(static_token()))
            .unwrap()
            .with_telemetry(telemetry.clone()),
        &crate::resync::selection(&[Toolset::Sync]),
    )
    .unwrap();
    let tasks_client = ClientConfig::new(
        ClientCapabilities::builder().enable_tasks().build(),
        Implementation::new("tasks", "1.0"),
    );
    let client = connect_tools(tools, tasks_client, ClientLifecycleMode::Initialize).await;
    let mut params = CallToolRequestParams::new("resync-integration".to_string()).with_arguments(
        args(json!({"identifier": "github-ocean", "timeoutSeconds": 1})),
    );
    params.meta = Some(RequestMetaObject(MetaObject(
        json!({"traceparent": traceparent(TRACE, PARENT)})
            .as_object()
            .unwrap()
            .clone(),
    )));
    let CallToolResponse::Task(created) = client.call_tool_once(params).await.unwrap() else {
        panic!("expected a task");
    };
    let id = created.task.task_id;
    let mut settled = None;
    for _ in 0..300 {
        let info = client
            .peer()
            .get_task(GetTaskParams::new(id.clone()))
            .await
            .unwrap();
        if info.task.status().is_terminal() {
            settled = Some(info.task.payload);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        matches!(settled, Some(TaskPayload::Completed { .. })),
        "{settled:?}"
    );
    flush(&telemetry).await;

    let call = receiver.named("tools/call resync-integration");
    assert_eq!(hex(&call.trace_id), TRACE);
    assert!(
        !attributes(&call).contains_key("error.type"),
        "a task is no error"
    );
    let requests: Vec<Span> = receiver
        .spans()
        .into_iter()
        .filter(|s| s.kind == SpanKind::Client as i32)
        .collect();
    let sent = port.api_requests();
    assert!(!sent.is_empty());
    assert_eq!(
        requests.len(),
        sent.len(),
        "a span per request: {requests:#?}"
    );
    assert!(
        requests
            .iter()
            .all(|s| s.trace_id == call.trace_id && s.parent_span_id == call.span_id),
        "{requests:#?}"
    );
    assert!(
        sent.iter()
            .all(|r| r.header("traceparent").is_some_and(|t| t.contains(TRACE))),
        "{sent:#?}"
    );
}

#[tokio::test]
async fn other_requests_get_spans_by_method() {
    // Every MCP request gets a span, not only tools/call: here the session's initialize and a
    // tools/list, both under the HTTP header's trace, neither calling Port.
    let port = FakePort::start().await;
    let (receiver, endpoint) = Receiver::start(None).await;
    let telemetry = traced(&trace_args(&endpoint));
    let addr = serve_http(tools_with(&port, telemetry.clone())).await;
    let header = Some(traceparent(HEADER_TRACE, HEADER_PARENT));
    let transport = StreamableHttpClientTransport::from_config(http_client_config(addr, header));
    let client = ().serve_with_lifecycle(transport, ClientLifecycleMode::Initialize).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 7);
    flush(&telemetry).await;
    let all = receiver.all_spans();
    let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["initialize", "tools/list"], "{all:#?}");
    for (span, method) in all.iter().zip(["initialize", "tools/list"]) {
        assert_eq!(span.kind, SpanKind::Server as i32);
        assert_eq!(hex(&span.trace_id), HEADER_TRACE);
        assert_eq!(hex(&span.parent_span_id), HEADER_PARENT);
        let attrs = attributes(span);
        assert_eq!(attrs["mcp.method.name"], method);
        assert_eq!(attrs["network.transport"], "tcp");
        assert!(!attrs.contains_key("gen_ai.tool.name"), "{attrs:?}");
        assert!(!attrs.contains_key("error.type"), "{attrs:?}");
    }
    // tools/list runs in the session initialize opened.
    assert!(attributes(&all[1]).contains_key("mcp.session.id"));
    assert!(port.api_requests().is_empty());
    client.cancel().await.unwrap();
}
