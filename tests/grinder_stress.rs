//! Bounded stress for the WorkGrinder: producers enqueue and submit (some jobs panic, some are
//! cancelled through their handles) while a controller stops the grinder in both modes and
//! restarts it. Every accepted job must resolve, with the right value when it ran, and the
//! counters must account for every accepted job exactly once. A watchdog aborts a hung run.
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use leasepool::{GrinderError, StopMode, TaskError, WorkGrinder};

#[test]
fn grinder_survives_concurrent_producers_cancels_and_stop_restart_cycles() {
    let watchdog = Watchdog::start("the grinder stress test", Duration::from_secs(120));

    // Thousands of jobs panic on purpose; keep their messages out of the test output.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let expected = info.payload().downcast_ref::<String>().is_some_and(|m| m.starts_with("grinder boom"));
        if !expected {
            default_hook(info);
        }
    }));

    let m = started(builder(2).workers_per_pool(2));
    let g = Arc::new(
        WorkGrinder::builder(m.clone())
            .batch_size_threshold(8)
            .max_wait(Duration::from_millis(2))
            .max_concurrent_batches(2)
            .build()
            .unwrap(),
    );
    g.start().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let stop_flag = Arc::new(AtomicBool::new(false));

    let controller = {
        let (g, stop_flag) = (Arc::clone(&g), Arc::clone(&stop_flag));
        thread::spawn(move || {
            for round in 0..30 {
                thread::sleep(Duration::from_millis(5)); // let work pile up between stops
                let mode = if round % 2 == 0 {
                    StopMode::Cancel
                } else {
                    StopMode::Drain { deadline: Some(Duration::from_millis(50)) }
                };
                g.stop(mode);
                g.start().unwrap();
            }
            stop_flag.store(true, SeqCst);
        })
    };

    let producers: Vec<_> = (0..6u64)
        .map(|t| {
            let (g, accepted, stop_flag) = (Arc::clone(&g), Arc::clone(&accepted), Arc::clone(&stop_flag));
            thread::spawn(move || {
                let mut i = 0u64;
                let mut handles = Vec::new();
                while !stop_flag.load(SeqCst) {
                    i += 1;
                    let want = t * 1_000_000 + i;
                    let enqueued = if i % 7 == 0 {
                        g.enqueue(move || -> u64 { panic!("grinder boom {want}") })
                    } else {
                        g.enqueue_as(format!("p{t}"), move || want)
                    };
                    match enqueued {
                        Ok(h) => {
                            accepted.fetch_add(1, SeqCst);
                            if i % 11 == 0 {
                                h.cancel();
                            }
                            handles.push((want, i % 7 == 0, h));
                        }
                        Err(GrinderError::NotStarted | GrinderError::Stopping) => thread::yield_now(),
                        Err(e) => panic!("unexpected refusal: {e}"),
                    }
                    if handles.len() >= 64 {
                        check(&mut handles);
                    }
                }
                check(&mut handles);
            })
        })
        .collect();

    controller.join().unwrap();
    for p in producers {
        p.join().unwrap();
    }
    g.stop(StopMode::Drain { deadline: None });
    watchdog.finish();

    let c = g.stats().counters;
    let resolved = c.jobs_completed + c.jobs_panicked + c.jobs_cancelled + c.jobs_failed;
    assert_eq!(resolved, accepted.load(SeqCst), "every accepted job is counted exactly once: {c:?}");
    assert!(c.jobs_completed > 0 && c.jobs_cancelled > 0 && c.jobs_panicked > 0, "{c:?}");
    wait_for("the last drained leases", || m.leased_count() == 0);
    println!("{} jobs accepted: {c:?}", accepted.load(SeqCst));
}

/// Every handle resolves within a generous bound, with its own value when it ran.
fn check(handles: &mut Vec<(u64, bool, leasepool::TaskHandle<u64>)>) {
    for (want, panics, h) in handles.drain(..) {
        match h.wait_timeout(Duration::from_secs(30)) {
            Ok(Ok(v)) => {
                assert!(!panics);
                assert_eq!(v, want);
            }
            Ok(Err(TaskError::Panicked { message })) => {
                assert!(panics);
                assert_eq!(message, format!("grinder boom {want}"));
            }
            Ok(Err(TaskError::Cancelled)) => {}
            Ok(Err(e)) => panic!("unexpected outcome: {e}"),
            Err(_) => panic!("a job did not resolve within 30 s"),
        }
    }
}
