//! # leasepool-ffi: the C ABI of leasepool
//!
//! Everything a C host needs, declared in `include/leasepool.h` (generated from this crate by
//! cbindgen, committed, and checked by `tests/header.rs`). Link `libleasepool_ffi.a` (or the
//! shared `libleasepool_ffi.so`).
//!
//! The boundary's rules, the same for every function (each is also documented in the header):
//! - **Status codes.** A fallible function returns an [`lp_status`]; `LP_OK` is 0. On failure,
//!   [`lp_last_error_message`] returns the message on the calling thread.
//! - **Handles** are opaque pointers created by `lp_*_new` (or returned through `**out`) and
//!   freed by the matching `lp_*_free`; freeing NULL is a no-op; a failed call sets `*out` to
//!   NULL. Every handle may be used from any thread, as documented on its type.
//! - **Bad input** (NULL where a value is required, non-UTF-8 strings, enum values out of range)
//!   returns `LP_INVALID_ARGUMENT`; it never crashes. Dangling or foreign pointers cannot be
//!   detected: that is the caller's part of the contract.
//! - **No unwinding crosses the boundary**: a panic inside the library is caught and reported
//!   as `LP_PANIC`.
//! - **Callbacks** take a `void *userdata`; where a `drop_userdata` is accepted it runs exactly
//!   once, whatever happens to the work (see `lp_submit`).
//!
//! ## ABI promise
//! Within a major version (and, before 1.0, within a minor version: 0.1.x), functions, struct
//! layouts and status values keep their meaning and number; new functions and new status
//! values may be added. `LP_VERSION_*` in the header and [`lp_version`] say which library a
//! program was compiled against and which it runs with.

mod acquire;
mod callback;
mod config;
mod grinder;
mod guard;
mod lease;
mod log;
mod manager;
mod process;
mod stats;
mod status;
mod task;

use std::ffi::c_char;

pub use acquire::{lp_acquire_options, lp_interrupt};
pub use callback::lp_callback;
pub use config::{lp_config, lp_size_fn};
pub use grinder::{lp_grinder, lp_grinder_options, lp_grinder_stats, lp_stop_mode};
pub use lease::{lp_drain, lp_executor, lp_lease, lp_lease_state};
pub use log::{lp_log_fn, lp_log_level};
pub use manager::lp_manager;
pub use process::{lp_buffer, lp_registry, lp_task_fn};
pub use stats::{lp_stats, lp_stats_snapshot};
pub use status::lp_status;
pub use task::lp_task;

/// The major version of the header a program is compiled against.
pub const LP_VERSION_MAJOR: u32 = 0;
/// The minor version of the header.
pub const LP_VERSION_MINOR: u32 = 1;
/// The patch version of the header.
pub const LP_VERSION_PATCH: u32 = 0;

/// The library's version, `"MAJOR.MINOR.PATCH"` (static: never free it). Compare with the
/// `LP_VERSION_*` macros to detect a program running against another build of the library.
#[no_mangle]
pub extern "C" fn lp_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The message of the last failed call on this thread (`""` if none has failed). The string
/// belongs to the library and stays valid until the next failing call on this thread; copy it
/// to keep it. Successful calls leave it unchanged.
#[no_mangle]
pub extern "C" fn lp_last_error_message() -> *const c_char {
    guard::last_error()
}

/// The configuration field the last failed call on this thread was about — `"max_pools"`,
/// `"workers_per_pool"`, `"min_pools"` (also for `LP_CONFIG_MIN_ABOVE_MAX`), `"backend"`,
/// `"name_prefix"`, ... (the `lp_config_set_*` name without its unit suffix) — or `""` when it
/// was not about one field. Set together with `lp_last_error_message` by every `LP_CONFIG_*`
/// status. The string belongs to the library and stays valid until the next failing call on
/// this thread. Successful calls leave it unchanged.
#[no_mangle]
pub extern "C" fn lp_last_error_field() -> *const c_char {
    guard::last_field()
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_constants_match_the_crate() {
        let version = format!("{}.{}.{}", super::LP_VERSION_MAJOR, super::LP_VERSION_MINOR, super::LP_VERSION_PATCH);
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
    }
}
