//! The daemon's configuration: one TOML file (`--config`) holds the daemon's
//! settings at the top level and the limits and grants of plugins in
//! `[defaults]` and `[plugins.<id or glob>]`. Flags override the file, the
//! file overrides the built-in defaults; limit flags go over `[defaults]`, and a
//! plugin's own section still goes over them (see `policy`). Unknown keys and bad values stop the
//! daemon with the file, the line or section, and the key named.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

use crate::config::policy::{Overrides, Policy};
use crate::config::socket_access::SocketAccess;
use crate::config::sources::{RegistrySection, RegistrySettings, SourceSection, sources_from};
use crate::config::tenants::{Tenancy, TenantSection};
use crate::config::{DEFAULT_DOCKER_SOCKET, RunConfig};

/// How the daemon writes its log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Everything the file may set; every key optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub plugin_dir: Option<PathBuf>,
    pub socket_dir: Option<PathBuf>,
    pub socket_mode: Option<String>,
    pub socket_group: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub no_cache: Option<bool>,
    pub docker_socket: Option<PathBuf>,
    pub hostname: Option<String>,
    pub rescan_ms: Option<u64>,
    pub settle_ms: Option<u64>,
    pub admin_socket: Option<PathBuf>,
    pub admin_tcp: Option<String>,
    pub self_plugin: Option<bool>,
    pub log_format: Option<LogFormat>,
    pub log_filter: Option<String>,
    /// Privileged grants (traffic, http-traffic, unscoped docker) need a `sha256` pin.
    pub pin_privileged: Option<bool>,
    #[serde(default)]
    pub defaults: Overrides,
    #[serde(default)]
    pub plugins: BTreeMap<String, Overrides>,
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantSection>,
    /// The operator's plugins pulled from registries, and how registries are reached.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceSection>,
    #[serde(default)]
    pub registry: RegistrySection,
    /// Where pulled plugins are kept; default `<cache_dir>/sources`.
    pub sources_dir: Option<PathBuf>,
    /// The file's text, to name the line of a setting found wrong after parsing.
    #[serde(skip)]
    pub source: Option<String>,
}

pub const DEFAULT_PLUGIN_DIR: &str = "/var/lib/scope-wasm/plugins";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Where the probe looks as root; a local directory for a trial run otherwise.
pub fn default_socket_dir() -> PathBuf {
    if is_root() { "/var/run/scope/plugins".into() } else { "scope-plugins".into() }
}

pub fn default_cache_dir() -> Option<PathBuf> {
    if is_root() {
        return Some("/var/cache/scope-wasm".into());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("scope-wasm"))
}

/// Outside the socket directory: the probe would take it for a plugin.
pub fn default_admin_socket() -> PathBuf {
    if is_root() { "/var/run/scope-wasm/admin.sock".into() } else { "scope-wasm-admin.sock".into() }
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| path.display().to_string())
    }

    pub fn parse(text: &str) -> Result<Self> {
        let mut file: ConfigFile = toml::from_str(text)?;
        file.source = Some(text.to_owned());
        Ok(file)
    }

    /// `flags` over `self`, key by key.
    pub fn overridden_by(self, flags: ConfigFile) -> ConfigFile {
        ConfigFile {
            plugin_dir: flags.plugin_dir.or(self.plugin_dir),
            socket_dir: flags.socket_dir.or(self.socket_dir),
            socket_mode: flags.socket_mode.or(self.socket_mode),
            socket_group: flags.socket_group.or(self.socket_group),
            cache_dir: flags.cache_dir.or(self.cache_dir),
            no_cache: flags.no_cache.or(self.no_cache),
            docker_socket: flags.docker_socket.or(self.docker_socket),
            hostname: flags.hostname.or(self.hostname),
            rescan_ms: flags.rescan_ms.or(self.rescan_ms),
            settle_ms: flags.settle_ms.or(self.settle_ms),
            admin_socket: flags.admin_socket.or(self.admin_socket),
            admin_tcp: flags.admin_tcp.or(self.admin_tcp),
            self_plugin: flags.self_plugin.or(self.self_plugin),
            log_format: flags.log_format.or(self.log_format),
            log_filter: flags.log_filter.or(self.log_filter),
            pin_privileged: flags.pin_privileged.or(self.pin_privileged),
            defaults: self.defaults,
            plugins: self.plugins,
            tenants: self.tenants,
            sources: self.sources,
            registry: self.registry,
            sources_dir: flags.sources_dir.or(self.sources_dir),
            source: self.source,
        }
    }

    /// The daemon's configuration, checked; `limit_flags` go over `[defaults]`.
    pub fn run_config(&self, origin: &str, limit_flags: &Overrides) -> Result<RunConfig> {
        let at = |key: &str| crate::config::lines::place(origin, self.source.as_deref(), &[], key);
        let mut config = RunConfig::new(
            self.plugin_dir.clone().unwrap_or_else(|| DEFAULT_PLUGIN_DIR.into()),
            self.socket_dir.clone().unwrap_or_else(default_socket_dir),
        );
        config.socket_access =
            SocketAccess::parse(self.socket_mode.as_deref().unwrap_or("660"), self.socket_group.as_deref())
                .with_context(|| format!("{}: socket_mode / socket_group", at(if self.socket_group.is_some() { "socket_group" } else { "socket_mode" })))?;
        config.cache_dir =
            if self.no_cache == Some(true) { None } else { self.cache_dir.clone().or_else(default_cache_dir) };
        config.docker_socket = self.docker_socket.clone().unwrap_or_else(|| DEFAULT_DOCKER_SOCKET.into());
        config.hostname = self.hostname.clone();
        // Unset keys keep `RunConfig::new`'s defaults.
        if let Some(ms) = self.rescan_ms {
            ensure!(ms >= 100, "{}: rescan_ms = {ms}: must be at least 100", at("rescan_ms"));
            config.rescan_interval = Duration::from_millis(ms);
        }
        if let Some(ms) = self.settle_ms {
            ensure!(ms <= 60_000, "{}: settle_ms = {ms}: must be at most 60000", at("settle_ms"));
            config.settle = Duration::from_millis(ms);
        }
        config.admin_socket = match &self.admin_socket {
            Some(path) if path.as_os_str().is_empty() => None,
            Some(path) => Some(path.clone()),
            None => Some(default_admin_socket()),
        };
        if let Some(admin) = &config.admin_socket
            && admin.starts_with(&config.socket_dir)
        {
            bail!(
                "{}: admin_socket {} is inside socket_dir {}: the probe would take it for a plugin",
                at("admin_socket"),
                admin.display(),
                config.socket_dir.display()
            );
        }
        config.admin_tcp = match &self.admin_tcp {
            Some(addr) => Some(addr.parse().with_context(|| format!("{}: admin_tcp = {addr:?}: not an address like 127.0.0.1:9464", at("admin_tcp")))?),
            None => None,
        };
        config.self_plugin = self.self_plugin.unwrap_or(config.self_plugin);
        let policy = Policy::from_sections(&self.defaults, &self.plugins, limit_flags, origin, self.source.as_deref())?;
        let pin_privileged = self.pin_privileged.unwrap_or(false);
        let mut tenancy = Tenancy::new(&config.plugin_dir, policy, &self.tenants, pin_privileged, origin, self.source.as_deref())?;
        tenancy.registry = RegistrySettings::from_section(&self.registry, &format!("{origin}: [registry]"))?;
        tenancy.tenants[0].sources = sources_from(&self.sources, None, &format!("{origin}: "))?;
        tenancy.check_sources(origin)?;
        config.sources_dir = self.sources_dir.clone().or_else(|| config.cache_dir.as_ref().map(|dir| dir.join("sources")));
        if let Some(dir) = &config.sources_dir
            && let Some(tenant) = tenancy.tenants.iter().find(|t| dir.starts_with(&t.dir) || t.dir.starts_with(dir))
        {
            bail!(
                "{}: sources_dir {} and tenant {}'s directory {} are inside one another: pulled plugins need a directory of their own",
                at("sources_dir"),
                dir.display(),
                tenant.name,
                tenant.dir.display()
            );
        }
        config.tenancy = std::sync::Arc::new(tenancy);
        Ok(config)
    }
}

/// `scope-wasm config default`: every setting with its built-in default, as a
/// file that `config check` accepts and that changes nothing.
pub fn default_config_text() -> String {
    let limits = crate::config::limits::Limits::default();
    let cache = default_cache_dir().map_or("".into(), |p| p.display().to_string());
    format!(
        r#"# scope-wasm configuration. Every key is optional; flags override this file.

# Where the plugin files are (<id>.wasm, sub-directories allowed); followed while running.
plugin_dir = "{plugin_dir}"
# Where <id>.sock goes; the Scope probe scans /var/run/scope/plugins.
socket_dir = "{socket_dir}"
# Permission bits (octal) and group (name or GID) of the sockets.
socket_mode = "660"
# socket_group = "scope"
# Compiled plugins, kept across restarts (no_cache = true compiles at every start).
cache_dir = "{cache}"
no_cache = false
# The Docker Engine, for plugins granted `docker` or `traffic`.
docker_socket = "{docker}"
# The host name in node IDs; the system's when unset. It must match the probe's.
# hostname = "node-1"
# Rescan of the plugin directory besides file events, and how long a file must
# go unwritten before it is loaded (unless closed by its writer or renamed in).
rescan_ms = 2000
settle_ms = 1000
# Admin endpoint (/metrics, /status, /healthz) on a UNIX socket ("" turns it off),
# and on TCP only if set. Keep it out of socket_dir.
admin_socket = "{admin}"
# admin_tcp = "127.0.0.1:9464"
# The daemon's own Scope plugin (scope-wasm.sock): each plugin's health on the host node.
self_plugin = true
# Log: "human" or "json"; the filter takes RUST_LOG syntax (RUST_LOG wins when set).
log_format = "human"
log_filter = "info"
# Privileged grants (traffic, http-traffic, an unscoped docker) only with a sha256 pin.
pin_privileged = false

# Limits of every plugin.
[defaults]
call_timeout_ms = {call}        # 1..=450: the probe gives 500 ms for everything
memory_mib = {memory}             # all memories of an instance together
max_report_kib = {report}         # up to 40960; the probe decodes ~25-40 MB/s
max_control_body_kib = {control}
refresh_ms = {refresh}            # 50..=60000: shortest time between background refreshes while polled
max_table_elements = {tables}
max_instances = {instances}
max_wasm_stack_kib = {stack}      # 64..=16384
max_nodes = {nodes}             # per report (all topologies), counted before rendering
max_samples = {samples}          # metric samples per report
max_values = {values}           # latest entries, metrics, set values, parents, active controls
max_templates = {templates}          # controls, templates, table columns and fixed rows
max_text_kib = {text}             # any one string (ID, key, value, label)
grants = ["procfs"]           # host always; also "docker", "traffic", "http-traffic"
procfs.environ = false        # /proc/<pid>/environ (secrets) only when true

# Per plugin ID or glob, over [defaults]; the most specific applies last.
# [plugins.volume-count]
# grants = ["docker"]
# settings = {{ label = "team-a" }}  # what the plugin reads with host.setting("label")
#
# [plugins."team-a-*"]
# grants = ["procfs", "docker"]
# docker.label_selector = {{ "io.kubernetes.pod.namespace" = "team-a" }}
#
# [plugins.traffic-control]
# grants = ["traffic", "docker"]
# sha256 = "..."                # only these bytes may serve this ID (`sha256sum FILE`)

# Plugins pulled from OCI registries (`scope-wasm push FILE REF` publishes one).
# Kept in sources_dir (default: <cache_dir>/sources), served like dropped files.
# [registry]
# auth_file = "/root/.docker/config.json"   # docker-style logins; default: $DOCKER_CONFIG, ~/.docker
# insecure = ["localhost:5000"]              # plain HTTP to these registries only
# max_pull_mib = 64                          # the largest component pulled, checked before the download
#
# [sources.iowait]                           # the plugin ID; [tenants.<name>.sources.<id>] for a tenant's
# image = "registry.example/team/iowait:1.2"
# digest = "sha256:..."                      # pin the manifest digest `push` printed: nothing else serves
# check_every_s = 300                        # how often a tag is looked at again
# public_key = "/etc/scope-wasm/team.pub"    # require a cosign signature by this key (`scope-wasm keygen`)

# Tenants: owners delivering plugins into their own directory, held to a ceiling
# and quotas. None: the operator owns plugin_dir. Reloaded on SIGHUP and change.
# [tenants.team-b]
# dir = "team-b"                # under plugin_dir, or absolute
# owner = "team-b"              # user (name or UID) its files must belong to; also `group`
# max_plugins = 10
# memory_mib = 256              # linear memory of all its plugins together
# cpu_ms_per_s = 200            # guest CPU time per second, all its plugins together
# ceiling = {{ grants = ["procfs", "docker"], docker.label_selector = {{ team = "b" }} }}
#
# public_key = "/etc/scope-wasm/team-b.pub"   # every source of team-b must be signed by it
#
# [tenants.team-b.plugins.b-stats]   # under the ceiling; reserves the ID for team-b
# memory_mib = 32
"#,
        plugin_dir = DEFAULT_PLUGIN_DIR,
        socket_dir = default_socket_dir().display(),
        docker = DEFAULT_DOCKER_SOCKET,
        admin = default_admin_socket().display(),
        call = limits.call_budget.as_millis(),
        memory = limits.max_memory_bytes >> 20,
        report = limits.max_report_bytes >> 10,
        control = limits.max_control_body_bytes >> 10,
        refresh = limits.refresh_interval.as_millis(),
        tables = limits.max_table_elements,
        instances = limits.max_instances,
        stack = limits.max_wasm_stack >> 10,
        nodes = limits.report.max_nodes,
        samples = limits.report.max_samples,
        values = limits.report.max_values,
        templates = limits.report.max_templates,
        text = limits.report.max_text_bytes >> 10,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin_id::PluginId;

    #[test]
    fn the_default_file_is_valid_and_changes_nothing() {
        let text = default_config_text();
        let from_file = ConfigFile::parse(&text).unwrap().run_config("default", &Overrides::default()).unwrap();
        let built_in = ConfigFile::default().run_config("none", &Overrides::default()).unwrap();
        assert_eq!(format!("{from_file:?}"), format!("{built_in:?}"));
        let id = PluginId::parse("any").unwrap();
        assert_eq!(from_file.operator_policy().for_plugin(&id), built_in.operator_policy().for_plugin(&id));
    }

    #[test]
    fn flags_override_the_file_and_errors_name_the_key() {
        let file = ConfigFile::parse("rescan_ms = 500\nsettle_ms = 10\n").unwrap();
        let flags = ConfigFile { rescan_ms: Some(300), ..Default::default() };
        let config = file.overridden_by(flags).run_config("f", &Overrides::default()).unwrap();
        assert_eq!(config.rescan_interval, Duration::from_millis(300));
        assert_eq!(config.settle, Duration::from_millis(10));

        let err = ConfigFile::parse("plugin_dri = \"/x\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("unknown field `plugin_dri`") && format!("{err:#}").contains("line 1"), "{err:#}");
        let err = ConfigFile::parse("self_plugin = \"yes\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("line 1"), "{err:#}");
        let err = ConfigFile::parse("log_format = \"xml\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("unknown variant `xml`"), "{err:#}");
        let bad = |text: &str| ConfigFile::parse(text).unwrap().run_config("f.toml", &Overrides::default()).unwrap_err();
        assert!(format!("{:#}", bad("rescan_ms = 5")).contains("f.toml line 1: rescan_ms = 5"));
        assert!(format!("{:#}", bad("admin_tcp = \"nowhere\"")).contains("admin_tcp"));
        assert!(format!("{:#}", bad("socket_dir = \"/s\"\nadmin_socket = \"/s/admin.sock\"")).contains("inside socket_dir"));
        assert!(format!("{:#}", bad("[defaults]\nmemory_mib = 0")).contains("f.toml line 2 (memory_mib): [defaults]"));
    }
}
