//! Guest output into the daemon's log: `host.log` calls and WASI stdout/stderr,
//! every line tagged with the plugin's ID.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tracing::Level;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::plugin_id::PluginId;

/// Longest line a guest can put into the log; the rest is cut off.
const MAX_LINE: usize = 4096;

/// Lines a plugin may log per second on average, and in a burst. A chatty or
/// hostile guest cannot flood the daemon's log; what is dropped is counted and
/// reported once lines flow again.
const LINES_PER_SECOND: f64 = 20.0;
const BURST_LINES: f64 = 100.0;

/// A plugin's log. Clones share one rate limit, so a rebuilt instance does
/// not get a fresh allowance.
#[derive(Clone)]
pub struct GuestLog {
    plugin: PluginId,
    budget: Arc<Mutex<LineBudget>>,
}

/// A token bucket of log lines.
struct LineBudget {
    tokens: f64,
    refilled: Instant,
    dropped: u64,
}

impl LineBudget {
    /// Whether a line may go out now; if so, how many were dropped before it.
    fn take(&mut self, now: Instant) -> Option<u64> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * LINES_PER_SECOND).min(BURST_LINES);
        self.refilled = now;
        if self.tokens < 1.0 {
            self.dropped += 1;
            return None;
        }
        self.tokens -= 1.0;
        Some(std::mem::take(&mut self.dropped))
    }
}

impl GuestLog {
    pub fn new(plugin: PluginId) -> Self {
        let budget = LineBudget { tokens: BURST_LINES, refilled: Instant::now(), dropped: 0 };
        Self { plugin, budget: Arc::new(Mutex::new(budget)) }
    }

    pub fn write(&self, level: Level, message: &str) {
        let Some(dropped) = self.budget.lock().unwrap().take(Instant::now()) else { return };
        let plugin = self.plugin.as_str();
        if dropped > 0 {
            tracing::warn!(target: "guest", plugin, "{dropped} log lines dropped: over {LINES_PER_SECOND} lines/s");
        }
        let message = truncate(message.trim_end(), MAX_LINE);
        match level {
            Level::TRACE => tracing::trace!(target: "guest", plugin, "{message}"),
            Level::DEBUG => tracing::debug!(target: "guest", plugin, "{message}"),
            Level::INFO => tracing::info!(target: "guest", plugin, "{message}"),
            Level::WARN => tracing::warn!(target: "guest", plugin, "{message}"),
            Level::ERROR => tracing::error!(target: "guest", plugin, "{message}"),
        }
    }

    /// A WASI output stream (stdout or stderr) whose lines go to this log.
    pub fn stream(&self, level: Level) -> GuestOutput {
        GuestOutput { log: self.clone(), level }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A guest's stdout or stderr.
pub struct GuestOutput {
    log: GuestLog,
    level: Level,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter { log: self.log.clone(), level: self.level, pending: Vec::new() })
    }
}

/// Buffers bytes until a newline, then logs the line. A line longer than
/// `MAX_LINE` is logged in pieces so a guest cannot grow the buffer unbounded.
struct LineWriter {
    log: GuestLog,
    level: Level,
    pending: Vec<u8>,
}

impl LineWriter {
    fn flush_line(&mut self) {
        if !self.pending.is_empty() {
            self.log.write(self.level, &String::from_utf8_lossy(&self.pending));
            self.pending.clear();
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        for &byte in buf {
            if byte == b'\n' {
                self.flush_line();
            } else {
                self.pending.push(byte);
                if self.pending.len() >= MAX_LINE {
                    self.flush_line();
                }
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flush_line();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.flush_line();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_flood_is_cut_to_the_rate_and_the_loss_reported() {
        let start = Instant::now();
        let mut budget = LineBudget { tokens: BURST_LINES, refilled: start, dropped: 0 };
        let passed = (0..1000).filter(|_| budget.take(start).is_some()).count();
        assert_eq!(passed, BURST_LINES as usize);
        // Half a second later: 10 more lines, the first says what was lost.
        let later = start + Duration::from_millis(500);
        assert_eq!(budget.take(later), Some(900));
        let passed = 1 + (0..100).filter(|_| budget.take(later).is_some()).count();
        assert_eq!(passed, 10);
    }
}
