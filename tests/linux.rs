//! Debian's unmodified i386 Linux (the 686 kernel package) with a busybox initramfs, both
//! fetched with apt and cached by `guests/linux/assets.sh`:
//! - /init (`guests/linux/init-boot`) runs to `reboot -f` under the JIT and the
//!   interpreter, and what it prints equals `guests/linux/expected-boot.txt`, which is what
//!   `qemu-system-i386 -M isapc -cpu pentium2 -m 256` prints for the same files;
//! - both engines print the very same serial output, kernel log and its (virtual)
//!   timestamps included;
//! - `--engine lockstep` finds no divergence between them from the first instruction to
//!   the reboot;
//! - a script types into the busybox shell of `guests/linux/init-shell`.
//!
//! The assets come from Debian's archive on the first run (about 60 MB); `.ci/run` fetches
//! them before the tests. A machine that cannot fetch them fails here, saying why.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

const APPEND: &str = "console=ttyS0 panic=-1 acpi=off noapic nolapic";

/// The assets directory (fetched once per test run).
fn assets() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/guests/linux/assets.sh");
        let o = Command::new("bash").arg(script).output().expect("bash runs");
        assert!(
            o.status.success(),
            "guests/linux/assets.sh failed (it needs apt and Debian's i386 archive):\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        PathBuf::from(String::from_utf8(o.stdout).expect("a path").trim())
    })
}

/// `popek run vmlinuz --initrd INITRD --append APPEND` with 256 MiB under `engine`, fed
/// `input` on COM1.
fn boot(initrd: &str, engine: &str, input: Option<&str>) -> Output {
    let dir = assets();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_popek"));
    cmd.arg("run").arg(dir.join("vmlinuz")).arg("--initrd").arg(dir.join(initrd)).args([
        "--mem",
        "256M",
        "--append",
        APPEND,
        "--engine",
        engine,
        "--timeout",
        "1200",
    ]);
    if let Some(input) = input {
        let path = std::env::temp_dir().join(format!("popek-linux-input-{}", std::process::id()));
        std::fs::write(&path, input).expect("input file");
        cmd.arg("--input").arg(&path);
    }
    cmd.output().expect("popek runs")
}

/// The boot's serial output, checked: the run ended in the guest's reboot, exit status 0.
fn boot_to_reboot(engine: &str) -> String {
    let o = boot("initrd-boot.gz", engine, None);
    let (out, err) = (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{engine}: exit status; stderr:\n{err}\nstdout tail:\n{}", tail(&out));
    assert!(err.contains("the guest reset the machine"), "{engine}: stderr:\n{err}");
    assert!(out.contains("reboot: Restarting system"), "{engine}:\n{}", tail(&out));
    out
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// What /init printed, from its first line to its last.
fn init_output(out: &str) -> Vec<&str> {
    let lines: Vec<&str> = out.lines().collect();
    let start = lines.iter().position(|l| *l == "init: start").expect("/init started");
    let end = lines.iter().position(|l| *l == "init: end").expect("/init ran to its end");
    lines[start..=end].to_vec()
}

fn expected() -> String {
    let version = std::fs::read_to_string(assets().join("version")).expect("version file");
    include_str!("../guests/linux/expected-boot.txt").replace("VERSION", version.trim())
}

static JIT_BOOT: OnceLock<String> = OnceLock::new();

fn jit_boot() -> &'static str {
    JIT_BOOT.get_or_init(|| boot_to_reboot("jit"))
}

#[test]
fn linux_runs_init_to_reboot_under_the_jit() {
    let out = jit_boot();
    assert_eq!(init_output(out).join("\n"), expected().trim_end());
}

#[test]
fn linux_under_the_interpreter_prints_the_same_to_the_byte() {
    let interp = boot_to_reboot("interp");
    assert_eq!(init_output(&interp).join("\n"), expected().trim_end());
    let jit = jit_boot();
    if interp != jit {
        let (a, b): (Vec<_>, Vec<_>) = (interp.lines().collect(), jit.lines().collect());
        let i = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
        panic!("interp and jit differ at line {}:\n  interp: {:?}\n  jit:    {:?}", i + 1, a.get(i), b.get(i));
    }
}

/// `--engine lockstep` runs the interpreter beside the JIT, block by block, from the first
/// instruction to the reboot, comparing the CPU state after each step and guest RAM every
/// 65,536 blocks and at the end.
#[test]
fn lockstep_finds_no_divergence_from_the_first_instruction_to_the_reboot() {
    let o = boot("initrd-boot.gz", "lockstep", None);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "stderr:\n{err}\nstdout tail:\n{}", tail(&out));
    assert!(err.contains("the interpreter and the JIT agreed on every block"), "{err}");
    assert_eq!(init_output(&out).join("\n"), expected().trim_end());
    assert_eq!(out, jit_boot(), "lockstep prints what the JIT alone prints");
}

#[test]
fn a_script_types_into_the_busybox_shell() {
    let o = boot(
        "initrd-shell.gz",
        "jit",
        Some("echo $((6 * 7)) is the answer\ncat /proc/cpuinfo | grep -c ^processor\nreboot -f\n"),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", tail(&out));
    let version = std::fs::read_to_string(assets().join("version")).expect("version file");
    assert!(out.contains(&format!("busybox shell on Linux {}", version.trim())), "{}", tail(&out));
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    assert!(lines.contains(&"42 is the answer"), "the shell ran the first command:\n{}", tail(&out));
    assert!(lines.iter().any(|l| l.ends_with('1') && !l.contains('#')), "one processor:\n{}", tail(&out));
    assert!(out.contains("reboot: Restarting system"), "{}", tail(&out));
}
