//! Bit test and scan: BT BTS BTR BTC BSF BSR BSWAP (SDM Vol. 2, the instruction pages of each).
//!
//! Undefined flags: BT/BTS/BTR/BTC set CF and leave OF SF AF PF (undefined) and ZF
//! (unaffected) as they were; BSF/BSR set ZF and leave CF OF SF AF PF (undefined)
//! as they were. 16-bit BSWAP is undefined; popek clears the 16-bit register, as
//! Intel processors (and Bochs) do.

use crate::flags;
use popek_cpu::iced_x86::{Instruction, Mnemonic, OpKind};
use popek_cpu::operand::{is_addr16, op_width, sign_extend};
use popek_cpu::state::flags::{CF, ZF};
use popek_cpu::{Bus, Cpu, ExecResult, Handler};

const BT: u8 = 0;
const BTS: u8 = 1;
const BTR: u8 = 2;
const BTC: u8 = 3;

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    let memory = insn.op0_kind() == OpKind::Memory;
    Some(match insn.mnemonic() {
        Mnemonic::Bt if memory => bit_mem::<BT>,
        Mnemonic::Bts if memory => bit_mem::<BTS>,
        Mnemonic::Btr if memory => bit_mem::<BTR>,
        Mnemonic::Btc if memory => bit_mem::<BTC>,
        Mnemonic::Bt => bit_reg::<BT>,
        Mnemonic::Bts => bit_reg::<BTS>,
        Mnemonic::Btr => bit_reg::<BTR>,
        Mnemonic::Btc => bit_reg::<BTC>,
        Mnemonic::Bsf => scan::<false>,
        Mnemonic::Bsr => scan::<true>,
        Mnemonic::Bswap => bswap,
        _ => return None,
    })
}

/// Applies BT/BTS/BTR/BTC to `v`: the new value and the selected bit as CF.
#[inline]
fn apply<const OP: u8>(v: u32, bit: u32) -> (u32, u32) {
    let m = 1u32 << bit;
    let new = match OP {
        BTS => v | m,
        BTR => v & !m,
        BTC => v ^ m,
        _ => v,
    };
    (new, (v >> bit) & 1)
}

/// The bit offset operand: a register or an 8-bit immediate.
#[inline]
fn offset_operand(cpu: &Cpu, insn: &Instruction) -> u32 {
    if insn.op1_kind() == OpKind::Register { cpu.read_gpr(insn.op1_register()) } else { insn.immediate8() as u32 }
}

/// Bit operation on a register: the offset is taken modulo the operand size.
fn bit_reg<const OP: u8>(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let bit = offset_operand(cpu, insn) & (w * 8 - 1);
    let (new, cf) = apply::<OP>(cpu.read_gpr(insn.op0_register()), bit);
    if OP != BT {
        cpu.write_gpr(insn.op0_register(), new);
    }
    flags::commit(cpu, CF, cf);
    Ok(())
}

/// Bit operation on memory. An immediate offset is taken modulo the operand size.
/// A register offset is a signed index into a bit string starting at the operand
/// (-2^15..2^15-1 or -2^31..2^31-1): the operand-sized unit at
/// `ea + width * floor(offset / (8 * width))` is accessed, wrapped to 16 bits with
/// 16-bit addressing.
fn bit_mem<const OP: u8>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let bits = w * 8;
    let (seg, ea) = cpu.memory_operand(insn);
    let raw = offset_operand(cpu, insn);
    let (off, bit) = if insn.op1_kind() == OpKind::Register {
        let index = sign_extend(raw, w) as i32;
        let units = index >> bits.trailing_zeros(); // floor division by the unit size in bits
        let mut off = ea.wrapping_add(units.wrapping_mul(w as i32) as u32);
        if is_addr16(insn) {
            off &= 0xffff;
        }
        (off, index as u32 & (bits - 1))
    } else {
        (ea, raw & (bits - 1))
    };
    let v = cpu.read(bus, seg, off, w)?;
    let (new, cf) = apply::<OP>(v, bit);
    if OP != BT {
        cpu.write(bus, seg, off, w, new)?;
    }
    flags::commit(cpu, CF, cf);
    Ok(())
}

/// BSF / BSR (`REVERSE`): index of the lowest / highest set bit of the source. A zero
/// source sets ZF and leaves the destination unchanged; otherwise ZF is cleared.
fn scan<const REVERSE: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let v = cpu.read_op(bus, insn, 1, w)?;
    if v == 0 {
        flags::commit(cpu, ZF, ZF);
        return Ok(());
    }
    let index = if REVERSE { 31 - v.leading_zeros() } else { v.trailing_zeros() };
    cpu.write_gpr(insn.op0_register(), index);
    flags::commit(cpu, ZF, 0);
    Ok(())
}

/// BSWAP: reverses the bytes of a 32-bit register. With a 16-bit operand (undefined
/// in the SDM) the 16-bit register becomes 0.
fn bswap(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let r = insn.op0_register();
    let v = if op_width(insn, 0) == 4 { cpu.read_gpr(r).swap_bytes() } else { 0 };
    cpu.write_gpr(r, v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::data::tests::{Case, F, M, R, Rng, differential, random_regs, run_cases, small_ds};
    use crate::testing::{DATA_BASE, TestBox};
    use popek_cpu::Event;
    use popek_cpu::exception::Exception;
    use popek_cpu::state::flags::{AF, ARITH, CF, OF, PF, SF, ZF};
    use popek_cpu::state::gpr::*;
    use popek_hostcpu::{HostRunner, HostState};

    const D: u32 = DATA_BASE;
    /// Flags BT* must not touch, set before each case.
    const OTHERS: u32 = ZF | SF | OF | AF | PF;

    #[test]
    fn bt_register_forms() {
        run_cases(&[
            Case {
                name: "bt eax,ebx bit 31",
                bytes: &[0x0f, 0xa3, 0xd8],
                init: &[R(EAX, 0x8000_0000), R(EBX, 31), F(OTHERS, 0)],
                expect: &[R(EAX, 0x8000_0000), F(ARITH, OTHERS | CF)],
            },
            Case {
                name: "bt eax,ebx offset mod 32",
                bytes: &[0x0f, 0xa3, 0xd8],
                init: &[R(EAX, 0x8000_0000), R(EBX, 63), F(0, 0)],
                expect: &[F(ARITH, CF)],
            },
            Case {
                name: "bt eax,ebx clear",
                bytes: &[0x0f, 0xa3, 0xd8],
                init: &[R(EAX, 0x8000_0000), R(EBX, 30), F(CF | OTHERS, 0)],
                expect: &[F(ARITH, OTHERS)],
            },
            Case {
                name: "bt ax,bx offset mod 16",
                bytes: &[0x66, 0x0f, 0xa3, 0xd8],
                init: &[R(EAX, 0x0001_0002), R(EBX, 17)],
                expect: &[F(CF, CF)],
            },
            Case {
                name: "bt ax,bx bit 16 is bit 0",
                bytes: &[0x66, 0x0f, 0xa3, 0xd8],
                init: &[R(EAX, 0x0001_0002), R(EBX, 16), F(CF, 0)],
                expect: &[F(CF, 0)],
            },
            Case {
                name: "bt eax,5",
                bytes: &[0x0f, 0xba, 0xe0, 0x05],
                init: &[R(EAX, 0x20)],
                expect: &[R(EAX, 0x20), F(CF, CF)],
            },
            Case {
                name: "bt eax,37 (imm mod 32)",
                bytes: &[0x0f, 0xba, 0xe0, 0x25],
                init: &[R(EAX, 0x20)],
                expect: &[F(CF, CF)],
            },
            Case {
                name: "bt ax,0x11",
                bytes: &[0x66, 0x0f, 0xba, 0xe0, 0x11],
                init: &[R(EAX, 0x2)],
                expect: &[F(CF, CF)],
            },
            Case {
                name: "bts ecx,edx",
                bytes: &[0x0f, 0xab, 0xd1],
                init: &[R(ECX, 0x1), R(EDX, 4), F(OTHERS | CF, 0)],
                expect: &[R(ECX, 0x11), F(ARITH, OTHERS)],
            },
            Case {
                name: "bts ecx,0 (already set)",
                bytes: &[0x0f, 0xba, 0xe9, 0x00],
                init: &[R(ECX, 0x1)],
                expect: &[R(ECX, 0x1), F(CF, CF)],
            },
            Case {
                name: "bts cx,dx",
                bytes: &[0x66, 0x0f, 0xab, 0xd1],
                init: &[R(ECX, 0xffff_0000), R(EDX, 0x1f)],
                expect: &[R(ECX, 0xffff_8000), F(CF, 0)],
            },
            Case {
                name: "btr ecx,edx",
                bytes: &[0x0f, 0xb3, 0xd1],
                init: &[R(ECX, 0xffff_ffff), R(EDX, 31)],
                expect: &[R(ECX, 0x7fff_ffff), F(CF, CF)],
            },
            Case {
                name: "btr cx,3",
                bytes: &[0x66, 0x0f, 0xba, 0xf1, 0x03],
                init: &[R(ECX, 0xffff_ffff)],
                expect: &[R(ECX, 0xffff_fff7), F(CF, CF)],
            },
            Case {
                name: "btc ecx,edx set",
                bytes: &[0x0f, 0xbb, 0xd1],
                init: &[R(ECX, 0), R(EDX, 8)],
                expect: &[R(ECX, 0x100), F(CF, 0)],
            },
            Case {
                name: "btc ecx,8 clear",
                bytes: &[0x0f, 0xba, 0xf9, 0x08],
                init: &[R(ECX, 0x101)],
                expect: &[R(ECX, 0x1), F(CF, CF)],
            },
            Case {
                name: "btc cx,dx",
                bytes: &[0x66, 0x0f, 0xbb, 0xd1],
                init: &[R(ECX, 0x0001_0000), R(EDX, 0x10)],
                expect: &[R(ECX, 0x0001_0001), F(CF, 0)],
            },
        ]);
    }

    #[test]
    fn bt_memory_immediate_offset() {
        run_cases(&[
            Case {
                name: "bt [ebx],3",
                bytes: &[0x0f, 0xba, 0x23, 0x03],
                init: &[R(EBX, D), M(D, 0x8)],
                expect: &[M(D, 0x8), F(CF, CF)],
            },
            Case {
                // The immediate is taken modulo 32: bit 5 of [ebx], not of [ebx+4].
                name: "bts [ebx],37",
                bytes: &[0x0f, 0xba, 0x2b, 0x25],
                init: &[R(EBX, D), M(D, 0), M(D + 4, 0)],
                expect: &[M(D, 0x20), M(D + 4, 0), F(CF, 0)],
            },
            Case {
                name: "btr word [ebx],0x1f",
                bytes: &[0x66, 0x0f, 0xba, 0x33, 0x1f],
                init: &[R(EBX, D), M(D, 0xffff_ffff)],
                expect: &[M(D, 0xffff_7fff), F(CF, CF)],
            },
            Case {
                name: "btc dword [ebx+4],31",
                bytes: &[0x0f, 0xba, 0x7b, 0x04, 0x1f],
                init: &[R(EBX, D), M(D + 4, 0)],
                expect: &[M(D + 4, 0x8000_0000), F(CF, 0)],
            },
        ]);
    }

    #[test]
    fn bt_memory_register_offset_beyond_operand() {
        run_cases(&[
            Case {
                name: "bts [ebx],eax (37: next dword, bit 5)",
                bytes: &[0x0f, 0xab, 0x03],
                init: &[R(EBX, D), R(EAX, 37), M(D, 0), M(D + 4, 0)],
                expect: &[M(D, 0), M(D + 4, 0x20), F(CF, 0)],
            },
            Case {
                name: "bts [ebx],eax (256: 8 dwords on)",
                bytes: &[0x0f, 0xab, 0x03],
                init: &[R(EBX, D), R(EAX, 256), M(D + 32, 0x1)],
                expect: &[M(D + 32, 0x1), F(CF, CF)],
            },
            Case {
                name: "bts [ebx],eax (-1: previous dword, bit 31)",
                bytes: &[0x0f, 0xab, 0x03],
                init: &[R(EBX, D), R(EAX, 0xffff_ffff), M(D - 4, 0), M(D, 0)],
                expect: &[M(D - 4, 0x8000_0000), M(D, 0), F(CF, 0)],
            },
            Case {
                // floor(-33 / 32) = -2, -33 mod 32 = 31.
                name: "btr [ebx],eax (-33)",
                bytes: &[0x0f, 0xb3, 0x03],
                init: &[R(EBX, D), R(EAX, (-33i32) as u32), M(D - 8, 0xffff_ffff), M(D - 4, 0xffff_ffff)],
                expect: &[M(D - 8, 0x7fff_ffff), M(D - 4, 0xffff_ffff), F(CF, CF)],
            },
            Case {
                name: "bt [ebx+8],ecx (-32 lands on [ebx+4])",
                bytes: &[0x0f, 0xa3, 0x4b, 0x08],
                init: &[R(EBX, D), R(ECX, (-32i32) as u32), M(D + 4, 0x1), M(D + 8, 0)],
                expect: &[F(CF, CF)],
            },
            Case {
                name: "btc word [ebx],ax (17: next word, bit 1)",
                bytes: &[0x66, 0x0f, 0xbb, 0x03],
                init: &[R(EBX, D), R(EAX, 0x0001_0011), M(D, 0)],
                expect: &[M(D, 0x0002_0000), F(CF, 0)],
            },
            Case {
                // A 16-bit offset register is sign-extended from bit 15: 0xffff is -1.
                name: "bts word [ebx],ax (-1: previous word, bit 15)",
                bytes: &[0x66, 0x0f, 0xab, 0x03],
                init: &[R(EBX, D), R(EAX, 0xffff), M(D - 4, 0), M(D, 0)],
                expect: &[M(D - 4, 0x8000_0000), M(D, 0), F(CF, 0)],
            },
            Case {
                // 16-bit addressing: BX + 8 bytes wraps to offset 4.
                name: "bt [bx],eax (16-bit address wraps)",
                bytes: &[0x67, 0x0f, 0xa3, 0x07],
                init: &[R(EBX, 0xfffc), R(EAX, 64), M(0x4, 0x1)],
                expect: &[F(CF, CF)],
            },
        ]);
    }

    #[test]
    fn bt_register_offset_fault_is_precise() {
        // bts [ebx], eax with the addressed dword beyond the DS limit.
        let mut t = TestBox::new(&[]);
        small_ds(&mut t);
        t.cpu.state.gpr[EBX] = 0xfff0;
        t.cpu.state.gpr[EAX] = 0x100; // 32 bytes on
        let before = t.cpu.state.clone();
        let r = t.exec_one(&[0x0f, 0xab, 0x03]);
        assert_eq!(r, Err(Event::Exception(Exception::GeneralProtection(0))));
        assert_eq!(t.cpu.state.gpr, before.gpr);
        assert_eq!(t.cpu.state.eflags, before.eflags);
        // The same offset against the operand itself is fine.
        t.cpu.state.gpr[EAX] = 3;
        t.exec_one(&[0x0f, 0xab, 0x03]).unwrap();
    }

    #[test]
    fn bsf_bsr() {
        run_cases(&[
            Case {
                name: "bsf eax,ebx",
                bytes: &[0x0f, 0xbc, 0xc3],
                init: &[R(EAX, 0xdead), R(EBX, 0x0001_0100), F(ZF, 0)],
                expect: &[R(EAX, 8), F(ZF, 0)],
            },
            Case {
                name: "bsf eax,ebx bit 31",
                bytes: &[0x0f, 0xbc, 0xc3],
                init: &[R(EBX, 0x8000_0000)],
                expect: &[R(EAX, 31), F(ZF, 0)],
            },
            Case {
                name: "bsf eax,ebx zero",
                bytes: &[0x0f, 0xbc, 0xc3],
                init: &[R(EAX, 0xdead_beef), R(EBX, 0)],
                expect: &[R(EAX, 0xdead_beef), F(ZF, ZF)],
            },
            Case {
                name: "bsf ax,bx",
                bytes: &[0x66, 0x0f, 0xbc, 0xc3],
                init: &[R(EAX, 0xffff_ffff), R(EBX, 0x8000)],
                expect: &[R(EAX, 0xffff_000f), F(ZF, 0)],
            },
            Case {
                name: "bsf ax,bx zero low word",
                bytes: &[0x66, 0x0f, 0xbc, 0xc3],
                init: &[R(EAX, 0xffff_ffff), R(EBX, 0x0001_0000)],
                expect: &[R(EAX, 0xffff_ffff), F(ZF, ZF)],
            },
            Case {
                name: "bsf ecx,[ebx]",
                bytes: &[0x0f, 0xbc, 0x0b],
                init: &[R(EBX, D), M(D, 0x0060_0000)],
                expect: &[R(ECX, 21), F(ZF, 0)],
            },
            Case {
                name: "bsr eax,ebx",
                bytes: &[0x0f, 0xbd, 0xc3],
                init: &[R(EBX, 0x0000_0101), F(ZF, 0)],
                expect: &[R(EAX, 8), F(ZF, 0)],
            },
            Case {
                name: "bsr eax,ebx = 1",
                bytes: &[0x0f, 0xbd, 0xc3],
                init: &[R(EAX, 0xdead), R(EBX, 1), F(ZF, 0)],
                expect: &[R(EAX, 0), F(ZF, 0)],
            },
            Case {
                name: "bsr eax,ebx bit 31",
                bytes: &[0x0f, 0xbd, 0xc3],
                init: &[R(EBX, 0x8000_0001)],
                expect: &[R(EAX, 31), F(ZF, 0)],
            },
            Case {
                name: "bsr eax,ebx zero",
                bytes: &[0x0f, 0xbd, 0xc3],
                init: &[R(EAX, 0x1234), R(EBX, 0)],
                expect: &[R(EAX, 0x1234), F(ZF, ZF)],
            },
            Case {
                name: "bsr ax,bx",
                bytes: &[0x66, 0x0f, 0xbd, 0xc3],
                init: &[R(EAX, 0xffff_ffff), R(EBX, 0x8001_0101)],
                expect: &[R(EAX, 0xffff_0008), F(ZF, 0)],
            },
            Case {
                name: "bsr cx,word [ebx]",
                bytes: &[0x66, 0x0f, 0xbd, 0x0b],
                init: &[R(EBX, D), R(ECX, 0xaaaa_aaaa), M(D, 0xffff_0003)],
                expect: &[R(ECX, 0xaaaa_0001), F(ZF, 0)],
            },
        ]);
    }

    #[test]
    fn bswap_forms() {
        run_cases(&[
            Case {
                name: "bswap eax",
                bytes: &[0x0f, 0xc8],
                init: &[R(EAX, 0x1234_5678)],
                expect: &[R(EAX, 0x7856_3412)],
            },
            Case {
                name: "bswap edi",
                bytes: &[0x0f, 0xcf],
                init: &[R(EDI, 0x0102_0304)],
                expect: &[R(EDI, 0x0403_0201)],
            },
            Case {
                name: "bswap ax (undefined: low word cleared)",
                bytes: &[0x66, 0x0f, 0xc8],
                init: &[R(EAX, 0x1234_5678)],
                expect: &[R(EAX, 0x1234_0000)],
            },
            Case {
                name: "bswap flags untouched",
                bytes: &[0x0f, 0xcb],
                init: &[R(EBX, 0xff), F(ARITH, 0)],
                expect: &[R(EBX, 0xff00_0000), F(ARITH, ARITH)],
            },
        ]);
    }

    #[test]
    fn differential_registers_against_host() {
        let mut host = HostRunner::new().expect("the host CPU runner is available on x86-64 Linux");
        #[rustfmt::skip]
        let codes: &[(&[u8], u32)] = &[
            (&[0x0f, 0xa3, 0xd1], CF), (&[0x0f, 0xab, 0xd1], CF), (&[0x0f, 0xb3, 0xd1], CF), (&[0x0f, 0xbb, 0xd1], CF),
            (&[0x66, 0x0f, 0xa3, 0xd1], CF), (&[0x66, 0x0f, 0xab, 0xd1], CF),
            (&[0x66, 0x0f, 0xb3, 0xd1], CF), (&[0x66, 0x0f, 0xbb, 0xd1], CF),
            (&[0x0f, 0xba, 0xe1, 0x2b], CF), (&[0x0f, 0xba, 0xe9, 0x07], CF),
            (&[0x0f, 0xba, 0xf1, 0x1f], CF), (&[0x0f, 0xba, 0xf9, 0x40], CF),
            (&[0x66, 0x0f, 0xba, 0xe9, 0x13], CF), (&[0x66, 0x0f, 0xba, 0xf9, 0x0f], CF),
            (&[0x0f, 0xbc, 0xca], ZF), (&[0x0f, 0xbd, 0xca], ZF),
            (&[0x66, 0x0f, 0xbc, 0xca], ZF), (&[0x66, 0x0f, 0xbd, 0xca], ZF),
            (&[0x0f, 0xc9], ARITH), (&[0x0f, 0xce], ARITH),
        ];
        let mut rng = Rng(0x0bad_5eed_1234_5678);
        for &(code, mask) in codes {
            for _ in 0..300 {
                let regs = random_regs(&mut rng);
                differential(&mut host, code, regs, rng.next() & ARITH, mask);
            }
        }
    }

    /// BT/BTS/BTR/BTC with a register bit offset into memory, against the host: the
    /// bit string reaches up to 16 KiB either side of the operand.
    #[test]
    fn differential_bit_string_against_host() {
        let mut host = HostRunner::new().expect("the host CPU runner is available on x86-64 Linux");
        const WINDOW: usize = 0x8000; // bytes compared, centred on the operand
        let base = D + 0x8000; // popek's EBX
        let host_base = host.scratch_base() + WINDOW as u64 / 2;
        let mut rng = Rng(0xfeed_f00d_0000_0001);
        // (bytes, 16-bit operand)
        let codes: &[(&[u8], bool)] = &[
            (&[0x0f, 0xa3, 0x03], false),
            (&[0x0f, 0xab, 0x03], false),
            (&[0x0f, 0xb3, 0x03], false),
            (&[0x0f, 0xbb, 0x03], false),
            (&[0x66, 0x0f, 0xab, 0x03], true),
            (&[0x66, 0x0f, 0xb3, 0x03], true),
            (&[0x66, 0x0f, 0xbb, 0x43, 0x06], true), // btc [ebx+6], ax
            (&[0x0f, 0xbb, 0x43, 0xfd], false),      // btc [ebx-3], eax
        ];
        for &(code, word) in codes {
            for _ in 0..200 {
                let span = if word { 0x8000 } else { 0x1_0000 } * 2; // bits either side
                let offset = (rng.next() % span) as i32 - span as i32 / 2;
                let eax = if word { (rng.next() & 0xffff_0000) | (offset as u32 & 0xffff) } else { offset as u32 };
                let fill: Vec<u8> = (0..WINDOW).map(|_| rng.next() as u8).collect();

                let mut t = TestBox::new(code);
                t.poke(base - WINDOW as u32 / 2, &fill);
                t.cpu.state.gpr[EAX] = eax;
                t.cpu.state.gpr[EBX] = base;
                t.run(4).unwrap();
                assert!(t.cpu.state.halted);

                host.scratch()[..WINDOW].copy_from_slice(&fill);
                let mut input = HostState::default();
                input.gpr[HostState::RAX] = eax as u64;
                input.gpr[HostState::RBX] = host_base;
                let out = host.run(code, &input).expect("host run");

                let mut ours = vec![0u8; WINDOW];
                for (i, b) in ours.iter_mut().enumerate() {
                    *b = t.cpu.mem.read_ram::<1>((base as usize - WINDOW / 2) + i).unwrap()[0];
                }
                assert!(ours == host.scratch()[..WINDOW], "{code:02x?} eax={eax:#x}: memory differs");
                assert_eq!(t.cpu.state.eflags & CF, out.rflags as u32 & CF, "{code:02x?} eax={eax:#x}: CF");
            }
        }
    }
}
