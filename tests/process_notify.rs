//! Completion notification on the process backend: a worker that crashes under its task, and
//! the tasks queued behind it on the broken pool, each fire their waker and callback once.
//!
//! Like `tests/process.rs`, this target has its own `main` (`harness = false`): the workers are
//! this binary re-executed, so `main` calls `leasepool::run_if_worker` first. Cross-process
//! synchronisation is a TCP connection, not a sleep: the `hold_then_abort` task connects to the
//! test, sends its pid ("I started"), blocks until the test hangs up, then aborts its worker.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Wake, Waker};
use std::time::Duration;

mod common;

use crossbeam::channel::{unbounded, Receiver, Sender};
use leasepool::{
    AcquireOptions, ExecutorBackend, LeaseError, LeasedExecutorManager, ProcessOptions, Task, TaskError, TaskHandle,
    TaskRegistry, WorkerExit,
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

/// A waker that counts its wake-ups and reports each one on a channel.
struct CountingWaker {
    wakes: AtomicUsize,
    events: Sender<&'static str>,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, SeqCst);
        let _ = self.events.send("waker");
    }
}

/// A waker and a callback registered on one handle, with their counts.
struct Probe {
    waker: Arc<CountingWaker>,
    calls: Arc<AtomicUsize>,
    events: Receiver<&'static str>,
}

fn probe<T: Send + 'static>(handle: &TaskHandle<T>) -> Probe {
    let (tx, events) = unbounded();
    let waker = Arc::new(CountingWaker { wakes: AtomicUsize::new(0), events: tx.clone() });
    assert!(!handle.register_waker(&Waker::from(Arc::clone(&waker))), "registered before the task resolved");
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    handle.on_complete(move || {
        c.fetch_add(1, SeqCst);
        let _ = tx.send("callback");
    });
    Probe { waker, calls, events }
}

impl Probe {
    /// Waits (bounded) until both the waker and the callback fired; each fired exactly once.
    fn fired_once(&self) {
        let mut seen: Vec<_> =
            (0..2).map(|_| self.events.recv_timeout(LONG).expect("no completion notification in time")).collect();
        seen.sort_unstable();
        assert_eq!(seen, ["callback", "waker"]);
        self.exactly_once();
    }

    fn exactly_once(&self) {
        assert_eq!((self.waker.wakes.load(SeqCst), self.calls.load(SeqCst)), (1, 1), "(wake-ups, callback runs)");
        assert!(self.events.try_recv().is_err(), "a notification fired twice");
    }
}

fn wait<T: Send + 'static>(h: TaskHandle<T>) -> Result<T, TaskError> {
    h.wait_timeout(LONG).unwrap_or_else(|_| panic!("task did not resolve within {LONG:?}"))
}

/// Accepts one connection of a `hold_then_abort` task (bounded); returns it and the worker pid.
fn accept_holder(listener: &TcpListener) -> (TcpStream, u32) {
    let listener = listener.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(listener.accept().map(|(s, _)| s));
    });
    let mut stream = rx.recv_timeout(LONG).expect("the holding task did not start in time").expect("accept");
    let mut pid = [0u8; 4];
    stream.read_exact(&mut pid).unwrap();
    (stream, u32::from_le_bytes(pid))
}

// ---------------------------------------------------------------------------------------------
// Tests

fn a_crashed_worker_and_the_tasks_queued_behind_it_notify_once() {
    let m = LeasedExecutorManager::builder()
        .backend(ExecutorBackend::Process)
        .max_pools(1)
        .workers_per_pool(1)
        .default_lease(Duration::from_secs(3600))
        .check_interval(Duration::from_secs(3600))
        .process_options(ProcessOptions::default().terminate_grace(Duration::from_millis(500)))
        .build()
        .expect("valid config");
    m.start().expect("start");
    let lease = m.acquire(AcquireOptions::new().timeout(LONG)).expect("acquire");
    let exec = lease.executor();

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let crashing = exec.submit_task(&HOLD_THEN_ABORT, port).unwrap();
    let (held, worker) = accept_holder(&listener);
    // The only worker is busy: these wait in the pool's queue.
    let queued: Vec<_> = (0..3).map(|n| exec.submit_task(&SQUARE, n).unwrap()).collect();
    let crash_probe = probe(&crashing);
    let queued_probes: Vec<_> = queued.iter().map(probe).collect();

    drop(held); // the task returns from its read, then aborts the worker
    crash_probe.fired_once();
    for p in &queued_probes {
        p.fired_once();
    }
    assert_eq!(wait(crashing), Err(TaskError::WorkerCrashed { pid: worker, status: WorkerExit::Signal(6) }));
    for q in queued {
        assert!(matches!(wait(q), Err(TaskError::PoolBroken { .. })));
    }
    assert!(matches!(exec.submit_task(&SQUARE, 1), Err(LeaseError::PoolBroken { .. })));
    crash_probe.exactly_once();
    queued_probes.iter().for_each(Probe::exactly_once);
    drop(lease);
    m.stop();
}

// ---------------------------------------------------------------------------------------------

use common::Test;

const TESTS: &[Test] = &[(
    "a_crashed_worker_and_the_tasks_queued_behind_it_notify_once",
    a_crashed_worker_and_the_tasks_queued_behind_it_notify_once,
)];

fn main() {
    leasepool::run_if_worker(&registry());

    common::run_tests(TESTS);
}
