//! Short constructors for the report records, so a plugin reads as what it reports.

use crate::*;

impl PluginInfo {
    pub fn new(label: impl Into<String>, description: impl Into<String>) -> Self {
        Self { label: label.into(), description: description.into() }
    }
}

impl Report {
    pub fn new() -> Self {
        Self { topologies: Vec::new() }
    }

    /// Adds a topology.
    pub fn with(mut self, topology: Topology) -> Self {
        self.topologies.push(topology);
        self
    }
}

impl Default for Report {
    fn default() -> Self {
        Self::new()
    }
}

impl Topology {
    pub fn new(kind: TopologyKind) -> Self {
        Self {
            kind,
            nodes: Vec::new(),
            controls: Vec::new(),
            metadata_templates: Vec::new(),
            metric_templates: Vec::new(),
            table_templates: Vec::new(),
        }
    }

    pub fn node(mut self, node: Node) -> Self {
        self.nodes.push(node);
        self
    }

    pub fn control(mut self, control: Control) -> Self {
        self.controls.push(control);
        self
    }

    pub fn metadata_template(mut self, template: MetadataTemplate) -> Self {
        self.metadata_templates.push(template);
        self
    }

    pub fn metric_template(mut self, template: MetricTemplate) -> Self {
        self.metric_templates.push(template);
        self
    }

    pub fn table_template(mut self, template: TableTemplate) -> Self {
        self.table_templates.push(template);
        self
    }
}

impl Node {
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            latest: Vec::new(),
            metrics: Vec::new(),
            sets: Vec::new(),
            parents: Vec::new(),
            active_controls: Vec::new(),
        }
    }

    /// A value observed now.
    pub fn latest(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.latest.push(LatestEntry { key: key.into(), value: value.into(), timestamp: None });
        self
    }

    /// A value observed at `timestamp`.
    pub fn latest_at(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
        timestamp: TimestampMs,
    ) -> Self {
        self.latest.push(LatestEntry {
            key: key.into(),
            value: value.into(),
            timestamp: Some(timestamp),
        });
        self
    }

    pub fn metric(mut self, metric: Metric) -> Self {
        self.metrics.push(metric);
        self
    }

    pub fn set(mut self, key: impl Into<String>, values: Vec<String>) -> Self {
        self.sets.push(StringSet { key: key.into(), values });
        self
    }

    pub fn parent(mut self, topology: TopologyKind, id: impl Into<String>) -> Self {
        let id = id.into();
        match self.parents.iter_mut().find(|p| p.topology == topology) {
            Some(set) => set.ids.push(id),
            None => self.parents.push(ParentSet { topology, ids: vec![id] }),
        }
        self
    }

    /// Marks a control of this node's topology as alive on this node.
    pub fn active_control(mut self, control_id: impl Into<String>) -> Self {
        self.active_controls.push(control_id.into());
        self
    }
}

impl Metric {
    /// An empty series drawn between `min` and `max`.
    pub fn new(key: impl Into<String>, min: f64, max: f64) -> Self {
        Self { key: key.into(), samples: Vec::new(), min, max }
    }

    /// A series with one sample.
    pub fn single(key: impl Into<String>, timestamp: TimestampMs, value: f64, min: f64, max: f64) -> Self {
        Self::new(key, min, max).sample(timestamp, value)
    }

    pub fn sample(mut self, timestamp: TimestampMs, value: f64) -> Self {
        self.samples.push(Sample { timestamp, value });
        self
    }
}

impl Control {
    pub fn new(id: impl Into<String>, human: impl Into<String>, icon: impl Into<String>) -> Self {
        Self { id: id.into(), human: human.into(), icon: icon.into(), confirmation: None, rank: 0 }
    }

    pub fn rank(mut self, rank: i32) -> Self {
        self.rank = rank;
        self
    }

    /// Asks the user to confirm with `text` before the control fires.
    pub fn confirm(mut self, text: impl Into<String>) -> Self {
        self.confirmation = Some(text.into());
        self
    }
}

impl MetadataTemplate {
    /// A text row taken from the `latest` entry `id`.
    pub fn new(id: impl Into<String>, label: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            label: label.into(),
            truncate: 0,
            data_type: MetadataDataType::Text,
            priority: 0.0,
            from: MetadataSource::Latest,
        }
    }

    pub fn priority(mut self, priority: f64) -> Self {
        self.priority = priority;
        self
    }

    pub fn data_type(mut self, data_type: MetadataDataType) -> Self {
        self.data_type = data_type;
        self
    }

    pub fn from(mut self, from: MetadataSource) -> Self {
        self.from = from;
        self
    }

    pub fn truncate(mut self, chars: u32) -> Self {
        self.truncate = chars;
        self
    }
}

impl MetricTemplate {
    pub fn new(id: impl Into<String>, label: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            label: label.into(),
            format: MetricFormat::Number,
            group: String::new(),
            priority: 0.0,
        }
    }

    pub fn format(mut self, format: MetricFormat) -> Self {
        self.format = format;
        self
    }

    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    pub fn priority(mut self, priority: f64) -> Self {
        self.priority = priority;
        self
    }
}

impl TableTemplate {
    /// Key/value rows from the `latest` entries that start with `prefix`.
    pub fn property_list(id: impl Into<String>, label: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            label: label.into(),
            prefix: prefix.into(),
            type_: TableType::PropertyList,
            columns: Vec::new(),
            fixed_rows: Vec::new(),
        }
    }

    /// Rows and columns from the `latest` entries `<prefix><row>___<column>`.
    pub fn multicolumn(id: impl Into<String>, label: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self { type_: TableType::MulticolumnTable, ..Self::property_list(id, label, prefix) }
    }

    pub fn column(mut self, id: impl Into<String>, label: impl Into<String>) -> Self {
        self.columns.push(TableColumn { id: id.into(), label: label.into(), data_type: MetadataDataType::Text });
        self
    }

    pub fn fixed_row(mut self, id: impl Into<String>, label: impl Into<String>) -> Self {
        self.fixed_rows.push((id.into(), label.into()));
        self
    }
}

impl ControlResponse {
    /// Done; nothing to update at once.
    pub fn done() -> Self {
        Self { shortcut_report: None }
    }

    /// Done; the probe merges `report` at once (e.g. to flip which control is alive).
    pub fn with_report(report: Report) -> Self {
        Self { shortcut_report: Some(report) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_group_by_topology() {
        let node = Node::new("c;<container>")
            .parent(TopologyKind::Host, "h;<host>")
            .parent(TopologyKind::ContainerImage, "img;<container_image>")
            .parent(TopologyKind::Host, "h2;<host>");
        assert_eq!(node.parents.len(), 2);
        assert_eq!(node.parents[0].ids, vec!["h;<host>", "h2;<host>"]);
    }

    #[test]
    fn multicolumn_keeps_prefix() {
        let t = TableTemplate::multicolumn("t", "T", "p-").column("c", "C");
        assert_eq!(t.type_, TableType::MulticolumnTable);
        assert_eq!(t.prefix, "p-");
        assert_eq!(t.columns.len(), 1);
    }
}
