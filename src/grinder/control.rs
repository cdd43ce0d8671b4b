//! [`RunControl`]: one run of a grinder (start to stop) — the flag, interrupt and batch wake-ups
//! that a cancelling stop fires.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::interrupt::Interrupt;

use super::batch_queue::BatchQueue;

/// One run of a grinder (start to stop): what a cancelling stop fires.
#[derive(Default)]
pub(crate) struct RunControl {
    cancel: AtomicBool,
    pub(crate) interrupt: Interrupt,
    batches: Mutex<Vec<Weak<BatchQueue>>>,
}

impl RunControl {
    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.load(SeqCst)
    }

    /// Cancel pending work: in-flight acquires give up, waiting batches stop waiting.
    pub(crate) fn cancel(&self) {
        self.cancel.store(true, SeqCst);
        self.interrupt.fire();
        let batches: Vec<_> = self.batches.lock().iter().filter_map(Weak::upgrade).collect();
        for batch in batches {
            batch.latch.wake();
        }
    }

    /// Registers a running batch, so a cancel wakes its runner.
    pub(super) fn watch(&self, batch: &Arc<BatchQueue>) {
        let mut batches = self.batches.lock();
        batches.retain(|b| b.strong_count() > 0);
        batches.push(Arc::downgrade(batch));
    }
}
