//! The daemon's settings once checked: what `scope-wasm run` serves with.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ConfigFile;
use crate::config::policy::{Overrides, Policy};
use crate::config::socket_access::SocketAccess;
use crate::config::tenants::Tenancy;

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub plugin_dir: PathBuf,
    pub socket_dir: PathBuf,
    pub socket_access: SocketAccess,
    /// Where compiled plugins are kept across restarts; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Where plugins pulled from registries are kept; `None`: a private
    /// directory for the daemon's lifetime.
    pub sources_dir: Option<PathBuf>,
    /// The name used in host node IDs; the system's hostname when `None`.
    pub hostname: Option<String>,
    /// The Docker Engine's socket, for plugins granted `docker`.
    pub docker_socket: PathBuf,
    /// Who may deliver plugins where, and what each plugin may do: limits and
    /// capability grants per tenant and plugin. Replaced when the config is reloaded.
    pub tenancy: Arc<Tenancy>,
    /// Where the config came from, to read it again on SIGHUP or a change.
    pub reload: Option<ReloadSource>,
    /// How often the plugin directory is scanned even without file events.
    pub rescan_interval: Duration,
    /// How long a file must go unwritten before it is loaded, unless its writer
    /// closed it or it was renamed into place.
    pub settle: Duration,
    /// The admin endpoint's UNIX socket (`/metrics`, `/status`), if any. Keep it
    /// out of the socket directory: the probe takes every socket there for a plugin.
    pub admin_socket: Option<PathBuf>,
    /// The admin endpoint on TCP too, only if asked.
    pub admin_tcp: Option<std::net::SocketAddr>,
    /// Whether the daemon serves its own Scope plugin (`scope-wasm.sock`).
    pub self_plugin: bool,
}

impl RunConfig {
    pub fn new(plugin_dir: PathBuf, socket_dir: PathBuf) -> Self {
        Self {
            plugin_dir,
            socket_dir,
            socket_access: SocketAccess::default(),
            cache_dir: None,
            sources_dir: None,
            hostname: None,
            docker_socket: DEFAULT_DOCKER_SOCKET.into(),
            tenancy: Arc::new(Tenancy::default()),
            reload: None,
            rescan_interval: Duration::from_secs(2),
            settle: Duration::from_secs(1),
            admin_socket: None,
            admin_tcp: None,
            self_plugin: true,
        }
    }
}

impl RunConfig {
    /// The operator's own plugins' policy (the `default` tenant's).
    pub fn operator_policy(&self) -> &Policy {
        &self.tenancy.tenants[0].policy
    }
}

/// The config file and the flags that went over it: reading the file again
/// and applying the same flags gives the new configuration.
#[derive(Debug, Clone)]
pub struct ReloadSource {
    pub file: PathBuf,
    pub flags: ConfigFile,
    pub limit_flags: Overrides,
}

impl ReloadSource {
    /// The configuration the file holds now, checked whole.
    pub fn read(&self) -> anyhow::Result<RunConfig> {
        self.build(ConfigFile::read(&self.file)?)
    }

    /// The configuration `text` (the file's, as read) holds.
    pub fn parse(&self, text: &str) -> anyhow::Result<RunConfig> {
        use anyhow::Context;
        self.build(ConfigFile::parse(text).with_context(|| self.file.display().to_string())?)
    }

    fn build(&self, file: ConfigFile) -> anyhow::Result<RunConfig> {
        let file = file.overridden_by(self.flags.clone());
        let mut config = file.run_config(&self.file.display().to_string(), &self.limit_flags)?;
        config.reload = Some(self.clone());
        Ok(config)
    }
}

pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

