//! Issue point 3: start, stop, graceful stop, restart, drop.
mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::*;
use leasepool::{AcquireError, AcquireOptions, LeaseError, LeaseState, TaskError};

#[test]
fn stop_before_start_and_twice_is_harmless_and_restart_works() {
    let m = builder(2).name_prefix("np").build().unwrap();
    m.stop();
    assert!(!m.is_running());
    m.start().unwrap();
    m.start().unwrap(); // no-op
    assert_eq!(m.total_count(), 1);
    let first = m.acquire(AcquireOptions::new()).unwrap();
    let first_seq = first.pool_seq();
    m.stop();
    m.stop();
    assert_eq!(m.total_count(), 0);
    assert_eq!(first.state(), LeaseState::Stopped);
    m.start().unwrap();
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    assert!(lease.pool_seq() > first_seq, "pool sequence numbers keep counting after a restart");
    let name = lease.run(|| thread::current().name().unwrap().to_owned()).unwrap();
    assert!(name.starts_with(&format!("np-{}_", lease.pool_seq())), "{name}");
}

#[test]
fn acquire_before_start_is_not_running() {
    let m = builder(1).build().unwrap();
    assert_eq!(m.acquire(AcquireOptions::new()).unwrap_err(), AcquireError::NotRunning);
    assert_eq!(m.try_acquire(AcquireOptions::new()).unwrap_err(), AcquireError::NotRunning);
}

#[test]
fn stop_wakes_every_waiter_with_not_running() {
    let m = started(builder(1));
    let _held = m.acquire(AcquireOptions::new()).unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let m = m.clone();
            thread::spawn(move || m.acquire(AcquireOptions::new()).map(|_| ()))
        })
        .collect();
    wait_for("three queued waiters", || m.stats().waiting == 3);
    m.stop();
    for w in waiters {
        assert_eq!(w.join().unwrap(), Err(AcquireError::NotRunning));
    }
}

#[test]
fn stop_revokes_leases_cancels_queued_and_lets_running_finish_without_waiting() {
    let m = started(builder(1).workers_per_pool(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let (gate, running) = occupy(&lease.executor());
    let queued = lease.executor().submit(|| 1).unwrap();
    m.stop(); // must return while `running` is still blocked
    assert_eq!(queued.wait(), Err(TaskError::Cancelled), "queued task resolves at stop");
    assert_eq!(m.stats().tasks.cancelled, 1);
    assert!(!running.is_finished());
    assert_eq!(lease.state(), LeaseState::Stopped);
    assert!(matches!(lease.executor().submit(|| ()), Err(LeaseError::ManagerStopped { .. })));
    gate.open_one();
    assert_eq!(running.wait(), Ok(()), "the running task finished after stop");
    drop(lease); // releasing a stopped lease is a no-op
    let s = m.stats();
    assert_eq!((s.total, s.leased, s.available), (0, 0, 0));
    assert_eq!(s.tasks.cancelled, 1);
    assert_eq!(s.tasks.completed, 1);
}

#[test]
fn graceful_stop_waits_for_running_work_and_joins_threads() {
    let m = started(builder(2).workers_per_pool(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let (gate, running) = occupy(&lease.executor());
    // The task is still blocked: the deadline passes and not every thread was joined.
    assert!(!m.stop_graceful(Duration::from_millis(100)));
    gate.open_one();
    assert_eq!(running.wait(), Ok(()));
    assert!(m.stop_graceful(Duration::from_secs(10)), "every pool thread joins once work ends");
}

#[test]
fn dropping_the_last_manager_handle_stops_it() {
    let m = started(builder(1));
    let clone = m.clone();
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    drop(m);
    assert_eq!(lease.state(), LeaseState::Active, "a clone still holds the manager");
    drop(clone);
    assert_eq!(lease.state(), LeaseState::Stopped);
    assert!(matches!(lease.run(|| ()), Err(TaskError::Rejected(LeaseError::ManagerStopped { .. }))));
}

#[test]
fn no_lease_from_a_stopping_manager_under_a_race() {
    for _ in 0..20 {
        let m = started(builder(2).workers_per_pool(1));
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads + 1));
        let acquirers: Vec<_> = (0..threads)
            .map(|i| {
                let m = m.clone();
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    barrier.wait();
                    let mut kept = Vec::new();
                    loop {
                        let opts = AcquireOptions::new().timeout(Duration::from_millis(50));
                        match m.acquire(opts) {
                            Ok(lease) if i % 2 == 0 => kept.push(lease),
                            Ok(lease) => drop(lease),
                            Err(AcquireError::NotRunning) => return kept,
                            Err(AcquireError::TimedOut { .. }) => {}
                            Err(e) => panic!("unexpected {e}"),
                        }
                    }
                })
            })
            .collect();
        barrier.wait();
        m.stop();
        // After stop returned, nobody can get a lease any more, and every lease handed out
        // before is dead.
        assert_eq!(m.try_acquire(AcquireOptions::new()).unwrap_err(), AcquireError::NotRunning);
        for a in acquirers {
            for lease in a.join().unwrap() {
                assert_eq!(lease.state(), LeaseState::Stopped);
            }
        }
        let s = m.stats();
        assert_eq!((s.total, s.waiting, s.creating), (0, 0, 0));
    }
}

#[test]
fn a_caller_already_waiting_on_a_queued_task_is_woken_by_stop() {
    let m = started(builder(1).workers_per_pool(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let (gate, running) = occupy(&lease.executor());
    let queued = lease.executor().submit(|| 1).unwrap();
    let (tx, rx) = crossbeam::channel::bounded(1);
    let (tid_tx, tid_rx) = crossbeam::channel::bounded(1);
    let blocked = thread::spawn(move || {
        tid_tx
            .send(std::fs::read_link("/proc/thread-self").ok().map(|p| std::path::Path::new("/proc").join(p)))
            .unwrap();
        tx.send(queued.wait()).unwrap()
    });
    // Make sure the waiter is really asleep in `wait` (the kernel says so), so that it is the
    // lease's registry that must wake it, not a check made before sleeping.
    if let Some(task_dir) = tid_rx.recv().unwrap() {
        let stat = task_dir.join("stat");
        wait_for("the waiter to sleep", || {
            let text = std::fs::read_to_string(&stat).unwrap_or_default();
            text.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('S'))
        });
    }
    m.stop();
    let outcome = rx.recv_timeout(Duration::from_secs(10)).expect("the waiter was not woken by stop");
    assert_eq!(outcome, Err(TaskError::Cancelled));
    assert!(!running.is_finished());
    gate.open_one();
    assert_eq!(running.wait(), Ok(()));
    blocked.join().unwrap();
    assert_eq!(m.stats().tasks.cancelled, 1);
}
