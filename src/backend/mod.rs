//! Pool backends: what a "pool" is underneath a lease.
//!
//! Two backends, one enum: [`Pool::Thread`] (a rayon pool, [`thread`]) and [`Pool::Process`]
//! (worker processes, [`process`]). The manager only needs the handful of operations below:
//! shut down without waiting, join with a deadline, a health check, worker ids for stats. What
//! a lease submits differs (closures vs registered tasks), so leases match on the variant.

use std::time::Instant;

use crate::config::Config;
use crate::error::TaskError;
use crate::task::RemoteJob;

pub(crate) mod kind;
pub(crate) mod process;
pub(crate) mod thread;

pub use kind::ExecutorBackend;

pub use process::WorkerExit;

/// Why a pool could not be built.
pub(crate) struct BuildFailure {
    pub(crate) reason: String,
    /// A pool whose threads are stuck in user code (a start hook that never returned): it is
    /// shut down but cannot be joined. Trying again is pointless, and a graceful stop must
    /// report these threads as not joined.
    pub(crate) stuck: Option<Pool>,
    /// Trying again would fail the same way (threads stuck in a hook; a worker program that is
    /// not a worker, or is missing).
    pub(crate) hopeless: bool,
}

/// One pool, of either backend.
pub(crate) enum Pool {
    Thread(thread::Pool),
    Process(process::Pool),
}

impl Pool {
    /// Builds a pool for `config`'s backend. `on_broken` is called when a process pool breaks
    /// after creation (a worker died).
    pub(crate) fn create(config: &Config, seq: u64, on_broken: process::BrokenHook) -> Result<Pool, BuildFailure> {
        match config.backend {
            ExecutorBackend::Process => {
                let spec = process::Spec {
                    name_prefix: config.name_prefix.clone(),
                    workers: config.workers_per_pool,
                    log_target: config.log_target.clone(),
                    options: config.process.clone(),
                    logging: config.process_logging.clone(),
                };
                process::Pool::create(spec, seq, on_broken).map(Pool::Process).map_err(|f| BuildFailure {
                    reason: f.reason,
                    stuck: None,
                    hopeless: f.hopeless,
                })
            }
            _ => thread::Pool::create(config, seq).map(Pool::Thread).map_err(|(reason, stuck)| BuildFailure {
                hopeless: stuck.is_some(),
                reason,
                stuck: stuck.map(Pool::Thread),
            }),
        }
    }

    /// Which backend this pool belongs to.
    pub(crate) fn kind(&self) -> ExecutorBackend {
        match self {
            Pool::Thread(_) => ExecutorBackend::Thread,
            Pool::Process(_) => ExecutorBackend::Process,
        }
    }

    /// Queues a closure on a thread pool. Gives it back when the pool was shut down (the caller
    /// runs it inline: it then resolves as cancelled through its lease); callers check
    /// [`kind`](Self::kind) first, and a process pool gives the closure back too.
    pub(crate) fn spawn<F: FnOnce() + Send + 'static>(&self, job: F) -> Result<(), F> {
        match self {
            Pool::Thread(p) => p.spawn(job),
            Pool::Process(_) => Err(job),
        }
    }

    /// Sends a registered task to a process pool (a closed pool resolves it at once). Callers
    /// check [`kind`](Self::kind) first; a thread pool fails the task as `WrongBackend`.
    pub(crate) fn submit_remote(&self, job: RemoteJob) {
        match self {
            Pool::Process(p) => p.submit(job),
            Pool::Thread(_) => {
                let task = job.task.to_owned();
                job.done.fail(TaskError::WrongBackend { task });
            }
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

    /// Whether the pool can take work; the manager asks when it hands the pool out. Thread pools
    /// are verified when built and cannot break. A process pool is unhealthy once any worker
    /// died, and it pings its idle workers: one round trip (tens of microseconds, all workers at
    /// once), or up to `ping_timeout` when a worker is hung (the pool then breaks, with the
    /// reason, and the hung worker is killed).
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

    /// Stops taking work without blocking. `kill_running`: process pools terminate busy workers
    /// (the lease expired or the manager stopped); otherwise running work finishes.
    pub(crate) fn shutdown(&self, kill_running: bool) {
        match self {
            Pool::Thread(p) => p.shutdown(),
            Pool::Process(p) => {
                p.shutdown(if kill_running { process::Shutdown::Kill } else { process::Shutdown::Graceful })
            }
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
