//! Prometheus metrics (issue 13, metrics slice): to be filled in.

/// The server's metric families.
pub struct Metrics {}

impl Metrics {
    /// One MCP request served: its method (`tools/call`, `tools/list`, ...), the tool it
    /// named, its `error.type` (see `tools::audit::Outcome::error_type`) and how long it took.
    pub fn operation(
        &self,
        method: &str,
        tool: Option<&str>,
        error_type: Option<&str>,
        seconds: f64,
    ) {
        let _ = (method, tool, error_type, seconds);
    }
}
