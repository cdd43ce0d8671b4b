//! Core v2, A.3: pools are built off the caller's thread. With a start hook that takes 5 s,
//! `try_acquire` returns at once, an acquire's timeout counts from the call and includes the
//! build, and a build whose waiter gave up is passed on (not counted as broken).
mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;
use leasepool::{AcquireError, AcquireOptions};

const SLOW_HOOK: Duration = Duration::from_secs(5);

#[test]
fn a_slow_pool_build_never_blocks_the_caller() {
    // The first pool (built by start) is quick; every later pool's hook takes 5 s.
    let m = started(builder(3).on_worker_start(|_| {
        if current_pool_seq() >= 2 {
            thread::sleep(SLOW_HOOK);
        }
    }));
    let _held = m.acquire(AcquireOptions::new()).unwrap();

    // Generous bounds (a loaded 2-core machine), each far below the 5 s a blocking build took.
    let t = Instant::now();
    assert_eq!(m.try_acquire(AcquireOptions::new()).unwrap_err(), AcquireError::Starting { max_pools: 3 });
    assert!(t.elapsed() < Duration::from_secs(1), "try_acquire waited {:?}", t.elapsed());

    let t = Instant::now();
    let err = m.acquire(AcquireOptions::new().timeout(Duration::from_millis(200))).unwrap_err();
    let took = t.elapsed();
    assert!(matches!(err, AcquireError::TimedOut { .. }), "{err:?}");
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(2), "acquire returned after {took:?}");

    // Both builds (the fail-fast caller's and the waiter's that gave up) finish and join the
    // idle set: nothing is retired as broken.
    wait_for_long("both slow builds", || m.available_count() == 2);
    let s = m.stats();
    assert_eq!((s.creating, s.counters.pools_retired_broken), (0, 0), "{s}");
    let _a = m.try_acquire(AcquireOptions::new()).unwrap();
    let _b = m.try_acquire(AcquireOptions::new()).unwrap();
}

/// Like `wait_for`, with room for the 5 s hook.
fn wait_for_long(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + SLOW_HOOK * 4;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}
