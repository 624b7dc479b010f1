//! The socket directory and the plugin sockets in it.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tokio::net::UnixListener;

use crate::plugin_id::PluginId;

/// Owner and group only: the probe runs as root or in the socket's group.
const DIR_MODE: u32 = 0o750;
const SOCKET_MODE: u32 = 0o660;

/// Connections the kernel queues before `accept`; bursts beyond this would be
/// refused before the daemon sees them (the std default is 128).
const LISTEN_BACKLOG: u32 = 1024;

/// Creates the socket directory (and parents) if missing. An existing
/// directory keeps its permissions: the probe or the operator may have set them.
pub fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .with_context(|| format!("creating socket directory {}", dir.display()))
}

pub fn socket_path(dir: &Path, id: &PluginId) -> PathBuf {
    dir.join(format!("{id}.sock"))
}

/// Binds `<dir>/<id>.sock`. A socket file left by a crashed run is replaced;
/// one that another process still answers on is never touched.
pub async fn bind(path: &Path) -> Result<UnixListener> {
    if let Ok(meta) = fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!("{} exists and is not a socket; refusing to replace it", path.display());
        }
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            bail!("{} is in use by another live process", path.display());
        }
        fs::remove_file(path).with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let listener = tokio::net::UnixSocket::new_stream()
        .and_then(|socket| {
            socket.bind(path)?;
            socket.listen(LISTEN_BACKLOG)
        })
        .with_context(|| format!("binding {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(SOCKET_MODE))
        .with_context(|| format!("setting permissions on {}", path.display()))?;
    Ok(listener)
}
