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

use crate::health::{HealthBoard, PluginStatus};

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
        (&Method::GET, "/metrics") => (StatusCode::OK, "text/plain; version=0.0.4", prometheus_text(&health.snapshot())),
        (&Method::GET, "/status") => {
            (StatusCode::OK, "application/json", serde_json::to_string(&health.snapshot()).unwrap_or_default())
        }
        (&Method::GET, "/healthz") => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        _ => (StatusCode::NOT_FOUND, "text/plain", "try /metrics, /status or /healthz\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

/// Label values are plugin IDs, causes and file paths: escape what the text
/// format reserves.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The Prometheus text exposition of the status table.
pub fn prometheus_text(plugins: &[PluginStatus]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    let id = |p: &PluginStatus| format!("plugin=\"{}\"", label(&p.id));
    family(
        "scope_wasm_plugin_up",
        "gauge",
        "1 while the plugin serves; state and health say how it is doing.",
        plugins
            .iter()
            .map(|p| {
                let labels = format!("{},state=\"{}\",health=\"{}\"", id(p), p.state, p.health);
                (labels, if p.state == "serving" { 1.0 } else { 0.0 })
            })
            .collect(),
    );
    family(
        "scope_wasm_plugin_calls_total",
        "counter",
        "Calls into the plugin, answered or refused.",
        plugins.iter().map(|p| (id(p), p.stats.calls as f64)).collect(),
    );
    family(
        "scope_wasm_plugin_errors_total",
        "counter",
        "Failed calls by cause (deadline, trap, out-of-memory, busy, invalid-output, ...).",
        plugins
            .iter()
            .flat_map(|p| p.stats.errors.iter().map(move |(cause, n)| (format!("{},cause=\"{}\"", id(p), label(cause)), *n as f64)))
            .collect(),
    );
    family(
        "scope_wasm_plugin_call_seconds",
        "gauge",
        "Call time percentiles over the most recent 1024 calls.",
        plugins
            .iter()
            .flat_map(|p| {
                [(format!("{},quantile=\"0.5\"", id(p)), p.stats.p50_ms / 1e3), (format!("{},quantile=\"0.99\"", id(p)), p.stats.p99_ms / 1e3)]
            })
            .collect(),
    );
    family(
        "scope_wasm_plugin_memory_bytes",
        "gauge",
        "Linear memory held by the plugin's live instance.",
        plugins.iter().map(|p| (id(p), p.stats.memory_bytes as f64)).collect(),
    );
    family(
        "scope_wasm_plugin_reloads_total",
        "counter",
        "New versions swapped in while serving.",
        plugins.iter().map(|p| (id(p), p.reloads as f64)).collect(),
    );
    family(
        "scope_wasm_plugin_loaded_timestamp_seconds",
        "gauge",
        "When the serving version was loaded.",
        plugins.iter().filter_map(|p| Some((id(p), p.loaded_at? as f64))).collect(),
    );
    out
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

/// The status table as text, one plugin per line.
pub fn status_table(plugins: &[PluginStatus]) -> String {
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
    use crate::stats::StatsSnapshot;

    #[test]
    fn metrics_are_prometheus_text() {
        let status = PluginStatus {
            id: "counter".into(),
            file: "/p/counter.wasm".into(),
            state: "serving".into(),
            health: "ok".into(),
            label: "Counter".into(),
            detail: String::new(),
            loading_s: None,
            loaded_at: Some(1_700_000_000),
            reloads: 2,
            budget_ms: 400,
            stats: StatsSnapshot {
                calls: 10,
                errors: [("deadline".to_owned(), 3)].into(),
                p50_ms: 1.5,
                p99_ms: 4.0,
                memory_bytes: 1 << 20,
                ..Default::default()
            },
        };
        let text = prometheus_text(&[status]);
        for line in [
            "# TYPE scope_wasm_plugin_calls_total counter",
            "scope_wasm_plugin_up{plugin=\"counter\",state=\"serving\",health=\"ok\"} 1",
            "scope_wasm_plugin_calls_total{plugin=\"counter\"} 10",
            "scope_wasm_plugin_errors_total{plugin=\"counter\",cause=\"deadline\"} 3",
            "scope_wasm_plugin_call_seconds{plugin=\"counter\",quantile=\"0.99\"} 0.004",
            "scope_wasm_plugin_memory_bytes{plugin=\"counter\"} 1048576",
            "scope_wasm_plugin_reloads_total{plugin=\"counter\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
