//! `loom` models of the waiter protocol (run with `RUSTFLAGS="--cfg loom"`).
//!
//! They drive the real code: the real [`State`] and the real waiter [`Entry`] (its `poll`,
//! `wait`, `poll_with` and `cancel`, and its `Signal`), over loom's mutex, condition variable
//! and atomics (see `sync.rs`). Only the queue's owner is a stand-in: one pool, and effects that
//! just wake the signals the state names. loom explores every interleaving and fails on a
//! deadlock (a waiter sleeping forever) or an assertion: a lost pool, a lease taken by a
//! cancelled entry, a waiter left queued.

use std::task::Poll;
use std::time::Instant;

use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
use loom::thread;

use crate::state::{Effects, Grant, LeaseRequest, State};
use crate::sync::Mutex;
use crate::waiter::{Ended, Entry, Queue, Signal};

/// A one-pool manager stand-in: the real state behind the real lock.
struct Model {
    state: Mutex<State<u32, std::sync::Arc<Signal>>>,
}

impl Queue for Model {
    type Pool = u32;

    fn state(&self) -> &Mutex<State<u32, std::sync::Arc<Signal>>> {
        &self.state
    }

    fn apply(self: &std::sync::Arc<Self>, effects: Effects<u32, std::sync::Arc<Signal>>) {
        assert_eq!(effects.build.total(), 0, "one pool, never rebuilt");
        for signal in effects.woken {
            signal.wake();
        }
    }
}

/// `fairness` in microseconds: 0 is strict hand-off, a large bound lets callers barge.
fn model(fairness_us: u64) -> std::sync::Arc<Model> {
    let mut state = State::new(1, 1, std::time::Duration::from_micros(fairness_us), Instant::now());
    state.start(vec![7], 1);
    std::sync::Arc::new(Model { state: Mutex::new(state) })
}

fn request() -> LeaseRequest {
    LeaseRequest { owner: None, duration: std::time::Duration::from_secs(60), grace: std::time::Duration::ZERO }
}

fn acquire(m: &std::sync::Arc<Model>) -> Grant<u32> {
    Entry::new(std::sync::Arc::clone(m), request()).wait(None, || false).expect("a patient waiter gets the pool")
}

fn release(m: &std::sync::Arc<Model>, grant: Grant<u32>) {
    grant.release();
    let effects = m.state.lock().finalize(grant.info.id, Instant::now());
    m.apply(effects);
}

fn assert_settled(m: &Model) {
    let st = m.state.lock();
    assert_eq!((st.available(), st.leased(), st.waiting(), st.creating()), (1, 0, 0, 0), "nothing lost, nobody queued");
}

/// A blocking waiter, a waiter whose timeout fires at any point, and a release: the pool is
/// never lost, the quitter never keeps a lease it gave up on, and the patient waiter is served.
#[test]
fn a_timeout_at_any_point_never_loses_the_pool() {
    for fairness in [0, 1_000_000] {
        loom::model(move || {
            let m = model(fairness);
            let held = acquire(&m);
            let waiter = {
                let m = std::sync::Arc::clone(&m);
                thread::spawn(move || {
                    let grant = acquire(&m);
                    assert_eq!(grant.pool, 7);
                    release(&m, grant);
                })
            };
            let quitter = {
                let m = std::sync::Arc::clone(&m);
                thread::spawn(move || {
                    // A deadline already passed: under loom the timed park returns at once, so
                    // the timeout fires after any look, racing with the release.
                    match Entry::new(std::sync::Arc::clone(&m), request()).wait(Some(Instant::now()), || false) {
                        Ok(grant) => release(&m, grant),
                        Err(ended) => assert_eq!(ended, Ended::TimedOut),
                    }
                })
            };
            release(&m, held);
            waiter.join().unwrap();
            quitter.join().unwrap();
            assert_settled(&m);
        });
    }
}

/// An async waiter (polled with a waker by loom's executor) and a blocking waiter share the one
/// queue: both are served, one after the other, whatever the interleaving.
#[test]
fn waker_and_blocking_waiters_share_one_queue() {
    loom::model(|| {
        let m = model(0);
        let held = acquire(&m);
        let blocking = {
            let m = std::sync::Arc::clone(&m);
            thread::spawn(move || release(&m, acquire(&m)))
        };
        let future = {
            let m = std::sync::Arc::clone(&m);
            thread::spawn(move || {
                let mut entry = Entry::new(std::sync::Arc::clone(&m), request());
                let grant = loom::future::block_on(std::future::poll_fn(|cx| entry.poll_with(cx.waker())));
                release(&m, grant.expect("served"));
            })
        };
        release(&m, held);
        blocking.join().unwrap();
        future.join().unwrap();
        assert_settled(&m);
    });
}

/// A future dropped at any moment (before its first poll, while queued, or just as the pool is
/// handed to it) never takes the lease and never swallows the hand-off: the blocking waiter
/// behind it still gets the pool.
#[test]
fn dropping_a_polled_entry_at_any_point_passes_the_pool_on() {
    loom::model(|| {
        let m = model(0);
        let held = acquire(&m);
        let dropped = {
            let m = std::sync::Arc::clone(&m);
            thread::spawn(move || {
                let mut entry = Entry::new(std::sync::Arc::clone(&m), request());
                let waker = futures_noop_waker();
                if let Poll::Ready(Ok(grant)) = entry.poll_with(&waker) {
                    release(&m, grant);
                }
                drop(entry); // may race with the hand-off below
            })
        };
        let patient = {
            let m = std::sync::Arc::clone(&m);
            thread::spawn(move || release(&m, acquire(&m)))
        };
        release(&m, held);
        dropped.join().unwrap();
        patient.join().unwrap();
        assert_settled(&m);
    });
}

/// An interrupt fired while the waiter parks always wakes it (the signal remembers the wake-up),
/// and the interrupted entry takes nothing.
#[test]
fn an_interrupt_always_wakes_a_queued_acquire() {
    loom::model(|| {
        let m = model(0);
        let held = acquire(&m);
        let fired = std::sync::Arc::new(AtomicBool::new(false));
        let (tx, rx) = loom::sync::mpsc::channel::<std::sync::Arc<Signal>>();
        let waiter = {
            let (m, fired) = (std::sync::Arc::clone(&m), std::sync::Arc::clone(&fired));
            thread::spawn(move || {
                let mut entry = Entry::new(std::sync::Arc::clone(&m), request());
                tx.send(std::sync::Arc::clone(entry.signal())).unwrap();
                entry.wait(None, || fired.load(SeqCst)).map(|g| g.pool)
            })
        };
        let signal = rx.recv().unwrap();
        fired.store(true, SeqCst);
        signal.wake();
        // The pool stays held until the waiter is back: only the interrupt can end its wait.
        assert_eq!(waiter.join().unwrap(), Err(Ended::Interrupted));
        release(&m, held);
        assert_settled(&m);
    });
}

/// A waker that does nothing (the dropped entry is never polled again).
fn futures_noop_waker() -> std::task::Waker {
    std::task::Waker::noop().clone()
}
