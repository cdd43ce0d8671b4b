//! Where a grinder's batch leases come from: a small trait pair, so the grinder can run against a
//! fake in tests (and against anything else that can hand out a lease).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::AcquireOptions;
use crate::error::{AcquireError, TaskError};
use crate::interrupt::Interrupt;
use crate::lease::{try_enter, ExecutorLease};
use crate::manager::LeasedExecutorManager;
use crate::task::{QueuedTask, Resolution};

use super::batch::Latch;

/// Hands out one lease per batch. Implemented by [`LeasedExecutorManager`].
pub trait LeaseSource: Send + Sync + 'static {
    /// The lease a batch runs under. Dropping it releases it.
    type Lease: BatchLease;

    /// Leases a pool for one batch, waiting as long as it takes unless `interrupt` fires (then
    /// return an error quickly; the grinder resolves the batch's jobs as cancelled). An error is
    /// delivered to every job of the batch.
    fn acquire_batch_lease(
        &self,
        owner: &str,
        duration: Duration,
        interrupt: &Interrupt,
    ) -> Result<Self::Lease, TaskError>;
}

/// A lease a batch runs under.
pub trait BatchLease: Send + 'static {
    /// Queues one job. On refusal, gives the job back with the error its job and every later job
    /// of the batch resolve with (jobs already submitted keep their real outcomes).
    fn submit(&self, job: BatchJob) -> Result<(), (TaskError, BatchJob)>;

    /// When the lease's soft expiry is, if it has one (renewal is planned from it).
    fn soft_expires_at(&self) -> Option<Instant> {
        None
    }

    /// Extends the lease by `extra`; returns whether it was extended.
    fn renew(&self, _extra: Duration) -> bool {
        false
    }

    /// Whether the lease was revoked (its queued jobs will not run).
    fn is_revoked(&self) -> bool {
        false
    }
}

/// One grinder job handed to a [`BatchLease`]: run it exactly once with [`run`](Self::run), on
/// whatever thread the lease runs work. Dropping it unrun resolves the job as cancelled.
pub struct BatchJob {
    pub(super) task: Option<Box<dyn ErasedJob>>,
    pub(super) latch: Arc<Latch>,
}

impl BatchJob {
    /// Runs the job (its panic is caught and becomes its outcome) and resolves its handle.
    pub fn run(mut self) {
        self.run_inner();
    }

    fn run_inner(&mut self) -> Resolution {
        match self.task.take() {
            Some(task) => task.run(),
            None => Resolution::Cancelled,
        }
    }

    /// Resolves the job with `error` without running it.
    pub(super) fn fail(mut self, error: TaskError) {
        if let Some(task) = self.task.take() {
            task.fail(error);
        }
    }
}

impl Drop for BatchJob {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.fail(TaskError::Cancelled);
        }
        self.latch.count_down();
    }
}

impl std::fmt::Debug for BatchJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchJob").field("pending", &self.task.is_some()).finish()
    }
}

/// A job with its result type erased.
pub(super) trait ErasedJob: Send {
    fn run(self: Box<Self>) -> Resolution;
    fn fail(self: Box<Self>, error: TaskError);
    /// Not cancelled through its handle.
    fn is_live(&self) -> bool;
    fn as_queued(&self) -> Arc<dyn QueuedTask>;
}

impl LeaseSource for LeasedExecutorManager {
    type Lease = ExecutorLease;

    fn acquire_batch_lease(
        &self,
        owner: &str,
        duration: Duration,
        interrupt: &Interrupt,
    ) -> Result<ExecutorLease, TaskError> {
        let options = AcquireOptions::new().owner(owner).lease_duration(duration).interrupt(interrupt.clone());
        self.acquire(options).map_err(|e| match e {
            AcquireError::Interrupted => TaskError::Cancelled,
            other => TaskError::LeaseUnavailable(other),
        })
    }
}

impl BatchLease for ExecutorLease {
    fn submit(&self, job: BatchJob) -> Result<(), (TaskError, BatchJob)> {
        match try_enter(self.cell()) {
            Ok(entered) => {
                entered.spawn(move |allowed| {
                    let mut job = job;
                    if allowed {
                        job.run_inner()
                    } else {
                        drop(job); // resolves as cancelled
                        Resolution::Cancelled
                    }
                });
                Ok(())
            }
            Err(e) => Err((TaskError::Rejected(e), job)),
        }
    }

    fn soft_expires_at(&self) -> Option<Instant> {
        Some(ExecutorLease::soft_expires_at(self))
    }

    fn renew(&self, extra: Duration) -> bool {
        ExecutorLease::renew(self, extra).is_ok()
    }

    fn is_revoked(&self) -> bool {
        self.cell().ended().is_some()
    }
}
