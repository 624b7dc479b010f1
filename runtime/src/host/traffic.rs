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
use crate::config::grants::DockerGrant;
use crate::host::docker::{describe, inspect};
use crate::host::docker_engine::DockerEngine;
use crate::host::fixture::{Fixture, ShapingData};
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
    fixture: Option<Arc<Fixture>>,
}

impl TrafficCtx {
    pub fn new(plugin: PluginId, engine: Arc<DockerEngine>, granted: bool, scope: Option<DockerGrant>) -> Self {
        Self { plugin, engine, granted, scope: scope.unwrap_or_default(), denial_logged: false, fixture: None }
    }

    /// Under `scope-wasm test`: shaping kept in the fixture, or recorded into it.
    pub fn with_fixture(mut self, fixture: Option<Arc<Fixture>>) -> Self {
        self.fixture = fixture;
        self
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

/// The fastest rate `set-rate` installs: tc keeps a tbf queue's limit (400 ms
/// at the rate, plus the burst) in 32 bits of bytes, which ends near 83 Gbit/s.
pub const MAX_RATE_KBIT: u64 = 80_000_000;

/// The longest delay `set-delay-loss` installs; tc itself cannot encode much
/// more than four minutes, and a minute already stalls every connection.
pub const MAX_LATENCY_MS: u32 = 60_000;

/// A guest-supplied number outside what the call accepts: refused before
/// anything runs, with the range in the message.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidArgument {
    pub name: &'static str,
    pub value: String,
    pub range: String,
}

impl std::fmt::Display for InvalidArgument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid argument: {} {} is out of range, it must be {}", self.name, self.value, self.range)
    }
}

// The WIT variant has no `invalid-argument` case: the text says what it is.
impl From<InvalidArgument> for TrafficError {
    fn from(err: InvalidArgument) -> Self {
        TrafficError::Failed(err.to_string())
    }
}

impl traffic::Host for TrafficView<'_> {
    async fn status(&mut self, container_id: String) -> Answer {
        Ok(self.apply(&container_id, || Ok(None)).await)
    }

    async fn set_delay_loss(
        &mut self,
        container_id: String,
        latency_ms: Option<u32>,
        packet_loss_percent: Option<f64>,
    ) -> Answer {
        Ok(self.apply(&container_id, || delay_loss_args(latency_ms, packet_loss_percent).map(Some)).await)
    }

    async fn set_rate(&mut self, container_id: String, rate_kbit: u64) -> Answer {
        Ok(self.apply(&container_id, || rate_args(rate_kbit).map(Some)).await)
    }

    async fn clear(&mut self, container_id: String) -> Answer {
        Ok(self.apply(&container_id, || Ok(Some(["qdisc", "del", "dev", DEVICE, "root"].map(str::to_owned).to_vec()))).await)
    }
}

/// `tc` arguments for netem's delay and random loss.
pub fn delay_loss_args(latency_ms: Option<u32>, packet_loss_percent: Option<f64>) -> Result<Vec<String>, InvalidArgument> {
    let mut args: Vec<String> = ["qdisc", "replace", "dev", DEVICE, "root", "netem"].map(str::to_owned).to_vec();
    if let Some(ms) = latency_ms {
        if ms > MAX_LATENCY_MS {
            return Err(InvalidArgument {
                name: "latency-ms",
                value: ms.to_string(),
                range: format!("at most {MAX_LATENCY_MS} ms"),
            });
        }
        args.extend(["delay".into(), format!("{ms}ms")]);
    }
    if let Some(loss) = packet_loss_percent {
        // NaN is in no range, so it is refused too.
        if !(0.0..=100.0).contains(&loss) {
            return Err(InvalidArgument {
                name: "packet-loss-percent",
                value: loss.to_string(),
                range: "between 0 and 100".into(),
            });
        }
        // `abs`: -0.0 would be written "-0", which tc refuses.
        args.extend(["loss".into(), format!("{}%", loss.abs())]);
    }
    Ok(args)
}

/// `tc` arguments for a token bucket filter at `rate_kbit`.
pub fn rate_args(rate_kbit: u64) -> Result<Vec<String>, InvalidArgument> {
    let out_of_range = || InvalidArgument {
        name: "rate-kbit",
        value: rate_kbit.to_string(),
        range: format!("between 1 and {MAX_RATE_KBIT} kbit/s (0 would cut the container off)"),
    };
    if !(1..=MAX_RATE_KBIT).contains(&rate_kbit) {
        return Err(out_of_range());
    }
    // A burst of at least 10 ms at the rate (and one MTU), queueing at most 400 ms.
    let burst_bytes = rate_kbit.checked_mul(1000).ok_or_else(out_of_range)? / 8 / 100;
    let args = ["qdisc", "replace", "dev", DEVICE, "root", "tbf", "rate"]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("{rate_kbit}kbit"), "burst".into(), burst_bytes.max(1600).to_string()])
        .chain(["latency".into(), "400ms".into()])
        .collect();
    Ok(args)
}

impl TrafficView<'_> {
    /// Checks the grant, only then reads the guest's arguments (`change`: the
    /// `tc` arguments of a change, or none), applies them in the container's
    /// namespace and reads back what is there.
    async fn apply(
        &mut self,
        container_id: &str,
        change: impl FnOnce() -> Result<Option<Vec<String>>, InvalidArgument>,
    ) -> Result<Shaping, TrafficError> {
        self.ctx.check_granted()?;
        let change = change()?;
        if let Some(fixture) = self.ctx.fixture.clone() {
            if fixture.replaying() {
                // Only what the container's labels let this plugin shape, as on a host.
                if self.ctx.scope.is_scoped() {
                    fixture.docker_inspect(container_id, &self.ctx.scope).map_err(lookup_error)?;
                }
                return fixture.traffic_apply(container_id, change.as_deref().map(shaping_of_tc_args));
            }
            let answer = Box::pin(self.apply_on_host(container_id, change)).await;
            fixture.record_traffic(container_id, &answer);
            return answer;
        }
        self.apply_on_host(container_id, change).await
    }

    async fn apply_on_host(&mut self, container_id: &str, change: Option<Vec<String>>) -> Result<Shaping, TrafficError> {
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
        let details = inspect(&self.ctx.engine, container_id, &self.ctx.scope, self.deadline).await.map_err(lookup_error)?;
        details.pid.ok_or_else(|| TrafficError::NotFound(format!("container {container_id} is not running")))
    }
}

/// Why the container to shape could not be found, as a traffic error.
fn lookup_error(err: DockerError) -> TrafficError {
    match err {
        DockerError::NotFound(what) => TrafficError::NotFound(what),
        DockerError::Timeout => TrafficError::Timeout,
        other => TrafficError::Failed(format!("looking up the container: {}", describe(&other))),
    }
}

/// What the kernel would show after `tc` ran with `args` (made by
/// `delay_loss_args`, `rate_args` or the clear in `clear`): a fixture's shaping.
fn shaping_of_tc_args(args: &[String]) -> ShapingData {
    let after = |word: &str| args.iter().position(|a| a == word).and_then(|at| args.get(at + 1));
    let number = |word: &str, unit: &str| after(word).and_then(|v| v.strip_suffix(unit)?.parse::<f64>().ok());
    match args.get(5).map(String::as_str) {
        Some("netem") => ShapingData {
            qdisc: "netem".into(),
            latency_ms: number("delay", "ms").map(|ms| ms as u32),
            packet_loss_percent: number("loss", "%"),
            rate_kbit: None,
        },
        Some("tbf") => ShapingData { qdisc: "tbf".into(), rate_kbit: number("rate", "kbit").map(|k| k as u64), ..Default::default() },
        _ => ShapingData::default(),
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
pub fn parse_root_qdisc(json: &str) -> Result<Shaping, TrafficError> {
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
        // Bytes per second into kbit/s (8 / 1000), without overflowing.
        "tbf" => shaping.rate_kbit = options["rate"].as_u64().map(|bytes_per_s| bytes_per_s / 125),
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
        let fastest = parse_root_qdisc(r#"[{"kind":"tbf","root":true,"options":{"rate":18446744073709551615}}]"#).unwrap();
        assert_eq!(fastest.rate_kbit, Some(u64::MAX / 125), "read back without overflowing");
    }

    #[test]
    fn guest_numbers_out_of_range_are_refused_with_the_range() {
        for rate in [0, MAX_RATE_KBIT + 1, u64::MAX / 1000 + 1, u64::MAX] {
            let err = rate_args(rate).unwrap_err();
            let range = "it must be between 1 and 80000000 kbit/s (0 would cut the container off)";
            assert_eq!(err.to_string(), format!("invalid argument: rate-kbit {rate} is out of range, {range}"));
        }
        assert_eq!(rate_args(MAX_RATE_KBIT).unwrap()[7..], ["80000000kbit", "burst", "100000000", "latency", "400ms"]);
        assert_eq!(rate_args(1).unwrap()[9], "1600", "at least one MTU");
        let err = delay_loss_args(Some(u32::MAX), None).unwrap_err().to_string();
        assert!(err.contains("latency-ms 4294967295 is out of range, it must be at most 60000 ms"), "{err}");
        for loss in [f64::NAN, -1.0, 100.5, f64::INFINITY] {
            let err = delay_loss_args(None, Some(loss)).unwrap_err().to_string();
            assert!(err.contains("must be between 0 and 100"), "{err}");
        }
        assert_eq!(delay_loss_args(Some(2000), Some(-0.0)).unwrap()[6..], ["delay", "2000ms", "loss", "0%"]);
    }

    #[tokio::test]
    async fn the_grant_is_checked_before_any_argument() {
        let engine = Arc::new(DockerEngine::new(std::path::Path::new("/nonexistent/docker.sock")));
        let mut ctx = TrafficCtx::new(PluginId::parse("p").unwrap(), engine, false, None);
        let mut view = TrafficView { ctx: &mut ctx, deadline: Instant::now() + std::time::Duration::from_millis(100) };
        let answer = traffic::Host::set_rate(&mut view, "x".into(), u64::MAX).await.unwrap();
        assert!(matches!(&answer, Err(TrafficError::Denied(why)) if why.contains("traffic is not granted")), "{answer:?}");
        let answer = traffic::Host::set_delay_loss(&mut view, "x".into(), None, Some(f64::NAN)).await.unwrap();
        assert!(matches!(answer, Err(TrafficError::Denied(_))));
    }
}
