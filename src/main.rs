//! Entry point: parse the command line, send logs to stderr (`telemetry::logs`), run.

use std::{io::Write, process::ExitCode};

use clap::Parser;
use port_integrations_mcp::{
    config::{Cli, LogFormat},
    telemetry::logs,
};

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
    let json = cli.audit.log_format == LogFormat::Json;
    logs::init(&cli.log_level, json);
    match port_integrations_mcp::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = anyhow::Error::from(e);
            if !json {
                tracing::error!("{e:#}");
            }
            logs::fatal(&format!("{e:#}"), json);
            ExitCode::FAILURE
        }
    }
}
