//! wasmtime Engines, the epoch ticker that drives deadlines, and compiling
//! plugins against the host's capabilities.
//!
//! wasmtime fixes the wasm stack size per Engine, so plugins share one Engine
//! per distinct stack limit (normally just one).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::OnceCell;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use crate::compile_cache::{self, CompileCache, Origin};
use crate::loader::{self, CompiledPlugin, PluginSource};
use crate::state::PluginState;

/// How often the engine's epoch advances. A running guest yields to the async
/// runtime at every tick and traps at the first tick past its deadline, so this
/// bounds both how long a guest can hog a worker thread and how late a deadline fires.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// The host stack a guest call runs on must hold the wasm stack plus what host
/// functions need beyond it.
const HOST_STACK_HEADROOM: usize = 1 << 20;

/// An Engine and the Linker with every host capability, for one stack limit.
pub struct EngineAndLinker {
    pub engine: Engine,
    pub linker: Linker<PluginState>,
}

/// Compiled components by content hash and stack limit: identical plugin files
/// (the same plugin deployed for many tenants) compile once and share code.
type ComponentMemo = HashMap<(String, usize), Arc<OnceCell<Component>>>;

/// Compiles plugins; creates Engines on demand, one per wasm stack limit.
#[derive(Default)]
pub struct Runtime {
    engines: Mutex<BTreeMap<usize, Arc<EngineAndLinker>>>,
    cache: Option<CompileCache>,
    components: Mutex<ComponentMemo>,
}

impl Runtime {
    /// `cache`: where compiled plugins are kept across restarts, if anywhere.
    pub fn new(cache: Option<CompileCache>) -> Self {
        Self { cache, ..Self::default() }
    }

    fn engine_for(&self, max_wasm_stack: usize) -> Result<Arc<EngineAndLinker>> {
        let mut engines = self.engines.lock().unwrap();
        if let Some(found) = engines.get(&max_wasm_stack) {
            return Ok(found.clone());
        }
        let engine = new_engine(max_wasm_stack)?;
        let mut linker = Linker::new(&engine);
        crate::host::add_to_linker(&mut linker).context("linking host capabilities")?;
        let created = Arc::new(EngineAndLinker { engine, linker });
        engines.insert(max_wasm_stack, created.clone());
        Ok(created)
    }

    /// Compiles `source` (or finds it compiled, in memory or in the disk cache)
    /// and links it. Cranelift runs on a blocking thread, never on the async runtime.
    pub async fn compile(&self, source: &PluginSource, max_wasm_stack: usize) -> Result<(CompiledPlugin, Origin)> {
        let id = &source.id;
        loader::check_component_header(&source.bytes).with_context(|| format!("plugin {id}"))?;
        let target = self.engine_for(max_wasm_stack)?;
        let cell = self.components.lock().unwrap().entry((source.hash.clone(), max_wasm_stack)).or_default().clone();
        let mut origin = Origin::Shared;
        let origin_slot = &mut origin;
        let engine = target.engine.clone();
        let component = cell
            .get_or_try_init(|| async move {
                let (bytes, hash, cache) = (source.bytes.clone(), source.hash.clone(), self.cache.clone());
                let (component, how) = tokio::task::spawn_blocking(move || match cache {
                    Some(cache) => cache.load_or_compile(&engine, &bytes, &hash),
                    None => compile_cache::compile(&engine, &bytes).map(|c| (c, Origin::Compiled)),
                })
                .await
                .context("compile task panicked")??;
                *origin_slot = how;
                anyhow::Ok(component)
            })
            .await
            .with_context(|| format!("plugin {id}: compiling"))?
            .clone();
        let compiled = loader::link(&target.linker, id.clone(), component)?;
        Ok((compiled, origin))
    }

    /// Forgets compiled components whose content hash `keep` rejects, so code
    /// of plugins that are gone is freed.
    pub fn retain_components(&self, keep: impl Fn(&str) -> bool) {
        self.components.lock().unwrap().retain(|(hash, _), _| keep(hash));
    }
}

fn new_engine(max_wasm_stack: usize) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(max_wasm_stack);
    config.async_stack_size(max_wasm_stack + HOST_STACK_HEADROOM);
    let engine = Engine::new(&config).map_err(anyhow::Error::from).context("creating the wasmtime engine")?;
    spawn_epoch_ticker(&engine);
    Ok(engine)
}

/// Guest calls running now, across all engines. The tickers sleep while there
/// are none: an idle daemon does not wake 500 times a second.
static RUNNING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// Held for the length of a guest call: the epoch ticks while any is held.
pub struct GuestRunning(());

impl GuestRunning {
    pub fn start() -> Self {
        let mut running = RUNNING.0.lock().unwrap();
        *running += 1;
        if *running == 1 {
            RUNNING.1.notify_all();
        }
        GuestRunning(())
    }
}

impl Drop for GuestRunning {
    fn drop(&mut self) {
        *RUNNING.0.lock().unwrap() -= 1;
    }
}

/// How long a sleeping ticker waits before checking that its engine still exists.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Ticks on a plain thread, not a tokio task: a busy async runtime must not be able
/// to starve the very clock that interrupts guests. The thread holds only a weak
/// reference and ends when the engine is dropped. Epoch deadlines are relative to
/// the epoch when a call starts, so pausing between calls changes nothing.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            loop {
                {
                    let mut running = RUNNING.0.lock().unwrap();
                    while *running == 0 {
                        running = RUNNING.1.wait_timeout(running, IDLE_CHECK).unwrap().0;
                        if weak.upgrade().is_none() {
                            return;
                        }
                    }
                }
                let Some(engine) = weak.upgrade() else { return };
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}
