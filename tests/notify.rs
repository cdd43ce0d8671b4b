//! Completion notification: `TaskHandle::on_complete` and `TaskHandle::register_waker` fire
//! exactly once on every way a task resolves (value, panic, cancel, revocation, stop, a drained
//! release), with no library lock held, and a panicking callback harms nothing else.
//!
//! Synchronisation is by channels and gates; the only clock-driven test is hard-expiry
//! revocation, where time is the subject.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Once};
use std::task::{Wake, Waker};
use std::thread::{self, ThreadId};
use std::time::Duration;

use common::*;
use crossbeam::channel::{unbounded, Receiver, Sender};
use leasepool::{AcquireOptions, LeaseState, TaskError, TaskHandle};
use log::{Level, LevelFilter};

/// Bound on every wait for a notification: generous, a hang fails instead of blocking CI.
const LONG: Duration = Duration::from_secs(10);

/// Aborts the test binary if a test hangs (a deadlock in a callback would block the test thread
/// itself, which no timeout could catch); finished on drop, also when the test fails.
struct Guard(Option<Watchdog>);

fn watchdog(what: &'static str) -> Guard {
    Guard(Some(Watchdog::start(what, Duration::from_secs(60))))
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(w) = self.0.take() {
            w.finish();
        }
    }
}

/// A waker that counts its wake-ups and reports each one on a channel.
struct CountingWaker {
    wakes: AtomicUsize,
    events: Sender<&'static str>,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, SeqCst);
        let _ = self.events.send("waker");
    }
}

fn counting_waker(events: Sender<&'static str>) -> (Arc<CountingWaker>, Waker) {
    let counting = Arc::new(CountingWaker { wakes: AtomicUsize::new(0), events });
    let waker = Waker::from(Arc::clone(&counting));
    (counting, waker)
}

/// A waker and a callback registered on one handle, with their counts.
struct Probe {
    waker: Arc<CountingWaker>,
    calls: Arc<AtomicUsize>,
    events: Receiver<&'static str>,
    /// `register_waker` found the task already resolved.
    already: bool,
}

fn probe<T: Send + 'static>(handle: &TaskHandle<T>) -> Probe {
    let (tx, events) = unbounded();
    let (waker, w) = counting_waker(tx.clone());
    let already = handle.register_waker(&w);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    handle.on_complete(move || {
        c.fetch_add(1, SeqCst);
        let _ = tx.send("callback");
    });
    Probe { waker, calls, events, already }
}

impl Probe {
    fn counts(&self) -> (usize, usize) {
        (self.waker.wakes.load(SeqCst), self.calls.load(SeqCst))
    }

    /// Waits (bounded) until both the waker and the callback fired, then checks each fired once.
    fn fired_once(&self) {
        let mut seen: Vec<_> =
            (0..2).map(|_| self.events.recv_timeout(LONG).expect("no completion notification in time")).collect();
        seen.sort_unstable();
        assert_eq!(seen, ["callback", "waker"]);
        self.exactly_once();
    }

    /// Each fired exactly once, and nothing else arrived.
    fn exactly_once(&self) {
        assert_eq!(self.counts(), (1, 1), "(waker wake-ups, callback runs)");
        assert!(self.events.try_recv().is_err(), "a notification fired twice");
    }

    fn not_fired(&self) {
        assert_eq!(self.counts(), (0, 0), "notified before the task resolved");
    }
}

/// Installs the capturing logger once for this test binary.
static LOGS: Capture = Capture::new();
static LOGGER: Once = Once::new();

fn capture_logs() {
    LOGGER.call_once(|| {
        log::set_logger(&LOGS).expect("the first logger of this binary");
        log::set_max_level(LevelFilter::Trace);
    });
}

#[test]
fn a_value_notifies_once_and_wait_still_returns_it() {
    let _w = watchdog("value");
    let m = started(builder(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let (gate, waiter) = gate();
    let handle = lease
        .executor()
        .submit(move || {
            waiter.pass();
            42
        })
        .unwrap();
    gate.wait_started();
    let probe = probe(&handle);
    assert!(!probe.already);
    probe.not_fired();
    gate.open_one();
    probe.fired_once();
    assert_eq!(handle.wait(), Ok(42));
    probe.exactly_once();
}

#[test]
fn a_panic_notifies_once_and_wait_reports_it() {
    let _w = watchdog("panic");
    let m = started(builder(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let (gate, waiter) = gate();
    let handle = lease
        .executor()
        .submit(move || -> u32 {
            waiter.pass();
            panic!("task exploded on purpose")
        })
        .unwrap();
    gate.wait_started();
    let probe = probe(&handle);
    gate.open_one();
    probe.fired_once();
    assert_eq!(handle.wait(), Err(TaskError::Panicked { message: "task exploded on purpose".into() }));
    probe.exactly_once();
}

#[test]
fn cancelling_through_the_handle_notifies_at_once_on_the_cancelling_thread() {
    let _w = watchdog("cancel");
    let m = started(builder(1).workers_per_pool(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let (gate, running) = occupy(&lease.executor());
    let queued = lease.executor().submit(|| 1).unwrap();
    let probe = probe(&queued);
    assert!(!probe.already);
    assert!(queued.cancel());
    // Resolved right here: both fired before `cancel` returned.
    assert_eq!(probe.counts(), (1, 1), "fired on the cancelling thread");
    probe.fired_once();
    assert!(!queued.cancel(), "a second cancel does nothing");
    assert_eq!(queued.wait(), Err(TaskError::Cancelled));
    probe.exactly_once();
    gate.open_one();
    assert_eq!(running.wait(), Ok(()));
}

#[test]
fn revocation_at_hard_expiry_notifies_a_queued_task_while_the_worker_is_busy() {
    let _w = watchdog("revocation");
    // Time is the subject: a 100 ms lease with no grace, checked every 10 ms. The bounds below
    // are generous (10 s) so that a slow or loaded CI machine does not turn this into a flake.
    let m =
        started(builder(1).workers_per_pool(1).lease_grace(Duration::ZERO).check_interval(Duration::from_millis(10)));
    let lease = m.acquire(AcquireOptions::new().lease_duration(Duration::from_millis(100))).unwrap();
    let (gate, running) = occupy(&lease.executor());
    let queued = lease.executor().submit(|| "late").unwrap();
    let probe = probe(&queued);
    // The callback runs on whichever thread revokes (the checker): it may use the manager.
    let (stats_tx, stats_rx) = unbounded();
    let manager = m.clone();
    queued.on_complete(move || {
        let _ = stats_tx.send(manager.stats().tasks.cancelled);
    });
    // Fired by the revocation itself (the lease resolves its watched queued tasks), not by the
    // worker reaching the job: the only worker is still blocked on the gate.
    probe.fired_once();
    assert_eq!(stats_rx.recv_timeout(LONG).unwrap(), 1, "counted before the notification");
    assert!(!running.is_finished());
    assert_eq!(lease.state(), LeaseState::Revoked);
    assert_eq!(queued.wait(), Err(TaskError::Cancelled));
    gate.open_one();
    assert_eq!(running.wait(), Ok(()));
    probe.exactly_once();
}

#[test]
fn manager_stop_notifies_a_task_queued_behind_a_blocking_one() {
    let _w = watchdog("stop");
    let m = started(builder(1).workers_per_pool(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let (gate, running) = occupy(&lease.executor());
    let queued = lease.executor().submit(|| 1).unwrap();
    let running_probe = probe(&running);
    let probe = probe(&queued);
    let (stats_tx, stats_rx) = unbounded();
    let manager = m.clone();
    queued.on_complete(move || {
        let _ = stats_tx.send(manager.stats().running);
    });
    m.stop();
    probe.fired_once();
    assert!(!stats_rx.recv_timeout(LONG).unwrap(), "stats from inside a callback fired by stop");
    assert_eq!(queued.wait(), Err(TaskError::Cancelled));
    // The running task is not interrupted by stop: it notifies when it finishes.
    running_probe.not_fired();
    gate.open_one();
    running_probe.fired_once();
    assert_eq!(running.wait(), Ok(()));
    probe.exactly_once();
}

#[test]
fn a_task_of_a_released_lease_still_runs_and_notifies() {
    let _w = watchdog("released");
    let m = started(builder(1).workers_per_pool(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let (gate, running) = occupy(&lease.executor());
    let queued = lease.executor().submit(|| 7).unwrap();
    let probe = probe(&queued);
    drop(lease); // drains: queued work still runs
    probe.not_fired();
    gate.open_one();
    probe.fired_once();
    assert_eq!(queued.wait(), Ok(7));
    assert_eq!(running.wait(), Ok(()));
    wait_for("the drained pool to come back", || m.leased_count() == 0);
    probe.exactly_once();
}

#[test]
fn a_registration_after_completion_fires_at_once_on_the_calling_thread() {
    let _w = watchdog("after completion");
    let m = started(builder(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let handle = lease.executor().submit(|| 5).unwrap();
    let (done_tx, done_rx) = unbounded();
    handle.on_complete(move || done_tx.send(()).unwrap());
    done_rx.recv_timeout(LONG).expect("the task completed");
    assert!(handle.is_finished());

    let me = thread::current().id();
    let (tx, rx) = unbounded::<ThreadId>();
    handle.on_complete(move || tx.send(thread::current().id()).unwrap());
    assert_eq!(rx.try_recv(), Ok(me), "ran before on_complete returned, on this thread");

    let (events, _keep) = unbounded();
    let (counting, waker) = counting_waker(events);
    assert!(handle.register_waker(&waker), "already resolved");
    assert_eq!(counting.wakes.load(SeqCst), 1, "woken before register_waker returned");
    assert_eq!(handle.wait(), Ok(5));
    assert_eq!(counting.wakes.load(SeqCst), 1);
}

#[test]
fn only_the_most_recent_waker_is_woken() {
    let _w = watchdog("replaced waker");
    let m = started(builder(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let (gate, waiter) = gate();
    let handle = lease.executor().submit(move || waiter.pass()).unwrap();
    gate.wait_started();
    let (first_tx, first_rx) = unbounded();
    let (second_tx, second_rx) = unbounded();
    let (first, first_waker) = counting_waker(first_tx);
    let (second, second_waker) = counting_waker(second_tx);
    assert!(!handle.register_waker(&first_waker));
    assert!(!handle.register_waker(&second_waker));
    // The same waker again (`will_wake`): kept once, woken once.
    assert!(!handle.register_waker(&second_waker.clone()));
    gate.open_one();
    assert_eq!(second_rx.recv_timeout(LONG), Ok("waker"));
    assert_eq!(handle.wait(), Ok(()));
    assert_eq!(second.wakes.load(SeqCst), 1);
    assert!(second_rx.try_recv().is_err());
    assert_eq!(first.wakes.load(SeqCst), 0, "the replaced waker is never woken");
    assert!(first_rx.try_recv().is_err());
}

/// What a callback that calls back into the library saw.
struct Reentered {
    cancelled_other: bool,
    own_handle_finished: bool,
    submitted: TaskHandle<u32>,
    leased: usize,
    handles: Vec<Arc<TaskHandle<u32>>>,
}

#[test]
fn callbacks_may_call_back_into_the_library() {
    let _w = watchdog("reentrant callbacks");
    let m = started(builder(1).workers_per_pool(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let exec = lease.executor();
    let (gate, waiter) = gate();
    let first = Arc::new(
        exec.submit(move || {
            waiter.pass();
            1
        })
        .unwrap(),
    );
    gate.wait_started();
    // Queued behind `first` on the only worker, which stays busy while `first`'s callbacks run.
    let second = Arc::new(exec.submit(|| 2).unwrap());
    let (tx, rx) = unbounded::<Reentered>();

    // Runs nested, on the worker thread, when `first`'s callback cancels `second`.
    let (manager, exec2, tx2) = (m.clone(), exec.clone(), tx.clone());
    second.on_complete(move || {
        let leased = manager.stats().leased;
        let submitted = exec2.submit(|| 4).unwrap();
        tx2.send(Reentered { cancelled_other: false, own_handle_finished: true, submitted, leased, handles: vec![] })
            .unwrap();
    });
    // Runs on the worker thread once `first` returned: stats, cancel another task, look at its
    // own handle, submit to the same lease.
    let (manager, exec2) = (m.clone(), exec.clone());
    let (own, other) = (Arc::clone(&first), Arc::clone(&second));
    first.on_complete(move || {
        let leased = manager.stats().leased;
        let cancelled_other = other.cancel();
        let own_handle_finished = own.is_finished();
        let _ = format!("{own:?}");
        let submitted = exec2.submit(|| 3).unwrap();
        // Hand the handles back, so the test owns them again once this returns.
        tx.send(Reentered { cancelled_other, own_handle_finished, submitted, leased, handles: vec![own, other] })
            .unwrap();
    });
    gate.open_one();

    // `second`'s callback reports first (it runs inside `first`'s, before that one sends).
    let nested = rx.recv_timeout(LONG).expect("second's callback ran");
    let outer = rx.recv_timeout(LONG).expect("first's callback ran");
    assert!(outer.cancelled_other, "second was still queued behind the busy worker");
    assert!(outer.own_handle_finished);
    assert_eq!((outer.leased, nested.leased), (1, 1));
    assert_eq!(nested.submitted.wait(), Ok(4));
    assert_eq!(outer.submitted.wait(), Ok(3));
    drop(outer.handles);
    let first = Arc::try_unwrap(first).expect("the callback gave its clone back");
    let second = Arc::try_unwrap(second).expect("the callback gave its clone back");
    assert_eq!(first.wait(), Ok(1));
    assert_eq!(second.wait(), Err(TaskError::Cancelled));
}

#[test]
fn a_panicking_callback_is_logged_and_harms_nothing_else() {
    let _w = watchdog("panicking callback");
    capture_logs();
    let m = started(builder(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let (gate, waiter) = gate();
    let handle = lease
        .executor()
        .submit(move || {
            waiter.pass();
            9
        })
        .unwrap();
    gate.wait_started();
    handle.on_complete(|| panic!("callback one fails on purpose"));
    let probe = probe(&handle);
    gate.open_one();
    probe.fired_once();
    assert_eq!(handle.wait_timeout(LONG).ok(), Some(Ok(9)), "the outcome is untouched");
    // The pool thread that ran the callbacks survived: the lease still runs work.
    assert_eq!(lease.run(|| 10), Ok(10));

    // After completion it runs at once on this thread; the panic does not reach the caller.
    let done = lease.executor().submit(|| ()).unwrap();
    let (tx, rx) = unbounded();
    done.on_complete(move || tx.send(()).unwrap());
    rx.recv_timeout(LONG).unwrap();
    done.on_complete(|| panic!("callback two fails on purpose"));
    let (tx, rx) = unbounded();
    done.on_complete(move || tx.send(()).unwrap());
    assert_eq!(rx.try_recv(), Ok(()));

    let logs = LOGS.0.lock().unwrap();
    for which in ["one", "two"] {
        let fragment = format!("callback {which} fails on purpose");
        assert!(
            logs.iter().any(|(level, target, msg)| *level == Level::Error
                && target == "leasepool"
                && msg.contains("completion callback panicked")
                && msg.contains(&fragment)),
            "no error record for callback {which}"
        );
    }
}

#[test]
fn many_threads_wait_finished_on_one_handle_while_another_cancels_a_queued_one() {
    let _w = watchdog("wait_finished");
    let m = started(builder(1).workers_per_pool(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let (gate, running) = occupy(&lease.executor());
    let queued = lease.executor().submit(|| 7).unwrap();
    assert!(!running.wait_finished(Some(Duration::from_millis(20))), "still blocked on the gate");
    assert_eq!(running.try_take(), None, "nothing to take before it resolves");
    thread::scope(|s| {
        // Four waiters on `queued` through a shared reference; the cancel resolves them all.
        let waiters: Vec<_> = (0..4).map(|_| s.spawn(|| queued.wait_finished(Some(LONG)))).collect();
        assert!(queued.cancel());
        for w in waiters {
            assert!(w.join().unwrap(), "every waiter saw the cancellation");
        }
    });
    assert_eq!(queued.try_take(), Some(Err(TaskError::Cancelled)));
    assert_eq!(queued.try_take(), None, "the outcome is taken once");
    gate.open_one();
    assert!(running.wait_finished(None));
    assert_eq!(running.try_take(), Some(Ok(())));
}
