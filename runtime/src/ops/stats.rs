//! Per-plugin counters and timings, kept by the worker and read by the admin
//! endpoint, `scope-wasm status` and the daemon's own Scope plugin.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::run::error::CallError;

/// Call times kept for the percentiles: the most recent ones.
const RECENT_CALLS: usize = 1024;
/// The calls that decide whether a plugin is healthy now.
const HEALTH_WINDOW: usize = 20;

/// Upper bounds of the call-time histogram's buckets, in seconds (a `+Inf`
/// bucket follows): 1 ms to 1 s, around the probe's 500 ms budget.
pub const CALL_SECONDS_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];
const BUCKET_MICROS: [u64; 10] = [1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000];

#[derive(Default)]
pub struct PluginStats {
    calls: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    /// The most recent calls: time taken and the cause if it failed.
    recent: Mutex<VecDeque<(u64, Option<&'static str>)>>,
    memory_bytes: AtomicU64,
    /// The text of the last failure (bounded, as every error text is).
    last_error: Mutex<Option<String>>,
    /// Every call's time, in buckets (not cumulative; the last is `+Inf`).
    /// Written and read under `recent`'s lock, so a snapshot's counts, sum and
    /// `calls` agree.
    call_buckets: [AtomicU64; CALL_SECONDS_BUCKETS.len() + 1],
    call_micros: AtomicU64,
    /// CPU time of its calls: guest code and the host's checking and rendering.
    cpu_nanos: AtomicU64,
}

/// Call times as a Prometheus histogram: cumulative counts per upper bound.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct CallHistogram {
    /// `(le, calls that took at most le seconds)` for `CALL_SECONDS_BUCKETS`.
    pub buckets: Vec<(f64, u64)>,
    /// All calls (the `+Inf` bucket) and the seconds they took together.
    pub count: u64,
    pub sum_seconds: f64,
}

/// A consistent copy of the counters.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct StatsSnapshot {
    pub calls: u64,
    /// Failed calls by cause (`deadline`, `trap`, `out-of-memory`, `busy`, ...).
    pub errors: BTreeMap<String, u64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Linear memory of the live instance.
    pub memory_bytes: u64,
    /// Of the last calls (up to 20): how many, how many failed, how many hit a limit.
    pub recent_calls: u64,
    pub recent_failures: u64,
    pub recent_limit_hits: u64,
    /// What the last failure said, as the probe got it.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Every call's time since the plugin was first loaded.
    #[serde(default)]
    pub call_seconds: CallHistogram,
    /// CPU time its calls took (guest and the host's work on their answers).
    #[serde(default)]
    pub cpu_seconds: f64,
}

impl StatsSnapshot {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn deadline_hits(&self) -> u64 {
        self.errors.get("deadline").copied().unwrap_or(0)
    }
}

impl PluginStats {
    /// One call into the plugin (answered or refused) and how long it took.
    pub fn record(&self, took: Duration, result: Result<(), &CallError>) {
        if let Err(err) = result {
            self.record_error(err);
        }
        let micros = took.as_micros().min(u64::MAX as u128) as u64;
        let mut recent = self.recent.lock().unwrap();
        let bucket = BUCKET_MICROS.iter().position(|&bound| micros <= bound).unwrap_or(BUCKET_MICROS.len());
        self.call_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.call_micros.fetch_add(micros, Ordering::Relaxed);
        if recent.len() == RECENT_CALLS {
            recent.pop_front();
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        recent.push_back((micros, result.err().map(CallError::cause)));
    }

    /// A failure found outside a call (e.g. a report the probe would refuse).
    pub fn record_error(&self, err: &CallError) {
        *self.errors.lock().unwrap().entry(err.cause()).or_default() += 1;
        *self.last_error.lock().unwrap() = Some(err.to_string());
    }

    pub fn add_cpu(&self, cpu: Duration) {
        self.cpu_nanos.fetch_add(cpu.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    pub fn set_memory(&self, bytes: usize) {
        self.memory_bytes.store(bytes as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let recent = self.recent.lock().unwrap();
        let last_causes: Vec<Option<&str>> = recent.iter().rev().take(HEALTH_WINDOW).map(|(_, cause)| *cause).collect();
        let mut times: Vec<u64> = recent.iter().map(|(us, _)| *us).collect();
        let calls = self.calls.load(Ordering::Relaxed);
        let call_seconds = self.histogram();
        drop(recent);
        times.sort_unstable();
        let at = |q: f64| {
            if times.is_empty() {
                return 0.0;
            }
            let index = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1;
            times[index] as f64 / 1000.0
        };
        StatsSnapshot {
            calls,
            errors: self.errors.lock().unwrap().iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            memory_bytes: self.memory_bytes.load(Ordering::Relaxed),
            recent_calls: last_causes.len() as u64,
            recent_failures: last_causes.iter().filter(|c| c.is_some()).count() as u64,
            recent_limit_hits: last_causes.iter().filter(|c| matches!(c, Some("deadline" | "out-of-memory"))).count() as u64,
            last_error: self.last_error.lock().unwrap().clone(),
            call_seconds,
            cpu_seconds: self.cpu_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }

    /// Under `recent`'s lock.
    fn histogram(&self) -> CallHistogram {
        let mut so_far = 0;
        let mut buckets = Vec::with_capacity(CALL_SECONDS_BUCKETS.len());
        for (le, n) in CALL_SECONDS_BUCKETS.iter().zip(&self.call_buckets) {
            so_far += n.load(Ordering::Relaxed);
            buckets.push((*le, so_far));
        }
        let count = so_far + self.call_buckets[CALL_SECONDS_BUCKETS.len()].load(Ordering::Relaxed);
        CallHistogram { buckets, count, sum_seconds: self.call_micros.load(Ordering::Relaxed) as f64 / 1e6 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin_id::PluginId;

    #[test]
    fn counts_causes_and_percentiles() {
        let stats = PluginStats::default();
        let plugin = PluginId::parse("p").unwrap();
        for ms in 1..=100 {
            stats.record(Duration::from_millis(ms), Ok(()));
        }
        let deadline = CallError::Deadline { plugin: plugin.clone(), budget: Duration::from_millis(400) };
        stats.record(Duration::from_millis(400), Err(&deadline));
        stats.record_error(&CallError::InvalidOutput { plugin, detail: "x".into() });
        stats.set_memory(3 << 20);
        let snap = stats.snapshot();
        assert_eq!(snap.calls, 101);
        assert_eq!(snap.deadline_hits(), 1);
        assert_eq!(snap.errors["invalid-output"], 1);
        assert_eq!(snap.error_count(), 2);
        assert_eq!(snap.p50_ms, 51.0);
        assert_eq!(snap.p99_ms, 100.0);
        assert_eq!(snap.memory_bytes, 3 << 20);
        assert_eq!(snap.last_error.as_deref(), Some("plugin p: invalid report: x"));
        // 1..=100 ms and 400 ms: cumulative per bound, every call in the count.
        let hist = &snap.call_seconds;
        assert_eq!(hist.count, snap.calls);
        let at = |le: f64| hist.buckets.iter().find(|(b, _)| *b == le).unwrap().1;
        assert_eq!((at(0.001), at(0.005), at(0.01), at(0.1), at(0.25), at(0.5), at(1.0)), (1, 5, 10, 100, 100, 101, 101));
        assert!((hist.sum_seconds - (5.050 + 0.4)).abs() < 1e-9, "{}", hist.sum_seconds);
    }

    #[test]
    fn slow_calls_land_past_the_last_bound() {
        let stats = PluginStats::default();
        stats.record(Duration::from_secs(3), Ok(()));
        let hist = stats.snapshot().call_seconds;
        assert_eq!((hist.buckets.last().copied(), hist.count), (Some((1.0, 0)), 1));
    }
}
