//! The bodies of popek's fuzz targets, in the library so that two callers share them:
//! the coverage-guided fuzzer (`fuzz/`, cargo-fuzz with libFuzzer on nightly Rust) and
//! the stable test `tests/fuzz_corpus.rs`, which replays every input in the committed
//! corpus. Each function takes arbitrary bytes and panics only on a bug: a loader that
//! panics instead of returning an error, or two engines that disagree.

use popek_machine::multiboot::{self, Module};
use popek_machine::{EngineKind, Machine, MachineConfig, RunConfig, lockstep};
use popek_memory::GuestMemory;

/// RAM of the machines the targets build: small, so that each input runs fast.
pub const FUZZ_RAM: u32 = 2 << 20;

/// Instructions each engine may run on one input.
pub const ENGINE_INSNS: u64 = 10_000;

/// The Multiboot loader on `data` as a kernel image, with a command line and a module cut
/// from the input's tail. Every input must load or be refused with a [`multiboot::LoadError`];
/// its message must be one line.
pub fn loaders(data: &[u8]) {
    let mut mem = GuestMemory::new(FUZZ_RAM.into()).expect("2 MiB of guest RAM");
    // The last 64 bytes (if any) double as a module, and a few as a command line.
    let split = data.len().saturating_sub(64);
    let modules = [Module { data: data[split..].to_vec(), cmdline: "module arg".into() }];
    let cmdline = String::from_utf8_lossy(&data[split..data.len().min(split + 16)]).into_owned();
    if let Err(e) = multiboot::load(&mut mem, data, &cmdline, &modules) {
        let text = e.to_string();
        assert!(!text.is_empty() && !text.contains('\n'), "load error is one line: {text:?}");
    }
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
    let cfg = RunConfig { max_insns: Some(ENGINE_INSNS), ..RunConfig::default() };
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
