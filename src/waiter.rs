//! The acquire waiter: one queue entry that a thread parks on or a future polls with a `Waker`,
//! and that can be cancelled at any moment.
//!
//! A caller that finds no idle pool joins the state's waiter queue with a [`Signal`]. Whatever
//! changes for it (a pool handed to it, an idle pool it should look at, a failed build, a stop)
//! wakes that signal, and the caller looks again ([`Entry::poll`]). Hand-offs are written into
//! the state under its lock and taken out by the caller under the same lock; cancelling (a
//! timeout, an interrupt, a dropped future, a dropped entry) also takes the lock and passes on
//! anything handed over and not taken, exactly as a release would. So a hand-off is never lost
//! and a cancelled entry never holds a lease. Blocking acquires and async acquires are the same
//! entry in the same queue: one implementation, served by one rule (see `state.rs`).

use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use crate::state::{AcquireStep, Effects, Grant, LeaseRequest, State, WaiterPoll};
use crate::sync::{AtomicBool, Condvar, Mutex};

/// A queued caller's wake-up: a thread parked on the condition variable, or a task's `Waker`
/// (only the most recently registered one is woken).
#[derive(Debug)]
pub(crate) struct Signal {
    /// Mirrors `Inner::woken` for spinning without the lock.
    woken: AtomicBool,
    inner: Mutex<Inner>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct Inner {
    woken: bool,
    waker: Option<Waker>,
}

impl Signal {
    pub(crate) fn new() -> Self {
        Signal { woken: AtomicBool::new(false), inner: Mutex::new(Inner::default()), cv: Condvar::new() }
    }

    /// Marks the waiter woken and wakes it: the parked thread, or the registered waker.
    pub(crate) fn wake(&self) {
        let waker = {
            let mut inner = self.inner.lock();
            inner.woken = true;
            self.woken.store(true, Release);
            inner.waker.take()
        };
        self.cv.notify_one();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether a wake-up is pending (cheap; for spinning before parking).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn is_woken(&self) -> bool {
        self.woken.load(Acquire)
    }

    #[cfg_attr(not(any(test, loom, feature = "async")), allow(dead_code))] // used by the async adapter
    /// Registers the task to wake and forgets earlier wake-ups: call it *before* looking at the
    /// entry, so a wake-up that races with the look is never lost.
    pub(crate) fn set_waker(&self, waker: &Waker) {
        let mut inner = self.inner.lock();
        inner.woken = false;
        self.woken.store(false, Release);
        match &mut inner.waker {
            Some(old) if old.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
    }

    /// Parks the calling thread until woken or `deadline`. Returns whether it was woken (and
    /// consumes the wake-up).
    #[cfg(not(loom))]
    pub(crate) fn park(&self, deadline: Option<Instant>) -> bool {
        let mut inner = self.inner.lock();
        while !inner.woken {
            match deadline {
                None => self.cv.wait(&mut inner),
                Some(deadline) => {
                    if self.cv.wait_until(&mut inner, deadline).timed_out() {
                        break;
                    }
                }
            }
        }
        self.woken.store(false, Release);
        std::mem::take(&mut inner.woken)
    }

    /// Under loom a deadline is a timeout that may fire at once: the model explores a waiter
    /// giving up at every point.
    #[cfg(loom)]
    pub(crate) fn park(&self, deadline: Option<Instant>) -> bool {
        let mut inner = self.inner.lock();
        while !inner.woken && deadline.is_none() {
            inner = self.cv.wait(inner);
        }
        self.woken.store(false, Release);
        std::mem::take(&mut inner.woken)
    }
}

/// What owns a waiter queue: the manager, or a loom model. `apply` runs the state machine's
/// effects after the lock is dropped (wake signals, retire and build pools, log).
pub(crate) trait Queue: Send + Sync + 'static {
    type Pool: Clone + Send + Sync + 'static;
    fn state(&self) -> &Mutex<State<Self::Pool, Arc<Signal>>>;
    fn apply(self: &Arc<Self>, effects: Effects<Self::Pool, Arc<Signal>>);
}

/// Why an entry ended without a lease (the caller turns it into its own error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    NotRunning,
    /// The entry's deadline passed (it has left the queue; nothing was taken).
    TimedOut,
    /// The pool built for this waiter could not be built.
    BuildFailed(String),
}

/// How a blocking wait on an entry ended without a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    Refused(Refused),
    TimedOut,
    Interrupted,
}

/// One acquire, from its first look until it has a lease or gives up. Dropping it cancels it.
pub(crate) struct Entry<Q: Queue> {
    queue: Arc<Q>,
    request: LeaseRequest,
    signal: Arc<Signal>,
    /// The waiter id while queued.
    queued: Option<u64>,
    /// When the entry gives up; the checker wakes it then.
    deadline: Option<Instant>,
    done: bool,
}

impl<Q: Queue> Entry<Q> {
    /// A fresh entry; nothing happens until the first [`poll`](Self::poll).
    pub(crate) fn new(queue: Arc<Q>, request: LeaseRequest) -> Self {
        Entry { queue, request, signal: Arc::new(Signal::new()), queued: None, deadline: None, done: false }
    }

    /// Gives a polled entry a deadline (before its first look): the checker wakes it then, and
    /// a look at or after it gives up with [`Refused::TimedOut`]. (A blocking [`wait`](Self::wait)
    /// times out by itself and needs none.)
    #[cfg_attr(all(not(feature = "async"), any(loom, not(test))), allow(dead_code))] // used by the async adapter
    pub(crate) fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The entry's wake-up signal (to park on, register a waker with, or fire an interrupt at).
    pub(crate) fn signal(&self) -> &Arc<Signal> {
        &self.signal
    }

    /// Polls the entry from a task: registers `waker` (replacing an earlier one) and looks.
    /// `Pending` until it has a lease or a refusal; after that it stays `Pending` (the outcome
    /// is delivered once).
    #[cfg_attr(not(any(test, loom, feature = "async")), allow(dead_code))] // used by the async adapter
    pub(crate) fn poll_with(&mut self, waker: &Waker) -> std::task::Poll<Result<Grant<Q::Pool>, Refused>> {
        if self.done {
            return std::task::Poll::Pending;
        }
        self.signal.set_waker(waker);
        let now = Instant::now();
        match self.poll(now) {
            Some(outcome) => std::task::Poll::Ready(outcome),
            None if self.deadline.is_some_and(|d| now >= d) => {
                // Anything handed over since the look above is passed on, never lost.
                self.cancel(true, now);
                std::task::Poll::Ready(Err(Refused::TimedOut))
            }
            None => std::task::Poll::Pending,
        }
    }

    /// Looks once: the first look is a newcomer's (take an idle pool, or join the queue), later
    /// looks take what was handed over. `None` means "still queued: wait for the signal".
    pub(crate) fn poll(&mut self, now: Instant) -> Option<Result<Grant<Q::Pool>, Refused>> {
        if self.done {
            return None;
        }
        let queue = Arc::clone(&self.queue);
        let mut st = queue.state().lock();
        let (outcome, effects) = match self.queued {
            None => match st.try_acquire(&self.request, now) {
                AcquireStep::Granted(grant, effects) => (Some(Ok(grant)), effects),
                AcquireStep::NotRunning => (Some(Err(Refused::NotRunning)), Effects::default()),
                AcquireStep::Busy { .. } => {
                    let (id, effects) = st.enqueue(Arc::clone(&self.signal), now, self.deadline);
                    self.queued = Some(id);
                    (None, effects)
                }
            },
            Some(id) => match st.poll_waiter(id, &self.request, now) {
                (WaiterPoll::Granted(grant), effects) => (Some(Ok(grant)), effects),
                (WaiterPoll::Failed(reason), effects) => (Some(Err(Refused::BuildFailed(reason))), effects),
                (WaiterPoll::NotRunning, effects) => (Some(Err(Refused::NotRunning)), effects),
                (WaiterPoll::Pending, effects) => (None, effects),
            },
        };
        drop(st);
        if outcome.is_some() {
            self.queued = None;
            self.done = true;
        }
        Q::apply(&self.queue, effects);
        outcome
    }

    /// Blocks the calling thread on this entry until it has a lease, `deadline` passes or
    /// `interrupted()` says so (checked after every look; whoever makes it true must then wake
    /// the entry's signal). Spins briefly before the first park: under contention a hand-off
    /// often comes within microseconds, which saves a sleep and a wake-up.
    pub(crate) fn wait(
        &mut self,
        deadline: Option<Instant>,
        interrupted: impl Fn() -> bool,
    ) -> Result<Grant<Q::Pool>, Ended> {
        let mut spun = false;
        loop {
            if let Some(outcome) = self.poll(Instant::now()) {
                return outcome.map_err(Ended::Refused);
            }
            if interrupted() {
                self.cancel(false, Instant::now());
                return Err(Ended::Interrupted);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                // Anything handed over since the look above is passed on, never lost.
                self.cancel(true, now);
                return Err(Ended::TimedOut);
            }
            if !spun {
                spun = true;
                if self.spin() {
                    continue;
                }
            }
            self.signal.park(deadline);
        }
    }

    /// Spins and yields briefly while no wake-up is pending; returns whether one came.
    #[cfg(not(loom))]
    fn spin(&self) -> bool {
        let backoff = crossbeam::utils::Backoff::new();
        while !self.signal.is_woken() && !backoff.is_completed() {
            backoff.snooze();
        }
        self.signal.is_woken()
    }

    /// No spinning in the model: it only adds states.
    #[cfg(loom)]
    fn spin(&self) -> bool {
        false
    }

    /// Gives up: leaves the queue, and passes on whatever was handed over and not taken (to the
    /// next waiter or the idle set). Never takes a lease. Idempotent; `Drop` calls it.
    pub(crate) fn cancel(&mut self, timed_out: bool, now: Instant) {
        self.done = true;
        if let Some(id) = self.queued.take() {
            let effects = self.queue.state().lock().cancel_waiter(id, timed_out, now);
            Q::apply(&self.queue, effects);
        }
    }
}

impl<Q: Queue> Drop for Entry<Q> {
    fn drop(&mut self) {
        if self.queued.is_some() {
            self.cancel(false, Instant::now());
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Mutex as StdMutex;
    use std::task::{Poll, Wake};
    use std::time::Duration;

    use super::*;
    use crate::{AcquireOptions, LeasedExecutorManager};

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    fn request() -> LeaseRequest {
        LeaseRequest { owner: None, duration: Duration::from_secs(60), grace: Duration::ZERO }
    }

    /// Blocking and waker-based waiters interleaved in the one queue are served in arrival order
    /// (strict FIFO here: fairness bound zero), and a waker is woken when its turn comes.
    #[test]
    fn waker_and_blocking_waiters_are_served_in_arrival_order() {
        let manager = LeasedExecutorManager::builder().max_pools(1).fairness_bound(Duration::ZERO).build().unwrap();
        manager.start().unwrap();
        let held = manager.acquire(AcquireOptions::new()).unwrap();
        let order = Arc::new(StdMutex::new(Vec::new()));
        let waiting = |n: usize| {
            let m = manager.clone();
            move || m.stats().waiting == n
        };
        let blocking = |name: &'static str| {
            let (m, order) = (manager.clone(), Arc::clone(&order));
            std::thread::spawn(move || {
                let lease = m.acquire(AcquireOptions::new()).unwrap();
                order.lock().unwrap().push(name);
                drop(lease);
            })
        };
        let first = blocking("blocking-1");
        wait_until(waiting(1));
        let counter = Arc::new(CountingWaker::default());
        let waker = std::task::Waker::from(Arc::clone(&counter));
        let mut entry = Entry::new(Arc::clone(manager.shared()), request());
        assert!(entry.poll_with(&waker).is_pending());
        let third = blocking("blocking-3");
        wait_until(waiting(3));

        drop(held);
        first.join().unwrap(); // served, then released: the pool is handed to the entry
        wait_until(|| counter.0.load(SeqCst) >= 1);
        let Poll::Ready(Ok(grant)) = entry.poll_with(&waker) else { panic!("the entry is served second") };
        order.lock().unwrap().push("waker-2");
        assert_eq!(manager.stats().waiting, 1, "the third still waits behind the entry");
        drop(crate::lease::ExecutorLease::new(grant));
        third.join().unwrap();
        assert_eq!(*order.lock().unwrap(), vec!["blocking-1", "waker-2", "blocking-3"]);
    }

    /// A polled entry needs no timer: the checker wakes it at its deadline (time is the subject:
    /// a 100 ms deadline, up to 10 s to see it), and its next look gives up without a lease.
    #[test]
    fn the_checker_wakes_a_polled_entry_at_its_deadline() {
        let manager =
            LeasedExecutorManager::builder().max_pools(1).check_interval(Duration::from_secs(3600)).build().unwrap();
        manager.start().unwrap();
        let held = manager.acquire(AcquireOptions::new()).unwrap();
        let counter = Arc::new(CountingWaker::default());
        let waker = std::task::Waker::from(Arc::clone(&counter));
        let deadline = Instant::now() + Duration::from_millis(100);
        let mut entry = Entry::new(Arc::clone(manager.shared()), request()).with_deadline(Some(deadline));
        assert!(entry.poll_with(&waker).is_pending());
        wait_until(|| counter.0.load(SeqCst) >= 1);
        assert!(Instant::now() >= deadline, "woken at the deadline, not before");
        assert!(matches!(entry.poll_with(&waker), Poll::Ready(Err(Refused::TimedOut))));
        let s = manager.stats();
        assert_eq!((s.waiting, s.counters.acquire_timeouts, s.leased), (0, 1, 1));
        drop(held);
        assert_eq!(manager.available_count(), 1, "nothing was taken");
    }

    fn wait_until(cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "condition not reached in 10 s");
            std::thread::yield_now();
        }
    }
}
