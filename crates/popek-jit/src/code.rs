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

use crate::translate::{Treatment, host_twin, is_call_or_ret, is_inline_branch, memory_twin};
use crate::{CHAIN_MISS, Ctx, INDIRECT_ENTRIES, IndirectEntry, JitError, JitInsn};
use dynasmrt::x64::{Assembler, X64Relocation};
use dynasmrt::{AssemblyOffset, DynamicLabel, DynasmApi, DynasmLabelApi, Executor, VecAssembler, dynasm};
use popek_cpu::CpuState;
use popek_cpu::block::Block;
use popek_cpu::iced_x86::{ConditionCode, RflagsBits};
use popek_cpu::mmu::{TLB_ENTRIES, TlbEntry};
use popek_cpu::state::flags::ARITH;
use std::mem::offset_of;

/// Where a translation lives: which generation of the cache, and where in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    generation: u32,
    offset: u32,
    /// Where chained blocks jump in, past the prologue.
    body: u32,
}

impl Entry {
    /// Code offset of the body (past the prologue).
    pub(crate) fn body(self) -> u32 {
        self.body
    }
}

/// Host register numbers holding guest EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI.
const HOME: [u8; 8] = [0, 1, 2, 3, 12, 5, 6, 7];

/// Most host code one guest instruction can take (a rewritten instruction: the inline
/// lookup, and a callout with a store and a reload around it).
const MAX_BYTES_PER_INSN: usize = 384;

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
}

impl CodeCache {
    pub(crate) fn new(capacity: usize) -> std::io::Result<Self> {
        let asm = Assembler::new_with_capacity(capacity)?;
        Ok(CodeCache { reader: asm.reader(), asm, capacity, generation: 0 })
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
        if self.asm.offset().0 + need > self.capacity {
            self.flush()?;
            flushed = true;
        }
        let start = self.asm.offset();
        let emitted = emit_block(&mut self.asm, block);
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
        Ok(())
    }

    /// Links the chain site at `site` to `to`: valid while the TLB generation is
    /// `tlb_generation`; the chained code sets the callouts' block to `block` and counts
    /// a run in `runs`.
    pub(crate) fn link(
        &mut self,
        site: usize,
        to: Entry,
        tlb_generation: u64,
        block: u64,
        runs: u64,
    ) -> Result<(), JitError> {
        let buffer_len = self.reader.lock().len();
        if site.checked_add(CHAIN_SITE_LEN).is_none_or(|end| end > buffer_len) {
            return Err(JitError::CodeBuffer(std::io::Error::other("no chain site there")));
        }
        let from_end = site + CHAIN_SITE_LEN;
        let rel = i32::try_from(to.body as i64 - from_end as i64)
            .map_err(|_| JitError::CodeBuffer(std::io::Error::other("chain out of range")))?;
        // Keep the source block's instruction count that the unlinked site holds.
        let n = self.reader.lock()[site + 53];
        let bytes = chain_site(tlb_generation, block, runs, n, rel);
        self.asm
            .alter(|m| {
                m.goto(AssemblyOffset(site));
                m.extend(bytes);
            })
            .map_err(|e| JitError::CodeBuffer(std::io::Error::other(e.to_string())))
    }

    /// Runs the translation at `e`.
    pub(crate) fn call(&self, e: Entry, state: *mut CpuState, ctx: &mut Ctx<'_>) -> u64 {
        let buffer = self.reader.lock();
        let ptr = buffer.ptr(AssemblyOffset(e.offset as usize));
        // SAFETY: `ptr` is the start of a function emitted by `emit_block` with the
        // sysv64 signature below, in the committed executable buffer, which stays mapped
        // while `buffer` (the read lock) lives. The function only touches the CpuState
        // and Ctx it is given (both valid and exclusively borrowed for the call) and
        // the host stack, and returns normally.
        unsafe {
            let f: extern "sysv64" fn(*mut CpuState, *mut Ctx<'_>) -> u64 = std::mem::transmute(ptr);
            f(state, ctx)
        }
    }
}

fn gpr_off(i: usize) -> i32 {
    (offset_of!(CpuState, gpr) + 4 * i) as i32
}

const EFLAGS_OFF: i32 = offset_of!(CpuState, eflags) as i32;

/// Guest registers and flags: memory → host.
fn load_guest(ops: &mut impl Emit) {
    load_guest_registers(ops);
    load_guest_flags(ops);
}

/// Guest registers: memory → host.
fn load_guest_registers(ops: &mut impl Emit) {
    for (i, &h) in HOME.iter().enumerate() {
        x64!(ops; mov Rd(h), DWORD [r15 + gpr_off(i)]);
    }
}

/// Guest arithmetic flags: memory → host EFLAGS (`popfq`, the slow part of a load).
fn load_guest_flags(ops: &mut impl Emit) {
    // Host EFLAGS = host system bits | guest arithmetic flags (never guest TF/DF/IF).
    x64!(ops
        ; mov r10d, DWORD [r15 + EFLAGS_OFF]
        ; and r10d, ARITH as i32
        ; pushfq
        ; pop r11
        ; and r11, !(ARITH as i32)
        ; or r11, r10
        ; push r11
        ; popfq
    );
}

/// Guest registers and flags: host → memory.
fn store_guest(ops: &mut impl Emit) {
    for (i, &h) in HOME.iter().enumerate() {
        x64!(ops; mov DWORD [r15 + gpr_off(i)], Rd(h));
    }
    x64!(ops
        ; pushfq
        ; pop r11
        ; and r11d, ARITH as i32
        ; mov r10d, DWORD [r15 + EFLAGS_OFF]
        ; and r10d, !(ARITH as i32)
        ; or r10d, r11d
        ; mov DWORD [r15 + EFLAGS_OFF], r10d
    );
}

/// The arithmetic flags in iced-x86's `RflagsBits` numbering.
const ICED_ARITH: u32 =
    RflagsBits::OF | RflagsBits::SF | RflagsBits::ZF | RflagsBits::AF | RflagsBits::CF | RflagsBits::PF;

/// For each instruction, whether any arithmetic flag is live just before it: read by
/// it, or live after it and not written by it. Everything is live at the block's end
/// and at a callout (the handler sees the flags in `CpuState`).
///
/// A `rewritten` instruction (other than a branch) counts as reading every flag: its slow
/// path may raise an exception, whose frame shows the flags — so they must be the guest's
/// even if no instruction reads them.
fn flags_live_before(block: &Block<JitInsn>) -> Vec<bool> {
    let mut live = ICED_ARITH;
    let mut out = vec![false; block.insns.len()];
    for (i, d) in block.insns.iter().enumerate().rev() {
        live = match d.exec.treatment {
            Treatment::Rewritten if !is_inline_branch(&d.insn) => ICED_ARITH,
            Treatment::Ident | Treatment::Rewritten => {
                (live & !d.insn.rflags_modified()) | (d.insn.rflags_read() & ICED_ARITH)
            }
            Treatment::Callout | Treatment::Helper => ICED_ARITH,
        };
        out[i] = live != 0;
    }
    out
}

/// Calls the handler of instruction `i` with the guest state in `CpuState`; leaves the
/// block if the callout says so.
fn emit_callout(ops: &mut impl Emit, i: usize, exit: DynamicLabel) {
    x64!(ops
        ; mov rdi, r14
        ; mov esi, i as i32
        ; call QWORD [r14 + offset_of!(Ctx, callout) as i32]
        ; test rax, rax
        ; jnz =>exit
    );
}

/// A rewritten memory instruction: inline soft-TLB lookup, then the host twin on host
/// memory; on a miss, the instruction's handler (which walks, faults or does MMIO).
///
/// ```text
///   pushfq                          ; the lookup clobbers flags: keep the guest's
///   lea   r10d, [guest address]     ; the linear address (flat segments)
///   lea   r11d, [r10 + width-1]     ; last byte: a page-crossing access misses
///   and   r11d, ~0xfff
///   mov   r8d, r10d ; shr r8d, 12 ; and r8d, 255 ; shl r8d, 4
///   cmp   r11d, [r13 + r8 + tag]    ; read or write tag of the entry
///   jne   slow
///   mov   r8d, [r13 + r8 + phys] ; and r10d, 0xfff ; add r10, r8 ; add r10, [r14 + ram]
///   popfq (or drop the saved flags if none is live)
///   <host twin with [r10]>
///   jmp   done
/// slow:
///   popfq ; store guest state ; callout ; reload
/// done:
/// ```
fn emit_rewritten(
    ops: &mut impl Emit,
    block_eip: u32,
    i: usize,
    d: &popek_cpu::block::DecodedInsn<JitInsn>,
    flags_live: bool,
    exit: DynamicLabel,
) {
    let m = memory_twin(&d.insn, block_eip).expect("classified rewritten, so it has a memory twin");
    let tag = if m.write { offset_of!(TlbEntry, write_tag) } else { offset_of!(TlbEntry, read_tag) } as i32;
    let phys = offset_of!(TlbEntry, phys) as i32;
    x64!(ops; pushfq);
    ops.extend(m.lea);
    x64!(ops
        ; lea r11d, [r10 + (m.width as i32 - 1)]
        ; and r11d, !0xfff
        ; mov r8d, r10d
        ; shr r8d, 12
        ; and r8d, (TLB_ENTRIES - 1) as i32
        ; shl r8d, 4
        ; cmp r11d, DWORD [r13 + r8 + tag]
        ; jne >slow
        ; mov r8d, DWORD [r13 + r8 + phys]
        ; and r10d, 0xfff
        ; add r10, r8
        ; add r10, QWORD [r14 + offset_of!(Ctx, ram) as i32]
    );
    if flags_live {
        x64!(ops; popfq);
    } else {
        x64!(ops; lea rsp, [rsp + 8]);
    }
    ops.extend(m.twin);
    x64!(ops
        ; jmp >done
        ; slow:
        ; popfq
    );
    store_guest(ops);
    emit_callout(ops, i, exit);
    load_guest(ops);
    x64!(ops; done:);
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

/// Sets guest EIP to the block's runtime EIP plus `delta` (the block may run at another
/// EIP than it was decoded at, through an alias).
fn emit_set_eip(ops: &mut impl Emit, delta: u32, code32: bool) {
    x64!(ops
        ; mov r10d, DWORD [r14 + offset_of!(Ctx, block_eip) as i32]
        ; add r10d, delta as i32
    );
    if !code32 {
        x64!(ops; and r10d, 0xffff);
    }
    x64!(ops; mov DWORD [r15 + offset_of!(CpuState, eip) as i32], r10d);
}

/// Bytes of a chain site (see [`chain_site`]).
pub(crate) const CHAIN_SITE_LEN: usize = 59;

/// The patchable part of a chained exit, entered with r10 = the current TLB generation:
///
/// ```text
///   +0  mov r11, GENERATION      ; the TLB generation the link was made under
///   +10 cmp r10, r11
///   +13 jne miss                 ; remapped since: back to the run loop
///   +19 mov r11, BLOCK           ; the next block's decoded block ...
///   +29 mov [r14 + block], r11   ; ... becomes the callouts' current block
///   +33 mov r11, RUNS
///   +43 inc qword [r11]          ; its execution count
///   +46 add qword [r15 + tsc], N ; the TSC reads "start of the current block", as
///                                ; the run loop sets it for the interpreter
///   +54 jmp BODY                 ; its translation, past the prologue
///   +59 miss: …
/// ```
///
/// Unlinked, GENERATION is `u64::MAX` (never current) and BLOCK, RUNS and the jump are 0.
pub(crate) fn chain_site(generation: u64, block: u64, runs: u64, n: u8, jump_rel: i32) -> [u8; CHAIN_SITE_LEN] {
    let mut b = [0u8; CHAIN_SITE_LEN];
    b[0..2].copy_from_slice(&[0x49, 0xbb]);
    b[2..10].copy_from_slice(&generation.to_le_bytes());
    b[10..13].copy_from_slice(&[0x4d, 0x39, 0xda]);
    b[13..15].copy_from_slice(&[0x0f, 0x85]);
    b[15..19].copy_from_slice(&((CHAIN_SITE_LEN - 19) as i32).to_le_bytes());
    b[19..21].copy_from_slice(&[0x49, 0xbb]);
    b[21..29].copy_from_slice(&block.to_le_bytes());
    b[29..33].copy_from_slice(&[0x4d, 0x89, 0x5e, offset_of!(Ctx, block) as u8]);
    b[33..35].copy_from_slice(&[0x49, 0xbb]);
    b[35..43].copy_from_slice(&runs.to_le_bytes());
    b[43..46].copy_from_slice(&[0x49, 0xff, 0x03]);
    b[46..49].copy_from_slice(&[0x49, 0x83, 0x87]);
    b[49..53].copy_from_slice(&(offset_of!(CpuState, tsc) as u32).to_le_bytes());
    b[53] = n;
    b[54] = 0xe9;
    b[55..59].copy_from_slice(&jump_rel.to_le_bytes());
    b
}

/// The end of a block (guest state already stored, EIP set): count its instructions,
/// then either chain to the next block's translation — if the budget allows and a link
/// was made — or return to the run loop.
fn emit_block_end(ops: &mut impl Emit, n: usize, chainable: bool, ret_end: DynamicLabel, exit: DynamicLabel) {
    x64!(ops; add QWORD [r14 + offset_of!(Ctx, retired) as i32], n as i32);
    if !chainable {
        x64!(ops; jmp =>ret_end);
        return;
    }
    x64!(ops
        ; sub QWORD [r14 + offset_of!(Ctx, budget) as i32], n as i32
        ; jle =>ret_end
        ; mov r11d, DWORD [r15 + offset_of!(CpuState, eip) as i32]
        ; mov DWORD [r14 + offset_of!(Ctx, block_eip) as i32], r11d
        ; mov r10, QWORD [r14 + offset_of!(Ctx, tlb_generation) as i32]
        ; mov r10, QWORD [r10]
    );
    let site = ops.offset().0;
    ops.extend(chain_site(u64::MAX, 0, 0, n as u8, 0));
    x64!(ops
        ; mov QWORD [r14 + offset_of!(Ctx, chain_site) as i32], site as i32
        ; mov eax, CHAIN_MISS as i32
        ; jmp =>exit
    );
}

/// The end of a block whose next EIP is only known at run time (RET): after the usual
/// count and budget, look the target up in the indirect-target table and jump straight
/// into its translation on a hit; on a miss return to the run loop, which fills the entry.
///
/// ```text
///   r10d = EIP ; r8 = table + (EIP % entries) * 64
///   cmp r10d, [r8].eip ; cmp MODE, [r8].mode ; cmp TLB generation, [r8].tlb_generation
///   ctx.block_eip = EIP ; ctx.block = [r8].block ; inc [[r8].runs] ; tsc += N
///   jmp [r8].code
/// ```
fn emit_indirect_end(
    ops: &mut impl Emit,
    n: usize,
    mode: u32,
    chainable: bool,
    ret_end: DynamicLabel,
    exit: DynamicLabel,
) {
    x64!(ops; add QWORD [r14 + offset_of!(Ctx, retired) as i32], n as i32);
    if !chainable {
        x64!(ops; jmp =>ret_end);
        return;
    }
    let miss = ops.fresh_label();
    x64!(ops
        ; sub QWORD [r14 + offset_of!(Ctx, budget) as i32], n as i32
        ; jle =>ret_end
        ; mov r10d, DWORD [r15 + offset_of!(CpuState, eip) as i32]
        ; mov r8d, r10d
        ; and r8d, (INDIRECT_ENTRIES - 1) as i32
        ; shl r8d, 6
        ; add r8, QWORD [r14 + offset_of!(Ctx, indirect) as i32]
        ; cmp r10d, DWORD [r8 + offset_of!(IndirectEntry, eip) as i32]
        ; jne =>miss
        ; cmp DWORD [r8 + offset_of!(IndirectEntry, mode) as i32], mode as i32
        ; jne =>miss
        ; mov r11, QWORD [r14 + offset_of!(Ctx, tlb_generation) as i32]
        ; mov r11, QWORD [r11]
        ; cmp r11, QWORD [r8 + offset_of!(IndirectEntry, tlb_generation) as i32]
        ; jne =>miss
        ; mov DWORD [r14 + offset_of!(Ctx, block_eip) as i32], r10d
        ; mov r11, QWORD [r8 + offset_of!(IndirectEntry, block) as i32]
        ; mov QWORD [r14 + offset_of!(Ctx, block) as i32], r11
        ; mov r11, QWORD [r8 + offset_of!(IndirectEntry, runs) as i32]
        ; inc QWORD [r11]
        ; add QWORD [r15 + offset_of!(CpuState, tsc) as i32], n as i32
        ; jmp QWORD [r8 + offset_of!(IndirectEntry, code) as i32]
        ; =>miss
        ; mov QWORD [r14 + offset_of!(Ctx, chain_site) as i32], -1 // INDIRECT_MISS
        ; mov eax, CHAIN_MISS as i32
        ; jmp =>exit
    );
}

/// An inline JMP/Jcc ending the block: the guest state is stored on both paths and EIP
/// set to the target or the next instruction; the caller returns to the run loop.
fn emit_branch(
    ops: &mut impl Emit,
    block: &Block<JitInsn>,
    d: &popek_cpu::block::DecodedInsn<JitInsn>,
    chainable: bool,
    ret_end: DynamicLabel,
    exit: DynamicLabel,
) {
    let taken = ops.fresh_label();
    let fall = d.insn.next_ip32().wrapping_sub(block.eip);
    let target = d.insn.near_branch32().wrapping_sub(block.eip);
    let n = block.insns.len();
    if d.insn.condition_code() != ConditionCode::None {
        emit_jcc(ops, d.insn.condition_code(), taken);
        store_guest(ops);
        emit_set_eip(ops, fall, true);
        emit_block_end(ops, n, chainable, ret_end, exit);
    }
    x64!(ops; =>taken);
    store_guest(ops);
    emit_set_eip(ops, target, true);
    emit_block_end(ops, n, chainable, ret_end, exit);
}

/// A block's translation: per guest instruction, the range of host code offsets
/// (relative to the start) that implements it, and where the body starts (past the
/// prologue: where chained blocks jump in).
pub(crate) struct Emitted {
    pub(crate) ranges: Vec<std::ops::Range<usize>>,
    pub(crate) body: usize,
}

/// Emits `block`.
pub(crate) fn emit_block(ops: &mut impl Emit, block: &Block<JitInsn>) -> Emitted {
    let base = ops.offset().0;
    let mut ranges = Vec::with_capacity(block.insns.len());
    let exit = ops.fresh_label();
    let ret_end = ops.fresh_label();
    // A block with a VMM callout never chains (the callout may change what the run loop
    // must look at between blocks); one with helpers chains unless, at run time, a helper
    // reached a device or wrote code (the callout then zeroes the budget).
    let chainable = block.insns.iter().all(|d| d.exec.treatment != Treatment::Callout);
    x64!(ops
        ; push rbp
        ; push rbx
        ; push r12
        ; push r13
        ; push r14
        ; push r15
        ; sub rsp, 8
        ; mov r15, rdi
        ; mov r14, rsi
        ; mov r13, QWORD [r14 + offset_of!(Ctx, tlb) as i32]
    );
    let body = ops.offset().0 - base;
    // Flags are live where an instruction may read them or a fault may expose them
    // (an exception frame holds EFLAGS) before an ident instruction overwrites them.
    let live = flags_live_before(block);
    let mut in_host = false;
    for (i, d) in block.insns.iter().enumerate() {
        let start = ops.offset().0 - base;
        match d.exec.treatment {
            Treatment::Ident | Treatment::Rewritten if !in_host => {
                // Flags that will be overwritten before anything can see them need no
                // (slow) load: e.g. a block that starts with CMP.
                load_guest_registers(ops);
                if live[i] {
                    load_guest_flags(ops);
                }
                in_host = true;
            }
            Treatment::Callout | Treatment::Helper if in_host => {
                store_guest(ops);
                in_host = false;
            }
            _ => {}
        }
        match d.exec.treatment {
            Treatment::Ident => {
                let bytes = host_twin(&d.insn).expect("classified ident, so it has a host twin");
                ops.extend(bytes);
            }
            Treatment::Rewritten if is_inline_branch(&d.insn) => {
                emit_branch(ops, block, d, chainable, ret_end, exit);
                in_host = false;
            }
            Treatment::Rewritten => emit_rewritten(ops, block.eip, i, d, live[i], exit),
            Treatment::Callout | Treatment::Helper => emit_callout(ops, i, exit),
        }
        ranges.push(start..ops.offset().0 - base);
    }
    let last = block.insns.last().filter(|d| d.exec.treatment == Treatment::Rewritten).map(|d| &d.insn);
    let ends_in_branch = last.is_some_and(is_inline_branch);
    if let Some(insn) = last.filter(|i| is_call_or_ret(i)) {
        // CALL: on to the target (chainable); RET: EIP is what it popped (back to the
        // run loop). After a slow path the handler has done the same.
        if in_host {
            store_guest(ops);
        }
        if insn.mnemonic() == popek_cpu::iced_x86::Mnemonic::Call {
            emit_set_eip(ops, insn.near_branch32().wrapping_sub(block.eip), true);
            emit_block_end(ops, block.insns.len(), chainable, ret_end, exit);
        } else {
            emit_indirect_end(ops, block.insns.len(), block.key.mode, chainable, ret_end, exit);
        }
    } else if !ends_in_branch {
        // The block ran off its end (page boundary, length cap) or ended in a callout.
        if in_host {
            store_guest(ops);
        }
        if block.insns.last().is_some_and(|d| matches!(d.exec.treatment, Treatment::Ident | Treatment::Rewritten)) {
            emit_set_eip(ops, block.len, block.key.mode & 1 != 0);
        }
        emit_block_end(ops, block.insns.len(), false, ret_end, exit);
    }
    x64!(ops
        ; =>ret_end
        ; xor eax, eax
        ; =>exit
        ; add rsp, 8
        ; pop r15
        ; pop r14
        ; pop r13
        ; pop r12
        ; pop rbx
        ; pop rbp
        ; ret
    );
    Emitted { ranges, body }
}
