//! Segment register loads and descriptor-table access (SDM Vol. 3A 5.4–5.8; Vol. 2 MOV Sreg, JMP/CALL/RET far).
//!
//! Every check here is split into a *check* that computes the new descriptor
//! cache without touching registers (it may set the descriptor's Accessed bit
//! in memory, as the CPU does) and a *commit*, so instructions that load several
//! things (far RET, IRET, LSS, interrupt delivery) can stay precise.

use crate::Cpu;
use crate::exception::{Event, Exception, Unsupported};
use crate::state::{Seg, SegmentCache, access, cr0, flags};
use popek_memory::Bus;

/// Segment selector fields (SDM 3.4.2).
pub mod selector {
    /// Requested privilege level.
    pub const RPL: u16 = 3;
    /// Table indicator: 1 = LDT.
    pub const TI: u16 = 1 << 2;
    /// Index × 8: the byte offset of the descriptor in its table.
    pub const INDEX: u16 = !7;
}

/// True for a null selector (index 0 in the GDT, any RPL).
#[inline]
pub const fn is_null(sel: u16) -> bool {
    sel & !selector::RPL == 0
}

/// System-descriptor types (S = 0, SDM Table 3-2).
#[allow(missing_docs)]
pub mod system_type {
    pub const TSS16_AVAILABLE: u8 = 0x1;
    pub const LDT: u8 = 0x2;
    pub const TSS16_BUSY: u8 = 0x3;
    pub const CALL_GATE16: u8 = 0x4;
    pub const TASK_GATE: u8 = 0x5;
    pub const INTERRUPT_GATE16: u8 = 0x6;
    pub const TRAP_GATE16: u8 = 0x7;
    pub const TSS32_AVAILABLE: u8 = 0x9;
    pub const TSS32_BUSY: u8 = 0xb;
    pub const CALL_GATE32: u8 = 0xc;
    pub const INTERRUPT_GATE32: u8 = 0xe;
    pub const TRAP_GATE32: u8 = 0xf;
}

/// The two raw dwords of an 8-byte descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Descriptor {
    /// Bytes 0–3.
    pub lo: u32,
    /// Bytes 4–7.
    pub hi: u32,
}

impl Descriptor {
    /// Access byte (descriptor byte 5): P, DPL, S, type.
    #[inline]
    #[allow(clippy::cast_possible_truncation)] // byte 5 of the descriptor
    pub const fn access_byte(self) -> u8 {
        (self.hi >> 8) as u8
    }
    /// The 4-bit type field.
    #[inline]
    pub const fn typ(self) -> u8 {
        self.access_byte() & 0xf
    }
    /// S bit: code or data (true) vs system (false).
    #[inline]
    pub const fn is_code_or_data(self) -> bool {
        self.hi & (1 << 12) != 0
    }
    /// Code segment (S=1, type bit 3).
    #[inline]
    pub const fn is_code(self) -> bool {
        self.is_code_or_data() && self.typ() & 8 != 0
    }
    /// Data segment (S=1, type bit 3 clear).
    #[inline]
    pub const fn is_data(self) -> bool {
        self.is_code_or_data() && self.typ() & 8 == 0
    }
    /// Conforming code segment.
    #[inline]
    pub const fn is_conforming(self) -> bool {
        self.is_code() && self.typ() & 4 != 0
    }
    /// Readable code or any data segment.
    #[inline]
    pub const fn is_readable(self) -> bool {
        self.is_data() || (self.is_code() && self.typ() & 2 != 0)
    }
    /// Writable data segment.
    #[inline]
    pub const fn is_writable_data(self) -> bool {
        self.is_data() && self.typ() & 2 != 0
    }
    /// Descriptor privilege level.
    #[inline]
    pub const fn dpl(self) -> u8 {
        (self.access_byte() >> 5) & 3
    }
    /// Present bit.
    #[inline]
    pub const fn present(self) -> bool {
        self.hi & (1 << 15) != 0
    }
    /// The hidden-cache form for `sel`.
    #[inline]
    pub fn cache(self, sel: u16) -> SegmentCache {
        SegmentCache::from_descriptor(sel, self.lo, self.hi)
    }
    /// Gate: target code-segment selector.
    #[inline]
    pub const fn gate_selector(self) -> u16 {
        (self.lo >> 16) as u16
    }
    /// Gate: target offset (the high word only for 32-bit gates).
    #[inline]
    pub const fn gate_offset(self) -> u32 {
        let lo = self.lo & 0xffff;
        if self.typ() & 8 != 0 { lo | (self.hi & 0xffff_0000) } else { lo }
    }
}

/// True if `offset..offset+len` lies within the limit of `c` (expand-down aware).
pub fn within_limit(c: &SegmentCache, offset: u32, len: u32) -> bool {
    let last = offset as u64 + len as u64 - 1;
    if !c.is_code() && c.access & access::DC != 0 {
        let upper: u64 = if c.big() { 0xffff_ffff } else { 0xffff };
        offset as u64 > c.limit as u64 && last <= upper
    } else {
        last <= c.limit as u64
    }
}

/// The checks of a protected-mode load of DS, ES, FS or GS with the non-null selector
/// `sel`, whose descriptor is `d`, at privilege level `cpl` (SDM Vol. 2 MOV, "Operation"):
/// the exception it raises, if any.
#[inline]
fn data_segment_fault(d: Descriptor, sel: u16, cpl: u8) -> Option<Exception> {
    let rpl = (sel & selector::RPL) as u8;
    if !d.is_readable() || !d.is_conforming() && (rpl > d.dpl() || cpl > d.dpl()) {
        return Some(Exception::GeneralProtection(sel & !selector::RPL));
    }
    (!d.present()).then_some(Exception::SegmentNotPresent(sel & !selector::RPL))
}

/// Which far transfer a code-segment load is for (the privilege rules differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeTransfer {
    /// Far JMP or far CALL straight to a code segment: CPL does not change.
    JmpCall,
    /// Far RET or IRET: the new CPL is the popped selector's RPL (never more privileged).
    Return,
}

/// A code segment that passed the checks for a far transfer, ready to commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeTarget {
    /// The new CS cache (selector RPL already set to the new CPL).
    pub cs: SegmentCache,
    /// The CPL after the transfer.
    pub cpl: u8,
}

impl Cpu {
    /// True in protected mode (CR0.PE) outside virtual-8086 mode.
    #[inline]
    pub fn protected_mode(&self) -> bool {
        self.state.cr0 & cr0::PE != 0 && self.state.eflags & flags::VM == 0
    }

    /// Linear address of the descriptor `sel` names, or `None` if its index is beyond the
    /// limit of its table (GDT, or the LDT for TI=1; an unusable LDTR has no valid index).
    pub fn descriptor_address(&self, sel: u16) -> Option<u32> {
        let off = (sel & selector::INDEX) as u32;
        let (base, limit) = if sel & selector::TI != 0 {
            let l = &self.state.ldtr;
            if !l.usable() || is_null(l.selector) {
                return None;
            }
            (l.base, l.limit)
        } else {
            (self.state.gdtr.base, self.state.gdtr.limit as u32)
        };
        (off + 7 <= limit).then_some(base.wrapping_add(off))
    }

    /// Reads the descriptor for `sel`. Errors: `Ok(None)` if the index is beyond the table
    /// limit; a page fault reading the table is an `Err`.
    pub fn fetch_descriptor(&mut self, bus: &mut dyn Bus, sel: u16) -> Result<Option<Descriptor>, Exception> {
        let Some(addr) = self.descriptor_address(sel) else { return Ok(None) };
        let (lo, hi) = self.read_system_pair(bus, addr)?;
        Ok(Some(Descriptor { lo, hi }))
    }

    /// Reads the descriptor for `sel`: #GP(selector) (RPL bits cleared) if it is beyond its table.
    pub fn read_descriptor(&mut self, bus: &mut dyn Bus, sel: u16) -> Result<Descriptor, Exception> {
        self.fetch_descriptor(bus, sel)?.ok_or(Exception::GeneralProtection(sel & !selector::RPL))
    }

    /// Writes the high dword of the descriptor `sel` names (the Accessed or Busy bit).
    pub fn write_descriptor_hi(&mut self, bus: &mut dyn Bus, sel: u16, hi: u32) -> Result<(), Exception> {
        let addr = self.descriptor_address(sel).ok_or(Exception::GeneralProtection(sel & !selector::RPL))?;
        self.write_system(bus, addr.wrapping_add(4), 4, hi)
    }

    /// Sets the Accessed bit of a code/data descriptor in memory if it is clear, and returns
    /// the descriptor as now in memory.
    pub fn mark_accessed(&mut self, bus: &mut dyn Bus, sel: u16, d: Descriptor) -> Result<Descriptor, Exception> {
        if d.hi & (1 << 8) != 0 {
            return Ok(d);
        }
        let d = Descriptor { lo: d.lo, hi: d.hi | 1 << 8 };
        self.write_descriptor_hi(bus, sel, d.hi)?;
        Ok(d)
    }

    /// Checks a load of data-segment register `seg` (DS/ES/FS/GS/SS) with `sel` per the SDM's
    /// MOV Sreg page and returns the new cache without loading it. Sets the Accessed bit.
    /// Real and virtual-8086 mode: base = selector × 16, the rest of the cache unchanged
    /// (limit 0xffff, DPL 3, for VM86).
    pub fn check_data_segment(&mut self, bus: &mut dyn Bus, seg: Seg, sel: u16) -> Result<SegmentCache, Exception> {
        if !self.protected_mode() {
            let mut c = *self.state.seg(seg);
            c.selector = sel;
            c.base = (sel as u32) << 4;
            if self.state.eflags & flags::VM != 0 {
                c.access = access::P | access::S | access::RW | access::ACCESSED | 3 << access::DPL_SHIFT;
                c.limit = 0xffff;
            }
            return Ok(c);
        }
        let cpl = self.state.cpl;
        let rpl = (sel & selector::RPL) as u8;
        let gp = Exception::GeneralProtection(sel & !selector::RPL);
        if seg == Seg::Ss {
            if is_null(sel) {
                return Err(Exception::GeneralProtection(0));
            }
            let d = self.read_descriptor(bus, sel)?;
            if rpl != cpl || !d.is_writable_data() || d.dpl() != cpl {
                return Err(gp);
            }
            if !d.present() {
                return Err(Exception::StackFault(sel & !selector::RPL));
            }
            let d = self.mark_accessed(bus, sel, d)?;
            return Ok(d.cache(sel));
        }
        if is_null(sel) {
            return Ok(SegmentCache { selector: sel, access: 0, base: 0, limit: 0 });
        }
        let d = self.read_descriptor(bus, sel)?;
        if let Some(e) = data_segment_fault(d, sel, cpl) {
            return Err(e);
        }
        let d = self.mark_accessed(bus, sel, d)?;
        Ok(d.cache(sel))
    }

    /// [`Cpu::check_data_segment`] of DS, ES, FS or GS in protected mode, for the common
    /// case only: a GDT selector whose descriptor lies in a page the TLB holds, is marked
    /// accessed already, and may be loaded. It reads RAM through the TLB and nothing else,
    /// and changes nothing; `None` leaves the load to `check_data_segment` (a translator's
    /// fast path, which an operating system takes four times on each way into its kernel
    /// and out).
    #[inline]
    pub fn quick_data_segment(&self, sel: u16) -> Option<SegmentCache> {
        if !self.protected_mode() || is_null(sel) || sel & selector::TI != 0 {
            return None;
        }
        let raw = self.read_quick::<8>(self.descriptor_address(sel)?, false)?;
        #[allow(clippy::cast_possible_truncation)] // the descriptor's two dwords
        let d = Descriptor { lo: raw as u32, hi: (raw >> 32) as u32 };
        let accessed = d.hi & 1 << 8 != 0;
        (accessed && data_segment_fault(d, sel, self.state.cpl).is_none()).then(|| d.cache(sel))
    }

    /// MOV/POP/Lxx to DS, ES, FS, GS or SS: checks and loads (SDM Vol. 2 MOV, "Operation").
    /// CS is not loadable this way (use [`Cpu::check_code_segment`]).
    pub fn load_segment(&mut self, bus: &mut dyn Bus, seg: Seg, sel: u16) -> Result<(), Exception> {
        debug_assert!(seg != Seg::Cs, "CS is loaded by far transfers only");
        let c = self.check_data_segment(bus, seg, sel)?;
        self.state.seg[seg as usize] = c;
        Ok(())
    }

    /// Checks `sel` as the target code segment of a far JMP/CALL or a far RET/IRET and returns
    /// the cache to load (SDM Vol. 2 JMP, CALL, RET, IRET). Call gates, task gates and TSS
    /// targets are `Event::Unsupported`. Does not check the new EIP against the limit.
    pub fn check_code_segment(&mut self, bus: &mut dyn Bus, sel: u16, kind: CodeTransfer) -> Result<CodeTarget, Event> {
        let rpl = (sel & selector::RPL) as u8;
        if !self.protected_mode() {
            let mut cs = *self.state.seg(Seg::Cs);
            cs.selector = sel;
            cs.base = (sel as u32) << 4;
            let cpl = if self.state.eflags & flags::VM != 0 { 3 } else { 0 };
            return Ok(CodeTarget { cs, cpl });
        }
        let cpl = self.state.cpl;
        if is_null(sel) {
            return Err(Exception::GeneralProtection(0).into());
        }
        let gp = Exception::GeneralProtection(sel & !selector::RPL);
        let d = self.read_descriptor(bus, sel)?;
        if !d.is_code_or_data() {
            let what = match d.typ() {
                system_type::CALL_GATE16 | system_type::CALL_GATE32 => "far transfer through a call gate",
                system_type::TASK_GATE => "far transfer through a task gate (task switch)",
                system_type::TSS16_AVAILABLE | system_type::TSS32_AVAILABLE => "far transfer to a TSS (task switch)",
                _ => return Err(gp.into()),
            };
            if kind == CodeTransfer::JmpCall {
                return Err(Unsupported { what: what.into(), eip: self.state.eip, bytes: vec![] }.into());
            }
            return Err(gp.into());
        }
        if !d.is_code() {
            return Err(gp.into());
        }
        let new_cpl = match kind {
            CodeTransfer::JmpCall => {
                let ok = if d.is_conforming() { d.dpl() <= cpl } else { rpl <= cpl && d.dpl() == cpl };
                if !ok {
                    return Err(gp.into());
                }
                cpl
            }
            CodeTransfer::Return => {
                let ok = rpl >= cpl && if d.is_conforming() { d.dpl() <= rpl } else { d.dpl() == rpl };
                if !ok {
                    return Err(gp.into());
                }
                rpl
            }
        };
        if !d.present() {
            return Err(Exception::SegmentNotPresent(sel & !selector::RPL).into());
        }
        let d = self.mark_accessed(bus, sel, d)?;
        let cs = d.cache((sel & !selector::RPL) | new_cpl as u16);
        Ok(CodeTarget { cs, cpl: new_cpl })
    }

    /// Loads CS and keeps `state.cpl` in sync (the commit half of a far transfer).
    #[inline]
    pub fn commit_code_segment(&mut self, t: CodeTarget) {
        self.state.seg[Seg::Cs as usize] = t.cs;
        self.state.cpl = t.cpl;
    }

    /// Checks and loads `sel` into CS for a far transfer of `kind` with target `eip`
    /// (#GP(0) if `eip` is beyond the new limit); sets CS, CPL and EIP.
    pub fn load_code_segment(
        &mut self,
        bus: &mut dyn Bus,
        sel: u16,
        eip: u32,
        kind: CodeTransfer,
    ) -> Result<(), Event> {
        let t = self.check_code_segment(bus, sel, kind)?;
        if eip > t.cs.limit {
            return Err(Exception::GeneralProtection(0).into());
        }
        self.commit_code_segment(t);
        self.state.eip = eip;
        Ok(())
    }

    /// Checks `sel` as the stack segment of a return to an outer level with `cpl` (far RET, IRET):
    /// #GP(0) for null, #GP(sel) for a bad type/privilege, #SS(sel) if not present.
    pub fn check_outer_stack(&mut self, bus: &mut dyn Bus, sel: u16, cpl: u8) -> Result<SegmentCache, Exception> {
        if is_null(sel) {
            return Err(Exception::GeneralProtection(0));
        }
        let gp = Exception::GeneralProtection(sel & !selector::RPL);
        let d = self.read_descriptor(bus, sel)?;
        if (sel & selector::RPL) as u8 != cpl || !d.is_writable_data() || d.dpl() != cpl {
            return Err(gp);
        }
        if !d.present() {
            return Err(Exception::StackFault(sel & !selector::RPL));
        }
        let d = self.mark_accessed(bus, sel, d)?;
        Ok(d.cache(sel))
    }

    /// After a return to an outer privilege level: DS, ES, FS and GS holding data or
    /// non-conforming code segments more privileged than the new CPL become null.
    pub fn null_inaccessible_data_segments(&mut self) {
        let cpl = self.state.cpl;
        for s in [Seg::Es, Seg::Ds, Seg::Fs, Seg::Gs] {
            let c = &mut self.state.seg[s as usize];
            let conforming = c.is_code() && c.access & access::DC != 0;
            if c.usable() && !conforming && c.dpl() < cpl {
                *c = SegmentCache::default();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_fields() {
        // Ring-3 conforming readable code.
        let d = Descriptor { lo: 0x0000_ffff, hi: 0x00cf_fe00 };
        assert!(d.is_code() && d.is_conforming() && d.is_readable() && d.present());
        assert_eq!(d.dpl(), 3);
        // 32-bit interrupt gate, DPL 3, selector 0x08, offset 0x12345678.
        let g = Descriptor { lo: 0x0008_5678, hi: 0x1234_ee00 };
        assert!(!g.is_code_or_data());
        assert_eq!(g.typ(), system_type::INTERRUPT_GATE32);
        assert_eq!((g.gate_selector(), g.gate_offset(), g.dpl()), (0x08, 0x1234_5678, 3));
        // 16-bit trap gate: the high word is not part of the offset.
        let g16 = Descriptor { lo: 0x0010_5678, hi: 0x1234_8700 };
        assert_eq!(g16.gate_offset(), 0x5678);
    }

    #[test]
    fn expand_down_limits() {
        let c = SegmentCache {
            selector: 0x10,
            access: access::P | access::S | access::RW | access::DC,
            base: 0,
            limit: 0xfff,
        };
        assert!(!within_limit(&c, 0xfff, 1));
        assert!(within_limit(&c, 0x1000, 4));
        assert!(!within_limit(&c, 0xfffe, 4), "16-bit expand-down ends at 0xffff");
    }
}
