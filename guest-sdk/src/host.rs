//! The `host` capability: facts about the host and the daemon's log.

use crate::bindings::scope::plugin::host as wit;
use crate::{LogLevel, TimestampMs};

/// The host's name, as the probe uses it in node IDs.
pub fn hostname() -> String {
    wit::hostname()
}

/// Wall-clock time in milliseconds since the Unix epoch.
pub fn now() -> TimestampMs {
    wit::now()
}

/// Writes to the daemon's log, tagged with this plugin's ID.
pub fn log(level: LogLevel, message: impl AsRef<str>) {
    wit::log(level, message.as_ref())
}

/// The operator's settings for this plugin (`settings` in its config
/// section), sorted by key.
pub fn settings() -> Vec<(String, String)> {
    wit::settings()
}

/// One setting, if the operator set it.
pub fn setting(key: &str) -> Option<String> {
    wit::setting(key)
}

pub fn debug(message: impl AsRef<str>) {
    log(LogLevel::Debug, message)
}

pub fn info(message: impl AsRef<str>) {
    log(LogLevel::Info, message)
}

pub fn warn(message: impl AsRef<str>) {
    log(LogLevel::Warn, message)
}

pub fn error(message: impl AsRef<str>) {
    log(LogLevel::Error, message)
}
