//! [`ExecutorLease`], the time-bounded right to use one pool, and [`LeasedExecutor`], the proxy
//! that submits to it and has no way to shut the pool down.

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::backend::kind::ExecutorBackend;
use crate::backend::process::{decode, Task};
use crate::cell::{LeaseCell, Status};
use crate::error::{LeaseError, TaskError};
use crate::ids::LeaseId;
use crate::manager::shared::{LeaseRef, ManagedPool, Shared};
use crate::state::lease_state;
use crate::stats::LeaseState;
use crate::task::{remote_pair, task_pair, QueuedTask, RemoteDone, RemoteJob, Resolution, TaskHandle, TaskOwner};

/// A time-bounded right to submit work to exactly one pool.
///
/// Owned, `Send + Sync + 'static`: it can move to another thread, into an FFI handle or an async
/// task. Dropping it releases it; so does [`release`](Self::release). If work submitted through
/// it is still pending, the release *drains*: new submissions are refused at once and the pool
/// returns to the manager only when that work has finished.
///
/// ```
/// use std::time::Duration;
/// use leasepool::{AcquireOptions, LeaseState, LeasedExecutorManager};
///
/// let manager = LeasedExecutorManager::builder().max_pools(1).workers_per_pool(2).build()?;
/// manager.start()?;
/// let lease = manager.acquire(AcquireOptions::new().owner("docs").timeout(Duration::from_secs(5)))?;
/// assert_eq!(lease.owner(), Some("docs"));
/// assert_eq!(lease.state(), LeaseState::Active);
/// assert_eq!(lease.run(|| 2 + 2)?, 4);
/// lease.release();
/// assert_eq!(manager.available_count(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ExecutorLease {
    inner: LeaseRef,
}

/// The submit-only proxy of a lease. Cloneable and thread-safe; it has no shutdown method.
/// Submissions fail once the lease is released, revoked or its manager stopped.
#[derive(Clone)]
pub struct LeasedExecutor {
    inner: LeaseRef,
}

impl ExecutorLease {
    /// Wraps the lease the manager granted (one shared allocation: facts, pool, status word).
    pub(crate) fn new(inner: LeaseRef) -> Self {
        ExecutorLease { inner }
    }

    /// The shared lease record.
    pub(crate) fn cell(&self) -> &LeaseRef {
        &self.inner
    }

    /// The lease id.
    pub fn id(&self) -> LeaseId {
        self.inner.info.id
    }

    /// The owner label given at acquire.
    pub fn owner(&self) -> Option<&str> {
        self.inner.info.owner.as_deref()
    }

    /// The soft lifetime (including renewals).
    pub fn lease_duration(&self) -> Duration {
        self.soft_expires_at() - self.inner.info.leased_at
    }

    /// Time between soft and hard expiry.
    pub fn grace(&self) -> Duration {
        self.inner.info.grace
    }

    /// When the lease was granted.
    pub fn leased_at(&self) -> Instant {
        self.inner.info.leased_at
    }

    /// `leased_at + lease_duration`: informational (logged once, shown in stats).
    pub fn soft_expires_at(&self) -> Instant {
        self.inner.soft_expires_at()
    }

    /// `soft_expires_at + grace`: from here on the lease is revoked.
    pub fn hard_expires_at(&self) -> Instant {
        self.inner.hard_expires_at()
    }

    /// Where the lease is now.
    pub fn state(&self) -> LeaseState {
        lease_state(&self.inner, Instant::now())
    }

    /// Sequence number of the leased pool (the `{seq}` in its thread names `{prefix}-{seq}_{i}`).
    pub fn pool_seq(&self) -> u64 {
        self.inner.pool.pool.seq()
    }

    /// The submit-only proxy. Clones share this lease.
    pub fn executor(&self) -> LeasedExecutor {
        LeasedExecutor { inner: Arc::clone(&self.inner) }
    }

    /// The backend of the leased pool.
    pub fn backend(&self) -> ExecutorBackend {
        backend_of(&self.inner)
    }

    /// Worker process ids of the leased pool (empty for a thread pool).
    pub fn worker_pids(&self) -> Vec<u32> {
        self.inner.pool.pool.pids()
    }

    /// Runs the registered `task` on a worker process of the leased pool and blocks for its
    /// result (process backend; see [`LeasedExecutor::submit_task`]).
    pub fn run_task<I, O>(&self, task: &Task<I, O>, input: I) -> Result<O, TaskError>
    where
        I: Serialize + DeserializeOwned,
        O: DeserializeOwned + Send + 'static,
    {
        submit_task(&self.inner, task, input, None)?.wait()
    }

    /// Runs the registered `task` with a time limit of its own and blocks for its result: past
    /// `timeout` (counted from when a worker gets it) its worker is killed and replaced and the
    /// result is [`TaskError::TimedOut`] (process backend; see
    /// [`LeasedExecutor::submit_task_timeout`]).
    pub fn run_task_timeout<I, O>(&self, task: &Task<I, O>, input: I, timeout: Duration) -> Result<O, TaskError>
    where
        I: Serialize + DeserializeOwned,
        O: DeserializeOwned + Send + 'static,
    {
        submit_task(&self.inner, task, input, Some(timeout))?.wait()
    }

    /// Runs `f` on the leased pool and blocks for its result (thread backend; see
    /// [`LeasedExecutor::submit`]).
    pub fn run<T, F>(&self, f: F) -> Result<T, TaskError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        submit(&self.inner, f)?.wait()
    }

    /// Extends both deadlines by `extra`. Works while the lease is active, in grace or draining;
    /// the checker honours the new deadline. Returns the new hard expiry.
    pub fn renew(&self, extra: Duration) -> Result<Instant, LeaseError> {
        self.inner.manager().renew(&self.inner, extra, |status| refusal(&self.inner, status))
    }

    /// Releases the lease (also done by `Drop`) and returns a [`Drain`] that reports the end of
    /// the drain. Harmless when already released or revoked.
    ///
    /// If tasks submitted through the lease are still pending, the lease *drains*: new
    /// submissions are refused at once, [`Drain::state`] is [`LeaseState::Draining`], the
    /// lease can still be renewed ([`Drain::renew`]) so that it is not revoked mid-drain, and
    /// the pool goes back to the manager when the last pending task finishes. Dropping the
    /// `Drain` changes nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use leasepool::{AcquireOptions, LeaseState, LeasedExecutorManager};
    ///
    /// let manager = LeasedExecutorManager::builder().max_pools(1).workers_per_pool(1).build()?;
    /// manager.start()?;
    /// let lease = manager.acquire(AcquireOptions::new())?;
    /// let (go, gate) = std::sync::mpsc::channel::<()>();
    /// let task = lease.executor().submit(move || gate.recv().is_ok())?;
    /// let drain = lease.release();
    /// assert_eq!(drain.state(), LeaseState::Draining);
    /// drain.renew(Duration::from_secs(60))?; // renewing works while draining
    /// go.send(()).unwrap();
    /// drain.wait(); // the last task finished and the pool went back
    /// assert_eq!(drain.state(), LeaseState::Released);
    /// assert_eq!(task.wait()?, true);
    /// assert_eq!(manager.available_count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(self) -> Drain {
        let inner = Arc::clone(&self.inner);
        drop(self);
        Drain { inner }
    }

    fn release_now(&self) {
        self.inner.manager().release(&self.inner);
    }
}

/// The end of a released lease's drain (see [`ExecutorLease::release`]): observe it, wait for
/// it, be told when it happens, or renew the lease while it drains.
///
/// The drain is over once the lease is *over for its pool*: its last pending task finished and
/// the pool went back to the manager (or was retired), or the lease ended (revoked at hard
/// expiry, its pool broke, the manager stopped), which resolves its queued tasks. `Send + Sync`,
/// cheap to keep.
pub struct Drain {
    inner: LeaseRef,
}

impl Drain {
    /// The released lease.
    pub fn lease_id(&self) -> LeaseId {
        self.inner.info.id
    }

    /// Where the lease is now: [`LeaseState::Draining`] while tasks are pending, then
    /// [`LeaseState::Released`] (or the state that ended it).
    pub fn state(&self) -> LeaseState {
        lease_state(&self.inner, Instant::now())
    }

    /// Tasks submitted through the lease that have not resolved yet.
    pub fn pending(&self) -> u64 {
        self.inner.pending()
    }

    /// Whether the drain is over (the pool went back, or the lease ended).
    pub fn is_finished(&self) -> bool {
        self.inner.is_drained()
    }

    /// Blocks until the drain is over.
    pub fn wait(&self) {
        self.inner.wait_drained(None);
    }

    /// Blocks until the drain is over or `timeout` passes; returns whether it is over.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.inner.wait_drained(Instant::now().checked_add(timeout))
    }

    /// Runs `f` once when the drain is over: on the thread that ends it, or at once on this
    /// thread if it already is. Never called with a library lock held.
    pub fn on_finished(&self, f: impl FnOnce() + Send + 'static) {
        self.inner.on_drained(Box::new(f));
    }

    /// Extends the draining lease's deadlines by `extra` (so that slow pending work is not
    /// revoked at hard expiry). Fails once the drain is over.
    pub fn renew(&self, extra: Duration) -> Result<Instant, LeaseError> {
        self.inner.manager().renew(&self.inner, extra, |status| refusal(&self.inner, status))
    }
}

impl fmt::Debug for Drain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain").field("lease_id", &self.lease_id()).field("state", &self.state()).finish()
    }
}

impl Drop for ExecutorLease {
    fn drop(&mut self) {
        self.release_now();
    }
}

impl LeasedExecutor {
    /// Queues `f` on the leased pool and returns its handle at once.
    ///
    /// Fails with [`LeaseError::Released`] once the lease is released (even while it drains),
    /// [`LeaseError::Expired`] past hard expiry, [`LeaseError::ManagerStopped`] after `stop`,
    /// [`LeaseError::PoolBroken`] once its pool broke, and [`LeaseError::WrongBackend`] on a
    /// process pool (closures cannot cross a process boundary: use
    /// [`submit_task`](Self::submit_task)).
    pub fn submit<T, F>(&self, f: F) -> Result<TaskHandle<T>, LeaseError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        submit(&self.inner, f)
    }

    /// Queues the registered `task` with `input` on a worker process of the leased pool and
    /// returns its handle at once (process backend).
    ///
    /// Refused like [`submit`](Self::submit), and with [`LeaseError::WrongBackend`] on a thread
    /// pool (a deliberate, typed refusal: the task's function is in this process, but a lease on
    /// a thread pool runs closures; wrap the call in one, `submit(move || TASK.call(input))`).
    /// Failures that belong to this task alone resolve its handle: input that does not
    /// serialize ([`TaskError::InvalidInput`]), a name the worker does not know
    /// ([`TaskError::UnknownTask`]), output that does not deserialize
    /// ([`TaskError::InvalidOutput`]), a panic ([`TaskError::Panicked`], the worker lives on), the
    /// worker dying ([`TaskError::WorkerCrashed`], with pid and status) or being terminated at
    /// revocation ([`TaskError::Revoked`]).
    ///
    /// ```no_run
    /// use leasepool::{AcquireOptions, ExecutorBackend, LeasedExecutorManager, Task, TaskRegistry};
    ///
    /// fn square(n: u64) -> u64 { n * n }
    /// static SQUARE: Task<u64, u64> = Task::new("square", square);
    ///
    /// fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     leasepool::run_if_worker(&TaskRegistry::new().register(&SQUARE));
    ///     let manager = LeasedExecutorManager::builder()
    ///         .backend(ExecutorBackend::Process)
    ///         .max_pools(1)
    ///         .workers_per_pool(2)
    ///         .build()?;
    ///     manager.start()?;
    ///     let lease = manager.acquire(AcquireOptions::new())?;
    ///     let handle = lease.executor().submit_task(&SQUARE, 12)?;
    ///     assert_eq!(handle.wait()?, 144);
    ///     assert_eq!(lease.run_task(&SQUARE, 3)?, 9);
    ///     Ok(())
    /// }
    /// ```
    pub fn submit_task<I, O>(&self, task: &Task<I, O>, input: I) -> Result<TaskHandle<O>, LeaseError>
    where
        I: Serialize + DeserializeOwned,
        O: DeserializeOwned + Send + 'static,
    {
        submit_task(&self.inner, task, input, None)
    }

    /// Like [`submit_task`](Self::submit_task), with a time limit of the task's own: if the task
    /// has not finished `timeout` after it was sent to a worker, the worker process running it is
    /// killed (`SIGKILL`: a task past its deadline is presumed stuck, so there is no grace), a
    /// fresh worker takes its place, and the handle resolves as [`TaskError::TimedOut`].
    ///
    /// - *The clock starts when a worker gets the task*, not at this call: time spent queued
    ///   behind the lease's other tasks does not count, so a timeout bounds the task's own run.
    /// - *Only that task is affected.* The pool is not broken: the lease stays active, its queued
    ///   tasks wait for the replacement (or another worker) and its other workers carry on.
    ///   `stats().tasks.timed_out` counts these tasks.
    /// - *A task that finishes in time is unaffected*, and its deadline, when it passes later,
    ///   touches nothing. A result that arrives after the deadline fired is discarded: the task
    ///   resolves as timed out.
    /// - A zero timeout expires as soon as the task reaches its worker; a timeout too large to
    ///   be a deadline never expires.
    ///
    /// The deadlines of every pool are kept by one thread (`leasepool-deadlines`), started on
    /// first use. This is unlike [`TaskHandle::wait_timeout`], which only stops *waiting* and
    /// leaves the task running; procspawn's `join_timeout` also kills the process.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use leasepool::{AcquireOptions, ExecutorBackend, LeasedExecutorManager, Task, TaskError, TaskRegistry};
    ///
    /// fn spin(n: u64) -> u64 { if n == 0 { loop { std::hint::spin_loop() } } else { n } }
    /// static SPIN: Task<u64, u64> = Task::new("spin", spin);
    ///
    /// fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     leasepool::run_if_worker(&TaskRegistry::new().register(&SPIN));
    ///     let manager = LeasedExecutorManager::builder()
    ///         .backend(ExecutorBackend::Process)
    ///         .max_pools(1)
    ///         .workers_per_pool(1)
    ///         .build()?;
    ///     manager.start()?;
    ///     let lease = manager.acquire(AcquireOptions::new())?;
    ///     let stuck = lease.executor().submit_task_timeout(&SPIN, 0, Duration::from_millis(300))?;
    ///     let err = stuck.wait().unwrap_err();
    ///     assert!(matches!(err, TaskError::TimedOut { timeout, .. } if timeout == Duration::from_millis(300)));
    ///     // The lease carries on, on a fresh worker.
    ///     assert_eq!(lease.run_task_timeout(&SPIN, 7, Duration::from_secs(5))?, 7);
    ///     Ok(())
    /// }
    /// ```
    pub fn submit_task_timeout<I, O>(
        &self,
        task: &Task<I, O>,
        input: I,
        timeout: Duration,
    ) -> Result<TaskHandle<O>, LeaseError>
    where
        I: Serialize + DeserializeOwned,
        O: DeserializeOwned + Send + 'static,
    {
        submit_task(&self.inner, task, input, Some(timeout))
    }

    /// The lease this proxy submits to.
    pub fn lease_id(&self) -> LeaseId {
        self.inner.info.id
    }
}

/// The error for a lease that refuses work because of `status`.
pub(crate) fn refusal(lease: &LeaseRef, status: Status) -> LeaseError {
    let lease_id = lease.info.id;
    match status {
        Status::Active | Status::Released => LeaseError::Released { lease_id },
        Status::Revoked => LeaseError::Expired { lease_id },
        Status::Broken => LeaseError::PoolBroken { lease_id, reason: broken_reason(lease) },
        Status::Stopped => LeaseError::ManagerStopped { lease_id },
    }
}

fn broken_reason(lease: &LeaseCell<Arc<ManagedPool>>) -> String {
    lease.pool.pool.broken_reason().unwrap_or_else(|| BROKEN.to_owned())
}

fn backend_of(lease: &LeaseRef) -> ExecutorBackend {
    lease.pool.pool.kind()
}

impl LeaseCell<Arc<ManagedPool>> {
    /// The manager that granted this lease.
    pub(crate) fn manager(&self) -> &Arc<Shared> {
        &self.pool.manager
    }
}

fn submit<T, F>(lease: &LeaseRef, f: F) -> Result<TaskHandle<T>, LeaseError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let pool = &lease.pool.pool;
    if pool.kind() != ExecutorBackend::Thread {
        return Err(LeaseError::WrongBackend { lease_id: lease.info.id, backend: pool.kind() });
    }
    enter(lease)?;
    let (handle, completer) = task_pair(Arc::clone(lease) as Arc<dyn TaskOwner>, 0);
    if let Err(job) = pool.spawn(move || {
        completer.run(f);
    }) {
        // The pool was shut down between `enter` and here, which only happens after the lease
        // was ended: running the job here resolves it as cancelled, with accounting.
        job();
    }
    Ok(handle)
}

fn submit_task<I, O>(
    lease: &LeaseRef,
    task: &Task<I, O>,
    input: I,
    timeout: Option<Duration>,
) -> Result<TaskHandle<O>, LeaseError>
where
    I: Serialize + DeserializeOwned,
    O: DeserializeOwned + Send + 'static,
{
    let pool = &lease.pool.pool;
    if pool.kind() != ExecutorBackend::Process {
        return Err(LeaseError::WrongBackend { lease_id: lease.info.id, backend: pool.kind() });
    }
    enter(lease)?;
    let (handle, completer) = remote_pair(Arc::clone(lease) as Arc<dyn TaskOwner>, 0, task.name(), decode::<O>);
    let done: Box<dyn RemoteDone> = Box::new(completer);
    match task.encode_request(&input) {
        // A pool that closed meanwhile resolves the task at once (cancelled, or pool broken).
        Ok(input) => pool.submit_remote(RemoteJob { task: task.name(), input, timeout, done }),
        Err(message) => done.fail(TaskError::InvalidInput { task: task.name().to_owned(), message }),
    }
    Ok(handle)
}

/// Checks that the lease takes work and counts one pending task, or says why not.
fn enter(lease: &LeaseRef) -> Result<(), LeaseError> {
    if Instant::now() >= lease.hard_expires_at() && lease.status() == Status::Active {
        lease.manager().end_lease(lease.info.id, Status::Revoked);
    }
    if let Err((status, finalize)) = lease.enter() {
        if finalize {
            lease.manager().finalize(lease);
        }
        return Err(refusal(lease, status));
    }
    lease.pool.tasks.submitted.fetch_add(1, Relaxed);
    Ok(())
}

/// A pending-task slot taken on a lease (see [`try_enter`]): spawning it runs a job with the
/// lease's task accounting but without a `TaskHandle` of its own (the job resolves its own
/// result, as the grinder's items do).
pub(crate) struct Entered(LeaseRef);

/// Takes one pending-task slot on the lease, or says why the lease refuses work.
pub(crate) fn try_enter(lease: &LeaseRef) -> Result<Entered, LeaseError> {
    enter(lease)?;
    Ok(Entered(Arc::clone(lease)))
}

impl Entered {
    /// Runs `job(true)` on the leased thread pool, or `job(false)` if the lease ended before the
    /// job started; the job reports how it resolved.
    pub(crate) fn spawn(self, job: impl FnOnce(bool) -> Resolution + Send + 'static) {
        let lease = self.0;
        let pool = Arc::clone(&lease.pool);
        let run = move || {
            let resolution = job(lease.ended().is_none());
            lease.account(resolution, 0);
        };
        if let Err(run) = pool.pool.spawn(run) {
            run();
        }
    }

    /// Sends a process task on the leased process pool; `after` runs once it resolved (or was
    /// refused), then the slot is accounted.
    pub(crate) fn send(self, job: RemoteJob, after: impl FnOnce() + Send + 'static) {
        let lease = self.0;
        let RemoteJob { task, input, timeout, done } = job;
        let done = Box::new(Accounted { inner: Some(done), after: Some(Box::new(after)), lease: Arc::clone(&lease) });
        lease.pool.pool.submit_remote(RemoteJob { task, input, timeout, done });
    }
}

/// A process task sent through an [`Entered`] slot: resolves the task, runs `after`, then
/// accounts for the slot on the lease.
struct Accounted {
    inner: Option<Box<dyn RemoteDone>>,
    after: Option<Box<dyn FnOnce() + Send>>,
    lease: LeaseRef,
}

impl RemoteDone for Accounted {
    fn start(&mut self) -> bool {
        self.inner.as_mut().is_some_and(|inner| inner.start())
    }

    fn finish(mut self: Box<Self>, outcome: Result<Vec<u8>, TaskError>) {
        if let Some(inner) = self.inner.take() {
            inner.finish(outcome);
        }
    }

    fn fail(mut self: Box<Self>, error: TaskError) {
        if let Some(inner) = self.inner.take() {
            inner.fail(error);
        }
    }
}

impl Drop for Accounted {
    fn drop(&mut self) {
        let resolution = if self.inner.is_some() { Resolution::Cancelled } else { Resolution::Completed };
        drop(self.inner.take()); // resolves an unresolved task
        if let Some(after) = self.after.take() {
            after();
        }
        self.lease.account(resolution, 0);
    }
}

impl TaskOwner for LeaseCell<Arc<ManagedPool>> {
    fn refuse(&self) -> Option<TaskError> {
        match self.ended()? {
            Status::Broken => Some(TaskError::PoolBroken { reason: broken_reason(self) }),
            _ => Some(TaskError::Cancelled),
        }
    }

    fn account(&self, resolution: Resolution, _tag: u64) {
        let counters = &self.pool.tasks;
        let counter = match resolution {
            Resolution::Completed => &counters.completed,
            Resolution::Panicked => &counters.panicked,
            Resolution::Cancelled => &counters.cancelled,
            Resolution::PoolBroken | Resolution::Failed => &counters.broken,
            Resolution::TimedOut => &counters.timed_out,
        };
        counter.fetch_add(1, Relaxed);
        if self.leave() {
            self.manager().finalize(self);
        }
    }

    fn watch(&self, task: std::sync::Weak<dyn QueuedTask>) {
        self.track(task);
    }
}

const BROKEN: &str = "the lease's pool broke";

impl fmt::Debug for ExecutorLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutorLease")
            .field("id", &self.id())
            .field("owner", &self.owner())
            .field("state", &self.state())
            .field("pool_seq", &self.pool_seq())
            .finish()
    }
}

impl fmt::Debug for LeasedExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeasedExecutor").field("lease_id", &self.lease_id()).finish()
    }
}
