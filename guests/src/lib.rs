//! popek's own guest kernels.
//!
//! ```text
//!   guests/runtime/*  (multiboot header, GDT/IDT/TSS, serial printf, exit)  ─┐
//!   guests/kernels/NAME.c [+ NAME.S]                                         ├─ build.rs: gcc -m32 + ld -m elf_i386
//!                                                                            └─> $OUT_DIR/NAME.elf ─> GUESTS[..].elf
//! ```
//!
//! Every guest is a Multiboot v1 ELF32 kernel loaded at 1 MiB. It prints deterministic text on
//! COM1 and ends by writing to the debug-exit port 0xF4: `exit(0)` (process status 1 under
//! QEMU's `isa-debug-exit` and popek) on success, a `FAIL:` line and a non-zero code otherwise.
//! The same images run under `qemu-system-i386 -kernel`; `expected/NAME.txt` is the exact serial
//! output under both. This crate only exposes bytes: it sits beside the pipeline, used by the
//! CLI, the integration tests and the benchmarks. See `guests/README.md` for the conventions
//! and how to add a guest; `guests/qemu-check.sh` compares every guest against QEMU.

include!("../cflags.rs");

/// One built-in guest kernel.
#[derive(Debug, Clone, Copy)]
pub struct Guest {
    /// Short name (also the file stem of its sources and expected output).
    pub name: &'static str,
    /// One-line description for `popek guests`.
    pub description: &'static str,
    /// The Multiboot v1 ELF32 image.
    pub elf: &'static [u8],
    /// Command line to pass when checking `expected_output` (may be empty).
    pub cmdline: &'static str,
    /// The exact COM1 output when booted with `cmdline` and 128 MiB of RAM.
    pub expected_output: &'static str,
    /// The expected process exit status: `(0 << 1) | 1` from the guest's `exit(0)`.
    pub expected_exit_status: i32,
    /// The disk the guest expects as the primary ATA master, if any: builds the image
    /// bytes (deterministically; see [`disk_image`]).
    pub disk: Option<fn() -> Vec<u8>>,
}

/// Process exit status of a guest that passed (`exit(0)` through isa-debug-exit gives `(0 << 1) | 1`).
pub const PASS_EXIT_STATUS: i32 = 1;

/// RAM size (MiB) the expected outputs were taken with (`hello` prints `mem_upper`, which depends
/// on it: under QEMU + SeaBIOS `mem_lower` is 639 KiB and `mem_upper` is `RAM/1024 - 1024 - 128`
/// KiB, i.e. 129920 for 128 MiB).
pub const EXPECTED_MEM_MIB: u32 = 128;

macro_rules! guest {
    ($name:literal, $cmdline:literal, $desc:literal) => {
        Guest {
            name: $name,
            description: $desc,
            elf: include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".elf")),
            cmdline: $cmdline,
            expected_output: include_str!(concat!("../expected/", $name, ".txt")),
            expected_exit_status: PASS_EXIT_STATUS,
            disk: None,
        }
    };
    ($name:literal, $cmdline:literal, $desc:literal, disk: $disk:expr) => {
        Guest { disk: Some($disk), ..guest!($name, $cmdline, $desc) }
    };
    // Another guest's image under its own name, command line and expected output.
    ($name:literal, $cmdline:literal, $desc:literal, image_of: $image:literal) => {
        Guest {
            elf: include_bytes!(concat!(env!("OUT_DIR"), "/", $image, ".elf")),
            expected_output: include_str!(concat!("../expected/", $name, ".txt")),
            name: $name,
            ..guest!($image, $cmdline, $desc)
        }
    };
}

/// Sectors of the `disk` guest's disk image (2 MiB: 4 cylinders of 16 heads × 63 sectors,
/// and 64 sectors more).
pub const DISK_SECTORS: u32 = 4096;

/// The `disk` guest's disk image: in sector n, the first four bytes hold n (little-endian)
/// and byte i ≥ 4 holds `(n + i) & 0xFF`. `guests/kernels/disk.c` checks the same formula.
pub fn pattern_disk() -> Vec<u8> {
    let mut v = Vec::with_capacity(DISK_SECTORS as usize * 512);
    for n in 0..DISK_SECTORS {
        v.extend_from_slice(&n.to_le_bytes());
        v.extend((4..512u32).map(|i| (n + i).to_le_bytes()[0]));
    }
    v
}

/// The disk image the guest `name` expects as its primary master, if it has one.
pub fn disk_image(name: &str) -> Option<Vec<u8>> {
    find(name)?.disk.map(|build| build())
}

/// All built-in guests, in a fixed order.
pub static GUESTS: &[Guest] = &[
    guest!("hello", "", "greeting, multiboot memory info and command line"),
    guest!("interrupts", "", "PIC remap, PIT timer ticks with HLT, EOI, ISR/IRR, masking IRQ0"),
    guest!("paging", "", "page tables, PSE 4 MiB pages, INVLPG, aliasing, A/D bits, #PF fixed up and resumed"),
    guest!("usermode", "", "ring 3 via IRET, int 0x80 syscalls, CLI/IN/HLT -> #GP, kernel page -> #PF, POPF and IF"),
    guest!("exceptions", "", "every exception the CPU raises here, with error codes and recovery"),
    guest!("smc", "", "self-modifying code: patched immediates, writes through an alias, rep stos/movs over itself"),
    guest!("compute", "iters=1", "integer benchmark: sieve, CRC32, quicksort, matrix multiply, string ops (iters=N)"),
    guest!(
        "nanobench",
        "",
        "loops of syscalls, port IN, CR3 writes, page faults, call/ret, stores into code, CLI/STI, INVLPG, console"
    ),
    guest!(
        "nanobench_pv",
        "pv=1",
        "nanobench with pv=1: hypercalls for CLI/STI, MOV CR3, INVLPG, console output (native without the CPUID leaf)",
        image_of: "nanobench"
    ),
    guest!("windows", "", "where a pending interrupt arrives: STI shadow, MOV SS/POP SS, POPF, IRET, unmask and EOI"),
    guest!(
        "apic_timer",
        "",
        "local APIC: CPUID/APIC_BASE, periodic and one-shot timer, current count, TPR, PPR/ISR, EOI, self-IPIs"
    ),
    guest!(
        "ioapic_serial",
        "",
        "I/O APIC: COM1 IRQ 4 (edge and level, remote IRR) and PIT IRQ 0 on pin 2 to the local APIC"
    ),
    guest!("hostile", "", "memory beyond RAM, a dword across 4 GiB, a page table beyond RAM, ICEBP, a short GDT"),
    guest!(
        "disk",
        "",
        "IDE: IDENTIFY, READ/WRITE SECTORS (LBA28, multi-sector, count 0), IRQ 14 and nIEN, ABRT, absent slave",
        disk: pattern_disk
    ),
    guest!(
        "fpu",
        "",
        "x87: probe, arithmetic, RC/PC, FIST/FBSTP, compares, masked exceptions, FNSAVE, #NM, #MF, FXSAVE"
    ),
    guest!(
        "sensitive",
        "",
        "sensitive unprivileged instructions (POPF, PUSHF, SGDT, SMSW, MOV from CS, LAR): FAILs under --engine trap"
    ),
    guest!(
        "tasks",
        "",
        "hardware task switches: JMP/CALL to a TSS or task gate, INT and #GP through task gates, IRET with NT"
    ),
    guest!(
        "realmode",
        "",
        "down to real-address mode and back: INT through the vector table, IRET, segment arithmetic"
    ),
    guest!(
        "ferr",
        "",
        "x87 errors with CR0.NE = 0: FERR# to IRQ 13, port 0xF0 and IGNNE#, the frozen FWAIT; #MF with NE = 1"
    ),
    guest!(
        "codesize",
        "",
        "8,192 distinct small functions called through a table, funcs=N of them iters=M times: translation at scale"
    ),
];

/// The guest called `name`, if any.
pub fn find(name: &str) -> Option<&'static Guest> {
    GUESTS.iter().find(|g| g.name == name)
}

#[cfg(test)]
mod tests;
