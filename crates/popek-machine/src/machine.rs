//! The machine: one CPU, its RAM, a device platform and an execution engine,
//! driven by the run loop.
//!
//! ```text
//!   loop:
//!     virtual time = retired instructions × ns per instruction
//!     bus.advance_to(time)               (timers fire, IRQ lines move)
//!     stop requested?  → Exit / Reset
//!     IF=1, no shadow, vector pending? → cpu.deliver_external(vector)
//!     halted?  → skip to the next timer deadline (or stop: nothing can wake it)
//!     engine.run_block()                 (interpreter, JIT or trap engine: the same blocks)
//! ```
//!
//! Interrupts and timers are only looked at between blocks, so a run is a pure
//! function of the guest image, the command line and the configuration.

use crate::console::{Console, ConsoleInput};
use crate::multiboot::{self, LoadError, Module};
use crate::{firmware, linux};
use popek_cpu::exception::{Event, Unsupported};
use popek_cpu::state::gpr::{EAX, EBX};
use popek_cpu::{Cpu, GuestMemory};
use popek_devices::clock::InstructionClock;
use popek_devices::pc::{self, PcConfig};
use popek_devices::sink::{ByteSink, SharedSink};
use popek_devices::storage::{BlockStorage, StorageError};
use popek_devices::{DeviceBus, StopRequest};
use popek_interp::Interpreter;
use popek_interp::trap::TrapEngine;
use popek_jit::Jit;
use popek_memory::MemoryError;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Why the machine stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The guest asked to exit (debug-exit port): the process exit status.
    Exit(i32),
    /// The guest reset the machine.
    Reset,
    /// Triple fault: the CPU shut down. Holds a register dump.
    TripleFault(String),
    /// HLT with interrupts disabled, or with nothing left that could wake the CPU.
    Halted,
    /// The instruction limit was reached.
    InstructionLimit,
    /// The wall-clock timeout expired.
    Timeout,
    /// The guest used something popek does not implement.
    Unsupported(Unsupported),
    /// The user quit at the console (Ctrl-A x).
    Quit,
    /// [`RunConfig::interrupt`] was raised (Ctrl-C at the host).
    Interrupted,
}

/// Default speed of the virtual CPU: 1,000 million instructions per virtual second.
pub const DEFAULT_INSNS_PER_SEC: u64 = 1_000_000_000;

/// What [`Machine::prelude`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prelude {
    /// The machine stopped.
    Stop(StopReason),
    /// The CPU slept in HLT up to the next timer deadline: nothing ran.
    Slept,
    /// A block may run, retiring at most about `room` instructions (a block that starts
    /// with less room still runs whole; only REP string elements are cut to fit).
    Run {
        /// Instructions until the run loop must look again (at least 1).
        room: u64,
    },
}

/// Run-loop settings.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Stop after this many guest instructions.
    pub max_insns: Option<u64>,
    /// Stop once virtual time reaches this many instruction periods, the time a halted CPU
    /// sleeps included ([`StopReason::InstructionLimit`]): a bound on a guest that halts
    /// with interrupts on and none to come, which `max_insns` never stops (the fuzz
    /// targets set it; a CLI user has `--timeout`).
    pub max_ticks: Option<u64>,
    /// Stop after this much wall-clock time (checked between blocks, so the run stops
    /// within a millisecond or so of it). A limit too large for the host's clock
    /// (e.g. [`Duration::MAX`]) means no limit.
    pub timeout: Option<Duration>,
    /// Guest instructions per virtual second (deterministic time).
    pub clock: InstructionClock,
    /// Input typed at the host terminal while the guest runs (an interactive run).
    pub console: Option<Console>,
    /// A flag that stops the run when set (the CLI's SIGINT handler sets it), looked at
    /// before every step like the timeout: the run ends with [`StopReason::Interrupted`].
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl RunConfig {
    /// True once [`RunConfig::interrupt`] is set.
    pub fn interrupted(&self) -> bool {
        self.interrupt.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            max_insns: None,
            max_ticks: None,
            timeout: None,
            clock: InstructionClock { insns_per_sec: DEFAULT_INSNS_PER_SEC },
            console: None,
            interrupt: None,
        }
    }
}

/// Counters of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Guest instructions retired.
    pub retired: u64,
    /// External interrupts delivered.
    pub interrupts: u64,
    /// Times the CPU slept in HLT until a timer.
    pub halts: u64,
    /// Virtual time at the end, in nanoseconds.
    pub virtual_ns: u64,
}

/// Which engine runs guest code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// The reference interpreter.
    Interp,
    /// The binary translator.
    #[default]
    Jit,
    /// The classic trap-and-emulate VMM, as it would run on x86 (and fail): the
    /// interpreter with the guest kernel deprivileged to ring 1
    /// ([`popek_interp::trap::TrapEngine`]).
    Trap,
}

/// The engine of a machine. All run the same decoded blocks and return to the run
/// loop between blocks, so a run is the same instruction for instruction in the
/// interpreter and the translator. The trap engine runs the same blocks too, but shows the
/// guest kernel what a deprivileged kernel sees, so its runs differ where that matters.
pub enum Engine {
    /// The reference interpreter.
    Interp(Interpreter),
    /// The binary translator.
    Jit(Box<Jit>),
    /// The trap-and-emulate VMM.
    Trap(Box<TrapEngine>),
}

/// How to build a PC.
pub struct MachineConfig {
    /// Guest RAM in bytes.
    pub ram_size: u64,
    /// Kernel command line (Multiboot).
    pub cmdline: String,
    /// Boot modules (Multiboot).
    pub modules: Vec<Module>,
    /// Initial ramdisk (a Linux bzImage's `--initrd`).
    pub initrd: Option<Vec<u8>>,
    /// Where COM1 (and debugcon) output goes.
    pub serial: Box<dyn ByteSink>,
    /// The execution engine.
    pub engine: EngineKind,
    /// Size of the translator's code cache in bytes (at least [`MIN_CODE_CACHE`]; the
    /// interpreter ignores it). When it fills up, its oldest region is evicted.
    pub code_cache: usize,
    /// The primary ATA channel's master and slave disks (see [`crate::disk`]).
    pub disks: [Option<Box<dyn BlockStorage>>; 2],
    /// Offer the paravirtual interface ([`popek_vmm::hypercall`]): the hypervisor CPUID
    /// leaves and VMCALL hypercalls. Off, the CPU is a bare P6 (VMCALL is #UD).
    pub paravirt: bool,
    /// Attach QEMU's `pc-testdev` (port 0xE0, memory at 0xFF000000), as kvm-unit-tests'
    /// runner does (`popek_devices::testdev`).
    pub testdev: bool,
}

/// Smallest code cache [`Machine::boot`] accepts: room for the largest block's
/// translation (64 instructions of up to a few hundred bytes of host code each) with
/// some to spare, so that every block fits (it may take several of the regions the
/// cache evicts, oldest first, to make room).
pub const MIN_CODE_CACHE: usize = 64 << 10;

/// Largest code cache [`Machine::boot`] accepts (translated code addresses its cache
/// with 32-bit offsets).
pub const MAX_CODE_CACHE: usize = 1 << 30;

impl Default for MachineConfig {
    /// 128 MiB of RAM, no command line or modules, output discarded, the translator with
    /// its default code cache, the paravirtual interface on.
    fn default() -> Self {
        MachineConfig {
            ram_size: 128 << 20,
            cmdline: String::new(),
            modules: Vec::new(),
            initrd: None,
            serial: Box::new(popek_devices::sink::NullSink),
            engine: EngineKind::default(),
            code_cache: popek_jit::DEFAULT_CODE_CACHE,
            disks: [None, None],
            paravirt: true,
            testdev: false,
        }
    }
}

impl std::fmt::Debug for MachineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineConfig")
            .field("ram_size", &self.ram_size)
            .field("cmdline", &self.cmdline)
            .field("modules", &self.modules.len())
            .field("engine", &self.engine)
            .field("code_cache", &self.code_cache)
            .field("paravirt", &self.paravirt)
            .field("testdev", &self.testdev)
            .field("disks", &self.disks.each_ref().map(|d| d.as_ref().map(|s| s.sectors())))
            .finish_non_exhaustive()
    }
}

/// Why a machine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// Guest RAM could not be set up.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// The kernel image is malformed (the cause is the error's source).
    #[error("cannot load the kernel")]
    Load(#[from] LoadError),
    /// The Linux bzImage cannot be booted (the cause is the error's source).
    #[error("cannot boot the Linux kernel")]
    Linux(#[from] linux::LinuxError),
    /// The translator could not start.
    #[error(transparent)]
    Jit(#[from] popek_jit::JitError),
    /// The requested code cache is outside [`MIN_CODE_CACHE`]..=[`MAX_CODE_CACHE`].
    #[error(
        "a code cache of {size} bytes is out of range: it must hold at least {MIN_CODE_CACHE} bytes \
         (64 KiB, the largest block's translation with room to spare) and at most {MAX_CODE_CACHE} (1 GiB)"
    )]
    CodeCacheSize {
        /// The size asked for, in bytes.
        size: usize,
    },
    /// A disk image could not be opened again (the debugger boots anew to go back).
    #[error("disk: {0}")]
    Disk(String),
    /// The debugger was attached to a machine it cannot boot again, so it cannot go back
    /// in time ([`crate::debug::Debugger::attach`]).
    #[error("this debugging session cannot go back in time (the machine cannot be booted again)")]
    NoReplay,
}

/// A CPU, the PC's devices and an engine.
pub struct Machine {
    /// The CPU (with its RAM).
    pub cpu: Cpu,
    /// Devices.
    pub bus: DeviceBus,
    /// The execution engine.
    pub engine: Engine,
    /// Counters.
    pub stats: RunStats,
    /// Virtual time in instruction periods: retired instructions plus the periods
    /// the CPU slept in HLT. The TSC counts these (one instruction per cycle).
    ticks: u64,
    /// External interrupts are held pending, not delivered (see
    /// [`Machine::set_interrupts_held`]).
    interrupts_held: bool,
}

impl Machine {
    /// Wires a machine together.
    pub fn new(cpu: Cpu, bus: DeviceBus) -> Self {
        Machine {
            cpu,
            bus,
            engine: Engine::Interp(Interpreter::new()),
            stats: RunStats::default(),
            ticks: 0,
            interrupts_held: false,
        }
    }

    /// Holds external interrupts pending instead of delivering them (a debugger's single
    /// step, as QEMU's gdb stub does by default), or lets them through again. A CPU halted
    /// with interrupts enabled still takes one: nothing else could wake it.
    pub fn set_interrupts_held(&mut self, held: bool) {
        self.interrupts_held = held;
    }

    /// Builds a standard PC and loads `image` into it: a Linux bzImage (boot protocol,
    /// with `config.initrd`) or a Multiboot kernel, with the CPU in that protocol's
    /// hand-over state (Multiboot: EAX = magic, EBX = information structure; Linux: ESI =
    /// the zero page, CS/DS = 0x10/0x18).
    pub fn boot(config: MachineConfig, image: &[u8]) -> Result<Machine, MachineError> {
        if !(MIN_CODE_CACHE..=MAX_CODE_CACHE).contains(&config.code_cache) {
            return Err(MachineError::CodeCacheSize { size: config.code_cache });
        }
        let mut mem = GuestMemory::new(config.ram_size)?;
        // The legacy VGA window is the bus's, not RAM.
        if mem.size() >= 0xc0000 {
            mem.add_hole(0xa0000, 0xc0000)?;
        }
        // What a BIOS leaves behind, then the kernel (which wins where they overlap).
        firmware::write(&mut mem, firmware::Platform::default());
        let linux = if linux::is_bzimage(image) {
            Some(linux::load(&mut mem, image, &config.cmdline, config.initrd.as_deref())?)
        } else {
            None
        };
        let multiboot = match linux {
            Some(_) => None,
            None => Some(multiboot::load(&mut mem, image, &config.cmdline, &config.modules)?),
        };
        // The BIOS area is ROM on a PC (and under QEMU, once SeaBIOS has run).
        if mem.size() >= 0x10_0000 {
            mem.set_rom(0xf_0000, 0x10_0000);
        }
        let mut cpu = Cpu::new(mem);
        cpu.paravirt = config.paravirt;
        if let Some(boot) = multiboot {
            cpu.state.eip = boot.entry;
            cpu.state.gpr[EAX] = multiboot::BOOTLOADER_MAGIC;
            cpu.state.gpr[EBX] = boot.info_addr;
        }
        if let Some(boot) = linux {
            linux_handover(&mut cpu.state, &boot);
        }
        // COM1 and debugcon (port 0xE9) share one output stream.
        let out = SharedSink::new(config.serial);
        let bus = pc::standard_bus(PcConfig {
            ram_size: config.ram_size,
            serial: Box::new(out.clone()),
            debugcon: Box::new(out),
            disks: config.disks,
            testdev: config.testdev,
            ..PcConfig::default()
        });
        let mut bus = bus;
        firmware::program_devices(&mut bus);
        let mut m = Machine::new(cpu, bus);
        match config.engine {
            EngineKind::Jit => m.engine = Engine::Jit(Box::new(Jit::new(config.code_cache)?)),
            EngineKind::Trap => m.engine = Engine::Trap(Box::new(TrapEngine::new())),
            EngineKind::Interp => {}
        }
        Ok(m)
    }

    /// The VGA text screen (80×25), as text.
    pub fn vga_text(&self) -> Option<String> {
        pc::vga_text(&self.bus)
    }

    /// Queues bytes for COM1's receiver (what a terminal would type).
    pub fn queue_serial_input(&mut self, bytes: &[u8]) {
        if let Some(uart) = pc::com1(&mut self.bus) {
            uart.queue_input(bytes);
        }
    }

    /// Makes every write to the disks durable (the CLI calls this on every way a run
    /// ends). All disks are flushed; the first error is returned.
    pub fn flush_disks(&mut self) -> Result<(), StorageError> {
        pc::ide(&mut self.bus).map_or(Ok(()), |ide| ide.flush_disks())
    }

    /// Host I/O errors of the disks since the last call: each was an ATA error to the
    /// guest, and none may go unreported.
    pub fn take_disk_errors(&mut self) -> Vec<StorageError> {
        pc::ide(&mut self.bus).map(|ide| ide.take_host_errors()).unwrap_or_default()
    }

    /// What the guest did with its disks (`None` without an IDE channel).
    pub fn disk_stats(&self) -> Option<popek_devices::ide::IdeStats> {
        let port = popek_memory::Port(popek_devices::ide::PRIMARY_PORTS.0);
        self.bus.port_device_at::<popek_devices::ide::Ide>(port).map(|ide| ide.stats())
    }

    /// Flushes the serial output.
    pub fn flush_output(&mut self) {
        self.bus.flush();
    }

    /// Virtual time so far, in instruction periods (retired instructions plus HLT sleep).
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Runs until something stops the machine.
    pub fn run(&mut self, cfg: &RunConfig) -> StopReason {
        self.run_observed(cfg, |_| ControlFlow::Continue(()))
    }

    /// [`Machine::run`], calling `observe` after every step of the run loop (a block, or
    /// the blocks the translator chained, an interrupt delivered, a HLT sleep), also the
    /// last: a tracer takes the logs the step filled there (the bus's accesses, the
    /// translator's translations, the CPU's deliveries). If `observe` breaks, the run stops
    /// with [`StopReason::Interrupted`] (unless the step stopped it already).
    pub fn run_observed(
        &mut self,
        cfg: &RunConfig,
        mut observe: impl FnMut(&mut Machine) -> ControlFlow<()>,
    ) -> StopReason {
        let stop = self.run_loop(cfg, &mut observe);
        self.stats.virtual_ns = cfg.clock.ns_at(self.ticks);
        stop
    }

    fn run_loop(&mut self, cfg: &RunConfig, observe: &mut impl FnMut(&mut Machine) -> ControlFlow<()>) -> StopReason {
        let watchdog = cfg.timeout.and_then(Watchdog::start);
        loop {
            if watchdog.as_ref().is_some_and(Watchdog::expired) {
                return StopReason::Timeout;
            }
            if cfg.interrupted() {
                return StopReason::Interrupted;
            }
            if let Some(console) = &cfg.console {
                match console.take() {
                    Some(ConsoleInput::Bytes(bytes)) => self.queue_serial_input(&bytes),
                    Some(ConsoleInput::Quit) => return StopReason::Quit,
                    None => {}
                }
            }
            let stepped = self.step(cfg);
            let go_on = observe(self);
            match stepped {
                // At an interactive console, a CPU halted with interrupts on waits for
                // what the user types (COM1's receive interrupt can wake it).
                Some(StopReason::Halted) if cfg.console.is_some() && self.cpu.interrupts_enabled() => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Some(stop) => return stop,
                None => {}
            }
            if go_on.is_break() {
                return StopReason::Interrupted;
            }
        }
    }

    /// One turn of the run loop: time, devices, interrupts, then one block (or a HLT
    /// sleep). `Some` when the machine stopped. Lockstep runs step two machines.
    pub fn step(&mut self, cfg: &RunConfig) -> Option<StopReason> {
        self.step_until(cfg, u64::MAX)
    }

    /// [`Machine::step`], where the interpreter stops its block once virtual time
    /// reaches `ticks` (lockstep runs stop the interpreter where the translator stopped,
    /// at any instruction boundary). Other engines run their block whole.
    pub fn step_until(&mut self, cfg: &RunConfig, ticks: u64) -> Option<StopReason> {
        let room = match self.prelude(cfg) {
            Prelude::Stop(stop) => return Some(stop),
            Prelude::Slept => return None,
            Prelude::Run { room } => room,
        };
        let before = self.engine_retired();
        let left = ticks.saturating_sub(self.ticks).max(1);
        let ran = match &mut self.engine {
            Engine::Interp(i) => i.run_block_part(
                &mut self.cpu,
                &mut self.bus,
                room.min(left),
                usize::try_from(left).unwrap_or(usize::MAX),
            ),
            Engine::Trap(t) => t.run_block_within(&mut self.cpu, &mut self.bus, room),
            Engine::Jit(j) => {
                let (ticks, clock) = (self.ticks, cfg.clock);
                j.run(&mut self.cpu, &mut self.bus, room, &|n| clock.ns_at(ticks + n))
            }
        };
        match ran {
            Ok(n) => {
                self.retire(n as u64);
                None
            }
            Err(e) => {
                // What retired before the event still counts (the engine's own counter
                // saw it: instructions of the block before an unsupported one, or blocks
                // the translator went on through).
                let n = self.engine_retired() - before;
                self.retire(n);
                Some(self.finish_event(e))
            }
        }
    }

    /// The engine's own count of instructions retired.
    fn engine_retired(&self) -> u64 {
        match &self.engine {
            Engine::Interp(i) => i.stats.retired,
            Engine::Trap(t) => t.stats.retired,
            Engine::Jit(j) => j.retired(),
        }
    }

    /// Counts `n` retired instructions (and as many instruction periods of virtual time).
    pub fn retire(&mut self, n: u64) {
        self.stats.retired += n;
        self.ticks += n;
    }

    /// The part of [`Machine::step`] before a block runs: virtual time to the devices, a
    /// stop the guest requested, a pending interrupt delivered, a HLT sleep, the instruction
    /// limit. When a block may run, how many instructions it may retire before the run loop
    /// must look again (`room`: the next timer deadline, the instruction limit).
    pub fn prelude(&mut self, cfg: &RunConfig) -> Prelude {
        match self.prelude_inner(cfg) {
            Ok(room) => Prelude::Run { room },
            Err(Some(stop)) => Prelude::Stop(stop),
            Err(None) => Prelude::Slept,
        }
    }

    fn prelude_inner(&mut self, cfg: &RunConfig) -> Result<u64, Option<StopReason>> {
        if self.cpu.state.shutdown {
            return Err(Some(StopReason::TripleFault(self.cpu.state.dump())));
        }
        let now = cfg.clock.ns_at(self.ticks);
        self.bus.advance_to(now);
        if let Some(stop) = self.bus.stop_request() {
            return Err(Some(match stop {
                StopRequest::DebugExit { .. } => StopReason::Exit(stop.exit_status().unwrap_or(1)),
                StopRequest::Reset => StopReason::Reset,
            }));
        }
        let held = self.interrupts_held && !self.cpu.state.halted;
        // An NMI first: IF does not mask it, the one-instruction shadows and an NMI
        // handler that has not returned yet do (SDM Vol. 3A 6.7.1, 6.8.3).
        if !held && !self.cpu.state.nmi_blocked && !self.cpu.state.interrupt_shadow && self.bus.take_nmi() {
            self.stats.interrupts += 1;
            if let Err(e) = self.cpu.deliver_nmi(&mut self.bus) {
                return Err(Some(self.finish_event(e)));
            }
            if self.cpu.state.shutdown {
                return Err(Some(StopReason::TripleFault(self.cpu.state.dump())));
            }
        }
        if !held
            && self.cpu.interrupts_enabled()
            && self.bus.interrupt_pending()
            && let Some(vector) = self.bus.acknowledge_interrupt()
        {
            self.stats.interrupts += 1;
            if let Err(e) = self.cpu.deliver_external(&mut self.bus, vector) {
                return Err(Some(self.finish_event(e)));
            }
            if self.cpu.state.shutdown {
                // The delivery faulted into a triple fault.
                return Err(Some(StopReason::TripleFault(self.cpu.state.dump())));
            }
        }
        if cfg.max_ticks.is_some_and(|max| self.ticks >= max) {
            return Err(Some(StopReason::InstructionLimit));
        }
        if self.cpu.state.halted {
            if !self.cpu.interrupts_enabled() {
                return Err(Some(StopReason::Halted));
            }
            return Err(match self.bus.next_deadline() {
                Some(t) if t > now => {
                    self.stats.halts += 1;
                    self.ticks = cfg.clock.insns_until(t).max(self.ticks + 1);
                    None
                }
                Some(_) => None,
                None => Some(StopReason::Halted),
            });
        }
        if cfg.max_insns.is_some_and(|max| self.stats.retired >= max) {
            return Err(Some(StopReason::InstructionLimit));
        }
        self.cpu.state.tsc = self.ticks;
        // Instructions left before the run loop must look again: at the next timer
        // deadline or the instruction limit. The translator may chain blocks that far, and
        // a REP string instruction processes no more elements than fit (each element is an
        // instruction), in either engine.
        let mut room = match self.bus.next_deadline() {
            Some(t) => cfg.clock.insns_until(t).saturating_sub(self.ticks),
            None => u64::MAX,
        };
        if let Some(max) = cfg.max_insns {
            room = room.min(max.saturating_sub(self.stats.retired));
        }
        if let Some(max) = cfg.max_ticks {
            room = room.min(max.saturating_sub(self.ticks));
        }
        Ok(room.max(1))
    }

    /// The stop reason for an event that ended a block run (unsupported instruction,
    /// triple fault).
    pub fn finish_event(&self, e: Event) -> StopReason {
        match e {
            Event::Unsupported(u) => StopReason::Unsupported(u),
            Event::Exception(x) => StopReason::Unsupported(Unsupported {
                what: format!("exception {x} escaped delivery"),
                eip: self.cpu.state.eip,
                bytes: Vec::new(),
            }),
        }
    }
}

/// The CPU state of the Linux boot protocol's 32-bit entry (boot.rst, "32-bit Boot
/// Protocol"): flat `__BOOT_CS` (0x10) and `__BOOT_DS` (0x18) from the loader's GDT, ESI at
/// the zero page, EBP, EDI and EBX zero, interrupts off, paging off.
fn linux_handover(s: &mut popek_cpu::CpuState, boot: &linux::LinuxBoot) {
    use popek_cpu::state::{SegmentCache, access};
    let code = SegmentCache::flat(access::P | access::S | access::CODE | access::RW | access::ACCESSED, linux::BOOT_CS);
    let data = SegmentCache::flat(access::P | access::S | access::RW | access::ACCESSED, linux::BOOT_DS);
    s.seg = [data, code, data, data, data, data];
    s.gdtr.base = boot.gdt.0;
    s.gdtr.limit = boot.gdt.1;
    s.gpr = [0; 8];
    s.gpr[popek_cpu::state::gpr::ESI] = boot.boot_params;
    s.eip = boot.entry;
}

/// The wall-clock limit of a run (`RunConfig::timeout`), looked at before every step of
/// the run loop.
///
/// A thread sleeps until the deadline and then raises a flag, so the check costs one
/// relaxed load, not a clock read, and the run stops one step after the deadline. A step
/// is short: one block (or a part of a REP string instruction, at most
/// [`popek_cpu::REP_BUDGET`] elements) for the interpreter, and for the translator one
/// call of chained code, which [`popek_jit::MAX_BUDGET`] keeps well under a millisecond.
/// The flag only decides when the run stops; the guest never sees it.
pub(crate) enum Watchdog {
    /// The usual case: a flag the thread sets at the deadline. Dropping the sender wakes
    /// the thread when the run ends first, and it ends without setting the flag.
    Thread {
        /// Set at the deadline.
        expired: Arc<AtomicBool>,
        /// Dropped with the watchdog.
        _cancel: mpsc::Sender<()>,
    },
    /// No thread could be started: the clock is read at every check instead.
    Clock(Instant),
}

impl Watchdog {
    /// A watchdog for `limit` from now; `None` if the deadline is beyond what the host's
    /// clock can represent (in effect, no limit).
    pub(crate) fn start(limit: Duration) -> Option<Watchdog> {
        let deadline = Instant::now().checked_add(limit)?;
        let expired = Arc::new(AtomicBool::new(false));
        let (cancel, cancelled) = mpsc::channel::<()>();
        let flag = Arc::clone(&expired);
        let thread = std::thread::Builder::new().name("popek-timeout".into()).spawn(move || {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(left) {
                flag.store(true, Ordering::Relaxed);
            }
        });
        Some(match thread {
            Ok(_) => Watchdog::Thread { expired, _cancel: cancel },
            Err(_) => Watchdog::Clock(deadline),
        })
    }

    /// True once the deadline has passed.
    pub(crate) fn expired(&self) -> bool {
        match self {
            Watchdog::Thread { expired, .. } => expired.load(Ordering::Relaxed),
            Watchdog::Clock(deadline) => Instant::now() >= *deadline,
        }
    }
}
