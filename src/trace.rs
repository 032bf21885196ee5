//! `popek run --trace insn,block,int,exc,io,translate`: what the guest does, one line per
//! event, with the kernel's symbols (QEMU's `-d in_asm,exec,int` in spirit).
//!
//! ```text
//!   insn, block, io (+ int, exc)   the debugger's engine (the reference interpreter, blocks
//!                                  run in parts), one instruction per step when insn or io:
//!                                  io lines name the instruction that made the access
//!   translate (+ int, exc)         the machine's own run loop on the binary translator,
//!                                  which logs each block it translates; the logs are taken
//!                                  after every step of the run loop
//! ```
//!
//! Both ways the run is the one `popek run` makes (the debugger's parts change nothing the
//! guest sees, and virtual time counts instructions), so a trace is deterministic.

use anyhow::Result;
use popek::cpu::iced_x86::{Decoder, Formatter, IntelFormatter};
use popek::cpu::interrupt::{Delivery, Source};
use popek::devices::{Access, AccessSpace};
use popek::jit::Translated;
use popek::machine::debug::{self, DebugStop, Debugger};
use popek::machine::symbols::Symbols;
use popek::machine::{Engine, Machine, MachineError, RunConfig, StopReason};
use popek::memory::AccessSize;
use std::io::Write;
use std::ops::ControlFlow;

use popek::cli::TraceKinds as Kinds;

/// Runs `machine` to its end, tracing to `out`; the stop and the machine back. For
/// `translate`, `machine` must run on the translator.
pub fn run(
    machine: Machine,
    cfg: RunConfig,
    kinds: Kinds,
    symbols: &Symbols,
    out: Box<dyn Write>,
) -> Result<(StopReason, Machine)> {
    if kinds.translate {
        translated(machine, &cfg, kinds, symbols, out)
    } else {
        interpreted(machine, cfg, kinds, symbols, out)
    }
}

/// The trace of a run on the debugger's engine (insn, block, io, int, exc).
fn interpreted(
    machine: Machine,
    cfg: RunConfig,
    kinds: Kinds,
    symbols: &Symbols,
    mut out: Box<dyn Write>,
) -> Result<(StopReason, Machine)> {
    let mut once = Some(machine);
    let boot = Box::new(move || once.take().ok_or_else(|| MachineError::Disk("a traced run is not replayed".into())));
    let mut d = Debugger::new(boot, cfg)?;
    d.machine.bus.set_access_log(kinds.io);
    // One instruction at a time when each one is shown or its accesses are named by it.
    let by_instruction = kinds.insn || kinds.io;
    let stop = loop {
        // A machine that stopped runs no next instruction to show.
        if let Some(s) = d.stopped() {
            break s.clone();
        }
        // Where the next instruction (and block) starts.
        let at = d.cpu().state.eip;
        if kinds.insn {
            line(&mut out, &instruction(&d, symbols))?;
        } else if kinds.block && d.at_block_start() {
            line(&mut out, &format!("block {}", instruction(&d, symbols)))?;
        }
        let stop = if by_instruction { d.step(1) } else { d.step_block() };
        for a in d.machine.bus.take_accesses() {
            line(&mut out, &access(&a, at, symbols))?;
        }
        for e in d.take_deliveries() {
            if let Some(text) = delivery(&e, kinds, symbols) {
                line(&mut out, &text)?;
            }
        }
        match stop {
            DebugStop::Machine(s) => break s,
            DebugStop::Interrupted => break StopReason::Interrupted,
            _ => {}
        }
    };
    d.machine.bus.set_access_log(false);
    out.flush()?;
    Ok((stop, d.machine))
}

/// The trace of a run on the translator (translate, int, exc): after each step of the run
/// loop, the blocks translated and the interrupts and exceptions delivered in it, in the
/// order they happened.
fn translated(
    mut machine: Machine,
    cfg: &RunConfig,
    kinds: Kinds,
    symbols: &Symbols,
    mut out: Box<dyn Write>,
) -> Result<(StopReason, Machine)> {
    let Engine::Jit(jit) = &mut machine.engine else {
        anyhow::bail!("--trace translate needs a machine that runs on the translator");
    };
    jit.set_translation_log(true);
    machine.cpu.deliveries = Some(Vec::new());
    let mut failed = None;
    let stop = machine.run_observed(cfg, |m| {
        let translations = match &mut m.engine {
            Engine::Jit(jit) => jit.take_translations(),
            _ => Vec::new(),
        };
        let deliveries = m.cpu.deliveries.as_mut().map(std::mem::take).unwrap_or_default();
        let mut texts = Vec::new();
        let mut shown = 0;
        for t in &translations {
            let before = t.after_deliveries.min(deliveries.len());
            texts.extend(deliveries[shown..before].iter().filter_map(|e| delivery(e, kinds, symbols)));
            shown = before;
            texts.push(translation(t, symbols));
        }
        texts.extend(deliveries[shown..].iter().filter_map(|e| delivery(e, kinds, symbols)));
        match texts.iter().try_for_each(|t| line(&mut out, t)) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    if let Engine::Jit(jit) = &mut machine.engine {
        jit.set_translation_log(false);
    }
    machine.cpu.deliveries = None;
    out.flush()?;
    Ok((stop, machine))
}

fn line(out: &mut Box<dyn Write>, text: &str) -> Result<()> {
    match writeln!(out, "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// `exception 0x0e error 0x2 at 0008:0x00100123 <f+0x3>`, if `kinds` asks for it.
fn delivery(e: &Delivery, kinds: Kinds, symbols: &Symbols) -> Option<String> {
    let (wanted, what) = match e.source {
        Source::Exception => (kinds.exc, "exception"),
        Source::Software => (kinds.int, "software interrupt"),
        Source::External => (kinds.int, "interrupt"),
    };
    let code = e.error.map(|c| format!(" error {c:#x}")).unwrap_or_default();
    wanted.then(|| format!("{what} {:#04x}{code} at {:04x}:{}", e.vector, e.from.0, symbols.annotate(e.from.1)))
}

/// `port out 0x03f8 byte 0x48 (uart16550) at 0x00100123 <putc+0x9>`, or `mmio read
/// 0xfee00030 dword 0x00050014 (lapic) at …`: one access by the instruction at `eip`.
fn access(a: &Access, eip: u32, symbols: &Symbols) -> String {
    let (space, direction, addr) = match (a.space, a.write) {
        (AccessSpace::Port, true) => ("port", "out", format!("{:#06x}", a.addr)),
        (AccessSpace::Port, false) => ("port", "in", format!("{:#06x}", a.addr)),
        (AccessSpace::Mmio, true) => ("mmio", "write", format!("{:#010x}", a.addr)),
        (AccessSpace::Mmio, false) => ("mmio", "read", format!("{:#010x}", a.addr)),
    };
    let (width, value) = match a.size {
        AccessSize::Byte => ("byte", format!("{:#04x}", a.value)),
        AccessSize::Word => ("word", format!("{:#06x}", a.value)),
        AccessSize::Dword => ("dword", format!("{:#010x}", a.value)),
    };
    let device = a.device.unwrap_or("no device");
    format!("{space} {direction} {addr} {width} {value} ({device}) at {}", symbols.annotate(eip))
}

/// A block translated: a header like `explain`'s, then its instructions with their
/// treatments (`explain`'s lines, without the host code); after an eviction from the
/// full code cache, a line that says so first.
fn translation(t: &Translated, symbols: &Symbols) -> String {
    let mut text = String::new();
    if t.evicted > 0 {
        text.push_str(&format!("code cache full: oldest region evicted, {} translations dropped\n", t.evicted));
    }
    let n = t.block.insns.len();
    text.push_str(&format!(
        "translate {} (physical {:#010x}; {}): {n} instruction{}, {} host bytes",
        symbols.annotate(t.eip),
        t.block.key.phys,
        t.mode(),
        if n == 1 { "" } else { "s" },
        t.host_bytes
    ));
    for l in t.instruction_lines() {
        text.push('\n');
        text.push_str(l.trim_end());
    }
    text
}

/// `[position] address <symbol>  instruction` for the next instruction.
pub fn instruction(d: &Debugger, symbols: &Symbols) -> String {
    let s = &d.cpu().state;
    let lin = s.seg(popek::cpu::Seg::Cs).base.wrapping_add(s.eip);
    let bytes: Vec<u8> = (0..15).map_while(|i| debug::peek(d.cpu(), lin.wrapping_add(i))).collect();
    let bitness = if s.code32() { 32 } else { 16 };
    let insn = Decoder::with_ip(bitness, &bytes, u64::from(s.eip), popek::cpu::block::DECODER_OPTIONS).decode();
    let mut text = String::new();
    IntelFormatter::new().format(&insn, &mut text);
    format!("[{}] {}  {text}", d.position(), symbols.annotate(s.eip))
}
