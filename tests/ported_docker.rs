//! The volume-count and traffic-control ports against the private dockerd:
//! the originals' report keys and templates, values from the engine and the
//! kernel, and traffic shaping really applied in a container's namespace.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::docker::{Containers, Engine};
use support::{Client, Daemon, guest, report_path};

const PREFIX: &str = "traffic-control-table-";

fn start(engine: &Engine, files: &[(&str, std::path::PathBuf)], config: &str) -> (Daemon, tempfile::NamedTempFile) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), config).unwrap();
    let daemon = Daemon::start(
        files,
        &["--config", file.path().to_str().unwrap(), "--docker-socket", engine.socket.to_str().unwrap(), "--refresh-ms", "200"],
    );
    (daemon, file)
}

fn node<'a>(report: &'a Value, container: &str) -> &'a Value {
    &report["Container"]["nodes"][format!("{container};<container>")]
}

fn latest<'a>(report: &'a Value, container: &str, key: &str) -> &'a str {
    node(report, container)["latest"][key]["value"].as_str().unwrap_or_else(|| panic!("{key} of {container} in {report}"))
}

/// `tc qdisc show dev eth0` inside the container's network namespace.
fn qdisc_of(pid: u32) -> String {
    let output = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["tc", "qdisc", "show", "dev", "eth0"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn control(container: &str, control: &str) -> String {
    json!({ "AppID": "a", "NodeID": format!("{container};<container>"), "Control": control, "ControlArgs": null }).to_string()
}

/// Polls until `check` holds for a report (the refresh runs every 200 ms).
async fn poll_until(client: &mut Client, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let reply = client.get(&report_path("p")).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        if check(&reply.json) {
            return reply.json;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{what}; last report: {}", reply.json);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn volume_count_counts_every_containers_mounts() {
    let engine = Engine::from_env();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mount_a, mount_b) = (format!("{}:/a", a.path().display()), format!("{}:/b:ro", b.path().display()));
    let mut made = Containers::new(&engine);
    let none = made.make(true, &[]);
    let one = made.make(false, &["-v", &mount_a]);
    let two = made.make(true, &["-v", &mount_a, "-v", &mount_b]);

    let (daemon, _config) = start(&engine, &[("volume-count.wasm", guest("volume-count"))], "[plugins.volume-count]\ngrants = [\"docker\"]\n");
    let mut client = Client::connect(&daemon.socket("volume-count").await).await;
    let report = client.get(&report_path("p")).await.json;
    assert_eq!(
        report["Plugins"],
        json!([{ "id": "volume-count", "label": "Volume Counts",
                 "description": "Shows how many volumes each container has mounted",
                 "interfaces": ["reporter"], "api_version": "1" }])
    );
    assert_eq!(
        report["Container"]["metadata_templates"],
        json!({ "volume_count": { "id": "volume_count", "label": "# Volumes", "from": "latest", "priority": 0.1 } })
    );
    assert_eq!(latest(&report, &none, "volume_count"), "0");
    assert_eq!(latest(&report, &one, "volume_count"), "1", "created containers count too (all=true)");
    assert_eq!(latest(&report, &two, "volume_count"), "2");
    // As many nodes as the engine has containers.
    let engine_count = engine.get_json("/containers/json?all=1").await.as_array().unwrap().len();
    let ours = report["Container"]["nodes"].as_object().unwrap().len();
    assert!(ours.abs_diff(engine_count) <= 2, "{ours} nodes for {engine_count} containers (others' tests may race)");
}

#[tokio::test]
async fn volume_count_without_its_grant_says_so() {
    let engine = Engine::from_env();
    let (daemon, _config) = start(&engine, &[("volume-count.wasm", guest("volume-count"))], "");
    let mut client = Client::connect(&daemon.socket("volume-count").await).await;
    let reply = client.get(&report_path("p")).await;
    assert_eq!(reply.status, 500);
    assert!(reply.json["error"].as_str().unwrap().contains("docker is not granted"), "{}", reply.json);
}

#[tokio::test]
async fn traffic_control_shapes_a_real_container_and_reads_it_back() {
    let engine = Engine::from_env();
    let mut made = Containers::new(&engine);
    let running = made.make(true, &[]);
    let stopped = made.make(true, &[]);
    engine.cli(&["kill", &stopped]);
    let created = made.make(false, &[]);
    let pid = made.pid(&running);
    let config = "[plugins.traffic-control]\ngrants = [\"docker\", \"traffic\"]\n";
    let (daemon, _config) = start(&engine, &[("traffic-control.wasm", guest("traffic-control"))], config);
    let mut client = Client::connect(&daemon.socket("traffic-control").await).await;

    let report = client.get(&report_path("p")).await.json;
    assert_eq!(report["Plugins"][0]["label"], "Traffic control");
    assert_eq!(report["Plugins"][0]["description"], "Adds traffic controls to the running Docker containers");
    let table = &report["Container"]["table_templates"]["traffic-control-table"];
    assert_eq!((&table["id"], &table["label"], &table["prefix"]), (&json!("traffic-control-table"), &json!("Traffic Control"), &json!(PREFIX)));
    let controls = &report["Container"]["controls"];
    for (suffix, human, icon, rank) in [
        ("slow", "Traffic speed: slow", "fa-hourglass-1", 20),
        ("medium", "Traffic speed: medium", "fa-hourglass-2", 21),
        ("fast", "Traffic speed: fast", "fa-hourglass-3", 22),
        ("pkt-drop-low", "Packet drop: low", "fa-cut", 23),
        ("bandwidth-low", "Bandwidth: 1 Mbit/s", "fa-tachometer", 24),
        ("clear", "Clear traffic control settings", "fa-times-circle", 25),
    ] {
        let id = format!("{PREFIX}{suffix}");
        assert_eq!(controls[&id], json!({ "id": id, "human": human, "icon": icon, "rank": rank }));
    }
    assert_eq!(latest(&report, &running, &format!("{PREFIX}latency")), "-");
    assert_eq!(latest(&report, &running, &format!("{PREFIX}pktloss")), "-");
    assert_eq!(latest(&report, &running, "active_controls").split(';').count(), 6);
    assert_eq!(latest(&report, &stopped, "active_controls"), "", "a stopped container has no live controls");
    assert!(node(&report, &created).is_null(), "a never-started container is not reported");

    // Bandwidth: tbf, really installed in the container's namespace.
    let reply = client.post("/control", control(&running, &format!("{PREFIX}bandwidth-low"))).await;
    assert!(reply.json.get("error").is_none(), "{}", reply.json);
    assert_eq!(latest(&reply.json["shortcutReport"], &running, &format!("{PREFIX}bandwidth")), "1000kbit");
    let qdisc = qdisc_of(pid);
    assert!(qdisc.contains("qdisc tbf") && qdisc.contains("rate 1Mbit"), "{qdisc}");
    poll_until(&mut client, "the table shows the rate", |r| latest(r, &running, &format!("{PREFIX}bandwidth")) == "1000kbit").await;

    // Set behind the plugin's back: the table shows the kernel's state, not a memory.
    let status = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", "2mbit", "burst", "32kbit", "latency", "400ms"])
        .status()
        .unwrap();
    assert!(status.success());
    poll_until(&mut client, "the table follows the kernel", |r| latest(r, &running, &format!("{PREFIX}bandwidth")) == "2000kbit").await;

    // Latency needs netem: applied if the kernel has it, else a clear error, never a silent success.
    let reply = client.post("/control", control(&running, &format!("{PREFIX}slow"))).await;
    assert_eq!(reply.status, 200);
    match reply.json.get("error").and_then(Value::as_str) {
        Some(error) => {
            assert!(error.contains("netem") && error.contains("not supported"), "{error}");
            assert!(qdisc_of(pid).contains("qdisc tbf"), "a failed change leaves the settings as they were");
        }
        None => {
            assert!(qdisc_of(pid).contains("netem") && qdisc_of(pid).contains("delay 2s"), "{}", qdisc_of(pid));
            assert_eq!(latest(&reply.json["shortcutReport"], &running, &format!("{PREFIX}latency")), "2000ms");
        }
    }

    // Clear: back to the default.
    let reply = client.post("/control", control(&running, &format!("{PREFIX}clear"))).await;
    assert!(reply.json.get("error").is_none(), "{}", reply.json);
    assert!(qdisc_of(pid).contains("qdisc noqueue"), "{}", qdisc_of(pid));
    poll_until(&mut client, "the table shows nothing set", |r| latest(r, &running, &format!("{PREFIX}bandwidth")) == "-").await;
    // Clearing what is already clear is fine.
    let reply = client.post("/control", control(&running, &format!("{PREFIX}clear"))).await;
    assert!(reply.json.get("error").is_none(), "{}", reply.json);

    // Controls on a stopped container fail with a reason.
    let reply = client.post("/control", control(&stopped, &format!("{PREFIX}bandwidth-low"))).await;
    assert!(reply.json["error"].as_str().unwrap().contains("not running"), "{}", reply.json);
}

#[tokio::test]
async fn traffic_control_without_the_traffic_grant_changes_nothing() {
    let engine = Engine::from_env();
    let mut made = Containers::new(&engine);
    let running = made.make(true, &[]);
    let pid = made.pid(&running);
    let (daemon, _config) =
        start(&engine, &[("traffic-control.wasm", guest("traffic-control"))], "[plugins.traffic-control]\ngrants = [\"docker\"]\n");
    let mut client = Client::connect(&daemon.socket("traffic-control").await).await;
    let reply = client.get(&report_path("p")).await;
    assert_eq!(reply.status, 500);
    assert!(reply.json["error"].as_str().unwrap().contains("traffic is not granted"), "{}", reply.json);
    let reply = client.post("/control", control(&running, &format!("{PREFIX}bandwidth-low"))).await;
    assert!(reply.json["error"].as_str().unwrap().contains("traffic is not granted"), "{}", reply.json);
    assert!(qdisc_of(pid).contains("noqueue"));
}
