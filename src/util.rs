//! Small helpers with no crate dependencies (a leaf module): rendering and safely disposing of
//! panic payloads.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, turning a panic into its message. The payload is dropped safely (see
/// [`panic_text`]), so a payload whose own `Drop` panics cannot unwind out of here.
pub(crate) fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(panic_text)
}

/// Renders a panic payload and drops it. If the payload's destructor panics too, that second
/// panic is caught and its payload leaked (a few bytes, once): a hostile payload must never make
/// a task unresolvable or abort the process.
pub(crate) fn panic_text(payload: Box<dyn Any + Send>) -> String {
    let message = panic_message(&*payload);
    if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(second);
        return format!("{message} (and the panic payload's destructor panicked)");
    }
    message
}

/// Renders a panic payload: strings as they are, common error types by their `Display`, else a
/// placeholder.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(e) = payload.downcast_ref::<Box<dyn std::error::Error + Send + Sync>>() {
        e.to_string()
    } else if let Some(e) = payload.downcast_ref::<Box<dyn std::error::Error + Send>>() {
        e.to_string()
    } else if let Some(e) = payload.downcast_ref::<std::io::Error>() {
        e.to_string()
    } else if let Some(s) = payload.downcast_ref::<Box<str>>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<std::sync::Arc<str>>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<std::borrow::Cow<'static, str>>() {
        s.to_string()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_str_string_errors_and_other_payloads() {
        assert_eq!(panic_message(&"boom"), "boom");
        assert_eq!(panic_message(&String::from("bang")), "bang");
        let e: Box<dyn std::error::Error + Send + Sync> = "disk on fire".into();
        assert_eq!(panic_message(&e), "disk on fire");
        assert_eq!(panic_message(&std::io::Error::other("pipe")), "pipe");
        assert_eq!(panic_message(&42u32), "<non-string panic payload>");
    }

    #[test]
    fn a_payload_whose_drop_panics_is_contained() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("bomb destructor");
            }
        }
        let caught = catch_panic(|| std::panic::panic_any(Bomb));
        assert_eq!(caught.unwrap_err(), "<non-string panic payload> (and the panic payload's destructor panicked)");
    }
}
