//! [`ExecutorLease`], the time-bounded right to use one pool, and [`LeasedExecutor`], the proxy
//! that submits to it and has no way to shut the pool down.

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cell::{LeaseCell, Status};
use crate::error::{LeaseError, TaskError};
use crate::manager::{LeaseRef, ManagedPool, Shared};
use crate::state::lease_state;
use crate::stats::LeaseState;
use crate::task::{task_pair, QueuedTask, Resolution, TaskHandle, TaskOwner};

/// A lease's identifier, unique within its manager (across restarts too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseId(pub(crate) u64);

impl LeaseId {
    /// The number behind the id.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lease-{}", self.0)
    }
}

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

    /// Runs `f` on the leased pool and blocks for its result.
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
        self.inner.manager().renew(&self.inner, extra)
    }

    /// Releases the lease (also done by `Drop`). Harmless when already released or revoked.
    pub fn release(self) {
        drop(self);
    }

    fn release_now(&self) {
        self.inner.manager().release(&self.inner);
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
    /// [`LeaseError::Expired`] past hard expiry, [`LeaseError::ManagerStopped`] after `stop`.
    pub fn submit<T, F>(&self, f: F) -> Result<TaskHandle<T>, LeaseError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        submit(&self.inner, f)
    }

    /// The lease this proxy submits to.
    pub fn lease_id(&self) -> LeaseId {
        self.inner.info.id
    }
}

/// The error for a lease that refuses work because of `status`.
pub(crate) fn refusal(lease_id: LeaseId, status: Status) -> LeaseError {
    match status {
        Status::Active | Status::Released => LeaseError::Released { lease_id },
        Status::Revoked => LeaseError::Expired { lease_id },
        Status::Broken => LeaseError::PoolBroken { lease_id, reason: BROKEN.to_owned() },
        Status::Stopped => LeaseError::ManagerStopped { lease_id },
    }
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
    enter(lease)?;
    let (handle, completer) = task_pair(Arc::clone(lease) as Arc<dyn TaskOwner>, 0);
    if let Err(job) = lease.pool.pool.spawn(move || {
        completer.run(f);
    }) {
        // The pool was shut down between `enter` and here, which only happens after the lease
        // was ended: running the job here resolves it as cancelled, with accounting.
        job();
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
            lease.manager().finalize(lease.info.id);
        }
        return Err(refusal(lease.info.id, status));
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
    /// Runs `job(true)` on the leased pool, or `job(false)` if the lease ended before the job
    /// started; the job reports how it resolved.
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
}

impl TaskOwner for LeaseCell<Arc<ManagedPool>> {
    fn refuse(&self) -> Option<TaskError> {
        match self.ended()? {
            Status::Broken => Some(TaskError::PoolBroken { reason: BROKEN.to_owned() }),
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
        };
        counter.fetch_add(1, Relaxed);
        if self.leave() {
            self.manager().finalize(self.info.id);
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
