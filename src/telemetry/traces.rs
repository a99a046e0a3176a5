//! OpenTelemetry traces (issue 13, traces slice): to be filled in.

/// The server's tracer and exporter.
pub struct Traces {}
