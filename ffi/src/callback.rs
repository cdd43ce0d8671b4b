//! C callbacks and their `userdata`: the one place that promises `drop_userdata` runs exactly
//! once.

use std::ffi::c_void;
use std::sync::Arc;

use parking_lot::Mutex;

/// A C function taking the caller's `userdata` pointer: a task body, a `drop_userdata`, or a
/// completion notification. Nullable where the documentation says so.
#[allow(non_camel_case_types)]
pub type lp_callback = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// A `userdata` pointer with its optional destructor, which runs exactly once: when this value
/// is dropped, whichever thread that happens on.
pub(crate) struct Userdata {
    ptr: *mut c_void,
    drop: lp_callback,
}

// SAFETY: the header requires that `userdata` (and `drop_userdata`) may be used from any thread
// (the task runs on a pool thread, and the drop happens on whichever thread resolves the task);
// this library only passes the pointer back to the caller's own functions.
unsafe impl Send for Userdata {}
// SAFETY: as above; the pointer is only read (copied) through a shared reference.
unsafe impl Sync for Userdata {}

impl Userdata {
    /// Takes ownership of `ptr` (with its destructor).
    pub(crate) fn new(ptr: *mut c_void, drop: lp_callback) -> Userdata {
        Userdata { ptr, drop }
    }

    /// The raw pointer, to pass back to C.
    pub(crate) fn ptr(&self) -> *mut c_void {
        self.ptr
    }
}

impl Drop for Userdata {
    fn drop(&mut self) {
        if let Some(drop_userdata) = self.drop.take() {
            // SAFETY: the caller gave this function for this pointer and promised it may be
            // called once from any thread; `take` makes it once.
            unsafe { drop_userdata(self.ptr) }
        }
    }
}

/// A C function plus its userdata, run at most once; `drop_userdata` runs exactly once, after
/// the function if it ran, or when the job is dropped unrun (refused, or discarded by its pool).
///
/// A task can also resolve without running while its job still sits in a pool's queue
/// (`lp_task_cancel`, revocation, manager stop): the job is then discarded only when a worker
/// reaches it. So that `drop_userdata` runs as soon as the task is seen resolved, hand its
/// [`dropper`](Self::dropper) to the task.
pub(crate) struct CJob {
    f: unsafe extern "C" fn(*mut c_void),
    data: Data,
}

/// The job's userdata: owned by the job alone when there is no `drop_userdata` to run (nothing to
/// hurry), else shared with the task (see [`Dropper`]).
enum Data {
    Owned(Userdata),
    Shared(Dropper),
    /// Run (or being dropped).
    Gone,
}

/// A job's userdata shared between the job and its task: whichever comes first takes it out and
/// drops it, the job to run it (then drops it after the function returned) or the task resolving
/// without running. The task's resolution (claimed to run, or resolved unstarted) decides which.
#[derive(Clone)]
pub(crate) struct Dropper(Arc<Mutex<Option<Userdata>>>);

impl Dropper {
    /// Drops the userdata (runs its `drop_userdata`) unless it was taken already. Call once the
    /// task has resolved: it then either ran (and its job took the userdata first) or never will.
    pub(crate) fn drop_now(&self) {
        let data = self.0.lock().take();
        drop(data);
    }

    fn take(&self) -> Option<Userdata> {
        self.0.lock().take()
    }
}

impl CJob {
    /// A job running `f(userdata)`.
    pub(crate) fn new(f: unsafe extern "C" fn(*mut c_void), data: Userdata) -> CJob {
        let data = if data.drop.is_some() {
            Data::Shared(Dropper(Arc::new(Mutex::new(Some(data)))))
        } else {
            Data::Owned(data)
        };
        CJob { f, data }
    }

    /// The task's side of the userdata, to drop it when the task resolves (a completion
    /// callback, and whenever the task is seen resolved); `None` when there is no
    /// `drop_userdata`.
    pub(crate) fn dropper(&self) -> Option<Dropper> {
        match &self.data {
            Data::Owned(_) | Data::Gone => None,
            Data::Shared(dropper) => Some(dropper.clone()),
        }
    }

    /// Runs the function, then drops the userdata.
    pub(crate) fn run(mut self) {
        let data = match std::mem::replace(&mut self.data, Data::Gone) {
            Data::Owned(data) => Some(data),
            Data::Shared(dropper) => dropper.take(),
            Data::Gone => None,
        };
        // Never `None` in practice: this runs only once the task was claimed to run, and the
        // task's side takes the userdata only once the task resolved without running.
        if let Some(data) = data {
            // SAFETY: the caller gave `f` to be called with this userdata from a pool thread.
            unsafe { (self.f)(data.ptr()) }
        }
    }
}

impl Drop for CJob {
    /// A job dropped unrun (its task resolved without running and a worker discarded it, or the
    /// submission was refused): drop the userdata now, whether or not a task handle exists.
    fn drop(&mut self) {
        if let Data::Shared(dropper) = &self.data {
            dropper.drop_now();
        }
    }
}
