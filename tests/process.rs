//! Issue 4: the process backend, end to end with real worker processes.
//!
//! The workers are this test binary re-executed, so this target runs without libtest
//! (`harness = false`): `main` first calls `leasepool::run_if_worker` (a worker never returns
//! from it), then runs the tests below one after another, each under a watchdog. Arguments that
//! do not start with `-` filter tests by name, as with libtest.
//!
//! Cross-process synchronisation uses TCP on localhost instead of sleeps: the `hold` task
//! connects to the test, sends its pid ("I started"), then blocks until the test closes the
//! connection (or the worker is killed).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::{wait_for, Capture};
use leasepool::{
    AcquireError, AcquireOptions, ExecutorBackend, LeaseError, LeaseState, LeasedExecutorManager, ManagerBuilder,
    ProcessLoggingConfig, ProcessOptions, StartError, StopMode, Task, TaskError, TaskRegistry, WorkGrinder, WorkerExit,
};
use log::{Level, LevelFilter};
use serde::{Serialize, Serializer};

// ---------------------------------------------------------------------------------------------
// Tasks (run in the workers)

fn square(n: u64) -> u64 {
    n * n
}

fn pid(_: ()) -> u32 {
    std::process::id()
}

fn panics(message: String) -> u32 {
    panic!("{message}")
}

/// Holds like [`hold`], then aborts the worker process.
fn hold_then_abort(port: u16) -> u32 {
    hold(port);
    std::process::abort()
}

/// Connects to the test on `port`, sends its pid, and blocks until the test hangs up.
fn hold(port: u16) -> u32 {
    let me = std::process::id();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the test");
    stream.write_all(&me.to_le_bytes()).expect("send pid");
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
    me
}

/// Never returns (until its worker is killed).
fn hang(_: ()) -> u32 {
    loop {
        std::thread::park();
    }
}

fn log_all(nonce: String) -> u32 {
    log::error!(target: "worker.example", "error {nonce}");
    log::warn!(target: "worker.example", "warn {nonce}");
    log::info!(target: "worker.example", "info {nonce}");
    log::debug!(target: "worker.example", "debug {nonce}");
    std::process::id()
}

/// Logs, then holds like [`hold`]: records emitted before a stop must still arrive.
fn log_then_hold((nonce, port): (String, u16)) -> u32 {
    log::warn!(target: "worker.example", "before stop {nonce}");
    hold(port)
}

fn env_and_cwd(var: String) -> (Option<String>, String) {
    (std::env::var(&var).ok(), std::env::current_dir().unwrap().display().to_string())
}

fn init_ok(tag: String) -> Result<(), String> {
    log::warn!(target: "worker.init", "initializer ran: {tag}");
    Ok(())
}

fn init_fail(reason: String) -> Result<(), String> {
    Err(reason)
}

fn init_fails_if_exists(path: String) -> Result<(), String> {
    if Path::new(&path).exists() {
        Err(format!("marker file present: {path}"))
    } else {
        Ok(())
    }
}

/// Records this worker's pid in `dir`, then makes the first worker to get there fail (the
/// others succeed).
fn init_first_fails(dir: String) -> Result<(), String> {
    let me = record_pid(&dir);
    match std::fs::OpenOptions::new().write(true).create_new(true).open(Path::new(&dir).join("chosen")) {
        Ok(mut chosen) => {
            chosen.write_all(me.to_string().as_bytes()).unwrap();
            Err(format!("worker {me} was chosen to fail"))
        }
        Err(_) => Ok(()),
    }
}

/// Like [`init_first_fails`], but the chosen worker hangs instead (until it is killed).
fn init_first_hangs(dir: String) -> Result<(), String> {
    let me = record_pid(&dir);
    match std::fs::OpenOptions::new().write(true).create_new(true).open(Path::new(&dir).join("chosen")) {
        Ok(mut chosen) => {
            chosen.write_all(me.to_string().as_bytes()).unwrap();
            drop(chosen);
            loop {
                std::thread::park();
            }
        }
        Err(_) => Ok(()),
    }
}

fn record_pid(dir: &str) -> u32 {
    let me = std::process::id();
    std::fs::write(Path::new(dir).join(format!("pid-{me}")), "").unwrap();
    me
}

/// Blocks the worker's setup like [`hold`] (a barrier the test opens).
fn init_hold(port: u16) -> Result<(), String> {
    hold(port);
    Ok(())
}

/// A value whose serialization always fails.
#[derive(Debug, serde::Deserialize)]
struct Unserializable;

impl Serialize for Unserializable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value refuses to be serialized"))
    }
}

fn unserializable(_: ()) -> Unserializable {
    Unserializable
}

static SQUARE: Task<u64, u64> = Task::new("square", square);
static PID: Task<(), u32> = Task::new("pid", pid);
static PANICS: Task<String, u32> = Task::new("panics", panics);
static HOLD_THEN_ABORT: Task<u16, u32> = Task::new("hold_then_abort", hold_then_abort);
static HOLD: Task<u16, u32> = Task::new("hold", hold);
static HANG: Task<(), u32> = Task::new("hang", hang);
static LOG_ALL: Task<String, u32> = Task::new("log_all", log_all);
static LOG_THEN_HOLD: Task<(String, u16), u32> = Task::new("log_then_hold", log_then_hold);
static ENV_AND_CWD: Task<String, (Option<String>, String)> = Task::new("env_and_cwd", env_and_cwd);
static INIT_OK: Task<String, Result<(), String>> = Task::new("init_ok", init_ok);
static INIT_FAIL: Task<String, Result<(), String>> = Task::new("init_fail", init_fail);
static INIT_FAILS_IF_EXISTS: Task<String, Result<(), String>> = Task::new("init_fails_if_exists", init_fails_if_exists);
static UNSERIALIZABLE: Task<(), Unserializable> = Task::new("unserializable", unserializable);
static INIT_FIRST_FAILS: Task<String, Result<(), String>> = Task::new("init_first_fails", init_first_fails);
static INIT_FIRST_HANGS: Task<String, Result<(), String>> = Task::new("init_first_hangs", init_first_hangs);
static INIT_HOLD: Task<u16, Result<(), String>> = Task::new("init_hold", init_hold);
/// The parent's handle on `unserializable` (its output type only has to deserialize here).
/// Its input cannot be serialized (never reaches a worker).
static TAKES_UNSERIALIZABLE: Task<Unserializable, u64> = Task::new("takes_unserializable", |_| 0);
/// Not registered in the workers.
static GHOST: Task<u64, u64> = Task::new("ghost", square);
/// Registered as `square` (u64 -> u64) in the workers: the parent's idea of the types is wrong.
static SQUARE_AS_STRING_OUT: Task<u64, String> = Task::new("square", |n| n.to_string());
static SQUARE_WITH_STRING_IN: Task<String, u64> = Task::new("square", |s| s.len() as u64);

#[derive(serde::Serialize, serde::Deserialize)]
struct Fields {
    a: u32,
    b: u64,
}

/// The same fields in another order (postcard would read one as the other).
#[derive(serde::Serialize, serde::Deserialize)]
struct Reordered {
    b: u64,
    a: u32,
}

static MULTIPLY: Task<(i64, i64), i64> = Task::new("multiply", |(a, b)| a * b);
static MULTIPLY_AS_U64: Task<(u64, u64), u64> = Task::new("multiply", |(a, b)| a * b);
static MULTIPLY_AS_PAIR_OF_U32: Task<u64, (u32, u32)> = Task::new("multiply", |_| (0, 0));
static SUM_FIELDS: Task<Fields, u64> = Task::new("sum_fields", |f| u64::from(f.a) + f.b);
static SUM_FIELDS_REORDERED: Task<Reordered, u64> = Task::new("sum_fields", |f| u64::from(f.a) + f.b);

fn registry() -> TaskRegistry {
    TaskRegistry::new()
        .register(&MULTIPLY)
        .register(&SUM_FIELDS)
        .register(&SQUARE)
        .register(&PID)
        .register(&PANICS)
        .register(&HOLD_THEN_ABORT)
        .register(&HOLD)
        .register(&HANG)
        .register(&LOG_ALL)
        .register(&LOG_THEN_HOLD)
        .register(&ENV_AND_CWD)
        .register(&INIT_OK)
        .register(&INIT_FAIL)
        .register(&INIT_FAILS_IF_EXISTS)
        .register(&UNSERIALIZABLE)
        .register(&INIT_FIRST_FAILS)
        .register(&INIT_FIRST_HANGS)
        .register(&INIT_HOLD)
}

// ---------------------------------------------------------------------------------------------
// Helpers (run in the parent)

/// A process manager: `max` pools of `workers` workers, long leases, a quick terminate grace.
fn builder(max: usize, workers: usize) -> ManagerBuilder {
    LeasedExecutorManager::builder()
        .backend(ExecutorBackend::Process)
        .max_pools(max)
        .workers_per_pool(workers)
        .default_lease(Duration::from_secs(3600))
        .check_interval(Duration::from_secs(3600))
        .process_options(ProcessOptions::default().terminate_grace(Duration::from_millis(500)))
}

fn started(builder: ManagerBuilder) -> LeasedExecutorManager {
    let m = builder.build().expect("valid config");
    m.start().expect("start");
    m
}

const LONG: Duration = Duration::from_secs(30);

fn acquire(m: &LeasedExecutorManager) -> leasepool::ExecutorLease {
    m.acquire(AcquireOptions::new().timeout(LONG)).expect("acquire")
}

fn wait<T: Send + 'static>(h: leasepool::TaskHandle<T>) -> Result<T, TaskError> {
    h.wait_timeout(LONG).unwrap_or_else(|_| panic!("task did not resolve within {LONG:?}"))
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Running (not a zombie, not gone), per `/proc/<pid>/stat`.
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

/// The state letter of a process (`R`, `S`, `T` for stopped, `Z`...), per `/proc/<pid>/stat`.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Stops a process with `SIGSTOP` (it stays alive, hung) and waits until the OS shows it stopped.
fn sigstop(pid: u32) {
    use nix::sys::signal::{kill, Signal};
    kill(nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGSTOP).expect("SIGSTOP");
    wait_for("the worker to stop", || process_state(pid) == Some('T'));
}

fn kill9(pid: u32) {
    let status = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status().expect("run kill");
    assert!(status.success(), "kill -9 {pid} failed");
}

/// The test's end of `hold` tasks.
struct Holders {
    listener: TcpListener,
    held: Vec<TcpStream>,
}

impl Holders {
    fn new() -> Holders {
        Holders { listener: TcpListener::bind("127.0.0.1:0").expect("bind"), held: Vec::new() }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    /// Waits (bounded) until one `hold` task has started; returns its worker's pid.
    fn started(&mut self) -> u32 {
        let listener = self.listener.try_clone().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(listener.accept().map(|(s, _)| s));
        });
        let mut stream = rx.recv_timeout(LONG).expect("a hold task did not start in time").expect("accept");
        let mut pid = [0u8; 4];
        stream.read_exact(&mut pid).unwrap();
        self.held.push(stream);
        u32::from_le_bytes(pid)
    }

    /// Lets every started `hold` task return.
    fn release_all(&mut self) {
        self.held.clear();
    }
}

static LOGS: Capture = Capture::new();

/// Captured records on `target` whose message contains `fragment`.
fn logged(target: &str, fragment: &str) -> Vec<(Level, String)> {
    let logs = LOGS.0.lock().unwrap();
    logs.iter().filter(|(_, t, m)| t == target && m.contains(fragment)).map(|(l, _, m)| (*l, m.clone())).collect()
}

/// Threads of this process whose name starts with `prefix` (names are cut to 15 bytes).
fn threads_named(prefix: &str) -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.starts_with(prefix))
        .count()
}

/// A fresh empty directory for one test's marker files.
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("leasepool-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Processes (zombies included) whose parent is this process, from `/proc/<pid>/stat`.
fn children_of_this_process() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut children: Vec<u32> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.to_owned();
            (ppid == me).then_some(pid)
        })
        .collect();
    children.sort_unstable();
    children
}

/// The pids recorded by `record_pid` in `dir`.
fn recorded_pids(dir: &Path) -> Vec<u32> {
    let entries = std::fs::read_dir(dir).unwrap();
    entries.filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("pid-")?.parse().ok()).collect()
}

fn nonce() -> String {
    format!("{:?}", Instant::now())
}

// ---------------------------------------------------------------------------------------------
// Tests

fn typed_round_trips_on_several_workers_with_pids_in_stats() {
    let m = started(builder(2, 2));
    let lease = acquire(&m);
    assert_eq!(lease.backend(), ExecutorBackend::Process);
    assert_eq!(lease.run_task(&SQUARE, 12).unwrap(), 144);
    let handles: Vec<_> = (0..50u64).map(|i| lease.executor().submit_task(&SQUARE, i).unwrap()).collect();
    let squares: Vec<u64> = handles.into_iter().map(|h| wait(h).unwrap()).collect();
    assert_eq!(squares, (0..50u64).map(|i| i * i).collect::<Vec<_>>());

    let pids = lease.worker_pids();
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|&p| p != std::process::id() && process_exists(p)));
    let stats = m.stats();
    let leased = stats.pools.iter().find(|p| p.lease_id == Some(lease.id())).expect("the leased pool is listed");
    assert_eq!(leased.worker_pids, pids);
    assert!(stats.to_string().contains("worker pids"), "{stats}");
    // Both workers take work: two holds run at once, on different pids.
    let mut holders = Holders::new();
    let a = lease.executor().submit_task(&HOLD, holders.port()).unwrap();
    let b = lease.executor().submit_task(&HOLD, holders.port()).unwrap();
    let (pa, pb) = (holders.started(), holders.started());
    assert_ne!(pa, pb);
    holders.release_all();
    let mut got = [wait(a).unwrap(), wait(b).unwrap()];
    got.sort_unstable();
    let mut want = [pa, pb];
    want.sort_unstable();
    assert_eq!(got, want);
    m.stop();
}

fn closures_and_tasks_on_the_wrong_backend_are_typed_errors() {
    let m = started(builder(1, 1));
    let lease = acquire(&m);
    let err = lease.executor().submit(|| 1).unwrap_err();
    assert!(matches!(err, LeaseError::WrongBackend { backend: ExecutorBackend::Process, .. }), "{err:?}");
    assert!(matches!(lease.run(|| 1), Err(TaskError::Rejected(LeaseError::WrongBackend { .. }))));
    assert_eq!(m.stats().tasks.submitted, 0, "a refused submission is not counted");
    m.stop();

    let threads = LeasedExecutorManager::builder().max_pools(1).build().unwrap();
    threads.start().unwrap();
    let lease = threads.acquire(AcquireOptions::new()).unwrap();
    let err = lease.executor().submit_task(&SQUARE, 2).unwrap_err();
    assert!(matches!(err, LeaseError::WrongBackend { backend: ExecutorBackend::Thread, .. }), "{err:?}");
    assert!(err.to_string().contains("registered tasks the process backend"), "{err}");
    threads.stop();
}

fn unknown_tasks_and_serde_failures_fail_only_that_task() {
    let m = started(builder(1, 1));
    let lease = acquire(&m);
    let worker = lease.run_task(&PID, ()).unwrap();
    assert_eq!(lease.run_task(&GHOST, 3), Err(TaskError::UnknownTask { name: "ghost".into() }));
    // A parent that declares other types than the worker's task is told so, whatever the bytes.
    let bad_out = lease.run_task(&SQUARE_AS_STRING_OUT, 300).unwrap_err();
    assert_eq!(bad_out, TaskError::TypeMismatch { task: "square".into() });
    let bad_in = lease.run_task(&SQUARE_WITH_STRING_IN, "x".repeat(300)).unwrap_err();
    assert_eq!(bad_in, TaskError::TypeMismatch { task: "square".into() });
    let unser = lease.run_task(&UNSERIALIZABLE, ()).unwrap_err();
    assert!(matches!(&unser, TaskError::InvalidOutput { task, .. } if task == "unserializable"), "{unser:?}");
    // Input that cannot be serialized never leaves the parent; only that task fails.
    let handle = lease.executor().submit_task(&TAKES_UNSERIALIZABLE, Unserializable).unwrap();
    assert!(matches!(wait(handle), Err(TaskError::InvalidInput { task, .. }) if task == "takes_unserializable"));
    // The pool and its worker are unharmed.
    assert_eq!(lease.run_task(&SQUARE, 9).unwrap(), 81);
    assert_eq!(lease.run_task(&PID, ()).unwrap(), worker);
    assert_eq!(lease.state(), LeaseState::Active);
    assert_eq!(m.stats().counters.pools_retired_broken, 0);
    m.stop();
}

/// Issue 9, item 15: same-size, different-meaning types were decoded into wrong values (a
/// `(u64, u64) -> u64` "multiply" against workers' `(i64, i64) -> i64` returned `Ok(23)`). Each
/// pair below decodes "successfully" with postcard; the type fingerprint makes it an error.
fn a_type_disagreement_is_a_typed_error_never_a_wrong_value() {
    let m = started(builder(1, 1));
    let lease = acquire(&m);
    let mismatch = |task: &str| TaskError::TypeMismatch { task: task.into() };
    assert_eq!(lease.run_task(&MULTIPLY_AS_U64, (3, 7)), Err(mismatch("multiply")));
    assert_eq!(lease.run_task(&MULTIPLY_AS_PAIR_OF_U32, 21), Err(mismatch("multiply")));
    let reordered = Reordered { b: 2, a: 1 };
    assert_eq!(lease.run_task(&SUM_FIELDS_REORDERED, reordered), Err(mismatch("sum_fields")));
    // The same declarations as the worker's still work, and the worker is unharmed.
    assert_eq!(lease.run_task(&MULTIPLY, (-3, 7)), Ok(-21));
    assert_eq!(lease.run_task(&SUM_FIELDS, Fields { a: 1, b: 2 }), Ok(3));
    assert_eq!(m.stats().counters.pools_retired_broken, 0);
    m.stop();
}

fn a_panicking_task_resolves_as_panic_and_the_worker_lives_on() {
    let m = started(builder(1, 1));
    let lease = acquire(&m);
    let before = lease.run_task(&PID, ()).unwrap();
    let err = lease.run_task(&PANICS, "kaboom 42".into()).unwrap_err();
    assert_eq!(err, TaskError::Panicked { message: "kaboom 42".into() });
    assert_eq!(lease.run_task(&PID, ()).unwrap(), before, "same worker process after the panic");
    assert_eq!(m.stats().tasks.panicked, 1);
    m.stop();
}

fn an_aborting_task_crashes_its_worker_breaks_the_pool_and_is_replaced() {
    let m = started(builder(1, 1));
    let lease = acquire(&m);
    let seq = lease.pool_seq();
    let mut holders = Holders::new();
    let crashing = lease.executor().submit_task(&HOLD_THEN_ABORT, holders.port()).unwrap();
    let worker = holders.started();
    let queued: Vec<_> = (0..3).map(|i| lease.executor().submit_task(&SQUARE, i).unwrap()).collect();
    holders.release_all(); // now it aborts, with three tasks queued behind it
    assert_eq!(wait(crashing), Err(TaskError::WorkerCrashed { pid: worker, status: WorkerExit::Signal(6) }));
    for q in queued {
        assert!(matches!(wait(q), Err(TaskError::PoolBroken { reason }) if reason.contains("SIGABRT")));
    }
    assert_eq!(lease.state(), LeaseState::Broken);
    let refused = lease.executor().submit_task(&SQUARE, 1).unwrap_err();
    assert!(matches!(&refused, LeaseError::PoolBroken { reason, .. } if reason.contains(&worker.to_string())));
    assert!(!process_exists(worker), "the crashed worker was reaped");
    let c = m.stats().counters;
    assert_eq!(c.pools_retired_broken, 1);
    // Capacity comes back with a fresh pool.
    drop(lease);
    let fresh = acquire(&m);
    assert_ne!(fresh.pool_seq(), seq);
    assert_eq!(fresh.run_task(&SQUARE, 5).unwrap(), 25);
    m.stop();
}

fn a_busy_worker_killed_from_outside_fails_its_task_with_the_signal() {
    let m = started(builder(1, 1));
    let lease = acquire(&m);
    let mut holders = Holders::new();
    let held = lease.executor().submit_task(&HOLD, holders.port()).unwrap();
    let worker = holders.started();
    let queued = lease.executor().submit_task(&SQUARE, 2).unwrap();
    kill9(worker);
    assert_eq!(wait(held), Err(TaskError::WorkerCrashed { pid: worker, status: WorkerExit::Signal(9) }));
    assert!(matches!(wait(queued), Err(TaskError::PoolBroken { .. })));
    assert!(matches!(lease.executor().submit_task(&SQUARE, 1), Err(LeaseError::PoolBroken { .. })));
    m.stop();
}

fn an_idle_pool_whose_worker_died_is_never_handed_out() {
    let m = started(builder(1, 2).min_pools(1));
    let idle = m.stats().pools[0].clone();
    assert_eq!((idle.lease_id, idle.worker_pids.len()), (None, 2));
    let victim = idle.worker_pids[1];
    kill9(victim);
    // `kill` returns once the signal is queued; the pool can only be judged once the process has
    // actually died, which only the OS can show (a zombie, or reaped and gone).
    wait_for("the killed worker to die", || !process_alive(victim));
    // Whether the pool's reader noticed already or the hand-out check does, the lease is on a
    // healthy pool.
    let lease = acquire(&m);
    assert_ne!(lease.pool_seq(), idle.seq, "the broken idle pool was not handed out");
    assert!(!lease.worker_pids().contains(&victim));
    assert_eq!(lease.run_task(&SQUARE, 4).unwrap(), 16);
    assert_eq!(m.stats().counters.pools_retired_broken, 1);
    m.stop();
    assert!(!process_exists(idle.worker_pids[0]), "the broken pool's surviving worker was stopped too");
}

/// Issue 9, item 18: an idle worker that hangs without dying (here `SIGSTOP`) passed the
/// hand-out check, so the pool was leased and its tasks sat there until hard expiry. The
/// hand-out ping catches it: the pool is retired as broken, the hung worker killed, and the
/// caller gets a fresh pool.
fn a_hung_idle_worker_is_caught_at_hand_out_killed_and_replaced() {
    let m = started(builder(1, 2).min_pools(1));
    let lease = acquire(&m);
    let (seq, pids) = (lease.pool_seq(), lease.worker_pids());
    assert_eq!(lease.run_task(&SQUARE, 3).unwrap(), 9);
    drop(lease); // idle again (min_pools keeps it)
    let victim = pids[1];
    sigstop(victim);
    let began = Instant::now();
    let lease = acquire(&m);
    // The default ping_timeout (1 s) plus building a pool: generous for a loaded machine.
    let took = began.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_ne!(lease.pool_seq(), seq, "the pool with a hung worker was handed out");
    assert!(!lease.worker_pids().contains(&victim));
    assert_eq!(lease.run_task(&SQUARE, 4).unwrap(), 16);
    let found = logged("leasepool", "did not answer a ping");
    let expected = format!("worker {victim} did not answer a ping within 1s");
    assert!(found.iter().any(|(level, msg)| *level == Level::Warn && msg.contains(&expected)), "{found:?}");
    let c = m.stats().counters;
    assert_eq!((c.pools_retired_broken, c.pools_retired_shrink), (1, 0));
    // Killed (SIGKILL ends a stopped process too) and reaped: no leftover, not even a zombie.
    wait_for("the hung worker to be killed and reaped", || !process_exists(victim));
    m.stop();
    assert!(!process_exists(pids[0]), "the broken pool's other worker was stopped too");
}

/// Issue 9, item 18: a process task can carry its own timeout. Past it, exactly that task's
/// worker is killed and replaced; the pool, its queued tasks and its other worker carry on.
fn a_task_past_its_timeout_is_timed_out_and_only_its_worker_replaced() {
    let m = started(builder(1, 2));
    let lease = acquire(&m);
    let pids = lease.worker_pids();
    // A task that finishes before its timeout is unaffected.
    assert_eq!(lease.run_task_timeout(&SQUARE, 5, LONG), Ok(25));
    let mut holders = Holders::new();
    let held = lease.executor().submit_task(&HOLD, holders.port()).unwrap();
    let holder = holders.started(); // one worker is busy (no timeout)...
    let began = Instant::now();
    let hung = lease.executor().submit_task_timeout(&HANG, (), Duration::from_millis(300)).unwrap();
    let queued = lease.executor().submit_task(&PID, ()).unwrap(); // ...and this waits behind both
    let outcome = hung.wait_timeout(LONG).unwrap_or_else(|_| panic!("the timed task did not resolve within {LONG:?}"));
    let took = began.elapsed();
    assert_eq!(outcome, Err(TaskError::TimedOut { task: "hang".into(), timeout: Duration::from_millis(300) }));
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(10), "took {took:?}");
    let victim = *pids.iter().find(|&&p| p != holder).unwrap();
    assert!(!process_exists(victim), "the timed-out worker was killed and reaped before its task resolved");
    // The queued task runs on the fresh worker (the other one is still holding).
    let fresh = wait(queued).unwrap();
    assert!(!pids.contains(&fresh), "{fresh} is one of {pids:?}");
    holders.release_all();
    assert_eq!(wait(held), Ok(holder), "the other worker's task was unaffected");
    let mut now = lease.worker_pids();
    now.sort_unstable();
    let mut want = vec![holder, fresh];
    want.sort_unstable();
    assert_eq!(now, want);
    assert_eq!(lease.state(), LeaseState::Active);
    assert_eq!(lease.run_task(&SQUARE, 6), Ok(36));
    let stats = m.stats();
    let (c, t) = (stats.counters, stats.tasks);
    assert_eq!((c.pools_created, c.pools_retired_broken), (1, 0), "{stats}");
    assert_eq!((t.submitted, t.completed, t.timed_out, t.pool_broken), (5, 4, 1, 0), "{stats}");
    assert!(stats.to_string().contains("1 timed out"), "{stats}");
    m.stop();
}

/// A deadline that passes after its task finished touches nothing, not even the next task on
/// the same worker.
fn a_finished_tasks_deadline_does_not_touch_the_next_task() {
    let m = started(builder(1, 1));
    let lease = acquire(&m);
    let worker = lease.worker_pids()[0];
    // Done long before its deadline (generous: a loaded machine answers within a second).
    assert_eq!(lease.run_task_timeout(&PID, (), Duration::from_secs(1)), Ok(worker));
    let began = Instant::now();
    let hung = lease.executor().submit_task_timeout(&HANG, (), Duration::from_millis(1500)).unwrap();
    // The first task's deadline passes while this one runs on the same worker: it must not end
    // it early.
    let outcome = hung.wait_timeout(LONG).unwrap_or_else(|_| panic!("the timed task did not resolve within {LONG:?}"));
    assert!(matches!(outcome, Err(TaskError::TimedOut { .. })), "{outcome:?}");
    assert!(began.elapsed() >= Duration::from_millis(1500), "ended early, after {:?}", began.elapsed());
    assert_eq!(m.stats().tasks.timed_out, 1);
    m.stop();
}

fn hard_expiry_terminates_the_worker_and_capacity_is_replaced() {
    // Time is the subject here: a 300 ms lease with 200 ms grace. The bounds below are generous
    // (30 s) so a loaded machine cannot make it flaky; the order of events is what is checked.
    let m = started(builder(1, 1).lease_grace(Duration::from_millis(200)));
    let lease = m.acquire(AcquireOptions::new().lease_duration(Duration::from_millis(300))).unwrap();
    let seq = lease.pool_seq();
    let mut holders = Holders::new();
    let held = lease.executor().submit_task(&HOLD, holders.port()).unwrap();
    let worker = holders.started();
    let queued = lease.executor().submit_task(&SQUARE, 3).unwrap();
    // The task never returns by itself (the test keeps the connection open): only revocation
    // can end it, by terminating the worker.
    assert_eq!(wait(held), Err(TaskError::Revoked { pid: worker }));
    assert_eq!(wait(queued), Err(TaskError::Cancelled));
    assert!(!process_exists(worker), "the revoked worker is gone");
    assert_eq!(lease.state(), LeaseState::Revoked);
    assert!(matches!(lease.executor().submit_task(&SQUARE, 1), Err(LeaseError::Expired { .. })));
    let fresh = acquire(&m);
    assert_ne!(fresh.pool_seq(), seq);
    assert_eq!(fresh.run_task(&SQUARE, 6).unwrap(), 36);
    let c = m.stats().counters;
    assert_eq!((c.leases_revoked, c.pools_retired_expired), (1, 1));
    m.stop();
}

fn a_failing_initializer_breaks_the_pool_with_its_reason() {
    let m = builder(1, 2).worker_initializer(&INIT_FAIL, &"database unreachable".to_string()).build().unwrap();
    let err = m.start().unwrap_err();
    let StartError::PoolCreation { reason } = &err else { panic!("{err:?}") };
    assert!(reason.contains("database unreachable") && reason.contains("init_fail"), "{reason}");
    assert!(!m.is_running());
    assert!(m.stats().counters.pools_retired_broken >= 1);

    // On demand, the same failure is the acquire's error: the initializer starts failing once
    // a marker file exists, after the first pool was built.
    let marker = std::env::temp_dir().join(format!("leasepool-init-marker-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let m = builder(2, 1)
        .min_pools(1)
        .worker_initializer(&INIT_FAILS_IF_EXISTS, &marker.display().to_string())
        .build()
        .unwrap();
    m.start().unwrap();
    let _first = acquire(&m);
    std::fs::write(&marker, "").unwrap();
    let err = m.acquire(AcquireOptions::new().timeout(LONG)).unwrap_err();
    std::fs::remove_file(&marker).unwrap();
    assert!(matches!(&err, AcquireError::PoolBroken { reason } if reason.contains("marker file present")), "{err:?}");
    m.stop();
    let panicky = builder(1, 1).worker_initializer(&PANICS_INIT, &String::new()).build().unwrap();
    let err = panicky.start().unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
}

fn init_panics(_: String) -> Result<(), String> {
    panic!("initializer exploded")
}
static PANICS_INIT: Task<String, Result<(), String>> = Task::new("init_panics", init_panics);

fn workers_are_recycled_after_max_tasks() {
    let m = started(builder(1, 1).max_tasks_per_worker(2));
    let lease = acquire(&m);
    let pids: Vec<u32> = (0..6).map(|_| lease.run_task(&PID, ()).unwrap()).collect();
    assert_eq!(pids[0], pids[1]);
    assert_eq!(pids[2], pids[3]);
    assert_eq!(pids[4], pids[5]);
    assert!(pids[0] != pids[2] && pids[2] != pids[4] && pids[0] != pids[4], "{pids:?}");
    assert!(!process_exists(pids[0]) && !process_exists(pids[2]), "recycled workers are reaped");
    assert_eq!(lease.state(), LeaseState::Active);
    m.stop();
}

fn a_pool_replacing_a_recycled_worker_is_not_mistaken_for_broken() {
    // Each lease runs one task, which recycles the only worker; the next acquire comes once the
    // old worker is reaped, while its replacement is (most likely) still starting. The pool is
    // healthy: it must be handed out again.
    let m = started(builder(1, 1).max_tasks_per_worker(1));
    let mut seqs = Vec::new();
    for _ in 0..5 {
        let lease = acquire(&m);
        seqs.push(lease.pool_seq());
        let old = lease.run_task(&PID, ()).unwrap();
        drop(lease);
        wait_for("the recycled worker to be reaped", || !process_exists(old));
    }
    assert!(seqs.iter().all(|&s| s == seqs[0]), "{seqs:?}");
    assert_eq!(m.stats().counters.pools_retired_broken, 0);
    m.stop();
}

fn workers_get_the_configured_environment_and_directory() {
    let dir = std::env::temp_dir().canonicalize().unwrap();
    let m = started(builder(1, 1).worker_env("LEASEPOOL_TEST_VAR", "from the parent").worker_cwd(&dir));
    let lease = acquire(&m);
    let (var, cwd) = lease.run_task(&ENV_AND_CWD, "LEASEPOOL_TEST_VAR".into()).unwrap();
    assert_eq!(var.as_deref(), Some("from the parent"));
    assert_eq!(Path::new(&cwd), dir);
    m.stop();
}

fn worker_logs_are_forwarded_filtered_and_delivered_before_stop_returns() {
    let target = "forwarded";
    let m = started(
        builder(1, 1)
            .worker_initializer(&INIT_OK, &"tag-7".to_string())
            .process_logging(ProcessLoggingConfig::enabled(LevelFilter::Warn).target(target)),
    );
    let lease = acquire(&m);
    let n = nonce();
    let worker = lease.run_task(&LOG_ALL, n.clone()).unwrap();
    // Records travel on the same channel as the result, before it: they are already here.
    let got = logged(target, &n);
    let levels: Vec<Level> = got.iter().map(|(l, _)| *l).collect();
    assert_eq!(levels, vec![Level::Error, Level::Warn], "only Warn and above pass: {got:?}");
    assert!(got[0].1.starts_with(&format!("[worker {worker} worker.example] error")), "{got:?}");
    assert_eq!(logged(target, "initializer ran: tag-7").len(), 1, "the initializer's record is forwarded");
    // With forwarding on, a task's panic report is a forwarded error record too.
    let n = nonce();
    assert!(matches!(lease.run_task(&PANICS, n.clone()), Err(TaskError::Panicked { .. })));
    let report = logged(target, &n);
    assert!(report.len() == 1 && report[0].0 == Level::Error && report[0].1.contains("task panicked"), "{report:?}");

    // A record emitted just before a stop is delivered before stop returns.
    let mut holders = Holders::new();
    let n = nonce();
    let held = lease.executor().submit_task(&LOG_THEN_HOLD, (n.clone(), holders.port())).unwrap();
    holders.started();
    m.stop();
    assert_eq!(logged(target, &format!("before stop {n}")).len(), 1);
    assert!(matches!(wait(held), Err(TaskError::Revoked { .. })));

    // Without forwarding nothing arrives.
    let quiet = started(builder(1, 1));
    let n = nonce();
    acquire(&quiet).run_task(&LOG_ALL, n.clone()).unwrap();
    quiet.stop();
    assert!(LOGS.0.lock().unwrap().iter().all(|(_, _, m)| !m.contains(&n)));
}

fn a_bootstrap_too_large_for_a_pipe_still_reaches_every_worker() {
    // An initializer argument larger than a pipe is sure to take at once (4 KiB) is written by
    // the worker's reader thread rather than by the caller.
    let target = "large-bootstrap";
    let tag = format!("{}-{}", nonce(), "x".repeat(100_000));
    let m = started(
        builder(1, 2)
            .worker_initializer(&INIT_OK, &tag)
            .process_logging(ProcessLoggingConfig::enabled(LevelFilter::Warn).target(target)),
    );
    assert_eq!(logged(target, &tag).len(), 2, "both workers ran the initializer with the whole argument");
    assert_eq!(acquire(&m).run_task(&SQUARE, 3).unwrap(), 9);
    m.stop();
    // The same bootstrap to a program that never reads its stdin still times out cleanly.
    let deaf = builder(1, 2)
        .process_options(ProcessOptions::default().program("sleep", ["30"]).start_timeout(Duration::from_millis(300)))
        .worker_initializer(&INIT_OK, &tag);
    let err = deaf.build().unwrap().start().unwrap_err();
    assert!(err.to_string().contains("did not connect within"), "{err}");
}

fn process_logging_configuration_is_validated() {
    let thread = LeasedExecutorManager::builder().max_pools(1).forward_process_logs(true).build();
    assert!(matches!(thread, Err(leasepool::ConfigError::ProcessOnly { .. })), "{thread:?}");
    let both = builder(1, 1)
        .process_logging(ProcessLoggingConfig::enabled(LevelFilter::Info))
        .process_log_level(LevelFilter::Debug)
        .build();
    assert!(matches!(both, Err(leasepool::ConfigError::Conflicting(_))), "{both:?}");
    for (name, level) in [("WARN", LevelFilter::Warn), ("Warning", LevelFilter::Warn), ("debug", LevelFilter::Debug)] {
        assert_eq!(ProcessLoggingConfig::parse_level(name).unwrap(), level);
    }
    assert!(matches!(ProcessLoggingConfig::parse_level("loud"), Err(leasepool::ConfigError::InvalidLogLevel { .. })));
    let zero = builder(1, 1).max_tasks_per_worker(0).build();
    assert!(matches!(zero, Err(leasepool::ConfigError::MustBePositive { field: "max_tasks_per_worker" })));
    // The convenience form alone is fine.
    builder(1, 1).forward_process_logs(true).process_log_level(LevelFilter::Debug).build().unwrap();
}

fn bootstrap_never_blocks_forever() {
    let sleepy = builder(1, 1)
        .process_options(ProcessOptions::default().program("sleep", ["30"]).start_timeout(Duration::from_millis(300)));
    let began = Instant::now();
    let err = sleepy.build().unwrap().start().unwrap_err();
    assert!(err.to_string().contains("did not connect within"), "{err}");
    assert!(began.elapsed() < Duration::from_secs(20), "three attempts of 300 ms each, not 30 s");

    let quitter = builder(1, 1).process_options(ProcessOptions::default().program("true", Vec::<String>::new()));
    let err = quitter.build().unwrap().start().unwrap_err();
    assert!(err.to_string().contains("before connecting"), "{err}");
    assert!(err.to_string().contains("run_if_worker"), "the error says how to fix it: {err}");

    // A worker that speaks another protocol version refuses the bootstrap (simulated by
    // overriding the marker the parent sets).
    let stale = builder(1, 1).worker_env("LEASEPOOL_WORKER", "999");
    let err = stale.build().unwrap().start().unwrap_err();
    assert!(err.to_string().contains("protocol version"), "{err}");

    let missing = builder(1, 1).process_options(ProcessOptions::default().program("/nonexistent/worker", ["x"]));
    let err = missing.build().unwrap().start().unwrap_err();
    assert!(err.to_string().contains("cannot spawn"), "{err}");
}

/// Issue 9, items 10 to 12: bootstrap failures say what happened, name what is missing, and a
/// program that is not a worker is detected once (its `main` runs once per worker, not again on
/// every retry).
fn bootstrap_failures_say_what_happened_and_are_not_retried_when_hopeless() {
    let dir = scratch_dir("hopeless");
    let runs = dir.join("runs");
    // 11. A program without run_if_worker: it runs its own `main` (here: records the run, exits).
    let script = format!("echo run >> '{}'", runs.display());
    let normal = builder(1, 2).process_options(ProcessOptions::default().program("sh", ["-c", script.as_str()]));
    let err = normal.build().unwrap().start().unwrap_err().to_string();
    assert!(err.contains("ran as a normal program") && err.contains("run_if_worker"), "{err}");
    let lines = std::fs::read_to_string(&runs).unwrap().lines().count();
    assert_eq!(lines, 2, "main ran once per worker of one attempt, not again on retries");
    // ... and one that works long before serving fails after one start_timeout, not three.
    let slow = builder(1, 1)
        .process_options(ProcessOptions::default().program("sleep", ["30"]).start_timeout(Duration::from_millis(400)));
    let began = Instant::now();
    let err = slow.build().unwrap().start().unwrap_err().to_string();
    assert!(err.contains("did not connect") && err.contains("run_if_worker"), "{err}");
    // Generous for a loaded machine; three attempts took 1.2 s plus the spawns.
    assert!(began.elapsed() < Duration::from_millis(1100), "took {:?}", began.elapsed());
    // 10. Killed before connecting: said so, without the run_if_worker hint.
    let killed = builder(1, 1).process_options(ProcessOptions::default().program("sh", ["-c", "kill -9 $$"]));
    let err = killed.build().unwrap().start().unwrap_err().to_string();
    assert!(err.contains("killed by signal 9") && !err.contains("run_if_worker"), "{err}");
    // 12. A missing program and a missing directory are named.
    let missing = builder(1, 1).process_options(ProcessOptions::default().program("/nonexistent/worker", ["x"]));
    let err = missing.build().unwrap().start().unwrap_err().to_string();
    assert!(err.contains("worker program /nonexistent/worker was not found"), "{err}");
    let no_dir = builder(1, 1).worker_cwd("/nonexistent/dir");
    let err = no_dir.build().unwrap().start().unwrap_err().to_string();
    assert!(err.contains("worker directory /nonexistent/dir does not exist"), "{err}");
}

fn the_workers_of_a_pool_start_concurrently() {
    // Every worker's initializer waits at a barrier that the test opens only once all four are
    // in it: a pool that started its workers one after another would never get there.
    let mut holders = Holders::new();
    let m = builder(1, 4).worker_initializer(&INIT_HOLD, &holders.port()).build().unwrap();
    let starting = {
        let m = m.clone();
        std::thread::spawn(move || m.start())
    };
    let mut in_setup: Vec<u32> = (0..4).map(|_| holders.started()).collect();
    holders.release_all();
    starting.join().unwrap().expect("the pool starts once its workers are through the barrier");
    let mut pids = m.stats().pools[0].worker_pids.clone();
    in_setup.sort_unstable();
    pids.sort_unstable();
    assert_eq!(in_setup, pids, "the four workers that met at the barrier are the pool's");
    m.stop();
}

fn one_failing_worker_fails_the_whole_start_and_leaves_nothing_behind() {
    let dir = scratch_dir("first-fails");
    let m = builder(1, 4)
        .name_prefix("lpf")
        .worker_initializer(&INIT_FIRST_FAILS, &dir.display().to_string())
        .build()
        .unwrap();
    // The first attempt fails (one of its four workers was chosen); the second succeeds.
    m.start().expect("the second attempt starts");
    assert_eq!(m.stats().counters.pools_retired_broken, 1);
    let chosen: u32 = std::fs::read_to_string(dir.join("chosen")).unwrap().parse().unwrap();
    let failure = logged("leasepool", "was chosen to fail");
    assert!(failure.iter().any(|(_, msg)| msg.contains(&format!("worker {chosen} was chosen"))), "{failure:?}");
    // The failed attempt's workers (some were killed before they got to their initializer) are
    // all gone and reaped: this process's only children are the live pool's workers.
    let mut live = m.stats().pools[0].worker_pids.clone();
    live.sort_unstable();
    assert!(!live.contains(&chosen) && recorded_pids(&dir).contains(&chosen));
    assert_eq!(children_of_this_process(), live, "no worker of the failed attempt is left, not even a zombie");
    // Its four reader threads end; the live pool's four are there.
    wait_for("the failed attempt's threads to end", || threads_named("lpf-1_") == 0);
    assert_eq!(threads_named("lpf-2_"), 4);
    m.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

fn one_hanging_worker_times_the_whole_start_out_and_leaves_nothing_behind() {
    let dir = scratch_dir("first-hangs");
    let m = builder(1, 4)
        .name_prefix("lph")
        .process_options(
            ProcessOptions::default()
                .terminate_grace(Duration::from_millis(500))
                .start_timeout(Duration::from_millis(1000)),
        )
        .worker_initializer(&INIT_FIRST_HANGS, &dir.display().to_string())
        .build()
        .unwrap();
    let began = Instant::now();
    m.start().expect("the second attempt starts");
    assert!(began.elapsed() < Duration::from_secs(20), "one timed-out attempt, not several");
    assert_eq!(m.stats().counters.pools_retired_broken, 1);
    let chosen: u32 = std::fs::read_to_string(dir.join("chosen")).unwrap().parse().unwrap();
    let timeout = logged("leasepool", "was not ready within");
    assert!(timeout.iter().any(|(_, msg)| msg.contains(&format!("worker {chosen} was not ready"))), "{timeout:?}");
    let mut live = m.stats().pools[0].worker_pids.clone();
    live.sort_unstable();
    assert!(!live.contains(&chosen) && recorded_pids(&dir).contains(&chosen));
    assert!(!process_exists(chosen), "the hanging worker was killed and reaped");
    assert_eq!(children_of_this_process(), live, "no worker of the timed-out attempt is left, not even a zombie");
    wait_for("the timed-out attempt's threads to end", || threads_named("lph-1_") == 0);
    assert_eq!(threads_named("lph-2_"), 4);
    m.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

fn stop_leaves_no_worker_process_behind() {
    let m = started(builder(2, 2).min_pools(2).max_tasks_per_worker(3));
    let busy = acquire(&m);
    let mut holders = Holders::new();
    let held = busy.executor().submit_task(&HOLD, holders.port()).unwrap();
    holders.started();
    let recycled = acquire(&m);
    // 8 tasks on workers replaced after 3 tasks each: at least 3 distinct worker processes.
    let mut seen: Vec<u32> = (0..8).map(|_| recycled.run_task(&PID, ()).unwrap()).collect();
    seen.sort_unstable();
    seen.dedup();
    assert!(seen.len() >= 3, "{seen:?}");
    seen.extend(busy.worker_pids());
    drop(recycled); // idle again (a replacement may still be starting: stop must handle that too)
    seen.extend(m.stats().pools.iter().flat_map(|p| p.worker_pids.clone()));
    seen.sort_unstable();
    seen.dedup();
    m.stop();
    let left: Vec<u32> = seen.iter().copied().filter(|&p| process_exists(p)).collect();
    assert!(left.is_empty(), "worker processes (or zombies) left after stop: {left:?}");
    assert!(matches!(wait(held), Err(TaskError::Revoked { .. })));
    assert!(m.stats().pools.is_empty());
    // Restartable.
    m.start().unwrap();
    assert_eq!(acquire(&m).run_task(&SQUARE, 11).unwrap(), 121);
    m.stop();
}

fn the_grinder_runs_registered_tasks_on_a_process_manager() {
    let m = started(builder(2, 2));
    let grinder =
        WorkGrinder::builder(m.clone()).batch_size_threshold(40).max_wait(Duration::from_millis(20)).build().unwrap();
    grinder.start().unwrap();
    let handles: Vec<_> = (0..200u64).map(|i| grinder.enqueue_task(&SQUARE, i).unwrap()).collect();
    let closure = grinder.enqueue(|| 1).unwrap();
    let ghost = grinder.enqueue_task(&GHOST, 1).unwrap();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(wait(h).unwrap(), (i * i) as u64);
    }
    assert!(matches!(wait(closure), Err(TaskError::Rejected(LeaseError::WrongBackend { .. }))));
    assert_eq!(wait(ghost), Err(TaskError::UnknownTask { name: "ghost".into() }));
    assert_eq!(grinder.submit_task(&SQUARE, 7).unwrap(), 49);
    grinder.stop(StopMode::Drain { deadline: Some(LONG) });
    let stats = grinder.stats();
    assert_eq!(stats.counters.jobs_completed, 201, "{stats}");
    m.stop();

    // On a thread manager, a registered task cannot run.
    let threads = LeasedExecutorManager::builder().max_pools(1).build().unwrap();
    threads.start().unwrap();
    let grinder = WorkGrinder::builder(threads.clone()).max_wait(Duration::from_millis(10)).build().unwrap();
    grinder.start().unwrap();
    let err = grinder.submit_task(&SQUARE, 2).unwrap_err();
    assert_eq!(err, TaskError::WrongBackend { task: "square".into() });
    grinder.stop(StopMode::Cancel);
    threads.stop();
}

/// A grinder's process job can carry its own timeout too; the grinder carries on.
fn the_grinder_enforces_a_process_jobs_timeout() {
    let m = started(builder(1, 2));
    let grinder = WorkGrinder::builder(m.clone()).max_wait(Duration::from_millis(10)).build().unwrap();
    grinder.start().unwrap();
    let timeout = Duration::from_millis(300);
    let hung = grinder.enqueue_task_timeout(&HANG, (), timeout).unwrap();
    let quick = grinder.enqueue_task_timeout(&SQUARE, 9, LONG).unwrap();
    assert_eq!(wait(quick), Ok(81));
    assert_eq!(wait(hung), Err(TaskError::TimedOut { task: "hang".into(), timeout }));
    assert_eq!(grinder.submit_task(&SQUARE, 7).unwrap(), 49);
    grinder.stop(StopMode::Drain { deadline: Some(LONG) });
    let c = grinder.stats().counters;
    assert_eq!((c.jobs_completed, c.jobs_failed), (2, 1));
    // (The manager counts a grinder job as a lease slot used, whatever its outcome.)
    assert_eq!(m.stats().counters.pools_retired_broken, 0);
    m.stop();
}

fn concurrent_leases_submits_and_cancels_all_resolve_and_add_up() {
    let m = started(builder(2, 2));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let m = m.clone();
            std::thread::spawn(move || {
                let lease = acquire(&m);
                let handles: Vec<_> =
                    (0..60u64).map(|i| (i, lease.executor().submit_task(&SQUARE, t * 1000 + i).unwrap())).collect();
                let mut cancelled = 0;
                for (i, h) in handles {
                    let did_cancel = i % 4 == 3 && h.cancel();
                    match wait(h) {
                        Ok(v) => assert!(!did_cancel && v == (t * 1000 + i).pow(2)),
                        Err(TaskError::Cancelled) => {
                            assert!(did_cancel);
                            cancelled += 1;
                        }
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
                cancelled
            })
        })
        .collect();
    let cancelled: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let tasks = m.stats().tasks;
    assert_eq!((tasks.submitted, tasks.completed + tasks.cancelled), (240, 240));
    assert_eq!(tasks.cancelled, cancelled);
    assert_eq!(m.leased_count(), 0, "every lease was released after its tasks");
    m.stop();
}

/// The environment variable that makes this binary play a parent that gets killed.
const ORPHAN_PARENT_ENV: &str = "LEASEPOOL_TEST_ORPHAN_PARENT";

/// In the child that plays the parent: start a manager, print its worker pids, then wait to be
/// killed (reading stdin, which the test never writes to).
fn play_a_parent_that_gets_killed() {
    let m = started(builder(1, 2));
    let pids = m.stats().pools[0].worker_pids.clone();
    println!("{}", pids.iter().map(u32::to_string).collect::<Vec<_>>().join(" "));
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

fn workers_die_with_their_parent() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut parent = Command::new(std::env::current_exe().unwrap())
        .env(ORPHAN_PARENT_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(parent.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let workers: Vec<u32> = line.split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert_eq!(workers.len(), 2, "{line:?}");
    assert!(workers.iter().all(|&w| process_alive(w)));
    kill9(parent.id()); // no stop, no cleanup: only the kernel and the workers themselves act
    parent.wait().unwrap();
    for w in workers {
        wait_for("an orphaned worker to die", || !process_alive(w));
    }
}

fn acquire_errors_are_unchanged_for_processes() {
    let m = started(builder(1, 1));
    let _held = acquire(&m);
    let err = m.try_acquire(AcquireOptions::new()).unwrap_err();
    assert_eq!(err, AcquireError::Unavailable { max_pools: 1 });
    m.stop();
}

// ---------------------------------------------------------------------------------------------
// The harness

use common::Test;

const TESTS: &[Test] = &[
    (
        "typed_round_trips_on_several_workers_with_pids_in_stats",
        typed_round_trips_on_several_workers_with_pids_in_stats,
    ),
    (
        "closures_and_tasks_on_the_wrong_backend_are_typed_errors",
        closures_and_tasks_on_the_wrong_backend_are_typed_errors,
    ),
    ("unknown_tasks_and_serde_failures_fail_only_that_task", unknown_tasks_and_serde_failures_fail_only_that_task),
    (
        "a_type_disagreement_is_a_typed_error_never_a_wrong_value",
        a_type_disagreement_is_a_typed_error_never_a_wrong_value,
    ),
    (
        "a_panicking_task_resolves_as_panic_and_the_worker_lives_on",
        a_panicking_task_resolves_as_panic_and_the_worker_lives_on,
    ),
    (
        "an_aborting_task_crashes_its_worker_breaks_the_pool_and_is_replaced",
        an_aborting_task_crashes_its_worker_breaks_the_pool_and_is_replaced,
    ),
    (
        "a_busy_worker_killed_from_outside_fails_its_task_with_the_signal",
        a_busy_worker_killed_from_outside_fails_its_task_with_the_signal,
    ),
    ("an_idle_pool_whose_worker_died_is_never_handed_out", an_idle_pool_whose_worker_died_is_never_handed_out),
    (
        "a_hung_idle_worker_is_caught_at_hand_out_killed_and_replaced",
        a_hung_idle_worker_is_caught_at_hand_out_killed_and_replaced,
    ),
    (
        "a_task_past_its_timeout_is_timed_out_and_only_its_worker_replaced",
        a_task_past_its_timeout_is_timed_out_and_only_its_worker_replaced,
    ),
    ("a_finished_tasks_deadline_does_not_touch_the_next_task", a_finished_tasks_deadline_does_not_touch_the_next_task),
    (
        "hard_expiry_terminates_the_worker_and_capacity_is_replaced",
        hard_expiry_terminates_the_worker_and_capacity_is_replaced,
    ),
    ("a_failing_initializer_breaks_the_pool_with_its_reason", a_failing_initializer_breaks_the_pool_with_its_reason),
    ("workers_are_recycled_after_max_tasks", workers_are_recycled_after_max_tasks),
    (
        "a_pool_replacing_a_recycled_worker_is_not_mistaken_for_broken",
        a_pool_replacing_a_recycled_worker_is_not_mistaken_for_broken,
    ),
    ("workers_get_the_configured_environment_and_directory", workers_get_the_configured_environment_and_directory),
    (
        "worker_logs_are_forwarded_filtered_and_delivered_before_stop_returns",
        worker_logs_are_forwarded_filtered_and_delivered_before_stop_returns,
    ),
    (
        "a_bootstrap_too_large_for_a_pipe_still_reaches_every_worker",
        a_bootstrap_too_large_for_a_pipe_still_reaches_every_worker,
    ),
    ("process_logging_configuration_is_validated", process_logging_configuration_is_validated),
    ("bootstrap_never_blocks_forever", bootstrap_never_blocks_forever),
    (
        "bootstrap_failures_say_what_happened_and_are_not_retried_when_hopeless",
        bootstrap_failures_say_what_happened_and_are_not_retried_when_hopeless,
    ),
    ("the_workers_of_a_pool_start_concurrently", the_workers_of_a_pool_start_concurrently),
    (
        "one_failing_worker_fails_the_whole_start_and_leaves_nothing_behind",
        one_failing_worker_fails_the_whole_start_and_leaves_nothing_behind,
    ),
    (
        "one_hanging_worker_times_the_whole_start_out_and_leaves_nothing_behind",
        one_hanging_worker_times_the_whole_start_out_and_leaves_nothing_behind,
    ),
    ("stop_leaves_no_worker_process_behind", stop_leaves_no_worker_process_behind),
    ("the_grinder_runs_registered_tasks_on_a_process_manager", the_grinder_runs_registered_tasks_on_a_process_manager),
    ("the_grinder_enforces_a_process_jobs_timeout", the_grinder_enforces_a_process_jobs_timeout),
    (
        "concurrent_leases_submits_and_cancels_all_resolve_and_add_up",
        concurrent_leases_submits_and_cancels_all_resolve_and_add_up,
    ),
    ("workers_die_with_their_parent", workers_die_with_their_parent),
    ("acquire_errors_are_unchanged_for_processes", acquire_errors_are_unchanged_for_processes),
];

fn main() {
    leasepool::run_if_worker(&registry().register(&PANICS_INIT));
    if std::env::var_os(ORPHAN_PARENT_ENV).is_some() {
        return play_a_parent_that_gets_killed();
    }
    log::set_logger(&LOGS).expect("the test logger is the first logger");
    log::set_max_level(LevelFilter::Trace);

    common::run_tests(TESTS);
}
