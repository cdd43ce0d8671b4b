//! Pool backends: what a "pool" is underneath a lease.
//!
//! Two backends, one enum: [`Pool::Thread`] (a rayon pool, [`thread`]) and [`Pool::Process`]
//! (worker processes, [`process`]). The manager only needs the handful of operations below:
//! shut down without waiting, join with a deadline, a health check, worker ids for stats. What
//! a lease submits differs (closures vs registered tasks), so leases match on the variant.

use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use crate::config::Config;
use crate::error::ConfigError;
use crate::state::RetireReason;

pub(crate) mod process;
pub(crate) mod thread;

pub use process::WorkerExit;

/// One pool, of either backend.
pub(crate) enum Pool {
    Thread(thread::Pool),
    Process(process::Pool),
}

impl Pool {
    /// Builds a pool for `config`'s backend. `on_broken` is called when a process pool breaks
    /// after creation (a worker died).
    pub(crate) fn create(config: &Config, seq: u64, on_broken: process::BrokenHook) -> Result<Pool, String> {
        match config.backend {
            ExecutorBackend::Process => {
                let spec = process::Spec {
                    name_prefix: config.name_prefix.clone(),
                    workers: config.workers_per_pool,
                    log_target: config.log_target.clone(),
                    options: config.process.clone(),
                    logging: config.process_logging.clone(),
                };
                process::Pool::create(spec, seq, on_broken).map(Pool::Process)
            }
            _ => thread::Pool::create(config, seq).map(Pool::Thread),
        }
    }

    /// The pool's sequence number.
    pub(crate) fn seq(&self) -> u64 {
        match self {
            Pool::Thread(p) => p.seq(),
            Pool::Process(p) => p.seq(),
        }
    }

    /// How many tasks the pool runs at once (threads or worker processes).
    pub(crate) fn workers(&self) -> usize {
        match self {
            Pool::Thread(p) => p.threads(),
            Pool::Process(p) => p.workers(),
        }
    }

    /// Worker process ids (empty for thread pools).
    pub(crate) fn pids(&self) -> Vec<u32> {
        match self {
            Pool::Thread(_) => Vec::new(),
            Pool::Process(p) => p.pids(),
        }
    }

    /// Whether the pool can take work. Thread pools are verified when built and cannot break;
    /// a process pool is unhealthy once any worker died.
    pub(crate) fn is_healthy(&self) -> bool {
        match self {
            Pool::Thread(_) => true,
            Pool::Process(p) => p.is_healthy(),
        }
    }

    /// Why the pool broke, if it knows.
    pub(crate) fn broken_reason(&self) -> Option<String> {
        match self {
            Pool::Thread(_) => None,
            Pool::Process(p) => p.broken_reason(),
        }
    }

    /// Stops taking work without blocking. Process pools terminate busy workers when the pool
    /// leaves because its lease expired or the manager stopped.
    pub(crate) fn shutdown(&self, reason: RetireReason) {
        match self {
            Pool::Thread(p) => p.shutdown(),
            Pool::Process(p) => p.shutdown(match reason {
                RetireReason::Expired | RetireReason::Stopped => process::Shutdown::Kill,
                RetireReason::Broken | RetireReason::Shrink => process::Shutdown::Graceful,
            }),
        }
    }

    /// Waits (until `deadline`) for every thread or worker process of a shut-down pool to end.
    pub(crate) fn join(&self, deadline: Instant) -> bool {
        match self {
            Pool::Thread(p) => p.join(deadline),
            Pool::Process(p) => p.join(deadline),
        }
    }

    /// Whether every thread or worker process has ended.
    pub(crate) fn finished(&self) -> bool {
        match self {
            Pool::Thread(p) => p.threads_finished(),
            Pool::Process(p) => p.finished(),
        }
    }
}

/// Which kind of pool a manager hands out.
///
/// Parses case-insensitively from `"thread"`, `"process"` or `"interpreter"`:
///
/// ```
/// use leasepool::ExecutorBackend;
/// assert_eq!("Thread".parse::<ExecutorBackend>().unwrap(), ExecutorBackend::Thread);
/// let err = "zzz".parse::<ExecutorBackend>().unwrap_err();
/// assert!(err.to_string().contains("thread, process, interpreter"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExecutorBackend {
    /// Each pool is a rayon thread pool of `workers_per_pool` threads.
    #[default]
    Thread,
    /// Each pool is `workers_per_pool` worker processes running registered
    /// [`Task`](crate::Task)s (Unix only).
    Process,
    /// Reserved for parity with Python's sub-interpreter pools. Rust has no sub-interpreters, so
    /// selecting it is always a [`ConfigError::UnsupportedBackend`].
    Interpreter,
}

impl ExecutorBackend {
    /// Every backend, in the order their names are listed in errors.
    pub const ALL: [ExecutorBackend; 3] = [Self::Thread, Self::Process, Self::Interpreter];

    /// The lower-case name: `"thread"`, `"process"` or `"interpreter"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Thread => "thread",
            Self::Process => "process",
            Self::Interpreter => "interpreter",
        }
    }

    /// `Ok` when this build can run the backend, else the typed reason.
    pub(crate) fn check_supported(self) -> Result<(), ConfigError> {
        let reason = match self {
            Self::Thread => return Ok(()),
            Self::Process if cfg!(unix) => return Ok(()),
            Self::Process => "the process backend needs a Unix platform",
            Self::Interpreter => "Rust has no sub-interpreters; use the thread or process backend",
        };
        Err(ConfigError::UnsupportedBackend { backend: self, reason })
    }
}

impl fmt::Display for ExecutorBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutorBackend {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|b| b.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ConfigError::UnknownBackend { name: s.to_owned() })
    }
}
