//! The `host` interface: hostname, wall-clock time and logging.

use std::sync::Arc;

use chrono::Utc;

use crate::bindings::scope::plugin::{host, types};
use crate::guest_log::GuestLog;

pub struct HostInfo {
    pub hostname: Arc<str>,
    pub log: GuestLog,
}

impl types::Host for HostInfo {}

impl host::Host for HostInfo {
    fn hostname(&mut self) -> wasmtime::Result<String> {
        Ok(self.hostname.to_string())
    }

    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0))
    }

    fn log(&mut self, level: host::LogLevel, message: String) -> wasmtime::Result<()> {
        self.log.write(level.into(), &message);
        Ok(())
    }
}

impl From<host::LogLevel> for tracing::Level {
    fn from(level: host::LogLevel) -> Self {
        match level {
            host::LogLevel::Trace => tracing::Level::TRACE,
            host::LogLevel::Debug => tracing::Level::DEBUG,
            host::LogLevel::Info => tracing::Level::INFO,
            host::LogLevel::Warn => tracing::Level::WARN,
            host::LogLevel::Error => tracing::Level::ERROR,
        }
    }
}
