//! The process backend from C: byte-in/byte-out task functions registered by name in an
//! `lp_registry`, `lp_run_if_worker` (the worker side, first thing in `main`), `lp_submit_bytes`
//! (the parent side) and `lp_buffer` (bytes owned by this library).
//!
//! Every C task travels as one registered Rust task, [`BYTES`], whose input is the C task's
//! name and bytes: the worker looks the name up in the registry `lp_run_if_worker` was given.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::sync::{Arc, OnceLock};

use leasepool::{Task, TaskRegistry};
use serde::{Deserialize, Serialize};

use crate::callback::Userdata;
use crate::guard::{arg, arg_bytes, arg_str, free_handle, guard, into_handle, millis, out_ptr, Failure};
use crate::lease::lp_executor;
use crate::lp_status;
use crate::task::lp_task;

/// A byte buffer owned by this library: a task's output. Zero-initialise one (`lp_buffer buf =
/// {0};`) before passing it to be filled, read `data[0..len]`, and free it with
/// `lp_buffer_free`. Never free `data` yourself, never change the fields.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct lp_buffer {
    /// The bytes (NULL when empty).
    pub data: *mut u8,
    /// How many bytes `data` holds.
    pub len: usize,
    /// The allocation's size (for `lp_buffer_free`).
    pub capacity: usize,
}

impl lp_buffer {
    /// An empty buffer.
    pub(crate) fn empty() -> lp_buffer {
        lp_buffer { data: std::ptr::null_mut(), len: 0, capacity: 0 }
    }

    /// Whether it holds no allocation.
    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_null() && self.capacity == 0
    }

    /// Hands `bytes` over to C.
    pub(crate) fn from_vec(bytes: Vec<u8>) -> lp_buffer {
        if bytes.capacity() == 0 {
            return lp_buffer::empty();
        }
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        lp_buffer { data: bytes.as_mut_ptr(), len: bytes.len(), capacity: bytes.capacity() }
    }

    /// Takes the bytes back (leaving the buffer empty).
    ///
    /// # Safety
    /// The buffer is empty or was filled by [`from_vec`](Self::from_vec), and C did not change
    /// its fields.
    pub(crate) unsafe fn take_vec(&mut self) -> Vec<u8> {
        let buffer = std::mem::replace(self, lp_buffer::empty());
        if buffer.data.is_null() {
            return Vec::new();
        }
        // SAFETY: the fields are those of a Vec<u8> given up by `from_vec` (caller guarantee).
        unsafe { Vec::from_raw_parts(buffer.data, buffer.len, buffer.capacity) }
    }
}

/// A byte task, run in a worker process: read `input[0..input_len]`, append the result to
/// `*output` with `lp_buffer_write`, return 0 on success or any other value for failure (the
/// parent's `lp_task_wait` then returns `LP_TASK_FAILED`, with the value in the message).
/// `userdata` is the pointer given to `lp_registry_register` in the worker.
#[allow(non_camel_case_types)]
pub type lp_task_fn = Option<
    unsafe extern "C" fn(input: *const u8, input_len: usize, output: *mut lp_buffer, userdata: *mut c_void) -> c_int,
>;

/// Byte tasks by name (opaque). Build it with `lp_registry_new` and `lp_registry_register`,
/// hand it to `lp_run_if_worker`, free it with `lp_registry_free`. Not thread-safe while being
/// built.
#[allow(non_camel_case_types)]
pub struct lp_registry {
    tasks: HashMap<String, Entry>,
}

/// One registered C function.
struct Entry {
    f: unsafe extern "C" fn(*const u8, usize, *mut lp_buffer, *mut c_void) -> c_int,
    data: Arc<Userdata>,
}

impl Clone for Entry {
    fn clone(&self) -> Entry {
        Entry { f: self.f, data: Arc::clone(&self.data) }
    }
}

/// Why a byte task failed in the worker (what travels back besides the output bytes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ByteTaskFailure {
    /// No task of that name in the worker's registry.
    Unknown,
    /// The C function returned this non-zero value.
    Returned(i32),
}

/// What [`BYTES`] returns.
pub(crate) type ByteOutcome = Result<Vec<u8>, ByteTaskFailure>;

/// The one Rust task all C byte tasks travel through: `(name, input)` in.
static BYTES: Task<(String, Vec<u8>), ByteOutcome> = Task::new("leasepool-ffi/bytes", run_bytes);

/// The worker's registry, set by `lp_run_if_worker`.
static WORKER_TASKS: OnceLock<HashMap<String, Entry>> = OnceLock::new();

/// Runs a C byte task in the worker.
fn run_bytes((name, input): (String, Vec<u8>)) -> ByteOutcome {
    let entry = WORKER_TASKS.get().and_then(|tasks| tasks.get(&name)).ok_or(ByteTaskFailure::Unknown)?;
    let mut output = lp_buffer::empty();
    // SAFETY: `f` was registered for this userdata; input is a valid slice; output is a valid,
    // empty buffer that only `lp_buffer_write` changes.
    let code = unsafe { (entry.f)(input.as_ptr(), input.len(), &mut output, entry.data.ptr()) };
    // SAFETY: the buffer was filled only by this library (`lp_buffer_write`).
    let bytes = unsafe { output.take_vec() };
    if code == 0 {
        Ok(bytes)
    } else {
        Err(ByteTaskFailure::Returned(code))
    }
}

/// A new, empty registry. Never NULL.
#[no_mangle]
pub extern "C" fn lp_registry_new() -> *mut lp_registry {
    into_handle(lp_registry { tasks: HashMap::new() })
}

/// Frees a registry. NULL is a no-op. `lp_run_if_worker` keeps what it needs.
///
/// # Safety
/// `registry` is NULL or live, and not used again.
#[no_mangle]
pub unsafe extern "C" fn lp_registry_free(registry: *mut lp_registry) {
    // SAFETY: forwarded caller guarantee.
    unsafe { free_handle(registry) }
}

/// Registers `task` under `name` (UTF-8, copied) with `userdata`, which must stay valid for as
/// long as the worker runs (it is never freed by the library).
///
/// Returns `LP_OK`, or `LP_INVALID_ARGUMENT` (NULL, not UTF-8, or the name is taken).
///
/// # Safety
/// `registry` is NULL or live; `name` is NULL or a NUL-terminated string; `task` is NULL or a
/// valid function.
#[no_mangle]
pub unsafe extern "C" fn lp_registry_register(
    registry: *mut lp_registry,
    name: *const c_char,
    task: lp_task_fn,
    userdata: *mut c_void,
) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let registry = unsafe { registry.as_mut() }.ok_or_else(|| Failure::invalid("registry is NULL"))?;
        // SAFETY: forwarded caller guarantee.
        let name = unsafe { arg_str(name, "name") }?;
        let f = task.ok_or_else(|| Failure::invalid("task is NULL"))?;
        if registry.tasks.contains_key(name) {
            return Err(Failure::invalid(format!("a task named {name:?} is already registered")));
        }
        registry.tasks.insert(name.to_owned(), Entry { f, data: Arc::new(Userdata::new(userdata, None)) });
        Ok(())
    })
}

/// Call first thing in `main`, in every program that uses the process backend: in a worker
/// process (this program, re-executed by a process pool) it serves `registry`'s tasks and then
/// **exits the process** without returning; in the parent it returns `LP_OK` at once and does
/// nothing else.
///
/// Returns `LP_OK` (this is not a worker) or `LP_INVALID_ARGUMENT` (`registry` NULL).
///
/// # Safety
/// `registry` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn lp_run_if_worker(registry: *const lp_registry) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let registry = unsafe { arg(registry, "registry") }?;
        let tasks = registry.tasks.iter().map(|(name, entry)| (name.clone(), entry.clone())).collect();
        let _ = WORKER_TASKS.set(tasks);
        leasepool::run_if_worker(&TaskRegistry::new().register(&BYTES));
        Ok(())
    })
}

/// Queues the byte task `name` with `input[0..input_len]` (copied) on a worker process of the
/// leased pool (process backend) and returns its handle in `*out` at once. `timeout_ms` > 0
/// limits how long the task may run: past it the worker is killed and replaced and the task
/// resolves as `LP_TIMED_OUT`; 0 means no limit. Take the output with `lp_task_take_output`.
///
/// A worker that dies while running the task (`abort()`, a segfault) resolves it as
/// `LP_WORKER_CRASHED` and breaks its pool: the pool's other queued tasks resolve as
/// `LP_POOL_BROKEN`, the lease (`LP_LEASE_BROKEN`) refuses further work with `LP_POOL_BROKEN`,
/// and the manager retires the pool and builds a replacement: acquire a new lease. (A task past
/// its own timeout is different: only its worker is replaced, the lease carries on.)
///
/// Returns `LP_OK` and sets `*out`, or `*out` is NULL and: `LP_RELEASED`, `LP_EXPIRED`,
/// `LP_MANAGER_STOPPED`, `LP_POOL_BROKEN`, `LP_WRONG_BACKEND` (a thread pool: use
/// `lp_submit`), `LP_INVALID_ARGUMENT`. Thread-safe.
///
/// # Safety
/// `executor` is NULL or live; `name` is NULL or a NUL-terminated string; `input` is valid for
/// `input_len` bytes (or NULL when 0); `out` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn lp_submit_bytes(
    executor: *const lp_executor,
    name: *const c_char,
    input: *const u8,
    input_len: usize,
    timeout_ms: u64,
    out: *mut *mut lp_task,
) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let out = unsafe { out_ptr(out, "out") }?;
        // SAFETY: forwarded caller guarantee.
        let executor = unsafe { arg(executor, "executor") }?;
        // SAFETY: forwarded caller guarantee.
        let name = unsafe { arg_str(name, "name") }?.to_owned();
        // SAFETY: forwarded caller guarantee.
        let input = unsafe { arg_bytes(input, input_len, "input") }?.to_vec();
        let request = (name.clone(), input);
        let handle = if timeout_ms == 0 {
            executor.inner.submit_task(&BYTES, request)
        } else {
            executor.inner.submit_task_timeout(&BYTES, request, millis(timeout_ms))
        }?;
        *out = into_handle(lp_task::bytes(name, handle));
        Ok(())
    })
}

/// Appends `data[0..len]` to `buffer` (in a byte task: its output).
///
/// Returns `LP_OK` or `LP_INVALID_ARGUMENT` (`buffer` NULL, or `data` NULL with `len` > 0).
///
/// # Safety
/// `buffer` is NULL or an `lp_buffer` that is zeroed or was filled by this library; `data` is
/// valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn lp_buffer_write(buffer: *mut lp_buffer, data: *const u8, len: usize) -> lp_status {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        let buffer = unsafe { buffer.as_mut() }.ok_or_else(|| Failure::invalid("buffer is NULL"))?;
        // SAFETY: forwarded caller guarantee.
        let data = unsafe { arg_bytes(data, len, "data") }?;
        // SAFETY: the buffer is zeroed or ours (caller guarantee).
        let mut bytes = unsafe { buffer.take_vec() };
        bytes.extend_from_slice(data);
        *buffer = lp_buffer::from_vec(bytes);
        Ok(())
    })
}

/// Frees the bytes of a buffer this library filled and zeroes it (it can be filled again).
/// NULL, and a zeroed buffer, are no-ops.
///
/// # Safety
/// `buffer` is NULL or an `lp_buffer` that is zeroed or was filled by this library.
#[no_mangle]
pub unsafe extern "C" fn lp_buffer_free(buffer: *mut lp_buffer) {
    guard(|| {
        // SAFETY: forwarded caller guarantee.
        if let Some(buffer) = unsafe { buffer.as_mut() } {
            // SAFETY: the buffer is zeroed or ours (caller guarantee).
            drop(unsafe { buffer.take_vec() });
        }
        Ok(())
    });
}
