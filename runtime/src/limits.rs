//! What one plugin may use. The isolation work will add per-plugin overrides.

use std::time::Duration;

use anyhow::{Result, ensure};

/// The probe gives a plugin 500 ms for dial, request and the whole body. A guest
/// budget above this would leave no room to send the answer.
pub const MAX_CALL_BUDGET: Duration = Duration::from_millis(450);

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Wall-clock time from the request's arrival to the guest's answer, queueing included.
    pub call_budget: Duration,
    /// Linear memory, all memories of the instance together.
    pub max_memory_bytes: usize,
    /// Largest `POST /control` body read.
    pub max_control_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            call_budget: Duration::from_millis(400),
            max_memory_bytes: 64 << 20,
            max_control_body_bytes: 1 << 20,
        }
    }
}

impl Limits {
    pub fn validate(&self) -> Result<()> {
        ensure!(
            !self.call_budget.is_zero() && self.call_budget <= MAX_CALL_BUDGET,
            "call budget {} ms is out of range: it must be between 1 and {} ms so the \
             answer reaches the probe inside its 500 ms",
            self.call_budget.as_millis(),
            MAX_CALL_BUDGET.as_millis()
        );
        ensure!(self.max_memory_bytes >= 1 << 20, "memory limit must be at least 1 MiB");
        Ok(())
    }
}
