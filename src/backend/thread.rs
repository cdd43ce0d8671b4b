//! The thread backend: each pool is a rayon thread pool.
//!
//! Rayon never joins its threads when a pool is dropped, so the spawn handler keeps every
//! `JoinHandle` and an exit handler reports each thread's end on a channel: that is what lets a
//! graceful stop wait (with a deadline) for every pool thread. Rayon also cannot drop queued jobs;
//! jobs submitted through a lease check their lease before running instead (see `lease.rs`).

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::channel::{self, Receiver};
use parking_lot::{Mutex, RwLock};

use crate::config::Config;
use crate::util::{catch_panic, panic_text};

/// One rayon thread pool plus the handles needed to join it.
pub(crate) struct Pool {
    seq: u64,
    workers: usize,
    /// `None` once shut down: dropping a rayon pool lets its threads finish the queue and exit.
    rayon: RwLock<Option<rayon::ThreadPool>>,
    threads: Mutex<Threads>,
    exits: Receiver<()>,
}

impl Pool {
    /// Builds a pool of `workers_per_pool` threads named `{prefix}-{seq}_{i}`. When a start hook
    /// is configured, waits until it has run on every worker: a hook that panics or overruns
    /// `start_timeout` makes creation fail, so a pool is never handed out half-initialized.
    /// When hooks overran, the error carries the pool (its threads are still in their hooks) so
    /// that the manager can keep track of threads it could not stop.
    pub(crate) fn create(config: &Config, seq: u64) -> Result<Pool, (String, Option<Pool>)> {
        let workers = config.workers_per_pool;
        let handles = Arc::new(Mutex::new(Vec::with_capacity(workers)));
        let (exit_tx, exits) = channel::unbounded();
        let (started_tx, started) = channel::unbounded::<Result<(), String>>();
        let hook = config.thread.start_hook.clone();
        let waits_for_hooks = hook.is_some();
        let prefix = config.name_prefix.clone();
        let stack_size = config.thread.stack_size;
        let log_target = config.log_target.clone();

        let spawned = Arc::clone(&handles);
        let builder = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(move |i| format!("{prefix}-{seq}_{i}"))
            .spawn_handler(move |thread| {
                let mut b = std::thread::Builder::new();
                if let Some(name) = thread.name() {
                    b = b.name(name.to_owned());
                }
                if let Some(size) = stack_size {
                    b = b.stack_size(size);
                }
                let handle = b.spawn(|| thread.run())?;
                spawned.lock().push(handle);
                Ok(())
            })
            .start_handler(move |i| {
                if let Some(hook) = &hook {
                    let outcome = catch_panic(|| hook(i))
                        .map_err(|message| format!("worker start hook panicked on worker {i}: {message}"));
                    let _ = started_tx.send(outcome);
                }
            })
            .exit_handler(move |_| {
                let _ = exit_tx.send(());
            })
            // Jobs catch their own panics; this is the last resort that keeps rayon from aborting.
            .panic_handler(move |p| {
                log::error!(target: &log_target, "a pool job panicked outside its guard: {}", panic_text(p));
            });
        let rayon = builder.build().map_err(|e| (format!("could not spawn pool threads: {e}"), None))?;
        let pool = Pool {
            seq,
            workers,
            rayon: RwLock::new(Some(rayon)),
            threads: Mutex::new(Threads { handles: std::mem::take(&mut *handles.lock()), exits_seen: 0 }),
            exits,
        };
        if waits_for_hooks {
            let deadline = Instant::now() + config.thread.start_timeout;
            for done in 0..workers {
                match started.recv_deadline(deadline) {
                    Ok(Ok(())) => continue,
                    Ok(Err(reason)) => {
                        pool.shutdown();
                        return Err((reason, None));
                    }
                    Err(_) => {
                        pool.shutdown();
                        let reason = format!(
                            "worker start hooks did not finish within {:?}: {} of {workers} workers of pool {seq} \
                             ({}-{seq}_*) are still inside the hook and cannot be stopped",
                            config.thread.start_timeout,
                            workers - done,
                            config.name_prefix,
                        );
                        return Err((reason, Some(pool)));
                    }
                }
            }
        }
        Ok(pool)
    }

    /// How many worker threads the pool has.
    pub(crate) fn threads(&self) -> usize {
        self.workers
    }

    /// The pool's sequence number (the `{seq}` in its thread names).
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// Queues a job, or gives it back when the pool was already shut down.
    pub(crate) fn spawn<F: FnOnce() + Send + 'static>(&self, job: F) -> Result<(), F> {
        match &*self.rayon.read() {
            Some(pool) => {
                pool.spawn(job);
                Ok(())
            }
            None => Err(job),
        }
    }

    /// Whether every thread of this pool has exited.
    pub(crate) fn threads_finished(&self) -> bool {
        self.threads.lock().handles.iter().all(JoinHandle::is_finished)
    }

    /// Stops accepting work without waiting: queued jobs still pass through (their lease tells
    /// them to resolve as cancelled), running jobs finish, then the threads exit.
    pub(crate) fn shutdown(&self) {
        let pool = self.rayon.write().take();
        drop(pool);
    }

    /// Waits until every thread of a shut-down pool has exited, or `deadline` passes. Returns
    /// whether all of them were joined. Called from one of the pool's own threads it returns
    /// `false` at once: a thread cannot join itself, and rayon keeps its siblings alive while
    /// the job that called this runs.
    pub(crate) fn join(&self, deadline: Instant) -> bool {
        let me = std::thread::current().id();
        // Another joiner may hold the lock while it waits for its own (later) deadline.
        let Some(mut threads) = self.threads.try_lock_until(deadline) else { return false };
        if threads.handles.iter().any(|t| t.thread().id() == me) {
            return false;
        }
        let needed = threads.handles.len();
        while threads.exits_seen < needed {
            if self.exits.recv_deadline(deadline).is_err() {
                return false;
            }
            threads.exits_seen += 1;
        }
        // Every thread has run its exit handler, so these joins return at once.
        for handle in std::mem::take(&mut threads.handles) {
            let _ = handle.join();
        }
        threads.exits_seen = 0;
        true
    }
}

/// The pool's thread handles and how many exits have been observed so far.
struct Threads {
    handles: Vec<JoinHandle<()>>,
    exits_seen: usize,
}
