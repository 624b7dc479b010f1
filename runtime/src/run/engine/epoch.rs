//! The epoch clock that drives every guest's deadline.
//!
//! One thread for all engines sleeps on a one-shot timer (`timerfd`). The
//! first guest call to start while the timer is idle arms it, which is one
//! system call and wakes no thread; a tick later the thread advances every
//! engine's epoch, and it goes on ticking only while some call still runs.
//! So a short call costs no thread switch at all, an idle daemon never wakes,
//! and a guest that runs on meets its next epoch within a tick: it yields to
//! its async runtime there, and traps at the first tick past its deadline.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use wasmtime::{Engine, EngineWeak};

use super::EPOCH_TICK;

struct Clock {
    /// Every engine created so far; the ones since dropped are let go at the next tick.
    engines: Mutex<Vec<EngineWeak>>,
    /// Guest calls running now, across all engines.
    running: AtomicUsize,
    /// Whether a tick is on its way: set by whoever arms the timer.
    armed: AtomicBool,
    timer: OwnedFd,
}

static CLOCK: OnceLock<Clock> = OnceLock::new();

fn clock() -> &'static Clock {
    CLOCK.get_or_init(|| {
        // SAFETY: timerfd_create returns a new descriptor, or -1.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC) };
        assert!(fd >= 0, "creating the epoch timer: {}", std::io::Error::last_os_error());
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let timer = unsafe { OwnedFd::from_raw_fd(fd) };
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(tick_forever)
            .expect("spawning the epoch ticker thread");
        Clock { engines: Mutex::new(Vec::new()), running: AtomicUsize::new(0), armed: AtomicBool::new(false), timer }
    })
}

/// Puts `engine`'s epoch on the clock.
pub fn register(engine: &Engine) {
    clock().engines.lock().unwrap().push(engine.weak());
}

/// Held for the length of a guest call: the epoch ticks while any is held.
pub struct GuestRunning(());

impl GuestRunning {
    pub fn start() -> Self {
        let clock = clock();
        // Counted before the timer is looked at: a ticker that is about to
        // stand down sees this call and ticks again (see `tick_forever`).
        clock.running.fetch_add(1, Ordering::SeqCst);
        if !clock.armed.swap(true, Ordering::SeqCst) {
            clock.arm();
        }
        GuestRunning(())
    }
}

impl Drop for GuestRunning {
    fn drop(&mut self) {
        clock().running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Clock {
    /// One tick from now.
    fn arm(&self) {
        let tick = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec { tv_sec: EPOCH_TICK.as_secs() as _, tv_nsec: EPOCH_TICK.subsec_nanos() as _ },
        };
        // SAFETY: the descriptor is the clock's timer; `tick` is a valid itimerspec.
        let armed = unsafe { libc::timerfd_settime(self.timer.as_raw_fd(), 0, &tick, std::ptr::null_mut()) };
        debug_assert_eq!(armed, 0, "arming the epoch timer: {}", std::io::Error::last_os_error());
    }

    fn wait_for_tick(&self) {
        let mut expirations = 0u64;
        loop {
            // SAFETY: reads 8 bytes into `expirations` from the clock's timer.
            let read = unsafe { libc::read(self.timer.as_raw_fd(), (&raw mut expirations).cast(), 8) };
            if read == 8 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return;
            }
        }
    }

    fn advance(&self) {
        self.engines.lock().unwrap().retain(|weak| match weak.upgrade() {
            Some(engine) => {
                engine.increment_epoch();
                true
            }
            None => false,
        });
    }
}

/// A plain thread, not a tokio task: a busy async runtime must not be able to
/// starve the very clock that interrupts guests. Epoch deadlines are relative
/// to the epoch when a call starts, so the pauses between calls change nothing.
fn tick_forever() {
    let clock = clock();
    loop {
        clock.wait_for_tick();
        clock.advance();
        if clock.running.load(Ordering::SeqCst) > 0 {
            clock.arm();
            continue;
        }
        // Standing down. A call that started just now either saw the timer
        // still armed (and is seen here, so the clock ticks on) or arms it itself.
        clock.armed.store(false, Ordering::SeqCst);
        if clock.running.load(Ordering::SeqCst) > 0 && !clock.armed.swap(true, Ordering::SeqCst) {
            clock.arm();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use wasmtime::{Instance, Module, Store, Trap};

    /// A guest that never returns is interrupted only if ticks come.
    #[test]
    fn a_running_call_is_ticked_and_the_clock_stands_down_after_it() {
        let engine = Engine::new(wasmtime::Config::new().epoch_interruption(true)).unwrap();
        register(&engine);
        let module = Module::new(&engine, r#"(module (func (export "spin") (loop br 0)))"#).unwrap();
        let mut store = Store::new(&engine, ());
        store.set_epoch_deadline(1);
        store.epoch_deadline_trap();
        let spin = Instance::new(&mut store, &module, &[]).unwrap().get_typed_func::<(), ()>(&mut store, "spin").unwrap();
        let running = GuestRunning::start();
        let err = spin.call(&mut store, ()).unwrap_err();
        assert_eq!(err.downcast_ref::<Trap>(), Some(&Trap::Interrupt));
        drop(running);
        // No call runs: the clock stops within a tick or two.
        let started = std::time::Instant::now();
        while clock().armed.load(Ordering::SeqCst) {
            assert!(started.elapsed() < Duration::from_secs(10), "the clock never stood down");
            std::thread::sleep(EPOCH_TICK);
        }
    }
}
