//! The TCP connection to gdb, as gdbstub sees it: replies are gathered and sent in one
//! write when gdbstub flushes them (gdbstub writes a byte at a time), and looking for a
//! Ctrl-C while the guest runs costs one non-blocking `recv` when nothing came.

use gdbstub::conn::{Connection, ConnectionExt};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;

/// A gdb client's TCP connection.
pub struct GdbConnection {
    stream: TcpStream,
    out: Vec<u8>,
    /// Whether the socket is in non-blocking mode now (set only when it changes).
    nonblocking: bool,
}

impl GdbConnection {
    /// Wraps an accepted connection.
    pub fn new(stream: TcpStream) -> std::io::Result<GdbConnection> {
        stream.set_nonblocking(false)?;
        Ok(GdbConnection { stream, out: Vec::new(), nonblocking: false })
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
        Read::read_exact(&mut self.stream, &mut byte)?;
        Ok(byte[0])
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
