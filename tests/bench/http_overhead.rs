//! Benchmark (not a test): what the `http-traffic` eBPF programs cost the
//! traffic they count. A loopback HTTP/1.1 keep-alive server and its clients
//! run in this process (tiny requests and responses: the worst case, nearly all
//! time spent in the read and write syscalls the programs trace). Requests per
//! second with the programs attached (the daemon serving a granted
//! http-statistics) are compared with requests per second without them (the
//! plugin removed, so the programs are detached), alternating over rounds.
//!
//! Needs root, as the daemon loads eBPF programs.

#[path = "../support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use support::{Client, Daemon, HOSTNAME, bpf_programs_of, guest, report_path};

const CLIENTS: usize = 2;
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

fn rounds() -> usize {
    support::bench_count(5, 1)
}

fn phase() -> Duration {
    Duration::from_millis(if support::bench_smoke() { 300 } else { 2000 })
}

/// A keep-alive server, a thread per connection; its address.
fn serve() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            std::thread::spawn(move || {
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

/// Requests per second of `CLIENTS` keep-alive clients over `phase()`.
fn load(addr: std::net::SocketAddr) -> f64 {
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_nodelay(true).unwrap();
                let mut response = [0u8; RESPONSE.len()];
                let mut done = 0u64;
                while started.elapsed() < phase() {
                    stream.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n").unwrap();
                    stream.read_exact(&mut response).unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let done: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    done as f64 / started.elapsed().as_secs_f64()
}

async fn wait_for_programs(daemon: &Daemon, attached: bool) {
    let started = Instant::now();
    while (bpf_programs_of(daemon.pid()) > 0) != attached {
        assert!(started.elapsed() < Duration::from_secs(20), "programs attached: {}; log:\n{}", !attached, daemon.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Plugs the plugin in and polls it, so the programs are attached.
async fn attach(daemon: &Daemon) -> Client {
    std::fs::copy(guest("http-statistics"), daemon.plugin_dir.join("http-statistics.wasm")).unwrap();
    let mut client = Client::connect(&daemon.socket("http-statistics").await).await;
    client.get(&report_path("bench")).await;
    wait_for_programs(daemon, true).await;
    client
}

async fn detach(daemon: &Daemon) {
    std::fs::remove_file(daemon.plugin_dir.join("http-statistics.wasm")).unwrap();
    daemon.socket_gone("http-statistics").await;
    wait_for_programs(daemon, false).await;
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "[plugins.http-statistics]\ngrants = [\"http-traffic\"]\n").unwrap();
    let daemon = Daemon::start(&[], &["--config", config.path().to_str().unwrap(), "--refresh-ms", "500"]);
    let addr = serve();
    let this_node = format!("{HOSTNAME};{}", std::process::id());

    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..rounds() {
        without.push(tokio::task::spawn_blocking(move || load(addr)).await.unwrap());
        let mut client = attach(&daemon).await;
        with.push(tokio::task::spawn_blocking(move || load(addr)).await.unwrap());
        // The traffic was really counted: this process serves it.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let report = client.get(&report_path("bench")).await.json;
        assert!(report["Process"]["nodes"].get(&this_node).is_some(), "{this_node} not counted: {report}");
        detach(&daemon).await;
    }
    let (with, without) = (median(with), median(without));
    println!(
        "## HTTP counting with eBPF: cost to the traced traffic ({} rounds of {:?}, {CLIENTS} keep-alive clients)\n",
        rounds(),
        phase()
    );
    println!("| loopback HTTP server | requests/s |");
    println!("|---|---|");
    println!("| programs detached | {without:.0} |");
    println!("| programs attached (http-statistics granted) | {with:.0} |");
    println!("| ratio attached / detached | {:.3} |\n", with / without);
}
