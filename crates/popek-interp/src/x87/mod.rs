//! The x87 FPU (SDM Vol. 1 ch. 8, the instruction pages of Vol. 2).
//!
//! ```text
//!   dispatch ──► x87::lookup ──► handler = enter (#NM, pending #MF)
//!                                          └─► group body (arith, load/store, compare,
//!                                              control, transcendental) on sf (SoftFloat)
//!                                          └─► FIP/FOP/FDP, then ES/B from the unmasked flags
//! ```
//!
//! All state is [`popek_cpu::state::X87State`] inside `CpuState`, so both engines and
//! lockstep see it. Choices where the SDM leaves room (fixed, never taken from the host):
//! - Numeric exceptions: a masked one gives the SDM's masked response; an unmasked
//!   invalid, zero-divide or denormal leaves the destination and the stack untouched
//!   (compares still set the condition codes); an unmasked overflow or underflow stores
//!   the result with its exponent wrapped by 24576 to a register, nothing to memory.
//!   Where the SDM is silent the host-differential test decided. Any unmasked flag sets ES and B, and the
//!   next waiting x87 instruction raises #MF when CR0.NE = 1 (native reporting).
//! - With CR0.NE = 0 (the PC's legacy, MS-DOS compatible reporting, SDM Vol. 1 Appendix D)
//!   the FPU drives its FERR# pin instead ([`Bus::set_ferr`]): as a P6 does, as soon as the
//!   instruction that set ES completes ("For the P6 family and Intel386 processors, an
//!   unmasked floating-point exception always causes the FERR# pin to be asserted upon
//!   completion of the instruction that caused the exception", Vol. 3A, "Assertion of the
//!   FERR# Pin"), and until ES is cleared. The block ends there, so the run loop sees the
//!   IRQ 13 that the PC makes of it at once, in either engine. A waiting instruction that
//!   finds the error still pending goes on if the IGNNE# input is asserted ([`Bus::ignne`]:
//!   the handler wrote port 0xF0) and otherwise *freezes*: it does not execute, EIP stays
//!   on it and the CPU waits for an interrupt, as after HLT; the interrupt handler returns
//!   to it and it runs again. (The frozen attempt counts as an instruction period, as HLT
//!   does.) FERR# is never asserted while CR0.NE = 1, as on QEMU.
//! - The instruction and data pointers are recorded by every non-control instruction; the
//!   data pointer only by one with a memory operand. FOP is the 11-bit opcode.
//! - The environment image's reserved bits read as ones, as on Intel processors.

mod arith;
mod compare;
mod control;
mod fxsr;
mod loadstore;
pub(crate) mod sf;
mod transcend;

use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::{Instruction, Mnemonic, OpKind, Register};
use popek_cpu::operand::seg_of;
use popek_cpu::state::{F80, Seg, X87State, cr0, fcw, fsw};
use popek_cpu::{Bus, Cpu, ExecResult, Handler, LinearAddr};

/// How an instruction enters the FPU.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A non-waiting control instruction (FNINIT, FNSTSW, FNSAVE…): only #NM is checked
    /// and the instruction pointers are kept.
    NoWait,
    /// A waiting control instruction (FLDCW, FLDENV, FRSTOR): #NM and pending #MF are
    /// checked; the instruction pointers are kept.
    WaitControl,
    /// Everything else: #NM, pending #MF, and the pointers are recorded.
    Numeric,
}

/// An instruction body: runs after [`enter`]; may fault only before it changes state.
type Body = fn(&mut Cpu, &mut dyn Bus, &Instruction) -> Result<(), Exception>;

/// Defines a [`Handler`] that wraps `body` with [`enter`] and the ES/B update.
macro_rules! handlers {
    ($($name:ident = $kind:ident $body:path;)*) => {$(
        fn $name(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
            run(cpu, bus, insn, Kind::$kind, $body)
        }
    )*};
}

#[inline]
fn run(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction, kind: Kind, body: Body) -> ExecResult {
    if !enter(cpu, bus, kind)? {
        freeze(cpu, bus, insn);
        return Ok(());
    }
    body(cpu, bus, insn)?;
    // After the body, so that a fault (a page fault on the operand) leaves the FPU as it was.
    if kind == Kind::Numeric {
        record_pointers(cpu, bus, insn);
    }
    update_es(&mut cpu.state.x87);
    update_ferr(cpu, bus);
    Ok(())
}

handlers! {
    h_fninit = NoWait control::fninit;
    h_finit = WaitControl control::fninit;
    h_fnclex = NoWait control::fnclex;
    h_fclex = WaitControl control::fnclex;
    h_fnstsw = NoWait control::fnstsw;
    h_fstsw = WaitControl control::fnstsw;
    h_fnstcw = NoWait control::fnstcw;
    h_fstcw = WaitControl control::fnstcw;
    h_fldcw = WaitControl control::fldcw;
    h_fnstenv = NoWait control::fnstenv;
    h_fstenv = WaitControl control::fnstenv;
    h_fldenv = WaitControl control::fldenv;
    h_fnsave = NoWait control::fnsave;
    h_fsave = WaitControl control::fnsave;
    h_frstor = WaitControl control::frstor;
    h_fxsave = NoWait fxsr::fxsave;
    h_fxrstor = NoWait fxsr::fxrstor;
    h_fnop = Numeric control::nothing;
    h_fsetpm = NoWait control::nothing;
    h_ffree = Numeric control::ffree;
    h_ffreep = Numeric control::ffreep;
    h_fincstp = Numeric control::fincstp;
    h_fdecstp = Numeric control::fdecstp;
    h_fxch = Numeric control::fxch;
    h_fld = Numeric loadstore::fld;
    h_fst = Numeric loadstore::fst;
    h_fstp = Numeric loadstore::fstp;
    h_fild = Numeric loadstore::fild;
    h_fist = Numeric loadstore::fist;
    h_fistp = Numeric loadstore::fistp;
    h_fbld = Numeric loadstore::fbld;
    h_fbstp = Numeric loadstore::fbstp;
    h_fld1 = Numeric loadstore::fld1;
    h_fldz = Numeric loadstore::fldz;
    h_fldpi = Numeric loadstore::fldpi;
    h_fldl2e = Numeric loadstore::fldl2e;
    h_fldl2t = Numeric loadstore::fldl2t;
    h_fldlg2 = Numeric loadstore::fldlg2;
    h_fldln2 = Numeric loadstore::fldln2;
    h_fcmov = Numeric loadstore::fcmov;
    h_fadd = Numeric arith::fadd;
    h_fsub = Numeric arith::fsub;
    h_fsubr = Numeric arith::fsubr;
    h_fmul = Numeric arith::fmul;
    h_fdiv = Numeric arith::fdiv;
    h_fdivr = Numeric arith::fdivr;
    h_fchs = Numeric arith::fchs;
    h_fabs = Numeric arith::fabs;
    h_fsqrt = Numeric arith::fsqrt;
    h_frndint = Numeric arith::frndint;
    h_fscale = Numeric arith::fscale;
    h_fxtract = Numeric arith::fxtract;
    h_fprem = Numeric arith::fprem;
    h_fprem1 = Numeric arith::fprem1;
    h_fcom = Numeric compare::fcom;
    h_fcomp = Numeric compare::fcomp;
    h_fcompp = Numeric compare::fcompp;
    h_fucom = Numeric compare::fucom;
    h_fucomp = Numeric compare::fucomp;
    h_fucompp = Numeric compare::fucompp;
    h_ftst = Numeric compare::ftst;
    h_fxam = Numeric compare::fxam;
    h_fcomi = Numeric compare::fcomi;
    h_fcomip = Numeric compare::fcomip;
    h_fucomi = Numeric compare::fucomi;
    h_fucomip = Numeric compare::fucomip;
    h_fsin = Numeric transcend::fsin;
    h_fcos = Numeric transcend::fcos;
    h_fsincos = Numeric transcend::fsincos;
    h_fptan = Numeric transcend::fptan;
    h_fpatan = Numeric transcend::fpatan;
    h_f2xm1 = Numeric transcend::f2xm1;
    h_fyl2x = Numeric transcend::fyl2x;
    h_fyl2xp1 = Numeric transcend::fyl2xp1;
}

/// The handler for `insn` if it is an x87 instruction popek implements.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    use Mnemonic as M;
    Some(match insn.mnemonic() {
        M::Wait => wait,
        M::Fninit => h_fninit,
        M::Finit => h_finit,
        M::Fnclex => h_fnclex,
        M::Fclex => h_fclex,
        M::Fnstsw => h_fnstsw,
        M::Fstsw => h_fstsw,
        M::Fnstcw => h_fnstcw,
        M::Fstcw => h_fstcw,
        M::Fldcw => h_fldcw,
        M::Fnstenv => h_fnstenv,
        M::Fstenv => h_fstenv,
        M::Fldenv => h_fldenv,
        M::Fnsave => h_fnsave,
        M::Fsave => h_fsave,
        M::Frstor => h_frstor,
        M::Fxsave => h_fxsave,
        M::Fxrstor => h_fxrstor,
        M::Fnop => h_fnop,
        // 8087-only instructions the 80387 and later execute as no-ops (FSETPM: 80287).
        M::Fneni | M::Fndisi | M::Feni | M::Fdisi | M::Fnsetpm | M::Fsetpm => h_fsetpm,
        M::Ffree => h_ffree,
        M::Ffreep => h_ffreep,
        M::Fincstp => h_fincstp,
        M::Fdecstp => h_fdecstp,
        M::Fxch => h_fxch,
        M::Fld => h_fld,
        M::Fst => h_fst,
        M::Fstp | M::Fstpnce => h_fstp,
        M::Fild => h_fild,
        M::Fist => h_fist,
        M::Fistp => h_fistp,
        M::Fbld => h_fbld,
        M::Fbstp => h_fbstp,
        M::Fld1 => h_fld1,
        M::Fldz => h_fldz,
        M::Fldpi => h_fldpi,
        M::Fldl2e => h_fldl2e,
        M::Fldl2t => h_fldl2t,
        M::Fldlg2 => h_fldlg2,
        M::Fldln2 => h_fldln2,
        M::Fcmovb | M::Fcmove | M::Fcmovbe | M::Fcmovu | M::Fcmovnb | M::Fcmovne | M::Fcmovnbe | M::Fcmovnu => h_fcmov,
        M::Fadd | M::Faddp | M::Fiadd => h_fadd,
        M::Fsub | M::Fsubp | M::Fisub => h_fsub,
        M::Fsubr | M::Fsubrp | M::Fisubr => h_fsubr,
        M::Fmul | M::Fmulp | M::Fimul => h_fmul,
        M::Fdiv | M::Fdivp | M::Fidiv => h_fdiv,
        M::Fdivr | M::Fdivrp | M::Fidivr => h_fdivr,
        M::Fchs => h_fchs,
        M::Fabs => h_fabs,
        M::Fsqrt => h_fsqrt,
        M::Frndint => h_frndint,
        M::Fscale => h_fscale,
        M::Fxtract => h_fxtract,
        M::Fprem => h_fprem,
        M::Fprem1 => h_fprem1,
        M::Fcom | M::Ficom => h_fcom,
        M::Fcomp | M::Ficomp => h_fcomp,
        M::Fcompp => h_fcompp,
        M::Fucom => h_fucom,
        M::Fucomp => h_fucomp,
        M::Fucompp => h_fucompp,
        M::Ftst => h_ftst,
        M::Fxam => h_fxam,
        M::Fcomi => h_fcomi,
        M::Fcomip => h_fcomip,
        M::Fucomi => h_fucomi,
        M::Fucomip => h_fucomip,
        M::Fsin => h_fsin,
        M::Fcos => h_fcos,
        M::Fsincos => h_fsincos,
        M::Fptan => h_fptan,
        M::Fpatan => h_fpatan,
        M::F2xm1 => h_f2xm1,
        M::Fyl2x => h_fyl2x,
        M::Fyl2xp1 => h_fyl2xp1,
        _ => return None,
    })
}

/// Instructions iced-x86 decodes as x87 that this CPU does not have: FISTTP (SSE3) is #UD.
pub(crate) fn undefined_here(insn: &Instruction) -> bool {
    insn.mnemonic() == Mnemonic::Fisttp
}

/// WAIT/FWAIT (SDM Vol. 2B): #NM if CR0.MP and CR0.TS are both set, then any pending
/// unmasked exception.
fn wait(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let c = cpu.state.cr0;
    if c & cr0::MP != 0 && c & cr0::TS != 0 {
        return Err(Exception::DeviceNotAvailable.into());
    }
    if !pending(cpu, bus)? {
        freeze(cpu, bus, insn);
    }
    Ok(())
}

/// What a waiting instruction does about a pending unmasked exception: #MF with CR0.NE = 1;
/// with NE = 0, go on (`true`) if IGNNE# is asserted or nothing is pending, freeze
/// (`false`) otherwise. See the module notes.
fn pending(cpu: &Cpu, bus: &mut dyn Bus) -> Result<bool, Exception> {
    if cpu.state.x87.fsw & fsw::ES == 0 {
        return Ok(true);
    }
    if cpu.state.cr0 & cr0::NE != 0 {
        return Err(Exception::FloatingPoint);
    }
    Ok(bus.ignne())
}

/// The checks every x87 instruction makes first (SDM Vol. 1 8.6, Vol. 3A 2.5 CR0.EM/TS).
/// `false`: a waiting instruction that must freeze.
fn enter(cpu: &Cpu, bus: &mut dyn Bus, kind: Kind) -> Result<bool, Exception> {
    if cpu.state.cr0 & (cr0::EM | cr0::TS) != 0 {
        return Err(Exception::DeviceNotAvailable);
    }
    if kind != Kind::NoWait {
        return pending(cpu, bus);
    }
    Ok(true)
}

/// A waiting instruction meets a pending error with CR0.NE = 0 and IGNNE# inactive: it does
/// not run; the CPU waits for an interrupt (the IRQ 13 that FERR# raises) with EIP on it,
/// FERR# asserted.
fn freeze(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) {
    let mut ip = cpu.state.eip.wrapping_sub(insn.len() as u32);
    if !cpu.state.code32() {
        ip &= 0xffff;
    }
    cpu.state.eip = ip;
    cpu.state.halted = true;
    update_ferr(cpu, bus);
}

/// Drives FERR# from ES and CR0.NE after an instruction (see the module notes). When it
/// goes up, the block ends after this instruction, so that the run loop looks for the
/// interrupt the platform makes of it.
fn update_ferr(cpu: &mut Cpu, bus: &mut dyn Bus) {
    let asserted = cpu.state.x87.fsw & fsw::ES != 0 && cpu.state.cr0 & cr0::NE == 0;
    if asserted != cpu.state.x87.ferr {
        cpu.state.x87.ferr = asserted;
        bus.set_ferr(asserted);
        if asserted {
            cpu.interrupt_window = true;
        }
    }
}

/// FIP, FCS and FOP for this instruction; FDP and FDS if it has a memory operand.
fn record_pointers(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) {
    let len = insn.len() as u32;
    let mut ip = cpu.state.eip.wrapping_sub(len);
    if !cpu.state.code32() {
        ip &= 0xffff;
    }
    let cs = *cpu.state.seg(Seg::Cs);
    let mut fop = 0u16;
    // The opcode bytes were fetched to decode this instruction, so these reads hit the
    // same translation; a failure would leave FOP 0.
    let user = cpu.user_mode();
    let mut prev_x87 = None;
    for i in 0..len {
        let lin = LinearAddr(cs.base.wrapping_add(ip.wrapping_add(i)));
        let Ok(b) = cpu.read_linear(bus, lin, 1, user) else { break };
        if let Some(first) = prev_x87 {
            fop = ((first as u16 & 7) << 8) | b as u16;
            break;
        }
        if (0xd8..=0xdf).contains(&b) {
            prev_x87 = Some(b);
        }
    }
    let x = &mut cpu.state.x87;
    x.fip = ip;
    x.fcs = cs.selector;
    x.fop = fop;
    if (0..insn.op_count()).any(|n| insn.op_kind(n) == OpKind::Memory) {
        let (s, off) = cpu.memory_operand(insn);
        let sel = cpu.state.seg(seg_of(insn.memory_segment()).unwrap_or(s)).selector;
        let x = &mut cpu.state.x87;
        x.fdp = off;
        x.fds = sel;
    }
}

/// Sets ES and B from the exception flags not masked in the control word.
pub(crate) fn update_es(x: &mut X87State) {
    if x.fsw & !x.fcw & fsw::EXC != 0 {
        x.fsw |= fsw::ES | fsw::B;
    } else {
        x.fsw &= !(fsw::ES | fsw::B);
    }
}

/// The ST(i) register named by an iced register operand.
pub(crate) fn st_index(r: Register) -> usize {
    (r as usize).wrapping_sub(Register::ST0 as usize) & 7
}

/// Stack and exception helpers on the FPU state.
pub(crate) trait Fpu {
    /// Pushes `v` (TOP − 1).
    fn push(&mut self, v: F80);
    /// Marks ST(0) empty and increments TOP.
    fn pop(&mut self);
    /// Writes ST(i) and marks it valid.
    fn set_st(&mut self, i: usize, v: F80);
    /// Sets exception flags; true if none of them is unmasked.
    fn raise(&mut self, flags: u16) -> bool;
    /// Stack underflow (IE, SF, C1 = 0); true if masked.
    fn underflow(&mut self) -> bool;
    /// Stack overflow (IE, SF, C1 = 1); true if masked.
    fn overflow(&mut self) -> bool;
    /// Sets or clears one condition-code bit.
    fn set_cc(&mut self, bit: u16, on: bool);
    /// Whether all the given exceptions are masked.
    fn masked(&self, flags: u16) -> bool;
}

impl Fpu for X87State {
    fn push(&mut self, v: F80) {
        let top = self.top().wrapping_sub(1) & 7;
        self.set_top(top);
        self.set_st(0, v);
    }
    fn pop(&mut self) {
        self.valid &= !(1 << self.top());
        let top = self.top() + 1;
        self.set_top(top);
    }
    fn set_st(&mut self, i: usize, v: F80) {
        let p = self.phys(i);
        self.regs[p] = v;
        self.valid |= 1 << p;
    }
    fn raise(&mut self, flags: u16) -> bool {
        self.fsw |= flags;
        self.masked(flags)
    }
    fn underflow(&mut self) -> bool {
        self.fsw &= !fsw::C1;
        self.raise(fsw::IE | fsw::SF)
    }
    fn overflow(&mut self) -> bool {
        self.fsw |= fsw::C1;
        self.raise(fsw::IE | fsw::SF)
    }
    fn set_cc(&mut self, bit: u16, on: bool) {
        if on {
            self.fsw |= bit;
        } else {
            self.fsw &= !bit;
        }
    }
    fn masked(&self, flags: u16) -> bool {
        flags & fsw::EXC & !self.fcw & fcw::MASKS == 0
    }
}

/// SoftFloat flags as x87 status flags.
pub(crate) fn status_of(sf_flags: u8) -> u16 {
    let mut s = 0;
    if sf_flags & sf::INVALID != 0 {
        s |= fsw::IE;
    }
    if sf_flags & sf::INFINITE != 0 {
        s |= fsw::ZE;
    }
    if sf_flags & sf::OVERFLOW != 0 {
        s |= fsw::OE;
    }
    if sf_flags & sf::UNDERFLOW != 0 {
        s |= fsw::UE;
    }
    if sf_flags & sf::INEXACT != 0 {
        s |= fsw::PE;
    }
    s
}

/// Runs a rounding operation under the control word's RC and the given precision and
/// returns its result, its x87 status flags and whether it rounded up in magnitude
/// (what C1 reports): an inexact result is recomputed with chopping, and differs.
/// `f` gets the rounding control to use (for the operations that take it as an argument).
pub(crate) fn rounded<T: PartialEq>(fcw_value: u16, precision: u8, f: impl Fn(u16) -> T) -> (T, u16, bool) {
    let rc = (fcw_value & fcw::RC) >> fcw::RC_SHIFT;
    sf::begin(rc, precision);
    let r = f(rc);
    let flags = sf::flags();
    let up = flags & sf::INEXACT != 0 && rc != 3 && {
        sf::begin(3, precision);
        f(3) != r
    };
    (r, status_of(flags), up)
}

/// Commits a rounded result's flags: sets them and C1 (rounded up). True if the result
/// is to be stored (no unmasked invalid, zero-divide or denormal).
pub(crate) fn commit_flags(x: &mut X87State, flags: u16, up: bool) -> bool {
    x.set_cc(fsw::C1, up && flags & fsw::PE != 0);
    x.raise(flags);
    x.masked(flags & (fsw::IE | fsw::ZE | fsw::DE))
}

/// Reads `N` bytes at `seg:off` (reads change nothing, so a fault part-way is harmless).
pub(crate) fn read_bytes<const N: usize>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    s: Seg,
    off: u32,
) -> Result<[u8; N], Exception> {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        let w = if N - i >= 4 {
            4
        } else if N - i >= 2 {
            2
        } else {
            1
        };
        let v = cpu.read(bus, s, off.wrapping_add(i as u32), w as u32)?;
        out[i..i + w].copy_from_slice(&v.to_le_bytes()[..w]);
        i += w;
    }
    Ok(out)
}

/// Writes `bytes` at `seg:off`, after checking that the whole range can be written.
pub(crate) fn write_bytes(cpu: &mut Cpu, bus: &mut dyn Bus, s: Seg, off: u32, bytes: &[u8]) -> Result<(), Exception> {
    cpu.probe_write(bus, s, off, bytes.len() as u32)?;
    let mut i = 0;
    while i < bytes.len() {
        let w = if bytes.len() - i >= 4 {
            4
        } else if bytes.len() - i >= 2 {
            2
        } else {
            1
        };
        let mut v = [0u8; 4];
        v[..w].copy_from_slice(&bytes[i..i + w]);
        cpu.write(bus, s, off.wrapping_add(i as u32), w as u32, u32::from_le_bytes(v))?;
        i += w;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
