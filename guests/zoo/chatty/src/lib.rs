//! Fault zoo: floods the daemon's log, through `host.log` and stdout, on every
//! report. The daemon must cut it down to its rate limit.

use scope_plugin::*;

#[derive(Default)]
struct Chatty;

impl Plugin for Chatty {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Chatty", "Fault zoo: 1000 log lines per report")
    }

    fn report(&mut self) -> Result<Report, String> {
        for i in 0..500 {
            host::info(format!("chatty host log line {i}"));
            println!("chatty stdout line {i}");
        }
        Ok(Report::new().with(Topology::new(TopologyKind::Host).node(Node::new(ids::this_host()).latest("chatty", "yes"))))
    }
}

export_plugin!(Chatty);
