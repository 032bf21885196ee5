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
    // DR0: nothing in the guest writes it, and with DR7 clear it changes nothing it runs.
    b.cpu.state.dr[0] ^= 1;
    let d = lockstep::run(&mut a, &mut b, &RunConfig::default()).expect_err("they differ");
    assert_eq!(d.step, 1);
    assert_ne!(d.reference.dr, d.other.dr);
}

#[test]
fn a_memory_difference_is_reported() {
    let (mut a, mut b) = (boot(EngineKind::Interp), boot(EngineKind::Jit));
    // A byte no guest touches, far above the kernel.
    assert!(b.cpu.mem.load(popek_cpu::PhysAddr(0x700_0000), &[0xaa]));
    let d = lockstep::run(&mut a, &mut b, &RunConfig::default()).expect_err("they differ");
    assert_eq!(d.memory, Some(0x700_0000));
}

/// `STI; HLT` with every IRQ masked at the PICs (the kernel masks the timer the firmware
/// left running) sleeps for ever in virtual time, retiring nothing, so `max_insns` never
/// stops it; `max_ticks` does, under both engines and in lockstep, at the same virtual time.
#[test]
fn max_ticks_ends_a_halt_that_nothing_wakes() {
    // mov al, 0xff ; out 0x21, al ; sti ; hlt
    let image = popek_machine::multiboot::minimal_elf(0x10_0000, 3, &[0xb0, 0xff, 0xe6, 0x21, 0xfb, 0xf4], 4096);
    let boot = |engine| {
        let config = MachineConfig { ram_size: 2 << 20, engine, ..MachineConfig::default() };
        Machine::boot(config, &image).expect("boots")
    };
    let cfg = RunConfig { max_insns: Some(100), max_ticks: Some(500_000_000), ..RunConfig::default() };
    for engine in [EngineKind::Interp, EngineKind::Jit] {
        let mut m = boot(engine);
        assert_eq!(m.run(&cfg), StopReason::InstructionLimit, "{engine:?}");
        assert_eq!(m.stats.retired, 4, "{engine:?}");
        assert!(m.ticks() >= 500_000_000 && m.cpu.state.halted, "{engine:?}");
    }
    let (mut a, mut b) = (boot(EngineKind::Interp), boot(EngineKind::Jit));
    let stop = lockstep::run(&mut a, &mut b, &cfg).expect("they agree");
    assert_eq!(stop, StopReason::InstructionLimit);
    assert_eq!(a.ticks(), b.ticks());
}

/// RDTSC reads the virtual time of its own instruction in both engines, wherever each puts
/// its blocks' ends. Here a loop stores a RET over a routine it then calls: the interpreter
/// ends its block at every such store, while translated code, once the routine is decoded
/// afresh for each call (rewritten too often to keep), goes on past it. Each iteration is
/// eight instructions, so the readings are eight apart.
#[test]
fn rdtsc_reads_the_same_time_wherever_the_blocks_end() {
    #[rustfmt::skip]
    let code = [
        0xbc, 0x00, 0x40, 0x10, 0x00, // mov esp, 0x104000   (a stack)
        0xbe, 0x00, 0x20, 0x10, 0x00, // mov esi, 0x102000   (readings)
        0xb9, 0x06, 0x00, 0x00, 0x00, // mov ecx, 6
        0xbb, 0x00, 0x10, 0x10, 0x00, // mov ebx, 0x101000   (the routine)
        0xc6, 0x03, 0xc3,             // mov byte [ebx], 0xc3 (ret)
        0xff, 0xd3,                   // call ebx
        0xc6, 0x03, 0xc3,             // loop: mov byte [ebx], 0xc3
        0x0f, 0x31,                   // rdtsc
        0x89, 0x06,                   // mov [esi], eax
        0x83, 0xc6, 0x04,             // add esi, 4
        0xff, 0xd3,                   // call ebx
        0x49,                         // dec ecx
        0x75, 0xf1,                   // jnz loop
        0xf4,                         // hlt (IF is clear)
    ];
    let image = popek_machine::multiboot::minimal_elf(0x10_0000, 3, &code, 8192);
    let boot = |engine| {
        let config = MachineConfig { ram_size: 2 << 20, engine, ..MachineConfig::default() };
        Machine::boot(config, &image).expect("boots")
    };
    let readings = |m: &Machine| {
        m.cpu.mem.as_slice()[0x10_2000..0x10_2000 + 24]
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes(w.try_into().expect("four bytes")))
            .collect::<Vec<_>>()
    };
    let cfg = RunConfig { max_insns: Some(1000), ..RunConfig::default() };
    let mut seen = Vec::new();
    for engine in [EngineKind::Interp, EngineKind::Jit] {
        let mut m = boot(engine);
        assert_eq!(m.run(&cfg), StopReason::Halted, "{engine:?}\n{}", m.cpu.state.dump());
        let r = readings(&m);
        assert!(r.windows(2).all(|w| w[1] - w[0] == 8), "{engine:?}: {r:?}");
        seen.push(r);
    }
    assert_eq!(seen[0], seen[1]);
    let (mut a, mut b) = (boot(EngineKind::Interp), boot(EngineKind::Jit));
    assert_eq!(lockstep::run(&mut a, &mut b, &cfg).expect("they agree"), StopReason::Halted);
}
