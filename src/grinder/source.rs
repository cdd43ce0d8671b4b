//! Where a grinder's batch leases come from: a small trait pair, so the grinder can run against a
//! fake in tests (and against anything else that can hand out a lease).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::ExecutorBackend;
use crate::config::AcquireOptions;
use crate::error::{AcquireError, LeaseError, TaskError};
use crate::interrupt::Interrupt;
use crate::lease::{try_enter, ExecutorLease};
use crate::manager::LeasedExecutorManager;

use crate::task::{PendingJob, Resolution};

use super::batch_queue::BatchQueue;

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

    /// How many jobs the lease runs at once, if it wants batches as that many *drain* jobs
    /// instead of one job per item: each drain job runs the batch's items one after another
    /// from a shared queue, so a batch costs a handful of pool tasks rather than one per item.
    /// `None` (the default) submits item by item.
    fn parallelism(&self) -> Option<usize> {
        None
    }

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

/// Work handed to a [`BatchLease`]: one grinder job, or (see [`BatchLease::parallelism`]) a
/// drain job that runs the batch's queued jobs until none is left. Run it exactly once with
/// [`run`](Self::run), on whatever thread the lease runs work. Dropping it unrun resolves its
/// job(s) as cancelled.
pub struct BatchJob {
    kind: Kind,
    batch: Arc<BatchQueue>,
}

enum Kind {
    Single(Option<PendingJob>),
    Drain { ran: bool },
}

impl BatchJob {
    pub(super) fn single(job: PendingJob, batch: &Arc<BatchQueue>) -> BatchJob {
        BatchJob { kind: Kind::Single(Some(job)), batch: Arc::clone(batch) }
    }

    pub(super) fn drain(batch: &Arc<BatchQueue>) -> BatchJob {
        BatchJob { kind: Kind::Drain { ran: false }, batch: Arc::clone(batch) }
    }

    /// Runs the job(s) (a panic is caught and becomes that job's outcome) and resolves their
    /// handles.
    pub fn run(self) {
        self.run_while(|| true);
    }

    /// Runs like [`run`](Self::run), but resolves each job as cancelled instead of running it
    /// once `allowed` says no (the lease was revoked).
    pub fn run_while(mut self, allowed: impl Fn() -> bool) {
        match &mut self.kind {
            Kind::Single(task) => {
                if let Some(task) = task.take() {
                    if allowed() {
                        task.run();
                    } else {
                        task.fail(TaskError::Cancelled);
                    }
                }
            }
            Kind::Drain { ran } => {
                *ran = true;
                while let Some(task) = self.batch.pop() {
                    if allowed() {
                        task.run();
                    } else {
                        task.fail(TaskError::Cancelled);
                    }
                    self.batch.latch.count_down();
                }
            }
        }
    }

    /// Drops a drain job that was refused while others of its batch were accepted: the accepted
    /// ones run every queued job, so this one must not cancel them.
    pub(super) fn discard(mut self) {
        if let Kind::Drain { ran } = &mut self.kind {
            *ran = true;
        }
    }

    /// Resolves the job(s) with `error` without running them.
    pub(super) fn fail(mut self, error: TaskError) {
        match &mut self.kind {
            Kind::Single(task) => {
                if let Some(task) = task.take() {
                    task.fail(error);
                }
            }
            Kind::Drain { ran } => {
                *ran = true;
                self.batch.fail_remaining(&error);
            }
        }
    }
}

impl Drop for BatchJob {
    fn drop(&mut self) {
        match &mut self.kind {
            Kind::Single(task) => {
                if let Some(task) = task.take() {
                    task.fail(TaskError::Cancelled);
                }
                self.batch.latch.count_down();
            }
            // A drain job is only dropped unrun when its lease ended: nothing queued will run.
            Kind::Drain { ran: false } => {
                self.batch.fail_remaining(&TaskError::Cancelled);
            }
            Kind::Drain { ran: true } => {}
        }
    }
}

impl std::fmt::Debug for BatchJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Single(task) => {
                if task.is_some() {
                    "single"
                } else {
                    "single (done)"
                }
            }
            Kind::Drain { .. } => "drain",
        };
        f.debug_struct("BatchJob").field("kind", &kind).finish()
    }
}

/// Sends one grinder job to a process lease. A closure cannot run there: that job alone
/// resolves with [`LeaseError::WrongBackend`] and the rest of the batch goes on.
fn submit_remote(lease: &ExecutorLease, mut job: BatchJob) -> Result<(), (TaskError, BatchJob)> {
    let wrong_backend =
        || TaskError::Rejected(LeaseError::WrongBackend { lease_id: lease.id(), backend: ExecutorBackend::Process });
    let Kind::Single(slot) = &mut job.kind else {
        unreachable!("a process lease has no parallelism, so its batches are submitted job by job")
    };
    let Some(pending) = slot.take() else { return Ok(()) };
    let remote = match pending.into_remote() {
        Ok(remote) => remote,
        Err(pending) => {
            pending.fail(wrong_backend());
            return Ok(()); // dropping the emptied batch job counts the batch down
        }
    };
    match try_enter(lease.cell()) {
        // The emptied batch job counts the batch's latch down once the task resolved.
        Ok(entered) => entered.send(remote, move || drop(job)),
        Err(e) => {
            drop(remote); // resolves the task (cancelled) ...
            let error = TaskError::Rejected(e);
            return Err((error, job)); // ... and the grinder fails the rest of the batch with this
        }
    }
    Ok(())
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
        if self.backend() == ExecutorBackend::Process {
            return submit_remote(self, job);
        }
        match try_enter(self.cell()) {
            Ok(entered) => {
                let lease = Arc::clone(self.cell());
                entered.spawn(move |allowed| {
                    if allowed {
                        job.run_while(|| lease.ended().is_none());
                        Resolution::Completed
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

    fn parallelism(&self) -> Option<usize> {
        // Drain jobs run closures on pool threads; a process pool takes its tasks one by one.
        (self.backend() == ExecutorBackend::Thread).then(|| self.cell().pool.pool.workers())
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
