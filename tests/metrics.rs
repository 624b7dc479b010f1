//! The admin endpoint's `/metrics` follows the Prometheus conventions:
//! `promtool check metrics` finds no problem in it, call times are a real
//! histogram, health and state are one-hot series beside `up`, refused files
//! are labelled by their stem (nothing path-like in any label), and the daemon
//! counts its own compiles.
//!
//! Needs `promtool` (Debian's `prometheus` package): `make test-tools`.

mod support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Client, Daemon, guest, report_path};

/// `promtool check metrics` on `text`: its exit status and everything it printed.
fn promtool_check(text: &str) -> (bool, String) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            panic!("promtool is not installed (Debian package `prometheus`): run `make test-tools`")
        }
        Err(err) => panic!("running promtool: {err}"),
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A sample line of the text format: name, labels (in order), value.
fn parse_sample(line: &str) -> (String, Vec<(String, String)>, f64) {
    let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line:?}"));
    let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
    let Some((name, rest)) = series.split_once('{') else { return (series.to_owned(), Vec::new(), value) };
    let mut labels = Vec::new();
    let mut chars = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line:?}")).chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "{line:?}");
        let mut text = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => text.push('\n'),
                    Some(other) => text.push(other),
                    None => panic!("dangling escape: {line:?}"),
                },
                '"' => break,
                c => text.push(c),
            }
        }
        labels.push((key, text));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    (name.to_owned(), labels, value)
}

struct Metrics {
    /// (name, labels) -> value.
    samples: BTreeMap<(String, Vec<(String, String)>), f64>,
}

impl Metrics {
    fn parse(text: &str) -> Metrics {
        let mut samples = BTreeMap::new();
        for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (name, labels, value) = parse_sample(line);
            assert!(samples.insert((name, labels), value).is_none(), "duplicate series: {line}\n{text}");
        }
        Metrics { samples }
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.samples.get(&(name.to_owned(), labels)).copied()
    }

    /// The samples of `name` whose `plugin` label is `plugin`, by their other labels.
    fn of(&self, name: &str, plugin: &str) -> Vec<(Vec<(String, String)>, f64)> {
        self.samples
            .iter()
            .filter(|((n, labels), _)| n == name && labels.first().is_some_and(|(k, v)| k == "plugin" && v == plugin))
            .map(|((_, labels), value)| (labels[1..].to_vec(), *value))
            .collect()
    }
}

/// Waits until the daemon's `/status` satisfies `ready`, following its state
/// (a compile on a busy machine can take long) rather than the clock.
async fn status_until(daemon: &Daemon, what: &str, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let status: Value = serde_json::from_str(&daemon.admin_get("/status").await).unwrap();
        let plugins = status.as_array().unwrap().clone();
        if ready(&plugins) {
            return plugins;
        }
        let loading = plugins.iter().any(|p| matches!(p["state"].as_str(), Some("queued" | "compiling")));
        let limit = if loading { Duration::from_secs(30 * 60) } else { Duration::from_secs(60) };
        assert!(started.elapsed() < limit, "never {what}: {status:#}\ndaemon log:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn find<'a>(plugins: &'a [Value], id: &str) -> Option<&'a Value> {
    plugins.iter().find(|p| p["id"].as_str().is_some_and(|i| i == id || i.ends_with(&format!("/{id}"))))
}

#[tokio::test]
async fn metrics_pass_promtool_and_follow_the_conventions() {
    // Fail early, before a daemon is started, if promtool is missing.
    promtool_check("");

    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), b"not wasm at all").unwrap();
    let daemon = Daemon::start(
        &[
            ("counter.wasm", guest("counter")),
            ("fail-after-first.wasm", guest("fail-after-first")),
            ("Bad Name.wasm", guest("counter")),
            ("junk.wasm", garbage.path().to_owned()),
        ],
        &["--refresh-ms", "100"],
    );
    // The counter answers every poll; fail-after-first answers well only until
    // its second report (100 ms after load), so how many of its polls get 200
    // depends on when they come: only that it is polled matters here.
    for (id, must_answer) in [("counter", true), ("fail-after-first", false)] {
        let mut client = Client::connect(&daemon.socket(id).await).await;
        for _ in 0..4 {
            let status = client.get(&report_path("p")).await.status;
            assert!(status == 200 || !must_answer && status == 500, "{id}: {status}");
        }
    }
    let health = |plugins: &[Value], id: &str| find(plugins, id).and_then(|p| p["health"].as_str().map(str::to_owned));
    status_until(&daemon, "counter ok, fail-after-first failing, Bad Name refused, junk failed", |plugins| {
        health(plugins, "counter").as_deref() == Some("ok")
            && health(plugins, "fail-after-first").as_deref() == Some("failing")
            && find(plugins, "Bad Name.wasm").is_some_and(|p| p["state"] == "refused")
            && find(plugins, "junk").is_some_and(|p| p["state"] == "failed")
    })
    .await;

    let text = daemon.admin_get("/metrics").await;
    let (ok, problems) = promtool_check(&text);
    assert!(ok && problems.trim().is_empty(), "promtool check metrics: {problems}\n{text}");
    let metrics = Metrics::parse(&text);

    // No label value is path-like; the refused file is labelled by its stem.
    for (name, labels) in metrics.samples.keys() {
        for (key, value) in labels {
            assert!(!value.contains('/'), "{name}{{{key}={value:?}}}: a path in a label\n{text}");
        }
    }
    assert_eq!(metrics.get("scope_wasm_plugin_up", &[("plugin", "Bad Name")]), Some(0.0), "{text}");
    assert_eq!(metrics.get("scope_wasm_plugin_state", &[("plugin", "Bad Name"), ("state", "refused")]), Some(1.0), "{text}");
    assert_eq!(metrics.get("scope_wasm_refused_files", &[]), Some(1.0), "{text}");
    assert_eq!(metrics.get("scope_wasm_files_refused_total", &[]), Some(1.0), "{text}");

    // up is 0/1 without health or state in its labels; those are one-hot series.
    assert_eq!(metrics.get("scope_wasm_plugin_up", &[("plugin", "counter")]), Some(1.0), "{text}");
    assert_eq!(metrics.get("scope_wasm_plugin_up", &[("plugin", "fail-after-first")]), Some(1.0), "{text}");
    assert_eq!(metrics.get("scope_wasm_plugin_up", &[("plugin", "junk")]), Some(0.0), "{text}");
    for (plugin, health, state) in
        [("counter", "ok", "serving"), ("fail-after-first", "failing", "serving"), ("Bad Name", "down", "refused"), ("junk", "down", "failed")]
    {
        for (series, key, values, current) in [
            ("scope_wasm_plugin_health", "health", &["ok", "slow", "failing", "over-limits", "down"][..], health),
            ("scope_wasm_plugin_state", "state", &["serving", "queued", "compiling", "failed", "refused"][..], state),
        ] {
            let rows = metrics.of(series, plugin);
            let got: BTreeMap<&str, f64> = rows.iter().map(|(labels, v)| (labels[0].1.as_str(), *v)).collect();
            for value in values {
                let expected = if *value == current { 1.0 } else { 0.0 };
                assert_eq!(got.get(value), Some(&expected), "{series}{{plugin={plugin:?},{key}={value:?}}}\n{text}");
            }
            assert_eq!(rows.len(), values.len(), "{series} of {plugin}: {rows:?}");
        }
    }

    // Call times: a histogram whose count is the calls, cumulative buckets up to +Inf.
    for plugin in ["counter", "fail-after-first"] {
        let calls = metrics.get("scope_wasm_plugin_calls_total", &[("plugin", plugin)]).unwrap();
        let count = metrics.get("scope_wasm_plugin_call_seconds_count", &[("plugin", plugin)]).unwrap();
        assert!(calls >= 1.0, "{plugin}: {text}");
        assert_eq!(count, calls, "{plugin}: the histogram counts every call\n{text}");
        let sum = metrics.get("scope_wasm_plugin_call_seconds_sum", &[("plugin", plugin)]).unwrap();
        assert!(sum > 0.0, "{plugin}: {text}");
        let mut buckets: Vec<(f64, f64)> = metrics
            .of("scope_wasm_plugin_call_seconds_bucket", plugin)
            .into_iter()
            .map(|(labels, n)| {
                assert_eq!(labels[0].0, "le");
                (if labels[0].1 == "+Inf" { f64::INFINITY } else { labels[0].1.parse().unwrap() }, n)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let bounds: Vec<f64> = buckets.iter().map(|(le, _)| *le).collect();
        assert!(bounds.contains(&0.001) && bounds.contains(&0.5) && bounds.contains(&1.0), "{plugin}: {bounds:?}");
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, count)), "{plugin}: {text}");
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{plugin}: buckets are cumulative: {buckets:?}");
    }

    // The daemon's own series.
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(metrics.get("scope_wasm_build_info", &[("version", version)]), Some(1.0), "{text}");
    assert!(metrics.get("scope_wasm_compiles_total", &[]).unwrap() >= 1.0, "{text}");
    assert!(metrics.get("scope_wasm_compile_seconds_total", &[]).unwrap() > 0.0, "{text}");
    assert!(metrics.get("scope_wasm_compile_cache_hits_total", &[]).is_some(), "{text}");
}

/// A daemon restarted on its cache finds its plugins compiled: a cache hit, no compile.
#[tokio::test]
async fn a_restart_on_the_cache_counts_hits_not_compiles() {
    promtool_check("");
    let mut daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &[]);
    daemon.socket("counter").await;
    daemon.restart();
    daemon.socket("counter").await;
    let text = daemon.admin_get("/metrics").await;
    let metrics = Metrics::parse(&text);
    assert_eq!(metrics.get("scope_wasm_compiles_total", &[]), Some(0.0), "{text}");
    assert_eq!(metrics.get("scope_wasm_compile_cache_hits_total", &[]), Some(1.0), "{text}");
    let (ok, problems) = promtool_check(&text);
    assert!(ok && problems.trim().is_empty(), "promtool check metrics: {problems}\n{text}");
}
