//! Backpressure: more callers than pools.
//!
//! One pool (`max_pools(1)`) and several threads that all want it. Shows:
//! - blocked `acquire` calls queue up and are served strictly first-come first-served, each freed
//!   pool handed straight to the front waiter (and only that waiter is woken);
//! - `try_acquire` failing fast with `AcquireError::Unavailable` while the pool is leased;
//! - an `acquire` with a short timeout giving up with `AcquireError::TimedOut`;
//! - the counters in `manager.stats()`: `leases_after_wait`, `acquire_timeouts`,
//!   `acquire_unavailable`, `max_acquire_wait`.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example backpressure
//! ```

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use leasepool::{AcquireError, AcquireOptions, LeasedExecutorManager};

const WAITERS: usize = 4;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = LeasedExecutorManager::builder().max_pools(1).workers_per_pool(2).name_prefix("bp").build()?;
    manager.start()?;
    let t0 = Instant::now();
    let ms = move || t0.elapsed().as_millis();

    // The main thread takes the only pool.
    let holder = manager.acquire(AcquireOptions::new().owner("holder").timeout(Duration::from_secs(1)))?;
    println!("[{:>4} ms] main holds {} (the only pool)", ms(), holder.id());

    // Worker threads queue up behind it, one at a time so the queue order is known.
    let served = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for i in 1..=WAITERS {
        let mgr = manager.clone();
        let served = Arc::clone(&served);
        threads.push(thread::spawn(move || -> Result<(), AcquireError> {
            let owner = format!("worker-{i}");
            let asked = Instant::now();
            let lease = mgr.acquire(AcquireOptions::new().owner(owner.as_str()).timeout(Duration::from_secs(5)))?;
            let waited = asked.elapsed();
            served.lock().unwrap().push(owner.clone());
            // Use the pool briefly: sum of n² mod 1_000_007 for n below i million.
            let n = i as u64 * 1_000_000;
            let sum = lease.run(move || (0..n).map(|k| k * k % 1_000_007).sum::<u64>()).unwrap_or(0);
            println!(
                "[{:>4} ms] {owner} got {} after waiting {:>5.1} ms; Σ n² mod p for n < {n}: {sum}",
                ms(),
                lease.id(),
                waited.as_secs_f64() * 1e3
            );
            thread::sleep(Duration::from_millis(40));
            Ok(()) // the lease is released here, by drop: the next waiter is served
        }));
        wait_until(|| manager.stats().waiting == i)?;
        println!("[{:>4} ms] worker-{i} is queued (waiting = {i})", ms());
    }

    // Fail fast: the pool is leased and the manager is at max_pools.
    match manager.try_acquire(AcquireOptions::new().owner("impatient")) {
        Err(e @ AcquireError::Unavailable { .. }) => println!("[{:>4} ms] try_acquire -> Unavailable: {e}", ms()),
        other => return Err(format!("expected Unavailable, got {other:?}").into()),
    }

    // A bounded wait: it queues behind the four workers and gives up after 150 ms.
    match manager.acquire(AcquireOptions::new().owner("deadline").timeout(Duration::from_millis(150))) {
        Err(e @ AcquireError::TimedOut { .. }) => println!("[{:>4} ms] acquire(timeout 150 ms) -> TimedOut: {e}", ms()),
        other => return Err(format!("expected TimedOut, got {other:?}").into()),
    }

    println!("\nwhile the queue waits:\n{}\n", manager.stats());

    println!("[{:>4} ms] main releases {}", ms(), holder.id());
    holder.release();
    for t in threads {
        t.join().map_err(|_| "a worker thread panicked")??;
    }

    let order = served.lock().unwrap().clone();
    println!("\nserved in order: {}", order.join(", "));
    assert_eq!(order, (1..=WAITERS).map(|i| format!("worker-{i}")).collect::<Vec<_>>(), "FIFO order");

    let stats = manager.stats();
    let c = &stats.counters;
    println!(
        "counters: leases_immediate={} leases_after_wait={} acquire_timeouts={} acquire_unavailable={} \
         max_acquire_wait={:.1?} mean wait={:.1?}",
        c.leases_immediate,
        c.leases_after_wait,
        c.acquire_timeouts,
        c.acquire_unavailable,
        c.max_acquire_wait,
        c.total_acquire_wait / c.leases_after_wait.max(1) as u32,
    );
    println!("\n{stats}");
    manager.stop();
    Ok(())
}

/// Polls `cond` every millisecond for up to two seconds.
fn wait_until(mut cond: impl FnMut() -> bool) -> Result<(), &'static str> {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !cond() {
        if Instant::now() > deadline {
            return Err("timed out waiting for the expected state");
        }
        thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}
