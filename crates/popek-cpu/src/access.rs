//! Memory accesses as instructions make them: segment checks (SDM 5.3), then
//! paging ([`crate::mmu`]), then RAM or the bus.
//!
//! Every access is all-or-nothing with respect to faults: an access that
//! crosses a page boundary translates both pages before it writes a byte.

use crate::Cpu;
use crate::exception::Exception;
use crate::mmu::AccessKind;
use crate::state::{Seg, access};
use popek_memory::{AccessSize, Bus, LinearAddr, PhysAddr, Region};

/// Operand width in bytes: 1, 2 or 4.
pub type Width = u32;

impl Cpu {
    /// Checks `offset..offset+len` against segment `s` for `kind` and returns the
    /// linear address. #GP(0), or #SS(0) for SS, on a violation.
    #[inline]
    pub fn seg_check(&self, s: Seg, offset: u32, len: u32, kind: AccessKind) -> Result<LinearAddr, Exception> {
        let c = &self.state.seg[s as usize];
        let fault = || if s == Seg::Ss { Exception::StackFault(0) } else { Exception::GeneralProtection(0) };
        let a = c.access;
        if a & access::P == 0 {
            return Err(fault());
        }
        let code = a & access::CODE != 0;
        match kind {
            AccessKind::Write if code || a & access::RW == 0 => return Err(fault()),
            AccessKind::Read if code && a & access::RW == 0 => return Err(fault()),
            _ => {}
        }
        let last = offset as u64 + len as u64 - 1;
        let ok = if !code && a & access::DC != 0 {
            // Expand-down: valid offsets are limit+1 ..= 0xffff or 0xffffffff.
            let upper: u64 = if a & access::DB != 0 { 0xffff_ffff } else { 0xffff };
            offset as u64 > c.limit as u64 && last <= upper
        } else {
            // With a 4 GiB limit an access that runs past 0xFFFFFFFF "may or may not" fault
            // (SDM Vol. 3A 5.3: implementation-specific); popek wraps it to address 0, as
            // QEMU does, so the same guest sees the same thing under both.
            last <= c.limit as u64 || c.limit == u32::MAX
        };
        if !ok {
            return Err(fault());
        }
        Ok(LinearAddr(c.base.wrapping_add(offset)))
    }

    /// True if data accesses from the current privilege level are user accesses.
    #[inline]
    pub fn user_mode(&self) -> bool {
        self.state.cpl == 3
    }

    /// Reads `width` bytes at `seg:offset`.
    #[inline]
    pub fn read(&mut self, bus: &mut dyn Bus, s: Seg, offset: u32, width: Width) -> Result<u32, Exception> {
        let lin = self.seg_check(s, offset, width, AccessKind::Read)?;
        let user = self.user_mode();
        self.read_linear(bus, lin, width, user)
    }

    /// Writes the low `width` bytes of `value` at `seg:offset`.
    #[inline]
    pub fn write(&mut self, bus: &mut dyn Bus, s: Seg, offset: u32, width: Width, value: u32) -> Result<(), Exception> {
        let lin = self.seg_check(s, offset, width, AccessKind::Write)?;
        let user = self.user_mode();
        self.write_linear(bus, lin, width, value, user)
    }

    /// Checks that a write of `width` bytes at `seg:offset` would succeed, without writing
    /// (for instructions that must not fault after changing state).
    pub fn probe_write(&mut self, bus: &mut dyn Bus, s: Seg, offset: u32, width: Width) -> Result<(), Exception> {
        let lin = self.seg_check(s, offset, width, AccessKind::Write)?;
        let user = self.user_mode();
        self.translate(bus, lin, AccessKind::Write, user)?;
        if (lin.0 & 0xfff) + width > 0x1000 {
            self.translate(bus, lin.add(width - 1), AccessKind::Write, user)?;
        }
        Ok(())
    }

    /// Reads `width` bytes at a linear address (`user`: CPL-3 access rules apply).
    #[inline]
    pub fn read_linear(
        &mut self,
        bus: &mut dyn Bus,
        lin: LinearAddr,
        width: Width,
        user: bool,
    ) -> Result<u32, Exception> {
        if (lin.0 & 0xfff) + width <= 0x1000 {
            if let Some(v) = self.read_quick_sized(lin.0, width, user) {
                return Ok(v);
            }
            let p = self.translate(bus, lin, AccessKind::Read, user)?;
            return Ok(self.read_phys(bus, p, width));
        }
        self.read_linear_split(bus, lin, width, user)
    }

    /// [`Cpu::read_linear`] of an access that crosses a page: both halves translated first.
    #[cold]
    #[inline(never)]
    fn read_linear_split(
        &mut self,
        bus: &mut dyn Bus,
        lin: LinearAddr,
        width: Width,
        user: bool,
    ) -> Result<u32, Exception> {
        let first = 0x1000 - (lin.0 & 0xfff);
        let p0 = self.translate(bus, lin, AccessKind::Read, user)?;
        let p1 = self.translate(bus, lin.add(first), AccessKind::Read, user)?;
        let mut v = 0u32;
        for i in 0..width {
            let p = if i < first { p0.add(i) } else { p1.add(i - first) };
            v |= self.read_phys(bus, p, 1) << (8 * i);
        }
        Ok(v)
    }

    /// Writes `width` bytes at a linear address.
    #[inline]
    pub fn write_linear(
        &mut self,
        bus: &mut dyn Bus,
        lin: LinearAddr,
        width: Width,
        value: u32,
        user: bool,
    ) -> Result<(), Exception> {
        if (lin.0 & 0xfff) + width <= 0x1000 {
            let quick = match width {
                1 => self.write_quick::<1>(lin.0, value, user),
                2 => self.write_quick::<2>(lin.0, value, user),
                _ => self.write_quick::<4>(lin.0, value, user),
            };
            if quick {
                return Ok(());
            }
            let p = self.translate(bus, lin, AccessKind::Write, user)?;
            self.write_phys(bus, p, width, value);
            return Ok(());
        }
        self.write_linear_split(bus, lin, width, value, user)
    }

    /// [`Cpu::write_linear`] of an access that crosses a page: both halves translated
    /// before a byte is written.
    #[cold]
    #[inline(never)]
    fn write_linear_split(
        &mut self,
        bus: &mut dyn Bus,
        lin: LinearAddr,
        width: Width,
        value: u32,
        user: bool,
    ) -> Result<(), Exception> {
        let first = 0x1000 - (lin.0 & 0xfff);
        let p0 = self.translate(bus, lin, AccessKind::Write, user)?;
        let p1 = self.translate(bus, lin.add(first), AccessKind::Write, user)?;
        for i in 0..width {
            let p = if i < first { p0.add(i) } else { p1.add(i - first) };
            self.write_phys(bus, p, 1, value >> (8 * i));
        }
        Ok(())
    }

    /// Reads physical memory: RAM, or the bus for anything else.
    #[inline]
    pub fn read_phys(&mut self, bus: &mut dyn Bus, p: PhysAddr, width: Width) -> u32 {
        if let Region::Ram(off) = self.mem.region(p) {
            let v = match width {
                1 => self.mem.read_ram::<1>(off).map(|b| b[0] as u32),
                2 => self.mem.read_ram::<2>(off).map(|b| u16::from_le_bytes(b) as u32),
                _ => self.mem.read_ram::<4>(off).map(u32::from_le_bytes),
            };
            if let Some(v) = v {
                return v;
            }
        }
        self.read_phys_slow(bus, p, width)
    }

    /// [`Cpu::read_phys`] of anything but whole RAM: the bus, or a straddle off the end of
    /// RAM (whose missing bytes read as ones).
    #[cold]
    #[inline(never)]
    fn read_phys_slow(&mut self, bus: &mut dyn Bus, p: PhysAddr, width: Width) -> u32 {
        match self.mem.region(p) {
            Region::Ram(_) => (0..width).fold(0, |v, i| v | self.read_phys(bus, p.add(i), 1) << (8 * i)),
            Region::Io => bus.mmio_read(p, size_of_width(width)),
        }
    }

    /// Writes physical memory, noting writes to pages that hold decoded code.
    #[inline]
    #[allow(clippy::cast_possible_truncation)] // a `width`-byte write stores the low bytes of `value`
    pub fn write_phys(&mut self, bus: &mut dyn Bus, p: PhysAddr, width: Width, value: u32) {
        if let Region::Ram(off) = self.mem.region(p)
            && !self.mem.is_rom(p.0)
            && !self.mem.is_rom(p.0.wrapping_add(width - 1))
        {
            self.note_write(p, width);
            let ok = match width {
                1 => self.mem.write_ram(off, [value as u8]),
                2 => self.mem.write_ram(off, (value as u16).to_le_bytes()),
                _ => self.mem.write_ram(off, value.to_le_bytes()),
            };
            if ok {
                return;
            }
            for i in 0..width {
                self.write_phys(bus, p.add(i), 1, value >> (8 * i));
            }
            return;
        }
        self.write_phys_slow(bus, p, width, value);
    }

    /// [`Cpu::write_phys`] of ROM (a store changes nothing, byte by byte for one that
    /// starts below it) or of the bus.
    #[cold]
    #[inline(never)]
    fn write_phys_slow(&mut self, bus: &mut dyn Bus, p: PhysAddr, width: Width, value: u32) {
        match self.mem.region(p) {
            Region::Ram(_) => {
                for i in 0..width {
                    if !self.mem.is_rom(p.0.wrapping_add(i)) {
                        self.write_phys(bus, p.add(i), 1, value >> (8 * i));
                    }
                }
            }
            Region::Io => {
                bus.mmio_write(p, size_of_width(width), value);
                if bus.write_may_open_interrupt_window(p) {
                    self.interrupt_window = true;
                }
            }
        }
    }

    /// The RAM offset of the `len` bytes at linear address `lin`, if the TLB holds a hit for
    /// their page for `user` (a write hit if `write`) and they do not cross it: RAM that a
    /// quick access reaches directly (the RAM tags are only set for RAM pages, and a write
    /// hit only for a dirty one that holds no decoded code and no ROM). `None` otherwise.
    /// It looks at nothing else (no segment, no fault) and changes nothing.
    #[inline]
    pub fn quick_offset(&self, lin: u32, len: usize, user: bool, write: bool) -> Option<usize> {
        if (lin & 0xfff) as usize + len > 0x1000 {
            return None;
        }
        let e = &self.tlb.entries[usize::from(user)][crate::mmu::Tlb::index(lin)];
        let tag = if write { e.write_tag } else { e.read_tag };
        (tag == lin & !0xfff).then_some((e.phys | (lin & 0xfff)) as usize)
    }

    /// The `N` bytes (at most 8) at linear address `lin`, little-endian, if
    /// [`Cpu::quick_offset`] reaches them for a `user` read; `None` otherwise: for fast
    /// paths that leave anything else to the full access.
    #[inline]
    pub fn read_quick<const N: usize>(&self, lin: u32, user: bool) -> Option<u64> {
        let b = self.mem.read_ram::<N>(self.quick_offset(lin, N, user, false)?)?;
        let mut v = [0u8; 8];
        v.get_mut(..N)?.copy_from_slice(&b);
        Some(u64::from_le_bytes(v))
    }

    /// [`Cpu::read_quick`] of `width` bytes (1, 2 or 4; `None` for any other width).
    #[inline]
    fn read_quick_sized(&self, lin: u32, width: Width, user: bool) -> Option<u32> {
        let v = match width {
            1 => self.read_quick::<1>(lin, user),
            2 => self.read_quick::<2>(lin, user),
            4 => self.read_quick::<4>(lin, user),
            _ => None,
        }?;
        #[allow(clippy::cast_possible_truncation)] // at most 4 bytes were read
        Some(v as u32)
    }

    /// The store of the low `N` bytes of `value` (at most 4) at linear address `lin`, if the
    /// TLB holds a write hit for their page for `user` and they do not cross it: a write hit
    /// is only ever filled for a dirty RAM page that holds no decoded code and no ROM, so
    /// there is nothing else to do. False, with nothing written, otherwise.
    #[inline]
    pub fn write_quick<const N: usize>(&mut self, lin: u32, value: u32, user: bool) -> bool {
        let Some(at) = self.quick_offset(lin, N, user, true) else { return false };
        let mut bytes = [0u8; N];
        bytes.copy_from_slice(&value.to_le_bytes()[..N]);
        self.mem.write_ram(at, bytes)
    }

    /// The host bytes of `len` bytes at linear address `lin`, if [`Cpu::quick_offset`]
    /// reaches them (for a write if `write`); `None` otherwise, with nothing done. For an
    /// exception frame, read or written whole.
    #[inline]
    fn quick_span(&mut self, lin: u32, len: usize, user: bool, write: bool) -> Option<&mut [u8]> {
        let at = self.quick_offset(lin, len, user, write)?;
        self.mem.as_mut_slice().get_mut(at..at + len)
    }

    /// The `values` of `width` bytes (2 or 4) at consecutive linear addresses from `lin` up,
    /// read at once if [`Cpu::quick_span`] reaches them all; false, with nothing read,
    /// otherwise.
    #[inline]
    pub fn read_quick_values(&mut self, lin: u32, width: Width, user: bool, values: &mut [u32]) -> bool {
        let w = width as usize;
        let Some(bytes) = self.quick_span(lin, values.len() * w, user, false) else { return false };
        for (v, b) in values.iter_mut().zip(bytes.chunks_exact(w)) {
            *v = b.iter().rev().fold(0, |acc, &x| acc << 8 | u32::from(x));
        }
        true
    }

    /// Writes the `values` of `width` bytes (2 or 4) at consecutive linear addresses from
    /// `lin` up, at once, if [`Cpu::quick_span`] reaches them all for a write; false, with
    /// nothing written, otherwise.
    #[inline]
    pub fn write_quick_values(&mut self, lin: u32, width: Width, user: bool, values: &[u32]) -> bool {
        let w = width as usize;
        let Some(bytes) = self.quick_span(lin, values.len() * w, user, true) else { return false };
        for (b, v) in bytes.chunks_exact_mut(w).zip(values) {
            b.copy_from_slice(&v.to_le_bytes()[..w]);
        }
        true
    }

    /// Reads a descriptor-table or TSS dword with supervisor rights (implicit access). The
    /// quick read is tried here first, where it inlines into its callers (the TSS reads of
    /// every interrupt from user mode: fewer host instructions per system call, counted),
    /// and the full access only on a miss.
    #[inline]
    pub fn read_system(&mut self, bus: &mut dyn Bus, lin: u32, width: Width) -> Result<u32, Exception> {
        match self.read_quick_sized(lin, width, false) {
            Some(v) => Ok(v),
            None => self.read_linear(bus, LinearAddr(lin), width, false),
        }
    }

    /// Reads an 8-byte descriptor-table entry with supervisor rights, as its two dwords
    /// (low first). Faults as [`Cpu::read_system`] of the low dword, then of the high one,
    /// would: an entry inside one page is translated once, and read straight from RAM.
    #[inline]
    pub fn read_system_pair(&mut self, bus: &mut dyn Bus, lin: u32) -> Result<(u32, u32), Exception> {
        if let Some(v) = self.read_quick::<8>(lin, false) {
            #[allow(clippy::cast_possible_truncation)] // the two halves
            return Ok((v as u32, (v >> 32) as u32));
        }
        if lin & 0xfff > 0x1000 - 8 {
            return Ok((self.read_system(bus, lin, 4)?, self.read_system(bus, lin.wrapping_add(4), 4)?));
        }
        let p = self.translate(bus, LinearAddr(lin), AccessKind::Read, false)?;
        if let (Region::Ram(off), Region::Ram(_)) = (self.mem.region(p), self.mem.region(p.add(7)))
            && let Some(b) = self.mem.read_ram::<8>(off)
        {
            let v = u64::from_le_bytes(b);
            #[allow(clippy::cast_possible_truncation)] // the two halves
            return Ok((v as u32, (v >> 32) as u32));
        }
        Ok((self.read_phys(bus, p, 4), self.read_phys(bus, p.add(4), 4)))
    }

    /// Writes a descriptor-table or TSS value with supervisor rights.
    pub fn write_system(&mut self, bus: &mut dyn Bus, lin: u32, width: Width, v: u32) -> Result<(), Exception> {
        self.write_linear(bus, LinearAddr(lin), width, v, false)
    }
}

/// The bus access size for a width in bytes.
#[inline]
pub fn size_of_width(width: Width) -> AccessSize {
    match width {
        1 => AccessSize::Byte,
        2 => AccessSize::Word,
        _ => AccessSize::Dword,
    }
}
