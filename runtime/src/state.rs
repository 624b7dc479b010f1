//! What a plugin's wasmtime Store holds: its sandboxed WASI context, its host
//! capability contexts and its resource limits.

use std::sync::Arc;

use tracing::Level;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::guest_log::GuestLog;
use crate::host::host_info::HostInfo;
use crate::limits::{Limits, StoreBudget};
use crate::plugin_id::PluginId;

pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub host_info: HostInfo,
    pub budget: StoreBudget,
}

impl PluginState {
    pub fn new(plugin: &PluginId, hostname: Arc<str>, limits: &Limits) -> Self {
        let log = GuestLog::new(plugin.clone());
        Self {
            wasi: sandboxed_wasi(&log),
            table: ResourceTable::new(),
            host_info: HostInfo { hostname, log },
            budget: StoreBudget::new(limits),
        }
    }
}

/// WASI p2 granting nothing: no preopened directories, no environment, no
/// arguments, no network, no stdin. Output goes to the daemon log.
fn sandboxed_wasi(log: &GuestLog) -> WasiCtx {
    WasiCtxBuilder::new()
        .stdout(log.stream(Level::INFO))
        .stderr(log.stream(Level::WARN))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
