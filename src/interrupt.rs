//! [`Interrupt`]: makes a blocked [`acquire`](crate::LeasedExecutorManager::acquire) give up.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::waiter::Signal;

/// A cloneable handle that interrupts the acquires it was given to: a caller blocked in
/// [`acquire`](crate::LeasedExecutorManager::acquire) with
/// [`AcquireOptions::interrupt`](crate::AcquireOptions::interrupt) leaves the queue at once with
/// [`AcquireError::Interrupted`](crate::AcquireError::Interrupted), without taking a lease. Once
/// fired it stays fired: later acquires with it fail immediately.
///
/// ```
/// use std::thread;
/// use leasepool::{AcquireError, AcquireOptions, Interrupt, LeasedExecutorManager};
///
/// let manager = LeasedExecutorManager::builder().max_pools(1).build()?;
/// manager.start()?;
/// let _held = manager.acquire(AcquireOptions::new())?;
/// let interrupt = Interrupt::new();
/// let waiter = {
///     let (m, i) = (manager.clone(), interrupt.clone());
///     thread::spawn(move || m.acquire(AcquireOptions::new().interrupt(i)).map(drop))
/// };
/// interrupt.fire();
/// assert_eq!(waiter.join().unwrap(), Err(AcquireError::Interrupted));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct Interrupt {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    fired: AtomicBool,
    /// The queued acquires to wake (one handle may be shared by many acquires).
    waiting: Mutex<Vec<Arc<Signal>>>,
}

impl Interrupt {
    /// A fresh, unfired interrupt.
    pub fn new() -> Self {
        Self::default()
    }

    /// Interrupts every acquire waiting with this handle, now and later.
    pub fn fire(&self) {
        self.inner.fired.store(true, SeqCst);
        let waiting = self.inner.waiting.lock().clone();
        // Each signal remembers the wake-up until its waiter consumes it, so a waiter that
        // checked `fired` just before parking still wakes at once.
        waiting.iter().for_each(|signal| signal.wake());
    }

    /// Whether [`fire`](Self::fire) was called.
    pub fn is_fired(&self) -> bool {
        self.inner.fired.load(SeqCst)
    }

    /// Registers the queued acquire to wake; cleared by [`Interrupt::clear`].
    pub(crate) fn register(&self, signal: &Arc<Signal>) {
        self.inner.waiting.lock().push(Arc::clone(signal));
    }

    /// Forgets one acquire registered with [`register`](Self::register).
    pub(crate) fn unregister(&self, signal: &Arc<Signal>) {
        self.inner.waiting.lock().retain(|s| !Arc::ptr_eq(s, signal));
    }
}

impl fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interrupt").field("fired", &self.is_fired()).finish()
    }
}
