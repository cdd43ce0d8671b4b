//! [`GrinderConfig`]: the grinder's settings, with their defaults. The builder in `mod.rs` fills
//! and validates it; everything else only reads it.

use std::time::Duration;

/// The validated grinder configuration.
#[derive(Debug, Clone)]
pub(super) struct GrinderConfig {
    pub(super) batch_size_threshold: usize,
    pub(super) max_wait: Duration,
    pub(super) lease_duration: Duration,
    pub(super) owner_prefix: String,
    pub(super) intake_capacity: Option<usize>,
    pub(super) max_concurrent_batches: usize,
    pub(super) renew_leases: bool,
    pub(super) log_target: String,
}

impl Default for GrinderConfig {
    fn default() -> Self {
        GrinderConfig {
            batch_size_threshold: 20,
            max_wait: Duration::from_secs(10),
            lease_duration: Duration::from_secs(60),
            owner_prefix: "work-grinder".to_owned(),
            intake_capacity: None,
            max_concurrent_batches: 1,
            renew_leases: true,
            log_target: "leasepool::grinder".to_owned(),
        }
    }
}
