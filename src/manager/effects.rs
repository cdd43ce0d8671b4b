//! Applying what the state machine decided, after the lock is dropped: log events, cancel the
//! queued tasks of ended leases, shut retired pools down, wake the waiters that were served,
//! wake the checker, and build pools off the caller's thread.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use crate::backend::{BuildFailure, Pool};
use crate::cell::LeaseInfo;
use crate::state::{Builds, Event, RetireReason};

use super::shared::{ManagedPool, ManagerEffects, Shared};

/// The most pools built at once (each on its own builder thread).
const MAX_BUILDERS: usize = 4;

impl Shared {
    /// Applies what the state machine decided, outside the lock.
    pub(crate) fn apply(self: &Arc<Self>, effects: ManagerEffects) {
        if effects.is_empty() {
            return;
        }
        for event in effects.events.iter() {
            self.log_event(event);
        }
        for cell in &effects.ended {
            cell.cancel_queued();
            cell.notify_drained();
        }
        if !effects.retire.is_empty() {
            for (managed, reason) in &effects.retire {
                let pool = &managed.pool;
                pool.shutdown(reason.kills_running());
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
            self.checker.wake();
        }
        if effects.build.total() > 0 {
            self.spawn_builds(effects.build);
        }
    }

    /// Queues pool builds for the builder threads (never the thread that asked): at most
    /// [`MAX_BUILDERS`] run at once, however many pools are wanted, and each build reports back
    /// to the state, which hands the pool to a waiter or the idle set.
    fn spawn_builds(self: &Arc<Self>, builds: Builds) {
        let mut queue = self.builds.lock();
        queue.pending.push_back((builds.epoch, true, builds.demand));
        queue.pending.push_back((builds.epoch, false, builds.spare));
        queue.pending.retain(|(_, _, n)| *n > 0);
        while queue.running < MAX_BUILDERS && !queue.pending.is_empty() {
            let shared = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .name(format!("{}-builder", self.config.name_prefix))
                .spawn(move || shared.builder());
            match spawned {
                Ok(_) => queue.running += 1,
                Err(e) if queue.running > 0 => {
                    log::warn!(target: self.log_target(), "could not spawn another builder thread: {e}");
                    break; // the running builders drain the queue
                }
                Err(e) => {
                    // Nobody can build: every queued build fails (waiters are told, not left waiting).
                    let failed: Vec<_> = queue.pending.drain(..).collect();
                    drop(queue);
                    let reason = format!("could not spawn a builder thread: {e}");
                    log::warn!(target: self.log_target(), "{reason}");
                    for (epoch, demand, n) in failed {
                        for _ in 0..n {
                            let effects = self.state.lock().built(epoch, demand, Err(reason.clone()), Instant::now());
                            self.apply(effects);
                        }
                    }
                    return;
                }
            }
        }
    }

    /// A builder thread: builds queued pools one after another until the queue is empty.
    fn builder(self: &Arc<Self>) {
        loop {
            let next = {
                let mut queue = self.builds.lock();
                match queue.pending.front_mut() {
                    Some((epoch, demand, n)) => {
                        let job = (*epoch, *demand);
                        *n -= 1;
                        if *n == 0 {
                            queue.pending.pop_front();
                        }
                        job
                    }
                    None => {
                        queue.running -= 1;
                        return;
                    }
                }
            };
            let (epoch, demand) = next;
            let built = self.create_pool().map_err(|(reason, _)| reason);
            let effects = self.state.lock().built(epoch, demand, built, Instant::now());
            self.apply(effects);
        }
    }

    /// Builds one pool (outside the lock).
    /// A pool whose threads are stuck in a start hook is kept with the retired pools, so that a
    /// graceful stop reports them as not joined. The error says whether retrying is pointless.
    pub(crate) fn create_pool(self: &Arc<Self>) -> Result<Arc<ManagedPool>, (String, bool)> {
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
            Err(BuildFailure { reason, stuck, hopeless }) => {
                log::warn!(target: self.log_target(), "retiring a broken executor (seq={seq}): {reason}");
                if let Some(stuck) = stuck {
                    self.retired.lock().push(Arc::new(stuck));
                }
                Err((reason, hopeless))
            }
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
}
