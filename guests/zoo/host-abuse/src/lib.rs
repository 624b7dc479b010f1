//! Fault zoo: a guest that hands the host what once broke it (issue #14):
//! `traffic.set-rate` with `u64::MAX` (a host panic), raw Docker GETs that
//! returned a container's or an image's environment, and log text with line
//! breaks and terminal escapes that forged the daemon's log lines.
//!
//! Each control answers with a shortcut report whose host node carries
//! `latest.result`: `ok:<what it got>` or `err:<the error>`; the report shows
//! the last result too.

use std::io::Write;

use scope_plugin::*;

#[derive(Default)]
struct HostAbuse {
    last: String,
}

fn arg<'a>(request: &'a ControlRequest, key: &str) -> &'a str {
    request.args.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
}

fn traffic_error(err: traffic::TrafficError) -> String {
    use traffic::TrafficError::*;
    match err {
        Denied(why) => format!("denied: {why}"),
        NotFound(what) => format!("not-found: {what}"),
        Unsupported(why) => format!("unsupported: {why}"),
        Failed(why) => format!("failed: {why}"),
        Timeout => "timeout".into(),
    }
}

fn docker_error(err: docker::DockerError) -> String {
    use docker::DockerError::*;
    match err {
        Unavailable(why) => format!("unavailable: {why}"),
        Timeout => "timeout".into(),
        NotFound(what) => format!("not-found: {what}"),
        Denied(why) => format!("denied: {why}"),
        Failed(why) => format!("failed: {why}"),
    }
}

fn shaping(s: traffic::Shaping) -> String {
    format!("qdisc={} rate_kbit={}", s.qdisc, s.rate_kbit.map_or("none".into(), |r| r.to_string()))
}

/// Log text that tries to pass for a daemon line about `victim`, through every
/// way a guest can write to the log. Returns how many writes it made.
fn forge_log(victim: &str, marker: &str) -> usize {
    let fake =
        format!("2026-05-09T10:00:00.000000Z ERROR scope_wasm::run::worker: plugin {victim}: trapped: {marker} plugin={victim}");
    host::info(format!("{marker} host-log\n{fake}"));
    host::warn(format!("{marker} terminal\x1b[2K\r\x1b[1A{fake}\u{9b}0m\u{2028}{fake}\u{85}{fake}"));
    host::error(format!("{marker} tab\tand\u{202e}bidi\0nul"));
    host::info(format!("{marker} utf8 héllo wörld ✓ 日本語 🙂"));
    println!("{marker} stdout\r{fake}");
    eprintln!("{marker} stderr\x1b]0;pwned\x07{fake}");
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    6
}

fn attempt(request: &ControlRequest) -> Result<String, String> {
    let id = arg(request, "id");
    match request.control.as_str() {
        "set-rate-max" => traffic::set_rate(id, u64::MAX).map(shaping).map_err(traffic_error),
        "set-rate" => {
            let rate = arg(request, "rate").parse().map_err(|_| "rate must be a number".to_owned())?;
            traffic::set_rate(id, rate).map(shaping).map_err(traffic_error)
        }
        "set-delay-max" => traffic::set_delay_loss(id, Some(u32::MAX), None).map(shaping).map_err(traffic_error),
        "set-loss" => {
            let loss = arg(request, "loss").parse().map_err(|_| "loss must be a number".to_owned())?;
            traffic::set_delay_loss(id, None, Some(loss)).map(shaping).map_err(traffic_error)
        }
        "clear" => traffic::clear(id).map(shaping).map_err(traffic_error),
        // The inspect of a container named `json`, which once kept its environment.
        "inspect-json-json" => docker::get("/containers/json/json").map_err(docker_error),
        "docker-get" => docker::get(arg(request, "path")).map_err(docker_error),
        "image-env" => docker::get(&format!("/images/{}/json", arg(request, "image"))).map_err(docker_error),
        "forge-log" => Ok(format!("{} writes", forge_log(arg(request, "victim"), arg(request, "marker")))),
        other => Err(format!("unknown control {other}")),
    }
}

impl Plugin for HostAbuse {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Host abuse", "Fault zoo: numbers, paths and log text that once broke the host")
    }

    fn report(&mut self) -> Result<Report, String> {
        let node = Node::new(ids::this_host()).latest("ready", "yes").latest("last", self.last.clone());
        Ok(Report::new().with(Topology::new(TopologyKind::Host).node(node)))
    }

    fn control(&mut self, request: ControlRequest) -> Result<ControlResponse, ControlError> {
        self.last = match attempt(&request) {
            Ok(text) => format!("ok:{text}"),
            Err(err) => format!("err:{err}"),
        };
        let node = Node::new(ids::this_host()).latest("result", self.last.clone());
        Ok(ControlResponse { shortcut_report: Some(Report::new().with(Topology::new(TopologyKind::Host).node(node))) })
    }
}

export_plugin!(HostAbuse);
