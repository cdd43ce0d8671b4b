//! Issue point 4: blocking, timed and fail-fast acquire; FIFO hand-off; on-demand growth.
mod common;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use leasepool::{AcquireError, AcquireOptions};

/// Long enough for any on-demand build on a loaded 2-core machine; only a hang reaches it.
const LONG: Duration = Duration::from_secs(30);

#[test]
fn try_acquire_fails_fast_naming_max_pools() {
    let m = started(builder(2));
    let _a = m.try_acquire(AcquireOptions::new()).unwrap();
    // Below max_pools with no idle pool: it never builds on the caller's thread; a pool is
    // built in the background and a later call takes it.
    let err = m.try_acquire(AcquireOptions::new()).unwrap_err();
    assert_eq!(err, AcquireError::Starting { max_pools: 2 });
    assert!(err.to_string().contains("being started"), "{err}");
    wait_for("the background build", || m.available_count() == 1);
    let _b = m.try_acquire(AcquireOptions::new()).unwrap();
    let err = m.try_acquire(AcquireOptions::new()).unwrap_err();
    assert_eq!(err, AcquireError::Unavailable { max_pools: 2 });
    assert!(err.to_string().contains("No executor available") && err.to_string().contains('2'), "{err}");
    assert_eq!(m.stats().counters.acquire_unavailable, 2);
}

#[test]
fn on_demand_growth_up_to_max_pools_ignores_desired() {
    let m = started(builder(3));
    assert_eq!(m.total_count(), 1);
    let leases: Vec<_> = (0..3).map(|_| m.acquire(AcquireOptions::new().timeout(LONG)).unwrap()).collect();
    assert_eq!(m.total_count(), 3);
    let seqs: std::collections::HashSet<_> = leases.iter().map(|l| l.pool_seq()).collect();
    assert_eq!(seqs.len(), 3);
    // Releasing above desired (1) discards: totals 2, 1, 1 as in the reference.
    let totals: Vec<_> = leases
        .into_iter()
        .map(|l| {
            drop(l);
            m.total_count()
        })
        .collect();
    assert_eq!(totals, vec![2, 1, 1]);
}

#[test]
fn timeout_is_measured_from_the_call_and_reported() {
    let m = started(builder(1));
    let _held = m.acquire(AcquireOptions::new()).unwrap();
    let t = Duration::from_millis(200);
    let begin = Instant::now();
    let err = m.acquire(AcquireOptions::new().timeout(t)).unwrap_err();
    let elapsed = begin.elapsed();
    let AcquireError::TimedOut { waited } = err else { panic!("expected TimedOut, got {err:?}") };
    assert!(waited >= t && elapsed >= t, "returned early: {waited:?}");
    // Generous upper bound: the wait is a condvar deadline; CI machines can be slow.
    assert!(elapsed < t + Duration::from_secs(2), "returned late: {elapsed:?}");
    assert!(err.to_string().contains("Timed out waiting"));
    assert_eq!(m.stats().counters.acquire_timeouts, 1);
    assert_eq!(m.stats().waiting, 0, "a timed-out waiter leaves the queue");
}

#[test]
fn zero_timeout_takes_a_free_pool_or_times_out_at_once() {
    let m = started(builder(1));
    let held = m.acquire(AcquireOptions::new().timeout(Duration::ZERO)).unwrap();
    let err = m.acquire(AcquireOptions::new().timeout(Duration::ZERO)).unwrap_err();
    assert!(matches!(err, AcquireError::TimedOut { .. }));
    drop(held);
}

#[test]
fn invalid_lease_durations_are_rejected() {
    let m = started(builder(1));
    for d in [Duration::ZERO, Duration::MAX] {
        let err = m.acquire(AcquireOptions::new().lease_duration(d)).unwrap_err();
        assert_eq!(err, AcquireError::InvalidLeaseDuration { duration: d });
    }
    assert_eq!(m.total_count(), 1);
    assert_eq!(m.leased_count(), 0);
}

#[test]
fn waiters_are_served_first_come_first_served() {
    let m = started(builder(1));
    let held = m.acquire(AcquireOptions::new()).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for i in 0..6 {
        let (m2, order) = (m.clone(), Arc::clone(&order));
        threads.push(thread::spawn(move || {
            let lease = m2.acquire(AcquireOptions::new().owner(format!("w{i}"))).unwrap();
            order.lock().unwrap().push(i);
            drop(lease);
        }));
        // Queue them in a known order.
        wait_for("the waiter to queue", || m.stats().waiting == i + 1);
    }
    // A newcomer with fail-fast never overtakes the queue, even right after a release.
    assert!(matches!(m.try_acquire(AcquireOptions::new()), Err(AcquireError::Unavailable { .. })));
    drop(held);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..6).collect::<Vec<_>>());
    let c = m.stats().counters;
    assert_eq!(c.leases_after_wait, 6);
    assert!(c.max_acquire_wait > Duration::ZERO);
    assert_eq!(m.total_count(), 1, "the freed pool went straight from waiter to waiter");
    assert_eq!(c.pools_created, 1);
}

#[test]
fn waiters_giving_up_never_lose_a_pool() {
    let m = started(builder(2).workers_per_pool(1));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let m = m.clone();
            thread::spawn(move || {
                let mut got = 0;
                for j in 0..200u64 {
                    let timeout = Duration::from_micros((i * 37 + j * 13) % 300);
                    if let Ok(lease) = m.acquire(AcquireOptions::new().timeout(timeout)) {
                        got += 1;
                        drop(lease);
                    }
                }
                got
            })
        })
        .collect();
    let granted: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    // Pools are built in the background: a build for a waiter that gave up may still be running.
    wait_for("background builds", || m.stats().creating == 0);
    let s = m.stats();
    assert!(granted > 0);
    assert_eq!(s.counters.leases_immediate + s.counters.leases_after_wait, granted);
    assert_eq!(s.counters.leases_released, granted);
    assert_eq!((s.leased, s.waiting, s.creating), (0, 0, 0));
    assert!(s.available >= 1 && s.available <= 2, "pools are idle again: {s}");
    // Every pool is usable: nothing was swallowed.
    let a = m.acquire(AcquireOptions::new().timeout(LONG)).unwrap();
    let b = m.acquire(AcquireOptions::new().timeout(LONG)).unwrap();
    assert_ne!(a.pool_seq(), b.pool_seq());
}

#[test]
fn an_interrupt_makes_a_queued_acquire_give_up_without_a_lease() {
    let m = started(builder(1));
    let held = m.acquire(AcquireOptions::new()).unwrap();
    let interrupt = leasepool::Interrupt::new();
    let waiter = {
        let (m, i) = (m.clone(), interrupt.clone());
        thread::spawn(move || m.acquire(AcquireOptions::new().interrupt(i)).map(drop))
    };
    wait_for("the waiter to queue", || m.stats().waiting == 1);
    interrupt.fire();
    assert_eq!(waiter.join().unwrap(), Err(AcquireError::Interrupted));
    assert_eq!(m.stats().waiting, 0);
    // Nothing was taken: the held pool goes back to the idle set on release.
    drop(held);
    assert_eq!((m.leased_count(), m.available_count()), (0, 1));
    // A fired interrupt stays fired.
    let err = m.acquire(AcquireOptions::new().interrupt(interrupt)).unwrap_err();
    assert_eq!(err, AcquireError::Interrupted);
}

#[test]
fn one_interrupt_shared_by_several_queued_acquires_wakes_them_all() {
    let m = started(builder(1));
    let held = m.acquire(AcquireOptions::new()).unwrap();
    let interrupt = leasepool::Interrupt::new();
    let waiters: Vec<_> = (0..3)
        .map(|n| {
            let (m2, i) = (m.clone(), interrupt.clone());
            let t = thread::spawn(move || m2.acquire(AcquireOptions::new().interrupt(i)).map(drop));
            wait_for("the waiter to queue", || m.stats().waiting == n + 1);
            t
        })
        .collect();
    interrupt.fire();
    for w in waiters {
        assert_eq!(w.join().unwrap(), Err(AcquireError::Interrupted));
    }
    assert_eq!(m.stats().waiting, 0);
    drop(held);
}
