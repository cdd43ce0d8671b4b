//! `lp_status`: the one status code every fallible entry point returns, and the mapping from
//! each typed error of the Rust API onto it.

use std::ffi::c_char;

use leasepool::{AcquireError, ConfigError, GrinderError, LeaseError, StartError, TaskError};

/// The outcome of a call. `LP_OK` is 0; every other value names what went wrong, and
/// `lp_last_error_message()` then holds the full message on the calling thread.
///
/// Values are stable: new codes may be added in a minor version, existing ones never change
/// meaning or number.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lp_status {
    /// Success.
    LP_OK = 0,
    /// A NULL pointer where a value is required, a string that is not UTF-8, an enum value
    /// out of range, or an operation that does not apply (see the message).
    LP_INVALID_ARGUMENT = 1,
    /// A panic inside the library was caught at the boundary (a bug in leasepool: please
    /// report it with the message). The call did nothing further.
    LP_PANIC = 2,

    /// The manager is not running (never started, stopping or stopped).
    LP_NOT_RUNNING = 10,
    /// Fail-fast acquire: all `max_pools` pools are leased.
    LP_UNAVAILABLE = 11,
    /// Fail-fast acquire: no idle pool, but one is being started in the background (fewer than
    /// `max_pools` exist); ask again shortly.
    LP_STARTING = 12,
    /// A timeout passed: an acquire, a task wait, a drain wait, a graceful stop, or a process
    /// task's own timeout (its worker was killed and replaced).
    LP_TIMED_OUT = 13,
    /// An acquire was interrupted through its `lp_interrupt`.
    LP_INTERRUPTED = 14,
    /// A pool could not be created, or the task did not run because its pool broke.
    LP_POOL_BROKEN = 15,
    /// `lp_manager_start` could not create the initial pools (or `lp_grinder_start` its
    /// thread).
    LP_START_FAILED = 16,

    /// The lease was revoked at hard expiry: it accepts no more work.
    LP_EXPIRED = 20,
    /// The lease was released: it accepts no more work.
    LP_RELEASED = 21,
    /// The task was running in a worker process when its lease was revoked; the worker was
    /// terminated.
    LP_REVOKED = 22,
    /// The lease ended because its manager was stopped.
    LP_MANAGER_STOPPED = 23,
    /// The work does not fit the lease's backend (a callback on a process pool, a byte task on
    /// a thread pool).
    LP_WRONG_BACKEND = 24,

    /// The task was cancelled before it started (by `lp_task_cancel`, revocation, stop or a
    /// cancelling grinder stop); it never ran.
    LP_CANCELLED = 30,
    /// The task panicked (Rust glue) or failed unexpectedly in the worker; see the message.
    LP_TASK_PANICKED = 31,
    /// The worker process running the task died (a C task that called `abort()` or crashed);
    /// its pool is broken (its lease refuses further work) and the manager replaces it.
    LP_WORKER_CRASHED = 32,
    /// A byte task returned a non-zero code; the message carries it.
    LP_TASK_FAILED = 33,
    /// No task of that name is registered in the worker.
    LP_UNKNOWN_TASK = 34,
    /// The task has not finished yet (`lp_task_take_output` before the task resolved).
    LP_NOT_FINISHED = 35,

    /// The WorkGrinder is not started.
    LP_GRINDER_NOT_STARTED = 40,
    /// The WorkGrinder is stopping.
    LP_GRINDER_STOPPING = 41,
    /// The WorkGrinder's intake is full.
    LP_GRINDER_FULL = 42,
    /// The WorkGrinder's batching thread failed; stop and restart it.
    LP_GRINDER_CRASHED = 43,

    /// Configuration: a value outside its allowed range (`max_pools`, `workers_per_pool`,
    /// `thread_stack_size`, a duration too large to be a deadline, ...).
    LP_CONFIG_OUT_OF_RANGE = 50,
    /// Configuration: a value that must be > 0 is 0.
    LP_CONFIG_MUST_BE_POSITIVE = 51,
    /// Configuration: `min_pools` is greater than `max_pools`.
    LP_CONFIG_MIN_ABOVE_MAX = 52,
    /// Configuration: a name is invalid (for example a NUL byte in `name_prefix`).
    LP_CONFIG_INVALID_NAME = 53,
    /// Configuration: the backend is unknown or unsupported here (the interpreter backend, or
    /// the process backend off Unix).
    LP_CONFIG_UNSUPPORTED_BACKEND = 54,
    /// Configuration: an option that needs the process backend was set on another backend.
    LP_CONFIG_PROCESS_ONLY = 55,
    /// Configuration: two settings conflict, or another configuration error (see the message).
    LP_CONFIG_INVALID = 56,

    /// `lp_set_logger`: a logger is already installed in this process.
    LP_LOGGER_ALREADY_SET = 60,
}

impl lp_status {
    /// The variant's name as a static C string.
    pub(crate) fn name(self) -> &'static [u8] {
        use lp_status::*;
        match self {
            LP_OK => b"LP_OK\0",
            LP_INVALID_ARGUMENT => b"LP_INVALID_ARGUMENT\0",
            LP_PANIC => b"LP_PANIC\0",
            LP_NOT_RUNNING => b"LP_NOT_RUNNING\0",
            LP_UNAVAILABLE => b"LP_UNAVAILABLE\0",
            LP_STARTING => b"LP_STARTING\0",
            LP_TIMED_OUT => b"LP_TIMED_OUT\0",
            LP_INTERRUPTED => b"LP_INTERRUPTED\0",
            LP_POOL_BROKEN => b"LP_POOL_BROKEN\0",
            LP_START_FAILED => b"LP_START_FAILED\0",
            LP_EXPIRED => b"LP_EXPIRED\0",
            LP_RELEASED => b"LP_RELEASED\0",
            LP_REVOKED => b"LP_REVOKED\0",
            LP_MANAGER_STOPPED => b"LP_MANAGER_STOPPED\0",
            LP_WRONG_BACKEND => b"LP_WRONG_BACKEND\0",
            LP_CANCELLED => b"LP_CANCELLED\0",
            LP_TASK_PANICKED => b"LP_TASK_PANICKED\0",
            LP_WORKER_CRASHED => b"LP_WORKER_CRASHED\0",
            LP_TASK_FAILED => b"LP_TASK_FAILED\0",
            LP_UNKNOWN_TASK => b"LP_UNKNOWN_TASK\0",
            LP_NOT_FINISHED => b"LP_NOT_FINISHED\0",
            LP_GRINDER_NOT_STARTED => b"LP_GRINDER_NOT_STARTED\0",
            LP_GRINDER_STOPPING => b"LP_GRINDER_STOPPING\0",
            LP_GRINDER_FULL => b"LP_GRINDER_FULL\0",
            LP_GRINDER_CRASHED => b"LP_GRINDER_CRASHED\0",
            LP_CONFIG_OUT_OF_RANGE => b"LP_CONFIG_OUT_OF_RANGE\0",
            LP_CONFIG_MUST_BE_POSITIVE => b"LP_CONFIG_MUST_BE_POSITIVE\0",
            LP_CONFIG_MIN_ABOVE_MAX => b"LP_CONFIG_MIN_ABOVE_MAX\0",
            LP_CONFIG_INVALID_NAME => b"LP_CONFIG_INVALID_NAME\0",
            LP_CONFIG_UNSUPPORTED_BACKEND => b"LP_CONFIG_UNSUPPORTED_BACKEND\0",
            LP_CONFIG_PROCESS_ONLY => b"LP_CONFIG_PROCESS_ONLY\0",
            LP_CONFIG_INVALID => b"LP_CONFIG_INVALID\0",
            LP_LOGGER_ALREADY_SET => b"LP_LOGGER_ALREADY_SET\0",
        }
    }
}

/// The name of a status code (`"LP_TIMED_OUT"`), or `"LP_UNKNOWN_STATUS"` for a value that is
/// not one. The string is static: never free it. Thread-safe.
#[no_mangle]
pub extern "C" fn lp_status_name(status: u32) -> *const c_char {
    let name: &'static [u8] = match from_u32(status) {
        Some(status) => status.name(),
        None => b"LP_UNKNOWN_STATUS\0",
    };
    name.as_ptr().cast()
}

/// The status with this number, if there is one.
fn from_u32(n: u32) -> Option<lp_status> {
    use lp_status::*;
    const ALL: [lp_status; 33] = [
        LP_OK,
        LP_INVALID_ARGUMENT,
        LP_PANIC,
        LP_NOT_RUNNING,
        LP_UNAVAILABLE,
        LP_STARTING,
        LP_TIMED_OUT,
        LP_INTERRUPTED,
        LP_POOL_BROKEN,
        LP_START_FAILED,
        LP_EXPIRED,
        LP_RELEASED,
        LP_REVOKED,
        LP_MANAGER_STOPPED,
        LP_WRONG_BACKEND,
        LP_CANCELLED,
        LP_TASK_PANICKED,
        LP_WORKER_CRASHED,
        LP_TASK_FAILED,
        LP_UNKNOWN_TASK,
        LP_NOT_FINISHED,
        LP_GRINDER_NOT_STARTED,
        LP_GRINDER_STOPPING,
        LP_GRINDER_FULL,
        LP_GRINDER_CRASHED,
        LP_CONFIG_OUT_OF_RANGE,
        LP_CONFIG_MUST_BE_POSITIVE,
        LP_CONFIG_MIN_ABOVE_MAX,
        LP_CONFIG_INVALID_NAME,
        LP_CONFIG_UNSUPPORTED_BACKEND,
        LP_CONFIG_PROCESS_ONLY,
        LP_CONFIG_INVALID,
        LP_LOGGER_ALREADY_SET,
    ];
    ALL.into_iter().find(|s| *s as u32 == n)
}

/// Maps a typed error of the Rust API onto its status code.
pub(crate) trait Status {
    /// The code for this error.
    fn status(&self) -> lp_status;

    /// The configuration field it is about (`lp_last_error_field`).
    fn field(&self) -> Option<&'static str> {
        None
    }
}

impl Status for ConfigError {
    fn status(&self) -> lp_status {
        use lp_status::*;
        match self {
            ConfigError::OutOfRange { .. } | ConfigError::TooLarge { .. } => LP_CONFIG_OUT_OF_RANGE,
            ConfigError::MustBePositive { .. } => LP_CONFIG_MUST_BE_POSITIVE,
            ConfigError::MinAboveMax { .. } => LP_CONFIG_MIN_ABOVE_MAX,
            ConfigError::InvalidName { .. } => LP_CONFIG_INVALID_NAME,
            ConfigError::UnknownBackend { .. } | ConfigError::UnsupportedBackend { .. } => {
                LP_CONFIG_UNSUPPORTED_BACKEND
            }
            ConfigError::ProcessOnly { .. } => LP_CONFIG_PROCESS_ONLY,
            _ => LP_CONFIG_INVALID,
        }
    }

    fn field(&self) -> Option<&'static str> {
        Some(match self {
            ConfigError::Missing { field }
            | ConfigError::MustBePositive { field }
            | ConfigError::TooLarge { field }
            | ConfigError::OutOfRange { field, .. }
            | ConfigError::InvalidName { field, .. } => *field,
            ConfigError::MinAboveMax { .. } => "min_pools",
            ConfigError::UnknownBackend { .. } | ConfigError::UnsupportedBackend { .. } => "backend",
            ConfigError::InvalidLogLevel { .. } => "process_log_level",
            ConfigError::ProcessOnly { option, .. } => option,
            _ => return None,
        })
    }
}

impl Status for StartError {
    fn status(&self) -> lp_status {
        lp_status::LP_START_FAILED
    }
}

impl Status for AcquireError {
    fn status(&self) -> lp_status {
        use lp_status::*;
        match self {
            AcquireError::NotRunning => LP_NOT_RUNNING,
            AcquireError::Unavailable { .. } => LP_UNAVAILABLE,
            AcquireError::Starting { .. } => LP_STARTING,
            AcquireError::TimedOut { .. } => LP_TIMED_OUT,
            AcquireError::Interrupted => LP_INTERRUPTED,
            AcquireError::PoolBroken { .. } => LP_POOL_BROKEN,
            AcquireError::InvalidLeaseDuration { .. } => LP_INVALID_ARGUMENT,
            _ => LP_INVALID_ARGUMENT,
        }
    }
}

impl Status for LeaseError {
    fn status(&self) -> lp_status {
        use lp_status::*;
        match self {
            LeaseError::Released { .. } => LP_RELEASED,
            LeaseError::Expired { .. } => LP_EXPIRED,
            LeaseError::PoolBroken { .. } => LP_POOL_BROKEN,
            LeaseError::ManagerStopped { .. } => LP_MANAGER_STOPPED,
            LeaseError::WrongBackend { .. } => LP_WRONG_BACKEND,
            _ => LP_INVALID_ARGUMENT,
        }
    }
}

impl Status for GrinderError {
    fn status(&self) -> lp_status {
        use lp_status::*;
        match self {
            GrinderError::NotStarted => LP_GRINDER_NOT_STARTED,
            GrinderError::Stopping => LP_GRINDER_STOPPING,
            GrinderError::IntakeFull { .. } => LP_GRINDER_FULL,
            _ => LP_GRINDER_CRASHED,
        }
    }
}

impl Status for TaskError {
    fn status(&self) -> lp_status {
        use lp_status::*;
        match self {
            TaskError::Panicked { .. } => LP_TASK_PANICKED,
            TaskError::Cancelled => LP_CANCELLED,
            TaskError::PoolBroken { .. } => LP_POOL_BROKEN,
            TaskError::WorkerCrashed { .. } => LP_WORKER_CRASHED,
            TaskError::Revoked { .. } => LP_REVOKED,
            TaskError::TimedOut { .. } => LP_TIMED_OUT,
            TaskError::UnknownTask { .. } => LP_UNKNOWN_TASK,
            TaskError::WrongBackend { .. } => LP_WRONG_BACKEND,
            TaskError::Rejected(e) => e.status(),
            TaskError::LeaseUnavailable(e) => e.status(),
            TaskError::Refused(e) => e.status(),
            // TypeMismatch, InvalidInput/Output, Source: the two sides disagree; in the C API
            // only a mismatched build of the worker program can cause them.
            _ => LP_TASK_PANICKED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_its_name_and_number() {
        for n in 0..100u32 {
            if let Some(status) = from_u32(n) {
                let name = std::str::from_utf8(status.name()).unwrap();
                assert!(name.ends_with('\0') && name.starts_with("LP_"), "{name}");
                assert_eq!(format!("{status:?}\0"), name);
            }
        }
        // One per variant: the array and the enum agree.
        assert_eq!((0..100u32).filter_map(from_u32).count(), 33);
    }
}
