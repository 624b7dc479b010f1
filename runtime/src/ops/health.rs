//! What the daemon knows about every plugin file, for the admin endpoint,
//! `scope-wasm status` and the daemon's own Scope plugin: state, last reload,
//! and the counters of the version serving.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::ops::stats::{PluginStats, StatsSnapshot};
use crate::plugin_id::PluginId;
use crate::run::quota::TenantQuota;

/// One line of the status table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PluginStatus {
    /// The plugin ID, or the file name of a refused file.
    pub id: String,
    pub file: String,
    /// The tenant that delivered the file (`default`: the operator's plugin directory).
    #[serde(default)]
    pub tenant: String,
    /// `serving`, `queued` or `compiling` (its first version loading), `failed`
    /// (never started) or `refused` (bad name, duplicate ID).
    pub state: String,
    /// For a serving plugin: `ok`, `slow`, `failing` or `over-limits`.
    pub health: String,
    pub label: String,
    /// The last problem: why it failed, why a new version was refused, ...;
    /// or how long a version has been queued or compiling.
    pub detail: String,
    /// Seconds a version has been queued or compiling, while it is.
    #[serde(default)]
    pub loading_s: Option<u64>,
    /// Seconds since the epoch of the last (re)load.
    pub loaded_at: Option<u64>,
    pub reloads: u64,
    pub budget_ms: u64,
    pub stats: StatsSnapshot,
    /// For a plugin pulled from a registry: where its pulls stand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceStatus>,
}

/// Where a plugin pulled from a registry stands.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SourceStatus {
    pub image: String,
    /// The manifest digest of the version last pulled, if any.
    pub digest: Option<String>,
    /// `pulling` (nothing pulled yet), `pulled`, or `failed` (the last pull).
    pub state: String,
    /// Why the last pull failed, while it stands.
    pub error: String,
    /// Seconds since the epoch of the last pull that brought a version.
    pub pulled_at: Option<u64>,
    /// Pulls that failed since the daemon started.
    pub failures: u64,
}

/// A plugin or file not yet known to be serving, failed or refused: `failed`
/// until a load says otherwise.
impl Default for Entry {
    fn default() -> Self {
        Self {
            file: String::new(),
            tenant: crate::config::tenants::DEFAULT_TENANT.into(),
            state: "failed",
            label: String::new(),
            detail: String::new(),
            loaded_at: None,
            reloads: 0,
            budget: Duration::ZERO,
            stats: Arc::default(),
            loading: None,
        }
    }
}

/// Where a load stands before its plugin can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadPhase {
    /// Waiting for a compile slot (smaller files go first).
    Queued,
    Compiling,
}

impl LoadPhase {
    pub fn name(self) -> &'static str {
        match self {
            LoadPhase::Queued => "queued",
            LoadPhase::Compiling => "compiling",
        }
    }
}

struct Entry {
    file: String,
    tenant: String,
    state: &'static str,
    label: String,
    detail: String,
    loaded_at: Option<SystemTime>,
    reloads: u64,
    budget: Duration,
    stats: Arc<PluginStats>,
    /// A version being loaded, and since when it is in that phase.
    loading: Option<(LoadPhase, std::time::Instant)>,
}

#[derive(Default)]
pub struct HealthBoard {
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Registry sources by plugin ID, with their tenant.
    sources: Mutex<BTreeMap<String, (String, SourceStatus)>>,
    tenants: Mutex<Vec<(Arc<TenantQuota>, Option<usize>)>>,
}

/// One tenant's share of the host, for `/status` and `/metrics`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TenantStatus {
    pub name: String,
    /// Plugins serving, and the most it may have.
    pub plugins: usize,
    pub max_plugins: Option<usize>,
    /// Linear memory of all its plugins, and its quota.
    pub memory_bytes: u64,
    pub memory_quota_bytes: Option<u64>,
    /// CPU time its calls took, and its share per second.
    pub cpu_seconds: f64,
    pub cpu_ms_per_s: Option<u64>,
    /// Calls answered `busy` because it had used its CPU share.
    pub over_quota_calls: u64,
}

impl HealthBoard {
    fn with_entry(&self, key: &str, file: &Path, update: impl FnOnce(&mut Entry)) {
        let mut entries = self.entries.lock().unwrap();
        let entry = entries.entry(key.to_owned()).or_default();
        entry.file = file.display().to_string();
        update(entry);
    }

    /// The counters a plugin's versions share, kept across reloads. Until its
    /// file is known (`with_entry`), the entry is hidden from the snapshot.
    pub fn stats_for(&self, id: &PluginId) -> Arc<PluginStats> {
        self.entries.lock().unwrap().entry(id.to_string()).or_default().stats.clone()
    }

    /// `stats`: the counters the serving version records into.
    pub fn serving(&self, id: &PluginId, file: &Path, label: &str, budget: Duration, stats: &Arc<PluginStats>) {
        self.with_entry(id.as_str(), file, |entry| {
            entry.stats = stats.clone();
            if entry.state == "serving" {
                entry.reloads += 1;
            }
            entry.state = "serving";
            entry.loading = None;
            entry.label = label.to_owned();
            entry.detail.clear();
            entry.loaded_at = Some(SystemTime::now());
            entry.budget = budget;
        });
    }

    /// The file is back to the version serving: nothing to report any more.
    pub fn clear_detail(&self, id: &PluginId) {
        if let Some(entry) = self.entries.lock().unwrap().get_mut(id.as_str()) {
            entry.detail.clear();
            entry.loading = None;
        }
    }

    /// A version of the plugin in `file` is queued for or in its compile. A
    /// plugin that serves keeps serving meanwhile; one that does not yet shows
    /// the phase as its state.
    pub fn loading(&self, id: &PluginId, file: &Path, phase: LoadPhase) {
        self.with_entry(id.as_str(), file, |entry| entry.loading = Some((phase, std::time::Instant::now())));
    }

    /// A load failed: a plugin that serves keeps serving, with the reason noted.
    pub fn failed(&self, id: &PluginId, file: &Path, detail: &str) {
        self.with_entry(id.as_str(), file, |entry| {
            entry.loading = None;
            if entry.state == "serving" {
                entry.detail = format!("new version refused: {detail}");
            } else {
                entry.state = "failed";
                entry.detail = detail.to_owned();
            }
        });
    }

    pub fn refused(&self, file: &Path, reason: &str) {
        let key = file.display().to_string();
        self.with_entry(&key, file, |entry| {
            entry.state = "refused";
            entry.detail = reason.to_owned();
        });
    }

    /// The plugin or file is gone.
    /// The tenant whose file the entry is about.
    pub fn set_tenant(&self, key: &str, tenant: &str) {
        if let Some(entry) = self.entries.lock().unwrap().get_mut(key) {
            entry.tenant = tenant.to_owned();
        }
    }

    /// The tenants' accounts as they are now, with their plugin quotas.
    pub fn set_tenants(&self, tenants: Vec<(Arc<TenantQuota>, Option<usize>)>) {
        *self.tenants.lock().unwrap() = tenants;
    }

    pub fn tenants(&self) -> Vec<TenantStatus> {
        let entries = self.entries.lock().unwrap();
        let tenants = self.tenants.lock().unwrap();
        tenants
            .iter()
            .map(|(quota, max_plugins)| {
                let limits = quota.limits();
                TenantStatus {
                    name: quota.tenant.clone(),
                    plugins: entries.values().filter(|e| e.state == "serving" && e.tenant == quota.tenant).count(),
                    max_plugins: *max_plugins,
                    memory_bytes: quota.memory_used() as u64,
                    memory_quota_bytes: limits.memory_bytes.map(|b| b as u64),
                    cpu_seconds: quota.cpu_used().as_secs_f64(),
                    cpu_ms_per_s: limits.cpu_ms_per_s,
                    over_quota_calls: quota.over_quota_calls(),
                }
            })
            .collect()
    }

    /// How the pulls of source `id` (of `tenant`) stand now.
    pub fn set_source(&self, id: &PluginId, tenant: &str, status: SourceStatus) {
        self.sources.lock().unwrap().insert(id.to_string(), (tenant.to_owned(), status));
    }

    /// The source `id` is no longer configured.
    pub fn remove_source(&self, id: &PluginId) {
        self.sources.lock().unwrap().remove(id.as_str());
    }

    pub fn remove(&self, key: &str) {
        self.entries.lock().unwrap().remove(key);
    }

    /// Forgets refused and failed files that are no longer there.
    pub fn retain_files(&self, present: impl Fn(&str) -> bool) {
        // An entry without a file is a plugin being loaded for the first time.
        self.entries
            .lock()
            .unwrap()
            .retain(|_, entry| entry.state == "serving" || entry.file.is_empty() || present(&entry.file));
    }

    pub fn snapshot(&self) -> Vec<PluginStatus> {
        let entries = self.entries.lock().unwrap();
        let sources = self.sources.lock().unwrap();
        let mut rows: Vec<PluginStatus> = entries
            .iter()
            .filter(|(_, entry)| !entry.file.is_empty())
            .map(|(key, entry)| {
                let stats = entry.stats.snapshot();
                let (mut state, mut detail) = (entry.state.to_owned(), entry.detail.clone());
                let loading = entry.loading.map(|(phase, since)| (phase, since.elapsed().as_secs()));
                if let Some((phase, secs)) = loading {
                    if entry.state == "serving" {
                        detail = format!("new version {} for {secs} s", phase.name());
                    } else {
                        state = phase.name().to_owned();
                        detail = format!("{} for {secs} s", phase.name());
                    }
                }
                let health = health(entry, &stats);
                // A plugin failing its calls says why, unless a load has news.
                if health == "failing" && detail.is_empty() {
                    detail = stats.last_error.clone().unwrap_or_default();
                }
                let source = sources.get(key).map(|(_, source)| source.clone());
                if let Some(source) = source.as_ref().filter(|s| !s.error.is_empty() && entry.state == "serving") {
                    if detail.is_empty() {
                        detail = format!("the last pull failed, the version pulled before serves: {}", source.error);
                    }
                }
                PluginStatus {
                    id: key.clone(),
                    file: entry.file.clone(),
                    tenant: entry.tenant.clone(),
                    health: health.to_owned(),
                    state,
                    label: entry.label.clone(),
                    detail,
                    loading_s: loading.map(|(_, secs)| secs),
                    loaded_at: entry.loaded_at.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map(|d| d.as_secs()),
                    reloads: entry.reloads,
                    budget_ms: entry.budget.as_millis() as u64,
                    stats,
                    source,
                }
            })
            .collect();
        // Sources with nothing loaded yet: pulling, or failing to.
        for (id, (tenant, source)) in sources.iter() {
            if rows.iter().any(|row| row.id == *id) {
                continue;
            }
            let failed = !source.error.is_empty();
            rows.push(PluginStatus {
                id: id.clone(),
                file: source.image.clone(),
                tenant: tenant.clone(),
                state: if failed { "failed" } else { "pulling" }.into(),
                health: "down".into(),
                label: String::new(),
                detail: if failed { format!("pull failed: {}", source.error) } else { format!("pulling {}", source.image) },
                loading_s: None,
                loaded_at: None,
                reloads: 0,
                budget_ms: 0,
                stats: StatsSnapshot::default(),
                source: Some(source.clone()),
            });
        }
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        rows
    }
}

/// At a glance: how the plugin's recent calls went.
fn health(entry: &Entry, stats: &StatsSnapshot) -> &'static str {
    if entry.state != "serving" {
        return "down";
    }
    if stats.recent_calls > 0 && stats.recent_failures * 2 >= stats.recent_calls {
        "failing"
    } else if stats.recent_limit_hits > 0 {
        "over-limits"
    } else if stats.p99_ms * 2.0 > entry.budget.as_secs_f64() * 1000.0 && !entry.budget.is_zero() {
        "slow"
    } else {
        "ok"
    }
}
