//! The batching thread: waits until a batch is due (threshold, max wait, or a stop), takes every
//! pending job as one batch and runs it — inline, or on a runner thread of its own when more than
//! one batch may run at once.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::util::catch_panic;

use super::batch::run_batch;
use super::shared::{GrinderShared, Item, Phase};
use super::source::LeaseSource;

/// The batching thread: forms batches and runs them (inline, or on runner threads when more
/// than one may run at once). A panic here is a bug; it is logged, pending jobs are cancelled and
/// further intake fails fast until `stop`.
pub(super) fn batching_thread<S: LeaseSource>(shared: Arc<GrinderShared<S>>) {
    let outcome = catch_panic(|| batching_loop(&shared));
    shared.state.lock().batcher_alive = false;
    shared.wake.notify_all();
    if let Err(p) = outcome {
        log::error!(target: &shared.config.log_target, "grinder loop crashed: {}", p);
        shared.cancel_pending(|phase| {
            if *phase == Phase::Running {
                *phase = Phase::Crashed;
            }
        });
    }
}

fn batching_loop<S: LeaseSource>(shared: &Arc<GrinderShared<S>>) {
    let config = &shared.config;
    let mut runners: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let (batch, control) = {
            let mut st = shared.state.lock();
            loop {
                let stopping = matches!(st.phase, Phase::Stopping(_));
                let room = st.running_batches < config.max_concurrent_batches;
                if stopping && st.pending.is_empty() && st.running_batches == 0 {
                    drop(st);
                    for runner in runners {
                        let _ = runner.join();
                    }
                    return;
                }
                if let Some(oldest) = st.oldest_since.filter(|_| !st.pending.is_empty()) {
                    let waited = oldest.elapsed();
                    let due = stopping || st.pending.len() >= config.batch_size_threshold || waited >= config.max_wait;
                    if due && room {
                        break;
                    }
                    if !due {
                        let deadline = Instant::now() + (config.max_wait - waited);
                        shared.wake.wait_until(&mut st, deadline);
                        continue;
                    }
                }
                shared.wake.wait(&mut st);
            }
            let items: Vec<Item> = st.pending.drain(..).collect();
            (items, Arc::clone(&st.control))
        };
        // Jobs cancelled through their handle left the queue then and there; one cancelled in the
        // instant its batch formed is skipped when the batch reaches it.
        let live = batch;
        if live.is_empty() {
            continue;
        }
        let n = {
            let mut st = shared.state.lock();
            st.batch_no += 1;
            st.running_batches += 1;
            st.batch_no
        };
        if config.max_concurrent_batches == 1 {
            run_batch(shared, live, n, &control);
        } else {
            runners.retain(|r| !r.is_finished());
            let (runner_shared, control) = (Arc::clone(shared), Arc::clone(&control));
            let spawned = std::thread::Builder::new()
                .name(format!("{}-batch-{n}", config.owner_prefix))
                .spawn(move || run_batch(&runner_shared, live, n, &control));
            match spawned {
                Ok(handle) => runners.push(handle),
                Err(e) => {
                    // The batch's jobs were dropped with the closure: they resolved as cancelled.
                    log::error!(target: &config.log_target, "batch failed (batch_id={n}): could not spawn a runner: {e}");
                    shared.state.lock().running_batches -= 1;
                }
            }
        }
    }
}
