//! `lp_task`: the handle of one submitted task (a C callback on a thread pool, a byte task on a
//! process pool, or a grinder job): wait, poll, cancel, be called back, take the output.

use std::ffi::c_void;
use std::time::Duration;

use leasepool::{TaskError, TaskHandle};
use parking_lot::Mutex;

use crate::callback::{lp_callback, Dropper, Userdata};
use crate::guard::{arg, free_handle, guard, guard_value, millis, Failure, Outcome};
use crate::lp_status;
use crate::process::{lp_buffer, ByteOutcome, ByteTaskFailure};
use crate::status::Status;

/// A submitted task (opaque). Every task resolves: ran (`LP_OK`), failed (`LP_TASK_FAILED`,
/// `LP_WORKER_CRASHED`, `LP_REVOKED`, ...), or never ran (`LP_CANCELLED`, `LP_POOL_BROKEN`).
/// Thread-safe: any number of threads may wait on, poll or cancel one task. Free it with
/// `lp_task_free`, which does not cancel the task.
#[allow(non_camel_case_types)]
pub struct lp_task {
    kind: Kind,
    /// The outcome, once taken out of the handle.
    outcome: Mutex<Option<Result<Vec<u8>, Failure>>>,
    /// A callback task's userdata, when it has a `drop_userdata`: dropped when the task resolves
    /// (if it never ran), so that its `drop_userdata` has run by then (see [`Dropper`]).
    userdata: Option<Dropper>,
}

/// The handle, by what the task returns.
enum Kind {
    /// A C callback: no value.
    Unit(TaskHandle<()>),
    /// A byte task: bytes, or the C function's failure.
    Bytes { name: String, handle: TaskHandle<ByteOutcome> },
}

impl lp_task {
    /// A C callback's task. With a `dropper`, the userdata of a task that never runs
    /// (`lp_task_cancel`, revocation, stop) is dropped as soon as the task is seen resolved (see
    /// `settle_userdata`), when the handle is freed ([`hand_over_userdata`](Self::hand_over_userdata)),
    /// or when a pool worker discards the queued job, whichever comes first. Nothing is
    /// registered on the task at submit: a completion callback per task would cost the round
    /// trip about a third (`ffi/benches/roundtrip.rs`).
    pub(crate) fn unit(handle: TaskHandle<()>, dropper: Option<Dropper>) -> lp_task {
        lp_task { kind: Kind::Unit(handle), outcome: Mutex::new(None), userdata: dropper }
    }

    /// A byte task's task.
    pub(crate) fn bytes(name: String, handle: TaskHandle<ByteOutcome>) -> lp_task {
        lp_task { kind: Kind::Bytes { name, handle }, outcome: Mutex::new(None), userdata: None }
    }

    /// Once the task is seen resolved: its userdata is dropped if it has not been. The completion
    /// callback does it too, but runs after waiters wake: this way a caller that sees the task
    /// resolved also sees its `drop_userdata` done.
    /// The handle goes away: drop the userdata now if the task has resolved, else when it
    /// resolves (a completion callback; registering it also makes revocation and stop resolve a
    /// queued task at once).
    fn hand_over_userdata(&self) {
        if let Some(dropper) = &self.userdata {
            if self.is_finished() {
                dropper.drop_now();
            } else {
                let dropper = dropper.clone();
                self.on_complete(move || dropper.drop_now());
            }
        }
    }

    fn settle_userdata(&self) {
        if let Some(dropper) = &self.userdata {
            dropper.drop_now();
        }
    }

    fn wait_finished(&self, timeout: Option<Duration>) -> bool {
        match &self.kind {
            Kind::Unit(h) => h.wait_finished(timeout),
            Kind::Bytes { handle, .. } => handle.wait_finished(timeout),
        }
    }

    fn is_finished(&self) -> bool {
        let finished = match &self.kind {
            Kind::Unit(h) => h.is_finished(),
            Kind::Bytes { handle, .. } => handle.is_finished(),
        };
        if finished {
            self.settle_userdata();
        }
        finished
    }

    fn cancel(&self) -> bool {
        let cancelled = match &self.kind {
            Kind::Unit(h) => h.cancel(),
            Kind::Bytes { handle, .. } => handle.cancel(),
        };
        if cancelled {
            self.settle_userdata();
        }
        cancelled
    }

    fn on_complete(&self, f: impl FnOnce() + Send + 'static) {
        match &self.kind {
            Kind::Unit(h) => h.on_complete(f),
            Kind::Bytes { handle, .. } => handle.on_complete(f),
        }
    }

    /// Runs `f` on the outcome once the task has resolved (`None` before).
    fn with_outcome<R>(&self, f: impl FnOnce(&mut Result<Vec<u8>, Failure>) -> R) -> Option<R> {
        let mut outcome = self.outcome.lock();
        if outcome.is_none() {
            *outcome = match &self.kind {
                Kind::Unit(h) => h.try_take().map(|r| r.map(|()| Vec::new()).map_err(Failure::from)),
                Kind::Bytes { name, handle } => handle.try_take().map(|r| byte_outcome(name, r)),
            };
        }
        let result = outcome.as_mut().map(f);
        drop(outcome);
        if result.is_some() {
            // With no lock held: `drop_userdata` is the caller's code.
            self.settle_userdata();
        }
        result
    }

    /// The task's status once resolved (its message recorded on failure).
    fn status(&self) -> Outcome {
        match self.with_outcome(|o| o.as_ref().map(|_| ()).map_err(|f| Failure::new(f.status, &f.message))) {
            Some(result) => result,
            None => Err(Failure::new(lp_status::LP_NOT_FINISHED, "the task has not finished yet")),
        }
    }
}

impl Drop for lp_task {
    /// `lp_task_free`: a userdata still held is dropped now or when the task resolves.
    fn drop(&mut self) {
        self.hand_over_userdata();
    }
}

/// A byte task's outcome as the C API reports it.
fn byte_outcome(name: &str, result: Result<ByteOutcome, TaskError>) -> Result<Vec<u8>, Failure> {
    match result {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(ByteTaskFailure::Returned(code))) => {
            Err(Failure::new(lp_status::LP_TASK_FAILED, format!("task {name:?} returned {code}")))
        }
        Ok(Err(ByteTaskFailure::Unknown)) => Err(Failure::new(
            lp_status::LP_UNKNOWN_TASK,
            format!("no task named {name:?} is registered in the worker (lp_registry_register, then lp_run_if_worker)"),
        )),
        Err(e) => Err(Failure::new(e.status(), e)),
    }
}

/// Blocks until the task resolves and returns its status: `LP_OK` (it ran), or `LP_CANCELLED`,
/// `LP_POOL_BROKEN` (it never ran), `LP_TASK_FAILED`, `LP_UNKNOWN_TASK`, `LP_WORKER_CRASHED`,
/// `LP_REVOKED`, `LP_TIMED_OUT` (a byte task's own timeout), `LP_TASK_PANICKED`, or
/// `LP_INVALID_ARGUMENT` (NULL). Waiting again returns the same status. Thread-safe.
///
/// Do not wait for a task from a task running on the same pool (if every worker waits, nothing
/// runs what they wait for).
///
/// # Safety
/// `task` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_task_wait(task: *const lp_task) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let task = unsafe { arg(task, "task") }?;
        task.wait_finished(None);
        task.status()
    })
}

/// Like `lp_task_wait`, but gives up after `timeout_ms` and then returns `LP_NOT_FINISHED`
/// (the task goes on; wait again, poll or cancel it).
///
/// # Safety
/// `task` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_task_wait_timeout(task: *const lp_task, timeout_ms: u64) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let task = unsafe { arg(task, "task") }?;
        if !task.wait_finished(Some(millis(timeout_ms))) {
            return Err(Failure::new(
                lp_status::LP_NOT_FINISHED,
                format!("the task was still running after {timeout_ms} ms"),
            ));
        }
        task.status()
    })
}

/// Whether the task has resolved (false for NULL). Never blocks.
///
/// # Safety
/// `task` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_task_is_finished(task: *const lp_task) -> bool {
    // SAFETY: forwarded caller guarantee.
    guard_value(false, || unsafe { task.as_ref() }.is_some_and(|t| t.is_finished()))
}

/// Cancels the task if it has not started: it never runs, resolves as `LP_CANCELLED`, and its
/// `drop_userdata` runs (on this thread). Returns whether the cancellation took effect (false
/// once it is running or resolved, and for NULL).
///
/// # Safety
/// `task` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_task_cancel(task: *const lp_task) -> bool {
    // SAFETY: forwarded caller guarantee.
    guard_value(false, || unsafe { task.as_ref() }.is_some_and(|t| t.cancel()))
}

/// Calls `callback(userdata)` exactly once when the task resolves, however it resolves: on the
/// thread that resolves it (a pool thread, a reader thread of a process pool, the thread that
/// cancels it or stops the manager), or before this returns if it already has. Then
/// `lp_task_wait` returns at once. Meant for event-loop hosts: write to an eventfd or pipe,
/// post to the loop; keep it short, and do not stop the task's manager from it. The callback
/// still runs if the task handle is freed first. May be called several times (each runs once,
/// in order).
///
/// Returns `LP_OK` or `LP_INVALID_ARGUMENT` (`task` or `callback` NULL).
///
/// # Safety
/// `task` is NULL or live; `callback` is NULL or a function safe to call from any thread with
/// `userdata`.
#[no_mangle]
pub unsafe extern "C" fn lp_task_on_complete(
    task: *const lp_task,
    callback: lp_callback,
    userdata: *mut c_void,
) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let task = unsafe { arg(task, "task") }?;
        let callback = callback.ok_or_else(|| Failure::invalid("callback is NULL"))?;
        let data = Userdata::new(userdata, None);
        task.on_complete(move || {
            // SAFETY: the caller gave this function for this userdata, callable from any thread.
            unsafe { callback(data.ptr()) }
        });
        Ok(())
    })
}

/// Moves a finished byte task's output into `*output` (which must be empty: zeroed, or freed
/// with `lp_buffer_free`); free it with `lp_buffer_free`. A second call gives an empty buffer.
/// For a callback task the output is empty.
///
/// Returns `LP_OK`; `LP_NOT_FINISHED` if the task has not resolved; the task's own failure
/// status if it failed; `LP_INVALID_ARGUMENT` (NULL, or `*output` not empty).
///
/// # Safety
/// `task` is NULL or live; `output` is NULL or points to an `lp_buffer` that is zeroed or was
/// filled by this library.
#[no_mangle]
pub unsafe extern "C" fn lp_task_take_output(task: *const lp_task, output: *mut lp_buffer) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let task = unsafe { arg(task, "task") }?;
        // SAFETY: forwarded caller guarantee.
        let output = unsafe { output.as_mut() }.ok_or_else(|| Failure::invalid("output is NULL"))?;
        if !output.is_empty() {
            return Err(Failure::invalid("output is not empty: zero it or lp_buffer_free it first"));
        }
        let taken = task.with_outcome(|o| match o {
            Ok(bytes) => Ok(std::mem::take(bytes)),
            Err(f) => Err(Failure::new(f.status, &f.message)),
        });
        match taken {
            Some(Ok(bytes)) => {
                *output = lp_buffer::from_vec(bytes);
                Ok(())
            }
            Some(Err(failure)) => Err(failure),
            None => Err(Failure::new(lp_status::LP_NOT_FINISHED, "the task has not finished yet")),
        }
    })
}

/// Frees a task handle. NULL is a no-op. Does not cancel the task: it still runs, its
/// `drop_userdata` and completion callbacks still run.
///
/// # Safety
/// `task` is NULL or live, and not used again.
#[no_mangle]
pub unsafe extern "C" fn lp_task_free(task: *mut lp_task) {
    // SAFETY: forwarded caller guarantee.
    unsafe { free_handle(task) }
}
