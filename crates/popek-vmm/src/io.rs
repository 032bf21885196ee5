//! (instruction group, to be filled in)

use popek_cpu::Handler;
use popek_cpu::iced_x86::Instruction;

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    let _ = insn;
    None
}
