//! Operands of a decoded instruction: registers, memory and immediates as values.
//!
//! Both the interpreter and the VMM reach operands through these helpers, so an
//! addressing rule (16-bit address wrap, SS default for EBP/ESP bases, segment
//! overrides) is written once.

// Operand values are truncated to the operand width by definition.
#![allow(clippy::cast_possible_truncation)]

use crate::Cpu;
use crate::access::Width;
use crate::exception::Exception;
use crate::state::Seg;
use iced_x86::{Instruction, OpKind, Register};
use popek_memory::Bus;

/// Where a general-purpose register lives: index into `gpr`, width in bytes, bit shift (8 for AH..BH).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GprSlot {
    /// Index into [`crate::CpuState::gpr`].
    pub index: usize,
    /// 1, 2 or 4.
    pub width: Width,
    /// 0, or 8 for the high-byte registers.
    pub shift: u32,
}

/// Maps an iced register to its slot, or `None` for non-GPRs.
#[inline]
pub fn gpr_slot(r: Register) -> Option<GprSlot> {
    let n = r as u32;
    let slot = |base: Register, width, shift| GprSlot { index: (n - base as u32) as usize, width, shift };
    if (Register::EAX as u32..=Register::EDI as u32).contains(&n) {
        Some(slot(Register::EAX, 4, 0))
    } else if (Register::AX as u32..=Register::DI as u32).contains(&n) {
        Some(slot(Register::AX, 2, 0))
    } else if (Register::AL as u32..=Register::BL as u32).contains(&n) {
        Some(slot(Register::AL, 1, 0))
    } else if (Register::AH as u32..=Register::BH as u32).contains(&n) {
        Some(slot(Register::AH, 1, 8))
    } else {
        None
    }
}

/// True if `r` is one of EAX..EDI.
#[inline]
pub fn is_gpr32(r: Register) -> bool {
    (Register::EAX as u32..=Register::EDI as u32).contains(&(r as u32))
}

/// Index into [`crate::CpuState::gpr`] of a register known to be one of EAX..EDI
/// (for handlers specialised at decode time; masked so it can never index out of bounds).
#[inline]
pub fn gpr32_index(r: Register) -> usize {
    (r as usize).wrapping_sub(Register::EAX as usize) & 7
}

/// True if operand `n` of `insn` is one of EAX..EDI.
#[inline]
pub fn is_reg32_op(insn: &Instruction, n: u32) -> bool {
    insn.op_kind(n) == OpKind::Register && is_gpr32(insn.op_register(n))
}

/// True if operand `n` of `insn` is a dword in memory (the forms [`Cpu::read_mem32`]
/// and [`Cpu::write_mem32`] serve; either address size).
#[inline]
pub fn is_mem32_op(insn: &Instruction, n: u32) -> bool {
    insn.op_kind(n) == OpKind::Memory && insn.memory_size().size() == 4
}

/// Maps an iced segment register to [`Seg`].
#[inline]
pub fn seg_of(r: Register) -> Option<Seg> {
    Some(match r {
        Register::ES => Seg::Es,
        Register::CS => Seg::Cs,
        Register::SS => Seg::Ss,
        Register::DS => Seg::Ds,
        Register::FS => Seg::Fs,
        Register::GS => Seg::Gs,
        _ => return None,
    })
}

/// Mask of the low `width` bytes.
#[inline]
pub const fn mask(width: Width) -> u32 {
    match width {
        1 => 0xff,
        2 => 0xffff,
        _ => 0xffff_ffff,
    }
}

/// Sign bit of a `width`-byte value.
#[inline]
pub const fn sign_bit(width: Width) -> u32 {
    1 << (width * 8 - 1)
}

/// Sign-extends the low `width` bytes of `v` to 32 bits.
#[inline]
pub const fn sign_extend(v: u32, width: Width) -> u32 {
    match width {
        1 => v as u8 as i8 as i32 as u32,
        2 => v as u16 as i16 as i32 as u32,
        _ => v,
    }
}

impl Cpu {
    /// Reads a general register (any width) by iced name. Non-GPRs read 0.
    #[inline]
    pub fn read_gpr(&self, r: Register) -> u32 {
        match gpr_slot(r) {
            Some(s) => (self.state.gpr[s.index] >> s.shift) & mask(s.width),
            None => 0,
        }
    }

    /// Writes a general register (any width), preserving the other bits as x86 does.
    #[inline]
    pub fn write_gpr(&mut self, r: Register, v: u32) {
        if let Some(s) = gpr_slot(r) {
            let m = mask(s.width) << s.shift;
            let g = &mut self.state.gpr[s.index];
            *g = (*g & !m) | ((v << s.shift) & m);
        }
    }

    /// Effective address (offset within the segment) of the memory operand.
    #[inline]
    pub fn effective_address(&self, insn: &Instruction) -> u32 {
        let (base, index) = (insn.memory_base(), insn.memory_index());
        let reg32_or_none = |r: Register| r == Register::None || is_gpr32(r);
        if reg32_or_none(base) && reg32_or_none(index) {
            // 32-bit addressing (the common case): no register-width decoding, no wrap.
            // (16-bit addressing always names BX/BP/SI/DI, except `[disp16]`, which needs no wrap.)
            let mut ea = insn.memory_displacement32();
            if base != Register::None {
                ea = ea.wrapping_add(self.state.gpr[gpr32_index(base)]);
            }
            if index != Register::None {
                ea = ea.wrapping_add(self.state.gpr[gpr32_index(index)].wrapping_mul(insn.memory_index_scale()));
            }
            return ea;
        }
        let mut ea = insn.memory_displacement32();
        let base = insn.memory_base();
        if base != Register::None {
            ea = ea.wrapping_add(self.read_gpr(base));
        }
        let index = insn.memory_index();
        if index != Register::None {
            ea = ea.wrapping_add(self.read_gpr(index).wrapping_mul(insn.memory_index_scale()));
        }
        if is_addr16(insn) {
            ea &= 0xffff;
        }
        ea
    }

    /// Segment and offset of the memory operand.
    #[inline]
    pub fn memory_operand(&self, insn: &Instruction) -> (Seg, u32) {
        (seg_of(insn.memory_segment()).unwrap_or(Seg::Ds), self.effective_address(insn))
    }

    /// Reads the dword at the memory operand of `insn` (checked at decode time with [`is_mem32_op`]).
    #[inline]
    pub fn read_mem32(&mut self, bus: &mut dyn Bus, insn: &Instruction) -> Result<u32, Exception> {
        let (s, off) = self.memory_operand(insn);
        self.read(bus, s, off, 4)
    }

    /// Writes the dword at the memory operand of `insn` (checked at decode time with [`is_mem32_op`]).
    #[inline]
    pub fn write_mem32(&mut self, bus: &mut dyn Bus, insn: &Instruction, v: u32) -> Result<(), Exception> {
        let (s, off) = self.memory_operand(insn);
        self.write(bus, s, off, 4, v)
    }

    /// Reads operand `n` (register, memory or immediate), `width` bytes wide.
    #[inline]
    pub fn read_op(&mut self, bus: &mut dyn Bus, insn: &Instruction, n: u32, width: Width) -> Result<u32, Exception> {
        match insn.op_kind(n) {
            OpKind::Register => Ok(self.read_gpr(insn.op_register(n))),
            OpKind::Memory => {
                let (s, off) = self.memory_operand(insn);
                self.read(bus, s, off, width)
            }
            _ => Ok(insn.immediate(n) as u32 & mask(width)),
        }
    }

    /// Writes operand `n` (register or memory).
    #[inline]
    pub fn write_op(
        &mut self,
        bus: &mut dyn Bus,
        insn: &Instruction,
        n: u32,
        width: Width,
        v: u32,
    ) -> Result<(), Exception> {
        match insn.op_kind(n) {
            OpKind::Register => {
                self.write_gpr(insn.op_register(n), v);
                Ok(())
            }
            _ => {
                let (s, off) = self.memory_operand(insn);
                self.write(bus, s, off, width, v)
            }
        }
    }
}

/// True if the instruction uses 16-bit addressing.
#[inline]
pub fn is_addr16(insn: &Instruction) -> bool {
    matches!(insn.memory_base(), Register::BX | Register::BP | Register::SI | Register::DI)
        || matches!(insn.memory_index(), Register::SI | Register::DI)
        || insn.memory_displ_size() == 2
}

/// Width in bytes of operand `n` of a register or memory operand (or the
/// instruction's operand size for immediates).
#[inline]
pub fn op_width(insn: &Instruction, n: u32) -> Width {
    match insn.op_kind(n) {
        OpKind::Register => gpr_slot(insn.op_register(n)).map_or(4, |s| s.width),
        OpKind::Memory => insn.memory_size().size() as Width,
        OpKind::Immediate8 => 1,
        OpKind::Immediate16 | OpKind::Immediate8to16 => 2,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots() {
        assert_eq!(gpr_slot(Register::ESI), Some(GprSlot { index: 6, width: 4, shift: 0 }));
        assert_eq!(gpr_slot(Register::BX), Some(GprSlot { index: 3, width: 2, shift: 0 }));
        assert_eq!(gpr_slot(Register::CH), Some(GprSlot { index: 1, width: 1, shift: 8 }));
        assert_eq!(gpr_slot(Register::DL), Some(GprSlot { index: 2, width: 1, shift: 0 }));
        assert_eq!(gpr_slot(Register::CR0), None);
    }

    /// Effective addresses (SDM Vol. 2 2.1.5, tables 2-1 and 2-2 for 16-bit addressing).
    #[test]
    fn effective_addresses() {
        use crate::state::gpr::*;
        use iced_x86::{Decoder, DecoderOptions};
        struct Case {
            bytes: &'static [u8],
            want: u32,
        }
        #[rustfmt::skip]
        let cases = [
            Case { bytes: &[0x8b, 0x44, 0x8b, 0x08], want: 0x1000_5678 + 0x40 * 4 + 8 },              // mov eax,[ebx+ecx*4+8]
            Case { bytes: &[0x8b, 0x04, 0x24], want: 0x0000_9000 },                           // mov eax,[esp]
            Case { bytes: &[0x8b, 0x45, 0xfc], want: 0x0000_8000 - 4 },                        // mov eax,[ebp-4]
            Case { bytes: &[0x8b, 0x05, 0x78, 0x56, 0x34, 0x12], want: 0x1234_5678 },          // mov eax,[0x12345678]
            Case { bytes: &[0x8b, 0x04, 0x75, 0, 0, 0, 0], want: 0xffff_fff0u32.wrapping_mul(2) }, // [esi*2+0]: wraps at 4 GiB
            Case { bytes: &[0x67, 0x8b, 0x40, 0x05], want: (0x5678 + 0xfff0 + 5) & 0xffff },   // mov eax,[bx+si+5]: wraps at 64 KiB
            Case { bytes: &[0x67, 0x8b, 0x03], want: (0x8000 + 0x0001) & 0xffff },             // mov eax,[bp+di]
            Case { bytes: &[0x67, 0xa1, 0x34, 0x12], want: 0x1234 },                           // mov eax,[moffs16]
            Case { bytes: &[0x67, 0x8b, 0x06, 0xff, 0xff], want: 0xffff },                     // mov eax,[disp16]
        ];
        let mut cpu = Cpu::new(popek_memory::GuestMemory::new(4096).unwrap());
        cpu.state.gpr[EBX] = 0x1000_5678;
        cpu.state.gpr[ECX] = 0x40;
        cpu.state.gpr[ESP] = 0x9000;
        cpu.state.gpr[EBP] = 0x8000;
        cpu.state.gpr[ESI] = 0xffff_fff0;
        cpu.state.gpr[EDI] = 0x0001;
        for c in cases {
            let insn = Decoder::with_ip(32, c.bytes, 0, DecoderOptions::NONE).decode();
            assert_eq!(cpu.effective_address(&insn), c.want, "{:02x?}", c.bytes);
        }
    }

    #[test]
    fn gpr32_indices_follow_the_encoding_order() {
        let regs = [
            Register::EAX,
            Register::ECX,
            Register::EDX,
            Register::EBX,
            Register::ESP,
            Register::EBP,
            Register::ESI,
            Register::EDI,
        ];
        for (i, r) in regs.into_iter().enumerate() {
            assert!(is_gpr32(r));
            assert_eq!(gpr32_index(r), i);
        }
        assert!(!is_gpr32(Register::AX) && !is_gpr32(Register::AL) && !is_gpr32(Register::R8D));
    }
}
