//! Guest output into the daemon's log: `host.log` calls and WASI stdout/stderr,
//! every line tagged with the plugin's ID.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tracing::Level;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::plugin_id::PluginId;

/// Longest line a guest can put into the log; the rest is cut off.
const MAX_LINE: usize = 4096;

#[derive(Clone)]
pub struct GuestLog {
    plugin: PluginId,
}

impl GuestLog {
    pub fn new(plugin: PluginId) -> Self {
        Self { plugin }
    }

    pub fn write(&self, level: Level, message: &str) {
        let message = truncate(message.trim_end(), MAX_LINE);
        let plugin = self.plugin.as_str();
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
