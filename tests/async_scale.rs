//! Issue 10: 10 000 pending async acquires on a current-thread runtime add no OS thread (counted
//! in `/proc/self/task`), and what one pending acquire costs in memory (printed). This target
//! holds one test, so no other test's threads come and go while it counts.
#![cfg(feature = "async")]

mod common;

use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use common::*;
use futures::Future;
use leasepool::{AcquireError, AcquireFuture, AcquireOptions};

const PENDING: usize = 10_000;

fn os_threads() -> usize {
    std::fs::read_dir("/proc/self/task").expect("procfs").count()
}

/// Resident set size in bytes (`/proc/self/statm`, second field, in pages).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("procfs");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn ten_thousand_pending_acquires_add_no_thread() {
    let watchdog = Watchdog::start("10 000 pending acquires", Duration::from_secs(120));
    let m = started(builder(1));
    let held = m.acquire(AcquireOptions::new()).unwrap(); // the only pool: every acquire queues
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let threads_before = os_threads();

    let (threads_pending, per_future) = rt.block_on(async {
        // Measured on a cold heap: this counts the futures, their waiter entries and signals, and
        // the queue's growth (RSS is page-granular; with 10 000 of them the rounding is small).
        let rss_before = rss();
        let mut pending: Vec<AcquireFuture> = (0..PENDING).map(|_| m.acquire_async(AcquireOptions::new())).collect();
        poll_all(&mut pending).await;
        let rss_after = rss();
        assert_eq!(m.stats().waiting, PENDING);
        let threads = os_threads();
        drop(pending);
        assert_eq!(m.stats().waiting, 0, "dropped futures leave the queue");

        let mut pending: Vec<AcquireFuture> = (0..PENDING).map(|_| m.acquire_async(AcquireOptions::new())).collect();
        poll_all(&mut pending).await;
        assert_eq!((m.stats().waiting, os_threads()), (PENDING, threads));
        m.stop(); // wakes every one of them
        for f in pending {
            assert!(matches!(f.await, Err(AcquireError::NotRunning)));
        }
        (threads, rss_after.saturating_sub(rss_before) as f64 / PENDING as f64)
    });

    assert_eq!(threads_pending, threads_before, "pending acquires must not add OS threads");
    println!(
        "{PENDING} pending acquires: {} OS threads before and while pending; size_of::<AcquireFuture>() = {} B; \
         resident memory per pending acquire (future, waiter entry and its signal, queue slot) ≈ {per_future:.0} B",
        threads_before,
        std::mem::size_of::<AcquireFuture>(),
    );
    assert!(per_future < 4096.0, "a pending acquire costs {per_future:.0} B, more than a page");
    drop(held);
    watchdog.finish();
}

/// Polls every future once (each joins the queue); all must stay pending.
async fn poll_all(futures: &mut [AcquireFuture]) {
    poll_fn(|cx| {
        for f in futures.iter_mut() {
            assert!(Pin::new(f).poll(cx).is_pending());
        }
        Poll::Ready(())
    })
    .await;
}
