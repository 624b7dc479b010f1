//! Fault zoo: reports that cost the guest little and the host much to check and
//! render, each a way a plugin could try to exhaust or mislead the daemon.
//!
//! The test arms a mode with the control `arm` (args `mode` and `n`); every
//! report after that is built the armed way. Unarmed, it reports one small
//! valid host node.

use scope_plugin::*;

#[derive(Default)]
struct ReportBomb {
    mode: String,
    n: usize,
}

/// Short container IDs, so 150,000 nodes fit the guest's 64 MiB.
fn container(n: usize) -> String {
    ids::container(&format!("{n:x}"))
}

impl ReportBomb {
    fn build(&self) -> Result<Report, String> {
        let n = self.n;
        let host = || Node::new(ids::this_host()).latest("bomb_mode", self.mode.clone());
        let topology = match self.mode.as_str() {
            // A million samples: 16 MB in the guest, far more as JSON.
            "samples" => {
                let mut metric = Metric::new("bomb", 0.0, 1.0);
                metric.samples = (0..n as u64).map(|i| Sample { timestamp: 1_600_000_000_000 + i, value: 0.5 }).collect();
                Topology::new(TopologyKind::Host).node(host().metric(metric))
            }
            "templates" => (0..n).fold(Topology::new(TopologyKind::Host).node(host()), |t, i| {
                t.metadata_template(MetadataTemplate::new(format!("t{i}"), "T"))
            }),
            // A valid report of many small nodes.
            "nodes" => (0..n).fold(Topology::new(TopologyKind::Container), |t, i| t.node(Node::new(container(i)))),
            // Many short values: more than the host's value limit, cheap to build.
            "values" => Topology::new(TopologyKind::Container).node(Node::new(container(0)).set("s", (0..n).map(|i| format!("{i:x}")).collect())),
            "parents" => {
                let mut node = Node::new(container(0));
                node.parents.push(ParentSet { topology: TopologyKind::ContainerImage, ids: (0..n).map(|i| format!("{i:064x}")).collect() });
                Topology::new(TopologyKind::Container).node(node)
            }
            // Nodes with controls: the request's probe_id is copied into each.
            "controlled" => (0..n).fold(Topology::new(TopologyKind::Container).control(Control::new("poke", "Poke", "fa-hand-o-up")), |t, i| {
                t.node(Node::new(container(i)).active_control("poke"))
            }),
            "year-10000" => Topology::new(TopologyKind::Host).node(Node::new(ids::this_host()).latest_at("k", "v", 253_402_300_800_000)),
            "year-9999" => Topology::new(TopologyKind::Host).node(Node::new(ids::this_host()).latest_at("bomb_late", "v", 253_402_300_799_999)),
            "host-facts" => Topology::new(TopologyKind::Host).node(host().latest("os", "pwned").latest("kernel_version", "0")),
            "other-host" => Topology::new(TopologyKind::Host).node(Node::new("someone-else;<host>").latest("k", "v")),
            "error" => return Err(format!("bomb: {}", "e".repeat(n))),
            "log-panic" => {
                // The test sets this text as the host's panic trigger.
                host::info("please panic now");
                Topology::new(TopologyKind::Host).node(host())
            }
            _ => Topology::new(TopologyKind::Host).node(host()),
        };
        Ok(Report::new().with(topology))
    }
}

impl Plugin for ReportBomb {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Report bomb", "Fault zoo: reports that are cheap for the guest, costly for the host")
    }

    fn report(&mut self) -> Result<Report, String> {
        self.build()
    }

    fn control(&mut self, request: ControlRequest) -> Result<ControlResponse, ControlError> {
        let arg = |name: &str| request.args.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        match request.control.as_str() {
            "arm" => {
                self.mode = arg("mode").unwrap_or_default();
                self.n = arg("n").and_then(|n| n.parse().ok()).unwrap_or(0);
                Ok(ControlResponse { shortcut_report: None })
            }
            // The armed report as a shortcut: rendered on the control's path.
            "shortcut" => self.build().map(ControlResponse::with_report).map_err(ControlError::Failed),
            _ => Err(ControlError::UnknownControl(request.control)),
        }
    }
}

export_plugin!(ReportBomb);
