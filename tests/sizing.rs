//! Issue points 8 and 9: adaptive sizing and broken pools.
mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;

use common::*;
use leasepool::{AcquireError, AcquireOptions, StartError};

fn sized(max: usize, units: &Arc<AtomicUsize>) -> leasepool::ManagerBuilder {
    let units = Arc::clone(units);
    builder(max).size_provider(move || units.load(SeqCst))
}

#[test]
fn desired_follows_the_integer_formula() {
    let units = Arc::new(AtomicUsize::new(0));
    for (u, max, want) in [(0, 5, 1), (30, 5, 3), (31, 5, 4), (41, 5, 5), (31, 3, 3), (10, 5, 1), (11, 5, 2)] {
        units.store(u, SeqCst);
        let m = sized(max, &units).build().unwrap();
        assert_eq!(m.desired_executor_count(), want, "units={u} max={max}");
    }
    units.store(5, SeqCst);
    let m = sized(3, &units).units_per_pool(2).build().unwrap();
    assert_eq!(m.desired_executor_count(), 3);
    units.store(2, SeqCst);
    assert_eq!(m.desired_executor_count(), 1);
    units.store(usize::MAX, SeqCst);
    assert_eq!(m.desired_executor_count(), 3, "no overflow at the extreme");
}

#[test]
fn start_creates_desired_and_notify_grows_and_shrinks() {
    let units = Arc::new(AtomicUsize::new(20));
    let m = started(sized(5, &units));
    assert_eq!(m.total_count(), 2);
    units.store(45, SeqCst);
    m.notify_scale_changed();
    wait_for("growth to 5", || m.available_count() == 5);
    assert_eq!(m.stats().desired, 5);
    let leased: Vec<_> = (0..3).map(|_| m.try_acquire(AcquireOptions::new()).unwrap()).collect();
    units.store(0, SeqCst);
    m.notify_scale_changed();
    // Idle pools shrink to the target; leased ones are never revoked by a shrink.
    wait_for("idle shrink", || m.available_count() == 0);
    assert_eq!(m.leased_count(), 3);
    assert!(leased.iter().all(|l| l.run(|| true).unwrap()));
    drop(leased);
    assert_eq!(m.total_count(), 1, "released pools above the target are discarded");
    let c = m.stats().counters;
    assert_eq!(c.pools_created, 5);
    assert_eq!(c.pools_retired_shrink, 4);
}

#[test]
fn a_panicking_size_provider_counts_as_zero_and_never_kills_the_checker() {
    let units = Arc::new(AtomicUsize::new(40));
    let fail = Arc::new(AtomicBool::new(true));
    let panics = Arc::new(AtomicUsize::new(0));
    let (u, f, p) = (Arc::clone(&units), Arc::clone(&fail), Arc::clone(&panics));
    let m = started(builder(4).size_provider(move || {
        if f.load(SeqCst) {
            p.fetch_add(1, SeqCst);
            panic!("provider boom");
        }
        u.load(SeqCst)
    }));
    // start() asked for a sample (0 units => desired 1). The provider runs on its sampler
    // thread, and requests that arrive while no call is running share one call; a request made
    // after a call has started gets a call of its own. So once one call panicked, a checker pass
    // (kicked by notify) makes the provider panic again.
    assert_eq!(m.total_count(), 1);
    wait_for("the first sample", || panics.load(SeqCst) >= 1);
    m.notify_scale_changed();
    wait_for("the checker to hit the panicking provider", || panics.load(SeqCst) >= 2);
    assert_eq!(m.total_count(), 1, "a panic counts as 0 units");
    fail.store(false, SeqCst);
    m.notify_scale_changed();
    wait_for("growth after the provider recovered", || m.available_count() == 4);
    assert_eq!(m.desired_executor_count(), 4);
}

#[test]
fn size_provider_is_never_called_under_the_manager_lock() {
    // A provider that calls back into the manager would deadlock if it ran under the lock.
    let slot: Arc<std::sync::OnceLock<leasepool::LeasedExecutorManager>> = Arc::default();
    let s = Arc::clone(&slot);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let m = builder(2)
        .size_provider(move || {
            c.fetch_add(1, SeqCst);
            s.get().map_or(0, |m| m.leased_count() * 10)
        })
        .build()
        .unwrap();
    slot.set(m.clone()).unwrap();
    m.start().unwrap();
    let _lease = m.acquire(AcquireOptions::new()).unwrap();
    m.notify_scale_changed();
    let _ = m.stats();
    wait_for("provider calls from the checker", || calls.load(SeqCst) >= 3);
    m.stop(); // the OnceLock holds a clone, so stop explicitly
}

#[test]
fn a_start_hook_that_panics_once_breaks_that_pool_which_is_retired_and_replaced() {
    let panicked = Arc::new(AtomicBool::new(false));
    let p = Arc::clone(&panicked);
    let m = started(builder(2).on_worker_start(move |i| {
        if i == 0 && !p.swap(true, SeqCst) {
            panic!("hook boom");
        }
    }));
    assert!(panicked.load(SeqCst));
    assert_eq!(m.total_count(), 1);
    let c = m.stats().counters;
    assert_eq!((c.pools_created, c.pools_retired_broken), (1, 1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    assert_eq!(lease.run(|| 1).unwrap(), 1);
    assert!(lease.pool_seq() >= 2, "the broken first pool was never handed out");
}

#[test]
fn a_start_hook_that_always_panics_fails_start_with_the_reason() {
    let m = builder(2).on_worker_start(|_| panic!("always boom")).build().unwrap();
    let StartError::PoolCreation { reason } = m.start().unwrap_err() else { unreachable!() };
    assert!(reason.contains("always boom"), "{reason}");
    assert!(!m.is_running());
    assert_eq!(m.total_count(), 0);
    assert_eq!(m.try_acquire(AcquireOptions::new()).unwrap_err(), AcquireError::NotRunning);
}

#[test]
fn on_demand_pool_that_breaks_is_a_typed_acquire_error() {
    // Pools after the first one break (the hook sees its pool in the thread name).
    let m = started(builder(2).on_worker_start(|_| {
        if current_pool_seq() >= 2 {
            panic!("second pool boom");
        }
    }));
    let _first = m.acquire(AcquireOptions::new()).unwrap();
    match m.acquire(AcquireOptions::new().timeout(std::time::Duration::from_secs(30))).unwrap_err() {
        AcquireError::PoolBroken { reason } => assert!(reason.contains("second pool boom"), "{reason}"),
        other => panic!("expected PoolBroken, got {other:?}"),
    }
    let s = m.stats();
    assert_eq!((s.total, s.creating), (1, 0), "the failed build freed its capacity");
    assert_eq!(s.counters.pools_retired_broken, 1);
}

#[test]
fn a_hook_that_is_too_slow_breaks_the_pool() {
    let (tx, rx) = crossbeam::channel::bounded::<()>(0);
    let opts = leasepool::ThreadPoolOptions {
        start_timeout: std::time::Duration::from_millis(100),
        start_hook: Some(Arc::new(move |_| {
            let _ = rx.recv(); // blocks until the test ends
        })),
        ..Default::default()
    };
    let m = builder(1).workers_per_pool(1).thread_options(opts).build().unwrap();
    let err = m.start().unwrap_err();
    assert!(err.to_string().contains("did not finish"), "{err}");
    drop(tx);
    thread::yield_now();
}
