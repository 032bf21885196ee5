//! Byte sinks: where serial and debugcon output goes (stdout, a file, a buffer).

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// A destination for output bytes.
pub trait ByteSink: Send {
    /// Emit one byte.
    fn write_byte(&mut self, byte: u8);
    /// Push buffered bytes out (called by the machine at exit).
    fn flush(&mut self) {}
}

/// Writes to the process's stdout (Rust's shared, line-buffered handle, so
/// several sinks writing to stdout keep their order).
#[derive(Debug, Default, Clone, Copy)]
pub struct StdoutSink;

impl ByteSink for StdoutSink {
    fn write_byte(&mut self, byte: u8) {
        // Output errors (closed pipe) must not stop the guest.
        let _ = std::io::stdout().write_all(&[byte]);
    }
    fn flush(&mut self) {
        let _ = std::io::stdout().flush();
    }
}

/// Drops every byte.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl ByteSink for NullSink {
    fn write_byte(&mut self, _byte: u8) {}
}

/// Writes to any `Write` (a file, a pipe).
pub struct WriterSink<W: Write + Send>(pub W);

impl<W: Write + Send> ByteSink for WriterSink<W> {
    fn write_byte(&mut self, byte: u8) {
        let _ = self.0.write_all(&[byte]);
    }
    fn flush(&mut self) {
        let _ = self.0.flush();
    }
}

/// A cloneable in-memory buffer (tests, and capturing guest output).
#[derive(Debug, Default, Clone)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }
    /// A copy of everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
    /// Everything written so far, as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.contents()).into_owned()
    }
}

impl ByteSink for SharedBuffer {
    fn write_byte(&mut self, byte: u8) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(byte);
    }
}

/// One sink shared by several devices (e.g. COM1 and debugcon writing to the
/// same file, in order).
#[derive(Clone)]
pub struct SharedSink(Arc<Mutex<Box<dyn ByteSink>>>);

impl SharedSink {
    /// Share `sink`.
    pub fn new(sink: Box<dyn ByteSink>) -> Self {
        SharedSink(Arc::new(Mutex::new(sink)))
    }
}

impl ByteSink for SharedSink {
    fn write_byte(&mut self, byte: u8) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).write_byte(byte);
    }
    fn flush(&mut self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_sinks_keep_order() {
        let buf = SharedBuffer::new();
        let mut a = SharedSink::new(Box::new(buf.clone()));
        let mut b = a.clone();
        a.write_byte(b'x');
        b.write_byte(b'y');
        a.write_byte(b'z');
        assert_eq!(buf.text(), "xyz");
        let mut w = WriterSink(Vec::new());
        w.write_byte(7);
        assert_eq!(w.0, vec![7]);
    }
}
