/// The C compiler's flags for code that runs as a popek guest: 32-bit i686, freestanding
/// (no libc, no PIC, no stack protector, no unwind tables, no CET), integer registers only,
/// no loop turned into a `memset`/`memcpy` call. `guests/build.rs` builds the built-in
/// guests with them (warnings added) and lab 8's grader a student's kernel.
pub const CFLAGS: &[&str] = &[
    "-m32",
    "-march=i686",
    "-ffreestanding",
    "-fno-pic",
    "-fno-pie",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-fno-tree-loop-distribute-patterns",
    "-fcf-protection=none",
    "-mgeneral-regs-only",
    "-nostdlib",
    "-nostdinc",
    "-O2",
    "-std=gnu11",
];
