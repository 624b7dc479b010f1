//! Plugins pulled from OCI registries instead of dropped into a directory:
//! `[sources.<id>]` for the operator's own, `[tenants.<name>.sources.<id>]`
//! for a tenant's, and how registries are reached in `[registry]`.
//!
//! ```toml
//! [registry]
//! auth_file = "/root/.docker/config.json"   # docker-style logins; default $DOCKER_CONFIG or ~/.docker
//! insecure = ["localhost:5000"]              # plain HTTP, only for these
//! max_pull_mib = 64                          # the largest component pulled
//!
//! [sources.iowait]
//! image = "registry.example/team/iowait:1.2"
//! digest = "sha256:..."                      # the manifest's digest: nothing else may serve
//! check_every_s = 300                        # how often a tag is looked at again
//! public_key = "/etc/scope-wasm/team.pub"    # a cosign signature by this key is required
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

use crate::plugin_id::PluginId;

/// `[sources.<id>]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    pub image: String,
    pub digest: Option<String>,
    pub check_every_s: Option<u64>,
    pub public_key: Option<PathBuf>,
}

/// `[registry]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    pub auth_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure: Vec<String>,
    pub max_pull_mib: Option<u64>,
}

/// A tag is looked at again this often unless the source says otherwise.
pub const DEFAULT_CHECK_EVERY: Duration = Duration::from_secs(300);
/// The largest component a pull takes, unless `max_pull_mib` says otherwise:
/// the biggest SDK's plugins (Python, 18 MiB) three times over.
pub const DEFAULT_MAX_PULL_BYTES: u64 = 64 << 20;

/// How registries are reached, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrySettings {
    /// Docker-style config with logins; `None`: the usual places.
    pub auth_file: Option<PathBuf>,
    /// Registries (`host:port`) spoken to over plain HTTP.
    pub insecure: Vec<String>,
    pub max_pull_bytes: u64,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self { auth_file: None, insecure: Vec::new(), max_pull_bytes: DEFAULT_MAX_PULL_BYTES }
    }
}

impl RegistrySettings {
    pub fn from_section(section: &RegistrySection, place: &str) -> Result<Self> {
        let max_pull_bytes = match section.max_pull_mib {
            Some(mib) => {
                ensure!((1..=128).contains(&mib), "{place}: max_pull_mib = {mib}: must be 1..=128 (the largest plugin file loaded)");
                mib << 20
            }
            None => DEFAULT_MAX_PULL_BYTES,
        };
        for host in &section.insecure {
            ensure!(!host.is_empty() && !host.contains('/'), "{place}: insecure = {host:?}: name a registry as host or host:port");
        }
        Ok(Self { auth_file: section.auth_file.clone(), insecure: section.insecure.clone(), max_pull_bytes })
    }
}

/// One plugin to pull, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: PluginId,
    /// The reference as written (`registry/repo:tag` or `...@sha256:...`).
    pub image: String,
    /// The manifest digest it is pinned to, if any.
    pub digest: Option<String>,
    pub check_every: Duration,
    /// The cosign public key (PEM) its signature must verify with, and its file.
    pub public_key: Option<PublicKey>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PublicKey {
    pub file: PathBuf,
    pub pem: Arc<Vec<u8>>,
}

impl PublicKey {
    pub fn read(file: &Path) -> Result<Self> {
        let pem = std::fs::read(file).with_context(|| format!("reading public key {}", file.display()))?;
        ensure!(
            String::from_utf8_lossy(&pem).contains("-----BEGIN PUBLIC KEY-----"),
            "{} is not a PEM public key (cosign.pub, or `openssl pkey -pubout`)",
            file.display()
        );
        Ok(Self { file: file.to_owned(), pem: Arc::new(pem) })
    }
}

impl Source {
    /// `tenant_key`: the key every source of the tenant must be signed with,
    /// unless the source names its own.
    pub fn from_section(id: &str, section: &SourceSection, tenant_key: Option<&PublicKey>) -> Result<Self> {
        let id = PluginId::parse(id)?;
        let reference: oci_client::Reference =
            section.image.parse().with_context(|| format!("image = {:?}: not an image reference like registry.example/team/plugin:1.0", section.image))?;
        let digest = match (&section.digest, reference.digest()) {
            (Some(pin), Some(in_ref)) if pin != in_ref => {
                bail!("digest = {pin:?} and the image's own @{in_ref} differ")
            }
            (pin, in_ref) => pin.clone().or(in_ref.map(str::to_owned)),
        };
        if let Some(digest) = &digest {
            let hex = digest.strip_prefix("sha256:").unwrap_or_default();
            ensure!(
                hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "digest = {digest:?}: must be sha256: and 64 lowercase hex digits (the manifest digest `scope-wasm push` prints)"
            );
        }
        let check_every = match section.check_every_s {
            Some(0) => bail!("check_every_s = 0: must be at least 1"),
            Some(s) => Duration::from_secs(s),
            None => DEFAULT_CHECK_EVERY,
        };
        let public_key = match &section.public_key {
            Some(file) => Some(PublicKey::read(file)?),
            None => tenant_key.cloned(),
        };
        Ok(Self { id, image: section.image.clone(), digest, check_every, public_key })
    }

    /// The reference to pull: pinned to the digest when there is one.
    pub fn reference(&self) -> oci_client::Reference {
        let reference: oci_client::Reference = self.image.parse().expect("checked when the config was read");
        match &self.digest {
            Some(digest) => oci_client::Reference::with_digest(
                reference.registry().to_owned(),
                reference.repository().to_owned(),
                digest.clone(),
            ),
            None => reference,
        }
    }
}

/// The sources of one tenant's sections, by ID.
pub fn sources_from(
    sections: &std::collections::BTreeMap<String, SourceSection>,
    tenant_key: Option<&PublicKey>,
    place: &str,
) -> Result<std::collections::BTreeMap<PluginId, Source>> {
    let mut sources = std::collections::BTreeMap::new();
    for (id, section) in sections {
        let source = Source::from_section(id, section, tenant_key).with_context(|| format!("{place}[sources.{id}]"))?;
        sources.insert(source.id.clone(), source);
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(image: &str, digest: Option<&str>) -> SourceSection {
        SourceSection { image: image.into(), digest: digest.map(Into::into), check_every_s: None, public_key: None }
    }

    #[test]
    fn sources_are_checked() {
        let pin = format!("sha256:{}", "a".repeat(64));
        let source = Source::from_section("iowait", &section("localhost:5000/team/iowait:1.2", Some(&pin)), None).unwrap();
        assert_eq!(source.reference().to_string(), format!("localhost:5000/team/iowait@{pin}"));
        assert_eq!(source.check_every, DEFAULT_CHECK_EVERY);
        let bad = |s: SourceSection| format!("{:#}", Source::from_section("x", &s, None).unwrap_err());
        assert!(bad(section("localhost:5000/x:1", Some("sha256:abc"))).contains("64 lowercase hex"));
        assert!(bad(section("UPPER CASE", None)).contains("not an image reference"));
        let other = format!("sha256:{}", "b".repeat(64));
        assert!(bad(section(&format!("localhost:5000/x@{other}"), Some(&pin))).contains("differ"));
        assert!(format!("{:#}", Source::from_section("Bad.Id", &section("r/x:1", None), None).unwrap_err()).contains("Bad.Id"));
    }

    #[test]
    fn only_sha256_digests_name_stored_files() {
        use crate::load::registry::is_sha256;
        assert!(is_sha256(&format!("sha256:{}", "0a".repeat(32))));
        for bad in ["sha256:../../etc/passwd", "/abs/path", "sha512:00", &format!("sha256:{}", "A".repeat(64)), &format!("sha256:{}/x", "a".repeat(62))] {
            assert!(!is_sha256(bad), "{bad}");
        }
    }

    #[test]
    fn registry_settings_are_checked() {
        let place = "f.toml [registry]";
        let ok = RegistrySettings::from_section(&RegistrySection { insecure: vec!["localhost:5000".into()], ..Default::default() }, place).unwrap();
        assert_eq!(ok.max_pull_bytes, DEFAULT_MAX_PULL_BYTES);
        let err = RegistrySettings::from_section(&RegistrySection { max_pull_mib: Some(0), ..Default::default() }, place).unwrap_err();
        assert!(err.to_string().contains("max_pull_mib = 0"));
        let err = RegistrySettings::from_section(&RegistrySection { insecure: vec!["http://x/".into()], ..Default::default() }, place).unwrap_err();
        assert!(err.to_string().contains("host:port"));
    }
}
