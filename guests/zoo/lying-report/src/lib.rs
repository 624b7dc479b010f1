//! Fault zoo: reports that break the probe's rules. The host must refuse each
//! with the place named, never pass it on.

use scope_plugin::*;

#[derive(Default)]
struct LyingReport {
    calls: u64,
}

impl Plugin for LyingReport {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Lying report", "Fault zoo: NaN metrics, ghost controls")
    }

    fn report(&mut self) -> Result<Report, String> {
        self.calls += 1;
        let node = Node::new(ids::this_host());
        let node = if self.calls % 2 == 1 {
            node.metric(Metric::single("load", host::now(), f64::NAN, 0.0, 1.0))
        } else {
            node.active_control("ghost")
        };
        Ok(Report::new().with(Topology::new(TopologyKind::Host).node(node)))
    }
}

export_plugin!(LyingReport);
