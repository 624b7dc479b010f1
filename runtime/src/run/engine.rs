//! wasmtime Engines, the epoch clock that drives deadlines (`epoch`), and compiling
//! plugins against the host's capabilities.
//!
//! wasmtime fixes the wasm stack size per Engine, so plugins share one Engine
//! per distinct stack limit (normally just one).
//!
//! A plugin is found compiled in memory or in the disk cache, or else checked
//! for its shape (`loader::shape`), queued for a compile slot (`slots`) and
//! compiled in a bounded child process (`child`) that writes a cache entry,
//! which is then read as any other.

mod child;
mod epoch;
mod slots;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio::sync::OnceCell;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

pub use child::{SUBCOMMAND as COMPILE_WORKER, WorkerArgs, run_worker, this_binary_compiles};
pub use epoch::GuestRunning;

use crate::load::compile_cache::{CacheBook, CompileCache, Origin};
use crate::load::content_hashes::{ContentHashes, FileIdentity, KnownContent};
use crate::load::loader::{self, CompiledPlugin, PluginSource, ShapeLimits};
use crate::ops::health::LoadPhase;
use crate::plugin_id::PluginId;
use crate::run::state::PluginState;
use slots::CompileSlots;

/// How often the engine's epoch advances. A running guest yields to the async
/// runtime at every tick and traps at the first tick past its deadline, so this
/// bounds both how long a guest can hog a worker thread and how late a deadline fires.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// The host stack a guest call runs on must hold the wasm stack plus what host
/// functions need beyond it.
const HOST_STACK_HEADROOM: usize = 1 << 20;

/// How often the cache directory is tidied besides after each compile.
const TIDY_EVERY: Duration = Duration::from_secs(60);

/// How plugin files are compiled: the bounds of each compile child, the shape
/// a file must have to be compiled at all, and the bounds of the disk cache.
#[derive(Debug, Clone)]
pub struct CompileSettings {
    /// Memory one compile may use (its data size limit): `memory_base_mib`
    /// plus `memory_per_mib` per MiB of file, at most `memory_max_mib`. Small
    /// files get small limits, so even several hostile ones at once stay far
    /// from the daemon's memory.
    pub memory_max_mib: u64,
    pub memory_base_mib: u64,
    pub memory_per_mib: u64,
    /// What the limits of all compiles running at once may add up to: a
    /// compile waits until its limit fits.
    pub memory_budget_mib: u64,
    /// CPU time one compile may use: this, plus `cpu_per_mib` per MiB of file.
    pub cpu_base: Duration,
    pub cpu_per_mib: Duration,
    /// A compile running this long gives its slot to the next one and goes on
    /// at the lowest priority...
    pub demote_after: Duration,
    /// ... if fewer than this many already do.
    pub max_demoted: usize,
    /// The cache directory's size limit; least recently used entries go first.
    pub cache_max_bytes: u64,
    /// How long an entry no plugin file uses is kept (a quick rollback hits it).
    pub unused_entry_grace: Duration,
    pub shape: ShapeLimits,
}

impl Default for CompileSettings {
    fn default() -> Self {
        Self {
            memory_max_mib: 448,
            memory_base_mib: 48,
            memory_per_mib: 40,
            memory_budget_mib: 512,
            cpu_base: Duration::from_secs(30),
            cpu_per_mib: Duration::from_secs(20),
            demote_after: Duration::from_secs(5),
            max_demoted: 2,
            cache_max_bytes: 1 << 30,
            unused_entry_grace: Duration::from_secs(600),
            shape: ShapeLimits::default(),
        }
    }
}

static PROCESS_SETTINGS: OnceLock<CompileSettings> = OnceLock::new();

impl CompileSettings {
    /// Makes these the settings of every `Runtime::new` in this process (the
    /// command line's flags); the first call wins.
    pub fn set_for_process(self) {
        let _ = PROCESS_SETTINGS.set(self);
    }

    pub fn for_process() -> Self {
        PROCESS_SETTINGS.get().cloned().unwrap_or_default()
    }

    /// The memory a file of `bytes` may take to compile, in MiB.
    pub fn memory_mib(&self, bytes: usize) -> u64 {
        let scaled = self.memory_base_mib + (self.memory_per_mib * bytes as u64).div_ceil(1 << 20);
        scaled.min(self.memory_max_mib)
    }

    /// The CPU time a file of `bytes` may take to compile, in whole seconds.
    pub fn cpu_seconds(&self, bytes: usize) -> u64 {
        let per_byte = self.cpu_per_mib.as_secs_f64() / (1u64 << 20) as f64;
        (self.cpu_base.as_secs_f64() + per_byte * bytes as f64).ceil() as u64
    }
}

/// An Engine and the Linker with every host capability, for one stack limit.
pub struct EngineAndLinker {
    pub engine: Engine,
    pub linker: Linker<PluginState>,
}

/// Compiled components by content hash and stack limit: identical plugin files
/// (the same plugin deployed for many tenants) compile once and share code.
type ComponentMemo = HashMap<(String, usize), Arc<OnceCell<Component>>>;

/// Where compile children write entries, and what the daemon knows about them.
struct Store {
    cache: CompileCache,
    book: Mutex<CacheBook>,
    /// The daemon's own temporary directory when it has no cache: entries are
    /// removed once read, and the directory when the daemon stops.
    private: Option<tempfile::TempDir>,
    max_bytes: u64,
    grace: Duration,
    /// Plugin files' content hashes, kept beside the entries they find.
    hashes: ContentHashes,
}

impl Store {
    fn new(cache: Option<CompileCache>, settings: &CompileSettings) -> Result<Self> {
        let (cache, private) = match cache {
            Some(cache) => (cache, None),
            None => {
                use std::os::unix::fs::PermissionsExt;
                let dir = tempfile::Builder::new()
                    .prefix("scope-wasm-compile-")
                    .permissions(std::fs::Permissions::from_mode(0o700))
                    .tempdir()
                    .context("creating a private directory to compile into")?;
                (CompileCache::open(dir.path())?, Some(dir))
            }
        };
        let book = Mutex::default();
        let hashes = match private {
            Some(_) => ContentHashes::in_memory(),
            None => ContentHashes::in_dir(cache.dir()),
        };
        Ok(Self { cache, book, private, max_bytes: settings.cache_max_bytes, grace: settings.unused_entry_grace, hashes })
    }

    /// Keeps the directory to its bounds; `spare` (just written) stays. Blocking.
    fn tidy(&self, spare: Option<&std::path::Path>) {
        let tidied = self.cache.tidy(&mut self.book.lock().unwrap(), self.max_bytes, self.grace, spare);
        if tidied.entries > 0 {
            tracing::info!(
                dir = %self.cache.dir().display(),
                "compile cache: removed {} entries ({} KiB) no plugin used lately or beyond its size limit",
                tidied.entries, tidied.bytes >> 10
            );
        }
    }
}

/// Compiles plugins; creates Engines on demand, one per wasm stack limit.
pub struct Runtime {
    engines: Mutex<BTreeMap<usize, Arc<EngineAndLinker>>>,
    components: Mutex<ComponentMemo>,
    /// `Err`: no directory could be made, and no plugin can be compiled.
    store: Result<Arc<Store>, String>,
    slots: Arc<CompileSlots>,
    settings: CompileSettings,
}

impl Runtime {
    /// `cache`: where compiled plugins are kept across restarts, if anywhere.
    /// The settings are the process's (`CompileSettings::set_for_process`).
    pub fn new(cache: Option<CompileCache>) -> Self {
        Self::with_settings(cache, CompileSettings::for_process())
    }

    pub fn with_settings(cache: Option<CompileCache>, settings: CompileSettings) -> Self {
        let store = Store::new(cache, &settings).map(Arc::new).map_err(|err| {
            tracing::error!("{err:#}; no plugin can be compiled");
            format!("{err:#}")
        });
        if let Ok(store) = &store
            && store.private.is_none()
        {
            spawn_tidier(store);
        }
        let cpus = thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            engines: Mutex::default(),
            components: Mutex::default(),
            store,
            slots: CompileSlots::new(cpus, settings.max_demoted, settings.memory_budget_mib),
            settings,
        }
    }

    fn engine_for(&self, max_wasm_stack: usize) -> Result<Arc<EngineAndLinker>> {
        let mut engines = self.engines.lock().unwrap();
        if let Some(found) = engines.get(&max_wasm_stack) {
            return Ok(found.clone());
        }
        let engine = Engine::new(&engine_config(max_wasm_stack))
            .map_err(anyhow::Error::from)
            .context("creating the wasmtime engine")?;
        epoch::register(&engine);
        let mut linker = Linker::new(&engine);
        crate::run::state::add_to_linker(&mut linker).context("linking host capabilities")?;
        let created = Arc::new(EngineAndLinker { engine, linker });
        engines.insert(max_wasm_stack, created.clone());
        Ok(created)
    }

    /// What is known of the plugin file with this identity (its hashes, and
    /// where its source section is), if it was read and hashed before (by this
    /// daemon or one before it on the same cache).
    pub fn known_content(&self, identity: &FileIdentity) -> Option<KnownContent> {
        self.store.as_ref().ok()?.hashes.get(identity)
    }

    /// Remembers what is known of bytes read at `read_at` from a file that
    /// had identity `before` before the read and `after` after it.
    pub fn remember_content(
        &self,
        before: &FileIdentity,
        after: &FileIdentity,
        read_at: std::time::SystemTime,
        content: &KnownContent,
    ) {
        if let Ok(store) = &self.store {
            store.hashes.remember(before, after, read_at, content);
        }
    }

    /// The plugin whose code has hash `hash` (`PluginSource::code_hash`),
    /// linked with its file's `plugin_source`, if it is compiled in memory or
    /// in the disk cache; `None` if it must be compiled (from the file's
    /// bytes, with `compile`).
    pub async fn compiled(
        &self,
        id: &PluginId,
        hash: &str,
        plugin_source: Option<Arc<[u8]>>,
        max_wasm_stack: usize,
    ) -> Result<Option<(CompiledPlugin, Origin)>> {
        let target = self.engine_for(max_wasm_stack)?;
        let cell = self.components.lock().unwrap().entry((hash.to_owned(), max_wasm_stack)).or_default().clone();
        let (component, origin) = match cell.get() {
            Some(component) => (component.clone(), Origin::Shared),
            None => {
                let store = self.store.clone().map_err(|err| anyhow!("no directory to compile into: {err}"))?;
                store.book.lock().unwrap().wanted(hash);
                let (engine, entry) = (target.engine.clone(), store.cache.entry_path(hash, &target.engine));
                let Some(component) = blocking(move || store.cache.load(&engine, &entry)).await? else {
                    return Ok(None);
                };
                crate::ops::daemon_stats::cache_hit();
                // A load of the same bytes that got there first is shared instead
                // (one still under way keeps its own).
                match (cell.set(component.clone()), cell.get()) {
                    (Err(_), Some(first)) => (first.clone(), Origin::Shared),
                    _ => (component, Origin::CacheHit),
                }
            }
        };
        Ok(Some((loader::link(&target.linker, id.clone(), component, plugin_source)?, origin)))
    }

    /// Compiles `source` (or finds it compiled, in memory or in the disk cache)
    /// and links it.
    pub async fn compile(&self, source: &PluginSource, max_wasm_stack: usize) -> Result<(CompiledPlugin, Origin)> {
        self.compile_reporting(source, max_wasm_stack, &|_| {}).await
    }

    /// `compile`, telling `phase` when the compile waits for a slot and when it runs.
    pub async fn compile_reporting(
        &self,
        source: &PluginSource,
        max_wasm_stack: usize,
        phase: &(dyn Fn(LoadPhase) + Sync),
    ) -> Result<(CompiledPlugin, Origin)> {
        let id = &source.id;
        loader::check_component_header(&source.bytes).with_context(|| format!("plugin {id}"))?;
        let target = self.engine_for(max_wasm_stack)?;
        let cell = self.components.lock().unwrap().entry((source.code_hash.clone(), max_wasm_stack)).or_default().clone();
        let mut origin = Origin::Shared;
        let (origin_slot, engine) = (&mut origin, &target.engine);
        let component = cell
            .get_or_try_init(|| async move {
                let (component, how) = self.load_or_compile(source, engine, max_wasm_stack, phase).await?;
                *origin_slot = how;
                anyhow::Ok(component)
            })
            .await
            .with_context(|| format!("plugin {id}"))?
            .clone();
        let compiled = loader::link(&target.linker, id.clone(), component, source.plugin_source.clone())?;
        Ok((compiled, origin))
    }

    /// The disk cache's entry, or a compile in a child: cache hits need no
    /// compile slot, and a file of the wrong shape never gets one.
    async fn load_or_compile(
        &self,
        source: &PluginSource,
        engine: &Engine,
        max_wasm_stack: usize,
        phase: &(dyn Fn(LoadPhase) + Sync),
    ) -> Result<(Component, Origin)> {
        let store = self.store.clone().map_err(|err| anyhow!("no directory to compile into: {err}"))?;
        let entry = store.cache.entry_path(&source.code_hash, engine);
        store.book.lock().unwrap().wanted(&source.code_hash);
        let load = {
            let (store, engine, entry) = (store.clone(), engine.clone(), entry.clone());
            move || store.cache.load(&engine, &entry)
        };
        if let Some(component) = blocking(load.clone()).await? {
            crate::ops::daemon_stats::cache_hit();
            return Ok((component, Origin::CacheHit));
        }

        let (bytes, limits) = (source.bytes.clone(), self.settings.shape);
        blocking(move || loader::check_shape(&bytes, &limits)).await??;
        let limits = child::ChildLimits {
            memory_mib: self.settings.memory_mib(source.bytes.len()),
            cpu_seconds: self.settings.cpu_seconds(source.bytes.len()),
            demote_after: self.settings.demote_after,
        };
        phase(LoadPhase::Queued);
        let slot = self.slots.acquire(source.bytes.len() as u64, limits.memory_mib).await;
        phase(LoadPhase::Compiling);
        child::compile(&source.id, source.bytes.clone(), max_wasm_stack, &entry, limits, slot).await?;
        let component = blocking(load).await?.ok_or_else(|| anyhow!("compiling: the compiler wrote no usable entry"))?;
        blocking(move || match store.private {
            Some(_) => {
                let _ = std::fs::remove_file(&entry);
            }
            None => store.tidy(Some(&entry)),
        })
        .await?;
        Ok((component, Origin::Compiled))
    }

    /// Forgets compiled components whose content hash `keep` rejects, so code
    /// of plugins that are gone is freed; their cache entries start their
    /// grace period.
    pub fn retain_components(&self, keep: impl Fn(&str) -> bool) {
        self.components.lock().unwrap().retain(|(hash, _), _| keep(hash));
        if let Ok(store) = &self.store {
            store.cache.note_wanted(&mut store.book.lock().unwrap(), keep);
        }
    }
}

/// Runs blocking file work off the async runtime.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.context("a compile task panicked")
}

/// Tidies the cache now and then, so entries of plugins that are gone leave
/// even when nothing is compiled. Ends with the runtime.
fn spawn_tidier(store: &Arc<Store>) {
    let weak: Weak<Store> = Arc::downgrade(store);
    let spawned = thread::Builder::new().name("cache-tidier".into()).spawn(move || {
        loop {
            let Some(store) = weak.upgrade() else { return };
            store.tidy(None);
            drop(store);
            thread::sleep(TIDY_EVERY);
        }
    });
    if let Err(err) = spawned {
        tracing::warn!("the compile cache is tidied only after compiles: {err}");
    }
}

/// The one Engine configuration, for the daemon and its compile children alike:
/// the code a child compiles must be what the daemon's Engine accepts.
pub fn engine_config(max_wasm_stack: usize) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(max_wasm_stack);
    config.async_stack_size(max_wasm_stack + HOST_STACK_HEADROOM);
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_limits_grow_with_the_file_up_to_the_ceiling() {
        let settings = CompileSettings::default();
        let mib = 1 << 20;
        assert_eq!((settings.memory_mib(0), settings.cpu_seconds(0)), (48, 30));
        assert_eq!((settings.memory_mib(300 << 10), settings.cpu_seconds(300 << 10)), (60, 36));
        assert_eq!((settings.memory_mib(4 * mib), settings.cpu_seconds(4 * mib)), (208, 110));
        // The CPython and StarlingMonkey plugins: the memory ceiling applies.
        assert_eq!((settings.memory_mib(18 * mib), settings.cpu_seconds(18 * mib)), (448, 390));
    }
}
