//! Entry point: parse the command line, send logs to stderr, run.

use std::{
    io::{IsTerminal, Write},
    process::ExitCode,
};

use clap::Parser;
use port_integrations_mcp::config::Cli;
use tracing_subscriber::EnvFilter;

/// stderr that never fails. Some hosts close the server's stderr; a failed log write must not
/// become an error: tracing-subscriber reports one with `eprintln!`, which panics on a closed
/// stderr and takes down whichever task was logging (a tool call, or the shutdown sequence).
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr in every mode: on stdio, stdout belongs to the protocol.
    let filter = EnvFilter::try_new(&cli.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(|| Stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
    match port_integrations_mcp::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = anyhow::Error::from(e);
            tracing::error!("{e:#}");
            let _ = writeln!(std::io::stderr(), "port-integrations-mcp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
