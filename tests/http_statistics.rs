//! The http-statistics port and the `http-traffic` capability behind it, for
//! real: the host's eBPF programs count the requests and responses of real
//! servers (Python's http.server, Go's net/http, nginx, and one on the vectored
//! and message syscalls), over kept-alive and new connections, and the plugin's
//! report (read over the daemon's socket) carries rates that add up to exactly
//! the traffic sent. Needs root (the daemon loads
//! eBPF programs), as `make test` runs.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
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

/// A real HTTP server on a loopback port, stopped when dropped.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// The port in the server's first line on stdout (`... port 41234 ...`).
fn port_from_first_line(child: &mut Child) -> u16 {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.split("port ").nth(1).and_then(|rest| rest.split_whitespace().next()).and_then(|p| p.parse().ok());
    port.unwrap_or_else(|| panic!("no port in {line:?}"))
}

fn spawn(command: &mut Command) -> Child {
    command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap_or_else(|err| panic!("starting {command:?}: {err}"))
}

impl Server {
    /// Python's own `http.server` (recv_into and sendall: recvfrom(2) and
    /// sendto(2)), speaking HTTP/1.1, serving an empty directory: `/` answers
    /// 200, `/missing` 404, and POST 501 (errors close the connection).
    fn python() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = spawn(Command::new("python3").args(["-u", "-m", "http.server", "--protocol", "HTTP/1.1", "--bind", "127.0.0.1", "--directory"]).arg(dir.path()).arg("0"));
        let port = port_from_first_line(&mut child);
        Self { child, port, _dir: dir }
    }

    /// A Go `net/http` server (read(2) and write(2), and a one-byte read
    /// ahead between requests): 200, 201 for POST, 404.
    fn go() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("go-server");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/http_servers/go_server.go");
        let output = Command::new("go").arg("build").arg("-o").arg(&binary).arg(&source).env("GOTOOLCHAIN", "local").env("GOFLAGS", "-mod=mod").output().expect("running go build");
        assert!(output.status.success(), "go build: {}", String::from_utf8_lossy(&output.stderr));
        let mut child = spawn(&mut Command::new(&binary));
        let port = port_from_first_line(&mut child);
        Self { child, port, _dir: dir }
    }

    /// Debian's nginx, one process, serving a file (recv(2), and headers with
    /// writev(2) before the body's sendfile(2)): 200, 404, and 405 for POST.
    fn nginx() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "hello\n").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let d = dir.path().display();
        let config = format!(
            "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{}}\n\
             http {{ access_log off; sendfile on; keepalive_requests 10000;\n\
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               server {{ listen 127.0.0.1:{port}; root {d}; }} }}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), config).unwrap();
        let child = spawn(Command::new("/usr/sbin/nginx").arg("-e").arg(dir.path().join("error.log")).arg("-c").arg(dir.path().join("nginx.conf")));
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "nginx never listened: {}", std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port, _dir: dir }
    }

    /// A server reading with readv(2) or recvmsg(2) and answering with
    /// sendmsg(2) or writev(2) (alternating by connection): 200, 202, 404.
    fn vectored() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/http_servers/vector_server.py");
        let mut child = spawn(Command::new("python3").arg("-u").arg(script));
        let port = port_from_first_line(&mut child);
        Self { child, port, _dir: dir }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends each request (method, path) and gives its status code: over one
    /// connection kept open as long as the server allows (`keep_alive`), or
    /// each on a new one. Each request goes out in one write, after the answer
    /// to the one before, so it starts the server's read.
    fn exchange(&self, requests: &[(&str, &str)], keep_alive: bool) -> Vec<u16> {
        let mut codes = Vec::new();
        let mut connection: Option<BufReader<TcpStream>> = None;
        for (method, path) in requests {
            let stream = connection.get_or_insert_with(|| BufReader::new(TcpStream::connect(("127.0.0.1", self.port)).unwrap()));
            let asked = if keep_alive { "keep-alive" } else { "close" };
            let request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: {asked}\r\nContent-Length: 0\r\n\r\n");
            stream.get_mut().write_all(request.as_bytes()).unwrap();
            let mut status = String::new();
            stream.read_line(&mut status).unwrap();
            let code = status.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{method} {path}: {status:?}"));
            let (mut length, mut close) = (None, !keep_alive);
            loop {
                let mut header = String::new();
                stream.read_line(&mut header).unwrap();
                let Some((name, value)) = header.trim_end().split_once(':') else { break };
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse::<usize>().ok(),
                    "connection" => close |= value.trim().eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
            match length {
                Some(length) => stream.read_exact(&mut vec![0; length]).unwrap(),
                None => {
                    stream.read_to_end(&mut Vec::new()).unwrap();
                    close = true;
                }
            }
            codes.push(code);
            if close {
                connection = None;
            }
        }
        codes
    }
}

impl Drop for Server {
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

/// The traffic each server gets: requests over a kept-alive connection and
/// over new ones, to each of its answers.
const TRAFFIC: [(&str, &str, bool, usize); 5] = [
    ("GET", "/", true, 25),
    ("GET", "/missing", true, 8),
    ("POST", "/", true, 4),
    ("GET", "/", false, 10),
    ("GET", "/missing", false, 3),
];

/// Runs the daemon with its programs on the raw syscall tracepoints, the
/// fallback where the socket ones (the default, tried first) cannot be used.
const ON_RAW_TRACEPOINTS: [&str; 2] = ["env", "SCOPE_WASM_HTTP_PROBE=raw-tracepoints"];

/// Runs the daemon with its programs on the syscall tracepoints, the last
/// fallback (another architecture, or no raw tracepoints).
const ON_TRACEPOINTS: [&str; 2] = ["env", "SCOPE_WASM_HTTP_PROBE=tracepoints"];

/// The programs each attachment loads: one per raw tracepoint, or one per
/// syscall tracepoint (entry of four writes, exit of four reads, and the
/// reads' entries that remember their buffers).
fn programs_of(attachment: &str) -> usize {
    match attachment {
        "the socket tracepoints" => 3,
        "the raw syscall tracepoints" => 2,
        "the syscall tracepoints" => 12,
        other => panic!("unknown attachment {other:?}"),
    }
}

/// Which attachment the daemon's log says it used.
async fn attachment_of(daemon: &Daemon) -> &'static str {
    let line = daemon.wait_for_log("http-traffic: eBPF programs attached to").await;
    ["the socket tracepoints", "the raw syscall tracepoints", "the syscall tracepoints"]
        .into_iter()
        .find(|attachment| line.contains(&format!("attached to {attachment} in")))
        .unwrap_or_else(|| panic!("no attachment named in {line:?}"))
}

/// The plugin's request and per-code rates for a real server add up to
/// exactly the traffic sent, and the server's node goes once it exits.
async fn counts_add_up(server: impl FnOnce() -> Server + Send + 'static, wrapper: &[&str]) {
    counts_of_traffic_add_up(server, wrapper, TRAFFIC.to_vec(), 3).await;
}

/// Sends `traffic` (method, path, over one kept-alive connection or each on a
/// new one, how many times) to the server and checks that the plugin's rates
/// add up to it, per request and per each of the `codes` status codes answered.
async fn counts_of_traffic_add_up(
    server: impl FnOnce() -> Server + Send + 'static,
    wrapper: &[&str],
    traffic: Vec<(&'static str, &'static str, bool, usize)>,
    codes_answered: usize,
) {
    let (daemon, _config) = start(GRANTED, wrapper);
    // The server first: building the Go one may take longer than the daemon
    // waits for a new connection's first request (5 s), as a probe sends at once.
    let server = tokio::task::spawn_blocking(server).await.unwrap();
    let mut client = Client::connect(&daemon.socket("http-statistics").await).await;
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
        for (method, path, keep_alive, times) in traffic {
            codes.extend(server.exchange(&vec![(method, path); times], keep_alive));
        }
        (server, codes)
    });
    let (server, codes) = sent.await.unwrap();
    let mut by_code: BTreeMap<u16, f64> = BTreeMap::new();
    for code in &codes {
        *by_code.entry(*code).or_default() += 1.0;
    }
    assert_eq!(by_code.len(), codes_answered, "kinds of answer: {codes:?}");
    let total = codes.len() as f64;

    let near = |a: f64, b: f64| (a - b).abs() < 0.01;
    // A report made between the server's read of the last request and its
    // write of the answer has counted one request more than answers: the wait
    // is for every count at once, and fails if any never gets to the traffic sent.
    let all_add_up = |report: &Value| {
        near(count_of(report, &server_node, "http_requests_per_second"), total)
            && by_code.iter().all(|(code, expected)| {
                near(count_of(report, &server_node, &format!("http_{code}_responses_per_second")), *expected)
            })
    };
    let what = format!("the server's counts never added up to {total} requests, by code {by_code:?}");
    let report = poll_until(&daemon, &mut client, Duration::from_secs(10), &what, all_add_up).await;
    for code in by_code.keys() {
        let metric = format!("http_{code}_responses_per_second");
        let template = &report["Process"]["metric_templates"][&metric];
        assert_eq!(template["label"], format!("HTTP Resp {code}/Second"), "{report}");
        assert_eq!(template["priority"].as_f64(), Some(f64::from(*code) / 1000.0), "{report}");
    }
    let template = &report["Process"]["metric_templates"]["http_requests_per_second"];
    assert_eq!((template["label"].as_str(), template["priority"].as_f64()), (Some("HTTP Req/Second"), Some(0.1)));
    let rates = &report["Process"]["nodes"][&server_node]["metrics"]["http_requests_per_second"];
    assert!(rates["max"].as_f64().unwrap() > 0.0 && rates["min"] == 0.0, "{rates}");

    // A process that exited is dropped.
    drop(server);
    poll_until(&daemon, &mut client, Duration::from_secs(10), "the exited server is still reported", |report| {
        report["Process"]["nodes"].get(&server_node).is_none()
    })
    .await;
}

#[tokio::test]
async fn pythons_http_server_is_counted_exactly() {
    counts_add_up(Server::python, &[]).await;
}

#[tokio::test]
async fn pythons_http_server_is_counted_exactly_on_the_raw_syscall_tracepoints() {
    counts_add_up(Server::python, &ON_RAW_TRACEPOINTS).await;
}

#[tokio::test]
async fn pythons_http_server_is_counted_exactly_on_the_syscall_tracepoints() {
    counts_add_up(Server::python, &ON_TRACEPOINTS).await;
}

#[tokio::test]
async fn a_go_net_http_server_is_counted_exactly() {
    counts_add_up(Server::go, &[]).await;
}

#[tokio::test]
async fn a_go_net_http_server_is_counted_exactly_on_the_raw_syscall_tracepoints() {
    counts_add_up(Server::go, &ON_RAW_TRACEPOINTS).await;
}

#[tokio::test]
async fn a_go_net_http_server_is_counted_exactly_on_the_syscall_tracepoints() {
    counts_add_up(Server::go, &ON_TRACEPOINTS).await;
}

#[tokio::test]
async fn nginx_is_counted_exactly() {
    counts_add_up(Server::nginx, &[]).await;
}

#[tokio::test]
async fn nginx_is_counted_exactly_on_the_raw_syscall_tracepoints() {
    counts_add_up(Server::nginx, &ON_RAW_TRACEPOINTS).await;
}

#[tokio::test]
async fn nginx_is_counted_exactly_on_the_syscall_tracepoints() {
    counts_add_up(Server::nginx, &ON_TRACEPOINTS).await;
}

#[tokio::test]
async fn a_server_on_readv_recvmsg_writev_and_sendmsg_is_counted_exactly() {
    counts_add_up(Server::vectored, &[]).await;
}

#[tokio::test]
async fn a_server_on_readv_recvmsg_writev_and_sendmsg_is_counted_exactly_on_the_raw_syscall_tracepoints() {
    counts_add_up(Server::vectored, &ON_RAW_TRACEPOINTS).await;
}

#[tokio::test]
async fn a_server_on_readv_recvmsg_writev_and_sendmsg_is_counted_exactly_on_the_syscall_tracepoints() {
    counts_add_up(Server::vectored, &ON_TRACEPOINTS).await;
}

/// With 16 counter slots per CPU (the programs have 1024), most of 100 status
/// codes from one server find their slot taken and are counted in the hash
/// map instead: every one still adds up exactly, as do the requests.
#[tokio::test]
async fn counts_beyond_the_counter_slots_add_up_exactly() {
    let traffic = (200..250).chain(400..450).map(|code| ("GET", &*format!("/status/{code}").leak(), true, 1)).collect();
    counts_of_traffic_add_up(Server::vectored, &["env", "SCOPE_WASM_HTTP_COUNTER_SLOTS=16"], traffic, 100).await;
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

#[tokio::test]
async fn an_unknown_attachment_is_refused_in_words() {
    let (daemon, _config) = start(GRANTED, &["env", "SCOPE_WASM_HTTP_PROBE=kprobes"]);
    let mut client = Client::connect(&daemon.socket("http-statistics").await).await;
    let log = daemon.wait_for_log("http-traffic is unavailable").await;
    assert!(
        log.contains(r#"SCOPE_WASM_HTTP_PROBE="kprobes" is none of "socket-tracepoints", "raw-tracepoints" and "tracepoints""#),
        "{log}"
    );
    assert_eq!(bpf_programs_of(daemon.pid()), 0, "nothing attached");
    let reply = client.get(&report_path("p")).await;
    let error = reply.json["error"].as_str().unwrap_or_else(|| panic!("{}: {}", reply.status, reply.json));
    assert!(error.contains("unavailable") && error.contains("kprobes"), "{error}");
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
    one_set_of_programs(&[], "the socket tracepoints").await;
}

#[tokio::test]
async fn one_set_of_programs_on_the_raw_syscall_tracepoints_serves_every_granted_plugin() {
    one_set_of_programs(&ON_RAW_TRACEPOINTS, "the raw syscall tracepoints").await;
}

#[tokio::test]
async fn one_set_of_programs_on_the_syscall_tracepoints_serves_every_granted_plugin() {
    one_set_of_programs(&ON_TRACEPOINTS, "the syscall tracepoints").await;
}

async fn one_set_of_programs(wrapper: &[&str], expected: &str) {
    let config = "[plugins.\"http-*\"]\ngrants = [\"http-traffic\"]\n";
    let (daemon, _config) = start(config, wrapper);
    std::fs::copy(guest("http-statistics"), daemon.plugin_dir.join("http-second.wasm")).unwrap();
    for id in ["http-statistics", "http-second"] {
        let mut client = Client::connect(&daemon.socket(id).await).await;
        poll_until(&daemon, &mut client, Duration::from_secs(20), "no report", |report| report["Process"].is_object()).await;
    }
    // One program per tracepoint, whatever the number of plugins.
    let attachment = attachment_of(&daemon).await;
    assert_eq!(attachment, expected, "x86-64 with Linux 6.3 or later is what CI runs on");
    let programs = programs_of(attachment);
    assert_eq!(bpf_programs_of(daemon.pid()), programs);

    std::fs::remove_file(daemon.plugin_dir.join("http-statistics.wasm")).unwrap();
    daemon.socket_gone("http-statistics").await;
    assert_eq!(bpf_programs_of(daemon.pid()), programs, "the other plugin still counts");

    std::fs::remove_file(daemon.plugin_dir.join("http-second.wasm")).unwrap();
    daemon.socket_gone("http-second").await;
    let started = Instant::now();
    while bpf_programs_of(daemon.pid()) > 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "programs still attached with no plugin using them");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
