//! The checker thread: enforces expiry and resizes the idle set.
//!
//! Each pass samples the size provider (outside the lock), then lets the state machine revoke
//! expired leases, log soft expiries, shrink idle pools above the desired count and ask for the
//! pools needed to grow to it; those are built on builder threads, so a slow build never delays
//! expiry enforcement. It then parks until the nearest lease deadline (or the end of a build
//! backoff) or `check_interval`, whichever is sooner, and is woken early by anything that changes
//! what it must do (an earlier deadline from an acquire or renew, capacity below desired after a
//! release or revocation, `notify_scale_changed`, `stop`). Nothing a user supplies can end the
//! checker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::manager::shared::Shared;
use crate::state::Phase;
use crate::util::catch_panic;

const RESTART_PAUSE: Duration = Duration::from_secs(5);

/// The checker thread's body. A panic inside a pass would be a bug in this crate (user code is
/// already guarded); it is logged at error level and the loop restarts after a pause, so expiry
/// enforcement never silently stops.
pub(crate) fn run(shared: Arc<Shared>, epoch: u64) {
    loop {
        match catch_panic(|| passes(&shared, epoch)) {
            Ok(()) => return,
            Err(message) => {
                log::error!(target: &shared.config.log_target, "checker crashed, restarting: {message}");
                if !current(&shared, epoch) {
                    return;
                }
                shared.checker.park(Some(Instant::now() + RESTART_PAUSE)); // woken early by stop
            }
        }
    }
}

fn current(shared: &Shared, epoch: u64) -> bool {
    let st = shared.state.lock();
    st.phase == Phase::Running && st.epoch == epoch
}

fn passes(shared: &Arc<Shared>, epoch: u64) {
    loop {
        let desired = shared.desired_now();
        let effects = {
            let mut st = shared.state.lock();
            if st.phase != Phase::Running || st.epoch != epoch {
                return;
            }
            st.checker_due = None;
            st.checker_kick = false;
            st.checker_pass(desired, Instant::now())
        };
        shared.apply(effects);

        let due = {
            let mut st = shared.state.lock();
            if st.phase != Phase::Running || st.epoch != epoch {
                return;
            }
            if std::mem::take(&mut st.checker_kick) {
                continue;
            }
            let now = Instant::now();
            let mut due = now.checked_add(shared.config.check_interval).unwrap_or(now + RESTART_PAUSE);
            if let Some(deadline) = st.next_deadline() {
                due = due.min(deadline);
            }
            if due <= now {
                continue;
            }
            st.checker_due = Some(due);
            due
        };
        // A wake-up between setting `checker_due` and parking is remembered by the signal.
        shared.checker.park(Some(due));
    }
}
