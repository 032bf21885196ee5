//! Far transfers and segment-register loads and stores: far JMP/CALL/RET, MOV Sreg, PUSH/POP Sreg,
//! LDS/LES/LFS/LGS/LSS (SDM Vol. 2 entries of each; protection rules SDM Vol. 3A 5.6–5.8).
//!
//! Each handler computes the new segment caches first (which may fault), writes the
//! stack, and only then commits registers.

use popek_cpu::exception::{Event, Exception};
use popek_cpu::iced_x86::{Code, Instruction, OpKind};
use popek_cpu::operand::{is_addr16, op_width, seg_of};
use popek_cpu::segment::CodeTransfer;
use popek_cpu::state::gpr::ESP;
use popek_cpu::{Bus, Cpu, ExecResult, Handler, Seg, SegmentCache};

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    Some(match insn.code() {
        Code::Jmp_ptr1616 | Code::Jmp_ptr1632 | Code::Jmp_m1616 | Code::Jmp_m1632 => jmp_far,
        Code::Call_ptr1616 | Code::Call_m1616 => call_far::<2>,
        Code::Call_ptr1632 | Code::Call_m1632 => call_far::<4>,
        Code::Retfw | Code::Retfw_imm16 => ret_far::<2>,
        Code::Retfd | Code::Retfd_imm16 => ret_far::<4>,
        Code::Mov_Sreg_rm16 | Code::Mov_Sreg_r32m16 => mov_to_sreg,
        Code::Mov_rm16_Sreg | Code::Mov_r32m16_Sreg => mov_from_sreg,
        Code::Pushw_ES | Code::Pushw_CS | Code::Pushw_SS | Code::Pushw_DS | Code::Pushw_FS | Code::Pushw_GS => {
            push_sreg::<2>
        }
        Code::Pushd_ES | Code::Pushd_CS | Code::Pushd_SS | Code::Pushd_DS | Code::Pushd_FS | Code::Pushd_GS => {
            push_sreg::<4>
        }
        Code::Popw_CS => invalid,
        Code::Popw_ES | Code::Popw_SS | Code::Popw_DS | Code::Popw_FS | Code::Popw_GS => pop_sreg::<2>,
        Code::Popd_ES | Code::Popd_SS | Code::Popd_DS | Code::Popd_FS | Code::Popd_GS => pop_sreg::<4>,
        Code::Lds_r16_m1616 | Code::Les_r16_m1616 | Code::Lfs_r16_m1616 | Code::Lgs_r16_m1616 | Code::Lss_r16_m1616 => {
            load_far_pointer::<2>
        }
        Code::Lds_r32_m1632 | Code::Les_r32_m1632 | Code::Lfs_r32_m1632 | Code::Lgs_r32_m1632 | Code::Lss_r32_m1632 => {
            load_far_pointer::<4>
        }
        _ => return None,
    })
}

fn invalid(_: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    Err(Exception::InvalidOpcode.into())
}

/// Offset `delta` bytes on from `off`, wrapped to 64 KiB for 16-bit addressing.
fn offset_plus(insn: &Instruction, off: u32, delta: u32) -> u32 {
    let v = off.wrapping_add(delta);
    if is_addr16(insn) { v & 0xffff } else { v }
}

/// Reads an `m16:16`/`m16:32` far pointer (offset first, then the selector).
fn read_far_pointer(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction, w: u32) -> Result<(u16, u32), Exception> {
    let (s, off) = cpu.memory_operand(insn);
    let offset = cpu.read(bus, s, off, w)?;
    let sel = cpu.read(bus, s, offset_plus(insn, off, w), 2)? as u16;
    Ok((sel, offset))
}

/// Selector and offset of a far JMP/CALL target (immediate `ptr16:16/32` or memory `m16:16/32`).
fn far_target(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(u16, u32), Exception> {
    match insn.op0_kind() {
        OpKind::FarBranch16 => Ok((insn.far_branch_selector(), insn.far_branch16() as u32)),
        OpKind::FarBranch32 => Ok((insn.far_branch_selector(), insn.far_branch32())),
        _ => {
            let w = if matches!(insn.code(), Code::Jmp_m1616 | Code::Call_m1616) { 2 } else { 4 };
            read_far_pointer(cpu, bus, insn, w)
        }
    }
}

/// JMP ptr16:16/32, JMP m16:16/32 to a code segment, or to a task (a TSS or a task
/// gate: the offset is ignored, SDM Vol. 3A 7.3).
fn jmp_far(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let (sel, eip) = far_target(cpu, bus, insn)?;
    if cpu.protected_mode() && cpu.far_transfer_to_task(bus, sel, false)? {
        return Ok(());
    }
    cpu.load_code_segment(bus, sel, eip, CodeTransfer::JmpCall)
}

/// CALL ptr16:16/32, CALL m16:16/32 to a code segment: pushes CS and EIP (W bytes each);
/// to a TSS or through a task gate: a nested task switch.
fn call_far<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let (sel, eip) = far_target(cpu, bus, insn)?;
    if cpu.protected_mode() && cpu.far_transfer_to_task(bus, sel, true)? {
        return Ok(());
    }
    let target = cpu.check_code_segment(bus, sel, CodeTransfer::JmpCall)?;
    if eip > target.cs.limit {
        return Err(Exception::GeneralProtection(0).into());
    }
    let s1 = cpu.sp_offset(W.wrapping_neg());
    let s2 = cpu.sp_offset((2 * W).wrapping_neg());
    let cs = cpu.state.seg(Seg::Cs).selector as u32;
    let ret = cpu.state.eip;
    cpu.write(bus, Seg::Ss, s1, W, cs)?;
    cpu.write(bus, Seg::Ss, s2, W, ret)?;
    cpu.set_sp(s2);
    cpu.commit_code_segment(target);
    cpu.state.eip = eip;
    Ok(())
}

/// RETF / RETF imm16: same-level return, or return to an outer level popping SS:ESP
/// (then DS/ES/FS/GS the new level may not use become null).
fn ret_far<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let imm = if matches!(insn.code(), Code::Retfw_imm16 | Code::Retfd_imm16) { insn.immediate16() as u32 } else { 0 };
    let cpl = cpu.state.cpl;
    let eip = cpu.peek(bus, 0, W)?;
    let cs = cpu.peek(bus, W, W)? as u16;
    let target = cpu.check_code_segment(bus, cs, CodeTransfer::Return)?;
    let outer = if target.cpl > cpl {
        let esp = cpu.peek(bus, 2 * W + imm, W)?;
        let ss_sel = cpu.peek(bus, 3 * W + imm, W)? as u16;
        Some((esp, cpu.check_outer_stack(bus, ss_sel, target.cpl)?))
    } else {
        None
    };
    if eip > target.cs.limit {
        return Err(Exception::GeneralProtection(0).into());
    }
    match outer {
        Some((esp, ss)) => {
            cpu.state.seg[Seg::Ss as usize] = ss;
            cpu.set_sp(esp.wrapping_add(imm));
            cpu.commit_code_segment(target);
            cpu.null_inaccessible_data_segments();
        }
        None => {
            let sp = cpu.sp_offset(2 * W + imm);
            cpu.set_sp(sp);
            cpu.commit_code_segment(target);
        }
    }
    cpu.state.eip = eip;
    Ok(())
}

fn sreg(insn: &Instruction, n: u32) -> Seg {
    seg_of(insn.op_register(n)).unwrap_or(Seg::Ds)
}

/// MOV Sreg, r/m16: MOV to CS is #UD; MOV SS inhibits interrupts for one instruction.
fn mov_to_sreg(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let seg = sreg(insn, 0);
    if seg == Seg::Cs {
        return Err(Exception::InvalidOpcode.into());
    }
    let sel = cpu.read_op(bus, insn, 1, 2)? as u16;
    cpu.load_segment(bus, seg, sel)?;
    if seg == Seg::Ss {
        cpu.state.interrupt_shadow = true;
    }
    Ok(())
}

/// MOV r/m16, Sreg (a 32-bit register destination is zero-extended; memory gets 16 bits).
fn mov_from_sreg(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let v = cpu.state.seg(sreg(insn, 1)).selector as u32;
    let w = if insn.op0_kind() == OpKind::Memory { 2 } else { op_width(insn, 0) };
    Ok(cpu.write_op(bus, insn, 0, w, v)?)
}

/// PUSH Sreg: ESP moves by the operand size; a 32-bit push writes only the low 16 bits
/// (as recent Intel processors do, SDM Vol. 2 PUSH).
fn push_sreg<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let v = cpu.state.seg(sreg(insn, 0)).selector as u32;
    let sp = cpu.sp_offset(W.wrapping_neg());
    cpu.write(bus, Seg::Ss, sp, 2, v)?;
    cpu.set_sp(sp);
    Ok(())
}

/// POP Sreg (POP SS inhibits interrupts for one instruction). ESP moves by the old stack's width.
fn pop_sreg<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let seg = sreg(insn, 0);
    let c = pop_sreg_check(cpu, bus, seg, W)?;
    pop_sreg_commit(cpu, seg, c, W);
    Ok(())
}

/// POP Sreg of `width` bytes, the half that may fault: the selector on top of the stack
/// and the cache it would load into `seg` (the descriptor's Accessed bit set, as the CPU
/// does, but no register changed).
pub fn pop_sreg_check(cpu: &mut Cpu, bus: &mut dyn Bus, seg: Seg, width: u32) -> Result<SegmentCache, Exception> {
    let sel = cpu.peek(bus, 0, width)? as u16;
    cpu.check_data_segment(bus, seg, sel)
}

/// POP Sreg's other half: ESP moves (by the old stack's width) and `seg` takes cache `c`.
pub fn pop_sreg_commit(cpu: &mut Cpu, seg: Seg, c: SegmentCache, width: u32) {
    let old = cpu.state.gpr[ESP];
    let sp = cpu.sp_offset(width);
    cpu.state.gpr[ESP] = if cpu.state.stack32() { sp } else { (old & 0xffff_0000) | sp };
    cpu.state.seg[seg as usize] = c;
    if seg == Seg::Ss {
        cpu.state.interrupt_shadow = true;
    }
}

/// LDS/LES/LFS/LGS/LSS r, m16:16/32.
fn load_far_pointer<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let seg = match insn.code() {
        Code::Lds_r16_m1616 | Code::Lds_r32_m1632 => Seg::Ds,
        Code::Les_r16_m1616 | Code::Les_r32_m1632 => Seg::Es,
        Code::Lfs_r16_m1616 | Code::Lfs_r32_m1632 => Seg::Fs,
        Code::Lgs_r16_m1616 | Code::Lgs_r32_m1632 => Seg::Gs,
        _ => Seg::Ss,
    };
    if insn.op1_kind() != OpKind::Memory {
        return Err(Event::Exception(Exception::InvalidOpcode));
    }
    let (sel, offset) = read_far_pointer(cpu, bus, insn, W)?;
    let c = cpu.check_data_segment(bus, seg, sel)?;
    cpu.state.seg[seg as usize] = c;
    cpu.write_gpr(insn.op0_register(), offset);
    Ok(())
}
