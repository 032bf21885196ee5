//! Every built-in guest, run whole, checked by its exact serial output and exit status.

use popek::devices::sink::SharedBuffer;
use popek::machine::{EngineKind, Machine, MachineConfig, RunConfig, StopReason};
use popek_guests::{GUESTS, Guest};
use std::time::Duration;

/// Boots `guest` with 128 MiB (as under QEMU) and runs it to its end under `engine`.
fn run(guest: &Guest, engine: EngineKind) -> (StopReason, String, u64) {
    let out = SharedBuffer::new();
    let config = MachineConfig {
        ram_size: 128 << 20,
        cmdline: guest.cmdline.to_string(),
        modules: Vec::new(),
        serial: Box::new(out.clone()),
        engine,
        code_cache: popek::jit::DEFAULT_CODE_CACHE,
    };
    let mut m = Machine::boot(config, guest.elf).expect("guest images load");
    let stop = m.run(&RunConfig { timeout: Some(Duration::from_secs(120)), ..RunConfig::default() });
    m.flush_output();
    (stop, out.text(), m.stats.retired)
}

/// The guest's exact output and exit status under the interpreter, and the very same
/// run — output, stop, retired instructions — under the JIT.
fn check(name: &str) {
    let guest = GUESTS.iter().find(|g| g.name == name).expect("guest exists");
    let (stop, output, retired) = run(guest, EngineKind::Interp);
    assert_eq!(output, guest.expected_output, "{name}: serial output");
    assert_eq!(stop, StopReason::Exit(guest.expected_exit_status), "{name}: stop reason");
    let jit = run(guest, EngineKind::Jit);
    assert_eq!(jit.1, output, "{name}: JIT output");
    assert_eq!(jit.0, stop, "{name}: JIT stop reason");
    assert_eq!(jit.2, retired, "{name}: JIT retired-instruction count");
}

#[test]
fn hello() {
    check("hello");
}

#[test]
fn interrupts() {
    check("interrupts");
}

#[test]
fn paging() {
    check("paging");
}

#[test]
fn usermode() {
    check("usermode");
}

#[test]
fn exceptions() {
    check("exceptions");
}

#[test]
fn smc() {
    check("smc");
}

#[test]
fn compute() {
    check("compute");
}

#[test]
fn nanobench() {
    check("nanobench");
}

/// Two runs of the same guest are identical: output, stop and instruction count.
#[test]
fn runs_are_deterministic() {
    let guest = GUESTS.iter().find(|g| g.name == "interrupts").expect("guest exists");
    assert_eq!(run(guest, EngineKind::Interp), run(guest, EngineKind::Interp));
    assert_eq!(run(guest, EngineKind::Jit), run(guest, EngineKind::Jit));
}

/// Every guest in the table has a test above.
#[test]
fn every_guest_is_tested() {
    let tested = ["hello", "interrupts", "paging", "usermode", "exceptions", "smc", "compute", "nanobench"];
    let all: Vec<&str> = GUESTS.iter().map(|g| g.name).collect();
    assert_eq!(all, tested);
}
