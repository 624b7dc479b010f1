//! `scope-wasm run`: serve every plugin in the plugin directory on its own
//! socket, following the directory as plugins are added, replaced and removed.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::RunConfig;
use crate::config::socket_access::SocketAccess;
use crate::host::HostServices;
use crate::load::compile_cache::CompileCache;
use crate::load::registry::SourceStore;
use crate::load::supervisor::Supervisor;
use crate::load::watcher;
use crate::ops::health::HealthBoard;
use crate::ops::{admin, self_plugin};
use crate::plugin_id::PluginId;
use crate::run::engine::Runtime;
use crate::serve::sockets;

pub fn system_hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Serves until `shutdown` completes, then removes the sockets it created.
pub async fn run(config: RunConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    raise_open_file_limit();
    crate::run::heap::start_trimmer();
    // Fail at once on a wrong path rather than wait for plugins that never come;
    // the supervisor's first scan reads what is in it.
    std::fs::metadata(&config.plugin_dir)
        .with_context(|| format!("reading plugin directory {}", config.plugin_dir.display()))?;
    sockets::prepare_dir(&config.socket_dir, &config.socket_access)?;
    let cache = config.cache_dir.as_deref().and_then(|dir| match CompileCache::open(dir) {
        Ok(cache) => Some(cache),
        Err(err) => {
            tracing::warn!("{err:#}; compiling every plugin without a cache");
            None
        }
    });
    let hostname: Arc<str> = config.hostname.clone().unwrap_or_else(system_hostname).into();
    // Tenant directories outside the plugin directory are watched too.
    let outside: Vec<PathBuf> =
        config.tenancy.tenants[1..].iter().map(|t| t.dir.clone()).filter(|dir| !dir.starts_with(&config.plugin_dir)).collect();
    // Pulled registry sources are kept in the cache, or in a directory of this run's.
    let private_sources = match &config.sources_dir {
        Some(_) => None,
        None => Some(tempfile::Builder::new().prefix("scope-wasm-sources-").tempdir().context("creating a directory for pulled plugins")?),
    };
    let store = SourceStore::new(config.sources_dir.clone().unwrap_or_else(|| private_sources.as_ref().expect("made above").path().to_owned()));
    // The puller tells the supervisor of what it places (`SourceStore::changed`): no watch needed.
    let hints = watcher::watch(&config.plugin_dir, &outside)
        .map_err(|err| tracing::warn!("{err:#}; relying on the periodic rescan alone"))
        .ok();
    tracing::info!(
        dir = %config.plugin_dir.display(),
        cache = %cache.as_ref().map_or("none".into(), |c| c.dir().display().to_string()),
        rescan_ms = config.rescan_interval.as_millis() as u64,
        "watching for plugins"
    );
    let (watcher, hints) = hints.unzip();
    let runtime = Arc::new(Runtime::new(cache));
    let services = Arc::new(HostServices::new(hostname.clone(), &config.docker_socket));
    let health = Arc::new(HealthBoard::default());
    let extras = start_extras(&config, hostname, &health).await?;
    let (tenancies, reloads) = tokio::sync::watch::channel(config.tenancy.clone());
    let puller = crate::load::sources::follow(store.clone(), reloads.clone(), health.clone())?;
    let follower = match &config.reload {
        Some(source) => Some(crate::config::reload::follow(source.clone(), &config, tenancies)?),
        None => None,
    };
    Supervisor::new(Arc::new(config), runtime, services, health).with_reloads(reloads).with_sources(store).run(hints, shutdown).await;
    drop(puller);
    drop(private_sources);
    if let Some((task, watcher)) = follower {
        task.abort();
        drop(watcher);
    }
    for (task, socket) in extras {
        task.abort();
        if let Some(socket) = socket {
            let _ = std::fs::remove_file(socket);
        }
    }
    drop(watcher);
    tracing::info!("shut down");
    Ok(())
}

type Extra = (tokio::task::JoinHandle<()>, Option<PathBuf>);

/// The admin endpoint and the daemon's own plugin: tasks, and the sockets to
/// remove at shutdown. Either failing is logged; the plugins are served anyway.
async fn start_extras(config: &RunConfig, hostname: Arc<str>, health: &Arc<HealthBoard>) -> Result<Vec<Extra>> {
    let mut extras = Vec::new();
    if let Some(path) = &config.admin_socket {
        match bind_admin(path, &config.socket_access).await {
            Ok(listener) => {
                tracing::info!("admin endpoint on {0}; try: curl --unix-socket {0} http://admin/metrics", path.display());
                extras.push((tokio::spawn(admin::serve_unix(listener, health.clone())), Some(path.clone())));
            }
            Err(err) => tracing::error!("admin endpoint not served: {err:#}"),
        }
    }
    if let Some(addr) = config.admin_tcp {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                tracing::info!("admin endpoint on http://{addr}/metrics");
                extras.push((tokio::spawn(admin::serve_tcp(listener, health.clone())), None));
            }
            Err(err) => tracing::error!("admin endpoint not served on {addr}: {err}"),
        }
    }
    if config.self_plugin {
        let id = PluginId::parse(self_plugin::SELF_ID).expect("a valid ID");
        let path = sockets::socket_path(&config.socket_dir, &id);
        match sockets::bind(&path, &config.socket_access).await {
            Ok(listener) => {
                tracing::info!(plugin = %id, "serving the daemon's own plugin on {}", path.display());
                extras.push((tokio::spawn(self_plugin::serve(listener, hostname, health.clone())), Some(path)));
            }
            Err(err) => tracing::error!(plugin = %id, "the daemon's own plugin is not served: {err:#}"),
        }
    }
    Ok(extras)
}

async fn bind_admin(path: &std::path::Path, access: &SocketAccess) -> Result<tokio::net::UnixListener> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    // Who may read the status is who may talk to the plugins: the same group.
    sockets::bind(path, &SocketAccess { mode: 0o660, group: access.group }).await
}

/// Every plugin holds a listening socket and its connections: with hundreds of
/// plugins the usual soft limit of 1024 open files is too low.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
