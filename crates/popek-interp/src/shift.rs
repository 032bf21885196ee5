//! Shifts and rotates: SHL/SAL SHR SAR ROL ROR RCL RCR SHLD SHRD (SDM Vol. 2B "SAL/SAR/SHL/SHR",
//! Vol. 2B "RCL/RCR/ROL/ROR", "SHLD", "SHRD").
//!
//! The count (1, CL or imm8) is masked to 5 bits; a masked count of 0 leaves the
//! destination and all flags unchanged (a memory destination is still read, so it
//! can fault, but not written). RCL/RCR rotate through CF modulo 9 (bytes), 17
//! (words) or 33 (dwords); ROL/ROR rotate modulo the width but set CF (and OF)
//! whenever the masked count is non-zero.
//!
//! Flags the SDM leaves undefined get the values Intel P6-and-later CPUs are
//! documented (by Bochs, which models them) to produce:
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

use crate::flags;
use popek_cpu::access::Width;
use popek_cpu::iced_x86::{Instruction, Mnemonic, OpKind, Register};
use popek_cpu::operand::{mask, op_width, sign_bit, sign_extend};
use popek_cpu::state::flags::{ARITH, CF, OF};
use popek_cpu::{Bus, Cpu, ExecResult, Handler};

const SHL: u8 = 0;
const SHR: u8 = 1;
const SAR: u8 = 2;
const ROL: u8 = 3;
const ROR: u8 = 4;
const RCL: u8 = 5;
const RCR: u8 = 6;

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    let by_cl = |n: u32| insn.op_kind(n) == OpKind::Register && insn.op_register(n) == Register::CL;
    Some(match (insn.mnemonic(), by_cl(1)) {
        (Mnemonic::Shl | Mnemonic::Sal, false) => shift::<SHL, false>,
        (Mnemonic::Shl | Mnemonic::Sal, true) => shift::<SHL, true>,
        (Mnemonic::Shr, false) => shift::<SHR, false>,
        (Mnemonic::Shr, true) => shift::<SHR, true>,
        (Mnemonic::Sar, false) => shift::<SAR, false>,
        (Mnemonic::Sar, true) => shift::<SAR, true>,
        (Mnemonic::Rol, false) => shift::<ROL, false>,
        (Mnemonic::Rol, true) => shift::<ROL, true>,
        (Mnemonic::Ror, false) => shift::<ROR, false>,
        (Mnemonic::Ror, true) => shift::<ROR, true>,
        (Mnemonic::Rcl, false) => shift::<RCL, false>,
        (Mnemonic::Rcl, true) => shift::<RCL, true>,
        (Mnemonic::Rcr, false) => shift::<RCR, false>,
        (Mnemonic::Rcr, true) => shift::<RCR, true>,
        (Mnemonic::Shld, _) if by_cl(2) => double::<true, true>,
        (Mnemonic::Shld, _) => double::<true, false>,
        (Mnemonic::Shrd, _) if by_cl(2) => double::<false, true>,
        (Mnemonic::Shrd, _) => double::<false, false>,
        _ => return None,
    })
}

/// The count operand `n`: CL or the immediate (1 for the by-one forms), masked to 5 bits.
#[inline(always)]
fn count<const BY_CL: bool>(cpu: &Cpu, insn: &Instruction, n: u32) -> u32 {
    let c = if BY_CL { cpu.state.gpr[popek_cpu::state::gpr::ECX] } else { insn.immediate(n) as u32 };
    c & 0x1f
}

/// SHL/SHR/SAR/ROL/ROR/RCL/RCR r/m, count.
fn shift<const OP: u8, const BY_CL: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let c = count::<BY_CL>(cpu, insn, 1);
    let a = cpu.read_op(bus, insn, 0, w)?;
    if let Some((r, f, which)) = compute::<OP>(a, c, w, flags::carry(cpu)) {
        cpu.write_op(bus, insn, 0, w, r)?;
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
    // OF of the right shifts/rotates: MSB(result) ^ MSB-1(result).
    let of_right = |r: u32| if (r ^ (r << 1)) & sb != 0 { OF } else { 0 };
    // OF of the left shifts/rotates: CF ^ MSB(result).
    let of_left = |r: u32, cf: u32| if (cf != 0) != (r & sb != 0) { OF } else { 0 };
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

/// SHLD (`LEFT`) / SHRD r/m, reg, imm8|CL.
fn double<const LEFT: bool, const BY_CL: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let c = count::<BY_CL>(cpu, insn, 2);
    let a = cpu.read_op(bus, insn, 0, w)?;
    if c == 0 {
        return Ok(());
    }
    let b = cpu.read_gpr(insn.op_register(1));
    let (r, f) = compute_double(LEFT, a, b, c, w);
    cpu.write_op(bus, insn, 0, w, r)?;
    flags::commit_arith(cpu, f);
    Ok(())
}

/// Result and flags of SHLD (`left`) / SHRD of destination `a` with source `b`,
/// `w` = 2 or 4 bytes, masked count `c` in 1..=31.
#[inline(always)]
fn compute_double(left: bool, a: u32, b: u32, c: u32, w: Width) -> (u32, u32) {
    let m = mask(w);
    let sb = sign_bit(w);
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
    let of = if left {
        (cf != 0) != (r & sb != 0)
    } else {
        (r ^ (r << 1)) & sb != 0
    };
    (r, flags::szp(r, w) | cf | if of { OF } else { 0 })
}
