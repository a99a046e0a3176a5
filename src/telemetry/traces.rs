//! OpenTelemetry traces: a SERVER span per MCP tool call, a CLIENT span per request to Port
//! and an INTERNAL span per mapping check, exported over OTLP/HTTP (protobuf) when an endpoint
//! is configured (the standard `OTEL_*` variables, read in `config::TraceArgs`).
//!
//! Why it is built this way:
//! - One tracer provider per server, held here, never the global one: tests run many servers in
//!   one process and each must export only its own spans. The span context flows through a call
//!   as an OpenTelemetry `Context` attached to the call's future (`FutureExt::with_context`),
//!   so the Port client's span finds its parent without being handed it.
//! - Nothing on a call's path waits for the collector. Finished spans go to the SDK's batch
//!   processor, which exports from a thread of its own through `traces/otlp.rs` (our exporter: the
//!   stock one cost a third of tracing's instructions) with the blocking client of the same
//!   reqwest. The queue in front of it is bounded (`OTEL_BSP_MAX_QUEUE_SIZE`): when it is full
//!   (collector down or slow), spans are dropped, counted and reported once in the log, and
//!   the call goes on. Each export has a time limit (`OTEL_EXPORTER_OTLP_TIMEOUT`), and
//!   [`Traces::flush`] and [`Traces::shutdown`] have deadlines.
//! - The parent of a call comes from the request's `_meta.traceparent` (MCP 2026-07-28), else
//!   from the HTTP `traceparent` header. Both come from outside: their length is bounded and an
//!   invalid one is ignored (W3C Trace Context rules).
//! - Tracing every call must cost little (issue 13: within 15% of throughput at 100%
//!   sampling), so the request path allocates little: span names are interned literals
//!   (`joined`), the tool name, protocol version and Port's host are shared, and
//!   `traceparent` is written without the propagator's formatting.

use std::{
    borrow::Cow,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use opentelemetry::{
    Context, InstrumentationScope, KeyValue, Value,
    propagation::{Extractor, TextMapPropagator},
    trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _},
};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    propagation::TraceContextPropagator,
    trace::{
        BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, SpanData,
        SpanExporter, SpanProcessor,
    },
};

use crate::config::{ConfigError, RootSampler, TraceSettings};

mod otlp;

/// Longest `traceparent` read (version 00 is 55 bytes; later versions may append fields).
pub const MAX_TRACEPARENT_BYTES: usize = 128;
/// Longest `tracestate` read (W3C: at most 32 members; 512 bytes is what every vendor must
/// pass on). A longer one is ignored, the `traceparent` still counts.
pub const MAX_TRACESTATE_BYTES: usize = 512;
/// Longest value of an attribute that comes from a client (tool name, session and request ids,
/// protocol version): longer ones are cut.
pub const MAX_ATTRIBUTE_CHARS: usize = 128;

/// How long a stopping server waits for its last spans to be exported.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// The server's traces, from its settings. Logs where spans go (the endpoint's origin only;
/// headers are never logged).
pub fn start(settings: &TraceSettings) -> Result<Traces, ConfigError> {
    let traces = Traces::new(settings)?;
    tracing::info!(
        endpoint = %settings.endpoint.origin().ascii_serialization(),
        service = %settings.service_name,
        "exporting traces over OTLP/HTTP"
    );
    Ok(traces)
}

/// The trace context a request carries: `traceparent` and `tracestate`, from the request's
/// `_meta` or from its HTTP headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Carrier<'a> {
    /// W3C `traceparent`.
    pub traceparent: Option<&'a str>,
    /// W3C `tracestate`.
    pub tracestate: Option<&'a str>,
}

impl<'a> Carrier<'a> {
    /// The trace context of these HTTP headers.
    pub fn of_headers(headers: &'a axum::http::HeaderMap) -> Self {
        use axum::http::HeaderName;
        // Named once: a `&str` name would be parsed on every lookup.
        static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
        static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
        let get = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        Carrier {
            traceparent: get(&TRACEPARENT),
            tracestate: get(&TRACESTATE),
        }
    }
}

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self
                .traceparent
                .filter(|v| v.len() <= MAX_TRACEPARENT_BYTES),
            "tracestate" => self.tracestate.filter(|v| v.len() <= MAX_TRACESTATE_BYTES),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// What a transport knows of one MCP request, for its span (semantic conventions for MCP).
#[derive(Debug, Clone, Copy, Default)]
pub struct CallInfo<'a> {
    /// `network.transport`: `tcp` (HTTP) or `pipe` (stdio); unset when unknown.
    pub transport: Option<&'static str>,
    /// `mcp.session.id`: the `Mcp-Session-Id` of a session.
    pub session_id: Option<&'a str>,
    /// `jsonrpc.request.id`.
    pub request_id: Option<&'a str>,
    /// `mcp.protocol.version`.
    pub protocol_version: Option<&'a str>,
    /// The trace context of the request's `_meta` (wins when valid).
    pub meta: Carrier<'a>,
    /// The trace context of the HTTP request's headers.
    pub headers: Carrier<'a>,
}

/// The parent of a request's span: `_meta`'s trace context when it is valid, else the HTTP
/// headers', else none (a new trace).
pub fn parent_of(info: &CallInfo<'_>) -> Context {
    let propagator = TraceContextPropagator::new();
    for carrier in [info.meta, info.headers] {
        if carrier.traceparent.is_none() {
            continue;
        }
        let cx = propagator.extract(&carrier);
        if cx.span().span_context().is_valid() {
            return cx;
        }
    }
    Context::new()
}

/// How many spans went where; see [`Traces::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceStats {
    /// Spans ended and queued for export.
    pub queued: u64,
    /// Spans dropped because the queue was full.
    pub dropped: u64,
    /// Spans the collector accepted.
    pub exported: u64,
    /// Spans whose export failed (collector down, refused, timed out).
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counts {
    queued: AtomicU64,
    handed: AtomicU64,
    dropped: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
}

/// A server's tracer and its exporter.
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    counts: Arc<Counts>,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traces").finish_non_exhaustive()
    }
}

impl Traces {
    /// Builds the exporter, the batch processor and the tracer from validated settings. Call
    /// it inside the server's runtime or outside any: it starts the processor's thread.
    pub fn new(settings: &TraceSettings) -> Result<Self, ConfigError> {
        let exporter = otlp::OtlpExporter::new(
            settings.endpoint.clone(),
            &settings.headers,
            settings.timeout,
        )
        .map_err(|reason| ConfigError::Tracing {
            var: "OTEL_EXPORTER_OTLP_*",
            reason: format!("cannot build the OTLP/HTTP exporter: {reason}"),
        })?;
        let counts = Arc::new(Counts::default());
        let batch = BatchSpanProcessor::builder(Counted {
            inner: exporter,
            counts: counts.clone(),
        })
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(settings.max_queue_size)
                .with_max_export_batch_size(settings.max_export_batch_size)
                .with_scheduled_delay(settings.schedule_delay)
                .build(),
        )
        .build();
        let root = match settings.sampler.root {
            RootSampler::AlwaysOn => Sampler::AlwaysOn,
            RootSampler::AlwaysOff => Sampler::AlwaysOff,
            RootSampler::Ratio(r) => Sampler::TraceIdRatioBased(r),
        };
        let sampler = if settings.sampler.parent_based {
            Sampler::ParentBased(Box::new(root))
        } else {
            root
        };
        // Only what was configured: `Resource::builder()` would read the environment again.
        let resource = Resource::builder_empty()
            .with_service_name(settings.service_name.clone())
            .with_attributes(
                settings
                    .resource
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
            )
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(Bounded {
                inner: batch,
                counts: counts.clone(),
                max: settings.max_queue_size as u64,
            })
            .with_sampler(sampler)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer_with_scope(
            InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        );
        Ok(Traces {
            provider,
            tracer,
            counts,
        })
    }

    /// Spans exported, dropped and failed so far, read from this server's counts whenever it
    /// is called (the metrics' scrape), for as long as the reader lives.
    pub fn span_counts(&self) -> impl Fn() -> [u64; 3] + Send + Sync + 'static {
        let counts = self.counts.clone();
        move || {
            let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
            [
                load(&counts.exported),
                load(&counts.dropped),
                load(&counts.failed),
            ]
        }
    }

    /// How many spans were queued, dropped, exported and lost so far.
    pub fn stats(&self) -> TraceStats {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        TraceStats {
            queued: load(&self.counts.queued),
            dropped: load(&self.counts.dropped),
            exported: load(&self.counts.exported),
            failed: load(&self.counts.failed),
        }
    }

    /// Exports what is queued now; `false` when that did not end within `within` or its last
    /// export failed (earlier failures are counted in [`Traces::stats`]). The wait happens on
    /// a blocking thread, never on a runtime worker.
    pub async fn flush(&self, within: Duration) -> bool {
        let provider = self.provider.clone();
        let job = tokio::task::spawn_blocking(move || provider.force_flush().is_ok());
        matches!(tokio::time::timeout(within, job).await, Ok(Ok(true)))
    }

    /// Exports what is queued and stops the exporter, within `within`; spans that cannot be
    /// exported by then are lost (and the log says how many were dropped before).
    pub async fn shutdown(&self, within: Duration) -> bool {
        let provider = self.provider.clone();
        let job = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(within));
        let done = matches!(tokio::time::timeout(within, job).await, Ok(Ok(Ok(()))));
        let stats = self.stats();
        if stats.dropped > 0 || stats.failed > 0 || !done {
            tracing::warn!(
                dropped = stats.dropped,
                failed = stats.failed,
                exported = stats.exported,
                flushed = done,
                "trace export ended with spans lost (queue full: OTEL_BSP_MAX_QUEUE_SIZE; \
                 collector down or slow: OTEL_EXPORTER_OTLP_TIMEOUT)"
            );
        }
        done
    }

    /// Starts the SERVER span of one MCP request (`method`, e.g. `tools/call`, and the tool it
    /// names: `Known` when this server has it, so its name may go in the span name).
    pub fn start_call(
        &self,
        method: &'static str,
        tool: ToolName<'_>,
        info: &CallInfo<'_>,
    ) -> Call {
        let parent = parent_of(info);
        // Only a tool this server has goes in the span name: the name of an unknown one comes
        // from the client, and span names must stay few.
        let name = match tool {
            ToolName::Known(tool) => joined(method, tool),
            _ => Cow::Borrowed(method),
        };
        let mut attributes = Vec::with_capacity(8);
        attributes.push(KeyValue::new("mcp.method.name", method));
        let tool_name = match tool {
            ToolName::Known(tool) => Some(Value::from(tool)),
            ToolName::Unknown(tool) => Some(Value::from(cut(tool))),
            ToolName::None => None,
        };
        if let Some(tool_name) = tool_name {
            attributes.push(KeyValue::new("gen_ai.tool.name", tool_name));
            if method == "tools/call" {
                attributes.push(KeyValue::new("gen_ai.operation.name", "execute_tool"));
            }
        }
        if let Some(t) = info.transport {
            attributes.push(KeyValue::new("network.transport", t));
        }
        for (key, value) in [
            ("mcp.session.id", info.session_id),
            ("jsonrpc.request.id", info.request_id),
        ] {
            if let Some(value) = value {
                attributes.push(KeyValue::new(key, cut(value)));
            }
        }
        if let Some(version) = info.protocol_version {
            // A published version is a literal of rmcp's (no copy per call); another is cut.
            let value = match rmcp::model::ProtocolVersion::KNOWN_VERSIONS
                .iter()
                .find(|known| known.as_str() == version)
            {
                Some(known) => Value::from(known.as_str()),
                None => Value::from(cut(version)),
            };
            attributes.push(KeyValue::new("mcp.protocol.version", value));
        }
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        Call {
            cx: parent.with_span(span),
        }
    }

    /// Starts the CLIENT span of one request to Port, as a child of the current call's span;
    /// `None` outside a traced call (nothing is started, nothing is propagated).
    pub fn start_port_request(
        &self,
        method: &'static str,
        route: &'static str,
        resend_count: u32,
        server: Option<(Arc<str>, u16)>,
    ) -> Option<PortRequestSpan> {
        let parent = Context::current();
        if !parent.has_active_span() {
            return None;
        }
        // Room for the attributes set when it ends (status, Port's trace id, error type).
        let mut attributes = Vec::with_capacity(8);
        attributes.push(KeyValue::new("http.request.method", method));
        attributes.push(KeyValue::new("url.template", route));
        if let Some((host, port)) = server {
            attributes.push(KeyValue::new("server.address", Value::from(host)));
            attributes.push(KeyValue::new("server.port", i64::from(port)));
        }
        if resend_count > 0 {
            attributes.push(KeyValue::new(
                "http.request.resend_count",
                i64::from(resend_count),
            ));
        }
        let span = self
            .tracer
            .span_builder(joined(method, route))
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        Some(PortRequestSpan {
            cx: parent.with_span(span),
        })
    }

    /// Starts the INTERNAL span of one mapping check, as a child of the current call's span;
    /// `None` outside a traced call.
    pub fn start_mapping_check(&self) -> Option<MappingCheckSpan> {
        let parent = Context::current();
        if !parent.has_active_span() {
            return None;
        }
        let span = self
            .tracer
            .span_builder("mapping check")
            .with_kind(SpanKind::Internal)
            .start_with_context(&self.tracer, &parent);
        Some(MappingCheckSpan {
            cx: parent.with_span(span),
        })
    }
}

/// At most [`MAX_ATTRIBUTE_CHARS`] characters of a value from outside.
fn cut(value: &str) -> String {
    match value.char_indices().nth(MAX_ATTRIBUTE_CHARS) {
        Some((end, _)) => value[..end].to_string(),
        None => value.to_string(),
    }
}

/// What a request says of its tool: one of this server's (its name is then one of the
/// catalog's), another (the client's words), or none (not a tool call).
#[derive(Debug, Clone, Copy)]
pub enum ToolName<'a> {
    /// A tool of this server.
    Known(&'static str),
    /// A name this server has no tool for.
    Unknown(&'a str),
    /// Not a tool call.
    None,
}

/// `"{a} {b}"`, built once per pair for the life of the process. Both halves are literals of
/// this program (methods, route templates, catalog tool names), so there are few pairs; an
/// owned name per span would cost an allocation and a free on every call.
fn joined(a: &'static str, b: &'static str) -> Cow<'static, str> {
    type Names = Vec<(&'static str, &'static str, &'static str)>;
    static NAMES: RwLock<Names> = RwLock::new(Vec::new());
    let find = |names: &Names| {
        names
            .iter()
            .find(|(x, y, _)| *x == a && *y == b)
            .map(|(_, _, name)| Cow::Borrowed(*name))
    };
    if let Some(name) = NAMES.read().ok().as_deref().and_then(find) {
        return name;
    }
    let Ok(mut names) = NAMES.write() else {
        return Cow::Owned(format!("{a} {b}"));
    };
    if let Some(name) = find(&names) {
        return name;
    }
    // Leaked on purpose, once per pair: a name lives as long as the spans that carry it.
    let name: &'static str = Box::leak(format!("{a} {b}").into_boxed_str());
    names.push((a, b, name));
    Cow::Borrowed(name)
}

fn end_span(cx: &Context, error_type: Option<&str>) {
    let span = cx.span();
    if let Some(error) = error_type {
        span.set_attribute(KeyValue::new("error.type", cut(error)));
        span.set_status(Status::error(cut(error)));
    }
    span.end();
}

/// The span of one MCP request, ended by [`Call::end`] (or, if the call is dropped, when the
/// span is).
#[derive(Debug)]
pub struct Call {
    cx: Context,
}

impl Call {
    /// The context the call's work runs in (attach it with `FutureExt::with_context`).
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// Ends the span; with an `error.type`, its status is Error.
    pub fn end(self, error_type: Option<&str>) {
        end_span(&self.cx, error_type);
    }
}

/// The span of one request to Port.
#[derive(Debug)]
pub struct PortRequestSpan {
    cx: Context,
}

impl PortRequestSpan {
    /// The `traceparent` (and, when it has members, `tracestate`) headers that make Port's side
    /// of the request a child of this span (W3C Trace Context, version 00).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let span = self.cx.span();
        let cx = span.span_context();
        if !cx.is_valid() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(2);
        out.push(("traceparent", traceparent(cx)));
        let state = cx.trace_state().header();
        if !state.is_empty() {
            out.push(("tracestate", state));
        }
        out
    }

    /// Ends the span with Port's status and `x-trace-id` when it answered, and an
    /// `error.type` when the request failed.
    pub fn end(self, status: Option<u16>, port_trace_id: Option<&str>, error_type: Option<&str>) {
        let span = self.cx.span();
        if let Some(status) = status {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        if let Some(trace) = port_trace_id {
            span.set_attribute(KeyValue::new("port.trace_id", cut(trace)));
        }
        end_span(&self.cx, error_type);
    }
}

/// `00-{trace id}-{span id}-{flags}`, in lowercase hex, as W3C Trace Context writes it (the
/// propagator's `format!` cost more than the rest of the request's span).
fn traceparent(cx: &opentelemetry::trace::SpanContext) -> String {
    fn hex(out: &mut String, bytes: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for b in bytes {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
    }
    let mut out = String::with_capacity(55);
    out.push_str("00-");
    hex(&mut out, &cx.trace_id().to_bytes());
    out.push('-');
    hex(&mut out, &cx.span_id().to_bytes());
    out.push('-');
    hex(&mut out, &[cx.trace_flags().to_u8()]);
    out
}

/// The span of one mapping check.
#[derive(Debug)]
pub struct MappingCheckSpan {
    cx: Context,
}

impl MappingCheckSpan {
    /// Ends the span with what the check found: expressions in the mapping, refused, and
    /// accepted unchecked; `error_type` when the mapping was refused or not checked.
    pub fn end(
        self,
        expressions: usize,
        refused: usize,
        unchecked: usize,
        error_type: Option<&str>,
    ) {
        let span = self.cx.span();
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        span.set_attribute(KeyValue::new("mapping.expressions", count(expressions)));
        span.set_attribute(KeyValue::new("mapping.expressions.refused", count(refused)));
        span.set_attribute(KeyValue::new(
            "mapping.expressions.unchecked",
            count(unchecked),
        ));
        end_span(&self.cx, error_type);
    }
}

/// The batch processor behind a bound of its own, so that dropped spans are counted: a span
/// is admitted while fewer than `max` admitted spans have not yet been handed to the exporter.
/// The SDK's queue has room for `max`, so it never drops one itself.
#[derive(Debug)]
struct Bounded {
    inner: BatchSpanProcessor,
    counts: Arc<Counts>,
    max: u64,
}

impl SpanProcessor for Bounded {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        let queued = self.counts.queued.fetch_add(1, Ordering::AcqRel);
        let handed = self.counts.handed.load(Ordering::Acquire);
        if queued.saturating_sub(handed) >= self.max {
            self.counts.queued.fetch_sub(1, Ordering::AcqRel);
            if self.counts.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    max_queue_size = self.max,
                    "trace export queue full (OTEL_BSP_MAX_QUEUE_SIZE): spans are dropped until \
                     the collector catches up; the count is logged at shutdown"
                );
            }
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, counting what it is handed and how each export ended.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    counts: Arc<Counts>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        self.counts.handed.fetch_add(n, Ordering::AcqRel);
        let outcome = self.inner.export(batch).await;
        match &outcome {
            Ok(()) => {
                self.counts.exported.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                // The first failure is worth a warning; after it, a collector that stays down
                // would repeat it every few seconds.
                if self.counts.failed.fetch_add(n, Ordering::Relaxed) == 0 {
                    tracing::warn!(error = %e, spans = n, "trace export failed; spans are lost");
                } else {
                    tracing::debug!(error = %e, spans = n, "trace export failed");
                }
            }
        }
        outcome
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::{
        propagation::Injector,
        trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState},
    };

    use super::*;

    /// What the SDK's W3C propagator would send, without an empty `tracestate`.
    fn propagated(cx: &Context) -> Vec<(&'static str, String)> {
        struct Out(Vec<(&'static str, String)>);
        impl Injector for Out {
            fn set(&mut self, key: &str, value: String) {
                match key {
                    "traceparent" => self.0.push(("traceparent", value)),
                    "tracestate" if !value.is_empty() => self.0.push(("tracestate", value)),
                    _ => {}
                }
            }
        }
        let mut out = Out(Vec::new());
        TraceContextPropagator::new().inject_context(cx, &mut out);
        out.0
    }

    #[test]
    fn port_request_headers_are_what_the_w3c_propagator_writes() {
        let cases = [
            (u128::MAX, u64::MAX, TraceFlags::SAMPLED, ""),
            (
                0x0af7651916cd43dd8448eb211c80319c,
                0x00f067aa0ba902b7,
                TraceFlags::NOT_SAMPLED,
                "",
            ),
            (1, 1, TraceFlags::SAMPLED, "vendor=abc,other=x-1"),
        ];
        for (trace, span, flags, state) in cases {
            let sc = SpanContext::new(
                TraceId::from(trace),
                SpanId::from(span),
                flags,
                true,
                state.parse::<TraceState>().unwrap(),
            );
            let cx = Context::new().with_remote_span_context(sc);
            let expected = propagated(&cx);
            assert_eq!(PortRequestSpan { cx }.headers(), expected);
            assert_eq!(expected.len(), if state.is_empty() { 1 } else { 2 });
        }
        let none = PortRequestSpan { cx: Context::new() };
        assert!(none.headers().is_empty());
    }

    #[test]
    fn joined_names_are_built_once_per_pair() {
        let a = joined("tools/call", "get-integration");
        let b = joined("tools/call", "get-integration");
        assert_eq!(a, "tools/call get-integration");
        assert!(matches!((&a, &b), (Cow::Borrowed(x), Cow::Borrowed(y)) if std::ptr::eq(*x, *y)));
        assert_eq!(joined("GET", "/v1/integration"), "GET /v1/integration");
    }
}
