//! Why a call into a plugin failed, as the probe and the log see it.

use std::time::Duration;

use crate::plugin_id::PluginId;
use crate::run::limits::{MAX_ERROR_TEXT_BYTES, bounded_text};

/// The cause of a failed guest call. Every variant renders as a sentence that
/// names the plugin, so the probe's status line and the log say who and why.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// The plugin was still busy with earlier calls when this one's budget ran out.
    Busy { plugin: PluginId },
    /// The plugin failed its last calls and is cooling down; no guest code ran.
    BackingOff { plugin: PluginId, retry_in: Duration, last_error: String },
    /// The guest ran past its wall-clock budget and was interrupted.
    Deadline { plugin: PluginId, budget: Duration },
    /// The guest answered an error at the end of its budget: a host call it
    /// made gave up at the call's deadline (a starved CPU, a slow engine), so
    /// the report was late, not wrong. Its message says which call.
    OutOfTime { plugin: PluginId, message: String },
    /// The guest trapped (panic, unreachable, out of bounds, stack overflow, ...).
    Trap { plugin: PluginId, detail: String },
    /// The guest asked for more linear memory than its budget, or than its
    /// tenant's quota has left (`tenant` set).
    OutOfMemory { plugin: PluginId, limit_bytes: usize, tenant: Option<String> },
    /// The plugin's tenant has spent its CPU share; no guest code ran.
    OverQuota { plugin: PluginId, tenant: String },
    /// The guest could not be instantiated (e.g. its start code trapped or ran out of memory).
    Instantiate { plugin: PluginId, detail: String },
    /// The guest answered with an error of its own.
    Guest { plugin: PluginId, message: String },
    /// The guest answered with something the probe must not see.
    InvalidOutput { plugin: PluginId, detail: String },
}

impl CallError {
    /// HTTP status for the probe: anything but 200 makes it drop the answer.
    pub fn http_status(&self) -> u16 {
        match self {
            CallError::Busy { .. } | CallError::BackingOff { .. } | CallError::OverQuota { .. } => 503,
            CallError::Deadline { .. } | CallError::OutOfTime { .. } => 504,
            _ => 500,
        }
    }

    /// A short name of the cause, for counters and metrics labels.
    pub fn cause(&self) -> &'static str {
        match self {
            CallError::Busy { .. } => "busy",
            CallError::BackingOff { .. } => "backing-off",
            CallError::OverQuota { .. } => "over-quota",
            CallError::Deadline { .. } | CallError::OutOfTime { .. } => "deadline",
            CallError::Trap { .. } => "trap",
            CallError::OutOfMemory { .. } => "out-of-memory",
            CallError::Instantiate { .. } => "instantiate",
            CallError::Guest { .. } => "guest-error",
            CallError::InvalidOutput { .. } => "invalid-output",
        }
    }

    pub fn plugin(&self) -> &PluginId {
        match self {
            CallError::Busy { plugin }
            | CallError::BackingOff { plugin, .. }
            | CallError::OverQuota { plugin, .. }
            | CallError::Deadline { plugin, .. }
            | CallError::OutOfTime { plugin, .. }
            | CallError::Trap { plugin, .. }
            | CallError::OutOfMemory { plugin, .. }
            | CallError::Instantiate { plugin, .. }
            | CallError::Guest { plugin, .. }
            | CallError::InvalidOutput { plugin, .. } => plugin,
        }
    }

    /// Whether the call failed for time alone: it never got its turn, or its
    /// budget ran out. A busy host causes this as much as a slow guest, so a
    /// version failing so at its start is tried again, not refused.
    pub fn is_lateness(&self) -> bool {
        matches!(self, CallError::Busy { .. } | CallError::Deadline { .. } | CallError::OutOfTime { .. })
    }

    /// Whether the instance must be thrown away: after a trap or an interrupt
    /// its state is undefined (wasmtime poisons the instance).
    pub fn poisons_instance(&self) -> bool {
        matches!(
            self,
            CallError::Deadline { .. }
                | CallError::Trap { .. }
                | CallError::OutOfMemory { .. }
                | CallError::Instantiate { .. }
        )
    }
}

/// Every text is cut at `MAX_ERROR_TEXT_BYTES`: it goes to the probe on every
/// poll and into the log, and its details come from the guest.
impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Guest text (its error, its function names) with its control
        // characters escaped: one error is one log line and one status line.
        let text = self.untrimmed();
        let text = crate::ops::guest_log::escape_controls(&text, usize::MAX);
        f.write_str(&bounded_text(&text, MAX_ERROR_TEXT_BYTES))
    }
}

impl CallError {
    fn untrimmed(&self) -> String {
        let f = &mut String::new();
        use std::fmt::Write;
        let _ = match self {
            CallError::Busy { plugin } => {
                write!(f, "plugin {plugin}: busy, earlier calls still running")
            }
            CallError::BackingOff { plugin, retry_in, last_error } => write!(
                f,
                "plugin {plugin}: backing off for {} ms after repeated failures; last: {last_error}",
                retry_in.as_millis()
            ),
            CallError::OutOfTime { plugin, message } => {
                write!(f, "plugin {plugin}: out of time at the end of its budget: {message}")
            }
            CallError::Deadline { plugin, budget } => {
                write!(f, "plugin {plugin}: deadline exceeded (budget {} ms)", budget.as_millis())
            }
            CallError::Trap { plugin, detail } => write!(f, "plugin {plugin}: trapped: {detail}"),
            CallError::OutOfMemory { plugin, limit_bytes, tenant: None } => {
                write!(f, "plugin {plugin}: out of memory (limit {} MiB)", limit_bytes >> 20)
            }
            CallError::OutOfMemory { plugin, limit_bytes, tenant: Some(tenant) } => {
                write!(f, "plugin {plugin}: out of memory (tenant {tenant}'s quota of {} MiB is used up)", limit_bytes >> 20)
            }
            CallError::OverQuota { plugin, tenant } => {
                write!(f, "plugin {plugin}: busy, tenant {tenant} has used its CPU share for now")
            }
            CallError::Instantiate { plugin, detail } => {
                write!(f, "plugin {plugin}: could not start: {detail}")
            }
            CallError::Guest { plugin, message } => write!(f, "plugin {plugin}: {message}"),
            CallError::InvalidOutput { plugin, detail } => {
                write!(f, "plugin {plugin}: invalid report: {detail}")
            }
        };
        std::mem::take(f)
    }
}

impl std::error::Error for CallError {}
