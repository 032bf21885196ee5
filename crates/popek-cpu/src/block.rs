//! Decoder and decoded-block cache.
//!
//! ```text
//!  CS:EIP ─► linear ─► phys (execute access) ─► iced-x86 Decoder ─► Block
//!                                                                     │
//!   BlockCache: (phys, mode) → Rc<Block<E>>     by_page: phys page → keys
//!
//!  in front of it, the jump table:  (CS base + EIP, mode) ─► Rc<Block<E>>
//!  (direct-mapped; emptied when the TLB generation moves, entries to dropped blocks ignored)
//! ```
//!
//! A block is straight-line code that ends at a control transfer, an
//! instruction that can change the CPU mode or interrupt state ([`ends_block`]),
//! a page boundary, or [`MAX_BLOCK_INSNS`]. Each instruction carries an
//! engine-chosen payload `E` (the interpreter stores its handler), computed once
//! at decode time. Blocks are keyed by physical address and mode bits, so the
//! same code reached through two virtual aliases is decoded once; the bytes of every
//! block are marked in [`crate::CodePages`], and a store to them drops the blocks that
//! hold them (self-modifying code) — a store to other bytes of the page drops nothing.
//!
//! The jump table caches the whole CS:EIP → block path (segment base, paging,
//! the hash lookup) for blocks run recently. It is keyed by *linear* address and
//! mode, so it is only as good as the linear → physical mapping it was filled
//! under: every TLB flush bumps [`crate::Tlb::generation`] and the table is
//! emptied when that moves (MOV CR3, INVLPG, CR0/CR4 paging changes). Blocks
//! dropped for self-modifying code are marked dead ([`Block::is_live`]), so a
//! stale table entry to them is never used. The CS limit is still checked on
//! every lookup. Like a real TLB, the table may keep using a translation the
//! guest changed in its page tables without invalidating it (SDM Vol. 3A
//! 4.10.4: until invalidated, either translation may be used). A cache serves
//! one [`Cpu`]: its generation and code pages are that CPU's.

// Offsets inside a block are bounded by the 4 KiB page, so usize → u32 never truncates.
#![allow(clippy::cast_possible_truncation)]

use crate::Cpu;
use crate::exception::Exception;
use crate::mmu::AccessKind;
use iced_x86::{Code, Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic, OpKind, Register};
use popek_memory::{Bus, PhysAddr, Region};
use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

/// Longest block, in instructions.
pub const MAX_BLOCK_INSNS: usize = 64;

/// How guest code is decoded: as popek's CPU (a P6 whose CPUID advertises neither BMI1
/// nor LZCNT) reads it. An F3 prefix that a newer CPU makes part of the opcode is
/// ignored, as the P6 ignores a REP prefix on a non-string instruction (a use SDM Vol. 2A
/// 2.1.1 calls reserved): `F3 0F BC` is BSF, not TZCNT, `F3 0F BD` is BSR, not LZCNT (their SDM
/// pages: "executed as BSF/BSR" without the feature), and `F3 0F 09` is WBINVD, not
/// WBNOINVD. The decoded instruction keeps its F3 as a REP prefix: re-encoded for an
/// x86-64 host that has TZCNT, it would be TZCNT again.
pub const DECODER_OPTIONS: u32 =
    DecoderOptions::NO_MPFX_0FBC | DecoderOptions::NO_MPFX_0FBD | DecoderOptions::NO_WBNOINVD;

/// What a block is keyed by: where its first byte is and the modes that change decoding or translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockKey {
    /// Physical address of the first byte.
    pub phys: u32,
    /// Mode bits: see [`BlockKey::mode_of`].
    pub mode: u32,
}

impl BlockKey {
    /// Bit 0: 32-bit code segment; bits 1–2: CPL; bit 3: paging on; bit 4: flat
    /// segments ([`crate::CpuState::flat_segments`]); bits 5 and 6: FS and GS hold 4 GiB
    /// data segments ([`crate::CpuState::four_gib_data`], any base).
    #[inline]
    pub fn mode_of(cpu: &Cpu) -> u32 {
        cpu.state.code32() as u32
            | (cpu.state.cpl as u32) << 1
            | (cpu.state.paging() as u32) << 3
            | (cpu.state.flat_segments() as u32) << 4
            | (cpu.state.four_gib_data(crate::Seg::Fs) as u32) << 5
            | (cpu.state.four_gib_data(crate::Seg::Gs) as u32) << 6
    }

    /// What [`BlockKey::mode_of`] reads of a data-segment register (DS, ES, FS or GS)
    /// that holds `c`: whether its base is 0 and whether it holds 4 GiB data. A load of
    /// the register that leaves these the same leaves the mode the same (cheaper to ask
    /// than the whole mode).
    #[inline]
    pub fn data_segment_bits(c: &crate::SegmentCache) -> u32 {
        (c.base == 0) as u32 | (c.is_4gib_data() as u32) << 1
    }

    /// The paging-on bit of [`BlockKey::mode_of`].
    pub const PAGING: u32 = 1 << 3;
    /// The flat-segments bit of [`BlockKey::mode_of`].
    pub const FLAT: u32 = 1 << 4;
    /// The bit of [`BlockKey::mode_of`] that says FS holds a 4 GiB data segment.
    pub const FS_4GIB: u32 = 1 << 5;
    /// The bit of [`BlockKey::mode_of`] that says GS holds a 4 GiB data segment.
    pub const GS_4GIB: u32 = 1 << 6;
}

/// One decoded instruction and the engine's payload for it.
#[derive(Clone, Debug)]
pub struct DecodedInsn<E> {
    /// The iced-x86 instruction (its `ip()` is the EIP it was decoded at).
    pub insn: Instruction,
    /// Engine payload (e.g. the interpreter's handler).
    pub exec: E,
}

/// A decoded basic block.
#[derive(Clone, Debug)]
pub struct Block<E> {
    /// Cache key.
    pub key: BlockKey,
    /// EIP the block was decoded at (the same physical code may run at other EIPs).
    pub eip: u32,
    /// Instructions in order.
    pub insns: Vec<DecodedInsn<E>>,
    /// Total length in bytes.
    pub len: u32,
    /// Physical pages the bytes came from (one, or two if the only instruction straddles).
    pub pages: [u32; 2],
    /// The raw bytes (for disassembly and error messages).
    pub bytes: Vec<u8>,
    /// False once the cache dropped the block (its code was written).
    live: Cell<bool>,
}

impl<E> Block<E> {
    /// False once the cache has dropped this block because its code was written:
    /// an engine holding on to it must look the block up again.
    #[inline]
    pub fn is_live(&self) -> bool {
        self.live.get()
    }

    /// True if the store `w` overwrote some of this block's own bytes. Both engines end
    /// a block after such a store, and only then (its next instructions may be the ones
    /// rewritten): a store to other code leaves the block running, and what it overwrote
    /// is dropped when the block ends. So both engines end their blocks in the same
    /// places, whatever either has cached.
    pub fn written_by(&self, w: &crate::CodeWrite) -> bool {
        let (lo, hi) = (u64::from(w.phys), u64::from(w.phys) + u64::from(w.len.max(1)));
        let start = u64::from(self.key.phys);
        let in_first = u64::from(self.len).min(0x1000 - (start & 0xfff));
        if lo < start + in_first && start < hi {
            return true;
        }
        // The rest of a block that straddles a page boundary, from its second page's start.
        let [first_page, second_page] = self.pages;
        let rest = u64::from(self.len) - in_first;
        let second = u64::from(second_page) << 12;
        first_page != second_page && rest > 0 && lo < second + rest && second < hi
    }
}

/// Counters kept by the cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockCacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Blocks decoded.
    pub decoded: u64,
    /// Blocks dropped because their code was written.
    pub invalidated: u64,
    /// Lookups answered by the jump table (a subset of `hits`).
    pub jump_hits: u64,
}

/// A fast hasher for block keys (the key is already well mixed by a multiply).
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (self.0.rotate_left(32) ^ v as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A hash map with [`KeyHasher`] (for block keys and page numbers).
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// Number of entries in the jump table (a power of two).
pub const JUMP_ENTRIES: usize = 1024;

/// One jump-table entry: the block last found at linear address `lin` in mode `mode`.
struct JumpEntry<E> {
    lin: u32,
    mode: u32,
    /// The TLB generation the entry was made under: it holds only while that lasts (a TLB
    /// flush makes every entry stale at once, without a sweep of the table).
    generation: u64,
    block: Option<Rc<Block<E>>>,
}

impl<E> JumpEntry<E> {
    const EMPTY: Self = JumpEntry { lin: 0, mode: 0, generation: u64::MAX, block: None };
}

/// The decoded-block cache.
pub struct BlockCache<E> {
    map: FastMap<BlockKey, Rc<Block<E>>>,
    by_page: FastMap<u32, Vec<BlockKey>>,
    /// Direct-mapped (linear address, mode, TLB generation) → block.
    jump: Box<[JumpEntry<E>; JUMP_ENTRIES]>,
    /// The block the last slow lookup returned (keeps an uncacheable block alive while it runs).
    last_slow: Option<Rc<Block<E>>>,
    /// Keys whose code keeps being rewritten (an engine says which, [`BlockCache::set_volatile`]):
    /// their blocks are decoded afresh for every run and never cached.
    volatile: FastMap<BlockKey, ()>,
    /// Counters.
    pub stats: BlockCacheStats,
}

impl<E> Default for BlockCache<E> {
    fn default() -> Self {
        BlockCache {
            map: FastMap::default(),
            by_page: FastMap::default(),
            jump: Box::new(std::array::from_fn(|_| JumpEntry::EMPTY)),
            last_slow: None,
            volatile: FastMap::default(),
            stats: BlockCacheStats::default(),
        }
    }
}

/// Jump-table slot of a linear address.
#[inline]
fn jump_index(lin: u32) -> usize {
    (lin ^ (lin >> 10)) as usize % JUMP_ENTRIES
}

impl<E: Clone> BlockCache<E> {
    /// Number of cached blocks.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if no block is cached.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every cached block, in no particular order (sort before printing).
    pub fn blocks(&self) -> impl Iterator<Item = &Block<E>> {
        self.map.values().map(|b| &**b)
    }

    /// Drops the blocks whose bytes the CPU saw written (drains `cpu.code_writes`), and
    /// returns them: an engine that keeps more per block (translations) drops that too.
    /// Blocks on the same page whose bytes were not written stay; a page left without
    /// blocks stops being a code page after a few more stores (then they hit the soft-TLB
    /// again).
    pub fn invalidate_written(&mut self, cpu: &mut Cpu) -> Vec<Rc<Block<E>>> {
        let mut dropped = Vec::new();
        for w in cpu.code_writes.drain(..) {
            let page = w.phys >> 12;
            let Some(keys) = self.by_page.get_mut(&page) else { continue };
            let (lo, hi) = (w.phys as u64, w.phys as u64 + w.len as u64);
            let map = &mut self.map;
            keys.retain(|k| {
                let Some(b) = map.get(k) else { return false };
                let (start, end) = (b.key.phys as u64, b.key.phys as u64 + b.len as u64);
                if start < hi && lo < end {
                    let b = map.remove(k).expect("looked up above");
                    b.live.set(false);
                    dropped.push(b);
                    false
                } else {
                    true
                }
            });
            // The page's code bytes are now those of the blocks left on it. A page left
            // without blocks stays a code page until it has taken a few more stores
            // (`IDLE_WRITES_LIMIT`): code rewritten again and again comes back at once.
            cpu.code_pages.clear_bytes(page);
            if keys.is_empty() {
                self.by_page.remove(&page);
            } else {
                for k in keys.iter() {
                    let b = &self.map[k];
                    cpu.code_pages.mark(page, b.key.phys & 0xfff, b.len);
                }
            }
        }
        self.stats.invalidated += dropped.len() as u64;
        dropped
    }

    /// From now on, the block at `key` is decoded afresh for every run and never cached:
    /// an engine's choice for code that keeps being rewritten (each store into it would
    /// otherwise drop the cached block, and the next run decode it again). A cached block
    /// at `key` stays until its code is written.
    pub fn set_volatile(&mut self, key: BlockKey) {
        self.volatile.insert(key, ());
    }

    /// Drops everything.
    pub fn clear(&mut self, cpu: &mut Cpu) {
        for b in self.map.values() {
            b.live.set(false);
        }
        self.flush_jump_table();
        self.map.clear();
        self.by_page.clear();
        cpu.code_pages.clear();
        cpu.code_writes.clear();
    }

    /// Empties the jump table.
    fn flush_jump_table(&mut self) {
        self.jump.fill_with(|| JumpEntry::EMPTY);
    }

    /// The block at CS:EIP, decoding it on a miss. Fetch faults (#PF, #GP for
    /// the CS limit) are returned as exceptions. The block is borrowed from the
    /// cache: drop it before the cache changes (e.g. [`BlockCache::invalidate_written`]).
    /// `prepare` makes each decoded instruction's payload, given the block's key (its mode
    /// bits say, e.g., whether segments are flat).
    #[inline]
    pub fn lookup(
        &mut self,
        cpu: &mut Cpu,
        bus: &mut dyn Bus,
        prepare: &mut dyn FnMut(&Instruction, &BlockKey) -> E,
    ) -> Result<&Rc<Block<E>>, Exception> {
        let eip = cpu.state.eip;
        let cs = &cpu.state.seg[crate::Seg::Cs as usize];
        let lin = cs.base.wrapping_add(eip);
        let mode = BlockKey::mode_of(cpu);
        let i = jump_index(lin);
        if eip <= cs.limit {
            let e = &self.jump[i];
            if e.lin == lin
                && e.mode == mode
                && e.generation == cpu.tlb.generation
                && e.block.as_ref().is_some_and(|b| b.is_live())
            {
                self.stats.hits += 1;
                self.stats.jump_hits += 1;
                return Ok(self.jump[i].block.as_ref().expect("checked above"));
            }
        }
        let b = self.lookup_slow(cpu, bus, lin, mode, prepare)?;
        Ok(self.last_slow.insert(b))
    }

    /// Jump-table miss: translate, look in the map, decode on a miss, fill the table.
    #[inline(never)]
    fn lookup_slow(
        &mut self,
        cpu: &mut Cpu,
        bus: &mut dyn Bus,
        lin: u32,
        mode: u32,
        prepare: &mut dyn FnMut(&Instruction, &BlockKey) -> E,
    ) -> Result<Rc<Block<E>>, Exception> {
        let eip = cpu.state.eip;
        let phys = fetch_translate(cpu, bus, eip)?;
        let key = BlockKey { phys: phys.0, mode };
        // Chains and the jump table now depend on where this page is mapped (and, for a
        // block that straddles, the next one: noted below).
        cpu.tlb.note_code_page(lin);
        if let Some(b) = self.map.get(&key) {
            cpu.tlb.note_code_page(lin.wrapping_add(b.len.saturating_sub(1)));
            self.stats.hits += 1;
            self.jump[jump_index(lin)] =
                JumpEntry { lin, mode, generation: cpu.tlb.generation, block: Some(b.clone()) };
            return Ok(b.clone());
        }
        let block = Rc::new(decode_block(cpu, bus, key, eip, prepare)?);
        cpu.tlb.note_code_page(lin.wrapping_add(block.len.saturating_sub(1)));
        self.stats.decoded += 1;
        let cacheable = block.pages.iter().all(|&p| cpu.mem.page_is_ram(PhysAddr(p << 12)));
        if cacheable && block.pages[0] == block.pages[1] && self.volatile.contains_key(&key) {
            // Code that keeps being rewritten: caching it would cost more than decoding it
            // (every round drops it again). Its bytes are still marked, so that a store into
            // the block while it runs ends it after the store.
            cpu.mark_code(key.phys, block.len);
        } else if cacheable && block.pages[0] == block.pages[1] {
            self.map.insert(key, block.clone());
            self.by_page.entry(block.pages[0]).or_default().push(key);
            cpu.mark_code(key.phys, block.len);
            self.jump[jump_index(lin)] =
                JumpEntry { lin, mode, generation: cpu.tlb.generation, block: Some(block.clone()) };
        }
        Ok(block)
    }
}

/// The block at CS:EIP decoded afresh, outside any cache (the debugger shows the block
/// about to run this way, as the translator would see it). The fetch translates CS:EIP
/// as an instruction fetch does (setting the page's accessed bit), nothing more.
pub fn decode_at<E>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    prepare: &mut dyn FnMut(&Instruction, &BlockKey) -> E,
) -> Result<Block<E>, Exception> {
    let eip = cpu.state.eip;
    let phys = fetch_translate(cpu, bus, eip)?;
    let key = BlockKey { phys: phys.0, mode: BlockKey::mode_of(cpu) };
    decode_block(cpu, bus, key, eip, prepare)
}

/// Translates CS:EIP for an instruction fetch.
fn fetch_translate(cpu: &mut Cpu, bus: &mut dyn Bus, eip: u32) -> Result<PhysAddr, Exception> {
    let cs = cpu.state.seg[crate::Seg::Cs as usize];
    if eip > cs.limit {
        return Err(Exception::GeneralProtection(0));
    }
    let lin = popek_memory::LinearAddr(cs.base.wrapping_add(eip));
    let user = cpu.state.cpl == 3;
    cpu.translate(bus, lin, AccessKind::Execute, user)
}

/// Copies `len` bytes of code starting at physical `p` (all-ones outside RAM).
fn fetch_bytes(cpu: &mut Cpu, bus: &mut dyn Bus, p: PhysAddr, len: u32, out: &mut Vec<u8>) {
    match cpu.mem.region(p) {
        Region::Ram(off) if cpu.mem.page_is_ram(p) => {
            out.extend_from_slice(&cpu.mem.as_slice()[off..off + len as usize]);
        }
        _ => {
            for i in 0..len {
                out.push(cpu.read_phys(bus, p.add(i), 1) as u8);
            }
        }
    }
}

fn decode_block<E>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    key: BlockKey,
    eip: u32,
    prepare: &mut dyn FnMut(&Instruction, &BlockKey) -> E,
) -> Result<Block<E>, Exception> {
    let bitness = if cpu.state.code32() { 32 } else { 16 };
    let page_left = 0x1000 - (key.phys & 0xfff);
    let mut bytes = Vec::with_capacity(page_left.min(256) as usize + 16);
    // Most blocks are short: fetch a small window first, the rest of the page only if needed.
    let window = page_left.min(256);
    fetch_bytes(cpu, bus, PhysAddr(key.phys), window, &mut bytes);
    let page = key.phys >> 12;
    let mut insns = Vec::new();
    let mut pos = 0usize;
    let mut fetched = window;
    loop {
        if fetched < page_left && bytes.len() - pos < 16 {
            fetch_bytes(cpu, bus, PhysAddr(key.phys + fetched), page_left - fetched, &mut bytes);
            fetched = page_left;
        }
        let mut dec = Decoder::with_ip(bitness, &bytes[pos..], eip.wrapping_add(pos as u32) as u64, DECODER_OPTIONS);
        let insn = dec.decode();
        let cut_off = insn.is_invalid() && dec.last_error() == iced_x86::DecoderError::NoMoreBytes;
        if cut_off {
            if !insns.is_empty() {
                break; // the next instruction straddles the page: it starts a block of its own
            }
            return decode_straddling(cpu, bus, key, eip, bytes, prepare);
        }
        let len = insn.len();
        let end = ends_block(&insn);
        insns.push(DecodedInsn { exec: prepare(&insn, &key), insn });
        pos += len;
        if end || insns.len() >= MAX_BLOCK_INSNS || pos as u32 >= page_left {
            break;
        }
    }
    bytes.truncate(pos);
    Ok(Block { key, eip, insns, len: pos as u32, pages: [page, page], bytes, live: Cell::new(true) })
}

/// A single instruction whose bytes run into the next page.
fn decode_straddling<E>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    key: BlockKey,
    eip: u32,
    mut bytes: Vec<u8>,
    prepare: &mut dyn FnMut(&Instruction, &BlockKey) -> E,
) -> Result<Block<E>, Exception> {
    let first = bytes.len() as u32;
    let next = fetch_translate(cpu, bus, eip.wrapping_add(first))?;
    fetch_bytes(cpu, bus, next, 16 - first.min(15), &mut bytes);
    let bitness = if cpu.state.code32() { 32 } else { 16 };
    let mut dec = Decoder::with_ip(bitness, &bytes, eip as u64, DECODER_OPTIONS);
    let insn = dec.decode();
    let len = insn.len().max(1);
    bytes.truncate(len);
    Ok(Block {
        key,
        eip,
        insns: vec![DecodedInsn { exec: prepare(&insn, &key), insn }],
        len: len as u32,
        pages: [key.phys >> 12, next.page()],
        bytes,
        live: Cell::new(true),
    })
}

/// True for a string instruction with a REP, REPE or REPNE prefix: one that may yield
/// part-way with EIP back at itself.
pub fn is_rep_string(insn: &Instruction) -> bool {
    insn.is_string_instruction() && (insn.has_rep_prefix() || insn.has_repne_prefix())
}

/// The register a MOV or POP into DS, ES, FS or GS loads. Such a load does not end its
/// block ([`ends_block`]) unless it changes the block's mode ([`BlockKey::mode_of`]),
/// which both engines check after it: then the block ends right after it.
pub fn loaded_data_segment(insn: &Instruction) -> Option<crate::Seg> {
    use crate::Seg;
    if !matches!(insn.mnemonic(), Mnemonic::Mov | Mnemonic::Pop) || insn.op0_kind() != OpKind::Register {
        return None;
    }
    match insn.op0_register() {
        Register::DS => Some(Seg::Ds),
        Register::ES => Some(Seg::Es),
        Register::FS => Some(Seg::Fs),
        Register::GS => Some(Seg::Gs),
        _ => None,
    }
}

/// True if `insn` must be the last of its block: it transfers control, or it may
/// change the mode, interrupt state or device state that the run loop checks
/// between blocks (SDM's sensitive instructions among them).
///
/// A load of DS, ES, FS or GS (MOV, POP) does not end its block: it changes nothing the
/// run loop looks at. Only the translator's code depends on what it loads (flat segments,
/// [`BlockKey::mode_of`]), so a load that changes the block's mode ends the block right
/// after it, in both engines ([`loaded_data_segment`]). A load of SS does end it: it holds
/// off interrupts for one instruction, which the run loop sees to.
pub fn ends_block(insn: &Instruction) -> bool {
    if insn.is_invalid() || insn.flow_control() != FlowControl::Next {
        return true;
    }
    if (insn.code() == Code::Mov_Sreg_rm16 || insn.code() == Code::Mov_Sreg_r32m16)
        && insn.op0_register() == Register::SS
    {
        return true;
    }
    if insn.mnemonic() == Mnemonic::Mov
        && (0..insn.op_count()).any(|i| {
            insn.op_kind(i) == OpKind::Register && {
                let r = insn.op_register(i);
                r.is_cr() || r.is_dr() || r.is_tr()
            }
        })
    {
        return true;
    }
    if insn.mnemonic() == Mnemonic::Pop && insn.op0_register() == Register::SS {
        return true;
    }
    // A REP string instruction may yield part-way (EIP back at itself) so that a long
    // one cannot hold off interrupts: nothing may follow it in its block.
    if is_rep_string(insn) {
        return true;
    }
    matches!(
        insn.mnemonic(),
        Mnemonic::Cli
            | Mnemonic::Sti
            | Mnemonic::Popf
            | Mnemonic::Popfd
            | Mnemonic::Hlt
            | Mnemonic::In
            | Mnemonic::Out
            | Mnemonic::Insb
            | Mnemonic::Insw
            | Mnemonic::Insd
            | Mnemonic::Outsb
            | Mnemonic::Outsw
            | Mnemonic::Outsd
            | Mnemonic::Lgdt
            | Mnemonic::Lidt
            | Mnemonic::Lldt
            | Mnemonic::Ltr
            | Mnemonic::Lmsw
            | Mnemonic::Clts
            | Mnemonic::Invlpg
            | Mnemonic::Wbinvd
            | Mnemonic::Invd
            | Mnemonic::Wrmsr
            | Mnemonic::Lds
            | Mnemonic::Les
            | Mnemonic::Lfs
            | Mnemonic::Lgs
            | Mnemonic::Lss
            | Mnemonic::Sysenter
            | Mnemonic::Sysexit
            | Mnemonic::Vmcall
    )
}
