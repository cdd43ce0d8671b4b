//! Process tasks, the parent's side: the request a process pool sends ([`RemoteJob`]) and what
//! resolves the task's handle from the worker's answer ([`RemoteDone`], [`RemoteCompleter`]).

use std::sync::Arc;
use std::time::Duration;

use super::handle::TaskHandle;
use super::slot::{claim, finish, resolve_unstarted, Slot, SlotApi, TaskOwner};
use crate::error::TaskError;

/// A process task not started yet: what to send to a worker, and how to resolve its handle.
pub(crate) struct RemoteJob {
    pub(crate) task: &'static str,
    pub(crate) input: Vec<u8>,
    /// The task's own time limit, counted from when it is sent to a worker: past it the worker is
    /// killed and replaced and the task resolves as [`TaskError::TimedOut`].
    pub(crate) timeout: Option<Duration>,
    pub(crate) done: Box<dyn RemoteDone>,
}

/// The parent's side of one process task. Dropping it unresolved resolves the handle (cancelled,
/// or the owner's refusal), so no waiter can sleep forever.
pub(crate) trait RemoteDone: Send {
    /// Queued → running. `false` if it was cancelled first or its owner refuses it now (then it
    /// is already resolved and must not be sent).
    fn start(&mut self) -> bool;
    /// Resolves a started task with the worker's serialized output, or what ended it.
    fn finish(self: Box<Self>, outcome: Result<Vec<u8>, TaskError>);
    /// Resolves the task with `error`, whether or not it started.
    fn fail(self: Box<Self>, error: TaskError);
}

/// Resolves a process task's slot: decodes the output into `T`.
pub(crate) struct RemoteCompleter<T> {
    slot: Option<Arc<dyn SlotApi<T>>>,
    started: bool,
    task: &'static str,
    decode: fn(&[u8]) -> Result<T, String>,
}

impl<T> RemoteCompleter<T> {
    /// The completer of the queued process task in `slot`.
    pub(super) fn new(slot: Arc<dyn SlotApi<T>>, task: &'static str, decode: fn(&[u8]) -> Result<T, String>) -> Self {
        RemoteCompleter { slot: Some(slot), started: false, task, decode }
    }
}

/// A fresh queued process task: the handle for the caller and its completer.
pub(crate) fn remote_pair<T: Send + 'static>(
    owner: Arc<dyn TaskOwner>,
    tag: u64,
    task: &'static str,
    decode: fn(&[u8]) -> Result<T, String>,
) -> (TaskHandle<T>, RemoteCompleter<T>) {
    let slot: Arc<dyn SlotApi<T>> = Arc::new(Slot::remote(owner, tag));
    (TaskHandle::new(Arc::clone(&slot)), RemoteCompleter::new(slot, task, decode))
}

impl<T: Send + 'static> RemoteDone for RemoteCompleter<T> {
    fn start(&mut self) -> bool {
        let Some(slot) = &self.slot else { return false };
        let core = slot.core();
        if !claim(core) {
            self.slot = None; // a canceller resolved it
            return false;
        }
        if let Some(refusal) = core.owner.refuse() {
            finish(core, Err(refusal));
            self.slot = None;
            return false;
        }
        self.started = true;
        true
    }

    fn finish(mut self: Box<Self>, outcome: Result<Vec<u8>, TaskError>) {
        if let Some(slot) = self.slot.take() {
            let task = self.task;
            let outcome = outcome.and_then(|bytes| {
                (self.decode)(&bytes).map_err(|message| TaskError::InvalidOutput { task: task.to_owned(), message })
            });
            if self.started {
                finish(slot.core(), outcome);
            } else {
                resolve_unstarted(slot.core(), outcome.err().unwrap_or(TaskError::Cancelled));
            }
        }
    }

    fn fail(mut self: Box<Self>, error: TaskError) {
        if let Some(slot) = self.slot.take() {
            if self.started {
                finish(slot.core(), Err(error));
            } else {
                resolve_unstarted(slot.core(), error);
            }
        }
    }
}

impl<T> Drop for RemoteCompleter<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let core = slot.core();
            if self.started {
                finish(core, Err(TaskError::Cancelled));
            } else {
                resolve_unstarted(core, core.owner.refuse().unwrap_or(TaskError::Cancelled));
            }
        }
    }
}
