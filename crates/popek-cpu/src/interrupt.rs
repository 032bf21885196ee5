//! Exception and interrupt delivery through the IDT (SDM Vol. 3A 6.10–6.15; Vol. 2 INT n "Operation").
//!
//! Delivery is computed first (gate, target code segment, stack, frame), the frame is
//! written, and only then are registers changed: a fault during delivery leaves the
//! CPU state as it was (CR2 aside, which the CPU sets when it detects a #PF).
//! Faults during delivery of an exception or external interrupt escalate per the
//! double-fault rules (SDM 6.15, Table 6-5); task gates and virtual-8086 mode are
//! reported as [`Unsupported`].

use crate::Cpu;
use crate::exception::{Event, Exception, ExceptionClass, Unsupported};
use crate::segment::{Descriptor, is_null, selector, system_type, within_limit};
use crate::state::{Seg, SegmentCache, flags, gpr::ESP};
use crate::task::TaskSwitch;
use popek_memory::{Bus, LinearAddr};

/// What kind of event is being delivered: decides the gate DPL check and the EXT bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A processor exception (EXT = 1 in error codes of faults during its delivery).
    Exception,
    /// INT n, INT3, INTO: gate DPL is checked; EXT = 0.
    Software,
    /// A hardware interrupt (EXT = 1).
    External,
}

/// One interrupt or exception the CPU delivered (through the IDT or the real-mode IVT),
/// as `--trace int,exc` and the debugger show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The vector.
    pub vector: u8,
    /// The error code pushed, if any.
    pub error: Option<u32>,
    /// An exception, a software interrupt or an external interrupt.
    pub source: Source,
    /// CS and EIP when it was delivered: the faulting instruction for a fault, the next
    /// one for a trap or an interrupt.
    pub from: (u16, u32),
}

/// A computed delivery, ready to write and commit.
/// Where an IDT gate leads: a handler (the frame to push), or another task (a task gate).
enum Target {
    Frame(Frame),
    Task(u16),
}

struct Frame {
    /// Values to push, in push order, and where (SS offsets).
    pushes: [(u32, u32); 6],
    count: usize,
    width: u32,
    ss: SegmentCache,
    new_esp: u32,
    cs: SegmentCache,
    cpl: u8,
    eip: u32,
    clear_if: bool,
    user: bool,
}

impl Cpu {
    /// True if an external interrupt may be taken now (IF=1 and no STI/MOV SS shadow).
    #[inline]
    pub fn interrupts_enabled(&self) -> bool {
        self.state.eflags & flags::IF != 0 && !self.state.interrupt_shadow
    }

    /// Delivers exception `e` through the IDT. `state.eip` must already hold the EIP
    /// to push (the faulting instruction for faults, the next one for traps).
    /// A fault during delivery escalates per the double-fault rules; a fault while
    /// delivering #DF shuts the CPU down (SDM 6.15, interrupt 8: "the processor enters
    /// shutdown mode"): `state.shutdown` is set and the call returns `Ok`, so that the
    /// engine still reports the instructions it retired before; the run loop stops there.
    pub fn deliver_exception(&mut self, bus: &mut dyn Bus, e: Exception) -> Result<(), Event> {
        let mut e = e;
        // At most: e → (serially) a contributory fault or #PF → #DF → triple fault; the bound
        // only guards against a chain the rules above cannot produce.
        for _ in 0..4 {
            if let Exception::PageFault { addr, .. } = e {
                self.state.cr2 = addr;
            }
            // SDM 17.3.1.1: fault-class exceptions push RF = 1.
            let rf = !e.is_trap() && !matches!(e, Exception::Debug | Exception::DoubleFault);
            match self.deliver_vector(bus, e.vector(), e.error_code(), Source::Exception, rf) {
                Ok(()) => return Ok(()),
                Err(Event::Exception(f)) => match escalate(e, f) {
                    Some(next) => e = next,
                    None => break,
                },
                Err(other) => return Err(other),
            }
        }
        self.state.shutdown = true;
        Ok(())
    }

    /// INT n / INT3 / INTO: delivers `vector` as a software interrupt (gate DPL is
    /// checked against CPL). `state.eip` holds the next instruction.
    /// If delivery faults, the fault comes back as `Err(Event::Exception)` with the CPU
    /// state unchanged: it is a fault of the INT instruction, for the caller to deliver
    /// (no double-fault rules apply to software interrupts).
    pub fn deliver_software_interrupt(&mut self, bus: &mut dyn Bus, vector: u8) -> Result<(), Event> {
        self.deliver_vector(bus, vector, None, Source::Software, false)
    }

    /// Delivers external interrupt `vector` (the caller checked [`Cpu::interrupts_enabled`]).
    /// Clears `halted`. A fault during delivery is delivered in turn (with EXT set in its
    /// error code), escalating per the double-fault rules.
    pub fn deliver_external(&mut self, bus: &mut dyn Bus, vector: u8) -> Result<(), Event> {
        match self.deliver_vector(bus, vector, None, Source::External, false) {
            Err(Event::Exception(f)) => {
                self.state.halted = false;
                self.deliver_exception(bus, f)
            }
            r => r,
        }
    }

    /// Delivers a non-maskable interrupt (vector 2, whatever IF says; the caller checked
    /// [`CpuState::nmi_blocked`](crate::state::CpuState::nmi_blocked) and the interrupt
    /// shadow). NMIs stay blocked until the next IRET (SDM Vol. 3A 6.7.1). Clears `halted`.
    pub fn deliver_nmi(&mut self, bus: &mut dyn Bus) -> Result<(), Event> {
        self.state.nmi_blocked = true;
        self.deliver_external(bus, 2)
    }

    /// Delivers one event; on a fault nothing is changed and the fault is returned. A
    /// delivery that happened is recorded in [`Cpu::deliveries`] when that log is on.
    fn deliver_vector(
        &mut self,
        bus: &mut dyn Bus,
        vector: u8,
        error: Option<u32>,
        src: Source,
        rf: bool,
    ) -> Result<(), Event> {
        let from = (self.state.seg(Seg::Cs).selector, self.state.eip);
        self.deliver_vector_now(bus, vector, error, src, rf)?;
        self.delivered += 1;
        if let Some(log) = &mut self.deliveries {
            log.push(Delivery { vector, error, source: src, from });
        }
        Ok(())
    }

    fn deliver_vector_now(
        &mut self,
        bus: &mut dyn Bus,
        vector: u8,
        error: Option<u32>,
        src: Source,
        rf: bool,
    ) -> Result<(), Event> {
        if self.state.cr0 & crate::state::cr0::PE == 0 {
            return self.deliver_real(bus, vector);
        }
        if self.state.eflags & flags::VM != 0 {
            return Err(unsupported(self, format!("interrupt {vector:#x} from virtual-8086 mode")));
        }
        let frame = match self.compute_frame(bus, vector, error, src, rf)? {
            Target::Frame(f) => f,
            Target::Task(sel) => {
                // SDM 6.12.2: the gate names a TSS; no frame on the old stack.
                let ext = if src == Source::Software { 0 } else { 1 };
                return self.switch_task(bus, sel, TaskSwitch::Interrupt(error), ext);
            }
        };
        // Write the frame (faults here still leave registers untouched): at once if it is
        // one run of bytes in a page the TLB holds for writing, else value by value.
        let pushes = &frame.pushes[..frame.count];
        let contiguous = pushes.windows(2).all(|p| p[1].0 == p[0].0.wrapping_sub(frame.width));
        let mut values = [0u32; 6];
        for (v, &(_, val)) in values.iter_mut().zip(pushes.iter().rev()) {
            *v = val;
        }
        let low = frame.ss.base.wrapping_add(pushes.last().map_or(0, |p| p.0));
        if !(contiguous && self.write_quick_values(low, frame.width, frame.user, &values[..frame.count])) {
            for &(off, val) in pushes {
                let lin = LinearAddr(frame.ss.base.wrapping_add(off));
                self.write_linear(bus, lin, frame.width, val, frame.user)?;
            }
        }
        // Commit.
        self.state.seg[Seg::Ss as usize] = frame.ss;
        self.state.gpr[ESP] = frame.new_esp;
        self.state.seg[Seg::Cs as usize] = frame.cs;
        self.state.cpl = frame.cpl;
        self.state.eip = frame.eip;
        let mut clear = flags::TF | flags::NT | flags::RF | flags::VM;
        if frame.clear_if {
            clear |= flags::IF;
        }
        self.state.eflags &= !clear;
        self.state.halted = false;
        Ok(())
    }

    /// The protected-mode checks of the SDM's INT n pseudo-code, up to (not including) the pushes.
    fn compute_frame(
        &mut self,
        bus: &mut dyn Bus,
        vector: u8,
        error: Option<u32>,
        src: Source,
        rf: bool,
    ) -> Result<Target, Event> {
        let ext: u16 = if src == Source::Software { 0 } else { 1 };
        let idt_code = (vector as u16) * 8 + 2 + ext;
        let cpl = self.state.cpl;

        // The gate.
        let idtr = self.state.idtr;
        if vector as u32 * 8 + 7 > idtr.limit as u32 {
            return Err(Exception::GeneralProtection(idt_code).into());
        }
        let at = idtr.base.wrapping_add(vector as u32 * 8);
        let (lo, hi) = self.read_system_pair(bus, at)?;
        let gate = Descriptor { lo, hi };
        let gate_ok = !gate.is_code_or_data()
            && matches!(
                gate.typ(),
                system_type::TASK_GATE
                    | system_type::INTERRUPT_GATE16
                    | system_type::TRAP_GATE16
                    | system_type::INTERRUPT_GATE32
                    | system_type::TRAP_GATE32
            );
        if !gate_ok {
            return Err(Exception::GeneralProtection(idt_code).into());
        }
        if src == Source::Software && gate.dpl() < cpl {
            return Err(Exception::GeneralProtection(vector as u16 * 8 + 2).into());
        }
        if !gate.present() {
            return Err(Exception::SegmentNotPresent(idt_code).into());
        }
        if gate.typ() == system_type::TASK_GATE {
            return Ok(Target::Task(gate.gate_selector()));
        }

        // The target code segment.
        let sel = gate.gate_selector();
        if is_null(sel) {
            return Err(Exception::GeneralProtection(ext).into());
        }
        let sel_code = (sel & !selector::RPL) | ext;
        let Some(d) = self.fetch_descriptor(bus, sel)? else {
            return Err(Exception::GeneralProtection(sel_code).into());
        };
        if !d.is_code() || d.dpl() > cpl {
            return Err(Exception::GeneralProtection(sel_code).into());
        }
        if !d.present() {
            return Err(Exception::SegmentNotPresent(sel_code).into());
        }
        let inner = !d.is_conforming() && d.dpl() < cpl;
        let new_cpl = if inner { d.dpl() } else { cpl };
        let gate32 = gate.typ() & 8 != 0;
        let width = if gate32 { 4 } else { 2 };
        let wmask = if gate32 { 0xffff_ffff } else { 0xffff };

        // The stack.
        let old_ss = *self.state.seg(Seg::Ss);
        let old_esp = self.state.gpr[ESP];
        let (ss, esp_base, stack_fault) = if inner {
            let (ss_sel, esp) = self.tss_stack(bus, new_cpl, ext)?;
            let ss = self.check_inner_stack(bus, ss_sel, new_cpl, ext)?;
            (ss, esp, (ss_sel & !selector::RPL) | ext)
        } else {
            (old_ss, old_esp, ext)
        };
        let mut values = [0u32; 6];
        let mut n = 0;
        if inner {
            values[0] = old_ss.selector as u32;
            values[1] = old_esp & wmask;
            n = 2;
        }
        let image = self.state.eflags | if rf { flags::RF } else { 0 };
        values[n] = image & wmask;
        values[n + 1] = self.state.seg(Seg::Cs).selector as u32;
        values[n + 2] = self.state.eip & wmask;
        n += 3;
        if let Some(code) = error {
            values[n] = code & wmask;
            n += 1;
        }
        let big = ss.big();
        let mut sp = if big { esp_base } else { esp_base & 0xffff };
        let mut pushes = [(0u32, 0u32); 6];
        for (i, &v) in values[..n].iter().enumerate() {
            sp = sp.wrapping_sub(width);
            if !big {
                sp &= 0xffff;
            }
            if !ss.usable() || !within_limit(&ss, sp, width) {
                return Err(Exception::StackFault(stack_fault).into());
            }
            pushes[i] = (sp, v);
        }
        let new_esp = if big { sp } else { (esp_base & 0xffff_0000) | sp };
        let cs = d.cache((sel & !selector::RPL) | new_cpl as u16);
        if gate.gate_offset() > cs.limit {
            return Err(Exception::GeneralProtection(ext).into());
        }
        // Set the Accessed bit of the new CS only once everything else checked out.
        let d = self.mark_accessed(bus, sel, d)?;
        let cs = d.cache(cs.selector);
        Ok(Target::Frame(Frame {
            pushes,
            count: n,
            width,
            ss,
            new_esp,
            cs,
            cpl: new_cpl,
            eip: gate.gate_offset(),
            clear_if: gate.typ() & 1 == 0,
            user: new_cpl == 3,
        }))
    }

    /// SS:ESP for privilege level `pl` from the current TSS (SDM 7.2.1).
    fn tss_stack(&mut self, bus: &mut dyn Bus, pl: u8, ext: u16) -> Result<(u16, u32), Event> {
        let tr = self.state.tr;
        let ts = Exception::InvalidTss((tr.selector & !selector::RPL) | ext);
        if !tr.usable() {
            return Err(ts.into());
        }
        let tss32 = tr.access & 8 != 0;
        let (esp_off, ss_off, esp_w, last) = if tss32 {
            let a = (pl as u32) * 8 + 4;
            (a, a + 4, 4, a + 5)
        } else {
            let a = (pl as u32) * 4 + 2;
            (a, a + 2, 2, a + 3)
        };
        if last > tr.limit {
            return Err(ts.into());
        }
        let esp = self.read_system(bus, tr.base.wrapping_add(esp_off), esp_w)?;
        #[allow(clippy::cast_possible_truncation)] // a 2-byte read
        let ss = self.read_system(bus, tr.base.wrapping_add(ss_off), 2)? as u16;
        Ok((ss, esp))
    }

    /// Checks the inner-level stack segment from the TSS: #TS(ss+EXT), or #SS(ss+EXT) if not present.
    fn check_inner_stack(&mut self, bus: &mut dyn Bus, sel: u16, pl: u8, ext: u16) -> Result<SegmentCache, Event> {
        if is_null(sel) {
            return Err(Exception::InvalidTss(ext).into());
        }
        let code = (sel & !selector::RPL) | ext;
        let Some(d) = self.fetch_descriptor(bus, sel)? else {
            return Err(Exception::InvalidTss(code).into());
        };
        if (sel & selector::RPL) as u8 != pl || d.dpl() != pl || !d.is_writable_data() {
            return Err(Exception::InvalidTss(code).into());
        }
        if !d.present() {
            return Err(Exception::StackFault(code).into());
        }
        let d = self.mark_accessed(bus, sel, d)?;
        Ok(d.cache(sel))
    }

    /// Real-address mode: through the interrupt vector table (SDM 20.1.4).
    fn deliver_real(&mut self, bus: &mut dyn Bus, vector: u8) -> Result<(), Event> {
        let idtr = self.state.idtr;
        if vector as u32 * 4 + 3 > idtr.limit as u32 {
            return Err(Exception::GeneralProtection(0).into());
        }
        let at = idtr.base.wrapping_add(vector as u32 * 4);
        let ip = self.read_system(bus, at, 2)?;
        #[allow(clippy::cast_possible_truncation)] // a 2-byte read
        let cs = self.read_system(bus, at.wrapping_add(2), 2)? as u16;
        let values = [self.state.eflags & 0xffff, self.state.seg(Seg::Cs).selector as u32, self.state.eip & 0xffff];
        let mut sp = self.sp();
        for v in values {
            sp = self.sp_offset_from(sp, 2);
            self.write(bus, Seg::Ss, sp, 2, v)?;
        }
        self.set_sp(sp);
        let c = &mut self.state.seg[Seg::Cs as usize];
        c.selector = cs;
        c.base = (cs as u32) << 4;
        self.state.eip = ip;
        self.state.eflags &= !(flags::IF | flags::TF | flags::AC | flags::RF);
        self.state.halted = false;
        Ok(())
    }

    /// `sp - width`, wrapped to the current stack width.
    fn sp_offset_from(&self, sp: u32, width: u32) -> u32 {
        let v = sp.wrapping_sub(width);
        if self.state.stack32() { v } else { v & 0xffff }
    }
}

/// The double-fault decision (SDM Table 6-5) for fault `second` while delivering `first`.
/// `None`: a fault while delivering #DF, a triple fault.
fn escalate(first: Exception, second: Exception) -> Option<Exception> {
    use ExceptionClass::*;
    match (first.class(), second.class()) {
        (DoubleFault, _) => None,
        (Contributory, Contributory) | (PageFault, Contributory | PageFault) => Some(Exception::DoubleFault),
        _ => Some(second),
    }
}

fn unsupported(cpu: &Cpu, what: String) -> Event {
    Event::Unsupported(Unsupported { what, eip: cpu.state.eip, bytes: vec![] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_fault_table() {
        let gp = Exception::GeneralProtection(0);
        let pf = Exception::PageFault { addr: 0, code: 0 };
        let ud = Exception::InvalidOpcode;
        assert_eq!(escalate(gp, Exception::SegmentNotPresent(8)), Some(Exception::DoubleFault));
        assert_eq!(escalate(pf, pf), Some(Exception::DoubleFault));
        assert_eq!(escalate(pf, gp), Some(Exception::DoubleFault));
        assert_eq!(escalate(gp, pf), Some(pf), "contributory then #PF is serial");
        assert_eq!(escalate(ud, gp), Some(gp), "benign then anything is serial");
        assert_eq!(escalate(Exception::DoubleFault, gp), None);
    }
}
