//! Compiled plugins on disk: how an entry is written, checked and read back,
//! and how the directory is kept to a size.
//!
//! An entry is keyed by the SHA-256 of the `.wasm` bytes together with the
//! engine's compatibility fingerprint (wasmtime version, target, settings that
//! change code), so a different engine never even looks at another's entries.
//! wasmtime's `deserialize` trusts its input completely (it maps the bytes as
//! code), so an entry is used only if it carries our trailer and a checksum of
//! its payload, sits in a directory only this user can write, and is accepted
//! by wasmtime's own version checks. Anything else is a miss: the plugin is
//! compiled again and the entry rewritten.
//!
//! An entry is wasmtime's bytes from its first byte, then the trailer, so
//! wasmtime maps it straight from the file (`deserialize_file`): its code and
//! the guests' initial memory images stay pages of the page cache, shared by
//! every instance (copy-on-write) and not read into the daemon's heap. The
//! checksum is a CRC-32 (over the mapped file, a few ms for a 40 MB Python
//! plugin, where SHA-256 took over 100 ms): it is there for corruption, as
//! only this user can write the directory.
//!
//! Entries are written by the compile child (`engine::child`) and read by the
//! daemon. The directory is bounded: entries no plugin file uses go after a
//! grace period, and the least recently used go when it outgrows its limit.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, ensure};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// In every entry's trailer, `MAGIC`, the payload's CRC-32 and its length
/// (little-endian); bump the digit when the layout changes.
const MAGIC: &[u8; 8] = b"SCWASMC2";
const TRAILER_LEN: usize = MAGIC.len() + 4 + 8;
const ENTRY_SUFFIX: &str = ".cwasm";
/// Marks an entry being written: `<entry stem>.tmp.<writer's pid>`.
const TMP_MARK: &str = ".tmp.";

/// The SHA-256 of a plugin file, hex-encoded.
pub fn content_hash(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The content hashes of `head` and of `head` followed by `tail`, hashing
/// `head` once (a plugin file's code and the whole file, when its source
/// section is last).
pub fn content_hashes(head: &[u8], tail: &[u8]) -> (String, String) {
    let mut hasher = Sha256::new();
    hasher.update(head);
    let of_head = hex(&hasher.clone().finalize());
    hasher.update(tail);
    (of_head, hex(&hasher.finalize()))
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

    pub fn entry_path(&self, content_hash: &str, engine: &Engine) -> PathBuf {
        self.dir.join(format!("{content_hash}-{}{ENTRY_SUFFIX}", engine_fingerprint(engine)))
    }

    /// The component in the entry at `path`, if there is a sound one; an
    /// unusable entry is removed (and the plugin compiled again). A hit counts
    /// as a use for the least-recently-used order. Blocking.
    pub fn load(&self, engine: &Engine, path: &Path) -> Option<Component> {
        match read_entry(engine, path) {
            Ok(Some(component)) => {
                touch(path);
                Some(component)
            }
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(entry = %path.display(), "cached compilation unusable, compiling again: {err:#}");
                let _ = fs::remove_file(path);
                None
            }
        }
    }

    /// Every entry and entry being written, with its size and last use.
    fn files(&self) -> Vec<CacheFile> {
        let Ok(dir) = fs::read_dir(&self.dir) else { return Vec::new() };
        dir.flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let (hash, written) = parse_name(&name)?;
                let meta = entry.metadata().ok().filter(|meta| meta.is_file())?;
                let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                Some(CacheFile { path: entry.path(), hash: hash.to_owned(), written, size: meta.len(), used })
            })
            .collect()
    }

    /// Keeps the directory within bounds: entries of plugins unwanted for
    /// longer than `grace` go, entries being written for as long are debris of
    /// a crash, and then the least recently used go, unwanted ones first, until
    /// the rest fits in `max_bytes`. `spare` (just written) stays regardless.
    pub fn tidy(&self, book: &mut CacheBook, max_bytes: u64, grace: Duration, spare: Option<&Path>) -> Tidied {
        let now_wall = SystemTime::now();
        let mut tidied = Tidied::default();
        let mut kept = Vec::new();
        for file in self.files() {
            let stale = match file.written {
                true => book.unwanted_for(&file.hash).is_some_and(|unwanted| unwanted > grace),
                false => now_wall.duration_since(file.used).unwrap_or(Duration::ZERO) > grace,
            };
            if stale && spare != Some(file.path.as_path()) {
                tidied.remove(&file);
            } else if file.written {
                kept.push(file);
            }
        }
        let mut total: u64 = kept.iter().map(|file| file.size).sum();
        // Unwanted before wanted, then oldest use first.
        kept.sort_by_key(|file| (book.unwanted_for(&file.hash).is_none(), file.used));
        for file in kept {
            if total <= max_bytes {
                break;
            }
            if spare != Some(file.path.as_path()) {
                total -= file.size;
                tidied.remove(&file);
            }
        }
        book.forget_missing(&self.files());
        tidied
    }

    /// Notes which entries' plugins are wanted now (`keep`): an entry starts
    /// its grace period the first time it is not.
    pub fn note_wanted(&self, book: &mut CacheBook, keep: impl Fn(&str) -> bool) {
        let now = Instant::now();
        for file in self.files().iter().filter(|file| file.written) {
            if keep(&file.hash) {
                book.unwanted_since.remove(&file.hash);
            } else {
                book.unwanted_since.entry(file.hash.clone()).or_insert(now);
            }
        }
    }
}

/// Since when each entry's plugin is no longer in use, as the daemon saw it.
#[derive(Debug, Default)]
pub struct CacheBook {
    unwanted_since: HashMap<String, Instant>,
}

impl CacheBook {
    /// A plugin with these bytes is being loaded: its entry is wanted.
    pub fn wanted(&mut self, content_hash: &str) {
        self.unwanted_since.remove(content_hash);
    }

    fn unwanted_for(&self, content_hash: &str) -> Option<Duration> {
        self.unwanted_since.get(content_hash).map(Instant::elapsed)
    }

    fn forget_missing(&mut self, files: &[CacheFile]) {
        let present: HashSet<&str> = files.iter().map(|file| file.hash.as_str()).collect();
        self.unwanted_since.retain(|hash, _| present.contains(hash.as_str()));
    }
}

/// What `tidy` removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tidied {
    pub entries: usize,
    pub bytes: u64,
}

impl Tidied {
    fn remove(&mut self, file: &CacheFile) {
        if fs::remove_file(&file.path).is_ok() && file.written {
            self.entries += 1;
            self.bytes += file.size;
        }
    }
}

struct CacheFile {
    path: PathBuf,
    hash: String,
    /// A whole entry, not one being written.
    written: bool,
    size: u64,
    used: SystemTime,
}

/// The content hash of an entry's or temporary file's name, and whether it is
/// a whole entry; `None` for anything else in the directory.
fn parse_name(name: &str) -> Option<(&str, bool)> {
    let (hash, rest) = name.split_once('-')?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if rest.ends_with(ENTRY_SUFFIX) {
        Some((hash, true))
    } else if rest.contains(TMP_MARK) {
        Some((hash, false))
    } else {
        None
    }
}

/// Marks an entry as used now. A failure only makes it look older.
fn touch(path: &Path) {
    if let Ok(file) = fs::File::options().write(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// `Ok(None)` when there is no entry; an error when there is one we must not use.
fn read_entry(engine: &Engine, path: &Path) -> Result<Option<Component>> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).context("reading the entry"),
    };
    verify(file).context("reading the entry")??;
    // SAFETY: the payload is exactly what `engine.precompile_component` made
    // for this engine's settings and our compile child wrote into this
    // daemon-owned 0700 directory (checked by trailer and checksum), and
    // wasmtime refuses it if its version or settings differ from `engine`'s.
    // The file is mapped: entries are never written in place (a new one is
    // renamed over it, an old one unlinked), so the mapping stays whole.
    let component = unsafe { Component::deserialize_file(engine, path) }
        .map_err(anyhow::Error::from)
        .context("wasmtime refused the entry")?;
    Ok(Some(component))
}

/// Where the process `pid` writes the entry `path` before renaming it into place.
pub fn tmp_path(path: &Path, pid: u32) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let stem = name.strip_suffix(ENTRY_SUFFIX).unwrap_or(&name);
    path.with_file_name(format!("{stem}{TMP_MARK}{pid}"))
}

/// Writes `payload` (compiled code) as the entry `path`: to a temporary file
/// renamed into place, so an entry is either absent or whole and a reader never
/// sees one being written.
pub fn write_entry(path: &Path, payload: &[u8]) -> Result<()> {
    let tmp = tmp_path(path, std::process::id());
    let written = (|| {
        let mut file = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(payload)?;
        file.write_all(MAGIC)?;
        file.write_all(&crc32fast::hash(payload).to_le_bytes())?;
        file.write_all(&(payload.len() as u64).to_le_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path).with_context(|| format!("renaming {} into place", tmp.display()))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Whether the entry in `file` is whole: its trailer, and its payload's
/// checksum (an I/O error is the outer one). The file is mapped, not read:
/// its pages go straight from the page cache to the checksum, and are the
/// ones wasmtime maps next.
fn verify(file: fs::File) -> std::io::Result<Result<()>> {
    let len = file.metadata()?.len();
    if len < TRAILER_LEN as u64 {
        return Ok(Err(anyhow::anyhow!("not a scope-wasm cache entry (no trailer)")));
    }
    // SAFETY: entries are never written in place (see `read_entry`), so the
    // mapped bytes do not change under the checksum.
    let mapped = unsafe { memmap2::Mmap::map(&file)? };
    let _ = mapped.advise(memmap2::Advice::Sequential);
    let (payload, trailer) = mapped.split_at(mapped.len() - TRAILER_LEN);
    let (magic, rest) = trailer.split_at(MAGIC.len());
    let (checksum, payload_len) = rest.split_at(4);
    let payload_len = u64::from_le_bytes(payload_len.try_into().expect("8 bytes"));
    if magic != MAGIC || payload_len != payload.len() as u64 {
        return Ok(Err(anyhow::anyhow!("not a scope-wasm cache entry (no trailer)")));
    }
    Ok(if crc32fast::hash(payload).to_le_bytes() == checksum { Ok(()) } else { Err(anyhow::anyhow!("checksum mismatch: the entry is corrupt")) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::default()
    }

    /// The smallest component, compiled (wasmtime's `wat` feature reads the text).
    fn compiled_empty(engine: &Engine) -> Vec<u8> {
        engine.precompile_component(b"(component)").unwrap()
    }

    fn hash(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    /// A fake entry of `size` bytes last used `age` ago (tidying reads no contents).
    fn fake_entry(dir: &Path, hash: &str, size: usize, age: Duration) -> PathBuf {
        let path = dir.join(format!("{hash}-0123456789abcdef{ENTRY_SUFFIX}"));
        fs::write(&path, vec![0u8; size]).unwrap();
        let file = fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
        path
    }

    #[test]
    fn a_written_entry_is_a_hit_and_corruption_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::open(&dir.path().join("cache")).unwrap();
        let engine = engine();
        let path = cache.entry_path(&content_hash(b"(component)"), &engine);
        assert!(cache.load(&engine, &path).is_none(), "no entry yet");
        write_entry(&path, &compiled_empty(&engine)).unwrap();
        let component = cache.load(&engine, &path).expect("a hit");
        assert_eq!(fs::read_dir(cache.dir()).unwrap().count(), 1, "no temporary file left");
        // Mapped from the file (its pages are the page cache's), not read into the heap.
        let maps = fs::read_to_string("/proc/self/maps").unwrap();
        assert!(maps.contains(&*path.to_string_lossy()), "{} is not mapped:\n{maps}", path.display());
        drop(component);

        // Flip one byte of the payload: detected by the checksum, and the entry removed.
        let mut data = fs::read(&path).unwrap();
        let middle = data.len() / 2;
        data[middle] ^= 0xff;
        fs::write(&path, &data).unwrap();
        assert!(cache.load(&engine, &path).is_none());
        assert!(!path.exists());
    }

    #[test]
    fn foreign_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.cwasm");
        fs::write(&garbage, "garbage").unwrap();
        assert!(format!("{:#}", read_entry(&engine(), &garbage).unwrap_err()).contains("no trailer"));
        // Our trailer and a valid checksum, but not wasmtime's format.
        let path = dir.path().join("entry.cwasm");
        write_entry(&path, b"not compiled code").unwrap();
        let err = read_entry(&engine(), &path).unwrap_err();
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

    #[test]
    fn the_least_recently_used_go_first_when_the_cache_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::open(dir.path()).unwrap();
        let minute = Duration::from_secs(60);
        let oldest = fake_entry(dir.path(), &hash(1), 1000, 3 * minute);
        let middle = fake_entry(dir.path(), &hash(2), 1000, 2 * minute);
        let newest = fake_entry(dir.path(), &hash(3), 1000, minute);
        let mut book = CacheBook::default();
        let grace = Duration::from_secs(600);

        assert_eq!(cache.tidy(&mut book, 3000, grace, None), Tidied::default(), "it fits");
        assert_eq!(cache.tidy(&mut book, 2500, grace, None), Tidied { entries: 1, bytes: 1000 });
        assert!(!oldest.exists() && middle.exists() && newest.exists());

        // A use moves an entry to the back; the one just written stays even
        // when it alone is over the limit.
        touch(&middle);
        assert_eq!(cache.tidy(&mut book, 1000, grace, Some(&middle)), Tidied { entries: 1, bytes: 1000 });
        assert!(middle.exists() && !newest.exists());
        assert_eq!(cache.tidy(&mut book, 0, grace, Some(&middle)), Tidied::default());
    }

    #[test]
    fn entries_no_plugin_wants_go_after_the_grace_period_and_first_when_full() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::open(dir.path()).unwrap();
        let minute = Duration::from_secs(60);
        let served = fake_entry(dir.path(), &hash(1), 1000, 2 * minute);
        let gone = fake_entry(dir.path(), &hash(2), 1000, minute);
        let mut book = CacheBook::default();
        cache.note_wanted(&mut book, |h| h == hash(1));

        // Within the grace period an unwanted entry stays, unless space is
        // short: then it goes before an older wanted one.
        assert_eq!(cache.tidy(&mut book, u64::MAX, minute, None), Tidied::default());
        assert_eq!(cache.tidy(&mut book, 1000, minute, None), Tidied { entries: 1, bytes: 1000 });
        assert!(served.exists() && !gone.exists());

        // Past the grace period it goes even with room to spare; wanted again
        // (a load) before that, it stays.
        let gone = fake_entry(dir.path(), &hash(2), 1000, minute);
        let back = fake_entry(dir.path(), &hash(3), 1000, minute);
        cache.note_wanted(&mut book, |h| h == hash(1));
        book.wanted(&hash(3));
        std::thread::sleep(Duration::from_millis(20));
        let tidied = cache.tidy(&mut book, u64::MAX, Duration::from_millis(10), None);
        assert_eq!(tidied, Tidied { entries: 1, bytes: 1000 });
        assert!(served.exists() && !gone.exists() && back.exists());
    }

    #[test]
    fn debris_of_interrupted_writes_goes_and_other_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::open(dir.path()).unwrap();
        let entry = fake_entry(dir.path(), &hash(1), 10, Duration::ZERO);
        let old_tmp = tmp_path(&entry, 4242);
        fs::write(&old_tmp, b"half").unwrap();
        fs::File::options().write(true).open(&old_tmp).unwrap().set_modified(SystemTime::now() - Duration::from_secs(3600)).unwrap();
        let fresh_tmp = tmp_path(&entry, 4343);
        fs::write(&fresh_tmp, b"being written").unwrap();
        let stranger = dir.path().join("README");
        fs::write(&stranger, b"not ours").unwrap();

        assert_eq!(cache.tidy(&mut CacheBook::default(), 0, Duration::from_secs(600), Some(&entry)), Tidied::default());
        assert!(!old_tmp.exists() && fresh_tmp.exists() && stranger.exists() && entry.exists());
    }
}
