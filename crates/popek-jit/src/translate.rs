//! Classification: how the translator treats each guest instruction (the data kept
//! with the block), and the host twin of an `ident` instruction.

use crate::JitInsn;
use popek_cpu::iced_x86::{
    Code, ConditionCode, Encoder, FlowControl, Instruction, MemoryOperand, Mnemonic, OpKind, Register,
};
use popek_interp::dispatch;
use std::cell::Cell;

/// How the translator treats one guest instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Treatment {
    /// Safe and register-only: its host twin runs in place, on the guest registers
    /// held in host registers and the guest flags held in host EFLAGS.
    Ident,
    /// An `ident` candidate with one memory operand: translated code computes the
    /// address, looks it up in the soft-TLB inline and runs the host twin on host
    /// memory; a TLB miss (or MMIO, a code page, a page-crossing access) calls the
    /// instruction's handler instead, which also raises any fault precisely.
    Rewritten,
    /// Sensitive or privileged: translated code calls the VMM's handler (the one
    /// the interpreter uses).
    Callout,
    /// Not yet translated inline (memory operands, control transfers, …): translated
    /// code calls the interpreter's handler for it, without leaving the block.
    Helper,
}

impl Treatment {
    /// Lower-case name, as `explain` and the statistics print it.
    pub fn name(self) -> &'static str {
        match self {
            Treatment::Ident => "ident",
            Treatment::Rewritten => "rewritten",
            Treatment::Callout => "callout",
            Treatment::Helper => "helper",
        }
    }
}

/// True for a near relative JMP or Jcc in 32-bit code: translated inline in a flat block
/// (the CS limit is 4 GiB, so the target needs no check).
pub(crate) fn is_inline_branch(insn: &Instruction) -> bool {
    insn.op0_kind() == OpKind::NearBranch32
        && match insn.flow_control() {
            FlowControl::UnconditionalBranch => insn.mnemonic() == Mnemonic::Jmp,
            FlowControl::ConditionalBranch => {
                insn.condition_code() != ConditionCode::None && insn.is_jcc_short_or_near()
            }
            _ => false,
        }
}

/// How `insn` is treated in a block with flat segments (`flat`) or not.
pub fn classify(insn: &Instruction, flat: bool) -> Treatment {
    if dispatch::classify(insn).0 == "vmm" {
        Treatment::Callout
    } else if flat && is_inline_branch(insn) {
        Treatment::Rewritten
    } else if host_twin(insn).is_some() {
        Treatment::Ident
    } else if flat && memory_twin(insn, 0).is_some() {
        Treatment::Rewritten
    } else {
        Treatment::Helper
    }
}

/// The block cache's decode-time hook: handler and treatment, once per instruction.
pub(crate) fn prepare(insn: &Instruction, flat: bool) -> JitInsn {
    JitInsn {
        handler: dispatch::handler_for(insn),
        treatment: classify(insn, flat),
        entry: Cell::new(None),
        runs: Cell::new(0),
    }
}

/// Host scratch register that holds the host address of a rewritten memory operand.
pub(crate) const HOST_ADDR: Register = Register::R10;

/// A rewritten instruction's pieces: `lea r10d, [guest address]` (with host registers),
/// the host twin with its memory operand replaced by `[r10]`, the access width and
/// whether it writes memory.
pub(crate) struct MemoryTwin {
    pub(crate) lea: Vec<u8>,
    pub(crate) twin: Vec<u8>,
    pub(crate) width: u32,
    pub(crate) write: bool,
}

/// PUSH r32 / imm and POP r32 on the flat 32-bit stack (ESP lives in R12D): the address
/// is the new or the current top, the twin moves the value and then ESP — so a fault
/// (on the slow path, in the handler) leaves ESP untouched.
fn stack_twin(insn: &Instruction, shift: u32) -> Option<MemoryTwin> {
    let top = |delta: i64| MemoryOperand::with_base_displ(Register::R12D, delta);
    let slot = MemoryOperand::with_base(HOST_ADDR);
    if matches!(insn.code(), Code::Call_rel32_32 | Code::Retnd) {
        return call_ret_twin(insn, shift);
    }
    let (lea_delta, first, esp_delta, write) = match insn.code() {
        Code::Push_r32 => {
            (-4, Instruction::with2(Code::Mov_rm32_r32, slot, host_reg(insn.op0_register())).ok()?, -4, true)
        }
        Code::Pushd_imm32 | Code::Pushd_imm8 => {
            (-4, Instruction::with2(Code::Mov_rm32_imm32, slot, insn.immediate(0) as u32).ok()?, -4, true)
        }
        Code::Pop_r32 => {
            (0, Instruction::with2(Code::Mov_r32_rm32, host_reg(insn.op0_register()), slot).ok()?, 4, false)
        }
        _ => return None,
    };
    let mut enc = Encoder::new(64);
    enc.encode(&Instruction::with2(Code::Lea_r32_m, Register::R10D, top(lea_delta)).ok()?, 0).ok()?;
    let lea = enc.take_buffer();
    enc.encode(&first, 0).ok()?;
    // POP ESP: ESP is the popped value, not the popped value plus 4.
    if !(insn.code() == Code::Pop_r32 && insn.op0_register() == Register::ESP) {
        enc.encode(&Instruction::with2(Code::Lea_r32_m, Register::R12D, top(esp_delta)).ok()?, 0).ok()?;
    }
    Some(MemoryTwin { lea, twin: enc.take_buffer(), width: 4, write })
}

/// CALL rel32 pushes the return address (the EIP of the next instruction where the block
/// runs: decoded EIP plus `shift`) and the block end jumps to the target; RET pops EIP.
fn call_ret_twin(insn: &Instruction, shift: u32) -> Option<MemoryTwin> {
    let top = |delta: i64| MemoryOperand::with_base_displ(Register::R12D, delta);
    let slot = MemoryOperand::with_base(HOST_ADDR);
    let mut enc = Encoder::new(64);
    let mut put = |i: Instruction| enc.encode(&i, 0).ok();
    let call = insn.code() == Code::Call_rel32_32;
    put(Instruction::with2(Code::Lea_r32_m, Register::R10D, top(if call { -4 } else { 0 })).ok()?)?;
    let lea = enc.take_buffer();
    let mut put = |i: Instruction| enc.encode(&i, 0).ok();
    if call {
        let ret = insn.next_ip32().wrapping_add(shift);
        put(Instruction::with2(Code::Mov_rm32_imm32, slot, ret).ok()?)?;
        put(Instruction::with2(Code::Lea_r32_m, Register::R12D, top(-4)).ok()?)?;
    } else {
        let eip = MemoryOperand::with_base_displ(Register::R15, crate::code::state_off!(eip) as i64);
        put(Instruction::with2(Code::Mov_r32_rm32, Register::R11D, slot).ok()?)?;
        put(Instruction::with2(Code::Lea_r32_m, Register::R12D, top(4)).ok()?)?;
        put(Instruction::with2(Code::Mov_rm32_r32, eip, Register::R11D).ok()?)?;
    }
    Some(MemoryTwin { lea, twin: enc.take_buffer(), width: 4, write: call })
}

/// True for CALL rel32 and RET in 32-bit code (rewritten in a flat block).
pub(crate) fn is_call_or_ret(insn: &Instruction) -> bool {
    matches!(insn.code(), Code::Call_rel32_32 | Code::Retnd)
}

/// The pieces of `insn`'s rewritten form, or `None` if it is not a candidate: an
/// `ident` instruction (not LEA or XCHG) with one memory operand, 32-bit addressing,
/// through DS, ES or SS (flat), 1 to 4 bytes wide.
///
/// The block runs at its decoded EIP plus `shift` (CALL pushes a return address there).
pub(crate) fn memory_twin(insn: &Instruction, shift: u32) -> Option<MemoryTwin> {
    if let Some(t) = stack_twin(insn, shift) {
        return Some(t);
    }
    let m = insn.mnemonic();
    if flag_fix(insn).is_none() || matches!(m, Mnemonic::Lea | Mnemonic::Xchg | Mnemonic::Nop) || insn.has_lock_prefix()
    {
        return None;
    }
    if !matches!(insn.memory_segment(), Register::DS | Register::ES | Register::SS) {
        return None;
    }
    let (base, index) = (insn.memory_base(), insn.memory_index());
    if base.is_gpr16() || index.is_gpr16() || insn.memory_displ_size() == 2 {
        return None;
    }
    let width = insn.memory_size().size() as u32;
    if !matches!(width, 1 | 2 | 4) {
        return None;
    }
    let mut twin = *insn;
    let mut mem_op = None;
    for i in 0..insn.op_count() {
        match insn.op_kind(i) {
            OpKind::Register => {
                let r = insn.op_register(i);
                if !r.is_gpr() {
                    return None;
                }
                twin.set_op_register(i, host_reg(r));
            }
            OpKind::Memory if mem_op.is_none() => mem_op = Some(i),
            OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32 => {}
            _ => return None,
        }
    }
    let op = mem_op?;
    let write = op == 0 && !matches!(m, Mnemonic::Cmp | Mnemonic::Test | Mnemonic::Mul | Mnemonic::Imul);
    // lea r10d, [base + index*scale + disp] on the host registers (addr32: wraps at 4 GiB).
    let mem = MemoryOperand::new(
        host_reg(base),
        host_reg(index),
        insn.memory_index_scale(),
        insn.memory_displacement32() as i32 as i64,
        if insn.memory_displ_size() == 0 { 0 } else { 4 },
        false,
        Register::None,
    );
    let lea = Instruction::with2(Code::Lea_r32_m, Register::R10D, mem).ok()?;
    twin.set_memory_base(HOST_ADDR);
    twin.set_memory_index(Register::None);
    twin.set_memory_index_scale(1);
    twin.set_memory_displacement64(0);
    twin.set_memory_displ_size(0);
    twin.set_segment_prefix(Register::None);
    let mut enc = Encoder::new(64);
    enc.encode(&lea, 0).ok()?;
    let lea = enc.take_buffer();
    // AH/BH/CH/DH cannot be encoded together with R10 (a REX prefix): no twin.
    enc.encode(&twin, 0).ok()?;
    Some(MemoryTwin { lea, twin: enc.take_buffer(), width, write })
}

/// What translated code does after a host twin so that the flags the SDM leaves undefined
/// read as the interpreter's choice (the host may pick others: AMD sets AF after a shift,
/// and computes SF/ZF/PF after a multiply its own way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlagFix {
    /// Every flag the twin writes is defined (or the host agrees with the interpreter).
    None,
    /// SHL/SHR/SAR/SHLD/SHRD by a non-zero constant: AF reads as 0 (the emitter clears it
    /// when the flags next leave host EFLAGS).
    ClearAf,
    /// SHL/SHR/SAR/SHLD/SHRD of 32 bits by CL: AF reads as 0 if the masked count is not 0
    /// (else nothing changes, on the host too). The emitter branches on the count: the
    /// twin and an AF fix-up, or nothing but the flags as they were.
    ClearAfIfCounted,
    /// MUL/IMUL: SF, ZF and PF from this register (the low half of the result), AF
    /// cleared; CF = OF as the host computed them.
    MulLow(Register),
}

/// Whether `insn` has a host twin whose results match the interpreter's, and what must
/// follow it for the flags to match too.
pub(crate) fn flag_fix(insn: &Instruction) -> Option<FlagFix> {
    use Mnemonic::*;
    let m = insn.mnemonic();
    if ident_mnemonic(m) || m == Nop {
        return Some(FlagFix::None);
    }
    let width =
        if insn.op0_kind() == OpKind::Register { insn.op0_register().size() } else { insn.memory_size().size() };
    match m {
        Shl | Sal | Shr | Sar | Shld | Shrd => {
            // Past the width, 8/16-bit shifts leave CF undefined: a constant count below
            // it, or 32 bits.
            let count_op = if matches!(m, Shld | Shrd) { 2 } else { 1 };
            if matches!(m, Shld | Shrd) && width != 4 {
                return None;
            }
            match insn.op_kind(count_op) {
                OpKind::Immediate8 => {
                    let count = insn.immediate8() as usize & 31;
                    (count != 0 && count < 8 * width.min(4)).then_some(FlagFix::ClearAf)
                }
                OpKind::Register if width == 4 => Some(FlagFix::ClearAfIfCounted),
                _ => None,
            }
        }
        // The host computes CF and OF (undefined for counts above 1) as the interpreter
        // does, for every width and count; the lockstep test checks it.
        Rol | Ror => Some(FlagFix::None),
        Mul | Imul => {
            let low = if insn.op_count() == 1 {
                match width {
                    1 => Register::AL,
                    2 => Register::AX,
                    _ => Register::EAX,
                }
            } else {
                host_reg(insn.op0_register())
            };
            Some(FlagFix::MulLow(low))
        }
        _ => None,
    }
}

/// `test reg, reg`: SF, ZF and PF from `reg`, AF, CF and OF cleared.
pub(crate) fn test_self(reg: Register) -> Vec<u8> {
    let code = match reg.size() {
        1 => Code::Test_rm8_r8,
        2 => Code::Test_rm16_r16,
        _ => Code::Test_rm32_r32,
    };
    let mut enc = Encoder::new(64);
    let insn = Instruction::with2(code, reg, reg).expect("register operands");
    enc.encode(&insn, 0).expect("encodable");
    enc.take_buffer()
}

/// Maps a guest general register to its home in translated code: the identity for
/// all but ESP/SP, which live in R12D/R12W (the host's RSP is the host stack).
fn host_reg(r: Register) -> Register {
    match r {
        Register::ESP => Register::R12D,
        Register::SP => Register::R12W,
        other => other,
    }
}

/// Instructions whose host twin computes exactly what the interpreter computes,
/// results and every flag, for register and immediate operands. (Instructions with
/// flags the SDM leaves undefined are not here unless the interpreter and the host
/// agree on them — AND/OR/XOR/TEST clear AF on both — so both engines stay identical.)
fn ident_mnemonic(m: Mnemonic) -> bool {
    use Mnemonic::*;
    matches!(
        m,
        Add | Adc
            | Sub
            | Sbb
            | Cmp
            | Inc
            | Dec
            | Neg
            | And
            | Or
            | Xor
            | Test
            | Not
            | Mov
            | Movzx
            | Movsx
            | Xchg
            | Lea
            | Cbw
            | Cwde
            | Cwd
            | Cdq
            | Clc
            | Stc
            | Cmc
            | Seta
            | Setae
            | Setb
            | Setbe
            | Sete
            | Setg
            | Setge
            | Setl
            | Setle
            | Setne
            | Setno
            | Setnp
            | Setns
            | Seto
            | Setp
            | Sets
            | Cmova
            | Cmovae
            | Cmovb
            | Cmovbe
            | Cmove
            | Cmovg
            | Cmovge
            | Cmovl
            | Cmovle
            | Cmovne
            | Cmovno
            | Cmovnp
            | Cmovns
            | Cmovo
            | Cmovp
            | Cmovs
    ) || m == Bswap
}

/// The x86-64 bytes of `insn`'s host twin, or `None` if it is not an `ident` candidate.
pub(crate) fn host_twin(insn: &Instruction) -> Option<Vec<u8>> {
    if flag_fix(insn).is_none() || insn.has_lock_prefix() {
        return None;
    }
    if insn.mnemonic() == Mnemonic::Nop {
        return Some(Vec::new()); // also the multi-byte NOP with its (unused) memory operand
    }
    let mut twin = *insn;
    for i in 0..insn.op_count() {
        match insn.op_kind(i) {
            OpKind::Register => {
                let r = insn.op_register(i);
                if !r.is_gpr() {
                    return None; // segment, control, debug registers: not ours
                }
                twin.set_op_register(i, host_reg(r));
            }
            OpKind::Memory if insn.mnemonic() == Mnemonic::Lea => {
                // Only the address arithmetic: no access. 16-bit addressing has no 64-bit form.
                let (base, index) = (insn.memory_base(), insn.memory_index());
                if base.is_gpr16() || index.is_gpr16() || insn.memory_displ_size() == 2 {
                    return None;
                }
                twin.set_memory_base(host_reg(base));
                twin.set_memory_index(host_reg(index));
            }
            OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32 => {}
            _ => return None,
        }
    }
    if insn.mnemonic() == Mnemonic::Bswap && insn.op0_register().is_gpr16() {
        return None; // undefined in the SDM
    }
    // INC/DEC r16/r32 (0x40–0x4F) are REX prefixes in 64-bit mode: use the FF /0, /1 forms.
    match insn.code() {
        Code::Inc_r16 => twin.set_code(Code::Inc_rm16),
        Code::Inc_r32 => twin.set_code(Code::Inc_rm32),
        Code::Dec_r16 => twin.set_code(Code::Dec_rm16),
        Code::Dec_r32 => twin.set_code(Code::Dec_rm32),
        _ => {}
    }
    twin.set_segment_prefix(Register::None);
    let mut enc = Encoder::new(64);
    // AH/BH/CH/DH cannot be encoded together with R12 (a REX prefix): not ident.
    enc.encode(&twin, 0).ok()?;
    Some(enc.take_buffer())
}

#[cfg(test)]
mod tests {
    use super::*;
    use popek_cpu::iced_x86::{Decoder, DecoderOptions};

    fn memory_twin_at(insn: &Instruction) -> Option<MemoryTwin> {
        memory_twin(insn, 0x1000)
    }

    fn decode(bytes: &[u8]) -> Instruction {
        Decoder::with_ip(32, bytes, 0x1000, DecoderOptions::NONE).decode()
    }

    #[test]
    fn treatments() {
        // add eax, ebx: ident, and its host twin is the same bytes.
        assert_eq!(classify(&decode(&[0x01, 0xd8]), true), Treatment::Ident);
        assert_eq!(host_twin(&decode(&[0x01, 0xd8])).unwrap(), vec![0x01, 0xd8]);
        // inc eax (0x40 is REX in 64-bit mode): re-encoded as ff c0.
        assert_eq!(host_twin(&decode(&[0x40])).unwrap(), vec![0xff, 0xc0]);
        // mov esp, eax: ESP lives in R12D.
        assert_eq!(host_twin(&decode(&[0x89, 0xc4])).unwrap(), vec![0x41, 0x89, 0xc4]);
        // movzx esp, ah: AH cannot be encoded with R12: helper.
        assert_eq!(classify(&decode(&[0x0f, 0xb6, 0xe4]), true), Treatment::Helper);
        // add eax, [ebx]: rewritten with flat segments, helper without.
        assert_eq!(classify(&decode(&[0x03, 0x03]), true), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0x03, 0x03]), false), Treatment::Helper);
        let m = memory_twin_at(&decode(&[0x03, 0x03])).unwrap();
        assert_eq!((m.width, m.write), (4, false));
        assert_eq!(m.twin, vec![0x41, 0x03, 0x02], "add eax, [r10]");
        // mov [esp+8], esi: a write, based on R12D; mov ah, [ebx]: AH cannot go with R10.
        let m = memory_twin_at(&decode(&[0x89, 0x74, 0x24, 0x08])).unwrap();
        assert!(m.write);
        assert!(memory_twin_at(&decode(&[0x8a, 0x23])).is_none());
        // mov eax, fs:[ebx]: not flat.
        assert!(memory_twin_at(&decode(&[0x64, 0x8b, 0x03])).is_none());
        // cli, popf, mov cr3, eax, out: sensitive: callout.
        for b in [&[0xfa][..], &[0x9d], &[0x0f, 0x22, 0xd8], &[0xe6, 0x80]] {
            assert_eq!(classify(&decode(b), true), Treatment::Callout, "{b:02x?}");
        }
        // jne rel8 and jmp rel32: rewritten inline in a flat block; loop: helper.
        assert_eq!(classify(&decode(&[0x75, 0x10]), true), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0xe9, 0, 1, 0, 0]), true), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0x75, 0x10]), false), Treatment::Helper);
        assert_eq!(classify(&decode(&[0xe2, 0x10]), true), Treatment::Helper);
        // push ebx / pop esi / push 5: rewritten on the flat stack.
        assert_eq!(classify(&decode(&[0x53]), true), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0x5e]), true), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0x6a, 0x05]), true), Treatment::Rewritten);
        assert!(memory_twin_at(&decode(&[0x53])).unwrap().write);
        // push -14 (6a f2): the imm8 is sign-extended: mov dword [r10], 0FFFFFFF2h.
        let twin = memory_twin_at(&decode(&[0x6a, 0xf2])).unwrap().twin;
        let mov = Decoder::with_ip(64, &twin, 0, DecoderOptions::NONE).decode();
        assert_eq!(mov.immediate(1) as u32, 0xffff_fff2);
        // call rel32 and ret: rewritten; call through a register: helper.
        assert_eq!(classify(&decode(&[0xe8, 0, 0, 0, 0]), true), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0xc3]), true), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0xff, 0xd0]), true), Treatment::Helper);
        // shl eax, 3: ident, AF cleared afterwards; by 0: helper (the flags stay as they
        // were); by CL: ident with a run-time fix-up, but only on 32 bits.
        assert_eq!(classify(&decode(&[0xc1, 0xe0, 0x03]), true), Treatment::Ident);
        assert_eq!(flag_fix(&decode(&[0xc1, 0xe0, 0x03])), Some(FlagFix::ClearAf));
        assert_eq!(classify(&decode(&[0xd3, 0xe0]), true), Treatment::Ident);
        assert_eq!(flag_fix(&decode(&[0xd3, 0xe0])), Some(FlagFix::ClearAfIfCounted));
        assert_eq!(classify(&decode(&[0x66, 0xd3, 0xe0]), true), Treatment::Helper);
        assert_eq!(classify(&decode(&[0xc1, 0xe0, 0x00]), true), Treatment::Helper);
        // shl al, 9: CF undefined past the width: helper.
        assert_eq!(classify(&decode(&[0xc0, 0xe0, 0x09]), true), Treatment::Helper);
        // imul eax, ecx: ident, flags fixed up from EAX; mul dword [ebx]: rewritten, a read.
        assert_eq!(flag_fix(&decode(&[0x0f, 0xaf, 0xc1])), Some(FlagFix::MulLow(Register::EAX)));
        assert!(!memory_twin_at(&decode(&[0xf7, 0x23])).unwrap().write);
        // nop dword [eax+eax]: ident, no host code at all.
        assert_eq!(host_twin(&decode(&[0x0f, 0x1f, 0x44, 0x00, 0x00])).unwrap(), Vec::<u8>::new());
        // lea eax, [esp + ecx*4 + 8]: ident, with R12D as the base (addr32 prefix).
        let twin = host_twin(&decode(&[0x8d, 0x44, 0x8c, 0x08])).unwrap();
        let back = Decoder::with_ip(64, &twin, 0, DecoderOptions::NONE).decode();
        assert_eq!((back.memory_base(), back.memory_index()), (Register::R12D, Register::ECX));
    }
}
