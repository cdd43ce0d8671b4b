//! Measuring helpers shared by the interleaved checks of `benches/lease.rs` and
//! `ffi/benches/roundtrip.rs` (included there with `#[path]`): the VM's wake-up-state probe,
//! medians, percentiles and readable times.
#![allow(dead_code)] // each bench uses a subset

use std::env;
use std::hint::black_box;
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use criterion::Criterion;

/// Round trips of one wake-up probe.
/// Set (to anything but empty or `0`): skip the criterion groups, run only the interleaved check.
pub const QUICK_ENV: &str = "LEASEPOOL_BENCH_QUICK";
pub const PROBE_ROUND_TRIPS: usize = 2_000;
/// A probe median below this is the VM's fast wake-up state.
pub const FAST_WAKE: Duration = Duration::from_micros(15);

/// Whether the environment variable `name` is set to something other than empty or `0`.
pub fn env_flag(name: &str) -> bool {
    env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// `d` in whole nanoseconds, saturating at `u32::MAX` (4.3 s).
pub fn nanos(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX)
}

/// Median round trip of a condvar ping-pong between this thread and a helper thread (std
/// `Mutex` + `Condvar`, both parking between turns), over [`PROBE_ROUND_TRIPS`] round trips.
pub fn wake_probe() -> Duration {
    let helpers_turn = Mutex::new(false);
    let turned = Condvar::new();
    let mut round_trips = Vec::with_capacity(PROBE_ROUND_TRIPS);
    thread::scope(|s| {
        s.spawn(|| {
            let mut turn = helpers_turn.lock().expect("probe lock");
            for _ in 0..PROBE_ROUND_TRIPS {
                while !*turn {
                    turn = turned.wait(turn).expect("probe lock");
                }
                *turn = false;
                turned.notify_one();
            }
        });
        for _ in 0..PROBE_ROUND_TRIPS {
            let start = Instant::now();
            let mut turn = helpers_turn.lock().expect("probe lock");
            *turn = true;
            turned.notify_one();
            while *turn {
                turn = turned.wait(turn).expect("probe lock");
            }
            drop(turn);
            round_trips.push(start.elapsed());
        }
    });
    round_trips.sort_unstable();
    round_trips[round_trips.len() / 2]
}

/// "4.9 µs (fast)" or "52.0 µs (slow)".
pub fn wake_state(round_trip: Duration) -> String {
    let state = if round_trip < FAST_WAKE { "fast" } else { "slow" };
    format!("{} ({state})", fmt_ns(round_trip.as_nanos() as f64))
}

/// A time in nanoseconds with a readable unit.
pub fn fmt_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

/// The median of `values` (the mean of the two middle ones for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The `q` quantile (nearest rank) of already sorted `sorted`, which must not be empty.
pub fn percentile(sorted: &[u32], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1])
}

/// p50, p99 and max of sorted samples, in nanoseconds.
#[derive(Clone, Copy)]
pub struct Dist {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Dist {
    pub fn of(sorted: &[u32]) -> Dist {
        Dist { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: percentile(sorted, 1.0) }
    }
}

impl std::fmt::Display for Dist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p50 {}, p99 {}, max {}", fmt_ns(self.p50), fmt_ns(self.p99), fmt_ns(self.max))
    }
}

/// The `main` of a bench with criterion groups and an interleaved check: probes the wake-up
/// state, runs `benches` (unless [`QUICK_ENV`] is set), then `interleaved` with the first probe.
/// Only in a real `cargo bench` run: `cargo test --bench NAME` runs each criterion benchmark once
/// and skips the interleaved check.
pub fn bench_main(benches: impl FnOnce(), interleaved: impl FnOnce(Duration)) {
    let args: Vec<String> = env::args().collect();
    let real_run = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test" || a == "--list");
    let start_probe = real_run.then(wake_probe);
    if let Some(probe) = start_probe {
        println!("wake-up probe (start): condvar ping-pong median round trip {}", wake_state(probe));
    }
    if !env_flag(QUICK_ENV) {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    if let Some(probe) = start_probe {
        interleaved(probe);
    }
}

/// `buffer.len()` calls of `op` in a row, each timed from the end of the previous one (one clock
/// read per call, into the preallocated `buffer`). Returns the mean (ns) and leaves the per-call
/// times sorted in `buffer`.
pub fn timed_block(op: &impl Fn() -> u64, buffer: &mut [u32]) -> f64 {
    let start = Instant::now();
    let mut previous = start;
    for slot in buffer.iter_mut() {
        black_box(op());
        let now = Instant::now();
        *slot = nanos(now - previous);
        previous = now;
    }
    buffer.sort_unstable();
    (previous - start).as_nanos() as f64 / buffer.len() as f64
}
