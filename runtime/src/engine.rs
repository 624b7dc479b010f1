//! The one wasmtime Engine every plugin shares, and the epoch ticker that drives
//! deadlines.

use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::{Config, Engine};

/// How often the engine's epoch advances. A running guest yields to the async
/// runtime at every tick and traps at the first tick past its deadline, so this
/// bounds both how long a guest can hog a worker thread and how late a deadline fires.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Largest wasm stack a guest may use.
pub const MAX_WASM_STACK: usize = 1 << 20;

pub fn new_engine() -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(MAX_WASM_STACK);
    let engine = Engine::new(&config).map_err(anyhow::Error::from).context("creating the wasmtime engine")?;
    spawn_epoch_ticker(&engine);
    Ok(engine)
}

/// Ticks on a plain thread, not a tokio task: a busy async runtime must not be able
/// to starve the very clock that interrupts guests. The thread holds only a weak
/// reference and ends when the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker thread");
}
