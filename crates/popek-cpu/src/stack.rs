//! The stack: PUSH/POP through SS with ESP or SP (SDM 6.2).
//!
//! A push writes first and moves ESP only after the write succeeded, so a
//! faulting push leaves ESP untouched (precise exceptions).

use crate::Cpu;
use crate::access::Width;
use crate::exception::Exception;
use crate::state::{Seg, gpr::ESP};
use popek_memory::Bus;

impl Cpu {
    /// ESP, masked to SP for a 16-bit stack.
    #[inline]
    pub fn sp(&self) -> u32 {
        if self.state.stack32() { self.state.gpr[ESP] } else { self.state.gpr[ESP] & 0xffff }
    }

    /// Sets ESP (or only SP for a 16-bit stack).
    #[inline]
    pub fn set_sp(&mut self, v: u32) {
        let e = &mut self.state.gpr[ESP];
        *e = if self.state.seg[Seg::Ss as usize].big() { v } else { (*e & 0xffff_0000) | (v & 0xffff) };
    }

    /// Stack offset `delta` bytes from the top, wrapped to the stack width.
    #[inline]
    pub fn sp_offset(&self, delta: u32) -> u32 {
        let v = self.sp().wrapping_add(delta);
        if self.state.stack32() { v } else { v & 0xffff }
    }

    /// Pushes `width` bytes.
    #[inline]
    pub fn push(&mut self, bus: &mut dyn Bus, value: u32, width: Width) -> Result<(), Exception> {
        let new_sp = self.sp_offset(width.wrapping_neg());
        self.write(bus, Seg::Ss, new_sp, width, value)?;
        self.set_sp(new_sp);
        Ok(())
    }

    /// Pops `width` bytes.
    #[inline]
    pub fn pop(&mut self, bus: &mut dyn Bus, width: Width) -> Result<u32, Exception> {
        let v = self.read(bus, Seg::Ss, self.sp(), width)?;
        self.set_sp(self.sp_offset(width));
        Ok(v)
    }

    /// The `N` values of `width` bytes (2 or 4) at the top of a 32-bit stack, the first at
    /// the top, if they can be read at once without a fault: SS's limit holds them all and
    /// they lie in one page the TLB holds ([`Cpu::read_quick_values`]). `None` otherwise,
    /// with nothing read: [`Cpu::peek`] them one by one, which faults as the instruction
    /// must.
    #[inline]
    pub fn peek_quick<const N: usize>(&mut self, width: Width) -> Option<[u32; N]> {
        if !self.state.stack32() {
            return None;
        }
        let len = width * u32::try_from(N).ok()?;
        let lin = self.seg_check(Seg::Ss, self.state.gpr[ESP], len, crate::AccessKind::Read).ok()?;
        let mut values = [0; N];
        let user = self.user_mode();
        self.read_quick_values(lin.0, width, user, &mut values).then_some(values)
    }

    /// Reads `width` bytes at `delta` bytes above the stack top without popping.
    #[inline]
    pub fn peek(&mut self, bus: &mut dyn Bus, delta: u32, width: Width) -> Result<u32, Exception> {
        let off = self.sp_offset(delta);
        self.read(bus, Seg::Ss, off, width)
    }
}
