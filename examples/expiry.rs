//! Lease expiry, grace, revocation and renewal.
//!
//! Leases here last 300 ms with a 300 ms grace period (soft expiry at +300 ms, hard expiry at
//! +600 ms). Shows:
//! - `lease.state()` moving Active → InGrace → Revoked as the clock passes the deadlines;
//! - revocation by the checker thread at hard expiry, on its own: `check_interval` stays at its
//!   120 s default, because the checker sleeps until the nearest lease deadline;
//! - a task queued behind a long-running one (one worker per pool) resolving as
//!   `TaskError::Cancelled` at revocation, while the running task is left to finish;
//! - a submit after hard expiry failing with `LeaseError::Expired`;
//! - the revoked pool retired and replaced;
//! - `renew()` pushing both deadlines out, so a lease outlives its original hard expiry.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example expiry
//! ```

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use leasepool::{AcquireOptions, ExecutorLease, LeaseError, LeaseState, LeasedExecutorManager, TaskError};

const LEASE: Duration = Duration::from_millis(300);
const GRACE: Duration = Duration::from_millis(300);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = LeasedExecutorManager::builder()
        .max_pools(1)
        .workers_per_pool(1)
        .default_lease(LEASE)
        .lease_grace(GRACE)
        .name_prefix("expiry")
        .build()?;
    manager.start()?;

    // ── 1. A lease that overruns ─────────────────────────────────────────────────────────────
    println!("== a lease that overruns (soft expiry +300 ms, hard expiry +600 ms) ==");
    let lease = manager.acquire(AcquireOptions::new().owner("overrunner").timeout(Duration::from_secs(1)))?;
    let at = |lease: &ExecutorLease| lease.leased_at().elapsed().as_millis();
    println!("[+{:>4} ms] {} granted on pool #{}, state = {}", at(&lease), lease.id(), lease.pool_seq(), lease.state());

    // The single worker picks up a 1 s task; a second task queues behind it.
    let (started_tx, started_rx) = mpsc::channel();
    let long = lease.executor().submit(move || {
        started_tx.send(()).ok();
        thread::sleep(Duration::from_millis(1000));
        "long task finished"
    })?;
    started_rx.recv()?;
    let queued = lease.executor().submit(|| 6 * 7)?;
    println!("[+{:>4} ms] submitted a 1 s task (running) and a second task (queued behind it)", at(&lease));

    sleep_until(&lease, Duration::from_millis(150));
    println!("[+{:>4} ms] state = {}", at(&lease), lease.state());
    assert_eq!(lease.state(), LeaseState::Active);

    sleep_until(&lease, Duration::from_millis(450));
    println!("[+{:>4} ms] state = {}   (past soft expiry: still accepts work)", at(&lease), lease.state());
    assert_eq!(lease.state(), LeaseState::InGrace);

    sleep_until(&lease, Duration::from_millis(700));
    println!("[+{:>4} ms] state = {}   (past hard expiry)", at(&lease), lease.state());
    assert_eq!(lease.state(), LeaseState::Revoked);
    // The checker revoked it at +600 ms by itself; give it a moment on a loaded machine.
    poll(|| manager.stats().counters.leases_revoked == 1)?;
    println!(
        "[+{:>4} ms] the checker revoked it: queued task finished = {}, running task finished = {}",
        at(&lease),
        queued.is_finished(),
        long.is_finished()
    );

    match lease.executor().submit(|| 1) {
        Err(e @ LeaseError::Expired { .. }) => println!("[+{:>4} ms] submit -> Expired: {e}", at(&lease)),
        other => return Err(format!("expected LeaseError::Expired, got {other:?}").into()),
    }
    match queued.wait() {
        Err(e @ TaskError::Cancelled) => println!("[+{:>4} ms] queued task -> {e}", at(&lease)),
        other => return Err(format!("expected TaskError::Cancelled, got {other:?}").into()),
    }

    // The revoked pool left management; a replacement is already there for the next caller.
    poll(|| manager.available_count() == 1)?;
    let next = manager.try_acquire(AcquireOptions::new().owner("next"))?;
    println!(
        "[+{:>4} ms] replacement pool #{} leased as {} while the old pool's worker is still busy",
        at(&lease),
        next.pool_seq(),
        next.id()
    );
    drop(next);

    let outcome = long.wait()?;
    println!("[+{:>4} ms] running task -> {outcome:?} (it ran to completion on the retired pool)", at(&lease));
    drop(lease); // releasing a revoked lease is harmless

    // ── 2. A lease that is renewed ───────────────────────────────────────────────────────────
    println!("\n== a lease that is renewed ==");
    let lease = manager.acquire(AcquireOptions::new().owner("renewer").timeout(Duration::from_secs(1)))?;
    let ms = |t: Instant, lease: &ExecutorLease| t.duration_since(lease.leased_at()).as_millis();
    println!(
        "[+{:>4} ms] {} granted: soft expiry +{} ms, hard expiry +{} ms",
        at(&lease),
        lease.id(),
        ms(lease.soft_expires_at(), &lease),
        ms(lease.hard_expires_at(), &lease)
    );
    sleep_until(&lease, Duration::from_millis(150));
    let hard = lease.renew(Duration::from_millis(500))?;
    println!(
        "[+{:>4} ms] renew(500 ms): soft expiry +{} ms, hard expiry +{} ms, lease_duration {:?}",
        at(&lease),
        ms(lease.soft_expires_at(), &lease),
        ms(hard, &lease),
        lease.lease_duration()
    );
    sleep_until(&lease, Duration::from_millis(700));
    println!("[+{:>4} ms] state = {}   (the original hard expiry has passed)", at(&lease), lease.state());
    assert_eq!(lease.state(), LeaseState::Active);
    let answer = lease.run(|| (1..=20u64).sum::<u64>())?;
    println!("[+{:>4} ms] run(sum 1..=20) -> {answer}", at(&lease));
    lease.release();

    println!("\n{}", manager.stats());
    let joined = manager.stop_graceful(Duration::from_secs(2));
    println!("\nstop_graceful: every pool thread joined = {joined}");
    Ok(())
}

/// Sleeps until `offset` after the lease was granted.
fn sleep_until(lease: &ExecutorLease, offset: Duration) {
    let target = lease.leased_at() + offset;
    thread::sleep(target.saturating_duration_since(Instant::now()));
}

/// Polls `cond` every millisecond for up to two seconds.
fn poll(mut cond: impl FnMut() -> bool) -> Result<(), &'static str> {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !cond() {
        if Instant::now() > deadline {
            return Err("timed out waiting for the expected state");
        }
        thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}
