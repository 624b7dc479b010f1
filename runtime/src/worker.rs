//! The task that owns a plugin's instance and runs its calls one at a time.
//!
//! Requests hand their call to the worker over a channel and wait for the answer
//! until their deadline. Guest code never runs on a connection's task, so a
//! client hanging up can never cancel a guest half-way through a call.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::bindings::{ControlError, ControlRequest, ControlResponse, PluginInfo, Report};
use crate::error::CallError;
use crate::instance::{Answer, Call, PluginInstance};
use crate::limits::Limits;
use crate::loader::CompiledPlugin;
use crate::plugin_id::PluginId;

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

/// A running plugin: its identity, what it said of itself, and its worker.
pub struct PluginHandle {
    pub id: PluginId,
    pub info: PluginInfo,
    pub limits: Limits,
    jobs: mpsc::Sender<Job>,
}

impl PluginHandle {
    /// Instantiates the plugin and asks it to describe itself. Fails if it
    /// cannot, or if its label is empty (the probe would refuse every report).
    pub async fn start(compiled: &CompiledPlugin, hostname: Arc<str>, limits: Limits) -> Result<Self, CallError> {
        let id = compiled.id.clone();
        let instance = PluginInstance::new(id.clone(), compiled.pre.clone(), hostname, limits.clone());
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run_worker(instance, queue));
        let mut handle = Self {
            id: id.clone(),
            info: PluginInfo { label: String::new(), description: String::new() },
            limits,
            jobs,
        };
        let info = match handle.call(Call::Describe, handle.deadline()).await? {
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
        let busy = || CallError::Busy { plugin: self.id.clone() };
        let (reply, answer) = oneshot::channel();
        self.jobs.try_send(Job { call, deadline, reply }).map_err(|_| busy())?;
        match tokio::time::timeout_at(deadline + QUEUE_GRACE, answer).await {
            Ok(Ok(result)) => result,
            // The worker is gone, or the call never got its turn.
            Ok(Err(_)) | Err(_) => Err(busy()),
        }
    }
}

async fn run_worker(mut instance: PluginInstance, mut queue: mpsc::Receiver<Job>) {
    while let Some(job) = queue.recv().await {
        if job.reply.is_closed() {
            continue;
        }
        let result = instance.call(job.call, job.deadline).await;
        if let Err(err) = &result {
            tracing::warn!(error = %err, "guest call failed");
        }
        let _ = job.reply.send(result);
    }
}
