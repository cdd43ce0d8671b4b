//! Grinder jobs: a job that owns its closure in the same allocation as its slot ([`job_pair`]),
//! a job that is a registered process task waiting to be sent ([`remote_job_pair`]), and
//! [`PendingJob`], a job not run yet, whatever its kind.
//!
//! A process-task job lives here rather than in `remote` so that the dependency runs one way:
//! grinder jobs build on process tasks (they turn into a [`RemoteJob`]), never the reverse.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::handle::TaskHandle;
use super::remote::{RemoteCompleter, RemoteJob};
use super::slot::{claim, finish, queued_through_slot, run_claimed, QueuedTask, Resolution, Slot, SlotApi, TaskOwner};
use crate::error::TaskError;

/// A slot that also holds its job's closure until the job runs: one allocation per grinder job.
struct WithJob<T, F> {
    slot: Slot<T>,
    job: Mutex<Option<F>>,
}

impl<T: Send + 'static, F: Send + 'static> SlotApi<T> for WithJob<T, F> {
    fn core(&self) -> &Slot<T> {
        &self.slot
    }

    fn queued(self: Arc<Self>) -> Arc<dyn QueuedTask> {
        self
    }
}

queued_through_slot!([T: Send, F: Send] WithJob<T, F>);

/// A job that owns its closure (a grinder job): run it, or fail it without running.
pub(crate) trait RunJob: Send + Sync {
    fn run(&self) -> Resolution;
    fn fail(&self, error: TaskError);
    fn queued(self: Arc<Self>) -> Arc<dyn QueuedTask>;
    /// A process task's request, for a process pool to send (`None` for closures, or once taken).
    fn take_remote(self: Arc<Self>) -> Option<RemoteJob>;
}

impl<T: Send + 'static, F: FnOnce() -> T + Send + 'static> RunJob for WithJob<T, F> {
    fn run(&self) -> Resolution {
        if !claim(&self.slot) {
            return Resolution::Cancelled;
        }
        let f = self.job.lock().take().expect("a job's closure is taken once, by whoever claims it");
        run_claimed(&self.slot, f)
    }

    fn fail(&self, error: TaskError) {
        if claim(&self.slot) {
            self.job.lock().take();
            finish(&self.slot, Err(error));
        }
    }

    fn queued(self: Arc<Self>) -> Arc<dyn QueuedTask> {
        self
    }

    fn take_remote(self: Arc<Self>) -> Option<RemoteJob> {
        None
    }
}

/// A grinder job that is a registered process task: its serialized request waits in the same
/// allocation as its slot until a process pool takes it.
struct RemoteItem<T> {
    slot: Slot<T>,
    input: Mutex<Option<Vec<u8>>>,
    task: &'static str,
    /// The task's own time limit (see `RemoteJob::timeout`).
    timeout: Option<Duration>,
    decode: fn(&[u8]) -> Result<T, String>,
}

impl<T: Send + 'static> SlotApi<T> for RemoteItem<T> {
    fn core(&self) -> &Slot<T> {
        &self.slot
    }

    fn queued(self: Arc<Self>) -> Arc<dyn QueuedTask> {
        self
    }
}

queued_through_slot!([T: Send] RemoteItem<T>);

impl<T: Send + 'static> RunJob for RemoteItem<T> {
    /// Run in this process (a thread-pool lease or a custom lease source): a registered task
    /// needs a process pool, so it resolves with [`TaskError::WrongBackend`].
    fn run(&self) -> Resolution {
        if !claim(&self.slot) {
            return Resolution::Cancelled;
        }
        self.input.lock().take();
        finish(&self.slot, Err(TaskError::WrongBackend { task: self.task.to_owned() }))
    }

    fn fail(&self, error: TaskError) {
        if claim(&self.slot) {
            self.input.lock().take();
            finish(&self.slot, Err(error));
        }
    }

    fn queued(self: Arc<Self>) -> Arc<dyn QueuedTask> {
        self
    }

    fn take_remote(self: Arc<Self>) -> Option<RemoteJob> {
        let input = self.input.lock().take()?;
        let (task, timeout, decode) = (self.task, self.timeout, self.decode);
        let done = RemoteCompleter::new(self as Arc<dyn SlotApi<T>>, task, decode);
        Some(RemoteJob { task, input, timeout, done: Box::new(done) })
    }
}

/// A fresh queued grinder job for a registered process task.
pub(crate) fn remote_job_pair<T: Send + 'static>(
    owner: Arc<dyn TaskOwner>,
    tag: u64,
    task: &'static str,
    input: Vec<u8>,
    timeout: Option<Duration>,
    decode: fn(&[u8]) -> Result<T, String>,
) -> (TaskHandle<T>, PendingJob) {
    let input = Mutex::new(Some(input));
    let item = Arc::new(RemoteItem { slot: Slot::remote(owner, tag), input, task, timeout, decode });
    let handle = TaskHandle::new(Arc::clone(&item) as Arc<dyn SlotApi<T>>);
    (handle, PendingJob::new(item))
}

/// A grinder job not run yet. Dropping it resolves the job as cancelled (with accounting).
pub(crate) struct PendingJob(Option<Arc<dyn RunJob>>);

impl PendingJob {
    /// A pending job for `job` (a fresh grinder job of any kind).
    fn new(job: Arc<dyn RunJob>) -> PendingJob {
        PendingJob(Some(job))
    }

    pub(crate) fn run(mut self) -> Resolution {
        self.0.take().map_or(Resolution::Cancelled, |job| job.run())
    }

    pub(crate) fn fail(mut self, error: TaskError) {
        if let Some(job) = self.0.take() {
            job.fail(error);
        }
    }

    /// The job as a process request, if it is a registered task; else the job back.
    pub(crate) fn into_remote(mut self) -> Result<RemoteJob, PendingJob> {
        let job = self.0.take().expect("pending job already consumed");
        match Arc::clone(&job).take_remote() {
            Some(remote) => Ok(remote),
            None => {
                self.0 = Some(job);
                Err(self)
            }
        }
    }

    /// The job seen as a queued task, to cancel it while it waits in a pool's queue.
    pub(crate) fn as_queued(&self) -> Arc<dyn QueuedTask> {
        Arc::clone(self.0.as_ref().expect("pending job already consumed")).queued()
    }
}

impl Drop for PendingJob {
    fn drop(&mut self) {
        if let Some(job) = self.0.take() {
            job.fail(TaskError::Cancelled);
        }
    }
}

/// A fresh queued grinder job: the handle for the caller and the job (closure included) in one
/// allocation.
pub(crate) fn job_pair<T, F>(owner: Arc<dyn TaskOwner>, tag: u64, f: F) -> (TaskHandle<T>, PendingJob)
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let job = Arc::new(WithJob { slot: Slot::new(owner, tag), job: Mutex::new(Some(f)) });
    let handle = TaskHandle::new(Arc::clone(&job) as Arc<dyn SlotApi<T>>);
    (handle, PendingJob::new(job))
}
