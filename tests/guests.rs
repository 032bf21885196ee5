//! Every built-in guest, run whole, checked by its exact serial output and exit status.

use popek::devices::sink::SharedBuffer;
use popek::devices::storage::BlockStorage;
use popek::machine::disk::MemoryDisk;
use popek::machine::{Engine, EngineKind, Machine, MachineConfig, RunConfig, StopReason};
use popek_guests::{GUESTS, Guest};
use std::time::Duration;

/// Boots `guest` with 128 MiB (as under QEMU) and runs it to its end under `engine`.
fn run(guest: &Guest, engine: EngineKind) -> (StopReason, String, u64) {
    run_with(guest, guest.cmdline, engine)
}

/// [`run`] with another command line.
fn run_with(guest: &Guest, cmdline: &str, engine: EngineKind) -> (StopReason, String, u64) {
    let (stop, out, retired, _) = run_cached(guest, cmdline, engine, popek::jit::DEFAULT_CODE_CACHE);
    (stop, out, retired)
}

/// [`run_with`] with a code cache of `code_cache` bytes; also the JIT's counters (the
/// default ones under another engine).
fn run_cached(
    guest: &Guest,
    cmdline: &str,
    engine: EngineKind,
    code_cache: usize,
) -> (StopReason, String, u64, popek::jit::JitStats) {
    let out = SharedBuffer::new();
    let config = MachineConfig {
        ram_size: 128 << 20,
        cmdline: cmdline.to_string(),
        serial: Box::new(out.clone()),
        engine,
        code_cache,
        disks: guest_disks(guest),
        ..MachineConfig::default()
    };
    let mut m = Machine::boot(config, guest.elf).expect("guest images load");
    let stop = m.run(&RunConfig { timeout: Some(Duration::from_secs(120)), ..RunConfig::default() });
    m.flush_output();
    (stop, out.text(), m.stats.retired, jit_stats(&m))
}

/// The JIT's counters of machine `m` (the default ones under another engine).
fn jit_stats(m: &Machine) -> popek::jit::JitStats {
    match &m.engine {
        Engine::Jit(j) => j.stats,
        _ => popek::jit::JitStats::default(),
    }
}

/// The guests with the most code, under the JIT with the smallest code cache it accepts:
/// the cache never flushes, and each guest still runs exactly as under the interpreter —
/// output, stop, retired instructions. `codesize` (8,192 functions, far more code than the
/// cache holds) makes it evict region after region; the others may or may not fill it,
/// as the translator's code grows or shrinks.
#[test]
fn the_smallest_code_cache_evicts_and_changes_nothing() {
    for name in ["codesize", "compute", "exceptions", "fpu", "disk", "apic_timer", "smc", "nanobench"] {
        let guest = GUESTS.iter().find(|g| g.name == name).expect("guest exists");
        let (stop, output, retired, _) =
            run_cached(guest, guest.cmdline, EngineKind::Interp, popek::machine::MIN_CODE_CACHE);
        assert_eq!(output, guest.expected_output, "{name}: serial output");
        assert_eq!(stop, StopReason::Exit(guest.expected_exit_status), "{name}: stop reason");
        let jit = run_cached(guest, guest.cmdline, EngineKind::Jit, popek::machine::MIN_CODE_CACHE);
        assert_eq!((&jit.1, jit.0, jit.2), (&output, stop, retired), "{name}: the JIT's run");
        let s = jit.3;
        if name == "codesize" {
            assert!(s.evicted_regions > 0 && s.evicted >= s.evicted_regions, "{name}: the cache evicted: {s:?}");
        }
        assert_eq!(s.flushes, 0, "{name}: a full cache evicts, it never flushes: {s:?}");
    }
}

/// The guest's own disk, if it has one, in memory as the IDE master.
fn guest_disks(guest: &Guest) -> [Option<Box<dyn BlockStorage>>; 2] {
    [guest.disk.map(|build| Box::new(MemoryDisk::new(build())) as Box<dyn BlockStorage>), None]
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

#[test]
fn windows() {
    check("windows");
}

#[test]
fn hostile() {
    check("hostile");
}

#[test]
fn disk() {
    check("disk");
}

/// The disk guest under lockstep: both engines see the same IRQs and data, block for block,
/// and leave the same bytes on their disks.
#[test]
fn disk_under_lockstep() {
    let mut interp = check_under_lockstep("disk");
    assert!(interp.flush_disks().is_ok() && interp.take_disk_errors().is_empty());
}

/// Runs the guest `name` (its own command line and disk) under both engines in lockstep,
/// checks that they agree to the end and that its output and exit status are the
/// expected ones, and returns the interpreter's machine.
fn check_under_lockstep(name: &str) -> Machine {
    check_under_lockstep_cached(name, popek::jit::DEFAULT_CODE_CACHE).0
}

/// [`check_under_lockstep`] with a code cache of `code_cache` bytes; also the JIT's
/// counters.
fn check_under_lockstep_cached(name: &str, code_cache: usize) -> (Machine, popek::jit::JitStats) {
    let guest = GUESTS.iter().find(|g| g.name == name).expect("guest exists");
    let out = SharedBuffer::new();
    let boot = |engine, serial: Box<dyn popek::devices::sink::ByteSink>| {
        let config = MachineConfig {
            cmdline: guest.cmdline.into(),
            serial,
            engine,
            code_cache,
            disks: guest_disks(guest),
            ..MachineConfig::default()
        };
        Machine::boot(config, guest.elf).expect("guest images load")
    };
    let mut interp = boot(EngineKind::Interp, Box::new(out.clone()));
    let mut jit = boot(EngineKind::Jit, Box::new(popek::devices::sink::NullSink));
    let cfg = RunConfig { timeout: Some(Duration::from_secs(120)), ..RunConfig::default() };
    let stop = popek::machine::lockstep::run(&mut interp, &mut jit, &cfg).expect("the engines agree");
    interp.flush_output();
    assert_eq!(stop, StopReason::Exit(1), "{name}");
    assert_eq!(out.text(), guest.expected_output, "{name}");
    let stats = jit_stats(&jit);
    (interp, stats)
}

/// Lockstep with the smallest code cache: the JIT evicts region after region (chains into
/// evicted code dropped, ids and chain sites reused) and still agrees with the
/// interpreter block for block.
#[test]
fn the_smallest_code_cache_under_lockstep() {
    for name in ["codesize", "compute", "exceptions", "fpu", "smc"] {
        let (_, s) = check_under_lockstep_cached(name, popek::machine::MIN_CODE_CACHE);
        assert!(s.flushes == 0 && (name != "codesize" || s.evicted_regions > 0), "{name}: {s:?}");
    }
}

/// A disk whose host writes fail: the guest sees ERR (and fails its check), and the
/// machine keeps the error for the CLI to report.
#[test]
fn host_disk_errors_reach_the_guest_and_the_machine() {
    struct FailingWrites(MemoryDisk);
    impl BlockStorage for FailingWrites {
        fn sectors(&self) -> u64 {
            self.0.sectors()
        }
        fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> popek::devices::storage::StorageResult<()> {
            self.0.read_sectors(lba, buf)
        }
        fn write_sectors(&mut self, _: u64, _: &[u8]) -> popek::devices::storage::StorageResult<()> {
            Err(popek::devices::StorageError::Io {
                what: "cannot write disk image `test`".into(),
                source: std::io::Error::other("no space left"),
            })
        }
        fn flush(&mut self) -> popek::devices::storage::StorageResult<()> {
            Ok(())
        }
    }
    let guest = GUESTS.iter().find(|g| g.name == "disk").expect("guest exists");
    let out = SharedBuffer::new();
    let disk = FailingWrites(MemoryDisk::new(popek_guests::pattern_disk()));
    let config = MachineConfig {
        serial: Box::new(out.clone()),
        disks: [Some(Box::new(disk)), None],
        ..MachineConfig::default()
    };
    let mut m = Machine::boot(config, guest.elf).expect("guest images load");
    let stop = m.run(&RunConfig { timeout: Some(Duration::from_secs(60)), ..RunConfig::default() });
    m.flush_output();
    assert_eq!(stop, StopReason::Exit(3), "{}", out.text());
    assert!(out.text().contains("FAIL: write: status 71 after sector 0"), "{}", out.text());
    let errors: Vec<String> = m.take_disk_errors().iter().map(ToString::to_string).collect();
    assert_eq!(errors, ["cannot write disk image `test`"]);
}

#[test]
fn fpu() {
    check("fpu");
}

#[test]
fn ferr() {
    check("ferr");
}

/// The x87's FERR# and the IRQ 13 it raises, the OUT to 0xF0 and the frozen FWAIT: the
/// engines agree block for block (the block ends where FERR# goes up, in both).
#[test]
fn ferr_under_lockstep() {
    check_under_lockstep("ferr");
}

#[test]
fn apic_timer() {
    check("apic_timer");
}

#[test]
fn ioapic_serial() {
    check("ioapic_serial");
}

#[test]
fn tasks() {
    check("tasks");
}

#[test]
fn realmode() {
    check("realmode");
}

#[test]
fn sensitive() {
    check("sensitive");
}

/// A guest under `--engine trap`: stop, output, and the VMM's counts as `name count` lists
/// (traps, then sensitive instructions that did not trap), most frequent first.
fn run_trap(name: &str) -> (StopReason, String, Vec<String>, Vec<String>) {
    let guest = GUESTS.iter().find(|g| g.name == name).expect("guest exists");
    let out = SharedBuffer::new();
    let config = MachineConfig {
        cmdline: guest.cmdline.to_string(),
        serial: Box::new(out.clone()),
        engine: EngineKind::Trap,
        disks: guest_disks(guest),
        ..MachineConfig::default()
    };
    let mut m = Machine::boot(config, guest.elf).expect("guest images load");
    let stop = m.run(&RunConfig { timeout: Some(Duration::from_secs(120)), ..RunConfig::default() });
    m.flush_output();
    let Engine::Trap(e) = &m.engine else { panic!("the machine runs the trap engine") };
    let list = |v: Vec<(popek::cpu::iced_x86::Mnemonic, u64)>| -> Vec<String> {
        v.iter().map(|(m, n)| format!("{m:?} {n}").to_lowercase()).collect()
    };
    (stop, out.text(), list(e.trap_stats.traps()), list(e.trap_stats.silent()))
}

/// The traps without the port I/O ones (whose numbers follow the serial console's polling).
fn without_io(traps: &[String]) -> Vec<&str> {
    traps.iter().map(String::as_str).filter(|t| !t.starts_with("in ") && !t.starts_with("out ")).collect()
}

/// Under the trap-and-emulate VMM, the `sensitive` guest sees a ring-1 kernel's view of
/// everything it looks at, and fails (`expected/sensitive.trap.txt`): every privileged
/// instruction trapped, and each sensitive one it ran did not.
#[test]
fn sensitive_fails_under_trap_and_emulate() {
    let (stop, output, traps, silent) = run_trap("sensitive");
    assert_eq!(output, include_str!("../guests/expected/sensitive.trap.txt"));
    assert_eq!(stop, StopReason::Exit(3), "FAIL: exit(1)");
    assert!(output.ends_with("FAIL: 12 of the kernel's views were wrong: it does not run at ring 0\n"));
    assert_eq!(without_io(&traps), ["cli 5", "sti 3", "lgdt 1", "lidt 1", "ltr 1", "mov 1", "iretd 1"]);
    assert!(traps.iter().any(|t| t.starts_with("in ")) && traps.iter().any(|t| t.starts_with("out ")));
    assert_eq!(
        silent,
        [
            "pushfd 4", "mov 2", "popfd 2", "lar 1", "lsl 1", "push 1", "sgdt 1", "sidt 1", "smsw 1", "str 1",
            "verr 1", "verw 1"
        ]
    );
}

/// `usermode` passes under the trap engine: its ring-3 code runs at CPL 3 as on the real
/// machine (its POPF checks are ring 3's), and its kernel's one PUSHFD (building the IRET
/// frame into ring 3) shows IF = 1, which is what the kernel wants there anyway.
#[test]
fn usermode_passes_under_trap_and_emulate() {
    let guest = GUESTS.iter().find(|g| g.name == "usermode").expect("guest exists");
    let (stop, output, traps, silent) = run_trap("usermode");
    assert_eq!(output, guest.expected_output);
    assert_eq!(stop, StopReason::Exit(1));
    assert_eq!(without_io(&traps), ["iretd 22", "mov 7", "cli 1", "lgdt 1", "lidt 1", "ltr 1"]);
    assert_eq!(silent, ["pushfd 1"]);
}

/// `hostile` copies its GDTR with SGDT and loads it back with LGDT: under the trap engine
/// SGDT gave the VMM's GDTR, the emulated LGDT installs it as the guest's, and the next
/// segment load finds nothing there: the machine triple-faults.
#[test]
fn hostile_triple_faults_under_trap_and_emulate() {
    let (stop, output, _, silent) = run_trap("hostile");
    assert!(matches!(stop, StopReason::TripleFault(_)), "{stop:?}");
    assert!(!output.contains("hostile: PASS"));
    assert_eq!(silent, ["sgdt 1"]);
}

/// A paravirtualized kernel under the trap engine: every hypercall is a trap (VMCALL is #UD
/// on a CPU without VMX, so a classic VMM gets it either way), its loops run no CLI, STI,
/// INVLPG or MOV to CR3 at all, and it passes. (The MOVs left are its reads of CR3.)
#[test]
fn nanobench_pv_passes_under_trap_and_emulate() {
    let guest = GUESTS.iter().find(|g| g.name == "nanobench_pv").expect("guest exists");
    let (stop, output, traps, silent) = run_trap("nanobench_pv");
    assert_eq!(output, guest.expected_output);
    assert_eq!(stop, StopReason::Exit(1));
    assert_eq!(
        without_io(&traps),
        ["vmcall 41020", "iretd 11005", "mov 11003", "cli 1", "hlt 1", "lgdt 1", "lidt 1", "ltr 1"]
    );
    assert_eq!(silent, ["pushfd 1"]);
}

/// `cmdline` gives exactly `expected` and `status` under the interpreter, and the same run
/// under the JIT.
fn check_cmdline(name: &str, cmdline: &str, expected: &str, status: i32) {
    let guest = GUESTS.iter().find(|g| g.name == name).expect("guest exists");
    let (stop, output, retired) = run_with(guest, cmdline, EngineKind::Interp);
    assert_eq!(output, expected, "{name} {cmdline}: serial output");
    assert_eq!(stop, StopReason::Exit(status), "{name} {cmdline}: stop reason");
    assert_eq!(run_with(guest, cmdline, EngineKind::Jit), (stop, output, retired), "{name} {cmdline}: JIT");
}

/// The benchmarks' knobs: `only=NAME` runs one workload, and its lines are the ones the
/// full run prints (the same checksums).
#[test]
fn compute_runs_one_workload() {
    let full = GUESTS.iter().find(|g| g.name == "compute").expect("guest exists").expected_output;
    let line = |prefix: &str| full.lines().find(|l| l.starts_with(prefix)).expect("line in the full output");
    for (name, prefix) in [("sieve", "sieve:"), ("matmul", "matmul:"), ("div64", "div64:")] {
        let expected = format!("compute: iters=2 only={name}\n{}\ncompute: PASS\n", line(prefix));
        check_cmdline("compute", &format!("iters=2 only={name}"), &expected, 1);
    }
    let bad = "FAIL: only=sieve2: no such workload (sieve, crc32, sort, matmul, string, div64)\n";
    let (stop, output, _) =
        run_with(GUESTS.iter().find(|g| g.name == "compute").unwrap(), "only=sieve2", EngineKind::Jit);
    assert_eq!((stop, output.as_str()), (StopReason::Exit(3), bad));
}

/// `only=NAME n=N`: one loop, N times; `n=N` alone: every loop N times.
#[test]
fn nanobench_runs_one_loop() {
    check_cmdline(
        "nanobench",
        "only=pagefault n=37",
        "page fault (fault, map, resume, unmap): 37 iterations\nnanobench: PASS\n",
        1,
    );
    check_cmdline(
        "nanobench",
        "n=5 only=syscall",
        "syscall (int 0x80 from ring 3): 5 iterations\nnanobench: PASS\n",
        1,
    );
    let all = "syscall (int 0x80 from ring 3): 2 iterations\nport in (inb 0x80): 2 iterations\n\
               cr3 write: 2 iterations\npage fault (fault, map, resume, unmap): 2 iterations\n\
               call/ret: 2 iterations\ndata beside code (a counter in the loop's page): 2 iterations\n\
               patch and call (an imm32 in another page): 2 iterations\nirq off/on (cli; sti): 2 iterations\n\
               invlpg and touch: 2 iterations\nconsole line: 32 bytes of text.\nconsole line: 32 bytes of text.\n\
               console write (32-byte lines): 2 iterations\nnanobench: PASS\n";
    check_cmdline("nanobench", "n=2", all, 1);
}

#[test]
fn nanobench_pv() {
    check("nanobench_pv");
}

/// [`run_with`] with the paravirtual interface on or off: the output and the VMM's
/// callouts by mnemonic (the JIT's count, as `--stats` prints it).
fn run_pv(cmdline: &str, paravirt: bool) -> (StopReason, String, Vec<String>) {
    let guest = GUESTS.iter().find(|g| g.name == "nanobench_pv").expect("guest exists");
    let out = SharedBuffer::new();
    let config = MachineConfig {
        cmdline: cmdline.to_string(),
        serial: Box::new(out.clone()),
        engine: EngineKind::Jit,
        paravirt,
        ..MachineConfig::default()
    };
    let mut m = Machine::boot(config, guest.elf).expect("guest images load");
    let stop = m.run(&RunConfig { timeout: Some(Duration::from_secs(120)), ..RunConfig::default() });
    m.flush_output();
    let Engine::Jit(jit) = &m.engine else { panic!("the machine runs the JIT") };
    let callouts = jit.callouts_by_instruction().iter().map(|(m, n)| format!("{m:?} {n}").to_lowercase()).collect();
    (stop, out.text(), callouts)
}

/// One loop with `pv=1`: its sensitive instruction is gone, a hypercall per operation in its
/// place (two for the irq pair, plus the enable before the loop and the disable after it);
/// without the interface the same image runs the native loop.
#[test]
fn nanobench_pv_loops_make_hypercalls_instead_of_sensitive_instructions() {
    let count = |callouts: &[String], name: &str| {
        callouts.iter().find_map(|c| c.strip_prefix(&format!("{name} "))?.parse::<u64>().ok()).unwrap_or(0)
    };
    for (only, native, calls) in
        [("irq", ["cli", "sti"].as_slice(), 602), ("cr3", &["mov"], 300), ("invlpg", &["invlpg"], 300)]
    {
        let (stop, out, pv) = run_pv(&format!("pv=1 only={only} n=300"), true);
        assert_eq!(stop, StopReason::Exit(1), "{only}: {out}");
        assert!(out.starts_with("paravirt: CPUID 0x40000000 says popekpopekpv: hypercalls\n"));
        assert_eq!(count(&pv, "vmcall"), calls, "{only}: {pv:?}");
        let (_, out_off, off) = run_pv(&format!("pv=1 only={only} n=300"), false);
        assert!(out_off.starts_with("paravirt: no popek hypervisor leaf: native instructions\n"));
        assert_eq!(count(&off, "vmcall"), 0);
        // 300 of them fewer with hypercalls (cr3: the MOVs left read CR3, in both loops).
        for insn in native {
            assert!(count(&off, insn) >= count(&pv, insn) + 300, "{only}: {insn}: {off:?} / {pv:?}");
        }
    }
    // The console loop: one hypercall per 32-byte line instead of a polled OUT per byte.
    let (_, out, pv) = run_pv("pv=1 only=console n=50", true);
    assert_eq!(out.matches("console line: 32 bytes of text.\n").count(), 50);
    assert_eq!(count(&pv, "vmcall"), 50);
    let (_, out_off, off) = run_pv("pv=1 only=console n=50", false);
    assert_eq!(out_off.lines().skip(1).collect::<Vec<_>>(), out.lines().skip(1).collect::<Vec<_>>());
    assert!(count(&off, "out") >= 50 * 32 && count(&pv, "out") < 200, "{off:?} {pv:?}");
}

/// Without the interface (`--paravirt off`, a bare P6) the guest finds no leaf and runs the
/// native instructions: exactly what it prints under QEMU, in both engines.
#[test]
fn nanobench_pv_without_the_interface_is_native() {
    let guest = GUESTS.iter().find(|g| g.name == "nanobench_pv").expect("guest exists");
    let expected = include_str!("../guests/expected/nanobench_pv.qemu.txt");
    for engine in [EngineKind::Interp, EngineKind::Jit] {
        let out = SharedBuffer::new();
        let config = MachineConfig {
            cmdline: guest.cmdline.to_string(),
            serial: Box::new(out.clone()),
            engine,
            paravirt: false,
            ..MachineConfig::default()
        };
        let mut m = Machine::boot(config, guest.elf).expect("guest images load");
        let stop = m.run(&RunConfig { timeout: Some(Duration::from_secs(120)), ..RunConfig::default() });
        m.flush_output();
        assert_eq!((stop, out.text().as_str()), (StopReason::Exit(1), expected), "{engine:?}");
    }
}

/// The hypercalls under lockstep: both engines agree block for block.
#[test]
fn nanobench_pv_under_lockstep() {
    check_under_lockstep("nanobench_pv");
}

#[test]
fn codesize() {
    check("codesize");
}

/// `funcs=N iters=M`: the first N functions, M passes; the same run under both engines, and
/// the checksum depends on N only (every pass must give the same one, or the guest FAILs).
#[test]
fn codesize_calls_the_first_n_functions() {
    let guest = GUESTS.iter().find(|g| g.name == "codesize").expect("guest exists");
    let checksum = |output: &str| output.lines().find_map(|l| l.strip_prefix("checksum: ")).map(str::to_string);
    let (stop, output, retired) = run_with(guest, "funcs=300 iters=3", EngineKind::Interp);
    assert_eq!(stop, StopReason::Exit(1), "{output}");
    let sum = checksum(&output).expect("a checksum line");
    assert_eq!(output, format!("codesize: funcs=300 iters=3\nchecksum: {sum}\ncodesize: PASS\n"));
    assert_eq!(run_with(guest, "funcs=300 iters=3", EngineKind::Jit), (stop, output.clone(), retired), "JIT");
    let (_, once, _) = run_with(guest, "funcs=300", EngineKind::Jit);
    assert_eq!(checksum(&once), Some(sum.clone()), "one pass");
    let (_, fewer, _) = run_with(guest, "funcs=299 iters=2", EngineKind::Jit);
    assert_ne!(checksum(&fewer), Some(sum), "one function fewer");
    let (stop, output, _) = run_with(guest, "funcs=8193", EngineKind::Jit);
    assert_eq!((stop, output.as_str()), (StopReason::Exit(3), "FAIL: funcs=8193: must be 1 to 8192\n"));
}

/// Guests that chain into and out of VMM callouts (syscalls, segment loads, pure port
/// reads, interrupts from timers and the I/O APIC) under lockstep: both engines agree block
/// for block.
#[test]
fn callout_heavy_guests_under_lockstep() {
    for name in ["nanobench", "usermode", "interrupts", "apic_timer", "ioapic_serial"] {
        check_under_lockstep(name);
    }
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
    let tested = [
        "hello",
        "interrupts",
        "paging",
        "usermode",
        "exceptions",
        "smc",
        "compute",
        "nanobench",
        "nanobench_pv",
        "windows",
        "apic_timer",
        "ioapic_serial",
        "hostile",
        "disk",
        "fpu",
        "sensitive",
        "tasks",
        "realmode",
        "ferr",
        "codesize",
    ];
    let all: Vec<&str> = GUESTS.iter().map(|g| g.name).collect();
    assert_eq!(all, tested);
}
