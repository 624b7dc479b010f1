//! Keeps each plugin's latest report fresh in the background, so `GET /report`
//! answers at once whatever the guest's own run time.
//!
//! The probe polls plugins one after another under one lock: a plugin that takes
//! 300 ms to report stalls every other plugin and the probe itself. Here the
//! guest runs on the refresher's schedule (the probe's cadence), only while the
//! probe keeps polling, and the probe gets the latest good report from memory.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::error::CallError;
use crate::scope_json::RenderedReport;
use crate::worker::PluginHandle;

/// A report (or the error in its place) stays usable for this many intervals.
/// Past it, a guest that keeps failing is answered with its error, never with
/// a silently stale report.
const FRESH_FOR_INTERVALS: u32 = 3;
/// Refreshing stops when the probe has not polled for this many intervals.
const IDLE_AFTER_INTERVALS: u32 = 5;
/// A poll waiting for a refresh that started just after it waits this much past
/// its own deadline for that refresh's outcome (which comes by the refresh's deadline).
const WAIT_GRACE: Duration = Duration::from_millis(30);

pub struct ReportCache {
    interval: Duration,
    state: Mutex<CacheState>,
    /// Bumped on every stored attempt; requests with nothing usable wait on it.
    attempts: watch::Sender<u64>,
    /// Wakes the refresher: the first poll after idling, or a control asking for a refresh.
    wake: Notify,
}

/// How many probes' bodies of one report are kept (a host has one probe).
const BODIES_KEPT: usize = 2;

/// A report that passed the host's checks, rendered once, and its body as each
/// probe gets it: the probe polls every second with the same `probe_id`, and
/// the bytes change only when the report does, so a poll is answered without
/// any work but a pointer copy.
pub struct GoodReport {
    rendered: RenderedReport,
    /// When it was rendered: the time of its latest values without a timestamp.
    pub made_ms: u64,
    bodies: Mutex<Vec<(Option<String>, Bytes)>>,
}

impl GoodReport {
    pub fn new(rendered: RenderedReport, made_ms: u64) -> Self {
        Self { rendered, made_ms, bodies: Mutex::new(Vec::new()) }
    }

    /// The body for `probe_id`, put together the first time only.
    pub fn body(&self, probe_id: Option<&str>) -> Result<Bytes, String> {
        if let Some((_, body)) = self.bodies.lock().unwrap().iter().find(|(id, _)| id.as_deref() == probe_id) {
            return Ok(body.clone());
        }
        let body = self.rendered.body(probe_id)?;
        let mut bodies = self.bodies.lock().unwrap();
        if bodies.len() == BODIES_KEPT {
            bodies.remove(0);
        }
        bodies.push((probe_id.map(str::to_owned), body.clone()));
        Ok(body)
    }
}

#[derive(Default)]
struct CacheState {
    good: Option<(Arc<GoodReport>, Instant)>,
    failure: Option<(CallError, Instant)>,
    last_poll: Option<Instant>,
    refresher_idle: bool,
    /// The `probe_id` of the latest poll, so a new report is rendered for it at once.
    last_probe_id: Option<String>,
    /// Bumped by `invalidate`; a refresh started before it is thrown away.
    generation: u64,
}

impl ReportCache {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(CacheState { refresher_idle: true, ..CacheState::default() }),
            attempts: watch::channel(0).0,
            wake: Notify::new(),
        }
    }

    fn fresh_for(&self) -> Duration {
        self.interval * FRESH_FOR_INTERVALS
    }

    /// The report to answer a poll with: the latest good one while it is fresh,
    /// else the latest error while that is fresh, else the next attempt's
    /// outcome if it comes by `deadline`.
    pub async fn latest(&self, plugin: &PluginHandle, probe_id: Option<&str>, deadline: Instant) -> Result<Arc<GoodReport>, CallError> {
        let mut attempts = self.attempts.subscribe();
        self.mark_polled(probe_id);
        loop {
            if let Some(answer) = self.usable() {
                return answer;
            }
            match tokio::time::timeout_at(deadline + WAIT_GRACE, attempts.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => {
                    return Err(CallError::Deadline { plugin: plugin.id.clone(), budget: plugin.limits.call_budget });
                }
            }
        }
    }

    fn usable(&self) -> Option<Result<Arc<GoodReport>, CallError>> {
        let state = self.state.lock().unwrap();
        let fresh = |at: &Instant| at.elapsed() < self.fresh_for();
        if let Some((report, _)) = state.good.as_ref().filter(|(_, at)| fresh(at)) {
            return Some(Ok(report.clone()));
        }
        state.failure.as_ref().filter(|(_, at)| fresh(at)).map(|(err, _)| Err(err.clone()))
    }

    pub fn last_probe_id(&self) -> Option<String> {
        self.state.lock().unwrap().last_probe_id.clone()
    }

    fn mark_polled(&self, probe_id: Option<&str>) {
        let mut state = self.state.lock().unwrap();
        state.last_poll = Some(Instant::now());
        if state.last_probe_id.as_deref() != probe_id {
            state.last_probe_id = probe_id.map(str::to_owned);
        }
        if state.refresher_idle {
            state.refresher_idle = false;
            self.wake.notify_one();
        }
    }

    /// After a control: what the guest reported before is out of date. Polls
    /// wait for a report made after this point.
    pub fn invalidate(&self) {
        let mut state = self.state.lock().unwrap();
        state.generation += 1;
        state.good = None;
        state.failure = None;
        self.wake.notify_one();
    }

    fn store(&self, generation: u64, result: Result<Arc<GoodReport>, CallError>) {
        let mut state = self.state.lock().unwrap();
        if generation != state.generation {
            return;
        }
        let now = Instant::now();
        match result {
            Ok(report) => {
                state.good = Some((report, now));
                state.failure = None;
            }
            Err(err) => state.failure = Some((err, now)),
        }
        drop(state);
        self.attempts.send_modify(|n| *n += 1);
    }

    /// Whether the probe is still polling; if not, the refresher goes idle.
    fn keep_refreshing(&self) -> bool {
        let mut state = self.state.lock().unwrap();
        let polled = state.last_poll.is_some_and(|at| at.elapsed() < self.interval * IDLE_AFTER_INTERVALS);
        state.refresher_idle = !polled;
        polled
    }

    /// Lets a refresher whose plugin is gone see it and end.
    pub fn close(&self) {
        self.wake.notify_one();
    }
}

/// Runs the plugin's report on the cache's interval while the probe polls it.
/// Holds the plugin only weakly: it ends when the plugin is dropped.
pub async fn run_refresher(plugin: Weak<PluginHandle>, cache: Arc<ReportCache>) {
    loop {
        cache.wake.notified().await;
        loop {
            let Some(handle) = plugin.upgrade() else { return };
            let generation = cache.state.lock().unwrap().generation;
            let result = handle.report(handle.deadline()).await;
            drop(handle);
            cache.store(generation, result);
            if !cache.keep_refreshing() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(cache.interval) => {}
                _ = cache.wake.notified() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::{PluginInfo, Report};
    use crate::limits::Limits;
    use crate::plugin_id::PluginId;
    use crate::scope_json::{self, RenderContext, RenderLimits};

    #[test]
    fn a_report_is_put_together_once_per_probe() {
        let plugin = PluginId::parse("p").unwrap();
        let info = PluginInfo { label: "P".into(), description: String::new() };
        let ctx = RenderContext { plugin: &plugin, info: &info, hostname: None, now_ms: 0 };
        let limits = Limits::default();
        let limits = RenderLimits { max_bytes: limits.max_report_bytes, items: &limits.report };
        let rendered = scope_json::encode_report(&ctx, &Report { topologies: Vec::new() }, limits).unwrap();
        let good = GoodReport::new(rendered, 0);
        let a = good.body(Some("a")).unwrap();
        assert_eq!(a.as_ptr(), good.body(Some("a")).unwrap().as_ptr(), "the second poll reuses the body");
        assert!(good.body(Some(&"x".repeat(1000))).is_err(), "a probe_id over the limit is refused");
    }
}
