//! File-system events on the plugin directory, turned into hints for the
//! supervisor. Events only make things faster: the supervisor also rescans on a
//! timer, because events can be missed (bind mounts, overflowing queues, a
//! directory swapped by a symlink flip).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Hints queued beyond this are dropped; the next rescan sees the changes anyway.
const QUEUE: usize = 4096;

#[derive(Debug)]
pub enum Hint {
    /// A writer closed this file, or it was renamed into place: its contents
    /// are complete now, no need to wait for them to settle.
    Complete(PathBuf),
    /// Something changed somewhere under the directory.
    Changed,
}

/// Watches `dir` and its sub-directories until the returned watcher is dropped.
/// `extra`: more directories (tenants' outside `dir`); one that cannot be
/// watched is left to the periodic rescan.
pub fn watch(dir: &Path, extra: &[std::path::PathBuf]) -> Result<(RecommendedWatcher, mpsc::Receiver<Hint>)> {
    let (hints, receiver) = mpsc::channel(QUEUE);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let hint = match event {
            Ok(event) => to_hint(event),
            // E.g. the kernel's event queue overflowed: rescan.
            Err(_) => Some(Hint::Changed),
        };
        if let Some(hint) = hint {
            let _ = hints.try_send(hint);
        }
    })
    .context("starting the file watcher")?;
    watcher
        .watch(dir, RecursiveMode::Recursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    for dir in extra {
        if let Err(err) = watcher.watch(dir, RecursiveMode::Recursive) {
            tracing::warn!(dir = %dir.display(), "cannot watch: {err}; found by the periodic rescan instead");
        }
    }
    Ok((watcher, receiver))
}

fn to_hint(event: notify::Event) -> Option<Hint> {
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write))
        | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => {
            // For a rename with both ends, the destination comes last.
            event.paths.into_iter().next_back().map(Hint::Complete)
        }
        // Opening or reading a file changes nothing.
        EventKind::Access(_) => None,
        _ => Some(Hint::Changed),
    }
}
