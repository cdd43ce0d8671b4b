//! WorkGrinder: many threads feeding small jobs into one grinder, which runs them in batches,
//! one lease per batch.
//!
//! Shows, on a manager of 2 pools × 4 workers and 8 producer threads:
//! - `enqueue` / `enqueue_as` from 8 threads at once, each keeping a window of handles in flight:
//!   batches form by size (`batch_size_threshold`) and take *every* pending job, so they are often
//!   larger than the threshold;
//! - blocking `submit` / `submit_as` from 8 threads: at most 8 jobs are ever pending, so batches
//!   form by age (`max_wait`) and stay small;
//! - the batch sizes seen (sampled from `grinder.stats()` while the phase runs, plus the exact mean
//!   `jobs / batches`), the number of jobs, the throughput, and a check of every result;
//! - `max_concurrent_batches(1)` vs `(2)` on the same workloads: each concurrent batch holds its own
//!   lease, so two batches use both pools (8 workers instead of 4). That doubles the throughput of
//!   blocking jobs; CPU-bound jobs gain only if the machine has cores to spare;
//! - `stop(StopMode::Drain { deadline: None })` running every queued job before it returns, a
//!   refused `enqueue` after the stop, the final `GrinderStats`, then stopping the manager.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example work_grinder
//! ```

use std::collections::VecDeque;
use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use leasepool::{LeasedExecutorManager, StopMode, TaskError, TaskHandle, WorkGrinder};

/// Threads feeding the grinder.
const PRODUCERS: usize = 8;
/// Pools of the manager (`min_pools == max_pools`: both stay ready between batches).
const POOLS: usize = 2;
/// Worker threads per pool.
const WORKERS: usize = 4;
/// How long a "blocking" job sleeps (stands in for a short I/O wait).
const IO_WAIT: Duration = Duration::from_micros(500);

/// What each job does. Every job returns a `u64` that the example checks afterwards.
#[derive(Debug, Clone, Copy)]
enum Workload {
    /// Even jobs hash a short string naming the job, odd jobs count Collatz steps (a few µs).
    Mixed,
    /// Collatz steps of 32 consecutive numbers (≈ 10 µs of pure CPU).
    Cpu,
    /// Sleep [`IO_WAIT`], then hash a short string: a worker is busy but the CPU is free.
    Blocking,
}

/// How producers hand jobs to the grinder.
#[derive(Debug, Clone, Copy)]
enum Call {
    /// `enqueue` (or `enqueue_as` on odd producers), keeping up to `window` handles in flight.
    Enqueue { window: usize },
    /// `submit` (or `submit_as` on odd producers): one job at a time, blocking for its result.
    Submit,
}

fn main() -> Result<(), Box<dyn Error>> {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let manager = LeasedExecutorManager::builder()
        .max_pools(POOLS)
        .min_pools(POOLS)
        .workers_per_pool(WORKERS)
        .default_lease(Duration::from_secs(60))
        .name_prefix("grind")
        .build()?;
    manager.start()?;
    println!("manager: {POOLS} pools × {WORKERS} workers; {PRODUCERS} producer threads; {cpus} CPU(s)");

    let grinder = WorkGrinder::builder(manager.clone())
        .batch_size_threshold(256)
        .max_wait(Duration::from_millis(2))
        .lease_duration(Duration::from_secs(30))
        .owner_prefix("demo")
        .build()?;
    grinder.start()?;
    println!("grinder: batch_size_threshold=256, max_wait=2ms, lease_duration=30s, max_concurrent_batches=1\n");

    // ── 1. enqueue from 8 threads: batches form by size ─────────────────────────────────────────
    println!("1. enqueue / enqueue_as: {PRODUCERS} producers × 6000 mixed jobs, ≤ 512 handles in flight each");
    let phase = run_phase(&grinder, Workload::Mixed, Call::Enqueue { window: 512 }, 6000)?;
    phase.print();

    // ── 2. blocking submit from 8 threads: batches form by age ──────────────────────────────────
    println!(
        "\n2. submit / submit_as: {PRODUCERS} producers × 150 blocking calls (≤ {PRODUCERS} jobs pending at once)"
    );
    let phase = run_phase(&grinder, Workload::Mixed, Call::Submit, 150)?;
    phase.print();
    println!("   (each call waits up to max_wait for its batch to form: latency for batching)");

    // ── 3. max_concurrent_batches: 1 vs 2 ───────────────────────────────────────────────────────
    println!("\n3. max_concurrent_batches 1 vs 2 (threshold 32, max_wait 1ms, ≤ 16 handles in flight per producer)");
    for (workload, jobs) in [(Workload::Cpu, 2500), (Workload::Blocking, 120)] {
        let mut throughputs = Vec::new();
        for concurrency in [1, 2] {
            let g = WorkGrinder::builder(manager.clone())
                .batch_size_threshold(32)
                .max_wait(Duration::from_millis(1))
                .max_concurrent_batches(concurrency)
                .owner_prefix(format!("concurrency-{concurrency}"))
                .build()?;
            g.start()?;
            let phase = run_phase(&g, workload, Call::Enqueue { window: 16 }, jobs)?;
            g.stop(StopMode::Drain { deadline: None });
            println!(
                "   {workload:?} jobs, max_concurrent_batches({concurrency}): {} jobs in {:>7.1} ms = {:>9.0} jobs/s \
                 ({} batches, mean {:.0} jobs)",
                phase.jobs,
                ms(phase.elapsed),
                phase.throughput(),
                phase.batches,
                phase.mean_batch()
            );
            throughputs.push(phase.throughput());
        }
        println!(
            "   → {workload:?}: 2 concurrent batches run ×{:.2} the throughput of 1",
            throughputs[1] / throughputs[0]
        );
    }
    println!(
        "   (blocking jobs are limited by workers: 2 batches = 2 leases = {} workers instead of {WORKERS}; \
         CPU-bound jobs by the {cpus} CPU(s))",
        2 * WORKERS
    );

    // ── 4. drain stop ───────────────────────────────────────────────────────────────────────────
    let handles =
        (0..1000).map(|i| grinder.enqueue(move || job(Workload::Mixed, 99, i))).collect::<Result<Vec<_>, _>>()?;
    let before = grinder.stats();
    grinder.stop(StopMode::Drain { deadline: None });
    let mut values = 0;
    for (i, handle) in handles.into_iter().enumerate() {
        if handle.wait()? == job_value(Workload::Mixed, 99, i) {
            values += 1;
        }
    }
    println!(
        "\n4. enqueued 1000 jobs and stopped at once with Drain (pending then: {}): {values} of 1000 handles got \
         their correct value",
        before.pending
    );
    match grinder.enqueue(|| 0u64) {
        Ok(_) => println!("   enqueue after stop was accepted (unexpected)"),
        Err(e) => println!("   enqueue after stop is refused: {e}"),
    }

    println!("\nfinal GrinderStats:");
    println!("{}", grinder.stats());

    manager.stop();
    println!("\nmanager stopped (running = {})", manager.is_running());
    Ok(())
}

/// What one phase measured.
struct Phase {
    jobs: u64,
    elapsed: Duration,
    /// Batches run during the phase (from `stats().counters.batches_run`).
    batches: u64,
    /// Jobs completed during the phase (from `stats().counters.jobs_completed`).
    completed: u64,
    /// Batch sizes seen by the sampler (from `current_batch_size` right after a batch started).
    sampled: Vec<usize>,
}

impl Phase {
    fn throughput(&self) -> f64 {
        self.jobs as f64 / self.elapsed.as_secs_f64()
    }

    fn mean_batch(&self) -> f64 {
        self.completed as f64 / self.batches.max(1) as f64
    }

    fn print(&self) {
        println!(
            "   {} jobs in {:.1} ms = {:.0} jobs/s; every result checked",
            self.jobs,
            ms(self.elapsed),
            self.throughput()
        );
        println!(
            "   batches_run +{}, jobs_completed +{}: mean batch size {:.1}",
            self.batches,
            self.completed,
            self.mean_batch()
        );
        let mut sorted = self.sampled.clone();
        sorted.sort_unstable();
        if let (Some(min), Some(max)) = (sorted.first(), sorted.last()) {
            let first: Vec<_> = self.sampled.iter().take(12).collect();
            println!(
                "   sampled {} of {} batches: sizes min {min}, median {}, max {max}; first seen {first:?}",
                sorted.len(),
                self.batches,
                sorted[sorted.len() / 2]
            );
        }
    }
}

/// Runs `jobs_per_producer` jobs on each of [`PRODUCERS`] threads (started together), samples the
/// grinder's batches meanwhile, and checks every result afterwards.
fn run_phase(
    grinder: &WorkGrinder,
    workload: Workload,
    call: Call,
    jobs_per_producer: usize,
) -> Result<Phase, Box<dyn Error>> {
    let before = grinder.stats().counters;
    let done = AtomicBool::new(false);
    let barrier = Barrier::new(PRODUCERS + 1);
    let (sums, elapsed, sampled) = thread::scope(|s| {
        let sampler = s.spawn(|| sample_batch_sizes(grinder, &done));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    produce(grinder, p, jobs_per_producer, workload, call)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let sums: Vec<Result<u64, TaskError>> =
            producers.into_iter().map(|h| h.join().expect("a producer panicked")).collect();
        let elapsed = start.elapsed();
        done.store(true, Ordering::Relaxed);
        (sums, elapsed, sampler.join().expect("the sampler panicked"))
    });
    let after = grinder.stats().counters;

    // Check every result, outside the timed part.
    for (p, sum) in sums.into_iter().enumerate() {
        let expected = (0..jobs_per_producer).fold(0u64, |acc, i| acc.wrapping_add(job_value(workload, p, i)));
        let got = sum?;
        if got != expected {
            return Err(format!("producer {p}: results sum to {got:#x}, expected {expected:#x}").into());
        }
    }
    Ok(Phase {
        jobs: (PRODUCERS * jobs_per_producer) as u64,
        elapsed,
        batches: after.batches_run - before.batches_run,
        completed: after.jobs_completed - before.jobs_completed,
        sampled,
    })
}

/// One producer: runs its jobs through the grinder and returns the wrapping sum of the results.
/// Odd producers use the `_as` variants with an owner label (shown in the grinder's logs).
fn produce(grinder: &WorkGrinder, p: usize, jobs: usize, workload: Workload, call: Call) -> Result<u64, TaskError> {
    let owner: Option<Arc<str>> = (p % 2 == 1).then(|| format!("producer-{p}").into());
    let mut sum = 0u64;
    match call {
        Call::Submit => {
            for i in 0..jobs {
                let f = move || job(workload, p, i);
                let value = match &owner {
                    Some(owner) => grinder.submit_as(Arc::clone(owner), f)?,
                    None => grinder.submit(f)?,
                };
                sum = sum.wrapping_add(value);
            }
        }
        Call::Enqueue { window } => {
            let mut in_flight: VecDeque<TaskHandle<u64>> = VecDeque::with_capacity(window);
            for i in 0..jobs {
                if in_flight.len() == window {
                    let oldest = in_flight.pop_front().expect("the window is full");
                    sum = sum.wrapping_add(oldest.wait()?);
                }
                let f = move || job(workload, p, i);
                in_flight.push_back(match &owner {
                    Some(owner) => grinder.enqueue_as(Arc::clone(owner), f)?,
                    None => grinder.enqueue(f)?,
                });
            }
            for handle in in_flight {
                sum = sum.wrapping_add(handle.wait()?);
            }
        }
    }
    Ok(sum)
}

/// Polls `grinder.stats()` until `done`. When exactly one batch started since the last poll and
/// it is the only one running, `current_batch_size` is its size. Batches shorter than the poll
/// interval can be missed; the exact mean is `jobs_completed / batches_run`.
fn sample_batch_sizes(grinder: &WorkGrinder, done: &AtomicBool) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut last = grinder.stats().counters.batches_run;
    while !done.load(Ordering::Relaxed) {
        let stats = grinder.stats();
        let c = stats.counters;
        if c.batches_run == last + 1 && stats.running_batches == 1 && c.current_batch_size > 0 {
            sizes.push(c.current_batch_size);
        }
        last = c.batches_run;
        thread::sleep(Duration::from_micros(200));
    }
    sizes
}

/// Job `i` of producer `p`, as the grinder runs it.
fn job(workload: Workload, p: usize, i: usize) -> u64 {
    if let Workload::Blocking = workload {
        thread::sleep(IO_WAIT);
    }
    job_value(workload, p, i)
}

/// The result of job `i` of producer `p` (what [`job`] returns, without its sleep).
fn job_value(workload: Workload, p: usize, i: usize) -> u64 {
    match workload {
        Workload::Mixed if i % 2 == 0 => hash_rounds(&format!("producer-{p}/job-{i}"), 16),
        Workload::Mixed => collatz_steps((p * 1_000_000 + i * 8 + 1) as u64, 8),
        Workload::Cpu => collatz_steps((p * 1_000_000 + i * 32 + 1) as u64, 32),
        Workload::Blocking => hash_rounds(&format!("request-{p}-{i}"), 4),
    }
}

/// FNV-1a of `text`, then `rounds - 1` more rounds over the previous hash and the text.
fn hash_rounds(text: &str, rounds: u32) -> u64 {
    let mut h = fnv1a(0xcbf2_9ce4_8422_2325, text.as_bytes());
    for _ in 1..rounds {
        h = fnv1a(fnv1a(h, &h.to_le_bytes()), text.as_bytes());
    }
    h
}

/// 64-bit FNV-1a, continuing from `h`.
fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Total Collatz steps to reach 1 from each of `count` numbers starting at `start` (≥ 1).
fn collatz_steps(start: u64, count: u64) -> u64 {
    (start..start + count)
        .map(|mut n| {
            let mut steps = 0;
            while n != 1 {
                n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
                steps += 1;
            }
            steps
        })
        .sum()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
