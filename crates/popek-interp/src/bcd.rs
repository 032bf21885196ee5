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

#[cfg(test)]
mod tests {
    use crate::testing::{CODE_BASE, TestBox};
    use popek_cpu::exception::{Event, Exception};
    use popek_cpu::iced_x86::{Decoder, DecoderOptions};
    use popek_cpu::state::flags::{AF, ARITH, CF, OF, PF, SF, ZF};
    use popek_cpu::state::gpr::{EAX, EBX};

    /// Code run with EAX, EBX and the arithmetic flags `fin`; EAX and the flags in
    /// `fmask` (the SDM-defined ones) are compared afterwards.
    struct Case {
        bytes: &'static [u8],
        eax: u32,
        ebx: u32,
        fin: u32,
        eax_out: u32,
        fout: u32,
        fmask: u32,
    }

    fn check(cases: &[Case]) {
        for (i, c) in cases.iter().enumerate() {
            let mut t = TestBox::new(c.bytes);
            t.cpu.state.gpr[EAX] = c.eax;
            t.cpu.state.gpr[EBX] = c.ebx;
            t.cpu.state.eflags = (t.cpu.state.eflags & !ARITH) | c.fin;
            t.run(4).unwrap_or_else(|e| panic!("case {i} {:02x?}: {e:?}", c.bytes));
            assert_eq!(t.cpu.state.gpr[EAX], c.eax_out, "case {i} {:02x?}: EAX", c.bytes);
            assert_eq!(t.cpu.state.eflags & c.fmask, c.fout, "case {i} {:02x?}: flags", c.bytes);
        }
    }

    const DAA_DEFINED: u32 = CF | AF | SF | ZF | PF;

    /// DAA and DAS, including the SDM's worked examples.
    #[test]
    #[rustfmt::skip]
    fn daa_das() {
        check(&[
            // SDM DAA example: add al, bl (0x79 + 0x35 = 0xae); daa -> 0x14, CF=1 AF=1 PF=1
            Case { bytes: &[0x00, 0xd8, 0x27], eax: 0xdead_be79, ebx: 0x35, fin: 0, eax_out: 0xdead_be14, fout: CF | AF | PF, fmask: DAA_DEFINED },
            // daa: 0x9a -> 0x00 with both adjustments, CF=1 AF=1 ZF=1 PF=1
            Case { bytes: &[0x27], eax: 0x9a, ebx: 0, fin: 0, eax_out: 0x00, fout: CF | AF | ZF | PF, fmask: DAA_DEFINED },
            // daa: 0x45 with CF=1, AF=0 -> 0xa5, CF=1, SF=1, PF=1 (0xa5 has 4 bits set)
            Case { bytes: &[0x27], eax: 0x45, ebx: 0, fin: CF, eax_out: 0xa5, fout: CF | SF | PF, fmask: DAA_DEFINED },
            // daa: 0x12, no adjustment, all of CF/AF cleared
            Case { bytes: &[0x27], eax: 0x12, ebx: 0, fin: ARITH & !AF & !CF, eax_out: 0x12, fout: PF, fmask: DAA_DEFINED },
            // SDM DAS example: sub al, bl (0x35 - 0x47 = 0xee); das -> 0x88, CF=1 AF=1 SF=1 PF=1
            Case { bytes: &[0x28, 0xd8, 0x2f], eax: 0x35, ebx: 0x47, fin: 0, eax_out: 0x88, fout: CF | AF | SF | PF, fmask: DAA_DEFINED },
            // das: 0x00 with CF=1 -> 0xa0, CF=1, AF=0
            Case { bytes: &[0x2f], eax: 0x00, ebx: 0, fin: CF, eax_out: 0xa0, fout: CF | SF | PF, fmask: DAA_DEFINED },
            // das: 0x03 with AF=1: 0x03 - 6 borrows, so CF=1 although no -0x60 step
            Case { bytes: &[0x2f], eax: 0x03, ebx: 0, fin: AF, eax_out: 0xfd, fout: CF | AF | SF, fmask: DAA_DEFINED },
        ]);
    }

    /// AAA and AAS (only CF and AF are defined).
    #[test]
    #[rustfmt::skip]
    fn aaa_aas() {
        check(&[
            // add al, bl ('8' + '9' = 0x71, AF=1); aaa -> AX = 0x0107 (17), CF=AF=1
            Case { bytes: &[0x00, 0xd8, 0x37], eax: 0xdead_0038, ebx: 0x39, fin: 0, eax_out: 0xdead_0107, fout: CF | AF, fmask: CF | AF },
            // aaa: AL = 0xfa: AX + 0x106 carries into AH -> AX = 0x0200
            Case { bytes: &[0x37], eax: 0x00fa, ebx: 0, fin: 0, eax_out: 0x0200, fout: CF | AF, fmask: CF | AF },
            // aaa: no adjustment, high nibble cleared, CF=AF=0
            Case { bytes: &[0x37], eax: 0x0435, ebx: 0, fin: CF, eax_out: 0x0405, fout: 0, fmask: CF | AF },
            // sub al, bl ('8' - '9' = 0xff, AF=1); aas -> AX = 0x0409 with AH 5 -> 4, CF=AF=1
            Case { bytes: &[0x28, 0xd8, 0x3f], eax: 0x0538, ebx: 0x39, fin: 0, eax_out: 0x0409, fout: CF | AF, fmask: CF | AF },
            // aas: AL = 0x02, AF=1: AX - 6 borrows from AH, then AH - 1 -> AX = 0x030c
            Case { bytes: &[0x3f], eax: 0x0502, ebx: 0, fin: AF, eax_out: 0x030c, fout: CF | AF, fmask: CF | AF },
            // aas: no adjustment
            Case { bytes: &[0x3f], eax: 0x0735, ebx: 0, fin: CF, eax_out: 0x0705, fout: 0, fmask: CF | AF },
        ]);
    }

    /// AAM and AAD with base 10 and other bases (SF, ZF, PF defined).
    #[test]
    #[rustfmt::skip]
    fn aam_aad() {
        const SZP: u32 = SF | ZF | PF;
        check(&[
            // aam: 63 -> AH=6 AL=3
            Case { bytes: &[0xd4, 0x0a], eax: 0xdead_be3f, ebx: 0, fin: ARITH, eax_out: 0xdead_0603, fout: PF, fmask: SZP },
            // aam 16: 0x3f -> AH=3 AL=0xf
            Case { bytes: &[0xd4, 0x10], eax: 0x3f, ebx: 0, fin: 0, eax_out: 0x030f, fout: PF, fmask: SZP },
            // aam: 80 -> AH=8 AL=0, ZF=1
            Case { bytes: &[0xd4, 0x0a], eax: 0x50, ebx: 0, fin: 0, eax_out: 0x0800, fout: ZF | PF, fmask: SZP },
            // aad: AH=6 AL=3 -> 63
            Case { bytes: &[0xd5, 0x0a], eax: 0xdead_0603, ebx: 0, fin: 0, eax_out: 0xdead_003f, fout: PF, fmask: SZP },
            // aad 16: AH=3 AL=4 -> 0x34
            Case { bytes: &[0xd5, 0x10], eax: 0x0304, ebx: 0, fin: ARITH, eax_out: 0x34, fout: 0, fmask: SZP },
            // aad: 25 * 10 + 6 = 256 wraps to 0
            Case { bytes: &[0xd5, 0x0a], eax: 0x1906, ebx: 0, fin: 0, eax_out: 0, fout: ZF | PF, fmask: SZP },
            // aad: 12 * 10 + 8 = 128 -> SF
            Case { bytes: &[0xd5, 0x0a], eax: 0x0c08, ebx: 0, fin: 0, eax_out: 0x80, fout: SF, fmask: SZP },
        ]);
    }

    /// AAM 0 raises #DE and changes nothing.
    #[test]
    fn aam_zero_is_divide_error() {
        let bytes = [0xd4, 0x00];
        let mut t = TestBox::new(&bytes);
        t.cpu.state.gpr[EAX] = 0x1234_5678;
        t.cpu.state.eflags |= OF | CF;
        let insn = Decoder::with_ip(32, &bytes, CODE_BASE as u64, DecoderOptions::NONE).decode();
        let handler = super::lookup(&insn).expect("AAM is in this group");
        let before = t.cpu.state.clone();
        assert_eq!(handler(&mut t.cpu, &mut t.bus, &insn), Err(Event::Exception(Exception::DivideError)));
        assert_eq!(t.cpu.state, before);
    }
}
