//! Prometheus metrics: what a scrape of `/metrics` reports.
//!
//! One [`Metrics`] per server, with its own `prometheus-client` registry (never the process's:
//! tests run many servers in one process and read each one's exact counts). Names follow the
//! OpenTelemetry conventions mapped to Prometheus (unit suffix, `_total` on counters):
//! `mcp_server_operation_duration_seconds` and `mcp_server_session_duration_seconds` are the
//! MCP semantic conventions' two metrics; the `port_*` families describe the calls to Port;
//! `process_*` is read from `/proc/self` at scrape time only ([`process`]).
//!
//! Every label value is a `&'static str` from a fixed set ([`labels`]): a tool name, a method or
//! an error type from a client that is not in that set becomes `_OTHER`, and a Port route is its
//! template, so no outside string can add a series or reach a scrape.

mod labels;
mod process;
mod spans;

use std::time::Instant;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

pub use labels::OTHER;

/// The `Content-Type` of a scrape: Prometheus text 0.0.4, which `promtool check metrics`
/// reads and every Prometheus scrapes.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Bucket bounds the MCP semantic conventions advise for operation and session durations.
const MCP_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Bucket bounds for requests to Port and the wait for a slot: most answer in tens of
/// milliseconds; the top bounds are the default timeout and budget.
const PORT_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Why a call was refused as busy (`busy_refusals_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// No slot for a request to Port in time (`--max-in-flight`).
    PortSlots,
    /// No jq slot for a mapping check or preview in time (`--jq-max-concurrent`).
    JqSlots,
    /// `--max-tasks` tasks already running.
    Tasks,
    /// `--max-sessions` MCP sessions already open.
    Sessions,
}

impl Busy {
    fn as_str(self) -> &'static str {
        match self {
            Busy::PortSlots => "port_slots",
            Busy::JqSlots => "jq_slots",
            Busy::Tasks => "tasks",
            Busy::Sessions => "sessions",
        }
    }
}

/// How an MCP session reached the server (`network_transport`, as OpenTelemetry names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionTransport {
    /// A streamable HTTP session.
    Tcp,
    /// The stdio session.
    Pipe,
}

/// How a client-credentials exchange ended (`port_token_exchanges_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// Port issued a token.
    Ok,
    /// Port answered with an error status.
    Refused,
    /// Port's answer had no usable token.
    Invalid,
    /// Port could not be reached in time.
    Unreachable,
}

impl Exchange {
    fn as_str(self) -> &'static str {
        match self {
            Exchange::Ok => "ok",
            Exchange::Refused => "refused",
            Exchange::Invalid => "invalid",
            Exchange::Unreachable => "unreachable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabels {
    mcp_method_name: &'static str,
    gen_ai_tool_name: &'static str,
    error_type: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SessionLabels {
    network_transport: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    http_request_method: &'static str,
    route: &'static str,
    status_class: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CauseLabels {
    cause: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn mcp_histogram() -> Histogram {
    Histogram::new(MCP_BUCKETS)
}

fn port_histogram() -> Histogram {
    Histogram::new(PORT_BUCKETS)
}

/// The server's metric families, and the registry a scrape encodes.
pub struct Metrics {
    registry: Registry,
    /// The tool names a label may carry, sorted.
    tools: Box<[&'static str]>,
    operation: Histograms<OperationLabels>,
    session: Histograms<SessionLabels>,
    port_request: Histograms<RequestLabels>,
    port_retries: Family<CauseLabels, Counter>,
    port_in_flight: Gauge,
    port_queue_wait: Histogram,
    busy: Family<ReasonLabels, Counter>,
    token_exchanges: Family<OutcomeLabels, Counter>,
    token_refresh_failures: Counter,
    mapping_checks: Counter,
    mapping_refused: Counter,
    mapping_unchecked: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics for a server whose tools are `tools` (the catalog's names): only these may
    /// appear as `gen_ai_tool_name`; any other name is counted as `_OTHER`.
    pub fn new(tools: impl IntoIterator<Item = &'static str>) -> Self {
        let mut tools: Vec<&'static str> = tools.into_iter().collect();
        tools.sort_unstable();
        tools.dedup();
        let mut m = Metrics {
            registry: Registry::default(),
            tools: tools.into_boxed_slice(),
            operation: Family::new_with_constructor(mcp_histogram),
            session: Family::new_with_constructor(mcp_histogram),
            port_request: Family::new_with_constructor(port_histogram),
            port_retries: Family::default(),
            port_in_flight: Gauge::default(),
            port_queue_wait: port_histogram(),
            busy: Family::default(),
            token_exchanges: Family::default(),
            token_refresh_failures: Counter::default(),
            mapping_checks: Counter::default(),
            mapping_refused: Counter::default(),
            mapping_unchecked: Counter::default(),
        };
        m.register();
        m
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register_with_unit(
            "mcp_server_operation_duration",
            "MCP requests served, by JSON-RPC method, tool and error type (empty on success)",
            Unit::Seconds,
            self.operation.clone(),
        );
        r.register_with_unit(
            "mcp_server_session_duration",
            "MCP sessions, measured when they end",
            Unit::Seconds,
            self.session.clone(),
        );
        r.register_with_unit(
            "port_request_duration",
            "Requests to Port (each attempt), by method, route template and status class",
            Unit::Seconds,
            self.port_request.clone(),
        );
        r.register(
            "port_request_retries",
            "Requests to Port sent again, by the cause of the failed attempt",
            self.port_retries.clone(),
        );
        r.register(
            "port_requests_in_flight",
            "Calls holding one of the --max-in-flight slots for requests to Port",
            self.port_in_flight.clone(),
        );
        r.register_with_unit(
            "port_request_queue_wait",
            "Time calls waited for a slot to send to Port (--max-in-flight)",
            Unit::Seconds,
            self.port_queue_wait.clone(),
        );
        r.register(
            "busy_refusals",
            "Calls refused as busy, by the limit that was full",
            self.busy.clone(),
        );
        r.register(
            "port_token_exchanges",
            "Client-credentials exchanges for a Port access token, by outcome",
            self.token_exchanges.clone(),
        );
        r.register(
            "port_token_refresh_failures",
            "Failed exchanges that were to replace an expired or rejected token",
            self.token_refresh_failures.clone(),
        );
        r.register(
            "mapping_checks",
            "Mapping configs checked before they were sent to Port",
            self.mapping_checks.clone(),
        );
        r.register(
            "mapping_expressions_refused",
            "jq expressions the mapping check refused (the config was not sent)",
            self.mapping_refused.clone(),
        );
        r.register(
            "mapping_expressions_unchecked",
            "jq expressions the mapping check could not fully verify (sent, with a note)",
            self.mapping_unchecked.clone(),
        );
        process::register(r);
    }

    /// One MCP request served: its method (`tools/call`, `tools/list`, ...), the tool it
    /// named, its `error.type` (see `tools::audit::Outcome::error_type`) and how long it took.
    pub fn operation(
        &self,
        method: &str,
        tool: Option<&str>,
        error_type: Option<&str>,
        seconds: f64,
    ) {
        let labels = OperationLabels {
            mcp_method_name: labels::method(method),
            gen_ai_tool_name: tool.map_or("", |t| self.tool(t)),
            error_type: error_type.map_or("", labels::error_type),
        };
        self.operation
            .get_or_create(&labels)
            .observe(labels::seconds(seconds));
    }

    /// A `tools/call` that started at `started` and ended with `error_type`.
    pub fn tool_call(&self, tool: &str, started: Instant, error_type: Option<&str>) {
        self.operation(
            "tools/call",
            Some(tool),
            error_type,
            started.elapsed().as_secs_f64(),
        );
    }

    /// The catalog name equal to `tool`, or `_OTHER`.
    fn tool(&self, tool: &str) -> &'static str {
        match self.tools.binary_search(&tool) {
            Ok(i) => self.tools[i],
            Err(_) => OTHER,
        }
    }

    /// An MCP session ended after `seconds`.
    pub fn session_ended(&self, transport: SessionTransport, seconds: f64) {
        let network_transport = match transport {
            SessionTransport::Tcp => "tcp",
            SessionTransport::Pipe => "pipe",
        };
        self.session
            .get_or_create(&SessionLabels { network_transport })
            .observe(labels::seconds(seconds));
    }

    /// One request to Port (one attempt) to `route` (a template), answered with `status`, or
    /// without an answer (`None`: connection failure, timeout).
    pub fn port_request(
        &self,
        method: &'static str,
        route: &'static str,
        status: Option<u16>,
        seconds: f64,
    ) {
        let labels = RequestLabels {
            http_request_method: method,
            route,
            status_class: labels::status_class(status),
        };
        self.port_request
            .get_or_create(&labels)
            .observe(labels::seconds(seconds));
    }

    /// A request to Port is sent again because of `cause` (see `port::retry`).
    pub fn port_retry(&self, cause: &'static str) {
        self.port_retries
            .get_or_create(&CauseLabels { cause })
            .inc();
    }

    /// Counts a call holding a slot for requests to Port until the guard drops.
    pub fn port_in_flight(&self) -> InFlight<'_> {
        self.port_in_flight.inc();
        InFlight(&self.port_in_flight)
    }

    /// A call waited `seconds` for a slot to send to Port (whether or not it got one).
    pub fn port_queue_wait(&self, seconds: f64) {
        self.port_queue_wait.observe(labels::seconds(seconds));
    }

    /// A call was refused because `limit` was full.
    pub fn busy(&self, limit: Busy) {
        self.busy
            .get_or_create(&ReasonLabels {
                reason: limit.as_str(),
            })
            .inc();
    }

    /// A client-credentials exchange ended so; `refreshing` when it was to replace a token.
    pub fn token_exchange(&self, outcome: Exchange, refreshing: bool) {
        self.token_exchanges
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
        if refreshing && outcome != Exchange::Ok {
            self.token_refresh_failures.inc();
        }
    }

    /// A mapping config was checked: so many expressions refused, so many unchecked.
    pub fn mapping_checked(&self, refused: usize, unchecked: usize) {
        self.mapping_checks.inc();
        self.mapping_refused
            .inc_by(u64::try_from(refused).unwrap_or(u64::MAX));
        self.mapping_unchecked
            .inc_by(u64::try_from(unchecked).unwrap_or(u64::MAX));
    }

    /// The same metrics, with the trace exporter's counts (`trace_spans_*_total`) read from
    /// `read` at each scrape: spans exported, dropped, failed.
    pub fn with_span_counts(mut self, read: impl Fn() -> [u64; 3] + Send + Sync + 'static) -> Self {
        spans::register(&mut self.registry, Box::new(read));
        self
    }

    /// The scrape: every family in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            // Only a failing `fmt::Write`, which a `String` never is; still, say so.
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        text
    }
}

/// A call counted in `port_requests_in_flight`, until dropped.
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_names_do_not_make_series() {
        let m = Metrics::new(["get-integration"]);
        m.operation("tools/call", Some("get-integration"), None, 0.1);
        for name in ["x", "get-integration ", "../etc", "a\"b\nc"] {
            m.operation("tools/call", Some(name), Some("-99999"), f64::NAN);
            m.operation(name, None, Some(name), f64::INFINITY);
        }
        let text = m.encode();
        let mut series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("mcp_server_operation_duration_seconds_count"))
            .collect();
        series.sort_unstable();
        assert_eq!(
            series,
            [
                r#"mcp_server_operation_duration_seconds_count{mcp_method_name="_OTHER",gen_ai_tool_name="",error_type="_OTHER"} 4"#,
                r#"mcp_server_operation_duration_seconds_count{mcp_method_name="tools/call",gen_ai_tool_name="_OTHER",error_type="_OTHER"} 4"#,
                r#"mcp_server_operation_duration_seconds_count{mcp_method_name="tools/call",gen_ai_tool_name="get-integration",error_type=""} 1"#,
            ]
        );
        assert!(!text.contains("etc"), "{text}");
        assert!(!text.contains("NaN") && !text.contains("Inf\n"), "{text}");
    }

    #[test]
    fn in_flight_goes_down_when_the_guard_drops() {
        let m = Metrics::new([]);
        let a = m.port_in_flight();
        let b = m.port_in_flight();
        assert_eq!(m.port_in_flight.get(), 2);
        drop(a);
        drop(b);
        assert_eq!(m.port_in_flight.get(), 0);
    }

    #[test]
    fn refresh_failures_count_only_failed_refreshes() {
        let m = Metrics::new([]);
        m.token_exchange(Exchange::Ok, true);
        m.token_exchange(Exchange::Refused, false);
        m.token_exchange(Exchange::Unreachable, true);
        assert_eq!(m.token_refresh_failures.get(), 1);
        let text = m.encode();
        assert!(
            text.contains("port_token_exchanges_total{outcome=\"ok\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("port_token_refresh_failures_total 1\n"),
            "{text}"
        );
    }
}
