//! Benchmark (not a test): what the `http-traffic` eBPF programs cost the
//! traffic they count. A loopback HTTP/1.1 keep-alive server and its clients
//! run in this process (tiny requests and responses: the worst case, nearly all
//! time spent in the read and write syscalls the programs trace), the client
//! and the server thread answering it pinned to one CPU. Two measures, each
//! with the programs detached, on each of the three attachments (the socket
//! tracepoints are the default), and with programs that return at once on the
//! raw and the socket tracepoints (the kernel's share, which no program can
//! save):
//! - requests per second of a closed-loop client (the CPU the programs add
//!   to every syscall shows up as fewer requests): every request of every
//!   round over all their time, against the same of detached, with a 95 %
//!   interval from the spread of the rounds' own ratios;
//! - latency at a fixed 5,000 requests per second (sent on a fixed schedule): p50 and p99 over every request of every
//!   round, timed from the request's write to its response's last byte.
//!
//! These machines are VMs whose speed moves by ±10 % from one 250 ms phase to
//! the next, so the bench attaches and detaches the daemon's own programs (its
//! loader, `http_probe::attach`) several times a second, in a rotating order,
//! rather than through a plugin (a load and unload per switch), and takes many
//! rounds. A daemon serving http-statistics then shows that the same traffic
//! is counted.
//!
//! Needs root, as it loads eBPF programs.

#[path = "../support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use scope_wasm::host::http_probe::{self, Attachment};
use support::{Client, Daemon, HOSTNAME, bpf_programs_of, guest, report_path, stats};

const CLIENTS: usize = 1;
/// Requests per second, all clients together, of the paced measure.
const FIXED_RATE: u32 = 5_000;
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Rounds of the closed-loop measure; the paced one runs in every third.
fn rounds() -> usize {
    support::bench_count(120, 3)
}

fn phase() -> Duration {
    Duration::from_millis(if support::bench_smoke() { 100 } else { 250 })
}

/// Keeps the calling thread on one CPU: a client and the server thread
/// answering it share one, so every exchange is the same same-CPU ping-pong
/// (unpinned, the scheduler's placement alone moves requests/s by 2x here).
fn pin_to(cpu: usize) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: a zeroed cpu_set_t is an empty set; the calls only read and write it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % cpus, &mut set);
        assert_eq!(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set), 0, "sched_setaffinity");
    }
}

/// A keep-alive server, a thread per connection (the nth on CPU n, as the
/// nth client: clients connect one after the other); its address.
fn serve() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let mut stream = stream.unwrap();
            std::thread::spawn(move || {
                pin_to(n % CLIENTS);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                loop {
                    // The request line and headers, up to the blank line.
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" && stream.write_all(RESPONSE).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// `CLIENTS` connections, made one after the other, each used once so the
/// server has accepted it (and pinned its thread) before the next.
fn connect(addr: SocketAddr) -> Vec<TcpStream> {
    (0..CLIENTS)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.set_nodelay(true).unwrap();
            exchange(&mut stream);
            stream
        })
        .collect()
}

fn exchange(stream: &mut TcpStream) {
    let mut response = [0u8; RESPONSE.len()];
    stream.write_all(REQUEST).unwrap();
    stream.read_exact(&mut response).unwrap();
}

/// Requests per second of `CLIENTS` keep-alive clients over `phase()`.
fn closed_loop(addr: SocketAddr) -> f64 {
    let (done, elapsed) = requests_in_closed_loop(addr);
    done as f64 / elapsed.as_secs_f64()
}

/// How many requests `CLIENTS` keep-alive clients made over `phase()`, and
/// the time they took.
fn requests_in_closed_loop(addr: SocketAddr) -> (u64, Duration) {
    let started = Instant::now();
    let done = on_each_client(addr, move |_, mut stream| {
        let mut done = 0u64;
        while started.elapsed() < phase() {
            exchange(&mut stream);
            done += 1;
        }
        done
    });
    (done.into_iter().sum(), started.elapsed())
}

/// Runs `work(client, stream)` for each of `CLIENTS` connections, each on a
/// thread pinned to the client's CPU; what they returned.
fn on_each_client<T: Send + 'static>(addr: SocketAddr, work: impl Fn(usize, TcpStream) -> T + Copy + Send + 'static) -> Vec<T> {
    let clients: Vec<_> = connect(addr)
        .into_iter()
        .enumerate()
        .map(|(client, stream)| {
            std::thread::spawn(move || {
                pin_to(client);
                work(client, stream)
            })
        })
        .collect();
    clients.into_iter().map(|c| c.join().unwrap()).collect()
}

/// Each request's latency at `FIXED_RATE` over `phase()`. A client sends on a
/// schedule (absolute deadlines, so a late request does not shift the rest).
fn paced(addr: SocketAddr) -> Vec<Duration> {
    let period = Duration::from_secs(1) * CLIENTS as u32 / FIXED_RATE;
    let latencies = on_each_client(addr, move |client, mut stream| {
        // The clients' schedules interleave.
        let started = Instant::now() + period * client as u32 / CLIENTS as u32;
        let mut latencies = Vec::new();
        for n in 0.. {
            let due = started + period * n;
            if due > started + phase() {
                break;
            }
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let sent = Instant::now();
            exchange(&mut stream);
            latencies.push(sent.elapsed());
        }
        latencies
    });
    latencies.into_iter().flatten().collect()
}

async fn wait_for_programs(daemon: &Daemon) {
    let started = Instant::now();
    while bpf_programs_of(daemon.pid()) == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "programs never attached; log:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What one way of running measured, over every round.
struct Measured {
    name: &'static str,
    /// Attaches its programs (none: detached).
    attach: Option<fn() -> Result<http_probe::Programs, String>>,
    requests_per_s: Vec<f64>,
    latencies: Vec<Duration>,
    /// Nanoseconds inside the programs per request, by the kernel's BPF statistics.
    program_ns: Vec<f64>,
}

/// Mean requests/s of `way` over that of `detached` (equal phases: all
/// requests over all time), and a 95 % interval by resampling the rounds.
fn ratio_of_means(way: &[f64], detached: &[f64]) -> (f64, f64, f64) {
    let ratio = |rounds: &mut dyn Iterator<Item = usize>| {
        let (sum_way, sum_detached) = rounds.fold((0.0, 0.0), |(a, b), r| (a + way[r], b + detached[r]));
        sum_way / sum_detached
    };
    let n = way.len();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let resampled: Vec<f64> = (0..2000).map(|_| ratio(&mut (0..n).map(|_| next()))).collect();
    (ratio(&mut (0..n)), quantile(&resampled, 0.025), quantile(&resampled, 0.975))
}

fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

fn quantile(values: &[f64], q: f64) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

/// The daemon, serving a granted http-statistics, counts this process's traffic.
async fn the_daemon_counts(addr: SocketAddr) {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "[plugins.http-statistics]\ngrants = [\"http-traffic\"]\n").unwrap();
    let files = [("http-statistics.wasm", guest("http-statistics"))];
    let daemon = Daemon::start(&files, &["--config", config.path().to_str().unwrap(), "--refresh-ms", "200"]);
    let mut client = Client::connect(&daemon.socket("http-statistics").await).await;
    client.get(&report_path("bench")).await;
    wait_for_programs(&daemon).await;
    let this_node = format!("{HOSTNAME};{}", std::process::id());
    let started = Instant::now();
    loop {
        tokio::task::spawn_blocking(move || closed_loop(addr)).await.unwrap();
        let report = client.get(&report_path("bench")).await.json;
        if report["Process"]["nodes"].get(&this_node).is_some() {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{this_node} never counted: {report}");
    }
}

#[tokio::main]
async fn main() {
    let way = |name, attach| Measured { name, attach, requests_per_s: vec![], latencies: vec![], program_ns: vec![] };
    let mut ways = vec![
        way("programs detached", None),
        way("on the syscall tracepoints (12 programs)", Some(|| http_probe::attach(Attachment::Tracepoints))),
        way("on the raw syscall tracepoints (2 programs)", Some(|| http_probe::attach(Attachment::RawTracepoints))),
        way("on the socket tracepoints (3 raw tracepoint programs, the default)", Some(|| http_probe::attach(Attachment::SocketTracepoints))),
        way("floor: 2 programs that return at once, on the raw syscall tracepoints", Some(|| http_probe::attach_floor(Attachment::RawTracepoints))),
        way("floor: 3 programs that return at once, on the socket tracepoints", Some(|| http_probe::attach_floor(Attachment::SocketTracepoints))),
    ];
    let addr = serve();
    for round in 0..rounds() {
        for at in 0..ways.len() {
            let count = ways.len();
            let way = &mut ways[(round + at) % count];
            let name = way.name;
            let programs = way.attach.map(|attach| attach().unwrap_or_else(|why| panic!("{name}: {why}")));
            way.requests_per_s.push(tokio::task::spawn_blocking(move || closed_loop(addr)).await.unwrap());
            if round % 3 == 0 {
                way.latencies.extend(tokio::task::spawn_blocking(move || paced(addr)).await.unwrap());
            }
            drop(programs);
        }
    }
    // The programs' own time per request, from the kernel's statistics: a
    // measure this VM's drift moves far less (it counts time in the programs,
    // not requests per wall-clock second), but which has the statistics' own
    // clock reads in it, so it is taken apart from the rounds above.
    let stats_on = aya::sys::enable_stats(aya::sys::Stats::RunTime).expect("BPF_ENABLE_STATS");
    for _ in 0..rounds().div_ceil(6) {
        for way in ways.iter_mut().skip(1) {
            let programs = (way.attach.unwrap())().unwrap();
            let (requests, _) = tokio::task::spawn_blocking(move || requests_in_closed_loop(addr)).await.unwrap();
            let (run_time, _) = programs.run_time().unwrap();
            way.program_ns.push(run_time.as_nanos() as f64 / requests as f64);
        }
    }
    drop(stats_on);
    the_daemon_counts(addr).await;

    println!(
        "## HTTP counting with eBPF: cost to the traced traffic ({} rounds of {:?} per measure, {CLIENTS} keep-alive client)\n",
        rounds(),
        phase()
    );
    println!(
        "A loopback HTTP/1.1 server and its client in one process, tiny requests and responses (nearly all time in the \
         traced syscalls), the client and its server thread pinned to one CPU: requests/s of a closed-loop client, and \
         latency at a fixed {FIXED_RATE} requests/s sent on a schedule (every request of every round, write to last byte \
         of the answer, in every third round). The daemon's programs are attached and detached by its own loader several \
         times a second, the ways in a rotating order each round (these VMs' speed moves by ±10 % from one phase to the \
         next); a ratio of requests/s is every request of every round of a way over all its time, against the same of \
         detached, with a 95 % interval from resampling the rounds. A daemon serving http-statistics counted the same \
         traffic.\n"
    );
    println!("| loopback HTTP server | requests/s | ratio to detached (95 % interval) | p50 at {FIXED_RATE}/s | p99 at {FIXED_RATE}/s | p99 ratio to detached |");
    println!("|---|---|---|---|---|---|");
    let detached = stats(ways[0].latencies.clone());
    let mut ratio_of = Vec::new();
    for way in &ways {
        let latency = stats(way.latencies.clone());
        let (ratio, low, high) = ratio_of_means(&way.requests_per_s, &ways[0].requests_per_s);
        ratio_of.push(ratio);
        println!(
            "| {} | {:.0} | {ratio:.3} ({low:.3}–{high:.3}) | {:.1} µs | {:.1} µs | {:.3} |",
            way.name,
            way.requests_per_s.iter().sum::<f64>() / way.requests_per_s.len() as f64,
            latency.p50.as_secs_f64() * 1e6,
            latency.p99.as_secs_f64() * 1e6,
            latency.p99.as_secs_f64() / detached.p99.as_secs_f64()
        );
    }
    println!();
    println!("| loopback HTTP server | ns inside the programs per request (BPF statistics, median of rounds) | share of a detached request's CPU |");
    println!("|---|---|---|");
    let detached_ns = 1e9 / median(&ways[0].requests_per_s) * CLIENTS as f64;
    for way in ways.iter().skip(1) {
        let ns = median(&way.program_ns);
        println!("| {} | {ns:.0} | {:.1} % |", way.name, ns / detached_ns * 100.0);
    }
    println!();
    for (name, programs, floor) in [("raw syscall", ratio_of[2], ratio_of[4]), ("socket", ratio_of[3], ratio_of[5])] {
        println!(
            "- On the {name} tracepoints the programs cost {:.1} % of requests/s: {:.1} % is the kernel's (programs that do \
             nothing cost that much alone), {:.1} % their counting.",
            (1.0 - programs) * 100.0,
            (1.0 - floor) * 100.0,
            (floor - programs) * 100.0
        );
    }
    println!(
        "\nA program on the raw tracepoints makes every syscall of every process take the kernel's traced path; the \
         socket tracepoints fire only at the end of a socket send or receive, and their programs are raw tracepoint \
         programs, which get the event's arguments without the kernel filling a trace record first; they leave the \
         connections this host opened alone (marked at TCP's connect), so of a request's four socket calls here two read \
         the caller's buffer. fentry/fexit programs (cheaper still \
         elsewhere) are refused here: this kernel is in integrity lockdown, and BPF_PROG_LOAD of a tracing program \
         fails with EPERM before the verifier runs; kprobes do not exist.\n"
    );
}
