//! Guest RAM: one anonymous mapping plus the list of MMIO holes carved out of it, and the
//! translator's store map right below it in the same mapping.

use crate::PhysAddr;
use memmap2::MmapMut;

/// Default guest RAM size: 128 MiB.
pub const DEFAULT_RAM_SIZE: u32 = 128 << 20;

/// Bytes of the store map ([`GuestMemory::open_for_stores`]): one per 4 KiB page of the
/// 32-bit physical address space, and as many again around it, always 0, for pages from
/// −2 GiB to 6 GiB: translated code may look up an address worked out in 64 bits (a 32-bit
/// base plus a signed displacement) without checking first that it did not wrap. It lies
/// right below RAM, at [`GuestMemory::host_base`] − `STORE_MAP_BYTES`, so that translated
/// code reaches both from one register. Untouched pages of it take no host memory.
pub const STORE_MAP_BYTES: usize = 2 << 20;

/// Where in the store map the byte of page 0 is: page `p`'s (−2^19 ≤ `p` < 3 · 2^19) is at
/// `host_base() - STORE_MAP_BYTES + STORE_MAP_PAGE0 + p`.
pub const STORE_MAP_PAGE0: usize = 1 << 19;

/// Host-side failures creating guest memory.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The requested size is zero, not a multiple of 4 KiB, or above 3 GiB.
    #[error("invalid guest RAM size {0:#x}: must be a non-zero multiple of 4 KiB, at most 3 GiB")]
    BadSize(u64),
    /// The host refused the mapping.
    #[error("cannot map {size:#x} bytes of guest RAM: {source}")]
    Map {
        /// Requested size.
        size: u32,
        /// The host error.
        source: std::io::Error,
    },
    /// A hole outside RAM or overlapping another hole.
    #[error("invalid MMIO hole {start:#x}..{end:#x}")]
    BadHole {
        /// First byte.
        start: u32,
        /// One past the last byte.
        end: u32,
    },
}

/// Where a physical address lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// Ordinary RAM; the value is the byte offset into the mapping.
    Ram(usize),
    /// Not RAM: an MMIO hole inside the RAM range, or above the end of RAM.
    /// Such accesses go to the bus (which reads all-ones where nothing answers).
    Io,
}

/// Guest physical memory.
///
/// Accesses with a `Region::Ram` offset are bounds-checked against the
/// mapping, so a guest can never reach host memory outside it.
pub struct GuestMemory {
    /// The store map ([`STORE_MAP_BYTES`]), then RAM.
    map: MmapMut,
    size: u32,
    /// Sorted, non-overlapping `[start, end)` ranges routed to the bus.
    holes: Vec<(u32, u32)>,
    /// Every address below this is plain RAM: the size, or the start of the first hole.
    plain_below: u32,
    /// Every address from this up to the size is plain RAM: 0, or the end of the last hole
    /// (a PC's kernel and its tables live above the VGA and BIOS hole).
    plain_above: u32,
    /// `[start, end)` of RAM that stores do not change (the BIOS area of a PC).
    rom: (u32, u32),
}

impl std::fmt::Debug for GuestMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestMemory").field("size", &self.size).field("holes", &self.holes).finish()
    }
}

impl GuestMemory {
    /// Maps `size` bytes of zeroed RAM.
    pub fn new(size: u64) -> Result<Self, MemoryError> {
        if size == 0 || !size.is_multiple_of(4096) || size > 3 << 30 {
            return Err(MemoryError::BadSize(size));
        }
        let size32 = u32::try_from(size).map_err(|_| MemoryError::BadSize(size))?;
        let map = MmapMut::map_anon(STORE_MAP_BYTES + size32 as usize)
            .map_err(|source| MemoryError::Map { size: size32, source })?;
        Ok(GuestMemory { map, size: size32, holes: Vec::new(), plain_below: size32, plain_above: 0, rom: (0, 0) })
    }

    /// RAM size in bytes.
    #[inline]
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Carves `[start, end)` out of RAM so accesses there go to the bus
    /// (e.g. the VGA window 0xA0000..0xC0000).
    pub fn add_hole(&mut self, start: u32, end: u32) -> Result<(), MemoryError> {
        let bad = start >= end || end > self.size || self.holes.iter().any(|&(s, e)| start < e && s < end);
        if bad {
            return Err(MemoryError::BadHole { start, end });
        }
        self.holes.push((start, end));
        self.holes.sort_unstable();
        self.plain_below = self.plain_below.min(start);
        self.plain_above = self.plain_above.max(end);
        Ok(())
    }

    /// Makes `[start, end)` read-only to the guest (whole pages): its stores are dropped,
    /// as a PC's chipset drops stores to the BIOS area once the firmware has run. The
    /// loaders still write it ([`GuestMemory::load`]).
    pub fn set_rom(&mut self, start: u32, end: u32) {
        self.rom = (start & !0xfff, end.min(self.size));
    }

    /// True if `addr` is in the read-only range.
    #[inline]
    pub fn is_rom(&self, addr: u32) -> bool {
        addr >= self.rom.0 && addr < self.rom.1
    }

    /// `[start, end)` of the RAM above every MMIO hole and the ROM, up to the end of RAM:
    /// every byte in it is plain RAM, neither a device's nor ROM, for as long as the memory
    /// lives (holes and ROM are set up before a guest runs). The JIT reads it without a
    /// soft-TLB lookup while paging is off.
    pub fn plain_span(&self) -> (u32, u32) {
        (self.plain_above.max(self.rom.1), self.size)
    }

    /// Where `addr` lands.
    #[inline]
    pub fn region(&self, addr: PhysAddr) -> Region {
        let a = addr.0;
        if a < self.plain_below {
            return Region::Ram(a as usize); // the common case: one compare
        }
        if a >= self.plain_above && a < self.size {
            return Region::Ram(a as usize); // above the last hole: two
        }
        if a >= self.size || self.holes.iter().any(|&(s, e)| a >= s && a < e) {
            Region::Io
        } else {
            Region::Ram(a as usize)
        }
    }

    /// True if the whole 4 KiB page holding `addr` is plain RAM.
    pub fn page_is_ram(&self, addr: PhysAddr) -> bool {
        let start = addr.0 & !0xfff;
        if start as u64 + 4096 <= self.plain_below as u64 {
            return true;
        }
        let end = start as u64 + 4096;
        end <= self.size as u64 && !self.holes.iter().any(|&(s, e)| start < e && (s as u64) < end)
    }

    /// The whole of RAM as bytes (holes included, as plain bytes).
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.map[STORE_MAP_BYTES..]
    }

    /// The whole of RAM as mutable bytes.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.map[STORE_MAP_BYTES..]
    }

    /// Host address of the first byte of RAM (for the JIT's soft-TLB addends). The store
    /// map's byte for page `p` is at `host_base() - STORE_MAP_BYTES + STORE_MAP_PAGE0 + p`.
    #[inline]
    pub fn host_base(&self) -> *mut u8 {
        self.as_slice().as_ptr() as *mut u8
    }

    /// Opens physical page `page` to the translator's plain stores, if it and the next
    /// page are both RAM (not a hole, not ROM, not past the end): its byte in the store
    /// map becomes 1, and translated code with paging off then stores into it (or across
    /// into the next page) with no other check. Returns whether the page is open.
    ///
    /// The map only says what the memory knows. Whoever owns it also closes a page that
    /// starts to hold code, and the page before it ([`GuestMemory::close_for_stores`]),
    /// and opens only pages where neither holds code (`popek_cpu::Cpu`).
    pub fn open_for_stores(&mut self, page: u32) -> bool {
        let plain = |p: u32| {
            let addr = p.wrapping_shl(12);
            p < 1 << 20 && self.page_is_ram(PhysAddr(addr)) && !self.is_rom(addr)
        };
        let open = plain(page) && plain(page + 1);
        if open {
            self.map[STORE_MAP_PAGE0 + page as usize] = 1;
        }
        open
    }

    /// True if physical page `page` is open to plain stores.
    #[inline]
    pub fn open_to_stores(&self, page: u32) -> bool {
        page < 1 << 20 && self.map[STORE_MAP_PAGE0 + page as usize] != 0
    }

    /// Closes physical page `page` to plain stores, and the page before it (whose stores
    /// may cross into it).
    pub fn close_for_stores(&mut self, page: u32) {
        for p in [page.wrapping_sub(1), page] {
            if p < 1 << 20 {
                self.map[STORE_MAP_PAGE0 + p as usize] = 0;
            }
        }
    }

    /// Reads a little-endian value of `N` bytes at RAM offset `off`, or
    /// `None` if it would leave the mapping.
    #[inline]
    pub fn read_ram<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        self.as_slice().get(off..off.checked_add(N)?)?.try_into().ok()
    }

    /// Writes `N` bytes at RAM offset `off`; returns false (writing nothing)
    /// if it would leave the mapping.
    #[inline]
    pub fn write_ram<const N: usize>(&mut self, off: usize, bytes: [u8; N]) -> bool {
        let Some(end) = off.checked_add(N) else { return false };
        match self.as_mut_slice().get_mut(off..end) {
            Some(dst) => {
                dst.copy_from_slice(&bytes);
                true
            }
            None => false,
        }
    }

    /// Copies `data` into RAM at `addr` (loaders); fails if any byte is not RAM.
    pub fn load(&mut self, addr: PhysAddr, data: &[u8]) -> bool {
        let start = addr.0 as usize;
        let Some(end) = start.checked_add(data.len()) else { return false };
        match self.as_mut_slice().get_mut(start..end) {
            Some(dst) => {
                dst.copy_from_slice(data);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_sizes() {
        assert!(matches!(GuestMemory::new(0), Err(MemoryError::BadSize(0))));
        assert!(matches!(GuestMemory::new(4097), Err(MemoryError::BadSize(_))));
        assert!(matches!(GuestMemory::new(4 << 30), Err(MemoryError::BadSize(_))));
    }

    #[test]
    fn ram_and_holes() {
        let mut m = GuestMemory::new(1 << 20).unwrap();
        m.add_hole(0xa0000, 0xc0000).unwrap();
        assert_eq!(m.region(PhysAddr(0x1000)), Region::Ram(0x1000));
        assert_eq!(m.region(PhysAddr(0xb8000)), Region::Io);
        assert_eq!(m.region(PhysAddr(0xbffff)), Region::Io);
        // Above the last hole, up to the size: RAM again.
        assert_eq!(m.region(PhysAddr(0xc0000)), Region::Ram(0xc0000));
        assert_eq!(m.region(PhysAddr(0xfffff)), Region::Ram(0xfffff));
        assert_eq!(m.region(PhysAddr(0x100000)), Region::Io);
        assert_eq!(m.region(PhysAddr(0xffff_ffff)), Region::Io);
        assert!(m.add_hole(0xb0000, 0xd0000).is_err(), "overlap");
        assert!(m.add_hole(0xf0000, 0x200000).is_err(), "beyond RAM");
        assert!(!m.page_is_ram(PhysAddr(0xa0000)));
        assert!(m.page_is_ram(PhysAddr(0x9f000)));
        // A second hole below the first one moves the all-RAM boundary down.
        m.add_hole(0x1000, 0x2000).unwrap();
        assert_eq!(m.region(PhysAddr(0xfff)), Region::Ram(0xfff));
        assert_eq!(m.region(PhysAddr(0x1000)), Region::Io);
        assert_eq!(m.region(PhysAddr(0x1fff)), Region::Io);
        assert_eq!(m.region(PhysAddr(0x2000)), Region::Ram(0x2000));
        assert_eq!(m.region(PhysAddr(0xb8000)), Region::Io);
        assert!(m.page_is_ram(PhysAddr(0)) && !m.page_is_ram(PhysAddr(0x1000)) && m.page_is_ram(PhysAddr(0x2000)));
        assert!(!m.page_is_ram(PhysAddr(0x10_0000)), "beyond RAM");
    }

    #[test]
    fn accesses_stay_inside_the_mapping() {
        let mut m = GuestMemory::new(4096).unwrap();
        assert!(m.write_ram(4092, [1, 2, 3, 4]));
        assert_eq!(m.read_ram::<4>(4092), Some([1, 2, 3, 4]));
        assert!(!m.write_ram(4093, [1, 2, 3, 4]));
        assert_eq!(m.read_ram::<4>(4093), None);
        assert_eq!(m.read_ram::<4>(usize::MAX - 1), None);
        assert!(!m.load(PhysAddr(4000), &[0; 100]));
    }

    #[test]
    fn store_map_opens_plain_pages_only() {
        let mut m = GuestMemory::new(0x20_0000).unwrap();
        m.add_hole(0xa_0000, 0xc_0000).unwrap();
        m.set_rom(0xf_0000, 0x10_0000);
        assert!(!m.open_to_stores(0x100), "closed until opened");
        assert!(m.open_for_stores(0x100) && m.open_to_stores(0x100));
        assert!(!m.open_for_stores(0x9f), "the next page is a hole");
        assert!(!m.open_for_stores(0xa0), "a hole");
        assert!(!m.open_for_stores(0xef), "the next page is ROM");
        assert!(!m.open_for_stores(0xf0), "ROM");
        assert!(m.open_for_stores(0x1fe));
        assert!(!m.open_for_stores(0x1ff), "the next page is past the end");
        assert!(!m.open_for_stores(0xfffff) && !m.open_for_stores(u32::MAX));
        assert!(!m.open_to_stores(u32::MAX));
        m.open_for_stores(0x101);
        m.close_for_stores(0x101);
        assert!(!m.open_to_stores(0x101) && !m.open_to_stores(0x100), "the page and the one before");
        m.close_for_stores(0);
        m.close_for_stores(u32::MAX);
        assert!(m.open_to_stores(0x1fe));
        // The map is not RAM: RAM's first byte is still its own.
        assert!(m.write_ram(0, [7]));
        assert_eq!(m.read_ram::<1>(0), Some([7]));
    }

    #[test]
    fn rom_range_is_page_aligned_and_bounded() {
        let mut m = GuestMemory::new(0x20_0000).unwrap();
        assert!(!m.is_rom(0xf_0000), "no ROM until set");
        m.set_rom(0xf_0123, 0x10_0000);
        assert!(m.is_rom(0xf_0000) && m.is_rom(0xf_ffff));
        assert!(!m.is_rom(0xe_ffff) && !m.is_rom(0x10_0000));
        assert!(m.load(PhysAddr(0xf_0000), &[1, 2]), "the loader still writes it");
    }
}
