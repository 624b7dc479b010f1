//! The docker capability against a real Docker Engine (the private dockerd
//! that `make test` starts), through a real guest.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::docker::{Containers, Engine};
use support::{Client, Daemon, attempt, guest, report_path};

/// A label value unique to one test, so parallel tests never see each other's containers.
fn unique() -> String {
    format!("t{}-{}", std::process::id(), Instant::now().elapsed().as_nanos() ^ rand_bits())
}

fn rand_bits() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

async fn daemon_with(engine_socket: &str, config: &str) -> (Daemon, tempfile::NamedTempFile) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), config).unwrap();
    let daemon = Daemon::start(
        &[("escape-artist.wasm", guest("escape-artist")), ("tenant-a.wasm", guest("escape-artist"))],
        &["--config", file.path().to_str().unwrap(), "--docker-socket", engine_socket],
    );
    (daemon, file)
}

async fn connect(daemon: &Daemon, id: &str) -> Client {
    let mut client = Client::connect(&daemon.socket(id).await).await;
    assert_eq!(client.get(&report_path("t")).await.status, 200);
    client
}

/// The guest's `containers` answer: one line per container, by ID.
fn by_id(result: &str) -> BTreeMap<String, String> {
    let lines = result.strip_prefix("ok:").unwrap_or_else(|| panic!("{result}"));
    lines
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| (l.split(' ').next().unwrap().to_owned(), l.to_owned()))
        .collect()
}

#[tokio::test]
async fn lists_and_inspects_match_the_engines_own_answers() {
    let engine = Engine::from_env();
    let tag = unique();
    let label = format!("scope-wasm-test={tag}");
    let volume = tempfile::tempdir().unwrap();
    let mount = format!("{}:/data", volume.path().display());
    let mut made = Containers::new(&engine);
    let running = made.make(true, &["-l", &label, "-l", "team=a", "-v", &mount]);
    let stopped = made.make(false, &["-l", &label]);

    let (daemon, _config) =
        daemon_with(engine.socket.to_str().unwrap(), "[plugins.escape-artist]\ngrants = [\"docker\"]\n").await;
    let mut client = connect(&daemon, "escape-artist").await;

    let all = by_id(&attempt(&mut client, "containers", &[("all", "true")]).await);
    let engine_all = engine.get_json("/containers/json?all=1").await;
    for id in [&running, &stopped] {
        let theirs = engine_all.as_array().unwrap().iter().find(|c| c["Id"] == **id).unwrap();
        let ours = all.get(id).unwrap_or_else(|| panic!("{id} missing from {all:?}"));
        assert!(ours.contains(&format!("state={}", theirs["State"].as_str().unwrap())), "{ours} vs {theirs}");
        let name = theirs["Names"][0].as_str().unwrap().trim_start_matches('/');
        assert!(ours.contains(&format!("name={name} ")), "{ours}");
        assert!(ours.contains("image=scope-test/busybox"), "{ours}");
        assert!(ours.contains(&format!("scope-wasm-test={tag}")), "{ours}");
    }
    assert!(all[&running].contains(&format!("mounts={}:/data", volume.path().display())), "{}", all[&running]);
    let running_only = by_id(&attempt(&mut client, "containers", &[("all", "false")]).await);
    assert!(running_only.contains_key(&running) && !running_only.contains_key(&stopped));

    let engine_running = engine.get_json(&format!("/containers/{running}/json")).await;
    let details = attempt(&mut client, "inspect", &[("id", &running)]).await;
    let pid = engine_running["State"]["Pid"].as_u64().unwrap();
    assert_eq!(
        details,
        format!("ok:{running} name={} running=true pid={pid} mounts=1 started=true",
            engine_running["Name"].as_str().unwrap().trim_start_matches('/'))
    );
    let details = attempt(&mut client, "inspect", &[("id", &stopped)]).await;
    assert!(details.ends_with("running=false pid=none mounts=0 started=false"), "{details}");
    let missing = attempt(&mut client, "inspect", &[("id", "no-such-container")]).await;
    assert!(missing.starts_with("err:NotFound"), "{missing}");

    let images = attempt(&mut client, "images", &[]).await;
    assert!(images.contains("scope-test/busybox:latest"), "{images}");
    let raw = attempt(&mut client, "docker-get", &[("path", "/containers/json?all=1")]).await;
    let raw: Value = serde_json::from_str(raw.strip_prefix("ok:").unwrap()).unwrap();
    assert!(raw.as_array().unwrap().iter().any(|c| c["Id"] == *running));
}

#[tokio::test]
async fn write_attempts_are_refused_and_change_nothing() {
    let engine = Engine::from_env();
    let mut made = Containers::new(&engine);
    let running = made.make(true, &["-l", &format!("scope-wasm-test={}", unique())]);
    let (daemon, _config) =
        daemon_with(engine.socket.to_str().unwrap(), "[plugins.escape-artist]\ngrants = [\"docker\"]\n").await;
    let mut client = connect(&daemon, "escape-artist").await;

    for path in [
        format!("/containers/{running}/kill"),
        format!("/containers/{running}/stop"),
        format!("/containers/{running}/exec"),
        format!("/containers/{running}/archive?path=/etc"),
        format!("/containers/{running}/logs?stdout=1"),
        format!("/containers/{running}/export"),
        "/containers/create".to_owned(),
        "/containers/prune".to_owned(),
        "/images/create?fromImage=x".to_owned(),
        "/secrets".to_owned(),
        format!("/containers/{running}/../../info"),
        format!("/v1.41/containers/{running}/kill"),
    ] {
        let result = attempt(&mut client, "docker-get", &[("path", &path)]).await;
        assert!(result.starts_with("err:Denied"), "{path}: {result}");
    }
    assert_eq!(engine.cli(&["inspect", "--format", "{{.State.Running}}", &running]), "true");
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_containers_and_their_processes() {
    let engine = Engine::from_env();
    let tag = unique();
    let mut made = Containers::new(&engine);
    let label = format!("scope-wasm-test={tag}");
    let ours = made.make(true, &["-l", &label, "-l", "team=a"]);
    let ours_stopped = made.make(false, &["-l", &label, "-l", "team=a"]);
    let theirs = made.make(true, &["-l", &label, "-l", "team=b"]);
    let config = format!(
        "[plugins.tenant-a]\ngrants = [\"procfs\", \"docker\"]\n\
         docker.label_selector = {{ team = \"a\", scope-wasm-test = \"{tag}\" }}\n"
    );
    let (daemon, _config) = daemon_with(engine.socket.to_str().unwrap(), &config).await;
    let mut client = connect(&daemon, "tenant-a").await;

    let seen = by_id(&attempt(&mut client, "containers", &[("all", "true")]).await);
    assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), {
        let mut want = vec![ours.clone(), ours_stopped.clone()];
        want.sort();
        want
    });
    assert!(attempt(&mut client, "inspect", &[("id", &ours)]).await.starts_with("ok:"));
    let hidden = attempt(&mut client, "inspect", &[("id", &theirs)]).await;
    assert!(hidden.starts_with("err:NotFound"), "another tenant's container does not exist for it: {hidden}");
    let raw = attempt(&mut client, "docker-get", &[("path", "/containers/json")]).await;
    assert!(raw.starts_with("err:Denied"), "{raw}");

    let (our_pid, their_pid) = (made.pid(&ours), made.pid(&theirs));
    let status = attempt(&mut client, "read", &[("path", &format!("{our_pid}/status"))]).await;
    assert!(status.starts_with("ok:"), "{status}");
    let status = attempt(&mut client, "read", &[("path", &format!("{their_pid}/status"))]).await;
    assert!(status.starts_with("err:Denied") && status.contains("outside this plugin's label selector"), "{status}");
    let host_process = attempt(&mut client, "read", &[("path", &format!("{}/status", std::process::id()))]).await;
    assert!(host_process.starts_with("ok:"), "{host_process}");
    let pids = attempt(&mut client, "pids", &[]).await;
    let pids: Vec<&str> = pids.trim_start_matches("ok:").split(',').collect();
    assert!(pids.contains(&our_pid.to_string().as_str()) && !pids.contains(&their_pid.to_string().as_str()));
}

#[tokio::test]
async fn a_missing_or_silent_engine_is_an_error_in_time() {
    let grant = "[plugins.escape-artist]\ngrants = [\"procfs\", \"docker\"]\n";
    let (daemon, _config) = daemon_with("/nonexistent/docker.sock", grant).await;
    let mut client = connect(&daemon, "escape-artist").await;
    let started = Instant::now();
    let result = attempt(&mut client, "containers", &[("all", "true")]).await;
    assert!(result.starts_with("err:Unavailable") && result.contains("does not exist"), "{result}");
    assert!(started.elapsed() < Duration::from_millis(100), "{:?}", started.elapsed());

    // An engine that accepts connections and never answers.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let _silent = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let (daemon, _config) = daemon_with(socket.to_str().unwrap(), grant).await;
    let mut client = connect(&daemon, "escape-artist").await;
    let result = attempt(&mut client, "containers", &[("all", "true")]).await; // asserts < 500 ms
    assert_eq!(result, "err:Timeout");
    // The guest is fine afterwards: the host call was abandoned, not the guest.
    assert!(attempt(&mut client, "read", &[("path", "stat")]).await.starts_with("ok:"));
}

/// A UNIX socket in front of `upstream` that forwards until `frozen` is set,
/// then holds every connection open without passing a byte: an engine that
/// stopped answering.
fn freezing_proxy(upstream: std::path::PathBuf, socket: &std::path::Path, frozen: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let listener = tokio::net::UnixListener::bind(socket).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else { return };
            let Ok(server) = tokio::net::UnixStream::connect(&upstream).await else { continue };
            let frozen = frozen.clone();
            tokio::spawn(async move {
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::join!(forward(client_read, server_write, frozen.clone()), forward(server_read, client_write, frozen));
            });
        }
    });
}

/// Copies `from` into `to`, holding each chunk while `frozen` is set.
async fn forward(
    mut from: tokio::net::unix::OwnedReadHalf,
    mut to: tokio::net::unix::OwnedWriteHalf,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0; 64 << 10];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        while frozen.load(std::sync::atomic::Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn an_engine_that_stops_answering_leaves_the_last_good_report_served() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let engine = Engine::from_env();
    let dir = tempfile::tempdir().unwrap();
    let proxy = dir.path().join("docker.sock");
    let frozen = Arc::new(AtomicBool::new(false));
    freezing_proxy(engine.socket.clone(), &proxy, frozen.clone());
    let config = dir.path().join("scope-wasm.toml");
    std::fs::write(&config, "[plugins.volume-count]\ngrants = [\"docker\"]\n").unwrap();
    let daemon = Daemon::start(
        &[("volume-count.wasm", guest("volume-count"))],
        &["--config", config.to_str().unwrap(), "--docker-socket", proxy.to_str().unwrap(), "--refresh-ms", "200"],
    );
    let mut client = Client::connect(&daemon.socket("volume-count").await).await;
    let good = client.get(&report_path("p")).await;
    assert_eq!(good.status, 200, "{}", good.json);

    // The engine freezes: each refresh's Docker call gives up at the call's
    // deadline and the guest answers its error at the very end of its budget.
    frozen.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let last_error = loop {
        let statuses: Value = serde_json::from_str(&daemon.admin_get("/status").await).unwrap();
        let status = statuses.as_array().unwrap().iter().find(|s| s["id"] == "volume-count").cloned().unwrap();
        let last = status["stats"]["last_error"].as_str().unwrap_or_default().to_owned();
        if last.contains("out of time") {
            break last;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no late refresh: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(last_error.contains("Docker Engine did not answer"), "{last_error}");
    // Late, not wrong: the previous report is served meanwhile, at once.
    for _ in 0..10 {
        let reply = client.get(&report_path("p")).await;
        assert_eq!(reply.status, 200, "a late refresh was served as an error: {}", reply.json);
        assert_eq!(reply.body, good.body, "the last good report");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    frozen.store(false, Ordering::Relaxed);
}
