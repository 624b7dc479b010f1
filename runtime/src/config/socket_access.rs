//! Who may connect to the plugin sockets: their mode and group, as the
//! operator sets them.

use anyhow::{Context, Result, bail};

pub const DEFAULT_SOCKET_MODE: u32 = 0o660;

/// Who may connect to the sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketAccess {
    /// Permission bits of every socket file (and so who may connect).
    pub mode: u32,
    /// Group given to the sockets (and to a socket directory the daemon creates),
    /// e.g. the group a non-root probe runs in. `None` keeps the daemon's own.
    pub group: Option<u32>,
}

impl Default for SocketAccess {
    fn default() -> Self {
        Self { mode: DEFAULT_SOCKET_MODE, group: None }
    }
}

impl SocketAccess {
    /// Parses `--socket-mode` (octal, e.g. `660`) and `--socket-group` (a name or a GID).
    pub fn parse(mode: &str, group: Option<&str>) -> Result<Self> {
        let mode = u32::from_str_radix(mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|mode| *mode <= 0o777)
            .with_context(|| format!("socket mode {mode:?} is not an octal permission like 660"))?;
        let group = group.map(resolve_group).transpose()?;
        Ok(Self { mode, group })
    }
}

fn resolve_group(group: &str) -> Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(found)) => Ok(found.gid.as_raw()),
        Ok(None) => bail!("socket group {group:?} does not exist"),
        Err(err) => Err(err).with_context(|| format!("looking up socket group {group:?}")),
    }
}
