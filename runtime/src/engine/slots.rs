//! Compile slots: how many compiles run at full priority at once (one per CPU),
//! smallest file first, and how a slow compile gives its slot back.
//!
//! A compile that has run for a while is demoted: it continues at the lowest
//! priority and its slot goes to the next file in the queue, so one slow file
//! cannot keep good ones waiting. Demoted compiles are bounded too, because
//! each may use up to the compile memory limit.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

pub struct CompileSlots {
    state: Mutex<State>,
    /// How many demoted compiles may run beside the slots.
    max_demoted: usize,
}

struct State {
    /// Numbers of the free slots, for the log.
    free: Vec<usize>,
    demoted: usize,
    /// Smallest file first, then first come.
    waiting: BinaryHeap<Reverse<Waiter>>,
    arrivals: u64,
}

struct Waiter {
    bytes: u64,
    arrival: u64,
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

/// A compile's right to run: a slot, or, once demoted, a place among the
/// demoted compiles. Given back when dropped.
pub struct CompileSlot {
    slots: Option<Arc<CompileSlots>>,
    /// Which slot (from 1), `None` once demoted.
    number: Option<usize>,
}

impl CompileSlots {
    pub fn new(slots: usize, max_demoted: usize) -> Arc<Self> {
        let state = State { free: (1..=slots.max(1)).rev().collect(), demoted: 0, waiting: BinaryHeap::new(), arrivals: 0 };
        Arc::new(Self { state: Mutex::new(state), max_demoted })
    }

    /// Waits for a slot; among waiters, the smallest file gets one first.
    pub async fn acquire(self: &Arc<Self>, bytes: u64) -> CompileSlot {
        let granted = {
            let mut state = self.state.lock().unwrap();
            if state.waiting.is_empty()
                && let Some(number) = state.free.pop()
            {
                return CompileSlot { slots: Some(self.clone()), number: Some(number) };
            }
            let (grant, granted) = oneshot::channel();
            let arrival = state.arrivals;
            state.arrivals += 1;
            state.waiting.push(Reverse(Waiter { bytes, arrival, grant }));
            granted
        };
        // The sender lives in `state` until it sends, and `self` keeps `state` alive.
        granted.await.expect("a waiting compile is always granted a slot")
    }

    /// Slot `number` is free: it goes to the smallest waiting file, or back to the pool.
    fn release(self: &Arc<Self>, number: usize) {
        let mut state = self.state.lock().unwrap();
        while let Some(Reverse(waiter)) = state.waiting.pop() {
            match waiter.grant.send(CompileSlot { slots: Some(self.clone()), number: Some(number) }) {
                Ok(()) => return,
                // That compile was cancelled while it waited: try the next.
                Err(unsent) => unsent.disarm(),
            }
        }
        state.free.push(number);
    }
}

impl CompileSlot {
    /// Gives the slot to the next compile and keeps running as a demoted one,
    /// if fewer than the bound are. `false`: keep the slot, ask again later.
    pub fn demote(&mut self) -> bool {
        let Some(slots) = self.slots.clone() else { return false };
        let Some(number) = self.number else { return true };
        {
            let mut state = slots.state.lock().unwrap();
            if state.demoted >= slots.max_demoted {
                return false;
            }
            state.demoted += 1;
        }
        self.number = None;
        slots.release(number);
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
        match self.number {
            Some(number) => slots.release(number),
            None => slots.state.lock().unwrap().demoted -= 1,
        }
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
        let slots = CompileSlots::new(1, 0);
        let running = slots.acquire(10).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for bytes in [300u64, 100, 200] {
            let (slots, order) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let slot = slots.acquire(bytes).await;
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
        let slots = CompileSlots::new(1, 1);
        let mut slow = slots.acquire(1).await;
        let next = slots.clone();
        let mut waiting = tokio::spawn(async move { next.acquire(1).await });
        assert!(!granted(&mut waiting).await);
        assert!(slow.demote());
        let mut second = waiting.await.unwrap();
        // One demoted compile at most: the second keeps its slot.
        assert!(!second.demote());
        let next = slots.clone();
        let mut third = tokio::spawn(async move { next.acquire(1).await });
        assert!(!granted(&mut third).await);
        drop(slow);
        assert!(second.demote());
        assert!(granted(&mut third).await);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_loses_no_slot() {
        let slots = CompileSlots::new(1, 0);
        let running = slots.acquire(1).await;
        let next = slots.clone();
        let cancelled = tokio::spawn(async move { next.acquire(1).await });
        tokio::task::yield_now().await;
        cancelled.abort();
        let _ = cancelled.await;
        drop(running);
        let next = slots.clone();
        let mut after = tokio::spawn(async move { next.acquire(1).await });
        assert!(granted(&mut after).await);
    }
}
