//! Workloads shared by the benchmarks: the raw-rayon baselines and a held lease's submit + wait.
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
