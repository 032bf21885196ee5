//! The `popek` binary: exit statuses, stdout carrying only guest output, and one-line
//! errors (exit status 2) for bad input.

use std::process::{Command, Output};

fn popek(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popek")).args(args).output().expect("popek runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `args` is refused with exit status 2, one clear message on stderr, nothing on stdout.
fn assert_usage_error(args: &[&str]) {
    let o = popek(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(o.stdout.is_empty(), "{args:?}: nothing on stdout");
    let first = err.lines().next().unwrap_or("");
    assert!(first.contains("error") || first.starts_with("popek:"), "{args:?}: {err}");
}

#[test]
fn run_builtin_guest_prints_only_guest_output_and_its_exit_status() {
    let o = popek(&["run", "hello"]);
    let guest = popek::guests::find("hello").unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), guest.expected_output);
    assert_eq!(o.status.code(), Some(1), "debug-exit 0 → (0 << 1) | 1");
}

#[test]
fn stats_go_to_stderr() {
    let o = popek(&["run", "hello", "--stats"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), popek::guests::find("hello").unwrap().expected_output);
    assert!(stderr(&o).contains("instructions retired:"), "{}", stderr(&o));
}

#[test]
fn default_command_boots_the_demo_guest() {
    let o = popek(&[]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("hello: PASS"));
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn demo_shows_the_translators_treatments_and_runs_both_engines() {
    let o = popek(&["demo", "--iterations", "1000"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    // The loop's block as `explain` shows it, without the host code: one line per
    // instruction with its treatment and reason.
    let insns: Vec<&str> = out.lines().filter(|l| l.starts_with("  0x")).collect();
    assert_eq!(insns.len(), 6, "{out}");
    assert!(insns[2].contains("add eax,ecx") && insns[2].contains("ident     register-only"), "{out}");
    assert!(insns[5].contains("jne") && insns[5].contains("rewritten relative branch"), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("        ")), "no host code:\n{out}");
    assert!(out.contains("translator:  4003 instructions"), "{out}");
    assert!(out.contains("interpreter: 4003 instructions"), "{out}");
    assert_eq!(out.matches(": ok)").count(), 2, "{out}");
}

#[test]
fn instruction_limit_stops_the_run() {
    let o = popek(&["run", "compute", "--max-insns", "1000"]);
    assert_eq!(o.status.code(), Some(8));
    assert!(stderr(&o).contains("InstructionLimit"), "{}", stderr(&o));
}

#[test]
fn extracted_guests_run_from_files() {
    let dir = std::env::temp_dir().join(format!("popek-cli-test-{}", std::process::id()));
    let o = popek(&["guests", "--extract", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let elf = dir.join("hello.elf");
    let o = popek(&["run", elf.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stdout), popek::guests::find("hello").unwrap().expected_output);
    // A kernel from a file gets its command line after the file's name, as under QEMU's
    // -kernel: the runtime drops that first word and keeps both of these.
    let o = popek(&["run", elf.to_str().unwrap(), "--cmdline", "first second=2"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("cmdline: \"first second=2\"\n"), "{o:?}");
    // A guest with a disk runs from its extracted image too.
    let (elf, img) = (dir.join("disk.elf"), dir.join("disk.img"));
    let o = popek(&["run", elf.to_str().unwrap(), "--disk", &format!("{},snapshot", img.to_str().unwrap())]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), popek::guests::find("disk").unwrap().expected_output);
    assert_eq!(o.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--paravirt on` (the default) offers the hypercall interface; `--paravirt off` is a bare
/// P6, where the paravirtualized guest falls back to the native instructions (as under QEMU).
/// These are the book's Paravirtualization chapter's commands.
#[test]
fn paravirt_on_and_off() {
    let guest = popek::guests::find("nanobench_pv").unwrap();
    for args in [&["run", "nanobench_pv"][..], &["run", "nanobench_pv", "--paravirt", "on", "--engine", "interp"]] {
        let o = popek(args);
        assert_eq!(String::from_utf8_lossy(&o.stdout), guest.expected_output, "{args:?}");
        assert_eq!(o.status.code(), Some(1));
    }
    let o = popek(&["run", "nanobench_pv", "--paravirt", "off"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), include_str!("../guests/expected/nanobench_pv.qemu.txt"));
    assert_eq!(o.status.code(), Some(1));
    let o = popek(&["run", "nanobench", "--cmdline", "pv=1 only=irq n=1000", "--stats"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "paravirt: CPUID 0x40000000 says popekpopekpv: hypercalls\nirq off/on (cli; sti): 1000 iterations\nnanobench: PASS\n"
    );
    assert!(stderr(&o).contains("vmcall 2002"), "{}", stderr(&o));
    assert_usage_error(&["run", "hello", "--paravirt", "maybe"]);
}

#[test]
fn guests_lists_every_guest() {
    let o = popek(&["guests"]);
    let text = String::from_utf8_lossy(&o.stdout);
    for g in popek::guests::GUESTS {
        assert!(text.lines().any(|l| l.starts_with(g.name)), "{} missing from:\n{text}", g.name);
    }
}

/// Bad input: one clear line on stderr, exit status 2, no panic.
#[test]
fn bad_input_is_one_line_and_status_2() {
    let dir = std::env::temp_dir().join(format!("popek-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.elf");
    std::fs::write(&garbage, b"this is not a kernel").unwrap();
    let mut elf64 = popek::guests::find("hello").unwrap().elf.to_vec();
    elf64[4] = 2; // ELFCLASS64
    let wrong_class = dir.join("elf64.elf");
    std::fs::write(&wrong_class, &elf64).unwrap();
    let truncated = dir.join("truncated.elf");
    let hello = popek::guests::find("hello").unwrap().elf;
    std::fs::write(&truncated, &hello[..hello.len() / 3]).unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["run", garbage.to_str().unwrap()],
        vec!["run", wrong_class.to_str().unwrap()],
        vec!["run", truncated.to_str().unwrap()],
        vec!["run", "no-such-guest-or-file"],
        vec!["run", "hello", "--mem", "12Q"],
        vec!["run", "hello", "--mem", "1M"],
        vec!["run", "hello", "--serial", "pipe"],
        vec!["run", "hello", "--max-insns", "-5"],
        vec!["run", "hello", "--timeout", "-1"],
        vec!["run", "hello", "--mips", "0"],
        vec!["run", "hello", "--engine", "turbo"],
        vec!["run", "hello", "--input", "/no/such/input"],
        vec!["run", "hello", "--module", "/no/such/module"],
        vec!["frobnicate"],
    ];
    for args in cases {
        assert_usage_error(&args);
    }
    let o = popek(&["run", garbage.to_str().unwrap()]);
    assert_eq!(stderr(&o).lines().count(), 1, "exactly one line: {}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn jit_engine_from_the_command_line() {
    let o = popek(&["run", "paging", "--engine", "jit", "--stats"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), popek::guests::find("paging").unwrap().expected_output);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("binary translator"), "{}", stderr(&o));
}

/// `--engine trap`: the `sensitive` guest prints what a ring-1 kernel sees and fails (exit
/// status 3); `--stats` counts traps and sensitive instructions that did not trap, by
/// instruction. The same guest passes under the default engine.
#[test]
fn trap_engine_from_the_command_line() {
    let o = popek(&["run", "sensitive", "--engine", "trap", "--stats"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out, include_str!("../guests/expected/sensitive.trap.txt"));
    assert_eq!(o.status.code(), Some(3), "the guest's FAIL: exit(1) → (1 << 1) | 1");
    let err = stderr(&o);
    assert!(err.contains("engine:                trap-and-emulate (guest ring 0 deprivileged to ring 1)"), "{err}");
    let line = |prefix: &str| err.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("{prefix}: {err}"));
    let traps = line("traps to the VMM:");
    assert!(
        traps.contains("(privileged, emulated: out ")
            && traps.ends_with("cli 5, sti 3, lgdt 1, lidt 1, ltr 1, mov 1, iretd 1)"),
        "{traps}"
    );
    assert_eq!(
        line("sensitive, no trap:"),
        "sensitive, no trap:    17 (ran on the real ring-1 state: pushfd 4, mov 2, popfd 2, lar 1, lsl 1, push 1, \
         sgdt 1, sidt 1, smsw 1, str 1, verr 1, verw 1)"
    );

    let o = popek(&["run", "sensitive"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), popek::guests::find("sensitive").unwrap().expected_output);
    assert_eq!(o.status.code(), Some(1));
}

/// A guest whose kernel uses no sensitive instruction runs unchanged under `--engine trap`,
/// and the help names the engine.
#[test]
fn trap_engine_runs_an_unaware_guest_unchanged() {
    let o = popek(&["run", "hello", "--engine", "trap", "--stats"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), popek::guests::find("hello").unwrap().expected_output);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("sensitive, no trap:    0 (ran on the real ring-1 state: none)"), "{}", stderr(&o));
    let help = popek(&["run", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("trap") && help.contains("trap-and-emulate"), "{help}");
}

#[test]
fn lockstep_engine_runs_both_and_agrees() {
    let o = popek(&["run", "exceptions", "--engine", "lockstep"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), popek::guests::find("exceptions").unwrap().expected_output);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("agreed on every block"), "{}", stderr(&o));
}

/// The interrupt-window guest under lockstep: both engines take every interrupt at the
/// same instruction, block for block.
#[test]
fn lockstep_agrees_on_interrupt_windows() {
    let o = popek(&["run", "windows", "--engine", "lockstep"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), popek::guests::find("windows").unwrap().expected_output);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("agreed on every block"), "{}", stderr(&o));
}

/// `popek bench`: a table row per engine with the instruction count both agree on, and an
/// SVG bar chart with a bar per engine.
#[test]
fn bench_prints_a_row_per_engine_and_plots_them() {
    let dir = std::env::temp_dir().join(format!("popek-cli-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("bench.svg");
    let o = popek(&["bench", "hello", "--runs", "1", "--engines", "jit,interp", "--plot", svg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let row = |engine: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("| {engine} ")))
            .unwrap_or_else(|| panic!("no {engine} row in:\n{text}"))
            .split('|')
            .map(|c| c.trim().to_string())
            .collect::<Vec<_>>()
    };
    let (jit, interp) = (row("jit"), row("interp"));
    // | engine | run time | instructions | MIPS | speed-up | translation |
    assert!(jit[2].ends_with(" ms") && interp[2].ends_with(" ms"), "{text}");
    assert_eq!(jit[3], interp[3], "both engines retire the same instructions:\n{text}");
    assert!(jit[3].replace(',', "").parse::<u64>().unwrap() > 1000, "{text}");
    assert!(jit[5].ends_with('×') && interp[5] == "1.00×", "{text}");
    assert!(jit[6].contains('%') && interp[6] == "–", "{text}");
    let chart = std::fs::read_to_string(&svg).expect("the chart was written");
    assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"), "{chart}");
    assert!(chart.matches("<rect").count() >= 3, "background and a bar per engine: {chart}");
    let texts: Vec<&str> = chart.split("<text").skip(1).map(|t| t.split("</text>").next().unwrap_or("")).collect();
    assert!(
        texts.iter().any(|t| t.contains("\njit\n")) && texts.iter().any(|t| t.contains("\ninterp\n")),
        "legend: {chart}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `popek bench --sweep iters`: a row per point and engine, and a fitted line whose
/// per-iteration instruction count is what one more iteration adds.
#[test]
fn bench_sweep_fits_a_line() {
    let o = popek(&["bench", "compute", "--sweep", "iters", "--points", "1,2", "--runs", "1", "--engines", "jit"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let insns = |iters: &str| -> u64 {
        let l = text.lines().find(|l| l.starts_with(&format!("| {iters} "))).unwrap_or_else(|| panic!("{text}"));
        l.split('|').nth(4).unwrap().trim().replace(',', "").parse().unwrap()
    };
    let per = insns("2") - insns("1");
    let fit = text.lines().find(|l| l.starts_with("| jit ")).unwrap_or_else(|| panic!("{text}"));
    let fitted: u64 = fit.split('|').nth(4).unwrap().trim().replace(',', "").parse().unwrap();
    assert_eq!(fitted, per, "{text}");
}

/// `popek bench --sweep cache`: a small code cache evicts, the default one does not.
#[test]
fn bench_cache_sweep_counts_evictions() {
    let o = popek(&["bench", "compute", "--sweep", "cache", "--points", "64K,16M", "--runs", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let evicted = |size: &str| -> u64 {
        let l = text.lines().find(|l| l.starts_with(&format!("| {size} "))).unwrap_or_else(|| panic!("{text}"));
        l.split('|').nth(5).unwrap().trim().replace(',', "").parse().unwrap()
    };
    assert!(evicted("64K") > 0, "{text}");
    assert_eq!(evicted("16M"), 0, "{text}");
}

/// Bad `popek bench` and `--code-cache` values: one clear line, exit status 2.
#[test]
fn bench_bad_input_is_status_2() {
    let cases: Vec<Vec<&str>> = vec![
        vec!["bench", "hello", "--engines", "turbo"],
        vec!["bench", "hello", "--runs", "0"],
        vec!["bench", "hello", "--runs", "1", "--plot", "/no/such/dir/x.svg"],
        vec!["bench", "no-such-guest"],
        vec!["bench", "hello", "--runs", "1", "--sweep", "iters", "--points", "1,x"],
        vec!["bench", "hello", "--runs", "1", "--sweep", "iters", "--points", "1,2"],
        vec!["bench", "hello", "--runs", "1", "--sweep", "cache", "--engines", "interp"],
        vec!["bench", "hello", "--runs", "1", "--code-cache", "4K"],
        vec!["run", "hello", "--code-cache", "4K"],
        vec!["run", "hello", "--code-cache", "lots"],
    ];
    for args in cases {
        assert_usage_error(&args);
    }
}

/// A small code cache changes the translator's work, never the guest's output.
#[test]
fn run_with_a_small_code_cache() {
    let o = popek(&["run", "compute", "--code-cache", "64K", "--stats"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), popek::guests::find("compute").unwrap().expected_output);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let line = err.lines().find(|l| l.starts_with("code cache: ")).unwrap_or_else(|| panic!("{err}"));
    let numbers: Vec<u64> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    let [regions, translations, flushes] = numbers[..] else { panic!("{line}") };
    assert!(regions > 0 && translations > regions, "{line}");
    assert_eq!(flushes, 0, "a full cache evicts, it never flushes: {line}");
}

/// `--timeout` takes any positive number of seconds: fractions, and values too large to
/// matter, which mean no limit; zero, negative, NaN and non-numbers are refused (never a
/// panic).
#[test]
fn timeout_values() {
    let hello = popek::guests::find("hello").unwrap().expected_output;
    for t in ["0.5", "3600", "1e30", "1.7976931348623157e308", "inf"] {
        let o = popek(&["run", "hello", "--timeout", t]);
        assert_eq!(o.status.code(), Some(1), "--timeout {t}: {}", stderr(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout), hello, "--timeout {t}");
    }
    for t in ["0", "-0", "-1", "-inf", "nan", "NaN", "abc", "", "1s", "0x10"] {
        assert_usage_error(&["run", "hello", &format!("--timeout={t}")]);
    }
}

/// A run that would go on for hours stops at `--timeout` under every engine, with exit
/// status 8. (`--max-insns` only keeps a broken timeout from hanging the test.)
#[test]
fn timeout_stops_a_long_run() {
    for (engine, max) in [("jit", "20000000000"), ("interp", "500000000"), ("lockstep", "100000000")] {
        let args = ["run", "compute", "--cmdline", "iters=1000000", "--engine", engine, "--timeout", "0.001"];
        let o = popek(&[&args[..], &["--max-insns", max]].concat());
        assert_eq!(o.status.code(), Some(8), "{engine}: {}", stderr(&o));
        assert!(stderr(&o).contains("Timeout"), "{engine}: {}", stderr(&o));
    }
}

/// Kernel images popek cannot boot: one line on stderr that says what is wrong (or what
/// the file is, and what popek boots instead), each cause once.
#[test]
fn kernel_load_errors_say_what_the_file_is_once() {
    let dir = std::env::temp_dir().join(format!("popek-cli-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut bzimage = vec![0u8; 0x400];
    bzimage[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
    bzimage[0x202..0x206].copy_from_slice(b"HdrS");
    bzimage[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    // loadflags 0: a zImage, which the Linux loader names and refuses.
    let mut elf64 = b"\x7fELF\x02\x01\x01".to_vec();
    elf64.resize(128, 0);
    let mut hello64 = popek::guests::find("hello").unwrap().elf.to_vec();
    hello64[4] = 2; // ELFCLASS64, Multiboot header and all
    // Multiboot header with the a.out-kludge fields: load_end_addr below load_addr.
    let aout = |load_end: u32| -> Vec<u8> {
        let (magic, flags) = (0x1bad_b002u32, 1u32 << 16);
        let fields =
            [magic, flags, magic.wrapping_add(flags).wrapping_neg(), 0x20_0000, 0x20_0000, load_end, 0, 0x20_0020];
        let mut v: Vec<u8> = fields.iter().flat_map(|f| f.to_le_bytes()).collect();
        v.resize(64, 0xf4);
        v
    };
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("zImage", bzimage, &["Linux kernel", "zImage", "bzImages only"]),
        ("elf64", elf64, &["64-bit ELF", "Multiboot v1"]),
        ("hello64.elf", hello64, &["64-bit ELF", "Multiboot v1"]),
        ("garbage", b"this is not a kernel".to_vec(), &["no Multiboot header", "Multiboot v1"]),
        ("aout-inconsistent", aout(0x1f_f000), &["a.out-kludge", "load_end_addr is below load_addr"]),
        ("aout-short", aout(0x21_0000), &["truncated", "a.out-kludge text and data"]),
    ];
    for (name, bytes, want) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let o = popek(&["run", path.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
        for w in want {
            assert!(err.contains(w), "{name}: `{w}` missing from: {err}");
        }
        let parts: Vec<&str> = err.trim_end().split(": ").collect();
        for (i, p) in parts.iter().enumerate() {
            assert!(!parts[i + 1..].contains(p), "{name}: `{p}` said twice: {err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs popek with `args`, stdin closed, and kills it if it has not ended after 20 s —
/// a guard so that a missing refusal (a FIFO open that blocks, /dev/zero read without
/// end) fails the test instead of hanging it. Nothing here measures time.
fn popek_guarded(args: &[&str]) -> Output {
    popek_guarded_with_stdin(args, std::process::Stdio::null())
}

/// [`popek_guarded`] with `stdin` as the child's standard input.
fn popek_guarded_with_stdin(args: &[&str], stdin: std::process::Stdio) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_popek"))
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("popek starts");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for popek") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?}: popek still running after 20 s (reading a file it should have refused?)");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

/// Exit status 2, nothing on stdout, no panic, and exactly one line saying what is wrong
/// (clap adds a blank line and "For more information, try '--help'." to its own).
fn assert_one_line_error(args: &[&str]) -> String {
    let o = popek_guarded(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(o.stdout.is_empty(), "{args:?}: nothing on stdout");
    let lines: Vec<&str> =
        err.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("For more information")).collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line: {err}");
    assert!(lines[0].starts_with("error: ") || lines[0].starts_with("popek: "), "{args:?}: {err}");
    let parts: Vec<&str> = lines[0].split(": ").collect();
    for (i, p) in parts.iter().enumerate() {
        assert!(!parts[i + 1..].contains(p), "{args:?}: `{p}` said twice: {err}");
    }
    lines[0].to_string()
}

/// A kernel, `--module` or `--input` that is a FIFO, a character device, a directory or
/// larger than guest RAM is refused by what it is, without being read: one line naming
/// the file, exit status 2, and no hang (a FIFO without a writer, /dev/zero).
#[test]
fn files_that_are_not_regular_or_too_large_are_refused_unread() {
    let dir = std::env::temp_dir().join(format!("popek-cli-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", fifo.display());
    // 3 MiB, sparse: more than --mem 2M, without writing 3 MiB.
    let big = dir.join("big");
    std::fs::File::create(&big).unwrap().set_len(3 << 20).unwrap();
    let subdir = dir.join("subdir");
    std::fs::create_dir_all(&subdir).unwrap();
    let files: [(&std::path::Path, &str); 4] = [
        (&fifo, "is a FIFO (named pipe), not a regular file"),
        (std::path::Path::new("/dev/zero"), "is a character device, not a regular file"),
        (&subdir, "is a directory, not a regular file"),
        (&big, "is 3 MiB, more than the 2 MiB of guest RAM"),
    ];
    for (file, what) in files {
        let f = file.to_str().unwrap();
        let with_cmdline = format!("{f},root=/");
        let cases: [(&[&str], &str); 5] = [
            (&["run", f, "--mem", "2M"], "kernel"),
            (&["run", "hello", "--mem", "2M", "--module", f], "module"),
            (&["run", "hello", "--mem", "2M", "--module", &with_cmdline], "module"),
            (&["run", "hello", "--mem", "2M", "--input", f], "input file"),
            (&["run", "hello", "--mem", "2M", "--engine", "lockstep", "--input", f], "input file"),
        ];
        for (args, role) in cases {
            let line = assert_one_line_error(args);
            assert!(line.contains(&format!("{role} `{f}` {what}")), "{args:?}: {line}");
        }
    }
    // explain and bench boot 128 MiB guests: their kernels are refused by kind alike.
    for sub in ["explain", "bench"] {
        let line = assert_one_line_error(&[sub, fifo.to_str().unwrap()]);
        assert!(line.contains("is a FIFO (named pipe)"), "{sub}: {line}");
    }
    // Files that fit one by one but not together: 1.5 MiB each in 2 MiB.
    let half = dir.join("half");
    std::fs::File::create(&half).unwrap().set_len(1536 << 10).unwrap();
    let h = half.to_str().unwrap();
    let line = assert_one_line_error(&["run", "hello", "--mem", "2M", "--module", h, "--input", h]);
    assert!(line.contains("input file") && line.contains("left after the files before it"), "{line}");
    let line = assert_one_line_error(&["run", h, "--mem", "2M", "--module", h]);
    assert!(line.contains(&format!("module `{h}` is 1536 KiB")), "{line}");
    // `--input -` reads stdin only up to what guest RAM leaves: /dev/zero as stdin ends.
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let o = popek_guarded_with_stdin(&["run", "hello", "--mem", "2M", "--input", "-"], zero.into());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("input from stdin is more than the 2 MiB"), "{}", stderr(&o));
    // Missing files: the cause once.
    let line = assert_one_line_error(&["run", "hello", "--module", "/no/such/module"]);
    assert!(line.contains("cannot read module `/no/such/module`"), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every numeric flag of `run`, `explain` and `bench` at zero, negative, absurdly large
/// and garbage values: one line and exit status 2, never a panic or a huge allocation.
#[test]
fn numeric_flags_at_their_extremes_are_refused_in_one_line() {
    let run = ["run", "hello"];
    let explain = ["explain", "hello"];
    let bench = ["bench", "hello", "--runs", "1"];
    let bad: &[(&[&str], &str, &[&str])] = &[
        (&run, "--mem", &["0", "-1", "1e30", "18446744073709551616", "99999999G", "4097K", "3073M", "12Q", "", "x"]),
        (&run, "--max-insns", &["-1", "1e30", "18446744073709551616", "99999999G", "", "x"]),
        (&run, "--mips", &["0", "-1", "100001", "1e30", "18446744073709551616", "99999999G", "x"]),
        (&run, "--code-cache", &["0", "-1", "4K", "2G", "1e30", "18446744073709551616", "99999999G", "x"]),
        (&run, "--timeout", &["0", "-1", "nan", "99999999G", "x"]),
        (&explain, "--hottest", &["-1", "1e30", "18446744073709551616", "99999999G", "x"]),
        (&explain, "--at", &["-1", "1e30", "100000000", "0x1ffffffff", "18446744073709551616", "zz"]),
        (&explain, "--max-insns", &["-1", "1e30", "18446744073709551616", "x"]),
        (&["bench", "hello"], "--runs", &["0", "-1", "1001", "1e30", "18446744073709551616", "x"]),
        (&bench, "--code-cache", &["0", "-1", "4K", "2G", "1e30", "18446744073709551616", "99999999G", "x"]),
    ];
    for (cmd, flag, values) in bad {
        for v in *values {
            assert_one_line_error(&[&cmd[..], &[&format!("{flag}={v}")]].concat());
        }
    }
    let sweep = |kind: &'static str, points: &'static str| {
        ["bench", "hello", "--runs", "1", "--sweep", kind, "--points", points]
    };
    for points in ["1,0", "1,-1", "1,1e30", "1,4294967296", "1,99999999G", "1,x", "1"] {
        assert_one_line_error(&sweep("iters", points));
    }
    for points in ["64K,0", "64K,-1", "64K,2G", "64K,18446744073709551616", "64K,99999999G", "64K,x"] {
        assert_one_line_error(&sweep("cache", points));
    }
    // Zero is a fine limit or count where it means "none".
    assert_eq!(popek_guarded(&["run", "hello", "--max-insns", "0"]).status.code(), Some(8));
    assert_eq!(popek_guarded(&["explain", "hello", "--hottest", "0"]).status.code(), Some(0));
}

/// A tiny Multiboot kernel at 1 MiB whose entry runs `code` (the header is 12 bytes).
fn tiny_kernel(dir: &std::path::Path, name: &str, code: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, popek::machine::multiboot::minimal_elf(0x10_0000, 3, code, 0)).expect("write kernel");
    path.to_str().expect("utf-8 temp path").to_string()
}

/// Guest mistakes that end a real CPU end popek's run the same way under every engine, with
/// the same first line and exit status, and lockstep finds the engines agreeing:
/// - a segment load through a GDT of limit 0: #GP, whose delivery needs CS from that GDT,
///   so #GP again, #DF, and shutdown (SDM Vol. 3A 6.15, "Interrupt 8—Double Fault": a
///   fault while delivering #DF is a triple fault);
/// - a jump to physical memory beyond RAM, which reads all ones (FF FF is an invalid
///   opcode: #UD, then no IDT: triple fault);
/// - IRET to a virtual-8086 frame, which popek does not run: one line naming it, status 6.
#[test]
fn guest_mistakes_end_the_run_alike_under_every_engine() {
    let dir = std::env::temp_dir().join(format!("popek-cli-mistakes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let entry: u32 = 0x10_0000 + 12;
    // lgdt [gdtr]; mov ax, 0x10; mov ds, ax; hlt; gdtr: limit 0, base 0
    let mut gdt0 = vec![0x0f, 0x01, 0x15];
    gdt0.extend_from_slice(&(entry + 14).to_le_bytes());
    gdt0.extend_from_slice(&[0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8, 0xf4, 0, 0, 0, 0, 0, 0]);
    // mov eax, 0x10000000 (256 MiB, beyond 128 MiB of RAM); jmp eax
    let beyond = [0xb8, 0, 0, 0, 0x10, 0xff, 0xe0];
    // push 0 six times (GS, FS, DS, ES, SS, ESP), push EFLAGS with VM, push 0 (CS), push 0
    // (EIP), iret
    let mut vm86 = [0x6a, 0x00].repeat(6);
    vm86.extend_from_slice(&[0x68, 0x02, 0x00, 0x02, 0x00, 0x6a, 0x00, 0x6a, 0x00, 0xcf]);
    let cases: [(&str, &[u8], i32, &str); 3] = [
        ("gdt0", &gdt0, 4, "popek: triple fault: the CPU shut down"),
        ("beyond", &beyond, 4, "popek: triple fault: the CPU shut down"),
        ("vm86", &vm86, 6, "popek: unsupported IRET to virtual-8086 mode at eip 0x00100021 (bytes: cf)"),
    ];
    for (name, code, status, first_line) in cases {
        let kernel = tiny_kernel(&dir, name, code);
        let mut dumps = Vec::new();
        for engine in ["interp", "jit", "lockstep"] {
            let o = popek_guarded(&["run", &kernel, "--engine", engine]);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(status), "{name} {engine}: {err}");
            assert!(!err.contains("panicked"), "{name} {engine}: {err}");
            let mut lines = err.lines();
            if engine == "lockstep" {
                assert_eq!(lines.next(), Some("popek: lockstep: the interpreter and the JIT agreed on every block"));
            }
            assert_eq!(lines.next(), Some(first_line), "{name} {engine}");
            dumps.push(lines.collect::<Vec<_>>().join("\n"));
        }
        assert!(dumps.iter().all(|d| *d == dumps[0]), "{name}: the same register dump under every engine");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A reader that goes away (`popek run … | head -1`) does not make popek panic: the run
/// goes on to the guest's own end and exit status.
#[test]
fn closed_output_pipes_are_not_a_panic() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_popek"))
        .args(["run", "hello", "--stats"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("popek starts");
    // Close both read ends before popek writes anything.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().expect("popek ends");
    assert_eq!(status.code(), Some(1), "the guest's own exit status (hello exits with 0: status 1)");
}

/// A bzImage built here (boot protocol 2.15 header, 2 setup sectors) whose 32-bit kernel
/// checks the zero page's "HdrS" at ESI + 0x202, prints the command line it finds through
/// `cmd_line_ptr` on COM1, and exits through port 0xF4 with CS's low byte: the Linux boot
/// protocol's hand-over, seen from inside, under every engine. Then the loader's refusals.
#[test]
fn linux_boot_protocol_hands_over_as_boot_rst_says() {
    let dir = std::env::temp_dir().join(format!("popek-cli-linux-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // movl 0x202(%esi),%eax; cmpl $"HdrS",%eax; jne fail; movl 0x228(%esi),%ecx;
    // next: movb (%ecx),%al; testb %al,%al; jz done; movw $0x3f8,%dx; outb; incl %ecx;
    // jmp next; done: movw %cs,%ax; movw $0xf4,%dx; outb; fail: hlt
    let hex = "8b86020200003d48647253751c8b8e280200008a0184c0740866baf803ee41ebf2668cc866baf400eef4";
    let kernel: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let bzimage = |protocol: u16, xloadflags: u16| {
        let mut img = vec![0u8; 3 * 512];
        img[0x1f1] = 2; // setup_sects
        img[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
        img[0x200..0x202].copy_from_slice(&[0xeb, 0x6a]);
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x206..0x208].copy_from_slice(&protocol.to_le_bytes());
        img[0x211] = 1; // LOADED_HIGH
        img[0x22c..0x230].copy_from_slice(&0x37ff_ffffu32.to_le_bytes());
        img[0x230..0x234].copy_from_slice(&0x20_0000u32.to_le_bytes());
        img[0x234] = 1;
        img[0x236..0x238].copy_from_slice(&xloadflags.to_le_bytes());
        img[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes());
        img[0x258..0x260].copy_from_slice(&0x40_0000u64.to_le_bytes());
        img[0x260..0x264].copy_from_slice(&0x1_0000u32.to_le_bytes());
        img.extend_from_slice(&kernel);
        img
    };
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    std::fs::write(path("bzImage"), bzimage(0x020f, 0)).unwrap();
    std::fs::write(path("initrd"), [7u8; 5000]).unwrap();
    for engine in ["interp", "jit", "lockstep"] {
        let o = popek_guarded(&[
            "run",
            &path("bzImage"),
            "--initrd",
            &path("initrd"),
            "--append",
            "console=ttyS0 quiet",
            "--engine",
            engine,
        ]);
        assert_eq!(String::from_utf8_lossy(&o.stdout), "console=ttyS0 quiet", "{engine}");
        assert_eq!(o.status.code(), Some((0x10 << 1) | 1), "{engine}: CS is __BOOT_CS: {}", stderr(&o));
    }
    std::fs::write(path("old"), bzimage(0x0204, 0)).unwrap();
    std::fs::write(path("x86_64"), bzimage(0x020f, 1)).unwrap();
    let (old, x86_64, good, long) = (path("old"), path("x86_64"), path("bzImage"), "x".repeat(3000));
    let cases = [
        (vec!["run", &old], "boot protocol 2.04: popek needs 2.06 or later"),
        (vec!["run", &x86_64], "a 64-bit (x86-64) kernel"),
        (vec!["run", &good, "--append", &long], "this kernel accepts at most 2047"),
        (vec!["run", &good, "--mem", "2M"], "the kernel needs RAM up to"),
    ];
    for (args, want) in cases {
        let err = assert_one_line_error(&args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// At a terminal (a pseudo-terminal from util-linux's `script`), what the user types
/// reaches COM1 byte by byte and the guest's echo comes back; Ctrl-A x quits with status
/// 0 and the terminal is given back. Needs `script` (Debian's bsdutils, always installed).
#[test]
fn a_terminal_on_stdin_is_an_interactive_console() {
    use popek::cpu::iced_x86::code_asm::*;
    use std::io::Write as _;
    use std::process::Stdio;
    let dir = std::env::temp_dir().join(format!("popek-cli-tty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Echo COM1 forever; exit through port 0xF4 after echoing a 'q'.
    let base = 0x10_0000u32;
    let mut a = CodeAssembler::new(32).unwrap();
    let mut top = a.create_label();
    a.set_label(&mut top).unwrap();
    a.mov(dx, 0x3fd).unwrap();
    a.in_(al, dx).unwrap();
    a.test(al, 1).unwrap();
    a.jz(top).unwrap();
    a.mov(dx, 0x3f8).unwrap();
    a.in_(al, dx).unwrap();
    a.out(dx, al).unwrap();
    a.cmp(al, i32::from(b'q')).unwrap();
    a.jne(top).unwrap();
    a.mov(al, 0x21).unwrap();
    a.out(0xf4, al).unwrap();
    a.hlt().unwrap();
    let code = a.assemble(u64::from(base) + 12).unwrap();
    let kernel = dir.join("echo.elf");
    std::fs::write(&kernel, popek::machine::multiboot::minimal_elf(base, 0, &code, 0)).unwrap();
    let run = |typed: &'static [&'static [u8]]| {
        let command = format!("{} run {} --timeout 20", env!("CARGO_BIN_EXE_popek"), kernel.display());
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("util-linux `script` runs (it gives popek a terminal)");
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            // Typed once popek has put the terminal in raw mode.
            for chunk in typed {
                std::thread::sleep(std::time::Duration::from_millis(700));
                let _ = stdin.write_all(chunk);
                let _ = stdin.flush();
            }
            std::thread::sleep(std::time::Duration::from_secs(5));
        });
        let o = child.wait_with_output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let (status, out) = run(&[b"hi\x01\x01q"]);
    assert_eq!(status, Some((0x21 << 1) | 1), "{out}");
    assert!(out.contains("interactive console on COM1"), "{out}");
    assert!(out.contains("hi\x01q"), "typed bytes echoed, Ctrl-A Ctrl-A as one Ctrl-A: {out:?}");
    let (status, out) = run(&[b"ab", b"\x01x"]);
    assert_eq!(status, Some(0), "{out}");
    assert!(out.contains("ab") && out.contains("quit at the console"), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A REP string instruction with a huge count is as many instructions as it has elements
/// (QEMU counts each iteration too): `--max-insns` stops it part-way, at exactly the limit,
/// under every engine, and lockstep finds the engines agreeing on every step of it.
#[test]
fn rep_elements_count_against_the_instruction_limit() {
    let dir = std::env::temp_dir().join(format!("popek-cli-rep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // mov edi, 0x200000 ; mov ecx, 0xffffffff ; rep stosb ; hlt
    let code = [0xbf, 0, 0, 0x20, 0, 0xb9, 0xff, 0xff, 0xff, 0xff, 0xf3, 0xaa, 0xf4];
    let kernel = tiny_kernel(&dir, "rep", &code);
    for engine in ["interp", "jit", "lockstep"] {
        let o = popek_guarded(&["run", &kernel, "--engine", engine, "--max-insns", "5000003", "--stats"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(8), "{engine}: {err}");
        assert!(err.contains("stopped: InstructionLimit"), "{engine}: {err}");
        assert!(
            err.lines().any(|l| l.split_whitespace().eq(["instructions", "retired:", "5000003"])),
            "{engine}: {err}"
        );
        if engine == "lockstep" {
            assert!(err.contains("agreed on every block"), "{err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh copy of the `disk` guest's image in `dir`.
fn disk_image(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, popek::guests::disk_image("disk").expect("the disk guest has a disk")).unwrap();
    path.to_str().unwrap().to_string()
}

/// The image after the `disk` guest's writes: sectors 2000 and 2001 hold the complement of
/// the pattern, every other byte is as it was.
fn after_guest_writes() -> Vec<u8> {
    let mut img = popek::guests::disk_image("disk").unwrap();
    for b in &mut img[2000 * 512..2002 * 512] {
        *b = !*b;
    }
    img
}

/// `--disk FILE`: the guest's writes are in the file after a normal exit, after a triple
/// fault, after `--max-insns` and `--timeout` stops, and under lockstep (written once, by
/// the interpreter's machine); `snapshot` leaves the file as it was.
#[test]
fn disk_writes_reach_the_file_however_the_run_ends() {
    let dir = std::env::temp_dir().join(format!("popek-cli-disk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let expected = popek::guests::find("disk").unwrap().expected_output;
    let written = after_guest_writes();
    let cases: [(&[&str], i32); 6] = [
        (&[], 1),
        (&["--engine", "interp"], 1),
        (&["--engine", "lockstep"], 1),
        (&["--cmdline", "then=triple"], 4),
        (&["--cmdline", "then=spin", "--max-insns", "20000000"], 8),
        (&["--cmdline", "then=spin", "--timeout", "0.5"], 8),
    ];
    for (i, (extra, status)) in cases.into_iter().enumerate() {
        let img = disk_image(&dir, &format!("run{i}.img"));
        let spec = format!("{img},index=0");
        let o = popek_guarded(&[&["run", "disk", "--disk", &spec][..], extra].concat());
        assert_eq!(o.status.code(), Some(status), "{extra:?}: {}", stderr(&o));
        if status == 1 {
            assert_eq!(String::from_utf8_lossy(&o.stdout), expected, "{extra:?}");
        }
        assert!(std::fs::read(&img).unwrap() == written, "{extra:?}: the writes are in the file");
    }
    let img = disk_image(&dir, "snap.img");
    let o = popek_guarded(&["run", "disk", "--disk", &format!("{img},snapshot")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), expected);
    assert!(std::fs::read(&img).unwrap() == popek::guests::disk_image("disk").unwrap(), "snapshot: file untouched");
    // Without --disk the built-in guest gets its image in memory; --stats counts its I/O.
    let o = popek_guarded(&["run", "disk", "--stats"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("disk commands:         13 (277 sectors read, 2 written, 1 flushes, 2 errors)"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ctrl-C (SIGINT, stdin not a terminal) ends the run between two steps: the disks are
/// flushed, one line says so, and the exit status is 130.
#[test]
fn ctrl_c_flushes_the_disks_and_exits_130() {
    use std::process::Stdio;
    let dir = std::env::temp_dir().join(format!("popek-cli-sigint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = disk_image(&dir, "int.img");
    let child = Command::new(env!("CARGO_BIN_EXE_popek"))
        .args(["run", "disk", "--disk", &img, "--cmdline", "then=spin", "--timeout", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("popek starts");
    let written = after_guest_writes();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read(&img).unwrap() != written {
        assert!(std::time::Instant::now() < deadline, "the guest never wrote its sectors");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(killed.success());
    let o = child.wait_with_output().expect("popek ends");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert_eq!(err.lines().collect::<Vec<_>>(), ["popek: interrupted (Ctrl-C); disks flushed"]);
    assert!(String::from_utf8_lossy(&o.stdout).ends_with("then: spin\n"));
    assert!(std::fs::read(&img).unwrap() == written);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Disk images that cannot be used, and bad `--disk` flags: one line, exit status 2.
#[test]
fn bad_disks_are_refused_in_one_line() {
    let dir = std::env::temp_dir().join(format!("popek-cli-baddisk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    std::fs::write(path("odd.img"), [0u8; 1000]).unwrap();
    std::fs::write(path("empty.img"), []).unwrap();
    std::fs::write(path("ro.img"), [0u8; 4096]).unwrap();
    let mut perms = std::fs::metadata(path("ro.img")).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(path("ro.img"), perms).unwrap();
    std::fs::write(path("ok.img"), [0u8; 4096]).unwrap();
    let (odd, empty, ro, ok) = (path("odd.img"), path("empty.img"), path("ro.img"), path("ok.img"));
    let (ok1, ok2, ok_cache) = (format!("{ok},index=1"), format!("{ok},index=2"), format!("{ok},cache=none"));
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["--disk", "/no/such.img"], "cannot open disk image `/no/such.img`: No such file".into()),
        (vec!["--disk", &odd], format!("disk image `{odd}` is 1000 bytes, not a whole number of 512-byte sectors")),
        (vec!["--disk", &empty], format!("disk image `{empty}` is empty")),
        (vec!["--disk", &ro], format!("disk image `{ro}` is read-only: make it writable, or add `,snapshot`")),
        (vec!["--disk", "/tmp"], "disk image `/tmp` is not a regular file".into()),
        (vec!["--disk", &ok, "--disk", &ok, "--disk", &ok], "more than two disks".into()),
        (vec!["--disk", &ok, "--disk", &ok], format!("disk image `{ok}` is given as both master and slave")),
        (vec!["--disk", &ok1, "--disk", &ok1], "two disks given index=1".into()),
        (vec!["--disk", &ok2], "the primary IDE channel has index=0 (master) and index=1".into()),
        (vec!["--disk", &ok_cache], "unknown disk option".into()),
    ];
    for (extra, want) in cases {
        let args = [&["run", "hello"][..], &extra].concat();
        let line = assert_one_line_error(&args);
        assert!(line.contains(&want), "{args:?}: {line}");
    }
    // A read-only image is fine as a snapshot.
    assert_eq!(popek_guarded(&["run", "hello", "--disk", &format!("{ro},snapshot")]).status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `popek debug ARGS` with `script` on stdin; its stdout.
fn debug_session(args: &[&str], script: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_popek"))
        .arg("debug")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("popek debug starts");
    child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("script written");
    let out = child.wait_with_output().expect("popek debug ends");
    assert!(out.status.success(), "status {:?}, stderr {}", out.status, stderr(&out));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A scripted session: a breakpoint by symbol, steps, reverse step, a bad command and a bad
/// address (an error line each, the session goes on), reverse continue, the guest's output
/// shown once although the run was replayed from boot, and the machine's end.
#[test]
fn debug_session_steps_breaks_and_goes_back() {
    let g = popek::guests::find("hello").expect("hello");
    let kmain = popek::machine::symbols::Symbols::from_elf(g.elf).lookup("kmain").expect("kmain");
    let out = debug_session(
        &["hello"],
        "break kmain\ncontinue\nstep 3\nrstep\npos\nbogus\nbreak nosuch\nrcontinue\npos\ncontinue\nrstep\ncontinue\nquit\n",
    );
    let lines: Vec<&str> = out.lines().collect();
    let at_kmain = format!("{kmain:#010x} <kmain>  sub esp,2Ch");
    assert!(lines[1].starts_with("[0] 0x0010000c <_start>"), "{out}");
    assert_eq!(lines[2], format!("(popek) breakpoint at {kmain:#010x} <kmain>"));
    assert_eq!(lines[3], "(popek) breakpoint");
    let (pos, rest) = lines[4].split_once("] ").expect("a position");
    let pos: u64 = pos.trim_start_matches('[').parse().expect("a number");
    assert_eq!(rest, at_kmain);
    assert!(lines[5].starts_with(&format!("(popek) [{}] 0x00100d80 <printf>", pos + 3)), "{out}");
    assert!(lines[6].starts_with(&format!("(popek) [{}] ", pos + 2)), "{out}");
    assert_eq!(lines[7], format!("(popek) position {}", pos + 2));
    assert_eq!(lines[8], "(popek) error: unknown command `bogus` (try `help`)");
    assert_eq!(lines[9], "(popek) error: `nosuch` is neither an address nor a symbol");
    assert_eq!(lines[10], "(popek) breakpoint");
    assert_eq!(lines[11], format!("[{pos}] {at_kmain}"));
    assert_eq!(lines[12], format!("(popek) position {pos}"));
    // The guest's output appears once, though the last `continue` replays it after `rstep`.
    assert_eq!(out.matches("hello: PASS").count(), 1, "{out}");
    assert_eq!(out.matches("the machine stopped: Exit(1)").count(), 2, "{out}");
}

/// A watchpoint and a page walk in the paging guest, by the debugger's commands.
#[test]
fn debug_session_watch_and_walk() {
    let out = debug_session(&["paging"], "walk 0x100000\nwatch 0x100 4\ninfo\ndelete\ninfo\nquit\n");
    assert!(out.contains("linear 0x00100000: paging is off (physical = linear)"), "{out}");
    assert!(out.contains("watchpoint (Write) on 4 bytes at 0x00000100"), "{out}");
    assert!(out.contains("(popek) no breakpoints or watchpoints"), "{out}");
}

/// Bad arguments get one error line each and the session goes on: a count that is not a
/// number (`step abc` is not 0xabc steps), extra arguments, lengths out of range, a missing
/// position, an unknown symbol. A breakpoint where nothing is mapped or no RAM is, is kept
/// with a note (the guest may map code there later), and the guest then runs to its end.
#[test]
fn debug_session_refuses_bad_arguments_and_goes_on() {
    let script = "step abc\nstep 1 2\nx 0xffffffff 99999999\nx 0 0\nwatch 0 0\nwatch 0 4097\ngoto\ngoto -5\n\
                  break nosuchsymbol\nbreak 0xdeadbeef\npbreak 0xfffff000\nregs now\nuntil paging_enable\nstep 5\n\
                  break 0xc0000000\ncontinue\nquit\n";
    let out = debug_session(&["paging"], script);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[2..14],
        [
            "(popek) error: `abc` is not a number (decimal, or hex with 0x)",
            "(popek) error: `step` takes one argument, not 2",
            "(popek) error: x shows 1 to 4096 bytes, not 99999999",
            "(popek) error: x shows 1 to 4096 bytes, not 0",
            "(popek) error: a watchpoint covers 1 to 4096 bytes, not 0",
            "(popek) error: a watchpoint covers 1 to 4096 bytes, not 4097",
            "(popek) error: a position is needed (see `pos`)",
            "(popek) error: `-5` is not a number (decimal, or hex with 0x)",
            "(popek) error: `nosuchsymbol` is neither an address nor a symbol",
            "(popek) breakpoint at 0xdeadbeef (physical 0xdeadbeef: not RAM)",
            "(popek) breakpoint at 0xfffff000 (not RAM)",
            "(popek) error: `regs` takes no argument",
        ],
        "{out}"
    );
    // Nothing ran before `until`: the first step lands at paging_enable.
    assert_eq!(lines[14], "(popek) breakpoint", "{out}");
    assert!(lines[15].ends_with(" <paging_enable>  mov eax,[esp+4]"), "{out}");
    // Five instructions later CR0.PG is set, and 0xC0000000 is not mapped.
    assert!(lines[16].ends_with(" <paging_enable+0x12>  ret"), "{out}");
    assert_eq!(lines[17], "(popek) breakpoint at 0xc0000000 (not mapped now: not present (PDE))", "{out}");
    assert!(out.contains("paging: PASS\n") && out.contains("the machine stopped: Exit(1)"), "{out}");
}

/// The book's debugger transcript (book/src/debugging.md) is what `popek debug` prints.
#[test]
fn book_debug_transcript_is_true() {
    let book = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/debugging.md"))
        .expect("the chapter");
    let block = book.split("```console\n").nth(1).and_then(|b| b.split("```").next()).expect("a console block");
    let (command, printed) = block.split_once('\n').expect("a command line");
    let script = command
        .strip_prefix("$ printf '")
        .and_then(|c| c.strip_suffix("' | popek debug hello"))
        .expect("printf '…' | popek debug hello");
    let out = debug_session(&["hello"], &script.replace("\\n", "\n"));
    let trim = |t: &str| t.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    assert_eq!(trim(&out), trim(printed));
}

/// `--trace`: instructions with symbols from the first one, exceptions and software
/// interrupts where the guest raised them, the same trace twice (to a file), and the
/// guest's own output and exit status unchanged.
#[test]
fn trace_is_deterministic_and_named() {
    let out = popek(&["run", "hello", "--trace", "insn"]);
    assert_eq!(out.status.code(), Some(1));
    let trace = stderr(&out);
    assert!(trace.starts_with("[0] 0x0010000c <_start>  cli\n[1] 0x0010000d <_start+0x1>  cld\n"), "{trace}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), popek::guests::find("hello").expect("hello").expected_output);
    let dir = std::env::temp_dir().join(format!("popek-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let traces: Vec<String> = (0..2)
        .map(|i| {
            let file = dir.join(format!("{i}.txt"));
            let out =
                popek(&["run", "exceptions", "--trace", "exc,int", "--trace-file", file.to_str().expect("utf-8")]);
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
            std::fs::read_to_string(&file).expect("trace file")
        })
        .collect();
    assert_eq!(traces[0], traces[1]);
    let first = traces[0].lines().next().unwrap_or_default();
    assert!(first.starts_with("exception 0x00 at 0008:0x") && first.ends_with(" <t_de_at>"), "{first}");
    assert!(traces[0].contains("software interrupt 0x03 at 0008:"), "{}", traces[0]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every command-line error is one line, `popek: ` first, exit status 2 (clap's usage
/// block and its pointer to `--help` are not printed); `--help` and `--version` still
/// print clap's text to stdout with status 0.
#[test]
fn command_line_errors_are_one_popek_line() {
    let cases: [&[&str]; 12] = [
        &["run", "hello", "--bogus"],
        &["run"],
        &["run", "hello", "extra"],
        &["run", "hello", "--engine", "turbo"],
        &["run", "hello", "--mem", "12Q"],
        &["run", "hello", "--mem"],
        &["run", "hello", "--disk", "x.img,wat"],
        &["frobnicate"],
        &["bench", "hello", "--runs", "0"],
        &["explain", "hello", "--at", "zz"],
        &["demo", "--iterations", "many"],
        &["--no-such-flag"],
    ];
    for args in cases {
        let o = popek_guarded(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err:?}");
        assert!(err.starts_with("popek: ") && !err.contains("error:") && !err.contains("Usage:"), "{args:?}: {err}");
    }
    let o = popek(&["run", "hello", "--bogus"]);
    assert_eq!(
        stderr(&o),
        "popek: unexpected argument '--bogus' found; tip: to pass '--bogus' as a value, use '-- --bogus'\n"
    );
    let o = popek(&["run", "hello", "--engine", "turbo"]);
    assert_eq!(
        stderr(&o),
        "popek: invalid value 'turbo' for '--engine <ENGINE>' [possible values: jit, interp, lockstep, trap]\n"
    );
    for args in [&["--help"][..], &["run", "--help"], &["help", "bench"], &["--version"]] {
        let o = popek(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(o.stderr.is_empty() && !o.stdout.is_empty(), "{args:?}: help on stdout");
    }
    assert!(String::from_utf8_lossy(&popek(&["run", "--help"]).stdout).contains("Usage: popek run"));
}

/// An output path that is a FIFO nobody reads (`--serial file:`, `bench --plot`, a file
/// `guests --extract` writes) is refused at once in one line, exit status 2, instead of
/// waiting for ever for a reader; with a reader, the output arrives through it; a
/// character device such as /dev/null is fine.
#[test]
fn output_fifos_without_a_reader_are_refused_not_waited_on() {
    let dir = std::env::temp_dir().join(format!("popek-cli-out-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs").success());
    let f = fifo.to_str().unwrap();
    let serial = format!("file:{f}");
    let line = assert_one_line_error(&["run", "hello", "--serial", &serial]);
    assert_eq!(
        line,
        format!("popek: serial output file `{f}` is a FIFO that no process is reading: start its reader first")
    );
    let line = assert_one_line_error(&["bench", "hello", "--runs", "1", "--plot", f]);
    assert!(line.contains(&format!("--plot file `{f}` is a FIFO that no process is reading")), "{line}");
    let extract = dir.join("extract");
    std::fs::create_dir_all(&extract).unwrap();
    let elf = extract.join("hello.elf");
    assert!(Command::new("mkfifo").arg(&elf).status().expect("mkfifo runs").success());
    let line = assert_one_line_error(&["guests", "--extract", extract.to_str().unwrap()]);
    assert!(line.contains("is a FIFO that no process is reading"), "{line}");

    // With a reader, the guest's output goes through the FIFO.
    let reader = std::thread::spawn({
        let fifo = fifo.clone();
        move || std::fs::read(&fifo).expect("read the FIFO")
    });
    // The reader's open blocks until a writer comes: wait until it is in place.
    let mut o = popek_guarded(&["run", "hello", "--serial", &serial]);
    for _ in 0..100 {
        if o.status.code() != Some(2) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        o = popek_guarded(&["run", "hello", "--serial", &serial]);
    }
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "the output went to the FIFO");
    let through = reader.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&through), popek::guests::find("hello").unwrap().expected_output);

    let o = popek_guarded(&["run", "hello", "--serial", "file:/dev/null"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}
