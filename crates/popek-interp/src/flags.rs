//! Arithmetic flags (SDM Vol. 1 3.4.3.1, Appendix A): computed eagerly, returned
//! as a value and committed only after the instruction can no longer fault.

use popek_cpu::Cpu;
use popek_cpu::operand::{mask, sign_bit};
use popek_cpu::state::flags::{AF, ARITH, CF, OF, PF, SF, ZF};

/// ZF, SF and PF of a `width`-byte result.
#[inline]
pub fn szp(r: u32, width: u32) -> u32 {
    let mut f = 0;
    if r & mask(width) == 0 {
        f |= ZF;
    }
    if r & sign_bit(width) != 0 {
        f |= SF;
    }
    if (r as u8).count_ones().is_multiple_of(2) {
        f |= PF;
    }
    f
}

/// `a + b + carry`: result and flags.
#[inline]
pub fn add(a: u32, b: u32, carry: u32, width: u32) -> (u32, u32) {
    let m = mask(width);
    let (a, b) = (a & m, b & m);
    let wide = a as u64 + b as u64 + carry as u64;
    let r = wide as u32 & m;
    let mut f = szp(r, width);
    if wide > m as u64 {
        f |= CF;
    }
    if (a ^ b ^ r) & 0x10 != 0 {
        f |= AF;
    }
    if (a ^ r) & (b ^ r) & sign_bit(width) != 0 {
        f |= OF;
    }
    (r, f)
}

/// `a - b - borrow`: result and flags (also CMP).
#[inline]
pub fn sub(a: u32, b: u32, borrow: u32, width: u32) -> (u32, u32) {
    let m = mask(width);
    let (a, b) = (a & m, b & m);
    let r = a.wrapping_sub(b).wrapping_sub(borrow) & m;
    let mut f = szp(r, width);
    if (a as u64) < b as u64 + borrow as u64 {
        f |= CF;
    }
    if (a ^ b ^ r) & 0x10 != 0 {
        f |= AF;
    }
    if (a ^ b) & (a ^ r) & sign_bit(width) != 0 {
        f |= OF;
    }
    (r, f)
}

/// Flags of a logical result (AND/OR/XOR/TEST): CF=OF=0, AF undefined (cleared).
#[inline]
pub fn logic(r: u32, width: u32) -> u32 {
    szp(r, width)
}

/// Replaces the bits of `which` in EFLAGS with those of `f`.
#[inline]
pub fn commit(cpu: &mut Cpu, which: u32, f: u32) {
    cpu.state.eflags = (cpu.state.eflags & !which) | (f & which);
}

/// Replaces all six arithmetic flags.
#[inline]
pub fn commit_arith(cpu: &mut Cpu, f: u32) {
    commit(cpu, ARITH, f);
}

/// Current CF as 0 or 1.
#[inline]
pub fn carry(cpu: &Cpu) -> u32 {
    cpu.state.eflags & CF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_flags_sdm_examples() {
        assert_eq!(add(0xff, 1, 0, 1), (0, ZF | CF | AF | PF));
        assert_eq!(add(0x7f, 1, 0, 1), (0x80, SF | OF | AF));
        assert_eq!(add(0xffff_ffff, 0, 1, 4), (0, ZF | CF | AF | PF));
    }

    #[test]
    fn sub_flags_sdm_examples() {
        assert_eq!(sub(0, 1, 0, 4), (0xffff_ffff, SF | CF | AF | PF));
        assert_eq!(sub(0x80, 1, 0, 1), (0x7f, OF | AF));
        assert_eq!(sub(5, 5, 0, 2), (0, ZF | PF));
    }
}
