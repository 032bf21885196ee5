//! Multiply and divide: MUL IMUL DIV IDIV (SDM Vol. 2A "DIV", "IDIV", "IMUL"; Vol. 2B "MUL").
//!
//! Handlers are specialised by operand width at lookup time.
//!
//! Flags: MUL and IMUL set CF = OF = "the result does not fit the destination"
//! (SDM). SF, ZF, AF and PF are undefined; popek sets SF, ZF and PF from the low
//! half of the result (AL/AX/EAX, or the destination of the 2- and 3-operand
//! IMUL) and clears AF, as Intel P6-and-later CPUs are reported to do. DIV and IDIV
//! leave every flag unchanged (all six are undefined).
//!
//! #DE (divide by zero, or a quotient that does not fit, including IDIV of the
//! most negative dividend by -1) is raised before anything is written, so EAX,
//! EDX and the flags are exactly as before the instruction.

use crate::flags;
use popek_cpu::access::Width;
use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::{Instruction, Mnemonic};
use popek_cpu::operand::{mask, op_width, sign_extend};
use popek_cpu::state::flags::{CF, OF};
use popek_cpu::state::gpr::{EAX, EDX};
use popek_cpu::{Bus, Cpu, ExecResult, Handler};

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    let w = op_width(insn, 0);
    Some(match (insn.mnemonic(), insn.op_count(), w) {
        (Mnemonic::Mul, 1, 1) => mul::<1>,
        (Mnemonic::Mul, 1, 2) => mul::<2>,
        (Mnemonic::Mul, 1, 4) => mul::<4>,
        (Mnemonic::Imul, 1, 1) => imul1::<1>,
        (Mnemonic::Imul, 1, 2) => imul1::<2>,
        (Mnemonic::Imul, 1, 4) => imul1::<4>,
        (Mnemonic::Imul, 2, 2) => imul_n::<2, false>,
        (Mnemonic::Imul, 2, 4) => imul_n::<4, false>,
        (Mnemonic::Imul, 3, 2) => imul_n::<2, true>,
        (Mnemonic::Imul, 3, 4) => imul_n::<4, true>,
        (Mnemonic::Div, 1, 1) => div::<1>,
        (Mnemonic::Div, 1, 2) => div::<2>,
        (Mnemonic::Div, 1, 4) => div::<4>,
        (Mnemonic::Idiv, 1, 1) => idiv::<1>,
        (Mnemonic::Idiv, 1, 2) => idiv::<2>,
        (Mnemonic::Idiv, 1, 4) => idiv::<4>,
        _ => return None,
    })
}

/// The implicit accumulator pair as one value: AX (W=1), DX:AX (W=2) or EDX:EAX (W=4).
#[inline(always)]
fn dividend<const W: Width>(cpu: &Cpu) -> u64 {
    let (eax, edx) = (cpu.state.gpr[EAX], cpu.state.gpr[EDX]);
    match W {
        1 => (eax & 0xffff) as u64,
        2 => ((edx & 0xffff) << 16 | (eax & 0xffff)) as u64,
        _ => (edx as u64) << 32 | eax as u64,
    }
}

/// Writes `lo` and `hi` to AL/AH (W=1), AX/DX (W=2) or EAX/EDX (W=4), keeping the other bits.
#[inline(always)]
fn write_pair<const W: Width>(cpu: &mut Cpu, lo: u32, hi: u32) {
    let g = &mut cpu.state.gpr;
    match W {
        1 => g[EAX] = (g[EAX] & !0xffff) | (hi & 0xff) << 8 | (lo & 0xff),
        2 => {
            g[EAX] = (g[EAX] & !0xffff) | (lo & 0xffff);
            g[EDX] = (g[EDX] & !0xffff) | (hi & 0xffff);
        }
        _ => {
            g[EAX] = lo;
            g[EDX] = hi;
        }
    }
}

/// Flags of a multiply: SF/ZF/PF of the low half `lo`, CF=OF=`overflow`, AF=0.
#[inline(always)]
fn mul_flags(lo: u32, w: Width, overflow: bool) -> u32 {
    flags::szp(lo, w) | if overflow { CF | OF } else { 0 }
}

/// MUL r/m: unsigned AL/AX/EAX × r/m into AX, DX:AX or EDX:EAX.
fn mul<const W: Width>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let src = cpu.read_op(bus, insn, 0, W)? as u64;
    let p = (cpu.state.gpr[EAX] & mask(W)) as u64 * src;
    let (lo, hi) = (p as u32 & mask(W), (p >> (W * 8)) as u32);
    write_pair::<W>(cpu, lo, hi);
    flags::commit_arith(cpu, mul_flags(lo, W, hi != 0));
    Ok(())
}

/// IMUL r/m (one operand): signed AL/AX/EAX × r/m into AX, DX:AX or EDX:EAX.
fn imul1<const W: Width>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let src = sign_extend(cpu.read_op(bus, insn, 0, W)?, W) as i32 as i64;
    let acc = sign_extend(cpu.state.gpr[EAX], W) as i32 as i64;
    let p = acc * src;
    let lo = p as u32 & mask(W);
    let hi = (p >> (W * 8)) as u32 & mask(W);
    write_pair::<W>(cpu, lo, hi);
    let overflow = sign_extend(lo, W) as i32 as i64 != p;
    flags::commit_arith(cpu, mul_flags(lo, W, overflow));
    Ok(())
}

/// IMUL r, r/m (`THREE` = false: r × r/m) and IMUL r, r/m, imm (r/m × imm), truncated to the width.
fn imul_n<const W: Width, const THREE: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let a = cpu.read_op(bus, insn, if THREE { 1 } else { 0 }, W)?;
    let b = cpu.read_op(bus, insn, if THREE { 2 } else { 1 }, W)?;
    let p = sign_extend(a, W) as i32 as i64 * sign_extend(b, W) as i32 as i64;
    let r = p as u32 & mask(W);
    cpu.write_gpr(insn.op_register(0), r);
    let overflow = sign_extend(r, W) as i32 as i64 != p;
    flags::commit_arith(cpu, mul_flags(r, W, overflow));
    Ok(())
}

/// DIV r/m: unsigned AX / DX:AX / EDX:EAX by r/m; quotient to AL/AX/EAX, remainder to AH/DX/EDX.
fn div<const W: Width>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let d = cpu.read_op(bus, insn, 0, W)? as u64;
    if d == 0 {
        return Err(Exception::DivideError.into());
    }
    let n = dividend::<W>(cpu);
    let q = n / d;
    if q > mask(W) as u64 {
        return Err(Exception::DivideError.into());
    }
    write_pair::<W>(cpu, q as u32, (n % d) as u32);
    Ok(())
}

/// IDIV r/m: signed AX / DX:AX / EDX:EAX by r/m; quotient (rounded toward zero) to
/// AL/AX/EAX, remainder (sign of the dividend) to AH/DX/EDX.
fn idiv<const W: Width>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let d = sign_extend(cpu.read_op(bus, insn, 0, W)?, W) as i32 as i64;
    if d == 0 {
        return Err(Exception::DivideError.into());
    }
    let raw = dividend::<W>(cpu);
    let n = match W {
        1 => raw as u16 as i16 as i64,
        2 => raw as u32 as i32 as i64,
        _ => raw as i64,
    };
    // i64::MIN / -1 is the only overflowing i64 division; it is a #DE too.
    let Some(q) = n.checked_div(d) else {
        return Err(Exception::DivideError.into());
    };
    let half = 1i64 << (W * 8 - 1);
    if q < -half || q >= half {
        return Err(Exception::DivideError.into());
    }
    let r = n % d;
    write_pair::<W>(cpu, q as u32, r as u32);
    Ok(())
}
