//! The async adapter (cargo feature `async`): std futures over the blocking API's seams, for any
//! runtime (tokio, smol, async-std, `futures::executor::block_on`), with no runtime dependency.
//!
//! - [`LeasedExecutorManager::acquire_async`](crate::LeasedExecutorManager::acquire_async)
//!   returns an [`AcquireFuture`]: a waiter entry (`waiter::Entry`) in the *same* queue as
//!   blocking acquires, polled with the task's `Waker` instead of parking a thread. No thread per
//!   wait; the options' timeout is the entry's deadline, which the checker thread enforces (no
//!   runtime timer needed); dropping the future at any point cancels the entry, which never
//!   takes a lease and passes on a hand-off it did not take.
//! - [`TaskHandle`](crate::TaskHandle) is [`IntoFuture`](std::future::IntoFuture): `handle.await`
//!   registers the task's waker (`TaskHandle::register_waker`) and takes the outcome
//!   (`try_take`). [`ExecutorLease::run_async`](crate::ExecutorLease::run_async) and
//!   [`ExecutorLease::run_task_async`](crate::ExecutorLease::run_task_async) submit and return a
//!   [`TaskFuture`]; grinder handles are task handles too.
//! - [`Drain::finished`](crate::Drain::finished) returns a [`DrainFinished`] future.
//!
//! Every future here is `Send + 'static` (it owns what it needs: an `Arc` of the manager's
//! shared state, the task's slot) and `Unpin`, and wakes only the most recently registered
//! waker. **Polling one again after it returned `Ready` panics**, with a message naming the
//! future (as many std and `futures` futures do); wrap it in `futures::FutureExt::fuse` where a
//! combinator needs to poll past completion.
//!
//! Nothing in the crate imports this module: it is the top of the layer graph.

mod acquire;
mod drain;
mod task;

pub use acquire::AcquireFuture;
pub use drain::DrainFinished;
pub use task::TaskFuture;
