//! Streams a checked report as the probe's JSON into one buffer.
//!
//! serde's serializer writes each piece as it goes, so the only memory a render
//! takes beyond its output is a sorted list of references per map; the buffer
//! refuses to grow past the byte limit, which stops the render there. Keys come
//! out sorted, as a `BTreeMap` would write them, so output is deterministic.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::check::{ACTIVE_CONTROLS, clamped_timestamp};
use super::{API_VERSION, RenderContext, check_size, topology_key, topology_name};
use crate::bindings::*;

/// The output, shared by every piece being serialized, so a node can note
/// where its `control_probe_id` entry goes.
struct Out {
    buf: RefCell<Vec<u8>>,
    max_bytes: usize,
    slots: RefCell<Vec<usize>>,
}

/// The error a render stops with at the byte limit.
#[derive(Debug)]
struct TooBig;

impl std::fmt::Display for TooBig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("report over its byte limit")
    }
}

impl std::error::Error for TooBig {}

impl io::Write for &Out {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.write_all(bytes)?;
        Ok(bytes.len())
    }

    // The serializer writes every token with `write_all`: one check and one
    // copy each, not the default's loop around `write`.
    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut buf = self.buf.borrow_mut();
        if buf.len() + bytes.len() > self.max_bytes {
            return Err(io::Error::other(TooBig));
        }
        buf.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The JSON of `report` and the offsets of its `control_probe_id` slots.
/// `expected_bytes` (the size of the plugin's previous report) sizes the
/// buffer up front, so a render of a report like the last grows it no more.
pub fn report(
    ctx: &RenderContext,
    report: &Report,
    now: &str,
    (max_bytes, expected_bytes): (usize, usize),
    controller: bool,
) -> Result<(Vec<u8>, Vec<usize>), String> {
    let out = Out { buf: RefCell::new(Vec::with_capacity(expected_bytes.min(max_bytes))), max_bytes, slots: RefCell::new(Vec::new()) };
    let controller = controller || report.topologies.iter().any(|t| !t.controls.is_empty());
    let doc = Doc { ctx, report, controller, now, out: &out };
    let mut serializer = serde_json::Serializer::new(&out);
    if let Err(err) = doc.serialize(&mut serializer) {
        return Err(match err.io_error_kind() {
            // Only the size limit fails a write into memory.
            Some(_) => check_size(max_bytes + 1, max_bytes).err().unwrap_or_default(),
            None => format!("encoding the report: {err}"),
        });
    }
    let mut body = out.buf.into_inner();
    // A report much smaller than the one before gives the rest back (it is kept until the next).
    if body.capacity() > 2 * body.len() {
        body.shrink_to_fit();
    }
    Ok((body, out.slots.into_inner()))
}

struct Doc<'a> {
    ctx: &'a RenderContext<'a>,
    report: &'a Report,
    controller: bool,
    now: &'a str,
    out: &'a Out,
}

impl Serialize for Doc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut entries: Vec<(&str, Option<&Topology>)> =
            self.report.topologies.iter().map(|t| (topology_key(t.kind), Some(t))).collect();
        entries.push(("Plugins", None));
        entries.sort_by_key(|(key, _)| *key);
        let mut map = s.serialize_map(Some(entries.len()))?;
        for (key, topology) in entries {
            match topology {
                Some(topology) => map.serialize_entry(key, &TopologyOut { doc: self, topology })?,
                None => map.serialize_entry(key, &[Spec(self)])?,
            }
        }
        map.end()
    }
}

/// Exactly what the probe checks: `id` is the socket's ID (never the guest's
/// say-so), a non-empty label, `reporter` among the interfaces, API version 1.
struct Spec<'a>(&'a Doc<'a>);

impl Serialize for Spec<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ctx = self.0.ctx;
        let interfaces: &[&str] = if self.0.controller { &["reporter", "controller"] } else { &["reporter"] };
        let mut map = s.serialize_map(Some(5))?;
        map.serialize_entry("api_version", API_VERSION)?;
        map.serialize_entry("description", &ctx.info.description)?;
        map.serialize_entry("id", ctx.plugin.as_str())?;
        map.serialize_entry("interfaces", interfaces)?;
        map.serialize_entry("label", &ctx.info.label)?;
        map.end()
    }
}

struct TopologyOut<'a> {
    doc: &'a Doc<'a>,
    topology: &'a Topology,
}

impl Serialize for TopologyOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.topology;
        let mut map = s.serialize_map(None)?;
        if !t.controls.is_empty() {
            map.serialize_entry("controls", &sorted_map(&t.controls, |c| c.id.as_str(), ControlOut))?;
        }
        if !t.metadata_templates.is_empty() {
            map.serialize_entry("metadata_templates", &sorted_map(&t.metadata_templates, |m| m.id.as_str(), MetadataOut))?;
        }
        if !t.metric_templates.is_empty() {
            map.serialize_entry("metric_templates", &sorted_map(&t.metric_templates, |m| m.id.as_str(), MetricTemplateOut))?;
        }
        map.serialize_entry(
            "nodes",
            &sorted_map(&t.nodes, |n| n.id.as_str(), |node| NodeOut { doc: self.doc, topology: t, node }),
        )?;
        if !t.table_templates.is_empty() {
            map.serialize_entry("table_templates", &sorted_map(&t.table_templates, |m| m.id.as_str(), TableOut))?;
        }
        map.end()
    }
}

/// A JSON object of `items` keyed by `key`, in key order, each written by `out`.
fn sorted_map<'a, T, K, V>(items: &'a [T], key: K, out: impl Fn(&'a T) -> V + 'a) -> SortedMap<'a, T, V>
where
    K: Fn(&T) -> &str,
    V: Serialize,
{
    let mut sorted: Vec<(&'a str, &'a T)> = items.iter().map(|item| (key(item), item)).collect();
    sorted.sort_unstable_by_key(|(key, _)| *key);
    SortedMap { sorted, out: Box::new(out) }
}

struct SortedMap<'a, T, V> {
    sorted: Vec<(&'a str, &'a T)>,
    out: Box<dyn Fn(&'a T) -> V + 'a>,
}

impl<T, V: Serialize> Serialize for SortedMap<'_, T, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.sorted.len()))?;
        for (key, item) in &self.sorted {
            map.serialize_entry(key, &(self.out)(item))?;
        }
        map.end()
    }
}

struct NodeOut<'a> {
    doc: &'a Doc<'a>,
    topology: &'a Topology,
    node: &'a Node,
}

impl Serialize for NodeOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let node = self.node;
        let has_controls = !self.topology.controls.is_empty();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("id", &node.id)?;
        if has_controls || !node.latest.is_empty() {
            map.serialize_entry("latest", &LatestOut { node: self })?;
        }
        if !node.metrics.is_empty() {
            let now_ms = self.doc.ctx.now_ms;
            map.serialize_entry("metrics", &sorted_map(&node.metrics, |m| m.key.as_str(), move |m| MetricOut { metric: m, now_ms }))?;
        }
        if !node.parents.is_empty() {
            let mut parents: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for p in &node.parents {
                parents.entry(topology_name(p.topology)).or_default().extend(p.ids.iter().map(String::as_str));
            }
            map.serialize_entry("parents", &parents)?;
        }
        if !node.sets.is_empty() {
            let mut sets: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for set in &node.sets {
                sets.entry(set.key.as_str()).or_default().extend(set.values.iter().map(String::as_str));
            }
            map.serialize_entry("sets", &sets)?;
        }
        map.serialize_entry("topology", topology_name(self.topology.kind))?;
        map.end()
    }
}

struct LatestOut<'a> {
    node: &'a NodeOut<'a>,
}

impl Serialize for LatestOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let NodeOut { doc, topology, node } = self.node;
        let mut map = s.serialize_map(None)?;
        let has_controls = !topology.controls.is_empty();
        if has_controls {
            // The `{` is written: the request's `control_probe_id` entry goes
            // here, first, followed by `active_controls` at least.
            doc.out.slots.borrow_mut().push(doc.out.buf.borrow().len());
        }
        let mut entries: Vec<(&str, Entry)> =
            node.latest.iter().map(|e| (e.key.as_str(), Entry::Guest(e))).collect();
        if has_controls {
            // Always written, also when empty, so a control that died replaces the
            // old list in the probe's merged view instead of lingering.
            let active: BTreeSet<&str> = node.active_controls.iter().map(String::as_str).collect();
            entries.push((ACTIVE_CONTROLS, Entry::Host(active.into_iter().collect::<Vec<_>>().join(";"))));
        }
        entries.sort_unstable_by_key(|(key, _)| *key);
        for (key, entry) in entries {
            let guest_timestamp;
            let (timestamp, value) = match &entry {
                Entry::Guest(LatestEntry { timestamp: Some(ms), value, .. }) => {
                    guest_timestamp = clamped_timestamp(*ms, doc.ctx.now_ms);
                    (guest_timestamp.as_str(), value.as_str())
                }
                Entry::Guest(e) => (doc.now, e.value.as_str()),
                Entry::Host(value) => (doc.now, value.as_str()),
            };
            map.serialize_entry(key, &LatestValue { timestamp, value })?;
        }
        map.end()
    }
}

enum Entry<'a> {
    Guest(&'a LatestEntry),
    Host(String),
}

#[derive(serde::Serialize)]
struct LatestValue<'a> {
    timestamp: &'a str,
    value: &'a str,
}

struct MetricOut<'a> {
    metric: &'a Metric,
    now_ms: u64,
}

impl Serialize for MetricOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("max", &self.metric.max)?;
        map.serialize_entry("min", &self.metric.min)?;
        // An empty `samples` list makes the probe index past its end: leave it out.
        if !self.metric.samples.is_empty() {
            map.serialize_entry("samples", &Samples(self))?;
        }
        map.end()
    }
}

struct Samples<'a>(&'a MetricOut<'a>);

impl Serialize for Samples<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct SampleOut<'a> {
            date: &'a str,
            value: f64,
        }
        let mut seq = s.serialize_seq(Some(self.0.metric.samples.len()))?;
        for sample in &self.0.metric.samples {
            let date = clamped_timestamp(sample.timestamp, self.0.now_ms);
            seq.serialize_element(&SampleOut { date: date.as_str(), value: sample.value })?;
        }
        seq.end()
    }
}

struct ControlOut<'a>(&'a Control);

impl Serialize for ControlOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut map = s.serialize_map(None)?;
        if let Some(confirmation) = &c.confirmation {
            map.serialize_entry("confirmation", confirmation)?;
        }
        map.serialize_entry("human", &c.human)?;
        map.serialize_entry("icon", &c.icon)?;
        map.serialize_entry("id", &c.id)?;
        map.serialize_entry("rank", &c.rank)?;
        map.end()
    }
}

struct MetadataOut<'a>(&'a MetadataTemplate);

impl Serialize for MetadataOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut map = s.serialize_map(None)?;
        if let Some(data_type) = data_type_name(t.data_type) {
            map.serialize_entry("dataType", data_type)?;
        }
        let from = match t.from {
            MetadataSource::Latest => "latest",
            MetadataSource::Sets => "sets",
        };
        map.serialize_entry("from", from)?;
        map.serialize_entry("id", &t.id)?;
        map.serialize_entry("label", &t.label)?;
        map.serialize_entry("priority", &t.priority)?;
        if t.truncate > 0 {
            map.serialize_entry("truncate", &t.truncate)?;
        }
        map.end()
    }
}

struct MetricTemplateOut<'a>(&'a MetricTemplate);

impl Serialize for MetricTemplateOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut map = s.serialize_map(None)?;
        let format = match t.format {
            MetricFormat::Number => None,
            MetricFormat::Integer => Some("integer"),
            MetricFormat::Percent => Some("percent"),
            MetricFormat::Filesize => Some("filesize"),
        };
        if let Some(format) = format {
            map.serialize_entry("format", format)?;
        }
        if !t.group.is_empty() {
            map.serialize_entry("group", &t.group)?;
        }
        map.serialize_entry("id", &t.id)?;
        map.serialize_entry("label", &t.label)?;
        map.serialize_entry("priority", &t.priority)?;
        map.end()
    }
}

struct TableOut<'a>(&'a TableTemplate);

impl Serialize for TableOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Column<'a> {
            #[serde(rename = "dataType")]
            data_type: &'a str,
            id: &'a str,
            label: &'a str,
        }
        let t = self.0;
        let columns: Vec<Column> = t
            .columns
            .iter()
            .map(|c| Column { data_type: data_type_name(c.data_type).unwrap_or(""), id: &c.id, label: &c.label })
            .collect();
        // Later rows with the same ID win, as in a map built from the list.
        let fixed_rows: BTreeMap<&str, &str> = t.fixed_rows.iter().map(|(id, label)| (id.as_str(), label.as_str())).collect();
        let table_type = match t.type_ {
            TableType::PropertyList => "property-list",
            TableType::MulticolumnTable => "multicolumn-table",
        };
        let mut map = s.serialize_map(Some(6))?;
        map.serialize_entry("columns", &columns)?;
        map.serialize_entry("fixedRows", &fixed_rows)?;
        map.serialize_entry("id", &t.id)?;
        map.serialize_entry("label", &t.label)?;
        map.serialize_entry("prefix", &t.prefix)?;
        map.serialize_entry("type", table_type)?;
        map.end()
    }
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
