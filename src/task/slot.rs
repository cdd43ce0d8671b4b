//! The one-shot completion slot every task shares between its handle and its job, and the
//! protocol that resolves it: claim (queued → running), finish (account, then publish), and
//! resolving a task that never started.
//!
//! Completion notification lives here too, inside the same lock as the stage: a waker and a list
//! of callbacks, both taken out when the outcome is published and fired after the lock is
//! released. They sit behind one pointer that stays empty unless someone registers, so a task
//! nobody listens to costs no allocation and only a word in its slot.
//!
//! This file imports no sibling: the handle, the job kinds and the process tasks build on it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::Waker;

use parking_lot::{Condvar, Mutex};

use crate::error::TaskError;
use crate::util::catch_panic;

pub(super) enum Stage<T> {
    Queued,
    Running,
    Done(Result<T, TaskError>),
    Taken,
}

/// What the slot's lock guards: where the task is, and who to tell when it resolves.
pub(super) struct SlotState<T> {
    pub(super) stage: Stage<T>,
    /// The owner was asked to watch this queued task (`TaskOwner::watch`): once is enough, the
    /// owner keeps it until the task starts or the owner resolves it.
    watched: bool,
    /// Who to tell at publication; `None` (no allocation) until someone registers. Boxed so that
    /// every slot pays one word for it, not the size of a waker and a list.
    notify: Option<Box<Notify>>,
}

/// Who is told when the outcome is published.
#[derive(Default)]
struct Notify {
    /// Woken once at publication; a new registration replaces it.
    waker: Option<Waker>,
    /// Each run once at publication, in registration order.
    callbacks: Vec<Callback>,
}

/// A completion callback.
pub(super) type Callback = Box<dyn FnOnce() + Send>;

/// A registration: a callback to run, or a waker to wake, when the task resolves.
pub(super) enum Notice<'a> {
    Callback(Callback),
    Waker(&'a Waker),
}

pub(crate) struct Slot<T> {
    pub(super) state: Mutex<SlotState<T>>,
    /// Set once the outcome is published: lets `wait` spin briefly before it sleeps.
    pub(super) finished: AtomicBool,
    pub(super) done: Condvar,
    pub(super) owner: Arc<dyn TaskOwner>,
    /// The owner's name for this task (a grinder item id; unused by leases).
    tag: u64,
    /// Runs in a worker process: `wait` yields a little longer before it parks.
    pub(super) remote: bool,
}

/// How a task resolved, for accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    Completed,
    Panicked,
    Cancelled,
    PoolBroken,
    /// A process task ran past its own timeout ([`TaskError::TimedOut`]).
    TimedOut,
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
            Err(TaskError::TimedOut { .. }) => Resolution::TimedOut,
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

/// A job type that keeps its [`Slot`] in a `slot` field is a queued task through that slot.
macro_rules! queued_through_slot {
    ([$($generics:tt)*] $ty:ty) => {
        impl<$($generics)*> super::slot::QueuedTask for $ty {
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

pub(super) use queued_through_slot;

impl<T> Slot<T> {
    pub(super) fn new(owner: Arc<dyn TaskOwner>, tag: u64) -> Slot<T> {
        let state = Mutex::new(SlotState { stage: Stage::Queued, watched: false, notify: None });
        Slot { state, finished: AtomicBool::new(false), done: Condvar::new(), owner, tag, remote: false }
    }

    /// A slot for a task that runs in a worker process.
    pub(super) fn remote(owner: Arc<dyn TaskOwner>, tag: u64) -> Slot<T> {
        Slot { remote: true, ..Slot::new(owner, tag) }
    }

    /// Stores `notice` to fire when the outcome is published, or gives it back (`Err`) if the
    /// outcome already is: the caller fires it. `Ok(true)` when the task is still queued and
    /// nobody asked its owner to watch it yet: the caller must (see `SlotState::first_watch`).
    ///
    /// A waker that would wake the same task as the stored one is not cloned; a replaced waker
    /// is dropped after the lock is released (its drop is user code).
    pub(super) fn register<'a>(&self, notice: Notice<'a>) -> Result<bool, Notice<'a>> {
        let mut state = self.state.lock();
        if matches!(state.stage, Stage::Done(_) | Stage::Taken) {
            return Err(notice);
        }
        let notify = state.notify.get_or_insert_with(Box::default);
        let replaced = match notice {
            Notice::Callback(f) => {
                notify.callbacks.push(f);
                None
            }
            Notice::Waker(waker) => match &notify.waker {
                Some(stored) if stored.will_wake(waker) => None,
                _ => notify.waker.replace(waker.clone()),
            },
        };
        let watch = state.first_watch();
        drop(state);
        drop(replaced);
        Ok(watch)
    }
}

impl<T> SlotState<T> {
    /// Whether the task is queued and its owner was never asked to watch it; marks it watched,
    /// so the caller must now call `TaskOwner::watch` and then `settle_if_refused`.
    pub(super) fn first_watch(&mut self) -> bool {
        let first = matches!(self.stage, Stage::Queued) && !self.watched;
        self.watched |= first;
        first
    }
}

impl Notice<'_> {
    /// Fires a registration made after the outcome was published, on the calling thread.
    pub(super) fn fire_now(self) {
        match self {
            Notice::Callback(f) => run_callback(f),
            Notice::Waker(waker) => waker.wake_by_ref(),
        }
    }
}

impl Notify {
    /// Fires what was registered. Called once, after the outcome is published, with no lock held.
    fn fire(self) {
        if let Some(waker) = self.waker {
            if let Err(message) = catch_panic(|| waker.wake()) {
                log::error!(target: LOG_TARGET, "a task completion waker panicked: {message}");
            }
        }
        for f in self.callbacks {
            run_callback(f);
        }
    }
}

/// The `log` target of completion-callback failures (a slot does not know its manager's target).
const LOG_TARGET: &str = "leasepool";

/// Runs a completion callback; a panic is logged and goes no further (the task's outcome and the
/// other callbacks are unaffected, and the resolving thread, maybe a pool worker, carries on).
fn run_callback(f: Callback) {
    if let Err(message) = catch_panic(f) {
        log::error!(target: LOG_TARGET, "a task completion callback panicked: {message}");
    }
}

/// Queued → running. `false` if someone else (a canceller, or the pool) claimed it first.
pub(super) fn claim<T>(slot: &Slot<T>) -> bool {
    let mut state = slot.state.lock();
    if matches!(state.stage, Stage::Queued) {
        state.stage = Stage::Running;
        true
    } else {
        false
    }
}

/// Runs a claimed task: ask the owner whether it may run, run it under `catch_unwind`, account,
/// then publish.
pub(super) fn run_claimed<T>(slot: &Slot<T>, f: impl FnOnce() -> T) -> Resolution {
    let outcome = match slot.owner.refuse() {
        Some(refusal) => Err(refusal),
        None => catch_panic(f).map_err(|message| TaskError::Panicked { message }),
    };
    finish(slot, outcome)
}

/// Accounts for a claimed task's outcome, then publishes it.
pub(super) fn finish<T>(slot: &Slot<T>, outcome: Result<T, TaskError>) -> Resolution {
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
        matches!(self.state.lock().stage, Stage::Queued)
    }

    fn cancel(&self) -> bool {
        resolve_unstarted(self, TaskError::Cancelled)
    }
}

/// Resolves a task that has not started with `error` (cancelled or pool broken). Returns whether
/// it did (`false` once the task is running or done).
pub(super) fn resolve_unstarted<T>(slot: &Slot<T>, error: TaskError) -> bool {
    // Claim the task so the pool skips it, account for it, then resolve the handle.
    claim(slot) && {
        finish(slot, Err(error));
        true
    }
}

/// Stores the outcome (the first one wins), wakes blocked waiters, then fires the registered
/// waker and callbacks on this thread with no lock held. Every resolution path ends here (value,
/// panic, cancel, refusal by a revoked, stopped or broken owner, a worker crash, a job dropped
/// unrun): all go through `finish`.
fn publish<T>(slot: &Slot<T>, outcome: Result<T, TaskError>) {
    let mut state = slot.state.lock();
    if matches!(state.stage, Stage::Queued | Stage::Running) {
        state.stage = Stage::Done(outcome);
        slot.finished.store(true, Ordering::Release);
        let notify = state.notify.take();
        drop(state);
        slot.done.notify_all();
        if let Some(notify) = notify {
            notify.fire();
        }
    }
}

/// Takes a published outcome out of the stage (leaving it taken).
pub(super) fn take<T>(stage: &mut Stage<T>) -> Result<T, TaskError> {
    match std::mem::replace(stage, Stage::Taken) {
        Stage::Done(outcome) => outcome,
        _ => unreachable!("a TaskHandle's outcome is taken only once, by value"),
    }
}
