//! What is in the plugin directory: every `.wasm` file in it or its
//! sub-directories, with a stamp that tells when a file changed.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use walkdir::WalkDir;

/// How deep sub-directories are searched (one per tenant is the expected use).
const MAX_DEPTH: usize = 8;

/// Identity and version of a file's contents as the file system tells them:
/// any write changes the size or the mtime, and a rename over it the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub len: u64,
    pub mtime: SystemTime,
    pub dev: u64,
    pub ino: u64,
}

impl FileStamp {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            len: meta.len(),
            mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// How long ago the file was last written (zero if its mtime is in the future).
    pub fn quiet_for(&self) -> Duration {
        SystemTime::now().duration_since(self.mtime).unwrap_or(Duration::ZERO)
    }
}

#[derive(Debug, Clone)]
pub struct PluginFile {
    pub path: PathBuf,
    pub stamp: FileStamp,
}

/// Every `.wasm` file under `dir`, sorted by path. Symbolic links are followed
/// (Kubernetes mounts ConfigMaps as links into a hidden, atomically swapped
/// directory); hidden entries (`.name`) are skipped, so half-copied temporary
/// files and the ConfigMap's own `..data` directories never count twice.
pub fn scan(dir: &Path) -> Result<Vec<PluginFile>> {
    std::fs::metadata(dir).with_context(|| format!("reading plugin directory {}", dir.display()))?;
    let mut files = Vec::new();
    let walk = WalkDir::new(dir)
        .follow_links(true)
        .max_depth(MAX_DEPTH)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| entry.depth() == 0 || !entry.file_name().to_string_lossy().starts_with('.'));
    for entry in walk {
        let entry = match entry {
            Ok(entry) => entry,
            // A file deleted mid-scan, a link loop, a dangling link: skip it.
            Err(err) => {
                tracing::debug!(dir = %dir.display(), "skipped while scanning: {err}");
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        if entry.path().extension().is_none_or(|ext| ext != "wasm") {
            tracing::trace!(file = %entry.path().display(), "not a .wasm file; ignored");
            continue;
        }
        match entry.metadata() {
            Ok(meta) => files.push(PluginFile { path: entry.into_path(), stamp: FileStamp::of(&meta) }),
            Err(err) => tracing::debug!(file = %entry.path().display(), "skipped: {err}"),
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn finds_wasm_files_in_sub_directories_through_links_and_skips_hidden_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("team-a")).unwrap();
        fs::create_dir_all(root.join("..2026_11_25/inner")).unwrap();
        fs::write(root.join("top.wasm"), b"x").unwrap();
        fs::write(root.join("notes.txt"), b"x").unwrap();
        fs::write(root.join(".top.wasm.partial"), b"x").unwrap();
        fs::write(root.join(".hidden.wasm"), b"x").unwrap();
        fs::write(root.join("team-a/tenant.wasm"), b"x").unwrap();
        fs::write(root.join("..2026_11_25/cm.wasm"), b"x").unwrap();
        std::os::unix::fs::symlink("..2026_11_25", root.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/cm.wasm", root.join("cm.wasm")).unwrap();
        std::os::unix::fs::symlink("missing.wasm", root.join("dangling.wasm")).unwrap();

        let found: Vec<String> = scan(root)
            .unwrap()
            .into_iter()
            .map(|f| f.path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(found, ["cm.wasm", "team-a/tenant.wasm", "top.wasm"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let err = scan(Path::new("/nonexistent/plugins")).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/plugins"));
    }
}
