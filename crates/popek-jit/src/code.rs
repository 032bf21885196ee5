//! The code cache: one buffer of host code holding every translated block, bounded.
//! Past the shared code it is a ring of regions filled in turn; when the next block does
//! not fit, the oldest region is evicted (its translations dropped) and reused.
//!
//! The buffer is one memory file mapped twice: a read-write view that the translator
//! writes blocks and chain patches into, and a read-execute view that runs them. No page
//! is ever writable and executable at once, and translating or linking a block costs no
//! system call (no `mprotect`). x86 keeps instruction fetch coherent with stores to the
//! same physical memory, through any virtual alias.
//!
//! A translated block is a function `extern "sysv64" fn(*mut Cpu, *mut Ctx) -> u64`:
//!
//! ```text
//!   prologue: save callee-saved regs; r15 = &Cpu; r14 = &Ctx; load guest regs
//!   body (where chained blocks jump in): for each instruction
//!     ident     → host twin (flags loaded into host EFLAGS first if it reads any held in memory)
//!     rewritten → inline soft-TLB lookup, host twin on host memory; slow path: callout
//!     callout   → store guest regs + flags, call callout(ctx, i, id), leave if it says so
//!   end: charge the budget; chain (a patched jmp, or a checked link) or return
//! ```

// CpuState offsets and instruction indices are small (checked by the block-length cap);
// dynasm's register macros convert their operand with `.into()` even when it is a u8.
#![allow(clippy::cast_possible_truncation, clippy::useless_conversion)]

use crate::shared::{Shared, shared};
use crate::translate::{
    FlagFix, GroupSlot, OfFix, Treatment, flag_fix, flags_dead_after, host_twin, is_call_or_ret, is_inline_branch,
    memory_twin, plan_page_groups, test_self, written_registers, x86_flags,
};
use crate::{Ctx, INDIRECT_BITS, INDIRECT_HASH, IndirectEntry, JitError, JitInsn};
use dynasmrt::x64::X64Relocation;
use dynasmrt::{DynamicLabel, DynasmLabelApi, VecAssembler, dynasm};
use popek_cpu::Cpu;
use popek_cpu::block::{Block, BlockKey, DecodedInsn, FastMap};
use popek_cpu::iced_x86::{Code, ConditionCode, FlowControl, Instruction, Mnemonic, Register};
use popek_cpu::mmu::{TLB_ENTRIES, Tlb, TlbEntry};
use popek_cpu::state::flags::{AF, ARITH, CF, OF, PF, SF, ZF};
use std::mem::offset_of;
use std::rc::Rc;

/// Where a translation lives, and what it was made for. Held with its block (and so
/// kept after the translation goes): valid only while [`CodeCache::is_current`] says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Which translation ever made under `id` this is (each gets a new stamp).
    stamp: u64,
    /// Where the translation starts: where the shared prologue and chained blocks jump in.
    body: u32,
    /// The EIP the translation runs at (its EIP values are constants).
    pub(crate) eip: u32,
    /// Its number in the cache's translation list (`Translation`), reused once it goes.
    pub(crate) id: u32,
}

impl Entry {
    /// The number of its first chain site.
    pub(crate) fn first_site(&self) -> u32 {
        self.id * SITES_PER_TRANSLATION
    }
}

/// Host register numbers holding guest EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI.
const HOME: [u8; 8] = [0, 1, 2, 3, 12, 5, 6, 7];

/// Where a host twin left its result (for the fix-ups that read it).
#[derive(Clone, Copy)]
enum ResultAt {
    /// In the guest register's host home (as the guest names it: ESP is R12D there).
    Register(Register),
    /// At `[r10]`, this many bytes wide.
    Memory(u32),
}

/// The second operand of a CMP whose flags are kept lazy ([`Emitter::lazy_cmp`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LazyOperand {
    /// A host register (a guest register's home).
    Register(u8),
    /// A constant.
    Constant(u32),
}

/// The operands of a 32-bit CMP of registers or of a register and a constant, as host
/// registers; `test reg, reg` counts as `cmp reg, 0` (the same six flags: SF, ZF, PF of
/// `reg`, CF = OF = AF = 0), and so does a 32-bit AND, OR or XOR into a register, whose
/// flags are those of its result (AF, which the SDM leaves undefined, popek's table
/// clears).
fn lazy_operands(insn: &Instruction) -> Option<(u8, LazyOperand)> {
    use popek_cpu::iced_x86::OpKind;
    let reg = |i: u32| (insn.op_kind(i) == OpKind::Register).then(|| host_number(insn.op_register(i)));
    let register_only = (0..insn.op_count()).all(|i| insn.op_kind(i) != OpKind::Memory);
    match insn.code() {
        Code::And_rm32_r32
        | Code::And_r32_rm32
        | Code::And_rm32_imm32
        | Code::And_rm32_imm8
        | Code::And_EAX_imm32
        | Code::Or_rm32_r32
        | Code::Or_r32_rm32
        | Code::Or_rm32_imm32
        | Code::Or_rm32_imm8
        | Code::Or_EAX_imm32
        | Code::Xor_rm32_r32
        | Code::Xor_r32_rm32
        | Code::Xor_rm32_imm32
        | Code::Xor_rm32_imm8
        | Code::Xor_EAX_imm32
            if register_only =>
        {
            Some((reg(0)?, LazyOperand::Constant(0)))
        }
        Code::Cmp_rm32_r32 | Code::Cmp_r32_rm32 => Some((reg(0)?, LazyOperand::Register(reg(1)?))),
        Code::Cmp_rm32_imm32 | Code::Cmp_rm32_imm8 | Code::Cmp_EAX_imm32 => {
            Some((reg(0)?, LazyOperand::Constant(insn.immediate(1) as u32)))
        }
        Code::Test_rm32_r32 if insn.op0_kind() == OpKind::Register && insn.op0_register() == insn.op1_register() => {
            Some((reg(0)?, LazyOperand::Constant(0)))
        }
        _ => None,
    }
}

/// How to set host EFLAGS again to the flags the last flag-setting instruction left, from
/// host registers that still hold its operands or its result ([`Emitter::flag_source`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlagSource {
    /// `cmp a, b` (and `test r, r`, as `cmp r, 0`): run it again.
    Cmp(u8, LazyOperand),
    /// `add r, imm`, `r` holding the sum: `lea r11d, [r - imm] ; add r11d, imm`.
    AddImm(u8, u32),
    /// `sub r, imm`, `r` holding the difference: `lea r11d, [r + imm] ; sub r11d, imm`.
    SubImm(u8, u32),
}

impl FlagSource {
    /// The host registers it reads.
    fn registers(self) -> [Option<u8>; 2] {
        match self {
            FlagSource::Cmp(a, LazyOperand::Register(b)) => [Some(a), Some(b)],
            FlagSource::Cmp(a, LazyOperand::Constant(_)) | FlagSource::AddImm(a, _) | FlagSource::SubImm(a, _) => {
                [Some(a), None]
            }
        }
    }

    /// The instruction's flags (all six, as the guest's) into host EFLAGS; clobbers R11.
    fn emit(self, ops: &mut impl Emit) {
        match self {
            FlagSource::Cmp(a, LazyOperand::Register(b)) => x64!(ops; cmp Rd(a), Rd(b)),
            FlagSource::Cmp(a, LazyOperand::Constant(c)) => x64!(ops; cmp Rd(a), c as i32),
            FlagSource::AddImm(r, imm) => x64!(ops
                ; lea r11d, [Rd(r) - imm as i32]
                ; add r11d, imm as i32
            ),
            FlagSource::SubImm(r, imm) => x64!(ops
                ; lea r11d, [Rd(r) + imm as i32]
                ; sub r11d, imm as i32
            ),
        }
    }
}

/// The [`FlagSource`] of a register-only instruction that sets all six flags, if it has one.
fn flag_source(insn: &Instruction) -> Option<FlagSource> {
    use popek_cpu::iced_x86::OpKind;
    if let Some((a, b)) = lazy_operands(insn) {
        return Some(FlagSource::Cmp(a, b));
    }
    let reg = (insn.op0_kind() == OpKind::Register).then(|| host_number(insn.op0_register()))?;
    let imm = || insn.immediate(1) as u32;
    match insn.code() {
        Code::Add_rm32_imm32 | Code::Add_rm32_imm8 | Code::Add_EAX_imm32 => Some(FlagSource::AddImm(reg, imm())),
        Code::Sub_rm32_imm32 | Code::Sub_rm32_imm8 | Code::Sub_EAX_imm32 => Some(FlagSource::SubImm(reg, imm())),
        _ => None,
    }
}

/// The host register number of guest register `r`'s home (any width; not AH..DH).
fn host_number(r: Register) -> u8 {
    HOME[r.full_register32().number()]
}

// The inline lookup scales the TLB index by 32 (it shifts the page number by 7, not 12).
const _: () = assert!(std::mem::size_of::<TlbEntry>() == 32);

/// Anything the emitter can write x86-64 into (a dynasmrt assembler over a byte vector).
pub(crate) trait Emit: DynasmLabelApi<Relocation = X64Relocation> + Extend<u8> {
    /// A new dynamic label.
    fn fresh_label(&mut self) -> DynamicLabel;
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
pub(crate) use x64;

/// Emits `opcode` with the memory operand `[base + disp]` (`base` R14 or R15) and
/// register field `reg` (REX.W if `wide`), its displacement in one byte where it fits:
/// dynasm gives every displacement it cannot see at compile time four.
fn emit_mem(ops: &mut impl Emit, wide: bool, opcode: u8, reg: u8, base: u8, disp: i32) {
    debug_assert!(base & 7 != 4 && base & 7 != 5, "no SIB byte or RBP-style base here");
    let rex = 0x40 | u8::from(wide) << 3 | (reg >> 3) << 2 | base >> 3;
    match i8::try_from(disp) {
        Ok(d) => ops.extend([rex, opcode, 0x40 | (reg & 7) << 3 | (base & 7), d as u8]),
        Err(_) => {
            ops.extend([rex, opcode, 0x80 | (reg & 7) << 3 | (base & 7)]);
            ops.extend(disp.to_le_bytes());
        }
    }
}

/// `mov r32, [r15 + disp]`.
fn load32(ops: &mut impl Emit, reg: u8, disp: i32) {
    emit_mem(ops, false, 0x8b, reg, 15, disp);
}

/// `mov [r15 + disp], r32`.
fn store32(ops: &mut impl Emit, reg: u8, disp: i32) {
    emit_mem(ops, false, 0x89, reg, 15, disp);
}

/// `mov dword [r15 + disp], imm`.
fn store32_imm(ops: &mut impl Emit, disp: i32, imm: u32) {
    emit_mem(ops, false, 0xc7, 0, 15, disp);
    ops.extend(imm.to_le_bytes());
}

/// Opcodes of `call rel32` and `jmp rel32`.
const CALL: u8 = 0xe8;
const JMP: u8 = 0xe9;

/// The code buffer: one memory file, mapped writable (never executable) and executable
/// (never writable).
struct CodeBuffer {
    rw: memmap2::MmapMut,
    rx: memmap2::Mmap,
}

impl CodeBuffer {
    fn new(len: usize) -> std::io::Result<Self> {
        use std::os::fd::FromRawFd;
        let name = c"popek-jit";
        // SAFETY: `name` is a NUL-terminated string; memfd_create only reads it and
        // returns a new descriptor or -1. MFD_EXEC asks for an executable file where the
        // kernel knows the flag (vm.memfd_noexec); older kernels reject it: retry without.
        let mut fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_EXEC) };
        if fd < 0 {
            // SAFETY: as above.
            fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        }
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        file.set_len(len as u64)?;
        // SAFETY: the memory file is this process's alone (no other process or handle can
        // resize or map it), it is `len` bytes long, and both maps stay alive together in
        // this struct; Rust code only writes through `rw`, translated code only runs
        // from `rx`.
        let (rw, rx) = unsafe {
            (
                memmap2::MmapOptions::new().len(len).map_mut(&file)?,
                memmap2::MmapOptions::new().len(len).map_exec(&file)?,
            )
        };
        Ok(CodeBuffer { rw, rx })
    }
}

/// One translation: its block, kept alive while the translation may run (callouts find
/// their instruction through it).
pub(crate) struct Translation {
    pub(crate) block: Rc<Block<JitInsn>>,
    /// The EIP it runs at.
    pub(crate) eip: u32,
    /// Code offset of its body (where chains jump in).
    body: u32,
    /// Bytes of host code.
    pub(crate) len: u32,
    /// Told apart from every other translation ever made under the same id (see `Entry`).
    stamp: u64,
    /// The chain sites linked to it (unlinked when it is invalidated or evicted). A site
    /// is here exactly while its `Site::target` names this translation.
    incoming: Vec<u32>,
    /// Its own chain sites, numbers `SITES_PER_TRANSLATION * id` on.
    sites: Vec<Site>,
}

/// A chain site of a live translation.
#[derive(Clone, Copy, Debug)]
struct Site {
    /// For a site patched in place: the code offset of its `jmp rel32`'s displacement,
    /// and that displacement while unlinked (to its miss stub), to put back when the
    /// translation it leads to goes. `None` for a site that goes through `links`.
    patched: Option<(u32, u32)>,
    /// The translation it is linked to (id, stamp), if any.
    target: Option<(u32, u64)>,
}

/// Most chain sites one translation has: a conditional branch's two ways out (every other
/// block end has one, or none).
const SITES_PER_TRANSLATION: u32 = 2;

/// How many regions the code buffer (past the shared code) is split into. The cache
/// evicts one region at a time, oldest first, when the next translation does not fit:
/// the cost of eviction is one region's translations (not all of them, as a flush
/// would), and all but 1/16 of the cache — the code translated last, the likeliest to
/// run again — stays. More regions would evict less at a time but keep more per-region
/// lists for the same bytes; with 16 even the smallest cache (64 KiB) has regions of
/// some 3.5 KiB, a dozen blocks each.
const REGIONS: usize = 16;

/// Counts of what eviction dropped since the cache was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Evictions {
    /// Regions whose translations were evicted (regions that held none not counted).
    pub(crate) regions: u64,
    /// Translations evicted.
    pub(crate) translations: u64,
}

pub(crate) struct CodeCache {
    buf: CodeBuffer,
    capacity: usize,
    /// Where the regions start: the shared code is before it, never evicted.
    base: usize,
    /// Bytes of each region (the last one takes the remainder too).
    region_len: usize,
    /// Where the next translation goes.
    used: usize,
    /// The end of the regions claimed in this pass over the buffer (emptied for new
    /// translations): everything from `used` up to here is free.
    claimed_end: usize,
    /// The translations placed in each region (by where they start), with their stamps:
    /// an entry whose translation went earlier (written code) no longer matches.
    regions: Vec<Vec<(u32, u64)>>,
    /// Stamp of the next translation (never reused, not even after a flush).
    next_stamp: u64,
    /// Ids of evicted translations, to reuse. Ids (and with them chain-site numbers) are
    /// written into translated code; reusing them keeps the tables bounded.
    free_ids: Vec<u32>,
    /// Most translations alive at once (the link table has room for their chain sites).
    max_ids: u32,
    /// Where each chain site that checks its link leads: plain data, all zero (unlinked)
    /// until a site is linked (so the table only takes memory where sites were used).
    links: Box<[ChainLink]>,
    /// The translations made from each block, by the block's key (a block may run at
    /// several EIPs, each with its own translation).
    by_key: FastMap<BlockKey, Vec<u32>>,
    /// How many live translations hold bytes of each physical page: a store to a code
    /// page none of them is on cannot reach translated code (see `callout`).
    pub(crate) translated_pages: FastMap<u32, u32>,
    /// The live translations, by id (`None`: a free id).
    pub(crate) translations: Vec<Option<Translation>>,
    /// With profiling on: how many times each translation ran, by id (moved to the
    /// blocks when a translation goes).
    pub(crate) counters: Vec<u64>,
    /// Whether blocks count their runs (`popek explain`).
    pub(crate) profile: bool,
    /// Whether translations flip the undefined flags after each host twin (tests).
    pub(crate) flip_undefined: bool,
    /// The guest memory's plain span ([`popek_memory::GuestMemory::plain_span`]) the
    /// translations were made for (`None` before the first run): their loads read it
    /// directly while paging is off ([`Emitter::tlb_lookup`]).
    pub(crate) plain_ram: Option<(u32, u32)>,
    /// What eviction dropped so far.
    pub(crate) evictions: Evictions,
}

/// Where a chain site that checks its link (or an entry of the indirect-target table)
/// leads, read by translated code (`#[repr(C)]`, 16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChainLink {
    /// The TLB generation the link was made under; 0 while unlinked (the TLB generation
    /// is never 0, see [`Tlb::generation`], so an unlinked link never passes the check).
    tlb_generation: u64,
    /// Host address of the next translation's body.
    code: u64,
}

impl ChainLink {
    /// All zero: a table of them can come from zeroed memory, which the host maps lazily.
    pub(crate) const UNLINKED: ChainLink = ChainLink { tlb_generation: 0, code: 0 };

    /// True if the link leads to one of the translation bodies at `bodies` (sorted).
    pub(crate) fn leads_into(&self, bodies: &[u64]) -> bool {
        self.tlb_generation != 0 && bodies.binary_search(&self.code).is_ok()
    }
}

const _: () = assert!(std::mem::size_of::<ChainLink>() == 16);

/// A table of `n` `T`s from zeroed memory: the allocator takes a table this large
/// straight from the host (`calloc` → `mmap`), whose pages are only backed once written,
/// so a large table costs no memory up front (the chain-link table, the indirect-target
/// table).
///
/// # Safety
///
/// All-zero bytes must be a valid `T`.
pub(crate) unsafe fn zeroed_table<T>(n: usize) -> Box<[T]> {
    // SAFETY: the caller promises that all-zero bytes are a valid `T`, so every element of
    // the zeroed slice is initialized.
    unsafe { Box::<[T]>::new_zeroed_slice(n).assume_init() }
}

/// The physical pages a block's bytes are on (one, or two if it straddles).
fn pages_of(block: &Block<JitInsn>) -> impl Iterator<Item = u32> {
    let [first, second] = block.pages;
    std::iter::once(first).chain((second != first).then_some(second))
}

impl CodeCache {
    pub(crate) fn new(capacity: usize) -> std::io::Result<Self> {
        let (code, shared) = shared();
        if capacity < shared.len + 4096 {
            return Err(std::io::Error::other("code cache too small"));
        }
        // A translation takes a few hundred bytes: one id per 128 bytes is more than the
        // cache can hold at once but for the tiniest blocks (which then evict early).
        let max_ids =
            u32::try_from((capacity / 128).max(32)).map_err(|_| std::io::Error::other("code cache too large"))?;
        // SAFETY: all-zero bytes are a valid `ChainLink` (two integers: `UNLINKED`).
        let links = unsafe { zeroed_table((max_ids * SITES_PER_TRANSLATION) as usize) };
        let mut buf = CodeBuffer::new(capacity)?;
        buf.rw[..code.len()].copy_from_slice(code);
        let base = shared.len.next_multiple_of(16);
        Ok(CodeCache {
            buf,
            capacity,
            base,
            region_len: ((capacity - base) / REGIONS) & !15,
            used: base,
            claimed_end: base,
            regions: vec![Vec::new(); REGIONS],
            next_stamp: 1,
            free_ids: Vec::new(),
            max_ids,
            links,
            by_key: FastMap::default(),
            translated_pages: FastMap::default(),
            translations: Vec::new(),
            counters: Vec::new(),
            profile: false,
            flip_undefined: false,
            plain_ram: None,
            evictions: Evictions::default(),
        })
    }

    /// The chain-link table, for translated code.
    pub(crate) fn links(&self) -> *const ChainLink {
        self.links.as_ptr()
    }

    /// True if the translation `e` names is still in the cache (not evicted, invalidated
    /// or flushed): its id is live and was not reused since (same stamp).
    pub(crate) fn is_current(&self, e: Entry) -> bool {
        self.stamp_of(e.id) == Some(e.stamp)
    }

    /// The stamp of live translation `id`.
    pub(crate) fn stamp_of(&self, id: u32) -> Option<u64> {
        self.translations.get(id as usize).and_then(Option::as_ref).map(|t| t.stamp)
    }

    /// The live translation `id`.
    pub(crate) fn translation(&self, id: u32) -> &Translation {
        self.translations[id as usize].as_ref().expect("a live translation")
    }

    /// The region code offset `offset` is in.
    fn region_of(&self, offset: usize) -> usize {
        ((offset - self.base) / self.region_len).min(REGIONS - 1)
    }

    /// Where region `r` ends.
    fn region_end(&self, r: usize) -> usize {
        if r == REGIONS - 1 { self.capacity } else { self.base + (r + 1) * self.region_len }
    }

    /// Claims the next region of this pass for new translations: evicts every
    /// translation placed in it.
    fn claim_next(&mut self, dead: &mut Vec<u64>) {
        let r = self.region_of(self.claimed_end);
        let mut evicted = 0;
        for (id, stamp) in std::mem::take(&mut self.regions[r]) {
            if self.stamp_of(id) == Some(stamp) {
                self.evict(id, dead);
                evicted += 1;
            }
        }
        if evicted > 0 {
            self.evictions.regions += 1;
            self.evictions.translations += evicted;
        }
        self.claimed_end = self.region_end(r);
    }

    /// Leaves the rest of the current region: the next translation goes at the start of
    /// the next one (the first, after the last), claimed.
    fn advance(&mut self, dead: &mut Vec<u64>) {
        if self.claimed_end >= self.capacity {
            self.claimed_end = self.base;
        }
        self.used = self.claimed_end;
        self.claim_next(dead);
    }

    /// A free translation id, evicting regions (oldest first) until one is.
    fn alloc_id(&mut self, dead: &mut Vec<u64>) -> Result<u32, JitError> {
        // Each pass over all the regions evicts everything: twice is plenty.
        for _ in 0..=2 * REGIONS {
            if let Some(id) = self.free_ids.pop() {
                return Ok(id);
            }
            if (self.translations.len() as u32) < self.max_ids {
                self.translations.push(None);
                self.counters.push(0);
                return Ok(self.translations.len() as u32 - 1);
            }
            self.advance(dead);
        }
        Err(JitError::CodeBuffer(std::io::Error::other("no free translation id")))
    }

    /// Emits `block` to run at `eip` as translation `id`, placed at code offset `at`.
    fn emit(&self, block: &Block<JitInsn>, eip: u32, id: u32, at: usize) -> Result<(Vec<u8>, Emitted), JitError> {
        // Assembled at its offset in the buffer: calls and jumps into the shared code are
        // relative to it.
        let mut ops = VecAssembler::<X64Relocation>::new(0);
        let first_site = id * SITES_PER_TRANSLATION;
        let layout = Layout {
            eip,
            id,
            profile: self.profile,
            flip: self.flip_undefined,
            plain_ram: self.plain_ram.unwrap_or_default(),
            first_site,
            at,
        };
        let emitted = emit_block(&mut ops, block, &layout);
        let code = ops.finalize().map_err(|e| JitError::CodeBuffer(std::io::Error::other(format!("{e:?}"))))?;
        Ok((code, emitted))
    }

    /// Translates `block` to run at `eip`. Where the current region has no room left for
    /// it, the oldest region is evicted first (the translations it held are dropped, as
    /// if their code had been written; the host addresses of their bodies are appended
    /// to `dead`, for the indirect-target table).
    pub(crate) fn translate(
        &mut self,
        block: &Rc<Block<JitInsn>>,
        eip: u32,
        dead: &mut Vec<u64>,
    ) -> Result<Entry, JitError> {
        let too_large = || JitError::CodeBuffer(std::io::Error::other("code cache too small for the block"));
        let id = self.alloc_id(dead)?;
        let placed = self.emit(block, eip, id, self.used).and_then(|(code, emitted)| {
            if emitted.sites.len() > SITES_PER_TRANSLATION as usize || code.len() > self.capacity - self.base {
                return Err(too_large());
            }
            if self.used + code.len() <= self.capacity {
                return Ok((code, emitted));
            }
            // Past the end of the buffer: on from the first region, where the code
            // lands elsewhere (its calls into the shared code change).
            self.claimed_end = self.base;
            self.used = self.base;
            self.emit(block, eip, id, self.used)
        });
        let (code, emitted) = match placed {
            Ok(p) => p,
            Err(e) => {
                self.free_ids.push(id);
                return Err(e);
            }
        };
        let start = self.used;
        while self.claimed_end < start + code.len() {
            self.claim_next(dead);
        }
        self.buf.rw[start..start + code.len()].copy_from_slice(&code);
        self.used = (start + code.len()).next_multiple_of(32);
        let offset = start as u32;
        let sites = emitted
            .sites
            .iter()
            .map(|site| Site {
                patched: site.map(|at| {
                    let at = offset + at as u32;
                    (at, u32::from_le_bytes(self.buf.rw[at as usize..at as usize + 4].try_into().expect("4 bytes")))
                }),
                target: None,
            })
            .collect();
        let body = offset + emitted.body as u32;
        let len = code.len() as u32;
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.translations[id as usize] =
            Some(Translation { block: block.clone(), eip, body, len, stamp, incoming: Vec::new(), sites });
        self.counters[id as usize] = 0;
        let r = self.region_of(start);
        self.regions[r].push((id, stamp));
        self.by_key.entry(block.key).or_default().push(id);
        for page in pages_of(block) {
            *self.translated_pages.entry(page).or_default() += 1;
        }
        Ok(Entry { stamp, body, eip, id })
    }

    /// Host address of code offset `offset` in the executable view.
    fn address(&self, offset: u32) -> u64 {
        self.buf.rx.as_ptr() as u64 + offset as u64
    }

    /// Drops translation `id`: every chain site leading into it is unlinked, its own
    /// chain sites are forgotten (dropped from their targets, their links emptied: its
    /// bytes may be reused), its profile count moves to its block, and its id is free.
    /// Appends the host address of its body to `dead`; returns how many chain sites were
    /// unlinked.
    fn evict(&mut self, id: u32, dead: &mut Vec<u64>) -> u64 {
        let Some(t) = self.translations[id as usize].take() else {
            return 0;
        };
        for (k, s) in t.sites.iter().enumerate() {
            let site = id * SITES_PER_TRANSLATION + k as u32;
            self.forget_target(site, s.target);
            self.links[site as usize] = ChainLink::UNLINKED;
        }
        let unlinked = t.incoming.len() as u64;
        for &site in &t.incoming {
            self.unlink(site);
        }
        for page in pages_of(&t.block) {
            if let Some(n) = self.translated_pages.get_mut(&page) {
                *n -= 1;
                if *n == 0 {
                    self.translated_pages.remove(&page);
                }
            }
        }
        if let Some(ids) = self.by_key.get_mut(&t.block.key) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_key.remove(&t.block.key);
            }
        }
        let runs = &t.block.insns[0].exec.runs;
        runs.set(runs.get() + std::mem::take(&mut self.counters[id as usize]));
        self.free_ids.push(id);
        dead.push(self.address(t.body));
        unlinked
    }

    /// Drops chain site `site` from the incoming list of `target`, if that is still live.
    fn forget_target(&mut self, site: u32, target: Option<(u32, u64)>) {
        if let Some((to, stamp)) = target
            && let Some(t) = self.translations[to as usize].as_mut().filter(|t| t.stamp == stamp)
        {
            t.incoming.retain(|&s| s != site);
        }
    }

    /// Drops every translation (and with them every chain). Profile counts move to the
    /// blocks first.
    pub(crate) fn flush(&mut self) {
        let mut dead = Vec::new();
        for id in 0..self.translations.len() as u32 {
            self.evict(id, &mut dead);
        }
        self.used = self.base;
        self.claimed_end = self.base;
        self.regions.iter_mut().for_each(Vec::clear);
    }

    /// Invalidates every translation of the block keyed `key` (its code was written):
    /// drops them as eviction does, so that nothing reaches them again. Appends the host
    /// addresses of their bodies to `dead` (for the indirect-target table) and returns how
    /// many chain sites were unlinked. Their code stays in the buffer, unreachable, until
    /// its region is reused.
    pub(crate) fn invalidate(&mut self, key: BlockKey, dead: &mut Vec<u64>) -> u64 {
        let mut unlinked = 0;
        for id in self.by_key.get(&key).cloned().unwrap_or_default() {
            unlinked += self.evict(id, dead);
        }
        unlinked
    }

    /// Puts chain site `site` (of a live translation) back to its unlinked state.
    fn unlink(&mut self, site: u32) {
        let (id, k) = (site / SITES_PER_TRANSLATION, (site % SITES_PER_TRANSLATION) as usize);
        let Some(s) = self.translations[id as usize].as_mut().and_then(|t| t.sites.get_mut(k)) else {
            return;
        };
        s.target = None;
        match s.patched {
            Some((at, rel)) => self.buf.rw[at as usize..at as usize + 4].copy_from_slice(&rel.to_le_bytes()),
            None => self.links[site as usize] = ChainLink::UNLINKED,
        }
    }

    /// A checked link to `to`, valid while the TLB generation is `tlb_generation`.
    pub(crate) fn link_to(&self, to: Entry, tlb_generation: u64) -> ChainLink {
        ChainLink { tlb_generation, code: self.address(to.body) }
    }

    /// Makes chain site `site` of translation `from` lead to `to`: patches its jump, or
    /// fills its link. Nothing happens if either is no longer live (`from` may have been
    /// evicted since the site missed, and its bytes reused).
    pub(crate) fn link(&mut self, from: (u32, u64), site: usize, to: Entry, tlb_generation: u64) {
        let site = site as u32;
        if site / SITES_PER_TRANSLATION != from.0 || self.stamp_of(from.0) != Some(from.1) || !self.is_current(to) {
            return;
        }
        let k = (site % SITES_PER_TRANSLATION) as usize;
        let Some(old) = self.translations[from.0 as usize].as_ref().and_then(|t| t.sites.get(k)).map(|s| s.target)
        else {
            return;
        };
        self.forget_target(site, old);
        let s = &mut self.translations[from.0 as usize].as_mut().expect("live").sites[k];
        s.target = Some((to.id, to.stamp));
        match s.patched {
            Some((at, _)) => {
                // rel32 counts from the end of the 5-byte `jmp`, which ends at `at + 4`.
                let rel = to.body.wrapping_sub(at + 4);
                self.buf.rw[at as usize..at as usize + 4].copy_from_slice(&rel.to_le_bytes());
            }
            None => self.links[site as usize] = self.link_to(to, tlb_generation),
        }
        self.translations[to.id as usize].as_mut().expect("live").incoming.push(site);
    }

    /// How many times the translation `id` ran since it was made (profiling).
    pub(crate) fn runs(&self, id: u32) -> u64 {
        self.counters.get(id as usize).copied().unwrap_or(0)
    }

    /// Runs the translation at `e`, through the shared prologue.
    pub(crate) fn call(&self, e: Entry, cpu: *mut Cpu, ctx: &mut Ctx<'_>) -> u64 {
        debug_assert!(self.is_current(e), "only a live translation runs");
        let enter = self.address(shared().1.enter as u32) as *const u8;
        // SAFETY: `enter` is the shared prologue (`shared::emit_shared`), copied whole
        // into the executable view (which lives as long as `self`) when the cache was
        // made, with the sysv64 signature below; it jumps to `body`, the body of a live
        // translation emitted by `emit_block` into the same view, and every jump the
        // translations and the shared code may take leads into live code: a translation
        // that goes (evicted, invalidated, flushed) first has every chain site and
        // indirect-target entry leading into it unlinked, and its own sites forgotten,
        // before its bytes are reused. That code only touches the Cpu and Ctx it is given
        // (both valid and exclusively borrowed for the call), the memory `Ctx` points at,
        // and the host stack, and returns normally through the shared epilogue.
        unsafe {
            let f: extern "sysv64" fn(*mut Cpu, *mut Ctx<'_>, u64) -> u64 = std::mem::transmute(enter);
            f(cpu, ctx, self.address(e.body))
        }
    }
}

/// What a block's emission needs to know beyond the block.
pub(crate) struct Layout {
    /// The EIP the translation runs at.
    pub(crate) eip: u32,
    /// Its translation id (callouts and the run loop find the block by it).
    pub(crate) id: u32,
    /// Count runs (`Ctx::counters`).
    pub(crate) profile: bool,
    /// Flip every undefined flag right after each host twin (a test switch: see
    /// `Jit::set_flip_undefined`).
    pub(crate) flip: bool,
    /// [`CodeCache::plain_ram`].
    pub(crate) plain_ram: (u32, u32),
    /// The number of its first chain site.
    pub(crate) first_site: u32,
    /// The buffer offset it is placed at (calls and jumps into the shared code are
    /// relative to it).
    pub(crate) at: usize,
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

/// The flags (x86 bits) host EFLAGS must hold before `insn`'s twin runs: those it reads,
/// and all of them for a shift or rotate by CL, which leaves them alone if the count is 0.
///
/// PUSHFD's twin reads none from host EFLAGS: it takes the guest's EFLAGS from `CpuState`,
/// where they were spilled before the access (and its `and` leaves host EFLAGS scratch).
fn twin_reads(insn: &Instruction, fix: FlagFix) -> u32 {
    if insn.mnemonic() == Mnemonic::Pushfd {
        0
    } else if matches!(fix, FlagFix::Counted(_)) {
        ARITH
    } else {
        x86_flags(insn.rflags_read())
    }
}

/// Guest registers: memory → host; `Ctx::eflags_rest` = the guest's EFLAGS but the
/// arithmetic flags (only a callout changes those bits); R13 = the host address of the
/// plain span of guest RAM (`Ctx::plain_base`), with the store map below RAM.
pub(crate) fn emit_load_registers(ops: &mut impl Emit) {
    for (i, &h) in HOME.iter().enumerate() {
        load32(ops, h, gpr_off(i));
    }
    load32(ops, 13, EFLAGS_OFF);
    x64!(ops
        ; and r13d, !ARITH as i32
        ; mov DWORD [r14 + offset_of!(Ctx, eflags_rest) as i32], r13d
        ; mov r13, QWORD [r14 + offset_of!(Ctx, plain_base) as i32]
    );
}

/// Guest registers: host → memory.
pub(crate) fn emit_store_registers(ops: &mut impl Emit) {
    for (i, &h) in HOME.iter().enumerate() {
        store32(ops, h, gpr_off(i));
    }
}

/// True if `insn` writes the register `a` or `b` of a pending CMP ([`Emitter::pending`]).
fn writes_operand(insn: &Instruction, a: u8, b: LazyOperand) -> bool {
    written_registers(insn).iter().any(|&r| {
        let h = host_number(r);
        h == a || b == LazyOperand::Register(h)
    })
}

/// The flags of `cmp a, b` as lazy flags ([`Ctx`]'s `lazy`): its operands into the context,
/// two plain stores, the second a 64-bit one that sets `lazy_b` and `lazy` (`LAZY_CMP`, 0)
/// at once: a guest register's host home is zero-extended. (A constant of 2^31 or more,
/// which a 32-bit immediate would sign-extend, goes through R11.)
fn emit_store_lazy_cmp(ops: &mut impl Emit, a: u8, b: LazyOperand) {
    const _: () = assert!(crate::LAZY_CMP == 0);
    x64!(ops; mov DWORD [r14 + offset_of!(Ctx, lazy_a) as i32], Rd(a));
    match b {
        LazyOperand::Register(r) => x64!(ops; mov QWORD [r14 + offset_of!(Ctx, lazy_b) as i32], Rq(r)),
        LazyOperand::Constant(c) => match i32::try_from(c) {
            Ok(c) => x64!(ops; mov QWORD [r14 + offset_of!(Ctx, lazy_b) as i32], c),
            Err(_) => x64!(ops
                ; mov r11d, c as i32
                ; mov QWORD [r14 + offset_of!(Ctx, lazy_b) as i32], r11
            ),
        },
    }
}

/// Every guest arithmetic flag → host EFLAGS, without `popfq` (many times slower):
/// OF by an `add` that overflows exactly when it is set, the others by `sahf`.
/// Clobbers R11 only (R10 may hold a rewritten instruction's host address).
///
/// ```text
///   mov r11d, eax ; mov eax, [eflags]  ; AL = SF ZF - AF - PF - CF, AH bit 3 = OF
///   shl ah, 4 ; add ah, 80h            ; OF
///   mov ah, al ; sahf                  ; SF ZF AF PF CF
///   mov eax, r11d
/// ```
pub(crate) fn emit_load_flags(ops: &mut impl Emit) {
    x64!(ops; mov r11d, eax);
    load32(ops, 0, EFLAGS_OFF);
    x64!(ops
        ; shl ah, 4
        ; add ah, 0x80u8 as i8
        ; mov ah, al
        ; sahf
        ; mov eax, r11d
    );
}

/// Host EFLAGS' arithmetic flags → R10D, in EFLAGS order, without `pushfq`: `lahf` and
/// `seto` read them (`of_sf_cf`: OF is SF XOR CF instead, [`OfFix::SfXorCf`]), with EAX
/// saved in R11 meanwhile, and two byte operations put OF at bit 11, above the rest.
///
/// ```text
///   mov r11d, eax ; lahf ; seto al    ; AH = SF ZF - AF - PF - CF, AL = OF
///   shl al, 3 ; rol ax, 8             ; AX = OF << 11 | AH
///   movzx r10d, ax ; mov eax, r11d
/// ```
fn emit_read_host_flags(ops: &mut impl Emit, of_sf_cf: bool) {
    x64!(ops
        ; mov r11d, eax
        ; lahf
    );
    if of_sf_cf {
        // OF = SF XOR CF: AH bit 7 XOR AH bit 0.
        x64!(ops
            ; mov al, ah
            ; rol al, 1
            ; xor al, ah
            ; and al, 1
        );
    } else {
        x64!(ops; seto al);
    }
    x64!(ops
        ; shl al, 3
        ; rol ax, 8
        ; movzx r10d, ax
        ; mov eax, r11d
    );
}

/// Host EFLAGS' arithmetic flags → the 16-bit context field at `at` (from R14), as `lahf`
/// and `seto` give them (AH, and OF in AL), those of `zero` cleared (really 0, whatever
/// the host set): five plain instructions, where `pushfq` is microcoded on some hosts and
/// the spill takes ten. For a slow path to store (`saved_flags`), or lazy flags
/// (`LAZY_RAW` in `lazy_a`).
///
/// ```text
///   mov r11d, eax ; lahf ; seto al ; (and ah, ~zero ; mov al, 0) ; mov [at], ax ; mov eax, r11d
/// ```
fn emit_save_flags(ops: &mut impl Emit, at: i32, zero: u32) {
    x64!(ops
        ; mov r11d, eax
        ; lahf
        ; seto al
    );
    if zero & !OF != 0 {
        x64!(ops; and ah, !(zero & !OF) as u8 as i8);
    }
    if zero & OF != 0 {
        x64!(ops; mov al, 0);
    }
    x64!(ops
        ; mov WORD [r14 + at], ax
        ; mov eax, r11d
    );
}

/// The arithmetic flags `held` in R10D (in EFLAGS order; those of `zero` are really 0)
/// → `CpuState`, with its other bits: `Ctx::eflags_rest` for a whole set, else the memory's. `lazy`:
/// the context may hold lazy flags, which this store replaces. Clobbers R10 and R11.
///
/// ```text
///   and r10d, held & ~zero ; or r10d, [eflags_rest] (or the others from CpuState) ; mov [eflags], r10d
/// ```
fn emit_store_flags(ops: &mut impl Emit, held: u32, zero: u32, lazy: bool) {
    x64!(ops; and r10d, (held & !zero) as i32);
    if held == ARITH {
        x64!(ops; or r10d, DWORD [r14 + offset_of!(Ctx, eflags_rest) as i32]);
    } else {
        load32(ops, 11, EFLAGS_OFF);
        x64!(ops
            ; and r11d, !held as i32
            ; or r10d, r11d
        );
    }
    store32(ops, 10, EFLAGS_OFF);
    if lazy {
        x64!(ops; mov DWORD [r14 + offset_of!(Ctx, lazy) as i32], crate::LAZY_NONE as i32);
    }
}

/// `n` bytes of NOPs (the recommended multi-byte forms, at most 9 bytes each).
fn emit_nops(ops: &mut impl Emit, mut n: usize) {
    const NOPS: [&[u8]; 9] = [
        &[0x90],
        &[0x66, 0x90],
        &[0x0f, 0x1f, 0x00],
        &[0x0f, 0x1f, 0x40, 0x00],
        &[0x0f, 0x1f, 0x44, 0x00, 0x00],
        &[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
        &[0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
        &[0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
    ];
    while n > 0 {
        let k = n.min(NOPS.len());
        ops.extend(NOPS[k - 1].iter().copied());
        n -= k;
    }
}

/// `lea dst, [base + displ]` (`code`: its 32- or 64-bit form), encoded.
fn lea_of(code: Code, dst: Register, base: Register, displ: i32) -> Vec<u8> {
    let span = popek_cpu::iced_x86::MemoryOperand::with_base_displ(base, i64::from(displ));
    let lea = Instruction::with2(code, dst, span).expect("lea reg, [reg + disp]");
    let mut enc = popek_cpu::iced_x86::Encoder::new(64);
    enc.encode(&lea, 0).expect("lea reg, [reg + disp] encodes");
    enc.take_buffer()
}

/// The condition that holds just when `cc` does not.
fn negated(cc: ConditionCode) -> ConditionCode {
    use ConditionCode::*;
    match cc {
        o => no,
        no => o,
        b => ae,
        ae => b,
        e => ne,
        ne => e,
        be => a,
        a => be,
        s => ns,
        ns => s,
        p => np,
        np => p,
        l => ge,
        ge => l,
        le => g,
        g => le,
        None => None,
    }
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
/// (relative to the start) that implements it; where the body starts (past the
/// prologue: where chained blocks jump in); and its chain sites in order, each with the
/// offset of its patchable `jmp rel32` displacement, or `None` for a site that checks
/// its link.
pub(crate) struct Emitted {
    pub(crate) ranges: Vec<std::ops::Range<usize>>,
    pub(crate) body: usize,
    pub(crate) sites: Vec<Option<usize>>,
}

/// Emits `block` to run at `layout.eip`.
///
/// Between blocks — at the body's entry and wherever a chain leaves — the guest registers
/// are in host registers and the guest flags in `CpuState` (chaining code is free to
/// clobber host EFLAGS). Inside the block the emitter tracks where both are (see
/// [`Emitter`]) and moves them only when an instruction needs them elsewhere.
pub(crate) fn emit_block(ops: &mut impl Emit, block: &Block<JitInsn>, layout: &Layout) -> Emitted {
    let base = ops.offset().0;
    let body = ops.fresh_label();
    let mut e = Emitter {
        ops,
        block,
        eip: layout.eip,
        id: layout.id,
        regs_in_host: true,
        host_flags: 0,
        host_zero: 0,
        of_sf_cf: false,
        flip: layout.flip,
        plain_ram: layout.plain_ram,
        current: 0,
        shared: &shared().1,
        at: layout.at,
        chainable: !crate::has_vmm_callout(block),
        next_site: layout.first_site,
        sites: Vec::new(),
        stubs: Vec::new(),
        slow_paths: Vec::new(),
        group_misses: Vec::new(),
        groups: plan_page_groups(block),
        lazy_cmp: None,
        lazy_maybe: true,
        flag_source: None,
        base,
        body,
        profile: layout.profile,
        pending: None,
        joins: Joins::default(),
        lazy_loads: Vec::new(),
        saved: None,
        copying: false,
    };
    // Entered through the shared prologue (`shared::Shared::enter`) or by a chain.
    x64!(e.ops; =>body);
    let body = e.ops.offset().0 - base;
    if layout.profile {
        x64!(e.ops
            ; mov r11, QWORD [r14 + offset_of!(Ctx, counters) as i32]
            ; inc QWORD [r11 + 8 * layout.id as i32]
        );
    }
    let mut ranges = Vec::with_capacity(block.insns.len());
    for (i, d) in block.insns.iter().enumerate() {
        let label = e.ops.fresh_label();
        x64!(e.ops; =>label);
        let state = e.state();
        e.joins.start.push((label, state));
        e.joins.loaded.push(None);
        let start = e.ops.offset().0 - base;
        e.current = i;
        // Saved flags live until an instruction that reads or writes the flags (the one
        // that sets them again) or that is not a plain access or register-only.
        if e.saved.is_some() && !e.leaves_flags_alone(i) {
            e.saved = None;
        }
        match d.exec.treatment {
            Treatment::Ident => e.ident(d),
            Treatment::Rewritten if is_inline_branch(&d.insn) => e.branch(d),
            Treatment::Rewritten if d.insn.code() == Code::Rdtsc => e.rdtsc(i),
            Treatment::Rewritten if crate::translate::plain_movs_width(&d.insn).is_some() => e.movs(i, d),
            Treatment::Rewritten if crate::translate::indirect_branch_address(&d.insn).is_some() => {
                e.indirect_branch(i, d)
            }
            Treatment::Rewritten => match e.groups[i] {
                Some(slot) => e.grouped(i, d, slot),
                None => e.rewritten(i, d),
            },
            Treatment::Callout => match crate::translate::segment_load_info(&d.insn) {
                Some(what) => e.fast_callout(i, what, FastPath::SegmentLoad),
                None => match crate::translate::port_in_info(&d.insn).filter(|_| !d.exec.loud) {
                    Some(what) => e.fast_callout(i, what, FastPath::PortIn),
                    None => e.callout(i),
                },
            },
            Treatment::Helper => e.callout(i),
        }
        ranges.push(start..e.ops.offset().0 - base);
    }
    e.end();
    Emitted { ranges, body, sites: e.sites }
}

/// The mode an [`Emitter::indirect_lookup`] compares the entry's with.
#[derive(Clone, Copy, Debug)]
enum LookupMode {
    /// The block's own (after RET or an indirect JMP/CALL).
    Constant(u32),
    /// The one in R10D (after INT or IRET: the callout's `go_on_mode`).
    R10,
}

/// Which fast path an [`Emitter::fast_callout`] tries.
#[derive(Clone, Copy, Debug)]
enum FastPath {
    SegmentLoad,
    PortIn,
}

/// A page group's check that missed: a slow path that runs the group's instructions, up to
/// `last`, in their handlers (its `index` a [`crate::RANGE`]), then goes on at its `back`
/// (after `last`'s code).
struct GroupMiss {
    last: usize,
    path: SlowPath,
}

/// The out-of-line slow path of a rewritten instruction (`index`): its handler.
struct SlowPath {
    label: DynamicLabel,
    back: DynamicLabel,
    index: usize,
    load_flags: bool,
    /// The guest's flags are not in `CpuState` but saved in the context before the lookup
    /// (or to be set again): the slow path stores them first (none if not needed).
    pushed: Option<PushedFlags>,
    /// A soft-TLB check that a refill may make hit: the access's `Ctx::refill_what`, and
    /// where the check starts, to make it again after a refill (`crate::refill`).
    refill: Option<(u32, DynamicLabel)>,
    /// Flags of a CMP not yet stored ([`Emitter::pending`]): the slow path stores them as
    /// lazy flags first.
    pending: Option<(u8, LazyOperand)>,
    /// For a check that worked the address out in 64 bits (in R11, then shifted), code
    /// that puts it in R10D in 32 bits and in R11 in 64: the refill opens the page R10D
    /// names, or none (R10D = all ones) if the two differ (the address wrapped, and the
    /// check can never hit).
    address: Option<(Vec<u8>, Vec<u8>)>,
}

/// Flags saved (or to be set again, or not needed at all) before a soft-TLB lookup
/// instead of spilled ([`SlowPath::pushed`], [`Emitter::flags_before_check`]): which
/// arithmetic flags host EFLAGS held (`CpuState` holds the others), which of those are
/// really 0 ([`Emitter::host_zero`]), and whether the context may hold lazy flags (which
/// the store then replaces).
#[derive(Clone, Copy, Debug)]
struct PushedFlags {
    held: u32,
    zero: u32,
    lazy: bool,
    /// Nothing was saved: the slow path sets the flags again from their source.
    recompute: Option<FlagSource>,
    /// Nothing was saved, and the slow path stores nothing: its access cannot fault
    /// ([`crate::translate::access_cannot_fault`]), so nobody sees these flags.
    unneeded: bool,
}

impl SlowPath {
    /// A slow path that only runs instruction `index`'s handler (no refill, no flags to
    /// load after it, none pending).
    fn handler(label: DynamicLabel, back: DynamicLabel, index: usize, pushed: Option<PushedFlags>) -> Self {
        SlowPath { label, back, index, load_flags: false, pushed, refill: None, pending: None, address: None }
    }
}

/// Out-of-line code at a block end that leaves for the run loop: set EIP, then either
/// return (the budget ran out) or report the chain site that has no link yet (the
/// shared `chain_exit` tells which).
struct Stub {
    label: DynamicLabel,
    eip: u32,
    site: u32,
    /// The guest's flags are those of `cmp a, b` on these registers (or this constant),
    /// not yet stored: the stub stores them as lazy flags first ([`Emitter::loop_back`]).
    pending: Option<(u8, LazyOperand)>,
}

/// Where an [`Emitter`] has the guest's registers and flags: two points of a block's code
/// with the same state may be joined by a jump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FlagState {
    regs_in_host: bool,
    host_flags: u32,
    host_zero: u32,
    of_sf_cf: bool,
    lazy_cmp: Option<(u8, LazyOperand)>,
    lazy_maybe: bool,
    flag_source: Option<FlagSource>,
}

impl FlagState {
    /// A block's entry: registers in host registers, flags in `CpuState` or lazy.
    const ENTRY: FlagState = FlagState {
        regs_in_host: true,
        host_flags: 0,
        host_zero: 0,
        of_sf_cf: false,
        lazy_cmp: None,
        lazy_maybe: true,
        flag_source: None,
    };
}

/// Points of a block's body that a loop onto the block may jump into
/// ([`Emitter::loop_back`]), recorded as the body is emitted.
#[derive(Default)]
struct Joins {
    /// Each instruction's start, and the state there.
    start: Vec<(DynamicLabel, FlagState)>,
    /// For each instruction, the point right after it loaded the guest's flags into host
    /// EFLAGS, if it did, and the state there.
    loaded: Vec<Option<(DynamicLabel, FlagState)>>,
}

/// How the copy of a loop's first instructions ends ([`Emitter::loop_back`]): the
/// instruction it stops at, and how it joins the body there.
#[derive(Clone, Copy, Debug)]
enum PeelEnd {
    /// The instruction does not see the loop's flags: on at its start.
    Dead(usize),
    /// The instruction loads them first: `cmp a, b`, on after the load.
    Loaded(usize),
    /// Anything else: store the flags as lazy ones, on at its start.
    Stored(usize),
}

/// The state of one block's emission: where the guest registers and flags are at the
/// point being emitted.
struct Emitter<'a, E: Emit> {
    ops: &'a mut E,
    block: &'a Block<JitInsn>,
    /// The EIP the translation runs at.
    eip: u32,
    /// Its translation id.
    id: u32,
    /// Guest registers are in their host homes ([`HOME`]); else in `CpuState`.
    regs_in_host: bool,
    /// The guest arithmetic flags (x86 bits) that host EFLAGS hold; `CpuState.eflags`
    /// holds the others.
    host_flags: u32,
    /// Those of `host_flags` that are really 0, whatever host EFLAGS say: AF after a shift,
    /// which the SDM leaves undefined, the interpreter clears and AMD hosts set.
    host_zero: u32,
    /// Host OF is not the guest's: the guest's is SF XOR CF of host EFLAGS
    /// ([`OfFix::SfXorCf`], after SHL by a constant), worked out when the flags leave.
    of_sf_cf: bool,
    /// Flip the undefined flags after each twin ([`Layout::flip`]).
    flip: bool,
    /// [`Layout::plain_ram`].
    plain_ram: (u32, u32),
    /// Index in the block of the instruction being emitted.
    current: usize,
    /// Where the shared code is (called and jumped to as `extern` addresses: the block is
    /// assembled at its own offset in the buffer).
    shared: &'static Shared,
    /// The buffer offset the block is placed at ([`Layout::at`]).
    at: usize,
    /// Whether the block's ends may chain. A block with a VMM callout never chains (the
    /// callout may change what the run loop must look at between blocks); one with
    /// helpers does unless, at run time, a helper reached a device or wrote code (the
    /// callout then zeroes the budget).
    chainable: bool,
    /// The next free chain site number.
    next_site: u32,
    /// The block's chain sites so far (see [`Emitted::sites`]).
    sites: Vec<Option<usize>>,
    /// Exits to emit after the body.
    stubs: Vec<Stub>,
    /// Slow paths to emit after the body.
    slow_paths: Vec<SlowPath>,
    /// The miss paths of page-group checks, to emit after the body ([`Emitter::grouped`]).
    group_misses: Vec<GroupMiss>,
    /// The block's page groups ([`plan_page_groups`]).
    groups: Vec<Option<GroupSlot>>,
    /// The flags host EFLAGS hold came from the instruction just emitted, a CMP of two
    /// registers or of a register and a constant (or a TEST of a register with itself,
    /// which sets the flags CMP reg, 0 does): a spill may store its operands instead
    /// ([`Emitter::spill_flags`]).
    lazy_cmp: Option<(u8, LazyOperand)>,
    /// The context may hold lazy flags ([`Ctx`]'s `lazy`), as at a block's entry: the
    /// guest's arithmetic flags are then the CMP's, not those in `CpuState`.
    lazy_maybe: bool,
    /// Host EFLAGS hold the flags an earlier register-only instruction set, and the
    /// registers it read still hold what it needs to set them again: a slow path can
    /// recompute them instead of their being saved before every memory access.
    flag_source: Option<FlagSource>,
    /// Offset of the block's first byte in `ops`.
    base: usize,
    /// The body's start, where a loop onto the block itself jumps back to.
    body: DynamicLabel,
    /// Whether the block counts its runs ([`Layout::profile`]).
    profile: bool,
    /// The guest's flags are those of `cmp a, b` (registers, or a register and a constant)
    /// and neither host EFLAGS nor the context hold them: a loop's way back into its own
    /// block ([`Emitter::loop_back`]). A slow path stores them first.
    pending: Option<(u8, LazyOperand)>,
    /// Points of the body a loop may jump back into.
    joins: Joins,
    /// The guest's flags, saved in the context before an access's check
    /// ([`Emitter::flags_before_check`]), that only the slow paths of this and the next
    /// plain accesses can see until they are set again
    /// ([`Emitter::seen_by_slow_paths_only`]): each of those slow paths stores them.
    saved: Option<PushedFlags>,
    /// Emitting a copy of the block ([`Emitter::whole_copy`]): nothing is recorded in
    /// `joins`.
    copying: bool,
    /// Lazy flags loads whose other cases are still to emit out of line
    /// ([`Emitter::lazy_load_rest`]).
    lazy_loads: Vec<(DynamicLabel, DynamicLabel)>,
}

impl<E: Emit> Emitter<'_, E> {
    /// Guest registers: memory → host, with `Ctx::eflags_rest` and R13 (see
    /// [`emit_load_registers`]): a call to the shared `load_regs`.
    fn registers_to_host(&mut self) {
        if !self.regs_in_host {
            self.branch_to_shared(CALL, self.shared.load_regs);
            self.regs_in_host = true;
        }
    }

    /// Where the registers and flags are now.
    fn state(&self) -> FlagState {
        FlagState {
            regs_in_host: self.regs_in_host,
            host_flags: self.host_flags,
            host_zero: self.host_zero,
            of_sf_cf: self.of_sf_cf,
            lazy_cmp: self.lazy_cmp,
            lazy_maybe: self.lazy_maybe,
            flag_source: self.flag_source,
        }
    }

    fn set_state(&mut self, f: FlagState) {
        self.regs_in_host = f.regs_in_host;
        self.host_flags = f.host_flags;
        self.host_zero = f.host_zero;
        self.of_sf_cf = f.of_sf_cf;
        self.lazy_cmp = f.lazy_cmp;
        self.lazy_maybe = f.lazy_maybe;
        self.flag_source = f.flag_source;
    }

    /// The way a loop onto its own block goes back, after a CMP `a, b` whose flags the
    /// loop's branch read (the block's last instruction), without storing them: through a
    /// whole copy of the block ([`Emitter::whole_copy`]) where it holds only register-only
    /// instructions and plain accesses. Otherwise, where the block's first instructions
    /// leave the flags alone, the way back runs its own copy of those instructions, with
    /// the flags still only `cmp a, b`
    /// ([`Emitter::pending`]: their slow paths store them first), and joins the body at the
    /// first instruction that sees them: one that sets them all before reading any (the
    /// body from its start), or one that loads them (`cmp a, b` in host EFLAGS, and on
    /// right after the body's load). So a loop's round stores no flags, and loads none
    /// from memory.
    ///
    /// ```text
    ///   sub r9, n ; jle exit (which stores the flags first)
    ///   <copies of the first instructions>   ; register-only, or one access each
    ///   (cmp a, b) ; jmp <into the body>
    /// ```
    ///
    /// Returns false, with nothing emitted, where there is no such way: then the flags are
    /// stored and the loop goes back to the body's start.
    fn loop_back(&mut self, a: u8, b: LazyOperand, out: DynamicLabel) -> bool {
        // `None`: a whole copy; else where the copy of the first instructions ends.
        let end = match self.whole_copy_fits() {
            true => None,
            false => match self.peel_end(a, b) {
                Some(end) => Some(end),
                None => return false,
            },
        };
        let miss = self.ops.fresh_label();
        // A chainable block (`whole_copy_fits`, `peel_end`): `sub r9, n ; jle miss`.
        let chained = self.charge_budget(miss);
        debug_assert!(chained, "only a chainable block loops back");
        self.unlinked_exit(miss, Some((a, b)));
        let top = self.ops.fresh_label();
        x64!(self.ops; =>top);
        if self.profile {
            x64!(self.ops
                ; mov r11, QWORD [r14 + offset_of!(Ctx, counters) as i32]
                ; inc QWORD [r11 + 8 * self.id as i32]
            );
        }
        let Some(end) = end else {
            self.whole_copy(a, b, top, miss, out);
            return true;
        };
        let last = self.current;
        self.set_state(FlagState::ENTRY);
        self.pending = Some((a, b));
        let first = match end {
            PeelEnd::Dead(k) | PeelEnd::Loaded(k) | PeelEnd::Stored(k) => k,
        };
        for i in 0..first {
            self.current = i;
            let d = &self.block.insns[i];
            match d.exec.treatment {
                Treatment::Ident => self.ident(d),
                _ => self.rewritten(i, d),
            }
        }
        self.pending = None;
        match end {
            PeelEnd::Dead(k) => x64!(self.ops; jmp =>self.joins.start[k].0),
            PeelEnd::Stored(k) => {
                emit_store_lazy_cmp(self.ops, a, b);
                x64!(self.ops; jmp =>self.joins.start[k].0);
            }
            PeelEnd::Loaded(k) => {
                FlagSource::Cmp(a, b).emit(self.ops);
                let (label, _) = self.joins.loaded[k].expect("checked by peel_end");
                x64!(self.ops; jmp =>label);
            }
        }
        self.current = last;
        true
    }

    /// True if the whole block can be copied for a loop's way back ([`Emitter::whole_copy`]):
    /// register-only instructions and plain accesses (alone or in page groups) only, and
    /// the last a conditional branch back to the block's start.
    fn whole_copy_fits(&self) -> bool {
        let last = self.block.insns.len() - 1;
        let branch = &self.block.insns[last].insn;
        self.chainable
            && branch.condition_code() != ConditionCode::None
            && branch.mnemonic() != Mnemonic::Loop
            && is_inline_branch(branch)
            && self.runtime_eip(branch.near_branch32()) == self.eip
            && self.block.insns[..last].iter().enumerate().all(|(i, d)| match d.exec.treatment {
                Treatment::Ident => true,
                Treatment::Rewritten => self.groups[i].is_some() || self.rewritten_inline(i),
                _ => false,
            })
    }

    /// True if `emit_block` sends instruction `i`, rewritten, to [`Emitter::rewritten`]: not
    /// a branch, RDTSC, MOVS or an indirect CALL or JMP, nor in a page group.
    fn rewritten_inline(&self, i: usize) -> bool {
        let insn = &self.block.insns[i].insn;
        self.block.insns[i].exec.treatment == Treatment::Rewritten
            && self.groups[i].is_none()
            && !is_inline_branch(insn)
            && crate::translate::plain_movs_width(insn).is_none()
            && crate::translate::indirect_branch_address(insn).is_none()
            && insn.code() != Code::Rdtsc
    }

    /// A loop's way back ([`Emitter::loop_back`]) as a whole copy of the block, with the
    /// flags of its CMP `a, b` pending at its start (`top`): each instruction as in the
    /// body, but the flags are only stored where something other than a register-only
    /// instruction or a plain flagless access would see them (or `a` or `b` changes), set
    /// in host EFLAGS by `cmp a, b` where one reads them, and dropped where one sets them
    /// all. The copy's own branch leaves for the body's way out (`out`) and goes back to
    /// `top` while the budget lasts, else to `miss` (the body's way back's exit, which
    /// stores the flags):
    ///
    /// ```text
    ///   top: <the block's instructions> ; j<not cc> out ; sub r9, n ; jg top ; jmp miss
    /// ```
    ///
    /// So a round of the loop takes one jump back, as the guest's does.
    fn whole_copy(&mut self, a: u8, b: LazyOperand, top: DynamicLabel, miss: DynamicLabel, out: DynamicLabel) {
        let at_branch = self.state();
        let last = self.block.insns.len() - 1;
        self.set_state(FlagState::ENTRY);
        self.pending = Some((a, b));
        self.copying = true;
        for i in 0..last {
            self.current = i;
            let d = &self.block.insns[i];
            if let Some((a, b)) = self.pending {
                let insn = &d.insn;
                let flagless = x86_flags(insn.rflags_read() | insn.rflags_modified()) == 0;
                let writes_ab = writes_operand(insn, a, b);
                // A register-only instruction that reads or sets the flags settles them
                // itself, before it changes `a` or `b` (`cmp a, b` first, or nothing if it
                // sets them all): only one that leaves them alone and changes `a` or `b`
                // needs them stored.
                let keeps = match d.exec.treatment {
                    Treatment::Ident => !(flagless && writes_ab),
                    _ => flagless && !writes_ab && self.plain_access(i),
                };
                if !keeps {
                    emit_store_lazy_cmp(self.ops, a, b);
                    self.pending = None;
                }
            }
            match (d.exec.treatment, self.groups[i]) {
                (Treatment::Ident, _) => self.ident(d),
                (_, Some(slot)) => self.grouped(i, d, slot),
                _ => self.rewritten(i, d),
            }
            if self.host_flags != 0 {
                self.pending = None;
            }
        }
        self.current = last;
        let branch = &self.block.insns[last].insn;
        // The body's branch found the flags in host EFLAGS, from the same CMP (`two_ends`
        // only comes here then), and so does the copy's.
        let same = self.pending.is_none() && self.state() == self.joins.start[last].1;
        if same && at_branch == self.joins.start[last].1 {
            self.pad_for_branch(6);
            emit_jcc(self.ops, negated(branch.condition_code()), out);
            self.again_within_budget(top, miss);
        } else {
            // (Not expected: the copy's state after the block's instructions is the body's.)
            // Back to the run loop before the branch, the flags in `CpuState`.
            if let Some((a, b)) = self.pending.take() {
                emit_store_lazy_cmp(self.ops, a, b);
            }
            self.spill_flags();
            store32_imm(self.ops, EIP_OFF, self.runtime_eip(branch.ip32()));
            x64!(self.ops
                ; sub r9, last as i32
                ; mov r10d, self.id as i32
            );
            self.branch_to_shared(JMP, self.shared.ret_store);
        }
        self.copying = false;
        self.set_state(at_branch);
    }

    /// True if instruction `i` is a rewritten access that `emit_block` sends to
    /// [`Emitter::rewritten`] (a plain access of its own, not in a page group) and does not
    /// move the stack pointer.
    fn plain_access(&self, i: usize) -> bool {
        self.rewritten_inline(i) && self.block.insns[i].insn.stack_pointer_increment() == 0
    }

    /// True if the flags `live` that host EFLAGS hold before instruction `i`'s access are
    /// seen only by slow paths until they are set again: up to an instruction that sets
    /// them all (register-only, or an access that cannot fault) and reads none, every
    /// instruction after `i` is register-only or a plain access of its own
    /// ([`Emitter::plain_access`]), and neither reads nor writes a flag. Then the flags are
    /// saved once, before `i`'s check, and each of these accesses' slow paths stores them
    /// ([`Emitter::saved`]).
    fn seen_by_slow_paths_only(&self, i: usize, live: u32) -> bool {
        let mode = self.block.key.mode;
        for (j, d) in self.block.insns.iter().enumerate().skip(i + 1) {
            let insn = &d.insn;
            let (read, modified) = (x86_flags(insn.rflags_read()), x86_flags(insn.rflags_modified()));
            if read & live != 0 {
                return false;
            }
            if self.leaves_flags_alone(j) {
                continue;
            }
            let sets_all = modified & live == live && !matches!(flag_fix(insn), Some(FlagFix::Counted(_)));
            return sets_all
                && read == 0
                && (self.register_only_ident(j)
                    || d.exec.treatment == Treatment::Rewritten && crate::translate::access_cannot_fault(mode, insn));
        }
        false
    }

    /// True if instruction `i` is an `ident` twin without a memory operand.
    fn register_only_ident(&self, i: usize) -> bool {
        let d = &self.block.insns[i];
        d.exec.treatment == Treatment::Ident
            && (0..d.insn.op_count()).all(|k| d.insn.op_kind(k) != popek_cpu::iced_x86::OpKind::Memory)
    }

    /// True if instruction `i` neither reads nor writes a flag, and is register-only or a
    /// plain access ([`Emitter::plain_access`]): flags saved for slow paths
    /// ([`Emitter::saved`]) live across it.
    fn leaves_flags_alone(&self, i: usize) -> bool {
        let insn = &self.block.insns[i].insn;
        x86_flags(insn.rflags_read() | insn.rflags_modified()) == 0
            && (self.register_only_ident(i) || self.plain_access(i))
    }

    /// Where [`Emitter::loop_back`]'s copy of the block's first instructions ends, if it
    /// can: each instruction before it is one the copy can run with the flags pending
    /// (register-only and flagless, or a lone plain access that neither reads nor writes
    /// the flags), none writes `a` or `b`, and the body's state where the copy joins it is
    /// the copy's.
    fn peel_end(&self, a: u8, b: LazyOperand) -> Option<PeelEnd> {
        if !self.chainable {
            return None;
        }
        let last = self.block.insns.len() - 1;
        for (i, d) in self.block.insns.iter().enumerate().take(last) {
            if self.joins.start[i].1 != FlagState::ENTRY {
                return None;
            }
            let insn = &d.insn;
            let flagless = x86_flags(insn.rflags_read() | insn.rflags_modified() | insn.rflags_undefined()) == 0;
            let writes_ab = writes_operand(insn, a, b);
            let plain_access = self.plain_access(i);
            match d.exec.treatment {
                Treatment::Ident if flagless && !writes_ab => continue,
                // It changes `a` or `b`, not the flags: they go to the context first.
                Treatment::Ident if flagless => return Some(PeelEnd::Stored(i)),
                Treatment::Ident => {
                    return Some(match self.joins.loaded[i] {
                        // Loaded right at its start (nothing before the load), all six.
                        Some((_, at)) if at == (FlagState { host_flags: ARITH, ..FlagState::ENTRY }) => {
                            PeelEnd::Loaded(i)
                        }
                        Some(_) => PeelEnd::Stored(i),
                        // The body never loads them here: it sets them all before anyone
                        // sees them.
                        None => PeelEnd::Dead(i),
                    });
                }
                Treatment::Rewritten if flagless && !writes_ab && plain_access => continue,
                _ => return Some(PeelEnd::Stored(i)),
            }
        }
        None
    }

    /// Guest registers: host → memory.
    fn registers_to_memory(&mut self) {
        if self.regs_in_host {
            emit_store_registers(self.ops);
            self.regs_in_host = false;
        }
    }

    /// `call` or `jmp` (`opcode`) to the shared code at `target`, rel32 from where this
    /// block sits in the buffer ([`Layout::at`]).
    fn branch_to_shared(&mut self, opcode: u8, target: usize) {
        let end = self.at + (self.ops.offset().0 - self.base) + 5;
        let rel = i32::try_from(target as i64 - end as i64).expect("a code cache is smaller than 2 GiB");
        self.ops.extend([opcode]);
        self.ops.extend(rel.to_le_bytes());
    }

    /// Pads with NOPs so that the next `len` bytes — a jump, or a compare and the jump it
    /// fuses with — neither cross nor end at a 32-byte boundary of the buffer. Many Intel
    /// cores (those with the "jump conditional code" erratum fix, Skylake to Cascade Lake)
    /// do not keep such a jump in their decoded-instruction cache, and a hot loop that has
    /// one runs measurably slower, so that a block's speed would hang on where it happened
    /// to land; Intel's advice to compilers is the same padding (GCC's and LLVM's
    /// `-mbranches-within-32B-boundaries`).
    fn pad_for_branch(&mut self, len: usize) {
        let at = (self.at + (self.ops.offset().0 - self.base)) % 32;
        if at + len >= 32 {
            emit_nops(self.ops, 32 - at);
        }
    }

    /// `mov r10d, index ; mov r11d, id`: which instruction a shared handler call is for.
    fn handler_args(&mut self, index: usize) {
        x64!(self.ops
            ; mov r10d, index as i32
            ; mov r11d, self.id as i32
        );
    }

    /// The flags host EFLAGS hold → `CpuState`, without `pushfq` (several times slower):
    /// [`emit_read_host_flags`], then [`emit_store_flags`]. Clobbers R10 and R11.
    ///
    /// Right after a CMP (see [`Emitter::lazy_cmp`]) it stores the CMP's operands instead,
    /// three plain stores, and marks the flags lazy in the context; whoever needs them
    /// computes them from there (a later load runs the CMP again, the callout and the
    /// run loop fold them into `CpuState`).
    fn spill_flags(&mut self) {
        self.spill_flags_or_lazy(false);
    }

    /// [`Emitter::spill_flags`] at a block's end, where the next block takes over: flags
    /// that cannot be left as a CMP's operands are left as `lahf` and `seto` give them
    /// (`LAZY_RAW`: six instructions, where a spill takes eleven); the next block's first
    /// reader sets them again from there (`sahf`), as it runs a lazy CMP again.
    ///
    /// ```text
    ///   mov r11d, eax ; lahf ; seto al ; (and ah, ~zero ; mov al, 0)
    ///   mov [lazy_a], ax ; mov eax, r11d ; mov dword [lazy], LAZY_RAW
    /// ```
    fn spill_flags_at_end(&mut self) {
        self.spill_flags_or_lazy(true);
    }

    fn spill_flags_or_lazy(&mut self, at_end: bool) {
        let m = self.host_flags;
        if m == 0 {
            return;
        }
        if let Some((a, b)) = self.lazy_cmp
            && m == ARITH
            && !self.of_sf_cf
            && self.host_zero & !AF == 0
        {
            emit_store_lazy_cmp(self.ops, a, b);
            (self.host_flags, self.host_zero) = (0, 0);
            self.lazy_maybe = true;
            return;
        }
        if at_end && m == ARITH && !self.of_sf_cf {
            emit_save_flags(self.ops, offset_of!(Ctx, lazy_a) as i32, self.host_zero);
            x64!(self.ops; mov DWORD [r14 + offset_of!(Ctx, lazy) as i32], crate::LAZY_RAW as i32);
            (self.host_flags, self.host_zero) = (0, 0);
            self.lazy_maybe = true;
            return;
        }
        debug_assert!(
            !self.lazy_maybe || m == ARITH,
            "a partial spill merges with CpuState, which lazy flags leave stale"
        );
        let zero = self.host_zero;
        emit_read_host_flags(self.ops, std::mem::take(&mut self.of_sf_cf));
        emit_store_flags(self.ops, m, zero, self.lazy_maybe);
        (self.host_flags, self.host_zero, self.lazy_maybe) = (0, 0, false);
    }

    /// The guest's flags → host EFLAGS: from `CpuState`, or, if they are lazy, by running
    /// the CMP again on its stored operands (clobbers R11 only).
    fn emit_load_flags(&mut self) {
        if let Some((a, b)) = self.pending.take() {
            // A loop's way back: the flags of its CMP, set again.
            FlagSource::Cmp(a, b).emit(self.ops);
            return;
        }
        if !self.lazy_maybe {
            emit_load_flags(self.ops);
            return;
        }
        // A CMP's operands (what a loop leaves) inline; the others out of line
        // (`Emitter::end`).
        let (other, back) = (self.ops.fresh_label(), self.ops.fresh_label());
        x64!(self.ops
            ; cmp DWORD [r14 + offset_of!(Ctx, lazy) as i32], crate::LAZY_CMP as i32
            ; jne =>other
            ; mov r11d, DWORD [r14 + offset_of!(Ctx, lazy_a) as i32]
            ; cmp r11d, DWORD [r14 + offset_of!(Ctx, lazy_b) as i32]
            ; =>back
        );
        self.lazy_loads.push((other, back));
    }

    /// The out-of-line part of a lazy flags load ([`Emitter::emit_load_flags`]), at `other`
    /// (the flags not a CMP's): flags in `CpuState` or `LAZY_RAW`, into host EFLAGS, and
    /// back. For `LAZY_RAW`, `add al, 0x7f` overflows just
    /// when the saved OF is 1, and `sahf` sets the others.
    fn lazy_load_rest(&mut self, other: DynamicLabel, back: DynamicLabel) {
        x64!(self.ops
            ; =>other
            ; cmp DWORD [r14 + offset_of!(Ctx, lazy) as i32], crate::LAZY_RAW as i32
            ; je >raw
        );
        emit_load_flags(self.ops);
        x64!(self.ops
            ; jmp =>back
            ; raw:
            ; mov r11d, eax
            ; mov ax, WORD [r14 + offset_of!(Ctx, lazy_a) as i32]
            ; add al, 0x7f
            ; sahf
            ; mov eax, r11d
            ; jmp =>back
        );
    }

    /// Before an instruction that sets the flags `modified`: while lazy flags may be about,
    /// host EFLAGS must end up holding all of them or none (a partial spill would merge
    /// with `CpuState`'s stale ones), so load them all first if it would be partial.
    ///
    /// Flags that are dead here — the next instructions, all register-only, set them again
    /// before anything reads them — need no load: host EFLAGS may hold anything for them.
    /// Only a register-only instruction that surely sets `modified` (`may_skip`: not a
    /// shift by CL, which may set none) may skip the load: a memory access is itself a
    /// place where the flags are seen (a fault's frame).
    fn before_modify(&mut self, modified: u32, may_skip: bool) {
        if self.lazy_maybe && modified != 0 && (self.host_flags | modified) & ARITH != ARITH {
            let missing = ARITH & !modified & !self.host_flags;
            let insn = &self.block.insns[self.current].insn;
            if may_skip
                && x86_flags(insn.rflags_read()) & missing == 0
                && flags_dead_after(&self.block.insns, self.block.key.mode, self.current, missing)
            {
                // What the twin sets, it sets; the rest nobody sees.
                self.host_flags = ARITH;
                self.pending = None;
            } else {
                self.flags_for(ARITH);
            }
        }
    }

    /// Makes sure host EFLAGS hold the flags `read` (x86 bits) that the next host
    /// instruction reads.
    fn flags_for(&mut self, read: u32) {
        if read & (!self.host_flags | self.host_zero) != 0 || (self.of_sf_cf && read & OF != 0) {
            self.spill_flags();
            self.emit_load_flags();
            self.host_flags = ARITH;
            if !self.copying && matches!(self.joins.loaded.get(self.current), Some(None)) {
                let label = self.ops.fresh_label();
                x64!(self.ops; =>label);
                self.joins.loaded[self.current] = Some((label, self.state()));
            }
        }
    }

    fn ident(&mut self, d: &DecodedInsn<JitInsn>) {
        let bytes = host_twin(&d.insn).expect("classified ident, so it has a host twin");
        self.registers_to_host();
        self.lazy_cmp = None;
        let fix = flag_fix(&d.insn).unwrap_or(FlagFix::NONE);
        let counted = matches!(fix, FlagFix::Counted(_));
        if counted && flags_dead_after(&self.block.insns, self.block.key.mode, self.current, ARITH) {
            // A shift or rotate by CL whose flags nobody sees (nor those before it, which a
            // count of 0 would leave): the next instructions set them all again first. Host
            // EFLAGS now hold something for every flag; nobody looks.
            self.ops.extend(bytes);
            (self.host_flags, self.host_zero, self.of_sf_cf) = (ARITH, 0, false);
            self.flag_source = None;
            return;
        }
        self.before_modify(if counted { CF | OF } else { x86_flags(d.insn.rflags_modified()) }, !counted);
        if let FlagFix::Counted(of) = fix {
            self.flag_source = None;
            self.spill_flags();
            self.counted_twin(&d.insn, bytes, of, ResultAt::Register(d.insn.op0_register()));
            return;
        }
        // A pending OF = SF XOR CF must be worked out before a twin changes SF or CF
        // but not OF (CLC, STC, CMC).
        let modified = x86_flags(d.insn.rflags_modified());
        if self.of_sf_cf && modified & (SF | CF) != 0 && modified & OF == 0 {
            self.spill_flags();
        }
        let kept = self.flag_source.filter(|s| {
            modified == 0 && !written_registers(&d.insn).iter().any(|&r| s.registers().contains(&Some(host_number(r))))
        });
        self.flags_for(twin_reads(&d.insn, fix));
        self.ops.extend(bytes);
        self.flip_undefined(&d.insn);
        self.after_twin(&d.insn, fix, ResultAt::Register(d.insn.op0_register()));
        self.lazy_cmp = lazy_operands(&d.insn);
        self.flag_source = if self.flip { None } else { flag_source(&d.insn).or(kept) };
    }

    /// With [`Layout::flip`]: flips the flags the SDM leaves undefined for `insn`, as the
    /// host's twin left them (`pushfq ; xor [rsp], undefined ; popfq`).
    fn flip_undefined(&mut self, insn: &Instruction) {
        let undefined = x86_flags(insn.rflags_undefined());
        if self.flip && undefined != 0 {
            x64!(self.ops
                ; pushfq
                ; xor QWORD [rsp], undefined as i32
                ; popfq
            );
        }
    }

    /// A shift or rotate by CL ([`FlagFix::Counted`]), with the flags in `CpuState`. A
    /// masked count of 0 changes nothing at all, so that path skips the twin and loads
    /// the flags as they were. Otherwise a shift's twin defines SF, ZF, PF and CF, and AF
    /// and OF are fixed up in AH between `lahf` and `sahf` (the `and` that clears AF
    /// clears OF too; OF is then set, if the table says so, by an instruction that
    /// overflows exactly then); a rotate's twin defines CF, and OF is fixed from a copy
    /// of the result ([`OfFix::RotateCopyRight`]).
    ///
    /// ```text
    ///   test cl, 31 ; jz zero
    ///   <twin>
    ///   shifts:  mov r11d, eax ; lahf ; and ah, ~AF ; <OF> ; sahf ; mov eax, r11d
    ///   rotates: mov r11d, <result> ; ror/rol r11, 1
    ///   jmp done
    /// zero:
    ///   <load the flags>
    /// done:
    /// ```
    fn counted_twin(&mut self, insn: &Instruction, twin: Vec<u8>, of: OfFix, result: ResultAt) {
        debug_assert_eq!(self.host_flags, 0);
        let (zero, done) = (self.ops.fresh_label(), self.ops.fresh_label());
        x64!(self.ops
            ; test cl, 31
            ; jz =>zero
        );
        self.ops.extend(twin);
        self.flip_undefined(insn);
        let rotate = matches!(of, OfFix::RotateCopyLeft | OfFix::RotateCopyRight);
        if rotate {
            self.rotate_copy(of, result);
        } else {
            x64!(self.ops
                ; mov r11d, eax
                ; lahf
                ; and ah, !(AF as u8) as i8
            );
            match of {
                OfFix::SfXorCf => x64!(self.ops
                    ; mov al, ah
                    ; rol al, 1
                    ; xor al, ah
                    ; and al, 1
                    ; add al, 0x7f
                ),
                OfFix::TopTwo => self.top_two(result),
                _ => {} // Clear: the `and` did it
            }
            x64!(self.ops
                ; sahf
                ; mov eax, r11d
            );
        }
        x64!(self.ops
            ; jmp =>done
            ; =>zero
        );
        self.emit_load_flags();
        x64!(self.ops; =>done);
        // A rotate defines CF and OF only; the zero path loaded them all.
        (self.host_flags, self.host_zero) = (if rotate { CF | OF } else { ARITH }, 0);
    }

    /// [`OfFix::RotateCopyRight`] / [`OfFix::RotateCopyLeft`]: CF and OF from a copy of
    /// the result rotated by 1, which changes no other flag.
    fn rotate_copy(&mut self, of: OfFix, result: ResultAt) {
        let width = match result {
            ResultAt::Register(r) => {
                x64!(self.ops; mov r11d, Rd(host_number(r)));
                r.size()
            }
            ResultAt::Memory(1) => {
                x64!(self.ops; movzx r11d, BYTE [r10]);
                1
            }
            ResultAt::Memory(2) => {
                x64!(self.ops; movzx r11d, WORD [r10]);
                2
            }
            ResultAt::Memory(w) => {
                x64!(self.ops; mov r11d, DWORD [r10]);
                w as usize
            }
        };
        match (of, width) {
            (OfFix::RotateCopyRight, 1) => x64!(self.ops; ror r11b, 1),
            (OfFix::RotateCopyRight, 2) => x64!(self.ops; ror r11w, 1),
            (OfFix::RotateCopyRight, _) => x64!(self.ops; ror r11d, 1),
            (_, 1) => x64!(self.ops; rol r11b, 1),
            (_, 2) => x64!(self.ops; rol r11w, 1),
            _ => x64!(self.ops; rol r11d, 1),
        }
    }

    /// [`OfFix::TopTwo`] on a 32-bit result, between `lahf` and `sahf` (EAX in R11D):
    /// OF = bit 31 XOR bit 30, the overflow of adding the result to itself.
    fn top_two(&mut self, result: ResultAt) {
        match result {
            ResultAt::Register(r) if host_number(r) == 0 => x64!(self.ops; mov r10d, r11d),
            ResultAt::Register(r) => x64!(self.ops; mov r10d, Rd(host_number(r))),
            ResultAt::Memory(_) => x64!(self.ops; mov r10d, DWORD [r10]),
        }
        x64!(self.ops; add r10d, r10d);
    }

    /// The flags after a host twin ran (and the fix-up `fix` it needs, see [`FlagFix`]).
    fn after_twin(&mut self, insn: &Instruction, fix: FlagFix, result: ResultAt) {
        let modified = x86_flags(insn.rflags_modified());
        self.host_flags |= modified;
        self.host_zero &= !modified;
        if modified & OF != 0 {
            self.of_sf_cf = false;
        }
        match fix {
            FlagFix::After { zero, of } => {
                self.host_zero |= zero;
                match of {
                    OfFix::None => {}
                    OfFix::Clear => self.host_zero |= OF,
                    OfFix::SfXorCf => self.of_sf_cf = true,
                    OfFix::RotateCopyRight | OfFix::RotateCopyLeft => self.rotate_copy(of, result),
                    OfFix::TopTwo => {
                        x64!(self.ops
                            ; mov r11d, eax
                            ; lahf
                        );
                        self.top_two(result);
                        x64!(self.ops
                            ; sahf
                            ; mov eax, r11d
                        );
                    }
                }
            }
            FlagFix::Counted(_) => unreachable!("emitted by counted_twin"),
            FlagFix::MulLow(_)
                if flags_dead_after(&self.block.insns, self.block.key.mode, self.current, SF | ZF | PF | AF) =>
            {
                // The next instructions overwrite SF, ZF, PF and AF before anything can
                // see them (no fault, no callout, no block end in between): no fix-up.
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

    /// A callout or helper: the shared code stores the guest registers (if they are in
    /// host registers) and calls the handler; they stay in `CpuState` after it.
    fn callout(&mut self, i: usize) {
        self.lazy_cmp = None;
        self.flag_source = None;
        self.spill_flags();
        self.handler_args(i);
        if self.regs_in_host {
            self.branch_to_shared(CALL, self.shared.store_callout);
            self.regs_in_host = false;
        } else {
            self.branch_to_shared(CALL, self.shared.callout);
        }
        // The callout folded any lazy flags into CpuState first.
        self.lazy_maybe = false;
    }

    /// A callout with a fast path (`what`: [`crate::translate::segment_load_info`] or
    /// [`crate::translate::port_in_info`]): a MOV or POP to DS, ES, FS or GS, or an IN of a
    /// pure port. The shared code tries the fast path (`segment_load` or `port_in` in
    /// lib.rs), and calls the callout only if that says no. As after a callout, the guest
    /// registers are in `CpuState`; lazy flags may still be lazy (only the callout folds
    /// them).
    ///
    /// ```text
    ///   (flags in host EFLAGS → CpuState)
    ///   mov r8d, what ; mov r10d, index ; mov r11d, id
    ///   call shared (store_)segment_load or (store_)port_in
    /// ```
    fn fast_callout(&mut self, i: usize, what: u32, path: FastPath) {
        self.lazy_cmp = None;
        self.flag_source = None;
        self.spill_flags();
        x64!(self.ops; mov r8d, what as i32);
        self.handler_args(i);
        let (plain, store) = match path {
            FastPath::SegmentLoad => (self.shared.segment_load, self.shared.store_segment_load),
            FastPath::PortIn => (self.shared.port_in, self.shared.store_port_in),
        };
        if self.regs_in_host {
            self.branch_to_shared(CALL, store);
            self.regs_in_host = false;
        } else {
            self.branch_to_shared(CALL, plain);
        }
    }

    /// MOVSB, MOVSW or MOVSD without a REP prefix ([`crate::translate::plain_movs_width`]):
    /// the element moved inline, both addresses through the soft TLB, when DF is clear
    /// (`Ctx::eflags_rest` holds the guest's DF); else, or on a miss, the instruction's handler. The
    /// destination's host address waits in the context while the source is looked up.
    ///
    /// ```text
    ///   (flags in host EFLAGS → saved or CpuState, as before a lone access)
    ///   test [eflags_rest], DF ; jnz slow
    ///   mov r10d, edi ; <lookup, write> ; mov [r14 + group_addend], r10
    ///   mov r10d, esi ; <lookup, read>  ; mov r11(b/w/d), [r10]
    ///   mov r10, [r14 + group_addend] ; mov [r10], r11(b/w/d)
    ///   lea esi, [rsi + width] ; lea edi, [rdi + width]
    /// ```
    fn movs(&mut self, i: usize, d: &DecodedInsn<JitInsn>) {
        let width = crate::translate::plain_movs_width(&d.insn).expect("classified rewritten as a plain MOVS");
        self.registers_to_host();
        self.lazy_cmp = None;
        self.flag_source = None;
        let live = self.host_flags;
        let unseen = live == 0 || flags_dead_after(&self.block.insns, self.block.key.mode, self.current, live);
        let pushed = self.flags_before_check(unseen, false, 0, None);
        let slow = self.ops.fresh_label();
        x64!(self.ops
            ; test DWORD [r14 + offset_of!(Ctx, eflags_rest) as i32], popek_cpu::state::flags::DF as i32
            ; jnz =>slow
            ; mov r10d, edi
        );
        self.tlb_lookup(width, true, slow);
        x64!(self.ops
            ; mov QWORD [r14 + offset_of!(Ctx, group_addend) as i32], r10
            ; mov r10d, esi
        );
        self.tlb_lookup(width, false, slow);
        match width {
            1 => x64!(self.ops; movzx r11d, BYTE [r10]),
            2 => x64!(self.ops; movzx r11d, WORD [r10]),
            _ => x64!(self.ops; mov r11d, DWORD [r10]),
        }
        x64!(self.ops; mov r10, QWORD [r14 + offset_of!(Ctx, group_addend) as i32]);
        match width {
            1 => x64!(self.ops; mov BYTE [r10], r11b),
            2 => x64!(self.ops; mov WORD [r10], r11w),
            _ => x64!(self.ops; mov DWORD [r10], r11d),
        }
        x64!(self.ops
            ; lea esi, [rsi + width as i32]
            ; lea edi, [rdi + width as i32]
        );
        let back = self.ops.fresh_label();
        x64!(self.ops; =>back);
        self.slow_paths.push(SlowPath::handler(slow, back, i, pushed));
    }

    /// RDTSC, sensitive (it reads the virtual TSC) but computed inline: the TSC at the
    /// start of the call, plus the instructions the call retired before this block
    /// (`budget_start - R9`), plus those before it in the block, as the interpreter keeps
    /// it ([`popek_cpu::CpuState::tsc`] gets it, as after a callout); EDX:EAX is that plus
    /// `tsc_offset`. At CPL > 0 a set CR4.TSD sends it to its handler (#GP).
    ///
    /// ```text
    ///   (flags in host EFLAGS → CpuState)
    ///   (CPL > 0: test dword [r15 + cr4], TSD ; jnz slow)
    ///   mov r11, [r14 + budget_start] ; sub r11, r9 ; add r11, [r14 + tsc] ; add r11, index
    ///   mov [r15 + tsc], r11 ; add r11, [r15 + tsc_offset]
    ///   mov eax, r11d ; shr r11, 32 ; mov edx, r11d
    /// ```
    fn rdtsc(&mut self, i: usize) {
        self.registers_to_host();
        self.lazy_cmp = None;
        self.flag_source = None;
        self.spill_flags();
        let slow = self.ops.fresh_label();
        if (self.block.key.mode >> 1) & 3 != 0 {
            x64!(self.ops
                ; test DWORD [r15 + state_off!(cr4)], popek_cpu::state::cr4::TSD as i32
                ; jnz =>slow
            );
        }
        x64!(self.ops
            ; mov r11, QWORD [r14 + offset_of!(Ctx, budget_start) as i32]
            ; sub r11, r9
            ; add r11, QWORD [r14 + offset_of!(Ctx, tsc) as i32]
            ; add r11, i as i32
            ; mov QWORD [r15 + state_off!(tsc)], r11
            ; add r11, QWORD [r15 + state_off!(tsc_offset)]
            ; mov eax, r11d
            ; shr r11, 32
            ; mov edx, r11d
        );
        let back = self.ops.fresh_label();
        x64!(self.ops; =>back);
        self.slow_paths.push(SlowPath::handler(slow, back, i, None));
    }

    /// Before a soft-TLB check, which clobbers host EFLAGS: the flags they hold go to
    /// `CpuState` ([`Emitter::spill_flags`]), unless only the check's slow path could see
    /// them (`unseen`: no later instruction reads them before they are all set again), where
    /// a fault's frame shows them: then they are saved with `lahf` and `seto`
    /// ([`emit_save_flags`]), or not at all if `source` can set them again, and the slow
    /// path stores them ([`PushedFlags`], returned). If the accesses behind the check
    /// cannot fault (`cannot_fault`), nobody at all sees such flags: nothing is saved or
    /// stored.
    fn flags_before_check(
        &mut self,
        unseen: bool,
        cannot_fault: bool,
        modified: u32,
        source: Option<FlagSource>,
    ) -> Option<PushedFlags> {
        let held = self.host_flags;
        let pushed =
            (held != 0 && unseen && !self.of_sf_cf && (modified == 0 || modified == ARITH || !self.lazy_maybe))
                .then_some(PushedFlags {
                    held,
                    zero: self.host_zero,
                    lazy: self.lazy_maybe,
                    recompute: source.filter(|_| held == ARITH && self.host_zero == 0 && !cannot_fault),
                    unneeded: cannot_fault,
                });
        match pushed {
            Some(p) => {
                if p.recompute.is_none() && !p.unneeded {
                    emit_save_flags(self.ops, offset_of!(Ctx, saved_flags) as i32, 0);
                }
                (self.host_flags, self.host_zero) = (0, 0);
            }
            None => self.spill_flags(),
        }
        pushed
    }

    /// A rewritten memory instruction: inline soft-TLB lookup, then the host twin on host
    /// memory; on a miss, the instruction's handler (which walks, faults or does MMIO).
    ///
    /// ```text
    ///   (flags in host EFLAGS → CpuState: the lookup clobbers them, and a fault shows them)
    ///   lea   r10d, [guest address]     ; the linear address (flat segments)
    ///   lea   r11d, [r10 + width-1]     ; last byte: a page-crossing access misses
    ///   and   r11d, ~0xfff
    ///   mov   r8d, r10d ; shr r8d, 7 ; and r8d, 255 << 5   ; entry = page % 256, 32 bytes each
    ///   cmp   r11d, [r15 + TLB + r8 + tag]  ; read or write tag of the entry
    ///   jne   slow
    ///   add   r10, [r15 + TLB + r8 + addend] ; host address = linear + addend
    ///   (flags → host EFLAGS if the twin reads any)
    ///   <host twin with [r10]>
    /// back:
    ///   ...
    /// slow: (out of line, after the block's code)
    ///   store guest registers ; callout ; reload (and the flags, if the twin sets any)
    ///   jmp back
    /// ```
    fn rewritten(&mut self, i: usize, d: &DecodedInsn<JitInsn>) {
        let m = memory_twin(&d.insn, self.shift(), self.block.key.mode)
            .expect("classified rewritten, so it has a memory twin");
        let fix = flag_fix(&d.insn).unwrap_or(FlagFix::NONE);
        let (read, modified) = (twin_reads(&d.insn, fix), x86_flags(d.insn.rflags_modified()));
        self.registers_to_host();
        self.lazy_cmp = None;
        if d.insn.mnemonic() == Mnemonic::Pushfd && self.lazy_maybe {
            // Its twin reads the flags from CpuState: no lazy ones.
            self.flags_for(ARITH);
        }
        let counted = matches!(fix, FlagFix::Counted(_));
        self.before_modify(if counted { CF | OF } else { modified }, false);
        // The flags in host EFLAGS matter only to the slow path (a fault's frame) if no
        // later instruction sees them before they are all set again: then they are saved
        // (`lahf`, `seto`) instead of spilled, and the slow path stores them
        // ([`Emitter::flags_before_check`]).
        let live_after = self.host_flags & !modified;
        let unseen = read == 0
            && !counted
            && (live_after == 0 || flags_dead_after(&self.block.insns, self.block.key.mode, self.current, live_after));
        // Seen by later accesses' slow paths too: saved once, for all of them (and not
        // set again from a source, whose registers may change meanwhile).
        let chained = !unseen
            && read == 0
            && !counted
            && modified == 0
            && self.pending.is_none()
            && self.seen_by_slow_paths_only(i, live_after);
        let mut source = self.flag_source.take();
        let mut cannot_fault = crate::translate::access_cannot_fault(self.block.key.mode, &d.insn);
        if chained {
            (source, cannot_fault) = (None, false);
        }
        let pushed = self.flags_before_check(unseen || chained, cannot_fault, modified, source);
        if chained {
            self.saved = pushed;
        }
        let pushed = pushed.or(self.saved);
        let slow = self.ops.fresh_label();
        let retry = self.ops.fresh_label();
        let (start, end) = self.plain_ram;
        let span = i32::try_from(i64::from(end) - i64::from(start) - i64::from(m.width)).ok().filter(|&s| s >= 0);
        let direct = match span {
            Some(span) if !self.paging() && read == 0 && !counted => {
                crate::translate::direct_load(&d.insn, self.block.key.mode, start).map(|l| (l, span))
            }
            _ => None,
        };
        let is_direct = direct.is_some();
        let mut address = None;
        // The twin, after the check (`None`: a count's, already emitted).
        let twin = if let Some(((lea, twin), span)) = direct {
            // A load with paging off, in 64 bits: `lea r11, [address - start]` ; one
            // unsigned compare with the span (a 32-bit address that wrapped, or any
            // address outside it, misses) ; the twin on [r13 + r11 + start].
            self.ops.extend(lea);
            // cmp r11, imm32 (7 bytes) ; ja rel32 (6)
            self.pad_for_branch(13);
            x64!(self.ops
                ; cmp r11, span
                ; ja =>slow
            );
            Some(twin)
        } else if let FlagFix::Counted(of) = fix {
            x64!(self.ops; =>retry);
            self.ops.extend(m.lea);
            self.tlb_lookup(m.width, m.write, slow);
            self.counted_twin(&d.insn, m.twin, of, ResultAt::Memory(m.width));
            None
        } else if let Some((lea, twin)) = (!self.paging() && m.write)
            .then(|| crate::translate::wide_store(&d.insn, self.block.key.mode, self.plain_ram.0))
            .flatten()
        {
            // A store with paging off through a base register and a displacement: its
            // address in 64 bits, checked in the store map (whose bytes for pages outside
            // the 4 GiB are 0), and the twin on the same in 64 bits. The slow path works the
            // linear address out in R10D.
            x64!(self.ops; =>retry);
            self.ops.extend(lea.iter().copied());
            self.store_map_check(true, slow);
            address = Some((m.lea, lea));
            Some(twin)
        } else {
            x64!(self.ops; =>retry);
            self.ops.extend(m.lea);
            let on_ram =
                if self.paging() { None } else { crate::translate::ram_twin(&d.insn, &m.twin, self.plain_ram.0) };
            if on_ram.is_some() {
                // Paging off: the twin adds RAM's host address itself.
                self.paging_off_check(m.width, m.write, slow);
            } else {
                self.tlb_lookup(m.width, m.write, slow);
            }
            Some(on_ram.unwrap_or(m.twin))
        };
        if let Some(twin) = twin {
            if read != 0 {
                self.emit_load_flags();
                self.host_flags = ARITH;
            }
            self.ops.extend(twin);
            self.flip_undefined(&d.insn);
            self.after_twin(&d.insn, fix, ResultAt::Memory(m.width));
        }
        let back = self.ops.fresh_label();
        x64!(self.ops; =>back);
        // Both paths: registers in host; host EFLAGS hold at least what the twin set
        // (all of them if it read any, since they were loaded for it). The slow path
        // loads the interpreter's flags, which agree with any fix-up.
        // A soft-TLB tag check (paging on, or a store) may hit after a refill; a load with
        // paging off checks bounds, which no refill changes.
        let tag_check = !is_direct && (self.paging() || m.write);
        let refill = tag_check.then_some((m.width | if m.write { crate::REFILL_WRITE } else { 0 }, retry));
        self.slow_paths.push(SlowPath {
            label: slow,
            back,
            index: i,
            load_flags: read | modified != 0,
            pushed,
            refill,
            pending: self.pending,
            address,
        });
    }

    /// A rewritten instruction whose page check it shares with the other accesses of its
    /// [`PageGroup`]. The group's first access (`lead`) makes the check for all of them:
    ///
    /// ```text
    ///   lea r10d, [base + lo] ; lea r11d, [r10 + len - 1] ; and r11d, ~0xfff
    ///   mov r8d, r10d ; shr r8d, 7 ; and r8d, (TLB index) << 5
    ///   cmp r11d, [r15 + r8 + tag] ; jne miss       ; read tag, or write tag if one writes
    ///   mov r11, [r15 + r8 + addend] ; mov [r14 + group_addend], r11
    /// ```
    ///
    /// and every access of the group, the first too, then goes to host memory without a
    /// check, a slow path or a flags spill (nothing in it touches host EFLAGS):
    ///
    /// ```text
    ///   lea r10d, [address] ; mov r11, [r14 + group_addend] ; lea r10, [r10 + r11] ; twin
    /// ```
    ///
    /// With paging off the span's address is worked out in 64 bits (the base register
    /// zero-extended), so that one that wraps at 4 GiB misses: a group of loads checks it
    /// against the plain span with one compare, a group that writes checks its first page's
    /// byte in the store map (which covers the next page too, and is 0 outside the 4 GiB).
    /// Each access is then the twin alone, R13 holding the host address of the plain span's
    /// start:
    ///
    /// ```text
    ///   twin on [r13 + base + disp - start]   (64-bit, `wide_group_twin`)
    /// ```
    ///
    /// (or `lea r10, [r13 + r10 - start]` and the twin on `[r10]`, if its fix-up reads the
    /// result back). A group that writes may open its page in the store map on a miss,
    /// and check again.
    ///
    /// On a miss (the span crosses a page, a TLB miss, a device's page) every instruction
    /// from the first access to the last runs in its handler, as on a slow path, and the
    /// code goes on after the last.
    fn grouped(&mut self, i: usize, d: &DecodedInsn<JitInsn>, slot: GroupSlot) {
        let (lead, g) = (slot.lead, slot.group);
        let m = memory_twin(&d.insn, self.shift(), self.block.key.mode)
            .expect("classified rewritten, so it has a memory twin");
        self.registers_to_host();
        self.lazy_cmp = None;
        let source = self.flag_source.take();
        let fix = flag_fix(&d.insn).unwrap_or(FlagFix::NONE);
        let counted = matches!(fix, FlagFix::Counted(_));
        let modified = x86_flags(d.insn.rflags_modified());
        self.before_modify(if counted { CF | OF } else { modified }, false);
        if lead {
            // The check clobbers host EFLAGS; a miss needs the guest's in CpuState. If no
            // one but a fault (the miss path) sees the flags host EFLAGS hold before the
            // group's instructions have set them all again, they are saved instead, as
            // before a lone access ([`Emitter::rewritten`]): the group's accesses after the
            // check cannot fault.
            let unseen = !counted
                && crate::translate::flags_dead_in_group(
                    &self.block.insns,
                    self.block.key.mode,
                    &self.groups,
                    i,
                    self.host_flags,
                );
            let mode = self.block.key.mode;
            let cannot_fault = (i..=slot.last).all(|j| {
                self.groups[j].is_none_or(|g| g.last != slot.last)
                    || crate::translate::access_cannot_fault(mode, &self.block.insns[j].insn)
            });
            let pushed = self.flags_before_check(unseen, cannot_fault, modified, source);
            let miss = self.ops.fresh_label();
            let retry = self.ops.fresh_label();
            let base = crate::translate::host_reg(g.base);
            x64!(self.ops; =>retry);
            let linear = lea_of(Code::Lea_r32_m, Register::R10D, base, g.lo);
            let (start, end) = self.plain_ram;
            let span = i64::from(end) - i64::from(start) - i64::from(g.len);
            let mut address = None;
            if self.paging() {
                self.ops.extend(linear);
                let addend = self.tlb_check(g.len, g.write, miss);
                x64!(self.ops
                    ; mov r11, QWORD [r15 + r8 + addend]
                    ; mov QWORD [r14 + offset_of!(Ctx, group_addend) as i32], r11
                );
            } else if g.write {
                // Paging off: the span's address in 64 bits (the base register, zero-extended,
                // plus the lowest displacement), and its page's byte in the store map, which
                // is 0 for any page outside the 4 GiB (an address that wraps) and covers the
                // next page too. The accesses then add the same in 64 bits.
                let wide = lea_of(Code::Lea_r64_m, Register::R11, base.full_register(), g.lo);
                self.ops.extend(wide.iter().copied());
                self.store_map_check(true, miss);
                address = Some((linear, wide));
            } else if let (Some(span), Some(lo)) =
                (i32::try_from(span).ok().filter(|&s| s >= 0), g.lo.checked_sub_unsigned(start))
            {
                // Paging off, loads: the span's address in 64 bits less the plain span's
                // start, checked with one unsigned compare (as a lone load's).
                self.ops.extend(lea_of(Code::Lea_r64_m, Register::R11, base.full_register(), lo));
                // cmp r11, imm32 (7 bytes) ; ja rel32 (6)
                self.pad_for_branch(13);
                x64!(self.ops
                    ; cmp r11, span
                    ; ja =>miss
                );
            } else {
                // No plain span: every such group misses.
                x64!(self.ops; jmp =>miss);
            }
            let back = self.ops.fresh_label();
            // With paging off a group that writes may open its page in the store map.
            let refill = (!self.paging() && g.write).then_some((g.len | crate::REFILL_WRITE, retry));
            let path = SlowPath {
                label: miss,
                back,
                index: i | slot.last << 12 | crate::RANGE as usize,
                load_flags: true,
                pushed,
                refill,
                pending: None,
                address,
            };
            self.group_misses.push(GroupMiss { last: slot.last, path });
        }
        // The flags first (a spill or a load clobbers R10 and R11), then the address (LEA
        // and MOV leave host EFLAGS alone).
        let paging = self.paging();
        let start = self.plain_ram.0;
        let address = |e: &mut Self| {
            e.ops.extend(m.lea.iter().copied());
            if paging {
                x64!(e.ops
                    ; mov r11, QWORD [r14 + offset_of!(Ctx, group_addend) as i32]
                    ; lea r10, [r10 + r11]
                );
            } else {
                x64!(e.ops; lea r10, [r13 + r10 - start as i32]);
            }
        };
        if let FlagFix::Counted(of) = fix {
            self.spill_flags();
            address(self);
            self.counted_twin(&d.insn, m.twin, of, ResultAt::Memory(m.width));
        } else {
            if self.of_sf_cf && modified & (SF | CF) != 0 && modified & OF == 0 {
                self.spill_flags();
            }
            self.flags_for(twin_reads(&d.insn, fix));
            let wide = if self.paging() {
                None
            } else {
                crate::translate::wide_group_twin(&d.insn, self.block.key.mode, start)
            };
            match wide {
                // Paging off: the twin on `[r13 + base + disp]`.
                Some(twin) => self.ops.extend(twin),
                None => {
                    address(self);
                    self.ops.extend(m.twin);
                }
            }
            self.flip_undefined(&d.insn);
            self.after_twin(&d.insn, fix, ResultAt::Memory(m.width));
        }
        if i == slot.last {
            // The miss path comes back here with the registers in host and every flag in
            // host EFLAGS (which agree with any fix-up, as after a slow path).
            let miss = self.group_misses.iter().rev().find(|m| m.last == i).expect("the group's check came first");
            let back = miss.path.back;
            x64!(self.ops; =>back);
        }
    }

    /// The inline soft-TLB lookup of the `width` bytes at the linear address in R10D (host
    /// EFLAGS clobbered): R10 = their host address on a hit, a jump to `miss` if not.
    ///
    /// While paging is off a linear address is physical, and every RAM page's host address
    /// is R13 (the plain span's start, `Ctx::plain_base`) plus the address less the start.
    /// (A lone load through DS, ES or SS does not come here: `rewritten` checks its 64-bit
    /// address, [`crate::translate::direct_load`].) A load then needs no lookup at all,
    /// only a bounds check against the plain span of RAM ([`Layout::plain_ram`]), where
    /// nothing but RAM lies; a store checks its page's byte in the store map
    /// ([`popek_cpu::Cpu::open_for_stores`]: 1 if the page and the next are RAM, not ROM,
    /// and hold no code), below RAM:
    ///
    /// ```text
    ///   load:  lea r11d, [r10 - start] ; cmp r11d, end - start - width ; ja miss
    ///   store: mov r11d, r10d ; shr r11d, 12 ; cmp byte [r13 + r11 - start - map], 0 ; je miss
    ///   lea r10, [r13 + r10 - start]
    /// ```
    ///
    /// (`rewritten` puts the twin on `[r13 + r10 - start]` instead of the `lea`, where it
    /// can.)
    fn tlb_lookup(&mut self, width: u32, write: bool, miss: DynamicLabel) {
        if self.paging() {
            let addend = self.tlb_check(width, write, miss);
            x64!(self.ops; add r10, QWORD [r15 + r8 + addend]);
            return;
        }
        self.paging_off_check(width, write, miss);
        x64!(self.ops; lea r10, [r13 + r10 - self.plain_ram.0 as i32]);
    }

    /// With paging off, the check of the `width` bytes at the linear address in R10D (host
    /// EFLAGS clobbered): a jump to `miss` unless they lie in the plain span of RAM (a load)
    /// or in one page with a write hit (a store); see [`Emitter::tlb_lookup`].
    fn paging_off_check(&mut self, width: u32, write: bool, miss: DynamicLabel) {
        let (start, end) = self.plain_ram;
        if write {
            // The store map's byte for the first byte's page: 1 if stores may go straight
            // to it and to the next page (`GuestMemory::open_for_stores`).
            debug_assert!(width <= 4096, "an access reaches two pages at most");
            x64!(self.ops; mov r11d, r10d);
            self.store_map_check(false, miss);
        } else if end.saturating_sub(start) < width {
            self.tlb_check(width, write, miss);
        } else {
            x64!(self.ops; lea r11d, [r10 - start as i32]);
            // cmp r11d, imm32 (7 bytes) ; ja rel32 (6)
            self.pad_for_branch(13);
            x64!(self.ops
                ; cmp r11d, (end - start - width) as i32
                ; ja =>miss
            );
        }
    }

    /// The store map's check of the address in R11 (a store with paging off): its page's
    /// byte, a jump to `miss` if it is 0. `signed`: R11 holds a 64-bit address that may lie
    /// below 0 or above 4 GiB (where the map's bytes are all 0); else a 32-bit one.
    ///
    /// ```text
    ///   sar r11, 12 (shr r11d, 12) ; cmp byte [r13 + r11 + PAGE0 - MAP - start], 0 ; je miss
    /// ```
    fn store_map_check(&mut self, signed: bool, miss: DynamicLabel) {
        if signed {
            x64!(self.ops; sar r11, 12);
        } else {
            x64!(self.ops; shr r11d, 12);
        }
        let disp = popek_cpu::STORE_MAP_PAGE0 as i64 - popek_cpu::STORE_MAP_BYTES as i64 - i64::from(self.plain_ram.0);
        // cmp byte [r13 + r11 + disp32], 0 (9 bytes) ; je rel32 (6)
        self.pad_for_branch(15);
        x64!(self.ops
            ; cmp BYTE [r13 + r11 + disp as i32], 0
            ; je =>miss
        );
    }

    /// The soft-TLB check of the `width` bytes at the linear address in R10D: a jump to
    /// `miss` unless they lie in one page whose entry hits (for a write if `write`); on a
    /// hit R8 = the entry's offset in its set, and the result is the offset of its addend
    /// from R15 + R8.
    fn tlb_check(&mut self, width: u32, write: bool, miss: DynamicLabel) -> i32 {
        let user = (self.block.key.mode >> 1) & 3 == 3;
        let tag =
            tlb_off(user) + if write { offset_of!(TlbEntry, write_tag) } else { offset_of!(TlbEntry, read_tag) } as i32;
        if width == 1 {
            x64!(self.ops; mov r11d, r10d);
        } else {
            x64!(self.ops; lea r11d, [r10 + (width as i32 - 1)]);
        }
        x64!(self.ops
            ; and r11d, !0xfff
            ; mov r8d, r10d
            ; shr r8d, 7
            ; and r8d, ((TLB_ENTRIES - 1) << 5) as i32
        );
        // cmp r11d, [r15 + r8 + disp32] (8 bytes) ; jne rel32 (6)
        self.pad_for_branch(14);
        x64!(self.ops
            ; cmp r11d, DWORD [r15 + r8 + tag]
            ; jne =>miss
        );
        tlb_off(user) + offset_of!(TlbEntry, addend) as i32
    }

    /// A near CALL or JMP through a register or memory, the block's last instruction: the
    /// target (read inline through the soft TLB, for memory) into EIP, CALL's return address
    /// pushed inline, and the block ends through the indirect-target table, as after RET.
    /// Either lookup missing sends the whole instruction to its handler.
    ///
    /// ```text
    ///   call reg:   mov [eip], reg
    ///   call [m]:   lea r10d, [m] ; <lookup, read 4> ; mov r11d, [r10] ; mov [eip], r11d
    ///   lea r10d, [r12 - 4] ; <lookup, write 4> ; mov dword [r10], return address
    ///   lea r12d, [r12 - 4]
    /// ```
    fn indirect_branch(&mut self, i: usize, d: &DecodedInsn<JitInsn>) {
        let address = crate::translate::indirect_branch_address(&d.insn).expect("classified rewritten");
        self.registers_to_host();
        self.lazy_cmp = None;
        self.flag_source = None;
        self.spill_flags();
        let (slow, back) = (self.ops.fresh_label(), self.ops.fresh_label());
        match address {
            None => store32(self.ops, host_number(d.insn.op0_register()), EIP_OFF),
            Some(lea) => {
                self.ops.extend(lea);
                self.tlb_lookup(4, false, slow);
                x64!(self.ops; mov r11d, DWORD [r10]);
                store32(self.ops, 11, EIP_OFF);
            }
        }
        if d.insn.mnemonic() == Mnemonic::Call {
            let ret = self.runtime_eip(d.insn.next_ip32());
            x64!(self.ops; lea r10d, [r12 - 4]);
            self.tlb_lookup(4, true, slow);
            x64!(self.ops
                ; mov DWORD [r10], ret as i32
                ; lea r12d, [r12 - 4]
            );
        }
        x64!(self.ops; =>back);
        self.slow_paths.push(SlowPath::handler(slow, back, i, None));
    }

    /// Whether the block runs with paging on ([`BlockKey::PAGING`]).
    fn paging(&self) -> bool {
        self.block.key.mode & BlockKey::PAGING != 0
    }

    /// What to add to a decoded EIP to get the EIP it runs at.
    fn shift(&self) -> u32 {
        self.eip.wrapping_sub(self.block.eip)
    }

    /// Where decoded EIP `decoded` runs (16-bit code wraps at 64 KiB).
    fn runtime_eip(&self, decoded: u32) -> u32 {
        let eip = decoded.wrapping_add(self.shift());
        if self.block.key.mode & 1 != 0 { eip } else { eip & 0xffff }
    }

    /// An inline JMP/Jcc, the block's last instruction: each path ends the block on its
    /// own, on to its EIP.
    fn branch(&mut self, d: &DecodedInsn<JitInsn>) {
        let fall = self.runtime_eip(d.insn.next_ip32());
        let target = self.runtime_eip(d.insn.near_branch32());
        self.registers_to_host();
        let other = self.ops.fresh_label();
        if d.insn.mnemonic() == Mnemonic::Loop {
            // LOOP: ECX - 1 and a jump unless it is 0, without touching the flags.
            // (The `lea` zero-extends into RCX, so JRCXZ tests ECX.)
            x64!(self.ops
                ; lea ecx, [rcx - 1]
                ; jrcxz >fall
                ; jmp =>other
                ; fall:
            );
            self.two_ends(fall, other, target);
        } else if d.insn.condition_code() == ConditionCode::None {
            self.spill_flags_at_end();
            self.block_end(target);
        } else {
            self.flags_for(x86_flags(d.insn.rflags_read()));
            self.pad_for_branch(6);
            if d.insn.near_branch32() <= d.insn.ip32() {
                // A branch back (a loop's) is mostly taken: the taken path follows inline,
                // where the host's jcc falls through to it, and only leaving the loop jumps.
                emit_jcc(self.ops, negated(d.insn.condition_code()), other);
                self.two_ends(target, other, fall);
            } else {
                emit_jcc(self.ops, d.insn.condition_code(), other);
                self.two_ends(fall, other, target);
            }
        }
    }

    /// The two ends of a block after a conditional branch: inline, the end on to EIP
    /// `inline`; at `jumped`, where the branch jumps, the end on to EIP `jumped_eip`. Each
    /// leaves the flags as the branch found them.
    fn two_ends(&mut self, inline: u32, jumped: DynamicLabel, jumped_eip: u32) {
        let at_branch = self.state();
        let flat = self.block.key.mode & popek_cpu::block::BlockKey::FLAT != 0;
        let looped = match self.lazy_cmp {
            Some((a, b))
                if flat
                    && inline == self.eip
                    && self.host_flags == ARITH
                    && !self.of_sf_cf
                    && self.host_zero & !AF == 0 =>
            {
                self.loop_back(a, b, jumped)
            }
            _ => false,
        };
        if !looped {
            self.spill_flags_at_end();
            self.block_end(inline);
        }
        self.set_state(at_branch);
        x64!(self.ops; =>jumped);
        self.spill_flags_at_end();
        self.block_end(jumped_eip);
    }

    /// The end of a block that goes on to the constant EIP `next`, with the flags in
    /// `CpuState` and the registers in host registers: count its instructions, then
    /// either chain to the next block's translation — if the budget allows and a link
    /// was made — or return to the run loop with EIP set.
    ///
    /// A target on the block's own page is reached by a `jmp rel32` that linking patches
    /// (valid as long as this block runs: its page is mapped where it was). Any other
    /// target goes through a link checked against the TLB generation it was made under.
    fn block_end(&mut self, next: u32) {
        // One exit stub for both ways out: the shared `chain_exit` tells them apart by
        // the budget (a miss is only reached with budget left).
        let miss = self.ops.fresh_label();
        if !self.chainable {
            store32_imm(self.ops, EIP_OFF, next);
        }
        let flat = self.block.key.mode & popek_cpu::block::BlockKey::FLAT != 0;
        if flat && next == self.eip && self.chainable {
            // A loop onto the block itself: straight back to its body while the budget
            // lasts (no link: this code only runs while the block is in the cache), else
            // out through the exit stub.
            self.again_within_budget(self.body, miss);
            self.unlinked_exit(miss, None);
            return;
        }
        if !self.charge_budget(miss) {
            return;
        }
        let site = self.next_site;
        self.next_site += 1;
        if flat && next >> 12 == self.eip >> 12 {
            self.pad_for_branch(5);
            x64!(self.ops; jmp =>miss);
            // The displacement is the jump's last 4 bytes.
            self.sites.push(Some(self.ops.offset().0 - 4 - self.base));
        } else {
            self.sites.push(None);
            x64!(self.ops; mov r8, QWORD [r14 + offset_of!(Ctx, links) as i32]);
            self.follow_link(site as i32 * std::mem::size_of::<ChainLink>() as i32, miss);
        }
        self.stubs.push(Stub { label: miss, eip: next, site, pending: None });
    }

    /// Charges the block's instructions to the budget (R9) and goes back to `to` (a loop's
    /// start) if some is left; else on to `out_of_budget`.
    ///
    /// ```text
    ///   sub r9, n ; jg to ; jmp out_of_budget
    /// ```
    fn again_within_budget(&mut self, to: DynamicLabel, out_of_budget: DynamicLabel) {
        let n = self.block.insns.len() as i32;
        // sub r9, imm32 (7 bytes) ; jg rel32 (6)
        self.pad_for_branch(13);
        x64!(self.ops
            ; sub r9, n
            ; jg =>to
            ; jmp =>out_of_budget
        );
    }

    /// The exit stub at `label`, on to this block's EIP, with a chain site of its own that
    /// nothing links (it is only reached out of budget): `pending`, flags it stores first.
    fn unlinked_exit(&mut self, label: DynamicLabel, pending: Option<(u8, LazyOperand)>) {
        self.stubs.push(Stub { label, eip: self.eip, site: self.next_site, pending });
        self.next_site += 1;
        self.sites.push(None);
    }

    /// Charges the block's instructions to the budget (R9). A block that may not chain
    /// returns to the run loop (EIP set) through the shared `ret_store`; otherwise the
    /// code goes to `out_of_budget` if the budget ran out and on to chain if not (the
    /// return value: true).
    fn charge_budget(&mut self, out_of_budget: DynamicLabel) -> bool {
        let n = self.block.insns.len() as i32;
        if !self.chainable {
            x64!(self.ops
                ; sub r9, n
                ; mov r10d, self.id as i32
            );
            self.branch_to_shared(JMP, self.shared.ret_store);
            return false;
        }
        // sub r9, imm32 (7 bytes) ; jle rel32 (6)
        self.pad_for_branch(13);
        x64!(self.ops
            ; sub r9, n
            ; jle =>out_of_budget
        );
        true
    }

    /// Follows the link at `[r8 + link]` if it was made under the current TLB
    /// generation; else on to `miss`. An unlinked link (all zero) never matches: the TLB
    /// generation starts at 1.
    fn follow_link(&mut self, link: i32, miss: DynamicLabel) {
        x64!(self.ops; mov r10, QWORD [r15 + TLB_GENERATION_OFF]);
        // cmp r10, [r8 + disp32] (7 bytes) ; jne rel32 (6) ; jmp [r8 + disp32] (7)
        self.pad_for_branch(20);
        x64!(self.ops
            ; cmp r10, QWORD [r8 + link + offset_of!(ChainLink, tlb_generation) as i32]
            ; jne =>miss
            ; jmp QWORD [r8 + link + offset_of!(ChainLink, code) as i32]
        );
    }

    /// The end of a block whose next EIP is only known at run time (RET, or an indirect
    /// JMP/CALL, which set EIP):
    /// after the usual count and budget, look the target up in the indirect-target table
    /// and jump straight into its translation on a hit; on a miss return to the run loop,
    /// which fills the entry.
    ///
    /// ```text
    ///   r11d = EIP ; r8 = table + indirect_index(EIP) * 32 (a multiplicative hash)
    ///   cmp r11d, [r8].eip ; cmp MODE, [r8].mode
    ///   follow [r8].link (as a checked chain site does)
    /// ```
    fn indirect_end(&mut self) {
        // Out of budget or a miss: the shared `chain_exit` tells them apart.
        let miss = self.ops.fresh_label();
        if !self.charge_budget(miss) {
            return;
        }
        self.indirect_lookup(LookupMode::Constant(self.block.key.mode), miss);
    }

    /// The lookup of EIP (in `CpuState`) in the indirect-target table, in the mode `mode`
    /// says, and the jump into the translation on a hit; on a miss (at `miss`, which this
    /// binds) back to the run loop through the shared `chain_exit`, which fills the entry.
    fn indirect_lookup(&mut self, mode: LookupMode, miss: DynamicLabel) {
        x64!(self.ops
            ; mov r11d, DWORD [r15 + EIP_OFF]
            ; imul r8d, r11d, INDIRECT_HASH as i32
            ; shr r8d, (32 - INDIRECT_BITS) as i8
            ; shl r8d, 5
            ; add r8, QWORD [r14 + offset_of!(Ctx, indirect) as i32]
            ; cmp r11d, DWORD [r8 + offset_of!(IndirectEntry, eip) as i32]
            ; jne =>miss
        );
        match mode {
            LookupMode::Constant(m) => {
                x64!(self.ops; cmp DWORD [r8 + offset_of!(IndirectEntry, mode) as i32], m as i32)
            }
            LookupMode::R10 => x64!(self.ops; cmp r10d, DWORD [r8 + offset_of!(IndirectEntry, mode) as i32]),
        }
        x64!(self.ops; jne =>miss);
        self.follow_link(offset_of!(IndirectEntry, link) as i32, miss);
        x64!(self.ops
            ; =>miss
            ; mov r10d, self.id as i32
            ; mov r8, -1 // INDIRECT_MISS
        );
        self.branch_to_shared(JMP, self.shared.chain_exit);
    }

    /// The end of a block whose last instruction is an INT or IRET callout (flags and
    /// registers in `CpuState`): if the callout left a mode in the context's `go_on_mode`
    /// (the run loop has nothing to look at), the registers go back to host registers and
    /// the next block is looked up in the indirect-target table, as after RET, but in that
    /// mode; otherwise, or with the budget gone, back to the run loop. A system call then
    /// goes into the kernel's handler, and back out, without leaving translated code.
    ///
    /// ```text
    ///   mov r10d, [go_on_mode] ; cmp r10d, NO_MODE ; je back
    ///   sub r9, n ; jle out ; call load_regs
    ///   r11d = EIP ; r8 = table + indirect_index(EIP) * 32
    ///   cmp r11d, [r8].eip ; cmp r10d, [r8].mode ; follow [r8].link
    /// out: (registers in host) chain_exit ; back: ret_end
    /// ```
    fn go_on_end(&mut self) {
        let n = self.block.insns.len() as i32;
        let (back, out) = (self.ops.fresh_label(), self.ops.fresh_label());
        x64!(self.ops
            ; mov r10d, DWORD [r14 + offset_of!(Ctx, go_on_mode) as i32]
            ; cmp r10d, crate::NO_MODE as i32
            ; je =>back
        );
        self.registers_to_host();
        self.pad_for_branch(13);
        x64!(self.ops
            ; sub r9, n
            ; jle =>out
        );
        self.indirect_lookup(LookupMode::R10, out);
        x64!(self.ops
            ; =>back
            ; sub r9, n
            ; mov r10d, self.id as i32
        );
        self.branch_to_shared(JMP, self.shared.ret_end);
    }

    /// Everything after the last instruction: the block's own end unless a branch ended
    /// it, then the shared exits and the epilogue.
    /// On a slow path: the flags that were pushed (or are to be set again) before the
    /// lookup into `CpuState`, into R10D (popped, or set again and read as a spill does),
    /// then stored as a spill stores them.
    fn store_pushed_flags(&mut self, f: PushedFlags) {
        if f.unneeded {
            return;
        }
        if let Some(source) = f.recompute {
            source.emit(self.ops);
            emit_read_host_flags(self.ops, false);
        } else {
            // As `emit_read_host_flags` turns what `lahf` and `seto` gave into EFLAGS order.
            x64!(self.ops
                ; movzx r10d, WORD [r14 + offset_of!(Ctx, saved_flags) as i32]
                ; shl r10b, 3
                ; rol r10w, 8
                ; movzx r10d, r10w
            );
        }
        emit_store_flags(self.ops, f.held, f.zero, f.lazy);
    }

    /// R10D = the linear address of a check made in 64 bits, for a refill: `lea32` works
    /// it out in R10D, `lea64` in R11; if they differ (the address wrapped), R10D = all
    /// ones, on a page no refill opens.
    fn linear_for_refill(&mut self, (lea32, lea64): (Vec<u8>, Vec<u8>)) {
        self.ops.extend(lea32);
        self.ops.extend(lea64);
        x64!(self.ops
            ; cmp r11, r10
            ; je >same
            ; mov r10d, -1
            ; same:
        );
    }

    /// A slow path that tries a refill first (`refill_what` = `what`): R10D holds the
    /// linear address (the check missed before adding an addend). If the refill makes the
    /// check hit, the registers are reloaded and the check runs again at `retry`;
    /// otherwise the handler (`index`) has run when this falls through, with the registers
    /// reloaded.
    fn refill_or_handler(&mut self, pushed: Option<PushedFlags>, index: usize, what: u32, retry: DynamicLabel) {
        x64!(self.ops; mov r8d, r10d);
        if let Some(f) = pushed {
            self.store_pushed_flags(f);
        }
        self.handler_args(index);
        x64!(self.ops; mov DWORD [r14 + offset_of!(Ctx, refill_what) as i32], what as i32);
        self.branch_to_shared(CALL, self.shared.refill);
        let handled = self.ops.fresh_label();
        x64!(self.ops
            ; test eax, eax
            ; jnz =>handled
        );
        self.branch_to_shared(CALL, self.shared.load_regs);
        x64!(self.ops
            ; jmp =>retry
            ; =>handled
        );
        self.branch_to_shared(CALL, self.shared.load_regs);
    }

    /// A slow path's out-of-line code, at its label: the handler (or a refill first), then
    /// back.
    fn slow_path(&mut self, p: SlowPath) {
        x64!(self.ops; =>p.label);
        if let Some(leas) = p.address {
            self.linear_for_refill(leas);
        }
        if let Some((a, b)) = p.pending {
            emit_store_lazy_cmp(self.ops, a, b);
        }
        if let Some((what, retry)) = p.refill {
            self.refill_or_handler(p.pushed, p.index, what, retry);
            if p.load_flags {
                emit_load_flags(self.ops);
            }
        } else {
            if let Some(f) = p.pushed {
                self.store_pushed_flags(f);
            }
            self.handler_args(p.index);
            let slow = if p.load_flags { self.shared.slow_flags } else { self.shared.slow };
            self.branch_to_shared(CALL, slow);
        }
        x64!(self.ops; jmp =>p.back);
    }

    fn end(&mut self) {
        let last = self.block.insns.last().expect("a block has an instruction");
        let n = self.block.insns.len();
        let rewritten = last.exec.treatment == Treatment::Rewritten;
        if rewritten && crate::translate::indirect_branch_address(&last.insn).is_some() {
            // CALL or JMP through a register or memory: EIP is the target it stored (or
            // the handler's, after a slow path).
            self.spill_flags_at_end();
            self.registers_to_host();
            self.indirect_end();
        } else if rewritten && is_call_or_ret(&last.insn) {
            // CALL: on to the target; RET: EIP is what it popped. After a slow path the
            // handler has done the same.
            self.spill_flags_at_end();
            self.registers_to_host();
            if last.insn.mnemonic() == popek_cpu::iced_x86::Mnemonic::Call {
                self.block_end(self.runtime_eip(last.insn.near_branch32()));
            } else {
                self.indirect_end();
            }
        } else if last.exec.treatment == Treatment::Helper
            && matches!(last.insn.flow_control(), FlowControl::IndirectBranch | FlowControl::IndirectCall)
        {
            // JMP/CALL through a register or memory (near: far ones are callouts): the
            // helper set EIP; on through the indirect-target table, as after RET.
            self.spill_flags_at_end();
            self.registers_to_host();
            self.indirect_end();
        } else if rewritten && is_inline_branch(&last.insn) {
            // JMP/Jcc/LOOP: `branch` ended the block on each of its paths.
        } else if !last.exec.loud && popek_cpu::block::is_rep_string(&last.insn) {
            // A REP string instruction (a helper) may yield part-way with EIP back at
            // itself: on to whatever EIP it left, through the indirect-target table.
            self.spill_flags_at_end();
            self.registers_to_host();
            self.indirect_end();
        } else if !last.exec.loud && last.insn.flow_control() == FlowControl::Next {
            // The block ran off its end (page boundary, length cap) or ended in an
            // instruction that ends blocks but changes nothing the run loop looks at
            // (CLI, MOV from a control register): on to the next EIP, chained like a jump.
            self.spill_flags_at_end();
            self.registers_to_host();
            let next = self.runtime_eip(self.block.eip.wrapping_add(self.block.len));
            self.block_end(next);
        } else if last.exec.treatment == Treatment::Callout
            && crate::translate::goes_on_inline(&last.insn)
            && self.block.key.mode & popek_cpu::block::BlockKey::FLAT != 0
        {
            // INT or IRET: on in translated code if the callout said so.
            self.go_on_end();
        } else {
            // The block ended in a callout the run loop must see after (or one that set
            // EIP itself): back to the run loop.
            self.spill_flags();
            self.registers_to_memory();
            x64!(self.ops
                ; sub r9, n as i32
                ; mov r10d, self.id as i32
            );
            self.branch_to_shared(JMP, self.shared.ret_end);
        }
        let slow_paths = std::mem::take(&mut self.slow_paths);
        let group_misses = std::mem::take(&mut self.group_misses).into_iter().map(|m| m.path);
        for p in slow_paths.into_iter().chain(group_misses) {
            self.slow_path(p);
        }
        for (other, back) in std::mem::take(&mut self.lazy_loads) {
            self.lazy_load_rest(other, back);
        }
        for stub in std::mem::take(&mut self.stubs) {
            x64!(self.ops; =>stub.label);
            if let Some((a, b)) = stub.pending {
                emit_store_lazy_cmp(self.ops, a, b);
            }
            store32_imm(self.ops, EIP_OFF, stub.eip);
            x64!(self.ops
                ; mov r10d, self.id as i32
                ; mov r8d, stub.site as i32
            );
            self.branch_to_shared(JMP, self.shared.chain_exit);
        }
    }
}
