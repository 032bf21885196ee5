//! The platform's interrupt controllers wired together: the 8259A pair, the I/O APIC
//! and the CPU's local APIC, merged into one answer to "the CPU's highest deliverable
//! vector".
//!
//! ```text
//!   devices ── IrqSink::set_irq(n, level) ──┬──► PicPair IRQ n ──► INTR ─┬─ LINT0 ExtINT (unmasked)
//!                                           │                         ├─ I/O APIC pin 0 ExtINT
//!                                           │                         └─ APIC globally disabled
//!                                           └──► IoApic pin n (IRQ 0 → pin 2)          │
//!                                                  │ fixed messages                    │
//!                                                  ▼                                   │
//!   Lapic: IRR ◄── timer, LVT error, self-IPI                                          │
//!          └─ deliverable() (IRR class > PPR class) ───► first choice                  │
//!                                                        else the 8259A's vector ◄─────┘
//! ```
//!
//! The order follows QEMU and the hardware: a deliverable fixed interrupt of the local
//! APIC is taken first; otherwise, if the 8259A's INTR reaches the CPU (through LINT0
//! in ExtINT mode, the I/O APIC's pin 0 in ExtINT mode, or because the APIC is
//! globally disabled), the 8259A's INTA cycle gives the vector. ExtINT bypasses the
//! APIC's priority rules. A level-triggered EOI at the local APIC is broadcast to the
//! I/O APIC. None of this sees the CPU: the bus asks, the run loop delivers.

use crate::bus::IrqSink;
use crate::ioapic::{IoApic, isa_irq_to_pin};
use crate::lapic::{Lapic, MSR_IA32_APIC_BASE};
use crate::pic::PicPair;

/// The 8259A pair, the I/O APIC and the local APIC.
#[derive(Clone, Debug, Default)]
pub struct InterruptControllers {
    /// The 8259A pair (ports 0x20, 0xA0, ELCR 0x4D0).
    pub pic: PicPair,
    /// The I/O APIC (0xFEC00000).
    pub ioapic: IoApic,
    /// The local APIC (0xFEE00000).
    pub lapic: Lapic,
}

impl IrqSink for InterruptControllers {
    /// ISA line `irq` goes to the 8259A pair and to its I/O APIC pin.
    fn set_irq(&mut self, irq: u8, level: bool) {
        self.pic.set_irq(irq, level);
        if irq < 16 {
            self.ioapic.set_pin(isa_irq_to_pin(irq), level, &mut self.lapic);
        }
    }
}

impl InterruptControllers {
    /// The given 8259A pair with an I/O APIC and a local APIC in their reset states.
    pub fn with_pic(pic: PicPair) -> Self {
        InterruptControllers { pic, ioapic: IoApic::new(), lapic: Lapic::new() }
    }

    /// True if the 8259A's INTR reaches the CPU (see the module docs).
    pub fn pic_reaches_cpu(&self) -> bool {
        self.lapic.lint0_passes_extint() || self.ioapic.passes_extint()
    }

    /// True if the CPU's INTR is asserted: the local APIC has a deliverable vector, or
    /// the 8259A's request gets through.
    #[inline]
    pub fn intr(&self) -> bool {
        self.lapic.deliverable().is_some() || (self.pic.intr() && self.pic_reaches_cpu())
    }

    /// The vector the next INTA cycle would give, without side effects.
    pub fn pending_vector(&self) -> Option<u8> {
        match self.lapic.deliverable() {
            Some(v) => Some(v),
            None if self.pic_reaches_cpu() => self.pic.pending_vector(),
            None => None,
        }
    }

    /// The INTA cycle, if INTR is asserted: the local APIC's vector (IRR → ISR) or the
    /// 8259A's.
    pub fn acknowledge(&mut self) -> Option<u8> {
        if self.lapic.deliverable().is_some() {
            Some(self.lapic.inta())
        } else if self.pic.intr() && self.pic_reaches_cpu() {
            Some(self.pic.inta())
        } else {
            None
        }
    }

    /// A read of the local APIC's page at `offset`, at virtual time `now_ns`.
    pub fn lapic_read(&mut self, now_ns: u64, offset: u32) -> u32 {
        self.lapic.read(now_ns, offset)
    }

    /// A write to the local APIC's page; an EOI of a level-triggered vector is
    /// broadcast to the I/O APIC.
    pub fn lapic_write(&mut self, now_ns: u64, offset: u32, value: u32) {
        if let Some(vector) = self.lapic.write(now_ns, offset, value) {
            self.ioapic.eoi(vector, &mut self.lapic);
        }
    }

    /// A read of the I/O APIC's window at `offset`.
    pub fn ioapic_read(&self, offset: u32) -> u32 {
        self.ioapic.read(offset)
    }

    /// A write to the I/O APIC's window at `offset`.
    pub fn ioapic_write(&mut self, offset: u32, value: u32) {
        self.ioapic.write(offset, value, &mut self.lapic);
    }

    /// RDMSR of a platform MSR (`IA32_APIC_BASE`); `None` for others.
    pub fn read_msr(&self, msr: u32) -> Option<u64> {
        (msr == MSR_IA32_APIC_BASE).then(|| self.lapic.apic_base())
    }

    /// WRMSR of a platform MSR; false (#GP) for others or reserved bits.
    pub fn write_msr(&mut self, msr: u32, value: u64) -> bool {
        msr == MSR_IA32_APIC_BASE && self.lapic.write_apic_base(value)
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, reason = "low halves of redirection entries")]
mod tests {
    use super::*;
    use crate::ioapic::{REDIR_LEVEL, REDIR_MASKED};
    use crate::lapic::LVT_MASKED;

    fn route(c: &mut InterruptControllers, pin: u32, entry: u32) {
        c.ioapic_write(0, 0x10 + 2 * pin);
        c.ioapic_write(0x10, entry);
    }

    #[test]
    fn pic_through_lint0_until_masked() {
        let mut c = InterruptControllers::with_pic(PicPair::bios_initialised());
        c.pic.master.imr = 0xfd; // IRQ 1 only
        c.set_irq(1, true);
        assert!(c.intr());
        assert_eq!(c.pending_vector(), Some(0x09));
        // Masking LINT0 cuts the virtual wire.
        c.lapic_write(0, 0xf0, 0x1ff);
        c.lapic_write(0, 0x350, LVT_MASKED | 0x700);
        assert!(!c.intr());
        assert_eq!(c.acknowledge(), None);
        // The I/O APIC's pin 0 as ExtINT lets it through again.
        route(&mut c, 0, 0x700);
        assert_eq!(c.acknowledge(), Some(0x09));
        route(&mut c, 0, REDIR_MASKED as u32);
        // A global disable wires the 8259A straight to INTR.
        c.pic.write_port(popek_memory::Port(0x20), 0, 0x20); // EOI
        c.set_irq(1, false);
        c.set_irq(1, true);
        assert!(!c.intr());
        assert!(c.write_msr(MSR_IA32_APIC_BASE, 0xfee0_0100));
        assert_eq!(c.read_msr(MSR_IA32_APIC_BASE), Some(0xfee0_0100));
        assert_eq!(c.acknowledge(), Some(0x09));
        assert_eq!(c.read_msr(0x10), None);
        assert!(!c.write_msr(0x10, 0));
    }

    #[test]
    fn apic_vector_first_then_the_pic() {
        let mut c = InterruptControllers::with_pic(PicPair::bios_initialised());
        c.pic.master.imr = 0xef; // IRQ 4 on the 8259A too
        c.lapic_write(0, 0xf0, 0x1ff);
        route(&mut c, 4, 0x34);
        c.set_irq(4, true);
        assert_eq!(c.acknowledge(), Some(0x34));
        assert_eq!(c.acknowledge(), Some(0x0c), "then the 8259A's through LINT0");
        assert_eq!(c.acknowledge(), None);
    }

    #[test]
    fn level_eoi_reaches_the_ioapic() {
        let mut c = InterruptControllers::default();
        c.lapic_write(0, 0xf0, 0x1ff);
        c.lapic_write(0, 0x350, LVT_MASKED);
        route(&mut c, 14, 0x2e | REDIR_LEVEL as u32);
        c.set_irq(14, true);
        assert_eq!(c.acknowledge(), Some(0x2e));
        assert_eq!(c.acknowledge(), None);
        // EOI with the line still up: delivered again.
        c.lapic_write(0, 0xb0, 0);
        assert_eq!(c.acknowledge(), Some(0x2e));
        c.set_irq(14, false);
        c.lapic_write(0, 0xb0, 0);
        assert_eq!(c.acknowledge(), None);
        // IRQ 0 arrives at pin 2.
        route(&mut c, 2, 0x20);
        c.set_irq(0, true);
        assert_eq!(c.acknowledge(), Some(0x20));
    }
}
