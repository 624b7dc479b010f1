//! The task that owns a plugin's instance and runs its calls one at a time.
//!
//! Requests hand their call to the worker over a channel and wait for the answer
//! until their deadline. Guest code never runs on a connection's task, so a
//! client hanging up can never cancel a guest half-way through a call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::bindings::{ControlError, ControlRequest, ControlResponse, PluginInfo, Report};
use crate::error::CallError;
use crate::instance::{Answer, Call, PluginInstance};
use crate::host::HostServices;
use crate::limits::Limits;
use crate::policy::PluginPolicy;
use crate::loader::CompiledPlugin;
use crate::plugin_id::PluginId;
use crate::refresh::{ReportCache, run_refresher};
use crate::stats::PluginStats;

/// Calls waiting for a plugin beyond this are answered "busy" at once.
const QUEUE_DEPTH: usize = 16;

/// How long after its deadline a waiting request gives up on the worker. The
/// worker itself answers at the deadline; this only fires when the call never
/// got its turn.
const QUEUE_GRACE: Duration = Duration::from_millis(30);

struct Job {
    call: Call,
    deadline: Instant,
    reply: oneshot::Sender<Result<Answer, CallError>>,
}

/// A running plugin: its identity, what it said of itself, its worker and its
/// report cache.
pub struct PluginHandle {
    pub id: PluginId,
    pub info: PluginInfo,
    pub limits: Limits,
    pub cache: Arc<ReportCache>,
    pub stats: Arc<PluginStats>,
    jobs: mpsc::Sender<Job>,
    load: Arc<Load>,
}

/// What the worker has on its plate, to refuse at once a call that could not
/// get its turn before its deadline.
#[derive(Default)]
struct Load {
    /// Calls queued or running.
    pending: AtomicUsize,
    /// Recent call time (exponential moving average), microseconds.
    recent_call_us: AtomicU64,
}

impl Load {
    fn expected_wait(&self) -> Duration {
        let ahead = self.pending.load(Ordering::Relaxed) as u64;
        Duration::from_micros(ahead.saturating_mul(self.recent_call_us.load(Ordering::Relaxed)))
    }

    fn finished(&self, took: Duration) {
        let sample = took.as_micros().min(u64::MAX as u128) as u64;
        let old = self.recent_call_us.load(Ordering::Relaxed);
        self.recent_call_us.store((old * 3 + sample) / 4, Ordering::Relaxed);
        self.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for PluginHandle {
    fn drop(&mut self) {
        self.cache.close();
    }
}

impl PluginHandle {
    /// Instantiates the plugin and asks it to describe itself. Fails if it
    /// cannot, or if its label is empty (the probe would refuse every report).
    pub async fn start(
        compiled: &CompiledPlugin,
        services: Arc<HostServices>,
        policy: PluginPolicy,
        stats: Arc<PluginStats>,
    ) -> Result<Arc<Self>, CallError> {
        let id = compiled.id.clone();
        let instance = PluginInstance::new(id.clone(), compiled.pre.clone(), services, policy.clone());
        let limits = policy.limits;
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let load = Arc::new(Load::default());
        crate::guest_runtime::handle().spawn(run_worker(instance, queue, load.clone(), stats.clone()));
        let mut handle = Self {
            id: id.clone(),
            info: PluginInfo { label: String::new(), description: String::new() },
            cache: Arc::new(ReportCache::new(limits.refresh_interval)),
            limits,
            stats,
            jobs,
            load,
        };
        // Not counted in the stats: they belong to the version serving, and
        // this one may never serve.
        let info = match handle.queue_call(Call::Describe, handle.deadline()).await? {
            Answer::Describe(info) => info,
            _ => unreachable!("describe answers with plugin info"),
        };
        if info.label.trim().is_empty() {
            return Err(CallError::InvalidOutput {
                plugin: id,
                detail: "`describe` returned an empty label; the probe refuses plugins without one".into(),
            });
        }
        handle.info = info;
        let handle = Arc::new(handle);
        tokio::spawn(run_refresher(Arc::downgrade(&handle), handle.cache.clone()));
        Ok(handle)
    }

    /// The deadline of a call arriving now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.limits.call_budget
    }

    pub async fn report(&self, deadline: Instant) -> Result<Result<Report, String>, CallError> {
        match self.call(Call::Report, deadline).await? {
            Answer::Report(report) => Ok(report),
            _ => unreachable!("report answers with a report"),
        }
    }

    pub async fn control(
        &self,
        request: ControlRequest,
        deadline: Instant,
    ) -> Result<Result<ControlResponse, ControlError>, CallError> {
        match self.call(Call::Control(request), deadline).await? {
            Answer::Control(response) => Ok(response),
            _ => unreachable!("control answers with a control response"),
        }
    }

    async fn call(&self, call: Call, deadline: Instant) -> Result<Answer, CallError> {
        let started = Instant::now();
        let result = self.queue_call(call, deadline).await;
        self.stats.record(started.elapsed(), result.as_ref().map(|_| ()));
        result
    }

    async fn queue_call(&self, call: Call, deadline: Instant) -> Result<Answer, CallError> {
        let busy = || CallError::Busy { plugin: self.id.clone() };
        let turn = Instant::now().checked_add(self.load.expected_wait());
        if turn.is_none_or(|turn| turn >= deadline) {
            return Err(busy());
        }
        let (reply, answer) = oneshot::channel();
        // Counted before the send: the worker may finish the job (and count it
        // off) before `try_send` even returns.
        self.load.pending.fetch_add(1, Ordering::Relaxed);
        if self.jobs.try_send(Job { call, deadline, reply }).is_err() {
            self.load.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(busy());
        }
        match tokio::time::timeout_at(deadline + QUEUE_GRACE, answer).await {
            Ok(Ok(result)) => result,
            // The worker is gone, or the call never got its turn.
            Ok(Err(_)) | Err(_) => Err(busy()),
        }
    }
}

async fn run_worker(mut instance: PluginInstance, mut queue: mpsc::Receiver<Job>, load: Arc<Load>, stats: Arc<PluginStats>) {
    let mut backoff = Backoff::default();
    while let Some(job) = queue.recv().await {
        let started = Instant::now();
        if job.reply.is_closed() {
            load.finished(Duration::ZERO);
            continue;
        }
        if let Some(refusal) = backoff.refusal(instance.id()) {
            load.finished(Duration::ZERO);
            let _ = job.reply.send(Err(refusal));
            continue;
        }
        let result = instance.call(job.call, job.deadline).await;
        load.finished(started.elapsed());
        stats.set_memory(instance.memory_bytes());
        match &result {
            Err(err) if err.poisons_instance() => {
                tracing::warn!(error = %err, "guest call failed");
                backoff.failed(err);
            }
            Err(err) => tracing::debug!(error = %err, "guest call refused"),
            Ok(_) => backoff.succeeded(),
        }
        let _ = job.reply.send(result);
    }
}

/// Failures in a row before a plugin is backed off.
const FAILURES_BEFORE_BACKOFF: u32 = 3;
const FIRST_COOL_DOWN: Duration = Duration::from_secs(1);
const MAX_COOL_DOWN: Duration = Duration::from_secs(30);

/// A plugin that fails every call (traps, deadlines, out of memory) is answered
/// at once during a cool-down instead of burning a CPU for its whole budget on
/// every poll. The cool-down doubles while failures go on; the first call after
/// it runs the guest again, and one success clears everything.
#[derive(Default)]
struct Backoff {
    failures_in_a_row: u32,
    cool_until: Option<Instant>,
    last_error: String,
}

impl Backoff {
    fn refusal(&self, plugin: &PluginId) -> Option<CallError> {
        let until = self.cool_until?;
        let now = Instant::now();
        (now < until).then(|| CallError::BackingOff {
            plugin: plugin.clone(),
            retry_in: until - now,
            last_error: self.last_error.clone(),
        })
    }

    fn failed(&mut self, err: &CallError) {
        self.failures_in_a_row += 1;
        self.last_error = err.to_string();
        if let Some(excess) = self.failures_in_a_row.checked_sub(FAILURES_BEFORE_BACKOFF) {
            let cool_down = FIRST_COOL_DOWN.saturating_mul(1 << excess.min(5)).min(MAX_COOL_DOWN);
            tracing::warn!(
                failures = self.failures_in_a_row,
                "{}; answering errors for {} ms without running it",
                self.last_error,
                cool_down.as_millis()
            );
            self.cool_until = Some(Instant::now() + cool_down);
        }
    }

    fn succeeded(&mut self) {
        if self.failures_in_a_row > 0 {
            tracing::info!(failures = self.failures_in_a_row, "plugin recovered");
        }
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_after_repeated_failures_and_forgets_on_success() {
        let plugin = PluginId::parse("p").unwrap();
        let trap = CallError::Trap { plugin: plugin.clone(), detail: "boom".into() };
        let mut backoff = Backoff::default();
        for _ in 0..FAILURES_BEFORE_BACKOFF - 1 {
            backoff.failed(&trap);
            assert!(backoff.refusal(&plugin).is_none(), "not yet");
        }
        backoff.failed(&trap);
        match backoff.refusal(&plugin) {
            Some(CallError::BackingOff { retry_in, last_error, .. }) => {
                assert!(retry_in <= FIRST_COOL_DOWN && retry_in > FIRST_COOL_DOWN / 2);
                assert!(last_error.contains("boom"));
            }
            other => panic!("expected a back-off, got {other:?}"),
        }
        // Each further failure doubles the cool-down, up to the cap.
        for _ in 0..10 {
            backoff.failed(&trap);
        }
        let Some(CallError::BackingOff { retry_in, .. }) = backoff.refusal(&plugin) else { panic!() };
        assert!(retry_in > MAX_COOL_DOWN / 2 && retry_in <= MAX_COOL_DOWN);

        backoff.succeeded();
        assert!(backoff.refusal(&plugin).is_none());
        assert_eq!(backoff.failures_in_a_row, 0);
    }
}
