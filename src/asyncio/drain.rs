//! [`DrainFinished`]: awaiting the end of a released lease's drain.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use crate::lease::Drain;

impl Drain {
    /// A future that resolves when the drain is over (the async form of [`wait`](Self::wait);
    /// feature `async`).
    ///
    /// It is told through one [`on_finished`](Self::on_finished) callback registered now, so it
    /// costs one small allocation and no thread. It does not borrow the `Drain` (`Send +
    /// 'static`); a future dropped before the drain ends leaves its callback registered until
    /// then (it only wakes nobody).
    ///
    /// ```
    /// use leasepool::{AcquireOptions, LeaseState, LeasedExecutorManager};
    ///
    /// let manager = LeasedExecutorManager::builder().max_pools(1).build()?;
    /// manager.start()?;
    /// let lease = manager.acquire(AcquireOptions::new())?;
    /// let (go, gate) = std::sync::mpsc::channel::<()>();
    /// let task = lease.executor().submit(move || gate.recv().is_ok())?;
    /// let drain = lease.release();
    /// let finished = drain.finished();
    /// go.send(()).unwrap();
    /// futures::executor::block_on(finished); // the last task finished and the pool went back
    /// assert_eq!(drain.state(), LeaseState::Released);
    /// assert_eq!(task.wait()?, true);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn finished(&self) -> DrainFinished {
        let told = Arc::new(Told::default());
        let callback = Arc::clone(&told);
        self.on_finished(move || callback.tell());
        DrainFinished { told, done: false }
    }
}

/// The future of [`Drain::finished`]: resolves once the released lease's drain is over
/// (feature `async`). `Send + 'static + Unpin`; polling it again after it resolved panics.
///
/// ```
/// use leasepool::{AcquireOptions, LeasedExecutorManager};
///
/// let manager = LeasedExecutorManager::builder().max_pools(1).build()?;
/// manager.start()?;
/// let drain = manager.acquire(AcquireOptions::new())?.release(); // nothing pending
/// futures::executor::block_on(drain.finished()); // over already: ready at once
/// assert!(drain.is_finished());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct DrainFinished {
    told: Arc<Told>,
    done: bool,
}

/// What the drain callback and the future share.
#[derive(Default)]
struct Told {
    finished: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Told {
    /// The drain is over: marks it, then wakes the registered waker (outside the lock).
    fn tell(&self) {
        self.finished.store(true, SeqCst);
        let waker = self.waker.lock().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Future for DrainFinished {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        assert!(!self.done, "`DrainFinished` polled after completion");
        if !self.told.finished.load(SeqCst) {
            let replaced = {
                let mut slot = self.told.waker.lock();
                match &*slot {
                    Some(stored) if stored.will_wake(cx.waker()) => None,
                    _ => slot.replace(cx.waker().clone()),
                }
            };
            drop(replaced);
            // Stored first, then checked: `tell` marks before it takes the waker, so a drain
            // that ends in between is seen here.
            if !self.told.finished.load(SeqCst) {
                return Poll::Pending;
            }
        }
        self.done = true;
        Poll::Ready(())
    }
}

impl fmt::Debug for DrainFinished {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrainFinished").field("finished", &self.told.finished.load(SeqCst)).finish()
    }
}
