//! [`TaskHandle`]: the caller's side of one submitted task, and its one-shot completion slot.
//!
//! A task is one allocation (the slot) shared by the handle and the job. The job reaches its
//! lease through the slot's [`TaskOwner`], so submitting clones one `Arc`, not two. A grinder job
//! keeps its closure in the same allocation ([`job_pair`]); the handle sees either kind through
//! the small [`SlotApi`] trait.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
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

pub(crate) struct Slot<T> {
    stage: Mutex<Stage<T>>,
    /// Set once the outcome is published: lets `wait` spin briefly before it sleeps.
    finished: AtomicBool,
    done: Condvar,
    owner: Arc<dyn TaskOwner>,
    /// The owner's name for this task (a grinder item id; unused by leases).
    tag: u64,
    /// Runs in a worker process: `wait` yields a little longer before it parks.
    remote: bool,
}

/// How long `TaskHandle::wait` keeps yielding for a process task before it parks (measured in
/// `benches/process.rs`: 20–100 µs all take the round trip from ~1.6× to ~0.9× a raw
/// ipc-channel ping-pong; this is the low end, to burn as little CPU as possible).
const REMOTE_YIELD: Duration = Duration::from_micros(25);

/// How a task resolved, for accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    Completed,
    Panicked,
    Cancelled,
    PoolBroken,
    /// Resolved with an error that is not the task's own (a grinder batch's lease failure).
    Failed,
}

impl Resolution {
    pub(crate) fn of<T>(outcome: &Result<T, TaskError>) -> Resolution {
        match outcome {
            Ok(_) => Resolution::Completed,
            Err(TaskError::Panicked { .. }) => Resolution::Panicked,
            Err(TaskError::PoolBroken { .. }) => Resolution::PoolBroken,
            Err(TaskError::Cancelled) => Resolution::Cancelled,
            Err(_) => Resolution::Failed,
        }
    }
}

/// Whoever accounts for a task (its lease). Both calls happen *before* the handle resolves, so
/// counts are never behind a visible outcome.
pub(crate) trait TaskOwner: Send + Sync {
    /// Checked right before the task would run: an outcome that replaces running it (the lease
    /// was revoked or stopped: cancelled; its pool broke: pool broken).
    fn refuse(&self) -> Option<TaskError>;
    /// The task tagged `tag` resolved this way (ran, panicked, or never ran).
    fn account(&self, resolution: Resolution, tag: u64);
    /// A waiter is about to sleep on this queued task: resolve it (`settle_if_refused`) if the
    /// owner starts refusing work.
    fn watch(&self, task: Weak<dyn QueuedTask>);
}

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

/// What a handle needs from its slot, whether or not the slot also holds the job's closure.
pub(crate) trait SlotApi<T>: Send + Sync {
    fn core(&self) -> &Slot<T>;
    /// The same allocation, seen as a queued task (for the lease's sleeping-waiter registry).
    fn queued(self: Arc<Self>) -> Arc<dyn QueuedTask>;
}

impl<T: Send + 'static> SlotApi<T> for Slot<T> {
    fn core(&self) -> &Slot<T> {
        self
    }

    fn queued(self: Arc<Self>) -> Arc<dyn QueuedTask> {
        self
    }
}

/// A slot that also holds its job's closure until the job runs: one allocation per grinder job.
struct WithJob<T, F> {
    slot: Slot<T>,
    job: Mutex<Option<F>>,
}

impl<T: Send + 'static, F: Send + 'static> SlotApi<T> for WithJob<T, F> {
    fn core(&self) -> &Slot<T> {
        &self.slot
    }

    fn queued(self: Arc<Self>) -> Arc<dyn QueuedTask> {
        self
    }
}

/// A job type that keeps its [`Slot`] in a `slot` field is a queued task through that slot.
macro_rules! queued_through_slot {
    ([$($generics:tt)*] $ty:ty) => {
        impl<$($generics)*> QueuedTask for $ty {
            fn settle_if_refused(&self) -> bool {
                self.slot.settle_if_refused()
            }

            fn is_queued(&self) -> bool {
                self.slot.is_queued()
            }

            fn cancel(&self) -> bool {
                self.slot.cancel()
            }
        }
    };
}

queued_through_slot!([T: Send, F: Send] WithJob<T, F>);

/// A job that owns its closure (a grinder job): run it, or fail it without running.
pub(crate) trait RunJob: Send + Sync {
    fn run(&self) -> Resolution;
    fn fail(&self, error: TaskError);
    fn queued(self: Arc<Self>) -> Arc<dyn QueuedTask>;
    /// A process task's request, for a process pool to send (`None` for closures, or once taken).
    fn take_remote(self: Arc<Self>) -> Option<RemoteJob>;
}

impl<T: Send + 'static, F: FnOnce() -> T + Send + 'static> RunJob for WithJob<T, F> {
    fn run(&self) -> Resolution {
        if !claim(&self.slot) {
            return Resolution::Cancelled;
        }
        let f = self.job.lock().take().expect("a job's closure is taken once, by whoever claims it");
        run_claimed(&self.slot, f)
    }

    fn fail(&self, error: TaskError) {
        if claim(&self.slot) {
            self.job.lock().take();
            finish(&self.slot, Err(error));
        }
    }

    fn queued(self: Arc<Self>) -> Arc<dyn QueuedTask> {
        self
    }

    fn take_remote(self: Arc<Self>) -> Option<RemoteJob> {
        None
    }
}

/// A grinder job that is a registered process task: its serialized request waits in the same
/// allocation as its slot until a process pool takes it.
struct RemoteItem<T> {
    slot: Slot<T>,
    input: Mutex<Option<Vec<u8>>>,
    task: &'static str,
    decode: fn(&[u8]) -> Result<T, String>,
}

impl<T: Send + 'static> SlotApi<T> for RemoteItem<T> {
    fn core(&self) -> &Slot<T> {
        &self.slot
    }

    fn queued(self: Arc<Self>) -> Arc<dyn QueuedTask> {
        self
    }
}

queued_through_slot!([T: Send] RemoteItem<T>);

impl<T: Send + 'static> RunJob for RemoteItem<T> {
    /// Run in this process (a thread-pool lease or a custom lease source): a registered task
    /// needs a process pool, so it resolves with [`TaskError::WrongBackend`].
    fn run(&self) -> Resolution {
        if !claim(&self.slot) {
            return Resolution::Cancelled;
        }
        self.input.lock().take();
        finish(&self.slot, Err(TaskError::WrongBackend { task: self.task.to_owned() }))
    }

    fn fail(&self, error: TaskError) {
        if claim(&self.slot) {
            self.input.lock().take();
            finish(&self.slot, Err(error));
        }
    }

    fn queued(self: Arc<Self>) -> Arc<dyn QueuedTask> {
        self
    }

    fn take_remote(self: Arc<Self>) -> Option<RemoteJob> {
        let input = self.input.lock().take()?;
        let (task, decode) = (self.task, self.decode);
        let done = RemoteCompleter { slot: Some(self as Arc<dyn SlotApi<T>>), started: false, task, decode };
        Some(RemoteJob { task, input, done: Box::new(done) })
    }
}

/// A fresh queued grinder job for a registered process task.
pub(crate) fn remote_job_pair<T: Send + 'static>(
    owner: Arc<dyn TaskOwner>,
    tag: u64,
    task: &'static str,
    input: Vec<u8>,
    decode: fn(&[u8]) -> Result<T, String>,
) -> (TaskHandle<T>, PendingJob) {
    let item = Arc::new(RemoteItem { slot: Slot::remote(owner, tag), input: Mutex::new(Some(input)), task, decode });
    let handle = TaskHandle { slot: Arc::clone(&item) as Arc<dyn SlotApi<T>> };
    (handle, PendingJob(Some(item)))
}

/// A grinder job not run yet. Dropping it resolves the job as cancelled (with accounting).
pub(crate) struct PendingJob(Option<Arc<dyn RunJob>>);

impl PendingJob {
    pub(crate) fn run(mut self) -> Resolution {
        self.0.take().map_or(Resolution::Cancelled, |job| job.run())
    }

    pub(crate) fn fail(mut self, error: TaskError) {
        if let Some(job) = self.0.take() {
            job.fail(error);
        }
    }

    /// The job as a process request, if it is a registered task; else the job back.
    pub(crate) fn into_remote(mut self) -> Result<RemoteJob, PendingJob> {
        let job = self.0.take().expect("pending job already consumed");
        match Arc::clone(&job).take_remote() {
            Some(remote) => Ok(remote),
            None => {
                self.0 = Some(job);
                Err(self)
            }
        }
    }

    /// The job seen as a queued task, to cancel it while it waits in a pool's queue.
    pub(crate) fn as_queued(&self) -> Arc<dyn QueuedTask> {
        Arc::clone(self.0.as_ref().expect("pending job already consumed")).queued()
    }
}

impl Drop for PendingJob {
    fn drop(&mut self) {
        if let Some(job) = self.0.take() {
            job.fail(TaskError::Cancelled);
        }
    }
}

/// A fresh queued grinder job: the handle for the caller and the job (closure included) in one
/// allocation.
pub(crate) fn job_pair<T, F>(owner: Arc<dyn TaskOwner>, tag: u64, f: F) -> (TaskHandle<T>, PendingJob)
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let job = Arc::new(WithJob { slot: Slot::new(owner, tag), job: Mutex::new(Some(f)) });
    let handle = TaskHandle { slot: Arc::clone(&job) as Arc<dyn SlotApi<T>> };
    (handle, PendingJob(Some(job)))
}

/// The pool's side of a task: marks it running and publishes its outcome exactly once. Dropping
/// it unpublished resolves the handle as cancelled, so no waiter can sleep forever.
pub(crate) struct Completer<T> {
    slot: Option<Arc<Slot<T>>>,
}

/// A fresh queued task: the handle for the caller and the completer for the job.
pub(crate) fn task_pair<T: Send + 'static>(owner: Arc<dyn TaskOwner>, tag: u64) -> (TaskHandle<T>, Completer<T>) {
    let slot = Arc::new(Slot::new(owner, tag));
    (TaskHandle { slot: Arc::clone(&slot) as Arc<dyn SlotApi<T>> }, Completer { slot: Some(slot) })
}

impl<T> Slot<T> {
    fn new(owner: Arc<dyn TaskOwner>, tag: u64) -> Slot<T> {
        let (stage, finished, done) = (Mutex::new(Stage::Queued), AtomicBool::new(false), Condvar::new());
        Slot { stage, finished, done, owner, tag, remote: false }
    }

    /// A slot for a task that runs in a worker process.
    fn remote(owner: Arc<dyn TaskOwner>, tag: u64) -> Slot<T> {
        Slot { remote: true, ..Slot::new(owner, tag) }
    }
}

/// Queued → running. `false` if someone else (a canceller, or the pool) claimed it first.
fn claim<T>(slot: &Slot<T>) -> bool {
    let mut stage = slot.stage.lock();
    if matches!(*stage, Stage::Queued) {
        *stage = Stage::Running;
        true
    } else {
        false
    }
}

/// Runs a claimed task: ask the owner whether it may run, run it under `catch_unwind`, account,
/// then publish.
fn run_claimed<T>(slot: &Slot<T>, f: impl FnOnce() -> T) -> Resolution {
    let outcome = match slot.owner.refuse() {
        Some(refusal) => Err(refusal),
        None => catch_unwind(AssertUnwindSafe(f)).map_err(|p| TaskError::Panicked { message: panic_message(&*p) }),
    };
    finish(slot, outcome)
}

/// Accounts for a claimed task's outcome, then publishes it.
fn finish<T>(slot: &Slot<T>, outcome: Result<T, TaskError>) -> Resolution {
    let resolution = Resolution::of(&outcome);
    slot.owner.account(resolution, slot.tag);
    publish(slot, outcome);
    resolution
}

/// A queued task whose handle is about to sleep, seen from its lease: when the lease is revoked
/// or the manager stops, the lease resolves it at once (rayon cannot drop a queued job), so a
/// sleeping waiter never has to wait for a busy worker to reach the job.
pub(crate) trait QueuedTask: Send + Sync {
    /// Resolves the task with its owner's refusal if it has not started.
    fn settle_if_refused(&self) -> bool;
    /// Whether the task is still waiting to start.
    fn is_queued(&self) -> bool;
    /// Resolves the task as cancelled if it has not started; returns whether it did.
    fn cancel(&self) -> bool;
}

impl<T: Send> QueuedTask for Slot<T> {
    fn settle_if_refused(&self) -> bool {
        self.owner.refuse().is_some_and(|refusal| resolve_unstarted(self, refusal))
    }

    fn is_queued(&self) -> bool {
        matches!(*self.stage.lock(), Stage::Queued)
    }

    fn cancel(&self) -> bool {
        resolve_unstarted(self, TaskError::Cancelled)
    }
}

/// Resolves a task that has not started with `error` (cancelled or pool broken). Returns whether
/// it did (`false` once the task is running or done).
fn resolve_unstarted<T>(slot: &Slot<T>, error: TaskError) -> bool {
    // Claim the task so the pool skips it, account for it, then resolve the handle.
    claim(slot) && {
        finish(slot, Err(error));
        true
    }
}

impl<T> Completer<T> {
    /// Runs the job on a pool thread: skip it if it was cancelled first (the canceller accounted
    /// for it); else run it and account for it, and only then publish the outcome.
    pub(crate) fn run(mut self, f: impl FnOnce() -> T) -> Resolution {
        let slot = self.slot.take().expect("a completer runs once");
        if claim(&slot) {
            run_claimed(&slot, f)
        } else {
            Resolution::Cancelled
        }
    }
}

impl<T> Drop for Completer<T> {
    /// A job dropped without running (its pool or batch went away) resolves as cancelled, with
    /// accounting; a task already claimed by a canceller is left to it.
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            resolve_unstarted(&slot, TaskError::Cancelled);
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

fn take<T>(stage: &mut Stage<T>) -> Result<T, TaskError> {
    match std::mem::replace(stage, Stage::Taken) {
        Stage::Done(outcome) => outcome,
        _ => unreachable!("a TaskHandle's outcome is taken only once, by value"),
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

/// A process task not started yet: what to send to a worker, and how to resolve its handle.
pub(crate) struct RemoteJob {
    pub(crate) task: &'static str,
    pub(crate) input: Vec<u8>,
    pub(crate) done: Box<dyn RemoteDone>,
}

/// The parent's side of one process task. Dropping it unresolved resolves the handle (cancelled,
/// or the owner's refusal), so no waiter can sleep forever.
pub(crate) trait RemoteDone: Send {
    /// Queued → running. `false` if it was cancelled first or its owner refuses it now (then it
    /// is already resolved and must not be sent).
    fn start(&mut self) -> bool;
    /// Resolves a started task with the worker's serialized output, or what ended it.
    fn finish(self: Box<Self>, outcome: Result<Vec<u8>, TaskError>);
    /// Resolves the task with `error`, whether or not it started.
    fn fail(self: Box<Self>, error: TaskError);
}

/// Resolves a process task's slot: decodes the output into `T`.
pub(crate) struct RemoteCompleter<T> {
    slot: Option<Arc<dyn SlotApi<T>>>,
    started: bool,
    task: &'static str,
    decode: fn(&[u8]) -> Result<T, String>,
}

/// A fresh queued process task: the handle for the caller and its completer.
pub(crate) fn remote_pair<T: Send + 'static>(
    owner: Arc<dyn TaskOwner>,
    tag: u64,
    task: &'static str,
    decode: fn(&[u8]) -> Result<T, String>,
) -> (TaskHandle<T>, RemoteCompleter<T>) {
    let slot: Arc<dyn SlotApi<T>> = Arc::new(Slot::remote(owner, tag));
    (TaskHandle { slot: Arc::clone(&slot) }, RemoteCompleter { slot: Some(slot), started: false, task, decode })
}

impl<T: Send + 'static> RemoteDone for RemoteCompleter<T> {
    fn start(&mut self) -> bool {
        let Some(slot) = &self.slot else { return false };
        let core = slot.core();
        if !claim(core) {
            self.slot = None; // a canceller resolved it
            return false;
        }
        if let Some(refusal) = core.owner.refuse() {
            finish(core, Err(refusal));
            self.slot = None;
            return false;
        }
        self.started = true;
        true
    }

    fn finish(mut self: Box<Self>, outcome: Result<Vec<u8>, TaskError>) {
        if let Some(slot) = self.slot.take() {
            let task = self.task;
            let outcome = outcome.and_then(|bytes| {
                (self.decode)(&bytes).map_err(|message| TaskError::InvalidOutput { task: task.to_owned(), message })
            });
            if self.started {
                finish(slot.core(), outcome);
            } else {
                resolve_unstarted(slot.core(), outcome.err().unwrap_or(TaskError::Cancelled));
            }
        }
    }

    fn fail(mut self: Box<Self>, error: TaskError) {
        if let Some(slot) = self.slot.take() {
            if self.started {
                finish(slot.core(), Err(error));
            } else {
                resolve_unstarted(slot.core(), error);
            }
        }
    }
}

impl<T> Drop for RemoteCompleter<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let core = slot.core();
            if self.started {
                finish(core, Err(TaskError::Cancelled));
            } else {
                resolve_unstarted(core, core.owner.refuse().unwrap_or(TaskError::Cancelled));
            }
        }
    }
}
