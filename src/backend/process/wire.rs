//! The wire protocol between a parent and its worker processes: our own versioned envelope
//! around plain enums, carried by ipc-channel (whose version is pinned in `Cargo.toml`).
//!
//! Every message travels as an [`Envelope`] stamped with [`PROTOCOL`]. A side that receives a
//! message with another version treats the peer as broken (the parent retires the pool with a
//! "protocol mismatch" reason; a worker exits), so a stale worker binary can never misread a
//! request.

use std::borrow::Cow;

use ipc_channel::ipc::IpcSender;
use serde::{Deserialize, Serialize};

/// The protocol version both sides must speak. Bump it on any change to the messages below.
/// (2: the setup travels in the [`Bootstrap`] on stdin instead of a `Setup` round trip; 3: task
/// requests start with a type fingerprint, and `Outcome::TypeMismatch`; 4: `ToWorker::Ping` and
/// `FromWorker::Pong`, the liveness check a parent makes of a pool's idle workers when it hands
/// the pool out: a worker of protocol 3 would not know the request.)
pub(crate) const PROTOCOL: u16 = 4;

/// The environment variable that marks a process as a leasepool worker. Its value is the
/// protocol version the parent speaks.
pub(crate) const WORKER_ENV: &str = "LEASEPOOL_WORKER";
/// The parent's pid, so a worker can tell whether it was orphaned before it set its
/// parent-death signal.
pub(crate) const PARENT_PID_ENV: &str = "LEASEPOOL_PARENT_PID";

/// Exit code of a worker that could not complete the bootstrap (wrong protocol version, no
/// parent to reach).
pub(crate) const BOOTSTRAP_FAILED: i32 = 70;
/// Exit code of a worker whose initializer failed (after it reported why).
pub(crate) const INIT_FAILED: i32 = 71;

/// What a worker reads from its stdin (postcard, up to EOF) before anything else: where to
/// connect, the token that proves it is the process the parent spawned, and its setup. Sending
/// the setup here, rather than over the channel after the hello, saves a round trip per worker:
/// the worker sets itself up and says `Hello` (and, after an initializer, `Ready`) without waiting
/// for the parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Bootstrap {
    /// The parent's one-shot server.
    pub server: String,
    /// 128 random bits as hex, echoed in the hello.
    pub token: String,
    /// Install log forwarding at this level (a `log::LevelFilter` index).
    pub log_level: Option<u8>,
    /// Run this registered initializer with these serialized arguments before `Ready`.
    pub initializer: Option<(Cow<'static, str>, Vec<u8>)>,
}

/// A message with the protocol version it was written for.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope<T> {
    pub version: u16,
    pub body: T,
}

impl<T> Envelope<T> {
    pub(crate) fn new(body: T) -> Self {
        Envelope { version: PROTOCOL, body }
    }

    /// The body, if the version matches ours.
    pub(crate) fn open(self) -> Result<T, u16> {
        if self.version == PROTOCOL {
            Ok(self.body)
        } else {
            Err(self.version)
        }
    }
}

/// Parent → worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// Run one registered task (the name is borrowed from the parent's `Task` static: no
    /// allocation per request).
    Run { id: u64, task: Cow<'static, str>, input: Vec<u8> },
    /// Answer at once with `Pong` carrying the same nonce (sent to idle workers only: a busy
    /// worker answers after its task).
    Ping { nonce: u64 },
    /// Exit cleanly.
    Exit,
}

/// Worker → parent (over the channel the worker connected to the parent's one-shot server).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// The handshake: the pool's token, the worker's pid and where to send requests. `ready`
    /// when there is no initializer to run (no `Ready` follows then).
    Hello { token: String, pid: u32, requests: IpcSender<Envelope<ToWorker>>, ready: bool },
    /// Sent by the parent itself to unblock a one-shot server whose child never connected.
    Abandon,
    /// The initializer (see [`Bootstrap`]) succeeded; the worker takes tasks.
    Ready,
    /// The initializer failed (error or panic); the worker exits after sending this.
    InitFailed { reason: String },
    /// A task finished.
    Done { id: u64, outcome: Outcome },
    /// The answer to `Ping`.
    Pong { nonce: u64 },
    /// A log record, forwarded.
    Log(LogRecord),
}

/// How a task ended inside the worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// The serialized output.
    Value(Vec<u8>),
    /// The task panicked (the worker lives on).
    Panicked(String),
    /// No task of that name is registered in the worker.
    UnknownTask,
    /// The request's type fingerprint differs from the worker's task (see `fingerprint.rs`).
    TypeMismatch,
    /// The input did not deserialize into the task's input type.
    InvalidInput(String),
    /// The output did not serialize.
    InvalidOutput(String),
}

/// A `log` record made plain for the trip to the parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LogRecord {
    /// `log::Level as usize` (1 = error … 5 = trace).
    pub level: u8,
    pub target: String,
    pub message: String,
    pub module_path: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub pid: u32,
}
