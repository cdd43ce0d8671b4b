//! [`Latch`]: counts a batch's outstanding jobs down to zero and wakes the batch runner then (or
//! when it is told to stop waiting). A leaf: it knows nothing of batches, leases or the grinder.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// Counts a batch's outstanding jobs down to zero; wakes the batch runner at zero or on cancel.
pub(crate) struct Latch {
    remaining: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

/// How a [`Latch::wait_until`] ended.
pub(super) enum Waited {
    Done,
    Cancelled,
    TimedOut,
}

impl Latch {
    pub(crate) fn new(count: usize) -> Latch {
        Latch { remaining: AtomicUsize::new(count), lock: Mutex::new(()), cv: Condvar::new() }
    }

    pub(crate) fn count_down(&self) {
        if self.remaining.fetch_sub(1, SeqCst) == 1 {
            let _guard = self.lock.lock();
            self.cv.notify_all();
        }
    }

    pub(super) fn remaining(&self) -> usize {
        self.remaining.load(SeqCst)
    }

    /// Waits until the count is zero, `cancelled` says yes (checked on every wake-up; whoever
    /// makes it say yes calls [`wake`](Self::wake)), or `deadline`.
    pub(super) fn wait_until(&self, deadline: Instant, cancelled: impl Fn() -> bool) -> Waited {
        let mut guard = self.lock.lock();
        loop {
            if self.remaining() == 0 {
                return Waited::Done;
            }
            if cancelled() {
                return Waited::Cancelled;
            }
            if self.cv.wait_until(&mut guard, deadline).timed_out() {
                return if self.remaining() == 0 { Waited::Done } else { Waited::TimedOut };
            }
        }
    }

    pub(super) fn wake(&self) {
        let _guard = self.lock.lock();
        self.cv.notify_all();
    }
}
