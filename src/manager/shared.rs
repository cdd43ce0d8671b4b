//! What the manager, its leases, its checker and its builder threads share: the configuration,
//! the one lock around the state machine, and the operations a lease reaches the manager
//! through (release, finalize, renew, end).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::backend::Pool;
use crate::cell::{LeaseCell, ReleaseOutcome, Status};
use crate::config::Config;
use crate::error::LeaseError;
use crate::ids::LeaseId;
use crate::sizer::Sizer;
use crate::state::{Effects, State};
use crate::stats::TaskCounters;
use crate::sync::Mutex;
use crate::waiter::{Queue, Signal};

pub(crate) type ManagerState = State<Arc<ManagedPool>, Arc<Signal>>;
pub(crate) type ManagerEffects = Effects<Arc<ManagedPool>, Arc<Signal>>;
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

/// Pool builds waiting for a builder thread (`effects.rs` runs them).
#[derive(Default)]
pub(crate) struct BuildQueue {
    /// `(epoch, for waiters, how many)`, in order.
    pub(crate) pending: std::collections::VecDeque<(u64, bool, usize)>,
    /// Builder threads running.
    pub(crate) running: usize,
}

/// Everything the manager, its leases and its checker share.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) state: Mutex<ManagerState>,
    /// Samples the size provider on its own thread.
    pub(crate) sizer: Sizer,
    /// The checker parks on this; woken when the state asks for it (`Effects::wake_checker`).
    pub(crate) checker: Signal,
    pub(crate) tasks: Arc<TaskCounters>,
    pub(crate) next_pool_seq: AtomicU64,
    /// Pool builds waiting for (or running on) builder threads.
    pub(crate) builds: parking_lot::Mutex<BuildQueue>,
    /// Serializes start and stop; holds the checker's handle.
    pub(crate) lifecycle: parking_lot::Mutex<Option<JoinHandle<()>>>,
    /// Pools shut down whose threads may still be running work (joined by a graceful stop).
    pub(crate) retired: parking_lot::Mutex<Vec<Arc<Pool>>>,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Shared {
        let state = State::new(config.max_pools, config.min_pools, config.fairness_bound, Instant::now());
        let sizer = Sizer::new(config.size_provider.clone(), &config.name_prefix, &config.log_target);
        Shared {
            sizer,
            config,
            state: Mutex::new(state),
            checker: Signal::new(),
            tasks: Arc::default(),
            next_pool_seq: AtomicU64::new(0),
            builds: parking_lot::Mutex::default(),
            lifecycle: parking_lot::Mutex::new(None),
            retired: parking_lot::Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn log_target(&self) -> &str {
        &self.config.log_target
    }

    /// Releases a lease: finalizes it now, or lets it drain.
    pub(crate) fn release(self: &Arc<Self>, lease: &LeaseRef) {
        let info = &lease.info;
        match lease.release() {
            ReleaseOutcome::Finalize => self.finalize(lease),
            ReleaseOutcome::Draining(pending) => log::info!(
                target: self.log_target(),
                "release while draining (lease_id={}, owner={}, pending={pending})",
                info.id, info.owner.as_deref().unwrap_or("-")
            ),
            ReleaseOutcome::AlreadyInactive => {}
        }
    }

    /// A released lease has nothing pending: its pool goes back (or is retired), then whoever
    /// waits for the drain is told.
    pub(crate) fn finalize(self: &Arc<Self>, lease: &LeaseCell<Arc<ManagedPool>>) {
        let effects = self.state.lock().finalize(lease.info.id, Instant::now());
        self.apply(effects);
        lease.notify_drained();
    }

    /// A process pool broke (a worker died): end its lease as broken, or retire it if idle.
    pub(crate) fn pool_broke(self: &Arc<Self>, seq: u64) {
        let effects = self.state.lock().pool_broke(|p| p.pool.seq() == seq, Instant::now());
        self.apply(effects);
    }

    /// Ends one lease as revoked or broken.
    pub(crate) fn end_lease(self: &Arc<Self>, id: LeaseId, status: Status) {
        let effects = self.state.lock().end_lease(id, status, Instant::now());
        self.apply(effects);
    }

    /// Extends a lease's deadlines; `refusal` turns a refusing status into the lease's error.
    pub(crate) fn renew(
        self: &Arc<Self>,
        lease: &LeaseRef,
        extra: Duration,
        refusal: impl FnOnce(Status) -> LeaseError,
    ) -> Result<Instant, LeaseError> {
        let mut st = self.state.lock();
        let renewed = st.renew(lease.info.id, extra, Instant::now());
        let kick = st.checker_kick;
        drop(st);
        if kick {
            self.checker.wake();
        }
        renewed.map_err(|status| match status {
            None => LeaseError::InvalidRenewal { lease_id: lease.info.id, extra },
            Some(status) => refusal(match lease.status() {
                Status::Active | Status::Released => status,
                ended => ended,
            }),
        })
    }

    /// Wakes the checker so it resizes now. A no-op when not running.
    pub(crate) fn kick_checker(self: &Arc<Self>) {
        let mut st = self.state.lock();
        if st.phase == crate::state::Phase::Running {
            st.checker_kick = true;
            drop(st);
            self.checker.wake();
        }
    }
}

impl Queue for Shared {
    type Pool = Arc<ManagedPool>;

    fn state(&self) -> &Mutex<ManagerState> {
        &self.state
    }

    fn apply(self: &Arc<Self>, effects: ManagerEffects) {
        Shared::apply(self, effects);
    }
}
