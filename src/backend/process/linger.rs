//! Receiving without falling asleep at once: [`recv`] polls a channel for a short window, yielding
//! the CPU between polls, before it blocks.
//!
//! Both ends of a worker's channels use it right after they handled a message, because the next
//! message of a busy exchange usually follows within microseconds: the reader thread that just
//! delivered a result expects the next result of the same caller, a worker that just replied
//! expects that caller's next request. A thread blocked in `recvmsg` needs a wake-up, and on this
//! project's VMs a wake-up costs from 2–3 µs to about 25 µs, depending on a host state that flips
//! on its own; a process round trip pays two or three of them in a row. A thread that is still
//! polling pays none. `yield_now` gives the CPU to any other runnable thread between polls, so the
//! window only costs CPU that nobody else wanted; after it, the thread blocks as before.

use std::time::{Duration, Instant};

use ipc_channel::ipc::IpcReceiver;
use ipc_channel::{IpcError, TryRecvError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// How long a worker or reader thread keeps polling after a message before it blocks. Long
/// enough to cover a whole round trip of a back-to-back caller, including a slow wake-up of the
/// caller itself (measured in `benches/process.rs`, see `docs/PERFORMANCE.md`).
pub(crate) const LINGER: Duration = Duration::from_micros(100);

/// Receives from `rx`: polls it (yielding between polls) for up to `linger`, then blocks.
pub(crate) fn recv<T>(rx: &IpcReceiver<T>, linger: Duration) -> Result<T, IpcError>
where
    T: DeserializeOwned + Serialize,
{
    if !linger.is_zero() {
        let until = Instant::now() + linger;
        loop {
            match rx.try_recv() {
                Ok(message) => return Ok(message),
                Err(TryRecvError::IpcError(e)) => return Err(e),
                Err(TryRecvError::Empty) if Instant::now() < until => std::thread::yield_now(),
                Err(TryRecvError::Empty) => break,
            }
        }
    }
    rx.recv()
}
