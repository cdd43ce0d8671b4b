//! Core v2, A.2: cancelling a queued acquire at any moment (timeouts of a few microseconds,
//! interrupts fired from other threads) while other callers release never loses a pool.
mod common;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use leasepool::{AcquireError, AcquireOptions, Interrupt};

const POOLS: usize = 2;
const CANCELS: u64 = 10_000;

#[test]
fn ten_thousand_cancels_racing_releases_lose_no_pool() {
    for bound in [Duration::ZERO, Duration::from_micros(500)] {
        let m = started(builder(POOLS).min_pools(POOLS).fairness_bound(bound));
        let watchdog = Watchdog::start("cancel stress", Duration::from_secs(120));
        let cancels = Arc::new(AtomicU64::new(0));
        let holders: Vec<_> = (0..2)
            .map(|_| {
                let (m, cancels) = (m.clone(), Arc::clone(&cancels));
                thread::spawn(move || {
                    while cancels.load(SeqCst) < CANCELS {
                        let lease = m.acquire(AcquireOptions::new()).unwrap();
                        for _ in 0..20 {
                            std::hint::spin_loop();
                        }
                        drop(lease);
                    }
                })
            })
            .collect();
        let quitters: Vec<_> = (0..4u64)
            .map(|t| {
                let (m, cancels) = (m.clone(), Arc::clone(&cancels));
                thread::spawn(move || {
                    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (t + 1);
                    while cancels.load(SeqCst) < CANCELS {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let outcome = if rng % 2 == 0 {
                            m.acquire(AcquireOptions::new().timeout(Duration::from_micros(rng % 50)))
                        } else {
                            // Fired from another thread at an arbitrary moment of the wait.
                            let interrupt = Interrupt::new();
                            let firer = {
                                let i = interrupt.clone();
                                let spins = rng % 2_000;
                                thread::spawn(move || {
                                    for _ in 0..spins {
                                        std::hint::spin_loop();
                                    }
                                    i.fire();
                                })
                            };
                            let outcome = m.acquire(AcquireOptions::new().interrupt(interrupt));
                            firer.join().unwrap();
                            outcome
                        };
                        match outcome {
                            Ok(lease) => drop(lease),
                            Err(AcquireError::TimedOut { .. } | AcquireError::Interrupted) => {
                                cancels.fetch_add(1, SeqCst);
                            }
                            Err(e) => panic!("unexpected acquire error: {e}"),
                        }
                    }
                })
            })
            .collect();
        holders.into_iter().chain(quitters).for_each(|t| t.join().unwrap());
        watchdog.finish();

        let s = m.stats();
        assert!(s.counters.acquire_timeouts <= cancels.load(SeqCst), "only timeouts count as timeouts");
        assert_eq!((s.available + s.leased, s.total, s.waiting, s.creating), (POOLS, POOLS, 0, 0), "{s}");
        // Every pool is reachable: both can be leased at once, right now.
        let a = m.try_acquire(AcquireOptions::new()).unwrap();
        let b = m.try_acquire(AcquireOptions::new()).unwrap();
        assert_ne!(a.pool_seq(), b.pool_seq());
        drop((a, b));
        m.stop();
    }
}
