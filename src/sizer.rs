//! The size signal, sampled on its own thread (`{prefix}-sizer`), so that a size provider that
//! blocks or loops never stalls expiry enforcement, `stop`, `stats` or
//! `desired_executor_count`.
//!
//! A caller asks for a fresh sample and waits for it at most a bound; if the provider is still
//! running (or stuck), the caller gets the last value the provider returned (0 before the first
//! one). A sampler stuck in the provider is abandoned, not joined, by `stop`, which reports it.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::util::catch_panic;

/// A size signal: the number of "units" of load right now.
pub type SizeProvider = Arc<dyn Fn() -> usize + Send + Sync>;

/// Samples one provider on a thread of its own, started on first use.
pub(crate) struct Sizer {
    provider: Option<SizeProvider>,
    thread_name: String,
    log_target: String,
    current: Mutex<Option<Running>>,
}

struct Running {
    inner: Arc<Inner>,
    /// Joined by `stop` unless the sampler is stuck in the provider.
    thread: JoinHandle<()>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    cv: Condvar,
}

#[derive(Default)]
struct State {
    requested: u64,
    done: u64,
    units: usize,
    /// When the sampler entered the provider, while it is in it.
    calling_since: Option<Instant>,
    stop: bool,
}

impl Sizer {
    pub(crate) fn new(provider: Option<SizeProvider>, name_prefix: &str, log_target: &str) -> Sizer {
        Sizer {
            provider,
            thread_name: format!("{name_prefix}-sizer"),
            log_target: log_target.to_owned(),
            current: Mutex::new(None),
        }
    }

    /// Units from the provider: a fresh sample if it comes within `bound`, else the last value
    /// it returned (a provider already stuck is not waited for at all). 0 without a provider;
    /// a panic counts as 0 units.
    pub(crate) fn sample(&self, bound: Duration) -> usize {
        if self.provider.is_none() {
            return 0;
        }
        let Some(inner) = self.running() else { return 0 };
        let mut st = inner.state.lock();
        if st.calling_since.is_some_and(|since| since.elapsed() >= bound) {
            return st.units; // stuck: do not wait again
        }
        st.requested += 1;
        let wanted = st.requested;
        inner.cv.notify_all();
        let deadline = Instant::now() + bound;
        while st.done < wanted && !st.stop {
            if inner.cv.wait_until(&mut st, deadline).timed_out() {
                break;
            }
        }
        st.units
    }

    /// The sampler thread, started if needed.
    fn running(&self) -> Option<Arc<Inner>> {
        let mut current = self.current.lock();
        if let Some(running) = &*current {
            return Some(Arc::clone(&running.inner));
        }
        let provider = Arc::clone(self.provider.as_ref()?);
        let inner = Arc::new(Inner::default());
        let (thread_inner, target) = (Arc::clone(&inner), self.log_target.clone());
        let spawned = std::thread::Builder::new()
            .name(self.thread_name.clone())
            .spawn(move || sampler(&thread_inner, &provider, &target));
        match spawned {
            Ok(thread) => {
                *current = Some(Running { inner: Arc::clone(&inner), thread });
                Some(inner)
            }
            Err(e) => {
                log::warn!(target: &self.log_target, "could not start the size sampler thread: {e}");
                None
            }
        }
    }

    /// Stops the sampler. A sampler inside the provider is abandoned (it exits when the
    /// provider returns); returns how long it had been stuck, if so. Sampling again later starts
    /// a fresh sampler.
    pub(crate) fn stop(&self) -> Option<Duration> {
        let running = self.current.lock().take()?;
        let stuck = {
            let mut st = running.inner.state.lock();
            st.stop = true;
            running.inner.cv.notify_all();
            st.calling_since.map(|since| since.elapsed())
        };
        match stuck {
            Some(stuck) => {
                log::warn!(
                    target: &self.log_target,
                    "the size provider has not returned for {stuck:?}; its thread ({}) is abandoned, not joined",
                    self.thread_name
                );
                Some(stuck)
            }
            None => {
                let _ = running.thread.join();
                None
            }
        }
    }
}

fn sampler(inner: &Inner, provider: &SizeProvider, log_target: &str) {
    let mut st = inner.state.lock();
    loop {
        while st.done == st.requested && !st.stop {
            inner.cv.wait(&mut st);
        }
        if st.stop {
            return;
        }
        let wanted = st.requested;
        st.calling_since = Some(Instant::now());
        drop(st);
        let units = catch_panic(|| provider()).unwrap_or_else(|message| {
            log::debug!(target: log_target, "size_provider panicked, counting 0 units: {message}");
            0
        });
        st = inner.state.lock();
        st.calling_since = None;
        st.units = units;
        st.done = wanted;
        inner.cv.notify_all();
    }
}
