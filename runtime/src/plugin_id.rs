//! Plugin IDs: the file stem of `<id>.wasm`, under the probe's own naming rule.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

/// A plugin ID the Scope probe accepts: `^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$`.
///
/// The probe silently skips sockets whose name breaks this rule, so we refuse
/// such plugins loudly instead of serving a socket nobody will ever poll.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginId(Arc<str>);

impl PluginId {
    pub fn parse(id: &str) -> Result<Self> {
        let valid = !id.is_empty()
            && id.split('-').all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !valid {
            bail!(
                "invalid plugin ID {id:?}: the Scope probe only accepts letters and digits, \
                 optionally joined by single dashes (e.g. `my-plugin`)"
            );
        }
        Ok(Self(id.into()))
    }

    /// The ID of a plugin file: its name without the `.wasm` extension.
    pub fn from_wasm_path(path: &Path) -> Result<Self> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: file name is not UTF-8", path.display()))?;
        let stem = name
            .strip_suffix(".wasm")
            .with_context(|| format!("{}: not a .wasm file", path.display()))?;
        Self::parse(stem).with_context(|| format!("refusing {}", path.display()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_probes_ids() {
        for id in ["iowait", "volume-count", "a1-b2-c3", "X"] {
            assert_eq!(PluginId::parse(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn refuses_what_the_probe_skips() {
        for id in ["", "a--b", "dot.ted", "trail-", "-lead", "bad_name", "sp ace", "ünï"] {
            assert!(PluginId::parse(id).is_err(), "{id:?} should be refused");
        }
    }

    #[test]
    fn id_is_the_file_stem() {
        let id = PluginId::from_wasm_path(Path::new("/x/my-plugin.wasm")).unwrap();
        assert_eq!(id.as_str(), "my-plugin");
        let err = PluginId::from_wasm_path(Path::new("/x/bad_name.wasm")).unwrap_err();
        assert!(format!("{err:#}").contains("bad_name"), "{err:#}");
    }
}
