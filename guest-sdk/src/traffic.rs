//! The `traffic` capability: shaping a container's `eth0` from inside its
//! network namespace. Privileged: only when the operator grants `traffic`.
//! Every answer is what the kernel has installed now, read back.

use crate::bindings::scope::plugin::traffic as wit;

pub use crate::errors::TrafficError;
pub use wit::Shaping;

/// What is installed on the container's `eth0`.
pub fn status(container_id: &str) -> Result<Shaping, TrafficError> {
    wit::status(container_id).map_err(Into::into)
}

/// Fixed delay and/or random packet loss (netem), replacing what was set.
pub fn set_delay_loss(container_id: &str, latency_ms: Option<u32>, loss_percent: Option<f64>) -> Result<Shaping, TrafficError> {
    wit::set_delay_loss(container_id, latency_ms, loss_percent).map_err(Into::into)
}

/// A rate limit (token bucket filter), replacing what was set.
pub fn set_rate(container_id: &str, rate_kbit: u64) -> Result<Shaping, TrafficError> {
    wit::set_rate(container_id, rate_kbit).map_err(Into::into)
}

/// Back to the kernel's default.
pub fn clear(container_id: &str) -> Result<Shaping, TrafficError> {
    wit::clear(container_id).map_err(Into::into)
}
