//! Fault zoo: every report takes 300 ms of CPU. Within the budget, but as a
//! plain plugin it would stall the probe's whole polling round.

use scope_plugin::*;

#[derive(Default)]
struct SlowReport {
    reports: u64,
}

impl Plugin for SlowReport {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Slow report", "Fault zoo: 300 ms per report")
    }

    fn report(&mut self) -> Result<Report, String> {
        let until = host::now() + 300;
        while host::now() < until {
            std::hint::black_box(0);
        }
        self.reports += 1;
        let node = Node::new(ids::this_host()).latest("slow_reports", self.reports.to_string());
        Ok(Report::new().with(Topology::new(TopologyKind::Host).node(node)))
    }
}

export_plugin!(SlowReport);
