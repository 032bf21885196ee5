//! x87 comparisons (SDM Vol. 1 8.3.7): FCOM FCOMP FCOMPP FUCOM FUCOMP FUCOMPP FICOM
//! FICOMP FTST FXAM FCOMI FCOMIP FUCOMI FUCOMIP.

use super::loadstore::read_operand;
use super::{Fpu, sf, st_index};
use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::{Instruction, OpKind};
use popek_cpu::state::flags::{AF, CF, OF, PF, SF, ZF};
use popek_cpu::state::{F80, X87State, fsw};
use popek_cpu::{Bus, Cpu};

/// The outcome of a comparison.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    Less,
    Equal,
    Greater,
    Unordered,
}

/// The second operand of a compare: memory, the last register operand, or ST(1).
fn second(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(Option<F80>, u16, usize), Exception> {
    let n = insn.op_count();
    if (0..n).any(|i| insn.op_kind(i) == OpKind::Memory) {
        let (v, f) = read_operand(cpu, bus, insn)?;
        return Ok((Some(v), f & (fsw::IE | fsw::DE), 0));
    }
    let j = if n == 0 { 1 } else { st_index(insn.op_register(n - 1)) };
    Ok((None, 0, j))
}

/// Compares ST(0) with the operand. The result is always reported (an invalid
/// operation, i.e. stack underflow, an unsupported format or a NaN operand of FCOM,
/// answers "unordered"), even when the exception is unmasked; the second value is true
/// if an unmasked exception occurred, and then the stack is not popped (as the x87 does).
/// C1 is cleared, as the SDM says for every compare (AMD processors leave it in FCOMI).
fn compare(x: &mut X87State, b: Option<F80>, mem_flags: u16, j: usize, signaling: bool) -> (Order, bool) {
    if x.is_empty(0) || (b.is_none() && x.is_empty(j)) {
        return (Order::Unordered, !x.underflow());
    }
    let a = x.st(0);
    let b = b.unwrap_or_else(|| x.st(j));
    x.set_cc(fsw::C1, false);
    if sf::is_unsupported(a) || sf::is_unsupported(b) {
        return (Order::Unordered, !x.raise(fsw::IE));
    }
    if sf::is_nan(a) || sf::is_nan(b) {
        let invalid = signaling || sf::is_snan(a) || sf::is_snan(b) || mem_flags & fsw::IE != 0;
        return (Order::Unordered, invalid && !x.raise(fsw::IE));
    }
    let denormal = sf::is_denormal(a) || sf::is_denormal(b) || mem_flags & fsw::DE != 0;
    let aborted = denormal && !x.raise(fsw::DE);
    sf::begin(0, 80);
    let o = if sf::eq(a, b) {
        Order::Equal
    } else if sf::lt_quiet(a, b) {
        Order::Less
    } else {
        Order::Greater
    };
    (o, aborted)
}

fn set_cc(x: &mut X87State, o: Order) {
    let (c3, c2, c0) = match o {
        Order::Less => (false, false, true),
        Order::Equal => (true, false, false),
        Order::Greater => (false, false, false),
        Order::Unordered => (true, true, true),
    };
    x.set_cc(fsw::C3, c3);
    x.set_cc(fsw::C2, c2);
    x.set_cc(fsw::C0, c0);
}

fn fcom_n(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction, signaling: bool, pops: u32) -> Result<(), Exception> {
    let (b, f, j) = second(cpu, bus, insn)?;
    let x = &mut cpu.state.x87;
    let (o, aborted) = compare(x, b, f, j, signaling);
    set_cc(x, o);
    if !aborted {
        for _ in 0..pops {
            x.pop();
        }
    }
    Ok(())
}

/// FCOM, FICOM.
pub(super) fn fcom(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    fcom_n(cpu, bus, insn, true, 0)
}
/// FCOMP, FICOMP.
pub(super) fn fcomp(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    fcom_n(cpu, bus, insn, true, 1)
}
/// FCOMPP.
pub(super) fn fcompp(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    fcom_n(cpu, bus, insn, true, 2)
}
/// FUCOM.
pub(super) fn fucom(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    fcom_n(cpu, bus, insn, false, 0)
}
/// FUCOMP.
pub(super) fn fucomp(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    fcom_n(cpu, bus, insn, false, 1)
}
/// FUCOMPP.
pub(super) fn fucompp(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    fcom_n(cpu, bus, insn, false, 2)
}

/// FTST: compares ST(0) with +0.0 (a NaN is invalid).
pub(super) fn ftst(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    let x = &mut cpu.state.x87;
    let (o, _) = compare(x, Some(F80::ZERO), 0, 0, true);
    set_cc(x, o);
    Ok(())
}

/// FXAM: classifies ST(0) into C3 C2 C0, its sign into C1.
pub(super) fn fxam(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    let x = &mut cpu.state.x87;
    let a = x.st(0);
    let (c3, c2, c0) = if x.is_empty(0) {
        (true, false, true)
    } else if sf::is_unsupported(a) {
        (false, false, false)
    } else if sf::is_nan(a) {
        (false, false, true)
    } else if sf::is_inf(a) {
        (false, true, true)
    } else if sf::is_zero(a) {
        (true, false, false)
    } else if sf::is_denormal(a) {
        (true, true, false)
    } else {
        (false, true, false)
    };
    x.set_cc(fsw::C3, c3);
    x.set_cc(fsw::C2, c2);
    x.set_cc(fsw::C1, a.sign());
    x.set_cc(fsw::C0, c0);
    Ok(())
}

fn fcomi_n(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction, signaling: bool, pop: bool) -> Result<(), Exception> {
    let (b, f, j) = second(cpu, bus, insn)?;
    let x = &mut cpu.state.x87;
    let (o, aborted) = compare(x, b, f, j, signaling);
    {
        if pop && !aborted {
            x.pop();
        }
        let bits = match o {
            Order::Less => CF,
            Order::Equal => ZF,
            Order::Greater => 0,
            Order::Unordered => ZF | PF | CF,
        };
        let e = &mut cpu.state.eflags;
        *e = (*e & !(ZF | PF | CF | OF | SF | AF)) | bits;
    }
    Ok(())
}

/// FCOMI.
pub(super) fn fcomi(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    fcomi_n(cpu, bus, insn, true, false)
}
/// FCOMIP.
pub(super) fn fcomip(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    fcomi_n(cpu, bus, insn, true, true)
}
/// FUCOMI.
pub(super) fn fucomi(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    fcomi_n(cpu, bus, insn, false, false)
}
/// FUCOMIP.
pub(super) fn fucomip(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    fcomi_n(cpu, bus, insn, false, true)
}
