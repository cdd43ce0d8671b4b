//! `lp_config`: the manager's settings, set one by one and built into an `lp_manager` by
//! `lp_manager_new`. A setter records the value; range checks happen at `lp_manager_new`,
//! which returns the typed configuration status (`LP_CONFIG_*`).

use std::ffi::{c_char, c_void};
use std::str::FromStr;
use std::sync::Arc;

use leasepool::{ExecutorBackend, ManagerBuilder};

use crate::callback::{lp_callback, Userdata};
use crate::guard::{arg_str, free_handle, guard, into_handle, millis, Failure, Outcome};

/// Settings for a manager (opaque). Create with `lp_config_new`, free with `lp_config_free`.
/// Not thread-safe: use one config from one thread at a time. It can build any number of
/// managers.
#[allow(non_camel_case_types)]
pub struct lp_config {
    builder: ManagerBuilder,
}

/// A size signal for the checker: returns the current amount of work in "units" (the manager
/// wants `ceil(units / units_per_pool)` pools, clamped to `[min_pools, max_pools]`). Called on a
/// leasepool thread, never while a lock is held.
#[allow(non_camel_case_types)]
pub type lp_size_fn = Option<unsafe extern "C" fn(userdata: *mut c_void) -> usize>;

impl lp_config {
    /// The builder this config holds.
    pub(crate) fn builder(&self) -> &ManagerBuilder {
        &self.builder
    }
}

/// Applies `f` to the builder of `config`.
///
/// # Safety
/// `config` is NULL or a live `lp_config` not used by another thread meanwhile.
unsafe fn update(config: *mut lp_config, f: impl FnOnce(ManagerBuilder) -> Result<ManagerBuilder, Failure>) -> Outcome {
    // SAFETY: the caller guarantees exclusive access to a live config (or NULL).
    let config = unsafe { config.as_mut() }.ok_or_else(|| Failure::invalid("config is NULL"))?;
    config.builder = f(config.builder.clone())?;
    Ok(())
}

/// A new config with the defaults (thread backend, `max_pools` 4, `min_pools` 1,
/// `workers_per_pool` 4, ...: see each setter). Never NULL. Free it with `lp_config_free`.
#[no_mangle]
pub extern "C" fn lp_config_new() -> *mut lp_config {
    // The Rust builder has no default for `max_pools` (it must be chosen); the C API documents 4.
    into_handle(lp_config { builder: ManagerBuilder::new().max_pools(DEFAULT_MAX_POOLS) })
}

/// `max_pools` of a new `lp_config`.
const DEFAULT_MAX_POOLS: usize = 4;

/// Frees a config. NULL is a no-op. Managers built from it are unaffected.
///
/// # Safety
/// `config` is NULL or a live config, not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn lp_config_free(config: *mut lp_config) {
    // SAFETY: forwarded caller guarantee.
    unsafe { free_handle(config) }
}

/// Selects the backend by name: `"thread"`, `"process"` or `"interpreter"` (reserved:
/// `lp_manager_new` then fails with `LP_CONFIG_UNSUPPORTED_BACKEND`).
///
/// Returns `LP_OK`, `LP_INVALID_ARGUMENT` (NULL, not UTF-8) or `LP_CONFIG_UNSUPPORTED_BACKEND`
/// (an unknown name).
///
/// # Safety
/// `config` is NULL or a live config; `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn lp_config_set_backend(config: *mut lp_config, name: *const c_char) -> crate::lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let name = unsafe { arg_str(name, "name") }?;
        let backend = ExecutorBackend::from_str(name)?;
        // SAFETY: forwarded caller guarantee.
        unsafe { update(config, |b| Ok(b.backend(backend))) }
    })
}

/// The most pools the manager keeps (leased + idle). Default 4; 1 to 65 536.
///
/// Returns `LP_OK`, or `LP_INVALID_ARGUMENT` if `config` is NULL. The value is checked by
/// `lp_manager_new`.
///
/// # Safety
/// `config` is NULL or a live config not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn lp_config_set_max_pools(config: *mut lp_config, value: usize) -> crate::lp_status {
    // SAFETY: forwarded caller guarantee.
    guard(|| unsafe {
        update(config, |b| {
            let v = value;
            Ok(b.max_pools(v))
        })
    })
}

/// The fewest pools the checker keeps (and `lp_manager_start` creates). Default 1; 1 to
/// `max_pools`.
///
/// Returns `LP_OK`, or `LP_INVALID_ARGUMENT` if `config` is NULL. The value is checked by
/// `lp_manager_new`.
///
/// # Safety
/// `config` is NULL or a live config not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn lp_config_set_min_pools(config: *mut lp_config, value: usize) -> crate::lp_status {
    // SAFETY: forwarded caller guarantee.
    guard(|| unsafe {
        update(config, |b| {
            let v = value;
            Ok(b.min_pools(v))
        })
    })
}

/// Units of the size signal one pool is for. Default 10; must be > 0.
///
/// Returns `LP_OK`, or `LP_INVALID_ARGUMENT` if `config` is NULL. The value is checked by
/// `lp_manager_new`.
///
/// # Safety
/// `config` is NULL or a live config not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn lp_config_set_units_per_pool(config: *mut lp_config, value: usize) -> crate::lp_status {
    // SAFETY: forwarded caller guarantee.
    guard(|| unsafe {
        update(config, |b| {
            let v = value;
            Ok(b.units_per_pool(v))
        })
    })
}

/// Threads (or worker processes) per pool. Default 4; 1 to 1 024.
///
/// Returns `LP_OK`, or `LP_INVALID_ARGUMENT` if `config` is NULL. The value is checked by
/// `lp_manager_new`.
///
/// # Safety
/// `config` is NULL or a live config not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn lp_config_set_workers_per_pool(config: *mut lp_config, value: usize) -> crate::lp_status {
    // SAFETY: forwarded caller guarantee.
    guard(|| unsafe {
        update(config, |b| {
            let v = value;
            Ok(b.workers_per_pool(v))
        })
    })
}

/// How often the checker enforces expiry and resizes, in milliseconds. Must be > 0; default
/// 120 000.
///
/// Returns `LP_OK`, or `LP_INVALID_ARGUMENT` if `config` is NULL. The value is checked by
/// `lp_manager_new`.
///
/// # Safety
/// `config` is NULL or a live config not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn lp_config_set_check_interval_ms(config: *mut lp_config, value: u64) -> crate::lp_status {
    // SAFETY: forwarded caller guarantee.
    guard(|| unsafe {
        update(config, |b| {
            let v = value;
            Ok(b.check_interval(millis(v)))
        })
    })
}

/// A lease's soft lifetime when the acquire does not set one, in milliseconds. Must be > 0;
/// default 300 000.
///
/// Returns `LP_OK`, or `LP_INVALID_ARGUMENT` if `config` is NULL. The value is checked by
/// `lp_manager_new`.
///
/// # Safety
/// `config` is NULL or a live config not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn lp_config_set_default_lease_ms(config: *mut lp_config, value: u64) -> crate::lp_status {
    // SAFETY: forwarded caller guarantee.
    guard(|| unsafe {
        update(config, |b| {
            let v = value;
            Ok(b.default_lease(millis(v)))
        })
    })
}

/// The grace period between soft and hard expiry, in milliseconds. Default 15 000.
///
/// Returns `LP_OK`, or `LP_INVALID_ARGUMENT` if `config` is NULL. The value is checked by
/// `lp_manager_new`.
///
/// # Safety
/// `config` is NULL or a live config not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn lp_config_set_lease_grace_ms(config: *mut lp_config, value: u64) -> crate::lp_status {
    // SAFETY: forwarded caller guarantee.
    guard(|| unsafe {
        update(config, |b| {
            let v = value;
            Ok(b.lease_grace(millis(v)))
        })
    })
}

/// How long a waiting acquire may be overtaken by newcomers before freed pools go to it
/// first, in microseconds (default 500; 0 = strict first-come first-served).
///
/// Returns `LP_OK`, or `LP_INVALID_ARGUMENT` if `config` is NULL. The value is checked by
/// `lp_manager_new`.
///
/// # Safety
/// `config` is NULL or a live config not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn lp_config_set_fairness_bound_us(config: *mut lp_config, value: u64) -> crate::lp_status {
    // SAFETY: forwarded caller guarantee.
    guard(|| unsafe {
        update(config, |b| {
            let v = value;
            Ok(b.fairness_bound(std::time::Duration::from_micros(v)))
        })
    })
}

/// Stack size of a thread pool's threads, in bytes (256 KiB to 1 GiB). Thread backend only.
///
/// Returns `LP_OK`, or `LP_INVALID_ARGUMENT` if `config` is NULL. The value is checked by
/// `lp_manager_new`.
///
/// # Safety
/// `config` is NULL or a live config not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn lp_config_set_thread_stack_size(config: *mut lp_config, value: usize) -> crate::lp_status {
    // SAFETY: forwarded caller guarantee.
    guard(|| unsafe {
        update(config, |b| {
            let v = value;
            Ok(b.thread_stack_size(v))
        })
    })
}

/// Process backend: tasks a worker runs before it is replaced. Default: never replaced; 0 changes
/// nothing (a value set before stays).
///
/// Returns `LP_OK`, or `LP_INVALID_ARGUMENT` if `config` is NULL. The value is checked by
/// `lp_manager_new`.
///
/// # Safety
/// `config` is NULL or a live config not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn lp_config_set_max_tasks_per_worker(config: *mut lp_config, value: usize) -> crate::lp_status {
    // SAFETY: forwarded caller guarantee.
    guard(|| unsafe {
        update(config, |b| {
            let v = value;
            Ok(if v == 0 { b } else { b.max_tasks_per_worker(v) })
        })
    })
}

/// Process backend: whether workers' `log` records reach this process's logger.
///
/// Returns `LP_OK`, or `LP_INVALID_ARGUMENT` if `config` is NULL. The value is checked by
/// `lp_manager_new`.
///
/// # Safety
/// `config` is NULL or a live config not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn lp_config_set_forward_process_logs(config: *mut lp_config, value: bool) -> crate::lp_status {
    // SAFETY: forwarded caller guarantee.
    guard(|| unsafe {
        update(config, |b| {
            let v = value;
            Ok(b.forward_process_logs(v))
        })
    })
}

/// The prefix of the manager's thread names (and its log target's suffix). UTF-8, no NUL.
///
/// Returns `LP_OK` or `LP_INVALID_ARGUMENT` (NULL, not UTF-8).
///
/// # Safety
/// `config` is NULL or a live config; `prefix` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn lp_config_set_name_prefix(config: *mut lp_config, prefix: *const c_char) -> crate::lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let prefix = unsafe { arg_str(prefix, "prefix") }?.to_owned();
        // SAFETY: forwarded caller guarantee.
        unsafe { update(config, |b| Ok(b.name_prefix(prefix))) }
    })
}

/// Sets the size signal: `size(userdata)` is sampled by the checker (on its own thread, never
/// under a lock; if it takes longer than about a second, the last value is used). `userdata`
/// must be usable from any thread. `drop_userdata` (may be NULL) runs exactly once, when the
/// config and every manager built from it have been freed, or at once if this call fails.
///
/// Returns `LP_OK` or `LP_INVALID_ARGUMENT` (`config` or `size` NULL).
///
/// # Safety
/// `config` is NULL or a live config; `size` and `drop_userdata` are NULL or valid functions.
#[no_mangle]
pub unsafe extern "C" fn lp_config_set_size_provider(
    config: *mut lp_config,
    size: lp_size_fn,
    userdata: *mut c_void,
    drop_userdata: lp_callback,
) -> crate::lp_status {
    let data = Arc::new(Userdata::new(userdata, drop_userdata));
    guard(|| {
        let size = size.ok_or_else(|| Failure::invalid("size is NULL"))?;
        let provider = move || {
            // SAFETY: the caller gave `size` for this userdata, callable from any thread.
            unsafe { size(data.ptr()) }
        };
        // SAFETY: forwarded caller guarantee.
        unsafe { update(config, |b| Ok(b.size_provider(provider))) }
    })
}
