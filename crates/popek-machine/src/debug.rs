//! The debugger's engine: run a machine an instruction, a block or up to a breakpoint at a
//! time, watch memory, and go back in time.
//!
//! The debugger runs the guest with the reference interpreter's blocks, cut into parts
//! where it must stop (a breakpoint inside a block, a watched access, a step count). A
//! block run in parts behaves exactly as the same block run whole
//! ([`popek_interp::execute_block_part`]): nothing looks at time or interrupts between two
//! parts of a block. So a stop changes nothing in what follows, and a run is the same
//! whether it is stepped, continued or replayed.
//!
//! That is what makes reverse execution exact. Every stop has a **position**: the
//! instructions executed since boot, plus the attempts that raised an exception instead
//! (each is a step a user sees). Going back to position `p` boots the machine again and
//! runs `p` steps: runs are deterministic (virtual time counts instructions), so the state
//! is the one the guest had then. Reverse continue replays the run from boot up to the
//! present, with the same breakpoints and watchpoints, and goes to the last one hit.
//!
//! A stop is always *before* an instruction: the run loop's work (device time, a pending
//! interrupt delivered, a HLT sleep) is done, so EIP is the next instruction to run (the
//! first of the handler if an interrupt was just delivered).

use crate::machine::{Engine, Machine, MachineError, Prelude, RunConfig, StopReason};
use popek_cpu::Cpu;
use popek_cpu::block::Block;
use popek_cpu::iced_x86::{InstructionInfoFactory, OpAccess, Register};
use popek_cpu::state::{Seg, cr0, cr4};
use popek_cpu::{Handler, PhysAddr};
use popek_interp::{Interpreter, dispatch};
use std::rc::Rc;

/// How the debugger builds the machine again to go back in time: a fresh boot of the
/// same kernel, with the same configuration (engine: the interpreter).
pub type Boot = Box<dyn FnMut() -> Result<Machine, MachineError>>;

/// Where a breakpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breakpoint {
    /// A linear (virtual) address: the instruction at CS base + EIP.
    Virtual(u32),
    /// A physical address: the instruction whose first byte is there, through any mapping.
    Physical(u32),
}

/// Which accesses a watchpoint stops on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchKind {
    /// Writes.
    Write,
    /// Reads.
    Read,
    /// Reads and writes.
    Access,
}

/// A watched range of linear addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watchpoint {
    /// First linear address.
    pub addr: u32,
    /// Bytes watched (1 to 4096).
    pub len: u32,
    /// What stops.
    pub kind: WatchKind,
}

/// Why the debugger stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DebugStop {
    /// The steps asked for have run.
    Stepped,
    /// The current block ran to its end.
    BlockEnd,
    /// A breakpoint is at the next instruction (it has not run).
    Breakpoint(Breakpoint),
    /// The instruction just run made a watched access: the watchpoint, the linear address
    /// accessed, and whether it wrote.
    Watchpoint {
        /// The watchpoint that matched.
        watch: Watchpoint,
        /// The first linear address of the access.
        addr: u32,
        /// True for a write, false for a read.
        write: bool,
    },
    /// The machine stopped (the guest exited, halted for good, triple-faulted, …); it
    /// cannot go on, but it can go back.
    Machine(StopReason),
    /// [`RunConfig::interrupt`] was raised (Ctrl-C).
    Interrupted,
}

/// The block being run in parts.
struct Tail {
    block: Rc<Block<Handler>>,
    /// Index of the next instruction to run.
    next: usize,
    /// Instructions left before the run loop must look again (as the run loop computed
    /// it before the block, minus what the parts so far retired).
    room: u64,
}

/// What the debugger may run before it stops by itself.
#[derive(Clone, Copy, Debug)]
struct Budget {
    /// Steps left (None: no limit).
    steps: Option<u64>,
    /// Stop at the end of the current block.
    block: bool,
    /// Stop at breakpoints and watchpoints.
    stops: bool,
    /// The run resumes from a stop: a breakpoint at the first instruction does not stop
    /// it again.
    resume: bool,
}

/// A machine under a debugger. See the module documentation.
pub struct Debugger {
    /// The machine (its engine is the interpreter).
    pub machine: Machine,
    boot: Boot,
    cfg: RunConfig,
    /// The block being run in parts, when a stop fell inside one.
    tail: Option<Tail>,
    /// Room for the next block, when the run loop's work for it is done.
    ready: Option<u64>,
    steps: u64,
    stopped: Option<StopReason>,
    breakpoints: Vec<Breakpoint>,
    watchpoints: Vec<Watchpoint>,
    info: InstructionInfoFactory,
}

impl Debugger {
    /// A debugger on a machine from `boot` (called again for every trip back in time),
    /// stopped before the first instruction. `cfg` holds the clock, the instruction limit
    /// and the interrupt flag; its timeout applies to each command that runs the guest.
    pub fn new(mut boot: Boot, cfg: RunConfig) -> Result<Debugger, MachineError> {
        let machine = boot()?;
        Ok(Debugger::on(machine, boot, cfg))
    }

    /// A debugger on `machine`, stopped before its first instruction.
    fn on(machine: Machine, boot: Boot, cfg: RunConfig) -> Debugger {
        let mut d = Debugger {
            machine,
            boot,
            cfg,
            tail: None,
            ready: None,
            steps: 0,
            stopped: None,
            breakpoints: Vec::new(),
            watchpoints: Vec::new(),
            info: InstructionInfoFactory::new(),
        };
        d.start();
        d
    }

    /// A debugger on a machine that is already built (at its first instruction), for a
    /// front-end that does not go back in time (the gdb stub of `popek run --gdb`, whose
    /// disks are written as in any run): [`Debugger::goto`] to an earlier position and the
    /// reverse commands fail with [`MachineError::NoReplay`]. No delivery log is kept.
    pub fn attach(machine: Machine, cfg: RunConfig) -> Debugger {
        let mut d = Debugger::on(machine, Box::new(|| Err(MachineError::NoReplay)), cfg);
        d.machine.cpu.deliveries = None;
        d
    }

    /// Puts the machine just booted under the debugger: the interpreter as its engine, the
    /// delivery log on, position 0, settled before the first instruction.
    fn start(&mut self) {
        self.machine.engine = Engine::Interp(Interpreter::new());
        self.machine.cpu.deliveries = Some(Vec::new());
        self.tail = None;
        self.ready = None;
        self.steps = 0;
        self.stopped = None;
        self.settle();
    }

    /// The position: steps run since boot (instructions, and attempts that raised an
    /// exception instead).
    pub fn position(&self) -> u64 {
        self.steps
    }

    /// True if the next instruction starts a block: the last stop did not fall inside one
    /// (a tracer says `block` there).
    pub fn at_block_start(&self) -> bool {
        self.tail.as_ref().is_none_or(|t| t.next == 0)
    }

    /// Why the machine stopped, once it has.
    pub fn stopped(&self) -> Option<&StopReason> {
        self.stopped.as_ref()
    }

    /// The CPU.
    pub fn cpu(&self) -> &Cpu {
        &self.machine.cpu
    }

    /// The CPU, to change registers or memory.
    pub fn cpu_mut(&mut self) -> &mut Cpu {
        &mut self.machine.cpu
    }

    /// The interrupts and exceptions delivered since the last call, oldest first.
    pub fn take_deliveries(&mut self) -> Vec<popek_cpu::interrupt::Delivery> {
        self.machine.cpu.deliveries.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The breakpoints.
    pub fn breakpoints(&self) -> &[Breakpoint] {
        &self.breakpoints
    }

    /// Adds a breakpoint (false if it was there already).
    pub fn add_breakpoint(&mut self, b: Breakpoint) -> bool {
        if self.breakpoints.contains(&b) {
            return false;
        }
        self.breakpoints.push(b);
        true
    }

    /// Removes a breakpoint (false if there was none).
    pub fn remove_breakpoint(&mut self, b: Breakpoint) -> bool {
        let before = self.breakpoints.len();
        self.breakpoints.retain(|x| *x != b);
        self.breakpoints.len() != before
    }

    /// The watchpoints.
    pub fn watchpoints(&self) -> &[Watchpoint] {
        &self.watchpoints
    }

    /// Adds a watchpoint (false if the same one was there already).
    pub fn add_watchpoint(&mut self, w: Watchpoint) -> bool {
        if self.watchpoints.contains(&w) {
            return false;
        }
        self.watchpoints.push(w);
        true
    }

    /// Removes a watchpoint (false if there was none).
    pub fn remove_watchpoint(&mut self, w: Watchpoint) -> bool {
        let before = self.watchpoints.len();
        self.watchpoints.retain(|x| *x != w);
        self.watchpoints.len() != before
    }

    /// Runs `n` steps (instructions), stopping early at a breakpoint or watchpoint.
    pub fn step(&mut self, n: u64) -> DebugStop {
        self.advance(Budget { steps: Some(n), block: false, stops: true, resume: true })
    }

    /// Runs to the end of the current block (stopping early at a breakpoint or watchpoint).
    /// A block whose fetch faults ends there, at the handler's first instruction, as one
    /// whose instruction faults does.
    pub fn step_block(&mut self) -> DebugStop {
        self.advance(Budget { steps: None, block: true, stops: true, resume: true })
    }

    /// Runs until a breakpoint, a watchpoint or the machine stops.
    pub fn cont(&mut self) -> DebugStop {
        self.advance(Budget { steps: None, block: false, stops: true, resume: true })
    }

    /// Runs at most `n` steps, stopping early at a breakpoint or watchpoint, like
    /// [`Debugger::step`]; unless `resume`, a breakpoint at the next instruction stops it
    /// before anything runs. A front-end that must look at something between two parts of
    /// one long run (the gdb stub, for a Ctrl-C from gdb) runs the first part with
    /// `resume` as it likes and the next ones without, so that a breakpoint where a part
    /// ended is not passed over.
    pub fn run_for(&mut self, n: u64, resume: bool) -> DebugStop {
        self.advance(Budget { steps: Some(n), block: false, stops: true, resume })
    }

    /// Runs `n` steps as [`Debugger::step`] does, with external interrupts held pending
    /// (QEMU's gdb stub steps so by default: a step goes to the next instruction of the
    /// code being stepped, not into an interrupt handler). A pending interrupt is delivered
    /// before the next instruction of a later command that runs the guest (and by a step
    /// of a CPU halted in HLT, which nothing else could wake). A run with such steps is no
    /// longer the run of the same guest without them: going back in time replays the
    /// latter.
    pub fn step_holding_interrupts(&mut self, n: u64) -> DebugStop {
        self.machine.set_interrupts_held(true);
        let stop = self.step(n);
        self.machine.set_interrupts_held(false);
        // The run loop's work for the next instruction is done again when the guest next
        // runs, with interrupts let through.
        if self.tail.is_none() {
            self.ready = None;
        }
        stop
    }

    /// Runs until the instruction at linear address `addr` is next (or another stop).
    pub fn run_to(&mut self, addr: u32) -> DebugStop {
        let b = Breakpoint::Virtual(addr);
        let added = self.add_breakpoint(b);
        let stop = self.cont();
        if added {
            self.remove_breakpoint(b);
        }
        stop
    }

    /// Goes to position `target`: forward by running, back by booting again and
    /// replaying. Breakpoints and watchpoints do not stop it.
    pub fn goto(&mut self, target: u64) -> Result<DebugStop, MachineError> {
        if target < self.steps {
            self.reboot()?;
        }
        let left = target - self.steps;
        if left == 0 {
            return Ok(DebugStop::Stepped);
        }
        Ok(self.advance(Budget { steps: Some(left), block: false, stops: false, resume: true }))
    }

    /// Back one step.
    pub fn reverse_step(&mut self) -> Result<DebugStop, MachineError> {
        self.goto(self.steps.saturating_sub(1))
    }

    /// Back to the last breakpoint or watchpoint hit before the present position (or to
    /// the start, if there was none: `Ok(None)`).
    pub fn reverse_continue(&mut self) -> Result<Option<DebugStop>, MachineError> {
        let now = self.steps;
        self.reboot()?;
        let mut last: Option<(u64, DebugStop)> = None;
        // Forward again with the same stops (a run resumes past the one it stopped at),
        // noting each one before the present.
        while self.steps < now {
            match self.advance(Budget { steps: Some(now - self.steps), block: false, stops: true, resume: true }) {
                stop @ (DebugStop::Breakpoint(_) | DebugStop::Watchpoint { .. }) if self.steps < now => {
                    last = Some((self.steps, stop));
                }
                _ => break,
            }
        }
        match last {
            Some((at, stop)) => {
                self.goto(at)?;
                Ok(Some(stop))
            }
            None => {
                self.goto(0)?;
                Ok(None)
            }
        }
    }

    /// Writes guest memory at a linear address (see [`poke`]). A write into the block
    /// being run in parts makes its rest be decoded again. False if unmapped or not RAM.
    pub fn poke(&mut self, lin: u32, value: u8) -> bool {
        let ok = poke(&mut self.machine.cpu, lin, value);
        if !self.machine.cpu.code_writes.is_empty() {
            self.drop_tail();
        }
        ok
    }

    /// Sets EIP (a debugger's register write): the next instruction is the one there, also
    /// when the stop fell inside a block.
    pub fn set_eip(&mut self, eip: u32) {
        if eip != self.machine.cpu.state.eip {
            self.machine.cpu.state.eip = eip;
            self.drop_tail();
        }
    }

    /// Loads segment register `seg` with selector `sel` (a debugger's register write):
    /// the cache from the descriptor the selector names, read without side effects (no
    /// Accessed bit set), with no privilege check. The descriptor must be present and fit
    /// the register: code for CS (whose RPL becomes the CPL), writable data for SS,
    /// readable for the others (a null selector leaves those unusable). In real mode the
    /// base is the selector times 16. Loading the selector already there changes nothing.
    pub fn set_segment(&mut self, seg: Seg, sel: u16) -> Result<(), &'static str> {
        let cpu = &self.machine.cpu;
        if sel == cpu.state.seg(seg).selector {
            return Ok(());
        }
        let mut cache = *cpu.state.seg(seg);
        if !cpu.protected_mode() {
            cache.selector = sel;
            cache.base = u32::from(sel) << 4;
        } else if sel & !3 == 0 {
            if matches!(seg, Seg::Cs | Seg::Ss) {
                return Err("a null selector cannot be loaded into CS or SS");
            }
            cache = popek_cpu::state::SegmentCache { selector: sel, access: 0, base: 0, limit: 0 };
        } else {
            let addr = cpu.descriptor_address(sel).ok_or("the selector is beyond its descriptor table")?;
            let mut bytes = [0u8; 8];
            for (i, b) in (0u32..).zip(bytes.iter_mut()) {
                *b = peek(cpu, addr.wrapping_add(i)).ok_or("the descriptor is not in RAM")?;
            }
            let lo = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            let hi = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
            cache = popek_cpu::state::SegmentCache::from_descriptor(sel, lo, hi);
            use popek_cpu::state::access;
            let fits = match seg {
                Seg::Cs => cache.is_code(),
                Seg::Ss => cache.access & (access::S | access::CODE | access::RW) == (access::S | access::RW),
                _ => cache.access & access::S != 0 && (!cache.is_code() || cache.access & access::RW != 0),
            };
            if !fits {
                return Err("the descriptor does not fit that segment register");
            }
            if !cache.usable() {
                return Err("the segment is not present");
            }
        }
        let state = &mut self.machine.cpu.state;
        state.seg[seg as usize] = cache;
        if seg == Seg::Cs && self.machine.cpu.protected_mode() {
            self.machine.cpu.state.cpl = (sel & 3) as u8;
        }
        self.drop_tail();
        Ok(())
    }

    /// Forgets the block being run in parts: the next instruction is looked up afresh
    /// (its room stays the one the run loop gave).
    fn drop_tail(&mut self) {
        if let Some(t) = self.tail.take() {
            self.ready = Some(t.room);
        }
    }

    fn reboot(&mut self) -> Result<(), MachineError> {
        self.machine = (self.boot)()?;
        self.start();
        Ok(())
    }

    /// Does the run loop's work up to the next instruction (device time, interrupts, HLT
    /// sleeps), so that a stop shows the instruction that runs next.
    fn settle(&mut self) {
        if self.tail.is_some() || self.ready.is_some() || self.stopped.is_some() {
            return;
        }
        loop {
            if self.cfg.interrupted() {
                return;
            }
            match self.machine.prelude(&self.cfg) {
                Prelude::Stop(s) => {
                    self.stopped = Some(s);
                    return;
                }
                Prelude::Slept => {}
                Prelude::Run { room } => {
                    self.ready = Some(room);
                    return;
                }
            }
        }
    }

    fn advance(&mut self, budget: Budget) -> DebugStop {
        let mut left = budget.steps;
        let mut first = budget.resume;
        let watchdog = self.cfg.timeout.and_then(crate::machine::Watchdog::start);
        loop {
            // Every stop is after the run loop's work for the next instruction.
            self.settle();
            if let Some(s) = &self.stopped {
                return DebugStop::Machine(s.clone());
            }
            if left == Some(0) {
                return DebugStop::Stepped;
            }
            if self.cfg.interrupted() {
                return DebugStop::Interrupted;
            }
            if watchdog.as_ref().is_some_and(crate::machine::Watchdog::expired) {
                return DebugStop::Machine(StopReason::Timeout);
            }
            let Some(room) = self.tail.as_ref().map(|t| t.room).or(self.ready) else { continue };
            if self.tail.is_none() {
                // The block about to run.
                self.ready = None;
                let Engine::Interp(interp) = &mut self.machine.engine else { unreachable!("set in new") };
                if !self.machine.cpu.code_writes.is_empty() {
                    interp.cache.invalidate_written(&mut self.machine.cpu);
                }
                let looked = interp
                    .cache
                    .lookup(&mut self.machine.cpu, &mut self.machine.bus, &mut |insn, _| dispatch::handler_for(insn));
                match looked {
                    Ok(b) => self.tail = Some(Tail { block: b.clone(), next: 0, room }),
                    Err(e) => {
                        // A fetch fault: one step that delivers it.
                        interp.stats.exceptions += 1;
                        if let Err(ev) = self.machine.cpu.deliver_exception(&mut self.machine.bus, e) {
                            self.stopped = Some(self.machine.finish_event(ev));
                        }
                        self.steps += 1;
                        left = left.map(|l| l - 1);
                        first = false;
                        // The block ended there, as one whose instruction faults does.
                        if budget.block && self.stopped.is_none() {
                            self.settle();
                            return DebugStop::BlockEnd;
                        }
                        continue;
                    }
                }
            }
            let tail = self.tail.as_ref().expect("set above");
            let (block, next) = (Rc::clone(&tail.block), tail.next);
            // How far this part may go: to a breakpoint, one instruction if watching, the
            // steps left.
            let mut limit = block.insns.len() - next;
            if budget.stops {
                let cs_base = self.machine.cpu.state.seg(Seg::Cs).base;
                let at = block.insns[next..].iter().enumerate().find(|(k, d)| {
                    // The instruction a run resumes at is not stopped at again.
                    !(first && *k == 0) && self.breakpoint_at(&block, cs_base, d.insn.ip32()).is_some()
                });
                if let Some((k, d)) = at {
                    if k == 0 {
                        let bp = self.breakpoint_at(&block, cs_base, d.insn.ip32()).expect("found above");
                        return DebugStop::Breakpoint(bp);
                    }
                    limit = k;
                }
                if !self.watchpoints.is_empty() {
                    limit = 1;
                }
            }
            if let Some(l) = left {
                limit = limit.min(usize::try_from(l).unwrap_or(usize::MAX));
            }
            let watched = match budget.stops && !self.watchpoints.is_empty() {
                true => self.watched_access(&block.insns[next].insn),
                false => None,
            };
            let Engine::Interp(interp) = &mut self.machine.engine else { unreachable!("set in new") };
            let ran = popek_interp::execute_block_part(
                &mut self.machine.cpu,
                &mut self.machine.bus,
                &block,
                next,
                limit,
                room,
                &mut interp.stats,
            );
            first = false;
            let part = match ran {
                Ok(p) => p,
                Err(ev) => {
                    self.tail = None;
                    self.stopped = Some(self.machine.finish_event(ev));
                    continue;
                }
            };
            self.machine.retire(u64::from(part.retired));
            let steps = part.ran as u64 + u64::from(part.faulted);
            self.steps += steps;
            left = left.map(|l| l.saturating_sub(steps));
            if part.cut {
                let t = self.tail.as_mut().expect("set above");
                t.next += part.ran;
                t.room = t.room.saturating_sub(u64::from(part.retired)).max(1);
            } else {
                self.tail = None;
                let Engine::Interp(interp) = &mut self.machine.engine else { unreachable!("set in new") };
                if !self.machine.cpu.code_writes.is_empty() {
                    interp.cache.invalidate_written(&mut self.machine.cpu);
                }
            }
            if let Some((watch, addr, write)) = watched.filter(|_| part.ran == 1) {
                self.settle();
                return DebugStop::Watchpoint { watch, addr, write };
            }
            if budget.block && !part.cut {
                self.settle();
                return DebugStop::BlockEnd;
            }
        }
    }

    /// The breakpoint at the instruction at `eip` of `block`, if any.
    fn breakpoint_at(&self, block: &Block<Handler>, cs_base: u32, eip: u32) -> Option<Breakpoint> {
        let lin = cs_base.wrapping_add(eip);
        let phys = (block.key.phys & !0xfff) | (block.key.phys.wrapping_add(eip.wrapping_sub(block.eip)) & 0xfff);
        self.breakpoints.iter().copied().find(|b| match *b {
            Breakpoint::Virtual(a) => a == lin,
            Breakpoint::Physical(a) => block.pages[0] == block.pages[1] && a == phys,
        })
    }

    /// The watched access `insn` makes from the present state, if any: (watchpoint,
    /// linear address, write).
    fn watched_access(&mut self, insn: &popek_cpu::iced_x86::Instruction) -> Option<(Watchpoint, u32, bool)> {
        let state = &self.machine.cpu.state;
        let info = self.info.info(insn);
        for m in info.used_memory() {
            // iced adds the segment base (the callback gives it for a segment register).
            let Some(lin) = m.virtual_address(0, |r, _, _| register_value(state, r)) else { continue };
            let lin = u32::try_from(lin & 0xffff_ffff).unwrap_or_default();
            let len = u32::try_from(m.memory_size().size()).unwrap_or(1).max(1);
            let (read, write) = match m.access() {
                OpAccess::Read | OpAccess::CondRead => (true, false),
                OpAccess::Write | OpAccess::CondWrite => (false, true),
                OpAccess::ReadWrite | OpAccess::ReadCondWrite => (true, true),
                _ => (false, false),
            };
            for w in &self.watchpoints {
                let hit_kind = match w.kind {
                    WatchKind::Write => write,
                    WatchKind::Read => read,
                    WatchKind::Access => read || write,
                };
                let overlaps = u64::from(lin) < u64::from(w.addr) + u64::from(w.len)
                    && u64::from(w.addr) < u64::from(lin) + u64::from(len);
                if hit_kind && overlaps {
                    return Some((*w, lin, write));
                }
            }
        }
        None
    }
}

/// A register's value for iced's address computation; a segment register gives its base.
fn register_value(state: &popek_cpu::CpuState, r: Register) -> Option<u64> {
    use Register::*;
    let seg = |s: Seg| Some(u64::from(state.seg(s).base));
    match r {
        ES => seg(Seg::Es),
        CS => seg(Seg::Cs),
        SS => seg(Seg::Ss),
        DS => seg(Seg::Ds),
        FS => seg(Seg::Fs),
        GS => seg(Seg::Gs),
        _ if r.is_gpr32() || r.is_gpr16() || r.is_gpr8() => {
            let full = r.full_register32();
            let v = state.gpr[full.number()];
            Some(u64::from(match r.size() {
                4 => v,
                2 => v & 0xffff,
                _ if matches!(r, AH | CH | DH | BH) => (v >> 8) & 0xff,
                _ => v & 0xff,
            }))
        }
        EIP => Some(u64::from(state.eip)),
        _ => Option::None,
    }
}

/// One level of a page walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkStep {
    /// "PDE" or "PTE".
    pub level: &'static str,
    /// Physical address of the entry.
    pub entry_addr: u32,
    /// The entry (None if it is not in RAM).
    pub entry: Option<u32>,
}

/// A linear address translated the way the MMU would, with no side effect (no accessed
/// or dirty bit set, no TLB filled): the debugger's page-table view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walk {
    /// The linear address.
    pub lin: u32,
    /// The entries read.
    pub steps: Vec<WalkStep>,
    /// The physical address, or why there is none.
    pub result: Result<u32, &'static str>,
    /// Whether the page is writable and user-accessible (both true with paging off).
    pub writable: bool,
    /// User-accessible.
    pub user: bool,
}

/// Walks the page tables for `lin` (see [`Walk`]). Paging off: the identity.
pub fn walk(cpu: &Cpu, lin: u32) -> Walk {
    let s = &cpu.state;
    let mut w = Walk { lin, steps: Vec::new(), result: Ok(lin), writable: true, user: true };
    if s.cr0 & cr0::PG == 0 {
        return w;
    }
    let pde_addr = (s.cr3 & !0xfff) | ((lin >> 22) << 2);
    let pde = read_ram_u32(cpu, pde_addr);
    w.steps.push(WalkStep { level: "PDE", entry_addr: pde_addr, entry: pde });
    let Some(pde) = pde else {
        w.result = Err("page directory entry not in RAM");
        return w;
    };
    if pde & 1 == 0 {
        w.result = Err("not present (PDE)");
        return w;
    }
    w.writable = pde & 2 != 0;
    w.user = pde & 4 != 0;
    if pde & 0x80 != 0 && s.cr4 & cr4::PSE != 0 {
        w.result = Ok((pde & 0xffc0_0000) | (lin & 0x3f_ffff));
        return w;
    }
    let pte_addr = (pde & !0xfff) | (((lin >> 12) & 0x3ff) << 2);
    let pte = read_ram_u32(cpu, pte_addr);
    w.steps.push(WalkStep { level: "PTE", entry_addr: pte_addr, entry: pte });
    let Some(pte) = pte else {
        w.result = Err("page table entry not in RAM");
        return w;
    };
    if pte & 1 == 0 {
        w.result = Err("not present (PTE)");
        return w;
    }
    w.writable &= pte & 2 != 0;
    w.user &= pte & 4 != 0;
    w.result = Ok((pte & !0xfff) | (lin & 0xfff));
    w
}

fn read_ram_u32(cpu: &Cpu, p: u32) -> Option<u32> {
    let off = ram_offset(cpu, p)?;
    cpu.mem.read_ram::<4>(off).map(u32::from_le_bytes)
}

fn ram_offset(cpu: &Cpu, p: u32) -> Option<usize> {
    match cpu.mem.region(PhysAddr(p)) {
        popek_memory::Region::Ram(off) if cpu.mem.page_is_ram(PhysAddr(p)) => Some(off),
        _ => Option::None,
    }
}

/// A byte of guest memory at a linear address, read without side effects (through the
/// page tables, RAM only); None if unmapped or not RAM.
pub fn peek(cpu: &Cpu, lin: u32) -> Option<u8> {
    let phys = walk(cpu, lin).result.ok()?;
    peek_phys(cpu, phys)
}

/// A byte of guest RAM at a physical address (None if not RAM).
pub fn peek_phys(cpu: &Cpu, phys: u32) -> Option<u8> {
    let off = ram_offset(cpu, phys)?;
    cpu.mem.as_slice().get(off).copied()
}

/// Writes a byte of guest RAM at a linear address (the debugger's and gdb's memory
/// writes): through the page tables, RAM only (ROM too, as a debugger may patch it),
/// noting the store for the code caches. False if unmapped or not RAM.
pub fn poke(cpu: &mut Cpu, lin: u32, value: u8) -> bool {
    let Ok(phys) = walk(cpu, lin).result else { return false };
    let Some(off) = ram_offset(cpu, phys) else { return false };
    match cpu.mem.as_mut_slice().get_mut(off) {
        Some(b) => {
            *b = value;
            cpu.note_write(PhysAddr(phys), 1);
            true
        }
        None => false,
    }
}
