//! Decimal (BCD) adjust: DAA DAS AAA AAS AAM AAD (SDM Vol. 2A, the instruction page of each).
//!
//! These exist only outside 64-bit mode, which is all popek runs. Flags the SDM
//! leaves undefined: OF is cleared by DAA/DAS; AAA/AAS leave OF, SF, ZF and PF
//! unchanged; AAM/AAD clear OF, AF and CF. AAM with a base of 0 raises #DE
//! before changing anything.

use crate::flags;
use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::{Instruction, Mnemonic};
use popek_cpu::state::flags::{AF, ARITH, CF};
use popek_cpu::state::gpr::EAX;
use popek_cpu::{Bus, Cpu, ExecResult, Handler};

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    Some(match insn.mnemonic() {
        Mnemonic::Daa => daa,
        Mnemonic::Das => das,
        Mnemonic::Aaa => aaa,
        Mnemonic::Aas => aas,
        Mnemonic::Aam => aam,
        Mnemonic::Aad => aad,
        _ => return None,
    })
}

/// AL, AH and the incoming AF and CF.
#[inline(always)]
fn inputs(cpu: &Cpu) -> (u8, u8, bool, bool) {
    let ax = cpu.state.gpr[EAX];
    let f = cpu.state.eflags;
    (ax as u8, (ax >> 8) as u8, f & AF != 0, f & CF != 0)
}

/// Writes AX, keeping the upper half of EAX.
#[inline(always)]
fn set_ax(cpu: &mut Cpu, al: u8, ah: u8) {
    let g = &mut cpu.state.gpr[EAX];
    *g = (*g & !0xffff) | (ah as u32) << 8 | al as u32;
}

/// DAA: decimal adjust AL after addition.
fn daa(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    let (old_al, ah, af, old_cf) = inputs(cpu);
    let mut al = old_al;
    let mut f = 0;
    if old_al & 0xf > 9 || af {
        al = al.wrapping_add(6);
        f |= AF;
    }
    if old_al > 0x99 || old_cf {
        al = al.wrapping_add(0x60);
        f |= CF;
    }
    set_ax(cpu, al, ah);
    flags::commit_arith(cpu, f | flags::szp(al as u32, 1));
    Ok(())
}

/// DAS: decimal adjust AL after subtraction.
fn das(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    let (old_al, ah, af, old_cf) = inputs(cpu);
    let mut al = old_al;
    let mut f = 0;
    if old_al & 0xf > 9 || af {
        al = al.wrapping_sub(6);
        f |= AF;
        if old_cf || old_al < 6 {
            f |= CF;
        }
    }
    if old_al > 0x99 || old_cf {
        al = al.wrapping_sub(0x60);
        f |= CF;
    }
    set_ax(cpu, al, ah);
    flags::commit_arith(cpu, f | flags::szp(al as u32, 1));
    Ok(())
}

/// AAA (`SUB` = false) / AAS: ASCII adjust after addition / subtraction.
fn ascii_adjust<const SUB: bool>(cpu: &mut Cpu) {
    let (al, ah, af, _) = inputs(cpu);
    if al & 0xf > 9 || af {
        let ax = (ah as u16) << 8 | al as u16;
        let (al, ah) = if SUB {
            let ax = ax.wrapping_sub(6);
            (ax as u8, ((ax >> 8) as u8).wrapping_sub(1))
        } else {
            let ax = ax.wrapping_add(0x106);
            (ax as u8, (ax >> 8) as u8)
        };
        set_ax(cpu, al & 0xf, ah);
        flags::commit(cpu, AF | CF, AF | CF);
    } else {
        set_ax(cpu, al & 0xf, ah);
        flags::commit(cpu, AF | CF, 0);
    }
}

/// AAA: ASCII adjust after addition.
fn aaa(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    ascii_adjust::<false>(cpu);
    Ok(())
}

/// AAS: ASCII adjust after subtraction.
fn aas(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    ascii_adjust::<true>(cpu);
    Ok(())
}

/// AAM imm8: AH = AL / base, AL = AL % base; #DE if the base is 0.
fn aam(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let base = insn.immediate8();
    if base == 0 {
        return Err(Exception::DivideError.into());
    }
    let (al, _, _, _) = inputs(cpu);
    let (q, r) = (al / base, al % base);
    set_ax(cpu, r, q);
    flags::commit(cpu, ARITH, flags::szp(r as u32, 1));
    Ok(())
}

/// AAD imm8: AL = AL + AH × base (mod 256), AH = 0.
fn aad(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let base = insn.immediate8();
    let (al, ah, _, _) = inputs(cpu);
    let al = al.wrapping_add(ah.wrapping_mul(base));
    set_ax(cpu, al, 0);
    flags::commit(cpu, ARITH, flags::szp(al as u32, 1));
    Ok(())
}
