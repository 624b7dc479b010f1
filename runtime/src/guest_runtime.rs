//! Guest code runs on a runtime of its own, whose threads are scheduled as
//! batch work (`SCHED_BATCH`): they keep their fair share of the CPU, so
//! deadlines hold on a busy host, but a thread that wakes to answer the probe
//! from memory (server, report cache) is never held back behind a busy guest.
//! One plugin burning its whole budget then does not show in its neighbours'
//! latency. The epoch ticker and the callers waiting for answers are ordinary
//! threads.

use std::sync::OnceLock;

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
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads `param`; thread ID 0 is the calling thread.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
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
}
