//! `popek explain`: a translated block as a lab handout — each guest instruction with
//! its treatment and the reason for it, interleaved with the host code made for it.

use crate::code::emit_block;
use crate::translate::{FlagFix, Treatment};
use crate::{Jit, JitInsn};
use dynasmrt::VecAssembler;
use dynasmrt::x64::X64Relocation;
use popek_cpu::block::{Block, BlockKey};
use popek_cpu::iced_x86::{Decoder, DecoderOptions, FlowControl, Formatter, Instruction, IntelFormatter, Mnemonic};
use std::fmt::Write;

/// Why a sensitive instruction is a callout (Popek and Goldberg's terms).
fn callout_reason(insn: &Instruction) -> &'static str {
    use Mnemonic::*;
    match insn.mnemonic() {
        Popf | Popfd => "may change IF/IOPL: sensitive, not privileged (ring 3 silently keeps IF)",
        Pushf | Pushfd => "reads IF/IOPL: sensitive, not privileged",
        Cli | Sti => "changes IF: privileged when CPL > IOPL",
        In | Out | Insb | Insw | Insd | Outsb | Outsw | Outsd => {
            "port I/O reaches a device: privileged when CPL > IOPL"
        }
        Sgdt | Sidt | Sldt | Str | Smsw => "reveals the real tables or CR0: sensitive, not privileged",
        Lar | Lsl | Verr | Verw | Arpl => "reads descriptor privileges: sensitive, not privileged",
        Int | Int3 | Into | Iret | Iretd => "goes through the guest's IDT or stack switch",
        Cpuid => "reports the virtual CPU",
        Rdtsc => "reads virtual time",
        Ud0 | Ud1 | Ud2 => "raises #UD",
        Hlt | Lgdt | Lidt | Lldt | Ltr | Lmsw | Clts | Invlpg | Wbinvd | Invd | Rdmsr | Wrmsr => "privileged",
        Mov => "moves a control, debug or segment register: privileged or a segment load",
        _ if insn.flow_control() != FlowControl::Next => "far transfer: descriptor checks",
        _ => "segment load: descriptor checks against the guest's tables",
    }
}

/// Why an instruction is a helper call (not translated inline yet).
fn helper_reason(insn: &Instruction) -> &'static str {
    if insn.flow_control() != FlowControl::Next {
        "control transfer: the handler computes EIP"
    } else if insn.stack_pointer_increment() != 0 {
        "stack operation"
    } else if insn.is_string_instruction() {
        "string operation"
    } else if insn.rflags_undefined() != 0 {
        "leaves flags the SDM calls undefined, which differ between hosts"
    } else {
        "not translated inline yet"
    }
}

/// The treatment of an instruction with its reason, as `explain` prints it.
pub fn treatment_with_reason(d: &JitInsn, insn: &Instruction) -> String {
    let why = match d.treatment {
        Treatment::Ident if insn.mnemonic() == Mnemonic::Nop => "no operation: no host code at all",
        Treatment::Ident => match crate::translate::flag_fix(insn) {
            Some(FlagFix::ClearAf) => "host twin; AF (undefined) reads as 0, as in the interpreter",
            Some(FlagFix::ClearAfIfCounted) => "host twin, then AF (undefined) cleared unless CL & 31 = 0",
            Some(FlagFix::MulLow(_)) => {
                "host twin, then `test` of the low half: the undefined SF/ZF/PF/AF as in the interpreter"
            }
            _ => "register-only: runs as its host twin",
        },
        Treatment::Rewritten if crate::translate::is_inline_branch(insn) => {
            "relative branch: the host's jcc/jmp on the guest flags sets EIP"
        }
        Treatment::Rewritten
            if matches!(insn.mnemonic(), Mnemonic::Push | Mnemonic::Pop | Mnemonic::Call | Mnemonic::Ret) =>
        {
            "stack operation: inline soft-TLB lookup on the new top, then ESP (in R12D)"
        }
        Treatment::Rewritten => "memory operand: inline soft-TLB lookup, host twin on host memory",
        Treatment::Callout => callout_reason(insn),
        Treatment::Helper => helper_reason(insn),
    };
    format!("{:<9} {why}", d.treatment.name())
}

fn mode_text(key: &BlockKey) -> String {
    let m = key.mode;
    format!(
        "{}-bit code, CPL {}, paging {}, {}",
        if m & 1 != 0 { 32 } else { 16 },
        (m >> 1) & 3,
        if m & 8 != 0 { "on" } else { "off" },
        if m & BlockKey::FLAT != 0 { "flat segments" } else { "segmented" }
    )
}

fn host_listing(out: &mut String, code: &[u8], range: std::ops::Range<usize>) {
    let mut fmt = IntelFormatter::new();
    let mut dec = Decoder::with_ip(64, &code[range.clone()], range.start as u64, DecoderOptions::NONE);
    for insn in &mut dec {
        let mut text = String::new();
        fmt.format(&insn, &mut text);
        let at = insn.ip() as usize;
        let bytes: String = code[at..at + insn.len()].iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(out, "        {at:04x}  {bytes:<24} {text}");
    }
}

/// One block: header, then every guest instruction with its treatment and host code.
pub fn explain_block(block: &Block<JitInsn>) -> String {
    let mut ops = VecAssembler::<X64Relocation>::new(0);
    let ranges = emit_block(&mut ops, block, &mut 0).ranges;
    let code = ops.finalize().unwrap_or_default();
    let mut out = String::new();
    let runs = block.insns.first().map_or(0, |d| d.exec.runs.get());
    let _ = writeln!(
        out,
        "block at {:#010x} (physical {:#010x}; {}): {} instructions, {} host bytes, ran {} times",
        block.eip,
        block.key.phys,
        mode_text(&block.key),
        block.insns.len(),
        code.len(),
        runs
    );
    let mut fmt = IntelFormatter::new();
    let first = ranges.first().map_or(code.len(), |r| r.start);
    let _ = writeln!(out, "    prologue: save host registers, point r15 at the CPU state and r14 at the context");
    host_listing(&mut out, &code, 0..first);
    for (d, range) in block.insns.iter().zip(&ranges) {
        let mut text = String::new();
        fmt.format(&d.insn, &mut text);
        let off = d.insn.ip32().wrapping_sub(block.eip) as usize;
        let bytes: String = block.bytes[off..off + d.insn.len()].iter().map(|b| format!("{b:02x} ")).collect();
        let _ = writeln!(
            out,
            "  {:#010x}  {:<18} {:<30} {}",
            d.insn.ip32(),
            bytes.trim_end(),
            text,
            treatment_with_reason(&d.exec, &d.insn)
        );
        host_listing(&mut out, &code, range.clone());
    }
    let last = ranges.last().map_or(code.len(), |r| r.end);
    let _ = writeln!(out, "    epilogue: store the guest state if needed, restore host registers, return");
    host_listing(&mut out, &code, last..code.len());
    out
}

impl Jit {
    /// The `n` most executed blocks (ties broken by address, so the order is stable).
    pub fn hottest_blocks(&self, n: usize) -> Vec<&Block<JitInsn>> {
        let mut blocks: Vec<_> = self.cache.blocks().collect();
        blocks.sort_by_key(|b| (std::cmp::Reverse(b.insns[0].exec.runs.get()), b.key));
        blocks.truncate(n);
        blocks
    }

    /// The cached block decoded at guest EIP `eip`, if any (the lowest physical one).
    pub fn block_at(&self, eip: u32) -> Option<&Block<JitInsn>> {
        self.cache.blocks().filter(|b| b.eip == eip).min_by_key(|b| b.key)
    }
}
