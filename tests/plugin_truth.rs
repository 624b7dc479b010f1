//! What the operator and the Scope user see is true: a plugin that fails
//! every poll is `failing` with its last error everywhere the daemon tells
//! (`scope-wasm status`, `/status`, `/metrics`, its own Scope table), every
//! log line about a plugin names it, and a log written to a file has no
//! colour codes.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Client, Daemon, binary, guest, report_path};

/// volume-count without the docker grant: every report fails ("listing
/// containers: ..."), polled or not.
fn failing_daemon(extra: &[&str]) -> Daemon {
    Daemon::start(&[("counter.wasm", guest("counter")), ("volume-count.wasm", guest("volume-count"))], extra)
}

async fn status_of(daemon: &Daemon, id: &str) -> Value {
    let statuses: Value = serde_json::from_str(&daemon.admin_get("/status").await).unwrap();
    statuses.as_array().unwrap().iter().find(|s| s["id"] == id).cloned().unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_plugin_failing_every_poll_is_failing_everywhere() {
    let daemon = failing_daemon(&["--refresh-ms", "200"]);
    let mut client = Client::connect(&daemon.socket("volume-count").await).await;
    let reply = client.get(&report_path("p")).await;
    assert_eq!(reply.status, 500, "{}", reply.json);
    let error = reply.json["error"].as_str().unwrap().to_owned();
    assert!(error.contains("listing containers"), "{error}");

    // The background refresh alone keeps failing: no more polls needed.
    let started = Instant::now();
    let status = loop {
        let status = status_of(&daemon, "volume-count").await;
        if status["health"] == "failing" {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never failing: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["state"], "serving", "{status}");
    assert_eq!(status["detail"], error.as_str(), "the detail is the error the probe got: {status}");
    // (`slow` is fair on a busy machine; never `failing`.)
    assert_ne!(status_of(&daemon, "counter").await["health"], "failing");

    let out = Command::new(binary()).args(["status", "--admin-socket", daemon.admin_socket().to_str().unwrap()]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table.lines().find(|l| l.starts_with("volume-count ")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains(" failing ") && row.contains("listing containers"), "{table}");

    let metrics = daemon.admin_get("/metrics").await;
    assert!(
        metrics.lines().any(|l| l.contains("plugin=\"volume-count\"") && l.contains("health=\"failing\"") && l.ends_with(" 1")),
        "{metrics}"
    );

    let mut own = Client::connect(&daemon.socket("scope-wasm").await).await;
    let report = own.get(&report_path("p")).await;
    let latest = &report.json["Host"]["nodes"]["test-host;<host>"]["latest"];
    assert_eq!(latest["scope-wasm-plugin-volume-count___health"]["value"], "failing", "{latest}");
    assert_ne!(latest["scope-wasm-plugin-counter___health"]["value"], "failing", "{latest}");
}

#[tokio::test]
async fn every_log_line_about_a_plugin_names_it() {
    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), b"not wasm").unwrap();
    // Plugins that fail in every way there is, and a file that is no plugin.
    let ids = ["counter", "volume-count", "fail-after-first", "loop-forever", "panic-on-second", "memory-bomb", "broken"];
    let daemon = Daemon::start(
        &[
            ("counter.wasm", guest("counter")),
            ("volume-count.wasm", guest("volume-count")),
            ("fail-after-first.wasm", guest("fail-after-first")),
            ("loop-forever.wasm", guest("loop-forever")),
            ("panic-on-second.wasm", guest("panic-on-second")),
            ("memory-bomb.wasm", guest("memory-bomb")),
            ("broken.wasm", garbage.path().to_owned()),
        ],
        &["--log-format", "json", "--refresh-ms", "200"],
    );
    for id in &ids[..6] {
        let mut client = Client::connect(&daemon.socket(id).await).await;
        for _ in 0..4 {
            client.get(&report_path("p")).await;
        }
    }
    // Removed while running, too.
    std::fs::remove_file(daemon.plugin_dir.join("fail-after-first.wasm")).unwrap();
    daemon.socket_gone("fail-after-first").await;

    let log = daemon.log();
    let mut about_plugins = 0;
    for line in log.lines() {
        let json: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let text = line.replace("\\\"", "\"");
        // A line that mentions a plugin (in its message or any field) names it.
        for id in ids {
            let mentions = text.contains(&format!("plugin {id}"))
                || text.contains(&format!("/{id}.wasm"))
                || text.contains(&format!("/{id}.sock"))
                || json["message"].as_str().is_some_and(|m| m.contains(&format!("{id}:")));
            if mentions {
                about_plugins += 1;
                assert_eq!(json["plugin"], id, "a line about {id} names it in a `plugin` field: {line}");
            }
        }
    }
    assert!(about_plugins >= 12, "{about_plugins} lines about plugins:\n{log}");
}

#[tokio::test]
async fn a_log_written_to_a_file_has_no_colour_codes() {
    let daemon = failing_daemon(&[]);
    Client::connect(&daemon.socket("volume-count").await).await.get(&report_path("p")).await;
    let log = daemon.log();
    assert!(log.contains("plugin=volume-count"), "{log}");
    assert!(!log.contains('\u{1b}'), "escape codes in a log file:\n{log:?}");
}
