//! The manager builder, its validated configuration, and per-acquire options.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use log::LevelFilter;

use crate::backend::kind::ExecutorBackend;
use crate::backend::process::logs::ProcessLoggingConfig;
use crate::backend::process::options::ProcessOptions;
use crate::backend::process::registry::Task;
use crate::error::ConfigError;
use crate::interrupt::Interrupt;
use crate::sizer::SizeProvider;

/// The most pools a manager may own (`max_pools`): far above any real use, low enough that no
/// count derived from it can exhaust memory or threads by itself.
pub(crate) const MAX_POOLS_LIMIT: usize = 65_536;
/// The most worker threads (or processes) per pool.
pub(crate) const MAX_WORKERS_PER_POOL: usize = 1_024;
/// The smallest worker stack accepted (`thread_stack_size`). Smaller stacks overflow on ordinary
/// tasks (a 64 KiB local buffer aborted the process with the 25 KiB stacks that 0 gave).
pub(crate) const MIN_STACK_SIZE: usize = 256 * 1024;
/// The largest worker stack accepted (1 GiB).
pub(crate) const MAX_STACK_SIZE: usize = 1 << 30;

/// The default fairness bound (see `ManagerBuilder::fairness_bound`).
const DEFAULT_FAIRNESS_BOUND: Duration = Duration::from_micros(500);

/// A hook run once on every pool worker thread as it starts, with the worker's index.
pub type StartHook = Arc<dyn Fn(usize) + Send + Sync>;

/// Options for each thread pool (the thread backend's typed stand-in for Python's
/// `executor_kwargs`).
#[derive(Clone)]
pub struct ThreadPoolOptions {
    /// Stack size of each worker thread, in bytes. `None` keeps the platform default.
    pub stack_size: Option<usize>,
    /// Runs on each worker thread before it takes any work. A panic here makes the pool broken:
    /// it is retired before anyone can lease it.
    pub start_hook: Option<StartHook>,
    /// How long pool creation waits for every worker's start hook to finish. A pool whose hooks
    /// are not done by then is broken. Default 30 s.
    pub start_timeout: Duration,
}

impl Default for ThreadPoolOptions {
    fn default() -> Self {
        Self { stack_size: None, start_hook: None, start_timeout: Duration::from_secs(30) }
    }
}

impl fmt::Debug for ThreadPoolOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolOptions")
            .field("stack_size", &self.stack_size)
            .field("start_hook", &self.start_hook.as_ref().map(|_| "<fn>"))
            .field("start_timeout", &self.start_timeout)
            .finish()
    }
}

/// The validated configuration of a manager.
#[derive(Clone)]
pub(crate) struct Config {
    pub backend: ExecutorBackend,
    pub max_pools: usize,
    pub min_pools: usize,
    pub units_per_pool: usize,
    pub size_provider: Option<SizeProvider>,
    pub check_interval: Duration,
    pub default_lease: Duration,
    pub lease_grace: Duration,
    pub fairness_bound: Duration,
    pub workers_per_pool: usize,
    pub name_prefix: String,
    pub log_target: String,
    pub thread: ThreadPoolOptions,
    pub process: ProcessOptions,
    /// Resolved log forwarding (`None` when off).
    pub process_logging: Option<ProcessLoggingConfig>,
}

/// The builder's convenience form of log forwarding (see
/// [`ManagerBuilder::forward_process_logs`]).
#[derive(Debug, Clone, Default)]
struct LogShorthand {
    enabled: Option<bool>,
    level: Option<LevelFilter>,
    target: Option<String>,
}

impl LogShorthand {
    fn is_set(&self) -> bool {
        self.enabled.is_some() || self.level.is_some() || self.target.is_some()
    }
}

/// Builds a [`LeasedExecutorManager`](crate::LeasedExecutorManager). Every field but `max_pools` has the Python default.
///
/// ```
/// use std::time::Duration;
/// use leasepool::{ConfigError, LeasedExecutorManager};
///
/// let manager = LeasedExecutorManager::builder()
///     .max_pools(4)
///     .min_pools(1)
///     .workers_per_pool(2)
///     .default_lease(Duration::from_secs(30))
///     .build()
///     .unwrap();
/// assert_eq!(manager.total_count(), 0); // nothing is created before start()
///
/// let err = LeasedExecutorManager::builder().max_pools(1).min_pools(2).build().unwrap_err();
/// assert!(matches!(err, ConfigError::MinAboveMax { .. }));
/// ```
#[derive(Clone)]
#[must_use]
pub struct ManagerBuilder {
    backend: ExecutorBackend,
    max_pools: Option<usize>,
    min_pools: usize,
    units_per_pool: usize,
    size_provider: Option<SizeProvider>,
    check_interval: Duration,
    default_lease: Duration,
    lease_grace: Duration,
    fairness_bound: Duration,
    workers_per_pool: usize,
    name_prefix: String,
    log_target: String,
    thread: ThreadPoolOptions,
    process: ProcessOptions,
    process_logging: Option<ProcessLoggingConfig>,
    log_shorthand: LogShorthand,
    deferred: Option<ConfigError>,
    /// Process-only setters used (for the thread backend's `ProcessOnly` error and the
    /// `process_options` conflict check), in call order.
    process_setters: Vec<&'static str>,
    /// What `process_options(..)` gave; the individual setters' values (in `process`) are merged
    /// onto it at build time, so the order of calls never loses a setting.
    process_base: Option<ProcessOptions>,
}

impl Default for ManagerBuilder {
    fn default() -> Self {
        Self {
            backend: ExecutorBackend::Thread,
            max_pools: None,
            min_pools: 1,
            units_per_pool: 10,
            size_provider: None,
            check_interval: Duration::from_secs(120),
            default_lease: Duration::from_secs(300),
            lease_grace: Duration::from_secs(15),
            fairness_bound: DEFAULT_FAIRNESS_BOUND,
            workers_per_pool: 4,
            name_prefix: "leasepool".to_owned(),
            log_target: "leasepool".to_owned(),
            thread: ThreadPoolOptions::default(),
            process: ProcessOptions::default(),
            process_logging: None,
            log_shorthand: LogShorthand::default(),
            deferred: None,
            process_setters: Vec::new(),
            process_base: None,
        }
    }
}

impl ManagerBuilder {
    /// A builder with every default.
    pub fn new() -> Self {
        Self::default()
    }

    /// The backend (default [`ExecutorBackend::Thread`]).
    pub fn backend(mut self, backend: ExecutorBackend) -> Self {
        self.backend = backend;
        self
    }

    /// The hard cap on pools owned at once: idle, leased and draining (required, 1 to 65 536).
    pub fn max_pools(mut self, n: usize) -> Self {
        self.max_pools = Some(n);
        self
    }

    /// The floor of the desired pool count (default 1, > 0, ≤ `max_pools`).
    pub fn min_pools(mut self, n: usize) -> Self {
        self.min_pools = n;
        self
    }

    /// Units of load one pool should serve (default 10, > 0).
    pub fn units_per_pool(mut self, n: usize) -> Self {
        self.units_per_pool = n;
        self
    }

    /// The load signal for adaptive sizing:
    /// `desired = min(max_pools, max(min_pools, ceil(units / units_per_pool)))`.
    ///
    /// It is called on its own sampler thread (`{prefix}-sizer`), at every checker pass and for
    /// [`desired_executor_count`] and [`stats`], never while the manager's lock is held. A panic
    /// counts as 0 units and is logged. A provider that blocks or loops does not stall anything:
    /// callers wait at most 1 s for a sample, then use the last value it returned; expiry is
    /// enforced meanwhile; `stop` abandons (does not join) a sampler stuck in it, logs a warning,
    /// and `stop_graceful` then returns `false`.
    ///
    /// [`desired_executor_count`]: crate::LeasedExecutorManager::desired_executor_count
    /// [`stats`]: crate::LeasedExecutorManager::stats
    pub fn size_provider(mut self, f: impl Fn() -> usize + Send + Sync + 'static) -> Self {
        self.size_provider = Some(Arc::new(f));
        self
    }

    /// The longest the checker sleeps when nothing wakes it (default 120 s, > 0).
    pub fn check_interval(mut self, d: Duration) -> Self {
        self.check_interval = d;
        self
    }

    /// Soft lifetime of a lease when the acquire does not give one (default 300 s, > 0).
    pub fn default_lease(mut self, d: Duration) -> Self {
        self.default_lease = d;
        self
    }

    /// Time between soft and hard expiry (default 15 s; zero means no grace).
    pub fn lease_grace(mut self, d: Duration) -> Self {
        self.lease_grace = d;
        self
    }

    /// How long a queued acquire may be overtaken (default 500 µs; zero = strict FIFO).
    ///
    /// A pool that is freed while callers wait normally goes back to the idle set and wakes the
    /// first waiter; a caller that is already running may take it first, which saves an OS
    /// wake-up per lease under contention. Once the first waiter has waited this long, every
    /// freed pool is handed straight to it, and to the waiters behind it that waited as long,
    /// in arrival order, and no newcomer may take an idle pool before them. So no waiter is
    /// overtaken for longer than about this bound plus one hold of a pool. Zero hands every freed
    /// pool to the first waiter and never lets a newcomer overtake a waiter (strict FIFO, at
    /// the cost of one wake-up per hand-off).
    ///
    /// ```
    /// use std::time::Duration;
    /// use leasepool::LeasedExecutorManager;
    /// let strict = LeasedExecutorManager::builder().max_pools(2).fairness_bound(Duration::ZERO).build()?;
    /// # Ok::<(), leasepool::ConfigError>(())
    /// ```
    pub fn fairness_bound(mut self, bound: Duration) -> Self {
        self.fairness_bound = bound;
        self
    }

    /// Worker threads (or processes) per pool (default 4, 1 to 1 024; more is an
    /// [`ConfigError::OutOfRange`]: each worker is an OS thread or process).
    pub fn workers_per_pool(mut self, n: usize) -> Self {
        self.workers_per_pool = n;
        self
    }

    /// Prefix of thread names: workers are `{prefix}-{seq}_{i}`, the checker
    /// `{prefix}-checker`, builders `{prefix}-builder` (default `"leasepool"`; a NUL byte is an
    /// [`ConfigError::InvalidName`]).
    pub fn name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = prefix.into();
        self
    }

    /// The `log` target of every manager record (default `"leasepool"`).
    pub fn log_target(mut self, target: impl Into<String>) -> Self {
        self.log_target = target.into();
        self
    }

    /// All thread-pool options at once.
    pub fn thread_options(mut self, options: ThreadPoolOptions) -> Self {
        self.thread = options;
        self
    }

    /// Stack size of each worker thread, in bytes: 256 KiB to 1 GiB (outside that, `build`
    /// fails with [`ConfigError::OutOfRange`]; smaller stacks overflow on ordinary tasks).
    pub fn thread_stack_size(mut self, bytes: usize) -> Self {
        self.thread.stack_size = Some(bytes);
        self
    }

    /// A hook run on every worker thread as it starts (see [`ThreadPoolOptions::start_hook`]).
    pub fn on_worker_start(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.thread.start_hook = Some(Arc::new(hook));
        self
    }

    /// All process-pool options at once (process backend). The individual process setters
    /// (`max_tasks_per_worker`, `worker_env`, `worker_cwd`, `worker_initializer`) are merged onto
    /// it whatever the order of the calls: environment variables add up, and a field given both
    /// here and through its setter is a [`ConfigError::Conflicting`] naming it. A second call
    /// replaces the first.
    pub fn process_options(mut self, options: ProcessOptions) -> Self {
        self.process_base = Some(options);
        self
    }

    /// Replace each worker process after it ran `n` tasks (process backend; > 0).
    pub fn max_tasks_per_worker(mut self, n: usize) -> Self {
        self.process.max_tasks_per_worker = Some(n);
        self.process_setters.push("max_tasks_per_worker");
        self
    }

    /// An environment variable for every worker process (process backend).
    pub fn worker_env(mut self, key: impl Into<std::ffi::OsString>, value: impl Into<std::ffi::OsString>) -> Self {
        self.process.env.push((key.into(), value.into()));
        self.process_setters.push("worker_env");
        self
    }

    /// The working directory of worker processes (process backend).
    pub fn worker_cwd(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.process.cwd = Some(dir.into());
        self.process_setters.push("worker_cwd");
        self
    }

    /// Runs the registered `task(args)` once in every worker process before it takes work (see
    /// [`ProcessOptions::initializer`]). Arguments that cannot be serialized make `build` fail.
    pub fn worker_initializer<A: serde::Serialize + serde::de::DeserializeOwned>(
        mut self,
        task: &'static Task<A, Result<(), String>>,
        args: &A,
    ) -> Self {
        self.process_setters.push("worker_initializer");
        match std::mem::take(&mut self.process).initializer(task, args) {
            Ok(options) => self.process = options,
            Err(e) => self.deferred = Some(e),
        }
        self
    }

    /// Log forwarding from worker processes, in one value. Giving this *and* any of
    /// [`forward_process_logs`](Self::forward_process_logs),
    /// [`process_log_level`](Self::process_log_level) or
    /// [`process_log_target`](Self::process_log_target) is a [`ConfigError::Conflicting`];
    /// enabling it for a non-process backend is a [`ConfigError::ProcessOnly`].
    pub fn process_logging(mut self, config: ProcessLoggingConfig) -> Self {
        self.process_logging = Some(config);
        self
    }

    /// Convenience form: turn worker log forwarding on or off (default level `Info`, target the
    /// manager's log target).
    pub fn forward_process_logs(mut self, on: bool) -> Self {
        self.log_shorthand.enabled = Some(on);
        self
    }

    /// Convenience form: the most verbose level forwarded from workers (see
    /// [`ProcessLoggingConfig::parse_level`] to accept names).
    pub fn process_log_level(mut self, level: LevelFilter) -> Self {
        self.log_shorthand.level = Some(level);
        self
    }

    /// Convenience form: the parent-side target forwarded records are re-emitted on.
    pub fn process_log_target(mut self, target: impl Into<String>) -> Self {
        self.log_shorthand.target = Some(target.into());
        self
    }

    /// The validated configuration (see `ManagerBuilder::build` in `manager/`).
    pub(crate) fn validate(self) -> Result<Config, ConfigError> {
        let max_pools = self.max_pools.ok_or(ConfigError::Missing { field: "max_pools" })?;
        let positive_counts = [
            ("max_pools", max_pools),
            ("min_pools", self.min_pools),
            ("units_per_pool", self.units_per_pool),
            ("workers_per_pool", self.workers_per_pool),
        ];
        let positive_durations = [
            ("default_lease", self.default_lease),
            ("check_interval", self.check_interval),
            ("start_timeout (thread backend)", self.thread.start_timeout),
        ];
        for (field, n) in positive_counts {
            if n == 0 {
                return Err(ConfigError::MustBePositive { field });
            }
        }
        for (field, d) in positive_durations {
            if d.is_zero() {
                return Err(ConfigError::MustBePositive { field });
            }
        }
        let probe = crate::state::LeaseRequest { owner: None, duration: self.default_lease, grace: self.lease_grace };
        if !probe.deadline_fits(std::time::Instant::now()) {
            return Err(ConfigError::TooLarge { field: "default_lease + lease_grace" });
        }
        let counts = [
            ("max_pools", max_pools, 1, MAX_POOLS_LIMIT, "a manager owns at most this many pools"),
            ("min_pools", self.min_pools, 1, MAX_POOLS_LIMIT, "a manager owns at most this many pools"),
            (
                "workers_per_pool",
                self.workers_per_pool,
                1,
                MAX_WORKERS_PER_POOL,
                "each worker is an OS thread or process",
            ),
        ];
        for (field, value, min, max, why) in counts {
            if value > max {
                return Err(out_of_range(field, value, min, max, why));
            }
        }
        if let Some(size) = self.thread.stack_size {
            if !(MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&size) {
                let why = "bytes per worker stack; smaller stacks overflow on ordinary tasks";
                return Err(out_of_range("thread_stack_size", size, MIN_STACK_SIZE, MAX_STACK_SIZE, why));
            }
        }
        if self.name_prefix.contains('\0') {
            let why = "thread names cannot contain a NUL byte";
            return Err(ConfigError::InvalidName { field: "name_prefix", value: self.name_prefix, why });
        }
        let process = self.process_base.as_ref().unwrap_or(&self.process);
        let deadlines = [
            ("start_timeout (thread backend)", self.thread.start_timeout),
            ("start_timeout (process backend)", process.start_timeout),
            ("terminate_grace (process backend)", process.terminate_grace),
        ];
        for (field, d) in deadlines {
            if !fits_deadline(d) {
                return Err(ConfigError::TooLarge { field });
            }
        }
        if self.min_pools > max_pools {
            return Err(ConfigError::MinAboveMax { min_pools: self.min_pools, max_pools });
        }
        check_supported(self.backend)?;
        if let Some(e) = self.deferred {
            return Err(e);
        }
        if self.backend != ExecutorBackend::Process {
            let option = if self.process_base.is_some() {
                Some("process_options")
            } else {
                self.process_setters.first().copied()
            };
            if let Some(option) = option {
                return Err(ConfigError::ProcessOnly { option, backend: self.backend });
            }
        }
        let process = match self.process_base {
            Some(base) => merge_process_options(base, self.process)?,
            None => self.process,
        };
        process.validate()?;
        let process_logging = match (self.process_logging, self.log_shorthand) {
            (Some(_), shorthand) if shorthand.is_set() => {
                return Err(ConfigError::Conflicting(
                    "give process logging either as process_logging(..) or through forward_process_logs / \
                     process_log_level / process_log_target, not both",
                ))
            }
            (Some(config), _) => Some(config),
            (None, s) if s.is_set() => Some(ProcessLoggingConfig {
                enabled: s.enabled.unwrap_or(true),
                level: s.level.unwrap_or(LevelFilter::Info),
                target: s.target,
            }),
            (None, _) => None,
        }
        .filter(|c| c.enabled);
        if process_logging.is_some() && self.backend != ExecutorBackend::Process {
            return Err(ConfigError::ProcessOnly { option: "process log forwarding", backend: self.backend });
        }
        Ok(Config {
            backend: self.backend,
            max_pools,
            min_pools: self.min_pools,
            units_per_pool: self.units_per_pool,
            size_provider: self.size_provider,
            check_interval: self.check_interval,
            default_lease: self.default_lease,
            lease_grace: self.lease_grace,
            fairness_bound: self.fairness_bound,
            workers_per_pool: self.workers_per_pool,
            name_prefix: self.name_prefix,
            log_target: self.log_target,
            thread: self.thread,
            process,
            process_logging,
        })
    }
}

impl Config {
    /// `min(max_pools, max(min_pools, ceil(units / units_per_pool)))`, in integers.
    pub(crate) fn desired_for(&self, units: usize) -> usize {
        units.div_ceil(self.units_per_pool).clamp(self.min_pools, self.max_pools)
    }
}

/// Options for one acquire: owner label, lease duration, and how long to wait.
///
/// ```
/// use std::time::Duration;
/// use leasepool::AcquireOptions;
/// let opts = AcquireOptions::new()
///     .owner("nightly-report")
///     .lease_duration(Duration::from_secs(60))
///     .timeout(Duration::from_secs(2));
/// assert_eq!(opts.owner_label(), Some("nightly-report"));
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct AcquireOptions {
    pub(crate) owner: Option<Arc<str>>,
    pub(crate) lease_duration: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) interrupt: Option<Interrupt>,
}

impl AcquireOptions {
    /// No owner, the manager's default lease, wait without limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// A free-form label shown in logs and stats.
    pub fn owner(mut self, owner: impl Into<Arc<str>>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// The soft lifetime of this lease (> 0). Hard expiry adds the manager's grace.
    pub fn lease_duration(mut self, d: Duration) -> Self {
        self.lease_duration = Some(d);
        self
    }

    /// The longest [`acquire`](crate::LeasedExecutorManager::acquire) waits, measured from the call.
    /// Zero means "take a free pool now or time out". Ignored by `try_acquire`.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Lets another thread make this acquire give up while it waits (see [`Interrupt`]).
    pub fn interrupt(mut self, interrupt: Interrupt) -> Self {
        self.interrupt = Some(interrupt);
        self
    }

    /// The owner label, if any.
    pub fn owner_label(&self) -> Option<&str> {
        self.owner.as_deref()
    }
}

/// `base` (from `process_options`) with the individual setters' values on top.
fn merge_process_options(base: ProcessOptions, set: ProcessOptions) -> Result<ProcessOptions, ConfigError> {
    fn one<T>(base: Option<T>, set: Option<T>, what: &'static str) -> Result<Option<T>, ConfigError> {
        match (base, set) {
            (Some(_), Some(_)) => Err(ConfigError::Conflicting(what)),
            (base, set) => Ok(set.or(base)),
        }
    }
    let mut merged = base;
    merged.env.extend(set.env);
    merged.cwd =
        one(merged.cwd, set.cwd, "the worker directory is given both in process_options(..) and by worker_cwd(..)")?;
    merged.max_tasks_per_worker = one(
        merged.max_tasks_per_worker,
        set.max_tasks_per_worker,
        "max_tasks_per_worker is given both in process_options(..) and by max_tasks_per_worker(..)",
    )?;
    merged.initializer = one(
        merged.initializer,
        set.initializer,
        "the worker initializer is given both in process_options(..) and by worker_initializer(..)",
    )?;
    Ok(merged)
}

fn out_of_range(field: &'static str, value: usize, min: usize, max: usize, why: &'static str) -> ConfigError {
    let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    ConfigError::OutOfRange { field, value: wide(value), min: wide(min), max: wide(max), why }
}

/// Whether a deadline `d` from now (with a century to spare) is representable.
fn fits_deadline(d: Duration) -> bool {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    std::time::Instant::now().checked_add(d).and_then(|t| t.checked_add(CENTURY)).is_some()
}

/// `Ok` when this build can run `backend`, else the typed reason.
fn check_supported(backend: ExecutorBackend) -> Result<(), ConfigError> {
    let reason = match backend {
        ExecutorBackend::Thread => return Ok(()),
        ExecutorBackend::Process if cfg!(unix) => return Ok(()),
        ExecutorBackend::Process => "the process backend needs a Unix platform",
        ExecutorBackend::Interpreter => "Rust has no sub-interpreters; use the thread or process backend",
    };
    Err(ConfigError::UnsupportedBackend { backend, reason })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_setters_merge_onto_process_options_in_either_order() {
        let base = || ProcessOptions::default().terminate_grace(Duration::from_millis(100)).env("A", "1");
        let p = || ManagerBuilder::new().max_pools(1).backend(ExecutorBackend::Process);
        let before = p().worker_env("B", "2").max_tasks_per_worker(5).process_options(base()).validate().unwrap();
        let after = p().process_options(base()).worker_env("B", "2").max_tasks_per_worker(5).validate().unwrap();
        for config in [before, after] {
            let env: Vec<_> =
                config.process.env.iter().map(|(k, v)| (k.to_str().unwrap(), v.to_str().unwrap())).collect();
            assert_eq!(env, vec![("A", "1"), ("B", "2")]);
            assert_eq!(config.process.max_tasks_per_worker, Some(5));
            assert_eq!(config.process.terminate_grace, Duration::from_millis(100));
        }
    }
}
