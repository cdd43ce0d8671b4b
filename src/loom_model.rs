//! A `loom` model of the waiter hand-off protocol (run with `RUSTFLAGS="--cfg loom"`).
//!
//! It drives the real [`State`] with loom's `Mutex` and `Condvar`, using the same steps as the
//! manager's `acquire` and `release`: try, enqueue, check for a delivery before every wait and
//! before giving up, and notify only the waiters that `State` reports as served. loom explores
//! every interleaving and fails on a deadlock (a waiter sleeping forever) or a lost pool. A second
//! model checks the `Interrupt` protocol: `fire` notifies under the state lock, so a waiter that
//! checked the flag just before sleeping is still woken (without the lock, loom finds the lost
//! wake-up).

use std::time::{Duration, Instant};

use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use crate::state::{AcquireStep, Effects, Grant, Handoff, LeaseRequest, State};

type Signal = Arc<Condvar>;
type Shared = Arc<Mutex<State<u32, Signal>>>;

fn request() -> LeaseRequest {
    LeaseRequest { owner: None, duration: Duration::from_secs(60), grace: Duration::ZERO }
}

fn wake(effects: Effects<u32, Signal>) {
    for signal in effects.woken {
        signal.notify_one();
    }
}

/// An `Interrupt` as the manager implements it: a flag, plus the queued waiter's signal, which
/// `fire` notifies while holding the state lock.
#[derive(Default)]
struct Interrupt {
    fired: AtomicBool,
    waiting: Mutex<Option<Signal>>,
}

impl Interrupt {
    fn fire(&self, shared: &Shared) {
        self.fired.store(true, SeqCst);
        let waiting = self.waiting.lock().unwrap().clone();
        if let Some(signal) = waiting {
            let guard = shared.lock().unwrap();
            signal.notify_one();
            drop(guard);
        }
    }
}

/// The manager's acquire. `gives_up` models a caller whose timeout fires after it queued.
fn acquire(shared: &Shared, gives_up: bool) -> Option<Grant<u32>> {
    acquire_with(shared, gives_up, None)
}

fn acquire_with(shared: &Shared, gives_up: bool, interrupt: Option<&Interrupt>) -> Option<Grant<u32>> {
    let now = Instant::now();
    let mut st = shared.lock().unwrap();
    match st.try_acquire(&request(), now) {
        AcquireStep::Granted(grant, effects) => {
            drop(st);
            wake(effects);
            return Some(grant);
        }
        AcquireStep::Busy => {}
        AcquireStep::Reserved | AcquireStep::NotRunning => unreachable!("one pool, always running"),
    }
    let signal = Arc::new(Condvar::new());
    let id = st.enqueue(request(), Arc::clone(&signal), now);
    if let Some(i) = interrupt {
        *i.waiting.lock().unwrap() = Some(Arc::clone(&signal));
    }
    loop {
        if let Some(handoff) = st.take_delivery(id) {
            let Handoff::Lease(grant) = handoff else { unreachable!("no spare capacity to reserve") };
            return Some(grant);
        }
        if interrupt.is_some_and(|i| i.fired.load(SeqCst)) {
            st.abandon(id, false);
            return None;
        }
        if gives_up {
            // The timeout path: the lock is released and retaken as after a timed-out wait,
            // then the delivery is checked once more before leaving the queue.
            drop(st);
            st = shared.lock().unwrap();
            if let Some(Handoff::Lease(grant)) = st.take_delivery(id) {
                return Some(grant);
            }
            st.abandon(id, true);
            return None;
        }
        st = signal.wait(st).unwrap();
    }
}

fn release(shared: &Shared, grant: Grant<u32>) {
    grant.release();
    let effects = shared.lock().unwrap().finalize(grant.info.id, Instant::now());
    wake(effects);
}

#[test]
fn hand_off_is_never_lost_and_no_waiter_sleeps_forever() {
    loom::model(|| {
        let shared: Shared = Arc::new(Mutex::new(State::new(1, 1, Instant::now())));
        shared.lock().unwrap().start(vec![7], 1);
        let held = acquire(&shared, false).expect("the idle pool");

        let waiter = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                let grant = acquire(&shared, false).expect("a patient waiter always gets the pool");
                assert_eq!(grant.pool, 7);
                release(&shared, grant);
            })
        };
        let quitter = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                // Either it got the pool before giving up (and must pass it on by releasing),
                // or it left the queue without taking anything.
                if let Some(grant) = acquire(&shared, true) {
                    release(&shared, grant);
                }
            })
        };
        release(&shared, held);
        waiter.join().unwrap();
        quitter.join().unwrap();

        let st = shared.lock().unwrap();
        assert_eq!((st.available(), st.leased(), st.waiting(), st.creating()), (1, 0, 0, 0));
    });
}

#[test]
fn an_interrupt_always_wakes_a_queued_acquire() {
    loom::model(|| {
        let shared: Shared = Arc::new(Mutex::new(State::new(1, 1, Instant::now())));
        shared.lock().unwrap().start(vec![7], 1);
        let held = acquire(&shared, false).expect("the idle pool");
        let interrupt = Arc::new(Interrupt::default());

        let waiter = {
            let (shared, interrupt) = (Arc::clone(&shared), Arc::clone(&interrupt));
            thread::spawn(move || acquire_with(&shared, false, Some(&interrupt)).map(|g| g.pool))
        };
        interrupt.fire(&shared);
        // The pool stays held until the waiter is back: only the interrupt can end its wait.
        assert_eq!(waiter.join().unwrap(), None);
        release(&shared, held);

        let st = shared.lock().unwrap();
        assert_eq!((st.available(), st.leased(), st.waiting()), (1, 0, 0), "nothing lost, nobody queued");
    });
}
