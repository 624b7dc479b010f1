//! Benchmark (not a test): a plugin shipped through a real OCI registry
//! (Debian's docker-registry on loopback), from daemon start to its first good
//! report: cold (nothing pulled, nothing compiled) and warm (a restart on the
//! same cache: the pulled blob and its compiled code are there, the tag is
//! checked again), for a Rust and a Python plugin, beside the same plugin
//! dropped into the plugin directory with a cold cache.
//!
//! `make bench` runs it; every figure is measured in this run, on this machine.

#[path = "../support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::registry::{Registry, push};
use support::{Client, Daemon, guest, report_path};

fn rounds() -> usize {
    support::bench_count(3, 1)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Until `id` answers a good report, from `started`.
async fn first_report(daemon: &Daemon, id: &str, started: Instant) -> Duration {
    let socket = daemon.socket(id).await;
    loop {
        let reply = Client::connect(&socket).await.get(&report_path("bench")).await;
        if reply.status == 200 {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// (dropped cold, pulled cold, pulled warm) for one plugin.
async fn times(registry: &Registry, plugin: &str) -> (Duration, Duration, Duration) {
    let image = format!("{}:bench", registry.image(plugin));
    push(&guest(plugin), &image, None);
    let (mut dropped, mut cold, mut warm) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds() {
        let started = Instant::now();
        let daemon = Daemon::start(&[("dropped.wasm", guest(plugin))], &["--no-self-plugin"]);
        dropped.push(first_report(&daemon, "dropped", started).await);
        drop(daemon);

        let config = tempfile::NamedTempFile::new().unwrap();
        let text = format!("[registry]\ninsecure = [\"{}\"]\n\n[sources.pulled]\nimage = \"{image}\"\n", registry.host());
        std::fs::write(config.path(), text).unwrap();
        let started = Instant::now();
        let mut daemon = Daemon::start(&[], &["--config", config.path().to_str().unwrap(), "--no-self-plugin"]);
        cold.push(first_report(&daemon, "pulled", started).await);
        assert!(daemon.terminate().success());
        let started = Instant::now();
        daemon.respawn();
        warm.push(first_report(&daemon, "pulled", started).await);
    }
    (support::stats(dropped).p50, support::stats(cold).p50, support::stats(warm).p50)
}

#[tokio::main]
async fn main() {
    let registry = Registry::start();
    println!("## A plugin from a registry: daemon start to its first good report (median of {})\n", rounds());
    println!("Cold: nothing pulled or compiled yet. Warm: a restart on the same cache (blob and compiled code kept; the tag is checked again).\n");
    println!("| plugin | dropped file, cold ms | pulled, cold ms | × dropped | pulled, warm ms | × dropped |\n|---|---|---|---|---|---|");
    let plugins: &[(&str, &str)] = if support::bench_smoke() { &[("Rust", "counter")] } else { &[("Rust", "counter"), ("Python", "conformance-python")] };
    for (lang, plugin) in plugins {
        let (dropped, cold, warm) = times(&registry, plugin).await;
        println!(
            "| {lang} ({plugin}) | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} |",
            ms(dropped),
            ms(cold),
            cold.as_secs_f64() / dropped.as_secs_f64(),
            ms(warm),
            warm.as_secs_f64() / dropped.as_secs_f64()
        );
    }
    println!();
}
