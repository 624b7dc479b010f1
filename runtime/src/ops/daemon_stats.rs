//! Process-wide counters of the daemon itself (not of one plugin), read by the
//! admin endpoint's `/metrics`: compiles run, the time they took, compiled
//! plugins found in the disk cache instead, plugin files refused, and config
//! reloads applied and refused.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static COMPILES: AtomicU64 = AtomicU64::new(0);
static COMPILE_MICROS: AtomicU64 = AtomicU64::new(0);
static CACHE_HITS: AtomicU64 = AtomicU64::new(0);
static FILES_REFUSED: AtomicU64 = AtomicU64::new(0);
static CONFIG_RELOADS: AtomicU64 = AtomicU64::new(0);
static CONFIG_REFUSED: AtomicU64 = AtomicU64::new(0);

/// A compile child ran (whether or not it succeeded) for `took`.
pub fn compiled(took: Duration) {
    COMPILES.fetch_add(1, Ordering::Relaxed);
    COMPILE_MICROS.fetch_add(took.as_micros().min(u64::MAX as u128) as u64, Ordering::Relaxed);
}

/// A plugin's compiled code was found in the disk cache: no compile.
pub fn cache_hit() {
    CACHE_HITS.fetch_add(1, Ordering::Relaxed);
}

/// A plugin file was refused (bad name, ID taken), once per reason.
pub fn file_refused() {
    FILES_REFUSED.fetch_add(1, Ordering::Relaxed);
}

/// A changed config file was applied.
pub fn config_reloaded() {
    CONFIG_RELOADS.fetch_add(1, Ordering::Relaxed);
}

/// A changed config file was refused; the old configuration stays.
pub fn config_refused() {
    CONFIG_REFUSED.fetch_add(1, Ordering::Relaxed);
}

/// The counters as they are now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DaemonSnapshot {
    pub compiles: u64,
    pub compile_seconds: f64,
    pub cache_hits: u64,
    pub files_refused: u64,
    pub config_reloads: u64,
    pub config_reloads_refused: u64,
}

pub fn snapshot() -> DaemonSnapshot {
    DaemonSnapshot {
        compiles: COMPILES.load(Ordering::Relaxed),
        compile_seconds: COMPILE_MICROS.load(Ordering::Relaxed) as f64 / 1e6,
        cache_hits: CACHE_HITS.load(Ordering::Relaxed),
        files_refused: FILES_REFUSED.load(Ordering::Relaxed),
        config_reloads: CONFIG_RELOADS.load(Ordering::Relaxed),
        config_reloads_refused: CONFIG_REFUSED.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up() {
        let before = snapshot();
        compiled(Duration::from_millis(1500));
        cache_hit();
        file_refused();
        let after = snapshot();
        // Other tests in this process may count too: at least ours.
        assert!(after.compiles > before.compiles);
        assert!(after.compile_seconds >= before.compile_seconds + 1.5);
        assert!(after.cache_hits > before.cache_hits);
        assert!(after.files_refused > before.files_refused);
    }
}
