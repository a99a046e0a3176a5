//! The `--audit-log` file. Lines are appended and fsynced by a thread of their own, one line,
//! one fsync: a call waits for its line without holding a runtime worker, and answers only once
//! the line is on disk, so killing the server loses no line a call was answered after.
//!
//! Every wait is bounded: the queue to the thread holds at most [`QUEUE_LINES`] lines (a line
//! that finds it full is not waited for), and a call waits at most [`WRITE_DEADLINE`] for its
//! fsync. A line that did not reach the disk is logged in full on stderr by the caller.

use std::{
    fs::File,
    io::{self, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};

/// Lines waiting for the writer thread, at most. Each call waits for its own line, so the
/// queue holds about as many lines as write calls are finishing at once.
pub const QUEUE_LINES: usize = 1024;

/// The longest a call waits for its line to be on disk.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// The audit log could not be opened at start.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot open the audit log {path} (--audit-log / PORT_MCP_AUDIT_LOG) for appending: {reason}"
)]
pub struct OpenError {
    /// The path, as given.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// Why one line did not reach the disk.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Writing or syncing failed.
    #[error("writing it failed: {0}")]
    Io(#[from] io::Error),
    /// The thread did not report the line durable in time (a hung disk or network file system).
    #[error("it was not on disk within {0:?} (the audit log's write deadline)")]
    Deadline(Duration),
    /// Too many lines were waiting for the disk.
    #[error("{0} lines were already waiting for the disk (the audit log's queue limit)")]
    QueueFull(usize),
    /// The writer thread is gone.
    #[error("the audit log's writer thread has stopped")]
    Stopped,
}

/// Where the writer thread puts a line; [`AppendFile`] outside tests.
pub(crate) trait Durable: Send + 'static {
    /// Appends `line` (newline included) and returns once it is on disk.
    fn append(&mut self, line: &[u8]) -> io::Result<()>;
}

/// The audit file, opened for appending.
struct AppendFile(File);

impl Durable for AppendFile {
    fn append(&mut self, line: &[u8]) -> io::Result<()> {
        let before = self.0.metadata()?.len();
        let written = self.0.write_all(line).and_then(|()| self.0.sync_data());
        if written.is_err() {
            // A line cut short would run into the next one; the caller logs it on stderr.
            let _ = self.0.set_len(before);
        }
        written
    }
}

struct Job {
    line: Vec<u8>,
    done: oneshot::Sender<io::Result<()>>,
}

/// The open audit log: a queue to its writer thread.
pub(crate) struct FileLog {
    path: PathBuf,
    jobs: mpsc::Sender<Job>,
    queue: usize,
    deadline: Duration,
}

impl FileLog {
    /// Opens `path` for appending (created with mode 0600) and starts its writer thread.
    pub(crate) fn open(path: &Path) -> Result<Self, OpenError> {
        let refused = |reason: String| OpenError {
            path: path.display().to_string(),
            reason,
        };
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Non-blocking: a FIFO without a reader fails at once instead of hanging the start.
            options.mode(0o600).custom_flags(libc::O_NONBLOCK);
        }
        let file = options.open(path).map_err(|e| refused(e.to_string()))?;
        let meta = file.metadata().map_err(|e| refused(e.to_string()))?;
        if !meta.is_file() {
            return Err(refused(
                "it is not a regular file (each line is fsynced; pipes and devices cannot be)"
                    .into(),
            ));
        }
        Self::start(AppendFile(file), path, QUEUE_LINES, WRITE_DEADLINE)
            .map_err(|e| refused(format!("cannot start its writer thread: {e}")))
    }

    /// A log writing into `durable`, with these bounds.
    pub(crate) fn start(
        mut durable: impl Durable,
        path: &Path,
        queue: usize,
        deadline: Duration,
    ) -> io::Result<Self> {
        let (jobs, mut pending) = mpsc::channel::<Job>(queue.max(1));
        let shown = path.display().to_string();
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || {
                // Ends when the sink is dropped and the queue is empty.
                while let Some(job) = pending.blocking_recv() {
                    let written = durable.append(&job.line);
                    if let Err(Err(e)) = job.done.send(written) {
                        // Nobody waits for this line any more (a cancelled call, or one past the
                        // deadline): say so here, with the line.
                        tracing::error!(
                            target: "audit",
                            path = %shown,
                            error = %e,
                            line = %String::from_utf8_lossy(job.line.trim_ascii_end()),
                            "an audit line could not be written to --audit-log"
                        );
                    }
                }
            })?;
        Ok(FileLog {
            path: path.to_path_buf(),
            jobs,
            queue: queue.max(1),
            deadline,
        })
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `line` without waiting: once queued it is written even if the caller goes away.
    fn queue(&self, line: Vec<u8>) -> Result<oneshot::Receiver<io::Result<()>>, AppendError> {
        let (done, written) = oneshot::channel();
        match self.jobs.try_send(Job { line, done }) {
            Ok(()) => Ok(written),
            Err(mpsc::error::TrySendError::Full(_)) => Err(AppendError::QueueFull(self.queue)),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(AppendError::Stopped),
        }
    }

    /// Appends `line` and returns once it is on disk, or why it is not.
    pub(crate) async fn append(&self, line: Vec<u8>) -> Result<(), AppendError> {
        let written = self.queue(line)?;
        match tokio::time::timeout(self.deadline, written).await {
            Ok(Ok(result)) => Ok(result?),
            Ok(Err(_)) => Err(AppendError::Stopped),
            Err(_) => Err(AppendError::Deadline(self.deadline)),
        }
    }

    /// Queues `line` for a call nobody waits for any more; the thread reports its failure.
    pub(crate) fn append_detached(&self, line: Vec<u8>) -> Result<(), AppendError> {
        self.queue(line).map(drop)
    }
}
