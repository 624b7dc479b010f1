//! What each plugin may do: limits and capability grants, from built-in
//! defaults, the operator's config file and command-line flags.
//!
//! ```toml
//! [defaults]
//! call_timeout_ms = 300
//!
//! [plugins.traffic-control]     # a plugin ID
//! memory_mib = 128
//!
//! [plugins."team-a-*"]          # or a glob over IDs
//! grants = ["procfs", "docker"]
//! docker.label_selector = { "io.kubernetes.pod.namespace" = "team-a" }
//! ```
//!
//! For one plugin: built-in defaults, then `[defaults]`, then flags, then the
//! matching glob sections from the least to the most specific, then its own section.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

use crate::config::ConfigFile;
use crate::config::grants::{DockerGrant, Grants};
use crate::config::limits::Limits;
use crate::plugin_id::PluginId;
use crate::run::quota::QuotaHandle;

/// One section of the config file; every key optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    pub call_timeout_ms: Option<u64>,
    pub memory_mib: Option<usize>,
    pub max_report_kib: Option<usize>,
    pub max_control_body_kib: Option<usize>,
    pub refresh_ms: Option<u64>,
    pub max_table_elements: Option<usize>,
    pub max_instances: Option<usize>,
    pub max_wasm_stack_kib: Option<usize>,
    pub max_nodes: Option<usize>,
    pub max_samples: Option<usize>,
    pub max_values: Option<usize>,
    pub max_templates: Option<usize>,
    pub max_text_kib: Option<usize>,
    /// Capabilities by name; replaces the inherited list.
    pub grants: Option<Vec<String>>,
    pub procfs: Option<ProcfsOptions>,
    pub docker: Option<DockerOptions>,
    /// The only content (SHA-256, hex) this plugin ID may be served with;
    /// in a section of one exact ID only.
    pub sha256: Option<String>,
    /// What the plugin reads with `host.setting(key)`: merged key by key over
    /// the sections that apply, the most specific last.
    pub settings: Option<BTreeMap<String, SettingValue>>,
}

/// A setting as written: a string, or a number or boolean taken as its text.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SettingValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl std::fmt::Display for SettingValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingValue::Text(text) => f.write_str(text),
            SettingValue::Integer(n) => write!(f, "{n}"),
            SettingValue::Float(x) => write!(f, "{x}"),
            SettingValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// What a plugin's settings may hold: the host copies them into the guest on
/// every call that asks, so they are bounded like everything else it does.
pub const MAX_SETTINGS: usize = 64;
pub const MAX_SETTING_KEY_BYTES: usize = 128;
pub const MAX_SETTING_VALUE_BYTES: usize = 4096;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcfsOptions {
    /// Allow reading `/proc/<pid>/environ`.
    pub environ: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerOptions {
    pub label_selector: Option<BTreeMap<String, String>>,
}

impl Overrides {
    fn apply(&self, policy: &mut PluginPolicy) -> Result<()> {
        let limits = &mut policy.limits;
        if let Some(ms) = self.call_timeout_ms {
            limits.call_budget = Duration::from_millis(ms);
        }
        if let Some(mib) = self.memory_mib {
            limits.max_memory_bytes = mib.saturating_mul(1 << 20);
        }
        if let Some(kib) = self.max_report_kib {
            limits.max_report_bytes = kib.saturating_mul(1 << 10);
        }
        if let Some(kib) = self.max_control_body_kib {
            limits.max_control_body_bytes = kib.saturating_mul(1 << 10);
        }
        if let Some(ms) = self.refresh_ms {
            limits.refresh_interval = Duration::from_millis(ms);
        }
        if let Some(n) = self.max_table_elements {
            limits.max_table_elements = n;
        }
        if let Some(n) = self.max_instances {
            limits.max_instances = n;
        }
        if let Some(kib) = self.max_wasm_stack_kib {
            limits.max_wasm_stack = kib.saturating_mul(1 << 10);
        }
        let report = &mut limits.report;
        for (value, limit) in [
            (self.max_nodes, &mut report.max_nodes),
            (self.max_samples, &mut report.max_samples),
            (self.max_values, &mut report.max_values),
            (self.max_templates, &mut report.max_templates),
        ] {
            if let Some(n) = value {
                *limit = n;
            }
        }
        if let Some(kib) = self.max_text_kib {
            report.max_text_bytes = kib.saturating_mul(1 << 10);
        }
        if let Some(names) = &self.grants {
            let inherited = std::mem::replace(&mut policy.grants, Grants::from_names(names).context("grants")?);
            // Naming a capability again keeps the options it was granted with:
            // re-listing `docker` must never widen a tenant's label selector.
            if let (Some(new), Some(old)) = (policy.grants.docker.as_mut(), inherited.docker) {
                *new = old;
            }
            if let (Some(new), Some(old)) = (policy.grants.procfs.as_mut(), inherited.procfs) {
                *new = old;
            }
        }
        if let Some(environ) = self.procfs.as_ref().and_then(|p| p.environ)
            && let Some(procfs) = policy.grants.procfs.as_mut()
        {
            procfs.environ = environ;
        }
        if let Some(selector) = self.docker.as_ref().and_then(|d| d.label_selector.clone())
            && let Some(docker) = policy.grants.docker.as_mut()
        {
            *docker = DockerGrant { label_selector: selector };
        }
        if let Some(settings) = &self.settings {
            // Checked before anything is merged: a plugin never holds more than the bound.
            let added = settings.keys().filter(|key| !policy.settings.contains_key(*key)).count();
            let total = policy.settings.len() + added;
            ensure!(total <= MAX_SETTINGS, "settings: {total} keys with the sections before, at most {MAX_SETTINGS}");
            let merged = std::sync::Arc::make_mut(&mut policy.settings);
            for (key, value) in settings {
                merged.insert(key.clone(), value.to_string());
            }
        }
        Ok(())
    }

    /// Options for a capability the same section does not grant are a mistake
    /// worth stopping for (an inherited grant does not count: say it again).
    fn check_options(&self) -> Result<()> {
        for (key, value) in self.settings.iter().flatten() {
            ensure!(
                !key.is_empty() && key.len() <= MAX_SETTING_KEY_BYTES,
                "settings: key {key:?} must have 1 to {MAX_SETTING_KEY_BYTES} bytes"
            );
            let value = value.to_string();
            ensure!(value.len() <= MAX_SETTING_VALUE_BYTES, "settings.{key}: {} bytes, at most {MAX_SETTING_VALUE_BYTES}", value.len());
        }
        let Some(names) = &self.grants else { return Ok(()) };
        let named = |cap: &str| names.iter().any(|n| n == cap);
        if self.docker.is_some() && !named("docker") {
            bail!("`docker` options set, but `grants` does not list \"docker\"");
        }
        if self.procfs.is_some() && !named("procfs") {
            bail!("`procfs` options set, but `grants` does not list \"procfs\"");
        }
        Ok(())
    }
}

/// What one plugin may do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginPolicy {
    pub limits: Limits,
    pub grants: Grants,
    /// The account of the plugin's tenant (none outside the daemon, e.g. `check`).
    pub quota: QuotaHandle,
    /// The operator's settings for it (`host.setting`), by key.
    pub settings: std::sync::Arc<BTreeMap<String, String>>,
}

/// A `[plugins.<key>]` section: an exact ID or a glob.
#[derive(Debug, Clone)]
struct Section {
    key: String,
    pattern: Option<glob::Pattern>,
    overrides: Overrides,
}

impl Section {
    fn matches(&self, id: &PluginId) -> bool {
        match &self.pattern {
            Some(pattern) => pattern.matches(id.as_str()),
            None => self.key == id.as_str(),
        }
    }

    /// Exact IDs beat globs; among globs, more literal characters beat fewer.
    fn specificity(&self) -> (bool, usize) {
        let literal = self.key.chars().filter(|c| !matches!(c, '*' | '?' | '[' | ']')).count();
        (self.pattern.is_none(), literal)
    }
}

/// The policy of every plugin, checked when loaded so a bad value fails at start.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    defaults: PluginPolicy,
    sections: Vec<Section>,
    /// A tenant's ceiling, which every plugin's policy is held under.
    ceiling: Option<Ceiling>,
}

fn not_pinned(overrides: &Overrides) -> Result<()> {
    if overrides.sha256.is_some() {
        bail!("`sha256` pins one plugin's content: it belongs in the section of an exact plugin ID");
    }
    Ok(())
}

fn check_pin(pin: &str) -> Result<()> {
    if pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        bail!("sha256 = {pin:?}: not a SHA-256 in lowercase hex (64 digits; `sha256sum FILE` prints it)");
    }
    Ok(())
}

/// The most a tenant's plugins may have: capabilities (with their options) and
/// limits. Unset limits are unbounded; capabilities not listed are denied
/// (only `procfs` when `grants` is unset). A `docker.label_selector` in the
/// ceiling is added to every Docker grant of the tenant.
#[derive(Debug, Clone)]
pub struct Ceiling {
    allowed: Grants,
    /// The ceiling's limit keys only.
    limits: Overrides,
}

impl Ceiling {
    pub fn new(overrides: &Overrides) -> Result<Self> {
        overrides.check_options()?;
        not_pinned(overrides)?;
        let names = overrides.grants.clone().unwrap_or_else(|| vec!["procfs".into()]);
        let mut allowed = Grants::from_names(&names).context("ceiling grants")?;
        if let Some(docker) = allowed.docker.as_mut() {
            docker.label_selector = overrides.docker.as_ref().and_then(|d| d.label_selector.clone()).unwrap_or_default();
        }
        if let Some(procfs) = allowed.procfs.as_mut() {
            procfs.environ = overrides.procfs.as_ref().and_then(|p| p.environ).unwrap_or(false);
        }
        ensure!(overrides.settings.is_none(), "settings belong in a plugin's section, not in a ceiling");
        let limits = Overrides { grants: None, procfs: None, docker: None, sha256: None, settings: None, ..overrides.clone() };
        limits.apply(&mut PluginPolicy::default()).context("ceiling")?;
        Ok(Self { allowed, limits })
    }

    /// `policy`, brought under the ceiling: the smaller of each limit (the
    /// longer refresh interval), capabilities the ceiling allows, their options narrowed.
    pub fn clamp(&self, policy: &mut PluginPolicy) {
        let mut bound = policy.clone();
        let _ = self.limits.apply(&mut bound);
        let (limits, bound) = (&mut policy.limits, &bound.limits);
        limits.call_budget = limits.call_budget.min(bound.call_budget);
        limits.max_memory_bytes = limits.max_memory_bytes.min(bound.max_memory_bytes);
        limits.max_report_bytes = limits.max_report_bytes.min(bound.max_report_bytes);
        limits.max_control_body_bytes = limits.max_control_body_bytes.min(bound.max_control_body_bytes);
        limits.refresh_interval = limits.refresh_interval.max(bound.refresh_interval);
        limits.max_table_elements = limits.max_table_elements.min(bound.max_table_elements);
        limits.max_instances = limits.max_instances.min(bound.max_instances);
        limits.max_wasm_stack = limits.max_wasm_stack.min(bound.max_wasm_stack);
        let (report, bound) = (&mut limits.report, &bound.report);
        report.max_nodes = report.max_nodes.min(bound.max_nodes);
        report.max_samples = report.max_samples.min(bound.max_samples);
        report.max_values = report.max_values.min(bound.max_values);
        report.max_templates = report.max_templates.min(bound.max_templates);
        report.max_text_bytes = report.max_text_bytes.min(bound.max_text_bytes);

        let grants = &mut policy.grants;
        grants.traffic &= self.allowed.traffic;
        grants.http_traffic &= self.allowed.http_traffic;
        match (&self.allowed.procfs, grants.procfs.as_mut()) {
            (None, _) => grants.procfs = None,
            (Some(allowed), Some(procfs)) => procfs.environ &= allowed.environ,
            (Some(_), None) => {}
        }
        match (&self.allowed.docker, grants.docker.as_mut()) {
            (None, _) => grants.docker = None,
            (Some(allowed), Some(docker)) => {
                docker.label_selector.extend(allowed.label_selector.iter().map(|(k, v)| (k.clone(), v.clone())))
            }
            (Some(_), None) => {}
        }
    }

    /// Whether `section` over `base` asks for more than the ceiling gives.
    fn exceeded_by(&self, base: &PluginPolicy, section: &Overrides) -> bool {
        self.check(base, section).is_err()
    }

    /// An error naming what `section` over `base` asks beyond the ceiling.
    fn check(&self, base: &PluginPolicy, section: &Overrides) -> Result<()> {
        let mut asked = base.clone();
        self.clamp(&mut asked);
        if section.apply(&mut asked).is_err() {
            return Ok(()); // reported as the section's own error
        }
        let mut held = asked.clone();
        self.clamp(&mut held);
        // The ceiling's label selector is added to every Docker grant: not
        // asking beyond it, unless a section sets one of its labels otherwise.
        if held.grants.names() != asked.grants.names() {
            bail!("asks for grants beyond the tenant's ceiling (it allows {})", self.allowed.names().join(", "));
        }
        if held.grants.procfs != asked.grants.procfs {
            bail!("asks for procfs.environ, which the tenant's ceiling does not allow");
        }
        if let (Some(allowed), Some(docker)) = (&self.allowed.docker, &asked.grants.docker) {
            for (key, value) in &allowed.label_selector {
                if let Some(other) = docker.label_selector.get(key).filter(|other| *other != value) {
                    bail!("docker.label_selector sets {key:?} = {other:?}, but the tenant's ceiling fixes it to {value:?}");
                }
            }
        }
        if held.limits != asked.limits {
            bail!("sets limits beyond the tenant's ceiling");
        }
        Ok(())
    }
}

/// `origin: ` with the line of the first key of the section at `path` that is
/// wrong on its own over `base` (or none, if no single key is).
fn where_in(origin: &str, source: Option<&str>, path: &[&str], base: &PluginPolicy, ceiling: Option<&Ceiling>) -> String {
    let wrong_alone = |text: &str| {
        let Ok(one) = toml::from_str::<Overrides>(text) else { return false };
        let mut policy = base.clone();
        one.check_options().and_then(|()| one.apply(&mut policy)).and_then(|()| policy.limits.validate()).is_err()
            || ceiling.is_some_and(|ceiling| ceiling.exceeded_by(base, &one))
    };
    match source.and_then(|source| crate::config::lines::culprit(source, path, wrong_alone)) {
        Some((key, line)) => format!("{origin} line {line} ({key}): "),
        None => format!("{origin}: "),
    }
}

impl Policy {
    /// `file` (if any) over the built-in defaults, then `flags` over both.
    pub fn load(file: Option<&Path>, flags: &Overrides) -> Result<Self> {
        let parsed = match file {
            Some(path) => ConfigFile::read(path)?,
            None => ConfigFile::default(),
        };
        let origin = file.map_or_else(|| "flags".to_owned(), |p| p.display().to_string());
        Self::from_sections(&parsed.defaults, &parsed.plugins, flags, &origin, parsed.source.as_deref())
    }

    /// The `[defaults]` and `[plugins.*]` sections of a config file read from
    /// `origin` (its text `source`, for line numbers), with `flags` over `[defaults]`.
    pub fn from_sections(
        file_defaults: &Overrides,
        plugins: &BTreeMap<String, Overrides>,
        flags: &Overrides,
        origin: &str,
        source: Option<&str>,
    ) -> Result<Self> {
        let mut defaults = PluginPolicy::default();
        file_defaults
            .check_options()
            .and_then(|()| not_pinned(file_defaults))
            .and_then(|()| file_defaults.apply(&mut defaults))
            .and_then(|()| flags.apply(&mut defaults))
            .and_then(|()| defaults.limits.validate())
            .with_context(|| format!("{}[defaults]", where_in(origin, source, &["defaults"], &PluginPolicy::default(), None)))?;
        Self::with_sections(defaults, plugins, None, origin, source, &[])
    }

    /// A tenant's policy: its `defaults` and `plugins` sections over this one's
    /// defaults, everything held under `ceiling`. `at` is the tenant's place
    /// in the file (`["tenants", name]`).
    pub fn for_tenant(
        &self,
        tenant_defaults: &Overrides,
        plugins: &BTreeMap<String, Overrides>,
        ceiling: Ceiling,
        origin: &str,
        source: Option<&str>,
        at: &[&str],
    ) -> Result<Self> {
        let mut base = self.defaults.clone();
        ceiling.clamp(&mut base);
        let mut defaults = base.clone();
        let path: Vec<&str> = at.iter().copied().chain(["defaults"]).collect();
        tenant_defaults
            .check_options()
            .and_then(|()| not_pinned(tenant_defaults))
            .and_then(|()| ceiling.check(&base, tenant_defaults))
            .and_then(|()| tenant_defaults.apply(&mut defaults))
            .and_then(|()| defaults.limits.validate())
            .with_context(|| format!("{}[{}]", where_in(origin, source, &path, &base, Some(&ceiling)), path.join(".")))?;
        Self::with_sections(defaults, plugins, Some(ceiling), origin, source, at)
    }

    fn with_sections(
        defaults: PluginPolicy,
        plugins: &BTreeMap<String, Overrides>,
        ceiling: Option<Ceiling>,
        origin: &str,
        source: Option<&str>,
        at: &[&str],
    ) -> Result<Self> {
        let mut sections = Vec::new();
        for (key, overrides) in plugins {
            let path: Vec<&str> = at.iter().copied().chain(["plugins", key.as_str()]).collect();
            let place = || {
                let table: Vec<&str> = at.iter().copied().chain(["plugins"]).collect();
                format!("{}[{}.{key:?}]", where_in(origin, source, &path, &defaults, ceiling.as_ref()), table.join("."))
            };
            let pattern = if key.contains(['*', '?', '[']) {
                let pattern = glob::Pattern::new(key).with_context(|| format!("{}: not a valid glob", place()))?;
                not_pinned(overrides).with_context(|| format!("{}: a glob section", place()))?;
                Some(pattern)
            } else {
                PluginId::parse(key).with_context(place)?;
                if let Some(pin) = &overrides.sha256 {
                    check_pin(pin).with_context(place)?;
                }
                None
            };
            // Each section must make sense on its own, over the defaults.
            let mut check = defaults.clone();
            overrides
                .check_options()
                .and_then(|()| ceiling.as_ref().map_or(Ok(()), |ceiling| ceiling.check(&defaults, overrides)))
                .and_then(|()| overrides.apply(&mut check))
                .and_then(|()| check.limits.validate())
                .with_context(place)?;
            sections.push(Section { key: key.clone(), pattern, overrides: overrides.clone() });
        }
        sections.sort_by_key(|s| (s.specificity(), s.key.clone()));
        Ok(Self { defaults, sections, ceiling })
    }

    /// Whether a section of exactly this ID exists (it reserves the ID for
    /// the tenant whose sections these are).
    pub fn names(&self, id: &PluginId) -> bool {
        self.sections.iter().any(|s| s.pattern.is_none() && s.key == id.as_str())
    }

    /// The IDs of the exact-ID sections.
    pub fn named_ids(&self) -> impl Iterator<Item = PluginId> + '_ {
        self.sections.iter().filter(|s| s.pattern.is_none()).filter_map(|s| PluginId::parse(&s.key).ok())
    }

    /// The SHA-256 the ID's content must have, if pinned.
    pub fn pin(&self, id: &PluginId) -> Option<&str> {
        self.sections.iter().find(|s| s.pattern.is_none() && s.key == id.as_str()).and_then(|s| s.overrides.sha256.as_deref())
    }

    pub fn for_plugin(&self, id: &PluginId) -> PluginPolicy {
        let mut policy = self.defaults.clone();
        for section in self.sections.iter().filter(|s| s.matches(id)) {
            // Checked at load; applying in order cannot fail.
            let _ = section.overrides.apply(&mut policy);
        }
        if let Some(ceiling) = &self.ceiling {
            ceiling.clamp(&mut policy);
        }
        policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, flags: Overrides) -> Result<Policy> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        Policy::load(Some(file.path()), &flags)
    }

    fn id(id: &str) -> PluginId {
        PluginId::parse(id).unwrap()
    }

    #[test]
    fn plugin_sections_override_defaults_and_flags_override_the_file() {
        let text = "[defaults]\ncall_timeout_ms = 300\nmemory_mib = 32\n\n[plugins.big]\nmemory_mib = 256\n";
        let flags = Overrides { call_timeout_ms: Some(200), ..Default::default() };
        let policy = load(text, flags).unwrap();
        let other = policy.for_plugin(&id("other")).limits;
        assert_eq!(other.call_budget, Duration::from_millis(200));
        assert_eq!(other.max_memory_bytes, 32 << 20);
        let big = policy.for_plugin(&id("big")).limits;
        assert_eq!(big.max_memory_bytes, 256 << 20);
        assert_eq!(big.call_budget, Duration::from_millis(200));
    }

    #[test]
    fn globs_apply_from_least_to_most_specific_and_exact_ids_last() {
        let text = r#"
            [plugins."team-a-*"]
            grants = ["procfs", "docker"]
            docker.label_selector = { "io.kubernetes.pod.namespace" = "team-a" }
            memory_mib = 16

            [plugins."team-*"]
            memory_mib = 8
            refresh_ms = 500

            [plugins.team-a-special]
            memory_mib = 128
            grants = ["docker", "procfs"]   # re-listed: the selector stays
        "#;
        let policy = load(text, Overrides::default()).unwrap();
        let a1 = policy.for_plugin(&id("team-a-1"));
        assert_eq!(a1.limits.max_memory_bytes, 16 << 20, "team-a-* beats team-*");
        assert_eq!(a1.limits.refresh_interval, Duration::from_millis(500), "team-* still applies");
        let docker = a1.grants.docker.unwrap();
        assert_eq!(docker.label_selector["io.kubernetes.pod.namespace"], "team-a");
        assert_eq!(policy.for_plugin(&id("team-a-special")).limits.max_memory_bytes, 128 << 20);
        let b = policy.for_plugin(&id("team-b-1"));
        assert!(policy.for_plugin(&id("team-a-special")).grants.docker.unwrap().is_scoped());
        assert_eq!(b.limits.max_memory_bytes, 8 << 20);
        assert_eq!(b.grants, Grants::default(), "procfs only, no docker");
        assert_eq!(policy.for_plugin(&id("other")), PluginPolicy::default());
    }

    #[test]
    fn bad_files_name_the_place() {
        let err = load("[plugins.x]\nmemory_mb = 3\n", Overrides::default()).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("unknown field `memory_mb`") && msg.contains("line 2"), "{msg}");

        let err = load("[plugins.x]\ncall_timeout_ms = 900\n", Overrides::default()).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("[plugins.\"x\"]") && msg.contains("900 ms is out of range"), "{msg}");

        let err = load("[plugins.bad_id]\n", Overrides::default()).unwrap_err();
        assert!(format!("{err:#}").contains("invalid plugin ID"));

        let err = load("[plugins.x]\ngrants = [\"dockr\"]\n", Overrides::default()).unwrap_err();
        assert!(format!("{err:#}").contains("unknown capability \"dockr\""), "{err:#}");

        let err = load("[plugins.x]\ngrants = []\ndocker.label_selector = { a = \"b\" }\n", Overrides::default()).unwrap_err();
        assert!(format!("{err:#}").contains("does not list \"docker\""), "{err:#}");

        let err = load("[plugins.x]\ndocker.label_selector = { a = 1 }\n", Overrides::default()).unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
    }
}
