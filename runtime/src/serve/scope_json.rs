//! Typed reports into the Scope probe's JSON, checked on the way.
//!
//! The host alone writes what the probe reads, so this module is where every
//! rule the real probe enforces (or crashes on) lives; see
//! `shared/reference/scope-probe-facts.md`. A report that breaks a rule is
//! refused with a sentence saying which node or key is wrong.
//!
//! Rendering is the host's work for a guest, so it is bounded before it
//! starts: `check` counts the report against the plugin's `ReportLimits` and
//! checks every rule without allocating per item, then `write` streams the JSON
//! straight into one buffer that stops at the byte limit. No JSON tree is
//! built, so a render costs about the size of its output.

mod check;
mod write;

use bytes::Bytes;

use crate::bindings::*;
use crate::config::limits::ReportLimits;
use crate::plugin_id::PluginId;
use crate::run::limits::MAX_PROBE_ID_BYTES;

/// The probe's plugin API version.
pub const API_VERSION: &str = "1";

/// What the host knows when it renders a report.
pub struct RenderContext<'a> {
    pub plugin: &'a PluginId,
    pub info: &'a PluginInfo,
    /// This host's name: only its own node may appear in the host topology.
    /// `None` skips that check (offline `check`, unit tests).
    pub hostname: Option<&'a str>,
    /// "Now", for `latest` entries without a timestamp and the clock-skew clamp.
    pub now_ms: u64,
}

/// The byte limit and the item limits of one render.
#[derive(Debug, Clone, Copy)]
pub struct RenderLimits<'a> {
    pub max_bytes: usize,
    pub items: &'a ReportLimits,
}

/// A report rendered once, for any probe: the `control_probe_id` entry each
/// node with controls carries is the only part that depends on the request,
/// so the body is kept with the places where that entry goes.
#[derive(Debug, Clone)]
pub struct RenderedReport {
    body: Bytes,
    /// Byte offsets in `body` where a node's `control_probe_id` entry goes.
    slots: Vec<usize>,
    /// The timestamp those entries carry (the report's "now").
    now: String,
    max_bytes: usize,
    /// The IDs of the controls the report declares, sorted.
    controls: Vec<String>,
}

impl RenderedReport {
    /// Whether the report declares the control `id` (on some topology).
    pub fn declares_control(&self, id: &str) -> bool {
        self.controls.binary_search_by(|c| c.as_str().cmp(id)).is_ok()
    }

    /// The body for a request from `probe_id`: a copy of the rendered bytes
    /// with the probe's ID in every slot, or the bytes themselves without slots.
    pub fn body(&self, probe_id: Option<&str>) -> Result<Bytes, String> {
        if let Some(probe_id) = probe_id {
            check_probe_id(probe_id)?;
        }
        let Some(probe_id) = probe_id.filter(|_| !self.slots.is_empty()) else {
            return Ok(self.body.clone());
        };
        let entry = format!(
            "\"control_probe_id\":{{\"timestamp\":\"{}\",\"value\":{}}},",
            self.now,
            serde_json::Value::from(probe_id)
        );
        let len = self.body.len() + self.slots.len() * entry.len();
        check_size(len, self.max_bytes)?;
        let mut out = Vec::with_capacity(len);
        let mut from = 0;
        for &slot in &self.slots {
            out.extend_from_slice(&self.body[from..slot]);
            out.extend_from_slice(entry.as_bytes());
            from = slot;
        }
        out.extend_from_slice(&self.body[from..]);
        Ok(out.into())
    }

    /// Bytes held, for the log and the memory accounting.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }
}

/// Refuses a `probe_id` the host would copy into every node: only what a real
/// probe sends (it is 16 hex digits) is short enough to be harmless.
pub fn check_probe_id(probe_id: &str) -> Result<(), String> {
    if probe_id.len() > MAX_PROBE_ID_BYTES {
        return Err(format!("probe_id is {} bytes long; the limit is {MAX_PROBE_ID_BYTES}", probe_id.len()));
    }
    Ok(())
}

/// The body of `GET /report`, checked and rendered once for every probe.
pub fn encode_report(ctx: &RenderContext, report: &Report, limits: RenderLimits) -> Result<RenderedReport, String> {
    encode_report_like(ctx, report, limits, 0)
}

/// `encode_report` of a report that is likely `expected_bytes` long (the
/// plugin's previous one): its buffer is that big from the start.
pub fn encode_report_like(ctx: &RenderContext, report: &Report, limits: RenderLimits, expected_bytes: usize) -> Result<RenderedReport, String> {
    check::check(ctx, report, limits)?;
    let now = check::timestamp(ctx.now_ms)?;
    let (body, slots) = write::report(ctx, report, &now, (limits.max_bytes, expected_bytes), false)?;
    let mut controls: Vec<String> = report.topologies.iter().flat_map(|t| t.controls.iter().map(|c| c.id.clone())).collect();
    controls.sort_unstable();
    controls.dedup();
    Ok(RenderedReport { body: body.into(), slots, now, max_bytes: limits.max_bytes, controls })
}

/// The body of a successful `POST /control` for `probe_id`.
pub fn encode_control_response(
    ctx: &RenderContext,
    response: &ControlResponse,
    limits: RenderLimits,
    probe_id: Option<&str>,
) -> Result<Vec<u8>, String> {
    let Some(report) = &response.shortcut_report else { return Ok(b"{}".to_vec()) };
    let shortcut = (|| {
        check::check(ctx, report, limits)?;
        let now = check::timestamp(ctx.now_ms)?;
        // A plugin answering a control is a controller, whatever the shortcut holds.
        let (body, slots) = write::report(ctx, report, &now, (limits.max_bytes, 0), true)?;
        RenderedReport { body: body.into(), slots, now, max_bytes: limits.max_bytes, controls: Vec::new() }.body(probe_id)
    })()
    .map_err(|e| format!("shortcut report: {e}"))?;
    let mut out = Vec::with_capacity(shortcut.len() + 20);
    out.extend_from_slice(b"{\"shortcutReport\":");
    out.extend_from_slice(&shortcut);
    out.push(b'}');
    Ok(out)
}

/// The JSON of `GET /report` as a value, for `check` and tests.
pub fn report_json(ctx: &RenderContext, report: &Report, probe_id: Option<&str>) -> Result<serde_json::Value, String> {
    let limits = crate::config::limits::Limits::default();
    let rendered = encode_report(ctx, report, RenderLimits { max_bytes: limits.max_report_bytes, items: &limits.report })?;
    serde_json::from_slice(&rendered.body(probe_id)?).map_err(|e| format!("re-reading the report: {e}"))
}

fn check_size(bytes: usize, max_bytes: usize) -> Result<(), String> {
    if bytes > max_bytes {
        return Err(format!("report is over {} KiB, more than the limit of {} KiB", bytes >> 10, max_bytes >> 10));
    }
    Ok(())
}

/// What the user reads when the guest refused a control on `node`: an
/// unknown control the report declares (`declared`) is one the node does not
/// offer now.
pub fn control_refusal_message(plugin: &PluginId, err: &ControlError, node: &str, declared: impl Fn(&str) -> bool) -> String {
    match err {
        ControlError::UnknownControl(control) if declared(control) => inactive_control_message(plugin, control, node),
        _ => control_error_message(plugin, err),
    }
}

/// The text the UI shows for a control the plugin declares but the node does
/// not offer now (e.g. "switch to idle" on a node that is idle already).
pub fn inactive_control_message(plugin: &PluginId, control: &str, node: &str) -> String {
    let message = format!(
        "plugin {plugin}: control {:?} is not active on node {:?} now (the node's latest report does not offer it)",
        check::short(control),
        check::short(node)
    );
    crate::run::limits::bounded_text(&message, crate::run::limits::MAX_ERROR_TEXT_BYTES).into_owned()
}

/// The text the UI shows when a control fails.
pub fn control_error_message(plugin: &PluginId, err: &ControlError) -> String {
    let message = match err {
        ControlError::UnknownControl(c) => format!("plugin {plugin}: unknown control {:?}", check::short(c)),
        ControlError::UnknownNode(n) => format!("plugin {plugin}: unknown node {:?}", check::short(n)),
        ControlError::InvalidArgument(m) => format!("plugin {plugin}: invalid argument: {m}"),
        ControlError::Failed(m) => format!("plugin {plugin}: {m}"),
    };
    crate::run::limits::bounded_text(&message, crate::run::limits::MAX_ERROR_TEXT_BYTES).into_owned()
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
