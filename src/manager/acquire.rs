//! Acquiring a lease: the blocking acquire (a thread parked on a waiter entry) and the
//! fail-fast `try_acquire`. Both go through the state machine's one waiter queue (see
//! `waiter.rs` and `state.rs`), so blocking and future-based waiters are served by one rule.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cell::Status;
use crate::config::AcquireOptions;
use crate::error::AcquireError;
use crate::interrupt::Interrupt;
use crate::lease::ExecutorLease;
use crate::state::{AcquireStep, LeaseRequest};
use crate::waiter::{Ended, Entry, Refused, Signal};

use super::shared::{LeaseRef, Shared};

impl Shared {
    /// The request an acquire makes, validated: a lease duration of zero, or one too large to
    /// become a deadline, is refused before anything is queued.
    pub(crate) fn lease_request(&self, options: &AcquireOptions, now: Instant) -> Result<LeaseRequest, AcquireError> {
        let request = LeaseRequest {
            owner: options.owner.clone(),
            duration: options.lease_duration.unwrap_or(self.config.default_lease),
            grace: self.config.lease_grace,
        };
        if request.duration.is_zero() || !request.deadline_fits(now) {
            return Err(AcquireError::InvalidLeaseDuration { duration: request.duration });
        }
        Ok(request)
    }

    /// Waits (FIFO within the fairness bound) for a lease on a healthy pool. A pool found broken
    /// at hand-out (a worker process died while it was idle) is retired and the caller keeps
    /// waiting against the same deadline.
    pub(crate) fn acquire(self: &Arc<Self>, options: AcquireOptions) -> Result<ExecutorLease, AcquireError> {
        let start = Instant::now();
        let request = self.lease_request(&options, start)?;
        let deadline = Shared::acquire_deadline(&options, start);
        let mut now = start; // one clock read on the uncontended path
        loop {
            let lease = self.wait_for_lease(&request, deadline, options.interrupt.as_ref(), start, now)?;
            if let Some(lease) = self.healthy(lease) {
                return Ok(ExecutorLease::new(lease));
            }
            now = Instant::now();
        }
    }

    /// When an acquire started at `start` gives up: its options' timeout, measured from the call
    /// (shared by the blocking and the async acquire).
    pub(crate) fn acquire_deadline(options: &AcquireOptions, start: Instant) -> Option<Instant> {
        options.timeout.map(|t| start.checked_add(t).unwrap_or_else(far_future))
    }

    /// Leases an idle pool now, or fails at once: `Unavailable` at `max_pools`, `Starting`
    /// below it (a pool is then built in the background for the idle set). Never waits, and
    /// never builds a pool on the calling thread.
    pub(crate) fn try_acquire(self: &Arc<Self>, options: AcquireOptions) -> Result<ExecutorLease, AcquireError> {
        let now = Instant::now();
        let request = self.lease_request(&options, now)?;
        if options.interrupt.as_ref().is_some_and(Interrupt::is_fired) {
            return Err(AcquireError::Interrupted);
        }
        loop {
            let mut st = self.state.lock();
            match st.try_acquire(&request, now) {
                AcquireStep::Granted(lease, effects) => {
                    drop(st);
                    self.apply(effects);
                    if let Some(lease) = self.healthy(lease) {
                        return Ok(ExecutorLease::new(lease));
                    }
                }
                AcquireStep::NotRunning => return Err(AcquireError::NotRunning),
                AcquireStep::Busy { building } => {
                    let effects = st.request_spare(building);
                    drop(st);
                    self.apply(effects);
                    let max_pools = self.config.max_pools;
                    return Err(if building {
                        AcquireError::Starting { max_pools }
                    } else {
                        AcquireError::Unavailable { max_pools }
                    });
                }
            }
        }
    }

    /// The lease, if its pool can take work; else the pool is retired as broken (the caller
    /// then waits again, against the same deadline; the async acquire does the same).
    ///
    /// This is the hand-out check: for a process pool it includes a liveness ping of the idle
    /// workers (see `Pool::is_healthy`), so it may block for up to `ping_timeout` when a worker
    /// is hung; a healthy pool answers in one round trip.
    pub(crate) fn healthy(self: &Arc<Self>, lease: LeaseRef) -> Option<LeaseRef> {
        if lease.pool.pool.is_healthy() {
            return Some(lease);
        }
        let pool = &lease.pool.pool;
        let reason = pool.broken_reason().map(|r| format!(": {r}")).unwrap_or_default();
        log::warn!(target: self.log_target(), "executor seq={} was found broken at hand-out{reason}", pool.seq());
        self.end_lease(lease.info.id, Status::Broken);
        None
    }

    /// One waiter entry, parked on until it is served, the deadline passes, the interrupt fires
    /// or the manager stops.
    fn wait_for_lease(
        self: &Arc<Self>,
        request: &LeaseRequest,
        deadline: Option<Instant>,
        interrupt: Option<&Interrupt>,
        start: Instant,
        now: Instant,
    ) -> Result<LeaseRef, AcquireError> {
        if interrupt.is_some_and(Interrupt::is_fired) {
            return Err(AcquireError::Interrupted);
        }
        // The uncontended path: an idle pool and nobody starving. No entry (and no allocation)
        // unless the caller has to queue; the entry's first look repeats this step.
        let mut st = self.state.lock();
        match st.try_acquire(request, now) {
            AcquireStep::Granted(lease, effects) => {
                drop(st);
                self.apply(effects);
                return Ok(lease);
            }
            AcquireStep::NotRunning => return Err(AcquireError::NotRunning),
            AcquireStep::Busy { .. } => drop(st),
        }
        // A parked thread times out by itself: no deadline for the checker to watch.
        let mut entry = Entry::new(Arc::clone(self), request.clone());
        let _registered = interrupt.map(|i| {
            i.register(entry.signal());
            ClearOnDrop(i, Arc::clone(entry.signal()))
        });
        entry.wait(deadline, || interrupt.is_some_and(Interrupt::is_fired)).map_err(|ended| ended.into_error(start))
    }
}

impl Ended {
    /// The caller's error for an acquire that started at `start` and ended without a lease.
    pub(crate) fn into_error(self, start: Instant) -> AcquireError {
        match self {
            Ended::Refused(Refused::NotRunning) => AcquireError::NotRunning,
            Ended::Refused(Refused::BuildFailed(reason)) => AcquireError::PoolBroken { reason },
            Ended::Refused(Refused::TimedOut) | Ended::TimedOut => AcquireError::TimedOut { waited: start.elapsed() },
            Ended::Interrupted => AcquireError::Interrupted,
        }
    }
}

/// Unregisters a waiting acquire from its interrupt when the acquire returns.
struct ClearOnDrop<'a>(&'a Interrupt, Arc<Signal>);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.unregister(&self.1);
    }
}

/// A deadline so far away that waiting for it means waiting forever.
pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}
