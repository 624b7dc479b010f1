//! Guest code runs on a runtime of its own, whose threads are scheduled as
//! batch work (`SCHED_BATCH`): they keep their fair share of the CPU, so
//! deadlines hold on a busy host, but a thread that wakes to answer the probe
//! from memory (server, report cache) is never held back behind a busy guest.
//! One plugin burning its whole budget then does not show in its neighbours'
//! latency. The epoch ticker and the callers waiting for answers are ordinary
//! threads; a caller that runs a control itself (see `worker`) is a guest
//! thread for as long as it does, and takes one of a few seats to do so.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Builder, Handle, Runtime};

static GUESTS: OnceLock<Runtime> = OnceLock::new();

/// Where plugin workers (and so all guest code) are spawned.
pub fn handle() -> Handle {
    GUESTS
        .get_or_init(|| {
            Builder::new_multi_thread()
                .thread_name("guest")
                .enable_all()
                .on_thread_start(schedule_as_batch)
                .build()
                .expect("starting the guest runtime")
        })
        .handle()
        .clone()
}

fn schedule_as_batch() {
    set_policy(libc::SCHED_BATCH);
}

fn set_policy(policy: libc::c_int) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads `param`; thread ID 0 is the calling thread.
    unsafe {
        libc::sched_setscheduler(0, policy, &param);
    }
}

/// Calls running on their callers' threads now, across all plugins.
static SEATS_TAKEN: AtomicUsize = AtomicUsize::new(0);

/// A seat for running a guest call outside the guest runtime. There are as
/// many as CPUs: with the guest runtime's own threads, guests never run on
/// more than twice as many threads as there are CPUs, however many calls come.
pub struct CallerSeat(());

impl CallerSeat {
    pub fn take() -> Option<Self> {
        static SEATS: OnceLock<usize> = OnceLock::new();
        let seats = *SEATS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        SEATS_TAKEN
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| (taken < seats).then_some(taken + 1))
            .ok()
            .map(|_| CallerSeat(()))
    }
}

impl Drop for CallerSeat {
    fn drop(&mut self) {
        SEATS_TAKEN.fetch_sub(1, Ordering::AcqRel);
    }
}

/// While held, the calling thread is scheduled as the guest threads are.
pub struct AsGuestThread(libc::c_int);

impl AsGuestThread {
    pub fn enter() -> Self {
        // SAFETY: reads the calling thread's policy.
        let before = unsafe { libc::sched_getscheduler(0) };
        if before != libc::SCHED_BATCH {
            set_policy(libc::SCHED_BATCH);
        }
        AsGuestThread(before)
    }
}

impl Drop for AsGuestThread {
    fn drop(&mut self) {
        if self.0 != libc::SCHED_BATCH && self.0 >= 0 {
            set_policy(self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_threads_are_batch_threads() {
        let (sender, policy) = std::sync::mpsc::channel();
        handle().spawn(async move {
            // SAFETY: reads the calling thread's policy.
            sender.send(unsafe { libc::sched_getscheduler(0) }).unwrap();
        });
        assert_eq!(policy.recv().unwrap(), libc::SCHED_BATCH);
    }

    #[test]
    fn a_caller_is_a_guest_thread_while_it_runs_a_call_and_itself_after() {
        // SAFETY: reads the calling thread's policy.
        let policy = || unsafe { libc::sched_getscheduler(0) };
        let before = policy();
        {
            let _guest = AsGuestThread::enter();
            assert_eq!(policy(), libc::SCHED_BATCH);
        }
        assert_eq!(policy(), before);
    }

    #[test]
    fn caller_seats_are_as_many_as_cpus() {
        let cpus = std::thread::available_parallelism().unwrap().get();
        let seats: Vec<CallerSeat> = std::iter::from_fn(CallerSeat::take).take(cpus + 1).collect();
        assert_eq!(seats.len(), cpus);
        drop(seats);
        assert!(CallerSeat::take().is_some());
    }
}
