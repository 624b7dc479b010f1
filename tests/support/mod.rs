//! Test harness: the real `scope-wasm` binary on temp directories, real compiled
//! guests, and an HTTP/1.1 client over the real UNIX socket.

#![allow(dead_code)]

pub mod cgroup;
pub mod chromium;
pub mod dev;
pub mod docker;
pub mod registry;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tempfile::TempDir;

/// The host name the daemon is told to use, so node IDs are predictable.
pub const HOSTNAME: &str = "test-host";

/// A compiled guest: `target/plugins/<id>.wasm` (shipped) or `target/zoo/<id>.wasm`.
/// `make test` builds them and points `SCOPE_WASM_GUESTS` at the target dir.
pub fn guest(id: &str) -> PathBuf {
    let root = guests_root();
    for dir in ["plugins", "zoo"] {
        let path = root.join(dir).join(format!("{id}.wasm"));
        if path.is_file() {
            return path;
        }
    }
    panic!("guest {id} not built under {}: run `make test` (it builds the guests first)", root.display());
}

/// Where `make test` built the guests: `SCOPE_WASM_GUESTS`, or the target dir.
fn guests_root() -> PathBuf {
    std::env::var_os("SCOPE_WASM_GUESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// A plugin file made of the shared Python runtime that `make guests` built
/// (`build.sh` keeps it by a fixed name) and the files under `source`, as
/// `guest-sdk/build.sh python-shared` makes one (`scope-guest-build attach-source`).
pub fn attach_to_shared_python_runtime(source: &Path, out: &Path) {
    let runtime = guests_root().join("guest-build/python-shared-runtime.wasm");
    assert!(runtime.exists(), "{} not built: run `make test` (it builds the guests first)", runtime.display());
    attach_source(&runtime, source, out);
}

/// `runtime` (any component) with the files of `source` attached in its
/// plugin source section, written to `out` (`scope-guest-build attach-source`).
pub fn attach_source(runtime: &Path, source: &Path, out: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let build = Command::new(env!("CARGO")).args(["build", "-q", "-p", "scope-guest-build"]).current_dir(&root).status().unwrap();
    assert!(build.success());
    let attached = Command::new(root.join("target/debug/scope-guest-build"))
        .arg("attach-source")
        .arg(runtime)
        .arg(source)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    assert!(attached.status.success(), "{}", String::from_utf8_lossy(&attached.stderr));
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_scope-wasm")
}

pub struct Daemon {
    child: Child,
    pub plugin_dir: PathBuf,
    pub socket_dir: PathBuf,
    pub cache_dir: PathBuf,
    extra_args: Vec<String>,
    /// A command the daemon runs under (e.g. `setpriv` dropping capabilities).
    wrapper: Vec<String>,
    log_path: PathBuf,
    _tmp: TempDir,
}

impl Daemon {
    /// Starts the daemon on a plugin dir holding `files` (name in the dir, source file).
    pub fn start(files: &[(&str, PathBuf)], extra_args: &[&str]) -> Daemon {
        Self::start_with_socket_dir(files, None, extra_args)
    }

    /// Like `start`, with sockets in `socket_dir` instead of a fresh temp dir.
    pub fn start_with_socket_dir(files: &[(&str, PathBuf)], socket_dir: Option<&Path>, extra_args: &[&str]) -> Daemon {
        Self::start_under(&[], files, socket_dir, extra_args)
    }

    /// Like `start_with_socket_dir`, with the daemon run by `wrapper` (a command
    /// and its arguments, the daemon's command line appended).
    pub fn start_under(wrapper: &[&str], files: &[(&str, PathBuf)], socket_dir: Option<&Path>, extra_args: &[&str]) -> Daemon {
        let tmp = tempfile::tempdir().unwrap();
        let plugin_dir = tmp.path().join("plugins");
        let socket_dir = socket_dir.map(Path::to_owned).unwrap_or_else(|| tmp.path().join("sockets"));
        let cache_dir = tmp.path().join("cache");
        fs::create_dir(&plugin_dir).unwrap();
        for (name, source) in files {
            if let Some(parent) = Path::new(name).parent() {
                fs::create_dir_all(plugin_dir.join(parent)).unwrap();
            }
            fs::copy(source, plugin_dir.join(name)).unwrap();
            // Deployed a while ago, as files are when a daemon (re)starts: a
            // fresh mtime would make the daemon wait for the file to settle.
            let earlier = std::time::SystemTime::now() - Duration::from_secs(60);
            fs::File::options().write(true).open(plugin_dir.join(name)).unwrap().set_modified(earlier).unwrap();
        }
        let log_path = tmp.path().join("daemon.log");
        let extra_args: Vec<String> = extra_args.iter().map(|a| a.to_string()).collect();
        let wrapper: Vec<String> = wrapper.iter().map(|a| a.to_string()).collect();
        let child = spawn(&wrapper, &plugin_dir, &socket_dir, &cache_dir, &extra_args, &log_path);
        Daemon { child, plugin_dir, socket_dir, cache_dir, extra_args, wrapper, log_path, _tmp: tmp }
    }

    /// SIGTERM, wait, and start again on the same directories (the log goes on).
    pub fn restart(&mut self) {
        assert!(self.terminate().success());
        self.respawn();
    }

    /// Starts again on the same directories, after `terminate`.
    pub fn respawn(&mut self) {
        self.child = spawn(&self.wrapper, &self.plugin_dir, &self.socket_dir, &self.cache_dir, &self.extra_args, &self.log_path);
    }

    pub fn admin_socket(&self) -> PathBuf {
        admin_socket_of(&self.cache_dir)
    }

    /// The plugin sockets, without the daemon's own (`scope-wasm.sock`).
    pub fn plugin_sockets(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.socket_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name != "scope-wasm.sock")
            .collect();
        names.sort();
        names
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `<id>.sock` is gone (its plugin removed).
    pub async fn socket_gone(&self, id: &str) {
        let path = self.socket_dir.join(format!("{id}.sock"));
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if !path.exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{id}.sock is still there; daemon log:\n{}", self.log());
    }

    /// Waits until `<id>.sock` accepts connections, following the daemon's own
    /// state rather than the clock: as long as its status says the plugin is
    /// queued or compiling (a cold compile of a big component on a busy
    /// machine can take minutes), it waits; otherwise it gives the daemon 60 s.
    pub async fn socket(&self, id: &str) -> PathBuf {
        let path = self.socket_dir.join(format!("{id}.sock"));
        let mut idle_since = Instant::now();
        let started = Instant::now();
        loop {
            if tokio::net::UnixStream::connect(&path).await.is_ok() {
                return path;
            }
            match self.plugin_state(id).await.as_deref() {
                Some("queued" | "compiling") if started.elapsed() < Duration::from_secs(30 * 60) => idle_since = Instant::now(),
                _ if idle_since.elapsed() > Duration::from_secs(60) => panic!("{id}.sock never came up; {}", self.account_of(id).await),
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the daemon says of `id` (its `/status` entry and the log lines
    /// naming it, then the whole log), for a failure message whose end a CI
    /// log may cut.
    pub async fn account_of(&self, id: &str) -> String {
        let entry = match tokio::net::UnixStream::connect(self.admin_socket()).await {
            Ok(_) => {
                let status: Value = serde_json::from_str(&self.admin_get("/status").await).unwrap_or_default();
                let entry = status.as_array().and_then(|all| all.iter().find(|p| p["id"] == id).cloned());
                entry.map_or_else(|| "not listed".to_owned(), |e| e.to_string())
            }
            Err(err) => format!("admin socket unreachable: {err}"),
        };
        let log = self.log();
        let file = format!("/{id}.wasm");
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(&format!("plugin={id} ")) || l.contains(&file)).collect();
        format!("its /status entry: {entry}\nits log lines:\n{}\nwhole daemon log:\n{log}", lines.join("\n"))
    }

    /// The plugin's `state` in the daemon's `/status`, if the daemon lists it.
    pub async fn plugin_state(&self, id: &str) -> Option<String> {
        let stream = tokio::net::UnixStream::connect(self.admin_socket()).await.ok()?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
        tokio::spawn(conn);
        let request = Request::get("/status").header("host", "admin").body(Full::new(Bytes::new())).ok()?;
        let body = sender.send_request(request).await.ok()?.into_body().collect().await.ok()?.to_bytes();
        let status: Value = serde_json::from_slice(&body).ok()?;
        let plugin = status.as_array()?.iter().find(|p| p["id"] == id)?;
        plugin["state"].as_str().map(str::to_owned)
    }

    /// Waits until the daemon's log contains `needle`.
    pub async fn wait_for_log(&self, needle: &str) -> String {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("daemon never logged {needle:?}; log:\n{}", self.log());
    }

    /// Waits until the log contains `needle`, a line to come of plugin `id`:
    /// as long as its status says it is queued or compiling it waits (as
    /// `socket` does); otherwise it gives the daemon 60 s.
    pub async fn wait_for_log_of(&self, id: &str, needle: &str) -> String {
        let mut idle_since = Instant::now();
        let started = Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            match self.plugin_state(id).await.as_deref() {
                Some("queued" | "compiling") if started.elapsed() < Duration::from_secs(30 * 60) => idle_since = Instant::now(),
                _ if idle_since.elapsed() > Duration::from_secs(60) => panic!("daemon never logged {needle:?}; {}", self.account_of(id).await),
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// GET on the admin socket (`/metrics`, `/status`, `/healthz`): the body.
    pub async fn admin_get(&self, path: &str) -> String {
        let stream = tokio::net::UnixStream::connect(self.admin_socket()).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        let request = Request::get(path).header("host", "admin").body(Full::new(Bytes::new())).unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    /// SIGTERM, then wait for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        // SAFETY: signalling our own child by its PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "daemon did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Each daemon's admin socket, beside its other temporary directories.
fn admin_socket_of(cache_dir: &Path) -> PathBuf {
    cache_dir.with_file_name("admin.sock")
}

/// The `scope-wasm` binary as a command, run by `wrapper` (a command and its
/// arguments) if there is one.
pub fn command_under<S: AsRef<std::ffi::OsStr>>(wrapper: &[S]) -> Command {
    match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(binary());
            command
        }
        None => Command::new(binary()),
    }
}

fn spawn(wrapper: &[String], plugin_dir: &Path, socket_dir: &Path, cache_dir: &Path, extra_args: &[String], log_path: &Path) -> Child {
    let log = fs::OpenOptions::new().create(true).append(true).open(log_path).unwrap();
    let mut command = command_under(wrapper);
    command.arg("run").arg("--plugin-dir").arg(plugin_dir).arg("--socket-dir").arg(socket_dir);
    if !extra_args.iter().any(|a| a == "--cache-dir" || a == "--no-cache") {
        command.arg("--cache-dir").arg(cache_dir);
    }
    if !extra_args.iter().any(|a| a == "--admin-socket") {
        command.arg("--admin-socket").arg(admin_socket_of(cache_dir));
    }
    command
        .args(["--hostname", HOSTNAME])
        .args(extra_args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting scope-wasm")
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    /// The body exactly as sent.
    pub body: Bytes,
    pub json: Value,
    pub elapsed: Duration,
}

/// One HTTP/1.1 connection over a UNIX socket, reused for every request (as the
/// probe's Go transport does).
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
}

impl Client {
    pub async fn connect(socket: &Path) -> Client {
        // A full listen backlog refuses at once (EAGAIN on UNIX sockets): retry.
        let stream = loop {
            match tokio::net::UnixStream::connect(socket).await {
                Ok(stream) => break stream,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => tokio::task::yield_now().await,
                Err(err) => panic!("connecting to {}: {err}", socket.display()),
            }
        };
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        Client { sender }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send(Method::GET, path, Bytes::new()).await
    }

    pub async fn post(&mut self, path: &str, body: impl Into<Bytes>) -> Reply {
        self.send(Method::POST, path, body.into()).await
    }

    pub async fn send(&mut self, method: Method, path: &str, body: Bytes) -> Reply {
        self.try_send(method, path, body).await.unwrap_or_else(|err| panic!("{err}"))
    }

    /// `GET path`, or why the connection gave no answer (as a poller that
    /// counts failures, like the probe, needs).
    pub async fn try_get(&mut self, path: &str) -> Result<Reply, String> {
        self.try_send(Method::GET, path, Bytes::new()).await
    }

    pub async fn try_send(&mut self, method: Method, path: &str, body: Bytes) -> Result<Reply, String> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "plugin")
            .header("content-type", "application/json")
            .body(Full::new(body))
            .unwrap();
        let started = Instant::now();
        self.sender.ready().await.map_err(|e| format!("connection still usable: {e}"))?;
        let response = self.sender.send_request(request).await.map_err(|e| format!("request answered: {e}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.map_err(|e| format!("body read: {e}"))?.to_bytes();
        let elapsed = started.elapsed();
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&body)));
        Ok(Reply { status, headers, body, json, elapsed })
    }
}

/// How many eBPF programs the process holds open.
pub fn bpf_programs_of(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy() == "anon_inode:bpf-prog")
        .count()
}

/// The report path as the probe asks for it.
pub fn report_path(probe_id: &str) -> String {
    format!("/report?api_version=1&probe_id={probe_id}")
}

/// Asks the escape-artist guest to try something; what it got (`ok:...`/`err:...`).
pub async fn attempt(client: &mut Client, control: &str, args: &[(&str, &str)]) -> String {
    let args: serde_json::Map<String, Value> = args.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect();
    let body = serde_json::json!({ "AppID": "t", "NodeID": "test-host;<host>", "Control": control, "ControlArgs": args });
    let reply = client.post("/control?probe_id=t", body.to_string()).await;
    assert_eq!(reply.status, 200, "{control}: {}", reply.json);
    assert!(reply.elapsed < Duration::from_millis(500), "{control} took {:?}", reply.elapsed);
    let result = &reply.json["shortcutReport"]["Host"]["nodes"]["test-host;<host>"]["latest"]["result"]["value"];
    result.as_str().unwrap_or_else(|| panic!("{control}: no result in {}", reply.json)).to_owned()
}


/// A tokio stream as hyper's I/O.
pub fn io<T>(stream: T) -> TokioIo<T> {
    TokioIo::new(stream)
}

/// Benchmarks run with tiny counts when `SCOPE_WASM_BENCH_SMOKE` is set, so
/// `make test` runs them (in the test profile) and they never rot.
pub fn bench_smoke() -> bool {
    std::env::var_os("SCOPE_WASM_BENCH_SMOKE").is_some()
}

/// `n` as unsigned LEB128, the integer encoding of the wasm binary format.
pub fn leb(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// `full` normally, `smoke` in a smoke run.
pub fn bench_count(full: usize, smoke: usize) -> usize {
    if bench_smoke() { smoke } else { full }
}

/// Latency percentiles of a benchmark's samples.
#[derive(Clone, Copy)]
pub struct Stats {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

pub fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Stats { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: *samples.last().unwrap() }
}

/// A native plugin, the reference beside the daemon in benchmarks: a plain
/// Rust hyper server on `socket` answering every request with `body_file`'s
/// bytes, one current-thread process per plugin, keep-alive. Benchmarks run
/// it by re-running themselves with `--serve-native SOCKET BODY`.
pub fn serve_native(socket: &Path, body_file: &Path) {
    let body = Bytes::from(fs::read(body_file).unwrap());
    serve_native_with(socket, move || body.clone());
}

/// The counter guest's job done natively, the way a plugin author would write
/// it in Rust: every `GET /report` advances a counter and builds the counter's
/// report (its 30-sample history and timestamps included) as a JSON value,
/// then encodes it. Run with `--serve-native-counter SOCKET`.
pub fn serve_native_counter(socket: &Path) {
    use std::sync::Mutex;
    const HISTORY: usize = 30;
    let state: Mutex<(u64, Vec<(String, f64)>)> = Mutex::new((0, Vec::new()));
    serve_native_with(socket, move || {
        let mut state = state.lock().unwrap();
        let (count, history) = &mut *state;
        *count += 1;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        history.push((now.clone(), *count as f64));
        if history.len() > HISTORY {
            history.remove(0);
        }
        let samples: Vec<Value> = history.iter().map(|(date, value)| serde_json::json!({"date": date, "value": value})).collect();
        let latest = |value: String| serde_json::json!({"timestamp": now, "value": value});
        let report = serde_json::json!({
            "Host": {
                "controls": {
                    "pause": {"human": "Pause the counter", "icon": "fa-pause", "id": "pause", "rank": 1},
                    "reset": {"confirmation": "Reset the counter to 0?", "human": "Reset the counter", "icon": "fa-undo", "id": "reset", "rank": 2},
                    "resume": {"human": "Resume the counter", "icon": "fa-play", "id": "resume", "rank": 1}
                },
                "metadata_templates": {
                    "counter_state": {"from": "latest", "id": "counter_state", "label": "Counter state", "priority": 0.2},
                    "counter_value": {"dataType": "number", "from": "latest", "id": "counter_value", "label": "Counter", "priority": 0.1}
                },
                "metric_templates": {"counter": {"format": "integer", "id": "counter", "label": "Counter", "priority": 0.1}},
                "nodes": {
                    "test-host;<host>": {
                        "id": "test-host;<host>",
                        "latest": {
                            "control_probe_id": latest("bench".into()),
                            "active_controls": latest("pause;reset".into()),
                            "counter_state": latest("counting".into()),
                            "counter_value": latest(count.to_string())
                        },
                        "metrics": {"counter": {"max": *count as f64, "min": 0.0, "samples": samples}},
                        "topology": "host"
                    }
                }
            },
            "Plugins": [{
                "api_version": "1",
                "description": "Counts reports on each host; pause, resume or reset it",
                "id": "counter",
                "interfaces": ["reporter", "controller"],
                "label": "Counter"
            }]
        });
        Bytes::from(serde_json::to_vec(&report).unwrap())
    });
}

/// A native plugin's server: `body` makes each answer's bytes.
fn serve_native_with(socket: &Path, body: impl Fn() -> Bytes + Send + Sync + 'static) {
    let body = std::sync::Arc::new(body);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let _ = fs::remove_file(socket);
        let listener = tokio::net::UnixListener::bind(socket).unwrap();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let body = body.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        // A control as a plugin answers one: the request read and
                        // parsed, the report after it as the answer.
                        if req.method() == Method::POST {
                            let request = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let parsed: Result<Value, _> = serde_json::from_slice(&request);
                            if parsed.is_err() {
                                return Ok(hyper::Response::builder().status(400).body(Full::new(Bytes::new())).unwrap());
                            }
                        }
                        let mut response = hyper::Response::new(Full::new(body()));
                        response.headers_mut().insert("content-type", "application/json".parse().unwrap());
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
}
