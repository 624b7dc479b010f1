//! Fault zoo: the second report of each instance panics. A fresh instance starts
//! counting at 1 again, which shows the host rebuilt it after the trap.

use scope_plugin::*;

#[derive(Default)]
struct PanicOnSecond {
    reports: u64,
}

impl Plugin for PanicOnSecond {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Panic on second", "Fault zoo: traps on its second report")
    }

    fn report(&mut self) -> Result<Report, String> {
        self.reports += 1;
        if self.reports == 2 {
            panic!("zoo: second report, as promised");
        }
        let node = Node::new(ids::this_host()).latest("reports", self.reports.to_string());
        Ok(Report::new().with(Topology::new(TopologyKind::Host).node(node)))
    }
}

export_plugin!(PanicOnSecond);
