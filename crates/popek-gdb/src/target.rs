//! The guest as a gdbstub target: what each gdb request does to the [`Debugger`].
//!
//! Registers are the i386 core set (gdb's default i386 description with SSE, which
//! `gdbstub_arch::x86::X86_SSE` lays out); memory is read and written at linear addresses
//! through the guest's page tables ([`debug::peek`], [`Debugger::poke`]), as QEMU's stub
//! does. Breakpoints, `Z0` and `Z1` alike, are the debugger's (no INT3 is written into the
//! guest); watchpoints are the debugger's too and stop after the access, as x86's do.

use gdbstub::common::Signal;
use gdbstub::stub::SingleThreadStopReason;
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::base::single_register_access::{SingleRegisterAccess, SingleRegisterAccessOps};
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep, SingleThreadSingleStepOps,
};
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps, SwBreakpoint,
    SwBreakpointOps, WatchKind as GdbWatchKind,
};
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::x86::X86_SSE;
use gdbstub_arch::x86::reg::X86CoreRegs;
use gdbstub_arch::x86::reg::id::{X86CoreRegId, X86SegmentRegId, X87FpuInternalRegId};
use popek_cpu::state::Seg;
use popek_machine::StopReason;
use popek_machine::debug::{self, Breakpoint, DebugStop, Debugger, WatchKind, Watchpoint};
use std::collections::BTreeSet;
use std::time::Instant;

/// Instructions the guest runs between two looks at the connection (for a Ctrl-C from
/// gdb) and at the clock: a few milliseconds at the interpreter's speed.
pub const RUN_SLICE: u64 = 200_000;

/// EFLAGS bits a register write may change (not VM: gdb does not switch the CPU to
/// virtual-8086 mode); bit 1 is always set.
const EFLAGS_WRITABLE: u32 = 0x003d_7fd5;

/// What the guest does when gdb resumes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Run until something stops it.
    Continue,
    /// One instruction, with interrupts held.
    Step,
}

/// A debugged guest as gdbstub drives it.
pub struct GdbTarget<'a> {
    debugger: &'a mut Debugger,
    /// Addresses of gdb's software (`Z0`) and hardware (`Z1`) breakpoints; the
    /// debugger's breakpoint is there while either set holds it.
    sw: BTreeSet<u32>,
    hw: BTreeSet<u32>,
    /// How gdb last resumed the guest.
    pub(crate) resume: Resume,
    /// The end of `--timeout`, looked at while the guest runs.
    deadline: Option<Instant>,
    /// The process exit status for a stop of the machine (reported to gdb as `W`).
    exit_status: fn(&StopReason) -> u8,
    /// Why the machine stopped for good, once it has.
    pub(crate) finished: Option<StopReason>,
}

impl<'a> GdbTarget<'a> {
    /// A target on `debugger`. `exit_status` gives the status reported to gdb (and that
    /// the process exits with) when the machine stops.
    pub(crate) fn new(
        debugger: &'a mut Debugger,
        deadline: Option<Instant>,
        exit_status: fn(&StopReason) -> u8,
    ) -> Self {
        GdbTarget {
            debugger,
            sw: BTreeSet::new(),
            hw: BTreeSet::new(),
            resume: Resume::Continue,
            deadline,
            exit_status,
            finished: None,
        }
    }

    /// Removes every breakpoint and watchpoint gdb set (when it goes away).
    pub(crate) fn clear(&mut self) {
        for a in std::mem::take(&mut self.sw).into_iter().chain(std::mem::take(&mut self.hw)) {
            self.debugger.remove_breakpoint(Breakpoint::Virtual(a));
        }
        for w in self.debugger.watchpoints().to_vec() {
            self.debugger.remove_watchpoint(w);
        }
    }

    /// Runs the guest as gdb asked, at most one slice of a continue: `None` when the
    /// slice ran out with nothing to report.
    pub(crate) fn run_slice(&mut self) -> Option<SingleThreadStopReason<u32>> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Some(self.machine_stopped(StopReason::Timeout));
        }
        let stop = match self.resume {
            Resume::Step => self.debugger.step_holding_interrupts(1),
            Resume::Continue => self.debugger.run_for(RUN_SLICE, false),
        };
        match stop {
            DebugStop::Stepped | DebugStop::BlockEnd if self.resume == Resume::Continue => None,
            DebugStop::Stepped | DebugStop::BlockEnd => Some(trap()),
            DebugStop::Breakpoint(Breakpoint::Virtual(a)) if self.sw.contains(&a) => {
                Some(SingleThreadStopReason::SwBreak(()))
            }
            DebugStop::Breakpoint(_) => Some(SingleThreadStopReason::HwBreak(())),
            DebugStop::Watchpoint { watch, addr, .. } => Some(SingleThreadStopReason::Watch {
                tid: (),
                kind: match watch.kind {
                    WatchKind::Write => GdbWatchKind::Write,
                    WatchKind::Read => GdbWatchKind::Read,
                    WatchKind::Access => GdbWatchKind::ReadWrite,
                },
                // gdb finds the watchpoint by an address inside it.
                addr: addr.max(watch.addr),
            }),
            DebugStop::Machine(s) => Some(self.machine_stopped(s)),
            DebugStop::Interrupted => Some(self.machine_stopped(StopReason::Interrupted)),
        }
    }

    /// The machine stopped for good: gdb hears that the process exited (`W`), or that
    /// Ctrl-C at the host ended it (`X`, SIGINT).
    fn machine_stopped(&mut self, stop: StopReason) -> SingleThreadStopReason<u32> {
        let reply = match stop {
            StopReason::Interrupted => SingleThreadStopReason::Terminated(Signal::SIGINT),
            _ => SingleThreadStopReason::Exited((self.exit_status)(&stop)),
        };
        self.finished = Some(stop);
        reply
    }

    fn segment(&self, seg: Seg) -> u32 {
        u32::from(self.debugger.cpu().state.seg(seg).selector)
    }

    fn set_segment(&mut self, seg: Seg, value: u32) -> TargetResult<(), Self> {
        let sel = u16::try_from(value).map_err(|_| TargetError::NonFatal)?;
        self.debugger.set_segment(seg, sel).map_err(|_| TargetError::NonFatal)
    }

    fn set_eflags(&mut self, value: u32) {
        let state = &mut self.debugger.cpu_mut().state;
        state.eflags = (state.eflags & !EFLAGS_WRITABLE) | (value & EFLAGS_WRITABLE) | 2;
    }
}

/// The stop after a single step: `T05` with the thread, as QEMU replies (gdbstub's own
/// "step done" is an `S05`).
fn trap() -> SingleThreadStopReason<u32> {
    SingleThreadStopReason::SignalWithThread { tid: (), signal: Signal::SIGTRAP }
}

/// The stop reply to a Ctrl-C from gdb: `T02` with the thread, as QEMU replies.
pub(crate) fn interrupted() -> SingleThreadStopReason<u32> {
    SingleThreadStopReason::SignalWithThread { tid: (), signal: Signal::SIGINT }
}

fn seg_of(id: X86SegmentRegId) -> Seg {
    match id {
        X86SegmentRegId::CS => Seg::Cs,
        X86SegmentRegId::SS => Seg::Ss,
        X86SegmentRegId::DS => Seg::Ds,
        X86SegmentRegId::ES => Seg::Es,
        X86SegmentRegId::FS => Seg::Fs,
        X86SegmentRegId::GS => Seg::Gs,
    }
}

impl Target for GdbTarget<'_> {
    type Arch = X86_SSE;
    type Error = std::convert::Infallible;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::SingleThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    /// Replies are sent as they are, without run-length encoding, as QEMU sends them:
    /// a raw client (a lab grader) reads a `g` reply as plain hex.
    fn use_rle(&self) -> bool {
        false
    }
}

impl SingleThreadBase for GdbTarget<'_> {
    fn read_registers(&mut self, regs: &mut X86CoreRegs) -> TargetResult<(), Self> {
        let s = &self.debugger.cpu().state;
        use popek_cpu::state::gpr::*;
        regs.eax = s.gpr[EAX];
        regs.ecx = s.gpr[ECX];
        regs.edx = s.gpr[EDX];
        regs.ebx = s.gpr[EBX];
        regs.esp = s.gpr[ESP];
        regs.ebp = s.gpr[EBP];
        regs.esi = s.gpr[ESI];
        regs.edi = s.gpr[EDI];
        regs.eip = s.eip;
        regs.eflags = s.eflags;
        regs.segments.cs = self.segment(Seg::Cs);
        regs.segments.ss = self.segment(Seg::Ss);
        regs.segments.ds = self.segment(Seg::Ds);
        regs.segments.es = self.segment(Seg::Es);
        regs.segments.fs = self.segment(Seg::Fs);
        regs.segments.gs = self.segment(Seg::Gs);
        let x = &s.x87;
        for (i, st) in regs.st.iter_mut().enumerate() {
            *st = x.st(i).to_bytes();
        }
        regs.fpu.fctrl = u32::from(x.fcw);
        regs.fpu.fstat = u32::from(x.fsw);
        regs.fpu.ftag = u32::from(x.full_tag_word());
        regs.fpu.fiseg = u32::from(x.fcs);
        regs.fpu.fioff = x.fip;
        regs.fpu.foseg = u32::from(x.fds);
        regs.fpu.fooff = x.fdp;
        regs.fpu.fop = u32::from(x.fop);
        regs.xmm = [0; 8];
        regs.mxcsr = 0x1f80;
        Ok(())
    }

    fn write_registers(&mut self, regs: &X86CoreRegs) -> TargetResult<(), Self> {
        {
            let s = &mut self.debugger.cpu_mut().state;
            s.gpr = [regs.eax, regs.ecx, regs.edx, regs.ebx, regs.esp, regs.ebp, regs.esi, regs.edi];
        }
        self.set_eflags(regs.eflags);
        self.debugger.set_eip(regs.eip);
        let seg = &regs.segments;
        for (s, v) in [(Seg::Cs, seg.cs), (Seg::Ss, seg.ss), (Seg::Ds, seg.ds), (Seg::Es, seg.es)] {
            self.set_segment(s, v)?;
        }
        self.set_segment(Seg::Fs, seg.fs)?;
        self.set_segment(Seg::Gs, seg.gs)
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, (), Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start: u32, data: &mut [u8]) -> TargetResult<usize, Self> {
        let cpu = self.debugger.cpu();
        for (i, (off, b)) in (0u32..).zip(data.iter_mut()).enumerate() {
            match debug::peek(cpu, start.wrapping_add(off)) {
                Some(v) => *b = v,
                None if i == 0 => return Err(TargetError::NonFatal),
                None => return Ok(i),
            }
        }
        Ok(data.len())
    }

    fn write_addrs(&mut self, start: u32, data: &[u8]) -> TargetResult<(), Self> {
        for (off, b) in (0u32..).zip(data) {
            if !self.debugger.poke(start.wrapping_add(off), *b) {
                return Err(TargetError::NonFatal);
            }
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleRegisterAccess<()> for GdbTarget<'_> {
    fn read_register(&mut self, _tid: (), id: X86CoreRegId, buf: &mut [u8]) -> TargetResult<usize, Self> {
        let mut regs = X86CoreRegs::default();
        self.read_registers(&mut regs)?;
        let fpu = &regs.fpu;
        let bytes: Vec<u8> = match id {
            X86CoreRegId::Eax => regs.eax.to_le_bytes().to_vec(),
            X86CoreRegId::Ecx => regs.ecx.to_le_bytes().to_vec(),
            X86CoreRegId::Edx => regs.edx.to_le_bytes().to_vec(),
            X86CoreRegId::Ebx => regs.ebx.to_le_bytes().to_vec(),
            X86CoreRegId::Esp => regs.esp.to_le_bytes().to_vec(),
            X86CoreRegId::Ebp => regs.ebp.to_le_bytes().to_vec(),
            X86CoreRegId::Esi => regs.esi.to_le_bytes().to_vec(),
            X86CoreRegId::Edi => regs.edi.to_le_bytes().to_vec(),
            X86CoreRegId::Eip => regs.eip.to_le_bytes().to_vec(),
            X86CoreRegId::Eflags => regs.eflags.to_le_bytes().to_vec(),
            X86CoreRegId::Segment(s) => self.segment(seg_of(s)).to_le_bytes().to_vec(),
            X86CoreRegId::St(i) => regs.st.get(usize::from(i)).ok_or(TargetError::NonFatal)?.to_vec(),
            X86CoreRegId::Fpu(f) => match f {
                X87FpuInternalRegId::Fctrl => fpu.fctrl,
                X87FpuInternalRegId::Fstat => fpu.fstat,
                X87FpuInternalRegId::Ftag => fpu.ftag,
                X87FpuInternalRegId::Fiseg => fpu.fiseg,
                X87FpuInternalRegId::Fioff => fpu.fioff,
                X87FpuInternalRegId::Foseg => fpu.foseg,
                X87FpuInternalRegId::Fooff => fpu.fooff,
                X87FpuInternalRegId::Fop => fpu.fop,
            }
            .to_le_bytes()
            .to_vec(),
            X86CoreRegId::Xmm(_) => vec![0; 16],
            X86CoreRegId::Mxcsr => regs.mxcsr.to_le_bytes().to_vec(),
            _ => return Err(TargetError::NonFatal),
        };
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }

    fn write_register(&mut self, _tid: (), id: X86CoreRegId, val: &[u8]) -> TargetResult<(), Self> {
        let v = match <[u8; 4]>::try_from(val) {
            Ok(b) => u32::from_le_bytes(b),
            // The x87 and SSE registers are read-only here.
            Err(_) => return Err(TargetError::NonFatal),
        };
        use popek_cpu::state::gpr::*;
        let gpr = |r: usize| -> Option<usize> { Some(r) };
        let index = match id {
            X86CoreRegId::Eax => gpr(EAX),
            X86CoreRegId::Ecx => gpr(ECX),
            X86CoreRegId::Edx => gpr(EDX),
            X86CoreRegId::Ebx => gpr(EBX),
            X86CoreRegId::Esp => gpr(ESP),
            X86CoreRegId::Ebp => gpr(EBP),
            X86CoreRegId::Esi => gpr(ESI),
            X86CoreRegId::Edi => gpr(EDI),
            _ => None,
        };
        match (index, id) {
            (Some(i), _) => self.debugger.cpu_mut().state.gpr[i] = v,
            (None, X86CoreRegId::Eip) => self.debugger.set_eip(v),
            (None, X86CoreRegId::Eflags) => self.set_eflags(v),
            (None, X86CoreRegId::Segment(s)) => self.set_segment(seg_of(s), v)?,
            _ => return Err(TargetError::NonFatal),
        }
        Ok(())
    }
}

impl SingleThreadResume for GdbTarget<'_> {
    fn resume(&mut self, _signal: Option<Signal>) -> Result<(), Self::Error> {
        self.resume = Resume::Continue;
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadSingleStep for GdbTarget<'_> {
    fn step(&mut self, _signal: Option<Signal>) -> Result<(), Self::Error> {
        self.resume = Resume::Step;
        Ok(())
    }
}

impl Breakpoints for GdbTarget<'_> {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

impl GdbTarget<'_> {
    fn add_breakpoint(&mut self, addr: u32, hw: bool) -> bool {
        self.debugger.add_breakpoint(Breakpoint::Virtual(addr));
        match hw {
            true => self.hw.insert(addr),
            false => self.sw.insert(addr),
        };
        true
    }

    fn remove_breakpoint(&mut self, addr: u32, hw: bool) -> bool {
        let had = match hw {
            true => self.hw.remove(&addr),
            false => self.sw.remove(&addr),
        };
        if !self.sw.contains(&addr) && !self.hw.contains(&addr) {
            self.debugger.remove_breakpoint(Breakpoint::Virtual(addr));
        }
        had
    }

    fn watchpoint(addr: u32, len: u32, kind: GdbWatchKind) -> Option<Watchpoint> {
        let kind = match kind {
            GdbWatchKind::Write => WatchKind::Write,
            GdbWatchKind::Read => WatchKind::Read,
            GdbWatchKind::ReadWrite => WatchKind::Access,
        };
        (1..=4096).contains(&len).then_some(Watchpoint { addr, len, kind })
    }
}

impl SwBreakpoint for GdbTarget<'_> {
    fn add_sw_breakpoint(&mut self, addr: u32, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.add_breakpoint(addr, false))
    }

    fn remove_sw_breakpoint(&mut self, addr: u32, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.remove_breakpoint(addr, false))
    }
}

impl HwBreakpoint for GdbTarget<'_> {
    fn add_hw_breakpoint(&mut self, addr: u32, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.add_breakpoint(addr, true))
    }

    fn remove_hw_breakpoint(&mut self, addr: u32, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.remove_breakpoint(addr, true))
    }
}

impl HwWatchpoint for GdbTarget<'_> {
    fn add_hw_watchpoint(&mut self, addr: u32, len: u32, kind: GdbWatchKind) -> TargetResult<bool, Self> {
        Ok(Self::watchpoint(addr, len, kind).is_some_and(|w| {
            self.debugger.add_watchpoint(w);
            true
        }))
    }

    fn remove_hw_watchpoint(&mut self, addr: u32, len: u32, kind: GdbWatchKind) -> TargetResult<bool, Self> {
        Ok(Self::watchpoint(addr, len, kind).is_some_and(|w| self.debugger.remove_watchpoint(w)))
    }
}
