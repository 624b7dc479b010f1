//! Reading the config file again while the daemon runs: on SIGHUP, and when
//! the file changes (an edit, or Kubernetes swapping a ConfigMap's `..data`
//! link). The new file is checked whole; only then do its tenants and policy
//! replace the old ones. A file that fails the check changes nothing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use crate::config::tenants::Tenancy;
use crate::config::{ReloadSource, RunConfig};

/// File events come in bursts (an editor writes, renames, changes modes):
/// read once they settle.
const SETTLE: Duration = Duration::from_millis(200);

/// Follows the config file, sending each new tenancy that passes its check.
/// Returns the task and the watcher (to drop at shutdown).
pub fn follow(
    source: ReloadSource,
    running: &RunConfig,
    tenancies: watch::Sender<Arc<Tenancy>>,
) -> Result<(tokio::task::JoinHandle<()>, Option<notify::RecommendedWatcher>)> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("listening for SIGHUP")?;
    let (changed, mut changes) = mpsc::channel(16);
    let watcher = watch_file(&source.file, changed)
        .map_err(|err| tracing::warn!("{err:#}; the config is read again on SIGHUP only"))
        .ok();
    // The text last read, applied or refused: file events that leave it as it was change nothing.
    let mut tried_text = std::fs::read_to_string(&source.file).ok();
    let mut running = running.clone();
    let task = tokio::spawn(async move {
        loop {
            let cause = tokio::select! {
                Some(()) = hangups.recv() => "SIGHUP",
                Some(()) = changes.recv() => {
                    tokio::time::sleep(SETTLE).await;
                    while changes.try_recv().is_ok() {}
                    let text = std::fs::read_to_string(&source.file).ok();
                    if text.is_none() || text == tried_text {
                        continue; // touched, or gone for a moment while swapped
                    }
                    "the file changed"
                }
                else => return,
            };
            // Read once: the text checked is the text remembered.
            tried_text = std::fs::read_to_string(&source.file).ok();
            let read = match tried_text.as_deref() {
                // Most likely a write under way; an empty config would unload every tenant.
                Some(text) if text.trim().is_empty() => Err(anyhow::anyhow!("{}: the file is empty", source.file.display())),
                Some(text) => source.parse(text),
                None => source.read(),
            };
            match read {
                Ok(new) => {
                    for key in restart_only_changes(&running, &new) {
                        tracing::warn!("config reload: {key} changed; that takes effect at the next restart");
                    }
                    let names: Vec<&str> = new.tenancy.tenants.iter().map(|t| t.name.as_str()).collect();
                    tracing::info!(file = %source.file.display(), "config reloaded ({cause}); tenants: {}", names.join(", "));
                    crate::ops::daemon_stats::config_reloaded();
                    tenancies.send_replace(new.tenancy.clone());
                    running = new;
                }
                Err(err) => {
                    crate::ops::daemon_stats::config_refused();
                    let err = one_line(&format!("{err:#}"));
                    tracing::error!(file = %source.file.display(), "config reload refused ({cause}): {err}; the old configuration stays in force");
                }
            }
        }
    });
    Ok((task, watcher))
}

/// Watches the file's directory: editors replace files, and a ConfigMap's
/// file is a link through `..data`, which Kubernetes swaps.
fn watch_file(file: &Path, changed: mpsc::Sender<()>) -> Result<notify::RecommendedWatcher> {
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned();
    let name = file.file_name().map(|n| n.to_owned());
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            Ok(event) => event.paths.iter().any(|path| {
                let file_name = path.file_name();
                file_name == name.as_deref() || file_name.is_some_and(|n| n.to_string_lossy().starts_with(".."))
            }),
            Err(_) => true,
        };
        if relevant {
            let _ = changed.try_send(());
        }
    })
    .context("starting the config file watcher")?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).with_context(|| format!("watching {}", dir.display()))?;
    Ok(watcher)
}

/// A TOML error as one log line: its message without the quoted source lines
/// (`23 | max_plugin = 3`, `   | ^^^`), which the message already places.
fn one_line(text: &str) -> String {
    let gutter = |line: &str| line.trim_start().trim_start_matches(|c: char| c.is_ascii_digit()).trim_start().starts_with('|');
    text.lines().map(str::trim).filter(|line| !line.is_empty() && !gutter(line)).collect::<Vec<_>>().join(": ")
}

/// Settings the running daemon cannot change in place.
fn restart_only_changes(old: &RunConfig, new: &RunConfig) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |key, differs: bool| {
        if differs {
            changed.push(key);
        }
    };
    check("plugin_dir", old.plugin_dir != new.plugin_dir);
    check("socket_dir", old.socket_dir != new.socket_dir);
    check("socket_mode / socket_group", old.socket_access != new.socket_access);
    check("cache_dir", old.cache_dir != new.cache_dir);
    check("sources_dir", old.sources_dir != new.sources_dir);
    check("hostname", old.hostname != new.hostname);
    check("docker_socket", old.docker_socket != new.docker_socket);
    check("rescan_ms", old.rescan_interval != new.rescan_interval);
    check("settle_ms", old.settle != new.settle);
    check("admin_socket", old.admin_socket != new.admin_socket);
    check("admin_tcp", old.admin_tcp != new.admin_tcp);
    check("self_plugin", old.self_plugin != new.self_plugin);
    changed
}

#[cfg(test)]
mod tests {
    #[test]
    fn toml_errors_become_one_line() {
        let err = toml::from_str::<crate::config::ConfigFile>("rescan_ms = 200
max_plugin = 3
").unwrap_err();
        let line = super::one_line(&format!("x.toml: {err}"));
        assert!(!line.contains('\n') && !line.contains('|'), "{line}");
        assert!(line.starts_with("x.toml: TOML parse error at line 2, column 1: unknown field `max_plugin`"), "{line}");
    }
}
