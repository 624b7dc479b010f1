//! Gives freed heap memory back to the system.
//!
//! glibc's malloc keeps what a large report, a refused report or a removed
//! plugin freed, spread over its per-thread arenas, so the daemon's RSS would
//! stay at its high-water mark. A background thread looks at the free heap
//! every second and trims it when enough has piled up: one cheap check
//! when idle, a trim (a few ms, on its own thread) only after real frees.

use std::time::Duration;

/// How often the free heap is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Free heap worth a trim.
const TRIM_ABOVE_BYTES: usize = 4 << 20;

/// Starts the trimming thread (once per process; later calls do nothing).
pub fn start_trimmer() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        // Few arenas: memory freed by one thread is reused by the others
        // instead of staying behind in a per-thread arena of its own.
        // SAFETY: mallopt only sets a malloc parameter.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
        let spawned = std::thread::Builder::new().name("heap-trim".into()).spawn(|| {
            loop {
                std::thread::sleep(CHECK_EVERY);
                if free_bytes() > TRIM_ABOVE_BYTES {
                    trim();
                }
            }
        });
        if let Err(err) = spawned {
            tracing::warn!("freed memory will not be given back to the system: {err}");
        }
    });
}

/// Heap bytes malloc holds free.
pub fn free_bytes() -> usize {
    // SAFETY: mallinfo2 only reads malloc's own statistics.
    let info = unsafe { libc::mallinfo2() };
    info.fordblks
}

/// Returns free heap pages of every arena to the system.
pub fn trim() {
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
