//! The OTLP/HTTP (protobuf) span exporter: encodes a batch of the SDK's `SpanData` straight
//! into an `ExportTraceServiceRequest` and POSTs it to the collector.
//!
//! Why not `opentelemetry-otlp`: it first converts every span into the owned structs of
//! `opentelemetry-proto` (a `String` and a `Vec` per id, name, attribute and value), groups
//! them through a `HashMap` keyed by the whole instrumentation scope, encodes them and then
//! frees them: about 15,000 instructions per span on callgrind, a quarter of all that tracing
//! cost a call (`benches/telemetry_instructions.py`). Here each field is written once from the
//! borrowed span into one buffer sized in advance, with prost's own wire primitives (the ones
//! its generated code calls); what is sent decodes, field for field, to what
//! `opentelemetry-proto` would have built (checked by the tests below against its conversion,
//! and by every trace test, whose receiver decodes with `opentelemetry-proto`).
//!
//! The request: no redirect is followed (the configured headers may hold a collector's API
//! key), one time limit covers the whole exchange, and only the status of the collector's
//! answer is read (its body is never read, so it cannot be large or slow, nor be quoted).

use std::time::SystemTime;

use opentelemetry::{
    Array, InstrumentationScope, KeyValue, Value,
    trace::{SpanContext, SpanId, SpanKind, Status},
};
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    trace::{SpanData, SpanExporter},
};
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::config::Secret;

/// Span flags of OTLP (`SpanFlags`): the parent's remoteness is known, and it is remote.
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// Exports batches of spans to one OTLP/HTTP endpoint.
pub struct OtlpExporter {
    /// Built by the first export, on the batch processor's thread: loading the system's root
    /// certificates costs start-up time and memory that a server with nothing to export yet
    /// does not need, and the blocking client must not be built (nor dropped) on a thread of
    /// the server's runtime, which that thread is not.
    client: std::sync::OnceLock<reqwest::blocking::Client>,
    timeout: std::time::Duration,
    endpoint: reqwest::Url,
    headers: HeaderMap,
    /// The encoded `Resource` message of every request (set by the SDK at start).
    resource: Vec<u8>,
    resource_schema_url: String,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The headers may hold secrets: never printed.
        f.debug_struct("OtlpExporter")
            .field("endpoint", &self.endpoint.origin().ascii_serialization())
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// An exporter POSTing to `endpoint` with these headers (already validated, values
    /// marked sensitive here), each export limited to `timeout`. Call it anywhere: the HTTP
    /// client is built by the first export.
    pub fn new(
        endpoint: reqwest::Url,
        headers: &[(String, Secret)],
        timeout: std::time::Duration,
    ) -> Result<Self, String> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("header name {name:?} is not a valid HTTP header name"))?;
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| format!("the value of header {name} is not a valid HTTP header"))?;
            value.set_sensitive(true);
            map.insert(name, value);
        }
        map.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        // reqwest is built without a TLS provider of its own (see `port::install_crypto_provider`);
        // an https collector needs the process-wide one. An error means one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(OtlpExporter {
            client: std::sync::OnceLock::new(),
            timeout,
            endpoint,
            headers: map,
            resource: Vec::new(),
            resource_schema_url: String::new(),
        })
    }

    fn client(&self) -> Result<&reqwest::blocking::Client, OTelSdkError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                env!("CARGO_PKG_NAME"),
                "/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| {
                OTelSdkError::InternalFailure(format!(
                    "cannot build the HTTP client: {}",
                    e.without_url()
                ))
            })?;
        Ok(self.client.get_or_init(|| client))
    }

    fn post(&self, body: Vec<u8>) -> OTelSdkResult {
        let response = self
            .client()?
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .body(body)
            .send()
            .map_err(|e| OTelSdkError::InternalFailure(e.without_url().to_string()))?;
        // OTLP's partial-success answer would only be logged; the body is dropped unread.
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(OTelSdkError::InternalFailure(format!(
                "the collector answered HTTP {}",
                status.as_u16()
            )))
        }
    }
}

impl SpanExporter for OtlpExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if batch.is_empty() {
            return Ok(());
        }
        let body = encode_request(&batch, &self.resource, &self.resource_schema_url);
        drop(batch);
        self.post(body)
    }

    fn set_resource(&mut self, resource: &Resource) {
        let mut encoded = Vec::new();
        for (key, value) in resource.iter() {
            put_key_value(1, key.as_str(), value, &mut encoded);
        }
        self.resource = encoded;
        self.resource_schema_url = resource.schema_url().unwrap_or_default().to_string();
    }
}

/// The `ExportTraceServiceRequest` of these spans: one `ResourceSpans` (the resource's
/// encoded attributes) with a `ScopeSpans` per instrumentation scope, in the order scopes
/// first appear.
pub fn encode_request(spans: &[SpanData], resource: &[u8], resource_schema_url: &str) -> Vec<u8> {
    // Spans by scope: a server has one tracer, so this is one group, found by comparing
    // with the few seen so far (no hashing of the scope per span).
    let mut groups: Vec<(&InstrumentationScope, Vec<usize>)> = Vec::with_capacity(1);
    let mut span_lens = Vec::with_capacity(spans.len());
    for (i, span) in spans.iter().enumerate() {
        span_lens.push(span_len(span));
        match groups
            .iter_mut()
            .find(|(scope, _)| **scope == span.instrumentation_scope)
        {
            Some((_, members)) => members.push(i),
            None => groups.push((&span.instrumentation_scope, vec![i])),
        }
    }
    let scope_lens: Vec<usize> = groups
        .iter()
        .map(|(scope, members)| {
            let spans: usize = members.iter().map(|&i| message_len(2, span_lens[i])).sum();
            message_len(1, scope_len(scope))
                + spans
                + string_len(3, scope.schema_url().unwrap_or_default())
        })
        .collect();
    let resource_spans_len = message_len(1, resource.len())
        + scope_lens.iter().map(|&l| message_len(2, l)).sum::<usize>()
        + string_len(3, resource_schema_url);

    let mut buf = Vec::with_capacity(message_len(1, resource_spans_len));
    put_message_header(1, resource_spans_len, &mut buf);
    put_message_header(1, resource.len(), &mut buf);
    buf.extend_from_slice(resource);
    for ((scope, members), &len) in groups.iter().zip(&scope_lens) {
        put_message_header(2, len, &mut buf);
        put_message_header(1, scope_len(scope), &mut buf);
        put_scope(scope, &mut buf);
        for &i in members {
            put_message_header(2, span_lens[i], &mut buf);
            put_span(&spans[i], &mut buf);
        }
        put_string(3, scope.schema_url().unwrap_or_default(), &mut buf);
    }
    put_string(3, resource_schema_url, &mut buf);
    buf
}

// ---- InstrumentationScope: 1 name, 2 version, 3 attributes ----

fn scope_len(scope: &InstrumentationScope) -> usize {
    string_len(1, scope.name())
        + string_len(2, scope.version().unwrap_or_default())
        + attributes_len(3, scope.attributes())
}

fn put_scope(scope: &InstrumentationScope, buf: &mut Vec<u8>) {
    put_string(1, scope.name(), buf);
    put_string(2, scope.version().unwrap_or_default(), buf);
    for kv in scope.attributes() {
        put_key_value(3, kv.key.as_str(), &kv.value, buf);
    }
}

// ---- Span ----
// 1 trace_id, 2 span_id, 3 trace_state, 4 parent_span_id, 5 name, 6 kind, 7 start, 8 end,
// 9 attributes, 10 dropped_attributes_count, 11 events, 12 dropped_events_count, 13 links,
// 14 dropped_links_count, 15 status, 16 flags.

fn kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn flags(context: &SpanContext, remote: bool) -> u32 {
    let mut flags = u32::from(context.trace_flags().to_u8()) | HAS_IS_REMOTE;
    if remote {
        flags |= IS_REMOTE;
    }
    flags
}

/// Nanoseconds since the epoch; 0 before it, saturated after year 2554.
fn nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn parent_id(span: &SpanData) -> Option<[u8; 8]> {
    (span.parent_span_id != SpanId::INVALID).then(|| span.parent_span_id.to_bytes())
}

/// The `Status` message: 2 message, 3 code (always sent, as `opentelemetry-proto` does).
fn status_parts(status: &Status) -> (&str, u64) {
    match status {
        Status::Unset => ("", 0),
        Status::Ok => ("", 1),
        Status::Error { description } => (description, 2),
    }
}

fn status_len(status: &Status) -> usize {
    let (message, code) = status_parts(status);
    string_len(2, message) + varint_len(3, code)
}

fn span_len(span: &SpanData) -> usize {
    let cx = &span.span_context;
    let trace_state = cx.trace_state().header();
    bytes_len(1, &cx.trace_id().to_bytes())
        + bytes_len(2, &cx.span_id().to_bytes())
        + string_len(3, &trace_state)
        + parent_id(span).map_or(0, |id| bytes_len(4, &id))
        + string_len(5, &span.name)
        + varint_len(6, kind(&span.span_kind))
        + fixed64_len(7, nanos(span.start_time))
        + fixed64_len(8, nanos(span.end_time))
        + attributes_len(9, &span.attributes)
        + varint_len(10, u64::from(span.dropped_attributes_count))
        + span
            .events
            .iter()
            .map(|e| message_len(11, event_len(e)))
            .sum::<usize>()
        + varint_len(12, u64::from(span.events.dropped_count))
        + span
            .links
            .iter()
            .map(|l| message_len(13, link_len(l)))
            .sum::<usize>()
        + varint_len(14, u64::from(span.links.dropped_count))
        + message_len(15, status_len(&span.status))
        + fixed32_len(16, flags(cx, span.parent_span_is_remote))
}

fn put_span(span: &SpanData, buf: &mut Vec<u8>) {
    let cx = &span.span_context;
    put_bytes(1, &cx.trace_id().to_bytes(), buf);
    put_bytes(2, &cx.span_id().to_bytes(), buf);
    put_string(3, &cx.trace_state().header(), buf);
    if let Some(id) = parent_id(span) {
        put_bytes(4, &id, buf);
    }
    put_string(5, &span.name, buf);
    put_varint(6, kind(&span.span_kind), buf);
    put_fixed64(7, nanos(span.start_time), buf);
    put_fixed64(8, nanos(span.end_time), buf);
    for kv in &span.attributes {
        put_key_value(9, kv.key.as_str(), &kv.value, buf);
    }
    put_varint(10, u64::from(span.dropped_attributes_count), buf);
    for event in span.events.iter() {
        put_message_header(11, event_len(event), buf);
        put_fixed64(1, nanos(event.timestamp), buf);
        put_string(2, &event.name, buf);
        for kv in &event.attributes {
            put_key_value(3, kv.key.as_str(), &kv.value, buf);
        }
        put_varint(4, u64::from(event.dropped_attributes_count), buf);
    }
    put_varint(12, u64::from(span.events.dropped_count), buf);
    for link in span.links.iter() {
        let lcx = &link.span_context;
        put_message_header(13, link_len(link), buf);
        put_bytes(1, &lcx.trace_id().to_bytes(), buf);
        put_bytes(2, &lcx.span_id().to_bytes(), buf);
        put_string(3, &lcx.trace_state().header(), buf);
        for kv in &link.attributes {
            put_key_value(4, kv.key.as_str(), &kv.value, buf);
        }
        put_varint(5, u64::from(link.dropped_attributes_count), buf);
        put_fixed32(6, flags(lcx, lcx.is_remote()), buf);
    }
    put_varint(14, u64::from(span.links.dropped_count), buf);
    let (message, code) = status_parts(&span.status);
    put_message_header(15, status_len(&span.status), buf);
    put_string(2, message, buf);
    put_varint(3, code, buf);
    put_fixed32(16, flags(cx, span.parent_span_is_remote), buf);
}

/// `Event`: 1 time, 2 name, 3 attributes, 4 dropped_attributes_count.
fn event_len(event: &opentelemetry::trace::Event) -> usize {
    fixed64_len(1, nanos(event.timestamp))
        + string_len(2, &event.name)
        + attributes_len(3, &event.attributes)
        + varint_len(4, u64::from(event.dropped_attributes_count))
}

/// `Link`: 1 trace_id, 2 span_id, 3 trace_state, 4 attributes, 5 dropped, 6 flags.
fn link_len(link: &opentelemetry::trace::Link) -> usize {
    let cx = &link.span_context;
    bytes_len(1, &cx.trace_id().to_bytes())
        + bytes_len(2, &cx.span_id().to_bytes())
        + string_len(3, &cx.trace_state().header())
        + attributes_len(4, &link.attributes)
        + varint_len(5, u64::from(link.dropped_attributes_count))
        + fixed32_len(6, flags(cx, cx.is_remote()))
}

// ---- KeyValue (1 key, 2 value) and AnyValue ----
// AnyValue is a oneof: 1 string, 2 bool, 3 int, 4 double, 5 array (ArrayValue: 1 values).
// A oneof member is written even when it holds its default (false, 0, "").

/// Attributes as repeated `KeyValue`s of field `tag`, keys and lengths included.
fn attributes_len<'a>(tag: u32, attributes: impl IntoIterator<Item = &'a KeyValue>) -> usize {
    attributes
        .into_iter()
        .map(|kv| message_len(tag, key_value_len(kv.key.as_str(), &kv.value)))
        .sum()
}

fn key_value_len(key: &str, value: &Value) -> usize {
    string_len(1, key) + message_len(2, any_value_len(value))
}

fn put_key_value(tag: u32, key: &str, value: &Value, buf: &mut Vec<u8>) {
    put_message_header(tag, key_value_len(key, value), buf);
    put_string(1, key, buf);
    put_message_header(2, any_value_len(value), buf);
    put_any_value(value, buf);
}

/// One scalar of an `AnyValue`, borrowed.
enum Scalar<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
}

impl Scalar<'_> {
    fn len(&self) -> usize {
        match self {
            Scalar::Str(s) => key_len(1) + encoded_len_varint(s.len() as u64) + s.len(),
            Scalar::Bool(_) => key_len(2) + 1,
            Scalar::Int(i) => key_len(3) + encoded_len_varint(*i as u64),
            Scalar::Double(_) => key_len(4) + 8,
        }
    }

    fn put(&self, buf: &mut Vec<u8>) {
        match self {
            Scalar::Str(s) => {
                put_message_header(1, s.len(), buf);
                buf.extend_from_slice(s.as_bytes());
            }
            Scalar::Bool(b) => {
                encode_key(2, WireType::Varint, buf);
                encode_varint(u64::from(*b), buf);
            }
            Scalar::Int(i) => {
                encode_key(3, WireType::Varint, buf);
                // int64: two's complement, as prost writes it.
                encode_varint(*i as u64, buf);
            }
            Scalar::Double(d) => {
                encode_key(4, WireType::SixtyFourBit, buf);
                buf.extend_from_slice(&d.to_le_bytes());
            }
        }
    }
}

/// The elements of an array value, as scalars.
fn elements(array: &Array) -> Box<dyn Iterator<Item = Scalar<'_>> + '_> {
    match array {
        Array::Bool(v) => Box::new(v.iter().map(|b| Scalar::Bool(*b))),
        Array::I64(v) => Box::new(v.iter().map(|i| Scalar::Int(*i))),
        Array::F64(v) => Box::new(v.iter().map(|d| Scalar::Double(*d))),
        Array::String(v) => Box::new(v.iter().map(|s| Scalar::Str(s.as_str()))),
        // A kind of array this version does not know is sent empty.
        _ => Box::new(std::iter::empty()),
    }
}

fn array_len(array: &Array) -> usize {
    elements(array).map(|s| message_len(1, s.len())).sum()
}

fn scalar(value: &Value) -> Option<Scalar<'_>> {
    match value {
        Value::Bool(b) => Some(Scalar::Bool(*b)),
        Value::I64(i) => Some(Scalar::Int(*i)),
        Value::F64(d) => Some(Scalar::Double(*d)),
        Value::String(s) => Some(Scalar::Str(s.as_str())),
        _ => None,
    }
}

fn any_value_len(value: &Value) -> usize {
    match (scalar(value), value) {
        (Some(s), _) => s.len(),
        (None, Value::Array(a)) => message_len(5, array_len(a)),
        // A kind of value this version does not know is sent unset.
        _ => 0,
    }
}

fn put_any_value(value: &Value, buf: &mut Vec<u8>) {
    match (scalar(value), value) {
        (Some(s), _) => s.put(buf),
        (None, Value::Array(a)) => {
            put_message_header(5, array_len(a), buf);
            for element in elements(a) {
                put_message_header(1, element.len(), buf);
                element.put(buf);
            }
        }
        _ => {}
    }
}

// ---- Wire primitives (proto3: a field holding its default is not written) ----

fn message_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn put_message_header(tag: u32, len: usize, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

fn bytes_len(tag: u32, bytes: &[u8]) -> usize {
    if bytes.is_empty() {
        0
    } else {
        message_len(tag, bytes.len())
    }
}

fn put_bytes(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    if !bytes.is_empty() {
        put_message_header(tag, bytes.len(), buf);
        buf.extend_from_slice(bytes);
    }
}

fn string_len(tag: u32, s: &str) -> usize {
    bytes_len(tag, s.as_bytes())
}

fn put_string(tag: u32, s: &str, buf: &mut Vec<u8>) {
    put_bytes(tag, s.as_bytes(), buf);
}

fn varint_len(tag: u32, value: u64) -> usize {
    if value == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(value)
    }
}

fn put_varint(tag: u32, value: u64, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(value, buf);
    }
}

fn fixed64_len(tag: u32, value: u64) -> usize {
    if value == 0 { 0 } else { key_len(tag) + 8 }
}

fn put_fixed64(tag: u32, value: u64, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::SixtyFourBit, buf);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

fn fixed32_len(tag: u32, value: u32) -> usize {
    if value == 0 { 0 } else { key_len(tag) + 4 }
}

fn put_fixed32(tag: u32, value: u32, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::ThirtyTwoBit, buf);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    //! What is encoded here must decode to exactly what `opentelemetry-proto`'s own conversion
    //! (the one `opentelemetry-otlp` sends) builds from the same spans.

    use std::{
        borrow::Cow,
        time::{Duration, SystemTime},
    };

    use opentelemetry::{
        Array, InstrumentationScope, KeyValue, StringValue, Value,
        trace::{
            Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
        },
    };
    use opentelemetry_proto::{
        tonic::collector::trace::v1::ExportTraceServiceRequest,
        transform::{
            common::tonic::ResourceAttributesWithSchema,
            trace::tonic::group_spans_by_resource_and_scope,
        },
    };
    use opentelemetry_sdk::{
        Resource,
        trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks},
    };
    use proptest::prelude::*;
    use prost::Message;

    use super::{OtlpExporter, encode_request};

    fn context(trace: u128, span: u64, remote: bool, state: &str) -> SpanContext {
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            remote,
            state.parse::<TraceState>().unwrap(),
        )
    }

    fn span(
        name: &'static str,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
        scope: &InstrumentationScope,
    ) -> SpanData {
        SpanData {
            span_context: context(
                0x0af7651916cd43dd8448eb211c80319c,
                0xb7ad6b7169203331,
                false,
                "",
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: kind,
            name: Cow::Borrowed(name),
            start_time: SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789),
            end_time: SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_223_456_789),
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: scope.clone(),
        }
    }

    fn resource() -> Resource {
        Resource::builder_empty()
            .with_service_name("port-integrations-mcp")
            .with_attribute(KeyValue::new("deployment.environment", "prod"))
            .with_schema_url(
                [KeyValue::new("host.name", "h1")],
                "https://opentelemetry.io/schemas/1.30.0",
            )
            .build()
    }

    /// Ours, decoded, against the reference conversion; and the same number of bytes.
    fn assert_same_as_reference(spans: Vec<SpanData>, resource: &Resource) {
        let mut exporter = OtlpExporter::new(
            "http://127.0.0.1:4318/v1/traces".parse().unwrap(),
            &[],
            Duration::from_secs(1),
        )
        .unwrap();
        exporter.set_resource(resource);
        let ours = encode_request(&spans, &exporter.resource, &exporter.resource_schema_url);
        let reference = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                spans,
                &ResourceAttributesWithSchema::from(resource),
            ),
        };
        let decoded = ExportTraceServiceRequest::decode(ours.as_slice()).unwrap();
        assert_eq!(decoded, reference);
        assert_eq!(ours.len(), reference.encoded_len());
    }

    #[test]
    fn every_field_of_a_span_decodes_as_the_reference_builds_it() {
        let scope = InstrumentationScope::builder("port-integrations-mcp")
            .with_version("0.1.0")
            .build();
        let other_scope = InstrumentationScope::builder("other")
            .with_schema_url("https://opentelemetry.io/schemas/1.21.0")
            .with_attributes([KeyValue::new("scope.attr", 7)])
            .build();
        let every_value = vec![
            KeyValue::new("s", "héllo ✓"),
            KeyValue::new("empty", ""),
            KeyValue::new("t", true),
            KeyValue::new("f", false),
            KeyValue::new("zero", 0),
            KeyValue::new("neg", -42),
            KeyValue::new("max", i64::MAX),
            KeyValue::new("pi", 3.25),
            KeyValue::new("dzero", 0.0),
            KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new("ints", Value::Array(Array::I64(vec![0, -1, 300]))),
            KeyValue::new("floats", Value::Array(Array::F64(vec![0.0, -2.5]))),
            KeyValue::new(
                "strings",
                Value::Array(Array::String(vec![
                    StringValue::from("a"),
                    StringValue::from(""),
                ])),
            ),
            KeyValue::new("none", Value::Array(Array::String(vec![]))),
        ];
        let mut server = span(
            "tools/call get-integration",
            SpanKind::Server,
            every_value,
            &scope,
        );
        server.span_context = context(1, 2, false, "vendor=abc,other=1");
        server.parent_span_id = SpanId::from(9);
        server.parent_span_is_remote = true;
        server.dropped_attributes_count = 3;
        server.status = Status::error("tool_error");
        server.events.events = vec![
            Event::new(
                "first",
                SystemTime::UNIX_EPOCH + Duration::from_secs(5),
                vec![],
                0,
            ),
            Event::new(
                "second",
                SystemTime::UNIX_EPOCH,
                vec![KeyValue::new("k", "v")],
                2,
            ),
        ];
        server.events.dropped_count = 4;
        server.links.links = vec![
            Link::new(context(3, 4, true, "k=v"), vec![KeyValue::new("l", 1)], 1),
            Link::new(context(5, 6, false, ""), vec![], 0),
        ];
        server.links.dropped_count = 5;
        let mut client = span(
            "PATCH /v1/integration/{identifier}",
            SpanKind::Client,
            vec![],
            &scope,
        );
        client.status = Status::Ok;
        client.parent_span_id = SpanId::from(2);
        let mut before_epoch = span("mapping check", SpanKind::Internal, vec![], &other_scope);
        before_epoch.start_time = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
        let producer = span("p", SpanKind::Producer, vec![], &scope);
        let consumer = span("c", SpanKind::Consumer, vec![], &other_scope);
        assert_same_as_reference(
            vec![server, client, before_epoch, producer, consumer],
            &resource(),
        );
        assert_same_as_reference(vec![], &Resource::builder_empty().build());
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let finite =
            proptest::num::f64::NORMAL | proptest::num::f64::ZERO | proptest::num::f64::SUBNORMAL;
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::I64),
            finite.prop_map(Value::F64),
            ".{0,40}".prop_map(Value::from),
            proptest::collection::vec(any::<i64>(), 0..4).prop_map(|v| Value::Array(Array::I64(v))),
            proptest::collection::vec(".{0,8}", 0..4).prop_map(|v| Value::Array(Array::String(
                v.into_iter().map(StringValue::from).collect()
            ))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_attributes_decode_as_the_reference_builds_them(
            values in proptest::collection::vec(("[a-z.]{0,20}", any_value()), 0..20),
            name in ".{0,60}",
            spans in 1usize..5,
            dropped in any::<u32>(),
        ) {
            let scope = InstrumentationScope::builder("s").build();
            let attributes: Vec<KeyValue> =
                values.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect();
            let batch = (0..spans)
                .map(|i| {
                    let mut s = span("x", SpanKind::Server, attributes.clone(), &scope);
                    s.name = Cow::Owned(format!("{name}{i}"));
                    s.dropped_attributes_count = dropped;
                    s
                })
                .collect();
            assert_same_as_reference(batch, &resource());
        }
    }
}
