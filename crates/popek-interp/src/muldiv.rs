//! Multiply and divide: MUL IMUL DIV IDIV (SDM Vol. 2A "DIV", "IDIV", "IMUL"; Vol. 2B "MUL").
//!
//! Handlers are specialised by operand width at lookup time.
//!
//! Flags: MUL and IMUL set CF = OF = "the result does not fit the destination"
//! (SDM). SF, ZF, AF and PF are undefined; popek sets SF, ZF and PF from the low
//! half of the result (AL/AX/EAX, or the destination of the 2- and 3-operand
//! IMUL) and clears AF, as Bochs does in its model of Intel CPUs (differential
//! tests mask these flags). DIV and IDIV leave every flag unchanged (all six are
//! undefined).
//!
//! #DE (divide by zero, or a quotient that does not fit, including IDIV of the
//! most negative dividend by -1) is raised before anything is written, so EAX,
//! EDX and the flags are exactly as before the instruction.

use crate::flags;
use popek_cpu::access::Width;
use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::{Instruction, Mnemonic};
use popek_cpu::operand::{mask, op_width, sign_extend};
use popek_cpu::state::flags::{CF, OF};
use popek_cpu::state::gpr::{EAX, EDX};
use popek_cpu::{Bus, Cpu, ExecResult, Handler};

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    let w = op_width(insn, 0);
    Some(match (insn.mnemonic(), insn.op_count(), w) {
        (Mnemonic::Mul, 1, 1) => mul::<1>,
        (Mnemonic::Mul, 1, 2) => mul::<2>,
        (Mnemonic::Mul, 1, 4) => mul::<4>,
        (Mnemonic::Imul, 1, 1) => imul1::<1>,
        (Mnemonic::Imul, 1, 2) => imul1::<2>,
        (Mnemonic::Imul, 1, 4) => imul1::<4>,
        (Mnemonic::Imul, 2, 2) => imul_n::<2, false>,
        (Mnemonic::Imul, 2, 4) => imul_n::<4, false>,
        (Mnemonic::Imul, 3, 2) => imul_n::<2, true>,
        (Mnemonic::Imul, 3, 4) => imul_n::<4, true>,
        (Mnemonic::Div, 1, 1) => div::<1>,
        (Mnemonic::Div, 1, 2) => div::<2>,
        (Mnemonic::Div, 1, 4) => div::<4>,
        (Mnemonic::Idiv, 1, 1) => idiv::<1>,
        (Mnemonic::Idiv, 1, 2) => idiv::<2>,
        (Mnemonic::Idiv, 1, 4) => idiv::<4>,
        _ => return None,
    })
}

/// The implicit accumulator pair as one value: AX (W=1), DX:AX (W=2) or EDX:EAX (W=4).
#[inline(always)]
fn dividend<const W: Width>(cpu: &Cpu) -> u64 {
    let (eax, edx) = (cpu.state.gpr[EAX], cpu.state.gpr[EDX]);
    match W {
        1 => (eax & 0xffff) as u64,
        2 => ((edx & 0xffff) << 16 | (eax & 0xffff)) as u64,
        _ => (edx as u64) << 32 | eax as u64,
    }
}

/// Writes `lo` and `hi` to AL/AH (W=1), AX/DX (W=2) or EAX/EDX (W=4), keeping the other bits.
#[inline(always)]
fn write_pair<const W: Width>(cpu: &mut Cpu, lo: u32, hi: u32) {
    let g = &mut cpu.state.gpr;
    match W {
        1 => g[EAX] = (g[EAX] & !0xffff) | (hi & 0xff) << 8 | (lo & 0xff),
        2 => {
            g[EAX] = (g[EAX] & !0xffff) | (lo & 0xffff);
            g[EDX] = (g[EDX] & !0xffff) | (hi & 0xffff);
        }
        _ => {
            g[EAX] = lo;
            g[EDX] = hi;
        }
    }
}

/// Flags of a multiply: SF/ZF/PF of the low half `lo`, CF=OF=`overflow`, AF=0.
#[inline(always)]
fn mul_flags(lo: u32, w: Width, overflow: bool) -> u32 {
    crate::undefined::low_half_szp(lo, w) | if overflow { CF | OF } else { 0 }
}

/// MUL r/m: unsigned AL/AX/EAX × r/m into AX, DX:AX or EDX:EAX.
fn mul<const W: Width>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let src = cpu.read_op(bus, insn, 0, W)? as u64;
    let p = (cpu.state.gpr[EAX] & mask(W)) as u64 * src;
    let (lo, hi) = (p as u32 & mask(W), (p >> (W * 8)) as u32);
    write_pair::<W>(cpu, lo, hi);
    flags::commit_arith(cpu, mul_flags(lo, W, hi != 0));
    Ok(())
}

/// IMUL r/m (one operand): signed AL/AX/EAX × r/m into AX, DX:AX or EDX:EAX.
fn imul1<const W: Width>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let src = sign_extend(cpu.read_op(bus, insn, 0, W)?, W) as i32 as i64;
    let acc = sign_extend(cpu.state.gpr[EAX], W) as i32 as i64;
    let p = acc * src;
    let lo = p as u32 & mask(W);
    let hi = (p >> (W * 8)) as u32 & mask(W);
    write_pair::<W>(cpu, lo, hi);
    let overflow = sign_extend(lo, W) as i32 as i64 != p;
    flags::commit_arith(cpu, mul_flags(lo, W, overflow));
    Ok(())
}

/// IMUL r, r/m (`THREE` = false: r × r/m) and IMUL r, r/m, imm (r/m × imm), truncated to the width.
fn imul_n<const W: Width, const THREE: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let a = cpu.read_op(bus, insn, if THREE { 1 } else { 0 }, W)?;
    let b = cpu.read_op(bus, insn, if THREE { 2 } else { 1 }, W)?;
    let p = sign_extend(a, W) as i32 as i64 * sign_extend(b, W) as i32 as i64;
    let r = p as u32 & mask(W);
    cpu.write_gpr(insn.op_register(0), r);
    let overflow = sign_extend(r, W) as i32 as i64 != p;
    flags::commit_arith(cpu, mul_flags(r, W, overflow));
    Ok(())
}

/// DIV r/m: unsigned AX / DX:AX / EDX:EAX by r/m; quotient to AL/AX/EAX, remainder to AH/DX/EDX.
fn div<const W: Width>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let d = cpu.read_op(bus, insn, 0, W)? as u64;
    if d == 0 {
        return Err(Exception::DivideError.into());
    }
    let n = dividend::<W>(cpu);
    let q = n / d;
    if q > mask(W) as u64 {
        return Err(Exception::DivideError.into());
    }
    write_pair::<W>(cpu, q as u32, (n % d) as u32);
    Ok(())
}

/// IDIV r/m: signed AX / DX:AX / EDX:EAX by r/m; quotient (rounded toward zero) to
/// AL/AX/EAX, remainder (sign of the dividend) to AH/DX/EDX.
fn idiv<const W: Width>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let d = sign_extend(cpu.read_op(bus, insn, 0, W)?, W) as i32 as i64;
    if d == 0 {
        return Err(Exception::DivideError.into());
    }
    let raw = dividend::<W>(cpu);
    let n = match W {
        1 => raw as u16 as i16 as i64,
        2 => raw as u32 as i32 as i64,
        _ => raw as i64,
    };
    // i64::MIN / -1 is the only overflowing i64 division; it is a #DE too.
    let Some(q) = n.checked_div(d) else {
        return Err(Exception::DivideError.into());
    };
    let half = 1i64 << (W * 8 - 1);
    if q < -half || q >= half {
        return Err(Exception::DivideError.into());
    }
    let r = n % d;
    write_pair::<W>(cpu, q as u32, r as u32);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testing::{CODE_BASE, DATA_BASE, TestBox};
    use popek_cpu::exception::{Event, Exception};
    use popek_cpu::iced_x86::{Decoder, DecoderOptions};
    use popek_cpu::state::flags::{ARITH, CF, OF, PF, SF, ZF};
    use popek_cpu::state::gpr::{EAX, EBX, EDX};

    /// One instruction with EAX, EDX and the source EBX/BX/BL; `expect` is
    /// `Some((eax, edx, flags))` (flags compared under `fmask`) or `None` for #DE.
    struct Case {
        bytes: &'static [u8],
        eax: u32,
        edx: u32,
        ebx: u32,
        expect: Option<(u32, u32, u32)>,
        fmask: u32,
    }

    /// Both flag patterns the cases start from, so that set and cleared results are seen.
    const FLAGS_IN: [u32; 2] = [0, ARITH];

    fn boxed(c: &Case, fin: u32) -> TestBox {
        let mut t = TestBox::new(c.bytes);
        t.cpu.state.gpr[EAX] = c.eax;
        t.cpu.state.gpr[EDX] = c.edx;
        t.cpu.state.gpr[EBX] = c.ebx;
        t.cpu.state.eflags = (t.cpu.state.eflags & !ARITH) | fin;
        t
    }

    fn check(cases: &[Case]) {
        for (i, c) in cases.iter().enumerate() {
            for fin in FLAGS_IN {
                let mut t = boxed(c, fin);
                match c.expect {
                    Some((eax, edx, f)) => {
                        t.run(4).unwrap_or_else(|e| panic!("case {i} {:02x?}: {e:?}", c.bytes));
                        let s = &t.cpu.state;
                        assert_eq!(s.gpr[EAX], eax, "case {i} {:02x?}: EAX", c.bytes);
                        assert_eq!(s.gpr[EDX], edx, "case {i} {:02x?}: EDX", c.bytes);
                        assert_eq!(s.gpr[EBX], c.ebx, "case {i} {:02x?}: EBX", c.bytes);
                        assert_eq!(s.eflags & c.fmask, f, "case {i} {:02x?}: flags {:#x}", c.bytes, s.eflags);
                    }
                    None => {
                        // Call the handler directly: it must fail with #DE and change nothing.
                        let mut d = Decoder::with_ip(32, c.bytes, CODE_BASE as u64, DecoderOptions::NONE);
                        let insn = d.decode();
                        let handler = super::lookup(&insn).expect("a mul/div instruction");
                        let before = t.cpu.state.clone();
                        let r = handler(&mut t.cpu, &mut t.bus, &insn);
                        assert_eq!(r, Err(Event::Exception(Exception::DivideError)), "case {i} {:02x?}", c.bytes);
                        assert_eq!(t.cpu.state, before, "case {i} {:02x?}: state changed", c.bytes);
                    }
                }
            }
        }
    }

    const CO: u32 = CF | OF;

    /// MUL r/m8, r/m16, r/m32: CF=OF=1 exactly when the upper half is non-zero; the
    /// bits above AX/DX are preserved by the 8/16-bit forms.
    #[test]
    #[rustfmt::skip]
    fn mul() {
        check(&[
            // mul bl: 0x80 * 2 = 0x0100
            Case { bytes: &[0xf6, 0xe3], eax: 0xdead_be80, edx: 0x1111_2222, ebx: 0x02, expect: Some((0xdead_0100, 0x1111_2222, CO)), fmask: CO },
            // mul bl: 0x0f * 0x0f = 0x00e1
            Case { bytes: &[0xf6, 0xe3], eax: 0xdead_be0f, edx: 0, ebx: 0x0f, expect: Some((0xdead_00e1, 0, 0)), fmask: CO },
            // mul bx: 0xffff * 0xffff = 0xfffe_0001
            Case { bytes: &[0x66, 0xf7, 0xe3], eax: 0xdead_ffff, edx: 0x1111_2222, ebx: 0xffff, expect: Some((0xdead_0001, 0x1111_fffe, CO)), fmask: CO },
            // mul bx: 0x1234 * 2 = 0x2468, DX := 0
            Case { bytes: &[0x66, 0xf7, 0xe3], eax: 0xdead_1234, edx: 0x1111_2222, ebx: 2, expect: Some((0xdead_2468, 0x1111_0000, 0)), fmask: CO },
            // mul ebx: 0xffffffff^2 = 0xfffffffe_00000001
            Case { bytes: &[0xf7, 0xe3], eax: 0xffff_ffff, edx: 0, ebx: 0xffff_ffff, expect: Some((1, 0xffff_fffe, CO)), fmask: CO },
            // mul ebx: 0x10000^2 = 0x1_00000000
            Case { bytes: &[0xf7, 0xe3], eax: 0x1_0000, edx: 0, ebx: 0x1_0000, expect: Some((0, 1, CO)), fmask: CO },
            // mul ebx: 3 * 5 = 15, EDX := 0
            Case { bytes: &[0xf7, 0xe3], eax: 3, edx: 0x1234_5678, ebx: 5, expect: Some((15, 0, 0)), fmask: CO },
        ]);
    }

    /// IMUL r/m (one operand): CF=OF=1 when the product does not fit the low half sign-extended.
    #[test]
    #[rustfmt::skip]
    fn imul_one_operand() {
        check(&[
            // imul bl: -128 * -1 = 128 (does not fit in AL)
            Case { bytes: &[0xf6, 0xeb], eax: 0xdead_be80, edx: 7, ebx: 0xff, expect: Some((0xdead_0080, 7, CO)), fmask: CO },
            // imul bl: -2 * 3 = -6 = 0xfffa
            Case { bytes: &[0xf6, 0xeb], eax: 0xdead_befe, edx: 7, ebx: 0x03, expect: Some((0xdead_fffa, 7, 0)), fmask: CO },
            // imul bx: -32768 * -32768 = 0x4000_0000
            Case { bytes: &[0x66, 0xf7, 0xeb], eax: 0xdead_8000, edx: 0x1111_2222, ebx: 0x8000, expect: Some((0xdead_0000, 0x1111_4000, CO)), fmask: CO },
            // imul bx: -1 * 32767 = -32767 = 0xffff_8001 (fits)
            Case { bytes: &[0x66, 0xf7, 0xeb], eax: 0xdead_ffff, edx: 0x1111_2222, ebx: 0x7fff, expect: Some((0xdead_8001, 0x1111_ffff, 0)), fmask: CO },
            // imul ebx: -2^31 * -1 = 2^31 (does not fit)
            Case { bytes: &[0xf7, 0xeb], eax: 0x8000_0000, edx: 5, ebx: 0xffff_ffff, expect: Some((0x8000_0000, 0, CO)), fmask: CO },
            // imul ebx: -7 * 6 = -42
            Case { bytes: &[0xf7, 0xeb], eax: 0xffff_fff9, edx: 5, ebx: 6, expect: Some((0xffff_ffd6, 0xffff_ffff, 0)), fmask: CO },
        ]);
    }

    /// IMUL r, r/m and IMUL r, r/m, imm8/imm16/imm32: truncated product, CF=OF=1 when truncated.
    #[test]
    #[rustfmt::skip]
    fn imul_two_and_three_operands() {
        check(&[
            // imul eax, ebx: 0x10000 * 0x10000 truncates to 0
            Case { bytes: &[0x0f, 0xaf, 0xc3], eax: 0x1_0000, edx: 9, ebx: 0x1_0000, expect: Some((0, 9, CO)), fmask: CO },
            // imul eax, ebx: -3 * 4 = -12
            Case { bytes: &[0x0f, 0xaf, 0xc3], eax: 0xffff_fffd, edx: 9, ebx: 4, expect: Some((0xffff_fff4, 9, 0)), fmask: CO },
            // imul ax, bx: 0x100 * 0x100 truncates to 0
            Case { bytes: &[0x66, 0x0f, 0xaf, 0xc3], eax: 0xdead_0100, edx: 9, ebx: 0x0100, expect: Some((0xdead_0000, 9, CO)), fmask: CO },
            // imul ax, bx: -16 * 16 = -256
            Case { bytes: &[0x66, 0x0f, 0xaf, 0xc3], eax: 0xdead_fff0, edx: 9, ebx: 0x0010, expect: Some((0xdead_ff00, 9, 0)), fmask: CO },
            // imul eax, ebx, -1 (imm8): -2^31 * -1 overflows
            Case { bytes: &[0x6b, 0xc3, 0xff], eax: 0x5555_5555, edx: 9, ebx: 0x8000_0000, expect: Some((0x8000_0000, 9, CO)), fmask: CO },
            // imul eax, ebx, 0x12345678 (imm32): 2 * 0x12345678
            Case { bytes: &[0x69, 0xc3, 0x78, 0x56, 0x34, 0x12], eax: 0x5555_5555, edx: 9, ebx: 2, expect: Some((0x2468_acf0, 9, 0)), fmask: CO },
            // imul ax, bx, 0x7f (imm8): 0x100 * 0x7f = 0x7f00
            Case { bytes: &[0x66, 0x6b, 0xc3, 0x7f], eax: 0xdead_5555, edx: 9, ebx: 0x0100, expect: Some((0xdead_7f00, 9, 0)), fmask: CO },
            // imul ax, bx, 0x4000 (imm16): 4 * 0x4000 = 0x10000 truncates to 0
            Case { bytes: &[0x66, 0x69, 0xc3, 0x00, 0x40], eax: 0xdead_5555, edx: 9, ebx: 4, expect: Some((0xdead_0000, 9, CO)), fmask: CO },
            // imul eax, ebx, -2 (imm8): -5 * -2 = 10; the result's flags do not depend on the input flags
            Case { bytes: &[0x6b, 0xc3, 0xfe], eax: 0, edx: 9, ebx: 0xffff_fffb, expect: Some((10, 9, 0)), fmask: CO },
        ]);
    }

    /// DIV: quotient and remainder, and #DE on a zero divisor or a quotient that does not fit.
    #[test]
    #[rustfmt::skip]
    fn div() {
        check(&[
            // div bl: 255 / 16 = 15 r 15
            Case { bytes: &[0xf6, 0xf3], eax: 0xdead_00ff, edx: 3, ebx: 0x10, expect: Some((0xdead_0f0f, 3, 0)), fmask: 0 },
            // div bl: 4660 / 19 = 245 r 5
            Case { bytes: &[0xf6, 0xf3], eax: 0xdead_1234, edx: 3, ebx: 0x13, expect: Some((0xdead_05f5, 3, 0)), fmask: 0 },
            // div bx: 0x1_0000 / 2 = 0x8000 r 0
            Case { bytes: &[0x66, 0xf7, 0xf3], eax: 0xdead_0000, edx: 0x1111_0001, ebx: 2, expect: Some((0xdead_8000, 0x1111_0000, 0)), fmask: 0 },
            // div ebx: 0x1_00000000 / 16 = 0x10000000 r 0
            Case { bytes: &[0xf7, 0xf3], eax: 0, edx: 1, ebx: 0x10, expect: Some((0x1000_0000, 0, 0)), fmask: 0 },
            // div ebx: 0xfffffffe_ffffffff / 0xffffffff = 0xffffffff r 0xfffffffe
            Case { bytes: &[0xf7, 0xf3], eax: 0xffff_ffff, edx: 0xffff_fffe, ebx: 0xffff_ffff, expect: Some((0xffff_ffff, 0xffff_fffe, 0)), fmask: 0 },
            // #DE: divide by zero, each width
            Case { bytes: &[0xf6, 0xf3], eax: 0x1234, edx: 0, ebx: 0xffff_ff00, expect: None, fmask: 0 },
            Case { bytes: &[0x66, 0xf7, 0xf3], eax: 0x1234, edx: 0, ebx: 0xffff_0000, expect: None, fmask: 0 },
            Case { bytes: &[0xf7, 0xf3], eax: 0x1234, edx: 0, ebx: 0, expect: None, fmask: 0 },
            // #DE: quotient overflow (256 / 1, 0x2_0000 / 2, EDX >= divisor)
            Case { bytes: &[0xf6, 0xf3], eax: 0x0100, edx: 0, ebx: 1, expect: None, fmask: 0 },
            Case { bytes: &[0x66, 0xf7, 0xf3], eax: 0, edx: 2, ebx: 2, expect: None, fmask: 0 },
            Case { bytes: &[0xf7, 0xf3], eax: 0, edx: 5, ebx: 5, expect: None, fmask: 0 },
        ]);
    }

    /// IDIV: truncating signed division (remainder has the dividend's sign), and #DE on
    /// a zero divisor or a quotient outside the signed range, including MIN / -1.
    #[test]
    #[rustfmt::skip]
    fn idiv() {
        check(&[
            // idiv bl: -7 / 2 = -3 r -1
            Case { bytes: &[0xf6, 0xfb], eax: 0xdead_fff9, edx: 3, ebx: 2, expect: Some((0xdead_fffd, 3, 0)), fmask: 0 },
            // idiv bl: 7 / -2 = -3 r 1
            Case { bytes: &[0xf6, 0xfb], eax: 0xdead_0007, edx: 3, ebx: 0xfe, expect: Some((0xdead_01fd, 3, 0)), fmask: 0 },
            // idiv bx: -32768 / 1 = -32768 r 0
            Case { bytes: &[0x66, 0xf7, 0xfb], eax: 0xdead_8000, edx: 0x1111_ffff, ebx: 1, expect: Some((0xdead_8000, 0x1111_0000, 0)), fmask: 0 },
            // idiv ebx: -10 / 3 = -3 r -1
            Case { bytes: &[0xf7, 0xfb], eax: 0xffff_fff6, edx: 0xffff_ffff, ebx: 3, expect: Some((0xffff_fffd, 0xffff_ffff, 0)), fmask: 0 },
            // idiv ebx: -2^31 / 1 = -2^31
            Case { bytes: &[0xf7, 0xfb], eax: 0x8000_0000, edx: 0xffff_ffff, ebx: 1, expect: Some((0x8000_0000, 0, 0)), fmask: 0 },
            // #DE: divide by zero
            Case { bytes: &[0xf6, 0xfb], eax: 0x1234, edx: 0, ebx: 0x100, expect: None, fmask: 0 },
            Case { bytes: &[0xf7, 0xfb], eax: 0x1234, edx: 0, ebx: 0, expect: None, fmask: 0 },
            // #DE: most negative / -1 at each width
            Case { bytes: &[0xf6, 0xfb], eax: 0xff80, edx: 0, ebx: 0xff, expect: None, fmask: 0 },
            Case { bytes: &[0x66, 0xf7, 0xfb], eax: 0x8000, edx: 0xffff, ebx: 0xffff, expect: None, fmask: 0 },
            Case { bytes: &[0xf7, 0xfb], eax: 0x8000_0000, edx: 0xffff_ffff, ebx: 0xffff_ffff, expect: None, fmask: 0 },
            // #DE: i64::MIN / -1 (EDX:EAX = 0x80000000_00000000)
            Case { bytes: &[0xf7, 0xfb], eax: 0, edx: 0x8000_0000, ebx: 0xffff_ffff, expect: None, fmask: 0 },
            // #DE: positive quotient too large (2^31 / 1; 32640 / -128 = -255)
            Case { bytes: &[0xf7, 0xfb], eax: 0x8000_0000, edx: 0, ebx: 1, expect: None, fmask: 0 },
            Case { bytes: &[0xf6, 0xfb], eax: 0x7f80, edx: 0, ebx: 0x80, expect: None, fmask: 0 },
        ]);
    }

    /// A memory divisor of zero (`div dword [DATA_BASE]`) is a #DE too.
    #[test]
    fn div_memory_by_zero() {
        check(&[Case { bytes: &[0xf7, 0x35, 0x00, 0x00, 0x01, 0x00], eax: 1, edx: 0, ebx: 0, expect: None, fmask: 0 }]);
        let mut t = TestBox::new(&[0xf7, 0x35, 0x00, 0x00, 0x01, 0x00]);
        t.poke(DATA_BASE, &7u32.to_le_bytes());
        t.cpu.state.gpr[EAX] = 50;
        t.run(4).unwrap();
        assert_eq!((t.cpu.state.gpr[EAX], t.cpu.state.gpr[EDX]), (7, 1));
    }

    /// SF/ZF/PF after MUL (undefined in the SDM) follow the low half, as documented above.
    #[test]
    #[rustfmt::skip]
    fn mul_low_half_flags() {
        check(&[
            // mul ebx: 0x10000^2 = 0x1_00000000: low half zero -> ZF, PF
            Case { bytes: &[0xf7, 0xe3], eax: 0x1_0000, edx: 0, ebx: 0x1_0000, expect: Some((0, 1, CO | ZF | PF)), fmask: ARITH },
            // mul bl: 0x0f * 0x0f = 0xe1: AL has its sign bit and an even number (4) of bits set
            Case { bytes: &[0xf6, 0xe3], eax: 0x0f, edx: 0, ebx: 0x0f, expect: Some((0xe1, 0, SF | PF)), fmask: ARITH },
        ]);
    }
}
