//! [`TaskHandle`]: the caller's side of one submitted task: wait for it, poll it, cancel it, or
//! be told when it resolves (a callback, or a `Waker` for a future built on it).

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use crossbeam::utils::Backoff;

use super::slot::{resolve_unstarted, take, Notice, QueuedTask, SlotApi, Stage};
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
        self.spin();
        self.block_until(None);
        take(&mut self.slot.core().state.lock().stage)
    }

    /// Blocks until the task resolves or `timeout` (if any) passes, without taking the outcome;
    /// returns whether the task has resolved. Any number of threads may wait on one handle at
    /// once (through a shared reference); take the outcome afterwards with
    /// [`try_take`](Self::try_take) (or [`wait`](Self::wait), which then returns at once).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use leasepool::{AcquireOptions, LeasedExecutorManager};
    /// # let manager = LeasedExecutorManager::builder().max_pools(1).build().unwrap();
    /// # manager.start().unwrap();
    /// # let lease = manager.acquire(AcquireOptions::new()).unwrap();
    /// let handle = lease.executor().submit(|| 6 * 7).unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert!(handle.wait_finished(None)));
    ///     assert!(handle.wait_finished(Some(Duration::from_secs(10))));
    /// });
    /// assert_eq!(handle.try_take(), Some(Ok(42)));
    /// assert_eq!(handle.try_take(), None); // taken
    /// ```
    pub fn wait_finished(&self, timeout: Option<Duration>) -> bool {
        if timeout != Some(Duration::ZERO) {
            self.spin();
        }
        match timeout {
            None => self.block_until(None),
            Some(timeout) => match Instant::now().checked_add(timeout) {
                Some(deadline) => self.block_until(Some(deadline)),
                None => self.block_until(None),
            },
        }
    }

    /// Takes the outcome if the task has resolved: `None` while it has not, and `None` again
    /// once the outcome has been taken (by this or by [`wait_finished`](Self::wait_finished)'s
    /// caller on another thread). Never blocks. After it returned `Some`, do not call
    /// [`wait`](Self::wait) or [`wait_timeout`](Self::wait_timeout) on this handle: they would
    /// find no outcome to return and panic. A future over this handle pairs it with
    /// [`register_waker`](Self::register_waker): take, else register, else take again.
    pub fn try_take(&self) -> Option<Result<T, TaskError>> {
        let slot = self.slot.core();
        if !slot.finished.load(Ordering::Acquire) {
            return None;
        }
        let mut state = slot.state.lock();
        match state.stage {
            Stage::Done(_) => Some(take(&mut state.stage)),
            _ => None,
        }
    }

    /// Short tasks usually finish within microseconds: spin and yield briefly before sleeping,
    /// as channel receivers do, to save two context switches per round trip.
    fn spin(&self) {
        let backoff = Backoff::new();
        while !self.slot.core().finished.load(Ordering::Acquire) && !backoff.is_completed() {
            backoff.snooze();
        }
        if self.slot.core().remote && matches!(self.slot.core().state.lock().stage, Stage::Running) {
            // A process round trip takes tens of microseconds, and waking a parked thread costs
            // about as much again: when the task is already with a worker, yield (never hog a
            // core) a little longer before parking. A task still queued parks at once.
            let until = Instant::now() + REMOTE_YIELD;
            while !self.slot.core().finished.load(Ordering::Acquire) && Instant::now() < until {
                std::thread::yield_now();
            }
        }
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
            Ok(take(&mut self.slot.core().state.lock().stage))
        } else {
            Err(self)
        }
    }

    /// Sleeps until the task resolves or `deadline` passes; returns whether it resolved. Before
    /// the first sleep on a queued task it registers with the lease, which resolves it at once
    /// if the lease is revoked or stopped while it waits.
    fn block_until(&self, deadline: Option<Instant>) -> bool {
        let slot = self.slot.core();
        let mut state = slot.state.lock();
        loop {
            if matches!(state.stage, Stage::Done(_) | Stage::Taken) {
                return true;
            }
            if state.first_watch() {
                drop(state);
                self.watch();
                state = slot.state.lock();
                continue;
            }
            match deadline {
                None => slot.done.wait(&mut state),
                Some(deadline) => {
                    if slot.done.wait_until(&mut state, deadline).timed_out() {
                        return matches!(state.stage, Stage::Done(_) | Stage::Taken);
                    }
                }
            }
        }
    }

    /// Registers this queued task with its owner (once per task, see `SlotState::first_watch`),
    /// which then resolves it at once if the lease is revoked or stopped, instead of leaving it
    /// to a busy worker to reach.
    fn watch(&self) {
        let slot = self.slot.core();
        let queued = Arc::clone(&self.slot).queued();
        slot.owner.watch(Arc::downgrade(&queued));
        // Registered first, then checked: a revocation cannot slip between the two.
        slot.settle_if_refused();
    }

    /// Runs `f` once when the task resolves, however it resolves (value, panic, cancellation,
    /// revocation, manager stop, broken pool, crashed worker).
    ///
    /// `f` runs on the thread that resolves the task (a pool worker, the thread that cancels or
    /// revokes it, ...), or at once on this thread if the task has already resolved. Each
    /// registration runs once, in registration order, and callbacks still run if the handle is
    /// dropped first. A panic in `f` is caught and logged (`log` target `"leasepool"`); it
    /// affects neither the task's outcome nor the other callbacks.
    ///
    /// No lock of this library is held while `f` runs, so it may call back into it (submit,
    /// cancel, stats); keep it short, as it delays whatever that thread does next. One exception:
    /// a callback run by [`stop`](crate::LeasedExecutorManager::stop) (which resolves queued
    /// tasks while it holds the manager's start/stop lock) must not start or stop that manager.
    ///
    /// On a task still queued this also asks the lease to resolve it at once should the lease be
    /// revoked or the manager stop (as a blocked [`wait`](Self::wait) does).
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use leasepool::{AcquireOptions, LeasedExecutorManager};
    ///
    /// let manager = LeasedExecutorManager::builder().max_pools(1).build().unwrap();
    /// manager.start().unwrap();
    /// let lease = manager.acquire(AcquireOptions::new()).unwrap();
    /// let (tx, rx) = mpsc::channel();
    /// let handle = lease.executor().submit(|| 6 * 7).unwrap();
    /// handle.on_complete(move || tx.send("done").unwrap());
    /// assert_eq!(rx.recv().unwrap(), "done");
    /// assert_eq!(handle.wait().unwrap(), 42);
    /// ```
    pub fn on_complete(&self, f: impl FnOnce() + Send + 'static) {
        self.register(Notice::Callback(Box::new(f)));
    }

    /// Arranges for `waker` to be woken once when the task resolves: the building block of a
    /// `Future` over this handle.
    ///
    /// Only the most recently registered waker is woken: registering again replaces the previous
    /// one (a waker that [`will_wake`](Waker::will_wake) the same task is kept, not cloned). If
    /// the task has already resolved, `waker` is woken at once and this returns `true`; otherwise
    /// it returns `false` and the waker is stored, to be woken by the thread that resolves the
    /// task, with no lock of this library held (that may be this thread, before this returns:
    /// like [`on_complete`](Self::on_complete), registering on a queued task asks the lease to
    /// resolve it at once on revocation or stop, and does so at once if the lease already
    /// refuses work).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::{mpsc, Arc};
    /// use std::task::{Wake, Waker};
    /// use leasepool::{AcquireOptions, LeasedExecutorManager};
    ///
    /// /// Counts its wake-ups and reports each on a channel.
    /// struct Counting(AtomicUsize, mpsc::Sender<()>);
    /// impl Wake for Counting {
    ///     fn wake(self: Arc<Self>) {
    ///         self.0.fetch_add(1, Ordering::SeqCst);
    ///         self.1.send(()).unwrap();
    ///     }
    /// }
    ///
    /// let manager = LeasedExecutorManager::builder().max_pools(1).build().unwrap();
    /// manager.start().unwrap();
    /// let lease = manager.acquire(AcquireOptions::new()).unwrap();
    /// let (tx, rx) = mpsc::channel();
    /// let counting = Arc::new(Counting(AtomicUsize::new(0), tx));
    /// let waker = Waker::from(Arc::clone(&counting));
    ///
    /// let (go, gate) = mpsc::channel::<()>();
    /// let handle = lease.executor().submit(move || gate.recv().is_ok()).unwrap();
    /// assert!(!handle.register_waker(&waker)); // not resolved yet: woken later
    /// go.send(()).unwrap();
    /// rx.recv().unwrap(); // woken by the pool thread that finished the task
    /// assert!(handle.register_waker(&waker)); // resolved: woken at once
    /// assert_eq!(counting.0.load(Ordering::SeqCst), 2);
    /// assert_eq!(handle.wait().unwrap(), true);
    /// ```
    pub fn register_waker(&self, waker: &Waker) -> bool {
        self.register(Notice::Waker(waker))
    }

    /// Stores `notice` (and watches a queued task), or fires it now if the task has resolved;
    /// returns whether it had.
    fn register(&self, notice: Notice<'_>) -> bool {
        match self.slot.core().register(notice) {
            Ok(watch) => {
                if watch {
                    self.watch();
                }
                false
            }
            Err(notice) => {
                notice.fire_now();
                true
            }
        }
    }

    /// Whether the task has resolved (value, panic, cancellation or broken pool). A queued task of
    /// a revoked or stopped lease resolves here, as cancelled.
    pub fn is_finished(&self) -> bool {
        let slot = self.slot.core();
        slot.settle_if_refused();
        matches!(slot.state.lock().stage, Stage::Done(_) | Stage::Taken)
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
        let stage = match self.slot.core().state.lock().stage {
            Stage::Queued => "queued",
            Stage::Running => "running",
            Stage::Done(_) | Stage::Taken => "finished",
        };
        f.debug_struct("TaskHandle").field("stage", &stage).finish()
    }
}
