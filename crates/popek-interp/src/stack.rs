//! General-register stack instructions: PUSH, POP, PUSHA/PUSHAD, POPA/POPAD, ENTER, LEAVE
//! (SDM Vol. 2 instruction pages; Vol. 1 6.2 "Stacks" and 6.5 "Procedure calls for block-structured languages").
//!
//! The operand size (0x66) picks 2- or 4-byte pushes; the stack size (SS.B) picks SP or
//! ESP, which [`Cpu::push`], [`Cpu::pop`] and [`Cpu::set_sp`] already handle. PUSH/POP of
//! segment registers and PUSHF/POPF are sensitive and live in `popek-vmm`.

use popek_cpu::iced_x86::{Code, Instruction};
use popek_cpu::operand::{gpr32_index, mask, op_width};
use popek_cpu::state::gpr::{EBP, ESP};
use popek_cpu::{Bus, Cpu, ExecResult, Handler, Seg};

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    Some(match insn.code() {
        Code::Push_r32 => push_r32,
        Code::Pop_r32 => pop_r32,
        Code::Push_r16
        | Code::Push_imm16
        | Code::Pushd_imm32
        | Code::Pushw_imm8
        | Code::Pushd_imm8
        | Code::Push_rm16
        | Code::Push_rm32 => push,
        Code::Pop_r16 => pop_reg,
        Code::Pop_rm16 | Code::Pop_rm32 => pop_rm,
        Code::Pushaw => pusha::<2>,
        Code::Pushad => pusha::<4>,
        Code::Popaw => popa::<2>,
        Code::Popad => popa::<4>,
        Code::Enterw_imm16_imm8 => enter::<2>,
        Code::Enterd_imm16_imm8 => enter::<4>,
        Code::Leavew => leave::<2>,
        Code::Leaved => leave::<4>,
        _ => return None,
    })
}

/// PUSH r / imm / r/m: the source is read first, so `push esp` pushes the value
/// before the decrement and `push [esp]` reads the old top.
fn push(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let v = cpu.read_op(bus, insn, 0, w)?;
    Ok(cpu.push(bus, v, w)?)
}

/// [`push`] for `PUSH r32` (the 50+rd form: always a 32-bit register).
fn push_r32(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let v = cpu.state.gpr[gpr32_index(insn.op0_register())];
    Ok(cpu.push(bus, v, 4)?)
}

/// [`pop_reg`] for `POP r32` (the 58+rd form).
fn pop_r32(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let v = cpu.pop(bus, 4)?;
    cpu.state.gpr[gpr32_index(insn.op0_register())] = v;
    Ok(())
}

/// POP r. Writing the register after moving ESP makes `pop esp` load the popped value.
fn pop_reg(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let v = cpu.pop(bus, w)?;
    cpu.write_gpr(insn.op0_register(), v);
    Ok(())
}

/// POP r/m. The destination address is computed with ESP already incremented (SDM POP:
/// "If the ESP register is used as a base register for addressing a destination operand
/// in memory, the POP instruction computes the effective address of the operand after it
/// increments the ESP register"); a faulting store puts ESP back.
fn pop_rm(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let v = cpu.peek(bus, 0, w)?;
    let old_esp = cpu.state.gpr[ESP];
    cpu.set_sp(cpu.sp_offset(w));
    if let Err(e) = cpu.write_op(bus, insn, 0, w, v) {
        cpu.state.gpr[ESP] = old_esp;
        return Err(e.into());
    }
    Ok(())
}

/// PUSHA / PUSHAD: EAX, ECX, EDX, EBX, the original ESP, EBP, ESI, EDI. All eight stores
/// happen before ESP moves, so a fault leaves ESP as it was.
fn pusha<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Instruction) -> ExecResult {
    let regs = cpu.state.gpr; // index order EAX..EDI is the push order; ESP is the original value
    for (i, &v) in regs.iter().enumerate() {
        let off = cpu.sp_offset((W * (i as u32 + 1)).wrapping_neg());
        cpu.write(bus, Seg::Ss, off, W, v)?;
    }
    cpu.set_sp(cpu.sp_offset((8 * W).wrapping_neg()));
    Ok(())
}

/// POPA / POPAD: the reverse of PUSHA; the saved ESP slot is skipped.
fn popa<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Instruction) -> ExecResult {
    let mut vals = [0u32; 8];
    for (i, v) in vals.iter_mut().enumerate() {
        // EDI is on top: register i sits at slot 7 - i.
        *v = cpu.peek(bus, W * (7 - i as u32), W)?;
    }
    let m = mask(W);
    for (i, &v) in vals.iter().enumerate() {
        if i != ESP {
            let g = &mut cpu.state.gpr[i];
            *g = (*g & !m) | (v & m);
        }
    }
    cpu.set_sp(cpu.sp_offset(8 * W));
    Ok(())
}

/// ENTER imm16, imm8 (SDM ENTER pseudo-code): pushes (E)BP, copies `level - 1` outer frame
/// pointers from the old frame, pushes the new frame pointer, sets (E)BP to it and
/// allocates imm16 bytes. Works on a local copy of ESP/EBP; registers change only at the end.
fn enter<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let alloc = insn.immediate16() as u32;
    let level = insn.immediate8_2nd() as u32 % 32;
    let stack32 = cpu.state.stack32();
    let smask = if stack32 { 0xffff_ffff } else { 0xffff };
    let m = mask(W);
    let mut sp = cpu.sp();
    let mut ebp = cpu.state.gpr[EBP];
    // Push(EBP or BP)
    sp = sp.wrapping_sub(W) & smask;
    cpu.write(bus, Seg::Ss, sp, W, ebp)?;
    // FrameTemp: ESP for a 32-bit operand size, SP for 16 (the value after the push).
    let esp_after_push = if stack32 { sp } else { (cpu.state.gpr[ESP] & 0xffff_0000) | sp };
    let frame_temp = esp_after_push & m;
    if level > 0 {
        for _ in 1..level {
            // (E)BP := (E)BP - W; Push([SS:(E)BP]) — BP for a 16-bit stack.
            ebp = if stack32 { ebp.wrapping_sub(W) } else { (ebp & 0xffff_0000) | (ebp.wrapping_sub(W) & 0xffff) };
            let v = cpu.read(bus, Seg::Ss, ebp & smask, W)?;
            sp = sp.wrapping_sub(W) & smask;
            cpu.write(bus, Seg::Ss, sp, W, v)?;
        }
        sp = sp.wrapping_sub(W) & smask;
        cpu.write(bus, Seg::Ss, sp, W, frame_temp)?;
    }
    let final_sp = sp.wrapping_sub(alloc) & smask;
    // The CPU checks that the final stack top is writable (SDM: #SS if "the new value of
    // the SP or ESP register is outside the stack segment limit"; #PF likewise).
    cpu.probe_write(bus, Seg::Ss, final_sp, W)?;
    cpu.state.gpr[EBP] = (ebp & !m) | frame_temp;
    cpu.set_sp(final_sp);
    Ok(())
}

/// LEAVE: (E)SP := (E)BP by stack size, then pop (E)BP by operand size.
fn leave<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, _: &Instruction) -> ExecResult {
    let stack32 = cpu.state.stack32();
    let top = if stack32 { cpu.state.gpr[EBP] } else { cpu.state.gpr[EBP] & 0xffff };
    let v = cpu.read(bus, Seg::Ss, top, W)?;
    cpu.set_sp(top);
    cpu.set_sp(cpu.sp_offset(W));
    let m = mask(W);
    let g = &mut cpu.state.gpr[EBP];
    *g = (*g & !m) | (v & m);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{CODE_BASE, DATA_BASE, STACK_TOP, TestBox};
    use popek_cpu::iced_x86::{Decoder, DecoderOptions};
    use popek_cpu::state::access;
    use popek_cpu::state::gpr::*;
    use popek_cpu::{Event, Exception};

    fn peek16(t: &TestBox, a: u32) -> u32 {
        t.peek32(a) & 0xffff
    }

    const REGS: [u32; 8] =
        [0x1111_1111, 0x2222_2222, 0x3333_3333, 0x4444_4444, STACK_TOP, 0x6666_6666, 0x7777_7777, 0x8888_8888];

    #[test]
    fn push_forms() {
        struct Case {
            bytes: &'static [u8],
            width: u32,
            value: u32,
        }
        let cases = [
            Case { bytes: &[0x50], width: 4, value: 0x1111_1111 },  // push eax
            Case { bytes: &[0x66, 0x53], width: 2, value: 0x4444 }, // push bx
            Case { bytes: &[0x54], width: 4, value: STACK_TOP },    // push esp: old value
            Case { bytes: &[0x66, 0x54], width: 2, value: STACK_TOP & 0xffff }, // push sp
            Case { bytes: &[0x6a, 0x80], width: 4, value: 0xffff_ff80 }, // push imm8 sign-extended
            Case { bytes: &[0x66, 0x6a, 0xff], width: 2, value: 0xffff }, // pushw imm8
            Case { bytes: &[0x68, 0x78, 0x56, 0x34, 0x12], width: 4, value: 0x1234_5678 },
            Case { bytes: &[0x66, 0x68, 0x34, 0x12], width: 2, value: 0x1234 },
            // push dword [DATA_BASE]
            Case { bytes: &[0xff, 0x35, 0x00, 0x00, 0x01, 0x00], width: 4, value: 0xcafe_f00d },
            // push word [DATA_BASE]
            Case { bytes: &[0x66, 0xff, 0x35, 0x00, 0x00, 0x01, 0x00], width: 2, value: 0xf00d },
            // push dword [esp]: the old top
            Case { bytes: &[0xff, 0x34, 0x24], width: 4, value: 0xdead_beef },
        ];
        for c in cases {
            let mut t = TestBox::new(&[]);
            t.cpu.state.gpr = REGS;
            t.poke(DATA_BASE, &0xcafe_f00du32.to_le_bytes());
            t.poke(STACK_TOP, &0xdead_beefu32.to_le_bytes());
            t.poke(STACK_TOP - 4, &0xaaaa_aaaau32.to_le_bytes());
            t.exec_one(c.bytes).unwrap();
            let esp = STACK_TOP - c.width;
            assert_eq!(t.cpu.state.gpr[ESP], esp, "{:02x?}", c.bytes);
            if c.width == 4 {
                assert_eq!(t.peek32(esp), c.value, "{:02x?}", c.bytes);
            } else {
                assert_eq!(t.peek32(esp - 2), (c.value << 16) | 0xaaaa, "{:02x?}: exactly two bytes", c.bytes);
            }
        }
    }

    #[test]
    fn pop_forms() {
        struct Case {
            bytes: &'static [u8],
            check: fn(&TestBox),
        }
        let cases = [
            // pop ecx
            Case {
                bytes: &[0x59],
                check: |t| {
                    assert_eq!(t.cpu.state.gpr[ECX], 0x1234_5678);
                    assert_eq!(t.cpu.state.gpr[ESP], STACK_TOP + 4);
                },
            },
            // pop cx: upper half kept
            Case {
                bytes: &[0x66, 0x59],
                check: |t| {
                    assert_eq!(t.cpu.state.gpr[ECX], 0x2222_5678);
                    assert_eq!(t.cpu.state.gpr[ESP], STACK_TOP + 2);
                },
            },
            // pop esp: ESP gets the popped value
            Case { bytes: &[0x5c], check: |t| assert_eq!(t.cpu.state.gpr[ESP], 0x1234_5678) },
            // pop dword [DATA_BASE]
            Case {
                bytes: &[0x8f, 0x05, 0x00, 0x00, 0x01, 0x00],
                check: |t| {
                    assert_eq!(t.peek32(DATA_BASE), 0x1234_5678);
                    assert_eq!(t.cpu.state.gpr[ESP], STACK_TOP + 4);
                },
            },
            // pop word [DATA_BASE]
            Case {
                bytes: &[0x66, 0x8f, 0x05, 0x00, 0x00, 0x01, 0x00],
                check: |t| {
                    assert_eq!(t.peek32(DATA_BASE), 0xeeee_5678);
                    assert_eq!(t.cpu.state.gpr[ESP], STACK_TOP + 2);
                },
            },
            // pop dword [esp+4]: address computed after the increment -> STACK_TOP+8
            Case {
                bytes: &[0x8f, 0x44, 0x24, 0x04],
                check: |t| {
                    assert_eq!(t.peek32(STACK_TOP + 8), 0x1234_5678);
                    assert_eq!(t.peek32(STACK_TOP + 4), 0x9abc_def0, "not at the old ESP+4");
                    assert_eq!(t.cpu.state.gpr[ESP], STACK_TOP + 4);
                },
            },
        ];
        for c in cases {
            let mut t = TestBox::new(&[]);
            t.cpu.state.gpr = REGS;
            t.poke(STACK_TOP, &0x1234_5678u32.to_le_bytes());
            t.poke(STACK_TOP + 4, &0x9abc_def0u32.to_le_bytes());
            t.poke(DATA_BASE, &0xeeee_eeeeu32.to_le_bytes());
            t.exec_one(c.bytes).unwrap();
            (c.check)(&t);
        }
    }

    #[test]
    fn pop_to_memory_fault_restores_esp() {
        let mut t = TestBox::new(&[]);
        t.cpu.state.seg[Seg::Ds as usize].limit = 0xffff;
        t.poke(STACK_TOP, &0x1234_5678u32.to_le_bytes());
        // pop dword [DATA_BASE]: beyond the DS limit
        let r = t.exec_one(&[0x8f, 0x05, 0x00, 0x00, 0x01, 0x00]);
        assert_eq!(r, Err(Event::Exception(Exception::GeneralProtection(0))));
        assert_eq!(t.cpu.state.gpr[ESP], STACK_TOP);
    }

    #[test]
    fn push_on_a_16_bit_stack_uses_sp() {
        let mut t = TestBox::new(&[]);
        t.cpu.state.seg[Seg::Ss as usize].access &= !access::DB;
        t.cpu.state.gpr[ESP] = 0xabcd_0002;
        t.cpu.state.gpr[EAX] = 0x1122_3344;
        t.exec_one(&[0x50]).unwrap(); // push eax: SP 2 -> 0xfffe
        assert_eq!(t.cpu.state.gpr[ESP], 0xabcd_fffe);
        assert_eq!(t.peek32(0xfffe), 0x1122_3344);
        t.exec_one(&[0x5b]).unwrap(); // pop ebx
        assert_eq!(t.cpu.state.gpr[EBX], 0x1122_3344);
        assert_eq!(t.cpu.state.gpr[ESP], 0xabcd_0002);
    }

    #[test]
    fn pushad_popad_memory_layout() {
        let mut t = TestBox::new(&[]);
        t.cpu.state.gpr = REGS;
        t.exec_one(&[0x60]).unwrap();
        assert_eq!(t.cpu.state.gpr[ESP], STACK_TOP - 32);
        // SDM PUSHAD: EAX at the highest address, then ECX, EDX, EBX, original ESP, EBP, ESI, EDI.
        for (i, v) in REGS.iter().enumerate() {
            assert_eq!(t.peek32(STACK_TOP - 4 * (i as u32 + 1)), *v, "slot of register {i}");
        }
        // Scramble, including the saved ESP slot, which POPAD must skip.
        t.poke(STACK_TOP - 20, &0x5555_5555u32.to_le_bytes());
        t.cpu.state.gpr = [0; 8];
        t.cpu.state.gpr[ESP] = STACK_TOP - 32;
        t.exec_one(&[0x61]).unwrap();
        assert_eq!(t.cpu.state.gpr, REGS);
    }

    #[test]
    fn pusha_popa_16_bit() {
        let mut t = TestBox::new(&[]);
        t.cpu.state.gpr = REGS;
        t.exec_one(&[0x66, 0x60]).unwrap();
        assert_eq!(t.cpu.state.gpr[ESP], STACK_TOP - 16);
        for (i, v) in REGS.iter().enumerate() {
            assert_eq!(peek16(&t, STACK_TOP - 2 * (i as u32 + 1)), v & 0xffff, "slot of register {i}");
        }
        t.cpu.state.gpr = [0xffff_0000; 8];
        t.cpu.state.gpr[ESP] = STACK_TOP - 16;
        t.exec_one(&[0x66, 0x61]).unwrap();
        for i in [EAX, ECX, EDX, EBX, EBP, ESI, EDI] {
            assert_eq!(t.cpu.state.gpr[i], 0xffff_0000 | (REGS[i] & 0xffff), "register {i}");
        }
        assert_eq!(t.cpu.state.gpr[ESP], STACK_TOP);
    }

    #[test]
    fn pushad_fault_leaves_esp() {
        let mut t = TestBox::new(&[]);
        t.cpu.state.gpr[ESP] = 12; // the 4th store would go below 0 -> wraps past the limit
        t.cpu.state.seg[Seg::Ss as usize].limit = 0xffff;
        let r = t.exec_one(&[0x60]);
        assert_eq!(r, Err(Event::Exception(Exception::StackFault(0))));
        assert_eq!(t.cpu.state.gpr[ESP], 12);
    }

    /// ENTER cases: the SDM's nesting-level algorithm with EBP = 0x8f00 pointing at an outer
    /// frame whose display holds frame pointers 0xA1, 0xA2 (at EBP-4, EBP-8).
    #[test]
    fn enter_nesting_levels() {
        struct Case {
            bytes: &'static [u8],
            esp: u32,
            ebp: u32,
            /// Expected stack from the old ESP downwards, one dword each.
            stack: &'static [u32],
        }
        const OLD_EBP: u32 = 0x8f00;
        let old_ebp = OLD_EBP;
        let cases = [
            // enter 0x10, 0: push ebp; ebp = esp; esp -= 0x10
            Case { bytes: &[0xc8, 0x10, 0x00, 0x00], esp: STACK_TOP - 4 - 0x10, ebp: STACK_TOP - 4, stack: &[OLD_EBP] },
            // enter 8, 1: push ebp; push frame_temp
            Case {
                bytes: &[0xc8, 0x08, 0x00, 0x01],
                esp: STACK_TOP - 8 - 8,
                ebp: STACK_TOP - 4,
                stack: &[OLD_EBP, STACK_TOP - 4],
            },
            // enter 0, 3: push ebp; push [ebp-4]; push [ebp-8]; push frame_temp
            Case {
                bytes: &[0xc8, 0x00, 0x00, 0x03],
                esp: STACK_TOP - 16,
                ebp: STACK_TOP - 4,
                stack: &[OLD_EBP, 0xa1, 0xa2, STACK_TOP - 4],
            },
            // enter 4, 35: level is taken mod 32 -> 3
            Case {
                bytes: &[0xc8, 0x04, 0x00, 0x23],
                esp: STACK_TOP - 16 - 4,
                ebp: STACK_TOP - 4,
                stack: &[OLD_EBP, 0xa1, 0xa2, STACK_TOP - 4],
            },
        ];
        for c in cases {
            let mut t = TestBox::new(&[]);
            t.cpu.state.gpr[EBP] = old_ebp;
            t.poke(old_ebp - 4, &0xa1u32.to_le_bytes());
            t.poke(old_ebp - 8, &0xa2u32.to_le_bytes());
            t.exec_one(c.bytes).unwrap();
            assert_eq!(t.cpu.state.gpr[ESP], c.esp, "{:02x?}", c.bytes);
            assert_eq!(t.cpu.state.gpr[EBP], c.ebp, "{:02x?}", c.bytes);
            for (i, v) in c.stack.iter().enumerate() {
                assert_eq!(t.peek32(STACK_TOP - 4 * (i as u32 + 1)), *v, "{:02x?} slot {i}", c.bytes);
            }
        }
    }

    #[test]
    fn enter_16_bit_operand_size_level_2() {
        let mut t = TestBox::new(&[]);
        t.poke(0x8f00 - 2, &[0xb1, 0x00]);
        // enterw 2, 2: push bp; EBP -= 2; push word [ebp]; push frame_temp (SP); bp = frame_temp; sp -= 2
        t.cpu.state.gpr[EBP] = 0x8f00;
        t.exec_one(&[0x66, 0xc8, 0x02, 0x00, 0x02]).unwrap();
        assert_eq!(peek16(&t, STACK_TOP - 2), 0x8f00);
        assert_eq!(peek16(&t, STACK_TOP - 4), 0x00b1);
        assert_eq!(peek16(&t, STACK_TOP - 6), (STACK_TOP - 2) & 0xffff);
        assert_eq!(t.cpu.state.gpr[EBP], STACK_TOP - 2);
        assert_eq!(t.cpu.state.gpr[ESP], STACK_TOP - 6 - 2);
    }

    #[test]
    fn enter_fault_changes_no_register() {
        let mut t = TestBox::new(&[]);
        t.cpu.state.gpr[EBP] = 0x8f00;
        t.cpu.state.seg[Seg::Ss as usize].limit = 0xffff;
        t.cpu.state.gpr[ESP] = 0x10;
        // enter 0x20, 0: the final ESP (0x10 - 4 - 0x20) wraps below zero, beyond the limit.
        let r = t.exec_one(&[0xc8, 0x20, 0x00, 0x00]);
        assert_eq!(r, Err(Event::Exception(Exception::StackFault(0))));
        assert_eq!((t.cpu.state.gpr[ESP], t.cpu.state.gpr[EBP]), (0x10, 0x8f00));
    }

    #[test]
    fn leave_forms() {
        let mut t = TestBox::new(&[]);
        t.cpu.state.gpr[EBP] = 0x8000;
        t.poke(0x8000, &0x1234_5678u32.to_le_bytes());
        t.exec_one(&[0xc9]).unwrap();
        assert_eq!((t.cpu.state.gpr[ESP], t.cpu.state.gpr[EBP]), (0x8004, 0x1234_5678));

        let mut t = TestBox::new(&[]);
        t.cpu.state.gpr[EBP] = 0x8000;
        t.poke(0x8000, &0x1234_5678u32.to_le_bytes());
        t.exec_one(&[0x66, 0xc9]).unwrap();
        assert_eq!((t.cpu.state.gpr[ESP], t.cpu.state.gpr[EBP]), (0x8002, 0x5678));
    }

    #[test]
    fn enter_leave_round_trip_through_the_interpreter() {
        // enter 0x20, 1 ; push 0x55 ; leave
        let code = [0xc8, 0x20, 0x00, 0x01, 0x6a, 0x55, 0xc9];
        let mut t = TestBox::new(&code);
        t.cpu.state.gpr[EBP] = 0x7777;
        t.run(10).unwrap();
        assert_eq!(t.cpu.state.gpr[ESP], STACK_TOP);
        assert_eq!(t.cpu.state.gpr[EBP], 0x7777);
        assert_eq!(t.peek32(STACK_TOP - 4 - 4 - 0x20 - 4), 0x55);
    }

    #[test]
    fn segment_pushes_and_flags_are_not_ours() {
        let cases: &[&[u8]] = &[
            &[0x06],
            &[0x07],
            &[0x0e],
            &[0x16],
            &[0x17],
            &[0x1e],
            &[0x1f],
            &[0x0f, 0xa0],
            &[0x0f, 0xa1],
            &[0x9c],
            &[0x9d],
        ];
        for bytes in cases {
            let insn = Decoder::with_ip(32, bytes, CODE_BASE as u64, DecoderOptions::NONE).decode();
            assert!(lookup(&insn).is_none(), "{bytes:02x?}");
        }
    }
}
