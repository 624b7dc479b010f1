//! The `scope-wasm` command: a thin CLI over the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use scope_wasm::sockets::SocketAccess;
use scope_wasm::{Overrides, Policy, RunConfig};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(version, about = "Runs Weave Scope probe plugins as sandboxed WebAssembly components")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every `<id>.wasm` in the plugin directory on `<socket-dir>/<id>.sock`.
    Run {
        /// Where the plugin files are; sub-directories are searched too, and
        /// files added, replaced or removed while the daemon runs take effect.
        #[arg(long, env = "SCOPE_WASM_PLUGIN_DIR", default_value = "/var/lib/scope-wasm/plugins")]
        plugin_dir: PathBuf,
        /// Where the sockets go; the Scope probe scans /var/run/scope/plugins.
        /// Default: that directory as root, ./scope-plugins otherwise.
        #[arg(long, env = "SCOPE_WASM_SOCKET_DIR")]
        socket_dir: Option<PathBuf>,
        /// Permission bits of the sockets, in octal.
        #[arg(long, default_value = "660")]
        socket_mode: String,
        /// Group of the sockets (a name or a GID), e.g. the group the probe runs in.
        #[arg(long)]
        socket_group: Option<String>,
        /// Where compiled plugins are kept across restarts.
        /// Default: /var/cache/scope-wasm as root, ~/.cache/scope-wasm otherwise.
        #[arg(long, env = "SCOPE_WASM_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
        /// Compile every plugin at every start; keep nothing on disk.
        #[arg(long, conflicts_with = "cache_dir")]
        no_cache: bool,
        /// How often the plugin directory is rescanned, besides file events.
        #[arg(long, default_value_t = 2000)]
        rescan_ms: u64,
        /// How long a file must go unwritten before it is loaded, unless its
        /// writer closed it or it was renamed into place.
        #[arg(long, default_value_t = 1000)]
        settle_ms: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Compile, instantiate and run one plugin file once; print its report.
    Check {
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
struct Common {
    /// Limits and capability grants per plugin: a TOML file with `[defaults]`
    /// and `[plugins.<id or glob>]` sections (see docs/operators.md).
    #[arg(long, alias = "limits", env = "SCOPE_WASM_CONFIG")]
    config: Option<PathBuf>,
    /// Wall-clock budget of one guest call, queueing included [default: 400, at most 450].
    #[arg(long)]
    call_timeout_ms: Option<u64>,
    /// Linear memory one plugin may use, all its memories together [default: 64].
    #[arg(long)]
    memory_mib: Option<usize>,
    /// Largest report sent to the probe [default: 8192].
    #[arg(long)]
    max_report_kib: Option<usize>,
    /// How often a polled plugin's report is refreshed in the background [default: 1000].
    #[arg(long)]
    refresh_ms: Option<u64>,
    /// The host name used in node IDs (default: the system's).
    #[arg(long)]
    hostname: Option<String>,
    /// The Docker Engine's socket, for plugins granted `docker`.
    #[arg(long, env = "SCOPE_WASM_DOCKER_SOCKET", default_value = scope_wasm::daemon::DEFAULT_DOCKER_SOCKET)]
    docker_socket: PathBuf,
}

impl Common {
    fn policy(&self) -> anyhow::Result<Policy> {
        let flags = Overrides {
            call_timeout_ms: self.call_timeout_ms,
            memory_mib: self.memory_mib,
            max_report_kib: self.max_report_kib,
            refresh_ms: self.refresh_ms,
            ..Overrides::default()
        };
        Policy::load(self.config.as_deref(), &flags)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let result = execute(Cli::parse().command).await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run {
            plugin_dir,
            socket_dir,
            socket_mode,
            socket_group,
            cache_dir,
            no_cache,
            rescan_ms,
            settle_ms,
            common,
        } => {
            anyhow::ensure!(rescan_ms >= 100, "--rescan-ms must be at least 100");
            let mut config = RunConfig::new(plugin_dir, socket_dir.unwrap_or_else(default_socket_dir));
            config.socket_access = SocketAccess::parse(&socket_mode, socket_group.as_deref())?;
            config.cache_dir = if no_cache { None } else { cache_dir.or_else(default_cache_dir) };
            config.policy = common.policy()?;
            config.hostname = common.hostname;
            config.docker_socket = common.docker_socket;
            config.rescan_interval = Duration::from_millis(rescan_ms);
            config.settle = Duration::from_millis(settle_ms);
            scope_wasm::run(config, shutdown_signal()?).await
        }
        Command::Check { file, common } => {
            let text = scope_wasm::check::check(&file, &common.policy()?, common.hostname.clone(), &common.docker_socket).await?;
            print!("{text}");
            Ok(())
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn default_socket_dir() -> PathBuf {
    if is_root() { "/var/run/scope/plugins".into() } else { "scope-plugins".into() }
}

fn default_cache_dir() -> Option<PathBuf> {
    if is_root() {
        return Some("/var/cache/scope-wasm".into());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("scope-wasm"))
}

/// Installs the SIGINT/SIGTERM handlers now, before any socket exists: a
/// signal that arrives while plugins start must still lead to a clean shutdown.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
    })
}
