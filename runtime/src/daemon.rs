//! `scope-wasm run`: serve every plugin in the plugin directory on its own
//! socket, following the directory as plugins are added, replaced and removed.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::compile_cache::CompileCache;
use crate::engine::Runtime;
use crate::host::HostServices;
use crate::policy::Policy;
use crate::sockets::{self, SocketAccess};
use crate::supervisor::Supervisor;
use crate::{plugin_dir, watcher};

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub plugin_dir: PathBuf,
    pub socket_dir: PathBuf,
    pub socket_access: SocketAccess,
    /// Where compiled plugins are kept across restarts; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// The name used in host node IDs; the system's hostname when `None`.
    pub hostname: Option<String>,
    /// The Docker Engine's socket, for plugins granted `docker`.
    pub docker_socket: PathBuf,
    /// Limits and capability grants per plugin.
    pub policy: Policy,
    /// How often the plugin directory is scanned even without file events.
    pub rescan_interval: Duration,
    /// How long a file must go unwritten before it is loaded, unless its writer
    /// closed it or it was renamed into place.
    pub settle: Duration,
}

impl RunConfig {
    pub fn new(plugin_dir: PathBuf, socket_dir: PathBuf) -> Self {
        Self {
            plugin_dir,
            socket_dir,
            socket_access: SocketAccess::default(),
            cache_dir: None,
            hostname: None,
            docker_socket: DEFAULT_DOCKER_SOCKET.into(),
            policy: Policy::default(),
            rescan_interval: Duration::from_secs(2),
            settle: Duration::from_secs(1),
        }
    }
}

pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

pub fn system_hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Serves until `shutdown` completes, then removes the sockets it created.
pub async fn run(config: RunConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    raise_open_file_limit();
    // Fail at once on a wrong path rather than wait for plugins that never come.
    plugin_dir::scan(&config.plugin_dir)?;
    sockets::prepare_dir(&config.socket_dir, &config.socket_access)?;
    let cache = config.cache_dir.as_deref().and_then(|dir| match CompileCache::open(dir) {
        Ok(cache) => Some(cache),
        Err(err) => {
            tracing::warn!("{err:#}; compiling every plugin without a cache");
            None
        }
    });
    let hostname: Arc<str> = config.hostname.clone().unwrap_or_else(system_hostname).into();
    let hints = match watcher::watch(&config.plugin_dir) {
        Ok((watcher, hints)) => Some((watcher, hints)),
        Err(err) => {
            tracing::warn!("{err:#}; relying on the periodic rescan alone");
            None
        }
    };
    tracing::info!(
        dir = %config.plugin_dir.display(),
        cache = %cache.as_ref().map_or("none".into(), |c| c.dir().display().to_string()),
        rescan_ms = config.rescan_interval.as_millis() as u64,
        "watching for plugins"
    );
    let (watcher, hints) = hints.unzip();
    let runtime = Arc::new(Runtime::new(cache));
    let services = Arc::new(HostServices::new(hostname, &config.docker_socket));
    Supervisor::new(Arc::new(config), runtime, services).run(hints, shutdown).await;
    drop(watcher);
    tracing::info!("shut down");
    Ok(())
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
