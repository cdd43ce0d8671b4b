//! [`TaskFuture`]: awaiting a [`TaskHandle`] (`IntoFuture`), and the lease's `run_async` and
//! `run_task_async`.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::backend::process::Task;
use crate::error::TaskError;
use crate::lease::ExecutorLease;
use crate::task::TaskHandle;

/// The future of an awaited [`TaskHandle`], and of [`ExecutorLease::run_async`] and
/// [`ExecutorLease::run_task_async`]: resolves to the task's outcome (feature `async`).
///
/// It resolves however the task does: its value, its panic, [`TaskError::Cancelled`] (by
/// cancellation, lease revocation or manager stop), [`TaskError::PoolBroken`], a crashed
/// worker, ... Awaiting registers the task's waker (only the most recently registered one is
/// woken), and asks the lease to resolve a queued task at once if the lease is revoked or the
/// manager stops, as a blocking [`TaskHandle::wait`] does.
///
/// Dropping it does not cancel the task (as with a dropped handle), unless it was made with
/// [`cancel_on_drop`](Self::cancel_on_drop). `Send + 'static + Unpin`; polling it again after it
/// resolved panics.
///
/// ```
/// use std::future::IntoFuture;
/// use leasepool::{AcquireOptions, LeasedExecutorManager, TaskFuture};
///
/// let manager = LeasedExecutorManager::builder().max_pools(1).build()?;
/// manager.start()?;
/// let lease = manager.acquire(AcquireOptions::new())?;
/// let handle = lease.executor().submit(|| 2 + 2)?;
/// let future: TaskFuture<i32> = handle.into_future(); // what `handle.await` does
/// assert_eq!(futures::executor::block_on(future)?, 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless polled; dropping a TaskFuture does not cancel its task"]
pub struct TaskFuture<T: Send + 'static> {
    inner: Inner<T>,
    cancel_on_drop: bool,
}

enum Inner<T> {
    Waiting(TaskHandle<T>),
    /// The task was refused before it was queued (its lease refused work).
    Refused(TaskError),
    /// Resolved: polling again panics.
    Done,
}

impl<T: Send + 'static> TaskFuture<T> {
    fn refused(error: impl Into<TaskError>) -> Self {
        TaskFuture { inner: Inner::Refused(error.into()), cancel_on_drop: false }
    }

    /// Makes dropping this future before it resolves cancel the task if it has not started yet
    /// (as [`TaskHandle::cancel`] does; a running task finishes). Useful under `select!` or a
    /// runtime timeout, where an abandoned task should not run.
    ///
    /// ```
    /// use std::future::IntoFuture;
    /// use leasepool::{AcquireOptions, LeasedExecutorManager, TaskError};
    ///
    /// let manager = LeasedExecutorManager::builder().max_pools(1).workers_per_pool(1).build()?;
    /// manager.start()?;
    /// let lease = manager.acquire(AcquireOptions::new())?;
    /// let (go, gate) = std::sync::mpsc::channel::<()>();
    /// let busy = lease.executor().submit(move || gate.recv().is_ok())?; // occupies the worker
    /// let (ran, probe) = std::sync::mpsc::channel::<()>();
    /// let queued = lease.run_async(move || ran.send(()).unwrap()).cancel_on_drop();
    /// drop(queued); // never polled to completion: the queued task is cancelled
    /// go.send(()).unwrap();
    /// assert_eq!(busy.wait()?, true);
    /// assert!(probe.recv().is_err(), "the cancelled task never ran");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel_on_drop(mut self) -> Self {
        self.cancel_on_drop = true;
        self
    }
}

impl<T: Send + 'static> Future for TaskFuture<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outcome = match &mut self.inner {
            Inner::Waiting(handle) => {
                // Take, else register, else take again: an outcome published between the first
                // look and the registration is seen by the second look, not lost.
                match handle.try_take() {
                    Some(outcome) => outcome,
                    None => {
                        handle.register_waker(cx.waker());
                        match handle.try_take() {
                            Some(outcome) => outcome,
                            None => return Poll::Pending,
                        }
                    }
                }
            }
            Inner::Refused(_) => match std::mem::replace(&mut self.inner, Inner::Done) {
                Inner::Refused(error) => Err(error),
                _ => unreachable!(),
            },
            Inner::Done => panic!("`TaskFuture` polled after completion"),
        };
        self.inner = Inner::Done;
        Poll::Ready(outcome)
    }
}

impl<T: Send + 'static> Drop for TaskFuture<T> {
    fn drop(&mut self) {
        if let (true, Inner::Waiting(handle)) = (self.cancel_on_drop, &self.inner) {
            handle.cancel();
        }
    }
}

/// `handle.await`: waits for the task without blocking a thread (feature `async`). See
/// [`TaskFuture`].
///
/// ```
/// use leasepool::{AcquireOptions, LeasedExecutorManager};
///
/// let manager = LeasedExecutorManager::builder().max_pools(1).build()?;
/// manager.start()?;
/// let lease = manager.acquire(AcquireOptions::new())?;
/// let handles: Vec<_> = (1..=4u64).map(|i| lease.executor().submit(move || i * i)).collect::<Result<_, _>>()?;
/// let sum = futures::executor::block_on(async {
///     let mut sum = 0;
///     for handle in handles {
///         sum += handle.await?;
///     }
///     Ok::<u64, leasepool::TaskError>(sum)
/// })?;
/// assert_eq!(sum, 30);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl<T: Send + 'static> IntoFuture for TaskHandle<T> {
    type Output = Result<T, TaskError>;
    type IntoFuture = TaskFuture<T>;

    fn into_future(self) -> TaskFuture<T> {
        TaskFuture { inner: Inner::Waiting(self), cancel_on_drop: false }
    }
}

impl ExecutorLease {
    /// Runs `f` on the leased pool and awaits its result without blocking a thread: the async
    /// form of [`run`](Self::run) (thread backend; feature `async`).
    ///
    /// The task is submitted now, when `run_async` is called (not at the first poll), so it runs
    /// even if the future is never awaited; a refusal by the lease resolves the future with
    /// [`TaskError::Rejected`].
    ///
    /// ```
    /// use leasepool::{AcquireOptions, LeasedExecutorManager};
    ///
    /// let manager = LeasedExecutorManager::builder().max_pools(1).build()?;
    /// manager.start()?;
    /// let n = futures::executor::block_on(async {
    ///     let lease = manager.acquire_async(AcquireOptions::new()).await?;
    ///     let n = lease.run_async(|| (1..=10u64).product::<u64>()).await?;
    ///     Ok::<u64, Box<dyn std::error::Error>>(n)
    /// })?;
    /// assert_eq!(n, 3_628_800);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_async<T, F>(&self, f: F) -> TaskFuture<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.executor().submit(f) {
            Ok(handle) => handle.into_future(),
            Err(error) => TaskFuture::refused(error),
        }
    }

    /// Runs the registered `task` on a worker process of the leased pool and awaits its result
    /// without blocking a thread: the async form of [`run_task`](Self::run_task) (process
    /// backend; feature `async`). Submitted at once, like [`run_async`](Self::run_async).
    ///
    /// ```no_run
    /// use leasepool::{AcquireOptions, ExecutorBackend, LeasedExecutorManager, Task, TaskRegistry};
    ///
    /// fn square(n: u64) -> u64 { n * n }
    /// static SQUARE: Task<u64, u64> = Task::new("square", square);
    ///
    /// fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     leasepool::run_if_worker(&TaskRegistry::new().register(&SQUARE));
    ///     let manager = LeasedExecutorManager::builder().backend(ExecutorBackend::Process).max_pools(1).build()?;
    ///     manager.start()?;
    ///     let out = futures::executor::block_on(async {
    ///         let lease = manager.acquire_async(AcquireOptions::new()).await?;
    ///         Ok::<u64, Box<dyn std::error::Error>>(lease.run_task_async(&SQUARE, 7).await?)
    ///     })?;
    ///     assert_eq!(out, 49);
    ///     Ok(())
    /// }
    /// ```
    pub fn run_task_async<I, O>(&self, task: &Task<I, O>, input: I) -> TaskFuture<O>
    where
        I: Serialize + DeserializeOwned,
        O: DeserializeOwned + Send + 'static,
    {
        match self.executor().submit_task(task, input) {
            Ok(handle) => handle.into_future(),
            Err(error) => TaskFuture::refused(error),
        }
    }
}

impl<T: Send + 'static> fmt::Debug for TaskFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("TaskFuture");
        match &self.inner {
            Inner::Waiting(handle) => s.field("handle", handle),
            Inner::Refused(error) => s.field("refused", error),
            Inner::Done => s.field("state", &"done"),
        };
        s.field("cancel_on_drop", &self.cancel_on_drop).finish()
    }
}
