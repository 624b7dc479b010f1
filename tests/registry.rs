//! Plugins shipped through a real OCI registry (Debian's `docker-registry`,
//! the CNCF distribution server, started here on a loopback port): pushed
//! with `scope-wasm push`, configured as sources, pulled and served by the
//! daemon; tags moving, digest pins, broken blobs, signatures, an unreachable
//! registry and an oversized component, each seen through the daemon's
//! sockets and its status.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::registry::{Registry, push};
use support::{Client, Daemon, binary, guest, report_path};

/// Runs `scope-wasm ARGS`, asserting success; its standard output.
fn cli(args: &[&str]) -> String {
    let out = Command::new(binary()).args(args).output().unwrap();
    assert!(out.status.success(), "scope-wasm {args:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    format!("sha256:{:x}", sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// A daemon whose config (rewritten by `set_config`) holds `sources`.
struct Host {
    daemon: Daemon,
    config: tempfile::NamedTempFile,
}

fn config_text(registry: &Registry, body: &str) -> String {
    format!("rescan_ms = 200\nsettle_ms = 50\n\n[registry]\ninsecure = [\"{}\"]\n\n{body}", registry.host())
}

impl Host {
    async fn start(registry: &Registry, body: &str) -> Host {
        let config = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(config.path(), config_text(registry, body)).unwrap();
        let daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &["--config", config.path().to_str().unwrap()]);
        // Up, admin endpoint and all: the dropped counter serves.
        daemon.socket("counter").await;
        Host { daemon, config }
    }

    fn set_config(&self, registry: &Registry, body: &str) {
        let next = self.config.path().with_extension("next");
        std::fs::write(&next, config_text(registry, body)).unwrap();
        std::fs::rename(&next, self.config.path()).unwrap();
    }

    async fn entry(&self, id: &str) -> Option<Value> {
        let status: Value = serde_json::from_str(&self.daemon.admin_get("/status").await).unwrap();
        status.as_array().unwrap().iter().find(|p| p["id"] == id).cloned()
    }

    /// Waits until `id`'s status entry satisfies `ready`, following the daemon's state.
    async fn until(&self, id: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            if let Some(entry) = self.entry(id).await
                && ready(&entry)
            {
                return entry;
            }
            if started.elapsed() > Duration::from_secs(120) {
                panic!("{id} never {what}; status: {:?}\nlog:\n{}", self.entry(id).await, self.daemon.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The pull of `id` failed with an error containing `needle`; nothing of it serves.
    async fn pull_fails(&self, id: &str, needle: &str) -> Value {
        let entry = self.until(id, "failed its pull", |e| e["source"]["state"] == "failed").await;
        let error = entry["source"]["error"].as_str().unwrap();
        assert!(error.contains(needle), "{id}: error {error:?} should say {needle:?}");
        assert_ne!(entry["state"], "serving", "{id} must not serve: {entry}");
        assert!(!self.daemon.socket_dir.join(format!("{id}.sock")).exists());
        entry
    }

    async fn report(&self, id: &str) -> Value {
        let socket = self.daemon.socket(id).await;
        let reply = Client::connect(&socket).await.get(&report_path("p")).await;
        assert_eq!(reply.status, 200, "{id}: {}", reply.json);
        reply.json
    }
}

fn is_counter(report: &Value) -> bool {
    !report["Host"]["nodes"]["test-host;<host>"]["latest"]["counter_value"].is_null()
}

#[tokio::test]
async fn a_pushed_plugin_is_served_and_a_new_tag_swaps_it() {
    let registry = Registry::start();
    let image = format!("{}:1", registry.image("shipped"));
    let first = push(&guest("counter"), &image, None);
    let host = Host::start(&registry, &format!("[sources.shipped]\nimage = \"{image}\"\ncheck_every_s = 1\n")).await;
    let entry = host.until("shipped", "served", |e| e["state"] == "serving").await;
    assert_eq!(entry["source"]["digest"], first.as_str());
    assert_eq!(entry["source"]["state"], "pulled");
    assert!(is_counter(&host.report("shipped").await));
    // The dropped counter beside it is untouched by the source.
    assert!(is_counter(&host.report("counter").await));

    // The tag moves to another plugin: the daemon swaps it in.
    let second = push(&guest("iowait"), &image, None);
    assert_ne!(first, second);
    host.until("shipped", "took the new tag", |e| e["source"]["digest"] == second.as_str() && e["reloads"].as_u64() >= Some(1)).await;
    let report = host.report("shipped").await;
    assert!(!is_counter(&report), "iowait serves now: {report}");

    // A restart serves what was pulled, from the store, and checks the tag again.
    let mut daemon = host.daemon;
    daemon.restart();
    daemon.socket("counter").await;
    let host = Host { daemon, config: host.config };
    let entry = host.until("shipped", "served after a restart", |e| e["state"] == "serving").await;
    assert_eq!(entry["source"]["digest"], second.as_str());
    assert!(host.daemon.log().matches("pulled").count() >= 2);

    // Removing the source from the config stops its plugin; the rest serve on.
    host.set_config(&registry, "");
    host.daemon.socket_gone("shipped").await;
    assert!(is_counter(&host.report("counter").await));
}

#[tokio::test]
async fn a_digest_pin_holds_whatever_the_tag_says() {
    let registry = Registry::start();
    let image = format!("{}:stable", registry.image("pinned"));
    let first = push(&guest("counter"), &image, None);
    push(&guest("iowait"), &image, None);
    let unknown = format!("sha256:{}", "0".repeat(64));
    let host = Host::start(
        &registry,
        &format!(
            "[sources.pinned]\nimage = \"{image}\"\ndigest = \"{first}\"\n\n[sources.nowhere]\nimage = \"{image}\"\ndigest = \"{unknown}\"\ncheck_every_s = 1\n"
        ),
    )
    .await;
    let entry = host.until("pinned", "served", |e| e["state"] == "serving").await;
    assert_eq!(entry["source"]["digest"], first.as_str());
    assert!(is_counter(&host.report("pinned").await), "the pinned version, not the tag's");
    host.pull_fails("nowhere", "manifest").await;
}

#[tokio::test]
async fn a_truncated_blob_is_refused_and_nothing_partial_is_kept() {
    let registry = Registry::start();
    let image = format!("{}:1", registry.image("broken"));
    push(&guest("counter"), &image, None);
    let blob = registry.blob_file(&sha256_of(&guest("counter")));
    let bytes = std::fs::read(&blob).unwrap();
    std::fs::write(&blob, &bytes[..bytes.len() / 2]).unwrap();
    let host = Host::start(&registry, &format!("[sources.broken]\nimage = \"{image}\"\ncheck_every_s = 1\n")).await;
    host.pull_fails("broken", "downloading the component").await;
    // Tried again (backoff), still refused; the store keeps no partial file.
    host.until("broken", "was tried again", |e| e["source"]["failures"].as_u64() >= Some(2)).await;
    let store = host.daemon.cache_dir.join("sources");
    let kept: Vec<_> = walkdir::WalkDir::new(&store).into_iter().flatten().filter(|e| e.file_type().is_file()).map(|e| e.path().display().to_string()).collect();
    assert!(kept.is_empty(), "nothing of the broken blob is kept: {kept:?}");
}

#[tokio::test]
async fn signatures_are_required_where_a_key_is_configured() {
    let registry = Registry::start();
    let keys = tempfile::tempdir().unwrap();
    // Our own key pair, and one made by OpenSSL (another signer's key, in the standard format).
    cli(&["keygen", keys.path().join("team").to_str().unwrap()]);
    let other_key = keys.path().join("other.key");
    let openssl = |args: &[&str]| assert!(Command::new("openssl").args(args).status().unwrap().success(), "openssl {args:?}");
    openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", other_key.to_str().unwrap()]);
    let team_key = keys.path().join("team.key");
    let team_pub = keys.path().join("team.pub");

    let signed = format!("{}:1", registry.image("signed"));
    let unsigned = format!("{}:1", registry.image("unsigned"));
    let foreign = format!("{}:1", registry.image("foreign"));
    push(&guest("counter"), &signed, Some(&team_key));
    push(&guest("counter"), &unsigned, None);
    push(&guest("counter"), &foreign, Some(&other_key));

    // The operator's `scope-wasm pull --key` checks the same way.
    let out = keys.path().join("pulled.wasm");
    cli(&["pull", &signed, "--insecure", "--key", team_pub.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(sha256_of(&out), sha256_of(&guest("counter")));

    let key = team_pub.display();
    let host = Host::start(
        &registry,
        &format!(
            "[sources.signed]\nimage = \"{signed}\"\npublic_key = \"{key}\"\n\n\
             [sources.unsigned]\nimage = \"{unsigned}\"\npublic_key = \"{key}\"\n\n\
             [sources.foreign]\nimage = \"{foreign}\"\npublic_key = \"{key}\"\n"
        ),
    )
    .await;
    host.until("signed", "served", |e| e["state"] == "serving").await;
    assert!(is_counter(&host.report("signed").await));
    host.pull_fails("unsigned", "is not signed").await;
    host.pull_fails("foreign", "is not signed by public key").await;
    let log = host.daemon.log();
    assert!(log.contains("plugin=unsigned") || log.contains("unsigned"), "the refusal names the plugin:\n{log}");
}

#[tokio::test]
async fn an_unreachable_registry_leaves_the_last_good_version_serving() {
    let mut registry = Registry::start();
    let image = format!("{}:1", registry.image("steady"));
    push(&guest("counter"), &image, None);
    let host = Host::start(&registry, &format!("[sources.steady]\nimage = \"{image}\"\ncheck_every_s = 1\n")).await;
    host.until("steady", "served", |e| e["state"] == "serving").await;
    registry.stop();
    let entry = host.until("steady", "saw the registry gone", |e| e["source"]["state"] == "failed").await;
    assert_eq!(entry["state"], "serving");
    assert!(entry["detail"].as_str().unwrap().contains("the version pulled before serves"), "{entry}");
    let metrics = host.daemon.admin_get("/metrics").await;
    assert!(metrics.contains("scope_wasm_source_pull_ok{plugin=\"steady\"} 0"), "{metrics}");
    // Every poll meanwhile is answered by the version pulled before.
    let socket = host.daemon.socket("steady").await;
    let mut client = Client::connect(&socket).await;
    let mut failed = 0;
    for _ in 0..50 {
        let reply = client.get(&report_path("p")).await;
        if reply.status != 200 || !is_counter(&reply.json) {
            failed += 1;
        }
    }
    assert_eq!(failed, 0, "polls failed while the registry was away");
}

#[tokio::test]
async fn a_component_over_the_pull_limit_is_refused_before_the_download() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    // A valid component of 100 MB: the counter with a custom section of padding.
    let big = dir.path().join("big.wasm");
    let mut bytes = std::fs::read(guest("counter")).unwrap();
    let payload = 100 << 20;
    let name = b"padding";
    let mut section = vec![0u8];
    support::leb(1 + name.len() + payload, &mut section);
    section.push(name.len() as u8);
    section.extend_from_slice(name);
    bytes.extend_from_slice(&section);
    bytes.resize(bytes.len() + payload, 0);
    std::fs::write(&big, &bytes).unwrap();
    drop(bytes);
    let image = format!("{}:1", registry.image("huge"));
    push(&big, &image, None);

    let host = Host::start(&registry, &format!("[sources.huge]\nimage = \"{image}\"\ncheck_every_s = 1\n")).await;
    host.pull_fails("huge", "over the pull limit of 64 MiB").await;
    // Refused from the manifest: the daemon never held the blob.
    let status = std::fs::read_to_string(format!("/proc/{}/status", host.daemon.pid())).unwrap();
    let peak_kib: u64 = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches(" kB").trim().parse().unwrap();
    assert!(peak_kib < 90 << 10, "the daemon's peak RSS is {peak_kib} KiB: it must not have read the 100 MB blob");
    assert!(is_counter(&host.report("counter").await));
}

/// A tenant's sources: pulled into its name, held to its ceiling and to its
/// key; the ID is the source's, so a dropped file with it is refused.
#[tokio::test]
async fn a_tenant_pulls_its_own_sources_under_its_key() {
    let registry = Registry::start();
    let keys = tempfile::tempdir().unwrap();
    cli(&["keygen", keys.path().join("team-b").to_str().unwrap()]);
    let signed = format!("{}:1", registry.image("b-signed"));
    let unsigned = format!("{}:1", registry.image("b-unsigned"));
    push(&guest("counter"), &signed, Some(&keys.path().join("team-b.key")));
    push(&guest("counter"), &unsigned, None);
    let b_dir = tempfile::tempdir().unwrap();
    let host = Host::start(
        &registry,
        &format!(
            "[tenants.team-b]\ndir = \"{dir}\"\npublic_key = \"{key}\"\nceiling = {{ grants = [\"procfs\"] }}\n\n\
             [tenants.team-b.sources.b-pulled]\nimage = \"{signed}\"\n\n\
             [tenants.team-b.sources.b-sneaky]\nimage = \"{unsigned}\"\ncheck_every_s = 1\n",
            dir = b_dir.path().display(),
            key = keys.path().join("team-b.pub").display()
        ),
    )
    .await;
    let entry = host.until("b-pulled", "served", |e| e["state"] == "serving").await;
    assert_eq!(entry["tenant"], "team-b");
    assert!(is_counter(&host.report("b-pulled").await));
    let entry = host.pull_fails("b-sneaky", "is not signed").await;
    assert_eq!(entry["tenant"], "team-b");

    // The operator's directory cannot take the ID over.
    let dropped = host.daemon.plugin_dir.join("b-pulled.wasm");
    std::fs::copy(guest("iowait"), &dropped).unwrap();
    let log = host.daemon.wait_for_log(&format!("refusing {}", dropped.display())).await;
    assert!(log.contains("(rule: source)"), "{log}");
    assert!(is_counter(&host.report("b-pulled").await), "the pulled version still serves");
}

/// A version serving is kept only under the rules it was checked by: a key
/// added by a config reload stops an unsigned version at once, and pulls
/// are refused until a signed one comes.
#[tokio::test]
async fn a_key_added_by_a_reload_stops_what_it_did_not_check() {
    let registry = Registry::start();
    let keys = tempfile::tempdir().unwrap();
    cli(&["keygen", keys.path().join("team").to_str().unwrap()]);
    let image = format!("{}:1", registry.image("rekeyed"));
    push(&guest("counter"), &image, None);
    let plain = format!("[sources.rekeyed]\nimage = \"{image}\"\ncheck_every_s = 1\n");
    let host = Host::start(&registry, &plain).await;
    host.until("rekeyed", "served", |e| e["state"] == "serving").await;

    let keyed = format!("{plain}public_key = \"{}\"\n", keys.path().join("team.pub").display());
    host.set_config(&registry, &keyed);
    host.daemon.socket_gone("rekeyed").await;
    host.pull_fails("rekeyed", "is not signed").await;

    // Signed now, under the same tag: served again.
    push(&guest("counter"), &image, Some(&keys.path().join("team.key")));
    host.until("rekeyed", "served the signed version", |e| e["state"] == "serving" && e["source"]["state"] == "pulled").await;
    assert!(is_counter(&host.report("rekeyed").await));
}
