//! Keeps the served plugins in line with the plugin directory while the daemon
//! runs: a new file is loaded and gets its socket, a changed file is reloaded
//! beside the running version and swapped in only if it works, a deleted file
//! loses its socket.
//!
//! The directory is the truth: every change (a watcher hint or the periodic
//! rescan) leads to a full scan compared with what is served. Loads run in the
//! background (the runtime bounds their compiles), holding at most
//! `LOADING_BUDGET_KIB` of plugin bytes in memory at once; their outcomes come
//! back here, so all state changes happen on this one task.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::RunConfig;
use crate::config::policy::PluginPolicy;
use crate::config::tenants::Tenancy;
use crate::host::HostServices;
use crate::load::compile_cache::Origin;
use crate::load::content_hashes::{FileIdentity, KnownContent};
use crate::load::loader::{CompiledPlugin, PluginSource};
use crate::load::plugin_dir::{self, FileStamp, PluginFile};
use crate::load::registry::SourceStore;
use crate::load::watcher::Hint;
use crate::ops::health::{HealthBoard, LoadPhase};
use crate::ops::stats::PluginStats;
use crate::plugin_id::PluginId;
use crate::run::engine::Runtime;
use crate::run::error::CallError;
use crate::run::quota::{QuotaHandle, TenantQuota};
use crate::run::worker::PluginHandle;
use crate::serve::{server, sockets};

/// After a watcher hint, further hints are collected this long before one
/// scan: copying a file makes many events. Short, because it adds to every
/// deploy; a scan of hundreds of files costs well under a millisecond.
const DEBOUNCE: Duration = Duration::from_millis(5);

/// Plugin bytes read and held by loads at once, in KiB: a load holds its file
/// until it is compiled, and a start with many large plugins must not read them
/// all into memory together. Twice the largest file a load reads
/// (`MAX_PLUGIN_FILE_BYTES`), so small files rarely wait behind large ones.
const LOADING_BUDGET_KIB: u32 = 256 << 10;

/// A version that failed to start for time alone (see `CallError::is_lateness`)
/// is tried again after this, doubling up to `START_RETRY_MAX`: a host busy
/// while a hundred plugins start must not refuse healthy ones for good, and a
/// guest slow on purpose costs one budget a minute.
const START_RETRY_FIRST: Duration = Duration::from_secs(1);
const START_RETRY_MAX: Duration = Duration::from_secs(60);

/// A version to load again once `at` has passed, unless its file changes first.
struct Retry {
    stamp: FileStamp,
    at: Instant,
    attempts: u32,
}

/// A plugin being served.
struct Served {
    path: PathBuf,
    /// The tenant it was loaded for, and with what policy.
    tenant: String,
    policy: PluginPolicy,
    stamp: FileStamp,
    /// SHA-256 of the running version's bytes.
    hash: String,
    /// SHA-256 of what of them was compiled (`loader::PluginSource::code_hash`).
    code_hash: String,
    current: watch::Sender<Arc<PluginHandle>>,
    socket: PathBuf,
    server: tokio::task::JoinHandle<()>,
}

/// What a background load came back with.
enum Loaded {
    Started { handle: Arc<PluginHandle>, hash: String, code_hash: String, origin: Origin, took: Duration, tenant: String, policy: PluginPolicy },
    /// Same bytes as the running version (e.g. `touch`): nothing to swap.
    Unchanged,
    /// The file changed while it was read: scan again.
    FileChanged,
}

struct LoadOutcome {
    id: PluginId,
    path: PathBuf,
    stamp: FileStamp,
    /// The policy the version was loaded under.
    policy: PluginPolicy,
    result: Result<Loaded>,
}

pub struct Supervisor {
    config: Arc<RunConfig>,
    /// Who may deliver what; replaced when the config is reloaded.
    tenancy: Arc<Tenancy>,
    reloads: Option<watch::Receiver<Arc<Tenancy>>>,
    /// Each tenant's account, by name, kept across reloads (limits change in place).
    quotas: BTreeMap<String, Arc<TenantQuota>>,
    /// Tenant directories that could not be read at the last scan.
    unreadable: HashSet<String>,
    runtime: Arc<Runtime>,
    services: Arc<HostServices>,
    health: Arc<HealthBoard>,
    /// `LOADING_BUDGET_KIB`, for loads to take their file's size from.
    loading_budget: Arc<Semaphore>,
    served: BTreeMap<PluginId, Served>,
    /// Loads in flight: file, the version being loaded, and the task.
    loading: HashMap<PathBuf, (FileStamp, tokio::task::Id)>,
    loads: JoinSet<LoadOutcome>,
    /// Versions that failed to load; tried again only once the file changes.
    failed: HashMap<PathBuf, FileStamp>,
    /// Versions that failed to start in time, and when to try them again.
    retries: HashMap<PathBuf, Retry>,
    /// Plugins starting at once (instantiate, describe, first report): one per
    /// guest thread, so a hundred new plugins do not all wait out their budget
    /// for a turn on the same threads.
    starts: Arc<Semaphore>,
    /// Files refused for their name or a taken ID, with the reason, logged once.
    refused: HashMap<PathBuf, String>,
    /// Files a writer closed or renamed into place since the last scan.
    complete: HashSet<PathBuf>,
    /// When to scan again: the periodic rescan, or sooner when a file settles.
    next_scan: Instant,
    scan_failing: bool,
    /// Where pulled registry sources are placed, read like a plugin directory.
    sources: Option<SourceStore>,
}

impl Supervisor {
    pub fn new(config: Arc<RunConfig>, runtime: Arc<Runtime>, services: Arc<HostServices>, health: Arc<HealthBoard>) -> Self {
        let tenancy = config.tenancy.clone();
        let mut supervisor = Self {
            tenancy: tenancy.clone(),
            reloads: None,
            quotas: BTreeMap::new(),
            unreadable: HashSet::new(),
            config,
            runtime,
            services,
            health,
            loading_budget: Arc::new(Semaphore::new(LOADING_BUDGET_KIB as usize)),
            served: BTreeMap::new(),
            loading: HashMap::new(),
            loads: JoinSet::new(),
            failed: HashMap::new(),
            retries: HashMap::new(),
            starts: Arc::new(Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))),
            refused: HashMap::new(),
            complete: HashSet::new(),
            next_scan: Instant::now(),
            scan_failing: false,
            sources: None,
        };
        supervisor.set_tenancy(tenancy);
        supervisor
    }

    /// Tenancies to switch to as the config file changes.
    pub fn with_reloads(mut self, reloads: watch::Receiver<Arc<Tenancy>>) -> Self {
        self.reloads = Some(reloads);
        self
    }

    /// Registry sources are placed in `store`.
    pub fn with_sources(mut self, store: SourceStore) -> Self {
        self.sources = Some(store);
        self
    }

    fn is_pulled(&self, path: &Path) -> bool {
        self.sources.as_ref().is_some_and(|store| path.starts_with(&store.root))
    }

    /// From now on, `tenancy` decides; the next scan brings the served plugins in line.
    fn set_tenancy(&mut self, tenancy: Arc<Tenancy>) {
        let mut quotas = BTreeMap::new();
        for tenant in &tenancy.tenants {
            let quota = match self.quotas.remove(&tenant.name) {
                Some(quota) => {
                    quota.set_limits(tenant.quota);
                    quota
                }
                None => Arc::new(TenantQuota::new(&tenant.name, tenant.quota)),
            };
            quotas.insert(tenant.name.clone(), quota);
        }
        self.quotas = quotas;
        let accounts = tenancy.tenants.iter().map(|t| (self.quotas[&t.name].clone(), t.max_plugins)).collect();
        self.health.set_tenants(accounts);
        // What failed or was refused under the old rules may pass the new ones.
        self.failed.clear();
        self.retries.clear();
        self.refused.clear();
        self.tenancy = tenancy;
    }

    /// The policy of `id` delivered by tenant number `tenant`, with its account.
    fn policy_for(&self, tenant: usize, id: &PluginId) -> PluginPolicy {
        let mut policy = self.tenancy.policy(tenant, id);
        policy.quota = QuotaHandle(self.quotas.get(&self.tenancy.tenants[tenant].name).cloned());
        policy
    }

    /// Serves until `shutdown` completes, then closes and removes every socket.
    pub async fn run(mut self, mut hints: Option<mpsc::Receiver<Hint>>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(hint) = next_hint(&mut hints) => {
                    self.take_hint(hint);
                    let until = Instant::now() + DEBOUNCE;
                    while let Ok(Some(hint)) = tokio::time::timeout_at(until, next_hint(&mut hints)).await {
                        self.take_hint(hint);
                    }
                    self.scan();
                }
                Some(done) = self.loads.join_next_with_id() => match done {
                    Ok((_, outcome)) => self.apply(outcome).await,
                    Err(err) => self.load_panicked(err),
                },
                // A registry source was placed or removed.
                _ = source_changed(&self.sources) => self.scan(),
                Some(tenancy) = next_reload(&mut self.reloads) => {
                    self.set_tenancy(tenancy);
                    self.scan();
                }
                _ = tokio::time::sleep_until(self.next_scan) => self.scan(),
            }
        }
        self.shutdown();
    }

    fn take_hint(&mut self, hint: Hint) {
        if let Hint::Complete(path) = hint {
            self.complete.insert(path);
        }
    }

    /// Compares the directories with what is served and starts what must change.
    fn scan(&mut self) {
        let now = Instant::now();
        self.next_scan = now + self.config.rescan_interval;
        let Some(files) = self.scan_dirs() else { return };
        let tenancy = self.tenancy.clone();
        let present: HashSet<PathBuf> = files.iter().map(|(_, f)| f.path.clone()).collect();
        let mut by_id: BTreeMap<PluginId, Vec<(usize, PluginFile)>> = BTreeMap::new();
        for (tenant, file) in files {
            match PluginId::from_wasm_path(&file.path) {
                Ok(id) if self.config.self_plugin && id.as_str() == crate::ops::self_plugin::SELF_ID => {
                    let reason = format!("refusing {}: the ID {id} is the daemon's own plugin", file.path.display());
                    self.refuse(tenant, &file.path, reason);
                }
                Ok(id) if !self.is_pulled(&file.path) && tenancy.tenants.iter().any(|t| t.sources.contains_key(&id)) => {
                    let reason = format!(
                        "refusing {}: plugin ID {id} comes from a registry source in the config (rule: source)",
                        file.path.display()
                    );
                    self.refuse(tenant, &file.path, reason);
                }
                Ok(id) => by_id.entry(id).or_default().push((tenant, file)),
                Err(err) => self.refuse(tenant, &file.path, format!("{err:#}")),
            }
        }

        // One file per ID: the reserving tenant's, else the one serving, else
        // the operator's, else the first by path.
        let mut admitted: Vec<(PluginId, usize, PluginFile)> = Vec::new();
        for (id, mut files) in by_id {
            let reserved = tenancy.reserved_by(&id);
            let serving = self.served.get(&id).map(|served| served.path.clone());
            files.sort_by_key(|(tenant, file)| {
                (reserved.is_some_and(|r| r != *tenant), serving.as_ref() != Some(&file.path), *tenant != 0, file.path.clone())
            });
            let winner = files.first().filter(|(tenant, _)| reserved.is_none_or(|r| r == *tenant)).map(|(t, f)| (*t, f.path.clone()));
            for (tenant, file) in &files {
                if winner.as_ref().is_some_and(|(_, path)| *path == file.path) {
                    continue;
                }
                let reason = match (&winner, reserved) {
                    (_, Some(owner)) if owner != *tenant => format!(
                        "refusing {}: plugin ID {id} belongs to tenant {} (it has a section for it in the config) (rule: reserved ID)",
                        file.path.display(),
                        tenancy.tenants[owner].name
                    ),
                    (Some((owner, path)), _) if owner != tenant => format!(
                        "refusing {}: plugin ID {id} is claimed by tenant {}, which serves it from {} (rule: claimed ID)",
                        file.path.display(),
                        tenancy.tenants[*owner].name,
                        path.display()
                    ),
                    (Some((_, path)), _) => {
                        format!("refusing {}: plugin ID {id} is already taken by {}", file.path.display(), path.display())
                    }
                    (None, _) => format!("refusing {}: plugin ID {id} cannot be served", file.path.display()),
                };
                self.refuse(*tenant, &file.path, reason);
            }
            if let Some((tenant, _)) = winner {
                let file = files.swap_remove(0).1;
                admitted.push((id, tenant, file));
            }
        }

        // The tenant's rules for its files, then its plugin quota: those
        // serving first, then by path.
        admitted.retain(|(id, tenant, file)| self.passes_rules(id, *tenant, file));
        admitted.sort_by_key(|(id, tenant, file)| (*tenant, self.served.get(id).is_none_or(|s| s.path != file.path), file.path.clone()));
        let mut counts: HashMap<usize, usize> = HashMap::new();
        admitted.retain(|(_, tenant, file)| {
            let count = counts.entry(*tenant).or_default();
            *count += 1;
            match tenancy.tenants[*tenant].max_plugins {
                Some(max) if *count > max => {
                    let reason = format!(
                        "refusing {}: the tenant's quota of {max} plugins is full (rule: max_plugins)",
                        file.path.display()
                    );
                    self.refuse(*tenant, &file.path, reason);
                    false
                }
                _ => true,
            }
        });

        let keep: HashMap<&PluginId, &Path> = admitted.iter().map(|(id, _, file)| (id, file.path.as_path())).collect();
        let gone: Vec<PluginId> = self
            .served
            .iter()
            // A tenant whose directory could not be read keeps what it serves.
            .filter(|(id, served)| keep.get(id) != Some(&served.path.as_path()) && !self.unreadable.contains(&served.tenant))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            self.remove(&id);
        }

        for (id, tenant, file) in admitted {
            if self.refused.remove(&file.path).is_some() {
                // Refused before (e.g. its ID was taken): no longer.
                self.health.remove(&file.path.display().to_string());
            }
            self.consider(id, tenant, &file, now);
        }

        self.health.retain_files(|file| present.contains(Path::new(file)));
        self.failed.retain(|path, _| present.contains(path));
        self.retries.retain(|path, _| present.contains(path));
        self.refused.retain(|path, _| present.contains(path));
        self.complete.clear();
    }

    /// Every plugin file with the number of the tenant whose directory holds
    /// it; `None` if the plugin directory itself cannot be read.
    fn scan_dirs(&mut self) -> Option<Vec<(usize, PluginFile)>> {
        let tenancy = self.tenancy.clone();
        let mut all = Vec::new();
        for (index, tenant) in tenancy.tenants.iter().enumerate() {
            let dir = if index == 0 { &self.config.plugin_dir } else { &tenant.dir };
            match plugin_dir::scan(dir) {
                Ok(files) => {
                    if index == 0 {
                        self.scan_failing = false;
                    } else if self.unreadable.remove(&tenant.name) {
                        tracing::info!(tenant = %tenant.name, dir = %dir.display(), "tenant directory readable again");
                    }
                    // Files under a tenant's directory inside plugin_dir come with that tenant's scan.
                    all.extend(files.into_iter().filter(|f| tenancy.tenant_of(&f.path) == index).map(|f| (index, f)));
                }
                // Keep serving what we have: an unreadable directory (e.g. a
                // remount) is not an instruction to remove every plugin.
                Err(err) if index == 0 => {
                    if !std::mem::replace(&mut self.scan_failing, true) {
                        tracing::error!("{err:#}; plugins keep running as they are");
                    }
                    return None;
                }
                Err(err) => {
                    if self.unreadable.insert(tenant.name.clone()) {
                        tracing::error!(tenant = %tenant.name, "tenant {}: {err:#}; its plugins keep running as they are", tenant.name);
                    }
                }
            }
        }
        // Pulled sources: each tenant's own, of the IDs it is configured to pull.
        if let Some(store) = &self.sources {
            for (index, tenant) in tenancy.tenants.iter().enumerate().filter(|(_, t)| !t.sources.is_empty()) {
                if let Ok(files) = plugin_dir::scan(&store.tenant_dir(&tenant.name)) {
                    let own = files.into_iter().filter(|f| PluginId::from_wasm_path(&f.path).is_ok_and(|id| tenant.sources.contains_key(&id)));
                    all.extend(own.map(|f| (index, f)));
                }
            }
        }
        Some(all)
    }

    /// Whether the file may serve `id` for `tenant`: a new version must pass
    /// the tenant's file rules (checked before it is read); a version serving
    /// must still have content its pin allows.
    fn passes_rules(&mut self, id: &PluginId, tenant: usize, file: &PluginFile) -> bool {
        let served = self.served.get(id).filter(|served| served.path == file.path);
        let refusal = match served {
            Some(served) if served.stamp == file.stamp => {
                let policy = self.policy_for(tenant, id);
                self.tenancy.content_refusal(tenant, id, &policy, &served.hash)
            }
            // The daemon placed a pulled file itself, after its checks.
            _ if self.is_pulled(&file.path) => None,
            _ => self.tenancy.tenants[tenant].file_refusal(&file.path),
        };
        match refusal {
            Some(reason) => {
                self.refuse(tenant, &file.path, format!("refusing {}: {reason}", file.path.display()));
                false
            }
            None => true,
        }
    }

    /// Logs once (per reason) why the file is not served, naming its tenant.
    fn refuse(&mut self, tenant: usize, path: &Path, reason: String) {
        let name = &self.tenancy.tenants[tenant].name;
        let reason = if self.tenancy.tenants.len() > 1 { format!("tenant {name}: {reason}") } else { reason };
        if self.refused.get(path) != Some(&reason) {
            tracing::error!(tenant = %name, file = %path.display(), "{reason}");
            crate::ops::daemon_stats::file_refused();
            self.health.refused(path, &reason);
            self.health.set_tenant(&path.display().to_string(), name);
            self.refused.insert(path.to_owned(), reason);
        }
    }

    /// Starts loading `file` if it holds a version not yet served, tried or
    /// being loaded, and its contents are complete.
    /// A plugin serving whose policy changed (a config reload) is loaded again
    /// with the new one.
    fn consider(&mut self, id: PluginId, tenant: usize, file: &PluginFile, now: Instant) {
        let policy = self.policy_for(tenant, &id);
        let tenant_name = self.tenancy.tenants[tenant].name.clone();
        let served = self.served.get(&id).filter(|served| served.path == file.path);
        let same_rules = served.is_some_and(|served| served.policy == policy && served.tenant == tenant_name);
        if served.is_some_and(|served| served.stamp == file.stamp) && same_rules
            || self.failed.get(&file.path) == Some(&file.stamp)
            || self.loading.contains_key(&file.path)
        {
            return;
        }
        if let Some(retry) = self.retries.get(&file.path).filter(|retry| retry.stamp == file.stamp && retry.at > now) {
            self.next_scan = self.next_scan.min(retry.at);
            return;
        }
        // A file still being written is never loaded: it must be closed by its
        // writer, renamed into place, or left untouched for the settle time.
        let quiet_for = file.stamp.quiet_for();
        // (A pulled file is always complete: it was renamed into place.)
        if !self.complete.contains(&file.path) && !self.is_pulled(&file.path) && quiet_for < self.config.settle {
            self.next_scan = self.next_scan.min(now + (self.config.settle - quiet_for));
            return;
        }
        // Only a version with the same rules may be kept for the same bytes.
        let running_hash = served.filter(|_| same_rules).map(|served| served.hash.clone());
        let job = LoadJob {
            runtime: self.runtime.clone(),
            budget: self.loading_budget.clone(),
            starts: self.starts.clone(),
            services: self.services.clone(),
            stats: self.health.stats_for(&id),
            health: self.health.clone(),
            content: ContentRules { tenancy: self.tenancy.clone(), tenant },
            tenant: tenant_name,
            policy,
            id: id.clone(),
            path: file.path.clone(),
            stamp: file.stamp,
            running_hash,
        };
        self.health.set_tenant(id.as_str(), &self.tenancy.tenants[tenant].name);
        let task = self.loads.spawn(job.run());
        self.loading.insert(file.path.clone(), (file.stamp, task.id()));
    }

    async fn apply(&mut self, outcome: LoadOutcome) {
        self.apply_outcome(outcome).await;
        // Whatever happened, code no served version uses can go.
        self.forget_unused_code();
    }

    async fn apply_outcome(&mut self, outcome: LoadOutcome) {
        let LoadOutcome { id, path, stamp, policy: loaded_under, result } = outcome;
        self.loading.remove(&path);
        let serving_this_file = self.served.get(&id).is_some_and(|served| served.path == path);
        match result {
            Ok(Loaded::FileChanged) => self.next_scan = Instant::now(),
            Ok(Loaded::Unchanged) => {
                if let Some(served) = self.served.get_mut(&id).filter(|_| serving_this_file) {
                    served.stamp = stamp;
                    self.health.clear_detail(&id);
                }
            }
            Ok(Loaded::Started { handle, hash, code_hash, origin, took, tenant, policy }) => {
                self.failed.remove(&path);
                self.retries.remove(&path);
                if !path.exists() {
                    return; // deleted while it loaded; the next scan sees to the rest
                }
                if let Some(served) = self.served.get_mut(&id) {
                    if serving_this_file {
                        self.health.serving(&id, &path, &handle.info.label, handle.limits.call_budget, &handle.stats);
                        served.current.send_replace(handle);
                        served.stamp = stamp;
                        served.hash = hash;
                        served.code_hash = code_hash;
                        self.health.set_tenant(id.as_str(), &tenant);
                        served.tenant = tenant;
                        served.policy = policy;
                        tracing::info!(
                            plugin = %id, file = %path.display(), ?origin, took_ms = took.as_millis() as u64,
                            "reloaded: the new version serves from now on"
                        );
                    }
                    // Otherwise another file took the ID meanwhile; this load is dropped.
                    return;
                }
                self.open_socket(id, path, stamp, [hash, code_hash], handle, origin, took, tenant, policy).await;
            }
            Err(err) => {
                let err = match self.retry_if_late(&path, stamp, err) {
                    Ok(retry_note) => anyhow::anyhow!(retry_note),
                    Err(err) => {
                        self.failed.insert(path.clone(), stamp);
                        err
                    }
                };
                self.health.failed(&id, &path, &format!("{err:#}"));
                let old_rules = self.served.get(&id).is_some_and(|served| served.policy != loaded_under);
                if serving_this_file && old_rules {
                    // The running version's grants and limits are no longer in force
                    // (a config reload); it may not go on under them.
                    tracing::error!(
                        plugin = %id, file = %path.display(),
                        "cannot run under the new configuration, so it stops: {err:#}"
                    );
                    self.remove(&id);
                    self.health.failed(&id, &path, &format!("under the new configuration: {err:#}"));
                } else if serving_this_file {
                    tracing::error!(
                        plugin = %id, file = %path.display(),
                        "new version refused, the running version keeps serving: {err:#}"
                    );
                } else {
                    tracing::error!(plugin = %id, file = %path.display(), "{err:#}");
                }
            }
        }
    }

    /// Schedules another try of a version that failed for time alone, and
    /// says so; any other error is given back.
    fn retry_if_late(&mut self, path: &Path, stamp: FileStamp, err: anyhow::Error) -> Result<String, anyhow::Error> {
        if !err.downcast_ref::<CallError>().is_some_and(CallError::is_lateness) {
            return Err(err);
        }
        let attempts = self.retries.get(path).filter(|retry| retry.stamp == stamp).map_or(0, |retry| retry.attempts) + 1;
        let wait = START_RETRY_FIRST.saturating_mul(1 << (attempts - 1).min(6)).min(START_RETRY_MAX);
        let at = Instant::now() + wait;
        self.retries.insert(path.to_owned(), Retry { stamp, at, attempts });
        self.next_scan = self.next_scan.min(at);
        Ok(format!("{err:#}; it could not start in time (a busy host, or a slow guest): trying again in {} s", wait.as_secs()))
    }

    #[allow(clippy::too_many_arguments)]
    async fn open_socket(
        &mut self,
        id: PluginId,
        path: PathBuf,
        stamp: FileStamp,
        [hash, code_hash]: [String; 2],
        handle: Arc<PluginHandle>,
        origin: Origin,
        took: Duration,
        tenant: String,
        policy: PluginPolicy,
    ) {
        let socket = sockets::socket_path(&self.config.socket_dir, &id);
        let listener = match sockets::bind(&socket, &self.config.socket_access).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::error!(plugin = %id, file = %path.display(), "{err:#}");
                self.health.failed(&id, &path, &format!("{err:#}"));
                self.failed.insert(path, stamp);
                return;
            }
        };
        tracing::info!(
            plugin = %id, tenant = %tenant, label = %handle.info.label, file = %path.display(), ?origin,
            took_ms = took.as_millis() as u64,
            "serving on {0}; try: curl --unix-socket {0} http://plugin/report",
            socket.display()
        );
        self.health.serving(&id, &path, &handle.info.label, handle.limits.call_budget, &handle.stats);
        let (current, receiver) = watch::channel(handle);
        let server = tokio::spawn(server::serve(listener, receiver));
        self.health.set_tenant(id.as_str(), &tenant);
        self.served.insert(id, Served { path, tenant, policy, stamp, hash, code_hash, current, socket, server });
    }

    /// The plugin's file is gone: close its socket so the probe drops it.
    fn remove(&mut self, id: &PluginId) {
        let Some(served) = self.served.remove(id) else { return };
        close(&served);
        self.health.remove(id.as_str());
        tracing::info!(plugin = %id, file = %served.path.display(), "file removed; socket {} closed", served.socket.display());
        self.forget_unused_code();
    }

    fn load_panicked(&mut self, err: tokio::task::JoinError) {
        let task = err.id();
        if let Some(path) = self.loading.iter().find(|(_, (_, id))| *id == task).map(|(path, _)| path.clone()) {
            let (stamp, _) = self.loading.remove(&path).expect("just found");
            tracing::error!(file = %path.display(), "loading crashed: {err}");
            if let Ok(id) = PluginId::from_wasm_path(&path) {
                self.health.failed(&id, &path, &format!("loading crashed: {err}"));
            }
            self.failed.insert(path, stamp);
        }
    }

    fn forget_unused_code(&self) {
        let in_use: HashSet<&str> = self.served.values().map(|served| served.code_hash.as_str()).collect();
        self.runtime.retain_components(|hash| in_use.contains(hash));
    }

    fn shutdown(&mut self) {
        self.loads.abort_all();
        for served in std::mem::take(&mut self.served).into_values() {
            close(&served);
        }
    }
}

fn close(served: &Served) {
    served.server.abort();
    if let Err(err) = std::fs::remove_file(&served.socket) {
        tracing::warn!(socket = %served.socket.display(), error = %err, "could not remove socket");
    }
}

async fn next_reload(reloads: &mut Option<watch::Receiver<Arc<Tenancy>>>) -> Option<Arc<Tenancy>> {
    match reloads {
        Some(receiver) => match receiver.changed().await {
            Ok(()) => Some(receiver.borrow_and_update().clone()),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

async fn source_changed(sources: &Option<SourceStore>) {
    match sources {
        Some(store) => store.changed.notified().await,
        None => std::future::pending().await,
    }
}

async fn next_hint(hints: &mut Option<mpsc::Receiver<Hint>>) -> Option<Hint> {
    match hints {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// One background load: read, compile (the runtime bounds it), instantiate, describe.
struct LoadJob {
    runtime: Arc<Runtime>,
    budget: Arc<Semaphore>,
    starts: Arc<Semaphore>,
    services: Arc<HostServices>,
    stats: Arc<PluginStats>,
    health: Arc<HealthBoard>,
    content: ContentRules,
    tenant: String,
    policy: PluginPolicy,
    id: PluginId,
    path: PathBuf,
    stamp: FileStamp,
    running_hash: Option<String>,
}

/// What a version's bytes are checked against once read: the tenancy in force
/// when its load started, and the tenant it is loaded for.
struct ContentRules {
    tenancy: Arc<Tenancy>,
    tenant: usize,
}

impl LoadJob {
    /// The plugin compiled, found by what is known of its file (with identity
    /// `identity`) without reading it all: its code by hash, its source
    /// section, if it has one, read alone. `None`: read the file.
    async fn found_compiled(
        &self,
        identity: FileIdentity,
        known: KnownContent,
        stack: usize,
    ) -> Result<Option<(CompiledPlugin, Origin, String, String)>> {
        let (code_hash, plugin_source) = match &known.source {
            None => (known.hash.clone(), None),
            Some(source) => {
                let (path, source_of) = (self.path.clone(), source.clone());
                let read = move || PluginSource::read_known_source(&path, &identity, &source_of);
                match tokio::task::spawn_blocking(read).await.context("reading task panicked")? {
                    Some(contents) => (source.code_hash.clone(), Some(contents)),
                    None => return Ok(None),
                }
            }
        };
        let Some((compiled, origin)) = self.runtime.compiled(&self.id, &code_hash, plugin_source, stack).await? else {
            return Ok(None);
        };
        Ok(Some((compiled, origin, known.hash, code_hash)))
    }

    async fn run(self) -> LoadOutcome {
        let result = self.load().await;
        LoadOutcome { id: self.id, path: self.path, stamp: self.stamp, policy: self.policy, result }
    }

    async fn load(&self) -> Result<Loaded> {
        // Cache hits and compiles alike: only the bytes held count here; the
        // runtime gives compiles their slots, smallest file first.
        // Listed from the start: reading, hashing and checking a big file take a while too.
        self.health.loading(&self.id, &self.path, LoadPhase::Queued);
        let kib = u32::try_from(self.stamp.len.div_ceil(1024)).unwrap_or(u32::MAX).min(LOADING_BUDGET_KIB);
        let held = self.budget.acquire_many(kib).await.context("loading budget closed")?;
        let started = Instant::now();
        let stack = self.policy.limits.max_wasm_stack;
        // A file hashed before is found compiled without reading it again.
        let path = self.path.clone();
        let identity = tokio::task::spawn_blocking(move || std::fs::metadata(&path).ok())
            .await
            .context("reading task panicked")?
            .filter(|meta| FileStamp::of(meta) == self.stamp)
            .map(|meta| FileIdentity::of(&meta));
        let known = identity.and_then(|identity| Some((identity, self.runtime.known_content(&identity)?)));
        let found = match known {
            Some((identity, known)) => match self.admit(&known.hash)? {
                Some(early) => return Ok(early),
                None => self.found_compiled(identity, known, stack).await?,
            },
            None => None,
        };
        let (compiled, origin, hash, code_hash) = match found {
            Some(found) => found,
            None => {
                // The file's identity before and after the read says whether
                // the hash may be remembered for it.
                let (id, path) = (self.id.clone(), self.path.clone());
                let (before, read_at, source, after) = tokio::task::spawn_blocking(move || {
                    let before = std::fs::metadata(&path).ok();
                    let read_at = std::time::SystemTime::now();
                    let source = PluginSource::read(id, &path)?;
                    anyhow::Ok((before, read_at, source, std::fs::metadata(&path).ok()))
                })
                .await
                .context("reading task panicked")??;
                if after.as_ref().map(FileStamp::of) != Some(self.stamp) {
                    return Ok(Loaded::FileChanged);
                }
                if let (Some(before), Some(after)) = (&before, &after) {
                    let (before, after) = (FileIdentity::of(before), FileIdentity::of(after));
                    self.runtime.remember_content(&before, &after, read_at, &source.known_content());
                }
                if let Some(early) = self.admit(&source.hash)? {
                    return Ok(early);
                }
                let phase = |phase| self.health.loading(&self.id, &self.path, phase);
                let (compiled, origin) = self.runtime.compile_reporting(&source, stack, &phase).await?;
                (compiled, origin, source.hash.clone(), source.code_hash.clone())
            }
        };
        drop(held);
        let start = self.starts.acquire().await.context("start slots closed")?;
        let handle = PluginHandle::start(&compiled, self.services.clone(), self.policy.clone(), self.stats.clone())
            .await
            .map_err(anyhow::Error::from)?;
        drop(start);
        let (tenant, policy) = (self.tenant.clone(), self.policy.clone());
        Ok(Loaded::Started { handle, hash, code_hash, origin, took: started.elapsed(), tenant, policy })
    }

    /// Whether bytes with this content hash may load: refused by the tenant's
    /// content rules (an error), or already serving (`Unchanged`), or `None` to go on.
    fn admit(&self, hash: &str) -> Result<Option<Loaded>> {
        if let Some(refusal) = self.content.tenancy.content_refusal(self.content.tenant, &self.id, &self.policy, hash) {
            let tenant = &self.tenant;
            anyhow::bail!("tenant {tenant}: refusing {}: {refusal}", self.path.display());
        }
        Ok((self.running_hash.as_deref() == Some(hash)).then_some(Loaded::Unchanged))
    }
}
