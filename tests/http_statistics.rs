//! The http-statistics port and the `http-traffic` capability behind it, for
//! real: the host's eBPF programs count a real Python HTTP server's requests and
//! responses, and the plugin's report (read over the daemon's socket) carries
//! rates that add up to exactly the traffic sent. Needs root (the daemon loads
//! eBPF programs), as `make test` runs.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::DateTime;
use serde_json::Value;
use support::{Client, Daemon, HOSTNAME, bpf_programs_of, guest, report_path};

/// The refresher's interval: the guest computes a rate every this often.
const REFRESH_MS: &str = "300";

fn start(config: &str, wrapper: &[&str]) -> (Daemon, tempfile::NamedTempFile) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), config).unwrap();
    let files = [("http-statistics.wasm", guest("http-statistics")), ("counter.wasm", guest("counter"))];
    let args = ["--config", file.path().to_str().unwrap(), "--refresh-ms", REFRESH_MS];
    (Daemon::start_under(wrapper, &files, None, &args), file)
}

const GRANTED: &str = "[plugins.http-statistics]\ngrants = [\"http-traffic\"]\n";

/// Python's own `http.server` on a free loopback port, serving an empty
/// directory: `/` answers 200, `/missing` 404, and POST 501.
struct PythonServer {
    child: Child,
    port: u16,
    _root: tempfile::TempDir,
}

impl PythonServer {
    fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(root.path())
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting python3 -m http.server");
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.split(" port ").nth(1).and_then(|rest| rest.split_whitespace().next()).and_then(|p| p.parse().ok());
        let port = port.unwrap_or_else(|| panic!("no port in {line:?}"));
        Self { child, port, _root: root }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One request on its own connection (the server speaks HTTP/1.0); the status code.
    fn request(&self, method: &str, path: &str) -> u16 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        // One write: `write!` on the stream would send each piece on its own,
        // and a request line split across reads is not counted (see http-traffic.wit).
        let request = format!("{method} {path} HTTP/1.0\r\nHost: test\r\nContent-Length: 0\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("{response}"))
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn millis(date: &Value) -> i64 {
    DateTime::parse_from_rfc3339(date.as_str().unwrap()).unwrap().timestamp_millis()
}

/// What a rate metric adds up to: each sample's rate times the time since the
/// reading before it. Every reading's time is in the report, as the time of some
/// live process's sample (the daemon's own node, which serves our polls, has
/// one at every reading), so the sum is the count itself.
fn count_of(report: &Value, node: &str, metric: &str) -> f64 {
    let nodes = report["Process"]["nodes"].as_object().unwrap();
    let readings: BTreeSet<i64> = nodes
        .values()
        .flat_map(|n| n["metrics"].as_object().unwrap().values())
        .flat_map(|m| m["samples"].as_array().unwrap())
        .map(|s| millis(&s["date"]))
        .collect();
    let Some(samples) = nodes.get(node).and_then(|n| n["metrics"][metric]["samples"].as_array()) else { return 0.0 };
    samples
        .iter()
        .map(|sample| {
            let at = millis(&sample["date"]);
            // The oldest sample of all has no reading before it in the report: it counts nothing.
            let before = readings.range(..at).next_back().copied().unwrap_or(at);
            sample["value"].as_f64().unwrap() * (at - before) as f64 / 1000.0
        })
        .sum()
}

/// Polls until `check` holds, or panics with the last report after `within`.
async fn poll_until(daemon: &Daemon, client: &mut Client, within: Duration, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let reply = client.get(&report_path("p")).await;
        if reply.status == 200 && check(&reply.json) {
            return reply.json;
        }
        assert!(started.elapsed() < within, "{what}; last answer ({}): {}\ndaemon log:\n{}", reply.status, reply.json, daemon.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn rates_of_a_real_servers_requests_and_responses_add_up_to_the_traffic_sent() {
    let (daemon, _config) = start(GRANTED, &[]);
    let mut client = Client::connect(&daemon.socket("http-statistics").await).await;
    let server = PythonServer::start();
    let server_node = format!("{HOSTNAME};{}", server.pid());

    // Counting is on once the daemon's own answers to these polls show up.
    let daemon_node = format!("{HOSTNAME};{}", daemon.pid());
    poll_until(&daemon, &mut client, Duration::from_secs(20), "the daemon's own HTTP traffic was never counted", |report| {
        report["Process"]["nodes"][&daemon_node]["metrics"]["http_requests_per_second"]["samples"]
            .as_array()
            .is_some_and(|samples| samples.len() >= 2)
    })
    .await;

    let sent = tokio::task::spawn_blocking(move || {
        let mut codes = Vec::new();
        for _ in 0..30 {
            codes.push(server.request("GET", "/"));
        }
        for _ in 0..12 {
            codes.push(server.request("GET", "/missing"));
        }
        for _ in 0..5 {
            codes.push(server.request("POST", "/"));
        }
        (server, codes)
    });
    let (server, codes) = sent.await.unwrap();
    let count = |code| codes.iter().filter(|c| **c == code).count() as f64;
    assert_eq!((count(200), count(404), count(501)), (30.0, 12.0, 5.0), "{codes:?}");

    let near = |a: f64, b: f64| (a - b).abs() < 0.01;
    let report = poll_until(&daemon, &mut client, Duration::from_secs(10), "the server's rates never added up", |report| {
        near(count_of(report, &server_node, "http_requests_per_second"), 47.0)
    })
    .await;
    for (code, expected) in [(200, 30.0), (404, 12.0), (501, 5.0)] {
        let metric = format!("http_{code}_responses_per_second");
        let counted = count_of(&report, &server_node, &metric);
        assert!(near(counted, expected), "{metric} adds up to {counted}, not {expected}: {report}");
        let template = &report["Process"]["metric_templates"][&metric];
        assert_eq!(template["label"], format!("HTTP Resp {code}/Second"), "{report}");
        assert_eq!(template["priority"].as_f64(), Some(f64::from(code) / 1000.0), "{report}");
    }
    let template = &report["Process"]["metric_templates"]["http_requests_per_second"];
    assert_eq!((template["label"].as_str(), template["priority"].as_f64()), (Some("HTTP Req/Second"), Some(0.1)));
    let rates = &report["Process"]["nodes"][&server_node]["metrics"]["http_requests_per_second"];
    assert!(rates["max"].as_f64().unwrap() > 0.0 && rates["min"] == 0.0, "{rates}");
    println!("a report with rates: {}", report["Process"]["nodes"][&server_node]);

    // A process that exited is dropped.
    drop(server);
    poll_until(&daemon, &mut client, Duration::from_secs(10), "the exited server is still reported", |report| {
        report["Process"]["nodes"].get(&server_node).is_none()
    })
    .await;
}

#[tokio::test]
async fn without_the_grant_the_plugin_is_denied_and_says_so() {
    let (daemon, _config) = start("", &[]);
    let mut client = Client::connect(&daemon.socket("http-statistics").await).await;
    let reply = client.get(&report_path("p")).await;
    let error = reply.json["error"].as_str().unwrap_or_else(|| panic!("{}: {}", reply.status, reply.json));
    assert!(error.contains("http-traffic is not granted"), "{error}");
    daemon.wait_for_log("http-traffic is not granted to this plugin").await;
}

#[tokio::test]
async fn without_privileges_the_capability_is_unavailable_and_the_daemon_serves_on() {
    // Root without a single capability: no bpf(2), no perf_event_open(2), no mount(2).
    let unprivileged = ["setpriv", "--bounding-set", "-all", "--inh-caps", "-all"];
    let (daemon, _config) = start(GRANTED, &unprivileged);
    let mut client = Client::connect(&daemon.socket("http-statistics").await).await;
    let started = Instant::now();
    let error = loop {
        let reply = client.get(&report_path("p")).await;
        if let Some(error) = reply.json["error"].as_str().filter(|e| e.contains("unavailable")) {
            break error.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never unavailable: {}", reply.json);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(error.contains("CAP_BPF") || error.contains("tracefs"), "the reason is missing: {error}");
    daemon.wait_for_log("http-traffic is unavailable").await;

    // The other plugin, and this one's socket, are unaffected.
    let mut counter = Client::connect(&daemon.socket("counter").await).await;
    let reply = counter.get(&report_path("p")).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert!(client.get(&report_path("p")).await.json["error"].as_str().is_some_and(|e| e.contains("unavailable")));
}

#[test]
fn check_says_whether_the_programs_attach() {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), GRANTED).unwrap();
    let check = |wrapper: &[&str]| {
        let output = support::command_under(wrapper)
            .arg("check").arg(guest("http-statistics")).arg("--config").arg(config.path()).output().unwrap();
        (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr))
    };
    let (ok, text) = check(&[]);
    assert!(ok && text.contains("http-traffic (granted; eBPF programs attached)"), "{text}");
    let (ok, text) = check(&["setpriv", "--bounding-set", "-all", "--inh-caps", "-all"]);
    assert!(!ok && text.contains("HTTP statistics are unavailable on this host"), "{text}");
}

#[tokio::test]
async fn one_set_of_programs_serves_every_granted_plugin_and_goes_with_the_last() {
    let config = "[plugins.\"http-*\"]\ngrants = [\"http-traffic\"]\n";
    let (daemon, _config) = start(config, &[]);
    std::fs::copy(guest("http-statistics"), daemon.plugin_dir.join("http-second.wasm")).unwrap();
    for id in ["http-statistics", "http-second"] {
        let mut client = Client::connect(&daemon.socket(id).await).await;
        poll_until(&daemon, &mut client, Duration::from_secs(20), "no report", |report| report["Process"].is_object()).await;
    }
    // Six tracepoints, one program each, whatever the number of plugins.
    assert_eq!(bpf_programs_of(daemon.pid()), 6);

    std::fs::remove_file(daemon.plugin_dir.join("http-statistics.wasm")).unwrap();
    daemon.socket_gone("http-statistics").await;
    assert_eq!(bpf_programs_of(daemon.pid()), 6, "the other plugin still counts");

    std::fs::remove_file(daemon.plugin_dir.join("http-second.wasm")).unwrap();
    daemon.socket_gone("http-second").await;
    let started = Instant::now();
    while bpf_programs_of(daemon.pid()) > 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "programs still attached with no plugin using them");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
