//! Which host capabilities a plugin may use, as the operator granted them.
//!
//! `host` is always granted. The safe `procfs` subset is granted by default;
//! `docker`, `traffic`, `http-traffic`, and `environ` files under procfs, only
//! when the operator says so.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

/// The capabilities a plugin has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// `None`: procfs reads are denied.
    pub procfs: Option<ProcfsGrant>,
    /// `None`: every Docker call is denied.
    pub docker: Option<DockerGrant>,
    /// Traffic shaping inside containers' network namespaces.
    pub traffic: bool,
    /// HTTP counters per process from the host's eBPF programs.
    pub http_traffic: bool,
}

impl Default for Grants {
    fn default() -> Self {
        Self { procfs: Some(ProcfsGrant::default()), docker: None, traffic: false, http_traffic: false }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcfsGrant {
    /// Whether `/proc/<pid>/environ` (other processes' secrets) may be read.
    pub environ: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerGrant {
    /// When not empty, the plugin sees only containers carrying all these labels
    /// (and procfs refuses it other containers' processes).
    pub label_selector: BTreeMap<String, String>,
}

impl DockerGrant {
    pub fn is_scoped(&self) -> bool {
        !self.label_selector.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.label_selector.iter().all(|(key, value)| labels.get(key) == Some(value))
    }
}

/// Capability names as the operator writes them, after the WIT interfaces.
pub const CAPABILITIES: [&str; 5] = ["host", "procfs", "docker", "traffic", "http-traffic"];

impl Grants {
    /// Grants exactly the named capabilities (with default options).
    pub fn from_names(names: &[String]) -> Result<Self> {
        let mut grants = Grants { procfs: None, docker: None, traffic: false, http_traffic: false };
        for name in names {
            match name.as_str() {
                "host" => {}
                "procfs" => grants.procfs = Some(ProcfsGrant::default()),
                "docker" => grants.docker = Some(DockerGrant::default()),
                "traffic" => grants.traffic = true,
                "http-traffic" => grants.http_traffic = true,
                other => bail!("unknown capability {other:?}; known: {}", CAPABILITIES.join(", ")),
            }
        }
        Ok(grants)
    }

    /// The granted capabilities' names, `host` (always granted) first.
    pub fn names(&self) -> Vec<&'static str> {
        CAPABILITIES.into_iter().filter(|name| self.allows(name)).collect()
    }

    /// Grants the operator may want to pin to known content: shaping any
    /// container's traffic, every process's HTTP counts, every container.
    pub fn privileged(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.traffic {
            names.push("traffic");
        }
        if self.http_traffic {
            names.push("http-traffic");
        }
        if self.docker.as_ref().is_some_and(|docker| !docker.is_scoped()) {
            names.push("docker (unscoped)");
        }
        names
    }

    /// Whether the capability named after a WIT interface is granted.
    pub fn allows(&self, capability: &str) -> bool {
        match capability {
            "host" => true,
            "procfs" => self.procfs.is_some(),
            "docker" => self.docker.is_some(),
            "traffic" => self.traffic,
            "http-traffic" => self.http_traffic,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_grants_and_unknown_ones_are_refused() {
        let grants = Grants::from_names(&["docker".into()]).unwrap();
        assert!(grants.allows("docker") && grants.allows("host") && !grants.allows("procfs"));
        assert!(Grants::default().allows("procfs") && !Grants::default().allows("docker"));
        let err = Grants::from_names(&["dokcer".into()]).unwrap_err();
        assert!(err.to_string().contains("unknown capability \"dokcer\""), "{err}");
    }

    #[test]
    fn a_label_selector_must_match_every_label() {
        let grant = DockerGrant { label_selector: [("ns".to_owned(), "a".to_owned())].into() };
        let mut labels = BTreeMap::from([("ns".to_owned(), "a".to_owned()), ("x".to_owned(), "y".to_owned())]);
        assert!(grant.matches(&labels));
        labels.insert("ns".into(), "b".into());
        assert!(!grant.matches(&labels));
        assert!(DockerGrant::default().matches(&BTreeMap::new()));
    }
}
