//! `lp_stats_snapshot`: one consistent snapshot of a manager, read out as a plain struct
//! (`lp_stats`) or as the readable summary (`lp_stats_snapshot_summary`, freed with
//! `lp_string_free`).

use std::ffi::{c_char, CString};

use leasepool::ManagerStats;

use crate::guard::{arg, free_handle, guard, guard_value, Failure};
use crate::lp_status;

/// A snapshot of a manager's state (opaque), from `lp_manager_stats`. Immutable, thread-safe.
/// Free it with `lp_stats_snapshot_free`.
#[allow(non_camel_case_types)]
pub struct lp_stats_snapshot {
    stats: ManagerStats,
}

impl lp_stats_snapshot {
    /// Wraps a snapshot.
    pub(crate) fn new(stats: ManagerStats) -> lp_stats_snapshot {
        lp_stats_snapshot { stats }
    }
}

/// A manager's counts and counters (filled by `lp_stats_snapshot_counts`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct lp_stats {
    /// Whether the manager is running.
    pub running: bool,
    /// Pools the size signal asks for (clamped to `[min_pools, max_pools]`).
    pub desired: usize,
    /// The configured maximum.
    pub max_pools: usize,
    /// The configured minimum.
    pub min_pools: usize,
    /// Idle pools.
    pub available: usize,
    /// Leased pools.
    pub leased: usize,
    /// Pools in management (available + leased).
    pub total: usize,
    /// Pools being created.
    pub creating: usize,
    /// Acquires waiting.
    pub waiting: usize,
    /// Threads or processes per pool.
    pub workers_per_pool: usize,
    /// Leases granted without waiting.
    pub leases_immediate: u64,
    /// Leases granted after waiting.
    pub leases_after_wait: u64,
    /// Acquires that timed out.
    pub acquire_timeouts: u64,
    /// Fail-fast acquires refused.
    pub acquire_unavailable: u64,
    /// Leases released.
    pub leases_released: u64,
    /// Leases revoked at hard expiry.
    pub leases_revoked: u64,
    /// Lease renewals.
    pub leases_renewed: u64,
    /// Pools created.
    pub pools_created: u64,
    /// Pools retired because they broke.
    pub pools_retired_broken: u64,
    /// Pools retired by a shrink.
    pub pools_retired_shrink: u64,
    /// Pools retired after their lease expired.
    pub pools_retired_expired: u64,
    /// Tasks submitted.
    pub tasks_submitted: u64,
    /// Tasks that ran to completion.
    pub tasks_completed: u64,
    /// Tasks that panicked (or failed in a worker).
    pub tasks_panicked: u64,
    /// Tasks cancelled.
    pub tasks_cancelled: u64,
    /// Tasks that did not run because their pool broke.
    pub tasks_pool_broken: u64,
    /// Process tasks that ran past their timeout.
    pub tasks_timed_out: u64,
}

impl From<&ManagerStats> for lp_stats {
    fn from(s: &ManagerStats) -> lp_stats {
        let (c, t) = (&s.counters, &s.tasks);
        lp_stats {
            running: s.running,
            desired: s.desired,
            max_pools: s.max_pools,
            min_pools: s.min_pools,
            available: s.available,
            leased: s.leased,
            total: s.total,
            creating: s.creating,
            waiting: s.waiting,
            workers_per_pool: s.workers_per_pool,
            leases_immediate: c.leases_immediate,
            leases_after_wait: c.leases_after_wait,
            acquire_timeouts: c.acquire_timeouts,
            acquire_unavailable: c.acquire_unavailable,
            leases_released: c.leases_released,
            leases_revoked: c.leases_revoked,
            leases_renewed: c.leases_renewed,
            pools_created: c.pools_created,
            pools_retired_broken: c.pools_retired_broken,
            pools_retired_shrink: c.pools_retired_shrink,
            pools_retired_expired: c.pools_retired_expired,
            tasks_submitted: t.submitted,
            tasks_completed: t.completed,
            tasks_panicked: t.panicked,
            tasks_cancelled: t.cancelled,
            tasks_pool_broken: t.pool_broken,
            tasks_timed_out: t.timed_out,
        }
    }
}

/// Copies the snapshot's counts and counters into `*out`.
///
/// Returns `LP_OK` or `LP_INVALID_ARGUMENT` (NULL).
///
/// # Safety
/// `snapshot` is NULL or live; `out` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn lp_stats_snapshot_counts(snapshot: *const lp_stats_snapshot, out: *mut lp_stats) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let snapshot = unsafe { arg(snapshot, "snapshot") }?;
        // SAFETY: forwarded caller guarantee.
        let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::invalid("out is NULL"))?;
        *out = (&snapshot.stats).into();
        Ok(())
    })
}

/// The snapshot as readable text (pools, leases with owners and deadlines, counters): a new
/// NUL-terminated UTF-8 string the caller frees with `lp_string_free`. NULL if `snapshot` is
/// NULL.
///
/// # Safety
/// `snapshot` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_stats_snapshot_summary(snapshot: *const lp_stats_snapshot) -> *mut c_char {
    guard_value(std::ptr::null_mut(), || {
        // SAFETY: forwarded caller guarantee.
        match unsafe { snapshot.as_ref() } {
            Some(s) => CString::new(s.stats.to_string().replace('\0', " ")).unwrap_or_default().into_raw(),
            None => std::ptr::null_mut(),
        }
    })
}

/// Frees a snapshot. NULL is a no-op.
///
/// # Safety
/// `snapshot` is NULL or live, and not used again.
#[no_mangle]
pub unsafe extern "C" fn lp_stats_snapshot_free(snapshot: *mut lp_stats_snapshot) {
    // SAFETY: forwarded caller guarantee.
    unsafe { free_handle(snapshot) }
}

/// Frees a string this library returned (`lp_stats_snapshot_summary`). NULL is a no-op.
///
/// # Safety
/// `string` is NULL or a string from this library, not freed before.
#[no_mangle]
pub unsafe extern "C" fn lp_string_free(string: *mut c_char) {
    if !string.is_null() {
        // SAFETY: the caller guarantees it came from `CString::into_raw` here.
        drop(unsafe { CString::from_raw(string) });
    }
}
