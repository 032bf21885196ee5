//! The High Precision Event Timer's main counter at 0xFED00000, where PCs and QEMU's
//! `pc` machine have it (IA-PC HPET Specification 1.0a, chapter 2.3 "Register
//! Descriptions"). A guest reads a free-running 64-bit counter of virtual time there.
//!
//! | offset | register | here |
//! |---|---|---|
//! | 0x000 | capabilities and ID | revision 1, one timer, 64-bit counter, no legacy replacement routing, vendor 0x8086, a period of 10 ns (100 MHz, as QEMU's) |
//! | 0x010 | general configuration | ENABLE_CNF (bit 0) starts and stops the counter; LEG_RT_CNF reads 0 |
//! | 0x020 | general interrupt status | always 0 |
//! | 0x0F0 | main counter | counts while enabled; writable while stopped |
//! | 0x100 | timer 0 configuration and capability | 64-bit capable, no interrupt route at all (Tn_INT_ROUTE_CAP = 0, no FSB delivery): the timer cannot interrupt, which is what the spec lets a timer say |
//! | 0x108 | timer 0 comparator | stored, compared with nothing |
//!
//! Registers are 64 bits wide and read or written as two dwords (or smaller pieces);
//! every other offset reads 0 and ignores writes. popek's firmware publishes no ACPI
//! HPET table, so only a guest that knows the address looks here (kvm-unit-tests'
//! `hpet_read_test` does).

#![allow(clippy::cast_possible_truncation, reason = "64-bit registers are read a dword at a time")]

use popek_memory::{AccessSize, PhysAddr};

use crate::bus::{DeviceContext, MmioDevice};

/// Counter period in femtoseconds (10 ns).
pub const PERIOD_FS: u64 = 10_000_000;
const PERIOD_NS: u64 = PERIOD_FS / 1_000_000;

/// Capabilities: REV_ID 1, NUM_TIM_CAP 0 (one timer), COUNT_SIZE_CAP, vendor 0x8086,
/// COUNTER_CLK_PERIOD.
const CAPABILITIES: u64 = (PERIOD_FS << 32) | (0x8086 << 16) | (1 << 13) | 1;
/// Timer 0's capability bits: Tn_SIZE_CAP (64-bit), nothing else.
const TIMER_CAPS: u64 = 1 << 5;
/// Timer 0's configuration bits the guest may set: Tn_INT_TYPE_CNF, Tn_INT_ENB_CNF,
/// Tn_TYPE_CNF, Tn_VAL_SET_CNF, Tn_32MODE_CNF (they select nothing that could fire).
const TIMER_WRITABLE: u64 = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 6) | (1 << 8);

/// The HPET (counter and one silent timer).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hpet {
    enabled: bool,
    /// The counter's value at `base_ns` (while enabled), or its value (while stopped).
    base_count: u64,
    base_ns: u64,
    timer_config: u64,
    comparator: u64,
}

impl Hpet {
    /// Where the registers are.
    pub const BASE: PhysAddr = PhysAddr(0xfed0_0000);
    /// Their size in bytes.
    pub const LEN: u32 = 0x400;

    /// The main counter at virtual time `now_ns`.
    pub fn counter(&self, now_ns: u64) -> u64 {
        if self.enabled {
            self.base_count.wrapping_add(now_ns.saturating_sub(self.base_ns) / PERIOD_NS)
        } else {
            self.base_count
        }
    }

    /// The 64-bit register holding byte `offset`, and its value.
    fn register(&self, offset: u32, now_ns: u64) -> u64 {
        match offset & !7 {
            0x000 => CAPABILITIES,
            0x010 => u64::from(self.enabled),
            0x0f0 => self.counter(now_ns),
            0x100 => TIMER_CAPS | self.timer_config,
            0x108 => self.comparator,
            _ => 0,
        }
    }
}

fn width(size: AccessSize) -> u32 {
    match size {
        AccessSize::Byte => 1,
        AccessSize::Word => 2,
        AccessSize::Dword => 4,
    }
}

impl MmioDevice for Hpet {
    fn name(&self) -> &'static str {
        "hpet"
    }

    fn read(&mut self, ctx: &mut DeviceContext<'_>, _: PhysAddr, offset: u32, size: AccessSize) -> u32 {
        let shift = 8 * (offset & 7);
        let v = self.register(offset, ctx.now_ns()) >> shift;
        let mask = if width(size) == 4 { u32::MAX } else { (1 << (8 * width(size))) - 1 };
        // An access that crosses into the next register reads zeros for those bytes.
        v as u32 & mask
    }

    fn write(&mut self, ctx: &mut DeviceContext<'_>, _: PhysAddr, offset: u32, size: AccessSize, value: u32) {
        let now = ctx.now_ns();
        let shift = 8 * (offset & 7);
        let bits = if width(size) == 4 { u64::from(u32::MAX) } else { (1u64 << (8 * width(size))) - 1 };
        let merge = |old: u64| (old & !(bits << shift)) | ((u64::from(value) & bits) << shift);
        match offset & !7 {
            0x010 => {
                let enable = merge(u64::from(self.enabled)) & 1 != 0;
                if enable != self.enabled {
                    // Freeze or restart the count where it stands.
                    self.base_count = self.counter(now);
                    self.base_ns = now;
                    self.enabled = enable;
                }
            }
            // The spec asks software to stop the counter before writing it; a write
            // while it runs restarts the count from the value written.
            0x0f0 => {
                self.base_count = merge(self.counter(now));
                self.base_ns = now;
            }
            0x100 => self.timer_config = merge(self.timer_config) & TIMER_WRITABLE,
            0x108 => self.comparator = merge(self.comparator),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;

    fn read64(h: &mut Harness, d: &mut Hpet, off: u32) -> u64 {
        let lo = d.read(&mut h.ctx(), Hpet::BASE, off, AccessSize::Dword);
        let hi = d.read(&mut h.ctx(), Hpet::BASE, off + 4, AccessSize::Dword);
        u64::from(hi) << 32 | u64::from(lo)
    }

    #[test]
    fn capabilities_say_one_silent_timer_and_a_10ns_period() {
        let mut h = Harness::default();
        let mut d = Hpet::default();
        let caps = read64(&mut h, &mut d, 0);
        assert_eq!(caps >> 32, PERIOD_FS);
        assert_eq!((caps >> 8) & 0x1f, 0, "one timer");
        assert_ne!(caps & (1 << 13), 0, "64-bit counter");
        assert_eq!(caps & (1 << 15), 0, "no legacy replacement route");
        assert_eq!(read64(&mut h, &mut d, 0x100) >> 32, 0, "timer 0 can be routed nowhere");
        // Setting every configuration bit keeps only the harmless ones.
        d.write(&mut h.ctx(), Hpet::BASE, 0x100, AccessSize::Dword, u32::MAX);
        assert_eq!(read64(&mut h, &mut d, 0x100), TIMER_CAPS | TIMER_WRITABLE);
        assert_eq!(d.read(&mut h.ctx(), Hpet::BASE, 0x200, AccessSize::Dword), 0, "nothing else");
    }

    #[test]
    fn counter_runs_only_while_enabled() {
        let mut h = Harness::default();
        let mut d = Hpet::default();
        h.now = 1_000;
        assert_eq!(read64(&mut h, &mut d, 0xf0), 0, "stopped at reset");
        d.write(&mut h.ctx(), Hpet::BASE, 0x10, AccessSize::Dword, 1);
        h.now = 1_000 + 10_000;
        assert_eq!(read64(&mut h, &mut d, 0xf0), 1_000, "10 µs = 1000 periods of 10 ns");
        assert_eq!(d.read(&mut h.ctx(), Hpet::BASE, 0x10, AccessSize::Byte), 1);
        d.write(&mut h.ctx(), Hpet::BASE, 0x10, AccessSize::Dword, 0);
        h.now += 50_000;
        assert_eq!(read64(&mut h, &mut d, 0xf0), 1_000, "frozen while disabled");
        // Written while stopped, then counting on from the value written.
        d.write(&mut h.ctx(), Hpet::BASE, 0xf4, AccessSize::Dword, 1);
        d.write(&mut h.ctx(), Hpet::BASE, 0x10, AccessSize::Dword, 1);
        h.now += 20;
        assert_eq!(read64(&mut h, &mut d, 0xf0), (1 << 32) + 1_000 + 2);
    }
}
