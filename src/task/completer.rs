//! Closure tasks submitted through a lease: the pool's side of the task ([`Completer`]), which
//! travels inside the job rayon runs.

use std::sync::Arc;

use super::handle::TaskHandle;
use super::slot::{claim, resolve_unstarted, run_claimed, Resolution, Slot, SlotApi, TaskOwner};
use crate::error::TaskError;

/// The pool's side of a task: marks it running and publishes its outcome exactly once. Dropping
/// it unpublished resolves the handle as cancelled, so no waiter can sleep forever.
pub(crate) struct Completer<T> {
    slot: Option<Arc<Slot<T>>>,
}

/// A fresh queued task: the handle for the caller and the completer for the job.
pub(crate) fn task_pair<T: Send + 'static>(owner: Arc<dyn TaskOwner>, tag: u64) -> (TaskHandle<T>, Completer<T>) {
    let slot = Arc::new(Slot::new(owner, tag));
    (TaskHandle::new(Arc::clone(&slot) as Arc<dyn SlotApi<T>>), Completer { slot: Some(slot) })
}

impl<T> Completer<T> {
    /// Runs the job on a pool thread: skip it if it was cancelled first (the canceller accounted
    /// for it); else run it and account for it, and only then publish the outcome.
    pub(crate) fn run(mut self, f: impl FnOnce() -> T) -> Resolution {
        let slot = self.slot.take().expect("a completer runs once");
        if claim(&slot) {
            run_claimed(&slot, f)
        } else {
            Resolution::Cancelled
        }
    }
}

impl<T> Drop for Completer<T> {
    /// A job dropped without running (its pool or batch went away) resolves as cancelled, with
    /// accounting; a task already claimed by a canceller is left to it.
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            resolve_unstarted(&slot, TaskError::Cancelled);
        }
    }
}
