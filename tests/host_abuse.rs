//! Issue #14 through the real daemon and the `host-abuse` zoo guest: numbers
//! that overflowed in the host (and killed the plugin's worker), raw Docker
//! GETs that returned environments (secrets), and guest log text that forged
//! the daemon's log lines. Needs the private dockerd (`make test`) and root
//! (traffic shaping enters a container's network namespace).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::docker::{Engine, IMAGE};
use support::{Client, Daemon, guest, report_path};

/// Something unique to this test run, for names, labels and secrets.
fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{}-{}", std::process::id(), nanos % 1_000_000_000)
}

fn daemon(files: &[(&str, std::path::PathBuf)], config: &str, extra: &[&str]) -> (Daemon, tempfile::NamedTempFile) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), config).unwrap();
    let mut args = vec!["--config", file.path().to_str().unwrap(), "--refresh-ms", "200"];
    args.extend_from_slice(extra);
    (Daemon::start(files, &args), file)
}

async fn connect(daemon: &Daemon, id: &str) -> Client {
    let mut client = Client::connect(&daemon.socket(id).await).await;
    let reply = client.get(&report_path("t")).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    client
}

/// Sends `control` to the guest; what it got (`ok:...` or `err:...`).
async fn control(client: &mut Client, control: &str, args: &[(&str, &str)]) -> String {
    let args: serde_json::Map<String, Value> = args.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let body = json!({ "AppID": "t", "NodeID": "test-host;<host>", "Control": control, "ControlArgs": args });
    let reply = client.post("/control?probe_id=t", body.to_string()).await;
    assert_eq!(reply.status, 200, "{control}: {}", reply.json);
    let result = &reply.json["shortcutReport"]["Host"]["nodes"]["test-host;<host>"]["latest"]["result"]["value"];
    result.as_str().unwrap_or_else(|| panic!("{control}: no result in {}", reply.json)).to_owned()
}

/// Like `control`, trying again while the host call runs out of its budget
/// (a busy machine can make the engine or `tc` slow); any other answer is
/// returned at once.
async fn control_in_time(client: &mut Client, name: &str, args: &[(&str, &str)]) -> String {
    let started = Instant::now();
    loop {
        let result = control(client, name, args).await;
        if result != "err:timeout" || started.elapsed() > Duration::from_secs(30) {
            return result;
        }
    }
}

/// Polls the served report until the guest's `last` result satisfies `check`:
/// every poll must be answered (a dead worker answers `busy` forever).
async fn last_result(client: &mut Client, what: &str, check: impl Fn(&str) -> bool) {
    let started = Instant::now();
    loop {
        let reply = client.get(&report_path("t")).await;
        assert_eq!(reply.status, 200, "{what}: {}", reply.json);
        let last = reply.json["Host"]["nodes"]["test-host;<host>"]["latest"]["last"]["value"].as_str().unwrap_or_default();
        if check(last) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{what}; last report: {}", reply.json);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Containers and images made for one test, removed when it ends.
struct Made<'a> {
    engine: &'a Engine,
    containers: Vec<String>,
    images: Vec<String>,
}

impl<'a> Made<'a> {
    fn new(engine: &'a Engine) -> Self {
        Self { engine, containers: Vec::new(), images: Vec::new() }
    }

    /// `docker run -d` (or `create`) of `sleep 600` in `image`, with `options`; its full ID.
    fn container(&mut self, start: bool, options: &[&str], image: &str) -> String {
        let mut args = if start { vec!["run", "-d"] } else { vec!["create"] };
        args.extend_from_slice(options);
        args.extend_from_slice(&[image, "sleep", "600"]);
        let id = self.engine.cli(&args);
        self.containers.push(id.clone());
        id
    }

    fn docker(&self, args: &[&str]) {
        let _ = Command::new("docker").arg("-H").arg(format!("unix://{}", self.engine.socket.display())).args(args).output();
    }
}

impl Drop for Made<'_> {
    fn drop(&mut self) {
        for id in &self.containers {
            self.docker(&["rm", "-f", id]);
        }
        for image in &self.images {
            self.docker(&["rmi", "-f", image]);
        }
    }
}

#[tokio::test]
async fn out_of_range_traffic_numbers_are_refused_and_the_plugin_keeps_answering() {
    let engine = Engine::from_env();
    let mut made = Made::new(&engine);
    let running = made.container(true, &[], IMAGE);
    let pid: u32 = engine.cli(&["inspect", "--format", "{{.State.Pid}}", &running]).parse().unwrap();
    let config = "[plugins.host-abuse]\ngrants = [\"docker\", \"traffic\"]\n[plugins.ungranted]\ngrants = [\"docker\"]\n";
    let (daemon, _config) = daemon(
        &[("host-abuse.wasm", guest("host-abuse")), ("ungranted.wasm", guest("host-abuse"))],
        config,
        &["--docker-socket", engine.socket.to_str().unwrap()],
    );
    let mut client = connect(&daemon, "host-abuse").await;

    // u64::MAX once overflowed before the grant check, a panic that killed the worker.
    let result = control(&mut client, "set-rate-max", &[("id", &running)]).await;
    assert_eq!(
        result,
        "err:failed: invalid argument: rate-kbit 18446744073709551615 is out of range, \
         it must be between 1 and 80000000 kbit/s (0 would cut the container off)"
    );
    // The plugin still answers: polls from the same and from a new connection.
    last_result(&mut client, "the report shows the refusal", |last| last.contains("rate-kbit 18446744073709551615")).await;
    let mut fresh = connect(&daemon, "host-abuse").await;
    for _ in 0..5 {
        assert_eq!(fresh.get(&report_path("t")).await.status, 200);
    }

    for (name, args, range) in [
        ("set-rate", vec![("rate", "0")], "between 1 and 80000000 kbit/s"),
        ("set-rate", vec![("rate", "80000001")], "between 1 and 80000000 kbit/s"),
        ("set-rate", vec![("rate", "18446744073709551")], "between 1 and 80000000 kbit/s"),
        ("set-delay-max", vec![], "latency-ms 4294967295 is out of range, it must be at most 60000 ms"),
        ("set-loss", vec![("loss", "NaN")], "packet-loss-percent NaN is out of range, it must be between 0 and 100"),
        ("set-loss", vec![("loss", "-1")], "it must be between 0 and 100"),
        ("set-loss", vec![("loss", "inf")], "it must be between 0 and 100"),
    ] {
        let mut args = args.clone();
        args.push(("id", &running));
        let result = control(&mut client, name, &args).await;
        assert!(result.starts_with("err:failed: invalid argument: ") && result.contains(range), "{name} {args:?}: {result}");
    }
    let qdisc = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["tc", "qdisc", "show", "dev", "eth0"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&qdisc.stdout).contains("noqueue"), "refused calls changed nothing");

    // The largest rate accepted is one tc really installs, and reads back.
    let result = control_in_time(&mut client, "set-rate", &[("id", &running), ("rate", "80000000")]).await;
    assert_eq!(result, "ok:qdisc=tbf rate_kbit=80000000");
    let result = control_in_time(&mut client, "clear", &[("id", &running)]).await;
    assert_eq!(result, "ok:qdisc=noqueue rate_kbit=none");

    // Without the grant, the grant is what the plugin hears about, whatever the arguments.
    let mut ungranted = connect(&daemon, "ungranted").await;
    let result = control(&mut ungranted, "set-rate-max", &[("id", &running)]).await;
    assert_eq!(result, "err:denied: plugin ungranted: traffic is not granted");
    let result = control(&mut ungranted, "set-loss", &[("id", &running), ("loss", "NaN")]).await;
    assert_eq!(result, "err:denied: plugin ungranted: traffic is not granted");

    let log = daemon.log();
    assert!(!log.contains("panicked"), "no host panic:\n{log}");
}

#[tokio::test]
async fn no_raw_docker_get_returns_a_container_or_image_environment() {
    let engine = Engine::from_env();
    let tag = unique();
    let secrets = [format!("base-secret-{tag}"), format!("image-secret-{tag}"), format!("container-secret-{tag}")];
    let image = format!("scope-test/host-abuse-{tag}");
    let mut made = Made::new(&engine);
    // An image whose environment holds secrets: `Config.Env`, and `ContainerConfig.Env`
    // (the environment of the container it was committed from).
    let base = made.container(false, &["-e", &format!("BASE_PASSWORD={}", secrets[0])], IMAGE);
    let change = format!("ENV IMAGE_PASSWORD={}", secrets[1]);
    let image_id = engine.cli(&["commit", "--change", &change, &base, &format!("{image}:latest")]);
    made.images.push(image_id.clone());
    // A container named `json`: its inspect is `/containers/json/json`.
    made.docker(&["rm", "-f", "json"]);
    let json_id = made.container(true, &["--name", "json", "-e", &format!("PASSWORD={}", secrets[2])], &image);

    // The engine itself answers with all three: the guest must get none.
    let theirs = engine.get_json("/containers/json/json").await.to_string();
    assert!(theirs.contains(&secrets[0]) && theirs.contains(&secrets[1]) && theirs.contains(&secrets[2]), "{theirs}");
    let theirs = engine.get_json(&format!("/images/{image_id}/json")).await.to_string();
    assert!(theirs.contains(&secrets[0]) && theirs.contains(&secrets[1]), "{theirs}");

    let (daemon, _config) = daemon(
        &[("host-abuse.wasm", guest("host-abuse"))],
        "[plugins.host-abuse]\ngrants = [\"docker\"]\n",
        &["--docker-socket", engine.socket.to_str().unwrap()],
    );
    let mut client = connect(&daemon, "host-abuse").await;
    let no_secret = |what: &str, answer: &str| {
        for secret in &secrets {
            assert!(!answer.contains(secret.as_str()), "{what} leaked {secret}: {answer}");
        }
        assert!(!answer.contains("PASSWORD="), "{what} leaked an environment: {answer}");
    };
    let inspected = |what: &str, answer: &str, id: &str| {
        no_secret(what, answer);
        let body = answer.strip_prefix("ok:").unwrap_or_else(|| panic!("{what}: {answer}"));
        let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
        assert_eq!(value["Id"], id, "{what}");
        assert!(value["Config"].is_object() && value["Config"].get("Env").is_none(), "{what}: {body}");
    };

    let answer = control_in_time(&mut client, "inspect-json-json", &[]).await;
    inspected("the inspect of `json`", &answer, &json_id);
    let short = &json_id[..12];
    for path in [
        "/containers/json/json?size=1".to_owned(),
        "/containers/json/json/".to_owned(),
        "//containers//json//json".to_owned(),
        "/containers/./json/./json".to_owned(),
        "/containers/%6Ason/json".to_owned(),
        "/containers/js%6Fn/json?size=1".to_owned(),
        "/%63ontainers/json%2Fjson".to_owned(),
        format!("/containers/{json_id}/json"),
        format!("/containers/{short}/json/"),
    ] {
        let answer = control_in_time(&mut client, "docker-get", &[("path", &path)]).await;
        inspected(&path, &answer, &json_id);
    }
    let hex = image_id.strip_prefix("sha256:").unwrap();
    for reference in [image_id.as_str(), hex, &hex[..12], &image, &format!("{image}:latest"), &format!("sha256%3A{hex}")] {
        let answer = control_in_time(&mut client, "image-env", &[("image", reference)]).await;
        inspected(&format!("image {reference}"), &answer, &image_id);
        let value: Value = serde_json::from_str(&answer[3..]).unwrap();
        assert!(value["ContainerConfig"].get("Env").is_none(), "{reference}: {answer}");
    }
    // Every other way there: refused, missing, or without an environment.
    for path in [
        "/containers/json/../json/json".to_owned(),
        "/containers/json%2F..%2Fjson/json".to_owned(),
        "/containers/JSON/json".to_owned(),
        "/containers/json?all=1&size=1".to_owned(),
        "/images/json?all=1".to_owned(),
        format!("/images/{image_id}/history"),
        format!("/containers/{json_id}/top"),
        format!("/containers/{json_id}/top?ps_args=auxe"),
        format!("/containers/{json_id}/export"),
        format!("/containers/{json_id}/logs?stdout=1"),
        "/info".to_owned(),
    ] {
        let answer = control_in_time(&mut client, "docker-get", &[("path", &path)]).await;
        no_secret(&path, &answer);
    }
    last_result(&mut client, "the report shows the last answer", |last| !last.is_empty()).await;
    let report = client.get(&report_path("t")).await;
    no_secret("the report", &String::from_utf8_lossy(&report.body));
}

/// A marker only this test's forged lines carry.
const MARKER: &str = "FORGED-by-host-abuse";
/// The fake daemon line the guest hides in its text.
const FAKE_START: &str = "2026-05-09T10:00:00.000000Z ERROR";

/// Starts the daemon with `host-abuse` and a bystander, asks the guest to
/// forge log lines about the bystander, and waits until all six writes are in.
async fn forged_log(format: &str) -> String {
    let (daemon, _config) = daemon(
        &[("host-abuse.wasm", guest("host-abuse")), ("bystander.wasm", guest("counter"))],
        "",
        &["--log-format", format],
    );
    connect(&daemon, "bystander").await;
    let mut client = connect(&daemon, "host-abuse").await;
    let result = control(&mut client, "forge-log", &[("victim", "bystander"), ("marker", MARKER)]).await;
    assert_eq!(result, "ok:6 writes");
    for write in ["host-log", "terminal", "tab", "utf8", "stdout", "stderr"] {
        daemon.wait_for_log(&format!("{MARKER} {write}")).await;
    }
    daemon.log()
}

/// What no log line may hold: raw line breaks inside a line, terminal
/// controls, invisible reordering.
fn assert_no_controls(log: &str) {
    for bad in ['\r', '\x1b', '\x07', '\0', '\t', '\u{85}', '\u{9b}', '\u{2028}', '\u{202e}'] {
        assert!(!log.contains(bad), "the log holds {:?}:\n{log}", bad);
    }
}

#[tokio::test]
async fn guest_log_text_cannot_forge_lines_in_the_human_format() {
    let log = forged_log("human").await;
    assert_no_controls(&log);
    let forged: Vec<&str> = log.lines().filter(|l| l.contains(MARKER)).collect();
    assert_eq!(forged.len(), 6, "one line per write:\n{log}");
    for line in &forged {
        // The daemon's own prefix and the true plugin ID, on every line.
        assert!(line.contains(" guest: ") && line.ends_with("plugin=\"host-abuse\""), "{line}");
        assert!(line.find(" guest: ").unwrap() < line.find(MARKER).unwrap(), "{line}");
    }
    assert!(!log.lines().any(|l| l.starts_with(FAKE_START)), "a forged line starts like the daemon's:\n{log}");
    // Lines about the bystander: only the daemon's own (none carries the marker).
    for line in log.lines().filter(|l| l.contains("bystander") && !l.contains(MARKER)) {
        assert!(!line.contains("trapped"), "{line}");
    }
    // Escaped where needed, readable otherwise.
    let line = |write: &str| *forged.iter().find(|l| l.contains(&format!("{MARKER} {write}"))).unwrap();
    assert!(line("host-log").contains(&format!("{MARKER} host-log\\n{FAKE_START}")), "{}", line("host-log"));
    assert!(line("terminal").contains("terminal\\u{1b}[2K\\r\\u{1b}[1A2026"), "{}", line("terminal"));
    assert!(line("tab").contains("tab\\tand\\u{202e}bidi\\u{0}nul"), "{}", line("tab"));
    assert!(line("utf8").contains("utf8 héllo wörld ✓ 日本語 🙂 plugin="), "{}", line("utf8"));
    assert!(line("stdout").contains(&format!("stdout\\r{FAKE_START}")), "{}", line("stdout"));
    assert!(line("stderr").contains("stderr\\u{1b}]0;pwned\\u{7}2026"), "{}", line("stderr"));
}

#[tokio::test]
async fn guest_log_text_cannot_forge_lines_in_the_json_format() {
    let log = forged_log("json").await;
    assert_no_controls(&log);
    let lines: Vec<Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object ({e}): {l}"))).collect();
    let forged: Vec<&Value> = lines.iter().filter(|l| l.to_string().contains(MARKER)).collect();
    assert_eq!(forged.len(), 6, "one line per write:\n{log}");
    for line in &forged {
        assert_eq!((&line["target"], &line["plugin"]), (&json!("guest"), &json!("host-abuse")), "{line}");
        let message = line["message"].as_str().unwrap();
        assert!(message.starts_with(MARKER), "{line}");
        assert!(!message.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{202e}'), "{line}");
    }
    let message = |write: &str| {
        let start = format!("{MARKER} {write}");
        forged.iter().find_map(|l| l["message"].as_str().filter(|m| m.starts_with(&start))).unwrap()
    };
    let fake = format!("{FAKE_START} scope_wasm::run::worker: plugin bystander: trapped: {MARKER} plugin=bystander");
    assert_eq!(message("host-log"), format!("{MARKER} host-log\\n{fake}"));
    assert_eq!(message("utf8"), format!("{MARKER} utf8 héllo wörld ✓ 日本語 🙂"));
    assert!(lines.iter().all(|l| l["plugin"] != "bystander" || !l.to_string().contains(MARKER)));
}
