//! The socket directory and the plugin sockets in it.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tokio::net::UnixListener;

use crate::config::socket_access::SocketAccess;
use crate::plugin_id::PluginId;

/// Owner and group only: the probe runs as root or in the socket's group.
const DIR_MODE: u32 = 0o750;
/// Connections the kernel queues before `accept`; bursts beyond this would be
/// refused before the daemon sees them (the std default is 128).
const LISTEN_BACKLOG: u32 = 1024;

/// Creates the socket directory (and parents) if missing. An existing
/// directory keeps its permissions: the probe or the operator may have set them.
pub fn prepare_dir(dir: &Path, access: &SocketAccess) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .with_context(|| format!("creating socket directory {}", dir.display()))?;
    if let Some(gid) = access.group {
        std::os::unix::fs::chown(dir, None, Some(gid))
            .with_context(|| format!("giving socket directory {} to group {gid}", dir.display()))?;
    }
    Ok(())
}

pub fn socket_path(dir: &Path, id: &PluginId) -> PathBuf {
    dir.join(format!("{id}.sock"))
}

/// Binds `<dir>/<id>.sock`. A socket file left by a crashed run is replaced;
/// one that another process still answers on is never touched.
pub async fn bind(path: &Path, access: &SocketAccess) -> Result<UnixListener> {
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
    if let Some(gid) = access.group {
        std::os::unix::fs::chown(path, None, Some(gid))
            .with_context(|| format!("giving {} to group {gid}", path.display()))?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(access.mode))
        .with_context(|| format!("setting permissions on {}", path.display()))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_groups_parse_or_say_why_not() {
        assert_eq!(SocketAccess::parse("660", None).unwrap(), SocketAccess::default());
        assert_eq!(SocketAccess::parse("0o600", Some("0")).unwrap(), SocketAccess { mode: 0o600, group: Some(0) });
        assert_eq!(SocketAccess::parse("640", Some("root")).unwrap().group, Some(0));
        assert!(format!("{:#}", SocketAccess::parse("rw-", None).unwrap_err()).contains("octal"));
        assert!(format!("{:#}", SocketAccess::parse("1777", None).unwrap_err()).contains("octal"));
        assert!(format!("{:#}", SocketAccess::parse("660", Some("no-such-group-xyz")).unwrap_err()).contains("does not exist"));
    }

    #[tokio::test]
    async fn a_live_socket_is_never_replaced_and_a_stale_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.sock");
        let access = SocketAccess { mode: 0o600, group: None };
        let live = bind(&path, &access).await.unwrap();
        let err = bind(&path, &access).await.unwrap_err();
        assert!(err.to_string().contains("in use by another live process"), "{err:#}");
        drop(live); // the file stays, nothing listens: stale
        let _again = bind(&path, &access).await.unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        fs::write(dir.path().join("f.sock"), b"not a socket").unwrap();
        let err = bind(&dir.path().join("f.sock"), &access).await.unwrap_err();
        assert!(err.to_string().contains("not a socket"), "{err:#}");
    }
}
