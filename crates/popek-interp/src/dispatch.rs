//! Instruction → handler, chosen once per instruction when its block is decoded.

use popek_cpu::exception::{Exception, Unsupported};
use popek_cpu::iced_x86::{Formatter, Instruction, IntelFormatter};
use popek_cpu::{Bus, Cpu, ExecResult, Handler};

/// The handler that executes `insn`: a VMM handler for sensitive instructions,
/// an interpreter group handler otherwise, #UD for invalid encodings, and an
/// "unsupported" error for anything popek does not implement.
pub fn handler_for(insn: &Instruction) -> Handler {
    if insn.is_invalid() {
        return invalid_opcode;
    }
    popek_vmm::lookup(insn)
        .or_else(|| crate::alu::lookup(insn))
        .or_else(|| crate::data::lookup(insn))
        .or_else(|| crate::shift::lookup(insn))
        .or_else(|| crate::muldiv::lookup(insn))
        .or_else(|| crate::bits::lookup(insn))
        .or_else(|| crate::bcd::lookup(insn))
        .or_else(|| crate::control::lookup(insn))
        .or_else(|| crate::stack::lookup(insn))
        .or_else(|| crate::string::lookup(insn))
        .unwrap_or(unsupported)
}

/// True if popek implements `insn` (it is not routed to the "unsupported" handler).
pub fn is_supported(insn: &Instruction) -> bool {
    !std::ptr::fn_addr_eq(handler_for(insn), unsupported as Handler)
}

fn invalid_opcode(_: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    Err(Exception::InvalidOpcode.into())
}

fn unsupported(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let mut text = String::new();
    IntelFormatter::new().format(insn, &mut text);
    Err(Unsupported {
        what: format!("instruction `{text}`"),
        eip: cpu.state.eip.wrapping_sub(insn.len() as u32),
        bytes: Vec::new(),
    }
    .into())
}
