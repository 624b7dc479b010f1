//! The iowait port: the original's report shape and controls, and values that
//! follow what the host does (a /proc/stat delta, checked against the test's own).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Client, Daemon, guest, report_path};

const HOST_NODE: &str = "test-host;<host>";

fn host_node(report: &Value) -> &Value {
    &report["Host"]["nodes"][HOST_NODE]
}

/// Idle and total ticks of the aggregate cpu line.
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let ticks: Vec<u64> = stat.lines().next().unwrap().split_whitespace().skip(1).take(8).map(|t| t.parse().unwrap()).collect();
    (ticks[3], ticks.iter().sum())
}

fn idle_percent_between(a: (u64, u64), b: (u64, u64)) -> f64 {
    (b.0 - a.0) as f64 * 100.0 / (b.1 - a.1).max(1) as f64
}

#[tokio::test]
async fn iowait_reports_like_the_original_and_follows_the_host() {
    let daemon = Daemon::start(&[("iowait.wasm", guest("iowait"))], &["--refresh-ms", "200"]);
    let socket = daemon.socket("iowait").await;
    let mut client = Client::connect(&socket).await;
    let report = client.get(&report_path("probe-1")).await.json;

    assert_eq!(
        report["Plugins"],
        json!([{ "id": "iowait", "label": "iowait", "description": "Adds a graph of CPU IO Wait to hosts",
                 "interfaces": ["reporter", "controller"], "api_version": "1" }])
    );
    let host = &report["Host"];
    assert_eq!(host["metric_templates"], json!({ "idle": { "id": "idle", "label": "Idle", "format": "percent", "priority": 0.1 } }));
    assert_eq!(
        host["controls"],
        json!({
            "switchToIdle": { "id": "switchToIdle", "human": "Switch to idle", "icon": "fa-gears", "rank": 1 },
            "switchToIOWait": { "id": "switchToIOWait", "human": "Switch to IO wait", "icon": "fa-clock-o", "rank": 1 },
        })
    );
    let node = host_node(&report);
    assert_eq!(node["latest"]["active_controls"]["value"], "switchToIOWait");
    assert_eq!(node["latest"]["control_probe_id"]["value"], "probe-1");
    let idle = &node["metrics"]["idle"];
    assert_eq!((idle["min"].as_f64(), idle["max"].as_f64()), (Some(0.0), Some(100.0)));
    assert_eq!(idle["samples"].as_array().unwrap().len(), 1);

    // The live control switches the metric and answers with a shortcut report.
    let switch = |control: &str| json!({ "AppID": "a", "NodeID": HOST_NODE, "Control": control, "ControlArgs": null }).to_string();
    let reply = client.post("/control?probe_id=probe-1", switch("switchToIOWait")).await;
    let shortcut = &reply.json["shortcutReport"];
    assert_eq!(shortcut["Plugins"][0]["id"], "iowait");
    assert_eq!(shortcut["Host"]["metric_templates"]["iowait"]["label"], "IO Wait");
    assert!(host_node(shortcut)["metrics"]["iowait"]["samples"][0]["value"].is_number());
    assert_eq!(host_node(shortcut)["latest"]["active_controls"]["value"], "switchToIdle");
    // The dead one is refused, as in the original, in words that say why; a
    // control the plugin never declared is unknown.
    let reply = client.post("/control", switch("switchToIOWait")).await;
    let error = reply.json["error"].as_str().unwrap();
    assert_eq!(
        error,
        format!("plugin iowait: control \"switchToIOWait\" is not active on node \"{HOST_NODE}\" now (the node's latest report does not offer it)"),
        "{}",
        reply.json
    );
    let reply = client.post("/control", switch("explode")).await;
    assert_eq!(reply.json["error"], "plugin iowait: unknown control \"explode\"", "{}", reply.json);
    let reply = client.post("/control", switch("switchToIdle")).await;
    assert!(reply.json.get("error").is_none(), "{}", reply.json);

    // Keep polling (the probe's cadence keeps the refresh going); remember the latest idle value.
    let latest = Arc::new(Mutex::new(f64::NAN));
    let polling = {
        let latest = latest.clone();
        tokio::spawn(async move {
            let mut client = Client::connect(&socket).await;
            loop {
                let report = client.get(&report_path("p")).await.json;
                if let Some(v) = host_node(&report)["metrics"]["idle"]["samples"][0]["value"].as_f64() {
                    *latest.lock().unwrap() = v;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // Measures over a steady window, as the test sees it and as the plugin does.
    async fn steady_window(latest: &Mutex<f64>) -> (f64, f64) {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let a = cpu_ticks();
        tokio::time::sleep(Duration::from_millis(800)).await;
        let b = cpu_ticks();
        (idle_percent_between(a, b), *latest.lock().unwrap())
    }

    let (rest_ours, rest_plugin) = steady_window(&latest).await;
    let busy = Arc::new(AtomicBool::new(true));
    let burners: Vec<_> = (0..std::thread::available_parallelism().unwrap().get())
        .map(|_| {
            let busy = busy.clone();
            std::thread::spawn(move || {
                while busy.load(Ordering::Relaxed) {
                    std::hint::black_box(0u64);
                }
            })
        })
        .collect();
    let (load_ours, load_plugin) = steady_window(&latest).await;
    busy.store(false, Ordering::Relaxed);
    burners.into_iter().for_each(|b| b.join().unwrap());
    polling.abort();

    eprintln!("idle at rest: test {rest_ours:.1}%, plugin {rest_plugin:.1}%; loaded: test {load_ours:.1}%, plugin {load_plugin:.1}%");
    assert!((rest_plugin - rest_ours).abs() < 20.0, "at rest: plugin {rest_plugin:.1}% vs /proc/stat {rest_ours:.1}%");
    assert!((load_plugin - load_ours).abs() < 20.0, "loaded: plugin {load_plugin:.1}% vs /proc/stat {load_ours:.1}%");
    // On a machine already busy (idle near 0 "at rest") the burners cannot
    // move the value; the agreement with /proc/stat above still holds there.
    if rest_ours > 40.0 {
        assert!(load_plugin < rest_plugin - 25.0, "the value moves with the load: {rest_plugin:.1}% -> {load_plugin:.1}%");
    }
}
