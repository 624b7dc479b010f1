//! The `host` interface: hostname, wall-clock time, logging, and the
//! operator's settings for the plugin.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;

use crate::bindings::scope::plugin::{host, types};
use crate::guest_log::GuestLog;

pub struct HostInfo {
    pub hostname: Arc<str>,
    pub log: GuestLog,
    /// Bounded when the config is read (`policy::MAX_SETTINGS` and sizes).
    pub settings: Arc<BTreeMap<String, String>>,
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
        panic_if_asked(&message);
        self.log.note_if_failure(level.into(), &message);
        self.log.write(level.into(), &message);
        Ok(())
    }

    fn settings(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.settings.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn setting(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.settings.get(&key).cloned())
    }
}

/// A test hook: a guest logging exactly `$SCOPE_WASM_TEST_PANIC_ON_LOG` makes
/// this host call panic, so the tests can prove a host panic fails only the
/// call it happened in. Unset (always, outside tests) it costs one comparison.
fn panic_if_asked(message: &str) {
    static TRIGGER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let trigger = TRIGGER.get_or_init(|| std::env::var("SCOPE_WASM_TEST_PANIC_ON_LOG").ok().filter(|t| !t.is_empty()));
    if trigger.as_deref() == Some(message) {
        panic!("test hook: host panic on log message {message:?}");
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
