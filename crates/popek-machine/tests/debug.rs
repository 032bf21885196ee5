//! The debugger's engine: stepping, breakpoints and watchpoints inside blocks, and going
//! back in time, all checked against plain runs of the same guests.

use popek_devices::sink::{ByteSink, NullSink};
use popek_devices::storage::BlockStorage;
use popek_machine::debug::{self, Breakpoint, DebugStop, Debugger, WatchKind, Watchpoint};
use popek_machine::disk::MemoryDisk;
use popek_machine::symbols::Symbols;
use popek_machine::{EngineKind, Machine, MachineConfig, RunConfig, StopReason};

fn boot(name: &str, serial: Box<dyn ByteSink>) -> Machine {
    let g = popek_guests::find(name).expect("built-in guest");
    let config = MachineConfig {
        ram_size: 128 << 20,
        cmdline: g.cmdline.to_string(),
        serial,
        engine: EngineKind::Interp,
        code_cache: popek_jit::DEFAULT_CODE_CACHE,
        disks: [g.disk.map(|build| Box::new(MemoryDisk::new(build())) as Box<dyn BlockStorage>), None],
        ..MachineConfig::default()
    };
    Machine::boot(config, g.elf).expect("boots")
}

fn debugger(name: &'static str) -> Debugger {
    Debugger::new(Box::new(move || Ok(boot(name, Box::new(NullSink)))), RunConfig::default()).expect("boots")
}

/// What a plain interpreter run of the guest ends with: the stop and the instructions.
fn plain_run(name: &str) -> (StopReason, u64) {
    let mut m = boot(name, Box::new(NullSink));
    let stop = m.run(&RunConfig { max_insns: Some(200_000_000), ..RunConfig::default() });
    (stop, m.stats.retired)
}

/// A snapshot of what the guest can see: registers and all of RAM (hashed).
fn fingerprint(d: &Debugger) -> (String, u64) {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    d.cpu().mem.as_slice().hash(&mut h);
    (d.cpu().state.dump(), h.finish())
}

/// Steps of every size, in a pattern, through guests with timer interrupts: the run ends
/// exactly as a plain run does (same stop, same instruction count), so cutting blocks into
/// parts changes nothing.
#[test]
fn stepping_in_parts_is_a_plain_run() {
    for name in ["interrupts", "windows", "smc", "hello"] {
        let expected = plain_run(name);
        let mut d = debugger(name);
        let sizes = [1u64, 7, 2, 64, 3, 1000, 1, 13];
        let mut i = 0;
        let stop = loop {
            match d.step(sizes[i % sizes.len()]) {
                DebugStop::Stepped => i += 1,
                DebugStop::Machine(s) => break s,
                other => panic!("{name}: unexpected stop {other:?}"),
            }
        };
        assert_eq!((stop, d.machine.stats.retired), expected, "{name}");
    }
}

/// A breakpoint at a function stops before its first instruction, with EIP there; going
/// on from it does not stop at it again; removing it lets the guest finish as usual.
#[test]
fn breakpoint_at_a_symbol() {
    let g = popek_guests::find("hello").expect("hello");
    let kmain = Symbols::from_elf(g.elf).lookup("kmain").expect("kmain");
    let mut d = debugger("hello");
    assert!(d.add_breakpoint(Breakpoint::Virtual(kmain)));
    assert_eq!(d.cont(), DebugStop::Breakpoint(Breakpoint::Virtual(kmain)));
    assert_eq!(d.cpu().state.eip, kmain);
    let at = d.position();
    assert_eq!(d.step(1), DebugStop::Stepped);
    assert_eq!(d.position(), at + 1);
    assert!(d.remove_breakpoint(Breakpoint::Virtual(kmain)));
    assert_eq!(d.cont(), DebugStop::Machine(plain_run("hello").0));
}

/// The same breakpoint set physically (paging is off in `hello`: the same address).
#[test]
fn physical_breakpoint() {
    let g = popek_guests::find("hello").expect("hello");
    let kmain = Symbols::from_elf(g.elf).lookup("kmain").expect("kmain");
    let mut d = debugger("hello");
    d.add_breakpoint(Breakpoint::Physical(kmain));
    assert_eq!(d.cont(), DebugStop::Breakpoint(Breakpoint::Physical(kmain)));
    assert_eq!(d.cpu().state.eip, kmain);
}

/// Going back one step, or to any earlier position, gives exactly the state the guest
/// had there (registers and all of RAM), in a guest with interrupts.
#[test]
fn reverse_step_restores_the_past() {
    let mut d = debugger("interrupts");
    let mut seen = Vec::new();
    for n in [5000u64, 1, 1, 20_000, 1, 333] {
        assert_eq!(d.step(n), DebugStop::Stepped);
        seen.push((d.position(), fingerprint(&d)));
    }
    for (pos, print) in seen.iter().rev() {
        d.goto(*pos).expect("replay");
        assert_eq!(d.position(), *pos);
        assert_eq!(&fingerprint(&d), print, "state at position {pos}");
    }
    let (pos, print) = &seen[2];
    d.goto(pos + 1).expect("forward");
    d.reverse_step().expect("back one");
    assert_eq!((d.position(), &fingerprint(&d)), (*pos, print));
}

/// Reverse continue goes to the last breakpoint hit before the present.
#[test]
fn reverse_continue_finds_the_last_hit() {
    let g = popek_guests::find("interrupts").expect("guest");
    let syms = Symbols::from_elf(g.elf);
    let putc = syms.lookup("isr_32").expect("the IRQ 0 stub");
    let mut d = debugger("interrupts");
    d.add_breakpoint(Breakpoint::Virtual(putc));
    let mut hits = Vec::new();
    for _ in 0..3 {
        assert_eq!(d.cont(), DebugStop::Breakpoint(Breakpoint::Virtual(putc)));
        hits.push((d.position(), fingerprint(&d)));
    }
    d.step(50);
    let back = d.reverse_continue().expect("replay");
    assert_eq!(back, Some(DebugStop::Breakpoint(Breakpoint::Virtual(putc))));
    assert_eq!((d.position(), fingerprint(&d)), hits[2].clone());
    d.reverse_continue().expect("replay");
    assert_eq!((d.position(), fingerprint(&d)), hits[1].clone());
}

/// A write watchpoint on a byte of the stack stops right after the instruction that wrote
/// it; a read watchpoint after one that read it.
#[test]
fn watchpoints_stop_after_the_access() {
    let mut d = debugger("hello");
    d.step(200);
    let esp = d.cpu().state.gpr[popek_cpu::state::gpr::ESP];
    let slot = esp.wrapping_sub(4);
    d.add_watchpoint(Watchpoint { addr: slot, len: 4, kind: WatchKind::Write });
    match d.cont() {
        DebugStop::Watchpoint { watch, addr, write } => {
            assert!(write);
            assert_eq!(watch.addr, slot);
            assert!(addr <= slot + 3 && slot < addr + 4, "{addr:#x} overlaps {slot:#x}");
        }
        other => panic!("expected a watchpoint, got {other:?}"),
    }
    let value = u32::from_le_bytes(std::array::from_fn(|i| {
        debug::peek(d.cpu(), slot + u32::try_from(i).expect("small")).expect("RAM")
    }));
    let read_back = d.cpu().mem.as_slice()[slot as usize..slot as usize + 4].to_vec();
    assert_eq!(value.to_le_bytes().to_vec(), read_back, "paging is off: linear = physical");
}

/// Going back and continuing again ends where the first run ended, at the same position.
#[test]
fn replay_then_continue_ends_the_same() {
    let mut d = debugger("hello");
    let first = d.cont();
    assert!(matches!(first, DebugStop::Machine(StopReason::Exit(_))));
    let end = d.position();
    d.goto(10).expect("back");
    assert_eq!(d.position(), 10);
    assert_eq!(d.cont(), first);
    assert_eq!(d.position(), end);
}

/// `run_for` without `resume` stops at a breakpoint on the next instruction before
/// running anything (the gdb stub's continue, as QEMU's); with it, runs past it.
#[test]
fn run_for_stops_where_it_starts_unless_resuming() {
    let g = popek_guests::find("hello").expect("hello");
    let kmain = Symbols::from_elf(g.elf).lookup("kmain").expect("kmain");
    let mut d = debugger("hello");
    d.add_breakpoint(Breakpoint::Virtual(kmain));
    assert_eq!(d.run_for(u64::MAX, false), DebugStop::Breakpoint(Breakpoint::Virtual(kmain)));
    let at = d.position();
    assert_eq!(d.run_for(10, false), DebugStop::Breakpoint(Breakpoint::Virtual(kmain)));
    assert_eq!(d.position(), at);
    assert_eq!(d.run_for(10, true), DebugStop::Stepped);
    assert_eq!(d.position(), at + 10);
}

/// Steps that hold interrupts never go into an interrupt handler, except out of HLT
/// (which nothing else would wake); plain steps do, in the same guest (`windows` takes
/// IRQ0 right after STI, POPF, IRET, OUT…). Each run goes to the guest's end (under held
/// steps it notices its interrupts are late, and fails).
#[test]
fn held_steps_take_interrupts_only_out_of_hlt() {
    use popek_cpu::interrupt::Source;
    let external_after_other_than_hlt = |held: bool| {
        let mut d = debugger("windows");
        let mut count = 0;
        for _ in 0..20_000_000 {
            let hlt = debug::peek(d.cpu(), d.cpu().state.seg(popek_cpu::state::Seg::Cs).base + d.cpu().state.eip);
            let stop = if held { d.step_holding_interrupts(1) } else { d.step(1) };
            let external = d.take_deliveries().iter().filter(|x| x.source == Source::External).count();
            if external > 0 && hlt != Some(0xf4) {
                count += 1;
            }
            if stop != DebugStop::Stepped {
                break;
            }
        }
        count
    };
    assert!(external_after_other_than_hlt(false) > 0, "the guest takes an interrupt outside HLT");
    assert_eq!(external_after_other_than_hlt(true), 0);
}

/// A register write from a debugger: EIP inside a block being run in parts, and segment
/// registers loaded from the guest's GDT (only where the descriptor fits).
#[test]
fn eip_and_segment_writes() {
    use popek_cpu::state::Seg;
    let g = popek_guests::find("hello").expect("hello");
    let kmain = Symbols::from_elf(g.elf).lookup("kmain").expect("kmain");
    let mut d = debugger("hello");
    d.add_breakpoint(Breakpoint::Virtual(kmain));
    d.cont();
    d.step(1);
    let second = d.cpu().state.eip;
    let esp = d.cpu().state.gpr[popek_cpu::state::gpr::ESP];
    // Back to kmain's first instruction: it runs again (SUB ESP, 2Ch).
    d.set_eip(kmain);
    assert_eq!(d.step(1), DebugStop::Stepped);
    assert_eq!(d.cpu().state.eip, second);
    assert_eq!(d.cpu().state.gpr[popek_cpu::state::gpr::ESP], esp.wrapping_sub(0x2c));
    // The runtime's GDT: 0x08 code, 0x10 data (ring 0).
    assert_eq!(d.set_segment(Seg::Ds, 0x10), Ok(()));
    assert_eq!(d.set_segment(Seg::Fs, 0), Ok(()));
    assert!(!d.cpu().state.seg(Seg::Fs).usable());
    assert!(d.set_segment(Seg::Ss, 0x08).is_err());
    assert!(d.set_segment(Seg::Cs, 0).is_err());
    assert!(d.set_segment(Seg::Es, 0xfff8).is_err());
    assert_eq!(d.set_segment(Seg::Fs, 0x10), Ok(()));
    assert_eq!(*d.cpu().state.seg(Seg::Fs), *d.cpu().state.seg(Seg::Ds));
}
