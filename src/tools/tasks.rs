//! Long tool calls (a resync followed to its end) as MCP tasks (SEP-2663).
//!
//! A client that declares the tasks capability gets a task id at once and polls `tasks/get`
//! instead of holding a request open for minutes. The task store is shared by every clone of
//! the server (stateless HTTP builds one per request, and the next request must find the task),
//! bounded (`--max-tasks` running at once, each with a time to live, and at most
//! [`RETAINED_PER_SLOT`] times as many kept for polling), and each run ends with
//! `tasks/cancel`, with its TTL, or with the server's shutdown, like any other call: a run is
//! one future, and ending it drops every wait and every request to Port it has in flight.

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rmcp::{
    Peer, RoleServer,
    model::{
        CallToolResponse, CallToolResult, CreateTaskResult, ProgressNotificationParam,
        ProgressToken,
    },
    service::RequestContext,
    task_manager::{TaskContext, TaskExit, TaskManager, TaskOptions},
};
use tokio::sync::Semaphore;

use super::{PortTools, result};

/// Default bound on tasks running at once (`--max-tasks`).
pub const DEFAULT_MAX_TASKS: usize = 32;
/// Upper bound of `--max-tasks`.
pub const MAX_MAX_TASKS: usize = 1024;
/// How long a task outlives the longest follow it may do, before the store fails and drops it.
const TTL_MARGIN: Duration = Duration::from_secs(120);
/// Tasks kept (running or finished, for `tasks/get`) per `--max-tasks` slot. The store drops a
/// finished task one TTL after it ends, so quick tasks could otherwise pile up for minutes.
pub const RETAINED_PER_SLOT: usize = 16;

/// A tool's work, run in the background.
pub type Work = Pin<Box<dyn Future<Output = CallToolResult> + Send>>;

/// The server's task store and its bound. Cheap to clone; clones share both.
#[derive(Clone)]
pub struct Tasks {
    manager: TaskManager,
    slots: Arc<Semaphore>,
    max: usize,
    ttl: Duration,
    // When each task still possibly in the store was created (the store keeps one at most two
    // TTLs: its life, then its retention).
    created: Arc<Mutex<VecDeque<Instant>>>,
}

impl Tasks {
    /// A store for at most `max` running tasks, each following a run for at most `max_wait`.
    pub fn new(max: usize, max_wait: Duration) -> Self {
        let max = max.clamp(1, MAX_MAX_TASKS);
        Tasks {
            manager: TaskManager::new(),
            slots: Arc::new(Semaphore::new(max)),
            max,
            ttl: max_wait.saturating_add(TTL_MARGIN),
            created: Arc::default(),
        }
    }

    /// The store behind `tasks/get`, `tasks/update` and `tasks/cancel`.
    pub fn manager(&self) -> &TaskManager {
        &self.manager
    }

    /// Whether the client of this call asked for tasks.
    pub fn wanted(ctx: &RequestContext<RoleServer>) -> bool {
        ctx.client_capabilities()
            .is_some_and(|c| c.supports_tasks())
    }

    /// Runs `work` as a task and answers with its id; or refuses at once when `--max-tasks`
    /// are already running. `label` is the task's first status message.
    pub fn start<F>(&self, tools: &PortTools, label: String, work: F) -> CallToolResponse
    where
        F: FnOnce(TaskContext) -> Work,
    {
        let busy = || {
            if let Some(m) = tools.client().telemetry().metrics() {
                m.busy(crate::telemetry::metrics::Busy::Tasks);
            }
            result::tasks_busy(self.max).into()
        };
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            return busy();
        };
        if !self.retain() {
            return busy();
        }
        let ended = tools.ended().clone();
        // Counted as a call in flight: a shutdown waits for it as for any call, then ends it.
        let in_flight = tools.calls().token();
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let options = TaskOptions::new()
            .with_ttl_ms(ttl_ms)
            .with_poll_interval_ms(1000)
            .with_status_message(label);
        // The task's Port requests are traced as children of the call that started it (the
        // call's span has ended by then; its context is what links them).
        let trace = opentelemetry::Context::current();
        let task = self.manager.spawn(options, move |context| {
            let work = opentelemetry::trace::FutureExt::with_context(work(context.clone()), trace);
            Box::pin(async move {
                let _permit = permit;
                let _in_flight = in_flight;
                tokio::select! {
                    _ = context.cancelled() => Err(TaskExit::Cancelled),
                    _ = ended.cancelled() => Ok(result::ended_by_shutdown()),
                    done = work => Ok(done),
                }
            })
        });
        CallToolResponse::Task(CreateTaskResult::new(task))
    }
}

impl Tasks {
    /// Counts a new task against the retention bound; false when the store is full.
    fn retain(&self) -> bool {
        let mut created = self.created.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let kept_for = self.ttl.saturating_mul(2);
        while created
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= kept_for)
        {
            created.pop_front();
        }
        if created.len() >= self.max.saturating_mul(RETAINED_PER_SLOT) {
            return false;
        }
        created.push_back(now);
        true
    }
}

/// Where a run reports how it is going.
#[derive(Clone)]
pub enum Report {
    /// Nowhere (the client asked for no progress).
    Quiet,
    /// Progress notifications on the call's request.
    Progress(Peer<RoleServer>, ProgressToken),
    /// The task's status message.
    Task(TaskContext),
}

impl Report {
    /// Progress notifications when the call carries a progress token, else nothing.
    pub fn for_call(ctx: &RequestContext<RoleServer>) -> Self {
        match ctx.meta.get_progress_token() {
            Some(token) => Report::Progress(ctx.peer.clone(), token),
            None => Report::Quiet,
        }
    }

    /// Reports `done` of `total` seconds, with a message.
    pub async fn say(&self, done: f64, total: f64, message: String) {
        match self {
            Report::Quiet => {}
            Report::Progress(peer, token) => {
                let _ = peer
                    .notify_progress(
                        ProgressNotificationParam::new(token.clone(), done)
                            .with_total(total)
                            .with_message(message),
                    )
                    .await;
            }
            Report::Task(context) => context.set_status_message(message),
        }
    }
}
