//! Fault zoo: a 12 MB report, beyond what the probe can take in 500 ms
//! (and over the host's default 8 MiB report limit).
//! Needs a memory limit above the default to build it (see the isolation tests).

use scope_plugin::*;

#[derive(Default)]
struct HugeReport;

impl Plugin for HugeReport {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Huge report", "Fault zoo: 12 MB of latest values")
    }

    fn report(&mut self) -> Result<Report, String> {
        // Few large values (each under the host's 64 KiB string limit), and not
        // much more than the limit: cheap to build and to copy even on a busy
        // host, so the size limit is what stops this report, not the deadline.
        let filler = "x".repeat(60_000);
        let mut topology = Topology::new(TopologyKind::Container);
        for n in 0..200 {
            topology = topology.node(Node::new(ids::container(&format!("{n:064}"))).latest("filler", filler.clone()));
        }
        Ok(Report::new().with(topology))
    }
}

export_plugin!(HugeReport);
