//! Issue 10: blocking and async waiters share one queue and are served by one rule: with a
//! fairness bound of zero (strict FIFO hand-off) they are served in arrival order, whatever
//! their kind.
#![cfg(feature = "async")]

mod common;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::*;
use leasepool::AcquireOptions;

#[test]
fn blocking_and_async_waiters_are_served_in_arrival_order() {
    let watchdog = Watchdog::start("mixed fairness", Duration::from_secs(120));
    let m = started(builder(1).fairness_bound(Duration::ZERO));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let held = m.acquire(AcquireOptions::new()).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let kinds = ["blocking", "async", "async", "blocking", "async", "blocking", "blocking", "async"];

    let mut blocking = Vec::new();
    let mut spawned = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        let name = format!("{i}-{kind}");
        let (m2, order) = (m.clone(), Arc::clone(&order));
        if *kind == "blocking" {
            blocking.push(thread::spawn(move || {
                let lease = m2.acquire(AcquireOptions::new()).unwrap();
                order.lock().unwrap().push(name);
                drop(lease);
            }));
        } else {
            spawned.push(rt.spawn(async move {
                let lease = m2.acquire_async(AcquireOptions::new()).await.unwrap();
                order.lock().unwrap().push(name);
                drop(lease);
            }));
        }
        // The next waiter arrives only once this one is queued.
        wait_for("the waiter to queue", || m.stats().waiting == i + 1);
    }

    drop(held);
    blocking.into_iter().for_each(|t| t.join().unwrap());
    for task in spawned {
        rt.block_on(task).unwrap();
    }
    let expected: Vec<_> = kinds.iter().enumerate().map(|(i, kind)| format!("{i}-{kind}")).collect();
    assert_eq!(*order.lock().unwrap(), expected);
    let s = m.stats();
    assert_eq!((s.waiting, s.leased, s.available), (0, 0, 1));
    watchdog.finish();
}
