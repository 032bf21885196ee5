//! The test device QEMU adds with `-device pc-testdev`, which kvm-unit-tests' x86 runner
//! always asks for: a data port and a window of plain memory on the MMIO side of the bus,
//! so a test can make instructions take the emulated (device) path for their memory
//! operands and check the results.
//!
//! | where | what |
//! |---|---|
//! | ports 0xE0–0xE3 | one 32-bit data register: a write of any width stores the value written, a read returns the low bytes of the last value stored |
//! | ports 0x2000–0x2017 | interrupt lines: a write of v to 0x2000 + n raises ISA line n (v ≠ 0) or lowers it (v = 0), whatever the access width; lines 16–23 have nothing on them here; reads return 0 |
//! | 0xFF000000–0xFF00FFFF | 64 KiB that reads back what was written, at any width and alignment |
//!
//! popek attaches it on request only (`popek run --testdev`), as QEMU does: without it
//! those addresses are empty (ports read all ones, the window reads all ones and drops
//! writes), like every other hole in the PC's map.

#![allow(clippy::cast_possible_truncation, reason = "port and window widths are at most 32 bits")]

use popek_memory::{AccessSize, PhysAddr, Port};

use crate::bus::{DeviceContext, MmioDevice, PortDevice};

/// The data register at 0xE0.
#[derive(Clone, Debug, Default)]
pub struct TestdevPort {
    data: u32,
}

impl TestdevPort {
    /// Ports: (base, count).
    pub const PORTS: (u16, u16) = (0xe0, 4);
}

impl PortDevice for TestdevPort {
    fn name(&self) -> &'static str {
        "pc-testdev"
    }

    fn read(&mut self, _: &mut DeviceContext<'_>, _: Port, _: u16, size: AccessSize) -> u32 {
        self.data & mask(size)
    }

    fn write(&mut self, _: &mut DeviceContext<'_>, _: Port, _: u16, size: AccessSize, value: u32) {
        self.data = value & mask(size);
    }

    /// One register as wide as the access, not four byte registers.
    fn byte_wide(&self) -> bool {
        false
    }
}

/// The interrupt-line ports at 0x2000: one per ISA line.
#[derive(Clone, Debug, Default)]
pub struct TestdevIrq;

impl TestdevIrq {
    /// Ports: (base, count).
    pub const PORTS: (u16, u16) = (0x2000, 24);
}

impl PortDevice for TestdevIrq {
    fn name(&self) -> &'static str {
        "pc-testdev irq"
    }

    fn read(&mut self, _: &mut DeviceContext<'_>, _: Port, _: u16, _: AccessSize) -> u32 {
        0
    }

    fn write(&mut self, ctx: &mut DeviceContext<'_>, _: Port, offset: u16, _: AccessSize, value: u32) {
        if let Ok(line @ 0..=15) = u8::try_from(offset) {
            ctx.set_irq(line, value != 0);
        }
    }

    /// A wide write names one line (its first port), not four.
    fn byte_wide(&self) -> bool {
        false
    }
}

/// The memory window at 0xFF000000.
#[derive(Clone, Debug)]
pub struct TestdevMemory {
    bytes: Vec<u8>,
}

impl TestdevMemory {
    /// Where the window starts.
    pub const BASE: PhysAddr = PhysAddr(0xff00_0000);
    /// Its length in bytes.
    pub const LEN: u32 = 0x1_0000;
}

impl Default for TestdevMemory {
    /// The window, all zero.
    fn default() -> Self {
        TestdevMemory { bytes: vec![0; Self::LEN as usize] }
    }
}

impl MmioDevice for TestdevMemory {
    fn name(&self) -> &'static str {
        "pc-testdev memory"
    }

    /// Little-endian bytes from `offset`; a byte past the window's end reads all ones
    /// (the bus does not split an access that straddles the end).
    fn read(&mut self, _: &mut DeviceContext<'_>, _: PhysAddr, offset: u32, size: AccessSize) -> u32 {
        (0..width(size)).rev().fold(0, |v, i| {
            let b = self.bytes.get(offset as usize + i).copied().unwrap_or(0xff);
            (v << 8) | u32::from(b)
        })
    }

    /// Stores the low `size` bytes little-endian; bytes past the window's end are dropped.
    fn write(&mut self, _: &mut DeviceContext<'_>, _: PhysAddr, offset: u32, size: AccessSize, value: u32) {
        for i in 0..width(size) {
            if let Some(b) = self.bytes.get_mut(offset as usize + i) {
                *b = (value >> (8 * i)) as u8;
            }
        }
    }
}

fn width(size: AccessSize) -> usize {
    match size {
        AccessSize::Byte => 1,
        AccessSize::Word => 2,
        AccessSize::Dword => 4,
    }
}

fn mask(size: AccessSize) -> u32 {
    match size {
        AccessSize::Byte => 0xff,
        AccessSize::Word => 0xffff,
        AccessSize::Dword => u32::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;

    #[test]
    fn data_port_keeps_the_last_value_at_its_width() {
        let mut h = Harness::default();
        let mut d = TestdevPort::default();
        d.write(&mut h.ctx(), Port(0xe0), 0, AccessSize::Dword, 0x1234_5678);
        assert_eq!(d.read(&mut h.ctx(), Port(0xe0), 0, AccessSize::Dword), 0x1234_5678);
        assert_eq!(d.read(&mut h.ctx(), Port(0xe0), 0, AccessSize::Byte), 0x78);
        d.write(&mut h.ctx(), Port(0xe0), 0, AccessSize::Byte, 0xab);
        assert_eq!(d.read(&mut h.ctx(), Port(0xe0), 0, AccessSize::Dword), 0xab, "a byte write replaces the value");
    }

    #[test]
    fn irq_ports_drive_one_isa_line_each() {
        let mut h = Harness::default();
        let mut d = TestdevIrq;
        d.write(&mut h.ctx(), Port(0x2000), 11, AccessSize::Dword, 1);
        assert!(h.irq.level[11]);
        assert!(!h.irq.level[12], "a dword write names one line");
        d.write(&mut h.ctx(), Port(0x2000), 11, AccessSize::Byte, 0);
        assert!(!h.irq.level[11]);
        assert_eq!(h.irq.rising[11], 1);
        d.write(&mut h.ctx(), Port(0x2000), 20, AccessSize::Byte, 1); // no line there: nothing
        assert_eq!(d.read(&mut h.ctx(), Port(0x2000), 11, AccessSize::Byte), 0);
    }

    #[test]
    fn window_reads_back_what_was_written_at_any_width() {
        let mut h = Harness::default();
        let mut m = TestdevMemory::default();
        let base = TestdevMemory::BASE;
        assert_eq!(m.read(&mut h.ctx(), base, 0, AccessSize::Dword), 0);
        m.write(&mut h.ctx(), base, 0x101, AccessSize::Dword, 0x4433_2211);
        assert_eq!(m.read(&mut h.ctx(), base, 0x101, AccessSize::Byte), 0x11);
        assert_eq!(m.read(&mut h.ctx(), base, 0x102, AccessSize::Word), 0x3322);
        assert_eq!(m.read(&mut h.ctx(), base, 0x100, AccessSize::Dword), 0x3322_1100);
        // The last bytes: what lies past the end reads all ones and is not stored.
        m.write(&mut h.ctx(), base, 0xfffe, AccessSize::Dword, 0xaabb_ccdd);
        assert_eq!(m.read(&mut h.ctx(), base, 0xfffe, AccessSize::Dword), 0xffff_ccdd);
    }
}
