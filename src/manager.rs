//! [`LeasedExecutorManager`]: owns the pools, the state lock and the checker thread.
//!
//! Every operation follows one pattern: take the state lock, ask [`State`] what to do, drop the
//! lock, then apply the returned [`Effects`] (log, cancel queued tasks of ended leases, shut pools
//! down, wake the one waiter that was served, wake the checker). User code (size provider, start
//! hooks, tasks, log sinks) never runs under the lock.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::utils::Backoff;
use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::backend::{ExecutorBackend, Pool};
use crate::cell::{LeaseCell, ReleaseOutcome, Status};
use crate::checker;
use crate::config::{AcquireOptions, Config, ManagerBuilder};
use crate::error::{AcquireError, ConfigError, LeaseError, StartError};
use crate::interrupt::Interrupt;
use crate::lease::{refusal, ExecutorLease, LeaseId};
use crate::state::{AcquireStep, Effects, Event, Grant, Handoff, LeaseInfo, LeaseRequest, Phase, RetireReason, State};
use crate::stats::{LeaseStats, ManagerStats, PoolStats, TaskCounters};
use crate::task::panic_message;

/// A queued caller's own wake-up: `served` is set (then the condvar notified) when the state
/// machine handed it something or the manager stopped, so it can spin briefly before parking.
pub(crate) struct WaiterSignal {
    served: AtomicBool,
    cv: Condvar,
}

impl WaiterSignal {
    /// Marks the waiter served and wakes it.
    pub(crate) fn wake(&self) {
        self.served.store(true, Release);
        self.cv.notify_one();
    }
}

pub(crate) type Signal = Arc<WaiterSignal>;
pub(crate) type ManagerState = State<Arc<ManagedPool>, Signal>;
/// A granted lease: its facts, its pool and its status word, shared by the manager's record,
/// the holder's `ExecutorLease`, its proxies and its tasks.
pub(crate) type LeaseRef = Arc<LeaseCell<Arc<ManagedPool>>>;

/// A pool as the manager hands it out: the backend pool plus what its leases need to account
/// for tasks and to reach the manager (release, finalize, renew) without another allocation.
///
/// The manager's state holds these only while running (`stop` clears it) and the list of
/// retired pools holds the bare `Pool`, so the `Arc<Shared>` here never forms a cycle that
/// outlives a stop.
pub(crate) struct ManagedPool {
    pub(crate) pool: Arc<Pool>,
    pub(crate) tasks: Arc<TaskCounters>,
    pub(crate) manager: Arc<Shared>,
}

/// How many times `start` tries to build each initial pool before giving up.
const START_ATTEMPTS: usize = 3;

/// Everything the manager, its leases and its checker share.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) state: Mutex<ManagerState>,
    /// The checker sleeps on this (with the state lock).
    pub(crate) checker_cv: Condvar,
    pub(crate) tasks: Arc<TaskCounters>,
    next_pool_seq: AtomicU64,
    /// Serializes start and stop; holds the checker's handle.
    lifecycle: Mutex<Option<JoinHandle<()>>>,
    /// Pools shut down whose threads may still be running work (joined by a graceful stop).
    retired: Mutex<Vec<Arc<Pool>>>,
}

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

    pub(crate) fn from_config(config: Config) -> Result<Self, ConfigError> {
        let state = State::new(config.max_pools, config.min_pools, Instant::now());
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(state),
            checker_cv: Condvar::new(),
            tasks: Arc::default(),
            next_pool_seq: AtomicU64::new(0),
            lifecycle: Mutex::new(None),
            retired: Mutex::new(Vec::new()),
        });
        Ok(LeasedExecutorManager { handle: Arc::new(Handle { shared }) })
    }

    fn shared(&self) -> &Arc<Shared> {
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

    /// Leases a pool, waiting (FIFO, behind earlier waiters) until one is free or the options'
    /// timeout, measured from this call, runs out. Creates a pool on demand while the manager
    /// owns fewer than `max_pools`.
    pub fn acquire(&self, options: AcquireOptions) -> Result<ExecutorLease, AcquireError> {
        self.shared().acquire(options, true)
    }

    /// Leases a pool only if one is free (or can be created) right now; never waits.
    pub fn try_acquire(&self, options: AcquireOptions) -> Result<ExecutorLease, AcquireError> {
        self.shared().acquire(options, false)
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
    /// Calls the size provider (on this thread, outside the lock).
    pub fn desired_executor_count(&self) -> usize {
        self.shared().desired_now()
    }

    /// Wakes the checker so it resizes now. A no-op when not running.
    pub fn notify_scale_changed(&self) {
        self.shared().kick_checker();
    }

    /// A snapshot of counts, leases and cumulative counters. Calls the size provider for
    /// `desired` (outside the lock).
    pub fn stats(&self) -> ManagerStats {
        self.shared().stats()
    }
}

impl Shared {
    fn log_target(&self) -> &str {
        &self.config.log_target
    }

    /// Units from the size provider; a panic counts as 0 and is logged.
    fn units(&self) -> usize {
        let Some(provider) = &self.config.size_provider else { return 0 };
        match catch_unwind(AssertUnwindSafe(|| provider())) {
            Ok(units) => units,
            Err(p) => {
                log::debug!(target: self.log_target(), "size_provider panicked, counting 0 units: {}", panic_message(&*p));
                0
            }
        }
    }

    pub(crate) fn desired_now(&self) -> usize {
        self.config.desired_for(self.units())
    }

    /// Builds one pool (outside the lock).
    pub(crate) fn create_pool(self: &Arc<Self>) -> Result<Arc<ManagedPool>, String> {
        let seq = self.next_pool_seq.fetch_add(1, Relaxed) + 1;
        let manager = Arc::downgrade(self);
        let on_broken = Box::new(move |seq| {
            if let Some(shared) = manager.upgrade() {
                shared.pool_broke(seq);
            }
        });
        match Pool::create(&self.config, seq, on_broken) {
            Ok(pool) => {
                let pool = Arc::new(ManagedPool {
                    pool: Arc::new(pool),
                    tasks: Arc::clone(&self.tasks),
                    manager: Arc::clone(self),
                });
                log::info!(target: self.log_target(), "executor created (backend={}, seq={seq}, workers={})", self.config.backend, self.config.workers_per_pool);
                Ok(pool)
            }
            Err(reason) => {
                log::warn!(target: self.log_target(), "retiring a broken executor (seq={seq}): {reason}");
                Err(reason)
            }
        }
    }

    /// Applies what the state machine decided, outside the lock.
    pub(crate) fn apply(&self, effects: Effects<Arc<ManagedPool>, Signal>) {
        if effects.is_empty() {
            return;
        }
        for event in effects.events.iter() {
            self.log_event(event);
        }
        for cell in &effects.ended {
            cell.cancel_queued();
        }
        if !effects.retire.is_empty() {
            for (managed, reason) in &effects.retire {
                let pool = &managed.pool;
                pool.shutdown(*reason);
                if *reason == RetireReason::Broken {
                    log::warn!(target: self.log_target(), "retiring a broken executor (seq={})", pool.seq());
                } else {
                    log::debug!(target: self.log_target(), "executor seq={} retired ({reason:?})", pool.seq());
                }
            }
            let mut retired = self.retired.lock();
            retired.retain(|p| !p.finished());
            retired.extend(effects.retire.into_iter().map(|(p, _)| Arc::clone(&p.pool)));
        }
        for signal in &effects.woken {
            signal.wake();
        }
        if effects.wake_checker {
            self.checker_cv.notify_one();
        }
    }

    fn log_event(&self, event: &Event) {
        let target = self.log_target();
        let owner = |info: &LeaseInfo| info.owner.as_deref().unwrap_or("-").to_owned();
        match event {
            Event::Granted { info, duration, waited } => log::info!(
                target: target,
                "lease granted (backend={}, lease_id={}, owner={}, seconds={:.3}, grace={:.3}, waited={:?})",
                self.config.backend, info.id, owner(info), duration.as_secs_f64(), info.grace.as_secs_f64(), waited.unwrap_or_default()
            ),
            Event::Finalized { info, kept } => {
                log::info!(target: target, "release finalized (lease_id={}, owner={}, kept={kept})", info.id, owner(info))
            }
            Event::Revoked { info, duration } => log::warn!(
                target: target,
                "revoking an expired lease (lease_id={}, owner={}, lease_seconds={:.3}, grace={:.3})",
                info.id, owner(info), duration.as_secs_f64(), info.grace.as_secs_f64()
            ),
            Event::SoftExpired { info, duration } => log::warn!(
                target: target,
                "lease passed its soft expiry and is in grace (lease_id={}, owner={}, lease_seconds={:.3}, grace={:.3})",
                info.id, owner(info), duration.as_secs_f64(), info.grace.as_secs_f64()
            ),
        }
    }

    fn kick_checker(&self) {
        let mut st = self.state.lock();
        if st.phase == Phase::Running {
            st.checker_kick = true;
            drop(st);
            self.checker_cv.notify_one();
        }
    }

    fn start(self: &Arc<Self>) -> Result<(), StartError> {
        let mut checker = self.lifecycle.lock();
        if self.state.lock().phase == Phase::Running {
            return Ok(());
        }
        let desired = self.desired_now();
        let mut pools = Vec::with_capacity(desired);
        let mut failures = 0;
        while pools.len() < desired {
            match self.create_pool() {
                Ok(pool) => pools.push(pool),
                Err(reason) => {
                    failures += 1;
                    if failures == START_ATTEMPTS * desired {
                        pools.iter().for_each(|p| p.pool.shutdown(RetireReason::Stopped));
                        self.state.lock().counters.pools_retired_broken += failures as u64;
                        return Err(StartError::PoolCreation { reason });
                    }
                }
            }
        }
        let epoch = {
            let mut st = self.state.lock();
            st.counters.pools_retired_broken += failures as u64;
            st.start(pools, desired);
            log::info!(
                target: self.log_target(),
                "manager started (backend={}, total={}, available={}, leased=0, target={desired})",
                self.config.backend, st.available(), st.available()
            );
            st.epoch
        };
        let shared = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name(format!("{}-checker", self.config.name_prefix))
            .spawn(move || checker::run(shared, epoch));
        match spawned {
            Ok(handle) => {
                *checker = Some(handle);
                Ok(())
            }
            Err(e) => {
                drop(checker);
                self.stop(None);
                Err(StartError::PoolCreation { reason: format!("could not spawn the checker thread: {e}") })
            }
        }
    }

    pub(crate) fn stop(&self, graceful: Option<Duration>) -> bool {
        let deadline = graceful.map(|t| Instant::now().checked_add(t).unwrap_or_else(far_future));
        let mut checker = self.lifecycle.lock();
        let (effects, was_running) = {
            let mut st = self.state.lock();
            let was_running = st.phase == Phase::Running;
            (st.begin_stop(), was_running)
        };
        self.checker_cv.notify_all();
        self.apply(effects);
        if let Some(handle) = checker.take() {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
        self.state.lock().finish_stop();
        drop(checker);
        let pools = self.retired.lock().clone();
        if self.config.backend == ExecutorBackend::Process {
            // No worker process outlives a stop: wait (bounded) until every one is reaped, which
            // also delivers the log records they sent before exiting.
            let budget = Instant::now() + self.config.process.terminate_grace + Duration::from_secs(5);
            for pool in &pools {
                // Pools retired earlier (shrunk, broken) may still have workers finishing a task.
                pool.shutdown(RetireReason::Stopped);
            }
            for pool in &pools {
                if !pool.join(deadline.map_or(budget, |d| d.max(budget))) {
                    log::warn!(target: self.log_target(), "worker processes of executor seq={} did not exit in time", pool.seq());
                }
            }
        }
        if was_running {
            log::info!(target: self.log_target(), "manager stopped");
        }
        let Some(deadline) = deadline else { return true };
        // Join every pool (no short-circuit): each one gets the same overall deadline.
        let mut all_joined = true;
        for pool in &pools {
            all_joined &= pool.join(deadline);
        }
        all_joined
    }

    /// Acquires a lease on a healthy pool: a pool found broken at hand-out (a worker process
    /// died while it was idle) is retired, and the caller keeps its place and its deadline.
    fn acquire(self: &Arc<Self>, options: AcquireOptions, blocking: bool) -> Result<ExecutorLease, AcquireError> {
        let start = Instant::now();
        loop {
            let lease = self.acquire_from(options.clone(), blocking, start)?;
            if lease.cell().pool.pool.is_healthy() {
                return Ok(lease);
            }
            log::warn!(target: self.log_target(), "executor seq={} was found broken at hand-out", lease.pool_seq());
            self.end_lease(lease.id(), Status::Broken);
        }
    }

    fn acquire_from(
        self: &Arc<Self>,
        options: AcquireOptions,
        blocking: bool,
        start: Instant,
    ) -> Result<ExecutorLease, AcquireError> {
        let request = LeaseRequest {
            owner: options.owner,
            duration: options.lease_duration.unwrap_or(self.config.default_lease),
            grace: self.config.lease_grace,
        };
        if request.duration.is_zero() || !ManagerState::deadline_fits(start, &request) {
            return Err(AcquireError::InvalidLeaseDuration { duration: request.duration });
        }
        let deadline = options.timeout.map(|t| start.checked_add(t).unwrap_or_else(far_future));
        let interrupt = options.interrupt;
        if interrupt.as_ref().is_some_and(Interrupt::is_fired) {
            return Err(AcquireError::Interrupted);
        }

        let mut st = self.state.lock();
        match st.try_acquire(&request, start) {
            AcquireStep::Granted(grant, effects) => {
                drop(st);
                self.apply(effects);
                return Ok(self.lease(grant));
            }
            AcquireStep::Reserved => {
                let epoch = st.epoch;
                drop(st);
                return self.build_reserved(epoch, request, None);
            }
            AcquireStep::NotRunning => return Err(AcquireError::NotRunning),
            AcquireStep::Busy if !blocking => {
                st.counters.acquire_unavailable += 1;
                return Err(AcquireError::Unavailable { max_pools: self.config.max_pools });
            }
            AcquireStep::Busy => {}
        }

        let signal: Signal = Arc::new(WaiterSignal { served: AtomicBool::new(false), cv: Condvar::new() });
        let id = st.enqueue(request.clone(), Arc::clone(&signal), start);
        let _registered = interrupt.as_ref().map(|i| {
            i.register(self, &signal);
            ClearOnDrop(i)
        });
        let mut spun = false;
        loop {
            // A delivery is always checked before giving up, under the same lock that the
            // deliverer held: a waiter that times out can never swallow a hand-off.
            if let Some(handoff) = st.take_delivery(id) {
                return match handoff {
                    Handoff::Lease(grant) => {
                        drop(st);
                        Ok(self.lease(grant))
                    }
                    Handoff::Reservation => {
                        let epoch = st.epoch;
                        drop(st);
                        self.build_reserved(epoch, request, Some(start.elapsed()))
                    }
                };
            }
            if st.phase != Phase::Running {
                st.abandon(id, false);
                return Err(AcquireError::NotRunning);
            }
            if interrupt.as_ref().is_some_and(Interrupt::is_fired) {
                st.abandon(id, false);
                return Err(AcquireError::Interrupted);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                st.abandon(id, true);
                return Err(AcquireError::TimedOut { waited: start.elapsed() });
            }
            if !spun {
                // Hand-offs under contention often come within microseconds: spin and yield
                // briefly (lock released) before parking, which saves a sleep and a wake-up.
                spun = true;
                MutexGuard::unlocked(&mut st, || {
                    let backoff = Backoff::new();
                    while !signal.served.load(Acquire) && !backoff.is_completed() {
                        backoff.snooze();
                    }
                });
                continue;
            }
            match deadline {
                Some(deadline) => {
                    signal.cv.wait_until(&mut st, deadline);
                }
                None => signal.cv.wait(&mut st),
            }
        }
    }

    /// Builds the pool a reservation allowed (outside the lock) and leases it to the caller.
    fn build_reserved(
        self: &Arc<Self>,
        epoch: u64,
        request: LeaseRequest,
        waited: Option<Duration>,
    ) -> Result<ExecutorLease, AcquireError> {
        let built = self.create_pool();
        let (grant, effects) =
            self.state.lock().finish_reservation(epoch, built.clone().map_err(drop), request, Instant::now(), waited);
        self.apply(effects);
        match (grant, built) {
            (Some(grant), _) => Ok(self.lease(grant)),
            (None, Err(reason)) => Err(AcquireError::PoolBroken { reason }),
            (None, Ok(_)) => Err(AcquireError::NotRunning),
        }
    }

    fn lease(&self, grant: Grant<Arc<ManagedPool>>) -> ExecutorLease {
        ExecutorLease::new(grant)
    }

    pub(crate) fn release(&self, lease: &LeaseRef) {
        let info = &lease.info;
        match lease.release() {
            ReleaseOutcome::Finalize => self.finalize(info.id),
            ReleaseOutcome::Draining(pending) => log::info!(
                target: self.log_target(),
                "release while draining (lease_id={}, owner={}, pending={pending})",
                info.id, info.owner.as_deref().unwrap_or("-")
            ),
            ReleaseOutcome::AlreadyInactive => {}
        }
    }

    pub(crate) fn finalize(&self, id: LeaseId) {
        let effects = self.state.lock().finalize(id, Instant::now());
        self.apply(effects);
    }

    /// A process pool broke (a worker died): end its lease as broken, or retire it if idle.
    pub(crate) fn pool_broke(&self, seq: u64) {
        let effects = self.state.lock().pool_broke(|p| p.pool.seq() == seq, Instant::now());
        self.apply(effects);
    }

    pub(crate) fn end_lease(&self, id: LeaseId, status: Status) {
        let effects = self.state.lock().end_lease(id, status, Instant::now());
        self.apply(effects);
    }

    pub(crate) fn renew(&self, lease: &LeaseRef, extra: Duration) -> Result<Instant, LeaseError> {
        let (info, cell) = (&lease.info, lease);
        let mut st = self.state.lock();
        let renewed = st.renew(info.id, extra, Instant::now());
        let kick = st.checker_kick;
        drop(st);
        if kick {
            self.checker_cv.notify_one();
        }
        renewed.map_err(|status| match status {
            None => LeaseError::InvalidRenewal { lease_id: info.id, extra },
            Some(status) => refusal(
                lease,
                match cell.status() {
                    Status::Active | Status::Released => status,
                    ended => ended,
                },
            ),
        })
    }

    fn stats(&self) -> ManagerStats {
        let desired = self.desired_now();
        let now = Instant::now();
        let st = self.state.lock();
        let leases = st
            .lease_snapshots(now, |p| p.pool.seq())
            .into_iter()
            .map(|l| LeaseStats {
                lease_id: l.info.id,
                owner: l.info.owner.as_deref().map(str::to_owned),
                state: l.state,
                pending_tasks: l.pending,
                until_soft_expiry: l.soft_expires_at.saturating_duration_since(now),
                until_hard_expiry: l.hard_expires_at.saturating_duration_since(now),
                pool_seq: l.pool_seq,
            })
            .collect();
        // A pool's own lock is only ever taken inside the manager's, never the other way round.
        let mut pools: Vec<PoolStats> = st
            .pools()
            .map(|(p, lease_id)| PoolStats { seq: p.pool.seq(), lease_id, worker_pids: p.pool.pids() })
            .collect();
        pools.sort_by_key(|p| p.seq);
        ManagerStats {
            backend: self.config.backend,
            running: st.phase == Phase::Running,
            desired,
            max_pools: self.config.max_pools,
            min_pools: self.config.min_pools,
            available: st.available(),
            leased: st.leased(),
            total: st.available() + st.leased(),
            creating: st.creating(),
            waiting: st.waiting(),
            workers_per_pool: self.config.workers_per_pool,
            leases,
            pools,
            counters: st.counters,
            tasks: self.tasks.snapshot(),
        }
    }
}

/// Unregisters a waiting acquire from its interrupt when the acquire returns.
struct ClearOnDrop<'a>(&'a Interrupt);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// A deadline so far away that waiting for it means waiting forever.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
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
    use crate::error::TaskError;

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
