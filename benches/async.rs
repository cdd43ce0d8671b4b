//! The async adapter against what an async caller would do without it, each pair measured in
//! alternating blocks of the same run (the side that goes first alternates every round), so
//! that the per-round ratio compares two blocks run moments apart on the same machine state.
//!
//! 1. `burst`: 1 000 concurrent requests on a tokio multi-thread runtime (2 workers), each
//!    `acquire_async` + `run_async(tiny)` + release, vs each `tokio::task::spawn_blocking` +
//!    blocking `acquire` + `run(tiny)` + release; 2 pools × 2 workers. Wall time per burst.
//!    Goal ≤ 1.0×.
//! 2. `await_handle`: one task at a time on a tokio current-thread runtime, `submit(tiny)` then
//!    `handle.await`, vs a `tokio::sync::oneshot` around a `rayon::ThreadPool::spawn` (2
//!    threads): the round trip. Goal ≤ 1.3×.
//! 3. `await_1000`: 1 000 submits then awaiting every handle, vs 1 000 oneshots around rayon
//!    spawns (informational).
//!
//! Each check prints the median over rounds of both sides and of the per-round ratio; the run
//! ends with a summary against the goals and the load average before and after (a busy machine
//! shows there). `LEASEPOOL_BENCH_ROUNDS=n` sets the rounds (default 15). Under `cargo test
//! --benches` (no `--bench` argument) every check runs one small round, as a smoke test.
//!
//! Run with `cargo bench --features async --bench async`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use leasepool::{AcquireOptions, LeasedExecutorManager};

const POOLS: usize = 2;
const WORKERS: usize = 2;
const REQUESTS: usize = 1_000;
const ROUND_TRIPS: usize = 2_000;
const DEFAULT_ROUNDS: usize = 15;

fn manager() -> LeasedExecutorManager {
    let m = LeasedExecutorManager::builder()
        .max_pools(POOLS)
        .min_pools(POOLS)
        .workers_per_pool(WORKERS)
        .default_lease(Duration::from_secs(3600))
        .build()
        .expect("valid config");
    m.start().expect("start");
    m
}

/// `requests` concurrent requests through the async adapter; wall time.
async fn burst_async(m: &LeasedExecutorManager, requests: usize) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..requests)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move {
                let lease = m.acquire_async(AcquireOptions::new()).await.unwrap();
                let v = lease.run_async(move || black_box(i) + 1).await.unwrap();
                drop(lease);
                v
            })
        })
        .collect();
    for t in tasks {
        black_box(t.await.unwrap());
    }
    start.elapsed()
}

/// The same requests, each on tokio's blocking pool with the blocking API; wall time.
async fn burst_blocking(m: &LeasedExecutorManager, requests: usize) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..requests)
        .map(|i| {
            let m = m.clone();
            tokio::task::spawn_blocking(move || {
                let lease = m.acquire(AcquireOptions::new()).unwrap();
                let v = lease.run(move || black_box(i) + 1).unwrap();
                drop(lease);
                v
            })
        })
        .collect();
    for t in tasks {
        black_box(t.await.unwrap());
    }
    start.elapsed()
}

/// Sequential submit + `handle.await` round trips; time per round trip.
async fn await_handles(exec: &leasepool::LeasedExecutor, n: usize) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        black_box(exec.submit(move || black_box(i)).unwrap().await.unwrap());
    }
    start.elapsed() / n as u32
}

/// Sequential oneshot-around-rayon-spawn round trips; time per round trip.
async fn await_oneshots(pool: &rayon::ThreadPool, n: usize) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        let (tx, rx) = tokio::sync::oneshot::channel();
        pool.spawn(move || {
            let _ = tx.send(black_box(i));
        });
        black_box(rx.await.unwrap());
    }
    start.elapsed() / n as u32
}

/// `n` submits, then every handle awaited; time per task.
async fn await_many_handles(exec: &leasepool::LeasedExecutor, n: usize) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..n).map(|i| exec.submit(move || black_box(i)).unwrap()).collect();
    for h in handles {
        black_box(h.await.unwrap());
    }
    start.elapsed() / n as u32
}

/// `n` rayon spawns with a oneshot each, then every oneshot awaited; time per task.
async fn await_many_oneshots(pool: &rayon::ThreadPool, n: usize) -> Duration {
    let start = Instant::now();
    let receivers: Vec<_> = (0..n)
        .map(|i| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            pool.spawn(move || {
                let _ = tx.send(black_box(i));
            });
            rx
        })
        .collect();
    for rx in receivers {
        black_box(rx.await.unwrap());
    }
    start.elapsed() / n as u32
}

/// One check's result: medians of leasepool's side, the baseline's, and the per-round ratio.
struct Outcome {
    name: &'static str,
    unit: &'static str,
    leasepool: Duration,
    baseline: Duration,
    ratio: f64,
    goal: Option<f64>,
}

/// Runs `rounds` rounds of both sides, alternating which goes first; prints and returns medians.
fn interleaved(
    name: &'static str,
    unit: &'static str,
    goal: Option<f64>,
    rounds: usize,
    mut ours: impl FnMut() -> Duration,
    mut theirs: impl FnMut() -> Duration,
) -> Outcome {
    // One warm-up block each (threads, allocator, caches).
    ours();
    theirs();
    let (mut a, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (x, y) = if round % 2 == 0 {
            let x = ours();
            (x, theirs())
        } else {
            let y = theirs();
            (ours(), y)
        };
        a.push(x);
        b.push(y);
        r.push(x.as_secs_f64() / y.as_secs_f64());
    }
    let outcome =
        Outcome { name, unit, leasepool: median(&mut a), baseline: median(&mut b), ratio: median_f(&mut r), goal };
    println!(
        "{name:<14} leasepool {:>10.2?} {unit}   baseline {:>10.2?} {unit}   ratio {:.2}x  ({rounds} rounds)",
        outcome.leasepool, outcome.baseline, outcome.ratio
    );
    outcome
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn median_f(v: &mut [f64]) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    v[v.len() / 2]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

fn main() {
    let real = std::env::args().any(|a| a == "--bench");
    let rounds = if real {
        std::env::var("LEASEPOOL_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_ROUNDS).max(1)
    } else {
        1
    };
    let (requests, round_trips) = if real { (REQUESTS, ROUND_TRIPS) } else { (50, 50) };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load_before = loadavg();
    println!("async adapter bench: {cores} cores, load average {load_before} (1, 5, 15 min)");

    let m = manager();
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let current = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut outcomes = Vec::new();

    outcomes.push(interleaved(
        "burst",
        "/burst",
        Some(1.0),
        rounds,
        || multi.block_on(burst_async(&m, requests)),
        || multi.block_on(burst_blocking(&m, requests)),
    ));

    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let exec = lease.executor();
    let rayon_pool = rayon::ThreadPoolBuilder::new().num_threads(WORKERS).build().unwrap();
    outcomes.push(interleaved(
        "await_handle",
        "/trip ",
        Some(1.3),
        rounds,
        || current.block_on(await_handles(&exec, round_trips)),
        || current.block_on(await_oneshots(&rayon_pool, round_trips)),
    ));
    outcomes.push(interleaved(
        "await_1000",
        "/task ",
        None,
        rounds,
        || current.block_on(await_many_handles(&exec, requests)),
        || current.block_on(await_many_oneshots(&rayon_pool, requests)),
    ));
    drop(lease);

    println!(
        "\nsummary (median of per-round ratios, leasepool / baseline; load average {load_before} -> {}):",
        loadavg()
    );
    for o in &outcomes {
        let verdict = match o.goal {
            Some(goal) if o.ratio <= goal => format!("goal <= {goal:.1}x: met"),
            Some(goal) => format!("goal <= {goal:.1}x: MISSED"),
            None => "informational".to_owned(),
        };
        println!(
            "  {:<14} {:.2}x   ({:.2?} vs {:.2?} {})   {verdict}",
            o.name,
            o.ratio,
            o.leasepool,
            o.baseline,
            o.unit.trim()
        );
    }
    m.stop();
}
