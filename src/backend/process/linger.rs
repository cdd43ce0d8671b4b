//! Receiving without falling asleep at once: a [`Linger`] polls a channel for a short window,
//! yielding the CPU between polls, before it blocks.
//!
//! Both ends of a worker's channels linger right after they handled a message, because the next
//! message of a busy exchange usually follows within microseconds: the reader thread that just
//! delivered a result expects the next result of the same caller, a worker that just replied
//! expects that caller's next request. A thread blocked in `recvmsg` needs a wake-up, and on this
//! project's VMs a wake-up costs from a few µs to about 25 µs, depending on a host state that
//! flips on its own; a process round trip pays two or three of them in a row. A thread that is
//! still polling pays none. `yield_now` gives the CPU to any other runnable thread between polls,
//! so on idle CPUs the window only costs CPU that nobody wanted.
//!
//! On a busy CPU it is the other way round: a yield hands the CPU to a competing thread for its
//! whole time slice, while a blocked thread that a message wakes gets the scheduler's wake-up
//! preference. So a yield that kept the thread away for longer than [`CONTENDED`] ends the
//! window, and the thread then blocks at once for [`QUIET`] before it tries lingering again.

use std::time::{Duration, Instant};

use ipc_channel::ipc::IpcReceiver;
use ipc_channel::{IpcError, TryRecvError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// How long a worker or reader thread keeps polling after a message before it blocks: long enough
/// to cover a whole round trip of a back-to-back caller, including a slow wake-up of the caller
/// itself (measured in `benches/process.rs`, see `docs/PERFORMANCE.md`).
pub(crate) const WINDOW: Duration = Duration::from_micros(100);

/// A yield longer than this means another thread wanted the CPU.
const CONTENDED: Duration = Duration::from_micros(200);

/// How long a thread that saw a contended CPU blocks at once instead of lingering.
const QUIET: Duration = Duration::from_millis(50);

/// One receiving thread's lingering state.
pub(crate) struct Linger {
    /// The next receive blocks at once (a first message may never come).
    armed: bool,
    /// Until then, every receive blocks at once (the CPU was contended).
    quiet_until: Option<Instant>,
}

impl Linger {
    /// A linger whose first receive blocks at once.
    pub(crate) fn new() -> Linger {
        Linger { armed: false, quiet_until: None }
    }

    /// Receives from `rx`: right after a message, polls it (yielding between polls) for up to
    /// [`WINDOW`], then blocks.
    pub(crate) fn recv<T>(&mut self, rx: &IpcReceiver<T>) -> Result<T, IpcError>
    where
        T: DeserializeOwned + Serialize,
    {
        if std::mem::replace(&mut self.armed, true) && self.quiet_until.is_none_or(|q| Instant::now() >= q) {
            self.quiet_until = None;
            let until = Instant::now() + WINDOW;
            loop {
                // A zero timeout is one `poll` per empty look (`try_recv` costs three syscalls).
                match rx.try_recv_timeout(Duration::ZERO) {
                    Ok(message) => return Ok(message),
                    Err(TryRecvError::IpcError(e)) => return Err(e),
                    Err(TryRecvError::Empty) => {
                        let now = Instant::now();
                        if now >= until {
                            break;
                        }
                        std::thread::yield_now();
                        if now.elapsed() > CONTENDED {
                            self.quiet_until = Some(Instant::now() + QUIET);
                            break;
                        }
                    }
                }
            }
        }
        rx.recv()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::{Duration, Instant};

    use crossbeam::channel::bounded;
    use ipc_channel::ipc;

    use super::Linger;

    /// Whether thread `tid` of this process is asleep (blocked), per `/proc`.
    fn asleep(tid: i32) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
        stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('S'))
    }

    #[test]
    fn a_message_after_the_window_still_arrives_and_a_disconnect_ends_the_wait() {
        let (tx, rx) = ipc::channel::<u32>().unwrap();
        let (got_tx, got) = bounded(4);
        let receiver = std::thread::spawn(move || {
            got_tx.send(Err(nix::unistd::gettid().as_raw())).unwrap();
            let mut linger = Linger::new();
            while let Ok(n) = linger.recv(&rx) {
                got_tx.send(Ok(n)).unwrap();
            }
            got_tx.send(Ok(0)).unwrap(); // disconnected
        });
        let Ok(Err(tid)) = got.recv_timeout(Duration::from_secs(10)) else { panic!("no tid") };
        tx.send(1).unwrap();
        assert_eq!(got.recv_timeout(Duration::from_secs(10)).unwrap(), Ok(1));
        // Now it lingers, then blocks: send only once it sleeps, past its window.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !asleep(tid) {
            assert!(Instant::now() < deadline, "the receiver never went to sleep");
            std::thread::yield_now();
        }
        tx.send(2).unwrap();
        assert_eq!(got.recv_timeout(Duration::from_secs(10)).unwrap(), Ok(2));
        drop(tx);
        assert_eq!(got.recv_timeout(Duration::from_secs(10)).unwrap(), Ok(0));
        receiver.join().unwrap();
    }

    #[test]
    fn messages_sent_while_it_lingers_arrive_in_order() {
        let (tx, rx) = ipc::channel::<u32>().unwrap();
        let sender = std::thread::spawn(move || {
            for n in 0..1000 {
                tx.send(n).unwrap();
            }
        });
        let mut linger = Linger::new();
        let got: Vec<u32> = (0..1000).map(|_| linger.recv(&rx).unwrap()).collect();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
        sender.join().unwrap();
        assert!(linger.recv(&rx).is_err(), "the sender is gone");
    }
}
