//! The I/O APIC at 0xFEC00000 (an 82093AA-style part with 24 pins, version 0x11; ID 0
//! at reset, as QEMU's): it turns interrupt lines into messages to the local APIC.
//! (QEMU's default version is 0x20, which adds a directed-EOI register at offset 0x40;
//! with version 0x11 kernels use the local APIC's EOI broadcast, which popek has.)
//!
//! Two registers are mapped: IOREGSEL at offset 0x00 selects an indirect register,
//! IOWIN at offset 0x10 reads or writes it (32 bits). Indirect registers:
//!
//! | index | register |
//! |---|---|
//! | 0x00 | ID (bits 24–27 writable) |
//! | 0x01 | version: 0x0017_0011 (max redirection entry 23, version 0x11), read-only |
//! | 0x02 | arbitration ID (the ID), read-only |
//! | 0x10 + 2n, 0x11 + 2n | redirection entry n (n = 0–23), low and high half |
//!
//! Other indices read 0 and ignore writes. A redirection entry holds the vector (bits
//! 0–7), the delivery mode (8–10: fixed, lowest priority — the same as fixed with one
//! CPU —, and ExtINT; SMI, NMI and INIT are not delivered), the destination mode (11:
//! physical or logical), delivery status (12, reads idle), polarity (13: 1 = active
//! low), remote IRR (14, read-only), trigger mode (15: 1 = level), mask (16) and the
//! destination (bits 56–63). Every entry is masked at reset.
//!
//! **Edge-triggered** entries send a message when their pin becomes asserted while
//! unmasked (an edge on a masked pin is lost). **Level-triggered** entries send one
//! while the pin is asserted and remote IRR is clear, and set remote IRR when the local
//! APIC accepts it; the local APIC's EOI of that vector (its TMR bit was set) clears
//! remote IRR ([`IoApic::eoi`]) and, if the pin is still asserted, the message goes
//! out again.
//!
//! **Wiring** (the bus's [`crate::IrqSink`] drives both the 8259A pair and this):
//!
//! | ISA IRQ | device | I/O APIC pin |
//! |---|---|---|
//! | – | 8259A INTR (ExtINT) | 0 |
//! | 0 | PIT channel 0 | 2 (interrupt source override, as on PCs and QEMU) |
//! | n = 1, 3–15 | keyboard 1, COM1 4, RTC 8, mouse 12, IDE 14… | n |
//! | – | nothing | 16–23 |
//!
//! Pin 0 is not a line the devices drive: an unmasked ExtINT entry on pin 0 lets the
//! 8259A's INTR through to the CPU (like LINT0 in ExtINT mode), sampled when the CPU
//! looks for an interrupt.

/// Physical base address of the I/O APIC's registers.
pub const IOAPIC_BASE: u32 = 0xfec0_0000;
/// Size of the I/O APIC's register window.
pub const IOAPIC_LEN: u32 = 0x1000;
/// Number of redirection entries (pins).
pub const IOAPIC_PINS: usize = 24;
/// The version register: max redirection entry 23, version 0x11.
pub const IOAPIC_VERSION: u32 = 0x0017_0011;

/// Redirection entry: mask bit.
pub const REDIR_MASKED: u64 = 1 << 16;
/// Redirection entry: level-triggered.
pub const REDIR_LEVEL: u64 = 1 << 15;
/// Redirection entry: remote IRR (read-only).
pub const REDIR_REMOTE_IRR: u64 = 1 << 14;
/// Redirection entry: active low.
pub const REDIR_ACTIVE_LOW: u64 = 1 << 13;
/// Redirection entry: logical destination mode.
pub const REDIR_LOGICAL: u64 = 1 << 11;
/// Bits of a redirection entry software may write.
const REDIR_WRITABLE: u64 = 0xff00_0000_0001_afff;

/// The I/O APIC pin an ISA IRQ line drives: IRQ 0 → pin 2, IRQ n → pin n.
pub fn isa_irq_to_pin(irq: u8) -> u8 {
    if irq == 0 { 2 } else { irq }
}

/// Where the I/O APIC sends its messages: the local APIC(s) on the APIC bus.
pub trait ApicBus {
    /// A fixed-mode interrupt for `dest` (an APIC ID, or a logical destination);
    /// true if some local APIC accepted it.
    fn deliver_fixed(&mut self, dest: u8, logical: bool, vector: u8, level: bool) -> bool;
}

impl ApicBus for crate::lapic::Lapic {
    fn deliver_fixed(&mut self, dest: u8, logical: bool, vector: u8, level: bool) -> bool {
        self.matches_destination(dest, logical) && self.accept(vector, level)
    }
}

/// The I/O APIC's state. Plain data: clone it to snapshot it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoApic {
    ioregsel: u8,
    id: u32,
    redir: [u64; IOAPIC_PINS],
    /// The level of each input wire (bit n = pin n), before polarity.
    wires: u32,
}

impl Default for IoApic {
    fn default() -> Self {
        Self::new()
    }
}

impl IoApic {
    /// The reset state: ID 0, every entry masked, edge-triggered, active high.
    pub fn new() -> Self {
        IoApic { ioregsel: 0, id: 0, redir: [REDIR_MASKED; IOAPIC_PINS], wires: 0 }
    }

    /// Redirection entry `pin`.
    pub fn entry(&self, pin: usize) -> u64 {
        self.redir[pin]
    }

    fn asserted(&self, pin: usize) -> bool {
        let wire = self.wires & (1 << pin) != 0;
        wire != (self.redir[pin] & REDIR_ACTIVE_LOW != 0)
    }

    /// True if pin 0 is an unmasked ExtINT entry: the 8259A's INTR reaches the CPU
    /// through the I/O APIC.
    pub fn passes_extint(&self) -> bool {
        let e = self.redir[0];
        e & REDIR_MASKED == 0 && (e >> 8) & 7 == 7
    }

    /// Sends pin `pin`'s message if its entry says so.
    fn service(&mut self, pin: usize, apic: &mut dyn ApicBus) {
        let e = self.redir[pin];
        if e & REDIR_MASKED != 0 || !matches!((e >> 8) & 7, 0 | 1) {
            return; // masked, or not a fixed / lowest-priority entry
        }
        let level = e & REDIR_LEVEL != 0;
        if level && e & REDIR_REMOTE_IRR != 0 {
            return; // the last one has not been EOIed yet
        }
        let [vector, ..] = e.to_le_bytes();
        let dest = e.to_le_bytes()[7];
        if apic.deliver_fixed(dest, e & REDIR_LOGICAL != 0, vector, level) && level {
            self.redir[pin] |= REDIR_REMOTE_IRR;
        }
    }

    /// Drives input `pin` to `level` (the wire's level; polarity is applied here).
    pub fn set_pin(&mut self, pin: u8, level: bool, apic: &mut dyn ApicBus) {
        let p = usize::from(pin);
        if p >= IOAPIC_PINS {
            return;
        }
        let was = self.asserted(p);
        if level {
            self.wires |= 1 << p;
        } else {
            self.wires &= !(1 << p);
        }
        let now = self.asserted(p);
        let level_triggered = self.redir[p] & REDIR_LEVEL != 0;
        if now && (level_triggered || !was) {
            self.service(p, apic);
        }
    }

    /// The local APIC ended a level-triggered `vector` (EOI broadcast): clear remote
    /// IRR of the entries with that vector and re-send where the pin is still asserted.
    pub fn eoi(&mut self, vector: u8, apic: &mut dyn ApicBus) {
        for p in 0..IOAPIC_PINS {
            let e = self.redir[p];
            if e & REDIR_REMOTE_IRR != 0 && e.to_le_bytes()[0] == vector {
                self.redir[p] &= !REDIR_REMOTE_IRR;
                if self.asserted(p) && e & REDIR_LEVEL != 0 {
                    self.service(p, apic);
                }
            }
        }
    }

    /// Reads the register at `offset` in the window (the bus masks to the access size).
    pub fn read(&self, offset: u32) -> u32 {
        match offset {
            0x00..=0x03 => u32::from(self.ioregsel) >> (8 * offset),
            0x10..=0x13 => self.read_indirect() >> (8 * (offset - 0x10)),
            _ => 0,
        }
    }

    fn read_indirect(&self) -> u32 {
        match self.ioregsel {
            0x00 | 0x02 => self.id,
            0x01 => IOAPIC_VERSION,
            r @ 0x10..=0x3f => {
                let e = self.redir[usize::from((r - 0x10) >> 1)];
                let [lo0, lo1, lo2, lo3, hi0, hi1, hi2, hi3] = e.to_le_bytes();
                if r & 1 == 0 {
                    u32::from_le_bytes([lo0, lo1, lo2, lo3])
                } else {
                    u32::from_le_bytes([hi0, hi1, hi2, hi3])
                }
            }
            _ => 0,
        }
    }

    /// Writes the register at `offset` in the window (IOREGSEL takes the low byte of
    /// any write at offset 0; IOWIN takes 32 bits at offset 0x10).
    pub fn write(&mut self, offset: u32, value: u32, apic: &mut dyn ApicBus) {
        match offset {
            0x00 => self.ioregsel = value.to_le_bytes()[0],
            0x10 => self.write_indirect(value, apic),
            _ => {}
        }
    }

    fn write_indirect(&mut self, value: u32, apic: &mut dyn ApicBus) {
        match self.ioregsel {
            0x00 => self.id = value & 0x0f00_0000,
            r @ 0x10..=0x3f => {
                let p = usize::from((r - 0x10) >> 1);
                let old = self.redir[p];
                let new = if r & 1 == 0 {
                    (old & !0xffff_ffff) | u64::from(value)
                } else {
                    (old & 0xffff_ffff) | (u64::from(value) << 32)
                };
                let mut e = (new & REDIR_WRITABLE) | (old & REDIR_REMOTE_IRR);
                if e & REDIR_LEVEL == 0 {
                    e &= !REDIR_REMOTE_IRR; // remote IRR has no meaning for edge entries
                }
                self.redir[p] = e;
                // An unmasked level-triggered entry whose pin is asserted sends at once.
                if e & REDIR_LEVEL != 0 && self.asserted(p) {
                    self.service(p, apic);
                }
            }
            _ => {} // version and arbitration are read-only
        }
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, reason = "test values split into halves")]
mod tests {
    use super::*;
    use crate::lapic::Lapic;

    /// Records messages; accepts them unless `refuse`.
    #[derive(Default)]
    struct Fake {
        sent: Vec<(u8, bool, u8, bool)>,
        refuse: bool,
    }

    impl ApicBus for Fake {
        fn deliver_fixed(&mut self, dest: u8, logical: bool, vector: u8, level: bool) -> bool {
            self.sent.push((dest, logical, vector, level));
            !self.refuse
        }
    }

    fn program(io: &mut IoApic, pin: u8, entry: u64, apic: &mut dyn ApicBus) {
        io.write(0, u32::from(0x11 + 2 * pin), apic);
        io.write(0x10, (entry >> 32) as u32, apic);
        io.write(0, u32::from(0x10 + 2 * pin), apic);
        io.write(0x10, entry as u32, apic);
    }

    fn read_entry(io: &mut IoApic, pin: u8, apic: &mut dyn ApicBus) -> u64 {
        io.write(0, u32::from(0x10 + 2 * pin), apic);
        let lo = io.read(0x10);
        io.write(0, u32::from(0x11 + 2 * pin), apic);
        u64::from(lo) | u64::from(io.read(0x10)) << 32
    }

    #[test]
    fn id_version_and_reset_entries() {
        let (mut io, mut f) = (IoApic::new(), Fake::default());
        io.write(0, 1, &mut f);
        assert_eq!(io.read(0x10), 0x0017_0011);
        assert_eq!(io.read(0x00), 1);
        io.write(0, 0, &mut f);
        io.write(0x10, 0xffff_ffff, &mut f);
        assert_eq!(io.read(0x10), 0x0f00_0000);
        io.write(0, 2, &mut f);
        assert_eq!(io.read(0x10), 0x0f00_0000, "arbitration ID");
        io.write(0, 1, &mut f);
        io.write(0x10, 0, &mut f);
        assert_eq!(io.read(0x10), IOAPIC_VERSION, "read-only");
        for pin in 0..24 {
            assert_eq!(read_entry(&mut io, pin, &mut f), REDIR_MASKED);
        }
        io.write(0, 0x40, &mut f);
        assert_eq!(io.read(0x10), 0, "no such register");
        assert_eq!(io.read(0x20), 0);
        // Read-only bits are not written.
        program(&mut io, 3, 0xff00_0000_0001_ffff, &mut f);
        assert_eq!(read_entry(&mut io, 3, &mut f), 0xff00_0000_0001_afff);
    }

    #[test]
    fn edge_entries_send_on_rising_edges_only_when_unmasked() {
        let (mut io, mut f) = (IoApic::new(), Fake::default());
        io.set_pin(4, true, &mut f);
        io.set_pin(4, false, &mut f);
        assert!(f.sent.is_empty(), "masked: the edge is lost");
        program(&mut io, 4, 0x24, &mut f);
        assert!(f.sent.is_empty(), "unmasking does not replay an edge");
        io.set_pin(4, true, &mut f);
        io.set_pin(4, true, &mut f);
        assert_eq!(f.sent, vec![(0, false, 0x24, false)]);
        io.set_pin(4, false, &mut f);
        io.set_pin(4, true, &mut f);
        assert_eq!(f.sent.len(), 2);
        assert_eq!(read_entry(&mut io, 4, &mut f) & REDIR_REMOTE_IRR, 0);
        // Active low: the falling edge of the wire is the assertion.
        program(&mut io, 5, 0x25 | REDIR_ACTIVE_LOW | 0x0300_0000_0000_0000 | REDIR_LOGICAL, &mut f);
        io.set_pin(5, true, &mut f);
        io.set_pin(5, false, &mut f);
        assert_eq!(f.sent[2], (3, true, 0x25, false));
    }

    #[test]
    fn level_entries_hold_remote_irr_until_eoi() {
        let (mut io, mut f) = (IoApic::new(), Fake::default());
        program(&mut io, 9, 0x29 | REDIR_LEVEL, &mut f);
        io.set_pin(9, true, &mut f);
        io.set_pin(9, true, &mut f);
        assert_eq!(f.sent, vec![(0, false, 0x29, true)]);
        assert_ne!(read_entry(&mut io, 9, &mut f) & REDIR_REMOTE_IRR, 0);
        // EOI of another vector changes nothing; of this one, re-sends (still asserted).
        io.eoi(0x30, &mut f);
        assert_eq!(f.sent.len(), 1);
        io.eoi(0x29, &mut f);
        assert_eq!(f.sent.len(), 2);
        assert_ne!(read_entry(&mut io, 9, &mut f) & REDIR_REMOTE_IRR, 0);
        io.set_pin(9, false, &mut f);
        io.eoi(0x29, &mut f);
        assert_eq!(f.sent.len(), 2);
        assert_eq!(read_entry(&mut io, 9, &mut f) & REDIR_REMOTE_IRR, 0);
        // Unmasking an asserted level entry sends at once.
        program(&mut io, 10, 0x2a | REDIR_LEVEL | REDIR_MASKED, &mut f);
        io.set_pin(10, true, &mut f);
        assert_eq!(f.sent.len(), 2);
        program(&mut io, 10, 0x2a | REDIR_LEVEL, &mut f);
        assert_eq!(f.sent.len(), 3);
        // Not accepted: remote IRR stays clear.
        f.refuse = true;
        program(&mut io, 11, 0x2b | REDIR_LEVEL, &mut f);
        io.set_pin(11, true, &mut f);
        assert_eq!(read_entry(&mut io, 11, &mut f) & REDIR_REMOTE_IRR, 0);
    }

    #[test]
    fn other_delivery_modes_and_extint() {
        let (mut io, mut f) = (IoApic::new(), Fake::default());
        program(&mut io, 1, 0x21 | 0x400, &mut f); // NMI: not delivered
        io.set_pin(1, true, &mut f);
        program(&mut io, 3, 0x23 | 0x100, &mut f); // lowest priority = fixed
        io.set_pin(3, true, &mut f);
        assert_eq!(f.sent, vec![(0, false, 0x23, false)]);
        assert!(!io.passes_extint());
        program(&mut io, 0, 0x700, &mut f);
        assert!(io.passes_extint());
        assert_eq!(isa_irq_to_pin(0), 2);
        assert_eq!(isa_irq_to_pin(4), 4);
    }

    #[test]
    fn to_a_real_local_apic() {
        let mut l = Lapic::new();
        let mut io = IoApic::new();
        program(&mut io, 14, 0x2e | REDIR_LEVEL, &mut l);
        io.set_pin(14, true, &mut l);
        assert_eq!(read_entry(&mut io, 14, &mut l) & REDIR_REMOTE_IRR, 0, "software-disabled APIC");
        l.write(0, 0xf0, 0x1ff);
        io.eoi(0x2e, &mut l);
        io.set_pin(14, false, &mut l);
        io.set_pin(14, true, &mut l);
        assert_eq!(l.inta(), 0x2e);
        assert_eq!(l.write(0, 0xb0, 0), Some(0x2e), "level: EOI broadcast");
        // Destination 1 is nobody.
        program(&mut io, 4, 0x0100_0000_0000_0000 | 0x24, &mut l);
        io.set_pin(4, true, &mut l);
        assert_eq!(l.deliverable(), None);
    }
}
