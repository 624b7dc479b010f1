//! Everything about a report that can be refused, checked before rendering:
//! first its sizes against the plugin's limits (a pass that only counts), then
//! the probe's rules. What passes here renders without error, except for the
//! byte limit, which the writer enforces as it goes.

use std::collections::HashSet;


use super::{RenderContext, RenderLimits, check_size, topology_key};
use crate::bindings::*;
use crate::run::limits::MAX_CLOCK_SKEW_MS;

/// `latest` keys the host fills in; a guest may not set them itself.
pub const ACTIVE_CONTROLS: &str = "active_controls";
pub const CONTROL_PROBE_ID: &str = "control_probe_id";

/// What the probe's own host reporter writes on the host node
/// (`report/host` in the probe): a plugin may not overwrite it.
const PROBE_HOST_KEYS: &[&str] =
    &["host_name", "os", "kernel_version", "uptime", "local_networks", "scope_version", "ts", "load1"];
const PROBE_HOST_METRICS: &[&str] = &["load1", "host_cpu_usage_percent", "host_mem_usage_bytes"];

/// The last millisecond of year 9999: Go's `time.Time` refuses RFC 3339 past it.
const MAX_TIMESTAMP_MS: u64 = 253_402_300_799_999;

pub fn check(ctx: &RenderContext, report: &Report, limits: RenderLimits) -> Result<(), String> {
    check_sizes(report, limits)?;
    let mut kinds = HashSet::new();
    for topology in &report.topologies {
        let key = topology_key(topology.kind);
        if !kinds.insert(key) {
            return Err(format!("topology {key} appears twice"));
        }
        check_topology(ctx, topology).map_err(|e| format!("topology {key}: {e}"))?;
    }
    Ok(())
}

/// Counts only: cheap next to rendering, so a report that is too big is
/// refused before the host spends memory or time on it.
fn check_sizes(report: &Report, limits: RenderLimits) -> Result<(), String> {
    let max = limits.items;
    let (mut nodes, mut samples, mut values, mut templates, mut text) = (0usize, 0usize, 0usize, 0usize, 0usize);
    let mut longest = 0usize;
    let mut sample_bytes = 0usize;
    let mut see = |s: &str| {
        text += s.len();
        longest = longest.max(s.len());
    };
    for t in &report.topologies {
        templates += t.controls.len() + t.metadata_templates.len() + t.metric_templates.len() + t.table_templates.len();
        for c in &t.controls {
            [&c.id, &c.human, &c.icon].into_iter().chain(&c.confirmation).for_each(|s| see(s));
        }
        t.metadata_templates.iter().for_each(|m| [&m.id, &m.label].into_iter().for_each(|s| see(s)));
        t.metric_templates.iter().for_each(|m| [&m.id, &m.label, &m.group].into_iter().for_each(|s| see(s)));
        for table in &t.table_templates {
            templates += table.columns.len() + table.fixed_rows.len();
            [&table.id, &table.label, &table.prefix].into_iter().for_each(|s| see(s));
            table.columns.iter().for_each(|c| [&c.id, &c.label].into_iter().for_each(|s| see(s)));
            table.fixed_rows.iter().for_each(|(a, b)| [a, b].into_iter().for_each(|s| see(s)));
        }
        nodes += t.nodes.len();
        for n in &t.nodes {
            see(&n.id);
            values += n.latest.len() + n.metrics.len() + n.active_controls.len();
            n.latest.iter().for_each(|e| [&e.key, &e.value].into_iter().for_each(|s| see(s)));
            for m in &n.metrics {
                see(&m.key);
                samples += m.samples.len();
                sample_bytes += m.samples.len() * 8;
            }
            for s in &n.sets {
                see(&s.key);
                values += s.values.len();
                s.values.iter().for_each(|v| see(v));
            }
            for p in &n.parents {
                values += p.ids.len();
                p.ids.iter().for_each(|v| see(v));
            }
            n.active_controls.iter().for_each(|c| see(c));
        }
    }
    let over = |what: &str, n: usize, limit: usize, option: &str| {
        Err(format!("{n} {what}, more than the limit of {limit} (the plugin's `{option}` option)"))
    };
    if nodes > max.max_nodes {
        return over("nodes", nodes, max.max_nodes, "max_nodes");
    }
    if samples > max.max_samples {
        return over("metric samples", samples, max.max_samples, "max_samples");
    }
    if values > max.max_values {
        return over("values (latest entries, metrics, set values, parents)", values, max.max_values, "max_values");
    }
    if templates > max.max_templates {
        return over("controls and templates", templates, max.max_templates, "max_templates");
    }
    if longest > max.max_text_bytes {
        return Err(format!(
            "a string is {} KiB long, more than the limit of {} KiB (the plugin's `max_text_kib` option)",
            longest >> 10,
            max.max_text_bytes >> 10
        ));
    }
    // The strings alone are a lower bound of the JSON's size.
    check_size(text + sample_bytes, limits.max_bytes)
}

fn check_topology(ctx: &RenderContext, topology: &Topology) -> Result<(), String> {
    let control_ids = unique_ids("control", topology.controls.iter().map(|c| c.id.as_str()))?;
    for id in &control_ids {
        if id.contains(';') || id.contains('~') {
            return Err(format!("control ID {:?} may not contain `;` or `~` (the probe uses them as separators)", short(id)));
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
    let mut node_ids = HashSet::with_capacity(topology.nodes.len());
    for node in &topology.nodes {
        if node.id.is_empty() {
            return Err("a node has an empty ID".into());
        }
        if !node_ids.insert(node.id.as_str()) {
            return Err(format!("node {:?} appears twice", short(&node.id)));
        }
        check_node(ctx, topology, node, &control_ids, &multicolumn_prefixes)
            .map_err(|e| format!("node {:?}: {e}", short(&node.id)))?;
    }
    Ok(())
}

fn check_node(
    ctx: &RenderContext,
    topology: &Topology,
    node: &Node,
    control_ids: &HashSet<&str>,
    multicolumn_prefixes: &[&str],
) -> Result<(), String> {
    check_owner(ctx, topology.kind, node)?;
    let mut keys = HashSet::with_capacity(node.latest.len());
    for entry in &node.latest {
        let key = entry.key.as_str();
        if key.is_empty() {
            return Err("a latest entry has an empty key".into());
        }
        if key == ACTIVE_CONTROLS || key == CONTROL_PROBE_ID {
            return Err(format!("latest key {key:?} is reserved for the host"));
        }
        if topology.kind == TopologyKind::Host && PROBE_HOST_KEYS.contains(&key) {
            return Err(format!("latest key {key:?} on a host node is the probe's own; a plugin may not set it"));
        }
        // The Scope app splits these keys on `___` and crashes on a key without it.
        if let Some(prefix) = multicolumn_prefixes.iter().find(|p| key.starts_with(**p))
            && !key[prefix.len()..].contains("___")
        {
            return Err(format!(
                "latest key {:?} starts with multicolumn table prefix {prefix:?} \
                 but is not `<prefix><row>___<column>`",
                short(key)
            ));
        }
        if let Some(ms) = entry.timestamp {
            check_timestamp(ms).map_err(|e| format!("latest {:?}: {e}", short(key)))?;
        }
        if !keys.insert(key) {
            return Err(format!("latest key {:?} appears twice", short(key)));
        }
    }
    if !topology.controls.is_empty() {
        for control in &node.active_controls {
            if !control_ids.contains(control.as_str()) {
                return Err(format!("active control {:?} is not among the topology's controls", short(control)));
            }
        }
    } else if let Some(control) = node.active_controls.first() {
        return Err(format!("active control {:?} but the topology has no controls", short(control)));
    }
    let mut metric_keys = HashSet::with_capacity(node.metrics.len());
    for metric in &node.metrics {
        let key = metric.key.as_str();
        if key.is_empty() {
            return Err("a metric has an empty key".into());
        }
        if topology.kind == TopologyKind::Host && PROBE_HOST_METRICS.contains(&key) {
            return Err(format!("metric {key:?} on a host node is the probe's own; a plugin may not set it"));
        }
        check_metric(metric).map_err(|e| format!("metric {:?}: {e}", short(key)))?;
        if !metric_keys.insert(key) {
            return Err(format!("metric {:?} appears twice", short(key)));
        }
    }
    if node.sets.iter().any(|s| s.key.is_empty()) {
        return Err("a set has an empty key".into());
    }
    Ok(())
}

/// Nodes whose ID names a host may only name this one: a plugin speaks for the
/// host it runs on. Container, image and Kubernetes IDs are global and free.
fn check_owner(ctx: &RenderContext, kind: TopologyKind, node: &Node) -> Result<(), String> {
    let Some(hostname) = ctx.hostname else { return Ok(()) };
    // Compared in place: this runs for every node of every refresh.
    let after_host = node.id.strip_prefix(hostname).and_then(|rest| rest.strip_prefix(';'));
    let owned = match kind {
        TopologyKind::Host => after_host == Some("<host>"),
        TopologyKind::Process => after_host.is_some(),
        _ => return Ok(()),
    };
    if !owned {
        return Err(format!(
            "names another host; a plugin reports only this host ({hostname:?}), \
             e.g. `{hostname};<host>` or `{hostname};<pid>`"
        ));
    }
    Ok(())
}

fn check_metric(metric: &Metric) -> Result<(), String> {
    if !metric.min.is_finite() || !metric.max.is_finite() {
        return Err("min and max must be finite numbers".into());
    }
    if metric.min > metric.max {
        return Err(format!("min {} is above max {}", metric.min, metric.max));
    }
    for sample in &metric.samples {
        if !sample.value.is_finite() {
            return Err(format!("sample value {} is not a finite number", sample.value));
        }
        check_timestamp(sample.timestamp)?;
    }
    Ok(())
}

fn check_timestamp(ms: u64) -> Result<(), String> {
    if ms > MAX_TIMESTAMP_MS {
        return Err(format!("timestamp {ms} ms is out of range: it is after the year 9999, which the probe cannot read"));
    }
    Ok(())
}

/// RFC 3339 with a zone, as the probe parses it (`2016-11-17T08:53:04.567Z`).
pub fn timestamp(ms: u64) -> Result<String, String> {
    check_timestamp(ms)?;
    Ok(Timestamp::of(ms).as_str().to_owned())
}

/// A timestamp as the probe reads it, written on the stack: a report renders
/// one per sample and per latest value, so none of them allocates.
#[derive(Clone, Copy)]
pub struct Timestamp([u8; 24]);

impl Timestamp {
    /// `ms` after the epoch as chrono's `to_rfc3339_opts(SecondsFormat::Millis,
    /// true)` writes it, for years up to 9999 (`check_timestamp`), without a
    /// calendar library. The date is Howard Hinnant's `civil_from_days`.
    fn of(ms: u64) -> Self {
        let (days, in_day) = (ms / 86_400_000, ms % 86_400_000);
        let z = days + 719_468;
        let (era, day_of_era) = (z / 146_097, z % 146_097);
        let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_from_march = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
        let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
        let year = year_of_era + era * 400 + u64::from(month <= 2);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        // Each field's digits, last first, ending before the byte at `end`.
        let mut put = |mut value: u64, end: usize, digits: usize| {
            for at in (end - digits..end).rev() {
                out[at] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(year, 4, 4);
        put(month, 7, 2);
        put(day, 10, 2);
        put(in_day / 3_600_000, 13, 2);
        put(in_day / 60_000 % 60, 16, 2);
        put(in_day / 1000 % 60, 19, 2);
        put(in_day % 1000, 23, 3);
        Timestamp(out)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// A guest's timestamp as rendered: no later than the host's clock allows
/// (and so never past the year 9999, which `check` refused already).
pub fn clamped_timestamp(ms: u64, now_ms: u64) -> Timestamp {
    Timestamp::of(ms.min(now_ms.saturating_add(MAX_CLOCK_SKEW_MS)).min(MAX_TIMESTAMP_MS))
}

fn unique_ids<'a>(what: &str, ids: impl Iterator<Item = &'a str>) -> Result<HashSet<&'a str>, String> {
    let mut seen = HashSet::new();
    for id in ids {
        if id.is_empty() {
            return Err(format!("a {what} has an empty ID"));
        }
        if !seen.insert(id) {
            return Err(format!("{what} {:?} appears twice", short(id)));
        }
    }
    Ok(seen)
}

/// A guest's string as an error names it: long ones cut, so an error text
/// stays short whatever the guest sent.
pub fn short(text: &str) -> std::borrow::Cow<'_, str> {
    crate::run::limits::bounded_text(text, 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        let mut ms: u64 = 0;
        let mut checked = 0;
        while ms <= MAX_TIMESTAMP_MS {
            for at in [ms, ms + 1, ms + 999] {
                let chrono = DateTime::from_timestamp_millis(at as i64).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                assert_eq!(timestamp(at).unwrap(), chrono);
                checked += 1;
            }
            // Steps that are not round land on every field's values over the range.
            ms += 79_198_765_432;
        }
        assert_eq!(timestamp(MAX_TIMESTAMP_MS).unwrap(), DateTime::from_timestamp_millis(MAX_TIMESTAMP_MS as i64).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        assert!(checked > 1000);
    }
}
