//! [`WorkGrinder`]: collects many small jobs from any thread and runs them in batches, each batch
//! under one lease.
//!
//! A batch is formed when the pending jobs reach `batch_size_threshold`, when the oldest has
//! waited `max_wait`, or when the grinder is stopping; it takes *all* pending jobs (so batches can
//! be larger than the threshold). Batches run one at a time unless `max_concurrent_batches` says
//! otherwise (each concurrent batch holds its own lease). Every job gets its own outcome.

//!
//! This file holds the public API ([`WorkGrinder`] and its builder); the rest lives in one file
//! per concept. Imports run one way, top to bottom:
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | [`WorkGrinder`], [`GrinderBuilder`], re-exports |
//! | `batcher.rs` | the batching thread: when a batch is due, taking it, running it |
//! | `batch.rs` | running one batch: lease, submit, wait (renewing), release |
//! | `shared.rs` | `GrinderShared`: the state every thread of a grinder shares |
//! | `control.rs` | `RunControl`: what a cancelling stop fires for one run |
//! | `source.rs` | [`LeaseSource`], [`BatchLease`], [`BatchJob`] and the manager's implementation |
//! | `batch_queue.rs` | `BatchQueue`: a running batch's queued jobs and latch |
//! | `latch.rs` | `Latch`: counts a batch's jobs down |
//! | `config.rs` | `GrinderConfig`: the settings and their defaults |
//! | `stats.rs` | [`GrinderStats`], [`GrinderCounters`] |
//! | `stop_mode.rs` | [`StopMode`] |

mod batch;
mod batch_queue;
mod batcher;
mod config;
mod control;
mod latch;
mod shared;
mod source;
mod stats;
mod stop_mode;

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{ConfigError, GrinderError, TaskError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::backend::process::{decode, Task};
use crate::task::{job_pair, remote_job_pair, PendingJob, TaskHandle, TaskOwner};

use batcher::batching_thread;
use config::GrinderConfig;
use control::RunControl;
use shared::{cancel_items, GrinderShared, Item, Phase};

pub use source::{BatchJob, BatchLease, LeaseSource};
pub use stats::{GrinderCounters, GrinderStats};
pub use stop_mode::StopMode;

/// Builds a [`WorkGrinder`].
///
/// ```
/// use std::time::Duration;
/// use leasepool::{LeasedExecutorManager, WorkGrinder};
///
/// let manager = LeasedExecutorManager::builder().max_pools(2).build()?;
/// let grinder = WorkGrinder::builder(manager)
///     .batch_size_threshold(100)
///     .max_wait(Duration::from_millis(20))
///     .build()?;
/// assert!(WorkGrinder::builder(LeasedExecutorManager::builder().max_pools(1).build()?)
///     .batch_size_threshold(0)
///     .build()
///     .is_err());
/// # drop(grinder);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct GrinderBuilder<S> {
    source: S,
    config: GrinderConfig,
}

impl<S: LeaseSource> GrinderBuilder<S> {
    /// Pending jobs that trigger a batch at once (default 20, > 0).
    pub fn batch_size_threshold(mut self, n: usize) -> Self {
        self.config.batch_size_threshold = n;
        self
    }

    /// The longest the oldest pending job waits before a batch is formed (default 10 s, > 0).
    pub fn max_wait(mut self, d: Duration) -> Self {
        self.config.max_wait = d;
        self
    }

    /// The lease duration requested for each batch (default 60 s, > 0).
    pub fn lease_duration(mut self, d: Duration) -> Self {
        self.config.lease_duration = d;
        self
    }

    /// Batch leases are owned by `"{prefix}-batch-{n}"` (default `"work-grinder"`).
    pub fn owner_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.owner_prefix = prefix.into();
        self
    }

    /// The most jobs that may be pending; beyond it `enqueue` fails with
    /// [`GrinderError::IntakeFull`] (default unbounded, > 0).
    pub fn intake_capacity(mut self, n: usize) -> Self {
        self.config.intake_capacity = Some(n);
        self
    }

    /// How many batches may run at once, each under its own lease (default 1, > 0).
    pub fn max_concurrent_batches(mut self, n: usize) -> Self {
        self.config.max_concurrent_batches = n;
        self
    }

    /// Whether a batch still running near its lease's soft expiry renews the lease, as long as
    /// its jobs keep finishing (default `true`).
    pub fn renew_leases(mut self, on: bool) -> Self {
        self.config.renew_leases = on;
        self
    }

    /// The `log` target of the grinder's records (default `"leasepool::grinder"`).
    pub fn log_target(mut self, target: impl Into<String>) -> Self {
        self.config.log_target = target.into();
        self
    }

    /// Validates the configuration (threshold, max wait, lease duration, intake capacity and
    /// concurrency must be > 0) and builds a stopped grinder.
    pub fn build(self) -> Result<WorkGrinder<S>, ConfigError> {
        let c = &self.config;
        let positive = [
            ("max_wait", !c.max_wait.is_zero()),
            ("batch_size_threshold", c.batch_size_threshold > 0),
            ("lease_duration", !c.lease_duration.is_zero()),
            ("intake_capacity", c.intake_capacity != Some(0)),
            ("max_concurrent_batches", c.max_concurrent_batches > 0),
        ];
        if let Some((field, _)) = positive.into_iter().find(|(_, ok)| !ok) {
            return Err(ConfigError::MustBePositive { field });
        }
        let shared = Arc::new(GrinderShared::new(self.source, self.config));
        Ok(WorkGrinder { shared, lifecycle: Mutex::new(None) })
    }
}

/// Collects small synchronous jobs from any thread and runs them in batches, one lease per batch.
///
/// Every method is safe from every thread (Python's owner-loop rules do not exist here):
/// `enqueue` returns a [`TaskHandle`] at once, `submit` blocks for the job's result. Each job
/// resolves on its own — value, its own panic, cancelled, or the batch's lease error — and one
/// failing job never affects another. Dropping a running grinder stops it with
/// [`StopMode::Cancel`].
///
/// Do not block on [`submit`](Self::submit) (or a job's handle) from inside a grinder job: the
/// job would wait for a batch that cannot start until its own batch ends.
///
/// ```
/// use std::time::Duration;
/// use leasepool::{LeasedExecutorManager, StopMode, WorkGrinder};
///
/// let manager = LeasedExecutorManager::builder().max_pools(1).build()?;
/// manager.start()?;
/// let grinder = WorkGrinder::builder(manager.clone())
///     .batch_size_threshold(4)
///     .max_wait(Duration::from_millis(10))
///     .build()?;
/// grinder.start()?;
/// let handles: Vec<_> = (0..8u64).map(|i| grinder.enqueue(move || i * i)).collect::<Result<_, _>>()?;
/// let sum: u64 = handles.into_iter().map(|h| h.wait()).sum::<Result<u64, _>>()?;
/// assert_eq!(sum, 140);
/// assert_eq!(grinder.submit(|| "one more")?, "one more");
/// grinder.stop(StopMode::Drain { deadline: None });
/// manager.stop();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WorkGrinder<S: LeaseSource = crate::LeasedExecutorManager> {
    shared: Arc<GrinderShared<S>>,
    /// The batching thread of the current run; also serializes start and stop.
    lifecycle: Mutex<Option<JoinHandle<()>>>,
}

impl WorkGrinder<crate::LeasedExecutorManager> {
    /// A builder that leases from `source` (usually a [`LeasedExecutorManager`](crate::LeasedExecutorManager)).
    pub fn builder<S: LeaseSource>(source: S) -> GrinderBuilder<S> {
        GrinderBuilder { source, config: GrinderConfig::default() }
    }
}

impl<S: LeaseSource> WorkGrinder<S> {
    /// Spawns the batching thread (`{owner_prefix}-batcher`). A no-op when running. The lease
    /// source need not be started yet: batches then resolve with its error.
    pub fn start(&self) -> Result<(), std::io::Error> {
        let mut thread = self.lifecycle.lock();
        {
            let mut st = self.shared.state.lock();
            if st.phase == Phase::Running {
                return Ok(());
            }
            st.phase = Phase::Running;
            st.batcher_alive = true;
            st.control = Arc::new(RunControl::default());
        }
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name(format!("{}-batcher", self.shared.config.owner_prefix))
            .spawn(move || batching_thread(shared));
        match spawned {
            Ok(handle) => {
                *thread = Some(handle);
                let c = &self.shared.config;
                log::info!(
                    target: &c.log_target,
                    "grinder started (max_wait={:.3}s, threshold={}, lease_seconds={:.3})",
                    c.max_wait.as_secs_f64(),
                    c.batch_size_threshold,
                    c.lease_duration.as_secs_f64()
                );
                Ok(())
            }
            Err(e) => {
                let mut st = self.shared.state.lock();
                st.phase = Phase::Stopped;
                st.batcher_alive = false;
                Err(e)
            }
        }
    }

    /// Stops the grinder (see [`StopMode`]) and joins its threads. Always leaves a stopped,
    /// restartable grinder. A no-op when not started.
    pub fn stop(&self, mode: StopMode) {
        let mut thread = self.lifecycle.lock();
        if !self.begin_stop(mode) {
            return;
        }
        if let Some(handle) = thread.take() {
            if let StopMode::Drain { deadline: Some(deadline) } = mode {
                let finished = self.shared.wait_stopped(Instant::now() + deadline);
                if !finished {
                    log::warn!(target: &self.shared.config.log_target, "drain deadline passed; cancelling the rest");
                    self.begin_stop(StopMode::Cancel);
                }
            }
            if handle.join().is_err() {
                log::error!(target: &self.shared.config.log_target, "the batching thread panicked");
            }
        }
        self.shared.cancel_pending(|phase| *phase = Phase::Stopped);
        log::info!(target: &self.shared.config.log_target, "grinder stopped");
    }

    /// Puts a started grinder into `Stopping(mode)` and wakes the batching thread. With
    /// [`StopMode::Cancel`] it also takes the pending jobs out (under the same lock), fires the
    /// run's [`RunControl`] and then resolves those jobs as cancelled; a drain deadline that
    /// passes escalates to this. Returns `false`, doing nothing, when the grinder is stopped.
    fn begin_stop(&self, mode: StopMode) -> bool {
        let cancel = mode == StopMode::Cancel;
        let (dropped, control) = {
            let mut st = self.shared.state.lock();
            if st.phase == Phase::Stopped {
                return false;
            }
            st.phase = Phase::Stopping(mode);
            let dropped: Vec<Item> = if cancel { st.pending.drain(..).collect() } else { Vec::new() };
            (dropped, Arc::clone(&st.control))
        };
        self.shared.wake.notify_all();
        if cancel {
            control.cancel();
        }
        cancel_items(dropped);
        true
    }

    /// Queues `f` and returns its handle at once.
    pub fn enqueue<T, F>(&self, f: F) -> Result<TaskHandle<T>, GrinderError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.enqueue_inner(None, f)
    }

    /// Like [`enqueue`](Self::enqueue), with an owner label shown in the grinder's logs.
    pub fn enqueue_as<T, F>(&self, owner: impl Into<Arc<str>>, f: F) -> Result<TaskHandle<T>, GrinderError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.enqueue_inner(Some(owner.into()), f)
    }

    /// Queues `f` and blocks for its result.
    pub fn submit<T, F>(&self, f: F) -> Result<T, TaskError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.enqueue(f)?.wait()
    }

    /// Like [`submit`](Self::submit), with an owner label shown in the grinder's logs.
    pub fn submit_as<T, F>(&self, owner: impl Into<Arc<str>>, f: F) -> Result<T, TaskError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.enqueue_as(owner, f)?.wait()
    }

    /// Queues the registered process `task` with `input` and returns its handle at once (for a
    /// grinder over a process-backend manager; on a thread-backend lease the job resolves with
    /// [`TaskError::WrongBackend`]). Refusals come as [`TaskError::Refused`]; input that does not
    /// serialize is [`TaskError::InvalidInput`] and queues nothing.
    pub fn enqueue_task<I, O>(&self, task: &Task<I, O>, input: I) -> Result<TaskHandle<O>, TaskError>
    where
        I: Serialize + DeserializeOwned,
        O: DeserializeOwned + Send + 'static,
    {
        self.enqueue_task_as_inner(None, task, input, None)
    }

    /// Like [`enqueue_task`](Self::enqueue_task), with a time limit of the task's own, counted
    /// from when a worker gets it: past it the worker is killed and replaced and the job resolves
    /// as [`TaskError::TimedOut`] (see
    /// [`LeasedExecutor::submit_task_timeout`](crate::LeasedExecutor::submit_task_timeout)).
    /// The grinder's statistics count it as failed.
    pub fn enqueue_task_timeout<I, O>(
        &self,
        task: &Task<I, O>,
        input: I,
        timeout: Duration,
    ) -> Result<TaskHandle<O>, TaskError>
    where
        I: Serialize + DeserializeOwned,
        O: DeserializeOwned + Send + 'static,
    {
        self.enqueue_task_as_inner(None, task, input, Some(timeout))
    }

    /// Like [`enqueue_task`](Self::enqueue_task), with an owner label shown in the grinder's logs.
    pub fn enqueue_task_as<I, O>(
        &self,
        owner: impl Into<Arc<str>>,
        task: &Task<I, O>,
        input: I,
    ) -> Result<TaskHandle<O>, TaskError>
    where
        I: Serialize + DeserializeOwned,
        O: DeserializeOwned + Send + 'static,
    {
        self.enqueue_task_as_inner(Some(owner.into()), task, input, None)
    }

    /// Queues the registered process `task` with `input` and blocks for its result.
    pub fn submit_task<I, O>(&self, task: &Task<I, O>, input: I) -> Result<O, TaskError>
    where
        I: Serialize + DeserializeOwned,
        O: DeserializeOwned + Send + 'static,
    {
        self.enqueue_task(task, input)?.wait()
    }

    fn enqueue_task_as_inner<I, O>(
        &self,
        owner: Option<Arc<str>>,
        task: &Task<I, O>,
        input: I,
        timeout: Option<Duration>,
    ) -> Result<TaskHandle<O>, TaskError>
    where
        I: Serialize + DeserializeOwned,
        O: DeserializeOwned + Send + 'static,
    {
        let name = task.name();
        let input = task
            .encode_request(&input)
            .map_err(|message| TaskError::InvalidInput { task: name.to_owned(), message })?;
        Ok(self.enqueue_job(owner, |owner, id| remote_job_pair(owner, id, name, input, timeout, decode::<O>))?)
    }

    fn enqueue_inner<T, F>(&self, owner: Option<Arc<str>>, f: F) -> Result<TaskHandle<T>, GrinderError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.enqueue_job(owner, |owner, id| job_pair(owner, id, f))
    }

    fn enqueue_job<T>(
        &self,
        owner: Option<Arc<str>>,
        make: impl FnOnce(Arc<dyn TaskOwner>, u64) -> (TaskHandle<T>, PendingJob),
    ) -> Result<TaskHandle<T>, GrinderError> {
        let shared = &self.shared;
        let mut st = shared.state.lock();
        let refusal = match st.phase {
            Phase::Running => shared
                .config
                .intake_capacity
                .filter(|&cap| st.pending.len() >= cap)
                .map(|capacity| GrinderError::IntakeFull { capacity }),
            Phase::Stopped => Some(GrinderError::NotStarted),
            Phase::Stopping(_) => Some(GrinderError::Stopping),
            Phase::Crashed => Some(GrinderError::Crashed),
        };
        if let Some(refusal) = refusal {
            st.batches.jobs_rejected += 1;
            return Err(refusal);
        }
        st.next_item += 1;
        let id = st.next_item;
        let (handle, task) = make(Arc::clone(shared) as Arc<dyn TaskOwner>, id);
        let wake = st.pending.len() + 1 == shared.config.batch_size_threshold || st.pending.is_empty();
        if st.pending.is_empty() {
            st.oldest_since = Some(Instant::now());
        }
        st.pending.push_back(Item { id, owner: owner.clone(), task });
        let pending = st.pending.len();
        drop(st);
        if wake {
            shared.wake.notify_one();
        }
        log::debug!(target: &shared.config.log_target, "item queued (work_id={id}, owner={}, pending={pending})", owner.as_deref().unwrap_or("-"));
        Ok(handle)
    }

    /// A snapshot of the grinder.
    pub fn stats(&self) -> GrinderStats {
        let c = &self.shared.config;
        let o = &self.shared.outcomes;
        let st = self.shared.state.lock();
        let started = st.phase != Phase::Stopped;
        GrinderStats {
            started,
            stopping: matches!(st.phase, Phase::Stopping(_)),
            pending: st.pending.len(),
            batch_size_threshold: c.batch_size_threshold,
            max_wait: c.max_wait,
            lease_duration: c.lease_duration,
            oldest_wait: st
                .oldest_since
                .filter(|_| started && !st.pending.is_empty())
                .map_or(Duration::ZERO, |t| t.elapsed()),
            running_batches: st.running_batches,
            counters: GrinderCounters {
                batches_run: st.batches.batches_run,
                jobs_completed: o.completed.load(Relaxed),
                jobs_panicked: o.panicked.load(Relaxed),
                jobs_cancelled: o.cancelled.load(Relaxed),
                jobs_failed: o.failed.load(Relaxed),
                jobs_rejected: st.batches.jobs_rejected,
                current_batch_size: st.batches.current_batch_size,
                last_batch_duration: st.batches.last_batch_duration,
            },
        }
    }
}

impl<S: LeaseSource> Drop for WorkGrinder<S> {
    fn drop(&mut self) {
        self.stop(StopMode::Cancel);
    }
}

impl<S: LeaseSource> fmt::Debug for WorkGrinder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkGrinder").field("stats", &self.stats()).finish()
    }
}
