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

/// One malloc arena, set before any thread allocates. glibc gives each thread that contends
/// for the heap an arena of its own, and each keeps the high-water mark of what passed through
/// it: a 2 MB answer handled on one thread and freed on another left about 5 to 8 times its
/// size resident (`cargo bench`). One arena keeps it near 3 times, at the same HTTP throughput
/// and within noise of the same stdio throughput.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("GLIBC_TUNABLES").is_none() {
        // SAFETY: mallopt only changes allocator settings; it is called before any other
        // thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let port_integrations_mcp::config::Command::JqWorker = cli.command {
        // A preview's worker process: no runtime, no logging, just the job.
        return ExitCode::from(
            u8::try_from(port_integrations_mcp::mapping::worker::worker_main()).unwrap_or(1),
        );
    }
    one_malloc_arena();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => {
            let code = runtime.block_on(serve(cli));
            // Calls still running past the shutdown grace (on blocking threads, or work that
            // never yields) would hold the runtime's drop forever: it is not waited for.
            runtime.shutdown_timeout(std::time::Duration::from_millis(500));
            code
        }
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "port-integrations-mcp: cannot start: {e}"
            );
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> ExitCode {
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
