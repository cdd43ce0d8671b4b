//! An async service on tokio: a burst of requests, each leasing a pool for its CPU work without
//! blocking a runtime thread (feature `async`).
//!
//! Shows:
//! - `manager.acquire_async(..)`: a request waits for a pool in the manager's queue, as a
//!   future (no thread per waiting request; the options' timeout is the request's budget);
//! - `lease.run_async(..)` for one piece of CPU work, and `lease.executor().submit(..)` handles
//!   awaited directly (`TaskHandle` is `IntoFuture`) to fan a request's work out over the pool;
//! - backpressure: 400 requests arrive at once for 3 pools, and are served in turn;
//! - request latency percentiles, then `manager.stats()`.
//!
//! Run it with:
//!
//! ```text
//! cargo run --release --features async --example async_service
//! ```

use std::time::{Duration, Instant};

use leasepool::{AcquireError, AcquireOptions, LeasedExecutorManager};

/// What a request (and `main`) can fail with.
type Error = Box<dyn std::error::Error + Send + Sync>;

/// Requests in the burst.
const REQUESTS: u64 = 400;
/// Each request's budget for getting a pool.
const BUDGET: Duration = Duration::from_secs(10);

/// The CPU work of one request: count the primes in `[from, from + span)` by trial division.
fn count_primes(from: u64, span: u64) -> u64 {
    (from..from + span).filter(|&n| n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)).count() as u64
}

/// One request: lease a pool, do the work on it, release it (on drop). Every fourth request
/// fans its work out in four chunks and awaits the handles.
async fn handle(manager: LeasedExecutorManager, id: u64) -> Result<u64, Error> {
    let options = AcquireOptions::new().owner(format!("req-{id}")).timeout(BUDGET);
    let lease = manager.acquire_async(options).await?;
    let from = 1_000_000 + id * 10_000;
    let primes = if id % 4 == 0 {
        let chunks: Vec<_> = (0..4)
            .map(|c| lease.executor().submit(move || count_primes(from + c * 2_500, 2_500)))
            .collect::<Result<_, _>>()?;
        let mut total = 0;
        for chunk in chunks {
            total += chunk.await?;
        }
        total
    } else {
        lease.run_async(move || count_primes(from, 10_000)).await?
    };
    Ok(primes)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let manager = LeasedExecutorManager::builder().max_pools(3).workers_per_pool(2).build()?;
    manager.start()?;

    let began = Instant::now();
    let requests: Vec<_> = (0..REQUESTS)
        .map(|id| {
            let manager = manager.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let outcome = handle(manager, id).await;
                (start.elapsed(), outcome)
            })
        })
        .collect();

    let mut latencies = Vec::new();
    let (mut primes, mut timed_out) = (0, 0);
    for request in requests {
        let (latency, outcome) = request.await?;
        match outcome {
            Ok(n) => {
                primes += n;
                latencies.push(latency);
            }
            Err(e) if matches!(e.downcast_ref(), Some(AcquireError::TimedOut { .. })) => timed_out += 1,
            Err(e) => return Err(e),
        }
    }
    let wall = began.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];

    println!(
        "{REQUESTS} requests on 3 pools x 2 workers in {wall:.2?} ({:.0} requests/s)",
        REQUESTS as f64 / wall.as_secs_f64()
    );
    println!("served: {}, timed out: {timed_out}, primes counted: {primes}", latencies.len());
    println!(
        "latency (arrival to response): p50 {:.2?}  p90 {:.2?}  p99 {:.2?}  max {:.2?}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    println!("\n{}", manager.stats());
    manager.stop();
    Ok(())
}
