//! Shifts and rotates: SHL/SAL SHR SAR ROL ROR RCL RCR SHLD SHRD (SDM Vol. 2B "SAL/SAR/SHL/SHR",
//! Vol. 2B "RCL/RCR/ROL/ROR", "SHLD", "SHRD").
//!
//! The count (1, CL or imm8) is masked to 5 bits; a masked count of 0 leaves the
//! destination and all flags unchanged (a memory destination is still read, so it
//! can fault, but not written). RCL/RCR rotate through CF modulo 9 (bytes), 17
//! (words) or 33 (dwords); ROL/ROR rotate modulo the width but set CF (and OF)
//! whenever the masked count is non-zero.
//!
//! Flags and results the SDM leaves undefined are [`crate::undefined`]'s choices, which
//! follow Bochs's model of Intel P6-and-later CPUs:
//! - OF for counts other than 1: SHL/SAL, ROL, RCL, SHLD: `CF ^ MSB(result)`;
//!   SHR, ROR, RCR, SHRD: `MSB(result) ^ MSB-1(result)`; SAR: 0. (For count 1
//!   these formulas are the SDM's definitions.)
//! - CF of SHL/SHR when the count exceeds the width (8/16-bit operands): the bit
//!   that a wider shift would move out, i.e. 0 (SAR: the sign bit).
//! - AF after SHL/SHR/SAR/SHLD/SHRD: cleared. Rotates leave SF/ZF/AF/PF alone.
//! - SHLD/SHRD with a 16-bit operand and a count of 17..31: the P6+ result,
//!   which shifts the 48-bit value `dst:src:src` left (SHLD) or `dst:src:dst`
//!   right (SHRD) by the count and keeps its top (SHLD) or bottom (SHRD) 16 bits;
//!   CF is the last bit shifted out of that window.

use crate::{flags, undefined};
use popek_cpu::access::Width;
use popek_cpu::iced_x86::{Instruction, Mnemonic, OpKind, Register};
use popek_cpu::operand::{mask, op_width, sign_bit, sign_extend};
use popek_cpu::state::flags::{ARITH, CF, OF};
use popek_cpu::state::gpr::ECX;
use popek_cpu::{Bus, Cpu, ExecResult, Handler};

const SHL: u8 = 0;
const SHR: u8 = 1;
const SAR: u8 = 2;
const ROL: u8 = 3;
const ROR: u8 = 4;
const RCL: u8 = 5;
const RCR: u8 = 6;

/// The handler for `insn` if it belongs to this group, specialised by operation,
/// count source (CL or immediate) and operand width.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    let by_cl = |n: u32| insn.op_kind(n) == OpKind::Register && insn.op_register(n) == Register::CL;
    let w = op_width(insn, 0);
    Some(match insn.mnemonic() {
        Mnemonic::Shl | Mnemonic::Sal => pick::<SHL>(by_cl(1), w),
        Mnemonic::Shr => pick::<SHR>(by_cl(1), w),
        Mnemonic::Sar => pick::<SAR>(by_cl(1), w),
        Mnemonic::Rol => pick::<ROL>(by_cl(1), w),
        Mnemonic::Ror => pick::<ROR>(by_cl(1), w),
        Mnemonic::Rcl => pick::<RCL>(by_cl(1), w),
        Mnemonic::Rcr => pick::<RCR>(by_cl(1), w),
        Mnemonic::Shld => pick_double::<true>(by_cl(2), w),
        Mnemonic::Shrd => pick_double::<false>(by_cl(2), w),
        _ => return None,
    })
}

/// The [`shift`] instance for `OP`, the count source and the width.
fn pick<const OP: u8>(by_cl: bool, w: Width) -> Handler {
    match (by_cl, w) {
        (false, 1) => shift::<OP, false, 1>,
        (false, 2) => shift::<OP, false, 2>,
        (false, _) => shift::<OP, false, 4>,
        (true, 1) => shift::<OP, true, 1>,
        (true, 2) => shift::<OP, true, 2>,
        (true, _) => shift::<OP, true, 4>,
    }
}

/// The [`double`] instance for the direction, the count source and the width.
fn pick_double<const LEFT: bool>(by_cl: bool, w: Width) -> Handler {
    match (by_cl, w) {
        (false, 2) => double::<LEFT, false, 2>,
        (false, _) => double::<LEFT, false, 4>,
        (true, 2) => double::<LEFT, true, 2>,
        (true, _) => double::<LEFT, true, 4>,
    }
}

/// The count operand `n`: CL or the immediate (1 for the by-one forms), masked to 5 bits.
#[inline(always)]
fn count<const BY_CL: bool>(cpu: &Cpu, insn: &Instruction, n: u32) -> u32 {
    let c = if BY_CL { cpu.state.gpr[ECX] } else { insn.immediate(n) as u32 };
    c & 0x1f
}

/// SHL/SHR/SAR/ROL/ROR/RCL/RCR r/m, count (`W`-byte operand).
fn shift<const OP: u8, const BY_CL: bool, const W: Width>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    insn: &Instruction,
) -> ExecResult {
    let c = count::<BY_CL>(cpu, insn, 1);
    let a = cpu.read_op(bus, insn, 0, W)?;
    if let Some((r, f, which)) = compute::<OP>(a, c, W, flags::carry(cpu)) {
        cpu.write_op(bus, insn, 0, W, r)?;
        flags::commit(cpu, which, f);
    }
    Ok(())
}

/// Result, flags and the set of flags written by shift/rotate `OP` of the
/// `w`-byte value `a` by the masked count `c`, with carry-in `cf`; `None` if the
/// instruction changes nothing.
#[inline(always)]
fn compute<const OP: u8>(a: u32, c: u32, w: Width, cf: u32) -> Option<(u32, u32, u32)> {
    if c == 0 {
        return None;
    }
    let bits = w * 8;
    let m = mask(w);
    let sb = sign_bit(w);
    let a = a & m;
    // OF for counts other than 1 is undefined: the table's choices (for 1, the SDM's).
    let of_right = |r: u32| undefined::of_right(r, w);
    let of_left = |r: u32, cf: u32| undefined::of_left(r, cf, w);
    Some(match OP {
        SHL => {
            let wide = (a as u64) << c;
            let r = wide as u32 & m;
            let cf = (wide >> bits) as u32 & 1;
            (r, flags::szp(r, w) | cf | of_left(r, cf), ARITH)
        }
        SHR => {
            let r = a >> c;
            let cf = ((a as u64) >> (c - 1)) as u32 & 1;
            (r, flags::szp(r, w) | cf | of_right(r), ARITH)
        }
        SAR => {
            let s = sign_extend(a, w) as i32;
            let r = (s >> c) as u32 & m;
            let cf = (s >> (c - 1)) as u32 & 1;
            (r, flags::szp(r, w) | cf, ARITH)
        }
        ROL | ROR => {
            let k = c & (bits - 1);
            let r = if OP == ROL {
                ((a << k) | a.checked_shr(bits - k).unwrap_or(0)) & m
            } else {
                ((a >> k) | a.checked_shl(bits - k).unwrap_or(0)) & m
            };
            let f = if OP == ROL {
                let cf = r & 1;
                cf | of_left(r, cf)
            } else {
                let cf = (r & sb != 0) as u32;
                cf | of_right(r)
            };
            (r, f, CF | OF)
        }
        _ => {
            // RCL / RCR: rotate the (bits+1)-bit value CF:a.
            let n = bits + 1;
            let k = c % n;
            if k == 0 {
                return None;
            }
            let v = ((cf as u64) << bits) | a as u64;
            let all = (1u64 << n) - 1;
            let v = if OP == RCL { (v << k) | (v >> (n - k)) } else { (v >> k) | (v << (n - k)) } & all;
            let r = v as u32 & m;
            let cf = (v >> bits) as u32;
            let of = if OP == RCL { of_left(r, cf) } else { of_right(r) };
            (r, cf | of, CF | OF)
        }
    })
}

/// SHLD (`LEFT`) / SHRD r/m, reg, imm8|CL (`W`-byte operands).
fn double<const LEFT: bool, const BY_CL: bool, const W: Width>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    insn: &Instruction,
) -> ExecResult {
    let c = count::<BY_CL>(cpu, insn, 2);
    let a = cpu.read_op(bus, insn, 0, W)?;
    if c == 0 {
        return Ok(());
    }
    let b = cpu.read_gpr(insn.op_register(1));
    let (r, f) = compute_double(LEFT, a, b, c, W);
    cpu.write_op(bus, insn, 0, W, r)?;
    flags::commit_arith(cpu, f);
    Ok(())
}

/// Result and flags of SHLD (`left`) / SHRD of destination `a` with source `b`,
/// `w` = 2 or 4 bytes, masked count `c` in 1..=31.
#[inline(always)]
fn compute_double(left: bool, a: u32, b: u32, c: u32, w: Width) -> (u32, u32) {
    let m = mask(w);
    let (a, b) = (a & m, b & m);
    let (r, cf) = match (left, w) {
        (true, 4) => {
            let v = ((a as u64) << 32) | b as u64;
            (((v << c) >> 32) as u32, (v >> (64 - c)) as u32 & 1)
        }
        (false, 4) => {
            let v = ((b as u64) << 32) | a as u64;
            ((v >> c) as u32, (v >> (c - 1)) as u32 & 1)
        }
        // 16-bit: a 48-bit value so that counts 17..31 give the P6+ result.
        (true, _) => {
            let v = ((a as u64) << 32) | ((b as u64) << 16) | b as u64;
            (((v << c) >> 32) as u32 & m, (v >> (48 - c)) as u32 & 1)
        }
        (false, _) => {
            let v = ((a as u64) << 32) | ((b as u64) << 16) | a as u64;
            ((v >> c) as u32 & m, (v >> (c - 1)) as u32 & 1)
        }
    };
    let of = if left { undefined::of_left(r, cf, w) } else { undefined::of_right(r, w) };
    (r, flags::szp(r, w) | cf | of)
}

#[cfg(test)]
mod tests {
    use crate::testing::{DATA_BASE, TestBox};
    use popek_cpu::state::flags::{AF, ARITH, CF, OF, PF, SF, ZF};
    use popek_cpu::state::gpr::{EAX, ECX, EDX};

    /// One instruction on EAX/AX/AL (count in CL or the immediate, SHLD/SHRD source in EDX).
    /// Only the flags in `fmask` are compared: the SDM-defined ones, plus the ones the
    /// instruction must leave unchanged.
    struct Case {
        bytes: &'static [u8],
        eax: u32,
        ecx: u32,
        edx: u32,
        fin: u32,
        eax_out: u32,
        fout: u32,
        fmask: u32,
    }

    fn check(cases: &[Case]) {
        for (i, c) in cases.iter().enumerate() {
            let mut t = TestBox::new(c.bytes);
            t.cpu.state.gpr[EAX] = c.eax;
            t.cpu.state.gpr[ECX] = c.ecx;
            t.cpu.state.gpr[EDX] = c.edx;
            t.cpu.state.eflags = (t.cpu.state.eflags & !ARITH) | c.fin;
            t.run(4).unwrap_or_else(|e| panic!("case {i} {:02x?}: {e:?}", c.bytes));
            let s = &t.cpu.state;
            assert_eq!(s.gpr[EAX], c.eax_out, "case {i} {:02x?}: result", c.bytes);
            assert_eq!(s.gpr[ECX], c.ecx, "case {i} {:02x?}: ECX", c.bytes);
            assert_eq!(s.gpr[EDX], c.edx, "case {i} {:02x?}: EDX", c.bytes);
            assert_eq!(s.eflags & c.fmask, c.fout, "case {i} {:02x?}: flags {:#x}", c.bytes, s.eflags);
        }
    }

    /// SHL SHR SAR ROL ROR RCL RCR at widths 8/16/32, counts 0 (imm8), 1 (by-one form),
    /// 33 (CL, masked to 1) and middle/oversized counts (imm8); expected values follow
    /// the SDM's bit-by-bit pseudocode.
    #[test]
    #[rustfmt::skip]
    fn shifts_and_rotates() {
        check(&[
            Case { bytes: &[0xc0, 0xe0, 0x00], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0081, fout: PF | AF | SF, fmask: ARITH }, // shl w1 count 0 cf=0
            Case { bytes: &[0xc0, 0xe0, 0x00], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead004d, fout: CF | ZF | OF, fmask: ARITH }, // shl w1 count 0 cf=1
            Case { bytes: &[0xd0, 0xe0], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0002, fout: CF | OF, fmask: CF | PF | ZF | SF | OF }, // shl w1 count 1 cf=1
            Case { bytes: &[0xd0, 0xe0], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead009a, fout: PF | SF | OF, fmask: CF | PF | ZF | SF | OF }, // shl w1 count 1 cf=0
            Case { bytes: &[0xd2, 0xe0], eax: 0xdead0081, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0002, fout: CF | OF, fmask: CF | PF | ZF | SF | OF }, // shl w1 count 33 cf=0
            Case { bytes: &[0xd2, 0xe0], eax: 0xdead004d, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead009a, fout: PF | SF | OF, fmask: CF | PF | ZF | SF | OF }, // shl w1 count 33 cf=1
            Case { bytes: &[0xc0, 0xe0, 0x03], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0008, fout: 0, fmask: CF | PF | ZF | SF }, // shl w1 count 3 cf=1
            Case { bytes: &[0xc0, 0xe0, 0x03], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead0068, fout: 0, fmask: CF | PF | ZF | SF }, // shl w1 count 3 cf=0
            Case { bytes: &[0xc0, 0xe0, 0x09], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0000, fout: PF | ZF, fmask: PF | ZF | SF }, // shl w1 count 9 cf=0
            Case { bytes: &[0xc0, 0xe0, 0x09], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead0000, fout: PF | ZF, fmask: PF | ZF | SF }, // shl w1 count 9 cf=1
            Case { bytes: &[0xc0, 0xe0, 0x0c], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0000, fout: PF | ZF, fmask: PF | ZF | SF }, // shl w1 count 12 cf=1
            Case { bytes: &[0xc0, 0xe0, 0x0c], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead0000, fout: PF | ZF, fmask: PF | ZF | SF }, // shl w1 count 12 cf=0
            Case { bytes: &[0x66, 0xc1, 0xe0, 0x00], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead8421, fout: PF | AF | SF, fmask: ARITH }, // shl w2 count 0 cf=0
            Case { bytes: &[0x66, 0xc1, 0xe0, 0x00], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead7fb3, fout: CF | ZF | OF, fmask: ARITH }, // shl w2 count 0 cf=1
            Case { bytes: &[0x66, 0xd1, 0xe0], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0842, fout: CF | PF | OF, fmask: CF | PF | ZF | SF | OF }, // shl w2 count 1 cf=1
            Case { bytes: &[0x66, 0xd1, 0xe0], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdeadff66, fout: PF | SF | OF, fmask: CF | PF | ZF | SF | OF }, // shl w2 count 1 cf=0
            Case { bytes: &[0x66, 0xd3, 0xe0], eax: 0xdead8421, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0842, fout: CF | PF | OF, fmask: CF | PF | ZF | SF | OF }, // shl w2 count 33 cf=0
            Case { bytes: &[0x66, 0xd3, 0xe0], eax: 0xdead7fb3, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdeadff66, fout: PF | SF | OF, fmask: CF | PF | ZF | SF | OF }, // shl w2 count 33 cf=1
            Case { bytes: &[0x66, 0xc1, 0xe0, 0x07], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead1080, fout: 0, fmask: CF | PF | ZF | SF }, // shl w2 count 7 cf=1
            Case { bytes: &[0x66, 0xc1, 0xe0, 0x07], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdeadd980, fout: CF | SF, fmask: CF | PF | ZF | SF }, // shl w2 count 7 cf=0
            Case { bytes: &[0x66, 0xc1, 0xe0, 0x11], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0000, fout: PF | ZF, fmask: PF | ZF | SF }, // shl w2 count 17 cf=0
            Case { bytes: &[0x66, 0xc1, 0xe0, 0x11], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead0000, fout: PF | ZF, fmask: PF | ZF | SF }, // shl w2 count 17 cf=1
            Case { bytes: &[0xc1, 0xe0, 0x00], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0x80000001, fout: PF | AF | SF, fmask: ARITH }, // shl w4 count 0 cf=0
            Case { bytes: &[0xc1, 0xe0, 0x00], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0x5a3c96e1, fout: CF | ZF | OF, fmask: ARITH }, // shl w4 count 0 cf=1
            Case { bytes: &[0xd1, 0xe0], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0x2, fout: CF | OF, fmask: CF | PF | ZF | SF | OF }, // shl w4 count 1 cf=1
            Case { bytes: &[0xd1, 0xe0], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xb4792dc2, fout: SF | OF, fmask: CF | PF | ZF | SF | OF }, // shl w4 count 1 cf=0
            Case { bytes: &[0xd3, 0xe0], eax: 0x80000001, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0x2, fout: CF | OF, fmask: CF | PF | ZF | SF | OF }, // shl w4 count 33 cf=0
            Case { bytes: &[0xd3, 0xe0], eax: 0x5a3c96e1, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xb4792dc2, fout: SF | OF, fmask: CF | PF | ZF | SF | OF }, // shl w4 count 33 cf=1
            Case { bytes: &[0xc1, 0xe0, 0x0d], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0x2000, fout: PF, fmask: CF | PF | ZF | SF }, // shl w4 count 13 cf=1
            Case { bytes: &[0xc1, 0xe0, 0x0d], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0x92dc2000, fout: CF | PF | SF, fmask: CF | PF | ZF | SF }, // shl w4 count 13 cf=0
            Case { bytes: &[0xc1, 0xe0, 0x1f], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0x80000000, fout: PF | SF, fmask: CF | PF | ZF | SF }, // shl w4 count 31 cf=0
            Case { bytes: &[0xc1, 0xe0, 0x1f], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0x80000000, fout: PF | SF, fmask: CF | PF | ZF | SF }, // shl w4 count 31 cf=1
            Case { bytes: &[0xc0, 0xe8, 0x00], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0081, fout: PF | AF | SF, fmask: ARITH }, // shr w1 count 0 cf=0
            Case { bytes: &[0xc0, 0xe8, 0x00], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead004d, fout: CF | ZF | OF, fmask: ARITH }, // shr w1 count 0 cf=1
            Case { bytes: &[0xd0, 0xe8], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0040, fout: CF | OF, fmask: CF | PF | ZF | SF | OF }, // shr w1 count 1 cf=1
            Case { bytes: &[0xd0, 0xe8], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead0026, fout: CF, fmask: CF | PF | ZF | SF | OF }, // shr w1 count 1 cf=0
            Case { bytes: &[0xd2, 0xe8], eax: 0xdead0081, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0040, fout: CF | OF, fmask: CF | PF | ZF | SF | OF }, // shr w1 count 33 cf=0
            Case { bytes: &[0xd2, 0xe8], eax: 0xdead004d, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead0026, fout: CF, fmask: CF | PF | ZF | SF | OF }, // shr w1 count 33 cf=1
            Case { bytes: &[0xc0, 0xe8, 0x03], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0010, fout: 0, fmask: CF | PF | ZF | SF }, // shr w1 count 3 cf=1
            Case { bytes: &[0xc0, 0xe8, 0x03], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead0009, fout: CF | PF, fmask: CF | PF | ZF | SF }, // shr w1 count 3 cf=0
            Case { bytes: &[0xc0, 0xe8, 0x09], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0000, fout: PF | ZF, fmask: PF | ZF | SF }, // shr w1 count 9 cf=0
            Case { bytes: &[0xc0, 0xe8, 0x09], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead0000, fout: PF | ZF, fmask: PF | ZF | SF }, // shr w1 count 9 cf=1
            Case { bytes: &[0xc0, 0xe8, 0x0c], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0000, fout: PF | ZF, fmask: PF | ZF | SF }, // shr w1 count 12 cf=1
            Case { bytes: &[0xc0, 0xe8, 0x0c], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead0000, fout: PF | ZF, fmask: PF | ZF | SF }, // shr w1 count 12 cf=0
            Case { bytes: &[0x66, 0xc1, 0xe8, 0x00], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead8421, fout: PF | AF | SF, fmask: ARITH }, // shr w2 count 0 cf=0
            Case { bytes: &[0x66, 0xc1, 0xe8, 0x00], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead7fb3, fout: CF | ZF | OF, fmask: ARITH }, // shr w2 count 0 cf=1
            Case { bytes: &[0x66, 0xd1, 0xe8], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead4210, fout: CF | OF, fmask: CF | PF | ZF | SF | OF }, // shr w2 count 1 cf=1
            Case { bytes: &[0x66, 0xd1, 0xe8], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead3fd9, fout: CF, fmask: CF | PF | ZF | SF | OF }, // shr w2 count 1 cf=0
            Case { bytes: &[0x66, 0xd3, 0xe8], eax: 0xdead8421, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead4210, fout: CF | OF, fmask: CF | PF | ZF | SF | OF }, // shr w2 count 33 cf=0
            Case { bytes: &[0x66, 0xd3, 0xe8], eax: 0xdead7fb3, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead3fd9, fout: CF, fmask: CF | PF | ZF | SF | OF }, // shr w2 count 33 cf=1
            Case { bytes: &[0x66, 0xc1, 0xe8, 0x07], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0108, fout: 0, fmask: CF | PF | ZF | SF }, // shr w2 count 7 cf=1
            Case { bytes: &[0x66, 0xc1, 0xe8, 0x07], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead00ff, fout: PF, fmask: CF | PF | ZF | SF }, // shr w2 count 7 cf=0
            Case { bytes: &[0x66, 0xc1, 0xe8, 0x11], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0000, fout: PF | ZF, fmask: PF | ZF | SF }, // shr w2 count 17 cf=0
            Case { bytes: &[0x66, 0xc1, 0xe8, 0x11], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead0000, fout: PF | ZF, fmask: PF | ZF | SF }, // shr w2 count 17 cf=1
            Case { bytes: &[0xc1, 0xe8, 0x00], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0x80000001, fout: PF | AF | SF, fmask: ARITH }, // shr w4 count 0 cf=0
            Case { bytes: &[0xc1, 0xe8, 0x00], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0x5a3c96e1, fout: CF | ZF | OF, fmask: ARITH }, // shr w4 count 0 cf=1
            Case { bytes: &[0xd1, 0xe8], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0x40000000, fout: CF | PF | OF, fmask: CF | PF | ZF | SF | OF }, // shr w4 count 1 cf=1
            Case { bytes: &[0xd1, 0xe8], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0x2d1e4b70, fout: CF, fmask: CF | PF | ZF | SF | OF }, // shr w4 count 1 cf=0
            Case { bytes: &[0xd3, 0xe8], eax: 0x80000001, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0x40000000, fout: CF | PF | OF, fmask: CF | PF | ZF | SF | OF }, // shr w4 count 33 cf=0
            Case { bytes: &[0xd3, 0xe8], eax: 0x5a3c96e1, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0x2d1e4b70, fout: CF, fmask: CF | PF | ZF | SF | OF }, // shr w4 count 33 cf=1
            Case { bytes: &[0xc1, 0xe8, 0x0d], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0x40000, fout: PF, fmask: CF | PF | ZF | SF }, // shr w4 count 13 cf=1
            Case { bytes: &[0xc1, 0xe8, 0x0d], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0x2d1e4, fout: CF | PF, fmask: CF | PF | ZF | SF }, // shr w4 count 13 cf=0
            Case { bytes: &[0xc1, 0xe8, 0x1f], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0x1, fout: 0, fmask: CF | PF | ZF | SF }, // shr w4 count 31 cf=0
            Case { bytes: &[0xc1, 0xe8, 0x1f], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0x0, fout: CF | PF | ZF, fmask: CF | PF | ZF | SF }, // shr w4 count 31 cf=1
            Case { bytes: &[0xc0, 0xf8, 0x00], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0081, fout: PF | AF | SF, fmask: ARITH }, // sar w1 count 0 cf=0
            Case { bytes: &[0xc0, 0xf8, 0x00], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead004d, fout: CF | ZF | OF, fmask: ARITH }, // sar w1 count 0 cf=1
            Case { bytes: &[0xd0, 0xf8], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead00c0, fout: CF | PF | SF, fmask: CF | PF | ZF | SF | OF }, // sar w1 count 1 cf=1
            Case { bytes: &[0xd0, 0xf8], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead0026, fout: CF, fmask: CF | PF | ZF | SF | OF }, // sar w1 count 1 cf=0
            Case { bytes: &[0xd2, 0xf8], eax: 0xdead0081, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead00c0, fout: CF | PF | SF, fmask: CF | PF | ZF | SF | OF }, // sar w1 count 33 cf=0
            Case { bytes: &[0xd2, 0xf8], eax: 0xdead004d, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead0026, fout: CF, fmask: CF | PF | ZF | SF | OF }, // sar w1 count 33 cf=1
            Case { bytes: &[0xc0, 0xf8, 0x03], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead00f0, fout: PF | SF, fmask: CF | PF | ZF | SF }, // sar w1 count 3 cf=1
            Case { bytes: &[0xc0, 0xf8, 0x03], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead0009, fout: CF | PF, fmask: CF | PF | ZF | SF }, // sar w1 count 3 cf=0
            Case { bytes: &[0xc0, 0xf8, 0x09], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead00ff, fout: PF | SF, fmask: PF | ZF | SF }, // sar w1 count 9 cf=0
            Case { bytes: &[0xc0, 0xf8, 0x09], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead0000, fout: PF | ZF, fmask: PF | ZF | SF }, // sar w1 count 9 cf=1
            Case { bytes: &[0xc0, 0xf8, 0x0c], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead00ff, fout: PF | SF, fmask: PF | ZF | SF }, // sar w1 count 12 cf=1
            Case { bytes: &[0xc0, 0xf8, 0x0c], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead0000, fout: PF | ZF, fmask: PF | ZF | SF }, // sar w1 count 12 cf=0
            Case { bytes: &[0x66, 0xc1, 0xf8, 0x00], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead8421, fout: PF | AF | SF, fmask: ARITH }, // sar w2 count 0 cf=0
            Case { bytes: &[0x66, 0xc1, 0xf8, 0x00], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead7fb3, fout: CF | ZF | OF, fmask: ARITH }, // sar w2 count 0 cf=1
            Case { bytes: &[0x66, 0xd1, 0xf8], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdeadc210, fout: CF | SF, fmask: CF | PF | ZF | SF | OF }, // sar w2 count 1 cf=1
            Case { bytes: &[0x66, 0xd1, 0xf8], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead3fd9, fout: CF, fmask: CF | PF | ZF | SF | OF }, // sar w2 count 1 cf=0
            Case { bytes: &[0x66, 0xd3, 0xf8], eax: 0xdead8421, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdeadc210, fout: CF | SF, fmask: CF | PF | ZF | SF | OF }, // sar w2 count 33 cf=0
            Case { bytes: &[0x66, 0xd3, 0xf8], eax: 0xdead7fb3, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead3fd9, fout: CF, fmask: CF | PF | ZF | SF | OF }, // sar w2 count 33 cf=1
            Case { bytes: &[0x66, 0xc1, 0xf8, 0x07], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdeadff08, fout: SF, fmask: CF | PF | ZF | SF }, // sar w2 count 7 cf=1
            Case { bytes: &[0x66, 0xc1, 0xf8, 0x07], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead00ff, fout: PF, fmask: CF | PF | ZF | SF }, // sar w2 count 7 cf=0
            Case { bytes: &[0x66, 0xc1, 0xf8, 0x11], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdeadffff, fout: PF | SF, fmask: PF | ZF | SF }, // sar w2 count 17 cf=0
            Case { bytes: &[0x66, 0xc1, 0xf8, 0x11], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead0000, fout: PF | ZF, fmask: PF | ZF | SF }, // sar w2 count 17 cf=1
            Case { bytes: &[0xc1, 0xf8, 0x00], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0x80000001, fout: PF | AF | SF, fmask: ARITH }, // sar w4 count 0 cf=0
            Case { bytes: &[0xc1, 0xf8, 0x00], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0x5a3c96e1, fout: CF | ZF | OF, fmask: ARITH }, // sar w4 count 0 cf=1
            Case { bytes: &[0xd1, 0xf8], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xc0000000, fout: CF | PF | SF, fmask: CF | PF | ZF | SF | OF }, // sar w4 count 1 cf=1
            Case { bytes: &[0xd1, 0xf8], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0x2d1e4b70, fout: CF, fmask: CF | PF | ZF | SF | OF }, // sar w4 count 1 cf=0
            Case { bytes: &[0xd3, 0xf8], eax: 0x80000001, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0xc0000000, fout: CF | PF | SF, fmask: CF | PF | ZF | SF | OF }, // sar w4 count 33 cf=0
            Case { bytes: &[0xd3, 0xf8], eax: 0x5a3c96e1, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0x2d1e4b70, fout: CF, fmask: CF | PF | ZF | SF | OF }, // sar w4 count 33 cf=1
            Case { bytes: &[0xc1, 0xf8, 0x0d], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xfffc0000, fout: PF | SF, fmask: CF | PF | ZF | SF }, // sar w4 count 13 cf=1
            Case { bytes: &[0xc1, 0xf8, 0x0d], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0x2d1e4, fout: CF | PF, fmask: CF | PF | ZF | SF }, // sar w4 count 13 cf=0
            Case { bytes: &[0xc1, 0xf8, 0x1f], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xffffffff, fout: PF | SF, fmask: CF | PF | ZF | SF }, // sar w4 count 31 cf=0
            Case { bytes: &[0xc1, 0xf8, 0x1f], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0x0, fout: CF | PF | ZF, fmask: CF | PF | ZF | SF }, // sar w4 count 31 cf=1
            Case { bytes: &[0xc0, 0xc0, 0x00], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0081, fout: PF | AF | SF, fmask: ARITH }, // rol w1 count 0 cf=0
            Case { bytes: &[0xc0, 0xc0, 0x00], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead004d, fout: CF | ZF | OF, fmask: ARITH }, // rol w1 count 0 cf=1
            Case { bytes: &[0xd0, 0xc0], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0003, fout: CF | PF | AF | SF | OF, fmask: ARITH }, // rol w1 count 1 cf=1
            Case { bytes: &[0xd0, 0xc0], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead009a, fout: ZF | OF, fmask: ARITH }, // rol w1 count 1 cf=0
            Case { bytes: &[0xd2, 0xc0], eax: 0xdead0081, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0003, fout: CF | PF | AF | SF | OF, fmask: ARITH }, // rol w1 count 33 cf=0
            Case { bytes: &[0xd2, 0xc0], eax: 0xdead004d, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead009a, fout: ZF | OF, fmask: ARITH }, // rol w1 count 33 cf=1
            Case { bytes: &[0xc0, 0xc0, 0x03], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead000c, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rol w1 count 3 cf=1
            Case { bytes: &[0xc0, 0xc0, 0x03], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead006a, fout: ZF, fmask: CF | PF | AF | ZF | SF }, // rol w1 count 3 cf=0
            Case { bytes: &[0xc0, 0xc0, 0x09], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0003, fout: CF | PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rol w1 count 9 cf=0
            Case { bytes: &[0xc0, 0xc0, 0x09], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead009a, fout: ZF, fmask: CF | PF | AF | ZF | SF }, // rol w1 count 9 cf=1
            Case { bytes: &[0xc0, 0xc0, 0x0c], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0018, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rol w1 count 12 cf=1
            Case { bytes: &[0xc0, 0xc0, 0x0c], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead00d4, fout: ZF, fmask: CF | PF | AF | ZF | SF }, // rol w1 count 12 cf=0
            Case { bytes: &[0x66, 0xc1, 0xc0, 0x00], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead8421, fout: PF | AF | SF, fmask: ARITH }, // rol w2 count 0 cf=0
            Case { bytes: &[0x66, 0xc1, 0xc0, 0x00], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead7fb3, fout: CF | ZF | OF, fmask: ARITH }, // rol w2 count 0 cf=1
            Case { bytes: &[0x66, 0xd1, 0xc0], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0843, fout: CF | PF | AF | SF | OF, fmask: ARITH }, // rol w2 count 1 cf=1
            Case { bytes: &[0x66, 0xd1, 0xc0], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdeadff66, fout: ZF | OF, fmask: ARITH }, // rol w2 count 1 cf=0
            Case { bytes: &[0x66, 0xd3, 0xc0], eax: 0xdead8421, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0843, fout: CF | PF | AF | SF | OF, fmask: ARITH }, // rol w2 count 33 cf=0
            Case { bytes: &[0x66, 0xd3, 0xc0], eax: 0xdead7fb3, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdeadff66, fout: ZF | OF, fmask: ARITH }, // rol w2 count 33 cf=1
            Case { bytes: &[0x66, 0xc1, 0xc0, 0x07], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead10c2, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rol w2 count 7 cf=1
            Case { bytes: &[0x66, 0xc1, 0xc0, 0x07], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdeadd9bf, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // rol w2 count 7 cf=0
            Case { bytes: &[0x66, 0xc1, 0xc0, 0x11], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0843, fout: CF | PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rol w2 count 17 cf=0
            Case { bytes: &[0x66, 0xc1, 0xc0, 0x11], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdeadff66, fout: ZF, fmask: CF | PF | AF | ZF | SF }, // rol w2 count 17 cf=1
            Case { bytes: &[0xc1, 0xc0, 0x00], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0x80000001, fout: PF | AF | SF, fmask: ARITH }, // rol w4 count 0 cf=0
            Case { bytes: &[0xc1, 0xc0, 0x00], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0x5a3c96e1, fout: CF | ZF | OF, fmask: ARITH }, // rol w4 count 0 cf=1
            Case { bytes: &[0xd1, 0xc0], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0x3, fout: CF | PF | AF | SF | OF, fmask: ARITH }, // rol w4 count 1 cf=1
            Case { bytes: &[0xd1, 0xc0], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xb4792dc2, fout: ZF | OF, fmask: ARITH }, // rol w4 count 1 cf=0
            Case { bytes: &[0xd3, 0xc0], eax: 0x80000001, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0x3, fout: CF | PF | AF | SF | OF, fmask: ARITH }, // rol w4 count 33 cf=0
            Case { bytes: &[0xd3, 0xc0], eax: 0x5a3c96e1, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xb4792dc2, fout: ZF | OF, fmask: ARITH }, // rol w4 count 33 cf=1
            Case { bytes: &[0xc1, 0xc0, 0x0d], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0x3000, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rol w4 count 13 cf=1
            Case { bytes: &[0xc1, 0xc0, 0x0d], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0x92dc2b47, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // rol w4 count 13 cf=0
            Case { bytes: &[0xc1, 0xc0, 0x1f], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xc0000000, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rol w4 count 31 cf=0
            Case { bytes: &[0xc1, 0xc0, 0x1f], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xad1e4b70, fout: ZF, fmask: CF | PF | AF | ZF | SF }, // rol w4 count 31 cf=1
            Case { bytes: &[0xc0, 0xc8, 0x00], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0081, fout: PF | AF | SF, fmask: ARITH }, // ror w1 count 0 cf=0
            Case { bytes: &[0xc0, 0xc8, 0x00], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead004d, fout: CF | ZF | OF, fmask: ARITH }, // ror w1 count 0 cf=1
            Case { bytes: &[0xd0, 0xc8], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead00c0, fout: CF | PF | AF | SF, fmask: ARITH }, // ror w1 count 1 cf=1
            Case { bytes: &[0xd0, 0xc8], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead00a6, fout: CF | ZF | OF, fmask: ARITH }, // ror w1 count 1 cf=0
            Case { bytes: &[0xd2, 0xc8], eax: 0xdead0081, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead00c0, fout: CF | PF | AF | SF, fmask: ARITH }, // ror w1 count 33 cf=0
            Case { bytes: &[0xd2, 0xc8], eax: 0xdead004d, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead00a6, fout: CF | ZF | OF, fmask: ARITH }, // ror w1 count 33 cf=1
            Case { bytes: &[0xc0, 0xc8, 0x03], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0030, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // ror w1 count 3 cf=1
            Case { bytes: &[0xc0, 0xc8, 0x03], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead00a9, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // ror w1 count 3 cf=0
            Case { bytes: &[0xc0, 0xc8, 0x09], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead00c0, fout: CF | PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // ror w1 count 9 cf=0
            Case { bytes: &[0xc0, 0xc8, 0x09], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead00a6, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // ror w1 count 9 cf=1
            Case { bytes: &[0xc0, 0xc8, 0x0c], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0018, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // ror w1 count 12 cf=1
            Case { bytes: &[0xc0, 0xc8, 0x0c], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead00d4, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // ror w1 count 12 cf=0
            Case { bytes: &[0x66, 0xc1, 0xc8, 0x00], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead8421, fout: PF | AF | SF, fmask: ARITH }, // ror w2 count 0 cf=0
            Case { bytes: &[0x66, 0xc1, 0xc8, 0x00], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead7fb3, fout: CF | ZF | OF, fmask: ARITH }, // ror w2 count 0 cf=1
            Case { bytes: &[0x66, 0xd1, 0xc8], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdeadc210, fout: CF | PF | AF | SF, fmask: ARITH }, // ror w2 count 1 cf=1
            Case { bytes: &[0x66, 0xd1, 0xc8], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdeadbfd9, fout: CF | ZF | OF, fmask: ARITH }, // ror w2 count 1 cf=0
            Case { bytes: &[0x66, 0xd3, 0xc8], eax: 0xdead8421, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdeadc210, fout: CF | PF | AF | SF, fmask: ARITH }, // ror w2 count 33 cf=0
            Case { bytes: &[0x66, 0xd3, 0xc8], eax: 0xdead7fb3, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdeadbfd9, fout: CF | ZF | OF, fmask: ARITH }, // ror w2 count 33 cf=1
            Case { bytes: &[0x66, 0xc1, 0xc8, 0x07], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead4308, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // ror w2 count 7 cf=1
            Case { bytes: &[0x66, 0xc1, 0xc8, 0x07], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead66ff, fout: ZF, fmask: CF | PF | AF | ZF | SF }, // ror w2 count 7 cf=0
            Case { bytes: &[0x66, 0xc1, 0xc8, 0x11], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdeadc210, fout: CF | PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // ror w2 count 17 cf=0
            Case { bytes: &[0x66, 0xc1, 0xc8, 0x11], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdeadbfd9, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // ror w2 count 17 cf=1
            Case { bytes: &[0xc1, 0xc8, 0x00], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0x80000001, fout: PF | AF | SF, fmask: ARITH }, // ror w4 count 0 cf=0
            Case { bytes: &[0xc1, 0xc8, 0x00], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0x5a3c96e1, fout: CF | ZF | OF, fmask: ARITH }, // ror w4 count 0 cf=1
            Case { bytes: &[0xd1, 0xc8], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xc0000000, fout: CF | PF | AF | SF, fmask: ARITH }, // ror w4 count 1 cf=1
            Case { bytes: &[0xd1, 0xc8], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xad1e4b70, fout: CF | ZF | OF, fmask: ARITH }, // ror w4 count 1 cf=0
            Case { bytes: &[0xd3, 0xc8], eax: 0x80000001, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0xc0000000, fout: CF | PF | AF | SF, fmask: ARITH }, // ror w4 count 33 cf=0
            Case { bytes: &[0xd3, 0xc8], eax: 0x5a3c96e1, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xad1e4b70, fout: CF | ZF | OF, fmask: ARITH }, // ror w4 count 33 cf=1
            Case { bytes: &[0xc1, 0xc8, 0x0d], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xc0000, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // ror w4 count 13 cf=1
            Case { bytes: &[0xc1, 0xc8, 0x0d], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xb70ad1e4, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // ror w4 count 13 cf=0
            Case { bytes: &[0xc1, 0xc8, 0x1f], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0x3, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // ror w4 count 31 cf=0
            Case { bytes: &[0xc1, 0xc8, 0x1f], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xb4792dc2, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // ror w4 count 31 cf=1
            Case { bytes: &[0xc0, 0xd0, 0x00], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0081, fout: PF | AF | SF, fmask: ARITH }, // rcl w1 count 0 cf=0
            Case { bytes: &[0xc0, 0xd0, 0x00], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead004d, fout: CF | ZF | OF, fmask: ARITH }, // rcl w1 count 0 cf=1
            Case { bytes: &[0xd0, 0xd0], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0003, fout: CF | PF | AF | SF | OF, fmask: ARITH }, // rcl w1 count 1 cf=1
            Case { bytes: &[0xd0, 0xd0], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead009a, fout: ZF | OF, fmask: ARITH }, // rcl w1 count 1 cf=0
            Case { bytes: &[0xd2, 0xd0], eax: 0xdead0081, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0002, fout: CF | PF | AF | SF | OF, fmask: ARITH }, // rcl w1 count 33 cf=0
            Case { bytes: &[0xd2, 0xd0], eax: 0xdead004d, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead009b, fout: ZF | OF, fmask: ARITH }, // rcl w1 count 33 cf=1
            Case { bytes: &[0xc0, 0xd0, 0x03], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead000e, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rcl w1 count 3 cf=1
            Case { bytes: &[0xc0, 0xd0, 0x03], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead0069, fout: ZF, fmask: CF | PF | AF | ZF | SF }, // rcl w1 count 3 cf=0
            Case { bytes: &[0xc0, 0xd0, 0x09], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0081, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rcl w1 count 9 cf=0
            Case { bytes: &[0xc0, 0xd0, 0x09], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead004d, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // rcl w1 count 9 cf=1
            Case { bytes: &[0xc0, 0xd0, 0x0c], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead000e, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rcl w1 count 12 cf=1
            Case { bytes: &[0xc0, 0xd0, 0x0c], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead0069, fout: ZF, fmask: CF | PF | AF | ZF | SF }, // rcl w1 count 12 cf=0
            Case { bytes: &[0x66, 0xc1, 0xd0, 0x00], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead8421, fout: PF | AF | SF, fmask: ARITH }, // rcl w2 count 0 cf=0
            Case { bytes: &[0x66, 0xc1, 0xd0, 0x00], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead7fb3, fout: CF | ZF | OF, fmask: ARITH }, // rcl w2 count 0 cf=1
            Case { bytes: &[0x66, 0xd1, 0xd0], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0843, fout: CF | PF | AF | SF | OF, fmask: ARITH }, // rcl w2 count 1 cf=1
            Case { bytes: &[0x66, 0xd1, 0xd0], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdeadff66, fout: ZF | OF, fmask: ARITH }, // rcl w2 count 1 cf=0
            Case { bytes: &[0x66, 0xd3, 0xd0], eax: 0xdead8421, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0842, fout: CF | PF | AF | SF | OF, fmask: ARITH }, // rcl w2 count 33 cf=0
            Case { bytes: &[0x66, 0xd3, 0xd0], eax: 0xdead7fb3, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdeadff67, fout: ZF | OF, fmask: ARITH }, // rcl w2 count 33 cf=1
            Case { bytes: &[0x66, 0xc1, 0xd0, 0x07], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead10e1, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rcl w2 count 7 cf=1
            Case { bytes: &[0x66, 0xc1, 0xd0, 0x07], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdeadd99f, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // rcl w2 count 7 cf=0
            Case { bytes: &[0x66, 0xc1, 0xd0, 0x11], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead8421, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rcl w2 count 17 cf=0
            Case { bytes: &[0x66, 0xc1, 0xd0, 0x11], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead7fb3, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // rcl w2 count 17 cf=1
            Case { bytes: &[0xc1, 0xd0, 0x00], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0x80000001, fout: PF | AF | SF, fmask: ARITH }, // rcl w4 count 0 cf=0
            Case { bytes: &[0xc1, 0xd0, 0x00], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0x5a3c96e1, fout: CF | ZF | OF, fmask: ARITH }, // rcl w4 count 0 cf=1
            Case { bytes: &[0xd1, 0xd0], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0x3, fout: CF | PF | AF | SF | OF, fmask: ARITH }, // rcl w4 count 1 cf=1
            Case { bytes: &[0xd1, 0xd0], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xb4792dc2, fout: ZF | OF, fmask: ARITH }, // rcl w4 count 1 cf=0
            Case { bytes: &[0xd3, 0xd0], eax: 0x80000001, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0x2, fout: CF | PF | AF | SF | OF, fmask: ARITH }, // rcl w4 count 33 cf=0
            Case { bytes: &[0xd3, 0xd0], eax: 0x5a3c96e1, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xb4792dc3, fout: ZF | OF, fmask: ARITH }, // rcl w4 count 33 cf=1
            Case { bytes: &[0xc1, 0xd0, 0x0d], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0x3800, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rcl w4 count 13 cf=1
            Case { bytes: &[0xc1, 0xd0, 0x0d], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0x92dc25a3, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // rcl w4 count 13 cf=0
            Case { bytes: &[0xc1, 0xd0, 0x1f], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xa0000000, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rcl w4 count 31 cf=0
            Case { bytes: &[0xc1, 0xd0, 0x1f], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xd68f25b8, fout: ZF, fmask: CF | PF | AF | ZF | SF }, // rcl w4 count 31 cf=1
            Case { bytes: &[0xc0, 0xd8, 0x00], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0081, fout: PF | AF | SF, fmask: ARITH }, // rcr w1 count 0 cf=0
            Case { bytes: &[0xc0, 0xd8, 0x00], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead004d, fout: CF | ZF | OF, fmask: ARITH }, // rcr w1 count 0 cf=1
            Case { bytes: &[0xd0, 0xd8], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead00c0, fout: CF | PF | AF | SF, fmask: ARITH }, // rcr w1 count 1 cf=1
            Case { bytes: &[0xd0, 0xd8], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead0026, fout: CF | ZF, fmask: ARITH }, // rcr w1 count 1 cf=0
            Case { bytes: &[0xd2, 0xd8], eax: 0xdead0081, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0040, fout: CF | PF | AF | SF | OF, fmask: ARITH }, // rcr w1 count 33 cf=0
            Case { bytes: &[0xd2, 0xd8], eax: 0xdead004d, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead00a6, fout: CF | ZF | OF, fmask: ARITH }, // rcr w1 count 33 cf=1
            Case { bytes: &[0xc0, 0xd8, 0x03], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0070, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rcr w1 count 3 cf=1
            Case { bytes: &[0xc0, 0xd8, 0x03], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead0049, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // rcr w1 count 3 cf=0
            Case { bytes: &[0xc0, 0xd8, 0x09], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead0081, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rcr w1 count 9 cf=0
            Case { bytes: &[0xc0, 0xd8, 0x09], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead004d, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // rcr w1 count 9 cf=1
            Case { bytes: &[0xc0, 0xd8, 0x0c], eax: 0xdead0081, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead0070, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rcr w1 count 12 cf=1
            Case { bytes: &[0xc0, 0xd8, 0x0c], eax: 0xdead004d, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead0049, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // rcr w1 count 12 cf=0
            Case { bytes: &[0x66, 0xc1, 0xd8, 0x00], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead8421, fout: PF | AF | SF, fmask: ARITH }, // rcr w2 count 0 cf=0
            Case { bytes: &[0x66, 0xc1, 0xd8, 0x00], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead7fb3, fout: CF | ZF | OF, fmask: ARITH }, // rcr w2 count 0 cf=1
            Case { bytes: &[0x66, 0xd1, 0xd8], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdeadc210, fout: CF | PF | AF | SF, fmask: ARITH }, // rcr w2 count 1 cf=1
            Case { bytes: &[0x66, 0xd1, 0xd8], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdead3fd9, fout: CF | ZF, fmask: ARITH }, // rcr w2 count 1 cf=0
            Case { bytes: &[0x66, 0xd3, 0xd8], eax: 0xdead8421, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead4210, fout: CF | PF | AF | SF | OF, fmask: ARITH }, // rcr w2 count 33 cf=0
            Case { bytes: &[0x66, 0xd3, 0xd8], eax: 0xdead7fb3, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdeadbfd9, fout: CF | ZF | OF, fmask: ARITH }, // rcr w2 count 33 cf=1
            Case { bytes: &[0x66, 0xc1, 0xd8, 0x07], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xdead8708, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rcr w2 count 7 cf=1
            Case { bytes: &[0x66, 0xc1, 0xd8, 0x07], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0xdeadccff, fout: ZF, fmask: CF | PF | AF | ZF | SF }, // rcr w2 count 7 cf=0
            Case { bytes: &[0x66, 0xc1, 0xd8, 0x11], eax: 0xdead8421, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0xdead8421, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rcr w2 count 17 cf=0
            Case { bytes: &[0x66, 0xc1, 0xd8, 0x11], eax: 0xdead7fb3, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xdead7fb3, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // rcr w2 count 17 cf=1
            Case { bytes: &[0xc1, 0xd8, 0x00], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0x80000001, fout: PF | AF | SF, fmask: ARITH }, // rcr w4 count 0 cf=0
            Case { bytes: &[0xc1, 0xd8, 0x00], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0x5a3c96e1, fout: CF | ZF | OF, fmask: ARITH }, // rcr w4 count 0 cf=1
            Case { bytes: &[0xd1, 0xd8], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0xc0000000, fout: CF | PF | AF | SF, fmask: ARITH }, // rcr w4 count 1 cf=1
            Case { bytes: &[0xd1, 0xd8], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0x2d1e4b70, fout: CF | ZF, fmask: ARITH }, // rcr w4 count 1 cf=0
            Case { bytes: &[0xd3, 0xd8], eax: 0x80000001, ecx: 0x21, edx: 0x0, fin: PF | AF | SF, eax_out: 0x40000000, fout: CF | PF | AF | SF | OF, fmask: ARITH }, // rcr w4 count 33 cf=0
            Case { bytes: &[0xd3, 0xd8], eax: 0x5a3c96e1, ecx: 0x21, edx: 0x0, fin: CF | ZF | OF, eax_out: 0xad1e4b70, fout: CF | ZF | OF, fmask: ARITH }, // rcr w4 count 33 cf=1
            Case { bytes: &[0xc1, 0xd8, 0x0d], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: CF | PF | AF | SF, eax_out: 0x1c0000, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rcr w4 count 13 cf=1
            Case { bytes: &[0xc1, 0xd8, 0x0d], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: ZF | OF, eax_out: 0x6e12d1e4, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // rcr w4 count 13 cf=0
            Case { bytes: &[0xc1, 0xd8, 0x1f], eax: 0x80000001, ecx: 0x100, edx: 0x0, fin: PF | AF | SF, eax_out: 0x5, fout: PF | AF | SF, fmask: CF | PF | AF | ZF | SF }, // rcr w4 count 31 cf=0
            Case { bytes: &[0xc1, 0xd8, 0x1f], eax: 0x5a3c96e1, ecx: 0x100, edx: 0x0, fin: CF | ZF | OF, eax_out: 0x68f25b86, fout: CF | ZF, fmask: CF | PF | AF | ZF | SF }, // rcr w4 count 31 cf=1
            Case { bytes: &[0xd0, 0xf0], eax: 0x81, ecx: 0x0, edx: 0x0, fin: 0, eax_out: 0x2, fout: CF | OF, fmask: CF | PF | ZF | SF | OF }, // sal (D0 /6) alias
        ]);
    }

    /// SHLD/SHRD at widths 16/32 with imm8 and CL counts, including 0 and 32 (masked to 0).
    #[test]
    #[rustfmt::skip]
    fn double_shifts() {
        check(&[
            Case { bytes: &[0x66, 0x0f, 0xa4, 0xd0, 0x00], eax: 0xdead8421, ecx: 0x100, edx: 0x5a3c, fin: CF | PF | AF | SF, eax_out: 0xdead8421, fout: CF | PF | AF | SF, fmask: ARITH }, // shld w2 count 0
            Case { bytes: &[0x66, 0x0f, 0xa4, 0xd0, 0x01], eax: 0xdead8421, ecx: 0x100, edx: 0x5a3c, fin: CF | PF | AF | SF, eax_out: 0xdead0842, fout: CF | PF | OF, fmask: CF | PF | ZF | SF | OF }, // shld w2 count 1
            Case { bytes: &[0x66, 0x0f, 0xa5, 0xd0], eax: 0xdead8421, ecx: 0x4, edx: 0x5a3c, fin: CF | PF | AF | SF, eax_out: 0xdead4215, fout: 0, fmask: CF | PF | ZF | SF }, // shld w2 count 4
            Case { bytes: &[0x66, 0x0f, 0xa4, 0xd0, 0x0f], eax: 0xdead8421, ecx: 0x100, edx: 0x5a3c, fin: CF | PF | AF | SF, eax_out: 0xdeadad1e, fout: PF | SF, fmask: CF | PF | ZF | SF }, // shld w2 count 15
            Case { bytes: &[0x66, 0x0f, 0xa5, 0xd0], eax: 0xdead8421, ecx: 0x21, edx: 0x5a3c, fin: CF | PF | AF | SF, eax_out: 0xdead0842, fout: CF | PF | OF, fmask: CF | PF | ZF | SF | OF }, // shld w2 count 33
            Case { bytes: &[0x66, 0x0f, 0xa4, 0xd0, 0x10], eax: 0xdead8421, ecx: 0x100, edx: 0x5a3c, fin: CF | PF | AF | SF, eax_out: 0xdead5a3c, fout: CF | PF, fmask: CF | PF | ZF | SF }, // shld w2 count 16
            Case { bytes: &[0x0f, 0xa4, 0xd0, 0x00], eax: 0x80000001, ecx: 0x100, edx: 0x5a3c96e1, fin: CF | PF | AF | SF, eax_out: 0x80000001, fout: CF | PF | AF | SF, fmask: ARITH }, // shld w4 count 0
            Case { bytes: &[0x0f, 0xa4, 0xd0, 0x01], eax: 0x80000001, ecx: 0x100, edx: 0x5a3c96e1, fin: CF | PF | AF | SF, eax_out: 0x2, fout: CF | OF, fmask: CF | PF | ZF | SF | OF }, // shld w4 count 1
            Case { bytes: &[0x0f, 0xa5, 0xd0], eax: 0x80000001, ecx: 0x4, edx: 0x5a3c96e1, fin: CF | PF | AF | SF, eax_out: 0x15, fout: 0, fmask: CF | PF | ZF | SF }, // shld w4 count 4
            Case { bytes: &[0x0f, 0xa4, 0xd0, 0x1f], eax: 0x80000001, ecx: 0x100, edx: 0x5a3c96e1, fin: CF | PF | AF | SF, eax_out: 0xad1e4b70, fout: SF, fmask: CF | PF | ZF | SF }, // shld w4 count 31
            Case { bytes: &[0x0f, 0xa5, 0xd0], eax: 0x80000001, ecx: 0x21, edx: 0x5a3c96e1, fin: CF | PF | AF | SF, eax_out: 0x2, fout: CF | OF, fmask: CF | PF | ZF | SF | OF }, // shld w4 count 33
            Case { bytes: &[0x0f, 0xa4, 0xd0, 0x20], eax: 0x80000001, ecx: 0x100, edx: 0x5a3c96e1, fin: CF | PF | AF | SF, eax_out: 0x80000001, fout: CF | PF | AF | SF, fmask: ARITH }, // shld w4 count 32
            Case { bytes: &[0x66, 0x0f, 0xac, 0xd0, 0x00], eax: 0xdead8421, ecx: 0x100, edx: 0x5a3c, fin: CF | PF | AF | SF, eax_out: 0xdead8421, fout: CF | PF | AF | SF, fmask: ARITH }, // shrd w2 count 0
            Case { bytes: &[0x66, 0x0f, 0xac, 0xd0, 0x01], eax: 0xdead8421, ecx: 0x100, edx: 0x5a3c, fin: CF | PF | AF | SF, eax_out: 0xdead4210, fout: CF | OF, fmask: CF | PF | ZF | SF | OF }, // shrd w2 count 1
            Case { bytes: &[0x66, 0x0f, 0xad, 0xd0], eax: 0xdead8421, ecx: 0x4, edx: 0x5a3c, fin: CF | PF | AF | SF, eax_out: 0xdeadc842, fout: PF | SF, fmask: CF | PF | ZF | SF }, // shrd w2 count 4
            Case { bytes: &[0x66, 0x0f, 0xac, 0xd0, 0x0f], eax: 0xdead8421, ecx: 0x100, edx: 0x5a3c, fin: CF | PF | AF | SF, eax_out: 0xdeadb479, fout: SF, fmask: CF | PF | ZF | SF }, // shrd w2 count 15
            Case { bytes: &[0x66, 0x0f, 0xad, 0xd0], eax: 0xdead8421, ecx: 0x21, edx: 0x5a3c, fin: CF | PF | AF | SF, eax_out: 0xdead4210, fout: CF | OF, fmask: CF | PF | ZF | SF | OF }, // shrd w2 count 33
            Case { bytes: &[0x66, 0x0f, 0xac, 0xd0, 0x10], eax: 0xdead8421, ecx: 0x100, edx: 0x5a3c, fin: CF | PF | AF | SF, eax_out: 0xdead5a3c, fout: CF | PF, fmask: CF | PF | ZF | SF }, // shrd w2 count 16
            Case { bytes: &[0x0f, 0xac, 0xd0, 0x00], eax: 0x80000001, ecx: 0x100, edx: 0x5a3c96e1, fin: CF | PF | AF | SF, eax_out: 0x80000001, fout: CF | PF | AF | SF, fmask: ARITH }, // shrd w4 count 0
            Case { bytes: &[0x0f, 0xac, 0xd0, 0x01], eax: 0x80000001, ecx: 0x100, edx: 0x5a3c96e1, fin: CF | PF | AF | SF, eax_out: 0xc0000000, fout: CF | PF | SF, fmask: CF | PF | ZF | SF | OF }, // shrd w4 count 1
            Case { bytes: &[0x0f, 0xad, 0xd0], eax: 0x80000001, ecx: 0x4, edx: 0x5a3c96e1, fin: CF | PF | AF | SF, eax_out: 0x18000000, fout: PF, fmask: CF | PF | ZF | SF }, // shrd w4 count 4
            Case { bytes: &[0x0f, 0xac, 0xd0, 0x1f], eax: 0x80000001, ecx: 0x100, edx: 0x5a3c96e1, fin: CF | PF | AF | SF, eax_out: 0xb4792dc3, fout: PF | SF, fmask: CF | PF | ZF | SF }, // shrd w4 count 31
            Case { bytes: &[0x0f, 0xad, 0xd0], eax: 0x80000001, ecx: 0x21, edx: 0x5a3c96e1, fin: CF | PF | AF | SF, eax_out: 0xc0000000, fout: CF | PF | SF, fmask: CF | PF | ZF | SF | OF }, // shrd w4 count 33
            Case { bytes: &[0x0f, 0xac, 0xd0, 0x20], eax: 0x80000001, ecx: 0x100, edx: 0x5a3c96e1, fin: CF | PF | AF | SF, eax_out: 0x80000001, fout: CF | PF | AF | SF, fmask: ARITH }, // shrd w4 count 32
        ]);
    }

    /// 16-bit SHLD/SHRD with counts above 16 (undefined in the SDM): the P6+ 48-bit
    /// behaviour documented at the top of this file, worked by hand:
    /// SHLD: 1234:5678:5678 << 20, top 16 bits = 0x6785; SHRD: 1234:5678:1234 >> 20,
    /// low 16 bits = 0x4567.
    #[test]
    #[rustfmt::skip]
    fn double_shift_16_beyond_16() {
        check(&[
            Case { bytes: &[0x66, 0x0f, 0xa4, 0xd0, 20], eax: 0x1234, ecx: 0, edx: 0x5678, fin: 0, eax_out: 0x6785, fout: 0, fmask: 0 },
            Case { bytes: &[0x66, 0x0f, 0xac, 0xd0, 20], eax: 0x1234, ecx: 0, edx: 0x5678, fin: 0, eax_out: 0x4567, fout: 0, fmask: 0 },
        ]);
    }

    /// Memory destinations: `shl dword [DATA_BASE], cl` and `rcr word [DATA_BASE], 1`.
    #[test]
    fn memory_destination() {
        let mut t = TestBox::new(&[0xd3, 0x25, 0x00, 0x00, 0x01, 0x00, 0x66, 0xd1, 0x1d, 0x04, 0x00, 0x01, 0x00]);
        t.poke(DATA_BASE, &0x8000_0001u32.to_le_bytes());
        t.poke(DATA_BASE + 4, &0xffff_8421u32.to_le_bytes());
        t.cpu.state.gpr[ECX] = 4;
        t.run(4).unwrap();
        // 0x80000001 << 4: bit 28 (0) is the last bit out, so CF=0 before the RCR.
        assert_eq!(t.peek32(DATA_BASE), 0x10);
        // RCR with CF=0: 0x8421 -> 0x4210, CF = old bit 0 = 1, OF = old MSB ^ CF-in = 1.
        assert_eq!(t.peek32(DATA_BASE + 4), 0xffff_4210);
        assert_eq!(t.cpu.state.eflags & (CF | OF), CF | OF);
    }
}
