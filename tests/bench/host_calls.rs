//! Benchmark (not a test): what a host capability call costs a guest, as a
//! ratio to the same work done natively in this process, in the same run.
//!
//! - procfs: a guest reading `/proc/stat` (and `/proc/<pid>/status`) in a loop,
//!   timed inside the guest, against `std::fs::read_to_string` here;
//! - docker: a guest listing all containers in a loop, against a keep-alive
//!   HTTP client here that GETs and parses the same list.
//!
//! Needs the private dockerd of `make test`: `make bench` starts one.

#[path = "../support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyperlocal::{UnixClientExt, UnixConnector};
use support::docker::{Containers, Engine};
use support::{Client, Daemon, attempt, guest, report_path};

fn rounds() -> usize {
    support::bench_count(15, 2)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Per-call time inside the guest: `n` calls timed by the guest, median of rounds.
async fn in_guest(client: &mut Client, what: &str, path: &str, n: u32) -> Duration {
    let mut samples = Vec::new();
    for _ in 0..rounds() {
        let result = attempt(client, "repeat", &[("what", what), ("path", path), ("n", &n.to_string())]).await;
        let total_ns: u64 = result.strip_prefix("ok:").unwrap_or_else(|| panic!("{result}")).parse().unwrap();
        samples.push(Duration::from_nanos(total_ns / u64::from(n)));
    }
    median(samples)
}

fn native_read(path: &str, n: u32) -> Duration {
    let mut samples = Vec::new();
    for _ in 0..rounds() {
        let started = Instant::now();
        for _ in 0..n {
            std::hint::black_box(std::fs::read_to_string(path).unwrap());
        }
        samples.push(started.elapsed() / n);
    }
    median(samples)
}

async fn native_list(engine: &Engine, n: u32) -> Duration {
    let client: HttpClient<UnixConnector, Empty<Bytes>> = HttpClient::unix();
    let uri: hyper::Uri = hyperlocal::Uri::new(&engine.socket, "/v1.41/containers/json?all=1").into();
    let mut samples = Vec::new();
    for _ in 0..rounds() {
        let started = Instant::now();
        for _ in 0..n {
            let body = client.get(uri.clone()).await.unwrap().into_body().collect().await.unwrap().to_bytes();
            std::hint::black_box(serde_json::from_slice::<serde_json::Value>(&body).unwrap());
        }
        samples.push(started.elapsed() / n);
    }
    median(samples)
}

fn row(name: &str, guest: Duration, native: Duration) {
    println!(
        "| {name} | {:.1} | {:.1} | {:.2} |",
        guest.as_secs_f64() * 1e6,
        native.as_secs_f64() * 1e6,
        guest.as_secs_f64() / native.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let engine = Engine::from_env();
    let mut made = Containers::new(&engine);
    for _ in 0..5 {
        made.make(true, &["-l", "scope-wasm-bench=1"]);
    }
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "[plugins.escape-artist]\ngrants = [\"procfs\", \"docker\"]\n").unwrap();
    let daemon = Daemon::start(
        &[("escape-artist.wasm", guest("escape-artist"))],
        &["--config", config.path().to_str().unwrap(), "--docker-socket", engine.socket.to_str().unwrap()],
    );
    let mut client = Client::connect(&daemon.socket("escape-artist").await).await;
    assert_eq!(client.get(&report_path("bench")).await.status, 200);
    let daemon_pid = daemon.pid();

    println!("## Host capability calls vs the same work natively (median per call, {} rounds)\n", rounds());
    println!("| call | guest µs | native µs | ratio |");
    println!("|---|---|---|---|");
    let status = format!("{daemon_pid}/status");
    row("procfs read /proc/stat", in_guest(&mut client, "read", "stat", 200).await, native_read("/proc/stat", 200));
    row(
        "procfs read /proc/<pid>/status",
        in_guest(&mut client, "read", &status, 200).await,
        native_read(&format!("/proc/{status}"), 200),
    );
    let containers = engine.get_json("/containers/json?all=1").await.as_array().unwrap().len();
    row(
        &format!("docker list ({containers} containers)"),
        in_guest(&mut client, "containers", "", 20).await,
        native_list(&engine, 20).await,
    );
}
