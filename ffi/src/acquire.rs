//! `lp_acquire_options` (owner, timeout, lease duration, interrupt) and `lp_interrupt` (makes
//! blocked acquires give up).

use std::ffi::c_char;

use leasepool::{AcquireOptions, Interrupt};

use crate::guard::{arg, arg_str, free_handle, guard, into_handle, millis, Failure, Outcome};
use crate::lp_status;

/// Options of one acquire (opaque): owner label, wait timeout, lease duration, interrupt.
/// Create with `lp_acquire_options_new`, free with `lp_acquire_options_free`. Setters are not
/// thread-safe; a finished options object may be shared by any number of threads' acquires.
#[allow(non_camel_case_types)]
pub struct lp_acquire_options {
    pub(crate) inner: AcquireOptions,
}

/// An interrupt (opaque): firing it makes every acquire that uses it give up with
/// `LP_INTERRUPTED`, now or later. Thread-safe: fire it from any thread (a signal handler must
/// not: it allocates nothing, but takes a lock).
#[allow(non_camel_case_types)]
pub struct lp_interrupt {
    inner: Interrupt,
}

/// Applies `f` to the options.
///
/// # Safety
/// `options` is NULL or live and not used by another thread meanwhile.
unsafe fn update(options: *mut lp_acquire_options, f: impl FnOnce(AcquireOptions) -> AcquireOptions) -> Outcome {
    // SAFETY: the caller guarantees exclusive access to live options (or NULL).
    let options = unsafe { options.as_mut() }.ok_or_else(|| Failure::invalid("options is NULL"))?;
    options.inner = f(std::mem::take(&mut options.inner));
    Ok(())
}

/// New acquire options: no owner, wait as long as it takes, the manager's default lease
/// duration, no interrupt. Never NULL; free with `lp_acquire_options_free`.
#[no_mangle]
pub extern "C" fn lp_acquire_options_new() -> *mut lp_acquire_options {
    into_handle(lp_acquire_options { inner: AcquireOptions::new() })
}

/// Frees acquire options. NULL is a no-op.
///
/// # Safety
/// `options` is NULL or live, and not used again.
#[no_mangle]
pub unsafe extern "C" fn lp_acquire_options_free(options: *mut lp_acquire_options) {
    // SAFETY: forwarded caller guarantee.
    unsafe { free_handle(options) }
}

/// The owner label shown in stats and logs (UTF-8; copied).
///
/// Returns `LP_OK` or `LP_INVALID_ARGUMENT` (NULL, not UTF-8).
///
/// # Safety
/// `options` is NULL or live; `owner` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn lp_acquire_options_set_owner(
    options: *mut lp_acquire_options,
    owner: *const c_char,
) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let owner = unsafe { arg_str(owner, "owner") }?.to_owned();
        // SAFETY: forwarded caller guarantee.
        unsafe { update(options, |o| o.owner(owner)) }
    })
}

/// How long a blocking acquire waits for a pool, in milliseconds (0 = fail at once if none is
/// idle). Not set: wait as long as it takes.
///
/// Returns `LP_OK` or `LP_INVALID_ARGUMENT` (`options` NULL).
///
/// # Safety
/// `options` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_acquire_options_set_timeout_ms(
    options: *mut lp_acquire_options,
    timeout_ms: u64,
) -> lp_status {
    // SAFETY: forwarded caller guarantee.
    guard(|| unsafe { update(options, |o| o.timeout(millis(timeout_ms))) })
}

/// The lease's soft lifetime, in milliseconds (must be > 0; checked at acquire, which fails
/// with `LP_INVALID_ARGUMENT` otherwise).
///
/// Returns `LP_OK` or `LP_INVALID_ARGUMENT` (`options` NULL).
///
/// # Safety
/// `options` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_acquire_options_set_lease_ms(options: *mut lp_acquire_options, lease_ms: u64) -> lp_status {
    // SAFETY: forwarded caller guarantee.
    guard(|| unsafe { update(options, |o| o.lease_duration(millis(lease_ms))) })
}

/// Makes acquires with these options give up with `LP_INTERRUPTED` when `interrupt` is fired.
/// The options keep their own reference: `interrupt` may be freed afterwards.
///
/// Returns `LP_OK` or `LP_INVALID_ARGUMENT` (NULL).
///
/// # Safety
/// `options` is NULL or live; `interrupt` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_acquire_options_set_interrupt(
    options: *mut lp_acquire_options,
    interrupt: *const lp_interrupt,
) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let interrupt = unsafe { arg(interrupt, "interrupt") }?.inner.clone();
        // SAFETY: forwarded caller guarantee.
        unsafe { update(options, |o| o.interrupt(interrupt)) }
    })
}

/// A new, unfired interrupt. Never NULL; free with `lp_interrupt_free`.
#[no_mangle]
pub extern "C" fn lp_interrupt_new() -> *mut lp_interrupt {
    into_handle(lp_interrupt { inner: Interrupt::new() })
}

/// Fires the interrupt: every acquire using it, blocked now or started later, returns
/// `LP_INTERRUPTED` (an acquire that already holds a lease keeps it). Thread-safe.
///
/// Returns `LP_OK` or `LP_INVALID_ARGUMENT` (NULL).
///
/// # Safety
/// `interrupt` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_interrupt_fire(interrupt: *const lp_interrupt) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        unsafe { arg(interrupt, "interrupt") }?.inner.fire();
        Ok(())
    })
}

/// Whether the interrupt has been fired (false for NULL). Thread-safe.
///
/// # Safety
/// `interrupt` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_interrupt_is_fired(interrupt: *const lp_interrupt) -> bool {
    // SAFETY: forwarded caller guarantee.
    crate::guard::guard_value(false, || unsafe { interrupt.as_ref() }.is_some_and(|i| i.inner.is_fired()))
}

/// Frees an interrupt. NULL is a no-op. Options it was given to keep working.
///
/// # Safety
/// `interrupt` is NULL or live, and not used again.
#[no_mangle]
pub unsafe extern "C" fn lp_interrupt_free(interrupt: *mut lp_interrupt) {
    // SAFETY: forwarded caller guarantee.
    unsafe { free_handle(interrupt) }
}
