//! The PC's x87 error logic: FERR# → IRQ 13, port 0xF0 → IGNNE# (SDM Vol. 1 Appendix D,
//! "Guidelines for Writing x87 FPU Exception Handlers", D.2.1.2 and Figure D-1, the
//! external hardware Intel recommends for the MS-DOS compatible reporting that a CPU uses
//! while CR0.NE = 0; PC chipsets such as the PIIX build it in).
//!
//! ```text
//!   CPU FERR# ──rising──► IRQ 13 latched (slave 8259A IR5) ─┐
//!   OUT 0xF0 (any value) ───────► IRQ 13 cleared ◄─────────┘
//!                         └─ FERR# asserted? ─► IGNNE# asserted, until FERR# goes away
//! ```
//!
//! An x87 error handler on IRQ 13 writes port 0xF0 first: the line drops, and IGNNE# lets
//! it run waiting x87 instructions (FSTSW, FSAVE…) though the error is still pending. When
//! it clears the error (FNCLEX, FNINIT, a restored status without it), FERR# goes away and
//! takes IGNNE# with it, so the next error is reported again ("if the handler clears the
//! x87 FPU exception condition before the 0F0H access, IGNNE# does not get activated",
//! D.2.1.2). Reads of the port return all ones, as on QEMU. The device never sees the CPU:
//! the bus hands it the FERR# level ([`PortDevice::ferr_changed`]) and reports its IGNNE#
//! level back ([`PortDevice::drives_ignne`]).

use popek_memory::{AccessSize, Port};

use crate::bus::{DeviceContext, PortDevice};

/// The ISA line FERR# is wired to.
pub const IRQ: u8 = 13;

/// The FERR#/IGNNE# latch at port 0xF0.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FpuErrorLatch {
    /// The CPU's FERR# level, as last reported.
    ferr: bool,
    /// IRQ 13, as driven.
    irq: bool,
    /// IGNNE#, as driven.
    ignne: bool,
}

impl FpuErrorLatch {
    /// Ports: (base, count).
    pub const PORTS: (u16, u16) = (0xf0, 1);

    /// True while IRQ 13 is driven.
    pub fn irq13(&self) -> bool {
        self.irq
    }
}

impl PortDevice for FpuErrorLatch {
    fn name(&self) -> &'static str {
        "fpu-error"
    }
    fn read(&mut self, _: &mut DeviceContext<'_>, _: Port, _: u16, size: AccessSize) -> u32 {
        size.ones()
    }
    fn write(&mut self, ctx: &mut DeviceContext<'_>, _: Port, _: u16, _: AccessSize, _: u32) {
        if self.irq {
            self.irq = false;
            ctx.set_irq(IRQ, false);
        }
        self.ignne = self.ferr;
    }
    fn ferr_changed(&mut self, ctx: &mut DeviceContext<'_>, asserted: bool) {
        if asserted && !self.ferr && !self.irq {
            self.irq = true;
            ctx.set_irq(IRQ, true);
        }
        if !asserted {
            self.ignne = false;
        }
        self.ferr = asserted;
    }
    fn drives_ignne(&self) -> bool {
        self.ignne
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;

    fn out_f0(l: &mut FpuErrorLatch, h: &mut Harness) {
        l.write(&mut h.ctx(), Port(0xf0), 0, AccessSize::Byte, 0);
    }

    /// The handler's sequence: FERR# raises IRQ 13; the OUT to 0xF0 drops it and asserts
    /// IGNNE#; FNCLEX drops FERR# and with it IGNNE#; the next error is a new edge.
    #[test]
    fn error_irq_out_f0_clear() {
        let (mut l, mut h) = (FpuErrorLatch::default(), Harness::default());
        l.ferr_changed(&mut h.ctx(), true);
        assert_eq!((h.irq.level[13], h.irq.rising[13], l.drives_ignne()), (true, 1, false));
        out_f0(&mut l, &mut h);
        assert_eq!((h.irq.level[13], l.drives_ignne()), (false, true));
        l.ferr_changed(&mut h.ctx(), false);
        assert!(!l.drives_ignne(), "IGNNE# follows FERR# away");
        l.ferr_changed(&mut h.ctx(), true);
        assert_eq!((h.irq.level[13], h.irq.rising[13]), (true, 2), "a second error, a second edge");
    }

    /// A handler that clears the error before the OUT leaves IGNNE# inactive.
    #[test]
    fn clearing_first_never_asserts_ignne() {
        let (mut l, mut h) = (FpuErrorLatch::default(), Harness::default());
        l.ferr_changed(&mut h.ctx(), true);
        l.ferr_changed(&mut h.ctx(), false);
        assert!(h.irq.level[13], "IRQ 13 stays latched until the OUT");
        out_f0(&mut l, &mut h);
        assert_eq!((h.irq.level[13], l.drives_ignne()), (false, false));
    }

    /// Without an error the port does nothing but read all ones.
    #[test]
    fn idle_port() {
        let (mut l, mut h) = (FpuErrorLatch::default(), Harness::default());
        out_f0(&mut l, &mut h);
        assert_eq!((h.irq.rising[13], l.drives_ignne()), (0, false));
        assert_eq!(l.read(&mut h.ctx(), Port(0xf0), 0, AccessSize::Byte), 0xff);
    }
}
