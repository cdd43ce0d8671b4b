//! Issue points 5 to 7: leases, task handles, draining and expiry.
mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;
use leasepool::{AcquireOptions, ExecutorLease, LeaseError, LeaseState, LeasedExecutor, TaskError, TaskHandle};

fn assert_send_static<T: Send + Sync + 'static>() {}

#[test]
fn leases_and_handles_are_owned_thread_safe_values() {
    assert_send_static::<ExecutorLease>();
    assert_send_static::<LeasedExecutor>();
    assert_send_static::<TaskHandle<String>>();
    assert_send_static::<leasepool::LeasedExecutorManager>();
}

#[test]
fn lease_exposes_its_facts() {
    let m = started(builder(1).lease_grace(Duration::from_secs(7)));
    let before = Instant::now();
    let lease = m.acquire(AcquireOptions::new().owner("report").lease_duration(Duration::from_secs(60))).unwrap();
    assert_eq!(lease.owner(), Some("report"));
    assert_eq!(lease.lease_duration(), Duration::from_secs(60));
    assert_eq!(lease.grace(), Duration::from_secs(7));
    assert!(lease.leased_at() >= before);
    assert_eq!(lease.soft_expires_at(), lease.leased_at() + Duration::from_secs(60));
    assert_eq!(lease.hard_expires_at(), lease.soft_expires_at() + Duration::from_secs(7));
    assert_eq!(lease.state(), LeaseState::Active);
    assert!(lease.id().to_string().starts_with("lease-"));
    let other = {
        drop(lease);
        m.acquire(AcquireOptions::new()).unwrap()
    };
    assert_eq!(other.owner(), None);
    assert_eq!(other.lease_duration(), Duration::from_secs(3600), "the manager's default lease");
}

#[test]
fn run_and_submit_return_values_from_pool_threads() {
    let m = started(builder(1).name_prefix("unit"));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    assert_eq!(lease.run(|| 6 * 7).unwrap(), 42);
    let exec = lease.executor();
    let handles: Vec<_> = (0..50u64).map(|i| exec.clone().submit(move || i * 2).unwrap()).collect();
    let total: u64 = handles.into_iter().map(|h| h.wait().unwrap()).sum();
    assert_eq!(total, 2450);
    let name = lease.run(|| thread::current().name().map(str::to_owned)).unwrap().unwrap();
    assert!(name.starts_with("unit-"), "{name}");
    // The proxy works from other threads too.
    let from_other = thread::spawn(move || exec.submit(|| "hi").unwrap().wait()).join().unwrap();
    assert_eq!(from_other, Ok("hi"));
}

#[test]
fn a_panicking_task_resolves_as_panic_and_the_pool_lives_on() {
    let m = started(builder(1).workers_per_pool(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let err = lease.run(|| -> u32 { panic!("custom boom") }).unwrap_err();
    assert_eq!(err, TaskError::Panicked { message: "custom boom".into() });
    let err = lease.run(|| -> u32 { panic!("formatted {}", 7) }).unwrap_err();
    assert_eq!(err, TaskError::Panicked { message: "formatted 7".into() });
    assert_eq!(lease.run(|| 1).unwrap(), 1, "the single worker survived");
    let s = m.stats();
    assert_eq!((s.tasks.panicked, s.tasks.completed), (2, 1));
    assert_eq!(s.counters.pools_retired_broken, 0, "a panicking task does not break a pool");
}

#[test]
fn handles_wait_with_timeout_report_progress_and_cancel_before_start() {
    let m = started(builder(1).workers_per_pool(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let (gate, running) = occupy(&lease.executor());
    let queued = lease.executor().submit(|| "never").unwrap();
    assert!(!queued.is_finished());
    let queued = queued.wait_timeout(Duration::from_millis(20)).unwrap_err();
    assert!(queued.cancel(), "a queued task can be cancelled");
    assert!(!queued.cancel(), "only once");
    assert!(queued.is_finished());
    // Accounted at once, not when the job later passes through the busy worker.
    let s = m.stats();
    assert_eq!((s.tasks.cancelled, s.leases[0].pending_tasks), (1, 1));
    assert!(!running.cancel(), "a running task cannot be cancelled");
    gate.open_one();
    assert_eq!(running.wait_timeout(Duration::from_secs(10)).ok().unwrap(), Ok(()));
    assert_eq!(queued.wait(), Err(TaskError::Cancelled));
    let s = m.stats();
    assert_eq!((s.tasks.cancelled, s.tasks.completed, s.leases[0].pending_tasks), (1, 1, 0));
    // A release right after finalizes at once: the cancelled task is not pending any more.
    drop(lease);
    assert_eq!((m.leased_count(), m.available_count()), (0, 1));
}

#[test]
fn release_is_idempotent_and_harmless_after_revocation() {
    let m = started(builder(1).lease_grace(Duration::ZERO));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let exec = lease.executor();
    lease.release();
    assert!(matches!(exec.submit(|| ()), Err(LeaseError::Released { .. })));
    assert_eq!((m.leased_count(), m.available_count()), (0, 1));
    drop(exec);
    let short = m.acquire(AcquireOptions::new().lease_duration(Duration::from_millis(30))).unwrap();
    wait_for("revocation", || m.stats().counters.leases_revoked == 1);
    short.release(); // no-op
    assert_eq!(m.stats().counters.leases_released, 1);
}

#[test]
fn release_with_pending_work_drains_and_counts_are_ready_before_the_result() {
    let m = started(builder(1).workers_per_pool(1));
    let lease = m.acquire(AcquireOptions::new().owner("drainer")).unwrap();
    let exec = lease.executor();
    let (gate, first) = occupy(&exec);
    let second = exec.submit(|| 2).unwrap();
    drop(lease);
    // Draining: new work refused at once, pool kept out of the idle set.
    assert!(matches!(exec.submit(|| 3), Err(LeaseError::Released { .. })));
    let s = m.stats();
    assert_eq!((s.leased, s.available), (1, 0));
    assert_eq!(s.leases[0].state, LeaseState::Draining);
    assert_eq!(s.leases[0].pending_tasks, 2);
    assert!(m.try_acquire(AcquireOptions::new()).is_err(), "a draining pool is not handed out");
    gate.open_one();
    assert_eq!(first.wait(), Ok(()));
    assert_eq!(second.wait(), Ok(2));
    // Right after the last result: the pool is already back.
    assert_eq!((m.leased_count(), m.available_count()), (0, 1));
    assert_eq!(m.stats().counters.leases_released, 1);
}

#[test]
fn counts_are_consistent_right_after_a_result() {
    let m = started(builder(1));
    for _ in 0..200 {
        let lease = m.acquire(AcquireOptions::new()).unwrap();
        let h = lease.executor().submit(|| 1).unwrap();
        drop(lease);
        assert_eq!(h.wait(), Ok(1));
        assert_eq!((m.leased_count(), m.available_count()), (0, 1));
    }
}

#[test]
fn hard_expiry_revokes_promptly_with_a_long_check_interval() {
    // check_interval is one hour: only the checker's deadline sleep can revoke in time.
    let m = started(builder(2).workers_per_pool(1).lease_grace(Duration::ZERO));
    let lease = m.acquire(AcquireOptions::new().lease_duration(Duration::from_millis(100))).unwrap();
    let seq = lease.pool_seq();
    let (gate, running) = occupy(&lease.executor());
    let queued = lease.executor().submit(|| "late").unwrap();
    let begin = Instant::now();
    // Time is the subject here: the bound is generous (10 s) for slow CI machines.
    wait_for("revocation", || m.stats().counters.leases_revoked == 1);
    assert!(begin.elapsed() < Duration::from_secs(10));
    assert_eq!(lease.state(), LeaseState::Revoked);
    // Queued work resolves as cancelled at once, while the running task still runs.
    assert_eq!(queued.wait_timeout(Duration::from_secs(10)).ok().unwrap(), Err(TaskError::Cancelled));
    assert_eq!(m.stats().tasks.cancelled, 1, "counted before the handle resolved");
    assert!(!running.is_finished());
    assert!(matches!(lease.executor().submit(|| ()), Err(LeaseError::Expired { .. })));
    // Capacity is replaced up to desired with a fresh pool; the revoked one is never reused.
    wait_for("replacement", || m.available_count() == 1);
    let fresh = m.try_acquire(AcquireOptions::new()).unwrap();
    assert_ne!(fresh.pool_seq(), seq);
    gate.open_one();
    assert_eq!(running.wait(), Ok(()), "running work finishes after revocation");
    let c = m.stats().counters;
    assert_eq!((c.pools_retired_expired, c.leases_revoked), (1, 1));
}

#[test]
fn submit_past_hard_expiry_revokes_on_the_spot() {
    let m = started(builder(1).lease_grace(Duration::ZERO));
    let lease = m.acquire(AcquireOptions::new().lease_duration(Duration::from_millis(20))).unwrap();
    let exec = lease.executor();
    let deadline = lease.hard_expires_at();
    while Instant::now() < deadline {
        thread::sleep(deadline - Instant::now()); // time is the subject: wait past the deadline
    }
    let err = exec.submit(|| ()).unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    assert_eq!(lease.state(), LeaseState::Revoked);
}

#[test]
fn soft_expiry_is_informational_then_grace_then_revoked() {
    let m = started(builder(1).lease_grace(Duration::from_millis(300)));
    let lease = m.acquire(AcquireOptions::new().lease_duration(Duration::from_millis(50))).unwrap();
    wait_for("grace", || lease.state() == LeaseState::InGrace);
    assert_eq!(lease.run(|| 5).unwrap(), 5, "work is accepted in grace");
    let s = m.stats();
    assert_eq!(s.leases[0].state, LeaseState::InGrace);
    assert_eq!(s.leases[0].until_soft_expiry, Duration::ZERO);
    wait_for("revocation", || m.stats().counters.leases_revoked == 1);
}

#[test]
fn renew_extends_a_live_lease_and_the_checker_honours_it() {
    let m = started(builder(1).lease_grace(Duration::ZERO));
    let lease = m.acquire(AcquireOptions::new().lease_duration(Duration::from_millis(200))).unwrap();
    let old_hard = lease.hard_expires_at();
    let new_hard = lease.renew(Duration::from_secs(3600)).unwrap();
    assert_eq!(new_hard, old_hard + Duration::from_secs(3600));
    assert_eq!(lease.hard_expires_at(), new_hard);
    // Wait well past the original deadline: the lease must still be alive.
    let past = old_hard + Duration::from_millis(300);
    while Instant::now() < past {
        thread::sleep(past - Instant::now());
    }
    assert_eq!(lease.state(), LeaseState::Active);
    assert_eq!(lease.run(|| 1).unwrap(), 1);
    assert_eq!(m.stats().counters.leases_revoked, 0);
    assert_eq!(m.stats().counters.leases_renewed, 1);
    // Renewal also works the other way round: a shorter remaining time is enforced promptly.
    drop(lease);
    let lease = m.acquire(AcquireOptions::new().lease_duration(Duration::from_millis(50))).unwrap();
    lease.renew(Duration::from_millis(50)).unwrap();
    wait_for("revocation after the renewed deadline", || m.stats().counters.leases_revoked == 1);
    assert!(matches!(lease.renew(Duration::from_secs(1)), Err(LeaseError::Expired { .. })));
    drop(lease);
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let exec = lease.executor();
    drop(lease);
    assert!(exec.submit(|| ()).is_err());
    assert_eq!(m.stats().counters.leases_renewed, 2);
}

#[test]
fn release_returns_a_drain_that_reports_waits_notifies_and_renews() {
    assert_send_static::<leasepool::Drain>();
    let m = started(builder(1).workers_per_pool(1).lease_grace(Duration::ZERO));
    let lease = m.acquire(AcquireOptions::new().lease_duration(Duration::from_secs(3600))).unwrap();
    let (gate, running) = occupy(&lease.executor());
    let queued = lease.executor().submit(|| 7).unwrap();
    let drain = lease.release();
    assert_eq!((drain.state(), drain.pending(), drain.is_finished()), (LeaseState::Draining, 2, false));
    assert!(!drain.wait_timeout(Duration::from_millis(20)), "still draining: the gate is closed");
    // Renewing works while draining (the README promises it).
    let hard = drain.renew(Duration::from_secs(60)).unwrap();
    assert!(hard > Instant::now() + Duration::from_secs(3600));
    let (told_tx, told) = crossbeam::channel::bounded(1);
    drain.on_finished(move || told_tx.send(thread::current().id()).unwrap());
    gate.open_one();
    drain.wait();
    assert!(drain.is_finished());
    assert_eq!((drain.state(), drain.pending()), (LeaseState::Released, 0));
    // The pool is back by the time the drain is over, and the callback ran once, off this thread.
    assert_eq!((m.leased_count(), m.available_count()), (0, 1));
    let teller = told.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_ne!(teller, thread::current().id());
    assert!(told.try_recv().is_err());
    assert_eq!((running.wait(), queued.wait()), (Ok(()), Ok(7)));
    // Once over: renew fails, a late callback runs at once on this thread.
    assert!(matches!(drain.renew(Duration::from_secs(1)), Err(LeaseError::Released { .. })));
    let (late_tx, late) = crossbeam::channel::bounded(1);
    drain.on_finished(move || late_tx.send(thread::current().id()).unwrap());
    assert_eq!(late.try_recv().unwrap(), thread::current().id());
}

#[test]
fn a_drain_also_ends_when_the_draining_lease_is_revoked_or_the_manager_stops() {
    let m =
        started(builder(1).workers_per_pool(1).lease_grace(Duration::ZERO).check_interval(Duration::from_millis(10)));
    let lease = m.acquire(AcquireOptions::new().lease_duration(Duration::from_millis(300))).unwrap();
    let (gate, running) = occupy(&lease.executor());
    let drain = lease.release();
    // Time is the subject: the draining lease reaches hard expiry and is revoked.
    assert!(drain.wait_timeout(Duration::from_secs(30)), "revocation ends the drain");
    assert_eq!(drain.state(), LeaseState::Revoked);
    gate.open_one();
    assert_eq!(running.wait(), Ok(()), "running work still finishes");

    let lease = m.acquire(AcquireOptions::new().timeout(Duration::from_secs(10))).unwrap();
    let (gate, _running) = occupy(&lease.executor());
    let drain = lease.release();
    m.stop();
    assert!(drain.is_finished());
    assert_eq!(drain.state(), LeaseState::Stopped);
    gate.open_one();
}
