//! The trap-and-emulate engine: a classic VMM as it would run a guest kernel on x86,
//! and fail (Popek & Goldberg 1974; Robin & Irvine 2000 for the x86 list).
//!
//! ```text
//!   BlockCache<TrapInsn> ──► execute_block_with(…, exec) ──► for each instruction:
//!                                                              │
//!     guest CPL 3, or an ordinary instruction ────────────────┼──► handler (as the interpreter)
//!     guest CPL 0, privileged (#GP at ring 1) ── "trap" ──────┼──► count, handler (emulated right)
//!     guest CPL 0, sensitive but unprivileged ── no trap ─────┴──► count, handler on the
//!                                                                   *real* ring-1 state (wrong)
//! ```
//!
//! The model: the VMM runs the guest's ring 0 in real ring 1 (ring compression, the
//! classic choice: ring 1 is still supervisor for paging, so the guest kernel's pages need
//! no change) with the real EFLAGS.IOPL = 0 and the real EFLAGS.IF = 1 at all times (the
//! VMM must keep getting the timer). It owns the real GDT, IDT, TSS and CR0. The guest's
//! CPU state ([`popek_cpu::CpuState`]) is the *virtual* state the VMM keeps for it.
//!
//! - An instruction that faults at CPL 1 ([`Class::Privileged`]: everything iced-x86 calls
//!   privileged, i.e. CPL-0-only instructions and the IOPL-sensitive CLI, STI, IN, INS, OUT,
//!   OUTS, as IOPL is 0; and IRET, whose frame names the guest kernel's RPL-0 selectors or
//!   whose IF/IOPL the CPU would ignore) traps to the VMM, which emulates it on the virtual
//!   state: the interpreter's handler, so it is right. It is counted by mnemonic.
//! - An instruction that reads or writes privileged state but does not fault at CPL 1
//!   ([`Class::Sensitive`]) never reaches the VMM: the hardware runs it on the real state.
//!   Here the interpreter's handler runs on a CPU state that shows the real machine for the
//!   instruction's duration ([`Leak`]), and the virtual state is put back afterwards: the
//!   guest sees what it would on the real machine. It is counted by mnemonic too.
//! - Guest CPL 3 (and real mode, which this VMM does not run deprivileged) runs as the
//!   interpreter runs it.
//!
//! No instruction's semantics is written here: this module only decides which state a
//! handler from [`crate::dispatch`] sees.

use crate::{InterpStats, run_cached_block};
use popek_cpu::block::BlockCache;
use popek_cpu::exception::Event;
use popek_cpu::iced_x86::{Instruction, Mnemonic, OpKind, Register};
use popek_cpu::state::flags::{IF, IOPL};
use popek_cpu::state::{TableReg, cr0};
use popek_cpu::{Bus, Cpu, ExecResult, Handler, Seg};

/// The real CPL the guest's ring 0 runs at.
pub const GUEST_KERNEL_RING: u8 = 1;

/// The real GDTR while the guest runs: the VMM's own GDT, in the top 4 MiB of the linear
/// address space, which the VMM keeps for itself (32 descriptors).
pub const VMM_GDTR: TableReg = TableReg { base: 0xffc0_0000, limit: 0x00ff };

/// The real IDTR while the guest runs: the VMM's IDT (256 gates), next to its GDT. Every
/// interrupt and exception goes to the VMM first, which reflects it to the guest.
pub const VMM_IDTR: TableReg = TableReg { base: 0xffc0_1000, limit: 0x07ff };

/// The real LDTR selector: the VMM uses no LDT.
pub const VMM_LDTR: u16 = 0;

/// The real task register: the VMM's TSS (GDT entry 8), whose ESP0 is the VMM's stack.
pub const VMM_TR: u16 = 0x0040;

/// The real CR0: protected mode with paging, write protection, native x87 errors
/// (PE | MP | ET | NE | WP | PG; SMSW shows the low word, 0x0033).
pub const VMM_CR0: u32 = cr0::PE | cr0::MP | cr0::ET | cr0::NE | cr0::WP | cr0::PG;

/// What a sensitive, unprivileged instruction shows of the real machine at ring 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leak {
    /// PUSHF/PUSHFD push the real IF (1) and IOPL (0); POPF/POPFD at CPL 1 with IOPL 0
    /// silently keep IF and IOPL (SDM Vol. 2B POPF): the guest's `popf` can neither
    /// enable nor disable its interrupts.
    Flags,
    /// SGDT, SIDT, SLDT, STR store the VMM's table registers ([`VMM_GDTR`], …).
    Tables,
    /// SMSW stores the low word of the real CR0 ([`VMM_CR0`]).
    Cr0,
    /// `MOV r/m, CS|SS` and `PUSH CS|SS` show selectors whose RPL is the real CPL, 1.
    Rpl,
    /// LAR, LSL, VERR, VERW check privilege against the real CPL, 1: a DPL-0 descriptor
    /// is not accessible (ZF = 0).
    Cpl,
}

/// How the trap-and-emulate VMM sees an instruction executed by the guest kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Behaves the same at ring 1 as at ring 0.
    Ordinary,
    /// Faults at ring 1: traps to the VMM, which emulates it.
    Privileged,
    /// Sensitive but not privileged: runs on the real state without a trap.
    Sensitive(Leak),
}

/// The class of `insn` under this VMM (see the module documentation).
pub fn class_of(insn: &Instruction) -> Class {
    use Mnemonic::*;
    let sreg = |kind: OpKind, reg: Register| kind == OpKind::Register && matches!(reg, Register::CS | Register::SS);
    if insn.is_invalid() {
        return Class::Ordinary;
    }
    match insn.mnemonic() {
        Pushf | Pushfd | Popf | Popfd => Class::Sensitive(Leak::Flags),
        Sgdt | Sidt | Sldt | Str => Class::Sensitive(Leak::Tables),
        Smsw => Class::Sensitive(Leak::Cr0),
        Lar | Lsl | Verr | Verw => Class::Sensitive(Leak::Cpl),
        Mov if sreg(insn.op1_kind(), insn.op1_register()) => Class::Sensitive(Leak::Rpl),
        Push if sreg(insn.op0_kind(), insn.op0_register()) => Class::Sensitive(Leak::Rpl),
        Iret | Iretd => Class::Privileged,
        // A hypercall is a trap by design (VMCALL is #UD on a CPU without VMX: the VMM
        // takes it either way).
        Vmcall => Class::Privileged,
        _ if insn.is_privileged() => Class::Privileged,
        _ => Class::Ordinary,
    }
}

/// The parts of the virtual state that [`run_on_real_state`] replaces.
struct Virtual {
    cpl: u8,
    flags: u32,
    cs: u16,
    ss: u16,
    gdtr: TableReg,
    idtr: TableReg,
    ldtr: u16,
    tr: u16,
    cr0: u32,
}

/// Runs `handler` on `cpu` as the real CPU would run it at ring 1 under this VMM: the
/// state `leak` names is the real one while it runs (and the CPL is 1), and the guest's
/// virtual values are put back afterwards, whether it faulted or not. What the handler
/// wrote elsewhere (registers, memory, the other EFLAGS bits) stays.
pub fn run_on_real_state(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    insn: &Instruction,
    handler: Handler,
    leak: Leak,
) -> ExecResult {
    let s = &mut cpu.state;
    let saved = Virtual {
        cpl: s.cpl,
        flags: s.eflags & (IF | IOPL),
        cs: s.seg[Seg::Cs as usize].selector,
        ss: s.seg[Seg::Ss as usize].selector,
        gdtr: s.gdtr,
        idtr: s.idtr,
        ldtr: s.ldtr.selector,
        tr: s.tr.selector,
        cr0: s.cr0,
    };
    s.cpl = GUEST_KERNEL_RING;
    match leak {
        Leak::Flags => s.eflags = (s.eflags & !IOPL) | IF,
        Leak::Tables => {
            s.gdtr = VMM_GDTR;
            s.idtr = VMM_IDTR;
            s.ldtr.selector = VMM_LDTR;
            s.tr.selector = VMM_TR;
        }
        Leak::Cr0 => s.cr0 = VMM_CR0,
        Leak::Rpl => {
            for seg in [Seg::Cs, Seg::Ss] {
                let sel = &mut s.seg[seg as usize].selector;
                *sel = (*sel & !3) | GUEST_KERNEL_RING as u16;
            }
        }
        Leak::Cpl => {}
    }
    let result = handler(cpu, bus, insn);
    let s = &mut cpu.state;
    s.cpl = saved.cpl;
    s.eflags = (s.eflags & !(IF | IOPL)) | saved.flags;
    s.seg[Seg::Cs as usize].selector = saved.cs;
    s.seg[Seg::Ss as usize].selector = saved.ss;
    s.gdtr = saved.gdtr;
    s.idtr = saved.idtr;
    s.ldtr.selector = saved.ldtr;
    s.tr.selector = saved.tr;
    s.cr0 = saved.cr0;
    result
}

/// One decoded instruction of the trap engine: its handler and its class.
#[derive(Clone, Copy, Debug)]
pub struct TrapInsn {
    /// The interpreter's handler ([`crate::dispatch::handler_for`]).
    pub handler: Handler,
    /// How the VMM sees it.
    pub class: Class,
}

impl TrapInsn {
    /// The handler and class of `insn`.
    pub fn new(insn: &Instruction) -> Self {
        TrapInsn { handler: crate::dispatch::handler_for(insn), class: class_of(insn) }
    }

    /// Executes `insn` (which this was made from) as the guest runs it under the VMM,
    /// counting traps and silent sensitive instructions in `stats`: at guest CPL 0 in
    /// protected mode, a privileged instruction traps and is emulated (its handler), a
    /// sensitive one runs on the real state ([`run_on_real_state`]); anything else, and
    /// everything at CPL 1 to 3 or in real mode, runs as in the interpreter.
    #[inline]
    pub fn execute(&self, cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction, stats: &mut TrapStats) -> ExecResult {
        if self.class == Class::Ordinary || cpu.state.cpl != 0 || cpu.state.cr0 & cr0::PE == 0 {
            return (self.handler)(cpu, bus, insn);
        }
        match self.class {
            Class::Sensitive(leak) => {
                bump(&mut stats.silent, insn.mnemonic());
                run_on_real_state(cpu, bus, insn, self.handler, leak)
            }
            _ => {
                bump(&mut stats.traps, insn.mnemonic());
                (self.handler)(cpu, bus, insn)
            }
        }
    }
}

impl crate::HasHandler for TrapInsn {
    #[inline(always)]
    fn handler(&self) -> Handler {
        self.handler
    }
}

/// What the guest kernel did under the trap-and-emulate VMM, by mnemonic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrapStats {
    traps: Vec<u64>,
    silent: Vec<u64>,
}

impl Default for TrapStats {
    fn default() -> Self {
        let n = Mnemonic::values().count();
        TrapStats { traps: vec![0; n], silent: vec![0; n] }
    }
}

impl TrapStats {
    /// Privileged instructions that trapped to the VMM (and were emulated), most frequent
    /// first (ties in mnemonic order).
    pub fn traps(&self) -> Vec<(Mnemonic, u64)> {
        by_count(&self.traps)
    }

    /// Sensitive instructions that did not trap (and ran wrongly), most frequent first.
    pub fn silent(&self) -> Vec<(Mnemonic, u64)> {
        by_count(&self.silent)
    }

    /// All traps.
    pub fn total_traps(&self) -> u64 {
        self.traps.iter().sum()
    }

    /// All sensitive instructions that did not trap.
    pub fn total_silent(&self) -> u64 {
        self.silent.iter().sum()
    }
}

fn by_count(counts: &[u64]) -> Vec<(Mnemonic, u64)> {
    let mut v: Vec<_> = Mnemonic::values().zip(counts.iter().copied()).filter(|&(_, n)| n > 0).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| (a.0 as u32).cmp(&(b.0 as u32))));
    v
}

fn bump(counts: &mut [u64], m: Mnemonic) {
    if let Some(n) = counts.get_mut(m as usize) {
        *n += 1;
    }
}

/// The trap-and-emulate engine: the interpreter's blocks and handlers, with the guest
/// kernel deprivileged to ring 1 (see the module documentation).
#[derive(Default)]
pub struct TrapEngine {
    /// Decoded blocks.
    pub cache: BlockCache<TrapInsn>,
    /// Counters shared with the interpreter (retired, blocks, exceptions).
    pub stats: InterpStats,
    /// Traps and sensitive instructions that did not trap.
    pub trap_stats: TrapStats,
}

impl TrapEngine {
    /// A fresh engine with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Executes the block at CS:EIP, as [`crate::Interpreter::run_block`].
    pub fn run_block(&mut self, cpu: &mut Cpu, bus: &mut dyn Bus) -> Result<u32, Event> {
        self.run_block_within(cpu, bus, u64::MAX)
    }

    /// Executes the block at CS:EIP with `room` instructions left before the run loop must
    /// look at the machine, as [`crate::Interpreter::run_block_within`].
    pub fn run_block_within(&mut self, cpu: &mut Cpu, bus: &mut dyn Bus, room: u64) -> Result<u32, Event> {
        let counts = &mut self.trap_stats;
        run_cached_block(
            &mut self.cache,
            cpu,
            bus,
            room,
            usize::MAX,
            &mut self.stats,
            &mut |insn, _| TrapInsn::new(insn),
            |d: &TrapInsn, cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction| d.execute(cpu, bus, insn, counts),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{CODE_BASE, DATA_BASE, GDT_BASE, TestBox};
    use popek_cpu::block::DECODER_OPTIONS;
    use popek_cpu::iced_x86::Decoder;
    use popek_cpu::state::flags::{CF, FIXED1, ZF};
    use popek_cpu::state::gpr::*;

    /// Runs the TestBox's code (ending in its HLT) under the trap engine.
    fn run_trap(t: &mut TestBox) -> TrapEngine {
        let mut e = TrapEngine::new();
        for _ in 0..16 {
            if t.cpu.state.halted {
                break;
            }
            e.run_block(&mut t.cpu, &mut t.bus).expect("no host-side event");
        }
        assert!(t.cpu.state.halted, "ran to the HLT");
        e
    }

    /// Runs the same code under the interpreter.
    fn run_interp(t: &mut TestBox) {
        for _ in 0..16 {
            if t.cpu.state.halted {
                break;
            }
            t.interp.run_block(&mut t.cpu, &mut t.bus).expect("no host-side event");
        }
        assert!(t.cpu.state.halted, "ran to the HLT");
    }

    /// Both engines on `code` from the same start (`setup`): (interpreter, trap engine, its engine).
    fn both(code: &[u8], setup: impl Fn(&mut TestBox)) -> (TestBox, TestBox, TrapEngine) {
        let (mut a, mut b) = (TestBox::new(code), TestBox::new(code));
        setup(&mut a);
        setup(&mut b);
        run_interp(&mut a);
        let e = run_trap(&mut b);
        (a, b, e)
    }

    /// Counts by lowercase mnemonic.
    type Counts = Vec<(String, u64)>;

    fn names(v: Vec<(Mnemonic, u64)>) -> Counts {
        v.into_iter().map(|(m, n)| (format!("{m:?}").to_lowercase(), n)).collect()
    }

    fn counts(e: &TrapEngine) -> (Counts, Counts) {
        (names(e.trap_stats.traps()), names(e.trap_stats.silent()))
    }

    fn s(v: &[(&str, u64)]) -> Counts {
        v.iter().map(|&(m, n)| (m.to_string(), n)).collect()
    }

    fn decode(bytes: &[u8]) -> Instruction {
        Decoder::with_ip(32, bytes, CODE_BASE as u64, DECODER_OPTIONS).decode()
    }

    /// Every instruction in the three classes the VMM sees.
    #[test]
    fn classes() {
        let privileged: &[&[u8]] = &[
            &[0xfa],             // cli
            &[0xfb],             // sti
            &[0xf4],             // hlt
            &[0x0f, 0x22, 0xd8], // mov cr3, eax
            &[0x0f, 0x20, 0xc0], // mov eax, cr0
            &[0x0f, 0x23, 0xf8], // mov dr7, eax
            &[0x0f, 0x01, 0x10], // lgdt [eax]
            &[0x0f, 0x01, 0x18], // lidt [eax]
            &[0x0f, 0x00, 0xd0], // lldt ax
            &[0x0f, 0x00, 0xd8], // ltr ax
            &[0x0f, 0x01, 0xf0], // lmsw ax
            &[0x0f, 0x06],       // clts
            &[0x0f, 0x01, 0x38], // invlpg [eax]
            &[0xe4, 0x80],       // in al, 0x80
            &[0xee],             // out dx, al
            &[0x6c],             // insb
            &[0x6f],             // outsd
            &[0x0f, 0x32],       // rdmsr
            &[0x0f, 0x30],       // wrmsr
            &[0x0f, 0x09],       // wbinvd
            &[0x0f, 0x08],       // invd
            &[0xcf],             // iretd
            &[0x66, 0xcf],       // iret
        ];
        for b in privileged {
            assert_eq!(class_of(&decode(b)), Class::Privileged, "{b:02x?}");
        }
        let sensitive: &[(&[u8], Leak)] = &[
            (&[0x9c], Leak::Flags),              // pushfd
            (&[0x66, 0x9c], Leak::Flags),        // pushf
            (&[0x9d], Leak::Flags),              // popfd
            (&[0x66, 0x9d], Leak::Flags),        // popf
            (&[0x0f, 0x01, 0x00], Leak::Tables), // sgdt [eax]
            (&[0x0f, 0x01, 0x08], Leak::Tables), // sidt [eax]
            (&[0x0f, 0x00, 0xc0], Leak::Tables), // sldt eax
            (&[0x0f, 0x00, 0xc8], Leak::Tables), // str eax
            (&[0x0f, 0x01, 0xe0], Leak::Cr0),    // smsw eax
            (&[0x0f, 0x02, 0xc3], Leak::Cpl),    // lar eax, ebx
            (&[0x0f, 0x03, 0xc3], Leak::Cpl),    // lsl eax, ebx
            (&[0x0f, 0x00, 0xe0], Leak::Cpl),    // verr ax
            (&[0x0f, 0x00, 0xe8], Leak::Cpl),    // verw ax
            (&[0x8c, 0xc8], Leak::Rpl),          // mov eax, cs
            (&[0x8c, 0x10], Leak::Rpl),          // mov [eax], ss
            (&[0x0e], Leak::Rpl),                // push cs
            (&[0x16], Leak::Rpl),                // push ss
        ];
        for &(b, leak) in sensitive {
            assert_eq!(class_of(&decode(b)), Class::Sensitive(leak), "{b:02x?}");
        }
        let ordinary: &[&[u8]] = &[
            &[0x8c, 0xd8], // mov eax, ds
            &[0x8e, 0xd0], // mov ss, ax (a load: RPL 0 selectors are the VMM's business)
            &[0x1e],       // push ds
            &[0x01, 0xd8], // add eax, ebx
            &[0x0f, 0x31], // rdtsc (CR4.TSD = 0)
            &[0x0f, 0xa2], // cpuid
            &[0xcd, 0x80], // int 0x80
            &[0x0f, 0x0b], // ud2
        ];
        for b in ordinary {
            assert_eq!(class_of(&decode(b)), Class::Ordinary, "{b:02x?}");
        }
    }

    /// `push 0x3203 ; popfd` with IF = 0: at ring 0 POPFD sets IF and IOPL 3; at ring 1
    /// with IOPL 0 it silently keeps both (CF still changes). The HLT traps.
    #[test]
    fn popf_keeps_if_and_iopl() {
        let (a, b, e) = both(&[0x68, 0x03, 0x32, 0, 0, 0x9d], |_| {});
        assert_eq!(a.cpu.state.eflags & (IF | IOPL | CF), IF | IOPL | CF);
        assert_eq!(b.cpu.state.eflags & (IF | IOPL | CF), CF, "IF and IOPL kept, CF popped");
        assert_eq!(counts(&e), (s(&[("hlt", 1)]), s(&[("popfd", 1)])));

        // And the other way: with IF = 1, a POPF that clears it leaves it set.
        let (a, b, _) = both(&[0x6a, 0x02, 0x66, 0x9d], |t| t.cpu.state.eflags |= IF);
        assert_eq!(a.cpu.state.eflags & IF, 0);
        assert_eq!(b.cpu.state.eflags & IF, IF, "16-bit POPF could not clear IF");
    }

    /// `pushfd ; pop eax` after CLI with the guest's IOPL 3: the image has the real IF
    /// (1) and IOPL (0); the virtual flags are unchanged.
    #[test]
    fn pushf_shows_the_real_if_and_iopl() {
        let (a, b, e) = both(&[0xfa, 0x9c, 0x58], |t| t.cpu.state.eflags |= IF | IOPL);
        assert_eq!(a.cpu.state.gpr[EAX], FIXED1 | IOPL);
        assert_eq!(b.cpu.state.gpr[EAX], FIXED1 | IF, "real IF = 1, IOPL = 0");
        assert_eq!(b.cpu.state.eflags & (IF | IOPL), IOPL, "virtual IF still 0, IOPL 3");
        assert_eq!(counts(&e), (s(&[("cli", 1), ("hlt", 1)]), s(&[("pushfd", 1)])));
    }

    /// SGDT, SIDT, SLDT, STR store the VMM's registers, not the guest's.
    #[test]
    fn table_stores_reveal_the_vmm() {
        const D: u32 = DATA_BASE;
        // sgdt [D] ; sidt [D+8] ; sldt ecx ; str edx
        let code = [
            0x0f, 0x01, 0x05, 0, 0, 1, 0, // sgdt [0x10000]
            0x0f, 0x01, 0x0d, 8, 0, 1, 0, // sidt [0x10008]
            0x0f, 0x00, 0xc1, // sldt ecx
            0x0f, 0x00, 0xca, // str edx
        ];
        assert_eq!(D, 0x10000);
        let setup = |t: &mut TestBox| {
            t.cpu.state.gdtr = TableReg { base: 0x0010_2000, limit: 0x7f };
            t.cpu.state.idtr = TableReg { base: 0x0010_3000, limit: 0x17f };
            t.cpu.state.ldtr.selector = 0x30;
            t.cpu.state.tr.selector = 0x28;
            t.cpu.state.gpr[ECX] = 0xffff_ffff;
            t.cpu.state.gpr[EDX] = 0xffff_ffff;
        };
        let (a, b, e) = both(&code, setup);
        let table = |t: &TestBox, at: u32| (t.peek32(at) & 0xffff, t.peek32(at + 2));
        assert_eq!(table(&a, D), (0x7f, 0x0010_2000));
        assert_eq!(table(&a, D + 8), (0x17f, 0x0010_3000));
        assert_eq!((a.cpu.state.gpr[ECX], a.cpu.state.gpr[EDX]), (0x30, 0x28));
        assert_eq!(table(&b, D), (VMM_GDTR.limit as u32, VMM_GDTR.base));
        assert_eq!(table(&b, D + 8), (VMM_IDTR.limit as u32, VMM_IDTR.base));
        assert_eq!((b.cpu.state.gpr[ECX], b.cpu.state.gpr[EDX]), (VMM_LDTR as u32, VMM_TR as u32));
        assert_eq!(b.cpu.state.gdtr, a.cpu.state.gdtr, "the guest's GDTR is still its own");
        assert_eq!((b.cpu.state.ldtr.selector, b.cpu.state.tr.selector), (0x30, 0x28));
        assert_eq!(counts(&e).1, s(&[("sgdt", 1), ("sidt", 1), ("sldt", 1), ("str", 1)]));
    }

    /// SMSW shows the real CR0's low word; MOV from CR0 traps and shows the guest's.
    #[test]
    fn smsw_shows_the_real_cr0() {
        // smsw ax ; mov ebx, cr0
        let (a, b, e) = both(&[0x66, 0x0f, 0x01, 0xe0, 0x0f, 0x20, 0xc3], |t| t.cpu.state.gpr[EAX] = 0xdead_0000);
        assert_eq!(a.cpu.state.gpr[EAX], 0xdead_0011);
        assert_eq!(b.cpu.state.gpr[EAX], 0xdead_0033, "VMM_CR0's low word");
        assert_eq!((a.cpu.state.gpr[EBX], b.cpu.state.gpr[EBX]), (0x11, 0x11), "MOV from CR0 is emulated");
        assert_eq!(b.cpu.state.cr0, 0x11);
        assert_eq!(counts(&e), (s(&[("hlt", 1), ("mov", 1)]), s(&[("smsw", 1)])));
    }

    /// Reading CS or SS shows RPL 1; DS is not sensitive.
    #[test]
    fn cs_and_ss_show_rpl_1() {
        // mov eax, cs ; mov ebx, ss ; push cs ; pop ecx ; push ss ; pop esi ; mov edx, ds
        let code = [0x8c, 0xc8, 0x8c, 0xd3, 0x0e, 0x59, 0x16, 0x5e, 0x8c, 0xda];
        let (a, b, e) = both(&code, |_| {});
        let regs = |t: &TestBox| [EAX, EBX, ECX, ESI, EDX].map(|r| t.cpu.state.gpr[r] & 0xffff);
        assert_eq!(regs(&a), [0x08, 0x10, 0x08, 0x10, 0x10]);
        assert_eq!(regs(&b), [0x09, 0x11, 0x09, 0x11, 0x10]);
        assert_eq!(b.cpu.state.seg[Seg::Cs as usize].selector, 0x08, "the virtual CS is unchanged");
        assert_eq!(b.cpu.state.cpl, 0);
        assert_eq!(counts(&e).1, s(&[("mov", 2), ("push", 2)]));
    }

    /// LAR, LSL, VERR, VERW on the guest's DPL-0 selectors fail (ZF = 0) at the real CPL
    /// 1; on a DPL-3 selector they answer as at ring 0.
    #[test]
    fn lar_lsl_verr_verw_answer_for_ring_1() {
        // Each ZF is kept with SETZ: EBX = 0x08 (code, DPL 0), SI = 0x10 (data, DPL 0),
        // DI = 0x1b (data, DPL 3).
        let code = [
            0x0f, 0x02, 0xc3, // lar eax, ebx
            0x0f, 0x94, 0xc1, // setz cl
            0x0f, 0x03, 0xd3, // lsl edx, ebx
            0x0f, 0x94, 0xc5, // setz ch
            0x0f, 0x00, 0xe6, // verr si
            0x0f, 0x94, 0xc7, // setz bh
            0x0f, 0x00, 0xee, // verw si
            0x0f, 0x94, 0xc3, // setz bl
            0x0f, 0x00, 0xe7, // verr di (0x1b, DPL 3)
        ];
        let setup = |t: &mut TestBox| {
            t.install_exception_handlers();
            // A DPL-3 data segment as entry 3.
            t.poke(GDT_BASE + 24, &0x00cf_f200_0000_ffffu64.to_le_bytes());
            t.cpu.state.gdtr.limit = 8 * 4 - 1;
            t.cpu.state.gpr[EBX] = 0x08;
            t.cpu.state.gpr[ESI] = 0x10;
            t.cpu.state.gpr[EDI] = 0x1b;
            t.cpu.state.gpr[EAX] = 0;
            t.cpu.state.gpr[EDX] = 0;
        };
        let (a, b, e) = both(&code, setup);
        // CL, CH: LAR and LSL of 0x08; BH, BL: VERR and VERW of 0x10 (EBX's low word).
        assert_eq!(a.cpu.state.gpr[ECX] & 0xffff, 0x0101);
        assert_eq!(a.cpu.state.gpr[EBX] & 0xffff, 0x0101);
        assert_eq!(a.cpu.state.gpr[EAX] & !0x100, 0x00c0_9a00, "access rights of 0x08 (A may be set)");
        assert_eq!(a.cpu.state.gpr[EDX], 0xffff_ffff);
        assert_eq!(b.cpu.state.gpr[ECX] & 0xffff, 0, "LAR and LSL fail at CPL 1");
        assert_eq!(b.cpu.state.gpr[EBX] & 0xffff, 0, "VERR and VERW fail at CPL 1");
        assert_eq!((b.cpu.state.gpr[EAX], b.cpu.state.gpr[EDX]), (0, 0), "no result written");
        for t in [&a, &b] {
            assert_eq!(t.cpu.state.eflags & ZF, ZF, "VERR of a DPL-3 segment succeeds at either ring");
        }
        assert_eq!(counts(&e).1, s(&[("verr", 2), ("lar", 1), ("lsl", 1), ("verw", 1)]));
    }

    /// At CPL 3 the trap engine is the interpreter: nothing is counted, PUSHF shows the
    /// guest's flags, MOV from CS its RPL 3.
    #[test]
    fn cpl_3_runs_as_the_interpreter() {
        let mut t = TestBox::new(&[]);
        t.cpu.state.cpl = 3;
        t.cpu.state.seg[Seg::Cs as usize].selector = 0x1b;
        t.cpu.state.eflags = FIXED1; // IF = 0, IOPL = 0
        let mut stats = TrapStats::default();
        let mut one = |t: &mut TestBox, bytes: &[u8]| {
            let insn = decode(bytes);
            t.cpu.state.eip = CODE_BASE + insn.len() as u32;
            TrapInsn::new(&insn).execute(&mut t.cpu, &mut t.bus, &insn, &mut stats)
        };
        assert_eq!(one(&mut t, &[0x9c]), Ok(())); // pushfd
        assert_eq!(t.stack(0), FIXED1);
        assert_eq!(one(&mut t, &[0x8c, 0xc8]), Ok(())); // mov eax, cs
        assert_eq!(t.cpu.state.gpr[EAX] & 0xffff, 0x1b);
        assert!(one(&mut t, &[0xfa]).is_err(), "CLI at CPL 3 is #GP, as in the interpreter");
        assert_eq!((stats.total_traps(), stats.total_silent()), (0, 0));
    }

    /// A sensitive instruction that faults leaves the virtual state as it was.
    #[test]
    fn a_faulting_sensitive_instruction_restores_the_virtual_state() {
        let mut t = TestBox::new(&[]);
        t.cpu.state.gpr[ESP] = 0; // PUSHFD would store at 0xfffffffc, past SS's limit: #SS
        t.cpu.state.seg[Seg::Ss as usize].limit = 0xfff;
        let before = t.cpu.state.clone();
        let insn = decode(&[0x9c]);
        t.cpu.state.eip = CODE_BASE + 1;
        let mut stats = TrapStats::default();
        assert!(TrapInsn::new(&insn).execute(&mut t.cpu, &mut t.bus, &insn, &mut stats).is_err());
        t.cpu.state.eip = before.eip;
        assert_eq!(t.cpu.state, before);
        assert_eq!(stats.total_silent(), 1);
    }
}
