//! Benchmarks of the process backend, each measured with its baselines in the same criterion
//! group of the same run so that the ratios are meaningful:
//!
//! 1. `process/round_trip`: one `u64` squared in another process and brought back:
//!    - `leasepool`: `lease.run_task(&SQUARE, x)` on a held lease of a 1-worker process pool;
//!    - `raw_ipc_pingpong` (the floor): this same binary spawned as a child that squares the
//!      `u64`s it receives on an ipc-channel and sends them back on another;
//!    - `procspawn_pool`: `procspawn::Pool` of 1 process, `spawn(x, square)` then `join()`.
//! 2. `process/batch_1000`: 1000 `submit_task` handles on a 2-worker pool, then every one
//!    waited for, vs 1000 `spawn`s on a procspawn pool of 2, then every one joined.
//!
//! A real `cargo bench` run then prints an interleaved check of benchmark 1 on stderr (see
//! [`paired_round_trips`]): round trip times drift with where the scheduler puts the processes,
//! and interleaving pairs every leasepool block with baseline blocks run moments apart. It also
//! prints the same comparison for round trips that each follow a pause ([`spaced_round_trips`]),
//! when nobody is still awake from the previous one.
//!
//! 3. Pool start (printed on stderr, see [`pool_start`]): `manager.start()` of a process manager
//!    with one pool of 1 and of 4 workers, vs the same number of bare self-executions of this
//!    binary that each write one byte on a pipe and exit (the goal's baseline), and vs the
//!    ipc-channel floor (self-executions that each connect to a one-shot server and send one
//!    message), in interleaved repetitions. `cargo bench --bench process -- process/pool_start`
//!    runs only this one.
//!
//! The run begins and ends with a wake-up probe ([`wakeup_probe`]): the median round trip of a
//! condvar ping-pong between two threads. This VM flips between a fast (~5 µs) and a slow
//! (~50 µs) wake-up state over minutes, and every figure above depends on which one it is in.
//!
//! Workers of both leasepool and procspawn re-execute this binary, so it has its own `main`
//! instead of `criterion_main!`. Results and how to read them: `docs/PERFORMANCE.md`. Run with
//! `cargo bench --bench process`.

use std::hint::black_box;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use leasepool::{
    run_if_worker, AcquireOptions, ExecutorBackend, ExecutorLease, LeasedExecutorManager, Task, TaskRegistry,
};

/// Set (to the parent's one-shot server name) only in the raw ping-pong child.
const PINGPONG_CHILD_ENV: &str = "LEASEPOOL_BENCH_PINGPONG_SERVER";
/// Set only in the children of the pool-start baseline: write one byte on stdout and exit.
const EXEC_BYTE_CHILD_ENV: &str = "LEASEPOOL_BENCH_EXEC_BYTE";
/// Set (to the parent's one-shot server name) only in the children of the pool-start floor:
/// connect, send one message and exit.
const CONNECT_CHILD_ENV: &str = "LEASEPOOL_BENCH_CONNECT_SERVER";
/// Tasks per iteration of benchmark 2.
const BATCH: u64 = 1000;
/// Long enough that no lease ever reaches soft expiry during a run.
const LONG_LEASE: Duration = Duration::from_secs(3600);

/// The work every variant does in the other process.
fn square(n: u64) -> u64 {
    n.wrapping_mul(n)
}

static SQUARE: Task<u64, u64> = Task::new("square", square);

/// What the raw child hands its parent: where to send requests, where to read replies.
type Bootstrap = (IpcSender<u64>, IpcReceiver<u64>);

/// The raw ping-pong child: connect, hand over the two channel ends, then square every request
/// until the parent drops its request sender.
fn pingpong_child(server: String) -> ! {
    let (requests, request_rx) = ipc::channel::<u64>().expect("request channel");
    let (reply_tx, replies) = ipc::channel::<u64>().expect("reply channel");
    let bootstrap = IpcSender::<Bootstrap>::connect(server).expect("connect to the parent");
    bootstrap.send((requests, replies)).expect("send the channel ends");
    drop(bootstrap);
    while let Ok(n) = request_rx.recv() {
        if reply_tx.send(square(n)).is_err() {
            break;
        }
    }
    std::process::exit(0);
}

/// The parent's side of the raw ping-pong child.
struct PingPong {
    child: Child,
    requests: IpcSender<u64>,
    replies: IpcReceiver<u64>,
}

impl PingPong {
    fn spawn() -> Self {
        let (server, name) = IpcOneShotServer::<Bootstrap>::new().expect("one-shot server");
        let exe = std::env::current_exe().expect("current executable");
        let child = Command::new(exe).env(PINGPONG_CHILD_ENV, name).spawn().expect("spawn the ping-pong child");
        let (_bootstrap, (requests, replies)) = server.accept().expect("the child connects");
        PingPong { child, requests, replies }
    }

    fn round_trip(&self, n: u64) -> u64 {
        self.requests.send(n).expect("send a request");
        self.replies.recv().expect("receive the reply")
    }

    /// Drops the request sender (the child's `recv` then fails and it exits 0) and reaps it.
    fn shutdown(self) {
        let PingPong { mut child, requests, replies } = self;
        drop(requests);
        drop(replies);
        let status = child.wait().expect("wait for the ping-pong child");
        assert!(status.success(), "ping-pong child exited with {status}");
    }
}

/// A started process-backend manager with one pool of `workers` worker processes that stays in
/// the idle set between leases.
fn started_manager(workers: usize) -> LeasedExecutorManager {
    let manager = LeasedExecutorManager::builder()
        .backend(ExecutorBackend::Process)
        .max_pools(1)
        .min_pools(1)
        .workers_per_pool(workers)
        .default_lease(LONG_LEASE)
        .build()
        .expect("valid configuration");
    manager.start().expect("manager starts");
    manager
}

fn procspawn_pool(size: usize) -> procspawn::Pool {
    procspawn::Pool::new(size).expect("procspawn pool")
}

/// Benchmark 1: one squaring round trip to another process. With `paired`, also runs
/// [`paired_round_trips`] after the criterion group.
fn round_trip(c: &mut Criterion, paired: bool) {
    let manager = started_manager(1);
    let lease = manager.acquire(AcquireOptions::new()).expect("acquire");
    let pingpong = PingPong::spawn();
    let pool = procspawn_pool(1);
    let leasepool = || lease.run_task(&SQUARE, black_box(7)).expect("leasepool task");
    let raw = || pingpong.round_trip(black_box(7));
    let procspawn = || pool.spawn(black_box(7), square).join().expect("procspawn task");
    // Every variant must compute the same thing before it is timed.
    assert_eq!([leasepool(), raw(), procspawn()], [49; 3]);

    let mut group = c.benchmark_group("process/round_trip");
    // Long, because round trip times drift with where the scheduler puts the processes.
    group.measurement_time(Duration::from_secs(8)).throughput(Throughput::Elements(1));
    group.bench_function("leasepool", |b| b.iter(leasepool));
    group.bench_function("raw_ipc_pingpong", |b| b.iter(raw));
    group.bench_function("procspawn_pool", |b| b.iter(procspawn));
    group.finish();
    if paired {
        paired_round_trips([&leasepool, &raw, &procspawn]);
        spaced_round_trips([&leasepool, &raw]);
        let worker = lease.worker_pids()[0];
        sleeps_per_round_trip([(&leasepool, worker), (&raw, pingpong.child.id())]);
    }

    pool.shutdown();
    pingpong.shutdown();
    drop(lease);
    manager.stop();
}

/// Blocks of interleaved round trips of the first group's variants (leasepool, raw, procspawn),
/// so that each leasepool block is compared with raw and procspawn blocks run a few milliseconds
/// apart, under the same scheduler placement; prints per-call medians and the median and
/// 10th–90th percentile of the per-block ratios on stderr.
fn paired_round_trips(variants: [&dyn Fn() -> u64; 3]) {
    const BLOCKS: usize = 60;
    const PER_BLOCK: u32 = 300;
    let mut micros: [Vec<f64>; 3] = Default::default();
    for block in 0..BLOCKS {
        // Rotate the order so that no variant always runs first after another's block.
        for v in (0..3).map(|k| (block + k) % 3) {
            let start = Instant::now();
            for _ in 0..PER_BLOCK {
                black_box(variants[v]());
            }
            micros[v].push(start.elapsed().as_secs_f64() * 1e6 / f64::from(PER_BLOCK));
        }
    }
    let ratios = |other: usize| -> Vec<f64> { (0..BLOCKS).map(|b| micros[0][b] / micros[other][b]).collect() };
    let [lease, raw, procspawn] = micros.clone().map(|m| quantiles(m)[1]);
    let [raw_lo, raw_mid, raw_hi] = quantiles(ratios(1));
    let [ps_lo, ps_mid, ps_hi] = quantiles(ratios(2));
    eprintln!(
        "paired round trips ({BLOCKS} interleaved blocks of {PER_BLOCK}): median per call leasepool {lease:.1} µs, \
         raw {raw:.1} µs, procspawn {procspawn:.1} µs; leasepool/raw {raw_mid:.2}x (p10 {raw_lo:.2}, p90 {raw_hi:.2}), \
         leasepool/procspawn {ps_mid:.2}x (p10 {ps_lo:.2}, p90 {ps_hi:.2})"
    );
}

/// Like [`paired_round_trips`] for leasepool and raw, but every round trip follows a pause of
/// [`PAUSE`], long enough for every thread and process involved to have gone to sleep: what a
/// caller that makes a round trip now and then sees. Only the round trips are timed.
fn spaced_round_trips(variants: [&dyn Fn() -> u64; 2]) {
    const BLOCKS: usize = 40;
    const PER_BLOCK: usize = 25;
    const PAUSE: Duration = Duration::from_micros(500);
    let mut micros: [Vec<f64>; 2] = Default::default();
    for block in 0..BLOCKS {
        for v in (0..2).map(|k| (block + k) % 2) {
            let mut calls = Vec::with_capacity(PER_BLOCK);
            for _ in 0..PER_BLOCK {
                std::thread::sleep(PAUSE);
                let start = Instant::now();
                black_box(variants[v]());
                calls.push(start.elapsed().as_secs_f64() * 1e6);
            }
            micros[v].push(quantiles(calls)[1]);
        }
    }
    let [lo, mid, hi] = quantiles((0..BLOCKS).map(|b| micros[0][b] / micros[1][b]).collect());
    let [lease, raw] = micros.map(|m| quantiles(m)[1]);
    eprintln!(
        "spaced round trips ({BLOCKS} interleaved blocks of {PER_BLOCK}, each after a {PAUSE:?} pause): median \
         leasepool {lease:.1} µs, raw {raw:.1} µs; leasepool/raw {mid:.2}x (p10 {lo:.2}, p90 {hi:.2})"
    );
}

/// Voluntary context switches (a thread blocking: each one is a wake-up to pay) of every thread
/// of `pids`, from `/proc/<pid>/task/*/status`.
fn voluntary_switches(pids: &[u32]) -> u64 {
    let mut total = 0;
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
        for task in tasks.flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            let field = status.lines().find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"));
            total += field.and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

/// How often a back-to-back round trip puts a thread to sleep (and so pays a wake-up), counted
/// over all threads of this process and of the other process: what makes a round trip depend on
/// the VM's wake-up state.
fn sleeps_per_round_trip(variants: [(&dyn Fn() -> u64, u32); 2]) {
    const CALLS: u32 = 5000;
    let mut per_call = [0.0; 2];
    for (v, (call, other)) in variants.into_iter().enumerate() {
        call(); // warm: the threads involved are awake
        let pids = [std::process::id(), other];
        let before = voluntary_switches(&pids);
        for _ in 0..CALLS {
            black_box(call());
        }
        per_call[v] = (voluntary_switches(&pids) - before) as f64 / f64::from(CALLS);
    }
    eprintln!(
        "sleeps per back-to-back round trip ({CALLS} calls; voluntary context switches of both processes): \
         leasepool {:.2}, raw {:.2}",
        per_call[0], per_call[1]
    );
}

/// 10th percentile, median and 90th percentile.
fn quantiles(mut values: Vec<f64>) -> [f64; 3] {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    [at(0.1), at(0.5), at(0.9)]
}

/// [`BATCH`] `submit_task`s through a held lease, then every handle waited for; returns the sum.
fn lease_batch(lease: &ExecutorLease) -> u64 {
    let executor = lease.executor();
    let handles: Vec<_> = (0..BATCH).map(|i| executor.submit_task(&SQUARE, i).expect("submit")).collect();
    handles.into_iter().map(|h| h.wait().expect("leasepool task")).fold(0, u64::wrapping_add)
}

/// [`BATCH`] spawns on a procspawn pool, then every handle joined; returns the sum.
fn procspawn_batch(pool: &procspawn::Pool) -> u64 {
    let handles: Vec<_> = (0..BATCH).map(|i| pool.spawn(i, square)).collect();
    handles.into_iter().map(|h| h.join().expect("procspawn task")).fold(0, u64::wrapping_add)
}

/// Benchmark 2: throughput of a batch of [`BATCH`] tasks on 2 worker processes.
fn batch(c: &mut Criterion) {
    let manager = started_manager(2);
    let lease = manager.acquire(AcquireOptions::new()).expect("acquire");
    let pool = procspawn_pool(2);
    let expected = (0..BATCH).map(square).fold(0, u64::wrapping_add);
    assert_eq!(lease_batch(&lease), expected);
    assert_eq!(procspawn_batch(&pool), expected);

    let mut group = c.benchmark_group("process/batch_1000");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(BATCH));
    group.bench_function("leasepool_2_workers", |b| b.iter(|| lease_batch(&lease)));
    group.bench_function("procspawn_pool_2", |b| b.iter(|| procspawn_batch(&pool)));
    group.finish();

    pool.shutdown();
    drop(lease);
    manager.stop();
}

/// The median round trip of a condvar ping-pong between two threads of this process, in µs:
/// about 5 µs when the VM is in its fast wake-up state, about 50 µs in its slow one.
fn wakeup_probe() -> f64 {
    const ROUNDS: usize = 2000;
    // The turn: `true` when the helper is to answer.
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let helper = {
        let pair = Arc::clone(&pair);
        std::thread::spawn(move || {
            let (turn, cv) = &*pair;
            for _ in 0..ROUNDS {
                let mut t = cv.wait_while(turn.lock().unwrap(), |t| !*t).unwrap();
                *t = false;
                cv.notify_one();
            }
        })
    };
    let (turn, cv) = &*pair;
    let mut micros = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut t = turn.lock().unwrap();
        *t = true;
        cv.notify_one();
        drop(cv.wait_while(t, |t| *t).unwrap());
        micros.push(start.elapsed().as_secs_f64() * 1e6);
    }
    helper.join().unwrap();
    quantiles(micros)[1]
}

fn print_probe(when: &str) {
    let probe = wakeup_probe();
    let state = if probe < 20.0 { "fast" } else { "slow" };
    eprintln!("wake-up probe ({when}): condvar ping-pong median {probe:.1} µs ({state} state)");
}

/// The pool-start baseline's child: one byte on stdout, then exit.
fn exec_byte_child() -> ! {
    let _ = std::io::stdout().write_all(b"!");
    std::process::exit(0);
}

/// Spawns `n` bare self-executions of this binary and reads one byte from each; returns the time
/// that took. The children are reaped after the clock stops.
fn bare_execs(n: usize) -> Duration {
    let start = Instant::now();
    // Locating itself is part of a self-execution (a process pool does it at every start).
    let exe = std::env::current_exe().expect("current executable");
    let mut children: Vec<Child> = (0..n)
        .map(|_| {
            Command::new(&exe).env(EXEC_BYTE_CHILD_ENV, "1").stdout(Stdio::piped()).spawn().expect("spawn a bare child")
        })
        .collect();
    for child in &mut children {
        let mut byte = [0u8];
        child.stdout.as_mut().expect("piped stdout").read_exact(&mut byte).expect("one byte from the child");
    }
    let took = start.elapsed();
    for mut child in children {
        assert!(child.wait().expect("reap a bare child").success());
    }
    took
}

/// The pool-start floor's child: connect to the parent's one-shot server, say one thing, exit.
fn connect_child(server: String) -> ! {
    let tx = IpcSender::<u32>::connect(server).expect("connect to the parent");
    tx.send(std::process::id()).expect("say hello");
    std::process::exit(0);
}

/// The ipc-channel floor of a pool start: `n` self-executions that each connect to their own
/// one-shot server (named in the environment) and send one message, accepted one after another
/// on this thread (no token, no deadline, no setup). Returns the time until every message is in.
fn raw_ipc_bootstraps(n: usize) -> Duration {
    let start = Instant::now();
    let exe = std::env::current_exe().expect("current executable");
    let mut pending: Vec<_> = (0..n)
        .map(|_| {
            let (server, name) = IpcOneShotServer::<u32>::new().expect("one-shot server");
            let child = Command::new(&exe).env(CONNECT_CHILD_ENV, name).spawn().expect("spawn a connecting child");
            (server, child)
        })
        .collect();
    let mut children = Vec::with_capacity(n);
    for (server, child) in pending.drain(..) {
        let (_rx, pid) = server.accept().expect("the child connects");
        assert_eq!(pid, child.id());
        children.push(child);
    }
    let took = start.elapsed();
    for mut child in children {
        assert!(child.wait().expect("reap a connecting child").success());
    }
    took
}

/// Starts (and then stops, after the clock stopped) a process manager with one pool of `n`
/// workers; returns how long `start()` took.
fn manager_start(n: usize) -> Duration {
    let manager = LeasedExecutorManager::builder()
        .backend(ExecutorBackend::Process)
        .max_pools(1)
        .min_pools(1)
        .workers_per_pool(n)
        .default_lease(LONG_LEASE)
        .build()
        .expect("valid configuration");
    let start = Instant::now();
    manager.start().expect("manager starts");
    let took = start.elapsed();
    assert_eq!(manager.stats().pools[0].worker_pids.len(), n);
    manager.stop();
    took
}

/// Benchmark 3: pool start vs bare self-executions (and vs the ipc-channel floor,
/// [`raw_ipc_bootstraps`]), `reps` interleaved repetitions (the order rotates) for 1 and for 4
/// workers; prints per-start medians and the median (p10–p90) of the per-repetition ratios on
/// stderr.
fn pool_start(reps: usize) {
    let variants: [fn(usize) -> Duration; 3] = [manager_start, bare_execs, raw_ipc_bootstraps];
    for n in [1, 4] {
        // One warm-up of each, so that the binary is in the page cache and the spawner is up.
        for variant in &variants {
            variant(n);
        }
        let mut micros: [Vec<f64>; 3] = Default::default();
        for rep in 0..reps {
            for v in (0..3).map(|k| (rep + k) % 3) {
                micros[v].push(variants[v](n).as_secs_f64() * 1e6);
            }
        }
        let ratio = |a: usize, b: usize| quantiles((0..reps).map(|r| micros[a][r] / micros[b][r]).collect());
        let [start, bare, raw] = micros.clone().map(|m| quantiles(m)[1]);
        let [lo, mid, hi] = ratio(0, 1);
        let [raw_lo, raw_mid, raw_hi] = ratio(2, 1);
        let [over_lo, over_mid, over_hi] = ratio(0, 2);
        eprintln!(
            "pool start, {n} worker(s) ({reps} interleaved repetitions): median manager start {start:.0} µs, \
             {n} bare self-exec(s) {bare:.0} µs, {n} raw ipc-channel bootstrap(s) {raw:.0} µs; \
             start/bare {mid:.2}x (p10 {lo:.2}, p90 {hi:.2}), raw/bare {raw_mid:.2}x (p10 {raw_lo:.2}, p90 {raw_hi:.2}), \
             start/raw {over_mid:.2}x (p10 {over_lo:.2}, p90 {over_hi:.2})"
        );
    }
}

fn main() {
    // The pool-start baseline's children: as bare as a self-execution of this binary can be.
    if std::env::var_os(EXEC_BYTE_CHILD_ENV).is_some() {
        exec_byte_child();
    }
    if let Some(server) = std::env::var_os(CONNECT_CHILD_ENV) {
        connect_child(server.into_string().expect("a UTF-8 server name"));
    }
    // Leasepool workers are this binary re-executed: they serve tasks here and exit.
    run_if_worker(&TaskRegistry::new().register(&SQUARE));
    // procspawn's pool processes likewise: they run their calls inside `init` and exit.
    procspawn::init();
    if let Some(server) = std::env::var_os(PINGPONG_CHILD_ENV) {
        pingpong_child(server.into_string().expect("a UTF-8 server name"));
    }

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(50)
        .configure_from_args();
    // Only in a real `cargo bench` run: `cargo test --bench process` runs each benchmark once.
    let args: Vec<_> = std::env::args().collect();
    let paired = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test" || a == "--list");
    // A name filter (criterion's first positional argument) also skips the setup of the groups it
    // excludes; `process/pool_start` selects benchmark 3.
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-')).cloned();
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if paired {
        print_probe("start");
    }
    if wanted("process/round_trip") {
        round_trip(&mut criterion, paired);
    }
    if wanted("process/batch_1000") {
        batch(&mut criterion);
    }
    criterion.final_summary();
    if wanted("process/pool_start") {
        pool_start(if paired { 100 } else { 2 });
    }
    if paired {
        print_probe("end");
    }
}
