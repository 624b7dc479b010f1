//! What one plugin may use, in the guest (time, memory) and in the host's work
//! for it (report sizes, checked before the host renders anything).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, ensure};

use crate::run::quota::TenantQuota;

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

/// The longest `probe_id` a request may carry: it is copied into every node
/// with controls. Real probes send 16 hex digits.
pub const MAX_PROBE_ID_BYTES: usize = 128;

/// The longest error text sent to the probe or logged for a plugin; the rest is cut.
pub const MAX_ERROR_TEXT_BYTES: usize = 4 << 10;

/// How far ahead of the host's clock a guest's timestamp may be; later ones are
/// clamped, so a plugin cannot win every merge of the probe's latest values.
pub const MAX_CLOCK_SKEW_MS: u64 = 60_000;

/// `text` cut to at most `max` bytes on a character boundary, saying how much was cut.
pub fn bounded_text(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} more bytes cut)", &text[..end], text.len() - end).into()
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

/// Enforces `Limits` inside one store. Unlike wasmtime's `StoreLimits`, which
/// caps each memory on its own, the memory budget here covers all of an
/// instance's memories together: a component can hold several.
pub struct StoreBudget {
    max_memory_bytes: usize,
    memory_bytes: usize,
    max_table_elements: usize,
    table_elements: usize,
    max_instances: usize,
    /// The tenant's account, which every growth is also reserved from.
    quota: Option<Arc<TenantQuota>>,
}

/// Tables and memories per store: generous for composed components, small
/// enough that a hostile one cannot exhaust the host.
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 16;

/// The error a guest traps with when it asks for more memory than its budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryExhausted {
    pub limit_bytes: usize,
    /// Set when the tenant's total, not the plugin's own limit, was reached.
    pub tenant: Option<String>,
}

impl std::fmt::Display for MemoryExhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tenant {
            Some(tenant) => write!(f, "out of memory (tenant {tenant}'s quota of {} MiB is used up)", self.limit_bytes >> 20),
            None => write!(f, "out of memory (limit {} MiB)", self.limit_bytes >> 20),
        }
    }
}

impl std::error::Error for MemoryExhausted {}

impl StoreBudget {
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    pub fn new(limits: &Limits, quota: Option<Arc<TenantQuota>>) -> Self {
        Self {
            max_memory_bytes: limits.max_memory_bytes,
            memory_bytes: 0,
            max_table_elements: limits.max_table_elements,
            table_elements: 0,
            max_instances: limits.max_instances,
            quota,
        }
    }
}

impl Drop for StoreBudget {
    fn drop(&mut self) {
        if let Some(quota) = &self.quota {
            quota.release_memory(self.memory_bytes);
        }
    }
}

impl wasmtime::ResourceLimiter for StoreBudget {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.memory_bytes - current.min(self.memory_bytes) + desired;
        if total > self.max_memory_bytes {
            // An error, not `false`: the guest traps at once with a cause we can
            // name, instead of limping on with a failed allocation.
            return Err(wasmtime::Error::new(MemoryExhausted { limit_bytes: self.max_memory_bytes, tenant: None }));
        }
        if let Some(quota) = &self.quota
            && !quota.reserve_memory(total.saturating_sub(self.memory_bytes))
        {
            let limit_bytes = quota.memory_limit().unwrap_or(usize::MAX);
            return Err(wasmtime::Error::new(MemoryExhausted { limit_bytes, tenant: Some(quota.tenant.clone()) }));
        }
        self.memory_bytes = total;
        Ok(true)
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.table_elements - current.min(self.table_elements) + desired;
        if total > self.max_table_elements {
            return Ok(false);
        }
        self.table_elements = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.max_instances
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn memory_budget_covers_all_memories_together() {
        let mut budget = StoreBudget::new(&Limits::default(), None); // 64 MiB
        assert!(budget.memory_growing(0, 40 << 20, None).unwrap(), "first memory: 40 MiB");
        let err = budget.memory_growing(0, 30 << 20, None).unwrap_err();
        assert_eq!(err.downcast_ref::<MemoryExhausted>(), Some(&MemoryExhausted { limit_bytes: 64 << 20, tenant: None }));
        // Growing the first memory counts only the difference.
        assert!(budget.memory_growing(40 << 20, 60 << 20, None).unwrap());
        assert!(budget.memory_growing(60 << 20, 65 << 20, None).is_err());
    }

    #[test]
    fn every_store_of_a_tenant_draws_on_its_memory_quota() {
        use crate::run::quota::QuotaLimits;
        let quota = Arc::new(TenantQuota::new("team-b", QuotaLimits { memory_bytes: Some(100 << 20), cpu_ms_per_s: None }));
        let mut first = StoreBudget::new(&Limits::default(), Some(quota.clone()));
        let mut second = StoreBudget::new(&Limits::default(), Some(quota.clone()));
        assert!(first.memory_growing(0, 60 << 20, None).unwrap());
        let err = second.memory_growing(0, 60 << 20, None).unwrap_err();
        let exhausted = err.downcast_ref::<MemoryExhausted>().unwrap();
        assert_eq!(exhausted.to_string(), "out of memory (tenant team-b's quota of 100 MiB is used up)");
        assert!(second.memory_growing(0, 40 << 20, None).unwrap());
        drop(first);
        assert_eq!(quota.memory_used(), 40 << 20, "a dropped store gives its memory back");
    }

    #[test]
    fn table_elements_count_across_tables() {
        let limits = Limits { max_table_elements: 1_000, ..Limits::default() };
        let mut budget = StoreBudget::new(&limits, None);
        assert!(budget.table_growing(0, 600, None).unwrap());
        assert!(!budget.table_growing(0, 600, None).unwrap());
        assert!(budget.table_growing(0, 400, None).unwrap());
    }

    #[test]
    fn budgets_the_probe_cannot_take_are_refused() {
        let too_slow = Limits { call_budget: Duration::from_millis(600), ..Limits::default() };
        assert!(too_slow.validate().unwrap_err().to_string().contains("500 ms"));
        let too_big = Limits { max_report_bytes: 60 << 20, ..Limits::default() };
        assert!(too_big.validate().is_err());
        Limits::default().validate().unwrap();
    }
}
