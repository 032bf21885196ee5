//! The software VMM: semantics of every sensitive or privileged instruction
//! (SDM Vol. 2 entries; Popek–Goldberg's "sensitive" set for x86).
//!
//! ```text
//!   popek-interp ──┐                      ┌──► Bus (port I/O)
//!                  ├──► popek-vmm handlers ┤
//!   popek-jit  ────┘   (callouts)          └──► popek-cpu (segments, IDT, TLB)
//! ```
//!
//! The interpreter dispatches these instructions here, and the JIT emits
//! callouts to the very same functions, so privileged semantics are written once.
//! The paravirtual hypercalls ([`hypercall`], reached by VMCALL) live here for the same
//! reason: one implementation that every engine shares.

// Instruction semantics truncate results to the operand width everywhere; each cast
// here is that rule, so the truncation lint is off for this crate.
#![allow(clippy::cast_possible_truncation)]

use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::{Instruction, Mnemonic};
use popek_cpu::{Bus, Cpu, ExecResult, Handler};

mod control_regs;
mod descriptors;
mod far;
pub mod hypercall;
mod interrupts;
mod io;
mod misc;

pub use far::{pop_sreg_check, pop_sreg_commit};
pub use io::port_in;
pub use misc::cpuid_leaf;

/// The VMM handler for `insn`, if it is a sensitive or privileged instruction.
pub fn lookup(insn: &Instruction) -> Option<Handler> {
    match insn.mnemonic() {
        Mnemonic::Hlt => return Some(hlt),
        Mnemonic::Vmcall => return Some(hypercall::vmcall),
        _ => {}
    }
    io::lookup(insn)
        .or_else(|| control_regs::lookup(insn))
        .or_else(|| misc::lookup(insn))
        .or_else(|| descriptors::lookup(insn))
        .or_else(|| far::lookup(insn))
        .or_else(|| interrupts::lookup(insn))
}

/// #GP(0) unless CPL is 0 (the rule for privileged instructions, SDM 5.9).
#[inline]
pub fn require_cpl0(cpu: &Cpu) -> Result<(), Exception> {
    if cpu.state.cpl == 0 { Ok(()) } else { Err(Exception::GeneralProtection(0)) }
}

/// HLT (privileged): the CPU waits for an interrupt.
fn hlt(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    require_cpl0(cpu)?;
    cpu.state.halted = true;
    Ok(())
}
