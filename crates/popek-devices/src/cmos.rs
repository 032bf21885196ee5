//! MC146818 real-time clock and CMOS RAM (index 0x70 with NMI mask bit 7, data 0x71, IRQ 8).
//! Implements the Motorola MC146818A datasheet: "Address Map" (time, alarm, registers A–D),
//! Table 3 (BCD/binary, 12/24-hour), "Periodic Interrupt Selection" (Table 5), "Update Cycle";
//! PC CMOS layout (IBM PC/AT technical reference, QEMU `mc146818rtc.c`) for the memory-size bytes.
//!
//! The time is never stepped: it is `epoch + virtual time`, computed when read
//! (the epoch is a fixed date by default, so runs are deterministic). Writing
//! the time (typically with status B SET) moves the epoch. The flags of status
//! C (periodic, alarm, update-ended) are derived from the virtual clock when C
//! is read or time advances; IRQ 8 is asserted while IRQF is set, until C is read.

#![allow(
    clippy::cast_possible_truncation,
    reason = "8-bit registers take the low byte of the data bus; calendar fields are range-checked by construction"
)]

use popek_memory::{AccessSize, Port};

use crate::bus::{DeviceContext, PortDevice};
use crate::clock::{NS_PER_SEC, ns_to_ticks, ticks_to_ns};

/// Default epoch: 2000-01-01 00:00:00 UTC, in seconds since 1970-01-01.
pub const DEFAULT_EPOCH: i64 = 946_684_800;

/// The RTC's time base (its 32.768 kHz crystal).
const RTC_HZ: u64 = 32_768;
/// UIP goes high this long before each update (datasheet: 244 µs).
const UIP_LEAD_NS: u64 = 244_000;

const REG_A: usize = 0x0a;
const REG_B: usize = 0x0b;
const REG_C: usize = 0x0c;
const REG_D: usize = 0x0d;
const REG_CENTURY: usize = 0x32;

const B_SET: u8 = 0x80;
const B_PIE: u8 = 0x40;
const B_AIE: u8 = 0x20;
const B_UIE: u8 = 0x10;
const B_BINARY: u8 = 0x04;
const B_24H: u8 = 0x02;

const C_IRQF: u8 = 0x80;
const C_PF: u8 = 0x40;
const C_AF: u8 = 0x20;
const C_UF: u8 = 0x10;

/// Broken-down calendar time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Full year, e.g. 2000.
    pub year: i64,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=59.
    pub second: u32,
    /// 0 = Sunday .. 6 = Saturday.
    pub weekday: u32,
}

impl DateTime {
    /// The calendar time `secs` seconds after 1970-01-01 00:00:00 UTC.
    pub fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        // All of these are small and non-negative by construction.
        DateTime {
            year,
            month: month as u32,
            day: day as u32,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }

    /// Seconds since 1970-01-01 00:00:00 UTC (weekday ignored).
    pub fn to_unix(&self) -> i64 {
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = if m <= 2 { self.year - 1 } else { self.year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = if m > 2 { m - 3 } else { m + 9 };
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400 + i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second)
    }
}

fn to_bcd(v: u32) -> u8 {
    // Callers pass 0..=99.
    (((v / 10) << 4) | (v % 10)) as u8
}

fn from_bcd(v: u8) -> u32 {
    u32::from(v >> 4) * 10 + u32::from(v & 0x0f)
}

/// The MC146818 with 128 bytes of CMOS RAM.
#[derive(Debug, Clone)]
pub struct Cmos {
    ram: [u8; 128],
    index: u8,
    nmi_disabled: bool,
    /// Wall-clock seconds at virtual time 0.
    base_secs: i64,
    /// Virtual time up to which the status C flags are computed.
    flags_ns: u64,
    irq_level: bool,
}

impl Cmos {
    /// Ports: index and data.
    pub const PORTS: (u16, u16) = (0x70, 2);

    /// A CMOS for a machine with `ram_size` bytes of RAM whose clock reads
    /// `epoch_secs` (seconds since 1970) at virtual time 0.
    pub fn new(ram_size: u64, epoch_secs: i64) -> Self {
        let mut c =
            Cmos { ram: [0; 128], index: 0, nmi_disabled: false, base_secs: epoch_secs, flags_ns: 0, irq_level: false };
        c.ram[REG_A] = 0x26; // 32.768 kHz divider, 1024 Hz periodic rate
        c.ram[REG_B] = B_24H;
        c.ram[REG_D] = 0x80; // VRT: the battery is fine
        c.set_memory_size(ram_size);
        c
    }

    /// Fill the PC memory-size bytes from the RAM size and fix the checksum.
    pub fn set_memory_size(&mut self, ram_size: u64) {
        const MIB: u64 = 1 << 20;
        let base_kb: u16 = 640;
        let ext_kb = u16::try_from(ram_size.saturating_sub(MIB) / 1024).unwrap_or(u16::MAX);
        let above_16m = u16::try_from(ram_size.saturating_sub(16 * MIB) / 65_536).unwrap_or(u16::MAX);
        for (lo, v) in [(0x15, base_kb), (0x17, ext_kb), (0x30, ext_kb), (0x34, above_16m)] {
            self.ram[lo..lo + 2].copy_from_slice(&v.to_le_bytes());
        }
        let sum: u16 = self.ram[0x10..=0x2d].iter().map(|&b| u16::from(b)).sum();
        self.ram[0x2e..=0x2f].copy_from_slice(&sum.to_be_bytes());
    }

    /// True if the last index write had bit 7 set (NMI disabled).
    pub fn nmi_disabled(&self) -> bool {
        self.nmi_disabled
    }

    /// The wall-clock time at virtual time `now_ns`.
    pub fn time_at(&self, now_ns: u64) -> DateTime {
        DateTime::from_unix(self.unix_at(now_ns))
    }

    fn unix_at(&self, now_ns: u64) -> i64 {
        // now_ns / 1e9 < 2^35: fits.
        self.base_secs + (now_ns / NS_PER_SEC) as i64
    }

    fn binary(&self) -> bool {
        self.ram[REG_B] & B_BINARY != 0
    }

    fn encode(&self, v: u32) -> u8 {
        // Callers pass 0..=99.
        if self.binary() { v as u8 } else { to_bcd(v) }
    }

    fn decode(&self, v: u8) -> u32 {
        if self.binary() { u32::from(v) } else { from_bcd(v) }
    }

    fn encode_hour(&self, h: u32) -> u8 {
        if self.ram[REG_B] & B_24H != 0 {
            self.encode(h)
        } else {
            let h12 = if h.is_multiple_of(12) { 12 } else { h % 12 };
            self.encode(h12) | if h >= 12 { 0x80 } else { 0 }
        }
    }

    fn decode_hour(&self, v: u8) -> u32 {
        if self.ram[REG_B] & B_24H != 0 {
            self.decode(v)
        } else {
            self.decode(v & 0x7f) % 12 + if v & 0x80 != 0 { 12 } else { 0 }
        }
    }

    /// Time registers (0, 2, 4, 6, 7, 8, 9, 0x32) for time `t` in the current format.
    fn time_regs(&self, t: &DateTime) -> [(usize, u8); 8] {
        // rem_euclid(100) is 0..=99; the century of years 0..9999 is too.
        let yy = t.year.rem_euclid(100) as u32;
        let cc = t.year.div_euclid(100).rem_euclid(100) as u32;
        [
            (0x00, self.encode(t.second)),
            (0x02, self.encode(t.minute)),
            (0x04, self.encode_hour(t.hour)),
            (0x06, self.encode(t.weekday + 1)),
            (0x07, self.encode(t.day)),
            (0x08, self.encode(t.month)),
            (0x09, self.encode(yy)),
            (REG_CENTURY, self.encode(cc)),
        ]
    }

    fn is_time_reg(i: usize) -> bool {
        matches!(i, 0x00 | 0x02 | 0x04 | 0x06..=0x09 | REG_CENTURY)
    }

    /// Copy the running time into the time registers (entering SET mode).
    fn snapshot(&mut self, now_ns: u64) {
        let t = self.time_at(now_ns);
        for (i, v) in self.time_regs(&t) {
            self.ram[i] = v;
        }
    }

    /// Restart the clock from the time registers (leaving SET mode).
    fn resync(&mut self, now_ns: u64) {
        let r = &self.ram;
        let year = i64::from(self.decode(r[REG_CENTURY])) * 100 + i64::from(self.decode(r[0x09]));
        let t = DateTime {
            year,
            month: self.decode(r[0x08]).clamp(1, 12),
            day: self.decode(r[0x07]).clamp(1, 31),
            hour: self.decode_hour(r[0x04]),
            minute: self.decode(r[0x02]),
            second: self.decode(r[0x00]),
            weekday: 0,
        };
        self.base_secs = t.to_unix() - (now_ns / NS_PER_SEC) as i64;
    }

    /// Periodic interrupt period in 32.768 kHz ticks (Table 5), if enabled.
    fn periodic_ticks(&self) -> Option<u64> {
        match self.ram[REG_A] & 0x0f {
            0 => None,
            rs @ 1..=2 => Some(1 << (rs + 6)),
            rs => Some(1 << (rs - 1)),
        }
    }

    fn alarm_matches(&self, t: &DateTime) -> bool {
        let regs = self.time_regs(t);
        // Alarm byte 1/3/5 against seconds/minutes/hours; 0xC0..=0xFF is "don't care".
        [(0x01, regs[0].1), (0x03, regs[1].1), (0x05, regs[2].1)]
            .iter()
            .all(|&(a, now)| self.ram[a] >= 0xc0 || self.ram[a] == now)
    }

    /// Set the status C flags for everything that happened up to `now_ns`.
    fn update_flags(&mut self, now_ns: u64) {
        if now_ns <= self.flags_ns {
            return;
        }
        let last = self.flags_ns;
        self.flags_ns = now_ns;
        let mut c = self.ram[REG_C];
        if let Some(p) = self.periodic_ticks()
            && ns_to_ticks(now_ns, RTC_HZ) / p > ns_to_ticks(last, RTC_HZ) / p
        {
            c |= C_PF;
        }
        if self.ram[REG_B] & B_SET == 0 && now_ns / NS_PER_SEC > last / NS_PER_SEC {
            c |= C_UF;
            // The alarm is compared at each update; check the latest one.
            let t = self.time_at(now_ns);
            if self.alarm_matches(&t) {
                c |= C_AF;
            }
        }
        self.ram[REG_C] = c;
        self.refresh_irqf();
    }

    /// IRQF = PF·PIE + AF·AIE + UF·UIE.
    fn refresh_irqf(&mut self) {
        let (b, c) = (self.ram[REG_B], self.ram[REG_C]);
        if (c & C_PF != 0 && b & B_PIE != 0) || (c & C_AF != 0 && b & B_AIE != 0) || (c & C_UF != 0 && b & B_UIE != 0) {
            self.ram[REG_C] |= C_IRQF;
        }
    }

    fn update_irq(&mut self, ctx: &mut DeviceContext<'_>) {
        let level = self.ram[REG_C] & C_IRQF != 0;
        if level != self.irq_level {
            self.irq_level = level;
            ctx.set_irq(8, level);
        }
    }

    fn read_data(&mut self, now_ns: u64) -> u8 {
        let i = usize::from(self.index);
        match i {
            _ if Self::is_time_reg(i) && self.ram[REG_B] & B_SET == 0 => {
                let t = self.time_at(now_ns);
                self.time_regs(&t).iter().find(|r| r.0 == i).map_or(0, |r| r.1)
            }
            REG_A => {
                let frac = now_ns % NS_PER_SEC;
                let uip = self.ram[REG_B] & B_SET == 0 && frac >= NS_PER_SEC - UIP_LEAD_NS;
                self.ram[REG_A] | if uip { 0x80 } else { 0 }
            }
            REG_C => {
                let v = self.ram[REG_C];
                self.ram[REG_C] = 0;
                v
            }
            _ => self.ram[i],
        }
    }

    fn write_data(&mut self, now_ns: u64, v: u8) {
        let i = usize::from(self.index);
        match i {
            REG_A => self.ram[REG_A] = v & 0x7f,
            REG_B => {
                let old = self.ram[REG_B];
                if v & B_SET != 0 && old & B_SET == 0 {
                    self.snapshot(now_ns);
                }
                // SET clears UIE (datasheet, register B bit 7).
                self.ram[REG_B] = if v & B_SET != 0 { v & !B_UIE } else { v };
                if v & B_SET == 0 && old & B_SET != 0 {
                    self.resync(now_ns);
                }
            }
            REG_C | REG_D => {} // read-only
            _ if Self::is_time_reg(i) && self.ram[REG_B] & B_SET == 0 => {
                self.snapshot(now_ns);
                self.ram[i] = v;
                self.resync(now_ns);
            }
            _ => self.ram[i] = v,
        }
    }
}

impl PortDevice for Cmos {
    fn name(&self) -> &'static str {
        "cmos-rtc"
    }

    fn read(&mut self, ctx: &mut DeviceContext<'_>, _: Port, offset: u16, _: AccessSize) -> u32 {
        if offset == 0 {
            return 0xff; // the index register is write-only
        }
        let now = ctx.now_ns();
        self.update_flags(now);
        let v = self.read_data(now);
        self.update_irq(ctx);
        v.into()
    }

    fn write(&mut self, ctx: &mut DeviceContext<'_>, _: Port, offset: u16, _: AccessSize, value: u32) {
        let v = value as u8;
        let now = ctx.now_ns();
        if offset == 0 {
            self.index = v & 0x7f;
            self.nmi_disabled = v & 0x80 != 0;
            return;
        }
        self.update_flags(now);
        self.write_data(now, v);
        // Enabling an interrupt whose flag is already set raises IRQF.
        self.refresh_irqf();
        self.update_irq(ctx);
    }

    fn advance(&mut self, ctx: &mut DeviceContext<'_>) {
        self.update_flags(ctx.now_ns());
        self.update_irq(ctx);
    }

    fn next_deadline(&self) -> Option<u64> {
        if self.irq_level {
            return None; // nothing changes until the guest reads status C
        }
        let b = self.ram[REG_B];
        let now = self.flags_ns;
        let periodic = self.periodic_ticks().filter(|_| b & B_PIE != 0).map(|p| {
            let next = (ns_to_ticks(now, RTC_HZ) / p + 1) * p;
            ticks_to_ns(next, RTC_HZ)
        });
        let update = (b & (B_UIE | B_AIE) != 0 && b & B_SET == 0).then(|| (now / NS_PER_SEC + 1) * NS_PER_SEC);
        periodic.into_iter().chain(update).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;

    fn out(c: &mut Cmos, h: &mut Harness, port: u16, v: u8) {
        c.write(&mut h.ctx(), Port(0x70), port - 0x70, AccessSize::Byte, v.into());
    }

    fn reg(c: &mut Cmos, h: &mut Harness, i: u8) -> u8 {
        out(c, h, 0x70, i);
        c.read(&mut h.ctx(), Port(0x70), 1, AccessSize::Byte) as u8
    }

    /// 2024-02-29 13:45:30 UTC, a Thursday.
    const LEAP_AFTERNOON: i64 = 1_709_214_330;

    #[test]
    fn calendar_conversion() {
        let t = DateTime::from_unix(LEAP_AFTERNOON);
        assert_eq!((t.year, t.month, t.day, t.hour, t.minute, t.second, t.weekday), (2024, 2, 29, 13, 45, 30, 4));
        assert_eq!(t.to_unix(), LEAP_AFTERNOON);
        let e = DateTime::from_unix(DEFAULT_EPOCH);
        assert_eq!((e.year, e.month, e.day, e.weekday), (2000, 1, 1, 6)); // a Saturday
        assert_eq!(DateTime::from_unix(0).weekday, 4); // 1970-01-01 was a Thursday
    }

    #[test]
    fn bcd_and_binary_time_at_virtual_time() {
        let mut c = Cmos::new(128 << 20, LEAP_AFTERNOON);
        let mut h = Harness { now: 90 * NS_PER_SEC + 5, ..Default::default() }; // 13:47:00
        let bcd: Vec<u8> =
            [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32].iter().map(|&i| reg(&mut c, &mut h, i)).collect();
        assert_eq!(bcd, vec![0x00, 0x47, 0x13, 0x05, 0x29, 0x02, 0x24, 0x20]);
        // Binary mode (status B bit 2).
        out(&mut c, &mut h, 0x70, 0x0b);
        out(&mut c, &mut h, 0x71, B_24H | B_BINARY);
        let bin: Vec<u8> = [0x00, 0x02, 0x04, 0x07, 0x09].iter().map(|&i| reg(&mut c, &mut h, i)).collect();
        assert_eq!(bin, vec![0, 47, 13, 29, 24]);
        // 12-hour BCD: 1 PM is 0x81.
        out(&mut c, &mut h, 0x70, 0x0b);
        out(&mut c, &mut h, 0x71, 0x00);
        assert_eq!(reg(&mut c, &mut h, 0x04), 0x81);
        // Midnight in 12-hour mode reads 12 AM.
        let mut m = Cmos::new(0, DEFAULT_EPOCH);
        out(&mut m, &mut h, 0x70, 0x0b);
        out(&mut m, &mut h, 0x71, 0x00);
        h.now = 0;
        assert_eq!(reg(&mut m, &mut h, 0x04), 0x12);
    }

    #[test]
    fn set_mode_writes_the_time() {
        let mut c = Cmos::new(0, DEFAULT_EPOCH);
        let mut h = Harness::default();
        out(&mut c, &mut h, 0x70, 0x0b);
        out(&mut c, &mut h, 0x71, B_SET | B_24H);
        for (i, v) in [(0x00, 0x59), (0x02, 0x59), (0x04, 0x23), (0x07, 0x31), (0x08, 0x12), (0x09, 0x99), (0x32, 0x19)]
        {
            out(&mut c, &mut h, 0x70, i);
            out(&mut c, &mut h, 0x71, v);
        }
        h.now = 3 * NS_PER_SEC; // frozen while SET
        assert_eq!(reg(&mut c, &mut h, 0x00), 0x59);
        out(&mut c, &mut h, 0x70, 0x0b);
        out(&mut c, &mut h, 0x71, B_24H);
        h.now = 4 * NS_PER_SEC; // one second later: the new millennium
        assert_eq!(reg(&mut c, &mut h, 0x09), 0x00);
        assert_eq!(reg(&mut c, &mut h, 0x32), 0x20);
        assert_eq!(reg(&mut c, &mut h, 0x08), 0x01);
    }

    #[test]
    fn status_registers_and_uip() {
        let mut c = Cmos::new(0, DEFAULT_EPOCH);
        let mut h = Harness::default();
        assert_eq!(reg(&mut c, &mut h, 0x0a), 0x26);
        assert_eq!(reg(&mut c, &mut h, 0x0b), 0x02);
        assert_eq!(reg(&mut c, &mut h, 0x0d), 0x80);
        h.now = NS_PER_SEC - 244_001;
        assert_eq!(reg(&mut c, &mut h, 0x0a), 0x26);
        h.now = NS_PER_SEC - 244_000;
        assert_eq!(reg(&mut c, &mut h, 0x0a), 0xa6, "UIP 244 µs before the update");
        // Index bit 7 is the NMI mask, not part of the index.
        out(&mut c, &mut h, 0x70, 0x8d);
        assert!(c.nmi_disabled());
        assert_eq!(c.read(&mut h.ctx(), Port(0x70), 1, AccessSize::Byte), 0x80);
        // Status C: the update-ended flag after a second, cleared by reading.
        h.now = 2 * NS_PER_SEC;
        assert_eq!(reg(&mut c, &mut h, 0x0c), C_UF | C_PF, "flags are set even with interrupts off");
        assert_eq!(reg(&mut c, &mut h, 0x0c), 0);
        assert!(!h.irq.level[8]);
    }

    #[test]
    fn periodic_interrupt_on_irq8() {
        let mut c = Cmos::new(0, DEFAULT_EPOCH);
        let mut h = Harness::default();
        // Rate 1024 Hz (A = 0x26), enable PIE.
        out(&mut c, &mut h, 0x70, 0x0b);
        out(&mut c, &mut h, 0x71, B_24H | B_PIE);
        // 1024 Hz = 32 ticks of 32.768 kHz = 976562.5 ns.
        assert_eq!(c.next_deadline(), Some(976_563));
        let mut irqs = 0;
        for _ in 0..10 {
            h.now = c.next_deadline().unwrap();
            c.advance(&mut h.ctx());
            assert!(h.irq.level[8]);
            assert_eq!(c.next_deadline(), None, "nothing new until C is read");
            assert_eq!(reg(&mut c, &mut h, 0x0c) & (C_IRQF | C_PF), C_IRQF | C_PF);
            assert!(!h.irq.level[8]);
            irqs += 1;
        }
        assert_eq!(irqs, h.irq.rising[8]);
        // Ten periods of 976562.5 ns.
        assert_eq!(h.now, 9_765_625);
    }

    #[test]
    fn memory_size_bytes() {
        let mut c = Cmos::new(128 << 20, DEFAULT_EPOCH);
        let mut h = Harness::default();
        let r: Vec<u8> =
            [0x15, 0x16, 0x17, 0x18, 0x30, 0x31, 0x34, 0x35].iter().map(|&i| reg(&mut c, &mut h, i)).collect();
        // 640 KiB; 127 MiB = 130048 KiB capped at 0xFFFF; (128-16) MiB / 64 KiB = 1792 = 0x700.
        assert_eq!(r, vec![0x80, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0x07]);
        let mut s = Cmos::new(32 << 20, DEFAULT_EPOCH);
        // 31 MiB = 31744 KiB = 0x7C00; 16 MiB above 16 MiB = 256 = 0x100.
        let r: Vec<u8> = [0x17, 0x18, 0x34, 0x35, 0x2e, 0x2f].iter().map(|&i| reg(&mut s, &mut h, i)).collect();
        let sum = 0x80u16 + 0x02 + 0x7c; // 0x15, 0x16, 0x18 (0x17 is 0)
        assert_eq!(r, vec![0x00, 0x7c, 0x00, 0x01, (sum >> 8) as u8, sum as u8]);
    }
}
