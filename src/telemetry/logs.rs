//! Where and how log lines are written: stderr only, in every mode (on stdio, stdout belongs to
//! the protocol), as text or as one JSON object per line (`--log-format json`), for log
//! pipelines that parse rather than grep. Audit lines are log events with target `audit` and
//! follow the same format.

use std::io::{IsTerminal, Write};

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

/// Installs the process's log subscriber: `filter` in tracing's `EnvFilter` syntax (`info` if
/// it does not parse), JSON lines when `json`.
pub fn init(filter: &str, json: bool) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_writer(|| Stderr)
        .with_env_filter(filter);
    if json {
        // The event's own fields under `fields`, its spans under `spans`: a field can never
        // collide with `timestamp`, `level` or `target`.
        logs.json().with_ansi(false).init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// The last word of a process that could not start or stopped with an error, on stderr
/// whatever the log filter: a plain line, or a JSON one shaped like the other log lines.
pub fn fatal(message: &str, json: bool) {
    let line = if json {
        let time = super::now_rfc3339(chrono::SecondsFormat::Micros);
        let mut line = serde_json::json!({
            "timestamp": time,
            "level": "ERROR",
            "fields": {"message": message},
            "target": "port_integrations_mcp",
        })
        .to_string();
        line.push('\n');
        line
    } else {
        format!("port-integrations-mcp: {message}\n")
    };
    let _ = std::io::stderr().write_all(line.as_bytes());
}
