//! The bodies of popek's fuzz targets, in the library so that two callers share them:
//! the coverage-guided fuzzer (`fuzz/`, cargo-fuzz with libFuzzer on nightly Rust) and
//! the stable test `tests/fuzz_corpus.rs`, which replays every input in the committed
//! corpus. Each function takes arbitrary bytes and panics only on a bug: a loader that
//! panics instead of returning an error, or two engines that disagree.

use popek_devices::ide::Chs;
use popek_machine::multiboot::{self, Module};
use popek_machine::{EngineKind, Machine, MachineConfig, RunConfig, lockstep};

/// RAM of the machines the targets build: small, so that each input runs fast.
pub const FUZZ_RAM: u32 = 2 << 20;

/// Instructions each engine may run on one input.
pub const ENGINE_INSNS: u64 = 10_000;

/// Virtual time (in instruction periods, halts included) each engine may run on one input:
/// 0.2 s at the default 1000 MIPS, some ten periods of the PIT's power-on 18.2 Hz timer.
pub const ENGINE_TICKS: u64 = 200_000_000;

/// The kernel loaders on `data` as a kernel image, the way `popek run` boots one: a Linux
/// bzImage (if it has the boot header) or a Multiboot kernel, into a machine with the least
/// RAM the CLI allows, with a command line, a Multiboot module and an initrd cut from the
/// input's tail. Every input must boot or be refused with a [`MachineError`](popek_machine::MachineError) whose message,
/// and that of each of its causes, is one line. The disk geometry of a disk as large as the
/// input's first eight bytes say is checked on the side.
pub fn loaders(data: &[u8]) {
    // The last 64 bytes (if any) double as a module and an initrd, and a few as a command line.
    let split = data.len().saturating_sub(64);
    let tail = &data[split..];
    let config = MachineConfig {
        ram_size: FUZZ_RAM.into(),
        cmdline: String::from_utf8_lossy(&tail[..tail.len().min(16)]).into_owned(),
        modules: vec![Module { data: tail.to_vec(), cmdline: "module arg".into() }],
        initrd: Some(tail.to_vec()),
        engine: EngineKind::Interp,
        ..MachineConfig::default()
    };
    if let Err(e) = Machine::boot(config, data) {
        let mut cause: Option<&dyn std::error::Error> = Some(&e);
        while let Some(c) = cause {
            let text = c.to_string();
            assert!(!text.is_empty() && !text.contains('\n'), "boot error is one line: {text:?}");
            cause = c.source();
        }
    }
    let sectors = data.get(..8).map_or(0, |b| u64::from_le_bytes(b.try_into().expect("eight bytes")));
    disk_geometry(sectors);
}

/// The ATA geometry popek reports for a disk of `sectors` sectors: within the limits of
/// CHS addressing, and never more sectors than the disk has.
fn disk_geometry(sectors: u64) {
    let chs = Chs::for_sectors(sectors);
    assert!((1..=16383).contains(&chs.cylinders), "{sectors} sectors: {chs:?}");
    assert!((1..=16).contains(&chs.heads) && (1..=63).contains(&chs.sectors), "{sectors} sectors: {chs:?}");
    let chs_sectors = u64::from(chs.cylinders) * u64::from(chs.heads) * u64::from(chs.sectors);
    assert!(chs_sectors <= sectors.max(1), "{sectors} sectors: {chs:?} addresses {chs_sectors}");
}

/// `data` as a code page under the interpreter and the translator side by side: the first
/// 32 bytes are the eight general registers (EAX..EDI; ESP is kept inside RAM), the rest is
/// 32-bit code at 1 MiB, after a Multiboot hand-over (flat segments, paging off, the real
/// mode interrupt table as IDT, so the first exception ends the run in a triple fault).
/// Any difference in registers, flags, memory or the way the run ends is a crash.
pub fn engines(data: &[u8]) {
    let (regs, code) = data.split_at(data.len().min(32));
    if code.is_empty() {
        return;
    }
    let image = multiboot::minimal_elf(0x10_0000, 3, code, 4096);
    let boot = |engine| {
        let config = MachineConfig {
            ram_size: FUZZ_RAM.into(),
            engine,
            code_cache: popek_machine::MIN_CODE_CACHE,
            ..MachineConfig::default()
        };
        let mut m = Machine::boot(config, &image).expect("a minimal kernel loads");
        for (i, word) in regs.chunks_exact(4).enumerate() {
            let v = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            // ESP (4) stays inside RAM, so the run is not only stack faults.
            m.cpu.state.gpr[i] = if i == 4 { 0x1000 + (v % (FUZZ_RAM - 0x2000)) } else { v };
        }
        m
    };
    let (mut reference, mut other) = (boot(EngineKind::Interp), boot(EngineKind::Jit));
    // A guest that halts with interrupts on and every IRQ masked sleeps for ever in
    // virtual time: `max_ticks` ends it.
    let cfg = RunConfig { max_insns: Some(ENGINE_INSNS), max_ticks: Some(ENGINE_TICKS), ..RunConfig::default() };
    if let Err(d) = lockstep::run(&mut reference, &mut other, &cfg) {
        panic!(
            "the engines diverge at step {} (retired {:?}, memory {:?})\n---- before ----\n{}\n---- interpreter ----\n{}\n---- JIT ----\n{}\n{}",
            d.step,
            d.retired,
            d.memory,
            d.before.dump(),
            d.reference.dump(),
            d.other.dump(),
            d.block.unwrap_or_default()
        );
    }
}

/// `data` as `popek`'s arguments after the program name, split at NUL bytes (so an
/// argument may hold any other byte, invalid UTF-8 included), through [`crate::cli::parse`].
/// It must return a command line, help text, or a usage error of one line without control
/// characters; it must never panic (clap's own consistency checks included, in a debug build).
pub fn cli(data: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let args = data.split(|&b| b == 0).map(|a| std::ffi::OsStr::from_bytes(a).to_os_string());
    match crate::cli::parse(std::iter::once("popek".into()).chain(args)) {
        Ok(_) => {}
        Err(crate::cli::Usage::Help(e)) => assert!(!e.render().to_string().is_empty(), "help text"),
        Err(crate::cli::Usage::Error(line)) => {
            assert!(!line.is_empty() && !line.chars().any(char::is_control), "usage error is one clean line: {line:?}");
            assert!(!line.starts_with("error:"), "the label is dropped: {line:?}");
        }
    }
}
