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
//! Workers of both leasepool and procspawn re-execute this binary, so it has its own `main`
//! instead of `criterion_main!`. Results and how to read them: `docs/PERFORMANCE.md`. Run with
//! `cargo bench --bench process`.

use std::hint::black_box;
use std::process::{Child, Command};
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
use leasepool::{
    run_if_worker, AcquireOptions, ExecutorBackend, ExecutorLease, LeasedExecutorManager, Task, TaskRegistry,
};

/// Set (to the parent's one-shot server name) only in the raw ping-pong child.
const PINGPONG_CHILD_ENV: &str = "LEASEPOOL_BENCH_PINGPONG_SERVER";
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

/// Benchmark 1: one squaring round trip to another process.
fn round_trip(c: &mut Criterion) {
    let manager = started_manager(1);
    let lease = manager.acquire(AcquireOptions::new()).expect("acquire");
    let pingpong = PingPong::spawn();
    let pool = procspawn_pool(1);
    // Every variant must compute the same thing before it is timed.
    assert_eq!(lease.run_task(&SQUARE, 7).expect("leasepool task"), 49);
    assert_eq!(pingpong.round_trip(7), 49);
    assert_eq!(pool.spawn(7, square).join().expect("procspawn task"), 49);

    let mut group = c.benchmark_group("process/round_trip");
    // Long, because round trip times drift with where the scheduler puts the processes.
    group.measurement_time(Duration::from_secs(8)).throughput(Throughput::Elements(1));
    group.bench_function("leasepool", |b| b.iter(|| lease.run_task(&SQUARE, black_box(7)).expect("leasepool task")));
    group.bench_function("raw_ipc_pingpong", |b| b.iter(|| pingpong.round_trip(black_box(7))));
    group.bench_function("procspawn_pool", |b| {
        b.iter(|| pool.spawn(black_box(7), square).join().expect("procspawn task"))
    });
    group.finish();

    pool.shutdown();
    pingpong.shutdown();
    drop(lease);
    manager.stop();
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

fn main() {
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
    round_trip(&mut criterion);
    batch(&mut criterion);
    criterion.final_summary();
}
