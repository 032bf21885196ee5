//! Software interrupts and interrupt return: INT n, INT3, INTO, INT1, IRET/IRETD (SDM Vol. 2 "INT n/INTO/INT3/INT1", "IRET").
//!
//! Delivery itself (IDT gates, stack switch) lives in `popek_cpu::interrupt`; a fault
//! during delivery of a software interrupt comes back as the INT instruction's fault.

use popek_cpu::exception::{Exception, Unsupported};
use popek_cpu::iced_x86::{Code, Instruction};
use popek_cpu::segment::CodeTransfer;
use popek_cpu::state::flags::{self, FIXED1};
use popek_cpu::state::gpr::ESP;
use popek_cpu::{Bus, Cpu, ExecResult, Handler, Seg};

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    Some(match insn.code() {
        Code::Int_imm8 => int_n,
        Code::Int3 => int3,
        Code::Into => into,
        Code::Int1 => int1,
        Code::Iretw => iret::<2>,
        Code::Iretd => iret::<4>,
        _ => return None,
    })
}

/// INT imm8.
fn int_n(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    cpu.deliver_software_interrupt(bus, insn.immediate8())
}

/// INT3: a trap through vector 3 (EIP pushed = next instruction).
fn int3(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Instruction) -> ExecResult {
    cpu.deliver_software_interrupt(bus, 3)
}

/// INT1 (ICEBP, `F1`): a debug exception (#DB, vector 1) as a trap — the EIP pushed is
/// the next instruction's — delivered as a hardware debug exception is, not as INT n: no
/// gate DPL check (it reaches a DPL-0 gate from ring 3), EXT set in the error code of a
/// fault during delivery, and no bit of DR6 set (SDM Vol. 2 "INT n/INTO/INT3/INT1").
fn int1(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Instruction) -> ExecResult {
    cpu.deliver_exception(bus, Exception::Debug)
}

/// INTO: INT 4 if OF is set.
fn into(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Instruction) -> ExecResult {
    if cpu.state.eflags & flags::OF == 0 {
        return Ok(());
    }
    cpu.deliver_software_interrupt(bus, 4)
}

fn unsupported(cpu: &Cpu, what: &str) -> popek_cpu::Event {
    Unsupported { what: what.into(), eip: cpu.state.eip, bytes: vec![] }.into()
}

/// The EFLAGS bits IRET may change at privilege `cpl` with `iopl` (SDM Vol. 2 IRET, "Operation").
fn iret_flags_mask(cpl: u8, iopl: u8, w: u32) -> u32 {
    let mut m =
        flags::CF | flags::PF | flags::AF | flags::ZF | flags::SF | flags::TF | flags::DF | flags::OF | flags::NT;
    if w == 4 {
        m |= flags::RF | flags::AC | flags::ID;
    }
    if cpl <= iopl {
        m |= flags::IF;
    }
    if cpl == 0 {
        m |= flags::IOPL;
        if w == 4 {
            m |= flags::VIF | flags::VIP;
        }
    }
    if w == 2 { m & 0xffff } else { m }
}

/// IRET (W = 2) / IRETD (W = 4): same-level return, or return to an outer level
/// popping ESP and SS, or with NT set a return to the calling task. Virtual-8086 returns
/// are unsupported.
fn iret<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let r = iret_any::<W>(cpu, bus, insn);
    if r.is_ok() {
        // Any IRET that completes unblocks NMIs (SDM Vol. 3A 6.7.1).
        cpu.state.nmi_blocked = false;
    }
    r
}

fn iret_any<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Instruction) -> ExecResult {
    let s = &cpu.state;
    if s.cr0 & popek_cpu::state::cr0::PE == 0 {
        return iret_real::<W>(cpu, bus);
    }
    if s.eflags & flags::VM != 0 {
        return Err(unsupported(cpu, "IRET in virtual-8086 mode"));
    }
    if s.eflags & flags::NT != 0 {
        // Back to the task that called this one (SDM Vol. 3A 7.4).
        return cpu.return_from_nested_task(bus);
    }
    let cpl = s.cpl;
    let iopl = s.iopl();
    // The whole frame a return to an outer level pops, read at once if no read of it can
    // fault; else each value as it is needed, in the SDM's order (a fault where it says).
    let frame = cpu.peek_quick::<5>(W);
    let peek = |cpu: &mut Cpu, bus: &mut dyn Bus, i: u32| match frame {
        Some(v) => Ok(v[i as usize]),
        None => cpu.peek(bus, i * W, W),
    };
    let eip = peek(cpu, bus, 0)?;
    let cs = peek(cpu, bus, 1)? as u16;
    let fl = peek(cpu, bus, 2)?;
    if W == 4 && fl & flags::VM != 0 && cpl == 0 {
        return Err(unsupported(cpu, "IRET to virtual-8086 mode"));
    }
    let target = cpu.check_code_segment(bus, cs, CodeTransfer::Return)?;
    let outer = if target.cpl > cpl {
        let esp = peek(cpu, bus, 3)?;
        let ss_sel = peek(cpu, bus, 4)? as u16;
        Some((esp, cpu.check_outer_stack(bus, ss_sel, target.cpl)?))
    } else {
        None
    };
    if eip > target.cs.limit {
        return Err(Exception::GeneralProtection(0).into());
    }
    // Commit.
    let m = iret_flags_mask(cpl, iopl, W);
    cpu.state.eflags = (cpu.state.eflags & !m) | (fl & m) | FIXED1;
    match outer {
        Some((esp, ss)) => {
            cpu.state.seg[Seg::Ss as usize] = ss;
            cpu.state.gpr[ESP] = if ss.big() { esp } else { (cpu.state.gpr[ESP] & 0xffff_0000) | (esp & 0xffff) };
            cpu.commit_code_segment(target);
            cpu.null_inaccessible_data_segments();
        }
        None => {
            let sp = cpu.sp_offset(3 * W);
            cpu.set_sp(sp);
            cpu.commit_code_segment(target);
        }
    }
    cpu.state.eip = eip;
    Ok(())
}

/// Real-address mode IRET: pop IP, CS, FLAGS (SDM Vol. 2 IRET, real-address mode).
fn iret_real<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus) -> ExecResult {
    let eip = cpu.peek(bus, 0, W)?;
    let cs = cpu.peek(bus, W, W)? as u16;
    let fl = cpu.peek(bus, 2 * W, W)?;
    if eip > cpu.state.seg(Seg::Cs).limit {
        return Err(Exception::GeneralProtection(0).into());
    }
    let m = if W == 4 { 0x0025_7fd5 } else { 0x7fd5 };
    cpu.state.eflags = (cpu.state.eflags & !m) | (fl & m) | FIXED1;
    let sp = cpu.sp_offset(3 * W);
    cpu.set_sp(sp);
    let c = &mut cpu.state.seg[Seg::Cs as usize];
    c.selector = cs;
    c.base = (cs as u32) << 4;
    cpu.state.eip = eip;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iret_flag_rules() {
        // CPL 3, IOPL 0: neither IF nor IOPL may change.
        let m = iret_flags_mask(3, 0, 4);
        assert_eq!(m & (flags::IF | flags::IOPL), 0);
        // CPL 3, IOPL 3: IF may change, IOPL not.
        let m = iret_flags_mask(3, 3, 4);
        assert_eq!(m & (flags::IF | flags::IOPL), flags::IF);
        // CPL 0: both, and VIF/VIP with a 32-bit IRET only.
        assert_eq!(iret_flags_mask(0, 0, 4) & (flags::IOPL | flags::VIF), flags::IOPL | flags::VIF);
        assert_eq!(iret_flags_mask(0, 0, 2) & !0xffff, 0);
    }
}
