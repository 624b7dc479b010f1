//! Content hashes of plugin files, remembered by the file's identity, so a
//! daemon that restarts finds each big plugin's compile-cache entry without
//! reading and hashing its 10-20 MB again (a third of a warm Python load).
//!
//! The identity is what `git`'s index trusts: device, inode, size, and the
//! modification and change times to the nanosecond. No one but root can set a
//! file's change time, so a file rewritten since it was hashed has a new one.
//! A hash is remembered only if the file's change time was well before its
//! bytes were read, so a write in the same clock tick as the one hashed cannot
//! pass unseen ("racily clean" in git's words).
//!
//! The memo is kept in the compile cache's directory, which only this user can
//! write, in one line per file; it is rewritten whole (to a temporary file
//! renamed into place) when it learns something, and bounded in length.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Name of the memo in the cache directory.
const FILE_NAME: &str = "content-hashes";
/// Lines kept: far more plugin files than one host serves.
const MAX_ENTRIES: usize = 4096;
/// How much older than the read a file's change time must be to be trusted
/// (change times advance in clock ticks of a few milliseconds).
const SETTLED: Duration = Duration::from_secs(1);

/// A plugin file's identity: it changes whenever the file's bytes can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileIdentity {
    pub fn of(meta: &fs::Metadata) -> Self {
        let ns = |secs: i64, nsec: i64| secs as i128 * 1_000_000_000 + nsec as i128;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the file had not changed for a while when its bytes were read at `read_at`.
    fn settled_before(&self, read_at: SystemTime) -> bool {
        let read_ns = read_at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128);
        self.ctime_ns + (SETTLED.as_nanos() as i128) <= read_ns
    }

    fn line(&self, known: &KnownContent) -> String {
        let source = match &known.source {
            Some(source) => format!(" {} {} {}", source.code_hash, source.contents.start, source.contents.end),
            None => String::new(),
        };
        format!("{} {} {} {} {} {}{source}\n", self.dev, self.ino, self.len, self.mtime_ns, self.ctime_ns, known.hash)
    }

    fn parse(line: &str) -> Option<(Self, KnownContent)> {
        let mut fields = line.split(' ');
        let mut next = || fields.next();
        let identity = Self {
            dev: next()?.parse().ok()?,
            ino: next()?.parse().ok()?,
            len: next()?.parse().ok()?,
            mtime_ns: next()?.parse().ok()?,
            ctime_ns: next()?.parse().ok()?,
        };
        let sha256 = |hash: &str| (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hash.to_owned());
        let hash = sha256(next()?)?;
        let source = match next() {
            None => None,
            Some(code_hash) => {
                let code_hash = sha256(code_hash)?;
                let contents = next()?.parse().ok()?..next()?.parse().ok()?;
                Some(KnownSource { code_hash, contents })
            }
        };
        next().is_none().then_some((identity, KnownContent { hash, source }))
    }
}

/// What is known of a file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownContent {
    /// SHA-256 of the whole file.
    pub hash: String,
    /// For a file with a plugin source section: what finds its code and its section.
    pub source: Option<KnownSource>,
}

/// A plugin source section's place in its file, and the hash of the rest
/// (`loader::PluginSource::code_hash`): a restart reads the section alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownSource {
    pub code_hash: String,
    /// The section's contents, as byte offsets in the file.
    pub contents: std::ops::Range<u64>,
}

/// What the memo knows, and where it is kept (nowhere without a cache directory).
pub struct ContentHashes {
    path: Option<PathBuf>,
    known: Mutex<HashMap<FileIdentity, KnownContent>>,
}

impl ContentHashes {
    /// The memo kept in `cache_dir`; an unreadable or partly garbled memo
    /// keeps what it can read (a line it cannot is only a file hashed again).
    pub fn in_dir(cache_dir: &Path) -> Self {
        let path = cache_dir.join(FILE_NAME);
        let text = fs::read_to_string(&path).unwrap_or_default();
        let known = text.lines().filter_map(FileIdentity::parse).take(MAX_ENTRIES).collect();
        Self { path: Some(path), known: Mutex::new(known) }
    }

    /// A memo for this process alone.
    pub fn in_memory() -> Self {
        Self { path: None, known: Mutex::default() }
    }

    /// What is known of the file whose identity this is.
    pub fn get(&self, identity: &FileIdentity) -> Option<KnownContent> {
        self.known.lock().unwrap().get(identity).cloned()
    }

    /// Remembers `content` for bytes read at `read_at` from a file with this
    /// identity before and after the read; only a settled, unchanged file counts.
    pub fn remember(&self, before: &FileIdentity, after: &FileIdentity, read_at: SystemTime, content: &KnownContent) {
        if before != after || !before.settled_before(read_at) {
            return;
        }
        let text = {
            let mut known = self.known.lock().unwrap();
            if known.get(before) == Some(content) {
                return;
            }
            // The same file (device and inode) is known under one identity at most.
            known.retain(|identity, _| (identity.dev, identity.ino) != (before.dev, before.ino));
            if known.len() >= MAX_ENTRIES {
                known.clear();
            }
            known.insert(*before, content.clone());
            known.iter().map(|(identity, known)| identity.line(known)).collect::<String>()
        };
        if let Some(path) = &self.path
            && let Err(err) = write_whole(path, &text)
        {
            tracing::debug!(memo = %path.display(), "content hashes not saved (files are hashed again at the next start): {err}");
        }
    }
}

/// Writes `text` to a temporary file renamed over `path`: a reader sees the old memo or the new one.
fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let written = fs::File::create(&tmp).and_then(|mut file| file.write_all(text.as_bytes())).and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12";

    fn known(hash: &str) -> KnownContent {
        KnownContent { hash: hash.to_owned(), source: None }
    }

    fn identity_of(path: &Path) -> FileIdentity {
        FileIdentity::of(&fs::metadata(path).unwrap())
    }

    #[test]
    fn a_settled_file_is_remembered_across_restarts_and_forgotten_once_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("p.wasm");
        fs::write(&plugin, b"one").unwrap();
        let identity = identity_of(&plugin);
        let later = SystemTime::now() + SETTLED * 2;
        ContentHashes::in_dir(dir.path()).remember(&identity, &identity, later, &known(HASH));
        let memo = ContentHashes::in_dir(dir.path());
        assert_eq!(memo.get(&identity), Some(known(HASH)));

        // Same length, new bytes: the change time moves, so the identity differs.
        std::thread::sleep(Duration::from_millis(20));
        fs::write(&plugin, b"two").unwrap();
        assert_ne!(identity_of(&plugin), identity);
        assert_eq!(memo.get(&identity_of(&plugin)), None);
    }

    #[test]
    fn a_file_changed_just_before_or_during_the_read_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("p.wasm");
        fs::write(&plugin, b"one").unwrap();
        let identity = identity_of(&plugin);
        let memo = ContentHashes::in_dir(dir.path());
        memo.remember(&identity, &identity, SystemTime::now(), &known(HASH));
        assert_eq!(memo.get(&identity), None, "written within the last second");
        let mut after = identity;
        after.ctime_ns += 1;
        memo.remember(&identity, &after, SystemTime::now() + SETTLED * 2, &known(HASH));
        assert_eq!(memo.get(&identity), None, "changed while read");
    }

    #[test]
    fn garbled_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let good = FileIdentity { dev: 1, ino: 2, len: 3, mtime_ns: 4, ctime_ns: 5 };
        let sourced = FileIdentity { ino: 7, ..good };
        let with_source = KnownContent {
            hash: HASH.to_owned(),
            source: Some(KnownSource { code_hash: HASH.replace('a', "c"), contents: 100..250 }),
        };
        let text = format!(
            "garbage\n1 2 3 4 5 nothex\n{}1 2 3\n{}1 2 9 4 5 {HASH} {HASH} 100\n",
            good.line(&known(HASH)),
            sourced.line(&with_source)
        );
        fs::write(dir.path().join(FILE_NAME), text).unwrap();
        let memo = ContentHashes::in_dir(dir.path());
        assert_eq!(memo.get(&good), Some(known(HASH)));
        assert_eq!(memo.get(&sourced), Some(with_source), "a file with a source section, its place and code hash");
        assert_eq!(memo.known.lock().unwrap().len(), 2, "a line with half a source record is skipped");
    }
}
