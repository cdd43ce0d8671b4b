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
pub(crate) const PROTOCOL: u16 = 1;

/// The environment variable that marks a process as a leasepool worker. Its value is the
/// protocol version the parent speaks.
pub(crate) const WORKER_ENV: &str = "LEASEPOOL_WORKER";
/// The parent's pid, so a worker can tell whether it was orphaned before it set its
/// parent-death signal.
pub(crate) const PARENT_PID_ENV: &str = "LEASEPOOL_PARENT_PID";

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
    /// Sent once, right after the handshake: install log forwarding (at this level, as a
    /// `log::LevelFilter` index) and run the initializer, then answer `Ready` or `InitFailed`.
    Setup { log_level: Option<u8>, initializer: Option<(String, Vec<u8>)> },
    /// Run one registered task (the name is borrowed from the parent's `Task` static: no
    /// allocation per request).
    Run { id: u64, task: Cow<'static, str>, input: Vec<u8> },
    /// Exit cleanly.
    Exit,
}

/// Worker → parent (over the channel the worker connected to the parent's one-shot server).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// The handshake: the pool's token, the worker's pid and where to send requests.
    Hello { token: String, pid: u32, requests: IpcSender<Envelope<ToWorker>> },
    /// Sent by the parent itself to unblock a one-shot server whose child never connected.
    Abandon,
    /// Setup is done; the worker takes tasks.
    Ready,
    /// The initializer failed (error or panic); the worker exits after sending this.
    InitFailed { reason: String },
    /// A task finished.
    Done { id: u64, outcome: Outcome },
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
