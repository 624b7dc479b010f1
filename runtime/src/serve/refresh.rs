//! Keeps each plugin's latest report fresh in the background, so `GET /report`
//! answers at once whatever the guest's own run time.
//!
//! The probe polls plugins one after another under one lock: a plugin that takes
//! 300 ms to report stalls every other plugin and the probe itself. Here the
//! guest runs on its worker's schedule, which this cache keeps: from the moment
//! the plugin is loaded, just before each poll the probe's cadence predicts
//! while it polls (never more often than the refresh interval), and at a slow
//! cadence while it does not; the probe gets the latest good report from memory.
//! Refreshing in step with the probe makes one report per poll, at most
//! `LEAD` old when it is served, and lets the worker threads run the refreshes
//! of all plugins in one burst, as the probe polls them, instead of waking once
//! for each.
//!
//! What a poll gets: the latest attempt's error at once if the guest actually
//! failed (trap, error, refused report, back-off); else the latest good report
//! while it is younger than `STALE_AFTER`, also when the refresh after it is
//! merely late (still running, queued, or cut off by its deadline on a starved
//! CPU); only with no report at all, or one past that bound, does a poll wait
//! for the guest, within its own deadline.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::plugin_id::PluginId;
use crate::run::error::CallError;
use crate::serve::scope_json::RenderedReport;

/// A good report is served for at most this long after it was made. It is
/// seconds, not intervals: a busy host may delay a refresh by a second or two,
/// and an old-but-good report beats an error the probe would show the user.
pub const STALE_AFTER: Duration = Duration::from_secs(10);
/// After this many intervals without a poll the refresher slows down to `IDLE_REFRESH`.
const IDLE_AFTER_INTERVALS: u32 = 5;
/// How often an unpolled plugin is refreshed: often enough that its report is
/// never past `STALE_AFTER` when the probe comes back, rarely enough to cost nothing.
const IDLE_REFRESH: Duration = Duration::from_secs(4);
/// A poll waiting for a refresh that started just after it waits this much past
/// its own deadline for that refresh's outcome (which comes by the refresh's deadline).
const WAIT_GRACE: Duration = Duration::from_millis(30);
/// How long before the poll it expects a refresh starts (plus what the
/// previous refresh took): room for the refreshes of every plugin polled in
/// the same round, on a busy host too.
const LEAD: Duration = Duration::from_millis(100);

pub struct ReportCache {
    interval: Duration,
    state: Mutex<CacheState>,
    /// Bumped on every stored attempt; requests with nothing usable wait on it.
    attempts: watch::Sender<u64>,
    /// Wakes the refresher: the first poll after idling, or one with nothing to serve.
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

    pub fn declares_control(&self, id: &str) -> bool {
        self.rendered.declares_control(id)
    }

    /// The rendered report's size in bytes (without any probe's ID).
    pub fn len(&self) -> usize {
        self.rendered.len()
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
    /// Refreshes that failed since the last good one.
    failures_in_a_row: u32,
    last_poll: Option<Instant>,
    /// The probe's cadence as seen here: a moving average of the time between
    /// polls, long pauses left out.
    poll_gap: Option<Duration>,
    /// When the first refresh started: the refresh interval is the cadence from there.
    loaded: Option<Instant>,
    refresher_idle: bool,
    /// The `probe_id` of the latest poll, so a new report is rendered for it at once.
    last_probe_id: Option<String>,
    /// Bumped by `invalidate`; a refresh started before it is thrown away.
    generation: u64,
    /// The latest good report, kept past `invalidate` for what it declares.
    latest_good: Option<Arc<GoodReport>>,
}

impl ReportCache {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(CacheState::default()),
            attempts: watch::channel(0).0,
            wake: Notify::new(),
        }
    }

    /// The report to answer a poll with: the latest good one while it is fresh,
    /// else the latest error while that is fresh, else the next attempt's
    /// outcome if it comes by `deadline`.
    pub async fn latest(&self, plugin: &PluginId, budget: Duration, probe_id: Option<&str>, deadline: Instant) -> Result<Arc<GoodReport>, CallError> {
        let mut attempts = self.attempts.subscribe();
        self.mark_polled(probe_id);
        loop {
            if let Some(answer) = self.usable() {
                return answer;
            }
            // Nothing to serve: refresh now rather than at the next interval.
            self.wake.notify_one();
            match tokio::time::timeout_at(deadline + WAIT_GRACE, attempts.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => {
                    return Err(CallError::Deadline { plugin: plugin.clone(), budget });
                }
            }
        }
    }

    fn usable(&self) -> Option<Result<Arc<GoodReport>, CallError>> {
        let state = self.state.lock().unwrap();
        let good = state.good.as_ref().filter(|(_, at)| at.elapsed() < STALE_AFTER).map(|(report, _)| report.clone());
        // A failure is always newer than the good report (a success clears it).
        match (&state.failure, good) {
            (Some((err, _)), Some(good)) if merely_late(err) => Some(Ok(good)),
            // One late refresh and nothing good yet (a first report cut off on
            // a starved CPU): worth waiting for the next, which the poll asks for.
            (Some((err, _)), None) if merely_late(err) && state.failures_in_a_row < LATE_BEFORE_ERROR => None,
            (Some((err, _)), _) => Some(Err(err.clone())),
            (None, Some(good)) => Some(Ok(good)),
            (None, None) => None,
        }
    }

    /// Waits until the first refresh (started at load) has an outcome, or `until`.
    /// A late first attempt (cut off on a starved CPU) is not an outcome: the
    /// refresher tries again at once, up to `LATE_BEFORE_ERROR` times.
    pub async fn first_outcome(&self, until: Instant) {
        let mut attempts = self.attempts.subscribe();
        let settled = |_: &u64| {
            let state = self.state.lock().unwrap();
            state.good.is_some()
                || state.failure.as_ref().is_some_and(|(err, _)| !merely_late(err))
                || state.failures_in_a_row >= LATE_BEFORE_ERROR
        };
        let _ = tokio::time::timeout_at(until, attempts.wait_for(settled)).await;
    }

    /// Whether the plugin's latest good report declares the control `id`.
    pub fn declares_control(&self, id: &str) -> bool {
        self.state.lock().unwrap().latest_good.as_ref().is_some_and(|good| good.declares_control(id))
    }

    pub fn last_probe_id(&self) -> Option<String> {
        self.state.lock().unwrap().last_probe_id.clone()
    }

    fn mark_polled(&self, probe_id: Option<&str>) {
        let mut state = self.state.lock().unwrap();
        let now = Instant::now();
        // A pause longer than a report may be served says nothing of the cadence.
        if let Some(gap) = state.last_poll.map(|previous| now - previous).filter(|gap| *gap < STALE_AFTER) {
            state.poll_gap = Some(state.poll_gap.map_or(gap, |average| (average * 3 + gap) / 4));
        }
        state.last_poll = Some(now);
        if state.last_probe_id.as_deref() != probe_id {
            state.last_probe_id = probe_id.map(str::to_owned);
        }
        // Back from the slow cadence at once; what is served meanwhile is the
        // report the slow cadence kept fresh.
        if state.refresher_idle {
            state.refresher_idle = false;
            self.wake.notify_one();
        }
    }

    /// After a control: what the guest reported before is out of date. Polls
    /// wait for a report made after this point, which the plugin's worker makes
    /// at once and stores under the generation returned here.
    pub fn invalidate(&self) -> u64 {
        let mut state = self.state.lock().unwrap();
        state.generation += 1;
        state.good = None;
        state.failure = None;
        state.generation
    }

    /// Keeps the outcome of a report started at `generation`, unless a control came since.
    pub fn store(&self, generation: u64, result: Result<Arc<GoodReport>, CallError>) {
        let mut state = self.state.lock().unwrap();
        if generation != state.generation {
            return;
        }
        let now = Instant::now();
        match result {
            Ok(report) => {
                state.latest_good = Some(report.clone());
                state.good = Some((report, now));
                state.failures_in_a_row = 0;
                state.failure = None;
            }
            Err(err) => {
                state.failure = Some((err, now));
                state.failures_in_a_row += 1;
            }
        }
        drop(state);
        self.attempts.send_modify(|n| *n += 1);
    }

    /// The generation a refresh starting now stores its outcome under.
    pub fn generation(&self) -> u64 {
        self.state.lock().unwrap().generation
    }

    /// Whether a refresh that was merely late should be tried again at once:
    /// there is nothing good to serve, and it has not been late too often.
    pub fn retry_at_once(&self) -> bool {
        let state = self.state.lock().unwrap();
        let late = state.failure.as_ref().is_some_and(|(err, _)| merely_late(err));
        late && state.good.is_none() && state.failures_in_a_row < LATE_BEFORE_ERROR
    }

    /// Waits until a poll asks for a refresh now (the first after idling, or one
    /// with nothing to serve).
    pub async fn refresh_wanted(&self) {
        self.wake.notified().await
    }

    /// When the refresh after one that started at `started` and took `took`
    /// starts. While the probe polls: `LEAD` plus `took` before the poll its
    /// cadence predicts next, never sooner than half the refresh interval
    /// after `started`; else (right after the load) the refresh interval
    /// after this one, or `IDLE_REFRESH` while nothing polls.
    pub fn next_refresh_at(&self, started: Instant, took: Duration) -> Instant {
        let mut state = self.state.lock().unwrap();
        let now = Instant::now();
        state.loaded.get_or_insert(started);
        let gap = state.poll_gap.unwrap_or(self.interval).max(self.interval);
        let polled = state.last_poll.filter(|at| now - *at < gap * IDLE_AFTER_INTERVALS);
        let just_loaded = state.loaded.is_some_and(|at| now - at < self.interval * IDLE_AFTER_INTERVALS);
        state.refresher_idle = polled.is_none() && !just_loaded;
        let Some(last_poll) = polled else {
            return now + if state.refresher_idle { IDLE_REFRESH.max(self.interval) } else { self.interval };
        };
        let lead = (LEAD + took).min(gap / 2);
        let mut next_poll = last_poll + gap;
        while next_poll - lead <= now {
            next_poll += gap;
        }
        (next_poll - lead).max(started + self.interval / 2)
    }
}

/// Late refreshes in a row, with no good report, before polls get the error at once.
const LATE_BEFORE_ERROR: u32 = 3;

/// Whether a refresh that failed this way may still leave the previous report
/// served: it was only late (a starved CPU, a queue), not wrong.
fn merely_late(err: &CallError) -> bool {
    matches!(err, CallError::Deadline { .. } | CallError::OutOfTime { .. } | CallError::Busy { .. } | CallError::OverQuota { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::{PluginInfo, Report};
    use crate::config::limits::Limits;
    use crate::plugin_id::PluginId;
    use crate::serve::scope_json::{self, RenderContext, RenderLimits};

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
