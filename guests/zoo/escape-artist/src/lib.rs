//! Fault zoo: a guest that does what its control arguments say, so tests can
//! drive every capability call and every escape attempt through a real guest.
//!
//! Each control answers with a shortcut report whose host node carries
//! `latest.result`: `ok:<what it got>` or `err:<the error>`.

use scope_plugin::*;

#[derive(Default)]
struct EscapeArtist;

fn arg<'a>(request: &'a ControlRequest, key: &str) -> &'a str {
    request.args.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
}

/// `Denied("why")` rather than the bindings' `DockerError::Denied("why")`.
fn variant(err: impl std::fmt::Debug) -> String {
    let text = format!("{err:?}");
    match text.split_once("::") {
        Some((_, rest)) => rest.to_owned(),
        None => text,
    }
}

fn summary_line(c: &docker::ContainerSummary) -> String {
    let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{} state={} name={} image={} mounts={} labels={}",
        c.id,
        c.state,
        c.names.first().map_or("", |n| n.as_str()),
        c.image,
        c.mounts.iter().map(|m| format!("{}:{}", m.source, m.destination)).collect::<Vec<_>>().join(","),
        labels.join(",")
    )
}

fn attempt(request: &ControlRequest) -> Result<String, String> {
    match request.control.as_str() {
        "read" => procfs::read(arg(request, "path")).map_err(variant),
        "pids" => procfs::pids().map(|p| p.iter().map(u32::to_string).collect::<Vec<_>>().join(",")).map_err(variant),
        "containers" => docker::containers(arg(request, "all") == "true")
            .map(|list| list.iter().map(summary_line).collect::<Vec<_>>().join("\n"))
            .map_err(variant),
        "inspect" => docker::inspect(arg(request, "id"))
            .map(|c| {
                format!(
                    "{} name={} running={} pid={} mounts={} started={}",
                    c.id,
                    c.name,
                    c.running,
                    c.pid.map_or("none".into(), |p| p.to_string()),
                    c.mounts.len(),
                    c.started.is_some()
                )
            })
            .map_err(variant),
        "images" => docker::images()
            .map(|list| list.iter().map(|i| format!("{} {}", i.id, i.repo_tags.join(","))).collect::<Vec<_>>().join("\n"))
            .map_err(variant),
        "docker-get" => docker::get(arg(request, "path")).map_err(variant),
        // Plain WASI: the host grants no files, no environment, no network.
        "wasi-fs" => std::fs::read_to_string(arg(request, "path")).map_err(|e| format!("{e}")),
        "wasi-dir" => std::fs::read_dir(arg(request, "path")).map(|d| format!("{} entries", d.count())).map_err(|e| format!("{e}")),
        "wasi-env" => Ok(format!("vars={} args={}", std::env::vars().count(), std::env::args().count())),
        "wasi-net" => std::net::TcpStream::connect(arg(request, "addr")).map(|_| "connected".to_owned()).map_err(|e| format!("{e}")),
        // For the benchmark: `n` calls in a row, timed inside the guest.
        "repeat" => {
            let n: u32 = arg(request, "n").parse().map_err(|_| "n must be a number".to_owned())?;
            let started = std::time::Instant::now();
            for _ in 0..n {
                match arg(request, "what") {
                    "read" => drop(procfs::read(arg(request, "path")).map_err(variant)?),
                    "containers" => drop(docker::containers(true).map_err(variant)?),
                    other => return Err(format!("cannot repeat {other}")),
                }
            }
            Ok(started.elapsed().as_nanos().to_string())
        }
        other => Err(format!("unknown attempt {other}")),
    }
}

impl Plugin for EscapeArtist {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("Escape artist", "Fault zoo: tries every capability and every way out")
    }

    fn report(&mut self) -> Result<Report, String> {
        Ok(Report::new().with(Topology::new(TopologyKind::Host).node(Node::new(ids::this_host()).latest("ready", "yes"))))
    }

    fn control(&mut self, request: ControlRequest) -> Result<ControlResponse, ControlError> {
        let result = match attempt(&request) {
            Ok(text) => format!("ok:{text}"),
            Err(err) => format!("err:{err}"),
        };
        let node = Node::new(ids::this_host()).latest("result", result);
        Ok(ControlResponse { shortcut_report: Some(Report::new().with(Topology::new(TopologyKind::Host).node(node))) })
    }
}

export_plugin!(EscapeArtist);
