//! C callbacks and their `userdata`: the one place that promises `drop_userdata` runs exactly
//! once.

use std::ffi::c_void;

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
/// the function if it ran, or when the job is dropped unrun (cancelled, refused, revoked).
pub(crate) struct CJob {
    f: unsafe extern "C" fn(*mut c_void),
    data: Userdata,
}

impl CJob {
    /// A job running `f(userdata)`.
    pub(crate) fn new(f: unsafe extern "C" fn(*mut c_void), data: Userdata) -> CJob {
        CJob { f, data }
    }

    /// Runs the function, then drops the userdata.
    pub(crate) fn run(self) {
        // SAFETY: the caller gave `f` to be called with this userdata from a pool thread.
        unsafe { (self.f)(self.data.ptr()) }
    }
}
