//! Benchmarks of leasepool's acquire path and hot paths, each paired with a baseline measured in
//! the same run so that the ratio between the two is meaningful.
//!
//! **Criterion groups** (steady-state means; skipped when `LEASEPOOL_BENCH_QUICK=1`):
//!
//! 1. `acquire_release_uncontended`: `try_acquire` + drop vs r2d2 `get` + drop.
//! 2. `contended_no_hold` and `contended_hold_20us`: 8 threads contending for 2 pools (blocking
//!    `acquire`, nothing or a 20 µs busy-spin while holding, drop) vs the same loop on an r2d2
//!    pool of 2 unit connections; wall time per operation.
//! 3. `full_cycle`: one caller, `acquire` + `lease.run(|| 1)` + drop vs an r2d2 pool of rayon
//!    pools: `get` + spawn a task sending on a one-shot channel + `recv` + drop.
//! 4. `run_round_trip`: `ExecutorLease::run(|| 1)` vs `rayon::ThreadPool::spawn` + a channel.
//! 5. `submit_100k_tiny`: 100 000 submits through a lease then waiting every handle vs 100 000
//!    raw rayon spawns sending their results on one channel (or one channel each).
//!
//! **Interleaved checks** (only in a real `cargo bench` run, not `cargo test --bench lease`):
//! after the criterion groups, each acquire-path check runs leasepool and its baseline in
//! alternating blocks (the side that goes first alternates each round), so every leasepool
//! block has a baseline block run moments apart, under the same machine state. Each check
//! reports, per metric, the median over rounds of the per-round values and of the per-round
//! ratio leasepool / baseline, and the run ends with a summary table against the goals. A
//! condvar ping-pong probe, printed at the start, before every check and at the end, says
//! whether the VM is in its fast or slow wake-up state. See [`interleaved_checks`].
//!
//! Environment: `LEASEPOOL_BENCH_QUICK=1` skips the criterion groups (interleaved checks only,
//! 10-20 s); `LEASEPOOL_BENCH_ROUNDS=n` sets the rounds of every interleaved check (default
//! 10); `LEASEPOOL_BENCH_VERBOSE=1` prints every round.
//!
//! Results and how to read them: `docs/PERFORMANCE.md`. Run with `cargo bench --bench lease`.

use std::env;
use std::hint::{black_box, spin_loop};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, SamplingMode, Throughput};
use crossbeam::channel;
use leasepool::{AcquireOptions, LeasedExecutorManager};

mod baseline;
mod measure;

use baseline::{r2d2_pool, RayonManager, UnitManager};
use measure::{bench_main, env_flag, fmt_ns, median, nanos, timed_block, wake_probe, wake_state, Dist};

/// Pools in the acquire benchmarks; also the r2d2 `max_size`.
const POOLS: usize = 2;
/// Worker threads per leasepool pool, and threads of every raw rayon baseline pool.
const WORKERS: usize = 2;
/// Threads contending in the contended benchmarks.
const CONTENDERS: usize = 8;
/// How long a contender holds its lease (or connection) in the "hold" variant, busy-spinning.
const HOLD: Duration = Duration::from_micros(20);
/// Tasks per iteration of `submit_100k_tiny`.
const TINY_TASKS: usize = 100_000;
/// Long enough that no lease ever reaches soft expiry during a run.
const LONG_LEASE: Duration = Duration::from_secs(3600);

/// Rounds of every interleaved check.
const ROUNDS_ENV: &str = "LEASEPOOL_BENCH_ROUNDS";
/// Set (to anything but `0`) to print every round of the interleaved checks.
const VERBOSE_ENV: &str = "LEASEPOOL_BENCH_VERBOSE";
const DEFAULT_ROUNDS: usize = 10;
/// Length of one contended block (one side, throughput or wait recording).
const CONTENDED_WINDOW: Duration = Duration::from_millis(100);
/// Wait slots per contender thread: one per 100 ns of [`CONTENDED_WINDOW`], more than any
/// thread can fill (an uncontended r2d2 `get` + drop alone takes about 250 ns).
const WAIT_SLOTS: usize = 1 << 20;
/// Operations per block of the uncontended check.
const UNCONTENDED_BLOCK: u32 = 50_000;
/// Cycles per block of the full-cycle check.
const CYCLE_BLOCK: usize = 4_000;

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

/// Busy-spins for `d` (nothing at all for zero): the "work" done while holding a pool.
fn hold_for(d: Duration) {
    if d.is_zero() {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < d {
        spin_loop();
    }
}

/// One full cycle through leasepool: blocking acquire, `run(|| 1)`, release.
fn lease_cycle(manager: &LeasedExecutorManager) -> u64 {
    let lease = manager.acquire(AcquireOptions::new()).expect("acquire");
    let result = lease.run(|| black_box(1u64)).expect("task runs");
    drop(lease);
    result
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

// ------------------------------------------------------------------------------------------
// Criterion groups
// ------------------------------------------------------------------------------------------

/// Uncontended acquire + release.
fn acquire_release_uncontended(c: &mut Criterion) {
    let manager = started_manager(POOLS);
    let pool = r2d2_pool(POOLS, UnitManager);
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

/// Eight threads contending for two pools, holding each for `hold`. One criterion iteration is
/// one acquire/release operation, so the reported time is wall time per operation (lower is
/// higher throughput).
fn contended_group(c: &mut Criterion, name: &str, hold: Duration) {
    let manager = started_manager(POOLS);
    let pool = r2d2_pool(POOLS, UnitManager);
    let mut group = c.benchmark_group(name);
    group.sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(1));
    group.bench_function("leasepool_acquire", |b| {
        b.iter_custom(|iters| {
            contend(iters, &|| {
                let lease = manager.acquire(AcquireOptions::new()).expect("acquire");
                hold_for(hold);
                drop(black_box(lease));
            })
        })
    });
    group.bench_function("r2d2_get", |b| {
        b.iter_custom(|iters| {
            contend(iters, &|| {
                let conn = pool.get().expect("get");
                hold_for(hold);
                drop(black_box(conn));
            })
        })
    });
    group.finish();
    manager.stop();
}

fn contended_no_hold(c: &mut Criterion) {
    contended_group(c, "contended_no_hold", Duration::ZERO);
}

fn contended_hold_20us(c: &mut Criterion) {
    contended_group(c, "contended_hold_20us", HOLD);
}

/// One caller: acquire, run one tiny task, release, vs the same on an r2d2 pool of rayon pools.
fn full_cycle(c: &mut Criterion) {
    let manager = started_manager(POOLS);
    let pool = r2d2_pool(POOLS, RayonManager { threads: WORKERS });
    let mut group = c.benchmark_group("full_cycle");
    group.throughput(Throughput::Elements(1));
    group.bench_function("leasepool_acquire_run_release", |b| b.iter(|| lease_cycle(&manager)));
    group.bench_function("r2d2_rayon_get_spawn_recv", |b| b.iter(|| baseline::r2d2_rayon_cycle(&pool)));
    group.finish();
    manager.stop();
}

/// One task round trip on a held lease: submit `|| 1` and block for its result.
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

/// 100 000 tiny tasks submitted, then all of them waited for.
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
    targets = acquire_release_uncontended, contended_no_hold, contended_hold_20us, full_cycle, run_round_trip,
        submit_100k_tiny
}

// ------------------------------------------------------------------------------------------
// Interleaved checks
// ------------------------------------------------------------------------------------------

/// One line of the summary table.
struct Row {
    name: String,
    /// Median over rounds of leasepool's per-round value (ns).
    lease: f64,
    /// Median over rounds of the baseline's per-round value (ns).
    base: f64,
    /// Median over rounds of the per-round ratio leasepool / baseline.
    ratio: f64,
    /// Lowest and highest per-round ratio.
    lo: f64,
    hi: f64,
    /// The ratio to stay at or under, if there is one.
    goal: Option<f64>,
}

impl Row {
    /// A row from per-round values of both sides (same length, in rounds order).
    fn new(name: impl Into<String>, lease: &[f64], base: &[f64], goal: Option<f64>) -> Row {
        let ratios: Vec<f64> = lease.iter().zip(base).map(|(l, b)| l / b.max(1.0)).collect();
        Row {
            name: name.into(),
            lease: median(lease),
            base: median(base),
            ratio: median(&ratios),
            lo: ratios.iter().copied().fold(f64::INFINITY, f64::min),
            hi: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            goal,
        }
    }
}

/// The sides of a two-sided check, leasepool first in rounds with an even index.
fn order(round: usize) -> [usize; 2] {
    if round % 2 == 0 {
        [0, 1]
    } else {
        [1, 0]
    }
}

/// Runs one thread per slot buffer (all released together by a barrier) with `body(stop, buffer)`
/// until [`CONTENDED_WINDOW`] has passed and `stop` is set; returns the wall time from the
/// common start until the last thread is done and each thread's return value (its operations).
/// Threads are spawned before the clock starts.
fn contenders(
    slots: &mut [Vec<u32>],
    body: &(impl Fn(&AtomicBool, &mut [u32]) -> usize + Sync),
) -> (Duration, Vec<usize>) {
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(slots.len() + 1);
    thread::scope(|s| {
        let workers: Vec<_> = slots
            .iter_mut()
            .map(|buffer| {
                let (stop, barrier) = (&stop, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    body(stop, buffer)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        thread::sleep(CONTENDED_WINDOW);
        stop.store(true, Ordering::Relaxed);
        let ops: Vec<usize> = workers.into_iter().map(|w| w.join().expect("contender panicked")).collect();
        (start.elapsed(), ops)
    })
}

/// A throughput block: every contender loops `acquire` → [`hold_for`] → drop, recording
/// nothing but its count. Returns the wall time per operation (ns) and the fairness: the fewest
/// operations one thread completed divided by the most.
fn throughput_block<G>(acquire: &(impl Fn() -> G + Sync), hold: Duration, slots: &mut [Vec<u32>]) -> (f64, f64) {
    let (elapsed, ops) = contenders(slots, &|stop, _| {
        let mut ops = 0;
        while !stop.load(Ordering::Relaxed) {
            let guard = acquire();
            hold_for(hold);
            drop(black_box(guard));
            ops += 1;
        }
        ops
    });
    let total: usize = ops.iter().sum();
    let fewest = ops.iter().copied().min().unwrap_or(0);
    let most = ops.iter().copied().max().unwrap_or(0).max(1);
    (elapsed.as_nanos() as f64 / total.max(1) as f64, fewest as f64 / most as f64)
}

/// A wait block: the same loop, with each acquire's wait (from the call to having the guard)
/// stored in the thread's preallocated slot buffer. Returns every thread's waits merged and
/// sorted (ns).
fn wait_block<G>(acquire: &(impl Fn() -> G + Sync), hold: Duration, slots: &mut [Vec<u32>]) -> Vec<u32> {
    let (_, ops) = contenders(slots, &|stop, buffer| {
        let mut n = 0;
        while n < buffer.len() && !stop.load(Ordering::Relaxed) {
            let asked = Instant::now();
            let guard = acquire();
            buffer[n] = nanos(asked.elapsed());
            n += 1;
            hold_for(hold);
            drop(black_box(guard));
        }
        n
    });
    if ops.contains(&WAIT_SLOTS) {
        println!("  warning: a contender filled its {WAIT_SLOTS} wait slots and stopped early");
    }
    let mut waits = Vec::with_capacity(ops.iter().sum());
    for (buffer, &n) in slots.iter().zip(&ops) {
        waits.extend_from_slice(&buffer[..n]);
    }
    waits.sort_unstable();
    waits
}

/// Checks 1 and 2: [`CONTENDERS`] threads on [`POOLS`] pools, each looping blocking `acquire`,
/// `hold` of busy-spinning, drop, vs `get`, the same hold, drop on an r2d2 pool of [`POOLS`]
/// unit connections. Each round runs, per side, a throughput block (no recording) and then a
/// wait block (each acquire's wait recorded).
fn contended_check(label: &str, hold: Duration, rounds: usize, verbose: bool) -> Vec<Row> {
    let probe = wake_probe();
    let manager = started_manager(POOLS);
    let pool = r2d2_pool(POOLS, UnitManager);
    let lease = || manager.acquire(AcquireOptions::new()).expect("acquire");
    let r2d2 = || pool.get().expect("r2d2 get");
    // Allocated and written once (so no page is first touched inside a timed loop), reused.
    let mut slots: Vec<Vec<u32>> = (0..CONTENDERS).map(|_| vec![u32::MAX; WAIT_SLOTS]).collect();
    println!(
        "{label}: {CONTENDERS} threads, {POOLS} pools, hold {}; {rounds} rounds of {} ms blocks \
         (wake-up probe {})",
        if hold.is_zero() { "none".to_owned() } else { fmt_ns(hold.as_nanos() as f64) },
        CONTENDED_WINDOW.as_millis(),
        wake_state(probe)
    );
    throughput_block(&lease, hold, &mut slots);
    throughput_block(&r2d2, hold, &mut slots);

    let mut per_op: [Vec<f64>; 2] = Default::default();
    let mut fairness: [Vec<f64>; 2] = Default::default();
    let mut dists: [Vec<Dist>; 2] = Default::default();
    let mut pooled: [Vec<u32>; 2] = Default::default();
    for round in 0..rounds {
        for side in order(round) {
            let (ns, fair) = if side == 0 {
                throughput_block(&lease, hold, &mut slots)
            } else {
                throughput_block(&r2d2, hold, &mut slots)
            };
            per_op[side].push(ns);
            fairness[side].push(fair);
        }
        for side in order(round) {
            let waits =
                if side == 0 { wait_block(&lease, hold, &mut slots) } else { wait_block(&r2d2, hold, &mut slots) };
            dists[side].push(Dist::of(&waits));
            pooled[side].extend_from_slice(&waits);
        }
        if verbose {
            println!(
                "  round {round}: leasepool {}/op, wait {} | r2d2 {}/op, wait {}",
                fmt_ns(per_op[0][round]),
                dists[0][round],
                fmt_ns(per_op[1][round]),
                dists[1][round]
            );
        }
    }
    for (side, name) in [(0, "leasepool"), (1, "r2d2     ")] {
        pooled[side].sort_unstable();
        println!(
            "  {name}: {}/op (median), fairness {:.2} (median fewest/most ops per thread); \
             waits of all {} acquires: {}",
            fmt_ns(median(&per_op[side])),
            median(&fairness[side]),
            pooled[side].len(),
            Dist::of(&pooled[side])
        );
    }
    manager.stop();

    let pick = |side: usize, f: fn(&Dist) -> f64| -> Vec<f64> { dists[side].iter().map(f).collect() };
    vec![
        Row::new(format!("{label}: time per op"), &per_op[0], &per_op[1], Some(1.0)),
        Row::new(format!("{label}: acquire wait p50"), &pick(0, |d| d.p50), &pick(1, |d| d.p50), None),
        Row::new(format!("{label}: acquire wait p99"), &pick(0, |d| d.p99), &pick(1, |d| d.p99), Some(1.0)),
        Row::new(format!("{label}: acquire wait max"), &pick(0, |d| d.max), &pick(1, |d| d.max), None),
    ]
}

/// Mean time (ns) of one of `n` calls of `op` in a row.
fn time_block(n: u32, op: impl Fn()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        op();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

/// Check 3: one thread, 2 idle pools: `try_acquire` + drop and blocking `acquire` + drop vs
/// r2d2 `get` + drop on 2 idle unit connections. Blocks of [`UNCONTENDED_BLOCK`] operations,
/// the three variants in rotating order.
fn uncontended_check(rounds: usize, verbose: bool) -> Vec<Row> {
    let probe = wake_probe();
    let manager = started_manager(POOLS);
    let pool = r2d2_pool(POOLS, UnitManager);
    let block = |variant: usize| match variant {
        0 => time_block(UNCONTENDED_BLOCK, || {
            drop(black_box(manager.try_acquire(AcquireOptions::new()).expect("a pool is free")));
        }),
        1 => time_block(UNCONTENDED_BLOCK, || {
            drop(black_box(manager.acquire(AcquireOptions::new()).expect("acquire")));
        }),
        _ => time_block(UNCONTENDED_BLOCK, || drop(black_box(pool.get().expect("a connection is free")))),
    };
    println!(
        "uncontended: 1 thread, {POOLS} idle pools; {rounds} rounds of {UNCONTENDED_BLOCK}-op blocks (wake-up probe {})",
        wake_state(probe)
    );
    for variant in 0..3 {
        block(variant);
    }
    let mut per_op: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds {
        for variant in (0..3).map(|k| (round + k) % 3) {
            per_op[variant].push(block(variant));
        }
        if verbose {
            println!(
                "  round {round}: try_acquire {}, acquire {}, r2d2 get {}",
                fmt_ns(per_op[0][round]),
                fmt_ns(per_op[1][round]),
                fmt_ns(per_op[2][round])
            );
        }
    }
    println!(
        "  medians: leasepool try_acquire + drop {}, acquire + drop {}; r2d2 get + drop {}",
        fmt_ns(median(&per_op[0])),
        fmt_ns(median(&per_op[1])),
        fmt_ns(median(&per_op[2]))
    );
    manager.stop();
    vec![
        Row::new("uncontended: try_acquire + drop", &per_op[0], &per_op[2], Some(1.0)),
        Row::new("uncontended: acquire + drop", &per_op[1], &per_op[2], Some(1.0)),
    ]
}

/// Check 4: one caller, a full cycle: blocking `acquire`, `lease.run(|| 1)`, drop, on a
/// manager of [`POOLS`] pools of [`WORKERS`] workers, vs an r2d2 pool of [`POOLS`] rayon pools of
/// [`WORKERS`] threads: `get`, spawn a task sending `1` on a one-shot channel, `recv`, drop.
fn full_cycle_check(rounds: usize, verbose: bool) -> Vec<Row> {
    let probe = wake_probe();
    let manager = started_manager(POOLS);
    let pool = r2d2_pool(POOLS, RayonManager { threads: WORKERS });
    let lease = || lease_cycle(&manager);
    let r2d2 = || baseline::r2d2_rayon_cycle(&pool);
    assert_eq!([lease(), r2d2()], [1, 1]);
    let mut buffer = vec![u32::MAX; CYCLE_BLOCK];
    println!(
        "full cycle: 1 caller, {POOLS} pools of {WORKERS} threads; {rounds} rounds of {CYCLE_BLOCK}-cycle blocks \
         (wake-up probe {})",
        wake_state(probe)
    );
    timed_block(&lease, &mut buffer);
    timed_block(&r2d2, &mut buffer);
    let mut means: [Vec<f64>; 2] = Default::default();
    let mut dists: [Vec<Dist>; 2] = Default::default();
    let mut pooled: [Vec<u32>; 2] = Default::default();
    for round in 0..rounds {
        for side in order(round) {
            let mean = if side == 0 { timed_block(&lease, &mut buffer) } else { timed_block(&r2d2, &mut buffer) };
            means[side].push(mean);
            dists[side].push(Dist::of(&buffer));
            pooled[side].extend_from_slice(&buffer);
        }
        if verbose {
            println!(
                "  round {round}: leasepool mean {}, {} | r2d2 + rayon mean {}, {}",
                fmt_ns(means[0][round]),
                dists[0][round],
                fmt_ns(means[1][round]),
                dists[1][round]
            );
        }
    }
    for (side, name) in [(0, "leasepool   "), (1, "r2d2 + rayon")] {
        pooled[side].sort_unstable();
        println!(
            "  {name}: mean {} (median of rounds); all {} cycles: {}",
            fmt_ns(median(&means[side])),
            pooled[side].len(),
            Dist::of(&pooled[side])
        );
    }
    manager.stop();
    let p99 = |side: usize| -> Vec<f64> { dists[side].iter().map(|d| d.p99).collect() };
    vec![
        Row::new("full cycle: mean", &means[0], &means[1], Some(1.2)),
        Row::new("full cycle: p99", &p99(0), &p99(1), Some(1.2)),
    ]
}

/// Runs every interleaved check, then prints the summary table.
fn interleaved_checks(start_probe: Duration) {
    let rounds = env::var(ROUNDS_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&r: &usize| r > 0)
        .unwrap_or(DEFAULT_ROUNDS);
    let verbose = env_flag(VERBOSE_ENV);
    let started = Instant::now();
    println!();
    println!("== interleaved checks ({rounds} rounds each) ==");
    let mut rows = contended_check("contended, no hold", Duration::ZERO, rounds, verbose);
    rows.extend(contended_check("contended, 20 µs hold", HOLD, rounds, verbose));
    rows.extend(uncontended_check(rounds, verbose));
    rows.extend(full_cycle_check(rounds, verbose));
    let end_probe = wake_probe();

    println!();
    println!(
        "== summary: leasepool vs baseline, interleaved, {rounds} rounds ({:.1} s) ==",
        started.elapsed().as_secs_f64()
    );
    println!("leasepool, baseline: median over rounds of each side's per-round value");
    println!("ratio: median over rounds of the paired per-round ratio leasepool/baseline (so not always the ratio of");
    println!("       the two medians); range: lowest-highest per-round ratio; lower is better; goal: ratio <= goal");
    println!(
        "{:<40} {:>10} {:>10} {:>8} {:>16} {:>6} {:>4}",
        "check", "leasepool", "baseline", "ratio", "range", "goal", "met"
    );
    for row in &rows {
        let (goal, met) = match row.goal {
            Some(goal) => (format!("<={goal:.1}"), if row.ratio <= goal { "yes" } else { "NO" }),
            None => ("-".to_owned(), "-"),
        };
        println!(
            "{:<40} {:>10} {:>10} {:>7.2}x {:>16} {:>6} {:>4}",
            row.name,
            fmt_ns(row.lease),
            fmt_ns(row.base),
            row.ratio,
            format!("{:.2}-{:.2}x", row.lo, row.hi),
            goal,
            met
        );
    }
    println!("baselines: contended and uncontended: r2d2 pool of {POOLS} unit connections (get + drop);");
    println!("           full cycle: r2d2 pool of {POOLS} rayon pools of {WORKERS} threads (get + spawn + one-shot recv + drop)");
    println!(
        "wake-up probe (condvar ping-pong median): start {}, end {}",
        wake_state(start_probe),
        wake_state(end_probe)
    );
}

fn main() {
    bench_main(benches, interleaved_checks);
}
