//! Log forwarding from worker processes: [`ProcessLoggingConfig`], the worker-side logger that
//! ships records to the parent, and the parent-side re-emission.
//!
//! A worker installs a `log` logger (before it runs the initializer, so the initializer's records
//! are forwarded too) that turns each record into plain data and sends it over the worker's
//! channel to the parent. The parent's reader thread for that worker re-emits it through `log`
//! on the configured target, after filtering by the configured level. No lock of the manager or
//! the pool is held while the parent's logger runs.

use std::str::FromStr;
use std::sync::Arc;

use log::{Level, LevelFilter, Log, Metadata, Record};
use parking_lot::Mutex;

use super::wire::{Envelope, FromWorker, LogRecord};
use crate::error::ConfigError;
use ipc_channel::ipc::IpcSender;

/// Forwarding of `log` records from worker processes to the parent (process backend only).
///
/// Off by default. When enabled, every worker installs a logger at `level`; the parent re-emits
/// each record through `log` under `target` (the manager's log target when `None`), as
/// `[worker <pid> <original target>] <message>`, keeping the worker's module path, file and
/// line. Records the parent's level filter rejects are dropped. While forwarding is on, a
/// worker's panic reports are logged (and so forwarded) instead of printed to the shared stderr.
/// A worker program that installs its own `log` logger before calling
/// [`run_if_worker`](crate::run_if_worker) keeps it, and then forwards nothing.
///
/// ```
/// use leasepool::ProcessLoggingConfig;
/// use log::LevelFilter;
///
/// let config = ProcessLoggingConfig::enabled(LevelFilter::Info).target("workers");
/// assert_eq!(config.level, LevelFilter::Info);
/// assert_eq!(ProcessLoggingConfig::parse_level("WARN").unwrap(), LevelFilter::Warn);
/// assert_eq!(ProcessLoggingConfig::parse_level("warning").unwrap(), LevelFilter::Warn);
/// assert!(ProcessLoggingConfig::parse_level("loud").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessLoggingConfig {
    /// Turns forwarding on.
    pub enabled: bool,
    /// The most verbose level forwarded (default `Info`).
    pub level: LevelFilter,
    /// The parent-side target records are re-emitted on; `None` means the manager's log target.
    pub target: Option<String>,
}

impl Default for ProcessLoggingConfig {
    fn default() -> Self {
        ProcessLoggingConfig { enabled: false, level: LevelFilter::Info, target: None }
    }
}

impl ProcessLoggingConfig {
    /// Forwarding on, at `level`, to the manager's log target.
    pub fn enabled(level: LevelFilter) -> Self {
        ProcessLoggingConfig { enabled: true, level, target: None }
    }

    /// The same configuration with records re-emitted on `target`.
    #[must_use]
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Parses a level name case-insensitively: `off`, `error`, `warn`, `info`, `debug`, `trace`,
    /// and the aliases `warning`, `critical` and `fatal` (both `error`).
    pub fn parse_level(name: &str) -> Result<LevelFilter, ConfigError> {
        let name = name.trim();
        let alias = match name.to_ascii_lowercase().as_str() {
            "warning" => Some(LevelFilter::Warn),
            "critical" | "fatal" => Some(LevelFilter::Error),
            _ => None,
        };
        alias
            .or_else(|| LevelFilter::from_str(name).ok())
            .ok_or_else(|| ConfigError::InvalidLogLevel { name: name.to_owned() })
    }
}

/// The worker-side logger: sends every record at or below `level` to the parent.
pub(crate) struct ForwardingLogger {
    pub(crate) tx: Arc<Mutex<IpcSender<Envelope<FromWorker>>>>,
    pub(crate) level: LevelFilter,
    pub(crate) pid: u32,
}

impl Log for ForwardingLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let plain = LogRecord {
            level: record.level() as u8,
            target: record.target().to_owned(),
            message: record.args().to_string(),
            module_path: record.module_path().map(str::to_owned),
            file: record.file().map(str::to_owned),
            line: record.line(),
            pid: self.pid,
        };
        // A send fails only when the parent is gone, and then nobody is listening anyway.
        let _ = self.tx.lock().send(Envelope::new(FromWorker::Log(plain)));
    }

    fn flush(&self) {}
}

/// Installs the forwarding logger in a worker (a no-op if the program already set a logger).
pub(crate) fn install(tx: Arc<Mutex<IpcSender<Envelope<FromWorker>>>>, level: LevelFilter) {
    let logger = ForwardingLogger { tx, level, pid: std::process::id() };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
}

/// `LevelFilter` as the index sent in `Setup`.
pub(crate) fn level_index(level: LevelFilter) -> u8 {
    level as u8
}

/// The inverse of [`level_index`].
pub(crate) fn level_from_index(index: u8) -> LevelFilter {
    LevelFilter::iter().nth(usize::from(index)).unwrap_or(LevelFilter::Trace)
}

/// Re-emits a forwarded record in the parent on `target`, if `max` and the parent's logger let
/// it through.
pub(crate) fn emit(record: &LogRecord, target: &str, max: LevelFilter) {
    let Some(level) = Level::iter().nth(usize::from(record.level).saturating_sub(1)) else { return };
    if level > max || level > log::max_level() {
        return;
    }
    let logger = log::logger();
    let metadata = Metadata::builder().level(level).target(target).build();
    if !logger.enabled(&metadata) {
        return;
    }
    logger.log(
        &Record::builder()
            .metadata(metadata)
            .args(format_args!("[worker {} {}] {}", record.pid, record.target, record.message))
            .module_path(record.module_path.as_deref())
            .file(record.file.as_deref())
            .line(record.line)
            .build(),
    );
}
