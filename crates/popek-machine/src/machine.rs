//! The machine: one CPU, its RAM, a device platform and an execution engine,
//! driven by the run loop.
//!
//! ```text
//!   loop:
//!     virtual time = retired instructions × ns per instruction
//!     platform.advance_to(time)          (timers fire, IRQ lines move)
//!     stop requested?  → Exit / Reset
//!     IF=1, no shadow, vector pending? → cpu.deliver_external(vector)
//!     halted?  → skip to the next timer deadline (or stop: nothing can wake it)
//!     engine.run_block()                 (interpreter today, JIT later)
//! ```
//!
//! Interrupts and timers are only looked at between blocks, so a run is a pure
//! function of the guest image, the command line and the configuration.

use popek_cpu::exception::{Event, Unsupported};
use popek_cpu::{Bus, Cpu};
use popek_interp::Interpreter;
use std::time::{Duration, Instant};

/// What a device asked the machine to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceStop {
    /// The guest wrote to the debug-exit port: end with this process exit status.
    Exit(i32),
    /// The guest pulsed the reset line (e.g. i8042 command 0xFE).
    Reset,
}

/// Everything outside the CPU, as the run loop sees it.
pub trait Platform: Bus {
    /// Brings timers up to virtual time `ns`.
    fn advance_to(&mut self, ns: u64);
    /// True if an interrupt is pending at the CPU's INTR pin.
    fn interrupt_pending(&self) -> bool;
    /// INTA cycle: the vector of the highest-priority pending interrupt.
    fn acknowledge_interrupt(&mut self) -> Option<u8>;
    /// The next virtual time at which a timer will change state, if any.
    fn next_deadline(&self) -> Option<u64>;
    /// A stop a device requested, if any.
    fn stop_request(&self) -> Option<DeviceStop>;
}

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
}

/// Run-loop settings.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Stop after this many guest instructions.
    pub max_insns: Option<u64>,
    /// Stop after this much wall-clock time.
    pub timeout: Option<Duration>,
    /// Virtual nanoseconds per retired instruction (deterministic time).
    pub ns_per_insn: u64,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig { max_insns: None, timeout: None, ns_per_insn: 1 }
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

/// A CPU, a platform and an engine.
pub struct Machine<P: Platform> {
    /// The CPU (with its RAM).
    pub cpu: Cpu,
    /// Devices.
    pub platform: P,
    /// The interpreter.
    pub interp: Interpreter,
    /// Counters.
    pub stats: RunStats,
    /// Virtual time, ns.
    now: u64,
}

impl<P: Platform> Machine<P> {
    /// Wires a machine together.
    pub fn new(cpu: Cpu, platform: P) -> Self {
        Machine { cpu, platform, interp: Interpreter::new(), stats: RunStats::default(), now: 0 }
    }

    /// Runs until something stops the machine.
    pub fn run(&mut self, cfg: &RunConfig) -> StopReason {
        let started = Instant::now();
        let mut blocks = 0u64;
        loop {
            self.platform.advance_to(self.now);
            if let Some(stop) = self.platform.stop_request() {
                return self.finish(match stop {
                    DeviceStop::Exit(code) => StopReason::Exit(code),
                    DeviceStop::Reset => StopReason::Reset,
                });
            }
            if self.cpu.interrupts_enabled()
                && self.platform.interrupt_pending()
                && let Some(vector) = self.platform.acknowledge_interrupt()
            {
                self.stats.interrupts += 1;
                if let Err(e) = self.cpu.deliver_external(&mut self.platform, vector) {
                    return self.finish_event(e);
                }
            }
            if self.cpu.state.halted {
                if !self.cpu.interrupts_enabled() {
                    return self.finish(StopReason::Halted);
                }
                match self.platform.next_deadline() {
                    Some(t) if t > self.now => {
                        self.stats.halts += 1;
                        self.now = t;
                        continue;
                    }
                    Some(_) => continue,
                    None => return self.finish(StopReason::Halted),
                }
            }
            if cfg.max_insns.is_some_and(|max| self.stats.retired >= max) {
                return self.finish(StopReason::InstructionLimit);
            }
            blocks += 1;
            if blocks.is_multiple_of(1024) && cfg.timeout.is_some_and(|t| started.elapsed() >= t) {
                return self.finish(StopReason::Timeout);
            }
            self.cpu.state.tsc = self.now;
            match self.interp.run_block(&mut self.cpu, &mut self.platform) {
                Ok(n) => {
                    self.stats.retired += n as u64;
                    self.now += n as u64 * cfg.ns_per_insn;
                }
                Err(e) => return self.finish_event(e),
            }
        }
    }

    fn finish_event(&mut self, e: Event) -> StopReason {
        self.finish(match e {
            Event::TripleFault => StopReason::TripleFault(self.cpu.state.dump()),
            Event::Unsupported(u) => StopReason::Unsupported(u),
            Event::Exception(x) => StopReason::Unsupported(Unsupported {
                what: format!("exception {x} escaped delivery"),
                eip: self.cpu.state.eip,
                bytes: Vec::new(),
            }),
        })
    }

    fn finish(&mut self, r: StopReason) -> StopReason {
        self.stats.virtual_ns = self.now;
        r
    }
}
