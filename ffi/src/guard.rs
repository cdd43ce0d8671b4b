//! The boundary itself: every entry point runs its body through [`guard`], which turns a
//! [`Failure`] into a status code (recording its message for `lp_last_error_message`) and a
//! panic into `LP_PANIC`, so that no unwinding ever reaches the C caller. Also the checks every
//! pointer argument goes through.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::status::{lp_status, Status};

thread_local! {
    /// The message of the last failed call on this thread.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    /// The configuration field the last failed call on this thread was about, if any.
    static LAST_FIELD: RefCell<CString> = RefCell::new(CString::default());
}

/// Why a call failed: its status and the message `lp_last_error_message` will return.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: lp_status,
    pub(crate) message: String,
    /// The configuration field at fault, for `lp_last_error_field`.
    pub(crate) field: Option<&'static str>,
}

impl Failure {
    /// A failure with this status and message.
    pub(crate) fn new(status: lp_status, message: impl Display) -> Failure {
        Failure { status, message: message.to_string(), field: None }
    }

    /// `LP_INVALID_ARGUMENT` with this message.
    pub(crate) fn invalid(message: impl Display) -> Failure {
        Failure::new(lp_status::LP_INVALID_ARGUMENT, message)
    }
}

impl<E: Status + Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        let field = e.field();
        Failure { field, ..Failure::new(e.status(), e) }
    }
}

/// What an entry point's body returns.
pub(crate) type Outcome = Result<(), Failure>;

/// Runs an entry point's body: `Ok` is `LP_OK`; a failure records its message and returns its
/// status; a panic is caught (never unwinds into C) and returns `LP_PANIC`.
pub(crate) fn guard(body: impl FnOnce() -> Outcome) -> lp_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => lp_status::LP_OK,
        Ok(Err(failure)) => fail(failure),
        Err(payload) => fail(Failure::new(lp_status::LP_PANIC, format!("panic in leasepool: {}", panic_text(payload)))),
    }
}

/// Like [`guard`] for entry points that return a value rather than a status (counts, flags):
/// a panic returns `fallback` (and records the message).
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            fail(Failure::new(lp_status::LP_PANIC, format!("panic in leasepool: {}", panic_text(payload))));
            fallback
        }
    }
}

/// Records `failure`'s message for this thread and returns its status.
pub(crate) fn fail(failure: Failure) -> lp_status {
    set_last_error(&failure.message);
    let field = CString::new(failure.field.unwrap_or("")).unwrap_or_default();
    let _ = LAST_FIELD.try_with(|last| *last.borrow_mut() = field);
    failure.status
}

/// The configuration field of the last failed call on this thread (see `lp_last_error_field`).
pub(crate) fn last_field() -> *const c_char {
    LAST_FIELD.try_with(|last| last.borrow().as_ptr()).unwrap_or(c"".as_ptr())
}

/// Sets this thread's last error message (interior NULs become spaces).
pub(crate) fn set_last_error(message: &str) {
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|last| *last.borrow_mut() = message);
}

/// The message of the last failed call on this thread (see `lp_last_error_message`).
pub(crate) fn last_error() -> *const c_char {
    LAST_ERROR.try_with(|last| last.borrow().as_ptr()).unwrap_or(c"".as_ptr())
}

/// A panic payload's text. The payload is dropped inside its own `catch_unwind` (a payload
/// whose `Drop` panics must not unwind out of here); if that panics, it is forgotten.
fn panic_text(payload: Box<dyn Any + Send>) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_owned()
    };
    if let Err(inner) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(inner);
    }
    text
}

/// A required pointer argument, as a shared reference.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` that this library handed out and that is not freed
/// while the reference is in use.
pub(crate) unsafe fn arg<'a, T>(ptr: *const T, name: &str) -> Result<&'a T, Failure> {
    // SAFETY: the caller guarantees `ptr` is NULL or valid for 'a; `as_ref` handles NULL.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::invalid(format!("{name} is NULL")))
}

/// A required out-pointer (`T **out`): checked, and set to NULL first so that a failed call
/// leaves NULL behind.
///
/// # Safety
/// `out` is NULL or valid for writes of one pointer.
pub(crate) unsafe fn out_ptr<'a, T>(out: *mut *mut T, name: &str) -> Result<&'a mut *mut T, Failure> {
    // SAFETY: the caller guarantees `out` is NULL or valid for writes; `as_mut` handles NULL.
    let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::invalid(format!("{name} is NULL")))?;
    *out = std::ptr::null_mut();
    Ok(out)
}

/// A required C string argument, as UTF-8.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid for 'a.
pub(crate) unsafe fn arg_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{name} is NULL")));
    }
    // SAFETY: non-NULL, and the caller guarantees a NUL-terminated string valid for 'a.
    let cstr = unsafe { CStr::from_ptr(ptr) };
    cstr.to_str().map_err(|e| Failure::invalid(format!("{name} is not valid UTF-8: {e}")))
}

/// A `(pointer, length)` byte buffer argument; NULL is allowed when `len` is 0.
///
/// # Safety
/// When `len > 0`, `ptr` is NULL or valid for reads of `len` bytes for 'a.
pub(crate) unsafe fn arg_bytes<'a>(ptr: *const u8, len: usize, name: &str) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::invalid(format!("{name} is NULL but its length is {len}")));
    }
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes valid for 'a.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Moves `value` to the heap and hands C the pointer (freed by the matching `_free`).
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes back a handle given out by [`into_handle`] and drops it; NULL is a no-op. A panic in
/// the drop is caught.
///
/// # Safety
/// `ptr` is NULL or came from [`into_handle`] for this `T` and has not been freed.
pub(crate) unsafe fn free_handle<T>(ptr: *mut T) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: the caller guarantees `ptr` came from `Box::into_raw` and is not freed yet.
    let boxed = unsafe { Box::from_raw(ptr) };
    guard(|| {
        drop(boxed);
        Ok(())
    });
}

/// Milliseconds as a `Duration`.
pub(crate) fn millis(ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    fn last() -> String {
        // SAFETY: `last_error` returns this thread's NUL-terminated message.
        unsafe { CStr::from_ptr(last_error()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_becomes_lp_panic_with_its_message_and_never_unwinds() {
        assert_eq!(guard(|| panic!("glue bug {}", 42)), lp_status::LP_PANIC);
        assert!(last().contains("glue bug 42"), "{}", last());
        assert_eq!(guard_value(7, || -> i32 { panic!("value glue") }), 7);
        assert!(last().contains("value glue"));
    }

    #[test]
    fn a_panic_payload_whose_drop_panics_is_contained() {
        struct Nasty;
        impl Drop for Nasty {
            fn drop(&mut self) {
                panic!("payload drop");
            }
        }
        let status = guard(|| std::panic::panic_any(Nasty));
        assert_eq!(status, lp_status::LP_PANIC);
        assert!(last().contains("not a string"));
    }

    #[test]
    fn failures_record_their_message_per_thread_and_success_leaves_it() {
        assert_eq!(guard(|| Err(Failure::invalid("first"))), lp_status::LP_INVALID_ARGUMENT);
        assert_eq!(guard(|| Ok(())), lp_status::LP_OK);
        assert_eq!(last(), "first");
        std::thread::spawn(|| assert_eq!(last(), "", "another thread has its own message")).join().unwrap();
        set_last_error("with\0nul");
        assert_eq!(last(), "with nul");
    }
}
