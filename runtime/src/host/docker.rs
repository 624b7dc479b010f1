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
use crate::config::grants::DockerGrant;
use crate::host::docker_engine::{DockerEngine, EngineError};
use crate::host::fixture::Fixture;
use crate::ops::guest_log::escape_controls;
use crate::plugin_id::PluginId;

/// Per-plugin state of the capability.
pub struct DockerCtx {
    plugin: PluginId,
    engine: Arc<DockerEngine>,
    grant: Option<DockerGrant>,
    denial_logged: bool,
    fixture: Option<Arc<Fixture>>,
}

impl DockerCtx {
    pub fn new(plugin: PluginId, engine: Arc<DockerEngine>, grant: Option<DockerGrant>) -> Self {
        Self { plugin, engine, grant, denial_logged: false, fixture: None }
    }

    /// Under `scope-wasm test`: answers from the fixture, or recorded into it.
    pub fn with_fixture(mut self, fixture: Option<Arc<Fixture>>) -> Self {
        self.fixture = fixture;
        self
    }

    fn replaying(&self) -> Option<Arc<Fixture>> {
        self.fixture.clone().filter(|f| f.replaying())
    }

    fn recording(&self) -> Option<Arc<Fixture>> {
        self.fixture.clone().filter(|f| f.recording())
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
        if let Some(fixture) = self.ctx.replaying() {
            return Ok(fixture.docker_containers(all, &grant));
        }
        let answer = list_containers(&self.ctx.engine, &grant, all, self.deadline).await;
        if let Some(fixture) = self.ctx.recording() {
            fixture.record_docker_containers(&answer);
        }
        Ok(answer)
    }

    async fn inspect_container(&mut self, id: String) -> Answer<ContainerDetails> {
        let grant = match self.ctx.grant() {
            Ok(grant) => grant,
            Err(err) => return Ok(Err(err)),
        };
        if let Some(fixture) = self.ctx.replaying() {
            return Ok(fixture.docker_inspect(&id, &grant));
        }
        let answer = inspect(&self.ctx.engine, &id, &grant, self.deadline).await;
        if let Some(fixture) = self.ctx.recording() {
            fixture.record_docker_inspect(&answer);
        }
        Ok(answer)
    }

    async fn list_images(&mut self) -> Answer<Vec<Image>> {
        let grant = match self.ctx.grant() {
            Ok(grant) => grant,
            Err(err) => return Ok(Err(err)),
        };
        if let Some(fixture) = self.ctx.replaying() {
            return Ok(fixture.docker_images(&grant));
        }
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
        let answer = result.await;
        if let Some(fixture) = self.ctx.recording() {
            fixture.record_docker_images(&answer);
        }
        Ok(answer)
    }

    async fn get(&mut self, path: String) -> Answer<String> {
        let grant = match self.ctx.grant() {
            Ok(grant) => grant,
            Err(err) => return Ok(Err(err)),
        };
        let raw = match RawPath::parse(&path).and_then(|raw| check_raw_path(&raw, grant.is_scoped()).map(|()| raw)) {
            Ok(raw) => raw,
            Err(why) => return Ok(Err(refusal(&path, why))),
        };
        if let Some(fixture) = self.ctx.replaying() {
            return Ok(fixture.docker_get(&raw.to_string()));
        }
        let result = async {
            // What was checked is what is sent: the normalised path.
            let body = self.ctx.engine.get(&raw.to_string(), self.deadline).await?;
            if raw.is_inspect() {
                return without_environment(&body);
            }
            String::from_utf8(body.to_vec()).map_err(|_| DockerError::Failed("answer is not UTF-8".into()))
        };
        let answer = result.await;
        if let Some(fixture) = self.ctx.recording() {
            fixture.record_docker_get(&raw.to_string(), &answer);
        }
        Ok(answer)
    }
}

/// A refused raw path: the guest's text quoted, cut short, without line breaks.
fn refusal(path: &str, why: &str) -> DockerError {
    DockerError::Denied(format!("`{}`: {why}", escape_controls(path, 200)))
}

/// A Docker error as a sentence, for messages people read.
pub fn describe(err: &DockerError) -> String {
    match err {
        DockerError::Unavailable(why) => format!("Docker Engine unavailable: {why}"),
        DockerError::Timeout => "Docker Engine did not answer in time".into(),
        DockerError::NotFound(what) => format!("not found: {what}"),
        DockerError::Denied(why) => format!("denied: {why}"),
        DockerError::Failed(why) => format!("Docker Engine error: {why}"),
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
    let not_found = || DockerError::NotFound(format!("no container `{}`", escape_controls(id, 200)));
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

/// A raw GET's path, normalised before anything is decided about it:
/// percent-escapes decoded, empty and `.` segments dropped (so `//`, trailing
/// slashes and `/./` change nothing), `..` refused. The allow-list and the
/// environment stripping look at these segments, and exactly these are sent,
/// so no spelling of a path can pass as another.
#[derive(Debug, PartialEq)]
pub struct RawPath {
    segments: Vec<String>,
    query: String,
}

/// Longest raw path a plugin may ask for (filters must be percent-encoded).
const MAX_RAW_PATH: usize = 2048;

impl RawPath {
    /// Parses and normalises a guest's raw GET path (see the type's doc).
    pub fn parse(path: &str) -> Result<RawPath, &'static str> {
        const MALFORMED: &str = "malformed path: plain `/segment/...` with an optional query";
        let (path_part, query) = path.split_once('?').unwrap_or((path, ""));
        if path.len() > MAX_RAW_PATH
            || !path_part.starts_with('/')
            || !query.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.~=&%+,:-".contains(&b))
        {
            return Err(MALFORMED);
        }
        let decoded = percent_decode(path_part).ok_or(MALFORMED)?;
        let mut segments = Vec::new();
        for segment in decoded.split('/') {
            match segment {
                "" | "." => {}
                ".." => return Err("`..` is not allowed in a path"),
                // `:` and `@` only ever pass in image references (`name:tag`, `name@digest`).
                _ if segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-:@".contains(&b)) => {
                    segments.push(segment.to_owned())
                }
                _ => return Err(MALFORMED),
            }
        }
        Ok(RawPath { segments, query: query.to_owned() })
    }

    /// Container and image inspects, by the path's shape alone: the engine
    /// routes `/containers/{name:.*}/json` and `/images/{name:.*}/json`, so
    /// whatever stands between (even `json`) names one container or image.
    pub fn is_inspect(&self) -> bool {
        matches!(self.segments.iter().map(String::as_str).collect::<Vec<_>>().as_slice(),
            ["containers" | "images", _, .., "json"])
    }
}

impl std::fmt::Display for RawPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for segment in &self.segments {
            write!(f, "/{segment}")?;
        }
        if self.segments.is_empty() {
            f.write_str("/")?;
        }
        if !self.query.is_empty() {
            write!(f, "?{}", self.query)?;
        }
        Ok(())
    }
}

/// `%XX` escapes decoded; `None` if one is malformed or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A container's environment holds its secrets (passwords, tokens), and an
/// image's environment is what its containers start with: a raw inspect never
/// shows either, as procfs never shows `environ` without its grant.
pub fn without_environment(body: &[u8]) -> Result<String, DockerError> {
    let mut value: serde_json::Value = parse(body)?;
    for config in ["Config", "ContainerConfig"] {
        if let Some(config) = value.get_mut(config).and_then(|c| c.as_object_mut()) {
            config.remove("Env");
        }
    }
    Ok(value.to_string())
}

/// Container IDs and names: what the engine accepts in `/containers/{id}`.
fn is_name_or_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Image IDs (`sha256:<hex>`, or the hex alone), names and references
/// (`registry:5000/team/app:tag`, `app@sha256:...`), as segments.
fn is_image_reference(segments: &[&str]) -> bool {
    (1..=8).contains(&segments.len()) && segments.iter().all(|s| s.len() <= 255)
}

/// Read-only Engine paths a plugin may GET raw. Everything else (creating,
/// killing, exec, attach, archives, logs, secrets, ...) is refused.
pub fn check_raw_path(path: &RawPath, scoped: bool) -> Result<(), &'static str> {
    let query = path.query.as_str();
    let segments: Vec<&str> = path.segments.iter().map(String::as_str).collect();
    // Scoped plugins see only their own containers: lists and inspects go
    // through the typed calls, which filter.
    let allowed = match segments.as_slice() {
        ["version"] | ["_ping"] => true,
        _ if scoped => return Err("a plugin scoped by labels may only use the typed calls (and /version)"),
        ["info"] | ["images", "json"] | ["containers", "json"] | ["networks"] | ["volumes"] => true,
        ["containers", id, "json"] | ["networks", id] => is_name_or_id(id),
        ["images", reference @ .., "json"] => is_image_reference(reference),
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
            created: u64::try_from(self.created).unwrap_or(0).saturating_mul(1000),
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
            created: u64::try_from(self.created).unwrap_or(0).saturating_mul(1000),
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

    fn check(path: &str, scoped: bool) -> Result<(), &'static str> {
        check_raw_path(&RawPath::parse(path)?, scoped)
    }

    #[test]
    fn only_read_only_paths_pass() {
        for path in [
            "/version",
            "/info",
            "/containers/json?all=1",
            "/containers/abc123/json",
            "/containers/json/json",
            "/containers/web-1/top",
            "/containers/abc/stats?stream=false",
            "/images/json",
            "/images/sha256:0123abcd/json",
            "/images/registry.local:5000/team/app:1.2/json",
            "/images/app@sha256:0123abcd/json",
        ] {
            assert_eq!(check(path, false), Ok(()), "{path}");
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
            "/containers/a:b/json",
            "/images/abc/history",
            "/images/abc/get",
            "/version?<",
            "/version?a\"b",
            "/containers/../../etc/json",
            "/containers/%2e%2e/json",
            "/containers/%2E%2e/%2e%2E/info",
            "/containers/abc%2fkill",
            "/containers/abc/%6bill",
            "/containers/abc%0a/json",
            "/containers/abc%/json",
            "/containers/abc%+a/json",
            "/containers/abc%c3/json",
            "/secrets",
            "/swarm/unlockkey",
            "containers/json",
            "/containers/json#x",
            "/containers/json%23x",
            "/build",
            "/",
        ] {
            assert!(check(path, false).is_err(), "{path} should be refused");
        }
        assert!(check(&format!("/version?{}", "a".repeat(70_000)), false).is_err());
        assert!(check("/containers/json", true).is_err(), "scoped plugins use the typed calls");
        assert_eq!(check("/version", true), Ok(()));
    }

    #[test]
    fn paths_are_normalised_before_anything_is_decided() {
        let inspect = "/containers/json/json";
        for spelling in [
            "/containers/json/json",
            "//containers//json/json/",
            "/containers/./json/./json",
            "/containers/%6Aso%6e/json",
            "/%63ontainers/json%2Fjson",
        ] {
            let raw = RawPath::parse(spelling).unwrap();
            assert_eq!(raw.to_string(), inspect, "{spelling}");
            assert!(raw.is_inspect(), "{spelling}");
        }
        let raw = RawPath::parse("/containers/json/json?size=1").unwrap();
        assert_eq!((raw.to_string().as_str(), raw.is_inspect()), ("/containers/json/json?size=1", true));
        for image in ["/images/abc/json", "/images/sha256:abc/json", "/images/team/app:1/json", "/images/json/json"] {
            assert!(RawPath::parse(image).unwrap().is_inspect(), "{image}");
        }
        for other in ["/containers/json", "/images/json", "/containers/abc/top", "/networks/json", "/version"] {
            assert!(!RawPath::parse(other).unwrap().is_inspect(), "{other}");
        }
    }

    #[test]
    fn raw_inspects_lose_the_environment() {
        let body = br#"{"Id":"abc","Config":{"Env":["PASSWORD=hunter2"],"Image":"x"}}"#;
        let text = without_environment(body).unwrap();
        assert!(!text.contains("hunter2") && text.contains("\"Image\":\"x\""), "{text}");
        let image = br#"{"Id":"sha256:1","Config":{"Env":["TOKEN=t1"]},"ContainerConfig":{"Env":["TOKEN=t2"],"Cmd":["sh"]}}"#;
        let text = without_environment(image).unwrap();
        assert!(!text.contains("TOKEN") && text.contains("\"Cmd\":[\"sh\"]"), "{text}");
        assert!(without_environment(b"not json").is_err(), "an unreadable inspect is never passed through");
    }

    #[test]
    fn errors_quote_guest_text_without_its_controls() {
        let path = "/x\n2026 ERROR forged";
        let Err(why) = check(path, false) else { panic!("{path} passed") };
        let DockerError::Denied(text) = refusal(path, why) else { unreachable!() };
        assert_eq!(text, format!("`/x\\n2026 ERROR forged`: {why}"));
        assert_eq!(describe(&DockerError::Timeout), "Docker Engine did not answer in time");
        assert_eq!(describe(&DockerError::Denied("no".into())), "denied: no");
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
