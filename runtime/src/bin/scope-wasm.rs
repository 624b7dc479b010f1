//! The `scope-wasm` command: a thin CLI over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use scope_wasm::Overrides;
use scope_wasm::cli::scaffold;
use scope_wasm::config::{ConfigFile, LogFormat};
use scope_wasm::ops::admin;
use scope_wasm::run::engine::{self, CompileSettings};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(version, about = "Runs Weave Scope probe plugins as sandboxed WebAssembly components")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every `<id>.wasm` in the plugin directory on `<socket-dir>/<id>.sock`,
    /// following the directory as files are added, replaced and removed.
    Run {
        #[command(flatten)]
        daemon: DaemonFlags,
        #[command(flatten)]
        common: Common,
    },
    /// Compile, instantiate and run one plugin file once; print its report.
    Check {
        file: PathBuf,
        /// The plugin ID to check it as (its grants and limits in --config);
        /// the file name's stem by default, as the daemon takes it.
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Compile plugin files into a compile cache, so a daemon using that cache
    /// (e.g. in a container image built with it) loads them without compiling.
    Compile {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The cache to fill; the daemon's own by default (`cache_dir` of
        /// --config, else /var/cache/scope-wasm as root, ~/.cache/scope-wasm otherwise).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Run a plugin offline against a fixture and a script of steps, checking
    /// what the probe would get at each; exits non-zero if a step fails.
    Test {
        /// Test scripts (TOML or JSON), and the plugin file (`.wasm`) if the
        /// scripts do not name it.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Rewrite each step's expectation file with what it got.
        #[arg(long)]
        update: bool,
        /// Run against this host instead, and write every answer the plugin
        /// got from it to this fixture file (TOML, or JSON by its name).
        #[arg(long, value_name = "FIXTURE")]
        record: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Watch a plugin project, rebuild and reload it on every change, and
    /// preview its report in a browser, drawn as Scope's node details.
    Dev {
        /// The project (made by `scope-wasm new`) [default: .].
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// How to build it, run in DIR.
        #[arg(long, default_value = "make build")]
        build: String,
        /// The file the build leaves, relative to DIR.
        #[arg(long, default_value = "target/plugin.wasm")]
        plugin: PathBuf,
        /// The plugin ID [default: DIR's name].
        #[arg(long)]
        id: Option<String>,
        /// What the capabilities answer, relative to DIR.
        #[arg(long, default_value = "test/fixture.toml", conflicts_with = "host")]
        fixture: PathBuf,
        /// Run against this host's /proc, Docker and traffic instead of the fixture.
        #[arg(long)]
        host: bool,
        /// Where the preview page is served.
        #[arg(long, default_value = "127.0.0.1:7070")]
        listen: String,
        /// How often the plugin reports, as a probe polls.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Every plugin's state, health and counters, from a running daemon.
    Status {
        /// The daemon's admin socket [default: /var/run/scope-wasm/admin.sock as
        /// root, ./scope-wasm-admin.sock otherwise].
        #[arg(long, env = "SCOPE_WASM_ADMIN_SOCKET")]
        admin_socket: Option<PathBuf>,
        /// Print the JSON the admin endpoint answers.
        #[arg(long)]
        json: bool,
    },
    /// Check a config file, or print the default one.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create a plugin project that builds as is.
    New {
        /// The plugin's ID (letters and digits, single dashes), also the directory name.
        name: String,
        #[arg(long, value_enum, default_value = "rust")]
        lang: scaffold::Lang,
        /// Where to create it [default: ./<name>].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The Rust guest SDK the project depends on [default: this build's guest-sdk].
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Publish a plugin file to an OCI registry (the wasm artifact layout wkg
    /// and wasmCloud use); prints the manifest digest to pin.
    Push {
        file: PathBuf,
        /// Where to, e.g. registry.example/team/iowait:1.2.
        reference: String,
        /// Also sign it with this cosign private key (PEM; an encrypted one
        /// takes its password from COSIGN_PASSWORD).
        #[arg(long)]
        sign: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryFlags,
    },
    /// Fetch a plugin from an OCI registry into a file, checked as the daemon checks it.
    Pull {
        reference: String,
        /// Where to write it [default: ./<last path part>.wasm].
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Refuse it unless it carries a cosign signature by this public key.
        #[arg(long)]
        key: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryFlags,
    },
    /// Make a signing key pair: NAME.key (private, PEM) and NAME.pub (for the config).
    Keygen {
        name: PathBuf,
    },
    /// Compile one plugin into a cache entry under rlimits: the daemon's compile
    /// child, not for people.
    #[command(name = engine::COMPILE_WORKER, hide = true)]
    CompileWorker {
        #[arg(long)]
        stack: usize,
        #[arg(long)]
        memory_mib: u64,
        #[arg(long)]
        cpu_seconds: u64,
        #[arg(long, default_value_t = 10)]
        nice: i32,
        /// The plugin file, `-` for standard input.
        input: PathBuf,
        output: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config file: every key, value and section.
    Check { file: PathBuf },
    /// Print a config file with every setting at its default, commented.
    Default,
}

/// The daemon's settings; each overrides the same key of the config file.
#[derive(Args)]
struct DaemonFlags {
    /// Where the plugin files are [default: /var/lib/scope-wasm/plugins].
    #[arg(long, env = "SCOPE_WASM_PLUGIN_DIR")]
    plugin_dir: Option<PathBuf>,
    /// Where the sockets go [default: /var/run/scope/plugins as root, ./scope-plugins otherwise].
    #[arg(long, env = "SCOPE_WASM_SOCKET_DIR")]
    socket_dir: Option<PathBuf>,
    /// Permission bits of the sockets, in octal [default: 660].
    #[arg(long)]
    socket_mode: Option<String>,
    /// Group of the sockets (a name or a GID), e.g. the group the probe runs in.
    #[arg(long)]
    socket_group: Option<String>,
    /// Where compiled plugins are kept across restarts
    /// [default: /var/cache/scope-wasm as root, ~/.cache/scope-wasm otherwise].
    #[arg(long, env = "SCOPE_WASM_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every plugin at every start; keep nothing on disk.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
    /// Size limit of the compile cache; the least recently used entries go first [default: 1024].
    #[arg(long)]
    cache_max_mib: Option<u64>,
    /// How often the plugin directory is rescanned, besides file events [default: 2000].
    #[arg(long)]
    rescan_ms: Option<u64>,
    /// How long a file must go unwritten before it is loaded, unless its
    /// writer closed it or it was renamed into place [default: 1000].
    #[arg(long)]
    settle_ms: Option<u64>,
    /// The admin endpoint's UNIX socket ("" for none)
    /// [default: /var/run/scope-wasm/admin.sock as root, ./scope-wasm-admin.sock otherwise].
    #[arg(long, env = "SCOPE_WASM_ADMIN_SOCKET")]
    admin_socket: Option<PathBuf>,
    /// Also serve the admin endpoint on this TCP address, e.g. 127.0.0.1:9464.
    #[arg(long)]
    admin_tcp: Option<String>,
    /// Do not serve the daemon's own Scope plugin (scope-wasm.sock).
    #[arg(long)]
    no_self_plugin: bool,
    /// Log format [default: human].
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

/// How to reach a registry from the command line.
#[derive(Args)]
struct RegistryFlags {
    /// Speak plain HTTP to the registry (a local one, for tests).
    #[arg(long)]
    insecure: bool,
    /// Docker-style config file with registry logins [default: $DOCKER_CONFIG/config.json, ~/.docker/config.json].
    #[arg(long)]
    auth_file: Option<PathBuf>,
}

impl RegistryFlags {
    fn registry(&self, reference: &oci_client::Reference) -> scope_wasm::load::registry::Registry {
        let mut settings = scope_wasm::config::sources::RegistrySettings { auth_file: self.auth_file.clone(), ..Default::default() };
        if self.insecure {
            settings.insecure.push(reference.registry().to_owned());
        }
        scope_wasm::load::registry::Registry::new(settings)
    }
}

fn parse_reference(reference: &str) -> anyhow::Result<oci_client::Reference> {
    reference.parse().with_context(|| format!("{reference:?} is not an image reference like registry.example/team/plugin:1.0"))
}

#[derive(Args)]
struct Common {
    /// The config file: daemon settings, and limits and grants per plugin
    /// (`scope-wasm config default` prints one).
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
    /// The shortest time between background refreshes of a polled plugin's report; a probe polling less often sets the cadence [default: 1000].
    #[arg(long)]
    refresh_ms: Option<u64>,
    /// The host name used in node IDs (default: the system's); it must match the probe's.
    #[arg(long, env = "SCOPE_WASM_HOSTNAME")]
    hostname: Option<String>,
    /// The Docker Engine's socket, for plugins granted `docker` [default: /var/run/docker.sock].
    #[arg(long, env = "SCOPE_WASM_DOCKER_SOCKET")]
    docker_socket: Option<PathBuf>,
    /// Memory one plugin compile may use at most, in its own process; small
    /// files get less (48 MiB plus 40 per MiB of file) [default: 448].
    #[arg(long)]
    compile_memory_mib: Option<u64>,
    /// What the memory limits of all compiles running at once may add up to [default: 512].
    #[arg(long)]
    compile_memory_budget_mib: Option<u64>,
    /// CPU time one plugin compile may use, plus --compile-cpu-secs-per-mib per MiB of file [default: 30].
    #[arg(long)]
    compile_cpu_secs: Option<u64>,
    /// [default: 20]
    #[arg(long)]
    compile_cpu_secs_per_mib: Option<u64>,
}

impl Common {
    fn limit_flags(&self) -> Overrides {
        Overrides {
            call_timeout_ms: self.call_timeout_ms,
            memory_mib: self.memory_mib,
            max_report_kib: self.max_report_kib,
            refresh_ms: self.refresh_ms,
            ..Overrides::default()
        }
    }

    /// The compile limits these flags set, over the defaults.
    fn compile_settings(&self) -> CompileSettings {
        let mut settings = CompileSettings::default();
        if let Some(mib) = self.compile_memory_mib {
            settings.memory_max_mib = mib;
        }
        if let Some(mib) = self.compile_memory_budget_mib {
            settings.memory_budget_mib = mib;
        }
        if let Some(secs) = self.compile_cpu_secs {
            settings.cpu_base = std::time::Duration::from_secs(secs);
        }
        if let Some(secs) = self.compile_cpu_secs_per_mib {
            settings.cpu_per_mib = std::time::Duration::from_secs(secs);
        }
        settings
    }

    fn file(&self) -> anyhow::Result<(ConfigFile, String)> {
        match &self.config {
            Some(path) => Ok((ConfigFile::read(path)?, path.display().to_string())),
            None => Ok((ConfigFile::default(), "flags".into())),
        }
    }
}

impl DaemonFlags {
    fn as_file(&self, common: &Common) -> ConfigFile {
        ConfigFile {
            plugin_dir: self.plugin_dir.clone(),
            socket_dir: self.socket_dir.clone(),
            socket_mode: self.socket_mode.clone(),
            socket_group: self.socket_group.clone(),
            cache_dir: self.cache_dir.clone(),
            // Either flag beats the file's `no_cache`.
            no_cache: if self.no_cache { Some(true) } else { self.cache_dir.as_ref().map(|_| false) },
            docker_socket: common.docker_socket.clone(),
            hostname: common.hostname.clone(),
            rescan_ms: self.rescan_ms,
            settle_ms: self.settle_ms,
            admin_socket: self.admin_socket.clone(),
            admin_tcp: self.admin_tcp.clone(),
            self_plugin: self.no_self_plugin.then_some(false),
            log_format: self.log_format,
            ..ConfigFile::default()
        }
    }
}

fn init_logging(format: LogFormat, filter: Option<&str>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter.unwrap_or("info")));
    // Colours only on a terminal: never escape codes in a file or a pipe.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    log_panics();
}

/// A panic (caught around a guest call, or not) becomes one log line in the
/// chosen format instead of free text on stderr. A backtrace is added only
/// where `RUST_BACKTRACE` asks for one: resolving it keeps the binary's debug
/// information in memory for the rest of the process's life.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        let location = info.location().map_or_else(String::new, |l| format!("{}:{}", l.file(), l.line()));
        let thread = std::thread::current().name().unwrap_or("unnamed").to_string();
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            tracing::error!(%thread, %location, %backtrace, "panicked: {message}");
        } else {
            tracing::error!(%thread, %location, "panicked: {message}");
        }
    }));
}

/// How `test` and `dev` run a plugin: the config's grants and limits if one
/// is given, this host's name and Docker socket for recording.
fn test_options(common: &Common, plugin: Option<PathBuf>, update: bool, record: Option<PathBuf>) -> anyhow::Result<scope_wasm::testing::Options> {
    let flags = ConfigFile { docker_socket: common.docker_socket.clone(), hostname: common.hostname.clone(), ..Default::default() };
    let (config_file, origin) = common.file()?;
    let config = config_file.overridden_by(flags).run_config(&origin, &common.limit_flags())?;
    Ok(scope_wasm::testing::Options {
        plugin,
        update,
        record,
        hostname: config.hostname.clone(),
        docker_socket: config.docker_socket.clone(),
        policy: common.config.is_some().then(|| config.operator_policy().clone()),
        cache_dir: config.cache_dir.clone(),
    })
}

/// `scope-wasm test`: every script in turn; fails if any step did.
async fn test(files: Vec<PathBuf>, update: bool, record: Option<PathBuf>, common: Common) -> anyhow::Result<()> {
    common.compile_settings().set_for_process();
    init_logging(LogFormat::Human, Some("warn"));
    let (plugins, scripts): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|f| f.extension().is_some_and(|e| e == "wasm"));
    if plugins.len() > 1 {
        anyhow::bail!("name one plugin file, not {}", plugins.len());
    }
    let options = test_options(&common, plugins.into_iter().next(), update, record)?;
    let mut failed = 0;
    let runs: Vec<Option<&std::path::Path>> =
        if scripts.is_empty() { vec![None] } else { scripts.iter().map(|s| Some(s.as_path())).collect() };
    for script in runs {
        let outcome = scope_wasm::testing::run(script, &options).await?;
        print!("{}", outcome.text);
        failed += outcome.failed;
    }
    if failed > 0 {
        anyhow::bail!("{failed} step(s) failed");
    }
    Ok(())
}

/// `scope-wasm compile`: each file compiled (or found compiled) into the cache,
/// for the stack limit its ID gets under the config, as the daemon would.
async fn compile(files: Vec<PathBuf>, cache_dir: Option<PathBuf>, common: Common) -> anyhow::Result<()> {
    common.compile_settings().set_for_process();
    init_logging(LogFormat::Human, Some("warn"));
    let (config_file, origin) = common.file()?;
    let config = config_file.run_config(&origin, &common.limit_flags())?;
    let dir = cache_dir
        .or(config.cache_dir.clone())
        .context("no cache directory: pass --cache-dir (no_cache is set, or there is no default for this user)")?;
    let cache = scope_wasm::load::compile_cache::CompileCache::open(&dir)?;
    let runtime = scope_wasm::run::engine::Runtime::new(Some(cache));
    let policy = config.operator_policy();
    for file in files {
        let id = scope_wasm::plugin_id::PluginId::from_wasm_path(&file)?;
        let source = scope_wasm::load::loader::PluginSource::read(id.clone(), &file)?;
        let started = std::time::Instant::now();
        let (_, how) = runtime.compile(&source, policy.for_plugin(&id).limits.max_wasm_stack).await?;
        let what = match how {
            scope_wasm::load::compile_cache::Origin::Compiled => "compiled",
            _ => "already compiled",
        };
        println!("{id}: {what} into {} in {} ms ({})", dir.display(), started.elapsed().as_millis(), file.display());
    }
    Ok(())
}

/// Allocations from this size up are mapped on their own and given back when
/// freed. glibc's default threshold rises to the largest block freed so far:
/// after one plugin file's 20 MB buffer it served the next from a heap that
/// kept its freed top resident, 4-20 MB more RSS per Python plugin loaded.
const MMAP_THRESHOLD_BYTES: libc::c_int = 1 << 20;

fn main() -> ExitCode {
    // SAFETY: mallopt only changes malloc's parameters; no allocation is in flight.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) };
    let command = Cli::parse().command;
    if let Command::CompileWorker { stack, memory_mib, cpu_seconds, nice, input, output } = command {
        // Before any runtime starts: the compile child runs only what it needs.
        let args = engine::WorkerArgs { max_wasm_stack: stack, memory_mib, cpu_seconds, nice, input, output };
        return match engine::run_worker(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("{err:#}");
                ExitCode::FAILURE
            }
        };
    }
    engine::this_binary_compiles();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("starting the async runtime");
    match runtime.block_on(execute(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run { daemon, common } => {
            let mut compile = common.compile_settings();
            if let Some(mib) = daemon.cache_max_mib {
                compile.cache_max_bytes = mib << 20;
            }
            compile.set_for_process();
            let (file, origin) = common.file()?;
            let flags = daemon.as_file(&common);
            let merged = file.overridden_by(flags.clone());
            init_logging(merged.log_format.unwrap_or_default(), merged.log_filter.as_deref());
            let mut config = merged.run_config(&origin, &common.limit_flags())?;
            // Read again on SIGHUP and when it changes, with the same flags over it.
            config.reload = common.config.clone().map(|file| scope_wasm::config::ReloadSource {
                file,
                flags,
                limit_flags: common.limit_flags(),
            });
            scope_wasm::run(config, shutdown_signal()?).await
        }
        Command::Check { file, id, common } => {
            common.compile_settings().set_for_process();
            init_logging(LogFormat::Human, Some("warn"));
            let (config_file, origin) = common.file()?;
            let flags = ConfigFile { docker_socket: common.docker_socket.clone(), hostname: common.hostname.clone(), ..Default::default() };
            let config = config_file.overridden_by(flags).run_config(&origin, &common.limit_flags())?;
            let id = id.map(|id| scope_wasm::plugin_id::PluginId::parse(&id)).transpose()?;
            let text = scope_wasm::cli::check::check(&file, id, config.operator_policy(), config.hostname.clone(), &config.docker_socket).await?;
            print!("{text}");
            Ok(())
        }
        Command::Compile { files, cache_dir, common } => compile(files, cache_dir, common).await,
        Command::Test { files, update, record, common } => test(files, update, record, common).await,
        Command::Dev { dir, build, plugin, id, fixture, host, listen, interval_ms, common } => {
            common.compile_settings().set_for_process();
            init_logging(LogFormat::Human, Some("warn"));
            let options = scope_wasm::dev::DevOptions {
                dir,
                build,
                plugin,
                id,
                fixture: (!host).then_some(fixture),
                listen,
                interval: std::time::Duration::from_millis(interval_ms.max(100)),
                run: test_options(&common, None, false, None)?,
            };
            scope_wasm::dev::run(options).await
        }
        Command::Status { admin_socket, json } => {
            let socket = admin_socket.unwrap_or_else(scope_wasm::config::default_admin_socket);
            let plugins = admin::fetch_status(&socket).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plugins)?);
            } else {
                print!("{}", admin::status_table(&plugins));
            }
            Ok(())
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let config = ConfigFile::read(&file)?.run_config(&file.display().to_string(), &Overrides::default())?;
            println!("{}: valid", file.display());
            println!("plugin_dir {}, socket_dir {}", config.plugin_dir.display(), config.socket_dir.display());
            Ok(())
        }
        Command::Config(ConfigCommand::Default) => {
            print!("{}", scope_wasm::config::default_config_text());
            Ok(())
        }
        Command::New { name, lang, dir, sdk } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let sdk = sdk.unwrap_or_else(scaffold::bundled_sdk);
            scaffold::create(&name, lang, &dir, &sdk).with_context(|| format!("creating {}", dir.display()))?;
            println!("created {} ({lang:?}); build it with:\n  cd {} && {}", dir.display(), dir.display(), scaffold::build_hint(lang));
            Ok(())
        }
        Command::Push { file, reference, sign, registry } => {
            let reference = parse_reference(&reference)?;
            let client = registry.registry(&reference);
            let digest = client.push(&file, &reference).await?;
            println!("pushed {} as {reference}@{digest}", file.display());
            if let Some(key) = sign {
                let password = std::env::var("COSIGN_PASSWORD").unwrap_or_default();
                client.sign(&reference, &digest, &key, password.as_bytes()).await?;
                println!("signed {digest} with {}", key.display());
            }
            println!("digest: {digest}");
            Ok(())
        }
        Command::Pull { reference, output, key, registry } => {
            let reference = parse_reference(&reference)?;
            let client = registry.registry(&reference);
            let manifest = client.manifest(&reference).await?;
            if let Some(key) = key {
                let key = scope_wasm::config::sources::PublicKey::read(&key)?;
                client.verify(&reference, &manifest.digest, &key).await?;
            }
            let output = output.unwrap_or_else(|| {
                PathBuf::from(format!("{}.wasm", reference.repository().rsplit('/').next().unwrap_or("plugin")))
            });
            client.pull_component(&reference, &manifest, &output, client.settings().max_pull_bytes).await?;
            println!("pulled {reference}@{} into {}", manifest.digest, output.display());
            Ok(())
        }
        Command::Keygen { name } => {
            let password = std::env::var("COSIGN_PASSWORD").unwrap_or_default();
            let (private, public) = scope_wasm::load::registry::keygen(password.as_bytes())?;
            let key = name.with_extension("key");
            let pubkey = name.with_extension("pub");
            anyhow::ensure!(!key.exists(), "{} exists already; not overwriting a private key", key.display());
            std::fs::write(&key, private.as_bytes()).with_context(|| format!("writing {}", key.display()))?;
            std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            std::fs::write(&pubkey, public).with_context(|| format!("writing {}", pubkey.display()))?;
            println!("private key {} (keep it secret), public key {} (for public_key in the config)", key.display(), pubkey.display());
            Ok(())
        }
        Command::CompileWorker { .. } => unreachable!("handled before the async runtime starts"),
    }
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
