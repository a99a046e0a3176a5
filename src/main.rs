//! Entry point: parse the command line, send logs to stderr, run.

use std::{io::IsTerminal, process::ExitCode};

use clap::Parser;
use port_integrations_mcp::config::Cli;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr in every mode: on stdio, stdout belongs to the protocol.
    let filter = EnvFilter::try_new(&cli.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
    match port_integrations_mcp::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = anyhow::Error::from(e);
            tracing::error!("{e:#}");
            eprintln!("port-integrations-mcp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
