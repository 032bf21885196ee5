//! Control and debug registers: MOV to/from CRn and DRn, LMSW, SMSW, INVLPG
//! (SDM Vol. 2 MOV—Move to/from Control Registers, MOV—Move to/from Debug
//! Registers, LMSW, SMSW, INVLPG; register layouts in Vol. 3A 2.5 and 17.2).
//!
//! Paging-relevant writes keep the TLB coherent: CR0.PG/WP/PE and CR4.PSE/PGE
//! changes flush everything, a CR3 load flushes the non-global entries and
//! INVLPG one page. The decoded-code cache is keyed by physical address and
//! needs no flush here.

use crate::require_cpl0;
use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::{Code, Instruction, OpKind, Register};
use popek_cpu::state::{cr0, cr4};
use popek_cpu::{Bus, Cpu, ExecResult, Handler};

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    Some(match insn.code() {
        Code::Mov_r32_cr => mov_from_cr,
        Code::Mov_cr_r32 => mov_to_cr,
        Code::Mov_r32_dr => mov_from_dr,
        Code::Mov_dr_r32 => mov_to_dr,
        Code::Lmsw_rm16 | Code::Lmsw_r32m16 => lmsw,
        Code::Smsw_rm16 | Code::Smsw_r32m16 => smsw,
        Code::Invlpg_m => invlpg,
        _ => return None,
    })
}

/// CR0 bits that exist on this CPU; the rest are reserved, read as 0 and
/// ignore writes (SDM Vol. 2 MOV CR: "attempts to set them have no impact").
pub const CR0_DEFINED: u32 =
    cr0::PE | cr0::MP | cr0::EM | cr0::TS | cr0::ET | cr0::NE | cr0::WP | cr0::AM | cr0::NW | cr0::CD | cr0::PG;

/// CR3 bits kept with 32-bit paging: page-directory base, PCD and PWT. The
/// others are reserved and stay clear.
pub const CR3_DEFINED: u32 = 0xffff_f000 | (1 << 4) | (1 << 3);

/// Index of a control register (CR0..CR15), or #UD for the ones that do not exist.
fn cr_index(r: Register) -> Result<u32, Exception> {
    let n = r as u32 - Register::CR0 as u32;
    match n {
        0 | 2 | 3 | 4 => Ok(n),
        _ => Err(Exception::InvalidOpcode),
    }
}

/// MOV r32, CRn (CPL 0).
fn mov_from_cr(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let n = cr_index(insn.op1_register())?;
    require_cpl0(cpu)?;
    let s = &cpu.state;
    let v = match n {
        0 => s.cr0,
        2 => s.cr2,
        3 => s.cr3,
        _ => s.cr4,
    };
    cpu.write_gpr(insn.op0_register(), v);
    Ok(())
}

/// MOV CRn, r32 (CPL 0).
fn mov_to_cr(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let n = cr_index(insn.op0_register())?;
    require_cpl0(cpu)?;
    let v = cpu.read_gpr(insn.op1_register());
    match n {
        0 => write_cr0(cpu, v),
        2 => {
            cpu.state.cr2 = v;
            Ok(())
        }
        3 => {
            load_cr3(cpu, v);
            Ok(())
        }
        _ => write_cr4(cpu, v),
    }
}

/// Loads CR3: the defined bits are kept and the non-global TLB entries flushed (SDM Vol.
/// 3A 4.10.4.1). MOV CR3 and the SET_CR3 hypercall.
pub(crate) fn load_cr3(cpu: &mut Cpu, v: u32) {
    cpu.state.cr3 = v & CR3_DEFINED;
    cpu.tlb.flush_non_global();
}

/// Loads CR0 (SDM Vol. 3A 2.5): reserved bits are dropped and ET stays 1; PG
/// without PE and NW without CD are #GP(0). A change of PG, WP or PE flushes the TLB.
/// Clearing PE enters real-address mode: the segment caches keep what they hold until
/// each register is loaded again (SDM Vol. 3A 10.9.2), CPL stays 0.
fn write_cr0(cpu: &mut Cpu, v: u32) -> ExecResult {
    let new = (v & CR0_DEFINED) | cr0::ET;
    if new & cr0::PG != 0 && new & cr0::PE == 0 {
        return Err(Exception::GeneralProtection(0).into());
    }
    if new & cr0::NW != 0 && new & cr0::CD == 0 {
        return Err(Exception::GeneralProtection(0).into());
    }
    let old = cpu.state.cr0;
    cpu.state.cr0 = new;
    if (old ^ new) & (cr0::PG | cr0::WP | cr0::PE) != 0 {
        cpu.tlb.flush_all();
    }
    Ok(())
}

/// Loads CR4: any bit outside [`cr4::SUPPORTED`] is #GP(0); a change of PSE or
/// PGE flushes the whole TLB, global entries included (SDM Vol. 3A 4.10.4.1).
fn write_cr4(cpu: &mut Cpu, v: u32) -> ExecResult {
    if v & !cr4::SUPPORTED != 0 {
        return Err(Exception::GeneralProtection(0).into());
    }
    let old = cpu.state.cr4;
    cpu.state.cr4 = v;
    if (old ^ v) & (cr4::PSE | cr4::PGE) != 0 {
        cpu.tlb.flush_all();
    }
    Ok(())
}

/// Index into `state.dr` for DRn: DR4/DR5 alias DR6/DR7 when CR4.DE = 0 and are
/// #UD when CR4.DE = 1; DR8..DR15 do not exist (#UD).
fn dr_index(cpu: &Cpu, r: Register) -> Result<usize, Exception> {
    let n = (r as u32 - Register::DR0 as u32) as usize;
    match n {
        0..=3 | 6 | 7 => Ok(n),
        4 | 5 if cpu.state.cr4 & cr4::DE == 0 => Ok(n + 2),
        _ => Err(Exception::InvalidOpcode),
    }
}

/// DR6 bits that are fixed to 1 (bits 4–11 and 16–31).
const DR6_ONES: u32 = 0xffff_0ff0;
/// DR6 bits software can write: B0–B3, BD, BS, BT.
const DR6_WRITABLE: u32 = 0xe00f;
/// DR7 bit 10, fixed to 1.
const DR7_ONES: u32 = 1 << 10;
/// DR7 reserved bits fixed to 0 (11, 12, 14, 15).
const DR7_ZEROS: u32 = 0xd800;

/// MOV r32, DRn (CPL 0). #UD is checked before the privilege level, as on hardware.
fn mov_from_dr(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let i = dr_index(cpu, insn.op1_register())?;
    require_cpl0(cpu)?;
    let v = cpu.state.dr[i];
    cpu.write_gpr(insn.op0_register(), v);
    Ok(())
}

/// MOV DRn, r32 (CPL 0): stores the value with DR6/DR7's fixed bits forced.
/// Breakpoints (and DR7.GD) are not implemented yet: the registers are only stored.
fn mov_to_dr(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let i = dr_index(cpu, insn.op0_register())?;
    require_cpl0(cpu)?;
    let v = cpu.read_gpr(insn.op1_register());
    cpu.state.dr[i] = match i {
        6 => (v & DR6_WRITABLE) | DR6_ONES,
        7 => (v & !DR7_ZEROS) | DR7_ONES,
        _ => v,
    };
    Ok(())
}

/// The machine-status-word bits: PE, MP, EM, TS.
const MSW_BITS: u32 = cr0::PE | cr0::MP | cr0::EM | cr0::TS;

/// LMSW r/m16 (CPL 0): loads PE, MP, EM and TS from the source; PE can be set but
/// never cleared.
fn lmsw(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    require_cpl0(cpu)?;
    let src = cpu.read_op(bus, insn, 0, 2)?;
    let old = cpu.state.cr0;
    let new = (old & !(MSW_BITS & !cr0::PE)) | (src & MSW_BITS);
    cpu.state.cr0 = new;
    if (old ^ new) & cr0::PE != 0 {
        cpu.tlb.flush_all();
    }
    Ok(())
}

/// SMSW r/m16 or r32 (not privileged: no UMIP). To memory it stores the low 16
/// bits of CR0; to a 32-bit register the whole of CR0 (as P6 and later CPUs do).
fn smsw(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let cr0v = cpu.state.cr0;
    if insn.op0_kind() == OpKind::Register {
        cpu.write_gpr(insn.op0_register(), cr0v);
        Ok(())
    } else {
        Ok(cpu.write_op(bus, insn, 0, 2, cr0v & 0xffff)?)
    }
}

/// INVLPG m (CPL 0): drops the TLB entries for the page holding the operand's
/// linear address (segment base + effective address). Memory is not accessed and
/// no segment check is made.
fn invlpg(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    require_cpl0(cpu)?;
    let (s, off) = cpu.memory_operand(insn);
    let lin = cpu.state.seg(s).base.wrapping_add(off);
    cpu.tlb.flush_page(lin);
    Ok(())
}
