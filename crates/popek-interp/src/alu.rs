//! Integer arithmetic and logic: ADD ADC SUB SBB CMP AND OR XOR TEST INC DEC NEG NOT
//! (SDM Vol. 2, the instruction pages of each; flags per Vol. 1 Appendix A).

use crate::flags;
use popek_cpu::iced_x86::{Instruction, Mnemonic};
use popek_cpu::operand::op_width;
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
        Mnemonic::Add => binary::<ADD>,
        Mnemonic::Or => binary::<OR>,
        Mnemonic::Adc => binary::<ADC>,
        Mnemonic::Sbb => binary::<SBB>,
        Mnemonic::And => binary::<AND>,
        Mnemonic::Sub => binary::<SUB>,
        Mnemonic::Xor => binary::<XOR>,
        Mnemonic::Cmp => binary::<CMP>,
        Mnemonic::Test => binary::<TEST>,
        Mnemonic::Inc => inc_dec::<false>,
        Mnemonic::Dec => inc_dec::<true>,
        Mnemonic::Neg => neg,
        Mnemonic::Not => not,
        _ => return None,
    })
}

/// `dst OP= src` with flags; CMP and TEST only set flags.
fn binary<const OP: u8>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let a = cpu.read_op(bus, insn, 0, w)?;
    let b = cpu.read_op(bus, insn, 1, w)?;
    let c = flags::carry(cpu);
    let (r, f) = match OP {
        ADD => flags::add(a, b, 0, w),
        ADC => flags::add(a, b, c, w),
        SUB | CMP => flags::sub(a, b, 0, w),
        SBB => flags::sub(a, b, c, w),
        AND | TEST => (a & b, flags::logic(a & b, w)),
        OR => (a | b, flags::logic(a | b, w)),
        _ => (a ^ b, flags::logic(a ^ b, w)),
    };
    if OP != CMP && OP != TEST {
        cpu.write_op(bus, insn, 0, w, r)?;
    }
    flags::commit_arith(cpu, f);
    Ok(())
}

/// INC / DEC: like ADD/SUB 1 but CF is preserved.
fn inc_dec<const DEC: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let a = cpu.read_op(bus, insn, 0, w)?;
    let (r, f) = if DEC { flags::sub(a, 1, 0, w) } else { flags::add(a, 1, 0, w) };
    cpu.write_op(bus, insn, 0, w, r)?;
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
