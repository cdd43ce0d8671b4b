//! Process backend: CPU-heavy work spread over the worker processes of two leased pools.
//!
//! Shows:
//! - `run_if_worker(&registry())` as the first line of `main`: every worker process is this
//!   program re-executed, and that call turns it into a worker that never returns;
//! - registered tasks (`Task` statics with serde inputs and outputs, one `TaskRegistry`), since
//!   closures cannot cross a process boundary;
//! - a process-backend manager of 2 pools × 2 worker processes, with a worker initializer and
//!   log forwarding: worker `log` records (the initializer's too) are re-emitted here on the
//!   target `workers` as `[worker <pid> <original target>] <message>`, through a ten-line stdout
//!   logger installed below (with forwarding on, worker panic reports arrive that way too);
//! - two threads, each holding a lease on its own pool, fanning prime-counting chunks out with
//!   `lease.executor().submit_task(..)`; every result says which worker pid computed it;
//! - the wall time of that run against the same chunks counted sequentially in this process, and
//!   the speed-up that gives on this machine's cores;
//! - a task that panics resolving as `TaskError::Panicked`, while its worker lives on (same pid
//!   before and after, and it serves the next task);
//! - `manager.stats()` (its `Display` lists the worker pids of each pool), then `manager.stop()`.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example process_cpu
//! ```

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use leasepool::{
    run_if_worker, AcquireOptions, ExecutorBackend, ExecutorLease, LeaseId, LeasedExecutorManager,
    ProcessLoggingConfig, Task, TaskError, TaskHandle, TaskRegistry,
};
use log::{LevelFilter, Log, Metadata, Record};
use serde::{Deserialize, Serialize};

/// Primes below this bound are counted (≈ 2.5 s of trial division on one core, in release mode).
const LIMIT: u64 = 15_000_000;
/// How many range chunks the work is split into; chunk `i` goes to lease `i % 2`.
const CHUNKS: u64 = 16;
/// Pools, and worker processes per pool.
const POOLS: usize = 2;
const WORKERS: usize = 2;

/// Errors that may cross the lease threads.
type BoxError = Box<dyn Error + Send + Sync>;

// ── Tasks: what the worker processes can run ─────────────────────────────────────────────────────

/// One chunk of the work: count the primes in `[lo, hi)`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Chunk {
    lo: u64,
    hi: u64,
}

/// A counted chunk, and who counted it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Counted {
    chunk: Chunk,
    primes: u64,
    /// The pid of the worker process that ran the task.
    pid: u32,
    /// Wall time the task took inside the worker (more than its CPU time when processes outnumber cores).
    busy: Duration,
}

fn count_chunk(chunk: Chunk) -> Counted {
    let started = Instant::now();
    let primes = count_primes(chunk.lo, chunk.hi);
    let busy = started.elapsed();
    log::info!("counted {primes} primes in [{}, {}) in {:.0} ms", chunk.lo, chunk.hi, ms(busy));
    Counted { chunk, primes, pid: std::process::id(), busy }
}
static COUNT_CHUNK: Task<Chunk, Counted> = Task::new("count_chunk", count_chunk);

/// The integer square root of a perfect square, and the pid that computed it. Panics on any other
/// number: the stand-in for a task with a bug.
fn exact_sqrt(n: u64) -> (u64, u32) {
    let root = n.isqrt();
    if root * root != n {
        panic!("{n} is not a perfect square (worker pid {})", std::process::id());
    }
    (root, std::process::id())
}
static EXACT_SQRT: Task<u64, (u64, u32)> = Task::new("exact_sqrt", exact_sqrt);

/// Runs once in every worker before it takes work. Its record is forwarded to the parent, like
/// everything the worker logs (panic reports included: with forwarding on, the worker routes
/// them through `log`).
fn init_worker(tag: String) -> Result<(), String> {
    log::info!("initializer ran ({tag})");
    Ok(())
}
static INIT_WORKER: Task<String, Result<(), String>> = Task::new("init_worker", init_worker);

/// The tasks the workers know: built by the parent and by every worker (they run the same code).
fn registry() -> TaskRegistry {
    TaskRegistry::new().register(&COUNT_CHUNK).register(&EXACT_SQRT).register(&INIT_WORKER)
}

// ── The parent ───────────────────────────────────────────────────────────────────────────────────

fn main() -> Result<(), BoxError> {
    run_if_worker(&registry()); // first: in a worker process this serves tasks and exits

    log::set_logger(&STDOUT_LOGGER)?;
    log::set_max_level(LevelFilter::Info);
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());

    let started = Instant::now();
    let manager = LeasedExecutorManager::builder()
        .backend(ExecutorBackend::Process)
        .max_pools(POOLS)
        .min_pools(POOLS)
        .workers_per_pool(WORKERS)
        .name_prefix("cpu")
        .worker_initializer(&INIT_WORKER, &format!("parent pid {}", std::process::id()))
        .process_logging(ProcessLoggingConfig::enabled(LevelFilter::Info).target("workers"))
        .build()?;
    manager.start()?;
    println!(
        "parent pid {}: started {POOLS} pools × {WORKERS} worker processes in {:.0?} ({cpus} CPU(s) here)\n",
        std::process::id(),
        started.elapsed()
    );

    // ── 1. Two leases, one per pool, each counting half of the chunks ───────────────────────────
    let chunks = split(LIMIT, CHUNKS);
    println!("1. counting primes below {LIMIT} in {CHUNKS} chunks on two leases (chunk i → lease i % 2)");
    let barrier = Barrier::new(POOLS + 1);
    let started = Instant::now();
    let runs = thread::scope(|s| {
        let threads: Vec<_> = (0..POOLS)
            .map(|k| {
                let mine: Vec<Chunk> = chunks.iter().copied().skip(k).step_by(POOLS).collect();
                let (manager, barrier) = (&manager, &barrier);
                s.spawn(move || count_on_lease(manager, format!("primes-{k}"), &mine, barrier))
            })
            .collect();
        // Both leases hold their pool and every chunk is queued: a snapshot of the manager.
        barrier.wait();
        println!("\nwith both leases busy:\n{}\n", manager.stats());
        threads.into_iter().map(|t| t.join().expect("a lease thread panicked")).collect::<Result<Vec<_>, _>>()
    })?;
    let parallel = started.elapsed();
    print_results(&runs);

    // ── 2. The same chunks, sequentially, in this process ───────────────────────────────────────
    let started = Instant::now();
    let sequential_total: u64 = chunks.iter().map(|c| count_primes(c.lo, c.hi)).sum();
    let sequential = started.elapsed();
    let parallel_total: u64 = runs.iter().flat_map(|r| &r.results).map(|c| c.primes).sum();
    if parallel_total != sequential_total {
        return Err(format!("workers counted {parallel_total} primes, this process {sequential_total}").into());
    }
    println!(
        "\n2. primes below {LIMIT}: {parallel_total} (workers) = {sequential_total} (sequential, in this process)"
    );
    println!(
        "   wall time: {parallel:.2?} on {} worker processes vs {sequential:.2?} sequential: speed-up ×{:.2} \
         on {cpus} CPU(s)",
        POOLS * WORKERS,
        sequential.as_secs_f64() / parallel.as_secs_f64()
    );
    println!(
        "   ({} processes share {cpus} core(s): the ceiling is ×{cpus}, minus IPC, uneven chunks and other load here)",
        POOLS * WORKERS
    );

    // ── 3. A panicking task: the worker lives on ────────────────────────────────────────────────
    println!("\n3. a task that panics");
    panic_demo(&manager)?;

    println!("\nfinal stats:\n{}", manager.stats());
    manager.stop();
    println!("\nstopped (running = {})", manager.is_running());
    Ok(())
}

/// What one lease thread did.
struct LeaseRun {
    owner: String,
    lease: LeaseId,
    pool_seq: u64,
    pids: Vec<u32>,
    results: Vec<Counted>,
}

/// Leases a pool, queues every chunk on it, meets the other threads at `barrier` (also on
/// failure, so nobody waits forever), then collects the results. The lease is released on return.
fn count_on_lease(
    manager: &LeasedExecutorManager,
    owner: String,
    chunks: &[Chunk],
    barrier: &Barrier,
) -> Result<LeaseRun, BoxError> {
    let submitted = lease_and_submit(manager, &owner, chunks);
    barrier.wait();
    let (lease, handles) = submitted?;
    let results = handles.into_iter().map(TaskHandle::wait).collect::<Result<Vec<_>, _>>()?;
    Ok(LeaseRun { owner, lease: lease.id(), pool_seq: lease.pool_seq(), pids: lease.worker_pids(), results })
}

/// Leases a pool for `owner` and queues one `count_chunk` task per chunk on it.
fn lease_and_submit(
    manager: &LeasedExecutorManager,
    owner: &str,
    chunks: &[Chunk],
) -> Result<(ExecutorLease, Vec<TaskHandle<Counted>>), BoxError> {
    let lease = manager.acquire(AcquireOptions::new().owner(owner).timeout(Duration::from_secs(5)))?;
    let handles =
        chunks.iter().map(|&chunk| lease.executor().submit_task(&COUNT_CHUNK, chunk)).collect::<Result<_, _>>()?;
    Ok((lease, handles))
}

/// Per-chunk results (by range), then how the work spread over the worker processes.
fn print_results(runs: &[LeaseRun]) {
    for run in runs {
        println!("   {} ({}) held pool #{}: worker pids {:?}", run.lease, run.owner, run.pool_seq, run.pids);
    }
    let mut rows: Vec<(&LeaseRun, &Counted)> =
        runs.iter().flat_map(|r| r.results.iter().map(move |c| (r, c))).collect();
    rows.sort_by_key(|(_, c)| c.chunk.lo);
    println!("\n   {:>21}  {:>6}  {:>6}  {:>5}  {:>9}", "chunk", "primes", "pid", "pool", "busy");
    let mut per_pid: BTreeMap<u32, (u64, usize, Duration)> = BTreeMap::new();
    for (run, c) in rows {
        println!(
            "   [{:>8}, {:>8})  {:>6}  {:>6}  {:>5}  {:>6.0} ms",
            c.chunk.lo,
            c.chunk.hi,
            c.primes,
            c.pid,
            run.pool_seq,
            ms(c.busy)
        );
        let entry = per_pid.entry(c.pid).or_insert((run.pool_seq, 0, Duration::ZERO));
        entry.1 += 1;
        entry.2 += c.busy;
    }
    println!();
    for (pid, (pool, n, busy)) in per_pid {
        println!("   worker pid {pid} (pool #{pool}): {n} chunks, {:.0} ms busy", ms(busy));
    }
}

/// Leases a pool, runs a task that panics on it, and shows the worker still there afterwards.
fn panic_demo(manager: &LeasedExecutorManager) -> Result<(), BoxError> {
    let lease = manager.acquire(AcquireOptions::new().owner("panic-demo").timeout(Duration::from_secs(5)))?;
    let before = lease.worker_pids();
    println!("   {} on pool #{}: worker pids {before:?}", lease.id(), lease.pool_seq());

    let panicked_pid = match lease.run_task(&EXACT_SQRT, 1_000_001) {
        Err(TaskError::Panicked { message }) => {
            println!("   exact_sqrt(1000001) → TaskError::Panicked {{ message: {message:?} }}");
            pid_in(&message)
        }
        Ok((root, pid)) => return Err(format!("exact_sqrt(1000001) returned {root} on pid {pid}").into()),
        Err(e) => return Err(e.into()),
    };
    // With every worker idle, the next task goes to the same (first) worker slot.
    let (root, pid) = lease.run_task(&EXACT_SQRT, 1_000_000)?;
    let after = lease.worker_pids();
    println!("   exact_sqrt(1000000) → {root}, computed by worker pid {pid}");
    println!(
        "   worker pids after: {after:?} ({}); the panicking worker {} the next task",
        if after == before { "unchanged: no process was replaced" } else { "CHANGED" },
        if panicked_pid == Some(pid) { "also ran" } else { "did not run" },
    );
    Ok(())
}

/// The pid at the end of a panic message of [`exact_sqrt`] (`... (worker pid 1234)`).
fn pid_in(message: &str) -> Option<u32> {
    message.rsplit(' ').next()?.trim_end_matches(')').parse().ok()
}

// ── Pure computation ─────────────────────────────────────────────────────────────────────────────

/// `[0, limit)` in `n` equal chunks (the last one takes the remainder).
fn split(limit: u64, n: u64) -> Vec<Chunk> {
    let step = limit / n;
    (0..n).map(|i| Chunk { lo: i * step, hi: if i + 1 == n { limit } else { (i + 1) * step } }).collect()
}

/// Counts the primes in `[lo, hi)` by trial division (deliberately CPU-bound).
fn count_primes(lo: u64, hi: u64) -> u64 {
    (lo..hi).filter(|&n| is_prime(n)).count() as u64
}

fn is_prime(n: u64) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n % 2 == 0 || n % 3 == 0 {
        return false;
    }
    let mut d = 5;
    while d * d <= n {
        if n % d == 0 || n % (d + 2) == 0 {
            return false;
        }
        d += 6;
    }
    true
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ── A minimal logger for the parent (no logging crate needed) ────────────────────────────────────

/// Prints every record at or below the max level to stdout as `LEVEL target: message`.
struct StdoutLogger;

static STDOUT_LOGGER: StdoutLogger = StdoutLogger;

impl Log for StdoutLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            println!("   {:<5} {}: {}", record.level(), record.target(), record.args());
        }
    }

    fn flush(&self) {}
}
