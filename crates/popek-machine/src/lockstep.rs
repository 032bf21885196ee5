//! Lockstep: the interpreter and the JIT run the same guest side by side, one block at a
//! time, and the first block after which their guest state differs is reported.
//!
//! Registers, flags and every other part of `CpuState` are compared after every block,
//! with the instruction counts; guest RAM is compared every [`MEMORY_EVERY`] blocks and at
//! the end (comparing 128 MiB after every block would dominate the run).

use crate::machine::Watchdog;
use crate::{Engine, Machine, RunConfig, StopReason};
use popek_cpu::CpuState;

/// Blocks between two comparisons of all of guest RAM.
pub const MEMORY_EVERY: u64 = 1 << 16;

/// Where two engines parted.
#[derive(Debug)]
pub struct Divergence {
    /// Run-loop steps both machines made (blocks, interrupt deliveries, HLT sleeps).
    pub step: u64,
    /// The state both had before the step.
    pub before: CpuState,
    /// The reference machine's state after it.
    pub reference: CpuState,
    /// The other machine's state after it.
    pub other: CpuState,
    /// Instructions each had retired.
    pub retired: (u64, u64),
    /// First guest physical address whose byte differs, if the memory differs.
    pub memory: Option<u32>,
    /// The translated block at the EIP before the step, as `popek explain` prints it.
    pub block: Option<String>,
}

fn first_difference(a: &Machine, b: &Machine) -> Option<u32> {
    let (x, y) = (a.cpu.mem.as_slice(), b.cpu.mem.as_slice());
    if x == y {
        return None;
    }
    x.iter().zip(y).position(|(p, q)| p != q).and_then(|i| u32::try_from(i).ok())
}

/// True if `reference` has delivered fewer events than `other`, or not shut down where
/// `other` has.
fn behind(reference: &Machine, other: &Machine) -> bool {
    reference.cpu.delivered < other.cpu.delivered || (other.cpu.state.shutdown && !reference.cpu.state.shutdown)
}

/// Runs `reference` and `other` together until one stops or they differ. `other` (the
/// JIT) leads: one of its steps may run several chained blocks, so `reference` (the
/// interpreter) then steps until it has caught up in virtual time, its last block cut
/// where the translator stopped ([`Machine::step_until`]), and the two are compared
/// there. So the engines need not agree on where blocks end (a store to code ends an
/// interpreted block, while translated code goes on if no translation is made from the
/// bytes written): only on what each instruction does.
pub fn run(reference: &mut Machine, other: &mut Machine, cfg: &RunConfig) -> Result<StopReason, Box<Divergence>> {
    let mut step = 0u64;
    let watchdog = cfg.timeout.and_then(Watchdog::start);
    loop {
        if watchdog.as_ref().is_some_and(Watchdog::expired) {
            return Ok(StopReason::Timeout);
        }
        if cfg.interrupted() {
            return Ok(StopReason::Interrupted);
        }
        let before = other.cpu.state.clone();
        let ticks = other.ticks();
        let stop_b = other.step(cfg);
        // A step that retired nothing (an exception or interrupt delivered, a stop):
        // the reference takes the same one step.
        let mut stop_a = if other.ticks() == ticks { reference.step(cfg) } else { None };
        while stop_a.is_none() && reference.ticks() < other.ticks() {
            stop_a = reference.step_until(cfg, other.ticks());
        }
        // The JIT's step may end by delivering an exception, shutting down or stopping
        // (an unsupported instruction) at the first instruction of a block it went on
        // to, which retired nothing: the reference takes those steps too.
        while stop_a.is_none() && reference.ticks() == other.ticks() && (stop_b.is_some() || behind(reference, other)) {
            let was = (reference.ticks(), reference.cpu.delivered, reference.cpu.state.shutdown);
            stop_a = reference.step(cfg);
            if (reference.ticks(), reference.cpu.delivered, reference.cpu.state.shutdown) == was {
                break;
            }
        }
        step += 1;
        let check_memory = stop_b.is_some() || step.is_multiple_of(MEMORY_EVERY);
        let memory = if check_memory { first_difference(reference, other) } else { None };
        let same = reference.cpu.state == other.cpu.state
            && reference.stats.retired == other.stats.retired
            && reference.ticks() == other.ticks()
            && stop_a == stop_b
            && memory.is_none();
        if !same {
            let block = [&*other, &*reference].iter().find_map(|m| match &m.engine {
                Engine::Jit(j) => j.block_at(before.eip).map(|b| j.explain_block(b)),
                Engine::Interp(_) | Engine::Trap(_) => None,
            });
            return Err(Box::new(Divergence {
                step,
                before,
                reference: reference.cpu.state.clone(),
                other: other.cpu.state.clone(),
                retired: (reference.stats.retired, other.stats.retired),
                memory,
                block,
            }));
        }
        if let Some(stop) = stop_b {
            return Ok(stop);
        }
    }
}
