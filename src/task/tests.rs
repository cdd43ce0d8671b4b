//! Unit tests of the completion slot's notification and of `try_take`, with a stand-in owner.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Weak};
use std::task::{Wake, Waker};
use std::time::Duration;

use parking_lot::Mutex;

use super::completer::task_pair;
use super::slot::{QueuedTask, Resolution, TaskOwner};
use crate::error::TaskError;

/// An owner that refuses work once told to, and counts what it was asked.
#[derive(Default)]
struct Owner {
    refusing: Mutex<bool>,
    accounted: Mutex<Vec<Resolution>>,
    watched: Mutex<Vec<Weak<dyn QueuedTask>>>,
}

impl TaskOwner for Owner {
    fn refuse(&self) -> Option<TaskError> {
        self.refusing.lock().then_some(TaskError::Cancelled)
    }

    fn account(&self, resolution: Resolution, _tag: u64) {
        self.accounted.lock().push(resolution);
    }

    fn watch(&self, task: Weak<dyn QueuedTask>) {
        self.watched.lock().push(task);
    }
}

#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn counter() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count::default());
    (Arc::clone(&count), Waker::from(count))
}

#[test]
fn try_take_takes_once_and_never_panics_after() {
    let owner = Arc::new(Owner::default());
    let (handle, completer) = task_pair::<u32>(owner, 0);
    assert_eq!(handle.try_take(), None, "not resolved yet");
    completer.run(|| 7);
    assert_eq!(handle.try_take(), Some(Ok(7)));
    assert_eq!(handle.try_take(), None, "a second take finds nothing");
    assert_eq!(handle.try_take(), None);
    assert!(handle.is_finished());
    assert!(handle.register_waker(&counter().1), "taken counts as resolved");
}

#[test]
fn a_job_dropped_unrun_notifies_once_even_without_its_handle() {
    let owner = Arc::new(Owner::default());
    let (handle, completer) = task_pair::<u32>(Arc::clone(&owner) as Arc<dyn TaskOwner>, 0);
    let (count, waker) = counter();
    let calls = Arc::new(AtomicUsize::new(0));
    assert!(!handle.register_waker(&waker));
    let c = Arc::clone(&calls);
    handle.on_complete(move || {
        c.fetch_add(1, SeqCst);
    });
    drop(handle);
    drop(completer);
    assert_eq!((count.0.load(SeqCst), calls.load(SeqCst)), (1, 1));
    assert_eq!(*owner.accounted.lock(), [Resolution::Cancelled]);
}

#[test]
fn registrations_on_a_queued_task_ask_the_owner_to_watch_it_once() {
    let owner = Arc::new(Owner::default());
    let (handle, completer) = task_pair::<u32>(Arc::clone(&owner) as Arc<dyn TaskOwner>, 0);
    let (count, waker) = counter();
    assert!(!handle.register_waker(&waker));
    assert!(!handle.register_waker(&waker));
    handle.on_complete(|| {});
    let handle = handle.wait_timeout(Duration::ZERO).unwrap_err();
    assert_eq!(owner.watched.lock().len(), 1, "one watch per task, whoever asks first");
    // The owner starts refusing; the watched task is resolved through its registry entry.
    *owner.refusing.lock() = true;
    let watched = owner.watched.lock().pop().unwrap().upgrade().expect("the job keeps the slot alive");
    assert!(watched.settle_if_refused());
    assert_eq!(count.0.load(SeqCst), 1);
    assert_eq!(handle.wait(), Err(TaskError::Cancelled));
    assert_eq!(completer.run(|| 1), Resolution::Cancelled, "the pool skips it");
    assert_eq!(count.0.load(SeqCst), 1, "no second wake-up");
}

#[test]
fn registering_on_a_queued_task_of_a_refusing_owner_resolves_it_at_once() {
    let owner = Arc::new(Owner::default());
    let (handle, _completer) = task_pair::<u32>(Arc::clone(&owner) as Arc<dyn TaskOwner>, 0);
    *owner.refusing.lock() = true;
    let (count, waker) = counter();
    // Stored first (returns false), then the owner's refusal resolves the task and wakes it.
    assert!(!handle.register_waker(&waker));
    assert_eq!(count.0.load(SeqCst), 1);
    assert_eq!(handle.wait(), Err(TaskError::Cancelled));
}

#[test]
fn a_running_task_is_not_watched() {
    let owner = Arc::new(Owner::default());
    let (handle, completer) = task_pair::<u32>(Arc::clone(&owner) as Arc<dyn TaskOwner>, 0);
    let handle = Arc::new(handle);
    let h = Arc::clone(&handle);
    let (count, waker) = counter();
    // Registered from inside the running task: no watch, one wake-up when it returns.
    completer.run(move || {
        assert!(!h.register_waker(&waker));
        5
    });
    assert!(owner.watched.lock().is_empty());
    assert_eq!(count.0.load(SeqCst), 1);
    assert_eq!(Arc::into_inner(handle).unwrap().wait(), Ok(5));
}
