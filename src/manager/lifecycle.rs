//! Starting and stopping: the initial pools, the checker thread, and a stop that ends every
//! lease, wakes every waiter and (gracefully) joins what the manager started.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::kind::ExecutorBackend;
use crate::checker;
use crate::error::StartError;
use crate::state::Phase;

use super::acquire::far_future;
use super::shared::Shared;

/// How many times `start` tries to build each initial pool before giving up.
const START_ATTEMPTS: usize = 3;

impl Shared {
    pub(crate) fn start(self: &Arc<Self>) -> Result<(), StartError> {
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
                Err((reason, hopeless)) => {
                    failures += 1;
                    // A hook that hung would hang again: fail now, saying what is stuck.
                    if hopeless || failures == START_ATTEMPTS * desired {
                        pools.iter().for_each(|p| p.pool.shutdown(true));
                        self.state.lock().counters.pools_retired_broken += failures as u64;
                        return Err(StartError::PoolCreation { reason });
                    }
                }
            }
        }
        let (epoch, available) = {
            let mut st = self.state.lock();
            st.counters.pools_retired_broken += failures as u64;
            st.start(pools, desired);
            (st.epoch, st.available())
        };
        log::info!(
            target: self.log_target(),
            "manager started (backend={}, total={available}, available={available}, leased=0, target={desired})",
            self.config.backend
        );
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

    /// Stops; with `graceful`, then joins everything the manager started until that deadline.
    /// Each call is bounded by its own timeout: a second caller does not wait behind the first
    /// longer than its own deadline (it returns `false`).
    pub(crate) fn stop(self: &Arc<Self>, graceful: Option<Duration>) -> bool {
        let deadline = graceful.map(|t| Instant::now().checked_add(t).unwrap_or_else(far_future));
        let locked = match deadline {
            Some(deadline) => self.lifecycle.try_lock_until(deadline),
            None => Some(self.lifecycle.lock()),
        };
        let Some(mut checker) = locked else {
            log::warn!(target: self.log_target(), "stop_graceful gave up waiting for a concurrent start or stop");
            return false;
        };
        let (effects, was_running) = {
            let mut st = self.state.lock();
            let was_running = st.phase == Phase::Running;
            (st.begin_stop(), was_running)
        };
        self.checker.wake();
        self.apply(effects);
        if let Some(handle) = checker.take() {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
        self.state.lock().finish_stop();
        // A size provider stuck in user code is abandoned, not joined (and reported).
        let sizer_abandoned = self.sizer.stop().is_some();
        drop(checker);
        let pools = self.retired.lock().clone();
        if self.config.backend == ExecutorBackend::Process {
            // No worker process outlives a stop: wait (bounded) until every one is reaped, which
            // also delivers the log records they sent before exiting.
            let budget = Instant::now() + self.config.process.terminate_grace + Duration::from_secs(5);
            for pool in &pools {
                // Pools retired earlier (shrunk, broken) may still have workers finishing a task.
                pool.shutdown(true);
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
        let mut all_joined = !sizer_abandoned;
        for pool in &pools {
            all_joined &= pool.join(deadline);
        }
        all_joined
    }
}
