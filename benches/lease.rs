//! Benchmarks of leasepool's hot paths, each paired with a baseline measured in the same
//! criterion group so that the ratio between the two is meaningful:
//!
//! 1. `acquire_release_uncontended`: `try_acquire` + drop vs r2d2 `get` + drop.
//! 2. `acquire_release_8_threads_2_pools`: 8 threads contending for 2 pools (blocking acquire,
//!    tiny work, release) vs the same loop on an r2d2 pool of 2 connections.
//! 3. `run_round_trip`: `ExecutorLease::run(|| 1)` vs `rayon::ThreadPool::spawn` + a channel.
//! 4. `submit_100k_tiny`: 100 000 submits through a lease then waiting every handle vs 100 000
//!    raw rayon spawns sending their results on one channel.
//!
//! Results and how to read them: `docs/PERFORMANCE.md`. Run with `cargo bench --bench lease`.

use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use crossbeam::channel;
use leasepool::{AcquireOptions, LeasedExecutorManager};

mod baseline;

/// Pools in the acquire benchmarks; also the r2d2 `max_size`.
const POOLS: usize = 2;
/// Worker threads per leasepool pool, and threads of every raw rayon baseline pool.
const WORKERS: usize = 2;
/// Threads contending in benchmark 2.
const CONTENDERS: usize = 8;
/// Tasks per iteration of benchmark 4.
const TINY_TASKS: usize = 100_000;
/// Long enough that no lease ever reaches soft expiry during a run.
const LONG_LEASE: Duration = Duration::from_secs(3600);

/// A started manager whose `pools` pools all stay in the idle set between leases
/// (`min_pools == max_pools`, so a released pool is never retired as surplus).
fn started_manager(pools: usize) -> LeasedExecutorManager {
    let manager = LeasedExecutorManager::builder()
        .max_pools(pools)
        .min_pools(pools)
        .workers_per_pool(WORKERS)
        .default_lease(LONG_LEASE)
        .build()
        .expect("valid configuration");
    manager.start().expect("manager starts");
    manager
}

/// The cheapest possible r2d2 connection.
struct Unit;

/// An r2d2 manager whose connections cost nothing to make, check or return.
struct UnitManager;

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

/// An r2d2 pool of `size` connections, all made up front, with `test_on_check_out(false)` (the
/// tighter baseline: no `is_valid` call per checkout).
fn r2d2_pool(size: usize) -> r2d2::Pool<UnitManager> {
    r2d2::Pool::builder()
        .max_size(u32::try_from(size).expect("small pool"))
        .test_on_check_out(false)
        .build(UnitManager)
        .expect("r2d2 pool builds")
}

/// The "tiny work" done while holding a pool in benchmark 2.
fn tiny_work() {
    for i in 0..32u32 {
        black_box(i);
    }
}

/// Runs `total_ops` calls of `op`, split evenly over [`CONTENDERS`] threads that all start at
/// once, and returns the wall time from the common start until the last thread is done.
/// Thread spawning happens before the clock starts.
fn contend(total_ops: u64, op: &(impl Fn() + Sync)) -> Duration {
    let threads = CONTENDERS as u64;
    let barrier = Barrier::new(CONTENDERS + 1);
    thread::scope(|s| {
        let barrier = &barrier;
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                let ops = total_ops / threads + u64::from(i < total_ops % threads);
                s.spawn(move || {
                    barrier.wait();
                    for _ in 0..ops {
                        op();
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for worker in workers {
            worker.join().expect("contender panicked");
        }
        start.elapsed()
    })
}

/// Benchmark 1: Uncontended acquire + release.
fn acquire_release_uncontended(c: &mut Criterion) {
    let manager = started_manager(POOLS);
    let pool = r2d2_pool(POOLS);
    let mut group = c.benchmark_group("acquire_release_uncontended");
    group.throughput(Throughput::Elements(1));
    group.bench_function("leasepool_try_acquire", |b| {
        b.iter(|| {
            let lease = manager.try_acquire(AcquireOptions::new()).expect("a pool is free");
            drop(black_box(lease));
        })
    });
    group.bench_function("r2d2_get", |b| {
        b.iter(|| {
            let conn = pool.get().expect("a connection is free");
            drop(black_box(conn));
        })
    });
    group.finish();
    manager.stop();
}

/// Benchmark 2: eight threads contending for two pools. One criterion iteration is one
/// acquire/release operation, so the reported time is wall time per operation (lower is higher
/// throughput).
fn acquire_release_contended(c: &mut Criterion) {
    let manager = started_manager(POOLS);
    let pool = r2d2_pool(POOLS);
    let mut group = c.benchmark_group("acquire_release_8_threads_2_pools");
    group.sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(1));
    group.bench_function("leasepool_acquire", |b| {
        b.iter_custom(|iters| {
            contend(iters, &|| {
                let lease = manager.acquire(AcquireOptions::new()).expect("acquire");
                tiny_work();
                drop(black_box(lease));
            })
        })
    });
    group.bench_function("r2d2_get", |b| {
        b.iter_custom(|iters| {
            contend(iters, &|| {
                let conn = pool.get().expect("get");
                tiny_work();
                drop(black_box(conn));
            })
        })
    });
    group.finish();
    manager.stop();
}

/// Benchmark 3: One task round trip: submit `|| 1` and block for its result.
fn run_round_trip(c: &mut Criterion) {
    let manager = started_manager(1);
    let lease = manager.acquire(AcquireOptions::new()).expect("acquire");
    let rayon = baseline::rayon_pool(WORKERS);
    let mut group = c.benchmark_group("run_round_trip");
    group.throughput(Throughput::Elements(1));
    group.bench_function("leasepool_run", |b| b.iter(|| lease.run(|| black_box(1u64)).expect("task runs")));
    group.bench_function("rayon_spawn_channel", |b| {
        b.iter(|| {
            let (tx, rx) = channel::bounded(1);
            rayon.spawn(move || {
                let _ = tx.send(black_box(1u64));
            });
            rx.recv().expect("task runs")
        })
    });
    group.finish();
    drop(lease);
    manager.stop();
}

/// Benchmark 4: 100 000 tiny tasks submitted, then all of them waited for.
fn submit_100k_tiny(c: &mut Criterion) {
    let manager = started_manager(1);
    let lease = manager.acquire(AcquireOptions::new()).expect("acquire");
    let rayon = baseline::rayon_pool(WORKERS);
    let mut group = c.benchmark_group("submit_100k_tiny");
    group.sample_size(10).measurement_time(Duration::from_secs(10)).throughput(Throughput::Elements(TINY_TASKS as u64));
    group.bench_function("leasepool_submit_wait", |b| b.iter(|| baseline::lease_submit_wait(&lease, TINY_TASKS)));
    group.bench_function("rayon_spawn_channel", |b| b.iter(|| baseline::rayon_shared_channel(&rayon, TINY_TASKS)));
    // The same deliverable as `submit`: one result handle (a one-shot channel) per task.
    group.bench_function("rayon_spawn_oneshot", |b| b.iter(|| baseline::rayon_oneshot(&rayon, TINY_TASKS)));
    group.finish();
    drop(lease);
    manager.stop();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4)).sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = acquire_release_uncontended, acquire_release_contended, run_round_trip, submit_100k_tiny
}
criterion_main!(benches);
