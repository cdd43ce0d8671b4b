//! `lp_manager`: build, start, stop, acquire, stats.

use leasepool::LeasedExecutorManager;

use crate::acquire::lp_acquire_options;
use crate::config::lp_config;
use crate::guard::{arg, free_handle, guard, guard_value, into_handle, millis, out_ptr, Failure};
use crate::lease::lp_lease;
use crate::lp_status;
use crate::stats::lp_stats_snapshot;

/// A leased executor manager (opaque). Thread-safe: share one handle between threads, or give
/// each its own with `lp_manager_clone`. The manager lives until every handle is freed, every
/// lease it granted is gone and it is stopped; freeing the last handle of a running manager
/// stops it.
#[allow(non_camel_case_types)]
pub struct lp_manager {
    pub(crate) inner: LeasedExecutorManager,
}

/// Builds a manager from `config` (which stays usable: build several managers from one). The
/// manager is not started yet.
///
/// Returns `LP_OK` and sets `*out`; or `LP_INVALID_ARGUMENT` (NULL), or a configuration
/// status (`LP_CONFIG_OUT_OF_RANGE`, `LP_CONFIG_MIN_ABOVE_MAX`, ...) naming the field in the
/// message. `*out` is NULL on failure.
///
/// # Safety
/// `config` is NULL or live; `out` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn lp_manager_new(config: *const lp_config, out: *mut *mut lp_manager) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let out = unsafe { out_ptr(out, "out") }?;
        // SAFETY: forwarded caller guarantee.
        let config = unsafe { arg(config, "config") }?;
        let inner = config.builder().clone().build()?;
        *out = into_handle(lp_manager { inner });
        Ok(())
    })
}

/// Another handle on the same manager (for another thread or owner), or NULL if `manager` is
/// NULL. Free each handle with `lp_manager_free`.
///
/// # Safety
/// `manager` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_manager_clone(manager: *const lp_manager) -> *mut lp_manager {
    guard_value(std::ptr::null_mut(), || {
        // SAFETY: forwarded caller guarantee.
        match unsafe { manager.as_ref() } {
            Some(m) => into_handle(lp_manager { inner: m.inner.clone() }),
            None => std::ptr::null_mut(),
        }
    })
}

/// Frees a handle. NULL is a no-op. Freeing the last handle stops the manager (like
/// `lp_manager_stop`); leases, executors and tasks already handed out stay valid handles (their
/// calls then report `LP_MANAGER_STOPPED` / `LP_CANCELLED`).
///
/// # Safety
/// `manager` is NULL or live, and not used again.
#[no_mangle]
pub unsafe extern "C" fn lp_manager_free(manager: *mut lp_manager) {
    // SAFETY: forwarded caller guarantee.
    unsafe { free_handle(manager) }
}

/// The manager behind a handle.
///
/// # Safety
/// `manager` is NULL or live for 'a.
unsafe fn get<'a>(manager: *const lp_manager) -> Result<&'a LeasedExecutorManager, Failure> {
    // SAFETY: forwarded caller guarantee.
    Ok(&unsafe { arg(manager, "manager") }?.inner)
}

/// Starts the manager: creates `min_pools` pools and the checker thread. Starting a running
/// manager does nothing.
///
/// Returns `LP_OK`, `LP_INVALID_ARGUMENT` or `LP_START_FAILED` (the message says why).
///
/// # Safety
/// `manager` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_manager_start(manager: *const lp_manager) -> lp_status {
    // SAFETY: forwarded caller guarantee.
    guard(|| Ok(unsafe { get(manager) }?.start()?))
}

/// Stops the manager: waiting acquires fail with `LP_NOT_RUNNING`, leases end, queued tasks
/// resolve as `LP_CANCELLED`, pools shut down. Blocks until threads have been told to stop
/// (and worker processes reaped); idempotent.
///
/// Do not call it from a task completion callback or a pool thread of the same manager.
///
/// Returns `LP_OK` or `LP_INVALID_ARGUMENT`.
///
/// # Safety
/// `manager` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_manager_stop(manager: *const lp_manager) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        unsafe { get(manager) }?.stop();
        Ok(())
    })
}

/// Stops the manager and waits at most `timeout_ms` for every pool thread to finish.
///
/// Returns `LP_OK` (all finished), `LP_TIMED_OUT` (stopped, but something was still running
/// when the timeout passed) or `LP_INVALID_ARGUMENT`.
///
/// # Safety
/// `manager` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_manager_stop_graceful(manager: *const lp_manager, timeout_ms: u64) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        if unsafe { get(manager) }?.stop_graceful(millis(timeout_ms)) {
            Ok(())
        } else {
            Err(Failure::new(lp_status::LP_TIMED_OUT, format!("pools were still finishing after {timeout_ms} ms")))
        }
    })
}

/// Whether the manager is running (false for NULL).
///
/// # Safety
/// `manager` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_manager_is_running(manager: *const lp_manager) -> bool {
    // SAFETY: forwarded caller guarantee.
    guard_value(false, || unsafe { manager.as_ref() }.is_some_and(|m| m.inner.is_running()))
}

/// Tells the checker that the size signal changed, so it resizes now rather than at its next
/// interval.
///
/// Returns `LP_OK` or `LP_INVALID_ARGUMENT`.
///
/// # Safety
/// `manager` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_manager_notify_scale_changed(manager: *const lp_manager) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        unsafe { get(manager) }?.notify_scale_changed();
        Ok(())
    })
}

/// Acquires a lease, blocking until a pool is free (first come, first served, within the
/// manager's fairness bound), the options' timeout passes, or their interrupt fires.
/// `options` may be NULL (defaults: no owner, no timeout, default lease duration).
///
/// Returns `LP_OK` and sets `*out` (free it with `lp_lease_free` or `lp_lease_release`);
/// otherwise `*out` is NULL and the status is `LP_NOT_RUNNING`, `LP_TIMED_OUT`,
/// `LP_INTERRUPTED`, `LP_POOL_BROKEN` (no pool could be created) or `LP_INVALID_ARGUMENT`.
/// Thread-safe.
///
/// # Safety
/// `manager` is NULL or live; `options` is NULL or live; `out` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn lp_manager_acquire(
    manager: *const lp_manager,
    options: *const lp_acquire_options,
    out: *mut *mut lp_lease,
) -> lp_status {
    // SAFETY: forwarded caller guarantee.
    guard(|| unsafe { acquire(manager, options, out, false) })
}

/// Acquires a lease only if a pool is idle now; never waits.
///
/// Returns `LP_OK` and sets `*out`; otherwise `*out` is NULL and the status is
/// `LP_UNAVAILABLE` (all `max_pools` pools are leased), `LP_STARTING` (fewer exist: one is
/// being started in the background, ask again soon), `LP_NOT_RUNNING` or
/// `LP_INVALID_ARGUMENT`. Thread-safe.
///
/// # Safety
/// As `lp_manager_acquire`.
#[no_mangle]
pub unsafe extern "C" fn lp_manager_try_acquire(
    manager: *const lp_manager,
    options: *const lp_acquire_options,
    out: *mut *mut lp_lease,
) -> lp_status {
    // SAFETY: forwarded caller guarantee.
    guard(|| unsafe { acquire(manager, options, out, true) })
}

/// Both acquires.
///
/// # Safety
/// As `lp_manager_acquire`.
unsafe fn acquire(
    manager: *const lp_manager,
    options: *const lp_acquire_options,
    out: *mut *mut lp_lease,
    fail_fast: bool,
) -> Result<(), Failure> {
    // SAFETY: forwarded caller guarantee.
    let out = unsafe { out_ptr(out, "out") }?;
    // SAFETY: forwarded caller guarantee.
    let manager = unsafe { get(manager) }?;
    // SAFETY: forwarded caller guarantee (NULL means defaults).
    let options = unsafe { options.as_ref() }.map(|o| o.inner.clone()).unwrap_or_default();
    let lease = if fail_fast { manager.try_acquire(options) } else { manager.acquire(options) }?;
    *out = into_handle(lp_lease::new(lease));
    Ok(())
}

/// A snapshot of the manager's counts, counters, leases and pools. Free it with
/// `lp_stats_snapshot_free`.
///
/// Returns `LP_OK` and sets `*out`, or `LP_INVALID_ARGUMENT`.
///
/// # Safety
/// `manager` is NULL or live; `out` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn lp_manager_stats(manager: *const lp_manager, out: *mut *mut lp_stats_snapshot) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let out = unsafe { out_ptr(out, "out") }?;
        // SAFETY: forwarded caller guarantee.
        let stats = unsafe { get(manager) }?.stats();
        *out = into_handle(lp_stats_snapshot::new(stats));
        Ok(())
    })
}
