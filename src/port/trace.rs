//! Which Port request a tool call comes down to, for its audit line: the `x-trace-id` of the
//! last request that changed something (or of the last request, when none did).
//!
//! A task-local rather than a return value: a tool may send several requests (resync reads,
//! posts, then reads again), through several layers, and only the audit at the top needs it.

use std::cell::RefCell;

tokio::task_local! {
    static LAST: RefCell<Option<(String, bool)>>;
}

/// Runs `work`, and returns with its output the trace id its Port requests left.
pub async fn recording<F: Future>(work: F) -> (F::Output, Option<String>) {
    LAST.scope(RefCell::new(None), async {
        let out = work.await;
        let trace = LAST.with(|last| last.borrow().as_ref().map(|(t, _)| t.clone()));
        (out, trace)
    })
    .await
}

/// Notes the trace id of an answered request (`write`: it was not a GET). Outside
/// [`recording`], nothing happens.
pub(crate) fn record(trace: Option<&str>, write: bool) {
    let Some(trace) = trace else { return };
    let _ = LAST.try_with(|last| {
        let mut last = last.borrow_mut();
        // A later read does not hide the write the audit is about.
        if !matches!(*last, Some((_, true))) || write {
            *last = Some((trace.to_string(), write));
        }
    });
}
