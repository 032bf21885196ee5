//! How closely `RunConfig::timeout` holds: runs guests that never stop on their own —
//! chained translated code that never reaches a callout — under each engine with a
//! wall-clock limit, and prints how long each run took past it.
//!
//! ```sh
//! cargo run --release -p popek-machine --example timeout_check            # 100 ms limit
//! cargo run --release -p popek-machine --example timeout_check -- 2.5     # another limit, in seconds
//! ```
//!
//! A check to run by hand, not a test: it measures wall time, which the tests never do.

use popek_machine::multiboot::minimal_elf;
use popek_machine::{EngineKind, Machine, MachineConfig, RunConfig, StopReason};
use std::time::{Duration, Instant};

/// Endless loops of 32-bit code (the kernel's entry point is the first byte).
fn loops() -> Vec<(&'static str, Vec<u8>)> {
    // mov ecx, 1 ; xor edx, edx ; l: div ecx (30 times) ; jmp l
    let mut div_only = vec![0xb9, 1, 0, 0, 0, 0x31, 0xd2];
    div_only.extend([0xf7, 0xf1].repeat(30));
    div_only.extend([0xeb, 0xc2]);
    vec![
        // l: inc eax ; jmp l
        ("register loop (ident, chained to itself)", vec![0x40, 0xeb, 0xfd]),
        // l: xor edx, edx ; mov eax, 1000 ; mov ecx, 7 ; div ecx ; jmp l
        (
            "DIV loop (a helper per iteration)",
            vec![0x31, 0xd2, 0xb8, 0xe8, 0x03, 0, 0, 0xb9, 7, 0, 0, 0, 0xf7, 0xf1, 0xeb, 0xf0],
        ),
        ("DIV only (30 helpers per block)", div_only),
        // l: mov edi, 0x400000 ; mov ecx, 0x1000000 ; rep stosd ; jmp l   (64 MiB per REP)
        ("rep stosd of 64 MiB, again and again", vec![0xbf, 0, 0, 0x40, 0, 0xb9, 0, 0, 0, 1, 0xf3, 0xab, 0xeb, 0xf2]),
        // l: mov esi, 0x400000 ; mov edi, 0x500000 ; mov ecx, 64 ; rep movsb ; jmp l
        (
            "rep movsb of 64 bytes, again and again",
            vec![0xbe, 0, 0, 0x40, 0, 0xbf, 0, 0, 0x50, 0, 0xb9, 64, 0, 0, 0, 0xf3, 0xa4, 0xeb, 0xed],
        ),
    ]
}

fn main() {
    let limit = std::env::args().nth(1).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.1);
    let limit = Duration::from_secs_f64(limit);
    println!("timeout {limit:?}; time each run took past it (wall time - timeout):");
    let mut worst = Duration::ZERO;
    for (name, code) in loops() {
        for engine in [EngineKind::Jit, EngineKind::Interp] {
            let image = minimal_elf(0x10_0000, 0, &code, 0);
            let config = MachineConfig { engine, ..MachineConfig::default() };
            let mut machine = Machine::boot(config, &image).expect("the image loads");
            let started = Instant::now();
            let stop = machine.run(&RunConfig { timeout: Some(limit), ..RunConfig::default() });
            let over = started.elapsed().saturating_sub(limit);
            worst = worst.max(over);
            assert_eq!(stop, StopReason::Timeout, "{name}");
            let mips = machine.stats.retired as f64 / limit.as_secs_f64() / 1e6;
            println!(
                "  {:<42} {:<7} {:>9.3} ms past  ({:.0} MIPS)",
                name,
                format!("{engine:?}"),
                over.as_secs_f64() * 1e3,
                mips
            );
        }
    }
    println!("worst: {:.3} ms past the timeout", worst.as_secs_f64() * 1e3);
}
