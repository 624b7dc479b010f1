//! The `http-traffic` capability: HTTP requests read and responses written per
//! process, counted by the host with eBPF. Privileged: only when the operator
//! grants `http-traffic`. Counters only grow; rates are the difference between
//! two readings over the time between them.

use crate::bindings::scope::plugin::http_traffic as wit;

pub use crate::errors::HttpTrafficError;
pub use wit::{MethodCount, ProcessCounters, StatusCount};

/// Every live process with HTTP traffic counted since counting started.
pub fn counters() -> Result<Vec<ProcessCounters>, HttpTrafficError> {
    wit::counters().map_err(Into::into)
}

impl ProcessCounters {
    /// Requests of every method.
    pub fn total_requests(&self) -> u64 {
        self.requests.iter().map(|m| m.count).sum()
    }
}
