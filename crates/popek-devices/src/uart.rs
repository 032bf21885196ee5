//! 16550A UART (COM1 at 0x3F8, IRQ 4).
//! Implements the TI/National PC16550D datasheet (SNLS378), section 8 "Registers"
//! (RBR/THR, IER, IIR, FCR, LCR, MCR, LSR, MSR, SCR, DLL/DLM) and Table 4 (interrupt priorities).
//!
//! Transmission is instantaneous: a byte written to THR goes straight to the
//! output sink (or, in loopback, into the receiver), so THR and the
//! transmitter are always empty again by the next access. Received bytes
//! come from a host-side input queue that is moved into the receiver FIFO as
//! space allows (no overruns from host input), one character time apart in virtual
//! time (10 bits at the programmed baud rate), while the guest listens: while its receive
//! interrupt is enabled (IER bit 0), or, for a guest that polls, from the moment it reads
//! LSR again and again without transmitting (`POLL_STREAK` reads in a row; a kernel's
//! console reads LSR once or twice per byte it sends, a polling receiver spins on it).
//! The first byte arrives one character time after the guest starts listening — as bytes
//! typed on a line arrive, and at the same virtual moments in every run. A kernel that
//! probes and resets the UART before it opens it (Linux flushes the FIFO when a tty is
//! opened) so loses no typed-ahead input.
//! A byte that waited for room arrives one character time after the read that made room,
//! so an edge-triggered interrupt controller sees the line fall and rise again for each
//! byte (a kernel that enables the UART's interrupt before unmasking it at the I/O APIC,
//! as xv6 does, would otherwise miss the one edge that a queue of bytes gives). The character-timeout
//! interrupt is reported as soon as the FIFO holds data below the trigger
//! level (no 4-character timer). The interrupt output drives the IRQ line
//! whatever MCR OUT2 says. On the IBM PC/AT OUT2 gated the line through a
//! buffer on the board; QEMU does not model that gate, and kernels written
//! against QEMU rely on it: xv6 clears MCR and still takes COM1 receive
//! interrupts. popek follows QEMU so that they run.

#![allow(clippy::cast_possible_truncation, reason = "8-bit registers take the low byte of the data bus")]

use std::collections::VecDeque;

use popek_memory::{AccessSize, Port};

use crate::bus::{DeviceContext, PortDevice};
use crate::sink::ByteSink;

/// IER bits.
const IER_RDA: u8 = 0x01;
const IER_THRE: u8 = 0x02;
const IER_RLS: u8 = 0x04;
const IER_MS: u8 = 0x08;

/// LSR bits.
const LSR_DR: u8 = 0x01;
const LSR_OE: u8 = 0x02;
const LSR_BI: u8 = 0x10;
const LSR_THRE: u8 = 0x20;
const LSR_TEMT: u8 = 0x40;
const LSR_FIFO_ERR: u8 = 0x80;

/// MCR bits.
const MCR_DTR: u8 = 0x01;
const MCR_RTS: u8 = 0x02;
const MCR_OUT1: u8 = 0x04;
const MCR_OUT2: u8 = 0x08;
const MCR_LOOP: u8 = 0x10;

/// IIR interrupt identification values (bits 3..0).
const IIR_NONE: u8 = 0x01;
const IIR_RLS: u8 = 0x06;
const IIR_RDA: u8 = 0x04;
const IIR_TIMEOUT: u8 = 0x0c;
const IIR_THRE: u8 = 0x02;
const IIR_MS: u8 = 0x00;

const FIFO_SIZE: usize = 16;

/// One 16550A.
pub struct Uart {
    irq: u8,
    sink: Box<dyn ByteSink>,
    /// Bytes waiting on the (virtual) wire to be received.
    input: VecDeque<u8>,
    rx: VecDeque<u8>,
    ier: u8,
    lcr: u8,
    mcr: u8,
    /// LSR error bits 1..4 (OE, PE, FE, BI); DR/THRE/TEMT are derived.
    lsr_errors: u8,
    /// MSR delta bits 0..3.
    msr_delta: u8,
    scr: u8,
    dll: u8,
    dlm: u8,
    fifo_enabled: bool,
    /// FCR bits 7..6.
    trigger_bits: u8,
    /// THRE interrupt pending (cleared by reading IIR when it is reported, or
    /// by writing THR).
    thre_pending: bool,
    irq_level: bool,
    /// Bytes transmitted to the sink.
    tx_count: u64,
    /// The guest polls the receiver: host input flows whatever IER says.
    polling: bool,
    /// LSR reads since the last THR write.
    lsr_streak: u32,
    /// Whether host input flowed after the last access.
    was_flowing: bool,
    /// Virtual time (ns) at which the next host input byte arrives.
    next_arrival_ns: u64,
    /// Virtual time of the current access or advance.
    now_ns: u64,
}

/// Nanoseconds per bit time at divisor 1 times the 10 bits of a character (start, 8 data,
/// stop): 10 / 115,200 s.
const CHAR_NS_AT_DIVISOR_1: u64 = 10 * 1_000_000_000 / 115_200;

/// LSR reads in a row, with no byte transmitted between them, that make a guest a polling
/// receiver.
const POLL_STREAK: u32 = 16;

impl std::fmt::Debug for Uart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uart").field("irq", &self.irq).field("tx_count", &self.tx_count).finish_non_exhaustive()
    }
}

impl Uart {
    /// COM1's ports.
    pub const COM1: (u16, u16) = (0x3f8, 8);

    /// A UART on interrupt line `irq` writing transmitted bytes to `sink`.
    pub fn new(irq: u8, sink: Box<dyn ByteSink>) -> Self {
        Uart {
            irq,
            sink,
            input: VecDeque::new(),
            rx: VecDeque::new(),
            ier: 0,
            lcr: 0,
            mcr: 0,
            lsr_errors: 0,
            msr_delta: 0,
            scr: 0,
            dll: 0x0c, // 9600 baud, as after a BIOS
            dlm: 0,
            fifo_enabled: false,
            trigger_bits: 0,
            thre_pending: false,
            irq_level: false,
            tx_count: 0,
            polling: false,
            lsr_streak: 0,
            was_flowing: false,
            next_arrival_ns: 0,
            now_ns: 0,
        }
    }

    /// Queue bytes to be received (e.g. from the host's stdin).
    pub fn queue_input(&mut self, bytes: &[u8]) {
        self.input.extend(bytes);
    }

    /// Number of bytes transmitted to the sink so far.
    pub fn tx_count(&self) -> u64 {
        self.tx_count
    }

    /// The divisor latch (115200 / divisor = baud rate).
    pub fn divisor(&self) -> u16 {
        u16::from_le_bytes([self.dll, self.dlm])
    }

    /// One character time at the programmed divisor, in ns.
    fn char_ns(&self) -> u64 {
        u64::from(self.divisor().max(1)) * CHAR_NS_AT_DIVISOR_1
    }

    /// Whether host input reaches the receiver now: the guest listens (see the module
    /// docs), and the serial input pin is connected (not in loopback).
    fn flowing(&self) -> bool {
        self.mcr & MCR_LOOP == 0 && (self.ier & IER_RDA != 0 || self.polling)
    }

    /// After a register access: when host input starts to flow, its next byte arrives one
    /// character time on.
    fn update_flow(&mut self) {
        let flowing = self.flowing();
        if flowing && !self.was_flowing {
            self.next_arrival_ns = self.next_arrival_ns.max(self.now_ns + self.char_ns());
        }
        self.was_flowing = flowing;
    }

    fn rx_capacity(&self) -> usize {
        if self.fifo_enabled { FIFO_SIZE } else { 1 }
    }

    fn trigger_level(&self) -> usize {
        match self.trigger_bits {
            0 => 1,
            1 => 4,
            2 => 8,
            _ => 14,
        }
    }

    /// A byte arrives at the receiver (loopback): overrun if there is no room.
    fn receive(&mut self, byte: u8) {
        if self.rx.len() < self.rx_capacity() {
            self.rx.push_back(byte);
        } else {
            self.lsr_errors |= LSR_OE;
        }
    }

    /// Move host input into the receiver while there is room (not in loopback:
    /// the serial input pin is disconnected then).
    fn pull_input(&mut self) {
        if !self.flowing() {
            return;
        }
        while self.rx.len() < self.rx_capacity() && self.next_arrival_ns <= self.now_ns {
            match self.input.pop_front() {
                Some(b) => self.rx.push_back(b),
                None => break,
            }
            self.next_arrival_ns += self.char_ns();
        }
    }

    fn lsr(&self) -> u8 {
        let mut v = self.lsr_errors | LSR_THRE | LSR_TEMT;
        if !self.rx.is_empty() {
            v |= LSR_DR;
        }
        if self.fifo_enabled && self.lsr_errors & (LSR_BI | 0x0c) != 0 {
            v |= LSR_FIFO_ERR;
        }
        v
    }

    /// MSR: in loopback, CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2; otherwise an
    /// attached terminal with CTS, DSR and DCD asserted.
    fn msr_lines(&self) -> u8 {
        if self.mcr & MCR_LOOP != 0 {
            let m = self.mcr;
            (u8::from(m & MCR_RTS != 0) << 4)
                | (u8::from(m & MCR_DTR != 0) << 5)
                | (u8::from(m & MCR_OUT1 != 0) << 6)
                | (u8::from(m & MCR_OUT2 != 0) << 7)
        } else {
            0xb0
        }
    }

    /// The highest-priority pending interrupt (IIR bits 3..0).
    fn interrupt_id(&self) -> u8 {
        if self.ier & IER_RLS != 0 && self.lsr_errors & 0x1e != 0 {
            IIR_RLS
        } else if self.ier & IER_RDA != 0 && !self.rx.is_empty() {
            if !self.fifo_enabled || self.rx.len() >= self.trigger_level() { IIR_RDA } else { IIR_TIMEOUT }
        } else if self.ier & IER_THRE != 0 && self.thre_pending {
            IIR_THRE
        } else if self.ier & IER_MS != 0 && self.msr_delta != 0 {
            IIR_MS
        } else {
            IIR_NONE
        }
    }

    fn update_irq(&mut self, ctx: &mut DeviceContext<'_>) {
        let level = self.interrupt_id() != IIR_NONE;
        if level != self.irq_level {
            self.irq_level = level;
            ctx.set_irq(self.irq, level);
        }
    }

    fn set_mcr(&mut self, v: u8) {
        let old_lines = self.msr_lines();
        self.mcr = v & 0x1f;
        let new_lines = self.msr_lines();
        let changed = old_lines ^ new_lines;
        // DCTS, DDSR, DDCD on any change; TERI on RI going from 1 to 0.
        self.msr_delta |= (changed >> 4) & 0x0b;
        if old_lines & 0x40 != 0 && new_lines & 0x40 == 0 {
            self.msr_delta |= 0x04;
        }
    }

    fn read_reg(&mut self, offset: u16) -> u8 {
        let dlab = self.lcr & 0x80 != 0;
        match offset {
            0 if dlab => self.dll,
            0 => {
                let was_full = self.rx.len() >= self.rx_capacity();
                let b = self.rx.pop_front().unwrap_or(0);
                if was_full && !self.input.is_empty() {
                    // The next byte waited for room: it arrives a character time from now.
                    self.next_arrival_ns = self.next_arrival_ns.max(self.now_ns + self.char_ns());
                }
                self.pull_input();
                b
            }
            1 if dlab => self.dlm,
            1 => self.ier,
            2 => {
                let id = self.interrupt_id();
                if id == IIR_THRE {
                    self.thre_pending = false;
                }
                id | if self.fifo_enabled { 0xc0 } else { 0 }
            }
            3 => self.lcr,
            4 => self.mcr,
            5 => {
                self.lsr_streak = self.lsr_streak.saturating_add(1);
                self.polling |= self.lsr_streak >= POLL_STREAK;
                let v = self.lsr();
                self.lsr_errors = 0;
                v
            }
            6 => {
                let v = self.msr_lines() | self.msr_delta;
                self.msr_delta = 0;
                v
            }
            _ => self.scr,
        }
    }

    fn write_reg(&mut self, offset: u16, v: u8) {
        let dlab = self.lcr & 0x80 != 0;
        match offset {
            0 if dlab => self.dll = v,
            0 => {
                if self.mcr & MCR_LOOP != 0 {
                    self.receive(v);
                } else {
                    self.sink.write_byte(v);
                    self.tx_count += 1;
                    self.lsr_streak = 0;
                }
                // The byte left at once: THR is empty again.
                self.thre_pending = true;
            }
            1 if dlab => self.dlm = v,
            1 => {
                let old = self.ier;
                self.ier = v & 0x0f;
                // Enabling ETBEI while THR is empty raises the THRE interrupt.
                if old & IER_THRE == 0 && v & IER_THRE != 0 {
                    self.thre_pending = true;
                }
            }
            2 => {
                let enable = v & 0x01 != 0;
                if enable != self.fifo_enabled {
                    // Changing FIFO mode clears both FIFOs.
                    self.rx.clear();
                }
                self.fifo_enabled = enable;
                if v & 0x02 != 0 {
                    self.rx.clear();
                }
                self.trigger_bits = v >> 6;
                self.pull_input();
            }
            3 => self.lcr = v,
            4 => {
                self.set_mcr(v);
                self.pull_input();
            }
            5 | 6 => {} // LSR and MSR are read-only (factory test writes ignored)
            _ => self.scr = v,
        }
    }
}

impl PortDevice for Uart {
    fn name(&self) -> &'static str {
        "uart16550"
    }

    fn read(&mut self, ctx: &mut DeviceContext<'_>, _: Port, offset: u16, _: AccessSize) -> u32 {
        self.now_ns = ctx.now_ns();
        self.pull_input();
        let v = self.read_reg(offset);
        self.update_flow();
        self.pull_input();
        self.update_irq(ctx);
        v.into()
    }

    fn write(&mut self, ctx: &mut DeviceContext<'_>, _: Port, offset: u16, _: AccessSize, value: u32) {
        self.now_ns = ctx.now_ns();
        self.pull_input();
        self.write_reg(offset, value as u8);
        self.update_flow();
        self.pull_input();
        self.update_irq(ctx);
    }

    fn flush(&mut self) {
        self.sink.flush();
    }

    fn advance(&mut self, ctx: &mut DeviceContext<'_>) {
        // Host input may have been queued, or become due, since the last access.
        self.now_ns = ctx.now_ns();
        self.pull_input();
        self.update_irq(ctx);
    }

    fn next_deadline(&self) -> Option<u64> {
        let waiting = self.flowing() && !self.input.is_empty();
        (waiting && self.rx.len() < self.rx_capacity()).then_some(self.next_arrival_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::SharedBuffer;
    use crate::testing::Harness;

    fn uart() -> (Uart, SharedBuffer, Harness) {
        let buf = SharedBuffer::new();
        (Uart::new(4, Box::new(buf.clone())), buf, Harness::default())
    }

    fn out(u: &mut Uart, h: &mut Harness, off: u16, v: u8) {
        u.write(&mut h.ctx(), Port(0x3f8), off, AccessSize::Byte, v.into());
    }

    fn inb(u: &mut Uart, h: &mut Harness, off: u16) -> u8 {
        u.read(&mut h.ctx(), Port(0x3f8), off, AccessSize::Byte) as u8
    }

    #[test]
    fn transmit_and_divisor_latch() {
        let (mut u, buf, mut h) = uart();
        // The usual init: DLAB, divisor 1 (115200), 8N1, FIFO on, DTR|RTS|OUT2.
        out(&mut u, &mut h, 3, 0x80);
        out(&mut u, &mut h, 0, 0x01);
        out(&mut u, &mut h, 1, 0x00);
        assert_eq!((inb(&mut u, &mut h, 0), inb(&mut u, &mut h, 1)), (0x01, 0x00));
        out(&mut u, &mut h, 3, 0x03);
        out(&mut u, &mut h, 2, 0xc7);
        out(&mut u, &mut h, 4, 0x0b);
        assert_eq!(u.divisor(), 1);
        assert_eq!(inb(&mut u, &mut h, 3), 0x03);
        assert_eq!(inb(&mut u, &mut h, 5), 0x60, "THRE | TEMT, no data");
        for &b in b"hi\n" {
            out(&mut u, &mut h, 0, b);
        }
        assert_eq!(buf.text(), "hi\n");
        assert_eq!(u.tx_count(), 3);
        // IIR with FIFOs on: bits 7..6 set, no interrupt (IER = 0).
        assert_eq!(inb(&mut u, &mut h, 2), 0xc1);
        out(&mut u, &mut h, 7, 0x5a);
        assert_eq!(inb(&mut u, &mut h, 7), 0x5a);
        assert!(!h.irq.level[4]);
    }

    #[test]
    fn thre_interrupt_after_enable_and_after_write() {
        let (mut u, _buf, mut h) = uart();
        out(&mut u, &mut h, 4, MCR_OUT2);
        out(&mut u, &mut h, 1, IER_THRE);
        assert!(h.irq.level[4], "enabling ETBEI with THR empty interrupts");
        assert_eq!(inb(&mut u, &mut h, 2), 0x02);
        assert!(!h.irq.level[4], "reading IIR clears the THRE interrupt");
        assert_eq!(inb(&mut u, &mut h, 2), 0x01);
        out(&mut u, &mut h, 0, b'x');
        assert!(h.irq.level[4]);
        assert_eq!(h.irq.rising[4], 2);
        // OUT2 low does not gate the line (as under QEMU; see the module doc).
        out(&mut u, &mut h, 4, 0);
        assert!(h.irq.level[4]);
        assert_eq!(inb(&mut u, &mut h, 2), 0x02);
        assert!(!h.irq.level[4]);
    }

    #[test]
    fn iir_priorities() {
        let (mut u, _buf, mut h) = uart();
        out(&mut u, &mut h, 4, MCR_OUT2);
        out(&mut u, &mut h, 1, 0x0f);
        // THRE (set by enabling ETBEI) and, via a loopback MCR change, modem status.
        out(&mut u, &mut h, 4, MCR_OUT2 | MCR_LOOP | MCR_RTS);
        // Two received bytes without FIFO: the second overruns.
        out(&mut u, &mut h, 0, b'a');
        out(&mut u, &mut h, 0, b'b');
        // Line status (overrun) first.
        assert_eq!(inb(&mut u, &mut h, 2), IIR_RLS);
        assert_eq!(inb(&mut u, &mut h, 5) & 0x03, LSR_OE | LSR_DR);
        // Then received data.
        assert_eq!(inb(&mut u, &mut h, 2), IIR_RDA);
        assert_eq!(inb(&mut u, &mut h, 0), b'a');
        // Then THR empty (reading IIR clears it).
        assert_eq!(inb(&mut u, &mut h, 2), IIR_THRE);
        // Then modem status: entering loopback with RTS and OUT2 set keeps CTS
        // and DCD asserted but drops DSR (DTR is clear): DDSR only.
        assert_eq!(inb(&mut u, &mut h, 2), IIR_MS);
        assert_eq!(inb(&mut u, &mut h, 6), 0x90 | 0x02);
        assert_eq!(inb(&mut u, &mut h, 2), IIR_NONE);
        assert!(!h.irq.level[4]);
    }

    #[test]
    fn loopback_and_fifo_trigger() {
        let (mut u, buf, mut h) = uart();
        out(&mut u, &mut h, 2, 0x41); // FIFO on, trigger 4
        out(&mut u, &mut h, 4, MCR_LOOP | MCR_OUT2);
        out(&mut u, &mut h, 1, IER_RDA);
        for b in 1..=3 {
            out(&mut u, &mut h, 0, b);
        }
        assert!(buf.contents().is_empty(), "loopback output does not leave the chip");
        // Below the trigger level: character timeout.
        assert_eq!(inb(&mut u, &mut h, 2), 0xc0 | IIR_TIMEOUT);
        out(&mut u, &mut h, 0, 4);
        assert_eq!(inb(&mut u, &mut h, 2), 0xc0 | IIR_RDA);
        // 16 bytes fit, the 17th overruns.
        for b in 5..=17 {
            out(&mut u, &mut h, 0, b);
        }
        assert_eq!(inb(&mut u, &mut h, 5) & 0x83, LSR_DR | LSR_OE);
        let got: Vec<u8> = (0..16).map(|_| inb(&mut u, &mut h, 0)).collect();
        assert_eq!(got, (1..=16).collect::<Vec<u8>>());
        assert_eq!(inb(&mut u, &mut h, 5) & LSR_DR, 0);
        // FCR bit 1 clears the receive FIFO.
        out(&mut u, &mut h, 0, 9);
        out(&mut u, &mut h, 2, 0x43);
        assert_eq!(inb(&mut u, &mut h, 5) & LSR_DR, 0);
    }

    #[test]
    fn host_input_fills_fifo_without_overrun() {
        let (mut u, _buf, mut h) = uart();
        out(&mut u, &mut h, 2, 0x01);
        out(&mut u, &mut h, 4, MCR_OUT2);
        u.queue_input(&[b'x'; 20]);
        // Nothing flows until the guest looks at the receiver.
        h.now = 1_000_000_000;
        u.advance(&mut h.ctx());
        assert_eq!(u.next_deadline(), None);
        assert!(!h.irq.level[4]);
        out(&mut u, &mut h, 1, IER_RDA);
        let c = u.char_ns();
        assert_eq!(c, 12 * 86_805, "10 bits at 9600 baud");
        assert_eq!(u.next_deadline(), Some(h.now + c));
        // Then one byte per character time; a long wait fills the FIFO and no more.
        h.now += c;
        u.advance(&mut h.ctx());
        assert!(h.irq.level[4]);
        h.now += 100 * c;
        u.advance(&mut h.ctx());
        assert_eq!(u.next_deadline(), None, "the FIFO is full: the rest waits");
        let mut n = 0;
        while inb(&mut u, &mut h, 5) & LSR_DR != 0 {
            assert_eq!(inb(&mut u, &mut h, 0), b'x');
            n += 1;
        }
        assert_eq!(n, 16);
        assert!(!h.irq.level[4]);
        // The four left arrive a character time after the read that made room, then one
        // per character time.
        assert_eq!(u.next_deadline(), Some(h.now + c));
        h.now += 4 * c;
        u.advance(&mut h.ctx());
        while inb(&mut u, &mut h, 5) & LSR_DR != 0 {
            assert_eq!(inb(&mut u, &mut h, 0), b'x');
            n += 1;
        }
        assert_eq!(n, 20);
        assert_eq!(inb(&mut u, &mut h, 5) & LSR_OE, 0);
    }

    #[test]
    fn each_byte_is_an_edge_without_a_fifo() {
        // xv6's order: receiver interrupt enabled (no FIFO), then the interrupt controller
        // unmasked later; bytes queued before. Each byte must raise the line anew.
        let (mut u, _buf, mut h) = uart();
        u.queue_input(b"ab");
        out(&mut u, &mut h, 1, IER_RDA);
        let c = u.char_ns();
        h.now += c;
        u.advance(&mut h.ctx());
        assert!(h.irq.level[4]);
        assert_eq!(inb(&mut u, &mut h, 0), b'a');
        assert!(!h.irq.level[4], "the line falls with the read");
        h.now += c - 1;
        u.advance(&mut h.ctx());
        assert!(!h.irq.level[4], "and rises only a character time later");
        h.now += 1;
        u.advance(&mut h.ctx());
        assert!(h.irq.level[4]);
        assert_eq!(inb(&mut u, &mut h, 0), b'b');
    }

    #[test]
    fn input_flows_only_while_the_guest_listens() {
        let (mut u, buf, mut h) = uart();
        u.queue_input(b"ls\n");
        let c = u.char_ns();
        // A kernel's console: LSR before each byte it sends. That is not listening.
        for &b in b"booting...\n" {
            assert_ne!(inb(&mut u, &mut h, 5) & LSR_THRE, 0);
            out(&mut u, &mut h, 0, b);
            h.now += 10 * c;
            u.advance(&mut h.ctx());
        }
        assert_eq!(buf.contents(), b"booting...\n");
        assert_eq!((u.next_deadline(), inb(&mut u, &mut h, 5) & LSR_DR), (None, 0));
        // A probe that enables every interrupt for a moment and resets the FIFO: nothing
        // arrives in the moment, so the reset loses nothing.
        out(&mut u, &mut h, 1, 0x0f);
        out(&mut u, &mut h, 1, 0);
        out(&mut u, &mut h, 2, 0x07);
        h.now += 10 * c;
        u.advance(&mut h.ctx());
        assert_eq!(inb(&mut u, &mut h, 5) & LSR_DR, 0);
        // The tty is opened: receive interrupt on, input arrives a character time later.
        out(&mut u, &mut h, 1, IER_RDA);
        assert_eq!(u.next_deadline(), Some(h.now + c));
        h.now += c;
        u.advance(&mut h.ctx());
        assert!(h.irq.level[4]);
        assert_eq!(inb(&mut u, &mut h, 0), b'l');
        // Interrupts off while the console prints: input waits, and arrives a character
        // time after they are back on.
        out(&mut u, &mut h, 1, 0);
        h.now += 10 * c;
        u.advance(&mut h.ctx());
        assert_eq!((u.next_deadline(), inb(&mut u, &mut h, 5) & LSR_DR), (None, 0));
        out(&mut u, &mut h, 1, IER_RDA);
        assert_eq!(u.next_deadline(), Some(h.now + c));
        h.now += c;
        u.advance(&mut h.ctx());
        assert_eq!(inb(&mut u, &mut h, 0), b's');
    }

    #[test]
    fn a_guest_spinning_on_lsr_is_a_polling_receiver() {
        let (mut u, _buf, mut h) = uart();
        u.queue_input(b"y");
        let c = u.char_ns();
        for _ in 1..POLL_STREAK {
            assert_eq!(inb(&mut u, &mut h, 5) & LSR_DR, 0);
        }
        assert_eq!(u.next_deadline(), None, "not yet");
        inb(&mut u, &mut h, 5);
        assert_eq!(u.next_deadline(), Some(h.now + c), "reads in a row without sending: polling");
        h.now += c;
        while inb(&mut u, &mut h, 5) & LSR_DR == 0 {}
        assert_eq!(inb(&mut u, &mut h, 0), b'y');
    }
}
