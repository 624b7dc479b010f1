//! Compiled plugins on disk, so a restart or a re-deploy of a known file skips
//! Cranelift.
//!
//! An entry is keyed by the SHA-256 of the `.wasm` bytes together with the
//! engine's compatibility fingerprint (wasmtime version, target, settings that
//! change code), so a different engine never even looks at another's entries.
//! wasmtime's `deserialize` trusts its input completely (it maps the bytes as
//! code), so an entry is used only if it carries our header and a checksum of
//! its payload, sits in a directory only this user can write, and is accepted
//! by wasmtime's own version checks. Anything else is a miss: the plugin is
//! compiled again and the entry rewritten.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The start of every entry; bump the digit when the layout changes.
const MAGIC: &[u8; 8] = b"SCWASMC1";
const CHECKSUM_LEN: usize = 32;

/// The SHA-256 of a plugin file, hex-encoded.
pub fn content_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A fingerprint of everything about an engine that decides whether its
/// compiled code can be reused.
pub fn engine_fingerprint(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex(&hasher.0.finalize())[..16].to_owned()
}

/// Feeds `std::hash::Hash` into SHA-256, whose output, unlike `DefaultHasher`'s,
/// is the same in every build.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        unreachable!("only the SHA-256 digest is read")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where compiled plugins are kept.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

/// How a component was obtained, for the log and the benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Compiled by Cranelift now.
    Compiled,
    /// Read from the disk cache.
    CacheHit,
    /// Already in memory: another plugin file has the same bytes.
    Shared,
}

impl CompileCache {
    /// Opens (creating if needed) a cache directory only this user may read or
    /// write. A directory others can write to is refused: whoever writes an
    /// entry chooses the code the daemon runs.
    pub fn open(dir: &Path) -> Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating cache directory {}", dir.display()))?;
        let meta = fs::metadata(dir).with_context(|| format!("reading cache directory {}", dir.display()))?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        ensure!(meta.uid() == me, "cache directory {} belongs to uid {}, not to this daemon (uid {me})", dir.display(), meta.uid());
        if meta.mode() & 0o022 != 0 {
            // Our own directory with loose permissions: tighten rather than refuse.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .with_context(|| format!("restricting permissions of cache directory {}", dir.display()))?;
        }
        Ok(Self { dir: dir.to_owned() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, content_hash: &str, engine: &Engine) -> PathBuf {
        self.dir.join(format!("{content_hash}-{}.cwasm", engine_fingerprint(engine)))
    }

    /// The component for `bytes`, from the cache when a sound entry exists,
    /// else compiled and stored. Blocking and CPU-heavy on a miss.
    pub fn load_or_compile(&self, engine: &Engine, bytes: &[u8], content_hash: &str) -> Result<(Component, Origin)> {
        let path = self.entry_path(content_hash, engine);
        match self.read_entry(engine, &path) {
            Ok(Some(component)) => return Ok((component, Origin::CacheHit)),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(entry = %path.display(), "cached compilation unusable, compiling again: {err:#}");
                let _ = fs::remove_file(&path);
            }
        }
        let component = compile(engine, bytes)?;
        if let Err(err) = self.write_entry(&component, &path) {
            tracing::warn!(entry = %path.display(), "could not store the compiled plugin: {err:#}");
        }
        Ok((component, Origin::Compiled))
    }

    /// `Ok(None)` when there is no entry; an error when there is one we must not use.
    fn read_entry(&self, engine: &Engine, path: &Path) -> Result<Option<Component>> {
        let data = match fs::read(path) {
            Ok(data) => data,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).context("reading the entry"),
        };
        let payload = verified_payload(&data)?;
        // SAFETY: the payload is exactly what `Component::serialize` wrote into
        // this daemon-owned 0700 directory (checked by header and checksum), and
        // wasmtime refuses it if its version or settings differ from `engine`'s.
        let component = unsafe { Component::deserialize(engine, payload) }
            .map_err(anyhow::Error::from)
            .context("wasmtime refused the entry")?;
        Ok(Some(component))
    }

    /// Written to a temporary file and renamed into place: an entry is either
    /// absent or whole, and a reader never sees one being written.
    fn write_entry(&self, component: &Component, path: &Path) -> Result<()> {
        let payload = component.serialize().map_err(anyhow::Error::from).context("serializing")?;
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let written = (|| {
            let mut file = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            file.write_all(MAGIC)?;
            file.write_all(&Sha256::digest(&payload))?;
            file.write_all(&payload)?;
            file.sync_all()?;
            fs::rename(&tmp, path).with_context(|| format!("renaming {} into place", tmp.display()))
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }
}

/// The payload of an entry, if its header and checksum hold.
fn verified_payload(data: &[u8]) -> Result<&[u8]> {
    let header = MAGIC.len() + CHECKSUM_LEN;
    if data.len() < header || &data[..MAGIC.len()] != MAGIC {
        bail!("not a scope-wasm cache entry (bad header)");
    }
    let (checksum, payload) = data[MAGIC.len()..].split_at(CHECKSUM_LEN);
    if Sha256::digest(payload).as_slice() != checksum {
        bail!("checksum mismatch: the entry is corrupt");
    }
    Ok(payload)
}

/// Compiles without the cache.
pub fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component> {
    Component::new(engine, bytes).map_err(anyhow::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component, as text (wasmtime's `wat` feature compiles it).
    const EMPTY_COMPONENT: &[u8] = b"(component)";

    fn engine() -> Engine {
        Engine::default()
    }

    #[test]
    fn second_load_is_a_hit_and_corruption_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::open(&dir.path().join("cache")).unwrap();
        let engine = engine();
        let bytes = EMPTY_COMPONENT;
        let hash = content_hash(bytes);

        let (_, origin) = cache.load_or_compile(&engine, bytes, &hash).unwrap();
        assert_eq!(origin, Origin::Compiled);
        let (_, origin) = cache.load_or_compile(&engine, bytes, &hash).unwrap();
        assert_eq!(origin, Origin::CacheHit);

        // Flip one byte of the payload: detected by the checksum, recompiled, rewritten.
        let path = cache.entry_path(&hash, &engine);
        let mut data = fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        fs::write(&path, &data).unwrap();
        let (_, origin) = cache.load_or_compile(&engine, bytes, &hash).unwrap();
        assert_eq!(origin, Origin::Compiled);
        let (_, origin) = cache.load_or_compile(&engine, bytes, &hash).unwrap();
        assert_eq!(origin, Origin::CacheHit);
    }

    #[test]
    fn foreign_entries_are_refused() {
        assert!(verified_payload(b"garbage").unwrap_err().to_string().contains("bad header"));
        // Our header and a valid checksum, but not wasmtime's format.
        let payload = b"not compiled code";
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&Sha256::digest(payload));
        data.extend_from_slice(payload);
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::open(dir.path()).unwrap();
        let path = dir.path().join("entry.cwasm");
        fs::write(&path, data).unwrap();
        let err = cache.read_entry(&engine(), &path).unwrap_err();
        assert!(format!("{err:#}").contains("wasmtime refused"), "{err:#}");
    }

    #[test]
    fn engines_with_other_settings_have_other_fingerprints() {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let other = Engine::new(&config).unwrap();
        assert_ne!(engine_fingerprint(&engine()), engine_fingerprint(&other));
        assert_eq!(engine_fingerprint(&engine()), engine_fingerprint(&engine()));
    }
}
