//! A host-level counter that exercises the whole plugin contract: a metric with
//! a history, latest values with templates, and controls whose liveness flips.
//!
//! Every report advances the counter unless it is paused. `pause` and `resume`
//! are never alive together; `reset` always is. A control answers with a shortcut
//! report so the UI shows the new state at once.

use scope_plugin::*;

/// Samples kept for the sparkline.
const HISTORY: usize = 30;

#[derive(Default)]
struct Counter {
    count: u64,
    paused: bool,
    history: Vec<Sample>,
}

impl Counter {
    fn snapshot(&self) -> Report {
        let mut metric = Metric::new("counter", 0.0, self.history.iter().map(|s| s.value).fold(1.0, f64::max));
        metric.samples = self.history.clone();

        let node = Node::new(ids::this_host())
            .latest("counter_value", self.count.to_string())
            .latest("counter_state", if self.paused { "paused" } else { "counting" })
            .metric(metric)
            .active_control(if self.paused { "resume" } else { "pause" })
            .active_control("reset");

        let host = Topology::new(TopologyKind::Host)
            .node(node)
            .metric_template(MetricTemplate::new("counter", "Counter").format(MetricFormat::Integer).priority(0.1))
            .metadata_template(MetadataTemplate::new("counter_value", "Counter").data_type(MetadataDataType::Number).priority(0.1))
            .metadata_template(MetadataTemplate::new("counter_state", "Counter state").priority(0.2))
            .control(Control::new("pause", "Pause the counter", "fa-pause").rank(1))
            .control(Control::new("resume", "Resume the counter", "fa-play").rank(1))
            .control(Control::new("reset", "Reset the counter", "fa-undo").rank(2).confirm("Reset the counter to 0?"));
        Report::new().with(host)
    }
}

impl Plugin for Counter {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Counter", "Counts reports on each host; pause, resume or reset it")
    }

    fn report(&mut self) -> Result<Report, String> {
        if !self.paused {
            self.count += 1;
        }
        self.history.push(Sample { timestamp: host::now(), value: self.count as f64 });
        if self.history.len() > HISTORY {
            self.history.remove(0);
        }
        Ok(self.snapshot())
    }

    fn control(&mut self, request: ControlRequest) -> Result<ControlResponse, ControlError> {
        if request.node_id != ids::this_host() {
            return Err(ControlError::UnknownNode(request.node_id));
        }
        match request.control.as_str() {
            "pause" => self.paused = true,
            "resume" => self.paused = false,
            "reset" => {
                self.count = 0;
                self.history.clear();
            }
            _ => return Err(ControlError::UnknownControl(request.control)),
        }
        host::info(format!("control {} applied; counter at {}", request.control, self.count));
        Ok(ControlResponse::with_report(self.snapshot()))
    }
}

export_plugin!(Counter);
