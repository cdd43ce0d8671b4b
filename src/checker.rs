//! The checker thread: enforces expiry and resizes the idle set.
//!
//! Each pass samples the size provider (outside the lock), then lets the state machine revoke
//! expired leases, log soft expiries, shrink idle pools above the desired count and reserve the
//! pools needed to grow to it; the pools are built outside the lock. It then sleeps until the
//! nearest lease deadline or `check_interval`, whichever is sooner, and is woken early by
//! anything that changes what it must do (an earlier deadline from an acquire or renew, capacity
//! below desired after a release or revocation, `notify_scale_changed`, `stop`). A pool that
//! cannot be built is retried with backoff; nothing a user supplies can end the checker.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::task::panic_message;

use crate::manager::Shared;
use crate::state::Phase;

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The checker thread's body. A panic inside a pass would be a bug in this crate (user code is
/// already guarded); it is logged at error level and the loop restarts after a pause, so expiry
/// enforcement never silently stops.
pub(crate) fn run(shared: Arc<Shared>, epoch: u64) {
    loop {
        match catch_unwind(AssertUnwindSafe(|| passes(&shared, epoch))) {
            Ok(()) => return,
            Err(p) => {
                log::error!(target: &shared.config.log_target, "checker crashed, restarting: {}", panic_message(&*p));
                let mut st = shared.state.lock();
                if st.phase != Phase::Running || st.epoch != epoch {
                    return;
                }
                shared.checker_cv.wait_for(&mut st, MAX_BACKOFF); // woken early by stop
            }
        }
    }
}

fn passes(shared: &Arc<Shared>, epoch: u64) {
    let mut backoff: Option<Duration> = None;
    loop {
        let desired = shared.desired_now();
        let (effects, build) = {
            let mut st = shared.state.lock();
            if st.phase != Phase::Running || st.epoch != epoch {
                return;
            }
            st.checker_pass(desired, Instant::now())
        };
        shared.apply(effects);
        if build > 0 {
            let mut pools = Vec::with_capacity(build);
            let mut failed = 0;
            for _ in 0..build {
                match shared.create_pool() {
                    Ok(pool) => pools.push(pool),
                    Err(_) => failed += 1,
                }
            }
            let effects = shared.state.lock().add_built(epoch, pools, failed, Instant::now());
            shared.apply(effects);
            backoff = (failed > 0).then(|| backoff.map_or(FIRST_BACKOFF, |b| (b * 2).min(MAX_BACKOFF)));
        }

        let mut st = shared.state.lock();
        if st.phase != Phase::Running || st.epoch != epoch {
            return;
        }
        if std::mem::take(&mut st.checker_kick) {
            continue;
        }
        let now = Instant::now();
        let mut due = now.checked_add(shared.config.check_interval).unwrap_or(now + MAX_BACKOFF);
        if let Some(deadline) = st.next_deadline() {
            due = due.min(deadline);
        }
        if let Some(backoff) = backoff {
            due = due.min(now + backoff);
        }
        if due <= now {
            continue;
        }
        st.checker_due = Some(due);
        shared.checker_cv.wait_until(&mut st, due);
        st.checker_due = None;
        st.checker_kick = false;
    }
}
