//! The parent's side of a running process pool: its worker slots, its queue, the reader threads'
//! loops, crash handling, recycling, task timeouts, the liveness ping and shutdown (see the
//! backend's module docs for the shape).
//!
//! *Task timeouts.* A task submitted with a timeout gets a deadline when it is sent to a worker
//! (`deadline::run_at`, one thread for all pools). If the worker is still running that task
//! (same request id) when the deadline passes, its slot is marked timed out and the worker is
//! killed; its reader then reaps it, resolves the task as [`TaskError::TimedOut`] and starts a
//! replacement, as for a recycled worker. A reply that races the kill is ignored: a task whose
//! deadline fired resolves as timed out, whatever the worker managed to send.
//!
//! *Liveness ping.* [`Pool::is_healthy`], which the manager calls when it hands the pool out,
//! sends every idle worker a `Ping` and waits, all at once, up to `ping_timeout` for their
//! `Pong`s (their readers record them). A worker that does not answer (stopped, or its request
//! loop blocked) breaks the pool and is killed.

use std::collections::VecDeque;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_channel::ipc::{IpcReceiver, IpcSender};
use parking_lot::{Condvar, Mutex, MutexGuard};

use super::deadline;
use super::exit::WorkerExit;
use super::linger::Linger;
use super::spawn::{self, StartFailure, Started};
use super::spec::{Settings, Spec};
use super::wire::{self, Envelope, FromWorker, Outcome, ToWorker};
use crate::error::TaskError;
use crate::task::RemoteJob;

/// How long a hand-out ping yields for the answers before it parks (see `ping_idle`).
const PING_YIELD: Duration = Duration::from_micros(25);

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
        spawn::reap_by(&mut self.child.lock(), Instant::now() + Duration::from_secs(2))
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
    /// Its task ran past its timeout: the worker was killed, and its reader resolves the task as
    /// timed out once it has reaped it.
    TimedOut {
        job: RemoteJob,
    },
}

struct Slot {
    worker: Arc<Worker>,
    job: Job,
    tasks_run: usize,
    /// Its reader saw the worker die.
    dead: bool,
    /// A recycled worker's replacement is starting (the slot is dead but the pool is healthy).
    replacing: bool,
    /// The nonce of the last `Pong` this worker sent.
    ponged: u64,
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
    /// Notified when a worker answers a ping, dies, or the pool breaks (see `ping_idle`).
    answered: Condvar,
    /// Request ids and ping nonces (one sequence: both only need to be unique in the pool).
    next_id: AtomicU64,
    on_broken: BrokenHook,
}

/// One process pool.
pub(crate) struct Pool {
    shared: Arc<PoolShared>,
}

impl Pool {
    /// Starts `spec.workers` workers, all at once, and waits until each is ready (handshake, log
    /// setup, initializer). Any failure kills what was started and says why.
    pub(crate) fn create(spec: Spec, seq: u64, on_broken: BrokenHook) -> Result<Pool, StartFailure> {
        let settings = Settings::from(spec);
        let indices: Vec<usize> = (0..settings.workers).collect();
        let started = spawn::start_workers(&settings, seq, &indices)?;
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
            answered: Condvar::new(),
            next_id: AtomicU64::new(1),
            on_broken,
        });
        let mut started = started.into_iter().enumerate();
        for (index, worker) in started.by_ref() {
            if let Err(reason) = shared.install(index, worker) {
                for (_, mut rest) in started {
                    let _ = rest.child.kill();
                    let _ = rest.child.wait();
                }
                let pool = Pool { shared };
                pool.shutdown(Shutdown::Kill);
                return Err(reason.into());
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

    /// Open, every worker process still running, and every idle worker answering a ping within
    /// `ping_timeout`. Called by the manager when it hands the pool out, so it costs one round
    /// trip to the idle workers (all pinged at once); a worker that does not answer breaks the
    /// pool (with the reason) and is killed.
    pub(crate) fn is_healthy(&self) -> bool {
        {
            let st = self.shared.state.lock();
            let running = |s: &Slot| {
                s.replacing || (!s.dead && (matches!(s.job, Job::Exiting | Job::TimedOut { .. }) || s.worker.alive()))
            };
            if st.mode != Mode::Open || !st.slots.iter().all(running) {
                return false;
            }
        }
        self.shared.ping_idle()
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
    /// Puts a started worker in slot `index` (new or replaced) and hands its reader thread the
    /// reading loop.
    fn install(self: &Arc<Self>, index: usize, started: Started) -> Result<(), String> {
        let Started { child, pid, requests, reader } = started;
        let worker = Arc::new(Worker { pid, child: Mutex::new(child), requests: Mutex::new(requests) });
        {
            let mut st = self.state.lock();
            let slot = Slot {
                worker: Arc::clone(&worker),
                job: Job::Idle,
                tasks_run: 0,
                dead: false,
                replacing: false,
                ponged: 0,
            };
            if index < st.slots.len() {
                st.slots[index] = slot;
            } else {
                st.slots.push(slot);
            }
            st.readers += 1;
        }
        let shared = Arc::clone(self);
        let reading = Arc::clone(&worker);
        if !reader.start(move |replies| shared.read(index, reading, replies)) {
            worker.signal(true);
            let _ = worker.reap();
            let mut st = self.state.lock();
            st.readers -= 1;
            st.slots[index].dead = true;
            return Err(format!("the reader thread of worker {pid} is gone"));
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
            let timeout = next.timeout;
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
            // The task's own clock starts now that it is with the worker (a timeout too large to
            // be a deadline never expires).
            if let Some(at) = timeout.and_then(|t| Instant::now().checked_add(t)) {
                let shared = Arc::downgrade(self);
                deadline::run_at(at, move || {
                    if let Some(shared) = shared.upgrade() {
                        shared.expire(index, id);
                    }
                });
            }
            return;
        }
    }

    /// The deadline of request `id` on slot `index` passed: if the worker is still running it,
    /// mark the slot timed out and kill the worker (its reader resolves the task once the worker
    /// is reaped, and replaces it). Runs on the deadline thread: never blocks for long.
    fn expire(&self, index: usize, id: u64) {
        let mut st = self.state.lock();
        let slot = &mut st.slots[index];
        let job = match std::mem::replace(&mut slot.job, Job::Exiting) {
            Job::Running { id: running, job } if running == id && !slot.dead => job,
            other => {
                slot.job = other; // it finished in time (or the worker died first)
                return;
            }
        };
        slot.job = Job::TimedOut { job };
        let worker = Arc::clone(&slot.worker);
        drop(st);
        worker.signal(true);
    }

    /// Pings every idle worker and waits (up to `ping_timeout`, all at once) for their answers.
    /// `false` if the pool is not open, or broke meanwhile, or a worker did not answer in time:
    /// then the pool is broken ("did not answer a ping") and the silent workers are killed.
    fn ping_idle(self: &Arc<Self>) -> bool {
        let mut st = self.state.lock();
        let mut pinged = Vec::new();
        for (index, slot) in st.slots.iter().enumerate() {
            if !slot.dead && matches!(slot.job, Job::Idle) {
                pinged.push((index, self.next_id.fetch_add(1, Relaxed), Arc::clone(&slot.worker)));
            }
        }
        drop(st);
        // A failed send means the worker is dying: its reader breaks the pool.
        for (_, nonce, worker) in &pinged {
            worker.send(ToWorker::Ping { nonce: *nonce });
        }
        let timeout = self.settings.options.ping_timeout;
        let now = Instant::now();
        let deadline = now + timeout;
        let (mut yielding, yield_until) = (true, now + PING_YIELD);
        st = self.state.lock();
        loop {
            if st.mode != Mode::Open {
                return false;
            }
            if !pinged.iter().any(|p| st.owes_pong(p)) {
                return true;
            }
            if yielding {
                // The answers take one round trip: yield (never hog a core) rather than pay a
                // park and a wake-up per answer.
                MutexGuard::unlocked(&mut st, std::thread::yield_now);
                yielding = Instant::now() < yield_until;
                continue;
            }
            if self.answered.wait_until(&mut st, deadline).timed_out() {
                let hung: Vec<Arc<Worker>> =
                    pinged.iter().filter(|p| st.owes_pong(p)).map(|(_, _, worker)| Arc::clone(worker)).collect();
                drop(st);
                let pids: Vec<String> = hung.iter().map(|w| w.pid.to_string()).collect();
                let noun = if hung.len() == 1 { "worker" } else { "workers" };
                let reason = format!("{noun} {} did not answer a ping within {timeout:?} (hung)", pids.join(", "));
                // Broken first, so that the reader sees the kill as expected.
                self.break_pool(reason);
                hung.iter().for_each(|w| w.signal(true));
                return false;
            }
        }
    }

    /// A reader thread: delivers results and log records until the worker's channel closes,
    /// then reaps the worker and decides what its end means.
    fn read(self: Arc<Self>, index: usize, worker: Arc<Worker>, replies: IpcReceiver<Envelope<FromWorker>>) {
        let mut protocol_error = None;
        let mut linger = Linger::new();
        while let Ok(envelope) = linger.recv(&replies) {
            match envelope.open() {
                Ok(FromWorker::Done { id, outcome }) => self.on_done(index, id, outcome),
                Ok(FromWorker::Pong { nonce }) => self.on_pong(index, &worker, nonce),
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
        self.answered.notify_all();
    }

    fn on_pong(&self, index: usize, worker: &Arc<Worker>, nonce: u64) {
        let mut st = self.state.lock();
        let slot = &mut st.slots[index];
        if Arc::ptr_eq(&slot.worker, worker) {
            slot.ponged = slot.ponged.max(nonce);
        }
        drop(st);
        self.answered.notify_all();
    }

    fn on_done(self: &Arc<Self>, index: usize, id: u64, outcome: Outcome) {
        let mut st = self.state.lock();
        let slot = &mut st.slots[index];
        let job = match std::mem::replace(&mut slot.job, Job::Reserved) {
            Job::Running { id: running, job } if running == id => job,
            other => {
                slot.job = other; // a reply that raced its task's timeout (the kill): discarded
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
            Outcome::TypeMismatch => Err(TaskError::TypeMismatch { task: task.to_owned() }),
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
                self.replace(index, "a recycled worker");
            }
            (mode, Job::TimedOut { job }) => {
                // Killed at its task's deadline: the task says so, and the slot gets a fresh
                // worker (the pool is fine).
                let open = mode == Mode::Open;
                if open && protocol_error.is_none() {
                    st.slots[index].replacing = true;
                }
                drop(st);
                let timeout = job.timeout.unwrap_or_default();
                job.done.finish(Err(TaskError::TimedOut { task: job.task.to_owned(), timeout }));
                match protocol_error {
                    Some(reason) if open => self.break_pool(reason),
                    None if open => self.replace(index, "a worker killed at its task's timeout"),
                    _ => {}
                }
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

    /// Starts a fresh worker for slot `index` (after recycling, or a task timeout: `what` the
    /// replaced worker was). A failure breaks the pool.
    fn replace(self: &Arc<Self>, index: usize, what: &str) {
        if self.state.lock().mode != Mode::Open {
            return; // closed meanwhile: nothing to replace
        }
        match spawn::start_workers(&self.settings, self.seq, &[index]).map(|mut w| w.pop()) {
            Ok(Some(started)) => {
                if let Err(reason) = self.install(index, started) {
                    self.break_pool(reason);
                }
            }
            Ok(None) => unreachable!("one worker was asked for"),
            Err(failure) => self.break_pool(format!("could not replace {what}: {}", failure.reason)),
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
        self.answered.notify_all();
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
                Job::Exiting | Job::TimedOut { .. } => {}
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
    /// Whether the worker pinged with `nonce` in slot `index` still owes its answer: the same
    /// worker, alive, idle (a worker given a task meanwhile answers after it, and whoever gave it
    /// the task is watching it), and silent so far.
    fn owes_pong(&self, &(index, nonce, ref worker): &(usize, u64, Arc<Worker>)) -> bool {
        let slot = &self.slots[index];
        Arc::ptr_eq(&slot.worker, worker) && !slot.dead && matches!(slot.job, Job::Idle) && slot.ponged < nonce
    }

    /// What a task that reaches a closed pool resolves with.
    fn closed_error(&self) -> TaskError {
        match &self.broken_reason {
            Some(reason) => TaskError::PoolBroken { reason: reason.clone() },
            None => TaskError::Cancelled,
        }
    }
}
