//! [`GrinderShared`]: what the grinder, its batching thread, its batch runners and its jobs share
//! — the lease source, the configuration, the state under one lock (phase, pending jobs, batch
//! counters) and the lock-free job outcome counters — and the operations on it that more than one
//! of them needs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;
use parking_lot::{Condvar, Mutex};

use crate::error::TaskError;
use crate::task::{PendingJob, QueuedTask, Resolution, TaskOwner};

use super::config::GrinderConfig;
use super::control::RunControl;
use super::stop_mode::StopMode;

/// What the grinder, its batching thread, its batch runners and its jobs share.
pub(crate) struct GrinderShared<S> {
    pub(super) source: S,
    pub(super) config: GrinderConfig,
    pub(super) state: Mutex<State>,
    /// The batching thread sleeps on this.
    pub(super) wake: Condvar,
    /// Job outcomes, counted lock-free by the pool threads that resolve them.
    pub(super) outcomes: JobOutcomes,
}

#[derive(Default)]
pub(super) struct JobOutcomes {
    pub(super) completed: CachePadded<AtomicU64>,
    pub(super) panicked: AtomicU64,
    pub(super) cancelled: AtomicU64,
    pub(super) failed: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Phase {
    #[default]
    Stopped,
    Running,
    Stopping(StopMode),
    /// The batching thread died; only `stop` recovers.
    Crashed,
}

/// One queued job.
pub(crate) struct Item {
    pub(super) id: u64,
    pub(super) owner: Option<Arc<str>>,
    pub(super) task: PendingJob,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) phase: Phase,
    pub(super) pending: VecDeque<Item>,
    /// When the pending queue last became non-empty: the oldest pending job's enqueue time (or,
    /// if that job was cancelled, an earlier one). Only that job is timestamped, which keeps the
    /// clock off the per-job path.
    pub(super) oldest_since: Option<Instant>,
    pub(super) next_item: u64,
    pub(super) batch_no: u64,
    pub(super) running_batches: usize,
    /// The batching thread of the current run has not exited yet.
    pub(super) batcher_alive: bool,
    pub(super) control: Arc<RunControl>,
    pub(super) batches: BatchCounters,
}

/// The counters kept under the state lock (job outcomes are counted lock-free in `JobOutcomes`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct BatchCounters {
    pub(super) batches_run: u64,
    pub(super) jobs_rejected: u64,
    pub(super) current_batch_size: usize,
    pub(super) last_batch_duration: Duration,
}

/// Resolves `items` as cancelled. Call it with the state lock released: dropping a job's closure
/// runs user code.
pub(super) fn cancel_items(items: Vec<Item>) {
    for item in items {
        item.task.fail(TaskError::Cancelled);
    }
}

impl<S> GrinderShared<S> {
    /// A stopped grinder's shared part: nothing pending, no counts.
    pub(super) fn new(source: S, config: GrinderConfig) -> Self {
        GrinderShared {
            source,
            config,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            outcomes: JobOutcomes::default(),
        }
    }

    pub(super) fn batch_started(&self, size: usize) {
        let mut st = self.state.lock();
        st.batches.batches_run += 1;
        st.batches.current_batch_size += size;
    }

    pub(super) fn batch_finished(&self, size: usize, took: Duration) {
        let mut st = self.state.lock();
        st.batches.current_batch_size -= size;
        st.batches.last_batch_duration = took;
        st.running_batches -= 1;
        drop(st);
        self.wake.notify_all();
    }

    /// Waits until the batching thread has exited, or `deadline`; returns whether it has.
    pub(super) fn wait_stopped(&self, deadline: Instant) -> bool {
        let mut st = self.state.lock();
        while st.batcher_alive {
            if self.wake.wait_until(&mut st, deadline).timed_out() {
                return !st.batcher_alive;
            }
        }
        true
    }

    /// Under one hold of the state lock, moves the phase on with `next` and takes every pending
    /// job out of the queue; then, with the lock released, resolves those jobs as cancelled.
    pub(super) fn cancel_pending(&self, next: impl FnOnce(&mut Phase)) {
        let dropped: Vec<Item> = {
            let mut st = self.state.lock();
            next(&mut st.phase);
            st.pending.drain(..).collect()
        };
        cancel_items(dropped);
    }
}

impl<S: Send + Sync> TaskOwner for GrinderShared<S> {
    fn refuse(&self) -> Option<TaskError> {
        None
    }

    fn account(&self, resolution: Resolution, tag: u64) {
        let o = &self.outcomes;
        let counter = match resolution {
            Resolution::Completed => &*o.completed,
            Resolution::Panicked => &o.panicked,
            Resolution::Cancelled => &o.cancelled,
            Resolution::PoolBroken | Resolution::Failed | Resolution::TimedOut => &o.failed,
        };
        counter.fetch_add(1, Relaxed);
        if resolution != Resolution::Cancelled {
            return;
        }
        // A job cancelled through its handle while still pending leaves the queue at once.
        let mut st = self.state.lock();
        let removed = st.pending.iter().position(|i| i.id == tag).and_then(|at| st.pending.remove(at));
        drop(st);
        if let Some(item) = removed {
            log::debug!(target: &self.config.log_target, "cancelled pending item removed (work_id={})", item.id);
            // Dropped outside the lock: the job's closure is user code.
            drop(item);
        }
    }

    fn watch(&self, _task: std::sync::Weak<dyn QueuedTask>) {}
}
