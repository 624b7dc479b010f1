//! The sandbox through a real guest: procfs reads that try to escape /proc or
//! read secrets are refused, the safe subset works, grants decide, and plain
//! WASI reaches no file, no environment and no network.

mod support;

use support::{Client, Daemon, attempt, guest, report_path};

const CONFIG: &str = r#"
[plugins.environ-reader]
grants = ["procfs"]
procfs.environ = true

[plugins.no-grants]
grants = []
"#;

async fn daemon() -> (Daemon, tempfile::NamedTempFile) {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), CONFIG).unwrap();
    let daemon = Daemon::start(
        &[
            ("escape-artist.wasm", guest("escape-artist")),
            ("environ-reader.wasm", guest("escape-artist")),
            ("no-grants.wasm", guest("escape-artist")),
        ],
        &["--config", config.path().to_str().unwrap()],
    );
    (daemon, config)
}

async fn connect(daemon: &Daemon, id: &str) -> Client {
    let mut client = Client::connect(&daemon.socket(id).await).await;
    assert_eq!(client.get(&report_path("t")).await.status, 200);
    client
}

#[tokio::test]
async fn procfs_escapes_and_secrets_are_refused_and_the_safe_subset_reads() {
    let (daemon, _config) = daemon().await;
    let mut client = connect(&daemon, "escape-artist").await;
    let me = std::process::id().to_string();

    assert!(attempt(&mut client, "read", &[("path", "stat")]).await.starts_with("ok:cpu"));
    assert!(attempt(&mut client, "read", &[("path", "/proc/meminfo")]).await.contains("MemTotal"));
    assert!(attempt(&mut client, "read", &[("path", "net/dev")]).await.contains("lo:"));
    let status = attempt(&mut client, "read", &[("path", &format!("{me}/status"))]).await;
    assert!(status.starts_with("ok:") && status.contains(&format!("Pid:\t{me}")), "{status}");
    let pids = attempt(&mut client, "pids", &[]).await;
    assert!(pids.split([':', ',']).any(|p| p == me), "{pids}");
    let gone = attempt(&mut client, "read", &[("path", "4194303/status")]).await;
    assert!(gone.starts_with("err:NotFound"), "{gone}");

    // A link from a temp dir into /proc is still a path outside /proc.
    let tmp = tempfile::tempdir().unwrap();
    let link = tmp.path().join("proc");
    std::os::unix::fs::symlink("/proc", &link).unwrap();
    let via_link = format!("{}/stat", link.display());

    for path in [
        "/proc/self/root/etc/shadow",
        "/proc/1/root/etc/shadow",
        "/proc/1/environ",
        &format!("{me}/environ"),
        "/proc/self/fd/0",
        &format!("{me}/fd/0"),
        &format!("{me}/cwd/Cargo.toml"),
        &format!("{me}/exe"),
        &format!("{me}/mem"),
        &format!("{me}/task/{me}/root/etc/passwd"),
        "/proc/../etc/passwd",
        "net/../../etc/passwd",
        "/etc/passwd",
        &via_link,
        "mounts",
        "kcore",
        "kmsg",
        "sysrq-trigger",
        "sys/kernel/core_pattern",
    ] {
        let result = attempt(&mut client, "read", &[("path", path)]).await;
        assert!(result.starts_with("err:Denied"), "{path} must be refused, got {result}");
    }
}

#[tokio::test]
async fn grants_decide_environ_and_procfs_itself() {
    let (daemon, _config) = daemon().await;
    let me = std::process::id().to_string();
    let environ = format!("{me}/environ");

    let mut granted = connect(&daemon, "environ-reader").await;
    let result = attempt(&mut granted, "read", &[("path", &environ)]).await;
    assert!(result.starts_with("ok:") && result.contains("SCOPE_WASM_GUESTS="), "{result}");

    let mut none = connect(&daemon, "no-grants").await;
    for _ in 0..2 {
        let result = attempt(&mut none, "read", &[("path", "stat")]).await;
        assert!(result.starts_with("err:Denied") && result.contains("procfs is not granted"), "{result}");
        let result = attempt(&mut none, "containers", &[("all", "true")]).await;
        assert!(result.starts_with("err:Denied") && result.contains("docker is not granted"), "{result}");
    }
    // Logged once per plugin, not on every call.
    let log = daemon.wait_for_log("docker is not granted to this plugin").await;
    assert_eq!(log.matches("docker is not granted to this plugin").count(), 1, "{log}");
    assert_eq!(log.matches("procfs is not granted to this plugin").count(), 1, "{log}");
}

#[tokio::test]
async fn plain_wasi_reaches_no_file_no_environment_and_no_network() {
    let (daemon, _config) = daemon().await;
    let mut client = connect(&daemon, "escape-artist").await;

    for path in ["/etc/passwd", "/proc/stat", "Cargo.toml", "."] {
        let result = attempt(&mut client, "wasi-fs", &[("path", path)]).await;
        assert!(result.starts_with("err:"), "reading {path} through WASI: {result}");
    }
    let result = attempt(&mut client, "wasi-dir", &[("path", "/")]).await;
    assert!(result.starts_with("err:"), "{result}");
    assert_eq!(attempt(&mut client, "wasi-env", &[]).await, "ok:vars=0 args=0");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let result = attempt(&mut client, "wasi-net", &[("addr", &addr)]).await;
    assert!(result.starts_with("err:"), "{result}");
    assert!(listener.accept().is_err(), "nothing connected");
}

#[tokio::test]
async fn check_lists_imported_capabilities_and_their_grants() {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "[plugins.escape-artist]\ngrants = [\"docker\"]\n").unwrap();
    let output = std::process::Command::new(support::binary())
        .args(["check", guest("escape-artist").to_str().unwrap(), "--config", config.path().to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        text.contains("capabilities: host (granted), procfs (NOT granted: calls are denied), docker (granted)"),
        "{text}"
    );
}
