//! The daemon's own Scope plugin (ID `scope-wasm`): a table on the host node
//! with every WebAssembly plugin's state and health, so the Scope UI shows at a
//! glance which plugin is healthy, slow, failing or over its limits.
//!
//! It is written in Rust inside the daemon, not as a guest, so it keeps
//! answering whatever the guests do; its report goes through the same
//! `scope_json` encoder as every guest's.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;

use crate::bindings::{
    LatestEntry, MetadataDataType, Node, PluginInfo, Report, TableColumn, TableTemplate, TableType, Topology,
    TopologyKind,
};
use crate::ops::health::{HealthBoard, PluginStatus};
use crate::plugin_id::PluginId;
use crate::serve::scope_json::{self, RenderContext, RenderLimits};

/// The ID of the daemon's own plugin; no plugin file may take it.
pub const SELF_ID: &str = "scope-wasm";
const TABLE_PREFIX: &str = "scope-wasm-plugin-";
/// The Scope UI draws only these columns (never the row key), sorts the rows
/// by the first one, descending, and shows the first five: so the first names
/// the plugin, and an unhealthy plugin's name starts with `UNHEALTHY`, which
/// sorts above every plugin ID (IDs are ASCII).
const COLUMNS: [(&str, &str); 8] = [
    ("plugin", "Plugin"),
    ("state", "State"),
    ("health", "Health"),
    ("calls", "Calls"),
    ("errors", "Errors"),
    ("deadlines", "Deadlines"),
    ("p99", "p99 ms"),
    ("memory", "Memory MiB"),
];
/// Marks an unhealthy plugin's name (a warning sign, as the UI's own "!" for a
/// failing plugin).
const UNHEALTHY: &str = "\u{26a0} ";
const MAX_REPORT_BYTES: usize = 4 << 20;
/// Open connections at most (the probe keeps one or two).
const MAX_CONNECTIONS: usize = 64;

fn info() -> PluginInfo {
    PluginInfo {
        label: "WebAssembly plugins".into(),
        description: "Health of the plugins scope-wasm runs on this host".into(),
    }
}

/// The report: one multicolumn table row per plugin on the host node.
/// On a host with tenants, each name starts with its tenant (`team-b: stats`),
/// so the rows sort, and read, by tenant.
pub fn report(hostname: &str, plugins: &[PluginStatus]) -> Report {
    let mut latest = Vec::new();
    let by_tenant = plugins.iter().any(|p| !p.tenant.is_empty() && p.tenant != crate::config::tenants::DEFAULT_TENANT);
    for plugin in plugins {
        let row = plugin.id.replace(['/', ' '], "_");
        let shown = if by_tenant { format!("{}: {}", plugin.tenant, plugin.id) } else { plugin.id.clone() };
        let name = if plugin.health == "ok" { shown } else { format!("{UNHEALTHY}{shown}") };
        let cells = [
            name,
            plugin.state.clone(),
            plugin.health.clone(),
            plugin.stats.calls.to_string(),
            plugin.stats.error_count().to_string(),
            plugin.stats.deadline_hits().to_string(),
            format!("{:.2}", plugin.stats.p99_ms),
            format!("{:.1}", plugin.stats.memory_bytes as f64 / (1 << 20) as f64),
        ];
        for ((column, _), value) in COLUMNS.iter().zip(cells) {
            latest.push(LatestEntry { key: format!("{TABLE_PREFIX}{row}___{column}"), value, timestamp: None });
        }
    }
    let table = TableTemplate {
        id: "scope-wasm-plugins".into(),
        label: "WebAssembly plugins".into(),
        prefix: TABLE_PREFIX.into(),
        type_: TableType::MulticolumnTable,
        columns: COLUMNS
            .iter()
            .map(|(id, label)| TableColumn { id: (*id).into(), label: (*label).into(), data_type: MetadataDataType::Text })
            .collect(),
        fixed_rows: Vec::new(),
    };
    let node = Node {
        id: format!("{hostname};<host>"),
        latest,
        metrics: Vec::new(),
        sets: Vec::new(),
        parents: Vec::new(),
        active_controls: Vec::new(),
    };
    Report {
        topologies: vec![Topology {
            kind: TopologyKind::Host,
            nodes: vec![node],
            controls: Vec::new(),
            metadata_templates: Vec::new(),
            metric_templates: Vec::new(),
            table_templates: vec![table],
        }],
    }
}

/// Serves `GET /report` on the plugin's socket until the task is aborted.
pub async fn serve(listener: tokio::net::UnixListener, hostname: Arc<str>, health: Arc<HealthBoard>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                crate::ops::admin::accept_failed(err).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        let (hostname, health) = (hostname.clone(), health.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |req| answer(req, hostname.clone(), health.clone()));
            let _ = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(req: Request<Incoming>, hostname: Arc<str>, health: Arc<HealthBoard>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/report") => {
            let id = PluginId::parse(SELF_ID).expect("a valid ID");
            let info = info();
            let probe_id = query_probe_id(req.uri().query());
            let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
            let ctx = RenderContext { plugin: &id, info: &info, hostname: Some(&hostname), now_ms };
            let items = crate::config::limits::ReportLimits::default();
            let limits = RenderLimits { max_bytes: MAX_REPORT_BYTES, items: &items };
            let body = scope_json::encode_report(&ctx, &report(&hostname, &health.snapshot()), limits)
                .and_then(|rendered| rendered.body(probe_id.as_deref()));
            match body {
                Ok(body) => (StatusCode::OK, body),
                Err(detail) => (StatusCode::INTERNAL_SERVER_ERROR, json!({ "error": format!("plugin {SELF_ID}: {detail}") }).to_string().into()),
            }
        }
        (_, "/report") => (StatusCode::METHOD_NOT_ALLOWED, json!({ "error": "use GET" }).to_string().into()),
        _ => (StatusCode::NOT_FOUND, json!({ "error": format!("plugin {SELF_ID}: no such path") }).to_string().into()),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

fn query_probe_id(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == "probe_id").map(|(_, v)| v.into_owned())
}
