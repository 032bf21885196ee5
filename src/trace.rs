//! `popek run --trace insn,block,int,exc`: what the guest does, one line per event, with
//! the kernel's symbols (QEMU's `-d in_asm,exec,int` in spirit). The guest runs under the
//! debugger's engine (the reference interpreter, in parts), which sees every instruction.

use anyhow::Result;
use popek::cpu::iced_x86::{Decoder, Formatter, IntelFormatter};
use popek::cpu::interrupt::Source;
use popek::machine::debug::{self, DebugStop, Debugger};
use popek::machine::symbols::Symbols;
use popek::machine::{Machine, MachineError, RunConfig, StopReason};
use std::io::Write;

use popek::cli::TraceKinds as Kinds;

/// Runs `machine` to its end, tracing to `out`; the stop and the machine back.
pub fn run(
    machine: Machine,
    cfg: RunConfig,
    kinds: Kinds,
    symbols: &Symbols,
    mut out: Box<dyn Write>,
) -> Result<(StopReason, Machine)> {
    let mut once = Some(machine);
    let boot = Box::new(move || once.take().ok_or_else(|| MachineError::Disk("a traced run is not replayed".into())));
    let mut d = Debugger::new(boot, cfg)?;
    let stop = loop {
        // Where the next instruction (and block) starts.
        if kinds.insn {
            line(&mut out, &instruction(&d, symbols))?;
        } else if kinds.block {
            line(&mut out, &format!("block {}", instruction(&d, symbols)))?;
        }
        let stop = if kinds.insn { d.step(1) } else { d.step_block() };
        for e in d.take_deliveries() {
            let (wanted, what) = match e.source {
                Source::Exception => (kinds.exc, "exception"),
                Source::Software => (kinds.int, "software interrupt"),
                Source::External => (kinds.int, "interrupt"),
            };
            if wanted {
                let code = e.error.map(|c| format!(" error {c:#x}")).unwrap_or_default();
                let text = format!("{what} {:#04x}{code} at {:04x}:{}", e.vector, e.from.0, symbols.annotate(e.from.1));
                line(&mut out, &text)?;
            }
        }
        match stop {
            DebugStop::Machine(s) => break s,
            DebugStop::Interrupted => break StopReason::Interrupted,
            _ => {}
        }
    };
    out.flush()?;
    Ok((stop, d.machine))
}

fn line(out: &mut Box<dyn Write>, text: &str) -> Result<()> {
    match writeln!(out, "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
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
