//! What one plugin may use, as the operator sets it: time and memory in the
//! guest, and report sizes for the host's work for it (enforced by
//! `run::limits` in the store and `serve::scope_json` before rendering).

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
    /// Largest report JSON sent to the probe. The probe refuses 50 MB and decodes
    /// at about 25-40 MB/s, so even 15 MB misses its 500 ms.
    pub max_report_bytes: usize,
    /// The shortest time between background refreshes while the probe polls;
    /// a probe that polls less often sets the cadence.
    pub refresh_interval: Duration,
    /// Table elements, all tables of the instance together.
    pub max_table_elements: usize,
    /// Core instances in one component instance (composed components have several).
    pub max_instances: usize,
    /// Native stack the guest's wasm code may use.
    pub max_wasm_stack: usize,
    /// What one report may hold, counted before the host renders it.
    pub report: ReportLimits,
}

/// Sizes of one report (or shortcut report), all topologies together. A guest
/// can build a million-sample list cheaply in its own memory; rendering it is
/// the host's work, so it is refused by count before any of that work starts.
/// The defaults keep the host's transient memory for one render within a few
/// MiB beyond the report's bytes, so hundreds of plugins fit a 512 MiB daemon.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportLimits {
    pub max_nodes: usize,
    /// Metric samples.
    pub max_samples: usize,
    /// Latest entries, metrics, set values, parent IDs and active controls.
    pub max_values: usize,
    /// Controls, templates of every kind, table columns and fixed rows.
    pub max_templates: usize,
    /// Any one string: an ID, a key, a value, a label.
    pub max_text_bytes: usize,
}

impl Default for ReportLimits {
    fn default() -> Self {
        Self { max_nodes: 20_000, max_samples: 100_000, max_values: 200_000, max_templates: 1_000, max_text_bytes: 64 << 10 }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            call_budget: Duration::from_millis(400),
            max_memory_bytes: 64 << 20,
            max_control_body_bytes: 1 << 20,
            max_report_bytes: 8 << 20,
            refresh_interval: Duration::from_secs(1),
            max_table_elements: 100_000,
            max_instances: 32,
            max_wasm_stack: 1 << 20,
            report: ReportLimits::default(),
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
        ensure!(
            (1 << 10..=40 << 20).contains(&self.max_report_bytes),
            "report size limit must be between 1 KiB and 40 MiB (the probe refuses 50 MB and times out well before)"
        );
        ensure!(self.max_control_body_bytes >= 1 << 10, "control body limit must be at least 1 KiB");
        ensure!(self.max_table_elements >= 1_000, "table element limit must be at least 1000");
        ensure!(self.max_instances >= 1, "instance limit must be at least 1");
        ensure!(
            (64 << 10..=16 << 20).contains(&self.max_wasm_stack),
            "wasm stack limit must be between 64 KiB and 16 MiB"
        );
        ensure!(
            (Duration::from_millis(50)..=Duration::from_secs(60)).contains(&self.refresh_interval),
            "refresh interval must be between 50 ms and 60 s"
        );
        let r = &self.report;
        ensure!((1..=1_000_000).contains(&r.max_nodes), "max_nodes must be between 1 and 1000000");
        ensure!((1..=10_000_000).contains(&r.max_samples), "max_samples must be between 1 and 10000000");
        ensure!((1..=10_000_000).contains(&r.max_values), "max_values must be between 1 and 10000000");
        ensure!((1..=100_000).contains(&r.max_templates), "max_templates must be between 1 and 100000");
        // Not tied to the report size limit: sections may set the two apart,
        // and a string over the report limit is refused by that limit anyway.
        ensure!((1 << 10..=40 << 20).contains(&r.max_text_bytes), "max_text_kib must be between 1 and 40960");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_the_probe_cannot_take_are_refused() {
        let too_slow = Limits { call_budget: Duration::from_millis(600), ..Limits::default() };
        assert!(too_slow.validate().unwrap_err().to_string().contains("500 ms"));
        let too_big = Limits { max_report_bytes: 60 << 20, ..Limits::default() };
        assert!(too_big.validate().is_err());
        Limits::default().validate().unwrap();
    }
}
