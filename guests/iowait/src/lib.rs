//! iowait, ported from the official Scope plugin: a host metric with either
//! the CPU's IO wait or its idle time, in percent, and a control to switch.
//!
//! Unlike the original, which ran `iostat -c` (averages since boot, so the
//! graph barely moves), the value is the share of CPU time between two reports,
//! from the delta of /proc/stat: what the host is doing now.

use scope_plugin::*;

/// The aggregate `cpu` line of /proc/stat, in clock ticks.
#[derive(Clone, Copy)]
struct CpuTimes {
    idle: u64,
    iowait: u64,
    total: u64,
}

fn read_cpu_times() -> Result<CpuTimes, String> {
    let stat = procfs::read("stat").map_err(|e| format!("reading /proc/stat: {e}"))?;
    let line = stat.lines().find(|l| l.starts_with("cpu ")).ok_or("/proc/stat has no cpu line")?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).map(|f| f.parse().unwrap_or(0)).collect();
    if ticks.len() < 5 {
        return Err(format!("unexpected /proc/stat cpu line: {line}"));
    }
    // user nice system idle iowait irq softirq steal; guest time is already in user.
    let total = ticks.iter().take(8).sum();
    Ok(CpuTimes { idle: ticks[3], iowait: ticks[4], total })
}

#[derive(Default)]
struct IoWait {
    iowait_mode: bool,
    previous: Option<CpuTimes>,
}

impl IoWait {
    fn metric_id_and_label(&self) -> (&'static str, &'static str) {
        if self.iowait_mode { ("iowait", "IO Wait") } else { ("idle", "Idle") }
    }

    /// Percent of CPU time since the previous reading (since boot the first time).
    fn percent(&mut self) -> Result<f64, String> {
        let now = read_cpu_times()?;
        let base = self.previous.filter(|prev| now.total > prev.total).unwrap_or(CpuTimes { idle: 0, iowait: 0, total: 0 });
        self.previous = Some(now);
        let part = if self.iowait_mode { now.iowait - base.iowait.min(now.iowait) } else { now.idle - base.idle.min(now.idle) };
        let total = (now.total - base.total).max(1);
        Ok((part as f64 * 100.0 / total as f64).clamp(0.0, 100.0))
    }

    fn snapshot(&mut self) -> Result<Report, String> {
        let value = self.percent()?;
        let (id, label) = self.metric_id_and_label();
        let node = Node::new(ids::this_host())
            .metric(Metric::new(id, 0.0, 100.0).sample(host::now(), value))
            .active_control(if self.iowait_mode { "switchToIdle" } else { "switchToIOWait" });
        let topology = Topology::new(TopologyKind::Host)
            .node(node)
            .metric_template(MetricTemplate::new(id, label).format(MetricFormat::Percent).priority(0.1))
            .control(Control::new("switchToIdle", "Switch to idle", "fa-gears").rank(1))
            .control(Control::new("switchToIOWait", "Switch to IO wait", "fa-clock-o").rank(1));
        Ok(Report::new().with(topology))
    }
}

impl Plugin for IoWait {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("iowait", "Adds a graph of CPU IO Wait to hosts")
    }

    fn report(&mut self) -> Result<Report, String> {
        self.snapshot()
    }

    fn control(&mut self, request: ControlRequest) -> Result<ControlResponse, ControlError> {
        if request.node_id != ids::this_host() {
            return Err(ControlError::UnknownNode(request.node_id));
        }
        // Only the control that is alive may be used, as in the original.
        match (request.control.as_str(), self.iowait_mode) {
            ("switchToIOWait", false) | ("switchToIdle", true) => {}
            _ => return Err(ControlError::UnknownControl(request.control)),
        }
        // The previous reading holds both counters: the next value is the new
        // metric's share since the last report.
        self.iowait_mode = !self.iowait_mode;
        self.snapshot().map(ControlResponse::with_report).map_err(ControlError::Failed)
    }
}

export_plugin!(IoWait);
