//! The integration test binary: the server driven through rmcp's own MCP client against the
//! in-process fake Port (`port_integrations_mcp::sandbox`), which records every request.
//! One binary, topic modules (as ripgrep does), so the crate links once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod access;
mod audit;
mod auth;
mod deploy;
mod errors;
mod guide;
mod guide_story;
mod hostile_args;
mod hostile_conn;
mod hostile_jq;
mod hostile_port;
mod http;
mod issuer;
mod lean;
mod lifecycle;
mod mapping;
mod metrics;
mod modes;
mod oauth;
mod resilience;
mod rest;
mod resync;
mod sandbox_sync;
mod stdio;
mod surface;
mod sync;
mod tools;
mod traces;
mod troubleshoot;
mod validation;
