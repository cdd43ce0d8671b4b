//! Running one batch: lease, submit in order, wait (renewing the lease while jobs progress),
//! release.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::TaskError;
use crate::task::QueuedTask;

use super::batch_queue::BatchQueue;
use super::control::RunControl;
use super::latch::Waited;
use super::shared::{GrinderShared, Item};
use super::source::{BatchJob, BatchLease, LeaseSource};

/// How often a waiting batch looks at its lease (revocation, renewal) between job completions.
const TICK: Duration = Duration::from_millis(100);

/// Runs one batch to the end (or until a cancelling stop). `n` is its batch number.
pub(crate) fn run_batch<S: LeaseSource>(
    shared: &Arc<GrinderShared<S>>,
    items: Vec<Item>,
    n: u64,
    control: &RunControl,
) {
    let config = &shared.config;
    let target = config.log_target.as_str();
    let size = items.len();
    let started = Instant::now();
    let owner = format!("{}-batch-{n}", config.owner_prefix);
    log::info!(target: target, "processing batch (batch_id={n}, size={size}, lease_seconds={:.3})", config.lease_duration.as_secs_f64());
    shared.batch_started(size);

    let batch = BatchQueue::new(size);
    control.watch(&batch);

    let lease = match shared.source.acquire_batch_lease(&owner, config.lease_duration, &control.interrupt) {
        Ok(lease) => lease,
        Err(error) => {
            if control.cancelled() {
                log::info!(target: target, "cancelled batch (batch_id={n}) before it got a lease");
            } else {
                log::error!(target: target, "batch failed (batch_id={n}): could not get a lease: {error}");
            }
            items.into_iter().for_each(|item| BatchJob::single(item.task, &batch).fail(error.clone()));
            shared.batch_finished(size, started.elapsed());
            return;
        }
    };

    // Item by item (a lease without parallelism), the jobs not started yet are reachable through
    // `queued` for cancellation; in drain mode they are in the batch queue.
    let mut queued: Vec<Arc<dyn QueuedTask>> = Vec::new();
    match lease.parallelism() {
        Some(parallelism) => {
            for item in items {
                batch.push(item.task);
            }
            for i in 0..parallelism.clamp(1, size) {
                if let Err((error, job)) = lease.submit(BatchJob::drain(&batch)) {
                    if i == 0 {
                        log::error!(target: target, "failed to submit a work item (batch_id={n}, work_id=all, owner=-): {error}");
                        job.fail(error);
                    } else {
                        // Harmless: the drain jobs already accepted run every queued job.
                        job.discard();
                    }
                    break;
                }
            }
        }
        None => {
            queued = items.iter().map(|i| i.task.as_queued()).collect();
            let mut jobs = items.into_iter();
            while let Some(item) = jobs.next() {
                if let Err((error, job)) = lease.submit(BatchJob::single(item.task, &batch)) {
                    log::error!(
                        target: target,
                        "failed to submit a work item (batch_id={n}, work_id={}, owner={}): {error}",
                        item.id,
                        item.owner.as_deref().unwrap_or("-")
                    );
                    job.fail(error.clone());
                    jobs.by_ref().for_each(|item| BatchJob::single(item.task, &batch).fail(error.clone()));
                    break;
                }
            }
        }
    }

    let cancelled = wait_for_batch(shared, &lease, &batch, &queued, n, control);
    drop(lease); // releases (or drains, if jobs are still running)
    if cancelled {
        log::info!(target: target, "cancelled batch (batch_id={n})");
    } else {
        log::info!(target: target, "finished batch (batch_id={n}, size={size}, seconds={:.3})", started.elapsed().as_secs_f64());
    }
    shared.batch_finished(size, started.elapsed());
}

/// Waits for the batch's jobs. Renews the lease (when enabled) as its soft expiry nears, as long
/// as jobs finished since the previous renewal; cancels the jobs not started yet if the lease is
/// revoked or the grinder is stopped with cancel. Returns whether the wait was cancelled.
fn wait_for_batch<S: LeaseSource>(
    shared: &GrinderShared<S>,
    lease: &S::Lease,
    batch: &BatchQueue,
    queued: &[Arc<dyn QueuedTask>],
    n: u64,
    control: &RunControl,
) -> bool {
    let config = &shared.config;
    let target = config.log_target.as_str();
    let latch = &batch.latch;
    let mut progress_mark = latch.remaining();
    let cancel_not_started =
        || batch.fail_remaining(&TaskError::Cancelled) + queued.iter().filter(|q| q.cancel()).count();
    let mut revoked = false;
    loop {
        let now = Instant::now();
        let renew_at = lease
            .soft_expires_at()
            .filter(|_| config.renew_leases)
            .map(|soft| soft.checked_sub(config.lease_duration / 2).unwrap_or(soft));
        // Wake at the renewal point if it is ahead, else (not renewable yet, or already due but
        // waiting for progress) at the next tick: never a zero wait.
        let deadline = match renew_at {
            Some(at) if at > now => at.min(now + TICK),
            _ => now + TICK,
        };
        match latch.wait_until(deadline, || control.cancelled()) {
            Waited::Done => return false,
            Waited::Cancelled => {
                let n_cancelled = cancel_not_started();
                log::debug!(target: target, "batch {n}: {n_cancelled} jobs not started were cancelled by stop");
                return true;
            }
            Waited::TimedOut => {}
        }
        if !revoked && lease.is_revoked() {
            revoked = true;
            let n_cancelled = cancel_not_started();
            log::warn!(target: target, "batch {n} lost its lease (revoked); {n_cancelled} jobs not started were cancelled");
        }
        if !revoked && renew_at.is_some_and(|at| Instant::now() >= at) {
            let remaining = latch.remaining();
            if remaining < progress_mark && lease.renew(config.lease_duration) {
                log::info!(
                    target: target,
                    "renewed the lease of batch {n} by {:.3}s ({remaining} jobs still to finish)",
                    config.lease_duration.as_secs_f64()
                );
                progress_mark = remaining;
            }
        }
    }
}
