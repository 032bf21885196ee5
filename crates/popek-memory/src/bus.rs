//! The interface between the CPU and the devices.
//!
//! The CPU (and the software VMM) see devices only through this trait; the
//! device crate implements it. Sizes are 1, 2 or 4 bytes.

use crate::{PhysAddr, Port};

/// Width of one bus access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessSize {
    /// 8 bits.
    Byte = 1,
    /// 16 bits.
    Word = 2,
    /// 32 bits.
    Dword = 4,
}

impl AccessSize {
    /// Number of bytes.
    #[inline]
    pub const fn bytes(self) -> u32 {
        self as u32
    }
    /// All-ones value of this width (what an unclaimed port or address reads as).
    #[inline]
    pub const fn ones(self) -> u32 {
        match self {
            AccessSize::Byte => 0xff,
            AccessSize::Word => 0xffff,
            AccessSize::Dword => 0xffff_ffff,
        }
    }
}

/// Port I/O and MMIO as seen from the CPU.
pub trait Bus {
    /// `IN`: read `size` bytes from `port`.
    fn port_read(&mut self, port: Port, size: AccessSize) -> u32;
    /// `OUT`: write the low `size` bytes of `value` to `port`.
    fn port_write(&mut self, port: Port, size: AccessSize, value: u32);
    /// Read from a physical address that is not RAM.
    fn mmio_read(&mut self, addr: PhysAddr, size: AccessSize) -> u32;
    /// Write to a physical address that is not RAM.
    fn mmio_write(&mut self, addr: PhysAddr, size: AccessSize, value: u32);
    /// Brings device time up to `now_ns` before an access (an engine running several
    /// blocks in one go calls it where the run loop would have between blocks). The
    /// default does nothing: a bus without timers.
    fn advance_to(&mut self, now_ns: u64) {
        let _ = now_ns;
    }
    /// True if a write to `addr` (not RAM) may make an interrupt deliverable — a write
    /// to an interrupt controller's registers (the local APIC's TPR, EOI, ICR…, the I/O
    /// APIC's window). The engines then end the block after the instruction, so the
    /// run loop looks for an interrupt right away (as after an OUT). Default: false.
    fn write_may_open_interrupt_window(&self, addr: PhysAddr) -> bool {
        let _ = addr;
        false
    }
    /// True if a read of `addr` (not RAM) changes nothing the run loop looks at between
    /// blocks: no interrupt line, no timer deadline, no other device state (the local
    /// APIC's ID, TPR, ISR… registers, the I/O APIC's window). Translated code then goes on
    /// after such a read as after a RAM access, instead of returning to the run loop; the
    /// read itself still sees device time brought up to date. Default: false.
    fn mmio_read_is_pure(&self, addr: PhysAddr) -> bool {
        let _ = addr;
        false
    }
    /// True if an `IN` of `size` bytes from `port` changes nothing the run loop looks at
    /// between blocks (no interrupt line, no timer deadline, no device state: port 0x80,
    /// a port no device claims). Translated code then goes on after such an `IN` as after
    /// an ordinary instruction. The answer must not change while the machine runs (the JIT
    /// asks once). Default: false.
    fn port_read_is_pure(&self, port: Port, size: AccessSize) -> bool {
        let _ = (port, size);
        false
    }
    /// True if an interrupt or an NMI may be waiting for the CPU (its INTR or NMI input is
    /// asserted). An engine that could go on after an instruction that may let one in
    /// (IRET sets IF, and unblocks NMIs) returns to the run loop instead, which delivers
    /// it, only when this says so. The default says true: a bus that cannot tell.
    fn interrupt_may_be_pending(&self) -> bool {
        true
    }
    /// RDMSR of an MSR the platform owns (e.g. `IA32_APIC_BASE`, 0x1B, of the local
    /// APIC): its value, or `None` if the platform has no such MSR (the CPU then
    /// raises #GP). The default has none.
    fn read_msr(&mut self, msr: u32) -> Option<u64> {
        let _ = msr;
        None
    }
    /// WRMSR of an MSR the platform owns: true if it was written; false if there is
    /// no such MSR or the value sets reserved bits (the CPU then raises #GP). The
    /// default has none.
    fn write_msr(&mut self, msr: u32, value: u64) -> bool {
        let _ = (msr, value);
        false
    }
    /// The CPU drives its FERR# output pin: asserted while an unmasked x87 exception is
    /// pending and CR0.NE = 0 (the PC's legacy, MS-DOS compatible error reporting, SDM
    /// Vol. 1 Appendix D). On a PC the chipset turns it into IRQ 13. Called only when the
    /// level changes. The default connects it to nothing.
    fn set_ferr(&mut self, asserted: bool) {
        let _ = asserted;
    }
    /// The level of the CPU's IGNNE# input: true tells the x87 to ignore a pending error
    /// and run a waiting instruction anyway (the PC's chipset asserts it after a write to
    /// port 0xF0 while FERR# is asserted). The default never asserts it.
    fn ignne(&mut self) -> bool {
        false
    }
}

/// A bus with nothing on it: reads return all ones, writes are dropped (like an
/// empty PC bus). Used by CPU tests.
#[derive(Debug, Default, Clone)]
pub struct NullBus {
    /// Every port write seen, in order (handy for tests).
    pub port_writes: Vec<(Port, AccessSize, u32)>,
}

impl Bus for NullBus {
    fn port_read(&mut self, _port: Port, size: AccessSize) -> u32 {
        size.ones()
    }
    fn port_write(&mut self, port: Port, size: AccessSize, value: u32) {
        self.port_writes.push((port, size, value));
    }
    fn mmio_read(&mut self, _addr: PhysAddr, size: AccessSize) -> u32 {
        size.ones()
    }
    fn mmio_write(&mut self, _addr: PhysAddr, _size: AccessSize, _value: u32) {}
    fn interrupt_may_be_pending(&self) -> bool {
        false // no interrupt controller
    }
}
