//! Input typed at the host while the guest runs: bytes for COM1's receiver, and the
//! user's request to quit.
//!
//! ```text
//!   terminal thread (CLI) ── Console::type_bytes / Console::quit ──► shared queue
//!   run loop ── between steps: Console::take ──► COM1 receiver (or StopReason::Quit)
//! ```
//!
//! The run loop looks at one atomic flag per step, so a run without typing pays nothing.
//! Typed bytes arrive between blocks at whatever virtual time the guest has reached when
//! they come: the only input that makes a run depend on the wall clock. Piped stdin and
//! `--input` do not come this way; they are queued before the run starts, so those runs
//! stay deterministic.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// What the run loop finds when it looks at the console.
#[derive(Debug, PartialEq, Eq)]
pub enum ConsoleInput {
    /// Bytes to queue for COM1's receiver.
    Bytes(Vec<u8>),
    /// The user asked to quit.
    Quit,
}

#[derive(Debug, Default)]
struct Shared {
    /// Set whenever `queue` is non-empty or `quit` is set.
    pending: AtomicBool,
    quit: AtomicBool,
    queue: Mutex<VecDeque<u8>>,
}

/// A handle to the console, shared by the thread that reads the terminal and the run
/// loop (clones are handles to the same console).
#[derive(Clone, Debug, Default)]
pub struct Console {
    shared: Arc<Shared>,
}

impl Console {
    /// A console with nothing typed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes typed at the terminal.
    pub fn type_bytes(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner).extend(bytes);
        self.shared.pending.store(true, Ordering::Release);
    }

    /// The user asked to quit (QEMU's Ctrl-A x).
    pub fn quit(&self) {
        self.shared.quit.store(true, Ordering::Release);
        self.shared.pending.store(true, Ordering::Release);
    }

    /// What has arrived since the last call, if anything: a quit request wins over bytes.
    /// One relaxed load when nothing has.
    #[inline]
    pub fn take(&self) -> Option<ConsoleInput> {
        if !self.shared.pending.load(Ordering::Relaxed) {
            return None;
        }
        self.shared.pending.store(false, Ordering::Release);
        if self.shared.quit.load(Ordering::Acquire) {
            return Some(ConsoleInput::Quit);
        }
        let bytes: Vec<u8> = self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner).drain(..).collect();
        (!bytes.is_empty()).then_some(ConsoleInput::Bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_then_quit() {
        let c = Console::new();
        assert_eq!(c.take(), None);
        let typist = c.clone();
        typist.type_bytes(b"ls\r");
        typist.type_bytes(b"");
        assert_eq!(c.take(), Some(ConsoleInput::Bytes(b"ls\r".to_vec())));
        assert_eq!(c.take(), None);
        typist.type_bytes(b"x");
        typist.quit();
        assert_eq!(c.take(), Some(ConsoleInput::Quit));
    }
}
