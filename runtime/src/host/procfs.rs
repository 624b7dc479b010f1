//! The `procfs` interface: read-only, size-capped reads of a safe subset of
//! the host's /proc.
//!
//! Safe by construction, in three layers:
//! 1. the path is parsed into components and must be on an allow-list of text
//!    files (no `..`, no links such as `root`/`cwd`/`exe`/`fd`, no `mem`, no
//!    kernel interfaces such as `kcore`, `kmsg` or `sysrq-trigger`, no `self`);
//! 2. the file is opened with `openat2` beneath a /proc directory handle with
//!    `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV`, so even a
//!    listed path can never resolve outside /proc;
//! 3. the read is capped in size and time (the call's remaining budget).

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use wasmtime::component::HasData;

use crate::bindings::scope::plugin::procfs::{self, ProcfsError};
use crate::config::grants::ProcfsGrant;
use crate::host::docker::TenantScope;
use crate::host::fixture::Fixture;
use crate::plugin_id::PluginId;

/// Largest file a plugin may read (a busy host's `net/tcp` is a few MiB).
pub const MAX_READ_BYTES: u64 = 4 << 20;

/// Files directly under /proc (or under /proc/net, /proc/pressure, /proc/sys)
/// that describe the host as a whole and hold no secrets.
const HOST_FILES: &[&str] = &[
    "stat", "meminfo", "loadavg", "uptime", "cpuinfo", "diskstats", "vmstat", "version", "partitions", "swaps",
    "filesystems", "interrupts", "softirqs", "cgroups", "zoneinfo", "buddyinfo",
    "pressure/cpu", "pressure/memory", "pressure/io",
    "sys/kernel/hostname", "sys/kernel/osrelease", "sys/kernel/pid_max", "sys/fs/file-nr",
];

/// Network statistics, under /proc/net (the daemon's, i.e. the host's, network
/// namespace) and /proc/<pid>/net (that process's, e.g. a container's).
const NET_FILES: &[&str] = &[
    "dev", "snmp", "snmp6", "netstat", "tcp", "tcp6", "udp", "udp6", "sockstat", "sockstat6", "route", "arp",
];

/// Per-process files: text, read-only, no secrets, no links out of /proc.
const PROCESS_FILES: &[&str] = &[
    "stat", "statm", "status", "cmdline", "comm", "io", "limits", "cgroup", "sched", "schedstat", "oom_score",
    "oom_score_adj", "wchan", "smaps_rollup", "mountinfo", "loginuid", "sessionid",
];

/// Why some well-known paths are refused, for a message that says so.
fn known_refusal(name: &str) -> Option<&'static str> {
    Some(match name {
        "root" | "cwd" | "exe" | "fd" | "fdinfo" | "map_files" | "ns" => "a link that leads outside /proc",
        "mem" | "pagemap" | "kpagecount" | "kpageflags" | "clear_refs" => "process or kernel memory",
        "environ" => "other processes' environment holds secrets (grant `procfs.environ = true` in the plugin's config section to read it)",
        "auxv" | "maps" | "smaps" | "stack" | "syscall" | "kallsyms" | "timer_list" => "addresses that defeat ASLR",
        "kcore" | "kmsg" | "sysrq-trigger" | "keys" | "key-users" | "config.gz" | "attr" => "a kernel interface",
        "self" | "thread-self" => "`self` would be the daemon, not the plugin: name a PID",
        _ => return None,
    })
}

/// A path the plugin may read, relative to /proc, and the PID it is about.
#[derive(Debug, PartialEq, Eq)]
pub struct ProcPath {
    pub relative: String,
    pub pid: Option<u32>,
}

/// Checks a path against the allow-list; the error says why it is refused.
pub fn resolve(path: &str, grant: &ProcfsGrant) -> Result<ProcPath, ProcfsError> {
    // The guest's path quoted short and on one line: a refusal never grows with it.
    // Named as the author knows it: `/proc/1/environ` for `1/environ`.
    let denied = |why: &str| {
        let shown = crate::ops::guest_log::escape_controls(path, 200);
        let proc = if shown.starts_with('/') { "" } else { "/proc/" };
        Err(ProcfsError::Denied(format!("{proc}{shown} is not readable by plugins: {why}")))
    };
    let relative = path.strip_prefix("/proc/").unwrap_or(path);
    if relative.starts_with('/') {
        return denied("only paths under /proc are readable");
    }
    let parts: Vec<&str> = relative.split('/').collect();
    if parts.iter().any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('\0')) {
        return denied("empty, `.` and `..` components are not allowed");
    }
    // A granted `<pid>/environ` is the one known refusal that may pass.
    if let Some(why) = parts.iter().find_map(|p| known_refusal(p))
        && !(grant.environ && parts.last() == Some(&"environ") && parts.len() == 2)
    {
        return denied(why);
    }
    let pid = parts[0].parse::<u32>().ok();
    let allowed = match (pid, parts.as_slice()) {
        (None, ["net", file]) => NET_FILES.contains(file),
        (None, _) => HOST_FILES.contains(&relative),
        (Some(_), [_, "environ"]) => grant.environ,
        (Some(_), [_, "net", file]) => NET_FILES.contains(file),
        (Some(_), [_, file]) => PROCESS_FILES.contains(file),
        (Some(_), [_, "task", tid, file]) => tid.parse::<u32>().is_ok() && PROCESS_FILES.contains(file),
        _ => false,
    };
    if !allowed {
        return denied("not on the list of readable /proc files (see docs/plugin-authors.md)");
    }
    Ok(ProcPath { relative: relative.to_owned(), pid })
}

/// Blocking reads one plugin may have in flight. A read of a process stuck in
/// uninterruptible sleep can block its thread for good: past this many, the
/// plugin's reads are refused instead of filling the daemon's blocking pool.
const MAX_BLOCKING_READS: usize = 2;

/// Per-plugin state of the capability.
pub struct ProcfsCtx {
    plugin: PluginId,
    grant: Option<ProcfsGrant>,
    /// Set for tenant plugins: other containers' processes are refused.
    tenant: Option<Arc<TenantScope>>,
    blocking: Arc<Semaphore>,
    denial_logged: bool,
    fixture: Option<Arc<Fixture>>,
}

impl ProcfsCtx {
    pub fn new(plugin: PluginId, grant: Option<ProcfsGrant>, tenant: Option<Arc<TenantScope>>) -> Self {
        Self {
            plugin,
            grant,
            tenant,
            blocking: Arc::new(Semaphore::new(MAX_BLOCKING_READS)),
            denial_logged: false,
            fixture: None,
        }
    }

    /// Under `scope-wasm test`: answers from the fixture, or recorded into it.
    pub fn with_fixture(mut self, fixture: Option<Arc<Fixture>>) -> Self {
        self.fixture = fixture;
        self
    }

    fn blocking_slot(&self) -> Result<OwnedSemaphorePermit, ProcfsError> {
        self.blocking.clone().try_acquire_owned().map_err(|_| {
            ProcfsError::Io(format!("plugin {}: earlier /proc reads are still stuck; try again later", self.plugin))
        })
    }

    /// For a tenant plugin, the containers it may see; `None` for everyone else.
    async fn visible_containers(&self, deadline: Instant) -> Result<Option<Arc<HashSet<String>>>, ProcfsError> {
        let Some(tenant) = &self.tenant else { return Ok(None) };
        tenant.visible_containers(deadline).await.map(Some).map_err(|err| {
            // Fail closed: without the engine, containers cannot be told apart.
            ProcfsError::Denied(format!("cannot tell which processes are this plugin's own: {err:?}"))
        })
    }

    fn not_granted(&mut self) -> ProcfsError {
        ProcfsError::Denied(super::not_granted(&self.plugin, "procfs", &mut self.denial_logged))
    }
}

/// The view host calls get: the plugin's context and its call's deadline.
pub struct ProcfsView<'a> {
    pub ctx: &'a mut ProcfsCtx,
    pub deadline: Instant,
}

pub struct Procfs;

impl HasData for Procfs {
    type Data<'a> = ProcfsView<'a>;
}

impl procfs::Host for ProcfsView<'_> {
    async fn read(&mut self, path: String) -> wasmtime::Result<Result<String, ProcfsError>> {
        let Some(grant) = self.ctx.grant.clone() else { return Ok(Err(self.ctx.not_granted())) };
        let target = match resolve(&path, &grant) {
            Ok(target) => target,
            Err(err) => return Ok(Err(err)),
        };
        if let Some(fixture) = self.ctx.fixture.clone() {
            if fixture.replaying() {
                return Ok(fixture.procfs_read(&target.relative));
            }
            let relative = target.relative.clone();
            let answer = self.read_host(target).await;
            fixture.record_procfs_read(&relative, &answer);
            return Ok(answer);
        }
        Ok(self.read_host(target).await)
    }

    async fn list_pids(&mut self) -> wasmtime::Result<Result<Vec<u32>, ProcfsError>> {
        if self.ctx.grant.is_none() {
            return Ok(Err(self.ctx.not_granted()));
        }
        if let Some(fixture) = self.ctx.fixture.as_ref().filter(|f| f.replaying()) {
            return Ok(fixture.procfs_pids());
        }
        let result = async {
            let visible = self.ctx.visible_containers(self.deadline).await?;
            let slot = self.ctx.blocking_slot()?;
            blocking_until(self.deadline, move || {
                let _slot = slot;
                let pids = list_pids()?;
                let Some(visible) = visible else { return Ok(pids) };
                Ok(pids.into_iter().filter(|pid| may_see(*pid, &visible)).collect())
            })
            .await
        };
        Ok(result.await)
    }
}

impl ProcfsView<'_> {
    /// Reads a checked path from the host's /proc.
    async fn read_host(&mut self, target: ProcPath) -> Result<String, ProcfsError> {
        let visible = match target.pid {
            Some(_) => self.ctx.visible_containers(self.deadline).await,
            None => Ok(None),
        };
        let result = async {
            let visible = visible?;
            let slot = self.ctx.blocking_slot()?;
            blocking_until(self.deadline, move || {
                let _slot = slot;
                read_target(&target, visible.as_deref())
            })
            .await
        };
        result.await
    }
}

/// /proc, opened once: every read starts from this handle.
fn proc_dir() -> Result<&'static File, ProcfsError> {
    static PROC: std::sync::OnceLock<File> = std::sync::OnceLock::new();
    if let Some(dir) = PROC.get() {
        return Ok(dir);
    }
    let dir = File::open("/proc").map_err(|err| ProcfsError::Io(format!("opening /proc: {err}")))?;
    Ok(PROC.get_or_init(|| dir))
}

/// Reads a resolved path. A process's files are read through one handle on
/// `/proc/<pid>`, so its cgroup (checked for tenants) and the file read belong
/// to the same process even if the PID is reused in between.
fn read_target(target: &ProcPath, visible: Option<&HashSet<String>>) -> Result<String, ProcfsError> {
    let proc_dir = proc_dir()?;
    let Some(pid) = target.pid else { return read_beneath(proc_dir, &target.relative) };
    let process = File::from(openat2_beneath(proc_dir, &pid.to_string(), libc::O_PATH | libc::O_DIRECTORY)?);
    if let Some(visible) = visible
        && let Some(container) = container_id_in(&read_beneath(&process, "cgroup")?)
        && !visible.contains(&container)
    {
        return Err(ProcfsError::Denied(format!(
            "process {pid} belongs to a container outside this plugin's label selector"
        )));
    }
    let file = target.relative.split_once('/').map_or("", |(_, rest)| rest);
    read_beneath(&process, file).map(|text| redact_addresses(file, text))
}

/// For a tenant: a process on the host itself, or in one of its own containers.
pub fn may_see(pid: u32, visible: &HashSet<String>) -> bool {
    match container_of(pid) {
        Some(container) => visible.contains(&container),
        None => true,
    }
}

/// Memory addresses in otherwise harmless files: the daemon reads as root, so
/// without this a plugin would learn every process's memory layout.
fn redact_addresses(file: &str, text: String) -> String {
    let name = file.rsplit('/').next().unwrap_or(file);
    match name {
        "stat" => redact_stat(&text),
        // The first line is the address range the rollup covers.
        "smaps_rollup" => text.lines().skip(1).map(|l| format!("{l}\n")).collect(),
        _ => text,
    }
}

/// Zeroes the address fields of `<pid>/stat`: startcode, endcode, startstack,
/// kstkesp, kstkeip (26-30) and start_data .. env_end (45-51), as the kernel
/// itself does for readers without ptrace access.
fn redact_stat(text: &str) -> String {
    let Some(paren) = text.rfind(')') else { return text.to_owned() };
    let (head, tail) = text.split_at(paren + 1);
    // Fields after the command name start at field 3.
    let fields: Vec<String> = tail
        .split_whitespace()
        .enumerate()
        .map(|(i, value)| if matches!(i + 3, 26..=30 | 45..=51) { "0".to_owned() } else { value.to_owned() })
        .collect();
    format!("{head} {}\n", fields.join(" "))
}

/// Runs blocking file I/O off the async runtime, giving up at the deadline
/// (epochs do not interrupt host code, so this is what bounds a stuck read).
async fn blocking_until<T: Send + 'static>(
    deadline: Instant,
    work: impl FnOnce() -> Result<T, ProcfsError> + Send + 'static,
) -> Result<T, ProcfsError> {
    match tokio::time::timeout_at(deadline, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(ProcfsError::Io(format!("read failed: {panic}"))),
        Err(_) => Err(ProcfsError::Io("no answer within the call's remaining budget".into())),
    }
}

fn list_pids() -> Result<Vec<u32>, ProcfsError> {
    let entries = std::fs::read_dir("/proc").map_err(|err| ProcfsError::Io(err.to_string()))?;
    let mut pids: Vec<u32> = entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Opens `relative` beneath /proc so that nothing, not even a symbolic link
/// planted by a process, can lead the read outside /proc.
#[cfg(test)]
fn read_beneath_proc(relative: &str) -> Result<String, ProcfsError> {
    read_beneath(proc_dir()?, relative)
}

/// Reads `relative` beneath `dir` (/proc or a process's directory in it).
fn read_beneath(dir: &File, relative: &str) -> Result<String, ProcfsError> {
    let file = openat2_beneath(dir, relative, libc::O_RDONLY)?;
    let mut bytes = Vec::new();
    let read = File::from(file)
        .take(MAX_READ_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| io_error(relative, err))?;
    if read as u64 > MAX_READ_BYTES {
        return Err(ProcfsError::TooLarge(MAX_READ_BYTES));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn openat2_beneath(dir: &File, relative: &str, mode: i32) -> Result<OwnedFd, ProcfsError> {
    use std::os::fd::AsRawFd;
    let path = CString::new(relative).map_err(|_| ProcfsError::Denied("NUL in path".into()))?;
    // SAFETY: `open_how` is a plain C struct; all-zero is its valid default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (mode | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV;
    // SAFETY: openat2 reads `path` and `how` (with its true size) and returns a
    // new descriptor or -1; the descriptor is owned by the `OwnedFd` below.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io_error(relative, std::io::Error::last_os_error()));
    }
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn io_error(relative: &str, err: std::io::Error) -> ProcfsError {
    match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESRCH) => ProcfsError::NotFound(format!("/proc/{relative}")),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EXDEV) | Some(libc::ELOOP) => {
            ProcfsError::Denied(format!("/proc/{relative}: {err}"))
        }
        _ => ProcfsError::Io(format!("/proc/{relative}: {err}")),
    }
}

/// The container a process runs in, from its cgroup path (Docker puts the
/// 64-hex-digit container ID there, with both cgroup drivers).
pub fn container_of(pid: u32) -> Option<String> {
    container_id_in(&read_beneath(proc_dir().ok()?, &format!("{pid}/cgroup")).ok()?)
}

/// The first 64-hex-digit run in a cgroup file's text: the container's ID.
pub fn container_id_in(cgroup: &str) -> Option<String> {
    cgroup
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|run| run.len() == 64)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(path: &str, grant: &ProcfsGrant) -> String {
        match resolve(path, grant) {
            Err(ProcfsError::Denied(why)) => why,
            other => panic!("{path:?} should be denied, got {other:?}"),
        }
    }

    #[test]
    fn the_safe_subset_is_readable() {
        let grant = ProcfsGrant::default();
        for path in ["stat", "/proc/meminfo", "net/dev", "1/status", "1/net/tcp", "42/task/43/stat", "pressure/io"] {
            let resolved = resolve(path, &grant).unwrap_or_else(|e| panic!("{path}: {e:?}"));
            assert!(!resolved.relative.starts_with('/'));
        }
        assert_eq!(resolve("7/cmdline", &grant).unwrap().pid, Some(7));
    }

    #[test]
    fn escapes_links_secrets_and_kernel_interfaces_are_refused() {
        let grant = ProcfsGrant::default();
        for (path, reason) in [
            ("/proc/self/root/etc/shadow", "daemon"),
            ("/proc/1/root/etc/shadow", "link"),
            ("/proc/self/status", "daemon"),
            ("/proc/../etc/passwd", "`..`"),
            ("../etc/passwd", "`..`"),
            ("/etc/passwd", "only paths under /proc"),
            ("1/environ", "grant `procfs.environ = true`"),
            ("1/fd/0", "link"),
            ("1/fdinfo/0", "link"),
            ("1/cwd", "link"),
            ("1/exe", "link"),
            ("1/map_files", "link"),
            ("1/mem", "memory"),
            ("1/maps", "ASLR"),
            ("kcore", "kernel interface"),
            ("kmsg", "kernel interface"),
            ("sysrq-trigger", "kernel interface"),
            ("1//status", "empty"),
            ("1/./status", "`.`"),
            ("sys/kernel/core_pattern", "not on the list"),
            ("1/task/2/root", "link"),
            ("mounts", "not on the list"),
        ] {
            let why = refused(path, &grant);
            assert!(why.contains(reason), "{path}: {why}");
        }
    }

    #[test]
    fn environ_needs_its_grant() {
        let grant = ProcfsGrant { environ: true };
        assert_eq!(resolve("1/environ", &grant).unwrap().relative, "1/environ");
        refused("self/environ", &grant);
        refused("1/task/1/environ", &grant);
    }

    #[test]
    fn openat2_never_leaves_proc() {
        // Listed paths read fine...
        assert!(read_beneath_proc("stat").unwrap().starts_with("cpu"));
        let me = std::process::id();
        assert!(read_beneath_proc(&format!("{me}/status")).unwrap().contains("Pid:"));
        // ...and the kernel itself refuses magic links, even if the list let one through.
        for path in [format!("{me}/root/etc/passwd"), format!("{me}/cwd"), format!("{me}/fd/0")] {
            assert!(matches!(read_beneath_proc(&path), Err(ProcfsError::Denied(_))), "{path}");
        }
        assert!(matches!(read_beneath_proc("4294967295/status"), Err(ProcfsError::NotFound(_))));
    }

    #[test]
    fn addresses_are_zeroed() {
        let me = std::process::id();
        let stat = read_target(&resolve(&format!("{me}/stat"), &ProcfsGrant::default()).unwrap(), None).unwrap();
        let tail: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..].split_whitespace().collect();
        assert_eq!(tail.len(), 50, "{stat}");
        for field in [26, 27, 28, 45, 49, 51] {
            assert_eq!(tail[field - 3], "0", "field {field} of {stat}");
        }
        assert_ne!(tail[22 - 3], "0", "start time stays");
        let rollup = read_target(&resolve(&format!("{me}/smaps_rollup"), &ProcfsGrant::default()).unwrap(), None).unwrap();
        assert!(rollup.starts_with("Rss:"), "{rollup}");
    }

    #[test]
    fn container_ids_come_from_cgroup_paths() {
        let id = "b65182abd3e076446486030563999728ad2a478abe4303ec82fd5ad159160306";
        assert_eq!(container_id_in(&format!("0::/docker/{id}\n")).as_deref(), Some(id));
        assert_eq!(container_id_in(&format!("0::/system.slice/docker-{id}.scope\n")).as_deref(), Some(id));
        assert_eq!(container_id_in("4:memory:/process_api/1dfdd91384ef624b64ae144e9481cce5\n0::/\n"), None);
    }
}
