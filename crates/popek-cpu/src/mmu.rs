//! Paging (SDM Vol. 3A 4.3, 32-bit paging with PSE and PGE) and the TLB.
//!
//! ```text
//!  LinearAddr ──► TLB hit? ──yes──► PhysAddr
//!                    │no
//!                    ▼
//!             page walk (PDE → PTE, or 4 MiB PDE) ─ checks U/S, R/W, WP ─► #PF
//!                    │ sets A/D bits
//!                    ▼
//!                 TLB fill (read tag always; write tag only if a write
//!                 would need no A/D update and the page holds no code)
//! ```
//!
//! The TLB is direct-mapped, one array per privilege class (supervisor, user),
//! so a hit needs one tag compare: the same structure the JIT's inline soft-TLB
//! uses. Only RAM pages are filled; MMIO always takes the slow path.

use crate::Cpu;
use crate::block::FastMap;
use crate::exception::{Exception, pf};
use crate::state::{cr0, cr4};
use popek_memory::{AccessSize, Bus, LinearAddr, PhysAddr, Region};

/// Number of entries in each direct-mapped TLB.
pub const TLB_ENTRIES: usize = 256;

/// A tag that never matches a page-aligned address.
pub const INVALID_TAG: u32 = 1;

/// One TLB entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    /// Linear page base if reads may hit, else [`INVALID_TAG`].
    pub read_tag: u32,
    /// Linear page base if writes may hit, else [`INVALID_TAG`].
    pub write_tag: u32,
    /// Physical page base.
    pub phys: u32,
    /// Survives CR3 writes (PGE global page).
    pub global: bool,
    /// For the JIT's inline lookup: the host address of the page's RAM minus the linear
    /// page base (wrapping), so linear address + addend = host address. Only ever
    /// dereferenced through a tag that matched, and the RAM tags are only set for RAM pages.
    pub addend: u64,
    /// For a page that is not RAM (a device's, or beyond RAM): the linear page base if
    /// reads may use `phys` without a walk, else [`INVALID_TAG`]. The RAM tags of such an
    /// entry stay invalid, so no fast path (nor the JIT's lookup) ever reaches host memory
    /// through it; [`Cpu::translate`] skips the walk, and the access goes to the bus.
    pub io_read_tag: u32,
    /// The same for writes (the page is writable and dirty: a write needs no walk).
    pub io_write_tag: u32,
}

impl TlbEntry {
    const EMPTY: TlbEntry = TlbEntry {
        read_tag: INVALID_TAG,
        write_tag: INVALID_TAG,
        phys: 0,
        global: false,
        addend: 0,
        io_read_tag: INVALID_TAG,
        io_write_tag: INVALID_TAG,
    };

    /// True if the entry maps linear page `page` (page-aligned), in any way.
    fn maps(&self, page: u32) -> bool {
        self.read_tag == page || self.write_tag == page || self.io_read_tag == page
    }

    /// True if the entry maps nothing.
    fn is_empty(&self) -> bool {
        self.read_tag == INVALID_TAG && self.write_tag == INVALID_TAG && self.io_read_tag == INVALID_TAG
    }
}

// 32 bytes: the JIT scales the index by shifting.
const _: () = assert!(std::mem::size_of::<TlbEntry>() == 32);

/// The software TLB: `[supervisor, user]` × [`TLB_ENTRIES`].
#[repr(C)]
#[derive(Clone, Debug)]
pub struct Tlb {
    /// Entries, indexed `[user as usize][page % TLB_ENTRIES]`.
    pub entries: [[TlbEntry; TLB_ENTRIES]; 2],
    /// Some entry may come from a 4 MiB page (set on fill, cleared by
    /// [`Tlb::flush_all`]): the TLB holds 4 MiB pages as 4 KiB slices, so
    /// [`Tlb::flush_page`] must then drop every slice of the 4 MiB region.
    pub large: bool,
    /// Bumped by every flush that may change where code is fetched from: caches built on
    /// linear → physical translations of code (the block cache's jump table, the JIT's
    /// chain links) are valid only while it stays the same. It starts at 1 and only grows,
    /// so it is never 0: the translator's all-zero "unlinked" chain link can never pass
    /// its check.
    pub generation: u64,
    /// The linear pages (numbers) code was looked up on in this generation
    /// ([`Tlb::note_code_page`]): an INVLPG of any other page leaves `generation` alone.
    code_pages: FastMap<u32, ()>,
    /// The slots (`user * TLB_ENTRIES + index`) filled since the last flush, so that a flush
    /// visits only those (a guest writes CR3 far more often than it fills the whole TLB);
    /// `None` once so many were filled that a flush sweeps every slot.
    filled: Option<Vec<usize>>,
}

impl Default for Tlb {
    fn default() -> Self {
        Tlb {
            entries: [[TlbEntry::EMPTY; TLB_ENTRIES]; 2],
            large: false,
            generation: 1,
            code_pages: FastMap::default(),
            filled: Some(Vec::new()),
        }
    }
}

impl Tlb {
    /// Index of a linear address.
    #[inline]
    pub fn index(lin: u32) -> usize {
        (lin >> 12) as usize % TLB_ENTRIES
    }

    /// Records that a cache built on this generation holds code fetched from the linear
    /// page of `lin` (a block cache lookup).
    pub fn note_code_page(&mut self, lin: u32) {
        self.code_pages.insert(lin >> 12, ());
    }

    /// A new generation: every cache built on linear → physical translations is stale.
    fn new_generation(&mut self) {
        self.generation += 1;
        self.code_pages.clear();
    }

    /// Notes that slot `index` of set `user` was filled (for [`Tlb::flush_non_global`]).
    fn note_fill(&mut self, user: bool, index: usize) {
        if let Some(filled) = &mut self.filled {
            if filled.len() < 2 * TLB_ENTRIES {
                filled.push(usize::from(user) * TLB_ENTRIES + index);
            } else {
                self.filled = None;
            }
        }
    }

    /// Drops every entry (CR0/CR4 paging changes).
    pub fn flush_all(&mut self) {
        self.flush_where(|_| true);
        self.large = false;
    }

    /// Drops non-global entries (MOV CR3).
    pub fn flush_non_global(&mut self) {
        self.flush_where(|e| !e.global);
    }

    /// Drops the entries `drop` picks, visiting only the slots filled since the last
    /// flush (or every slot, if that was most of them); the slots kept stay listed.
    fn flush_where(&mut self, drop: impl Fn(&TlbEntry) -> bool) {
        self.new_generation();
        let mut kept = Vec::new();
        let mut visit = |entries: &mut [[TlbEntry; TLB_ENTRIES]; 2], slot: usize| {
            let e = &mut entries[slot / TLB_ENTRIES][slot % TLB_ENTRIES];
            if e.is_empty() {
                return;
            }
            if drop(e) {
                *e = TlbEntry::EMPTY;
            } else {
                kept.push(slot);
            }
        };
        match self.filled.take() {
            Some(filled) => filled.into_iter().for_each(|slot| visit(&mut self.entries, slot)),
            None => (0..2 * TLB_ENTRIES).for_each(|slot| visit(&mut self.entries, slot)),
        }
        kept.sort_unstable();
        kept.dedup();
        self.filled = Some(kept);
    }

    /// Drops the entries for the page of `lin` (INVLPG). If a 4 MiB page may be
    /// cached, every entry inside the 4 MiB region of `lin` is dropped too
    /// (dropping more than needed is always allowed, SDM Vol. 3A 4.10.4).
    ///
    /// The generation moves on only if code was looked up on a page dropped: a guest that
    /// maps data pages on demand (a page fault, a PTE write, INVLPG) keeps its chains.
    pub fn flush_page(&mut self, lin: u32) {
        let region = lin >> 22;
        let code_dropped = if self.large {
            self.code_pages.keys().any(|&p| p >> 10 == region)
        } else {
            self.code_pages.contains_key(&(lin >> 12))
        };
        if code_dropped {
            self.new_generation();
        }
        let i = Self::index(lin);
        let page = lin & !0xfff;
        for set in &mut self.entries {
            let e = &mut set[i];
            if e.maps(page) {
                *e = TlbEntry::EMPTY;
            }
        }
        if self.large {
            let region = lin & !0x3f_ffff;
            for e in self.entries.iter_mut().flatten() {
                let tag = if e.read_tag != INVALID_TAG { e.read_tag } else { e.io_read_tag };
                if tag != INVALID_TAG && tag & !0x3f_ffff == region {
                    *e = TlbEntry::EMPTY;
                }
            }
        }
    }

    /// Revokes write hits to physical page `phys_page` (it now holds translated code).
    pub fn protect_phys_page(&mut self, phys_page: u32) {
        for e in self.entries.iter_mut().flatten() {
            if e.phys == phys_page << 12 {
                e.write_tag = INVALID_TAG;
            }
        }
    }
}

/// What a memory access wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    /// Data read.
    Read,
    /// Data write.
    Write,
    /// Instruction fetch.
    Execute,
}

/// Page-table entry bits.
#[allow(missing_docs)]
pub mod pte {
    pub const P: u32 = 1 << 0;
    pub const RW: u32 = 1 << 1;
    pub const US: u32 = 1 << 2;
    pub const PWT: u32 = 1 << 3;
    pub const PCD: u32 = 1 << 4;
    pub const A: u32 = 1 << 5;
    pub const D: u32 = 1 << 6;
    /// PDE: 4 MiB page. (PTE: PAT.)
    pub const PS: u32 = 1 << 7;
    pub const G: u32 = 1 << 8;
}

/// Result of a successful walk.
#[derive(Clone, Copy, Debug)]
struct Walk {
    phys: u32,
    user_ok: bool,
    write_ok_user: bool,
    write_ok_super: bool,
    dirty: bool,
    global: bool,
    /// Translated by a 4 MiB PDE.
    large: bool,
}

impl Cpu {
    /// Translates a linear address for an access by `user` (CPL 3 and not an implicit
    /// supervisor access) of `kind`, filling the TLB. Raises #PF with CR2 set... (CR2 is set by delivery).
    #[inline]
    pub fn translate(
        &mut self,
        bus: &mut dyn Bus,
        lin: LinearAddr,
        kind: AccessKind,
        user: bool,
    ) -> Result<PhysAddr, Exception> {
        let l = lin.0;
        let page = l & !0xfff;
        let e = &self.tlb.entries[user as usize][Tlb::index(l)];
        let tag = if kind == AccessKind::Write { e.write_tag } else { e.read_tag };
        let io_tag = if kind == AccessKind::Write { e.io_write_tag } else { e.io_read_tag };
        if tag == page || io_tag == page {
            return Ok(PhysAddr(e.phys | (l & 0xfff)));
        }
        self.translate_slow(bus, lin, kind, user)
    }

    /// TLB miss (or a write that needs A/D or SMC work): walk and fill.
    #[cold]
    fn translate_slow(
        &mut self,
        bus: &mut dyn Bus,
        lin: LinearAddr,
        kind: AccessKind,
        user: bool,
    ) -> Result<PhysAddr, Exception> {
        let l = lin.0;
        let page = l & !0xfff;
        let w = if self.state.paging() {
            self.walk(bus, l, kind, user)?
        } else {
            Walk {
                phys: page,
                user_ok: true,
                write_ok_user: true,
                write_ok_super: true,
                dirty: true,
                global: false,
                large: false,
            }
        };
        let phys_page = w.phys >> 12;
        if self.mem.page_is_ram(PhysAddr(w.phys)) {
            let host_base = self.mem.host_base();
            let write_ok = if user { w.write_ok_user } else { w.write_ok_super };
            let can_write = write_ok && w.dirty && !self.code_pages.contains(phys_page) && !self.mem.is_rom(w.phys);
            self.tlb.note_fill(user, Tlb::index(l));
            let e = &mut self.tlb.entries[user as usize][Tlb::index(l)];
            *e = TlbEntry {
                read_tag: page,
                write_tag: if can_write { page } else { INVALID_TAG },
                phys: w.phys,
                global: w.global,
                addend: (host_base as u64).wrapping_add(w.phys as u64).wrapping_sub(page as u64),
                io_read_tag: INVALID_TAG,
                io_write_tag: INVALID_TAG,
            };
            self.tlb.large |= w.large;
            let _ = w.user_ok;
            if can_write && !self.state.paging() {
                // The translator's stores with paging off check the store map, not the
                // TLB: a write hit here is one there too, where the next page allows it.
                self.open_for_stores(phys_page);
            }
        } else {
            // A device's page (a local APIC register read on every lock, by xv6): the
            // translation is kept, the access itself always goes to the bus.
            let write_ok = if user { w.write_ok_user } else { w.write_ok_super };
            self.tlb.note_fill(user, Tlb::index(l));
            let e = &mut self.tlb.entries[user as usize][Tlb::index(l)];
            *e = TlbEntry {
                io_read_tag: page,
                io_write_tag: if write_ok && w.dirty { page } else { INVALID_TAG },
                phys: w.phys,
                global: w.global,
                ..TlbEntry::EMPTY
            };
            self.tlb.large |= w.large;
        }
        Ok(PhysAddr(w.phys | (l & 0xfff)))
    }

    /// Walks the page tables for `lin`, checking the access and setting A/D bits.
    fn walk(&mut self, bus: &mut dyn Bus, l: u32, kind: AccessKind, user: bool) -> Result<Walk, Exception> {
        let write = kind == AccessKind::Write;
        let fault = |present: bool| {
            let mut code = 0;
            if present {
                code |= pf::P;
            }
            if write {
                code |= pf::W;
            }
            if user {
                code |= pf::U;
            }
            Exception::PageFault { addr: l, code }
        };
        let wp = self.state.cr0 & cr0::WP != 0;
        let pde_addr = PhysAddr((self.state.cr3 & !0xfff) | ((l >> 22) << 2));
        let pde = self.read_phys_pt(bus, pde_addr);
        if pde & pte::P == 0 {
            return Err(fault(false));
        }
        let big = pde & pte::PS != 0 && self.state.cr4 & cr4::PSE != 0;
        let (entry, entry_addr, phys) = if big {
            (pde, pde_addr, (pde & 0xffc0_0000) | (l & 0x003f_f000))
        } else {
            let pte_addr = PhysAddr((pde & !0xfff) | (((l >> 12) & 0x3ff) << 2));
            let p = self.read_phys_pt(bus, pte_addr);
            if p & pte::P == 0 {
                return Err(fault(false));
            }
            (p, pte_addr, p & !0xfff)
        };
        let combined = if big { entry } else { entry & pde };
        let user_ok = combined & pte::US != 0;
        let rw = combined & pte::RW != 0;
        if user && !user_ok {
            return Err(fault(true));
        }
        let write_ok_user = user_ok && rw;
        let write_ok_super = rw || !wp;
        if write && !(if user { write_ok_user } else { write_ok_super }) {
            return Err(fault(true));
        }
        // Accessed and dirty bits (SDM 4.8).
        if !big && pde & pte::A == 0 {
            self.write_phys_pt(bus, pde_addr, pde | pte::A);
        }
        let mut new = entry | pte::A;
        if write {
            new |= pte::D;
        }
        if new != entry {
            self.write_phys_pt(bus, entry_addr, new);
        }
        let global = self.state.cr4 & cr4::PGE != 0 && entry & pte::G != 0;
        Ok(Walk { phys, user_ok, write_ok_user, write_ok_super, dirty: new & pte::D != 0, global, large: big })
    }

    /// Reads a paging-structure entry: from RAM, or from whatever the bus has at that
    /// address (a device's memory, such as VGA's; all ones where nothing answers), as the
    /// processor's walk reads physical memory like any other access (QEMU does the same).
    fn read_phys_pt(&self, bus: &mut dyn Bus, a: PhysAddr) -> u32 {
        match self.mem.region(a) {
            Region::Ram(off) => self.mem.read_ram::<4>(off).map_or(u32::MAX, u32::from_le_bytes),
            Region::Io => bus.mmio_read(a, AccessSize::Dword),
        }
    }

    /// Writes back a paging-structure entry (A/D update): to RAM (not ROM), or to the bus.
    fn write_phys_pt(&mut self, bus: &mut dyn Bus, a: PhysAddr, v: u32) {
        match self.mem.region(a) {
            Region::Ram(off) => {
                if !self.mem.is_rom(a.0) {
                    self.note_write(a, 4);
                    self.mem.write_ram(off, v.to_le_bytes());
                }
            }
            Region::Io => bus.mmio_write(a, AccessSize::Dword, v),
        }
    }
}
