//! Builds the guest kernels from `runtime/` and `kernels/` with the stock toolchain:
//! `gcc -m32 -ffreestanding` and `ld -m elf_i386`. No multilib, no libgcc: the runtime
//! brings its own 64-bit division helpers. Output: `$OUT_DIR/NAME.elf` for every guest.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Guest names; each has `kernels/NAME.c` and optionally `kernels/NAME.S`. Keep in sync with `src/lib.rs`
/// (which may also list a guest that is another's image under another command line: `nanobench_pv`).
const GUESTS: &[&str] = &[
    "hello",
    "interrupts",
    "paging",
    "usermode",
    "exceptions",
    "smc",
    "compute",
    "nanobench",
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

const RUNTIME: &[&str] = &["boot.S", "rt.c"];

// The C compiler's flags, shared with lab 8's grader (`popek_guests::CFLAGS`).
include!("cflags.rs");

/// Warnings on for the project's own guests (a student's kernel in lab 8 goes without).
const WARNINGS: &[&str] = &["-Wall", "-Wextra"];

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "popek-guests: could not run `{what}` ({e}); building the guests needs gcc and GNU ld (binutils) on PATH"
        )
    });
    if !out.status.success() {
        panic!(
            "popek-guests: `{what}` failed ({})\ncommand: {cmd:?}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines() {
        println!("cargo:warning={line}");
    }
}

fn tool_check(tool: &str, args: &[&str]) -> bool {
    Command::new(tool).args(args).output().map(|o| o.status.success()).unwrap_or(false)
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let runtime = manifest.join("runtime");
    let kernels = manifest.join("kernels");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cflags.rs");
    println!("cargo:rerun-if-changed={}", runtime.display());
    println!("cargo:rerun-if-changed={}", kernels.display());
    for f in ["apic.h", "asm.h", "pv.h", "rt.h", "link.ld", "boot.S", "rt.c", "strings.c", "div64.c"] {
        println!("cargo:rerun-if-changed={}", runtime.join(f).display());
    }

    let cc = env::var("POPEK_GUEST_CC").unwrap_or_else(|_| "gcc".into());
    let ld = env::var("POPEK_GUEST_LD").unwrap_or_else(|_| "ld".into());
    println!("cargo:rerun-if-env-changed=POPEK_GUEST_CC");
    println!("cargo:rerun-if-env-changed=POPEK_GUEST_LD");
    if !tool_check(&cc, &["--version"]) {
        panic!(
            "popek-guests: `{cc}` not found. The guest kernels are built with the stock gcc \
             (`gcc -m32 -ffreestanding`, no multilib needed); install gcc (e.g. `apt-get install gcc`) \
             or set POPEK_GUEST_CC"
        );
    }
    if !tool_check(&ld, &["--version"]) {
        panic!(
            "popek-guests: `{ld}` not found. The guest kernels are linked with GNU ld (`ld -m elf_i386`); \
             install binutils or set POPEK_GUEST_LD"
        );
    }

    // gcc's own freestanding headers (stdint.h, stddef.h, stdarg.h) and nothing from the host libc.
    let inc = Command::new(&cc).args(["-m32", "-print-file-name=include"]).output().expect("gcc -print-file-name");
    let gcc_include = String::from_utf8_lossy(&inc.stdout).trim().to_string();

    let compile = |src: &Path, obj: &Path| {
        let mut cmd = Command::new(&cc);
        cmd.args(CFLAGS)
            .args(WARNINGS)
            .arg("-isystem")
            .arg(&gcc_include)
            .arg("-I")
            .arg(&runtime)
            .arg("-c")
            .arg(src)
            .arg("-o")
            .arg(obj);
        run(&mut cmd, &format!("{cc} -c {}", src.display()));
    };

    let rt_dir = out.join("rt");
    std::fs::create_dir_all(&rt_dir).expect("create OUT_DIR/rt");
    let mut rt_objs = Vec::new();
    for f in RUNTIME {
        let obj = rt_dir.join(format!("{f}.o"));
        compile(&runtime.join(f), &obj);
        rt_objs.push(obj);
    }

    // Quiet the "RWX segment" note of newer binutils where the option exists.
    let no_rwx = tool_check(&ld, &["--no-warn-rwx-segments", "--version"]);

    for name in GUESTS {
        let mut objs = rt_objs.clone();
        for ext in ["c", "S"] {
            let src = kernels.join(format!("{name}.{ext}"));
            // Only files that exist: cargo reruns the script every time for a missing one.
            // (A source added later changes `kernels/`, which is watched above.)
            if src.exists() {
                println!("cargo:rerun-if-changed={}", src.display());
                let obj = rt_dir.join(format!("{name}.{ext}.o"));
                compile(&src, &obj);
                objs.push(obj);
            }
        }
        assert!(objs.len() > rt_objs.len(), "popek-guests: no sources for guest `{name}` in kernels/");
        let elf = out.join(format!("{name}.elf"));
        let mut cmd = Command::new(&ld);
        cmd.args(["-m", "elf_i386", "-nostdlib", "--build-id=none", "-z", "max-page-size=0x1000", "-T"])
            .arg(runtime.join("link.ld"));
        if no_rwx {
            cmd.arg("--no-warn-rwx-segments");
        }
        cmd.arg("-o").arg(&elf).args(&objs);
        run(&mut cmd, &format!("{ld} -m elf_i386 -o {name}.elf"));
    }
}
