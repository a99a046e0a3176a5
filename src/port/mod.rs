//! The Port API client: one shared HTTP connection pool, credentials, and Port's error shapes.
//!
//! Everything that knows how Port answers lives here; the tools only build a [`PortRequest`]
//! and hand the outcome to `tools::result`.

mod auth;
mod client;
mod error;
pub mod json;
pub mod redact;
mod request;
mod retry;
pub mod trace;

pub use client::{
    CallContext, LastCall, PortClient, PortResponse, USER_AGENT, install_crypto_provider,
};
pub use error::{ApiFailure, PortError};
pub use request::{Method, PortRequest};
pub use retry::{Attempt, RetryPolicy};
