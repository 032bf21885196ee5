//! popek's x86 CPU core: the architectural state and every mechanism that is
//! not "an instruction": segmentation, paging and the TLB, exception and
//! interrupt delivery, the decoder and the decoded-block cache.
//!
//! ```text
//!            popek-memory (RAM, Bus trait)
//!                   ▲
//!   popek-cpu:  state ─ access (seg checks) ─ mmu (walk, TLB) ─ interrupt (IDT, TSS)
//!               operand (iced operands → values) ─ block (decode, cache, SMC)
//!                   ▲
//!        popek-vmm (sensitive instructions), popek-interp, popek-jit
//! ```
//!
//! Instructions themselves live above: the interpreter and the VMM. This crate
//! never sees a concrete device: port I/O and MMIO go through [`popek_memory::Bus`].

pub mod access;
pub mod block;
mod code_pages;
pub mod exception;
pub mod interrupt;
pub mod mmu;
pub mod operand;
pub mod segment;
pub mod stack;
pub mod state;
pub mod task;

pub use code_pages::CodePages;
pub use exception::{Event, Exception, ExecResult, Unsupported};
pub use iced_x86;
pub use mmu::{AccessKind, Tlb};
pub use popek_memory::{
    AccessSize, Bus, GuestMemory, LinearAddr, NullBus, PhysAddr, Port, STORE_MAP_BYTES, STORE_MAP_PAGE0,
};
pub use state::{CpuState, Seg, SegmentCache};

/// The semantics of one instruction: entered with `state.eip` already at the next
/// instruction; on `Err(Exception)` the caller rewinds EIP to the instruction
/// (faults) and delivers it. Shared by the interpreter, the VMM and the JIT's callouts.
pub type Handler = fn(&mut Cpu, &mut dyn Bus, &iced_x86::Instruction) -> ExecResult;

/// Most elements a REP string instruction (MOVS, STOS, INS, …) processes per execution
/// before it yields: like a real CPU between iterations, it leaves the registers describing
/// the remaining work and EIP at itself ([`Cpu::restart_insn`]), so interrupts, timers and
/// the wall-clock timeout are looked at. Such instructions end their block.
///
/// Each element counts as one retired instruction (as QEMU counts each iteration), so an
/// engine also gives a REP execution fewer elements ([`Cpu::rep_limit`]) when the next
/// timer deadline or the instruction limit is nearer: the run loop sees every iteration.
pub const REP_BUDGET: u32 = 1 << 16;

/// The element limit for a REP string instruction at index `index` of a block entered with
/// `room` instructions left before the run loop must look at the machine (the next timer
/// deadline, the instruction limit): `room - index`, at least one (every execution makes
/// progress) and at most [`REP_BUDGET`]. Both engines use it, so they yield at the same
/// element.
#[inline]
#[allow(clippy::cast_possible_truncation)] // clamped to REP_BUDGET
pub fn rep_limit(room: u64, index: u64) -> u32 {
    room.saturating_sub(index).clamp(1, REP_BUDGET as u64) as u32
}

/// One virtual CPU: architectural state, its RAM, TLB and the set of pages that
/// hold decoded code.
///
/// `#[repr(C)]`, state first and TLB second: translated code reaches both from one
/// pointer at small fixed offsets.
#[repr(C)]
pub struct Cpu {
    /// Architectural registers.
    pub state: CpuState,
    /// Software TLB.
    pub tlb: Tlb,
    /// Guest physical RAM.
    pub mem: GuestMemory,
    /// Physical pages that hold decoded (or translated) code, and which of their bytes.
    pub code_pages: CodePages,
    /// Stores to code bytes since the engine last looked; the blocks holding those bytes
    /// must be dropped before anything else runs.
    pub code_writes: Vec<CodeWrite>,
    /// Counters of stores to code pages.
    pub smc_stats: SmcStats,
    /// An MMIO write may have made an interrupt deliverable
    /// ([`Bus::write_may_open_interrupt_window`]): the engine ends the block after the
    /// instruction (and clears this), so the run loop looks for an interrupt.
    pub interrupt_window: bool,
    /// Elements the next REP string execution may process before it yields (see
    /// [`rep_limit`]); the engine sets it before a block that may end in one.
    pub rep_limit: u32,
    /// Instructions retired by REP string executions beyond the one each counts as: an
    /// execution that processed `n` elements adds `n - 1` (or `n` if it then faulted, as
    /// the faulting element retires nothing). The engine adds it to its count and clears it.
    pub rep_extra: u64,
    /// When `Some`, every interrupt and exception delivered is appended here (tracing and
    /// the debugger turn it on; normal runs leave it off).
    pub deliveries: Option<Vec<interrupt::Delivery>>,
    /// Interrupts and exceptions delivered so far (lockstep compares engines by it where
    /// one ended a step by delivering an exception that retired nothing).
    pub delivered: u64,
    /// The paravirtual interface is on: the hypervisor CPUID leaves answer and VMCALL is
    /// a hypercall (`popek_vmm::hypercall`). Off (a bare P6, [`Cpu::new`]'s default),
    /// those leaves read zeros and VMCALL is #UD. Machine configuration, not
    /// architectural state: it never changes while a guest runs.
    pub paravirt: bool,
}

/// A store that hit decoded code: `len` bytes at physical `phys`, within one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeWrite {
    /// First physical byte written.
    pub phys: u32,
    /// Bytes written (1 to 4096; never past the end of the page).
    pub len: u32,
}

/// Counters of stores to pages that hold decoded code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmcStats {
    /// Stores that hit decoded code bytes (their blocks are dropped).
    pub code: u64,
    /// Stores to other bytes of a page that holds code (nothing is dropped).
    pub data: u64,
}

impl std::fmt::Debug for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cpu").field("state", &self.state).finish_non_exhaustive()
    }
}

impl Cpu {
    /// A CPU in the Multiboot hand-over state with `mem` as RAM.
    pub fn new(mem: GuestMemory) -> Self {
        let pages = mem.size() >> 12;
        Cpu {
            state: CpuState::multiboot(),
            mem,
            tlb: Tlb::default(),
            code_pages: CodePages::new(pages),
            code_writes: Vec::new(),
            smc_stats: SmcStats::default(),
            interrupt_window: false,
            rep_limit: REP_BUDGET,
            rep_extra: 0,
            deliveries: None,
            delivered: 0,
            paravirt: false,
        }
    }

    /// Records a store of `len` bytes at physical `p` to RAM that may hold code: a store
    /// that overlaps decoded code bytes is queued in [`Cpu::code_writes`] (the engine drops
    /// the blocks holding them before running anything else); one to other bytes of a code
    /// page is only counted. Called for every store to a code page (the soft-TLB never
    /// lets one hit), and by the string fast paths after they wrote a run.
    #[inline]
    pub fn note_write(&mut self, p: PhysAddr, len: u32) {
        let (first, last) = (p.0 >> 12, p.0.wrapping_add(len.max(1) - 1) >> 12);
        if self.code_pages.contains(first) || (last != first && self.code_pages.contains(last)) {
            self.note_code_page_write(p, len);
        }
    }

    #[cold]
    fn note_code_page_write(&mut self, p: PhysAddr, len: u32) {
        let mut at = p.0;
        let end = p.0 as u64 + len.max(1) as u64;
        while (at as u64) < end {
            let page = at >> 12;
            let off = at & 0xfff;
            let n = u32::try_from((end - at as u64).min((0x1000 - off) as u64)).expect("at most a page");
            if self.code_pages.contains(page) {
                if self.code_pages.note_store(page, off, n) {
                    self.code_writes.push(CodeWrite { phys: at, len: n });
                    self.smc_stats.code += 1;
                } else {
                    self.smc_stats.data += 1;
                }
            }
            at = at.wrapping_add(n);
            if at == 0 {
                break; // wrapped past 4 GiB
            }
        }
    }

    /// Marks `len` bytes at physical `phys` (within one page) as decoded code, and revokes
    /// TLB write hits to their page if it was not a code page yet.
    pub fn mark_code(&mut self, phys: u32, len: u32) {
        if self.code_pages.mark(phys >> 12, phys & 0xfff, len) {
            self.tlb.protect_phys_page(phys >> 12);
            self.mem.close_for_stores(phys >> 12);
        }
    }

    /// Opens physical page `page` to the translator's plain stores (paging off), where
    /// RAM allows it ([`GuestMemory::open_for_stores`]) and neither it nor the next page
    /// holds code; returns whether the page is open. A page that starts to hold code is
    /// closed again, with the page before it ([`Cpu::mark_code`]).
    pub fn open_for_stores(&mut self, page: u32) -> bool {
        !self.code_pages.contains(page)
            && !self.code_pages.contains(page.wrapping_add(1))
            && self.mem.open_for_stores(page)
    }

    /// Target of a relative branch (`insn` was decoded at some EIP; state.eip is the
    /// next instruction at the EIP it runs at now), wrapped to IP for 16-bit operand size.
    #[inline]
    pub fn branch_target(&self, insn: &iced_x86::Instruction) -> u32 {
        let t = self.state.eip.wrapping_add(insn.near_branch32().wrapping_sub(insn.next_ip32()));
        if insn.op0_kind() == iced_x86::OpKind::NearBranch16 { t & 0xffff } else { t }
    }

    /// Points EIP back at `insn` (entered with EIP at the next instruction), so that it
    /// runs again: how a REP string instruction yields part-way.
    #[inline]
    #[allow(clippy::cast_possible_truncation)] // an instruction is at most 15 bytes long
    pub fn restart_insn(&mut self, insn: &iced_x86::Instruction) {
        let here = self.state.eip.wrapping_sub(insn.len() as u32);
        self.state.eip = if self.state.code32() { here } else { here & 0xffff };
    }

    /// Records that a REP string execution processed `done` elements and then completed
    /// (`faulted == false`: it counts as `done` instructions, at least one) or faulted
    /// (the `done` elements before the fault retired; see [`Cpu::rep_extra`]).
    #[inline]
    pub fn retire_rep(&mut self, done: u32, faulted: bool) {
        self.rep_extra += if faulted { done as u64 } else { (done as u64).saturating_sub(1) };
    }

    /// General register by index, 32 bits.
    #[inline]
    pub fn reg(&self, i: usize) -> u32 {
        self.state.gpr[i]
    }

    /// Sets a general register by index, 32 bits.
    #[inline]
    pub fn set_reg(&mut self, i: usize, v: u32) {
        self.state.gpr[i] = v;
    }
}
