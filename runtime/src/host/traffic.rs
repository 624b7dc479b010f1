//! The `traffic` interface: traffic shaping of a container's `eth0`, applied
//! inside the container's network namespace. Privileged, so granted only
//! explicitly, and confined to the containers the plugin may see.
//!
//! The host runs iproute2's `tc` under `nsenter --net=/proc/<pid>/ns/net`
//! (the PID from Docker's inspect) rather than speaking netlink itself: `tc` is
//! the reference encoder of qdisc options (netem's and tbf's structures, rate
//! tables) and passes the kernel's own error text through (`Specified qdisc kind
//! is unknown`), and a short-lived child process enters the namespace without
//! ever moving one of the daemon's threads into it. A user's click can afford
//! the few milliseconds a fork costs. Every reading is taken back from the
//! kernel (`tc -j qdisc show`), never remembered.

use std::process::Stdio;
use std::sync::Arc;

use serde_json::Value;
use tokio::process::Command;
use tokio::time::Instant;
use wasmtime::component::HasData;

use crate::bindings::scope::plugin::docker::DockerError;
use crate::bindings::scope::plugin::traffic::{self, Shaping, TrafficError};
use crate::grants::DockerGrant;
use crate::host::docker::inspect;
use crate::host::docker_engine::DockerEngine;
use crate::plugin_id::PluginId;

const DEVICE: &str = "eth0";

pub struct TrafficCtx {
    plugin: PluginId,
    engine: Arc<DockerEngine>,
    granted: bool,
    /// The containers the plugin may shape: all, or those its Docker grant's
    /// label selector matches.
    scope: DockerGrant,
    denial_logged: bool,
}

impl TrafficCtx {
    pub fn new(plugin: PluginId, engine: Arc<DockerEngine>, granted: bool, scope: Option<DockerGrant>) -> Self {
        Self { plugin, engine, granted, scope: scope.unwrap_or_default(), denial_logged: false }
    }

    fn check_granted(&mut self) -> Result<(), TrafficError> {
        if self.granted {
            return Ok(());
        }
        Err(TrafficError::Denied(super::not_granted(&self.plugin, "traffic", &mut self.denial_logged)))
    }
}

pub struct TrafficView<'a> {
    pub ctx: &'a mut TrafficCtx,
    pub deadline: Instant,
}

pub struct Traffic;

impl HasData for Traffic {
    type Data<'a> = TrafficView<'a>;
}

type Answer = wasmtime::Result<Result<Shaping, TrafficError>>;

impl traffic::Host for TrafficView<'_> {
    async fn status(&mut self, container_id: String) -> Answer {
        Ok(self.run(&container_id, None).await)
    }

    async fn set_delay_loss(
        &mut self,
        container_id: String,
        latency_ms: Option<u32>,
        packet_loss_percent: Option<f64>,
    ) -> Answer {
        let mut args = vec!["qdisc".to_owned(), "replace".into(), "dev".into(), DEVICE.into(), "root".into(), "netem".into()];
        if let Some(ms) = latency_ms {
            args.extend(["delay".into(), format!("{ms}ms")]);
        }
        if let Some(loss) = packet_loss_percent {
            if !(0.0..=100.0).contains(&loss) {
                return Ok(Err(TrafficError::Failed(format!("packet loss {loss}% is not between 0 and 100"))));
            }
            args.extend(["loss".into(), format!("{loss}%")]);
        }
        Ok(self.run(&container_id, Some(args)).await)
    }

    async fn set_rate(&mut self, container_id: String, rate_kbit: u64) -> Answer {
        if rate_kbit == 0 {
            return Ok(Err(TrafficError::Failed("a rate of 0 kbit/s would cut the container off".into())));
        }
        // A burst of at least 10 ms at the rate (and one MTU), queueing at most 400 ms.
        let burst_bytes = (rate_kbit * 1000 / 8 / 100).max(1600);
        let args = ["qdisc", "replace", "dev", DEVICE, "root", "tbf", "rate"]
            .into_iter()
            .map(str::to_owned)
            .chain([format!("{rate_kbit}kbit"), "burst".into(), burst_bytes.to_string(), "latency".into(), "400ms".into()])
            .collect();
        Ok(self.run(&container_id, Some(args)).await)
    }

    async fn clear(&mut self, container_id: String) -> Answer {
        let args = ["qdisc", "del", "dev", DEVICE, "root"].map(str::to_owned).to_vec();
        Ok(self.run(&container_id, Some(args)).await)
    }
}

impl TrafficView<'_> {
    /// Applies `change` (if any) in the container's namespace, then reads back what is there.
    async fn run(&mut self, container_id: &str, change: Option<Vec<String>>) -> Result<Shaping, TrafficError> {
        self.ctx.check_granted()?;
        let pid = self.running_pid(container_id).await?;
        if let Some(args) = change {
            let clearing = args.get(1).is_some_and(|a| a == "del");
            match tc(pid, &args, self.deadline).await {
                Ok(_) => {}
                // Deleting the default root qdisc: already clear.
                Err(TrafficError::Failed(why)) if clearing && why.contains("handle of zero") => {}
                Err(err) => return Err(err),
            }
            tracing::info!(plugin = %self.ctx.plugin, container = container_id, "tc {}", args.join(" "));
        }
        let shown = tc(pid, &["-j", "qdisc", "show", "dev", DEVICE].map(str::to_owned), self.deadline).await?;
        parse_root_qdisc(&shown)
    }

    async fn running_pid(&self, container_id: &str) -> Result<u32, TrafficError> {
        let details = inspect(&self.ctx.engine, container_id, &self.ctx.scope, self.deadline).await.map_err(|err| match err {
            DockerError::NotFound(what) => TrafficError::NotFound(what),
            DockerError::Timeout => TrafficError::Timeout,
            other => TrafficError::Failed(format!("looking up the container: {other:?}")),
        })?;
        details.pid.ok_or_else(|| TrafficError::NotFound(format!("container {container_id} is not running")))
    }
}

/// Runs `tc args` in the network namespace of `pid`; its stdout, or its error.
async fn tc(pid: u32, args: &[String], deadline: Instant) -> Result<String, TrafficError> {
    let child = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .arg("tc")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout_at(deadline, child).await {
        Err(_) => return Err(TrafficError::Timeout),
        Ok(Err(err)) => return Err(TrafficError::Failed(format!("running nsenter/tc: {err}"))),
        Ok(Ok(output)) => output,
    };
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if stderr.contains("Specified qdisc kind is unknown") {
        let kind = args.get(5).map_or("this qdisc", String::as_str);
        return Err(TrafficError::Unsupported(format!(
            "the kernel has no {kind} qdisc (module sch_{kind} missing): {stderr}"
        )));
    }
    Err(TrafficError::Failed(format!("tc {}: {stderr}", args.join(" "))))
}

/// The root qdisc from `tc -j qdisc show dev eth0`.
fn parse_root_qdisc(json: &str) -> Result<Shaping, TrafficError> {
    let qdiscs: Vec<Value> =
        serde_json::from_str(json).map_err(|err| TrafficError::Failed(format!("unreadable tc output: {err}")))?;
    let root = qdiscs
        .iter()
        .find(|q| q["root"] == Value::Bool(true))
        .ok_or_else(|| TrafficError::Failed(format!("no root qdisc on {DEVICE}")))?;
    let kind = root["kind"].as_str().unwrap_or_default().to_owned();
    let options = &root["options"];
    let mut shaping = Shaping { qdisc: kind.clone(), latency_ms: None, packet_loss_percent: None, rate_kbit: None };
    match kind.as_str() {
        "tbf" => shaping.rate_kbit = options["rate"].as_u64().map(|bytes_per_s| bytes_per_s * 8 / 1000),
        "netem" => {
            // iproute2 prints the delay in seconds and the loss as a fraction.
            shaping.latency_ms = options["delay"]["delay"].as_f64().filter(|s| *s > 0.0).map(|s| (s * 1000.0).round() as u32);
            shaping.packet_loss_percent =
                options["loss-random"]["loss"].as_f64().filter(|f| *f > 0.0).map(|f| (f * 1000.0).round() / 10.0);
        }
        _ => {}
    }
    Ok(shaping)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tc_json_is_read_back_into_shaping() {
        let none = parse_root_qdisc(r#"[{"kind":"noqueue","handle":"0:","root":true,"refcnt":2,"options":{}}]"#).unwrap();
        assert_eq!((none.qdisc.as_str(), none.rate_kbit, none.latency_ms), ("noqueue", None, None));
        let tbf = parse_root_qdisc(
            r#"[{"kind":"tbf","handle":"8002:","root":true,"refcnt":3,"options":{"rate":125000,"burst":4096,"lat":400000}}]"#,
        )
        .unwrap();
        assert_eq!((tbf.qdisc.as_str(), tbf.rate_kbit), ("tbf", Some(1000)));
        let netem = parse_root_qdisc(
            r#"[{"kind":"netem","handle":"8003:","root":true,"refcnt":2,"options":{"limit":1000,
                "delay":{"delay":2.0,"jitter":0,"correlation":0},"loss-random":{"loss":0.1,"correlation":0},
                "ecn":false,"gap":0}}]"#,
        )
        .unwrap();
        assert_eq!((netem.latency_ms, netem.packet_loss_percent), (Some(2000), Some(10.0)));
        assert!(parse_root_qdisc("[]").is_err());
    }
}
