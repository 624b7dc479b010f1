//! The task that owns a plugin's instance and runs its calls one at a time.
//!
//! Requests hand their call to the worker over a channel and wait for the answer
//! until their deadline. Guest code never runs on a connection's task, so a
//! client hanging up can never cancel a guest half-way through a call.
//!
//! The worker also does the host's own work on what the guest returned
//! (checking and rendering its report), on the guest runtime: that work is
//! bounded by the plugin's report limits, delays only this plugin, and never
//! runs on the threads that answer other plugins' sockets. And it runs the
//! background refreshes itself, when the report cache says, so a refresh
//! costs no trip between runtimes.
//!
//! A control that finds the worker idle runs on the thread that received it
//! instead (`run_here`), and so does the report after it: a control then
//! costs no thread switch but the client's own. A call that runs on past its
//! first poll makes that thread hand its share of serving sockets to another
//! first (`on_this_thread`), so no other plugin's poll waits behind a guest.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::runtime::RuntimeFlavor;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::Instant;

use crate::bindings::{ControlError, ControlRequest, PluginInfo, Report};
use crate::config::limits::Limits;
use crate::config::policy::PluginPolicy;
use crate::host::HostServices;
use crate::load::loader::CompiledPlugin;
use crate::ops::stats::PluginStats;
use crate::plugin_id::PluginId;
use crate::run::error::CallError;
use crate::run::guest_runtime::{AsGuestThread, CallerSeat};
use crate::run::instance::{Answer, Call, PluginInstance};
use crate::run::limits::{MAX_ERROR_TEXT_BYTES, bounded_text};
use crate::run::quota::{TenantQuota, measure_cpu};
use crate::serve::refresh::{GoodReport, ReportCache};
use crate::serve::scope_json::{self, RenderContext, RenderLimits};

/// What `describe` may return: a name for the UI's plugin list and a sentence.
const MAX_LABEL_BYTES: usize = 256;
const MAX_DESCRIPTION_BYTES: usize = 4 << 10;

/// Calls waiting for a plugin beyond this are answered "busy" at once.
const QUEUE_DEPTH: usize = 16;

/// How long after its deadline a waiting request gives up on the worker. The
/// worker itself answers at the deadline; this only fires when the call never
/// got its turn.
const QUEUE_GRACE: Duration = Duration::from_millis(30);

/// How long past the guest's deadline a background refresh waits for the
/// host to check and render what the guest returned. That work is bounded by
/// the report limits, not by the call budget: no probe waits for a refresh.
const RENDER_WAIT: Duration = Duration::from_secs(10);

struct Job {
    call: Call,
    /// The `probe_id` a control's shortcut report is rendered for.
    probe_id: Option<String>,
    deadline: Instant,
    reply: oneshot::Sender<Result<Done, CallError>>,
}

/// A call's outcome once the host has done its part: reports checked and
/// rendered, guest errors turned into call errors.
pub enum Done {
    Describe(PluginInfo),
    Report(Arc<GoodReport>),
    /// The body of a successful `POST /control`, or the guest's refusal.
    Control(Result<Vec<u8>, ControlError>),
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
    /// The instance and what its calls are charged to: the worker task's, lent
    /// to a control that runs on the thread that received it.
    worker: Arc<Mutex<Worker>>,
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

impl PluginHandle {
    /// Instantiates the plugin and asks it to describe itself. Fails if it
    /// cannot, or if its label is empty (the probe would refuse every report).
    pub async fn start(
        compiled: &CompiledPlugin,
        services: Arc<HostServices>,
        policy: PluginPolicy,
        stats: Arc<PluginStats>,
    ) -> Result<Arc<Self>, CallError> {
        Self::start_with(compiled, services, policy, stats, true).await
    }

    /// A plugin that reports only when asked: `scope-wasm test` runs its
    /// script's steps and nothing else, so no refresh comes between them.
    pub async fn start_on_demand(compiled: &CompiledPlugin, services: Arc<HostServices>, policy: PluginPolicy) -> Result<Arc<Self>, CallError> {
        Self::start_with(compiled, services, policy, Default::default(), false).await
    }

    async fn start_with(
        compiled: &CompiledPlugin,
        services: Arc<HostServices>,
        policy: PluginPolicy,
        stats: Arc<PluginStats>,
        refresh: bool,
    ) -> Result<Arc<Self>, CallError> {
        let id = compiled.id.clone();
        let instance = PluginInstance::new(compiled, services.clone(), policy.clone());
        let limits = policy.limits;
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let load = Arc::new(Load::default());
        let cache = Arc::new(ReportCache::new(limits.refresh_interval));
        let host = HostWork { services: services.clone(), limits: limits.clone(), cache: cache.clone(), info: None, previous_report: None, refreshes: refresh };
        let quota = policy.quota.0.clone();
        let worker = Arc::new(Mutex::new(Worker { instance, host, stats: stats.clone(), quota, backoff: Backoff::default() }));
        crate::run::guest_runtime::handle().spawn(run_worker(worker.clone(), queue, load.clone()));
        let mut handle = Self {
            id: id.clone(),
            info: PluginInfo { label: String::new(), description: String::new() },
            cache,
            limits,
            stats,
            jobs,
            load,
            worker,
        };
        // Not counted in the stats: they belong to the version serving, and
        // this one may never serve.
        let info = match handle.queue_call(Call::Describe, None, handle.deadline()).await? {
            Done::Describe(info) => info,
            _ => unreachable!("describe answers with plugin info"),
        };
        if info.label.trim().is_empty() {
            return Err(CallError::InvalidOutput {
                plugin: id,
                detail: "`describe` returned an empty label; the probe refuses plugins without one".into(),
            });
        }
        // Both go into every report and the UI's plugin list.
        if info.label.len() > MAX_LABEL_BYTES || info.description.len() > MAX_DESCRIPTION_BYTES {
            return Err(CallError::InvalidOutput {
                plugin: id,
                detail: format!(
                    "`describe` returned a label of {} bytes and a description of {} bytes; the limits are \
                     {MAX_LABEL_BYTES} and {MAX_DESCRIPTION_BYTES}",
                    info.label.len(),
                    info.description.len()
                ),
            });
        }
        handle.info = info;
        let handle = Arc::new(handle);
        if !refresh {
            return Ok(handle);
        }
        // The worker refreshes from its first `describe` on. The first report
        // is made before the socket opens, so the first poll is answered from
        // memory like every other (good or failed, it is known).
        handle.cache.first_outcome(handle.deadline() + RENDER_WAIT).await;
        Ok(handle)
    }

    /// The deadline of a call arriving now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.limits.call_budget
    }

    /// A fresh report, checked and rendered. The guest must answer by
    /// `deadline`; the host's rendering after it may take longer.
    pub async fn report(&self, deadline: Instant) -> Result<Arc<GoodReport>, CallError> {
        match self.call(Call::Report, None, deadline).await? {
            Done::Report(report) => Ok(report),
            _ => unreachable!("report answers with a report"),
        }
    }

    /// Runs a control; a success is the response body rendered for `probe_id`.
    pub async fn control(
        &self,
        request: ControlRequest,
        probe_id: Option<String>,
        deadline: Instant,
    ) -> Result<Result<Vec<u8>, ControlError>, CallError> {
        match self.call(Call::Control(request), probe_id, deadline).await? {
            Done::Control(response) => Ok(response),
            _ => unreachable!("control answers with a control response"),
        }
    }

    /// Runs `call` on this thread if the worker is idle and nothing waits for
    /// it, else gives the call back to be queued (see `on_this_thread`). The
    /// report after a successful control is made here too, as a task of its
    /// own that runs once the answer has left.
    async fn run_here(&self, call: Call, probe_id: Option<&str>, deadline: Instant) -> Result<Result<Done, CallError>, Call> {
        let on_multi_thread = tokio::runtime::Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
        if !on_multi_thread || self.load.pending.load(Ordering::Relaxed) > 0 {
            return Err(call);
        }
        let Some(seat) = CallerSeat::take() else { return Err(call) };
        let Ok(mut worker) = self.worker.clone().try_lock_owned() else { return Err(call) };
        let started = Instant::now();
        self.load.pending.fetch_add(1, Ordering::Relaxed);
        let result = on_this_thread(std::pin::pin!(worker.run(call, probe_id, deadline))).await;
        self.load.finished(started.elapsed());
        if !worker.outdates_report(&result) {
            return Ok(result);
        }
        // Out of date before the answer leaves. The task below runs on this
        // thread after it (the task just spawned is the next one here), still
        // holding the worker: nothing comes between the control and its report.
        let generation = self.cache.invalidate();
        let load = self.load.clone();
        load.pending.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let started = Instant::now();
            on_this_thread(std::pin::pin!(worker.report_into_cache(generation))).await;
            load.finished(started.elapsed());
            drop(seat);
        });
        Ok(result)
    }

    async fn call(&self, call: Call, probe_id: Option<String>, deadline: Instant) -> Result<Done, CallError> {
        let started = Instant::now();
        // A control runs where it was received when it can; everything else is queued.
        let result = match call {
            Call::Control(_) => match self.run_here(call, probe_id.as_deref(), deadline).await {
                Ok(result) => result,
                Err(call) => self.queue_call(call, probe_id, deadline).await,
            },
            call => self.queue_call(call, probe_id, deadline).await,
        };
        self.stats.record(started.elapsed(), result.as_ref().map(|_| ()));
        result
    }

    async fn queue_call(&self, call: Call, probe_id: Option<String>, deadline: Instant) -> Result<Done, CallError> {
        let busy = || CallError::Busy { plugin: self.id.clone() };
        let turn = Instant::now().checked_add(self.load.expected_wait());
        if turn.is_none_or(|turn| turn >= deadline) {
            return Err(busy());
        }
        let is_report = matches!(call, Call::Report);
        let (reply, answer) = oneshot::channel();
        // Counted before the send: the worker may finish the job (and count it
        // off) before `try_send` even returns.
        self.load.pending.fetch_add(1, Ordering::Relaxed);
        if self.jobs.try_send(Job { call, probe_id, deadline, reply }).is_err() {
            self.load.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(busy());
        }
        let answer_by = deadline + if is_report { RENDER_WAIT } else { QUEUE_GRACE };
        match tokio::time::timeout_at(answer_by, answer).await {
            Ok(Ok(result)) => result,
            // The worker is gone, or the call never got its turn.
            Ok(Err(_)) | Err(_) => Err(busy()),
        }
    }
}

/// Runs a guest call, or a report into the cache, on the thread that polls
/// this: most finish within their first poll, with no thread switch at all.
/// One that does not (it met an epoch tick, or awaits a host call) is finished
/// on this thread after it hands its share of serving sockets to another
/// (`block_in_place`), at the guest threads' priority. Callers hold a
/// `CallerSeat`: at most one such call per CPU runs at a time, so guests
/// never hold more threads than there are CPUs beyond the guest runtime's own.
async fn on_this_thread<F: Future>(mut run: std::pin::Pin<&mut F>) -> F::Output {
    // Timers and I/O the call starts belong to the guest runtime, as a worker's do.
    let first = std::future::poll_fn(|cx| {
        let _guests = crate::run::guest_runtime::handle().enter();
        Poll::Ready(run.as_mut().poll(cx))
    })
    .await;
    match first {
        Poll::Ready(output) => output,
        Poll::Pending => tokio::task::block_in_place(|| {
            let _batch = AsGuestThread::enter();
            crate::run::guest_runtime::handle().block_on(run)
        }),
    }
}

/// What the host needs to finish a call: render the guest's report as the
/// probe will read it.
struct HostWork {
    /// Its host name and clock: only its own host node passes, at its time.
    services: Arc<HostServices>,
    limits: Limits,
    /// Where refreshes are stored and scheduled, and the probe's latest
    /// `probe_id` is remembered, to render for it at once.
    cache: Arc<ReportCache>,
    /// What the guest said of itself, once it has.
    info: Option<PluginInfo>,
    /// The latest report that passed, as the guest returned it and as rendered.
    previous_report: Option<(Report, Arc<GoodReport>)>,
    /// Whether the worker refreshes the report in the background, and after
    /// each successful control (not for `scope-wasm test`, whose script says
    /// when the guest reports).
    refreshes: bool,
}

impl HostWork {
    fn finish(&mut self, plugin: &PluginId, answer: Answer, probe_id: Option<&str>) -> Result<Done, CallError> {
        let invalid = |detail: String| CallError::InvalidOutput { plugin: plugin.clone(), detail };
        let now_ms = self.services.now_ms();
        let empty = PluginInfo { label: String::new(), description: String::new() };
        let info = self.info.as_ref().unwrap_or(&empty);
        let ctx = RenderContext { plugin, info, hostname: Some(&self.services.hostname), now_ms };
        let limits = RenderLimits { max_bytes: self.limits.max_report_bytes, items: &self.limits.report };
        match answer {
            Answer::Describe(info) => {
                self.info = Some(info.clone());
                Ok(Done::Describe(info))
            }
            Answer::Report(Ok(report)) => {
                // The same report as the previous good one passes the same checks
                // and gives the same bytes (its timestamps too): nothing to redo.
                if let Some((previous, good)) = &self.previous_report
                    && *previous == report
                {
                    return Ok(Done::Report(good.clone()));
                }
                // Sized as the previous one: a report like the last grows no buffer.
                let expected_bytes = self.previous_report.as_ref().map_or(0, |(_, good)| good.len() + 64);
                let rendered = scope_json::encode_report_like(&ctx, &report, limits, expected_bytes).map_err(invalid)?;
                let good = Arc::new(GoodReport::new(rendered, now_ms));
                // Rendered for the probe that polls now, so its polls cost a copy of a pointer.
                if let Some(probe_id) = self.cache.last_probe_id() {
                    let _ = good.body(Some(&probe_id));
                }
                self.previous_report = Some((report, good.clone()));
                Ok(Done::Report(good))
            }
            Answer::Report(Err(message)) => Err(CallError::Guest {
                plugin: plugin.clone(),
                message: bounded_text(&message, MAX_ERROR_TEXT_BYTES).into_owned(),
            }),
            Answer::Control(Ok(response)) => {
                let body = scope_json::encode_control_response(&ctx, &response, limits, probe_id).map_err(invalid)?;
                Ok(Done::Control(Ok(body)))
            }
            Answer::Control(Err(err)) => Ok(Done::Control(Err(err))),
        }
    }
}

async fn run_worker(worker: Arc<Mutex<Worker>>, mut queue: mpsc::Receiver<Job>, load: Arc<Load>) {
    let (cache, refreshes) = {
        let worker = worker.lock().await;
        (worker.host.cache.clone(), worker.host.refreshes)
    };
    // None until the guest has described itself: a report needs its label.
    let mut next_refresh: Option<Instant> = None;
    loop {
        let refresh_due = async {
            match next_refresh {
                Some(at) => tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = cache.refresh_wanted() => {}
                },
                None => std::future::pending().await,
            }
        };
        // Calls first: a control waiting behind a refresh that is merely due waits less.
        let job = tokio::select! {
            biased;
            job = queue.recv() => match job {
                Some(job) => job,
                None => return,
            },
            _ = refresh_due => {
                next_refresh = Some(worker.lock().await.refresh(&load).await);
                continue;
            }
        };
        let Job { call, probe_id, deadline, reply } = job;
        let started = Instant::now();
        if reply.is_closed() {
            load.finished(Duration::ZERO);
            continue;
        }
        let mut worker = worker.lock().await;
        let result = worker.run(call, probe_id.as_deref(), deadline).await;
        load.finished(started.elapsed());
        if refreshes && next_refresh.is_none() && matches!(result, Ok(Done::Describe(_))) {
            next_refresh = Some(Instant::now());
        }
        // A control changed the plugin's state: what it reported before is out
        // of date from the moment the control is answered, and the report after
        // it is made here at once.
        let generation = worker.outdates_report(&result).then(|| cache.invalidate());
        let _ = reply.send(result);
        if let Some(generation) = generation {
            worker.report_into_cache(generation).await;
        }
    }
}

/// The worker's side of a plugin: its instance and everything a call through it is charged to.
struct Worker {
    instance: PluginInstance,
    host: HostWork,
    stats: Arc<PluginStats>,
    quota: Option<Arc<TenantQuota>>,
    backoff: Backoff,
}

impl Worker {
    /// Whether `result` is a control that changed the plugin's state, so that
    /// what it reported before is out of date (only where the worker refreshes).
    fn outdates_report(&self, result: &Result<Done, CallError>) -> bool {
        self.host.refreshes && matches!(result, Ok(Done::Control(Ok(_))))
    }

    /// A background refresh, stored in the cache; returns when the next is due.
    async fn refresh(&mut self, load: &Load) -> Instant {
        let started = Instant::now();
        load.pending.fetch_add(1, Ordering::Relaxed);
        let generation = self.host.cache.generation();
        self.report_into_cache(generation).await;
        load.finished(started.elapsed());
        if self.host.cache.retry_at_once() {
            return Instant::now();
        }
        self.host.cache.next_refresh_at(started, started.elapsed())
    }

    /// Runs the guest's report, counted in the stats like a call, and stores it
    /// under `generation`.
    async fn report_into_cache(&mut self, generation: u64) {
        let started = Instant::now();
        let deadline = started + self.host.limits.call_budget;
        let result = self.run(Call::Report, None, deadline).await.map(|done| match done {
            Done::Report(report) => report,
            _ => unreachable!("report answers with a report"),
        });
        self.stats.record(started.elapsed(), result.as_ref().map(|_| ()));
        self.host.cache.store(generation, result);
    }

    /// One call: refused at once while backed off or over the tenant's share,
    /// else run in the guest and finished by the host, its CPU time charged.
    async fn run(&mut self, call: Call, probe_id: Option<&str>, deadline: Instant) -> Result<Done, CallError> {
        let instance = &mut self.instance;
        if let Some(refusal) = self.backoff.refusal(instance.id()) {
            return Err(refusal);
        }
        // A tenant over its CPU share waits for the refill; `describe` still
        // runs (and is charged), so a new version can load.
        if let Some(quota) = self.quota.as_ref().filter(|_| !matches!(call, Call::Describe))
            && !quota.may_call()
        {
            return Err(CallError::OverQuota { plugin: instance.id().clone(), tenant: quota.tenant.clone() });
        }
        let host = &mut self.host;
        // Checking and rendering the guest's answer is work done for it: it counts too.
        let ((result, poisoned), cpu) = measure_cpu(async {
            let answer = instance.call(call, deadline).await;
            let result = late_if_out_of_time(instance.id(), answer, deadline);
            let poisoned = matches!(&result, Err(err) if err.poisons_instance());
            (result.and_then(|answer| host.finish(instance.id(), answer, probe_id)), poisoned)
        })
        .await;
        self.stats.add_cpu(cpu);
        if let Some(quota) = &self.quota {
            quota.spent(cpu);
        }
        self.stats.set_memory(instance.memory_bytes());
        match &result {
            Err(err) if poisoned => {
                tracing::warn!(plugin = %instance.id(), error = %err, "guest call failed");
                self.backoff.failed(err);
            }
            Err(err @ CallError::InvalidOutput { .. }) => tracing::warn!(plugin = %instance.id(), error = %err, "report refused"),
            Err(err) => tracing::debug!(plugin = %instance.id(), error = %err, "guest call refused"),
            Ok(_) => self.backoff.succeeded(instance.id()),
        }
        result
    }
}

/// A report error answered once host calls had to give up (within the last
/// `GUEST_GRACE` of the budget) was caused by the time running out, not by
/// what the guest found: it counts as late, so the previous good report stays
/// served (see `refresh::merely_late`).
fn late_if_out_of_time(plugin: &PluginId, result: Result<Answer, CallError>, deadline: Instant) -> Result<Answer, CallError> {
    match result {
        Ok(Answer::Report(Err(message))) if Instant::now() + crate::run::state::GUEST_GRACE >= deadline => {
            Err(CallError::OutOfTime { plugin: plugin.clone(), message: bounded_text(&message, MAX_ERROR_TEXT_BYTES).into_owned() })
        }
        other => other,
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
                plugin = %err.plugin(),
                failures = self.failures_in_a_row,
                "{}; answering errors for {} ms without running it",
                self.last_error,
                cool_down.as_millis()
            );
            self.cool_until = Some(Instant::now() + cool_down);
        }
    }

    fn succeeded(&mut self, plugin: &PluginId) {
        if self.failures_in_a_row > 0 {
            tracing::info!(plugin = %plugin, failures = self.failures_in_a_row, "plugin recovered");
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

        backoff.succeeded(&plugin);
        assert!(backoff.refusal(&plugin).is_none());
        assert_eq!(backoff.failures_in_a_row, 0);
    }
}
