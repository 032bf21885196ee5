//! i8042 keyboard controller (data 0x60, status/command 0x64, IRQ 1) with a PS/2 keyboard.
//! Implements the IBM PC/AT technical reference "Keyboard Controller" (status register,
//! controller commands 0x20/0x60/0xA7–0xAB/0xAD/0xAE/0xD0–0xD4/0xF0–0xFF) and the PS/2 keyboard
//! command set (0xED, 0xEE, 0xF0, 0xF2–0xF6, 0xFF); as much as a kernel's probe needs.
//!
//! Every byte is processed instantly, so the input buffer is never full. There
//! is no mouse: the auxiliary port accepts commands and never answers. A
//! reset pulse (command 0xFE, any 0xF0–0xFF with bit 0 clear, or output port
//! bit 0 cleared) requests [`StopRequest::Reset`].

#![allow(clippy::cast_possible_truncation, reason = "8-bit registers take the low byte of the data bus")]

use std::collections::VecDeque;

use popek_memory::{AccessSize, Port};

use crate::bus::{DeviceContext, PortDevice, StopRequest};

/// Status register bits.
const STAT_OBF: u8 = 0x01;
const STAT_SYS: u8 = 0x04;
const STAT_CMD: u8 = 0x08;
const STAT_UNLOCKED: u8 = 0x10;
const STAT_AUX_OBF: u8 = 0x20;

/// Controller configuration ("command") byte bits.
const CTR_KBD_INT: u8 = 0x01;
const CTR_AUX_INT: u8 = 0x02;
const CTR_SYS: u8 = 0x04;
const CTR_KBD_DISABLE: u8 = 0x10;
const CTR_AUX_DISABLE: u8 = 0x20;

/// What the next write to port 0x60 means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// A keyboard command or scan code.
    Keyboard,
    /// The new configuration byte (after 0x60).
    WriteCtr,
    /// The new output port (after 0xD1).
    WriteOutputPort,
    /// A byte to put in the output buffer as keyboard data (after 0xD2).
    EchoKeyboard,
    /// A byte to put in the output buffer as aux data (after 0xD3).
    EchoAux,
    /// A byte for the (absent) mouse (after 0xD4).
    AuxCommand,
    /// The parameter of a keyboard command (0xED, 0xF0, 0xF3).
    KeyboardParam(u8),
}

/// The controller and its keyboard.
#[derive(Debug, Clone)]
pub struct I8042 {
    ctr: u8,
    output_port: u8,
    /// Output buffer queue: (byte, from the aux port).
    out: VecDeque<(u8, bool)>,
    pending: Pending,
    last_was_command: bool,
    scanning: bool,
    scancode_set: u8,
    kbd_level: bool,
    aux_level: bool,
}

impl Default for I8042 {
    fn default() -> Self {
        Self::new()
    }
}

impl I8042 {
    /// Ports: (base, count) for data and status/command.
    pub const PORT_RANGES: [(u16, u16); 2] = [(0x60, 1), (0x64, 1)];

    /// State after the BIOS: keyboard interrupt on, system flag set,
    /// translation on, both ports enabled, A20 on.
    pub fn new() -> Self {
        I8042 {
            ctr: CTR_KBD_INT | CTR_SYS | 0x40,
            output_port: 0x03,
            out: VecDeque::new(),
            pending: Pending::Keyboard,
            last_was_command: false,
            scanning: true,
            scancode_set: 2,
            kbd_level: false,
            aux_level: false,
        }
    }

    /// Queue scan codes typed on the keyboard (dropped while it is disabled).
    pub fn queue_scancodes(&mut self, codes: &[u8]) {
        if self.scanning && self.ctr & CTR_KBD_DISABLE == 0 {
            self.out.extend(codes.iter().map(|&c| (c, false)));
        }
    }

    /// True if the A20 gate (output port bit 1) is on.
    pub fn a20(&self) -> bool {
        self.output_port & 0x02 != 0
    }

    /// The status register.
    pub fn status(&self) -> u8 {
        let mut s = STAT_UNLOCKED;
        if self.ctr & CTR_SYS != 0 {
            s |= STAT_SYS;
        }
        if self.last_was_command {
            s |= STAT_CMD;
        }
        if let Some(&(_, aux)) = self.out.front() {
            s |= STAT_OBF;
            if aux {
                s |= STAT_AUX_OBF;
            }
        }
        s
    }

    fn push(&mut self, byte: u8) {
        self.out.push_back((byte, false));
    }

    fn controller_command(&mut self, ctx: &mut DeviceContext<'_>, cmd: u8) {
        match cmd {
            0x20 => self.push(self.ctr),
            0x60 => self.pending = Pending::WriteCtr,
            0xa7 => self.ctr |= CTR_AUX_DISABLE,
            0xa8 => self.ctr &= !CTR_AUX_DISABLE,
            0xa9 => self.push(0x00), // aux interface test: OK
            0xaa => {
                // Controller self-test: 0x55, and the system flag is set.
                self.ctr |= CTR_SYS;
                self.push(0x55);
            }
            0xab => self.push(0x00), // keyboard interface test: OK
            0xad => self.ctr |= CTR_KBD_DISABLE,
            0xae => self.ctr &= !CTR_KBD_DISABLE,
            0xc0 => self.push(0xbf), // input port: keyboard not inhibited, colour display
            0xd0 => self.push(self.output_port),
            0xd1 => self.pending = Pending::WriteOutputPort,
            0xd2 => self.pending = Pending::EchoKeyboard,
            0xd3 => self.pending = Pending::EchoAux,
            0xd4 => self.pending = Pending::AuxCommand,
            // Pulse output port lines whose bit is 0; bit 0 is the reset line.
            0xf0..=0xff if cmd & 1 == 0 => ctx.request_stop(StopRequest::Reset),
            _ => {} // unknown commands are ignored
        }
    }

    fn keyboard_command(&mut self, cmd: u8) {
        match cmd {
            0xed | 0xf0 | 0xf3 => {
                self.push(0xfa);
                self.pending = Pending::KeyboardParam(cmd);
            }
            0xee => self.push(0xee), // echo
            0xf2 => {
                // Identify: MF2 keyboard (0x41 translated, as QEMU answers).
                self.push(0xfa);
                self.push(0xab);
                self.push(if self.ctr & 0x40 != 0 { 0x41 } else { 0x83 });
            }
            0xf4 => {
                self.scanning = true;
                self.push(0xfa);
            }
            0xf5 => {
                self.scanning = false;
                self.push(0xfa);
            }
            0xf6 => {
                self.scancode_set = 2;
                self.push(0xfa);
            }
            0xff => {
                // Reset: ACK, then the self-test passed code.
                self.scanning = true;
                self.scancode_set = 2;
                self.out.retain(|&(_, aux)| aux);
                self.push(0xfa);
                self.push(0xaa);
            }
            _ => self.push(0xfe), // resend: not understood
        }
    }

    fn write_data(&mut self, ctx: &mut DeviceContext<'_>, v: u8) {
        let pending = std::mem::replace(&mut self.pending, Pending::Keyboard);
        match pending {
            Pending::Keyboard => {
                // Writing to the keyboard re-enables its interface.
                self.ctr &= !CTR_KBD_DISABLE;
                self.keyboard_command(v);
            }
            Pending::WriteCtr => self.ctr = v,
            Pending::WriteOutputPort => {
                self.output_port = v;
                if v & 1 == 0 {
                    ctx.request_stop(StopRequest::Reset);
                }
            }
            Pending::EchoKeyboard => self.push(v),
            Pending::EchoAux => self.out.push_back((v, true)),
            Pending::AuxCommand => {} // no mouse attached
            Pending::KeyboardParam(cmd) => {
                if cmd == 0xf0 && v == 0 {
                    self.push(0xfa);
                    self.push(self.scancode_set);
                } else {
                    if cmd == 0xf0 && (1..=3).contains(&v) {
                        self.scancode_set = v;
                    }
                    self.push(0xfa);
                }
            }
        }
    }

    fn update_irq(&mut self, ctx: &mut DeviceContext<'_>) {
        let front = self.out.front().map(|&(_, aux)| aux);
        let kbd = front == Some(false) && self.ctr & CTR_KBD_INT != 0;
        let aux = front == Some(true) && self.ctr & CTR_AUX_INT != 0;
        if kbd != self.kbd_level {
            self.kbd_level = kbd;
            ctx.set_irq(1, kbd);
        }
        if aux != self.aux_level {
            self.aux_level = aux;
            ctx.set_irq(12, aux);
        }
    }
}

impl PortDevice for I8042 {
    fn name(&self) -> &'static str {
        "i8042"
    }

    fn read(&mut self, ctx: &mut DeviceContext<'_>, base: Port, _: u16, _: AccessSize) -> u32 {
        let v = if base.0 == 0x64 {
            self.status()
        } else {
            // An empty output buffer reads the last byte again on real
            // hardware; 0 is what QEMU returns when nothing was ever sent.
            self.out.pop_front().map_or(0, |(b, _)| b)
        };
        // Lower the line before raising it again for the next byte, so an
        // edge-triggered 8259A sees one edge per byte.
        if base.0 == 0x60 && self.kbd_level {
            self.kbd_level = false;
            ctx.set_irq(1, false);
        }
        self.update_irq(ctx);
        v.into()
    }

    fn write(&mut self, ctx: &mut DeviceContext<'_>, base: Port, _: u16, _: AccessSize, value: u32) {
        let v = value as u8;
        if base.0 == 0x64 {
            self.last_was_command = true;
            self.pending = Pending::Keyboard;
            self.controller_command(ctx, v);
        } else {
            self.last_was_command = false;
            self.write_data(ctx, v);
        }
        self.update_irq(ctx);
    }

    fn advance(&mut self, ctx: &mut DeviceContext<'_>) {
        self.update_irq(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;

    fn out(k: &mut I8042, h: &mut Harness, port: u16, v: u8) {
        k.write(&mut h.ctx(), Port(port), 0, AccessSize::Byte, v.into());
    }

    fn inb(k: &mut I8042, h: &mut Harness, port: u16) -> u8 {
        k.read(&mut h.ctx(), Port(port), 0, AccessSize::Byte) as u8
    }

    /// Send a controller command and collect the bytes it answers.
    fn command(k: &mut I8042, h: &mut Harness, cmd: u8) -> Vec<u8> {
        out(k, h, 0x64, cmd);
        let mut got = Vec::new();
        while inb(k, h, 0x64) & STAT_OBF != 0 {
            got.push(inb(k, h, 0x60));
        }
        got
    }

    #[test]
    fn self_tests_and_command_byte() {
        let mut k = I8042::new();
        let mut h = Harness::default();
        assert_eq!(inb(&mut k, &mut h, 0x64), STAT_UNLOCKED | STAT_SYS);
        // Linux's i8042 probe: disable, read CTR, self-test, interface test.
        assert_eq!(command(&mut k, &mut h, 0xad), vec![]);
        assert_eq!(command(&mut k, &mut h, 0x20), vec![0x45 | CTR_KBD_DISABLE]);
        assert_eq!(inb(&mut k, &mut h, 0x64) & STAT_CMD, STAT_CMD);
        assert_eq!(command(&mut k, &mut h, 0xaa), vec![0x55]);
        assert_eq!(command(&mut k, &mut h, 0xab), vec![0x00]);
        out(&mut k, &mut h, 0x64, 0x60);
        out(&mut k, &mut h, 0x60, 0x00);
        assert_eq!(inb(&mut k, &mut h, 0x64) & STAT_CMD, 0, "last write was data");
        assert_eq!(command(&mut k, &mut h, 0x20), vec![0x00]);
        assert_eq!(command(&mut k, &mut h, 0xae), vec![]);
        assert_eq!(command(&mut k, &mut h, 0xd0), vec![0x03]);
        assert!(h.stop.is_none());
    }

    #[test]
    fn keyboard_reset_and_irq1() {
        let mut k = I8042::new();
        let mut h = Harness::default();
        out(&mut k, &mut h, 0x60, 0xff);
        assert!(h.irq.level[1], "CTR bit 0: keyboard data raises IRQ 1");
        assert_eq!(inb(&mut k, &mut h, 0x60), 0xfa);
        assert!(h.irq.level[1], "second byte pending");
        assert_eq!(inb(&mut k, &mut h, 0x60), 0xaa);
        assert!(!h.irq.level[1]);
        assert_eq!(h.irq.rising[1], 2, "one edge per byte");
        // Set LEDs: ACK for the command and for the parameter.
        out(&mut k, &mut h, 0x60, 0xed);
        out(&mut k, &mut h, 0x60, 0x07);
        assert_eq!((inb(&mut k, &mut h, 0x60), inb(&mut k, &mut h, 0x60)), (0xfa, 0xfa));
        // Get scan code set.
        out(&mut k, &mut h, 0x60, 0xf0);
        out(&mut k, &mut h, 0x60, 0x00);
        let got: Vec<u8> = (0..3).map(|_| inb(&mut k, &mut h, 0x60)).collect();
        assert_eq!(got, vec![0xfa, 0xfa, 0x02]);
        assert_eq!(inb(&mut k, &mut h, 0x60), 0x00, "empty output buffer");
        // Unknown keyboard command: resend.
        out(&mut k, &mut h, 0x60, 0x12);
        assert_eq!(inb(&mut k, &mut h, 0x60), 0xfe);
        k.queue_scancodes(&[0x1c, 0xf0, 0x1c]);
        assert_eq!(inb(&mut k, &mut h, 0x64) & STAT_OBF, STAT_OBF);
    }

    #[test]
    fn reset_pulse_is_a_stop_request() {
        for (cmd, param) in [(0xfe, None), (0xf0, None), (0xd1, Some(0x02))] {
            let mut k = I8042::new();
            let mut h = Harness::default();
            out(&mut k, &mut h, 0x64, cmd);
            if let Some(p) = param {
                assert!(h.stop.is_none());
                out(&mut k, &mut h, 0x60, p);
            }
            assert_eq!(h.stop, Some(StopRequest::Reset), "command {cmd:#x}");
        }
        // 0xFF pulses nothing; 0xD1 with bit 0 set keeps the CPU running.
        let mut k = I8042::new();
        let mut h = Harness::default();
        out(&mut k, &mut h, 0x64, 0xff);
        out(&mut k, &mut h, 0x64, 0xd1);
        out(&mut k, &mut h, 0x60, 0x01);
        assert_eq!(h.stop, None);
        assert!(!k.a20());
    }

    #[test]
    fn aux_echo_sets_aux_obf() {
        let mut k = I8042::new();
        let mut h = Harness::default();
        out(&mut k, &mut h, 0x64, 0xd3);
        out(&mut k, &mut h, 0x60, 0x5a);
        assert_eq!(inb(&mut k, &mut h, 0x64) & 0x21, 0x21);
        assert!(!h.irq.level[12], "aux interrupt off in CTR");
        assert!(!h.irq.level[1]);
        assert_eq!(inb(&mut k, &mut h, 0x60), 0x5a);
    }
}
