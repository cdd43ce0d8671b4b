//! Pool backends: what a "pool" is underneath a lease.
//!
//! Today only the thread backend exists ([`thread`]); the process backend will add a second
//! variant to [`Pool`]. The manager only ever needs the handful of operations on [`Pool`]:
//! spawn a job, shut down without waiting, join with a deadline.

use std::fmt;
use std::str::FromStr;

use crate::error::ConfigError;

pub(crate) mod thread;

pub(crate) use thread::Pool;

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
    /// Each pool is a set of worker processes. Not available yet in this release: selecting it
    /// is a [`ConfigError::UnsupportedBackend`].
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
            Self::Process => "the process backend is not implemented in this release yet",
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
