//! The eBPF programs behind `http-traffic`: one set for the whole host, shared
//! by every plugin holding the grant. They are loaded when the first such plugin
//! asks for counters and detached when the last lease on them is dropped (its
//! instance went: the plugin was removed or replaced).
//!
//! The programs (`runtime/bpf/http_traffic.bpf.c`, built by `build.rs`) count
//! into a bounded per-CPU BPF hash map keyed by (tgid, kind, code); this module
//! sums and reads it, and drops the entries of processes that exited. On x86-64
//! they go on the two socket tracepoints where every socket send and receive
//! ends (Linux 6.3+), else on the two raw tracepoints every syscall passes, else
//! (and elsewhere) on the tracepoints of the eight syscalls: the cheapest that
//! loads (docs/benchmarks.md); `SCOPE_WASM_HTTP_PROBE=socket-tracepoints`,
//! `=raw-tracepoints` or `=tracepoints` chooses one. aya
//! loads the object: a pure Rust loader (no libbpf or kernel headers on the
//! host), and the object needs no relocation since it only reads kernel ABI
//! (tracepoint contexts, checked against tracefs before loading, and x86-64
//! user registers and syscall numbers).

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, PerCpuHashMap};
use aya::{Ebpf, EbpfLoader};
use aya::programs::{RawTracePoint, TracePoint};
use tokio::sync::watch;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/http_traffic.bpf.o"));

/// Request methods, in the order of the eBPF program's `request_method`.
pub const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"];

const KIND_REQUEST: u16 = 0;
const KIND_RESPONSE: u16 = 1;

/// Names the attachment to use: `raw-tracepoints` or `tracepoints` (default:
/// the first that works here).
pub const ATTACHMENT_ENV: &str = "SCOPE_WASM_HTTP_PROBE";

/// Counter slots per CPU, as the programs have them (`COUNTER_SLOTS_SIZE`);
/// the environment variable below may set fewer, for tests.
const COUNTER_SLOTS: u32 = 1024;
pub const COUNTER_SLOTS_ENV: &str = "SCOPE_WASM_HTTP_COUNTER_SLOTS";

/// Where the programs are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    /// Raw tracepoint programs on `sock:sock_recv_length`/`sock_send_length`, at
    /// the end of every socket receive and send (x86-64: the syscall is read
    /// from the user registers).
    SocketTracepoints,
    /// `raw_syscalls:sys_enter`/`sys_exit`, filtering x86-64 syscall numbers.
    RawTracepoints,
    /// The `syscalls:sys_enter_*`/`sys_exit_*` tracepoints of each syscall.
    Tracepoints,
}

impl std::fmt::Display for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Attachment::SocketTracepoints => "the socket tracepoints",
            Attachment::RawTracepoints => "the raw syscall tracepoints",
            Attachment::Tracepoints => "the syscall tracepoints",
        })
    }
}

/// (program in the object, raw tracepoint it attaches to): writes are looked
/// at on entry, reads on exit.
const RAW_TRACEPOINT_PROGRAMS: [(&str, &str); 2] = [("raw_sys_enter", "sys_enter"), ("raw_sys_exit", "sys_exit")];

/// (program, tracepoint in the `sock` category): receives are looked at when
/// they end, sends too (the buffer is still the caller's); TCP state changes
/// mark the connections this host opened, whose receives and sends are left alone.
const SOCKET_TRACEPOINT_PROGRAMS: [(&str, &str); 3] =
    [("sock_recv", "sock_recv_length"), ("sock_send", "sock_send_length"), ("sock_set_state", "inet_sock_set_state")];

/// Programs that return at once, on the same tracepoints: the kernel's own
/// share of the cost, for the benchmark.
const RAW_FLOOR_PROGRAMS: [(&str, &str); 2] = [("floor_sys_enter", "sys_enter"), ("floor_sys_exit", "sys_exit")];
const SOCKET_FLOOR_PROGRAMS: [(&str, &str); 3] =
    [("floor_sock_recv", "sock_recv_length"), ("floor_sock_send", "sock_send_length"), ("floor_set_state", "inet_sock_set_state")];

/// (program in the object, syscall tracepoint it attaches to).
/// Reads are counted at exit (their data is there only then), writes at
/// entry. Every way a server reads a request or writes a response is here but
/// io_uring, sendfile/splice (bodies only: their headers come through these)
/// and the batched recvmmsg/sendmmsg (UDP).
const TRACEPOINT_PROGRAMS: [(&str, &str); 12] = [
    ("enter_read", "sys_enter_read"),
    ("exit_read", "sys_exit_read"),
    ("enter_readv", "sys_enter_readv"),
    ("exit_readv", "sys_exit_readv"),
    ("enter_recvfrom", "sys_enter_recvfrom"),
    ("exit_recvfrom", "sys_exit_recvfrom"),
    ("enter_recvmsg", "sys_enter_recvmsg"),
    ("exit_recvmsg", "sys_exit_recvmsg"),
    ("enter_write", "sys_enter_write"),
    ("enter_writev", "sys_enter_writev"),
    ("enter_sendto", "sys_enter_sendto"),
    ("enter_sendmsg", "sys_enter_sendmsg"),
];

/// Where tracefs is looked for (aya attaches through the first that is mounted).
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Reads in flight of threads that died mid-read are swept this often.
const SWEEP_READS_EVERY: Duration = Duration::from_secs(10);

/// One process's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessCounts {
    /// Requests read, by method.
    pub requests: BTreeMap<&'static str, u64>,
    /// Responses written, by status code.
    pub responses: BTreeMap<u16, u64>,
}

/// Hands out leases on the one loaded probe.
#[derive(Default)]
pub struct HttpProbes {
    current: Mutex<Weak<HttpProbe>>,
}

impl HttpProbes {
    /// A lease on the running probe, starting it (in the background) if none runs.
    pub fn acquire(&self) -> Arc<HttpProbe> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(probe) = current.upgrade() {
            return probe;
        }
        let (sender, outcome) = watch::channel(None);
        // A thread of its own: the kernel's verifier takes its time, and no
        // caller's deadline should cut a load short (the next caller uses it).
        std::thread::Builder::new()
            .name("http-probe-load".into())
            .spawn(move || {
                let started = Instant::now();
                let loaded = load().map(|(ebpf, attachment)| {
                    tracing::info!("http-traffic: eBPF programs attached to {attachment} in {:?}", started.elapsed());
                    Arc::new(Loaded(Mutex::new(Maps { ebpf, reads_swept: Instant::now() })))
                });
                if let Err(why) = &loaded {
                    tracing::warn!("http-traffic is unavailable: {why}");
                }
                let _ = sender.send(Some(loaded));
            })
            .expect("spawning a thread");
        let probe = Arc::new(HttpProbe { outcome });
        *current = Arc::downgrade(&probe);
        probe
    }
}

/// A lease on the loaded programs: they stay attached while one is held.
pub struct HttpProbe {
    outcome: watch::Receiver<Option<Result<Arc<Loaded>, String>>>,
}

/// The attached programs and their maps, read by one caller at a time.
struct Loaded(Mutex<Maps>);

struct Maps {
    ebpf: Ebpf,
    /// When the reads in flight were last swept.
    reads_swept: Instant,
}

/// Why counters could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum ProbeError {
    Unavailable(String),
    Timeout,
}

impl HttpProbe {
    /// Waits (until `deadline` at most) for the programs to be loaded and attached.
    pub async fn ready(&self, deadline: tokio::time::Instant) -> Result<(), ProbeError> {
        self.loaded(deadline).await.map(drop)
    }

    /// Every live process's counters, waiting for the programs to load until
    /// `deadline` at most.
    pub async fn counters(&self, deadline: tokio::time::Instant) -> Result<BTreeMap<u32, ProcessCounts>, ProbeError> {
        let loaded = self.loaded(deadline).await?;
        let read = tokio::task::spawn_blocking(move || loaded.read());
        match tokio::time::timeout_at(deadline, read).await {
            Err(_) => Err(ProbeError::Timeout),
            Ok(Err(join)) => Err(ProbeError::Unavailable(format!("reading the counters failed: {join}"))),
            Ok(Ok(result)) => result.map_err(ProbeError::Unavailable),
        }
    }

    async fn loaded(&self, deadline: tokio::time::Instant) -> Result<Arc<Loaded>, ProbeError> {
        let mut outcome = self.outcome.clone();
        tokio::time::timeout_at(deadline, outcome.wait_for(Option::is_some))
            .await
            .map_err(|_| ProbeError::Timeout)?
            .map_err(|_| ProbeError::Unavailable("the eBPF loader stopped".into()))?
            .clone()
            .expect("waited for Some")
            .map_err(ProbeError::Unavailable)
    }
}

impl Loaded {
    fn read(&self) -> Result<BTreeMap<u32, ProcessCounts>, String> {
        let mut maps = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // (key, count) from the slots, then from the hash map (a key may be in both: a CPU's slot holds it,
        // another CPU's slot at that index holds another key).
        let mut counted = slot_counters(&maps.ebpf)?;
        let map = maps.ebpf.map_mut("HTTP_COUNTERS").ok_or("the eBPF object has no HTTP_COUNTERS map")?;
        let mut counters: PerCpuHashMap<&mut MapData, [u8; 8], u64> =
            PerCpuHashMap::try_from(map).map_err(|err| format!("HTTP_COUNTERS: {}", chain(&err)))?;
        let in_slots = counted.len();
        for entry in counters.iter() {
            let (key, per_cpu) = entry.map_err(|err| format!("reading HTTP_COUNTERS: {}", chain(&err)))?;
            counted.push((key, per_cpu.iter().sum()));
        }
        let mut by_pid: BTreeMap<u32, ProcessCounts> = BTreeMap::new();
        let mut exited = Vec::new();
        // A process has several keys (per method and code): look it up once.
        let mut alive = HashMap::new();
        for (at, (key, count)) in counted.into_iter().enumerate() {
            let (tgid, kind, code) = decode_key(key);
            if !*alive.entry(tgid).or_insert_with(|| process_alive(tgid)) {
                // A slot keeps its key for good (freeing it could race with a count); a hash entry goes.
                if at >= in_slots {
                    exited.push(key);
                }
                continue;
            }
            let counts = by_pid.entry(tgid).or_default();
            match kind {
                KIND_REQUEST => {
                    if let Some(method) = METHODS.get(usize::from(code)) {
                        *counts.requests.entry(method).or_default() += count;
                    }
                }
                KIND_RESPONSE => *counts.responses.entry(code).or_default() += count,
                _ => {}
            }
        }
        for key in exited {
            // Already gone (a concurrent sweep) is fine.
            let _ = counters.remove(&key);
        }
        maps.sweep_reads();
        Ok(by_pid)
    }
}

/// The counters in COUNTER_SLOTS, each CPU's slot on its own: `{ key: [u8; 8], count: u64 }`, key all zero when free.
fn slot_counters(ebpf: &Ebpf) -> Result<Vec<([u8; 8], u64)>, String> {
    let map = ebpf.map("COUNTER_SLOTS").ok_or("the eBPF object has no COUNTER_SLOTS map")?;
    let slots: PerCpuArray<&MapData, [u8; 16]> = PerCpuArray::try_from(map).map_err(|err| format!("COUNTER_SLOTS: {}", chain(&err)))?;
    let mut counted = Vec::new();
    for per_cpu in slots.iter() {
        let per_cpu = per_cpu.map_err(|err| format!("reading COUNTER_SLOTS: {}", chain(&err)))?;
        for slot in per_cpu.iter() {
            let (key, count) = slot.split_at(8);
            let key: [u8; 8] = key.try_into().expect("8 bytes");
            if key != [0; 8] {
                counted.push((key, u64::from_ne_bytes(count.try_into().expect("8 bytes"))));
            }
        }
    }
    Ok(counted)
}

impl Maps {
    /// Drops the reads in flight of threads that exited mid-read, so the map
    /// (bounded) keeps room for live ones.
    fn sweep_reads(&mut self) {
        if self.reads_swept.elapsed() < SWEEP_READS_EVERY {
            return;
        }
        self.reads_swept = Instant::now();
        let Some(map) = self.ebpf.map_mut("READS_IN_FLIGHT") else { return };
        // Keys are thread IDs; values (buffer, fd) are not needed here.
        let Ok(mut reads) = BpfHashMap::<&mut MapData, u64, [u8; 16]>::try_from(map) else { return };
        let dead: Vec<u64> = reads
            .keys()
            .filter_map(Result::ok)
            .filter(|pid_tgid| {
                let (tgid, tid) = ((pid_tgid >> 32) as u32, *pid_tgid as u32);
                !Path::new(&format!("/proc/{tgid}/task/{tid}")).exists()
            })
            .collect();
        for key in dead {
            let _ = reads.remove(&key);
        }
    }
}

fn decode_key(key: [u8; 8]) -> (u32, u16, u16) {
    let tgid = u32::from_ne_bytes([key[0], key[1], key[2], key[3]]);
    let kind = u16::from_ne_bytes([key[4], key[5]]);
    let code = u16::from_ne_bytes([key[6], key[7]]);
    (tgid, kind, code)
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The programs, attached one way; dropping this detaches them. The daemon
/// holds them inside `HttpProbes`; the cost benchmark (tests/bench/http_overhead.rs)
/// attaches and drops them many times a second to compare with none.
pub struct Programs(Ebpf);

impl Programs {
    /// The time the kernel measured inside these programs and how many times
    /// they ran, counted only while BPF statistics are on
    /// (`aya::sys::enable_stats`, as the benchmark does).
    pub fn run_time(&self) -> Result<(Duration, u64), String> {
        let mut total = (Duration::ZERO, 0);
        // The object holds every way's programs; only this way's are loaded.
        for (name, program) in self.0.programs().filter(|(_, program)| program.fd().is_ok()) {
            let info = program.info().map_err(|err| format!("{name}: {}", chain(&err)))?;
            total = (total.0 + info.run_time(), total.1 + info.run_count());
        }
        Ok(total)
    }
}

/// Loads the programs and attaches them `attachment`'s way.
pub fn attach(attachment: Attachment) -> Result<Programs, String> {
    if OBJECT.is_empty() {
        return Err("this scope-wasm was built without its eBPF program (clang was missing at build time)".into());
    }
    match attachment {
        Attachment::SocketTracepoints => load_on_socket_tracepoints(&SOCKET_TRACEPOINT_PROGRAMS),
        Attachment::RawTracepoints => load_on_raw_tracepoints(&RAW_TRACEPOINT_PROGRAMS),
        Attachment::Tracepoints => load_on_tracepoints(),
    }
    .map(Programs)
}

/// Programs that do nothing, attached `attachment`'s way: what any program
/// there costs, the floor beside which the benchmark puts ours.
pub fn attach_floor(attachment: Attachment) -> Result<Programs, String> {
    match attachment {
        Attachment::SocketTracepoints => load_on_socket_tracepoints(&SOCKET_FLOOR_PROGRAMS),
        Attachment::RawTracepoints => load_on_raw_tracepoints(&RAW_FLOOR_PROGRAMS),
        Attachment::Tracepoints => Err("no floor is measured for the syscall tracepoints".into()),
    }
    .map(Programs)
}

/// Checks what the programs need, loads them and attaches them: the chosen
/// way, or the first of socket, raw and syscall tracepoints that works.
fn load() -> Result<(Ebpf, Attachment), String> {
    let chosen = match std::env::var(ATTACHMENT_ENV).ok().as_deref() {
        None | Some("") => None,
        Some("socket-tracepoints") => Some(Attachment::SocketTracepoints),
        Some("raw-tracepoints") => Some(Attachment::RawTracepoints),
        Some("tracepoints") => Some(Attachment::Tracepoints),
        Some(other) => {
            return Err(format!(
                "{ATTACHMENT_ENV}={other:?} is none of \"socket-tracepoints\", \"raw-tracepoints\" and \"tracepoints\""
            ));
        }
    };
    if let Some(attachment) = chosen {
        return attach(attachment).map(|Programs(ebpf)| (ebpf, attachment));
    }
    // The cheapest first (docs/benchmarks.md).
    for attachment in [Attachment::SocketTracepoints, Attachment::RawTracepoints] {
        match attach(attachment) {
            Ok(Programs(ebpf)) => return Ok((ebpf, attachment)),
            Err(why) => {
                tracing::info!("http-traffic: {attachment} cannot be used ({why})");
            }
        }
    }
    attach(Attachment::Tracepoints).map(|Programs(ebpf)| (ebpf, Attachment::Tracepoints))
}

/// One program on each raw syscall tracepoint.
fn load_on_raw_tracepoints(programs: &[(&str, &str)]) -> Result<Ebpf, String> {
    if !cfg!(target_arch = "x86_64") {
        return Err("the programs know x86-64's registers and syscall numbers, and this is another architecture".into());
    }
    load_on("raw_syscalls", programs, true)
}

/// Raw tracepoint programs on the socket tracepoints (Linux 6.3 and later).
/// A raw tracepoint program gets the event's arguments (`(struct sock *sk, int
/// ret, int flags)`; for `inet_sock_set_state`, `(struct sock *sk, int
/// oldstate, int newstate)`), which tracefs does not show; it shows the record
/// the kernel fills from them, checked first: the same names from the same event.
fn load_on_socket_tracepoints(programs: &[(&str, &str)]) -> Result<Ebpf, String> {
    if !cfg!(target_arch = "x86_64") {
        return Err("the programs know x86-64's registers and syscall numbers, and this is another architecture".into());
    }
    let tracefs = tracefs()?;
    for &(_, tracepoint) in programs {
        let path = tracefs.join("events/sock").join(tracepoint).join("format");
        let format = std::fs::read_to_string(&path)
            .map_err(|err| format!("this kernel has no tracepoint sock:{tracepoint} (the socket tracepoints need Linux 6.3 or later; {}: {err})", path.display()))?;
        let fields: &[&str] = match tracepoint {
            "inet_sock_set_state" => &["void * skaddr;\toffset:8;\tsize:8;", "int oldstate;\toffset:16;\tsize:4;", "int newstate;\toffset:20;\tsize:4;"],
            _ => &["void * sk;\toffset:8;\tsize:8;", "int ret;\toffset:20;\tsize:4;", "int flags;\toffset:24;\tsize:4;"],
        };
        for field in fields {
            if !format.contains(field) {
                return Err(format!("sock:{tracepoint} has an unexpected layout (no {:?})", field.replace('\t', " ")));
            }
        }
    }
    load_on("sock", programs, true)
}

/// The object's maps, created; its programs not yet loaded.
fn load_object() -> Result<Ebpf, String> {
    let mut loader = EbpfLoader::new();
    // Fewer slots (tests: every count that finds no slot goes to the hash map).
    if let Some(slots) = std::env::var(COUNTER_SLOTS_ENV).ok().and_then(|n| n.parse().ok()).filter(|n| (1..COUNTER_SLOTS).contains(n)) {
        loader.map_max_entries("COUNTER_SLOTS", slots);
    }
    loader.load(OBJECT).map_err(|err| privilege_hint(format!("loading the eBPF object: {}", chain(&err))))
}

/// The syscall tracepoints, whose context layout is checked first.
fn load_on_tracepoints() -> Result<Ebpf, String> {
    let tracefs = tracefs()?;
    check_tracepoint_layout(&tracefs)?;
    load_on("syscalls", &TRACEPOINT_PROGRAMS, false)
}

/// Loads the object and attaches each (program, tracepoint) to that
/// tracepoint of `category`, as a raw tracepoint program if `raw`. On failure
/// the object is dropped whole, so no program of it stays attached.
fn load_on(category: &str, programs: &[(&str, &str)], raw: bool) -> Result<Ebpf, String> {
    let mut ebpf = load_object()?;
    for &(name, tracepoint) in programs {
        let program = ebpf.program_mut(name).ok_or_else(|| format!("the eBPF object has no program {name}"))?;
        let loading = |err: aya::programs::ProgramError| privilege_hint(format!("loading {tracepoint}'s program: {}", chain(&err)));
        let attaching = |err: aya::programs::ProgramError| privilege_hint(format!("attaching to {category}:{tracepoint}: {}", chain(&err)));
        let wrong_kind = |err: aya::programs::ProgramError| format!("{name}: {}", chain(&err));
        if raw {
            let program: &mut RawTracePoint = program.try_into().map_err(wrong_kind)?;
            program.load().map_err(loading)?;
            program.attach(tracepoint).map_err(attaching)?;
        } else {
            let program: &mut TracePoint = program.try_into().map_err(wrong_kind)?;
            program.load().map_err(loading)?;
            program.attach(category, tracepoint).map_err(attaching)?;
        }
    }
    Ok(ebpf)
}

/// The mounted tracefs; mounts it at its usual place if it is not (as root).
fn tracefs() -> Result<PathBuf, String> {
    let mounted = |dir: &Path| dir.join("events").is_dir();
    if let Some(found) = TRACEFS.iter().map(Path::new).find(|dir| mounted(dir)) {
        return Ok(found.to_owned());
    }
    let target = Path::new(TRACEFS[0]);
    match nix::mount::mount(Some("tracefs"), target, Some("tracefs"), nix::mount::MsFlags::empty(), None::<&str>) {
        Ok(()) if mounted(target) => {
            tracing::info!("http-traffic: mounted tracefs at {}", target.display());
            Ok(target.to_owned())
        }
        Ok(()) => Err(format!("tracefs mounted at {} has no events", target.display())),
        Err(errno) => Err(format!(
            "tracefs is not mounted (looked in {}) and mounting it at {} failed: {errno} \
             (mount it: `mount -t tracefs tracefs {}`)",
            TRACEFS.join(", "),
            target.display(),
            target.display()
        )),
    }
}

/// The programs read the syscall tracepoints' context as
/// `{ u64 common; i32 nr; u32 pad; u64 args[6] }` on entry and
/// `{ u64 common; i32 nr; u32 pad; i64 ret }` on exit: make sure this kernel agrees.
fn check_tracepoint_layout(tracefs: &Path) -> Result<(), String> {
    for (_, tracepoint) in TRACEPOINT_PROGRAMS {
        let path = tracefs.join("events/syscalls").join(tracepoint).join("format");
        let format = std::fs::read_to_string(&path).map_err(|err| {
            format!("this kernel has no syscall tracepoint {tracepoint} ({}: {err})", path.display())
        })?;
        let offsets = syscall_field_offsets(&format);
        let expected: &[usize] = if tracepoint.starts_with("sys_enter") { &[16, 24, 32] } else { &[16] };
        if !offsets.starts_with(expected) {
            return Err(format!("syscalls:{tracepoint} has an unexpected layout (argument offsets {offsets:?})"));
        }
    }
    Ok(())
}

/// Offsets of the fields after `__syscall_nr` in a tracepoint's `format` file.
fn syscall_field_offsets(format: &str) -> Vec<usize> {
    format
        .lines()
        .filter_map(|line| line.trim().strip_prefix("field:"))
        .skip_while(|field| !field.contains("__syscall_nr;"))
        .skip(1)
        .filter_map(|field| field.split(';').find_map(|part| part.trim().strip_prefix("offset:")?.parse().ok()))
        .collect()
}

/// Adds what to do about a permission error.
fn privilege_hint(message: String) -> String {
    if message.contains("Operation not permitted") || message.contains("EPERM") {
        format!("{message}: the daemon needs root, or CAP_BPF and CAP_PERFMON, to load eBPF programs")
    } else {
        message
    }
}

/// An error and its causes on one line.
fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYS_ENTER_READ: &str = "name: sys_enter_read\nID: 1\nformat:\n\
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
        \tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
        \tfield:unsigned int fd;\toffset:16;\tsize:8;\tsigned:0;\n\
        \tfield:char * buf;\toffset:24;\tsize:8;\tsigned:0;\n\
        \tfield:size_t count;\toffset:32;\tsize:8;\tsigned:0;\n\nprint fmt: \"\"\n";

    #[test]
    fn the_tracepoint_layout_is_read_from_its_format_file() {
        assert_eq!(syscall_field_offsets(SYS_ENTER_READ), vec![16, 24, 32]);
        assert_eq!(syscall_field_offsets("field:int x; offset:0;"), Vec::<usize>::new());
    }

    #[test]
    fn keys_decode_as_the_program_writes_them() {
        let mut key = [0u8; 8];
        key[..4].copy_from_slice(&4242u32.to_ne_bytes());
        key[4..6].copy_from_slice(&KIND_RESPONSE.to_ne_bytes());
        key[6..].copy_from_slice(&404u16.to_ne_bytes());
        assert_eq!(decode_key(key), (4242, KIND_RESPONSE, 404));
    }
}
