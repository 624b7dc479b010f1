//! Benchmark (not a test): the daemon against what Scope users run today, side
//! by side in one run, as ratios.
//!
//! The same plugin three ways, serving the same report bytes:
//! - native: a plain Rust hyper server on a UNIX socket, one process per plugin
//!   (this benchmark re-runs itself with `--serve-native`): the practical floor;
//! - python: the official plugins' style (`tests/bench/reference/plugin.py`):
//!   `http10` as volume-count.py (HTTP/1.0, a new connection per request) and
//!   `threaded` as http-statistics (keep-alive, a thread per connection);
//! - wasm: the counter guest in one scope-wasm daemon.
//!
//! `SCOPE_WASM_BENCH_SMOKE=1` shrinks every count so CI runs it in seconds.

#[path = "../support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use support::{Client, Daemon, Stats, guest, report_path, stats};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve-native") {
        support::serve_native(Path::new(&args[2]), Path::new(&args[3]));
        return;
    }
    if args.get(1).map(String::as_str) == Some("--serve-native-counter") {
        support::serve_native_counter(Path::new(&args[2]));
        return;
    }
    // One thread: the client adds as little as it can to what is measured.
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run());
}


#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Native,
    /// The counter's work done natively: builds its report on every poll.
    NativeCounter,
    PythonHttp10,
    PythonThreaded,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Native => "native (Rust hyper)",
            Kind::NativeCounter => "native counter (Rust hyper, builds its report on each poll)",
            Kind::PythonHttp10 => "python HTTP/1.0 (volume-count style)",
            Kind::PythonThreaded => "python keep-alive (threaded)",
        }
    }

    fn keep_alive(self) -> bool {
        self != Kind::PythonHttp10
    }
}

/// Reference plugin processes, killed on drop.
struct References {
    children: Vec<Child>,
    sockets: Vec<PathBuf>,
}

impl Drop for References {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn start_references(kind: Kind, n: usize, dir: &Path, body_file: &Path) -> References {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/bench/reference/plugin.py");
    let mut refs = References { children: Vec::new(), sockets: Vec::new() };
    for i in 0..n {
        let socket = dir.join(format!("ref-{i}.sock"));
        let mut command = match kind {
            Kind::Native => {
                let mut c = Command::new(std::env::current_exe().unwrap());
                c.arg("--serve-native");
                c
            }
            Kind::NativeCounter => {
                let mut c = Command::new(std::env::current_exe().unwrap());
                c.arg("--serve-native-counter");
                c
            }
            Kind::PythonHttp10 | Kind::PythonThreaded => {
                let mut c = Command::new("python3");
                c.arg(&script).arg(if kind == Kind::PythonHttp10 { "http10" } else { "threaded" });
                c
            }
        };
        let child = command.arg(&socket).arg(body_file).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        refs.children.push(child);
        refs.sockets.push(socket);
    }
    for socket in &refs.sockets {
        let started = Instant::now();
        while tokio::net::UnixStream::connect(socket).await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "{} never came up", socket.display());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    refs
}

/// One request on a fresh connection, read to the end (HTTP/1.0 style).
async fn one_shot(socket: &Path) -> Duration {
    let started = Instant::now();
    // A single-threaded server with a backlog of 5 (socketserver's default)
    // refuses connections past it: retry, as a client would.
    let stream = loop {
        match tokio::net::UnixStream::connect(socket).await {
            Ok(stream) => break stream,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => tokio::task::yield_now().await,
            Err(err) => panic!("connecting to {}: {err}", socket.display()),
        }
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let request = Request::get(report_path("bench")).header("host", "plugin").body(Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
    started.elapsed()
}

/// A poller like the probe's: keep-alive where the plugin allows it.
enum Poller {
    KeepAlive(Client),
    OneShot(PathBuf),
}

impl Poller {
    async fn new(kind_keep_alive: bool, socket: &Path) -> Self {
        if kind_keep_alive { Poller::KeepAlive(Client::connect(socket).await) } else { Poller::OneShot(socket.to_owned()) }
    }

    async fn poll(&mut self) -> Duration {
        match self {
            Poller::KeepAlive(client) => {
                let reply = client.get(&report_path("bench")).await;
                assert_eq!(reply.status, 200);
                reply.elapsed
            }
            Poller::OneShot(socket) => one_shot(socket).await,
        }
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Requests per second over `connections` concurrent clients.
async fn throughput(keep_alive: bool, socket: &Path, connections: usize, run_for: Duration) -> f64 {
    let until = Instant::now() + run_for;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let socket = socket.to_owned();
            tokio::spawn(async move {
                let mut poller = Poller::new(keep_alive, &socket).await;
                let mut done = 0u64;
                while Instant::now() < until {
                    poller.poll().await;
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / run_for.as_secs_f64()
}

/// (RSS, PSS) in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        rollup
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("Rss:"), field("Pss:"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The probe's own cadence: every plugin polled once a second, the daemon's
/// CPU time (all its threads, its refreshes included) against that of as many
/// native processes polled the same way, in the same seconds: ones serving
/// fixed bytes (the goal's reference), and ones doing the counter's job
/// natively (building its report on each poll). Returns both ratios.
async fn cpu_per_poll(smoke: bool, dir: &Path, body_file: &Path) -> (f64, f64) {
    let (n, seconds) = if smoke { (2, 2) } else { (500, 20) };
    let mut references = Vec::new();
    for kind in [Kind::Native, Kind::NativeCounter] {
        let sub = dir.join(format!("cpu-{}", references.len()));
        std::fs::create_dir(&sub).unwrap();
        references.push((kind, start_references(kind, n, &sub, body_file).await));
    }
    let (daemon, sockets) = wasm_daemon(n).await;
    let mut pollers = Vec::new();
    for socket in references.iter().flat_map(|(_, r)| &r.sockets).chain(&sockets) {
        pollers.push(Poller::new(true, socket).await);
    }
    let cpu = |r: &References| r.children.iter().map(|c| thread_cpu_ns(c.id())).sum::<u64>();
    let pid = daemon.pid();
    let measure = || {
        let threads = [threads_cpu_ns(pid, "tokio-rt-worker"), threads_cpu_ns(pid, "guest")];
        (references.iter().map(|(_, r)| cpu(r)).collect::<Vec<_>>(), process_cpu_ns(pid), threads)
    };
    let mut before = None;
    let started = Instant::now();
    // One warm-up second, then the measured ones.
    for second in 0..=seconds {
        if second == 1 {
            before = Some(measure());
        }
        for poller in pollers.iter_mut() {
            poller.poll().await;
        }
        tokio::time::sleep_until((started + Duration::from_secs(second as u64 + 1)).into()).await;
    }
    let (after, (refs_before, wasm_before, threads_before)) = (measure(), before.unwrap());
    let used: Vec<u64> = after.0.iter().zip(&refs_before).map(|(a, b)| a - b).collect();
    let wasm = after.1 - wasm_before;
    let [serving, guests] = [0, 1].map(|i| after.2[i] - threads_before[i]);
    let polls = (n * seconds) as f64;
    println!("\n## CPU per poll: {n} plugins, each polled once a second for {seconds} s\n");
    println!("| plugin | CPU ms per second | µs per poll | × native | × native counter |");
    println!("|---|---|---|---|---|");
    let rows = references.iter().zip(&used).map(|((kind, _), ns)| (kind.name(), *ns));
    let wasm_rows = [
        ("wasm counter (one daemon, refreshes included)", wasm),
        ("- of which its threads answering sockets", serving),
        ("- of which its guest threads (refreshes: guest call, checks, rendering)", guests),
    ];
    for (name, ns) in rows.chain(wasm_rows) {
        println!(
            "| {name} | {:.1} | {:.1} | {:.2} | {:.2} |",
            ns as f64 / 1e6 / seconds as f64,
            ns as f64 / 1e3 / polls,
            ns as f64 / used[0] as f64,
            ns as f64 / used[1] as f64
        );
    }
    println!(
        "\nThe daemon's threads answering sockets cost {:.2}× the native processes' CPU (each poll wakes a thread either \
         way); the rest is the report made for every poll (guest call, checks, rendering), which the fixed-bytes \
         reference never makes. Native processes that make it cost {:.2}× the fixed-bytes ones, and the daemon {:.2}× them.",
        serving as f64 / used[0] as f64,
        used[1] as f64 / used[0] as f64,
        wasm as f64 / used[1] as f64
    );
    (wasm as f64 / used[0] as f64, wasm as f64 / used[1] as f64)
}

/// CPU time of the threads of `pid` named `name`, in ns (those running now).
fn threads_cpu_ns(pid: u32, name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name))
        .map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok().and_then(|s| s.split_whitespace().next()?.parse().ok()).unwrap_or(0))
        .sum()
}

/// CPU time of a single-threaded process, in ns, exact (the scheduler's own count).
fn thread_cpu_ns(pid: u32) -> u64 {
    let schedstat = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap_or_default();
    schedstat.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// CPU time of a whole process, threads that have ended included, in ns
/// (user + system, counted in clock ticks).
fn process_cpu_ns(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may hold spaces, in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    // SAFETY: sysconf only reads a constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    ticks * 1_000_000_000 / per_second
}

/// A daemon serving `n` copies of the counter guest; their sockets.
async fn wasm_daemon(n: usize) -> (Daemon, Vec<PathBuf>) {
    let names: Vec<String> = (0..n).map(|i| format!("counter-{i}.wasm")).collect();
    let files: Vec<(&str, PathBuf)> = names.iter().map(|name| (name.as_str(), guest("counter"))).collect();
    let daemon = Daemon::start(&files, &[]);
    let mut sockets = Vec::new();
    for i in 0..n {
        sockets.push(daemon.socket(&format!("counter-{i}")).await);
    }
    (daemon, sockets)
}

/// Latency samples of several pollers, measured in interleaved chunks so that
/// the machine's drift (these VMs are noisy) falls on all of them alike.
async fn interleaved(pollers: &mut [Poller], total: usize, chunks: usize) -> Vec<Stats> {
    let mut samples: Vec<Vec<Duration>> = pollers.iter().map(|_| Vec::with_capacity(total)).collect();
    for poller in pollers.iter_mut() {
        for _ in 0..total / 10 {
            poller.poll().await; // warm-up
        }
    }
    for _ in 0..chunks {
        for (poller, samples) in pollers.iter_mut().zip(&mut samples) {
            for _ in 0..total / chunks {
                samples.push(poller.poll().await);
            }
        }
    }
    samples.into_iter().map(stats).collect()
}

async fn run() {
    let smoke = support::bench_smoke();
    let requests = if smoke { 50 } else { 6000 };
    let chunks = if smoke { 2 } else { 20 };
    let run_for = Duration::from_millis(if smoke { 100 } else { 2000 });
    let tick_sizes: &[usize] = if smoke { &[2] } else { &[10, 100] };
    let rounds = if smoke { 2 } else { 31 };
    let dir = tempfile::tempdir().unwrap();
    let max_plugins = *tick_sizes.last().unwrap();

    // The report every variant serves: the wasm guest's own, as the probe gets it.
    let (daemon, sockets) = wasm_daemon(max_plugins).await;
    let body = Client::connect(&sockets[0]).await.get(&report_path("bench")).await.json.to_string();
    let body_file = dir.path().join("report.json");
    std::fs::write(&body_file, &body).unwrap();
    println!("Every plugin serves the same {}-byte report. Latencies and ticks are measured interleaved.\n", body.len());

    let kinds = [Kind::Native, Kind::PythonHttp10, Kind::PythonThreaded];
    let mut refs = Vec::new();
    for kind in kinds {
        let sub = dir.path().join(format!("{}", refs.len()));
        std::fs::create_dir(&sub).unwrap();
        refs.push(start_references(kind, 1, &sub, &body_file).await);
    }
    let mut pollers = Vec::new();
    for (kind, r) in kinds.iter().zip(&refs) {
        pollers.push(Poller::new(kind.keep_alive(), &r.sockets[0]).await);
    }
    pollers.push(Poller::new(true, &sockets[0]).await);
    let mut latencies = interleaved(&mut pollers, requests, chunks).await;
    drop(pollers);

    // A fresh guest call on every request: the `reset` control runs the guest
    // and encodes its shortcut report. Interleaved with the same control sent
    // to the native reference, which reads and parses it and answers the report.
    let mut native = Client::connect(&refs[0].sockets[0]).await;
    let mut client = Client::connect(&sockets[1.min(sockets.len() - 1)]).await;
    let reset = serde_json::json!({"AppID": "b", "NodeID": "test-host;<host>", "Control": "reset", "ControlArgs": null}).to_string();
    let (mut fresh, mut native_again) = (Vec::new(), Vec::new());
    for _ in 0..requests / 10 {
        client.post("/control", reset.clone()).await;
        native.post("/control", reset.clone()).await;
    }
    for _ in 0..chunks {
        for _ in 0..requests / chunks {
            let reply = client.post("/control", reset.clone()).await;
            assert_eq!(reply.status, 200);
            fresh.push(reply.elapsed);
        }
        for _ in 0..requests / chunks {
            let reply = native.post("/control", reset.clone()).await;
            assert_eq!(reply.status, 200);
            native_again.push(reply.elapsed);
        }
    }
    let fresh = stats(fresh);
    let native_again = stats(native_again);

    let mut rates = Vec::new();
    for (kind, r) in kinds.iter().zip(&refs) {
        rates.push(throughput(kind.keep_alive(), &r.sockets[0], 8, run_for).await);
    }
    rates.push(throughput(true, &sockets[0], 8, run_for).await);
    drop(refs);

    println!("## GET /report: latency (sequential, as the probe polls) and throughput (8 connections)\n");
    println!("| plugin | p50 µs | p90 µs | p99 µs | max µs | p50 × native | p50 × python | req/s |");
    println!("|---|---|---|---|---|---|---|---|");
    let served = latencies.pop().unwrap();
    let mut rows: Vec<(String, Stats, f64)> =
        kinds.iter().zip(latencies).zip(&rates).map(|((k, s), r)| (k.name().to_owned(), s, *r)).collect();
    rows.push(("wasm, served report (scope-wasm)".to_owned(), served, rates[3]));
    let native_p50 = rows[0].1.p50;
    let python_p50 = rows[1].1.p50;
    for (name, s, rate) in &rows {
        print_row(name, s, native_p50, python_p50, Some(*rate));
    }
    print_row("wasm, fresh guest call (control)", &fresh, native_again.p50, python_p50, None);
    println!("\n(The fresh call is compared with the native plugin's `POST /control`, interleaved with it: p50 {:.0} µs.)", us(native_again.p50));

    println!("\n## A probe tick (every plugin polled once, one after another) and memory\n");
    println!("Median of {rounds} ticks, the three variants interleaved tick by tick.\n");
    println!("| plugins | plugin | tick ms | tick × native | RSS MiB | PSS MiB | RSS per plugin MiB |");
    println!("|---|---|---|---|---|---|---|");
    let mut goals_tick = Vec::new();
    for &n in tick_sizes {
        let mut tick_refs = Vec::new();
        let mut tick_pollers: Vec<Vec<Poller>> = Vec::new();
        for kind in [Kind::Native, Kind::PythonHttp10] {
            let sub = dir.path().join(format!("tick-{n}-{}", tick_refs.len()));
            std::fs::create_dir(&sub).unwrap();
            let r = start_references(kind, n, &sub, &body_file).await;
            let mut ps = Vec::new();
            for socket in &r.sockets {
                ps.push(Poller::new(kind.keep_alive(), socket).await);
            }
            tick_pollers.push(ps);
            tick_refs.push(r);
        }
        let mut ps = Vec::new();
        for socket in &sockets[..n] {
            ps.push(Poller::new(true, socket).await);
        }
        tick_pollers.push(ps);
        let mut ticks: Vec<Vec<Duration>> = vec![Vec::new(); 3];
        for round in 0..rounds + 1 {
            for (variant, pollers) in tick_pollers.iter_mut().enumerate() {
                let started = Instant::now();
                for poller in pollers.iter_mut() {
                    poller.poll().await;
                }
                if round > 0 {
                    ticks[variant].push(started.elapsed());
                }
            }
        }
        let medians: Vec<Duration> = ticks.into_iter().map(|t| stats(t).p50).collect();
        let mut memories: Vec<(u64, u64)> = tick_refs
            .iter()
            .map(|r| r.children.iter().map(|c| memory_kib(c.id())).fold((0, 0), |a, m| (a.0 + m.0, a.1 + m.1)))
            .collect();
        memories.push(memory_kib(daemon.pid()));
        let names = [Kind::Native.name(), Kind::PythonHttp10.name(), "wasm (one daemon, all plugins loaded)"];
        for ((name, tick), (rss, pss)) in names.iter().zip(&medians).zip(&memories) {
            println!(
                "| {n} | {name} | {:.2} | {:.2} | {:.1} | {:.1} | {:.2} |",
                tick.as_secs_f64() * 1e3,
                tick.as_secs_f64() / medians[0].as_secs_f64(),
                mib(*rss),
                mib(*pss),
                mib(*rss) / n as f64
            );
        }
        goals_tick.push((n, medians[2].as_secs_f64() / medians[0].as_secs_f64()));
    }

    let (cpu_ratio, cpu_ratio_to_counter) = cpu_per_poll(smoke, dir.path(), &body_file).await;

    let served_ratio = rows[3].1.p50.as_secs_f64() / native_p50.as_secs_f64();
    let fresh_ratio = fresh.p50.as_secs_f64() / native_again.p50.as_secs_f64();
    let vs_python = python_p50.as_secs_f64() / rows[3].1.p50.as_secs_f64();
    println!("\n## Goals (ratios from this run)\n");
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!("- served report p50 ≤ 1.1× native: {served_ratio:.2}× ({})", verdict(served_ratio <= 1.1));
    println!("- fresh guest call p50 ≤ 2× a native plugin's control: {fresh_ratio:.2}× ({})", verdict(fresh_ratio <= 2.0));
    println!("- daemon CPU per poll ≤ 1.0× native processes: {cpu_ratio:.2}× ({})", verdict(cpu_ratio <= 1.0));
    println!("  (against native processes that build the same report on each poll: {cpu_ratio_to_counter:.2}×)");
    println!("- ≥ 4× faster than the official Python style: {vs_python:.2}× ({})", verdict(vs_python >= 4.0));
    for (n, ratio) in goals_tick {
        println!("- probe tick over {n} plugins ≤ 1.0× native processes: {ratio:.2}× ({})", verdict(ratio <= 1.0));
    }
    println!();
}

fn print_row(name: &str, s: &Stats, native_p50: Duration, python_p50: Duration, rate: Option<f64>) {
    println!(
        "| {name} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {} |",
        us(s.p50),
        us(s.p90),
        us(s.p99),
        us(s.max),
        s.p50.as_secs_f64() / native_p50.as_secs_f64(),
        s.p50.as_secs_f64() / python_p50.as_secs_f64(),
        rate.map_or("-".to_owned(), |r| format!("{r:.0}"))
    );
}
