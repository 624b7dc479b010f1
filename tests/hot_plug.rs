//! Hot plug: plugins dropped, replaced and removed while the daemon runs, with
//! real file operations on the plugin directory of the real binary.

mod support;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Client, Daemon, guest, report_path};

fn label(report: &Value) -> &str {
    report["Plugins"][0]["label"].as_str().unwrap_or_default()
}

fn counter_value(report: &Value) -> u64 {
    report["Host"]["nodes"]["test-host;<host>"]["latest"]["counter_value"]["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no counter value in {report}"))
}

/// Polls over one connection until the plugin's label is `want`; every answer
/// on the way must be a good report (no lost service during a swap).
async fn poll_until_label(client: &mut Client, want: &str) -> Duration {
    let started = Instant::now();
    loop {
        let reply = client.get(&report_path("p")).await;
        assert_eq!(reply.status, 200, "every poll is answered during a swap: {}", reply.json);
        if label(&reply.json) == want {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "label never became {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn overwrite_in_place(path: &Path, bytes: &[u8]) {
    let mut file = fs::OpenOptions::new().write(true).truncate(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

#[tokio::test]
async fn a_dropped_file_is_served_and_a_deleted_one_loses_its_socket() {
    let daemon = Daemon::start(&[], &[]);
    daemon.wait_for_log("watching for plugins").await;
    let dropped = Instant::now();
    fs::copy(guest("counter"), daemon.plugin_dir.join("counter.wasm")).unwrap();
    let socket = daemon.socket("counter").await;
    let reply = Client::connect(&socket).await.get(&report_path("p")).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(label(&reply.json), "Counter");
    eprintln!("drop -> first good report: {:?}", dropped.elapsed());

    fs::remove_file(daemon.plugin_dir.join("counter.wasm")).unwrap();
    daemon.socket_gone("counter").await;
    assert!(tokio::net::UnixStream::connect(&socket).await.is_err());
    daemon.wait_for_log("file removed; socket").await;
}

#[tokio::test]
async fn overwriting_in_place_swaps_versions_while_the_connection_stays_open() {
    let daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &[]);
    let mut client = Client::connect(&daemon.socket("counter").await).await;
    assert_eq!(label(&client.get(&report_path("p")).await.json), "Counter");

    overwrite_in_place(&daemon.plugin_dir.join("counter.wasm"), &fs::read(guest("slow-report")).unwrap());
    let took = poll_until_label(&mut client, "Slow report").await;
    eprintln!("overwrite -> new version serving: {took:?}");
    daemon.wait_for_log("reloaded: the new version serves from now on").await;
}

#[tokio::test]
async fn a_file_renamed_over_the_old_one_is_picked_up_at_once() {
    let daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &["--settle-ms", "5000"]);
    let mut client = Client::connect(&daemon.socket("counter").await).await;
    assert_eq!(label(&client.get(&report_path("p")).await.json), "Counter");

    // The usual deploy: write a hidden temporary file, then rename it into place.
    let tmp = daemon.plugin_dir.join(".counter.wasm.partial");
    fs::write(&tmp, fs::read(guest("slow-report")).unwrap()).unwrap();
    fs::rename(&tmp, daemon.plugin_dir.join("counter.wasm")).unwrap();
    // With a 5 s settle time, only the rename event explains a quick swap.
    let took = poll_until_label(&mut client, "Slow report").await;
    assert!(took < Duration::from_secs(4), "rename picked up after {took:?}");
    assert!(!daemon.log().contains(".counter.wasm.partial"), "hidden files are never looked at");
}

#[tokio::test]
async fn a_broken_replacement_leaves_the_old_version_serving_with_its_state() {
    let daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &["--refresh-ms", "100"]);
    let mut client = Client::connect(&daemon.socket("counter").await).await;
    let before = counter_value(&client.get(&report_path("p")).await.json);

    let file = daemon.plugin_dir.join("counter.wasm");
    overwrite_in_place(&file, b"\0asm but not really a component at all");
    let log = daemon.wait_for_log("new version refused, the running version keeps serving").await;
    assert!(log.contains("plugin=counter"), "{log}");
    for _ in 0..5 {
        let reply = client.get(&report_path("p")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(label(&reply.json), "Counter");
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    let after = counter_value(&client.get(&report_path("p")).await.json);
    assert!(after > before, "same instance, state kept and still counting: {before} -> {after}");

    // The failed version is not retried over and over...
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(daemon.log().matches("new version refused").count(), 1, "{}", daemon.log());
    // ...but a fixed file is loaded.
    overwrite_in_place(&file, &fs::read(guest("slow-report")).unwrap());
    poll_until_label(&mut client, "Slow report").await;
}

#[tokio::test]
async fn a_slow_chunked_copy_is_loaded_only_once_complete() {
    let daemon = Daemon::start(&[], &[]);
    daemon.wait_for_log("watching for plugins").await;
    let bytes = fs::read(guest("counter")).unwrap();
    let path = daemon.plugin_dir.join("counter.wasm");
    let socket = daemon.socket_dir.join("counter.sock");

    // 4 KiB every 60 ms: longer in all than the 1 s settle time, but the file
    // is never quiet for that long while it is written.
    let mut file = fs::File::create(&path).unwrap();
    let started = Instant::now();
    for chunk in bytes.chunks(4096) {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(!socket.exists(), "served after {:?} while still being written", started.elapsed());
    }
    assert!(started.elapsed() > Duration::from_secs(1));
    drop(file);

    let reply = Client::connect(&daemon.socket("counter").await).await.get(&report_path("p")).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let log = daemon.log();
    assert!(!log.contains("ERROR"), "no half-written version was ever tried: {log}");
}

#[tokio::test]
async fn the_second_file_with_an_id_is_refused_until_the_first_goes() {
    let daemon = Daemon::start(
        &[("team-a/counter.wasm", guest("counter")), ("team-b/counter.wasm", guest("slow-report"))],
        &[],
    );
    let mut client = Client::connect(&daemon.socket("counter").await).await;
    assert_eq!(label(&client.get(&report_path("p")).await.json), "Counter");
    let log = daemon.wait_for_log("plugin ID counter is already taken by").await;
    assert!(log.contains("team-b/counter.wasm") && log.contains("team-a/counter.wasm"), "{log}");
    assert_eq!(daemon.plugin_sockets(), ["counter.sock"]);

    // Once the first file is gone, the other one takes the ID.
    fs::remove_file(daemon.plugin_dir.join("team-a/counter.wasm")).unwrap();
    let mut served = None;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(stream) = tokio::net::UnixStream::connect(daemon.socket_dir.join("counter.sock")).await {
            drop(stream);
            let reply = Client::connect(&daemon.socket_dir.join("counter.sock")).await.get(&report_path("p")).await;
            if label(&reply.json) == "Slow report" {
                served = Some(started.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served.is_some(), "team-b's file never took over; log:\n{}", daemon.log());
    // ...and the status no longer lists it as refused.
    let out = std::process::Command::new(support::binary())
        .args(["status", "--json", "--admin-socket", daemon.admin_socket().to_str().unwrap()])
        .output()
        .unwrap();
    let statuses: Value = serde_json::from_slice(&out.stdout).unwrap();
    let states: Vec<(&str, &str)> =
        statuses.as_array().unwrap().iter().map(|s| (s["id"].as_str().unwrap(), s["state"].as_str().unwrap())).collect();
    assert_eq!(states, [("counter", "serving")], "{statuses}");
}

#[tokio::test]
async fn a_hundred_plugins_dropped_at_once_all_serve() {
    let daemon = Daemon::start(&[], &[]);
    daemon.wait_for_log("watching for plugins").await;
    let source = guest("counter");
    let started = Instant::now();
    for i in 0..100 {
        fs::copy(&source, daemon.plugin_dir.join(format!("tenant-{i}.wasm"))).unwrap();
    }
    for i in 0..100 {
        let socket = daemon.socket(&format!("tenant-{i}")).await;
        let reply = Client::connect(&socket).await.get(&report_path("p")).await;
        assert_eq!(reply.status, 200, "tenant-{i}: {}", reply.json);
        assert_eq!(reply.json["Plugins"][0]["id"], format!("tenant-{i}"));
    }
    eprintln!("100 plugins dropped -> all serving: {:?}", started.elapsed());
}

/// A version that cannot start within its budget (as on a host with no CPU to
/// spare) is tried again, later each time, not refused for good; a config
/// change tries it at once.
#[tokio::test]
async fn a_plugin_too_slow_to_start_is_tried_again() {
    let config = tempfile::NamedTempFile::new().unwrap();
    let slow_until = |ms: u128| format!("[plugins.slow-start]\nsettings = {{ slow_until_ms = {ms} }}\n");
    let in_an_hour = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 3_600_000;
    fs::write(config.path(), slow_until(in_an_hour)).unwrap();
    let daemon = Daemon::start(&[("slow-start.wasm", guest("slow-start"))], &["--config", config.path().to_str().unwrap()]);

    let log = daemon.wait_for_log_of("slow-start", "trying again in 2 s").await;
    assert_eq!(log.matches("trying again in 1 s").count(), 1, "{log}");
    assert!(log.contains("could not start in time"), "{log}");
    let status: Value = serde_json::from_str(&daemon.admin_get("/status").await).unwrap();
    let entry = status.as_array().unwrap().iter().find(|p| p["id"] == "slow-start").unwrap();
    assert!(["failed", "queued", "compiling"].contains(&entry["state"].as_str().unwrap()), "{entry}");
    assert!(!daemon.socket_dir.join("slow-start.sock").exists(), "{log}");

    let next = config.path().with_extension("next");
    fs::write(&next, slow_until(0)).unwrap();
    fs::rename(&next, config.path()).unwrap();
    let reply = Client::connect(&daemon.socket("slow-start").await).await.get(&report_path("p")).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["Plugins"][0]["label"], "Slow start");
}

#[tokio::test]
async fn a_restart_uses_the_warm_cache_and_a_corrupt_entry_is_recompiled() {
    let mut daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &[]);
    daemon.socket("counter").await;
    assert!(daemon.log().contains("origin=Compiled"), "{}", daemon.log());
    let entries: Vec<_> = fs::read_dir(&daemon.cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 1, "one compiled entry: {entries:?}");

    daemon.restart();
    daemon.wait_for_log("origin=CacheHit").await;
    let reply = Client::connect(&daemon.socket("counter").await).await.get(&report_path("p")).await;
    assert_eq!(reply.status, 200);

    // Corrupt the entry: detected, never loaded, compiled again.
    let mut data = fs::read(&entries[0]).unwrap();
    let middle = data.len() / 2;
    data[middle] ^= 0x5a;
    fs::write(&entries[0], data).unwrap();
    daemon.restart();
    let log = daemon.wait_for_log("cached compilation unusable").await;
    assert!(log.contains("checksum mismatch"), "{log}");
    let reply = Client::connect(&daemon.socket("counter").await).await.get(&report_path("p")).await;
    assert_eq!(reply.status, 200);
    let started = Instant::now();
    while daemon.log().matches("origin=Compiled").count() < 2 {
        assert!(started.elapsed() < Duration::from_secs(30), "not compiled again:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `scope-wasm compile` fills a cache ahead of time (an image build): a daemon
/// on that cache loads the plugin at once, without a compile; a second run
/// finds it compiled; a file that is no plugin is named with its cause.
#[tokio::test]
async fn scope_wasm_compile_fills_the_cache_a_daemon_then_loads_from() {
    let daemon = Daemon::start(&[], &[]);
    let compile = |file: &Path| {
        std::process::Command::new(support::binary())
            .args(["compile", "--cache-dir", daemon.cache_dir.to_str().unwrap(), file.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = compile(&guest("counter"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("counter: compiled into "), "{stdout}");
    let again = compile(&guest("counter"));
    assert!(String::from_utf8_lossy(&again.stdout).starts_with("counter: already compiled"), "{again:?}");
    let garbage = daemon.plugin_dir.with_file_name("garbage.wasm");
    fs::write(&garbage, b"not wasm").unwrap();
    let refused = compile(&garbage);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("plugin garbage: not a WebAssembly file"), "{refused:?}");

    fs::copy(guest("counter"), daemon.plugin_dir.join("counter.wasm")).unwrap();
    let log = daemon.wait_for_log_of("counter", "serving on").await;
    assert!(log.contains("origin=CacheHit"), "{log}");
    assert!(!log.contains("compiling plugin=counter"), "{log}");
}

/// The memo of content hashes in the cache directory (`load::content_hashes`).
fn memo_of(daemon: &Daemon) -> String {
    fs::read_to_string(daemon.cache_dir.join("content-hashes")).unwrap_or_default()
}

/// A restart finds a settled plugin file's entry by the hash it remembers,
/// without reading the file; the file's bytes decide all the same: other bytes
/// under the same name, size and modification time (only the change time
/// differs) are read, hashed and held to the pin, and a changed pin holds
/// the remembered hash to it too.
#[tokio::test]
async fn a_remembered_content_hash_finds_the_entry_and_rewritten_bytes_are_never_taken_for_it() {
    use sha2::Digest;
    let original = fs::read(guest("counter")).unwrap();
    let pin = format!("{:x}", sha2::Sha256::digest(&original));
    let config = tempfile::NamedTempFile::new().unwrap();
    let pinned = |sha256: &str| format!("[plugins.counter]\nsha256 = \"{sha256}\"\n");
    fs::write(config.path(), pinned(&pin)).unwrap();
    let mut daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &["--config", config.path().to_str().unwrap()]);
    daemon.socket("counter").await;
    let file = daemon.plugin_dir.join("counter.wasm");

    // Remembered only once the file has been still for a second when read.
    use std::os::unix::fs::MetadataExt;
    let started = Instant::now();
    loop {
        let changed_at = fs::metadata(&file).unwrap().ctime();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        if now - changed_at >= 2 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the file's change time is in the future");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon.restart();
    daemon.socket("counter").await;
    assert!(memo_of(&daemon).contains(&pin), "{}", memo_of(&daemon));
    daemon.restart();
    daemon.wait_for_log("origin=CacheHit").await;
    assert_eq!(Client::connect(&daemon.socket("counter").await).await.get(&report_path("p")).await.status, 200);

    // A pin the remembered hash does not match: refused all the same.
    fs::write(config.path(), pinned(&"0".repeat(64))).unwrap();
    daemon.restart();
    let log = daemon.wait_for_log_of("counter", &format!("its sha256 is {pin}")).await;
    assert!(log.contains("(rule: sha256 pin)"), "{log}");

    // Other bytes, same length, and the old modification time put back.
    assert!(daemon.terminate().success());
    fs::write(config.path(), pinned(&pin)).unwrap();
    let before = fs::metadata(&file).unwrap();
    let mut rewritten = original.clone();
    *rewritten.last_mut().unwrap() ^= 0x01;
    fs::write(&file, &rewritten).unwrap();
    fs::File::options().write(true).open(&file).unwrap().set_modified(before.modified().unwrap()).unwrap();
    let after = fs::metadata(&file).unwrap();
    assert_eq!((after.len(), after.modified().unwrap()), (before.len(), before.modified().unwrap()));
    daemon.respawn();
    let log = daemon.wait_for_log_of("counter", &format!("its sha256 is {:x}", sha2::Sha256::digest(&rewritten))).await;
    assert!(log.contains("(rule: sha256 pin)"), "{log}");
}

#[tokio::test]
async fn sockets_left_by_a_killed_daemon_are_replaced_and_live_ones_are_not() {
    let mut first = Daemon::start(&[("counter.wasm", guest("counter"))], &[]);
    let socket = first.socket("counter").await;
    // A crash: no clean-up, the socket file stays with nobody behind it.
    // SAFETY: killing our own child.
    unsafe { libc::kill(first.pid() as i32, libc::SIGKILL) };
    first.terminate();
    assert!(socket.exists() && tokio::net::UnixStream::connect(&socket).await.is_err());

    let second = Daemon::start_with_socket_dir(&[("counter.wasm", guest("counter"))], Some(&first.socket_dir), &[]);
    second.wait_for_log("serving on").await;
    assert_eq!(Client::connect(&socket).await.get(&report_path("p")).await.status, 200);

    // A third daemon on the same directory must not steal the live socket.
    let third = Daemon::start_with_socket_dir(&[("counter.wasm", guest("counter"))], Some(&first.socket_dir), &[]);
    third.wait_for_log("in use by another live process").await;
    assert_eq!(Client::connect(&socket).await.get(&report_path("p")).await.status, 200);
}

#[tokio::test]
async fn sockets_get_the_configured_mode_and_group() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // SAFETY: getegid has no preconditions.
    let gid = unsafe { libc::getegid() }.to_string();
    let daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &["--socket-mode", "600", "--socket-group", &gid]);
    let socket = daemon.socket("counter").await;
    let meta = fs::metadata(&socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.gid().to_string(), gid);
}

#[tokio::test]
async fn a_configmap_style_symlink_flip_reloads_and_removes() {
    // The kubelet's layout: files are links into `..data`, itself a link to a
    // timestamped directory that an update replaces in one rename.
    let daemon = Daemon::start(&[], &[]);
    daemon.wait_for_log("watching for plugins").await;
    let root = &daemon.plugin_dir;
    let publish = |version: &str, files: &[(&str, std::path::PathBuf)]| {
        let dir = root.join(format!("..{version}"));
        fs::create_dir(&dir).unwrap();
        for (name, source) in files {
            fs::copy(source, dir.join(name)).unwrap();
        }
        std::os::unix::fs::symlink(format!("..{version}"), root.join("..data_tmp")).unwrap();
        fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        for (name, _) in files {
            let link = root.join(name);
            if fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(format!("..data/{name}"), &link).unwrap();
            }
        }
    };
    publish("2026_11_25_v1", &[("counter.wasm", guest("counter")), ("other.wasm", guest("counter"))]);
    let mut client = Client::connect(&daemon.socket("counter").await).await;
    assert_eq!(label(&client.get(&report_path("p")).await.json), "Counter");
    daemon.socket("other").await;

    // v2: counter changes, other is gone (the kubelet removes its link).
    publish("2026_11_25_v2", &[("counter.wasm", guest("slow-report"))]);
    fs::remove_file(root.join("other.wasm")).unwrap();
    fs::remove_dir_all(root.join("..2026_11_25_v1")).unwrap();
    poll_until_label(&mut client, "Slow report").await;
    daemon.socket_gone("other").await;
}

#[tokio::test]
async fn a_small_plugin_is_not_held_back_by_big_compiles() {
    // Every bundled plugin dropped at once into a running daemon with a cold
    // cache: the Python, JavaScript and Go components take many seconds of CPU
    // to compile, the 74 KB counter well under one.
    let daemon = Daemon::start(&[], &[]);
    let plugins = support::guest("counter").parent().unwrap().to_owned();
    let staging = daemon.plugin_dir.parent().unwrap().join("staging");
    fs::create_dir(&staging).unwrap();
    let mut ids = Vec::new();
    for entry in fs::read_dir(&plugins).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wasm") {
            let name = path.file_name().unwrap().to_owned();
            fs::copy(&path, staging.join(&name)).unwrap();
            ids.push(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    let started = Instant::now();
    for id in &ids {
        fs::rename(staging.join(format!("{id}.wasm")), daemon.plugin_dir.join(format!("{id}.wasm"))).unwrap();
    }
    let socket = daemon.socket("counter").await;
    let took = started.elapsed();
    assert_eq!(Client::connect(&socket).await.get(&report_path("p")).await.status, 200);
    // Meanwhile the big ones are listed as waiting or compiling, with how long.
    let status: Value = serde_json::from_str(&daemon.admin_get("/status").await).unwrap();
    let python = status.as_array().unwrap().iter().find(|p| p["id"] == "conformance-python").expect("listed while loading");
    let state = python["state"].as_str().unwrap();
    assert!(state == "queued" || state == "compiling", "conformance-python is {state}: {python}");
    assert!(python["detail"].as_str().unwrap().starts_with(&format!("{state} for ")), "{python}");
    assert!(python["loading_s"].is_u64(), "{python}");
    eprintln!("counter served {:.2} s after all {} bundled plugins were dropped; conformance-python {state}", took.as_secs_f64(), ids.len());
    if std::env::var_os("SHOW_LOG").is_some() {
        eprintln!("{}", daemon.log());
    }
}
