//! `popek debug`: a line debugger on stdin (it works piped, so tests and lab graders drive
//! it). Commands (`help` lists them): step, block, continue, until, break, watch, delete,
//! regs, x, walk, explain, rstep, rcontinue, goto, pos, quit.

use popek::machine::debug::{self, Breakpoint, DebugStop, Debugger, WatchKind, Watchpoint};
use popek::machine::symbols::Symbols;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};

const HELP: &str = "\
commands (addresses are hex, decimal or a symbol, with an optional +offset;
counts, lengths and positions are decimal, or hex with 0x):
  s|step [N]          run N instructions (default 1)
  b|block             run to the end of the current block
  c|continue          run to a breakpoint, a watchpoint or the end
  u|until ADDR        run until ADDR is the next instruction
  break ADDR          breakpoint at a virtual (linear) address
  pbreak ADDR         breakpoint at a physical address
  watch ADDR [LEN]    stop after a write to LEN bytes (1 to 4096, default 4); rwatch: reads; awatch: both
  delete              remove every breakpoint and watchpoint
  info                list breakpoints and watchpoints
  r|regs              registers, flags decoded
  x ADDR [N]          N bytes of memory at a virtual address (1 to 4096, default 64)
  walk ADDR           the page-table walk of a virtual address
  e|explain           the next block as the translator sees it (treatments, host code)
  rs|rstep            back one instruction
  rc|rcontinue        back to the last breakpoint or watchpoint hit
  goto POS            to a position (instructions since boot)
  pos                 the position
  q|quit              leave";

/// Runs the REPL on `input` until `quit` or its end, writing to `out`.
/// `interrupt` (Ctrl-C) stops a command that runs the guest; it is cleared before each.
pub fn run(
    d: &mut Debugger,
    symbols: &Symbols,
    interrupt: &AtomicBool,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(out, "popek debug: stopped before the first instruction; `help` lists the commands")?;
    where_am_i(d, symbols, out)?;
    let mut line = String::new();
    loop {
        write!(out, "(popek) ")?;
        out.flush()?;
        line.clear();
        if input.read_line(&mut line)? == 0 {
            writeln!(out)?;
            return Ok(());
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&cmd, args)) = words.split_first() else { continue };
        interrupt.store(false, Ordering::Relaxed);
        match command(d, symbols, cmd, args, out) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => writeln!(out, "error: {e}")?,
        }
    }
}

fn addr(symbols: &Symbols, arg: Option<&&str>) -> Result<u32, String> {
    let a = arg.ok_or("an address is needed")?;
    symbols.parse_address(a).ok_or_else(|| format!("`{a}` is neither an address nor a symbol"))
}

/// A count or a position: decimal, or hex with `0x` (not bare hex digits, which an address
/// may be: `step abc` is a mistake, not 2748 steps).
fn count(arg: Option<&&str>, default: u64) -> Result<u64, String> {
    let Some(a) = arg else { return Ok(default) };
    let parsed = match a.strip_prefix("0x").or_else(|| a.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => a.parse::<u64>(),
    };
    parsed.map_err(|_| format!("`{a}` is not a number (decimal, or hex with 0x)"))
}

/// A byte count from 1 to 4096 (watchpoints, `x`).
fn length(arg: Option<&&str>, default: u32, what: &str) -> Result<u32, String> {
    match count(arg, default.into())? {
        n @ 1..=4096 => Ok(u32::try_from(n).expect("at most 4096")),
        n => Err(format!("{what} 1 to 4096 bytes, not {n}")),
    }
}

/// Most arguments a command takes (`None`: no such command).
fn max_args(cmd: &str) -> Option<usize> {
    match cmd {
        "q" | "quit" | "help" | "h" | "b" | "block" | "c" | "continue" | "rs" | "rstep" | "rc" | "rcontinue"
        | "delete" | "info" | "r" | "regs" | "e" | "explain" | "pos" => Some(0),
        "s" | "step" | "u" | "until" | "goto" | "break" | "pbreak" | "walk" => Some(1),
        "watch" | "rwatch" | "awatch" | "x" => Some(2),
        _ => None,
    }
}

/// What a breakpoint's address is now, if not RAM that code can be fetched from: the
/// breakpoint is kept all the same (the guest may map the page, or load code there, later).
fn breakpoint_note(d: &Debugger, b: Breakpoint) -> String {
    let cpu = d.cpu();
    match b {
        Breakpoint::Virtual(a) => match debug::walk(cpu, a).result {
            Err(why) => format!(" (not mapped now: {why})"),
            Ok(p) if debug::peek_phys(cpu, p).is_none() => format!(" (physical {p:#010x}: not RAM)"),
            Ok(_) => String::new(),
        },
        Breakpoint::Physical(a) if debug::peek_phys(cpu, a).is_none() => " (not RAM)".into(),
        Breakpoint::Physical(_) => String::new(),
    }
}

/// One command; true to quit.
fn command(d: &mut Debugger, symbols: &Symbols, cmd: &str, args: &[&str], out: &mut dyn Write) -> Result<bool, String> {
    let io = |e: std::io::Error| e.to_string();
    match max_args(cmd) {
        Some(0) if !args.is_empty() => return Err(format!("`{cmd}` takes no argument")),
        Some(1) if args.len() > 1 => return Err(format!("`{cmd}` takes one argument, not {}", args.len())),
        Some(n) if args.len() > n => return Err(format!("`{cmd}` takes at most {n} arguments, not {}", args.len())),
        _ => {}
    }
    let stop = match cmd {
        "q" | "quit" => return Ok(true),
        "help" | "h" => {
            writeln!(out, "{HELP}").map_err(io)?;
            return Ok(false);
        }
        "s" | "step" => d.step(count(args.first(), 1)?),
        "b" | "block" => d.step_block(),
        "c" | "continue" => d.cont(),
        "u" | "until" => d.run_to(addr(symbols, args.first())?),
        "rs" | "rstep" => d.reverse_step().map_err(|e| e.to_string())?,
        "rc" | "rcontinue" => match d.reverse_continue().map_err(|e| e.to_string())? {
            Some(stop) => stop,
            None => {
                writeln!(out, "no earlier breakpoint or watchpoint hit: back at the start").map_err(io)?;
                DebugStop::Stepped
            }
        },
        "goto" => {
            let pos = count(Some(args.first().ok_or("a position is needed (see `pos`)")?), 0)?;
            d.goto(pos).map_err(|e| e.to_string())?
        }
        "break" | "pbreak" => {
            let a = addr(symbols, args.first())?;
            let b = if cmd == "break" { Breakpoint::Virtual(a) } else { Breakpoint::Physical(a) };
            d.add_breakpoint(b);
            let note = breakpoint_note(d, b);
            writeln!(out, "breakpoint at {}{note}", symbols.annotate(a)).map_err(io)?;
            return Ok(false);
        }
        "watch" | "rwatch" | "awatch" => {
            let a = addr(symbols, args.first())?;
            let len = length(args.get(1), 4, "a watchpoint covers")?;
            let kind = match cmd {
                "watch" => WatchKind::Write,
                "rwatch" => WatchKind::Read,
                _ => WatchKind::Access,
            };
            d.add_watchpoint(Watchpoint { addr: a, len, kind });
            writeln!(out, "watchpoint ({kind:?}) on {len} bytes at {}", symbols.annotate(a)).map_err(io)?;
            return Ok(false);
        }
        "delete" => {
            for b in d.breakpoints().to_vec() {
                d.remove_breakpoint(b);
            }
            for w in d.watchpoints().to_vec() {
                d.remove_watchpoint(w);
            }
            writeln!(out, "no breakpoints or watchpoints").map_err(io)?;
            return Ok(false);
        }
        "info" => {
            for b in d.breakpoints() {
                let text = match *b {
                    Breakpoint::Virtual(a) => format!("breakpoint {}", symbols.annotate(a)),
                    Breakpoint::Physical(a) => format!("breakpoint physical {a:#010x}"),
                };
                writeln!(out, "{text}").map_err(io)?;
            }
            for w in d.watchpoints() {
                writeln!(out, "watchpoint ({:?}) {} bytes at {}", w.kind, w.len, symbols.annotate(w.addr))
                    .map_err(io)?;
            }
            return Ok(false);
        }
        "r" | "regs" => {
            writeln!(out, "{}", regs(d)).map_err(io)?;
            return Ok(false);
        }
        "x" => {
            let a = addr(symbols, args.first())?;
            let n = length(args.get(1), 64, "x shows")?;
            writeln!(out, "{}", dump(d, symbols, a, n)).map_err(io)?;
            return Ok(false);
        }
        "walk" => {
            let a = addr(symbols, args.first())?;
            writeln!(out, "{}", walk_text(d, a)).map_err(io)?;
            return Ok(false);
        }
        "e" | "explain" => {
            let cpu = &mut d.machine.cpu;
            let text = match popek::jit::explain_current(cpu, &mut d.machine.bus) {
                Ok(t) => t,
                Err(e) => format!("the next block cannot be fetched: {e}"),
            };
            write!(out, "{text}").map_err(io)?;
            return Ok(false);
        }
        "pos" => {
            writeln!(out, "position {}", d.position()).map_err(io)?;
            return Ok(false);
        }
        other => return Err(format!("unknown command `{other}` (try `help`)")),
    };
    report(d, symbols, &stop, out).map_err(io)?;
    Ok(false)
}

fn report(d: &mut Debugger, symbols: &Symbols, stop: &DebugStop, out: &mut dyn Write) -> std::io::Result<()> {
    for e in d.take_deliveries() {
        writeln!(
            out,
            "  {:?} vector {:#04x}{} from {:04x}:{}",
            e.source,
            e.vector,
            e.error.map(|c| format!(" error {c:#x}")).unwrap_or_default(),
            e.from.0,
            symbols.annotate(e.from.1)
        )?;
    }
    match stop {
        DebugStop::Stepped | DebugStop::BlockEnd => {}
        DebugStop::Breakpoint(_) => writeln!(out, "breakpoint")?,
        DebugStop::Watchpoint { addr, write, .. } => {
            writeln!(out, "watchpoint: {} {}", if *write { "write to" } else { "read of" }, symbols.annotate(*addr))?
        }
        DebugStop::Machine(s) => writeln!(out, "the machine stopped: {s:?}")?,
        DebugStop::Interrupted => writeln!(out, "interrupted")?,
    }
    where_am_i(d, symbols, out)
}

/// The position and the next instruction.
fn where_am_i(d: &mut Debugger, symbols: &Symbols, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "{}", crate::trace::instruction(d, symbols))
}

fn regs(d: &Debugger) -> String {
    use popek::cpu::state::flags;
    let s = &d.cpu().state;
    let names = [
        (flags::CF, "CF"),
        (flags::PF, "PF"),
        (flags::AF, "AF"),
        (flags::ZF, "ZF"),
        (flags::SF, "SF"),
        (flags::TF, "TF"),
        (flags::IF, "IF"),
        (flags::DF, "DF"),
        (flags::OF, "OF"),
    ];
    let set: Vec<&str> = names.iter().filter(|(bit, _)| s.eflags & bit != 0).map(|(_, n)| *n).collect();
    let dump = s.dump();
    let mut lines: Vec<&str> = dump.lines().take(13).collect();
    let decoded = format!("flags: {} IOPL={}", set.join(" "), s.iopl());
    lines.insert(2, &decoded);
    lines.join("\n")
}

fn dump(d: &Debugger, symbols: &Symbols, at: u32, n: u32) -> String {
    let mut text = String::new();
    for row in (0..n).step_by(16) {
        let a = at.wrapping_add(row);
        let cells: Vec<String> = (0..16.min(n - row))
            .map(|i| debug::peek(d.cpu(), a.wrapping_add(i)).map_or("--".into(), |b| format!("{b:02x}")))
            .collect();
        text.push_str(&format!("{}: {}\n", symbols.annotate(a), cells.join(" ")));
    }
    text.trim_end().to_string()
}

fn walk_text(d: &Debugger, lin: u32) -> String {
    let w = debug::walk(d.cpu(), lin);
    let mut text = format!("linear {lin:#010x}");
    if w.steps.is_empty() {
        text.push_str(": paging is off (physical = linear)");
    }
    for s in &w.steps {
        let e = s.entry.map_or("(not RAM)".into(), |e| format!("{e:#010x}"));
        text.push_str(&format!("\n  {} at physical {:#010x}: {e}", s.level, s.entry_addr));
    }
    match w.result {
        Ok(p) => text.push_str(&format!(
            "\n  -> physical {p:#010x} ({}, {})",
            if w.writable { "writable" } else { "read-only" },
            if w.user { "user" } else { "supervisor" }
        )),
        Err(why) => text.push_str(&format!("\n  -> {why}")),
    }
    text
}
