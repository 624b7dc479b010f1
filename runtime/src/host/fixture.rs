//! A test fixture: what the host capabilities answer when a plugin runs under
//! `scope-wasm test` instead of on a real host. The plugin calls the same WIT
//! interfaces and the host checks its grants and paths the same way; only the
//! last step, where the real host would read /proc, ask the Docker Engine,
//! run `tc` or read the eBPF counters, answers from here.
//!
//! A fixture is also recorded (`scope-wasm test --record`): the plugin runs
//! against the real host, and every answer it got is kept here, so the same
//! situation can be replayed offline.
//!
//! A section left out means that part of the host is missing: no `docker`
//! is a host without a Docker Engine, no `http_traffic` one where eBPF
//! cannot count.

use std::collections::BTreeMap;
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::bindings::scope::plugin::docker::{ContainerDetails, ContainerSummary, DockerError, Image, Mount, Network};
use crate::bindings::scope::plugin::http_traffic::{HttpTrafficError, MethodCount, ProcessCounters, StatusCount};
use crate::bindings::scope::plugin::procfs::ProcfsError;
use crate::bindings::scope::plugin::traffic::{Shaping, TrafficError};
use crate::config::grants::DockerGrant;

/// Where a fixture's clock starts unless it says: 2024-01-01T00:00:00Z.
pub const DEFAULT_TIME_MS: u64 = 1_704_067_200_000;
/// The host name of a fixture that names none.
pub const DEFAULT_HOSTNAME: &str = "test-host";

/// The fixture file's contents.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FixtureData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The host's clock (`host.now` and WASI's clocks) at the start, in ms since 1970.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<u64>,
    /// The operator's settings for the plugin (`host.setting`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procfs: Option<ProcfsData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_traffic: Option<HttpTrafficData>,
}

/// /proc: its files by path relative to /proc (`stat`, `1234/status`). The
/// processes are the PIDs these paths name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProcfsData {
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DockerData {
    #[serde(default)]
    pub containers: Vec<ContainerData>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageData>,
    /// Answers of raw `docker.get` paths (`/version`), as the engine's JSON text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerData {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub command: String,
    /// `running` unless said otherwise.
    pub state: String,
    pub status: String,
    /// The main process's PID; none when not running.
    pub pid: Option<u32>,
    pub exit_code: i32,
    pub labels: BTreeMap<String, String>,
    pub mounts: Vec<MountData>,
    pub networks: Vec<NetworkData>,
    pub hostname: String,
    pub created_ms: u64,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    pub restart_count: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MountData {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub source: String,
    pub destination: String,
    pub mode: String,
    pub read_write: bool,
}

impl Default for MountData {
    fn default() -> Self {
        Self {
            kind: "volume".into(),
            name: String::new(),
            source: String::new(),
            destination: String::new(),
            mode: String::new(),
            read_write: true,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkData {
    pub name: String,
    pub ip_address: String,
    pub gateway: String,
    pub mac_address: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ImageData {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub size: u64,
    pub created_ms: u64,
    pub labels: BTreeMap<String, String>,
}

/// Traffic shaping: what each container's `eth0` has now (`noqueue` when
/// not listed), and whether the kernel has netem.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrafficData {
    pub netem: bool,
    pub containers: BTreeMap<String, ShapingData>,
}

impl Default for TrafficData {
    fn default() -> Self {
        Self { netem: true, containers: BTreeMap::new() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ShapingData {
    pub qdisc: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet_loss_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_kbit: Option<u64>,
}

impl Default for ShapingData {
    fn default() -> Self {
        Self { qdisc: "noqueue".into(), latency_ms: None, packet_loss_percent: None, rate_kbit: None }
    }
}

/// The eBPF counters: per process, requests by method and responses by code.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpTrafficData {
    #[serde(default)]
    pub processes: Vec<ProcessData>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessData {
    pub pid: u32,
    /// `GET = 10`.
    pub requests: BTreeMap<String, u64>,
    /// `"200" = 9`.
    pub responses: BTreeMap<String, u64>,
}

impl FixtureData {
    /// Reads a fixture file, TOML or (by its `.json` name) JSON; errors name the file.
    pub fn read(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading fixture {}", path.display()))?;
        Self::parse(&text, is_json(path)).with_context(|| format!("fixture {}", path.display()))
    }

    pub fn parse(text: &str, json: bool) -> Result<Self> {
        let data: FixtureData = if json {
            serde_json::from_str(text).map_err(|err| anyhow::anyhow!("{err}"))?
        } else {
            toml::from_str(text).map_err(|err| anyhow::anyhow!("{}", one_line(&err.to_string())))?
        };
        data.check()?;
        Ok(data)
    }

    /// What a file cannot mean: a process file not under a PID, a response code not a number.
    fn check(&self) -> Result<()> {
        if let Some(http) = &self.http_traffic {
            for process in &http.processes {
                for code in process.responses.keys() {
                    code.parse::<u16>()
                        .map_err(|_| anyhow::anyhow!("http_traffic: process {}: response code {code:?} is not a number", process.pid))?;
                }
            }
        }
        Ok(())
    }

    /// The file's text, TOML or JSON.
    pub fn to_text(&self, json: bool) -> Result<String> {
        Ok(if json { serde_json::to_string_pretty(self)? + "\n" } else { toml::to_string_pretty(self)? })
    }

    /// This fixture with `patch` laid over it: tables merged key by key, any
    /// other value (lists too) replaced. A script's step changes a fixture so.
    pub fn patched(&self, patch: &serde_json::Value) -> Result<Self> {
        let mut value = serde_json::to_value(self)?;
        merge(&mut value, patch);
        let data: FixtureData = serde_json::from_value(value).map_err(|err| anyhow::anyhow!("the changed fixture: {err}"))?;
        data.check()?;
        Ok(data)
    }
}

impl FixtureData {
    /// This fixture without the value at a dotted path (`docker`, `procfs.files.stat`).
    pub fn without(&self, path: &str) -> Result<Self> {
        let mut value = serde_json::to_value(self)?;
        let (parent, last) = match path.rsplit_once('.') {
            Some((parent, last)) => (Some(parent), last),
            None => (None, path),
        };
        let mut at = &mut value;
        for key in parent.into_iter().flat_map(|p| p.split('.')) {
            at = at.get_mut(key).with_context(|| format!("remove {path:?}: the fixture has no {key:?}"))?;
        }
        let removed = at.as_object_mut().and_then(|object| object.remove(last));
        if removed.is_none() {
            anyhow::bail!("remove {path:?}: the fixture has no {last:?} there");
        }
        serde_json::from_value(value).map_err(|err| anyhow::anyhow!("the fixture without {path}: {err}"))
    }
}

pub fn is_json(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|ext| ext == "json")
}

fn one_line(text: &str) -> String {
    text.split('\n').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

fn merge(into: &mut serde_json::Value, patch: &serde_json::Value) {
    match (into, patch) {
        (serde_json::Value::Object(into), serde_json::Value::Object(patch)) => {
            for (key, value) in patch {
                match into.get_mut(key) {
                    Some(existing) if !value.is_null() => merge(existing, value),
                    _ => {
                        into.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (into, patch) => *into = patch.clone(),
    }
}

/// Replay answers from the data; record keeps what the real host answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Replay,
    Record,
}

/// A fixture in use by one plugin run: its data (changed by the script's
/// steps, and by the plugin's own traffic-shaping calls) and its clock.
pub struct Fixture {
    mode: Mode,
    state: Mutex<State>,
}

struct State {
    data: FixtureData,
    now_ms: u64,
}

impl Fixture {
    pub fn replay(data: FixtureData) -> Self {
        let now_ms = data.time_ms.unwrap_or(DEFAULT_TIME_MS);
        Self { mode: Mode::Replay, state: Mutex::new(State { data, now_ms }) }
    }

    /// An empty fixture that fills up with what the host answers.
    pub fn record() -> Self {
        Self { mode: Mode::Record, state: Mutex::new(State { data: FixtureData::default(), now_ms: 0 }) }
    }

    pub fn replaying(&self) -> bool {
        self.mode == Mode::Replay
    }

    pub fn recording(&self) -> bool {
        self.mode == Mode::Record
    }

    pub fn data(&self) -> FixtureData {
        self.state.lock().unwrap().data.clone()
    }

    pub fn set_data(&self, data: FixtureData) {
        self.state.lock().unwrap().data = data;
    }

    pub fn hostname(&self) -> String {
        self.state.lock().unwrap().data.hostname.clone().unwrap_or_else(|| DEFAULT_HOSTNAME.into())
    }

    /// The fixture's clock, in ms since 1970.
    pub fn now_ms(&self) -> u64 {
        self.state.lock().unwrap().now_ms
    }

    pub fn advance_ms(&self, ms: u64) {
        let mut state = self.state.lock().unwrap();
        state.now_ms = state.now_ms.saturating_add(ms);
    }

    fn with<T>(&self, f: impl FnOnce(&mut FixtureData) -> T) -> T {
        f(&mut self.state.lock().unwrap().data)
    }

    // --- procfs ---

    pub fn procfs_read(&self, relative: &str) -> Result<String, ProcfsError> {
        self.with(|data| {
            let procfs = data.procfs.as_ref().ok_or_else(|| ProcfsError::Io("/proc is not in the test fixture".into()))?;
            procfs.files.get(relative).cloned().ok_or_else(|| ProcfsError::NotFound(format!("/proc/{relative}")))
        })
    }

    /// The PIDs the fixture's /proc paths name, ascending.
    pub fn procfs_pids(&self) -> Result<Vec<u32>, ProcfsError> {
        self.with(|data| {
            let procfs = data.procfs.as_ref().ok_or_else(|| ProcfsError::Io("/proc is not in the test fixture".into()))?;
            let mut pids: Vec<u32> =
                procfs.files.keys().filter_map(|path| path.split('/').next()?.parse().ok()).collect();
            pids.sort_unstable();
            pids.dedup();
            Ok(pids)
        })
    }

    pub fn record_procfs_read(&self, relative: &str, answer: &Result<String, ProcfsError>) {
        if let Ok(text) = answer {
            self.with(|data| {
                data.procfs.get_or_insert_with(Default::default).files.insert(relative.to_owned(), text.clone());
            });
        }
    }

    pub fn record_time(&self, now_ms: u64) {
        self.with(|data| {
            data.time_ms.get_or_insert(now_ms);
        });
    }

    pub fn record_hostname(&self, hostname: &str) {
        self.with(|data| {
            data.hostname.get_or_insert_with(|| hostname.to_owned());
        });
    }

    // --- docker ---

    fn docker<T>(&self, f: impl FnOnce(&mut DockerData) -> Result<T, DockerError>) -> Result<T, DockerError> {
        self.with(|data| match &mut data.docker {
            Some(docker) => f(docker),
            None => Err(DockerError::Unavailable("the test fixture has no Docker Engine (no [docker] section)".into())),
        })
    }

    pub fn docker_containers(&self, all: bool, grant: &DockerGrant) -> Result<Vec<ContainerSummary>, DockerError> {
        self.docker(|docker| {
            Ok(docker
                .containers
                .iter()
                .filter(|c| all || c.is_running())
                .filter(|c| grant.matches(&c.labels))
                .map(ContainerData::summary)
                .collect())
        })
    }

    pub fn docker_inspect(&self, id: &str, grant: &DockerGrant) -> Result<ContainerDetails, DockerError> {
        self.docker(|docker| {
            docker
                .find(id)
                .filter(|c| grant.matches(&c.labels))
                .map(ContainerData::details)
                .ok_or_else(|| DockerError::NotFound(format!("no container `{id}`")))
        })
    }

    pub fn docker_images(&self, grant: &DockerGrant) -> Result<Vec<Image>, DockerError> {
        self.docker(|docker| {
            let visible: Vec<&str> = docker
                .containers
                .iter()
                .filter(|c| grant.matches(&c.labels))
                .map(|c| c.image_id.as_str())
                .collect();
            Ok(docker
                .images
                .iter()
                .filter(|image| !grant.is_scoped() || visible.contains(&image.id.as_str()))
                .map(ImageData::wit)
                .collect())
        })
    }

    pub fn docker_get(&self, path: &str) -> Result<String, DockerError> {
        self.docker(|docker| {
            docker.raw.get(path).cloned().ok_or_else(|| DockerError::NotFound(format!("{path} is not in the test fixture's docker.raw")))
        })
    }

    fn recorded_container(docker: &mut DockerData, id: &str) -> usize {
        match docker.containers.iter().position(|c| c.id == id) {
            Some(at) => at,
            None => {
                docker.containers.push(ContainerData { id: id.to_owned(), ..Default::default() });
                docker.containers.len() - 1
            }
        }
    }

    pub fn record_docker_containers(&self, answer: &Result<Vec<ContainerSummary>, DockerError>) {
        let Ok(list) = answer else { return };
        self.with(|data| {
            let docker = data.docker.get_or_insert_with(Default::default);
            for summary in list {
                let at = Self::recorded_container(docker, &summary.id);
                docker.containers[at].take_summary(summary);
            }
        });
    }

    pub fn record_docker_inspect(&self, answer: &Result<ContainerDetails, DockerError>) {
        let Ok(details) = answer else { return };
        self.with(|data| {
            let docker = data.docker.get_or_insert_with(Default::default);
            let at = Self::recorded_container(docker, &details.id);
            docker.containers[at].take_details(details);
        });
    }

    pub fn record_docker_images(&self, answer: &Result<Vec<Image>, DockerError>) {
        let Ok(images) = answer else { return };
        self.with(|data| {
            let docker = data.docker.get_or_insert_with(Default::default);
            docker.images = images.iter().map(ImageData::from_wit).collect();
        });
    }

    pub fn record_docker_get(&self, path: &str, answer: &Result<String, DockerError>) {
        let Ok(text) = answer else { return };
        self.with(|data| {
            data.docker.get_or_insert_with(Default::default).raw.insert(path.to_owned(), text.clone());
        });
    }

    // --- traffic ---

    /// The shaping of a running container's `eth0`, after `change` (`None`: read only).
    pub fn traffic_apply(&self, container_id: &str, change: Option<ShapingData>) -> Result<Shaping, TrafficError> {
        self.with(|data| {
            let Some(docker) = &data.docker else {
                return Err(TrafficError::Failed("looking up the container: the test fixture has no Docker Engine".into()));
            };
            let container = docker
                .find(container_id)
                .ok_or_else(|| TrafficError::NotFound(format!("no container `{container_id}`")))?;
            if !container.is_running() {
                return Err(TrafficError::NotFound(format!("container {container_id} is not running")));
            }
            let id = container.id.clone();
            let traffic = data.traffic.get_or_insert_with(Default::default);
            if let Some(change) = change {
                if change.qdisc == "netem" && !traffic.netem {
                    return Err(TrafficError::Unsupported(
                        "the kernel has no netem qdisc (module sch_netem missing) (test fixture: traffic.netem = false)".into(),
                    ));
                }
                traffic.containers.insert(id.clone(), change);
            }
            Ok(traffic.containers.get(&id).cloned().unwrap_or_default().wit())
        })
    }

    pub fn record_traffic(&self, container_id: &str, answer: &Result<Shaping, TrafficError>) {
        let Ok(shaping) = answer else { return };
        self.with(|data| {
            let traffic = data.traffic.get_or_insert_with(Default::default);
            traffic.containers.insert(container_id.to_owned(), ShapingData::from_wit(shaping));
        });
    }

    // --- http-traffic ---

    pub fn http_counters(&self) -> Result<Vec<ProcessCounters>, HttpTrafficError> {
        self.with(|data| {
            let http = data.http_traffic.as_ref().ok_or_else(|| {
                HttpTrafficError::Unavailable("the test fixture counts no HTTP traffic (no [http_traffic] section)".into())
            })?;
            Ok(http.processes.iter().map(ProcessData::wit).collect())
        })
    }

    pub fn record_http_counters(&self, answer: &Result<Vec<ProcessCounters>, HttpTrafficError>) {
        let Ok(processes) = answer else { return };
        self.with(|data| {
            data.http_traffic = Some(HttpTrafficData { processes: processes.iter().map(ProcessData::from_wit).collect() });
        });
    }
}

/// WASI's wall clock on the fixture's clock, so guests reading the time
/// through their language's standard library see the script's time too.
pub struct FixtureWallClock(pub std::sync::Arc<Fixture>);

impl wasmtime_wasi::HostWallClock for FixtureWallClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_millis(1)
    }

    fn now(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.now_ms())
    }
}

/// WASI's monotonic clock, in nanoseconds, moving only when the script advances time.
pub struct FixtureMonotonicClock(pub std::sync::Arc<Fixture>);

impl wasmtime_wasi::HostMonotonicClock for FixtureMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }

    fn now(&self) -> u64 {
        self.0.now_ms().saturating_mul(1_000_000)
    }
}

impl DockerData {
    /// A container by full ID, name or ID prefix (of 4 or more), as the engine finds it.
    fn find(&self, id: &str) -> Option<&ContainerData> {
        self.containers.iter().find(|c| c.id == id || c.name == id || (id.len() >= 4 && c.id.starts_with(id)))
    }
}

impl From<&MountData> for Mount {
    fn from(m: &MountData) -> Self {
        Mount {
            type_: m.kind.clone(),
            name: m.name.clone(),
            source: m.source.clone(),
            destination: m.destination.clone(),
            mode: m.mode.clone(),
            read_write: m.read_write,
        }
    }
}

impl From<&Mount> for MountData {
    fn from(m: &Mount) -> Self {
        MountData {
            kind: m.type_.clone(),
            name: m.name.clone(),
            source: m.source.clone(),
            destination: m.destination.clone(),
            mode: m.mode.clone(),
            read_write: m.read_write,
        }
    }
}

impl From<&NetworkData> for Network {
    fn from(n: &NetworkData) -> Self {
        Network { name: n.name.clone(), ip_address: n.ip_address.clone(), gateway: n.gateway.clone(), mac_address: n.mac_address.clone() }
    }
}

impl From<&Network> for NetworkData {
    fn from(n: &Network) -> Self {
        NetworkData { name: n.name.clone(), ip_address: n.ip_address.clone(), gateway: n.gateway.clone(), mac_address: n.mac_address.clone() }
    }
}

impl ContainerData {
    fn is_running(&self) -> bool {
        self.state.is_empty() || self.state == "running"
    }

    fn state(&self) -> String {
        if self.state.is_empty() { "running".into() } else { self.state.clone() }
    }

    fn mounts(&self) -> Vec<Mount> {
        self.mounts.iter().map(Mount::from).collect()
    }

    fn networks(&self) -> Vec<Network> {
        self.networks.iter().map(Network::from).collect()
    }

    fn summary(&self) -> ContainerSummary {
        ContainerSummary {
            id: self.id.clone(),
            names: if self.name.is_empty() { Vec::new() } else { vec![self.name.clone()] },
            image: self.image.clone(),
            image_id: self.image_id.clone(),
            command: self.command.clone(),
            state: self.state(),
            status: if self.status.is_empty() && self.is_running() { "Up".into() } else { self.status.clone() },
            labels: self.labels.clone().into_iter().collect(),
            mounts: self.mounts(),
            networks: self.networks(),
            created: self.created_ms,
        }
    }

    fn details(&self) -> ContainerDetails {
        ContainerDetails {
            id: self.id.clone(),
            name: self.name.clone(),
            image: self.image.clone(),
            image_id: self.image_id.clone(),
            state: self.state(),
            running: self.is_running(),
            pid: self.pid.filter(|_| self.is_running()),
            exit_code: self.exit_code,
            labels: self.labels.clone().into_iter().collect(),
            mounts: self.mounts(),
            networks: self.networks(),
            hostname: self.hostname.clone(),
            created: self.created_ms,
            started: self.started_ms,
            finished: self.finished_ms,
            restart_count: self.restart_count,
        }
    }

    fn take_common(&mut self, image: &str, image_id: &str, state: &str, labels: &[(String, String)], mounts: &[Mount], networks: &[Network], created: u64) {
        self.image = image.to_owned();
        self.image_id = image_id.to_owned();
        self.state = state.to_owned();
        self.labels = labels.iter().cloned().collect();
        self.mounts = mounts.iter().map(MountData::from).collect();
        self.networks = networks.iter().map(NetworkData::from).collect();
        self.created_ms = created;
    }

    fn take_summary(&mut self, s: &ContainerSummary) {
        self.take_common(&s.image, &s.image_id, &s.state, &s.labels, &s.mounts, &s.networks, s.created);
        if let Some(name) = s.names.first() {
            self.name = name.clone();
        }
        self.command = s.command.clone();
        self.status = s.status.clone();
    }

    fn take_details(&mut self, d: &ContainerDetails) {
        self.take_common(&d.image, &d.image_id, &d.state, &d.labels, &d.mounts, &d.networks, d.created);
        self.name = d.name.clone();
        self.pid = d.pid;
        self.exit_code = d.exit_code;
        self.hostname = d.hostname.clone();
        self.started_ms = d.started;
        self.finished_ms = d.finished;
        self.restart_count = d.restart_count;
    }
}

impl ImageData {
    fn wit(&self) -> Image {
        Image {
            id: self.id.clone(),
            repo_tags: self.repo_tags.clone(),
            size: self.size,
            created: self.created_ms,
            labels: self.labels.clone().into_iter().collect(),
        }
    }

    fn from_wit(image: &Image) -> Self {
        Self {
            id: image.id.clone(),
            repo_tags: image.repo_tags.clone(),
            size: image.size,
            created_ms: image.created,
            labels: image.labels.iter().cloned().collect(),
        }
    }
}

impl ShapingData {
    fn wit(&self) -> Shaping {
        Shaping {
            qdisc: self.qdisc.clone(),
            latency_ms: self.latency_ms,
            packet_loss_percent: self.packet_loss_percent,
            rate_kbit: self.rate_kbit,
        }
    }

    fn from_wit(shaping: &Shaping) -> Self {
        Self {
            qdisc: shaping.qdisc.clone(),
            latency_ms: shaping.latency_ms,
            packet_loss_percent: shaping.packet_loss_percent,
            rate_kbit: shaping.rate_kbit,
        }
    }
}

impl ProcessData {
    fn wit(&self) -> ProcessCounters {
        ProcessCounters {
            pid: self.pid,
            requests: self.requests.iter().map(|(method, count)| MethodCount { method: method.clone(), count: *count }).collect(),
            responses: self
                .responses
                .iter()
                .filter_map(|(code, count)| Some(StatusCount { code: code.parse().ok()?, count: *count }))
                .collect(),
        }
    }

    fn from_wit(process: &ProcessCounters) -> Self {
        Self {
            pid: process.pid,
            requests: process.requests.iter().map(|m| (m.method.clone(), m.count)).collect(),
            responses: process.responses.iter().map(|s| (s.code.to_string(), s.count)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_merges_tables_and_replaces_the_rest() {
        let data = FixtureData::parse(
            "hostname = \"h\"\n[procfs.files]\nstat = \"a\"\nuptime = \"1\"\n[[docker.containers]]\nid = \"one\"\n",
            false,
        )
        .unwrap();
        let patched = data
            .patched(&serde_json::json!({ "procfs": { "files": { "stat": "b" } }, "docker": { "containers": [] } }))
            .unwrap();
        assert_eq!(patched.hostname.as_deref(), Some("h"));
        let files = &patched.procfs.as_ref().unwrap().files;
        assert_eq!((files["stat"].as_str(), files["uptime"].as_str()), ("b", "1"));
        assert!(patched.docker.unwrap().containers.is_empty());
    }

    #[test]
    fn errors_name_the_key_on_one_line() {
        let err = FixtureData::parse("[procfs]\nfile = {}\n", false).unwrap_err().to_string();
        assert!(err.contains("unknown field `file`") && !err.contains('\n'), "{err}");
        let err = FixtureData::parse("[[http_traffic.processes]]\npid = 1\nresponses = { ok = 1 }\n", false).unwrap_err();
        assert!(err.to_string().contains("response code \"ok\" is not a number"), "{err}");
    }

    #[test]
    fn pids_come_from_the_paths() {
        let data = FixtureData::parse("[procfs.files]\nstat = \"\"\n\"12/stat\" = \"\"\n\"12/status\" = \"\"\n\"7/cmdline\" = \"\"\n", false).unwrap();
        let fixture = Fixture::replay(data);
        assert_eq!(fixture.procfs_pids().unwrap(), vec![7, 12]);
        assert!(matches!(fixture.procfs_read("uptime"), Err(ProcfsError::NotFound(_))));
    }

    #[test]
    fn traffic_changes_stick_to_running_containers() {
        let data = FixtureData::parse("[[docker.containers]]\nid = \"abcdef\"\nname = \"web\"\n[[docker.containers]]\nid = \"gone\"\nstate = \"exited\"\n", false).unwrap();
        let fixture = Fixture::replay(data);
        assert_eq!(fixture.traffic_apply("web", None).unwrap().qdisc, "noqueue");
        let rate = ShapingData { qdisc: "tbf".into(), rate_kbit: Some(300), ..Default::default() };
        assert_eq!(fixture.traffic_apply("abcdef", Some(rate)).unwrap().rate_kbit, Some(300));
        assert_eq!(fixture.traffic_apply("abcd", None).unwrap().qdisc, "tbf");
        assert!(matches!(fixture.traffic_apply("gone", None), Err(TrafficError::NotFound(_))));
    }
}
