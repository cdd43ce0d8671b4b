//! Issue point 2: configuration and backend selection.
use std::time::Duration;

use leasepool::{ConfigError, ExecutorBackend, LeasedExecutorManager};

fn b() -> leasepool::ManagerBuilder {
    LeasedExecutorManager::builder().max_pools(2)
}

#[test]
fn zero_counts_and_durations_name_the_field() {
    let cases: Vec<(leasepool::ManagerBuilder, &str)> = vec![
        (b().max_pools(0), "max_pools"),
        (b().min_pools(0), "min_pools"),
        (b().units_per_pool(0), "units_per_pool"),
        (b().workers_per_pool(0), "workers_per_pool"),
        (b().default_lease(Duration::ZERO), "default_lease"),
        (b().check_interval(Duration::ZERO), "check_interval"),
    ];
    for (builder, field) in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err, ConfigError::MustBePositive { field });
        assert_eq!(err.to_string(), format!("{field} must be > 0"));
    }
}

#[test]
fn max_pools_is_required_and_checked_first() {
    let err = LeasedExecutorManager::builder().build().unwrap_err();
    assert_eq!(err, ConfigError::Missing { field: "max_pools" });
    // Like the reference: numeric checks come before the backend.
    let err = b().max_pools(0).backend(ExecutorBackend::Interpreter).build().unwrap_err();
    assert_eq!(err, ConfigError::MustBePositive { field: "max_pools" });
}

#[test]
fn min_above_max_is_rejected_but_equal_is_fine() {
    let err = b().min_pools(3).build().unwrap_err();
    assert!(err.to_string().contains("min_pools cannot be greater"), "{err}");
    assert!(b().min_pools(2).build().is_ok());
}

#[test]
fn zero_grace_is_allowed() {
    let m = b().lease_grace(Duration::ZERO).build().unwrap();
    assert_eq!(m.total_count(), 0, "building creates no pools");
}

#[test]
fn backend_names_parse_case_insensitively() {
    assert_eq!("THREAD".parse::<ExecutorBackend>().unwrap(), ExecutorBackend::Thread);
    assert_eq!("Process".parse::<ExecutorBackend>().unwrap(), ExecutorBackend::Process);
    assert_eq!("interpreter".parse::<ExecutorBackend>().unwrap(), ExecutorBackend::Interpreter);
    let err = " thread".parse::<ExecutorBackend>().unwrap_err();
    assert_eq!(err, ConfigError::UnknownBackend { name: " thread".into() });
    let msg = "zzz".parse::<ExecutorBackend>().unwrap_err().to_string();
    assert!(msg.contains("Unsupported backend") && msg.contains("thread, process, interpreter"), "{msg}");
    assert_eq!(ExecutorBackend::Thread.to_string(), "thread");
}

#[test]
fn interpreter_is_an_unsupported_backend_and_process_builds() {
    match b().backend(ExecutorBackend::Interpreter).build().unwrap_err() {
        ConfigError::UnsupportedBackend { backend, reason } => {
            assert_eq!(backend, ExecutorBackend::Interpreter);
            assert!(reason.contains("sub-interpreters"), "{reason}");
        }
        other => panic!("expected UnsupportedBackend, got {other:?}"),
    }
    // Building a process manager starts nothing (workers appear at `start`; see tests/process.rs).
    let m = b().backend(ExecutorBackend::Process).build().unwrap();
    assert_eq!(m.backend(), ExecutorBackend::Process);
    assert_eq!(m.total_count(), 0);
}

#[test]
fn thread_backend_reports_itself() {
    let m = b().build().unwrap();
    assert_eq!(m.backend(), ExecutorBackend::Thread);
    assert_eq!(m.stats().backend, ExecutorBackend::Thread);
}

#[test]
fn lease_and_grace_too_large_for_a_deadline_are_rejected() {
    let err = b().lease_grace(Duration::MAX).build().unwrap_err();
    assert_eq!(err, ConfigError::TooLarge { field: "default_lease + lease_grace" });
    assert!(err.to_string().contains("too large"));
}
