//! Virtual time helpers: converting between nanoseconds and device clock ticks.
//!
//! Virtual time is a `u64` count of nanoseconds since power-on, chosen by the
//! machine (derived from retired instructions by default). Devices derive their
//! counters from it with these exact integer conversions, so a given time
//! always gives the same device state.

/// Nanoseconds per second.
pub const NS_PER_SEC: u64 = 1_000_000_000;

/// Ticks of a `hz` clock that have elapsed at `ns` (floor).
#[inline]
pub fn ns_to_ticks(ns: u64, hz: u64) -> u64 {
    // ns = q s + r ns: q * hz ticks, then floor(r * hz / 1e9), exact, in u64 arithmetic
    // (a division by a constant, so a multiplication) while r * hz fits: any clock
    // below 18 GHz. Devices ask on every deadline check, so no 128-bit division here.
    if hz <= u64::MAX / NS_PER_SEC {
        let (q, r) = (ns / NS_PER_SEC, ns % NS_PER_SEC);
        return q.saturating_mul(hz).saturating_add(r * hz / NS_PER_SEC);
    }
    let ticks = u128::from(ns) * u128::from(hz) / u128::from(NS_PER_SEC);
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// The first nanosecond at which tick `ticks` of a `hz` clock has elapsed
/// (ceiling, so `ns_to_ticks(ticks_to_ns(t, hz), hz) >= t`).
#[inline]
pub fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    // ticks = q hz + r: q seconds, then ceil(r * 1e9 / hz), exact in u64 (r < hz).
    if hz != 0 && hz <= u64::MAX / NS_PER_SEC {
        let (q, r) = (ticks / hz, ticks % hz);
        return q.saturating_mul(NS_PER_SEC).saturating_add((r * NS_PER_SEC).div_ceil(hz));
    }
    let ns = (u128::from(ticks) * u128::from(NS_PER_SEC)).div_ceil(u128::from(hz));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Virtual time derived from a count of retired instructions at a fixed rate
/// (`insns_per_sec`), the deterministic default clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstructionClock {
    /// Guest instructions per virtual second.
    pub insns_per_sec: u64,
}

impl InstructionClock {
    /// Virtual nanoseconds after `insns` retired instructions.
    #[inline]
    pub fn ns_at(self, insns: u64) -> u64 {
        // Fast paths for rates that divide, or are multiples of, 1 GHz: the run loop asks
        // once per block. The default, 1 GHz, needs no division at all.
        if self.insns_per_sec == NS_PER_SEC {
            return insns;
        }
        if self.insns_per_sec != 0 && NS_PER_SEC.is_multiple_of(self.insns_per_sec) {
            return insns.saturating_mul(NS_PER_SEC / self.insns_per_sec);
        }
        let ns = u128::from(insns) * u128::from(NS_PER_SEC) / u128::from(self.insns_per_sec.max(1));
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
    /// Instructions to retire before virtual time reaches `ns` (to size an
    /// instruction budget up to a timer deadline).
    #[inline]
    pub fn insns_until(self, ns: u64) -> u64 {
        if self.insns_per_sec == NS_PER_SEC {
            return ns;
        }
        if self.insns_per_sec != 0 && NS_PER_SEC.is_multiple_of(self.insns_per_sec) {
            return ns.div_ceil(NS_PER_SEC / self.insns_per_sec);
        }
        let n = (u128::from(ns) * u128::from(self.insns_per_sec)).div_ceil(u128::from(NS_PER_SEC));
        u64::try_from(n).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The u64 paths give what exact 128-bit arithmetic gives, saturating at u64::MAX.
    #[test]
    fn conversions_equal_the_wide_arithmetic() {
        let wide_ticks = |ns: u64, hz: u64| {
            u64::try_from(u128::from(ns) * u128::from(hz) / u128::from(NS_PER_SEC)).unwrap_or(u64::MAX)
        };
        let wide_ns = |t: u64, hz: u64| {
            u64::try_from((u128::from(t) * u128::from(NS_PER_SEC)).div_ceil(u128::from(hz))).unwrap_or(u64::MAX)
        };
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let rates = [1, 32_768, 1_193_182, 3_579_545, 100_000_000, 1_000_000_000, 3_000_000_000, 18_000_000_000];
        for _ in 0..20_000 {
            let v = next() >> (next() % 64);
            for hz in rates.into_iter().chain([next() % 18_000_000_000 + 1]) {
                assert_eq!(ns_to_ticks(v, hz), wide_ticks(v, hz), "ns_to_ticks({v}, {hz})");
                assert_eq!(ticks_to_ns(v, hz), wide_ns(v, hz), "ticks_to_ns({v}, {hz})");
            }
        }
    }

    #[test]
    fn conversions_round_trip() {
        let pit = 1_193_182;
        assert_eq!(ns_to_ticks(NS_PER_SEC, pit), pit);
        assert_eq!(ns_to_ticks(837, pit), 0); // one tick is 838.095 ns
        assert_eq!(ns_to_ticks(839, pit), 1);
        assert_eq!(ticks_to_ns(1, pit), 839);
        for t in [1, 2, 65536, 1_193_182, 123_456_789] {
            let ns = ticks_to_ns(t, pit);
            assert_eq!(ns_to_ticks(ns, pit), t);
            assert_eq!(ns_to_ticks(ns - 1, pit), t - 1);
        }
        let c = InstructionClock { insns_per_sec: 100_000_000 };
        assert_eq!(c.ns_at(100_000_000), NS_PER_SEC);
        assert_eq!(c.ns_at(3), 30);
        assert_eq!(c.insns_until(31), 4);
        // The fast paths (rates dividing 1 GHz) agree with the exact 128-bit arithmetic.
        for rate in [1_000_000_000u64, 500_000_000, 100_000_000, 3_000_000_000, 7_000_000] {
            let c = InstructionClock { insns_per_sec: rate };
            for x in [0u64, 1, 2, 999, 1_000_001, 123_456_789_012] {
                let ns = u64::try_from(u128::from(x) * u128::from(NS_PER_SEC) / u128::from(rate)).unwrap();
                let insns = u64::try_from((u128::from(x) * u128::from(rate)).div_ceil(u128::from(NS_PER_SEC))).unwrap();
                assert_eq!(c.ns_at(x), ns, "ns_at({x}) at {rate}");
                assert_eq!(c.insns_until(x), insns, "insns_until({x}) at {rate}");
            }
        }
    }
}
