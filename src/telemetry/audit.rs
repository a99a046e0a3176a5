//! The audit trail's destination (issue 13, audit slice): to be filled in.

/// Where audit lines go.
#[derive(Default)]
pub struct Sink {}
