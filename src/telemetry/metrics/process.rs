//! The process's own numbers (`process_*`, as every Prometheus client names them): resident and
//! virtual memory, CPU seconds, open and allowed descriptors, start time. Read from
//! `/proc/self` when a scrape asks, never in between, with every read bounded; elsewhere than
//! Linux, or when `/proc` cannot be read, the families are left out.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
    registry::{Registry, Unit},
};

/// Adds the collector to `registry` (on Linux).
pub fn register(registry: &mut Registry) {
    if cfg!(target_os = "linux") {
        registry.register_collector(Box::new(Process));
    }
}

/// `/proc/self/stat` and `/proc/uptime` are a few hundred bytes; more is not what we expect.
const MAX_PROC_FILE_BYTES: u64 = 4096;

/// Descriptors counted at most: the count stops there (the open-files limit is far lower).
const MAX_FDS_COUNTED: usize = 1 << 20;

#[derive(Debug)]
struct Process;

/// What one scrape read.
struct Sample {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_unix: Option<f64>,
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(s) = sample() {
            constant(
                &mut encoder,
                "process_cpu",
                "User and system CPU time spent",
                Some(Unit::Seconds),
                ConstCounter::new(s.cpu_seconds),
            )?;
            constant(
                &mut encoder,
                "process_resident_memory",
                "Resident memory size",
                Some(Unit::Bytes),
                ConstGauge::new(s.resident_bytes),
            )?;
            constant(
                &mut encoder,
                "process_virtual_memory",
                "Virtual memory size",
                Some(Unit::Bytes),
                ConstGauge::new(s.virtual_bytes),
            )?;
            if let Some(start) = s.start_unix {
                constant(
                    &mut encoder,
                    "process_start_time",
                    "Start time of the process since the Unix epoch",
                    Some(Unit::Seconds),
                    ConstGauge::new(start),
                )?;
            }
        }
        if let Some(open) = open_fds() {
            constant(
                &mut encoder,
                "process_open_fds",
                "Open file descriptors",
                None,
                ConstGauge::new(open),
            )?;
        }
        if let Some(max) = max_fds() {
            constant(
                &mut encoder,
                "process_max_fds",
                "The open-files limit (soft)",
                None,
                ConstGauge::new(max),
            )?;
        }
        Ok(())
    }
}

/// One family with a single sample, `metric` (a counter or a gauge read at scrape time).
fn constant(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    metric: impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, unit.as_ref(), metric.metric_type())?)
}

fn read_small(path: &str) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_PROC_FILE_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

fn sample() -> Option<Sample> {
    // SAFETY: sysconf only reads configuration values.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let (ticks, page) = (ticks.max(1) as f64, page.max(1) as f64);
    let stat = read_small("/proc/self/stat")?;
    // The command name (field 2) is in parentheses and may hold spaces and parentheses: the
    // fields that follow start after the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // Fields 14 (utime), 15 (stime), 22 (starttime), 23 (vsize), 24 (rss), counted from 1 with
    // the state (field 3) at index 0 here.
    let cpu_seconds = (number(11)? + number(12)?) / ticks;
    let started_ticks = number(19)?;
    let start_unix = read_small("/proc/uptime")
        .and_then(|u| u.split_ascii_whitespace().next()?.parse::<f64>().ok())
        .and_then(|uptime| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs_f64();
            Some((now - uptime + started_ticks / ticks).max(0.0).floor())
        });
    Some(Sample {
        cpu_seconds,
        resident_bytes: number(21)? * page,
        virtual_bytes: number(20)?,
        start_unix,
    })
}

fn open_fds() -> Option<f64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    // The directory's own descriptor, open while it is read, is one of the entries.
    let counted = entries.take(MAX_FDS_COUNTED).count();
    Some(counted.saturating_sub(1) as f64)
}

fn max_fds() -> Option<f64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as f64)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = sample().unwrap();
        assert!(s.resident_bytes > 0.0);
        assert!(s.start_unix.unwrap() > 1.0e9);
        assert!(open_fds().unwrap() >= 3.0);
    }
}
