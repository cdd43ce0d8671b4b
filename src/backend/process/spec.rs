//! What a process pool is built from: [`Spec`] (given by the backend dispatcher, which derives it
//! from the manager's configuration) and the [`Settings`] a pool keeps.

use log::LevelFilter;

use super::logs::{self, ProcessLoggingConfig};
use super::options::ProcessOptions;
use super::wire::LogRecord;

/// Everything a process pool needs to know, and nothing else from the manager's configuration.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// Prefix of the pool's thread names.
    pub name_prefix: String,
    /// Worker processes per pool.
    pub workers: usize,
    /// The manager's log target (where forwarded records go unless `logging` names another).
    pub log_target: String,
    pub options: ProcessOptions,
    pub logging: Option<ProcessLoggingConfig>,
}

/// A pool's settings, derived once from its [`Spec`].
pub(crate) struct Settings {
    pub options: ProcessOptions,
    pub workers: usize,
    pub name_prefix: String,
    /// Log forwarding: the level and the parent-side target.
    pub forward: Option<Forward>,
}

/// Where and up to which level forwarded worker records are re-emitted.
#[derive(Debug, Clone)]
pub(crate) struct Forward {
    pub level: LevelFilter,
    pub target: String,
}

impl Forward {
    pub(crate) fn emit(&self, record: &LogRecord) {
        logs::emit(record, &self.target, self.level);
    }
}

impl From<Spec> for Settings {
    fn from(spec: Spec) -> Settings {
        let Spec { name_prefix, workers, log_target, options, logging } = spec;
        let forward =
            logging.filter(|l| l.enabled).map(|l| Forward { level: l.level, target: l.target.unwrap_or(log_target) });
        Settings { options, workers, name_prefix, forward }
    }
}

impl Settings {
    /// Re-emits a forwarded record, if forwarding is on.
    pub(crate) fn emit(&self, record: &LogRecord) {
        if let Some(forward) = &self.forward {
            forward.emit(record);
        }
    }
}
