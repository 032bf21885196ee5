//! Classification: how the translator treats each guest instruction (the data kept
//! with the block), and the host twin of an `ident` instruction.

use crate::JitInsn;
use popek_cpu::block::{Block, BlockKey, DecodedInsn};
use popek_cpu::iced_x86::{
    Code, ConditionCode, Decoder, DecoderOptions, Encoder, FlowControl, Instruction, MemoryOperand, Mnemonic, OpKind,
    Register,
};
use popek_cpu::state::flags::{AF, CF, OF, PF, SF, ZF};
use popek_cpu::{AccessSize, Bus, Cpu, Port, Seg, SegmentCache};
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

/// True for a near relative JMP or Jcc, or LOOP on ECX, in 32-bit code: translated inline in a flat block
/// (the CS limit is 4 GiB, so the target needs no check).
pub(crate) fn is_inline_branch(insn: &Instruction) -> bool {
    insn.code() == Code::Loop_rel8_32_ECX
        || insn.op0_kind() == OpKind::NearBranch32
            && match insn.flow_control() {
                FlowControl::UnconditionalBranch => insn.mnemonic() == Mnemonic::Jmp,
                FlowControl::ConditionalBranch => {
                    insn.condition_code() != ConditionCode::None && insn.is_jcc_short_or_near()
                }
                _ => false,
            }
}

/// How `insn` is treated in a block of mode `mode` ([`BlockKey::mode_of`]: flat segments
/// or not, FS and GS 4 GiB data segments or not).
pub fn classify(insn: &Instruction, mode: u32) -> Treatment {
    let flat = mode & BlockKey::FLAT != 0;
    if dispatch::classify(insn).0 == "vmm" {
        // PUSHFD on a flat stack stores the virtual flags inline and RDTSC computes the
        // virtual TSC inline; every other sensitive instruction calls the VMM.
        if flat && (insn.code() == Code::Pushfd || pushes_segment(insn)) || insn.code() == Code::Rdtsc {
            Treatment::Rewritten
        } else {
            Treatment::Callout
        }
    } else if flat && (is_inline_branch(insn) || indirect_branch_address(insn).is_some()) {
        Treatment::Rewritten
    } else if host_twin(insn).is_some() {
        Treatment::Ident
    } else if flat && (memory_twin(insn, 0, mode).is_some() || plain_movs_width(insn).is_some()) {
        Treatment::Rewritten
    } else {
        Treatment::Helper
    }
}

/// For MOVSB, MOVSW or MOVSD without a REP prefix, 32-bit addressing and a flat source
/// segment (DS, or an ES or SS override): its width in bytes. A compiler's byte-copy loop
/// (`movsb ; cmp ; jne`) is made of them; a flat block moves the element inline (`code`'s
/// `movs`). `None` for anything else.
pub(crate) fn plain_movs_width(insn: &Instruction) -> Option<u32> {
    let width = match insn.code() {
        Code::Movsb_m8_m8 => 1,
        Code::Movsw_m16_m16 => 2,
        Code::Movsd_m32_m32 => 4,
        _ => return None,
    };
    let plain = !insn.has_rep_prefix()
        && !insn.has_repne_prefix()
        && insn.op0_kind() == OpKind::MemoryESEDI
        && matches!(insn.memory_segment(), Register::DS | Register::ES | Register::SS);
    plain.then_some(width)
}

/// True for a sensitive instruction (a callout) that changes nothing the run loop looks at
/// between blocks and reaches no device except through memory: PUSHF (the guest's IF and
/// IOPL onto the stack), CLI (no interrupt becomes deliverable by clearing IF), CPUID,
/// RDTSC, the instructions that only read system state (SMSW, SGDT, SIDT, SLDT, STR, MOV
/// from a control register, LAR, LSL, VERR, VERW, PUSH Sreg and MOV r/m, Sreg). Translated
/// code goes on after one, and chains lead into blocks holding them, as for an ordinary
/// instruction; every other callout (STI, POPF, a CR write, I/O, HLT, INT, far
/// transfers…) ends chaining, and all but those of [`needs_only_a_lookup`] return to the
/// run loop.
///
/// INVLPG is quiet as well: it changes where code is fetched from only if it drops a page
/// code was looked up on, which moves the TLB generation on; the callout then ends chaining
/// (a chain to a block on the same page jumps without looking), and the engine goes on
/// with a lookup.
///
/// A load of DS, ES, FS or GS (MOV, POP) is quiet too, though it may change the block mode
/// ([`BlockKey::mode_of`]: flat segments, 4 GiB FS/GS): the callout compares the mode before
/// and after ([`loads_data_segment`]) and returns to the run loop only if it changed. A
/// load of SS is not (it holds off interrupts for one instruction, which the run loop
/// sees to).
pub(crate) fn is_quiet_callout(insn: &Instruction) -> bool {
    use Mnemonic::*;
    match insn.mnemonic() {
        Pushf | Pushfd | Cli | Cpuid | Rdtsc | Smsw | Sgdt | Sidt | Sldt | Str | Lar | Lsl | Verr | Verw | Invlpg => {
            true
        }
        Mov => {
            insn.op0_kind() == OpKind::Register && insn.op0_register().is_gpr32() && insn.op1_register().is_cr()
                || loads_data_segment(insn)
                || insn.op1_kind() == OpKind::Register && insn.op1_register().is_segment_register()
        }
        Pop => loads_data_segment(insn),
        // PUSH Sreg stores a selector, as MOV r/m, Sreg does: nothing the run loop sees.
        Push => insn.op0_kind() == OpKind::Register && insn.op0_register().is_segment_register(),
        _ => false,
    }
}

/// True for a callout after which the engine must look the next block up afresh but the
/// run loop has nothing to look at: INT n, INT3 and INTO (a gate clears IF or leaves it,
/// so no interrupt becomes deliverable; the mode changes), INVLPG and MOV CR3 (only where
/// code may be fetched from changes).
pub(crate) fn needs_only_a_lookup(insn: &Instruction) -> bool {
    use Mnemonic::*;
    match insn.mnemonic() {
        Int | Int3 | Into | Invlpg => true,
        Mov => insn.op0_register() == Register::CR3,
        _ => false,
    }
}

/// True for a callout that ran (`insn`, now done) after which the run loop, as things now
/// stand, has nothing to look at but the next block: an IRET (it changes the mode, and may
/// set IF or unblock NMIs) when no interrupt or NMI waits for the CPU, or interrupts stay
/// off. (A single step it turns on is the engine's to see: it does not enter translated
/// code with TF set.)
pub(crate) fn went_quiet(insn: &Instruction, cpu: &Cpu, bus: &dyn Bus) -> bool {
    matches!(insn.mnemonic(), Mnemonic::Iret | Mnemonic::Iretd)
        && (!cpu.interrupts_enabled() && cpu.state.nmi_blocked || !bus.interrupt_may_be_pending())
}

/// True for a callout that ends its block after which translated code itself may go on
/// to the next block, with a lookup in the indirect-target table in the mode the CPU is
/// then in: INT n, INT3, INTO and IRET (when [`needs_only_a_lookup`] or [`went_quiet`]
/// says the run loop has nothing to look at).
pub(crate) fn goes_on_inline(insn: &Instruction) -> bool {
    matches!(insn.mnemonic(), Mnemonic::Int | Mnemonic::Int3 | Mnemonic::Into | Mnemonic::Iret | Mnemonic::Iretd)
}

/// True for a MOV or POP into DS, ES, FS or GS.
pub(crate) fn loads_data_segment(insn: &Instruction) -> bool {
    loaded_data_segment(insn).is_some()
}

/// The register a MOV or POP into DS, ES, FS or GS loads.
pub(crate) use popek_cpu::block::loaded_data_segment;

/// [`segment_load_info`]: the segment register loaded (`Seg` as a number).
pub(crate) const SEGMENT_LOAD_SEG: u32 = 0x7;
/// [`segment_load_info`]: the general register a MOV loads from (its 32-bit number).
pub(crate) const SEGMENT_LOAD_REG: u32 = 0x70;
/// [`segment_load_info`]: for a POP, its width in bytes (2 or 4); 0 for a MOV.
pub(crate) const SEGMENT_LOAD_POP: u32 = 0x700;

/// For `mov ds/es/fs/gs, reg` and `pop ds/es/fs/gs`, what the segment-load fast path
/// (`segment_load` in lib.rs) needs to know, packed as the `SEGMENT_LOAD_*` masks say.
pub(crate) fn segment_load_info(insn: &Instruction) -> Option<u32> {
    let seg = loaded_data_segment(insn)? as u32;
    match insn.mnemonic() {
        Mnemonic::Mov if insn.op1_kind() == OpKind::Register => {
            let r = insn.op1_register();
            let reg = if r.is_gpr32() || r.is_gpr16() {
                r.full_register32() as u32 - Register::EAX as u32
            } else {
                return None;
            };
            Some(seg | reg << SEGMENT_LOAD_REG.trailing_zeros())
        }
        Mnemonic::Pop => {
            let width = u32::try_from(insn.stack_pointer_increment()).ok().filter(|w| matches!(w, 2 | 4))?;
            Some(seg | width << SEGMENT_LOAD_POP.trailing_zeros())
        }
        _ => None,
    }
}

/// For an `IN AL/AX/EAX, imm8`, what the fast path of a pure port read (`port_in` in
/// lib.rs) needs: the port in bits 0–15, the width in bytes above.
pub(crate) fn port_in_info(insn: &Instruction) -> Option<u32> {
    if insn.mnemonic() != Mnemonic::In || insn.op1_kind() != OpKind::Immediate8 {
        return None;
    }
    let width = match insn.op0_register() {
        Register::AL => 1,
        Register::AX => 2,
        Register::EAX => 4,
        _ => return None,
    };
    Some(u32::from(insn.immediate8()) | width << 16)
}

/// Which `IN reg, imm8` read their port purely, by port (see `Jit::pure_in`).
pub(crate) fn pure_in_ports(bus: &dyn Bus) -> [u8; 256] {
    let sizes = [AccessSize::Byte, AccessSize::Word, AccessSize::Dword];
    std::array::from_fn(|port| {
        let pure = |k: usize| u8::from(bus.port_read_is_pure(Port(port as u16), sizes[k])) << k;
        pure(0) | pure(1) | pure(2)
    })
}

/// True if `insn` is an `IN AL/AX/EAX, imm8` of a port `pure_in_ports` calls pure. (`IN
/// reg, DX` reads a port known only when it runs.)
pub(crate) fn reads_pure_port(insn: &Instruction, pure_in: &[u8; 256]) -> bool {
    // `pure_in_ports` keeps a read of 1, 2 or 4 bytes as the bit whose value is that width.
    port_in_info(insn).is_some_and(|what| pure_in[(what & 0xff) as usize] & (what >> 16) as u8 != 0)
}

/// True for a callout after which the run loop must look at the machine ([`JitInsn::loud`]).
fn is_loud(insn: &Instruction, treatment: Treatment) -> bool {
    treatment == Treatment::Callout && !is_quiet_callout(insn)
}

/// The block cache's decode-time hook: handler and treatment, once per instruction.
pub(crate) fn prepare(insn: &Instruction, mode: u32) -> JitInsn {
    let treatment = classify(insn, mode);
    JitInsn {
        handler: dispatch::handler_for(insn),
        treatment,
        loud: is_loud(insn, treatment),
        entry: Cell::new(None),
        runs: Cell::new(0),
        interpret: false,
    }
}

/// [`prepare`] for a block that will only be interpreted (code rewritten again and again):
/// no host twin is worked out, every instruction is a callout or a helper.
pub(crate) fn prepare_interpreted(insn: &Instruction) -> JitInsn {
    let (group, handler) = dispatch::classify(insn);
    let treatment = if group == "vmm" { Treatment::Callout } else { Treatment::Helper };
    JitInsn {
        handler,
        treatment,
        loud: is_loud(insn, treatment),
        entry: Cell::new(None),
        runs: Cell::new(0),
        interpret: true,
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
        Code::Pushfd => return pushfd_twin(),
        Code::Leaved => return leave_twin(),
        Code::Pushad | Code::Popad => return push_pop_all_twin(insn.code() == Code::Pushad),
        _ if pushes_segment(insn) => return push_segment_twin(insn.op0_register()),
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

/// True for PUSH of a segment register with a 32-bit operand (`push ds`).
fn pushes_segment(insn: &Instruction) -> bool {
    matches!(
        insn.code(),
        Code::Pushd_ES | Code::Pushd_CS | Code::Pushd_SS | Code::Pushd_DS | Code::Pushd_FS | Code::Pushd_GS
    )
}

/// PUSH Sreg (32-bit operand): ESP moves by 4 and the selector is written as 16 bits, the
/// upper half of the slot left as it was (what the interpreter does, and recent Intel and
/// AMD processors; SDM Vol. 2B PUSH). The selector is read from `CpuState`.
fn push_segment_twin(sreg: Register) -> Option<MemoryTwin> {
    let seg = match sreg {
        Register::ES => Seg::Es,
        Register::CS => Seg::Cs,
        Register::SS => Seg::Ss,
        Register::DS => Seg::Ds,
        Register::FS => Seg::Fs,
        _ => Seg::Gs,
    };
    let off = crate::code::state_off!(seg)
        + (seg as usize * std::mem::size_of::<SegmentCache>() + std::mem::offset_of!(SegmentCache, selector)) as i32;
    let top = |delta: i64| MemoryOperand::with_base_displ(Register::R12D, delta);
    let mut enc = Encoder::new(64);
    enc.encode(&Instruction::with2(Code::Lea_r32_m, Register::R10D, top(-4)).ok()?, 0).ok()?;
    let lea = enc.take_buffer();
    for i in [
        Instruction::with2(
            Code::Movzx_r32_rm16,
            Register::R11D,
            MemoryOperand::with_base_displ(Register::R15, i64::from(off)),
        ),
        Instruction::with2(Code::Mov_rm16_r16, MemoryOperand::with_base(HOST_ADDR), Register::R11W),
        Instruction::with2(Code::Lea_r32_m, Register::R12D, top(-4)),
    ] {
        enc.encode(&i.ok()?, 0).ok()?;
    }
    Some(MemoryTwin { lea, twin: enc.take_buffer(), width: 2, write: true })
}

/// PUSHAD and POPAD: the eight registers as one 32-byte access, one lookup for the whole
/// span (a span that crosses a page, or faults, goes to the handler, which stores or loads
/// them one by one as the SDM says). PUSHAD stores EAX at the top of the span down to EDI
/// at its bottom, with ESP's value before the instruction; POPAD loads them back but ESP.
fn push_pop_all_twin(push: bool) -> Option<MemoryTwin> {
    use Register::*;
    let order = [EAX, ECX, EDX, EBX, R12D, EBP, ESI, EDI];
    let slot = |i: usize| MemoryOperand::with_base_displ(HOST_ADDR, 28 - 4 * i as i64);
    let mut enc = Encoder::new(64);
    let top = |delta: i64| MemoryOperand::with_base_displ(R12D, delta);
    enc.encode(&Instruction::with2(Code::Lea_r32_m, R10D, top(if push { -32 } else { 0 })).ok()?, 0).ok()?;
    let lea = enc.take_buffer();
    for (i, &r) in order.iter().enumerate() {
        let i = if push {
            Instruction::with2(Code::Mov_rm32_r32, slot(i), r)
        } else if r == R12D {
            continue;
        } else {
            Instruction::with2(Code::Mov_r32_rm32, r, slot(i))
        };
        enc.encode(&i.ok()?, 0).ok()?;
    }
    enc.encode(&Instruction::with2(Code::Lea_r32_m, R12D, top(if push { -32 } else { 32 })).ok()?, 0).ok()?;
    Some(MemoryTwin { lea, twin: enc.take_buffer(), width: 32, write: push })
}

/// LEAVE (32-bit): the old frame pointer is popped from where EBP points, and ESP is left
/// just above it: `lea r12d, [ebp+4]` is computed before `mov ebp, [r10]` overwrites EBP.
fn leave_twin() -> Option<MemoryTwin> {
    let mut enc = Encoder::new(64);
    let frame = |delta: i64| MemoryOperand::with_base_displ(Register::EBP, delta);
    enc.encode(&Instruction::with2(Code::Lea_r32_m, Register::R10D, frame(0)).ok()?, 0).ok()?;
    let lea = enc.take_buffer();
    enc.encode(&Instruction::with2(Code::Lea_r32_m, Register::R12D, frame(4)).ok()?, 0).ok()?;
    enc.encode(&Instruction::with2(Code::Mov_r32_rm32, Register::EBP, MemoryOperand::with_base(HOST_ADDR)).ok()?, 0)
        .ok()?;
    Some(MemoryTwin { lea, twin: enc.take_buffer(), width: 4, write: false })
}

/// PUSHFD, sensitive (it shows the guest's virtual IF and IOPL) but translated inline:
/// the flags were spilled to `CpuState` before the access, so the guest's whole EFLAGS is
/// there; its image, [`PUSHF_CLEARS`](popek_cpu::state::flags::PUSHF_CLEARS) cleared as in
/// the handler, is stored on the new top.
/// The interpreter's handler (`popek_vmm`'s `pushf`) runs on the slow path.
fn pushfd_twin() -> Option<MemoryTwin> {
    use popek_cpu::state::flags::PUSHF_CLEARS;
    let top = |delta: i64| MemoryOperand::with_base_displ(Register::R12D, delta);
    let eflags = MemoryOperand::with_base_displ(Register::R15, crate::code::state_off!(eflags) as i64);
    let mut enc = Encoder::new(64);
    enc.encode(&Instruction::with2(Code::Lea_r32_m, Register::R10D, top(-4)).ok()?, 0).ok()?;
    let lea = enc.take_buffer();
    for i in [
        Instruction::with2(Code::Mov_r32_rm32, Register::R11D, eflags),
        Instruction::with2(Code::And_rm32_imm32, Register::R11D, !PUSHF_CLEARS),
        Instruction::with2(Code::Mov_rm32_r32, MemoryOperand::with_base(HOST_ADDR), Register::R11D),
        Instruction::with2(Code::Lea_r32_m, Register::R12D, top(-4)),
    ] {
        enc.encode(&i.ok()?, 0).ok()?;
    }
    Some(MemoryTwin { lea, twin: enc.take_buffer(), width: 4, write: true })
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

/// For a near CALL or JMP through a 32-bit register or memory (`call eax`,
/// `jmp [ebx*4+table]`) that a flat block rewrites: `Some(None)` for a register,
/// `Some(Some(lea))` for memory, with `lea r10d, [address]` on the host registers (through
/// DS, ES or SS, 32-bit addressing); `None` for any other instruction.
pub(crate) fn indirect_branch_address(insn: &Instruction) -> Option<Option<Vec<u8>>> {
    if !matches!(insn.code(), Code::Call_rm32 | Code::Jmp_rm32) {
        return None;
    }
    if insn.op0_kind() == OpKind::Register {
        return Some(None);
    }
    let (base, index) = (insn.memory_base(), insn.memory_index());
    if !matches!(insn.memory_segment(), Register::DS | Register::ES | Register::SS)
        || base.is_gpr16()
        || index.is_gpr16()
        || insn.memory_displ_size() == 2
        || base == Register::EIP
    {
        return None;
    }
    let mut enc = Encoder::new(64);
    enc.encode(&address_lea(insn)?, 0).ok()?;
    Some(Some(enc.take_buffer()))
}

/// True for CALL rel32 and RET in 32-bit code (rewritten in a flat block).
pub(crate) fn is_call_or_ret(insn: &Instruction) -> bool {
    matches!(insn.code(), Code::Call_rel32_32 | Code::Retnd)
}

/// The pieces of `insn`'s rewritten form, or `None` if it is not a candidate: an
/// `ident` instruction (not LEA or XCHG) with one memory operand, 32-bit addressing,
/// through DS, ES or SS (flat), or through FS or GS when `mode` says it holds a 4 GiB data
/// segment (its base, read from `CpuState`, is added to the address), 1 to 4 bytes wide.
///
/// The block runs at its decoded EIP plus `shift` (CALL pushes a return address there).
pub(crate) fn memory_twin(insn: &Instruction, shift: u32, mode: u32) -> Option<MemoryTwin> {
    if let Some(t) = stack_twin(insn, shift) {
        return Some(t);
    }
    let m = insn.mnemonic();
    if flag_fix(insn).is_none() || matches!(m, Mnemonic::Lea | Mnemonic::Xchg | Mnemonic::Nop | Mnemonic::Pause) {
        return None;
    }
    let based = match insn.memory_segment() {
        Register::DS | Register::ES | Register::SS => None,
        Register::FS if mode & BlockKey::FS_4GIB != 0 => Some(Seg::Fs),
        Register::GS if mode & BlockKey::GS_4GIB != 0 => Some(Seg::Gs),
        _ => return None,
    };
    let (base, index) = (insn.memory_base(), insn.memory_index());
    if base.is_gpr16() || index.is_gpr16() || insn.memory_displ_size() == 2 {
        return None;
    }
    let width = insn.memory_size().size() as u32;
    if !matches!(width, 1 | 2 | 4) {
        return None;
    }
    let mut twin = moffs_as_modrm(insn).unwrap_or(*insn);
    // One virtual CPU and no concurrent DMA: a locked read-modify-write is the plain one.
    // (A LOCK the SDM makes #UD never gets here: the decoder calls such a form invalid.)
    twin.set_has_lock_prefix(false);
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
    let lea = address_lea(insn)?;
    twin.set_memory_base(HOST_ADDR);
    twin.set_memory_index(Register::None);
    twin.set_memory_index_scale(1);
    twin.set_memory_displacement64(0);
    twin.set_memory_displ_size(0);
    twin.set_segment_prefix(Register::None);
    let mut enc = Encoder::new(64);
    enc.encode(&lea, 0).ok()?;
    if let Some(seg) = based {
        // add r10d, [r15 + the segment's base]: the linear address wraps at 4 GiB.
        let off = crate::code::state_off!(seg)
            + (seg as usize * std::mem::size_of::<SegmentCache>() + std::mem::offset_of!(SegmentCache, base)) as i32;
        let base = MemoryOperand::with_base_displ(Register::R15, i64::from(off));
        enc.encode(&Instruction::with2(Code::Add_r32_rm32, Register::R10D, base).ok()?, 0).ok()?;
    }
    let lea = enc.take_buffer();
    // AH/BH/CH/DH cannot be encoded together with R10 (a REX prefix): no twin.
    enc.encode(&twin, 0).ok()?;
    Some(MemoryTwin { lea, twin: enc.take_buffer(), width, write })
}

/// For a load through DS, ES or SS that [`memory_twin`] rewrites, in a block running with
/// paging off: `lea r11, [guest address - start]` computed in 64 bits on the host registers
/// (which hold the guest's zero-extended), and the host twin with its memory operand
/// replaced by `[r13 + r11]`, R13 being the host address of guest-physical `start` (the
/// plain span's, `Ctx::plain_base`; `code`'s `rewritten`). `None` for any other access, or
/// a displacement that does not fit.
pub(crate) fn direct_load(insn: &Instruction, mode: u32, start: u32) -> Option<(Vec<u8>, Vec<u8>)> {
    let m = memory_twin(insn, 0, mode)?;
    if m.write
        || stack_twin(insn, 0).is_some()
        || !matches!(insn.memory_segment(), Register::DS | Register::ES | Register::SS)
    {
        return None;
    }
    let full = |r: Register| if r == Register::None { r } else { host_reg(r).full_register() };
    let displ = i64::from(insn.memory_displacement32() as i32) - i64::from(start);
    let mem = MemoryOperand::new(
        full(insn.memory_base()),
        full(insn.memory_index()),
        insn.memory_index_scale(),
        i64::from(i32::try_from(displ).ok()?),
        8,
        false,
        Register::None,
    );
    let mut enc = Encoder::new(64);
    enc.encode(&Instruction::with2(Code::Lea_r64_m, Register::R11, mem).ok()?, 0).ok()?;
    Some((enc.take_buffer(), twin_on_ram(&m.twin, Register::R11, 0)?))
}

/// A host twin on `[r10]` (`MemoryTwin::twin`) with its memory operand `[r13 + index]`, or
/// `[r13 + index + displ]` if `displ` is not 0 (`None` if it does not fit in 32 bits):
/// R13 holds the host address of the plain span of guest RAM in translated code.
fn twin_on_ram(bytes: &[u8], index: Register, displ: i64) -> Option<Vec<u8>> {
    let displ = i32::try_from(displ).ok()?;
    let mut twin = Decoder::with_ip(64, bytes, 0, DecoderOptions::NONE).decode();
    if twin.is_invalid() || twin.len() != bytes.len() || twin.memory_base() != Register::R10 {
        return None; // not one instruction on [r10]
    }
    twin.set_memory_base(Register::R13);
    twin.set_memory_index(index);
    twin.set_memory_index_scale(1);
    if displ != 0 {
        twin.set_memory_displacement64(i64::from(displ) as u64);
        twin.set_memory_displ_size(8);
    }
    let mut enc = Encoder::new(64);
    enc.encode(&twin, 0).ok()?;
    Some(enc.take_buffer())
}

/// For an access of a page group ([`grouped_operand`]) in a block running with paging off:
/// the host twin with its memory operand `[r13 + base + disp - start]`, the guest's base
/// register (its host home, zero-extended) and displacement taken in 64 bits, R13 being the
/// host address of guest-physical `start` (`code`'s `grouped`, whose check makes sure that
/// the group's addresses do not wrap). `None` if the twin's fix-up reads the result back
/// through `[r10]`, or the displacement does not fit.
pub(crate) fn wide_group_twin(insn: &Instruction, mode: u32, start: u32) -> Option<Vec<u8>> {
    if reads_result_back(flag_fix(insn)?) {
        return None;
    }
    let m = memory_twin(insn, 0, mode)?;
    let displ = i64::from(insn.memory_displacement32() as i32) - i64::from(start);
    twin_on_ram(&m.twin, host_reg(insn.memory_base()).full_register(), displ)
}

/// For a store through DS, ES or SS that [`memory_twin`] rewrites, `[base + disp]` with no
/// index, in a block running with paging off: `lea r11, [base + disp]` in 64 bits (the base
/// register zero-extended, the displacement sign-extended: below 0 or at 4 GiB and above
/// where the guest's address wraps), and the host twin on `[r13 + base + disp - start]`,
/// R13 being the host address of guest-physical `start` (`code`'s `rewritten`, whose store
/// map check makes sure that the address did not wrap). `None` for any other access, or
/// a twin whose fix-up reads the result back.
pub(crate) fn wide_store(insn: &Instruction, mode: u32, start: u32) -> Option<(Vec<u8>, Vec<u8>)> {
    let m = memory_twin(insn, 0, mode)?;
    if !m.write
        || stack_twin(insn, 0).is_some()
        || !matches!(insn.memory_segment(), Register::DS | Register::ES | Register::SS)
        || insn.memory_index() != Register::None
        || !insn.memory_base().is_gpr32()
        || reads_result_back(flag_fix(insn)?)
    {
        return None;
    }
    let base = host_reg(insn.memory_base()).full_register();
    let displ = insn.memory_displacement32() as i32;
    let mem = MemoryOperand::new(base, Register::None, 1, i64::from(displ), 8, false, Register::None);
    let mut enc = Encoder::new(64);
    enc.encode(&Instruction::with2(Code::Lea_r64_m, Register::R11, mem).ok()?, 0).ok()?;
    let twin = twin_on_ram(&m.twin, base, i64::from(displ) - i64::from(start))?;
    Some((enc.take_buffer(), twin))
}

/// True if a twin's fix-up reads its result back through `[r10]` (a count, or a rotated
/// copy), which must then hold the result's host address.
fn reads_result_back(fix: FlagFix) -> bool {
    matches!(
        fix,
        FlagFix::Counted(_) | FlagFix::After { of: OfFix::RotateCopyLeft | OfFix::RotateCopyRight | OfFix::TopTwo, .. }
    )
}

/// For a rewritten access with paging off, checked with R10 = its linear address (a store
/// by the store map; `code`'s `rewritten`): the host twin on `[r13 + r10 - start]`, R13
/// being the host address of guest-physical `start`. `None` if its fix-up reads the result
/// back through `[r10]`, or for a stack access (whose twin is more than one instruction).
pub(crate) fn ram_twin(insn: &Instruction, twin: &[u8], start: u32) -> Option<Vec<u8>> {
    if reads_result_back(flag_fix(insn)?) || stack_twin(insn, 0).is_some() {
        return None;
    }
    twin_on_ram(twin, Register::R10, -i64::from(start))
}

/// The memory operand of a rewritten instruction that may share a page check with its
/// neighbours ([`plan_page_groups`]): `[base + disp]` on a flat DS, ES or SS, no index, no
/// implicit stack access: its base register, displacement, width, and whether it writes.
fn grouped_operand(insn: &Instruction, mode: u32) -> Option<(Register, i32, u32, bool)> {
    if mode & BlockKey::FLAT == 0
        || insn.stack_pointer_increment() != 0
        || !matches!(insn.memory_segment(), Register::DS | Register::ES | Register::SS)
        || insn.memory_index() != Register::None
        || !insn.memory_base().is_gpr32()
        || is_inline_branch(insn)
    {
        return None;
    }
    let m = memory_twin(insn, 0, mode)?;
    Some((insn.memory_base(), insn.memory_displacement32() as i32, m.width, m.write))
}

/// A run of a block's memory accesses through one base register that one page check
/// serves ([`plan_page_groups`]): the accesses reach `[base + lo, base + lo + len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PageGroup {
    /// The base register (guest).
    pub(crate) base: Register,
    /// The lowest displacement.
    pub(crate) lo: i32,
    /// Bytes from `base + lo` to the end of the highest access.
    pub(crate) len: u32,
    /// Whether an access of the group writes (the check then asks for a write hit).
    pub(crate) write: bool,
}

/// An instruction's part in a page group ([`plan_page_groups`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GroupSlot {
    /// It is the group's first access: its code makes the check.
    pub(crate) lead: bool,
    /// The index of the group's last access.
    pub(crate) last: usize,
    /// The group.
    pub(crate) group: PageGroup,
}

/// The widest run of bytes a page group may span: far less than a page, so that a run
/// whose base sits at a random place in a page rarely crosses into the next.
const PAGE_GROUP_SPAN: u32 = 256;

/// Which of `block`'s memory accesses share one page check: for each instruction, the
/// group it leads (its check comes first) or belongs to. A group is two or more rewritten
/// accesses `[base + disp]` through the same base register, with only register-only
/// instructions between them that leave the base alone, all inside [`PAGE_GROUP_SPAN`]
/// bytes. Its check makes sure that the whole span lies in one page with a TLB hit (a
/// write hit if any access writes) and keeps the page's host address; after it none of
/// the group's accesses can fault, so none needs a check or a flags spill of its own.
pub(crate) fn plan_page_groups(block: &Block<JitInsn>) -> Vec<Option<GroupSlot>> {
    let mode = block.key.mode;
    let mut plan = vec![None; block.insns.len()];
    let writes = |insn: &Instruction, reg: Register| written_registers(insn).contains(&reg);
    // The open group: its members' indices, and the span so far.
    let mut open: Option<(Vec<usize>, PageGroup, i64, i64)> = None;
    let close = |open: &mut Option<(Vec<usize>, PageGroup, i64, i64)>, plan: &mut Vec<Option<GroupSlot>>| {
        if let Some((members, mut group, lo, hi)) = open.take()
            && members.len() >= 2
            && hi - lo <= i64::from(PAGE_GROUP_SPAN)
        {
            group.lo = lo as i32;
            group.len = (hi - lo) as u32;
            let last = *members.last().expect("two or more");
            for (k, &i) in members.iter().enumerate() {
                plan[i] = Some(GroupSlot { lead: k == 0, last, group });
            }
        }
    };
    for (i, d) in block.insns.iter().enumerate() {
        let insn = &d.insn;
        let operand = (d.exec.treatment == Treatment::Rewritten).then(|| grouped_operand(insn, mode)).flatten();
        match operand {
            Some((base, disp, width, write)) => {
                let (lo, hi) = (i64::from(disp), i64::from(disp) + i64::from(width));
                let joins = open.as_ref().is_some_and(|(_, g, glo, ghi)| {
                    g.base == base && hi.max(*ghi) - lo.min(*glo) <= i64::from(PAGE_GROUP_SPAN)
                });
                if joins {
                    let (members, g, glo, ghi) = open.as_mut().expect("joins an open group");
                    members.push(i);
                    g.write |= write;
                    (*glo, *ghi) = (lo.min(*glo), hi.max(*ghi));
                } else {
                    close(&mut open, &mut plan);
                    open = Some((vec![i], PageGroup { base, lo: 0, len: 0, write }, lo, hi));
                }
                if writes(insn, base) {
                    close(&mut open, &mut plan);
                }
            }
            None if d.exec.treatment == Treatment::Ident => {
                if open.as_ref().is_some_and(|(_, g, _, _)| writes(insn, g.base)) {
                    close(&mut open, &mut plan);
                }
            }
            None => close(&mut open, &mut plan),
        }
    }
    close(&mut open, &mut plan);
    plan
}

/// The general registers `insn` writes, as 32-bit registers (EAX for a write of AL),
/// explicitly or not.
pub(crate) fn written_registers(insn: &Instruction) -> Vec<Register> {
    use popek_cpu::iced_x86::{InstructionInfoFactory, OpAccess};
    InstructionInfoFactory::new()
        .info(insn)
        .used_registers()
        .iter()
        .filter(|u| {
            u.register().is_gpr()
                && matches!(
                    u.access(),
                    OpAccess::Write | OpAccess::ReadWrite | OpAccess::CondWrite | OpAccess::ReadCondWrite
                )
        })
        .map(|u| u.register().full_register32())
        .collect()
}

/// `lea r10d, [base + index*scale + disp]` for `insn`'s memory operand, on the host
/// registers (32-bit addressing: it wraps at 4 GiB).
fn address_lea(insn: &Instruction) -> Option<Instruction> {
    let mem = MemoryOperand::new(
        host_reg(insn.memory_base()),
        host_reg(insn.memory_index()),
        insn.memory_index_scale(),
        insn.memory_displacement32() as i32 as i64,
        if insn.memory_displ_size() == 0 { 0 } else { 4 },
        false,
        Register::None,
    );
    Instruction::with2(Code::Lea_r32_m, Register::R10D, mem).ok()
}

/// MOV between AL/AX/EAX and a memory offset (`A0`–`A3`, `mov eax, [moffs32]`, which gcc
/// emits for every load or store of a global into EAX) as the equivalent ModRM form, which
/// takes a base register: the same operation, so its memory operand can be rewritten.
fn moffs_as_modrm(insn: &Instruction) -> Option<Instruction> {
    let (code, load) = match insn.code() {
        Code::Mov_AL_moffs8 => (Code::Mov_r8_rm8, true),
        Code::Mov_AX_moffs16 => (Code::Mov_r16_rm16, true),
        Code::Mov_EAX_moffs32 => (Code::Mov_r32_rm32, true),
        Code::Mov_moffs8_AL => (Code::Mov_rm8_r8, false),
        Code::Mov_moffs16_AX => (Code::Mov_rm16_r16, false),
        Code::Mov_moffs32_EAX => (Code::Mov_rm32_r32, false),
        _ => return None,
    };
    // 16-bit addressing (an address-size prefix in 32-bit code) is not rewritten.
    if insn.memory_displ_size() != 4 {
        return None;
    }
    let reg = if load { insn.op0_register() } else { insn.op1_register() };
    let mem = MemoryOperand::with_base_displ(Register::None, insn.memory_displacement32() as i32 as i64);
    let mut twin = if load { Instruction::with2(code, reg, mem) } else { Instruction::with2(code, mem, reg) }.ok()?;
    twin.set_memory_displ_size(4);
    twin.set_segment_prefix(insn.segment_prefix());
    Some(twin)
}

/// How OF, where the SDM leaves it undefined, is made the choice of
/// [`popek_interp::undefined::TABLE`] after a host twin (the host may pick another: Intel
/// and AMD differ after rotates by more than 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OfFix {
    /// OF is defined by the SDM for this form: the host's is right.
    None,
    /// OF reads 0: `Choice::Clear` (SAR), or `Choice::OfRight` after SHR by a constant
    /// 2 or more, whose result's two top bits are 0.
    Clear,
    /// `Choice::OfLeft` after SHL/SAL/SHLD, whose SF is the result's MSB: OF = SF XOR CF,
    /// computed from host EFLAGS when the flags leave them (or eagerly after a count in CL).
    SfXorCf,
    /// `Choice::OfLeft` after ROL, whose CF is the result's LSB: a copy of the result
    /// rotated right by 1 sets CF and OF exactly so (`mov r11d, r ; ror r11, 1`).
    RotateCopyRight,
    /// `Choice::OfRight` after ROR, whose CF is the result's MSB: a copy rotated left by 1.
    RotateCopyLeft,
    /// `Choice::OfRight` after SHRD or SHR by CL (32-bit): OF = the result's two top bits
    /// XORed, which is the OF of adding a copy of the result to itself.
    TopTwo,
}

/// What translated code does after a host twin so that the flags the SDM leaves undefined
/// read as [`popek_interp::undefined::TABLE`] says, whatever the host chose. Derived from
/// the table by [`flag_fix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlagFix {
    /// The flags in `zero` read 0 (the emitter clears them when the flags leave host
    /// EFLAGS) and OF is fixed as `of` says. `zero == 0, of == None`: nothing to fix.
    After {
        /// Undefined flags whose choice is `Clear` (x86 bits).
        zero: u32,
        /// OF's fix-up.
        of: OfFix,
    },
    /// A shift or rotate by CL: a masked count of 0 changes nothing (on the host too), so
    /// the emitter branches on it; otherwise the twin, AF cleared (shifts) and OF fixed.
    Counted(OfFix),
    /// MUL/IMUL: SF, ZF and PF from this register (the low half of the result), AF
    /// cleared; CF = OF as the host computed them (defined).
    MulLow(Register),
}

impl FlagFix {
    /// Nothing to fix.
    pub(crate) const NONE: FlagFix = FlagFix::After { zero: 0, of: OfFix::None };
}

/// Whether `insn` has a host twin whose results match the interpreter's, and what must
/// follow it for the flags to match too: every flag iced-x86 reports undefined for the
/// form gets the fix-up its [`popek_interp::undefined::choice`] calls for, or the form
/// has no twin.
pub(crate) fn flag_fix(insn: &Instruction) -> Option<FlagFix> {
    use Mnemonic::*;
    use popek_interp::undefined::{Choice, choice};
    let m = insn.mnemonic();
    if matches!(m, Nop | Pause) {
        return Some(FlagFix::NONE);
    }
    let shift = matches!(m, Shl | Sal | Shr | Sar | Shld | Shrd);
    let rotate = matches!(m, Rol | Ror);
    if !(ident_mnemonic(m) || shift || rotate || matches!(m, Mul | Imul)) {
        return None;
    }
    let width =
        if insn.op0_kind() == OpKind::Register { insn.op0_register().size() } else { insn.memory_size().size() };
    let count_op = if matches!(m, Shld | Shrd) { 2 } else { 1 };
    let by_cl = (shift || rotate) && insn.op_kind(count_op) == OpKind::Register;
    if shift {
        // 16-bit SHLD/SHRD, and 8/16-bit shifts whose count may reach the width (CF is
        // then undefined, and the host's choice differs): no twin.
        if matches!(m, Shld | Shrd) && width != 4 {
            return None;
        }
        match insn.op_kind(count_op) {
            OpKind::Immediate8 => {
                let count = insn.immediate8() as usize & 31;
                if count == 0 || count >= 8 * width.min(4) {
                    return None;
                }
            }
            _ if width != 4 => return None,
            _ => {}
        }
    }
    if matches!(m, Mul | Imul) {
        let low = if insn.op_count() == 1 {
            match width {
                1 => Register::AL,
                2 => Register::AX,
                _ => Register::EAX,
            }
        } else {
            host_reg(insn.op0_register())
        };
        let ok = choice(m, SF) == Some(Choice::LowHalf) && choice(m, AF) == Some(Choice::Clear);
        return ok.then_some(FlagFix::MulLow(low));
    }
    // The result's copy (RotateCopy*, TopTwo) cannot be taken from AH/BH/CH/DH.
    let high_byte = insn.op0_kind() == OpKind::Register
        && matches!(insn.op0_register(), Register::AH | Register::BH | Register::CH | Register::DH);
    let undefined = x86_flags(insn.rflags_undefined());
    let (mut zero, mut of) = (0, OfFix::None);
    for flag in [CF, PF, AF, ZF, SF, OF].into_iter().filter(|&f| undefined & f != 0) {
        match (choice(m, flag)?, flag) {
            (Choice::Clear, OF) => of = OfFix::Clear,
            (Choice::Clear, f) => zero |= f,
            (Choice::OfLeft, OF) => {
                of = match m {
                    Shl | Sal | Shld => OfFix::SfXorCf,
                    Rol if !high_byte => OfFix::RotateCopyRight,
                    _ => return None,
                }
            }
            (Choice::OfRight, OF) => {
                of = match m {
                    Ror if !high_byte => OfFix::RotateCopyLeft,
                    Shr if !by_cl => OfFix::Clear,
                    Shr | Shrd if !high_byte => OfFix::TopTwo,
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
    if by_cl {
        // A count of 0 changes nothing; any other sets OF (undefined unless it is 1).
        let of = match m {
            Shl | Sal | Shld => OfFix::SfXorCf,
            Sar => OfFix::Clear,
            Shr | Shrd => OfFix::TopTwo,
            Rol => OfFix::RotateCopyRight,
            _ => OfFix::RotateCopyLeft,
        };
        return (!high_byte).then_some(FlagFix::Counted(of));
    }
    Some(FlagFix::After { zero, of })
}

/// The flags (x86 EFLAGS bits) a fix-up makes the table's choice: every flag iced-x86
/// calls undefined for a twin form must be among them.
#[cfg(test)]
fn fixed_flags(fix: FlagFix) -> u32 {
    let of = |of: OfFix| if of == OfFix::None { 0 } else { OF };
    match fix {
        FlagFix::After { zero, of: o } => zero | of(o),
        FlagFix::Counted(o) => {
            let shift = matches!(o, OfFix::SfXorCf | OfFix::Clear | OfFix::TopTwo);
            OF | if shift { AF } else { CF }
        }
        FlagFix::MulLow(_) => SF | ZF | PF | AF,
    }
}

/// True if `flags` (x86 bits), as instruction `i` of `insns` (a block of mode `mode`)
/// leaves them, can never be seen: the instructions after it overwrite them all, and until
/// they have, each is an `ident` twin or an access that cannot fault
/// ([`access_cannot_fault`]), and does not read them — no memory access that may fault
/// (an exception frame holds EFLAGS), no callout, no branch, no block end (the next block
/// may read them). A shift or rotate by CL kills nothing (a count of 0 writes no flag).
pub(crate) fn flags_dead_after(insns: &[DecodedInsn<JitInsn>], mode: u32, i: usize, flags: u32) -> bool {
    flags_set_again(insns, mode, i + 1, flags, |_| false)
}

/// True if `flags` are set again from instruction `from` on before anything can see them:
/// every instruction until then is an `ident` twin, an access that cannot fault in a block
/// of mode `mode` ([`access_cannot_fault`]), or one `runs_unseen` admits (by index), and
/// does not read them. A shift or rotate by CL kills nothing (a count of 0 writes no flag).
fn flags_set_again(
    insns: &[DecodedInsn<JitInsn>],
    mode: u32,
    from: usize,
    mut flags: u32,
    runs_unseen: impl Fn(usize) -> bool,
) -> bool {
    for (j, d) in insns.iter().enumerate().skip(from) {
        let twin = d.exec.treatment == Treatment::Ident
            || runs_unseen(j)
            || d.exec.treatment == Treatment::Rewritten && access_cannot_fault(mode, &d.insn);
        if !twin || x86_flags(d.insn.rflags_read()) & flags != 0 {
            return false;
        }
        if !matches!(flag_fix(&d.insn), Some(FlagFix::Counted(_))) {
            flags &= !x86_flags(d.insn.rflags_modified());
            if flags == 0 {
                return true;
            }
        }
    }
    false
}

/// True if `insn`, a rewritten memory access in a block of mode `mode`, can raise no
/// exception and cannot end its block early: paging is off and DS, ES and SS are flat
/// ([`BlockKey::FLAT`]), so an access through one of them can neither page-fault nor
/// overrun a limit; the instruction (a load into a register, arithmetic with a memory
/// source, or a compare, not a division or BOUND) raises nothing else (popek has no
/// alignment checks or data breakpoints); and it only reads memory, where a store may end
/// the block right after it (into an interrupt controller, or into the block's own code),
/// with the flags it left then in `CpuState`. Neither a fault's frame nor a block end is
/// then a reason to save the flags before its lookup.
pub(crate) fn access_cannot_fault(mode: u32, insn: &Instruction) -> bool {
    use Mnemonic::*;
    let reads_only = match insn.mnemonic() {
        Cmp | Test => true,
        Mov | Movzx | Movsx | Add | Sub | And | Or | Xor | Adc | Sbb => insn.op0_kind() == OpKind::Register,
        _ => false,
    };
    mode & BlockKey::PAGING == 0
        && mode & BlockKey::FLAT != 0
        && (0..insn.op_count()).any(|k| insn.op_kind(k) == OpKind::Memory)
        && matches!(insn.memory_segment(), Register::DS | Register::ES | Register::SS)
        && reads_only
}

/// [`flags_dead_after`] for `flags` as host EFLAGS hold them just before the page check of
/// the group that instruction `lead` leads ([`plan_page_groups`]): the check's miss path is
/// the only place a fault may see them, so the group's accesses count as `ident` twins
/// here (they run after the check, and cannot fault), the lead's own among them.
pub(crate) fn flags_dead_in_group(
    insns: &[DecodedInsn<JitInsn>],
    mode: u32,
    groups: &[Option<GroupSlot>],
    lead: usize,
    flags: u32,
) -> bool {
    let Some(last) = groups[lead].map(|g| g.last) else { return false };
    flags_set_again(insns, mode, lead, flags, |j| j <= last && groups[j].is_some_and(|g| g.last == last))
}

/// The x86 EFLAGS bits of a set of arithmetic flags in iced-x86's `RflagsBits` numbering.
pub(crate) fn x86_flags(iced: u32) -> u32 {
    use popek_cpu::iced_x86::RflagsBits;
    [(RflagsBits::OF, OF), (RflagsBits::SF, SF), (RflagsBits::ZF, ZF), (RflagsBits::AF, AF), (RflagsBits::CF, CF)]
        .into_iter()
        .chain([(RflagsBits::PF, PF)])
        .filter(|&(i, _)| iced & i != 0)
        .fold(0, |acc, (_, x)| acc | x)
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
pub(crate) fn host_reg(r: Register) -> Register {
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
    if matches!(insn.mnemonic(), Mnemonic::Nop | Mnemonic::Pause) {
        // Also the multi-byte NOP with its (unused) memory operand; PAUSE is a spin-loop
        // hint, nothing to do for one virtual CPU.
        return Some(Vec::new());
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
        memory_twin(insn, 0x1000, BlockKey::FLAT)
    }

    fn decode(bytes: &[u8]) -> Instruction {
        Decoder::with_ip(32, bytes, 0x1000, DecoderOptions::NONE).decode()
    }

    #[test]
    fn treatments() {
        // add eax, ebx: ident, and its host twin is the same bytes.
        assert_eq!(classify(&decode(&[0x01, 0xd8]), BlockKey::FLAT), Treatment::Ident);
        assert_eq!(host_twin(&decode(&[0x01, 0xd8])).unwrap(), vec![0x01, 0xd8]);
        // inc eax (0x40 is REX in 64-bit mode): re-encoded as ff c0.
        assert_eq!(host_twin(&decode(&[0x40])).unwrap(), vec![0xff, 0xc0]);
        // mov esp, eax: ESP lives in R12D.
        assert_eq!(host_twin(&decode(&[0x89, 0xc4])).unwrap(), vec![0x41, 0x89, 0xc4]);
        // movzx esp, ah: AH cannot be encoded with R12: helper.
        assert_eq!(classify(&decode(&[0x0f, 0xb6, 0xe4]), BlockKey::FLAT), Treatment::Helper);
        // add eax, [ebx]: rewritten with flat segments, helper without.
        assert_eq!(classify(&decode(&[0x03, 0x03]), BlockKey::FLAT), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0x03, 0x03]), 0), Treatment::Helper);
        let m = memory_twin_at(&decode(&[0x03, 0x03])).unwrap();
        assert_eq!((m.width, m.write), (4, false));
        assert_eq!(m.twin, vec![0x41, 0x03, 0x02], "add eax, [r10]");
        // mov [esp+8], esi: a write, based on R12D; mov ah, [ebx]: AH cannot go with R10.
        let m = memory_twin_at(&decode(&[0x89, 0x74, 0x24, 0x08])).unwrap();
        assert!(m.write);
        assert!(memory_twin_at(&decode(&[0x8a, 0x23])).is_none());
        // mov eax, [0x12345678] (a1) and mov [0x12345678], al (a2): rewritten as the
        // ModRM forms on [r10]; with an address-size prefix (16-bit offset): helper.
        let m = memory_twin_at(&decode(&[0xa1, 0x78, 0x56, 0x34, 0x12])).unwrap();
        assert_eq!((m.width, m.write, m.twin), (4, false, vec![0x41, 0x8b, 0x02]), "mov eax, [r10]");
        let lea = Decoder::with_ip(64, &m.lea, 0, DecoderOptions::NONE).decode();
        assert_eq!((lea.memory_base(), lea.memory_displacement64()), (Register::None, 0x1234_5678));
        let m = memory_twin_at(&decode(&[0xa2, 0x78, 0x56, 0x34, 0x12])).unwrap();
        assert_eq!((m.width, m.write, m.twin), (1, true, vec![0x41, 0x88, 0x02]), "mov [r10], al");
        assert_eq!(classify(&decode(&[0x67, 0xa1, 0x34, 0x12]), BlockKey::FLAT), Treatment::Helper);
        assert!(memory_twin_at(&decode(&[0x64, 0xa1, 0, 0, 0, 0])).is_none(), "fs: not flat");
        // lock inc dword [eax] and lock add [ebx], ecx: rewritten without the prefix (one
        // CPU); lock mov [eax], ecx (#UD) and pause in a block: not rewritten / no code.
        let m = memory_twin_at(&decode(&[0xf0, 0xff, 0x00])).unwrap();
        assert_eq!((m.write, m.twin), (true, vec![0x41, 0xff, 0x02]), "inc dword [r10]");
        assert_eq!(memory_twin_at(&decode(&[0xf0, 0x01, 0x0b])).unwrap().twin, vec![0x41, 0x01, 0x0a]);
        assert!(memory_twin_at(&decode(&[0xf0, 0x89, 0x08])).is_none());
        // The decoder refuses LOCK where the SDM makes it #UD (lock mov, lock add to a register).
        assert!(decode(&[0xf0, 0x89, 0x08]).is_invalid() && decode(&[0xf0, 0x01, 0xd8]).is_invalid());
        assert_eq!(host_twin(&decode(&[0xf3, 0x90])).unwrap(), Vec::<u8>::new());
        // mov eax, fs:[ebx] and inc dword gs:[8]: rewritten when FS (GS) holds a 4 GiB data
        // segment, the segment's base added to the address (add r10d, [r15 + base]).
        let fs = BlockKey::FLAT | BlockKey::FS_4GIB;
        let m = memory_twin(&decode(&[0x64, 0x8b, 0x03]), 0, fs).unwrap();
        let add = Decoder::with_ip(64, &m.lea, 0, DecoderOptions::NONE).into_iter().nth(1).unwrap();
        assert_eq!(
            (add.mnemonic(), add.op0_register(), add.memory_base()),
            (Mnemonic::Add, Register::R10D, Register::R15)
        );
        assert_eq!(classify(&decode(&[0x64, 0x8b, 0x03]), fs), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0x65, 0xff, 0x05, 8, 0, 0, 0]), fs), Treatment::Helper, "GS is not 4 GiB");
        let gs = BlockKey::FLAT | BlockKey::GS_4GIB;
        assert_eq!(classify(&decode(&[0x65, 0xff, 0x05, 8, 0, 0, 0]), gs), Treatment::Rewritten);
        // mov eax, fs:[ebx]: not flat.
        assert!(memory_twin_at(&decode(&[0x64, 0x8b, 0x03])).is_none());
        // rdtsc: rewritten (the virtual TSC computed inline) in any block.
        assert_eq!(classify(&decode(&[0x0f, 0x31]), 0), Treatment::Rewritten);
        // pushfd: rewritten on a flat stack (a store of the virtual EFLAGS), a callout on
        // another; cli, mov eax, cr0 and sgdt: quiet callouts; sti, popfd, mov cr0, eax, in: not.
        assert_eq!(classify(&decode(&[0x9c]), BlockKey::FLAT), Treatment::Rewritten);
        assert!(memory_twin_at(&decode(&[0x9c])).unwrap().write);
        assert_eq!(classify(&decode(&[0x9c]), 0), Treatment::Callout);
        // mov ds, ax and pop es too (the callout checks the mode); mov ss, ax and pop ss not.
        for b in [&[0x9c][..], &[0xfa], &[0x0f, 0x20, 0xc0], &[0x0f, 0x01, 0x00], &[0x8e, 0xd8], &[0x07]] {
            assert!(classify(&decode(b), 0) == Treatment::Callout && is_quiet_callout(&decode(b)), "{b:02x?}");
        }
        for b in [&[0xfb][..], &[0x9d], &[0x0f, 0x22, 0xc0], &[0xe4, 0x60], &[0x8e, 0xd0], &[0x17]] {
            assert!(
                classify(&decode(b), BlockKey::FLAT) == Treatment::Callout && !is_quiet_callout(&decode(b)),
                "{b:02x?}"
            );
        }
        // cli, popf, mov cr3, eax, out: sensitive: callout; so is a hypercall (vmcall).
        for b in [&[0xfa][..], &[0x9d], &[0x0f, 0x22, 0xd8], &[0xe6, 0x80], &[0x0f, 0x01, 0xc1]] {
            assert_eq!(classify(&decode(b), BlockKey::FLAT), Treatment::Callout, "{b:02x?}");
        }
        // jne rel8 and jmp rel32: rewritten inline in a flat block.
        assert_eq!(classify(&decode(&[0x75, 0x10]), BlockKey::FLAT), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0xe9, 0, 1, 0, 0]), BlockKey::FLAT), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0x75, 0x10]), 0), Treatment::Helper);
        assert_eq!(classify(&decode(&[0xe2, 0x10]), BlockKey::FLAT), Treatment::Rewritten, "loop on ECX");
        assert_eq!(classify(&decode(&[0x67, 0xe2, 0x10]), BlockKey::FLAT), Treatment::Helper, "loop on CX");
        assert_eq!(classify(&decode(&[0xe1, 0x10]), BlockKey::FLAT), Treatment::Helper, "loope");
        // push ebx / pop esi / push 5: rewritten on the flat stack.
        assert_eq!(classify(&decode(&[0x53]), BlockKey::FLAT), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0x5e]), BlockKey::FLAT), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0x6a, 0x05]), BlockKey::FLAT), Treatment::Rewritten);
        assert!(memory_twin_at(&decode(&[0x53])).unwrap().write);
        // push -14 (6a f2): the imm8 is sign-extended: mov dword [r10], 0FFFFFFF2h.
        let twin = memory_twin_at(&decode(&[0x6a, 0xf2])).unwrap().twin;
        let mov = Decoder::with_ip(64, &twin, 0, DecoderOptions::NONE).decode();
        assert_eq!(mov.immediate(1) as u32, 0xffff_fff2);
        // leave: rewritten (a pop through EBP); with a 16-bit operand size: helper.
        assert_eq!(classify(&decode(&[0xc9]), BlockKey::FLAT), Treatment::Rewritten);
        assert!(!memory_twin_at(&decode(&[0xc9])).unwrap().write);
        assert_eq!(classify(&decode(&[0x66, 0xc9]), BlockKey::FLAT), Treatment::Helper);
        // call rel32, ret, call through a register or memory: rewritten in a flat block;
        // call through FS-relative memory, or with a 16-bit operand: helper.
        assert_eq!(classify(&decode(&[0xe8, 0, 0, 0, 0]), BlockKey::FLAT), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0xc3]), BlockKey::FLAT), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0xff, 0xd0]), BlockKey::FLAT), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0xff, 0x14, 0x85, 0, 0x10, 0, 0]), BlockKey::FLAT), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0xff, 0xd0]), 0), Treatment::Helper);
        assert_eq!(classify(&decode(&[0xff, 0xe0]), BlockKey::FLAT), Treatment::Rewritten, "jmp eax");
        assert_eq!(classify(&decode(&[0xff, 0x24, 0x85, 0, 0x10, 0, 0]), BlockKey::FLAT), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0x64, 0xff, 0x10]), BlockKey::FLAT), Treatment::Helper);
        assert_eq!(classify(&decode(&[0x66, 0xff, 0xd0]), BlockKey::FLAT), Treatment::Helper);
        // push ds, pushad, popad: rewritten on a flat stack; push ds a quiet callout off one.
        assert_eq!(classify(&decode(&[0x1e]), BlockKey::FLAT), Treatment::Rewritten);
        assert!(classify(&decode(&[0x1e]), 0) == Treatment::Callout && is_quiet_callout(&decode(&[0x1e])));
        assert_eq!(classify(&decode(&[0x60]), BlockKey::FLAT), Treatment::Rewritten);
        assert_eq!(classify(&decode(&[0x61]), BlockKey::FLAT), Treatment::Rewritten);
        // shl eax, 3: ident, AF cleared afterwards; by 0: helper (the flags stay as they
        // were); by CL: ident with a run-time fix-up, but only on 32 bits.
        assert_eq!(classify(&decode(&[0xc1, 0xe0, 0x03]), BlockKey::FLAT), Treatment::Ident);
        assert_eq!(flag_fix(&decode(&[0xc1, 0xe0, 0x03])), Some(FlagFix::After { zero: AF, of: OfFix::SfXorCf }));
        assert_eq!(classify(&decode(&[0xd3, 0xe0]), BlockKey::FLAT), Treatment::Ident);
        assert_eq!(flag_fix(&decode(&[0xd3, 0xe0])), Some(FlagFix::Counted(OfFix::SfXorCf)));
        assert_eq!(classify(&decode(&[0x66, 0xd3, 0xe0]), BlockKey::FLAT), Treatment::Helper);
        assert_eq!(classify(&decode(&[0xc1, 0xe0, 0x00]), BlockKey::FLAT), Treatment::Helper);
        // shl al, 9: CF undefined past the width: helper.
        assert_eq!(classify(&decode(&[0xc0, 0xe0, 0x09]), BlockKey::FLAT), Treatment::Helper);
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

    /// The MUL/IMUL fix-up is left out only where its flags can never be seen.
    #[test]
    fn flags_are_dead_only_when_overwritten_before_anything_can_see_them() {
        let block = |bytes: &[u8]| -> Vec<DecodedInsn<JitInsn>> {
            Decoder::with_ip(32, bytes, 0x1000, DecoderOptions::NONE)
                .into_iter()
                .map(|insn| DecodedInsn { exec: prepare(&insn, BlockKey::FLAT), insn })
                .collect()
        };
        let mul = SF | ZF | PF | AF;
        let paging = BlockKey::FLAT | BlockKey::PAGING;
        let flags_dead_after_in = |b: &[DecodedInsn<JitInsn>], i, f| flags_dead_after(b, paging, i, f);
        // imul eax, ecx ; add eax, edx: dead.
        assert!(flags_dead_after_in(&block(&[0x0f, 0xaf, 0xc1, 0x01, 0xd0]), 0, mul));
        // imul eax, ecx ; shl eax, cl ; mov ebx, eax ; xor eax, eax: dead (the shift by CL
        // kills nothing, the MOV touches no flag).
        assert!(flags_dead_after_in(&block(&[0x0f, 0xaf, 0xc1, 0xd3, 0xe0, 0x89, 0xc3, 0x31, 0xc0]), 0, mul));
        // imul eax, ecx ; mov [ebx], eax (may fault) ; add eax, edx: live.
        assert!(!flags_dead_after_in(&block(&[0x0f, 0xaf, 0xc1, 0x89, 0x03, 0x01, 0xd0]), 0, mul));
        // imul eax, ecx ; setz al: live (read).
        assert!(!flags_dead_after_in(&block(&[0x0f, 0xaf, 0xc1, 0x0f, 0x94, 0xc0]), 0, mul));
        // imul eax, ecx ; shl eax, cl: live at the block's end.
        assert!(!flags_dead_after_in(&block(&[0x0f, 0xaf, 0xc1, 0xd3, 0xe0]), 0, mul));
        // imul eax, ecx ; inc eax (writes all but CF) ; cli (a callout): dead for SF/ZF/PF/AF.
        assert!(flags_dead_after_in(&block(&[0x0f, 0xaf, 0xc1, 0x40, 0xfa]), 0, mul));
        assert!(!flags_dead_after_in(&block(&[0x0f, 0xaf, 0xc1, 0x40, 0xfa]), 0, mul | CF));
        // inc ebp ; mov edx, [eax] ; add eax, 4: CF is live where the load may page-fault
        // (its frame shows CF), dead with paging off, where it cannot.
        let inc_load_add = block(&[0x45, 0x8b, 0x10, 0x83, 0xc0, 0x04]);
        assert!(!flags_dead_after_in(&inc_load_add, 0, CF));
        assert!(flags_dead_after(&inc_load_add, BlockKey::FLAT, 0, CF));
        // ... but not in FS (whose base may be anything): fs: mov edx, [eax].
        let through_fs = block(&[0x45, 0x64, 0x8b, 0x10, 0x83, 0xc0, 0x04]);
        assert!(!flags_dead_after(&through_fs, BlockKey::FLAT, 0, CF));
        // inc ebp ; mov [eax], edx (a store may end the block) ; add eax, 4: live.
        assert!(!flags_dead_after(&block(&[0x45, 0x89, 0x10, 0x83, 0xc0, 0x04]), BlockKey::FLAT, 0, CF));
    }

    /// Every form the translator may run as a host twin (ident or rewritten), over every
    /// one- and two-byte opcode with and without an operand-size prefix, register and
    /// memory ModRM forms, and immediates around the operand widths: each flag iced-x86
    /// calls undefined for the form is fixed up to popek's table, so no guest-visible
    /// flag comes from the host. No form with an undefined register result is a twin.
    #[test]
    fn every_undefined_flag_of_every_twin_is_fixed_up() {
        use popek_interp::undefined;
        let modrms = (0xc0..=0xffu8).chain([0x00, 0x03, 0x04, 0x05, 0x44, 0x80]);
        let modrms: Vec<u8> = modrms.collect();
        let tails = [0u8, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 0xff];
        let prefixes = [0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x0f];
        let opcodes = (0..=0xffu16)
            .filter(|op| !prefixes.contains(&(*op as u8)))
            .map(|op| vec![op as u8])
            .chain((0..=0xffu16).map(|op| vec![0x0f, op as u8]));
        let mut checked = std::collections::BTreeSet::new();
        let mut with_undefined = std::collections::BTreeSet::new();
        for opcode in opcodes {
            for prefix in [None, Some(0x66u8)] {
                for &modrm in &modrms {
                    for &tail in &tails {
                        let mut bytes: Vec<u8> = prefix.into_iter().collect();
                        bytes.extend(&opcode);
                        bytes.push(modrm);
                        bytes.extend([tail; 12]);
                        let insn = decode(&bytes);
                        if insn.is_invalid() {
                            continue;
                        }
                        let twin = match classify(&insn, BlockKey::FLAT) {
                            Treatment::Ident => true,
                            Treatment::Rewritten => !is_inline_branch(&insn) && !is_call_or_ret(&insn),
                            _ => false,
                        };
                        if !twin {
                            continue;
                        }
                        let m = insn.mnemonic();
                        // PUSH/POP/CALL/RET twins move data only: no flags to fix.
                        let fix = flag_fix(&insn)
                            .or((insn.rflags_modified() == 0).then_some(FlagFix::NONE))
                            .unwrap_or_else(|| panic!("{insn}: a twin that writes flags has a flag fix"));
                        let undefined = x86_flags(insn.rflags_undefined());
                        assert_eq!(
                            undefined & !fixed_flags(fix),
                            0,
                            "{insn} ({bytes:02x?}): undefined {undefined:#x} but {fix:?} fixes only {:#x}",
                            fixed_flags(fix)
                        );
                        for flag in [CF, PF, AF, ZF, SF, OF].into_iter().filter(|&f| undefined & f != 0) {
                            assert!(undefined::choice(m, flag).is_some(), "{insn}: no choice for {flag:#x}");
                        }
                        // Undefined register results: BSF/BSR on 0, 16-bit BSWAP, 16-bit
                        // SHLD/SHRD, 8/16-bit shifts by the width or more: never twins.
                        assert!(!matches!(m, Mnemonic::Bsf | Mnemonic::Bsr), "{insn}");
                        assert!(!(m == Mnemonic::Bswap && insn.op0_register().is_gpr16()), "{insn}");
                        let width = if insn.op0_kind() == OpKind::Register {
                            insn.op0_register().size()
                        } else {
                            insn.memory_size().size()
                        };
                        if matches!(m, Mnemonic::Shld | Mnemonic::Shrd) {
                            assert_eq!(width, 4, "{insn}");
                        }
                        if matches!(m, Mnemonic::Shl | Mnemonic::Sal | Mnemonic::Shr | Mnemonic::Sar)
                            && insn.op_kind(1) == OpKind::Immediate8
                        {
                            assert!((insn.immediate8() as usize & 31) < 8 * width, "{insn}");
                        }
                        checked.insert(format!("{m:?}"));
                        if undefined != 0 {
                            with_undefined.insert(format!("{m:?}"));
                        }
                    }
                }
            }
        }
        // The enumeration reached the forms that matter.
        for m in ["Shl", "Shr", "Sar", "Shld", "Shrd", "Rol", "Ror", "Mul", "Imul", "And", "Or", "Xor", "Test"] {
            assert!(with_undefined.contains(m), "{m} not reached with undefined flags: {with_undefined:?}");
        }
        assert!(checked.len() > 40, "only {} mnemonics checked: {checked:?}", checked.len());
    }
}
