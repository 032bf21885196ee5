//! Integer arithmetic and logic: ADD ADC SUB SBB CMP AND OR XOR TEST INC DEC NEG NOT
//! (SDM Vol. 2, the instruction pages of each; flags per Vol. 1 Appendix A).
//!
//! Each operation's semantics is written once ([`compute`], `flags`); [`lookup`]
//! also picks operand plumbing specialised for the hottest 32-bit forms (r32,r32 /
//! r32,imm / r32,m32 and INC/DEC r32), which skip the generic operand decoding.

use crate::flags;
use popek_cpu::iced_x86::{Instruction, Mnemonic, OpKind};
use popek_cpu::operand::{gpr32_index, is_mem32_op, is_reg32_op, op_width};
use popek_cpu::state::flags::{ARITH, CF};
use popek_cpu::{Bus, Cpu, ExecResult, Handler};

const ADD: u8 = 0;
const OR: u8 = 1;
const ADC: u8 = 2;
const SBB: u8 = 3;
const AND: u8 = 4;
const SUB: u8 = 5;
const XOR: u8 = 6;
const CMP: u8 = 7;
const TEST: u8 = 8;

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    Some(match insn.mnemonic() {
        Mnemonic::Add => binary_form::<ADD>(insn),
        Mnemonic::Or => binary_form::<OR>(insn),
        Mnemonic::Adc => binary_form::<ADC>(insn),
        Mnemonic::Sbb => binary_form::<SBB>(insn),
        Mnemonic::And => binary_form::<AND>(insn),
        Mnemonic::Sub => binary_form::<SUB>(insn),
        Mnemonic::Xor => binary_form::<XOR>(insn),
        Mnemonic::Cmp => binary_form::<CMP>(insn),
        Mnemonic::Test => binary_form::<TEST>(insn),
        Mnemonic::Inc if is_reg32_op(insn, 0) => inc_dec_r32::<false>,
        Mnemonic::Dec if is_reg32_op(insn, 0) => inc_dec_r32::<true>,
        Mnemonic::Inc => inc_dec::<false>,
        Mnemonic::Dec => inc_dec::<true>,
        Mnemonic::Neg => neg,
        Mnemonic::Not => not,
        _ => return None,
    })
}

/// The handler for binary operation `OP`: specialised plumbing for a 32-bit register
/// destination, the generic one otherwise.
fn binary_form<const OP: u8>(insn: &Instruction) -> Handler {
    if !is_reg32_op(insn, 0) {
        return binary::<OP>;
    }
    if is_reg32_op(insn, 1) {
        return binary_r32_r32::<OP>;
    }
    match insn.op1_kind() {
        OpKind::Immediate32 => binary_r32_imm::<OP, false>,
        OpKind::Immediate8to32 => binary_r32_imm::<OP, true>,
        _ if is_mem32_op(insn, 1) => binary_r32_m32::<OP>,
        _ => binary::<OP>,
    }
}

/// Result and flags of `a OP b` (`c`: CF before the instruction) at `w` bytes:
/// the one definition of every binary operation's semantics.
#[inline(always)]
fn compute<const OP: u8>(a: u32, b: u32, c: u32, w: u32) -> (u32, u32) {
    match OP {
        ADD => flags::add(a, b, 0, w),
        ADC => flags::add(a, b, c, w),
        SUB | CMP => flags::sub(a, b, 0, w),
        SBB => flags::sub(a, b, c, w),
        AND | TEST => (a & b, flags::logic(a & b, w)),
        OR => (a | b, flags::logic(a | b, w)),
        _ => (a ^ b, flags::logic(a ^ b, w)),
    }
}

/// True if `OP` writes its result back (CMP and TEST only set flags).
const fn writes_result(op: u8) -> bool {
    op != CMP && op != TEST
}

/// `dst OP= src` with flags; CMP and TEST only set flags.
fn binary<const OP: u8>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let a = cpu.read_op(bus, insn, 0, w)?;
    let b = cpu.read_op(bus, insn, 1, w)?;
    let (r, f) = compute::<OP>(a, b, flags::carry(cpu), w);
    if writes_result(OP) {
        cpu.write_op(bus, insn, 0, w, r)?;
    }
    flags::commit_arith(cpu, f);
    Ok(())
}

/// [`binary`] for `OP r32, r32`.
fn binary_r32_r32<const OP: u8>(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let (d, s) = (gpr32_index(insn.op0_register()), gpr32_index(insn.op1_register()));
    let (r, f) = compute::<OP>(cpu.state.gpr[d], cpu.state.gpr[s], flags::carry(cpu), 4);
    if writes_result(OP) {
        cpu.state.gpr[d] = r;
    }
    flags::commit_arith(cpu, f);
    Ok(())
}

/// [`binary`] for `OP r32, imm32` and `OP r32, imm8` (`IMM8`: sign-extended imm8).
fn binary_r32_imm<const OP: u8, const IMM8: bool>(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let d = gpr32_index(insn.op0_register());
    let b = if IMM8 { insn.immediate8to32() as u32 } else { insn.immediate32() };
    let (r, f) = compute::<OP>(cpu.state.gpr[d], b, flags::carry(cpu), 4);
    if writes_result(OP) {
        cpu.state.gpr[d] = r;
    }
    flags::commit_arith(cpu, f);
    Ok(())
}

/// [`binary`] for `OP r32, m32`.
fn binary_r32_m32<const OP: u8>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let b = cpu.read_mem32(bus, insn)?;
    let d = gpr32_index(insn.op0_register());
    let (r, f) = compute::<OP>(cpu.state.gpr[d], b, flags::carry(cpu), 4);
    if writes_result(OP) {
        cpu.state.gpr[d] = r;
    }
    flags::commit_arith(cpu, f);
    Ok(())
}

/// INC / DEC: like ADD/SUB 1 but CF is preserved.
fn inc_dec<const DEC: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let a = cpu.read_op(bus, insn, 0, w)?;
    let (r, f) = inc_dec_compute::<DEC>(a, w);
    cpu.write_op(bus, insn, 0, w, r)?;
    flags::commit(cpu, ARITH & !CF, f);
    Ok(())
}

/// Result and flags of INC / DEC (CF is not among the flags committed).
#[inline(always)]
fn inc_dec_compute<const DEC: bool>(a: u32, w: u32) -> (u32, u32) {
    if DEC { flags::sub(a, 1, 0, w) } else { flags::add(a, 1, 0, w) }
}

/// [`inc_dec`] for a 32-bit register.
fn inc_dec_r32<const DEC: bool>(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let d = gpr32_index(insn.op0_register());
    let (r, f) = inc_dec_compute::<DEC>(cpu.state.gpr[d], 4);
    cpu.state.gpr[d] = r;
    flags::commit(cpu, ARITH & !CF, f);
    Ok(())
}

/// NEG: 0 - dst; CF = (dst != 0).
fn neg(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let a = cpu.read_op(bus, insn, 0, w)?;
    let (r, f) = flags::sub(0, a, 0, w);
    cpu.write_op(bus, insn, 0, w, r)?;
    flags::commit_arith(cpu, f);
    Ok(())
}

/// NOT: one's complement, no flags.
fn not(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let a = cpu.read_op(bus, insn, 0, w)?;
    Ok(cpu.write_op(bus, insn, 0, w, !a)?)
}
