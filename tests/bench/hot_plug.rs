//! Benchmark (not a test): how fast plugins come into service, and what they
//! cost in memory.
//!
//! - drop -> first good `GET /report`, cold (empty compile cache) and cached
//!   (compiled entry on disk), as a ratio;
//! - start-up time (spawn -> every socket answering) and RSS with 1, 10, 100
//!   and 500 copies of a small plugin, warm cache, as ratios to 1 copy;
//! - idle memory per plugin, from the RSS slope between 1 and 500 copies.
//!
//! `make bench` runs it; every figure is measured in this run, on this machine.

#[path = "../support/mod.rs"]
mod support;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{Client, Daemon, guest, report_path};

fn drop_rounds() -> usize {
    support::bench_count(5, 1)
}

fn copies() -> Vec<usize> {
    if support::bench_smoke() { vec![1, 3] } else { vec![1, 10, 100, 500] }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Copies `counter.wasm` into an empty running daemon's plugin dir and times
/// it until its first good report.
async fn drop_to_first_report(cache_dir: &Path) -> Duration {
    let daemon = Daemon::start(&[], &["--cache-dir", cache_dir.to_str().unwrap()]);
    daemon.wait_for_log("watching for plugins").await;
    let started = Instant::now();
    fs::copy(guest("counter"), daemon.plugin_dir.join("counter.wasm")).unwrap();
    let socket = daemon.socket_dir.join("counter.sock");
    loop {
        if let Ok(stream) = tokio::net::UnixStream::connect(&socket).await {
            drop(stream);
            let reply = Client::connect(&socket).await.get(&report_path("bench")).await;
            if reply.status == 200 {
                return started.elapsed();
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// (RSS, PSS) in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let field = |name: &str| -> u64 {
        let line = rollup.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (field("Rss:"), field("Pss:"))
}

/// Starts a daemon with `n` copies already in place; times spawn -> all answering.
async fn start_up(n: usize, cache_dir: &Path) -> (Duration, (u64, u64)) {
    let names: Vec<String> = (0..n).map(|i| format!("copy-{i}.wasm")).collect();
    let source = guest("counter");
    let files: Vec<(&str, std::path::PathBuf)> = names.iter().map(|name| (name.as_str(), source.clone())).collect();
    let started = Instant::now();
    let daemon = Daemon::start(&files, &["--cache-dir", cache_dir.to_str().unwrap()]);
    for i in 0..n {
        let socket = daemon.socket(&format!("copy-{i}")).await;
        let reply = Client::connect(&socket).await.get(&report_path("bench")).await;
        assert_eq!(reply.status, 200);
    }
    let took = started.elapsed();
    // Let the refreshers go idle (5 s without polls), then read the idle footprint.
    tokio::time::sleep(Duration::from_secs(support::bench_count(6, 0) as u64)).await;
    (took, memory_kib(daemon.pid()))
}

#[tokio::main]
async fn main() {
    let mut cold = Vec::new();
    let mut cached = Vec::new();
    for _ in 0..drop_rounds() {
        let cache = tempfile::tempdir().unwrap();
        cold.push(drop_to_first_report(cache.path()).await);
        cached.push(drop_to_first_report(cache.path()).await);
    }
    let (cold, cached) = (median(cold), median(cached));
    println!("## Cold start: a plugin file dropped in, to its first good report (median of {})\n", drop_rounds());
    println!("| compile | ms | × cold |\n|---|---|---|");
    println!("| cold (Cranelift) | {:.1} | 1.00 |", ms(cold));
    println!("| cache hit | {:.1} | {:.2} |", ms(cached), cached.as_secs_f64() / cold.as_secs_f64());

    let cache = tempfile::tempdir().unwrap();
    start_up(1, cache.path()).await; // warm the cache
    println!("\n## Start-up with N copies of counter.wasm (warm cache), and idle RSS\n");
    println!("| N | start-up ms | × N=1 | RSS MiB | PSS MiB | × N=1 (RSS) |\n|---|---|---|---|---|---|");
    let mut results = Vec::new();
    for n in copies() {
        let (took, rss) = start_up(n, cache.path()).await;
        results.push((n, took, rss));
    }
    let (_, one_took, (one_rss, one_pss)) = results[0];
    for (n, took, (rss, pss)) in &results {
        println!(
            "| {n} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            ms(*took),
            took.as_secs_f64() / one_took.as_secs_f64(),
            *rss as f64 / 1024.0,
            *pss as f64 / 1024.0,
            *rss as f64 / one_rss as f64
        );
    }
    let (n_max, _, (rss_max, pss_max)) = results[results.len() - 1];
    let slope = |max: u64, one: u64| max.saturating_sub(one) as f64 / (n_max - 1) as f64;
    println!(
        "\nIdle memory per extra plugin (slope from N=1 to N={n_max}): {:.0} KiB RSS, {:.0} KiB PSS.\n",
        slope(rss_max, one_rss),
        slope(pss_max, one_pss)
    );
}
