//! Issue 10: the async adapter on the process backend: `run_task_async` and awaited
//! `submit_task` handles under tokio current-thread, tokio multi-thread, smol and
//! `futures::executor::block_on`, and a worker crash (pool breakage) waking the awaited handles
//! of the crashed task and of the tasks queued behind it.
//!
//! Like `tests/process.rs`, this target has its own `main` (`harness = false`): the workers are
//! this binary re-executed, so `main` calls `leasepool::run_if_worker` first. It needs the
//! `async` feature (`required-features` in Cargo.toml, since a file without `main` cannot be a
//! harness-less target). Cross-process synchronisation is a TCP connection, not a sleep.

use std::future::{Future, IntoFuture};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

mod common;

use futures::poll;
use leasepool::{
    AcquireOptions, ExecutorBackend, LeaseError, LeasedExecutorManager, ProcessOptions, Task, TaskError, TaskRegistry,
    WorkerExit,
};

// ---------------------------------------------------------------------------------------------
// Tasks (run in the workers)

fn square(n: u64) -> u64 {
    n * n
}

/// Connects to the test on `port`, sends its pid, blocks until the test hangs up, then aborts
/// the worker process.
fn hold_then_abort(port: u16) -> u32 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the test");
    stream.write_all(&std::process::id().to_le_bytes()).expect("send pid");
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
    std::process::abort()
}

static SQUARE: Task<u64, u64> = Task::new("square", square);
static HOLD_THEN_ABORT: Task<u16, u32> = Task::new("hold_then_abort", hold_then_abort);

fn registry() -> TaskRegistry {
    TaskRegistry::new().register(&SQUARE).register(&HOLD_THEN_ABORT)
}

// ---------------------------------------------------------------------------------------------
// Helpers (run in the parent)

const LONG: Duration = Duration::from_secs(30);

fn process_manager(workers: usize) -> LeasedExecutorManager {
    let m = LeasedExecutorManager::builder()
        .backend(ExecutorBackend::Process)
        .max_pools(1)
        .workers_per_pool(workers)
        .default_lease(Duration::from_secs(3600))
        .check_interval(Duration::from_secs(3600))
        .process_options(ProcessOptions::default().terminate_grace(Duration::from_millis(500)))
        .build()
        .expect("valid config");
    m.start().expect("start");
    m
}

/// Runs `case` on each executor of the suite, one after another.
fn on_every_executor<F: Future<Output = ()> + Send + 'static>(case: impl Fn() -> F) {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(case());
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    multi.block_on(multi.spawn(case())).unwrap();
    smol::block_on(case());
    futures::executor::block_on(case());
}

/// Accepts one connection of a `hold_then_abort` task (bounded); returns it and the worker pid.
fn accept_holder(listener: &TcpListener) -> (TcpStream, u32) {
    let listener = listener.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(listener.accept().map(|(s, _)| s));
    });
    let mut stream = rx.recv_timeout(LONG).expect("the holding task did not start in time").expect("accept");
    let mut pid = [0u8; 4];
    stream.read_exact(&mut pid).unwrap();
    (stream, u32::from_le_bytes(pid))
}

// ---------------------------------------------------------------------------------------------
// Tests

/// `acquire_async` + `run_task_async` + awaited `submit_task` handles, on every executor.
fn process_tasks_are_awaited_on_every_executor() {
    let m = process_manager(2);
    on_every_executor(|| {
        let m = m.clone();
        async move {
            let lease = m.acquire_async(AcquireOptions::new().owner("async").timeout(LONG)).await.unwrap();
            assert_eq!(lease.backend(), ExecutorBackend::Process);
            assert_eq!(lease.run_task_async(&SQUARE, 7).await, Ok(49));
            let handles: Vec<_> = (0..8u64).map(|n| lease.executor().submit_task(&SQUARE, n).unwrap()).collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            assert_eq!(sum, (0..8u64).map(|n| n * n).sum::<u64>());
            let refused = lease.run_async(|| 1).await;
            assert!(matches!(refused, Err(TaskError::Rejected(LeaseError::WrongBackend { .. }))), "{refused:?}");
        }
    });
    assert_eq!(m.leased_count(), 0);
    m.stop();
}

/// A worker that crashes under its task wakes that task's awaited handle (`WorkerCrashed`) and
/// those of the tasks queued behind it on the broken pool (`PoolBroken`).
fn a_crash_wakes_the_awaited_handles() {
    let m = process_manager(1);
    futures::executor::block_on(async {
        let lease = m.acquire_async(AcquireOptions::new().timeout(LONG)).await.unwrap();
        let exec = lease.executor();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let mut crashing = exec.submit_task(&HOLD_THEN_ABORT, port).unwrap().into_future();
        let (held, worker) = accept_holder(&listener);
        // The only worker is busy: these wait in the pool's queue.
        let mut queued: Vec<_> = (0..3).map(|n| exec.submit_task(&SQUARE, n).unwrap().into_future()).collect();
        assert!(poll!(&mut crashing).is_pending());
        for q in &mut queued {
            assert!(poll!(q).is_pending());
        }
        let hang_up = thread::spawn(move || drop(held)); // the task returns from its read, then aborts
        assert_eq!(crashing.await, Err(TaskError::WorkerCrashed { pid: worker, status: WorkerExit::Signal(6) }));
        for q in queued {
            assert!(matches!(q.await, Err(TaskError::PoolBroken { .. })));
        }
        hang_up.join().unwrap();
        let refused = lease.run_task_async(&SQUARE, 1).await;
        assert!(matches!(refused, Err(TaskError::Rejected(LeaseError::PoolBroken { .. }))), "{refused:?}");
    });
    m.stop();
}

// ---------------------------------------------------------------------------------------------

use common::Test;

const TESTS: &[Test] = &[
    ("process_tasks_are_awaited_on_every_executor", process_tasks_are_awaited_on_every_executor),
    ("a_crash_wakes_the_awaited_handles", a_crash_wakes_the_awaited_handles),
];

fn main() {
    leasepool::run_if_worker(&registry());

    common::run_tests(TESTS);
}
