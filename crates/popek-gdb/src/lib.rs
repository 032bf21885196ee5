//! The GDB remote stub of `popek run --gdb PORT`: gdb (or any client of the remote serial
//! protocol, such as a lab grader) drives a guest over TCP.
//!
//! ```text
//!   gdb ─TCP─► GdbServer ─► gdbstub (packets, acks, Ctrl-C) ─► GdbTarget ─► Debugger ─► Machine
//!                                                              (target.rs)   (popek-machine::debug)
//! ```
//!
//! The protocol is the `gdbstub` crate's; this crate only says what each request does,
//! and it does so with [`popek_machine::debug::Debugger`], the core `popek debug` stands
//! on: the same breakpoints, watchpoints and steps, the same blocks run in parts. So the
//! guest runs on the reference interpreter, and a run that gdb only stops and continues
//! does what a plain interpreter run does (a single step is the exception: it holds
//! interrupts, as QEMU's does).
//!
//! What gdb sees is what QEMU's stub shows it: i386 registers, linear addresses for
//! memory (through the guest's page tables), `Z0`/`Z1` breakpoints at linear addresses
//! (no INT3 is written into the guest), `Z2`–`Z4` watchpoints, stop replies `T05thread:…`
//! (`T02` after a Ctrl-C), a single step that holds external interrupts pending, `W` with
//! the process exit status when the guest ends. The stub listens on 127.0.0.1 only.

mod conn;
mod target;

pub use conn::GdbConnection;
pub use target::{GdbTarget, RUN_SLICE};

use gdbstub::conn::ConnectionExt;
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, SingleThreadStopReason};
use popek_machine::StopReason;
use popek_machine::debug::{DebugStop, Debugger};
use std::marker::PhantomData;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What can go wrong serving gdb (host-side; a guest's faults are not errors).
#[derive(Debug, thiserror::Error)]
pub enum GdbError {
    /// The port could not be listened on (in use, or not allowed).
    #[error("cannot listen for gdb on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// Why.
        source: std::io::Error,
    },
    /// Accepting a connection failed.
    #[error("waiting for gdb: {0}")]
    Accept(std::io::Error),
}

/// A `Result` with a [`GdbError`].
pub type Result<T> = std::result::Result<T, GdbError>;

/// The listening socket gdb connects to.
pub struct GdbServer {
    listener: TcpListener,
    port: u16,
}

impl GdbServer {
    /// Listens on 127.0.0.1:`port` (0: a port the system picks; see [`GdbServer::port`]).
    pub fn bind(port: u16) -> Result<GdbServer> {
        let bind = |source| GdbError::Bind { port, source };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(bind)?;
        let port = listener.local_addr().map_err(bind)?.port();
        listener.set_nonblocking(true).map_err(bind)?;
        Ok(GdbServer { listener, port })
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection, if one is waiting.
    fn try_accept(&self) -> Result<Option<TcpStream>> {
        match self.listener.accept() {
            Ok((stream, _)) => Ok(Some(stream)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(GdbError::Accept(e)),
        }
    }
}

/// How [`run`] runs the guest.
#[derive(Clone, Debug)]
pub struct Options {
    /// Wait for gdb before the first instruction (QEMU's `-S`); else the guest starts
    /// at once and gdb may connect while it runs (it then stops where it is).
    pub wait: bool,
    /// Wall-clock limit of the run, from its start: once past it, the guest ends with
    /// [`StopReason::Timeout`] the next time it runs (a guest stopped under gdb, or
    /// waiting for gdb, is not ended).
    pub timeout: Option<Duration>,
    /// A flag that ends the run (the host's Ctrl-C), also while waiting for gdb.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// The process exit status for a machine stop, reported to gdb as `W` (or `X02`
    /// for [`StopReason::Interrupted`]).
    pub exit_status: fn(&StopReason) -> u8,
}

/// How a run under [`run`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The machine stopped (the guest exited, halted, triple-faulted, a limit, Ctrl-C at
    /// the host); gdb, if connected, was told.
    Stopped(StopReason),
    /// gdb killed the guest (`kill`).
    Killed,
}

/// Something [`run`] tells the user about as it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Waiting for gdb before the first instruction.
    Waiting,
    /// gdb connected; the guest is stopped.
    Connected,
    /// gdb detached (or went away: the reason); the guest runs on without it.
    Detached(Option<String>),
}

/// Runs the debugger's machine with a gdb stub on `server` until the machine stops or gdb
/// kills it. gdb may come and go: after a detach the guest runs on (its breakpoints and
/// watchpoints removed, as QEMU does) and another gdb may connect.
pub fn run(
    debugger: &mut Debugger,
    server: &GdbServer,
    opts: &Options,
    notify: &mut dyn FnMut(Notice),
) -> Result<Outcome> {
    let deadline = opts.timeout.and_then(|t| Instant::now().checked_add(t));
    let interrupted = || opts.interrupt.as_ref().is_some_and(|f| f.load(Ordering::Relaxed));
    let mut waiting = opts.wait;
    if waiting {
        notify(Notice::Waiting);
    }
    loop {
        let stream = loop {
            if let Some(s) = server.try_accept()? {
                break s;
            }
            if interrupted() {
                return Ok(Outcome::Stopped(StopReason::Interrupted));
            }
            if waiting {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(Outcome::Stopped(StopReason::Timeout));
            }
            // No gdb: no breakpoint either, so the slice runs whole or the machine stops.
            match debugger.run_for(RUN_SLICE, true) {
                DebugStop::Machine(s) => return Ok(Outcome::Stopped(s)),
                DebugStop::Interrupted => return Ok(Outcome::Stopped(StopReason::Interrupted)),
                _ => {}
            }
        };
        waiting = false;
        notify(Notice::Connected);
        let mut target = GdbTarget::new(debugger, deadline, opts.exit_status);
        let ended = session(&mut target, stream, opts.interrupt.clone());
        target.clear();
        if let Some(stop) = target.finished.take() {
            return Ok(Outcome::Stopped(stop));
        }
        if interrupted() {
            return Ok(Outcome::Stopped(StopReason::Interrupted));
        }
        match ended {
            Ok(DisconnectReason::Kill) => return Ok(Outcome::Killed),
            Ok(_) => notify(Notice::Detached(None)),
            Err(e) => notify(Notice::Detached(Some(e))),
        }
    }
}

/// Serves one gdb connection until it ends. gdbstub ends a session at a packet it cannot
/// parse (or a NAK); a client's mistake should not cost it the session, so the packet is
/// answered here (a NAK for a bad checksum, `E22` for a malformed command, as QEMU does)
/// and a new gdbstub session goes on, on the same connection and the same target.
fn session(
    target: &mut GdbTarget<'_>,
    mut stream: TcpStream,
    interrupt: Option<Arc<AtomicBool>>,
) -> std::result::Result<DisconnectReason, String> {
    use std::io::Write;
    loop {
        let spare = stream.try_clone();
        let conn = GdbConnection::new(stream, interrupt.clone()).map_err(|e| e.to_string())?;
        match GdbStub::new(conn).run_blocking::<EventLoop<'_>>(target) {
            Ok(DisconnectReason::Kill) => {
                // gdb's `vKill` waits for an `OK` that gdbstub does not send (outside its
                // extended mode); after a plain `k`, gdb has gone and reads nothing.
                if let Ok(mut s) = spare {
                    let _ = s.write_all(b"$OK#9a");
                }
                return Ok(DisconnectReason::Kill);
            }
            Ok(reason) => return Ok(reason),
            Err(e) if e.is_connection_error() || target.finished.is_some() => return Err(e.to_string()),
            Err(e) => {
                let why = e.to_string();
                let answer: &[u8] = match () {
                    _ if why.contains("ChecksumMismatched") => b"-",
                    _ if why.contains("nack") => b"",
                    _ => b"+$E22#a9",
                };
                let mut next = spare.map_err(|_| why.clone())?;
                next.write_all(answer).map_err(|_| why)?;
                stream = next;
            }
        }
    }
}

/// gdbstub's blocking loop over a [`GdbTarget`]: the guest runs a slice at a time, and
/// between two slices one non-blocking look at the socket catches gdb's Ctrl-C.
struct EventLoop<'a>(PhantomData<&'a ()>);

impl<'a> BlockingEventLoop for EventLoop<'a> {
    type Target = GdbTarget<'a>;
    type Connection = GdbConnection;
    type StopReason = SingleThreadStopReason<u32>;

    fn wait_for_stop_reason(
        target: &mut GdbTarget<'a>,
        conn: &mut GdbConnection,
    ) -> std::result::Result<
        Event<SingleThreadStopReason<u32>>,
        WaitForStopReasonError<std::convert::Infallible, std::io::Error>,
    > {
        loop {
            if conn.peek().map_err(WaitForStopReasonError::Connection)?.is_some() {
                let byte = conn.read().map_err(WaitForStopReasonError::Connection)?;
                return Ok(Event::IncomingData(byte));
            }
            if let Some(stop) = target.run_slice() {
                return Ok(Event::TargetStopped(stop));
            }
        }
    }

    fn on_interrupt(
        _target: &mut GdbTarget<'a>,
    ) -> std::result::Result<Option<SingleThreadStopReason<u32>>, std::convert::Infallible> {
        Ok(Some(target::interrupted()))
    }
}
