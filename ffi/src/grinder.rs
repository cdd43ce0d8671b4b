//! `lp_grinder`: a WorkGrinder over a manager, from C: many small jobs batched into leased
//! batches, flushed on a size threshold or a maximum wait.

use std::ffi::c_void;

use leasepool::{GrinderStats, LeasedExecutorManager, StopMode, WorkGrinder};

use crate::callback::{lp_callback, CJob, Userdata};
use crate::guard::{arg, free_handle, guard, into_handle, millis, out_ptr, Failure};
use crate::lp_status;
use crate::manager::lp_manager;
use crate::task::lp_task;

/// A WorkGrinder (opaque). Thread-safe: enqueue from any number of threads. Free it with
/// `lp_grinder_free` (which stops it, cancelling queued jobs, if it is still running).
#[allow(non_camel_case_types)]
pub struct lp_grinder {
    inner: WorkGrinder<LeasedExecutorManager>,
}

/// A grinder's settings. Start from `lp_grinder_options_default()`; a field left 0 takes the
/// default shown.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct lp_grinder_options {
    /// Flush a batch once this many jobs are pending (default 20).
    pub batch_size_threshold: usize,
    /// Flush a batch once its oldest job has waited this long, in milliseconds (default 10 000).
    pub max_wait_ms: u64,
    /// Each batch's lease duration, in milliseconds (default 60 000).
    pub lease_ms: u64,
    /// Jobs pending at most before `lp_grinder_enqueue` returns `LP_GRINDER_FULL` (default:
    /// unbounded).
    pub intake_capacity: usize,
    /// Batches running at once, each on its own lease (default 1).
    pub max_concurrent_batches: usize,
}

/// How `lp_grinder_stop` treats jobs that have not run.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lp_stop_mode {
    /// Run every queued job and deliver its result; with a deadline, cancel what has not
    /// finished by then.
    LP_STOP_DRAIN = 0,
    /// Resolve queued jobs as `LP_CANCELLED` at once; running jobs finish in the background.
    LP_STOP_CANCEL = 1,
}

/// A grinder's counters and state (filled by `lp_grinder_stats`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct lp_grinder_stats {
    /// Whether it is started.
    pub started: bool,
    /// Whether a stop is in progress.
    pub stopping: bool,
    /// Jobs waiting for a batch.
    pub pending: usize,
    /// Batches running now.
    pub running_batches: usize,
    /// Batches run so far.
    pub batches_run: u64,
    /// Jobs that ran to completion.
    pub jobs_completed: u64,
    /// Jobs that panicked.
    pub jobs_panicked: u64,
    /// Jobs resolved as cancelled.
    pub jobs_cancelled: u64,
    /// Jobs that failed otherwise (their batch got no lease, the pool broke, ...).
    pub jobs_failed: u64,
    /// Enqueues refused (not started, stopping, intake full).
    pub jobs_rejected: u64,
}

impl From<&GrinderStats> for lp_grinder_stats {
    fn from(s: &GrinderStats) -> lp_grinder_stats {
        let c = &s.counters;
        lp_grinder_stats {
            started: s.started,
            stopping: s.stopping,
            pending: s.pending,
            running_batches: s.running_batches,
            batches_run: c.batches_run,
            jobs_completed: c.jobs_completed,
            jobs_panicked: c.jobs_panicked,
            jobs_cancelled: c.jobs_cancelled,
            jobs_failed: c.jobs_failed,
            jobs_rejected: c.jobs_rejected,
        }
    }
}

/// All fields 0: every setting at its default.
#[no_mangle]
pub extern "C" fn lp_grinder_options_default() -> lp_grinder_options {
    lp_grinder_options::default()
}

/// A grinder that leases batches from `manager` (it keeps its own handle on it). `options` may
/// be NULL (all defaults). Not started: call `lp_grinder_start`.
///
/// Returns `LP_OK` and sets `*out`, or `LP_INVALID_ARGUMENT` (NULL) or a configuration status.
///
/// # Safety
/// `manager` is NULL or live; `options` is NULL or valid for reads; `out` is NULL or valid for
/// writes.
#[no_mangle]
pub unsafe extern "C" fn lp_grinder_new(
    manager: *const lp_manager,
    options: *const lp_grinder_options,
    out: *mut *mut lp_grinder,
) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let out = unsafe { out_ptr(out, "out") }?;
        // SAFETY: forwarded caller guarantee.
        let manager = unsafe { arg(manager, "manager") }?.inner.clone();
        // SAFETY: forwarded caller guarantee (NULL means defaults).
        let o = unsafe { options.as_ref() }.copied().unwrap_or_default();
        let mut builder = WorkGrinder::builder(manager);
        if o.batch_size_threshold != 0 {
            builder = builder.batch_size_threshold(o.batch_size_threshold);
        }
        if o.max_wait_ms != 0 {
            builder = builder.max_wait(millis(o.max_wait_ms));
        }
        if o.lease_ms != 0 {
            builder = builder.lease_duration(millis(o.lease_ms));
        }
        if o.intake_capacity != 0 {
            builder = builder.intake_capacity(o.intake_capacity);
        }
        if o.max_concurrent_batches != 0 {
            builder = builder.max_concurrent_batches(o.max_concurrent_batches);
        }
        *out = into_handle(lp_grinder { inner: builder.build()? });
        Ok(())
    })
}

/// The grinder behind a handle.
///
/// # Safety
/// `grinder` is NULL or live for 'a.
unsafe fn get<'a>(grinder: *const lp_grinder) -> Result<&'a WorkGrinder<LeasedExecutorManager>, Failure> {
    // SAFETY: forwarded caller guarantee.
    Ok(&unsafe { arg(grinder, "grinder") }?.inner)
}

/// Starts the batching thread. Starting a started grinder does nothing.
///
/// Returns `LP_OK`, `LP_INVALID_ARGUMENT`, or `LP_START_FAILED` if the thread could not be
/// spawned.
///
/// # Safety
/// `grinder` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_grinder_start(grinder: *const lp_grinder) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        unsafe { get(grinder) }?
            .start()
            .map_err(|e| Failure::new(lp_status::LP_START_FAILED, format!("could not start the grinder's thread: {e}")))
    })
}

/// Enqueues `job(userdata)`; it runs in a batch on a leased pool. Same `userdata` guarantee as
/// `lp_submit`: `drop_userdata` (may be NULL) runs exactly once, after the job ran, when it is
/// resolved without running, or before this returns if it fails.
///
/// Returns `LP_OK` and sets `*out` (free with `lp_task_free`), or `*out` is NULL and:
/// `LP_GRINDER_NOT_STARTED`, `LP_GRINDER_STOPPING`, `LP_GRINDER_FULL`, `LP_GRINDER_CRASHED`,
/// `LP_INVALID_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `grinder` is NULL or live; `job` and `drop_userdata` are NULL or valid functions callable
/// from any thread; `out` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn lp_grinder_enqueue(
    grinder: *const lp_grinder,
    job: lp_callback,
    userdata: *mut c_void,
    drop_userdata: lp_callback,
    out: *mut *mut lp_task,
) -> lp_status {
    let data = Userdata::new(userdata, drop_userdata);
    guard(move || {
        // SAFETY: forwarded caller guarantee.
        let out = unsafe { out_ptr(out, "out") }?;
        // SAFETY: forwarded caller guarantee.
        let grinder = unsafe { get(grinder) }?;
        let job = CJob::new(job.ok_or_else(|| Failure::invalid("job is NULL"))?, data);
        let dropper = job.dropper();
        let handle = grinder.enqueue(move || job.run())?;
        *out = into_handle(lp_task::unit(handle, dropper));
        Ok(())
    })
}

/// Stops the grinder and waits for it. `mode` is an `lp_stop_mode`: `LP_STOP_DRAIN` runs
/// every queued job, for at most `deadline_ms` (`UINT64_MAX`: no limit) after which the rest
/// are cancelled; `LP_STOP_CANCEL` cancels queued jobs at once (`deadline_ms` is ignored). Every
/// job's task resolves. The grinder can be started again.
///
/// Returns `LP_OK` or `LP_INVALID_ARGUMENT` (NULL, or `mode` not an `lp_stop_mode`).
///
/// # Safety
/// `grinder` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_grinder_stop(grinder: *const lp_grinder, mode: u32, deadline_ms: u64) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let grinder = unsafe { get(grinder) }?;
        let mode = match mode {
            m if m == lp_stop_mode::LP_STOP_DRAIN as u32 => {
                StopMode::Drain { deadline: (deadline_ms != u64::MAX).then(|| millis(deadline_ms)) }
            }
            m if m == lp_stop_mode::LP_STOP_CANCEL as u32 => StopMode::Cancel,
            other => return Err(Failure::invalid(format!("mode {other} is not an lp_stop_mode"))),
        };
        grinder.stop(mode);
        Ok(())
    })
}

/// The grinder's counters and state, in `*stats`.
///
/// Returns `LP_OK` or `LP_INVALID_ARGUMENT`.
///
/// # Safety
/// `grinder` is NULL or live; `stats` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn lp_grinder_get_stats(grinder: *const lp_grinder, stats: *mut lp_grinder_stats) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let grinder = unsafe { get(grinder) }?;
        // SAFETY: forwarded caller guarantee.
        let stats = unsafe { stats.as_mut() }.ok_or_else(|| Failure::invalid("stats is NULL"))?;
        *stats = (&grinder.stats()).into();
        Ok(())
    })
}

/// Stops the grinder if it runs (cancelling queued jobs) and frees it. NULL is a no-op.
///
/// # Safety
/// `grinder` is NULL or live, and not used again.
#[no_mangle]
pub unsafe extern "C" fn lp_grinder_free(grinder: *mut lp_grinder) {
    // SAFETY: forwarded caller guarantee.
    unsafe { free_handle(grinder) }
}
