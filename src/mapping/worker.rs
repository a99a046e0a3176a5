//! Previews run in a child process: the only way to bound what a caller's jq may do.
//!
//! jaq has no fuel, no interrupt and no allocation limit: `until(false; .)` never returns,
//! `[range(1e8)]` takes 1.5 GB, `def f: [f]; f` overflows any stack and `halt` was wired to
//! exit the process. None of that may touch the server. So each preview runs in a worker
//! process (this same binary, hidden subcommand `__jq-worker`), which reads the job on stdin
//! and writes the result as JSON on stdout, under an address-space and CPU rlimit, a wall-clock
//! deadline and an output cap; it is killed when the call ends early (cancelled, client gone,
//! server shutting down) and when the server dies (`PR_SET_PDEATHSIG`). A few slots bound how
//! many run at once. The worker inherits no environment, so no credential reaches it.

use std::{io::Read, path::PathBuf, process::Stdio};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{JqSlots, MappingLimits, preview};

/// The worker's jq stack. Parsing within the depth limit needs far less; a runaway recursion at
/// run time overflows it quickly and ends the worker, and it leaves most of the address-space
/// limit to the heap.
const WORKER_STACK_BYTES: usize = 64 * 1024 * 1024;

/// The smallest address-space limit given to a worker: the stack above, the program, some heap.
const MIN_WORKER_MEMORY_MB: u64 = 256;

/// The subcommand that runs one preview.
pub const WORKER_COMMAND: &str = "__jq-worker";

/// What the worker is asked to do.
#[derive(Debug, Serialize, Deserialize)]
pub struct Job {
    /// The config (whole, or one resource).
    pub config: Value,
    /// Only the resources of this kind.
    pub kind: Option<String>,
    /// Sample items.
    pub items: Vec<Value>,
    /// Longest expression accepted, in bytes.
    pub max_expression_bytes: usize,
    /// Deepest nesting accepted.
    pub max_depth: usize,
}

/// What the worker answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Answer {
    /// The preview.
    Ok(Value),
    /// The config cannot be previewed (the message says why).
    Invalid(String),
}

/// Why a preview gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreviewError {
    /// The config or its expressions cannot be previewed.
    #[error("{0}")]
    Invalid(String),
    /// Every preview slot stayed taken until the deadline.
    #[error(
        "the server is busy with other previews (at most {concurrent} run at once: \
         --jq-max-concurrent / PORT_JQ_MAX_CONCURRENT); retry in a moment"
    )]
    Busy {
        /// Previews allowed at once.
        concurrent: usize,
    },
    /// The worker ran past the time limit and was killed.
    #[error(
        "the preview did not finish within {secs} s and was stopped: an expression may never \
         end (e.g. `until(false; .)`, `last(range(1e18))`, a recursive `def`). Limit: \
         --preview-timeout-secs / PORT_PREVIEW_TIMEOUT_SECS"
    )]
    Timeout {
        /// The limit, in seconds.
        secs: u64,
    },
    /// The result is larger than allowed.
    #[error(
        "the preview's result exceeds {limit} bytes and was dropped: preview fewer items or \
         resources (--preview-max-output-bytes / PORT_PREVIEW_MAX_OUTPUT_BYTES)"
    )]
    OutputTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The worker died: out of memory, out of stack, out of CPU time.
    #[error("the preview was stopped: {0}")]
    Stopped(String),
    /// The worker could not be run.
    #[error("the preview could not run: {0}")]
    Internal(String),
}

/// The worker's side: reads a [`Job`] on stdin, writes its [`Answer`] on stdout. Returns the
/// process's exit code.
pub fn worker_main() -> i32 {
    let mut input = Vec::new();
    if std::io::stdin().read_to_end(&mut input).is_err() {
        return 2;
    }
    let job: Job = match serde_json::from_slice(&input) {
        Ok(job) => job,
        Err(_) => return 2,
    };
    drop(input);
    // jaq recurses per nesting level, when parsing and when running: a big stack, and a
    // stack overflow beyond it ends only this process.
    let handle = std::thread::Builder::new()
        .name("jq-worker".into())
        .stack_size(WORKER_STACK_BYTES)
        .spawn(move || {
            let limits = MappingLimits {
                max_expression_bytes: job.max_expression_bytes,
                max_depth: job.max_depth,
                ..MappingLimits::default()
            };
            match preview::preview(&job.config, job.kind.as_deref(), &job.items, &limits) {
                Ok(v) => Answer::Ok(v),
                Err(m) => Answer::Invalid(m),
            }
        });
    let answer = match handle.map(|h| h.join()) {
        Ok(Ok(answer)) => answer,
        _ => return 3,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match serde_json::to_writer(&mut out, &answer) {
        Ok(()) => 0,
        Err(_) => 4,
    }
}

/// Runs one preview in a worker process, within the limits; waits for a preview slot first.
pub async fn run(
    job: &Job,
    limits: &MappingLimits,
    slots: &JqSlots,
) -> Result<Value, PreviewError> {
    let secs = limits.preview_timeout().as_secs();
    // A slot is waited for up to half the time limit: past that, "busy" is the useful answer.
    let wait = limits.preview_timeout() / 2;
    let _permit = match tokio::time::timeout(wait, slots.previews.clone().acquire_owned()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) => {
            return Err(PreviewError::Internal(
                "the preview slots are closed".into(),
            ));
        }
        Err(_) => {
            return Err(PreviewError::Busy {
                concurrent: limits.max_concurrent.max(1),
            });
        }
    };
    let program = match &limits.preview_worker {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| PreviewError::Internal(format!("cannot find this program: {e}")))?,
    };
    let job = serde_json::to_vec(job).map_err(|e| PreviewError::Internal(e.to_string()))?;
    match tokio::time::timeout(limits.preview_timeout(), run_child(program, job, limits)).await {
        Ok(outcome) => outcome,
        // Dropping the child's future killed it (`kill_on_drop`).
        Err(_) => Err(PreviewError::Timeout { secs }),
    }
}

async fn run_child(
    program: PathBuf,
    job: Vec<u8>,
    limits: &MappingLimits,
) -> Result<Value, PreviewError> {
    let memory = limits
        .preview_max_memory_mb
        .max(MIN_WORKER_MEMORY_MB)
        .saturating_mul(1024 * 1024);
    let cpu = limits.preview_timeout().as_secs().saturating_add(1);
    let mut command = tokio::process::Command::new(&program);
    command
        .arg(WORKER_COMMAND)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: between fork and exec only async-signal-safe calls (setrlimit, prctl) run.
    unsafe {
        command.pre_exec(move || {
            let set = |resource, value: u64| {
                let limit = libc::rlimit {
                    rlim_cur: value as libc::rlim_t,
                    rlim_max: value as libc::rlim_t,
                };
                if libc::setrlimit(resource, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            };
            set(libc::RLIMIT_AS, memory)?;
            set(libc::RLIMIT_CPU, cpu)?;
            set(libc::RLIMIT_CORE, 0)?;
            #[cfg(target_os = "linux")]
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| PreviewError::Internal(format!("cannot start {}: {e}", program.display())))?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(PreviewError::Internal("the worker has no pipes".into()));
    };
    let limit = limits.preview_max_output_bytes;
    let write = async move {
        // A worker that dies early closes its stdin; its exit status says why.
        let _ = stdin.write_all(&job).await;
        let _ = stdin.shutdown().await;
    };
    let read = async move {
        let mut out = Vec::new();
        let mut bounded = stdout.take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1));
        bounded.read_to_end(&mut out).await.map(|_| out)
    };
    // What the worker said when it died (a Rust abort names the cause); the rest is dropped.
    let read_err = async move {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        let mut stderr = stderr;
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if kept.len() < 8192 {
                kept.extend_from_slice(&buf[..n]);
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    };
    let ((), out, err) = tokio::join!(write, read, read_err);
    let out = out.map_err(|e| PreviewError::Internal(format!("reading the worker: {e}")))?;
    if out.len() > limit {
        let _ = child.start_kill();
        return Err(PreviewError::OutputTooLarge { limit });
    }
    let status = child
        .wait()
        .await
        .map_err(|e| PreviewError::Internal(format!("waiting for the worker: {e}")))?;
    if status.success() {
        return match serde_json::from_slice::<Answer>(&out) {
            Ok(Answer::Ok(v)) => Ok(v),
            Ok(Answer::Invalid(m)) => Err(PreviewError::Invalid(m)),
            Err(e) => Err(PreviewError::Internal(format!(
                "the worker's answer is not readable: {e}"
            ))),
        };
    }
    Err(PreviewError::Stopped(why_stopped(&status, &err, limits)))
}

/// Why the worker died, in the caller's terms.
fn why_stopped(status: &std::process::ExitStatus, stderr: &str, limits: &MappingLimits) -> String {
    use std::os::unix::process::ExitStatusExt;
    if stderr.contains("memory allocation") || stderr.contains("capacity overflow") {
        return format!(
            "it needed more than {} MiB of memory (e.g. `[range(1e8)]`, `\"x\" * 1e9`). Limit: \
             --preview-max-memory-mb / PORT_PREVIEW_MAX_MEMORY_MB",
            limits.preview_max_memory_mb
        );
    }
    if stderr.contains("overflowed its stack") {
        return "an expression recursed too deeply (e.g. `def f: [f]; f`, or a `reduce` that \
                nests its result at every step)"
            .into();
    }
    match status.signal() {
        Some(libc::SIGXCPU) | Some(libc::SIGKILL) => format!(
            "it used more than {} s of CPU time. Limit: --preview-timeout-secs / \
             PORT_PREVIEW_TIMEOUT_SECS",
            limits.preview_timeout().as_secs()
        ),
        Some(signal) => format!(
            "the worker process ended with signal {signal} (out of memory or stack, most likely)"
        ),
        None if status.code() == Some(2) => "the worker could not read the job: the config \
            or the items are nested more than about 125 levels deep"
            .into(),
        None => format!(
            "the worker process failed (exit code {})",
            status.code().unwrap_or(-1)
        ),
    }
}
