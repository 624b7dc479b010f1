//! What the Scope UI shows as a plugin's status when a call fails (the `error`
//! of a failed `/report` or `/control` answer) is a sentence with the cause:
//! never a Rust Debug shape (`DockerError::Unavailable("...")`), never a bare
//! `wasm unreachable` for a guest's panic or uncaught exception.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Client, Daemon, guest, report_path};

const HOST_NODE: &str = "test-host;<host>";

/// No Rust Debug output in a status text.
fn assert_human(text: &str) {
    for shape in ["Error::", "(\"", "Unavailable(", "Denied(", "wasm trap", "unreachable"] {
        assert!(!text.contains(shape), "{shape:?} in the status text: {text}");
    }
    assert!(text.len() <= 4096, "{} bytes", text.len());
}

/// The `error` of the first failed report, polling until the plugin fails.
async fn failing_report(client: &mut Client) -> String {
    let started = Instant::now();
    loop {
        let reply = client.get(&report_path("t")).await;
        if let Some(error) = reply.json["error"].as_str() {
            return error.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the plugin never failed: {}", reply.json);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `error` of a control the plugin fails.
async fn failing_control(client: &mut Client, control: &str, args: &[(&str, &str)]) -> String {
    let args: serde_json::Map<String, Value> = args.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let body = json!({ "AppID": "t", "NodeID": HOST_NODE, "Control": control, "ControlArgs": args });
    let reply = client.post("/control?probe_id=t", body.to_string()).await;
    reply.json["error"].as_str().unwrap_or_else(|| panic!("{control} did not fail: {}", reply.json)).to_owned()
}

#[tokio::test]
async fn a_docker_plugin_without_an_engine_says_so_once() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[plugins.volume-count]\ngrants = [\"docker\"]\n").unwrap();
    let daemon = Daemon::start(
        &[("volume-count.wasm", guest("volume-count"))],
        &["--config", config.to_str().unwrap(), "--docker-socket", socket.to_str().unwrap()],
    );
    let mut client = Client::connect(&daemon.socket("volume-count").await).await;
    let error = failing_report(&mut client).await;
    let path = socket.display().to_string();
    assert!(error.starts_with("plugin volume-count: "), "{error}");
    assert!(error.contains(&format!("Docker Engine unavailable: {path} does not exist")), "{error}");
    assert_eq!(error.matches(&path).count(), 1, "the socket named once: {error}");
    assert_human(&error);
}

#[tokio::test]
async fn a_rust_panic_is_the_status_with_its_message_and_place() {
    let daemon = Daemon::start(&[("panic-on-second.wasm", guest("panic-on-second"))], &["--refresh-ms", "60000"]);
    let mut client = Client::connect(&daemon.socket("panic-on-second").await).await;
    // The first report is good; the second panics.
    let error = failing_report(&mut client).await;
    assert!(error.starts_with("plugin panic-on-second: trapped: panicked at "), "{error}");
    assert!(error.contains("panic-on-second/src/lib.rs:"), "the place: {error}");
    assert!(error.ends_with(": zoo: second report, as promised"), "the message: {error}");
    assert_human(&error);
    // And the log has it, at error level, as the guest sent it.
    daemon.wait_for_log("panicked at ").await;
}

#[tokio::test]
async fn a_raising_python_plugin_says_what_it_raised() {
    let daemon = Daemon::start(&[("conformance.wasm", guest("conformance-python"))], &["--refresh-ms", "60000"]);
    let mut client = Client::connect(&daemon.socket("conformance").await).await;

    let type_error = failing_control(&mut client, "raise", &[("what", "type-error")]).await;
    assert_eq!(
        type_error,
        "plugin conformance: TypeError: unsupported operand type(s) for +: 'int' and 'str'"
    );
    let key_error = failing_control(&mut client, "raise", &[("what", "key-error")]).await;
    assert_eq!(key_error, "plugin conformance: KeyError: 'missing'");
    let open_proc = failing_control(&mut client, "raise", &[("what", "open-proc")]).await;
    assert!(open_proc.starts_with("plugin conformance: FileNotFoundError: "), "{open_proc}");
    assert!(open_proc.contains("/proc/x") && open_proc.contains("read /proc through scope_plugin.procfs"), "{open_proc}");
    // A capability's error uncaught: its sentence, with the fix.
    let host_error = failing_control(&mut client, "raise", &[("what", "host-error")]).await;
    assert_eq!(
        host_error,
        "plugin conformance: Docker denied: docker is not granted to this plugin (add \"docker\" to its grants in the config)"
    );
    for text in [&type_error, &key_error, &open_proc, &host_error] {
        assert_human(text);
    }
    // Caught, not trapped: the instance lives on.
    assert_eq!(client.get(&report_path("t")).await.status, 200);
}

#[tokio::test]
async fn a_panicking_go_plugin_and_an_aborting_c_plugin_say_why() {
    let daemon = Daemon::start(
        &[("go.wasm", guest("conformance-go")), ("c.wasm", guest("conformance-c")), ("js.wasm", guest("conformance-js"))],
        &["--refresh-ms", "60000", "--memory-mib", "256"],
    );
    let (go, c, js) = (daemon.socket("go").await, daemon.socket("c").await, daemon.socket("js").await);

    let mut go = Client::connect(&go).await;
    let panic = failing_control(&mut go, "panic", &[]).await;
    assert!(panic.starts_with("plugin go: panic: runtime error: index out of range [3] with length 0"), "{panic}");
    assert_human(&panic);

    let mut c = Client::connect(&c).await;
    let abort = failing_control(&mut c, "abort", &[]).await;
    assert_eq!(abort, "plugin c: trapped: aborted: count 0 is beyond repair");

    let mut js = Client::connect(&js).await;
    let type_error = failing_control(&mut js, "raise", &[("what", "type-error")]).await;
    assert!(type_error.starts_with("plugin js: TypeError: "), "{type_error}");
    assert_human(&type_error);
    let host_error = failing_control(&mut js, "raise", &[("what", "host-error")]).await;
    assert_eq!(
        host_error,
        "plugin js: Docker denied: docker is not granted to this plugin (add \"docker\" to its grants in the config)"
    );
}
