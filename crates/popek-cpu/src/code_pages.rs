//! The set of physical pages that hold decoded code (for self-modifying code detection).

/// A bitmap over physical RAM pages.
#[derive(Clone, Debug)]
pub struct CodePages {
    bits: Vec<u64>,
}

impl CodePages {
    /// An empty set for `pages` pages.
    pub fn new(pages: u32) -> Self {
        CodePages { bits: vec![0; (pages as usize).div_ceil(64)] }
    }

    /// True if `page` holds code.
    #[inline]
    pub fn contains(&self, page: u32) -> bool {
        self.bits.get(page as usize / 64).is_some_and(|w| w & (1 << (page % 64)) != 0)
    }

    /// Adds `page`; true if it was not there. Pages beyond RAM are ignored.
    pub fn insert(&mut self, page: u32) -> bool {
        match self.bits.get_mut(page as usize / 64) {
            Some(w) => {
                let was = *w & (1 << (page % 64)) != 0;
                *w |= 1 << (page % 64);
                !was
            }
            None => false,
        }
    }

    /// Removes `page`; true if it was there.
    pub fn remove(&mut self, page: u32) -> bool {
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
    }
}
