//! Issue 9: hostile input and faults. Each case once hung, aborted the host process, reported
//! something false or returned a wrong value; each is kept here as a test. Anything that runs
//! threads does so under a watchdog, so a regression fails instead of hanging CI.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use leasepool::{AcquireOptions, ConfigError, ExecutorBackend, LeasedExecutorManager, ProcessOptions};

fn b() -> leasepool::ManagerBuilder {
    LeasedExecutorManager::builder().max_pools(2)
}

// --- 5. Durations too large to be deadlines are rejected at build time (they panicked with
// "overflow when adding duration to instant" in start, stop or drop). ---

#[test]
fn huge_start_timeouts_and_terminate_grace_are_config_errors() {
    let thread =
        b().thread_options(leasepool::ThreadPoolOptions { start_timeout: Duration::MAX, ..Default::default() });
    assert_eq!(thread.build().unwrap_err(), ConfigError::TooLarge { field: "start_timeout (thread backend)" });
    let process = |o: ProcessOptions| b().backend(ExecutorBackend::Process).process_options(o).build().unwrap_err();
    assert_eq!(
        process(ProcessOptions::default().start_timeout(Duration::MAX)),
        ConfigError::TooLarge { field: "start_timeout (process backend)" }
    );
    assert_eq!(
        process(ProcessOptions::default().terminate_grace(Duration::MAX)),
        ConfigError::TooLarge { field: "terminate_grace (process backend)" }
    );
    let zero = process(ProcessOptions::default().start_timeout(Duration::ZERO));
    assert_eq!(zero, ConfigError::MustBePositive { field: "start_timeout (process backend)" });
    assert!(zero.to_string().contains("process backend"), "{zero}");
}

// --- 18. The hand-out ping's bound is checked like the other process durations: zero would
// call every worker hung, and a huge one would block an acquire that meets a hung worker. ---

#[test]
fn ping_timeouts_must_be_positive_and_bounded() {
    let process = |d: Duration| {
        b().backend(ExecutorBackend::Process).process_options(ProcessOptions::default().ping_timeout(d)).build()
    };
    let zero = process(Duration::ZERO).unwrap_err();
    assert_eq!(zero, ConfigError::MustBePositive { field: "ping_timeout (process backend)" });
    for d in [Duration::from_micros(999), Duration::from_secs(61), Duration::MAX] {
        let err = process(d).unwrap_err();
        assert!(
            matches!(err, ConfigError::OutOfRange { field, min: 1, max: 60_000, .. } if field.starts_with("ping_timeout")),
            "{d:?}: {err:?}"
        );
        assert!(err.to_string().contains("hung worker"), "{err}");
    }
    for d in [Duration::from_millis(1), Duration::from_secs(1), Duration::from_secs(60)] {
        process(d).unwrap_or_else(|e| panic!("{d:?}: {e}"));
    }
    assert_eq!(ProcessOptions::default().ping_timeout, Duration::from_secs(1));
}

// --- 6. Huge counts: nothing allocates in proportion to a count that is not real work. ---

#[test]
fn huge_pool_counts_are_out_of_range_not_an_abort() {
    for n in [usize::MAX, 1 << 40, 65_537] {
        let err = LeasedExecutorManager::builder().max_pools(n).min_pools(n).build().unwrap_err();
        assert!(matches!(err, ConfigError::OutOfRange { field: "max_pools", max: 65_536, .. }), "{err:?}");
        assert!(err.to_string().contains("65536"), "{err}");
    }
    let err = b().min_pools(1 << 40).build().unwrap_err();
    assert!(matches!(err, ConfigError::OutOfRange { field: "min_pools", .. }), "{err:?}");
}

#[test]
fn a_size_provider_returning_usize_max_is_clamped_to_max_pools() {
    let watchdog = Watchdog::start("huge size provider", Duration::from_secs(60));
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let m = started(builder(3).check_interval(Duration::from_millis(20)).size_provider(move || {
        c.fetch_add(1, SeqCst);
        usize::MAX
    }));
    wait_for("growth to max_pools", || m.total_count() == 3);
    let s = m.stats();
    assert_eq!((s.desired, s.creating, s.total), (3, 0, 3), "{s}");
    assert_eq!(m.desired_executor_count(), 3);
    let lease = m.acquire(AcquireOptions::new().timeout(Duration::from_secs(10))).unwrap();
    assert_eq!(lease.run(|| 1 + 1), Ok(2));
    drop(lease);
    m.stop();
    watchdog.finish();
}

// --- 7. Stacks too small to run ordinary tasks. ---

#[test]
fn tiny_stacks_are_rejected_and_the_minimum_runs_a_64_kib_local() {
    for bytes in [0, 25 * 1024, 255 * 1024] {
        let err = b().thread_stack_size(bytes).build().unwrap_err();
        assert!(matches!(err, ConfigError::OutOfRange { field: "thread_stack_size", min: 262_144, .. }), "{err:?}");
        assert!(err.to_string().contains("overflow"), "the error says why: {err}");
    }
    let watchdog = Watchdog::start("minimum stack", Duration::from_secs(60));
    let m = started(builder(1).thread_stack_size(256 * 1024));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let sum = lease.run(|| {
        let buf = std::hint::black_box([1u8; 64 * 1024]);
        buf.iter().map(|&b| u64::from(b)).sum::<u64>()
    });
    assert_eq!(sum, Ok(64 * 1024));
    drop(lease);
    m.stop();
    watchdog.finish();
}

// --- 8. Absurd worker counts. ---

#[test]
fn absurd_worker_counts_are_out_of_range() {
    let err = b().workers_per_pool(100_000).build().unwrap_err();
    assert!(matches!(err, ConfigError::OutOfRange { field: "workers_per_pool", max: 1024, .. }), "{err:?}");
    assert!(b().workers_per_pool(1024).build().is_ok());
}

// --- 9. A NUL byte in the thread-name prefix (it panicked in start). ---

#[test]
fn a_nul_in_the_name_prefix_is_a_config_error() {
    let err = b().name_prefix("pool\0x").build().unwrap_err();
    assert!(matches!(err, ConfigError::InvalidName { field: "name_prefix", .. }), "{err:?}");
    assert!(err.to_string().contains("NUL"), "{err}");
}

// --- 13. Process-only options on the thread backend are refused, consistently. ---

#[test]
fn process_only_options_on_the_thread_backend_are_refused() {
    let cases: Vec<(leasepool::ManagerBuilder, &str)> = vec![
        (b().worker_env("K", "V"), "worker_env"),
        (b().worker_cwd("/tmp"), "worker_cwd"),
        (b().max_tasks_per_worker(3), "max_tasks_per_worker"),
        (b().process_options(ProcessOptions::default()), "process_options"),
    ];
    for (builder, option) in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err, ConfigError::ProcessOnly { option, backend: ExecutorBackend::Thread });
    }
}

// --- 16. `process_options(..)` never silently drops earlier (or later) individual settings. ---

#[test]
fn process_options_and_individual_setters_merge_in_either_order() {
    let p = || b().backend(ExecutorBackend::Process);
    let base = || ProcessOptions::default().terminate_grace(Duration::from_millis(100)).env("A", "1");
    // Either order gives the same merged options: nothing is lost.
    let before = p().worker_env("B", "2").max_tasks_per_worker(5).process_options(base()).build();
    let after = p().process_options(base()).worker_env("B", "2").max_tasks_per_worker(5).build();
    assert!(before.is_ok() && after.is_ok(), "{before:?} {after:?}");
    // The same field given both ways is a conflict that names it, in either order.
    let twice = [
        p().worker_cwd("/").process_options(ProcessOptions::default().cwd("/tmp")).build().unwrap_err(),
        p().process_options(ProcessOptions::default().max_tasks_per_worker(2))
            .max_tasks_per_worker(3)
            .build()
            .unwrap_err(),
    ];
    for err in twice {
        assert!(matches!(err, ConfigError::Conflicting(_)), "{err:?}");
        assert!(err.to_string().contains("process_options"), "{err}");
    }
}

// --- 3. A panic payload whose own `Drop` panics (the handle never resolved and the pool was
// lost to everyone). ---

struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the payload's destructor panicked");
    }
}

#[test]
fn a_panic_payload_whose_drop_panics_still_resolves_and_the_pool_survives() {
    let watchdog = Watchdog::start("bomb payload", Duration::from_secs(60));
    let m = started(builder(1).workers_per_pool(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let bomb = lease.executor().submit(|| std::panic::panic_any(Bomb)).unwrap();
    let after = lease.executor().submit(|| 5).unwrap();
    let drain = lease.release();
    match bomb.wait() {
        Err(leasepool::TaskError::Panicked { message }) => {
            assert!(message.contains("destructor panicked"), "{message}")
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(after.wait(), Ok(5), "the worker survived");
    assert!(drain.wait_timeout(Duration::from_secs(10)), "the lease finished draining");
    // The pool went back and serves the next lease.
    let next = m.acquire(AcquireOptions::new().timeout(Duration::from_secs(10))).unwrap();
    assert_eq!(next.run(|| 6), Ok(6));
    let s = m.stats();
    assert_eq!((s.tasks.panicked, s.tasks.completed), (1, 2));
    drop(next);
    m.stop();
    watchdog.finish();
}

// --- 14. Non-string panic payloads are shown for what they are. ---

#[test]
fn error_panic_payloads_are_rendered_by_their_display() {
    let m = started(builder(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let err: Box<dyn std::error::Error + Send + Sync> = "config file unreadable".into();
    let outcome = lease.run(move || std::panic::panic_any(err));
    assert_eq!(outcome, Err(leasepool::TaskError::Panicked { message: "config file unreadable".into() }));
}

// --- 2. `stop_graceful(timeout)` is bounded by its own timeout and never waits for itself. ---

#[test]
fn stop_graceful_from_inside_a_task_does_not_wait_for_itself() {
    let watchdog = Watchdog::start("stop_graceful from a task", Duration::from_secs(60));
    for timeout in [Duration::from_secs(5), Duration::MAX] {
        let m = started(builder(1).workers_per_pool(2));
        let lease = m.acquire(AcquireOptions::new()).unwrap();
        let inner = m.clone();
        let (joined, took) = lease
            .run(move || {
                let t = std::time::Instant::now();
                let joined = inner.stop_graceful(timeout);
                (joined, t.elapsed())
            })
            .unwrap();
        assert!(!joined, "the calling thread itself cannot have been joined");
        assert!(took < Duration::from_secs(2), "stop_graceful({timeout:?}) from a task took {took:?}");
        assert!(!m.is_running());
    }
    watchdog.finish();
}

#[test]
fn a_second_stop_graceful_is_bounded_by_its_own_timeout() {
    let watchdog = Watchdog::start("concurrent stop_graceful", Duration::from_secs(60));
    let m = started(builder(1).workers_per_pool(1));
    let lease = m.acquire(AcquireOptions::new()).unwrap();
    let (gate, _running) = occupy(&lease.executor());
    // The first caller waits (up to 20 s) for the blocked task; the second must give up after
    // its own 300 ms, not wait behind the first.
    let first = {
        let m = m.clone();
        std::thread::spawn(move || m.stop_graceful(Duration::from_secs(20)))
    };
    wait_for("the first stop", || !m.is_running());
    let t = std::time::Instant::now();
    let second = m.stop_graceful(Duration::from_millis(300));
    let took = t.elapsed();
    assert!(!second, "the blocked task's thread was not joined");
    // Generous: a loaded 2-core machine; the bug waited for the first caller (20 s here).
    assert!(took < Duration::from_secs(5), "the second stop_graceful took {took:?}");
    gate.open_one();
    assert!(first.join().unwrap(), "the first caller joins everything once the task ends");
    watchdog.finish();
}

// --- 1. A size provider that blocks: expiry is still enforced, stats and stop do not hang. ---

#[test]
fn a_blocking_size_provider_never_stalls_expiry_stats_or_stop() {
    let watchdog = Watchdog::start("blocking size provider", Duration::from_secs(60));
    let (release_tx, release_rx) = crossbeam::channel::bounded::<()>(0);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let m = started(builder(2).lease_grace(Duration::ZERO).check_interval(Duration::from_millis(20)).size_provider(
        move || {
            if c.fetch_add(1, SeqCst) == 0 {
                return 10; // the first sample returns; every later one blocks
            }
            let _ = release_rx.recv(); // until the test ends
            10
        },
    ));
    let lease = m.acquire(AcquireOptions::new().lease_duration(Duration::from_millis(200))).unwrap();
    wait_for("the provider to block", || calls.load(SeqCst) >= 2);
    // Hard expiry is enforced while the provider is stuck (time is the subject: a 200 ms lease,
    // up to 10 s to see it revoked).
    wait_for("revocation", || m.stats().counters.leases_revoked == 1);
    assert_eq!(lease.state(), leasepool::LeaseState::Revoked);
    // stats() and desired_executor_count() answer from the last value the provider returned.
    let t = std::time::Instant::now();
    assert_eq!(m.desired_executor_count(), 1);
    assert_eq!(m.stats().desired, 1);
    // Each waits at most the 1 s sample bound (the second not at all: the provider is stuck).
    assert!(t.elapsed() < Duration::from_secs(4), "took {:?}", t.elapsed());
    // stop abandons the stuck sampler instead of joining it, and a graceful stop says so.
    let t = std::time::Instant::now();
    assert!(!m.stop_graceful(Duration::from_secs(5)), "a thread stuck in the provider was not joined");
    assert!(t.elapsed() < Duration::from_secs(5), "stop took {:?}", t.elapsed());
    m.start().unwrap(); // a later start works too
    m.stop();
    drop(release_tx);
    watchdog.finish();
}

// --- 4. A start hook that never returns: start fails after one start_timeout (not three),
// says what is stuck, and a graceful stop never claims to have joined those threads. ---

#[test]
fn a_start_hook_that_never_returns_fails_fast_and_is_never_reported_joined() {
    let watchdog = Watchdog::start("stuck start hook", Duration::from_secs(60));
    let (release_tx, release_rx) = crossbeam::channel::bounded::<()>(0);
    let m = builder(1)
        .thread_options(leasepool::ThreadPoolOptions {
            start_timeout: Duration::from_millis(300),
            ..Default::default()
        })
        .on_worker_start(move |_| {
            let _ = release_rx.recv(); // blocks until the test ends
        })
        .build()
        .unwrap();
    let t = std::time::Instant::now();
    let err = m.start().unwrap_err();
    let took = t.elapsed();
    // One start_timeout (300 ms) plus slack for a loaded machine; it used to take three.
    assert!(took < Duration::from_millis(850), "start took {took:?}");
    let msg = err.to_string();
    assert!(msg.contains("still inside the hook") && msg.contains("2 of 2"), "{msg}");
    assert!(!m.stop_graceful(Duration::from_millis(200)), "threads stuck in the hook were reported joined");
    drop(release_tx); // the hooks return; the threads can now exit
    assert!(m.stop_graceful(Duration::from_secs(10)), "once the hooks returned, every thread is joined");
    watchdog.finish();
}

// --- 17. Retired pools still finishing work are listed in stats (marked retired). ---

#[test]
fn retired_pools_still_finishing_work_are_listed_in_stats() {
    let watchdog = Watchdog::start("retired pools in stats", Duration::from_secs(60));
    let m =
        started(builder(1).workers_per_pool(1).lease_grace(Duration::ZERO).check_interval(Duration::from_millis(10)));
    let lease = m.acquire(AcquireOptions::new().lease_duration(Duration::from_millis(100))).unwrap();
    let seq = lease.pool_seq();
    let (gate, running) = occupy(&lease.executor());
    // Time is the subject: the 100 ms lease is revoked while its task still runs.
    wait_for("revocation", || m.stats().counters.leases_revoked == 1);
    let s = m.stats();
    let retired: Vec<_> = s.pools.iter().filter(|p| p.retired).collect();
    assert_eq!(retired.len(), 1, "{s}");
    assert_eq!((retired[0].seq, retired[0].lease_id), (seq, None));
    assert_eq!(s.total, s.pools.iter().filter(|p| !p.retired).count(), "retired pools do not count in total");
    gate.open_one();
    assert_eq!(running.wait(), Ok(()));
    wait_for("the retired pool's thread to exit", || m.stats().pools.iter().all(|p| !p.retired));
    m.stop();
    watchdog.finish();
}

#[test]
fn a_big_size_signal_builds_at_most_four_pools_at_once() {
    let watchdog = Watchdog::start("bounded builds", Duration::from_secs(60));
    let (building, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (b2, m2) = (Arc::clone(&building), Arc::clone(&most));
    let m = started(
        builder(32)
            .workers_per_pool(1)
            .check_interval(Duration::from_millis(20))
            .size_provider(|| usize::MAX)
            .on_worker_start(move |_| {
                let now = b2.fetch_add(1, SeqCst) + 1;
                m2.fetch_max(now, SeqCst);
                // Each build takes a while, so that unbounded builds would overlap.
                std::thread::sleep(Duration::from_millis(20));
                b2.fetch_sub(1, SeqCst);
            }),
    );
    wait_for("growth to 32 pools", || m.total_count() == 32);
    let most = most.load(SeqCst);
    assert!((1..=4).contains(&most), "{most} pools were being built at once");
    m.stop();
    watchdog.finish();
}
