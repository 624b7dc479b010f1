//! Test guest: a healthy report, and a `spin` control that keeps its CPU busy
//! for the milliseconds in its `ms` argument before it answers, within the
//! deadline: guest work on the thread that received the control.

use scope_plugin::*;

#[derive(Default)]
struct SlowControl {
    spins: u64,
}

impl Plugin for SlowControl {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Slow control", "Test guest: a control that computes for a while")
    }

    fn report(&mut self) -> Result<Report, String> {
        let node = Node::new(ids::this_host()).latest("spins", self.spins.to_string());
        Ok(Report::new().with(Topology::new(TopologyKind::Host).node(node)))
    }

    fn control(&mut self, request: ControlRequest) -> Result<ControlResponse, ControlError> {
        let ms: u64 = request.args.iter().find(|(key, _)| key == "ms").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        let until = host::now() + ms;
        let mut n: u64 = 0;
        while host::now() < until {
            for _ in 0..10_000 {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        self.spins += 1;
        Ok(ControlResponse { shortcut_report: None })
    }
}

export_plugin!(SlowControl);
