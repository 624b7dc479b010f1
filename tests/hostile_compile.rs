//! Compiles that cannot hurt (#14): hostile plugin files dropped into a running
//! daemon beside the good `counter` are refused with their cause in words, by
//! the structural pre-checks or by the rlimits of the compile child, while the
//! daemon stays small, alive and serving, also in a 512 MiB memory cgroup.

mod support;

use std::fs;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::cgroup::{MemoryCgroup, rss_of};
use support::{Client, Daemon, guest, leb, report_path};

const MIB: u64 = 1 << 20;
/// Far below the DaemonSet's 512 MiB: the daemon itself never compiles.
const DAEMON_PEAK_BOUND: u64 = 160 * MIB;

/// Every test here compiles heavily on a small machine: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn section(id: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![id];
    leb(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

const COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

/// (a) Empty components nested `depth` deep: 118 KB for 10,000, which took
/// 1.5-2 GiB to compile.
fn nested_components(depth: usize) -> Vec<u8> {
    let mut component = COMPONENT.to_vec();
    for _ in 1..depth {
        let mut outer = COMPONENT.to_vec();
        outer.extend(section(4, &component));
        component = outer;
    }
    component
}

/// A component holding one core module with these function bodies (no
/// locals, type [] -> []), without the final `end`.
fn component_with_functions(bodies: &[Vec<u8>]) -> Vec<u8> {
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    module.extend(section(1, &[1, 0x60, 0, 0]));
    let mut functions = Vec::new();
    leb(bodies.len(), &mut functions);
    functions.extend(std::iter::repeat_n(0, bodies.len()));
    module.extend(section(3, &functions));
    let mut code = Vec::new();
    leb(bodies.len(), &mut code);
    for body in bodies {
        let mut whole = vec![0]; // no locals
        whole.extend_from_slice(body);
        whole.push(0x0b);
        leb(whole.len(), &mut code);
        code.extend(whole);
    }
    module.extend(section(10, &code));
    let mut component = COMPONENT.to_vec();
    component.extend(section(1, &module));
    component
}

/// `depth` nested empty blocks.
fn nested_blocks(depth: usize) -> Vec<u8> {
    let mut body = [0x02, 0x40].repeat(depth);
    body.extend(std::iter::repeat_n(0x0b, depth));
    body
}

/// (c) Valid and within every structural limit, but slow: `functions`
/// functions of blocks nested 4,999 deep (Cranelift's time grows with the
/// square of the depth), about 50 ms of CPU each in a debug build. `salt`
/// makes the bytes differ, so that copies are not compiled once for all.
fn slow_component(functions: usize, salt: u8) -> Vec<u8> {
    let mut component = component_with_functions(&vec![nested_blocks(4_999); functions]);
    component.extend(section(0, &[4, b's', b'a', b'l', b't', salt]));
    component
}

/// (c) Valid and within every structural limit, but hungry: one 4 MiB function
/// of `i32.const 1; drop`, which Cranelift compiles with some 250 MiB.
fn hungry_component() -> Vec<u8> {
    let body = [0x41, 0x01, 0x1a].repeat(((4 << 20) - 64) / 3);
    component_with_functions(&[body])
}

/// Components instantiating each other tenfold, five levels: 100,000 module
/// instances from a few hundred bytes, which wasmtime would expand one by one.
fn fan_out_component() -> Vec<u8> {
    let mut wat = String::from("(component (component $c0 (core module $m) (core instance (instantiate $m)))");
    for level in 1..=5 {
        wat.push_str(&format!("(component $c{level} (alias outer 1 $c{} (component $inner))", level - 1));
        wat.push_str(&"(instance (instantiate $inner))".repeat(10));
        wat.push(')');
    }
    wat.push_str("(instance (instantiate $c5)))");
    wat::parse_str(&wat).unwrap()
}

/// Whether the daemon is still loading something (its status lists a
/// plugin with `loading_s`): a compile on a busy machine takes its time.
async fn loading(daemon: &Daemon) -> bool {
    let statuses: Value = serde_json::from_str(&daemon.admin_get("/status").await).unwrap_or_default();
    statuses.as_array().is_some_and(|all| all.iter().any(|s| !s["loading_s"].is_null()))
}

/// Waits until `done` gives a value, following the daemon's state, not the
/// clock: while it loads a plugin it may take up to 30 min; once it loads
/// nothing, 60 s more.
async fn wait_while_loading<T>(daemon: &Daemon, what: &str, mut done: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    let mut idle_since = Instant::now();
    loop {
        if let Some(value) = done().await {
            return value;
        }
        if loading(daemon).await && started.elapsed() < Duration::from_secs(30 * 60) {
            idle_since = Instant::now();
        }
        assert!(idle_since.elapsed() < Duration::from_secs(60), "{what}; log:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the log has `needle` `count` times.
async fn wait_for_log_count(daemon: &Daemon, needle: &str, count: usize) -> String {
    let what = format!("{needle:?} not logged {count} times");
    wait_while_loading(daemon, &what, async || Some(daemon.log()).filter(|log| log.matches(needle).count() >= count)).await
}

/// The plugin's line in `/status`, once its load is over and its detail says why.
async fn failed_status(daemon: &Daemon, id: &str) -> Value {
    wait_while_loading(daemon, &format!("{id} never failed"), async || {
        let statuses: Value = serde_json::from_str(&daemon.admin_get("/status").await).unwrap();
        // Done loading (no `loading_s`), with a reason.
        statuses.as_array().unwrap().iter().find(|s| s["id"] == id && s["detail"] != "" && s["loading_s"].is_null()).cloned()
    })
    .await
}

/// Drops `bytes` as `<id>.wasm` and waits for its refusal, which must say `cause`.
async fn refused(daemon: &Daemon, id: &str, bytes: &[u8], cause: &str) {
    fs::write(daemon.plugin_dir.join(format!("{id}.wasm")), bytes).unwrap();
    let status = failed_status(daemon, id).await;
    assert_eq!(status["state"], "failed", "{status}");
    let want = format!("plugin {id}: {cause}");
    assert_eq!(status["detail"], want, "{status}");
    assert!(daemon.log().contains(&want), "{}", daemon.log());
}

/// The daemon lives, counter answers, and the daemon's own peak stayed small.
async fn still_serving(daemon: &Daemon) -> u64 {
    assert!(fs::metadata(format!("/proc/{}", daemon.pid())).is_ok(), "the daemon died; log:\n{}", daemon.log());
    let mut client = Client::connect(&daemon.socket("counter").await).await;
    let reply = client.get(&report_path("p")).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let (_, peak) = rss_of(daemon.pid());
    assert!(peak < DAEMON_PEAK_BOUND, "the daemon peaked at {} MiB", peak / MIB);
    peak
}

#[tokio::test]
async fn deep_nesting_and_fan_out_are_refused_before_any_compile() {
    let _serial = SERIAL.lock().await;
    let daemon = Daemon::start(&[("counter.wasm", guest("counter"))], &[]);
    daemon.socket("counter").await;

    refused(&daemon, "deep-components", &nested_components(10_000), "components nested 10000 deep; the limit is 16")
        .await;
    refused(
        &daemon,
        "deep-blocks",
        &component_with_functions(&[nested_blocks(100_000)]),
        "blocks nested 100000 deep in one function; the limit is 5000",
    )
    .await;
    refused(
        &daemon,
        "fan-out",
        &fan_out_component(),
        "its components instantiate each other into 100000 module instances; the limit is 10000",
    )
    .await;
    let peak = still_serving(&daemon).await;
    eprintln!("daemon peak RSS: {} MiB", peak / MIB);
}

#[tokio::test]
async fn a_valid_file_over_the_compile_limits_is_stopped_and_told() {
    let _serial = SERIAL.lock().await;
    let daemon = Daemon::start(
        &[("counter.wasm", guest("counter"))],
        &["--compile-cpu-secs", "2", "--compile-cpu-secs-per-mib", "0"],
    );
    daemon.socket("counter").await;

    // Some 5 s of CPU against a 2 s limit.
    refused(&daemon, "slow", &slow_component(100, 0), "compiling took more than 2 s of CPU time").await;
    // 4 MiB gets 48 + 4 * 40 MiB.
    refused(&daemon, "hungry", &hungry_component(), "compiling needed more than 208 MiB of memory").await;
    let peak = still_serving(&daemon).await;
    eprintln!("daemon peak RSS: {} MiB", peak / MIB);
    // Nothing of the dead compiles is left in the cache: only counter's entry.
    // (Besides the memo of content hashes, which holds lines, not code.)
    let entries = fs::read_dir(&daemon.cache_dir).unwrap().filter(|e| e.as_ref().unwrap().file_name() != "content-hashes").count();
    assert_eq!(entries, 1, "{:?}", fs::read_dir(&daemon.cache_dir).unwrap().collect::<Vec<_>>());
}

#[tokio::test]
async fn a_slow_compile_gives_its_slot_to_a_good_plugin() {
    let _serial = SERIAL.lock().await;
    let daemon = Daemon::start(&[], &[]);
    daemon.wait_for_log("watching for plugins").await;
    // One slow file per compile slot: some 15 s of CPU each, within every limit.
    let slots = std::thread::available_parallelism().map_or(1, |n| n.get());
    for i in 0..slots {
        fs::write(daemon.plugin_dir.join(format!("slow-{i}.wasm")), slow_component(300, i as u8)).unwrap();
    }
    // At most 2 run demoted; each gives a slot back.
    wait_for_log_count(&daemon, "still compiling after 5 s", slots.min(2)).await;

    fs::copy(guest("counter"), daemon.plugin_dir.join("counter.wasm")).unwrap();
    still_serving(&daemon).await;
    let log = daemon.log();
    assert_eq!(log.matches("compile done after").count(), 0, "counter waited for a slow compile:\n{log}");

    // The slow ones finish in their own time, and are refused for what they are.
    let log = wait_for_log_count(&daemon, "compile done after", slots).await;
    wait_for_log_count(&daemon, "not a Scope plugin", slots).await;
    assert_eq!(log.matches("took more than").count(), 0, "{log}");
    still_serving(&daemon).await;
}

#[tokio::test]
async fn the_daemon_survives_every_hostile_file_in_a_512_mib_cgroup() {
    let _serial = SERIAL.lock().await;
    let daemon = Daemon::start(&[], &[]);
    let Some(cgroup) = MemoryCgroup::new("scope-wasm-hostile-compile", 512 * MIB) else {
        panic!("this test needs the cgroup v1 memory controller (run as root on these machines)");
    };
    // Before any plugin: every compile child starts inside the group.
    cgroup.add(daemon.pid());
    daemon.wait_for_log("watching for plugins").await;
    fs::copy(guest("counter"), daemon.plugin_dir.join("counter.wasm")).unwrap();
    daemon.socket("counter").await;

    let hostile: [(&str, Vec<u8>); 5] = [
        ("deep-components", nested_components(10_000)),
        ("deep-blocks", component_with_functions(&[nested_blocks(100_000)])),
        ("fan-out", fan_out_component()),
        ("hungry", hungry_component()),
        ("slow", slow_component(100, 0)),
    ];
    for (id, bytes) in &hostile {
        fs::write(daemon.plugin_dir.join(format!("{id}.wasm")), bytes).unwrap();
    }
    for (id, _) in &hostile {
        failed_status(&daemon, id).await;
    }
    let log = daemon.log();
    for cause in [
        "plugin deep-components: components nested 10000 deep",
        "plugin deep-blocks: blocks nested 100000 deep",
        "plugin fan-out: its components instantiate each other",
        "plugin hungry: compiling needed more than 208 MiB of memory",
        // Within the default limits: compiled, then refused for what it is.
        "plugin slow: not a Scope plugin",
    ] {
        assert!(log.contains(cause), "{cause:?} not in the log:\n{log}");
    }
    let peak = still_serving(&daemon).await;
    eprintln!(
        "daemon peak RSS {} MiB; cgroup peak (daemon and compile children) {} MiB, failcnt {}",
        peak / MIB,
        cgroup.max_usage_bytes() / MIB,
        cgroup.failcnt()
    );
    assert_eq!(cgroup.oom_kills(), 0);
}

/// The compile children `pid` has started, from every thread's list.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .filter_map(|task| fs::read_to_string(task.ok()?.path().join("children")).ok())
        .flat_map(|list| list.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect()
}

/// CPU time `pid` has used, in clock ticks (user and system).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat; the name's field and the one before it are cut off.
    fields.get(11..13).map_or(0, |f| f.iter().filter_map(|n| n.parse::<u64>().ok()).sum())
}

/// Whether `pid` still runs (a zombie waiting for a reaper does not).
fn running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

#[tokio::test]
async fn a_killed_daemon_takes_its_compiles_with_it() {
    let _serial = SERIAL.lock().await;
    let daemon = Daemon::start(&[], &[]);
    daemon.wait_for_log("watching for plugins").await;
    fs::write(daemon.plugin_dir.join("slow.wasm"), slow_component(300, 99)).unwrap();
    let started = Instant::now();
    let compiler = loop {
        if let Some(&child) = children_of(daemon.pid()).first() {
            break child;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no compile started; log:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Once it compiles (it has read the whole file and used some CPU), the
    // daemon is killed as the OOM killer would: no chance to clean up. The
    // compile has some 15 s of CPU to go.
    while cpu_ticks(compiler) < 50 {
        assert!(running(compiler), "the compile ended early; log:\n{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = std::process::Command::new("kill").args(["-KILL", &daemon.pid().to_string()]).status().unwrap();
    assert!(status.success());
    let killed = Instant::now();
    while running(compiler) {
        assert!(killed.elapsed() < Duration::from_secs(5), "the compile child {compiler} outlived its daemon");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
