//! Host capabilities offered to guests: one module per WIT interface, each with
//! its own context type and its own view of the store (`run::state::add_to_linker`
//! is the one place that lists them all).

pub mod docker;
pub mod docker_engine;
pub mod fixture;
pub mod host_info;
pub mod http_probe;
pub mod http_traffic;
pub mod procfs;
pub mod traffic;

use std::path::Path;
use std::sync::Arc;

/// What the capabilities of every plugin share.
pub struct HostServices {
    /// The host name used in node IDs.
    pub hostname: Arc<str>,
    pub docker: Arc<docker_engine::DockerEngine>,
    /// The eBPF programs behind `http-traffic`, loaded while a plugin uses them.
    pub http_probes: Arc<http_probe::HttpProbes>,
    /// Under `scope-wasm test`: what the capabilities answer instead of the
    /// host (or where they record what it answered).
    pub fixture: Option<Arc<fixture::Fixture>>,
}

impl HostServices {
    pub fn new(hostname: Arc<str>, docker_socket: &Path) -> Self {
        Self {
            hostname,
            docker: Arc::new(docker_engine::DockerEngine::new(docker_socket)),
            http_probes: Arc::default(),
            fixture: None,
        }
    }

    /// The capabilities of a test run: answered from `fixture` when it
    /// replays, and its host name too.
    pub fn for_test(fixture: Arc<fixture::Fixture>, hostname: Arc<str>, docker_socket: &Path) -> Self {
        let hostname = if fixture.replaying() { fixture.hostname().into() } else { hostname };
        Self { fixture: Some(fixture), ..Self::new(hostname, docker_socket) }
    }

    /// Now, in ms since 1970: the fixture's clock when one replays.
    pub fn now_ms(&self) -> u64 {
        match self.replaying() {
            Some(fixture) => fixture.now_ms(),
            None => system_now_ms(),
        }
    }

    /// The fixture that answers instead of the host, if one does.
    pub fn replaying(&self) -> Option<&Arc<fixture::Fixture>> {
        self.fixture.as_ref().filter(|f| f.replaying())
    }
}

pub fn system_now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

/// A call to a capability the plugin was not granted: logged once per plugin
/// (not on every poll), and the message the guest gets in its `denied` error.
pub(crate) fn not_granted(plugin: &crate::plugin_id::PluginId, capability: &str, logged: &mut bool) -> String {
    if !std::mem::replace(logged, true) {
        tracing::warn!(plugin = %plugin, "{capability} is not granted to this plugin; its calls are denied");
    }
    format!("plugin {plugin}: {capability} is not granted")
}

/// The capability an import names (`scope:plugin/docker@0.1.0` is `docker`),
/// or `None` for WASI and other imports.
pub fn capability_of_import(import: &str) -> Option<&str> {
    let rest = import.strip_prefix("scope:plugin/")?;
    let name = rest.split('@').next().unwrap_or(rest);
    (name != "types").then_some(name)
}
