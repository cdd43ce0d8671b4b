//! Diagnostics: the typed snapshot returned by [`LeasedExecutorManager::stats`] and the
//! cumulative counters behind it.
//!
//! [`LeasedExecutorManager::stats`]: crate::LeasedExecutorManager::stats

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crossbeam::utils::CachePadded;

use crate::backend::kind::ExecutorBackend;
use crate::ids::LeaseId;

/// The user-visible state of a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LeaseState {
    /// Before soft expiry.
    Active,
    /// Past soft expiry, before hard expiry: still accepts work.
    InGrace,
    /// Released with tasks still pending: refuses new work, pool not yet returned.
    Draining,
    /// Released and finished.
    Released,
    /// Past hard expiry: revoked (or about to be, by the checker).
    Revoked,
    /// Its pool broke and was retired.
    Broken,
    /// The manager was stopped.
    Stopped,
}

impl fmt::Display for LeaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LeaseState::Active => "active",
            LeaseState::InGrace => "in grace",
            LeaseState::Draining => "draining",
            LeaseState::Released => "released",
            LeaseState::Revoked => "revoked",
            LeaseState::Broken => "broken",
            LeaseState::Stopped => "stopped",
        })
    }
}

/// Cumulative lease and pool counters since the manager was built (they survive restarts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseCounters {
    /// Leases granted without waiting.
    pub leases_immediate: u64,
    /// Leases granted after waiting in the queue.
    pub leases_after_wait: u64,
    /// Acquires that timed out.
    pub acquire_timeouts: u64,
    /// Fail-fast acquires that found no capacity.
    pub acquire_unavailable: u64,
    /// Leases released by their holders (counted when the pool comes back, after draining).
    pub leases_released: u64,
    /// Leases revoked at hard expiry.
    pub leases_revoked: u64,
    /// Successful renewals.
    pub leases_renewed: u64,
    /// Pools created.
    pub pools_created: u64,
    /// Pools retired because they broke or could not be built.
    pub pools_retired_broken: u64,
    /// Pools retired because they were idle (or released) above the desired count.
    pub pools_retired_shrink: u64,
    /// Pools retired because their lease passed hard expiry.
    pub pools_retired_expired: u64,
    /// Pools retired by `stop`.
    pub pools_retired_stopped: u64,
    /// Total time granted waiters spent queued.
    pub total_acquire_wait: Duration,
    /// Longest time a granted waiter spent queued.
    pub max_acquire_wait: Duration,
}

/// Cumulative task counters (updated lock-free by the submit and completion paths). The
/// submitter's and the workers' counters sit on separate cache lines so they do not contend.
#[derive(Debug, Default)]
pub(crate) struct TaskCounters {
    pub submitted: CachePadded<AtomicU64>,
    pub completed: CachePadded<AtomicU64>,
    pub panicked: AtomicU64,
    pub cancelled: AtomicU64,
    pub broken: AtomicU64,
    pub timed_out: AtomicU64,
}

impl TaskCounters {
    pub(crate) fn snapshot(&self) -> TaskCountersSnapshot {
        TaskCountersSnapshot {
            submitted: self.submitted.load(Relaxed),
            completed: self.completed.load(Relaxed),
            panicked: self.panicked.load(Relaxed),
            cancelled: self.cancelled.load(Relaxed),
            pool_broken: self.broken.load(Relaxed),
            timed_out: self.timed_out.load(Relaxed),
        }
    }
}

/// Cumulative task counters. `completed + panicked + cancelled + pool_broken + timed_out` equals
/// the number of submitted tasks that have resolved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskCountersSnapshot {
    /// Tasks accepted by a lease.
    pub submitted: u64,
    /// Tasks that returned a value.
    pub completed: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// Tasks that never ran (handle cancelled, lease revoked, manager stopped).
    pub cancelled: u64,
    /// Tasks that never ran because their pool broke, and tasks that failed for another reason of
    /// their own (a crashed worker, an unknown task, a serde or type error).
    pub pool_broken: u64,
    /// Process tasks that did not finish within their own timeout
    /// ([`TaskError::TimedOut`](crate::TaskError::TimedOut)).
    pub timed_out: u64,
}

/// One lease in a [`ManagerStats`] snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseStats {
    /// The lease.
    pub lease_id: LeaseId,
    /// Its owner label.
    pub owner: Option<String>,
    /// Its state.
    pub state: LeaseState,
    /// Tasks submitted under it that have not finished.
    pub pending_tasks: u64,
    /// Time until soft expiry (zero once in grace).
    pub until_soft_expiry: Duration,
    /// Time until hard expiry.
    pub until_hard_expiry: Duration,
    /// Sequence number of the pool it holds (the `{seq}` in thread names).
    pub pool_seq: u64,
}

/// A point-in-time snapshot of a manager: the Python `stats()` fields, per-lease state, and
/// cumulative counters. `Display` prints a readable summary.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagerStats {
    /// The backend.
    pub backend: ExecutorBackend,
    /// Whether the manager is running.
    pub running: bool,
    /// The desired pool count, computed now from the size provider.
    pub desired: usize,
    /// The configured cap.
    pub max_pools: usize,
    /// The configured floor.
    pub min_pools: usize,
    /// Idle pools.
    pub available: usize,
    /// Lease records (active, in grace, draining).
    pub leased: usize,
    /// `available + leased`.
    pub total: usize,
    /// Pools being built right now (they count against `max_pools`).
    pub creating: usize,
    /// Callers queued in `acquire`.
    pub waiting: usize,
    /// Threads per pool.
    pub workers_per_pool: usize,
    /// Every lease, in acquisition order.
    pub leases: Vec<LeaseStats>,
    /// Every pool the manager owns (idle and leased), then retired pools whose workers are still
    /// alive (marked `retired`), by sequence number, with their worker process ids.
    pub pools: Vec<PoolStats>,
    /// Lease and pool counters.
    pub counters: LeaseCounters,
    /// Task counters.
    pub tasks: TaskCountersSnapshot,
}

/// One pool in a [`ManagerStats`] snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// The pool's sequence number.
    pub seq: u64,
    /// The lease holding it, if any.
    pub lease_id: Option<LeaseId>,
    /// Its worker process ids (process backend; empty for thread pools).
    pub worker_pids: Vec<u32>,
    /// Retired (shrunk, expired, broken or stopped) but some of its workers are still alive,
    /// finishing work or stuck; it no longer counts in `total`. `stop` terminates the workers of
    /// retired process pools.
    pub retired: bool,
}

impl fmt::Display for ManagerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counters;
        let t = &self.tasks;
        writeln!(
            f,
            "leasepool [{}] {}: pools {} total ({} available, {} leased, {} creating), desired {} (min {}, max {}), {} workers/pool, {} waiting",
            self.backend,
            if self.running { "running" } else { "stopped" },
            self.total,
            self.available,
            self.leased,
            self.creating,
            self.desired,
            self.min_pools,
            self.max_pools,
            self.workers_per_pool,
            self.waiting,
        )?;
        for p in self.pools.iter().filter(|p| !p.worker_pids.is_empty()) {
            let holder = match p.lease_id {
                _ if p.retired => "retired, still finishing".to_owned(),
                Some(id) => format!("leased by {id}"),
                None => "idle".to_owned(),
            };
            writeln!(f, "  pool {} ({holder}): worker pids {:?}", p.seq, p.worker_pids)?;
        }
        for l in &self.leases {
            writeln!(
                f,
                "  lease {} owner={} state={} pending={} pool={} soft in {:.3}s hard in {:.3}s",
                l.lease_id,
                l.owner.as_deref().unwrap_or("-"),
                l.state,
                l.pending_tasks,
                l.pool_seq,
                l.until_soft_expiry.as_secs_f64(),
                l.until_hard_expiry.as_secs_f64(),
            )?;
        }
        let granted = c.leases_immediate + c.leases_after_wait;
        let mean_wait = if c.leases_after_wait == 0 {
            Duration::ZERO
        } else {
            c.total_acquire_wait.div_f64(c.leases_after_wait as f64)
        };
        writeln!(
            f,
            "  leases: {} granted ({} immediately, {} after waiting; mean wait {:?}, max {:?}), {} timed out, {} unavailable, {} released, {} revoked, {} renewed",
            granted, c.leases_immediate, c.leases_after_wait, mean_wait, c.max_acquire_wait, c.acquire_timeouts, c.acquire_unavailable, c.leases_released, c.leases_revoked, c.leases_renewed,
        )?;
        writeln!(
            f,
            "  pools: {} created, retired {} broken / {} shrink / {} expired / {} at stop",
            c.pools_created,
            c.pools_retired_broken,
            c.pools_retired_shrink,
            c.pools_retired_expired,
            c.pools_retired_stopped,
        )?;
        write!(
            f,
            "  tasks: {} submitted, {} completed, {} panicked, {} cancelled, {} pool broken, {} timed out",
            t.submitted, t.completed, t.panicked, t.cancelled, t.pool_broken, t.timed_out,
        )
    }
}
