//! A tenant's shares of the host, counted across all of its plugins: linear
//! memory (reserved as guests grow, before the growth happens) and guest CPU
//! time per second (measured per call, spent from a bucket refilled at the
//! tenant's rate). A tenant that has spent its CPU share gets `busy` answers
//! for its own plugins until the bucket refills; other tenants never wait.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::config::tenants::QuotaLimits;

/// The running account of one tenant, shared by its plugins' stores and
/// workers. Limits change in place when the config is reloaded.
#[derive(Debug)]
pub struct TenantQuota {
    pub tenant: String,
    memory_limit: AtomicUsize,
    memory_used: AtomicUsize,
    /// 0 means unbounded.
    cpu_ms_per_s: AtomicU64,
    cpu: Mutex<CpuBucket>,
    cpu_used_ns: AtomicU64,
    over_quota_calls: AtomicU64,
}

#[derive(Debug)]
struct CpuBucket {
    /// CPU time the tenant may still spend now, in nanoseconds; negative after
    /// a call that cost more than was left.
    tokens_ns: i64,
    refilled: Instant,
}

/// The bucket holds at most one second of the tenant's rate: an idle tenant
/// may burst that much, no more.
const BUCKET_SECONDS: i64 = 1;

impl TenantQuota {
    pub fn new(tenant: &str, limits: QuotaLimits) -> Self {
        let quota = Self {
            tenant: tenant.to_owned(),
            memory_limit: AtomicUsize::new(usize::MAX),
            memory_used: AtomicUsize::new(0),
            cpu_ms_per_s: AtomicU64::new(0),
            cpu: Mutex::new(CpuBucket { tokens_ns: 0, refilled: Instant::now() }),
            cpu_used_ns: AtomicU64::new(0),
            over_quota_calls: AtomicU64::new(0),
        };
        quota.set_limits(limits);
        quota.cpu.lock().unwrap().tokens_ns = quota.capacity_ns();
        quota
    }

    pub fn set_limits(&self, limits: QuotaLimits) {
        self.memory_limit.store(limits.memory_bytes.unwrap_or(usize::MAX), Ordering::Relaxed);
        self.cpu_ms_per_s.store(limits.cpu_ms_per_s.unwrap_or(0), Ordering::Relaxed);
        let mut bucket = self.cpu.lock().unwrap();
        bucket.tokens_ns = bucket.tokens_ns.min(self.capacity_ns());
    }

    pub fn limits(&self) -> QuotaLimits {
        let memory = self.memory_limit.load(Ordering::Relaxed);
        let cpu = self.cpu_ms_per_s.load(Ordering::Relaxed);
        QuotaLimits { memory_bytes: (memory != usize::MAX).then_some(memory), cpu_ms_per_s: (cpu != 0).then_some(cpu) }
    }

    fn rate_ns_per_s(&self) -> i64 {
        self.cpu_ms_per_s.load(Ordering::Relaxed) as i64 * 1_000_000
    }

    fn capacity_ns(&self) -> i64 {
        self.rate_ns_per_s() * BUCKET_SECONDS
    }

    /// Reserves `bytes` more linear memory for one of the tenant's stores, or
    /// says the tenant's total would go over its quota.
    pub fn reserve_memory(&self, bytes: usize) -> bool {
        let limit = self.memory_limit.load(Ordering::Relaxed);
        self.memory_used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| used.checked_add(bytes).filter(|total| *total <= limit))
            .is_ok()
    }

    pub fn release_memory(&self, bytes: usize) {
        let _ = self.memory_used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| Some(used.saturating_sub(bytes)));
    }

    pub fn memory_used(&self) -> usize {
        self.memory_used.load(Ordering::Relaxed)
    }

    pub fn memory_limit(&self) -> Option<usize> {
        self.limits().memory_bytes
    }

    /// Whether a call may start now: `false` while the tenant has spent more
    /// CPU than its share has refilled (counted as an over-quota call).
    pub fn may_call(&self) -> bool {
        let rate = self.rate_ns_per_s();
        if rate == 0 {
            return true;
        }
        let mut bucket = self.cpu.lock().unwrap();
        let now = Instant::now();
        let elapsed = now.duration_since(bucket.refilled).as_nanos().min(i64::MAX as u128) as i64;
        bucket.tokens_ns = bucket.tokens_ns.saturating_add(elapsed.saturating_mul(rate) / 1_000_000_000).min(rate * BUCKET_SECONDS);
        bucket.refilled = now;
        if bucket.tokens_ns > 0 {
            return true;
        }
        self.over_quota_calls.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Charges the CPU time one call of the tenant's plugins used.
    pub fn spent(&self, cpu: Duration) {
        let ns = cpu.as_nanos().min(i64::MAX as u128) as i64;
        self.cpu_used_ns.fetch_add(ns as u64, Ordering::Relaxed);
        if self.rate_ns_per_s() != 0 {
            let mut bucket = self.cpu.lock().unwrap();
            bucket.tokens_ns = bucket.tokens_ns.saturating_sub(ns);
        }
    }

    pub fn cpu_used(&self) -> Duration {
        Duration::from_nanos(self.cpu_used_ns.load(Ordering::Relaxed))
    }

    pub fn over_quota_calls(&self) -> u64 {
        self.over_quota_calls.load(Ordering::Relaxed)
    }
}

/// A plugin's tenant account, as its policy carries it: equal when it is the
/// same account, so a policy compares equal across reloads that only changed
/// the tenant's quota values (they change in place).
#[derive(Clone, Default)]
pub struct QuotaHandle(pub Option<std::sync::Arc<TenantQuota>>);

impl QuotaHandle {
    pub fn tenant(&self) -> Option<&str> {
        self.0.as_deref().map(|quota| quota.tenant.as_str())
    }
}

impl PartialEq for QuotaHandle {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl std::fmt::Debug for QuotaHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QuotaHandle({:?})", self.tenant())
    }
}

/// The CPU time of the calling thread so far.
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec to write to; this clock always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// `future`, with the CPU time its polls took added to `spent`: guest code runs
/// only inside polls, on whichever thread polls it.
pub struct CpuMeasured<'a, F> {
    future: Pin<&'a mut F>,
    pub spent: Duration,
}

impl<'a, F: Future> CpuMeasured<'a, F> {
    pub fn new(future: Pin<&'a mut F>) -> Self {
        Self { future, spent: Duration::ZERO }
    }
}

impl<F: Future> Future for CpuMeasured<'_, F> {
    type Output = (F::Output, Duration);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let before = thread_cpu_time();
        let poll = self.future.as_mut().poll(cx);
        let took = thread_cpu_time().saturating_sub(before);
        self.spent += took;
        poll.map(|output| (output, self.spent))
    }
}

/// Runs `future` and says how much CPU time its polls took.
pub async fn measure_cpu<F: Future>(future: F) -> (F::Output, Duration) {
    tokio::pin!(future);
    CpuMeasured::new(future).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_reserved_up_to_the_quota_and_released() {
        let quota = TenantQuota::new("t", QuotaLimits { memory_bytes: Some(100), cpu_ms_per_s: None });
        assert!(quota.reserve_memory(60));
        assert!(!quota.reserve_memory(41), "60 + 41 is over 100");
        assert!(quota.reserve_memory(40));
        quota.release_memory(100);
        assert_eq!(quota.memory_used(), 0);
        assert!(quota.reserve_memory(100));
    }

    #[test]
    fn a_tenant_that_spent_its_cpu_share_waits_for_the_refill() {
        let quota = TenantQuota::new("t", QuotaLimits { memory_bytes: None, cpu_ms_per_s: Some(100) });
        assert!(quota.may_call(), "a full bucket");
        quota.spent(Duration::from_millis(300));
        assert!(!quota.may_call(), "100 ms of bucket, 300 ms spent");
        assert_eq!(quota.over_quota_calls(), 1);
        std::thread::sleep(Duration::from_millis(2100));
        assert!(quota.may_call(), "refilled at 100 ms per second");
    }

    #[test]
    fn unbounded_tenants_always_call() {
        let quota = TenantQuota::new("t", QuotaLimits::default());
        quota.spent(Duration::from_secs(100));
        assert!(quota.may_call());
        assert!(quota.reserve_memory(usize::MAX / 2));
    }

    #[tokio::test]
    async fn cpu_of_a_busy_future_is_measured() {
        let ((), cpu) = measure_cpu(async {
            let until = Instant::now() + Duration::from_millis(30);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        })
        .await;
        assert!(cpu >= Duration::from_millis(10), "{cpu:?}");
        let ((), idle) = measure_cpu(tokio::time::sleep(Duration::from_millis(30))).await;
        assert!(idle < Duration::from_millis(10), "sleeping costs no CPU: {idle:?}");
    }
}
