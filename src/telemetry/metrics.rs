//! Prometheus metrics (issue 13, metrics slice): to be filled in.

/// The server's metric families.
pub struct Metrics {}
