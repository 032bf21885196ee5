//! The VGA's I/O registers (IBM VGA Technical Reference, "Registers"): the CRT
//! controller (index/data at 0x3D4/0x3D5, or 0x3B4/0x3B5 in monochrome addressing),
//! sequencer (0x3C4/0x3C5), graphics controller (0x3CE/0x3CF), attribute controller
//! (0x3C0/0x3C1 with its address/data flip-flop), miscellaneous output (write 0x3C2,
//! read 0x3CC), input status 0 and 1 (0x3C2, 0x3DA), feature control and the DAC
//! (0x3C6–0x3C9).
//!
//! The registers hold what the guest writes and start as a VGA BIOS leaves them in text
//! mode 3 (80×25, colour), so a kernel that reads the cursor location before it writes
//! its first character finds 0. The text buffer itself is [`crate::vga::VgaText`]; these
//! registers change nothing about how it is shown. Every index a guest can write reads
//! back what was written there (0 if nothing), never an undefined value: kernels compute
//! addresses from them (a console's cursor position is `CRTC[0x0E] << 8 | CRTC[0x0F]`).

use popek_memory::{AccessSize, Port};

use crate::bus::{DeviceContext, PortDevice};

/// CRTC registers of mode 3 (indices 0x00–0x18), as the VGA BIOS programs them.
const MODE3_CRTC: [u8; 25] = [
    0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0x00, 0x4f, 0x0d, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x9c, 0x8e, 0x8f,
    0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff,
];
/// Sequencer registers of mode 3.
const MODE3_SEQUENCER: [u8; 5] = [0x03, 0x00, 0x03, 0x00, 0x02];
/// Graphics controller registers of mode 3.
const MODE3_GRAPHICS: [u8; 9] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0e, 0x00, 0xff];
/// Attribute controller registers of mode 3 (palette 0–15, mode control, overscan,
/// colour plane enable, horizontal panning, colour select).
const MODE3_ATTRIBUTE: [u8; 21] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x0c, 0x00, 0x0f,
    0x08, 0x00,
];
/// Miscellaneous output of mode 3: colour addressing (bit 0: CRTC at 0x3Dx), RAM enabled,
/// 28 MHz clock, sync polarities for 400 lines.
const MODE3_MISC: u8 = 0x67;

/// CRTC index of the cursor location, high byte.
pub const CRTC_CURSOR_HIGH: u8 = 0x0e;
/// CRTC index of the cursor location, low byte.
pub const CRTC_CURSOR_LOW: u8 = 0x0f;

/// An index register and the 256 data registers it selects. Real chips decode fewer
/// index bits; keeping all 256 means an index no VGA has reads back what the guest wrote
/// there, or 0.
#[derive(Clone)]
struct Indexed {
    index: u8,
    regs: [u8; 256],
}

impl Indexed {
    fn new(initial: &[u8]) -> Self {
        let mut regs = [0; 256];
        regs[..initial.len()].copy_from_slice(initial);
        Indexed { index: 0, regs }
    }
    fn data(&self) -> u8 {
        self.regs[usize::from(self.index)]
    }
    fn set_data(&mut self, v: u8) {
        self.regs[usize::from(self.index)] = v;
    }
}

/// The VGA register file.
#[derive(Clone)]
pub struct VgaRegisters {
    crtc: Indexed,
    sequencer: Indexed,
    graphics: Indexed,
    attribute: Indexed,
    /// The attribute controller's flip-flop: false = the next 0x3C0 write is an index.
    attribute_data: bool,
    misc: u8,
    feature: u8,
    /// Input status 1 toggles its retrace bits on every read (as QEMU does), so a guest
    /// that waits for a retrace edge sees one at once, deterministically.
    status1: u8,
    dac_mask: u8,
    /// DAC: the entry and component (0–2) the next 0x3C9 access uses; read or write mode.
    dac_index: u8,
    dac_component: u8,
    dac_reading: bool,
    palette: Box<[u8; 768]>,
}

impl std::fmt::Debug for VgaRegisters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VgaRegisters").field("cursor", &self.cursor()).field("misc", &self.misc).finish_non_exhaustive()
    }
}

impl Default for VgaRegisters {
    fn default() -> Self {
        Self::new()
    }
}

impl VgaRegisters {
    /// The ports this device answers: 0x3B4–0x3B5 and 0x3BA (monochrome CRTC and status),
    /// and 0x3C0–0x3DF.
    pub const PORT_RANGES: [(u16, u16); 3] = [(0x3b4, 2), (0x3ba, 1), (0x3c0, 0x20)];

    /// Registers as the VGA BIOS leaves them in text mode 3.
    pub fn new() -> Self {
        VgaRegisters {
            crtc: Indexed::new(&MODE3_CRTC),
            sequencer: Indexed::new(&MODE3_SEQUENCER),
            graphics: Indexed::new(&MODE3_GRAPHICS),
            attribute: Indexed::new(&MODE3_ATTRIBUTE),
            attribute_data: false,
            misc: MODE3_MISC,
            feature: 0,
            status1: 0,
            dac_mask: 0xff,
            dac_index: 0,
            dac_component: 0,
            dac_reading: false,
            palette: Box::new([0; 768]),
        }
    }

    /// The cursor location (character offset from the start of text memory), from CRTC
    /// registers 0x0E and 0x0F.
    pub fn cursor(&self) -> u16 {
        u16::from(self.crtc.regs[usize::from(CRTC_CURSOR_HIGH)]) << 8
            | u16::from(self.crtc.regs[usize::from(CRTC_CURSOR_LOW)])
    }

    /// True if `port` is the CRTC of the current addressing mode (misc output bit 0:
    /// 1 = colour, 0x3Dx; 0 = monochrome, 0x3Bx).
    fn crtc_port(&self, port: u16) -> Option<u16> {
        let colour = self.misc & 1 != 0;
        match port {
            0x3d4 | 0x3d5 | 0x3da if colour => Some(port),
            0x3b4 | 0x3b5 | 0x3ba if !colour => Some(port + 0x20),
            _ => None,
        }
    }

    fn read_byte(&mut self, port: u16) -> u8 {
        match port {
            0x3b4 | 0x3b5 | 0x3ba | 0x3d4 | 0x3d5 | 0x3da => match self.crtc_port(port) {
                Some(0x3d4) => self.crtc.index,
                Some(0x3d5) => self.crtc.data(),
                Some(_) => {
                    // Input status 1: reading it also resets the attribute flip-flop.
                    self.attribute_data = false;
                    self.status1 ^= 0x09;
                    self.status1
                }
                // The CRTC of the other addressing mode is not decoded.
                None => 0xff,
            },
            0x3c0 => self.attribute.index,
            0x3c1 => self.attribute.data(),
            0x3c2 => 0, // input status 0: no switch sense, no vertical retrace interrupt
            0x3c4 => self.sequencer.index,
            0x3c5 => self.sequencer.data(),
            0x3c6 => self.dac_mask,
            0x3c7 => {
                if self.dac_reading {
                    0x03
                } else {
                    0x00
                }
            }
            0x3c8 => self.dac_index,
            0x3c9 => {
                let v = self.palette[usize::from(self.dac_index) * 3 + usize::from(self.dac_component)];
                self.next_dac_component();
                v
            }
            0x3ca => self.feature,
            0x3cc => self.misc,
            0x3ce => self.graphics.index,
            0x3cf => self.graphics.data(),
            // 0x3C3 (video subsystem enable), 0x3CB, 0x3CD, 0x3D0–0x3D3, 0x3D6–0x3D9 and
            // 0x3DB–0x3DF: nothing there on a VGA.
            _ => 0xff,
        }
    }

    fn write_byte(&mut self, port: u16, v: u8) {
        match port {
            0x3b4 | 0x3b5 | 0x3ba | 0x3d4 | 0x3d5 | 0x3da => match self.crtc_port(port) {
                Some(0x3d4) => self.crtc.index = v,
                Some(0x3d5) => self.crtc.set_data(v),
                Some(_) => self.feature = v, // feature control is written at 0x3DA
                None => {}
            },
            0x3c0 => {
                if self.attribute_data {
                    self.attribute.set_data(v);
                } else {
                    self.attribute.index = v;
                }
                self.attribute_data = !self.attribute_data;
            }
            0x3c2 => self.misc = v,
            0x3c4 => self.sequencer.index = v,
            0x3c5 => self.sequencer.set_data(v),
            0x3c6 => self.dac_mask = v,
            0x3c7 => {
                (self.dac_index, self.dac_component, self.dac_reading) = (v, 0, true);
            }
            0x3c8 => {
                (self.dac_index, self.dac_component, self.dac_reading) = (v, 0, false);
            }
            0x3c9 => {
                // 6-bit DAC components.
                self.palette[usize::from(self.dac_index) * 3 + usize::from(self.dac_component)] = v & 0x3f;
                self.next_dac_component();
            }
            0x3ce => self.graphics.index = v,
            0x3cf => self.graphics.set_data(v),
            _ => {}
        }
    }

    fn next_dac_component(&mut self) {
        self.dac_component += 1;
        if self.dac_component == 3 {
            self.dac_component = 0;
            self.dac_index = self.dac_index.wrapping_add(1);
        }
    }
}

impl PortDevice for VgaRegisters {
    fn name(&self) -> &'static str {
        "vga"
    }

    fn read(&mut self, _: &mut DeviceContext<'_>, base: Port, offset: u16, _: AccessSize) -> u32 {
        // Byte-wide: the bus splits wider accesses.
        self.read_byte(base.0 + offset).into()
    }

    fn write(&mut self, _: &mut DeviceContext<'_>, base: Port, offset: u16, _: AccessSize, value: u32) {
        self.write_byte(base.0 + offset, value.to_le_bytes()[0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;

    fn out(v: &mut VgaRegisters, h: &mut Harness, port: u16, value: u8) {
        v.write(&mut h.ctx(), Port(port), 0, AccessSize::Byte, value.into());
    }
    fn inp(v: &mut VgaRegisters, h: &mut Harness, port: u16) -> u8 {
        v.read(&mut h.ctx(), Port(port), 0, AccessSize::Byte).to_le_bytes()[0]
    }

    #[test]
    fn cursor_location_reads_back_as_a_console_uses_it() {
        let (mut v, mut h) = (VgaRegisters::new(), Harness::default());
        // At start: the cursor is at 0 and the cursor shape is mode 3's.
        out(&mut v, &mut h, 0x3d4, 14);
        assert_eq!(inp(&mut v, &mut h, 0x3d5), 0);
        out(&mut v, &mut h, 0x3d4, 15);
        assert_eq!(inp(&mut v, &mut h, 0x3d5), 0);
        out(&mut v, &mut h, 0x3d4, 0x0a);
        assert_eq!(inp(&mut v, &mut h, 0x3d5), 0x0d);
        // Set position 81 (row 1, column 1) and read it back.
        out(&mut v, &mut h, 0x3d4, 14);
        out(&mut v, &mut h, 0x3d5, 0);
        out(&mut v, &mut h, 0x3d4, 15);
        out(&mut v, &mut h, 0x3d5, 81);
        assert_eq!(v.cursor(), 81);
        assert_eq!(inp(&mut v, &mut h, 0x3d4), 15, "the index reads back");
        assert_eq!(inp(&mut v, &mut h, 0x3d5), 81);
        // An index no VGA has: 0 until written.
        out(&mut v, &mut h, 0x3d4, 0xc0);
        assert_eq!(inp(&mut v, &mut h, 0x3d5), 0);
        out(&mut v, &mut h, 0x3d5, 0x5a);
        assert_eq!(inp(&mut v, &mut h, 0x3d5), 0x5a);
        // In colour addressing the monochrome CRTC is not decoded.
        assert_eq!(inp(&mut v, &mut h, 0x3b5), 0xff);
        out(&mut v, &mut h, 0x3c2, 0x66);
        assert_eq!(inp(&mut v, &mut h, 0x3cc), 0x66);
        out(&mut v, &mut h, 0x3b4, 14);
        assert_eq!(inp(&mut v, &mut h, 0x3b5), 0);
        assert_eq!(inp(&mut v, &mut h, 0x3d5), 0xff);
    }

    #[test]
    fn attribute_flip_flop_status_and_dac() {
        let (mut v, mut h) = (VgaRegisters::new(), Harness::default());
        // Reading input status 1 resets the flip-flop; index then data.
        inp(&mut v, &mut h, 0x3da);
        out(&mut v, &mut h, 0x3c0, 0x10);
        assert_eq!(inp(&mut v, &mut h, 0x3c1), 0x0c, "mode control of mode 3");
        out(&mut v, &mut h, 0x3c0, 0x0d);
        assert_eq!(inp(&mut v, &mut h, 0x3c1), 0x0d);
        out(&mut v, &mut h, 0x3c0, 0x20);
        assert_eq!(inp(&mut v, &mut h, 0x3c0), 0x20, "the next write was an index again");
        // The retrace bits toggle on every read.
        let a = inp(&mut v, &mut h, 0x3da);
        let b = inp(&mut v, &mut h, 0x3da);
        assert_eq!(a ^ b, 0x09);
        // DAC: write entry 5 (r, g, b), read it back; components are 6 bits.
        out(&mut v, &mut h, 0x3c8, 5);
        for c in [0x3f, 0x41, 0x01] {
            out(&mut v, &mut h, 0x3c9, c);
        }
        assert_eq!(inp(&mut v, &mut h, 0x3c8), 6);
        out(&mut v, &mut h, 0x3c7, 5);
        assert_eq!(inp(&mut v, &mut h, 0x3c7), 3);
        let rgb: Vec<u8> = (0..3).map(|_| inp(&mut v, &mut h, 0x3c9)).collect();
        assert_eq!(rgb, [0x3f, 0x01, 0x01]);
        // Sequencer and graphics start as mode 3; nothing at 0x3D0.
        out(&mut v, &mut h, 0x3c4, 4);
        assert_eq!(inp(&mut v, &mut h, 0x3c5), 0x02);
        out(&mut v, &mut h, 0x3ce, 6);
        assert_eq!(inp(&mut v, &mut h, 0x3cf), 0x0e);
        assert_eq!(inp(&mut v, &mut h, 0x3d0), 0xff);
    }
}
