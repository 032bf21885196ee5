//! COM1 end to end: a tiny kernel echoes what the machine queued on the serial line.

use popek_cpu::iced_x86::code_asm::*;
use popek_devices::sink::SharedBuffer;
use popek_machine::multiboot::minimal_elf;
use popek_machine::{EngineKind, Machine, MachineConfig, RunConfig, StopReason};

/// Echo every received byte (polling LSR bit 0, data ready) up to a newline, then exit
/// through port 0xF4.
fn echo_kernel() -> Vec<u8> {
    let base = 0x10_0000u32;
    let mut a = CodeAssembler::new(32).unwrap();
    let mut top = a.create_label();
    a.set_label(&mut top).unwrap();
    a.mov(dx, 0x3fdu32 as i32).unwrap();
    a.in_(al, dx).unwrap();
    a.test(al, 1).unwrap();
    a.jz(top).unwrap();
    a.mov(dx, 0x3f8u32 as i32).unwrap();
    a.in_(al, dx).unwrap();
    a.out(dx, al).unwrap();
    a.cmp(al, 10).unwrap();
    a.jne(top).unwrap();
    a.mov(al, 0x21).unwrap();
    a.out(0xf4, al).unwrap();
    a.hlt().unwrap();
    // The code follows the 12-byte Multiboot header.
    minimal_elf(base, 0, &a.assemble(base as u64 + 12).unwrap(), 0)
}

#[test]
fn queued_input_reaches_the_guest() {
    for engine in [EngineKind::Interp, EngineKind::Jit] {
        echo(engine);
    }
}

fn echo(engine: EngineKind) {
    let out = SharedBuffer::new();
    let config = MachineConfig {
        ram_size: 4 << 20,
        cmdline: String::new(),
        serial: Box::new(out.clone()),
        engine,
        code_cache: popek_jit::DEFAULT_CODE_CACHE,
        ..MachineConfig::default()
    };
    let mut m = Machine::boot(config, &echo_kernel()).unwrap();
    m.queue_serial_input(b"typed at COM1\n");
    let stop = m.run(&RunConfig { max_insns: Some(100_000_000), ..RunConfig::default() });
    m.flush_output();
    assert_eq!(stop, StopReason::Exit((0x21 << 1) | 1));
    assert_eq!(out.text(), "typed at COM1\n");
    // One character time (10 bits at 9600 baud) per byte, from the first LSR read on.
    let char_ns = 12 * (10 * 1_000_000_000 / 115_200);
    let ns = m.stats.virtual_ns;
    assert!((14 * char_ns..15 * char_ns).contains(&ns), "{ns} ns of virtual time for 14 bytes");
}

/// The code-cache size is checked before anything is built: too small or too large is an
/// error that says the limits, and the smallest allowed cache still runs a guest.
#[test]
fn code_cache_size_is_validated() {
    use popek_machine::{MAX_CODE_CACHE, MIN_CODE_CACHE, MachineError};
    let boot = |code_cache| {
        let config = MachineConfig { ram_size: 4 << 20, code_cache, ..MachineConfig::default() };
        Machine::boot(config, &echo_kernel())
    };
    for size in [0, 4096, MIN_CODE_CACHE - 1, MAX_CODE_CACHE + 1] {
        match boot(size) {
            Err(e @ MachineError::CodeCacheSize { .. }) => {
                assert!(e.to_string().contains(&size.to_string()), "{e}");
            }
            Err(e) => panic!("{size}: wrong error {e}"),
            Ok(_) => panic!("{size}: a code cache of this size was accepted"),
        }
    }
    let mut m = boot(MIN_CODE_CACHE).expect("the smallest cache is accepted");
    m.queue_serial_input(b"x\n");
    assert_eq!(
        m.run(&RunConfig { max_insns: Some(100_000_000), ..RunConfig::default() }),
        StopReason::Exit((0x21 << 1) | 1)
    );
}
