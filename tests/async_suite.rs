//! Issue 10: the async adapter's behaviour suite, run under four executors: tokio current-thread,
//! tokio multi-thread (the case future is `tokio::spawn`ed, so it runs on a worker thread),
//! smol, and `futures::executor::block_on`. The tokio runtimes are built without a timer: no
//! case relies on a runtime timer (the options' timeout is enforced by the manager's checker).
//!
//! Then a few cases that are about one executor or none: a runtime timeout cancels by drop,
//! the futures are `Send + 'static + Unpin` and can finish on another runtime than the one that
//! first polled them, only the latest waker is woken, polling after completion panics, and
//! `cancel_on_drop`.
//!
//! "It happened" is said by a channel, a thread join or the manager's state, never by a sleep;
//! every case runs under a watchdog.
#![cfg(feature = "async")]

mod common;

use std::future::{Future, IntoFuture};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use futures::poll;
use leasepool::{AcquireError, AcquireOptions, Interrupt, LeaseError, LeaseState, StopMode, TaskError, WorkGrinder};

const LONG: Duration = Duration::from_secs(30);

/// The executors the suite runs under.
#[derive(Clone, Copy, Debug)]
enum Rt {
    TokioCurrent,
    TokioMulti,
    Smol,
    BlockOn,
}

/// Runs one case to completion on `rt`, under a watchdog.
fn run<F: Future<Output = ()> + Send + 'static>(rt: Rt, name: &'static str, case: F) {
    let watchdog = Watchdog::start(name, Duration::from_secs(120));
    match rt {
        Rt::TokioCurrent => tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(case),
        Rt::TokioMulti => {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
            rt.block_on(rt.spawn(case)).unwrap()
        }
        Rt::Smol => smol::block_on(case),
        Rt::BlockOn => futures::executor::block_on(case),
    }
    watchdog.finish();
}

/// One `#[test]` per case and executor.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod tokio_current_thread { $( #[test] fn $case() { super::run(super::Rt::TokioCurrent, stringify!($case), super::cases::$case()) } )* }
        mod tokio_multi_thread { $( #[test] fn $case() { super::run(super::Rt::TokioMulti, stringify!($case), super::cases::$case()) } )* }
        mod on_smol { $( #[test] fn $case() { super::run(super::Rt::Smol, stringify!($case), super::cases::$case()) } )* }
        mod block_on { $( #[test] fn $case() { super::run(super::Rt::BlockOn, stringify!($case), super::cases::$case()) } )* }
    };
}

suite!(
    acquire_run_submit_and_release,
    many_callers_share_two_pools,
    the_options_timeout_needs_no_runtime_timer,
    try_acquire_is_unaffected,
    dropping_an_acquire_never_takes_or_loses_a_pool,
    stop_wakes_pending_acquires_with_not_running,
    stop_wakes_awaited_handles,
    revocation_wakes_awaited_handles,
    interrupts_before_and_while_pending,
    an_invalid_request_is_refused,
    grinder_handles_are_awaited,
    a_drain_can_be_awaited,
);

mod cases {
    use super::*;

    /// The tour: acquire with owner and timeout, `run_async`, submit + await, release.
    pub async fn acquire_run_submit_and_release() {
        let m = started(builder(2));
        let lease = m.acquire_async(AcquireOptions::new().owner("api").timeout(Duration::from_secs(10))).await.unwrap();
        assert_eq!(lease.owner(), Some("api"));
        assert_eq!(lease.run_async(|| (1..=10u64).product::<u64>()).await, Ok(3_628_800));
        let handle = lease.executor().submit(|| "work").unwrap();
        assert_eq!(handle.await, Ok("work"));
        let handles: Vec<_> = (0..16u64).map(|i| lease.executor().submit(move || i * i).unwrap()).collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        assert_eq!(sum, (0..16u64).map(|i| i * i).sum::<u64>());
        let panicked = lease.run_async(|| -> u32 { panic!("boom") }).await;
        assert!(matches!(panicked, Err(TaskError::Panicked { message }) if message.contains("boom")));
        assert_eq!(m.leased_count(), 1);
        drop(lease);
        assert_eq!(m.leased_count(), 0);
        let s = m.stats();
        assert_eq!((s.waiting, s.counters.leases_immediate + s.counters.leases_after_wait), (0, 1));
    }

    /// 32 concurrent callers (one task, joined futures) through 2 pools: each is served.
    pub async fn many_callers_share_two_pools() {
        let m = started(builder(2));
        let callers = (0..32u64).map(|i| {
            let m = m.clone();
            async move {
                let lease = m.acquire_async(AcquireOptions::new().timeout(LONG)).await.unwrap();
                lease.run_async(move || i * 2).await.unwrap()
            }
        });
        let results = futures::future::join_all(callers).await;
        assert_eq!(results.iter().sum::<u64>(), (0..32u64).map(|i| i * 2).sum::<u64>());
        let s = m.stats();
        assert_eq!((s.leased, s.waiting, s.counters.leases_immediate + s.counters.leases_after_wait), (0, 0, 32));
    }

    /// `AcquireOptions::timeout` resolves `TimedOut` at the deadline although no executor here
    /// has a timer: the manager's checker wakes the future. Nothing is taken.
    pub async fn the_options_timeout_needs_no_runtime_timer() {
        let m = started(builder(1));
        let held = m.acquire(AcquireOptions::new()).unwrap();
        let timeout = Duration::from_millis(100);
        let began = Instant::now();
        let outcome = m.acquire_async(AcquireOptions::new().timeout(timeout)).await;
        assert!(matches!(outcome, Err(AcquireError::TimedOut { waited }) if waited >= timeout), "{outcome:?}");
        assert!(began.elapsed() >= timeout);
        // A zero timeout with no free pool gives up at its first look.
        let zero = m.acquire_async(AcquireOptions::new().timeout(Duration::ZERO)).await;
        assert!(matches!(zero, Err(AcquireError::TimedOut { .. })));
        let s = m.stats();
        assert_eq!((s.waiting, s.leased, s.counters.acquire_timeouts), (0, 1, 2));
        drop(held);
        assert_eq!(m.available_count(), 1, "the timed-out acquires took nothing");
        // With a free pool, a zero timeout takes it.
        let lease = m.acquire_async(AcquireOptions::new().timeout(Duration::ZERO)).await.unwrap();
        drop(lease);
    }

    /// `try_acquire` keeps failing fast while async waiters are queued; a queued waiter is
    /// served when the pool comes back.
    pub async fn try_acquire_is_unaffected() {
        let m = started(builder(1));
        let lease = m.acquire_async(AcquireOptions::new()).await.unwrap();
        assert!(matches!(m.try_acquire(AcquireOptions::new()), Err(AcquireError::Unavailable { max_pools: 1 })));
        let mut waiter = m.acquire_async(AcquireOptions::new());
        assert!(poll!(&mut waiter).is_pending());
        assert_eq!(m.stats().waiting, 1);
        let began = Instant::now();
        assert!(matches!(m.try_acquire(AcquireOptions::new()), Err(AcquireError::Unavailable { .. })));
        assert!(began.elapsed() < Duration::from_secs(5), "try_acquire never waits");
        drop(lease);
        let lease = waiter.await.unwrap();
        drop(lease);
        drop(m.try_acquire(AcquireOptions::new()).expect("the pool is idle again"));
    }

    /// Dropping an acquire future: before its first poll (nothing happens), while queued (it
    /// leaves the queue), and right after a pool was handed to it (strict hand-off, fairness
    /// bound zero: the pool is passed on to the next waiter, not lost and not leased).
    pub async fn dropping_an_acquire_never_takes_or_loses_a_pool() {
        let m = started(builder(1).fairness_bound(Duration::ZERO));
        drop(m.acquire_async(AcquireOptions::new()));
        let held = m.acquire(AcquireOptions::new()).unwrap();

        let mut queued = m.acquire_async(AcquireOptions::new());
        assert!(poll!(&mut queued).is_pending());
        assert_eq!(m.stats().waiting, 1);
        drop(queued);
        assert_eq!(m.stats().waiting, 0);

        let mut first = m.acquire_async(AcquireOptions::new().owner("first"));
        let mut second = m.acquire_async(AcquireOptions::new().owner("second"));
        assert!(poll!(&mut first).is_pending());
        assert!(poll!(&mut second).is_pending());
        drop(held); // handed to `first` under the lock (strict FIFO hand-off): neither idle nor leased
        let s = m.stats();
        assert_eq!((s.available, s.leased, s.waiting), (0, 0, 1), "the pool was handed to the first waiter");
        drop(first); // never polled again: the hand-off goes to `second`
        let lease = second.await.unwrap();
        assert_eq!(lease.owner(), Some("second"));
        assert_eq!(m.stats().waiting, 0);

        let mut last = m.acquire_async(AcquireOptions::new());
        assert!(poll!(&mut last).is_pending());
        drop(lease); // handed to `last` ...
        assert_eq!((m.available_count(), m.leased_count()), (0, 0));
        drop(last); // ... which passes it back to the idle set
        assert_eq!((m.available_count(), m.leased_count(), m.stats().waiting), (1, 0, 0));
    }

    /// `stop` wakes every pending async acquire (polled once, then awaited while another thread
    /// stops the manager: only the stop can wake them) with `NotRunning`.
    pub async fn stop_wakes_pending_acquires_with_not_running() {
        let m = started(builder(1));
        let held = m.acquire(AcquireOptions::new()).unwrap();
        let mut pending: Vec<_> = (0..3).map(|_| m.acquire_async(AcquireOptions::new())).collect();
        for f in &mut pending {
            assert!(poll!(f).is_pending());
        }
        assert_eq!(m.stats().waiting, 3);
        let stopper = {
            let m = m.clone();
            thread::spawn(move || m.stop())
        };
        for f in pending {
            assert!(matches!(f.await, Err(AcquireError::NotRunning)));
        }
        stopper.join().unwrap();
        assert!(matches!(m.acquire_async(AcquireOptions::new()).await, Err(AcquireError::NotRunning)));
        assert_eq!(held.state(), LeaseState::Stopped);
    }

    /// `stop` resolves a queued, awaited task as cancelled and wakes it; the running one
    /// finishes.
    pub async fn stop_wakes_awaited_handles() {
        let m = started(builder(1).workers_per_pool(1));
        let lease = m.acquire_async(AcquireOptions::new()).await.unwrap();
        let (gate, running) = occupy(&lease.executor());
        let mut queued = lease.executor().submit(|| 1).unwrap().into_future();
        assert!(poll!(&mut queued).is_pending());
        let stopper = {
            let m = m.clone();
            thread::spawn(move || m.stop())
        };
        assert_eq!(queued.await, Err(TaskError::Cancelled));
        stopper.join().unwrap();
        gate.open_one();
        assert_eq!(running.await, Ok(()), "a running task finishes");
    }

    /// A lease revoked at hard expiry (100 ms lease, zero grace, 10 ms checks: time is the
    /// subject, and the bound is the watchdog's) wakes an awaited queued task as cancelled, and
    /// refuses `run_async` with `Expired`.
    pub async fn revocation_wakes_awaited_handles() {
        let m = started(
            builder(1).workers_per_pool(1).lease_grace(Duration::ZERO).check_interval(Duration::from_millis(10)),
        );
        let lease = m.acquire_async(AcquireOptions::new().lease_duration(Duration::from_millis(100))).await.unwrap();
        let (gate, running) = occupy(&lease.executor());
        let queued = lease.executor().submit(|| 1).unwrap();
        assert_eq!(queued.await, Err(TaskError::Cancelled));
        assert_eq!(lease.state(), LeaseState::Revoked);
        let refused = lease.run_async(|| 1).await;
        assert!(matches!(refused, Err(TaskError::Rejected(LeaseError::Expired { .. }))), "{refused:?}");
        gate.open_one();
        assert_eq!(running.await, Ok(()));
        assert_eq!(m.stats().counters.leases_revoked, 1);
    }

    /// An interrupt fired before the acquire refuses it at once (even with a free pool, as the
    /// blocking acquire does); one fired while it waits wakes it. Neither takes a lease.
    pub async fn interrupts_before_and_while_pending() {
        let m = started(builder(1));
        let fired = Interrupt::new();
        fired.fire();
        let refused = m.acquire_async(AcquireOptions::new().interrupt(fired)).await;
        assert!(matches!(refused, Err(AcquireError::Interrupted)));
        let held = m.acquire(AcquireOptions::new()).unwrap();
        let interrupt = Interrupt::new();
        let mut waiting = m.acquire_async(AcquireOptions::new().interrupt(interrupt.clone()));
        assert!(poll!(&mut waiting).is_pending());
        let firer = thread::spawn(move || interrupt.fire());
        assert!(matches!(waiting.await, Err(AcquireError::Interrupted)));
        firer.join().unwrap();
        assert_eq!(m.stats().waiting, 0);
        drop(held);
        assert_eq!(m.available_count(), 1);
    }

    /// The request is validated like the blocking acquire's.
    pub async fn an_invalid_request_is_refused() {
        let m = started(builder(1));
        let zero = m.acquire_async(AcquireOptions::new().lease_duration(Duration::ZERO)).await;
        assert!(matches!(zero, Err(AcquireError::InvalidLeaseDuration { .. })));
        let huge = m.acquire_async(AcquireOptions::new().lease_duration(Duration::MAX)).await;
        assert!(matches!(huge, Err(AcquireError::InvalidLeaseDuration { .. })));
        let c = m.stats().counters;
        assert_eq!(c.leases_immediate + c.leases_after_wait, 0);
    }

    /// Grinder handles are task handles: `enqueue(..)?.await`.
    pub async fn grinder_handles_are_awaited() {
        let m = started(builder(2));
        let grinder = WorkGrinder::builder(m.clone()).max_wait(Duration::from_millis(1)).build().unwrap();
        grinder.start().unwrap();
        let handles: Vec<_> = (0..64u64).map(|i| grinder.enqueue(move || i * i).unwrap()).collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        assert_eq!(sum, (0..64u64).map(|i| i * i).sum::<u64>());
        let all =
            futures::future::join_all((0..32u64).map(|i| grinder.enqueue(move || i).unwrap().into_future())).await;
        assert_eq!(all.into_iter().map(Result::unwrap).sum::<u64>(), (0..32u64).sum::<u64>());
        grinder.stop(StopMode::Drain { deadline: None });
    }

    /// `Drain::finished` resolves when the last pending task of a released lease finished.
    pub async fn a_drain_can_be_awaited() {
        let m = started(builder(1).workers_per_pool(1));
        let lease = m.acquire_async(AcquireOptions::new()).await.unwrap();
        let (gate, running) = occupy(&lease.executor());
        let drain = lease.release();
        assert_eq!(drain.state(), LeaseState::Draining);
        let mut finished = drain.finished();
        assert!(poll!(&mut finished).is_pending());
        let opener = thread::spawn(move || gate.open_one());
        finished.await;
        opener.join().unwrap();
        assert_eq!(drain.state(), LeaseState::Released);
        assert_eq!(m.available_count(), 1);
        assert_eq!(running.await, Ok(()));
        drain.finished().await; // over already: ready at once
    }
}

// ---------------------------------------------------------------------------------------------
// One executor, or none

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Counting(AtomicUsize);

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn counting() -> (Arc<Counting>, Waker) {
    let c = Arc::new(Counting::default());
    (Arc::clone(&c), Waker::from(c))
}

fn poll_with<F: Future + Unpin>(f: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(waker))
}

/// A tokio timer around the acquire cancels it by drop: it leaves the queue, takes nothing, and
/// is not counted as an options timeout.
#[test]
fn a_runtime_timeout_cancels_by_drop() {
    let watchdog = Watchdog::start("runtime timeout", LONG);
    let m = started(builder(1));
    let held = m.acquire(AcquireOptions::new()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let outcome = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(50), m.acquire_async(AcquireOptions::new())).await
    });
    assert!(outcome.is_err(), "the runtime timer fired first");
    let s = m.stats();
    assert_eq!((s.waiting, s.leased, s.counters.acquire_timeouts), (0, 1, 0));
    drop(held);
    assert_eq!(m.available_count(), 1);
    watchdog.finish();
}

/// The futures are `Send + 'static + Unpin`: spawned on a multi-thread runtime, and first
/// polled on one runtime then finished on another (smol), which works because the latest
/// waker is the one woken.
#[test]
fn futures_are_spawnable_and_can_change_runtime() {
    fn spawnable<F: Future + Send + Unpin + 'static>(f: F) -> F {
        f
    }
    let watchdog = Watchdog::start("spawnable", LONG);
    let m = started(builder(1).workers_per_pool(1));
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let held = m.acquire(AcquireOptions::new()).unwrap();
    let spawned = multi.spawn(spawnable(m.acquire_async(AcquireOptions::new())));
    wait_for("the spawned acquire to queue", || m.stats().waiting == 1);
    drop(held);
    let lease = multi.block_on(spawned).unwrap().unwrap();

    let current = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (gate, running) = occupy(&lease.executor());
    let mut handle = spawnable(lease.executor().submit(|| 5).unwrap().into_future());
    assert!(current.block_on(async { poll!(&mut handle) }).is_pending());
    let opener = thread::spawn(move || gate.open_one());
    assert_eq!(smol::block_on(handle), Ok(5), "woken on smol, not on the tokio runtime that polled first");
    opener.join().unwrap();
    assert_eq!(multi.block_on(multi.spawn(spawnable(running.into_future()))).unwrap(), Ok(()));

    let mut waiting = spawnable(m.acquire_async(AcquireOptions::new()));
    assert!(current.block_on(async { poll!(&mut waiting) }).is_pending());
    let releaser = thread::spawn(move || drop(lease));
    let lease = smol::block_on(waiting).unwrap();
    releaser.join().unwrap();
    let finished = multi.spawn(spawnable(lease.release().finished()));
    multi.block_on(finished).unwrap();
    watchdog.finish();
}

/// Only the most recently registered waker is woken, for an acquire and for a task.
#[test]
fn only_the_latest_waker_is_woken() {
    let watchdog = Watchdog::start("latest waker", LONG);
    let m = started(builder(1).workers_per_pool(1));
    let held = m.acquire(AcquireOptions::new()).unwrap();
    let (old, old_waker) = counting();
    let (new, new_waker) = counting();
    let mut acquire = m.acquire_async(AcquireOptions::new());
    assert!(poll_with(&mut acquire, &old_waker).is_pending());
    assert!(poll_with(&mut acquire, &new_waker).is_pending());
    let (gate, running) = occupy(&held.executor());
    let mut task = held.executor().submit(|| 7).unwrap().into_future();
    assert!(poll_with(&mut task, &old_waker).is_pending());
    assert!(poll_with(&mut task, &new_waker).is_pending());

    gate.open_one(); // the task runs, then resolves
    wait_for("the task's waker", || new.0.load(SeqCst) == 1);
    assert_eq!(poll_with(&mut task, &new_waker), Poll::Ready(Ok(7)));
    assert_eq!(running.wait(), Ok(()));
    drop(held); // the acquire is woken
    wait_for("the acquire's waker", || new.0.load(SeqCst) == 2);
    let Poll::Ready(Ok(lease)) = poll_with(&mut acquire, &new_waker) else { panic!("the acquire is served") };
    assert_eq!(old.0.load(SeqCst), 0, "a replaced waker is never woken");
    drop(lease);
    watchdog.finish();
}

/// Every future of the adapter panics, with a message naming it, when polled after it
/// resolved.
#[test]
fn polling_after_completion_panics() {
    let m = started(builder(1));
    let waker = Waker::noop();
    let message = |f: &mut dyn FnMut()| {
        let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("polling again panics");
        payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned())
    };

    let mut acquire = m.acquire_async(AcquireOptions::new().timeout(LONG));
    let lease = futures::executor::block_on(&mut acquire).unwrap();
    let m1 = message(&mut || drop(poll_with(&mut acquire, waker)));
    assert_eq!(m1.as_deref(), Some("`AcquireFuture` polled after completion"));

    let mut refused = m.acquire_async(AcquireOptions::new().lease_duration(Duration::ZERO));
    assert!(matches!(poll_with(&mut refused, waker), Poll::Ready(Err(_))));
    assert!(message(&mut || drop(poll_with(&mut refused, waker))).is_some());

    let mut task = lease.run_async(|| 1);
    assert_eq!(futures::executor::block_on(&mut task), Ok(1));
    let m2 = message(&mut || drop(poll_with(&mut task, waker)));
    assert_eq!(m2.as_deref(), Some("`TaskFuture` polled after completion"));

    let mut finished = lease.release().finished();
    futures::executor::block_on(&mut finished);
    let m3 = message(&mut || {
        let _ = poll_with(&mut finished, waker);
    });
    assert_eq!(m3.as_deref(), Some("`DrainFinished` polled after completion"));
}

/// Dropping an awaited task does not cancel it; `cancel_on_drop` does (if it has not started).
#[test]
fn cancel_on_drop_cancels_a_queued_task_and_plain_drop_does_not() {
    let watchdog = Watchdog::start("cancel on drop", LONG);
    let m = started(builder(1).workers_per_pool(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let (gate, running) = occupy(&lease.executor());
    let (ran_tx, ran) = crossbeam::channel::unbounded();
    let tx = ran_tx.clone();
    let mut kept = lease.run_async(move || tx.send("kept").unwrap());
    let tx = ran_tx.clone();
    let mut cancelled = lease.run_async(move || tx.send("cancelled").unwrap()).cancel_on_drop();
    drop(ran_tx);
    assert!(poll_with(&mut kept, Waker::noop()).is_pending());
    assert!(poll_with(&mut cancelled, Waker::noop()).is_pending());
    drop(kept);
    drop(cancelled);
    gate.open_one();
    assert_eq!(running.wait(), Ok(()));
    let ran: Vec<_> = ran.iter().collect(); // ends when both closures are gone (run or dropped)
    assert_eq!(ran, ["kept"]);
    let tasks = m.stats().tasks;
    assert_eq!((tasks.completed, tasks.cancelled), (2, 1));
    watchdog.finish();
}
