//! [`TaskHandle`]: the caller's side of one submitted task: wait for it, poll it, cancel it.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::utils::Backoff;

use super::slot::{resolve_unstarted, take, QueuedTask, SlotApi, Stage};
use crate::error::TaskError;

/// How long `TaskHandle::wait` keeps yielding for a process task before it parks (measured in
/// `benches/process.rs`: 20–100 µs all take the round trip from ~1.6× to ~0.9× a raw
/// ipc-channel ping-pong; this is the low end, to burn as little CPU as possible).
const REMOTE_YIELD: Duration = Duration::from_micros(25);

/// The result of a submitted task: wait for it, poll it, or cancel it before it starts.
///
/// Every handle resolves: with the task's value, its panic ([`TaskError::Panicked`]),
/// [`TaskError::Cancelled`] (cancelled by this handle, by lease revocation or by manager stop)
/// or [`TaskError::PoolBroken`]. Dropping a handle does not cancel the task.
///
/// Do not wait on a task from inside another task of the same pool: if every worker waits, none
/// is left to run what they wait for (the usual thread-pool rule; nothing here can detect it).
///
/// ```
/// use leasepool::{AcquireOptions, LeasedExecutorManager};
/// let manager = LeasedExecutorManager::builder().max_pools(1).build().unwrap();
/// manager.start().unwrap();
/// let lease = manager.acquire(AcquireOptions::new()).unwrap();
/// let handle = lease.executor().submit(|| 6 * 7).unwrap();
/// assert_eq!(handle.wait().unwrap(), 42);
/// ```
#[must_use = "a TaskHandle does nothing unless waited on; dropping it does not cancel the task"]
pub struct TaskHandle<T> {
    slot: Arc<dyn SlotApi<T>>,
}

impl<T> TaskHandle<T> {
    /// The handle on `slot` (a fresh task's caller side).
    pub(super) fn new(slot: Arc<dyn SlotApi<T>>) -> TaskHandle<T> {
        TaskHandle { slot }
    }
}

impl<T: Send + 'static> TaskHandle<T> {
    /// Blocks until the task resolves and returns its outcome.
    pub fn wait(self) -> Result<T, TaskError> {
        // Short tasks usually finish within microseconds: spin and yield briefly before sleeping,
        // as channel receivers do, to save two context switches per round trip.
        let backoff = Backoff::new();
        while !self.slot.core().finished.load(Ordering::Acquire) && !backoff.is_completed() {
            backoff.snooze();
        }
        if self.slot.core().remote && matches!(*self.slot.core().stage.lock(), Stage::Running) {
            // A process round trip takes tens of microseconds, and waking a parked thread costs
            // about as much again: when the task is already with a worker, yield (never hog a
            // core) a little longer before parking. A task still queued parks at once.
            let until = Instant::now() + REMOTE_YIELD;
            while !self.slot.core().finished.load(Ordering::Acquire) && Instant::now() < until {
                std::thread::yield_now();
            }
        }
        self.block_until(None);
        take(&mut self.slot.core().stage.lock())
    }

    /// Waits at most `timeout`. Returns the outcome, or gives the handle back (`Err`) if the
    /// task has not resolved yet.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use leasepool::{AcquireOptions, LeasedExecutorManager};
    /// # let manager = LeasedExecutorManager::builder().max_pools(1).build().unwrap();
    /// # manager.start().unwrap();
    /// # let lease = manager.acquire(AcquireOptions::new()).unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let handle = lease.executor().submit(move || rx.recv().is_ok()).unwrap();
    /// let handle = handle.wait_timeout(Duration::from_millis(10)).unwrap_err(); // still running
    /// tx.send(()).unwrap();
    /// assert_eq!(handle.wait().unwrap(), true);
    /// ```
    pub fn wait_timeout(self, timeout: Duration) -> Result<Result<T, TaskError>, TaskHandle<T>> {
        if self.block_until(Instant::now().checked_add(timeout)) {
            Ok(take(&mut self.slot.core().stage.lock()))
        } else {
            Err(self)
        }
    }

    /// Sleeps until the task resolves or `deadline` passes; returns whether it resolved. Before
    /// the first sleep on a queued task it registers with the lease, which resolves it at once
    /// if the lease is revoked or stopped while it waits.
    fn block_until(&self, deadline: Option<Instant>) -> bool {
        let slot = self.slot.core();
        let mut registered = false;
        let mut stage = slot.stage.lock();
        loop {
            match *stage {
                Stage::Done(_) | Stage::Taken => return true,
                Stage::Queued if !registered => {
                    drop(stage);
                    registered = true;
                    let queued = Arc::clone(&self.slot).queued();
                    slot.owner.watch(Arc::downgrade(&queued));
                    // Registered first, then checked: a revocation cannot slip between the two.
                    slot.settle_if_refused();
                    stage = slot.stage.lock();
                }
                Stage::Queued | Stage::Running => match deadline {
                    None => slot.done.wait(&mut stage),
                    Some(deadline) => {
                        if slot.done.wait_until(&mut stage, deadline).timed_out() {
                            return matches!(*stage, Stage::Done(_) | Stage::Taken);
                        }
                    }
                },
            }
        }
    }

    /// Whether the task has resolved (value, panic, cancellation or broken pool). A queued task of
    /// a revoked or stopped lease resolves here, as cancelled.
    pub fn is_finished(&self) -> bool {
        let slot = self.slot.core();
        slot.settle_if_refused();
        matches!(*slot.stage.lock(), Stage::Done(_) | Stage::Taken)
    }

    /// Cancels the task if it has not started yet; it will then never run and the handle
    /// resolves as [`TaskError::Cancelled`]. Returns whether the cancellation took effect
    /// (`false` once the task is running or done).
    pub fn cancel(&self) -> bool {
        resolve_unstarted(self.slot.core(), TaskError::Cancelled)
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match *self.slot.core().stage.lock() {
            Stage::Queued => "queued",
            Stage::Running => "running",
            Stage::Done(_) | Stage::Taken => "finished",
        };
        f.debug_struct("TaskHandle").field("stage", &stage).finish()
    }
}
