//! The worker side: [`run_if_worker`], called at the top of the host program's `main`.
//!
//! A worker is the host program re-executed (or a configured worker binary) with the
//! `LEASEPOOL_WORKER` marker in its environment. It reads its [`Bootstrap`] (the parent's one-shot
//! server name, the pool's token and its setup) from stdin, connects, says hello, sets itself up
//! (log forwarding, initializer), says ready, then serves requests one at a time until the parent
//! says `Exit` or disappears. It never outlives the parent: on Linux it asks for `SIGKILL`
//! when the parent dies, and on every platform it exits when its request channel disconnects.

use std::io::Read;
use std::sync::Arc;

use ipc_channel::ipc::{self, IpcReceiver, IpcSender};
use parking_lot::Mutex;

use super::linger::Linger;
use super::logs;
use super::registry::{decode, TaskRegistry};
use super::wire::{
    Bootstrap, Envelope, FromWorker, Outcome, ToWorker, BOOTSTRAP_FAILED, INIT_FAILED, PARENT_PID_ENV, PROTOCOL,
    WORKER_ENV,
};
use crate::util::{catch_panic, panic_message};

/// Runs the worker loop and exits if this process was started as a leasepool worker; returns at
/// once otherwise. Call it first thing in `main` of any program that uses the process backend
/// (and of a dedicated worker binary), with the registry of tasks the workers may run.
///
/// ```no_run
/// use leasepool::{run_if_worker, Task, TaskRegistry};
///
/// fn square(n: u64) -> u64 { n * n }
/// static SQUARE: Task<u64, u64> = Task::new("square", square);
///
/// fn main() {
///     run_if_worker(&TaskRegistry::new().register(&SQUARE));
///     // ... the parent's own work: build a process-backend manager, lease, run_task(&SQUARE, 7)
/// }
/// ```
///
/// Whatever `main` does before this call also runs in every worker (each worker is a fresh
/// start of the program), so call it first. Other "call me first" hooks (procspawn's `init`, for
/// example) can come right after it: each returns at once when its own marker is absent.
///
/// A worker exits with status 0 when told to or when its parent goes away, 70 when the
/// handshake fails and 71 when its initializer fails (after reporting why to the parent).
pub fn run_if_worker(registry: &TaskRegistry) {
    let Some(version) = std::env::var_os(WORKER_ENV) else { return };
    if version.to_str() != Some(&PROTOCOL.to_string()) {
        eprintln!("leasepool worker: the parent speaks protocol {version:?}, this binary speaks {PROTOCOL}");
        std::process::exit(BOOTSTRAP_FAILED);
    }
    guard_against_orphaning();
    let code = match serve(registry) {
        Ok(code) => code,
        Err(reason) => {
            eprintln!("leasepool worker {}: {reason}", std::process::id());
            BOOTSTRAP_FAILED
        }
    };
    std::process::exit(code);
}

/// On Linux: ask for SIGKILL when the parent dies, then make sure it has not died already (the
/// parent's pid is in the environment). Elsewhere the channel disconnect is what ends a worker.
fn guard_against_orphaning() {
    #[cfg(target_os = "linux")]
    {
        let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
        let expected = std::env::var(PARENT_PID_ENV).ok().and_then(|p| p.parse::<i32>().ok());
        if expected.is_some_and(|pid| nix::unistd::getppid().as_raw() != pid) {
            std::process::exit(0);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = PARENT_PID_ENV;
}

fn serve(registry: &TaskRegistry) -> Result<i32, String> {
    let mut bytes = Vec::new();
    std::io::stdin().lock().read_to_end(&mut bytes).map_err(|e| format!("cannot read the bootstrap: {e}"))?;
    let boot: Bootstrap = decode(&bytes).map_err(|e| format!("malformed bootstrap: {e}"))?;
    let tx = IpcSender::<Envelope<FromWorker>>::connect(boot.server)
        .map_err(|e| format!("cannot connect to the parent: {e}"))?;
    let (requests, rx): (IpcSender<Envelope<ToWorker>>, IpcReceiver<Envelope<ToWorker>>) =
        ipc::channel().map_err(|e| format!("cannot create the request channel: {e}"))?;
    let tx = Arc::new(Mutex::new(tx));
    let send = |msg: FromWorker| tx.lock().send(Envelope::new(msg)).is_ok();

    // Hello first, so that nothing (a log record) can come before it. Without an initializer the
    // worker is ready as it says hello (the rest of the setup takes no time, and a request that
    // arrives meanwhile waits in the channel); with one, how the initializer went follows, after
    // the records it logged.
    let ready = boot.initializer.is_none();
    let hello = FromWorker::Hello { token: boot.token, pid: std::process::id(), requests, ready };
    tx.lock().send(Envelope::new(hello)).map_err(|e| format!("cannot say hello: {e}"))?;
    // Setup, without waiting for the parent: it is in the bootstrap.
    if let Some(level) = boot.log_level {
        logs::install(Arc::clone(&tx), logs::level_from_index(level));
        // Panic reports go to the log too, so they reach the parent with the rest.
        std::panic::set_hook(Box::new(|info| {
            let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            let message = panic_message(info.payload());
            log::error!(target: "leasepool::worker", "task panicked{at}: {message}");
        }));
    }
    if let Some((name, args)) = boot.initializer {
        if let Err(reason) = initialize(registry, &name, &args) {
            send(FromWorker::InitFailed { reason });
            return Ok(INIT_FAILED);
        }
        if !send(FromWorker::Ready) {
            return Ok(0);
        }
    }

    // After a task, poll briefly: a busy caller's next request is usually already on its way.
    let mut linger = Linger::new();
    loop {
        // The parent gone (disconnect) or speaking another protocol: nothing left to serve.
        let Ok(envelope) = linger.recv(&rx) else { return Ok(0) };
        let Ok(request) = envelope.open() else { return Ok(BOOTSTRAP_FAILED) };
        match request {
            ToWorker::Run { id, task, input } => {
                let outcome = registry.run(&task, &input);
                if !send(FromWorker::Done { id, outcome }) {
                    return Ok(0);
                }
            }
            ToWorker::Ping { nonce } => {
                if !send(FromWorker::Pong { nonce }) {
                    return Ok(0);
                }
            }
            ToWorker::Exit => return Ok(0),
        }
    }
}

/// Runs the registered initializer `name`: it must be a task whose output is
/// `Result<(), String>`.
fn initialize(registry: &TaskRegistry, name: &str, args: &[u8]) -> Result<(), String> {
    let outcome = catch_panic(|| registry.run(name, args)).unwrap_or_else(Outcome::Panicked);
    match outcome {
        Outcome::Value(bytes) => match decode::<Result<(), String>>(&bytes) {
            Ok(result) => result.map_err(|e| format!("initializer {name:?} failed: {e}")),
            Err(e) => Err(format!("initializer {name:?} must return Result<(), String>: {e}")),
        },
        Outcome::Panicked(message) => Err(format!("initializer {name:?} panicked: {message}")),
        Outcome::UnknownTask => Err(format!("initializer {name:?} is not registered in the worker")),
        Outcome::TypeMismatch => {
            Err(format!("initializer {name:?}: the parent and the worker disagree on its argument type"))
        }
        Outcome::InvalidInput(e) => Err(format!("initializer {name:?} could not decode its arguments: {e}")),
        Outcome::InvalidOutput(e) => Err(format!("initializer {name:?} could not encode its result: {e}")),
    }
}
