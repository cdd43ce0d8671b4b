//! Throughput of tiny jobs through a [`WorkGrinder`], against leasing a pool per job and against
//! raw rayon, all in one criterion group (`grinder_tiny_jobs`) so that the ratios are meaningful:
//!
//! - `grinder_threshold_{1000,10000}`: one thread enqueues `N` closures `move || black_box(i)`
//!   into a grinder (threshold 1 000 or 10 000, `max_wait` 1 ms, so batches form by size), then
//!   waits every handle;
//! - `lease_per_job`: for each job, `manager.acquire(..)` + `lease.run(..)` + drop (slow: a
//!   smaller `N`; compare the per-element figures);
//! - `lease_submit_wait`: one lease held for the whole iteration, `N` submits then `N` waits (the
//!   path a batch takes, without the grinder: context for the analysis);
//! - `rayon_spawn_channel`: `N` spawns on a raw rayon pool sending on one shared channel;
//! - `rayon_spawn_oneshot`: `N` spawns, each with its own one-shot channel (one result handle per
//!   job, like for like with the grinder's handles).
//!
//! Every variant uses [`WORKERS`] threads. Managers and grinders are built once, outside the
//! timed code, with a one-hour lease. Results: `docs/PERFORMANCE.md`. Run with
//! `cargo bench --bench grinder`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use leasepool::{AcquireOptions, LeasedExecutorManager, StopMode, WorkGrinder};

mod baseline;

/// Worker threads of every leasepool pool and of the raw rayon pool.
const WORKERS: usize = 2;
/// Jobs per iteration for every variant but per-job leasing.
const JOBS: usize = 100_000;
/// Jobs per iteration of per-job leasing (each one acquires and releases a lease).
const LEASED_JOBS: usize = 10_000;
/// Long enough that no lease ever reaches soft expiry during a run.
const LONG_LEASE: Duration = Duration::from_secs(3600);

/// A started manager with one pool that always stays in the idle set between leases.
fn started_manager() -> LeasedExecutorManager {
    let manager = LeasedExecutorManager::builder()
        .max_pools(1)
        .min_pools(1)
        .workers_per_pool(WORKERS)
        .default_lease(LONG_LEASE)
        .build()
        .expect("valid configuration");
    manager.start().expect("manager starts");
    manager
}

/// A started grinder on `manager` whose batches form by size (`threshold`), with a 1 ms
/// `max_wait` for the last partial batch.
fn started_grinder(manager: &LeasedExecutorManager, threshold: usize) -> WorkGrinder {
    let grinder = WorkGrinder::builder(manager.clone())
        .batch_size_threshold(threshold)
        .max_wait(Duration::from_millis(1))
        .lease_duration(LONG_LEASE)
        .build()
        .expect("valid grinder configuration");
    grinder.start().expect("grinder starts");
    grinder
}

/// One iteration through a grinder: enqueue `JOBS` tiny jobs, then wait for every handle.
fn grind(grinder: &WorkGrinder) -> usize {
    let handles: Vec<_> = (0..JOBS).map(|i| grinder.enqueue(move || black_box(i)).expect("enqueue")).collect();
    handles.into_iter().map(|h| h.wait().expect("job runs")).sum::<usize>()
}

fn tiny_jobs(c: &mut Criterion) {
    let grinder_manager = started_manager();
    let grinder_1k = started_grinder(&grinder_manager, 1_000);
    let grinder_10k = started_grinder(&grinder_manager, 10_000);
    let lease_manager = started_manager();
    let rayon = baseline::rayon_pool(WORKERS);

    let mut group = c.benchmark_group("grinder_tiny_jobs");
    group.sampling_mode(SamplingMode::Flat);

    group.throughput(Throughput::Elements(JOBS as u64));
    group.bench_function("grinder_threshold_1000", |b| b.iter(|| grind(&grinder_1k)));
    group.bench_function("grinder_threshold_10000", |b| b.iter(|| grind(&grinder_10k)));

    group.throughput(Throughput::Elements(LEASED_JOBS as u64));
    group.bench_function("lease_per_job", |b| {
        b.iter(|| {
            (0..LEASED_JOBS)
                .map(|i| {
                    let lease = lease_manager.acquire(AcquireOptions::new()).expect("acquire");
                    lease.run(move || black_box(i)).expect("job runs")
                })
                .sum::<usize>()
        })
    });

    group.throughput(Throughput::Elements(JOBS as u64));
    group.bench_function("lease_submit_wait", |b| {
        b.iter(|| {
            let lease = lease_manager.acquire(AcquireOptions::new()).expect("acquire");
            baseline::lease_submit_wait(&lease, JOBS)
        })
    });
    group.bench_function("rayon_spawn_channel", |b| b.iter(|| baseline::rayon_shared_channel(&rayon, JOBS)));
    group.bench_function("rayon_spawn_oneshot", |b| b.iter(|| baseline::rayon_oneshot(&rayon, JOBS)));
    group.finish();

    for grinder in [grinder_1k, grinder_10k] {
        let counters = grinder.stats().counters;
        eprintln!(
            "grinder (threshold {}): {} batches for {} jobs (mean {:.0} per batch)",
            grinder.stats().batch_size_threshold,
            counters.batches_run,
            counters.jobs_completed,
            counters.jobs_completed as f64 / counters.batches_run.max(1) as f64
        );
        grinder.stop(StopMode::Drain { deadline: None });
    }
    grinder_manager.stop();
    lease_manager.stop();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5)).sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = tiny_jobs
}
criterion_main!(benches);
