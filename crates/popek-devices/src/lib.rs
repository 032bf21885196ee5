//! The PC device bus: port I/O and MMIO range maps and the devices behind them.
//!
//! ```text
//!   popek-machine (run loop) ── advance_to(now_ns) / next_deadline() / take_stop_request()
//!        │                      interrupt_pending() / acknowledge_interrupt()
//!        ▼
//!   popek-cpu / popek-vmm ──(popek_memory::Bus: port_read/port_write/mmio_*/read_msr/write_msr)──┐
//!                                                                                                 ▼
//!   ┌──────────────────────────────────── DeviceBus ──────────────────────────────────────────┐
//!   │ InterruptControllers (built in)                 port map (Port ranges)   MMIO map        │
//!   │   PicPair 0x20/0xA0/0x4D0 ─ INTR ─ LINT0 ExtINT ┐  0x40/0x61 Pit ─ IRQ 0 ─┐  0xA0000 Vga │
//!   │   IoApic 0xFEC00000 ── fixed messages ─┐        │  0x3F8 Uart ── IRQ 4 ───┤              │
//!   │   Lapic  0xFEE00000 (timer, IA32_APIC_BASE) ◄───┘  0x70 Cmos ── IRQ 8 ───┤              │
//!   │     └─► highest deliverable vector, else the 8259A's   0x60/0x64 I8042 ─ IRQ 1 ─┤        │
//!   │   0x1F0/0x3F6 Ide (ATA PIO, master + slave BlockStorage) ─ IRQ 14 ──────────────┤        │
//!   │   IrqSink: ISA IRQ n ─► 8259A IRQ n and I/O APIC pin n (IRQ 0 ─► pin 2) ◄────────┘        │
//!   │ 0xF4 DebugExit, 0xE9 Debugcon, 0x80 Post, 0xCF8 Pci, 0xF0 FpuErrorLatch (CPU FERR# ─ IRQ 13)│
//!   └──────────────────────────────────────────────────────────────────────────────────────────┘
//!      devices write bytes to ByteSinks (stdout, file, Vec)
//! ```
//!
//! This crate sits between `popek-memory` (which defines the [`popek_memory::Bus`]
//! trait and the address newtypes) and the machine. Devices are plain state
//! machines: they never see the CPU, never read a wall clock and never touch
//! guest RAM. Everything they need arrives through a [`DeviceContext`]: the
//! virtual time in nanoseconds (set by the machine with
//! [`DeviceBus::advance_to`]), an [`IrqSink`] for their interrupt lines (the
//! bus wires it to the 8259A pair and the I/O APIC) and a slot for a [`StopRequest`]
//! (debug-exit, keyboard-controller reset). So every run is deterministic and
//! every device can be unit-tested with a fake clock and a fake IRQ sink.
//!
//! How the machine drives it:
//!
//! ```
//! use popek_devices::{SharedBuffer, StopRequest, pc};
//! use popek_memory::{AccessSize, Bus, Port};
//!
//! let com1 = SharedBuffer::new();
//! let mut bus = pc::standard_bus(pc::PcConfig { serial: Box::new(com1.clone()), ..Default::default() });
//! // The CPU's `out dx, al` with DX = 0x3F8 ends up here:
//! bus.port_write(Port(0x3f8), AccessSize::Byte, u32::from(b'A'));
//! // At each block boundary: move virtual time, then look for an interrupt
//! // (if EFLAGS.IF is set) and a stop request.
//! bus.advance_to(1_000_000);
//! if let Some(_vector) = bus.acknowledge_interrupt() { /* deliver through the IDT */ }
//! // A halted CPU skips ahead to the next timer event:
//! let _wake_at = bus.next_deadline();
//! bus.port_write(Port(0xf4), AccessSize::Byte, 0);
//! assert_eq!(bus.take_stop_request().and_then(StopRequest::exit_status), Some(1));
//! assert_eq!(com1.text(), "A");
//! ```

mod bus;
pub mod clock;
pub mod cmos;
pub mod ferr;
pub mod fw_cfg;
pub mod hpet;
pub mod i8042;
pub mod ide;
pub mod intc;
pub mod ioapic;
pub mod lapic;
pub mod misc;
pub mod pc;
pub mod pic;
pub mod pit;
pub mod sink;
pub mod storage;
pub mod testdev;
pub mod uart;
pub mod vga;
pub mod vga_regs;

#[cfg(test)]
mod testing;

pub use bus::{
    Access, AccessSpace, BusError, DeviceBus, DeviceContext, IrqSink, MmioDevice, PortDevice, Result, StopRequest,
};
pub use intc::InterruptControllers;
pub use ioapic::IoApic;
pub use lapic::Lapic;
pub use pc::{PcConfig, standard_bus};
pub use pic::PicPair;
pub use sink::{ByteSink, NullSink, SharedBuffer, SharedSink, StdoutSink, WriterSink};
pub use storage::{BlockStorage, MemoryStorage, SECTOR_SIZE, StorageError};
