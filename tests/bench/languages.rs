//! Benchmark (not a test): the conformance plugin in each SDK language, side by
//! side in one run: component size, cold load (compile, instantiate,
//! describe), load from the disk cache, instantiation alone, latency of a
//! served report and of a control (a guest call) through the daemon, and the
//! memory one more loaded instance costs.

#[path = "../support/mod.rs"]
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scope_wasm::host::HostServices;
use scope_wasm::load::loader::PluginSource;
use scope_wasm::plugin_id::PluginId;
use scope_wasm::run::engine::Runtime;
use scope_wasm::run::worker::PluginHandle;
use scope_wasm::{Overrides, Policy};
use serde_json::{Value, json};
use support::{Client, Daemon, guest, report_path, stats};

const LANGS: [&str; 6] = ["rust", "c", "go", "python", "python-shared", "js"];
/// Extra copies loaded to measure what one more instance costs.
const COPIES: usize = 4;
const MEMORY_MIB: &str = "256";

fn requests() -> usize {
    support::bench_count(2000, 20)
}

/// `took_ms` and `origin` of the daemon's "serving on" line for `id`.
fn load_line(log: &str, id: &str) -> Option<(String, u64)> {
    let line = log.lines().rev().find(|l| l.contains("serving on") && l.contains(&format!("plugin={id} ")))?;
    let field = |name: &str| line.split(&format!("{name}=")).nth(1)?.split_whitespace().next().map(str::to_owned);
    Some((field("origin")?, field("took_ms")?.parse().ok()?))
}

async fn wait_load_line(daemon: &Daemon, id: &str) -> (String, u64) {
    daemon.socket(id).await;
    let started = Instant::now();
    loop {
        if let Some(found) = load_line(&daemon.log(), id) {
            return found;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no load line for {id}:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn linear_memory(daemon: &Daemon, id: &str) -> u64 {
    let status: Value = serde_json::from_str(&daemon.admin_get("/status").await).unwrap();
    let plugin = status.as_array().unwrap().iter().find(|p| p["id"] == id).unwrap();
    plugin["stats"]["memory_bytes"].as_u64().unwrap()
}

/// Instantiation (and the `describe` call that follows it) in this process,
/// the median of a few.
async fn instantiate(file: &Path) -> Duration {
    let id = PluginId::parse("conformance").unwrap();
    let policy = Policy::load(None, &Overrides::default()).unwrap().for_plugin(&id);
    let source = PluginSource::read(id, file).unwrap();
    let (compiled, _) = Runtime::new(None).compile(&source, policy.limits.max_wasm_stack).await.unwrap();
    let services = Arc::new(HostServices::new("bench".into(), Path::new("/nonexistent/docker.sock")));
    let mut times = Vec::new();
    for _ in 0..support::bench_count(9, 1) {
        let started = Instant::now();
        let handle = PluginHandle::start(&compiled, services.clone(), policy.clone(), Default::default()).await.unwrap();
        times.push(started.elapsed());
        drop(handle);
    }
    stats(times).p50
}

struct Row {
    lang: &'static str,
    size: u64,
    cold: u64,
    cached: u64,
    instantiate: Duration,
    report_p50: Duration,
    control_p50: Duration,
    linear_kib: u64,
    rss_per_instance_kib: u64,
}

async fn measure(lang: &'static str) -> Row {
    let file = guest(&format!("conformance-{lang}"));
    let size = std::fs::metadata(&file).unwrap().len();
    let mut daemon = Daemon::start(&[("conformance.wasm", file.clone())], &["--memory-mib", MEMORY_MIB]);
    let (origin, cold) = wait_load_line(&daemon, "conformance").await;
    assert_eq!(origin, "Compiled");

    let mut client = Client::connect(&daemon.socket("conformance").await).await;
    let mut served = Vec::new();
    for _ in 0..requests() {
        let reply = client.get(&report_path("bench")).await;
        assert_eq!(reply.status, 200);
        served.push(reply.elapsed);
    }
    let add = json!({ "AppID": "b", "NodeID": "test-host;<host>", "Control": "add", "ControlArgs": { "n": "1" } }).to_string();
    let mut controls = Vec::new();
    for _ in 0..requests() {
        let reply = client.post("/control", add.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        controls.push(reply.elapsed);
    }
    let linear_kib = linear_memory(&daemon, "conformance").await / 1024;

    // What more instances of the same plugin cost the daemon (code is shared).
    let before = rss_kib(daemon.pid());
    for copy in 0..COPIES {
        std::fs::copy(&file, daemon.plugin_dir.join(format!("copy-{copy}.wasm"))).unwrap();
    }
    for copy in 0..COPIES {
        let mut client = Client::connect(&daemon.socket(&format!("copy-{copy}")).await).await;
        assert_eq!(client.get(&report_path("bench")).await.status, 200);
    }
    let rss_per_instance_kib = rss_kib(daemon.pid()).saturating_sub(before) / COPIES as u64;
    for copy in 0..COPIES {
        std::fs::remove_file(daemon.plugin_dir.join(format!("copy-{copy}.wasm"))).unwrap();
    }

    // The first restart reads and hashes the file (now settled) and remembers
    // its hash; every later one finds the entry by it, as on a host whose
    // plugins are in place: that is the load measured.
    daemon.restart();
    let (origin, _) = wait_load_line(&daemon, "conformance").await;
    assert_eq!(origin, "CacheHit", "{}", daemon.log());
    daemon.restart();
    let (origin, cached) = wait_load_line(&daemon, "conformance").await;
    assert_eq!(origin, "CacheHit", "{}", daemon.log());
    drop(daemon);

    Row {
        lang,
        size,
        cold,
        cached,
        instantiate: instantiate(&file).await,
        report_p50: stats(served).p50,
        control_p50: stats(controls).p50,
        linear_kib,
        rss_per_instance_kib,
    }
}

#[tokio::main]
async fn main() {
    let mut rows = Vec::new();
    for lang in LANGS {
        rows.push(measure(lang).await);
    }
    let rust_control = rows[0].control_p50.as_secs_f64();
    println!("## The conformance plugin in every SDK language ({} requests each)\n", requests());
    println!(
        "Cold load: compile, instantiate and `describe`, as the daemon logs it. Cache-hit load: the same at a \
         restart, of a file whose hash the cache remembers (every restart after its first). Instantiate: a new instance and \
         its `describe` call, in process. Report: `GET /report` over the socket, answered from memory. Control: \
         `POST /control` (`add`), a guest call that renders a report. Memory: the instance's linear memory after \
         the run, and the daemon's RSS for each of {COPIES} more instances of the same file.\n"
    );
    println!("| language | component | cold load | cache-hit load | instantiate | report p50 | control p50 | control vs Rust | linear memory | RSS per instance |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {:.1} MiB | {} ms | {} ms | {:.2} ms | {:.3} ms | {:.3} ms | ×{:.1} | {:.1} MiB | {:.1} MiB |",
            row.lang,
            row.size as f64 / 1048576.0,
            row.cold,
            row.cached,
            row.instantiate.as_secs_f64() * 1e3,
            row.report_p50.as_secs_f64() * 1e3,
            row.control_p50.as_secs_f64() * 1e3,
            row.control_p50.as_secs_f64() / rust_control,
            row.linear_kib as f64 / 1024.0,
            row.rss_per_instance_kib as f64 / 1024.0,
        );
    }
    println!();
    if !support::bench_smoke() {
        distinct_python_plugins().await;
    }
}

/// PSS of the daemon's whole process.
fn pss_kib(pid: u32) -> u64 {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let line = rollup.lines().find(|l| l.starts_with("Pss:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The Python plugin made into another file: a custom section appended (its
/// content hash, and so its compiled code, differ; its behaviour does not).
fn distinct_copy(bytes: &[u8], n: usize) -> Vec<u8> {
    let mut section = Vec::new();
    support::leb(3, &mut section);
    section.extend_from_slice(b"pad");
    section.extend_from_slice(&(n as u64).to_le_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    support::leb(section.len(), &mut out);
    out.extend_from_slice(&section);
    out
}

/// 10 Python plugins from different files, each the conformance app with a
/// label of its own, built on the shared Python runtime (`build.sh
/// python-shared`, as `scope-guest-build attach-source` does it).
fn distinct_shared_python_plugins(dir: &Path) -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let app = std::fs::read_to_string(root.join("guests/conformance-python/app.py")).unwrap();
    (0..DISTINCT)
        .map(|n| {
            let source = dir.join(format!("app-{n}"));
            std::fs::create_dir_all(&source).unwrap();
            std::fs::write(source.join("app.py"), app.replace("Conformance (Python)", &format!("Conformance (Python {n})"))).unwrap();
            let path = dir.join(format!("shared-{n}.wasm"));
            support::attach_to_shared_python_runtime(&source, &path);
            path
        })
        .collect()
}

const DISTINCT: usize = 10;

/// PSS of a daemon without plugins, with the first of `files`, and with all:
/// what `files.len()` Python plugins from different files cost against one.
async fn pss_of_distinct(files: &[std::path::PathBuf]) -> (u64, u64, u64) {
    let daemon = Daemon::start(&[], &["--memory-mib", MEMORY_MIB]);
    let settle = || tokio::time::sleep(Duration::from_secs(2));
    settle().await;
    let baseline = pss_kib(daemon.pid());
    let mut pss = Vec::new();
    for (n, file) in files.iter().enumerate() {
        std::fs::copy(file, daemon.plugin_dir.join(format!("py{n}.wasm"))).unwrap();
        if n == 0 || n == files.len() - 1 {
            for m in 0..=n {
                let mut client = Client::connect(&daemon.socket(&format!("py{m}")).await).await;
                assert_eq!(client.get(&report_path("bench")).await.status, 200);
            }
            settle().await;
            pss.push(pss_kib(daemon.pid()));
        }
    }
    (baseline, pss[0], pss[1])
}

/// What 10 Python plugins from different files cost the daemon against one,
/// built each on its own (nothing shared but the daemon) and on the shared
/// Python runtime (one compiled interpreter for all).
async fn distinct_python_plugins() {
    const N: usize = DISTINCT;
    let bytes = std::fs::read(guest("conformance-python")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let own: Vec<_> = (0..N)
        .map(|n| {
            let path = dir.path().join(format!("py{n}.wasm"));
            std::fs::write(&path, distinct_copy(&bytes, n)).unwrap();
            path
        })
        .collect();
    let shared = distinct_shared_python_plugins(dir.path());
    println!("## {N} Python plugins from different files (PSS of the daemon)\n");
    println!(
        "Built on their own (`build.sh python`): each file is the conformance plugin with a custom section of its own \
         appended, so each is compiled and mapped on its own. On the shared runtime (`build.sh python-shared`): each \
         file is the runtime with the conformance app, its label changed, attached; all share one compile. The \
         daemon's PSS without plugins, with one, and with {N}.\n"
    );
    println!("| built | no plugins MiB | 1 plugin MiB | {N} plugins MiB | {N} over no plugins MiB | × one (over no plugins) | whole process {N} × 1 |");
    println!("|---|---|---|---|---|---|---|");
    for (built, files) in [("each on its own", &own), ("on the shared runtime", &shared)] {
        let (baseline, one, ten) = pss_of_distinct(files).await;
        let mib = |kib: u64| kib as f64 / 1024.0;
        println!(
            "| {built} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
            mib(baseline),
            mib(one),
            mib(ten),
            mib(ten - baseline),
            (ten - baseline) as f64 / (one - baseline) as f64,
            ten as f64 / one as f64
        );
    }
    println!();
}
