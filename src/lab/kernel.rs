//! Lab 8's grader: the student's Multiboot kernel, built from its sources with the stock
//! toolchain (as `guests/build.rs` builds popek's own guests), booted and run.

use super::Outcome;
use anyhow::{Context, Result, bail};
use popek::cpu::state::gpr::EBX;
use popek::devices::sink::SharedBuffer;
use popek::machine::debug::peek_phys;
use popek::machine::{EngineKind, Machine, MachineConfig, RunConfig, StopReason};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

// A student's kernel is compiled with the guests' own flags.
use popek_guests::CFLAGS;

/// The command line the grader boots the kernel with.
const CMDLINE: &str = "lab8 graded=yes";

/// What the kernel's first line must say.
const GREETING: &str = "lab8: hello from my kernel";

/// Grades the kernel whose sources (`*.c`, `*.S` and `link.ld`) are in `dir`.
pub fn grade(dir: &Path) -> Result<Vec<Outcome>> {
    if !dir.is_dir() {
        bail!("lab 8 hands in a directory of kernel sources, and `{}` is none", dir.display());
    }
    let work = std::env::temp_dir().join(format!("popek-lab8-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let outcomes = grade_in(dir, &work);
    let _ = std::fs::remove_dir_all(&work);
    outcomes
}

fn grade_in(dir: &Path, work: &Path) -> Result<Vec<Outcome>> {
    let mut out = Vec::new();
    let elf = match build(dir, work) {
        Ok(elf) => {
            out.push(Outcome::new("builds", 5, Ok(())));
            elf
        }
        Err(e) => {
            out.push(Outcome::new("builds", 5, Err(format!("{e:#}"))));
            return Ok(out);
        }
    };
    let image = std::fs::read(&elf).with_context(|| format!("cannot read {}", elf.display()))?;
    // Booted twice, with different RAM, so that the memory line must come from the loader.
    let small = boot(&image, 64 << 20, EngineKind::Jit);
    let (small, big, interp) = match small {
        Err(e) => {
            out.push(Outcome::new("boots as Multiboot", 5, Err(e)));
            return Ok(out);
        }
        Ok(small) => (small, boot(&image, 256 << 20, EngineKind::Jit), boot(&image, 64 << 20, EngineKind::Interp)),
    };
    out.push(Outcome::new("boots as Multiboot", 5, Ok(())));
    let line = |n: usize| small.output.lines().nth(n).unwrap_or("").to_string();
    out.push(Outcome::new(
        "greets",
        5,
        if line(0) == GREETING { Ok(()) } else { Err(format!("first line `{}`, not `{GREETING}`", line(0))) },
    ));
    out.push(Outcome::new("magic", 5, expect_line(&small.output, "magic: ok")));
    let mem = |r: &std::result::Result<Booted, String>| match r {
        Ok(b) => expect_line(&b.output, &format!("mem_upper: {} KiB", b.mem_upper)),
        Err(e) => Err(e.clone()),
    };
    out.push(Outcome::new("mem_upper (64 MiB)", 5, mem(&Ok(small.clone()))));
    out.push(Outcome::new("mem_upper (256 MiB)", 5, mem(&big)));
    out.push(Outcome::new("cmdline", 5, expect_line(&small.output, &format!("cmdline: {CMDLINE}"))));
    out.push(Outcome::new(
        "exits with exit(0)",
        5,
        match &small.stop {
            StopReason::Exit(1) => Ok(()),
            StopReason::Exit(s) => Err(format!("exit status {s}, not 1: write 0 to port 0xf4")),
            other => Err(format!("stopped: {other:?}, not by a write to port 0xf4")),
        },
    ));
    out.push(Outcome::new(
        "same run under the interpreter",
        5,
        match interp {
            Ok(i) if i.output == small.output && i.stop == small.stop && i.retired == small.retired => Ok(()),
            Ok(_) => Err("output, stop or instruction count differ between the engines".into()),
            Err(e) => Err(e),
        },
    ));
    Ok(out)
}

/// `want` is a whole line of `output`.
fn expect_line(output: &str, want: &str) -> std::result::Result<(), String> {
    if output.lines().any(|l| l == want) { Ok(()) } else { Err(format!("no line `{want}` in the output")) }
}

/// A finished run of the kernel.
#[derive(Clone)]
struct Booted {
    output: String,
    stop: StopReason,
    retired: u64,
    /// The `mem_upper` the loader wrote into the Multiboot information.
    mem_upper: u32,
}

/// Boots and runs the kernel with `ram` bytes: an error is a one-line reason.
fn boot(image: &[u8], ram: u64, engine: EngineKind) -> std::result::Result<Booted, String> {
    let out = SharedBuffer::new();
    let config = MachineConfig {
        ram_size: ram,
        cmdline: CMDLINE.into(),
        serial: Box::new(out.clone()),
        engine,
        ..MachineConfig::default()
    };
    let mut m = Machine::boot(config, image).map_err(|e| format!("popek refuses the image: {e}"))?;
    // The loader leaves the information's address in EBX; mem_upper is at offset 8.
    let info = m.cpu.state.gpr[EBX];
    let bytes: Vec<u8> = (8..12).filter_map(|i| peek_phys(&m.cpu, info.wrapping_add(i))).collect();
    let mem_upper = u32::from_le_bytes(bytes.try_into().map_err(|_| "no Multiboot information".to_string())?);
    let stop = m.run(&RunConfig {
        max_insns: Some(100_000_000),
        timeout: Some(Duration::from_secs(60)),
        ..RunConfig::default()
    });
    m.flush_output();
    Ok(Booted { output: out.text(), stop, retired: m.stats.retired, mem_upper })
}

/// Compiles every `*.c` and `*.S` of `dir` and links them with `dir/link.ld`.
fn build(dir: &Path, work: &Path) -> Result<PathBuf> {
    let cc = std::env::var("POPEK_GUEST_CC").unwrap_or_else(|_| "gcc".into());
    let ld = std::env::var("POPEK_GUEST_LD").unwrap_or_else(|_| "ld".into());
    let script = dir.join("link.ld");
    if !script.is_file() {
        bail!("no link.ld in {}", dir.display());
    }
    let mut sources: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("c" | "S")))
        .collect();
    sources.sort();
    if sources.is_empty() {
        bail!("no .c or .S sources in {}", dir.display());
    }
    let include = Command::new(&cc)
        .args(["-m32", "-print-file-name=include"])
        .output()
        .with_context(|| format!("cannot run `{cc}` (lab 8 needs gcc and GNU ld)"))?;
    let include = String::from_utf8_lossy(&include.stdout).trim().to_string();
    let mut objects = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let obj = work.join(format!("{i}.o"));
        let mut cmd = Command::new(&cc);
        cmd.args(CFLAGS).arg("-isystem").arg(&include).arg("-I").arg(dir).arg("-c").arg(src).arg("-o").arg(&obj);
        tool(&mut cmd, &format!("{cc} -c {}", src.display()))?;
        objects.push(obj);
    }
    let elf = work.join("kernel.elf");
    let mut cmd = Command::new(&ld);
    cmd.args(["-m", "elf_i386", "-nostdlib", "--build-id=none", "-z", "max-page-size=0x1000", "-T"])
        .arg(&script)
        .arg("-o")
        .arg(&elf)
        .args(&objects);
    tool(&mut cmd, &format!("{ld} -T link.ld"))?;
    Ok(elf)
}

/// Runs a build tool; its failure is the first line of what it said.
fn tool(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run `{what}`"))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let first = said.lines().find(|l| l.contains("error")).or_else(|| said.lines().next()).unwrap_or("");
        bail!("`{what}` failed: {}", first.trim());
    }
    Ok(())
}
