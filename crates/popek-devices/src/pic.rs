//! 8259A programmable interrupt controller, master/slave pair cascaded on IRQ 2.
//! Implements Intel 8259A datasheet (order 231468), "Programming the 8259A" (ICW1–4, OCW1–3),
//! plus the PIIX ELCR (edge/level control) at 0x4D0/0x4D1.
//!
//! Lines are driven by level ([`IrqSink::set_irq`]); in edge mode a low-to-high
//! transition latches IRR, in level mode IRR follows the line. The pair asserts
//! INTR when the highest-priority unmasked request outranks everything in
//! service; the INTA cycle ([`PicPair::inta`]) returns the vector and moves the
//! request to ISR. If the request vanished before INTA, the 8259A answers with
//! IR7 of the controller concerned (spurious IRQ 7 / 15) and sets no ISR bit.

#![allow(clippy::cast_possible_truncation, reason = "8-bit registers take the low byte of the data bus")]

use popek_memory::Port;

use crate::bus::IrqSink;

/// One 8259A.
#[derive(Debug, Clone, Default)]
pub struct Pic8259 {
    /// Interrupt request register.
    pub irr: u8,
    /// In-service register.
    pub isr: u8,
    /// Interrupt mask register (OCW1).
    pub imr: u8,
    /// Line levels as last driven (edge detection).
    last_level: u8,
    /// Edge/level control: bit set = level-triggered (ELCR or ICW1.LTIM).
    elcr: u8,
    /// Bits of `elcr` that may be written (PIIX: IRQ 0, 1, 2, 8, 13 are edge only).
    elcr_mask: u8,
    /// ICW1 bit 3: all inputs level-triggered.
    ltim: bool,
    /// Vector base (ICW2 bits 7..3).
    pub vector_base: u8,
    /// ICW3 as written (slave bitmap on the master, cascade id on the slave).
    pub icw3: u8,
    /// IR with the highest priority (rotated by OCW2 R / set priority).
    priority_add: u8,
    /// Which ICW comes next (0 = initialised, 2/3/4 = expecting that word).
    init_state: u8,
    /// ICW1 said ICW4 follows.
    expect_icw4: bool,
    /// ICW1 SNGL (no ICW3).
    single: bool,
    /// ICW4 AEOI.
    pub auto_eoi: bool,
    /// Rotate in automatic EOI mode (OCW2 100/000).
    rotate_on_auto_eoi: bool,
    /// ICW4 SFNM.
    special_fully_nested: bool,
    /// OCW3 special mask mode.
    special_mask: bool,
    /// OCW3 RR/RIS: reading the command port returns ISR instead of IRR.
    read_isr: bool,
    /// OCW3 P: the next command-port read is a poll.
    poll: bool,
    /// True for the master (SFNM and cascade apply there).
    is_master: bool,
}

impl Pic8259 {
    fn new(is_master: bool, elcr_mask: u8) -> Self {
        Pic8259 { is_master, elcr_mask, ..Default::default() }
    }

    fn level_triggered(&self) -> u8 {
        if self.ltim { 0xff } else { self.elcr }
    }

    /// Priority (0 = highest) of the best request in `mask`, 8 if none.
    fn priority(&self, mask: u8) -> u8 {
        if mask == 0 {
            return 8;
        }
        (0..8).find(|p| mask & (1 << ((p + self.priority_add) & 7)) != 0).unwrap_or(8)
    }

    /// The IR this controller would present at INTA, if any.
    fn best_request(&self) -> Option<u8> {
        let pending = self.irr & !self.imr;
        let p = self.priority(pending);
        if p == 8 {
            return None;
        }
        let mut in_service = self.isr;
        if self.special_mask {
            in_service &= !self.imr;
        }
        if self.special_fully_nested && self.is_master {
            // A slave in service does not block further slave requests.
            in_service &= !(1 << 2);
        }
        if p < self.priority(in_service) { Some((p + self.priority_add) & 7) } else { None }
    }

    fn set_line(&mut self, irq: u8, level: bool) {
        let bit = 1u8 << irq;
        if self.level_triggered() & bit != 0 {
            if level {
                self.irr |= bit;
            } else {
                self.irr &= !bit;
            }
        } else if level && self.last_level & bit == 0 {
            self.irr |= bit;
        }
        if level {
            self.last_level |= bit;
        } else {
            self.last_level &= !bit;
        }
    }

    /// INTA on this controller for request `irq`: ISR set (unless AEOI), edge IRR cleared.
    fn acknowledge(&mut self, irq: u8) {
        let bit = 1u8 << irq;
        if self.auto_eoi {
            if self.rotate_on_auto_eoi {
                self.priority_add = (irq + 1) & 7;
            }
        } else {
            self.isr |= bit;
        }
        if self.level_triggered() & bit == 0 {
            self.irr &= !bit;
        }
    }

    fn write_command(&mut self, v: u8) {
        if v & 0x10 != 0 {
            // ICW1: starts initialisation.
            self.init_state = 2;
            self.expect_icw4 = v & 0x01 != 0;
            self.single = v & 0x02 != 0;
            self.ltim = v & 0x08 != 0;
            // "The edge sense circuit is reset, which means that following
            // initialization, an interrupt request input must make a
            // low-to-high transition": a line that is high now must first go
            // low, so `last_level` is kept and edge-latched requests dropped.
            self.irr &= self.level_triggered();
            self.imr = 0;
            self.isr = 0;
            self.priority_add = 0;
            self.special_mask = false;
            self.read_isr = false;
            self.poll = false;
            self.auto_eoi = false;
            self.rotate_on_auto_eoi = false;
            self.special_fully_nested = false;
        } else if v & 0x08 != 0 {
            // OCW3.
            if v & 0x04 != 0 {
                self.poll = true;
            }
            if v & 0x02 != 0 {
                self.read_isr = v & 0x01 != 0;
            }
            if v & 0x40 != 0 {
                self.special_mask = v & 0x20 != 0;
            }
        } else {
            // OCW2: R SL EOI in bits 7..5, level in 2..0.
            let level = v & 7;
            match v >> 5 {
                0b000 => self.rotate_on_auto_eoi = false,
                0b100 => self.rotate_on_auto_eoi = true,
                0b001 | 0b101 => {
                    // Non-specific EOI: clear the highest-priority ISR bit.
                    let p = self.priority(self.isr);
                    if p != 8 {
                        let irq = (p + self.priority_add) & 7;
                        self.isr &= !(1 << irq);
                        if v & 0x80 != 0 {
                            self.priority_add = (irq + 1) & 7;
                        }
                    }
                }
                0b011 => self.isr &= !(1 << level),
                0b111 => {
                    self.isr &= !(1 << level);
                    self.priority_add = (level + 1) & 7;
                }
                0b110 => self.priority_add = (level + 1) & 7,
                _ => {} // 010: no operation.
            }
        }
    }

    fn write_data(&mut self, v: u8) {
        match self.init_state {
            2 => {
                self.vector_base = v & 0xf8;
                self.init_state = if !self.single {
                    3
                } else if self.expect_icw4 {
                    4
                } else {
                    0
                };
            }
            3 => {
                self.icw3 = v;
                self.init_state = if self.expect_icw4 { 4 } else { 0 };
            }
            4 => {
                // µPM (bit 0) is assumed: the 8080 mode makes no sense on a PC.
                self.auto_eoi = v & 0x02 != 0;
                self.special_fully_nested = v & 0x10 != 0;
                self.init_state = 0;
            }
            _ => self.imr = v,
        }
    }

    fn read_command(&mut self) -> u8 {
        if self.poll {
            // Poll: acts as an INTA (sets ISR); bit 7 = request, bits 2..0 = level.
            self.poll = false;
            return match self.best_request() {
                Some(irq) => {
                    self.acknowledge(irq);
                    0x80 | irq
                }
                None => 0,
            };
        }
        if self.read_isr { self.isr } else { self.irr }
    }
}

/// The PC's cascaded pair: master at 0x20/0x21, slave at 0xA0/0xA1 on master
/// IR2, ELCR at 0x4D0/0x4D1.
#[derive(Debug, Clone)]
pub struct PicPair {
    /// The master (IRQ 0–7).
    pub master: Pic8259,
    /// The slave (IRQ 8–15).
    pub slave: Pic8259,
}

impl Default for PicPair {
    fn default() -> Self {
        Self::new()
    }
}

impl PicPair {
    /// Ports answered by the pair: (base, count).
    pub const PORT_RANGES: [(u16, u16); 3] = [(0x20, 2), (0xa0, 2), (0x4d0, 2)];

    /// Power-on state: uninitialised, nothing masked, vector base 0.
    pub fn new() -> Self {
        PicPair { master: Pic8259::new(true, 0xf8), slave: Pic8259::new(false, 0xde) }
    }

    /// The state SeaBIOS leaves before it loads a `-kernel` (its `pic_reset`):
    /// ICW1 0x11, vectors 0x08 / 0x70, cascade on IR2, 8086 mode, everything
    /// masked except the cascade line.
    pub fn bios_initialised() -> Self {
        let mut p = Self::new();
        for (port, v) in [(0x20, 0x11), (0xa0, 0x11), (0x21, 0x08), (0xa1, 0x70), (0x21, 0x04), (0xa1, 0x02)]
            .into_iter()
            .chain([(0x21, 0x01), (0xa1, 0x01), (0x21, 0xfb), (0xa1, 0xff)])
        {
            p.write_port(Port(port & !1), port & 1, v);
        }
        p
    }

    /// The slave's INT output drives master IR2.
    fn cascade(&mut self) {
        let slave_int = self.slave.best_request().is_some();
        self.master.set_line(2, slave_int);
    }

    /// Port write; `base` is the range base (0x20, 0xA0 or 0x4D0).
    pub fn write_port(&mut self, base: Port, offset: u16, value: u8) {
        match (base.0, offset) {
            (0x20, 0) => self.master.write_command(value),
            (0x20, _) => self.master.write_data(value),
            (0xa0, 0) => self.slave.write_command(value),
            (0xa0, _) => self.slave.write_data(value),
            (_, 0) => self.master.elcr = value & self.master.elcr_mask,
            (_, _) => self.slave.elcr = value & self.slave.elcr_mask,
        }
        self.cascade();
    }

    /// Port read; `base` is the range base (0x20, 0xA0 or 0x4D0).
    pub fn read_port(&mut self, base: Port, offset: u16) -> u8 {
        let v = match (base.0, offset) {
            (0x20, 0) => self.master.read_command(),
            (0x20, _) => self.master.imr,
            (0xa0, 0) => self.slave.read_command(),
            (0xa0, _) => self.slave.imr,
            (_, 0) => self.master.elcr,
            (_, _) => self.slave.elcr,
        };
        // A poll acknowledges like INTA; keep IR2 in step with the slave.
        self.cascade();
        v
    }

    /// True if INTR is asserted (the master has a request to present).
    pub fn intr(&self) -> bool {
        self.master.best_request().is_some()
    }

    /// The vector the next INTA would return, without side effects.
    pub fn pending_vector(&self) -> Option<u8> {
        let irq = self.master.best_request()?;
        if irq == 2 {
            let slave_irq = self.slave.best_request().unwrap_or(7);
            Some(self.slave.vector_base + slave_irq)
        } else {
            Some(self.master.vector_base + irq)
        }
    }

    /// The INTA cycle. Returns the vector; a request that vanished gives the
    /// spurious IR7 of the controller concerned, with no ISR bit set.
    pub fn inta(&mut self) -> u8 {
        let vector = match self.master.best_request() {
            Some(2) => {
                self.master.acknowledge(2);
                match self.slave.best_request() {
                    Some(irq) => {
                        self.slave.acknowledge(irq);
                        self.slave.vector_base + irq
                    }
                    None => self.slave.vector_base + 7,
                }
            }
            Some(irq) => {
                self.master.acknowledge(irq);
                self.master.vector_base + irq
            }
            None => self.master.vector_base + 7,
        };
        self.cascade();
        vector
    }
}

impl IrqSink for PicPair {
    fn set_irq(&mut self, irq: u8, level: bool) {
        match irq {
            0..=7 => self.master.set_line(irq, level),
            8..=15 => self.slave.set_line(irq - 8, level),
            _ => return,
        }
        self.cascade();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(p: &mut PicPair, port: u16, v: u8) {
        let base = if port >= 0x4d0 { 0x4d0 } else { port & !1 };
        p.write_port(Port(base), port - base, v);
    }

    fn inb(p: &mut PicPair, port: u16) -> u8 {
        let base = if port >= 0x4d0 { 0x4d0 } else { port & !1 };
        p.read_port(Port(base), port - base)
    }

    /// Linux's `init_8259A(0)`: ICW1 0x11, ICW2 0x30 / 0x38, ICW3 0x04 / 0x02,
    /// ICW4 0x01, then unmask.
    fn linux_pic() -> PicPair {
        let mut p = PicPair::new();
        for (port, v) in [
            (0x21, 0xff),
            (0xa1, 0xff),
            (0x20, 0x11),
            (0x21, 0x30),
            (0x21, 0x04),
            (0x21, 0x01),
            (0xa0, 0x11),
            (0xa1, 0x38),
            (0xa1, 0x02),
            (0xa1, 0x01),
            (0x21, 0x00),
            (0xa1, 0x00),
        ] {
            out(&mut p, port, v);
        }
        p
    }

    fn pulse(p: &mut PicPair, irq: u8) {
        p.set_irq(irq, true);
        p.set_irq(irq, false);
    }

    #[test]
    fn vectors_priority_and_nonspecific_eoi() {
        let mut p = linux_pic();
        assert_eq!(p.pending_vector(), None);
        pulse(&mut p, 8);
        pulse(&mut p, 0);
        // IRQ0 outranks IR2 (the slave's IRQ 8).
        assert_eq!(p.pending_vector(), Some(0x30));
        assert_eq!(p.inta(), 0x30);
        assert_eq!(p.master.isr, 0x01);
        // IRQ 8 (via IR2) has lower priority than IRQ 0 in service: no INTR.
        assert!(!p.intr());
        out(&mut p, 0x20, 0x20); // non-specific EOI
        assert_eq!(p.master.isr, 0);
        assert_eq!(p.inta(), 0x38);
        assert_eq!((p.master.isr, p.slave.isr), (0x04, 0x01));
        // Read ISR via OCW3 (RR=1, RIS=1), then IRR again (RR=1, RIS=0).
        out(&mut p, 0xa0, 0x0b);
        assert_eq!(inb(&mut p, 0xa0), 0x01);
        out(&mut p, 0xa0, 0x0a);
        assert_eq!(inb(&mut p, 0xa0), 0x00);
        out(&mut p, 0xa0, 0x20);
        out(&mut p, 0x20, 0x20);
        assert_eq!((p.master.isr, p.slave.isr), (0, 0));
    }

    #[test]
    fn higher_priority_nests_lower_waits() {
        let mut p = linux_pic();
        pulse(&mut p, 3);
        assert_eq!(p.inta(), 0x33);
        pulse(&mut p, 5);
        assert!(!p.intr(), "IRQ5 must wait for IRQ3's EOI");
        pulse(&mut p, 1);
        assert_eq!(p.inta(), 0x31, "IRQ1 nests over IRQ3");
        assert_eq!(p.master.isr, 0b0000_1010);
        // Specific EOI for IRQ 3 (OCW2 011, level 3) leaves IRQ 1 in service.
        out(&mut p, 0x20, 0x63);
        assert_eq!(p.master.isr, 0b0000_0010);
        assert!(!p.intr());
        out(&mut p, 0x20, 0x20);
        assert_eq!(p.inta(), 0x35);
    }

    #[test]
    fn masking_holds_requests_in_irr() {
        let mut p = linux_pic();
        out(&mut p, 0x21, 0x01);
        assert_eq!(inb(&mut p, 0x21), 0x01);
        pulse(&mut p, 0);
        assert!(!p.intr());
        assert_eq!(inb(&mut p, 0x20), 0x01, "IRR read after init is the default");
        out(&mut p, 0x21, 0x00);
        assert_eq!(p.inta(), 0x30);
        // Masking the cascade line masks the whole slave.
        out(&mut p, 0x20, 0x20);
        out(&mut p, 0x21, 0x04);
        pulse(&mut p, 14);
        assert!(!p.intr());
        out(&mut p, 0x21, 0x00);
        assert_eq!(p.inta(), 0x3e);
    }

    #[test]
    fn edge_needs_a_new_rising_edge() {
        let mut p = linux_pic();
        p.set_irq(4, true);
        assert_eq!(p.inta(), 0x34);
        out(&mut p, 0x20, 0x20);
        // Line still high: no new edge, no new request.
        p.set_irq(4, true);
        assert!(!p.intr());
        p.set_irq(4, false);
        p.set_irq(4, true);
        assert_eq!(p.inta(), 0x34);
        // A new edge on the line in service waits in IRR for the EOI.
        p.set_irq(4, false);
        p.set_irq(4, true);
        assert_eq!(p.master.irr, 0x10);
        assert!(!p.intr(), "equal priority does not nest");
        out(&mut p, 0x20, 0x20);
        assert_eq!(p.inta(), 0x34);
    }

    #[test]
    fn level_mode_via_elcr_and_spurious() {
        let mut p = linux_pic();
        // IRQ 0/1/2 cannot be level on PIIX; IRQ 9/10/11 can (mask 0xde).
        out(&mut p, 0x4d0, 0xff);
        out(&mut p, 0x4d1, 0xff);
        assert_eq!((inb(&mut p, 0x4d0), inb(&mut p, 0x4d1)), (0xf8, 0xde));
        // Level: the request follows the line, even without an edge.
        p.set_irq(11, true);
        assert_eq!(p.pending_vector(), Some(0x3b));
        p.set_irq(11, false);
        // The line dropped before INTA, but the master latched the slave's INT
        // edge on IR2: INTA gives the slave's spurious IRQ 15, and only the
        // master sets an ISR bit (so the handler must EOI the master only).
        assert!(p.intr());
        assert_eq!(p.inta(), 0x3f);
        assert_eq!((p.master.isr, p.slave.isr), (0x04, 0x00));
        out(&mut p, 0x20, 0x20);
        // Level IRQ 5 (ELCR) follows its line: gone before INTA, so the INTA
        // cycle gets the master's spurious IRQ 7, with no ISR bit.
        p.set_irq(5, true);
        assert_eq!(p.pending_vector(), Some(0x35));
        p.set_irq(5, false);
        assert!(!p.intr());
        assert_eq!(p.inta(), 0x37);
        assert_eq!(p.master.isr, 0);
        // ICW1 LTIM makes every input level-triggered.
        let mut q = linux_pic();
        out(&mut q, 0x20, 0x19);
        out(&mut q, 0x21, 0x20);
        out(&mut q, 0x21, 0x04);
        out(&mut q, 0x21, 0x01);
        q.set_irq(0, true);
        assert_eq!(q.inta(), 0x20);
        out(&mut q, 0x20, 0x20);
        assert_eq!(q.pending_vector(), Some(0x20), "level still high: requests again");
    }

    #[test]
    fn auto_eoi_and_rotation() {
        let mut p = PicPair::new();
        // ICW1 single, ICW4 with AEOI.
        for (port, v) in [(0x20, 0x13), (0x21, 0x40), (0x21, 0x03)] {
            out(&mut p, port, v);
        }
        pulse(&mut p, 6);
        assert_eq!(p.inta(), 0x46);
        assert_eq!(p.master.isr, 0, "AEOI sets no ISR bit");
        // Set priority (OCW2 110, level 4): IR5 becomes highest, IR4 lowest.
        out(&mut p, 0x20, 0xc4);
        pulse(&mut p, 4);
        pulse(&mut p, 5);
        pulse(&mut p, 0);
        assert_eq!(p.inta(), 0x45);
        assert_eq!(p.inta(), 0x40);
        assert_eq!(p.inta(), 0x44);
        // Rotate on non-specific EOI (OCW2 101) in normal mode.
        let mut q = linux_pic();
        pulse(&mut q, 1);
        assert_eq!(q.inta(), 0x31);
        out(&mut q, 0x20, 0xa0);
        pulse(&mut q, 0);
        pulse(&mut q, 2 + 1);
        assert_eq!(q.inta(), 0x33, "after rotation IR2 is highest, IR1 lowest");
    }

    #[test]
    fn poll_and_bios_state() {
        let mut p = linux_pic();
        pulse(&mut p, 3);
        out(&mut p, 0x20, 0x0c); // OCW3 poll
        assert_eq!(inb(&mut p, 0x20), 0x83);
        assert_eq!(p.master.isr, 0x08);
        out(&mut p, 0x20, 0x0c);
        assert_eq!(inb(&mut p, 0x20), 0x00);
        let b = PicPair::bios_initialised();
        assert_eq!((b.master.vector_base, b.slave.vector_base), (0x08, 0x70));
        assert_eq!((b.master.imr, b.slave.imr), (0xfb, 0xff));
    }

    #[test]
    fn special_mask_mode_lets_lower_priority_in() {
        let mut p = linux_pic();
        pulse(&mut p, 2 + 1);
        assert_eq!(p.inta(), 0x33);
        out(&mut p, 0x21, 0x08); // mask IR3 (in service)
        out(&mut p, 0x20, 0x68); // OCW3: ESMM + SMM
        pulse(&mut p, 6);
        assert_eq!(p.inta(), 0x36);
        out(&mut p, 0x20, 0x48); // reset special mask
        pulse(&mut p, 7);
        assert!(!p.intr());
    }
}
