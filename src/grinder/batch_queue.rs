//! [`BatchQueue`]: what one running batch shares with the jobs it handed to its lease — the jobs
//! not started yet (in drain mode) and the [`Latch`] that counts every job of the batch down.

use std::sync::Arc;

use crossbeam::queue::SegQueue;

use crate::error::TaskError;
use crate::task::PendingJob;

use super::latch::Latch;

/// A batch's jobs in drain mode, and the latch that counts every job of the batch down.
pub(crate) struct BatchQueue {
    items: SegQueue<PendingJob>,
    pub(crate) latch: Latch,
}

impl BatchQueue {
    pub(crate) fn new(size: usize) -> Arc<BatchQueue> {
        Arc::new(BatchQueue { items: SegQueue::new(), latch: Latch::new(size) })
    }

    pub(crate) fn push(&self, job: PendingJob) {
        self.items.push(job);
    }

    /// The next queued job, if any (a drain job runs them one after another).
    pub(super) fn pop(&self) -> Option<PendingJob> {
        self.items.pop()
    }

    /// Resolves every job still queued with `error`; returns how many.
    pub(crate) fn fail_remaining(&self, error: &TaskError) -> usize {
        let mut n = 0;
        while let Some(job) = self.items.pop() {
            job.fail(error.clone());
            self.latch.count_down();
            n += 1;
        }
        n
    }
}
