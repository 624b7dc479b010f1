//! Typed reports into the Scope probe's JSON, checked on the way.
//!
//! The host alone writes what the probe reads, so this module is where every
//! rule the real probe enforces (or crashes on) lives; see
//! `shared/reference/scope-probe-facts.md`. A report that breaks a rule is
//! refused with a sentence saying which node or key is wrong.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Value, json};

use crate::bindings::*;
use crate::plugin_id::PluginId;

/// The probe's plugin API version.
pub const API_VERSION: &str = "1";

/// `latest` keys the host fills in; a guest may not set them itself.
const ACTIVE_CONTROLS: &str = "active_controls";
const CONTROL_PROBE_ID: &str = "control_probe_id";

/// What the host knows when it renders a report.
pub struct RenderContext<'a> {
    pub plugin: &'a PluginId,
    pub info: &'a PluginInfo,
    /// The `probe_id` of the request, stamped on nodes that carry controls.
    pub probe_id: Option<&'a str>,
    /// "Now", for `latest` entries without a timestamp.
    pub now_ms: u64,
}

/// The body of `GET /report`, refused when over `max_bytes`.
pub fn encode_report(ctx: &RenderContext, report: &Report, max_bytes: usize) -> Result<Vec<u8>, String> {
    check_size(min_json_size(report), max_bytes)?;
    encode(&report_json(ctx, report)?, max_bytes)
}

/// The body of a successful `POST /control`, refused when its shortcut report is over `max_bytes`.
pub fn encode_control_response(ctx: &RenderContext, response: &ControlResponse, max_bytes: usize) -> Result<Vec<u8>, String> {
    check_size(response.shortcut_report.as_ref().map_or(0, min_json_size), max_bytes)?;
    encode(&control_response_json(ctx, response)?, max_bytes).map_err(|e| format!("shortcut report: {e}"))
}

fn encode(json: &Value, max_bytes: usize) -> Result<Vec<u8>, String> {
    let body = serde_json::to_vec(json).map_err(|e| format!("encoding the report: {e}"))?;
    check_size(body.len(), max_bytes)?;
    Ok(body)
}

fn check_size(bytes: usize, max_bytes: usize) -> Result<(), String> {
    if bytes > max_bytes {
        return Err(format!("report is over {} KiB, more than the limit of {} KiB", bytes >> 10, max_bytes >> 10));
    }
    Ok(())
}

/// The JSON of `GET /report`.
pub fn report_json(ctx: &RenderContext, report: &Report) -> Result<Value, String> {
    let has_controls = report.topologies.iter().any(|t| !t.controls.is_empty());
    render(ctx, report, has_controls)
}

/// The JSON body of a successful `POST /control`.
pub fn control_response_json(ctx: &RenderContext, response: &ControlResponse) -> Result<Value, String> {
    match &response.shortcut_report {
        // A plugin answering a control is a controller, whatever the shortcut holds.
        Some(report) => Ok(json!({ "shortcutReport": render(ctx, report, true)? })),
        None => Ok(json!({})),
    }
}

/// The text the UI shows when a control fails.
pub fn control_error_message(plugin: &PluginId, err: &ControlError) -> String {
    match err {
        ControlError::UnknownControl(c) => format!("plugin {plugin}: unknown control {c:?}"),
        ControlError::UnknownNode(n) => format!("plugin {plugin}: unknown node {n:?}"),
        ControlError::InvalidArgument(m) => format!("plugin {plugin}: invalid argument: {m}"),
        ControlError::Failed(m) => format!("plugin {plugin}: {m}"),
    }
}

/// A lower bound of the report's JSON size: its strings alone. Cheap, so an
/// oversized report is refused before the host spends time rendering it.
fn min_json_size(report: &Report) -> usize {
    let nodes = report.topologies.iter().flat_map(|t| &t.nodes);
    nodes
        .map(|n| {
            n.id.len()
                + n.latest.iter().map(|e| e.key.len() + e.value.len()).sum::<usize>()
                + n.metrics.iter().map(|m| m.key.len() + m.samples.len() * 8).sum::<usize>()
                + n.sets.iter().flat_map(|s| &s.values).map(String::len).sum::<usize>()
                + n.parents.iter().flat_map(|p| &p.ids).map(String::len).sum::<usize>()
        })
        .sum()
}

fn render(ctx: &RenderContext, report: &Report, controller: bool) -> Result<Value, String> {
    let mut out = Map::new();
    for topology in &report.topologies {
        let key = topology_key(topology.kind);
        if out.contains_key(key) {
            return Err(format!("topology {key} appears twice"));
        }
        let rendered = render_topology(ctx, topology).map_err(|e| format!("topology {key}: {e}"))?;
        out.insert(key.to_owned(), rendered);
    }
    out.insert("Plugins".to_owned(), json!([plugin_spec(ctx, controller)]));
    Ok(Value::Object(out))
}

/// Exactly what the probe checks: `id` is the socket's ID (never the guest's
/// say-so), a non-empty label, `reporter` among the interfaces, API version 1.
fn plugin_spec(ctx: &RenderContext, controller: bool) -> Value {
    let mut interfaces = vec!["reporter"];
    if controller {
        interfaces.push("controller");
    }
    json!({
        "id": ctx.plugin.as_str(),
        "label": ctx.info.label,
        "description": ctx.info.description,
        "interfaces": interfaces,
        "api_version": API_VERSION,
    })
}

fn render_topology(ctx: &RenderContext, topology: &Topology) -> Result<Value, String> {
    let control_ids = unique_ids("control", topology.controls.iter().map(|c| c.id.as_str()))?;
    for id in &control_ids {
        if id.contains(';') || id.contains('~') {
            return Err(format!("control ID {id:?} may not contain `;` or `~` (the probe uses them as separators)"));
        }
    }
    unique_ids("metadata template", topology.metadata_templates.iter().map(|t| t.id.as_str()))?;
    unique_ids("metric template", topology.metric_templates.iter().map(|t| t.id.as_str()))?;
    unique_ids("table template", topology.table_templates.iter().map(|t| t.id.as_str()))?;
    let multicolumn_prefixes: Vec<&str> = topology
        .table_templates
        .iter()
        .filter(|t| t.type_ == TableType::MulticolumnTable)
        .map(|t| t.prefix.as_str())
        .collect();
    if multicolumn_prefixes.contains(&"") {
        return Err("a multicolumn table template needs a non-empty prefix".into());
    }

    let mut nodes = Map::new();
    for node in &topology.nodes {
        if node.id.is_empty() {
            return Err("a node has an empty ID".into());
        }
        if nodes.contains_key(&node.id) {
            return Err(format!("node {:?} appears twice", node.id));
        }
        let rendered = render_node(ctx, topology, node, &control_ids, &multicolumn_prefixes)
            .map_err(|e| format!("node {:?}: {e}", node.id))?;
        nodes.insert(node.id.clone(), rendered);
    }

    let mut out = Map::new();
    out.insert("nodes".into(), Value::Object(nodes));
    if !topology.controls.is_empty() {
        let controls = topology.controls.iter().map(|c| (c.id.clone(), render_control(c))).collect();
        out.insert("controls".into(), Value::Object(controls));
    }
    if !topology.metadata_templates.is_empty() {
        let templates = topology.metadata_templates.iter().map(|t| (t.id.clone(), render_metadata_template(t)));
        out.insert("metadata_templates".into(), Value::Object(templates.collect()));
    }
    if !topology.metric_templates.is_empty() {
        let templates = topology.metric_templates.iter().map(|t| (t.id.clone(), render_metric_template(t)));
        out.insert("metric_templates".into(), Value::Object(templates.collect()));
    }
    if !topology.table_templates.is_empty() {
        let templates = topology.table_templates.iter().map(|t| (t.id.clone(), render_table_template(t)));
        out.insert("table_templates".into(), Value::Object(templates.collect()));
    }
    Ok(Value::Object(out))
}

fn render_node(
    ctx: &RenderContext,
    topology: &Topology,
    node: &Node,
    control_ids: &BTreeSet<&str>,
    multicolumn_prefixes: &[&str],
) -> Result<Value, String> {
    let now = timestamp(ctx.now_ms)?;
    let mut latest = Map::new();
    for entry in &node.latest {
        let key = entry.key.as_str();
        if key.is_empty() {
            return Err("a latest entry has an empty key".into());
        }
        if key == ACTIVE_CONTROLS || key == CONTROL_PROBE_ID {
            return Err(format!("latest key {key:?} is reserved for the host"));
        }
        // The Scope app splits these keys on `___` and crashes on a key without it.
        if let Some(prefix) = multicolumn_prefixes.iter().find(|p| key.starts_with(**p))
            && !key[prefix.len()..].contains("___")
        {
            return Err(format!(
                "latest key {key:?} starts with multicolumn table prefix {prefix:?} \
                 but is not `<prefix><row>___<column>`"
            ));
        }
        let at = match entry.timestamp {
            Some(ms) => timestamp(ms).map_err(|e| format!("latest {key:?}: {e}"))?,
            None => now.clone(),
        };
        if latest.insert(key.to_owned(), json!({ "timestamp": at, "value": entry.value })).is_some() {
            return Err(format!("latest key {key:?} appears twice"));
        }
    }

    if !topology.controls.is_empty() {
        for control in &node.active_controls {
            if !control_ids.contains(control.as_str()) {
                return Err(format!("active control {control:?} is not among the topology's controls"));
            }
        }
        let active: BTreeSet<&str> = node.active_controls.iter().map(String::as_str).collect();
        // Always written, also when empty, so a control that died replaces the
        // old list in the probe's merged view instead of lingering.
        let active = active.into_iter().collect::<Vec<_>>().join(";");
        latest.insert(ACTIVE_CONTROLS.into(), json!({ "timestamp": now, "value": active }));
        if let Some(probe_id) = ctx.probe_id {
            latest.insert(CONTROL_PROBE_ID.into(), json!({ "timestamp": now, "value": probe_id }));
        }
    } else if let Some(control) = node.active_controls.first() {
        return Err(format!("active control {control:?} but the topology has no controls"));
    }

    let mut metrics = Map::new();
    for metric in &node.metrics {
        let key = metric.key.as_str();
        let rendered = render_metric(metric).map_err(|e| format!("metric {key:?}: {e}"))?;
        if key.is_empty() {
            return Err("a metric has an empty key".into());
        }
        if metrics.insert(key.to_owned(), rendered).is_some() {
            return Err(format!("metric {key:?} appears twice"));
        }
    }

    let mut out = Map::new();
    out.insert("id".into(), json!(node.id));
    out.insert("topology".into(), json!(topology_name(topology.kind)));
    if !latest.is_empty() {
        out.insert("latest".into(), Value::Object(latest));
    }
    if !metrics.is_empty() {
        out.insert("metrics".into(), Value::Object(metrics));
    }
    if !node.sets.is_empty() {
        out.insert("sets".into(), string_sets(node.sets.iter().map(|s| (s.key.clone(), &s.values)))?);
    }
    if !node.parents.is_empty() {
        let parents = node.parents.iter().map(|p| (topology_name(p.topology).to_owned(), &p.ids));
        out.insert("parents".into(), string_sets(parents)?);
    }
    Ok(Value::Object(out))
}

fn render_metric(metric: &Metric) -> Result<Value, String> {
    if !metric.min.is_finite() || !metric.max.is_finite() {
        return Err("min and max must be finite numbers".into());
    }
    if metric.min > metric.max {
        return Err(format!("min {} is above max {}", metric.min, metric.max));
    }
    let mut out = Map::new();
    // An empty `samples` list makes the probe index past its end: leave it out.
    if !metric.samples.is_empty() {
        let mut samples = Vec::with_capacity(metric.samples.len());
        for sample in &metric.samples {
            if !sample.value.is_finite() {
                return Err(format!("sample value {} is not a finite number", sample.value));
            }
            samples.push(json!({ "date": timestamp(sample.timestamp)?, "value": sample.value }));
        }
        out.insert("samples".into(), Value::Array(samples));
    }
    out.insert("min".into(), json!(metric.min));
    out.insert("max".into(), json!(metric.max));
    Ok(Value::Object(out))
}

/// Sets as the probe stores them: sorted, without duplicates.
fn string_sets<'a>(sets: impl Iterator<Item = (String, &'a Vec<String>)>) -> Result<Value, String> {
    let mut merged: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for (key, values) in sets {
        if key.is_empty() {
            return Err("a set has an empty key".into());
        }
        merged.entry(key).or_default().extend(values.iter().map(String::as_str));
    }
    Ok(json!(merged))
}

fn render_control(control: &Control) -> Value {
    let mut out = json!({
        "id": control.id,
        "human": control.human,
        "icon": control.icon,
        "rank": control.rank,
    });
    if let Some(confirmation) = &control.confirmation {
        out["confirmation"] = json!(confirmation);
    }
    out
}

fn render_metadata_template(t: &MetadataTemplate) -> Value {
    let mut out = json!({
        "id": t.id,
        "label": t.label,
        "priority": t.priority,
        "from": match t.from {
            MetadataSource::Latest => "latest",
            MetadataSource::Sets => "sets",
        },
    });
    if t.truncate > 0 {
        out["truncate"] = json!(t.truncate);
    }
    if let Some(data_type) = data_type_name(t.data_type) {
        out["dataType"] = json!(data_type);
    }
    out
}

fn render_metric_template(t: &MetricTemplate) -> Value {
    let mut out = json!({ "id": t.id, "label": t.label, "priority": t.priority });
    let format = match t.format {
        MetricFormat::Number => None,
        MetricFormat::Integer => Some("integer"),
        MetricFormat::Percent => Some("percent"),
        MetricFormat::Filesize => Some("filesize"),
    };
    if let Some(format) = format {
        out["format"] = json!(format);
    }
    if !t.group.is_empty() {
        out["group"] = json!(t.group);
    }
    out
}

fn render_table_template(t: &TableTemplate) -> Value {
    let columns: Vec<Value> = t
        .columns
        .iter()
        .map(|c| json!({ "id": c.id, "label": c.label, "dataType": data_type_name(c.data_type).unwrap_or("") }))
        .collect();
    let fixed_rows: Map<String, Value> = t.fixed_rows.iter().map(|(id, label)| (id.clone(), json!(label))).collect();
    json!({
        "id": t.id,
        "label": t.label,
        "prefix": t.prefix,
        "type": match t.type_ {
            TableType::PropertyList => "property-list",
            TableType::MulticolumnTable => "multicolumn-table",
        },
        "columns": columns,
        "fixedRows": fixed_rows,
    })
}

fn data_type_name(data_type: MetadataDataType) -> Option<&'static str> {
    match data_type {
        MetadataDataType::Text => None,
        MetadataDataType::Number => Some("number"),
        MetadataDataType::Datetime => Some("datetime"),
        MetadataDataType::Duration => Some("duration"),
        MetadataDataType::Ip => Some("ip"),
    }
}

fn unique_ids<'a>(what: &str, ids: impl Iterator<Item = &'a str>) -> Result<BTreeSet<&'a str>, String> {
    let mut seen = BTreeSet::new();
    for id in ids {
        if id.is_empty() {
            return Err(format!("a {what} has an empty ID"));
        }
        if !seen.insert(id) {
            return Err(format!("{what} {id:?} appears twice"));
        }
    }
    Ok(seen)
}

/// RFC 3339 with a zone, as the probe parses it (`2016-11-17T08:53:04.567Z`).
fn timestamp(ms: u64) -> Result<String, String> {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .ok_or_else(|| format!("timestamp {ms} ms is out of range"))
}

/// The report's top-level key for a topology (the probe's Go field name).
pub fn topology_key(kind: TopologyKind) -> &'static str {
    use TopologyKind::*;
    match kind {
        Endpoint => "Endpoint",
        Process => "Process",
        Container => "Container",
        ContainerImage => "ContainerImage",
        Host => "Host",
        Pod => "Pod",
        Service => "Service",
        Deployment => "Deployment",
        ReplicaSet => "ReplicaSet",
        DaemonSet => "DaemonSet",
        StatefulSet => "StatefulSet",
        CronJob => "CronJob",
        Namespace => "Namespace",
        Job => "Job",
        Overlay => "Overlay",
        EcsTask => "ECSTask",
        EcsService => "ECSService",
        SwarmService => "SwarmService",
        PersistentVolume => "PersistentVolume",
        PersistentVolumeClaim => "PersistentVolumeClaim",
        StorageClass => "StorageClass",
        VolumeSnapshot => "VolumeSnapshot",
        VolumeSnapshotData => "VolumeSnapshotData",
    }
}

/// The topology's name inside nodes (`topology`) and `parents` (`report/report.go`).
pub fn topology_name(kind: TopologyKind) -> &'static str {
    use TopologyKind::*;
    match kind {
        Endpoint => "endpoint",
        Process => "process",
        Container => "container",
        ContainerImage => "container_image",
        Host => "host",
        Pod => "pod",
        Service => "service",
        Deployment => "deployment",
        ReplicaSet => "replica_set",
        DaemonSet => "daemon_set",
        StatefulSet => "stateful_set",
        CronJob => "cron_job",
        Namespace => "namespace",
        Job => "job",
        Overlay => "overlay",
        EcsTask => "ecs_task",
        EcsService => "ecs_service",
        SwarmService => "swarm_service",
        PersistentVolume => "persistent_volume",
        PersistentVolumeClaim => "persistent_volume_claim",
        StorageClass => "storage_class",
        VolumeSnapshot => "volume_snapshot",
        VolumeSnapshotData => "volume_snapshot_data",
    }
}

#[cfg(test)]
mod tests;
