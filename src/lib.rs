//! # leasepool
//!
//! Leased, supervised executor pools for blocking and CPU-heavy work.
//!
//! A [`LeasedExecutorManager`] owns a bounded set of pools (rayon thread pools, or sets of worker
//! processes with [`ExecutorBackend::Process`]). A caller
//! *acquires a lease* on one pool — blocking with FIFO backpressure, with a timeout, or
//! fail-fast — submits work through a [`LeasedExecutor`] proxy that can never shut the pool down,
//! and releases the lease by dropping it. Each lease has a soft lifetime and a grace period; at
//! hard expiry it is revoked, its queued tasks are cancelled and its pool is never handed out
//! again. A checker thread enforces expiry and resizes the idle set from a size signal:
//! `desired = min(max_pools, max(min_pools, ceil(size_provider() / units_per_pool)))`.
//!
//! ```
//! use std::time::Duration;
//! use leasepool::{AcquireOptions, LeasedExecutorManager};
//!
//! let manager = LeasedExecutorManager::builder().max_pools(2).workers_per_pool(4).build()?;
//! manager.start()?;
//!
//! let lease = manager.acquire(AcquireOptions::new().owner("report").timeout(Duration::from_secs(2)))?;
//! let handles: Vec<_> = (0..8u64)
//!     .map(|i| lease.executor().submit(move || i * i))
//!     .collect::<Result<_, _>>()?;
//! let sum: u64 = handles.into_iter().map(|h| h.wait()).sum::<Result<u64, _>>()?;
//! assert_eq!(sum, 140);
//! drop(lease); // releases; the pool goes back to the idle set
//!
//! assert_eq!(manager.leased_count(), 0);
//! manager.stop();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! For many small jobs from many callers, a [`WorkGrinder`] batches them into leased batches.
//!
//! ## Async
//! With the cargo feature `async` (off by default; no runtime dependency, std futures only),
//! `manager.acquire_async(options).await` waits in the same queue as blocking acquires without
//! a thread per wait, a [`TaskHandle`] can be `.await`ed, and a lease has `run_async` and
//! `run_task_async`; they work under any runtime. See `AcquireFuture` and `TaskFuture`.
//!
//! ## Process pools
//! For CPU-heavy, crash-prone or killable work, the process backend runs registered [`Task`]s
//! (a named `fn(I) -> O` with serde input and output) in worker processes, which are this program
//! re-executed: call [`run_if_worker`] first thing in `main`. A worker that dies fails its task
//! with [`TaskError::WorkerCrashed`] and its pool is replaced; revocation at hard expiry
//! terminates busy workers ([`TaskError::Revoked`]); `stop` leaves no child process behind; worker
//! `log` records can be forwarded ([`ProcessLoggingConfig`]). See [`LeasedExecutor::submit_task`].
//!
//! ## Semantics in brief
//! - **Acquire** serves waiters strictly first-come first-served; a freed pool wakes exactly the
//!   waiter it is handed to. A waiter that times out never loses a hand-off.
//! - **Release with pending work drains**: new submissions are refused at once, the pool returns
//!   only when that work is done. Counts are updated before the last task's handle resolves.
//! - **Soft expiry** is informational (one warning, visible in [`ExecutorLease::state`] and
//!   stats). **Hard expiry** revokes: submissions fail with [`LeaseError::Expired`], queued tasks
//!   resolve as [`TaskError::Cancelled`], running tasks finish, the pool is retired and replaced.
//! - **Sizing**: the checker grows to `desired` and retires idle pools above it; leased pools are
//!   never revoked by a shrink. The size provider runs outside the manager's lock; a panic
//!   counts as 0 units.
//! - Nothing a user supplies (size provider, start hooks, tasks, log sinks) runs while the
//!   manager's lock is held.

#[cfg(feature = "async")]
mod asyncio;
mod backend;
mod cell;
mod checker;
mod config;
mod error;
mod grinder;
mod ids;
mod interrupt;
mod lease;
mod manager;
mod sizer;
mod state;
mod stats;
mod sync;
mod task;
mod util;
mod waiter;

#[cfg(feature = "async")]
pub use asyncio::{AcquireFuture, DrainFinished, TaskFuture};
pub use backend::process::{
    run_if_worker, InitializerCall, ProcessLoggingConfig, ProcessOptions, Task, TaskRegistry, WorkerProgram,
};
pub use backend::{ExecutorBackend, WorkerExit};
pub use config::{AcquireOptions, ManagerBuilder, StartHook, ThreadPoolOptions};
pub use error::{AcquireError, ConfigError, GrinderError, LeaseError, StartError, TaskError};
pub use grinder::{
    BatchJob, BatchLease, GrinderBuilder, GrinderCounters, GrinderStats, LeaseSource, StopMode, WorkGrinder,
};
pub use ids::LeaseId;
pub use interrupt::Interrupt;
pub use lease::{Drain, ExecutorLease, LeasedExecutor};
pub use manager::LeasedExecutorManager;
pub use sizer::SizeProvider;
pub use stats::{LeaseCounters, LeaseState, LeaseStats, ManagerStats, PoolStats, TaskCountersSnapshot};
pub use task::TaskHandle;

#[cfg(all(test, loom))]
mod loom_model;
