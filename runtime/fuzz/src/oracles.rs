//! The properties the fuzz targets and tests/properties.rs (which includes
//! this file) check. Each returns `Err` with what broke; a panic inside the
//! host code is a failure too, caught by the fuzzer or by proptest.
//!
//! Where the host keeps a list (the readable /proc files, the Docker paths),
//! the oracle holds its own copy of what docs/plugin-authors.md promises, so
//! a change to either side shows here.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use chrono::DateTime;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use wasmtime_wasi::cli::StdoutStream;

use scope_wasm::Overrides;
use scope_wasm::bindings::*;
use scope_wasm::bindings::scope::plugin::procfs::ProcfsError;
use scope_wasm::config::ConfigFile;
use scope_wasm::config::grants::ProcfsGrant;
use scope_wasm::host::docker::{RawPath, check_raw_path, without_environment};
use scope_wasm::host::{procfs, traffic};
use scope_wasm::ops::guest_log::{self, GuestLog};
use scope_wasm::plugin_id::PluginId;
use scope_wasm::run::limits::{MAX_CLOCK_SKEW_MS, MAX_ERROR_TEXT_BYTES, MAX_PROBE_ID_BYTES};
use scope_wasm::serve::scope_json::{self, RenderContext, RenderLimits};
use scope_wasm::serve::server;

use super::generate::{Case, MAX_TIMESTAMP_MS, SECRET};

pub type Outcome = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err(format!($($message)+));
        }
    };
}

/// A guest string as a failure message quotes it: cut, escaped.
pub fn short(text: &str) -> String {
    let mut end = text.len().min(120);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < text.len() { format!("... ({} bytes)", text.len()) } else { String::new() };
    format!("{:?}{cut}", &text[..end])
}

// ---- JSON ----------------------------------------------------------------

/// Parses JSON as the probe's decoder would, but refuses what serde_json
/// lets pass silently: a key twice in one object, bytes after the value.
pub fn strict_json(bytes: &[u8]) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let Strict(value) = Strict::deserialize(&mut de).map_err(|e| format!("invalid JSON: {e}"))?;
    de.end().map_err(|e| format!("bytes after the JSON value: {e}"))?;
    Ok(value)
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("key {} twice in one object", short(&key))));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

// ---- the report encoder ---------------------------------------------------

fn context(case: &Case) -> RenderContext<'_> {
    RenderContext { plugin: &case.plugin, info: &case.info, hostname: case.hostname.as_deref(), now_ms: case.now_ms }
}

fn render_limits(case: &Case) -> RenderLimits<'_> {
    RenderLimits { max_bytes: case.max_bytes, items: &case.limits }
}

/// `encode_report`: never panics; an error is short, one line, and names its
/// place; a render is within its byte limit, deterministic, and every body
/// made from it (for any probe) is strict JSON that says exactly what the
/// report said, with the host's entries where they belong.
pub fn report(case: &Case) -> Outcome {
    let ctx = context(case);
    let rendered = match scope_json::encode_report(&ctx, &case.report, render_limits(case)) {
        Ok(rendered) => rendered,
        Err(err) => return placed_error(case, &err),
    };
    ensure!(rendered.len() <= case.max_bytes, "rendered {} bytes over the limit of {}", rendered.len(), case.max_bytes);
    let again = scope_json::encode_report(&ctx, &case.report, render_limits(case))
        .map_err(|e| format!("the same report failed the second time: {e}"))?;
    ensure!(again.body(None) == rendered.body(None), "two renders of one report differ");
    // A big report's content is compared once (for the case's probe), the
    // other bodies only parsed: the comparison costs more than the render.
    let items: usize = case.report.topologies.iter().map(|t| t.nodes.len() + t.controls.len()).sum();
    for (i, probe_id) in [case.probe_id.as_deref(), None, Some("0123456789abcdef")].into_iter().enumerate() {
        let place = || format!("body(probe_id = {})", probe_id.map_or("None".into(), short));
        match rendered.body(probe_id) {
            Ok(body) => {
                ensure!(body.len() <= case.max_bytes, "{}: {} bytes, over the limit of {}", place(), body.len(), case.max_bytes);
                let json = strict_json(&body).map_err(|e| format!("{}: {e}", place()))?;
                if i == 0 || items < 2_000 {
                    report_json(case, &json, probe_id, false).map_err(|e| format!("{}: {e}", place()))?;
                }
            }
            Err(err) => {
                short_error(&err)?;
                let long_id = probe_id.is_some_and(|p| p.len() > MAX_PROBE_ID_BYTES);
                ensure!(
                    (long_id && err.starts_with("probe_id is ")) || (!long_id && err.starts_with("report is over ")),
                    "{}: refused for the wrong reason: {err:?}",
                    place()
                );
            }
        }
    }
    Ok(())
}

/// The `{"shortcutReport":` ... `}` around a shortcut report.
pub const SHORTCUT_WRAPPER_BYTES: usize = 19;

/// `encode_control_response`: the same as `report`, for a shortcut report
/// (whose plugin is always a controller), inside its wrapper.
pub fn control_response(case: &Case, with_shortcut: bool) -> Outcome {
    let ctx = context(case);
    let response = ControlResponse { shortcut_report: with_shortcut.then(|| case.report.clone()) };
    let probe_id = case.probe_id.as_deref();
    match scope_json::encode_control_response(&ctx, &response, render_limits(case), probe_id) {
        Ok(body) if !with_shortcut => {
            ensure!(body == b"{}", "no shortcut report, but the body is {}", short(&String::from_utf8_lossy(&body)));
            Ok(())
        }
        Ok(body) => {
            ensure!(
                body.len() <= case.max_bytes.saturating_add(SHORTCUT_WRAPPER_BYTES),
                "a control response of {} bytes for a limit of {}",
                body.len(),
                case.max_bytes
            );
            let json = strict_json(&body)?;
            let object = json.as_object().ok_or("the control response is not an object")?;
            ensure!(object.len() == 1, "control response keys: {:?}", object.keys().collect::<Vec<_>>());
            let shortcut = object.get("shortcutReport").ok_or("no shortcutReport")?;
            report_json(case, shortcut, probe_id, true).map_err(|e| format!("shortcutReport: {e}"))
        }
        Err(err) => {
            ensure!(with_shortcut, "no shortcut report, yet an error: {err:?}");
            short_error(&err)?;
            let rest = err.strip_prefix("shortcut report: ").ok_or_else(|| format!("an error without its place: {err:?}"))?;
            if rest.starts_with("probe_id is ") {
                ensure!(probe_id.is_some_and(|p| p.len() > MAX_PROBE_ID_BYTES), "a short probe_id refused: {err:?}");
                return Ok(());
            }
            placed_error(case, rest)
        }
    }
}

/// `control_error_message`: the plugin named first, the guest's text cut.
pub fn control_error(plugin: &PluginId, err: &ControlError) -> Outcome {
    let message = scope_json::control_error_message(plugin, err);
    ensure!(message.starts_with(&format!("plugin {plugin}: ")), "control error without the plugin: {}", short(&message));
    // The cut keeps 4 KiB and says how much went: "... (N more bytes cut)".
    ensure!(message.len() <= MAX_ERROR_TEXT_BYTES + 64, "a control error of {} bytes", message.len());
    Ok(())
}

/// Errors go to the probe's UI and the daemon's log: short and one line.
fn short_error(err: &str) -> Outcome {
    ensure!(!err.is_empty(), "an empty error");
    ensure!(err.len() < MAX_ERROR_TEXT_BYTES, "an error of {} bytes: {}", err.len(), short(err));
    ensure!(!err.chars().any(is_unsafe_char), "an error with control characters: {}", short(err));
    Ok(())
}

/// A refused report's error names a place the plugin can find: a topology
/// (and in it a node, a key, a template), or the limit it broke by name.
fn placed_error(case: &Case, err: &str) -> Outcome {
    short_error(err)?;
    let placed = if let Some(rest) = err.strip_prefix("topology ") {
        case.report.topologies.iter().map(|t| scope_json::topology_key(t.kind)).any(|key| {
            rest.strip_prefix(key).is_some_and(|after| after.starts_with(": ") || after == " appears twice")
        })
    } else {
        (err.contains(", more than the limit of ") && err.ends_with(" option)"))
            || (err.starts_with("a string is ") && err.contains("`max_text_kib`"))
            || err.starts_with("report is over ")
            || (err.starts_with("timestamp ") && case.now_ms > MAX_TIMESTAMP_MS)
    };
    ensure!(placed, "an error that names no place in the report: {}", short(err));
    if let Some(Ok(count)) = err.split_once(" nodes, more than the limit of ").map(|(n, _)| n.parse::<usize>()) {
        let nodes: usize = case.report.topologies.iter().map(|t| t.nodes.len()).sum();
        ensure!(count == nodes && nodes > case.limits.max_nodes, "{err:?} for {nodes} nodes");
    }
    Ok(())
}

/// Everything the rendered JSON must say about `case.report`.
fn report_json(case: &Case, json: &Value, probe_id: Option<&str>, controller: bool) -> Outcome {
    let top = json.as_object().ok_or("the report is not an object")?;
    let plugins = top.get("Plugins").and_then(Value::as_array).ok_or("no Plugins list")?;
    ensure!(plugins.len() == 1, "{} plugin specs", plugins.len());
    let spec = &plugins[0];
    ensure!(spec["id"] == case.plugin.as_str(), "spec id {} is not the plugin's", spec["id"]);
    ensure!(spec["api_version"] == "1", "api_version {}", spec["api_version"]);
    ensure!(
        spec["label"] == case.info.label.as_str() && spec["description"] == case.info.description.as_str(),
        "the label or description changed on the way"
    );
    let controls = controller || case.report.topologies.iter().any(|t| !t.controls.is_empty());
    let want: &[&str] = if controls { &["reporter", "controller"] } else { &["reporter"] };
    ensure!(spec["interfaces"] == serde_json::json!(want), "interfaces {} (controls: {controls})", spec["interfaces"]);
    ensure!(
        top.len() == case.report.topologies.len() + 1,
        "top-level keys {:?} for {} topologies",
        top.keys().collect::<Vec<_>>(),
        case.report.topologies.len()
    );
    for topology in &case.report.topologies {
        let key = scope_json::topology_key(topology.kind);
        let out = top.get(key).ok_or_else(|| format!("topology {key} is missing"))?;
        topology_json(case, topology, out, probe_id).map_err(|e| format!("topology {key}: {e}"))?;
    }
    Ok(())
}

fn object<'v>(value: &'v Value, what: &str) -> Result<&'v serde_json::Map<String, Value>, String> {
    value.as_object().ok_or_else(|| format!("{what} is not an object: {}", short(&value.to_string())))
}

/// Present (as an object of `len` entries) exactly when `len` is not 0.
fn optional_map<'v>(
    out: &'v serde_json::Map<String, Value>,
    key: &str,
    len: usize,
) -> Result<Option<&'v serde_json::Map<String, Value>>, String> {
    match out.get(key) {
        None => {
            ensure!(len == 0, "{key} missing for {len} items");
            Ok(None)
        }
        Some(value) => {
            let map = object(value, key)?;
            ensure!(len > 0 && map.len() == len, "{key} has {} entries for {len} items", map.len());
            Ok(Some(map))
        }
    }
}

fn topology_json(case: &Case, t: &Topology, out: &Value, probe_id: Option<&str>) -> Outcome {
    let out = object(out, "the topology")?;
    if let Some(controls) = optional_map(out, "controls", t.controls.len())? {
        for control in &t.controls {
            let c = controls.get(&control.id).ok_or_else(|| format!("control {} missing", short(&control.id)))?;
            ensure!(
                c["id"] == control.id.as_str()
                    && c["human"] == control.human.as_str()
                    && c["icon"] == control.icon.as_str()
                    && c["rank"] == control.rank
                    && c.get("confirmation").and_then(Value::as_str) == control.confirmation.as_deref(),
                "control {} changed on the way: {}",
                short(&control.id),
                short(&c.to_string())
            );
        }
    }
    optional_map(out, "metadata_templates", t.metadata_templates.len())?;
    optional_map(out, "metric_templates", t.metric_templates.len())?;
    if let Some(tables) = optional_map(out, "table_templates", t.table_templates.len())? {
        for table in &t.table_templates {
            let o = tables.get(&table.id).ok_or_else(|| format!("table {} missing", short(&table.id)))?;
            let rows: BTreeMap<&str, &str> = table.fixed_rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            let out_rows = object(&o["fixedRows"], "fixedRows")?;
            ensure!(out_rows.len() == rows.len(), "fixedRows: {} rows for {}", out_rows.len(), rows.len());
            ensure!(o["columns"].as_array().map(Vec::len) == Some(table.columns.len()), "table columns changed");
        }
    }
    let nodes = object(out.get("nodes").ok_or("no nodes")?, "nodes")?;
    ensure!(nodes.len() == t.nodes.len(), "{} nodes out of {}", nodes.len(), t.nodes.len());
    for node in &t.nodes {
        let o = nodes.get(&node.id).ok_or_else(|| format!("node {} missing", short(&node.id)))?;
        node_json(case, t, node, o, probe_id).map_err(|e| format!("node {}: {e}", short(&node.id)))?;
    }
    for key in out.keys() {
        ensure!(
            ["controls", "metadata_templates", "metric_templates", "nodes", "table_templates"].contains(&key.as_str()),
            "unexpected topology key {}",
            short(key)
        );
    }
    Ok(())
}

fn node_json(case: &Case, t: &Topology, node: &Node, out: &Value, probe_id: Option<&str>) -> Outcome {
    let now = case.now_ms;
    let out = object(out, "the node")?;
    ensure!(out.get("id").and_then(Value::as_str) == Some(node.id.as_str()), "id {:?}", out.get("id"));
    ensure!(out["topology"] == scope_json::topology_name(t.kind), "topology name {}", out["topology"]);
    let has_controls = !t.controls.is_empty();
    let empty = serde_json::Map::new();
    let latest = match out.get("latest") {
        Some(latest) => object(latest, "latest")?,
        None => {
            ensure!(!has_controls && node.latest.is_empty(), "no latest on a node with entries or controls");
            &empty
        }
    };
    let mut keys = node.latest.len();
    for entry in &node.latest {
        let place = || format!("latest {}", short(&entry.key));
        let v = latest.get(&entry.key).ok_or_else(|| format!("{} missing", place()))?;
        ensure!(v["value"] == entry.value.as_str(), "{}: the value changed on the way", place());
        let at = timestamp_ms(&v["timestamp"], now).map_err(|e| format!("{}: {e}", place()))?;
        let want = entry.timestamp.map_or(now, |ms| ms.min(now.saturating_add(MAX_CLOCK_SKEW_MS)));
        ensure!(at == want, "{}: timestamp {at}, not {want} (sent {:?}, now {now})", place(), entry.timestamp);
    }
    if has_controls {
        keys += 1;
        let active = latest.get("active_controls").ok_or("a node of a topology with controls has no active_controls")?;
        let want: BTreeSet<&str> = node.active_controls.iter().map(String::as_str).collect();
        let want = want.into_iter().collect::<Vec<_>>().join(";");
        ensure!(active["value"] == want.as_str(), "active_controls {} for {want:?}", active["value"]);
        ensure!(timestamp_ms(&active["timestamp"], now)? == now, "active_controls is not stamped now");
        match probe_id {
            Some(probe_id) => {
                keys += 1;
                let entry = latest.get("control_probe_id").ok_or("a node with controls has no control_probe_id")?;
                ensure!(entry["value"] == probe_id, "control_probe_id {} for {}", entry["value"], short(probe_id));
                ensure!(timestamp_ms(&entry["timestamp"], now)? == now, "control_probe_id is not stamped now");
            }
            None => ensure!(!latest.contains_key("control_probe_id"), "control_probe_id without a probe"),
        }
    } else {
        ensure!(
            !latest.contains_key("active_controls") && !latest.contains_key("control_probe_id"),
            "host entries on a node of a topology without controls"
        );
    }
    ensure!(latest.len() == keys, "{} latest entries, not {keys}", latest.len());
    if let Some(metrics) = optional_map(out, "metrics", node.metrics.len())? {
        for metric in &node.metrics {
            let place = || format!("metric {}", short(&metric.key));
            let m = metrics.get(&metric.key).ok_or_else(|| format!("{} missing", place()))?;
            ensure!(
                close(&m["min"], metric.min) && close(&m["max"], metric.max),
                "{}: min/max {}/{} for {}/{}",
                place(),
                m["min"],
                m["max"],
                metric.min,
                metric.max
            );
            match m.get("samples") {
                None => ensure!(metric.samples.is_empty(), "{}: samples missing", place()),
                Some(samples) => {
                    let samples = samples.as_array().ok_or("samples is not a list")?;
                    ensure!(
                        !metric.samples.is_empty() && samples.len() == metric.samples.len(),
                        "{}: {} samples for {}",
                        place(),
                        samples.len(),
                        metric.samples.len()
                    );
                    for (out, sample) in samples.iter().zip(&metric.samples) {
                        let at = timestamp_ms(&out["date"], now).map_err(|e| format!("{}: {e}", place()))?;
                        ensure!(at == sample.timestamp.min(now.saturating_add(MAX_CLOCK_SKEW_MS)), "{}: date {at}", place());
                        ensure!(close(&out["value"], sample.value), "{}: value {} for {}", place(), out["value"], sample.value);
                    }
                }
            }
        }
    }
    let mut sets: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for set in &node.sets {
        sets.entry(set.key.as_str()).or_default().extend(set.values.iter().map(String::as_str));
    }
    same_sets(out.get("sets"), &sets).map_err(|e| format!("sets: {e}"))?;
    let mut parents: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for p in &node.parents {
        parents.entry(scope_json::topology_name(p.topology)).or_default().extend(p.ids.iter().map(String::as_str));
    }
    same_sets(out.get("parents"), &parents).map_err(|e| format!("parents: {e}"))?;
    for key in out.keys() {
        ensure!(
            ["id", "latest", "metrics", "parents", "sets", "topology"].contains(&key.as_str()),
            "unexpected node key {}",
            short(key)
        );
    }
    Ok(())
}

/// An object of sorted string lists, exactly `want` (absent when empty).
fn same_sets(out: Option<&Value>, want: &BTreeMap<&str, BTreeSet<&str>>) -> Outcome {
    let Some(out) = out else {
        ensure!(want.is_empty(), "missing");
        return Ok(());
    };
    let out = object(out, "the sets")?;
    ensure!(out.len() == want.len(), "{} keys for {}", out.len(), want.len());
    for (key, values) in want {
        let list = out.get(*key).and_then(Value::as_array).ok_or_else(|| format!("{} missing", short(key)))?;
        let list: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
        ensure!(list == values.iter().copied().collect::<Vec<_>>(), "{}: {:?}", short(key), list);
    }
    Ok(())
}

/// The float the JSON holds is the one sent (to serde_json's parsing precision).
fn close(value: &Value, want: f64) -> bool {
    value.as_f64().is_some_and(|got| got == want || (got - want).abs() <= want.abs() * 1e-15)
}

/// A timestamp as the probe parses it: RFC 3339, UTC, milliseconds, not
/// after year 9999, and not ahead of the host's clock by more than the skew.
fn timestamp_ms(value: &Value, now: u64) -> Result<u64, String> {
    let text = value.as_str().ok_or_else(|| format!("timestamp {value} is not a string"))?;
    ensure!(text.len() == 24 && text.ends_with('Z'), "timestamp {text:?} is not YYYY-MM-DDTHH:MM:SS.mmmZ");
    let ms = DateTime::parse_from_rfc3339(text).map_err(|e| format!("timestamp {text:?}: {e}"))?.timestamp_millis();
    let ms = u64::try_from(ms).map_err(|_| format!("timestamp {text:?} is before 1970"))?;
    ensure!(ms <= MAX_TIMESTAMP_MS, "timestamp {text:?} is after year 9999");
    ensure!(ms <= now.saturating_add(MAX_CLOCK_SKEW_MS), "timestamp {text:?} is more than 60 s after now ({now})");
    Ok(ms)
}

// ---- procfs ----------------------------------------------------------------

/// What the allow-list documents (docs/plugin-authors.md), kept apart from the host's copy.
const PROC_HOST_FILES: &[&str] = &[
    "stat", "meminfo", "loadavg", "uptime", "cpuinfo", "diskstats", "vmstat", "version", "partitions", "swaps",
    "filesystems", "interrupts", "softirqs", "cgroups", "zoneinfo", "buddyinfo", "pressure/cpu", "pressure/memory",
    "pressure/io", "sys/kernel/hostname", "sys/kernel/osrelease", "sys/kernel/pid_max", "sys/fs/file-nr",
];
const PROC_NET_FILES: &[&str] =
    &["dev", "snmp", "snmp6", "netstat", "tcp", "tcp6", "udp", "udp6", "sockstat", "sockstat6", "route", "arp"];
const PROC_PROCESS_FILES: &[&str] = &[
    "stat", "statm", "status", "cmdline", "comm", "io", "limits", "cgroup", "sched", "schedstat", "oom_score",
    "oom_score_adj", "wchan", "smaps_rollup", "mountinfo", "loginuid", "sessionid",
];
/// Never readable anywhere in a path: links out of /proc, memory, addresses, kernel interfaces, `self`.
const PROC_FORBIDDEN: &[&str] = &[
    "root", "cwd", "exe", "fd", "fdinfo", "map_files", "ns", "mem", "pagemap", "kpagecount", "kpageflags",
    "clear_refs", "auxv", "maps", "smaps", "stack", "syscall", "kallsyms", "timer_list", "kcore", "kmsg",
    "sysrq-trigger", "keys", "key-users", "config.gz", "attr", "self", "thread-self",
];

/// `procfs::resolve`: only the documented files are accepted, under /proc,
/// without `..`, links or `self`; `environ` only as `<pid>/environ` with its
/// grant. A refusal is short (it goes back to the guest, in host memory first).
pub fn procfs_path(path: &str, environ: bool) -> Outcome {
    let resolved = match procfs::resolve(path, &ProcfsGrant { environ }) {
        Ok(resolved) => resolved,
        Err(ProcfsError::Denied(why)) => {
            ensure!(why.len() < MAX_ERROR_TEXT_BYTES, "a refusal of {} bytes for a path of {}", why.len(), path.len());
            return Ok(());
        }
        Err(other) => return Err(format!("resolve answered neither a path nor a refusal: {other:?}")),
    };
    let relative = path.strip_prefix("/proc/").unwrap_or(path);
    ensure!(resolved.relative == relative, "{} resolved to {:?}", short(path), resolved.relative);
    ensure!(!relative.starts_with('/') && !relative.contains('\0'), "{} accepted", short(path));
    let parts: Vec<&str> = relative.split('/').collect();
    ensure!(parts.iter().all(|p| !p.is_empty() && *p != "." && *p != ".."), "{} accepted", short(path));
    let pid = |s: &str| s.parse::<u32>().is_ok();
    ensure!(resolved.pid == parts[0].parse::<u32>().ok(), "{}: pid {:?}", short(path), resolved.pid);
    for part in &parts {
        ensure!(!PROC_FORBIDDEN.contains(part), "{} accepted with {part:?} in it", short(path));
    }
    let listed = match parts.as_slice() {
        [pid_part, "environ"] => environ && pid(pid_part),
        [_, ..] if parts.contains(&"environ") => false,
        [pid_part, file] if pid(pid_part) => PROC_PROCESS_FILES.contains(file),
        [pid_part, "net", file] if pid(pid_part) => PROC_NET_FILES.contains(file),
        [pid_part, "task", tid, file] if pid(pid_part) && pid(tid) => PROC_PROCESS_FILES.contains(file),
        ["net", file] => PROC_NET_FILES.contains(file),
        _ => !pid(parts[0]) && PROC_HOST_FILES.contains(&relative),
    };
    ensure!(listed, "{} accepted but it is not on the documented list (environ grant: {environ})", short(path));
    Ok(())
}

// ---- docker ----------------------------------------------------------------

/// Raw GETs: normalising is idempotent and changes no decision; what passes
/// is plain (no escapes, `..` or empty segments), read-only and on the list,
/// only `/version` and `/_ping` for a plugin scoped by labels, and the
/// host's idea of an inspect (whose environment it strips) is the engine's.
pub fn docker_path(path: &str, scoped: bool) -> Outcome {
    let Ok(raw) = RawPath::parse(path) else { return Ok(()) };
    let decision = check_raw_path(&raw, scoped);
    let normal = raw.to_string();
    let again = RawPath::parse(&normal).map_err(|e| format!("{} normalised to {normal:?}, which is refused: {e}", short(path)))?;
    ensure!(again == raw, "{} normalised to {normal:?}, which normalises to {again:?}", short(path));
    ensure!(check_raw_path(&again, scoped) == decision, "{} and {normal:?} are decided differently", short(path));
    if decision.is_err() {
        return Ok(());
    }
    let (path_part, query) = normal.split_once('?').unwrap_or((&normal, ""));
    ensure!(
        path_part.starts_with('/') && path_part.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_.-:@".contains(&b)),
        "{} passed as {normal:?}",
        short(path)
    );
    ensure!(query.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.~=&%+,:-".contains(&b)), "query {query:?} passed");
    let segments: Vec<&str> = path_part[1..].split('/').collect();
    ensure!(segments.iter().all(|s| !s.is_empty() && *s != "." && *s != ".."), "{normal:?} passed");
    let id = |s: &str| (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    let inspect = match segments.as_slice() {
        ["version"] | ["_ping"] => false,
        _ if scoped => return Err(format!("a plugin scoped by labels may GET {normal:?}")),
        ["info"] | ["images", "json"] | ["containers", "json"] | ["networks"] | ["volumes"] => false,
        ["networks", n] if id(n) => false,
        ["containers", c, "json"] if id(c) => true,
        ["containers", c, "top"] if id(c) && query.is_empty() => false,
        ["containers", c, "stats"] if id(c) && query == "stream=false" => false,
        ["images", reference @ .., "json"] if (1..=8).contains(&reference.len()) && reference.iter().all(|s| s.len() <= 255) => {
            true
        }
        _ => return Err(format!("{} passed as {normal:?}, which is not on the read-only list", short(path))),
    };
    ensure!(raw.is_inspect() == inspect, "{normal:?}: is_inspect() is {}, the engine's route says {inspect}", raw.is_inspect());
    Ok(())
}

/// An inspect body never keeps `Config.Env` or `ContainerConfig.Env`, in
/// whatever spelling it came; what comes out is strict JSON. `planted`: the
/// body holds `SECRET` only there, so it must not survive anywhere.
pub fn docker_inspect_env(body: &[u8], planted: bool) -> Outcome {
    let Ok(text) = without_environment(body) else { return Ok(()) };
    if planted {
        ensure!(!text.contains(SECRET), "the environment survived in {}", short(&text));
    }
    let json = strict_json(text.as_bytes())?;
    for config in ["Config", "ContainerConfig"] {
        if let Some(config) = json.get(config).and_then(Value::as_object) {
            ensure!(!config.contains_key("Env"), "Env survived in {}", short(&text));
        }
    }
    Ok(())
}

// ---- traffic -----------------------------------------------------------------

/// `tc` arguments from guest numbers: in range or refused with the range,
/// never a panic, never an argument `tc` would read as an option.
pub fn traffic(latency_ms: Option<u32>, loss: Option<f64>, rate_kbit: u64) -> Outcome {
    let plain = |args: &[String]| args.iter().all(|a| !a.is_empty() && !a.starts_with('-') && a.bytes().all(|b| b.is_ascii_graphic()));
    match traffic::delay_loss_args(latency_ms, loss) {
        Ok(args) => {
            ensure!(latency_ms.is_none_or(|ms| ms <= traffic::MAX_LATENCY_MS), "latency {latency_ms:?} accepted");
            ensure!(loss.is_none_or(|l| (0.0..=100.0).contains(&l)), "loss {loss:?} accepted");
            ensure!(args[..6] == ["qdisc", "replace", "dev", "eth0", "root", "netem"], "{args:?}");
            ensure!(plain(&args), "{args:?}");
            if let Some(loss) = loss {
                let written = args.last().and_then(|a| a.strip_suffix('%')).and_then(|a| a.parse::<f64>().ok());
                ensure!(written == Some(loss.abs()), "loss {loss} written as {:?}", args.last());
            }
        }
        Err(err) => {
            let bad_latency = latency_ms.is_some_and(|ms| ms > traffic::MAX_LATENCY_MS);
            let bad_loss = loss.is_some_and(|l| !(0.0..=100.0).contains(&l));
            ensure!(bad_latency || bad_loss, "{latency_ms:?}/{loss:?} refused: {err}");
            // A huge float is written out in full (f64::MAX is 309 digits): long, but bounded.
            ensure!(err.to_string().contains(err.name) && err.to_string().len() < 1024, "{err}");
        }
    }
    match traffic::rate_args(rate_kbit) {
        Ok(args) => {
            ensure!((1..=traffic::MAX_RATE_KBIT).contains(&rate_kbit), "rate {rate_kbit} accepted");
            ensure!(plain(&args) && args[7] == format!("{rate_kbit}kbit"), "{args:?}");
            let burst: u64 = args[9].parse().map_err(|_| format!("burst {:?}", args[9]))?;
            ensure!(burst >= 1600 && burst >= rate_kbit * 1000 / 8 / 100, "burst {burst} at {rate_kbit} kbit/s");
        }
        Err(err) => {
            ensure!(!(1..=traffic::MAX_RATE_KBIT).contains(&rate_kbit), "rate {rate_kbit} refused: {err}");
        }
    }
    Ok(())
}

/// `tc -j qdisc show` output (the host's, but parsed): never a panic.
pub fn tc_output(json: &str) -> Outcome {
    if let Ok(shaping) = traffic::parse_root_qdisc(json) {
        ensure!(shaping.rate_kbit.is_none_or(|r| r <= u64::MAX / 125), "{shaping:?}");
    }
    Ok(())
}

// ---- http-traffic ---------------------------------------------------------------

/// A tenant's counters are filtered by the container in a process's cgroup
/// path: the ID found is a whole 64-hex-digit run of the text, the first one.
pub fn container_id(cgroup: &str) -> Outcome {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, b) in cgroup.bytes().chain([b'/']).enumerate() {
        match (b.is_ascii_hexdigit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s == 64 {
                    runs.push(&cgroup[s..i]);
                }
                start = None;
            }
            _ => {}
        }
    }
    let found = procfs::container_id_in(cgroup);
    ensure!(found.as_deref() == runs.first().copied(), "{:?} found in {}; the runs are {runs:?}", found, short(cgroup));
    Ok(())
}

/// `may_see` (the filter of a tenant's processes) agrees with the container
/// the process is in, and never panics, whatever the PID.
pub fn may_see(pid: u32, visible: &HashSet<String>) -> Outcome {
    let before = procfs::container_of(pid);
    let seen = procfs::may_see(pid, visible);
    let after = procfs::container_of(pid);
    if before == after {
        ensure!(seen == before.as_ref().is_none_or(|c| visible.contains(c)), "pid {pid} in {before:?}: may_see {seen}");
    }
    Ok(())
}

// ---- guest log ----------------------------------------------------------------------

/// What `escape_controls` hides: controls (C0, DEL, C1), line and paragraph
/// separators, and the bidi controls that reorder text on screen.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The escaping the guest log documents, written independently.
fn expected_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// `escape_controls`: at most `max` bytes, none of them unsafe, a prefix of
/// the documented escaping, cut only where the next piece would not fit.
pub fn escape(text: &str, max: usize) -> Outcome {
    let out = guest_log::escape_controls(text, max);
    let full = expected_escape(text);
    ensure!(out.len() <= max, "{} bytes for a limit of {max}", out.len());
    ensure!(!out.chars().any(is_unsafe_char), "unsafe characters left in {}", short(&out));
    ensure!(full.starts_with(&*out), "{} is not a prefix of {}", short(&out), short(&full));
    // Each piece is at most 10 bytes (`\u{10ffff}`): a cut leaves less room than that.
    ensure!(out.len() == full.len() || out.len() + 10 > max, "cut at {} of {} bytes for a limit of {max}", out.len(), full.len());
    Ok(())
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// The daemon's log (its human or JSON format, without colours) while `work` runs.
fn captured_log(json: bool, work: impl FnOnce()) -> String {
    let capture = Capture::default();
    let builder = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE);
    if json {
        tracing::subscriber::with_default(builder.json().flatten_event(true).finish(), work);
    } else {
        tracing::subscriber::with_default(builder.finish(), work);
    }
    let bytes = capture.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap_or_else(|e| format!("\u{0}not UTF-8: {e}"))
}

const LEVELS: [tracing::Level; 5] =
    [tracing::Level::TRACE, tracing::Level::DEBUG, tracing::Level::INFO, tracing::Level::WARN, tracing::Level::ERROR];

/// `host.log`: each call is one line of the daemon's log, in both formats,
/// with no unsafe character in it, tagged with the plugin.
pub fn guest_log_calls(messages: &[(u8, String)]) -> Outcome {
    let plugin = PluginId::parse("guest-7").unwrap();
    let messages = &messages[..messages.len().min(90)];
    for json in [false, true] {
        let log = GuestLog::new(plugin.clone());
        let text = captured_log(json, || {
            for (level, message) in messages {
                log.write(LEVELS[usize::from(*level) % 5], message);
            }
        });
        let lines: Vec<&str> = text.lines().collect();
        ensure!(text.is_empty() || text.ends_with('\n'), "the log does not end a line");
        ensure!(lines.len() == messages.len(), "{} log lines for {} calls (json: {json})", lines.len(), messages.len());
        for (line, (_, message)) in lines.iter().zip(messages) {
            ensure!(!line.chars().any(is_unsafe_char), "unsafe characters in the log line {}", short(line));
            if json {
                let event = strict_json(line.as_bytes())?;
                ensure!(event["target"] == "guest" && event["plugin"] == "guest-7", "{}", short(line));
                let logged = event["message"].as_str().ok_or("no message")?;
                ensure!(!logged.chars().any(is_unsafe_char), "unsafe characters in the message {}", short(logged));
                ensure!(logged.len() <= 4096, "a message of {} bytes", logged.len());
                ensure!(expected_escape(message.trim_end()).starts_with(logged), "{} logged as {}", short(message), short(logged));
            }
        }
    }
    Ok(())
}

/// WASI stdout: bytes in any chunks become lines of at most 4 KiB, split
/// only between characters, each one log line without unsafe characters.
pub fn guest_stdout(chunks: &[&[u8]]) -> Outcome {
    let plugin = PluginId::parse("guest-7").unwrap();
    let log = GuestLog::new(plugin);
    let text = captured_log(true, || {
        let mut writer = Box::into_pin(log.stream(tracing::Level::INFO).async_stream());
        let mut cx = Context::from_waker(Waker::noop());
        for chunk in chunks {
            let written = writer.as_mut().poll_write(&mut cx, chunk);
            assert!(matches!(written, Poll::Ready(Ok(n)) if n == chunk.len()), "{written:?}");
        }
        let _ = writer.as_mut().poll_shutdown(&mut cx);
    });
    let all: Vec<u8> = chunks.concat();
    let segments: Vec<&[u8]> = all.split(|b| *b == b'\n').filter(|s| !s.is_empty()).collect();
    let most = segments.iter().map(|s| 1 + s.len() / 4093).sum::<usize>();
    let lines: Vec<&str> = text.lines().collect();
    if most <= 90 {
        ensure!(
            (segments.len()..=most).contains(&lines.len()),
            "{} log lines for {} lines of output (at most {most} pieces)",
            lines.len(),
            segments.len()
        );
    }
    let clean_utf8 = std::str::from_utf8(&all).is_ok_and(|s| !s.contains('\u{fffd}'));
    for line in lines {
        let event = strict_json(line.as_bytes())?;
        let logged = event["message"].as_str().ok_or("no message")?;
        ensure!(!logged.chars().any(is_unsafe_char), "unsafe characters in {}", short(logged));
        ensure!(logged.len() <= 4096, "a stdout line of {} bytes", logged.len());
        ensure!(!clean_utf8 || !logged.contains('\u{fffd}'), "valid UTF-8 was cut inside a character: {}", short(logged));
    }
    Ok(())
}

// ---- the server's query parsing -------------------------------------------------------

/// `probe_id` from a query: never a panic; a value encoded as a form
/// parameter comes back exactly, the first one if the key is repeated.
pub fn probe_query(query: &str, id: &str, before: &str) -> Outcome {
    let _ = server::probe_id(Some(query));
    let encoded: String = id
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect();
    let query = format!("{before}probe_id={encoded}&probe_id=second");
    let parsed = server::probe_id(Some(&query));
    ensure!(parsed.as_deref() == Some(id), "{query:?} gave probe_id {parsed:?}");
    Ok(())
}

// ---- the config file ---------------------------------------------------------------

/// Plugin IDs a config's sections could apply to: their keys, and their
/// globs with the wildcards filled in.
fn ids_for(file: &ConfigFile) -> Vec<PluginId> {
    let mut candidates: Vec<String> =
        ["a", "a-b", "ab", "p", "x", "t", "te", "team", "team-a", "team-a-1", "team-b-1", "my-plugin", "b"]
            .map(str::to_owned)
            .to_vec();
    for key in file.plugins.keys() {
        for fill in ["", "a", "a-b", "x1"] {
            let mut id = String::new();
            let mut in_class = false;
            for c in key.chars() {
                match c {
                    '[' => in_class = true,
                    ']' if in_class => {
                        in_class = false;
                        id.push('a');
                    }
                    _ if in_class => {}
                    '*' => id.push_str(fill),
                    '?' => id.push('a'),
                    c => id.push(c),
                }
            }
            candidates.push(id);
        }
    }
    candidates.iter().filter_map(|id| PluginId::parse(id).ok()).collect()
}

/// Any config text: parsed or refused, never a panic; a refusal names the
/// file; and every plugin's policy of an accepted file passes `validate`.
pub fn config(text: &str) -> Outcome {
    let Ok(file) = ConfigFile::parse(text) else { return Ok(()) };
    let config = match file.run_config("fuzz.toml", &Overrides::default()) {
        Ok(config) => config,
        Err(err) => {
            ensure!(format!("{err:#}").contains("fuzz.toml"), "an error that names no file: {err:#}");
            return Ok(());
        }
    };
    for id in ids_for(&file) {
        // Sections are checked one by one at load; their combination must hold too.
        let limits = config.operator_policy().for_plugin(&id).limits;
        limits.validate().map_err(|e| {
            format!("plugin {id}: the file was accepted, but the limits it gives this plugin are not valid: {e:#}\n{text}")
        })?;
        // Whatever a tenant's sections say, its plugins stay under its ceiling.
        for tenant in &config.tenancy.tenants[1..] {
            let section = &file.tenants[&tenant.name];
            let policy = tenant.policy.for_plugin(&id);
            policy.limits.validate().map_err(|e| format!("tenant {} plugin {id}: invalid limits: {e:#}\n{text}", tenant.name))?;
            let allowed = section.ceiling.grants.clone().unwrap_or_else(|| vec!["procfs".into()]);
            for name in policy.grants.names() {
                ensure!(name == "host" || allowed.iter().any(|a| a == name), "tenant {} plugin {id}: {name} is beyond the ceiling\n{text}", tenant.name);
            }
            let fixed = section.ceiling.docker.as_ref().and_then(|d| d.label_selector.clone()).unwrap_or_default();
            if let Some(docker) = &policy.grants.docker {
                for (key, value) in &fixed {
                    ensure!(docker.label_selector.get(key) == Some(value), "tenant {} plugin {id}: docker sees beyond the ceiling's selector\n{text}", tenant.name);
                }
            }
            if let Some(ceiling) = section.ceiling.memory_mib {
                ensure!(policy.limits.max_memory_bytes <= ceiling.saturating_mul(1 << 20), "tenant {} plugin {id}: memory above the ceiling\n{text}", tenant.name);
            }
        }
    }
    Ok(())
}
