//! Starting one worker process: the spawner thread, the random token, and the bootstrap
//! handshake, all against a deadline.
//!
//! Every child is spawned from one long-lived thread, `leasepool-spawner`: Linux delivers the
//! parent-death signal when the *thread* that spawned a child exits, so spawning from a caller's
//! short-lived thread would kill its workers with it.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, RecvTimeoutError, Sender};
use ipc_channel::ipc::{IpcOneShotServer, IpcReceiver, IpcSender};
use ipc_channel::TryRecvError;
use parking_lot::Mutex;

use super::logs;
use super::wire::{Envelope, FromWorker, ToWorker, PARENT_PID_ENV, PROTOCOL, WORKER_ENV};
use super::{exit_of, Settings, WorkerExit};

type SpawnRequest = (Command, Sender<std::io::Result<Child>>);

/// How often a waiting bootstrap checks whether the child already died.
const POLL: Duration = Duration::from_millis(10);

/// A worker that finished its handshake and setup.
pub(crate) struct Started {
    pub child: Child,
    pub pid: u32,
    pub requests: IpcSender<Envelope<ToWorker>>,
    pub replies: IpcReceiver<Envelope<FromWorker>>,
}

/// Spawns `command` on the spawner thread.
fn spawn_child(command: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::unbounded::<SpawnRequest>();
        // If the thread cannot be created, the requests fail below with a disconnected channel.
        let _ = std::thread::Builder::new().name("leasepool-spawner".into()).spawn(move || {
            for (mut command, reply) in rx {
                let _ = reply.send(command.spawn());
            }
        });
        Mutex::new(tx)
    });
    let (reply_tx, reply) = channel::bounded(1);
    let sent = spawner.lock().send((command, reply_tx));
    let gone = || std::io::Error::other("the leasepool-spawner thread is gone");
    sent.map_err(|_| gone())?;
    reply.recv().map_err(|_| gone())?
}

/// 128 random bits as hex, from the OS (with std's randomly keyed hasher as a fallback).
fn random_token() -> String {
    let mut bytes = [0u8; 16];
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
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts one worker: spawn, hand it the server name and token on stdin, accept its hello (with
/// a deadline: ipc-channel's accept cannot time out, so it runs on a helper thread that is
/// unblocked if the child never connects), then set it up (log forwarding, initializer) and wait
/// for `Ready`. A child that fails any step is killed and reaped; the error says why.
pub(crate) fn start_worker(settings: &Settings, index: usize) -> Result<Started, String> {
    if std::env::var_os(WORKER_ENV).is_some() {
        return Err("this process is itself a leasepool worker: call leasepool::run_if_worker(..) at the top of \
                    main, before any manager is built"
            .into());
    }
    let options = &settings.options;
    let deadline = Instant::now() + options.start_timeout;
    let (server, name) = IpcOneShotServer::<Envelope<FromWorker>>::new()
        .map_err(|e| format!("cannot create the bootstrap server: {e}"))?;
    let token = random_token();

    let mut command = match &options.program {
        super::WorkerProgram::CurrentExe => {
            Command::new(std::env::current_exe().map_err(|e| format!("cannot locate the current executable: {e}"))?)
        }
        super::WorkerProgram::Path { path, args } => {
            let mut c = Command::new(path);
            c.args(args);
            c
        }
    };
    command
        .env(WORKER_ENV, PROTOCOL.to_string())
        .env(PARENT_PID_ENV, std::process::id().to_string())
        .envs(options.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped());
    if let Some(dir) = &options.cwd {
        command.current_dir(dir);
    }
    let mut child = spawn_child(command).map_err(|e| format!("cannot spawn worker {index}: {e}"))?;
    let pid = child.id();
    let fail = |child: &mut Child, reason: String| -> String {
        let _ = child.kill();
        let _ = child.wait();
        reason
    };

    if let Some(mut stdin) = child.stdin.take() {
        // A failed write means the child already closed its stdin (it is exiting, or it is not a
        // leasepool worker): the wait below reports how it ended, or times out.
        let _ = writeln!(stdin, "{name} {token}");
    }

    // Accept on a helper thread; wait for it with the deadline, watching the child meanwhile.
    let (accepted_tx, accepted) = channel::bounded(1);
    let acceptor = std::thread::Builder::new().name(format!("{}-accept", settings.name_prefix)).spawn(move || {
        let _ = accepted_tx.send(server.accept());
    });
    if let Err(e) = acceptor {
        return Err(fail(&mut child, format!("cannot spawn the accept thread: {e}")));
    }
    let unblock_accept = || {
        if let Ok(tx) = IpcSender::<Envelope<FromWorker>>::connect(name.clone()) {
            let _ = tx.send(Envelope::new(FromWorker::Abandon));
        }
    };
    let (replies, hello) = loop {
        match accepted.recv_timeout(POLL) {
            Ok(Ok(pair)) => break pair,
            Ok(Err(e)) => return Err(fail(&mut child, format!("worker {pid} handshake failed: {e}"))),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(fail(&mut child, format!("worker {pid} handshake failed: accept thread died")))
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        if let Ok(Some(status)) = child.try_wait() {
            unblock_accept();
            let exit = exit_of(status);
            return Err(if exit == WorkerExit::Code(super::child::BOOTSTRAP_FAILED) {
                format!(
                    "worker {pid} could not complete the bootstrap ({exit}): a different leasepool protocol \
                     version, or it could not reach the parent; its stderr says which"
                )
            } else {
                format!(
                    "worker {pid} exited ({exit}) before connecting; does the worker program call \
                     leasepool::run_if_worker(..) at the top of main?"
                )
            });
        }
        if Instant::now() >= deadline {
            unblock_accept();
            return Err(fail(&mut child, format!("worker {pid} did not connect within {:?}", options.start_timeout)));
        }
    };
    let requests = match hello.open() {
        Ok(FromWorker::Hello { token: t, pid: p, requests }) if t == token && p == pid => requests,
        Ok(FromWorker::Hello { .. }) => {
            return Err(fail(&mut child, format!("worker {pid} handshake rejected: wrong token or pid")))
        }
        Ok(other) => return Err(fail(&mut child, format!("worker {pid} handshake failed: unexpected {other:?}"))),
        Err(v) => return Err(fail(&mut child, format!("worker {pid} speaks protocol {v}, the parent {PROTOCOL}"))),
    };

    let setup = ToWorker::Setup {
        log_level: settings.forward.as_ref().map(|(level, _)| logs::level_index(*level)),
        initializer: options.initializer.as_ref().map(|i| (i.task.to_owned(), i.args.clone())),
    };
    if let Err(e) = requests.send(Envelope::new(setup)) {
        return Err(fail(&mut child, format!("cannot set worker {pid} up: {e}")));
    }
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let reply = replies.try_recv_timeout(left.max(Duration::from_millis(1)));
        match reply.map(Envelope::open) {
            Ok(Ok(FromWorker::Ready)) => return Ok(Started { child, pid, requests, replies }),
            Ok(Ok(FromWorker::Log(record))) => settings.emit(&record),
            Ok(Ok(FromWorker::InitFailed { reason })) => return Err(fail(&mut child, reason)),
            Ok(Ok(other)) => return Err(fail(&mut child, format!("worker {pid} setup failed: unexpected {other:?}"))),
            Ok(Err(v)) => {
                return Err(fail(&mut child, format!("worker {pid} speaks protocol {v}, the parent {PROTOCOL}")))
            }
            Err(TryRecvError::Empty) => {
                return Err(fail(
                    &mut child,
                    format!("worker {pid} was not ready within {:?} (initializer too slow?)", options.start_timeout),
                ))
            }
            Err(TryRecvError::IpcError(_)) => {
                let status = child.wait().map(exit_of).unwrap_or(WorkerExit::Unknown);
                return Err(format!("worker {pid} exited ({status}) during setup"));
            }
        }
    }
}
