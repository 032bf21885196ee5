//! Running one case in both worlds and comparing the results.
//!
//! ```text
//!   Case ─► instruction(32) ─► TestBox (popek interpreter) ─┐
//!        └► instruction(64) ─► HostRunner (real CPU) ───────┴─► compare (masked by Undef) ─► FormReport
//! ```

use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};

use popek_cpu::exception::Event;
use popek_cpu::iced_x86::{Formatter, Instruction, IntelFormatter};
use popek_cpu::state::CpuState;
use popek_cpu::state::flags::{ARITH, DF};
use popek_hostcpu::{HostRunner, HostState};
use popek_interp::testing::{CODE_BASE, DATA_BASE, STACK_TOP, TestBox};

use crate::case::{self, Arg, Case, ESP, GPR_NAMES, Rng, WINDOW, reg_slot};
use crate::forms::{Form, Undef, flag_names};

/// The flags both worlds report and compare: CF PF AF ZF SF OF DF.
pub const ALL_FLAGS: u32 = ARITH | DF;

/// Blocks a single case may run (REP string ops may end a block per iteration).
const MAX_BLOCKS: usize = 10_000;

/// Details kept per form (the first mismatches).
const DETAILS_PER_FORM: usize = 3;

/// The state after one instruction, in either world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// Low 32 bits of each GPR; pointer registers as offsets into the data window.
    pub gpr: [u32; 8],
    /// CF PF AF ZF SF OF DF.
    pub flags: u32,
    /// The data window.
    pub mem: Vec<u8>,
}

/// Why a case produced no comparable guest result.
#[derive(Clone, Debug)]
pub enum GuestProblem {
    /// `Event::Unsupported`: popek does not implement the instruction (fails the form).
    Unsupported(String),
    /// The interpreter panicked (fails the form).
    Panic(String),
    /// The guest took an exception, or the interpreter returned another event.
    Event(String),
    /// The code did not finish within [`MAX_BLOCKS`] blocks.
    NotFinished(u32),
}

impl GuestProblem {
    /// True if the rest of the form is not worth running.
    fn is_fatal(&self) -> bool {
        matches!(self, GuestProblem::Unsupported(_) | GuestProblem::Panic(_))
    }
}

impl std::fmt::Display for GuestProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuestProblem::Unsupported(s) => write!(f, "interpreter: Event::Unsupported: {s}"),
            GuestProblem::Panic(s) => write!(f, "interpreter panicked: {s}"),
            GuestProblem::Event(s) => write!(f, "interpreter: {s}"),
            GuestProblem::NotFinished(eip) => write!(f, "interpreter did not finish (eip {eip:#x})"),
        }
    }
}

/// popek's side: one [`TestBox`] reused for all cases of a form.
pub struct Guest {
    tb: TestBox,
    pristine: CpuState,
    code: Vec<u8>,
}

impl Guest {
    /// A fresh machine.
    pub fn new() -> Self {
        let tb = TestBox::new(&[]);
        let pristine = tb.cpu.state.clone();
        Guest { tb, pristine, code: Vec::new() }
    }

    /// Runs `code` (at `CODE_BASE`, followed by HLT) from `case`'s state.
    pub fn run(&mut self, code: &[u8], case: &Case) -> Result<Output, GuestProblem> {
        let tb = &mut self.tb;
        if code != self.code {
            let mut bytes = code.to_vec();
            bytes.push(0xf4);
            tb.poke(CODE_BASE, &bytes);
            tb.code_end = CODE_BASE + code.len() as u32;
            tb.interp.cache.clear(&mut tb.cpu);
            self.code = code.to_vec();
        }
        tb.cpu.state = self.pristine.clone();
        for (i, &v) in case.gpr.iter().enumerate() {
            tb.cpu.state.gpr[i] = if case.ptr & (1 << i) != 0 { DATA_BASE + v } else { v };
        }
        tb.cpu.state.gpr[ESP] = STACK_TOP;
        tb.cpu.state.eip = CODE_BASE;
        tb.cpu.state.eflags = (self.pristine.eflags & !ALL_FLAGS) | case.flags;
        let data = DATA_BASE as usize;
        tb.cpu.mem.as_mut_slice()[data..data + WINDOW].copy_from_slice(&case.mem);

        let exceptions = tb.interp.stats.exceptions;
        let result = catch_unwind(AssertUnwindSafe(|| tb.run(MAX_BLOCKS)));
        match result {
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                return Err(GuestProblem::Panic(msg));
            }
            Ok(Err(Event::Unsupported(u))) => return Err(GuestProblem::Unsupported(u.to_string())),
            Ok(Err(other)) => return Err(GuestProblem::Event(format!("{other:?}"))),
            Ok(Ok(_)) => {}
        }
        let state = &tb.cpu.state;
        if tb.interp.stats.exceptions != exceptions {
            return Err(GuestProblem::Event(format!(
                "the guest took an exception (now at eip {:#x}, cs {:#x})",
                state.eip,
                state.seg[popek_cpu::Seg::Cs as usize].selector
            )));
        }
        if !state.halted && state.eip != tb.code_end {
            return Err(GuestProblem::NotFinished(state.eip));
        }
        if state.gpr[ESP] != STACK_TOP {
            return Err(GuestProblem::Event(format!("ESP changed to {:#x}", state.gpr[ESP])));
        }
        if state.eflags & !ALL_FLAGS != self.pristine.eflags & !ALL_FLAGS {
            return Err(GuestProblem::Event(format!(
                "EFLAGS bits outside CF PF AF ZF SF OF DF changed: {:#x} -> {:#x}",
                self.pristine.eflags, state.eflags
            )));
        }
        let mut gpr = [0u32; 8];
        for (i, g) in gpr.iter_mut().enumerate() {
            *g = state.gpr[i].wrapping_sub(if case.ptr & (1 << i) != 0 { DATA_BASE } else { 0 });
        }
        Ok(Output { gpr, flags: state.eflags & ALL_FLAGS, mem: tb.cpu.mem.as_slice()[data..data + WINDOW].to_vec() })
    }
}

/// The host's side: runs `code` natively from `case`'s state.
pub fn host_run(runner: &mut HostRunner, code: &[u8], case: &Case) -> Result<Output, popek_hostcpu::HostCpuError> {
    runner.scratch()[..WINDOW].copy_from_slice(&case.mem);
    let base = runner.scratch_base();
    let mut input = HostState { rflags: case.flags as u64, ..HostState::default() };
    for (i, &v) in case.gpr.iter().enumerate() {
        if i != ESP {
            input.gpr[i] = if case.ptr & (1 << i) != 0 { base + v as u64 } else { v as u64 };
        }
    }
    let out = runner.run(code, &input)?;
    let mut gpr = [0u32; 8];
    for (i, g) in gpr.iter_mut().enumerate() {
        let v = if case.ptr & (1 << i) != 0 { out.gpr[i].wrapping_sub(base) } else { out.gpr[i] };
        // 32-bit results zero-extend into the upper half on the host: compare the low half.
        *g = v as u32;
    }
    Ok(Output { gpr, flags: out.rflags as u32 & ALL_FLAGS, mem: runner.scratch()[..WINDOW].to_vec() })
}

/// What the SDM leaves undefined for one case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Undefined {
    /// Undefined flags.
    pub flags: u32,
    /// The destination operand (operand 0) is undefined.
    pub dest: bool,
}

/// Evaluates the form's [`Undef`] rule for `case`.
pub fn undefined(form: &Form, case: &Case) -> Undefined {
    use popek_cpu::state::flags::{AF, CF, OF};
    let bits = 8 * form.width;
    match form.undef {
        Undef::None => Undefined::default(),
        Undef::Flags(f) => Undefined { flags: f, dest: false },
        Undef::Shift { logical } => {
            let count = case.count() & 0x1f;
            let mut f = 0;
            if count != 0 {
                f |= AF;
                if count != 1 {
                    f |= OF;
                }
                if logical && count >= bits {
                    f |= CF;
                }
            }
            Undefined { flags: f, dest: false }
        }
        Undef::Rotate => {
            let count = case.count() & 0x1f;
            Undefined { flags: if count > 1 { OF } else { 0 }, dest: false }
        }
        Undef::DoubleShift => {
            let count = case.count() & 0x1f;
            match count {
                0 => Undefined::default(),
                c if c > bits => Undefined { flags: ARITH, dest: true },
                1 => Undefined { flags: AF, dest: false },
                _ => Undefined { flags: AF | OF, dest: false },
            }
        }
        Undef::BitScan => {
            use popek_cpu::state::flags::{PF, SF};
            let zero = case.source(form.width) == 0;
            Undefined { flags: CF | OF | SF | AF | PF, dest: zero }
        }
    }
}

/// The differences between the interpreter's and the host's result that the SDM defines.
pub fn compare(form: &Form, case: &Case, guest: &Output, host: &Output) -> Vec<String> {
    let undef = undefined(form, case);
    let mut diffs = Vec::new();
    for (i, name) in GPR_NAMES.iter().enumerate() {
        if i == ESP {
            continue;
        }
        let mut mask = u32::MAX;
        if undef.dest
            && let Some(Arg::Reg(r)) = case.args.first()
        {
            let (slot, m, shift) = reg_slot(*r);
            if slot == i {
                mask &= !(m << shift);
            }
        }
        if (guest.gpr[i] ^ host.gpr[i]) & mask != 0 {
            diffs.push(format!("{name}: interp {:#010x} host {:#010x}", guest.gpr[i], host.gpr[i]));
        }
    }
    let checked = ALL_FLAGS & !undef.flags;
    let bad = (guest.flags ^ host.flags) & checked;
    if bad != 0 {
        diffs.push(format!(
            "flags {}: interp [{}] host [{}] (compared: {})",
            flag_names(bad),
            flag_names(guest.flags & checked),
            flag_names(host.flags & checked),
            flag_names(checked)
        ));
    }
    let skip = match case.args.first() {
        Some(Arg::Mem) if undef.dest => case.mem_off()..case.mem_off() + form.width as usize,
        _ => 0..0,
    };
    let bad: Vec<usize> = (0..WINDOW).filter(|o| !skip.contains(o) && guest.mem[*o] != host.mem[*o]).collect();
    if !bad.is_empty() {
        let show: Vec<String> =
            bad.iter().take(8).map(|&o| format!("+{o:#05x}: {:02x}/{:02x}", guest.mem[o], host.mem[o])).collect();
        diffs.push(format!(
            "memory: {} byte(s) differ (window offset: interp/host) {}{}",
            bad.len(),
            show.join(" "),
            if bad.len() > 8 { " ..." } else { "" }
        ));
    }
    diffs
}

/// Registers of a state, pointer registers shown as window offsets.
fn regs_line(gpr: &[u32; 8], ptr: u8) -> String {
    let mut s = String::new();
    for i in 0..8 {
        if i == ESP {
            continue;
        }
        if ptr & (1 << i) != 0 {
            let _ = write!(s, "{}=win+{:#05x} ", GPR_NAMES[i], gpr[i]);
        } else {
            let _ = write!(s, "{}={:08x} ", GPR_NAMES[i], gpr[i]);
        }
    }
    s.trim_end().to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// The instruction in Intel syntax.
pub fn disasm(insn: &Instruction) -> String {
    let mut s = String::new();
    IntelFormatter::new().format(insn, &mut s);
    s
}

/// A readable account of one failing case.
fn detail(form: &Form, index: usize, case: &Case, code: (&Instruction, &[u8], &[u8]), body: &str) -> String {
    let (insn, guest_code, host_code) = code;
    let mut s = String::new();
    let _ = writeln!(s, "form `{}` case #{index}: {}", form.name, disasm(insn));
    let _ = writeln!(s, "  bytes : guest {} | host {}", hex(guest_code), hex(host_code));
    let _ = writeln!(s, "  input : {} flags=[{}]", regs_line(&case.gpr, case.ptr), flag_names(case.flags));
    for i in 0..8 {
        if case.ptr & (1 << i) != 0 {
            let at = case.gpr[i] as usize;
            let (lo, hi) = (at.saturating_sub(8), (at + 8).min(WINDOW));
            let _ = writeln!(s, "          mem[win+{lo:#05x}..{hi:#05x}] = {}", hex(&case.mem[lo..hi]));
        }
    }
    s.push_str(body);
    let u = undefined(form, case);
    let _ = write!(
        s,
        "  undefined here: flags [{}]{} -- {}",
        flag_names(u.flags),
        if u.dest { ", destination" } else { "" },
        form.sdm
    );
    s
}

/// The outcome of one form.
#[derive(Clone, Debug, Default)]
pub struct FormReport {
    /// Form name.
    pub name: String,
    /// Cases run (including a failing one).
    pub cases: usize,
    /// Cases whose results differ, or that could not run.
    pub mismatches: usize,
    /// The first few failing cases, readable.
    pub details: Vec<String>,
    /// Why the form stopped early (unsupported instruction, panic, harness error).
    pub fatal: Option<String>,
}

impl FormReport {
    /// True if the form failed.
    pub fn failed(&self) -> bool {
        self.mismatches > 0 || self.fatal.is_some()
    }
}

/// Runs `cases` random cases of `form` in both worlds.
pub fn run_form(form: &Form, cases: usize) -> FormReport {
    let mut report = FormReport { name: form.name.clone(), ..FormReport::default() };
    let mut host = match HostRunner::new() {
        Ok(h) => h,
        Err(e) => {
            report.fatal = Some(format!("cannot run code on the host: {e}"));
            return report;
        }
    };
    let mut guest = Guest::new();
    let mut rng = Rng::for_name(&form.name);
    for index in 0..cases {
        let case = case::generate(form, &mut rng, index);
        report.cases += 1;
        let built = case::instruction(form, &case, 32).and_then(|g| {
            let h = case::instruction(form, &case, 64)?;
            let gc = case::encode(&g, 32, CODE_BASE as u64)?;
            let hc = case::encode(&h, 64, 0)?;
            Ok((g, gc, hc))
        });
        let (insn, guest_code, host_code) = match built {
            Ok(b) => b,
            Err(e) => {
                report.mismatches += 1;
                report.fatal = Some(format!("harness: cannot encode case #{index}: {e} ({case:?})"));
                return report;
            }
        };
        let code = (&insn, &guest_code[..], &host_code[..]);
        let host_out = match host_run(&mut host, &host_code, &case) {
            Ok(o) => o,
            Err(e) => {
                report.mismatches += 1;
                report.fatal = Some(format!("harness: host cannot run case #{index}: {e}"));
                return report;
            }
        };
        let body = match guest.run(&guest_code, &case) {
            Err(problem) => {
                let fatal = problem.is_fatal();
                let text = format!("  {problem}\n");
                if fatal {
                    report.mismatches += 1;
                    report.fatal = Some(problem.to_string());
                    report.details.push(detail(form, index, &case, code, &text));
                    return report;
                }
                Some(text)
            }
            Ok(guest_out) => {
                let diffs = compare(form, &case, &guest_out, &host_out);
                (!diffs.is_empty()).then(|| {
                    let mut s = String::new();
                    let _ = writeln!(
                        s,
                        "  interp: {} flags=[{}]",
                        regs_line(&guest_out.gpr, case.ptr),
                        flag_names(guest_out.flags)
                    );
                    let _ = writeln!(
                        s,
                        "  host  : {} flags=[{}]",
                        regs_line(&host_out.gpr, case.ptr),
                        flag_names(host_out.flags)
                    );
                    for d in diffs {
                        let _ = writeln!(s, "  DIFF  : {d}");
                    }
                    s
                })
            }
        };
        if let Some(body) = body {
            report.mismatches += 1;
            if report.details.len() < DETAILS_PER_FORM {
                report.details.push(detail(form, index, &case, code, &body));
            }
        }
    }
    report
}
