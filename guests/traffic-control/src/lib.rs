//! traffic-control, ported from the official Scope plugin: controls on every
//! running container to add latency or packet loss, plus (new here) a
//! bandwidth limit, and a table of what is set.
//!
//! The table shows what the kernel has installed in the container's network
//! namespace, read back on every report, not what the plugin remembers having
//! asked for. The original also sent two metadata templates
//! (`traffic-control-latency`, `traffic-control-pktloss`) for keys it never
//! set; they showed nothing and are left out.

use scope_plugin::traffic::{Shaping, TrafficError};
use scope_plugin::*;

const TABLE_PREFIX: &str = "traffic-control-table-";

/// What a control does to the current settings.
enum Action {
    Latency(u32),
    PacketLoss(f64),
    Bandwidth(u64),
    Clear,
}

/// The controls: (ID suffix, tooltip, icon, rank, action).
const CONTROLS: [(&str, &str, &str, i32, Action); 6] = [
    ("slow", "Traffic speed: slow", "fa-hourglass-1", 20, Action::Latency(2000)),
    ("medium", "Traffic speed: medium", "fa-hourglass-2", 21, Action::Latency(1000)),
    ("fast", "Traffic speed: fast", "fa-hourglass-3", 22, Action::Latency(500)),
    ("pkt-drop-low", "Packet drop: low", "fa-cut", 23, Action::PacketLoss(10.0)),
    ("bandwidth-low", "Bandwidth: 1 Mbit/s", "fa-tachometer", 24, Action::Bandwidth(1000)),
    ("clear", "Clear traffic control settings", "fa-times-circle", 25, Action::Clear),
];

fn control_id(suffix: &str) -> String {
    format!("{TABLE_PREFIX}{suffix}")
}

fn describe_error(err: TrafficError) -> String {
    match err {
        TrafficError::Denied(why) => format!("denied: {why}"),
        TrafficError::NotFound(what) => format!("not found: {what}"),
        TrafficError::Unsupported(why) => format!("not supported on this host: {why}"),
        TrafficError::Failed(why) => why,
        TrafficError::Timeout => "no answer in time".into(),
    }
}

/// A container's node: its current settings, and live controls if it runs.
fn container_node(id: &str, shaping: Option<&Shaping>) -> Node {
    let latency = shaping.and_then(|s| s.latency_ms).map_or("-".into(), |ms| format!("{ms}ms"));
    let loss = shaping.and_then(|s| s.packet_loss_percent).map_or("-".into(), |p| format!("{p}%"));
    let bandwidth = shaping.and_then(|s| s.rate_kbit).map_or("-".into(), |kbit| format!("{kbit}kbit"));
    let mut node = Node::new(ids::container(id))
        .latest(format!("{TABLE_PREFIX}latency"), latency)
        .latest(format!("{TABLE_PREFIX}pktloss"), loss)
        .latest(format!("{TABLE_PREFIX}bandwidth"), bandwidth);
    if shaping.is_some() {
        for (suffix, ..) in &CONTROLS {
            node = node.active_control(control_id(suffix));
        }
    }
    node
}

fn topology(nodes: Vec<Node>) -> Topology {
    let mut topology = Topology::new(TopologyKind::Container)
        .table_template(TableTemplate::property_list("traffic-control-table", "Traffic Control", TABLE_PREFIX));
    for (suffix, human, icon, rank, _) in &CONTROLS {
        topology = topology.control(Control::new(control_id(suffix), *human, *icon).rank(*rank));
    }
    nodes.into_iter().fold(topology, Topology::node)
}

#[derive(Default)]
struct TrafficControl;

impl Plugin for TrafficControl {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Traffic control", "Adds traffic controls to the running Docker containers")
    }

    fn report(&mut self) -> Result<Report, String> {
        let containers = docker::containers(true).map_err(|e| format!("listing containers: {e}"))?;
        let mut nodes = Vec::new();
        for container in containers {
            match container.state.as_str() {
                // Never started: nothing to shape, nothing to show (as the original).
                "created" => {}
                "running" => match traffic::status(&container.id) {
                    Ok(shaping) => nodes.push(container_node(&container.id, Some(&shaping))),
                    Err(TrafficError::Denied(why)) => return Err(format!("traffic control denied: {why}")),
                    // Stopped since the list was taken: shown without controls.
                    Err(_) => nodes.push(container_node(&container.id, None)),
                },
                _ => nodes.push(container_node(&container.id, None)),
            }
        }
        Ok(Report::new().with(topology(nodes)))
    }

    fn control(&mut self, request: ControlRequest) -> Result<ControlResponse, ControlError> {
        let id = ids::container_id_of(&request.node_id).ok_or_else(|| ControlError::UnknownNode(request.node_id.clone()))?;
        let action = CONTROLS
            .iter()
            .find(|(suffix, ..)| control_id(suffix) == request.control)
            .map(|(.., action)| action)
            .ok_or_else(|| ControlError::UnknownControl(request.control.clone()))?;
        let current = traffic::status(id).map_err(|e| ControlError::Failed(describe_error(e)))?;
        // Latency and loss combine in one netem qdisc; a rate limit replaces them.
        let result = match action {
            Action::Latency(ms) => traffic::set_delay_loss(id, Some(*ms), current.packet_loss_percent),
            Action::PacketLoss(percent) => traffic::set_delay_loss(id, current.latency_ms, Some(*percent)),
            Action::Bandwidth(kbit) => traffic::set_rate(id, *kbit),
            Action::Clear => traffic::clear(id),
        };
        let shaping = result.map_err(|e| ControlError::Failed(describe_error(e)))?;
        host::info(format!("{} on {id}: now {:?}", request.control, shaping.qdisc));
        Ok(ControlResponse::with_report(Report::new().with(topology(vec![container_node(id, Some(&shaping))]))))
    }
}

export_plugin!(TrafficControl);
