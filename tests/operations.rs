//! Operations: the config file and its errors, the admin endpoint and
//! `scope-wasm status`, the daemon's own Scope plugin, log format and tagging,
//! the guest log rate limit, and `scope-wasm new`.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Client, Daemon, binary, guest, report_path};

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary()).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn config_check_accepts_the_default_and_names_the_place_of_errors() {
    let (ok, default, _) = run(&["config", "default"]);
    assert!(ok && default.contains("[defaults]") && default.contains("call_timeout_ms = 400"), "{default}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scope-wasm.toml");
    std::fs::write(&file, &default).unwrap();
    let (ok, out, err) = run(&["config", "check", file.to_str().unwrap()]);
    assert!(ok, "the default config is valid: {out}{err}");
    assert!(out.contains("valid"), "{out}");

    for (text, must_say) in [
        ("plugin_dir = \"/x\"\nsokcet_dir = \"/y\"\n", vec!["line 2", "unknown field `sokcet_dir`"]),
        ("[defaults]\ncall_timeout_ms = 900\n", vec!["line 2 (call_timeout_ms): [defaults]", "900 ms is out of range"]),
        ("[plugins.x]\nmemory_mib = 8\nrefresh_ms = 1\n", vec!["line 3 (refresh_ms): [plugins.\"x\"]", "refresh interval"]),
        ("[plugins.x]\ngrants = [\"docker\", \"root\"]\n", vec!["[plugins.\"x\"]", "unknown capability \"root\""]),
        ("rescan_ms = 10\n", vec!["line 1: rescan_ms = 10"]),
        ("[plugins.bad_name]\nmemory_mib = 8\n", vec!["invalid plugin ID \"bad_name\""]),
        ("log_format = \"xml\"\n", vec!["line 1", "unknown variant `xml`"]),
    ] {
        std::fs::write(&file, text).unwrap();
        let (ok, _, err) = run(&["config", "check", file.to_str().unwrap()]);
        assert!(!ok, "{text:?} must be refused");
        assert!(err.contains(file.to_str().unwrap()), "names the file: {err}");
        for needle in must_say {
            assert!(err.contains(needle), "{text:?}: {err} should say {needle:?}");
        }
    }
}

/// A daemon with a healthy plugin, a failing one, a refused file and a broken one.
async fn mixed_daemon(extra: &[&str]) -> Daemon {
    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), b"not wasm").unwrap();
    let mut args = vec!["--refresh-ms", "100"];
    args.extend_from_slice(extra);
    let daemon = Daemon::start(
        &[
            ("counter.wasm", guest("counter")),
            ("loop-forever.wasm", guest("loop-forever")),
            ("bad_name.wasm", guest("counter")),
            ("broken.wasm", garbage.path().to_owned()),
        ],
        &args,
    );
    for id in ["counter", "loop-forever"] {
        let mut client = Client::connect(&daemon.socket(id).await).await;
        for _ in 0..3 {
            client.get(&report_path("p")).await;
        }
    }
    daemon
}

#[tokio::test]
async fn the_admin_endpoint_and_status_show_every_plugin() {
    let daemon = mixed_daemon(&[]).await;

    let metrics = daemon.admin_get("/metrics").await;
    assert!(metrics.contains("# TYPE scope_wasm_plugin_calls_total counter"), "{metrics}");
    assert!(metrics.contains("scope_wasm_plugin_up{plugin=\"counter\"} 1"), "{metrics}");
    assert!(metrics.contains("scope_wasm_plugin_state{plugin=\"counter\",state=\"serving\"} 1"), "{metrics}");
    assert!(metrics.contains("scope_wasm_plugin_errors_total{plugin=\"loop-forever\",cause=\"deadline\"}"), "{metrics}");
    let calls: f64 = metrics
        .lines()
        .find(|l| l.starts_with("scope_wasm_plugin_calls_total{plugin=\"counter\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap();
    assert!(calls >= 2.0, "{metrics}");

    let (ok, table, err) = run(&["status", "--admin-socket", daemon.admin_socket().to_str().unwrap()]);
    assert!(ok, "{err}");
    eprintln!("{table}");
    let row = |start: &str| table.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no {start} in\n{table}")).to_owned();
    assert!(row("counter ").contains("serving") && row("counter ").contains(" ok "), "{table}");
    let looping = row("loop-forever ");
    assert!(looping.contains("serving") && (looping.contains("failing") || looping.contains("over-limits")), "{table}");
    assert!(row("bad_name.wasm").contains("refused"), "{table}");
    let broken = row("broken ");
    assert!(broken.contains("failed") && broken.contains("not a WebAssembly file"), "{table}");

    let (ok, json, _) = run(&["status", "--json", "--admin-socket", daemon.admin_socket().to_str().unwrap()]);
    assert!(ok);
    let statuses: Value = serde_json::from_str(&json).unwrap();
    let counter = statuses.as_array().unwrap().iter().find(|s| s["id"] == "counter").unwrap();
    assert_eq!(counter["label"], "Counter");
    assert!(counter["stats"]["memory_bytes"].as_u64().unwrap() > 0, "{counter}");
}

#[tokio::test]
async fn the_daemons_own_plugin_reports_each_plugins_health_to_the_probe() {
    let daemon = mixed_daemon(&[]).await;
    let mut client = Client::connect(&daemon.socket("scope-wasm").await).await;
    let report = client.get(&report_path("probe-9")).await;
    assert_eq!(report.status, 200);
    let json = &report.json;
    assert_eq!(json["Plugins"][0]["id"], "scope-wasm");
    assert_eq!(json["Plugins"][0]["api_version"], "1");
    assert_eq!(json["Plugins"][0]["interfaces"], serde_json::json!(["reporter"]));
    assert_eq!(json["Host"]["table_templates"]["scope-wasm-plugins"]["type"], "multicolumn-table");
    let latest = &json["Host"]["nodes"]["test-host;<host>"]["latest"];
    assert_eq!(latest["scope-wasm-plugin-counter___state"]["value"], "serving");
    assert_eq!(latest["scope-wasm-plugin-counter___health"]["value"], "ok");
    // The UI draws the columns only, sorted by the first, descending: the
    // first names the plugin, an unhealthy one marked so that it comes first.
    let columns = &json["Host"]["table_templates"]["scope-wasm-plugins"]["columns"];
    assert_eq!(columns[0]["id"], "plugin", "{columns}");
    assert_eq!(latest["scope-wasm-plugin-counter___plugin"]["value"], "counter");
    let looping = latest["scope-wasm-plugin-loop-forever___plugin"]["value"].as_str().unwrap();
    assert_eq!(looping, "\u{26a0} loop-forever");
    let broken = latest["scope-wasm-plugin-broken___plugin"]["value"].as_str().unwrap();
    assert!(broken > "counter" && looping > "counter", "unhealthy rows sort above healthy ones");
    assert_eq!(latest["scope-wasm-plugin-loop-forever___state"]["value"], "serving");
    assert_ne!(latest["scope-wasm-plugin-loop-forever___deadlines"]["value"], "0");
    assert!(latest["scope-wasm-plugin-counter___calls"]["value"].as_str().unwrap().parse::<u64>().unwrap() > 0);
    let timestamp = latest["scope-wasm-plugin-counter___state"]["timestamp"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(), "{timestamp}");

    // A plugin file may not take its ID.
    std::fs::copy(guest("counter"), daemon.plugin_dir.join("scope-wasm.wasm")).unwrap();
    daemon.wait_for_log("the ID scope-wasm is the daemon's own plugin").await;
    assert_eq!(client.get(&report_path("p")).await.json["Plugins"][0]["label"], "WebAssembly plugins");
}

#[tokio::test]
async fn json_logs_tag_every_plugin_line_and_a_chatty_guest_is_cut_down() {
    let daemon = Daemon::start(
        &[("counter.wasm", guest("counter")), ("chatty.wasm", guest("chatty"))],
        &["--log-format", "json", "--refresh-ms", "100"],
    );
    let mut client = Client::connect(&daemon.socket("chatty").await).await;
    let started = Instant::now();
    // 1000 lines per report, ~10 reports a second, for 2 s: ~20,000 lines asked for.
    while started.elapsed() < Duration::from_secs(2) {
        assert_eq!(client.get(&report_path("p")).await.status, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.wait_for_log("log lines dropped").await;
    let log = daemon.log();
    let lines: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let chatty = lines.iter().filter(|l| l["message"].as_str().is_some_and(|m| m.starts_with("chatty "))).count();
    // The burst (100) plus 20 lines/s over the run.
    assert!((100..=200).contains(&chatty), "{chatty} chatty lines passed");
    for line in &lines {
        let message = line["message"].as_str().unwrap_or_default();
        if message.starts_with("chatty ") || message.contains("log lines dropped") {
            assert_eq!(line["plugin"], "chatty", "{line}");
        }
        if message.starts_with("serving on") {
            assert!(line["plugin"].is_string(), "every line about a plugin names it: {line}");
        }
    }
    // The neighbour is unaffected.
    let reply = Client::connect(&daemon.socket("counter").await).await.get(&report_path("p")).await;
    assert_eq!(reply.status, 200);
}

/// No file of a new project names this clone by its absolute path: it works
/// where it is copied, beside the clone.
fn assert_no_absolute_paths(project: &std::path::Path) {
    let clone = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap();
    for entry in walk(project) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        let clone = clone.to_str().unwrap();
        // `../../work/scope-wasm/guest-sdk` is relative; `/work/scope-wasm/guest-sdk` is not.
        let absolute = text.match_indices(clone).any(|(at, _)| !text[..at].ends_with(".."));
        assert!(!absolute, "{} names {clone} by its absolute path:\n{text}", entry.display());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "target" || n == "node_modules") {
            continue;
        }
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

/// `make TARGET` in a project, with this build's binary on the PATH.
fn make(project: &std::path::Path, target: &str, env: &[(&str, &std::path::Path)]) -> (bool, String) {
    let bin_dir = std::path::Path::new(binary()).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let mut command = Command::new("make");
    command.arg(target).current_dir(project).env("PATH", path);
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    (out.status.success(), format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn new_creates_a_rust_plugin_that_builds_and_passes_check_and_its_own_tests() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("disk-probe");
    let (ok, out, err) = run(&["new", "disk-probe", "--lang", "rust", "--dir", project.to_str().unwrap()]);
    assert!(ok && out.contains("make test"), "{out}{err}");
    let (ok, _, err) = run(&["new", "bad_name", "--dir", dir.path().join("x").to_str().unwrap()]);
    assert!(!ok && err.contains("invalid plugin ID"), "{err}");
    assert_no_absolute_paths(&project);

    // Built as the author would, with this daemon on the PATH; the shared
    // target directory keeps the dependencies compiled between runs.
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scaffold-test");
    let (ok, out) = make(&project, "check", &[("CARGO_TARGET_DIR", &target)]);
    assert!(ok, "{out}");
    assert!(out.contains("label:       disk probe") && out.contains("\"id\": \"disk-probe\""), "{out}");
    let (ok, out) = make(&project, "test", &[("CARGO_TARGET_DIR", &target)]);
    assert!(ok && out.contains("passed: 4 steps"), "{out}");

    // Without the binary on PATH: said so, with the way out.
    let out = Command::new("make").args(["test", "SCOPE_WASM=no-such-scope-wasm"]).current_dir(&project).env("CARGO_TARGET_DIR", &target).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no-such-scope-wasm not found: put scope-wasm on PATH, or make SCOPE_WASM="), "{err}");
}

#[test]
fn new_creates_plugins_in_every_sdk_language_that_build_and_pass_check_and_their_own_tests() {
    for lang in ["python", "js", "c", "go"] {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("{lang}-probe");
        let project = dir.path().join(&name);
        let (ok, out, err) = run(&["new", &name, "--lang", lang, "--dir", project.to_str().unwrap()]);
        assert!(ok, "{lang}: {out}{err}");
        assert_no_absolute_paths(&project);
        let (ok, out) = make(&project, "check", &[]);
        assert!(ok, "{lang}: {out}");
        let label = format!("label:       {lang} probe");
        assert!(out.contains(&label) && out.contains(&format!("\"id\": \"{name}\"")), "{lang}: {out}");
        assert!(out.contains(&format!("\"{lang}_probe_polls\"")), "{lang}: {out}");
        let (ok, out) = make(&project, "test", &[]);
        assert!(ok && out.contains("passed: 4 steps"), "{lang}: {out}");
        if lang == "python" {
            // The same project attached to the shared Python runtime instead.
            let (ok, out) = make(&project, "test", &[("PYTHON_BUILD", std::path::Path::new("python-shared"))]);
            assert!(ok && out.contains("passed: 4 steps"), "{lang} on the shared runtime: {out}");
            let plugin = std::fs::read(project.join("target/plugin.wasm")).unwrap();
            let marker = b"scope-plugin-source\x50\x4b\x03\x04"; // the section's name, then the zip's first header
            assert!(plugin.windows(marker.len()).any(|w| w == marker), "{lang}: not rebuilt on the shared runtime");
        }
        if lang == "js" {
            // The SDK is a dependency the build installed, not a copy in the project.
            assert!(!project.join("scope-plugin.js").exists());
            let package = std::fs::read_to_string(project.join("package.json")).unwrap();
            assert!(package.contains("\"scope-plugin\": \"file:../"), "{package}");
            assert!(project.join("node_modules/scope-plugin/package.json").is_file());
        }
        if lang == "go" {
            // The SDK is a module the project requires, not packages copied in.
            let go_mod = std::fs::read_to_string(project.join("go.mod")).unwrap();
            assert!(go_mod.contains("require scope-wasm/guest-sdk/go v0.0.0"), "{go_mod}");
            assert!(go_mod.contains("replace scope-wasm/guest-sdk/go => ../"), "{go_mod}");
            assert!(!project.join("scope").exists());
        }
    }
}

#[test]
fn the_operators_guide_carries_the_default_config() {
    let (ok, default, _) = run(&["config", "default"]);
    assert!(ok);
    let guide = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operators.md")).unwrap();
    // The guide shows the defaults as root; the directories differ for other users.
    let as_root = unsafe { libc::geteuid() } == 0;
    for line in default.lines().filter(|l| as_root || !l.contains('/')) {
        assert!(guide.lines().any(|g| g == line), "docs/operators.md lacks {line:?}: regenerate it with `scope-wasm config default`");
    }
}

#[test]
fn a_python_project_builds_with_the_sdk_installed_in_its_own_venv() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("venv-probe");
    let (ok, out, err) = run(&["new", "venv-probe", "--lang", "python", "--dir", project.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/python");
    let venv = Command::new("python3").args(["-m", "venv", ".venv"]).current_dir(&project).status().unwrap();
    assert!(venv.success());
    let pip = Command::new(".venv/bin/pip").args(["install", "-q"]).arg(&sdk).current_dir(&project).output().unwrap();
    assert!(pip.status.success(), "pip install guest-sdk/python: {}", String::from_utf8_lossy(&pip.stderr));
    // Marked, to see which copy of the SDK the build took.
    let site = std::fs::read_dir(project.join(".venv/lib")).unwrap().next().unwrap().unwrap().path().join("site-packages");
    let ids = site.join("scope_plugin/ids.py");
    let marked = std::fs::read_to_string(&ids).unwrap() + "\nINSTALLED_COPY = \"from the project's venv\"\n";
    std::fs::write(&ids, marked).unwrap();
    let (ok, out) = make(&project, "test", &[]);
    assert!(ok && out.contains("passed: 4 steps"), "{out}");
    let wasm = std::fs::read(project.join("target/plugin.wasm")).unwrap();
    let needle = b"from the project's venv";
    assert!(wasm.windows(needle.len()).any(|w| w == needle), "the build did not use the venv's scope_plugin");
}

#[test]
fn a_rust_project_builds_with_the_sdk_as_a_git_dependency() {
    // The repository this test runs in, as a git source (a file:// URL: no network).
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap();
    if !repo.join(".git").exists() {
        panic!("{} is not a git checkout: this test needs one", repo.display());
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("git-probe");
    let (ok, out, err) = run(&["new", "git-probe", "--lang", "rust", "--dir", project.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let manifest = project.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let line = text.lines().find(|l| l.starts_with("scope-plugin = ")).unwrap().to_owned();
    std::fs::write(&manifest, text.replace(&line, &format!("scope-plugin = {{ git = \"file://{}\" }}", repo.display()))).unwrap();
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scaffold-test");
    let (ok, out) = make(&project, "test", &[("CARGO_TARGET_DIR", &target)]);
    assert!(ok && out.contains("passed: 4 steps"), "{out}");
    let lock = std::fs::read_to_string(project.join("Cargo.lock")).unwrap();
    assert!(lock.contains(&format!("source = \"git+file://{}", repo.display())), "{lock}");
}

#[test]
fn a_moved_go_project_builds_against_the_sdk_module_its_replace_names() {
    let dir = tempfile::tempdir().unwrap();
    let made = dir.path().join("go-module-probe");
    let (ok, out, err) = run(&["new", "go-module-probe", "--lang", "go", "--dir", made.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    // Moved one level deeper: the relative paths no longer reach the SDK.
    let project = dir.path().join("moved/go-module-probe");
    std::fs::create_dir_all(project.parent().unwrap()).unwrap();
    std::fs::rename(&made, &project).unwrap();
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk").canonicalize().unwrap();
    let (ok, out) = make(&project, "build", &[("SCOPE_WASM_SDK", &sdk)]);
    assert!(!ok && out.contains("scope-wasm/guest-sdk/go"), "the stale replace should fail the build: {out}");
    // The way out the project's go.mod names.
    let edit = Command::new("go")
        .args(["mod", "edit", &format!("-replace=scope-wasm/guest-sdk/go={}", sdk.join("go").display())])
        .current_dir(&project)
        .status()
        .unwrap();
    assert!(edit.success());
    let (ok, out) = make(&project, "test", &[("SCOPE_WASM_SDK", &sdk)]);
    assert!(ok && out.contains("passed: 4 steps"), "{out}");
}

#[test]
fn the_go_sdk_module_holds_the_bindings_of_this_wit() {
    // The bindings are committed (a Go module cannot generate them when it is
    // built); they must be what wit/ generates today.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap();
    let build = Command::new(env!("CARGO")).args(["build", "-q", "-p", "scope-guest-build"]).current_dir(&root).status().unwrap();
    assert!(build.success());
    let out = tempfile::tempdir().unwrap();
    let generated = Command::new(root.join("target/debug/scope-guest-build"))
        .args(["bindings", "--lang", "go", "--pkg-name", "scope-wasm/guest-sdk/go", "--wit"])
        .arg(root.join("wit"))
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    let files = walk(out.path());
    assert!(files.len() > 10, "{files:?}");
    for file in files {
        let relative = file.strip_prefix(out.path()).unwrap();
        let committed = std::fs::read(root.join("guest-sdk/go").join(relative)).unwrap_or_default();
        assert!(
            committed == std::fs::read(&file).unwrap(),
            "guest-sdk/go/{} is not what wit/ generates: run `make go-bindings`",
            relative.display()
        );
    }
}
