//! Instruction → handler, chosen once per instruction when its block is decoded.

use popek_cpu::exception::{Exception, Unsupported};
use popek_cpu::iced_x86::{Formatter, Instruction, IntelFormatter};
use popek_cpu::{Bus, Cpu, ExecResult, Handler};

/// The handler that executes `insn`: a VMM handler for sensitive instructions,
/// an interpreter group handler otherwise, #UD for invalid encodings, and an
/// "unsupported" error for anything popek does not implement.
pub fn handler_for(insn: &Instruction) -> Handler {
    classify(insn).1
}

/// Which group claims `insn` (`"vmm"`, `"alu"`, …, `"invalid"`, `"unsupported"`) and its handler.
pub fn classify(insn: &Instruction) -> (&'static str, Handler) {
    if insn.is_invalid() {
        return ("invalid", invalid_opcode);
    }
    GROUPS.iter().find_map(|&(name, lookup)| lookup(insn).map(|h| (name, h))).unwrap_or(("unsupported", unsupported))
}

/// True if popek implements `insn` (it is not routed to the "unsupported" handler).
pub fn is_supported(insn: &Instruction) -> bool {
    classify(insn).0 != "unsupported"
}

type Lookup = fn(&Instruction) -> Option<Handler>;

/// The instruction groups, asked in order: sensitive instructions go to the VMM first.
const GROUPS: [(&str, Lookup); 10] = [
    ("vmm", popek_vmm::lookup),
    ("alu", crate::alu::lookup),
    ("data", crate::data::lookup),
    ("shift", crate::shift::lookup),
    ("muldiv", crate::muldiv::lookup),
    ("bits", crate::bits::lookup),
    ("bcd", crate::bcd::lookup),
    ("control", crate::control::lookup),
    ("stack", crate::stack::lookup),
    ("string", crate::string::lookup),
];

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
