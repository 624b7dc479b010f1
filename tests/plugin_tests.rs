//! `scope-wasm test`: every bundled plugin passes its own fixture and script;
//! a wrong expectation fails with a diff and a non-zero exit; `--update`
//! records expectations; `--record` captures the real host and replays it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{binary, guest};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `scope-wasm test ARGS`: (exit 0, stdout, stderr).
fn scope_test(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary()).arg("test").args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A bundled plugin against `guests/<id>/test/<id>.test.toml`.
fn bundled(id: &str, steps: usize) {
    let script = repo().join(format!("guests/{id}/test/{id}.test.toml"));
    let (ok, out, err) = scope_test(&[guest(id).to_str().unwrap(), script.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("passed: {steps} steps")) && !out.contains("FAILED"), "{out}");
}

#[test]
fn iowait_follows_a_changing_proc_stat() {
    bundled("iowait", 6);
}

#[test]
fn volume_count_counts_three_containers() {
    bundled("volume-count", 3);
}

#[test]
fn traffic_control_clicks_change_the_table() {
    bundled("traffic-control", 8);
}

#[test]
fn http_statistics_turns_counters_into_rates() {
    bundled("http-statistics", 4);
}

#[test]
fn counter_pauses_resumes_and_resets() {
    bundled("counter", 8);
}

/// The counter's first report checked against `expect`/`assert` written in TOML.
fn counter_script(dir: &Path, step: &str) -> PathBuf {
    let script = dir.join("counter.test.toml");
    std::fs::write(&script, format!("[[step]]\nreport = true\n{step}\n")).unwrap();
    script
}

#[test]
fn a_wrong_expectation_fails_naming_each_difference() {
    let dir = tempfile::tempdir().unwrap();
    let script = counter_script(
        dir.path(),
        "expect = { \"Host\" = { nodes = { \"test-host;<host>\" = { latest = { counter_state = { value = \"stopped\" } } } } } }\n\
         assert = [{ node = \"test-host;<host>\", latest = \"counter_value\", value = \"7\" },\n\
                   { node = \"test-host;<host>\", metric = \"counter\", min = 5.0 },\n\
                   { node = \"elsewhere;<host>\" }]",
    );
    let (ok, out, err) = scope_test(&[guest("counter").to_str().unwrap(), script.to_str().unwrap()]);
    assert!(!ok && err.contains("1 step(s) failed"), "{out}{err}");
    for line in [
        "FAILED  step 1: report",
        "$.Host.nodes[\"test-host;<host>\"].latest.counter_state.value: expected \"stopped\", got \"counting\"",
        "node \"test-host;<host>\": latest \"counter_value\" is \"1\", expected \"7\"",
        "node \"test-host;<host>\": metric \"counter\" is 1, expected between 5 and +inf",
        "node \"elsewhere;<host>\": not in the report (its nodes: test-host;<host>)",
        "FAILED: 1 of 1 steps",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
}

#[test]
fn update_records_an_expectation_that_then_holds() {
    let dir = tempfile::tempdir().unwrap();
    let script = counter_script(dir.path(), "expect = \"snapshots/first.json\"");
    let plugin = guest("counter");
    let args = [plugin.to_str().unwrap(), script.to_str().unwrap()];
    let (ok, out, _) = scope_test(&args);
    assert!(!ok && out.contains("does not exist; `--update` records"), "{out}");

    let (ok, out, err) = scope_test(&[&args[..], &["--update"]].concat());
    assert!(ok, "{out}{err}");
    let snapshot = dir.path().join("snapshots/first.json");
    let recorded: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&snapshot).unwrap()).unwrap();
    let node = &recorded["Host"]["nodes"]["test-host;<host>"];
    assert_eq!(node["latest"]["counter_value"]["value"], "1", "{recorded}");
    // The fixture's clock, not the machine's: the same bytes on every run.
    assert_eq!(node["latest"]["counter_value"]["timestamp"], "2024-01-01T00:00:00.000Z", "{recorded}");
    assert_eq!(recorded["Plugins"][0]["id"], "counter");

    let (ok, out, _) = scope_test(&args);
    assert!(ok && out.contains("passed: 1 steps"), "{out}");
    let edited = std::fs::read_to_string(&snapshot).unwrap().replace("\"counting\"", "\"paused\"");
    std::fs::write(&snapshot, edited).unwrap();
    let (ok, out, _) = scope_test(&args);
    assert!(!ok && out.contains("snapshots/first.json: $.Host.nodes[\"test-host;<host>\"].latest.counter_state.value: expected \"paused\", got \"counting\""), "{out}");
}

#[test]
fn bad_scripts_and_fixtures_are_refused_naming_the_file_and_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = guest("counter");
    let script = dir.path().join("bad.test.toml");
    std::fs::write(&script, "[[step]]\nreprot = true\n").unwrap();
    let (ok, out, err) = scope_test(&[plugin.to_str().unwrap(), script.to_str().unwrap()]);
    assert!(!ok && err.contains("bad.test.toml") && err.contains("unknown field `reprot`"), "{out}{err}");
    assert!(!err.contains("panicked") && err.lines().count() == 1, "{err}");

    std::fs::write(&script, "fixture = \"f.toml\"\n[[step]]\nreport = true\n").unwrap();
    std::fs::write(dir.path().join("f.toml"), "[procfs.files]\nstat = 3\n").unwrap();
    let (ok, _, err) = scope_test(&[plugin.to_str().unwrap(), script.to_str().unwrap()]);
    assert!(!ok && err.contains("fixture") && err.contains("f.toml") && err.contains("invalid type: integer `3`"), "{err}");

    std::fs::write(&script, "[[step]]\ncontrol = \"pause\"\n").unwrap();
    let (ok, _, err) = scope_test(&[plugin.to_str().unwrap(), script.to_str().unwrap()]);
    assert!(!ok && err.contains("step 1") && err.contains("needs the `node`"), "{err}");

    std::fs::write(&script, "[[step]]\nreport = true\n").unwrap();
    let (ok, _, err) = scope_test(&[script.to_str().unwrap()]);
    assert!(!ok && err.contains("no plugin file"), "{err}");
}

#[test]
fn a_recorded_host_replays_to_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("recorded.toml");
    let plugin = guest("iowait");
    let (ok, out, err) = scope_test(&["--record", fixture.to_str().unwrap(), plugin.to_str().unwrap(), "--hostname", "rec-host"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("recorded what the host answered"), "{out}");
    let recorded = std::fs::read_to_string(&fixture).unwrap();
    let data: toml::Value = toml::from_str(&recorded).unwrap();
    assert_eq!(data["hostname"].as_str(), Some("rec-host"), "{recorded}");
    let stat = data["procfs"]["files"]["stat"].as_str().unwrap_or_else(|| panic!("no /proc/stat recorded:\n{recorded}"));
    let cpu: Vec<f64> = stat.lines().next().unwrap().split_whitespace().skip(1).take(8).map(|t| t.parse().unwrap()).collect();
    let idle = cpu[3] * 100.0 / cpu.iter().sum::<f64>();

    // Replayed: the first report is the share of idle time in what was recorded.
    let script = dir.path().join("replay.test.toml");
    std::fs::write(
        &script,
        format!("fixture = \"recorded.toml\"\n[[step]]\nreport = true\nassert = [{{ node = \"rec-host;<host>\", metric = \"idle\", min = {}, max = {} }}]\n", idle - 1e-6, idle + 1e-6),
    )
    .unwrap();
    let (ok, out, err) = scope_test(&[plugin.to_str().unwrap(), script.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
}

#[test]
fn a_recorded_docker_host_replays_its_containers() {
    let engine = support::docker::Engine::from_env();
    let mut containers = support::docker::Containers::new(&engine);
    let with_volume = containers.make(true, &["-v", "/data"]);
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("docker.toml");
    let plugin = guest("volume-count");
    let socket = engine.socket.to_str().unwrap();
    let (ok, out, err) = scope_test(&["--record", fixture.to_str().unwrap(), plugin.to_str().unwrap(), "--docker-socket", socket]);
    assert!(ok, "{out}{err}");
    let recorded = std::fs::read_to_string(&fixture).unwrap();
    assert!(recorded.contains(&with_volume) && recorded.contains("destination = \"/data\""), "{recorded}");

    // Replayed with no engine at all: the container and its one volume are there.
    let script = dir.path().join("replay.test.toml");
    std::fs::write(
        &script,
        format!("fixture = \"docker.toml\"\n[[step]]\nreport = true\nassert = [{{ node = \"{with_volume};<container>\", latest = \"volume_count\", value = \"1\" }}]\n"),
    )
    .unwrap();
    let (ok, out, err) = scope_test(&[plugin.to_str().unwrap(), script.to_str().unwrap(), "--docker-socket", "/nonexistent.sock"]);
    assert!(ok, "{out}{err}");
}

#[test]
fn grants_still_apply_under_a_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("denied.test.toml");
    let fixture = repo().join("guests/volume-count/test/fixture.toml");
    std::fs::write(
        &script,
        format!("fixture = {:?}\ngrants = []\n[[step]]\nreport = true\nerror = \"docker is not granted\"\n", fixture.display().to_string()),
    )
    .unwrap();
    let (ok, out, err) = scope_test(&[guest("volume-count").to_str().unwrap(), script.to_str().unwrap()]);
    assert!(ok && out.contains("passed: 1 steps"), "{out}{err}");
}

#[test]
fn scripts_and_fixtures_may_be_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fixture.json"), r#"{ "hostname": "json-host", "time_ms": 1800000000000 }"#).unwrap();
    let script = dir.path().join("counter.test.json");
    std::fs::write(
        &script,
        r#"{ "fixture": "fixture.json", "step": [
             { "report": true, "assert": [{ "node": "json-host;<host>", "latest": "counter_value", "value": "1" }],
               "expect": { "Host": { "nodes": { "json-host;<host>": { "latest": { "counter_value": { "timestamp": "2027-01-15T08:00:00.000Z" } } } } } } },
             { "control": "pause", "node": "json-host;<host>",
               "assert": [{ "node": "json-host;<host>", "control": "resume" }] } ] }"#,
    )
    .unwrap();
    let (ok, out, err) = scope_test(&[guest("counter").to_str().unwrap(), script.to_str().unwrap()]);
    assert!(ok && out.contains("passed: 2 steps"), "{out}{err}");
}
