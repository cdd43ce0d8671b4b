//! Starting worker processes: the spawner thread, the random tokens, and the bootstrap, for all
//! the workers of a pool at once and against one deadline.
//!
//! Every child is spawned from one long-lived thread, `leasepool-spawner`: Linux delivers the
//! parent-death signal when the *thread* that spawned a child exits, so spawning from a caller's
//! short-lived thread would kill its workers with it. A pool sends it one request for all of its
//! workers, and it answers for each child as soon as that child exists.
//!
//! Each worker gets its reader thread while the spawner forks. That thread accepts its worker's
//! connection on a one-shot server of its own, checks the hello (token and pid), re-emits the log
//! records the setup produces, and reports `Ready` (or what went wrong) to the caller; then it
//! waits to be handed the pool's reading loop ([`Reader::start`]). The worker reads its
//! [`Bootstrap`] (server, token, setup) from stdin: the caller writes it as soon as the spawner
//! answers, or the reader thread does when it is too large to be sure a pipe takes it at once.
//! So the workers of a pool bootstrap in parallel, no thread is spawned just for a handshake,
//! and a worker sets itself up without a round trip to the parent.
//!
//! The caller only watches: it collects the reports, checks every `POLL` whether a child that has
//! not connected yet has exited, and enforces the deadline. ipc-channel's accept cannot time
//! out, so a caller that gives up unblocks it by connecting to the server itself and sending
//! `Abandon`. On any failure the caller kills and reaps every child of the attempt, unblocks
//! every accept still pending and drops every thread's launch and hand-off, so each thread ends
//! at once: blocked on its launch or hand-off (disconnected), in accept (abandoned), in the setup
//! wait (its child is dead: disconnected), or writing stdin (broken pipe).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, RecvTimeoutError, Sender};
use ipc_channel::ipc::{IpcOneShotServer, IpcReceiver, IpcSender};

use super::exit::{exit_of, WorkerExit};
use super::logs;
use super::options::WorkerProgram;
use super::registry::encode;
use super::spec::{Forward, Settings};
use super::wire::{Bootstrap, Envelope, FromWorker, ToWorker, BOOTSTRAP_FAILED, PARENT_PID_ENV, PROTOCOL, WORKER_ENV};

/// How often a waiting bootstrap checks whether a child that has not connected already died.
const POLL: Duration = Duration::from_millis(10);

/// The most a pipe is guaranteed to take without blocking (POSIX `PIPE_BUF`, 4096 on Linux): a
/// bootstrap up to this size is written by the caller, a larger one by the reader thread.
const PIPE_BUF: usize = 4096;

type Replies = IpcReceiver<Envelope<FromWorker>>;
type Requests = IpcSender<Envelope<ToWorker>>;
/// The spawner's answer for the command at a position of its request.
type Spawned = (usize, std::io::Result<Child>);
type SpawnRequest = (Vec<Command>, Sender<Spawned>);
/// What a worker's reader thread runs once the worker is installed in its pool.
type ReaderJob = Box<dyn FnOnce(Replies) + Send>;

/// A worker that finished its handshake and setup.
pub(crate) struct Started {
    pub child: Child,
    pub pid: u32,
    pub requests: Requests,
    /// Its reader thread, holding the reply channel, waiting for the pool's reading loop.
    pub reader: Reader,
}

/// The hand-off to a started worker's reader thread. Dropping it ends the thread.
pub(crate) struct Reader(Sender<ReaderJob>);

impl Reader {
    /// Runs `job` on the worker's reader thread, with its reply channel. `false` if the thread
    /// is gone (it cannot be, short of a panic).
    pub(crate) fn start(self, job: impl FnOnce(Replies) + Send + 'static) -> bool {
        self.0.send(Box::new(job)).is_ok()
    }
}

/// Asks the spawner thread (started on first use) to spawn `commands`. It answers on the
/// returned channel once per command, as soon as that child is spawned (or failed to); the
/// channel disconnects early only if the spawner is gone.
fn request_spawns(commands: Vec<Command>) -> Receiver<Spawned> {
    static SPAWNER: OnceLock<Sender<SpawnRequest>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::unbounded::<SpawnRequest>();
        // If the thread cannot be created, requests fail with a disconnected reply channel.
        let _ = std::thread::Builder::new().name("leasepool-spawner".into()).spawn(move || {
            for (commands, reply) in rx {
                for (k, mut command) in commands.into_iter().enumerate() {
                    let result = command.spawn();
                    if let Err(unclaimed) = reply.send((k, result)) {
                        // The requester is gone (it cannot be: it waits for every answer).
                        if let (_, Ok(mut child)) = unclaimed.into_inner() {
                            let _ = child.kill();
                            let _ = child.wait();
                        }
                    }
                }
            }
        });
        tx
    });
    let (reply_tx, reply) = channel::unbounded();
    let _ = spawner.send((commands, reply_tx));
    reply
}

/// `n` tokens of 128 random bits as hex, from the OS (with std's randomly keyed hasher as a
/// fallback).
fn random_tokens(n: usize) -> Vec<String> {
    let mut bytes = vec![0u8; 16 * n];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_os.is_err() {
        use std::hash::{BuildHasher, Hasher};
        for chunk in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(Instant::now().elapsed().as_nanos());
            h.write_u32(std::process::id());
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hex = |token: &[u8]| -> String {
        token.iter().flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]).map(char::from).collect()
    };
    bytes.chunks(16).map(hex).collect()
}

/// The command that starts one worker (its bootstrap goes to its stdin).
fn command(settings: &Settings, program: &Option<PathBuf>) -> Command {
    let options = &settings.options;
    let mut command = match (&options.program, program) {
        (WorkerProgram::Path { path, args }, _) => {
            let mut c = Command::new(path);
            c.args(args);
            c
        }
        (WorkerProgram::CurrentExe, Some(exe)) => Command::new(exe),
        (WorkerProgram::CurrentExe, None) => unreachable!("the current executable was located"),
    };
    command
        .env(WORKER_ENV, PROTOCOL.to_string())
        .env(PARENT_PID_ENV, std::process::id().to_string())
        .envs(options.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped());
    if let Some(dir) = &options.cwd {
        command.current_dir(dir);
    }
    command
}

/// What a reader thread is given once its child exists: the pid, and its stdin if the thread is
/// to write the bootstrap.
struct Launch {
    pid: u32,
    stdin: Option<ChildStdin>,
}

/// A reader thread's report on its worker's bootstrap.
enum Report {
    Ready(Requests),
    Failed(Failure),
}

enum Failure {
    /// Accept returned our own `Abandon`: the caller gave up on a child that never connected.
    Abandoned,
    /// The one-shot server's accept failed.
    Accept(String),
    /// The handshake or setup went wrong; the reason says how.
    Rejected(String),
    /// The initializer failed; the reason is the worker's.
    InitFailed(String),
    /// The channel closed during setup: the child died.
    Disconnected,
}

/// Why starting workers failed, and whether trying again is pointless (the program is not a
/// worker, or cannot be found: a retry would run the host's `main` again, or fail the same way).
#[derive(Debug)]
pub(crate) struct StartFailure {
    pub(crate) reason: String,
    pub(crate) hopeless: bool,
}

impl From<String> for StartFailure {
    fn from(reason: String) -> Self {
        StartFailure { reason, hopeless: false }
    }
}

/// Starts one worker per entry of `indices` (slot numbers, used in thread names), all at once,
/// and waits until every one is ready (hello checked, log forwarding installed, initializer run)
/// or the pool's start timeout passes. On any failure every child of the attempt is killed and
/// reaped and every thread it started ends; the error says why.
pub(crate) fn start_workers(settings: &Settings, seq: u64, indices: &[usize]) -> Result<Vec<Started>, StartFailure> {
    if std::env::var_os(WORKER_ENV).is_some() {
        let reason = "this process is itself a leasepool worker: call leasepool::run_if_worker(..) at the top of \
                      main, before any manager is built";
        return Err(StartFailure { reason: reason.into(), hopeless: true });
    }
    let options = &settings.options;
    let deadline = Instant::now() + options.start_timeout;
    let program = match options.program {
        WorkerProgram::CurrentExe => {
            Some(std::env::current_exe().map_err(|e| format!("cannot locate the current executable: {e}"))?)
        }
        WorkerProgram::Path { .. } => None,
    };
    // The spawner forks every child while this thread prepares their servers and reader threads.
    let spawned = request_spawns(indices.iter().map(|_| command(settings, &program)).collect());
    let mut attempt = Attempt {
        settings,
        workers: Vec::with_capacity(indices.len()),
        spawned,
        unanswered: indices.len(),
        early: Vec::new(),
        hopeless: false,
    };
    let (report_tx, reports) = channel::unbounded();
    for (position, (&index, token)) in indices.iter().zip(random_tokens(indices.len())).enumerate() {
        match Starting::new(settings, seq, index, position, token, report_tx.clone()) {
            Ok(starting) => attempt.workers.push(starting),
            Err(reason) => return Err(attempt.fail(reason).into()),
        }
    }
    drop(report_tx);
    // Every child gets its bootstrap as soon as it exists.
    while attempt.unanswered > 0 {
        let Ok((k, result)) = attempt.spawned.recv() else {
            return Err(attempt.fail("cannot spawn workers: the leasepool-spawner thread is gone".into()).into());
        };
        attempt.unanswered -= 1;
        match result {
            Ok(child) => attempt.launch(k, child),
            Err(e) => {
                let hopeless = e.kind() == std::io::ErrorKind::NotFound;
                let reason = attempt.fail(spawn_failure(settings, indices[k], &e));
                return Err(StartFailure { reason, hopeless });
            }
        }
    }
    if let Err(reason) = attempt.wait(&reports, deadline) {
        return Err(StartFailure { reason, hopeless: attempt.hopeless });
    }
    Ok(attempt.into_started())
}

/// Why a worker could not be spawned, naming the path that is missing.
fn spawn_failure(settings: &Settings, index: usize, error: &std::io::Error) -> String {
    let options = &settings.options;
    if error.kind() == std::io::ErrorKind::NotFound {
        if let Some(dir) = options.cwd.as_ref().filter(|d| !d.is_dir()) {
            return format!("cannot spawn worker {index}: the worker directory {} does not exist", dir.display());
        }
        if let WorkerProgram::Path { path, .. } = &options.program {
            return format!("cannot spawn worker {index}: the worker program {} was not found", path.display());
        }
    }
    format!("cannot spawn worker {index}: {error}")
}

/// The caller's view of one worker being started.
struct Starting {
    /// The one-shot server's name, to unblock its accept.
    server: String,
    /// The encoded bootstrap, if the caller is to write it.
    input: Option<Vec<u8>>,
    /// Set by the reader thread once its child connected and said a valid hello.
    connected: Arc<AtomicBool>,
    launch: Option<Sender<Launch>>,
    handoff: Option<Sender<ReaderJob>>,
    child: Option<Child>,
    pid: u32,
    /// Its report arrived (so its accept is no longer pending).
    reported: bool,
    /// Seen exited before it connected (its accept was then abandoned).
    exited: Option<WorkerExit>,
    requests: Option<Requests>,
}

impl Starting {
    /// Creates worker `index`'s one-shot server and bootstrap and starts its reader thread,
    /// which reports under `position` (the worker's place in its attempt).
    fn new(
        settings: &Settings,
        seq: u64,
        index: usize,
        position: usize,
        token: String,
        report: Sender<(usize, Report)>,
    ) -> Result<Starting, String> {
        let (server, name) = IpcOneShotServer::<Envelope<FromWorker>>::new()
            .map_err(|e| format!("cannot create the bootstrap server: {e}"))?;
        let options = &settings.options;
        let boot = Bootstrap {
            server: name.clone(),
            token,
            log_level: settings.forward.as_ref().map(|f| logs::level_index(f.level)),
            initializer: options.initializer.as_ref().map(|i| (i.task.into(), i.args.clone())),
        };
        let input = encode(&boot).map_err(|e| format!("cannot encode the bootstrap: {e}"))?;
        let (caller_input, thread_input) =
            if input.len() <= PIPE_BUF { (Some(input), None) } else { (None, Some(input)) };
        let connected = Arc::new(AtomicBool::new(false));
        let (launch_tx, launch) = channel::bounded(1);
        let (handoff_tx, handoff) = channel::bounded(1);
        let thread = ReaderThread {
            position,
            server,
            token: boot.token,
            input: thread_input,
            forward: settings.forward.clone(),
            connected: Arc::clone(&connected),
            launch,
            report,
            handoff,
        };
        std::thread::Builder::new()
            .name(format!("{}-{seq}_{index}-reader", settings.name_prefix))
            .spawn(move || thread.run())
            .map_err(|e| format!("cannot spawn a reader thread: {e}"))?;
        Ok(Starting {
            server: name,
            input: caller_input,
            connected,
            launch: Some(launch_tx),
            handoff: Some(handoff_tx),
            child: None,
            pid: 0,
            reported: false,
            exited: None,
            requests: None,
        })
    }

    /// Unblocks the reader thread's accept if it is still pending (a no-op once it accepted).
    fn abandon_accept(&self) {
        if let Ok(tx) = IpcSender::<Envelope<FromWorker>>::connect(self.server.clone()) {
            let _ = tx.send(Envelope::new(FromWorker::Abandon));
        }
    }
}

/// One attempt at starting a set of workers, as the caller holds it.
struct Attempt<'a> {
    settings: &'a Settings,
    workers: Vec<Starting>,
    /// The spawner's answers, and how many are still to come.
    spawned: Receiver<Spawned>,
    unanswered: usize,
    /// Children answered for a worker the attempt does not have (it cannot happen: every worker
    /// is prepared before the answers are read; kept so that no child can ever leak).
    early: Vec<Child>,
    /// The failure will repeat on a retry (see [`StartFailure`]).
    hopeless: bool,
}

impl Attempt<'_> {
    /// Gives worker `k` its child: the bootstrap goes to the child's stdin (written here when
    /// small, else by the reader thread), the pid to the reader thread.
    fn launch(&mut self, k: usize, mut child: Child) {
        let Some(worker) = self.workers.get_mut(k) else {
            self.early.push(child);
            return;
        };
        let pid = child.id();
        let mut stdin = child.stdin.take();
        if let Some(input) = worker.input.take() {
            // At most PIPE_BUF bytes into a fresh pipe: this never blocks. A failed write means
            // the child already closed its stdin (it is exiting, or it is not a leasepool
            // worker): the wait sees it exit. Dropping the pipe closes it: the child reads to EOF.
            if let Some(mut pipe) = stdin.take() {
                let _ = pipe.write_all(&input);
            }
        }
        worker.pid = pid;
        worker.child = Some(child);
        if let Some(tx) = &worker.launch {
            let _ = tx.send(Launch { pid, stdin });
        }
    }

    /// Collects the reports until every worker is ready; fails on the first failure, on the
    /// deadline, or when a child that has not connected exits.
    fn wait(&mut self, reports: &Receiver<(usize, Report)>, deadline: Instant) -> Result<(), String> {
        let mut left = self.workers.len();
        while left > 0 {
            let now = Instant::now();
            if now >= deadline {
                let timeout = self.settings.options.start_timeout;
                let late = self.workers.iter().find(|w| !w.reported).expect("a worker is not ready");
                let reason = if late.connected.load(Ordering::Acquire) {
                    format!("worker {} was not ready within {timeout:?} (initializer too slow?)", late.pid)
                } else {
                    // Alive but silent: it is running the host program instead of serving.
                    self.hopeless = true;
                    format!(
                        "worker {} did not connect within {timeout:?}: the worker program must call \
                         leasepool::run_if_worker(..) first thing in main, before any other work",
                        late.pid
                    )
                };
                return Err(self.fail(reason));
            }
            match reports.recv_timeout(POLL.min(deadline - now)) {
                Ok((k, Report::Ready(requests))) => {
                    let worker = &mut self.workers[k];
                    worker.reported = true;
                    worker.requests = Some(requests);
                    left -= 1;
                }
                Ok((k, Report::Failed(failure))) => {
                    self.workers[k].reported = true;
                    let reason = self.explain(k, failure);
                    return Err(self.fail(reason));
                }
                Err(RecvTimeoutError::Timeout) => self.watch_children(),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.fail("a worker's reader thread ended without a report".into()))
                }
            }
        }
        Ok(())
    }

    /// A child that exited before connecting never will: unblock its accept (its thread then
    /// reports it abandoned, or what the child managed to say before it died).
    fn watch_children(&mut self) {
        for worker in self.workers.iter_mut().filter(|w| !w.reported && w.exited.is_none()) {
            if worker.connected.load(Ordering::Acquire) {
                continue; // its thread sees the death as a disconnect
            }
            if let Some(Ok(Some(status))) = worker.child.as_mut().map(Child::try_wait) {
                worker.exited = Some(exit_of(status));
                worker.abandon_accept();
            }
        }
    }

    /// The error for worker `k`'s failure.
    fn explain(&mut self, k: usize, failure: Failure) -> String {
        let worker = &mut self.workers[k];
        let pid = worker.pid;
        match failure {
            Failure::Rejected(reason) | Failure::InitFailed(reason) => reason,
            Failure::Accept(e) => format!("worker {pid} handshake failed: {e}"),
            Failure::Abandoned => match worker.exited {
                Some(exit) if exit == WorkerExit::Code(BOOTSTRAP_FAILED) => format!(
                    "worker {pid} could not complete the bootstrap ({exit}): a different leasepool protocol \
                     version, or it could not reach the parent; its stderr says which"
                ),
                Some(WorkerExit::Signal(signal)) => format!(
                    "worker {pid} was killed by signal {signal} before connecting (killed from outside, or it \
                     crashed while starting)"
                ),
                Some(exit) => {
                    // It ran to its end without serving: it is not a worker, and never will be.
                    self.hopeless = true;
                    format!(
                        "worker {pid} exited ({exit}) before connecting: it ran as a normal program; the worker \
                         program must call leasepool::run_if_worker(..) first thing in main"
                    )
                }
                None => format!("worker {pid} did not connect"),
            },
            Failure::Disconnected => {
                let deadline = Instant::now() + Duration::from_secs(2);
                let status = worker.child.as_mut().map_or(WorkerExit::Unknown, |c| reap_by(c, deadline));
                format!("worker {pid} exited ({status}) during setup")
            }
        }
    }

    /// Ends the attempt: every child killed and reaped (those the spawner has yet to answer for
    /// too), every pending accept unblocked, every reader thread's launch and hand-off dropped
    /// (so each thread ends). Returns `reason`.
    fn fail(&mut self, reason: String) -> String {
        for worker in &mut self.workers {
            worker.launch = None;
            worker.handoff = None;
            if !worker.reported {
                worker.abandon_accept();
            }
        }
        let mut children: Vec<Child> = self.workers.iter_mut().filter_map(|w| w.child.take()).collect();
        children.append(&mut self.early);
        while self.unanswered > 0 {
            match self.spawned.recv() {
                Ok((_, Ok(child))) => children.push(child),
                Ok((_, Err(_))) => {}
                Err(_) => break,
            }
            self.unanswered -= 1;
        }
        self.unanswered = 0;
        for mut child in children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.workers.clear();
        reason
    }

    fn into_started(mut self) -> Vec<Started> {
        std::mem::take(&mut self.workers)
            .into_iter()
            .map(|w| Started {
                child: w.child.expect("a ready worker was spawned"),
                pid: w.pid,
                requests: w.requests.expect("a ready worker sent its request channel"),
                reader: Reader(w.handoff.expect("the hand-off is kept until the attempt ends")),
            })
            .collect()
    }
}

impl Drop for Attempt<'_> {
    /// An attempt dropped before it succeeded (an early return) still leaves nothing behind.
    fn drop(&mut self) {
        if !self.workers.is_empty() || !self.early.is_empty() || self.unanswered > 0 {
            self.fail(String::new());
        }
    }
}

/// Waits (polling) until `child` exits or `deadline` passes, then kills it; returns how it ended.
pub(crate) fn reap_by(child: &mut Child, deadline: Instant) -> WorkerExit {
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

/// A worker's reader thread, before its worker is installed: the bootstrap side.
struct ReaderThread {
    /// The worker's place in its attempt, for the report.
    position: usize,
    server: IpcOneShotServer<Envelope<FromWorker>>,
    token: String,
    /// The encoded [`Bootstrap`], if this thread is to write it (else the spawner did).
    input: Option<Vec<u8>>,
    forward: Option<Forward>,
    connected: Arc<AtomicBool>,
    launch: Receiver<Launch>,
    report: Sender<(usize, Report)>,
    handoff: Receiver<ReaderJob>,
}

impl ReaderThread {
    fn run(self) {
        let ReaderThread { position, server, token, input, forward, connected, launch, report, handoff } = self;
        let mut pid = None;
        if let Some(input) = input {
            // No launch: the attempt failed before this worker's child existed.
            let Ok(Launch { pid: child, stdin }) = launch.recv() else { return };
            if let Some(mut stdin) = stdin {
                // A failed write means the child already closed its stdin (it is exiting, or it
                // is not a leasepool worker): the caller sees it exit and abandons the accept.
                let _ = stdin.write_all(&input);
            }
            pid = Some(child);
        }
        let outcome = server.accept().map_err(|e| Failure::Accept(e.to_string())).and_then(|(replies, hello)| {
            // The child's pid, to check the hello against (the spawner's answer may still be
            // on its way to the caller).
            let Some(pid) = pid.or_else(|| launch.recv().ok().map(|l| l.pid)) else {
                return Err(Failure::Abandoned);
            };
            setup(replies, hello, &token, pid, forward.as_ref(), &connected)
        });
        let (report_now, replies) = match outcome {
            Ok((replies, requests)) => (Report::Ready(requests), Some(replies)),
            Err(failure) => (Report::Failed(failure), None),
        };
        if report.send((position, report_now)).is_err() {
            return;
        }
        drop(report);
        if let (Some(replies), Ok(job)) = (replies, handoff.recv()) {
            job(replies);
        }
    }
}

/// Checks the child's hello (token and pid) and, if it has an initializer to run, waits for
/// `Ready`, re-emitting the log records the initializer produces.
fn setup(
    replies: Replies,
    hello: Envelope<FromWorker>,
    token: &str,
    pid: u32,
    forward: Option<&Forward>,
    connected: &AtomicBool,
) -> Result<(Replies, Requests), Failure> {
    let (requests, ready) = match hello.open() {
        Ok(FromWorker::Hello { token: t, pid: p, requests, ready }) if t == token && p == pid => (requests, ready),
        Ok(FromWorker::Hello { .. }) => {
            return Err(Failure::Rejected(format!("worker {pid} handshake rejected: wrong token or pid")))
        }
        Ok(FromWorker::Abandon) => return Err(Failure::Abandoned),
        Ok(other) => return Err(Failure::Rejected(format!("worker {pid} handshake failed: unexpected {other:?}"))),
        Err(v) => return Err(Failure::Rejected(format!("worker {pid} speaks protocol {v}, the parent {PROTOCOL}"))),
    };
    connected.store(true, Ordering::Release);
    if ready {
        return Ok((replies, requests));
    }
    loop {
        match replies.recv().map(Envelope::open) {
            Ok(Ok(FromWorker::Ready)) => return Ok((replies, requests)),
            Ok(Ok(FromWorker::Log(record))) => {
                if let Some(forward) = forward {
                    forward.emit(&record);
                }
            }
            Ok(Ok(FromWorker::InitFailed { reason })) => return Err(Failure::InitFailed(reason)),
            Ok(Ok(other)) => return Err(Failure::Rejected(format!("worker {pid} setup failed: unexpected {other:?}"))),
            Ok(Err(v)) => {
                return Err(Failure::Rejected(format!("worker {pid} speaks protocol {v}, the parent {PROTOCOL}")))
            }
            Err(_) => return Err(Failure::Disconnected),
        }
    }
}
