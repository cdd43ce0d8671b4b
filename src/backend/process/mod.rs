//! The process backend: each pool is `workers_per_pool` worker processes.
//!
//! Work crosses the process boundary as registered tasks ([`Task`], [`TaskRegistry`]) over
//! ipc-channel, in our own versioned envelope ([`wire`]). Each worker runs one task at a time.
//!
//! Shape (compared with `DESIGN.md`'s "one dispatcher per pool"): the pool keeps one small state
//! (queue + worker slots) under its own lock, and each worker has a *reader thread* that receives
//! its replies and log records. A submit sends straight to an idle worker from the caller's
//! thread; a reader that delivers a result sends that worker its next queued task. So a round
//! trip costs one thread hop, and a worker can be replaced (recycling, crash) without rebuilding
//! a select set. A reader also sees its worker's death first: a disconnected channel, then the
//! exit status from reaping it.
//!
//! Shutdown comes in two strengths, chosen by why the pool leaves management:
//! - *graceful* (shrink, release, broken pool): queued tasks resolve (cancelled, or pool
//!   broken), idle workers exit at once, busy ones after their current task;
//! - *kill* (hard expiry, manager stop): queued tasks resolve the same way, busy workers get
//!   `SIGTERM` and, after [`ProcessOptions::terminate_grace`], `SIGKILL`; their tasks resolve as
//!   [`TaskError::Revoked`]. Threads cannot be stopped like this; processes can.

use std::collections::VecDeque;
use std::fmt;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_channel::ipc::{IpcReceiver, IpcSender};
use log::LevelFilter;
use parking_lot::{Condvar, Mutex};

use crate::config::Config;
use crate::error::TaskError;
use crate::task::RemoteJob;

mod child;
mod logs;
mod options;
mod registry;
mod spawn;
mod wire;

pub use child::run_if_worker;
pub use logs::ProcessLoggingConfig;
pub use options::{InitializerCall, ProcessOptions, WorkerProgram};
pub(crate) use registry::{decode, encode};
pub use registry::{Task, TaskRegistry};

use wire::{Envelope, FromWorker, Outcome, ToWorker};

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WorkerExit {
    /// It exited with this status code.
    Code(i32),
    /// It was killed by this signal (6 = SIGABRT, 9 = SIGKILL, ...).
    Signal(i32),
    /// The status could not be read.
    Unknown,
}

impl fmt::Display for WorkerExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerExit::Code(c) => write!(f, "exit code {c}"),
            WorkerExit::Signal(s) => {
                let name = match s {
                    6 => " (SIGABRT)",
                    9 => " (SIGKILL)",
                    11 => " (SIGSEGV)",
                    15 => " (SIGTERM)",
                    _ => "",
                };
                write!(f, "killed by signal {s}{name}")
            }
            WorkerExit::Unknown => f.write_str("unknown exit status"),
        }
    }
}

pub(crate) fn exit_of(status: ExitStatus) -> WorkerExit {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return WorkerExit::Signal(signal);
        }
    }
    status.code().map_or(WorkerExit::Unknown, WorkerExit::Code)
}

/// What a pool needs from the manager's configuration.
pub(crate) struct Settings {
    pub options: ProcessOptions,
    pub workers: usize,
    pub name_prefix: String,
    /// Log forwarding: the level and the parent-side target.
    pub forward: Option<(LevelFilter, String)>,
}

impl Settings {
    fn from_config(config: &Config) -> Settings {
        Settings {
            options: config.process.clone(),
            workers: config.workers_per_pool,
            name_prefix: config.name_prefix.clone(),
            forward: config
                .process_logging
                .as_ref()
                .filter(|l| l.enabled)
                .map(|l| (l.level, l.target.clone().unwrap_or_else(|| config.log_target.clone()))),
        }
    }

    fn emit(&self, record: &wire::LogRecord) {
        if let Some((level, target)) = &self.forward {
            logs::emit(record, target, *level);
        }
    }
}

/// Called (from a reader thread, no lock held) when a worker of pool `seq` died unexpectedly.
pub(crate) type BrokenHook = Box<dyn Fn(u64) + Send + Sync>;

/// How a pool is being shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shutdown {
    /// Queued work resolves, workers exit after their current task.
    Graceful,
    /// Queued work resolves, busy workers are terminated (SIGTERM, grace, SIGKILL).
    Kill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Open,
    Closed(Shutdown),
    Broken,
}

/// One worker process as the parent sees it.
struct Worker {
    pid: u32,
    child: Mutex<Child>,
    requests: Mutex<IpcSender<Envelope<ToWorker>>>,
}

impl Worker {
    fn send(&self, msg: ToWorker) -> bool {
        self.requests.lock().send(Envelope::new(msg)).is_ok()
    }

    /// Sends `signal` if the process has not been reaped (so a recycled pid is never hit).
    fn signal(&self, kill: bool) {
        let mut child = self.child.lock();
        if matches!(child.try_wait(), Ok(None)) {
            if kill {
                let _ = child.kill();
            } else {
                terminate(self.pid);
            }
        }
    }

    /// Waits for the process to end (it closed its channel, so it is exiting), killing it if it
    /// lingers, and returns how it ended.
    fn reap(&self) -> WorkerExit {
        let mut child = self.child.lock();
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return exit_of(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                Ok(None) => {
                    let _ = child.kill();
                    return child.wait().map(exit_of).unwrap_or(WorkerExit::Unknown);
                }
                Err(_) => return WorkerExit::Unknown,
            }
        }
    }

    fn alive(&self) -> bool {
        self.child.try_lock().is_some_and(|mut c| matches!(c.try_wait(), Ok(None)))
    }
}

#[cfg(unix)]
fn terminate(pid: u32) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    if let Ok(pid) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
}

#[cfg(not(unix))]
fn terminate(_pid: u32) {}

enum Job {
    Idle,
    /// Reserved by a dispatcher that is about to start a task on it.
    Reserved,
    Running {
        id: u64,
        job: RemoteJob,
    },
    /// Told to exit (or being replaced); takes no work.
    Exiting,
}

struct Slot {
    worker: Arc<Worker>,
    job: Job,
    tasks_run: usize,
    /// Its reader saw the worker die.
    dead: bool,
    /// A recycled worker's replacement is starting (the slot is dead but the pool is healthy).
    replacing: bool,
}

struct PoolState {
    mode: Mode,
    broken_reason: Option<String>,
    queue: VecDeque<RemoteJob>,
    slots: Vec<Slot>,
    /// Reader threads still running (each ends after reaping its worker).
    readers: usize,
}

struct PoolShared {
    seq: u64,
    settings: Settings,
    state: Mutex<PoolState>,
    readers_done: Condvar,
    next_id: AtomicU64,
    on_broken: BrokenHook,
}

/// One process pool.
pub(crate) struct Pool {
    shared: Arc<PoolShared>,
}

impl Pool {
    /// Starts `workers_per_pool` workers and waits until each is ready (handshake, log setup,
    /// initializer). Any failure kills what was started and says why.
    pub(crate) fn create(config: &Config, seq: u64, on_broken: BrokenHook) -> Result<Pool, String> {
        let settings = Settings::from_config(config);
        let mut started = Vec::with_capacity(settings.workers);
        for index in 0..settings.workers {
            match spawn::start_worker(&settings, index) {
                Ok(worker) => started.push(worker),
                Err(reason) => {
                    for mut w in started {
                        let _ = w.requests.send(Envelope::new(ToWorker::Exit));
                        let _ = w.child.kill();
                        let _ = w.child.wait();
                    }
                    return Err(reason);
                }
            }
        }
        let shared = Arc::new(PoolShared {
            seq,
            settings,
            state: Mutex::new(PoolState {
                mode: Mode::Open,
                broken_reason: None,
                queue: VecDeque::new(),
                slots: Vec::with_capacity(started.len()),
                readers: 0,
            }),
            readers_done: Condvar::new(),
            next_id: AtomicU64::new(1),
            on_broken,
        });
        for (index, worker) in started.into_iter().enumerate() {
            if let Err(reason) = shared.install(index, worker) {
                let pool = Pool { shared };
                pool.shutdown(Shutdown::Kill);
                return Err(reason);
            }
        }
        Ok(Pool { shared })
    }

    pub(crate) fn seq(&self) -> u64 {
        self.shared.seq
    }

    pub(crate) fn workers(&self) -> usize {
        self.shared.settings.workers
    }

    /// The worker pids, in slot order.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.shared.state.lock().slots.iter().filter(|s| !s.dead).map(|s| s.worker.pid).collect()
    }

    /// Why the pool broke, once it did.
    pub(crate) fn broken_reason(&self) -> Option<String> {
        self.shared.state.lock().broken_reason.clone()
    }

    /// Open, and every worker process still running.
    pub(crate) fn is_healthy(&self) -> bool {
        let st = self.shared.state.lock();
        st.mode == Mode::Open
            && st.slots.iter().all(|s| s.replacing || (!s.dead && (matches!(s.job, Job::Exiting) || s.worker.alive())))
    }

    /// Queues a task (sending it at once when a worker is idle). On a pool that no longer takes
    /// work it resolves at once: pool broken (with the reason) or cancelled.
    pub(crate) fn submit(&self, job: RemoteJob) {
        let shared = &self.shared;
        let mut st = shared.state.lock();
        if st.mode != Mode::Open {
            let error = st.closed_error();
            drop(st);
            job.done.fail(error);
            return;
        }
        let Some(index) = st.slots.iter().position(|s| matches!(s.job, Job::Idle) && !s.dead) else {
            st.queue.push_back(job);
            return;
        };
        st.slots[index].job = Job::Reserved;
        drop(st);
        shared.dispatch(index, Some(job));
    }

    /// Stops taking work. Queued tasks resolve (their lease says how: cancelled or pool broken);
    /// idle workers exit; busy workers finish (graceful) or are terminated (kill). Never blocks.
    pub(crate) fn shutdown(&self, how: Shutdown) {
        self.shared.shutdown(how);
    }

    /// Waits until every worker has exited and been reaped (all reader threads done), or
    /// `deadline` passes. Returns whether all were.
    pub(crate) fn join(&self, deadline: Instant) -> bool {
        let mut st = self.shared.state.lock();
        while st.readers > 0 {
            if self.shared.readers_done.wait_until(&mut st, deadline).timed_out() {
                return st.readers == 0;
            }
        }
        true
    }

    /// Whether every worker has exited and been reaped.
    pub(crate) fn finished(&self) -> bool {
        self.shared.state.lock().readers == 0
    }
}

impl Drop for Pool {
    /// The last handle on a pool kills whatever workers it still has (a no-op for a pool that was
    /// shut down and whose workers are all gone).
    fn drop(&mut self) {
        self.shared.shutdown(Shutdown::Kill);
    }
}

impl PoolShared {
    /// Puts a started worker in slot `index` (new or replaced) and starts its reader thread.
    fn install(self: &Arc<Self>, index: usize, started: spawn::Started) -> Result<(), String> {
        let spawn::Started { child, pid, requests, replies } = started;
        let worker = Arc::new(Worker { pid, child: Mutex::new(child), requests: Mutex::new(requests) });
        {
            let mut st = self.state.lock();
            let slot =
                Slot { worker: Arc::clone(&worker), job: Job::Idle, tasks_run: 0, dead: false, replacing: false };
            if index < st.slots.len() {
                st.slots[index] = slot;
            } else {
                st.slots.push(slot);
            }
            st.readers += 1;
        }
        let shared = Arc::clone(self);
        let reader = Arc::clone(&worker);
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{}_{index}-reader", self.settings.name_prefix, self.seq))
            .spawn(move || shared.read(index, reader, replies));
        if let Err(e) = spawned {
            worker.signal(true);
            let _ = worker.reap();
            let mut st = self.state.lock();
            st.readers -= 1;
            st.slots[index].dead = true;
            return Err(format!("cannot spawn a reader thread: {e}"));
        }
        // A worker installed into a pool that closed meanwhile (a replacement) exits at once.
        self.dispatch_reserved_or_idle(index);
        Ok(())
    }

    /// After (re)installing slot `index`: give it queued work, or make it exit if the pool closed.
    fn dispatch_reserved_or_idle(self: &Arc<Self>, index: usize) {
        let mut st = self.state.lock();
        if st.mode != Mode::Open {
            st.slots[index].job = Job::Exiting;
            let worker = Arc::clone(&st.slots[index].worker);
            drop(st);
            worker.send(ToWorker::Exit);
            return;
        }
        if st.queue.is_empty() || !matches!(st.slots[index].job, Job::Idle) {
            return;
        }
        st.slots[index].job = Job::Reserved;
        drop(st);
        self.dispatch(index, None);
    }

    /// Runs on slot `index`, which the caller reserved: start `job` (or the next queued one) on
    /// it, skipping tasks that were cancelled meanwhile. Leaves the slot idle when nothing is
    /// left, or exiting when the pool closed.
    fn dispatch(self: &Arc<Self>, index: usize, mut job: Option<RemoteJob>) {
        loop {
            let mut next = match job.take() {
                Some(j) => j,
                None => {
                    let mut st = self.state.lock();
                    match st.mode {
                        Mode::Open => match st.queue.pop_front() {
                            Some(j) => j,
                            None => {
                                st.slots[index].job = Job::Idle;
                                return;
                            }
                        },
                        _ => {
                            st.slots[index].job = Job::Exiting;
                            let worker = Arc::clone(&st.slots[index].worker);
                            drop(st);
                            worker.send(ToWorker::Exit);
                            return;
                        }
                    }
                }
            };
            // Claiming runs the owner's refusal check and may resolve the task: no lock held.
            if !next.done.start() {
                continue;
            }
            let id = self.next_id.fetch_add(1, Relaxed);
            let request = ToWorker::Run { id, task: next.task.into(), input: std::mem::take(&mut next.input) };
            let mut st = self.state.lock();
            if st.mode != Mode::Open || st.slots[index].dead {
                let error = st.closed_error();
                st.slots[index].job = if st.slots[index].dead { Job::Exiting } else { Job::Reserved };
                let dead = st.slots[index].dead;
                drop(st);
                next.done.finish(Err(error));
                if dead {
                    return;
                }
                continue; // the next round sees the pool closed and lets the worker exit
            }
            st.slots[index].job = Job::Running { id, job: next };
            let worker = Arc::clone(&st.slots[index].worker);
            drop(st);
            // A failed send means the worker is dying: its reader resolves the task.
            worker.send(request);
            return;
        }
    }

    /// A reader thread: delivers results and log records until the worker's channel closes,
    /// then reaps the worker and decides what its end means.
    fn read(self: Arc<Self>, index: usize, worker: Arc<Worker>, replies: IpcReceiver<Envelope<FromWorker>>) {
        let mut protocol_error = None;
        while let Ok(envelope) = replies.recv() {
            match envelope.open() {
                Ok(FromWorker::Done { id, outcome }) => self.on_done(index, id, outcome),
                Ok(FromWorker::Log(record)) => self.settings.emit(&record),
                Ok(other) => {
                    protocol_error = Some(format!("worker {} sent an unexpected {other:?}", worker.pid));
                    worker.signal(true);
                }
                Err(v) => {
                    protocol_error =
                        Some(format!("worker {} speaks protocol {v}, the parent {}", worker.pid, wire::PROTOCOL));
                    worker.signal(true);
                }
            }
        }
        let exit = worker.reap();
        self.on_exit(index, &worker, exit, protocol_error);
        let mut st = self.state.lock();
        st.readers -= 1;
        drop(st);
        self.readers_done.notify_all();
    }

    fn on_done(self: &Arc<Self>, index: usize, id: u64, outcome: Outcome) {
        let mut st = self.state.lock();
        let slot = &mut st.slots[index];
        let job = match std::mem::replace(&mut slot.job, Job::Reserved) {
            Job::Running { id: running, job } if running == id => job,
            other => {
                slot.job = other; // a stale reply (cannot happen with one task per worker)
                return;
            }
        };
        slot.tasks_run += 1;
        let recycle = self.settings.options.max_tasks_per_worker.is_some_and(|max| slot.tasks_run >= max)
            && st.mode == Mode::Open;
        // With nothing queued the worker is idle *before* the result is published, so the caller
        // it wakes can send its next task straight to it.
        let next = if recycle {
            st.slots[index].job = Job::Exiting;
            false
        } else if st.mode == Mode::Open && st.queue.is_empty() {
            st.slots[index].job = Job::Idle;
            false
        } else {
            true // stays reserved: dispatch below takes the queue (or retires the worker)
        };
        let worker = Arc::clone(&st.slots[index].worker);
        drop(st);
        let task = job.task;
        job.done.finish(match outcome {
            Outcome::Value(bytes) => Ok(bytes),
            Outcome::Panicked(message) => Err(TaskError::Panicked { message }),
            Outcome::UnknownTask => Err(TaskError::UnknownTask { name: task.to_owned() }),
            Outcome::InvalidInput(message) => Err(TaskError::InvalidInput { task: task.to_owned(), message }),
            Outcome::InvalidOutput(message) => Err(TaskError::InvalidOutput { task: task.to_owned(), message }),
        });
        if recycle {
            worker.send(ToWorker::Exit); // the reader replaces it once it is gone
        } else if next {
            self.dispatch(index, None);
        }
    }

    /// The worker in slot `index` is gone (reaped). Expected exits are quiet; a recycled worker is
    /// replaced; an unexpected death breaks the pool.
    fn on_exit(self: &Arc<Self>, index: usize, worker: &Arc<Worker>, exit: WorkerExit, protocol_error: Option<String>) {
        let mut st = self.state.lock();
        st.slots[index].dead = true;
        let job = std::mem::replace(&mut st.slots[index].job, Job::Exiting);
        let pid = worker.pid;
        match (st.mode, job) {
            (Mode::Open, Job::Exiting) if protocol_error.is_none() => {
                st.slots[index].replacing = true;
                drop(st);
                self.replace(index);
            }
            (Mode::Closed(_) | Mode::Broken, Job::Exiting | Job::Idle) => {}
            (Mode::Closed(Shutdown::Kill), Job::Running { job, .. }) => {
                drop(st);
                job.done.finish(Err(TaskError::Revoked { pid }));
            }
            (mode, job) => {
                // Died on its own (crash, OOM, killed from outside), or broke the protocol.
                let reason = match protocol_error {
                    Some(reason) => reason,
                    None => format!("worker {pid} died unexpectedly ({exit})"),
                };
                let was_open = mode == Mode::Open;
                if was_open {
                    st.mode = Mode::Broken;
                    st.broken_reason = Some(reason.clone());
                }
                let queued: Vec<RemoteJob> = st.queue.drain(..).collect();
                drop(st);
                // The lease ends first, so that whoever sees these outcomes finds it broken.
                if was_open {
                    (self.on_broken)(self.seq);
                }
                if let Job::Running { job, .. } = job {
                    job.done.finish(Err(TaskError::WorkerCrashed { pid, status: exit }));
                }
                for job in queued {
                    job.done.fail(TaskError::PoolBroken { reason: reason.clone() });
                }
            }
        }
    }

    /// Starts a fresh worker for slot `index` (after recycling). A failure breaks the pool.
    fn replace(self: &Arc<Self>, index: usize) {
        if self.state.lock().mode != Mode::Open {
            return; // closed meanwhile: nothing to replace
        }
        match spawn::start_worker(&self.settings, index) {
            Ok(started) => {
                if let Err(reason) = self.install(index, started) {
                    self.break_pool(reason);
                }
            }
            Err(reason) => self.break_pool(format!("could not replace a recycled worker: {reason}")),
        }
    }

    fn break_pool(self: &Arc<Self>, reason: String) {
        let mut st = self.state.lock();
        st.slots.iter_mut().for_each(|s| s.replacing = false);
        if st.mode != Mode::Open {
            return;
        }
        st.mode = Mode::Broken;
        st.broken_reason = Some(reason.clone());
        let queued: Vec<RemoteJob> = st.queue.drain(..).collect();
        drop(st);
        (self.on_broken)(self.seq);
        for job in queued {
            job.done.fail(TaskError::PoolBroken { reason: reason.clone() });
        }
    }

    fn shutdown(self: &Arc<Self>, how: Shutdown) {
        let mut st = self.state.lock();
        match (st.mode, how) {
            // A broken pool still has live workers to stop; a graceful close can be escalated.
            (Mode::Open | Mode::Broken, _) | (Mode::Closed(Shutdown::Graceful), Shutdown::Kill) => {
                st.mode = Mode::Closed(how)
            }
            _ => return,
        }
        let queued: Vec<RemoteJob> = st.queue.drain(..).collect();
        let mut exit = Vec::new();
        let mut busy = Vec::new();
        for slot in st.slots.iter_mut().filter(|s| !s.dead) {
            match slot.job {
                Job::Idle => {
                    slot.job = Job::Exiting;
                    exit.push(Arc::clone(&slot.worker));
                }
                Job::Running { .. } | Job::Reserved => busy.push(Arc::clone(&slot.worker)),
                Job::Exiting => {}
            }
        }
        drop(st);
        // Dropping a queued job resolves it with its owner's refusal (cancelled / pool broken).
        drop(queued);
        for worker in &exit {
            worker.send(ToWorker::Exit);
        }
        if how == Shutdown::Kill && !busy.is_empty() {
            self.terminate(busy);
        }
    }

    /// SIGTERM now, SIGKILL after the grace to whichever of `workers` is still running. The wait
    /// runs on a short-lived thread so that shutdown never blocks its caller.
    fn terminate(self: &Arc<Self>, workers: Vec<Arc<Worker>>) {
        let grace = self.settings.options.terminate_grace;
        if grace.is_zero() {
            workers.iter().for_each(|w| w.signal(true));
            return;
        }
        workers.iter().for_each(|w| w.signal(false));
        let shared = Arc::clone(self);
        let kill_late = move || {
            let deadline = Instant::now() + grace;
            let mut st = shared.state.lock();
            while st.readers > 0 && !shared.readers_done.wait_until(&mut st, deadline).timed_out() {}
            drop(st);
            workers.iter().for_each(|w| w.signal(true));
        };
        let spawned = std::thread::Builder::new()
            .name(format!("{}-{}-terminate", self.settings.name_prefix, self.seq))
            .spawn(kill_late);
        if spawned.is_err() {
            // No thread for the grace period: kill now rather than leave workers behind.
            let st = self.state.lock();
            st.slots.iter().for_each(|s| s.worker.signal(true));
        }
    }
}

impl PoolState {
    /// What a task that reaches a closed pool resolves with.
    fn closed_error(&self) -> TaskError {
        match &self.broken_reason {
            Some(reason) => TaskError::PoolBroken { reason: reason.clone() },
            None => TaskError::Cancelled,
        }
    }
}
