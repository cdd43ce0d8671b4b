//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use crossbeam::channel::{bounded, Receiver, Sender};
use leasepool::{LeasedExecutor, LeasedExecutorManager, ManagerBuilder, TaskHandle};

/// A small thread manager: `max` pools of 2 workers, one-hour leases, no grace surprises.
pub fn builder(max: usize) -> ManagerBuilder {
    LeasedExecutorManager::builder()
        .max_pools(max)
        .workers_per_pool(2)
        .default_lease(Duration::from_secs(3600))
        .check_interval(Duration::from_secs(3600))
}

pub fn started(builder: ManagerBuilder) -> LeasedExecutorManager {
    let m = builder.build().expect("valid config");
    m.start().expect("start");
    m
}

/// Waits for a condition that only the manager's state can show (for example "a caller is
/// queued"). Bounded: panics with `what` after 10 s, so a broken build fails instead of hanging.
pub fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A gate a task can block on, plus a signal that it started.
pub struct Gate {
    open: Sender<()>,
    started: Receiver<()>,
}

pub struct GateWaiter {
    open: Receiver<()>,
    started: Sender<()>,
}

pub fn gate() -> (Gate, GateWaiter) {
    let (open_tx, open_rx) = bounded(64);
    let (started_tx, started_rx) = bounded(64);
    (Gate { open: open_tx, started: started_rx }, GateWaiter { open: open_rx, started: started_tx })
}

impl Gate {
    /// Blocks until one task behind this gate has started (bounded).
    pub fn wait_started(&self) {
        self.started.recv_timeout(Duration::from_secs(10)).expect("task did not start within 10 s");
    }
    /// Lets one blocked task continue.
    pub fn open_one(&self) {
        self.open.send(()).expect("gate receiver gone");
    }
}

impl GateWaiter {
    /// Called inside a task: report "started", then block until opened (bounded: 30 s).
    pub fn pass(&self) {
        let _ = self.started.send(());
        self.open.recv_timeout(Duration::from_secs(30)).expect("gate never opened");
    }
}

impl Clone for GateWaiter {
    fn clone(&self) -> Self {
        GateWaiter { open: self.open.clone(), started: self.started.clone() }
    }
}

/// The pool sequence number of the current worker thread (`{prefix}-{seq}_{i}`).
pub fn current_pool_seq() -> u64 {
    let name = std::thread::current().name().expect("pool threads are named").to_owned();
    let tail = name.rsplit('-').next().unwrap();
    tail.split('_').next().unwrap().parse().unwrap()
}

/// Occupies one worker of the lease's pool with a task blocked on a gate; returns once the task
/// is running. Open the gate to let it finish.
pub fn occupy(exec: &LeasedExecutor) -> (Gate, TaskHandle<()>) {
    let (gate, waiter) = gate();
    let running = exec.submit(move || waiter.pass()).expect("the lease accepts work");
    gate.wait_started();
    (gate, running)
}

/// Aborts the whole test process if the run is still going after `limit`: a hang becomes a
/// failure instead of a stuck CI job. Call [`Watchdog::finish`] when the run ends.
pub struct Watchdog {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Watchdog {
    pub fn start(what: &'static str, limit: Duration) -> Watchdog {
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&done);
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + limit;
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                if Instant::now() >= deadline {
                    eprintln!("{what} did not finish within {limit:?}");
                    std::process::abort();
                }
                std::thread::park_timeout(Duration::from_millis(200));
            }
        });
        Watchdog { done, thread }
    }

    pub fn finish(self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.thread().unpark();
        self.thread.join().unwrap();
    }
}

/// A `log` logger that keeps every record (level, target, message) for assertions. Install a
/// `static` one with `log::set_logger`.
pub struct Capture(pub std::sync::Mutex<Vec<(log::Level, String, String)>>);

impl Capture {
    pub const fn new() -> Capture {
        Capture(std::sync::Mutex::new(Vec::new()))
    }
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        self.0.lock().unwrap().push((r.level(), r.target().to_owned(), r.args().to_string()));
    }
    fn flush(&self) {}
}

/// One test of a `harness = false` test binary (the process backend re-executes the test binary
/// as its workers, so those binaries have their own `main`).
pub type Test = (&'static str, fn());

/// Runs `tests` one at a time, each under a watchdog, with libtest's CLI basics (`--list`, name
/// filters) and its closing line; exits with 101 when any test failed.
pub fn run_tests(tests: &[Test]) {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if std::env::args().any(|a| a == "--list") {
        tests.iter().for_each(|(name, _)| println!("{name}: test"));
        return;
    }
    let selected: Vec<&Test> =
        tests.iter().filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f))).collect();
    println!("\nrunning {} tests (process backend, one at a time)", selected.len());
    let mut failed = Vec::new();
    for (name, test) in &selected {
        let watchdog = Watchdog::start(name, Duration::from_secs(120));
        let began = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(test));
        watchdog.finish();
        match outcome {
            Ok(()) => println!("test {name} ... ok ({:.2?})", began.elapsed()),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    if failed.is_empty() {
        println!("\ntest result: ok. {} passed", selected.len());
    } else {
        println!("\nfailures:\n    {}\n\ntest result: FAILED. {} failed", failed.join("\n    "), failed.len());
        std::process::exit(101);
    }
}
