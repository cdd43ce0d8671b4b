//! [`LeasedExecutorManager`]: owns the pools, the state lock and the checker thread.
//!
//! Every operation follows one pattern: take the state lock, ask the state machine
//! (`state.rs`) what to do, drop the lock, then apply the returned effects (`effects.rs`: log,
//! cancel queued tasks of ended leases, shut pools down, wake the waiters that were served, wake
//! the checker, build pools on builder threads). User code (size provider, start hooks, tasks,
//! log sinks) never runs under the lock.
//!
//! Files: `shared.rs` (what leases and threads share, the lease-facing operations),
//! `acquire.rs` (the waiter protocol for blocking and fail-fast acquires), `effects.rs`
//! (applying effects, logging, pool builds), `lifecycle.rs` (start and stop), `snapshot.rs`
//! (size signal and stats).

use std::sync::Arc;
use std::time::Duration;

use crate::backend::kind::ExecutorBackend;
use crate::config::{AcquireOptions, ManagerBuilder};
use crate::error::{AcquireError, ConfigError, StartError};
use crate::lease::ExecutorLease;
use crate::state::Phase;
use crate::stats::ManagerStats;

mod acquire;
mod effects;
mod lifecycle;
pub(crate) mod shared;
mod snapshot;

use shared::Shared;

/// Owns a bounded set of executor pools and hands them out through leases.
///
/// Cheap to clone (all clones share one manager); every method is safe from any thread. Dropping
/// the last clone stops the manager. See the [crate docs](crate) for the semantics of expiry,
/// draining and sizing.
///
/// ```
/// use std::time::Duration;
/// use leasepool::{AcquireOptions, ExecutorBackend, LeasedExecutorManager};
///
/// let manager = LeasedExecutorManager::builder()
///     .backend(ExecutorBackend::Thread)
///     .max_pools(2)
///     .workers_per_pool(4)
///     .build()?;
/// manager.start()?;
/// let lease = manager.acquire(AcquireOptions::new().owner("report").timeout(Duration::from_secs(2)))?;
/// let n = lease.run(|| (1..=10u64).product::<u64>())?;
/// assert_eq!(n, 3_628_800);
/// drop(lease);
/// println!("{}", manager.stats());
/// manager.stop();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct LeasedExecutorManager {
    handle: Arc<Handle>,
}

/// The last clone of a manager stops it when dropped. Leases, pools and the checker hold `Shared`
/// directly, so they never keep a manager running.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.stop(None);
    }
}

impl LeasedExecutorManager {
    /// A builder with the default configuration.
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::new()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Creates the desired number of pools and starts the checker. A no-op when running.
    ///
    /// Each initial pool gets a few attempts (a pool whose start hook panics is retired and
    /// replaced); if one still cannot be built, everything created is shut down and the manager
    /// stays stopped.
    pub fn start(&self) -> Result<(), StartError> {
        self.shared().start()
    }

    /// Stops the manager without waiting for running work: wakes every waiter with
    /// [`AcquireError::NotRunning`], revokes every lease, resolves queued tasks as cancelled,
    /// shuts every pool down (running tasks finish in the background) and joins the checker.
    /// Idempotent, safe before start; the manager can be started again.
    pub fn stop(&self) {
        self.shared().stop(None);
    }

    /// Like [`stop`](Self::stop), then waits until every pool thread this manager ever started
    /// (including pools retired earlier) has finished its running task and exited, or `timeout`
    /// passes. Returns whether every thread was joined.
    pub fn stop_graceful(&self, timeout: Duration) -> bool {
        self.shared().stop(Some(timeout))
    }

    /// Whether the manager is running.
    pub fn is_running(&self) -> bool {
        self.shared().state.lock().phase == Phase::Running
    }

    /// Leases a pool, waiting in the one FIFO queue until one is free or the options' timeout,
    /// measured from this call, runs out (the timeout includes building a pool on demand).
    ///
    /// While the manager owns fewer than `max_pools`, a waiter gets a pool built for it on a
    /// builder thread, never on the calling thread. Fairness is bounded: a caller that is
    /// already running may take a pool that was just freed, but once a waiter has waited the
    /// [fairness bound](crate::ManagerBuilder::fairness_bound) (default 500 µs) every freed pool
    /// is handed to it and no newcomer may take one first (first come, first served among such
    /// waiters). A bound of zero is strict FIFO hand-off.
    pub fn acquire(&self, options: AcquireOptions) -> Result<ExecutorLease, AcquireError> {
        self.shared().acquire(options)
    }

    /// Leases an idle pool now, or fails at once; never waits, not even for a pool build.
    ///
    /// With no idle pool it fails with [`AcquireError::Unavailable`] when the manager owns
    /// `max_pools` pools, and with [`AcquireError::Starting`] below that: a pool is then being
    /// built in the background (on a builder thread), so a later call may succeed. A newcomer
    /// never takes an idle pool from a waiter that has waited past the fairness bound.
    pub fn try_acquire(&self, options: AcquireOptions) -> Result<ExecutorLease, AcquireError> {
        self.shared().try_acquire(options)
    }

    /// The backend.
    pub fn backend(&self) -> ExecutorBackend {
        self.shared().config.backend
    }

    /// Idle pools.
    pub fn available_count(&self) -> usize {
        self.shared().state.lock().available()
    }

    /// Leases held, draining ones included.
    pub fn leased_count(&self) -> usize {
        self.shared().state.lock().leased()
    }

    /// `available + leased` (pools being built and retired pools still finishing work are not
    /// counted).
    pub fn total_count(&self) -> usize {
        let st = self.shared().state.lock();
        st.available() + st.leased()
    }

    /// The sizing target right now: `min(max_pools, max(min_pools, ceil(units / units_per_pool)))`.
    ///
    /// The size provider is sampled on its own thread (`{prefix}-sizer`), never on the caller's
    /// and never under the lock. This waits at most 1 s for a fresh sample; if the provider is
    /// slower (or stuck), the target is computed from the last value it returned (0 before its
    /// first one), so this call never hangs.
    pub fn desired_executor_count(&self) -> usize {
        self.shared().desired_now()
    }

    /// Wakes the checker so it resizes now. A no-op when not running.
    pub fn notify_scale_changed(&self) {
        self.shared().kick_checker();
    }

    /// A snapshot of counts, leases and cumulative counters. `desired` is computed as in
    /// [`desired_executor_count`](Self::desired_executor_count): never hangs on a slow size
    /// provider.
    pub fn stats(&self) -> ManagerStats {
        self.shared().stats()
    }
}

impl ManagerBuilder {
    /// Validates everything and builds a stopped manager. Checks run in the reference order:
    /// counts (max, min, units, workers), durations (default lease, check interval; grace may be
    /// zero), `min_pools <= max_pools`, then the backend.
    pub fn build(self) -> Result<LeasedExecutorManager, ConfigError> {
        let shared = Arc::new(Shared::new(self.validate()?));
        Ok(LeasedExecutorManager { handle: Arc::new(Handle { shared }) })
    }
}

impl std::fmt::Debug for LeasedExecutorManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared().state.lock();
        f.debug_struct("LeasedExecutorManager")
            .field("backend", &self.shared().config.backend)
            .field("phase", &st.phase)
            .field("available", &st.available())
            .field("leased", &st.leased())
            .field("max_pools", &self.shared().config.max_pools)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::Status;
    use crate::error::{LeaseError, TaskError};

    /// The thread backend never breaks a leased pool (its pools are verified at creation), but the
    /// path a process backend will use must work end to end: a lease whose pool breaks refuses
    /// work with `PoolBroken`, its queued tasks resolve as `PoolBroken`, and the pool is retired
    /// and replaced.
    #[test]
    fn a_leased_pool_that_breaks_is_retired_replaced_and_its_work_refused() {
        let manager = LeasedExecutorManager::builder().max_pools(1).workers_per_pool(1).build().unwrap();
        manager.start().unwrap();
        let lease = manager.acquire(AcquireOptions::new()).unwrap();
        let broken_seq = lease.pool_seq();
        let (tx, rx) = crossbeam::channel::bounded::<()>(0);
        let (started_tx, started) = crossbeam::channel::bounded::<()>(1);
        let running = lease
            .executor()
            .submit(move || {
                started_tx.send(()).unwrap();
                rx.recv().is_ok()
            })
            .unwrap();
        started.recv_timeout(Duration::from_secs(10)).expect("the first task starts");
        let queued = lease.executor().submit(|| 2).unwrap();

        manager.shared().end_lease(lease.id(), Status::Broken);

        assert_eq!(lease.state(), crate::LeaseState::Broken);
        assert!(matches!(lease.executor().submit(|| ()), Err(LeaseError::PoolBroken { .. })));
        assert!(matches!(queued.wait(), Err(TaskError::PoolBroken { .. })));
        tx.send(()).unwrap();
        assert_eq!(running.wait(), Ok(true), "a running task still finishes");
        let c = manager.stats().counters;
        assert_eq!((c.pools_retired_broken, c.leases_revoked), (1, 0));
        // Capacity is replaced with a fresh pool.
        let fresh = manager.acquire(AcquireOptions::new().timeout(Duration::from_secs(10))).unwrap();
        assert_ne!(fresh.pool_seq(), broken_seq);
        drop(lease); // releasing a broken lease is a no-op
        assert_eq!(manager.leased_count(), 1);
    }
}
