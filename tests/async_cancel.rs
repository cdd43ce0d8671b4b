//! Issue 10: thousands of async acquires dropped at random moments (before their first poll,
//! right after it, under `select!` against a few yields, under a runtime timeout, at the
//! options' deadline) while other tasks acquire and release, on a multi-thread runtime, with
//! strict hand-off (fairness bound zero) and with the default bound. Afterwards no pool is lost
//! or leased: `available == POOLS`, nothing waits, and every pool can be leased again.
#![cfg(feature = "async")]

mod common;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use futures::poll;
use leasepool::{AcquireOptions, LeasedExecutorManager};

const POOLS: usize = 2;
/// Acquires dropped after their first poll and before they resolved, per fairness bound (those
/// dropped unpolled come on top).
const CANCELS: u64 = 5_000;
/// Holders: more than `POOLS`, so that quitters often find every pool busy and queue.
const HOLDERS: usize = 4;

#[test]
fn acquires_dropped_at_random_moments_lose_no_pool() {
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    println!("seed {seed:#x}");
    for bound in [Duration::ZERO, Duration::from_micros(500)] {
        let watchdog = Watchdog::start("async cancel race", Duration::from_secs(180));
        let m = started(builder(POOLS).min_pools(POOLS).fairness_bound(bound));
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap();
        let ends = rt.block_on(race(&m, seed));
        println!("fairness bound {bound:?}: {ends:?} (dropped unpolled, dropped after one poll, lost a select, runtime timeout, options timeout, served)");

        let s = m.stats();
        assert_eq!((s.waiting, s.leased, s.available, s.total), (0, 0, POOLS, POOLS), "{s}");
        let leases: Vec<_> =
            (0..POOLS).map(|_| m.try_acquire(AcquireOptions::new()).expect("every pool is leasable")).collect();
        for lease in &leases {
            assert_eq!(lease.run(|| 1), Ok(1));
        }
        drop(leases);
        assert_eq!(m.available_count(), POOLS);
        watchdog.finish();
    }
}

/// Holders acquire and release in a loop while four quitters give up on acquires in random
/// ways; returns how the quitters' acquires ended, by kind.
async fn race(m: &LeasedExecutorManager, seed: u64) -> [u64; 6] {
    let cancels = Arc::new(AtomicU64::new(0));
    let holders: Vec<_> = (0..HOLDERS as u64)
        .map(|_| {
            let (m, cancels) = (m.clone(), Arc::clone(&cancels));
            tokio::spawn(async move {
                let mut n = 0u64;
                while cancels.load(SeqCst) < CANCELS {
                    let lease = m.acquire_async(AcquireOptions::new()).await.unwrap();
                    for _ in 0..20 {
                        std::hint::spin_loop();
                    }
                    n += 1;
                    yield_times(n % 4).await; // held across 0-3 yields
                    drop(lease);
                }
            })
        })
        .collect();
    let quitters: Vec<_> = (0..4u64)
        .map(|t| {
            let (m, cancels) = (m.clone(), Arc::clone(&cancels));
            tokio::spawn(async move {
                let mut rng = seed ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let mut ends = [0u64; 6];
                while cancels.load(SeqCst) < CANCELS {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let served = match rng % 8 {
                        0 => {
                            ends[0] += 1;
                            drop(m.acquire_async(AcquireOptions::new()));
                            false
                        }
                        1 | 2 => {
                            let mut f = m.acquire_async(AcquireOptions::new());
                            let served = poll!(&mut f).is_ready();
                            ends[1] += u64::from(!served);
                            served
                        }
                        3 | 4 => {
                            let yields = (rng >> 8) % 8;
                            tokio::select! {
                                lease = m.acquire_async(AcquireOptions::new()) => lease.is_ok(),
                                () = yield_times(yields) => { ends[2] += 1; false }
                            }
                        }
                        5 | 6 => {
                            let wait = Duration::from_micros((rng >> 8) % 1_500);
                            match tokio::time::timeout(wait, m.acquire_async(AcquireOptions::new())).await {
                                Ok(lease) => lease.is_ok(),
                                Err(_) => {
                                    ends[3] += 1;
                                    false
                                }
                            }
                        }
                        _ => {
                            let timeout = Duration::from_micros((rng >> 8) % 300);
                            let served = m.acquire_async(AcquireOptions::new().timeout(timeout)).await.is_ok();
                            ends[4] += u64::from(!served);
                            served
                        }
                    };
                    ends[5] += u64::from(served);
                    if !served && rng % 8 != 0 {
                        cancels.fetch_add(1, SeqCst);
                    }
                }
                ends
            })
        })
        .collect();
    let mut ends = [0u64; 6];
    for q in quitters {
        let e = q.await.unwrap();
        ends.iter_mut().zip(e).for_each(|(a, b)| *a += b);
    }
    for h in holders {
        h.await.unwrap();
    }
    ends
}

async fn yield_times(n: u64) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}
