//! [`TaskHandle`]: the caller's side of one submitted task, and its one-shot completion slot.
//!
//! A task is one allocation (the slot) shared by the handle and the job. The job reaches its
//! lease through the slot's [`TaskOwner`], so submitting clones one `Arc`, not two.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::utils::Backoff;
use parking_lot::{Condvar, Mutex};

use crate::error::TaskError;

enum Stage<T> {
    Queued,
    Running,
    Done(Result<T, TaskError>),
    Taken,
}

struct Slot<T> {
    stage: Mutex<Stage<T>>,
    /// Set once the outcome is published: lets `wait` spin briefly before it sleeps.
    finished: AtomicBool,
    done: Condvar,
    owner: Arc<dyn TaskOwner>,
}

/// How a task resolved, for accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    Completed,
    Panicked,
    Cancelled,
    PoolBroken,
}

impl Resolution {
    fn of<T>(outcome: &Result<T, TaskError>) -> Resolution {
        match outcome {
            Ok(_) => Resolution::Completed,
            Err(TaskError::Panicked { .. }) => Resolution::Panicked,
            Err(TaskError::PoolBroken { .. }) => Resolution::PoolBroken,
            Err(_) => Resolution::Cancelled,
        }
    }
}

/// Whoever accounts for a task (its lease). Both calls happen *before* the handle resolves, so
/// counts are never behind a visible outcome.
pub(crate) trait TaskOwner: Send + Sync {
    /// Checked right before the task would run: an outcome that replaces running it (the lease
    /// was revoked or stopped: cancelled; its pool broke: pool broken).
    fn refuse(&self) -> Option<TaskError>;
    /// The task resolved this way (ran, panicked, or never ran).
    fn account(&self, resolution: Resolution);
}

/// The result of a submitted task: wait for it, poll it, or cancel it before it starts.
///
/// Every handle resolves: with the task's value, its panic ([`TaskError::Panicked`]),
/// [`TaskError::Cancelled`] (cancelled by this handle, by lease revocation or by manager stop)
/// or [`TaskError::PoolBroken`]. Dropping a handle does not cancel the task.
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
    slot: Arc<Slot<T>>,
}

/// The pool's side of a task: marks it running and publishes its outcome exactly once. Dropping
/// it unpublished resolves the handle as cancelled, so no waiter can sleep forever.
pub(crate) struct Completer<T> {
    slot: Option<Arc<Slot<T>>>,
}

/// A fresh queued task: the handle for the caller and the completer for the job.
pub(crate) fn task_pair<T>(owner: Arc<dyn TaskOwner>) -> (TaskHandle<T>, Completer<T>) {
    let slot = Arc::new(Slot {
        stage: Mutex::new(Stage::Queued),
        finished: AtomicBool::new(false),
        done: Condvar::new(),
        owner,
    });
    (TaskHandle { slot: Arc::clone(&slot) }, Completer { slot: Some(slot) })
}

/// A queued task seen from its lease, which cancels what has not started when it is revoked or
/// the manager stops (rayon cannot drop queued jobs, so their handles are resolved here at once).
pub(crate) trait QueuedTask: Send + Sync {
    /// Resolves the task as cancelled if it has not started.
    fn cancel_if_queued(&self) -> bool;
    /// Whether the task is still waiting to start.
    fn is_queued(&self) -> bool;
}

impl<T: Send> QueuedTask for Slot<T> {
    fn cancel_if_queued(&self) -> bool {
        cancel_slot(self)
    }

    fn is_queued(&self) -> bool {
        matches!(*self.stage.lock(), Stage::Queued)
    }
}

fn cancel_slot<T>(slot: &Slot<T>) -> bool {
    {
        let mut stage = slot.stage.lock();
        if !matches!(*stage, Stage::Queued) {
            return false;
        }
        // Claim the task so the pool skips it, account for it, then resolve the handle.
        *stage = Stage::Running;
    }
    slot.owner.account(Resolution::Cancelled);
    publish(slot, Err(TaskError::Cancelled));
    true
}

impl<T: Send + 'static> TaskHandle<T> {
    /// A weak view of this task for its lease's cancellation registry.
    pub(crate) fn as_queued(&self) -> std::sync::Weak<dyn QueuedTask> {
        let slot: Arc<dyn QueuedTask> = self.slot.clone();
        Arc::downgrade(&slot)
    }
}

impl<T> Completer<T> {
    /// Queued → running. `false` if the task was cancelled first: the job must not run, and it
    /// must not account for the task either (the canceller did).
    fn begin(&mut self) -> bool {
        let slot = self.slot.as_ref().expect("completer used after completion");
        let mut stage = slot.stage.lock();
        if matches!(*stage, Stage::Queued) {
            *stage = Stage::Running;
            return true;
        }
        drop(stage);
        // The canceller owns the outcome now; dropping this completer must not publish.
        self.slot = None;
        false
    }

    /// Runs the job on a pool thread: skip it if it was cancelled; else ask the owner whether it
    /// may run, run it under `catch_unwind`, account for it, and only then publish the outcome.
    pub(crate) fn run(mut self, f: impl FnOnce() -> T) {
        if !self.begin() {
            return;
        }
        let slot = self.slot.take().expect("begin keeps the slot");
        let outcome = match slot.owner.refuse() {
            Some(refusal) => Err(refusal),
            None => catch_unwind(AssertUnwindSafe(f)).map_err(|p| TaskError::Panicked { message: panic_message(&*p) }),
        };
        slot.owner.account(Resolution::of(&outcome));
        publish(&slot, outcome);
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            publish(&slot, Err(TaskError::Cancelled));
        }
    }
}

fn publish<T>(slot: &Slot<T>, outcome: Result<T, TaskError>) {
    let mut stage = slot.stage.lock();
    if matches!(*stage, Stage::Queued | Stage::Running) {
        *stage = Stage::Done(outcome);
        slot.finished.store(true, Ordering::Release);
        drop(stage);
        slot.done.notify_all();
    }
}

impl<T> TaskHandle<T> {
    /// Blocks until the task resolves and returns its outcome.
    pub fn wait(self) -> Result<T, TaskError> {
        // Short tasks usually finish within microseconds: spin and yield briefly before sleeping,
        // as channel receivers do, to save two context switches per round trip.
        let backoff = Backoff::new();
        while !self.slot.finished.load(Ordering::Acquire) && !backoff.is_completed() {
            backoff.snooze();
        }
        let mut stage = self.slot.stage.lock();
        while matches!(*stage, Stage::Queued | Stage::Running) {
            self.slot.done.wait(&mut stage);
        }
        take(&mut stage)
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
        let deadline = Instant::now().checked_add(timeout);
        let mut stage = self.slot.stage.lock();
        while matches!(*stage, Stage::Queued | Stage::Running) {
            let timed_out = match deadline {
                Some(deadline) => self.slot.done.wait_until(&mut stage, deadline).timed_out(),
                None => {
                    self.slot.done.wait(&mut stage);
                    false
                }
            };
            if timed_out && matches!(*stage, Stage::Queued | Stage::Running) {
                drop(stage);
                return Err(self);
            }
        }
        Ok(take(&mut stage))
    }

    /// Whether the task has resolved (value, panic, cancellation or broken pool).
    pub fn is_finished(&self) -> bool {
        matches!(*self.slot.stage.lock(), Stage::Done(_) | Stage::Taken)
    }

    /// Cancels the task if it has not started yet; it will then never run and the handle
    /// resolves as [`TaskError::Cancelled`]. Returns whether the cancellation took effect
    /// (`false` once the task is running or done).
    pub fn cancel(&self) -> bool {
        cancel_slot(&self.slot)
    }
}

fn take<T>(stage: &mut Stage<T>) -> Result<T, TaskError> {
    match std::mem::replace(stage, Stage::Taken) {
        Stage::Done(outcome) => outcome,
        _ => unreachable!("a TaskHandle's outcome is taken only once, by value"),
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match *self.slot.stage.lock() {
            Stage::Queued => "queued",
            Stage::Running => "running",
            Stage::Done(_) | Stage::Taken => "finished",
        };
        f.debug_struct("TaskHandle").field("stage", &stage).finish()
    }
}

/// Renders a panic payload (`&str` or `String`, else a placeholder).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}
