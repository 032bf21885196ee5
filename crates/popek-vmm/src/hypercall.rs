//! Paravirtual hypercalls: popek's documented interface from a guest kernel that knows it
//! is virtualized to the VMM (the book's "Paravirtualization" chapter is the reference).
//!
//! ```text
//!   guest kernel:  CPUID 0x40000000 → "popekpopekpv"?  ── yes ──►  VMCALL (0F 01 C1)
//!                                                                    │ EAX = call number
//!                                                                    │ EBX, ECX, EDX = arguments
//!   both engines:  the instruction's handler is [`vmcall`] (a callout in the JIT) ◄┘
//!                     │  CPL 0?  known number?  buffer mapped, in RAM?
//!                     ▼
//!                  the same semantics as the instructions it replaces (STI, CLI,
//!                  MOV CR3, INVLPG, the EOI writes, OUT to COM1), result in EAX
//! ```
//!
//! The interface exists only while [`Cpu::paravirt`] is on (the machine's default): then
//! the hypervisor CPUID leaves answer ([`cpuid_leaf`]) and VMCALL is a hypercall.
//! Otherwise popek is the bare P6 it models: the hypervisor leaves read zeros and VMCALL
//! is #UD, as on hardware without VMX (SDM Vol. 3C 31.3). CPUID leaves 0 and 1 are the
//! same either way: the hypervisor-present bit (CPUID.1:ECX[31]) stays clear, so a guest
//! probes leaf 0x40000000 directly and compares the signature (on a real CPU that leaf
//! returns some basic leaf's data, which never spells the signature).
//!
//! Register convention (like KVM's and Xen's on 32-bit x86): the call number in EAX, up to
//! three arguments in EBX, ECX and EDX, the result in EAX (VERSION also returns the
//! feature bits in EBX); every other register and every EFLAGS bit the call does not
//! document is preserved. A negative result is a Linux errno ([`errno`]). A hypercall from
//! CPL > 0 does nothing and returns `-EPERM` (KVM's rule).
//!
//! Everything a call reads comes from the guest's registers and, for CONSOLE_WRITE, from
//! guest RAM reached through the guest's own page tables with supervisor read rights: a
//! buffer that is not mapped, or maps to anything but RAM, is `-EFAULT` — never a page
//! fault delivered, never a host access outside guest RAM, never a panic. Nothing depends
//! on the host, so runs stay deterministic.

use crate::control_regs::load_cr3;
use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::Instruction;
use popek_cpu::state::flags::IF;
use popek_cpu::state::gpr::{EAX, EBX, ECX};
use popek_cpu::{AccessKind, AccessSize, Bus, Cpu, ExecResult, LinearAddr, PhysAddr, Port};

/// CPUID leaf with the signature: EAX = the highest hypervisor leaf, EBX/ECX/EDX =
/// [`SIGNATURE`].
pub const CPUID_SIGNATURE_LEAF: u32 = 0x4000_0000;
/// CPUID leaf with the interface's version (EAX) and feature bits (EBX, [`FEATURES`]).
pub const CPUID_FEATURES_LEAF: u32 = 0x4000_0001;
/// The 12-byte hypervisor signature in EBX, ECX, EDX of leaf 0x40000000.
pub const SIGNATURE: [u8; 12] = *b"popekpopekpv";
/// Version of the hypercall ABI described here.
pub const ABI_VERSION: u32 = 1;

/// Hypercall numbers (EAX).
pub mod nr {
    /// EAX := [`super::ABI_VERSION`], EBX := [`super::FEATURES`].
    pub const VERSION: u32 = 0;
    /// CLI: IF := 0; EAX := the previous IF (0 or 1).
    pub const IRQ_DISABLE: u32 = 1;
    /// STI: IF := 1, with STI's one-instruction interrupt shadow when IF was 0; EAX := the
    /// previous IF (0 or 1).
    pub const IRQ_ENABLE: u32 = 2;
    /// MOV CR3, EBX: reserved bits dropped, non-global TLB entries flushed; EAX := 0.
    pub const SET_CR3: u32 = 3;
    /// INVLPG of the page holding linear address EBX; EAX := 0.
    pub const INVLPG: u32 = 4;
    /// End of interrupt: EBX = controller ([`super::eoi`]), ECX = the 8259A IRQ (0–15);
    /// EAX := 0.
    pub const EOI: u32 = 5;
    /// Write ECX bytes (at most [`super::CONSOLE_MAX`]) at linear address EBX to COM1;
    /// EAX := ECX.
    pub const CONSOLE_WRITE: u32 = 6;
}

/// EOI targets (EBX of [`nr::EOI`]).
pub mod eoi {
    /// The 8259A pair: a non-specific EOI to the slave (IRQ 8–15) and then the master.
    pub const PIC: u32 = 0;
    /// The local APIC: a write of 0 to its EOI register (base from `IA32_APIC_BASE`).
    pub const LAPIC: u32 = 1;
}

/// Errors, returned in EAX as the negated Linux errno.
pub mod errno {
    /// Hypercall from CPL > 0.
    pub const EPERM: u32 = 1;
    /// A buffer that is not mapped (supervisor read) or not in guest RAM.
    pub const EFAULT: u32 = 14;
    /// A bad argument: EOI target or IRQ, console length above the maximum.
    pub const EINVAL: u32 = 22;
    /// An unknown hypercall number.
    pub const ENOSYS: u32 = 38;
}

/// The calls this version implements: bit n set for call number n.
pub const FEATURES: u32 = 1 << nr::VERSION
    | 1 << nr::IRQ_DISABLE
    | 1 << nr::IRQ_ENABLE
    | 1 << nr::SET_CR3
    | 1 << nr::INVLPG
    | 1 << nr::EOI
    | 1 << nr::CONSOLE_WRITE;

/// Longest CONSOLE_WRITE, in bytes (one page: a hypercall stays short, like an instruction).
pub const CONSOLE_MAX: u32 = 4096;

/// COM1's transmit register: where CONSOLE_WRITE puts the bytes, one by one, as the
/// guest's own OUTs would (so the UART's line settings apply: DLAB must be 0, as every
/// driver leaves it).
const COM1_THR: Port = Port(0x3f8);
/// The 8259A command ports and the non-specific EOI command (OCW2).
const PIC_MASTER: Port = Port(0x20);
const PIC_SLAVE: Port = Port(0xa0);
const OCW2_EOI: u32 = 0x20;
/// `IA32_APIC_BASE` and the local APIC's EOI register offset.
const MSR_APIC_BASE: u32 = 0x1b;
const LAPIC_EOI: u32 = 0xb0;

/// The hypervisor CPUID leaves while the interface is on: `Some` for 0x40000000 and
/// 0x40000001, `None` for every other leaf (the caller's P6 answer stands).
pub fn cpuid_leaf(eax: u32) -> Option<[u32; 4]> {
    let word = |i: usize| u32::from_le_bytes([SIGNATURE[i], SIGNATURE[i + 1], SIGNATURE[i + 2], SIGNATURE[i + 3]]);
    match eax {
        CPUID_SIGNATURE_LEAF => Some([CPUID_FEATURES_LEAF, word(0), word(4), word(8)]),
        CPUID_FEATURES_LEAF => Some([ABI_VERSION, FEATURES, 0, 0]),
        _ => None,
    }
}

/// A hypercall's failure, as its errno.
type CallResult = Result<u32, u32>;

/// VMCALL: #UD unless the paravirtual interface is on; otherwise the hypercall in EAX
/// (see the module documentation). A hypercall never faults: errors are results.
pub(crate) fn vmcall(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Instruction) -> ExecResult {
    if !cpu.paravirt {
        return Err(Exception::InvalidOpcode.into());
    }
    let result = if cpu.state.cpl != 0 { Err(errno::EPERM) } else { call(cpu, bus, cpu.state.gpr[EAX]) };
    cpu.state.gpr[EAX] = result.unwrap_or_else(|e| e.wrapping_neg());
    Ok(())
}

/// Runs hypercall `number` at CPL 0.
fn call(cpu: &mut Cpu, bus: &mut dyn Bus, number: u32) -> CallResult {
    let [ebx, ecx] = [cpu.state.gpr[EBX], cpu.state.gpr[ECX]];
    match number {
        nr::VERSION => {
            cpu.state.gpr[EBX] = FEATURES;
            Ok(ABI_VERSION)
        }
        nr::IRQ_DISABLE => {
            let was = cpu.state.eflags & IF != 0;
            cpu.state.eflags &= !IF;
            Ok(was.into())
        }
        nr::IRQ_ENABLE => {
            let was = cpu.state.eflags & IF != 0;
            if !was {
                // As after STI: the next instruction runs before any interrupt.
                cpu.state.interrupt_shadow = true;
            }
            cpu.state.eflags |= IF;
            cpu.interrupt_window = true;
            Ok(was.into())
        }
        nr::SET_CR3 => {
            load_cr3(cpu, ebx);
            Ok(0)
        }
        nr::INVLPG => {
            cpu.tlb.flush_page(ebx);
            Ok(0)
        }
        nr::EOI => end_of_interrupt(cpu, bus, ebx, ecx),
        nr::CONSOLE_WRITE => console_write(cpu, bus, ebx, ecx),
        _ => Err(errno::ENOSYS),
    }
}

/// EOI to the 8259A pair (`target` [`eoi::PIC`], `irq` 0–15) or the local APIC.
fn end_of_interrupt(cpu: &mut Cpu, bus: &mut dyn Bus, target: u32, irq: u32) -> CallResult {
    match target {
        eoi::PIC if irq < 16 => {
            if irq >= 8 {
                bus.port_write(PIC_SLAVE, AccessSize::Byte, OCW2_EOI);
            }
            bus.port_write(PIC_MASTER, AccessSize::Byte, OCW2_EOI);
        }
        eoi::LAPIC => {
            let base = bus.read_msr(MSR_APIC_BASE).ok_or(errno::EINVAL)?;
            // The base is bits 12–35 of the MSR; an APIC moved above 4 GiB is out of reach.
            let base = u32::try_from(base & 0xf_ffff_f000).map_err(|_| errno::EINVAL)?;
            bus.mmio_write(PhysAddr(base.wrapping_add(LAPIC_EOI)), AccessSize::Dword, 0);
        }
        _ => return Err(errno::EINVAL),
    }
    // A lower-priority request may be deliverable now.
    cpu.interrupt_window = true;
    Ok(0)
}

/// Copies `len` bytes at linear `addr` to COM1. The whole buffer is checked first — every
/// page mapped for a supervisor read and backed by RAM — so a call either writes all of it
/// or nothing.
fn console_write(cpu: &mut Cpu, bus: &mut dyn Bus, addr: u32, len: u32) -> CallResult {
    if len > CONSOLE_MAX {
        return Err(errno::EINVAL);
    }
    let end = addr as u64 + len as u64;
    if end > 1 << 32 {
        // The buffer would wrap past 4 GiB.
        return Err(errno::EFAULT);
    }
    let mut bytes = Vec::with_capacity(len as usize);
    let mut lin = addr as u64;
    while lin < end {
        let chunk = (0x1000 - (lin & 0xfff)).min(end - lin);
        let phys = cpu.translate(bus, LinearAddr(lin as u32), AccessKind::Read, false).map_err(|_| errno::EFAULT)?;
        if !cpu.mem.page_is_ram(phys) {
            return Err(errno::EFAULT);
        }
        let start = phys.0 as usize;
        let ram = cpu.mem.as_slice().get(start..start + chunk as usize).ok_or(errno::EFAULT)?;
        bytes.extend_from_slice(ram);
        lin += chunk;
    }
    for b in bytes {
        bus.port_write(COM1_THR, AccessSize::Byte, b.into());
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_leaf_spells_the_signature_in_ebx_ecx_edx() {
        let [max, b, c, d] = cpuid_leaf(CPUID_SIGNATURE_LEAF).expect("the leaf exists");
        assert_eq!(max, CPUID_FEATURES_LEAF);
        let mut sig = Vec::new();
        for r in [b, c, d] {
            sig.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(sig, SIGNATURE);
        assert_eq!(cpuid_leaf(CPUID_FEATURES_LEAF), Some([ABI_VERSION, FEATURES, 0, 0]));
        assert_eq!(cpuid_leaf(0x4000_0002), None);
        assert_eq!(cpuid_leaf(1), None);
    }

    #[test]
    fn every_call_number_below_the_first_unknown_is_a_feature() {
        assert_eq!(FEATURES, 0x7f);
    }
}
