//! Test guest: answers every report with the same one, a value without a
//! timestamp, so the host's own render time would show in each new body.

use scope_plugin::*;

#[derive(Default)]
struct SameReport;

impl Plugin for SameReport {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Same report", "Test guest: the same report on every call")
    }

    fn report(&mut self) -> Result<Report, String> {
        let node = Node::new(ids::this_host()).latest("same", "yes");
        Ok(Report::new().with(Topology::new(TopologyKind::Host).node(node)))
    }
}

export_plugin!(SameReport);
