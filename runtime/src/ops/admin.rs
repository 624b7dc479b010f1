//! The admin endpoint: every plugin's state and counters, as Prometheus text
//! (`GET /metrics`) and as JSON (`GET /status`, what `scope-wasm status` reads).
//! On a UNIX socket by default; on TCP only when the operator asks.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

use crate::ops::daemon_stats::DaemonSnapshot;
use crate::ops::health::{HealthBoard, PluginStatus, TenantStatus};

/// Open admin connections at most; past this, new ones are closed at once.
const MAX_CONNECTIONS: usize = 64;
/// A client that has not sent its request headers by then is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves connections from `listener` until the task is aborted.
pub async fn serve_unix(listener: tokio::net::UnixListener, health: Arc<HealthBoard>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => spawn_connection(stream, &slots, &health),
            Err(err) => accept_failed(err).await,
        }
    }
}

pub async fn serve_tcp(listener: tokio::net::TcpListener, health: Arc<HealthBoard>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => spawn_connection(stream, &slots, &health),
            Err(err) => accept_failed(err).await,
        }
    }
}

/// E.g. out of file descriptors: say so and pause, rather than spin.
pub(crate) async fn accept_failed(err: std::io::Error) {
    tracing::warn!(error = %err, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

fn spawn_connection(stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static, slots: &Arc<Semaphore>, health: &Arc<HealthBoard>) {
    let Ok(slot) = slots.clone().try_acquire_owned() else { return };
    let health = health.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let service = service_fn(move |req| answer(req, health.clone()));
        let _ = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
}

async fn answer(req: Request<Incoming>, health: Arc<HealthBoard>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            let text = prometheus_text(&health.snapshot(), &health.tenants(), &crate::ops::daemon_stats::snapshot());
            (StatusCode::OK, "text/plain; version=0.0.4", text)
        }
        (&Method::GET, "/tenants") => {
            (StatusCode::OK, "application/json", serde_json::to_string(&health.tenants()).unwrap_or_default())
        }
        (&Method::GET, "/status") => {
            (StatusCode::OK, "application/json", serde_json::to_string(&health.snapshot()).unwrap_or_default())
        }
        (&Method::GET, "/healthz") => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        _ => (StatusCode::NOT_FOUND, "text/plain", "try /metrics, /status, /tenants or /healthz\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

/// Label values are plugin IDs, file stems and causes: escape what the text
/// format reserves.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Every health a plugin can have, so each plugin's `scope_wasm_plugin_health`
/// series are all there, whatever its health is now.
const HEALTHS: [&str; 5] = ["ok", "slow", "failing", "over-limits", "down"];
/// Likewise for `scope_wasm_plugin_state`.
const STATES: [&str; 5] = ["serving", "queued", "compiling", "failed", "refused"];

/// The `plugin` label of each entry: the plugin ID, or for a refused file its
/// file stem (never a path). A stem another entry already labels (a file
/// refused because its ID is taken) gets `#2`, `#3`, ... so no two entries
/// share series.
fn plugin_labels(plugins: &[PluginStatus]) -> Vec<String> {
    let stem = |p: &PluginStatus| match p.state.as_str() {
        "refused" => Path::new(&p.id).file_stem().map_or_else(|| p.id.clone(), |s| s.to_string_lossy().into_owned()),
        _ => p.id.clone(),
    };
    let mut taken: std::collections::BTreeSet<String> = plugins.iter().filter(|p| p.state != "refused").map(stem).collect();
    plugins
        .iter()
        .map(|p| {
            let name = stem(p);
            if p.state != "refused" {
                return name;
            }
            let mut unique = name.clone();
            for n in 2.. {
                if taken.insert(unique.clone()) {
                    break;
                }
                unique = format!("{name}#{n}");
            }
            unique
        })
        .collect()
}

/// One metric family of the text format: its samples as (name suffix, labels, value).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: impl IntoIterator<Item = (&'static str, String, f64)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (suffix, labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name}{suffix} {value}");
        } else {
            let _ = writeln!(out, "{name}{suffix}{{{labels}}} {value}");
        }
    }
}

/// `values`, each as a `key` label, 1 for `current` and 0 for the others
/// (`current` is added if it is not among them).
fn one_hot(id: &str, key: &str, values: &[&str], current: &str) -> Vec<(&'static str, String, f64)> {
    let extra = (!values.contains(&current)).then_some(current);
    values
        .iter()
        .copied()
        .chain(extra)
        .map(|v| ("", format!("{id},{key}=\"{}\"", label(v)), if v == current { 1.0 } else { 0.0 }))
        .collect()
}

/// The Prometheus text exposition of the status table and the daemon's own counters.
pub fn prometheus_text(plugins: &[PluginStatus], tenants: &[TenantStatus], daemon: &DaemonSnapshot) -> String {
    let mut text = String::new();
    let out = &mut text;
    family(out, "scope_wasm_build_info", "gauge", "Always 1; the daemon's version as a label.", [
        ("", format!("version=\"{}\"", label(env!("CARGO_PKG_VERSION"))), 1.0),
    ]);
    let refused = plugins.iter().filter(|p| p.state == "refused").count();
    let daemon_series: [(&str, &str, &str, f64); 7] = [
        ("scope_wasm_compiles_total", "counter", "Compile children run (finished or failed).", daemon.compiles as f64),
        ("scope_wasm_compile_seconds_total", "counter", "Wall-clock time compile children ran, together.", daemon.compile_seconds),
        ("scope_wasm_compile_cache_hits_total", "counter", "Plugins whose compiled code was found in the disk cache.", daemon.cache_hits as f64),
        ("scope_wasm_files_refused_total", "counter", "Plugin files refused (bad name, ID taken), once per file and reason.", daemon.files_refused as f64),
        ("scope_wasm_refused_files", "gauge", "Plugin files refused now (bad name, ID taken).", refused as f64),
        ("scope_wasm_config_reloads_total", "counter", "Changed config files applied (SIGHUP or a file change).", daemon.config_reloads as f64),
        ("scope_wasm_config_reloads_refused_total", "counter", "Changed config files refused; the old configuration stayed.", daemon.config_reloads_refused as f64),
    ];
    for (name, kind, help, value) in daemon_series {
        family(out, name, kind, help, [("", String::new(), value)]);
    }

    let names = plugin_labels(plugins);
    let ids: Vec<String> = names.iter().map(|n| format!("plugin=\"{}\"", label(n))).collect();
    let each = || plugins.iter().zip(ids.iter());
    family(
        out,
        "scope_wasm_plugin_tenant",
        "gauge",
        "Always 1: the tenant that delivered the plugin's file, as a label (join on plugin).",
        each().map(|(p, id)| ("", format!("{id},tenant=\"{}\"", label(&p.tenant)), 1.0)),
    );
    family(
        out,
        "scope_wasm_plugin_up",
        "gauge",
        "1 while the plugin serves, else 0.",
        each().map(|(p, id)| ("", id.clone(), if p.state == "serving" { 1.0 } else { 0.0 })),
    );
    family(
        out,
        "scope_wasm_plugin_health",
        "gauge",
        "1 for the plugin's health now (ok, slow, failing, over-limits; down when not serving), 0 for the others.",
        each().flat_map(|(p, id)| one_hot(id, "health", &HEALTHS, &p.health)),
    );
    family(
        out,
        "scope_wasm_plugin_state",
        "gauge",
        "1 for the plugin's state now (serving, queued, compiling, failed, refused), 0 for the others.",
        each().flat_map(|(p, id)| one_hot(id, "state", &STATES, &p.state)),
    );
    // Plugins from registries: whether their last pull worked, and failures so far.
    let sourced = || each().filter_map(|(p, id)| p.source.as_ref().map(|source| (source, id)));
    family(
        out,
        "scope_wasm_source_pull_ok",
        "gauge",
        "For a plugin pulled from a registry: 1 if its last pull worked, else 0 (what serves stays).",
        sourced().map(|(source, id)| ("", id.clone(), if source.state == "pulled" { 1.0 } else { 0.0 })),
    );
    family(
        out,
        "scope_wasm_source_pull_failures_total",
        "counter",
        "Failed pulls of a plugin from a registry since the daemon started.",
        sourced().map(|(source, id)| ("", id.clone(), source.failures as f64)),
    );
    family(
        out,
        "scope_wasm_plugin_loading_seconds",
        "gauge",
        "How long a version of the plugin has been queued or compiling, while one is.",
        each().filter_map(|(p, id)| Some(("", id.clone(), p.loading_s? as f64))),
    );
    family(
        out,
        "scope_wasm_plugin_calls_total",
        "counter",
        "Calls into the plugin, answered or refused.",
        each().map(|(p, id)| ("", id.clone(), p.stats.calls as f64)),
    );
    family(
        out,
        "scope_wasm_plugin_errors_total",
        "counter",
        "Failed calls by cause (deadline, trap, out-of-memory, busy, invalid-output, ...).",
        each().flat_map(|(p, id)| {
            p.stats.errors.iter().map(move |(cause, n)| ("", format!("{id},cause=\"{}\"", label(cause)), *n as f64))
        }),
    );
    family(
        out,
        "scope_wasm_plugin_call_seconds",
        "histogram",
        "Time the plugin's calls took.",
        each().flat_map(|(p, id)| {
            let hist = &p.stats.call_seconds;
            let buckets = hist.buckets.iter().map(move |(le, n)| ("_bucket", format!("{id},le=\"{le}\""), *n as f64));
            buckets.chain([
                ("_bucket", format!("{id},le=\"+Inf\""), hist.count as f64),
                ("_sum", id.clone(), hist.sum_seconds),
                ("_count", id.clone(), hist.count as f64),
            ])
        }),
    );
    family(
        out,
        "scope_wasm_plugin_memory_bytes",
        "gauge",
        "Linear memory held by the plugin's live instance.",
        each().map(|(p, id)| ("", id.clone(), p.stats.memory_bytes as f64)),
    );
    family(
        out,
        "scope_wasm_plugin_cpu_seconds_total",
        "counter",
        "CPU time of the plugin's calls: its guest code and the host's work on their answers.",
        each().map(|(p, id)| ("", id.clone(), p.stats.cpu_seconds)),
    );
    family(
        out,
        "scope_wasm_plugin_reloads_total",
        "counter",
        "New versions swapped in while serving.",
        each().map(|(p, id)| ("", id.clone(), p.reloads as f64)),
    );
    family(
        out,
        "scope_wasm_plugin_loaded_timestamp_seconds",
        "gauge",
        "When the serving version was loaded.",
        each().filter_map(|(p, id)| Some(("", id.clone(), p.loaded_at? as f64))),
    );
    tenant_families(out, tenants);
    text
}

/// Each tenant's share of the host, labelled `tenant`.
fn tenant_families(out: &mut String, tenants: &[TenantStatus]) {
    let names: Vec<String> = tenants.iter().map(|t| format!("tenant=\"{}\"", label(&t.name))).collect();
    let each = || tenants.iter().zip(names.iter());
    let series: [(&str, &str, &str, fn(&TenantStatus) -> Option<f64>); 7] = [
        ("scope_wasm_tenant_plugins", "gauge", "The tenant's plugins serving.", |t| Some(t.plugins as f64)),
        ("scope_wasm_tenant_max_plugins", "gauge", "The tenant's plugin quota, if it has one.", |t| t.max_plugins.map(|n| n as f64)),
        ("scope_wasm_tenant_memory_bytes", "gauge", "Linear memory of all the tenant's plugins.", |t| Some(t.memory_bytes as f64)),
        ("scope_wasm_tenant_memory_quota_bytes", "gauge", "The tenant's memory quota, if it has one.", |t| t.memory_quota_bytes.map(|n| n as f64)),
        ("scope_wasm_tenant_cpu_seconds_total", "counter", "CPU time of all the tenant's calls.", |t| Some(t.cpu_seconds)),
        ("scope_wasm_tenant_cpu_quota_seconds_per_second", "gauge", "The tenant's CPU share, if it has one.", |t| t.cpu_ms_per_s.map(|ms| ms as f64 / 1000.0)),
        ("scope_wasm_tenant_over_quota_calls_total", "counter", "Calls answered busy because the tenant had used its CPU share.", |t| Some(t.over_quota_calls as f64)),
    ];
    for (name, kind, help, value) in series {
        family(out, name, kind, help, each().filter_map(|(t, labels)| Some(("", labels.clone(), value(t)?))));
    }
}

/// `scope-wasm status`: the status table from a running daemon's admin socket.
pub async fn fetch_status(socket: &Path) -> Result<Vec<PluginStatus>> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .with_context(|| format!("connecting to the admin socket {} (is the daemon running?)", socket.display()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = Request::get("/status").header("host", "scope-wasm").body(Empty::<Bytes>::new())?;
    let body = sender.send_request(request).await?.into_body().collect().await?.to_bytes();
    serde_json::from_slice(&body).context("reading the status answer")
}

/// The status table as text, one plugin per line; on a host with tenants,
/// grouped by tenant, each group under a line with the tenant's name.
pub fn status_table(plugins: &[PluginStatus]) -> String {
    let mut tenants: Vec<&str> = plugins.iter().map(|p| p.tenant.as_str()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    if tenants.iter().all(|t| t.is_empty() || *t == crate::config::tenants::DEFAULT_TENANT) {
        return plugin_table(plugins);
    }
    let mut out = String::new();
    for tenant in tenants {
        let own: Vec<PluginStatus> = plugins.iter().filter(|p| p.tenant == tenant).cloned().collect();
        let _ = writeln!(out, "tenant {tenant}:");
        out.push_str(&plugin_table(&own));
        out.push('\n');
    }
    out
}

fn plugin_table(plugins: &[PluginStatus]) -> String {
    let mut out = format!(
        "{:<20} {:<8} {:<11} {:>7} {:>6} {:>9} {:>8} {:>8} {:>9}  {}\n",
        "PLUGIN", "STATE", "HEALTH", "CALLS", "ERRORS", "DEADLINES", "P50 MS", "P99 MS", "MEMORY", "DETAIL"
    );
    for p in plugins {
        let memory = format!("{:.1} MiB", p.stats.memory_bytes as f64 / (1 << 20) as f64);
        let id = if p.state == "refused" { Path::new(&p.id).file_name().map_or(p.id.clone(), |n| n.to_string_lossy().into()) } else { p.id.clone() };
        let _ = writeln!(
            out,
            "{:<20} {:<8} {:<11} {:>7} {:>6} {:>9} {:>8.2} {:>8.2} {:>9}  {}",
            id,
            p.state,
            p.health,
            p.stats.calls,
            p.stats.error_count(),
            p.stats.deadline_hits(),
            p.stats.p50_ms,
            p.stats.p99_ms,
            memory,
            p.detail.chars().take(100).collect::<String>()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::stats::StatsSnapshot;

    fn status(id: &str, state: &str, health: &str) -> PluginStatus {
        PluginStatus {
            id: id.into(),
            file: format!("/p/{id}.wasm"),
            tenant: "default".into(),
            state: state.into(),
            health: health.into(),
            label: String::new(),
            detail: String::new(),
            loading_s: None,
            loaded_at: None,
            reloads: 0,
            budget_ms: 400,
            stats: StatsSnapshot::default(),
            source: None,
        }
    }

    #[test]
    fn the_status_table_groups_by_tenant_when_there_are_tenants() {
        let plain = status_table(&[status("counter", "serving", "ok")]);
        assert!(!plain.contains("tenant"), "{plain}");
        let b = PluginStatus { tenant: "team-b".into(), ..status("b-stats", "serving", "ok") };
        let grouped = status_table(&[status("counter", "serving", "ok"), b]);
        let lines: Vec<&str> = grouped.lines().collect();
        assert_eq!(lines[0], "tenant default:");
        assert!(lines[2].starts_with("counter "), "{grouped}");
        let b_at = lines.iter().position(|l| *l == "tenant team-b:").unwrap();
        assert!(lines[b_at + 2].starts_with("b-stats "), "{grouped}");
    }

    #[test]
    fn metrics_are_prometheus_text() {
        let stats = crate::ops::stats::PluginStats::default();
        for ms in [1, 3, 40, 600] {
            stats.record(Duration::from_millis(ms), Ok(()));
        }
        let counter = PluginStatus {
            label: "Counter".into(),
            loaded_at: Some(1_700_000_000),
            reloads: 2,
            stats: StatsSnapshot { errors: [("deadline".to_owned(), 3)].into(), memory_bytes: 1 << 20, ..stats.snapshot() },
            ..status("counter", "serving", "ok")
        };
        let plugins = [
            counter,
            status("looping", "serving", "failing"),
            status("/p/Bad Name.wasm", "refused", "down"),
            // Refused because its ID is taken: its stem is a plugin's ID.
            status("/p/b/counter.wasm", "refused", "down"),
            PluginStatus { loading_s: Some(7), ..status("big", "compiling", "down") },
            PluginStatus {
                source: Some(crate::ops::health::SourceStatus { state: "failed".into(), failures: 3, ..Default::default() }),
                ..status("pulled", "serving", "ok")
            },
        ];
        let daemon = DaemonSnapshot { compiles: 3, compile_seconds: 1.25, cache_hits: 1, files_refused: 2, config_reloads: 1, config_reloads_refused: 0 };
        let tenants = [TenantStatus {
            name: "team-b".into(),
            plugins: 2,
            max_plugins: Some(10),
            memory_bytes: 3 << 20,
            memory_quota_bytes: Some(64 << 20),
            cpu_seconds: 1.5,
            cpu_ms_per_s: Some(250),
            over_quota_calls: 4,
        }];
        let text = prometheus_text(&plugins, &tenants, &daemon);
        for line in [
            "# TYPE scope_wasm_plugin_calls_total counter",
            &format!("scope_wasm_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION")),
            "scope_wasm_compiles_total 3",
            "scope_wasm_config_reloads_total 1",
            "scope_wasm_source_pull_ok{plugin=\"pulled\"} 0",
            "scope_wasm_source_pull_failures_total{plugin=\"pulled\"} 3",
            "scope_wasm_plugin_tenant{plugin=\"counter\",tenant=\"default\"} 1",
            "scope_wasm_tenant_memory_quota_bytes{tenant=\"team-b\"} 67108864",
            "scope_wasm_tenant_cpu_quota_seconds_per_second{tenant=\"team-b\"} 0.25",
            "scope_wasm_tenant_over_quota_calls_total{tenant=\"team-b\"} 4",
            "scope_wasm_compile_seconds_total 1.25",
            "scope_wasm_compile_cache_hits_total 1",
            "scope_wasm_plugin_loading_seconds{plugin=\"big\"} 7",
            "scope_wasm_refused_files 2",
            "scope_wasm_files_refused_total 2",
            "scope_wasm_plugin_up{plugin=\"counter\"} 1",
            "scope_wasm_plugin_up{plugin=\"Bad Name\"} 0",
            "scope_wasm_plugin_up{plugin=\"counter#2\"} 0",
            "scope_wasm_plugin_health{plugin=\"counter\",health=\"ok\"} 1",
            "scope_wasm_plugin_health{plugin=\"counter\",health=\"failing\"} 0",
            "scope_wasm_plugin_health{plugin=\"looping\",health=\"failing\"} 1",
            "scope_wasm_plugin_health{plugin=\"Bad Name\",health=\"down\"} 1",
            "scope_wasm_plugin_state{plugin=\"Bad Name\",state=\"refused\"} 1",
            "scope_wasm_plugin_calls_total{plugin=\"counter\"} 4",
            "scope_wasm_plugin_errors_total{plugin=\"counter\",cause=\"deadline\"} 3",
            "# TYPE scope_wasm_plugin_call_seconds histogram",
            "scope_wasm_plugin_call_seconds_bucket{plugin=\"counter\",le=\"0.001\"} 1",
            "scope_wasm_plugin_call_seconds_bucket{plugin=\"counter\",le=\"0.005\"} 2",
            "scope_wasm_plugin_call_seconds_bucket{plugin=\"counter\",le=\"0.05\"} 3",
            "scope_wasm_plugin_call_seconds_bucket{plugin=\"counter\",le=\"0.5\"} 3",
            "scope_wasm_plugin_call_seconds_bucket{plugin=\"counter\",le=\"1\"} 4",
            "scope_wasm_plugin_call_seconds_bucket{plugin=\"counter\",le=\"+Inf\"} 4",
            "scope_wasm_plugin_call_seconds_sum{plugin=\"counter\"} 0.644",
            "scope_wasm_plugin_call_seconds_count{plugin=\"counter\"} 4",
            "scope_wasm_plugin_memory_bytes{plugin=\"counter\"} 1048576",
            "scope_wasm_plugin_reloads_total{plugin=\"counter\"} 2",
            "scope_wasm_plugin_loaded_timestamp_seconds{plugin=\"counter\"} 1700000000",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // Health and state are one-hot: every value present, exactly one 1.
        for (series, values) in [("scope_wasm_plugin_health{", HEALTHS.len()), ("scope_wasm_plugin_state{", STATES.len())] {
            for id in ["counter", "looping", "Bad Name", "counter#2"] {
                let rows: Vec<&str> =
                    text.lines().filter(|l| l.starts_with(&format!("{series}plugin=\"{id}\","))).collect();
                assert_eq!(rows.len(), values, "{series} {id}: {rows:?}");
                assert_eq!(rows.iter().filter(|l| l.ends_with(" 1")).count(), 1, "{series} {id}: {rows:?}");
            }
        }
        assert!(!text.contains('/'), "no paths in labels:\n{text}");
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
