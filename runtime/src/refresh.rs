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

use crate::bindings::Report;
use crate::error::CallError;
use crate::scope_json::{self, RenderContext};
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

/// How many probes' renderings of one report are kept (a host has one probe).
const RENDERINGS_KEPT: usize = 4;

/// A report that passed validation, and its JSON as each probe gets it: the
/// probe polls every second with the same `probe_id`, and the bytes change
/// only when the report does, so a poll is answered without encoding.
pub struct GoodReport {
    pub report: Report,
    /// When the guest made it: the time of its latest values without a timestamp.
    pub made_ms: u64,
    rendered: Mutex<Vec<(Option<String>, Bytes)>>,
}

impl GoodReport {
    fn new(report: Report) -> Self {
        let made_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        Self { report, made_ms, rendered: Mutex::new(Vec::new()) }
    }

    /// The JSON for `probe_id`, encoded by `encode` the first time only.
    pub fn rendered(&self, probe_id: Option<&str>, encode: impl FnOnce() -> Result<Vec<u8>, String>) -> Result<Bytes, String> {
        if let Some((_, body)) = self.rendered.lock().unwrap().iter().find(|(id, _)| id.as_deref() == probe_id) {
            return Ok(body.clone());
        }
        let body = Bytes::from(encode()?);
        let mut rendered = self.rendered.lock().unwrap();
        if rendered.len() == RENDERINGS_KEPT {
            rendered.remove(0);
        }
        rendered.push((probe_id.map(str::to_owned), body.clone()));
        Ok(body)
    }
}

#[derive(Default)]
struct CacheState {
    good: Option<(Arc<GoodReport>, Instant)>,
    failure: Option<(CallError, Instant)>,
    last_poll: Option<Instant>,
    refresher_idle: bool,
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
    pub async fn latest(&self, plugin: &PluginHandle, deadline: Instant) -> Result<Arc<GoodReport>, CallError> {
        let mut attempts = self.attempts.subscribe();
        self.mark_polled();
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

    fn mark_polled(&self) {
        let mut state = self.state.lock().unwrap();
        state.last_poll = Some(Instant::now());
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

    fn store(&self, generation: u64, result: Result<Report, CallError>) {
        let mut state = self.state.lock().unwrap();
        if generation != state.generation {
            return;
        }
        let now = Instant::now();
        match result {
            Ok(report) => {
                state.good = Some((Arc::new(GoodReport::new(report)), now));
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

/// Checks a fresh report once, so a plugin that lies is logged once per refresh
/// and its polls answer the cause at once.
fn validate(plugin: &PluginHandle, report: Report) -> Result<Report, CallError> {
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    let ctx = RenderContext { plugin: &plugin.id, info: &plugin.info, probe_id: Some("validate"), now_ms };
    match scope_json::encode_report(&ctx, &report, plugin.limits.max_report_bytes) {
        Ok(_) => Ok(report),
        Err(detail) => {
            let err = CallError::InvalidOutput { plugin: plugin.id.clone(), detail };
            plugin.stats.record_error(&err);
            tracing::warn!(error = %err, "report refused");
            Err(err)
        }
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
            let result = match handle.report(handle.deadline()).await {
                Ok(Ok(report)) => validate(&handle, report),
                Ok(Err(message)) => Err(CallError::Guest { plugin: handle.id.clone(), message }),
                Err(err) => Err(err),
            };
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

    #[test]
    fn a_report_is_encoded_once_per_probe() {
        let good = GoodReport::new(Report { topologies: Vec::new() });
        let mut encodes = 0;
        for probe in [Some("a"), Some("a"), None, Some("b"), Some("a")] {
            let body = good
                .rendered(probe, || {
                    encodes += 1;
                    Ok(format!("{probe:?}").into_bytes())
                })
                .unwrap();
            assert_eq!(body, Bytes::from(format!("{probe:?}")));
        }
        assert_eq!(encodes, 3, "a, none and b");
        assert!(good.rendered(Some("c"), || Err("bad".into())).is_err(), "errors are not kept");
        assert!(good.rendered(Some("c"), || Ok(b"ok".to_vec())).is_ok());
    }
}
