//! Machine-state instructions: CLI, STI, PUSHF(D), POPF(D), CPUID, RDTSC, RDMSR,
//! WRMSR, WBINVD, INVD, CLTS, UD0/UD1/UD2 (SDM Vol. 2, each instruction's page;
//! EFLAGS in Vol. 1 3.4.3; MSRs in Vol. 4).
//!
//! POPF is the textbook Popek–Goldberg violation: at CPL 3 with IOPL 0 it
//! silently keeps IF instead of trapping, so a trap-and-emulate VMM never sees it.
//! popek implements the SDM's rules exactly; protected mode only (no VME/PVI, no
//! virtual-8086 mode).

use crate::require_cpl0;
use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::{Instruction, Mnemonic};
use popek_cpu::state::cr0;
use popek_cpu::state::cr4;
use popek_cpu::state::flags::{self, AC, ARITH, DF, FIXED1, ID, IF, IOPL, NT, PUSHF_CLEARS, RF, TF};
use popek_cpu::state::gpr::{EAX, EBX, ECX, EDX};
use popek_cpu::{Bus, Cpu, ExecResult, Handler};

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    Some(match insn.mnemonic() {
        Mnemonic::Cli => cli,
        Mnemonic::Sti => sti,
        Mnemonic::Pushf => pushf::<2>,
        Mnemonic::Pushfd => pushf::<4>,
        Mnemonic::Popf => popf::<2>,
        Mnemonic::Popfd => popf::<4>,
        Mnemonic::Cpuid => cpuid,
        Mnemonic::Rdtsc => rdtsc,
        Mnemonic::Rdmsr => rdmsr,
        Mnemonic::Wrmsr => wrmsr,
        Mnemonic::Wbinvd | Mnemonic::Invd => cache_flush,
        Mnemonic::Clts => clts,
        Mnemonic::Ud0 | Mnemonic::Ud1 | Mnemonic::Ud2 => ud,
        _ => return None,
    })
}

/// #GP(0) unless CPL <= IOPL (CLI/STI in protected mode without VME/PVI).
#[inline]
fn require_iopl(cpu: &Cpu) -> Result<(), Exception> {
    if cpu.state.cpl <= cpu.state.iopl() { Ok(()) } else { Err(Exception::GeneralProtection(0)) }
}

/// CLI: IF := 0 if CPL <= IOPL, else #GP(0).
fn cli(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    require_iopl(cpu)?;
    cpu.state.eflags &= !IF;
    Ok(())
}

/// STI: IF := 1 if CPL <= IOPL, else #GP(0). If IF was 0, interrupts stay
/// inhibited until the next instruction retires (the STI shadow).
fn sti(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    require_iopl(cpu)?;
    if cpu.state.eflags & IF == 0 {
        cpu.state.interrupt_shadow = true;
    }
    cpu.state.eflags |= IF;
    Ok(())
}

/// PUSHF (W = 2) / PUSHFD (W = 4): the image has VM and RF cleared.
fn pushf<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Instruction) -> ExecResult {
    let image = cpu.state.eflags & !PUSHF_CLEARS;
    cpu.push(bus, image, W)?;
    Ok(())
}

/// EFLAGS bits POPF can ever write on this CPU (a P6 with CPUID: AC and ID exist).
const POPF_WRITABLE: u32 = ARITH | TF | IF | DF | IOPL | NT | AC | ID;

/// The new EFLAGS after POPF/POPFD of `popped` (W = 2 or 4 bytes), protected mode
/// with VM = 0 (SDM Vol. 2 POPF "Operation"):
/// - CPL 0: IOPL and IF may change;
/// - CPL > 0: IOPL never changes; IF changes only if CPL <= IOPL, and otherwise is
///   silently kept (no fault);
/// - VM, VIP and VIF are never changed; RF is cleared by POPFD (a 16-bit POPF
///   leaves bits 16–31 alone); bit 1 is 1 and bits 3, 5, 15 are 0.
pub fn popf_result(old: u32, popped: u32, cpl: u8, width: u32) -> u32 {
    let iopl = ((old & IOPL) >> flags::IOPL_SHIFT) as u8;
    let mut writable = POPF_WRITABLE;
    if cpl > 0 {
        writable &= !IOPL;
    }
    if cpl > iopl {
        writable &= !IF;
    }
    if width == 2 {
        writable &= 0xffff;
    }
    let mut new = (old & !writable) | (popped & writable);
    if width == 4 {
        new &= !RF;
    }
    new | FIXED1
}

/// POPF (W = 2) / POPFD (W = 4). See [`popf_result`].
fn popf<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Instruction) -> ExecResult {
    let popped = cpu.pop(bus, W)?;
    cpu.state.eflags = popf_result(cpu.state.eflags, popped, cpu.state.cpl, W);
    Ok(())
}

/// CPUID leaf 0 vendor string "GenuineIntel" as EBX, EDX, ECX.
const VENDOR: [u32; 3] = [u32::from_le_bytes(*b"Genu"), u32::from_le_bytes(*b"ineI"), u32::from_le_bytes(*b"ntel")];

/// CPUID leaf 1 EAX: family 6, model 5, stepping 0 (a Pentium II-class P6: model 5, the
/// Pentium II of 1998, brought FXSAVE/FXRSTOR, still without SSE).
pub const CPUID_SIGNATURE: u32 = (6 << 8) | (5 << 4);

/// CPUID leaf 1 EDX feature bits (SDM Vol. 2 CPUID, Table 3-11).
pub mod features {
    /// On-chip x87 FPU.
    pub const FPU: u32 = 1 << 0;
    /// Page size extension (4 MiB pages).
    pub const PSE: u32 = 1 << 3;
    /// RDTSC.
    pub const TSC: u32 = 1 << 4;
    /// RDMSR/WRMSR.
    pub const MSR: u32 = 1 << 5;
    /// CMPXCHG8B.
    pub const CX8: u32 = 1 << 8;
    /// On-chip local APIC (xAPIC at 0xFEE00000, `IA32_APIC_BASE`).
    pub const APIC: u32 = 1 << 9;
    /// Global pages (CR4.PGE).
    pub const PGE: u32 = 1 << 13;
    /// CMOVcc.
    pub const CMOV: u32 = 1 << 15;
    /// FXSAVE/FXRSTOR, and CR4.OSFXSR may be set.
    pub const FXSR: u32 = 1 << 24;
}

/// What popek reports in CPUID.1:EDX: only what it implements (no SEP, no
/// VME/DE/PAE/MMX/SSE). The APIC bit stays set when software clears
/// `IA32_APIC_BASE` bit 11 (the platform owns that MSR; CPUID is constant).
pub const CPUID_FEATURES_EDX: u32 = features::FPU
    | features::PSE
    | features::TSC
    | features::MSR
    | features::CX8
    | features::APIC
    | features::PGE
    | features::CMOV
    | features::FXSR;

/// The four CPUID result registers for leaf `eax` (ECX is not used by leaves 0–1).
/// Leaf 0: highest leaf 1 and the vendor; leaf 1: signature and features; any
/// other leaf (including 0x8000_0000, so no extended leaves) reads zeros.
pub fn cpuid_leaf(eax: u32) -> [u32; 4] {
    match eax {
        0 => [1, VENDOR[0], VENDOR[2], VENDOR[1]],
        1 => [CPUID_SIGNATURE, 0, 0, CPUID_FEATURES_EDX],
        _ => [0; 4],
    }
}

/// CPUID (not privileged): EAX, EBX, ECX, EDX from [`cpuid_leaf`], or from the
/// hypervisor leaves while the paravirtual interface is on ([`crate::hypercall::cpuid_leaf`]).
fn cpuid(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    let leaf = cpu.state.gpr[EAX];
    let hypervisor = if cpu.paravirt { crate::hypercall::cpuid_leaf(leaf) } else { None };
    let [a, b, c, d] = hypervisor.unwrap_or_else(|| cpuid_leaf(leaf));
    cpu.state.gpr[EAX] = a;
    cpu.state.gpr[EBX] = b;
    cpu.state.gpr[ECX] = c;
    cpu.state.gpr[EDX] = d;
    Ok(())
}

/// RDTSC: EDX:EAX := TSC; #GP(0) if CR4.TSD and CPL > 0. (The machine advances
/// `state.tsc`; this only reads it.)
fn rdtsc(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    if cpu.state.cr4 & cr4::TSD != 0 && cpu.state.cpl > 0 {
        return Err(Exception::GeneralProtection(0).into());
    }
    let t = cpu.state.tsc.wrapping_add(cpu.state.tsc_offset);
    cpu.state.gpr[EAX] = t as u32;
    cpu.state.gpr[EDX] = (t >> 32) as u32;
    Ok(())
}

/// Model-specific registers the CPU state holds (SDM Vol. 4 Table 2-2); the platform's
/// (IA32_APIC_BASE, 0x1B) are the bus's.
pub mod msr {
    /// IA32_TIME_STAMP_COUNTER.
    pub const IA32_TSC: u32 = 0x10;
    /// IA32_BIOS_SIGN_ID: the loaded microcode update's signature (P6 and later).
    pub const IA32_BIOS_SIGN_ID: u32 = 0x8b;
    /// IA32_SYSENTER_CS.
    pub const IA32_SYSENTER_CS: u32 = 0x174;
    /// IA32_SYSENTER_ESP.
    pub const IA32_SYSENTER_ESP: u32 = 0x175;
    /// IA32_SYSENTER_EIP.
    pub const IA32_SYSENTER_EIP: u32 = 0x176;
}

/// RDMSR (CPL 0): EDX:EAX := MSR[ECX]; #GP(0) for an MSR popek does not have. The
/// CPU's own MSRs live in its state; the platform's (`IA32_APIC_BASE`, of the local
/// APIC) are the bus's.
fn rdmsr(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Instruction) -> ExecResult {
    require_cpl0(cpu)?;
    let s = &cpu.state;
    let v: u64 = match s.gpr[ECX] {
        msr::IA32_TSC => s.tsc.wrapping_add(s.tsc_offset),
        // No microcode update is loaded: the signature reads 0.
        msr::IA32_BIOS_SIGN_ID => 0,
        msr::IA32_SYSENTER_CS => s.sysenter_cs as u64,
        msr::IA32_SYSENTER_ESP => s.sysenter_esp as u64,
        msr::IA32_SYSENTER_EIP => s.sysenter_eip as u64,
        other => bus.read_msr(other).ok_or(Exception::GeneralProtection(0))?,
    };
    cpu.state.gpr[EAX] = v as u32;
    cpu.state.gpr[EDX] = (v >> 32) as u32;
    Ok(())
}

/// WRMSR (CPL 0): MSR[ECX] := EDX:EAX; #GP(0) for an MSR popek does not have, or a
/// platform MSR's reserved bits. The SYSENTER MSRs keep the low 32 bits (a 32-bit CPU
/// has nothing above).
fn wrmsr(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Instruction) -> ExecResult {
    require_cpl0(cpu)?;
    let lo = cpu.state.gpr[EAX];
    let hi = cpu.state.gpr[EDX];
    let s = &mut cpu.state;
    match s.gpr[ECX] {
        msr::IA32_TSC => s.tsc_offset = ((hi as u64) << 32 | lo as u64).wrapping_sub(s.tsc),
        // Kernels write 0 before CPUID to read the signature back; nothing to keep.
        msr::IA32_BIOS_SIGN_ID => {}
        msr::IA32_SYSENTER_CS => s.sysenter_cs = lo,
        msr::IA32_SYSENTER_ESP => s.sysenter_esp = lo,
        msr::IA32_SYSENTER_EIP => s.sysenter_eip = lo,
        other => {
            if !bus.write_msr(other, (hi as u64) << 32 | lo as u64) {
                return Err(Exception::GeneralProtection(0).into());
            }
            // A platform MSR (IA32_APIC_BASE's enable bit) may route the 8259A
            // straight to INTR: the block ends here.
            cpu.interrupt_window = true;
        }
    }
    Ok(())
}

/// WBINVD / INVD (CPL 0): popek has no caches to write back or drop.
fn cache_flush(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    require_cpl0(cpu)?;
    Ok(())
}

/// CLTS (CPL 0): clears CR0.TS.
fn clts(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    require_cpl0(cpu)?;
    cpu.state.cr0 &= !cr0::TS;
    Ok(())
}

/// UD0/UD1/UD2: always #UD.
fn ud(_: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    Err(Exception::InvalidOpcode.into())
}
