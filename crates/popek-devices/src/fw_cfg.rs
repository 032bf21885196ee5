//! QEMU's firmware configuration device, the traditional I/O interface (QEMU's
//! docs/specs/fw_cfg.rst): a 16-bit selector at port 0x510 and a byte-wide data port at
//! 0x511. Test suites written for QEMU (kvm-unit-tests among them) read the CPU count
//! and RAM size here.
//!
//! Writing the selector picks an item and rewinds its read offset; each data read returns
//! the item's next byte, and 0 past its end or for an item that does not exist. Numbers
//! are little-endian. popek has the items a guest of a one-CPU PC asks for: signature
//! "QEMU", the interface ID (traditional interface only, no DMA), RAM size, CPU counts,
//! "no graphics", and an empty file directory.

use popek_memory::{AccessSize, Port};

use crate::bus::{DeviceContext, PortDevice};

/// Item keys (fw_cfg.rst, "Selector (Control) Register" and QEMU's key list).
pub mod key {
    /// "QEMU".
    pub const SIGNATURE: u16 = 0x00;
    /// Interface ID: bit 0 = traditional interface, bit 1 = DMA.
    pub const ID: u16 = 0x01;
    /// RAM size in bytes (u64).
    pub const RAM_SIZE: u16 = 0x03;
    /// Non-zero: no graphical console (u16).
    pub const NOGRAPHIC: u16 = 0x04;
    /// Processors present (u16).
    pub const NB_CPUS: u16 = 0x05;
    /// Processors possible (u16).
    pub const MAX_CPUS: u16 = 0x0f;
    /// The file directory: a big-endian u32 count, then the entries.
    pub const FILE_DIR: u16 = 0x19;
}

/// The fw_cfg device.
#[derive(Clone, Debug)]
pub struct FwCfg {
    ram_size: u64,
    selector: u16,
    offset: usize,
}

impl FwCfg {
    /// Its ports: selector 0x510 (two bytes) and data 0x511.
    pub const PORTS: (u16, u16) = (0x510, 2);

    /// A device reporting `ram_size` bytes of RAM and one processor.
    pub fn new(ram_size: u64) -> Self {
        FwCfg { ram_size, selector: 0, offset: 0 }
    }

    /// The contents of item `key`, if popek has it.
    fn item(&self, key: u16) -> Option<Vec<u8>> {
        Some(match key {
            key::SIGNATURE => b"QEMU".to_vec(),
            key::ID => 1u32.to_le_bytes().to_vec(),
            key::RAM_SIZE => self.ram_size.to_le_bytes().to_vec(),
            key::NOGRAPHIC => 1u16.to_le_bytes().to_vec(),
            key::NB_CPUS | key::MAX_CPUS => 1u16.to_le_bytes().to_vec(),
            key::FILE_DIR => 0u32.to_be_bytes().to_vec(),
            _ => return None,
        })
    }

    fn read_data(&mut self) -> u8 {
        let b = self.item(self.selector).and_then(|v| v.get(self.offset).copied()).unwrap_or(0);
        self.offset = self.offset.saturating_add(1);
        b
    }
}

impl PortDevice for FwCfg {
    fn name(&self) -> &'static str {
        "fw-cfg"
    }

    /// The selector is 16 bits wide; the data port is read a byte at a time (a wider
    /// read returns that many consecutive bytes, as QEMU's data port does).
    fn byte_wide(&self) -> bool {
        false
    }

    fn read(&mut self, _: &mut DeviceContext<'_>, _: Port, offset: u16, size: AccessSize) -> u32 {
        match offset {
            // The selector is write-only.
            0 => 0,
            _ => (0..size.bytes()).fold(0, |acc, i| acc | u32::from(self.read_data()) << (8 * i)),
        }
    }

    fn write(&mut self, _: &mut DeviceContext<'_>, _: Port, offset: u16, size: AccessSize, value: u32) {
        if offset == 0 {
            // A byte write sets the low byte only; the item keys fit in 16 bits.
            self.selector = match size {
                AccessSize::Byte => u16::from(value.to_le_bytes()[0]),
                _ => u16::from_le_bytes([value.to_le_bytes()[0], value.to_le_bytes()[1]]),
            };
            self.offset = 0;
        }
        // Writes to the data port are ignored (QEMU 2.4 and later).
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;

    fn read_item(d: &mut FwCfg, h: &mut Harness, key: u16, len: usize) -> Vec<u8> {
        d.write(&mut h.ctx(), Port(0x510), 0, AccessSize::Word, key.into());
        (0..len).map(|_| d.read(&mut h.ctx(), Port(0x510), 1, AccessSize::Byte).to_le_bytes()[0]).collect()
    }

    #[test]
    fn items_as_a_test_suite_reads_them() {
        let (mut d, mut h) = (FwCfg::new(256 << 20), Harness::default());
        assert_eq!(read_item(&mut d, &mut h, key::SIGNATURE, 4), b"QEMU");
        assert_eq!(read_item(&mut d, &mut h, key::ID, 4), [1, 0, 0, 0]);
        assert_eq!(read_item(&mut d, &mut h, key::NB_CPUS, 2), [1, 0]);
        assert_eq!(read_item(&mut d, &mut h, key::RAM_SIZE, 8), (256u64 << 20).to_le_bytes());
        // Past the end of an item, and an item popek does not have: zeros.
        assert_eq!(read_item(&mut d, &mut h, key::NB_CPUS, 4), [1, 0, 0, 0]);
        assert_eq!(read_item(&mut d, &mut h, 0x1234, 3), [0, 0, 0]);
        assert_eq!(read_item(&mut d, &mut h, key::FILE_DIR, 4), [0, 0, 0, 0]);
        // A dword read takes four bytes; the selector reads 0.
        d.write(&mut h.ctx(), Port(0x510), 0, AccessSize::Word, key::SIGNATURE.into());
        assert_eq!(d.read(&mut h.ctx(), Port(0x510), 1, AccessSize::Dword), u32::from_le_bytes(*b"QEMU"));
        assert_eq!(d.read(&mut h.ctx(), Port(0x510), 0, AccessSize::Word), 0);
    }
}
