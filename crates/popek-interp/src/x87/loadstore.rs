//! x87 data transfer (SDM Vol. 1 8.3.3–8.3.4, 8.3.8): FLD FST FSTP FILD FIST FISTP FBLD
//! FBSTP FCMOVcc and the constant loads.

use super::{Fpu, commit_flags, read_bytes, rounded, sf, st_index, status_of, write_bytes};
use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::{Instruction, MemorySize, Mnemonic, OpKind};
use popek_cpu::state::flags::{CF, PF, ZF};
use popek_cpu::state::{F80, X87State, fcw, fsw};
use popek_cpu::{Bus, Cpu};

/// A memory operand read as an extended value, with the flags its conversion raised
/// (IE for a signaling NaN, DE for a denormal). `None` for a register operand.
pub(super) fn read_operand(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(F80, u16), Exception> {
    let (s, off) = cpu.memory_operand(insn);
    Ok(match insn.memory_size() {
        MemorySize::Float32 => {
            let v = cpu.read(bus, s, off, 4)?;
            if v & 0x7fc0_0000 == 0x7f80_0000 && v & 0x003f_ffff != 0 {
                // A signaling NaN, widened as it is: the operation quiets it.
                let sign = ((v >> 31) as u16) << 15;
                return Ok((
                    F80 { signif: 1 << 63 | ((v as u64) & 0x7f_ffff) << 40, sign_exp: sign | 0x7fff },
                    fsw::IE,
                ));
            }
            let de = v & 0x7f80_0000 == 0 && v & 0x007f_ffff != 0;
            sf::begin(0, 80);
            let r = sf::from_f32(v);
            (r, status_of(sf::flags()) | if de { fsw::DE } else { 0 })
        }
        MemorySize::Float64 => {
            let v = u64::from_le_bytes(read_bytes::<8>(cpu, bus, s, off)?);
            if v & 0x7ff8_0000_0000_0000 == 0x7ff0_0000_0000_0000 && v & 0x0007_ffff_ffff_ffff != 0 {
                let sign = ((v >> 63) as u16) << 15;
                let frac = v & 0x000f_ffff_ffff_ffff;
                return Ok((F80 { signif: 1 << 63 | frac << 11, sign_exp: sign | 0x7fff }, fsw::IE));
            }
            let de = v & 0x7ff0_0000_0000_0000 == 0 && v & 0x000f_ffff_ffff_ffff != 0;
            sf::begin(0, 80);
            let r = sf::from_f64(v);
            (r, status_of(sf::flags()) | if de { fsw::DE } else { 0 })
        }
        MemorySize::Float80 => (F80::from_bytes(read_bytes::<10>(cpu, bus, s, off)?), 0),
        MemorySize::Int16 => (sf::from_i64(cpu.read(bus, s, off, 2)? as u16 as i16 as i64), 0),
        MemorySize::Int32 => (sf::from_i64(cpu.read(bus, s, off, 4)? as i32 as i64), 0),
        MemorySize::Int64 => (sf::from_i64(i64::from_le_bytes(read_bytes::<8>(cpu, bus, s, off)?)), 0),
        _ => (F80::INDEFINITE, fsw::IE),
    })
}

/// Pushes `v` unless the stack is full (stack overflow: the masked response pushes the
/// indefinite). C1 = 0 unless overflow.
pub(super) fn push_checked(x: &mut X87State, v: F80) {
    if !x.is_empty(7) {
        if x.overflow() {
            x.push(F80::INDEFINITE);
        }
        return;
    }
    x.set_cc(fsw::C1, false);
    x.push(v);
}

/// FLD m32fp/m64fp/m80fp/ST(i).
pub(super) fn fld(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    let (v, flags) = if insn.op0_kind() == OpKind::Register {
        let i = st_index(insn.op0_register());
        let x = &mut cpu.state.x87;
        if x.is_empty(i) {
            // Stack underflow wins over a full stack.
            if x.underflow() {
                x.push(F80::INDEFINITE);
            }
            return Ok(());
        }
        (x.st(i), 0)
    } else {
        read_operand(cpu, bus, insn)?
    };
    let x = &mut cpu.state.x87;
    if !x.is_empty(7) {
        if x.overflow() {
            x.push(F80::INDEFINITE);
        }
        return Ok(());
    }
    // An unmasked denormal still loads (the conversion is exact); an unmasked invalid
    // (a signaling NaN) does not.
    x.set_cc(fsw::C1, false);
    x.raise(flags);
    if x.masked(flags & fsw::IE) {
        // (Only a converted single or double SNaN is quieted; FLD m80 and ST(i) copy.)
        x.push(if flags & fsw::IE != 0 { sf::quiet(v) } else { v });
    }
    Ok(())
}

/// FILD m16int/m32int/m64int.
pub(super) fn fild(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    let (v, _) = read_operand(cpu, bus, insn)?;
    push_checked(&mut cpu.state.x87, v);
    Ok(())
}

fn store(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction, pop: bool) -> Result<(), Exception> {
    let x = &cpu.state.x87;
    let fcw_v = x.fcw;
    let empty = x.is_empty(0);
    let src = x.st(0);
    if insn.op0_kind() == OpKind::Register {
        let i = st_index(insn.op0_register());
        let x = &mut cpu.state.x87;
        let v = if empty {
            if !x.underflow() {
                return Ok(());
            }
            F80::INDEFINITE
        } else {
            x.set_cc(fsw::C1, false);
            src
        };
        x.set_st(i, v);
        if pop {
            x.pop();
        }
        return Ok(());
    }
    let (s, off) = cpu.memory_operand(insn);
    let size = insn.memory_size();
    // (bytes, flags, rounded up)
    let (bytes, flags, up): (Vec<u8>, u16, bool) = if empty {
        let b = match size {
            MemorySize::Float32 => 0xffc0_0000u32.to_le_bytes().to_vec(),
            MemorySize::Float64 => 0xfff8_0000_0000_0000u64.to_le_bytes().to_vec(),
            _ => F80::INDEFINITE.to_bytes().to_vec(),
        };
        (b, fsw::IE | fsw::SF, false)
    } else if sf::is_unsupported(src) && size != MemorySize::Float80 {
        let b = match size {
            MemorySize::Float32 => 0xffc0_0000u32.to_le_bytes().to_vec(),
            _ => 0xfff8_0000_0000_0000u64.to_le_bytes().to_vec(),
        };
        (b, fsw::IE, false)
    } else {
        match size {
            MemorySize::Float32 => {
                let (v, f, up) = rounded(fcw_v, 80, |_| sf::to_f32(src));
                let f = unmasked_store_flags(x, src, f, 32, 0x3fff - 126);
                (v.to_le_bytes().to_vec(), f, up)
            }
            MemorySize::Float64 => {
                let (v, f, up) = rounded(fcw_v, 80, |_| sf::to_f64(src));
                let f = unmasked_store_flags(x, src, f, 64, 0x3fff - 1022);
                (v.to_le_bytes().to_vec(), f, up)
            }
            _ => (src.to_bytes().to_vec(), 0, false),
        }
    };
    let x = &cpu.state.x87;
    // An unmasked invalid, overflow or underflow stores nothing and does not pop.
    if !x.masked(flags & (fsw::IE | fsw::OE | fsw::UE)) {
        let x = &mut cpu.state.x87;
        if empty {
            x.underflow();
        } else {
            commit_flags(x, flags, up);
        }
        return Ok(());
    }
    write_bytes(cpu, bus, s, off, &bytes)?;
    let x = &mut cpu.state.x87;
    if empty {
        x.underflow();
    } else {
        commit_flags(x, flags, up);
    }
    if pop {
        x.pop();
    }
    Ok(())
}

/// With OE or UE unmasked, a store to single or double precision that overflows or is
/// tiny (after rounding to the format's precision, exponent unbounded; exact or not)
/// reports only OE or UE, and stores nothing. `precision` is SoftFloat's rounding
/// precision for the format, `min_exp` the biased exponent of its smallest normal.
fn unmasked_store_flags(x: &X87State, src: F80, flags: u16, precision: u8, min_exp: u16) -> u16 {
    if flags & fsw::OE != 0 && !x.masked(fsw::OE) {
        return fsw::OE;
    }
    if !x.masked(fsw::UE) && !sf::is_nan(src) && !sf::is_zero(src) && src.exp() != 0x7fff {
        let (r, _, _) = rounded(x.fcw, precision, |_| sf::add(src, sf::zero(src.sign())));
        if r.exp() < min_exp {
            return fsw::UE;
        }
    }
    flags
}

/// FST m32fp/m64fp/ST(i).
pub(super) fn fst(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    store(cpu, bus, insn, false)
}

/// FSTP m32fp/m64fp/m80fp/ST(i).
pub(super) fn fstp(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    store(cpu, bus, insn, true)
}

fn store_int(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction, pop: bool) -> Result<(), Exception> {
    let x = &cpu.state.x87;
    let fcw_v = x.fcw;
    let empty = x.is_empty(0);
    let src = x.st(0);
    let width = insn.memory_size().size();
    let (min, max) = match width {
        2 => (i16::MIN as i64, i16::MAX as i64),
        4 => (i32::MIN as i64, i32::MAX as i64),
        _ => (i64::MIN, i64::MAX),
    };
    let indefinite = min;
    let (v, flags, up) = if empty {
        (indefinite, fsw::IE | fsw::SF, false)
    } else {
        let (v, f, up) =
            if sf::is_unsupported(src) { (0, fsw::IE, false) } else { rounded(fcw_v, 80, |rc| sf::to_i64(src, rc)) };
        if f & fsw::IE != 0 || v < min || v > max { (indefinite, fsw::IE, false) } else { (v, f, up) }
    };
    let x = &mut cpu.state.x87;
    if !x.masked(flags & fsw::IE) {
        if empty {
            x.underflow();
        } else {
            commit_flags(x, flags, false);
        }
        return Ok(());
    }
    let (s, off) = cpu.memory_operand(insn);
    write_bytes(cpu, bus, s, off, &v.to_le_bytes()[..width])?;
    let x = &mut cpu.state.x87;
    if empty {
        x.underflow();
    } else {
        commit_flags(x, flags, up);
    }
    if pop {
        x.pop();
    }
    Ok(())
}

/// FIST m16int/m32int.
pub(super) fn fist(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    store_int(cpu, bus, insn, false)
}

/// FISTP m16int/m32int/m64int.
pub(super) fn fistp(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    store_int(cpu, bus, insn, true)
}

/// FBLD m80bcd: 18 packed BCD digits and a sign byte (digits above 9 are taken at face
/// value: the SDM leaves them undefined).
pub(super) fn fbld(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    let (s, off) = cpu.memory_operand(insn);
    let b = read_bytes::<10>(cpu, bus, s, off)?;
    let mut n: i64 = 0;
    for i in (0..9).rev() {
        n = n * 100 + (b[i] >> 4) as i64 * 10 + (b[i] & 0xf) as i64;
    }
    let negative = b[9] & 0x80 != 0;
    let v = if negative { sf::neg(sf::from_i64(n)) } else { sf::from_i64(n) };
    push_checked(&mut cpu.state.x87, v);
    Ok(())
}

/// FBSTP m80bcd: ST(0) rounded to an integer as 18 packed BCD digits, then pop.
pub(super) fn fbstp(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    const INDEFINITE: [u8; 10] = [0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff];
    let x = &cpu.state.x87;
    let fcw_v = x.fcw;
    let empty = x.is_empty(0);
    let src = x.st(0);
    let (bytes, flags, up) = if empty {
        (INDEFINITE, fsw::IE | fsw::SF, false)
    } else {
        let (n, f, up) = rounded(fcw_v, 80, |rc| sf::to_i64(src, rc));
        if f & fsw::IE != 0 || sf::is_unsupported(src) || n.unsigned_abs() > 999_999_999_999_999_999 {
            (INDEFINITE, fsw::IE, false)
        } else {
            let mut m = n.unsigned_abs();
            let mut b = [0u8; 10];
            for byte in b.iter_mut().take(9) {
                *byte = (m % 10) as u8 | (((m / 10) % 10) as u8) << 4;
                m /= 100;
            }
            if src.sign() {
                b[9] = 0x80;
            }
            (b, f, up)
        }
    };
    let x = &mut cpu.state.x87;
    if !x.masked(flags & fsw::IE) {
        if empty {
            x.underflow();
        } else {
            commit_flags(x, flags, false);
        }
        return Ok(());
    }
    let (s, off) = cpu.memory_operand(insn);
    write_bytes(cpu, bus, s, off, &bytes)?;
    let x = &mut cpu.state.x87;
    if empty {
        x.underflow();
    } else {
        commit_flags(x, flags, up);
    }
    x.pop();
    Ok(())
}

/// Pushes a constant given as 64 significand bits, the exponent, and whether the bits
/// beyond them round up to nearest (SDM 8.3.8: the constants are rounded per RC).
fn push_constant(cpu: &mut Cpu, signif: u64, exp: u16, nearest_up: bool) {
    let x = &mut cpu.state.x87;
    let up = match (x.fcw & fcw::RC) >> fcw::RC_SHIFT {
        0 => nearest_up,
        2 => true,
        _ => false,
    };
    push_checked(x, F80 { signif: signif + up as u64, sign_exp: exp });
}

/// FLD1.
pub(super) fn fld1(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    push_checked(&mut cpu.state.x87, sf::one(false));
    Ok(())
}

/// FLDZ.
pub(super) fn fldz(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    push_checked(&mut cpu.state.x87, F80::ZERO);
    Ok(())
}

/// FLDPI: π = 0xC90FDAA22168C234 C4C6…
pub(super) fn fldpi(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    push_constant(cpu, 0xc90f_daa2_2168_c234, 0x4000, true);
    Ok(())
}

/// FLDL2E: log2(e) = 0xB8AA3B295C17F0BB BE87…
pub(super) fn fldl2e(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    push_constant(cpu, 0xb8aa_3b29_5c17_f0bb, 0x3fff, true);
    Ok(())
}

/// FLDL2T: log2(10) = 0xD49A784BCD1B8AFE 492B…
pub(super) fn fldl2t(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    push_constant(cpu, 0xd49a_784b_cd1b_8afe, 0x4000, false);
    Ok(())
}

/// FLDLG2: log10(2) = 0x9A209A84FBCFF798 8F89…
pub(super) fn fldlg2(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    push_constant(cpu, 0x9a20_9a84_fbcf_f798, 0x3ffd, true);
    Ok(())
}

/// FLDLN2: ln(2) = 0xB17217F7D1CF79AB C9E3…
pub(super) fn fldln2(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    push_constant(cpu, 0xb172_17f7_d1cf_79ab, 0x3ffe, true);
    Ok(())
}

/// FCMOVcc ST(0), ST(i) on the EFLAGS condition.
pub(super) fn fcmov(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    let f = cpu.state.eflags;
    let (cf, zf, pf) = (f & CF != 0, f & ZF != 0, f & PF != 0);
    let take = match insn.mnemonic() {
        Mnemonic::Fcmovb => cf,
        Mnemonic::Fcmove => zf,
        Mnemonic::Fcmovbe => cf || zf,
        Mnemonic::Fcmovu => pf,
        Mnemonic::Fcmovnb => !cf,
        Mnemonic::Fcmovne => !zf,
        Mnemonic::Fcmovnbe => !cf && !zf,
        _ => !pf,
    };
    let i = st_index(insn.op1_register());
    let x = &mut cpu.state.x87;
    if x.is_empty(0) || x.is_empty(i) {
        if x.underflow() {
            x.set_st(0, F80::INDEFINITE);
        }
        return Ok(());
    }
    x.set_cc(fsw::C1, false);
    if take {
        let v = x.st(i);
        x.set_st(0, v);
    }
    Ok(())
}
