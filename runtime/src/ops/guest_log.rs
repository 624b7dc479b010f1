//! Guest output into the daemon's log: `host.log` calls and WASI stdout/stderr,
//! every line tagged with the plugin's ID.
//!
//! Guest text is untrusted: its control characters are escaped (see
//! `escape_controls`), so one `host.log` call (or one line of stdout) is one
//! log line, in the human and the JSON format alike. A guest cannot start a
//! line that looks like the daemon's, or one about another plugin, nor move
//! the cursor, clear or colour the operator's terminal.

use std::borrow::Cow;
use std::fmt::Write as _;
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
    /// The last failure the guest announced (see `is_failure_notice`) during
    /// the current call: the text its trap is shown with.
    failure: Arc<Mutex<Option<String>>>,
}

/// How an SDK announces, at error level, the failure it is about to trap on: a
/// Rust panic (`panicked at src/lib.rs:12:9: boom`) or a C plugin's abort
/// (`aborted: reason`). The trap itself carries no message.
pub fn is_failure_notice(message: &str) -> bool {
    message.starts_with("panicked at ") || message.starts_with("panicked: ") || message.starts_with("aborted: ")
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
        Self { plugin, budget: Arc::new(Mutex::new(budget)), failure: Arc::default() }
    }

    /// Keeps `message` as the current call's failure if it announces one; kept
    /// even when the line itself is dropped by the rate limit.
    pub fn note_if_failure(&self, level: Level, message: &str) {
        if level == Level::ERROR && is_failure_notice(message) {
            let text = escape_controls(message.trim_end(), MAX_LINE).into_owned();
            *self.failure.lock().unwrap() = Some(text);
        }
    }

    /// The failure announced since the last call of this, if any.
    pub fn take_failure(&self) -> Option<String> {
        self.failure.lock().unwrap().take()
    }

    pub fn write(&self, level: Level, message: &str) {
        let Some(dropped) = self.budget.lock().unwrap().take(Instant::now()) else { return };
        let plugin = self.plugin.as_str();
        if dropped > 0 {
            tracing::warn!(target: "guest", plugin, "{dropped} log lines dropped: over {LINES_PER_SECOND} lines/s");
        }
        let message = escape_controls(message.trim_end(), MAX_LINE);
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

/// Characters written as escapes: every control character (C0, DEL, C1, which
/// includes NEL), the Unicode line and paragraph separators, and the bidi
/// controls that make text display in another order than it is read.
fn is_escaped(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}')
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Untrusted text made fit for one log line: `\n`, `\r` and `\t` as those two
/// characters, other escaped characters (see `is_escaped`) as `\u{1b}`; any
/// other UTF-8 is kept as it is, so ordinary text stays readable. At most `max`
/// bytes come out; the rest is cut off (never in the middle of an escape).
pub fn escape_controls(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max && !text.chars().any(is_escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max));
    let mut piece = String::new();
    for c in text.chars() {
        piece.clear();
        match c {
            '\n' => piece.push_str("\\n"),
            '\r' => piece.push_str("\\r"),
            '\t' => piece.push_str("\\t"),
            c if is_escaped(c) => {
                let _ = write!(piece, "\\u{{{:x}}}", u32::from(c));
            }
            c => piece.push(c),
        }
        if out.len() + piece.len() > max {
            break;
        }
        out.push_str(&piece);
    }
    Cow::Owned(out)
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

/// How many bytes at the end of `bytes` begin a UTF-8 character that is not complete yet.
fn incomplete_tail(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if byte & 0xC0 != 0x80 {
            // The first byte of a character: how long it says the character is.
            let length = match byte {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            };
            return if length > back { back } else { 0 };
        }
    }
    0
}

impl AsyncWrite for LineWriter {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        for &byte in buf {
            if byte == b'\n' {
                self.flush_line();
            } else {
                self.pending.push(byte);
                if self.pending.len() >= MAX_LINE {
                    // A character cut in two would be garbled in both pieces.
                    let whole = self.pending.len() - incomplete_tail(&self.pending);
                    let rest = self.pending.split_off(whole);
                    self.flush_line();
                    self.pending = rest;
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

    #[test]
    fn an_announced_failure_is_kept_for_the_call_once() {
        let log = GuestLog::new(PluginId::parse("failing").unwrap());
        log.note_if_failure(Level::INFO, "panicked at src/lib.rs:1:1: not at error level");
        log.note_if_failure(Level::ERROR, "an ordinary error line");
        assert_eq!(log.take_failure(), None);
        log.note_if_failure(Level::ERROR, "panicked at src/lib.rs:12:9: boom\n");
        assert_eq!(log.take_failure().as_deref(), Some("panicked at src/lib.rs:12:9: boom"));
        assert_eq!(log.take_failure(), None);
    }

    #[test]
    fn controls_are_escaped_and_text_stays_readable() {
        let forged = "ok\n2026-05-09T10:00:00Z ERROR plugin=victim\r\x1b[2K\x1b]0;t\x07\u{9b}31m\u{85}\u{2028}\u{202e}\0";
        assert_eq!(
            escape_controls(forged, MAX_LINE),
            "ok\\n2026-05-09T10:00:00Z ERROR plugin=victim\\r\\u{1b}[2K\\u{1b}]0;t\\u{7}\\u{9b}31m\\u{85}\\u{2028}\\u{202e}\\u{0}"
        );
        assert_eq!(escape_controls("a\tb", MAX_LINE), "a\\tb");
        let plain = "héllo wörld ✓ 日本語 C:\\temp \"quoted\" 🙂";
        assert!(matches!(escape_controls(plain, MAX_LINE), Cow::Borrowed(text) if text == plain));
    }

    #[test]
    fn escaped_text_is_cut_to_the_limit_between_characters() {
        assert_eq!(escape_controls("ab\ncd", 3), "ab");
        assert_eq!(escape_controls("ab\ncd", 4), "ab\\n");
        assert_eq!(escape_controls("日本語", 7), "日本");
        let long = "\x1b".repeat(MAX_LINE);
        let cut = escape_controls(&long, MAX_LINE);
        assert!(cut.len() <= MAX_LINE && cut.ends_with("\\u{1b}"), "{}", cut.len());
    }

    #[test]
    fn long_stdout_lines_are_split_between_characters() {
        assert_eq!(incomplete_tail(b"abc"), 0);
        assert_eq!(incomplete_tail("a日".as_bytes()), 0);
        assert_eq!(incomplete_tail(&"a日".as_bytes()[..2]), 1);
        assert_eq!(incomplete_tail(&"a日".as_bytes()[..3]), 2);
        assert_eq!(incomplete_tail(&"🙂".as_bytes()[..3]), 3);
        assert_eq!(incomplete_tail(b"\xff\xff"), 0, "invalid bytes are not held back");
    }
}
