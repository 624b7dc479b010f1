//! Talking to OCI registries: wasm components in the artifact layout of the
//! Bytecode Alliance's `oci-wasm` (the one wkg and wasmCloud use) over
//! `oci-client`, logins from a docker-style config file, and cosign
//! signatures made and checked with a key (`sigstore`), offline.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use oci_client::client::{ClientConfig, ClientProtocol, ImageLayer};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_wasm::{WasmClient, WasmConfig};
use sigstore::cosign::{ClientBuilder, CosignCapabilities, SignatureLayer};
use tokio::io::AsyncWrite;
use zeroize::Zeroizing;

use crate::config::sources::{PublicKey, RegistrySettings};

/// A registry that answers nothing this long is treated as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What a manifest says of the component it points to.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest's own digest (`sha256:...`): what a pin names.
    pub digest: String,
    /// The one layer: the component's bytes.
    pub layer: OciDescriptor,
}

pub struct Registry {
    settings: RegistrySettings,
    /// One client for every call: it keeps the registries' tokens, which a
    /// blob download after its manifest needs.
    client: WasmClient,
}

impl Registry {
    pub fn new(settings: RegistrySettings) -> Self {
        let client = WasmClient::new(Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(settings.insecure.clone()),
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            ..Default::default()
        }));
        Self { settings, client }
    }

    pub fn settings(&self) -> &RegistrySettings {
        &self.settings
    }

    /// The login for the registry of `reference`, from the auth file (or the
    /// usual docker places); anonymous when there is none for it.
    pub fn auth(&self, reference: &Reference) -> Result<RegistryAuth> {
        use docker_credential::{CredentialRetrievalError as E, DockerCredential};
        let server = reference.resolve_registry();
        let found = match &self.settings.auth_file {
            Some(file) => {
                let reader = std::fs::File::open(file).with_context(|| format!("reading registry logins {}", file.display()))?;
                docker_credential::get_credential_from_reader(reader, server)
            }
            None => docker_credential::get_credential(server),
        };
        match found {
            Ok(DockerCredential::UsernamePassword(user, password)) => Ok(RegistryAuth::Basic(user, password)),
            Ok(DockerCredential::IdentityToken(token)) => Ok(RegistryAuth::Bearer(token)),
            Err(E::ConfigNotFound | E::NoCredentialConfigured) => Ok(RegistryAuth::Anonymous),
            // No docker config in the usual places: anonymous. A file named
            // in the config that cannot be read is an error, above.
            Err(E::ConfigReadError) if self.settings.auth_file.is_none() => Ok(RegistryAuth::Anonymous),
            Err(err) => bail!("the login for {server} cannot be read: {err}"),
        }
    }

    /// The manifest `reference` names, checked to be one wasm component (and,
    /// for a reference by digest, to have that digest).
    pub async fn manifest(&self, reference: &Reference) -> Result<Manifest> {
        let auth = self.auth(reference)?;
        let (manifest, _config, digest) = self
            .client
            .pull_manifest_and_config(reference, &auth)
            .await
            .map_err(|err| anyhow::anyhow!("{err:#}"))
            .with_context(|| format!("fetching the manifest of {reference}"))?;
        if let Some(pin) = reference.digest() {
            ensure!(digest == pin, "the registry sent manifest {digest} for {reference}");
        }
        let layer = manifest.layers.into_iter().next().context("the manifest has no layer")?;
        // Both become file names and notes: nothing but sha256 and hex digits.
        for (what, value) in [("manifest", &digest), ("layer", &layer.digest)] {
            ensure!(is_sha256(value), "the registry sent a {what} digest that is not sha256 and 64 hex digits: {:?}", value.chars().take(80).collect::<String>());
        }
        Ok(Manifest { digest, layer })
    }

    /// Downloads the component of `manifest` into `path`, refusing more than
    /// `max_bytes` before and while it comes; the layer's digest is checked.
    pub async fn pull_component(&self, reference: &Reference, manifest: &Manifest, path: &Path, max_bytes: u64) -> Result<()> {
        let size = u64::try_from(manifest.layer.size).unwrap_or(u64::MAX);
        ensure!(
            size <= max_bytes,
            "the component is {:.1} MiB, over the pull limit of {} MiB (registry.max_pull_mib)",
            size as f64 / (1 << 20) as f64,
            max_bytes >> 20
        );
        let file = tokio::fs::File::create(path).await.with_context(|| format!("creating {}", path.display()))?;
        let out = Bounded { inner: file, left: max_bytes, max_bytes };
        self.client
            .pull_blob(reference, &manifest.layer, out)
            .await
            .map_err(|err| anyhow::anyhow!("{}", one_line(&err)))
            .with_context(|| format!("downloading the component {} of {reference}", manifest.layer.digest))
    }

    /// Publishes the component in `file` as `reference`; its manifest digest.
    pub async fn push(&self, file: &Path, reference: &Reference) -> Result<String> {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let (config, layer) = WasmConfig::from_raw_component(bytes, None)
            .map_err(|err| anyhow::anyhow!("{err:#}"))
            .with_context(|| format!("{} is not a WebAssembly component", file.display()))?;
        let layer: ImageLayer = layer;
        let auth = self.auth(reference)?;
        let pushed = self
            .client
            .push(reference, &auth, layer, config, None)
            .await
            .map_err(|err| anyhow::anyhow!("{err:#}"))
            .with_context(|| format!("pushing to {reference}"))?;
        let digest = pushed.manifest_url.rsplit('/').next().unwrap_or_default().to_owned();
        ensure!(digest.starts_with("sha256:"), "the registry answered the push without a manifest digest");
        Ok(digest)
    }

    fn cosign(&self) -> Result<sigstore::cosign::Client> {
        let config = sigstore::registry::ClientConfig {
            protocol: sigstore::registry::ClientProtocol::HttpsExcept(self.settings.insecure.clone()),
            ..Default::default()
        };
        ClientBuilder::default().with_oci_client_config(config).build().map_err(|err| anyhow::anyhow!("{err}"))
    }

    fn sigstore_auth(&self, reference: &Reference) -> Result<sigstore::registry::Auth> {
        Ok(match self.auth(reference)? {
            RegistryAuth::Basic(user, password) => sigstore::registry::Auth::Basic(user, password),
            RegistryAuth::Bearer(token) => sigstore::registry::Auth::Bearer(token),
            RegistryAuth::Anonymous => sigstore::registry::Auth::Anonymous,
        })
    }

    /// Signs manifest `digest` of `reference`'s repository with the cosign key
    /// in `key_file` (PEM; encrypted ones take `password`), as `cosign sign` does.
    pub async fn sign(&self, reference: &Reference, digest: &str, key_file: &Path, password: &[u8]) -> Result<()> {
        use sigstore::cosign::Constraint;
        use sigstore::cosign::constraint::PrivateKeySigner;
        let pinned = pinned(reference, digest);
        let key = Zeroizing::new(std::fs::read(key_file).with_context(|| format!("reading signing key {}", key_file.display()))?);
        let signer = PrivateKeySigner::new_with_raw(key, Zeroizing::new(password.to_vec()), &sigstore::crypto::SigningScheme::ECDSA_P256_SHA256_ASN1)
            .map_err(|err| anyhow::anyhow!("{} is not a usable signing key: {err}", key_file.display()))?;
        let auth = self.sigstore_auth(reference)?;
        let mut client = self.cosign()?;
        let (signature_image, source_digest) = client.triangulate(&pinned, &auth).await.map_err(|err| anyhow::anyhow!("{err}"))?;
        let mut layer = SignatureLayer::new_unsigned(&pinned, &source_digest).map_err(|err| anyhow::anyhow!("{err}"))?;
        signer.add_constraint(&mut layer).map_err(|err| anyhow::anyhow!("{err}"))?;
        client
            .push_signature(None, &auth, &signature_image, vec![layer])
            .await
            .map_err(|err| anyhow::anyhow!("pushing the signature: {err}"))?;
        Ok(())
    }

    /// Checks that manifest `digest` of `reference`'s repository carries a
    /// cosign signature by `key`: refused if unsigned or signed by another.
    pub async fn verify(&self, reference: &Reference, digest: &str, key: &PublicKey) -> Result<()> {
        use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraintVec};
        let pinned = pinned(reference, digest);
        let verifier = PublicKeyVerifier::try_from(key.pem.as_slice())
            .map_err(|err| anyhow::anyhow!("public key {} cannot be used: {err}", key.file.display()))?;
        let auth = self.sigstore_auth(reference)?;
        let mut client = self.cosign()?;
        let layers = client.trusted_signature_layers(&auth, &pinned).await.map_err(|err| match err {
            sigstore::errors::SigstoreError::RegistryPullManifestError { .. } | sigstore::errors::SigstoreError::RegistryPullError { .. } => {
                anyhow::anyhow!("{digest} is not signed (no cosign signature in the registry), and public key {} requires it", key.file.display())
            }
            other => anyhow::anyhow!("reading the signatures of {digest}: {other}"),
        })?;
        ensure!(!layers.is_empty(), "{digest} is not signed, and public key {} requires it", key.file.display());
        let constraints: VerificationConstraintVec = vec![Box::new(verifier)];
        sigstore::cosign::verify_constraints(&layers, constraints.iter()).map_err(|_| {
            anyhow::anyhow!("{digest} is not signed by public key {} (its {} signature(s) are by another key)", key.file.display(), layers.len())
        })
    }
}

/// A new ECDSA P-256 key pair as cosign makes them: the private key in PEM
/// (encrypted with `password` unless it is empty) and the public key in PEM.
pub fn keygen(password: &[u8]) -> Result<(Zeroizing<String>, String)> {
    let signer = sigstore::crypto::SigningScheme::ECDSA_P256_SHA256_ASN1.create_signer().map_err(|err| anyhow::anyhow!("{err}"))?;
    let pair = signer.to_sigstore_keypair().map_err(|err| anyhow::anyhow!("{err}"))?;
    let private = if password.is_empty() { pair.private_key_to_pem() } else { pair.private_key_to_encrypted_pem(password) };
    let private = private.map_err(|err| anyhow::anyhow!("{err}"))?;
    let public = pair.public_key_to_pem().map_err(|err| anyhow::anyhow!("{err}"))?;
    Ok((private, public))
}

/// `sha256:` and 64 lowercase hex digits.
pub fn is_sha256(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// `reference`'s repository at manifest `digest`.
fn pinned(reference: &Reference, digest: &str) -> sigstore::registry::OciReference {
    sigstore::registry::OciReference::with_digest(reference.registry().to_owned(), reference.repository().to_owned(), digest.to_owned())
}

/// An error and its causes on one line, for status and logs.
fn one_line(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        let next_text = next.to_string();
        if !text.contains(&next_text) {
            text = format!("{text}: {next_text}");
        }
        cause = next.source();
    }
    text
}

/// A writer that fails once more than `max_bytes` came: a registry whose
/// blob is bigger than its manifest said cannot fill the disk.
struct Bounded<W> {
    inner: W,
    left: u64,
    max_bytes: u64,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Bounded<W> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if buf.len() as u64 > self.left {
            let max = self.max_bytes;
            return Poll::Ready(Err(std::io::Error::other(format!("the registry sent more than the pull limit of {} MiB", max >> 20))));
        }
        let this = &mut *self;
        let written = std::task::ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.left -= written as u64;
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Where pulled components are kept: by digest (`.blobs/sha256-<hex>.wasm`),
/// so a version pulled once is never downloaded again, and what each
/// tenant's sources serve (`<tenant>/<id>.wasm`), which the supervisor reads
/// like a plugin directory.
#[derive(Debug, Clone)]
pub struct SourceStore {
    pub root: PathBuf,
    /// Told whenever a served file was placed or removed: the supervisor
    /// scans at once rather than at its next rescan.
    pub changed: std::sync::Arc<tokio::sync::Notify>,
}

impl SourceStore {
    pub fn new(root: PathBuf) -> Self {
        Self { root, changed: Default::default() }
    }

    /// `layer_digest` was checked by `is_sha256`: it cannot name a path.
    pub fn blob(&self, layer_digest: &str) -> PathBuf {
        assert!(is_sha256(layer_digest), "a checked digest");
        self.root.join(".blobs").join(format!("{}.wasm", layer_digest.replace(':', "-")))
    }

    pub fn tenant_dir(&self, tenant: &str) -> PathBuf {
        self.root.join(tenant)
    }

    pub fn served(&self, tenant: &str, id: &crate::plugin_id::PluginId) -> PathBuf {
        self.tenant_dir(tenant).join(format!("{id}.wasm"))
    }
}
