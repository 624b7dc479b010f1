//! `scope-wasm run`: load every plugin in the plugin directory and serve each on
//! its own socket until shutdown.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::task::JoinSet;

use crate::engine::Runtime;
use crate::loader::CompiledPlugin;
use crate::plugin_id::PluginId;
use crate::policy::LimitPolicy;
use crate::worker::PluginHandle;
use crate::{server, sockets};

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub plugin_dir: PathBuf,
    pub socket_dir: PathBuf,
    /// The name used in host node IDs; the system's hostname when `None`.
    pub hostname: Option<String>,
    pub limits: LimitPolicy,
}

pub fn system_hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Serves until `shutdown` completes, then removes the sockets it created.
pub async fn run(config: RunConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    let runtime = Arc::new(Runtime::new());
    let hostname: Arc<str> = config.hostname.clone().unwrap_or_else(system_hostname).into();
    sockets::prepare_dir(&config.socket_dir)?;

    let files = plugin_files(&config.plugin_dir)?;
    let mut compiling = JoinSet::new();
    for path in files {
        match PluginId::from_wasm_path(&path) {
            Ok(id) => {
                let runtime = runtime.clone();
                let stack = config.limits.for_plugin(&id).max_wasm_stack;
                compiling.spawn(async move { runtime.compile(id, path, stack).await });
            }
            Err(err) => tracing::error!("{err:#}"),
        }
    }

    let mut servers = JoinSet::new();
    let mut socket_paths = Vec::new();
    while let Some(compiled) = compiling.join_next().await {
        let compiled = match compiled.context("compile task")? {
            Ok(compiled) => compiled,
            Err(err) => {
                tracing::error!("{err:#}");
                continue;
            }
        };
        match start_plugin(&compiled, &config, hostname.clone()).await {
            Ok((path, listener, handle)) => {
                tracing::info!(
                    plugin = %compiled.id,
                    label = %handle.info.label,
                    "serving on {0}; try: curl --unix-socket {0} http://plugin/report",
                    path.display()
                );
                servers.spawn(server::serve(listener, handle));
                socket_paths.push(path);
            }
            Err(err) => tracing::error!(plugin = %compiled.id, "{err:#}"),
        }
    }
    if socket_paths.is_empty() {
        tracing::warn!(dir = %config.plugin_dir.display(), "no plugin is being served");
    }

    shutdown.await;
    tracing::info!("shutting down");
    servers.shutdown().await;
    for path in socket_paths {
        if let Err(err) = std::fs::remove_file(&path) {
            tracing::warn!(socket = %path.display(), error = %err, "could not remove socket");
        }
    }
    Ok(())
}

async fn start_plugin(
    compiled: &CompiledPlugin,
    config: &RunConfig,
    hostname: Arc<str>,
) -> Result<(PathBuf, tokio::net::UnixListener, Arc<PluginHandle>)> {
    let limits = config.limits.for_plugin(&compiled.id);
    let handle = PluginHandle::start(compiled, hostname, limits).await?;
    let path = sockets::socket_path(&config.socket_dir, &compiled.id);
    let listener = sockets::bind(&path).await?;
    Ok((path, listener, handle))
}

/// The `.wasm` files directly in `dir`, sorted; anything else is skipped.
fn plugin_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading plugin directory {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.with_context(|| format!("reading plugin directory {}", dir.display()))?.path();
        if path.extension().is_some_and(|ext| ext == "wasm") && path.is_file() {
            files.push(path);
        } else {
            tracing::debug!(file = %path.display(), "not a .wasm file; ignored");
        }
    }
    files.sort();
    Ok(files)
}
