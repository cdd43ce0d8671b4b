//! Adaptive sizing: the idle pool set follows a load signal.
//!
//! The size provider reads a shared `AtomicUsize` of "units" of load (think: queue depth, open
//! sessions). With `units_per_pool(10)`, `min_pools(1)` and `max_pools(4)` the target is
//! `desired = min(4, max(1, ceil(units / 10)))`. Shows:
//! - `desired_executor_count()` following the units at once (it calls the provider);
//! - `notify_scale_changed()` waking the checker, which grows the idle set to `desired` or retires
//!   idle pools above it (without it, the checker only resamples every `check_interval`);
//! - leased pools never revoked by a shrink: they stay until released, and a release above the
//!   target retires the pool instead of keeping it idle;
//! - the pool counters in `manager.stats()`.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example adaptive_sizing
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use leasepool::{AcquireOptions, LeasedExecutorManager};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let units = Arc::new(AtomicUsize::new(0));
    let signal = Arc::clone(&units);
    let manager = LeasedExecutorManager::builder()
        .max_pools(4)
        .min_pools(1)
        .units_per_pool(10)
        .workers_per_pool(2)
        .name_prefix("sizing")
        .size_provider(move || signal.load(Ordering::Relaxed))
        .build()?;

    println!("desired = min(max_pools 4, max(min_pools 1, ceil(units / 10))):");
    for u in [0, 1, 10, 11, 25, 31, 40, 41, 1000] {
        units.store(u, Ordering::Relaxed);
        println!("  units {u:>4} -> desired {}", manager.desired_executor_count());
    }
    units.store(0, Ordering::Relaxed);

    manager.start()?;
    show(&manager, "started with 0 units");

    // ── Grow ─────────────────────────────────────────────────────────────────────────────────
    for u in [25, 45] {
        units.store(u, Ordering::Relaxed);
        let desired = manager.desired_executor_count();
        println!("\nunits -> {u}: desired_executor_count() = {desired}, total still {}", manager.total_count());
        let took = notify_and_wait(&manager, || manager.total_count() == desired)?;
        show(&manager, &format!("after notify_scale_changed() ({took:.1?})"));
    }

    // ── Shrink while two pools are leased ────────────────────────────────────────────────────
    let a = manager.acquire(AcquireOptions::new().owner("job-a").timeout(Duration::from_secs(1)))?;
    let b = manager.acquire(AcquireOptions::new().owner("job-b").timeout(Duration::from_secs(1)))?;
    show(&manager, "\nleased two pools");

    units.store(0, Ordering::Relaxed);
    println!("\nunits -> 0: desired_executor_count() = {}", manager.desired_executor_count());
    let took = notify_and_wait(&manager, || manager.available_count() == 0)?;
    show(&manager, &format!("after notify_scale_changed() ({took:.1?}): idle pools retired, leased ones kept"));

    // Both leases still work: a shrink never revokes.
    let (x, y) = (a.run(|| (1..=12u64).product::<u64>())?, b.run(|| (1..=15u64).sum::<u64>())?);
    println!("  job-a computed 12! = {x}, job-b computed 1+..+15 = {y}");

    a.release();
    show(&manager, "released job-a (above desired: its pool is retired)");
    b.release();
    show(&manager, "released job-b (at desired: its pool is kept idle)");

    println!("\n{}", manager.stats());
    manager.stop();
    Ok(())
}

fn show(manager: &LeasedExecutorManager, what: &str) {
    println!(
        "{what}\n  total={} available={} leased={} desired={}",
        manager.total_count(),
        manager.available_count(),
        manager.leased_count(),
        manager.desired_executor_count()
    );
}

/// Calls `notify_scale_changed()`, then polls `cond` every 2 ms for up to three seconds.
/// Returns how long the change took, measured from the notification.
fn notify_and_wait(manager: &LeasedExecutorManager, mut cond: impl FnMut() -> bool) -> Result<Duration, &'static str> {
    let start = Instant::now();
    manager.notify_scale_changed();
    while !cond() {
        if start.elapsed() > Duration::from_secs(3) {
            return Err("the pool count did not reach the target in time");
        }
        thread::sleep(Duration::from_millis(2));
    }
    Ok(start.elapsed())
}
