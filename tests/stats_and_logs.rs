//! Issue point 10: typed stats, cumulative counters, Display, and log events.
mod common;

use std::time::Duration;

use common::*;
use leasepool::{AcquireOptions, LeaseState};
use log::{Level, LevelFilter};

static LOGS: Capture = Capture::new();

fn logs_for(target: &str) -> Vec<(Level, String)> {
    LOGS.0.lock().unwrap().iter().filter(|(_, t, _)| t == target).map(|(l, _, m)| (*l, m.clone())).collect()
}

fn has(logs: &[(Level, String)], level: Level, fragment: &str) -> bool {
    logs.iter().any(|(l, m)| *l == level && m.contains(fragment))
}

#[test]
fn stats_snapshot_counters_display_and_logs() {
    let _ = log::set_logger(&LOGS);
    log::set_max_level(LevelFilter::Trace);
    let target = "stats-test";
    let m = builder(3).log_target(target).lease_grace(Duration::from_millis(50)).build().unwrap();
    let s = m.stats();
    assert_eq!((s.running, s.total, s.desired, s.max_pools, s.min_pools, s.workers_per_pool), (false, 0, 1, 3, 1, 2));
    m.start().unwrap();

    let a = m.acquire(AcquireOptions::new().owner("alpha")).unwrap();
    let b = m.acquire(AcquireOptions::new().owner("beta")).unwrap();
    assert_eq!(a.run(|| 1).unwrap(), 1);
    assert!(a.run(|| -> i32 { panic!("stats boom") }).is_err());
    let s = m.stats();
    assert_eq!((s.running, s.available, s.leased, s.total), (true, 0, 2, 2));
    assert_eq!(s.leases.len(), 2);
    assert_eq!(s.leases[0].owner.as_deref(), Some("alpha"));
    assert_eq!(s.leases[0].lease_id, a.id());
    assert_eq!(s.leases[0].state, LeaseState::Active);
    assert_eq!(s.leases[1].pool_seq, b.pool_seq());
    assert!(s.leases[0].until_hard_expiry > s.leases[0].until_soft_expiry);
    b.renew(Duration::from_secs(1)).unwrap();
    drop(b);
    // A short lease to see soft expiry and revocation in counters and logs.
    let short = m.acquire(AcquireOptions::new().owner("short").lease_duration(Duration::from_millis(30))).unwrap();
    wait_for("revocation", || m.stats().counters.leases_revoked == 1);
    let (gate, drain) = occupy(&a.executor());
    drop(a); // release while draining
    gate.open_one();
    drain.wait().unwrap();

    let s = m.stats();
    let c = s.counters;
    // `a` found an idle pool; `b` and `short` waited for a pool built for them off their thread.
    assert_eq!((c.leases_immediate, c.leases_after_wait), (1, 2));
    assert_eq!(c.leases_revoked, 1);
    assert_eq!(c.leases_renewed, 1);
    assert_eq!(c.leases_released, 2);
    assert_eq!(c.pools_retired_expired, 1);
    assert!(c.pools_created >= 3);
    assert_eq!(s.tasks.submitted, 3);
    assert_eq!((s.tasks.completed, s.tasks.panicked, s.tasks.cancelled), (2, 1, 0));
    let text = s.to_string();
    for fragment in
        ["leasepool [thread] running", "leases:", "1 revoked", "1 renewed", "tasks: 3 submitted", "1 panicked"]
    {
        assert!(text.contains(fragment), "missing {fragment:?} in:\n{text}");
    }
    drop(short);
    m.stop();

    let logs = logs_for(target);
    assert!(has(&logs, Level::Info, "executor created"));
    assert!(has(&logs, Level::Info, "manager started"));
    assert!(has(&logs, Level::Info, "lease granted"));
    assert!(has(&logs, Level::Info, "owner=alpha"));
    assert!(has(&logs, Level::Warn, "soft expiry"));
    assert!(has(&logs, Level::Warn, "revoking an expired lease"));
    assert!(has(&logs, Level::Info, "release while draining"));
    assert!(has(&logs, Level::Info, "release finalized"));
    assert!(has(&logs, Level::Info, "manager stopped"));
    let soft = logs.iter().filter(|(l, m)| *l == Level::Warn && m.contains("soft expiry")).count();
    assert_eq!(soft, 1, "soft expiry is logged once per lease");
    assert!(logs_for("leasepool").is_empty(), "every record uses the configured target");
}

#[test]
fn grinder_logs_its_lifecycle_batches_and_queue() {
    let _ = log::set_logger(&LOGS);
    log::set_max_level(LevelFilter::Trace);
    let target = "grinder-log-test";
    let m = started(builder(1).log_target("grinder-log-test-manager"));
    let g = leasepool::WorkGrinder::builder(m.clone())
        .batch_size_threshold(2)
        .max_wait(Duration::from_secs(3600))
        .log_target(target)
        .build()
        .unwrap();
    g.start().unwrap();
    let cancelled = g.enqueue_as("alice", || 0).unwrap();
    assert!(cancelled.cancel());
    let a = g.enqueue_as("bob", || 1).unwrap();
    let b = g.enqueue(|| 2).unwrap();
    assert_eq!((a.wait(), b.wait()), (Ok(1), Ok(2)));
    g.stop(leasepool::StopMode::Drain { deadline: None });
    let text = g.stats().to_string();
    for fragment in ["work grinder stopped", "1 batches run", "jobs: 2 completed", "1 cancelled"] {
        assert!(text.contains(fragment), "missing {fragment:?} in:\n{text}");
    }
    let logs = logs_for(target);
    assert!(has(&logs, Level::Info, "grinder started"));
    assert!(has(&logs, Level::Debug, "item queued"));
    assert!(has(&logs, Level::Debug, "owner=alice"));
    assert!(has(&logs, Level::Debug, "cancelled pending item removed"));
    assert!(has(&logs, Level::Info, "processing batch (batch_id=1, size=2"));
    assert!(has(&logs, Level::Info, "finished batch (batch_id=1"));
    assert!(has(&logs, Level::Info, "grinder stopped"));
    // The batch lease was granted under the grinder's owner label.
    let manager_logs = logs_for("grinder-log-test-manager");
    assert!(has(&manager_logs, Level::Info, "owner=work-grinder-batch-1"), "{manager_logs:?}");
}
