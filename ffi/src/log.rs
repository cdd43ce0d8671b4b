//! `lp_set_logger`: the `log` records of leasepool (and of forwarded worker processes) delivered
//! to a C callback.

use std::ffi::{c_char, c_void, CString};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::callback::Userdata;
use crate::guard::{guard, Failure};
use crate::lp_status;

/// Log levels (the `level` of an `lp_log_fn` call, and `lp_set_logger`'s `max_level`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum lp_log_level {
    /// No records (only as `max_level`).
    LP_LOG_OFF = 0,
    /// Errors.
    LP_LOG_ERROR = 1,
    /// Warnings (soft expiry, revocations, broken pools, ...).
    LP_LOG_WARN = 2,
    /// Informational.
    LP_LOG_INFO = 3,
    /// Debugging detail.
    LP_LOG_DEBUG = 4,
    /// Everything.
    LP_LOG_TRACE = 5,
}

/// Receives one log record: `level` is an `lp_log_level`, `target` the module or worker it
/// came from, `message` the formatted text (both NUL-terminated UTF-8, valid only during the
/// call). Called on any thread, possibly on several at once, never while a leasepool lock is
/// held; must not call `lp_set_logger`.
#[allow(non_camel_case_types)]
pub type lp_log_fn =
    Option<unsafe extern "C" fn(level: u32, target: *const c_char, message: *const c_char, userdata: *mut c_void)>;

/// The installed logger.
struct CLogger {
    f: unsafe extern "C" fn(u32, *const c_char, *const c_char, *mut c_void),
    data: Userdata,
}

impl Log for CLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => lp_log_level::LP_LOG_ERROR,
            Level::Warn => lp_log_level::LP_LOG_WARN,
            Level::Info => lp_log_level::LP_LOG_INFO,
            Level::Debug => lp_log_level::LP_LOG_DEBUG,
            Level::Trace => lp_log_level::LP_LOG_TRACE,
        };
        let text = |s: String| CString::new(s.replace('\0', " ")).unwrap_or_default();
        let target = text(record.target().to_owned());
        let message = text(record.args().to_string());
        // SAFETY: the caller of `lp_set_logger` gave `f` for this userdata, callable from any
        // thread; both strings outlive the call.
        unsafe { (self.f)(level as u32, target.as_ptr(), message.as_ptr(), self.data.ptr()) }
    }

    fn flush(&self) {}
}

/// Installs a process-wide logger that calls `callback(level, target, message, userdata)` for
/// every record at or above `max_level` (an `lp_log_level`; `LP_LOG_OFF` installs it silent).
/// `userdata` must stay valid for the rest of the process. Only one logger can be installed per
/// process, by this call or by any other library using Rust's `log` crate.
///
/// Returns `LP_OK`, `LP_LOGGER_ALREADY_SET`, or `LP_INVALID_ARGUMENT` (`callback` NULL, or
/// `max_level` not an `lp_log_level`).
///
/// # Safety
/// `callback` is NULL or a valid function, callable from any thread.
#[no_mangle]
pub unsafe extern "C" fn lp_set_logger(callback: lp_log_fn, userdata: *mut c_void, max_level: u32) -> lp_status {
    guard(|| {
        let f = callback.ok_or_else(|| Failure::invalid("callback is NULL"))?;
        let filter = match max_level {
            0 => LevelFilter::Off,
            1 => LevelFilter::Error,
            2 => LevelFilter::Warn,
            3 => LevelFilter::Info,
            4 => LevelFilter::Debug,
            5 => LevelFilter::Trace,
            other => return Err(Failure::invalid(format!("max_level {other} is not an lp_log_level"))),
        };
        log::set_boxed_logger(Box::new(CLogger { f, data: Userdata::new(userdata, None) })).map_err(|_| {
            Failure::new(lp_status::LP_LOGGER_ALREADY_SET, "a logger is already installed in this process")
        })?;
        log::set_max_level(filter);
        Ok(())
    })
}
