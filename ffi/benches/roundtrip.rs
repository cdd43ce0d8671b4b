//! The cost of the C boundary: one submit + wait round trip of a trivial task through the C ABI
//! versus the same round trip through the Rust API, in the same run.
//!
//! Variants (each on its own started manager of 1 pool of [`WORKERS`] threads, one lease held):
//!
//! - `rust_api`: `lease.executor().submit(|| black_box(1))` + `handle.wait()`.
//! - `c_abi`: `lp_submit(executor, task, NULL, NULL, &task)` + `lp_task_wait(task)` +
//!   `lp_task_free(task)`, called from Rust through `extern "C"` declarations of the library's
//!   exported symbols, with an `unsafe extern "C" fn` task: exactly the calls, and the code path,
//!   of a C caller. (It has its own manager, built and leased through the C API too: an
//!   `lp_executor` cannot be made from a Rust `LeasedExecutor`, so the two cannot share a lease.)
//! - `c_abi_drop`: the same with a non-NULL `userdata` and a `drop_userdata` (a no-op function),
//!   the usual shape of a C submit: the library then guarantees the drop when the task resolves.
//! - `c_driver`: the same loop written in C ([`C_DRIVER`]), compiled at run time with `cc` against
//!   `libleasepool_ffi.a` and run as a child process that times blocks of round trips on request
//!   (stdin: a count; stdout: mean, p50, p99, max in ns). Skipped with a note when `cc` is
//!   missing or the compile fails.
//!
//! **Criterion group** `roundtrip` (`rust_api`, `c_abi`, `c_abi_drop`; skipped when
//! `LEASEPOOL_BENCH_QUICK=1`).
//!
//! **Interleaved check** (only in a real `cargo bench` run, not `cargo test --bench roundtrip`):
//! rounds of one block of [`BLOCK`] round trips per variant, the order rotating each round, so
//! every block has the others run moments apart under the same machine state. Reported per
//! variant: the median over rounds of the per-round mean and p99; and the median (and range) of
//! the per-round ratios to `rust_api`, against the goal: every C variant ≤ 1.2×. A condvar
//! ping-pong probe, printed at the start, before the check and at the end, says whether the VM
//! is in its fast (~5 µs) or slow (~50 µs) wake-up state.
//!
//! Environment: `LEASEPOOL_BENCH_QUICK=1` skips the criterion group; `LEASEPOOL_BENCH_ROUNDS=n`
//! sets the rounds (default 15); `LEASEPOOL_BENCH_VERBOSE=1` prints every round.
//!
//! Run with `cargo bench -p leasepool-ffi --bench roundtrip`; results in `docs/PERFORMANCE.md`
//! ("C API").

use std::env;
use std::ffi::{c_char, c_void, CStr};
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use leasepool::{AcquireOptions, ExecutorLease, LeasedExecutorManager};
use leasepool_ffi::{lp_callback, lp_status};

#[path = "../../benches/measure/mod.rs"]
mod measure;
use measure::{bench_main, env_flag, fmt_ns, median, timed_block, wake_probe, wake_state, Dist};

/// Declares the opaque handle types as a C header (or bindgen) does: never dereferenced, only
/// passed behind pointers.
macro_rules! opaque {
    ($($name:ident),*) => {$(
        #[repr(C)]
        struct $name {
            _opaque: [u8; 0],
        }
    )*};
}
opaque!(LpConfig, LpManager, LpLease, LpExecutor, LpTask);

// The library's exported C symbols, declared as a C program's header declares them (the rlib
// this bench links defines them).
extern "C" {
    fn lp_config_new() -> *mut LpConfig;
    fn lp_config_free(config: *mut LpConfig);
    fn lp_config_set_max_pools(config: *mut LpConfig, value: usize) -> lp_status;
    fn lp_config_set_min_pools(config: *mut LpConfig, value: usize) -> lp_status;
    fn lp_config_set_workers_per_pool(config: *mut LpConfig, value: usize) -> lp_status;
    fn lp_config_set_default_lease_ms(config: *mut LpConfig, value: u64) -> lp_status;
    fn lp_manager_new(config: *const LpConfig, out: *mut *mut LpManager) -> lp_status;
    fn lp_manager_start(manager: *const LpManager) -> lp_status;
    fn lp_manager_stop(manager: *const LpManager) -> lp_status;
    fn lp_manager_free(manager: *mut LpManager);
    fn lp_manager_acquire(manager: *const LpManager, options: *const c_void, out: *mut *mut LpLease) -> lp_status;
    fn lp_lease_executor(lease: *const LpLease) -> *mut LpExecutor;
    fn lp_lease_free(lease: *mut LpLease);
    fn lp_executor_free(executor: *mut LpExecutor);
    fn lp_submit(
        executor: *const LpExecutor,
        task: lp_callback,
        userdata: *mut c_void,
        drop_userdata: lp_callback,
        out: *mut *mut LpTask,
    ) -> lp_status;
    fn lp_task_wait(task: *const LpTask) -> lp_status;
    fn lp_task_free(task: *mut LpTask);
    fn lp_last_error_message() -> *const c_char;
}

/// Worker threads of every variant's one pool (as in `benches/lease.rs`).
const WORKERS: usize = 2;
/// Long enough that no lease reaches soft expiry during a run.
const LONG_LEASE: Duration = Duration::from_secs(3600);
/// Round trips per block of the interleaved check.
const BLOCK: usize = 20_000;
/// The goal: a C ABI round trip costs at most this many times a Rust API round trip.
const GOAL: f64 = 1.2;

const ROUNDS_ENV: &str = "LEASEPOOL_BENCH_ROUNDS";
const VERBOSE_ENV: &str = "LEASEPOOL_BENCH_VERBOSE";
const DEFAULT_ROUNDS: usize = 15;

// ------------------------------------------------------------------------------------------
// The two in-process sides
// ------------------------------------------------------------------------------------------

/// The Rust API side: a started manager and one held lease.
struct RustSide {
    manager: LeasedExecutorManager,
    lease: Option<ExecutorLease>,
}

impl RustSide {
    fn new() -> RustSide {
        let manager = LeasedExecutorManager::builder()
            .max_pools(1)
            .min_pools(1)
            .workers_per_pool(WORKERS)
            .default_lease(LONG_LEASE)
            .build()
            .expect("valid configuration");
        manager.start().expect("manager starts");
        let lease = manager.acquire(AcquireOptions::new()).expect("acquire");
        RustSide { manager, lease: Some(lease) }
    }

    /// One round trip (never inlined: a profiler can find it, e.g. callgrind's `--toggle-collect`).
    #[inline(never)]
    fn round_trip(&self) -> u64 {
        let lease = self.lease.as_ref().expect("lease held");
        let handle = lease.executor().submit(|| black_box(1u64)).expect("submit");
        handle.wait().expect("task runs")
    }
}

impl Drop for RustSide {
    fn drop(&mut self) {
        drop(self.lease.take());
        self.manager.stop();
    }
}

/// The task body of the C ABI side: does nothing, like the Rust side's `|| 1`.
unsafe extern "C" fn c_task(userdata: *mut c_void) {
    black_box(userdata);
}

/// The `drop_userdata` of the `c_abi_drop` variant: does nothing (the userdata is static).
unsafe extern "C" fn c_drop(userdata: *mut c_void) {
    black_box(userdata);
}

/// The `userdata` of the `c_abi_drop` variant (only its address is used).
static USERDATA: u64 = 0;

/// Panics with the library's message unless `status` is `LP_OK`.
fn ok(status: lp_status, what: &str) {
    if status != lp_status::LP_OK {
        // SAFETY: lp_last_error_message returns a NUL-terminated string, valid until the next
        // failing call on this thread; it is copied at once.
        let message = unsafe { CStr::from_ptr(lp_last_error_message()) }.to_string_lossy().into_owned();
        panic!("{what}: {status:?}: {message}");
    }
}

/// The C ABI side: a manager, a lease and an executor, all handles of the C API.
struct CSide {
    manager: *mut LpManager,
    lease: *mut LpLease,
    executor: *mut LpExecutor,
}

impl CSide {
    fn new() -> CSide {
        // SAFETY: the C API used as documented: every handle comes from the library, is checked
        // (through the status), and is freed once, in `Drop`; the config is freed here after
        // building the manager (which keeps what it needs).
        unsafe {
            let config = lp_config_new();
            ok(lp_config_set_max_pools(config, 1), "lp_config_set_max_pools");
            ok(lp_config_set_min_pools(config, 1), "lp_config_set_min_pools");
            ok(lp_config_set_workers_per_pool(config, WORKERS), "lp_config_set_workers_per_pool");
            ok(lp_config_set_default_lease_ms(config, LONG_LEASE.as_millis() as u64), "lp_config_set_default_lease_ms");
            let mut manager = std::ptr::null_mut();
            ok(lp_manager_new(config, &mut manager), "lp_manager_new");
            lp_config_free(config);
            ok(lp_manager_start(manager), "lp_manager_start");
            let mut lease = std::ptr::null_mut();
            ok(lp_manager_acquire(manager, std::ptr::null(), &mut lease), "lp_manager_acquire");
            let executor = lp_lease_executor(lease);
            assert!(!executor.is_null(), "lp_lease_executor returned NULL");
            CSide { manager, lease, executor }
        }
    }

    /// One round trip, as a C caller makes it (never inlined, like the Rust side's): NULL
    /// userdata and no `drop_userdata`.
    #[inline(never)]
    fn round_trip(&self) -> u64 {
        let mut task = std::ptr::null_mut();
        // SAFETY: `executor` is live until `Drop`; `c_task` is a valid function that ignores its
        // (NULL) userdata; `task` is valid for writes and, once set, waited for and freed once.
        unsafe {
            ok(lp_submit(self.executor, Some(c_task), std::ptr::null_mut(), None, &mut task), "lp_submit");
            ok(lp_task_wait(task), "lp_task_wait");
            lp_task_free(task);
        }
        1
    }

    /// One round trip with a userdata and its `drop_userdata`.
    #[inline(never)]
    fn round_trip_with_drop(&self) -> u64 {
        let mut task = std::ptr::null_mut();
        let userdata = std::ptr::addr_of!(USERDATA).cast_mut().cast::<c_void>();
        // SAFETY: as in `round_trip`; `c_task` and `c_drop` only pass the pointer to
        // `black_box`, never through it, so a pointer to an immutable static is fine.
        unsafe {
            ok(lp_submit(self.executor, Some(c_task), userdata, Some(c_drop), &mut task), "lp_submit");
            ok(lp_task_wait(task), "lp_task_wait");
            lp_task_free(task);
        }
        1
    }
}

impl Drop for CSide {
    fn drop(&mut self) {
        // SAFETY: each handle came from the library in `new` and is freed exactly once here.
        unsafe {
            lp_executor_free(self.executor);
            lp_lease_free(self.lease);
            ok(lp_manager_stop(self.manager), "lp_manager_stop");
            lp_manager_free(self.manager);
        }
    }
}

// ------------------------------------------------------------------------------------------
// The C driver
// ------------------------------------------------------------------------------------------

/// The C-driven variant: a C program doing the round trips itself. Reads a count per line on
/// stdin, runs that many round trips (one clock read per round trip, each timed from the end of
/// the previous one) and prints "mean p50 p99 max" in ns; exits on 0 or end of input.
const C_DRIVER: &str = r#"
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "leasepool.h"

static void task(void *userdata) { (void)userdata; }

static void check(lp_status status, const char *what) {
    if (status != LP_OK) {
        fprintf(stderr, "%s: %s: %s\n", what, lp_status_name((uint32_t)status), lp_last_error_message());
        exit(1);
    }
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int main(void) {
    lp_config *config = lp_config_new();
    check(lp_config_set_max_pools(config, 1), "max_pools");
    check(lp_config_set_min_pools(config, 1), "min_pools");
    check(lp_config_set_workers_per_pool(config, WORKERS), "workers_per_pool");
    check(lp_config_set_default_lease_ms(config, 3600000), "default_lease_ms");
    lp_manager *manager = NULL;
    check(lp_manager_new(config, &manager), "lp_manager_new");
    lp_config_free(config);
    check(lp_manager_start(manager), "lp_manager_start");
    lp_lease *lease = NULL;
    check(lp_manager_acquire(manager, NULL, &lease), "lp_manager_acquire");
    lp_executor *executor = lp_lease_executor(lease);
    char line[64];
    while (fgets(line, sizeof line, stdin) != NULL) {
        size_t n = (size_t)strtoull(line, NULL, 10);
        if (n == 0) {
            break;
        }
        uint32_t *times = malloc(n * sizeof *times);
        if (times == NULL) {
            return 1;
        }
        uint64_t start = now_ns(), previous = start;
        for (size_t i = 0; i < n; i++) {
            lp_task *t = NULL;
            check(lp_submit(executor, task, NULL, NULL, &t), "lp_submit");
            check(lp_task_wait(t), "lp_task_wait");
            lp_task_free(t);
            uint64_t now = now_ns();
            times[i] = (uint32_t)(now - previous > UINT32_MAX ? UINT32_MAX : now - previous);
            previous = now;
        }
        double mean = (double)(previous - start) / (double)n;
        qsort(times, n, sizeof *times, by_value);
        size_t p99 = (size_t)((double)n * 0.99 + 0.999999);
        printf("%.1f %u %u %u\n", mean, (unsigned)times[(n + 1) / 2 - 1], (unsigned)times[(p99 ? p99 : 1) - 1],
               (unsigned)times[n - 1]);
        fflush(stdout);
        free(times);
    }
    lp_executor_free(executor);
    lp_lease_free(lease);
    check(lp_manager_stop(manager), "lp_manager_stop");
    lp_manager_free(manager);
    return 0;
}
"#;

/// The running C driver.
struct CDriver {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl CDriver {
    /// Compiles and starts the driver, or says why not.
    fn start() -> Result<CDriver, String> {
        let exe = env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let deps = exe.parent().ok_or("no bench directory")?;
        let archive = [deps.to_path_buf(), deps.parent().unwrap_or(deps).to_path_buf()]
            .iter()
            .map(|dir| dir.join("libleasepool_ffi.a"))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("libleasepool_ffi.a not found in {} or its parent", deps.display()))?;
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("roundtrip-c-driver");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let source = dir.join("driver.c");
        let binary = dir.join("driver");
        std::fs::write(&source, C_DRIVER).map_err(|e| format!("{}: {e}", source.display()))?;
        let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../include");
        let output = Command::new("cc")
            .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"])
            .arg(format!("-DWORKERS={WORKERS}"))
            .arg("-I")
            .arg(&include)
            .arg(&source)
            .arg(&archive)
            .args(["-lpthread", "-ldl", "-lm", "-o"])
            .arg(&binary)
            .output()
            .map_err(|e| format!("cannot run cc: {e}"))?;
        if !output.status.success() {
            return Err(format!("cc failed:\n{}", String::from_utf8_lossy(&output.stderr)));
        }
        let mut child = Command::new(&binary)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(CDriver { child, stdin, stdout })
    }

    /// Runs `n` round trips in the driver: (mean, p50, p99, max) in ns.
    fn block(&mut self, n: usize) -> (f64, Dist) {
        writeln!(self.stdin, "{n}").and_then(|()| self.stdin.flush()).expect("write to the C driver");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from the C driver");
        let values: Vec<f64> = line.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        assert_eq!(values.len(), 4, "unexpected C driver output {line:?}");
        (values[0], Dist { p50: values[1], p99: values[2], max: values[3] })
    }
}

impl Drop for CDriver {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "0").and_then(|()| self.stdin.flush());
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------------------------------
// Criterion group
// ------------------------------------------------------------------------------------------

fn roundtrip_group(c: &mut Criterion) {
    let rust = RustSide::new();
    let cside = CSide::new();
    let mut group = c.benchmark_group("roundtrip");
    group.bench_function("rust_api", |b| b.iter(|| rust.round_trip()));
    group.bench_function("c_abi", |b| b.iter(|| cside.round_trip()));
    group.bench_function("c_abi_drop", |b| b.iter(|| cside.round_trip_with_drop()));
    group.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4)).sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = roundtrip_group
}

// ------------------------------------------------------------------------------------------
// Interleaved check
// ------------------------------------------------------------------------------------------

/// Per-round results of one variant.
#[derive(Default)]
struct Series {
    means: Vec<f64>,
    p99s: Vec<f64>,
}

/// Median and range of the per-round ratios `a / b`.
fn ratios(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y.max(1.0)).collect();
    (median(&r), r.iter().copied().fold(f64::INFINITY, f64::min), r.iter().copied().fold(f64::NEG_INFINITY, f64::max))
}

fn interleaved_check(start_probe: Duration) {
    let rounds = env::var(ROUNDS_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&r: &usize| r > 0)
        .unwrap_or(DEFAULT_ROUNDS);
    let verbose = env_flag(VERBOSE_ENV);
    let probe = wake_probe();
    let rust = RustSide::new();
    let cside = CSide::new();
    let mut driver = match CDriver::start() {
        Ok(driver) => Some(driver),
        Err(why) => {
            println!("note: the C-driven variant is skipped: {why}");
            None
        }
    };
    let names = ["rust_api", "c_abi", "c_abi_drop", "c_driver"];
    let variants = if driver.is_some() { 4 } else { 3 };
    let mut buffer = vec![u32::MAX; BLOCK];
    let mut block = |variant: usize| -> (f64, Dist) {
        let mean = match variant {
            0 => timed_block(&|| rust.round_trip(), &mut buffer),
            1 => timed_block(&|| cside.round_trip(), &mut buffer),
            2 => timed_block(&|| cside.round_trip_with_drop(), &mut buffer),
            _ => return driver.as_mut().expect("driver running").block(BLOCK),
        };
        (mean, Dist::of(&buffer))
    };
    println!();
    println!(
        "== interleaved check: submit + wait round trip of a no-op task, 1 pool of {WORKERS} threads per variant; \
         {rounds} rounds of {BLOCK}-round-trip blocks, order rotating (wake-up probe {}) ==",
        wake_state(probe)
    );
    let started = Instant::now();
    for variant in 0..variants {
        block(variant); // warm-up
    }
    let mut series: Vec<Series> = (0..variants).map(|_| Series::default()).collect();
    for round in 0..rounds {
        let mut line = format!("  round {round:>2}:");
        for variant in (0..variants).map(|k| (round + k) % variants) {
            let (mean, dist) = block(variant);
            series[variant].means.push(mean);
            series[variant].p99s.push(dist.p99);
            line += &format!(" {} mean {}, {dist};", names[variant], fmt_ns(mean));
        }
        if verbose {
            println!("{line}");
        }
    }
    let end_probe = wake_probe();
    drop(driver);
    drop(cside);
    drop(rust);

    println!();
    println!("== summary ({rounds} rounds, {:.1} s) ==", started.elapsed().as_secs_f64());
    println!("mean, p99: median over rounds of each block's value; ratio: median over rounds of the per-round");
    println!("ratio to rust_api (range: lowest-highest round); goal: each C variant / rust_api <= {GOAL}");
    println!(
        "{:<10} {:>10} {:>10} {:>14} {:>16} {:>14} {:>5}",
        "variant", "mean", "p99", "mean ratio", "range", "p99 ratio", "met"
    );
    for (variant, s) in series.iter().enumerate() {
        let (ratio, lo, hi) = ratios(&s.means, &series[0].means);
        let (p99_ratio, _, _) = ratios(&s.p99s, &series[0].p99s);
        let met = match variant {
            0 => "-",
            _ if ratio <= GOAL => "yes",
            _ => "NO",
        };
        println!(
            "{:<10} {:>10} {:>10} {:>13.3}x {:>16} {:>13.3}x {:>5}",
            names[variant],
            fmt_ns(median(&s.means)),
            fmt_ns(median(&s.p99s)),
            ratio,
            format!("{lo:.3}-{hi:.3}x"),
            p99_ratio,
            met
        );
    }
    println!(
        "wake-up probe (condvar ping-pong median): start {}, before the check {}, end {}",
        wake_state(start_probe),
        wake_state(probe),
        wake_state(end_probe)
    );
}

fn main() {
    bench_main(benches, interleaved_check);
}
