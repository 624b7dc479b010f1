//! Limits per plugin: built-in defaults, overridden by the operator's limits
//! file (`[defaults]` and `[plugins.<id>]`) and by command-line flags.
//!
//! ```toml
//! [defaults]
//! call_timeout_ms = 300
//!
//! [plugins.traffic-control]
//! memory_mib = 128
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::limits::Limits;
use crate::plugin_id::PluginId;

/// One section of the limits file; every key optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    pub call_timeout_ms: Option<u64>,
    pub memory_mib: Option<usize>,
    pub max_report_kib: Option<usize>,
    pub max_control_body_kib: Option<usize>,
    pub refresh_ms: Option<u64>,
    pub max_table_elements: Option<usize>,
    pub max_instances: Option<usize>,
    pub max_wasm_stack_kib: Option<usize>,
}

impl LimitOverrides {
    fn apply(&self, limits: &mut Limits) {
        if let Some(ms) = self.call_timeout_ms {
            limits.call_budget = Duration::from_millis(ms);
        }
        if let Some(mib) = self.memory_mib {
            limits.max_memory_bytes = mib << 20;
        }
        if let Some(kib) = self.max_report_kib {
            limits.max_report_bytes = kib << 10;
        }
        if let Some(kib) = self.max_control_body_kib {
            limits.max_control_body_bytes = kib << 10;
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
            limits.max_wasm_stack = kib << 10;
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    #[serde(default)]
    defaults: LimitOverrides,
    #[serde(default)]
    plugins: BTreeMap<String, LimitOverrides>,
}

/// The limits of every plugin, checked when loaded so a bad value fails at start.
#[derive(Debug, Clone, Default)]
pub struct LimitPolicy {
    defaults: Limits,
    plugins: BTreeMap<PluginId, Limits>,
}

impl LimitPolicy {
    /// `file` (if any) over the built-in defaults, then `flags` over both.
    pub fn load(file: Option<&Path>, flags: &LimitOverrides) -> Result<Self> {
        let parsed = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<LimitsFile>(&text).with_context(|| format!("{}", path.display()))?
            }
            None => LimitsFile::default(),
        };
        let origin = file.map_or_else(|| "flags".to_owned(), |p| p.display().to_string());
        let mut defaults = Limits::default();
        parsed.defaults.apply(&mut defaults);
        flags.apply(&mut defaults);
        defaults.validate().with_context(|| format!("{origin}: default limits"))?;

        let mut plugins = BTreeMap::new();
        for (id, overrides) in parsed.plugins {
            let id = PluginId::parse(&id).with_context(|| format!("{origin}: [plugins.{id}]"))?;
            let mut limits = defaults.clone();
            overrides.apply(&mut limits);
            limits.validate().with_context(|| format!("{origin}: [plugins.{id}]"))?;
            plugins.insert(id, limits);
        }
        Ok(Self { defaults, plugins })
    }

    pub fn for_plugin(&self, id: &PluginId) -> Limits {
        self.plugins.get(id).unwrap_or(&self.defaults).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, flags: LimitOverrides) -> Result<LimitPolicy> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        LimitPolicy::load(Some(file.path()), &flags)
    }

    #[test]
    fn plugin_sections_override_defaults_and_flags_override_the_file() {
        let text = "[defaults]\ncall_timeout_ms = 300\nmemory_mib = 32\n\n[plugins.big]\nmemory_mib = 256\n";
        let flags = LimitOverrides { call_timeout_ms: Some(200), ..Default::default() };
        let policy = load(text, flags).unwrap();
        let other = policy.for_plugin(&PluginId::parse("other").unwrap());
        assert_eq!(other.call_budget, Duration::from_millis(200));
        assert_eq!(other.max_memory_bytes, 32 << 20);
        let big = policy.for_plugin(&PluginId::parse("big").unwrap());
        assert_eq!(big.max_memory_bytes, 256 << 20);
        assert_eq!(big.call_budget, Duration::from_millis(200));
    }

    #[test]
    fn bad_files_name_the_place() {
        let err = load("[plugins.x]\nmemory_mb = 3\n", LimitOverrides::default()).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("unknown field `memory_mb`") && msg.contains("line 2"), "{msg}");

        let err = load("[plugins.x]\ncall_timeout_ms = 900\n", LimitOverrides::default()).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("[plugins.x]") && msg.contains("900 ms is out of range"), "{msg}");

        let err = load("[plugins.bad_id]\n", LimitOverrides::default()).unwrap_err();
        assert!(format!("{err:#}").contains("invalid plugin ID"));
    }
}
