//! x87 control instructions (SDM Vol. 1 8.3.11, 8.1.10): FNINIT FNCLEX FNSTSW FNSTCW
//! FLDCW FNSTENV FLDENV FNSAVE FRSTOR, and the stack-management ones FFREE FINCSTP
//! FDECSTP FXCH FNOP.
//!
//! The environment image is the protected-mode one (SDM Vol. 1 Figures 8-9 and 8-10),
//! 28 bytes with a 32-bit operand size, 14 with a 16-bit one; reserved bits are stored
//! as ones. (Real-mode and virtual-8086 layouts: popek runs protected mode only.)

use super::{Fpu, read_bytes, st_index, update_es, write_bytes};
use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::{Instruction, MemorySize, OpKind};
use popek_cpu::state::{F80, X87State, fcw, fsw};
use popek_cpu::{Bus, Cpu};

/// FNINIT: the default control word, everything else cleared, all registers empty.
pub(super) fn fninit(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    init(&mut cpu.state.x87);
    Ok(())
}

fn init(x: &mut X87State) {
    x.fcw = fcw::INIT;
    x.fsw = 0;
    x.valid = 0;
    x.fop = 0;
    x.fip = 0;
    x.fcs = 0;
    x.fdp = 0;
    x.fds = 0;
}

/// FNCLEX: clears the exception flags, SF, ES and B.
pub(super) fn fnclex(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    cpu.state.x87.fsw &= !(fsw::EXC | fsw::SF | fsw::ES | fsw::B);
    Ok(())
}

/// FNSTSW AX / m16.
pub(super) fn fnstsw(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    let v = cpu.state.x87.fsw as u32;
    cpu.write_op(bus, insn, 0, 2, v)
}

/// FNSTCW m16.
pub(super) fn fnstcw(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    let v = cpu.state.x87.fcw as u32;
    cpu.write_op(bus, insn, 0, 2, v)
}

/// FLDCW m16 (an unmasked pending flag sets ES; #MF comes at the next waiting instruction).
pub(super) fn fldcw(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    let v = cpu.read_op(bus, insn, 0, 2)? as u16;
    cpu.state.x87.fcw = v;
    Ok(())
}

fn is16(insn: &Instruction) -> bool {
    matches!(insn.memory_size(), MemorySize::FpuEnv14 | MemorySize::FpuState94)
}

/// The environment image.
fn env_image(x: &X87State, op16: bool) -> Vec<u8> {
    let tw = x.full_tag_word();
    if op16 {
        let words = [x.fcw, x.fsw, tw, x.fip as u16, x.fcs, x.fdp as u16, x.fds];
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    } else {
        let hi = 0xffff_0000u32;
        let dwords = [
            hi | x.fcw as u32,
            hi | x.fsw as u32,
            hi | tw as u32,
            x.fip,
            x.fcs as u32 | ((x.fop as u32 & 0x7ff) << 16),
            x.fdp,
            hi | x.fds as u32,
        ];
        dwords.iter().flat_map(|d| d.to_le_bytes()).collect()
    }
}

/// Loads an environment image.
fn load_env(x: &mut X87State, b: &[u8], op16: bool) {
    let w = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let d = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let tw;
    if op16 {
        x.fcw = w(0);
        x.fsw = w(2);
        tw = w(4);
        x.fip = w(6) as u32;
        x.fcs = w(8);
        x.fdp = w(10) as u32;
        x.fds = w(12);
    } else {
        x.fcw = w(0);
        x.fsw = w(4);
        tw = w(8);
        x.fip = d(12);
        x.fcs = w(16);
        x.fop = w(18) & 0x7ff;
        x.fdp = d(20);
        x.fds = w(24);
    }
    x.valid = (0..8).filter(|i| (tw >> (2 * i)) & 3 != 3).fold(0, |m, i| m | 1 << i);
}

/// FNSTENV: stores the environment, then masks all exceptions.
pub(super) fn fnstenv(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    let img = env_image(&cpu.state.x87, is16(insn));
    let (s, off) = cpu.memory_operand(insn);
    write_bytes(cpu, bus, s, off, &img)?;
    cpu.state.x87.fcw |= fcw::MASKS;
    Ok(())
}

/// FLDENV.
pub(super) fn fldenv(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    let (s, off) = cpu.memory_operand(insn);
    let op16 = is16(insn);
    let b: [u8; 28] = if op16 {
        let mut b = [0u8; 28];
        b[..14].copy_from_slice(&read_bytes::<14>(cpu, bus, s, off)?);
        b
    } else {
        read_bytes::<28>(cpu, bus, s, off)?
    };
    load_env(&mut cpu.state.x87, &b, op16);
    Ok(())
}

/// FNSAVE: the environment and ST(0)–ST(7), then FNINIT.
pub(super) fn fnsave(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    let x = &cpu.state.x87;
    let mut img = env_image(x, is16(insn));
    for i in 0..8 {
        img.extend_from_slice(&x.st(i).to_bytes());
    }
    let (s, off) = cpu.memory_operand(insn);
    write_bytes(cpu, bus, s, off, &img)?;
    init(&mut cpu.state.x87);
    Ok(())
}

/// FRSTOR.
pub(super) fn frstor(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    let (s, off) = cpu.memory_operand(insn);
    let op16 = is16(insn);
    let b: [u8; 108] = if op16 {
        let mut b = [0u8; 108];
        let short = read_bytes::<94>(cpu, bus, s, off)?;
        b[..14].copy_from_slice(&short[..14]);
        b[28..].copy_from_slice(&short[14..]);
        b
    } else {
        read_bytes::<108>(cpu, bus, s, off)?
    };
    let x = &mut cpu.state.x87;
    load_env(x, &b, op16);
    let valid = x.valid;
    for i in 0..8 {
        let mut r = [0u8; 10];
        r.copy_from_slice(&b[28 + 10 * i..38 + 10 * i]);
        let p = x.phys(i);
        x.regs[p] = F80::from_bytes(r);
    }
    x.valid = valid;
    update_es(x);
    Ok(())
}

/// FNOP, and the 8087/80287 instructions later FPUs ignore.
pub(super) fn nothing(_: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    Ok(())
}

/// FFREE ST(i): tags it empty.
pub(super) fn ffree(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    let x = &mut cpu.state.x87;
    let p = x.phys(st_index(insn.op0_register()));
    x.valid &= !(1 << p);
    // C0–C3 are undefined (SDM); popek clears C1, as Intel processors do.
    x.set_cc(fsw::C1, false);
    Ok(())
}

/// FFREEP ST(i) (DF C0+i, undocumented but present since the 80287): FFREE, then pop.
pub(super) fn ffreep(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    ffree(cpu, bus, insn)?;
    cpu.state.x87.pop();
    Ok(())
}

/// FINCSTP: TOP + 1 (tags unchanged), C1 = 0.
pub(super) fn fincstp(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    let x = &mut cpu.state.x87;
    x.set_top(x.top() + 1);
    x.set_cc(fsw::C1, false);
    Ok(())
}

/// FDECSTP: TOP − 1, C1 = 0.
pub(super) fn fdecstp(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    let x = &mut cpu.state.x87;
    x.set_top(x.top().wrapping_sub(1));
    x.set_cc(fsw::C1, false);
    Ok(())
}

/// FXCH ST(i): exchanges ST(0) and ST(i); an empty one reads as the indefinite (masked
/// stack underflow), C1 = 0 otherwise.
pub(super) fn fxch(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    let i = if insn.op_count() >= 2 && insn.op1_kind() == OpKind::Register { st_index(insn.op1_register()) } else { 1 };
    let x = &mut cpu.state.x87;
    let (e0, ei) = (x.is_empty(0), x.is_empty(i));
    if e0 || ei {
        if !x.underflow() {
            return Ok(());
        }
        if e0 {
            x.set_st(0, F80::INDEFINITE);
        }
        if ei {
            x.set_st(i, F80::INDEFINITE);
        }
    } else {
        x.set_cc(fsw::C1, false);
    }
    let (a, b) = (x.st(0), x.st(i));
    x.set_st(0, b);
    x.set_st(i, a);
    Ok(())
}
