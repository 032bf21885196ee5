//! The TCP connection to gdb, as gdbstub sees it: replies are gathered and sent in one
//! write when gdbstub flushes them (gdbstub writes a byte at a time), and looking for a
//! Ctrl-C while the guest runs costs one non-blocking `recv` when nothing came. Waiting
//! for gdb's next request, it looks at the host's Ctrl-C flag ten times a second.

use gdbstub::conn::{Connection, ConnectionExt};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A gdb client's TCP connection.
pub struct GdbConnection {
    stream: TcpStream,
    out: Vec<u8>,
    /// Whether the socket is in non-blocking mode now (set only when it changes).
    nonblocking: bool,
    /// The host's Ctrl-C: a read waiting for gdb fails once it is set.
    interrupt: Option<Arc<AtomicBool>>,
}

impl GdbConnection {
    /// Wraps an accepted connection; `interrupt` (the host's Ctrl-C) ends a wait for gdb.
    pub fn new(stream: TcpStream, interrupt: Option<Arc<AtomicBool>>) -> std::io::Result<GdbConnection> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(GdbConnection { stream, out: Vec::new(), nonblocking: false, interrupt })
    }

    fn set_nonblocking(&mut self, on: bool) -> std::io::Result<()> {
        if self.nonblocking != on {
            self.stream.set_nonblocking(on)?;
            self.nonblocking = on;
        }
        Ok(())
    }
}

impl Drop for GdbConnection {
    /// What gdbstub wrote last (the acknowledgement of a `k`, after which it flushes
    /// nothing) still goes out.
    fn drop(&mut self) {
        if !self.out.is_empty() {
            let _ = self.flush();
        }
    }
}

impl Connection for GdbConnection {
    type Error = std::io::Error;

    fn write(&mut self, byte: u8) -> Result<(), Self::Error> {
        self.out.push(byte);
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
        self.out.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.set_nonblocking(false)?;
        Write::write_all(&mut self.stream, &self.out)?;
        self.out.clear();
        Write::flush(&mut self.stream)
    }

    fn on_session_start(&mut self) -> Result<(), Self::Error> {
        self.stream.set_nodelay(true)
    }
}

impl ConnectionExt for GdbConnection {
    fn read(&mut self) -> Result<u8, Self::Error> {
        // Whatever gdbstub wrote is out before it waits for an answer.
        if !self.out.is_empty() {
            self.flush()?;
        }
        self.set_nonblocking(false)?;
        let mut byte = [0u8];
        loop {
            match Read::read(&mut self.stream, &mut byte) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(_) => return Ok(byte[0]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    if self.interrupt.as_ref().is_some_and(|f| f.load(Ordering::Relaxed)) {
                        return Err(std::io::Error::new(ErrorKind::Interrupted, "Ctrl-C at the host"));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn peek(&mut self) -> Result<Option<u8>, Self::Error> {
        self.set_nonblocking(true)?;
        let mut byte = [0u8];
        match self.stream.peek(&mut byte) {
            Ok(0) => Err(ErrorKind::UnexpectedEof.into()),
            Ok(_) => Ok(Some(byte[0])),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}
