//! Typed errors, one enum per boundary.
//!
//! Every variant carries what a caller needs to act on it, and every message says what went
//! wrong in words a log reader understands. Nothing here is a bare string.

use std::time::Duration;

use crate::backend::ExecutorBackend;
use crate::lease::LeaseId;

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
