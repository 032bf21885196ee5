//! Which bytes of physical RAM hold decoded code (for self-modifying code detection).
//!
//! A page with any decoded code is a *code page*: the soft-TLB never lets a store hit it,
//! so every store to it reaches [`crate::Cpu::note_write`], which asks this map whether the
//! stored bytes are code. Only then are blocks dropped; a store to data that shares the
//! page with code (a kernel linked with `-N`, an xv6 user program) drops nothing.

use crate::block::FastMap;

/// Bytes per page.
const PAGE: u32 = 4096;

/// A bitmap over physical RAM pages, and for each page in it a bitmap of its code bytes.
#[derive(Clone, Debug)]
pub struct CodePages {
    bits: Vec<u64>,
    bytes: FastMap<u32, Box<PageBytes>>,
}

/// The code bytes of one page, and how many stores it took since it last held code.
#[derive(Clone, Debug)]
struct PageBytes {
    bits: [u64; (PAGE / 64) as usize],
    idle_writes: u32,
}

/// Stores a code page without code bytes takes before it stops being a code page (its
/// blocks were all dropped; code written again and again would otherwise turn it into a
/// code page and back on every round, each time revoking its soft-TLB write hits).
pub const IDLE_WRITES_LIMIT: u32 = 64;

impl CodePages {
    /// An empty set for `pages` pages.
    pub fn new(pages: u32) -> Self {
        CodePages { bits: vec![0; (pages as usize).div_ceil(64)], bytes: FastMap::default() }
    }

    /// True if `page` holds code.
    #[inline]
    pub fn contains(&self, page: u32) -> bool {
        self.bits.get(page as usize / 64).is_some_and(|w| w & (1 << (page % 64)) != 0)
    }

    /// Marks bytes `off..off + len` of `page` as code (`off + len` at most 4096); true if
    /// the page was not a code page before. Pages beyond RAM are ignored.
    pub fn mark(&mut self, page: u32, off: u32, len: u32) -> bool {
        let Some(w) = self.bits.get_mut(page as usize / 64) else { return false };
        let was = *w & (1 << (page % 64)) != 0;
        *w |= 1 << (page % 64);
        let map = self.bytes.entry(page).or_insert_with(|| Box::new(PageBytes { bits: [0; 64], idle_writes: 0 }));
        map.idle_writes = 0;
        for b in off..(off + len).min(PAGE) {
            map.bits[b as usize / 64] |= 1 << (b % 64);
        }
        !was
    }

    /// A store to bytes `off..off + len` of `page` (`off + len` at most 4096): true if
    /// any of them is code. A store that hits no code is counted, and a code page that
    /// holds no code bytes at all stops being one after [`IDLE_WRITES_LIMIT`] of them.
    pub fn note_store(&mut self, page: u32, off: u32, len: u32) -> bool {
        let Some(map) = self.bytes.get_mut(&page) else { return false };
        if (off..(off + len).min(PAGE)).any(|b| map.bits[b as usize / 64] & (1 << (b % 64)) != 0) {
            return true;
        }
        if map.bits.iter().all(|&w| w == 0) {
            map.idle_writes += 1;
            if map.idle_writes >= IDLE_WRITES_LIMIT {
                self.remove(page);
            }
        }
        false
    }

    /// Forgets every code byte of `page`, which stays a code page (the caller marks the
    /// bytes that are still code again, or removes the page).
    pub fn clear_bytes(&mut self, page: u32) {
        if let Some(map) = self.bytes.get_mut(&page) {
            map.bits.fill(0);
        }
    }

    /// Removes `page` (stores to it hit the soft-TLB again once refilled); true if it was there.
    pub fn remove(&mut self, page: u32) -> bool {
        self.bytes.remove(&page);
        match self.bits.get_mut(page as usize / 64) {
            Some(w) => {
                let was = *w & (1 << (page % 64)) != 0;
                *w &= !(1 << (page % 64));
                was
            }
            None => false,
        }
    }

    /// Empties the set.
    pub fn clear(&mut self) {
        self.bits.fill(0);
        self.bytes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_bytes_are_tracked_per_byte() {
        let mut c = CodePages::new(16);
        assert!(c.mark(3, 0x100, 0x10));
        assert!(!c.mark(3, 0x200, 1), "already a code page");
        assert!(c.contains(3) && !c.contains(4));
        assert!(c.note_store(3, 0x10f, 1));
        assert!(c.note_store(3, 0xfe, 4), "a dword ending in the code");
        assert!(!c.note_store(3, 0x110, 0xf0), "the data between");
        assert!(c.note_store(3, 0x200, 1));
        for _ in 0..IDLE_WRITES_LIMIT {
            assert!(!c.note_store(3, 0x300, 4));
        }
        assert!(c.contains(3), "a page with code bytes stays");
        c.clear_bytes(3);
        assert!(!c.note_store(3, 0, 4096) && c.contains(3));
        for _ in 2..IDLE_WRITES_LIMIT {
            assert!(!c.note_store(3, 0, 4));
        }
        assert!(c.contains(3));
        assert!(!c.note_store(3, 0, 4));
        assert!(!c.contains(3), "no code left and enough stores: no longer a code page");
        c.mark(3, 0, 1);
        assert!(c.remove(3) && !c.contains(3));
        assert!(!c.mark(99, 0, 1), "beyond RAM: ignored");
        assert!(!c.contains(99));
    }
}
