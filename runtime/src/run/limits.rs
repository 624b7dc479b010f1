//! Enforcing what one plugin may use (`config::limits`): memory and tables in
//! its store, and the fixed bounds on what a report may carry.

use std::sync::Arc;

use crate::config::limits::Limits;
use crate::run::quota::TenantQuota;

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
        use crate::config::tenants::QuotaLimits;
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
}
