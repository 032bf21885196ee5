//! (instruction group, to be filled in)

use popek_cpu::iced_x86::Instruction;
use popek_cpu::Handler;

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    let _ = insn;
    None
}
