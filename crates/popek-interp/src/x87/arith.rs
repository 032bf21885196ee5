//! x87 arithmetic (SDM Vol. 1 8.3.5–8.3.7): FADD FSUB FSUBR FMUL FDIV FDIVR with their
//! P and I forms, FCHS FABS FSQRT FRNDINT FSCALE FXTRACT FPREM FPREM1.
//!
//! Only the four basic operations and FSQRT round to the precision control's width
//! (SDM 8.1.5.2); the others round to 64 bits. FPREM/FPREM1 with an exponent difference
//! of 64 or more compute a partial remainder that lowers it by 32 + (difference mod 32)
//! and clear C0, C1 and C3 (which the SDM leaves undefined).

use super::loadstore::read_operand;
use super::{Fpu, commit_flags, rounded, sf, st_index};
use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::{Instruction, Mnemonic, OpKind};
use popek_cpu::state::{F80, X87State, fcw, fsw};
use popek_cpu::{Bus, Cpu};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    SubR,
    Mul,
    Div,
    DivR,
}

fn apply(op: Op, a: F80, b: F80) -> F80 {
    match op {
        Op::Add => sf::add(a, b),
        Op::Sub => sf::sub(a, b),
        Op::SubR => sf::sub(b, a),
        Op::Mul => sf::mul(a, b),
        Op::Div => sf::div(a, b),
        Op::DivR => sf::div(b, a),
    }
}

/// The precision control's rounding width.
fn pc(x: &X87State) -> u8 {
    sf::rounding_precision((x.fcw & fcw::PC) >> fcw::PC_SHIFT)
}

/// Flags the operands raise before the operation: IE for an unsupported format, DE for
/// a denormal (when no operand is a NaN).
fn operand_flags(ops: &[F80]) -> u16 {
    if ops.iter().any(|&v| sf::is_unsupported(v)) {
        fsw::IE
    } else if ops.iter().any(|&v| sf::is_denormal(v)) && !ops.iter().any(|&v| sf::is_nan(v)) {
        fsw::DE
    } else {
        0
    }
}

fn binop(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction, op: Op) -> Result<(), Exception> {
    let pop = matches!(
        insn.mnemonic(),
        Mnemonic::Faddp | Mnemonic::Fsubp | Mnemonic::Fsubrp | Mnemonic::Fmulp | Mnemonic::Fdivp | Mnemonic::Fdivrp
    );
    let (dst, src, mem) = if insn.op0_kind() == OpKind::Memory {
        let (v, f) = read_operand(cpu, bus, insn)?;
        (0, None, Some((v, f)))
    } else {
        (st_index(insn.op0_register()), Some(st_index(insn.op1_register())), None)
    };
    let x = &mut cpu.state.x87;
    let empty = x.is_empty(dst) || src.is_some_and(|j| x.is_empty(j));
    if empty {
        if x.underflow() {
            x.set_st(dst, F80::INDEFINITE);
            if pop {
                x.pop();
            }
        }
        return Ok(());
    }
    let a = x.st(dst);
    let (b, mem_flags) = match (src, mem) {
        (Some(j), _) => (x.st(j), 0),
        (None, Some((v, f))) => (v, f),
        (None, None) => unreachable!("an operand"),
    };
    // A denormal memory operand (widened to a normal) counts only when neither is a NaN.
    let mem_de = if sf::is_nan(a) || sf::is_nan(b) { 0 } else { mem_flags & fsw::DE };
    let mut pre = operand_flags(&[a, b]) | (mem_flags & fsw::IE) | mem_de;
    // A division by zero reports ZE, not DE for a denormal dividend.
    let divisor = match op {
        Op::Div => Some(b),
        Op::DivR => Some(a),
        _ => None,
    };
    if divisor.is_some_and(sf::is_zero) {
        pre &= !fsw::DE;
    }
    let (r, flags, up) = if pre & fsw::IE != 0 && (sf::is_unsupported(a) || sf::is_unsupported(b)) {
        (F80::INDEFINITE, fsw::IE, false)
    } else {
        if sf::is_nan(a) || sf::is_nan(b) {
            let ie = if sf::is_snan(a) || sf::is_snan(b) { fsw::IE } else { 0 };
            (sf::propagate(a, b), ie | (pre & fsw::IE), false)
        } else {
            if pre & fsw::DE != 0 && !commit_flags(x, fsw::DE, false) {
                return Ok(());
            }
            let (r, f, up) = rounded(x.fcw, pc(x), |_| apply(op, a, b));
            match wrapped_if_unmasked(x, op, a, b, r, f) {
                Some((r, f, up)) => (r, f | pre, up),
                None => (r, f | pre, up),
            }
        }
    };
    if commit_flags(x, flags, up) {
        x.set_st(dst, r);
        if pop {
            x.pop();
        }
    }
    Ok(())
}

/// The SDM's response to an unmasked numeric overflow or underflow (Vol. 1 8.5.4, 8.5.5):
/// the result rounded to the precision control's width as if the exponent were
/// unbounded, its exponent then lowered (overflow) or raised (underflow) by 24576, with
/// OE or UE (and PE if inexact). With UM unmasked, underflow means tiny after rounding,
/// exact or not. `None` when neither applies (the masked computation stands).
fn wrapped_if_unmasked(x: &X87State, op: Op, a: F80, b: F80, r: F80, f: u16) -> Option<(F80, u16, bool)> {
    let overflow = f & fsw::OE != 0 && !x.masked(fsw::OE);
    let maybe_tiny = !x.masked(fsw::UE) && r.exp() <= 1 && !sf::is_nan(r);
    let finite = |v: F80| v.exp() != 0x7fff;
    let additive = matches!(op, Op::Add | Op::Sub | Op::SubR);
    let operands_ok = if additive {
        finite(a) && finite(b) && (finite_nonzero(a) || finite_nonzero(b))
    } else {
        finite_nonzero(a) && finite_nonzero(b)
    };
    if !(overflow || maybe_tiny) || !operands_ok {
        return None;
    }
    // A zero operand (of an addition) keeps exponent "minus infinity".
    let norm = |v: F80| if sf::is_zero(v) { (0, i32::MIN / 2) } else { normalized(v) };
    let (ma, ea) = norm(a);
    let (mb, eb) = norm(b);
    let unit = |m: u64, negative: bool, e: i32| F80 { signif: m, sign_exp: (negative as u16) << 15 | e as u16 };
    let (r0, f0, up, scale) = match op {
        Op::Mul | Op::Div | Op::DivR => {
            let (a1, b1) = (unit(ma, a.sign(), 0x3fff), unit(mb, b.sign(), 0x3fff));
            let (r0, f0, up) = rounded(x.fcw, pc(x), |_| apply(op, a1, b1));
            let scale = match op {
                Op::Mul => (ea - 0x3fff) + (eb - 0x3fff),
                Op::Div => ea - eb,
                _ => eb - ea,
            };
            (r0, f0, up, scale)
        }
        _ => {
            // Both moved next to 1.0 by the same power of two; a much smaller operand only
            // decides the sticky bit, so it is clamped to 2^-100 of the larger.
            let k = ea.max(eb);
            let near = |m: u64, negative: bool, e: i32| {
                if m == 0 { sf::zero(negative) } else { unit(m, negative, 0x3fff + (e - k).max(-100)) }
            };
            let (a1, b1) = (near(ma, a.sign(), ea), near(mb, b.sign(), eb));
            let (r0, f0, up) = rounded(x.fcw, pc(x), |_| apply(op, a1, b1));
            if sf::is_zero(r0) {
                return None;
            }
            (r0, f0, up, k - 0x3fff)
        }
    };
    let e = r0.exp() as i32 + scale;
    let (e, flag) = if e > 0x7ffe && overflow {
        (e - 24576, fsw::OE)
    } else if e < 1 && maybe_tiny {
        (e + 24576, fsw::UE)
    } else {
        return None;
    };
    let flags = flag | (f0 & fsw::PE);
    Some((F80 { signif: r0.signif, sign_exp: (r0.sign_exp & 0x8000) | e as u16 }, flags, up))
}

fn finite_nonzero(v: F80) -> bool {
    v.exp() != 0x7fff && !sf::is_zero(v)
}

/// FADD, FADDP, FIADD.
pub(super) fn fadd(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    binop(cpu, bus, insn, Op::Add)
}
/// FSUB, FSUBP, FISUB.
pub(super) fn fsub(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    binop(cpu, bus, insn, Op::Sub)
}
/// FSUBR, FSUBRP, FISUBR.
pub(super) fn fsubr(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    binop(cpu, bus, insn, Op::SubR)
}
/// FMUL, FMULP, FIMUL.
pub(super) fn fmul(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    binop(cpu, bus, insn, Op::Mul)
}
/// FDIV, FDIVP, FIDIV.
pub(super) fn fdiv(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    binop(cpu, bus, insn, Op::Div)
}
/// FDIVR, FDIVRP, FIDIVR.
pub(super) fn fdivr(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> Result<(), Exception> {
    binop(cpu, bus, insn, Op::DivR)
}

/// Runs `f` on a non-empty ST(0) (stack underflow otherwise: the masked response
/// writes the indefinite to ST(0)).
fn with_st0(x: &mut X87State, f: impl FnOnce(&mut X87State, F80)) {
    if x.is_empty(0) {
        if x.underflow() {
            x.set_st(0, F80::INDEFINITE);
        }
        return;
    }
    let a = x.st(0);
    f(x, a)
}

/// FCHS: flips the sign (C1 = 0).
pub(super) fn fchs(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    with_st0(&mut cpu.state.x87, |x, a| {
        x.set_cc(fsw::C1, false);
        x.set_st(0, sf::neg(a));
    });
    Ok(())
}

/// FABS: clears the sign (C1 = 0).
pub(super) fn fabs(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    with_st0(&mut cpu.state.x87, |x, a| {
        x.set_cc(fsw::C1, false);
        x.set_st(0, F80 { signif: a.signif, sign_exp: a.sign_exp & 0x7fff });
    });
    Ok(())
}

/// A unary operation on ST(0) with the operand checks and rounding.
/// `f` gets the operand and the rounding control; `invalid` tells the operands the
/// operation rejects (its IE takes precedence over DE).
fn unary(x: &mut X87State, precision: Option<u8>, invalid: impl Fn(F80) -> bool, f: impl Fn(F80, u16) -> F80) {
    with_st0(x, |x, a| {
        let mut pre = operand_flags(&[a]);
        if invalid(a) {
            pre = fsw::IE;
        }
        if pre & fsw::IE != 0 {
            if commit_flags(x, fsw::IE, false) {
                x.set_st(0, F80::INDEFINITE);
            }
            return;
        }
        if pre & fsw::DE != 0 && !commit_flags(x, fsw::DE, false) {
            return;
        }
        let (r, flags, up) = rounded(x.fcw, precision.unwrap_or(80), |rc| f(a, rc));
        if commit_flags(x, flags | pre, up) {
            x.set_st(0, r);
        }
    });
}

/// FSQRT (rounded to the precision control's width).
pub(super) fn fsqrt(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    let x = &mut cpu.state.x87;
    let p = pc(x);
    unary(x, Some(p), |a| a.sign() && !sf::is_zero(a) && !sf::is_nan(a), |a, _| sf::sqrt(a));
    Ok(())
}

/// FRNDINT: rounds ST(0) to an integer under RC.
pub(super) fn frndint(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    let x = &mut cpu.state.x87;
    unary(x, None, |_| false, sf::round_to_int);
    Ok(())
}

/// A finite non-zero value's significand shifted so bit 63 is set, and its biased
/// exponent (below 1 for denormals).
fn normalized(a: F80) -> (u64, i32) {
    if a.exp() == 0 {
        let lz = a.signif.leading_zeros();
        (a.signif << lz, 1 - lz as i32)
    } else {
        (a.signif, a.exp() as i32)
    }
}

/// 2^k for −16382 ≤ k ≤ 16383.
fn pow2(k: i32) -> F80 {
    F80 { signif: 1 << 63, sign_exp: (0x3fff + k) as u16 }
}

/// trunc(v) for a finite v, clamped to ±2^20 (any larger scale overflows or underflows).
fn trunc_clamped(v: F80) -> i32 {
    let e = v.exp() as i32 - 0x3fff;
    let n = if e < 0 {
        0
    } else if e > 20 {
        1 << 20
    } else {
        (v.signif >> (63 - e)) as i32
    };
    if v.sign() { -n } else { n }
}

/// a × 2^n for a finite non-zero `a`, rounded once.
fn scale(a: F80, n: i32) -> F80 {
    let (sig, e) = normalized(a);
    let sign = a.sign_exp & 0x8000;
    let target = e + n;
    if (1..=0x7ffe).contains(&target) {
        return F80 { signif: sig, sign_exp: sign | target as u16 };
    }
    let k = target - 0x3fff;
    if k > 0 {
        let x1 = F80 { signif: sig, sign_exp: sign | 0x3fff };
        sf::mul(sf::mul(x1, pow2(16383)), pow2(16383))
    } else {
        let x2 = F80 { signif: sig, sign_exp: sign | (0x3fff + (k + 16382).max(-16382)) as u16 };
        sf::mul(x2, pow2(-16382))
    }
}

/// FSCALE: ST(0) × 2^trunc(ST(1)).
pub(super) fn fscale(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    let x = &mut cpu.state.x87;
    if x.is_empty(0) || x.is_empty(1) {
        if x.underflow() {
            x.set_st(0, F80::INDEFINITE);
        }
        return Ok(());
    }
    let (a, b) = (x.st(0), x.st(1));
    let pre = operand_flags(&[a, b]);
    if pre & fsw::IE != 0 {
        if commit_flags(x, fsw::IE, false) {
            x.set_st(0, F80::INDEFINITE);
        }
        return Ok(());
    }
    if sf::is_nan(a) || sf::is_nan(b) {
        let ie = if sf::is_snan(a) || sf::is_snan(b) { fsw::IE } else { 0 };
        if commit_flags(x, ie, false) {
            x.set_st(0, sf::propagate(a, b));
        }
        return Ok(());
    }
    if pre & fsw::DE != 0 && !commit_flags(x, fsw::DE, false) {
        return Ok(());
    }
    let invalid = (sf::is_zero(a) && sf::is_inf(b) && !b.sign()) || (sf::is_inf(a) && sf::is_inf(b) && b.sign());
    let (r, flags, up) = if invalid {
        (F80::INDEFINITE, fsw::IE, false)
    } else if sf::is_zero(a) || sf::is_inf(a) {
        (a, 0, false)
    } else if sf::is_zero(b) {
        // Scaling by ±0 leaves ST(0) as it is (the SDM's FSCALE table): no rounding, so a
        // denormal raises no underflow; a pseudo-denormal is written with exponent 1.
        let (sa, ea) = normalized(a);
        (make(sa, ea, a.sign()), 0, false)
    } else if sf::is_inf(b) {
        (if b.sign() { sf::zero(a.sign()) } else { sf::inf(a.sign()) }, 0, false)
    } else {
        let n = trunc_clamped(b);
        let (r, f, up) = rounded(x.fcw, 80, |_| scale(a, n));
        // Unmasked overflow or underflow: the result with its exponent wrapped by 24576.
        let (_, e) = normalized(a);
        // Beyond even the wrapped range: ∞ (whatever the rounding control) or 0.
        if f & fsw::OE != 0 && !x.masked(fsw::OE) {
            if e + n - 24576 > 0x7ffe {
                (sf::inf(a.sign()), fsw::OE | fsw::PE, true)
            } else {
                let (r, f, up) = rounded(x.fcw, 80, |_| scale(a, n - 24576));
                (r, (f & fsw::PE) | fsw::OE, up)
            }
        } else if !x.masked(fsw::UE) && e + n < 1 {
            if e + n + 24576 < 1 {
                (sf::zero(a.sign()), fsw::UE | fsw::PE, false)
            } else {
                let (r, f, up) = rounded(x.fcw, 80, |_| scale(a, n + 24576));
                (r, (f & fsw::PE) | fsw::UE, up)
            }
        } else {
            (r, f, up)
        }
    };
    if commit_flags(x, flags | pre, up) {
        x.set_st(0, r);
    }
    Ok(())
}

/// FXTRACT: ST(0) → exponent in ST(1), significand (exponent 0) in ST(0).
pub(super) fn fxtract(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    let x = &mut cpu.state.x87;
    if x.is_empty(0) || !x.is_empty(7) {
        let masked = if x.is_empty(0) { x.underflow() } else { x.overflow() };
        if masked {
            x.set_st(0, F80::INDEFINITE);
            x.push(F80::INDEFINITE);
        }
        return Ok(());
    }
    let a = x.st(0);
    let (exp, sig, flags) = if sf::is_unsupported(a) {
        (F80::INDEFINITE, F80::INDEFINITE, fsw::IE)
    } else if sf::is_nan(a) {
        let q = sf::quiet(a);
        (q, q, if sf::is_snan(a) { fsw::IE } else { 0 })
    } else if sf::is_inf(a) {
        (sf::inf(false), a, 0)
    } else if sf::is_zero(a) {
        (sf::inf(true), a, fsw::ZE)
    } else {
        let (s, e) = normalized(a);
        let de = if sf::is_denormal(a) { fsw::DE } else { 0 };
        (sf::from_i64((e - 0x3fff) as i64), F80 { signif: s, sign_exp: (a.sign_exp & 0x8000) | 0x3fff }, de)
    };
    if commit_flags(x, flags, false) {
        x.set_cc(fsw::C1, false);
        x.set_st(0, exp);
        x.push(sig);
    }
    Ok(())
}

/// FPREM: partial remainder with a truncated quotient.
pub(super) fn fprem(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    prem(&mut cpu.state.x87, false);
    Ok(())
}

/// FPREM1: IEEE remainder (quotient rounded to nearest).
pub(super) fn fprem1(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    prem(&mut cpu.state.x87, true);
    Ok(())
}

/// [`make`], but with UE unmasked a denormal result is written normalized, its exponent
/// raised by 24576, and UE is set (the SDM's unmasked underflow response).
fn make_checked(x: &mut X87State, r: u64, e: i32, negative: bool) -> F80 {
    let v = make(r, e, negative);
    if sf::is_denormal(v) && !x.masked(fsw::UE) {
        x.raise(fsw::UE);
        let lz = r.leading_zeros() as i32;
        return F80 { signif: r << lz, sign_exp: (negative as u16) << 15 | (e - lz + 24576) as u16 };
    }
    v
}

/// The value r × 2^(e − 16383 − 63) (exact: a remainder is a multiple of the smaller
/// operand's unit), with the given sign.
fn make(r: u64, e: i32, negative: bool) -> F80 {
    let sign = if negative { 0x8000 } else { 0 };
    if r == 0 {
        return F80 { signif: 0, sign_exp: sign };
    }
    let lz = r.leading_zeros() as i32;
    let (sig, exp) = (r << lz, e - lz);
    if exp >= 1 {
        F80 { signif: sig, sign_exp: sign | exp as u16 }
    } else {
        F80 { signif: sig >> (1 - exp).min(63), sign_exp: sign }
    }
}

fn prem(x: &mut X87State, nearest: bool) {
    if x.is_empty(0) || x.is_empty(1) {
        x.set_cc(fsw::C2, false);
        if x.underflow() {
            x.set_st(0, F80::INDEFINITE);
        }
        return;
    }
    let (a, b) = (x.st(0), x.st(1));
    let pre = operand_flags(&[a, b]);
    let invalid = pre & fsw::IE != 0 || (!sf::is_nan(a) && !sf::is_nan(b) && (sf::is_inf(a) || sf::is_zero(b)));
    x.set_cc(fsw::C2, false);
    if invalid {
        if commit_flags(x, fsw::IE, false) {
            x.set_st(0, F80::INDEFINITE);
        }
        return;
    }
    if sf::is_nan(a) || sf::is_nan(b) {
        let ie = if sf::is_snan(a) || sf::is_snan(b) { fsw::IE } else { 0 };
        if commit_flags(x, ie, false) {
            x.set_st(0, sf::propagate(a, b));
        }
        return;
    }
    if pre & fsw::DE != 0 && !commit_flags(x, fsw::DE, false) {
        x.set_cc(fsw::C2, false);
        return;
    }
    let cc = |x: &mut X87State, q: u64, partial: bool| {
        x.set_cc(fsw::C0, !partial && q & 4 != 0);
        x.set_cc(fsw::C3, !partial && q & 2 != 0);
        x.set_cc(fsw::C1, !partial && q & 1 != 0);
        x.set_cc(fsw::C2, partial);
    };
    if sf::is_zero(a) || sf::is_inf(b) {
        // ST(0) unchanged (the SDM's FPREM/FPREM1 tables): a denormal raises no underflow.
        cc(x, 0, false);
        if !sf::is_zero(a) {
            let (sa, ea) = normalized(a);
            x.set_st(0, make(sa, ea, a.sign()));
        }
        return;
    }
    let (sa, ea) = normalized(a);
    let (sb, eb) = normalized(b);
    let d = ea - eb;
    let neg = a.sign();
    if d < 0 {
        // |a| < |b|: the quotient is 0, or 1 for FPREM1 when |a| > |b|/2.
        if nearest && d == -1 && sa > sb {
            let r = ((sb as u128) << 1) - sa as u128;
            cc(x, 1, false);
            // r < sb here: 2·sb − sa with sb < sa.
            let v = make_checked(x, r as u64, eb - 1, !neg);
            x.set_st(0, v);
        } else {
            // Unchanged, but normalized (a pseudo-denormal is written with exponent 1).
            cc(x, 0, false);
            let v = make_checked(x, sa, ea, neg);
            x.set_st(0, v);
        }
        return;
    }
    if d < 64 {
        let num = (sa as u128) << d;
        let mut q = num / sb as u128;
        let mut r = (num % sb as u128) as u64;
        let mut negative = neg;
        if nearest {
            let twice = (r as u128) << 1;
            if twice > sb as u128 || (twice == sb as u128 && q & 1 == 1) {
                q += 1;
                r = sb - r;
                negative = !neg;
            }
        }
        cc(x, q as u64, false);
        let v = make_checked(x, r, eb, negative);
        x.set_st(0, v);
    } else {
        let n = 32 + d % 32;
        let num = (sa as u128) << n;
        let r = (num % sb as u128) as u64;
        cc(x, 0, true);
        let v = make_checked(x, r, ea - n, neg);
        x.set_st(0, v);
    }
}
