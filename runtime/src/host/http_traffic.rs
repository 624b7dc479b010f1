//! The `http-traffic` interface: HTTP requests and responses per process,
//! counted by the host's eBPF programs (`http_probe`). Granted only explicitly;
//! a plugin whose `docker` grant is scoped to a tenant sees only the processes
//! on the host itself and in that tenant's containers.

use std::sync::Arc;

use tokio::time::Instant;
use wasmtime::component::HasData;

use crate::bindings::scope::plugin::http_traffic::{self, HttpTrafficError, MethodCount, ProcessCounters, StatusCount};
use crate::host::docker::TenantScope;
use crate::host::fixture::Fixture;
use crate::host::http_probe::{HttpProbe, HttpProbes, ProbeError};
use crate::host::procfs::may_see;
use crate::plugin_id::PluginId;

pub struct HttpTrafficCtx {
    plugin: PluginId,
    probes: Arc<HttpProbes>,
    granted: bool,
    tenant: Option<Arc<TenantScope>>,
    /// Taken on the first call and held while the instance lives: the programs
    /// stay attached (and counting) between polls.
    lease: Option<Arc<HttpProbe>>,
    denial_logged: bool,
    fixture: Option<Arc<Fixture>>,
}

impl HttpTrafficCtx {
    pub fn new(plugin: PluginId, probes: Arc<HttpProbes>, granted: bool, tenant: Option<Arc<TenantScope>>) -> Self {
        Self { plugin, probes, granted, tenant, lease: None, denial_logged: false, fixture: None }
    }

    /// Under `scope-wasm test`: counters from the fixture, or recorded into it.
    pub fn with_fixture(mut self, fixture: Option<Arc<Fixture>>) -> Self {
        self.fixture = fixture;
        self
    }
}

pub struct HttpTrafficView<'a> {
    pub ctx: &'a mut HttpTrafficCtx,
    pub deadline: Instant,
}

pub struct HttpTraffic;

impl HasData for HttpTraffic {
    type Data<'a> = HttpTrafficView<'a>;
}

impl http_traffic::Host for HttpTrafficView<'_> {
    async fn counters(&mut self) -> wasmtime::Result<Result<Vec<ProcessCounters>, HttpTrafficError>> {
        let ctx = &mut *self.ctx;
        if !ctx.granted {
            return Ok(Err(HttpTrafficError::Denied(super::not_granted(&ctx.plugin, "http-traffic", &mut ctx.denial_logged))));
        }
        let Some(fixture) = ctx.fixture.clone() else { return Ok(self.read().await) };
        if fixture.replaying() {
            return Ok(fixture.http_counters());
        }
        let answer = self.read().await;
        fixture.record_http_counters(&answer);
        Ok(answer)
    }
}

impl HttpTrafficView<'_> {
    /// The host's counters (the grant is checked by the caller).
    async fn read(&mut self) -> Result<Vec<ProcessCounters>, HttpTrafficError> {
        let ctx = &mut *self.ctx;
        let lease = ctx.lease.get_or_insert_with(|| ctx.probes.acquire()).clone();
        let counts = lease.counters(self.deadline).await.map_err(|err| match err {
            ProbeError::Timeout => HttpTrafficError::Timeout,
            ProbeError::Unavailable(why) => HttpTrafficError::Unavailable(why),
        })?;
        let visible = match &ctx.tenant {
            None => None,
            Some(tenant) => Some(tenant.visible_containers(self.deadline).await.map_err(|err| {
                // Fail closed: without the engine, containers cannot be told apart.
                HttpTrafficError::Denied(format!("cannot tell which processes are this plugin's own: {err:?}"))
            })?),
        };
        Ok(counts
            .into_iter()
            .filter(|(pid, _)| visible.as_ref().is_none_or(|visible| may_see(*pid, visible)))
            .map(|(pid, counts)| ProcessCounters {
                pid,
                requests: counts
                    .requests
                    .into_iter()
                    .map(|(method, count)| MethodCount { method: method.to_owned(), count })
                    .collect(),
                responses: counts.responses.into_iter().map(|(code, count)| StatusCount { code, count }).collect(),
            })
            .collect())
    }
}
