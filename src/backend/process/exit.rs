//! [`WorkerExit`]: how a worker process ended.

use std::fmt;
use std::process::ExitStatus;

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WorkerExit {
    /// It exited with this status code.
    Code(i32),
    /// It was killed by this signal (6 = SIGABRT, 9 = SIGKILL, ...).
    Signal(i32),
    /// The status could not be read.
    Unknown,
}

impl fmt::Display for WorkerExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerExit::Code(c) => write!(f, "exit code {c}"),
            WorkerExit::Signal(s) => {
                let name = match s {
                    6 => " (SIGABRT)",
                    9 => " (SIGKILL)",
                    11 => " (SIGSEGV)",
                    15 => " (SIGTERM)",
                    _ => "",
                };
                write!(f, "killed by signal {s}{name}")
            }
            WorkerExit::Unknown => f.write_str("unknown exit status"),
        }
    }
}

/// The [`WorkerExit`] of a reaped process.
pub(crate) fn exit_of(status: ExitStatus) -> WorkerExit {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return WorkerExit::Signal(signal);
        }
    }
    status.code().map_or(WorkerExit::Unknown, WorkerExit::Code)
}
