//! Lockstep finds the first block after which two machines differ.

use popek_devices::sink::NullSink;
use popek_devices::storage::BlockStorage;
use popek_machine::disk::MemoryDisk;
use popek_machine::{EngineKind, Machine, MachineConfig, RunConfig, StopReason, lockstep};

fn boot(engine: EngineKind) -> Machine {
    boot_guest("usermode", engine)
}

fn boot_guest(name: &str, engine: EngineKind) -> Machine {
    let g = popek_guests::find(name).expect("built-in guest");
    let config = MachineConfig {
        ram_size: 128 << 20,
        cmdline: g.cmdline.to_string(),
        serial: Box::new(NullSink),
        engine,
        code_cache: popek_jit::DEFAULT_CODE_CACHE,
        disks: [g.disk.map(|build| Box::new(MemoryDisk::new(build())) as Box<dyn BlockStorage>), None],
        ..MachineConfig::default()
    };
    Machine::boot(config, g.elf).expect("boots")
}

/// Every guest, block by block (chained JIT runs included): the same state wherever
/// both engines stand at a block boundary.
#[test]
fn interpreter_and_jit_agree_on_every_guest() {
    for g in popek_guests::GUESTS {
        let (mut a, mut b) = (boot_guest(g.name, EngineKind::Interp), boot_guest(g.name, EngineKind::Jit));
        match lockstep::run(&mut a, &mut b, &RunConfig::default()) {
            Ok(stop) => assert_eq!(stop, StopReason::Exit(1), "{}", g.name),
            Err(d) => {
                panic!("{}: engines differ after step {}:\n{}\n{}", g.name, d.step, d.reference.dump(), d.other.dump())
            }
        }
    }
}

#[test]
fn a_register_difference_is_reported_at_the_first_block() {
    let (mut a, mut b) = (boot(EngineKind::Interp), boot(EngineKind::Jit));
    b.cpu.state.gpr[6] ^= 1; // ESI: the guest's entry code does not overwrite it
    let d = lockstep::run(&mut a, &mut b, &RunConfig::default()).expect_err("they differ");
    assert_eq!(d.step, 1);
    assert_ne!(d.reference.gpr, d.other.gpr);
}

#[test]
fn a_memory_difference_is_reported() {
    let (mut a, mut b) = (boot(EngineKind::Interp), boot(EngineKind::Jit));
    // A byte no guest touches, far above the kernel.
    assert!(b.cpu.mem.load(popek_cpu::PhysAddr(0x700_0000), &[0xaa]));
    let d = lockstep::run(&mut a, &mut b, &RunConfig::default()).expect_err("they differ");
    assert_eq!(d.memory, Some(0x700_0000));
}

/// `STI; HLT` with every IRQ masked at the PICs (as the firmware leaves them) sleeps for
/// ever in virtual time, retiring nothing, so `max_insns` never stops it; `max_ticks` does,
/// under both engines and in lockstep, at the same virtual time.
#[test]
fn max_ticks_ends_a_halt_that_nothing_wakes() {
    let image = popek_machine::multiboot::minimal_elf(0x10_0000, 3, &[0xfb, 0xf4], 4096);
    let boot = |engine| {
        let config = MachineConfig { ram_size: 2 << 20, engine, ..MachineConfig::default() };
        Machine::boot(config, &image).expect("boots")
    };
    let cfg = RunConfig { max_insns: Some(100), max_ticks: Some(500_000_000), ..RunConfig::default() };
    for engine in [EngineKind::Interp, EngineKind::Jit] {
        let mut m = boot(engine);
        assert_eq!(m.run(&cfg), StopReason::InstructionLimit, "{engine:?}");
        assert_eq!(m.stats.retired, 2, "{engine:?}");
        assert!(m.ticks() >= 500_000_000 && m.cpu.state.halted, "{engine:?}");
    }
    let (mut a, mut b) = (boot(EngineKind::Interp), boot(EngineKind::Jit));
    let stop = lockstep::run(&mut a, &mut b, &cfg).expect("they agree");
    assert_eq!(stop, StopReason::InstructionLimit);
    assert_eq!(a.ticks(), b.ticks());
}
