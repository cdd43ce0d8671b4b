//! [`StopMode`]: how [`WorkGrinder::stop`](super::WorkGrinder::stop) treats jobs that have not
//! run yet. A leaf, so the grinder's state can record a stop in progress.

use std::time::Duration;

/// How [`WorkGrinder::stop`](super::WorkGrinder::stop) treats jobs that have not run yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopMode {
    /// Run every queued job (ignoring threshold and max wait) and deliver its real result. With a
    /// deadline, whatever has not finished by then is cancelled as in [`StopMode::Cancel`].
    Drain {
        /// How long to drain before cancelling the rest; `None` waits as long as it takes.
        deadline: Option<Duration>,
    },
    /// Resolve queued jobs as cancelled at once, abandon an in-flight acquire, cancel the jobs of
    /// a running batch that have not started; running jobs finish in the background and their
    /// lease drains.
    Cancel,
}
