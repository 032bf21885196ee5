//! Near control transfers: JMP, Jcc, CALL, RET, LOOP/LOOPE/LOOPNE, JCXZ/JECXZ and BOUND
//! (SDM Vol. 2 instruction pages; Vol. 1 6.3 "Calling procedures using CALL and RET").
//!
//! Far transfers, INT n / INTO / INT3 / IRET are sensitive and live in `popek-vmm`;
//! [`lookup`] answers `None` for them. Every branch checks its target against the CS
//! limit (#GP(0)) before it changes anything, so a faulting branch is precise.

use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::{Code, ConditionCode, Instruction, OpKind};
use popek_cpu::operand::{op_width, sign_extend};
use popek_cpu::state::flags::ZF;
use popek_cpu::state::gpr::ECX;
use popek_cpu::{Bus, Cpu, ExecResult, Handler, Seg};

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    if insn.is_jcc_short_or_near() {
        return Some(jcc_for(insn.condition_code()));
    }
    Some(match insn.code() {
        Code::Jmp_rel8_16 | Code::Jmp_rel8_32 | Code::Jmp_rel16 | Code::Jmp_rel32_32 => jmp_rel,
        Code::Jmp_rm16 | Code::Jmp_rm32 => jmp_indirect,
        Code::Call_rel16 | Code::Call_rel32_32 => call_rel,
        Code::Call_rm16 | Code::Call_rm32 => call_indirect,
        Code::Retnw | Code::Retnw_imm16 => ret::<2>,
        Code::Retnd | Code::Retnd_imm16 => ret::<4>,
        Code::Loop_rel8_16_CX | Code::Loop_rel8_32_CX => loop_::<LOOP, true>,
        Code::Loop_rel8_16_ECX | Code::Loop_rel8_32_ECX => loop_::<LOOP, false>,
        Code::Loope_rel8_16_CX | Code::Loope_rel8_32_CX => loop_::<LOOPE, true>,
        Code::Loope_rel8_16_ECX | Code::Loope_rel8_32_ECX => loop_::<LOOPE, false>,
        Code::Loopne_rel8_16_CX | Code::Loopne_rel8_32_CX => loop_::<LOOPNE, true>,
        Code::Loopne_rel8_16_ECX | Code::Loopne_rel8_32_ECX => loop_::<LOOPNE, false>,
        Code::Jcxz_rel8_16 | Code::Jcxz_rel8_32 => jcxz::<true>,
        Code::Jecxz_rel8_16 | Code::Jecxz_rel8_32 => jcxz::<false>,
        Code::Bound_r16_m1616 => bound::<2>,
        Code::Bound_r32_m3232 => bound::<4>,
        _ => return None,
    })
}

const LOOP: u8 = 0;
const LOOPE: u8 = 1;
const LOOPNE: u8 = 2;

/// #GP(0) if `target` is beyond the CS limit (SDM: "IF tempEIP is not within code segment limit").
#[inline]
fn check_target(cpu: &Cpu, target: u32) -> Result<(), Exception> {
    if target > cpu.state.seg[Seg::Cs as usize].limit { Err(Exception::GeneralProtection(0)) } else { Ok(()) }
}

/// Moves EIP to `target` after the CS-limit check.
#[inline]
fn jump(cpu: &mut Cpu, target: u32) -> ExecResult {
    check_target(cpu, target)?;
    cpu.state.eip = target;
    Ok(())
}

/// Width of the return address a near CALL pushes: its operand size.
#[inline]
fn rel_width(insn: &Instruction) -> u32 {
    if insn.op0_kind() == OpKind::NearBranch16 { 2 } else { 4 }
}

/// JMP rel8/rel16/rel32.
fn jmp_rel(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let t = cpu.branch_target(insn);
    jump(cpu, t)
}

/// JMP r/m16 or r/m32: the operand is the new (E)IP, zero-extended.
fn jmp_indirect(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let t = cpu.read_op(bus, insn, 0, w)?;
    jump(cpu, t)
}

/// The Jcc handler for condition `cc`, chosen at decode time so the condition is
/// a constant in the handler.
fn jcc_for(cc: ConditionCode) -> Handler {
    use ConditionCode as C;
    match cc {
        C::None => jcc::<{ C::None as u8 }>,
        C::o => jcc::<{ C::o as u8 }>,
        C::no => jcc::<{ C::no as u8 }>,
        C::b => jcc::<{ C::b as u8 }>,
        C::ae => jcc::<{ C::ae as u8 }>,
        C::e => jcc::<{ C::e as u8 }>,
        C::ne => jcc::<{ C::ne as u8 }>,
        C::be => jcc::<{ C::be as u8 }>,
        C::a => jcc::<{ C::a as u8 }>,
        C::s => jcc::<{ C::s as u8 }>,
        C::ns => jcc::<{ C::ns as u8 }>,
        C::p => jcc::<{ C::p as u8 }>,
        C::np => jcc::<{ C::np as u8 }>,
        C::l => jcc::<{ C::l as u8 }>,
        C::ge => jcc::<{ C::ge as u8 }>,
        C::le => jcc::<{ C::le as u8 }>,
        C::g => jcc::<{ C::g as u8 }>,
    }
}

/// Jcc rel8/rel16/rel32 on condition `CC` (a [`ConditionCode`] as `u8`).
fn jcc<const CC: u8>(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    if crate::cond::holds(cpu.state.eflags, crate::cond::ALL[CC as usize]) {
        let t = cpu.branch_target(insn);
        jump(cpu, t)?;
    }
    Ok(())
}

/// Pushes the return address and jumps: the limit check comes before the push
/// (SDM CALL: #GP for the target, then #SS for the push).
#[inline]
fn call_to(cpu: &mut Cpu, bus: &mut dyn Bus, target: u32, w: u32) -> ExecResult {
    check_target(cpu, target)?;
    let ret = cpu.state.eip;
    cpu.push(bus, ret, w)?;
    cpu.state.eip = target;
    Ok(())
}

/// CALL rel16/rel32.
fn call_rel(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let t = cpu.branch_target(insn);
    call_to(cpu, bus, t, rel_width(insn))
}

/// CALL r/m16 or r/m32 (the operand is read before the push, so `call [esp]` sees the old top).
fn call_indirect(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let t = cpu.read_op(bus, insn, 0, w)?;
    call_to(cpu, bus, t, w)
}

/// RET / RET imm16 with a `W`-byte return address; imm16 more bytes are released.
fn ret<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let t = cpu.peek(bus, 0, W)?;
    check_target(cpu, t)?;
    let release = if insn.op_count() == 1 { insn.immediate16() as u32 } else { 0 };
    cpu.set_sp(cpu.sp_offset(W + release));
    cpu.state.eip = t;
    Ok(())
}

/// LOOP / LOOPE / LOOPNE: decrements CX (`A16`) or ECX without touching flags and
/// branches while the count is non-zero (and ZF matches for LOOPE/LOOPNE).
fn loop_<const KIND: u8, const A16: bool>(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let ecx = cpu.state.gpr[ECX];
    let new_ecx = if A16 { (ecx & 0xffff_0000) | (ecx.wrapping_sub(1) & 0xffff) } else { ecx.wrapping_sub(1) };
    let count = if A16 { new_ecx & 0xffff } else { new_ecx };
    let zf = cpu.state.eflags & ZF != 0;
    let taken = count != 0
        && match KIND {
            LOOPE => zf,
            LOOPNE => !zf,
            _ => true,
        };
    if taken {
        let t = cpu.branch_target(insn);
        check_target(cpu, t)?;
        cpu.state.eip = t;
    }
    cpu.state.gpr[ECX] = new_ecx;
    Ok(())
}

/// JCXZ (`A16`) / JECXZ: branch if the count register is zero.
fn jcxz<const A16: bool>(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let ecx = cpu.state.gpr[ECX];
    let count = if A16 { ecx & 0xffff } else { ecx };
    if count == 0 {
        let t = cpu.branch_target(insn);
        jump(cpu, t)?;
    }
    Ok(())
}

/// BOUND r, m: #BR (a fault) unless lower <= index <= upper, all signed `W`-byte values.
fn bound<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let index = sign_extend(cpu.read_gpr(insn.op0_register()), W) as i32;
    let (seg, off) = cpu.memory_operand(insn);
    let mut upper_off = off.wrapping_add(W);
    if popek_cpu::operand::is_addr16(insn) {
        upper_off &= 0xffff;
    }
    let lower = sign_extend(cpu.read(bus, seg, off, W)?, W) as i32;
    let upper = sign_extend(cpu.read(bus, seg, upper_off, W)?, W) as i32;
    if index < lower || index > upper {
        return Err(Exception::BoundRange.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{CODE_BASE, DATA_BASE, STACK_TOP, TestBox};
    use popek_cpu::Event;
    use popek_cpu::iced_x86::{ConditionCode, Decoder, DecoderOptions};
    use popek_cpu::state::flags::{CF, OF, PF, SF};
    use popek_cpu::state::gpr::*;

    /// Every condition, its encoding's low nibble (SDM Table B-1), and flag values that make it
    /// true and false.
    struct CcCase {
        nibble: u8,
        taken: u32,
        not_taken: u32,
    }

    const CC_CASES: &[CcCase] = &[
        CcCase { nibble: 0x0, taken: OF, not_taken: 0 },       // JO
        CcCase { nibble: 0x1, taken: 0, not_taken: OF },       // JNO
        CcCase { nibble: 0x2, taken: CF, not_taken: ZF },      // JB
        CcCase { nibble: 0x3, taken: ZF, not_taken: CF },      // JAE
        CcCase { nibble: 0x4, taken: ZF, not_taken: CF },      // JE
        CcCase { nibble: 0x5, taken: CF, not_taken: ZF },      // JNE
        CcCase { nibble: 0x6, taken: ZF, not_taken: 0 },       // JBE (ZF)
        CcCase { nibble: 0x6, taken: CF, not_taken: SF },      // JBE (CF)
        CcCase { nibble: 0x7, taken: 0, not_taken: CF },       // JA
        CcCase { nibble: 0x7, taken: SF | OF, not_taken: ZF }, // JA
        CcCase { nibble: 0x8, taken: SF, not_taken: OF },      // JS
        CcCase { nibble: 0x9, taken: OF, not_taken: SF },      // JNS
        CcCase { nibble: 0xa, taken: PF, not_taken: 0 },       // JP
        CcCase { nibble: 0xb, taken: 0, not_taken: PF },       // JNP
        CcCase { nibble: 0xc, taken: SF, not_taken: SF | OF }, // JL
        CcCase { nibble: 0xc, taken: OF, not_taken: 0 },       // JL
        CcCase { nibble: 0xd, taken: SF | OF, not_taken: OF }, // JGE
        CcCase { nibble: 0xd, taken: 0, not_taken: SF },       // JGE
        CcCase { nibble: 0xe, taken: ZF, not_taken: 0 },       // JLE
        CcCase { nibble: 0xe, taken: SF, not_taken: SF | OF }, // JLE
        CcCase { nibble: 0xf, taken: 0, not_taken: ZF },       // JG
        CcCase { nibble: 0xf, taken: SF | OF, not_taken: SF }, // JG
    ];

    #[test]
    fn jcc_every_condition_every_size() {
        for c in CC_CASES {
            // (encoding, length, target if taken)
            let forms: [(Vec<u8>, u32, u32); 3] = [
                (vec![0x70 | c.nibble, 0x10], 2, CODE_BASE + 2 + 0x10),
                (vec![0x0f, 0x80 | c.nibble, 0x00, 0x01, 0, 0], 6, CODE_BASE + 6 + 0x100),
                (vec![0x66, 0x0f, 0x80 | c.nibble, 0x20, 0x00], 5, CODE_BASE + 5 + 0x20),
            ];
            for (bytes, len, target) in forms {
                for (flags, taken) in [(c.taken, true), (c.not_taken, false)] {
                    let mut t = TestBox::new(&[]);
                    t.cpu.state.eflags = 2 | flags;
                    t.exec_one(&bytes).unwrap();
                    let want = if taken { target } else { CODE_BASE + len };
                    assert_eq!(t.cpu.state.eip, want, "{bytes:02x?} flags {flags:#x}");
                    assert_eq!(t.cpu.state.eflags, 2 | flags);
                }
            }
        }
    }

    #[test]
    fn cond_holds_matches_the_sdm_table_for_all_flag_combinations() {
        use ConditionCode as C;
        for bits in 0..32u32 {
            let mut e = 2;
            for (i, f) in [CF, ZF, SF, OF, PF].into_iter().enumerate() {
                if bits & (1 << i) != 0 {
                    e |= f;
                }
            }
            let (cf, zf, sf, of, pf) = (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0, bits & 16 != 0);
            let table = [
                (C::o, of),
                (C::no, !of),
                (C::b, cf),
                (C::ae, !cf),
                (C::e, zf),
                (C::ne, !zf),
                (C::be, cf | zf),
                (C::a, !(cf | zf)),
                (C::s, sf),
                (C::ns, !sf),
                (C::p, pf),
                (C::np, !pf),
                (C::l, sf ^ of),
                (C::ge, !(sf ^ of)),
                (C::le, (sf ^ of) | zf),
                (C::g, !((sf ^ of) | zf)),
            ];
            for (cc, want) in table {
                assert_eq!(crate::cond::holds(e, cc), want, "{cc:?} eflags {e:#x}");
            }
        }
    }

    #[test]
    fn jmp_forms() {
        struct Case {
            bytes: &'static [u8],
            init: fn(&mut TestBox),
            eip: u32,
        }
        let none: fn(&mut TestBox) = |_| {};
        let cases = [
            // jmp short +5
            Case { bytes: &[0xeb, 0x05], init: none, eip: CODE_BASE + 7 },
            // jmp short -2 (to itself)
            Case { bytes: &[0xeb, 0xfe], init: none, eip: CODE_BASE },
            // jmp near +0x1234
            Case { bytes: &[0xe9, 0x34, 0x12, 0, 0], init: none, eip: CODE_BASE + 5 + 0x1234 },
            // jmp rel16 (0x66): target wraps to IP
            Case { bytes: &[0x66, 0xe9, 0x00, 0xf0], init: none, eip: (CODE_BASE + 4 + 0xf000) & 0xffff },
            // jmp eax
            Case { bytes: &[0xff, 0xe0], init: |t| t.cpu.state.gpr[EAX] = 0x0012_3456, eip: 0x0012_3456 },
            // jmp ax: zero-extended
            Case { bytes: &[0x66, 0xff, 0xe0], init: |t| t.cpu.state.gpr[EAX] = 0x0012_3456, eip: 0x3456 },
            // jmp [DATA_BASE]
            Case {
                bytes: &[0xff, 0x25, 0x00, 0x00, 0x01, 0x00],
                init: |t| t.poke(DATA_BASE, &0x4321u32.to_le_bytes()),
                eip: 0x4321,
            },
            // jmp word [DATA_BASE]
            Case {
                bytes: &[0x66, 0xff, 0x25, 0x00, 0x00, 0x01, 0x00],
                init: |t| t.poke(DATA_BASE, &0x8765_4321u32.to_le_bytes()),
                eip: 0x4321,
            },
        ];
        for c in cases {
            let mut t = TestBox::new(&[]);
            (c.init)(&mut t);
            t.exec_one(c.bytes).unwrap();
            assert_eq!(t.cpu.state.eip, c.eip, "{:02x?}", c.bytes);
            assert_eq!(t.cpu.state.gpr[ESP], STACK_TOP);
        }
    }

    #[test]
    fn branch_beyond_cs_limit_is_gp_and_changes_nothing() {
        let cases: &[&[u8]] = &[
            &[0xe9, 0x00, 0x10, 0, 0], // jmp +0x1000
            &[0x74, 0x7f],             // jz (ZF=1 below)
            &[0xe8, 0x00, 0x10, 0, 0], // call +0x1000
            &[0xff, 0xd0],             // call eax
            &[0xc3],                   // ret (to 0x5000)
            &[0xc2, 0x08, 0x00],       // ret 8
            &[0xe2, 0x7f],             // loop
            &[0xe3, 0x7f],             // jecxz (ECX=0 is set per case below)
        ];
        for bytes in cases {
            let mut t = TestBox::new(&[]);
            t.cpu.state.seg[Seg::Cs as usize].limit = 0x1040;
            t.cpu.state.eflags |= ZF;
            t.cpu.state.gpr[EAX] = 0x5000;
            t.cpu.state.gpr[ECX] = if bytes[0] == 0xe3 { 0 } else { 5 };
            t.cpu.state.gpr[ESP] = STACK_TOP - 4;
            t.poke(STACK_TOP - 4, &0x5000u32.to_le_bytes());
            let before = t.cpu.state.clone();
            let r = t.exec_one(bytes);
            assert_eq!(r, Err(Event::Exception(Exception::GeneralProtection(0))), "{bytes:02x?}");
            let mut after = t.cpu.state.clone();
            after.eip = before.eip;
            assert_eq!(after, before, "{bytes:02x?}");
            assert_eq!(t.peek32(STACK_TOP - 8), 0, "{bytes:02x?}: nothing pushed");
        }
    }

    #[test]
    fn call_ret_round_trip_through_the_interpreter() {
        let code = [
            0xe8, 0x05, 0x00, 0x00, 0x00, // 1000: call 100a
            0x6a, 0x07, //                   1005: push 7
            0x5b, //                         1007: pop ebx
            0xeb, 0x03, //                   1008: jmp 100d (end)
            0x58, //                         100a: pop eax   (the return address)
            0x50, //                         100b: push eax
            0xc3, //                         100c: ret
        ];
        let mut t = TestBox::new(&code);
        t.run(10).unwrap();
        assert_eq!(t.cpu.state.gpr[EAX], CODE_BASE + 5, "return address pushed");
        assert_eq!(t.peek32(STACK_TOP - 4), 7, "push 7 reused the return address slot");
        assert_eq!(t.cpu.state.gpr[EBX], 7);
        assert_eq!(t.cpu.state.gpr[ESP], STACK_TOP);
        assert_eq!(t.cpu.state.eip, CODE_BASE + code.len() as u32);
    }

    #[test]
    fn call_forms_push_return_address_of_operand_size() {
        struct Case {
            bytes: &'static [u8],
            eip: u32,
            esp: u32,
            pushed: u32, // dword at the new ESP, masked to the push width
        }
        let cases = [
            // call rel32
            Case {
                bytes: &[0xe8, 0x00, 0x01, 0, 0],
                eip: CODE_BASE + 5 + 0x100,
                esp: STACK_TOP - 4,
                pushed: CODE_BASE + 5,
            },
            // call rel16: pushes IP (2 bytes)
            Case {
                bytes: &[0x66, 0xe8, 0x00, 0x01],
                eip: CODE_BASE + 4 + 0x100,
                esp: STACK_TOP - 2,
                pushed: CODE_BASE + 4,
            },
            // call eax
            Case { bytes: &[0xff, 0xd0], eip: 0x0001_2345, esp: STACK_TOP - 4, pushed: CODE_BASE + 2 },
            // call ax
            Case { bytes: &[0x66, 0xff, 0xd0], eip: 0x2345, esp: STACK_TOP - 2, pushed: CODE_BASE + 3 },
            // call [esp]: reads the old top (0x3000) before pushing
            Case { bytes: &[0xff, 0x14, 0x24], eip: 0x3000, esp: STACK_TOP - 4, pushed: CODE_BASE + 3 },
        ];
        for c in cases {
            let mut t = TestBox::new(&[]);
            t.cpu.state.gpr[EAX] = 0x0001_2345;
            t.poke(STACK_TOP, &0x3000u32.to_le_bytes());
            t.exec_one(c.bytes).unwrap();
            assert_eq!(t.cpu.state.eip, c.eip, "{:02x?}", c.bytes);
            assert_eq!(t.cpu.state.gpr[ESP], c.esp, "{:02x?}", c.bytes);
            let w = STACK_TOP - c.esp;
            let m = if w == 2 { 0xffff } else { 0xffff_ffff };
            assert_eq!(t.peek32(c.esp) & m, c.pushed, "{:02x?}", c.bytes);
            if w == 2 {
                assert_eq!(t.peek32(c.esp) >> 16, 0x3000 & 0xffff, "{:02x?}: only two bytes written", c.bytes);
            }
        }
    }

    #[test]
    fn ret_forms() {
        struct Case {
            bytes: &'static [u8],
            eip: u32,
            esp: u32,
        }
        let cases = [
            Case { bytes: &[0xc3], eip: 0x0002_3456, esp: STACK_TOP + 4 },
            Case { bytes: &[0xc2, 0x0c, 0x00], eip: 0x0002_3456, esp: STACK_TOP + 4 + 12 },
            Case { bytes: &[0x66, 0xc3], eip: 0x3456, esp: STACK_TOP + 2 },
            Case { bytes: &[0x66, 0xc2, 0x04, 0x00], eip: 0x3456, esp: STACK_TOP + 2 + 4 },
        ];
        for c in cases {
            let mut t = TestBox::new(&[]);
            t.poke(STACK_TOP, &0x0002_3456u32.to_le_bytes());
            t.exec_one(c.bytes).unwrap();
            assert_eq!((t.cpu.state.eip, t.cpu.state.gpr[ESP]), (c.eip, c.esp), "{:02x?}", c.bytes);
        }
    }

    #[test]
    fn ret_imm16_through_the_interpreter() {
        // push 0x11 ; push 0x22 ; call f ; jmp end ; f: ret 8 ; end:
        let code = [
            0x6a, 0x11, //                   1000
            0x6a, 0x22, //                   1002
            0xe8, 0x02, 0x00, 0x00, 0x00, // 1004: call 100b
            0xeb, 0x03, //                   1009: jmp 100e
            0xc2, 0x08, 0x00, //             100b: ret 8
        ];
        let mut t = TestBox::new(&code);
        t.run(10).unwrap();
        assert_eq!(t.cpu.state.gpr[ESP], STACK_TOP);
        assert_eq!(t.peek32(STACK_TOP - 4), 0x11);
        assert_eq!(t.peek32(STACK_TOP - 8), 0x22);
        assert_eq!(t.peek32(STACK_TOP - 12), CODE_BASE + 9);
        assert_eq!(t.cpu.state.eip, CODE_BASE + code.len() as u32);
    }

    #[test]
    fn loop_variants() {
        struct Case {
            bytes: &'static [u8],
            ecx: u32,
            zf: bool,
            taken: bool,
            ecx_after: u32,
        }
        // Each is `<op> -2` (a loop to itself).
        let cases = [
            Case { bytes: &[0xe2, 0xfe], ecx: 2, zf: false, taken: true, ecx_after: 1 },
            Case { bytes: &[0xe2, 0xfe], ecx: 1, zf: false, taken: false, ecx_after: 0 },
            Case { bytes: &[0xe2, 0xfe], ecx: 0, zf: false, taken: true, ecx_after: 0xffff_ffff },
            // 0x67: CX only, upper half untouched
            Case { bytes: &[0x67, 0xe2, 0xfd], ecx: 0x0005_0001, zf: false, taken: false, ecx_after: 0x0005_0000 },
            Case { bytes: &[0x67, 0xe2, 0xfd], ecx: 0x0005_0000, zf: false, taken: true, ecx_after: 0x0005_ffff },
            // LOOPE
            Case { bytes: &[0xe1, 0xfe], ecx: 3, zf: true, taken: true, ecx_after: 2 },
            Case { bytes: &[0xe1, 0xfe], ecx: 3, zf: false, taken: false, ecx_after: 2 },
            Case { bytes: &[0xe1, 0xfe], ecx: 1, zf: true, taken: false, ecx_after: 0 },
            // LOOPNE
            Case { bytes: &[0xe0, 0xfe], ecx: 3, zf: false, taken: true, ecx_after: 2 },
            Case { bytes: &[0xe0, 0xfe], ecx: 3, zf: true, taken: false, ecx_after: 2 },
            Case { bytes: &[0xe0, 0xfe], ecx: 1, zf: false, taken: false, ecx_after: 0 },
            Case { bytes: &[0x67, 0xe0, 0xfd], ecx: 0x1_0000, zf: false, taken: true, ecx_after: 0x1_ffff },
        ];
        for c in cases {
            let mut t = TestBox::new(&[]);
            t.cpu.state.gpr[ECX] = c.ecx;
            let flags = if c.zf { 2 | ZF } else { 2 };
            t.cpu.state.eflags = flags;
            t.exec_one(c.bytes).unwrap();
            let want = if c.taken { CODE_BASE } else { CODE_BASE + c.bytes.len() as u32 };
            assert_eq!(t.cpu.state.eip, want, "{:02x?} ecx {:#x}", c.bytes, c.ecx);
            assert_eq!(t.cpu.state.gpr[ECX], c.ecx_after, "{:02x?} ecx {:#x}", c.bytes, c.ecx);
            assert_eq!(t.cpu.state.eflags, flags, "LOOP leaves flags alone");
        }
    }

    #[test]
    fn loop_counts_through_the_interpreter() {
        // xor eax, eax ; push 10 ; pop ecx ; l: add eax, ecx ; loop l
        let code = [0x31, 0xc0, 0x6a, 0x0a, 0x59, 0x01, 0xc8, 0xe2, 0xfc];
        let mut t = TestBox::new(&code);
        t.run(100).unwrap();
        assert_eq!(t.cpu.state.gpr[EAX], 55);
        assert_eq!(t.cpu.state.gpr[ECX], 0);
    }

    #[test]
    fn jcxz_and_jecxz() {
        struct Case {
            bytes: &'static [u8],
            ecx: u32,
            taken: bool,
        }
        let cases = [
            Case { bytes: &[0xe3, 0x10], ecx: 0, taken: true },
            Case { bytes: &[0xe3, 0x10], ecx: 0x1_0000, taken: false },
            Case { bytes: &[0xe3, 0x10], ecx: 1, taken: false },
            // 0x67: JCXZ tests CX only
            Case { bytes: &[0x67, 0xe3, 0x10], ecx: 0x1_0000, taken: true },
            Case { bytes: &[0x67, 0xe3, 0x10], ecx: 0x1, taken: false },
        ];
        for c in cases {
            let mut t = TestBox::new(&[]);
            t.cpu.state.gpr[ECX] = c.ecx;
            t.exec_one(c.bytes).unwrap();
            let next = CODE_BASE + c.bytes.len() as u32;
            let want = if c.taken { next + 0x10 } else { next };
            assert_eq!(t.cpu.state.eip, want, "{:02x?} ecx {:#x}", c.bytes, c.ecx);
            assert_eq!(t.cpu.state.gpr[ECX], c.ecx);
        }
    }

    #[test]
    fn bound_in_and_out_of_range() {
        struct Case {
            bytes: &'static [u8],
            index: u32,
            ok: bool,
        }
        // bounds at DATA_BASE: dword pair (-5, 100); word pair (0xfffe = -2, 3).
        let cases = [
            Case { bytes: &[0x62, 0x05, 0x00, 0x00, 0x01, 0x00], index: 0xffff_fffb, ok: true },
            Case { bytes: &[0x62, 0x05, 0x00, 0x00, 0x01, 0x00], index: 100, ok: true },
            Case { bytes: &[0x62, 0x05, 0x00, 0x00, 0x01, 0x00], index: 101, ok: false },
            Case { bytes: &[0x62, 0x05, 0x00, 0x00, 0x01, 0x00], index: 0xffff_fffa, ok: false },
            // bound ax, [DATA_BASE+8]
            Case { bytes: &[0x66, 0x62, 0x05, 0x08, 0x00, 0x01, 0x00], index: 0x7777_fffe, ok: true },
            Case { bytes: &[0x66, 0x62, 0x05, 0x08, 0x00, 0x01, 0x00], index: 0x0000_0004, ok: false },
            Case { bytes: &[0x66, 0x62, 0x05, 0x08, 0x00, 0x01, 0x00], index: 0x0000_fffd, ok: false },
        ];
        for c in cases {
            let mut t = TestBox::new(&[]);
            t.poke(DATA_BASE, &(-5i32).to_le_bytes());
            t.poke(DATA_BASE + 4, &100i32.to_le_bytes());
            t.poke(DATA_BASE + 8, &[0xfe, 0xff, 0x03, 0x00]);
            t.cpu.state.gpr[EAX] = c.index;
            let r = t.exec_one(c.bytes);
            let want = if c.ok { Ok(()) } else { Err(Event::Exception(Exception::BoundRange)) };
            assert_eq!(r, want, "{:02x?} index {:#x}", c.bytes, c.index);
            assert_eq!(t.cpu.state.eip, CODE_BASE + c.bytes.len() as u32);
        }
    }

    /// In a 16-bit code segment the default operand size is 16 bits: CALL pushes IP, RET pops
    /// IP, and 0x66 selects the 32-bit forms; LOOP counts with CX.
    #[test]
    fn sixteen_bit_code_defaults() {
        struct Case {
            bytes: &'static [u8],
            eip: u32,
            esp: u32,
        }
        let cases = [
            // call +0x10 (rel16): pushes 2 bytes
            Case { bytes: &[0xe8, 0x10, 0x00], eip: CODE_BASE + 3 + 0x10, esp: STACK_TOP - 2 },
            // o32 call +0x10 (rel32): pushes 4 bytes
            Case { bytes: &[0x66, 0xe8, 0x10, 0, 0, 0], eip: CODE_BASE + 6 + 0x10, esp: STACK_TOP - 4 },
            // ret: pops IP
            Case { bytes: &[0xc3], eip: 0x5678, esp: STACK_TOP + 2 },
            // o32 ret: pops EIP
            Case { bytes: &[0x66, 0xc3], eip: 0x1234_5678, esp: STACK_TOP + 4 },
            // loop -2 with CX = 0x0001 (ECX upper half set): CX becomes 0, not taken
            Case { bytes: &[0xe2, 0xfe], eip: CODE_BASE + 2, esp: STACK_TOP },
        ];
        for c in cases {
            let mut t = TestBox::new(&[]);
            t.cpu.state.seg[Seg::Cs as usize].access &= !popek_cpu::state::access::DB;
            t.cpu.state.gpr[ECX] = 0x0003_0001;
            t.poke(STACK_TOP, &0x1234_5678u32.to_le_bytes());
            let insn = Decoder::with_ip(16, c.bytes, CODE_BASE as u64, DecoderOptions::NONE).decode();
            t.cpu.state.eip = CODE_BASE + insn.len() as u32;
            lookup(&insn).expect("control group")(&mut t.cpu, &mut t.bus, &insn).unwrap();
            assert_eq!((t.cpu.state.eip, t.cpu.state.gpr[ESP]), (c.eip, c.esp), "{:02x?}", c.bytes);
            if c.esp < STACK_TOP {
                let m = if c.esp == STACK_TOP - 2 { 0xffff } else { 0xffff_ffff };
                assert_eq!(t.peek32(c.esp) & m, CODE_BASE + c.bytes.len() as u32, "{:02x?}", c.bytes);
            }
            if c.bytes == [0xe2, 0xfe] {
                assert_eq!(t.cpu.state.gpr[ECX], 0x0003_0000);
            }
        }
    }

    #[test]
    fn far_transfers_are_not_ours() {
        let cases: &[&[u8]] = &[
            &[0xea, 0, 0, 0, 0, 0x08, 0x00], // jmp far ptr
            &[0x9a, 0, 0, 0, 0, 0x08, 0x00], // call far ptr
            &[0xff, 0x2d, 0, 0, 1, 0],       // jmp far [m]
            &[0xff, 0x1d, 0, 0, 1, 0],       // call far [m]
            &[0xcb],                         // retf
            &[0xca, 4, 0],                   // retf 4
            &[0xcd, 0x80],                   // int 0x80
            &[0xcc],                         // int3
            &[0xce],                         // into
            &[0xcf],                         // iret
        ];
        for bytes in cases {
            let insn = Decoder::with_ip(32, bytes, CODE_BASE as u64, DecoderOptions::NONE).decode();
            assert!(lookup(&insn).is_none(), "{bytes:02x?}");
        }
    }
}
