//! The deadline thread: one long-lived thread, `leasepool-deadlines`, that runs a callback once
//! its deadline has passed. It keeps the time limits of the process tasks submitted with a
//! timeout, for every pool of every manager.
//!
//! One thread for all, started on first use, rather than a thread per task or per pool: it
//! sleeps until the nearest deadline (or the next new one) on a channel receive with a timeout,
//! so it costs nothing while no timed task is running and never polls. A task that finishes in
//! time leaves its entry behind until the deadline passes; the callback then finds nothing to do
//! (it checks what the worker is running under its pool's lock).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::time::Instant;

use crossbeam::channel::{self, RecvTimeoutError, Sender};

use crate::util::catch_panic;

/// A callback waiting for its deadline.
struct Due {
    at: Instant,
    /// Arrival order, so that equal deadlines fire first come first served.
    seq: u64,
    expire: Box<dyn FnOnce() + Send>,
}

/// Runs `expire` on the deadline thread once `at` has passed (soon after, never before). It must
/// be quick and must not block: every other deadline waits behind it.
///
/// If the thread cannot be created, `expire` runs at once on this thread: a time limit is a
/// promise to a caller, and a deadline nobody keeps would never fire.
pub(crate) fn run_at(at: Instant, expire: impl FnOnce() + Send + 'static) {
    let due = Due { at, seq: 0, expire: Box::new(expire) };
    if let Err(unsent) = thread().send(due) {
        (unsent.into_inner().expire)();
    }
}

/// The deadline thread's intake, started on first use.
fn thread() -> &'static Sender<Due> {
    static DEADLINES: OnceLock<Sender<Due>> = OnceLock::new();
    DEADLINES.get_or_init(|| {
        let (tx, rx) = channel::unbounded::<Due>();
        // If the thread cannot be created, `rx` is dropped with its closure and every send fails.
        let _ = std::thread::Builder::new().name("leasepool-deadlines".into()).spawn(move || keep(&rx));
        tx
    })
}

/// The deadline thread's loop: take in every new deadline, run the earliest one if it is due,
/// else sleep until it is (or a new one arrives).
fn keep(intake: &channel::Receiver<Due>) {
    let mut waiting = BinaryHeap::new();
    let mut arrivals = 0u64;
    let mut take_in = |waiting: &mut BinaryHeap<Due>, mut due: Due| {
        arrivals += 1;
        due.seq = arrivals;
        waiting.push(due);
    };
    loop {
        while let Ok(due) = intake.try_recv() {
            take_in(&mut waiting, due);
        }
        if waiting.peek().is_some_and(|due| due.at <= Instant::now()) {
            let due = waiting.pop().expect("peeked");
            if let Err(message) = catch_panic(due.expire) {
                log::error!(target: "leasepool", "a process task's deadline callback panicked: {message}");
            }
            continue;
        }
        let received = match waiting.peek() {
            Some(next) => intake.recv_timeout(next.at.saturating_duration_since(Instant::now())),
            None => intake.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(due) => take_in(&mut waiting, due),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

// `BinaryHeap` is a max-heap: the earliest deadline (then the earliest arrival) is the greatest.
impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at).then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Due {}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn callbacks_run_after_their_deadline_in_deadline_order() {
        // Hold the thread in a callback until every entry is in, so that the order does not
        // depend on how fast the entries arrive.
        let (open, gate) = mpsc::channel::<()>();
        run_at(Instant::now(), move || gate.recv_timeout(Duration::from_secs(10)).unwrap());
        let (tx, rx) = mpsc::channel();
        let base = Instant::now();
        for (k, ms) in [(0, 30u64), (1, 10), (2, 20), (3, 10)] {
            let tx = tx.clone();
            let at = base + Duration::from_millis(ms);
            run_at(at, move || tx.send((k, Instant::now() >= at)).unwrap());
        }
        open.send(()).unwrap();
        let order: Vec<(i32, bool)> = (0..4).map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
        assert_eq!(order, [(1, true), (3, true), (2, true), (0, true)]);
    }

    #[test]
    fn a_panicking_callback_does_not_stop_the_thread() {
        run_at(Instant::now(), || panic!("deadline callback panics on purpose"));
        let (tx, rx) = mpsc::channel();
        run_at(Instant::now() + Duration::from_millis(5), move || tx.send(()).unwrap());
        rx.recv_timeout(Duration::from_secs(10)).expect("the thread lives on");
    }
}
