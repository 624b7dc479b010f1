//! Fault zoo: one good report, then an error on every later one. Its old report
//! must not be served forever.

use scope_plugin::*;

#[derive(Default)]
struct FailAfterFirst {
    reported: bool,
}

impl Plugin for FailAfterFirst {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Fail after first", "Fault zoo: goes bad after one report")
    }

    fn report(&mut self) -> Result<Report, String> {
        if std::mem::replace(&mut self.reported, true) {
            return Err("zoo: data source gone".into());
        }
        Ok(Report::new().with(Topology::new(TopologyKind::Host).node(Node::new(ids::this_host()).latest("ok", "yes"))))
    }
}

export_plugin!(FailAfterFirst);
