//! The audit trail: one structured line for every call of a tool that changes Port, to answer
//! "who deleted that integration, when, and what did Port say?" after the fact.
//!
//! A line goes to stderr as a log event with target `audit` (so it is filtered, formatted and
//! shipped with the other logs, as JSON with `--log-format json`), or, with `--audit-log FILE`,
//! to that file only, as one JSON object per line, fsynced before the call answers
//! ([`file`]). Its fields, in this order:
//!
//! | field | value |
//! |---|---|
//! | `time` | when the call ended, RFC 3339 UTC with milliseconds |
//! | `caller` | the OAuth `sub`; else `static token`, `stdio` or `unauthenticated` |
//! | `auth` | how the call was admitted: `oauth`, `static token`, `stdio` or `none` |
//! | `sub`, `client_id` | the OAuth token's subject and client (`null` without OAuth) |
//! | `transport` | `http` (MCP over HTTP), `stdio` or `rest` |
//! | `tool` | the tool called (for a REST write refused before routing: `METHOD /path`) |
//! | `identifier` | the integration the arguments name, or `null` |
//! | `args_sha256` | the digest of the arguments ([`digest`]), or `null` |
//! | `outcome` | `ok`, `error`, `refused`, `task` or `cancelled` |
//! | `port_status` | the HTTP status of Port's answer to the last write request, or `null` |
//! | `port_trace_id` | that answer's `x-trace-id`, or `null` |
//!
//! Every value from outside (token claims, arguments, Port's header) is JSON-escaped and cut
//! to [`MAX_FIELD_BYTES`] (marked with a trailing `…`), so a line never exceeds
//! [`MAX_LINE_BYTES`] and never holds more than it names: no argument values, no secrets.

pub mod digest;
pub mod file;

use std::{borrow::Cow, path::Path};

use serde::Serialize;

pub use digest::ArgsDigest;
pub use file::OpenError;

/// The most bytes of one outside value a line keeps.
pub const MAX_FIELD_BYTES: usize = 256;

/// The longest a line can be (newline included): every field at its cap, each byte escaped
/// as `\u00XX`, fits with room to spare.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

const _: () = assert!(6 * (MAX_FIELD_BYTES + 4) * 6 + 1024 <= MAX_LINE_BYTES);

/// What one audit line says, as the call site knows it (values not yet cut or escaped).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Who: the OAuth `sub`, else `static token`, `stdio` or `unauthenticated`.
    pub caller: &'a str,
    /// How the call was admitted: `oauth`, `static token`, `stdio` or `none`.
    pub auth: &'a str,
    /// The OAuth token's subject.
    pub sub: Option<&'a str>,
    /// The OAuth token's client.
    pub client_id: Option<&'a str>,
    /// `http`, `stdio` or `rest`.
    pub transport: &'a str,
    /// The tool.
    pub tool: &'a str,
    /// The integration the arguments name.
    pub identifier: Option<&'a str>,
    /// The digest of the arguments.
    pub args_sha256: Option<ArgsDigest>,
    /// How the call ended.
    pub outcome: &'a str,
    /// The status of Port's answer to the call's last write request.
    pub port_status: Option<u16>,
    /// That answer's `x-trace-id`.
    pub port_trace_id: Option<&'a str>,
}

/// One line, bounded and ready to write.
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    caller: Cow<'a, str>,
    auth: &'a str,
    sub: Option<Cow<'a, str>>,
    client_id: Option<Cow<'a, str>>,
    transport: &'a str,
    tool: Cow<'a, str>,
    identifier: Option<Cow<'a, str>>,
    args_sha256: Option<String>,
    outcome: &'a str,
    port_status: Option<u16>,
    port_trace_id: Option<Cow<'a, str>>,
}

impl<'a> Line<'a> {
    fn new(r: &Record<'a>) -> Self {
        Line {
            time: super::now_rfc3339(chrono::SecondsFormat::Millis),
            caller: bounded(r.caller),
            auth: r.auth,
            sub: r.sub.map(bounded),
            client_id: r.client_id.map(bounded),
            transport: r.transport,
            tool: bounded(r.tool),
            identifier: r.identifier.map(bounded),
            args_sha256: r.args_sha256.map(|d| d.to_string()),
            outcome: r.outcome,
            port_status: r.port_status,
            port_trace_id: r.port_trace_id.map(bounded),
        }
    }

    /// The JSON line, newline included.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        // Strings, numbers and nulls only: serializing cannot fail.
        let _ = serde_json::to_writer(&mut out, self);
        out.push(b'\n');
        out
    }
}

/// Logs `line` on stderr, through the logs (target `audit`); the fields are plain strings and
/// numbers, so the JSON log format keeps their types and the text format quotes them.
macro_rules! log_line {
    ($level:ident, $line:expr, $($rest:tt)+) => {{
        let l = $line;
        tracing::$level!(
            target: "audit",
            time = l.time.as_str(),
            caller = &*l.caller,
            auth = l.auth,
            sub = l.sub.as_deref(),
            client_id = l.client_id.as_deref(),
            transport = l.transport,
            tool = &*l.tool,
            identifier = l.identifier.as_deref(),
            args_sha256 = l.args_sha256.as_deref(),
            outcome = l.outcome,
            port_status = l.port_status,
            port_trace_id = l.port_trace_id.as_deref(),
            $($rest)+
        )
    }};
}

/// Where audit lines go: stderr (the [`Default`]) or an `--audit-log` file.
#[derive(Default)]
pub struct Sink {
    file: Option<file::FileLog>,
}

impl Sink {
    /// Lines to the file at `path` (opened now, for appending), or to stderr without one.
    pub fn new(path: Option<&Path>) -> Result<Self, OpenError> {
        let file = path.map(file::FileLog::open).transpose()?;
        if let Some(file) = &file {
            tracing::info!(path = %file.path().display(), "audit lines go to --audit-log");
        }
        Ok(Sink { file })
    }

    /// The audit log file, if lines go to one.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(file::FileLog::path)
    }

    /// Writes one line, and returns once it is on disk (with a file) or logged. A line the
    /// file did not take is logged on stderr, at error level, with why; the call still answers:
    /// what it did at Port is done, and hiding that from the caller would only invite a retry.
    pub async fn write(&self, record: &Record<'_>) {
        let line = Line::new(record);
        let Some(file) = &self.file else {
            log_line!(info, &line, "write call");
            return;
        };
        if let Err(e) = file.append(line.to_bytes()).await {
            self.not_written(&line, &e);
        }
    }

    /// Writes one line without waiting for it: for a call that was cancelled, which nobody
    /// waits for any more.
    pub fn write_detached(&self, record: &Record<'_>) {
        let line = Line::new(record);
        let Some(file) = &self.file else {
            log_line!(info, &line, "write call");
            return;
        };
        if let Err(e) = file.append_detached(line.to_bytes()) {
            self.not_written(&line, &e);
        }
    }

    fn not_written(&self, line: &Line<'_>, why: &file::AppendError) {
        let path = self.path().map(Path::display);
        log_line!(
            error,
            line,
            path = %path.map(|p| p.to_string()).unwrap_or_default(),
            error = %why,
            "write call: this audit line is not in --audit-log"
        );
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").field("file", &self.path()).finish()
    }
}

/// At most [`MAX_FIELD_BYTES`] of `value`, cut at a character boundary and marked with `…`.
fn bounded(value: &str) -> Cow<'_, str> {
    if value.len() <= MAX_FIELD_BYTES {
        return Cow::Borrowed(value);
    }
    let mut end = MAX_FIELD_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &value[..end]))
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::{Arc, Mutex},
        time::Duration,
    };

    use super::*;

    /// A disk for the writer thread: keeps lines, fails or hangs on request.
    #[derive(Clone, Default)]
    struct Disk {
        lines: Arc<Mutex<Vec<Vec<u8>>>>,
        fail: Arc<Mutex<bool>>,
        /// While true, the disk hangs.
        hang: Arc<(Mutex<bool>, std::sync::Condvar)>,
        /// Lines the thread started writing.
        entered: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl file::Durable for Disk {
        fn append(&mut self, line: &[u8]) -> io::Result<()> {
            self.entered
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let (hung, changed) = &*self.hang;
            let mut hung = hung.lock().unwrap();
            while *hung {
                hung = changed.wait(hung).unwrap();
            }
            drop(hung);
            if *self.fail.lock().unwrap() {
                return Err(io::Error::other("no space left on device"));
            }
            self.lines.lock().unwrap().push(line.to_vec());
            Ok(())
        }
    }

    fn sink(disk: &Disk, queue: usize, deadline: Duration) -> Sink {
        let log = file::FileLog::start(disk.clone(), Path::new("/audit.log"), queue, deadline);
        Sink {
            file: Some(log.unwrap()),
        }
    }

    fn record<'a>(identifier: &'a str, sub: &'a str) -> Record<'a> {
        Record {
            caller: sub,
            auth: "oauth",
            sub: Some(sub),
            client_id: Some(sub),
            transport: "http",
            tool: sub,
            identifier: Some(identifier),
            args_sha256: None,
            outcome: "ok",
            port_status: Some(200),
            port_trace_id: Some(sub),
        }
    }

    #[tokio::test]
    async fn a_line_is_one_json_object_with_every_field_in_order() {
        let disk = Disk::default();
        let sink = sink(&disk, 4, Duration::from_secs(5));
        let mut r = record("github-ocean", "alice");
        r.args_sha256 = Some(ArgsDigest::of(&serde_json::Map::new()));
        sink.write(&r).await;
        let lines = disk.lines.lock().unwrap().clone();
        assert_eq!(lines.len(), 1);
        let text = String::from_utf8(lines[0].clone()).unwrap();
        assert!(text.ends_with("}\n") && text.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = [
            "time",
            "caller",
            "auth",
            "sub",
            "client_id",
            "transport",
            "tool",
            "identifier",
            "args_sha256",
            "outcome",
            "port_status",
            "port_trace_id",
        ];
        // serde_json's map sorts keys; the line's own order is checked on the text.
        let positions: Vec<usize> = expected
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(positions.is_sorted(), "{text}");
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(
            v["args_sha256"],
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        let time = v["time"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
        assert_eq!(time.len(), "2026-12-01T15:47:46.123Z".len(), "{time}");
        assert!(time.ends_with('Z'));
    }

    #[tokio::test]
    async fn hostile_values_are_escaped_cut_and_bounded() {
        let disk = Disk::default();
        let sink = sink(&disk, 4, Duration::from_secs(5));
        // Every byte escapes to six, every field at length, a forged line inside.
        let nasty = "\u{1}\n{\"outcome\":\"ok\"}\"\\".repeat(200);
        let r = record(&nasty, &nasty);
        sink.write(&r).await;
        let line = disk.lines.lock().unwrap()[0].clone();
        assert!(line.len() <= MAX_LINE_BYTES, "{}", line.len());
        let text = String::from_utf8(line).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "one line: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for field in [
            "caller",
            "sub",
            "client_id",
            "tool",
            "identifier",
            "port_trace_id",
        ] {
            let kept = v[field].as_str().unwrap();
            assert!(kept.ends_with('…'), "{field}: {kept}");
            assert_eq!(kept.len(), MAX_FIELD_BYTES + '…'.len_utf8(), "{field}");
            assert!(nasty.starts_with(kept.trim_end_matches('…')));
        }
        assert_eq!(v["outcome"], "ok");
        // Cut at a character boundary.
        assert_eq!(bounded(&"é".repeat(200)).len(), 256 + 3);
        assert_eq!(bounded(&format!("a{}", "é".repeat(200))).len(), 255 + 3);
        assert_eq!(bounded("short"), "short");
    }

    #[tokio::test]
    async fn a_failed_disk_write_is_reported_and_the_call_goes_on() {
        let disk = Disk::default();
        *disk.fail.lock().unwrap() = true;
        let sink = sink(&disk, 4, Duration::from_secs(5));
        let log = sink.file.as_ref().unwrap();
        let e = log.append(b"{}\n".to_vec()).await.unwrap_err();
        assert_eq!(e.to_string(), "writing it failed: no space left on device");
        // The sink logs it and returns.
        sink.write(&record("x", "y")).await;
        assert!(disk.lines.lock().unwrap().is_empty());
        *disk.fail.lock().unwrap() = false;
        sink.write(&record("x", "y")).await;
        assert_eq!(disk.lines.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_hung_disk_costs_a_call_the_deadline_and_a_full_queue_nothing() {
        let disk = Disk::default();
        let sink = sink(&disk, 2, Duration::from_millis(200));
        let log = sink.file.as_ref().unwrap();
        let hang = |on: bool| {
            *disk.hang.0.lock().unwrap() = on;
            disk.hang.1.notify_all();
        };
        hang(true);
        // The thread takes the first line and hangs on it.
        log.append_detached(b"1\n".to_vec()).unwrap();
        for _ in 0..500 {
            if disk.entered.load(std::sync::atomic::Ordering::SeqCst) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(disk.entered.load(std::sync::atomic::Ordering::SeqCst), 1);
        let second = log.append(b"2\n".to_vec()).await.unwrap_err();
        assert_eq!(
            second.to_string(),
            "it was not on disk within 200ms (the audit log's write deadline)"
        );
        // "2" still waits in the queue; "3" fills it.
        log.append_detached(b"3\n".to_vec()).unwrap();
        let full = log.append(b"4\n".to_vec()).await.unwrap_err();
        assert_eq!(
            full.to_string(),
            "2 lines were already waiting for the disk (the audit log's queue limit)"
        );
        assert!(matches!(
            log.append_detached(b"5\n".to_vec()),
            Err(file::AppendError::QueueFull(2))
        ));
        hang(false);
        // The lines queued before the disk came back are written, in order; the refused ones
        // were logged on stderr instead.
        for _ in 0..500 {
            if disk.lines.lock().unwrap().len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let sixth = log.append(b"6\n".to_vec()).await;
        assert!(sixth.is_ok(), "{sixth:?}");
        let lines = disk.lines.lock().unwrap().clone();
        let expected: Vec<Vec<u8>> = ["1\n", "2\n", "3\n", "6\n"]
            .iter()
            .map(|l| l.as_bytes().to_vec())
            .collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn the_file_is_created_0600_appended_to_and_refused_when_not_regular() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pim-audit-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.log");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for n in 0..2 {
            let sink = Sink::new(Some(&path)).unwrap();
            runtime.block_on(sink.write(&record(&format!("id-{n}"), "s")));
        }
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "appended, not truncated: {text}");
        assert!(
            text.contains("\"identifier\":\"id-0\"") && text.contains("\"identifier\":\"id-1\"")
        );
        let e = Sink::new(Some(&dir)).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "cannot open the audit log {} (--audit-log / PORT_MCP_AUDIT_LOG) for appending: ",
                dir.display()
            )),
            "{e}"
        );
        let e = Sink::new(Some(Path::new("/dev/null")))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(
                "it is not a regular file (each line is fsynced; pipes and devices cannot be)"
            ),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
