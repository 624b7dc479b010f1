//! The `docker` interface: typed, read-only queries to the Docker Engine,
//! granted per plugin and, for tenants, scoped by a label selector.
//!
//! The raw Docker socket is root-equivalent; a plugin here never touches it.
//! It gets lists and inspects as records, and raw GETs only of allow-listed
//! read-only paths. A scoped plugin sees only containers whose labels match.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::DateTime;
use serde::Deserialize;
use tokio::time::Instant;
use wasmtime::component::HasData;

use crate::bindings::scope::plugin::docker::{
    self, ContainerDetails, ContainerSummary, DockerError, Image, Mount, Network,
};
use crate::grants::DockerGrant;
use crate::host::docker_engine::{DockerEngine, EngineError};
use crate::plugin_id::PluginId;

/// Per-plugin state of the capability.
pub struct DockerCtx {
    plugin: PluginId,
    engine: Arc<DockerEngine>,
    grant: Option<DockerGrant>,
    denial_logged: bool,
}

impl DockerCtx {
    pub fn new(plugin: PluginId, engine: Arc<DockerEngine>, grant: Option<DockerGrant>) -> Self {
        Self { plugin, engine, grant, denial_logged: false }
    }

    fn grant(&mut self) -> Result<DockerGrant, DockerError> {
        match &self.grant {
            Some(grant) => Ok(grant.clone()),
            None => Err(DockerError::Denied(super::not_granted(&self.plugin, "docker", &mut self.denial_logged))),
        }
    }
}

pub struct DockerView<'a> {
    pub ctx: &'a mut DockerCtx,
    pub deadline: Instant,
}

pub struct Docker;

impl HasData for Docker {
    type Data<'a> = DockerView<'a>;
}

impl From<EngineError> for DockerError {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::Unavailable(why) => DockerError::Unavailable(why),
            EngineError::Timeout => DockerError::Timeout,
            EngineError::NotFound(what) => DockerError::NotFound(what),
            EngineError::Failed(why) => DockerError::Failed(why),
        }
    }
}

type Answer<T> = wasmtime::Result<Result<T, DockerError>>;

impl docker::Host for DockerView<'_> {
    async fn list_containers(&mut self, all: bool) -> Answer<Vec<ContainerSummary>> {
        let grant = match self.ctx.grant() {
            Ok(grant) => grant,
            Err(err) => return Ok(Err(err)),
        };
        Ok(list_containers(&self.ctx.engine, &grant, all, self.deadline).await)
    }

    async fn inspect_container(&mut self, id: String) -> Answer<ContainerDetails> {
        let grant = match self.ctx.grant() {
            Ok(grant) => grant,
            Err(err) => return Ok(Err(err)),
        };
        Ok(inspect(&self.ctx.engine, &id, &grant, self.deadline).await)
    }

    async fn list_images(&mut self) -> Answer<Vec<Image>> {
        let grant = match self.ctx.grant() {
            Ok(grant) => grant,
            Err(err) => return Ok(Err(err)),
        };
        let result = async {
            // A tenant sees only the images its own containers use.
            let visible: Option<HashSet<String>> = if grant.is_scoped() {
                let containers = list_containers(&self.ctx.engine, &grant, true, self.deadline).await?;
                Some(containers.into_iter().map(|c| c.image_id).collect())
            } else {
                None
            };
            let body = self.ctx.engine.get("/images/json", self.deadline).await?;
            let raw: Vec<RawImage> = parse(&body)?;
            Ok(raw
                .into_iter()
                .filter(|image| visible.as_ref().is_none_or(|ids| ids.contains(&image.id)))
                .map(RawImage::into_wit)
                .collect())
        };
        Ok(result.await)
    }

    async fn get(&mut self, path: String) -> Answer<String> {
        let grant = match self.ctx.grant() {
            Ok(grant) => grant,
            Err(err) => return Ok(Err(err)),
        };
        if let Err(why) = check_raw_path(&path, grant.is_scoped()) {
            return Ok(Err(DockerError::Denied(format!("{path:?}: {why}"))));
        }
        let result = async {
            let body = self.ctx.engine.get(&path, self.deadline).await?;
            if is_container_inspect(&path) {
                return without_environment(&body);
            }
            String::from_utf8(body.to_vec()).map_err(|_| DockerError::Failed("answer is not UTF-8".into()))
        };
        Ok(result.await)
    }
}

/// One container, if `grant` lets the plugin see it. A tenant must not learn
/// that other tenants' containers exist: those are `not-found` too.
pub async fn inspect(
    engine: &DockerEngine,
    id: &str,
    grant: &DockerGrant,
    deadline: Instant,
) -> Result<ContainerDetails, DockerError> {
    let not_found = || DockerError::NotFound(format!("no container {id:?}"));
    if !is_name_or_id(id) {
        return Err(not_found());
    }
    let body = match engine.get(&format!("/containers/{id}/json"), deadline).await {
        Ok(body) => body,
        // For a tenant, "no such container", "ambiguous prefix" and "not yours"
        // must look the same, or it could probe for other tenants' containers.
        Err(EngineError::NotFound(_) | EngineError::Failed(_)) if grant.is_scoped() => return Err(not_found()),
        Err(err) => return Err(err.into()),
    };
    let details = parse::<RawDetails>(&body)?.into_wit();
    if !grant.matches(&details.labels.iter().cloned().collect()) {
        return Err(not_found());
    }
    Ok(details)
}

async fn list_containers(
    engine: &DockerEngine,
    grant: &DockerGrant,
    all: bool,
    deadline: Instant,
) -> Result<Vec<ContainerSummary>, DockerError> {
    let mut query = format!("/containers/json?all={}", if all { 1 } else { 0 });
    if grant.is_scoped() {
        // The engine filters; the check below makes sure of it.
        let labels: Vec<String> = grant.label_selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let filters = serde_json::json!({ "label": labels }).to_string();
        query.push_str("&filters=");
        query.extend(form_urlencoded::byte_serialize(filters.as_bytes()));
    }
    let body = engine.get(&query, deadline).await?;
    let raw: Vec<RawSummary> = parse(&body)?;
    Ok(raw
        .into_iter()
        .map(RawSummary::into_wit)
        .filter(|c| grant.matches(&c.labels.iter().cloned().collect()))
        .collect())
}

fn is_container_inspect(path: &str) -> bool {
    let segments: Vec<&str> = path.split('?').next().unwrap_or(path).trim_start_matches('/').split('/').collect();
    matches!(segments.as_slice(), ["containers", id, "json"] if *id != "json")
}

/// A container's environment holds its secrets (passwords, tokens): a raw
/// inspect never shows it, as procfs never shows `environ` without its grant.
fn without_environment(body: &[u8]) -> Result<String, DockerError> {
    let mut value: serde_json::Value = parse(body)?;
    if let Some(config) = value.get_mut("Config").and_then(|c| c.as_object_mut()) {
        config.remove("Env");
    }
    Ok(value.to_string())
}

/// Query strings a raw GET may carry (filters must be percent-encoded).
const MAX_RAW_PATH: usize = 2048;

/// Container IDs and names: what the engine accepts in `/containers/{id}`.
fn is_name_or_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Read-only Engine paths a plugin may GET raw. Everything else (creating,
/// killing, exec, attach, archives, logs, secrets, ...) is refused.
fn check_raw_path(path: &str, scoped: bool) -> Result<(), &'static str> {
    let (path_part, query) = path.split_once('?').unwrap_or((path, ""));
    if path.len() > MAX_RAW_PATH
        || !path_part.starts_with('/')
        || path_part.contains("..")
        || !path_part.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b))
        || !query.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.~=&%+,:-".contains(&b))
    {
        return Err("malformed path: plain `/segment/...` with an optional query");
    }
    let segments: Vec<&str> = path_part.trim_start_matches('/').split('/').collect();
    // Scoped plugins see only their own containers: lists and inspects go
    // through the typed calls, which filter.
    let allowed = match segments.as_slice() {
        ["version"] | ["_ping"] => true,
        _ if scoped => return Err("a plugin scoped by labels may only use the typed calls (and /version)"),
        ["info"] | ["images", "json"] | ["containers", "json"] | ["networks"] | ["volumes"] => true,
        ["containers", id, "json"] | ["images", id, "json"] | ["networks", id] => is_name_or_id(id),
        // `ps_args` could make `ps` print every process's environment.
        ["containers", id, "top"] => is_name_or_id(id) && query.is_empty(),
        // Exactly one snapshot: the engine reads the first `stream` it finds.
        ["containers", id, "stats"] => is_name_or_id(id) && query == "stream=false",
        _ => false,
    };
    if allowed { Ok(()) } else { Err("not on the read-only allow-list (see docs/plugin-authors.md)") }
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, DockerError> {
    serde_json::from_slice(body).map_err(|err| DockerError::Failed(format!("unreadable answer: {err}")))
}

/// RFC 3339 (`0001-01-01T00:00:00Z` means never) into milliseconds.
fn time_ms(text: &str) -> Option<u64> {
    let ms = DateTime::parse_from_rfc3339(text).ok()?.timestamp_millis();
    u64::try_from(ms).ok().filter(|ms| *ms > 0)
}

fn labels(map: Option<BTreeMap<String, String>>) -> Vec<(String, String)> {
    map.unwrap_or_default().into_iter().collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawMount {
    #[serde(default)]
    r#type: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    destination: String,
    #[serde(default)]
    mode: String,
    #[serde(rename = "RW", default)]
    rw: bool,
}

impl RawMount {
    fn into_wit(self) -> Mount {
        Mount {
            type_: self.r#type,
            name: self.name,
            source: self.source,
            destination: self.destination,
            mode: self.mode,
            read_write: self.rw,
        }
    }
}

#[derive(Deserialize, Default)]
struct RawNetworks {
    #[serde(rename = "Networks", default)]
    networks: Option<BTreeMap<String, RawNetwork>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawNetwork {
    #[serde(rename = "IPAddress", default)]
    ip_address: String,
    #[serde(default)]
    gateway: String,
    #[serde(default)]
    mac_address: String,
}

impl RawNetworks {
    fn into_wit(self) -> Vec<Network> {
        self.networks
            .unwrap_or_default()
            .into_iter()
            .map(|(name, n)| Network { name, ip_address: n.ip_address, gateway: n.gateway, mac_address: n.mac_address })
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawSummary {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    image: String,
    #[serde(rename = "ImageID", default)]
    image_id: String,
    #[serde(default)]
    command: String,
    #[serde(default)]
    created: i64,
    #[serde(default)]
    state: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    mounts: Vec<RawMount>,
    #[serde(default)]
    network_settings: Option<RawNetworks>,
}

impl RawSummary {
    fn into_wit(self) -> ContainerSummary {
        ContainerSummary {
            id: self.id,
            names: self.names.into_iter().map(|n| n.trim_start_matches('/').to_owned()).collect(),
            image: self.image,
            image_id: self.image_id,
            command: self.command,
            state: self.state,
            status: self.status,
            labels: labels(self.labels),
            mounts: self.mounts.into_iter().map(RawMount::into_wit).collect(),
            networks: self.network_settings.unwrap_or_default().into_wit(),
            created: u64::try_from(self.created).unwrap_or(0) * 1000,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawDetails {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    image: String,
    #[serde(default)]
    created: String,
    state: RawState,
    config: RawConfig,
    #[serde(default)]
    mounts: Vec<RawMount>,
    #[serde(default)]
    network_settings: Option<RawNetworks>,
    #[serde(default)]
    restart_count: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawState {
    #[serde(default)]
    status: String,
    #[serde(default)]
    running: bool,
    #[serde(default)]
    pid: u32,
    #[serde(default)]
    exit_code: i32,
    #[serde(default)]
    started_at: String,
    #[serde(default)]
    finished_at: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawConfig {
    #[serde(default)]
    image: String,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

impl RawDetails {
    fn into_wit(self) -> ContainerDetails {
        ContainerDetails {
            id: self.id,
            name: self.name.trim_start_matches('/').to_owned(),
            image: self.config.image,
            image_id: self.image,
            state: self.state.status,
            running: self.state.running,
            pid: (self.state.running && self.state.pid > 0).then_some(self.state.pid),
            exit_code: self.state.exit_code,
            labels: labels(self.config.labels),
            mounts: self.mounts.into_iter().map(RawMount::into_wit).collect(),
            networks: self.network_settings.unwrap_or_default().into_wit(),
            hostname: self.config.hostname,
            created: time_ms(&self.created).unwrap_or(0),
            started: time_ms(&self.state.started_at),
            finished: time_ms(&self.state.finished_at),
            restart_count: self.restart_count,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawImage {
    id: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    created: i64,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

impl RawImage {
    fn into_wit(self) -> Image {
        Image {
            id: self.id,
            repo_tags: self.repo_tags.unwrap_or_default(),
            size: u64::try_from(self.size).unwrap_or(0),
            created: u64::try_from(self.created).unwrap_or(0) * 1000,
            labels: labels(self.labels),
        }
    }
}

/// How long a tenant's list of visible containers is reused by procfs checks.
const TENANT_CACHE_FOR: Duration = Duration::from_secs(2);

/// For a plugin granted Docker with a label selector: which containers are its
/// own, so procfs can refuse it the processes of every other container.
pub struct TenantScope {
    engine: Arc<DockerEngine>,
    grant: DockerGrant,
    visible: Mutex<Option<(Instant, Arc<HashSet<String>>)>>,
}

impl TenantScope {
    pub fn new(engine: Arc<DockerEngine>, grant: DockerGrant) -> Self {
        Self { engine, grant, visible: Mutex::new(None) }
    }

    /// IDs of the containers (all states) the selector matches, briefly cached.
    pub async fn visible_containers(&self, deadline: Instant) -> Result<Arc<HashSet<String>>, DockerError> {
        if let Some((at, ids)) = self.visible.lock().unwrap().as_ref()
            && at.elapsed() < TENANT_CACHE_FOR
        {
            return Ok(ids.clone());
        }
        let containers = list_containers(&self.engine, &self.grant, true, deadline).await?;
        let ids: Arc<HashSet<String>> = Arc::new(containers.into_iter().map(|c| c.id).collect());
        *self.visible.lock().unwrap() = Some((Instant::now(), ids.clone()));
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_read_only_paths_pass() {
        for path in [
            "/version",
            "/info",
            "/containers/json?all=1",
            "/containers/abc123/json",
            "/containers/web-1/top",
            "/containers/abc/stats?stream=false",
            "/images/json",
        ] {
            assert_eq!(check_raw_path(path, false), Ok(()), "{path}");
        }
        for path in [
            "/containers/create",
            "/containers/abc/kill",
            "/containers/abc/exec",
            "/containers/abc/attach",
            "/containers/abc/archive?path=/etc/shadow",
            "/containers/abc/export",
            "/containers/abc/logs",
            "/containers/abc/stats",
            "/containers/abc/stats?stream=1&stream=false",
            "/containers/abc/top?ps_args=auxe",
            "/version?<",
            "/version?a\"b",
            "/containers/../../etc/json",
            "/containers/%2e%2e/json",
            "/secrets",
            "/swarm/unlockkey",
            "containers/json",
            "/containers/json#x",
            "/build",
        ] {
            assert!(check_raw_path(path, false).is_err(), "{path} should be refused");
        }
        assert!(check_raw_path(&format!("/version?{}", "a".repeat(70_000)), false).is_err());
        assert!(check_raw_path("/containers/json", true).is_err(), "scoped plugins use the typed calls");
        assert_eq!(check_raw_path("/version", true), Ok(()));
    }

    #[test]
    fn raw_inspects_lose_the_environment() {
        assert!(is_container_inspect("/containers/abc/json") && !is_container_inspect("/containers/json"));
        let body = br#"{"Id":"abc","Config":{"Env":["PASSWORD=hunter2"],"Image":"x"}}"#;
        let text = without_environment(body).unwrap();
        assert!(!text.contains("hunter2") && text.contains("\"Image\":\"x\""), "{text}");
    }

    #[test]
    fn engine_json_becomes_records() {
        let summary: Vec<RawSummary> = serde_json::from_str(
            r#"[{"Id":"abc","Names":["/web"],"Image":"busybox","ImageID":"sha256:1","Command":"sleep 1",
                "Created":1700000000,"State":"running","Status":"Up 1 second","Labels":{"team":"a"},
                "Mounts":[{"Type":"bind","Source":"/s","Destination":"/d","Mode":"","RW":true}],
                "NetworkSettings":{"Networks":{"bridge":{"IPAddress":"172.17.0.2","Gateway":"172.17.0.1","MacAddress":"02:42"}}}}]"#,
        )
        .unwrap();
        let c = summary.into_iter().next().unwrap().into_wit();
        assert_eq!(c.names, ["web"]);
        assert_eq!(c.created, 1_700_000_000_000);
        assert_eq!(c.mounts[0].destination, "/d");
        assert!(c.mounts[0].read_write);
        assert_eq!(c.networks[0].ip_address, "172.17.0.2");
        assert_eq!(c.labels, [("team".to_owned(), "a".to_owned())]);
        assert_eq!(time_ms("0001-01-01T00:00:00Z"), None);
        assert_eq!(time_ms("2026-11-25T23:54:57.5Z"), Some(1_795_650_897_500));
    }
}
