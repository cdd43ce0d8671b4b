//! The manager's state machine as plain data.
//!
//! `State` owns no threads, reads no clock and calls no user code: every method takes `now` and
//! returns what must happen next ([`Effects`]: pools to retire, waiters to wake, whether the
//! checker must run, log events). The manager applies those effects after dropping its lock.
//! Pools (`P`) and waiter signals (`W`) are opaque here, which keeps every rule unit-testable with
//! virtual time and lets the loom model drive the real hand-off code.
//!
//! Capacity is `idle + leased + creating <= max_pools`, where `creating` counts pools being built
//! outside the lock for someone (a waiter, an acquirer or the checker).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cell::{LeaseCell, Status};
use crate::lease::LeaseId;
use crate::stats::{LeaseCounters, LeaseState};

/// The manager's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Stopped,
    Running,
    Stopping,
}

/// Why a pool leaves management.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetireReason {
    /// It broke (or could not be created).
    Broken,
    /// It was idle (or released) above the desired count.
    Shrink,
    /// Its lease passed hard expiry.
    Expired,
    /// The manager stopped.
    Stopped,
}

/// What a caller asked for in an acquire.
#[derive(Debug, Clone)]
pub(crate) struct LeaseRequest {
    pub owner: Option<Arc<str>>,
    pub duration: Duration,
    pub grace: Duration,
}

/// The immutable facts of one lease.
#[derive(Debug, Clone)]
pub(crate) struct LeaseInfo {
    pub id: LeaseId,
    pub owner: Option<Arc<str>>,
    pub grace: Duration,
    pub leased_at: Instant,
}

/// A lease created under the lock (its facts, pool and status word in one allocation), ready to
/// be wrapped into an `ExecutorLease`.
pub(crate) type Grant<P> = Arc<LeaseCell<P>>;

/// What the front waiter is handed.
#[derive(Debug)]
pub(crate) enum Handoff<P> {
    /// A lease on a freed pool.
    Lease(Grant<P>),
    /// Permission to build one pool (capacity freed up and no idle pool exists).
    Reservation,
}

/// What an acquire attempt found.
#[derive(Debug)]
pub(crate) enum AcquireStep<P, W> {
    Granted(Grant<P>, Effects<P, W>),
    /// Capacity was reserved: build a pool, then call [`State::finish_reservation`].
    Reserved,
    /// No capacity, or others are already queued: wait (or fail fast).
    Busy,
    NotRunning,
}

/// A log-worthy thing that happened, emitted by the manager outside the lock.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    Granted { info: LeaseInfo, duration: Duration, waited: Option<Duration> },
    Finalized { info: LeaseInfo, kept: bool },
    Revoked { info: LeaseInfo, duration: Duration },
    SoftExpired { info: LeaseInfo, duration: Duration },
}

/// Log events of one operation. They are only recorded when a logger can see them
/// (`log::max_level()` is not `Off`): building events nobody logs would cost the acquire and
/// release paths an allocation for nothing.
#[derive(Debug, Default)]
pub(crate) struct Events(Vec<Event>);

impl Events {
    pub(crate) fn push(&mut self, event: Event) {
        if log::max_level() != log::LevelFilter::Off {
            self.0.push(event);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Event> {
        self.0.iter()
    }
}

/// What must happen after the lock is dropped.
#[derive(Debug)]
pub(crate) struct Effects<P, W> {
    pub retire: Vec<(P, RetireReason)>,
    /// Leases that ended (revoked, broken, stopped): their queued tasks must be cancelled.
    pub ended: Vec<Arc<LeaseCell<P>>>,
    /// Signals of waiters that were handed something (only they are woken).
    pub woken: Vec<W>,
    pub wake_checker: bool,
    pub events: Events,
}

impl<P, W> Default for Effects<P, W> {
    fn default() -> Self {
        Effects {
            retire: Vec::new(),
            ended: Vec::new(),
            woken: Vec::new(),
            wake_checker: false,
            events: Events::default(),
        }
    }
}

impl<P, W> Effects<P, W> {
    pub(crate) fn is_empty(&self) -> bool {
        self.retire.is_empty()
            && self.ended.is_empty()
            && self.woken.is_empty()
            && !self.wake_checker
            && self.events.is_empty()
    }
}

/// One lease the manager tracks (active, in grace, or draining).
#[derive(Debug)]
pub(crate) struct LeaseRecord<P> {
    pub cell: Arc<LeaseCell<P>>,
    pub duration: Duration,
    pub soft_warned: bool,
}

impl<P> LeaseRecord<P> {
    /// The next instant the checker must look at this lease.
    fn next_deadline(&self) -> Instant {
        if self.soft_warned {
            self.cell.hard_expires_at()
        } else {
            self.cell.soft_expires_at()
        }
    }
}

#[derive(Debug)]
struct Waiter<W> {
    id: u64,
    signal: W,
    request: LeaseRequest,
    since: Instant,
}

/// A point-in-time copy of one lease, for stats.
#[derive(Debug, Clone)]
pub(crate) struct LeaseSnapshot {
    pub info: LeaseInfo,
    pub state: LeaseState,
    pub pending: u64,
    pub soft_expires_at: Instant,
    pub hard_expires_at: Instant,
    pub pool_seq: u64,
}

/// The manager's state. See the module docs.
#[derive(Debug)]
pub(crate) struct State<P, W> {
    pub phase: Phase,
    /// Incremented by every start; reservations from an older epoch are void.
    pub epoch: u64,
    pub max_pools: usize,
    /// The last desired count computed from the size provider.
    pub desired: usize,
    /// Origin instant for lease deadlines (see `LeaseCell`).
    origin: Instant,
    idle: VecDeque<P>,
    leases: Vec<LeaseRecord<P>>,
    creating: usize,
    waiters: VecDeque<Waiter<W>>,
    deliveries: Vec<(u64, Handoff<P>)>,
    next_lease_id: u64,
    next_waiter_id: u64,
    /// When the sleeping checker will wake by itself; `None` while it is awake (it recomputes
    /// its deadline under the lock right before sleeping, so nothing is missed).
    pub checker_due: Option<Instant>,
    /// A wake-up requested while the checker was not sleeping.
    pub checker_kick: bool,
    pub counters: LeaseCounters,
}

impl<P: Clone, W: Clone> State<P, W> {
    pub(crate) fn new(max_pools: usize, min_pools: usize, origin: Instant) -> Self {
        State {
            phase: Phase::Stopped,
            epoch: 0,
            max_pools,
            desired: min_pools,
            origin,
            idle: VecDeque::new(),
            leases: Vec::new(),
            creating: 0,
            waiters: VecDeque::new(),
            deliveries: Vec::new(),
            next_lease_id: 1,
            next_waiter_id: 1,
            checker_due: None,
            checker_kick: false,
            counters: LeaseCounters::default(),
        }
    }

    /// Idle pools.
    pub(crate) fn available(&self) -> usize {
        self.idle.len()
    }

    /// Lease records: active, in grace and draining.
    pub(crate) fn leased(&self) -> usize {
        self.leases.len()
    }

    /// Pools being built outside the lock.
    pub(crate) fn creating(&self) -> usize {
        self.creating
    }

    /// Callers queued in acquire.
    pub(crate) fn waiting(&self) -> usize {
        self.waiters.len()
    }

    fn owned(&self) -> usize {
        self.idle.len() + self.leases.len() + self.creating
    }

    /// Stopped → running with these freshly built pools.
    pub(crate) fn start(&mut self, pools: Vec<P>, desired: usize) {
        debug_assert_eq!(self.phase, Phase::Stopped);
        self.phase = Phase::Running;
        self.epoch += 1;
        self.desired = desired;
        self.counters.pools_created += pools.len() as u64;
        self.idle.extend(pools);
        self.checker_kick = false;
        self.checker_due = None;
    }

    /// Running → stopping: every pool leaves management, every lease is stopped, every waiter is
    /// woken (it will find the manager not running).
    pub(crate) fn begin_stop(&mut self) -> Effects<P, W> {
        let mut effects = Effects::default();
        if self.phase != Phase::Running {
            return effects;
        }
        self.phase = Phase::Stopping;
        for record in self.leases.drain(..) {
            record.cell.end(Status::Stopped);
            effects.retire.push((record.cell.pool.clone(), RetireReason::Stopped));
            effects.ended.push(record.cell);
        }
        for pool in self.idle.drain(..) {
            effects.retire.push((pool, RetireReason::Stopped));
        }
        self.creating = 0;
        self.deliveries.clear();
        self.counters.pools_retired_stopped += effects.retire.len() as u64;
        // Waiters stay queued (each removes itself); they only need waking.
        effects.woken = self.waiters.iter().map(|w| w.signal.clone()).collect();
        effects
    }

    /// Stopping → stopped (after the checker was joined).
    pub(crate) fn finish_stop(&mut self) {
        self.phase = Phase::Stopped;
    }

    fn grant(
        &mut self,
        request: LeaseRequest,
        pool: P,
        now: Instant,
        waited: Option<Duration>,
        effects: &mut Effects<P, W>,
    ) -> Option<Grant<P>> {
        let soft = now.checked_add(request.duration)?;
        let hard = soft.checked_add(request.grace)?;
        let info =
            LeaseInfo { id: LeaseId(self.next_lease_id), owner: request.owner, grace: request.grace, leased_at: now };
        self.next_lease_id += 1;
        effects.events.push(Event::Granted { info: info.clone(), duration: request.duration, waited });
        let cell = Arc::new(LeaseCell::new(self.origin.min(now), info, pool, soft, hard));
        let record = LeaseRecord { cell: Arc::clone(&cell), duration: request.duration, soft_warned: false };
        if self.checker_due.is_some_and(|due| record.next_deadline() < due) {
            self.wake_checker(effects);
        }
        self.leases.push(record);
        match waited {
            Some(w) => {
                self.counters.leases_after_wait += 1;
                self.counters.total_acquire_wait += w;
                self.counters.max_acquire_wait = self.counters.max_acquire_wait.max(w);
            }
            None => self.counters.leases_immediate += 1,
        }
        Some(cell)
    }

    fn wake_checker(&mut self, effects: &mut Effects<P, W>) {
        self.checker_kick = true;
        effects.wake_checker = true;
    }

    /// Whether `now + duration + grace` is representable (the only way a grant can fail).
    ///
    /// With a century of headroom, so that a waiter granted long after it asked (its deadline is
    /// computed from the hand-off) can never overflow either.
    pub(crate) fn deadline_fits(now: Instant, request: &LeaseRequest) -> bool {
        const HEADROOM: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
        now.checked_add(request.duration)
            .and_then(|s| s.checked_add(request.grace))
            .and_then(|h| h.checked_add(HEADROOM))
            .is_some()
    }

    /// One acquire attempt by a caller that is not queued. Newcomers never overtake waiters.
    pub(crate) fn try_acquire(&mut self, request: &LeaseRequest, now: Instant) -> AcquireStep<P, W> {
        if self.phase != Phase::Running {
            return AcquireStep::NotRunning;
        }
        if !self.waiters.is_empty() {
            return AcquireStep::Busy;
        }
        if let Some(pool) = self.idle.pop_front() {
            let mut effects = Effects::default();
            let grant =
                self.grant(request.clone(), pool, now, None, &mut effects).expect("deadline checked by the caller");
            return AcquireStep::Granted(grant, effects);
        }
        if self.owned() < self.max_pools {
            self.creating += 1;
            return AcquireStep::Reserved;
        }
        AcquireStep::Busy
    }

    /// Queues a caller; it is woken through `signal` when something is delivered to it.
    pub(crate) fn enqueue(&mut self, request: LeaseRequest, signal: W, now: Instant) -> u64 {
        let id = self.next_waiter_id;
        self.next_waiter_id += 1;
        self.waiters.push_back(Waiter { id, signal, request, since: now });
        id
    }

    /// Takes what was handed to waiter `id`, if anything.
    pub(crate) fn take_delivery(&mut self, id: u64) -> Option<Handoff<P>> {
        let at = self.deliveries.iter().position(|(w, _)| *w == id)?;
        Some(self.deliveries.swap_remove(at).1)
    }

    /// A waiter gives up (timeout or not running). It must have checked `take_delivery` first,
    /// under the same lock, so it can never swallow a hand-off.
    pub(crate) fn abandon(&mut self, id: u64, timed_out: bool) {
        self.waiters.retain(|w| w.id != id);
        if timed_out {
            self.counters.acquire_timeouts += 1;
        }
    }

    /// A reservation's pool was built (`Ok`) or failed (`Err`). On success the caller gets a
    /// lease on it; a failure frees the capacity for the next waiter.
    pub(crate) fn finish_reservation(
        &mut self,
        epoch: u64,
        built: Result<P, ()>,
        request: LeaseRequest,
        now: Instant,
        waited: Option<Duration>,
    ) -> (Option<Grant<P>>, Effects<P, W>) {
        let mut effects = Effects::default();
        let current = epoch == self.epoch && self.phase == Phase::Running;
        if current {
            self.creating -= 1;
        }
        match built {
            Ok(pool) => {
                self.counters.pools_created += 1;
                if current {
                    let grant = self.grant(request, pool, now, waited, &mut effects);
                    return (grant, effects);
                }
                self.counters.pools_retired_stopped += 1;
                effects.retire.push((pool, RetireReason::Stopped));
            }
            Err(()) => {
                self.counters.pools_retired_broken += 1;
                if current {
                    self.dispatch(now, &mut effects);
                }
            }
        }
        (None, effects)
    }

    /// Hands freed capacity to the front waiters: idle pools as leases, spare capacity as
    /// reservations. Only the waiters served are woken.
    fn dispatch(&mut self, now: Instant, effects: &mut Effects<P, W>) {
        while let Some(front) = self.waiters.front() {
            let handoff = if self.idle.is_empty() {
                if self.owned() >= self.max_pools {
                    break;
                }
                self.creating += 1;
                Handoff::Reservation
            } else {
                let waited = now.saturating_duration_since(front.since);
                let request = front.request.clone();
                let pool = self.idle.pop_front().expect("checked non-empty");
                match self.grant(request, pool, now, Some(waited), effects) {
                    Some(grant) => Handoff::Lease(grant),
                    None => unreachable!("waiter requests are validated before queueing"),
                }
            };
            let waiter = self.waiters.pop_front().expect("checked non-empty");
            self.deliveries.push((waiter.id, handoff));
            effects.woken.push(waiter.signal);
        }
    }

    fn remove_lease(&mut self, id: LeaseId) -> Option<LeaseRecord<P>> {
        let at = self.leases.iter().position(|r| r.cell.info.id == id)?;
        Some(self.leases.remove(at))
    }

    /// A released lease has nothing pending: return its pool (to a waiter first, then to the idle
    /// set while at or below desired) or retire it.
    pub(crate) fn finalize(&mut self, id: LeaseId, now: Instant) -> Effects<P, W> {
        let mut effects = Effects::default();
        let Some(record) = self.remove_lease(id) else {
            return effects;
        };
        self.counters.leases_released += 1;
        let expired = now >= record.cell.hard_expires_at();
        let wanted = !self.waiters.is_empty() || self.owned() < self.desired;
        let kept = self.phase == Phase::Running && !expired && wanted;
        if kept {
            self.idle.push_back(record.cell.pool.clone());
        } else {
            let reason = if expired { RetireReason::Expired } else { RetireReason::Shrink };
            self.count_retired(reason);
            effects.retire.push((record.cell.pool.clone(), reason));
        }
        effects.events.push(Event::Finalized { info: record.cell.info.clone(), kept });
        self.after_capacity_change(now, &mut effects);
        effects
    }

    /// Revokes or retires one lease (hard expiry, or its pool broke).
    pub(crate) fn end_lease(&mut self, id: LeaseId, status: Status, now: Instant) -> Effects<P, W> {
        let mut effects = Effects::default();
        if let Some(record) = self.remove_lease(id) {
            self.end_record(record, status, &mut effects);
            self.after_capacity_change(now, &mut effects);
        }
        effects
    }

    /// The pool `is_it` matches broke on its own (a worker process died): its lease ends as
    /// broken, or, if it is idle, it is retired. Either way capacity is replaced.
    pub(crate) fn pool_broke(&mut self, is_it: impl Fn(&P) -> bool, now: Instant) -> Effects<P, W> {
        let mut effects = Effects::default();
        if let Some(at) = self.leases.iter().position(|r| is_it(&r.cell.pool)) {
            let record = self.leases.remove(at);
            self.end_record(record, Status::Broken, &mut effects);
        } else if let Some(at) = self.idle.iter().position(&is_it) {
            let pool = self.idle.remove(at).expect("position is in range");
            self.count_retired(RetireReason::Broken);
            effects.retire.push((pool, RetireReason::Broken));
        } else {
            return effects;
        }
        self.after_capacity_change(now, &mut effects);
        effects
    }

    /// Every pool the manager owns, idle ones first, with the lease holding it.
    pub(crate) fn pools(&self) -> impl Iterator<Item = (&P, Option<LeaseId>)> {
        self.idle.iter().map(|p| (p, None)).chain(self.leases.iter().map(|r| (&r.cell.pool, Some(r.cell.info.id))))
    }

    fn end_record(&mut self, record: LeaseRecord<P>, status: Status, effects: &mut Effects<P, W>) {
        record.cell.end(status);
        let reason = if status == Status::Broken { RetireReason::Broken } else { RetireReason::Expired };
        if reason == RetireReason::Expired {
            self.counters.leases_revoked += 1;
            effects.events.push(Event::Revoked { info: record.cell.info.clone(), duration: record.duration });
        }
        self.count_retired(reason);
        effects.retire.push((record.cell.pool.clone(), reason));
        effects.ended.push(record.cell);
    }

    fn count_retired(&mut self, reason: RetireReason) {
        let c = &mut self.counters;
        match reason {
            RetireReason::Broken => c.pools_retired_broken += 1,
            RetireReason::Shrink => c.pools_retired_shrink += 1,
            RetireReason::Expired => c.pools_retired_expired += 1,
            RetireReason::Stopped => c.pools_retired_stopped += 1,
        }
    }

    /// After a pool came back or left: serve waiters, and ask the checker to grow if below
    /// desired.
    fn after_capacity_change(&mut self, now: Instant, effects: &mut Effects<P, W>) {
        self.dispatch(now, effects);
        if self.phase == Phase::Running && self.owned() < self.desired {
            self.wake_checker(effects);
        }
    }

    /// Extends a live lease's deadlines by `extra`. Returns the new hard expiry, or the status
    /// that forbids it (`None` when the new deadline would overflow).
    pub(crate) fn renew(&mut self, id: LeaseId, extra: Duration, now: Instant) -> Result<Instant, Option<Status>> {
        let origin = self.origin;
        let due = self.checker_due;
        let Some(record) = self.leases.iter_mut().find(|r| r.cell.info.id == id) else {
            return Err(Some(Status::Released));
        };
        let status = record.cell.status();
        if status != Status::Active && status != Status::Released {
            return Err(Some(status));
        }
        if now >= record.cell.hard_expires_at() {
            return Err(Some(Status::Revoked));
        }
        let soft = record.cell.soft_expires_at().checked_add(extra).ok_or(None)?;
        let hard = record.cell.hard_expires_at().checked_add(extra).ok_or(None)?;
        if soft.saturating_duration_since(origin).as_nanos() >= u128::from(u64::MAX) {
            return Err(None);
        }
        record.cell.set_deadlines(soft, hard);
        record.duration += extra;
        if soft > now {
            record.soft_warned = false;
        }
        let deadline = record.next_deadline();
        self.counters.leases_renewed += 1;
        if due.is_some_and(|due| deadline < due) {
            self.checker_kick = true;
        }
        Ok(hard)
    }

    /// One checker pass: revoke expired leases, note soft expiries, shrink idle pools above
    /// `desired`, and reserve the pools needed to grow to it. Returns the effects and how many
    /// pools the checker must now build (then call [`State::add_built`]).
    pub(crate) fn checker_pass(&mut self, desired: usize, now: Instant) -> (Effects<P, W>, usize) {
        let mut effects = Effects::default();
        if self.phase != Phase::Running {
            return (effects, 0);
        }
        self.desired = desired;
        let mut i = 0;
        while i < self.leases.len() {
            let record = &mut self.leases[i];
            if now >= record.cell.hard_expires_at() {
                let record = self.leases.remove(i);
                self.end_record(record, Status::Revoked, &mut effects);
                continue;
            }
            if !record.soft_warned && now >= record.cell.soft_expires_at() {
                record.soft_warned = true;
                effects.events.push(Event::SoftExpired { info: record.cell.info.clone(), duration: record.duration });
            }
            i += 1;
        }
        self.dispatch(now, &mut effects);
        while self.owned() > desired && self.waiters.is_empty() {
            let Some(pool) = self.idle.pop_back() else { break };
            self.count_retired(RetireReason::Shrink);
            effects.retire.push((pool, RetireReason::Shrink));
        }
        let build = desired.saturating_sub(self.owned());
        self.creating += build;
        (effects, build)
    }

    /// Pools the checker built for its reservation (`failed` of them could not be built).
    pub(crate) fn add_built(&mut self, epoch: u64, pools: Vec<P>, failed: usize, now: Instant) -> Effects<P, W> {
        let mut effects = Effects::default();
        let current = epoch == self.epoch && self.phase == Phase::Running;
        self.counters.pools_created += pools.len() as u64;
        self.counters.pools_retired_broken += failed as u64;
        if !current {
            self.counters.pools_retired_stopped += pools.len() as u64;
            effects.retire.extend(pools.into_iter().map(|p| (p, RetireReason::Stopped)));
            return effects;
        }
        self.creating -= pools.len() + failed;
        self.idle.extend(pools);
        self.dispatch(now, &mut effects);
        effects
    }

    /// The instant the checker must next wake for a lease deadline, if any lease exists.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.leases.iter().map(LeaseRecord::next_deadline).min()
    }

    /// Every tracked lease, in acquisition order.
    pub(crate) fn lease_snapshots(&self, now: Instant, pool_seq: impl Fn(&P) -> u64) -> Vec<LeaseSnapshot> {
        self.leases
            .iter()
            .map(|r| LeaseSnapshot {
                info: r.cell.info.clone(),
                state: lease_state(&r.cell, now),
                pending: r.cell.pending(),
                soft_expires_at: r.cell.soft_expires_at(),
                hard_expires_at: r.cell.hard_expires_at(),
                pool_seq: pool_seq(&r.cell.pool),
            })
            .collect()
    }
}

/// The user-visible state of a lease, derived from its cell and the clock.
pub(crate) fn lease_state<P>(cell: &LeaseCell<P>, now: Instant) -> LeaseState {
    match cell.status() {
        Status::Active if now < cell.soft_expires_at() => LeaseState::Active,
        Status::Active if now < cell.hard_expires_at() => LeaseState::InGrace,
        Status::Active | Status::Revoked => LeaseState::Revoked,
        Status::Released if cell.pending() > 0 => LeaseState::Draining,
        Status::Released => LeaseState::Released,
        Status::Broken => LeaseState::Broken,
        Status::Stopped => LeaseState::Stopped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type S = State<u32, &'static str>;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn req(owner: &str, lease: u64, grace: u64) -> LeaseRequest {
        LeaseRequest { owner: Some(owner.into()), duration: secs(lease), grace: secs(grace) }
    }

    fn running(max: usize, pools: Vec<u32>, desired: usize, t0: Instant) -> S {
        let mut st = S::new(max, 1, t0);
        st.start(pools, desired);
        st
    }

    fn granted(step: AcquireStep<u32, &'static str>) -> Grant<u32> {
        match step {
            AcquireStep::Granted(g, _) => g,
            other => panic!("expected a grant, got {other:?}"),
        }
    }

    #[test]
    fn acquire_takes_front_then_reserves_up_to_max_then_is_busy() {
        let t0 = Instant::now();
        let mut st = running(3, vec![1, 2], 2, t0);
        assert_eq!(granted(st.try_acquire(&req("a", 10, 1), t0)).pool, 1);
        assert_eq!(granted(st.try_acquire(&req("b", 10, 1), t0)).pool, 2);
        assert!(matches!(st.try_acquire(&req("c", 10, 1), t0), AcquireStep::Reserved));
        assert_eq!(st.creating(), 1);
        assert!(matches!(st.try_acquire(&req("d", 10, 1), t0), AcquireStep::Busy));
        let (grant, _) = st.finish_reservation(st.epoch, Ok(3), req("c", 10, 1), t0, None);
        assert_eq!(grant.unwrap().pool, 3);
        assert_eq!((st.leased(), st.creating()), (3, 0));
    }

    #[test]
    fn freed_pool_goes_to_the_first_waiter_only_and_newcomers_queue_behind() {
        let t0 = Instant::now();
        let mut st = running(1, vec![7], 1, t0);
        let held = granted(st.try_acquire(&req("holder", 10, 1), t0));
        let w1 = st.enqueue(req("w1", 10, 1), "w1", t0);
        let w2 = st.enqueue(req("w2", 10, 1), "w2", t0);
        let t1 = t0 + secs(1);
        held.release();
        let effects = st.finalize(held.info.id, t1);
        assert_eq!(effects.woken, vec!["w1"], "exactly one waiter is woken");
        assert!(effects.retire.is_empty());
        assert!(st.take_delivery(w2).is_none());
        match st.take_delivery(w1) {
            Some(Handoff::Lease(g)) => {
                assert_eq!(g.pool, 7);
                assert_eq!(g.info.owner.as_deref(), Some("w1"));
                assert_eq!(g.info.leased_at, t1);
            }
            other => panic!("expected a lease for w1, got {other:?}"),
        }
        // A newcomer never overtakes w2, even with capacity in flux.
        assert!(matches!(st.try_acquire(&req("late", 10, 1), t1), AcquireStep::Busy));
        assert_eq!(st.counters.leases_after_wait, 1);
        assert_eq!(st.counters.max_acquire_wait, secs(1));
    }

    #[test]
    fn a_waiter_that_gives_up_after_a_delivery_still_gets_it() {
        let t0 = Instant::now();
        let mut st = running(1, vec![1], 1, t0);
        let held = granted(st.try_acquire(&req("h", 10, 1), t0));
        let w = st.enqueue(req("w", 10, 1), "w", t0);
        held.release();
        st.finalize(held.info.id, t0);
        // The waiter's timeout fires now: it checks its delivery first, under the lock.
        assert!(matches!(st.take_delivery(w), Some(Handoff::Lease(_))));
        st.abandon(w, true);
        assert_eq!(st.leased(), 1, "the handed-off lease is kept, not lost");
    }

    #[test]
    fn release_keeps_pools_only_up_to_desired() {
        // Reference 3.4.2: max 3, min 1, no size provider; releasing three on-demand pools one
        // at a time leaves totals 2, 1, 1.
        let t0 = Instant::now();
        let mut st = running(3, vec![1], 1, t0);
        let a = granted(st.try_acquire(&req("a", 10, 1), t0));
        for pool in [2, 3] {
            assert!(matches!(st.try_acquire(&req("x", 10, 1), t0), AcquireStep::Reserved));
            st.finish_reservation(st.epoch, Ok(pool), req("x", 10, 1), t0, None).0.unwrap();
        }
        let ids: Vec<_> = st.leases.iter().map(|r| r.cell.info.id).collect();
        assert_eq!(ids[0], a.info.id);
        let mut totals = Vec::new();
        for id in ids {
            let effects = st.finalize(id, t0);
            totals.push(st.available() + st.leased());
            assert!(effects.retire.iter().all(|(_, r)| *r == RetireReason::Shrink));
        }
        assert_eq!(totals, vec![2, 1, 1]);
        assert_eq!(st.counters.pools_retired_shrink, 2);
    }

    #[test]
    fn expired_release_is_retired_and_capacity_is_requested() {
        let t0 = Instant::now();
        let mut st = running(2, vec![1], 1, t0);
        let g = granted(st.try_acquire(&req("a", 1, 1), t0));
        let effects = st.finalize(g.info.id, t0 + secs(2));
        assert_eq!(effects.retire, vec![(1, RetireReason::Expired)]);
        assert!(effects.wake_checker, "below desired: the checker must grow");
    }

    #[test]
    fn checker_pass_revokes_warns_once_shrinks_newest_and_reserves_growth() {
        log::set_max_level(log::LevelFilter::Trace); // events are only built when logging is on
        let t0 = Instant::now();
        let mut st = running(4, vec![1, 2, 3], 3, t0);
        let g = granted(st.try_acquire(&req("short", 5, 5), t0));
        // Soft expiry: one warning, no revocation.
        let (effects, build) = st.checker_pass(3, t0 + secs(6));
        assert_eq!(build, 0);
        assert!(matches!(effects.events.iter().collect::<Vec<_>>().as_slice(), [Event::SoftExpired { .. }]));
        let (effects, _) = st.checker_pass(3, t0 + secs(7));
        assert!(effects.events.is_empty(), "soft expiry is logged once");
        assert_eq!(lease_state(&g, t0 + secs(7)), LeaseState::InGrace);
        // Hard expiry: revoked, pool retired, growth reserved back to desired.
        let (effects, build) = st.checker_pass(3, t0 + secs(10));
        assert_eq!(effects.retire, vec![(1, RetireReason::Expired)]);
        assert_eq!(effects.ended.len(), 1);
        assert_eq!(g.status(), Status::Revoked);
        assert_eq!(build, 1);
        st.add_built(st.epoch, vec![9], 0, t0 + secs(10));
        // Shrink to 1: newest idle pools go first, the oldest stays.
        let (effects, build) = st.checker_pass(1, t0 + secs(11));
        assert_eq!(build, 0);
        assert_eq!(effects.retire, vec![(9, RetireReason::Shrink), (3, RetireReason::Shrink)]);
        assert_eq!(st.idle, vec![2]);
    }

    #[test]
    fn shrink_never_touches_leased_pools() {
        let t0 = Instant::now();
        let mut st = running(3, vec![1, 2], 2, t0);
        granted(st.try_acquire(&req("a", 100, 1), t0));
        granted(st.try_acquire(&req("b", 100, 1), t0));
        let (effects, _) = st.checker_pass(1, t0 + secs(1));
        assert!(effects.retire.is_empty());
        assert_eq!(st.leased(), 2);
    }

    #[test]
    fn renew_moves_deadlines_and_refuses_after_hard_expiry() {
        let t0 = Instant::now();
        let mut st = running(1, vec![1], 1, t0);
        let g = granted(st.try_acquire(&req("a", 10, 2), t0));
        let hard = st.renew(g.info.id, secs(5), t0 + secs(1)).unwrap();
        assert_eq!(hard, t0 + secs(17));
        assert_eq!(g.soft_expires_at(), t0 + secs(15));
        assert_eq!(st.renew(g.info.id, secs(5), t0 + secs(17)), Err(Some(Status::Revoked)));
        assert_eq!(st.counters.leases_renewed, 1);
    }

    #[test]
    fn renew_of_a_sooner_deadline_wakes_a_sleeping_checker_only_when_needed() {
        let t0 = Instant::now();
        let mut st = running(2, vec![1, 2], 2, t0);
        st.checker_due = Some(t0 + secs(100));
        let (_, effects) = match st.try_acquire(&req("late", 500, 1), t0) {
            AcquireStep::Granted(g, e) => (g, e),
            other => panic!("{other:?}"),
        };
        assert!(!effects.wake_checker, "a deadline after the checker's own wake-up needs no kick");
        let effects = match st.try_acquire(&req("soon", 1, 1), t0) {
            AcquireStep::Granted(_, e) => e,
            other => panic!("{other:?}"),
        };
        assert!(effects.wake_checker);
    }

    #[test]
    fn failed_reservation_passes_capacity_to_the_next_waiter() {
        let t0 = Instant::now();
        let mut st = running(1, vec![], 1, t0);
        assert!(matches!(st.try_acquire(&req("a", 10, 1), t0), AcquireStep::Reserved));
        let w = st.enqueue(req("w", 10, 1), "w", t0);
        let (grant, effects) = st.finish_reservation(st.epoch, Err(()), req("a", 10, 1), t0, None);
        assert!(grant.is_none());
        assert_eq!(effects.woken, vec!["w"]);
        assert!(matches!(st.take_delivery(w), Some(Handoff::Reservation)));
        assert_eq!(st.creating(), 1);
        assert_eq!(st.counters.pools_retired_broken, 1);
    }

    #[test]
    fn stop_ends_every_lease_wakes_waiters_and_voids_old_reservations() {
        let t0 = Instant::now();
        let mut st = running(2, vec![1], 1, t0);
        let g = granted(st.try_acquire(&req("a", 10, 1), t0));
        assert!(matches!(st.try_acquire(&req("b", 10, 1), t0), AcquireStep::Reserved));
        let epoch = st.epoch;
        st.enqueue(req("w", 10, 1), "w", t0);
        let effects = st.begin_stop();
        assert_eq!(g.status(), Status::Stopped);
        assert_eq!(effects.woken, vec!["w"]);
        assert_eq!(effects.retire, vec![(1, RetireReason::Stopped)]);
        assert!(matches!(st.try_acquire(&req("c", 10, 1), t0), AcquireStep::NotRunning));
        st.finish_stop();
        st.start(vec![5], 1);
        let (grant, effects) = st.finish_reservation(epoch, Ok(2), req("b", 10, 1), t0, None);
        assert!(grant.is_none(), "a reservation from before the stop never yields a lease");
        assert_eq!(effects.retire, vec![(2, RetireReason::Stopped)]);
        assert_eq!(st.creating(), 0);
    }

    #[test]
    fn a_pool_that_breaks_ends_its_lease_or_leaves_the_idle_set() {
        let t0 = Instant::now();
        let mut st = running(3, vec![1, 2, 3], 3, t0);
        let lease = granted(st.try_acquire(&req("a", 10, 1), t0));
        assert_eq!(lease.pool, 1);
        // Idle pool 3 breaks: it leaves the idle set, counted as broken, and the checker is asked
        // to replace it.
        let fx = st.pool_broke(|p| *p == 3, t0);
        assert_eq!(fx.retire, vec![(3, RetireReason::Broken)]);
        assert!(fx.wake_checker);
        assert_eq!((st.available(), st.leased()), (1, 1));
        // Leased pool 1 breaks: its lease ends as broken.
        let fx = st.pool_broke(|p| *p == 1, t0);
        assert_eq!(fx.retire, vec![(1, RetireReason::Broken)]);
        assert_eq!(lease.status(), Status::Broken);
        assert_eq!(st.counters.pools_retired_broken, 2);
        // An unknown pool is a no-op.
        assert!(st.pool_broke(|p| *p == 9, t0).is_empty());
    }

    #[test]
    fn broken_lease_is_retired_and_replacement_requested() {
        let t0 = Instant::now();
        let mut st = running(1, vec![1], 1, t0);
        let g = granted(st.try_acquire(&req("a", 10, 1), t0));
        let effects = st.end_lease(g.info.id, Status::Broken, t0);
        assert_eq!(effects.retire, vec![(1, RetireReason::Broken)]);
        assert!(effects.wake_checker);
        assert_eq!(g.status(), Status::Broken);
        assert_eq!(st.counters.pools_retired_broken, 1);
        assert_eq!(st.counters.leases_revoked, 0);
    }
}
