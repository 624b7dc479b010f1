//! Benchmark (not a test): a healthy plugin's `GET /report` latency, alone and
//! while the whole fault zoo runs beside it in the same daemon, as a ratio.
//!
//! `make bench` runs it. Both runs happen here, one after the other, on the
//! same machine, so the ratio holds where absolute times drift.

#[path = "../support/mod.rs"]
mod support;

use std::time::Duration;

use support::{Client, Daemon, guest, report_path, stats};

const ZOO: [&str; 9] = [
    "loop-forever",
    "memory-bomb",
    "deep-recursion",
    "panic-on-second",
    "lying-report",
    "host-call-loop",
    "wasi-sleep",
    "slow-report",
    "fail-after-first",
];
fn requests() -> usize {
    support::bench_count(3000, 30)
}

/// Polls the healthy plugin `REQUESTS` times on one keep-alive connection, as the probe does.
async fn measure(daemon: &Daemon) -> Vec<Duration> {
    let mut client = Client::connect(&daemon.socket("counter").await).await;
    for _ in 0..requests() / 10 {
        client.get(&report_path("bench")).await; // warm up
    }
    let mut samples = Vec::with_capacity(requests());
    for _ in 0..requests() {
        let reply = client.get(&report_path("bench")).await;
        assert_eq!(reply.status, 200);
        samples.push(reply.elapsed);
    }
    samples
}

/// Keeps every zoo guest polled (and so refreshed, failing, backing off) until aborted.
fn drive_zoo(daemon: &Daemon) -> Vec<tokio::task::JoinHandle<()>> {
    ZOO.iter()
        .map(|id| {
            let socket = daemon.socket_dir.join(format!("{id}.sock"));
            tokio::spawn(async move {
                let mut client = Client::connect(&socket).await;
                loop {
                    client.get(&report_path("bench")).await;
                    let control = r#"{"AppID":"a","NodeID":"n","Control":"c","ControlArgs":null}"#;
                    client.post("/control", control).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect()
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    // Alone is measured before and after the zoo run (A-B-A), so drift over
    // the run does not pass for an effect of the zoo.
    let alone_daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &[]);
    let mut alone = measure(&alone_daemon).await;

    let mut files: Vec<(String, std::path::PathBuf)> = ZOO.iter().map(|id| (format!("{id}.wasm"), guest(id))).collect();
    files.push(("counter.wasm".into(), guest("counter")));
    let files: Vec<(&str, std::path::PathBuf)> = files.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    let daemon = Daemon::start(&files, &[]);
    // Time from request to answer of each zoo guest's first poll (it waits for
    // the first report, so this is the guest's own failure path).
    let mut first_answers = Vec::new();
    for id in ZOO {
        let mut client = Client::connect(&daemon.socket(id).await).await;
        let reply = client.get(&report_path("bench")).await;
        let error = reply.json["error"].as_str().unwrap_or("(ok)").to_owned();
        first_answers.push((id, reply.status.as_u16(), reply.elapsed, error));
    }
    let drivers = drive_zoo(&daemon);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_zoo = stats(measure(&daemon).await);
    drivers.iter().for_each(|d| d.abort());
    drop(daemon);
    alone.extend(measure(&alone_daemon).await);
    let alone = stats(alone);

    println!("## Deadline: the first GET /report of each fault-zoo guest\n");
    println!("| guest | status | ms | answer |");
    println!("|---|---|---|---|");
    for (id, status, elapsed, error) in &first_answers {
        println!("| {id} | {status} | {} | {} |", ms(*elapsed), error.chars().take(90).collect::<String>());
    }
    println!();
    println!("## A healthy neighbour's GET /report while the zoo runs\n");
    println!("Sequential requests on one keep-alive connection (alone: {} requests before and after the zoo run; beside the zoo: {}).\n", 2 * requests(), requests());
    println!("| run | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    for (name, s) in [("alone", &alone), ("beside the zoo", &with_zoo)] {
        println!("| {name} | {} | {} | {} | {} |", ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max));
    }
    let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
    println!(
        "| ratio (zoo / alone) | {:.2} | {:.2} | {:.2} | {:.2} |",
        ratio(alone.p50, with_zoo.p50),
        ratio(alone.p90, with_zoo.p90),
        ratio(alone.p99, with_zoo.p99),
        ratio(alone.max, with_zoo.max)
    );
}
