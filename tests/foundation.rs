//! Issue "Foundation": the daemon serves wasm plugins on their own UNIX sockets,
//! end to end, through the real binary, real guests and real sockets.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Client, Daemon, HOSTNAME, guest, report_path};

const HOST_NODE: &str = "test-host;<host>";

fn host_node(report: &Value) -> &Value {
    &report["Host"]["nodes"][HOST_NODE]
}

fn latest<'a>(node: &'a Value, key: &str) -> &'a str {
    node["latest"][key]["value"].as_str().unwrap_or_else(|| panic!("no latest {key} in {node}"))
}

/// Every rule the real probe checks before it accepts a report.
fn assert_probe_accepts(report: &Value, socket_id: &str) {
    let plugins = report["Plugins"].as_array().expect("Plugins is a list");
    assert_eq!(plugins.len(), 1, "exactly one plugin spec");
    let spec = &plugins[0];
    assert_eq!(spec["id"], socket_id);
    assert_eq!(spec["api_version"], "1");
    assert!(!spec["label"].as_str().unwrap().is_empty());
    assert!(spec["interfaces"].as_array().unwrap().contains(&json!("reporter")));
}

#[tokio::test]
async fn report_is_what_the_probe_accepts() {
    let daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &["--refresh-ms", "100"]);
    let mut client = Client::connect(&daemon.socket("counter").await).await;
    let reply = client.get(&report_path("probe-1")).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.headers["content-type"], "application/json");
    let report = &reply.json;
    assert_probe_accepts(report, "counter");
    assert_eq!(report["Plugins"][0]["label"], "Counter");
    assert_eq!(report["Plugins"][0]["interfaces"], json!(["reporter", "controller"]));

    let node = host_node(report);
    assert_eq!(node["id"], HOST_NODE);
    assert_eq!(node["topology"], "host");
    assert_eq!(latest(node, "counter_value"), "1");
    assert_eq!(latest(node, "control_probe_id"), "probe-1", "controls show only with the probe's ID");
    assert_eq!(latest(node, "active_controls"), "pause;reset");
    for key in ["pause", "resume", "reset"] {
        assert_eq!(report["Host"]["controls"][key]["id"], key);
    }
    assert_eq!(report["Host"]["metric_templates"]["counter"]["format"], "integer");

    // Timestamps are RFC 3339 with a zone, as the probe parses them.
    let samples = node["metrics"]["counter"]["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 1);
    chrono::DateTime::parse_from_rfc3339(samples[0]["date"].as_str().unwrap()).unwrap();
    chrono::DateTime::parse_from_rfc3339(node["latest"]["counter_value"]["timestamp"].as_str().unwrap()).unwrap();

    // Polls are answered from the latest report, refreshed in the background
    // while the probe polls; the instance keeps its state between refreshes.
    let mut value = 1;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let reply = client.get(&report_path("probe-1")).await;
        value = latest(host_node(&reply.json), "counter_value").parse::<u64>().unwrap();
        if value > 1 {
            break;
        }
    }
    assert!(value > 1, "the counter advanced with background refreshes");
}

#[tokio::test]
async fn plugin_id_comes_from_the_file_name() {
    let daemon = Daemon::start(&[("hits-a1.wasm", guest("counter"))], &[]);
    let socket = daemon.socket("hits-a1").await;
    assert_eq!(socket.file_name().unwrap(), "hits-a1.sock");
    let reply = Client::connect(&socket).await.get(&report_path("p")).await;
    assert_probe_accepts(&reply.json, "hits-a1");
}

#[tokio::test]
async fn control_round_trip_answers_with_a_shortcut_report() {
    let daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &[]);
    let mut client = Client::connect(&daemon.socket("counter").await).await;
    client.get(&report_path("probe-1")).await;

    let pause = json!({ "AppID": "app", "NodeID": HOST_NODE, "Control": "pause", "ControlArgs": null });
    let reply = client.post("/control?probe_id=probe-1", pause.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert!(reply.json.get("error").is_none(), "{}", reply.json);
    let shortcut = &reply.json["shortcutReport"];
    assert_probe_accepts(shortcut, "counter");
    let node = host_node(shortcut);
    assert_eq!(latest(node, "active_controls"), "reset;resume", "pause flips to resume");
    assert_eq!(latest(node, "counter_state"), "paused");
    assert_eq!(latest(node, "control_probe_id"), "probe-1");
    // The guest's `host.log` call reached the daemon log, tagged with the plugin.
    let log = daemon.wait_for_log("control pause applied").await;
    assert!(log.contains("plugin=counter"), "{log}");

    // Paused: the next reports do not advance.
    let a = client.get(&report_path("probe-1")).await;
    let b = client.get(&report_path("probe-1")).await;
    assert_eq!(latest(host_node(&a.json), "counter_value"), latest(host_node(&b.json), "counter_value"));
    assert_eq!(latest(host_node(&b.json), "active_controls"), "reset;resume");

    // A control the plugin refuses: 200 with `error`, which the probe shows the user.
    let bogus = json!({ "AppID": "app", "NodeID": HOST_NODE, "Control": "explode", "ControlArgs": {"x": "1"} });
    let reply = client.post("/control", bogus.to_string()).await;
    assert_eq!(reply.status, 200);
    let error = reply.json["error"].as_str().unwrap();
    assert!(error.contains("counter") && error.contains("unknown control") && error.contains("explode"), "{error}");
    assert!(reply.json.get("shortcutReport").is_none());
}

#[tokio::test]
async fn keep_alive_connection_is_reused() {
    let daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &[]);
    let mut client = Client::connect(&daemon.socket("counter").await).await;
    for _ in 1..=5 {
        let reply = client.get(&report_path("p")).await;
        assert_eq!(reply.status, 200);
        assert_probe_accepts(&reply.json, "counter");
    }
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &[]);
    let mut client = Client::connect(&daemon.socket("counter").await).await;

    let reply = client.get("/nope").await;
    assert_eq!(reply.status, 404);
    assert!(reply.json["error"].as_str().unwrap().contains("counter"));

    let reply = client.post("/report", "{}").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.headers["allow"], "GET");
    assert!(reply.json["error"].is_string());

    let reply = client.get("/control").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.headers["allow"], "POST");

    let reply = client.post("/control", "{not json").await;
    assert_eq!(reply.status, 400);
    assert!(reply.json["error"].as_str().unwrap().contains("bad control request JSON"));

    let reply = client.post("/control", json!({ "AppID": "a" }).to_string()).await;
    assert_eq!(reply.status, 400, "NodeID and Control are required");

    // The connection survived all of that.
    assert_eq!(client.get(&report_path("p")).await.status, 200);
}

#[tokio::test]
async fn bad_files_are_refused_while_good_ones_serve() {
    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), b"definitely not wasm").unwrap();
    let daemon = Daemon::start(
        &[
            ("bad_name.wasm", guest("counter")),
            ("broken.wasm", garbage.path().to_owned()),
            ("notes.txt", garbage.path().to_owned()),
            ("counter.wasm", guest("counter")),
        ],
        &[],
    );
    let socket = daemon.socket("counter").await;
    assert_eq!(Client::connect(&socket).await.get(&report_path("p")).await.status, 200);

    assert_eq!(daemon.plugin_sockets(), vec!["counter.sock"]);
    let log = daemon.log();
    assert!(log.contains("invalid plugin ID \"bad_name\""), "{log}");
    assert!(log.contains("plugin broken") && log.contains("not a WebAssembly file"), "{log}");
    assert!(!log.contains("notes.txt"), "non-.wasm files are skipped quietly: {log}");
}

#[tokio::test]
async fn looping_guest_is_answered_with_an_error_in_time() {
    let daemon = Daemon::start(
        &[("loop-forever.wasm", guest("loop-forever")), ("counter.wasm", guest("counter"))],
        &["--refresh-ms", "100"],
    );
    let looping_socket = daemon.socket("loop-forever").await;
    let counter_socket = daemon.socket("counter").await;

    // Meanwhile, the healthy neighbour keeps answering.
    let neighbour = tokio::spawn(async move {
        let mut client = Client::connect(&counter_socket).await;
        let mut worst = Duration::ZERO;
        for _ in 0..20 {
            let reply = client.get(&report_path("p")).await;
            assert_eq!(reply.status, 200);
            worst = worst.max(reply.elapsed);
        }
        worst
    });

    // The first poll waits for the first report: cut at the deadline.
    let mut client = Client::connect(&looping_socket).await;
    let reply = client.get(&report_path("p")).await;
    assert_eq!(reply.status, 504, "{}", reply.json);
    assert!(reply.elapsed < Duration::from_millis(500), "answered after {:?}", reply.elapsed);
    let error = reply.json["error"].as_str().unwrap();
    assert!(error.contains("loop-forever") && error.contains("deadline exceeded"), "{error}");

    // A control runs the guest directly: cut at the deadline too (or busy
    // behind a background refresh that is itself being cut).
    let control = json!({ "AppID": "a", "NodeID": "n", "Control": "c", "ControlArgs": null });
    let reply = client.post("/control", control.to_string()).await;
    assert!(reply.status == 504 || reply.status == 503, "{}", reply.json);
    assert!(reply.elapsed < Duration::from_millis(500), "answered after {:?}", reply.elapsed);

    // Failing refreshes in a row back the plugin off: errors come at once,
    // without burning 400 ms of CPU per attempt.
    let mut backing_off = false;
    for _ in 0..60 {
        let reply = client.get(&report_path("p")).await;
        assert!(reply.status == 504 || reply.status == 503, "{}", reply.json);
        assert!(reply.elapsed < Duration::from_millis(500), "answered after {:?}", reply.elapsed);
        if reply.json["error"].as_str().unwrap().contains("backing off") {
            backing_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(backing_off, "the plugin was never backed off; log:\n{}", daemon.log());

    let worst = neighbour.await.unwrap();
    assert!(worst < Duration::from_millis(500), "neighbour's slowest answer took {worst:?}");
    // Guest stdout reaches the daemon log, tagged with the plugin.
    let log = daemon.log();
    assert!(log.contains("loop-forever: spinning in report") && log.contains("plugin=loop-forever"), "{log}");
}

#[tokio::test]
async fn a_trap_is_logged_and_the_instance_is_rebuilt() {
    // Its second report of each instance traps. A trap is a real failure, so
    // the poll after it gets the trap at once; the refresh after that runs a
    // fresh instance, which reports again.
    let daemon = Daemon::start(&[("panic-on-second.wasm", guest("panic-on-second"))], &["--refresh-ms", "100"]);
    let mut client = Client::connect(&daemon.socket("panic-on-second").await).await;
    let (mut good, mut trapped) = (0, 0);
    for _ in 0..40 {
        let reply = client.get(&report_path("p")).await;
        if reply.status == 200 {
            // Never "2": after the trap a fresh instance starts counting again.
            assert_eq!(latest(host_node(&reply.json), "reports"), "1");
            good += 1;
        } else {
            assert_eq!(reply.status, 500, "{}", reply.json);
            assert!(reply.json["error"].as_str().unwrap().starts_with("plugin panic-on-second: trapped"), "{}", reply.json);
            trapped += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(good > 0 && trapped > 0, "{good} good reports, {trapped} traps");
    let log = daemon.wait_for_log("plugin panic-on-second: trapped").await;
    // The guest's panic message went to the daemon log via its stderr.
    assert!(log.contains("zoo: second report, as promised") && log.contains("plugin=panic-on-second"), "{log}");
}

#[tokio::test]
async fn sigterm_removes_the_sockets() {
    let mut daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &[]);
    let socket = daemon.socket("counter").await;
    let own = daemon.socket("scope-wasm").await;
    assert!(daemon.admin_socket().exists());
    assert!(daemon.terminate().success());
    assert!(!socket.exists() && !own.exists() && !daemon.admin_socket().exists(), "socket left behind");
}

#[tokio::test]
async fn a_stale_socket_is_replaced_but_a_live_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    // A socket file with nobody listening, as a crashed run leaves it.
    let stale = dir.path().join("counter.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    // A socket another process is still serving.
    let live_path = dir.path().join("taken.sock");
    let live = tokio::net::UnixListener::bind(&live_path).unwrap();

    let daemon = Daemon::start_with_socket_dir(
        &[("counter.wasm", guest("counter")), ("taken.wasm", guest("counter"))],
        Some(dir.path()),
        &[],
    );
    let socket = daemon.socket("counter").await;
    assert_eq!(Client::connect(&socket).await.get(&report_path("p")).await.status, 200);
    let log = daemon.wait_for_log("in use by another live process").await;
    assert!(log.contains("taken.sock"), "{log}");
    assert!(live_path.exists());
    drop(live);
}

#[test]
fn check_prints_the_report_or_a_clear_error() {
    let out = std::process::Command::new(support::binary())
        .args(["check", guest("counter").to_str().unwrap(), "--hostname", HOSTNAME])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("label:       Counter"), "{stdout}");
    assert!(stdout.contains("scope:plugin/handler@0.1.0"), "{stdout}");
    let json_start = stdout.find("\n{").unwrap();
    let report: Value = serde_json::from_str(&stdout[json_start..]).unwrap();
    assert_probe_accepts(&report, "counter");
    assert!(report["Host"]["nodes"][HOST_NODE].is_object());

    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 2] = [
        ("garbage.wasm", b"hello", "not a WebAssembly file"),
        ("core.wasm", b"\0asm\x01\0\0\0", "core WebAssembly module"),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = std::process::Command::new(support::binary()).arg("check").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains(expected), "{stderr}");
    }

    let out = std::process::Command::new(support::binary())
        .args(["check", guest("loop-forever").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("deadline exceeded"));
}

#[test]
fn hostname_defaults_to_the_systems() {
    let out = std::process::Command::new(support::binary())
        .args(["check", guest("counter").to_str().unwrap()])
        .output()
        .unwrap();
    let hostname = gethostname::gethostname().to_string_lossy().into_owned();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("\"{hostname};<host>\"")));
}

#[test]
fn check_says_what_a_file_carries_beside_its_code() {
    let sha256 = |path: &std::path::Path| {
        use sha2::Digest;
        sha2::Sha256::digest(std::fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let check = |file: &std::path::Path| {
        let out = std::process::Command::new(support::binary()).arg("check").arg(file).args(["--hostname", HOSTNAME]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let counter = guest("counter");
    let plain = check(&counter);
    assert!(plain.contains(&format!("file:        sha256 {}", sha256(&counter))), "{plain}");
    assert!(plain.contains("source:      all in its code (no `scope-plugin-source` section)"), "{plain}");

    // The counter with files attached, as a plugin on a shared runtime is made:
    // the file is another, its code the counter's own.
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(files.join("app.py"), "print('hello')\n").unwrap();
    let sourced = dir.path().join("counter.wasm");
    support::attach_source(&counter, &files, &sourced);
    let text = check(&sourced);
    assert!(text.contains(&format!("file:        sha256 {}", sha256(&sourced))), "{text}");
    assert_ne!(sha256(&sourced), sha256(&counter));
    let section_bytes = std::fs::metadata(&sourced).unwrap().len() - std::fs::metadata(&counter).unwrap().len();
    let said = text.lines().find(|l| l.starts_with("source:")).unwrap_or_default();
    assert!(said.contains("in its `scope-plugin-source` section"), "{text}");
    assert!(said.contains(&format!("the code (sha256 {}) is shared", sha256(&counter))), "{text}");
    // The section's contents: a little less than the bytes it added to the file (its header).
    let bytes: u64 = said.split("its own files, ").nth(1).and_then(|r| r.split(' ').next()).unwrap().parse().unwrap();
    assert!(bytes > 0 && bytes < section_bytes && section_bytes - bytes < 32, "{bytes} of {section_bytes}: {text}");
    assert!(text.contains("label:       Counter"), "{text}");
}

#[test]
fn check_takes_the_id_from_id_over_the_file_name() {
    // A build output named plugin.wasm, checked with its grants by --id.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plugin.wasm");
    std::fs::copy(guest("volume-count"), &file).unwrap();
    let config = dir.path().join("scope-wasm.toml");
    std::fs::write(&config, "[plugins.volume-count]\ngrants = [\"docker\"]\n").unwrap();
    let check = |extra: &[&str]| {
        let out = std::process::Command::new(support::binary())
            .arg("check")
            .arg(&file)
            .arg("--config")
            .arg(&config)
            .args(["--docker-socket", "/nonexistent/docker.sock"])
            .args(extra)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    // (No engine there: the report fails, with the cause its grant decides.)
    let as_named = check(&[]);
    assert!(as_named.contains("plugin plugin: ") && as_named.contains("docker is not granted"), "{as_named}");
    let as_id = check(&["--id", "volume-count"]);
    assert!(as_id.contains("plugin volume-count: ") && as_id.contains("/nonexistent/docker.sock does not exist"), "{as_id}");
    let bad = check(&["--id", "Bad_ID"]);
    assert!(bad.contains("invalid plugin ID"), "{bad}");
}
