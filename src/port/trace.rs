//! Which Port answer a tool call comes down to, for its audit line: the status and `x-trace-id`
//! of the last request that changed something (or of the last request, when none did).
//!
//! A task-local rather than a return value: a tool may send several requests (resync reads,
//! posts, then reads again), through several layers, and only the audit at the top needs it.

use std::cell::RefCell;

tokio::task_local! {
    static LAST: RefCell<Option<(PortAnswer, bool)>>;
}

/// What Port answered to one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortAnswer {
    /// The HTTP status.
    pub status: u16,
    /// Port's `x-trace-id`, if it sent one.
    pub trace_id: Option<String>,
}

/// Runs `work`, and returns with its output the answer its Port requests came down to.
pub async fn recording<F: Future>(work: F) -> (F::Output, Option<PortAnswer>) {
    LAST.scope(RefCell::new(None), async {
        let out = work.await;
        let last = LAST.with(|last| last.borrow_mut().take().map(|(answer, _)| answer));
        (out, last)
    })
    .await
}

/// Notes an answered request (`write`: it was not a GET). Outside [`recording`], nothing
/// happens.
pub(crate) fn record(status: u16, trace: Option<&str>, write: bool) {
    let _ = LAST.try_with(|last| {
        let mut last = last.borrow_mut();
        // A later read does not hide the write the audit is about.
        if !matches!(*last, Some((_, true))) || write {
            *last = Some((
                PortAnswer {
                    status,
                    trace_id: trace.map(str::to_string),
                },
                write,
            ));
        }
    });
}
