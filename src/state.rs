//! The manager's state machine as plain data.
//!
//! `State` owns no threads, reads no clock and calls no user code: every method takes `now` and
//! returns what must happen next ([`Effects`]: pools to retire, pools to build, waiters to wake,
//! whether the checker must run, log events). The manager applies those effects after dropping
//! its lock. Pools (`P`) and waiter signals (`W`) are opaque here, which keeps every rule
//! unit-testable with virtual time and lets the loom model drive the real hand-off code.
//!
//! Idle pools are handed out most-recently-returned first (LIFO: its threads are the likeliest
//! to be awake and its caches warm), and the checker's shrink retires the longest-idle first.
//!
//! Capacity is `idle + delivered + leased + creating <= max_pools`, where `creating` counts pools
//! being built off the lock by builder threads (for queued waiters, for a fail-fast caller that
//! found room, or for the checker) and `delivered` counts pools handed to a waiter that has not
//! taken them yet.
//!
//! ## Bounded fairness
//! Waiters queue in arrival order. A freed pool normally goes back to the idle set and the front
//! waiter is *woken* to take it, so a caller that is already running may take it first (no OS
//! wake-up on the hot path). A waiter that has waited at least the fairness bound is *starving*:
//! a freed pool is then *handed* to it directly (FIFO among starving waiters) and no newcomer
//! may take an idle pool before it. A bound of zero makes every waiter starving at once: strict
//! FIFO hand-off, newcomers never overtake.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cell::{LeaseCell, LeaseInfo, Status};
use crate::ids::LeaseId;
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

impl RetireReason {
    /// Whether running work must be stopped (process pools terminate busy workers): the lease
    /// expired or the manager stopped. A shrunk or broken pool lets running work finish.
    pub(crate) fn kills_running(self) -> bool {
        matches!(self, RetireReason::Expired | RetireReason::Stopped)
    }
}

/// What a caller asked for in an acquire.
#[derive(Debug, Clone)]
pub(crate) struct LeaseRequest {
    pub owner: Option<Arc<str>>,
    pub duration: Duration,
    pub grace: Duration,
}

impl LeaseRequest {
    /// Whether `now + duration + grace` is representable (the only way a grant can fail).
    ///
    /// With a century of headroom, so that a waiter granted long after it asked (its deadline is
    /// computed from the hand-off) can never overflow either.
    pub(crate) fn deadline_fits(&self, now: Instant) -> bool {
        const HEADROOM: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
        now.checked_add(self.duration)
            .and_then(|s| s.checked_add(self.grace))
            .and_then(|h| h.checked_add(HEADROOM))
            .is_some()
    }
}

/// A lease created under the lock (its facts, pool and status word in one allocation), ready to
/// be wrapped into an `ExecutorLease`.
pub(crate) type Grant<P> = Arc<LeaseCell<P>>;

/// What was handed to a queued waiter, waiting for it to take it.
#[derive(Debug)]
enum Handoff<P> {
    /// A pool; the lease is created when the waiter takes it.
    Pool(P),
    /// The pool built for this waiter could not be built.
    Failed(String),
    /// The manager stopped while it waited.
    Stopped,
}

/// What a caller that is not queued found.
#[derive(Debug)]
pub(crate) enum AcquireStep<P, W> {
    Granted(Grant<P>, Effects<P, W>),
    /// No idle pool for a newcomer. `building` is whether the manager is below `max_pools` (a
    /// pool can be built): a queued waiter gets one built for it.
    Busy {
        building: bool,
    },
    NotRunning,
}

/// What a queued waiter found when it looked at its entry.
#[derive(Debug)]
pub(crate) enum WaiterPoll<P> {
    /// It has a lease (and has left the queue).
    Granted(Grant<P>),
    /// The pool built for it could not be built (it has left the queue).
    Failed(String),
    /// The manager is not running (it has left the queue).
    NotRunning,
    /// Nothing yet: it stays queued and is woken when something changes for it.
    Pending,
}

/// Pools to build off the lock, and for whom.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Builds {
    /// For queued waiters (a failure is reported to the front waiter).
    pub demand: usize,
    /// For the idle set (the checker's growth, a fail-fast caller that found room).
    pub spare: usize,
    /// The start they belong to (a build reported under another epoch is void).
    pub epoch: u64,
}

impl Builds {
    pub(crate) fn total(&self) -> usize {
        self.demand + self.spare
    }
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
    /// Signals of waiters that were handed something or must look again (only they are woken).
    pub woken: Vec<W>,
    /// Pools to build off the lock (then report each with [`State::built`]).
    pub build: Builds,
    pub wake_checker: bool,
    pub events: Events,
}

impl<P, W> Default for Effects<P, W> {
    fn default() -> Self {
        Effects {
            retire: Vec::new(),
            ended: Vec::new(),
            woken: Vec::new(),
            build: Builds::default(),
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
            && self.build.total() == 0
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
    since: Instant,
    /// When the waiter gives up. The checker wakes it then (once), so a waiter needs no timer
    /// of its own (a future polled by any runtime, or none).
    deadline: Option<Instant>,
    timeout_woken: bool,
    /// Woken to look for an idle pool and not yet back: it counts as "on its way" to one idle
    /// pool, so each idle pool wakes one waiter, not all of them.
    notified: bool,
}

/// A pool handed to a waiter that has not taken it yet.
#[derive(Debug)]
struct Delivery<P> {
    waiter: u64,
    since: Instant,
    handoff: Handoff<P>,
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

/// Consecutive failed spare builds make the checker wait this long (doubling) before it builds
/// again, so a start hook that always fails does not become a build loop.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a pool built for a fail-fast caller is kept above the target for them.
const SPARE_HOLD: Duration = Duration::from_secs(5);

/// The manager's state. See the module docs.
#[derive(Debug)]
pub(crate) struct State<P, W> {
    pub phase: Phase,
    /// Incremented by every start; builds from an older epoch are void.
    pub epoch: u64,
    pub max_pools: usize,
    /// The last desired count computed from the size provider.
    pub desired: usize,
    /// How long a waiter may be overtaken by running callers (see the module docs).
    fairness: Duration,
    /// Origin instant for lease deadlines (see `LeaseCell`).
    origin: Instant,
    idle: VecDeque<P>,
    leases: Vec<LeaseRecord<P>>,
    /// Pools being built (all kinds).
    creating: usize,
    /// Of those, the ones built for queued waiters.
    creating_demand: usize,
    waiters: VecDeque<Waiter<W>>,
    /// How many queued waiters are `notified`.
    notified: usize,
    deliveries: Vec<Delivery<P>>,
    next_lease_id: u64,
    next_waiter_id: u64,
    /// The checker builds no spare pool before this (after failed builds).
    spare_backoff: Option<(Instant, Duration)>,
    /// A pool built for a fail-fast caller (`request_spare`) is not shrunk before this, so the
    /// caller that was told `Starting` can come back for it.
    shrink_hold: Option<Instant>,
    /// When the sleeping checker will wake by itself; `None` while it is awake (it recomputes
    /// its deadline under the lock right before sleeping, so nothing is missed).
    pub checker_due: Option<Instant>,
    /// A wake-up requested while the checker was not sleeping.
    pub checker_kick: bool,
    pub counters: LeaseCounters,
}

impl<P: Clone, W: Clone> State<P, W> {
    pub(crate) fn new(max_pools: usize, min_pools: usize, fairness: Duration, origin: Instant) -> Self {
        State {
            phase: Phase::Stopped,
            epoch: 0,
            max_pools,
            desired: min_pools,
            fairness,
            origin,
            idle: VecDeque::new(),
            leases: Vec::new(),
            creating: 0,
            creating_demand: 0,
            waiters: VecDeque::new(),
            notified: 0,
            deliveries: Vec::new(),
            next_lease_id: 1,
            next_waiter_id: 1,
            spare_backoff: None,
            shrink_hold: None,
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
        let delivered = self.deliveries.iter().filter(|d| matches!(d.handoff, Handoff::Pool(_))).count();
        self.idle.len() + delivered + self.leases.len() + self.creating
    }

    /// Stopped → running with these freshly built pools.
    pub(crate) fn start(&mut self, pools: Vec<P>, desired: usize) {
        debug_assert_eq!(self.phase, Phase::Stopped);
        self.phase = Phase::Running;
        self.epoch += 1;
        self.desired = desired;
        self.counters.pools_created += pools.len() as u64;
        self.idle.extend(pools);
        self.spare_backoff = None;
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
        for delivery in self.deliveries.drain(..) {
            if let Handoff::Pool(pool) = delivery.handoff {
                effects.retire.push((pool, RetireReason::Stopped));
            }
        }
        self.creating = 0;
        self.creating_demand = 0;
        self.counters.pools_retired_stopped += effects.retire.len() as u64;
        // Every waiter is told (even if a restart comes before it looks) and woken.
        self.notified = 0;
        for waiter in self.waiters.drain(..) {
            self.deliveries.push(Delivery { waiter: waiter.id, since: waiter.since, handoff: Handoff::Stopped });
            effects.woken.push(waiter.signal);
        }
        effects
    }

    /// Stopping → stopped (after the checker was joined).
    pub(crate) fn finish_stop(&mut self) {
        self.phase = Phase::Stopped;
    }

    fn grant(
        &mut self,
        request: &LeaseRequest,
        pool: P,
        now: Instant,
        waited: Option<Duration>,
        effects: &mut Effects<P, W>,
    ) -> Grant<P> {
        // Requests are checked with `deadline_fits` (a century of headroom) before they reach
        // the state, so these only saturate in theory.
        let soft = now.checked_add(request.duration).unwrap_or(now);
        let hard = soft.checked_add(request.grace).unwrap_or(soft);
        let info = LeaseInfo {
            id: LeaseId(self.next_lease_id),
            owner: request.owner.clone(),
            grace: request.grace,
            leased_at: now,
        };
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
        cell
    }

    fn wake_checker(&mut self, effects: &mut Effects<P, W>) {
        self.checker_kick = true;
        effects.wake_checker = true;
    }

    /// Whether the front waiter has waited at least the fairness bound: then freed pools are
    /// handed to it and no newcomer may overtake it.
    fn front_starving(&self, now: Instant) -> bool {
        self.waiters.front().is_some_and(|w| now.saturating_duration_since(w.since) >= self.fairness)
    }

    /// One acquire attempt by a caller that is not queued. A newcomer takes an idle pool unless
    /// a waiter has waited past the fairness bound. It never builds a pool itself: see
    /// [`enqueue`](Self::enqueue) and [`request_spare`](Self::request_spare).
    pub(crate) fn try_acquire(&mut self, request: &LeaseRequest, now: Instant) -> AcquireStep<P, W> {
        if self.phase != Phase::Running {
            return AcquireStep::NotRunning;
        }
        if !self.front_starving(now) {
            if let Some(pool) = self.idle.pop_back() {
                let mut effects = Effects::default();
                let grant = self.grant(request, pool, now, None, &mut effects);
                return AcquireStep::Granted(grant, effects);
            }
        }
        AcquireStep::Busy { building: self.owned() < self.max_pools }
    }

    /// A fail-fast caller found no idle pool but room below `max_pools`: build one for the idle
    /// set (it does not wait for it). Counts the refusal.
    pub(crate) fn request_spare(&mut self, building: bool) -> Effects<P, W> {
        let mut effects = Effects::default();
        self.counters.acquire_unavailable += 1;
        if building && self.phase == Phase::Running && self.owned() < self.max_pools {
            self.creating += 1;
            effects.build.spare += 1;
            effects.build.epoch = self.epoch;
        }
        effects
    }

    /// Queues a caller; it is woken through `signal` whenever it should look at its entry again
    /// ([`poll_waiter`](Self::poll_waiter)). A pool is built for it if there is room.
    pub(crate) fn enqueue(&mut self, signal: W, now: Instant, deadline: Option<Instant>) -> (u64, Effects<P, W>) {
        let id = self.next_waiter_id;
        self.next_waiter_id += 1;
        self.waiters.push_back(Waiter { id, signal, since: now, deadline, timeout_woken: false, notified: false });
        let mut effects = Effects::default();
        if deadline.is_some_and(|d| self.checker_due.is_some_and(|due| d < due)) {
            self.wake_checker(&mut effects);
        }
        self.dispatch(now, &mut effects);
        (id, effects)
    }

    fn waiter_index(&self, id: u64) -> Option<usize> {
        self.waiters.iter().position(|w| w.id == id)
    }

    fn remove_waiter(&mut self, at: usize) -> Waiter<W> {
        let waiter = self.waiters.remove(at).expect("index from waiter_index");
        if waiter.notified {
            self.notified -= 1;
        }
        waiter
    }

    /// A queued waiter looks at its entry: takes what was handed to it, or an idle pool it was
    /// woken for, or stays queued (`Pending`).
    pub(crate) fn poll_waiter(
        &mut self,
        id: u64,
        request: &LeaseRequest,
        now: Instant,
    ) -> (WaiterPoll<P>, Effects<P, W>) {
        let mut effects = Effects::default();
        if let Some(polled) = self.take_delivery(id, request, now, &mut effects) {
            return (polled, effects);
        }
        let Some(at) = self.waiter_index(id) else {
            // Not queued and nothing delivered: the manager stopped (or restarted) meanwhile.
            return (WaiterPoll::NotRunning, effects);
        };
        if self.phase != Phase::Running {
            self.remove_waiter(at);
            return (WaiterPoll::NotRunning, effects);
        }
        // Starving waiters ahead of this one are served first (possibly this one too).
        self.dispatch(now, &mut effects);
        if let Some(polled) = self.take_delivery(id, request, now, &mut effects) {
            return (polled, effects);
        }
        let at = self.waiter_index(id).expect("still queued: nothing was delivered");
        if !self.idle.is_empty() {
            // No starving waiter is left (dispatch serves them while pools are idle): take one.
            let waiter = self.remove_waiter(at);
            let pool = self.idle.pop_back().expect("checked non-empty");
            let waited = now.saturating_duration_since(waiter.since);
            let grant = self.grant(request, pool, now, Some(waited), &mut effects);
            self.dispatch(now, &mut effects);
            return (WaiterPoll::Granted(grant), effects);
        }
        let waiter = &mut self.waiters[at];
        if std::mem::take(&mut waiter.notified) {
            self.notified -= 1;
        }
        (WaiterPoll::Pending, effects)
    }

    fn take_delivery(
        &mut self,
        id: u64,
        request: &LeaseRequest,
        now: Instant,
        effects: &mut Effects<P, W>,
    ) -> Option<WaiterPoll<P>> {
        let at = self.deliveries.iter().position(|d| d.waiter == id)?;
        let delivery = self.deliveries.swap_remove(at);
        Some(match delivery.handoff {
            Handoff::Pool(pool) => {
                let waited = now.saturating_duration_since(delivery.since);
                WaiterPoll::Granted(self.grant(request, pool, now, Some(waited), effects))
            }
            Handoff::Failed(reason) => WaiterPoll::Failed(reason),
            Handoff::Stopped => WaiterPoll::NotRunning,
        })
    }

    /// A waiter gives up (timeout, interrupt, a dropped future, not running). Whatever was
    /// handed to it and not taken is passed on as a release would: to the next waiter, or back
    /// to the idle set. It never takes a lease.
    pub(crate) fn cancel_waiter(&mut self, id: u64, timed_out: bool, now: Instant) -> Effects<P, W> {
        let mut effects = Effects::default();
        if let Some(at) = self.waiter_index(id) {
            self.remove_waiter(at);
        } else if let Some(at) = self.deliveries.iter().position(|d| d.waiter == id) {
            if let Handoff::Pool(pool) = self.deliveries.swap_remove(at).handoff {
                // It was this pool's next holder: the pool goes back to the front of the line.
                self.idle.push_back(pool);
            }
        } else {
            return effects;
        }
        if timed_out {
            self.counters.acquire_timeouts += 1;
        }
        if self.phase == Phase::Running {
            self.dispatch(now, &mut effects);
        }
        effects
    }

    /// A pool built off the lock (`Ok`) or a failed build (`Err`, with the reason). A pool goes
    /// to the waiters first, then to the idle set; a failed build for waiters fails the front
    /// waiter (it would otherwise wait for a pool that cannot be built).
    pub(crate) fn built(&mut self, epoch: u64, demand: bool, built: Result<P, String>, now: Instant) -> Effects<P, W> {
        let mut effects = Effects::default();
        let current = epoch == self.epoch && self.phase == Phase::Running;
        if current {
            self.creating -= 1;
            if demand {
                self.creating_demand -= 1;
            }
        }
        match built {
            Ok(pool) => {
                self.counters.pools_created += 1;
                if !current {
                    self.counters.pools_retired_stopped += 1;
                    effects.retire.push((pool, RetireReason::Stopped));
                    return effects;
                }
                if !demand {
                    self.spare_backoff = None;
                    if self.owned() >= self.desired {
                        // Above the target only a fail-fast caller asked for it: hold it for them.
                        self.shrink_hold = Some(now + SPARE_HOLD);
                    }
                }
                self.idle.push_back(pool);
            }
            Err(reason) => {
                self.counters.pools_retired_broken += 1;
                if !current {
                    return effects;
                }
                if demand && !self.waiters.is_empty() {
                    let waiter = self.remove_waiter(0);
                    self.deliveries.push(Delivery {
                        waiter: waiter.id,
                        since: waiter.since,
                        handoff: Handoff::Failed(reason),
                    });
                    effects.woken.push(waiter.signal);
                } else {
                    let next = self.spare_backoff.map_or(FIRST_BACKOFF, |(_, b)| (b * 2).min(MAX_BACKOFF));
                    self.spare_backoff = Some((now + next, next));
                }
            }
        }
        self.after_capacity_change(now, &mut effects);
        effects
    }

    /// Serves the queue after anything changed: idle pools are handed to starving waiters (FIFO),
    /// then each remaining idle pool wakes one waiter that is not already on its way, then pools
    /// are built for waiters that no idle or building pool covers (within `max_pools`).
    fn dispatch(&mut self, now: Instant, effects: &mut Effects<P, W>) {
        while !self.idle.is_empty() && self.front_starving(now) {
            let waiter = self.remove_waiter(0);
            let pool = self.idle.pop_back().expect("checked non-empty");
            self.deliveries.push(Delivery { waiter: waiter.id, since: waiter.since, handoff: Handoff::Pool(pool) });
            effects.woken.push(waiter.signal);
        }
        let mut wake = self.idle.len().saturating_sub(self.notified);
        if wake > 0 {
            for waiter in self.waiters.iter_mut().filter(|w| !w.notified) {
                if wake == 0 {
                    break;
                }
                waiter.notified = true;
                effects.woken.push(waiter.signal.clone());
                self.notified += 1;
                wake -= 1;
            }
        }
        let uncovered = self.waiters.len().saturating_sub(self.idle.len() + self.creating_demand);
        let build = uncovered.min(self.max_pools.saturating_sub(self.owned()));
        if build > 0 {
            self.creating += build;
            self.creating_demand += build;
            effects.build.demand += build;
            effects.build.epoch = self.epoch;
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
    /// `desired`, and ask for the pools needed to grow to it (in `effects.build.spare`; none
    /// while failed builds back off).
    pub(crate) fn checker_pass(&mut self, desired: usize, now: Instant) -> Effects<P, W> {
        let mut effects = Effects::default();
        if self.phase != Phase::Running {
            return effects;
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
        for waiter in self.waiters.iter_mut() {
            if !waiter.timeout_woken && waiter.deadline.is_some_and(|d| now >= d) {
                // It gives up when it looks (and leaves the queue then).
                waiter.timeout_woken = true;
                effects.woken.push(waiter.signal.clone());
            }
        }
        self.dispatch(now, &mut effects);
        if self.shrink_hold.is_some_and(|until| now >= until) {
            self.shrink_hold = None;
        }
        let held = self.shrink_hold.is_some();
        while !held && self.owned() > desired && self.waiters.is_empty() {
            let Some(pool) = self.idle.pop_front() else { break };
            self.count_retired(RetireReason::Shrink);
            effects.retire.push((pool, RetireReason::Shrink));
        }
        if self.spare_backoff.is_none_or(|(until, _)| now >= until) {
            let build = desired.saturating_sub(self.owned());
            self.creating += build;
            effects.build.spare += build;
            effects.build.epoch = self.epoch;
        }
        effects
    }

    /// The instant the checker must next wake for a lease deadline, a waiter's timeout or the
    /// end of a build backoff, if any.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let backoff = self.spare_backoff.map(|(until, _)| until).filter(|_| self.owned() < self.desired);
        let waiters = self.waiters.iter().filter(|w| !w.timeout_woken).filter_map(|w| w.deadline);
        let hold = self.shrink_hold.filter(|_| self.owned() > self.desired);
        self.leases.iter().map(LeaseRecord::next_deadline).chain(backoff).chain(waiters).chain(hold).min()
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

    /// A running state with strict FIFO (fairness bound zero) unless `fairness` says otherwise.
    fn running_with(max: usize, pools: Vec<u32>, desired: usize, fairness: Duration, t0: Instant) -> S {
        let mut st = S::new(max, 1, fairness, t0);
        st.start(pools, desired);
        st
    }

    fn running(max: usize, pools: Vec<u32>, desired: usize, t0: Instant) -> S {
        running_with(max, pools, desired, Duration::ZERO, t0)
    }

    fn granted(step: AcquireStep<u32, &'static str>) -> Grant<u32> {
        match step {
            AcquireStep::Granted(g, _) => g,
            other => panic!("expected a grant, got {other:?}"),
        }
    }

    fn poll(st: &mut S, id: u64, owner: &str, now: Instant) -> (WaiterPoll<u32>, Effects<u32, &'static str>) {
        st.poll_waiter(id, &req(owner, 10, 1), now)
    }

    impl S {
        fn enqueue_t(&mut self, signal: &'static str, now: Instant) -> (u64, Effects<u32, &'static str>) {
            self.enqueue(signal, now, None)
        }
    }

    #[test]
    fn the_checker_wakes_a_waiter_at_its_deadline_once() {
        let t0 = Instant::now();
        let mut st = running(1, vec![1], 1, t0);
        let _held = granted(st.try_acquire(&req("h", 10, 1), t0));
        st.checker_due = Some(t0 + secs(100));
        let (w, fx) = st.enqueue("w", t0, Some(t0 + secs(1)));
        assert!(fx.wake_checker, "an earlier deadline than the checker's wake-up kicks it");
        assert_eq!(st.next_deadline(), Some(t0 + secs(1)));
        assert!(st.checker_pass(1, t0 + secs(1) / 2).woken.is_empty());
        assert_eq!(st.checker_pass(1, t0 + secs(1)).woken, vec!["w"]);
        assert!(st.checker_pass(1, t0 + secs(2)).woken.is_empty(), "woken once");
        assert_eq!(st.next_deadline(), Some(t0 + secs(10)), "only the lease's deadline is left");
        st.cancel_waiter(w, true, t0 + secs(2));
        assert_eq!((st.waiting(), st.counters.acquire_timeouts), (0, 1));
    }

    fn lease_of(polled: WaiterPoll<u32>) -> Grant<u32> {
        match polled {
            WaiterPoll::Granted(g) => g,
            other => panic!("expected a lease, got {other:?}"),
        }
    }

    #[test]
    fn newcomers_take_idle_pools_and_waiters_get_pools_built_up_to_max() {
        let t0 = Instant::now();
        let mut st = running(3, vec![1, 2], 2, t0);
        // The most recently returned (warmest) idle pool goes first.
        assert_eq!(granted(st.try_acquire(&req("a", 10, 1), t0)).pool, 2);
        assert_eq!(granted(st.try_acquire(&req("b", 10, 1), t0)).pool, 1);
        // No idle pool, room for one more: a newcomer is told a pool can be built, but never
        // builds it itself.
        assert!(matches!(st.try_acquire(&req("c", 10, 1), t0), AcquireStep::Busy { building: true }));
        // Queued, it gets one built off the lock (exactly one: the cap is 3).
        let (c, fx) = st.enqueue_t("c", t0);
        assert_eq!(fx.build, Builds { demand: 1, spare: 0, epoch: st.epoch });
        let (_d, fx) = st.enqueue_t("d", t0);
        assert_eq!(fx.build.total(), 0, "at max_pools nothing more is built");
        assert_eq!(st.creating(), 1);
        let fx = st.built(st.epoch, true, Ok(3), t0);
        assert_eq!(fx.woken, vec!["c"], "the built pool goes to the first waiter");
        let (polled, _) = poll(&mut st, c, "c", t0);
        assert_eq!(lease_of(polled).pool, 3);
        assert_eq!((st.leased(), st.creating(), st.waiting()), (3, 0, 1));
        assert!(matches!(st.try_acquire(&req("e", 10, 1), t0), AcquireStep::Busy { building: false }));
    }

    #[test]
    fn freed_pool_goes_to_the_first_waiter_only_and_newcomers_queue_behind() {
        let t0 = Instant::now();
        let mut st = running(1, vec![7], 1, t0);
        let held = granted(st.try_acquire(&req("holder", 10, 1), t0));
        let (w1, _) = st.enqueue_t("w1", t0);
        let (w2, _) = st.enqueue_t("w2", t0);
        let t1 = t0 + secs(1);
        held.release();
        let effects = st.finalize(held.info.id, t1);
        assert_eq!(effects.woken, vec!["w1"], "exactly one waiter is woken");
        assert!(effects.retire.is_empty());
        assert!(matches!(poll(&mut st, w2, "w2", t1).0, WaiterPoll::Pending));
        let g = lease_of(poll(&mut st, w1, "w1", t1).0);
        assert_eq!(g.pool, 7);
        assert_eq!(g.info.owner.as_deref(), Some("w1"));
        assert_eq!(g.info.leased_at, t1);
        // With a zero fairness bound a newcomer never overtakes w2.
        assert!(matches!(st.try_acquire(&req("late", 10, 1), t1), AcquireStep::Busy { .. }));
        assert_eq!(st.counters.leases_after_wait, 1);
        assert_eq!(st.counters.max_acquire_wait, secs(1));
    }

    #[test]
    fn a_waiter_that_looks_after_a_delivery_gets_it_and_one_that_cancels_passes_it_on() {
        let t0 = Instant::now();
        let mut st = running(1, vec![1], 1, t0);
        let held = granted(st.try_acquire(&req("h", 10, 1), t0));
        let (w, _) = st.enqueue_t("w", t0);
        let (next, _) = st.enqueue_t("next", t0);
        held.release();
        st.finalize(held.info.id, t0);
        // `w` was handed the pool but cancels before taking it (timeout, dropped future): the
        // pool goes to `next`, never lost, and `w` holds no lease.
        let fx = st.cancel_waiter(w, true, t0);
        assert_eq!(fx.woken, vec!["next"]);
        assert_eq!(st.counters.acquire_timeouts, 1);
        assert_eq!(st.leased(), 0);
        let g = lease_of(poll(&mut st, next, "next", t0).0);
        assert_eq!(g.pool, 1);
        // Cancelling twice, or after the entry left the queue, is a no-op.
        assert!(st.cancel_waiter(w, true, t0).is_empty());
        assert_eq!(st.counters.acquire_timeouts, 1);
    }

    #[test]
    fn a_cancelled_delivery_with_nobody_waiting_goes_back_to_the_idle_set() {
        let t0 = Instant::now();
        let mut st = running(1, vec![1], 1, t0);
        let held = granted(st.try_acquire(&req("h", 10, 1), t0));
        let (w, _) = st.enqueue_t("w", t0);
        held.release();
        st.finalize(held.info.id, t0);
        st.cancel_waiter(w, false, t0);
        assert_eq!((st.available(), st.leased(), st.waiting()), (1, 0, 0));
    }

    #[test]
    fn within_the_fairness_bound_a_running_caller_may_take_a_freed_pool() {
        let t0 = Instant::now();
        let bound = Duration::from_millis(1);
        let mut st = running_with(1, vec![1], 1, bound, t0);
        let held = granted(st.try_acquire(&req("h", 10, 1), t0));
        let (w, _) = st.enqueue_t("w", t0);
        held.release();
        // Freed before the bound: it goes back to the idle set and wakes `w` (no hand-off) ...
        let t1 = t0 + Duration::from_micros(100);
        let fx = st.finalize(held.info.id, t1);
        assert_eq!(fx.woken, vec!["w"]);
        assert_eq!(st.available(), 1);
        // ... and a running newcomer may take it first; `w` then waits on.
        let barger = granted(st.try_acquire(&req("barger", 10, 1), t1));
        assert!(matches!(poll(&mut st, w, "w", t1).0, WaiterPoll::Pending));
        // Past the bound `w` is starving: the next freed pool is handed to it, and newcomers
        // queue behind it.
        let t2 = t0 + Duration::from_millis(2);
        barger.release();
        let fx = st.finalize(barger.info.id, t2);
        assert_eq!(fx.woken, vec!["w"]);
        assert_eq!(st.available(), 0, "handed over, not idle");
        assert!(matches!(st.try_acquire(&req("late", 10, 1), t2), AcquireStep::Busy { .. }));
        assert_eq!(lease_of(poll(&mut st, w, "w", t2).0).pool, 1);
    }

    #[test]
    fn an_idle_pool_wakes_one_waiter_at_a_time() {
        let t0 = Instant::now();
        let mut st = running_with(2, vec![1, 2], 2, secs(1), t0);
        let a = granted(st.try_acquire(&req("a", 10, 1), t0));
        let b = granted(st.try_acquire(&req("b", 10, 1), t0));
        let (w1, _) = st.enqueue_t("w1", t0);
        st.enqueue_t("w2", t0);
        st.enqueue_t("w3", t0);
        a.release();
        assert_eq!(st.finalize(a.info.id, t0).woken, vec!["w1"]);
        b.release();
        assert_eq!(st.finalize(b.info.id, t0).woken, vec!["w2"], "w1 is already on its way");
        let g = lease_of(poll(&mut st, w1, "w1", t0).0);
        assert_eq!(g.pool, 1);
        assert_eq!(st.waiting(), 2);
    }

    #[test]
    fn release_keeps_pools_only_up_to_desired() {
        // Reference 3.4.2: max 3, min 1, no size provider; releasing three on-demand pools one
        // at a time leaves totals 2, 1, 1.
        let t0 = Instant::now();
        let mut st = running(3, vec![1], 1, t0);
        let a = granted(st.try_acquire(&req("a", 10, 1), t0));
        for pool in [2, 3] {
            let (w, fx) = st.enqueue_t("x", t0);
            assert_eq!(fx.build.demand, 1);
            st.built(st.epoch, true, Ok(pool), t0);
            lease_of(poll(&mut st, w, "x", t0).0);
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
    fn checker_pass_revokes_warns_once_shrinks_the_longest_idle_and_requests_growth() {
        log::set_max_level(log::LevelFilter::Trace); // events are only built when logging is on
        let t0 = Instant::now();
        let mut st = running(4, vec![1, 2, 3], 3, t0);
        let g = granted(st.try_acquire(&req("short", 5, 5), t0));
        assert_eq!(g.pool, 3);
        // Soft expiry: one warning, no revocation.
        let effects = st.checker_pass(3, t0 + secs(6));
        assert_eq!(effects.build.total(), 0);
        assert!(matches!(effects.events.iter().collect::<Vec<_>>().as_slice(), [Event::SoftExpired { .. }]));
        let effects = st.checker_pass(3, t0 + secs(7));
        assert!(effects.events.is_empty(), "soft expiry is logged once");
        assert_eq!(lease_state(&g, t0 + secs(7)), LeaseState::InGrace);
        // Hard expiry: revoked, pool retired, growth requested back to desired.
        let effects = st.checker_pass(3, t0 + secs(10));
        assert_eq!(effects.retire, vec![(3, RetireReason::Expired)]);
        assert_eq!(effects.ended.len(), 1);
        assert_eq!(g.status(), Status::Revoked);
        assert_eq!(effects.build, Builds { demand: 0, spare: 1, epoch: st.epoch });
        st.built(st.epoch, false, Ok(9), t0 + secs(10));
        // Shrink to 1: the longest-idle pools go first; the most recently used one stays.
        let effects = st.checker_pass(1, t0 + secs(11));
        assert_eq!(effects.build.total(), 0);
        assert_eq!(effects.retire, vec![(1, RetireReason::Shrink), (2, RetireReason::Shrink)]);
        assert_eq!(st.idle, vec![9]);
    }

    #[test]
    fn failed_spare_builds_back_off_before_the_checker_builds_again() {
        let t0 = Instant::now();
        let mut st = running(2, vec![], 1, t0);
        assert_eq!(st.checker_pass(1, t0).build.spare, 1);
        st.built(st.epoch, false, Err("boom".into()), t0);
        assert_eq!(st.checker_pass(1, t0).build.total(), 0, "backing off");
        assert_eq!(st.next_deadline(), Some(t0 + FIRST_BACKOFF));
        assert_eq!(st.checker_pass(1, t0 + FIRST_BACKOFF).build.spare, 1);
        st.built(st.epoch, false, Err("boom".into()), t0 + FIRST_BACKOFF);
        assert_eq!(st.next_deadline(), Some(t0 + FIRST_BACKOFF * 3), "the backoff doubles");
        assert_eq!(st.counters.pools_retired_broken, 2);
    }

    #[test]
    fn a_pool_built_for_a_fail_fast_caller_is_held_for_it_before_any_shrink() {
        let t0 = Instant::now();
        let mut st = running(2, vec![1], 1, t0);
        let _a = granted(st.try_acquire(&req("a", 10, 1), t0));
        let AcquireStep::Busy { building } = st.try_acquire(&req("b", 10, 1), t0) else { panic!() };
        assert_eq!(st.request_spare(building).build.spare, 1);
        st.built(st.epoch, false, Ok(2), t0);
        // Above the target (1), but held for the caller that was told `Starting`.
        assert!(st.checker_pass(1, t0 + secs(1)).retire.is_empty());
        assert_eq!(st.next_deadline(), Some(t0 + SPARE_HOLD));
        assert_eq!(granted(st.try_acquire(&req("b", 10, 1), t0 + secs(1))).pool, 2);

        // Unclaimed, it is shrunk once the hold is over, and the hold does not linger.
        let mut st = running(2, vec![1], 1, t0);
        let _a = granted(st.try_acquire(&req("a", 100, 1), t0));
        st.request_spare(true);
        st.built(st.epoch, false, Ok(2), t0);
        assert!(st.checker_pass(1, t0 + secs(1)).retire.is_empty());
        assert_eq!(st.checker_pass(1, t0 + SPARE_HOLD).retire, vec![(2, RetireReason::Shrink)]);
        assert_eq!(st.next_deadline(), Some(t0 + secs(100)), "only the lease's soft expiry is left");
    }

    #[test]
    fn shrink_never_touches_leased_pools() {
        let t0 = Instant::now();
        let mut st = running(3, vec![1, 2], 2, t0);
        granted(st.try_acquire(&req("a", 100, 1), t0));
        granted(st.try_acquire(&req("b", 100, 1), t0));
        let effects = st.checker_pass(1, t0 + secs(1));
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
        let effects = match st.try_acquire(&req("late", 500, 1), t0) {
            AcquireStep::Granted(_, e) => e,
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
    fn a_failed_build_fails_the_front_waiter_and_the_next_one_gets_a_new_build() {
        let t0 = Instant::now();
        let mut st = running(1, vec![], 1, t0);
        let (a, fx) = st.enqueue_t("a", t0);
        assert_eq!(fx.build.demand, 1);
        let (b, fx) = st.enqueue_t("b", t0);
        assert_eq!(fx.build.total(), 0, "one pool at most");
        let fx = st.built(st.epoch, true, Err("hook panicked".into()), t0);
        assert_eq!(fx.woken, vec!["a"]);
        assert_eq!(fx.build.demand, 1, "capacity freed: b gets a build of its own");
        assert!(matches!(poll(&mut st, a, "a", t0).0, WaiterPoll::Failed(reason) if reason == "hook panicked"));
        st.built(st.epoch, true, Ok(5), t0);
        assert_eq!(lease_of(poll(&mut st, b, "b", t0).0).pool, 5);
        assert_eq!(st.counters.pools_retired_broken, 1);
    }

    #[test]
    fn a_build_whose_waiter_gave_up_is_passed_on_not_counted_broken() {
        let t0 = Instant::now();
        let mut st = running(1, vec![], 1, t0);
        let (a, _) = st.enqueue_t("a", t0);
        st.cancel_waiter(a, true, t0);
        let fx = st.built(st.epoch, true, Ok(5), t0);
        assert!(fx.retire.is_empty());
        assert_eq!((st.available(), st.counters.pools_retired_broken), (1, 0));
    }

    #[test]
    fn stop_ends_every_lease_wakes_waiters_and_voids_old_builds() {
        let t0 = Instant::now();
        let mut st = running(2, vec![1], 1, t0);
        let g = granted(st.try_acquire(&req("a", 10, 1), t0));
        let epoch = st.epoch;
        let (w, fx) = st.enqueue_t("w", t0);
        assert_eq!(fx.build.demand, 1);
        let effects = st.begin_stop();
        assert_eq!(g.status(), Status::Stopped);
        assert_eq!(effects.woken, vec!["w"]);
        assert_eq!(effects.retire, vec![(1, RetireReason::Stopped)]);
        assert!(matches!(st.try_acquire(&req("c", 10, 1), t0), AcquireStep::NotRunning));
        assert!(matches!(poll(&mut st, w, "w", t0).0, WaiterPoll::NotRunning));
        assert_eq!(st.waiting(), 0);
        st.finish_stop();
        st.start(vec![5], 1);
        let effects = st.built(epoch, true, Ok(2), t0);
        assert_eq!(effects.retire, vec![(2, RetireReason::Stopped)], "a build from before the stop is void");
        assert_eq!(st.creating(), 0);
    }

    #[test]
    fn a_pool_that_breaks_ends_its_lease_or_leaves_the_idle_set() {
        let t0 = Instant::now();
        let mut st = running(3, vec![1, 2, 3], 3, t0);
        let lease = granted(st.try_acquire(&req("a", 10, 1), t0));
        assert_eq!(lease.pool, 3);
        // Idle pool 2 breaks: it leaves the idle set, counted as broken, and the checker is asked
        // to replace it.
        let fx = st.pool_broke(|p| *p == 2, t0);
        assert_eq!(fx.retire, vec![(2, RetireReason::Broken)]);
        assert!(fx.wake_checker);
        assert_eq!((st.available(), st.leased()), (1, 1));
        // Leased pool 3 breaks: its lease ends as broken.
        let fx = st.pool_broke(|p| *p == 3, t0);
        assert_eq!(fx.retire, vec![(3, RetireReason::Broken)]);
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
