//! Reading the manager without changing it: the size signal (sampled outside the lock) and the
//! stats snapshot.

use std::time::Instant;

use crate::state::Phase;
use crate::stats::{LeaseStats, ManagerStats, PoolStats};

use super::shared::Shared;

/// How long a caller (the checker, `stats`, `desired_executor_count`) waits for a fresh sample
/// of the size provider before it uses the last value.
pub(crate) const SAMPLE_BOUND: std::time::Duration = std::time::Duration::from_secs(1);

impl Shared {
    /// The sizing target from the size provider's latest value: a fresh sample if it comes
    /// within [`SAMPLE_BOUND`], else the last value it returned (see `sizer.rs`).
    pub(crate) fn desired_now(&self) -> usize {
        self.config.desired_for(self.sizer.sample(SAMPLE_BOUND))
    }

    pub(crate) fn stats(&self) -> ManagerStats {
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
            .map(|(p, lease_id)| PoolStats { seq: p.pool.seq(), lease_id, worker_pids: p.pool.pids(), retired: false })
            .collect();
        pools.extend(self.retired.lock().iter().filter(|p| !p.finished()).map(|p| PoolStats {
            seq: p.seq(),
            lease_id: None,
            worker_pids: p.pids(),
            retired: true,
        }));
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
