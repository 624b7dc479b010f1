//! Compiling in a child process whose memory and CPU time are bounded.
//!
//! wasmtime bounds nothing while Cranelift compiles, and a small hostile file
//! can make it allocate gigabytes or run for minutes. So the daemon never
//! compiles in its own process: it runs this binary's hidden `compile-worker`
//! subcommand, which limits itself with rlimits (data size, CPU time, file size,
//! no core dumps), lowers its priority, offers itself first to the OOM killer,
//! drops every capability, compiles with the daemon's exact Engine settings,
//! and writes a cache entry. The daemon then reads that entry as any other. A
//! child that dies is an error in words; the daemon and the other plugins never
//! notice.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use wasmtime::Engine;

use super::slots::CompileSlot;
use crate::load::compile_cache;
use crate::load::loader::MAX_PLUGIN_FILE_BYTES;
use crate::plugin_id::PluginId;

/// The hidden subcommand the daemon runs to compile.
pub const SUBCOMMAND: &str = "compile-worker";
/// How much of the child's stderr is kept for the error message.
const STDERR_KEPT: usize = 4 << 10;
/// A big file's child's niceness, and a demoted child's. A small file
/// (under `BIG_FILE`) compiles at the daemon's own priority: it needs well
/// under a second of CPU, and at niceness 10 on a busy node it would get a
/// tenth of a core's share and open its socket many seconds late.
const NICE_BIG: i32 = 10;
const NICE_DEMOTED: i32 = 19;
/// Files at least this large compile at low priority, logged at `info`.
const BIG_FILE: usize = 1 << 20;
/// Threads one compile child uses at most.
const COMPILER_THREADS: usize = 4;

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

static THIS_BINARY_COMPILES: AtomicBool = AtomicBool::new(false);

/// Called by the `scope-wasm` binary: this executable answers `compile-worker`,
/// so the daemon runs itself (`/proc/self/exe`: the very file it was started
/// from, even if an upgrade has replaced it on disk since).
pub fn this_binary_compiles() {
    THIS_BINARY_COMPILES.store(true, Ordering::Relaxed);
}

/// The program to run as compile child: this one, `$SCOPE_WASM_COMPILE_WORKER`,
/// or (for the library in tests and benchmarks) the `scope-wasm` that cargo
/// builds beside them.
fn worker_program() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("SCOPE_WASM_COMPILE_WORKER") {
        return Ok(path.into());
    }
    if THIS_BINARY_COMPILES.load(Ordering::Relaxed) {
        return Ok("/proc/self/exe".into());
    }
    let exe = std::env::current_exe().context("finding this executable")?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("scope-wasm"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| anyhow!("no scope-wasm binary near {} to compile with; set SCOPE_WASM_COMPILE_WORKER", exe.display()))
}

/// Bounds for one compile child.
#[derive(Debug, Clone, Copy)]
pub struct ChildLimits {
    pub memory_mib: u64,
    pub cpu_seconds: u64,
    /// After this long at full priority the compile gives its slot back.
    pub demote_after: Duration,
}

/// Compiles `bytes` in a child into the cache entry `entry`. `slot` is given
/// back (demoted) if the compile runs longer than `limits.demote_after`.
pub async fn compile(
    id: &PluginId,
    bytes: Arc<Vec<u8>>,
    max_wasm_stack: usize,
    entry: &Path,
    limits: ChildLimits,
    mut slot: CompileSlot,
) -> Result<()> {
    let program = worker_program()?;
    let nice = if bytes.len() >= BIG_FILE { NICE_BIG } else { 0 };
    let mut child = tokio::process::Command::new(&program)
        .arg(SUBCOMMAND)
        .args(["--stack", &max_wasm_stack.to_string()])
        .args(["--memory-mib", &limits.memory_mib.to_string()])
        .args(["--cpu-seconds", &limits.cpu_seconds.to_string()])
        .args(["--nice", &nice.to_string()])
        .arg("-")
        .arg(entry)
        // Two malloc arenas, not eight per CPU: fewer reserved megabytes, and
        // memory use closer to what the data limit counts. A few compiler
        // threads, whatever the node's size: each holds functions in flight.
        .env("MALLOC_ARENA_MAX", "2")
        .env("RAYON_NUM_THREADS", COMPILER_THREADS.min(cpus()).to_string())
        // An allocation failure is one line, not a backtrace.
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // A daemon that stops (or a load that is cancelled) takes its compile with it.
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting the compiler {}", program.display()))?;
    let pid = child.id().unwrap_or(0);
    let size = bytes.len();
    let (memory_mib, cpu_seconds) = (limits.memory_mib, limits.cpu_seconds);
    if size >= BIG_FILE {
        tracing::info!(plugin = %id, size_kib = size >> 10, slot = slot.number().unwrap_or_default(), memory_mib, cpu_seconds, "compiling");
    } else {
        tracing::debug!(plugin = %id, size_kib = size >> 10, slot = slot.number().unwrap_or_default(), memory_mib, cpu_seconds, "compiling");
    }
    let started = Instant::now();

    let mut stdin = child.stdin.take().expect("piped");
    let feed = async move {
        // A child that dies early closes the pipe; its exit says why.
        let _ = stdin.write_all(&bytes).await;
    };
    let mut stderr = child.stderr.take().expect("piped");
    let read_stderr = async move {
        let mut kept = Vec::new();
        let _ = (&mut stderr).take(STDERR_KEPT as u64).read_to_end(&mut kept).await;
        // Drain the rest, or a chatty child would block on a full pipe.
        let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        String::from_utf8_lossy(&kept).trim().to_owned()
    };
    let wait = async {
        let demote = tokio::time::sleep(limits.demote_after);
        tokio::pin!(demote);
        let mut demoted = false;
        loop {
            tokio::select! {
                status = child.wait() => return status,
                _ = &mut demote, if !demoted => {
                    demoted = slot.demote();
                    if demoted {
                        renice(pid, NICE_DEMOTED);
                        tracing::info!(
                            plugin = %id, size_kib = size >> 10,
                            "still compiling after {} s: continuing at low priority, its slot goes to the next compile",
                            limits.demote_after.as_secs()
                        );
                    } else {
                        // As many compiles are demoted as may be: keep the slot, ask again soon.
                        demote.as_mut().reset(Instant::now() + Duration::from_secs(1));
                    }
                }
            }
        }
    };
    let ((), stderr, status) = tokio::join!(feed, read_stderr, wait);
    drop(slot);
    let status = status.context("waiting for the compiler")?;
    let outcome = explain(status, &stderr, &limits);
    if outcome.is_err() {
        let _ = std::fs::remove_file(compile_cache::tmp_path(entry, pid));
    }
    let took = started.elapsed();
    crate::ops::daemon_stats::compiled(took);
    if took >= limits.demote_after {
        let result = match &outcome {
            Ok(()) => "done".to_owned(),
            Err(err) => format!("failed: {err:#}"),
        };
        tracing::info!(plugin = %id, size_kib = size >> 10, "compile {result} after {:.1} s", took.as_secs_f64());
    }
    outcome
}

/// Why a compile child ended as it did, in words.
fn explain(status: ExitStatus, stderr: &str, limits: &ChildLimits) -> Result<()> {
    if status.success() {
        return Ok(());
    }
    let lower = stderr.to_lowercase();
    if ["memory allocation of", "cannot allocate memory", "out of memory"].iter().any(|sign| lower.contains(sign)) {
        bail!("compiling needed more than {} MiB of memory", limits.memory_mib);
    }
    match (status.signal(), status.code()) {
        (Some(libc::SIGXCPU), _) => bail!("compiling took more than {} s of CPU time", limits.cpu_seconds),
        (Some(libc::SIGXFSZ), _) => bail!("the compiled code is larger than {} MiB", limits.memory_mib),
        (Some(libc::SIGKILL), _) => {
            bail!("the compiler was killed (SIGKILL), most likely by the kernel for lack of memory")
        }
        (Some(signal), _) => bail!("the compiler died of signal {signal}{}", quoted(stderr)),
        // The compiler's own error (an invalid component), as it printed it.
        (None, Some(1)) if !stderr.is_empty() => bail!("{stderr}"),
        (None, code) => bail!("the compiler exited with status {}{}", code.unwrap_or(-1), quoted(stderr)),
    }
}

fn quoted(stderr: &str) -> String {
    if stderr.is_empty() { String::new() } else { format!(": {stderr}") }
}

/// Lowers the priority of every thread of `pid` (Linux niceness is per thread).
fn renice(pid: u32, nice: i32) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return };
    for task in tasks.flatten() {
        if let Some(tid) = task.file_name().to_str().and_then(|tid| tid.parse::<libc::id_t>().ok()) {
            // SAFETY: setpriority only changes the scheduling of the named thread.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
        }
    }
}

/// What `compile-worker` is told.
#[derive(Debug, Clone)]
pub struct WorkerArgs {
    pub max_wasm_stack: usize,
    pub memory_mib: u64,
    pub cpu_seconds: u64,
    /// Niceness at least this (never raised above the daemon's own priority).
    pub nice: i32,
    /// The plugin file, `-` for standard input.
    pub input: PathBuf,
    /// The cache entry to write.
    pub output: PathBuf,
}

/// The child's side: bound itself, compile, write the entry. Errors are
/// printed by the caller as they are, for the daemon to quote.
pub fn run_worker(args: &WorkerArgs) -> Result<()> {
    confine(args.memory_mib << 20, args.cpu_seconds, args.nice)?;
    let mut bytes = Vec::new();
    let source: Box<dyn Read> = if args.input == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(&args.input).with_context(|| format!("opening {}", args.input.display()))?)
    };
    source.take(MAX_PLUGIN_FILE_BYTES + 1).read_to_end(&mut bytes).context("reading the plugin")?;
    ensure!(bytes.len() as u64 <= MAX_PLUGIN_FILE_BYTES, "the plugin is larger than {} MiB", MAX_PLUGIN_FILE_BYTES >> 20);
    let engine = Engine::new(&super::engine_config(args.max_wasm_stack))
        .map_err(anyhow::Error::from)
        .context("creating the wasmtime engine")?;
    let payload = engine.precompile_component(&bytes).map_err(anyhow::Error::from)?;
    drop(bytes);
    compile_cache::write_entry(&args.output, &payload)
}

/// Limits the calling process for the rest of its life.
fn confine(memory_bytes: u64, cpu_seconds: u64, nice: i32) -> Result<()> {
    // RLIMIT_DATA, not RLIMIT_AS: it counts what is really allocated (heap and
    // private writable maps), not the address space glibc and thread stacks
    // reserve, so the limit means what it says.
    set_limit(libc::RLIMIT_DATA, memory_bytes, memory_bytes).context("limiting memory")?;
    // SIGXCPU at the soft limit, SIGKILL a second later should it be ignored.
    set_limit(libc::RLIMIT_CPU, cpu_seconds, cpu_seconds + 1).context("limiting CPU time")?;
    set_limit(libc::RLIMIT_FSIZE, memory_bytes, memory_bytes).context("limiting file size")?;
    set_limit(libc::RLIMIT_CORE, 0, 0).context("disabling core dumps")?;
    // Best effort from here: each only narrows what the child may do.
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    // SAFETY: getpriority/setpriority/prctl change only this process's own attributes.
    unsafe {
        let current = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(libc::PRIO_PROCESS, 0, current.max(nice));
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        // A daemon that is killed (SIGKILL, the OOM killer) takes its compiles
        // with it; its successor would start them again beside them. (The
        // signal follows the spawning thread: an async runtime worker, which
        // lives as long as the daemon.)
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() == 1 {
            anyhow::bail!("the daemon is gone");
        }
    }
    drop_capabilities();
    Ok(())
}

fn set_limit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> std::io::Result<()> {
    let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: setrlimit reads the struct passed in.
    if unsafe { libc::setrlimit(resource, &limit) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// A compiler needs no privilege: the daemon's (SYS_ADMIN, BPF, ...) are dropped,
/// so a compiler bug a hostile file exploits gains nothing beyond the cache directory.
fn drop_capabilities() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let header = Header { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let data = [Data::default(); 2];
    // SAFETY: capset reads a header and two data structs, laid out as the kernel defines them.
    unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ChildLimits {
        ChildLimits { memory_mib: 256, cpu_seconds: 30, demote_after: Duration::from_secs(5) }
    }

    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    fn killed(signal: i32) -> ExitStatus {
        ExitStatus::from_raw(signal)
    }

    #[test]
    fn deaths_are_told_in_words() {
        let says = |status, stderr| explain(status, stderr, &limits()).unwrap_err().to_string();
        assert_eq!(says(killed(libc::SIGXCPU), ""), "compiling took more than 30 s of CPU time");
        assert_eq!(
            says(killed(libc::SIGABRT), "memory allocation of 1048576 bytes failed"),
            "compiling needed more than 256 MiB of memory"
        );
        assert_eq!(says(exited(1), "Cannot allocate memory (os error 12)"), "compiling needed more than 256 MiB of memory");
        assert_eq!(says(exited(1), "failed to parse WebAssembly module"), "failed to parse WebAssembly module");
        assert_eq!(says(exited(3), "odd"), "the compiler exited with status 3: odd");
        assert_eq!(says(killed(libc::SIGSEGV), ""), "the compiler died of signal 11");
        assert!(says(killed(libc::SIGKILL), "").contains("killed (SIGKILL)"));
        explain(exited(0), "", &limits()).unwrap();
    }
}
