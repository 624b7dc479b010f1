//! The conformance plugin, in Rust: the reference that the same plugin in every
//! other language (`guests/conformance-<lang>`) must match byte for byte.
//!
//! - `report`: the host node shows the count (latest `conformance_count` and
//!   metric `conformance_metric`), a string set, the typed error a denied
//!   procfs read gives (`conformance_procfs`) and a denied Docker call
//!   (`conformance_docker`), the operator's setting `greeting`
//!   (`conformance_greeting`, `unset` without one), two controls, a metadata and a
//!   metric template. Only controls change the count, so every answer is
//!   exactly predictable however often the daemon refreshes the report.
//! - controls on the host node: `reset` (count to 0, logs, answers with a
//!   shortcut report), `add` with argument `n` (1 to 9 digits, else
//!   `invalid-argument`), `fail` (`failed`); any other is `unknown-control`,
//!   and any other node `unknown-node`.

use scope_plugin::*;

#[derive(Default)]
struct Conformance {
    count: u64,
}

impl Conformance {
    fn render(&self) -> Report {
        // /proc/kcore is never readable: every SDK must surface the typed error.
        let procfs = match procfs::read("kcore") {
            Ok(_) => "ok",
            Err(procfs::ProcfsError::Denied(_)) => "denied",
            Err(_) => "other-error",
        };
        // Docker is not granted to it: the typed `denied` must come through.
        let docker = match docker::containers(false) {
            Ok(_) => "ok",
            Err(docker::DockerError::Denied(_)) => "denied",
            Err(_) => "other-error",
        };
        let node = Node::new(ids::this_host())
            .latest("conformance_count", self.count.to_string())
            .latest("conformance_procfs", procfs)
            .latest("conformance_docker", docker)
            .latest("conformance_greeting", host::setting("greeting").unwrap_or_else(|| "unset".into()))
            .metric(Metric::new("conformance_metric", 0.0, 1000.0).sample(host::now(), self.count as f64))
            .set("conformance_set", vec!["alpha".into(), "beta".into()])
            .active_control("reset")
            .active_control("fail");
        let topology = Topology::new(TopologyKind::Host)
            .node(node)
            .control(Control::new("reset", "Reset the counter", "fa-undo").rank(1))
            .control(Control::new("fail", "Fail on purpose", "fa-bomb").rank(2).confirm("Really fail?"))
            .metadata_template(MetadataTemplate::new("conformance_count", "Count").data_type(MetadataDataType::Number).priority(1.0))
            .metric_template(MetricTemplate::new("conformance_metric", "Count metric").format(MetricFormat::Integer).priority(2.0));
        Report::new().with(topology)
    }
}

impl Plugin for Conformance {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Conformance (Rust)", "The same plugin in every language: a counter, a reset control, typed errors")
    }

    fn report(&mut self) -> Result<Report, String> {
        Ok(self.render())
    }

    fn control(&mut self, request: ControlRequest) -> Result<ControlResponse, ControlError> {
        if request.node_id != ids::this_host() {
            return Err(ControlError::UnknownNode(request.node_id));
        }
        match request.control.as_str() {
            "reset" => {
                self.count = 0;
                host::info("conformance: reset");
            }
            "add" => {
                let n = request.args.iter().find(|(key, _)| key == "n").map(|(_, value)| value.as_str()).unwrap_or("");
                // Digits only, so every language accepts exactly the same strings.
                let invalid = || ControlError::InvalidArgument(format!("n must be a whole number, got '{n}'"));
                if n.is_empty() || n.len() > 9 || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid());
                }
                self.count += n.parse::<u64>().map_err(|_| invalid())?;
            }
            "fail" => return Err(ControlError::Failed("failing on purpose".into())),
            _ => return Err(ControlError::UnknownControl(request.control)),
        }
        Ok(ControlResponse::with_report(self.render()))
    }
}

export_plugin!(Conformance);
