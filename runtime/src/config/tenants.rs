//! Tenants: the owners sharing one host. Each delivers plugins into its own
//! directory, may be held to a UNIX owner and group for its files, and gets at
//! most its ceiling of capabilities and limits, and its quotas.
//!
//! ```toml
//! pin_privileged = true            # traffic, http-traffic, unscoped docker need a sha256 pin
//!
//! [tenants.team-b]
//! dir = "team-b"                   # under plugin_dir, or an absolute path
//! owner = "team-b"                 # user name or UID its files must belong to
//! max_plugins = 10
//! memory_mib = 256                 # linear memory of all its plugins together
//! cpu_ms_per_s = 200               # guest CPU time per second, all its plugins together
//! ceiling = { grants = ["procfs", "docker"], docker.label_selector = { team = "b" } }
//!
//! [tenants.team-b.plugins.b-stats]
//! memory_mib = 32
//! ```
//!
//! Plugin IDs are not prefixed with the tenant: the probe has one socket
//! namespace, a prefix would change IDs (and the controls the UI knows) the
//! day a plugin moves between tenants, and `team` + `a-x` against `team-a` +
//! `x` would be ambiguous. Instead an ID is claimed: by the tenant whose
//! section names it exactly, else by the tenant serving it; another tenant's
//! file with that ID is refused. The operator's own plugins (`plugin_dir`
//! outside tenant directories, top-level `[defaults]` and `[plugins]`) form
//! the tenant `default`, held to no ceiling and no quota.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

use crate::config::policy::{Ceiling, Overrides, PluginPolicy, Policy};
use crate::config::sources::{PublicKey, RegistrySettings, Source, SourceSection, sources_from};
use crate::plugin_id::PluginId;

/// The operator's own tenant: `plugin_dir` outside the tenants' directories.
pub const DEFAULT_TENANT: &str = "default";

/// `[tenants.<name>]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSection {
    pub dir: PathBuf,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub max_plugins: Option<usize>,
    pub memory_mib: Option<usize>,
    pub cpu_ms_per_s: Option<u64>,
    #[serde(default)]
    pub ceiling: Overrides,
    #[serde(default)]
    pub defaults: Overrides,
    #[serde(default)]
    pub plugins: BTreeMap<String, Overrides>,
    /// Plugins pulled from registries for this tenant.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceSection>,
    /// Every one of its sources must carry a cosign signature by this key.
    pub public_key: Option<PathBuf>,
}

/// One tenant, checked.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    pub dir: PathBuf,
    /// Whether the tenant is held to the rules of its section (every tenant but `default`).
    pub restricted: bool,
    pub owner: Option<(u32, String)>,
    pub group: Option<(u32, String)>,
    pub max_plugins: Option<usize>,
    pub quota: QuotaLimits,
    pub policy: Policy,
    /// Its plugins pulled from registries, by ID.
    pub sources: BTreeMap<PluginId, Source>,
}

/// Every tenant of the host; index 0 is `default`.
#[derive(Debug, Clone)]
pub struct Tenancy {
    pub tenants: Vec<Tenant>,
    /// Privileged grants need a `sha256` pin.
    pub pin_privileged: bool,
    /// How registry sources are pulled.
    pub registry: RegistrySettings,
}

impl Default for Tenancy {
    fn default() -> Self {
        Self::operator_only(PathBuf::new(), Policy::default(), false)
    }
}

impl Tenancy {
    /// Today's single-owner host: `default` owns the whole plugin directory.
    pub fn operator_only(plugin_dir: PathBuf, policy: Policy, pin_privileged: bool) -> Self {
        let operator = Tenant {
            name: DEFAULT_TENANT.into(),
            dir: plugin_dir,
            restricted: false,
            owner: None,
            group: None,
            max_plugins: None,
            quota: QuotaLimits::default(),
            policy,
            sources: BTreeMap::new(),
        };
        Self { tenants: vec![operator], pin_privileged, registry: RegistrySettings::default() }
    }

    /// The tenants of a config file over the operator's `policy`.
    pub fn new(
        plugin_dir: &Path,
        policy: Policy,
        sections: &BTreeMap<String, TenantSection>,
        pin_privileged: bool,
        origin: &str,
        source: Option<&str>,
    ) -> Result<Self> {
        let mut tenancy = Self::operator_only(plugin_dir.to_owned(), policy, pin_privileged);
        for (name, section) in sections {
            let place = format!("{origin}: [tenants.{name}]");
            let tenant = tenancy.tenant_from(name, section, origin, source).with_context(|| place.clone())?;
            for other in &tenancy.tenants[1..] {
                ensure!(
                    !tenant.dir.starts_with(&other.dir) && !other.dir.starts_with(&tenant.dir),
                    "{place}: dir {} and tenant {}'s dir {} are inside one another",
                    tenant.dir.display(),
                    other.name,
                    other.dir.display()
                );
            }
            tenancy.tenants.push(tenant);
        }
        for tenant in &tenancy.tenants {
            for other in &tenancy.tenants {
                if let Some(id) = tenant.policy.named_ids().find(|id| other.name != tenant.name && other.policy.names(id))
                    && tenant.name < other.name
                {
                    bail!("{origin}: plugin ID {id} has a section under both tenant {} and tenant {}", tenant.name, other.name);
                }
            }
        }
        Ok(tenancy)
    }

    fn tenant_from(&self, name: &str, section: &TenantSection, origin: &str, source: Option<&str>) -> Result<Tenant> {
        PluginId::parse(name).context("a tenant's name follows the rule of plugin IDs")?;
        ensure!(name != DEFAULT_TENANT, "the name {DEFAULT_TENANT} is the operator's own tenant (plugin_dir outside the tenants' directories)");
        let operator = &self.tenants[0];
        ensure!(
            !section.dir.components().any(|c| c == std::path::Component::ParentDir),
            "dir {}: `..` is not allowed in a tenant's directory (say the path itself)",
            section.dir.display()
        );
        let dir = operator.dir.join(&section.dir);
        ensure!(
            !operator.dir.starts_with(&dir),
            "dir {}: the tenant needs a directory of its own, not plugin_dir or one above it",
            dir.display()
        );
        if let Some(mib) = section.memory_mib {
            ensure!(mib >= 1, "memory_mib = 0: a tenant needs some memory (leave it unset for no quota)");
        }
        if let Some(ms) = section.cpu_ms_per_s {
            ensure!((1..=64_000).contains(&ms), "cpu_ms_per_s = {ms}: must be between 1 and 64000 (64 cores)");
        }
        let ceiling = Ceiling::new(&section.ceiling).context("ceiling")?;
        let at = ["tenants", name];
        let policy = operator.policy.for_tenant(&section.defaults, &section.plugins, ceiling, origin, source, &at)?;
        Ok(Tenant {
            name: name.to_owned(),
            dir,
            restricted: true,
            owner: section.owner.as_deref().map(resolve_user).transpose()?,
            group: section.group.as_deref().map(resolve_group).transpose()?,
            max_plugins: section.max_plugins,
            quota: QuotaLimits { memory_bytes: section.memory_mib.map(|mib| mib << 20), cpu_ms_per_s: section.cpu_ms_per_s },
            policy,
            sources: {
                let key = section.public_key.as_deref().map(PublicKey::read).transpose()?;
                sources_from(&section.sources, key.as_ref(), "")?
            },
        })
    }

    /// The tenant whose directory holds `path`: the deepest one, `default` otherwise.
    pub fn tenant_of(&self, path: &Path) -> usize {
        (1..self.tenants.len()).rev().find(|&i| path.starts_with(&self.tenants[i].dir)).unwrap_or(0)
    }

    /// The tenant that reserved `id` with a section of its own, if any. The
    /// operator's top-level sections reserve IDs too once there are tenants.
    /// A source reserves its ID for its tenant, with or without other tenants.
    pub fn reserved_by(&self, id: &PluginId) -> Option<usize> {
        let names = |t: &Tenant| t.policy.names(id) || t.sources.contains_key(id);
        let reserving = (1..self.tenants.len()).find(|&i| names(&self.tenants[i]));
        reserving.or_else(|| (self.tenants.len() > 1 && self.tenants[0].policy.names(id) || self.tenants[0].sources.contains_key(id)).then_some(0))
    }

    /// A source's ID belongs to its tenant alone: no other tenant may name it.
    pub fn check_sources(&self, origin: &str) -> Result<()> {
        for tenant in &self.tenants {
            for other in self.tenants.iter().filter(|other| other.name != tenant.name) {
                if let Some(id) = tenant.sources.keys().find(|id| other.policy.names(id) || other.sources.contains_key(*id)) {
                    bail!("{origin}: plugin ID {id} is a source of tenant {} but tenant {} names it too", tenant.name, other.name);
                }
            }
        }
        Ok(())
    }

    /// Whether any tenant pulls plugins from a registry.
    pub fn has_sources(&self) -> bool {
        self.tenants.iter().any(|t| !t.sources.is_empty())
    }

    pub fn policy(&self, tenant: usize, id: &PluginId) -> PluginPolicy {
        self.tenants[tenant].policy.for_plugin(id)
    }

    /// Why a version with this content may not serve `id` for `tenant`: its
    /// pin says other content, or its privileged grants need a pin it lacks.
    pub fn content_refusal(&self, tenant: usize, id: &PluginId, policy: &PluginPolicy, sha256: &str) -> Option<String> {
        let owner = &self.tenants[tenant];
        match owner.policy.pin(id) {
            Some(pin) if pin != sha256 => Some(format!(
                "its sha256 is {sha256}, but the config pins {id} to {pin} (rule: sha256 pin)"
            )),
            Some(_) => None,
            None if self.pin_privileged && !policy.grants.privileged().is_empty() => Some(format!(
                "it is granted {} but the config pins no sha256 for {id} (rule: pin_privileged)",
                policy.grants.privileged().join(", ")
            )),
            None => None,
        }
    }
}

impl Tenant {
    /// Why the file at `path` may not be loaded for this tenant: it leads out
    /// of the tenant's directory (a symlink), belongs to another user or
    /// group, or has more than one name (a hard link).
    pub fn file_refusal(&self, path: &Path) -> Option<String> {
        if !self.restricted {
            return None;
        }
        let (real, dir) = match (std::fs::canonicalize(path), std::fs::canonicalize(&self.dir)) {
            (Ok(real), Ok(dir)) => (real, dir),
            (Err(err), _) | (_, Err(err)) => return Some(format!("cannot resolve where it leads: {err}")),
        };
        if !real.starts_with(&dir) {
            return Some(format!(
                "it leads to {}, outside the tenant's directory {} (rule: symlink)",
                real.display(),
                dir.display()
            ));
        }
        let meta = match std::fs::metadata(&real) {
            Ok(meta) => meta,
            Err(err) => return Some(format!("cannot read it: {err}")),
        };
        if let Some((uid, name)) = &self.owner
            && meta.uid() != *uid
        {
            return Some(format!("it belongs to UID {}, not to the tenant's owner {name} (UID {uid}) (rule: owner)", meta.uid()));
        }
        if let Some((gid, name)) = &self.group
            && meta.gid() != *gid
        {
            return Some(format!("its group is GID {}, not the tenant's group {name} (GID {gid}) (rule: group)", meta.gid()));
        }
        if meta.nlink() > 1 {
            return Some(format!(
                "it has {} names (a hard link): its content may be another tenant's file (rule: hard link)",
                meta.nlink()
            ));
        }
        None
    }
}

/// A user or group as the config names it (a name, or a numeric ID), with
/// the name kept for messages; `find` looks a name up.
fn resolve_id<T>(
    what: &str,
    name: &str,
    find: impl FnOnce(&str) -> nix::Result<Option<T>>,
    id_of: impl FnOnce(T) -> u32,
) -> Result<(u32, String)> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok((id, name.to_owned()));
    }
    match find(name) {
        Ok(Some(found)) => Ok((id_of(found), name.to_owned())),
        Ok(None) => bail!("{what} {name:?}: no such {}", if what == "owner" { "user" } else { "group" }),
        Err(err) => Err(err).with_context(|| format!("looking up {what} {name:?}")),
    }
}

fn resolve_user(user: &str) -> Result<(u32, String)> {
    resolve_id("owner", user, nix::unistd::User::from_name, |u| u.uid.as_raw())
}

fn resolve_group(group: &str) -> Result<(u32, String)> {
    resolve_id("group", group, nix::unistd::Group::from_name, |g| g.gid.as_raw())
}

/// The shares one tenant may use; `None` is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    pub memory_bytes: Option<usize>,
    /// Guest CPU time per second of wall time, in milliseconds.
    pub cpu_ms_per_s: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;

    fn tenancy(text: &str) -> Result<Tenancy> {
        let file = ConfigFile::parse(text)?;
        let config = file.run_config("test.toml", &Overrides::default())?;
        Ok((*config.tenancy).clone())
    }

    fn id(id: &str) -> PluginId {
        PluginId::parse(id).unwrap()
    }

    const TWO: &str = r#"
        plugin_dir = "/plugins"
        [plugins.traffic-control]
        grants = ["traffic", "docker"]

        [tenants.team-a]
        dir = "team-a"
        ceiling = { grants = ["procfs", "docker"], docker.label_selector = { team = "a" }, memory_mib = 64 }
        [tenants.team-a.plugins.a-stats]
        grants = ["docker"]

        [tenants.team-b]
        dir = "/srv/team-b"
        memory_mib = 128
        cpu_ms_per_s = 100
    "#;

    #[test]
    fn files_belong_to_the_tenant_whose_directory_holds_them() {
        let tenancy = tenancy(TWO).unwrap();
        let names: Vec<&str> = tenancy.tenants.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["default", "team-a", "team-b"]);
        assert_eq!(tenancy.tenant_of(Path::new("/plugins/team-a/x.wasm")), 1);
        assert_eq!(tenancy.tenant_of(Path::new("/srv/team-b/deep/x.wasm")), 2);
        assert_eq!(tenancy.tenant_of(Path::new("/plugins/team-ab/x.wasm")), 0, "by path component, not by prefix");
        assert_eq!(tenancy.tenants[2].quota, QuotaLimits { memory_bytes: Some(128 << 20), cpu_ms_per_s: Some(100) });
    }

    #[test]
    fn sections_reserve_ids_for_their_tenant() {
        let tenancy = tenancy(TWO).unwrap();
        assert_eq!(tenancy.reserved_by(&id("a-stats")), Some(1));
        assert_eq!(tenancy.reserved_by(&id("traffic-control")), Some(0), "the operator's own section");
        assert_eq!(tenancy.reserved_by(&id("anything")), None);
    }

    #[test]
    fn the_ceiling_holds_whatever_the_defaults_say() {
        let tenancy = tenancy(TWO).unwrap();
        let a = tenancy.policy(1, &id("a-stats"));
        assert_eq!(a.grants.docker.unwrap().label_selector["team"], "a", "the ceiling's selector is added");
        assert_eq!(a.grants.procfs, None, "the section lists only docker");
        // Named after the operator's privileged plugin, from team-a's directory: team-a's rules.
        let named = tenancy.policy(1, &id("traffic-control"));
        assert!(!named.grants.traffic && named.grants.docker.is_none());
        assert_eq!(named.limits.max_memory_bytes, 64 << 20);
        let b = tenancy.policy(2, &id("traffic-control"));
        assert_eq!(b.grants.names(), ["host", "procfs"], "no ceiling set: procfs only");
    }

    #[test]
    fn sections_above_the_ceiling_are_refused_with_their_line() {
        let text = "[tenants.t]\ndir = \"t\"\nceiling = { memory_mib = 64 }\n[tenants.t.plugins.x]\nrefresh_ms = 2000\nmemory_mib = 128\n";
        let err = format!("{:#}", tenancy(text).unwrap_err());
        assert!(err.contains("line 6 (memory_mib)") && err.contains("beyond the tenant's ceiling"), "{err}");
        let text = "[tenants.t]\ndir = \"t\"\n[tenants.t.defaults]\ngrants = [\"traffic\"]\n";
        let err = format!("{:#}", tenancy(text).unwrap_err());
        assert!(err.contains("[tenants.t.defaults]") && err.contains("it allows host, procfs"), "{err}");
    }

    #[test]
    fn bad_tenants_are_refused() {
        for (text, expected) in [
            ("[tenants.default]\ndir = \"d\"\n", "operator's own tenant"),
            ("[tenants.a]\ndir = \"..\"\n", "`..` is not allowed"),
            ("[tenants.a]\ndir = \"/\"\n", "not plugin_dir or one above it"),
            ("[tenants.a]\ndir = \"a\"\n[tenants.b]\ndir = \"a/b\"\n", "inside one another"),
            ("[tenants.a]\ndir = \"a\"\nowner = \"no-such-user-here\"\n", "no such user"),
            ("[tenants.a]\ndir = \"a\"\nsha256 = \"x\"\n", "unknown field `sha256`"),
            ("[tenants.a]\ndir = \"a\"\n[tenants.a.plugins.x]\nsha256 = \"abc\"\n", "not a SHA-256"),
            ("[tenants.a]\ndir = \"a\"\n[tenants.a.plugins.\"x-*\"]\nsha256 = \"abc\"\n", "exact plugin ID"),
            ("[tenants.a]\ndir = \"a\"\n[tenants.a.plugins.x]\n[tenants.b]\ndir = \"b\"\n[tenants.b.plugins.x]\n", "both tenant a and tenant b"),
        ] {
            let err = format!("{:#}", tenancy(text).unwrap_err());
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn pins_and_privileged_grants() {
        let pin = "a".repeat(64);
        let text = format!(
            "pin_privileged = true\n[plugins.traffic-control]\ngrants = [\"traffic\"]\nsha256 = \"{pin}\"\n[plugins.shaper]\ngrants = [\"traffic\"]\n"
        );
        let tenancy = tenancy(&text).unwrap();
        let policy = tenancy.policy(0, &id("traffic-control"));
        assert_eq!(tenancy.content_refusal(0, &id("traffic-control"), &policy, &pin), None);
        let other = "b".repeat(64);
        let refusal = tenancy.content_refusal(0, &id("traffic-control"), &policy, &other).unwrap();
        assert!(refusal.contains("(rule: sha256 pin)"), "{refusal}");
        let shaper = tenancy.policy(0, &id("shaper"));
        let refusal = tenancy.content_refusal(0, &id("shaper"), &shaper, &other).unwrap();
        assert!(refusal.contains("granted traffic") && refusal.contains("(rule: pin_privileged)"), "{refusal}");
        let plain = tenancy.policy(0, &id("plain"));
        assert_eq!(tenancy.content_refusal(0, &id("plain"), &plain, &other), None);
    }
}
