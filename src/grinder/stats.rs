//! [`GrinderStats`] and [`GrinderCounters`]: the snapshot [`WorkGrinder::stats`](super::WorkGrinder::stats)
//! returns, and its `Display`. Plain data; a leaf.

use std::fmt;
use std::time::Duration;

/// Cumulative grinder counters (they survive restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrinderCounters {
    /// Batches that got past forming (acquired, or failed to acquire).
    pub batches_run: u64,
    /// Jobs that returned a value.
    pub jobs_completed: u64,
    /// Jobs that panicked.
    pub jobs_panicked: u64,
    /// Jobs cancelled (by their handle, by a cancelling stop, or by lease revocation).
    pub jobs_cancelled: u64,
    /// Jobs that got their batch's lease error (acquire or submission failed).
    pub jobs_failed: u64,
    /// Jobs refused at intake (not started, stopping, intake full).
    pub jobs_rejected: u64,
    /// Jobs in batches running right now.
    pub current_batch_size: usize,
    /// How long the last finished batch took, from forming to release.
    pub last_batch_duration: Duration,
}

/// A snapshot of a grinder: the Python `stats()` fields plus counters. `Display` prints a
/// readable summary.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrinderStats {
    /// Started (stays true during a stop, until it finishes).
    pub started: bool,
    /// A stop is in progress.
    pub stopping: bool,
    /// Jobs queued and not yet in a batch.
    pub pending: usize,
    /// As configured.
    pub batch_size_threshold: usize,
    /// As configured.
    pub max_wait: Duration,
    /// As configured.
    pub lease_duration: Duration,
    /// How long the oldest pending job has waited (zero when none, or when not started).
    pub oldest_wait: Duration,
    /// Batches running right now.
    pub running_batches: usize,
    /// Cumulative counters.
    pub counters: GrinderCounters,
}

impl fmt::Display for GrinderStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counters;
        let state = match (self.started, self.stopping) {
            (false, _) => "stopped",
            (true, true) => "stopping",
            (true, false) => "running",
        };
        writeln!(
            f,
            "work grinder {state}: {} pending (oldest {:?}), {} batches running; threshold {}, max wait {:?}, lease {:?}",
            self.pending, self.oldest_wait, self.running_batches, self.batch_size_threshold, self.max_wait, self.lease_duration,
        )?;
        write!(
            f,
            "  {} batches run (last took {:?}, {} jobs in flight); jobs: {} completed, {} panicked, {} cancelled, {} failed, {} rejected",
            c.batches_run,
            c.last_batch_duration,
            c.current_batch_size,
            c.jobs_completed,
            c.jobs_panicked,
            c.jobs_cancelled,
            c.jobs_failed,
            c.jobs_rejected,
        )
    }
}
