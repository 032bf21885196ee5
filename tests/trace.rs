//! `popek run --trace io` and `--trace translate`: the guest's port and MMIO accesses, each
//! named by the instruction that made it, and the blocks the translator translates, with
//! `explain`'s treatments; both deterministic, both beside the older kinds.
//!
//! The built-in guests are compiled on the host, so addresses inside their C code are not
//! written here: they are checked against the kernel's symbols, the instruction trace and
//! `popek explain` of the same image.

use popek::machine::symbols::Symbols;
use std::path::PathBuf;
use std::process::{Command, Output};

fn popek(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popek")).args(args).output().expect("popek runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn symbols(guest: &str) -> Symbols {
    Symbols::from_elf(popek::guests::find(guest).expect("a built-in guest").elf)
}

/// A scratch directory of this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("popek-trace-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// One `port …` or `mmio …` line, taken apart.
#[derive(Debug, PartialEq)]
struct Io {
    space: String,
    direction: String,
    addr: u32,
    width: String,
    value: u32,
    device: String,
    /// What follows ` at `: the instruction's address and symbol.
    at: String,
}

fn hex(s: &str) -> u32 {
    u32::from_str_radix(s.strip_prefix("0x").expect("0x"), 16).expect("hex")
}

/// `port out 0x03f8 byte 0x48 (uart16550) at 0x… <…>`, strictly: None if the line is not
/// an access; a panic if it looks like one but is malformed.
fn io(line: &str) -> Option<Io> {
    let (space, rest) = line.split_once(' ')?;
    if space != "port" && space != "mmio" {
        return None;
    }
    let (access, at) = rest.split_once(" at ").expect("` at `");
    let words: Vec<&str> = access.split(' ').collect();
    let [direction, addr, width, value, device] = words[..] else { panic!("malformed: {line}") };
    let digits = match width {
        "byte" => 2,
        "word" => 4,
        "dword" => 8,
        _ => panic!("width: {line}"),
    };
    assert_eq!(value.len(), 2 + digits, "the value has the width's digits: {line}");
    let directions: &[&str] = if space == "port" { &["in", "out"] } else { &["read", "write"] };
    assert!(directions.contains(&direction), "{line}");
    assert_eq!(addr.len(), if space == "port" { 6 } else { 10 }, "{line}");
    let device = device.strip_prefix('(').and_then(|d| d.strip_suffix(')')).expect("(device)");
    Some(Io {
        space: space.into(),
        direction: direction.into(),
        addr: hex(addr),
        width: width.into(),
        value: hex(value),
        device: device.into(),
        at: at.into(),
    })
}

/// `at` is the annotation popek gives its own address (address, then `<symbol+off>`).
fn annotated(symbols: &Symbols, at: &str) -> bool {
    let addr = hex(at.split(' ').next().expect("an address"));
    symbols.annotate(addr) == at
}

/// hello's COM1 output is in its trace, byte for byte: the UART's data register written
/// while the divisor latch is closed. Every access comes right after the instruction that
/// made it, named the same way, and hello touches no MMIO.
#[test]
fn io_shows_each_byte_hello_writes_to_com1() {
    let guest = popek::guests::find("hello").expect("hello");
    let o = popek(&["run", "hello", "--trace", "insn,io"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), guest.expected_output, "the guest's own output is unchanged");
    let trace = text(&o.stderr);
    let symbols = symbols("hello");
    let mut last_insn: Option<(&str, &str)> = None;
    let mut accesses = Vec::new();
    for line in trace.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            // `[position] address <symbol>  instruction`
            let (_, rest) = rest.split_once("] ").expect("a position");
            last_insn = Some(rest.split_once("  ").expect("address, then the instruction"));
            continue;
        }
        let a = io(line).unwrap_or_else(|| panic!("neither an instruction nor an access: {line}"));
        let (at, insn) = last_insn.expect("an instruction before the access");
        assert_eq!(a.at, at, "the access is named by the instruction before it: {line}");
        assert!(insn.starts_with("out ") || insn.starts_with("in "), "{insn}: {line}");
        assert!(annotated(&symbols, &a.at), "{line}");
        assert_eq!(a.space, "port", "hello touches no MMIO: {line}");
        accesses.push(a);
    }
    // rt_main programs COM1 first: divisor 1 (115200 baud), 8N1, FIFOs, DTR and RTS.
    let init: Vec<(u32, u32)> = accesses.iter().take(7).map(|a| (a.addr, a.value)).collect();
    assert_eq!(init, [(0x3f9, 0), (0x3fb, 0x80), (0x3f8, 1), (0x3f9, 0), (0x3fb, 3), (0x3fa, 0xc7), (0x3fc, 3)]);
    assert!(accesses[..7].iter().all(|a| a.device == "uart16550" && a.at.contains(" <rt_main+0x")), "{accesses:?}");
    let mut dlab = false;
    let mut bytes = Vec::new();
    for a in accesses.iter().filter(|a| a.direction == "out" && a.width == "byte") {
        match a.addr {
            0x3fb => dlab = a.value & 0x80 != 0,
            0x3f8 if !dlab => bytes.push(u8::try_from(a.value).expect("a byte")),
            _ => {}
        }
    }
    assert_eq!(text(&bytes), guest.expected_output);
    // Before each byte, the line status register says the transmitter is empty.
    let lsr = accesses.iter().filter(|a| a.addr == 0x3fd && a.direction == "in").count();
    assert_eq!(lsr, guest.expected_output.len(), "{accesses:?}");
    let last = accesses.last().expect("accesses");
    assert_eq!((last.addr, last.value, last.device.as_str()), (0xf4, 0, "isa-debug-exit"), "{last:?}");
    assert!(last.at.contains(" <exit+0x"), "{last:?}");
}

/// apic_timer reads the local APIC's version (0x50014, as it prints it) and ID first, and
/// software-enables it through the spurious-vector register (SVR 0x12f); ioapic_serial
/// reads the I/O APIC's version through its index and window registers.
#[test]
fn io_shows_mmio_of_the_apics() {
    let o = popek(&["run", "apic_timer", "--trace", "io"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let trace = text(&o.stderr);
    let symbols = symbols("apic_timer");
    let mmio: Vec<Io> = trace.lines().filter_map(io).filter(|a| a.space == "mmio").collect();
    let first: Vec<(&str, u32, u32)> = mmio.iter().take(2).map(|a| (a.direction.as_str(), a.addr, a.value)).collect();
    assert_eq!(first, [("read", 0xfee0_0030, 0x0005_0014), ("read", 0xfee0_0020, 0)]);
    assert!(mmio.iter().all(|a| a.device == "lapic" && a.width == "dword" && annotated(&symbols, &a.at)), "{trace}");
    assert!(mmio[0].at.contains(" <kmain+0x"), "{:?}", mmio[0]);
    assert!(trace.lines().any(|l| l.starts_with("mmio write 0xfee000f0 dword 0x0000012f (lapic) at ")), "{trace}");

    let o = popek(&["run", "ioapic_serial", "--trace", "io"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let trace = text(&o.stderr);
    let ioapic: Vec<(String, u32, u32)> = trace
        .lines()
        .filter_map(io)
        .filter(|a| a.device == "ioapic")
        .map(|a| (a.direction, a.addr, a.value))
        .take(2)
        .collect();
    assert_eq!(ioapic, [("write".into(), 0xfec0_0000, 1), ("read".into(), 0xfec0_0010, 0x0017_0011)]);
}

/// The first blocks of a run as the translator translates them: a header with the size of
/// the host code, then each instruction exactly as `popek explain` lists it; as many
/// blocks as `--stats` counts, each once (hello writes no code), and the same trace twice.
#[test]
fn translate_shows_each_block_with_explains_treatments() {
    let dir = scratch("translate");
    let traces: Vec<(String, String)> = (0..2)
        .map(|i| {
            let file = dir.join(format!("{i}.txt"));
            let o = popek(&["run", "hello", "--trace", "translate", "--stats", "--trace-file", file.to_str().unwrap()]);
            assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
            (std::fs::read_to_string(&file).expect("the trace file"), text(&o.stderr))
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let (trace, stats) = &traces[0];
    assert_eq!(trace, &traces[1].0, "two runs, one trace");
    let lines: Vec<&str> = trace.lines().collect();
    let header = "translate 0x0010000c <_start> (physical 0x0010000c; 32-bit code, CPL 0, paging off, flat segments): \
                  1 instruction, ";
    let bytes = lines[0].strip_prefix(header).and_then(|r| r.strip_suffix(" host bytes")).expect(lines[0]);
    assert!(bytes.parse::<u32>().expect("a number") > 0, "{}", lines[0]);
    assert_eq!(
        lines[1],
        "  0x0010000c  fa                 cli                            callout   changes IF: privileged when CPL > IOPL"
    );
    assert!(lines[2].starts_with("translate 0x0010000d <_start+0x1> (physical 0x0010000d; "), "{}", lines[2]);
    assert!(lines[2].contains("): 8 instructions, "), "{}", lines[2]);
    // The same lines as `popek explain` shows for those blocks.
    for (at, body) in [("_start", &lines[1..2]), ("_start+1", &lines[3..11])] {
        let o = popek(&["explain", "hello", "--at", at]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let explained = text(&o.stdout);
        let guest: Vec<&str> = explained.lines().filter(|l| l.starts_with("  0x")).map(str::trim_end).collect();
        assert_eq!(guest, body, "{explained}");
    }
    let treatments: Vec<&str> = lines[3..11].iter().map(|l| l[64..].split(' ').next().unwrap_or("")).collect();
    assert_eq!(treatments, ["helper", "ident", "ident", "ident", "ident", "ident", "ident", "helper"]);
    let headers: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("translate ")).collect();
    assert!(lines.iter().all(|l| l.starts_with("translate ") || l.starts_with("  0x")), "{trace}");
    let at: std::collections::BTreeSet<&str> = headers.iter().map(|h| h.split(" (").next().unwrap_or(h)).collect();
    assert_eq!(at.len(), headers.len(), "each block translated once");
    let translated = stats.lines().find_map(|l| l.strip_prefix("blocks translated:")).expect("--stats");
    assert_eq!(translated.split_whitespace().next(), Some(headers.len().to_string().as_str()), "{stats}");
}

/// With int and exc, translate puts each delivery where it happened among the
/// translations (also inside one step of the run loop): without the translations, the
/// trace is the interpreter's `exc,int` trace. A code-cache flush is said where it happens.
#[test]
fn translate_keeps_deliveries_in_order_and_says_evictions() {
    let run = |kinds: &str, more: &[&str]| {
        let o = popek(&[&["run", "exceptions", "--trace", kinds][..], more].concat());
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        text(&o.stderr)
    };
    let interpreted = run("exc,int", &[]);
    let translated = run("translate,exc,int", &[]);
    let deliveries: Vec<&str> =
        translated.lines().filter(|l| !l.starts_with("translate ") && !l.starts_with("  0x")).collect();
    assert_eq!(deliveries, interpreted.lines().collect::<Vec<_>>());
    assert!(deliveries.len() > 10, "{interpreted}");
    // The handler's block is translated right after the first exception is delivered to it.
    let lines: Vec<&str> = translated.lines().collect();
    let first = lines.iter().position(|l| l.starts_with("exception 0x00 at ")).expect("#DE");
    assert!(lines[first + 1].starts_with("translate ") && lines[first + 1].contains(" <isr_0> "), "{translated}");
    // A timer interrupt is delivered between two blocks, in the step whose blocks then
    // run its handler: the handler's first translation comes after it.
    let o = popek(&["run", "interrupts", "--trace", "translate,int"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let trace = text(&o.stderr);
    let lines: Vec<&str> = trace.lines().collect();
    let first = lines.iter().position(|l| l.starts_with("interrupt 0x20 at ")).expect("a timer interrupt");
    assert!(lines[first + 1].starts_with("translate ") && lines[first + 1].contains(" <isr_32> "), "{trace}");
    let evicting = run("translate", &["--code-cache", "64K"]);
    let evictions = evicting
        .lines()
        .filter(|l| l.starts_with("code cache full: oldest region evicted, ") && l.ends_with(" translations dropped"))
        .count();
    assert!(evictions > 0, "{evicting}");
}

/// `block` lines are the same whether the trace steps by block or, for io, by instruction
/// (exceptions has a page fault on an instruction fetch, which ends a block).
#[test]
fn block_lines_do_not_depend_on_io() {
    let run = |kinds: &str| {
        let o = popek(&["run", "exceptions", "--trace", kinds]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        text(&o.stderr)
    };
    let blocks = run("block");
    let with_io = run("block,io");
    assert_eq!(
        with_io.lines().filter(|l| l.starts_with("block ")).collect::<Vec<_>>(),
        blocks.lines().collect::<Vec<_>>()
    );
    assert!(blocks.lines().any(|l| l.contains(" <isr_14>  ")), "the #PF handler's block");
    assert!(with_io.lines().any(|l| l.starts_with("port out 0x03f8 byte ")), "{with_io}");
}

/// translate runs the guest on the translator, which cannot name the instruction of an
/// access or show each one: with insn, block or io it is refused, as a bad kind is.
#[test]
fn translate_with_a_per_instruction_kind_is_a_usage_error() {
    for (kinds, says) in [
        ("io,translate", "it goes with int and exc, not with insn, block or io"),
        ("translate,insn", "it goes with int and exc, not with insn, block or io"),
        ("io,mem", "`mem`: trace kinds are insn, block, int, exc, io and translate"),
    ] {
        let o = popek(&["run", "hello", "--trace", kinds]);
        assert_eq!(o.status.code(), Some(2), "{kinds}");
        assert!(o.stdout.is_empty(), "{kinds}");
        let err = text(&o.stderr);
        assert!(err.starts_with("popek: ") && err.contains(says) && err.lines().count() == 1, "{kinds}: {err}");
    }
}

/// Every command the book's "Tracing" section (book/src/debugging.md) shows prints what
/// the book says it prints (run with `sh -c` in the repository, the built `popek` first on
/// PATH, stdout then stderr).
#[test]
fn the_books_tracing_examples_are_true() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let chapter = std::fs::read_to_string(root.join("book/src/debugging.md")).expect("the chapter");
    let section = chapter.split("\n## Tracing\n").nth(1).and_then(|s| s.split("\n## ").next()).expect("## Tracing");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_popek")).parent().expect("a directory").to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("PATH");
    let mut shown: Vec<(String, Vec<&str>)> = Vec::new();
    for block in section.split("```console\n").skip(1) {
        let block = block.split("```").next().unwrap_or_default();
        for line in block.lines() {
            match line.strip_prefix("$ ") {
                Some(command) => shown.push((command.to_string(), Vec::new())),
                None => shown.last_mut().expect("a command first").1.push(line),
            }
        }
    }
    assert!(shown.len() >= 5, "{shown:?}");
    for (command, lines) in &shown {
        let o = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(&root)
            .env("PATH", &path)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("sh runs");
        let printed = text(&o.stdout) + &text(&o.stderr);
        assert_eq!(printed.lines().collect::<Vec<_>>(), *lines, "`$ {command}`");
    }
}
