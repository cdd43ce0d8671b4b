//! The process backend: each pool is `workers_per_pool` worker processes.
//!
//! Work crosses the process boundary as registered tasks ([`Task`], [`TaskRegistry`]) over
//! ipc-channel, in our own versioned envelope (`wire`). Each worker runs one task at a time.
//!
//! Shape (compared with `DESIGN.md`'s "one dispatcher per pool"): the pool keeps one small state
//! (queue + worker slots) under its own lock, and each worker has a *reader thread* that receives
//! its replies and log records. A submit sends straight to an idle worker from the caller's
//! thread; a reader that delivers a result sends that worker its next queued task. So a round
//! trip costs one thread hop, and a worker can be replaced (recycling, crash) without rebuilding
//! a select set. A reader also sees its worker's death first: a disconnected channel, then the
//! exit status from reaping it. Readers and workers `linger`: after a message they poll their
//! channel briefly before they block, so that a back-to-back exchange puts nobody to sleep (a
//! wake-up costs as much as a round trip on some machines; see `docs/PERFORMANCE.md`).
//!
//! Starting a pool (`spawn`) starts all of its workers at once: one request to the long-lived
//! spawner thread forks them all, and each worker's future reader thread completes that worker's
//! handshake while the others complete theirs, all against the same deadline. Any failure kills
//! and reaps every worker of the attempt and ends every thread it started.
//!
//! Shutdown comes in two strengths, chosen by why the pool leaves management:
//! - *graceful* (shrink, release, broken pool): queued tasks resolve (cancelled, or pool
//!   broken), idle workers exit at once, busy ones after their current task;
//! - *kill* (hard expiry, manager stop): queued tasks resolve the same way, busy workers get
//!   `SIGTERM` and, after [`ProcessOptions::terminate_grace`], `SIGKILL`; their tasks resolve as
//!   [`TaskError::Revoked`](crate::TaskError::Revoked). Threads cannot be stopped like this;
//!   processes can.
//!
//! Hung workers: a process task may carry its own timeout (its worker is killed and replaced
//! when it runs past it: [`TaskError::TimedOut`](crate::TaskError::TimedOut)), and a pool being
//! handed out pings its idle workers (a worker that does not answer within
//! [`ProcessOptions::ping_timeout`] breaks the pool and is killed). See `pool`.
//!
//! Files (each imports only the ones listed before it, never this `mod.rs`): `wire` (messages,
//! exit codes), `exit` ([`WorkerExit`]), `linger` (receiving), `fingerprint` (type
//! fingerprints), `registry` (tasks), `options`, `logs`, `spec` (what a pool is built from),
//! `child` (the worker side), `spawn` (starting workers), `deadline` (the one thread that keeps
//! task deadlines), `pool` (the parent side of a running pool). `exit`, `logs`, `options` and
//! `registry` are visible to the crate so that other modules import from those leaves rather
//! than through this file.

mod child;
mod deadline;
pub(crate) mod exit;
mod fingerprint;
mod linger;
pub(crate) mod logs;
pub(crate) mod options;
mod pool;
pub(crate) mod registry;
mod spawn;
mod spec;
mod wire;

pub use child::run_if_worker;
pub use exit::WorkerExit;
pub use logs::ProcessLoggingConfig;
pub use options::{InitializerCall, ProcessOptions, WorkerProgram};
pub(crate) use pool::{BrokenHook, Pool, Shutdown};
pub(crate) use registry::decode;
pub use registry::{Task, TaskRegistry};
pub(crate) use spec::Spec;
