//! [`TaskHandle`]: the caller's side of one submitted task, and its one-shot completion slot.
//!
//! A task is one allocation (the slot) shared by the handle and the job. The job reaches its
//! lease through the slot's `TaskOwner`, so submitting clones one `Arc`, not two. A grinder job
//! keeps its closure in the same allocation (`job_pair`); the handle sees either kind through
//! the small `SlotApi` trait.
//!
//! One concept per file, imports acyclic (each line imports only lines above it, plus `error` and
//! `util`):
//! - `slot`: the completion slot and how it resolves (claim, finish, publish), with its
//!   completion notification (a waker and callbacks, fired once after publishing, no lock
//!   held), the `TaskOwner` and `QueuedTask` traits, `Resolution`;
//! - `handle`: [`TaskHandle`]: its waits, `on_complete`, `register_waker`, `wait_finished`, `try_take`;
//! - `completer`: closure tasks submitted through a lease (`task_pair`, `Completer`);
//! - `remote`: process tasks, the parent's side (`RemoteJob`, `RemoteDone`, `remote_pair`);
//! - `job`: grinder jobs, closures and process tasks (`job_pair`, `remote_job_pair`,
//!   `PendingJob`).
//!
//! This file only declares and re-exports; no child imports from it.

mod completer;
mod handle;
mod job;
mod remote;
mod slot;

pub(crate) use completer::task_pair;
pub use handle::TaskHandle;
pub(crate) use job::{job_pair, remote_job_pair, PendingJob};
pub(crate) use remote::{remote_pair, RemoteDone, RemoteJob};
pub(crate) use slot::{QueuedTask, Resolution, TaskOwner};

#[cfg(test)]
mod tests;
