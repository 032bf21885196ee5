//! Static checks on a snippet before it runs: it must decode completely, never touch
//! RSP, and never leave the snippet except by falling (or branching) to its end.

use std::collections::BTreeSet;

use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory, OpKind, Register};

use crate::HostCpuError;

/// Checks `code`; `Ok` means every byte belongs to an allowed instruction.
pub(crate) fn check(code: &[u8]) -> Result<(), HostCpuError> {
    let mut decoder = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
    let mut info = InstructionInfoFactory::new();
    let mut boundaries = BTreeSet::new();
    let mut branch_targets = Vec::new();
    let mut instr = Instruction::default();
    while decoder.can_decode() {
        let offset = decoder.position();
        boundaries.insert(offset as u64);
        decoder.decode_out(&mut instr);
        if instr.is_invalid() {
            let end = code.len().min(offset + 15);
            return Err(HostCpuError::InvalidCode { offset, bytes: code[offset..end].to_vec() });
        }
        let text = || instr.to_string();
        let uses_rsp =
            info.info(&instr).used_registers().iter().any(|used| used.register().full_register() == Register::RSP);
        if uses_rsp {
            return Err(HostCpuError::UsesStackPointer { offset, instr: text() });
        }
        match instr.flow_control() {
            FlowControl::Next => {}
            FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch
                if matches!(instr.op0_kind(), OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64) =>
            {
                branch_targets.push((offset, instr.near_branch_target(), text()));
            }
            _ => {
                return Err(HostCpuError::ControlFlow { offset, instr: text() });
            }
        }
    }
    boundaries.insert(code.len() as u64);
    for (offset, target, instr) in branch_targets {
        if !boundaries.contains(&target) {
            return Err(HostCpuError::ControlFlow { offset, instr });
        }
    }
    Ok(())
}
