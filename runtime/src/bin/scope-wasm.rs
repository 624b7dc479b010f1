//! The `scope-wasm` command: a thin CLI over the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use scope_wasm::{Limits, RunConfig};
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
        /// Where the plugin files are.
        #[arg(long, env = "SCOPE_WASM_PLUGIN_DIR", default_value = "/var/lib/scope-wasm/plugins")]
        plugin_dir: PathBuf,
        /// Where the sockets go; the Scope probe scans /var/run/scope/plugins.
        /// Default: that directory as root, ./scope-plugins otherwise.
        #[arg(long, env = "SCOPE_WASM_SOCKET_DIR")]
        socket_dir: Option<PathBuf>,
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
    /// Wall-clock budget of one guest call, queueing included (at most 450).
    #[arg(long, default_value_t = 400)]
    call_timeout_ms: u64,
    /// Linear memory a plugin may use.
    #[arg(long, default_value_t = 64)]
    memory_mib: usize,
    /// The host name used in node IDs (default: the system's).
    #[arg(long)]
    hostname: Option<String>,
}

impl Common {
    fn limits(&self) -> Limits {
        Limits {
            call_budget: Duration::from_millis(self.call_timeout_ms),
            max_memory_bytes: self.memory_mib << 20,
            ..Limits::default()
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Run { plugin_dir, socket_dir, common } => {
            let config = RunConfig {
                plugin_dir,
                socket_dir: socket_dir.unwrap_or_else(default_socket_dir),
                hostname: common.hostname.clone(),
                limits: common.limits(),
            };
            scope_wasm::run(config, shutdown_signal()).await
        }
        Command::Check { file, common } => scope_wasm::check::check(&file, common.limits(), common.hostname)
            .await
            .map(|text| print!("{text}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn default_socket_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 { "/var/run/scope/plugins".into() } else { "scope-plugins".into() }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
