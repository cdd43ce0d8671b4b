//! [`ExecutorBackend`]: which kind of pool a manager hands out (a leaf: plain data).

use std::fmt;

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
    /// selecting it is always a [`ConfigError::UnsupportedBackend`](crate::ConfigError::UnsupportedBackend).
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
}

impl fmt::Display for ExecutorBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
