//! `lp_lease` (a granted lease: executor, state, renew, release), `lp_drain` (a released
//! lease's drain) and `lp_executor` (the submit-only proxy) with `lp_submit`.

use std::ffi::c_void;

use leasepool::{Drain, ExecutorLease, LeaseState, LeasedExecutor};

use crate::callback::{lp_callback, CJob, Userdata};
use crate::guard::{arg, free_handle, guard, guard_value, into_handle, millis, out_ptr, Failure};
use crate::lp_status;
use crate::task::lp_task;

/// A lease on one pool (opaque). Free it with `lp_lease_free` (releases it: the pool goes back
/// once the lease's pending tasks are done) or `lp_lease_release` (the same, and returns a
/// drain handle). Thread-safe (any thread may query it; free it once).
#[allow(non_camel_case_types)]
pub struct lp_lease {
    inner: ExecutorLease,
}

impl lp_lease {
    /// Wraps a granted lease.
    pub(crate) fn new(inner: ExecutorLease) -> lp_lease {
        lp_lease { inner }
    }
}

/// The submit-only proxy of a lease (opaque): it can never shut the pool down. Thread-safe:
/// submit from any number of threads. Free it with `lp_executor_free`; it may outlive its
/// lease (submissions are then refused with `LP_RELEASED`, `LP_EXPIRED`, ...).
#[allow(non_camel_case_types)]
pub struct lp_executor {
    pub(crate) inner: LeasedExecutor,
}

/// A released lease's drain (opaque): observe or wait for the moment its pending tasks are
/// done and its pool went back. Thread-safe. Free it with `lp_drain_free` (the drain goes on).
#[allow(non_camel_case_types)]
pub struct lp_drain {
    inner: Drain,
}

/// Where a lease is.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lp_lease_state {
    /// Before soft expiry.
    LP_LEASE_ACTIVE = 0,
    /// Past soft expiry, before hard expiry: still accepts work.
    LP_LEASE_IN_GRACE = 1,
    /// Released with tasks pending: refuses new work; the pool returns when they are done.
    LP_LEASE_DRAINING = 2,
    /// Released and finished.
    LP_LEASE_RELEASED = 3,
    /// Past hard expiry: revoked.
    LP_LEASE_REVOKED = 4,
    /// Its pool broke and was retired.
    LP_LEASE_BROKEN = 5,
    /// The manager was stopped.
    LP_LEASE_STOPPED = 6,
    /// A state this version of the header does not know.
    LP_LEASE_UNKNOWN = 255,
}

impl From<LeaseState> for lp_lease_state {
    fn from(state: LeaseState) -> lp_lease_state {
        use lp_lease_state::*;
        match state {
            LeaseState::Active => LP_LEASE_ACTIVE,
            LeaseState::InGrace => LP_LEASE_IN_GRACE,
            LeaseState::Draining => LP_LEASE_DRAINING,
            LeaseState::Released => LP_LEASE_RELEASED,
            LeaseState::Revoked => LP_LEASE_REVOKED,
            LeaseState::Broken => LP_LEASE_BROKEN,
            LeaseState::Stopped => LP_LEASE_STOPPED,
            _ => LP_LEASE_UNKNOWN,
        }
    }
}

/// Releases a lease and frees the handle. NULL is a no-op. New submissions are refused at
/// once; the pool goes back to the manager when the tasks already submitted are done (they
/// still run and resolve normally).
///
/// # Safety
/// `lease` is NULL or live, and not used again.
#[no_mangle]
pub unsafe extern "C" fn lp_lease_free(lease: *mut lp_lease) {
    // SAFETY: forwarded caller guarantee.
    unsafe { free_handle(lease) }
}

/// Releases a lease like `lp_lease_free` and returns its drain in `*drain` (pass NULL to not
/// get one). The lease handle is freed in every case, even when this returns an error.
///
/// Returns `LP_OK` (and sets `*drain` if asked) or `LP_INVALID_ARGUMENT` (`lease` NULL; `*drain`
/// is then NULL).
///
/// # Safety
/// `lease` is NULL or live, and not used again; `drain` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn lp_lease_release(lease: *mut lp_lease, drain: *mut *mut lp_drain) -> lp_status {
    guard(|| {
        // SAFETY: the caller guarantees `drain` is NULL or valid for writes.
        let drain = unsafe { drain.as_mut() };
        if lease.is_null() {
            // A failed call leaves NULL in its `out` handle, like every other.
            if let Some(drain) = drain {
                *drain = std::ptr::null_mut();
            }
            return Err(Failure::invalid("lease is NULL"));
        }
        // SAFETY: non-NULL, and the caller guarantees it is a live lease not used again.
        let lease = unsafe { Box::from_raw(lease) };
        let released = lease.inner.release();
        if let Some(drain) = drain {
            *drain = into_handle(lp_drain { inner: released });
        }
        Ok(())
    })
}

/// A new executor handle for the lease's pool. NULL if `lease` is NULL. Free it with
/// `lp_executor_free`.
///
/// # Safety
/// `lease` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_lease_executor(lease: *const lp_lease) -> *mut lp_executor {
    guard_value(std::ptr::null_mut(), || {
        // SAFETY: forwarded caller guarantee.
        match unsafe { lease.as_ref() } {
            Some(lease) => into_handle(lp_executor { inner: lease.inner.executor() }),
            None => std::ptr::null_mut(),
        }
    })
}

/// The lease's id (unique within the process; 0 for NULL).
///
/// # Safety
/// `lease` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_lease_id(lease: *const lp_lease) -> u64 {
    // SAFETY: forwarded caller guarantee.
    guard_value(0, || unsafe { lease.as_ref() }.map_or(0, |l| l.inner.id().get()))
}

/// Where the lease is now, in `*state`.
///
/// Returns `LP_OK` or `LP_INVALID_ARGUMENT` (NULL).
///
/// # Safety
/// `lease` is NULL or live; `state` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn lp_lease_get_state(lease: *const lp_lease, state: *mut lp_lease_state) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let lease = unsafe { arg(lease, "lease") }?;
        // SAFETY: forwarded caller guarantee.
        let state = unsafe { state.as_mut() }.ok_or_else(|| Failure::invalid("state is NULL"))?;
        *state = lease.inner.state().into();
        Ok(())
    })
}

/// Extends the lease's soft and hard deadlines by `extra_ms` milliseconds.
///
/// Returns `LP_OK`, or `LP_EXPIRED` / `LP_RELEASED` / `LP_MANAGER_STOPPED` / `LP_POOL_BROKEN`
/// when the lease is no longer active, or `LP_INVALID_ARGUMENT`.
///
/// # Safety
/// `lease` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_lease_renew(lease: *const lp_lease, extra_ms: u64) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        unsafe { arg(lease, "lease") }?.inner.renew(millis(extra_ms))?;
        Ok(())
    })
}

/// Frees an executor handle. NULL is a no-op. Tasks it submitted are unaffected.
///
/// # Safety
/// `executor` is NULL or live, and not used again.
#[no_mangle]
pub unsafe extern "C" fn lp_executor_free(executor: *mut lp_executor) {
    // SAFETY: forwarded caller guarantee.
    unsafe { free_handle(executor) }
}

/// Queues `task(userdata)` on the leased pool (thread backend) and returns its handle in `*out`
/// at once.
///
/// **`userdata` ownership**: it passes to the library in every case. `drop_userdata` (may be
/// NULL) is called exactly once with `userdata`: after `task` returns if the task ran; before
/// this function returns if it fails (any status, including `LP_INVALID_ARGUMENT`); and if the
/// task is resolved without running (`lp_task_cancel`, revocation at hard expiry, manager stop),
/// by the time that is observed — inside `lp_task_cancel`, or the `lp_task_wait`,
/// `lp_task_is_finished` or `lp_task_take_output` call that sees the task resolved — or, if the
/// handle is freed first, when the task resolves (on the resolving thread, e.g. inside
/// `lp_manager_stop` or on the checker thread), or when a pool worker discards the queued job,
/// whichever comes first. So once `lp_task_wait` has returned, `drop_userdata` has run.
/// `task` runs on a pool thread and `drop_userdata` may run on any thread: both must be safe to
/// call from another thread; keep `drop_userdata` short, and do not stop the manager from it.
///
/// Returns `LP_OK` and sets `*out` (free with `lp_task_free`; freeing does not cancel). Or
/// `*out` is NULL and: `LP_RELEASED`, `LP_EXPIRED`, `LP_MANAGER_STOPPED`, `LP_POOL_BROKEN`
/// (the lease no longer accepts work), `LP_WRONG_BACKEND` (a process pool: use
/// `lp_submit_bytes`), `LP_INVALID_ARGUMENT` (`executor`, `task` or `out` NULL). Thread-safe.
///
/// # Safety
/// `executor` is NULL or live; `task` and `drop_userdata` are NULL or valid functions;
/// `out` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn lp_submit(
    executor: *const lp_executor,
    task: lp_callback,
    userdata: *mut c_void,
    drop_userdata: lp_callback,
    out: *mut *mut lp_task,
) -> lp_status {
    let data = Userdata::new(userdata, drop_userdata);
    guard(move || {
        // SAFETY: forwarded caller guarantee.
        let out = unsafe { out_ptr(out, "out") }?;
        // SAFETY: forwarded caller guarantee.
        let executor = unsafe { arg(executor, "executor") }?;
        let job = CJob::new(task.ok_or_else(|| Failure::invalid("task is NULL"))?, data);
        let dropper = job.dropper();
        let handle = executor.inner.submit(move || job.run())?;
        *out = into_handle(lp_task::unit(handle, dropper));
        Ok(())
    })
}

/// Frees a drain handle. NULL is a no-op; the drain itself goes on.
///
/// # Safety
/// `drain` is NULL or live, and not used again.
#[no_mangle]
pub unsafe extern "C" fn lp_drain_free(drain: *mut lp_drain) {
    // SAFETY: forwarded caller guarantee.
    unsafe { free_handle(drain) }
}

/// Tasks submitted through the released lease that have not resolved yet (0 for NULL).
///
/// # Safety
/// `drain` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_drain_pending(drain: *const lp_drain) -> u64 {
    // SAFETY: forwarded caller guarantee.
    guard_value(0, || unsafe { drain.as_ref() }.map_or(0, |d| d.inner.pending()))
}

/// Whether the drain is over: the pool went back, or the lease ended (false for NULL).
///
/// # Safety
/// `drain` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_drain_is_finished(drain: *const lp_drain) -> bool {
    // SAFETY: forwarded caller guarantee.
    guard_value(false, || unsafe { drain.as_ref() }.is_some_and(|d| d.inner.is_finished()))
}

/// Where the released lease is (`LP_LEASE_DRAINING`, then `LP_LEASE_RELEASED` or the state
/// that ended it), in `*state`.
///
/// Returns `LP_OK` or `LP_INVALID_ARGUMENT`.
///
/// # Safety
/// `drain` is NULL or live; `state` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn lp_drain_get_state(drain: *const lp_drain, state: *mut lp_lease_state) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let drain = unsafe { arg(drain, "drain") }?;
        // SAFETY: forwarded caller guarantee.
        let state = unsafe { state.as_mut() }.ok_or_else(|| Failure::invalid("state is NULL"))?;
        *state = drain.inner.state().into();
        Ok(())
    })
}

/// Extends the draining lease's deadlines by `extra_ms` milliseconds, so that slow pending work
/// is not revoked at hard expiry.
///
/// Returns `LP_OK`; `LP_RELEASED` (or the status of what ended the lease) once the drain is
/// over; `LP_INVALID_ARGUMENT` (NULL, or a renewal that would overflow).
///
/// # Safety
/// `drain` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_drain_renew(drain: *const lp_drain, extra_ms: u64) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        unsafe { arg(drain, "drain") }?.inner.renew(millis(extra_ms))?;
        Ok(())
    })
}

/// Blocks until the drain is over or `timeout_ms` passes (`UINT64_MAX`: no limit).
///
/// Returns `LP_OK` (over), `LP_TIMED_OUT` or `LP_INVALID_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `drain` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_drain_wait(drain: *const lp_drain, timeout_ms: u64) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let drain = unsafe { arg(drain, "drain") }?;
        if timeout_ms == u64::MAX {
            drain.inner.wait();
            return Ok(());
        }
        if drain.inner.wait_timeout(millis(timeout_ms)) {
            Ok(())
        } else {
            Err(Failure::new(lp_status::LP_TIMED_OUT, format!("the drain was not over after {timeout_ms} ms")))
        }
    })
}
