//! Small ISA odds and ends: QEMU's debug-exit (0xF4), the Bochs/QEMU debug console
//! (0xE9), the POST diagnostic port (0x80), and PCI configuration mechanism #1
//! (0xCF8 address, 0xCFC data) with no device behind it, plus the PIIX reset
//! control register (0xCF9).
//! Follows QEMU `hw/misc/debugexit.c` and `hw/char/debugcon.c`, and the PCI Local Bus
//! Specification 3.0, section 3.2.2.3.2 "Configuration Mechanism #1"; Intel PIIX3 datasheet 4.1.5 (RC).

#![allow(clippy::cast_possible_truncation, reason = "8-bit ports take the low byte of the data bus")]

use popek_memory::{AccessSize, Port};

use crate::bus::{DeviceContext, PortDevice, StopRequest};
use crate::sink::ByteSink;

/// QEMU's `isa-debug-exit,iobase=0xf4,iosize=4`: any write of `v` stops the
/// run with exit status `(v << 1) | 1`; reads return 0.
#[derive(Debug, Default, Clone, Copy)]
pub struct DebugExit;

impl DebugExit {
    /// Ports: (base, count).
    pub const PORTS: (u16, u16) = (0xf4, 4);
}

impl PortDevice for DebugExit {
    fn name(&self) -> &'static str {
        "isa-debug-exit"
    }
    fn read(&mut self, _: &mut DeviceContext<'_>, _: Port, _: u16, _: AccessSize) -> u32 {
        0 // QEMU's debug_exit_read
    }
    fn write(&mut self, ctx: &mut DeviceContext<'_>, _: Port, _: u16, _: AccessSize, value: u32) {
        ctx.request_stop(StopRequest::DebugExit { value });
    }
    fn byte_wide(&self) -> bool {
        false // the whole value written counts, as in QEMU
    }
}

/// The debug console at 0xE9: writes print a byte, reads return 0xE9 (so a
/// guest can detect it).
pub struct Debugcon {
    sink: Box<dyn ByteSink>,
}

impl std::fmt::Debug for Debugcon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Debugcon")
    }
}

impl Debugcon {
    /// Ports: (base, count).
    pub const PORTS: (u16, u16) = (0xe9, 1);

    /// A console writing to `sink`.
    pub fn new(sink: Box<dyn ByteSink>) -> Self {
        Debugcon { sink }
    }
}

impl PortDevice for Debugcon {
    fn name(&self) -> &'static str {
        "debugcon"
    }
    fn read(&mut self, _: &mut DeviceContext<'_>, _: Port, _: u16, _: AccessSize) -> u32 {
        0xe9
    }
    fn flush(&mut self) {
        self.sink.flush();
    }
    fn write(&mut self, _: &mut DeviceContext<'_>, _: Port, _: u16, _: AccessSize, value: u32) {
        self.sink.write_byte(value as u8);
    }
}

/// The POST code port 0x80: remembers the last value written; reads return
/// all ones (as on QEMU).
#[derive(Debug, Default, Clone, Copy)]
pub struct PostPort {
    last: Option<u8>,
    writes: u64,
}

impl PostPort {
    /// Ports: (base, count).
    pub const PORTS: (u16, u16) = (0x80, 1);

    /// The last POST code written, if any.
    pub fn last(&self) -> Option<u8> {
        self.last
    }

    /// Number of writes (guests use port 0x80 as an I/O delay).
    pub fn writes(&self) -> u64 {
        self.writes
    }
}

impl PortDevice for PostPort {
    fn name(&self) -> &'static str {
        "post"
    }
    fn read(&mut self, _: &mut DeviceContext<'_>, _: Port, _: u16, _: AccessSize) -> u32 {
        0xff
    }
    fn read_is_pure(&self, _: u16) -> bool {
        true
    }
    fn write(&mut self, _: &mut DeviceContext<'_>, _: Port, _: u16, _: AccessSize, value: u32) {
        self.last = Some(value as u8);
        self.writes += 1;
    }
}

/// PCI configuration mechanism #1 with an empty bus: the address register
/// at 0xCF8 (32-bit accesses only) reads back what was written, the data
/// window 0xCFC–0xCFF reads all ones ("no device") and drops writes. The
/// byte at 0xCF9 is the PIIX reset control register: writing bit 2 (RST_CPU)
/// requests a reset.
#[derive(Debug, Default, Clone, Copy)]
pub struct PciConfig {
    address: u32,
    reset_control: u8,
}

impl PciConfig {
    /// Ports: (base, count): 0xCF8–0xCFF.
    pub const PORTS: (u16, u16) = (0xcf8, 8);

    /// The configuration address register.
    pub fn address(&self) -> u32 {
        self.address
    }
}

impl PortDevice for PciConfig {
    fn name(&self) -> &'static str {
        "pci-config"
    }
    fn read(&mut self, _: &mut DeviceContext<'_>, _: Port, offset: u16, size: AccessSize) -> u32 {
        match (offset, size) {
            (0, AccessSize::Dword) => self.address,
            (1, AccessSize::Byte) => self.reset_control.into(),
            _ => size.ones(),
        }
    }
    fn read_is_pure(&self, _: u16) -> bool {
        true
    }
    fn write(&mut self, ctx: &mut DeviceContext<'_>, _: Port, offset: u16, size: AccessSize, value: u32) {
        match (offset, size) {
            (0, AccessSize::Dword) => self.address = value,
            (1, AccessSize::Byte) => {
                self.reset_control = (value as u8) & 0x0e;
                if value & 0x04 != 0 {
                    ctx.request_stop(StopRequest::Reset);
                }
            }
            _ => {}
        }
    }
    fn byte_wide(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::SharedBuffer;
    use crate::testing::Harness;

    #[test]
    fn debug_exit_requests_stop_with_value() {
        for (size, v, status) in [(AccessSize::Byte, 0, 1), (AccessSize::Byte, 1, 3), (AccessSize::Dword, 0x42, 0x85)] {
            let mut h = Harness::default();
            let mut d = DebugExit;
            d.write(&mut h.ctx(), Port(0xf4), 0, size, v);
            assert_eq!(h.stop, Some(StopRequest::DebugExit { value: v }));
            assert_eq!(h.stop.and_then(StopRequest::exit_status), Some(status));
            assert_eq!(d.read(&mut h.ctx(), Port(0xf4), 2, AccessSize::Word), 0);
        }
    }

    #[test]
    fn debugcon_and_post() {
        let buf = SharedBuffer::new();
        let mut h = Harness::default();
        let mut d = Debugcon::new(Box::new(buf.clone()));
        for &b in b"ok" {
            d.write(&mut h.ctx(), Port(0xe9), 0, AccessSize::Byte, b.into());
        }
        assert_eq!(buf.text(), "ok");
        assert_eq!(d.read(&mut h.ctx(), Port(0xe9), 0, AccessSize::Byte), 0xe9);
        let mut p = PostPort::default();
        assert_eq!(p.last(), None);
        p.write(&mut h.ctx(), Port(0x80), 0, AccessSize::Byte, 0x2a);
        p.write(&mut h.ctx(), Port(0x80), 0, AccessSize::Byte, 0x55);
        assert_eq!((p.last(), p.writes()), (Some(0x55), 2));
        assert_eq!(p.read(&mut h.ctx(), Port(0x80), 0, AccessSize::Byte), 0xff);
    }

    #[test]
    fn pci_config_has_no_devices() {
        let mut h = Harness::default();
        let mut p = PciConfig::default();
        // Linux's pci_check_type1: the address register reads back.
        p.write(&mut h.ctx(), Port(0xcf8), 0, AccessSize::Dword, 0x8000_0000);
        assert_eq!(p.read(&mut h.ctx(), Port(0xcf8), 0, AccessSize::Dword), 0x8000_0000);
        // Vendor/device ID of 00:00.0: all ones, no device.
        assert_eq!(p.read(&mut h.ctx(), Port(0xcf8), 4, AccessSize::Dword), 0xffff_ffff);
        assert_eq!(p.read(&mut h.ctx(), Port(0xcf8), 6, AccessSize::Word), 0xffff);
        p.write(&mut h.ctx(), Port(0xcf8), 4, AccessSize::Dword, 0);
        assert_eq!(p.read(&mut h.ctx(), Port(0xcf8), 4, AccessSize::Byte), 0xff);
        assert_eq!(h.stop, None);
        // 0xCF9 bit 2: reset.
        p.write(&mut h.ctx(), Port(0xcf8), 1, AccessSize::Byte, 0x02);
        assert_eq!(h.stop, None);
        p.write(&mut h.ctx(), Port(0xcf8), 1, AccessSize::Byte, 0x06);
        assert_eq!(h.stop, Some(StopRequest::Reset));
    }
}
