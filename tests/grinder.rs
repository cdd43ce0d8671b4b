//! Issue 3: the WorkGrinder.
mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use leasepool::{
    AcquireError, AcquireOptions, BatchJob, BatchLease, ConfigError, GrinderError, Interrupt, LeaseSource,
    LeasedExecutorManager, StopMode, TaskError, WorkGrinder,
};

const HOUR: Duration = Duration::from_secs(3600);

fn drain() -> StopMode {
    StopMode::Drain { deadline: None }
}

/// A grinder on a started manager with `pools` pools of `workers` workers.
fn grinder_on(
    pools: usize,
    workers: usize,
) -> (LeasedExecutorManager, leasepool::GrinderBuilder<LeasedExecutorManager>) {
    let m = started(builder(pools).workers_per_pool(workers));
    let g = WorkGrinder::builder(m.clone());
    (m, g)
}

// ---- a fake lease source, to test routing without a manager ----

#[derive(Default)]
struct FakeState {
    owners: Mutex<Vec<String>>,
    submits: AtomicUsize,
    releases: AtomicUsize,
}

#[derive(Clone, Default)]
struct FakeSource {
    state: Arc<FakeState>,
    fail_submit_at: Option<usize>,
    acquire_error: Option<TaskError>,
    parallelism: Option<usize>,
}

struct FakeLease {
    state: Arc<FakeState>,
    fail_submit_at: Option<usize>,
    parallelism: Option<usize>,
    calls: AtomicUsize,
}

impl LeaseSource for FakeSource {
    type Lease = FakeLease;
    fn acquire_batch_lease(&self, owner: &str, _: Duration, _: &Interrupt) -> Result<FakeLease, TaskError> {
        self.state.owners.lock().unwrap().push(owner.to_owned());
        if let Some(e) = &self.acquire_error {
            return Err(e.clone());
        }
        Ok(FakeLease {
            state: Arc::clone(&self.state),
            fail_submit_at: self.fail_submit_at,
            parallelism: self.parallelism,
            calls: AtomicUsize::new(0),
        })
    }
}

impl BatchLease for FakeLease {
    fn submit(&self, job: BatchJob) -> Result<(), (TaskError, BatchJob)> {
        self.state.submits.fetch_add(1, SeqCst);
        let call = self.calls.fetch_add(1, SeqCst) + 1;
        if Some(call) == self.fail_submit_at {
            return Err((TaskError::Source { message: "submit boom".into() }, job));
        }
        job.run(); // inline: the fake has no threads
        Ok(())
    }

    fn parallelism(&self) -> Option<usize> {
        self.parallelism
    }
}

impl Drop for FakeLease {
    fn drop(&mut self) {
        self.state.releases.fetch_add(1, SeqCst);
    }
}

// ---- configuration and lifecycle ----

#[test]
fn configuration_is_validated_naming_the_field() {
    let m = builder(1).build().unwrap();
    let cases = [
        (WorkGrinder::builder(m.clone()).batch_size_threshold(0), "batch_size_threshold"),
        (WorkGrinder::builder(m.clone()).max_wait(Duration::ZERO), "max_wait"),
        (WorkGrinder::builder(m.clone()).lease_duration(Duration::ZERO), "lease_duration"),
        (WorkGrinder::builder(m.clone()).intake_capacity(0), "intake_capacity"),
        (WorkGrinder::builder(m.clone()).max_concurrent_batches(0), "max_concurrent_batches"),
    ];
    for (b, field) in cases {
        assert_eq!(b.build().unwrap_err(), ConfigError::MustBePositive { field });
    }
    let s = WorkGrinder::builder(m).build().unwrap().stats();
    assert_eq!((s.started, s.stopping, s.pending, s.batch_size_threshold), (false, false, 0, 20));
    assert_eq!(
        (s.max_wait, s.lease_duration, s.oldest_wait),
        (Duration::from_secs(10), Duration::from_secs(60), Duration::ZERO)
    );
}

#[test]
fn intake_refuses_before_start_after_stop_and_when_full() {
    let (_m, g) = grinder_on(1, 1);
    let g = g.batch_size_threshold(100).max_wait(HOUR).intake_capacity(2).build().unwrap();
    assert_eq!(g.enqueue(|| ()).unwrap_err(), GrinderError::NotStarted);
    assert!(matches!(g.submit(|| 1), Err(TaskError::Refused(GrinderError::NotStarted))));
    g.start().unwrap();
    let a = g.enqueue(|| 1).unwrap();
    let b = g.enqueue(|| 2).unwrap();
    assert_eq!(g.enqueue(|| 3).unwrap_err(), GrinderError::IntakeFull { capacity: 2 });
    g.stop(drain());
    assert_eq!((a.wait(), b.wait()), (Ok(1), Ok(2)));
    assert_eq!(g.enqueue(|| ()).unwrap_err(), GrinderError::NotStarted);
    assert_eq!(g.stats().counters.jobs_rejected, 4);
}

#[test]
fn enqueue_while_stopping_is_refused() {
    let (_m, g) = grinder_on(1, 1);
    let g = Arc::new(g.batch_size_threshold(1).build().unwrap());
    g.start().unwrap();
    let (gate, waiter) = gate();
    let blocked = g.enqueue(move || waiter.pass()).unwrap();
    gate.wait_started();
    let stopper = {
        let g = Arc::clone(&g);
        thread::spawn(move || g.stop(drain()))
    };
    wait_for("the grinder to be stopping", || g.stats().stopping);
    assert!(g.stats().started, "started stays true during a stop");
    assert_eq!(g.enqueue(|| ()).unwrap_err(), GrinderError::Stopping);
    gate.open_one();
    stopper.join().unwrap();
    assert_eq!(blocked.wait(), Ok(()));
    assert!(!g.stats().started);
}

#[test]
fn restart_after_stop_continues_the_batch_numbers() {
    let src = FakeSource::default();
    let g = WorkGrinder::builder(src.clone()).batch_size_threshold(1).owner_prefix("rs").build().unwrap();
    g.start().unwrap();
    assert_eq!(g.submit(|| 1).unwrap(), 1);
    g.stop(drain());
    g.start().unwrap();
    assert_eq!(g.submit(|| 2).unwrap(), 2);
    g.stop(StopMode::Cancel);
    assert_eq!(*src.state.owners.lock().unwrap(), vec!["rs-batch-1", "rs-batch-2"]);
    assert_eq!(src.state.releases.load(SeqCst), 2);
}

// ---- batch formation ----

#[test]
fn reaching_the_threshold_flushes_a_batch() {
    let (m, g) = grinder_on(1, 2);
    let g = g.batch_size_threshold(5).max_wait(HOUR).build().unwrap();
    g.start().unwrap();
    let handles: Vec<_> = (0..5).map(|i| g.enqueue(move || i * 10).unwrap()).collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
    assert_eq!(results, vec![0, 10, 20, 30, 40]);
    let s = g.stats();
    assert_eq!((s.counters.batches_run, s.counters.jobs_completed, s.pending), (1, 5, 0));
    assert_eq!(m.stats().counters.leases_immediate, 1, "one lease for the whole batch");
}

#[test]
fn max_wait_flushes_a_small_batch() {
    let (_m, g) = grinder_on(1, 2);
    let max_wait = Duration::from_millis(100);
    let g = g.batch_size_threshold(1000).max_wait(max_wait).build().unwrap();
    g.start().unwrap();
    let begin = Instant::now();
    let handles: Vec<_> = (0..3).map(|i| g.enqueue(move || i).unwrap()).collect();
    assert!(g.stats().oldest_wait < max_wait);
    let sum: i32 = handles.into_iter().map(|h| h.wait().unwrap()).sum();
    assert_eq!(sum, 3);
    // Time is the subject: the batch waited for max_wait, and (generous bound) not much longer.
    assert!(begin.elapsed() >= max_wait, "flushed before max_wait");
    assert!(begin.elapsed() < max_wait + Duration::from_secs(5));
    assert_eq!(g.stats().counters.batches_run, 1);
}

#[test]
fn a_batch_takes_everything_pending_so_it_can_exceed_the_threshold() {
    let (_m, g) = grinder_on(1, 2);
    let g = g.batch_size_threshold(2).max_wait(HOUR).build().unwrap();
    g.start().unwrap();
    let (gate1, w1) = gate();
    let first: Vec<_> = (0..2)
        .map(|_| {
            let w = w1.clone();
            g.enqueue(move || w.pass()).unwrap()
        })
        .collect();
    gate1.wait_started();
    gate1.wait_started();
    // Batch 1 (2 jobs) is running; five more arrive and pile up.
    let (gate2, w2) = gate();
    let second: Vec<_> = (0..5)
        .map(|_| {
            let w = w2.clone();
            g.enqueue(move || w.pass()).unwrap()
        })
        .collect();
    assert_eq!(g.stats().pending, 5);
    assert_eq!(g.stats().counters.current_batch_size, 2);
    gate1.open_one();
    gate1.open_one();
    first.into_iter().for_each(|h| h.wait().unwrap());
    wait_for("batch 2 with all five jobs", || g.stats().counters.current_batch_size == 5);
    for _ in 0..5 {
        gate2.open_one();
    }
    second.into_iter().for_each(|h| h.wait().unwrap());
    assert_eq!(g.stats().counters.batches_run, 2);
}

#[test]
fn concurrent_batches_each_hold_their_own_lease() {
    let (m, g) = grinder_on(2, 1);
    let g = g.batch_size_threshold(1).max_concurrent_batches(2).build().unwrap();
    g.start().unwrap();
    let (gate, w) = gate();
    // One job per batch: the second is queued only once the first batch is running.
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let w = w.clone();
            let h = g.enqueue(move || w.pass()).unwrap();
            gate.wait_started();
            h
        })
        .collect();
    assert_eq!(g.stats().running_batches, 2);
    assert_eq!(m.leased_count(), 2);
    gate.open_one();
    gate.open_one();
    handles.into_iter().for_each(|h| h.wait().unwrap());
    g.stop(drain());
    assert_eq!(m.leased_count(), 0);
}

// ---- routing ----

#[test]
fn each_job_gets_its_own_outcome() {
    let (_m, g) = grinder_on(1, 2);
    let g = g.batch_size_threshold(3).max_wait(HOUR).build().unwrap();
    g.start().unwrap();
    let ok = g.enqueue(|| "fine").unwrap();
    let boom = g.enqueue(|| -> &str { panic!("grinder boom") }).unwrap();
    let also_ok = g.enqueue(|| "also fine").unwrap();
    assert_eq!(ok.wait(), Ok("fine"));
    assert_eq!(boom.wait(), Err(TaskError::Panicked { message: "grinder boom".into() }));
    assert_eq!(also_ok.wait(), Ok("also fine"));
    let c = g.stats().counters;
    assert_eq!((c.jobs_completed, c.jobs_panicked), (2, 1));
}

#[test]
fn a_failed_acquire_is_delivered_to_every_job_of_the_batch() {
    let m = builder(1).build().unwrap(); // never started
    let g = WorkGrinder::builder(m).batch_size_threshold(2).max_wait(HOUR).build().unwrap();
    g.start().unwrap();
    let a = g.enqueue(|| 1).unwrap();
    let b = g.enqueue(|| 2).unwrap();
    let want = Err(TaskError::LeaseUnavailable(AcquireError::NotRunning));
    assert_eq!((a.wait(), b.wait()), (want.clone(), want));
    assert_eq!(g.stats().counters.jobs_failed, 2);
    // The grinder keeps running.
    assert!(g.stats().started);
}

#[test]
fn partial_submission_failure_keeps_real_outcomes_for_submitted_jobs() {
    let src = FakeSource { fail_submit_at: Some(2), ..Default::default() };
    let g = WorkGrinder::builder(src.clone()).batch_size_threshold(3).max_wait(HOUR).build().unwrap();
    g.start().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let ran = Arc::clone(&ran);
            g.enqueue(move || {
                ran.fetch_add(1, SeqCst);
                i
            })
            .unwrap()
        })
        .collect();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.wait()).collect();
    let boom = Err(TaskError::Source { message: "submit boom".into() });
    assert_eq!(outcomes, vec![Ok(0), boom.clone(), boom]);
    assert_eq!(ran.load(SeqCst), 1, "jobs after the failure never ran");
    assert_eq!(src.state.submits.load(SeqCst), 2, "nothing is submitted after the failure");
    assert_eq!(src.state.releases.load(SeqCst), 1, "the lease is still released");
    assert_eq!(g.stats().counters.jobs_failed, 2);
}

#[test]
fn drain_mode_routes_a_refused_first_drain_job_to_every_job_and_tolerates_a_later_refusal() {
    for (fail_at, want_ok) in [(1, false), (2, true)] {
        let src = FakeSource { fail_submit_at: Some(fail_at), parallelism: Some(3), ..Default::default() };
        let g = WorkGrinder::builder(src.clone()).batch_size_threshold(4).max_wait(HOUR).build().unwrap();
        g.start().unwrap();
        let handles: Vec<_> = (0..4).map(|i| g.enqueue(move || i).unwrap()).collect();
        let outcomes: Vec<_> = handles.into_iter().map(|h| h.wait()).collect();
        if want_ok {
            // The first drain job (run inline by the fake) ran all four; the refused second one
            // must not cancel anything.
            assert_eq!(outcomes, vec![Ok(0), Ok(1), Ok(2), Ok(3)]);
        } else {
            assert!(
                outcomes.iter().all(|o| *o == Err(TaskError::Source { message: "submit boom".into() })),
                "{outcomes:?}"
            );
        }
        assert_eq!(src.state.submits.load(SeqCst), fail_at, "no drain job is submitted after a refusal");
        g.stop(drain());
    }
}

#[test]
fn a_fake_acquire_error_reaches_every_job() {
    let src =
        FakeSource { acquire_error: Some(TaskError::Source { message: "no lease".into() }), ..Default::default() };
    let g = WorkGrinder::builder(src).batch_size_threshold(2).max_wait(HOUR).build().unwrap();
    g.start().unwrap();
    let a = g.enqueue(|| 1).unwrap();
    let b = g.enqueue(|| 2).unwrap();
    assert_eq!(a.wait(), Err(TaskError::Source { message: "no lease".into() }));
    assert_eq!(b.wait(), Err(TaskError::Source { message: "no lease".into() }));
}

// ---- cancellation and stop ----

#[test]
fn cancelling_a_queued_job_removes_it_at_once_and_it_never_runs() {
    let (_m, g) = grinder_on(1, 1);
    let g = g.batch_size_threshold(100).max_wait(HOUR).build().unwrap();
    g.start().unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&ran);
    let a = g.enqueue(|| 1).unwrap();
    let b = g.enqueue(move || r.store(true, SeqCst)).unwrap();
    let c = g.enqueue(|| 3).unwrap();
    assert_eq!(g.stats().pending, 3);
    assert!(b.cancel());
    assert_eq!(g.stats().pending, 2, "the pending count drops immediately");
    assert_eq!(g.stats().counters.jobs_cancelled, 1);
    g.stop(drain());
    assert_eq!((a.wait(), c.wait()), (Ok(1), Ok(3)));
    assert_eq!(b.wait(), Err(TaskError::Cancelled));
    assert!(!ran.load(SeqCst));
}

#[test]
fn drain_stop_runs_everything_promptly_despite_a_huge_max_wait() {
    let (_m, g) = grinder_on(1, 2);
    let g = g.batch_size_threshold(100).max_wait(HOUR).build().unwrap();
    g.start().unwrap();
    let handles: Vec<_> = (0..7).map(|i| g.enqueue(move || i).unwrap()).collect();
    let begin = Instant::now();
    g.stop(drain());
    assert!(begin.elapsed() < Duration::from_secs(5), "drain waited for max_wait");
    let sum: i32 = handles.into_iter().map(|h| h.wait().unwrap()).sum();
    assert_eq!(sum, 21);
    assert!(!g.stats().started);
}

#[test]
fn cancel_stop_abandons_an_acquire_on_a_saturated_manager() {
    let (m, g) = grinder_on(1, 1);
    let held = m.acquire(AcquireOptions::new()).unwrap();
    let g = g.batch_size_threshold(1).build().unwrap();
    g.start().unwrap();
    let job = g.enqueue(|| 1).unwrap();
    wait_for("the batch to wait for a lease", || m.stats().waiting == 1);
    let begin = Instant::now();
    g.stop(StopMode::Cancel);
    assert!(begin.elapsed() < Duration::from_secs(1), "stop took {:?}", begin.elapsed());
    assert_eq!(job.wait(), Err(TaskError::Cancelled));
    assert_eq!((m.stats().waiting, m.leased_count()), (0, 1), "no lease was taken");
    drop(held);
    // Restartable afterwards.
    g.start().unwrap();
    assert_eq!(g.submit(|| 5).unwrap(), 5);
}

#[test]
fn cancel_stop_returns_while_a_job_blocks_and_cancels_the_rest_of_its_batch() {
    let (m, g) = grinder_on(1, 1);
    let g = g.batch_size_threshold(3).max_wait(HOUR).build().unwrap();
    g.start().unwrap();
    let (gate, waiter) = gate();
    let running = g.enqueue(move || waiter.pass()).unwrap();
    let queued1 = g.enqueue(|| 2).unwrap();
    let queued2 = g.enqueue(|| 3).unwrap();
    gate.wait_started();
    let pending_after = g.enqueue(|| 4).unwrap();
    let begin = Instant::now();
    g.stop(StopMode::Cancel);
    assert!(begin.elapsed() < Duration::from_secs(1), "stop took {:?}", begin.elapsed());
    assert_eq!(queued1.wait(), Err(TaskError::Cancelled));
    assert_eq!(queued2.wait(), Err(TaskError::Cancelled));
    assert_eq!(pending_after.wait(), Err(TaskError::Cancelled));
    assert!(!running.is_finished(), "the running job was left to finish");
    assert_eq!(m.stats().leases[0].state, leasepool::LeaseState::Draining, "the batch lease drains");
    gate.open_one();
    assert_eq!(running.wait(), Ok(()));
    wait_for("the drained lease to come back", || m.leased_count() == 0);
}

#[test]
fn drain_with_a_deadline_cancels_what_is_left() {
    let (_m, g) = grinder_on(1, 1);
    let g = g.batch_size_threshold(2).max_wait(HOUR).build().unwrap();
    g.start().unwrap();
    let (gate, waiter) = gate();
    let running = g.enqueue(move || waiter.pass()).unwrap();
    let queued = g.enqueue(|| 2).unwrap();
    gate.wait_started();
    let begin = Instant::now();
    g.stop(StopMode::Drain { deadline: Some(Duration::from_millis(200)) });
    let took = begin.elapsed();
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(5), "stop took {took:?}");
    assert_eq!(queued.wait(), Err(TaskError::Cancelled));
    gate.open_one();
    assert_eq!(running.wait(), Ok(()));
}

#[test]
fn dropping_a_running_grinder_stops_it() {
    let (m, g) = grinder_on(1, 1);
    let g = g.batch_size_threshold(100).max_wait(HOUR).build().unwrap();
    g.start().unwrap();
    let job = g.enqueue(|| 1).unwrap();
    drop(g);
    assert_eq!(job.wait(), Err(TaskError::Cancelled));
    assert_eq!(m.leased_count(), 0);
}

// ---- leases ----

#[test]
fn a_long_batch_renews_its_lease_while_jobs_progress() {
    // Time is the subject: 6 jobs of 150 ms on one worker take ~900 ms under a 400 ms lease
    // with no grace. The batch renews at half its lease (200 ms of headroom).
    let m = started(builder(1).workers_per_pool(1).lease_grace(Duration::ZERO));
    let run = |renew: bool| {
        let g = WorkGrinder::builder(m.clone())
            .batch_size_threshold(6)
            .max_wait(HOUR)
            .lease_duration(Duration::from_millis(400))
            .renew_leases(renew)
            .build()
            .unwrap();
        g.start().unwrap();
        let handles: Vec<_> = (0..6)
            .map(|i| g.enqueue(move || thread::sleep(Duration::from_millis(150))).map(|h| (i, h)).unwrap())
            .collect();
        let outcomes: Vec<_> = handles.into_iter().map(|(_, h)| h.wait()).collect();
        g.stop(drain());
        outcomes
    };
    let renewed = run(true);
    assert!(renewed.iter().all(Result::is_ok), "{renewed:?}");
    let c = m.stats().counters;
    assert!(c.leases_renewed >= 1, "{c:?}");
    assert_eq!(c.leases_revoked, 0);

    let not_renewed = run(false);
    assert!(not_renewed.contains(&Err(TaskError::Cancelled)), "{not_renewed:?}");
    assert_eq!(m.stats().counters.leases_revoked, 1);
}

#[test]
fn eight_threads_submit_concurrently_and_every_result_is_right() {
    let (_m, g) = grinder_on(2, 2);
    let g = Arc::new(g.batch_size_threshold(16).max_wait(Duration::from_millis(5)).build().unwrap());
    g.start().unwrap();
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let g = Arc::clone(&g);
            thread::spawn(move || {
                for i in 0..200u64 {
                    let want = t * 1000 + i;
                    if i % 2 == 0 {
                        assert_eq!(g.submit_as(format!("t{t}"), move || want).unwrap(), want);
                    } else {
                        assert_eq!(g.enqueue(move || want).unwrap().wait().unwrap(), want);
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let c = g.stats().counters;
    assert_eq!(c.jobs_completed, 1600);
    assert!(c.batches_run >= 1 && c.batches_run <= 1600);
}

/// CPU ticks (utime + stime) used so far by this process's thread named `name`.
fn thread_cpu_ticks(name: &str) -> Option<u64> {
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = entry.ok()?.path();
        if std::fs::read_to_string(dir.join("comm")).ok()?.trim() == name {
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
            return Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?);
        }
    }
    None
}

#[test]
fn a_batch_waiting_for_progress_past_its_renewal_point_does_not_spin() {
    // One job blocks past the renewal point (half of a 200 ms lease) with no progress to show;
    // the batch thread must keep sleeping between checks rather than spin.
    let m = started(builder(1).workers_per_pool(1).lease_grace(Duration::from_secs(30)));
    let g = WorkGrinder::builder(m.clone())
        .owner_prefix("spin")
        .batch_size_threshold(1)
        .lease_duration(Duration::from_millis(200))
        .build()
        .unwrap();
    g.start().unwrap();
    let (gate, waiter) = gate();
    let job = g.enqueue(move || waiter.pass()).unwrap();
    gate.wait_started();
    let Some(before) = thread_cpu_ticks("spin-batcher") else { return }; // not Linux: nothing to measure
                                                                         // Time is the subject: let the batch sit ~1 s past its renewal point.
    thread::sleep(Duration::from_secs(1));
    let after = thread_cpu_ticks("spin-batcher").unwrap();
    gate.open_one();
    assert_eq!(job.wait(), Ok(()));
    // A spinning thread would burn ~100 ticks (1 s of CPU); a ticking one a handful at most.
    assert!(after - before < 30, "the batch thread used {} CPU ticks in 1 s", after - before);
}
