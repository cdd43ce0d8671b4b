//! Core v2, B: bounded fairness. Within the bound a running caller may take a freed pool (no
//! wake-up on the hot path); a waiter that has waited past the bound is served before any
//! newcomer; a bound of zero is strict FIFO hand-off.
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use leasepool::{AcquireOptions, LeasedExecutorManager};

/// A newcomer hammering `try_acquire` from the moment the pool is released never gets it
/// before the waiter that was queued past the bound. Returns (waiter's grant, newcomer's first
/// success) as nanoseconds since `t0`, taken after each got its lease.
fn race_waiter_and_newcomer(m: &LeasedExecutorManager, bound: Duration) -> (u64, u64) {
    let t0 = Instant::now();
    let held = m.acquire(AcquireOptions::new()).unwrap();
    let waiter_at = Arc::new(AtomicU64::new(0));
    let waiter = {
        let (m, at) = (m.clone(), Arc::clone(&waiter_at));
        thread::spawn(move || {
            let lease = m.acquire(AcquireOptions::new().owner("waiter")).unwrap();
            at.store(t0.elapsed().as_nanos() as u64, SeqCst);
            lease
        })
    };
    wait_for("the waiter to queue", || m.stats().waiting == 1);
    // Time is the subject here: the waiter must have waited longer than the bound. Twice the
    // bound plus a margin, so a slow scheduler cannot make the test pass vacuously.
    thread::sleep(bound * 2 + Duration::from_millis(5));
    let go = Arc::new(AtomicBool::new(false));
    let newcomer = {
        let (m, go) = (m.clone(), Arc::clone(&go));
        thread::spawn(move || {
            while !go.load(SeqCst) {
                std::hint::spin_loop();
            }
            loop {
                if let Ok(lease) = m.try_acquire(AcquireOptions::new().owner("newcomer")) {
                    let at = t0.elapsed().as_nanos() as u64;
                    drop(lease);
                    return at;
                }
                std::hint::spin_loop();
            }
        })
    };
    go.store(true, SeqCst);
    drop(held);
    let lease = waiter.join().unwrap();
    let waited_grant = waiter_at.load(SeqCst);
    drop(lease);
    let newcomer_at = newcomer.join().unwrap();
    (waited_grant, newcomer_at)
}

#[test]
fn newcomers_never_overtake_a_waiter_queued_past_the_bound() {
    let bound = Duration::from_millis(20);
    let m = started(builder(1).fairness_bound(bound));
    for _ in 0..20 {
        let (waiter, newcomer) = race_waiter_and_newcomer(&m, bound);
        assert!(
            waiter < newcomer,
            "a newcomer overtook a starving waiter (waiter {waiter} ns, newcomer {newcomer} ns)"
        );
    }
    let s = m.stats();
    assert_eq!((s.leased, s.waiting, s.available), (0, 0, 1));
}

#[test]
fn a_zero_bound_is_strict_fifo() {
    let m = started(builder(1).fairness_bound(Duration::ZERO));
    for _ in 0..20 {
        let (waiter, newcomer) = race_waiter_and_newcomer(&m, Duration::ZERO);
        assert!(waiter < newcomer, "a newcomer overtook a waiter under strict FIFO");
    }
    // And waiters are served strictly in arrival order.
    let held = m.acquire(AcquireOptions::new()).unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let waiters: Vec<_> = (0..5)
        .map(|i| {
            let (m2, order) = (m.clone(), Arc::clone(&order));
            let t = thread::spawn(move || {
                let lease = m2.acquire(AcquireOptions::new()).unwrap();
                order.lock().unwrap().push(i);
                drop(lease);
            });
            wait_for("the waiter to queue", || m.stats().waiting == i + 1);
            t
        })
        .collect();
    drop(held);
    waiters.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
}

/// Within a generous bound, under contention, running callers take freed pools (that is the
/// point: fewer wake-ups), yet every waiter is eventually served and nothing is lost.
#[test]
fn contention_within_the_bound_loses_nothing_and_starves_no_one() {
    let m = started(builder(2).min_pools(2).fairness_bound(Duration::from_millis(1)));
    let watchdog = Watchdog::start("fairness contention", Duration::from_secs(60));
    let per_thread = 2_000;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let m = m.clone();
            thread::spawn(move || {
                let mut worst = Duration::ZERO;
                for _ in 0..per_thread {
                    let t = Instant::now();
                    let lease = m.acquire(AcquireOptions::new()).unwrap();
                    worst = worst.max(t.elapsed());
                    drop(lease);
                }
                worst
            })
        })
        .collect();
    let worst: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    watchdog.finish();
    let s = m.stats();
    assert_eq!(s.counters.leases_immediate + s.counters.leases_after_wait, 8 * per_thread);
    assert_eq!((s.leased, s.waiting, s.creating, s.available), (0, 0, 0, 2), "{s}");
    // Not a timing assertion on the bound itself (a 2-core VM can deschedule anyone for tens of
    // ms): only that nobody waited anywhere near forever.
    assert!(worst.iter().all(|w| *w < Duration::from_secs(10)), "{worst:?}");
}
