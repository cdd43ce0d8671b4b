//! The lease's lock-free status word: what the submit fast path reads instead of the manager lock.
//!
//! One `AtomicU64` holds both the status (low 3 bits) and the number of pending tasks (the rest),
//! so "release" and "last pending task finished" cannot both miss each other: whichever moves the
//! word to *released with nothing pending* is the one that finalizes the lease, exactly once.
//! Deadlines live beside it as nanoseconds since the manager's origin instant, so the submit path
//! checks hard expiry without a lock and a renewal is seen at once.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::SeqCst};
use std::sync::Weak;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::ids::LeaseId;
use crate::task::QueuedTask;

const STATUS_BITS: u64 = 3;
const STATUS_MASK: u64 = (1 << STATUS_BITS) - 1;
const ONE_PENDING: u64 = 1 << STATUS_BITS;
const MIN_PRUNE: usize = 64;

/// The immutable facts of one lease.
#[derive(Debug, Clone)]
pub(crate) struct LeaseInfo {
    pub id: LeaseId,
    pub owner: Option<std::sync::Arc<str>>,
    pub grace: Duration,
    pub leased_at: Instant,
}

/// Where a lease is in its life, as far as accepting work goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Accepting work.
    Active = 0,
    /// Released by its holder; draining while tasks are pending.
    Released = 1,
    /// Revoked at hard expiry.
    Revoked = 2,
    /// Its pool broke.
    Broken = 3,
    /// The manager stopped.
    Stopped = 4,
}

impl Status {
    fn of(word: u64) -> Status {
        match word & STATUS_MASK {
            0 => Status::Active,
            1 => Status::Released,
            2 => Status::Revoked,
            3 => Status::Broken,
            _ => Status::Stopped,
        }
    }
}

fn pending_of(word: u64) -> u64 {
    word >> STATUS_BITS
}

/// What a release request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReleaseOutcome {
    /// Nothing pending: the caller must finalize the lease now.
    Finalize,
    /// Tasks are pending: the last one to finish finalizes.
    Draining(u64),
    /// The lease was already released, revoked, broken or stopped: nothing to do.
    AlreadyInactive,
}

/// One lease, shared by the manager's record, the holder's `ExecutorLease`, its proxies and its
/// tasks: its facts, its pool, the lock-free status word, its deadlines, and the registry of
/// callers asleep on its queued tasks (with a lock of its own that only those callers and the
/// revoker take).
#[repr(C)]
pub(crate) struct LeaseCell<P> {
    /// Written by the submitter and by every finishing task.
    word: AtomicU64,
    /// Keeps the read-mostly fields below off the hot word's cache line (padding rather than
    /// `CachePadded`, whose 128-byte alignment would make every lease an aligned allocation).
    _pad: [u8; 56],
    /// The status `end` set (0 while not ended): what a task about to run reads, off the hot line.
    ended: AtomicU8,
    origin: Instant,
    soft_nanos: AtomicU64,
    hard_nanos: AtomicU64,
    queued: Mutex<Queued>,
    /// Set once the lease is over for its pool; `drained` is signalled.
    drain_done: AtomicBool,
    /// Someone waits for the drain or registered a drain callback: only then does
    /// `notify_drained` take the lock (the release path of a plain lease stays lock-free here).
    drain_watched: AtomicBool,
    drained: Condvar,
    /// The lease's immutable facts.
    pub(crate) info: LeaseInfo,
    /// The leased pool.
    pub(crate) pool: P,
}

struct Queued {
    tasks: Vec<Weak<dyn QueuedTask>>,
    prune_at: usize,
    /// Run once when the lease stops draining (see [`LeaseCell::notify_drained`]).
    on_drained: Vec<Box<dyn FnOnce() + Send>>,
}

impl<P> std::fmt::Debug for LeaseCell<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseCell").field("status", &self.status()).field("pending", &self.pending()).finish()
    }
}

impl<P> LeaseCell<P> {
    /// An active lease on `pool` with these deadlines. `origin` must not be later than either.
    pub(crate) fn new(origin: Instant, info: LeaseInfo, pool: P, soft: Instant, hard: Instant) -> LeaseCell<P> {
        let cell = LeaseCell {
            word: AtomicU64::new(Status::Active as u64),
            _pad: [0; 56],
            ended: AtomicU8::new(0),
            origin,
            soft_nanos: AtomicU64::new(0),
            hard_nanos: AtomicU64::new(0),
            queued: Mutex::new(Queued { tasks: Vec::new(), prune_at: MIN_PRUNE, on_drained: Vec::new() }),
            drain_done: AtomicBool::new(false),
            drain_watched: AtomicBool::new(false),
            drained: Condvar::new(),
            info,
            pool,
        };
        cell.set_deadlines(soft, hard);
        cell
    }

    pub(crate) fn status(&self) -> Status {
        Status::of(self.word.load(SeqCst))
    }

    pub(crate) fn pending(&self) -> u64 {
        pending_of(self.word.load(SeqCst))
    }

    /// Registers one pending task if the lease is active. On refusal returns the status and
    /// whether the caller's undo made it the lease's last pending task (then it must finalize).
    pub(crate) fn enter(&self) -> Result<(), (Status, bool)> {
        let old = self.word.fetch_add(ONE_PENDING, SeqCst);
        match Status::of(old) {
            Status::Active => Ok(()),
            status => Err((status, self.leave())),
        }
    }

    /// Unregisters one pending task. `true` when it was the last one of a released lease: the
    /// caller must finalize the lease.
    pub(crate) fn leave(&self) -> bool {
        let old = self.word.fetch_sub(ONE_PENDING, SeqCst);
        debug_assert!(pending_of(old) > 0, "leave without enter");
        pending_of(old) == 1 && Status::of(old) == Status::Released
    }

    /// Active → released.
    pub(crate) fn release(&self) -> ReleaseOutcome {
        let mut current = self.word.load(SeqCst);
        loop {
            if Status::of(current) != Status::Active {
                return ReleaseOutcome::AlreadyInactive;
            }
            let next = (current & !STATUS_MASK) | Status::Released as u64;
            match self.word.compare_exchange(current, next, SeqCst, SeqCst) {
                Ok(_) => {
                    return match pending_of(current) {
                        0 => ReleaseOutcome::Finalize,
                        n => ReleaseOutcome::Draining(n),
                    }
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Active or released (draining) → `to` (revoked, broken or stopped). Returns whether this
    /// call made the change; pending tasks then resolve as cancelled (or pool broken).
    pub(crate) fn end(&self, to: Status) -> bool {
        debug_assert!(matches!(to, Status::Revoked | Status::Broken | Status::Stopped));
        let mut current = self.word.load(SeqCst);
        loop {
            if !matches!(Status::of(current), Status::Active | Status::Released) {
                return false;
            }
            let next = (current & !STATUS_MASK) | to as u64;
            match self.word.compare_exchange(current, next, SeqCst, SeqCst) {
                Ok(_) => {
                    self.ended.store(to as u8, SeqCst);
                    return true;
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// The status this lease ended with (revoked, broken, stopped), if it ended. Cheaper than
    /// [`status`](Self::status) on the task path: it reads a line that only changes once.
    pub(crate) fn ended(&self) -> Option<Status> {
        match self.ended.load(SeqCst) {
            0 => None,
            code => Some(Status::of(u64::from(code))),
        }
    }

    /// Remembers a queued task whose handle is about to sleep, so that revocation can resolve it
    /// at once. Finished tasks are pruned when the list doubles (amortized O(1)).
    pub(crate) fn track(&self, task: Weak<dyn QueuedTask>) {
        let mut queued = self.queued.lock();
        if queued.tasks.len() >= queued.prune_at {
            queued.tasks.retain(|t| t.upgrade().is_some_and(|t| t.is_queued()));
            queued.prune_at = (queued.tasks.len() * 2).max(MIN_PRUNE);
        }
        queued.tasks.push(task);
    }

    /// Resolves every watched task of this ended lease that has not started (as cancelled, or
    /// pool broken). Returns how many. Call after the status changed.
    pub(crate) fn cancel_queued(&self) -> usize {
        let tasks = std::mem::take(&mut self.queued.lock().tasks);
        tasks.iter().filter_map(Weak::upgrade).filter(|t| t.settle_if_refused()).count()
    }

    /// Whether the lease is over for its pool: released and finalized (the pool went back or
    /// was retired), or ended (revoked, broken, stopped).
    pub(crate) fn is_drained(&self) -> bool {
        self.drain_done.load(SeqCst)
    }

    /// Marks the lease over for its pool, wakes callers waiting for that and runs the drain
    /// callbacks. Called after a released lease was finalized and after a lease ended.
    pub(crate) fn notify_drained(&self) {
        // Both flags are SeqCst: a watcher that sets `drain_watched` and then (under the lock)
        // finds `drain_done` unset is seen here, so no waiter or callback is missed.
        self.drain_done.store(true, SeqCst);
        if !self.drain_watched.load(SeqCst) {
            return;
        }
        let callbacks = {
            let mut queued = self.queued.lock();
            self.drained.notify_all();
            std::mem::take(&mut queued.on_drained)
        };
        callbacks.into_iter().for_each(|f| f());
    }

    /// Blocks until [`is_drained`](Self::is_drained) or `deadline`; returns whether drained.
    pub(crate) fn wait_drained(&self, deadline: Option<Instant>) -> bool {
        self.drain_watched.store(true, SeqCst);
        let mut queued = self.queued.lock();
        while !self.is_drained() {
            match deadline {
                None => self.drained.wait(&mut queued),
                Some(deadline) => {
                    if self.drained.wait_until(&mut queued, deadline).timed_out() {
                        return self.is_drained();
                    }
                }
            }
        }
        true
    }

    /// Runs `f` once the lease is drained: at once (on this thread) if it already is, else on
    /// the thread that ends the drain.
    pub(crate) fn on_drained(&self, f: Box<dyn FnOnce() + Send>) {
        self.drain_watched.store(true, SeqCst);
        let mut queued = self.queued.lock();
        if self.is_drained() {
            drop(queued);
            f();
        } else {
            queued.on_drained.push(f);
        }
    }

    pub(crate) fn soft_expires_at(&self) -> Instant {
        self.origin + Duration::from_nanos(self.soft_nanos.load(SeqCst))
    }

    pub(crate) fn hard_expires_at(&self) -> Instant {
        self.origin + Duration::from_nanos(self.hard_nanos.load(SeqCst))
    }

    /// Moves both deadlines (on grant and on renewal, under the manager lock).
    pub(crate) fn set_deadlines(&self, soft: Instant, hard: Instant) {
        let nanos = |t: Instant| u64::try_from(t.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX);
        self.soft_nanos.store(nanos(soft), SeqCst);
        self.hard_nanos.store(nanos(hard), SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(now: Instant) -> LeaseInfo {
        LeaseInfo { id: LeaseId(1), owner: None, grace: Duration::from_secs(1), leased_at: now }
    }

    fn cell() -> LeaseCell<()> {
        let now = Instant::now();
        LeaseCell::new(now, info(now), (), now + Duration::from_secs(1), now + Duration::from_secs(2))
    }

    #[test]
    fn release_without_pending_finalizes_once() {
        let c = cell();
        assert_eq!(c.release(), ReleaseOutcome::Finalize);
        assert_eq!(c.release(), ReleaseOutcome::AlreadyInactive);
        assert_eq!(c.status(), Status::Released);
    }

    #[test]
    fn last_pending_task_of_a_released_lease_finalizes() {
        let c = cell();
        c.enter().unwrap();
        c.enter().unwrap();
        assert_eq!(c.release(), ReleaseOutcome::Draining(2));
        assert_eq!(c.enter(), Err((Status::Released, false)));
        assert!(!c.leave());
        assert!(c.leave());
        assert_eq!(c.pending(), 0);
    }

    #[test]
    fn refused_enter_that_drops_the_last_pending_finalizes() {
        let c = cell();
        // A submit raced with the release: the release saw its pending count, so the undo is
        // the last "task" and must finalize.
        c.word.fetch_add(ONE_PENDING, SeqCst);
        assert_eq!(c.release(), ReleaseOutcome::Draining(1));
        assert!(c.leave());
    }

    #[test]
    fn revoked_lease_never_finalizes_through_pending() {
        let c = cell();
        c.enter().unwrap();
        assert_eq!(c.release(), ReleaseOutcome::Draining(1));
        assert_eq!(c.ended(), None);
        assert!(c.end(Status::Revoked));
        assert!(!c.end(Status::Stopped));
        assert_eq!(c.ended(), Some(Status::Revoked));
        assert!(!c.leave());
        assert_eq!(c.status(), Status::Revoked);
    }

    #[test]
    fn deadlines_round_trip() {
        let now = Instant::now();
        let c = LeaseCell::new(now, info(now), (), now + Duration::from_millis(5), now + Duration::from_millis(9));
        assert_eq!(c.soft_expires_at(), now + Duration::from_millis(5));
        assert_eq!(c.hard_expires_at(), now + Duration::from_millis(9));
    }
}
