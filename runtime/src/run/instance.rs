//! One live instance of a plugin and the deadline around every call into it.
//!
//! The instance is kept between calls (plugins keep state, e.g. to compute
//! rates) and thrown away after a trap or an interrupted call, whose state is
//! undefined; the next call builds a fresh one.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use wasmtime::{Store, Trap, UpdateDeadline, WasmBacktrace};

use crate::bindings::{ControlError, ControlRequest, ControlResponse, Plugin, PluginInfo, PluginPre, Report};
use crate::config::policy::PluginPolicy;
use crate::host::HostServices;
use crate::load::loader::CompiledPlugin;
use crate::ops::guest_log::GuestLog;
use crate::plugin_id::PluginId;
use crate::run::engine::GuestRunning;
use crate::run::error::CallError;
use crate::run::limits::MemoryExhausted;
use crate::run::state::PluginState;

/// How long past its deadline a call may take to come back through the host
/// before it is abandoned. The epoch trap fires within one tick; this only
/// catches a guest stuck in a host call, where epochs do not reach.
const ABANDON_GRACE: Duration = Duration::from_millis(5);

pub enum Call {
    Describe,
    Report,
    Control(ControlRequest),
}

pub enum Answer {
    Describe(PluginInfo),
    Report(Result<Report, String>),
    Control(Result<ControlResponse, ControlError>),
}

pub struct PluginInstance {
    id: PluginId,
    pre: PluginPre<PluginState>,
    services: Arc<HostServices>,
    policy: PluginPolicy,
    /// The file's source section, for a plugin on a shared language runtime.
    plugin_source: Option<Arc<[u8]>>,
    /// Shared by every store of this plugin: one log rate limit per plugin.
    log: GuestLog,
    live: Option<Live>,
}

struct Live {
    store: Store<PluginState>,
    plugin: Plugin,
}

impl PluginInstance {
    pub fn new(compiled: &CompiledPlugin, services: Arc<HostServices>, policy: PluginPolicy) -> Self {
        let (id, pre, plugin_source) = (compiled.id.clone(), compiled.pre.clone(), compiled.plugin_source.clone());
        let log = GuestLog::new(id.clone());
        Self { id, pre, services, policy, plugin_source, log, live: None }
    }

    pub fn id(&self) -> &PluginId {
        &self.id
    }

    /// Linear memory the live instance holds (0 when none is live).
    pub fn memory_bytes(&self) -> usize {
        self.live.as_ref().map_or(0, |live| live.store.data().budget.memory_bytes())
    }

    /// Runs `call` in the guest, answering by `deadline` whatever the guest does.
    /// A panic in the host's own code during the call (a bug, but one a guest
    /// might find) fails this call alone: the instance, whose store it may have
    /// left half-updated, is thrown away, and the worker goes on.
    pub async fn call(&mut self, call: Call, deadline: Instant) -> Result<Answer, CallError> {
        use futures_util::FutureExt;
        match std::panic::AssertUnwindSafe(self.call_guest(call, deadline)).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => {
                self.live = None;
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".into());
                let detail = format!("the host failed while serving this call (a bug in scope-wasm: {what})");
                tracing::error!(plugin = %self.id, "{detail}");
                Err(CallError::Trap { plugin: self.id.clone(), detail })
            }
        }
    }

    async fn call_guest(&mut self, call: Call, deadline: Instant) -> Result<Answer, CallError> {
        if Instant::now() >= deadline {
            return Err(CallError::Busy { plugin: self.id.clone() });
        }
        let _ticking = GuestRunning::start();
        // Only what the guest announces during this call explains its trap.
        self.log.take_failure();
        let result = match self.live.as_mut() {
            Some(live) => invoke(live, call, deadline).await,
            None => match instantiate(&self.pre, self.new_state(), deadline).await {
                Ok(live) => invoke(self.live.insert(live), call, deadline).await,
                Err(err) => Err(err),
            },
        };
        result.map_err(|err| {
            let err = self.classify(err, self.log.take_failure());
            if err.poisons_instance() {
                self.live = None;
            }
            err
        })
    }

    fn new_state(&self) -> PluginState {
        PluginState::new(&self.id, &self.services, &self.policy, self.log.clone(), self.plugin_source.clone())
    }

    /// `announced`: the failure the guest's SDK logged before trapping (a Rust
    /// panic's message, a C abort's reason), shown instead of the bare trap.
    fn classify(&self, err: wasmtime::Error, announced: Option<String>) -> CallError {
        let plugin = self.id.clone();
        if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return CallError::Deadline { plugin, budget: self.policy.limits.call_budget };
        }
        if let Some(exhausted) = err.downcast_ref::<MemoryExhausted>() {
            return CallError::OutOfMemory { plugin, limit_bytes: exhausted.limit_bytes, tenant: exhausted.tenant.clone() };
        }
        let mut detail = match err.downcast_ref::<Trap>() {
            Some(trap) => trap.to_string(),
            None => format!("{:#}", err.root_cause()),
        };
        if let Some(announced) = announced.filter(|_| err.downcast_ref::<Trap>().is_some()) {
            // `panicked at src/lib.rs:12:9: boom` says more than `wasm unreachable`
            // and where it was, both.
            detail = announced;
        } else if let Some(frames) = err.downcast_ref::<WasmBacktrace>().and_then(innermost_frames) {
            detail = format!("{detail} (in {frames})");
        }
        if err.downcast_ref::<InstantiateFailed>().is_some() {
            CallError::Instantiate { plugin, detail }
        } else {
            CallError::Trap { plugin, detail }
        }
    }
}

/// The innermost named frames of a trap, so the plugin's author sees where it was.
fn innermost_frames(backtrace: &WasmBacktrace) -> Option<String> {
    let names: Vec<String> = backtrace
        .frames()
        .iter()
        .filter_map(|frame| {
            let name = frame.func_name()?;
            Some(match frame.module().name() {
                Some(module) => format!("{module}!{name}"),
                None => name.to_owned(),
            })
        })
        .take(4)
        .collect();
    (!names.is_empty()).then(|| names.join(" < "))
}

async fn instantiate(pre: &PluginPre<PluginState>, state: PluginState, deadline: Instant) -> Result<Live, wasmtime::Error> {
    let mut store = Store::new(pre.engine(), state);
    store.limiter(|state| &mut state.budget);
    arm_deadline(&mut store, deadline);
    let plugin = tokio::time::timeout_at(deadline + ABANDON_GRACE, pre.instantiate_async(&mut store))
        .await
        .map_err(|_| wasmtime::Error::new(Trap::Interrupt))?
        .map_err(|err| err.context(InstantiateFailed))?;
    Ok(Live { store, plugin })
}

/// Marks errors raised while building the instance rather than during a call.
#[derive(Debug)]
struct InstantiateFailed;

impl std::fmt::Display for InstantiateFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("instantiation failed")
    }
}

/// At every epoch tick the guest yields to the async runtime, so a busy guest
/// never holds a worker thread for more than a tick; past the deadline it traps.
fn arm_deadline(store: &mut Store<PluginState>, deadline: Instant) {
    store.data_mut().deadline = deadline;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        Ok(if Instant::now() >= deadline { UpdateDeadline::Interrupt } else { UpdateDeadline::Yield(1) })
    });
}

async fn invoke(live: &mut Live, call: Call, deadline: Instant) -> Result<Answer, wasmtime::Error> {
    arm_deadline(&mut live.store, deadline);
    let handler = live.plugin.scope_plugin_handler();
    let store = &mut live.store;
    let run = async {
        Ok(match call {
            Call::Describe => Answer::Describe(handler.call_describe(&mut *store).await?),
            Call::Report => Answer::Report(handler.call_report(&mut *store).await?),
            Call::Control(request) => Answer::Control(handler.call_control(&mut *store, &request).await?),
        })
    };
    tokio::time::timeout_at(deadline + ABANDON_GRACE, run)
        .await
        .unwrap_or_else(|_| Err(wasmtime::Error::new(Trap::Interrupt)))
}
