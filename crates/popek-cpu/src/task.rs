//! Hardware task switches (SDM Vol. 3A 7.3 "Task Switching", the 14 steps, and 7.4 "Task
//! Linking"): a far JMP or CALL to a TSS or through a task gate, an interrupt or exception
//! through a task gate in the IDT, and IRET with EFLAGS.NT set.
//!
//! Used by the far-transfer and IRET handlers of the VMM and by interrupt delivery, so
//! both engines switch tasks through this one function. 32-bit TSSs only: a 16-bit TSS is
//! reported unsupported. The debug trap flag (T) of the new TSS is not acted on.
//!
//! Faults are raised where the SDM's steps put them: those found before the state is
//! saved come back as `Err` with nothing changed (the fault belongs to the old task);
//! those found while loading the new task's segments, after the switch committed, are
//! delivered at once in the new task's context, as on the processor.

use crate::Cpu;
use crate::exception::{Event, Exception, Unsupported};
use crate::segment::{Descriptor, is_null, selector, system_type};
use crate::state::{Seg, SegmentCache, cr0, flags};
use popek_memory::Bus;

/// What starts a task switch; it decides the busy bits, NT and the back link (SDM Table 7-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskSwitch {
    /// JMP: the old task's busy bit is cleared, no link.
    Jmp,
    /// CALL: the new task is nested (NT set, back link to the old one).
    Call,
    /// An interrupt or exception through a task gate, with the error code the new task's
    /// stack receives: nested, like CALL.
    Interrupt(Option<u32>),
    /// IRET with NT set: back to the task the link names, which must be busy.
    Iret,
}

/// Byte offsets in a 32-bit TSS (SDM Figure 7-2).
mod tss {
    pub const LINK: u32 = 0x00;
    pub const CR3: u32 = 0x1c;
    pub const EIP: u32 = 0x20;
    pub const EFLAGS: u32 = 0x24;
    pub const EAX: u32 = 0x28;
    pub const ES: u32 = 0x48;
    pub const LDT: u32 = 0x60;
    /// Smallest limit of a 32-bit TSS.
    pub const MIN_LIMIT: u32 = 0x67;
}

/// The bits of CR3 a TSS can load (as MOV CR3: the page directory base, PWT and PCD).
const CR3_BITS: u32 = 0xffff_f000 | (1 << 4) | (1 << 3);

/// Segment registers in TSS order (ES, CS, SS, DS, FS, GS: `Seg` order).
const SEGS: [Seg; 6] = [Seg::Es, Seg::Cs, Seg::Ss, Seg::Ds, Seg::Fs, Seg::Gs];

impl Cpu {
    /// Switches to the task whose TSS selector is `sel`. `state.eip` must hold the EIP
    /// the old task resumes at. `ext` is 1 if an external event caused the switch (it
    /// goes into error codes). The caller has done the privilege checks of the gate or
    /// TSS descriptor that led here (JMP/CALL: DPL against CPL and RPL; INT n: the gate's
    /// DPL).
    pub fn switch_task(&mut self, bus: &mut dyn Bus, sel: u16, kind: TaskSwitch, ext: u16) -> Result<(), Event> {
        let sel_code = (sel & !selector::RPL) | ext;
        // Step 2–4: the new TSS descriptor, from the GDT only.
        let wrong = |k: TaskSwitch| -> Exception {
            if k == TaskSwitch::Iret { Exception::InvalidTss(sel_code) } else { Exception::GeneralProtection(sel_code) }
        };
        if sel & selector::TI != 0 || is_null(sel) {
            return Err(wrong(kind).into());
        }
        let Some(d) = self.fetch_descriptor(bus, sel)? else { return Err(wrong(kind).into()) };
        let typ = if d.is_code_or_data() { 0 } else { d.typ() };
        let (available, busy) = (system_type::TSS32_AVAILABLE, system_type::TSS32_BUSY);
        if matches!(typ, system_type::TSS16_AVAILABLE | system_type::TSS16_BUSY) {
            return Err(
                Unsupported { what: "switch to a 16-bit TSS".into(), eip: self.state.eip, bytes: vec![] }.into()
            );
        }
        let type_ok = if kind == TaskSwitch::Iret { typ == busy } else { typ == available };
        if !type_ok {
            return Err(wrong(kind).into());
        }
        if !d.present() {
            return Err(Exception::SegmentNotPresent(sel_code).into());
        }
        let new = d.cache(sel);
        if new.limit < tss::MIN_LIMIT {
            return Err(Exception::InvalidTss(sel_code).into());
        }
        let old = self.state.tr;
        if !old.usable() || old.limit < tss::MIN_LIMIT {
            return Err(Exception::InvalidTss((old.selector & !selector::RPL) | ext).into());
        }

        // Read everything the new task loads before anything is written (a page fault
        // here belongs to the old task).
        let rd = |cpu: &mut Cpu, bus: &mut dyn Bus, off: u32, w| cpu.read_system(bus, new.base.wrapping_add(off), w);
        let new_cr3 = rd(self, bus, tss::CR3, 4)?;
        let new_eip = rd(self, bus, tss::EIP, 4)?;
        let mut new_eflags = rd(self, bus, tss::EFLAGS, 4)?;
        let mut new_gpr = [0u32; 8];
        for (i, r) in (0u32..).zip(new_gpr.iter_mut()) {
            *r = rd(self, bus, tss::EAX + 4 * i, 4)?;
        }
        let mut new_sel = [0u16; 6];
        for (i, s) in (0u32..).zip(new_sel.iter_mut()) {
            #[allow(clippy::cast_possible_truncation)] // a 2-byte read
            let v = rd(self, bus, tss::ES + 4 * i, 2)? as u16;
            *s = v;
        }
        #[allow(clippy::cast_possible_truncation)] // a 2-byte read
        let new_ldt = rd(self, bus, tss::LDT, 2)? as u16;

        // Step 5–8: save the old task's state in its TSS (EFLAGS with NT cleared on IRET),
        // and clear its busy bit on JMP and IRET.
        let mut old_eflags = self.state.eflags;
        if kind == TaskSwitch::Iret {
            old_eflags &= !flags::NT;
        }
        let wr =
            |cpu: &mut Cpu, bus: &mut dyn Bus, off: u32, w, v| cpu.write_system(bus, old.base.wrapping_add(off), w, v);
        wr(self, bus, tss::EIP, 4, self.state.eip)?;
        wr(self, bus, tss::EFLAGS, 4, old_eflags)?;
        for (i, v) in (0u32..).zip(self.state.gpr) {
            wr(self, bus, tss::EAX + 4 * i, 4, v)?;
        }
        for (i, s) in (0u32..).zip(SEGS) {
            wr(self, bus, tss::ES + 4 * i, 2, u32::from(self.state.seg(s).selector))?;
        }
        if matches!(kind, TaskSwitch::Jmp | TaskSwitch::Iret) {
            let od = self.read_descriptor(bus, old.selector)?;
            self.write_descriptor_hi(bus, old.selector, od.hi & !(2 << 8))?;
        }
        // Nesting: the back link and NT (CALL, interrupts); the new task becomes busy.
        if matches!(kind, TaskSwitch::Call | TaskSwitch::Interrupt(_)) {
            self.write_system(bus, new.base.wrapping_add(tss::LINK), 2, u32::from(old.selector))?;
            new_eflags |= flags::NT;
        }
        let new_hi = if kind == TaskSwitch::Iret { d.hi } else { d.hi | 2 << 8 };
        if new_hi != d.hi {
            self.write_descriptor_hi(bus, sel, new_hi)?;
        }

        // Step 9–12: commit. TR, CR0.TS, CR3, then the registers; segment registers get
        // their selectors now and their descriptors checked below.
        self.state.tr = Descriptor { lo: d.lo, hi: new_hi }.cache(sel);
        self.state.cr0 |= cr0::TS;
        if self.state.cr0 & cr0::PG != 0 {
            self.state.cr3 = new_cr3 & CR3_BITS;
            self.tlb.flush_non_global();
        }
        self.state.eflags = new_eflags | flags::FIXED1;
        self.state.eip = new_eip;
        self.state.gpr = new_gpr;
        for (i, s) in SEGS.iter().enumerate() {
            self.state.seg[*s as usize] = SegmentCache { selector: new_sel[i], access: 0, base: 0, limit: 0 };
        }
        self.state.ldtr = SegmentCache { selector: new_ldt, access: 0, base: 0, limit: 0 };
        self.state.cpl = (new_sel[Seg::Cs as usize] & selector::RPL) as u8;
        self.state.halted = false;
        self.state.interrupt_shadow = false;

        // Step 13: the segments, in the new task's context.
        if let Err(e) = self.load_task_segments(bus, new_ldt, new_sel, ext) {
            return self.deliver_exception(bus, e);
        }
        // An exception's error code goes on the new task's stack.
        if let TaskSwitch::Interrupt(Some(code)) = kind {
            let sp = self.sp_offset(4u32.wrapping_neg());
            if let Err(e) = self.write(bus, Seg::Ss, sp, 4, code) {
                return self.deliver_exception(bus, e);
            }
            self.set_sp(sp);
        }
        if new_eip > self.state.seg(Seg::Cs).limit {
            return self.deliver_exception(bus, Exception::GeneralProtection(ext));
        }
        Ok(())
    }

    /// Loads LDTR and the segment registers of the task just switched to (SDM 7.3 step 13
    /// and Table 7-1's conditions): #TS for a bad descriptor, #NP (#SS for SS) for one not present.
    fn load_task_segments(&mut self, bus: &mut dyn Bus, ldt: u16, sels: [u16; 6], ext: u16) -> Result<(), Exception> {
        let ts = |s: u16| Exception::InvalidTss((s & !selector::RPL) | ext);
        if !is_null(ldt) {
            if ldt & selector::TI != 0 {
                return Err(ts(ldt));
            }
            let d = self.fetch_descriptor(bus, ldt)?.ok_or(ts(ldt))?;
            if d.is_code_or_data() || d.typ() != system_type::LDT {
                return Err(ts(ldt));
            }
            if !d.present() {
                return Err(Exception::SegmentNotPresent((ldt & !selector::RPL) | ext));
            }
            self.state.ldtr = d.cache(ldt);
        }
        let cpl = self.state.cpl;
        // CS: code, DPL = CPL (non-conforming) or DPL <= CPL (conforming).
        let cs = sels[Seg::Cs as usize];
        if is_null(cs) {
            return Err(ts(cs));
        }
        let d = self.fetch_descriptor(bus, cs)?.ok_or(ts(cs))?;
        let ok = d.is_code() && if d.is_conforming() { d.dpl() <= cpl } else { d.dpl() == cpl };
        if !ok {
            return Err(ts(cs));
        }
        if !d.present() {
            return Err(Exception::SegmentNotPresent((cs & !selector::RPL) | ext));
        }
        let d = self.mark_accessed(bus, cs, d)?;
        self.state.seg[Seg::Cs as usize] = d.cache(cs);
        // SS: writable data with RPL = DPL = CPL.
        let ss = sels[Seg::Ss as usize];
        if is_null(ss) {
            return Err(ts(ss));
        }
        let d = self.fetch_descriptor(bus, ss)?.ok_or(ts(ss))?;
        if !d.is_writable_data() || d.dpl() != cpl || (ss & selector::RPL) as u8 != cpl {
            return Err(ts(ss));
        }
        if !d.present() {
            return Err(Exception::StackFault((ss & !selector::RPL) | ext));
        }
        let d = self.mark_accessed(bus, ss, d)?;
        self.state.seg[Seg::Ss as usize] = d.cache(ss);
        // DS, ES, FS, GS: null, or data / readable code the new CPL and the RPL may use.
        for s in [Seg::Es, Seg::Ds, Seg::Fs, Seg::Gs] {
            let v = sels[s as usize];
            let c = self.check_data_segment(bus, s, v).map_err(|e| match e {
                Exception::GeneralProtection(_) => ts(v),
                Exception::SegmentNotPresent(_) => Exception::SegmentNotPresent((v & !selector::RPL) | ext),
                other => other,
            })?;
            self.state.seg[s as usize] = c;
        }
        Ok(())
    }

    /// A far JMP or CALL whose selector names a system descriptor: a TSS, or a task gate
    /// leading to one (SDM Vol. 2 JMP/CALL, "task gate" and "TSS" branches). `Ok(false)`:
    /// not a task switch (the caller goes on with its code-segment checks).
    pub fn far_transfer_to_task(&mut self, bus: &mut dyn Bus, sel: u16, call: bool) -> Result<bool, Event> {
        if is_null(sel) {
            return Ok(false);
        }
        let Some(d) = self.fetch_descriptor(bus, sel)? else { return Ok(false) };
        if d.is_code_or_data() {
            return Ok(false);
        }
        let gp = Exception::GeneralProtection(sel & !selector::RPL);
        let kind = if call { TaskSwitch::Call } else { TaskSwitch::Jmp };
        let (cpl, rpl) = (self.state.cpl, (sel & selector::RPL) as u8);
        match d.typ() {
            system_type::TSS32_AVAILABLE | system_type::TSS32_BUSY | system_type::TSS16_AVAILABLE => {
                if d.dpl() < cpl || d.dpl() < rpl {
                    return Err(gp.into());
                }
                self.switch_task(bus, sel, kind, 0)?;
                Ok(true)
            }
            system_type::TASK_GATE => {
                if d.dpl() < cpl || d.dpl() < rpl {
                    return Err(gp.into());
                }
                if !d.present() {
                    return Err(Exception::SegmentNotPresent(sel & !selector::RPL).into());
                }
                let tss_sel = d.gate_selector();
                self.switch_task(bus, tss_sel, kind, 0)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// IRET with NT set: back to the task named by the current TSS's back link.
    pub fn return_from_nested_task(&mut self, bus: &mut dyn Bus) -> Result<(), Event> {
        let tr = self.state.tr;
        if !tr.usable() {
            return Err(Exception::InvalidTss(tr.selector & !selector::RPL).into());
        }
        #[allow(clippy::cast_possible_truncation)] // a 2-byte read
        let link = self.read_system(bus, tr.base.wrapping_add(tss::LINK), 2)? as u16;
        self.switch_task(bus, link, TaskSwitch::Iret, 0)
    }
}
