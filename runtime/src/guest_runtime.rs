//! Guest code runs on a runtime of its own, whose threads run at a lower CPU
//! priority (nice 10). Answering the probe from memory (server, report cache)
//! then always wins over a busy guest, so one plugin burning its whole budget
//! does not show in its neighbours' latency. Deadlines stay wall-clock: the
//! epoch ticker and the callers waiting for answers run at normal priority.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

/// How much lower guest threads run than the rest of the daemon.
const GUEST_NICENESS: i32 = 10;

static GUESTS: OnceLock<Runtime> = OnceLock::new();

/// Where plugin workers (and so all guest code) are spawned.
pub fn handle() -> Handle {
    GUESTS
        .get_or_init(|| {
            Builder::new_multi_thread()
                .thread_name("guest")
                .enable_all()
                .on_thread_start(lower_priority)
                .build()
                .expect("starting the guest runtime")
        })
        .handle()
        .clone()
}

fn lower_priority() {
    // SAFETY: gettid and setpriority only read their arguments; on Linux the
    // "process" priority of a thread ID is that thread's own.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, GUEST_NICENESS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_threads_run_at_a_lower_priority() {
        let niceness = std::sync::mpsc::channel();
        let sender = niceness.0;
        handle().spawn(async move {
            // SAFETY: as above, for this thread.
            let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
            sender.send(nice).unwrap();
        });
        assert_eq!(niceness.1.recv().unwrap(), GUEST_NICENESS);
    }
}
