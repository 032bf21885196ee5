//! The `popek` command line as data: every subcommand's arguments (clap), the parsers of
//! their values, and [`parse`], which turns an argv into a [`Cli`] or a one-line usage
//! error. In the library, not the binary, so that the `cli` fuzz target and the tests call
//! exactly what `popek` runs; the binary (`src/main.rs`) acts on what it returns.
//!
//! ```text
//!   argv ─► parse ─► Ok(Cli)                     the binary runs the command
//!                  ├► Err(Usage::Help(text))     --help, --version: printed as clap prints them
//!                  └► Err(Usage::Error(line))    one line, `popek: ` before it, exit status 2
//! ```

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use popek_machine::EngineKind;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// popek: an educational x86 full-virtualization emulator built on binary translation.
///
/// With no command, boots the built-in `hello` guest and shows what happened.
#[derive(Parser)]
#[command(version, about, long_about)]
pub struct Cli {
    /// The subcommand (none: the built-in demo run).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `popek`'s subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Boot a Multiboot kernel (an ELF file, or the name of a built-in guest).
    ///
    /// The guest's COM1 output goes to stdout; the exit status is the guest's
    /// debug-exit value v as (v << 1) | 1, like QEMU's isa-debug-exit; 0 if it halted,
    /// 2 for a bad image or flag, 4 for a triple fault, 6 for an unsupported
    /// instruction, 8 if --max-insns or --timeout stopped it, 10 if --engine lockstep
    /// found the interpreter and the JIT disagreeing, 12 if a disk image could not be
    /// written, 130 after Ctrl-C (disks flushed).
    Run(RunArgs),
    /// Step a guest under a line debugger (commands on stdin; `help` lists them): steps,
    /// blocks, breakpoints and watchpoints, registers, memory, page walks, the next block
    /// as the translator sees it, and reverse step/continue (runs are replayed from boot,
    /// exactly). Same arguments as `run`; the guest runs on the reference interpreter (so
    /// --engine, --code-cache, --stats, --vga, --trace do nothing), COM1 goes to stdout, and
    /// disk writes stay in memory (as with `,snapshot`) so that a replay sees the same disk.
    Debug(RunArgs),
    /// Run a guest under the binary translator, then show its hottest blocks (or the
    /// block at an address): every guest instruction with its treatment and why,
    /// interleaved with the host code generated for it.
    Explain {
        /// Kernel: a Multiboot ELF32 file, or a built-in guest name.
        kernel: String,
        /// How many of the most executed blocks to show.
        #[arg(long, default_value_t = 3, value_name = "N")]
        hottest: usize,
        /// Show the block that holds this guest EIP instead: hex (e.g. 0x100000) or a
        /// symbol of the kernel, with an optional +offset (e.g. kmain+0x10).
        #[arg(long, value_name = "EIP|SYMBOL")]
        at: Option<String>,
        /// Kernel command line (default: the built-in guest's own).
        #[arg(long)]
        cmdline: Option<String>,
        /// Stop the guest after this many instructions.
        #[arg(long, value_name = "N")]
        max_insns: Option<u64>,
    },
    /// Time a guest under each engine: several interleaved runs, medians, MIPS, the JIT's
    /// speed-up and its translation time; or sweep the work size or the code-cache size.
    Bench(BenchArgs),
    /// List the built-in guests, or write them out as ELF files.
    Guests {
        /// Write every guest to DIR as NAME.elf (plus NAME.cmdline and NAME.expected, and
        /// NAME.img for a guest with a disk), to run the very same images under QEMU.
        #[arg(long, value_name = "DIR")]
        extract: Option<PathBuf>,
    },
    /// A counting loop on a bare CPU: its block as the translator treats it (each
    /// instruction's treatment and why, as `explain` shows it), then the loop run under
    /// the translator and the interpreter, with their speeds.
    Demo {
        /// Loop iterations (4 guest instructions each).
        #[arg(long, default_value_t = 5_000_000)]
        iterations: u32,
    },
    /// The lab book's graders: list the labs, or check a solution to one.
    Lab {
        /// What to do.
        #[command(subcommand)]
        command: LabCommand,
    },
}

/// `popek lab`'s subcommands.
#[derive(Subcommand)]
pub enum LabCommand {
    /// List the labs: number, title, and what a solution hands in.
    List,
    /// Grade a solution: one line per test (OK or FAIL, with its points), then the score.
    /// Exit status 0 if every test passes, 1 if one fails, 2 for a bad lab number or a
    /// missing solution.
    Check {
        /// The lab's number (see `popek lab list`).
        lab: u32,
        /// The solution: a file, or a directory holding the lab's file (default: the
        /// directory `labN` in the current directory).
        #[arg(long, value_name = "PATH|DIR")]
        solution: Option<PathBuf>,
    },
}

/// `popek run --engine`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Engine {
    /// The binary translator: safe instructions as host code, sensitive ones as
    /// callouts to the VMM, blocks chained.
    Jit,
    /// The reference interpreter.
    Interp,
    /// Both, side by side: stop at the first block after which their guest state
    /// differs and print both states and the block (exit status 10).
    Lockstep,
    /// A classic trap-and-emulate VMM, as it would run on x86: the guest kernel runs
    /// deprivileged in ring 1, privileged instructions trap and are emulated, sensitive
    /// unprivileged ones (POPF, PUSHF, SGDT, SMSW, MOV from CS, LAR, …) silently do what the
    /// real ring-1 CPU does, so guests that look see the wrong thing (Popek and Goldberg's
    /// condition fails). --stats counts both by instruction.
    Trap,
}

/// An option that is on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

impl Switch {
    /// True for [`Switch::On`].
    pub fn on(self) -> bool {
        self == Switch::On
    }
}

/// `popek run`'s options.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Kernel: a Multiboot ELF32 file, a Linux bzImage (i386), or a built-in guest name (see
    /// `popek guests`).
    pub kernel: String,
    /// Execution engine.
    #[arg(long, value_enum, default_value_t = Engine::Jit)]
    pub engine: Engine,
    /// Guest RAM, e.g. 128M, 1G, 65536K (multiple of 4 KiB, 2 MiB to 3 GiB).
    #[arg(long, default_value = "128M", value_parser = parse_size)]
    pub mem: u64,
    /// Kernel command line (default: the built-in guest's own, else empty); `--append` as
    /// QEMU users type it.
    #[arg(long, visible_alias = "append")]
    pub cmdline: Option<String>,
    /// Boot module FILE, with an optional command line after a comma (repeatable).
    /// Kernel, modules and input must be regular files that together fit in --mem.
    #[arg(long, value_name = "FILE[,CMDLINE]")]
    pub module: Vec<String>,
    /// Initial ramdisk for a Linux bzImage (placed as its boot header allows).
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// A raw disk image on the primary IDE channel (repeatable: the first is the master,
    /// the second the slave; `index=0` or `index=1` picks one). Guest writes go to the file
    /// and are flushed however the run ends; with `snapshot` they stay in memory and the
    /// file is not touched.
    #[arg(long, value_name = "FILE[,snapshot][,index=N]", value_parser = parse_disk)]
    pub disk: Vec<DiskArg>,
    /// Where COM1 output goes: stdio, file:PATH or none.
    #[arg(long, default_value = "stdio", value_parser = parse_serial)]
    pub serial: SerialTarget,
    /// Bytes to feed to COM1's receiver before the guest starts: a regular file, or `-` for
    /// stdin (read to its end first, so runs stay deterministic; at most what --mem leaves).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Stop after this many guest instructions (exit status 8).
    #[arg(long, value_name = "N")]
    pub max_insns: Option<u64>,
    /// Stop after this many seconds of wall-clock time (exit status 8); fractions are
    /// fine, and a value too large to matter (e.g. 1e30 or inf) means no limit.
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Speed of the virtual CPU in million instructions per virtual second: virtual
    /// time (timers, the TSC) advances by one period per retired instruction.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub mips: u64,
    /// Size of the translator's code cache (K/M/G suffixes, 64K to 1G); when it is full
    /// its oldest 16th is evicted (counted in --stats).
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_code_cache)]
    pub code_cache: usize,
    /// Offer the guest popek's paravirtual interface: the hypervisor CPUID leaf 0x40000000
    /// ("popekpopekpv") and hypercalls by VMCALL (the book's Paravirtualization chapter).
    /// `off`: a bare P6, where VMCALL is #UD.
    #[arg(long, value_enum, value_name = "on|off", default_value_t = Switch::On)]
    pub paravirt: Switch,
    /// Attach QEMU's `pc-testdev` (`-device pc-testdev`): a data register at port 0xE0 and
    /// 64 KiB of device memory at 0xFF000000, which kvm-unit-tests' x86 tests use.
    #[arg(long)]
    pub testdev: bool,
    /// Print run statistics to stderr at the end.
    #[arg(long)]
    pub stats: bool,
    /// Print the VGA text screen to stderr at the end.
    #[arg(long)]
    pub vga: bool,
    /// Trace execution to stderr (or --trace-file), with symbols: a comma-separated list of
    /// insn (every instruction), block (every block entered), int (interrupts delivered),
    /// exc (exceptions delivered), io (every port and MMIO access: direction, address,
    /// width, value, device, and the instruction that made it), translate (every block the
    /// binary translator translates: its instructions with their treatments, as `explain`
    /// shows them, and the size of its host code). The guest then runs on the reference
    /// interpreter, which sees every instruction; with translate, on the translator (which
    /// does not), so translate goes with int and exc only, and --engine is ignored. Traces
    /// are deterministic, so two traces diff cleanly.
    #[arg(long, value_name = "KINDS", value_parser = parse_trace)]
    pub trace: Option<TraceKinds>,
    /// Where --trace writes (default: stderr).
    #[arg(long, value_name = "FILE", requires = "trace")]
    pub trace_file: Option<PathBuf>,
    /// Serve gdb's remote protocol on 127.0.0.1:PORT (`tcp::PORT` as QEMU spells it; 0: a
    /// free port, printed on stderr). The guest runs on the reference interpreter (as under
    /// `popek debug`) and starts at once; gdb may connect while it runs (it stops where it
    /// is) and detach (it runs on). See --gdb-wait.
    #[arg(long, value_name = "PORT|tcp::PORT", value_parser = parse_gdb_port, conflicts_with = "trace")]
    pub gdb: Option<u16>,
    /// Shorthand for --gdb 1234, as QEMU's -s.
    #[arg(short = 's', conflicts_with_all = ["gdb", "trace"])]
    pub gdb_default: bool,
    /// With --gdb: wait for gdb before the first guest instruction (QEMU's -S).
    #[arg(long, short = 'S')]
    pub gdb_wait: bool,
}

impl RunArgs {
    /// The port of the gdb stub, if there is one (--gdb PORT, or -s).
    pub fn gdb_port(&self) -> Option<u16> {
        self.gdb.or(self.gdb_default.then_some(DEFAULT_GDB_PORT))
    }
}

/// The port `-s` serves gdb on (QEMU's).
pub const DEFAULT_GDB_PORT: u16 = 1234;

/// `--gdb PORT`: a port number, or QEMU's `tcp::PORT` (also `tcp:localhost:PORT` and
/// `tcp:127.0.0.1:PORT`: the stub listens on the loopback address only).
pub fn parse_gdb_port(s: &str) -> Result<u16, String> {
    let port = match s.strip_prefix("tcp:") {
        None => s,
        Some(rest) => match rest.rsplit_once(':') {
            Some(("" | "localhost" | "127.0.0.1", port)) => port,
            Some((host, _)) => {
                return Err(format!("`{host}`: the gdb stub listens on 127.0.0.1 only (use tcp::PORT)"));
            }
            None => return Err(format!("`{s}`: expected PORT or tcp::PORT")),
        },
    };
    port.parse::<u16>().map_err(|_| format!("`{port}`: a port is a number from 0 to 65535"))
}

/// What `--trace` traces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceKinds {
    /// Every instruction.
    pub insn: bool,
    /// Every block entered.
    pub block: bool,
    /// Interrupts delivered (external and software).
    pub int: bool,
    /// Exceptions delivered.
    pub exc: bool,
    /// Port and MMIO accesses.
    pub io: bool,
    /// Blocks translated by the binary translator (the guest then runs on it).
    pub translate: bool,
}

impl TraceKinds {
    /// True if the trace needs the guest to run on the interpreter, which sees every
    /// instruction (insn, block, io).
    pub fn per_instruction(&self) -> bool {
        self.insn || self.block || self.io
    }
}

/// `--trace KINDS`: a comma-separated list of insn, block, int, exc, io, translate
/// (translate with int and exc only: the translator runs the guest, and it does not see
/// instructions one by one).
pub fn parse_trace(s: &str) -> Result<TraceKinds, String> {
    let mut k = TraceKinds::default();
    for word in s.split(',') {
        match word.trim() {
            "insn" => k.insn = true,
            "block" => k.block = true,
            "int" => k.int = true,
            "exc" => k.exc = true,
            "io" => k.io = true,
            "translate" => k.translate = true,
            other => return Err(format!("`{other}`: trace kinds are insn, block, int, exc, io and translate")),
        }
    }
    if k.translate && k.per_instruction() {
        return Err("translate traces a run on the translator, which does not see instructions one by one: \
                    it goes with int and exc, not with insn, block or io (trace those in another run)"
            .into());
    }
    Ok(k)
}

/// One `--disk`: the image, whether its writes stay in memory, and which device it is.
#[derive(Clone, Debug)]
pub struct DiskArg {
    /// The image file.
    pub path: PathBuf,
    /// `snapshot`: the guest's writes stay in memory.
    pub snapshot: bool,
    /// `index=N`: master (0) or slave (1); else the next free one.
    pub index: Option<usize>,
}

/// `--disk FILE[,snapshot][,index=N]`.
pub fn parse_disk(s: &str) -> Result<DiskArg, String> {
    let mut parts = s.split(',');
    let path =
        parts.next().filter(|p| !p.is_empty()).ok_or_else(|| format!("`{s}`: expected FILE[,snapshot][,index=N]"))?;
    let mut disk = DiskArg { path: PathBuf::from(path), snapshot: false, index: None };
    for opt in parts {
        match opt {
            "snapshot" | "snapshot=on" => disk.snapshot = true,
            "index=0" => disk.index = Some(0),
            "index=1" => disk.index = Some(1),
            _ if opt.starts_with("index=") => {
                return Err(format!("`{opt}`: the primary IDE channel has index=0 (master) and index=1 (slave)"));
            }
            _ => return Err(format!("`{opt}`: unknown disk option (expected snapshot or index=N)")),
        }
    }
    Ok(disk)
}

/// `--serial`: where COM1 output goes.
#[derive(Clone, Debug)]
pub enum SerialTarget {
    /// `stdio`: standard output (or the terminal, in an interactive run).
    Stdio,
    /// `file:PATH`.
    File(PathBuf),
    /// `none`: discarded.
    None,
}

/// `--mem`: guest RAM, a multiple of 4 KiB from 2 MiB to 3 GiB.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bytes = parse_bytes(s).map_err(|e| format!("{e:#}"))?;
    if !(2 << 20..=3 << 30).contains(&bytes) || !bytes.is_multiple_of(4096) {
        return Err(format!("`{}`: guest RAM must be a multiple of 4 KiB between 2M and 3G", s.trim()));
    }
    Ok(bytes)
}

/// `--code-cache`: 64 KiB to 1 GiB.
pub fn parse_code_cache(s: &str) -> Result<usize, String> {
    use popek_machine::{MAX_CODE_CACHE, MIN_CODE_CACHE};
    let bytes = parse_bytes(s).map_err(|e| format!("{e:#}"))?;
    match usize::try_from(bytes) {
        Ok(n) if (MIN_CODE_CACHE..=MAX_CODE_CACHE).contains(&n) => Ok(n),
        _ => Err(format!("`{s}`: the code cache must be between 64K and 1G")),
    }
}

/// `--timeout SECS`: a positive number of seconds. One beyond what a `Duration` holds
/// (some 584 billion years) is as good as no limit, and becomes `Duration::MAX`.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let positive = "the timeout must be a positive number of seconds";
    let secs: f64 = s.trim().parse().map_err(|_| positive.to_string())?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(positive.into());
    }
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// `--serial stdio|none|file:PATH`.
pub fn parse_serial(s: &str) -> Result<SerialTarget, String> {
    match s {
        "stdio" => Ok(SerialTarget::Stdio),
        "none" => Ok(SerialTarget::None),
        _ => match s.strip_prefix("file:") {
            Some(p) if !p.is_empty() => Ok(SerialTarget::File(PathBuf::from(p))),
            _ => Err(format!("`{s}`: expected stdio, none or file:PATH")),
        },
    }
}

/// Why [`parse`] returned no [`Cli`].
#[derive(Debug)]
pub enum Usage {
    /// `--help`, `--version` or `popek help`: clap prints it (`clap::Error::exit`), to
    /// stdout, with exit status 0.
    Help(clap::Error),
    /// A bad command line, as one line without control characters (and without the
    /// `popek: ` the binary puts before it).
    Error(String),
}

/// Parses `argv` (the program name first) as `popek` does.
pub fn parse<I, T>(argv: I) -> Result<Cli, Usage>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::try_parse_from(argv).map_err(|e| if e.use_stderr() { Usage::Error(one_line(&e)) } else { Usage::Help(e) })
}

/// clap's usage error in one line: its message lines (not the usage block and the pointer
/// to `--help` below them) joined, the `error: ` label dropped, control characters escaped.
/// clap indents the lines that continue its message; an unindented line right after
/// another is a newline inside the user's argument, kept as `\n`.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut line = String::new();
    let mut after_break = true;
    for l in text.lines() {
        if l.starts_with("Usage:") || l.starts_with("For more information") {
            break;
        }
        if l.trim().is_empty() {
            after_break = true;
            continue;
        }
        let structural = after_break || l.starts_with("  ");
        after_break = false;
        if !structural {
            line.push('\n');
            line.push_str(l);
            continue;
        }
        let l = l.trim();
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') || l.starts_with('[') { " " } else { "; " });
        }
        line.push_str(l.strip_prefix("error: ").unwrap_or(l));
    }
    if line.is_empty() {
        line.push_str("bad command line");
    }
    line.chars().flat_map(|c| if c.is_control() { c.escape_default().collect() } else { vec![c] }).collect()
}

/// The engines `popek bench` can compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchEngine {
    /// The binary translator.
    Jit,
    /// The reference interpreter.
    Interp,
}

impl BenchEngine {
    /// The name `--engines` takes.
    pub fn name(self) -> &'static str {
        match self {
            BenchEngine::Jit => "jit",
            BenchEngine::Interp => "interp",
        }
    }

    /// The machine's engine.
    pub fn kind(self) -> EngineKind {
        match self {
            BenchEngine::Jit => EngineKind::Jit,
            BenchEngine::Interp => EngineKind::Interp,
        }
    }
}

/// `popek bench`'s options.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Kernel: a built-in guest name or a Multiboot ELF32 file.
    #[arg(default_value = "compute")]
    pub guest: String,
    /// Kernel command line (default: the built-in guest's own).
    #[arg(long)]
    pub cmdline: Option<String>,
    /// Engines to compare, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "jit,interp")]
    pub engines: Vec<BenchEngine>,
    /// Timed runs per engine (and per sweep point); the table shows medians.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: u32,
    /// Also write the results as an SVG bar chart to FILE.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Instead of one point: sweep the guest's numeric command-line argument KEY (e.g.
    /// iters for compute, scale or n for nanobench), or `cache` for the JIT's code-cache size.
    #[arg(long, value_name = "KEY|cache")]
    pub sweep: Option<String>,
    /// The sweep's values, comma-separated (default 1,2,4,8; for `cache`
    /// 64K,128K,256K,1M,16M).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub points: Vec<String>,
    /// The translator's code-cache size (K/M/G suffixes; 64K to 1G).
    #[arg(long, value_name = "SIZE", default_value = "16M")]
    pub code_cache: String,
}

/// A byte count like `64K`, `16M`, `1G` or `65536`.
pub fn parse_bytes(s: &str) -> Result<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().with_context(|| format!("`{s}` is not a size like 64K or 16M"))?;
    let mult: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => bail!("`{s}`: unknown size unit `{unit}` (use K, M or G)"),
    };
    n.checked_mul(mult).with_context(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("64K").unwrap(), 65536);
        assert_eq!(parse_bytes("16m").unwrap(), 16 << 20);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("12Q").is_err() && parse_bytes("").is_err() && parse_bytes("99999999999G").is_err());
    }

    fn error(argv: &[&str]) -> String {
        match parse(std::iter::once("popek").chain(argv.iter().copied())) {
            Err(Usage::Error(line)) => line,
            Ok(_) => panic!("{argv:?} parses"),
            Err(Usage::Help(e)) => panic!("{argv:?} asks for help: {e}"),
        }
    }

    #[test]
    fn trace_kinds() {
        let all = TraceKinds { insn: true, block: true, int: true, exc: true, io: true, translate: false };
        assert_eq!(parse_trace("insn,block,int,exc,io"), Ok(all));
        let translate = TraceKinds { int: true, exc: true, translate: true, ..TraceKinds::default() };
        assert_eq!(parse_trace("translate, int,exc"), Ok(translate));
        assert!(!translate.per_instruction() && TraceKinds { io: true, ..TraceKinds::default() }.per_instruction());
        for bad in ["translate,io", "insn,translate", "", "exc,"] {
            assert!(parse_trace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gdb_ports() {
        assert_eq!(parse_gdb_port("1234"), Ok(1234));
        assert_eq!(parse_gdb_port("tcp::1234"), Ok(1234));
        assert_eq!(parse_gdb_port("tcp:localhost:0"), Ok(0));
        assert_eq!(parse_gdb_port("tcp:127.0.0.1:9"), Ok(9));
        assert!(parse_gdb_port("tcp:1234").is_err() && parse_gdb_port("65536").is_err());
        assert!(parse_gdb_port("").is_err() && parse_gdb_port("tcp::").is_err());
        let Ok(Cli { command: Some(Command::Run(args)) }) = parse(["popek", "run", "hello", "-s", "-S"]) else {
            panic!("-s -S parse")
        };
        assert_eq!((args.gdb_port(), args.gdb_wait), (Some(DEFAULT_GDB_PORT), true));
    }

    #[test]
    fn usage_errors_are_one_line() {
        assert_eq!(
            error(&["run", "hello", "--bogus"]),
            "unexpected argument '--bogus' found; tip: to pass '--bogus' as a value, use '-- --bogus'"
        );
        assert_eq!(error(&["run"]), "the following required arguments were not provided: <KERNEL>");
        assert!(
            error(&["run", "hello", "--engine", "fast"]).starts_with("invalid value 'fast' for '--engine <ENGINE>'")
        );
        assert_eq!(
            error(&["run", "hello", "--mem", "1\nM"]),
            "invalid value '1\\nM' for '--mem <MEM>': `1\\nM`: unknown size unit `\\nM` (use K, M or G)"
        );
        assert!(error(&["run", "hello", "--gdb", "99999"]).contains("a port is a number from 0 to 65535"));
        assert!(error(&["run", "hello", "--gdb", "tcp:example.org:1"]).contains("listens on 127.0.0.1 only"));
        assert!(error(&["run", "hello", "--gdb", "1", "--trace", "insn"]).contains("cannot be used with"));
        assert!(
            error(&["run", "hello", "--trace", "insn,bogus"])
                .ends_with("`bogus`: trace kinds are insn, block, int, exc, io and translate")
        );
        assert!(
            error(&["run", "hello", "--trace", "block,translate"])
                .ends_with("it goes with int and exc, not with insn, block or io (trace those in another run)")
        );
        assert!(matches!(parse(["popek", "--help"]), Err(Usage::Help(_))));
        assert!(matches!(parse(["popek", "--version"]), Err(Usage::Help(_))));
    }
}
