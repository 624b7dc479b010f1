//! Compile slots: how many compiles run at full priority at once (one per CPU),
//! how much memory all compiles together may be given, smallest file first,
//! and how a slow compile gives its slot back.
//!
//! A compile needs a slot and its memory limit out of the memory budget, held
//! until it ends, so the compile children together never get more than the
//! budget. A compile that has run for a while is demoted: it continues at the
//! lowest priority and its slot goes to the next file in the queue, so one slow
//! file cannot keep good ones waiting. Demoted compiles are bounded in number too.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

pub struct CompileSlots {
    state: Mutex<State>,
    /// How many demoted compiles may run beside the slots.
    max_demoted: usize,
    budget_mib: u64,
}

struct State {
    /// Numbers of the free slots, for the log.
    free: Vec<usize>,
    demoted: usize,
    memory_free_mib: u64,
    /// Smallest file first, then first come. A compile's memory limit grows
    /// with its file's size, so if the first does not fit, none does.
    waiting: BinaryHeap<Reverse<Waiter>>,
    arrivals: u64,
}

struct Waiter {
    bytes: u64,
    arrival: u64,
    memory_mib: u64,
    grant: oneshot::Sender<CompileSlot>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        (self.bytes, self.arrival) == (other.bytes, other.arrival)
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.bytes, self.arrival).cmp(&(other.bytes, other.arrival))
    }
}

/// A compile's right to run: a slot (or, once demoted, a place among the
/// demoted compiles) and its memory. Given back when dropped.
pub struct CompileSlot {
    slots: Option<Arc<CompileSlots>>,
    /// Which slot (from 1), `None` once demoted.
    number: Option<usize>,
    memory_mib: u64,
}

impl CompileSlots {
    pub fn new(slots: usize, max_demoted: usize, budget_mib: u64) -> Arc<Self> {
        let state = State {
            free: (1..=slots.max(1)).rev().collect(),
            demoted: 0,
            memory_free_mib: budget_mib,
            waiting: BinaryHeap::new(),
            arrivals: 0,
        };
        Arc::new(Self { state: Mutex::new(state), max_demoted, budget_mib })
    }

    /// Waits for a slot and `memory_mib` of the budget (all of it at most);
    /// among waiters, the smallest file goes first.
    pub async fn acquire(self: &Arc<Self>, bytes: u64, memory_mib: u64) -> CompileSlot {
        let (grant, granted) = oneshot::channel();
        {
            let mut state = self.state.lock().unwrap();
            let arrival = state.arrivals;
            state.arrivals += 1;
            let memory_mib = memory_mib.min(self.budget_mib);
            state.waiting.push(Reverse(Waiter { bytes, arrival, memory_mib, grant }));
            self.admit(&mut state);
        }
        // The sender lives in `state` until it sends, and `self` keeps `state` alive.
        granted.await.expect("a waiting compile is always granted a slot")
    }

    /// Starts the smallest waiting compiles while a slot and their memory are free.
    fn admit(self: &Arc<Self>, state: &mut State) {
        while let Some(Reverse(first)) = state.waiting.peek() {
            if state.free.is_empty() || first.memory_mib > state.memory_free_mib {
                return;
            }
            let Reverse(waiter) = state.waiting.pop().expect("just peeked");
            let number = state.free.pop().expect("just checked");
            state.memory_free_mib -= waiter.memory_mib;
            let slot = CompileSlot { slots: Some(self.clone()), number: Some(number), memory_mib: waiter.memory_mib };
            if let Err(unsent) = waiter.grant.send(slot) {
                // That compile was cancelled while it waited: take its share back.
                state.free.push(number);
                state.memory_free_mib += unsent.memory_mib;
                unsent.disarm();
            }
        }
    }
}

impl CompileSlot {
    /// Gives the slot (not the memory) to the next compile and keeps running as
    /// a demoted one, if fewer than the bound are. `false`: keep the slot, ask
    /// again later.
    pub fn demote(&mut self) -> bool {
        let Some(slots) = self.slots.clone() else { return false };
        let Some(number) = self.number else { return true };
        let mut state = slots.state.lock().unwrap();
        if state.demoted >= slots.max_demoted {
            return false;
        }
        state.demoted += 1;
        state.free.push(number);
        self.number = None;
        slots.admit(&mut state);
        true
    }

    /// Which slot this is (from 1), `None` once demoted.
    pub fn number(&self) -> Option<usize> {
        self.number
    }

    /// Forgets the slot without giving it back (it was never handed out).
    fn disarm(mut self) {
        self.slots = None;
    }
}

impl Drop for CompileSlot {
    fn drop(&mut self) {
        let Some(slots) = self.slots.take() else { return };
        let mut state = slots.state.lock().unwrap();
        match self.number {
            Some(number) => state.free.push(number),
            None => state.demoted -= 1,
        }
        state.memory_free_mib += self.memory_mib;
        slots.admit(&mut state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn granted(waiting: &mut tokio::task::JoinHandle<CompileSlot>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), waiting).await.is_ok()
    }

    #[tokio::test]
    async fn the_smallest_waiting_file_goes_first() {
        let slots = CompileSlots::new(1, 0, 100);
        let running = slots.acquire(10, 1).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for bytes in [300u64, 100, 200] {
            let (slots, order) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let slot = slots.acquire(bytes, 1).await;
                order.lock().unwrap().push(bytes);
                drop(slot);
            }));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(order.lock().unwrap().is_empty());
        drop(running);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [100, 200, 300]);
    }

    #[tokio::test]
    async fn a_demoted_compile_frees_its_slot_up_to_a_bound() {
        let slots = CompileSlots::new(1, 1, 100);
        let mut slow = slots.acquire(1, 1).await;
        let next = slots.clone();
        let mut waiting = tokio::spawn(async move { next.acquire(1, 1).await });
        assert!(!granted(&mut waiting).await);
        assert!(slow.demote());
        let mut second = waiting.await.unwrap();
        // One demoted compile at most: the second keeps its slot.
        assert!(!second.demote());
        let next = slots.clone();
        let mut third = tokio::spawn(async move { next.acquire(1, 1).await });
        assert!(!granted(&mut third).await);
        drop(slow);
        assert!(second.demote());
        assert!(granted(&mut third).await);
    }

    #[tokio::test]
    async fn compiles_wait_for_memory_and_a_demoted_one_keeps_its_share() {
        let slots = CompileSlots::new(2, 2, 100);
        let mut big = slots.acquire(1_000, 70).await;
        let next = slots.clone();
        let mut small = tokio::spawn(async move { next.acquire(10, 30).await });
        assert!(granted(&mut small).await, "30 MiB fit beside 70");
        let next = slots.clone();
        let mut other = tokio::spawn(async move { next.acquire(100, 40).await });
        assert!(!granted(&mut other).await, "a slot is free, 40 MiB are not");
        assert!(big.demote());
        assert!(!granted(&mut other).await, "demoted, it still holds its memory");
        drop(big);
        assert!(granted(&mut other).await);
        // More than the whole budget gets the whole budget, alone.
        let mut huge = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(1 << 30, 1 << 20).await }
        });
        assert!(granted(&mut huge).await);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_loses_no_slot() {
        let slots = CompileSlots::new(1, 0, 100);
        let running = slots.acquire(1, 1).await;
        let next = slots.clone();
        let cancelled = tokio::spawn(async move { next.acquire(1, 1).await });
        tokio::task::yield_now().await;
        cancelled.abort();
        let _ = cancelled.await;
        drop(running);
        let next = slots.clone();
        let mut after = tokio::spawn(async move { next.acquire(1, 1).await });
        assert!(granted(&mut after).await);
    }
}
