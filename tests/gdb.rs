//! `popek run --gdb`: the GDB remote stub, driven by a raw protocol client written as lab
//! graders write theirs (`tests/gdb/rsp.py`, no gdb) and by real gdb in batch mode
//! against the built-in guests' ELF files. Every process runs under a time limit.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any one process of these tests may take.
const LIMIT: Duration = Duration::from_secs(60);

/// A `popek run … --gdb 0` in the background: the port it printed, and its stderr so far.
struct Popek {
    child: Child,
    port: u16,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Popek {
    /// Starts `popek run ARGS --gdb 0` and waits for the port it listens on.
    fn start(args: &[&str]) -> Popek {
        let mut child = Command::new(env!("CARGO_BIN_EXE_popek"))
            .arg("run")
            .args(args)
            .args(["--gdb", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("popek starts");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = Popek { child, port: 0, stderr: rx, seen: Vec::new() };
        let deadline = Instant::now() + LIMIT;
        while p.port == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match p.stderr.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = p.child.kill();
                    panic!("popek printed no port: {:?}", p.seen);
                }
            };
            if let Some(port) = line.strip_prefix("popek: gdb stub listening on 127.0.0.1:") {
                p.port = port.trim().parse().expect("a port");
            }
            p.seen.push(line);
        }
        p
    }

    /// Waits for popek to end (killing it past the limit): exit status, stdout, stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let status = wait_limited(&mut self.child);
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (status, out, self.seen.join("\n"))
    }
}

impl Drop for Popek {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `child` at most [`LIMIT`]; kills it after that (and the test fails).
fn wait_limited(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a process of the test ran past {LIMIT:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` to its end under [`LIMIT`], with its output captured.
fn run_limited(cmd: &mut Command) -> Output {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("starts");
    // Drained by threads, so that a chatty child never blocks on a full pipe.
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(child.stdout.take().map(|o| Box::new(o) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|e| Box::new(e) as Box<dyn Read + Send>));
    wait_limited(&mut child);
    let status = child.wait().expect("wait");
    Output { status, stdout: out.join().expect("stdout"), stderr: err.join().expect("stderr") }
}

/// The raw protocol client: `rsp.py PORT SCENARIO ARGS`; its `key: value` lines.
fn rsp(port: u16, scenario: &str, args: &[&str]) -> Vec<(String, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gdb/rsp.py");
    let o = run_limited(Command::new("python3").arg(script).arg(port.to_string()).arg(scenario).args(args));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "rsp.py {scenario}: {text}{}", String::from_utf8_lossy(&o.stderr));
    text.lines().filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect()
}

fn get<'a>(facts: &'a [(String, String)], key: &str) -> &'a str {
    facts.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {key}: {facts:?}"))
}

/// A built-in guest's ELF file, for gdb's `file` (one per test: `tag`).
fn guest_elf(name: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("popek-gdb-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}-{tag}.elf"));
    std::fs::write(&path, popek::guests::find(name).expect("guest").elf).expect("write the ELF");
    path
}

/// The ELF32 image's entry point and the first `n` bytes there (from its PT_LOAD segment).
fn entry_bytes(elf: &[u8], n: usize) -> (u32, Vec<u8>) {
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let entry = u32_at(24);
    let (phoff, phentsize, phnum) = (u32_at(28) as usize, u16_at(42), u16_at(44));
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let (kind, offset, vaddr, filesz) = (u32_at(ph), u32_at(ph + 4), u32_at(ph + 8), u32_at(ph + 16));
        if kind == 1 && (vaddr..vaddr + filesz).contains(&entry) {
            let at = (offset + entry - vaddr) as usize;
            return (entry, elf[at..at + n].to_vec());
        }
    }
    panic!("no segment holds the entry point")
}

/// The address of `symbol` in a guest, as gdb's `info address` gives it (through the
/// ELF's symbol table, read by popek's own symbol reader).
fn symbol(name: &str, symbol: &str) -> u32 {
    let syms = popek::machine::symbols::Symbols::from_elf(popek::guests::find(name).expect("guest").elf);
    syms.parse_address(symbol).unwrap_or_else(|| panic!("{name} has no {symbol}"))
}

#[test]
fn gdb_stub_answers_a_raw_client_as_gradelib_expects() {
    // gradelib's path: connect, `?`, `Z1,ADDR,1`, `c`, a `T05…` reply, EIP by `p8`/`g`.
    let kmain = symbol("hello", "kmain");
    let p = Popek::start(&["hello", "--gdb-wait"]);
    let facts = rsp(p.port, "gradelib", &[&format!("{kmain:#x}")]);
    assert_eq!(get(&facts, "status"), "T05thread:01;");
    assert_eq!(get(&facts, "Z1"), "OK");
    assert!(get(&facts, "stop").starts_with("T05thread:01;"), "{facts:?}");
    assert_eq!(get(&facts, "p8 eip"), format!("{kmain:#x}"));
    assert_eq!(get(&facts, "g eip"), format!("{kmain:#x}"));
    assert_eq!(get(&facts, "z1"), "OK");
    // The client sent `k`: popek ends, exit status 0, as QEMU does.
    let (status, _, err) = p.finish();
    assert_eq!(status, Some(0), "{err}");
    assert!(err.contains("popek: gdb killed the guest"), "{err}");
}

#[test]
fn gdb_stub_reports_the_guest_exit_and_watchpoints() {
    // Without a breakpoint, `c` runs the guest to its end: `W01` (debug-exit 0), and popek
    // exits with the same status after the guest's whole output.
    let p = Popek::start(&["hello", "--gdb-wait"]);
    let facts = rsp(p.port, "run", &[]);
    assert_eq!(get(&facts, "stop"), "W01");
    let (status, out, err) = p.finish();
    assert_eq!(status, Some(1), "{err}");
    assert_eq!(out, popek::guests::find("hello").unwrap().expected_output);

    // An access watchpoint (Z4) on the runtime's `boot_info` stops after the store to it.
    let boot_info = symbol("hello", "boot_info");
    let p = Popek::start(&["hello", "--gdb-wait"]);
    let facts = rsp(p.port, "awatch", &[&format!("{boot_info:#x}")]);
    assert_eq!(get(&facts, "stop"), format!("T05thread:01;awatch:{boot_info:x};"));
    // The store is done: the watched word holds the Multiboot information's address (EBX
    // at the entry), and EIP is past the store, in rt_main.
    assert_eq!(get(&facts, "value"), get(&facts, "entry ebx"));
    let eip = u32::from_str_radix(get(&facts, "eip").trim_start_matches("0x"), 16).unwrap();
    let syms = popek::machine::symbols::Symbols::from_elf(popek::guests::find("hello").unwrap().elf);
    let at = syms.describe(eip).unwrap_or_default();
    assert!(at.starts_with("rt_main+"), "{eip:#x} is {at}");
    drop(p);

    // A triple fault ends the run: `W04`, popek's status for it.
    let p = Popek::start(&["disk", "--cmdline", "then=triple", "--gdb-wait"]);
    let facts = rsp(p.port, "run", &[]);
    assert_eq!(get(&facts, "stop"), "W04");
    let (status, _, err) = p.finish();
    assert_eq!(status, Some(4), "{err}");
    assert!(err.contains("triple fault"), "{err}");
}

#[test]
fn gdb_stub_takes_ctrl_c_and_a_late_attach() {
    // Ctrl-C from the client while the guest runs: `T02thread:01;`; after `D` it runs on.
    // (`iters=10`: long enough that the guest is still running when the Ctrl-C comes.)
    let p = Popek::start(&["compute", "--cmdline", "iters=10", "--gdb-wait"]);
    let facts = rsp(p.port, "interrupt", &[]);
    assert_eq!(get(&facts, "stop"), "T02thread:01;");
    assert_eq!(get(&facts, "D"), "OK");
    let (status, out, err) = p.finish();
    assert_eq!(status, Some(1), "{err}");
    assert!(out.ends_with("compute: PASS\n"), "{out}");
    assert!(err.contains("popek: gdb detached; the guest runs on"), "{err}");

    // Without --gdb-wait the guest starts at once; a client that connects stops it where
    // it is, and its detach lets it run to its end.
    let p = Popek::start(&["compute", "--cmdline", "iters=10"]);
    let facts = rsp(p.port, "attach", &[]);
    assert_eq!(get(&facts, "status"), "T05thread:01;");
    let (status, out, err) = p.finish();
    assert_eq!(status, Some(1), "{err}");
    assert!(out.starts_with("compute: iters=10\n") && out.ends_with("compute: PASS\n"), "{out}");
    assert!(err.contains("popek: gdb connected"), "{err}");
}

/// Ctrl-C at the host (SIGINT) ends the run with status 130, also while popek waits for
/// gdb to connect or for gdb's next request.
#[test]
fn host_ctrl_c_ends_a_run_waiting_for_gdb() {
    let sigint = |p: &Popek| {
        let o = run_limited(Command::new("kill").args(["-INT", &p.child.id().to_string()]));
        assert!(o.status.success(), "kill -INT");
    };
    let p = Popek::start(&["hello", "--gdb-wait"]);
    sigint(&p);
    let (status, _, err) = p.finish();
    assert_eq!(status, Some(130), "{err}");
    assert!(err.contains("popek: interrupted (Ctrl-C)"), "{err}");

    let mut p = Popek::start(&["hello", "--gdb-wait"]);
    let port = p.port;
    let client = std::thread::spawn(move || rsp(port, "idle", &[]));
    // Once the client is connected (and sits idle for 3 seconds).
    while !p.seen.iter().any(|l| l == "popek: gdb connected") {
        let line = p.stderr.recv_timeout(LIMIT).expect("popek says gdb connected");
        p.seen.push(line);
    }
    sigint(&p);
    let (status, _, err) = p.finish();
    assert_eq!(status, Some(130), "{err}");
    assert_eq!(get(&client.join().expect("the client"), "status"), "T05thread:01;");
}

#[test]
fn gdb_stub_survives_malformed_packets() {
    let p = Popek::start(&["hello", "--gdb-wait"]);
    let facts = rsp(p.port, "garbage", &[]);
    assert_eq!(get(&facts, "status"), "T05thread:01;");
    let (status, _, err) = p.finish();
    assert_eq!(status, Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn gdb_port_in_use_or_bad_is_a_one_line_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for args in [
        vec!["run", "hello", "--gdb", port.as_str()],
        vec!["run", "hello", "--gdb", "65536"],
        vec!["run", "hello", "--gdb", "tcp:10.0.0.1:1234"],
        vec!["run", "hello", "--gdb-wait"],
        vec!["run", "hello", "-s", "--engine", "lockstep"],
        vec!["debug", "hello", "--gdb", "0"],
    ] {
        let o = run_limited(Command::new(env!("CARGO_BIN_EXE_popek")).args(&args));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("popek: "), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    let o = run_limited(Command::new(env!("CARGO_BIN_EXE_popek")).args(["run", "hello", "--gdb", &port]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with(&format!("popek: cannot listen for gdb on 127.0.0.1:{port}: ")), "{err}");
}

/// gdb in batch mode on `script` (`PORT` replaced by the stub's port): its output.
fn gdb(port: u16, script: &str) -> String {
    let o = run_limited(
        Command::new("gdb")
            .args(["-nx", "-batch", "-ex", "set pagination off", "-ex", "set width 0"])
            .args(script.lines().flat_map(|l| ["-ex".to_string(), l.replace("PORT", &port.to_string())])),
    );
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "gdb failed:\n{text}");
    text
}

/// The line of `text` that starts with `prefix`.
fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no line `{prefix}…` in:\n{text}"))
}

/// The second column of `info registers` for `reg`, as a number.
fn register(text: &str, reg: &str) -> u32 {
    let l = line(text, &format!("{reg} "));
    let hex = l.split_whitespace().nth(1).expect("a value");
    u32::from_str_radix(hex.trim_start_matches("0x"), 16).expect("hex")
}

#[test]
fn real_gdb_breaks_steps_watches_and_kills() {
    assert!(
        Command::new("gdb").arg("--version").output().is_ok_and(|o| o.status.success()),
        "gdb is needed (apt-get install gdb; .ci/run installs it)"
    );
    let elf = guest_elf("hello", "break");
    let (entry, bytes) = entry_bytes(popek::guests::find("hello").unwrap().elf, 4);
    let p = Popek::start(&["hello", "--gdb-wait"]);
    let script = format!(
        "file {elf}
target remote 127.0.0.1:PORT
info registers eip
p/x $ebx
watch *(unsigned *)&boot_info
continue
delete
break kmain
continue
info registers
x/4x $esp
x/4xb _start
stepi
info registers eip
rwatch *(unsigned *)&boot_info
continue
delete
set var $eax = 0x1234
p/x $eax
set var *(unsigned *)&syscall_count = 77
p *(unsigned *)&syscall_count
kill",
        elf = elf.display()
    );
    let out = gdb(p.port, &script);
    // Stopped before the first instruction, at the entry point.
    let l = line(&out, "eip ");
    assert!(l.contains(&format!("{entry:#x}")) && l.ends_with("<_start>"), "{l}");
    // A write watchpoint: the store of EBX's Multiboot information address to boot_info.
    let ebx = line(&out, "$1 = 0x").trim_start_matches("$1 = 0x");
    let ebx = u32::from_str_radix(ebx, 16).unwrap();
    assert!(out.contains("Hardware watchpoint 1: *(unsigned *)&boot_info"), "{out}");
    assert!(out.contains(&format!("Old value = 0\nNew value = {ebx}\n")), "{out}");
    // The breakpoint, with the registers as gdb shows them.
    let kmain = symbol("hello", "kmain");
    assert!(out.contains(&format!("Breakpoint 2, {kmain:#010x} in kmain ()")), "{out}");
    for reg in ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eflags", "ss", "ds", "es", "fs", "gs"] {
        line(&out, &format!("{reg} "));
    }
    assert_eq!(line(&out, "cs "), "cs             0x8                 8");
    let eip = format!("eip            {kmain:#x}            {kmain:#x} <kmain>");
    assert!(out.lines().any(|l| l == eip), "{eip}\n{out}");
    // Memory through the stub: the stack word by word, the code byte by byte.
    let esp = register(&out, "esp");
    let words = line(&out, &format!("{esp:#x}:"));
    assert_eq!(words.split('\t').count(), 5, "{words}");
    let code: Vec<String> = bytes.iter().map(|b| format!("{b:#04x}")).collect();
    assert_eq!(line(&out, &format!("{entry:#x} <_start>:")), format!("{entry:#x} <_start>:\t{}", code.join("\t")));
    // One instruction further, still in kmain.
    let stepped = out.lines().rfind(|l| l.starts_with("eip ")).unwrap();
    assert!(stepped.contains("<kmain+") && !stepped.contains("<kmain+0>"), "{stepped}");
    // A read watchpoint: kmain reads boot_info.
    assert!(out.contains("Hardware read watchpoint 3: *(unsigned *)&boot_info"), "{out}");
    assert!(out.contains(&format!("\nValue = {ebx}\n")), "{out}");
    // A register write and a memory write, read back.
    assert!(out.contains("\n$2 = 0x1234\n"), "{out}");
    assert!(out.contains("\n$3 = 77\n"), "{out}");
    assert!(out.contains("[Inferior 1 (process 1) killed]"), "{out}");
    let (status, _, err) = p.finish();
    assert_eq!(status, Some(0), "{err}");
}

#[test]
fn real_gdb_detaches_and_the_guest_runs_to_its_end() {
    let elf = guest_elf("hello", "detach");
    let p = Popek::start(&["hello", "-S"]);
    let script = format!("file {}\ntarget remote 127.0.0.1:PORT\nbreak printf\ncontinue\nbt 1\ndetach", elf.display());
    let out = gdb(p.port, &script);
    assert!(out.contains("in printf ()"), "{out}");
    assert!(out.contains("[Inferior 1 (process 1) detached]"), "{out}");
    let (status, stdout, err) = p.finish();
    assert_eq!(status, Some(1), "{err}");
    assert_eq!(stdout, popek::guests::find("hello").unwrap().expected_output);
}

/// Splits a shell command line of plain words and '…' quoted ones.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '\'' => (quoted, any) = (!quoted, true),
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            _ => (word.push(c), any = true).1,
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// The book's gdb section (book/src/debugging.md) shows what popek and gdb print.
#[test]
fn book_gdb_transcript_is_true() {
    let book = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/debugging.md"))
        .expect("the chapter");
    let blocks: Vec<&str> = book.split("```console\n").skip(1).filter_map(|b| b.split("```").next()).collect();
    let popek_block = blocks.iter().find(|b| b.starts_with("$ popek run hello -s -S\n")).expect("popek's block");
    let gdb_block = blocks.iter().find(|b| b.starts_with("$ gdb ")).expect("gdb's block");
    let elf = guest_elf("hello", "book");
    let p = Popek::start(&["hello", "-S"]);
    let port = p.port;
    let with_port = |t: &str| t.replace(":1234", &format!(":{port}"));
    let (command, printed) = gdb_block.split_once('\n').expect("a command line");
    let words = shell_words(command.trim_start_matches("$ "));
    assert_eq!(words[0], "gdb");
    let args: Vec<String> =
        words[1..].iter().map(|w| with_port(w).replace("/tmp/g/hello.elf", elf.to_str().expect("utf-8"))).collect();
    let o = run_limited(Command::new("gdb").args(&args));
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let trim = |t: &str| t.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    assert_eq!(trim(&out), trim(printed));
    let (status, stdout, err) = p.finish();
    assert_eq!(status, Some(1), "{err}");
    assert_eq!(stdout, popek::guests::find("hello").unwrap().expected_output);
    let shown: Vec<String> = popek_block.lines().skip(1).map(with_port).collect();
    let got: Vec<&str> = err.lines().take(shown.len()).collect();
    assert_eq!(got, shown);
}
