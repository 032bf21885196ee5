//! popek's reference interpreter.
//!
//! ```text
//!   BlockCache<Handler> ──► Block ──► for each DecodedInsn: (insn.exec)(cpu, bus, &insn)
//!          ▲                                   │
//!   popek-cpu decoder              Err(Exception) ─► rewind EIP, deliver via IDT
//! ```
//!
//! Every instruction's semantics is a [`popek_cpu::Handler`] chosen once, at
//! decode time ([`dispatch::handler_for`]), from the instruction-group modules
//! below; sensitive and privileged instructions are dispatched to `popek-vmm`.
//! The interpreter executes whole blocks and returns to its caller between
//! blocks, where timers and interrupts are checked. [`trap::TrapEngine`] runs the same
//! blocks and handlers as a classic trap-and-emulate VMM would, with the guest kernel
//! deprivileged to ring 1 (`popek run --engine trap`).
//!
//! Where the time goes, and what keeps it short (the counting-loop benchmark,
//! `cargo bench --bench interp`):
//! - finding the block: the block cache's jump table answers CS:EIP → block
//!   without a page walk or hash lookup ([`popek_cpu::block`]);
//! - per instruction: checks that only a block-ending instruction can change
//!   (TF, the interrupt shadow, whether the block may cross the CS limit) are
//!   made once per block in [`Interpreter::run_block`];
//! - operand plumbing: groups pick handlers specialised for the hottest forms at
//!   decode time (e.g. `ADD r32, r32`, `MOV r32, m32`, Jcc per condition), which
//!   share the one semantic definition of the operation with the generic handler.

// Instruction semantics truncate results to the operand width everywhere; each cast
// here is that rule, so the truncation lint is off for this crate.
#![allow(clippy::cast_possible_truncation)]

pub mod dispatch;
pub mod flags;
pub mod testing;
pub mod trap;
pub mod undefined;

mod alu;
mod bcd;
mod bits;
mod cond;
mod control;
mod data;
mod muldiv;
mod shift;
mod stack;
mod string;
mod x87;

use popek_cpu::block::{Block, BlockCache, BlockKey};
use popek_cpu::exception::{Event, Exception};
use popek_cpu::state::flags::TF;
use popek_cpu::{Bus, Cpu, Handler};

/// Counters of one interpreter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterpStats {
    /// Instructions retired.
    pub retired: u64,
    /// Blocks executed.
    pub blocks: u64,
    /// Exceptions delivered to the guest.
    pub exceptions: u64,
}

/// The interpreter: a decoded-block cache whose payload is each instruction's handler.
#[derive(Default)]
pub struct Interpreter {
    /// Decoded blocks.
    pub cache: BlockCache<Handler>,
    /// Counters.
    pub stats: InterpStats,
}

impl Interpreter {
    /// A fresh interpreter with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Executes the block at CS:EIP. Returns the number of instructions retired.
    /// Guest exceptions are delivered to the guest here; only host-side events
    /// (unsupported instruction, triple fault) come back as `Err`.
    #[inline]
    pub fn run_block(&mut self, cpu: &mut Cpu, bus: &mut dyn Bus) -> Result<u32, Event> {
        self.run_block_within(cpu, bus, u64::MAX)
    }

    /// [`Interpreter::run_block`] with `room` instructions left before the run loop must
    /// look at the machine (the next timer deadline, the instruction limit): a REP string
    /// instruction that ends the block processes no more elements than fit
    /// ([`popek_cpu::rep_limit`]), each counted as a retired instruction.
    pub fn run_block_within(&mut self, cpu: &mut Cpu, bus: &mut dyn Bus, room: u64) -> Result<u32, Event> {
        self.run_block_part(cpu, bus, room, usize::MAX)
    }

    /// [`Interpreter::run_block_within`] running no more than the first `limit`
    /// instructions of the block (at least one): the run loop looks at the machine
    /// after them as it would at a block's end. An instruction boundary is as good a
    /// place as any for that, so lockstep runs stop the interpreter exactly where the
    /// translator stopped, wherever the two engines put their blocks' ends.
    pub fn run_block_part(&mut self, cpu: &mut Cpu, bus: &mut dyn Bus, room: u64, limit: usize) -> Result<u32, Event> {
        run_cached_block(
            &mut self.cache,
            cpu,
            bus,
            room,
            limit.max(1),
            &mut self.stats,
            &mut |insn, _| dispatch::handler_for(insn),
            |h: &Handler, cpu, bus, insn| h(cpu, bus, insn),
        )
    }

    /// Executes until `budget` instructions have retired, the CPU halts, or a
    /// host-side event stops it. Returns the number of instructions retired.
    /// (No interrupts are checked: that is the machine's run loop's job.)
    pub fn run(&mut self, cpu: &mut Cpu, bus: &mut dyn Bus, budget: u64) -> Result<u64, Event> {
        let mut n = 0u64;
        while n < budget && !cpu.state.halted && !cpu.state.shutdown {
            n += self.run_block(cpu, bus)? as u64;
        }
        Ok(n)
    }
}

/// Finds (or decodes, with `prepare`) the block at CS:EIP in `cache` and runs it with
/// [`execute_block_with`] and `exec`, dropping blocks whose code was written before and
/// after, running at most `limit` of its instructions. What [`Interpreter::run_block_within`] does; the trap-and-emulate engine
/// ([`trap::TrapEngine`]) does the same with its own payload and executor.
// Eight arguments: the two engines' whole context (cache, CPU, bus, limits, stats,
// decode and execute) passed explicitly; a struct for one private call site adds nothing.
#[allow(clippy::too_many_arguments)]
fn run_cached_block<E: Clone, X>(
    cache: &mut BlockCache<E>,
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    room: u64,
    limit: usize,
    stats: &mut InterpStats,
    prepare: &mut dyn FnMut(&popek_cpu::iced_x86::Instruction, &popek_cpu::block::BlockKey) -> E,
    exec: X,
) -> Result<u32, Event>
where
    X: FnMut(&E, &mut Cpu, &mut dyn Bus, &popek_cpu::iced_x86::Instruction) -> popek_cpu::ExecResult,
{
    if !cpu.code_writes.is_empty() {
        cache.invalidate_written(cpu);
    }
    let block = match cache.lookup(cpu, bus, prepare) {
        Ok(b) => b,
        Err(e) => {
            stats.exceptions += 1;
            cpu.deliver_exception(bus, e)?;
            return Ok(0);
        }
    };
    let retired = execute_block_part_with(cpu, bus, block, 0, limit, room, stats, exec).map(|part| part.retired);
    if !cpu.code_writes.is_empty() {
        cache.invalidate_written(cpu);
    }
    retired
}

/// An engine's per-instruction payload that carries the instruction's handler.
pub trait HasHandler {
    /// The shared semantics of the instruction.
    fn handler(&self) -> Handler;
}

impl HasHandler for Handler {
    #[inline(always)]
    fn handler(&self) -> Handler {
        *self
    }
}

/// Interprets one decoded block at CS:EIP (the reference semantics of running a
/// block): instruction by instruction, with the CS-limit check, precise exceptions
/// delivered to the guest, the single-step trap, and a stop after a write to code
/// (the caller drops the written blocks) or to an interrupt controller's registers
/// ([`Cpu::interrupt_window`]). Returns the instructions retired.
/// The interpreter runs every block this way; the JIT runs the blocks it does not
/// translate this way too.
#[inline]
pub fn execute_block<E: HasHandler>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    block: &Block<E>,
    room: u64,
    stats: &mut InterpStats,
) -> Result<u32, Event> {
    execute_block_part_with(cpu, bus, block, 0, usize::MAX, room, stats, plain).map(|part| part.retired)
}

/// Runs an instruction by calling its handler.
#[inline(always)]
fn plain<E: HasHandler>(
    e: &E,
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    insn: &popek_cpu::iced_x86::Instruction,
) -> popek_cpu::ExecResult {
    (e.handler())(cpu, bus, insn)
}

/// [`execute_block`] with `exec` running each instruction (given its payload) in place of
/// a plain call of its handler: the trap-and-emulate engine ([`trap::TrapEngine`]) runs
/// some instructions as a deprivileged guest kernel would see them. Everything around
/// the instruction (EIP, the CS limit, exceptions, single-step, shadows) is the same.
#[inline]
pub fn execute_block_with<E, X>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    block: &Block<E>,
    room: u64,
    stats: &mut InterpStats,
    exec: X,
) -> Result<u32, Event>
where
    X: FnMut(&E, &mut Cpu, &mut dyn Bus, &popek_cpu::iced_x86::Instruction) -> popek_cpu::ExecResult,
{
    execute_block_part_with(cpu, bus, block, 0, usize::MAX, room, stats, exec).map(|part| part.retired)
}

/// What [`execute_block_part`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// Instructions retired (REP string elements each count, as in [`execute_block`]).
    pub retired: u32,
    /// Instructions of the block that ran to completion, from `start`.
    pub ran: usize,
    /// True if `limit` stopped the part before the block's end, with nothing else ending
    /// it: the rest of the block (from `start + ran`) is still to run, with no look at
    /// interrupts or time in between, to be the same as one [`execute_block`].
    pub cut: bool,
    /// True if an exception was delivered in place of an instruction (a fault, or the
    /// #GP of an instruction past the CS limit): an attempt that retired nothing.
    pub faulted: bool,
}

/// [`execute_block`] on a part of a block: at most `limit` instructions from the
/// `start`-th (whose address is CS:EIP). The debugger runs blocks this way to stop at a
/// breakpoint, a watchpoint or an instruction count inside a block, and then resumes the
/// same block where it stopped: a block run in parts behaves exactly as one run whole.
/// `room` counts from the part's first instruction.
#[inline]
pub fn execute_block_part<E: HasHandler>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    block: &Block<E>,
    start: usize,
    limit: usize,
    room: u64,
    stats: &mut InterpStats,
) -> Result<Part, Event> {
    execute_block_part_with(cpu, bus, block, start, limit, room, stats, plain)
}

/// [`execute_block_part`] with `exec` running each instruction (see [`execute_block_with`]).
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn execute_block_part_with<E, X>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    block: &Block<E>,
    start: usize,
    limit: usize,
    room: u64,
    stats: &mut InterpStats,
    mut exec: X,
) -> Result<Part, Event>
where
    X: FnMut(&E, &mut Cpu, &mut dyn Bus, &popek_cpu::iced_x86::Instruction) -> popek_cpu::ExecResult,
{
    stats.blocks += 1;
    let insns = block.insns.get(start..).unwrap_or_default();
    // Only a block's last instruction can be a REP string instruction (it ends its block);
    // when it runs, the instructions before it have retired.
    cpu.rep_limit = popek_cpu::rep_limit(room, insns.len().saturating_sub(1) as u64);
    cpu.rep_extra = 0;
    let code32 = cpu.state.code32();
    let cs_limit = cpu.state.seg[popek_cpu::Seg::Cs as usize].limit;
    let mut eip = cpu.state.eip;
    // Hoisted out of the loop, because only a block-ending instruction
    // (`ends_block`) can change them: TF (POPF, IRET, task switches) and the
    // interrupt shadow (STI, MOV SS, POP SS). Also whether some instruction may run
    // past the CS limit: only then is each one checked.
    let trap = cpu.state.eflags & TF != 0;
    // A block that starts in an interrupt shadow (after STI, MOV SS or POP SS) runs one
    // instruction, so that the run loop can take a pending interrupt right after it, as
    // the CPU does. That instruction opens no shadow of its own: in `STI; STI` or
    // `STI; MOV SS`, an interrupt is taken after the second (SDM Vol. 2B STI: "interrupts
    // may be recognized before RET executes" in `STI; STI; RET`; QEMU does the same).
    let shadow = std::mem::take(&mut cpu.state.interrupt_shadow);
    cpu.interrupt_window = false;
    let check_limit = (block.eip as u64 + block.len as u64).saturating_sub(1) > cs_limit as u64;
    let mut retired = 0u32;
    let mut ran = 0usize;
    let mut ended = false;
    // Virtual time at the block's start (the run loop's); each instruction sees its own.
    let tsc = cpu.state.tsc;
    let mut faulted = false;
    // A host-side event that ends the run (an unsupported instruction or delivery).
    let mut stop = None;
    for d in insns.iter().take(limit) {
        let len = d.insn.len() as u32;
        if check_limit && eip.wrapping_add(len - 1) > cs_limit && eip <= cs_limit {
            // The instruction runs past the CS limit.
            faulted = true;
            stats.exceptions += 1;
            if let Err(ev) = cpu.deliver_exception(bus, Exception::GeneralProtection(0)) {
                stop = Some(ev);
            }
            ended = true;
            break;
        }
        let mut next = eip.wrapping_add(len);
        if !code32 {
            next &= 0xffff;
        }
        cpu.state.eip = next;
        cpu.state.tsc = tsc + u64::from(retired);
        match exec(&d.exec, cpu, bus, &d.insn) {
            Ok(()) => {
                retired += 1;
                ran += 1;
                if shadow {
                    cpu.state.interrupt_shadow = false;
                }
            }
            Err(Event::Exception(e)) => {
                if !e.is_trap() {
                    cpu.state.eip = eip;
                }
                faulted = true;
                stats.exceptions += 1;
                if let Err(ev) = cpu.deliver_exception(bus, e) {
                    stop = Some(ev); // a delivery popek cannot do (a task gate)
                }
                ended = true;
                break;
            }
            Err(Event::Unsupported(mut u)) => {
                cpu.state.eip = eip;
                u.eip = eip;
                if u.bytes.is_empty() {
                    let offset = block.insns.iter().take(start + ran).map(|d| d.insn.len()).sum::<usize>();
                    u.bytes = block.bytes.get(offset..offset + len as usize).unwrap_or(&[]).to_vec();
                }
                stop = Some(Event::Unsupported(u));
                break;
            }
        }
        if trap {
            // Single-step trap after the instruction (SDM 17.3.1.4): DR6.BS.
            cpu.state.dr[6] |= 1 << 14;
            stats.exceptions += 1;
            if let Err(ev) = cpu.deliver_exception(bus, Exception::Debug) {
                stop = Some(ev);
            }
            ended = true;
            break;
        }
        if cpu.code_writes.iter().any(|w| block.written_by(w)) {
            ended = true;
            break; // this block's own code was written: stop (the caller drops blocks)
        }
        if popek_cpu::block::loaded_data_segment(&d.insn).is_some() && BlockKey::mode_of(cpu) != block.key.mode {
            // A segment load changed the mode the block was decoded in: it ends here, as
            // in the translator, whose code for the rest depends on it.
            ended = true;
            break;
        }
        if cpu.state.halted || cpu.state.shutdown || shadow {
            ended = true;
            break;
        }
        if cpu.interrupt_window {
            // A write to an interrupt controller: the run loop looks for an interrupt.
            cpu.interrupt_window = false;
            ended = true;
            break;
        }
        eip = next;
    }
    if let Some(ev) = stop {
        // What retired before the event still counts.
        stats.retired += retired as u64;
        cpu.state.tsc = tsc + u64::from(retired);
        return Err(ev);
    }
    // Elements of a REP string instruction beyond the one instruction it counted as.
    let retired = retired.saturating_add(u32::try_from(std::mem::take(&mut cpu.rep_extra)).unwrap_or(u32::MAX));
    stats.retired += retired as u64;
    // The TSC goes on to the time of the next instruction.
    cpu.state.tsc = tsc + u64::from(retired);
    let cut = !ended && ran == limit && start + ran < block.insns.len();
    Ok(Part { retired, ran, cut, faulted })
}

#[cfg(test)]
mod tests {
    use crate::testing::{CODE_BASE, TestBox};
    use popek_cpu::Seg;
    use popek_cpu::state::flags::TF;
    use popek_cpu::state::gpr::{EAX, EBX};

    /// `inc eax ; inc eax ; mov ebx, 0x12345678` (then the HLT TestBox adds): one block.
    const CODE: [u8; 7] = [0x40, 0x40, 0xbb, 0x78, 0x56, 0x34, 0x12];

    /// An instruction whose last byte is beyond the CS limit is #GP(0) before it
    /// runs (SDM Vol. 3A 5.3), even in the middle of a block; the ones before it retire.
    #[test]
    fn instruction_crossing_the_cs_limit_faults_mid_block() {
        let mut t = TestBox::new(&CODE);
        t.cpu.state.seg[Seg::Cs as usize].limit = CODE_BASE + 4; // MOV occupies +2..=+6
        let _ = t.interp.run_block(&mut t.cpu, &mut t.bus); // delivery may fail: no IDT
        assert_eq!(t.cpu.state.gpr[EAX], 2);
        assert_eq!(t.cpu.state.gpr[EBX], 0, "the MOV did not run");
        assert_eq!(t.cpu.state.eip, CODE_BASE + 2, "EIP at the faulting instruction");
        assert_eq!(t.interp.stats.exceptions, 1);
    }

    /// With TF set, the single-step trap comes after the first instruction of the
    /// block (SDM Vol. 3A 17.3.1.4), with DR6.BS set.
    #[test]
    fn single_step_stops_after_one_instruction() {
        let mut t = TestBox::new(&CODE);
        t.cpu.state.eflags |= TF;
        let _ = t.interp.run_block(&mut t.cpu, &mut t.bus); // delivery may fail: no IDT
        assert_eq!(t.cpu.state.gpr[EAX], 1);
        assert_ne!(t.cpu.state.dr[6] & (1 << 14), 0, "DR6.BS");
        assert_eq!(t.interp.stats.exceptions, 1);
    }
}
