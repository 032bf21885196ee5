//! The code cache: one dynasmrt assembler whose executable buffer holds every
//! translated block, bounded, flushed whole when full.
//!
//! A translated block is a function `extern "sysv64" fn(*mut CpuState, *mut Ctx) -> u64`:
//!
//! ```text
//!   prologue: save callee-saved regs; r15 = &CpuState; r14 = &Ctx
//!   for each instruction:
//!     ident   → (load guest regs + flags into host regs if they are in memory) host twin
//!     callout → (store guest regs + flags if they are in host regs) call callout(ctx, i);
//!               leave the block if it returned non-zero
//!   store guest regs + flags if needed; return 0
//! ```

// CpuState offsets and instruction indices are small (checked by the block-length cap);
// dynasm's register macros convert their operand with `.into()` even when it is a u8.
#![allow(clippy::cast_possible_truncation, clippy::useless_conversion)]

use crate::translate::{
    FlagFix, Treatment, flag_fix, host_twin, is_call_or_ret, is_inline_branch, memory_twin, test_self,
};
use crate::{CHAIN_MISS, Ctx, INDIRECT_ENTRIES, IndirectEntry, JitError, JitInsn};
use dynasmrt::x64::{Assembler, X64Relocation};
use dynasmrt::{AssemblyOffset, DynamicLabel, DynasmApi, DynasmLabelApi, Executor, VecAssembler, dynasm};
use popek_cpu::Cpu;
use popek_cpu::block::{Block, DecodedInsn};
use popek_cpu::iced_x86::{ConditionCode, Instruction, RflagsBits};
use popek_cpu::mmu::{TLB_ENTRIES, Tlb, TlbEntry};
use popek_cpu::state::flags::{AF, ARITH, CF, OF};
use std::mem::offset_of;

/// Where a translation lives: which generation of the cache, and where in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    generation: u32,
    offset: u32,
    /// Where chained blocks jump in, past the prologue.
    body: u32,
}

/// Host register numbers holding guest EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI.
const HOME: [u8; 8] = [0, 1, 2, 3, 12, 5, 6, 7];

/// Most host code one guest instruction can take (a rewritten instruction: the inline
/// lookup, and a callout with a store and a reload around it).
const MAX_BYTES_PER_INSN: usize = 512;

// The inline lookup scales the TLB index by 16 (`shl r8d, 4`).
const _: () = assert!(std::mem::size_of::<TlbEntry>() == 16);

/// Anything the emitter can write x86-64 into: the code cache's assembler, or a plain
/// byte vector for `explain`.
pub(crate) trait Emit: DynasmLabelApi<Relocation = X64Relocation> + Extend<u8> {
    /// A new dynamic label.
    fn fresh_label(&mut self) -> DynamicLabel;
}

impl Emit for Assembler {
    fn fresh_label(&mut self) -> DynamicLabel {
        self.new_dynamic_label()
    }
}

impl Emit for VecAssembler<X64Relocation> {
    fn fresh_label(&mut self) -> DynamicLabel {
        self.new_dynamic_label()
    }
}

macro_rules! x64 {
    ($ops:expr; $($t:tt)*) => {
        dynasm!($ops ; .arch x64 ; $($t)*)
    };
}

pub(crate) struct CodeCache {
    asm: Assembler,
    /// Read access to the executable buffer (kept: making one clones an `Arc`).
    reader: Executor,
    capacity: usize,
    generation: u32,
    /// Where each chain site leads: plain data, so linking never touches the (W^X)
    /// code buffer. Emptied with it.
    links: Box<[ChainLink]>,
    /// Chain sites handed out since the last flush.
    next_link: u32,
}

/// Where a chain site (or an entry of the indirect-target table) leads, read by
/// translated code (`#[repr(C)]`, 32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChainLink {
    /// The TLB generation the link was made under; `u64::MAX` while unlinked.
    tlb_generation: u64,
    /// The next block (the callouts' current block once there).
    block: u64,
    /// Its execution counter.
    runs: u64,
    /// Host address of its translation's body.
    code: u64,
}

impl ChainLink {
    pub(crate) const UNLINKED: ChainLink = ChainLink { tlb_generation: u64::MAX, block: 0, runs: 0, code: 0 };
}

const _: () = assert!(std::mem::size_of::<ChainLink>() == 32);

impl CodeCache {
    pub(crate) fn new(capacity: usize) -> std::io::Result<Self> {
        let asm = Assembler::new_with_capacity(capacity)?;
        // A block takes a few hundred bytes and has at most two chain sites.
        let links = vec![ChainLink::UNLINKED; (capacity / 128).max(64)].into_boxed_slice();
        Ok(CodeCache { reader: asm.reader(), asm, capacity, generation: 0, links, next_link: 0 })
    }

    /// The chain-link table, for translated code.
    pub(crate) fn links(&self) -> *const ChainLink {
        self.links.as_ptr()
    }

    /// True if `e` was made since the last flush.
    pub(crate) fn is_current(&self, e: Entry) -> bool {
        e.generation == self.generation
    }

    /// Translates `block`, flushing the cache first if it might not fit. Returns the
    /// entry and whether a flush happened.
    pub(crate) fn translate(&mut self, block: &Block<JitInsn>) -> Result<(Entry, bool), JitError> {
        let need = 256 + block.insns.len() * MAX_BYTES_PER_INSN;
        let mut flushed = false;
        if self.asm.offset().0 + need > self.capacity || self.next_link as usize + 2 > self.links.len() {
            self.flush()?;
            flushed = true;
        }
        let start = self.asm.offset();
        let emitted = emit_block(&mut self.asm, block, &mut self.next_link);
        self.asm.commit().map_err(|e| JitError::CodeBuffer(std::io::Error::other(e.to_string())))?;
        let too_large = || JitError::CodeBuffer(std::io::Error::other("code cache too large"));
        let offset = u32::try_from(start.0).map_err(|_| too_large())?;
        let body = u32::try_from(start.0 + emitted.body).map_err(|_| too_large())?;
        Ok((Entry { generation: self.generation, offset, body }, flushed))
    }

    /// Host address of code offset `offset` (stable until the next flush: the buffer is
    /// allocated at full capacity and never grows).
    pub(crate) fn address(&self, offset: u32) -> u64 {
        self.reader.lock().ptr(AssemblyOffset(offset as usize)) as u64
    }

    /// The current generation (bumped by every flush).
    pub(crate) fn generation(&self) -> u32 {
        self.generation
    }

    /// Drops every translation (and with them every chain).
    pub(crate) fn flush(&mut self) -> Result<(), JitError> {
        self.asm = Assembler::new_with_capacity(self.capacity)?;
        self.reader = self.asm.reader();
        self.generation = self.generation.wrapping_add(1);
        self.links.fill(ChainLink::UNLINKED);
        self.next_link = 0;
        Ok(())
    }

    /// A link to `to`: valid while the TLB generation is `tlb_generation`; the chained
    /// code sets the callouts' block to `block` and counts a run in `runs`.
    pub(crate) fn link_to(&self, to: Entry, tlb_generation: u64, block: u64, runs: u64) -> ChainLink {
        ChainLink { tlb_generation, block, runs, code: self.address(to.body) }
    }

    /// Makes chain site `site` lead where `link` says.
    pub(crate) fn link(&mut self, site: usize, link: ChainLink) {
        if let Some(l) = self.links.get_mut(site) {
            *l = link;
        }
    }

    /// Runs the translation at `e`.
    pub(crate) fn call(&self, e: Entry, cpu: *mut Cpu, ctx: &mut Ctx<'_>) -> u64 {
        let buffer = self.reader.lock();
        let ptr = buffer.ptr(AssemblyOffset(e.offset as usize));
        // SAFETY: `ptr` is the start of a function emitted by `emit_block` with the
        // sysv64 signature below, in the committed executable buffer, which stays mapped
        // while `buffer` (the read lock) lives. The function only touches the Cpu
        // and Ctx it is given (both valid and exclusively borrowed for the call) and
        // the host stack, and returns normally.
        unsafe {
            let f: extern "sysv64" fn(*mut Cpu, *mut Ctx<'_>) -> u64 = std::mem::transmute(ptr);
            f(cpu, ctx)
        }
    }
}

/// Offset of a `CpuState` field from the `Cpu` that R15 points at.
macro_rules! state_off {
    ($field:ident) => {
        (std::mem::offset_of!(popek_cpu::Cpu, state) + std::mem::offset_of!(popek_cpu::CpuState, $field)) as i32
    };
}
pub(crate) use state_off;

fn gpr_off(i: usize) -> i32 {
    state_off!(gpr) + 4 * i as i32
}

const EFLAGS_OFF: i32 = state_off!(eflags);
const EIP_OFF: i32 = state_off!(eip);

/// Offset of the TLB's generation counter from the `Cpu`.
const TLB_GENERATION_OFF: i32 = (offset_of!(Cpu, tlb) + offset_of!(Tlb, generation)) as i32;

/// Offset of the soft-TLB entries for supervisor (`user` false) or user accesses.
fn tlb_off(user: bool) -> i32 {
    (offset_of!(Cpu, tlb) + offset_of!(Tlb, entries) + user as usize * std::mem::size_of::<[TlbEntry; TLB_ENTRIES]>())
        as i32
}

/// The x86 EFLAGS bits of a set of arithmetic flags in iced-x86's `RflagsBits` numbering.
fn x86_flags(iced: u32) -> u32 {
    use popek_cpu::state::flags::{AF, CF, OF, PF, SF, ZF};
    [(RflagsBits::OF, OF), (RflagsBits::SF, SF), (RflagsBits::ZF, ZF), (RflagsBits::AF, AF), (RflagsBits::CF, CF)]
        .into_iter()
        .chain([(RflagsBits::PF, PF)])
        .filter(|&(i, _)| iced & i != 0)
        .fold(0, |acc, (_, x)| acc | x)
}

/// The flags (x86 bits) host EFLAGS must hold before `insn`'s twin runs: those it reads,
/// and all of them for a shift by CL, which leaves them all alone if the count is 0.
fn twin_reads(insn: &Instruction) -> u32 {
    let read = x86_flags(insn.rflags_read());
    if flag_fix(insn) == Some(FlagFix::ClearAfIfCounted) { ARITH } else { read }
}

/// Calls the handler of instruction `i` with the guest state in `CpuState`; leaves the
/// block if the callout says so.
/// The budget (R9) goes to `Ctx` and comes back, since the handler may end chaining.
fn emit_callout(ops: &mut impl Emit, i: usize, exit: DynamicLabel) {
    x64!(ops
        ; mov QWORD [r14 + offset_of!(Ctx, budget) as i32], r9
        ; mov rdi, r14
        ; mov esi, i as i32
        ; call QWORD [r14 + offset_of!(Ctx, callout) as i32]
        ; test rax, rax
        ; jnz =>exit
        ; mov r9, QWORD [r14 + offset_of!(Ctx, budget) as i32]
    );
}

/// Guest registers: memory → host; and R13D = the guest's EFLAGS but the arithmetic
/// flags (only a callout changes those bits).
fn emit_load_registers(ops: &mut impl Emit) {
    for (i, &h) in HOME.iter().enumerate() {
        x64!(ops; mov Rd(h), DWORD [r15 + gpr_off(i)]);
    }
    x64!(ops
        ; mov r13d, DWORD [r15 + EFLAGS_OFF]
        ; and r13d, !ARITH as i32
    );
}

/// Jumps to `target` if condition `cc` holds on host EFLAGS (= the guest's flags).
fn emit_jcc(ops: &mut impl Emit, cc: ConditionCode, target: DynamicLabel) {
    match cc {
        ConditionCode::o => x64!(ops; jo =>target),
        ConditionCode::no => x64!(ops; jno =>target),
        ConditionCode::b => x64!(ops; jb =>target),
        ConditionCode::ae => x64!(ops; jae =>target),
        ConditionCode::e => x64!(ops; je =>target),
        ConditionCode::ne => x64!(ops; jne =>target),
        ConditionCode::be => x64!(ops; jbe =>target),
        ConditionCode::a => x64!(ops; ja =>target),
        ConditionCode::s => x64!(ops; js =>target),
        ConditionCode::ns => x64!(ops; jns =>target),
        ConditionCode::p => x64!(ops; jp =>target),
        ConditionCode::np => x64!(ops; jnp =>target),
        ConditionCode::l => x64!(ops; jl =>target),
        ConditionCode::ge => x64!(ops; jge =>target),
        ConditionCode::le => x64!(ops; jle =>target),
        ConditionCode::g => x64!(ops; jg =>target),
        ConditionCode::None => x64!(ops; jmp =>target),
    }
}

/// A block's translation: per guest instruction, the range of host code offsets
/// (relative to the start) that implements it, and where the body starts (past the
/// prologue: where chained blocks jump in).
pub(crate) struct Emitted {
    pub(crate) ranges: Vec<std::ops::Range<usize>>,
    pub(crate) body: usize,
}

/// Emits `block`.
///
/// Between blocks — at the body's entry and wherever a chain leaves — the guest registers
/// are in host registers and the guest flags in `CpuState` (chaining code is free to
/// clobber host EFLAGS). Inside the block the emitter tracks where both are (see
/// [`Emitter`]) and moves them only when an instruction needs them elsewhere.
pub(crate) fn emit_block(ops: &mut impl Emit, block: &Block<JitInsn>, next_link: &mut u32) -> Emitted {
    let base = ops.offset().0;
    let (exit, ret_end, ret_store, miss_store) =
        (ops.fresh_label(), ops.fresh_label(), ops.fresh_label(), ops.fresh_label());
    let mut e = Emitter {
        ops,
        block,
        regs_in_host: true,
        host_flags: 0,
        host_zero: 0,
        exit,
        ret_end,
        ret_store,
        miss_store,
        chainable: block.insns.iter().all(|d| d.exec.treatment != Treatment::Callout),
        next_link,
    };
    x64!(e.ops
        ; push rbp
        ; push rbx
        ; push r12
        ; push r13
        ; push r14
        ; push r15
        ; sub rsp, 8
        ; mov r15, rdi
        ; mov r14, rsi
        ; mov r9, QWORD [r14 + offset_of!(Ctx, budget) as i32]
    );
    e.load_registers();
    let body = e.ops.offset().0 - base;
    let mut ranges = Vec::with_capacity(block.insns.len());
    for (i, d) in block.insns.iter().enumerate() {
        let start = e.ops.offset().0 - base;
        match d.exec.treatment {
            Treatment::Ident => e.ident(d),
            Treatment::Rewritten if is_inline_branch(&d.insn) => e.branch(d),
            Treatment::Rewritten => e.rewritten(i, d),
            Treatment::Callout | Treatment::Helper => e.callout(i),
        }
        ranges.push(start..e.ops.offset().0 - base);
    }
    e.end();
    Emitted { ranges, body }
}

/// The state of one block's emission: where the guest registers and flags are at the
/// point being emitted.
struct Emitter<'a, E: Emit> {
    ops: &'a mut E,
    block: &'a Block<JitInsn>,
    /// Guest registers are in their host homes ([`HOME`]); else in `CpuState`.
    regs_in_host: bool,
    /// The guest arithmetic flags (x86 bits) that host EFLAGS hold; `CpuState.eflags`
    /// holds the others.
    host_flags: u32,
    /// Those of `host_flags` that are really 0, whatever host EFLAGS say: AF after a shift,
    /// which the SDM leaves undefined, the interpreter clears and AMD hosts set.
    host_zero: u32,
    /// Leave with the status in RAX (guest registers in `CpuState`).
    exit: DynamicLabel,
    /// Return 0 (guest registers in `CpuState`).
    ret_end: DynamicLabel,
    /// Store the guest registers, return 0.
    ret_store: DynamicLabel,
    /// Store the guest registers, return [`CHAIN_MISS`].
    miss_store: DynamicLabel,
    /// Whether the block's ends may chain. A block with a VMM callout never chains (the
    /// callout may change what the run loop must look at between blocks); one with
    /// helpers does unless, at run time, a helper reached a device or wrote code (the
    /// callout then zeroes the budget).
    chainable: bool,
    /// The next free chain site number.
    next_link: &'a mut u32,
}

impl<E: Emit> Emitter<'_, E> {
    /// Guest registers: memory → host; and R13D = the guest's EFLAGS but the arithmetic
    /// flags (only a callout changes those bits), for [`Emitter::spill_flags`].
    fn load_registers(&mut self) {
        emit_load_registers(self.ops);
        self.regs_in_host = true;
    }

    /// Guest registers: host → memory (the code only: the caller says where they are).
    fn emit_store_registers(&mut self) {
        for (i, &h) in HOME.iter().enumerate() {
            x64!(self.ops; mov DWORD [r15 + gpr_off(i)], Rd(h));
        }
    }

    fn registers_to_host(&mut self) {
        if !self.regs_in_host {
            self.load_registers();
        }
    }

    fn registers_to_memory(&mut self) {
        if self.regs_in_host {
            self.emit_store_registers();
            self.regs_in_host = false;
        }
    }

    /// The flags host EFLAGS hold → `CpuState` (`pushfq`, a merge and a store).
    fn spill_flags(&mut self) {
        let m = self.host_flags;
        if m == 0 {
            return;
        }
        let keep = m & !self.host_zero;
        self.host_flags = 0;
        self.host_zero = 0;
        if m == ARITH {
            x64!(self.ops
                ; pushfq
                ; pop r11
                ; and r11d, keep as i32
                ; or r11d, r13d
                ; mov DWORD [r15 + EFLAGS_OFF], r11d
            );
            return;
        }
        x64!(self.ops
            ; pushfq
            ; pop r11
            ; and r11d, keep as i32
            ; mov r10d, DWORD [r15 + EFLAGS_OFF]
            ; and r10d, !m as i32
            ; or r10d, r11d
            ; mov DWORD [r15 + EFLAGS_OFF], r10d
        );
    }

    /// Every guest arithmetic flag → host EFLAGS (a `popfq`, the slow part of it all).
    /// Clobbers R8 and R11, not R10 (a rewritten instruction's host address).
    fn emit_load_flags(&mut self) {
        // Host EFLAGS = host system bits | guest arithmetic flags (never guest TF/DF/IF).
        x64!(self.ops
            ; mov r8d, DWORD [r15 + EFLAGS_OFF]
            ; and r8d, ARITH as i32
            ; pushfq
            ; pop r11
            ; and r11, !(ARITH as i32)
            ; or r11, r8
            ; push r11
            ; popfq
        );
    }

    /// Makes sure host EFLAGS hold the flags `read` (x86 bits) that the next host
    /// instruction reads.
    fn flags_for(&mut self, read: u32) {
        if read & (!self.host_flags | self.host_zero) != 0 {
            self.spill_flags();
            self.emit_load_flags();
            self.host_flags = ARITH;
        }
    }

    fn ident(&mut self, d: &DecodedInsn<JitInsn>) {
        let bytes = host_twin(&d.insn).expect("classified ident, so it has a host twin");
        self.registers_to_host();
        self.flags_for(twin_reads(&d.insn));
        self.before_twin(&d.insn);
        self.ops.extend(bytes);
        self.after_twin(&d.insn);
    }

    /// What a fix-up needs from before the twin: the count of a shift by CL (in R11B: the
    /// shift may change ECX itself).
    fn before_twin(&mut self, insn: &Instruction) {
        if flag_fix(insn) == Some(FlagFix::ClearAfIfCounted) {
            x64!(self.ops; mov r11d, ecx);
        }
    }

    /// The flags after a host twin ran (and the fix-up it needs, see [`FlagFix`]).
    fn after_twin(&mut self, insn: &Instruction) {
        let modified = x86_flags(insn.rflags_modified());
        self.host_flags |= modified;
        self.host_zero &= !modified;
        match flag_fix(insn).unwrap_or(FlagFix::None) {
            FlagFix::None => {}
            FlagFix::ClearAf => self.host_zero |= AF,
            FlagFix::ClearAfIfCounted => {
                // The flags were all loaded for the twin ([`twin_reads`]).
                x64!(self.ops
                    ; pushfq
                    ; test r11b, 31
                    ; jz >unchanged
                    ; and QWORD [rsp], !(AF as i32)
                    ; unchanged:
                    ; popfq
                );
                self.host_flags = ARITH;
            }
            FlagFix::MulLow(low) => {
                // CF = OF = "the product did not fit" (host); SF, ZF, PF from the low half
                // and AF = 0 (the interpreter's choice): `test` gives exactly that when
                // CF = OF = 0, and needs them set again (rare, slow) when not.
                let test = test_self(low);
                x64!(self.ops; jo >overflow);
                self.ops.extend(test.iter().copied());
                x64!(self.ops
                    ; jmp >fixed
                    ; overflow:
                );
                self.ops.extend(test);
                x64!(self.ops
                    ; pushfq
                    ; or QWORD [rsp], (CF | OF) as i32
                    ; popfq
                    ; fixed:
                );
                self.host_flags = ARITH;
            }
        }
    }

    fn callout(&mut self, i: usize) {
        self.spill_flags();
        self.registers_to_memory();
        emit_callout(self.ops, i, self.exit);
    }

    /// A rewritten memory instruction: inline soft-TLB lookup, then the host twin on host
    /// memory; on a miss, the instruction's handler (which walks, faults or does MMIO).
    ///
    /// ```text
    ///   (flags in host EFLAGS → CpuState: the lookup clobbers them, and a fault shows them)
    ///   lea   r10d, [guest address]     ; the linear address (flat segments)
    ///   lea   r11d, [r10 + width-1]     ; last byte: a page-crossing access misses
    ///   and   r11d, ~0xfff
    ///   mov   r8d, r10d ; shr r8d, 8 ; and r8d, 255 << 4   ; entry = page % 256, 16 bytes each
    ///   cmp   r11d, [r15 + TLB + r8 + tag]  ; read or write tag of the entry
    ///   jne   slow
    ///   mov   r8d, [r15 + TLB + r8 + phys] ; and r10d, 0xfff ; add r10, r8 ; add r10, [r14 + ram]
    ///   (flags → host EFLAGS if the twin reads any)
    ///   <host twin with [r10]>
    ///   jmp   done
    /// slow:
    ///   store guest registers ; callout ; reload (and the flags, if the twin sets any)
    /// done:
    /// ```
    fn rewritten(&mut self, i: usize, d: &DecodedInsn<JitInsn>) {
        let m = memory_twin(&d.insn, self.block.eip).expect("classified rewritten, so it has a memory twin");
        let user = (self.block.key.mode >> 1) & 3 == 3;
        let tag = tlb_off(user)
            + if m.write { offset_of!(TlbEntry, write_tag) } else { offset_of!(TlbEntry, read_tag) } as i32;
        let phys = tlb_off(user) + offset_of!(TlbEntry, phys) as i32;
        let (read, modified) = (twin_reads(&d.insn), x86_flags(d.insn.rflags_modified()));
        self.registers_to_host();
        self.spill_flags();
        self.ops.extend(m.lea);
        x64!(self.ops
            ; lea r11d, [r10 + (m.width as i32 - 1)]
            ; and r11d, !0xfff
            ; mov r8d, r10d
            ; shr r8d, 8
            ; and r8d, ((TLB_ENTRIES - 1) << 4) as i32
            ; cmp r11d, DWORD [r15 + r8 + tag]
            ; jne >slow
            ; mov r8d, DWORD [r15 + r8 + phys]
            ; and r10d, 0xfff
            ; add r10, r8
            ; add r10, QWORD [r14 + offset_of!(Ctx, ram) as i32]
        );
        if read != 0 {
            self.emit_load_flags();
            self.host_flags = ARITH;
        }
        self.before_twin(&d.insn);
        self.ops.extend(m.twin);
        self.after_twin(&d.insn);
        let (after_flags, after_zero) = (self.host_flags, self.host_zero);
        x64!(self.ops
            ; jmp >done
            ; slow:
        );
        self.emit_store_registers();
        emit_callout(self.ops, i, self.exit);
        emit_load_registers(self.ops);
        if read | modified != 0 {
            self.emit_load_flags();
        }
        x64!(self.ops; done:);
        // Both paths: registers in host; host EFLAGS hold at least what the twin set
        // (all of them if it read any, since they were loaded for it). The slow path
        // loaded the interpreter's flags, which agree with any fix-up.
        (self.host_flags, self.host_zero) = (after_flags, after_zero);
    }

    /// Sets guest EIP to the block's runtime EIP plus `delta` (the block may run at
    /// another EIP than it was decoded at, through an alias). Clobbers host EFLAGS.
    fn set_eip(&mut self, delta: u32, code32: bool) {
        x64!(self.ops
            ; mov r10d, DWORD [r14 + offset_of!(Ctx, block_eip) as i32]
            ; add r10d, delta as i32
        );
        if !code32 {
            x64!(self.ops; and r10d, 0xffff);
        }
        x64!(self.ops; mov DWORD [r15 + EIP_OFF], r10d);
    }

    /// An inline JMP/Jcc, the block's last instruction: EIP set to the target or the next
    /// instruction, each path ending the block on its own.
    fn branch(&mut self, d: &DecodedInsn<JitInsn>) {
        let taken = self.ops.fresh_label();
        let fall = d.insn.next_ip32().wrapping_sub(self.block.eip);
        let target = d.insn.near_branch32().wrapping_sub(self.block.eip);
        self.registers_to_host();
        if d.insn.condition_code() != ConditionCode::None {
            self.flags_for(x86_flags(d.insn.rflags_read()));
            emit_jcc(self.ops, d.insn.condition_code(), taken);
            let at_branch = (self.host_flags, self.host_zero);
            self.spill_flags();
            self.set_eip(fall, true);
            self.block_end();
            (self.host_flags, self.host_zero) = at_branch;
        }
        x64!(self.ops; =>taken);
        self.spill_flags();
        self.set_eip(target, true);
        self.block_end();
    }

    /// The end of a block, with EIP set, the flags in `CpuState` and the registers in
    /// host registers: count its instructions, then either chain to the next block's
    /// translation — if the budget allows and a link was made — or return to the run loop.
    fn block_end(&mut self) {
        if !self.charge_budget() {
            return;
        }
        x64!(self.ops
            ; mov r11d, DWORD [r15 + EIP_OFF]
            ; mov DWORD [r14 + offset_of!(Ctx, block_eip) as i32], r11d
            ; mov r8, QWORD [r14 + offset_of!(Ctx, links) as i32]
        );
        let site = *self.next_link;
        *self.next_link += 1;
        let miss = self.ops.fresh_label();
        self.follow_link(site as i32 * std::mem::size_of::<ChainLink>() as i32, miss);
        x64!(self.ops
            ; =>miss
            ; mov QWORD [r14 + offset_of!(Ctx, chain_site) as i32], site as i32
            ; jmp =>self.miss_store
        );
    }

    /// Charges the block's instructions to the budget (R9); returns to the run loop if the
    /// block may not chain or the budget ran out. True if the code goes on to chain.
    fn charge_budget(&mut self) -> bool {
        let n = self.block.insns.len() as i32;
        if !self.chainable {
            x64!(self.ops
                ; sub r9, n
                ; jmp =>self.ret_store
            );
            return false;
        }
        x64!(self.ops
            ; sub r9, n
            ; jle =>self.ret_store
        );
        true
    }

    /// Follows the link at `[r8 + link]` if it was made under the current TLB
    /// generation: the callouts' block becomes its block, its run count goes up, and
    /// translated code jumps into it; else on to `miss`.
    fn follow_link(&mut self, link: i32, miss: DynamicLabel) {
        x64!(self.ops
            ; mov r10, QWORD [r15 + TLB_GENERATION_OFF]
            ; cmp r10, QWORD [r8 + link + offset_of!(ChainLink, tlb_generation) as i32]
            ; jne =>miss
            ; mov r11, QWORD [r8 + link + offset_of!(ChainLink, block) as i32]
            ; mov QWORD [r14 + offset_of!(Ctx, block) as i32], r11
            ; mov r11, QWORD [r8 + link + offset_of!(ChainLink, runs) as i32]
            ; inc QWORD [r11]
            ; jmp QWORD [r8 + link + offset_of!(ChainLink, code) as i32]
        );
    }

    /// The end of a block whose next EIP is only known at run time (RET): after the usual
    /// count and budget, look the target up in the indirect-target table and jump
    /// straight into its translation on a hit; on a miss return to the run loop, which
    /// fills the entry.
    ///
    /// ```text
    ///   r11d = EIP ; ctx.block_eip = EIP ; r8 = table + (EIP % entries) * 64
    ///   cmp r11d, [r8].eip ; cmp MODE, [r8].mode
    ///   follow [r8].link (as a chain site does)
    /// ```
    fn indirect_end(&mut self) {
        if !self.charge_budget() {
            return;
        }
        let mode = self.block.key.mode;
        let miss = self.ops.fresh_label();
        x64!(self.ops
            ; mov r11d, DWORD [r15 + EIP_OFF]
            ; mov DWORD [r14 + offset_of!(Ctx, block_eip) as i32], r11d
            ; mov r8d, r11d
            ; and r8d, (INDIRECT_ENTRIES - 1) as i32
            ; shl r8d, 6
            ; add r8, QWORD [r14 + offset_of!(Ctx, indirect) as i32]
            ; cmp r11d, DWORD [r8 + offset_of!(IndirectEntry, eip) as i32]
            ; jne =>miss
            ; cmp DWORD [r8 + offset_of!(IndirectEntry, mode) as i32], mode as i32
            ; jne =>miss
        );
        self.follow_link(offset_of!(IndirectEntry, link) as i32, miss);
        x64!(self.ops
            ; =>miss
            ; mov QWORD [r14 + offset_of!(Ctx, chain_site) as i32], -1 // INDIRECT_MISS
            ; jmp =>self.miss_store
        );
    }

    /// Everything after the last instruction: the block's own end unless a branch ended
    /// it, then the shared exits and the epilogue.
    fn end(&mut self) {
        let last = self.block.insns.last().expect("a block has an instruction");
        let n = self.block.insns.len();
        let rewritten = last.exec.treatment == Treatment::Rewritten;
        if rewritten && is_call_or_ret(&last.insn) {
            // CALL: on to the target; RET: EIP is what it popped. After a slow path the
            // handler has done the same.
            self.spill_flags();
            self.registers_to_host();
            if last.insn.mnemonic() == popek_cpu::iced_x86::Mnemonic::Call {
                self.set_eip(last.insn.near_branch32().wrapping_sub(self.block.eip), true);
                self.block_end();
            } else {
                self.indirect_end();
            }
        } else if !(rewritten && is_inline_branch(&last.insn)) {
            // The block ran off its end (page boundary, length cap) or ended in a callout:
            // back to the run loop.
            self.spill_flags();
            self.registers_to_memory();
            if last.exec.treatment == Treatment::Ident || rewritten {
                self.set_eip(self.block.len, self.block.key.mode & 1 != 0);
            }
            x64!(self.ops
                ; sub r9, n as i32
                ; jmp =>self.ret_end
            );
        }
        x64!(self.ops
            ; =>self.miss_store
        );
        self.emit_store_registers();
        x64!(self.ops
            ; mov QWORD [r14 + offset_of!(Ctx, budget) as i32], r9
            ; mov eax, CHAIN_MISS as i32
            ; jmp =>self.exit
            ; =>self.ret_store
        );
        self.emit_store_registers();
        x64!(self.ops
            ; =>self.ret_end
            ; mov QWORD [r14 + offset_of!(Ctx, budget) as i32], r9
            ; xor eax, eax
            ; =>self.exit
            ; add rsp, 8
            ; pop r15
            ; pop r14
            ; pop r13
            ; pop r12
            ; pop rbx
            ; pop rbp
            ; ret
        );
    }
}
