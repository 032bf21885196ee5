//! The PC device bus: port I/O and MMIO range maps and the devices behind them.
//!
//! ```text
//!   popek-machine (run loop) ── advance_to(now_ns) / next_deadline() / take_stop_request()
//!        │                      pending_interrupt_vector() / acknowledge_interrupt()
//!        ▼
//!   popek-cpu / popek-vmm ──(popek_memory::Bus: port_read/port_write/mmio_*)──┐
//!                                                                              ▼
//!                              ┌──────────────────── DeviceBus ───────────────────────┐
//!                              │ port map (Port ranges)        MMIO map (PhysAddr)    │
//!                              │  0x20/0xA0/0x4D0 PicPair ◄─┐   0xA0000 VgaText       │
//!                              │  0x40/0x61  Pit ── IRQ 0 ──┤                          │
//!                              │  0x3F8      Uart ─ IRQ 4 ──┤  IrqSink (levels)        │
//!                              │  0x70       Cmos ─ IRQ 8 ──┤                          │
//!                              │  0x60/0x64  I8042 ─ IRQ 1 ─┘                          │
//!                              │  0xF4 DebugExit, 0xE9 Debugcon, 0x80 Post, 0xCF8 Pci  │
//!                              └───────────────────────────────────────────────────────┘
//!                                 devices write bytes to ByteSinks (stdout, file, Vec)
//! ```
//!
//! This crate sits between `popek-memory` (which defines the [`popek_memory::Bus`]
//! trait and the address newtypes) and the machine. Devices are plain state
//! machines: they never see the CPU, never read a wall clock and never touch
//! guest RAM. Everything they need arrives through a [`DeviceContext`]: the
//! virtual time in nanoseconds (set by the machine with
//! [`DeviceBus::advance_to`]), an [`IrqSink`] for their interrupt lines (the
//! bus wires it to the 8259A pair) and a slot for a [`StopRequest`]
//! (debug-exit, keyboard-controller reset). So every run is deterministic and
//! every device can be unit-tested with a fake clock and a fake IRQ sink.

mod bus;
pub mod clock;
pub mod cmos;
pub mod i8042;
pub mod misc;
pub mod pc;
pub mod pic;
pub mod pit;
pub mod sink;
pub mod uart;
pub mod vga;

#[cfg(test)]
mod testing;

pub use bus::{BusError, DeviceBus, DeviceContext, IrqSink, MmioDevice, PortDevice, Result, StopRequest};
pub use sink::{ByteSink, NullSink, SharedBuffer, SharedSink, StdoutSink, WriterSink};
