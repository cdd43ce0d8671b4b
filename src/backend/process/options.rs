//! [`ProcessOptions`]: how worker processes are started, supervised and recycled.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::registry::Task;
use crate::error::ConfigError;

/// The shortest accepted [`ProcessOptions::ping_timeout`]: below it, a loaded machine would take
/// healthy workers for hung ones.
const MIN_PING_TIMEOUT: Duration = Duration::from_millis(1);
/// The longest accepted [`ProcessOptions::ping_timeout`]: an acquire that meets a hung worker
/// blocks this long.
const MAX_PING_TIMEOUT: Duration = Duration::from_secs(60);

/// Which program a process pool runs as its workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WorkerProgram {
    /// The running program itself (`std::env::current_exe()`), which must call
    /// [`run_if_worker`](crate::run_if_worker) at the top of `main`. The default.
    #[default]
    CurrentExe,
    /// A separate worker binary (which calls [`run_if_worker`](crate::run_if_worker) itself),
    /// with extra arguments. It must *be* the worker: the handshake checks that the process that
    /// connects is the one that was spawned, so a wrapper script has to `exec` the binary.
    Path {
        /// The binary.
        path: PathBuf,
        /// Arguments passed to it.
        args: Vec<OsString>,
    },
}

/// A registered initializer and its serialized arguments (see
/// [`ProcessOptions::initializer`]).
#[derive(Clone, PartialEq, Eq)]
pub struct InitializerCall {
    pub(crate) task: &'static str,
    pub(crate) args: Vec<u8>,
}

impl fmt::Debug for InitializerCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitializerCall").field("task", &self.task).field("args_len", &self.args.len()).finish()
    }
}

/// Options for the process backend's pools (the typed stand-in for Python's process
/// `executor_kwargs`).
///
/// ```
/// use std::time::Duration;
/// use leasepool::{ProcessOptions, Task};
///
/// fn init(greeting: String) -> Result<(), String> {
///     if greeting.is_empty() { Err("empty greeting".into()) } else { Ok(()) }
/// }
/// static INIT: Task<String, Result<(), String>> = Task::new("init", init);
///
/// let options = ProcessOptions::default()
///     .max_tasks_per_worker(1_000)
///     .env("RUST_BACKTRACE", "1")
///     .terminate_grace(Duration::from_millis(500))
///     .ping_timeout(Duration::from_millis(250))
///     .initializer(&INIT, &"hello".to_string())
///     .unwrap();
/// assert_eq!(options.max_tasks_per_worker, Some(1_000));
/// ```
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// The worker program (default: this program, re-executed).
    pub program: WorkerProgram,
    /// Extra environment variables for every worker (on top of the parent's environment).
    pub env: Vec<(OsString, OsString)>,
    /// The workers' working directory (default: the parent's).
    pub cwd: Option<PathBuf>,
    /// How long a worker may take to connect, handshake and run its initializer (default 30 s,
    /// > 0). A worker that is not ready by then is killed and its pool counts as broken.
    pub start_timeout: Duration,
    /// When a worker must stop while it runs a task (its lease was revoked, or the manager
    /// stopped), it gets `SIGTERM`, then `SIGKILL` after this grace (default 2 s; zero kills at
    /// once).
    pub terminate_grace: Duration,
    /// Replace a worker with a fresh process after it ran this many tasks (default: never; > 0).
    pub max_tasks_per_worker: Option<usize>,
    /// How long an idle worker may take to answer the liveness ping it gets when its pool is
    /// handed out (default 1 s; between 1 ms and 60 s). A worker that does not answer in time
    /// (stopped with `SIGSTOP`, or its request loop blocked by something a previous task left
    /// behind) is killed and its pool retired as broken; the acquire goes on with another pool.
    /// An answer normally takes tens of microseconds; this bounds the wait only when a worker is
    /// hung, so keep it well above the round trip on a loaded machine.
    pub ping_timeout: Duration,
    /// A registered task run once in every worker before it takes work.
    pub initializer: Option<InitializerCall>,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        ProcessOptions {
            program: WorkerProgram::CurrentExe,
            env: Vec::new(),
            cwd: None,
            start_timeout: Duration::from_secs(30),
            terminate_grace: Duration::from_secs(2),
            max_tasks_per_worker: None,
            ping_timeout: Duration::from_secs(1),
            initializer: None,
        }
    }
}

impl ProcessOptions {
    /// Runs workers from a separate binary instead of this program.
    #[must_use]
    pub fn program(mut self, path: impl Into<PathBuf>, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        self.program = WorkerProgram::Path { path: path.into(), args: args.into_iter().map(Into::into).collect() };
        self
    }

    /// Adds an environment variable for every worker.
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the workers' working directory.
    #[must_use]
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets [`start_timeout`](Self::start_timeout).
    #[must_use]
    pub fn start_timeout(mut self, d: Duration) -> Self {
        self.start_timeout = d;
        self
    }

    /// Sets [`terminate_grace`](Self::terminate_grace).
    #[must_use]
    pub fn terminate_grace(mut self, d: Duration) -> Self {
        self.terminate_grace = d;
        self
    }

    /// Sets [`ping_timeout`](Self::ping_timeout).
    #[must_use]
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.ping_timeout = d;
        self
    }

    /// Sets [`max_tasks_per_worker`](Self::max_tasks_per_worker).
    #[must_use]
    pub fn max_tasks_per_worker(mut self, n: usize) -> Self {
        self.max_tasks_per_worker = Some(n);
        self
    }

    /// Runs `task(args)` once in every worker before it takes work. The task must be registered
    /// in the worker's [`TaskRegistry`](crate::TaskRegistry); an `Err` or a panic makes the pool
    /// broken, and the reason is in the error that pool creation reports
    /// ([`StartError`](crate::StartError) or [`AcquireError::PoolBroken`](crate::AcquireError)).
    /// Records the initializer logs are forwarded when log forwarding is on.
    ///
    /// Fails if `args` cannot be serialized.
    pub fn initializer<A: Serialize + serde::de::DeserializeOwned>(
        mut self,
        task: &'static Task<A, Result<(), String>>,
        args: &A,
    ) -> Result<Self, ConfigError> {
        let args = task.encode_request(args).map_err(|message| ConfigError::InvalidInitializerArgs { message })?;
        self.initializer = Some(InitializerCall { task: task.name(), args });
        Ok(self)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.start_timeout.is_zero() {
            return Err(ConfigError::MustBePositive { field: "start_timeout (process backend)" });
        }
        if self.max_tasks_per_worker == Some(0) {
            return Err(ConfigError::MustBePositive { field: "max_tasks_per_worker" });
        }
        if self.ping_timeout.is_zero() {
            return Err(ConfigError::MustBePositive { field: "ping_timeout (process backend)" });
        }
        if !(MIN_PING_TIMEOUT..=MAX_PING_TIMEOUT).contains(&self.ping_timeout) {
            let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            return Err(ConfigError::OutOfRange {
                field: "ping_timeout (process backend), in milliseconds",
                value: millis(self.ping_timeout),
                min: millis(MIN_PING_TIMEOUT),
                max: millis(MAX_PING_TIMEOUT),
                why: "an acquire that meets a hung worker waits this long before it moves on",
            });
        }
        Ok(())
    }
}
