//! Bounded stress: 32 threads x 500 acquire/run/release cycles on max_pools = 2, with random
//! timeouts, fail-fast acquires and early (draining) releases. Asserts that no pool is ever used
//! by two leases at once, the manager never owns more than max_pools, every handle resolves, and
//! the run ends (a watchdog aborts the process if it does not).
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use leasepool::{AcquireError, AcquireOptions, TaskError};

const THREADS: u64 = 32;
const CYCLES: u64 = 500;
const MAX_POOLS: usize = 2;

/// Per pool: which lease has tasks running on it, and how many.
type Occupancy = Mutex<HashMap<u64, (u64, usize)>>;

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn stress_leases_never_share_a_pool_and_everything_resolves() {
    let watchdog = Watchdog::start("the stress test", Duration::from_secs(120));
    let done = Arc::new(AtomicBool::new(false)); // stops the monitor

    let m = started(builder(MAX_POOLS).workers_per_pool(2));
    let occupancy: Arc<Occupancy> = Arc::default();
    let holders: Arc<Mutex<HashMap<u64, u64>>> = Arc::default();
    let over_cap = Arc::new(AtomicBool::new(false));
    let resolved = Arc::new(AtomicU64::new(0));

    let monitor = {
        let (m, done, over_cap) = (m.clone(), Arc::clone(&done), Arc::clone(&over_cap));
        thread::spawn(move || {
            while !done.load(SeqCst) {
                let s = m.stats();
                if s.total + s.creating > MAX_POOLS {
                    over_cap.store(true, SeqCst);
                }
                thread::yield_now();
            }
        })
    };

    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (m, occupancy, holders, resolved) =
                (m.clone(), Arc::clone(&occupancy), Arc::clone(&holders), Arc::clone(&resolved));
            thread::spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15 ^ (t + 1).wrapping_mul(0x2545_F491_4F6C_DD1D);
                let mut submitted = 0u64;
                let mut handles = Vec::new();
                for _ in 0..CYCLES {
                    let roll = xorshift(&mut rng);
                    let lease = if roll % 5 == 0 {
                        m.try_acquire(AcquireOptions::new())
                    } else {
                        m.acquire(AcquireOptions::new().timeout(Duration::from_micros(roll % 2000)))
                    };
                    let lease = match lease {
                        Ok(lease) => lease,
                        Err(
                            AcquireError::TimedOut { .. }
                            | AcquireError::Unavailable { .. }
                            | AcquireError::Starting { .. },
                        ) => continue,
                        Err(e) => panic!("unexpected acquire error: {e}"),
                    };
                    let (id, seq) = (lease.id().get(), lease.pool_seq());
                    let prev = holders.lock().unwrap().insert(seq, id);
                    assert_eq!(prev, None, "pool {seq} handed to lease {id} while another lease holds it");
                    let tasks = 1 + roll % 3;
                    for _ in 0..tasks {
                        let occupancy = Arc::clone(&occupancy);
                        let h = lease.executor().submit(move || {
                            let seq = current_pool_seq();
                            {
                                let mut occ = occupancy.lock().unwrap();
                                let entry = occ.entry(seq).or_insert((id, 0));
                                assert!(entry.1 == 0 || entry.0 == id, "pool {seq} runs tasks of two leases at once");
                                *entry = (id, entry.1 + 1);
                            }
                            std::hint::black_box((0..50).sum::<u64>());
                            occupancy.lock().unwrap().get_mut(&seq).unwrap().1 -= 1;
                            seq
                        });
                        let h = h.expect("an active lease accepts work");
                        submitted += 1;
                        handles.push((h, seq));
                    }
                    if roll % 3 == 0 {
                        // Early release with work pending: the lease drains.
                        holders.lock().unwrap().remove(&seq);
                        drop(lease);
                    } else {
                        for (h, want) in handles.drain(..) {
                            assert_eq!(h.wait(), Ok(want));
                            resolved.fetch_add(1, SeqCst);
                        }
                        holders.lock().unwrap().remove(&seq);
                        drop(lease);
                    }
                }
                for (h, want) in handles.drain(..) {
                    match h.wait_timeout(Duration::from_secs(30)) {
                        Ok(Ok(seq)) => assert_eq!(seq, want),
                        Ok(Err(e @ TaskError::Panicked { .. })) => panic!("a task failed: {e}"),
                        Ok(Err(e)) => panic!("unexpected outcome: {e}"),
                        Err(_) => panic!("a handle did not resolve within 30 s"),
                    }
                    resolved.fetch_add(1, SeqCst);
                }
                submitted
            })
        })
        .collect();

    let submitted: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    done.store(true, SeqCst);
    monitor.join().unwrap();
    watchdog.finish();

    assert!(!over_cap.load(SeqCst), "the manager owned more than max_pools pools");
    assert_eq!(resolved.load(SeqCst), submitted, "every handle resolved");
    // Pools are built in the background: wait for the last build too.
    wait_for("drained leases and background builds to finish", || {
        let s = m.stats();
        s.leased == 0 && s.creating == 0
    });
    let s = m.stats();
    assert_eq!(s.tasks.submitted, submitted);
    assert_eq!(s.tasks.completed, submitted);
    assert!(s.total <= MAX_POOLS && s.waiting == 0 && s.creating == 0, "{s}");
    let c = s.counters;
    assert_eq!(c.leases_immediate + c.leases_after_wait, c.leases_released);
    println!("{s}");
}
