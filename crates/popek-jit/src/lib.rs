//! popek's binary translator: guest basic blocks → x86-64 host code.
//!
//! ```text
//!   BlockCache<JitInsn> ──► Block ──► translate ──► CodeCache (dynasmrt, bounded)
//!        (the same decoded                │
//!         blocks the interpreter runs)    ▼
//!                          host code: prologue · load guest regs/flags
//!                                     · ident instructions (copied, re-encoded)
//!                                     · callouts to the shared handlers (VMM and interpreter)
//!                                     · store guest regs/flags · epilogue
//! ```
//!
//! Inside translated code the eight guest registers live in host registers (EAX, ECX,
//! EDX, EBX, EBP, ESI, EDI map to themselves, ESP to R12D) and host EFLAGS hold the
//! guest's arithmetic flags, so a safe register-only instruction runs as its own host
//! twin. Everything else is a *callout*: the translated code stores the guest registers
//! and calls the very same [`popek_cpu::Handler`] the interpreter uses — the VMM's for
//! sensitive instructions — then reloads them. Exceptions stay precise because a callout
//! sees exactly the interpreter's state, and ident instructions cannot fault.
//!
//! Each instruction's treatment is data ([`Treatment`]), kept with the decoded block, so
//! statistics and (later) `popek explain` can show it.

// Block and instruction lengths are bounded (64 instructions, 15 bytes each), so the
// usize → u32 casts below never truncate.
#![allow(clippy::cast_possible_truncation)]

mod code;
mod explain;
mod shared;
mod translate;

pub use explain::{Translated, explain_current, treatment_with_reason};
pub use translate::{Treatment, classify};

use code::{CodeCache, Entry};
use popek_cpu::block::{Block, BlockCache, BlockKey, FastMap};
use popek_cpu::exception::Event;
use popek_cpu::iced_x86::Mnemonic;
use popek_cpu::state::flags::TF;
use popek_cpu::{Bus, Cpu, Handler, Seg};
use popek_interp::{HasHandler, InterpStats, execute_block};
use std::cell::Cell;
use std::rc::Rc;

/// Default code-cache size in bytes.
pub const DEFAULT_CODE_CACHE: usize = 16 << 20;

/// What the JIT keeps per decoded instruction.
#[derive(Clone, Debug)]
pub struct JitInsn {
    /// The shared semantics (interpreter or VMM handler).
    pub handler: Handler,
    /// How the translator treats the instruction.
    pub treatment: Treatment,
    /// A callout that may change what the run loop looks at between blocks (not
    /// [`translate::is_quiet_callout`]): the run loop must look after it.
    pub loud: bool,
    /// On a block's first instruction: the block's translation, if any.
    entry: Cell<Option<Entry>>,
    /// On a block's first instruction: how many times the block ran.
    pub runs: Cell<u64>,
    /// The block is only ever interpreted: its code keeps being rewritten.
    pub interpret: bool,
}

/// Counters of one translator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitStats {
    /// Guest instructions retired in translated code (and its callouts).
    pub retired: u64,
    /// Blocks executed as translated code.
    pub blocks: u64,
    /// Blocks translated.
    pub translated: u64,
    /// Instructions translated as `ident`.
    pub ident: u64,
    /// Instructions translated as `rewritten` (inline soft-TLB memory access).
    pub rewritten: u64,
    /// Instructions translated as callouts or helper calls.
    pub callouts: u64,
    /// Bytes of host code translated (the shared code not counted): divided by the
    /// instructions translated, the code's density.
    pub host_bytes: u64,
    /// Blocks run by the interpreter instead (single-step, straddling instructions).
    pub interpreted_blocks: u64,
    /// Whole code-cache flushes ([`Jit::flush_code_cache`]). A full cache does not
    /// flush: it evicts its oldest region (`evicted_regions`).
    pub flushes: u64,
    /// Code-cache regions evicted because the cache was full (each the oldest one,
    /// holding translations).
    pub evicted_regions: u64,
    /// Translations evicted with those regions.
    pub evicted: u64,
    /// Translations invalidated because their guest code was written.
    pub invalidated: u64,
    /// Chain sites unlinked because the translation they led to was invalidated.
    pub unlinked: u64,
    /// Chain links patched into translated code.
    pub links: u64,
    /// Exceptions delivered to the guest.
    pub exceptions: u64,
    /// Returns from translated code at a block's end: the budget ran out (a timer is
    /// due, or the instruction limit) or the block may not chain (it has a VMM callout).
    pub exits_end: u64,
    /// Returns to link a chain (or fill the indirect-target table).
    pub exits_chain_miss: u64,
    /// Returns from inside a block: an exception, HLT, written code.
    pub exits_stopped: u64,
    /// Exits and interpreted blocks after which the engine went on by itself (a missing
    /// link, a code write, a quiet interpreted block), without returning to the run loop.
    pub went_on: u64,
    /// Host wall-clock time spent translating blocks, in nanoseconds (for `popek bench`;
    /// unlike the other counters it differs from run to run).
    pub translate_ns: u64,
}

/// The state a callout needs, reached from translated code through one pointer
/// (`#[repr(C)]`: translated code reads fields at their offsets).
#[repr(C)]
struct Ctx<'a> {
    /// The callout function (called through here, so translated code holds no
    /// absolute addresses and disassembles the same in every run).
    callout: extern "sysv64" fn(*mut Ctx<'_>, u32, u32) -> u64,
    /// The fast path of a data-segment load ([`segment_load`]), called the same way.
    segment_load: extern "sysv64" fn(*mut Ctx<'_>, u32) -> u64,
    /// The fast path of an IN of a pure port ([`port_in`]).
    port_in: extern "sysv64" fn(*mut Ctx<'_>, u32) -> u64,
    /// Instructions translated code may still retire before it must return to the run
    /// loop (timers, the instruction limit); chaining stops when it runs out. Translated
    /// code keeps it in R9 and stores it here around callouts and when it leaves.
    budget: i64,
    /// `budget_start - budget` is the number of instructions the blocks that completed in
    /// this call retired (a callout that stops chaining moves both).
    budget_start: i64,
    /// Instructions left before the run loop must look at the machine, as the run loop
    /// passed them (not capped at [`MAX_BUDGET`]): with `completed()`, how many elements a
    /// REP string instruction may process ([`popek_cpu::rep_limit`]), as in the interpreter.
    room: u64,
    /// Number of the chain site whose link was missing ([`CHAIN_MISS`]), or
    /// [`INDIRECT_MISS`] for a miss in the indirect-target table.
    chain_site: u64,
    /// The indirect-target table.
    indirect: *const IndirectEntry,
    /// Where each chain site leads ([`code::ChainLink`]).
    links: *const code::ChainLink,
    /// Device time after `n` more retired instructions in this call.
    now: &'a dyn Fn(u64) -> u64,
    /// The TSC at the start of the call: a callout sees it plus the instructions retired.
    tsc: u64,
    cpu: *mut Cpu,
    bus: *mut (dyn Bus + 'a),
    /// The translations, by id (a callout finds its block there).
    translations: &'a [Option<code::Translation>],
    /// Live translations per physical page ([`code::CodeCache::translated_pages`]).
    translated_pages: &'a FastMap<u32, u32>,
    /// Profiling: run counts by translation id.
    counters: *mut u64,
    /// Callout and helper executions by mnemonic.
    callout_counts: &'a mut [u64],
    /// Id of the translation the call ended in.
    last: u32,
    /// Index of the instruction at which the block stopped early.
    stop_index: u32,
    /// Whether that instruction completed (else it raised `event`).
    stop_completed: bool,
    /// The event that stopped it, with the EIP of the instruction.
    event: Option<(Event, u32)>,
    /// Something the run loop must look at happened (a VMM callout, a device touched, a
    /// HLT, an interrupt window): the call ends here and returns to it. A stop only for a
    /// code write does not set it: the engine drops the written blocks and goes on.
    must_return: bool,
    /// The call ended at a block with a VMM callout after which the run loop has nothing
    /// to look at (a software interrupt: it changes the mode, but enables no interrupt;
    /// INVLPG, MOV CR3: they change mappings): the engine may go on, with a lookup.
    may_go_on: bool,
    /// Set by the callout of an INT or IRET that ends its block ([`translate::goes_on_inline`])
    /// when translated code may go on by itself: the mode it is now in (flat segments),
    /// for the block's end to look the next block up in the indirect-target table;
    /// [`NO_MODE`] when it must return to the run loop.
    go_on_mode: u32,
    /// Device time lags the call's first block (the run went on from an earlier entry):
    /// a handler that reaches a device brings it up to date even in the first block.
    time_pending: bool,
    /// The host address of the page a page group's check found, minus its linear base
    /// (the TLB entry's addend), for the group's accesses ([`code`]'s `grouped`).
    group_addend: u64,
    /// Host flags saved before a soft-TLB check that only its slow path needs (`lahf` into
    /// bits 8–15, `seto` into bit 0), for that path to store ([`code`]'s `PushedFlags`).
    saved_flags: u32,
    /// The first operand of the CMP whose flags are lazy (see `lazy`).
    lazy_a: u32,
    /// The CMP's second operand; `lazy` follows it, so that one 64-bit store sets both.
    lazy_b: u32,
    /// Where the guest's arithmetic flags are: [`LAZY_NONE`], in `CpuState`; else they are
    /// lazy: [`LAZY_CMP`], those of `cmp lazy_a, lazy_b` (32 bits: a block end that follows
    /// a CMP stores its operands instead of the flags); [`LAZY_RAW`], those `lahf` and
    /// `seto` gave, in `lazy_a` (AH in bits 8–15, OF in bit 0: any other block end).
    /// [`fold_lazy_flags`] puts them into `CpuState`.
    lazy: u32,
    /// The host address of the first byte of the plain span of guest RAM ([`plain_ram`]),
    /// which translated code keeps in R13: while paging is off, a linear address plus this
    /// less the span's start is the host address of any RAM byte (`code`'s `tlb_lookup`);
    /// the store map lies right below RAM ([`popek_cpu::STORE_MAP_BYTES`]).
    plain_base: u64,
    /// The guest's EFLAGS but the arithmetic flags, as translated code last loaded them
    /// (only a callout changes these bits): a spill of all six arithmetic flags ORs them
    /// in, and MOVS tests DF here.
    eflags_rest: u32,
    /// The soft-TLB refill of a rewritten access's slow path ([`refill`]), called the same
    /// way as `segment_load`.
    refill: extern "sysv64" fn(*mut Ctx<'_>, u32) -> u64,
    /// What that access is: its width in bytes, and [`REFILL_WRITE`] for a write.
    refill_what: u32,
}

/// [`Ctx`]'s `refill_what` for a write.
const REFILL_WRITE: u32 = 1 << 8;

const _: () = assert!(std::mem::offset_of!(Ctx<'static>, lazy) == std::mem::offset_of!(Ctx<'static>, lazy_b) + 4);

/// [`Ctx`]'s `go_on_mode` when translated code may not go on by itself (no mode is all ones).
const NO_MODE: u32 = u32::MAX;

/// [`Ctx`]'s `lazy`: the flags are those of `cmp lazy_a, lazy_b`. It is 0, so that a store
/// of a 64-bit host register (a guest register, zero-extended) into `lazy_b` sets `lazy`
/// too.
const LAZY_CMP: u32 = 0;
/// [`Ctx`]'s `lazy`: the flags are those in `CpuState`.
const LAZY_NONE: u32 = 1;
/// [`Ctx`]'s `lazy`: the flags are in `lazy_a`, as `lahf` (bits 8–15) and `seto` (bit 0)
/// gave them.
const LAZY_RAW: u32 = 2;

impl Ctx<'_> {
    /// Instructions retired by the blocks that completed in this call.
    fn completed(&self) -> u64 {
        (self.budget_start - self.budget) as u64
    }

    /// No more chaining in this call: the run loop must look at the machine first.
    fn stop_chaining(&mut self) {
        self.budget_start -= self.budget;
        self.budget = 0;
    }
}

/// Translated code returns this when it ran to the end of the block.
const RAN_TO_END: u64 = 0;
/// ... and this when a callout stopped it (see `Ctx::stop_index`).
const STOPPED: u64 = 1;
/// ... and this when it wanted to chain to a block it has no link to yet.
const CHAIN_MISS: u64 = 2;

/// Set in the instruction index a slow path passes to the callout: run every instruction
/// from the index in bits 0–11 to the one in bits 12–23 in its handler, in turn (a page
/// group's check missed: the accesses it would have served, and what lies between).
const RANGE: u32 = 1 << 31;

/// `Ctx::chain_site` after a miss in the indirect-target table.
const INDIRECT_MISS: u64 = u64::MAX;

/// Entries of the indirect-target table: a power of two, with room for every function of a
/// large guest (calls through function pointers land on thousands of distinct targets):
/// 512 KiB, mapped only where entries are filled.
const INDIRECT_ENTRIES: usize = 1 << INDIRECT_BITS;
/// log2 of [`INDIRECT_ENTRIES`].
const INDIRECT_BITS: u32 = 14;
/// The multiplier of [`indirect_index`] (2^32 / the golden ratio, odd).
const INDIRECT_HASH: u32 = 0x9e37_79b1;

/// The entry of the indirect-target table for target `eip`: the top bits of a
/// multiplicative hash, so that targets at aligned addresses (functions, each 16 bytes
/// apart or more) spread over the whole table instead of piling on a few entries.
fn indirect_index(eip: u32) -> usize {
    (eip.wrapping_mul(INDIRECT_HASH) >> (32 - INDIRECT_BITS)) as usize
}

/// One entry of the indirect-target table: where translated code goes when a RET lands
/// on `eip` in `mode` under the TLB generation of its link (32 bytes, read by translated
/// code).
#[repr(C, align(32))]
#[derive(Clone, Copy, Debug)]
struct IndirectEntry {
    eip: u32,
    /// Block mode, or `u32::MAX` for an empty entry.
    mode: u32,
    /// Where translated code goes, as from a chain site.
    link: code::ChainLink,
}

impl IndirectEntry {
    /// All zero: its link is unlinked (a TLB generation of 0 never matches), so it never
    /// leads anywhere, and a table of them comes from zeroed memory, which the host maps
    /// only where it is written.
    const EMPTY: IndirectEntry = IndirectEntry { eip: 0, mode: 0, link: code::ChainLink::UNLINKED };
}

const _: () = assert!(std::mem::size_of::<IndirectEntry>() == 32);

/// An indirect-target table of [`IndirectEntry::EMPTY`] entries, in zeroed memory.
fn empty_indirect_table() -> Box<[IndirectEntry; INDIRECT_ENTRIES]> {
    // SAFETY: all-zero bytes are a valid `IndirectEntry` (integers only), and the empty one.
    let table = unsafe { code::zeroed_table(INDIRECT_ENTRIES) };
    table.try_into().expect("INDIRECT_ENTRIES entries")
}

/// Most instructions translated code runs in one call when no timer is due. The run loop
/// looks at the wall clock (`--timeout`) between calls, so one call must stay well under a
/// millisecond: 65,536 instructions are some 30 µs of chained translated code, under a
/// millisecond even if all of them were helpers. (Each element of a REP string instruction
/// counts as an instruction and is charged to the budget.) The budget only decides at
/// which block boundary a chain returns to the run loop — one where the interpreter
/// returns too — so it changes nothing the guest sees.
pub const MAX_BUDGET: u64 = 1 << 16;

/// A chain site to link once the block it leads to has been looked up.
#[derive(Clone, Copy, Debug)]
struct PendingLink {
    site: usize,
    /// The translation the site is in (id, stamp): the link is only made if it is
    /// still live (not evicted to make room for the translation the site leads to).
    from: (u32, u64),
    tlb_generation: u64,
    eip: u32,
    cs_base: u32,
    mode: u32,
}

/// The translator engine: a decoded-block cache whose blocks carry their translations.
pub struct Jit {
    cache: BlockCache<JitInsn>,
    code: CodeCache,
    /// Counters.
    pub stats: JitStats,
    /// Counters of the blocks interpreted instead of translated.
    pub interp_stats: InterpStats,
    /// Executions of callouts and helpers, indexed by the instruction's mnemonic.
    callout_counts: Vec<u64>,
    pending_link: Option<PendingLink>,
    /// Where RETs go without leaving translated code (entries into translations that go
    /// are emptied).
    indirect: Box<[IndirectEntry; INDIRECT_ENTRIES]>,
    /// How many times the code at each block key was invalidated (written). Code rewritten
    /// again and again is interpreted instead of translated: translating it costs more
    /// than the interpreter's decode, and the translation would not live to pay it back.
    rewritten_code: FastMap<BlockKey, u32>,
    /// The translation log, when it is on ([`Jit::set_translation_log`]).
    translation_log: Option<Vec<Translated>>,
    /// Which `IN reg, imm8` read a port purely ([`Bus::port_read_is_pure`]), by port: bit
    /// 0, 1, 2 for a byte, word, dword. Asked of the bus at the first run.
    pure_in: Option<Box<[u8; 256]>>,
}

/// Invalidations after which the code at a block key is interpreted, not translated.
const REWRITTEN_CODE_LIMIT: u32 = 2;

impl HasHandler for JitInsn {
    #[inline(always)]
    fn handler(&self) -> Handler {
        self.handler
    }
}

/// Why the translator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// The host refused the code buffer.
    #[error("cannot map the JIT code cache")]
    CodeBuffer(#[from] std::io::Error),
}

impl Jit {
    /// A translator with a code cache of `code_bytes` bytes.
    pub fn new(code_bytes: usize) -> Result<Self, JitError> {
        Ok(Jit {
            cache: BlockCache::default(),
            code: CodeCache::new(code_bytes)?,
            stats: JitStats::default(),
            interp_stats: InterpStats::default(),
            callout_counts: vec![0; Mnemonic::values().count()],
            pending_link: None,
            indirect: empty_indirect_table(),
            rewritten_code: FastMap::default(),
            translation_log: None,
            pure_in: None,
        })
    }

    /// Turns the translation log on (empty) or off. While it is on, every block the
    /// translator translates is recorded as a [`Translated`] until
    /// [`Jit::take_translations`] takes it (`popek run --trace translate`).
    pub fn set_translation_log(&mut self, on: bool) {
        self.translation_log = on.then(Vec::new);
    }

    /// The translations made since the last call, oldest first (none while the log is off).
    pub fn take_translations(&mut self) -> Vec<Translated> {
        self.translation_log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// How many times callouts and helpers ran, by mnemonic and treatment, most
    /// frequent first.
    pub fn callouts_by_instruction(&self) -> Vec<(Mnemonic, u64)> {
        let mut v: Vec<_> =
            Mnemonic::values().zip(self.callout_counts.iter().copied()).filter(|&(_, n)| n > 0).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| (a.0 as u32).cmp(&(b.0 as u32))));
        v
    }

    /// Counters of the decoded-block cache.
    pub fn cache_stats(&self) -> popek_cpu::block::BlockCacheStats {
        self.cache.stats
    }

    /// Instructions retired by this engine (translated code and interpreted blocks).
    pub fn retired(&self) -> u64 {
        self.stats.retired + self.interp_stats.retired
    }

    /// Executes the block at CS:EIP; returns the number of instructions retired. Guest
    /// exceptions are delivered here; host-side events come back as `Err`, exactly as
    /// from [`popek_interp::Interpreter::run_block`].
    pub fn run_block(&mut self, cpu: &mut Cpu, bus: &mut dyn Bus) -> Result<u32, Event> {
        // One block (no chaining), and a REP string instruction gets as many elements as
        // under `Interpreter::run_block`.
        self.run_chained(cpu, bus, 1, u64::MAX, &|_| 0)
    }

    /// Like [`Jit::run_block`], but translated blocks that end in a direct jump may chain
    /// straight into the next block's translation while fewer than `budget` instructions
    /// have retired — the run loop passes the instructions left before the next timer
    /// deadline, so it still sees every block boundary at which something can happen.
    /// `now(n)` is the device time after `n` more instructions: a handler in a chained
    /// block that reaches a device first brings the bus to the time the run loop would
    /// have set before that block.
    pub fn run(
        &mut self,
        cpu: &mut Cpu,
        bus: &mut dyn Bus,
        budget: u64,
        now: &dyn Fn(u64) -> u64,
    ) -> Result<u32, Event> {
        self.run_chained(cpu, bus, budget, budget, now)
    }

    /// [`Jit::run`] with chaining limited by `budget` (at most [`MAX_BUDGET`]) and REP
    /// string elements by `room` (see [`popek_cpu::rep_limit`]).
    ///
    /// Where translated code wanted to chain but had no link yet (a block not translated
    /// yet, or one that is interpreted), the run goes on here, inside the same call: the
    /// next block is looked up (and linked, or interpreted) without a trip through the run
    /// loop, which would find nothing to do at that boundary. An interpreted block goes on
    /// the same way when it ran whole without anything the run loop must see.
    fn run_chained(
        &mut self,
        cpu: &mut Cpu,
        bus: &mut dyn Bus,
        budget: u64,
        room: u64,
        now: &dyn Fn(u64) -> u64,
    ) -> Result<u32, Event> {
        let mut total = 0u32;
        loop {
            // Each entry moves the TSC on by what it retired, as the interpreter does.
            let done = u64::from(total);
            let went_on = done > 0;
            let Some((retired, more)) =
                self.run_once(cpu, bus, budget - done, room.saturating_sub(done), &|n| now(done + n), went_on)?
            else {
                // Not entered: the run loop runs that block.
                return Ok(total);
            };
            total += retired;
            if !more || u64::from(total) >= budget || retired == 0 {
                return Ok(total);
            }
            self.stats.went_on += 1;
        }
    }

    /// One entry into translated code (or one interpreted block): the instructions
    /// retired, and whether the run may go on at the block boundary it ended at.
    /// `went_on`: the run went on from an earlier entry in the same call, so device time
    /// is not yet at `now(0)` (the run loop brought it to the call's start).
    fn run_once(
        &mut self,
        cpu: &mut Cpu,
        bus: &mut dyn Bus,
        budget: u64,
        room: u64,
        now: &dyn Fn(u64) -> u64,
        went_on: bool,
    ) -> Result<Option<(u32, bool)>, Event> {
        if !cpu.code_writes.is_empty() {
            self.drop_written(cpu);
        }
        let plain = Some(plain_ram(&cpu.mem));
        if self.code.plain_ram != plain {
            // Translations read the plain span of RAM directly: none made for another
            // memory may run on this one.
            if self.code.plain_ram.is_some() {
                self.flush_code_cache();
            }
            self.code.plain_ram = plain;
        }
        cpu.interrupt_window = false;
        let rewritten_code = &self.rewritten_code;
        let pure_in = &**self.pure_in.get_or_insert_with(|| Box::new(translate::pure_in_ports(&*bus)));
        let prepare = &mut |insn: &_, key: &BlockKey| {
            if rewritten_code.get(key).is_some_and(|&n| n >= REWRITTEN_CODE_LIMIT) {
                translate::prepare_interpreted(insn)
            } else {
                let mut j = translate::prepare(insn, key.mode);
                // An IN that changes nothing the run loop looks at: the block chains on.
                j.loud &= !translate::reads_pure_port(insn, pure_in);
                j
            }
        };
        let block = match self.cache.lookup(cpu, bus, prepare) {
            Ok(b) => b,
            Err(e) => {
                self.stats.exceptions += 1;
                if went_on {
                    return Ok(None); // the run loop delivers it, at its own step
                }
                cpu.deliver_exception(bus, e)?;
                return Ok(Some((0, false)));
            }
        };
        let cs_limit = cpu.state.seg[popek_cpu::Seg::Cs as usize].limit;
        let eip = cpu.state.eip;
        let straddles = block.pages[0] != block.pages[1];
        let past_limit = (eip as u64 + block.len as u64).saturating_sub(1) > cs_limit as u64;
        let rewritten = block.insns[0].exec.interpret;
        if cpu.state.eflags & TF != 0 || cpu.state.interrupt_shadow || straddles || past_limit || rewritten {
            // Single-stepping (a trap after every instruction), the one instruction in an
            // interrupt shadow (after STI, MOV SS, POP SS: the run loop may take an
            // interrupt right after it), an instruction that straddles two pages, a
            // block running past the CS limit, or code that keeps being rewritten:
            // interpret it.
            let single = cpu.state.eflags & TF != 0 || cpu.state.interrupt_shadow;
            if went_on && (single || has_vmm_callout(block)) {
                return Ok(None);
            }
            let block = Rc::clone(block);
            return self.interpret(cpu, bus, &block, room, now, !single).map(Some);
        }
        // A translation runs at one EIP (its EIP values are constants); the same physical
        // code reached at another EIP (an alias) is translated again for it.
        let entry = match block.insns[0].exec.entry.get().filter(|e| self.code.is_current(*e) && e.eip == eip) {
            Some(e) => e,
            None => {
                let started = std::time::Instant::now();
                let mut dead = Vec::new();
                let translated = self.code.translate(block, eip, &mut dead);
                self.stats.translate_ns += u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                // Evicted to make room: nothing in the indirect-target table may lead there.
                let evicted = dead.len() as u64;
                forget_dead(&mut self.indirect[..], &mut dead);
                let Ok(e) = translated else {
                    // The host refused code memory: the block still runs, interpreted.
                    let block = Rc::clone(block);
                    return self.interpret(cpu, bus, &block, room, now, false).map(Some);
                };
                self.stats.evicted = self.code.evictions.translations;
                self.stats.evicted_regions = self.code.evictions.regions;
                self.stats.translated += 1;
                self.stats.host_bytes += u64::from(self.code.translation(e.id).len);
                for d in &block.insns {
                    match d.exec.treatment {
                        Treatment::Ident => self.stats.ident += 1,
                        Treatment::Rewritten => self.stats.rewritten += 1,
                        Treatment::Callout | Treatment::Helper => self.stats.callouts += 1,
                    }
                }
                block.insns[0].exec.entry.set(Some(e));
                if let Some(log) = &mut self.translation_log {
                    log.push(Translated {
                        block: Rc::clone(block),
                        eip,
                        host_bytes: self.code.translation(e.id).len,
                        evicted,
                        after_deliveries: cpu.deliveries.as_ref().map_or(0, Vec::len),
                    });
                }
                e
            }
        };
        // The previous call stopped at a chain site leading here: link it.
        if let Some(p) = self.pending_link.take() {
            let here = p.eip == eip
                && p.cs_base == cpu.state.seg[popek_cpu::Seg::Cs as usize].base
                && p.mode == block.key.mode
                && p.tlb_generation == cpu.tlb.generation;
            if here {
                if p.site as u64 == INDIRECT_MISS {
                    let link = self.code.link_to(entry, p.tlb_generation);
                    self.indirect[indirect_index(eip)] = IndirectEntry { eip, mode: block.key.mode, link };
                } else {
                    self.code.link(p.from, p.site, entry, p.tlb_generation);
                }
                self.stats.links += 1;
            }
        }
        self.stats.blocks += 1;
        cpu.state.interrupt_shadow = false;
        let budget = i64::try_from(budget.min(MAX_BUDGET)).unwrap_or(1);
        let plain_base = cpu.mem.host_base() as u64 + u64::from(plain_ram(&cpu.mem).0);
        let mut ctx = Ctx {
            room,
            callout,
            segment_load,
            port_in,
            tsc: cpu.state.tsc,
            cpu,
            bus,
            budget,
            budget_start: budget,
            chain_site: 0,
            indirect: self.indirect.as_ptr(),
            links: self.code.links(),
            now,
            translations: &self.code.translations,
            translated_pages: &self.code.translated_pages,
            counters: self.code.counters.as_mut_ptr(),
            callout_counts: &mut self.callout_counts,
            last: entry.id,
            stop_index: 0,
            stop_completed: false,
            event: None,
            must_return: false,
            may_go_on: false,
            go_on_mode: NO_MODE,
            time_pending: went_on,
            group_addend: 0,
            saved_flags: 0,
            lazy: LAZY_NONE,
            lazy_a: 0,
            lazy_b: 0,
            plain_base,
            eflags_rest: 0,
            refill,
            refill_what: 0,
        };
        let status = self.code.call(entry, cpu, &mut ctx);
        fold_lazy_flags(&mut ctx);
        // The block the call ended in (chaining may have moved on from `block`).
        let last_block = &*self.code.translation(ctx.last).block;
        // Translated code that wanted to chain (a link missing), or stopped only to have
        // written code dropped: nothing for the run loop to look at.
        let mut more = (matches!(status, CHAIN_MISS | STOPPED) || status == RAN_TO_END && ctx.may_go_on)
            && ctx.event.is_none()
            && !ctx.must_return;
        let retired = match status {
            STOPPED => {
                self.stats.exits_stopped += 1;
                ctx.completed() as u32 + ctx.stop_index + ctx.stop_completed as u32
            }
            CHAIN_MISS => {
                self.stats.exits_chain_miss += 1;
                // A chain site leads to a block of its own mode; an indirect-target entry is
                // made for the mode the CPU is now in (after an INT or IRET, another).
                let indirect = ctx.chain_site == INDIRECT_MISS;
                self.pending_link = Some(PendingLink {
                    site: ctx.chain_site as usize,
                    from: (ctx.last, self.code.stamp_of(ctx.last).unwrap_or(0)),
                    tlb_generation: cpu.tlb.generation,
                    eip: cpu.state.eip,
                    cs_base: cpu.state.seg[popek_cpu::Seg::Cs as usize].base,
                    mode: if indirect { BlockKey::mode_of(cpu) } else { last_block.key.mode },
                });
                ctx.completed() as u32
            }
            _ => {
                debug_assert_eq!(status, RAN_TO_END);
                self.stats.exits_end += 1;
                ctx.completed() as u32
            }
        };
        self.stats.retired += retired as u64;
        // The TSC goes on to the time of the next instruction, as in the interpreter.
        cpu.state.tsc = ctx.tsc + u64::from(retired);
        if let Some((event, at)) = ctx.event.take() {
            match event {
                Event::Exception(e) => {
                    if !e.is_trap() {
                        cpu.state.eip = at;
                    }
                    self.stats.exceptions += 1;
                    cpu.deliver_exception(bus, e)?;
                    // As after INT: the gate clears IF or leaves it, so nothing became
                    // deliverable that was not before; on with a lookup unless an
                    // interrupt waits (or the delivery shut the CPU down).
                    more = !ctx.must_return
                        && !cpu.state.shutdown
                        && (!cpu.interrupts_enabled() || !bus.interrupt_may_be_pending());
                }
                Event::Unsupported(mut u) => {
                    cpu.state.eip = at;
                    u.eip = at;
                    if u.bytes.is_empty() {
                        let d = &last_block.insns[ctx.stop_index as usize];
                        let off = d.insn.ip32().wrapping_sub(last_block.eip) as usize;
                        u.bytes = last_block.bytes.get(off..off + d.insn.len()).unwrap_or(&[]).to_vec();
                    }
                    return Err(Event::Unsupported(u));
                }
            }
        }
        if !cpu.code_writes.is_empty() {
            self.drop_written(cpu);
        }
        Ok(Some((retired, more)))
    }

    /// Interprets `block` (single-stepping, an interrupt shadow, a block across pages or
    /// the CS limit, code rewritten again and again, or no code memory). The run may go
    /// on after it (`may_go_on`) if it ran whole and did nothing that the run loop must
    /// see: no VMM callout, no device touched, no code written, no exception, no HLT.
    fn interpret(
        &mut self,
        cpu: &mut Cpu,
        bus: &mut dyn Bus,
        block: &Rc<Block<JitInsn>>,
        room: u64,
        now: &dyn Fn(u64) -> u64,
        may_go_on: bool,
    ) -> Result<(u32, bool), Event> {
        self.stats.interpreted_blocks += 1;
        let exceptions = self.interp_stats.exceptions;
        let mut watch = WatchBus { inner: bus, pending_time: Some((now, 0)), touched: false };
        let retired = execute_block(cpu, &mut watch, block, room, &mut self.interp_stats)?;
        let quiet = !watch.touched
            && self.interp_stats.exceptions == exceptions
            && cpu.code_writes.is_empty()
            && !cpu.state.halted
            && !cpu.state.shutdown
            && !std::mem::take(&mut cpu.interrupt_window)
            && !has_vmm_callout(block);
        if !cpu.code_writes.is_empty() {
            self.drop_written(cpu);
        }
        Ok((retired, may_go_on && quiet))
    }

    /// Drops the blocks whose code was written, and their translations: the chain sites
    /// and indirect-target entries that lead into them are unlinked, so nothing reaches
    /// them again. Every other translation stays.
    fn drop_written(&mut self, cpu: &mut Cpu) {
        let dropped = self.cache.invalidate_written(cpu);
        if dropped.is_empty() {
            return;
        }
        let mut dead = Vec::new();
        for b in &dropped {
            self.stats.unlinked += self.code.invalidate(b.key, &mut dead);
            let rewrites = self.rewritten_code.entry(b.key).or_default();
            *rewrites += 1;
            if *rewrites == REWRITTEN_CODE_LIMIT {
                self.cache.set_volatile(b.key);
            }
        }
        self.stats.invalidated += dead.len() as u64;
        forget_dead(&mut self.indirect[..], &mut dead);
    }

    /// Drops every translation at once (the blocks stay decoded and are translated again
    /// when they next run). A full cache does not need this: it evicts its oldest region.
    pub fn flush_code_cache(&mut self) {
        self.code.flush();
        self.pending_link = None;
        self.indirect.fill(IndirectEntry::EMPTY);
        self.stats.flushes += 1;
    }
}

/// Empties the indirect-target entries that lead into the translation bodies at
/// `dead` (translations that went); empties `dead`.
fn forget_dead(indirect: &mut [IndirectEntry], dead: &mut Vec<u64>) {
    if dead.is_empty() {
        return;
    }
    dead.sort_unstable();
    for e in indirect.iter_mut() {
        if e.link.leads_into(dead) {
            *e = IndirectEntry::EMPTY;
        }
    }
    dead.clear();
}

/// The plain span of `mem` as translations take it ([`popek_cpu::GuestMemory::plain_span`]).
/// Translated code keeps the host address of its start in R13 (`Ctx::plain_base`), and
/// its 32-bit displacements subtract the start: a span that starts at 1 GiB or above
/// counts as none, `(0, 0)` (loads then check the soft TLB, and R13 is RAM's address).
pub(crate) fn plain_ram(mem: &popek_cpu::GuestMemory) -> (u32, u32) {
    let (start, end) = mem.plain_span();
    if start < 1 << 30 { (start, end) } else { (0, 0) }
}

/// True if an instruction of `block` is a VMM callout that may change what the run loop
/// looks at (not [`translate::is_quiet_callout`]): a block that returns to the run loop at
/// its end (no chain leads out of it), and that the interpreter does not go on into.
fn has_vmm_callout(block: &Block<JitInsn>) -> bool {
    block.insns.iter().any(|d| d.exec.loud)
}

/// The bus as an ordinary instruction's handler sees it inside translated code: the first
/// access brings device time up to date (`pending_time`) and is remembered.
struct WatchBus<'b> {
    inner: &'b mut dyn Bus,
    /// The time function and the instructions retired so far in this call, when the
    /// run loop has not advanced device time to this block.
    pending_time: Option<(&'b dyn Fn(u64) -> u64, u64)>,
    touched: bool,
}

impl WatchBus<'_> {
    /// Brings device time up to this instruction (once per call).
    fn catch_up(&mut self) {
        if let Some((now, retired)) = self.pending_time.take() {
            self.inner.advance_to(now(retired));
        }
    }

    /// An access the run loop must see: time caught up, and remembered.
    fn touch(&mut self) {
        self.touched = true;
        self.catch_up();
    }
}

impl Bus for WatchBus<'_> {
    fn port_read(&mut self, port: popek_cpu::Port, size: popek_cpu::AccessSize) -> u32 {
        if self.inner.port_read_is_pure(port, size) {
            // As a pure MMIO read: device time up to date, and the block goes on.
            self.catch_up();
        } else {
            self.touch();
        }
        self.inner.port_read(port, size)
    }
    fn port_write(&mut self, port: popek_cpu::Port, size: popek_cpu::AccessSize, value: u32) {
        self.touch();
        self.inner.port_write(port, size, value)
    }
    fn mmio_read(&mut self, addr: popek_cpu::PhysAddr, size: popek_cpu::AccessSize) -> u32 {
        if self.inner.mmio_read_is_pure(addr) {
            // Device time still comes up to date (a timer's current count), but the run
            // loop need not look: the block goes on.
            self.catch_up();
        } else {
            self.touch();
        }
        self.inner.mmio_read(addr, size)
    }
    fn mmio_write(&mut self, addr: popek_cpu::PhysAddr, size: popek_cpu::AccessSize, value: u32) {
        self.touch();
        self.inner.mmio_write(addr, size, value)
    }
    fn advance_to(&mut self, now_ns: u64) {
        self.inner.advance_to(now_ns)
    }
    fn write_may_open_interrupt_window(&self, addr: popek_cpu::PhysAddr) -> bool {
        self.inner.write_may_open_interrupt_window(addr)
    }
    fn mmio_read_is_pure(&self, addr: popek_cpu::PhysAddr) -> bool {
        self.inner.mmio_read_is_pure(addr)
    }
    fn port_read_is_pure(&self, port: popek_cpu::Port, size: popek_cpu::AccessSize) -> bool {
        self.inner.port_read_is_pure(port, size)
    }
    fn read_msr(&mut self, msr: u32) -> Option<u64> {
        self.touch();
        self.inner.read_msr(msr)
    }
    fn write_msr(&mut self, msr: u32, value: u64) -> bool {
        self.touch();
        self.inner.write_msr(msr, value)
    }
    fn set_ferr(&mut self, asserted: bool) {
        self.touch();
        self.inner.set_ferr(asserted)
    }
    fn ignne(&mut self) -> bool {
        self.inner.ignne()
    }
    fn interrupt_may_be_pending(&self) -> bool {
        self.inner.interrupt_may_be_pending()
    }
}

/// Called from translated code for every instruction that is not `ident`: runs the
/// instruction's shared handler with the guest state the translated code just stored.
/// Returns 0 to continue the block, [`STOPPED`] to leave it.
extern "sysv64" fn callout(ctx: *mut Ctx<'_>, index: u32, id: u32) -> u64 {
    // SAFETY: translated code passes the `Ctx` that `Jit::run_block` created on its stack
    // and keeps alive across the call into the block; nothing else references it now.
    let ctx = unsafe { &mut *ctx };
    fold_lazy_flags(ctx);
    if index & RANGE == 0 {
        return run_handler(ctx, index, id);
    }
    let (first, last) = (index & 0xfff, (index >> 12) & 0xfff);
    (first..=last).map(|i| run_handler(ctx, i, id)).find(|&status| status != 0).unwrap_or(0)
}

/// Called from translated code for a MOV to DS, ES, FS or GS from a register, or a POP
/// of one (`what`: [`translate::segment_load_info`]), before its callout: loads the
/// segment and returns 0 if nothing but RAM was read, no translated code was written, and
/// the block mode stays as it was (all the callout would have checked); else changes
/// nothing a second run could see and returns 1, and translated code calls the callout,
/// whose handler runs the instruction in full. The same semantics (`check_data_segment`,
/// `pop_sreg_check` and `pop_sreg_commit`), without the callout's general bookkeeping:
/// an operating system loads four segments on every entry to its kernel, and four again on
/// the way out.
extern "sysv64" fn segment_load(ctx: *mut Ctx<'_>, what: u32) -> u64 {
    // SAFETY: as in `callout`: translated code passes the live `Ctx` of `Jit::run_block`;
    // `cpu` was borrowed by `run_block` for the whole call, and translated code does not
    // touch it while Rust code runs.
    let cpu = unsafe { &mut *(*ctx).cpu };
    let seg = Seg::ALL[(what & translate::SEGMENT_LOAD_SEG) as usize];
    let pop_width = (what & translate::SEGMENT_LOAD_POP) >> translate::SEGMENT_LOAD_POP.trailing_zeros();
    // The common case, in RAM through the TLB.
    let quick = if pop_width != 0 {
        let sp = cpu.sp();
        let top = cpu.seg_check(Seg::Ss, sp, pop_width, popek_cpu::AccessKind::Read).ok();
        let sel = top.and_then(|lin| cpu.read_quick::<2>(lin.0, cpu.user_mode()));
        sel.and_then(|sel| cpu.quick_data_segment(sel as u16))
    } else {
        let r = (what >> translate::SEGMENT_LOAD_REG.trailing_zeros()) as usize & 7;
        cpu.quick_data_segment(cpu.state.gpr[r] as u16)
    };
    let Some(c) = quick.or_else(|| segment_load_checked(cpu, seg, pop_width, what)) else { return 1 };
    // The same base, limit and rights as now (the common case) leave the mode as it is.
    let now = cpu.state.seg(seg);
    let same_mode = (c.base, c.limit, c.access) == (now.base, now.limit, now.access)
        || BlockKey::data_segment_bits(&c) == BlockKey::data_segment_bits(now);
    if !same_mode {
        return 1;
    }
    if pop_width != 0 {
        popek_vmm::pop_sreg_commit(cpu, seg, c, pop_width);
    } else {
        cpu.state.seg[seg as usize] = c;
    }
    // SAFETY: as above; the `cpu` borrow is not used again.
    let ctx = unsafe { &mut *ctx };
    let mnemonic = if pop_width != 0 { Mnemonic::Pop } else { Mnemonic::Mov };
    if let Some(n) = ctx.callout_counts.get_mut(mnemonic as usize) {
        *n += 1;
    }
    0
}

/// Called from the slow path of a rewritten access whose soft-TLB check missed, before its
/// handler, with the access's linear address (`Ctx::refill_what`: its width, and whether it
/// writes): walks the page tables for it, as the handler's access would, and fills the TLB
/// entry. Returns 0 if the check would now hit (a RAM page, for a write one without code
/// or ROM, and the bytes inside one page): translated code then makes the check again and
/// the access inline. Returns 1, with the handler still to run (and make the access, or
/// raise the fault), for anything else: a fault, a device's page, a page table in a
/// device's memory (whose entry it drops again: the walk read all ones there), or a walk
/// that wrote code (its Accessed or Dirty bit in a page that holds some).
///
/// A store with paging off checks the store map instead of the TLB: it opens its page
/// there if it may ([`Cpu::open_for_stores`]), and returns 0 if it did.
extern "sysv64" fn refill(ctx: *mut Ctx<'_>, lin: u32) -> u64 {
    // SAFETY: as in `callout`: translated code passes the live `Ctx` of `Jit::run_block`;
    // `cpu` was borrowed by `run_block` for the whole call, and translated code does not
    // touch it while Rust code runs.
    let (what, cpu) = unsafe { ((*ctx).refill_what, &mut *(*ctx).cpu) };
    let (write, width) = (what & REFILL_WRITE != 0, what & 0xff);
    if write && !cpu.state.paging() {
        // A store with paging off checks the store map, whose byte for its first page
        // covers the next page too.
        return u64::from(!cpu.open_for_stores(lin >> 12));
    }
    if (lin & 0xfff) + width > 0x1000 {
        return 1;
    }
    let user = cpu.user_mode();
    let kind = if write { popek_cpu::AccessKind::Write } else { popek_cpu::AccessKind::Read };
    let mut bus = NoDevices::default();
    let writes = cpu.code_writes.len();
    let walked = cpu.translate(&mut bus, popek_cpu::LinearAddr(lin), kind, user).is_ok();
    if bus.touched {
        // A page table in a device's memory: the walk read all ones, and what it filled is
        // not the guest's mapping. The handler walks again, through the bus.
        cpu.tlb.flush_page(lin);
        return 1;
    }
    if !walked || cpu.code_writes.len() != writes {
        return 1;
    }
    u64::from(cpu.quick_offset(lin, width as usize, user, write).is_none())
}

/// [`segment_load`] off its quick path: the load's full checks, if they pass without a
/// fault, without reaching a device and without writing code (the Accessed bit of a
/// descriptor in a code page), else `None` (the callout's case).
#[cold]
fn segment_load_checked(cpu: &mut Cpu, seg: Seg, pop_width: u32, what: u32) -> Option<popek_cpu::SegmentCache> {
    let mut bus = NoDevices::default();
    let writes = cpu.code_writes.len();
    let checked = if pop_width != 0 {
        popek_vmm::pop_sreg_check(cpu, &mut bus, seg, pop_width)
    } else {
        let r = (what >> translate::SEGMENT_LOAD_REG.trailing_zeros()) as usize & 7;
        cpu.check_data_segment(&mut bus, seg, cpu.state.gpr[r] as u16)
    };
    checked.ok().filter(|_| !bus.touched && cpu.code_writes.len() == writes)
}

/// Called from translated code for an `IN AL/AX/EAX, imm8` of a port whose read changes
/// nothing the run loop looks at (`what`: [`translate::port_in_info`]), before its
/// callout: brings device time to this instruction, as the callout would, and reads the
/// port (`popek_vmm::port_in`: the permission check and the read, as IN's handler does);
/// returns 1, with nothing read, if CPL > IOPL (the TSS bit map is the callout's to read),
/// else 0. A driver that polls a status port does nothing else.
extern "sysv64" fn port_in(ctx: *mut Ctx<'_>, what: u32) -> u64 {
    // SAFETY: as in `callout`: translated code passes the live `Ctx` of `Jit::run_block`.
    let ctx = unsafe { &mut *ctx };
    // SAFETY: `cpu` and `bus` were borrowed by `run_block` for the whole call; translated
    // code does not touch them while Rust code runs.
    let (cpu, bus) = unsafe { (&mut *ctx.cpu, &mut *ctx.bus) };
    if cpu.state.cpl > cpu.state.iopl() {
        return 1;
    }
    let completed = ctx.completed();
    if completed > 0 || ctx.time_pending {
        bus.advance_to((ctx.now)(completed));
    }
    let (port, width) = ((what & 0xffff) as u16, what >> 16);
    if popek_vmm::port_in(cpu, bus, port, width).is_err() {
        return 1; // not reached: CPL <= IOPL needs no check that can fail
    }
    if let Some(n) = ctx.callout_counts.get_mut(Mnemonic::In as usize) {
        *n += 1;
    }
    0
}

/// The bus of a fast path that may not reach a device: every access is refused (a read
/// gets all ones) and remembered, and the instruction is then left to its handler, which
/// makes the access for real.
#[derive(Default)]
struct NoDevices {
    touched: bool,
}

impl Bus for NoDevices {
    fn port_read(&mut self, _: popek_cpu::Port, size: popek_cpu::AccessSize) -> u32 {
        self.touched = true;
        size.ones()
    }
    fn port_write(&mut self, _: popek_cpu::Port, _: popek_cpu::AccessSize, _: u32) {
        self.touched = true;
    }
    fn mmio_read(&mut self, _: popek_cpu::PhysAddr, size: popek_cpu::AccessSize) -> u32 {
        self.touched = true;
        size.ones()
    }
    fn mmio_write(&mut self, _: popek_cpu::PhysAddr, _: popek_cpu::AccessSize, _: u32) {
        self.touched = true;
    }
    fn read_msr(&mut self, _: u32) -> Option<u64> {
        self.touched = true;
        None
    }
    fn write_msr(&mut self, _: u32, _: u64) -> bool {
        self.touched = true;
        false
    }
    fn set_ferr(&mut self, _: bool) {
        self.touched = true;
    }
}

/// Lazy flags ([`Ctx`]'s `lazy`) → `CpuState`: the flags of `cmp lazy_a, lazy_b`, as the
/// interpreter computes them, or those `lahf` and `seto` saved.
fn fold_lazy_flags(ctx: &mut Ctx<'_>) {
    if ctx.lazy != LAZY_NONE {
        use popek_cpu::state::flags::{AF, CF, OF, PF, SF, ZF};
        let flags = if ctx.lazy == LAZY_RAW {
            (ctx.lazy_a >> 8) & (SF | ZF | AF | PF | CF) | if ctx.lazy_a & 1 != 0 { OF } else { 0 }
        } else {
            popek_interp::flags::sub(ctx.lazy_a, ctx.lazy_b, 0, 4).1
        };
        ctx.lazy = LAZY_NONE;
        // SAFETY: `cpu` was borrowed by `run_block` for the whole call; translated code
        // does not touch it while Rust code runs.
        let cpu = unsafe { &mut *ctx.cpu };
        cpu.state.eflags = cpu.state.eflags & !popek_cpu::state::flags::ARITH | flags;
    }
}

/// [`callout`] for one instruction: the `index`th of translation `id`.
fn run_handler(ctx: &mut Ctx<'_>, index: u32, id: u32) -> u64 {
    // SAFETY: `cpu` and `bus` were borrowed by `run_block` for the whole call;
    // translated code does not touch them while a callout runs.
    let (cpu, bus) = unsafe { (&mut *ctx.cpu, &mut *ctx.bus) };
    ctx.last = id;
    let t = ctx.translations[id as usize].as_ref().expect("translated code runs only while its translation lives");
    let (block, block_eip) = (&*t.block, t.eip);
    let d = &block.insns[index as usize];
    if let Some(n) = ctx.callout_counts.get_mut(d.insn.mnemonic() as usize) {
        *n += 1;
    }
    let cur = block_eip.wrapping_add(d.insn.ip32().wrapping_sub(block.eip));
    let next = cur.wrapping_add(d.insn.len() as u32);
    cpu.state.eip = if cpu.state.code32() { next } else { next & 0xffff };
    let stop = |ctx: &mut Ctx<'_>, completed| {
        ctx.stop_index = index;
        ctx.stop_completed = completed;
        STOPPED
    };
    // The TSC reads the virtual time of this instruction, as the interpreter keeps it
    // (every instruction before it in the block retired as one).
    let completed = ctx.completed();
    cpu.state.tsc = ctx.tsc + completed + u64::from(index);
    // A REP string instruction (only ever a block's last) gets the elements the
    // interpreter would give it.
    cpu.rep_limit = popek_cpu::rep_limit(ctx.room.saturating_sub(completed), index as u64);
    cpu.rep_extra = 0;
    // A segment load that changed the block mode: the rest of the block was translated for
    // the old one, so the block ends right after it.
    let mut new_mode = false;
    let result = if d.exec.loud {
        // A sensitive instruction may change what the run loop looks at between blocks
        // (IF, the mode, devices, halting): no chaining from this block. Reached by a
        // chain, it first brings device time to its block's start, where the run loop
        // would have (nothing else the run loop looks at changes in chained code: a
        // device deadline ends chaining through the budget).
        if completed > 0 || ctx.time_pending {
            bus.advance_to((ctx.now)(completed));
        }
        let r = (d.exec.handler)(cpu, bus, &d.insn);
        ctx.go_on_mode = NO_MODE;
        if translate::needs_only_a_lookup(&d.insn) || r.is_ok() && translate::went_quiet(&d.insn, cpu, bus) {
            // Nothing for the run loop to look at: on with a lookup, in translated code
            // itself after an INT or IRET that ends its block (into flat code, not to be
            // single-stepped), else in the engine.
            let mode = BlockKey::mode_of(cpu);
            let inline = translate::goes_on_inline(&d.insn)
                && r.is_ok()
                && !ctx.must_return
                && mode & BlockKey::FLAT != 0
                && cpu.state.eflags & TF == 0
                && !cpu.state.interrupt_shadow;
            if inline {
                ctx.go_on_mode = mode;
            } else {
                ctx.stop_chaining();
                ctx.may_go_on = true;
            }
        } else {
            ctx.stop_chaining();
            ctx.must_return = true;
        }
        r
    } else {
        // An ordinary instruction or a quiet callout: only a device access (MMIO)
        // concerns the run loop.
        let pending_time = (completed > 0 || ctx.time_pending).then_some((ctx.now, completed));
        let mut watch = WatchBus { inner: bus, pending_time, touched: false };
        // A segment load may change the block mode: translated code goes on only if not
        // (only what the mode reads of the segment loaded can change).
        let loaded = translate::loaded_data_segment(&d.insn);
        let bits = loaded.map(|s| BlockKey::data_segment_bits(cpu.state.seg(s)));
        let generation = cpu.tlb.generation;
        let r = (d.exec.handler)(cpu, &mut watch, &d.insn);
        let new_bits = loaded.is_some_and(|s| bits != Some(BlockKey::data_segment_bits(cpu.state.seg(s))));
        new_mode = new_bits && BlockKey::mode_of(cpu) != block.key.mode;
        if watch.touched || new_bits {
            ctx.stop_chaining();
            ctx.must_return = true;
        } else if cpu.tlb.generation != generation {
            // Where code is fetched from changed (INVLPG of a page code was looked up on):
            // no chaining on (a chain on the same page jumps without looking), but only a
            // lookup.
            ctx.stop_chaining();
            ctx.may_go_on = true;
        }
        r
    };
    // Each element of a REP string instruction beyond the first is one more instruction.
    let extra = std::mem::take(&mut cpu.rep_extra);
    ctx.budget -= i64::try_from(extra).unwrap_or(i64::MAX);
    // Code was written. If a translation holds bytes of a written page, nothing chains
    // before what was written has been dropped (when this call returns). Code that no
    // translation is made from (an interpreted block, rewritten again and again) cannot be
    // reached from here: translated code goes on meanwhile. The block itself ends after
    // this instruction only if its own bytes were written, as in the interpreter
    // ([`Block::written_by`]), so that both engines end blocks in the same places.
    let written_translated = !cpu.code_writes.is_empty()
        && cpu.code_writes.iter().any(|w| {
            let end = w.phys.wrapping_add(w.len.max(1) - 1);
            ctx.translated_pages.contains_key(&(w.phys >> 12)) || ctx.translated_pages.contains_key(&(end >> 12))
        });
    if written_translated {
        ctx.stop_chaining();
    }
    // A write to an interrupt controller (the bus says so): the block ends after this
    // instruction, as in the interpreter, so the run loop looks for an interrupt.
    let window = std::mem::take(&mut cpu.interrupt_window);
    ctx.must_return |= window || cpu.state.halted || cpu.state.shutdown;
    match result {
        Ok(()) => {
            let last = index as usize + 1 == block.insns.len();
            let written_own = written_translated && cpu.code_writes.iter().any(|w| block.written_by(w));
            let ends = written_own || new_mode || cpu.state.halted || cpu.state.shutdown || window;
            if !last && ends { stop(ctx, true) } else { 0 }
        }
        Err(e) => {
            ctx.event = Some((e, cur));
            stop(ctx, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use popek_interp::testing::{CODE_BASE, TestBox};

    /// Under endless churn (a loop over far more code than the cache holds) translation
    /// ids, and with them chain sites and profile counters, are reused: the tables stay
    /// as large as what the cache holds at once, however many translations are made.
    #[test]
    fn ids_are_reused_under_churn() {
        // mov ecx, 50 ; L: 300 × (add eax, i ; jmp next) ; dec ecx ; jnz L ; hlt
        let mut code = vec![0xb9, 50, 0, 0, 0];
        let l = CODE_BASE + 5;
        for i in 0..300u32 {
            code.push(0x05);
            code.extend(i.to_le_bytes());
            code.extend([0xeb, 0x00]);
        }
        code.extend([0x49, 0x0f, 0x85]);
        let next = CODE_BASE + code.len() as u32 + 4;
        code.extend(l.wrapping_sub(next).to_le_bytes());
        let mut t = TestBox::new(&code);
        let mut jit = Jit::new(16 << 10).expect("code cache");
        jit.set_profiling(true);
        while !t.cpu.state.halted {
            jit.run(&mut t.cpu, &mut t.bus, 1 << 20, &|_| 0).expect("runs");
        }
        assert_eq!(t.cpu.state.gpr[0], 50 * (0..300).sum::<u32>());
        let s = jit.stats;
        assert!(s.translated > 50 * 100 && s.evicted_regions > 100, "{s:?}");
        let ids = jit.code.translations.len();
        let live = jit.code.translations.iter().flatten().count();
        // (One id per 128 bytes of cache at most: fewer than the loop's 300 blocks.)
        assert!(ids <= (16 << 10) / 128, "ids made: {ids}, live: {live}");
        assert_eq!(jit.code.counters.len(), ids);
        // Every run is counted once, on its block, however often its translation went.
        for i in 1..300 {
            let b = jit.block_at(l + 7 * i).expect("decoded");
            assert_eq!(jit.block_runs(b), 50, "block {i}: {s:?}");
        }
    }
}
