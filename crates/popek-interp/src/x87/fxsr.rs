//! FXSAVE and FXRSTOR (SDM Vol. 2A "FXSAVE", "FXRSTOR"; the area: Vol. 1 10.5.1,
//! Table 10-2) on a P6 with FXSR and without SSE, as the Pentium II (model 5) was.
//!
//! The 512-byte area, 16-byte aligned (#GP(0) otherwise, checked on the linear address,
//! "regardless of segment"), in its legacy (non-64-bit) layout:
//!
//! ```text
//!   0 FCW  2 FSW  4 abridged FTW  5 0  6 FOP  8 FIP  12 FCS  14 0  16 FDP  20 FDS  22 0
//!  24 MXCSR  28 MXCSR_MASK                                  (not written: no SSE)
//!  32 ST(0) (10 bytes, then 6 zero bytes) … 144 ST(7)
//! 160 XMM0–XMM7, 288 reserved, 464 available to software    (not written: no SSE)
//! ```
//!
//! The abridged tag has one bit per *physical* register, 1 = not empty; FXRSTOR makes
//! the full tags from the restored registers' contents ([`X87State::full_tag_word`]), which
//! is what popek keeps anyway ([`X87State::valid`]).
//!
//! With no SSE there is no MXCSR and no XMM register to save. The SDM leaves their saving
//! to the implementation when software has not set CR4.OSFXSR: "If the OSFXSR bit in
//! control register CR4 is not set, the FXSAVE instruction may not save these registers.
//! This behavior is implementation dependent." and, of FXRSTOR, "may not restore the
//! states of the XMM and MXCSR registers" (Vol. 2A). popek takes the one reading that
//! holds for any OSFXSR on a CPU that has neither: FXSAVE writes bytes 0–23 and 32–159
//! only, and leaves 24–31 and 160–511 as they were; FXRSTOR reads nothing there, so no
//! MXCSR value can be reserved (no #GP for it). The whole 512-byte operand is still
//! checked for access (segment limit, paging) before anything is written.
//!
//! Both instructions are #NM when CR0.TS or CR0.EM is set, as every x87 instruction and
//! as the SDM of the P6 era (Pentium III, 1999) gives them; today's SDM lists CR0.EM as
//! #UD for them instead (processors with SSE; QEMU raises #NM). They neither check nor
//! raise a pending x87 exception ("Pending x87 FPU exceptions are also ignored when
//! executing the state management instructions FXSAVE and FXRSTOR", Vol. 3A, Interrupt
//! 16), and they leave the FPU as it was (FXSAVE does not initialise it, unlike FNSAVE).

use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::Instruction;
use popek_cpu::state::{F80, X87State};
use popek_cpu::{AccessKind, Bus, Cpu, Seg};

use super::{read_bytes, write_bytes};

/// The size of the area.
const AREA: u32 = 512;
/// The x87 header (through FDS and its reserved word).
const HEADER: usize = 24;
/// Where ST(0) starts.
const REGS: usize = 32;
/// The end of ST(7)'s slot.
const REGS_END: usize = REGS + 8 * 16;

/// The memory operand's segment and offset, after the alignment check.
fn aligned_operand(cpu: &Cpu, insn: &Instruction) -> Result<(Seg, u32), Exception> {
    let (s, off) = cpu.memory_operand(insn);
    let linear = cpu.state.seg(s).base.wrapping_add(off);
    if linear & 15 != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    Ok((s, off))
}

/// The x87 part of the image: bytes 0–23 and 32–159.
pub(crate) fn image(x: &X87State) -> ([u8; HEADER], [u8; REGS_END - REGS]) {
    let mut h = [0u8; HEADER];
    h[0..2].copy_from_slice(&x.fcw.to_le_bytes());
    h[2..4].copy_from_slice(&x.fsw.to_le_bytes());
    h[4] = x.valid;
    h[6..8].copy_from_slice(&(x.fop & 0x7ff).to_le_bytes());
    h[8..12].copy_from_slice(&x.fip.to_le_bytes());
    h[12..14].copy_from_slice(&x.fcs.to_le_bytes());
    h[16..20].copy_from_slice(&x.fdp.to_le_bytes());
    h[20..22].copy_from_slice(&x.fds.to_le_bytes());
    let mut r = [0u8; REGS_END - REGS];
    for i in 0..8 {
        r[16 * i..16 * i + 10].copy_from_slice(&x.st(i).to_bytes());
    }
    (h, r)
}

/// Loads the x87 part of an image (`b` holds bytes 0–159).
pub(crate) fn load(x: &mut X87State, b: &[u8; REGS_END]) {
    let w = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let d = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    x.fcw = w(0);
    x.fsw = w(2);
    x.fop = w(6) & 0x7ff;
    x.fip = d(8);
    x.fcs = w(12);
    x.fdp = d(16);
    x.fds = w(20);
    for i in 0..8 {
        let mut r = [0u8; 10];
        r.copy_from_slice(&b[REGS + 16 * i..REGS + 16 * i + 10]);
        let p = x.phys(i);
        x.regs[p] = F80::from_bytes(r);
    }
    x.valid = b[4];
}

/// FXSAVE m512byte.
pub(super) fn fxsave(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    let (s, off) = aligned_operand(cpu, insn)?;
    cpu.probe_write(bus, s, off, AREA)?;
    let (header, regs) = image(&cpu.state.x87);
    write_bytes(cpu, bus, s, off, &header)?;
    write_bytes(cpu, bus, s, off.wrapping_add(REGS as u32), &regs)
}

/// FXRSTOR m512byte.
pub(super) fn fxrstor(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    let (s, off) = aligned_operand(cpu, insn)?;
    // The whole operand must be readable (a fault leaves the FPU as it was).
    let lin = cpu.seg_check(s, off, AREA, AccessKind::Read)?;
    let user = cpu.user_mode();
    cpu.translate(bus, lin.add(AREA - 1), AccessKind::Read, user)?;
    let b = read_bytes::<REGS_END>(cpu, bus, s, off)?;
    load(&mut cpu.state.x87, &b);
    Ok(())
}
