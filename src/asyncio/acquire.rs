//! [`AcquireFuture`]: an async acquire, as a waiter entry polled with a `Waker`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::config::AcquireOptions;
use crate::error::AcquireError;
use crate::interrupt::Interrupt;
use crate::lease::ExecutorLease;
use crate::manager::shared::Shared;
use crate::manager::LeasedExecutorManager;
use crate::state::LeaseRequest;
use crate::waiter::{Ended, Entry};

impl LeasedExecutorManager {
    /// Leases a pool without blocking a thread: the async form of
    /// [`acquire`](Self::acquire), with the same options and the same errors (feature `async`).
    ///
    /// A pending acquire is an entry in the same queue as blocking acquires, served by the same
    /// fairness rule, and costs no thread. The request is checked now
    /// ([`AcquireError::InvalidLeaseDuration`] is returned by the first poll), and the options'
    /// timeout is measured from this call; the future joins the queue at its first poll. The
    /// timeout needs no runtime timer: the manager's checker thread wakes the future at its
    /// deadline and it resolves [`AcquireError::TimedOut`]. A runtime timeout
    /// (`tokio::time::timeout`, `select!`) works too: dropping the future cancels it at any
    /// point without taking a lease or losing a pool handed to it. [`stop`](Self::stop) wakes
    /// it with [`AcquireError::NotRunning`]; an [`Interrupt`] fired before or while it waits
    /// makes it resolve [`AcquireError::Interrupted`]. A pool found broken at hand-out is
    /// retired and the future keeps waiting, against the same deadline.
    ///
    /// On the process backend the hand-out check pings the pool's idle workers, inside the poll
    /// that receives the pool: that poll blocks its thread for one process round trip (tens of
    /// microseconds), or up to [`ProcessOptions::ping_timeout`](crate::ProcessOptions::ping_timeout)
    /// when a worker is hung.
    ///
    /// The future is `Send + 'static` (it does not keep the manager running: dropping the last
    /// manager clone stops it and wakes the future with `NotRunning`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use leasepool::{AcquireOptions, LeasedExecutorManager};
    ///
    /// let manager = LeasedExecutorManager::builder().max_pools(1).build()?;
    /// manager.start()?;
    /// futures::executor::block_on(async {
    ///     let options = AcquireOptions::new().owner("api").timeout(Duration::from_secs(2));
    ///     let lease = manager.acquire_async(options).await?;
    ///     assert_eq!(lease.run_async(|| 6 * 7).await?, 42);
    ///     let handle = lease.executor().submit(|| "done")?;
    ///     assert_eq!(handle.await?, "done");
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })?;
    /// assert_eq!(manager.available_count(), 1); // the lease was dropped: released
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn acquire_async(&self, options: AcquireOptions) -> AcquireFuture {
        let start = Instant::now();
        let shared = Arc::clone(self.shared());
        let inner = match shared.lease_request(&options, start) {
            Ok(request) => Inner::Acquiring(Acquiring {
                deadline: Shared::acquire_deadline(&options, start),
                interrupt: options.interrupt,
                shared,
                request,
                start,
                entry: None,
                registered: false,
            }),
            Err(error) => Inner::Refused(error),
        };
        AcquireFuture { inner }
    }
}

/// The future of [`LeasedExecutorManager::acquire_async`]: resolves to a lease or the
/// acquire's error (feature `async`).
///
/// `Send + 'static + Unpin`. Dropping it cancels the acquire: it leaves the queue, and a pool
/// handed to it meanwhile goes to the next waiter or back to the idle set. Polling it again
/// after it resolved panics.
///
/// ```
/// use std::time::Duration;
/// use leasepool::{AcquireError, AcquireOptions, LeasedExecutorManager};
///
/// let manager = LeasedExecutorManager::builder().max_pools(1).build()?;
/// manager.start()?;
/// let held = manager.acquire(AcquireOptions::new())?;
/// // No runtime timer here: the manager's checker wakes the future at its deadline.
/// let waiting = manager.acquire_async(AcquireOptions::new().timeout(Duration::from_millis(50)));
/// let outcome = futures::executor::block_on(waiting);
/// assert!(matches!(outcome, Err(AcquireError::TimedOut { .. })));
/// drop(held);
/// assert_eq!(manager.available_count(), 1); // nothing was taken by the timed-out acquire
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "futures do nothing unless polled; a dropped AcquireFuture never takes a lease"]
pub struct AcquireFuture {
    inner: Inner,
}

enum Inner {
    /// Refused before the first look (an invalid request).
    Refused(AcquireError),
    Acquiring(Acquiring),
    /// Resolved: polling again panics.
    Done,
}

/// A valid request on its way to a lease.
struct Acquiring {
    shared: Arc<Shared>,
    request: LeaseRequest,
    interrupt: Option<Interrupt>,
    start: Instant,
    deadline: Option<Instant>,
    /// The waiter entry, from the first poll on (a fresh one after a broken hand-out).
    entry: Option<Entry<Shared>>,
    /// The interrupt wakes this entry's signal.
    registered: bool,
}

impl Future for AcquireFuture {
    type Output = Result<ExecutorLease, AcquireError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outcome = match &mut self.inner {
            Inner::Acquiring(acquiring) => match acquiring.poll(cx) {
                Poll::Ready(outcome) => outcome,
                Poll::Pending => return Poll::Pending,
            },
            Inner::Refused(_) => match std::mem::replace(&mut self.inner, Inner::Done) {
                Inner::Refused(error) => Err(error),
                _ => unreachable!(),
            },
            Inner::Done => panic!("`AcquireFuture` polled after completion"),
        };
        // Drops the entry (already done: nothing to cancel) and unregisters the interrupt.
        self.inner = Inner::Done;
        Poll::Ready(outcome)
    }
}

impl Acquiring {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<ExecutorLease, AcquireError>> {
        let interrupted = || self.interrupt.as_ref().is_some_and(Interrupt::is_fired);
        if self.entry.is_none() && interrupted() {
            return Poll::Ready(Err(AcquireError::Interrupted));
        }
        loop {
            let entry = self.entry.get_or_insert_with(|| {
                Entry::new(Arc::clone(&self.shared), self.request.clone()).with_deadline(self.deadline)
            });
            match entry.poll_with(cx.waker()) {
                Poll::Ready(Ok(grant)) => match self.shared.healthy(grant) {
                    Some(lease) => return Poll::Ready(Ok(ExecutorLease::new(lease))),
                    // Retired as broken: wait again on a fresh entry, same deadline.
                    None => self.unregister_entry(),
                },
                Poll::Ready(Err(refused)) => return Poll::Ready(Err(Ended::Refused(refused).into_error(self.start))),
                Poll::Pending => {
                    let Some(interrupt) = &self.interrupt else { return Poll::Pending };
                    if !self.registered {
                        // Registered first, then checked: a fire in between still wakes us.
                        interrupt.register(entry.signal());
                        self.registered = true;
                    }
                    if interrupt.is_fired() {
                        entry.cancel(false, Instant::now());
                        return Poll::Ready(Err(AcquireError::Interrupted));
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Drops the entry (cancelling it if still queued) and its interrupt registration.
    fn unregister_entry(&mut self) {
        if std::mem::take(&mut self.registered) {
            if let (Some(interrupt), Some(entry)) = (&self.interrupt, &self.entry) {
                interrupt.unregister(entry.signal());
            }
        }
        self.entry = None;
    }
}

impl Drop for Acquiring {
    fn drop(&mut self) {
        // The entry's own Drop cancels it (leaves the queue, passes on an untaken hand-off).
        self.unregister_entry();
    }
}

impl fmt::Debug for AcquireFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.inner {
            Inner::Refused(_) => "refused",
            Inner::Acquiring(Acquiring { entry: None, .. }) => "not polled",
            Inner::Acquiring(_) => "acquiring",
            Inner::Done => "done",
        };
        f.debug_struct("AcquireFuture").field("state", &state).finish()
    }
}
