//! 8254 programmable interval timer (channels 0–2 at 0x40–0x43) and the PC's
//! system control port B (0x61: channel 2 gate, speaker, channel 2 output).
//! Implements Intel 8254 datasheet (order 231164), "Control Word Format", "Read-Back Command",
//! "Counter Latch Command" and "Modes of Operation" 0–5; IBM PC/AT technical reference for port 0x61.
//!
//! Counters are not stepped: each channel remembers the tick at which its
//! count was loaded and derives count and OUT from the virtual clock (1.193182
//! MHz input). Channel 0's OUT drives IRQ 0; the 8259A sees one rising edge
//! per period in modes 2 and 3 (several periods elapsed between two
//! [`Pit::advance`] calls collapse into one edge, as they would in the 8259A's
//! IRR). BCD counting (four decades, 0 = 10000) is supported. A low gate
//! pauses modes 0 and 4 and a rising gate restarts modes 1, 2, 3 and 5;
//! modes 1 and 5 otherwise start at once (no wait for the first trigger).

#![allow(
    clippy::cast_possible_truncation,
    reason = "8-bit registers take the low byte of the data bus; 16-bit counts are split into bytes"
)]

use popek_memory::{AccessSize, Port};

use crate::bus::{DeviceContext, PortDevice};
use crate::clock::{ns_to_ticks, ticks_to_ns};

/// Input clock of the PC's 8254, in Hz.
pub const PIT_HZ: u64 = 1_193_182;

/// Access mode (control word bits 5..4) and the read/write byte toggles.
const RW_LSB: u8 = 1;
const RW_MSB: u8 = 2;
const RW_WORD: u8 = 3;

/// One 8254 counter.
#[derive(Debug, Clone)]
struct Channel {
    /// Initial count (1..=65536; a written 0 means 65536).
    count: u32,
    /// Tick at which the count was loaded.
    load_tick: u64,
    /// Operating mode 0..=5.
    mode: u8,
    /// Access mode (1 LSB, 2 MSB, 3 LSB then MSB).
    rw: u8,
    bcd: bool,
    gate: bool,
    /// Next byte read is the MSB (access mode 3).
    read_msb: bool,
    /// Next byte written is the MSB (access mode 3).
    write_msb: bool,
    write_lsb_value: u8,
    /// Latched count and which bytes of it remain to be read.
    latched: Option<(u16, u8)>,
    /// Latched status byte (read-back), read before any latched count.
    status: Option<u8>,
    /// A control word was written and no count loaded since.
    null_count: bool,
    /// OUT level before the first count after a control word (mode 0: low, others: high).
    idle_out: bool,
    /// Counting (a count has been loaded since the last control word).
    armed: bool,
    /// Tick up to which OUT edges have been reported (channel 0).
    reported_tick: u64,
    /// Tick at which the gate last went low (modes 0 and 4 pause while it is low).
    gate_low_tick: u64,
}

impl Channel {
    fn new(gate: bool) -> Self {
        Channel {
            count: 0x1_0000,
            load_tick: 0,
            mode: 3,
            rw: RW_WORD,
            bcd: false,
            gate,
            read_msb: false,
            write_msb: false,
            write_lsb_value: 0,
            latched: None,
            status: None,
            null_count: false,
            idle_out: true,
            armed: true,
            reported_tick: 0,
            gate_low_tick: 0,
        }
    }

    /// Clocks counted since the load at tick `now`: in modes 0 and 4 a low
    /// gate stops counting (and a count loaded while it is low waits).
    fn elapsed(&self, now: u64) -> u64 {
        let now = if !self.gate && matches!(self.mode, 0 | 4) {
            now.min(self.gate_low_tick.max(self.load_tick))
        } else {
            now
        };
        now.saturating_sub(self.load_tick)
    }

    /// Current counter value at tick `now`.
    fn counter(&self, now: u64) -> u16 {
        if !self.armed {
            return 0;
        }
        let d = self.elapsed(now);
        let c = u64::from(self.count);
        // The counter's modulus: 10^4 in BCD, 2^16 in binary.
        let m = if self.bcd { 10_000 } else { 0x1_0000 };
        let v = match self.mode {
            2 => c - d % c,
            3 => c - (2 * d) % c, // counts down by two, twice per period
            _ => (c + m - d % m) % m,
        } % m;
        if self.bcd {
            // Four decimal digits, one per nibble.
            ((v / 1000) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | (v % 10)) as u16
        } else {
            v as u16
        }
    }

    /// OUT level at tick `now`.
    fn out(&self, now: u64) -> bool {
        if !self.armed {
            return self.idle_out;
        }
        let d = self.elapsed(now);
        let c = u64::from(self.count);
        match self.mode {
            0 => d >= c,
            1 => d >= c,
            // Low for one clock when the count reaches 1.
            2 => d % c != c - 1,
            // High for the first half (rounded up), low for the second.
            3 => d % c < c.div_ceil(2),
            // 4, 5: low for one clock when the count reaches 0.
            _ => d != c,
        }
    }

    /// First tick > `after` at which OUT rises, if it ever does again.
    fn next_rising_edge(&self, after: u64) -> Option<u64> {
        if !self.armed {
            return None;
        }
        if !self.gate && matches!(self.mode, 0 | 4) {
            return None; // paused
        }
        let c = u64::from(self.count);
        let start = self.load_tick;
        match self.mode {
            0 | 1 => Some(start + c).filter(|&t| t > after),
            2 | 3 => {
                // Rises at the start of each new period: start + k*c, k >= 1.
                let d = after.saturating_sub(start);
                Some(start + (d / c + 1) * c)
            }
            _ => Some(start + c + 1).filter(|&t| t > after),
        }
    }

    fn load(&mut self, value: u16, now: u64) {
        let value = if self.bcd {
            // BCD digits (invalid nibbles count as their binary value).
            let n = |shift: u16| u32::from((value >> shift) & 0xf);
            n(12) * 1000 + n(8) * 100 + n(4) * 10 + n(0)
        } else {
            u32::from(value)
        };
        let max = if self.bcd { 10_000 } else { 0x1_0000 };
        self.count = if value == 0 { max } else { value };
        self.load_tick = now;
        self.reported_tick = now;
        self.null_count = false;
        self.armed = true;
    }

    fn latch_count(&mut self, now: u64) {
        if self.latched.is_none() {
            self.latched = Some((self.counter(now), self.rw));
        }
    }

    fn read(&mut self, now: u64) -> u8 {
        if let Some(s) = self.status.take() {
            return s;
        }
        if let Some((v, state)) = self.latched {
            let [lo, hi] = v.to_le_bytes();
            return match state {
                RW_LSB => {
                    self.latched = None;
                    lo
                }
                RW_MSB => {
                    self.latched = None;
                    hi
                }
                _ => {
                    self.latched = Some((v, RW_MSB));
                    lo
                }
            };
        }
        let [lo, hi] = self.counter(now).to_le_bytes();
        match self.rw {
            RW_LSB => lo,
            RW_MSB => hi,
            _ => {
                self.read_msb = !self.read_msb;
                if self.read_msb { lo } else { hi }
            }
        }
    }

    fn write(&mut self, v: u8, now: u64) {
        match self.rw {
            RW_LSB => self.load(u16::from(v), now),
            RW_MSB => self.load(u16::from(v) << 8, now),
            _ => {
                if self.write_msb {
                    self.load(u16::from_le_bytes([self.write_lsb_value, v]), now);
                } else {
                    self.write_lsb_value = v;
                    // Mode 0: writing the first byte stops the count (OUT stays low).
                    if self.mode == 0 {
                        self.armed = false;
                        self.idle_out = false;
                    }
                }
                self.write_msb = !self.write_msb;
            }
        }
    }

    fn control(&mut self, v: u8) {
        let rw = (v >> 4) & 3;
        self.rw = rw;
        self.mode = match (v >> 1) & 7 {
            6 => 2,
            7 => 3,
            m => m,
        };
        self.bcd = v & 1 != 0;
        self.read_msb = false;
        self.write_msb = false;
        self.latched = None;
        self.null_count = true;
        self.armed = false;
        self.idle_out = self.mode != 0;
    }

    fn status_byte(&self, now: u64) -> u8 {
        (u8::from(self.out(now)) << 7)
            | (u8::from(self.null_count) << 6)
            | (self.rw << 4)
            | (self.mode << 1)
            | u8::from(self.bcd)
    }

    fn set_gate(&mut self, gate: bool, now: u64) {
        if gate && !self.gate && self.armed {
            if matches!(self.mode, 0 | 4) {
                // Resume: the paused clocks do not count.
                let paused_from = self.gate_low_tick.max(self.load_tick);
                self.load_tick += now.saturating_sub(paused_from);
            } else {
                // Modes 1, 2, 3, 5 (re)start on a rising gate.
                self.load_tick = now;
                self.reported_tick = now;
            }
        }
        if !gate && self.gate {
            self.gate_low_tick = now;
        }
        self.gate = gate;
    }
}

/// The 8254 with the PC's wiring: channel 0 → IRQ 0, channel 2 → port 0x61.
#[derive(Debug, Clone)]
pub struct Pit {
    channels: [Channel; 3],
    /// Port 0x61 bits 0..3 as written (gate 2, speaker data, parity/IOCHK enables).
    port61: u8,
    irq0_level: bool,
}

impl Default for Pit {
    fn default() -> Self {
        Self::new()
    }
}

impl Pit {
    /// Ports: (base, count). The PIT at 0x40 and port B at 0x61.
    pub const PORT_RANGES: [(u16, u16); 2] = [(0x40, 4), (0x61, 1)];

    /// Power-on state (as QEMU resets it): every channel in mode 3 with count
    /// 65536, channels 0 and 1 gated on, channel 2 gated off.
    pub fn new() -> Self {
        Pit { channels: [Channel::new(true), Channel::new(true), Channel::new(false)], port61: 0, irq0_level: false }
    }

    /// Counter value of `channel` at virtual time `now_ns`.
    pub fn count_at(&self, channel: usize, now_ns: u64) -> u16 {
        self.channels[channel].counter(ns_to_ticks(now_ns, PIT_HZ))
    }

    /// OUT of `channel` at virtual time `now_ns`.
    pub fn out_at(&self, channel: usize, now_ns: u64) -> bool {
        self.channels[channel].out(ns_to_ticks(now_ns, PIT_HZ))
    }

    /// Port 0x61 bits 0–1 as last written (timer 2 gate, speaker data enable).
    pub fn speaker_bits(&self) -> u8 {
        self.port61 & 3
    }

    /// Bring IRQ 0 up to date: pulse it for a rising edge of OUT 0 since the
    /// last update, then leave it at OUT 0's level.
    fn update_irq0(&mut self, ctx: &mut DeviceContext<'_>) {
        let now = ns_to_ticks(ctx.now_ns(), PIT_HZ);
        let ch = &mut self.channels[0];
        let edge = ch.next_rising_edge(ch.reported_tick).is_some_and(|t| t <= now);
        if now > ch.reported_tick {
            ch.reported_tick = now;
        }
        let out = ch.out(now);
        if edge {
            if self.irq0_level {
                ctx.set_irq(0, false);
            }
            ctx.set_irq(0, true);
            self.irq0_level = true;
        }
        if out != self.irq0_level {
            ctx.set_irq(0, out);
            self.irq0_level = out;
        }
    }
}

impl PortDevice for Pit {
    fn name(&self) -> &'static str {
        "pit"
    }

    fn read(&mut self, ctx: &mut DeviceContext<'_>, base: Port, offset: u16, _: AccessSize) -> u32 {
        let now = ns_to_ticks(ctx.now_ns(), PIT_HZ);
        if base.0 == 0x61 {
            // Bit 4 toggles with DRAM refresh (every 15.085 µs); bit 5 is OUT 2.
            let refresh = (ctx.now_ns() / 15_085) & 1 == 1;
            let out2 = self.channels[2].out(now);
            return u32::from((self.port61 & 0x0f) | (u8::from(refresh) << 4) | (u8::from(out2) << 5));
        }
        match offset {
            0..=2 => self.channels[usize::from(offset)].read(now).into(),
            _ => 0xff, // the control word register cannot be read
        }
    }

    fn write(&mut self, ctx: &mut DeviceContext<'_>, base: Port, offset: u16, _: AccessSize, value: u32) {
        let now = ns_to_ticks(ctx.now_ns(), PIT_HZ);
        let v = value as u8;
        if base.0 == 0x61 {
            self.port61 = v & 0x0f;
            self.channels[2].set_gate(v & 1 != 0, now);
            return;
        }
        match offset {
            0..=2 => self.channels[usize::from(offset)].write(v, now),
            _ => {
                let sc = v >> 6;
                if sc == 3 {
                    // Read-back: bit 5 = !COUNT, bit 4 = !STATUS, bits 3..1 = counters.
                    for (i, ch) in self.channels.iter_mut().enumerate() {
                        if v & (2 << i) == 0 {
                            continue;
                        }
                        if v & 0x20 == 0 {
                            ch.latch_count(now);
                        }
                        if v & 0x10 == 0 && ch.status.is_none() {
                            ch.status = Some(ch.status_byte(now));
                        }
                    }
                } else if (v >> 4) & 3 == 0 {
                    self.channels[usize::from(sc)].latch_count(now);
                } else {
                    self.channels[usize::from(sc)].control(v);
                }
            }
        }
        self.update_irq0(ctx);
    }

    fn advance(&mut self, ctx: &mut DeviceContext<'_>) {
        self.update_irq0(ctx);
    }

    fn next_deadline(&self) -> Option<u64> {
        let ch = &self.channels[0];
        ch.next_rising_edge(ch.reported_tick).map(|t| ticks_to_ns(t, PIT_HZ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;

    fn out(pit: &mut Pit, h: &mut Harness, port: u16, v: u8) {
        let base = if port == 0x61 { 0x61 } else { 0x40 };
        pit.write(&mut h.ctx(), Port(base), port - base, AccessSize::Byte, v.into());
    }

    fn inb(pit: &mut Pit, h: &mut Harness, port: u16) -> u8 {
        let base = if port == 0x61 { 0x61 } else { 0x40 };
        pit.read(&mut h.ctx(), Port(base), port - base, AccessSize::Byte) as u8
    }

    /// ns at which `ticks` PIT clocks have elapsed.
    fn t(ticks: u64) -> u64 {
        ticks_to_ns(ticks, PIT_HZ)
    }

    #[test]
    fn mode2_one_edge_per_period() {
        let mut pit = Pit::new();
        let mut h = Harness::default();
        // Linux: 0x34 (ch0, lo/hi, mode 2), LATCH = 1193182/100 rounded = 11932.
        out(&mut pit, &mut h, 0x43, 0x34);
        out(&mut pit, &mut h, 0x40, (11932 & 0xff) as u8);
        out(&mut pit, &mut h, 0x40, (11932 >> 8) as u8);
        let before = h.irq.rising[0];
        // 1.01 virtual seconds in 1 ms steps: 1205113 ticks / 11932 = 100 full periods.
        for ms in 1..=1010u64 {
            h.now = ms * 1_000_000;
            pit.advance(&mut h.ctx());
        }
        assert_eq!(h.irq.rising[0] - before, 100);
        // The deadline is the next period boundary: tick 101 * 11932.
        assert_eq!(pit.next_deadline(), Some(t(101 * 11932)));
    }

    #[test]
    fn mode3_square_wave_and_deadline_skipping() {
        let mut pit = Pit::new();
        let mut h = Harness::default();
        out(&mut pit, &mut h, 0x43, 0x36);
        out(&mut pit, &mut h, 0x40, 100);
        out(&mut pit, &mut h, 0x40, 0);
        // Odd/even half periods: count 100 → high for 50 ticks, low for 50.
        assert!(pit.out_at(0, t(49)));
        assert!(!pit.out_at(0, t(50)));
        assert!(pit.out_at(0, t(100)));
        // Jumping from deadline to deadline (a halted CPU) gives one edge each.
        let before = h.irq.rising[0];
        for _ in 0..7 {
            h.now = pit.next_deadline().unwrap();
            pit.advance(&mut h.ctx());
        }
        assert_eq!(h.irq.rising[0] - before, 7);
        assert_eq!(h.now, t(700));
    }

    #[test]
    fn mode0_fires_once_and_latch_reads_known_count() {
        let mut pit = Pit::new();
        let mut h = Harness::default();
        out(&mut pit, &mut h, 0x43, 0x30); // ch0, lo/hi, mode 0
        assert!(!h.irq.level[0], "mode 0 OUT goes low on the control word");
        out(&mut pit, &mut h, 0x40, 0xe8);
        out(&mut pit, &mut h, 0x40, 0x03); // 1000
        h.now = t(300);
        out(&mut pit, &mut h, 0x43, 0x00); // latch ch0
        h.now = t(600); // the latch holds the value of tick 300
        assert_eq!(inb(&mut pit, &mut h, 0x40), (700 & 0xff) as u8);
        assert_eq!(inb(&mut pit, &mut h, 0x40), (700 >> 8) as u8);
        // Unlatched reads follow the counter: 1000 - 600 = 400.
        assert_eq!(inb(&mut pit, &mut h, 0x40), (400 & 0xff) as u8);
        assert_eq!(inb(&mut pit, &mut h, 0x40), (400 >> 8) as u8);
        assert_eq!(pit.next_deadline(), Some(t(1000)));
        for ticks in [999, 1000, 2000, 70000] {
            h.now = t(ticks);
            pit.advance(&mut h.ctx());
        }
        assert_eq!(h.irq.rising[0], 1, "terminal count raises OUT once");
        assert!(h.irq.level[0]);
        assert_eq!(pit.next_deadline(), None);
    }

    #[test]
    fn read_back_status_and_count() {
        let mut pit = Pit::new();
        let mut h = Harness::default();
        out(&mut pit, &mut h, 0x43, 0xb4); // ch2, lo/hi, mode 2
        // Status before the count: OUT high (mode 2), null count, RW 3, mode 2.
        out(&mut pit, &mut h, 0x43, 0xe8); // read-back status only, ch2
        assert_eq!(inb(&mut pit, &mut h, 0x42), 0b1111_0100);
        out(&mut pit, &mut h, 0x42, 0x10);
        out(&mut pit, &mut h, 0x42, 0x27); // 0x2710 = 10000
        h.now = t(1234);
        out(&mut pit, &mut h, 0x43, 0xc8); // read-back count and status, ch2
        h.now = t(5000);
        // Status first (count loaded: null count clear), then the latched count.
        assert_eq!(inb(&mut pit, &mut h, 0x42), 0b1011_0100);
        let lo = inb(&mut pit, &mut h, 0x42);
        let hi = inb(&mut pit, &mut h, 0x42);
        assert_eq!(u16::from_le_bytes([lo, hi]), 10000 - 1234);
        // LSB-only access mode on ch1: reads and writes the low byte only.
        out(&mut pit, &mut h, 0x43, 0x50); // ch1, LSB, mode 0
        h.now = t(6000);
        out(&mut pit, &mut h, 0x41, 200);
        h.now = t(6050);
        assert_eq!(inb(&mut pit, &mut h, 0x41), 150);
        // MSB-only: count 0x0300.
        out(&mut pit, &mut h, 0x43, 0x64); // ch1, MSB, mode 2
        out(&mut pit, &mut h, 0x41, 0x03);
        assert_eq!(inb(&mut pit, &mut h, 0x41), 0x03);
    }

    #[test]
    fn port61_gate_and_output_of_channel2() {
        // Linux's PIT TSC calibration: gate on, speaker off, ch2 mode 0,
        // then poll port 0x61 bit 5 until OUT 2 goes high.
        let mut pit = Pit::new();
        let mut h = Harness::default();
        let v = inb(&mut pit, &mut h, 0x61);
        out(&mut pit, &mut h, 0x61, (v & !0x02) | 0x01);
        out(&mut pit, &mut h, 0x43, 0xb0);
        out(&mut pit, &mut h, 0x42, 0x9b); // 0x2e9b = 11931 (10 ms)
        out(&mut pit, &mut h, 0x42, 0x2e);
        h.now = t(11930);
        assert_eq!(inb(&mut pit, &mut h, 0x61) & 0x21, 0x01);
        h.now = t(11931);
        assert_eq!(inb(&mut pit, &mut h, 0x61) & 0x21, 0x21);
        assert_eq!(pit.speaker_bits(), 0x01);
        // Mode 2 on ch2: a rising gate restarts the count.
        out(&mut pit, &mut h, 0x43, 0xb4);
        out(&mut pit, &mut h, 0x42, 100);
        out(&mut pit, &mut h, 0x42, 0);
        out(&mut pit, &mut h, 0x61, 0x00);
        h.now = t(20000);
        out(&mut pit, &mut h, 0x61, 0x01);
        h.now = t(20010);
        assert_eq!(pit.count_at(2, h.now), 90);
        // DRAM refresh bit toggles every 15.085 µs.
        h.now = 15_085;
        let a = inb(&mut pit, &mut h, 0x61) & 0x10;
        h.now = 2 * 15_085;
        let b = inb(&mut pit, &mut h, 0x61) & 0x10;
        assert_eq!((a, b), (0x10, 0x00));
    }

    #[test]
    fn mode0_gate_low_pauses_counting() {
        let mut pit = Pit::new();
        let mut h = Harness::default();
        // Channel 2's gate (port 0x61 bit 0) is low at power-on.
        out(&mut pit, &mut h, 0x43, 0xb0); // ch2, lo/hi, mode 0
        out(&mut pit, &mut h, 0x42, 0xe8);
        out(&mut pit, &mut h, 0x42, 0x03); // 1000
        assert_eq!(pit.count_at(2, t(500)), 1000, "loaded with the gate low: waits");
        h.now = t(500);
        out(&mut pit, &mut h, 0x61, 0x01);
        assert_eq!(pit.count_at(2, t(800)), 700);
        h.now = t(800);
        out(&mut pit, &mut h, 0x61, 0x00);
        assert_eq!(pit.count_at(2, t(2000)), 700, "paused");
        assert!(!pit.out_at(2, t(2000)));
        h.now = t(2000);
        out(&mut pit, &mut h, 0x61, 0x01);
        assert!(!pit.out_at(2, t(2699)));
        assert!(pit.out_at(2, t(2700)));
    }

    #[test]
    fn bcd_counting() {
        let mut pit = Pit::new();
        let mut h = Harness::default();
        out(&mut pit, &mut h, 0x43, 0x71); // ch1, lo/hi, mode 0, BCD
        out(&mut pit, &mut h, 0x41, 0x00);
        out(&mut pit, &mut h, 0x41, 0x10); // 1000 decimal
        h.now = t(300);
        assert_eq!((inb(&mut pit, &mut h, 0x41), inb(&mut pit, &mut h, 0x41)), (0x00, 0x07));
        assert!(pit.out_at(1, t(1000)) && !pit.out_at(1, t(999)));
        // Count 0 is 10000 in BCD: one tick later the counter reads 9999.
        out(&mut pit, &mut h, 0x41, 0x00);
        out(&mut pit, &mut h, 0x41, 0x00);
        h.now = t(301);
        assert_eq!((inb(&mut pit, &mut h, 0x41), inb(&mut pit, &mut h, 0x41)), (0x99, 0x99));
        h.now = t(300 + 10_001); // loaded at 300: wraps past zero to 9999 again
        assert_eq!((inb(&mut pit, &mut h, 0x41), inb(&mut pit, &mut h, 0x41)), (0x99, 0x99));
    }

    #[test]
    fn mode4_strobe() {
        let mut pit = Pit::new();
        let mut h = Harness::default();
        out(&mut pit, &mut h, 0x43, 0x38); // ch0, lo/hi, mode 4
        out(&mut pit, &mut h, 0x40, 10);
        out(&mut pit, &mut h, 0x40, 0);
        assert!(pit.out_at(0, t(9)));
        assert!(!pit.out_at(0, t(10)));
        assert!(pit.out_at(0, t(11)));
        h.now = t(50);
        pit.advance(&mut h.ctx());
        assert_eq!(pit.next_deadline(), None);
    }
}
