//! Descriptor-table instructions: LGDT LIDT SGDT SIDT LLDT LTR SLDT STR LAR LSL VERR VERW ARPL
//! (SDM Vol. 2 entries of each; descriptor formats SDM Vol. 3A 3.4.5, 3.5, 7.2).
//!
//! LGDT/LIDT/LLDT/LTR are privileged; SGDT/SIDT/SLDT/STR are sensitive but not
//! privileged (no UMIP), which is what made x86 classically non-virtualizable.

use crate::require_cpl0;
use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::{Code, Instruction, OpKind};
use popek_cpu::operand::{is_addr16, op_width};
use popek_cpu::segment::{Descriptor, is_null, selector, system_type};
use popek_cpu::state::flags::ZF;
use popek_cpu::{Bus, Cpu, ExecResult, Handler, SegmentCache};

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    Some(match insn.code() {
        Code::Lgdt_m1632_16 => load_table::<false, true>,
        Code::Lgdt_m1632 => load_table::<false, false>,
        Code::Lidt_m1632_16 => load_table::<true, true>,
        Code::Lidt_m1632 => load_table::<true, false>,
        Code::Sgdt_m1632_16 | Code::Sgdt_m1632 => store_table::<false>,
        Code::Sidt_m1632_16 | Code::Sidt_m1632 => store_table::<true>,
        Code::Lldt_rm16 | Code::Lldt_r32m16 => lldt,
        Code::Ltr_rm16 | Code::Ltr_r32m16 => ltr,
        Code::Sldt_rm16 | Code::Sldt_r32m16 => store_selector::<false>,
        Code::Str_rm16 | Code::Str_r32m16 => store_selector::<true>,
        Code::Lar_r16_rm16 | Code::Lar_r32_r32m16 => lar,
        Code::Lsl_r16_rm16 | Code::Lsl_r32_r32m16 => lsl,
        Code::Verr_rm16 | Code::Verr_r32m16 => verify::<false>,
        Code::Verw_rm16 | Code::Verw_r32m16 => verify::<true>,
        Code::Arpl_rm16_r16 | Code::Arpl_r32m16_r32 => arpl,
        _ => return None,
    })
}

/// #UD outside protected mode (real-address and virtual-8086 mode) for LLDT, LTR, SLDT,
/// STR, LAR, LSL, VERR, VERW and ARPL.
fn require_protected(cpu: &Cpu) -> Result<(), Exception> {
    if cpu.protected_mode() { Ok(()) } else { Err(Exception::InvalidOpcode) }
}

fn offset_plus(insn: &Instruction, off: u32, delta: u32) -> u32 {
    let v = off.wrapping_add(delta);
    if is_addr16(insn) { v & 0xffff } else { v }
}

fn set_zf(cpu: &mut Cpu, z: bool) {
    cpu.state.eflags = (cpu.state.eflags & !ZF) | if z { ZF } else { 0 };
}

/// LGDT / LIDT m16&32: with a 16-bit operand size only 24 bits of base are loaded.
fn load_table<const IDT: bool, const O16: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    require_cpl0(cpu)?;
    let (s, off) = cpu.memory_operand(insn);
    let limit = cpu.read(bus, s, off, 2)? as u16;
    let mut base = cpu.read(bus, s, offset_plus(insn, off, 2), 4)?;
    if O16 {
        base &= 0x00ff_ffff;
    }
    let t = if IDT { &mut cpu.state.idtr } else { &mut cpu.state.gdtr };
    t.base = base;
    t.limit = limit;
    Ok(())
}

/// SGDT / SIDT m: 16-bit limit then the full 32-bit base, at any CPL.
fn store_table<const IDT: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let t = if IDT { cpu.state.idtr } else { cpu.state.gdtr };
    let (s, off) = cpu.memory_operand(insn);
    let hi = offset_plus(insn, off, 2);
    cpu.probe_write(bus, s, off, 2)?;
    cpu.probe_write(bus, s, hi, 4)?;
    cpu.write(bus, s, off, 2, t.limit as u32)?;
    cpu.write(bus, s, hi, 4, t.base)?;
    Ok(())
}

/// SLDT / STR r/m16 (a 32-bit register destination is zero-extended).
fn store_selector<const TR: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    require_protected(cpu)?;
    let v = if TR { cpu.state.tr.selector } else { cpu.state.ldtr.selector } as u32;
    let w = if insn.op0_kind() == OpKind::Memory { 2 } else { op_width(insn, 0) };
    Ok(cpu.write_op(bus, insn, 0, w, v)?)
}

/// LLDT r/m16: a null selector leaves LDTR unusable; otherwise an LDT descriptor in the GDT.
fn lldt(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    require_protected(cpu)?;
    require_cpl0(cpu)?;
    let sel = cpu.read_op(bus, insn, 0, 2)? as u16;
    if is_null(sel) {
        cpu.state.ldtr = SegmentCache { selector: sel, access: 0, base: 0, limit: 0 };
        return Ok(());
    }
    let gp = Exception::GeneralProtection(sel & !selector::RPL);
    if sel & selector::TI != 0 {
        return Err(gp.into());
    }
    let d = cpu.read_descriptor(bus, sel)?;
    if d.is_code_or_data() || d.typ() != system_type::LDT {
        return Err(gp.into());
    }
    if !d.present() {
        return Err(Exception::SegmentNotPresent(sel & !selector::RPL).into());
    }
    cpu.state.ldtr = d.cache(sel);
    Ok(())
}

/// LTR r/m16: loads an available TSS from the GDT and marks it busy there.
fn ltr(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    require_protected(cpu)?;
    require_cpl0(cpu)?;
    let sel = cpu.read_op(bus, insn, 0, 2)? as u16;
    if is_null(sel) {
        return Err(Exception::GeneralProtection(0).into());
    }
    let gp = Exception::GeneralProtection(sel & !selector::RPL);
    if sel & selector::TI != 0 {
        return Err(gp.into());
    }
    let d = cpu.read_descriptor(bus, sel)?;
    if d.is_code_or_data() || !matches!(d.typ(), system_type::TSS16_AVAILABLE | system_type::TSS32_AVAILABLE) {
        return Err(gp.into());
    }
    if !d.present() {
        return Err(Exception::SegmentNotPresent(sel & !selector::RPL).into());
    }
    let busy = Descriptor { lo: d.lo, hi: d.hi | 2 << 8 };
    cpu.write_descriptor_hi(bus, sel, busy.hi)?;
    cpu.state.tr = busy.cache(sel);
    Ok(())
}

/// The descriptor for `sel` if it exists and is visible at the current CPL and `sel`'s RPL
/// (conforming code segments are always visible) — the common part of LAR, LSL, VERR, VERW.
fn visible(cpu: &mut Cpu, bus: &mut dyn Bus, sel: u16) -> Result<Option<Descriptor>, Exception> {
    if is_null(sel) {
        return Ok(None);
    }
    let Some(d) = cpu.fetch_descriptor(bus, sel)? else { return Ok(None) };
    let rpl = (sel & selector::RPL) as u8;
    if !d.is_conforming() && (cpu.state.cpl > d.dpl() || rpl > d.dpl()) {
        return Ok(None);
    }
    Ok(Some(d))
}

/// LAR r, r/m16: ZF=1 and the access rights (descriptor dword 2 masked) if visible and of a valid type.
fn lar(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    require_protected(cpu)?;
    let sel = cpu.read_op(bus, insn, 1, 2)? as u16;
    let d = visible(cpu, bus, sel)?.filter(|d| {
        use system_type::*;
        d.is_code_or_data()
            || matches!(
                d.typ(),
                TSS16_AVAILABLE
                    | LDT
                    | TSS16_BUSY
                    | CALL_GATE16
                    | TASK_GATE
                    | TSS32_AVAILABLE
                    | TSS32_BUSY
                    | CALL_GATE32
            )
    });
    if let Some(d) = d {
        let w = op_width(insn, 0);
        let v = if w == 4 { d.hi & 0x00f0_ff00 } else { d.hi & 0xff00 };
        cpu.write_gpr(insn.op0_register(), v);
    }
    set_zf(cpu, d.is_some());
    Ok(())
}

/// LSL r, r/m16: ZF=1 and the byte-granular limit if visible and of a valid type.
fn lsl(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    require_protected(cpu)?;
    let sel = cpu.read_op(bus, insn, 1, 2)? as u16;
    let d = visible(cpu, bus, sel)?.filter(|d| {
        use system_type::*;
        d.is_code_or_data() || matches!(d.typ(), TSS16_AVAILABLE | LDT | TSS16_BUSY | TSS32_AVAILABLE | TSS32_BUSY)
    });
    if let Some(d) = d {
        cpu.write_gpr(insn.op0_register(), d.cache(sel).limit);
    }
    set_zf(cpu, d.is_some());
    Ok(())
}

/// VERR / VERW r/m16: ZF=1 if the segment is readable (VERR) or writable (VERW) at CPL and RPL.
fn verify<const WRITE: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    require_protected(cpu)?;
    let sel = cpu.read_op(bus, insn, 0, 2)? as u16;
    let ok = visible(cpu, bus, sel)?.is_some_and(|d| if WRITE { d.is_writable_data() } else { d.is_readable() });
    set_zf(cpu, ok);
    Ok(())
}

/// ARPL r/m16, r16: raises the destination selector's RPL to the source's; ZF=1 if it changed.
fn arpl(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    require_protected(cpu)?;
    let dest = cpu.read_op(bus, insn, 0, 2)?;
    let src = cpu.read_gpr(insn.op1_register()) & 3;
    let raise = dest & 3 < src;
    if raise {
        let v = (dest & !3) | src;
        if insn.op0_kind() == OpKind::Memory {
            cpu.write_op(bus, insn, 0, 2, v)?;
        } else {
            // Only the low 16 bits of a 32-bit register change.
            cpu.write_gpr(insn.op0_register(), v);
        }
    }
    set_zf(cpu, raise);
    Ok(())
}
