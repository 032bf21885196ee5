//! The `popek` command line: run guest kernels, list the built-in ones, show the demo.
//!
//! Conventions: the guest's console output (COM1, and debugcon at port 0xE9) goes to
//! stdout and nothing else does; every diagnostic goes to stderr. The exit status is the guest's (debug-exit port 0xF4:
//! `(value << 1) | 1`), or one of [`exit`]'s codes.

/// `eprintln!` that ignores a closed stderr (e.g. `popek run … 2>&1 | head`): the run goes
/// on to its end, so disks are flushed, instead of panicking on the broken pipe.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that ignores a closed stdout, as [`note!`] does for stderr.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

use anyhow::{Context, Result, anyhow, bail};
use popek::cli::{Command, DiskArg, Engine, LabCommand, RunArgs, SerialTarget, Usage};
use popek::devices::clock::InstructionClock;
use popek::devices::sink::{ByteSink, NullSink, StdoutSink, WriterSink};
use popek::devices::storage::BlockStorage;
use popek::machine::multiboot::Module;
use popek::machine::{Engine as MachineEngine, EngineKind, Machine, MachineConfig, RunConfig, StopReason, lockstep};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod bench;
mod files;
mod lab;
mod repl;
mod terminal;
mod trace;

/// Process exit statuses of `popek` itself (the guest's own are odd numbers).
mod exit {
    /// The guest halted with interrupts off, or reset the machine.
    pub const HALTED: u8 = 0;
    /// Bad command line, unreadable or malformed kernel image.
    pub const USAGE: u8 = 2;
    /// Triple fault.
    pub const TRIPLE_FAULT: u8 = 4;
    /// The guest used an instruction or feature popek does not implement.
    pub const UNSUPPORTED: u8 = 6;
    /// --max-insns or --timeout ended the run.
    pub const LIMIT: u8 = 8;
    /// --engine lockstep found the engines disagreeing.
    pub const DIVERGED: u8 = 10;
    /// A disk image could not be written or flushed (the guest saw an ATA error).
    pub const DISK: u8 = 12;
    /// Ctrl-C (SIGINT), as shells report a process that SIGINT ended (128 + 2).
    pub const INTERRUPTED: u8 = 130;
    /// gdb killed the guest (`kill` under `run --gdb`), as QEMU exits then.
    pub const KILLED: u8 = 0;
}

/// Which device each `--disk` is: explicit indexes first, then the others in order.
fn place_disks(disks: &[DiskArg]) -> Result<[Option<&DiskArg>; 2]> {
    let mut slots: [Option<&DiskArg>; 2] = [None, None];
    for d in disks.iter().filter(|d| d.index.is_some()) {
        let i = d.index.unwrap_or_default();
        if slots[i].is_some() {
            bail!("two disks given index={i}");
        }
        slots[i] = Some(d);
    }
    for d in disks.iter().filter(|d| d.index.is_none()) {
        let Some(slot) = slots.iter_mut().find(|s| s.is_none()) else {
            bail!("more than two disks: the primary IDE channel has a master and a slave");
        };
        *slot = Some(d);
    }
    // One file as both devices would have two writers that do not see each other.
    if let [Some(a), Some(b)] = slots
        && !(a.snapshot && b.snapshot)
        && let (Ok(pa), Ok(pb)) = (std::fs::canonicalize(&a.path), std::fs::canonicalize(&b.path))
        && pa == pb
    {
        bail!("disk image `{}` is given as both master and slave (add `,snapshot` to both)", a.path.display());
    }
    Ok(slots)
}

/// The storage for the placed disks. `all_snapshot` opens every image as a snapshot (the
/// second machine of a lockstep run, which must not write the file twice).
fn open_disks(slots: &[Option<&DiskArg>; 2], all_snapshot: bool) -> Result<[Option<Box<dyn BlockStorage>>; 2]> {
    let open =
        |d: Option<&DiskArg>| d.map(|d| popek::machine::disk::open(&d.path, d.snapshot || all_snapshot)).transpose();
    Ok([open(slots[0])?, open(slots[1])?])
}

/// A built-in guest's own disk (in memory), when it has one and no `--disk` was given.
fn builtin_disks(kernel: &str, kernel_is_file: bool) -> [Option<Box<dyn BlockStorage>>; 2] {
    let disk = match kernel_is_file {
        true => None,
        false => popek::guests::disk_image(kernel),
    };
    [disk.map(|bytes| Box::new(popek::machine::disk::MemoryDisk::new(bytes)) as Box<dyn BlockStorage>), None]
}

fn main() -> ExitCode {
    let cli = match popek::cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(Usage::Help(e)) => e.exit(),
        Err(Usage::Error(line)) => {
            note!("popek: {line}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let result = match cli.command {
        None => run_default(),
        Some(Command::Run(args)) => run(&args),
        Some(Command::Debug(args)) => debug(&args).map(|()| ExitCode::SUCCESS),
        Some(Command::Explain { kernel, hottest, at, cmdline, max_insns }) => {
            explain(&kernel, hottest, at, cmdline, max_insns).map(|()| ExitCode::SUCCESS)
        }
        Some(Command::Bench(args)) => run_bench(&args).map(|()| ExitCode::SUCCESS),
        Some(Command::Guests { extract }) => guests(extract.as_deref()).map(|()| ExitCode::SUCCESS),
        Some(Command::Demo { iterations }) => run_demo(iterations).map(|()| ExitCode::SUCCESS),
        Some(Command::Lab { command }) => run_lab(&command),
    };
    result.unwrap_or_else(|e| {
        note!("popek: {e:#}");
        ExitCode::from(exit::USAGE)
    })
}

/// `popek` with no arguments: boot `hello`, show its output and what happened.
fn run_default() -> Result<ExitCode> {
    note!("popek: booting the built-in `hello` guest under the binary translator");
    note!("popek: (try `popek guests`, `popek run compute --stats`, `popek demo`, `popek --help`)");
    note!("---- guest serial output (COM1) ----");
    let args = RunArgs {
        kernel: "hello".into(),
        engine: Engine::Jit,
        mem: 128 << 20,
        cmdline: None,
        module: Vec::new(),
        initrd: None,
        disk: Vec::new(),
        serial: SerialTarget::Stdio,
        input: None,
        max_insns: None,
        timeout: Some(Duration::from_secs(60)),
        mips: 1000,
        code_cache: popek::jit::DEFAULT_CODE_CACHE,
        paravirt: popek::cli::Switch::On,
        testdev: false,
        stats: true,
        vga: false,
        trace: None,
        trace_file: None,
        gdb: None,
        gdb_default: false,
        gdb_wait: false,
    };
    let code = run(&args)?;
    // The demo succeeded if the guest passed (debug-exit 0, status 1): say so with 0.
    Ok(if code == ExitCode::from(1) { ExitCode::SUCCESS } else { code })
}

/// The kernel image and its default command line. A file is checked (a regular file,
/// no larger than the budget) before it is read; a name that is no file is a built-in guest.
fn kernel_image(name: &str, budget: &mut files::Budget) -> Result<(Vec<u8>, &'static str)> {
    let path = Path::new(name);
    match std::fs::metadata(path) {
        Ok(_) => return Ok((budget.admit("kernel", path)?.read()?, "")),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot read kernel `{name}`"));
        }
        Err(_) => {}
    }
    match popek::guests::find(name) {
        Some(g) => Ok((g.elf.to_vec(), g.cmdline)),
        None => bail!("`{name}` is neither a file nor a built-in guest (see `popek guests`)"),
    }
}

/// The files a run loads, read, and the budget they were checked against.
struct GuestFiles {
    image: Vec<u8>,
    default_cmdline: &'static str,
    kernel_is_file: bool,
    modules: Vec<Module>,
    initrd: Option<Vec<u8>>,
    /// `--input FILE`'s bytes (not `-`: stdin is read by the caller, if it wants it).
    input_file: Option<Vec<u8>>,
    budget: files::Budget,
}

/// The command line the kernel gets: `--cmdline` or the built-in guest's own. A Multiboot
/// kernel from a file gets it after the file's name, as QEMU's `-kernel` and GRUB pass it
/// (kernels that parse an argv, kvm-unit-tests among them, take the first word for the
/// program's name); a Linux bzImage gets `--cmdline` alone.
fn boot_cmdline(args: &RunArgs, default_cmdline: &str, kernel_is_file: bool, image: &[u8]) -> String {
    let cmdline = args.cmdline.clone().unwrap_or_else(|| default_cmdline.to_string());
    if kernel_is_file && !popek::machine::linux::is_bzimage(image) {
        format!("{} {cmdline}", args.kernel)
    } else {
        cmdline
    }
}

/// Reads the kernel, the modules, the initrd and an `--input` file. Every file is checked
/// by its metadata, and all of them against guest RAM together, before any is read: a
/// FIFO, a device or an oversized file is refused up front.
fn guest_files(args: &RunArgs) -> Result<GuestFiles> {
    let mut budget = files::Budget::new(args.mem, true);
    let kernel_is_file = std::fs::metadata(&args.kernel).is_ok();
    let kernel = kernel_is_file.then(|| budget.admit("kernel", Path::new(&args.kernel))).transpose()?;
    let module_files = args
        .module
        .iter()
        .map(|m| {
            let (file, cmdline) = m.split_once(',').unwrap_or((m.as_str(), m.as_str()));
            Ok((budget.admit("module", Path::new(file))?, cmdline))
        })
        .collect::<Result<Vec<_>>>()?;
    let initrd_file = args.initrd.as_ref().map(|p| budget.admit("initrd", p)).transpose()?;
    let input_file = match &args.input {
        Some(p) if p.as_os_str() != "-" => Some(budget.admit("input file", p)?),
        _ => None,
    };
    let (image, default_cmdline) = match &kernel {
        Some(k) => (k.read()?, ""),
        None => kernel_image(&args.kernel, &mut budget)?,
    };
    let mut modules = Vec::new();
    for (file, cmdline) in &module_files {
        modules.push(Module { data: file.read()?, cmdline: cmdline.to_string() });
    }
    let initrd = initrd_file.as_ref().map(files::Admitted::read).transpose()?;
    let input_file = input_file.as_ref().map(files::Admitted::read).transpose()?;
    Ok(GuestFiles { image, default_cmdline, kernel_is_file, modules, initrd, input_file, budget })
}

fn run(args: &RunArgs) -> Result<ExitCode> {
    let gdb_port = args.gdb_port();
    if args.gdb_wait && gdb_port.is_none() {
        bail!("--gdb-wait (-S) waits for gdb: give --gdb PORT (or -s) too");
    }
    if gdb_port.is_some() && matches!(args.engine, Engine::Lockstep | Engine::Trap) {
        bail!("--gdb runs the guest on the reference interpreter: it cannot be used with --engine lockstep or trap");
    }
    // Listening first: a port in use is refused before anything is read.
    let gdb_server = gdb_port.map(popek::gdb::GdbServer::bind).transpose()?;
    let GuestFiles { image, default_cmdline, kernel_is_file, modules, initrd, input_file, mut budget } =
        guest_files(args)?;
    // Disk images are opened (and checked) before the run; they are not read into RAM.
    let disk_slots = place_disks(&args.disk)?;
    let mut disks = if args.disk.is_empty() {
        builtin_disks(&args.kernel, kernel_is_file)
    } else {
        open_disks(&disk_slots, false)?
    };
    // A terminal on stdin (and no --input, no lockstep) makes the run interactive.
    let interactive = match (&args.input, &args.engine) {
        // Under gdb the terminal stays as it is: Ctrl-C there ends the run.
        _ if gdb_server.is_some() => None,
        (None, Engine::Jit | Engine::Interp | Engine::Trap) => terminal::interactive(),
        _ => None,
    };
    let serial: Box<dyn ByteSink> = match &args.serial {
        SerialTarget::Stdio if interactive.is_some() => Box::new(terminal::TerminalSink),
        SerialTarget::Stdio => Box::new(StdoutSink),
        SerialTarget::None => Box::new(NullSink),
        SerialTarget::File(p) => Box::new(WriterSink(files::create_output("serial output file", p)?)),
    };
    let cmdline = boot_cmdline(args, default_cmdline, kernel_is_file, &image);
    let config = |serial, engine, disks| MachineConfig {
        ram_size: args.mem,
        cmdline: cmdline.clone(),
        modules: modules.clone(),
        initrd: initrd.clone(),
        serial,
        engine,
        code_cache: args.code_cache,
        disks,
        paravirt: args.paravirt.on(),
        testdev: args.testdev,
    };
    let engine = match args.engine {
        // The gdb stub runs the guest on the debugger's engine, the interpreter; so does
        // --trace, but for `translate`, which traces the translator.
        _ if gdb_server.is_some() => EngineKind::Interp,
        _ if args.trace.is_some_and(|k| k.translate) => EngineKind::Jit,
        _ if args.trace.is_some() => EngineKind::Interp,
        Engine::Jit => EngineKind::Jit,
        Engine::Interp | Engine::Lockstep => EngineKind::Interp,
        Engine::Trap => EngineKind::Trap,
    };
    let input = match (&args.input, input_file) {
        (_, Some(bytes)) => Some(bytes),
        (Some(_), None) => Some(budget.read_stdin()?),
        (None, None) => None,
    };
    let mut machine = Machine::boot(config(serial, engine, std::mem::take(&mut disks)), &image)
        .with_context(|| format!("`{}`", args.kernel))?;
    if let Some(bytes) = &input {
        machine.queue_serial_input(bytes);
    }
    let started = Instant::now();
    let clock = InstructionClock { insns_per_sec: args.mips * 1_000_000 };
    let console = interactive.as_ref().map(|(console, _)| console.clone());
    // Ctrl-C where the terminal is not raw (at a raw terminal it is a byte for the guest):
    // the run stops between two steps, the disks are flushed, and popek says so.
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupt);
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed)) {
        note!("popek: Ctrl-C will not stop the run cleanly: {e}");
    }
    // Said once the machine is ready and Ctrl-C is handled: a script may connect now.
    if let Some(server) = &gdb_server {
        note!("popek: gdb stub listening on 127.0.0.1:{}", server.port());
    }
    let run_config = RunConfig {
        max_insns: args.max_insns,
        max_ticks: None,
        timeout: args.timeout,
        clock,
        console,
        interrupt: Some(Arc::clone(&interrupt)),
    };
    let mut killed = false;
    let stop = if let Some(server) = &gdb_server {
        let (m, stop, k) = run_gdb(machine, server, args, run_config)?;
        (machine, killed) = (m, k);
        stop
    } else if let Some(trace) = &args.trace {
        let symbols = popek::machine::symbols::Symbols::from_elf(&image);
        let out: Box<dyn std::io::Write> = match &args.trace_file {
            Some(p) => Box::new(std::io::BufWriter::new(files::create_output("trace file", p)?)),
            None => Box::new(std::io::stderr()),
        };
        let (stop, m) = trace::run(machine, run_config.clone(), *trace, &symbols, out)?;
        machine = m;
        stop
    } else if let Engine::Lockstep = args.engine {
        // The interpreter's machine prints the guest's output; the JIT's is checked against it.
        let other_disks = if args.disk.is_empty() {
            builtin_disks(&args.kernel, kernel_is_file)
        } else {
            open_disks(&disk_slots, true)?
        };
        let mut other = Machine::boot(config(Box::new(NullSink), EngineKind::Jit, other_disks), &image)?;
        if let Some(bytes) = &input {
            other.queue_serial_input(bytes);
        }
        match lockstep::run(&mut machine, &mut other, &run_config) {
            Ok(stop) => {
                note!("popek: lockstep: the interpreter and the JIT agreed on every block");
                stop
            }
            Err(d) => {
                machine.flush_output();
                let disks_ok = finish_disks(&mut machine);
                report_divergence(&d);
                return Ok(ExitCode::from(if disks_ok { exit::DIVERGED } else { exit::DISK }));
            }
        }
    } else {
        machine.run(&run_config)
    };
    let wall = started.elapsed();
    machine.flush_output();
    // Every stop path flushes the disks, before anything else can go wrong.
    let disks_ok = finish_disks(&mut machine);
    // The terminal back to normal before anything else is printed.
    drop(interactive);
    if args.vga {
        note!("---- VGA text screen ----");
        note!("{}", machine.vga_text().unwrap_or_default());
    }
    match &stop {
        _ if killed => {}
        StopReason::Reset => note!("popek: the guest reset the machine"),
        StopReason::Halted => note!("popek: the guest halted (HLT with nothing left to wake it)"),
        StopReason::TripleFault(dump) => note!("popek: triple fault: the CPU shut down\n{dump}"),
        StopReason::Unsupported(u) => note!("popek: {u}"),
        StopReason::InstructionLimit | StopReason::Timeout => note!("popek: stopped: {stop:?}"),
        StopReason::Quit => note!("popek: quit at the console (Ctrl-A x)"),
        StopReason::Interrupted => note!("popek: interrupted (Ctrl-C); disks flushed"),
        StopReason::Exit(_) => {}
    }
    let code = ExitCode::from(if killed { exit::KILLED } else { exit_status(&stop) });
    let code = if disks_ok { code } else { ExitCode::from(exit::DISK) };
    if args.stats {
        print_stats(&machine, &stop, wall);
    }
    Ok(code)
}

/// The process exit status for a machine stop (the status gdb hears in `W` too).
fn exit_status(stop: &StopReason) -> u8 {
    match stop {
        // The host keeps the low 8 bits of an exit status, as for QEMU.
        StopReason::Exit(status) => (*status & 0xff) as u8,
        StopReason::Reset | StopReason::Halted => exit::HALTED,
        StopReason::TripleFault(_) => exit::TRIPLE_FAULT,
        StopReason::Unsupported(_) => exit::UNSUPPORTED,
        StopReason::InstructionLimit | StopReason::Timeout => exit::LIMIT,
        StopReason::Quit => 0,
        StopReason::Interrupted => exit::INTERRUPTED,
    }
}

/// Runs `machine` under the gdb stub (`run --gdb`): the stop, and whether gdb killed the
/// guest. The stub listens already (`server`).
fn run_gdb(
    machine: Machine,
    server: &popek::gdb::GdbServer,
    args: &RunArgs,
    cfg: RunConfig,
) -> Result<(Machine, StopReason, bool)> {
    let opts = popek::gdb::Options {
        wait: args.gdb_wait,
        timeout: cfg.timeout,
        interrupt: cfg.interrupt.clone(),
        exit_status,
    };
    let clock = cfg.clock;
    // The stub looks at the clock itself: the debugger's own timeout would count from
    // each slice the guest runs.
    let mut d = popek::machine::debug::Debugger::attach(machine, RunConfig { timeout: None, console: None, ..cfg });
    let outcome = popek::gdb::run(&mut d, server, &opts, &mut |n| match n {
        popek::gdb::Notice::Waiting => note!("popek: waiting for gdb before the first instruction"),
        popek::gdb::Notice::Connected => note!("popek: gdb connected"),
        popek::gdb::Notice::Detached(None) => note!("popek: gdb detached; the guest runs on"),
        popek::gdb::Notice::Detached(Some(why)) => note!("popek: gdb went away ({why}); the guest runs on"),
    })?;
    d.machine.stats.virtual_ns = clock.ns_at(d.machine.ticks());
    Ok(match outcome {
        popek::gdb::Outcome::Stopped(stop) => (d.machine, stop, false),
        popek::gdb::Outcome::Killed => {
            note!("popek: gdb killed the guest");
            (d.machine, StopReason::Quit, true)
        }
    })
}

/// COM1 output of a debugged machine: bytes already shown (by an earlier run of the same
/// guest, before a trip back in time) are not shown again.
struct ReplaySink {
    /// Bytes this machine wrote.
    at: u64,
    /// Bytes shown so far, by any machine of the session.
    shown: Arc<std::sync::atomic::AtomicU64>,
}

impl ByteSink for ReplaySink {
    fn write_byte(&mut self, byte: u8) {
        if self.at == self.shown.load(Ordering::Relaxed) {
            StdoutSink.write_byte(byte);
            self.shown.fetch_add(1, Ordering::Relaxed);
        }
        self.at += 1;
    }
    fn flush(&mut self) {
        StdoutSink.flush();
    }
}

fn debug(args: &RunArgs) -> Result<()> {
    if args.input.as_ref().is_some_and(|p| p.as_os_str() == "-") {
        bail!("`popek debug` reads its commands from stdin: give --input a file");
    }
    if args.gdb_port().is_some() || args.gdb_wait {
        bail!("the gdb stub is `popek run KERNEL --gdb PORT`; `popek debug` takes its commands on stdin");
    }
    let GuestFiles { image, default_cmdline, kernel_is_file, modules, initrd, input_file: input, .. } =
        guest_files(args)?;
    let disk_args = args.disk.clone();
    place_disks(&disk_args)?;
    let cmdline = boot_cmdline(args, default_cmdline, kernel_is_file, &image);
    let symbols = popek::machine::symbols::Symbols::from_elf(&image);
    let shown = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (mem, code_cache, kernel, paravirt, testdev) =
        (args.mem, args.code_cache, args.kernel.clone(), args.paravirt.on(), args.testdev);
    let boot = move || {
        let disks = if disk_args.is_empty() {
            builtin_disks(&kernel, kernel_is_file)
        } else {
            let slots = place_disks(&disk_args).map_err(|e| popek::machine::MachineError::Disk(e.to_string()))?;
            open_disks(&slots, true).map_err(|e| popek::machine::MachineError::Disk(format!("{e:#}")))?
        };
        let config = MachineConfig {
            ram_size: mem,
            cmdline: cmdline.clone(),
            modules: modules.clone(),
            initrd: initrd.clone(),
            serial: Box::new(ReplaySink { at: 0, shown: Arc::clone(&shown) }),
            engine: EngineKind::Interp,
            code_cache,
            disks,
            paravirt,
            testdev,
        };
        let mut m = Machine::boot(config, &image)?;
        if let Some(bytes) = &input {
            m.queue_serial_input(bytes);
        }
        Ok(m)
    };
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupt);
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    let cfg = RunConfig {
        max_insns: args.max_insns,
        timeout: args.timeout,
        clock: InstructionClock { insns_per_sec: args.mips * 1_000_000 },
        console: None,
        interrupt: Some(Arc::clone(&interrupt)),
        max_ticks: None,
    };
    let mut d =
        popek::machine::debug::Debugger::new(Box::new(boot), cfg).with_context(|| format!("`{}`", args.kernel))?;
    let stdin = std::io::stdin();
    repl::run(&mut d, &symbols, &interrupt, &mut stdin.lock(), &mut std::io::stdout()).context("debugger I/O")?;
    d.machine.flush_output();
    Ok(())
}

/// Flushes the disks and reports, one line each, every host I/O error the guest's disk
/// accesses met and a failed flush. False if there was any.
fn finish_disks(machine: &mut Machine) -> bool {
    let flushed = machine.flush_disks();
    let mut ok = true;
    for e in machine.take_disk_errors() {
        note!("popek: disk error (the guest saw an ATA error): {:#}", anyhow::Error::from(e));
        ok = false;
    }
    if let Err(e) = flushed {
        note!("popek: {:#}", anyhow::Error::from(e));
        ok = false;
    }
    ok
}

fn run_bench(args: &popek::cli::BenchArgs) -> Result<()> {
    let ram = popek::machine::MachineConfig::default().ram_size;
    let (image, default_cmdline) = kernel_image(&args.guest, &mut files::Budget::new(ram, false))?;
    let report = bench::bench(args, &image, default_cmdline)?;
    write_stdout(&report)
}

fn report_divergence(d: &lockstep::Divergence) {
    note!(
        "popek: lockstep: the engines differ after step {} ({} vs {} instructions retired)",
        d.step,
        d.retired.0,
        d.retired.1
    );
    if let Some(addr) = d.memory {
        note!("first differing memory byte at physical {addr:#010x}");
    }
    note!("---- state before the block ----\n{}", d.before.dump());
    note!("---- interpreter after it ----\n{}", d.reference.dump());
    note!("---- JIT after it ----\n{}", d.other.dump());
    if let Some(block) = &d.block {
        note!("---- the block ----\n{block}");
    }
}

fn print_stats(m: &Machine, stop: &StopReason, wall: Duration) {
    let s = &m.stats;
    let secs = wall.as_secs_f64().max(1e-9);
    let stop = stop_text(stop);
    note!("---- popek statistics ----");
    note!("stop:                  {stop}");
    note!("instructions retired:  {}", s.retired);
    note!("wall time:             {:.3} s ({:.1} MIPS)", secs, s.retired as f64 / secs / 1e6);
    note!("virtual time:          {:.6} s", s.virtual_ns as f64 / 1e9);
    match &m.engine {
        MachineEngine::Interp(i) => print_interp_stats(m, "interpreter", &i.cache.stats, &i.stats),
        MachineEngine::Jit(j) => {
            let (t, c) = (&j.stats, j.cache_stats());
            note!("engine:                binary translator");
            note!("blocks executed:       {} translated, {} interpreted", t.blocks, t.interpreted_blocks);
            note!("blocks translated:     {} ({} chain links)", t.translated, t.links);
            note!(
                "code cache:            {} regions evicted ({} translations), {} flushes",
                t.evicted_regions,
                t.evicted,
                t.flushes
            );
            note!(
                "instructions:          {} ident, {} rewritten, {} callout or helper (as translated)",
                t.ident,
                t.rewritten,
                t.callouts
            );
            let insns = t.ident + t.rewritten + t.callouts;
            note!(
                "host code:             {} bytes, {:.1} per guest instruction translated",
                t.host_bytes,
                t.host_bytes as f64 / insns.max(1) as f64
            );
            note!(
                "exits from JIT code:   {} at a block end, {} to link a chain, {} from inside a block ({} went on without the run loop)",
                t.exits_end,
                t.exits_chain_miss,
                t.exits_stopped,
                t.went_on
            );
            let calls = j.callouts_by_instruction();
            let top: Vec<String> = calls.iter().take(8).map(|(m, n)| format!("{m:?} {n}").to_lowercase()).collect();
            let total: u64 = calls.iter().map(|(_, n)| n).sum();
            note!(
                "callouts and helpers:  {total} run ({})",
                if top.is_empty() { "none".into() } else { top.join(", ") }
            );
            note!("blocks decoded:        {} ({} cache hits)", c.decoded, c.hits);
            note!(
                "blocks invalidated:    {} (self-modifying code: {} translations dropped, {} chains unlinked)",
                c.invalidated,
                t.invalidated,
                t.unlinked
            );
            print_smc(m);
            note!("exceptions delivered:  {}", t.exceptions + j.interp_stats.exceptions);
        }
        MachineEngine::Trap(e) => {
            let engine = "trap-and-emulate (guest ring 0 deprivileged to ring 1)";
            print_interp_stats(m, engine, &e.cache.stats, &e.stats);
            let t = &e.trap_stats;
            note!("traps to the VMM:      {} (privileged, emulated: {})", t.total_traps(), by_mnemonic(&t.traps()));
            note!(
                "sensitive, no trap:    {} (ran on the real ring-1 state: {})",
                t.total_silent(),
                by_mnemonic(&t.silent())
            );
        }
    }
    note!("interrupts delivered:  {}", s.interrupts);
    note!("HLT sleeps:            {}", s.halts);
    if let Some(d) = m.disk_stats().filter(|d| d.commands > 0) {
        note!(
            "disk commands:         {} ({} sectors read, {} written, {} flushes, {} errors)",
            d.commands,
            d.sectors_read,
            d.sectors_written,
            d.flushes,
            d.errors
        );
    }
}

/// `cli 3, out 2` (most frequent first), or `none`.
fn by_mnemonic(counts: &[(popek::cpu::iced_x86::Mnemonic, u64)]) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts.iter().map(|(m, n)| format!("{m:?} {n}").to_lowercase()).collect::<Vec<_>>().join(", ")
}

/// The statistics of an engine that interprets decoded blocks.
fn print_interp_stats(
    m: &Machine,
    engine: &str,
    c: &popek::cpu::block::BlockCacheStats,
    stats: &popek::interp::InterpStats,
) {
    note!("engine:                {engine}");
    note!("blocks executed:       {}", stats.blocks);
    note!("blocks decoded:        {} ({} cache hits)", c.decoded, c.hits);
    note!("blocks invalidated:    {} (self-modifying code)", c.invalidated);
    print_smc(m);
    note!("exceptions delivered:  {}", stats.exceptions);
}

/// What stores to pages holding code did: the causes of invalidation.
fn print_smc(m: &Machine) {
    let smc = m.cpu.smc_stats;
    note!("stores to code pages:  {} into decoded code, {} to data beside it (nothing dropped)", smc.code, smc.data);
}

fn explain(
    kernel: &str,
    hottest: usize,
    at: Option<String>,
    cmdline: Option<String>,
    max_insns: Option<u64>,
) -> Result<()> {
    const RAM: u64 = 128 << 20;
    let (image, default_cmdline) = kernel_image(kernel, &mut files::Budget::new(RAM, false))?;
    let config = MachineConfig {
        ram_size: RAM,
        cmdline: cmdline.unwrap_or_else(|| default_cmdline.to_string()),
        modules: Vec::new(),
        initrd: None,
        serial: Box::new(NullSink),
        engine: EngineKind::Jit,
        code_cache: popek::jit::DEFAULT_CODE_CACHE,
        disks: builtin_disks(kernel, std::fs::metadata(kernel).is_ok()),
        paravirt: true,
        testdev: false,
    };
    let mut machine = Machine::boot(config, &image).with_context(|| format!("`{kernel}`"))?;
    if let MachineEngine::Jit(jit) = &mut machine.engine {
        jit.set_profiling(true);
    }
    let stop = machine.run(&RunConfig { max_insns, timeout: Some(Duration::from_secs(60)), ..RunConfig::default() });
    let MachineEngine::Jit(jit) = &machine.engine else { bail!("the machine has no translator") };
    let symbols = popek::machine::symbols::Symbols::from_elf(&image);
    let blocks = match at {
        Some(text) => {
            let eip = symbols
                .parse_address(&text)
                .ok_or_else(|| anyhow!("`{text}` is neither an address nor a symbol of the kernel"))?;
            let block = jit.block_holding(eip).ok_or_else(|| {
                anyhow!("no translated block holds {} (did the guest run it?)", symbols.annotate(eip))
            })?;
            vec![block]
        }
        None => jit.hottest_blocks(hottest),
    };
    let mut text =
        format!("popek explain {kernel}: {} instructions, stopped: {}\n", machine.stats.retired, stop_text(&stop));
    text.push_str("treatments: ident = host twin; rewritten = inline soft-TLB memory access;\n");
    text.push_str("            callout = the VMM's handler; helper = the interpreter's handler\n");
    for b in blocks {
        text.push('\n');
        if let Some(name) = symbols.describe(b.eip) {
            text.push_str(&format!("<{name}>\n"));
        }
        text.push_str(&jit.explain_block(b));
    }
    write_stdout(&text)
}

/// Writes to stdout; a reader that went away (`popek explain … | head`) is not an error.
fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("cannot write to stdout"),
    }
}

/// A stop reason in words, as `--stats` and `popek bench` print it.
fn stop_text(stop: &StopReason) -> String {
    match stop {
        StopReason::Exit(v) => format!("exit status {v}"),
        StopReason::Unsupported(_) => "unsupported instruction".into(),
        StopReason::Quit => "quit at the console".into(),
        StopReason::Interrupted => "interrupted (Ctrl-C)".into(),
        StopReason::TripleFault(_) => "triple fault".into(),
        other => format!("{other:?}"),
    }
}

fn guests(extract: Option<&Path>) -> Result<()> {
    match extract {
        None => {
            let list: String =
                popek::guests::GUESTS.iter().map(|g| format!("{:<12} {}\n", g.name, g.description)).collect();
            write_stdout(&list)?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            for g in popek::guests::GUESTS {
                let write = |ext: &str, bytes: &[u8]| {
                    let p = dir.join(format!("{}.{ext}", g.name));
                    std::io::Write::write_all(&mut files::create_output("guest file", &p)?, bytes)
                        .with_context(|| format!("cannot write {}", p.display()))
                };
                write("elf", g.elf)?;
                write("cmdline", g.cmdline.as_bytes())?;
                write("expected", g.expected_output.as_bytes())?;
                if let Some(disk) = g.disk {
                    write("img", &disk())?;
                }
                note!("wrote {}", dir.join(format!("{}.elf", g.name)).display());
            }
        }
    }
    Ok(())
}

/// `popek lab list` and `popek lab check N`: the report on stdout; exit status 0 if every
/// test passed, 1 if one failed (a bad lab number or a missing solution is an error: 2).
fn run_lab(command: &LabCommand) -> Result<ExitCode> {
    match command {
        LabCommand::List => write_stdout(&lab::list()).map(|()| ExitCode::SUCCESS),
        LabCommand::Check { lab, solution } => {
            let report = lab::check(*lab, solution.as_deref())?;
            write_stdout(&report.text)?;
            Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}

/// `popek demo`: a counting loop on a bare CPU, its block as the translator treats it
/// (`explain`'s view of a guest block, without the host code), then the loop under the
/// translator and under the interpreter, each checked against the result computed in Rust.
fn run_demo(iterations: u32) -> Result<()> {
    use popek::cpu::state::gpr::{EAX, EDX};
    use popek::demo;
    use popek::interp::testing::TestBox;
    let code = demo::counting_loop(iterations).context("assembling the demo")?;
    say!("popek demo: a counting loop at {:#x}, {} bytes of 32-bit code", demo::CODE_BASE, code.len());
    say!("its first block as the translator treats it (`popek explain` adds the host code):");
    say!();
    let mut shown = TestBox::new(&code);
    let listing =
        popek::jit::explain_current(&mut shown.cpu, &mut shown.bus).map_err(|e| anyhow!("decoding the demo: {e:?}"))?;
    // Host code is indented by eight spaces; the guest's lines and the block's header are not.
    for line in listing.lines().filter(|l| !l.starts_with("    ")) {
        say!("{line}");
    }
    say!();
    let expected = demo::counting_loop_expected(iterations);
    let mut jit = popek::jit::Jit::new(popek::jit::DEFAULT_CODE_CACHE).context("the translator's code cache")?;
    let mut t = TestBox::new(&code);
    let started = Instant::now();
    let mut retired = 0u64;
    while !t.cpu.state.halted {
        retired +=
            u64::from(jit.run(&mut t.cpu, &mut t.bus, 1 << 20, &|_| 0).map_err(|e| anyhow!("guest stopped: {e:?}"))?);
    }
    let jit_secs = started.elapsed().as_secs_f64().max(1e-9);
    let jit_result = (t.cpu.state.gpr[EAX], t.cpu.state.gpr[EDX]);
    say!(
        "translator:  {retired} instructions, {} blocks translated, {:.3} s, {:.1} MIPS",
        jit.stats.translated,
        jit_secs,
        retired as f64 / jit_secs / 1e6
    );
    let mut t = TestBox::new(&code);
    let started = Instant::now();
    let retired = t.run(usize::MAX).map_err(|e| anyhow!("guest stopped: {e:?}"))?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let interp_result = (t.cpu.state.gpr[EAX], t.cpu.state.gpr[EDX]);
    say!(
        "interpreter: {retired} instructions in {} blocks, {:.3} s, {:.1} MIPS ({:.1}x slower)",
        t.interp.stats.blocks,
        secs,
        retired as f64 / secs / 1e6,
        secs / jit_secs
    );
    for (engine, (eax, edx)) in [("translator", jit_result), ("interpreter", interp_result)] {
        let verdict = if (eax, edx) == expected { "ok" } else { "MISMATCH" };
        say!(
            "{engine:<12} eax={eax:#010x} edx={edx:#010x} (expected {:#010x} {:#010x}: {verdict})",
            expected.0,
            expected.1
        );
    }
    anyhow::ensure!(jit_result == expected && interp_result == expected, "demo computed a wrong result");
    Ok(())
}
