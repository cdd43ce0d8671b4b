//! Workloads shared by the benchmarks: the raw-rayon and r2d2 baselines, and a held lease's
//! submit + wait.
#![allow(dead_code)]

use std::hint::black_box;

use crossbeam::channel;
use leasepool::ExecutorLease;

/// A raw rayon pool with `threads` threads (the baselines' counterpart of `workers_per_pool`).
pub fn rayon_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("rayon pool")
}

/// `n` rayon spawns, each sending `i` on one shared channel; returns the sum. The floor: no
/// per-task handle.
pub fn rayon_shared_channel(pool: &rayon::ThreadPool, n: usize) -> usize {
    let (tx, rx) = channel::unbounded();
    for i in 0..n {
        let tx = tx.clone();
        pool.spawn(move || {
            let _ = tx.send(black_box(i));
        });
    }
    drop(tx);
    rx.iter().take(n).sum()
}

/// `n` rayon spawns, each with its own one-shot channel (one result handle per task, like
/// `submit`'s `TaskHandle`); returns the sum.
pub fn rayon_oneshot(pool: &rayon::ThreadPool, n: usize) -> usize {
    let receivers: Vec<_> = (0..n)
        .map(|i| {
            let (tx, rx) = channel::bounded(1);
            pool.spawn(move || {
                let _ = tx.send(black_box(i));
            });
            rx
        })
        .collect();
    receivers.into_iter().map(|rx| rx.recv().expect("task runs")).sum()
}

/// `n` submits of `move || i` through a held lease, then `n` waits; returns the sum.
pub fn lease_submit_wait(lease: &ExecutorLease, n: usize) -> usize {
    let executor = lease.executor();
    let handles: Vec<_> = (0..n).map(|i| executor.submit(move || black_box(i)).expect("submit")).collect();
    handles.into_iter().map(|h| h.wait().expect("task runs")).sum()
}

/// The cheapest possible r2d2 connection.
pub struct Unit;

/// An r2d2 manager whose connections cost nothing to make, check or return.
pub struct UnitManager;

impl r2d2::ManageConnection for UnitManager {
    type Connection = Unit;
    type Error = std::io::Error;

    fn connect(&self) -> Result<Unit, Self::Error> {
        Ok(Unit)
    }

    fn is_valid(&self, _conn: &mut Unit) -> Result<(), Self::Error> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut Unit) -> bool {
        false
    }
}

/// An r2d2 manager whose connections are rayon thread pools of `threads` threads each: the
/// "pool of pools" a leasepool manager replaces.
pub struct RayonManager {
    /// Threads per connection (the baselines' counterpart of `workers_per_pool`).
    pub threads: usize,
}

impl r2d2::ManageConnection for RayonManager {
    type Connection = rayon::ThreadPool;
    type Error = rayon::ThreadPoolBuildError;

    fn connect(&self) -> Result<rayon::ThreadPool, Self::Error> {
        rayon::ThreadPoolBuilder::new().num_threads(self.threads).build()
    }

    fn is_valid(&self, _conn: &mut rayon::ThreadPool) -> Result<(), Self::Error> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut rayon::ThreadPool) -> bool {
        false
    }
}

/// An r2d2 pool of `size` connections made by `manager`, all made up front (`build` waits for
/// them), with `test_on_check_out(false)`: the tighter baseline, no `is_valid` call per checkout.
pub fn r2d2_pool<M: r2d2::ManageConnection>(size: usize, manager: M) -> r2d2::Pool<M> {
    r2d2::Pool::builder()
        .max_size(u32::try_from(size).expect("small pool"))
        .test_on_check_out(false)
        .build(manager)
        .expect("r2d2 pool builds")
}

/// One full cycle on an r2d2 pool of rayon pools: `get` a pool, spawn `|| 1` on it sending its
/// result on a one-shot channel, wait for the result, drop (return) the pool.
pub fn r2d2_rayon_cycle(pool: &r2d2::Pool<RayonManager>) -> u64 {
    let rayon = pool.get().expect("r2d2 get");
    let (tx, rx) = channel::bounded(1);
    rayon.spawn(move || {
        let _ = tx.send(black_box(1u64));
    });
    let result = rx.recv().expect("task runs");
    drop(rayon);
    result
}
