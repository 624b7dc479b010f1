//! The `procfs` capability: read-only text files of the host's /proc.
//!
//! Granted by default, for a safe subset: host-wide files (`stat`, `meminfo`,
//! `loadavg`, `net/dev`, ...) and per-process text files (`<pid>/stat`,
//! `<pid>/status`, `<pid>/cmdline`, `<pid>/net/dev`, ...). Links, secrets and
//! kernel interfaces are refused with [`ProcfsError::Denied`].

use crate::bindings::scope::plugin::procfs as wit;

pub use crate::errors::ProcfsError;

/// Reads `/proc/<path>` (`"stat"`, `"1234/status"`; `"/proc/stat"` works too).
pub fn read(path: &str) -> Result<String, ProcfsError> {
    wit::read(path).map_err(Into::into)
}

/// PIDs of the processes this plugin may see, ascending.
pub fn pids() -> Result<Vec<u32>, ProcfsError> {
    wit::list_pids().map_err(Into::into)
}
