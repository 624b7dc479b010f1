//! Keeps every configured registry source pulled, on a thread of its own (a
//! slow registry never holds up a served socket): the manifest is fetched, its
//! digest checked against the pin, its signature against the key, the
//! component downloaded once into the content-addressed store, and then
//! renamed into `<store>/<tenant>/<id>.wasm`, which the supervisor serves like
//! a dropped file: same checks, same swap, the old version serving until a new
//! one works. A failed pull changes nothing that serves; it is in the status.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use tokio::sync::{Semaphore, oneshot, watch};

use crate::config::sources::Source;
use crate::config::tenants::Tenancy;
use crate::load::registry::{Registry, SourceStore};
use crate::ops::health::{HealthBoard, SourceStatus};
use crate::plugin_id::PluginId;

/// Downloads at once: each holds a connection and writes a file.
const PARALLEL_DOWNLOADS: usize = 2;
/// One pull, manifest to placed file, at most this long: a registry that
/// trickles bytes gives up its download slot.
const PULL_TIMEOUT: Duration = Duration::from_secs(300);
/// After a failed pull, the next try comes after 1, 2, 4 ... s, at most this.
const MAX_RETRY: Duration = Duration::from_secs(60);

/// Stops the puller when dropped.
pub struct SourcesHandle {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SourcesHandle {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Pulls the sources of every tenant in `tenancy`, following its changes.
pub fn follow(store: SourceStore, tenancy: watch::Receiver<Arc<Tenancy>>, health: Arc<HealthBoard>) -> Result<SourcesHandle> {
    // Before the supervisor's first scan can serve them: files pulled for a
    // source as it was configured before (another image, key or pin) go.
    let current = tenancy.borrow().clone();
    for tenant in &current.tenants {
        for source in tenant.sources.values() {
            health.set_source(&source.id, &tenant.name, known_status(&store, &tenant.name, source));
        }
    }
    collect_garbage(&store);
    let (stop, stopped) = oneshot::channel();
    let thread = std::thread::Builder::new().name("scope-wasm-sources".into()).spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime for pulls");
        runtime.block_on(follow_tenancy(store, tenancy, health, stopped));
    })?;
    Ok(SourcesHandle { stop: Some(stop), thread: Some(thread) })
}

type Key = (String, PluginId);

async fn follow_tenancy(store: SourceStore, mut tenancy: watch::Receiver<Arc<Tenancy>>, health: Arc<HealthBoard>, mut stopped: oneshot::Receiver<()>) {
    let downloads = Arc::new(Semaphore::new(PARALLEL_DOWNLOADS));
    let mut running: BTreeMap<Key, (Source, tokio::task::JoinHandle<()>)> = BTreeMap::new();
    let mut settings = None;
    loop {
        let current = tenancy.borrow_and_update().clone();
        let wanted: BTreeMap<Key, Source> = current
            .tenants
            .iter()
            .flat_map(|t| t.sources.values().map(|s| ((t.name.clone(), s.id.clone()), s.clone())))
            .collect();
        for key in running.keys().filter(|key| !wanted.contains_key(*key)) {
            health.remove_source(&key.1);
        }
        // New registry settings: every pull starts again with them.
        if settings.as_ref() != Some(&current.registry) {
            for (_, (_, task)) in std::mem::take(&mut running) {
                task.abort();
            }
            settings = Some(current.registry.clone());
        }
        let registry = Arc::new(Registry::new(current.registry.clone()));
        running.retain(|key, (source, task)| {
            let keep = wanted.get(key) == Some(source);
            if !keep {
                task.abort();
            }
            keep
        });
        remove_unwanted(&store, &wanted);
        for (key, source) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let puller = Puller { store: store.clone(), registry: registry.clone(), downloads: downloads.clone(), health: health.clone(), tenant: key.0.clone(), source: source.clone() };
            running.insert(key, (source, tokio::spawn(puller.run())));
        }
        tokio::select! {
            changed = tenancy.changed() => if changed.is_err() {
                // No more reloads: keep pulling what is configured until stopped.
                let _ = (&mut stopped).await;
                break;
            },
            _ = &mut stopped => break,
        }
    }
    for (_, (_, task)) in running {
        task.abort();
    }
}

/// Served files of sources no longer configured go: their plugins stop.
fn remove_unwanted(store: &SourceStore, wanted: &BTreeMap<Key, Source>) {
    let Ok(tenants) = std::fs::read_dir(&store.root) else { return };
    for tenant in tenants.flatten() {
        let name = tenant.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !tenant.path().is_dir() {
            continue;
        }
        let Ok(files) = std::fs::read_dir(tenant.path()) else { continue };
        for file in files.flatten() {
            let path = file.path();
            let Ok(id) = PluginId::from_wasm_path(&path) else { continue };
            if !wanted.contains_key(&(name.clone(), id.clone())) {
                tracing::info!(tenant = %name, plugin = %id, "source no longer configured; its plugin stops");
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(digest_note(&path));
                store.changed.notify_one();
            }
        }
    }
}

/// Beside each served file, what it came from: the manifest digest, the
/// image and the key it was checked with (a dot file: the supervisor does
/// not read it).
fn digest_note(served: &Path) -> std::path::PathBuf {
    let name = served.file_name().unwrap_or_default().to_string_lossy();
    served.with_file_name(format!(".{name}.digest"))
}

fn note_text(source: &Source, digest: &str) -> String {
    format!("{digest}\n{}\n{}\n", source.image, key_id(source))
}

/// Which key checked a version: the SHA-256 of its PEM, or `none`.
fn key_id(source: &Source) -> String {
    use sha2::Digest;
    source.public_key.as_ref().map_or_else(|| "none".into(), |key| format!("{:x}", sha2::Sha256::digest(key.pem.as_slice())))
}

/// The digest of the version served for `source`, if it was pulled for the
/// source as configured now (same image, same key, within the pin); a version
/// that was not is removed: it must not serve under rules it was not checked by.
fn reconcile(store: &SourceStore, tenant: &str, source: &Source) -> Option<String> {
    let served = store.served(tenant, &source.id);
    if !served.exists() {
        return None;
    }
    let note = std::fs::read_to_string(digest_note(&served)).unwrap_or_default();
    let mut lines = note.lines();
    let (digest, image, key) = (lines.next().unwrap_or_default(), lines.next().unwrap_or_default(), lines.next().unwrap_or_default());
    let current = image == source.image && key == key_id(source) && source.digest.as_deref().is_none_or(|pin| pin == digest);
    if current && crate::load::registry::is_sha256(digest) {
        return Some(digest.to_owned());
    }
    tracing::info!(tenant, plugin = %source.id, "the version pulled before was not pulled for this image, key and pin; it stops until a pull brings one");
    let _ = std::fs::remove_file(&served);
    let _ = std::fs::remove_file(digest_note(&served));
    store.changed.notify_one();
    None
}

/// Where `source` stands before its first pull: what an earlier run (or
/// config) pulled serves on if it was pulled for the source as it is now.
fn known_status(store: &SourceStore, tenant: &str, source: &Source) -> SourceStatus {
    let digest = reconcile(store, tenant, source);
    let state = if digest.is_some() { "pulled" } else { "pulling" };
    SourceStatus { image: source.image.clone(), digest, state: state.into(), ..Default::default() }
}

/// At start, alone: partial downloads of a run that stopped, and stored
/// components no served file links to any more, go.
fn collect_garbage(store: &SourceStore) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(store.root.join(".blobs")) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let unused = entry.metadata().is_ok_and(|meta| meta.nlink() <= 1);
        if name.starts_with(".partial-") || unused {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

struct Puller {
    store: SourceStore,
    registry: Arc<Registry>,
    downloads: Arc<Semaphore>,
    health: Arc<HealthBoard>,
    tenant: String,
    source: Source,
}

impl Puller {
    async fn run(self) {
        let mut status = known_status(&self.store, &self.tenant, &self.source);
        self.health.set_source(&self.source.id, &self.tenant, status.clone());
        let mut failures_in_a_row = 0u32;
        loop {
            let pulled = tokio::time::timeout(PULL_TIMEOUT, self.pull(status.digest.as_deref()))
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the pull took longer than {} s; given up", PULL_TIMEOUT.as_secs())));
            let wait = match pulled {
                Ok(pulled) => {
                    if let Some(digest) = pulled {
                        tracing::info!(tenant = %self.tenant, plugin = %self.source.id, image = %self.source.image, %digest, "pulled");
                        status.digest = Some(digest);
                        status.pulled_at = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).ok().map(|d| d.as_secs());
                    }
                    status.state = "pulled".into();
                    status.error.clear();
                    failures_in_a_row = 0;
                    // A pinned version never changes: nothing to look at again.
                    if self.source.digest.is_some() { None } else { Some(self.source.check_every) }
                }
                Err(err) => {
                    let error = format!("{err:#}");
                    if error != status.error {
                        tracing::error!(tenant = %self.tenant, plugin = %self.source.id, image = %self.source.image, "pull failed: {error}");
                    }
                    status.state = "failed".into();
                    status.error = error;
                    status.failures += 1;
                    failures_in_a_row += 1;
                    let backoff = Duration::from_secs(1u64 << failures_in_a_row.min(6)).min(MAX_RETRY);
                    Some(backoff.min(self.source.check_every))
                }
            };
            self.health.set_source(&self.source.id, &self.tenant, status.clone());
            match wait {
                Some(wait) => tokio::time::sleep(wait).await,
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// One look at the registry: the digest of a new version placed, `None`
    /// if the one placed is still current.
    async fn pull(&self, placed: Option<&str>) -> Result<Option<String>> {
        let reference = self.source.reference();
        let served = self.store.served(&self.tenant, &self.source.id);
        let manifest = self.registry.manifest(&reference).await?;
        if placed == Some(manifest.digest.as_str()) && served.exists() {
            return Ok(None);
        }
        if let Some(key) = &self.source.public_key {
            self.registry.verify(&reference, &manifest.digest, key).await?;
        }
        let blob = self.store.blob(&manifest.layer.digest);
        if !blob.exists() {
            let _permit = self.downloads.acquire().await?;
            // Made when first needed: a host without sources has no store.
            let blobs = blob.parent().expect("blobs have a directory");
            std::fs::create_dir_all(blobs).with_context(|| format!("creating the sources store {}", blobs.display()))?;
            let partial = blob.with_file_name(format!(".partial-{}-{}", std::process::id(), self.source.id));
            let pulled = self.registry.pull_component(&reference, &manifest, &partial, self.registry.settings().max_pull_bytes).await;
            if let Err(err) = pulled.and_then(|()| std::fs::rename(&partial, &blob).context("storing the component")) {
                let _ = std::fs::remove_file(&partial);
                return Err(err);
            }
        }
        let dir = served.parent().expect("a served file has a directory");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // The old note goes first and the new one comes after the file: a
        // crash between them leaves a file without a note, pulled again at start.
        let _ = std::fs::remove_file(digest_note(&served));
        place(&blob, &served)?;
        let note = digest_note(&served);
        let next = note.with_file_name(format!("{}.next", note.file_name().unwrap_or_default().to_string_lossy()));
        std::fs::write(&next, note_text(&self.source, &manifest.digest))
            .and_then(|()| std::fs::rename(&next, &note))
            .context("noting the digest pulled")?;
        self.store.changed.notify_one();
        Ok(Some(manifest.digest))
    }
}

/// Puts the stored component where the supervisor reads it, in one rename.
fn place(blob: &Path, served: &Path) -> Result<()> {
    let dir = served.parent().expect("a served file has a directory");
    let name = served.file_name().unwrap_or_default().to_string_lossy();
    let next = dir.join(format!(".{name}.next"));
    let _ = std::fs::remove_file(&next);
    if std::fs::hard_link(blob, &next).is_err() {
        std::fs::copy(blob, &next).with_context(|| format!("copying {} to {}", blob.display(), next.display()))?;
    }
    std::fs::rename(&next, served).with_context(|| format!("placing {}", served.display()))?;
    Ok(())
}
