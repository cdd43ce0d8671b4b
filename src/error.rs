//! Typed errors, one enum per boundary.
//!
//! Every variant carries what a caller needs to act on it, and every message says what went
//! wrong in words a log reader understands. Nothing here is a bare string.

use std::time::Duration;

use crate::backend::kind::ExecutorBackend;
use crate::backend::process::exit::WorkerExit;
use crate::ids::LeaseId;

/// A configuration value was rejected by [`ManagerBuilder::build`](crate::ManagerBuilder::build)
/// or a backend name could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required field was never set.
    #[error("{field} is required")]
    Missing {
        /// The builder field that was not set.
        field: &'static str,
    },
    /// A count or duration that must be positive was zero.
    #[error("{field} must be > 0")]
    MustBePositive {
        /// The builder field that was zero.
        field: &'static str,
    },
    /// A duration too large to turn into a deadline (lease + grace must fit in a clock reading,
    /// with a century to spare).
    #[error("{field} is too large to be a deadline")]
    TooLarge {
        /// The builder field (or sum of fields) that was too large.
        field: &'static str,
    },
    /// A count outside the range this crate supports (each limit is documented on its builder
    /// method).
    #[error("{field} = {value} is out of range: it must be between {min} and {max} ({why})")]
    OutOfRange {
        /// The builder field.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The smallest value accepted.
        min: u64,
        /// The largest value accepted.
        max: u64,
        /// Why the limit exists.
        why: &'static str,
    },
    /// A name that cannot be used as given.
    #[error("{field} {value:?} cannot be used: {why}")]
    InvalidName {
        /// The builder field.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// `min_pools` exceeded `max_pools`.
    #[error("min_pools cannot be greater than max_pools (min_pools = {min_pools}, max_pools = {max_pools})")]
    MinAboveMax {
        /// The configured floor.
        min_pools: usize,
        /// The configured cap.
        max_pools: usize,
    },
    /// A backend name did not match any backend.
    #[error("Unsupported backend {name:?}; valid backends are: thread, process, interpreter")]
    UnknownBackend {
        /// The name that was given.
        name: String,
    },
    /// The backend exists but cannot be used by this build of the crate.
    #[error("Unsupported backend {backend}: {reason}")]
    UnsupportedBackend {
        /// The backend that was selected.
        backend: ExecutorBackend,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// A log level name was not recognised.
    #[error("Invalid logging level {name:?}: expected off, error, warn, info, debug or trace")]
    InvalidLogLevel {
        /// The name that was given.
        name: String,
    },
    /// Two ways of setting the same thing were both used.
    #[error("{0}")]
    Conflicting(&'static str),
    /// An option that only the process backend understands was set for another backend.
    #[error("{option} requires the process backend (the manager uses the {backend} backend)")]
    ProcessOnly {
        /// The option.
        option: &'static str,
        /// The backend that was selected.
        backend: ExecutorBackend,
    },
    /// The initializer's arguments could not be serialized.
    #[error("the worker initializer's arguments cannot be serialized: {message}")]
    InvalidInitializerArgs {
        /// The serializer's error.
        message: String,
    },
}

/// [`LeasedExecutorManager::start`](crate::LeasedExecutorManager::start) could not bring up the
/// initial pools. The manager stays stopped and can be started again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A pool could not be created, even after retrying.
    #[error("could not create the initial pools: {reason}")]
    PoolCreation {
        /// Why the last attempt failed.
        reason: String,
    },
}

/// Why [`acquire`](crate::LeasedExecutorManager::acquire) or
/// [`try_acquire`](crate::LeasedExecutorManager::try_acquire) returned no lease.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcquireError {
    /// The manager is not started, is stopping, or was stopped while the caller waited.
    #[error("the manager is not running (not started, stopping or stopped)")]
    NotRunning,
    /// Fail-fast acquire found every pool leased and the manager at `max_pools`.
    #[error("No executor available: all {max_pools} pools (max_pools) are leased")]
    Unavailable {
        /// The configured cap.
        max_pools: usize,
    },
    /// Fail-fast acquire found no idle pool while the manager owns fewer than `max_pools`: a
    /// pool is now being built in the background (never on the caller's thread). Try again
    /// shortly, or [`acquire`](crate::LeasedExecutorManager::acquire) with a timeout to wait
    /// for it.
    #[error("No idle executor: a pool is being started in the background (fewer than max_pools = {max_pools} exist)")]
    Starting {
        /// The configured cap.
        max_pools: usize,
    },
    /// No pool became free before the timeout, measured from the call.
    #[error("Timed out waiting for an executor after {waited:?}")]
    TimedOut {
        /// How long the caller actually waited.
        waited: Duration,
    },
    /// The requested lease duration was zero or too large to represent as a deadline.
    #[error("invalid lease duration {duration:?}: it must be > 0 and representable as a deadline")]
    InvalidLeaseDuration {
        /// The rejected duration.
        duration: Duration,
    },
    /// The acquire was interrupted through its [`Interrupt`](crate::Interrupt) while it waited.
    #[error("the acquire was interrupted before a pool was free")]
    Interrupted,
    /// A pool had to be created for this caller and its creation failed.
    #[error("could not create a pool for this lease: {reason}")]
    PoolBroken {
        /// Why the pool could not be created.
        reason: String,
    },
}

/// Why a lease refused new work (or a renewal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// The lease was released; it is draining or finished. Acquire a new lease.
    #[error("lease {lease_id} has been released and is no longer active")]
    Released {
        /// The lease.
        lease_id: LeaseId,
    },
    /// The lease passed its hard expiry and was revoked.
    #[error("lease {lease_id} expired and was revoked")]
    Expired {
        /// The lease.
        lease_id: LeaseId,
    },
    /// The lease's pool broke; it was retired and will be replaced.
    #[error("lease {lease_id} is no longer active: its pool is broken ({reason})")]
    PoolBroken {
        /// The lease.
        lease_id: LeaseId,
        /// What broke the pool.
        reason: String,
    },
    /// The manager was stopped, which revoked every lease.
    #[error("lease {lease_id} is no longer active: the manager was stopped")]
    ManagerStopped {
        /// The lease.
        lease_id: LeaseId,
    },
    /// The work does not fit the lease's backend: closures run on thread pools, registered
    /// [`Task`](crate::Task)s on process pools.
    #[error("lease {lease_id} is on a {backend} pool, which cannot run this kind of work (closures need the thread backend, registered tasks the process backend)")]
    WrongBackend {
        /// The lease.
        lease_id: LeaseId,
        /// The lease's backend.
        backend: ExecutorBackend,
    },
    /// A renewal would move the deadline beyond what the clock can represent.
    #[error("cannot renew lease {lease_id} by {extra:?}: the deadline would overflow")]
    InvalidRenewal {
        /// The lease.
        lease_id: LeaseId,
        /// The rejected extension.
        extra: Duration,
    },
}

/// How a submitted task ended, when it did not produce a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked. The pool thread survived; the message is the panic payload.
    #[error("task panicked: {message}")]
    Panicked {
        /// The panic payload rendered as text.
        message: String,
    },
    /// The task never ran: its handle was cancelled, its lease was revoked or the manager stopped
    /// before it started.
    #[error("task was cancelled before it started")]
    Cancelled,
    /// The task never ran because its pool broke.
    #[error("task did not run: its pool is broken ({reason})")]
    PoolBroken {
        /// What broke the pool.
        reason: String,
    },
    /// The worker process running the task died (abort, signal, out of memory, killed from
    /// outside). Its pool was retired and is replaced.
    #[error("worker process {pid} crashed while running the task ({status})")]
    WorkerCrashed {
        /// The worker's pid.
        pid: u32,
        /// How it ended.
        status: WorkerExit,
    },
    /// The task was running in a worker process when its lease was revoked at hard expiry (or the
    /// manager stopped); the worker was terminated.
    #[error("task was running in worker process {pid} when its lease was revoked; the worker was terminated")]
    Revoked {
        /// The terminated worker's pid.
        pid: u32,
    },
    /// The process task did not finish within the timeout it was submitted with
    /// ([`LeasedExecutor::submit_task_timeout`](crate::LeasedExecutor::submit_task_timeout)),
    /// counted from when it was sent to a worker. The worker was killed (`SIGKILL`) and a fresh
    /// one took its place; the pool and its other tasks carry on.
    #[error("task {task:?} did not finish within its timeout of {timeout:?}; the worker process running it was killed and replaced")]
    TimedOut {
        /// The task.
        task: String,
        /// The timeout it was submitted with.
        timeout: Duration,
    },
    /// No task of this name is registered in the worker's [`TaskRegistry`](crate::TaskRegistry).
    #[error("no task named {name:?} is registered in the worker")]
    UnknownTask {
        /// The task name that was sent.
        name: String,
    },
    /// The parent and the worker disagree on the task's input or output type: the worker
    /// registered a different `Task<I, O>` under this name (another build, or another
    /// declaration). Checked with a structural fingerprint of both types on every request,
    /// before anything is decoded, so a disagreement never produces a wrong value.
    #[error("task {task:?}: the parent and the worker disagree on its input or output type (the worker registered a different Task<I, O> under this name)")]
    TypeMismatch {
        /// The task.
        task: String,
    },
    /// The task's input could not be serialized (parent) or deserialized (worker).
    #[error("the input of task {task:?} could not be (de)serialized: {message}")]
    InvalidInput {
        /// The task.
        task: String,
        /// The serializer's error.
        message: String,
    },
    /// The task's output could not be serialized (worker) or deserialized (parent).
    #[error("the output of task {task:?} could not be (de)serialized: {message}")]
    InvalidOutput {
        /// The task.
        task: String,
        /// The serializer's error.
        message: String,
    },
    /// A registered task reached a lease that is not a process pool (through a
    /// [`WorkGrinder`](crate::WorkGrinder) on a thread-backend manager).
    #[error("task {task:?} is a registered process task and needs a process-backend lease")]
    WrongBackend {
        /// The task.
        task: String,
    },
    /// The task could not be submitted: its lease refused it (from
    /// [`ExecutorLease::run`](crate::ExecutorLease::run), or a grinder batch whose lease expired or
    /// broke part-way through submission).
    #[error(transparent)]
    Rejected(#[from] LeaseError),
    /// A grinder job's batch could not get a lease (the manager is not running, a pool could not
    /// be built, ...).
    #[error("the job's batch could not get a lease: {0}")]
    LeaseUnavailable(AcquireError),
    /// A [`WorkGrinder`](crate::WorkGrinder) did not accept the job.
    #[error(transparent)]
    Refused(#[from] GrinderError),
    /// A grinder job failed for a reason its lease source gave (used by custom
    /// [`LeaseSource`](crate::LeaseSource) implementations).
    #[error("{message}")]
    Source {
        /// What the lease source said.
        message: String,
    },
}

/// Why a [`WorkGrinder`](crate::WorkGrinder) refused a job at intake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrinderError {
    /// The grinder was not started (or was stopped).
    #[error("the WorkGrinder is not started")]
    NotStarted,
    /// The grinder is stopping.
    #[error("the WorkGrinder is stopping")]
    Stopping,
    /// The intake queue is at its configured capacity.
    #[error("the WorkGrinder's intake is full ({capacity} jobs pending)")]
    IntakeFull {
        /// The configured intake capacity.
        capacity: usize,
    },
    /// The batching thread died (a bug); stop and restart the grinder.
    #[error("the WorkGrinder's batching thread crashed; stop and restart it")]
    Crashed,
}

impl TaskError {
    /// Whether the task was cancelled before it started.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, TaskError::Cancelled)
    }
}
