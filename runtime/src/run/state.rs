//! What a plugin's wasmtime Store holds: its sandboxed WASI context, its host
//! capability contexts and its resource limits.

use std::sync::Arc;

use anyhow::Result;
use tokio::time::Instant;
use tracing::Level;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::scope::plugin::{
    docker as docker_wit, host, http_traffic as http_traffic_wit, procfs as procfs_wit, traffic as traffic_wit, types,
};
use crate::config::policy::PluginPolicy;
use crate::host::{HostServices, docker, http_traffic, procfs, traffic};
use crate::host::docker::{DockerCtx, TenantScope};
use crate::host::fixture::{Fixture, FixtureMonotonicClock, FixtureWallClock};
use crate::host::host_info::HostInfo;
use crate::host::http_traffic::HttpTrafficCtx;
use crate::host::procfs::ProcfsCtx;
use crate::host::traffic::TrafficCtx;
use crate::ops::guest_log::GuestLog;
use crate::plugin_id::PluginId;
use crate::run::limits::StoreBudget;

pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub host_info: HostInfo,
    pub procfs: ProcfsCtx,
    pub docker: DockerCtx,
    pub traffic: TrafficCtx,
    pub http_traffic: HttpTrafficCtx,
    pub budget: StoreBudget,
    /// When the current call must be answered. Host capability calls give up
    /// at it: epoch interruption only reaches wasm code, never host code.
    pub deadline: Instant,
}

/// Host capability calls give up this long before the call's deadline, so the
/// guest still has time to handle their typed `timeout` error and answer.
pub(crate) const GUEST_GRACE: std::time::Duration = std::time::Duration::from_millis(25);

impl PluginState {
    /// When a host capability call made now must give up.
    pub fn host_call_deadline(&self) -> Instant {
        self.deadline.checked_sub(GUEST_GRACE).unwrap_or(self.deadline)
    }

    pub fn new(
        plugin: &PluginId,
        services: &HostServices,
        policy: &PluginPolicy,
        log: GuestLog,
        plugin_source: Option<Arc<[u8]>>,
    ) -> Self {
        let grants = &policy.grants;
        let tenant = grants
            .docker
            .as_ref()
            .filter(|grant| grant.is_scoped())
            .map(|grant| Arc::new(TenantScope::new(services.docker.clone(), grant.clone())));
        Self {
            wasi: sandboxed_wasi(&log, services.replaying()),
            table: ResourceTable::new(),
            host_info: HostInfo {
                hostname: services.hostname.clone(),
                log,
                settings: policy.settings.clone(),
                plugin_source,
                fixture: services.fixture.clone(),
            },
            procfs: ProcfsCtx::new(plugin.clone(), grants.procfs.clone(), tenant.clone()).with_fixture(services.fixture.clone()),
            docker: DockerCtx::new(plugin.clone(), services.docker.clone(), grants.docker.clone())
                .with_fixture(services.fixture.clone()),
            traffic: TrafficCtx::new(plugin.clone(), services.docker.clone(), grants.traffic, grants.docker.clone())
                .with_fixture(services.fixture.clone()),
            http_traffic: HttpTrafficCtx::new(plugin.clone(), services.http_probes.clone(), grants.http_traffic, tenant)
                .with_fixture(services.fixture.clone()),
            budget: StoreBudget::new(&policy.limits, policy.quota.0.clone()),
            deadline: Instant::now(),
        }
    }
}

/// WASI p2 granting nothing: no preopened directories, no environment, no
/// arguments, no network, no stdin. Output goes to the daemon log. Under a
/// replayed test fixture the clocks are the fixture's.
fn sandboxed_wasi(log: &GuestLog, fixture: Option<&Arc<Fixture>>) -> WasiCtx {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(log.stream(Level::INFO))
        .stderr(log.stream(Level::WARN))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    if let Some(fixture) = fixture {
        builder.wall_clock(FixtureWallClock(fixture.clone())).monotonic_clock(FixtureMonotonicClock(fixture.clone()));
    }
    builder.build()
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Every capability's WIT interface, linked to its context in the store: each
/// works on its own view of `PluginState` (wasmtime's `HasData`), so `host`
/// knows nothing of the store around it.
pub fn add_to_linker(linker: &mut Linker<PluginState>) -> Result<()> {
    // WASI p2 with nothing granted (see `sandboxed_wasi`): guests built by
    // standard toolchains import it even when they use none of it.
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    types::add_to_linker::<_, HasSelf<HostInfo>>(linker, |s| &mut s.host_info)?;
    host::add_to_linker::<_, HasSelf<HostInfo>>(linker, |s| &mut s.host_info)?;
    procfs_wit::add_to_linker::<_, procfs::Procfs>(linker, |s| procfs::ProcfsView {
        deadline: s.host_call_deadline(),
        ctx: &mut s.procfs,
    })?;
    docker_wit::add_to_linker::<_, docker::Docker>(linker, |s| docker::DockerView {
        deadline: s.host_call_deadline(),
        ctx: &mut s.docker,
    })?;
    traffic_wit::add_to_linker::<_, traffic::Traffic>(linker, |s| traffic::TrafficView {
        deadline: s.host_call_deadline(),
        ctx: &mut s.traffic,
    })?;
    http_traffic_wit::add_to_linker::<_, http_traffic::HttpTraffic>(linker, |s| http_traffic::HttpTrafficView {
        deadline: s.host_call_deadline(),
        ctx: &mut s.http_traffic,
    })?;
    Ok(())
}
