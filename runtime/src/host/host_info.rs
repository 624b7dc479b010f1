//! The `host` interface: hostname, wall-clock time, logging, and the
//! operator's settings for the plugin.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::bindings::scope::plugin::{host, types};
use crate::host::fixture::Fixture;
use crate::host::system_now_ms;
use crate::ops::guest_log::GuestLog;

pub struct HostInfo {
    pub hostname: Arc<str>,
    pub log: GuestLog,
    /// Bounded when the config is read (`policy::MAX_SETTINGS` and sizes).
    pub settings: Arc<BTreeMap<String, String>>,
    /// The plugin file's source section (`loader::PLUGIN_SOURCE_SECTION`), if it has one.
    pub plugin_source: Option<Arc<[u8]>>,
    /// Under `scope-wasm test`: the clock and settings replayed, or where the
    /// real ones are recorded.
    pub fixture: Option<Arc<Fixture>>,
}

impl HostInfo {
    /// The settings a fixture replays, if it names any.
    fn fixture_settings(&self) -> Option<BTreeMap<String, String>> {
        let fixture = self.fixture.as_ref().filter(|f| f.replaying())?;
        Some(fixture.data().settings).filter(|settings| !settings.is_empty())
    }
}

impl types::Host for HostInfo {}

impl host::Host for HostInfo {
    fn hostname(&mut self) -> wasmtime::Result<String> {
        if let Some(fixture) = self.fixture.as_ref().filter(|f| f.recording()) {
            fixture.record_hostname(&self.hostname);
        }
        Ok(self.hostname.to_string())
    }

    fn now(&mut self) -> wasmtime::Result<u64> {
        match &self.fixture {
            Some(fixture) if fixture.replaying() => Ok(fixture.now_ms()),
            Some(fixture) => {
                let now = system_now_ms();
                fixture.record_time(now);
                Ok(now)
            }
            None => Ok(system_now_ms()),
        }
    }

    fn log(&mut self, level: host::LogLevel, message: String) -> wasmtime::Result<()> {
        panic_if_asked(&message);
        self.log.note_if_failure(level.into(), &message);
        self.log.write(level.into(), &message);
        Ok(())
    }

    fn settings(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        if let Some(settings) = self.fixture_settings() {
            return Ok(settings.into_iter().collect());
        }
        Ok(self.settings.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    fn setting(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        if let Some(settings) = self.fixture_settings() {
            return Ok(settings.get(&key).cloned());
        }
        Ok(self.settings.get(&key).cloned())
    }

    fn plugin_source(&mut self) -> wasmtime::Result<Vec<u8>> {
        // Bounded when the file is read (`loader::MAX_PLUGIN_SOURCE_BYTES`);
        // the copy into the guest is charged to its memory limit.
        Ok(self.plugin_source.as_deref().unwrap_or_default().to_vec())
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
