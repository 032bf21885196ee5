//! `popek explain`: a translated block as a lab handout — each guest instruction with
//! its treatment and the reason for it, interleaved with the host code made for it.

use crate::code::{Layout, emit_block};
use crate::shared::shared;
use crate::translate::{FlagFix, GroupSlot, OfFix, Treatment, plan_page_groups};
use crate::{Jit, JitInsn};
use dynasmrt::VecAssembler;
use dynasmrt::x64::X64Relocation;
use popek_cpu::block::{Block, BlockKey, DecodedInsn};
use popek_cpu::iced_x86::{Decoder, DecoderOptions, FlowControl, Formatter, Instruction, IntelFormatter, Mnemonic};
use std::fmt::Write;
use std::rc::Rc;

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
        Vmcall => "hypercall: the paravirtual interface to the VMM (#UD while it is off)",
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
    use Mnemonic::*;
    if popek_interp::dispatch::classify(insn).0 == "invalid" {
        "not an instruction on popek's CPU: the handler raises #UD"
    } else if insn.has_rep_prefix() && matches!(insn.mnemonic(), Bsf | Bsr) {
        "F3 ignored, as on a P6 (TZCNT/LZCNT on newer CPUs: a host twin would be those)"
    } else if matches!(
        insn.mnemonic(),
        Pause | Reservednop | Endbr32 | Endbr64 | Rdsspd | Prefetchnta | Prefetcht0 | Prefetcht1 | Prefetcht2
    ) {
        "a hint NOP on popek's CPU: the handler does nothing"
    } else if insn.flow_control() != FlowControl::Next {
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
            Some(FlagFix::After { of: OfFix::SfXorCf, .. }) => {
                "host twin; undefined AF reads 0 and OF = SF XOR CF (popek's table), whatever the host chose"
            }
            Some(FlagFix::After { of: OfFix::RotateCopyLeft | OfFix::RotateCopyRight, .. }) => {
                "host twin, then CF and OF from the result rotated by 1: undefined OF as in popek's table"
            }
            Some(FlagFix::After { of: OfFix::TopTwo, .. }) => {
                "host twin, then OF from the result's top two bits: undefined OF as in popek's table"
            }
            Some(FlagFix::After { of: OfFix::Clear, .. }) => {
                "host twin; undefined AF and OF read 0 (popek's table), whatever the host chose"
            }
            Some(FlagFix::After { zero, .. }) if zero != 0 => {
                "host twin; undefined AF reads 0 (popek's table), whatever the host chose"
            }
            Some(FlagFix::Counted(_)) => {
                "host twin unless CL & 31 = 0, then the undefined flags fixed up as in popek's table"
            }
            Some(FlagFix::MulLow(_)) => {
                "host twin, then `test` of the low half: the undefined SF/ZF/PF/AF as in popek's table"
            }
            _ => "register-only: runs as its host twin",
        },
        Treatment::Rewritten if crate::translate::is_inline_branch(insn) => {
            "relative branch: the host's jcc/jmp on the guest flags sets EIP"
        }
        Treatment::Rewritten if crate::translate::indirect_branch_address(insn).is_some() => {
            "indirect call or jump: the target (read inline through the soft TLB) into EIP, a call's return address pushed inline, on through the indirect-target table"
        }
        Treatment::Rewritten
            if matches!(
                insn.mnemonic(),
                Mnemonic::Push
                    | Mnemonic::Pop
                    | Mnemonic::Call
                    | Mnemonic::Ret
                    | Mnemonic::Leave
                    | Mnemonic::Pushad
                    | Mnemonic::Popad
            ) =>
        {
            "stack operation: inline soft-TLB lookup on the new top, then ESP (in R12D)"
        }
        Treatment::Rewritten if insn.mnemonic() == Mnemonic::Rdtsc => {
            "sensitive, rewritten: the virtual TSC (instructions retired) computed inline"
        }
        Treatment::Rewritten if crate::translate::plain_movs_width(insn).is_some() => {
            "string move without REP: the element moved inline, both addresses through the soft TLB (DF set: its handler)"
        }
        Treatment::Rewritten if insn.mnemonic() == Mnemonic::Pushfd => {
            "sensitive, rewritten: pushes the virtual EFLAGS (guest IF, IOPL) from CpuState inline"
        }
        Treatment::Rewritten => SOFT_TLB_ACCESS,
        Treatment::Callout => callout_reason(insn),
        Treatment::Helper => helper_reason(insn),
    };
    format!("{:<9} {why}", d.treatment.name())
}

/// Why a plain memory operand is `rewritten`.
const SOFT_TLB_ACCESS: &str = "memory operand: inline soft-TLB lookup, host twin on host memory";
/// ... in a block that runs with paging off (`code`'s `tlb_lookup`).
const PAGING_OFF_ACCESS: &str = "memory operand, paging off: plain-RAM bounds checked inline (a store: its page in the store map), host twin on host memory";

/// One guest instruction of `block` as `explain` lists it, at guest EIP `at`: address, bytes,
/// the instruction, its treatment and why.
/// `slot`: the instruction's part in a page group, if it has one ([`plan_page_groups`]).
fn guest_line(
    fmt: &mut IntelFormatter,
    block: &Block<JitInsn>,
    d: &DecodedInsn<JitInsn>,
    at: u32,
    slot: Option<GroupSlot>,
) -> String {
    let mut text = String::new();
    fmt.format(&d.insn, &mut text);
    let off = d.insn.ip32().wrapping_sub(block.eip) as usize;
    let bytes: String = block.bytes[off..off + d.insn.len()].iter().map(|b| format!("{b:02x} ")).collect();
    let why = match slot {
        Some(s) if s.lead => format!(
            "rewritten memory operand: one {} for this and the next accesses through {} (a page group), host twin on host memory",
            if block.key.mode & popek_cpu::block::BlockKey::PAGING != 0 {
                "soft-TLB check of the page"
            } else if s.group.write {
                "check of the page in the store map (paging off)"
            } else {
                "check of the plain-RAM bounds (paging off)"
            },
            format!("{:?}", s.group.base).to_lowercase()
        ),
        Some(_) => {
            "rewritten memory operand: page checked by its group's first access, host twin on host memory".into()
        }
        None if block.key.mode & popek_cpu::block::BlockKey::PAGING == 0 => {
            treatment_with_reason(&d.exec, &d.insn).replace(SOFT_TLB_ACCESS, PAGING_OFF_ACCESS)
        }
        None => treatment_with_reason(&d.exec, &d.insn),
    };
    format!("  {at:#010x}  {:<18} {text:<30} {why}", bytes.trim_end())
}

/// A block the translator translated, as its log keeps it ([`Jit::set_translation_log`]).
#[derive(Clone)]
pub struct Translated {
    /// The block.
    pub block: Rc<Block<JitInsn>>,
    /// The guest EIP the translation runs at (the block's own, but for code reached at
    /// another EIP than the one it was decoded at).
    pub eip: u32,
    /// Bytes of host code made for it.
    pub host_bytes: u32,
    /// The code cache was full: this many translations (the oldest region's) were
    /// evicted to make room for this one (0 if none were).
    pub evicted: u64,
    /// How many entries the CPU's delivery log ([`popek_cpu::Cpu::deliveries`]) held when
    /// the block was translated: the interrupts and exceptions delivered before it since
    /// the log was last taken, to merge both logs in order.
    pub after_deliveries: usize,
}

impl Translated {
    /// The block's mode as `explain` says it (`32-bit code, CPL 0, paging off, flat segments`).
    pub fn mode(&self) -> String {
        mode_text(&self.block.key)
    }

    /// Its instructions as `explain` lists them (without the host code): EIP, bytes, the
    /// instruction, its treatment and why, one line each.
    pub fn instruction_lines(&self) -> Vec<String> {
        let mut fmt = IntelFormatter::new();
        let b = &*self.block;
        b.insns
            .iter()
            .zip(plan_page_groups(b))
            .map(|(d, slot)| guest_line(&mut fmt, b, d, self.eip.wrapping_add(d.insn.ip32().wrapping_sub(b.eip)), slot))
            .collect()
    }
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

fn host_listing(out: &mut String, code: &[u8], range: std::ops::Range<usize>, at: usize) {
    let mut fmt = IntelFormatter::new();
    let mut dec = Decoder::with_ip(64, &code[range.clone()], range.start as u64, DecoderOptions::NONE);
    for insn in &mut dec {
        let mut text = String::new();
        fmt.format(&insn, &mut text);
        if insn.is_call_near() || insn.is_jmp_near() {
            // Into the shared code (before the block in the buffer): by its name.
            let target = insn.near_branch64().wrapping_add(at as u64);
            if let Some(name) = usize::try_from(target).ok().and_then(|t| shared().1.name_at(t)) {
                let op = if insn.is_call_near() { "call" } else { "jmp" };
                text = format!("{op} shared {name}");
            }
        }
        let at = insn.ip() as usize;
        let bytes: String = code[at..at + insn.len()].iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(out, "        {at:04x}  {bytes:<24} {text}");
    }
}

/// One block: header, then every guest instruction with its treatment and host code,
/// as its current translation has it (or, without one, as the first translation into an
/// empty cache would: id 0, chain sites from 0). The listing places it right after the
/// shared code, wherever its region put it.
fn explain(block: &Block<JitInsn>, layout: &Layout, runs: Option<u64>) -> String {
    let mut ops = VecAssembler::<X64Relocation>::new(0);
    let ranges = emit_block(&mut ops, block, layout).ranges;
    let code = ops.finalize().unwrap_or_default();
    let mut out = String::new();
    let runs = runs.map(|n| format!(", ran {n} times")).unwrap_or_default();
    let _ = writeln!(
        out,
        "block at {:#010x} (physical {:#010x}; {}): {} instructions, {} host bytes{runs}",
        layout.eip,
        block.key.phys,
        mode_text(&block.key),
        block.insns.len(),
        code.len(),
    );
    let mut fmt = IntelFormatter::new();
    let first = ranges.first().map_or(code.len(), |r| r.start);
    let _ = writeln!(
        out,
        "    entered from the shared prologue (host registers saved, r15 = CPU state, r14 = context, guest registers loaded) or by a chain"
    );
    if layout.profile {
        let _ = writeln!(out, "    (profiling, for explain: the body's first two instructions count its runs)");
    }
    host_listing(&mut out, &code, 0..first, layout.at);
    for ((d, range), slot) in block.insns.iter().zip(&ranges).zip(plan_page_groups(block)) {
        let _ = writeln!(out, "{}", guest_line(&mut fmt, block, d, d.insn.ip32(), slot));
        host_listing(&mut out, &code, range.clone(), layout.at);
    }
    let last = ranges.last().map_or(code.len(), |r| r.end);
    let _ = writeln!(
        out,
        "    out of line: slow paths (the handler, through shared code), exits (EIP, translation, chain site; shared code stores the guest state and returns)"
    );
    host_listing(&mut out, &code, last..code.len(), layout.at);
    out
}

impl Jit {
    /// `block` explained (see `popek explain`), with its run count if profiling is on.
    pub fn explain_block(&self, block: &Block<JitInsn>) -> String {
        let entry = block.insns[0].exec.entry.get().filter(|e| self.code.is_current(*e));
        let layout = Layout {
            eip: entry.map_or(block.eip, |e| e.eip),
            id: entry.map_or(0, |e| e.id),
            profile: self.code.profile,
            flip: self.code.flip_undefined,
            plain_ram: self.code.plain_ram.unwrap_or_default(),
            first_site: entry.map_or(0, |e| e.first_site()),
            at: crate::shared::shared().1.len,
        };
        explain(block, &layout, self.code.profile.then(|| self.block_runs(block)))
    }

    /// Makes the blocks translated from now on count their runs (two instructions per
    /// block), for [`Jit::hottest_blocks`] and `popek explain`.
    pub fn set_profiling(&mut self, on: bool) {
        self.code.profile = on;
    }

    /// A test switch: the blocks translated from now on flip every flag the SDM leaves
    /// undefined right after each host twin, before the fix-ups that make them
    /// [`popek_interp::undefined::TABLE`]'s choices. The guest must see exactly what it
    /// sees without it: any difference is a missing fix-up, found on whatever host the
    /// test runs on (a flipped flag is what a host of the other vendor could produce).
    pub fn set_flip_undefined(&mut self, on: bool) {
        self.code.flip_undefined = on;
    }

    /// How many times `block` ran while profiling was on.
    pub fn block_runs(&self, block: &Block<JitInsn>) -> u64 {
        let d = &block.insns[0].exec;
        let current = d.entry.get().filter(|e| self.code.is_current(*e)).map_or(0, |e| self.code.runs(e.id));
        d.runs.get() + current
    }

    /// The `n` most executed blocks (ties broken by address, so the order is stable);
    /// needs profiling ([`Jit::set_profiling`]).
    pub fn hottest_blocks(&self, n: usize) -> Vec<&Block<JitInsn>> {
        let mut blocks: Vec<_> = self.cache.blocks().collect();
        blocks.sort_by_key(|b| (std::cmp::Reverse(self.block_runs(b)), b.key));
        blocks.truncate(n);
        blocks
    }

    /// The cached block whose instructions include the one at guest EIP `eip`: the one
    /// that starts nearest before it (a block decoded at `eip` itself first).
    pub fn block_holding(&self, eip: u32) -> Option<&Block<JitInsn>> {
        self.cache
            .blocks()
            .filter(|b| b.insns.iter().any(|d| d.insn.ip32() == eip))
            .min_by_key(|b| (eip.wrapping_sub(b.eip), b.key))
    }

    /// The cached block decoded at guest EIP `eip`, if any (the lowest physical one).
    pub fn block_at(&self, eip: u32) -> Option<&Block<JitInsn>> {
        self.cache.blocks().filter(|b| b.eip == eip).min_by_key(|b| b.key)
    }
}

/// The block at CS:EIP as the translator would translate it now, explained (see
/// `popek explain`) without running or caching it: the debugger's block view. The
/// fetch may fault (a #PF or #GP the guest would take when it ran the block).
pub fn explain_current(
    cpu: &mut popek_cpu::Cpu,
    bus: &mut dyn popek_cpu::Bus,
) -> Result<String, popek_cpu::exception::Exception> {
    let block = popek_cpu::block::decode_at(cpu, bus, &mut |insn, key| crate::translate::prepare(insn, key.mode))?;
    let layout = Layout {
        eip: block.eip,
        id: 0,
        profile: false,
        flip: false,
        plain_ram: crate::plain_ram(&cpu.mem),
        first_site: 0,
        at: crate::shared::shared().1.len,
    };
    Ok(explain(&block, &layout, None))
}
