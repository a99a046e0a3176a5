//! What the trace exporter did with the spans (`trace_spans_*_total`): operators see on the
//! dashboard they already have whether the collector keeps up, or spans are being lost. The
//! counts live with the exporter (`telemetry::traces`); this reads them when a scrape asks.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::counter::ConstCounter,
    registry::Registry,
};

/// The exporter's counts: spans exported, dropped (queue full), failed (export failed).
pub type ReadCounts = Box<dyn Fn() -> [u64; 3] + Send + Sync>;

/// Adds the collector reading `read` to `registry`.
pub fn register(registry: &mut Registry, read: ReadCounts) {
    registry.register_collector(Box::new(Spans(read)));
}

struct Spans(ReadCounts);

impl std::fmt::Debug for Spans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spans").finish_non_exhaustive()
    }
}

const FAMILIES: [(&str, &str); 3] = [
    ("trace_spans_exported", "Spans the OTLP collector accepted"),
    (
        "trace_spans_dropped",
        "Spans dropped because the export queue was full (OTEL_BSP_MAX_QUEUE_SIZE)",
    ),
    (
        "trace_spans_failed",
        "Spans whose export failed (collector down, refusing, or past OTEL_EXPORTER_OTLP_TIMEOUT)",
    ),
];

impl Collector for Spans {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = (self.0)();
        for ((name, help), value) in FAMILIES.iter().zip(counts) {
            let metric = ConstCounter::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        Ok(())
    }
}
