//! Quickstart: lease a pool, run a real batch of CPU work on it, watch the manager's stats.
//!
//! Shows:
//! - building and starting a thread-backed manager (2 pools × 4 workers);
//! - acquiring a lease with an owner label and an acquire timeout;
//! - fanning a batch out with `lease.executor().submit(..)` and collecting the `TaskHandle`s,
//!   versus running the same work as one blocking `lease.run(..)` call;
//! - two leases in use at once (the second pool is created on demand and hashes data while the
//!   first lease counts twin primes);
//! - `manager.stats()` printed through its `Display` impl;
//! - releasing (explicitly and by drop) and stopping.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --example quickstart
//! ```

use std::time::{Duration, Instant};

use leasepool::{AcquireOptions, LeasedExecutorManager};

/// Primes below this bound are counted.
const LIMIT: u64 = 3_000_000;
/// How many range chunks the batch is split into (more chunks than workers balances the load:
/// trial division costs more near the top of the range).
const CHUNKS: u64 = 24;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = LeasedExecutorManager::builder()
        .max_pools(2)
        .min_pools(1)
        .workers_per_pool(4)
        .name_prefix("quickstart")
        .build()?;
    manager.start()?;
    println!("started: {} pool(s) ready, up to {} pools of 4 workers", manager.total_count(), 2);

    // ── Lease 1: count primes ────────────────────────────────────────────────────────────────
    let primes = manager.acquire(AcquireOptions::new().owner("prime-counter").timeout(Duration::from_secs(2)))?;
    println!("\n{} acquired by {:?} on pool #{}", primes.id(), primes.owner().unwrap_or("-"), primes.pool_seq());

    // Fan out: one task per range, all queued at once on the leased pool.
    let started = Instant::now();
    let step = LIMIT / CHUNKS;
    let handles = (0..CHUNKS)
        .map(|i| {
            let (lo, hi) = (i * step, if i + 1 == CHUNKS { LIMIT } else { (i + 1) * step });
            primes.executor().submit(move || (lo, hi, count_primes(lo, hi)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    println!("submitted {} tasks", handles.len());
    let mut total = 0;
    for handle in handles {
        let (lo, hi, n) = handle.wait()?;
        if lo == 0 || hi == LIMIT {
            println!("  primes in [{lo:>9}, {hi:>9}): {n:>6}");
        }
        total += n;
    }
    let parallel = started.elapsed();
    println!("  ... ({CHUNKS} ranges in all)");
    println!("primes below {LIMIT}: {total} ({CHUNKS} tasks on 4 workers: {parallel:.2?})");

    // The same count as a single blocking task: one worker does all of it.
    let started = Instant::now();
    let single = primes.run(|| count_primes(0, LIMIT))?;
    let sequential = started.elapsed();
    assert_eq!(single, total);
    println!(
        "same count as one lease.run() task: {single} in {sequential:.2?} (fan-out speed-up ×{:.1} on {} CPU(s))",
        sequential.as_secs_f64() / parallel.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );

    // ── Lease 2, while lease 1 is still held: hash 16 MiB in chunks on the other pool ───────
    // The manager started one pool (desired = min_pools = 1); this acquire creates the second
    // one on demand, up to max_pools.
    let hasher = manager.acquire(AcquireOptions::new().owner("checksummer").timeout(Duration::from_secs(2)))?;
    println!("\n{} acquired by {:?} on pool #{}", hasher.id(), hasher.owner().unwrap_or("-"), hasher.pool_seq());
    let hash_started = Instant::now();
    let hash_handles = (0..16u64)
        .map(|chunk| hasher.executor().submit(move || (chunk, fnv1a(&pseudo_random_bytes(chunk, 1 << 20)))))
        .collect::<Result<Vec<_>, _>>()?;
    // Meanwhile lease 1 counts twin primes below 1,000,000.
    let twin_handles = (0..8u64)
        .map(|i| primes.executor().submit(move || count_twin_primes(i * 125_000, (i + 1) * 125_000)))
        .collect::<Result<Vec<_>, _>>()?;

    println!("\nwith both leases busy:\n{}", manager.stats());

    let mut digest = 0u64;
    for handle in hash_handles {
        let (chunk, h) = handle.wait()?;
        if chunk < 2 {
            println!("  chunk {chunk:>2}: fnv1a = {h:016x}");
        }
        digest ^= h.rotate_left(chunk as u32);
    }
    println!("hashed 16 MiB in 16 tasks in {:.2?}, combined digest {digest:016x}", hash_started.elapsed());
    let twins = twin_handles.into_iter().map(|h| h.wait()).sum::<Result<u64, _>>()?;
    println!("twin-prime pairs (p, p+2) with p below 1000000: {twins}");

    // ── Release: explicitly, and by drop ───────────────────────────────────────────────────
    primes.release();
    drop(hasher);
    println!(
        "\nreleased both leases: leased={}, available={}, total={} (the on-demand pool above desired was retired)",
        manager.leased_count(),
        manager.available_count(),
        manager.total_count()
    );
    println!("{}", manager.stats());

    manager.stop();
    println!("\nstopped (running = {})", manager.is_running());
    Ok(())
}

/// Counts the primes in `[lo, hi)` by trial division (deliberately CPU-bound).
fn count_primes(lo: u64, hi: u64) -> u64 {
    (lo..hi).filter(|&n| is_prime(n)).count() as u64
}

/// Counts the `p` in `[lo, hi)` for which `p` and `p + 2` are both prime.
fn count_twin_primes(lo: u64, hi: u64) -> u64 {
    (lo..hi).filter(|&p| is_prime(p) && is_prime(p + 2)).count() as u64
}

fn is_prime(n: u64) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n % 2 == 0 || n % 3 == 0 {
        return false;
    }
    let mut d = 5;
    while d * d <= n {
        if n % d == 0 || n % (d + 2) == 0 {
            return false;
        }
        d += 6;
    }
    true
}

/// Deterministic pseudo-random bytes (xorshift64*), seeded per chunk.
fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
