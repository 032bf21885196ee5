//! x87 transcendental instructions (SDM Vol. 1 8.3.8–8.3.10): FSIN FCOS FSINCOS FPTAN
//! FPATAN F2XM1 FYL2X FYL2XP1.
//!
//! ```text
//!   ST(0), ST(1) ──► special cases (empty, NaN, ±0, ±∞, out of range: as the SDM's tables)
//!        │
//!        ▼  exact widening to quadruple precision (SoftFloat's float128, 113-bit significand)
//!   reduction ─────► FSIN FCOS FSINCOS FPTAN: x = k·π/2 + r, exact, with the x87's own π
//!        │          F2XM1: 2^x − 1 = e^(x·ln 2) − 1;  FYL2X(P1): log2 as e + 2·atanh(s)/ln 2
//!        ▼
//!   series ────────► sin/cos (Taylor), arctan (after three argument halvings), e^u − 1,
//!        │          2·atanh s, each summed well past 113 bits
//!        ▼
//!   one rounding to the extended format under the rounding control (C1: rounded up, PE)
//! ```
//!
//! The working precision has 49 bits more than the destination's 64, so the result is
//! the correctly rounded value of the function of the reduced argument but for inputs
//! within about 2^-45 ulp of a rounding boundary. The x87 itself is accurate to less than
//! 1 ulp when rounding to nearest (SDM Vol. 1 8.3.10, for the reduced argument); the
//! differential test `x87_transcendentals_match_the_host` measures how often the two agree.
//!
//! The trigonometric instructions reduce their operand as the x87 does (SDM Vol. 1 8.3.8):
//! by multiples of π/2 taken from the x87's internal π, which has a 66-bit significand.
//! The reduction is exact, so like the hardware's, the result near a multiple of π is the
//! sine of the distance to a multiple of *that* π, not of the true one.
//!
//! Precision control does not apply to these instructions (SDM Vol. 1 8.1.5.2): results
//! are rounded to 64 bits. Operands outside the SDM's domains (F2XM1 beyond ±1, FYL2XP1
//! beyond ±(1 − √2/2), where the SDM leaves the result undefined) are computed with the
//! same functions, extended as the mathematics extends them. Not done: the unmasked
//! overflow and underflow responses (the arithmetic's exponent wrapped by 24576); an
//! unmasked OE or UE here stores the masked response's value.

use super::sf::{self, F128};
use super::{Fpu, commit_flags, rounded};
use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::Instruction;
use popek_cpu::state::{F80, X87State, fsw};
use popek_cpu::{Bus, Cpu};

// ---------------------------------------------------------------------------------------
// Constants and small helpers of the quadruple-precision working format.

/// The x87's internal π (SDM Vol. 1 8.3.8: 0.C90FDAA2_2168C234_C × 2^2, a 66-bit
/// significand), as an integer count of 2^-66. Its low two bits are zero.
const PI_X87: u128 = 0xc_90fd_aa22_168c_234c;

/// The working precision's π (113 bits, truncated), for FPATAN.
fn pi() -> F128 {
    F128::from_parts(false, 0x1_921f_b544_42d1_8469_898c_c517_01b8, -111)
}

/// ln 2 (113 bits, truncated).
fn ln2() -> F128 {
    F128::from_parts(false, 0x1_62e4_2fef_a39e_f357_93c7_6730_07e5, -113)
}

/// A small integer.
fn int(v: i64) -> F128 {
    F128::from_i64(v)
}

/// 2^n, for |n| ≤ 16382.
fn pow2(n: i32) -> F128 {
    F128::from_parts(false, 1, n)
}

/// Terms summed by each series (after its first): enough for the first term left out to
/// be below 2^-125 of the sum, over the series' whole (reduced) domain.
const SIN_COS_TERMS: i64 = 16; // |r| ≤ π/4: cos's r^34/34! < 2^-139, sin's r^35/35! less
const ATAN_TERMS: i64 = 18; // |t| ≤ tan(π/32) < 0.0985: t^39/39 < 2^-132 · t
const EXPM1_TERMS: i64 = 30; // |u| ≤ ln 2: u^31/31! < 2^-128 · |u|
const ATANH_TERMS: i64 = 24; // |s| ≤ 0.172: s^51/51 < 2^-132 · s

// ---------------------------------------------------------------------------------------
// The reduction and the evaluation routines, in quadruple precision.

/// FSIN FCOS FSINCOS FPTAN's argument reduction, as the x87's (SDM Vol. 1 8.3.8, "the same
/// reduction mechanism used by the FPREM and FPREM1 instructions"): x = k·π_x87/2 + r with
/// k the nearest integer, so |r| ≤ π_x87/4. Returns k mod 4 (the quadrant) and r.
///
/// The operand is an integer multiple of 2^-67 once |x| ≥ 2^-4 (its last bit weighs at
/// least 2^-67), and π_x87/2 is `PI_X87` × 2^-67: the remainder is then an integer long
/// division, exact, and has at most 68 bits, which the 113-bit working format holds.
fn reduce(a: F80) -> (u32, F128) {
    // x = significand × 2^shift units of 2^-67.
    let shift = i32::from(a.exp()) - 16383 - 63 + 67;
    if shift < 0 {
        return (0, F128::from_f80(a)); // |x| < 2^-4: already reduced
    }
    // Long division of significand × 2^shift by PI_X87, one bit of the dividend at a time,
    // keeping the remainder and the quotient's low two bits. The significand (< 2^64) is
    // already less than PI_X87 (> 2^67).
    let mut rem = u128::from(a.signif);
    let mut quadrant = 0u32;
    for _ in 0..shift {
        rem <<= 1;
        quadrant = (quadrant << 1) & 3;
        if rem >= PI_X87 {
            rem -= PI_X87;
            quadrant |= 1;
        }
    }
    // Round the quotient to nearest: a remainder above half the divisor counts from the
    // next multiple. (x is never a multiple of π_x87/2: that would take 66 significant bits.)
    let (below, magnitude) = if rem > PI_X87 / 2 {
        quadrant = (quadrant + 1) & 3;
        (true, PI_X87 - rem)
    } else {
        (false, rem)
    };
    let r = F128::from_parts(below ^ a.sign(), magnitude, -67);
    // −x = (−k)·π/2 + (−r).
    if a.sign() { ((4 - quadrant) & 3, r) } else { (quadrant, r) }
}

/// sin r and cos r for |r| ≤ π/4, by their Taylor series:
/// sin r = r − r³/3! + r⁵/5! − …,  cos r = 1 − r²/2! + r⁴/4! − …
fn sin_cos_reduced(r: F128) -> (F128, F128) {
    let r2 = r * r;
    let (mut sin, mut sin_term) = (r, r);
    let (mut cos, mut cos_term) = (int(1), int(1));
    for k in 1..=SIN_COS_TERMS {
        // Each term is the previous one times −r² / ((2k)(2k + 1)), resp. ((2k − 1)(2k)).
        sin_term = (sin_term * r2 / int(2 * k * (2 * k + 1))).neg();
        cos_term = (cos_term * r2 / int((2 * k - 1) * 2 * k)).neg();
        sin = sin + sin_term;
        cos = cos + cos_term;
    }
    (sin, cos)
}

/// sin x and cos x of an in-range operand: the reduced argument's, turned by the quadrant.
fn sin_cos(a: F80) -> (F128, F128) {
    let (quadrant, r) = reduce(a);
    let (s, c) = sin_cos_reduced(r);
    match quadrant {
        0 => (s, c),
        1 => (c, s.neg()),
        2 => (s.neg(), c.neg()),
        _ => (c.neg(), s),
    }
}

/// arctan t for t ≥ 0 (+∞ included), in 0…π/2.
fn atan(t: F128) -> F128 {
    let one = int(1);
    if one.lt(t) {
        return pi() * pow2(-1) - atan(one / t); // arctan t = π/2 − arctan(1/t)
    }
    // Three halvings, arctan t = 2·arctan(t / (1 + √(1 + t²))), take t ≤ 1 below tan(π/32).
    let mut t = t;
    for _ in 0..3 {
        t = t / (one + (one + t * t).sqrt());
    }
    // arctan t = t − t³/3 + t⁵/5 − …
    let t2 = t * t;
    let (mut sum, mut power) = (t, t);
    for k in 1..=ATAN_TERMS {
        power = (power * t2).neg();
        sum = sum + power / int(2 * k + 1);
    }
    sum * int(8)
}

/// e^u − 1 for |u| ≤ ln 2, by the Taylor series u + u²/2! + u³/3! + … (no cancellation
/// against the 1, so small results keep their relative accuracy).
fn expm1(u: F128) -> F128 {
    let (mut sum, mut term) = (u, u);
    for k in 2..=EXPM1_TERMS {
        term = term * u / int(k);
        sum = sum + term;
    }
    sum
}

/// 2^x − 1. Within ±1 (the SDM's domain), e^(x·ln 2) − 1 directly; beyond it,
/// 2^n·2^f − 1 with n the nearest integer and |f| ≤ 1/2 (clamped where the result is ∞ or −1).
fn exp2m1(x: F128) -> F128 {
    let one = int(1);
    if !one.lt(x.abs()) {
        return expm1(x * ln2());
    }
    let n = x.round_to_i64().clamp(-20000, 20000) as i32;
    let f = if n.abs() == 20000 { int(0) } else { x - int(i64::from(n)) };
    let power = (expm1(f * ln2()) + one) * pow2(n / 2) * pow2(n - n / 2);
    power - one
}

/// 2·atanh s = ln((1 + s) / (1 − s)) for |s| ≤ 0.172, by the series 2·(s + s³/3 + s⁵/5 + …).
fn two_atanh(s: F128) -> F128 {
    let s2 = s * s;
    let (mut sum, mut power) = (s, s);
    for k in 1..=ATANH_TERMS {
        power = power * s2;
        sum = sum + power / int(2 * k + 1);
    }
    sum * int(2)
}

/// log2 v for a finite v > 0: v = 2^e·m with √½ ≤ m ≤ √2, and
/// log2 v = e + ln m / ln 2 = e + 2·atanh((m − 1)/(m + 1)) / ln 2.
fn log2(v: F128) -> F128 {
    if v.exponent() == -16383 {
        return log2(v * pow2(128)) - int(128); // a subnormal, scaled up exactly
    }
    let mut e = v.exponent();
    let mut m = v.significand(); // 1 ≤ m < 2
    if int(2).sqrt().lt(m) {
        m = m * pow2(-1);
        e += 1;
    }
    let one = int(1);
    int(i64::from(e)) + two_atanh((m - one) / (m + one)) / ln2()
}

/// log2(1 + x) for x > −1: near 0 (|x| < 1/4, the SDM's domain is |x| < 1 − √2/2),
/// 2·atanh(x / (2 + x)) / ln 2, which keeps the relative accuracy of small x; elsewhere
/// log2 of 1 + x.
fn log2_1p(x: F128) -> F128 {
    if x.abs().lt(pow2(-2)) { two_atanh(x / (int(2) + x)) / ln2() } else { log2(int(1) + x) }
}

/// Starts a quadruple-precision evaluation: SoftFloat rounds to nearest while it works
/// (its flags are discarded; only the final rounding's count).
fn working_precision() {
    sf::begin(0, 80);
}

/// A computed value rounded to the extended format under the control word's rounding
/// control: the result, its status flags and whether it was rounded up in magnitude. PE is
/// forced if `always_inexact`: for functions whose value is irrational at every non-special
/// operand (the working value may still happen to be exact: sin x for tiny x), and where
/// the host reports PE anyway.
///
/// The working format has the extended format's exponent range, so a result beyond it
/// shows as ∞ or 0 there (never the function's value at a non-special operand): it is then
/// rounded as another such result, the largest finite value squared or the smallest
/// denormal squared, to get the overflow or underflow response of the rounding control.
/// A forced PE on a denormal result brings UE with it (tiny and inexact).
fn round(x: &X87State, v: F128, always_inexact: bool) -> (F80, u16, bool) {
    const LARGEST: F80 = F80 { signif: u64::MAX, sign_exp: 0x7ffe };
    const SMALLEST: F80 = F80 { signif: 1, sign_exp: 0 };
    let signed = |magnitude: F80| if v.is_negative() { sf::neg(magnitude) } else { magnitude };
    let (r, flags, up) = if v.abs() == F128::from_f80(sf::inf(false)) {
        rounded(x.fcw, 80, |_| sf::mul(signed(LARGEST), LARGEST))
    } else if v.abs() == int(0) {
        rounded(x.fcw, 80, |_| sf::mul(signed(SMALLEST), SMALLEST))
    } else {
        rounded(x.fcw, 80, |_| v.to_f80())
    };
    let forced = if !always_inexact {
        0
    } else if r.exp() == 0 {
        fsw::PE | fsw::UE
    } else {
        fsw::PE
    };
    (r, flags | forced, up)
}

// ---------------------------------------------------------------------------------------
// The instructions: operand checks, special cases, results.

/// Checks `n` source registers ST(0)…: empty (stack underflow), unsupported or NaN
/// operands, denormals. Returns the operands when the operation is to go on; otherwise
/// the response (`Some(value)` to write to the destination `dst`) has been given.
fn sources(x: &mut X87State, n: usize, dst: usize, pop: bool) -> Option<Vec<F80>> {
    let ops = operands(x, n, dst, pop)?;
    denormals_go_on(x, &ops).then_some(ops)
}

/// The part of [`sources`] before the denormal check.
fn operands(x: &mut X87State, n: usize, dst: usize, pop: bool) -> Option<Vec<F80>> {
    if (0..n).any(|i| x.is_empty(i)) {
        if x.underflow() {
            x.set_st(dst, F80::INDEFINITE);
            if pop {
                x.pop();
            }
        }
        return None;
    }
    let ops: Vec<F80> = (0..n).map(|i| x.st(i)).collect();
    if ops.iter().any(|&v| sf::is_unsupported(v)) {
        store(x, dst, F80::INDEFINITE, fsw::IE, false, pop);
        return None;
    }
    if ops.iter().any(|&v| sf::is_nan(v)) {
        let (a, b) = (ops[0], ops[n - 1]);
        let ie = if sf::is_snan(a) || sf::is_snan(b) { fsw::IE } else { 0 };
        store(x, dst, sf::propagate(a, b), ie, false, pop);
        return None;
    }
    Some(ops)
}

/// Raises DE for denormal operands; true if the operation goes on (DE masked or none).
fn denormals_go_on(x: &mut X87State, ops: &[F80]) -> bool {
    !ops.iter().any(|&v| sf::is_denormal(v)) || x.raise(fsw::DE)
}

/// Commits `flags` and C1 (`up`), then writes `v` to `dst` (popping if asked) unless an
/// unmasked exception forbids it.
fn store(x: &mut X87State, dst: usize, v: F80, flags: u16, up: bool, pop: bool) {
    if commit_flags(x, flags, up) {
        x.set_cc(fsw::C2, false);
        x.set_st(dst, v);
        if pop {
            x.pop();
        }
    }
}

/// Rounds a computed value and writes it to `dst`.
fn store_computed(x: &mut X87State, dst: usize, v: F128, always_inexact: bool, pop: bool) {
    let (r, flags, up) = round(x, v, always_inexact);
    store(x, dst, r, flags, up, pop);
}

/// For FSIN FCOS FSINCOS FPTAN: an operand out of range (|x| ≥ 2^63) sets C2 and
/// changes nothing; ±∞ is invalid. True if the operation goes on.
fn in_range(x: &mut X87State, a: F80) -> bool {
    if sf::is_inf(a) {
        if commit_flags(x, fsw::IE, false) {
            x.set_cc(fsw::C2, false);
            x.set_st(0, F80::INDEFINITE);
        }
        return false;
    }
    if a.exp() >= 0x3fff + 63 {
        x.set_cc(fsw::C2, true);
        return false;
    }
    true
}

/// FSIN.
pub(super) fn fsin(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    let x = &mut cpu.state.x87;
    let Some(ops) = sources(x, 1, 0, false) else { return Ok(()) };
    if !in_range(x, ops[0]) {
        return Ok(());
    }
    if sf::is_zero(ops[0]) {
        store(x, 0, ops[0], 0, false, false); // sin ±0 = ±0, exactly
        return Ok(());
    }
    working_precision();
    let (sin, _) = sin_cos(ops[0]);
    store_computed(x, 0, sin, true, false);
    Ok(())
}

/// FCOS.
pub(super) fn fcos(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    let x = &mut cpu.state.x87;
    let Some(ops) = sources(x, 1, 0, false) else { return Ok(()) };
    if !in_range(x, ops[0]) {
        return Ok(());
    }
    if sf::is_zero(ops[0]) {
        store(x, 0, sf::one(false), 0, false, false); // cos ±0 = 1, exactly
        return Ok(());
    }
    working_precision();
    let (_, cos) = sin_cos(ops[0]);
    store_computed(x, 0, cos, true, false);
    Ok(())
}

/// FSINCOS: ST(0) = sin, then cos pushed.
pub(super) fn fsincos(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    two_results(cpu, sin_cos, Second);
    Ok(())
}

/// FPTAN: ST(0) = tan, then 1.0 pushed.
pub(super) fn fptan(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    two_results(
        cpu,
        |a| {
            let (sin, cos) = sin_cos(a);
            (sin / cos, int(1))
        },
        First,
    );
    Ok(())
}

/// Which of FSINCOS's and FPTAN's two results C1 reports the rounding of: the cosine for
/// FSINCOS (as the host does), the tangent for FPTAN (it pushes 1.0, exact). The host's C1
/// after FPTAN follows that rule only for about 80% of operands: it is 1 for all results
/// near multiples of π, for example (see the differential test).
#[derive(Clone, Copy, PartialEq)]
enum C1Of {
    First,
    Second,
}
use C1Of::{First, Second};

/// FSINCOS and FPTAN: two results, the first replacing ST(0), the second pushed. An empty
/// ST(0), a NaN, ±∞ or an unsupported operand gives the indefinite (or the NaN) as both.
fn two_results(cpu: &mut Cpu, f: fn(F80) -> (F128, F128), c1_of: C1Of) {
    let x = &mut cpu.state.x87;
    if !x.is_empty(0) && !x.is_empty(7) {
        if x.overflow() {
            x.set_st(0, F80::INDEFINITE);
            x.push(F80::INDEFINITE);
        }
        return;
    }
    if x.is_empty(0) {
        if x.underflow() {
            x.set_st(0, F80::INDEFINITE);
            x.push(F80::INDEFINITE);
        }
        return;
    }
    let a = x.st(0);
    let invalid = if sf::is_unsupported(a) || sf::is_inf(a) {
        Some((F80::INDEFINITE, fsw::IE))
    } else if sf::is_nan(a) {
        Some((sf::quiet(a), if sf::is_snan(a) { fsw::IE } else { 0 }))
    } else {
        None
    };
    if let Some((v, flags)) = invalid {
        if commit_flags(x, flags, false) {
            x.set_cc(fsw::C2, false);
            x.set_st(0, v);
            x.push(v);
        }
        return;
    }
    let Some(ops) = sources(x, 1, 0, false) else { return };
    if !in_range(x, ops[0]) {
        return;
    }
    let (first, second, flags, up) = if sf::is_zero(ops[0]) {
        (ops[0], sf::one(false), 0, false) // sin ±0 = tan ±0 = ±0, cos 0 = 1: exact
    } else {
        working_precision();
        let (first, second) = f(ops[0]);
        let (first, first_flags, first_up) = round(x, first, true);
        let (second, second_flags, second_up) = round(x, second, false);
        let up = if c1_of == First { first_up } else { second_up };
        (first, second, first_flags | second_flags, up)
    };
    if commit_flags(x, flags, up) {
        x.set_cc(fsw::C2, false);
        x.set_st(0, first);
        x.push(second);
    }
}

/// FPATAN: ST(1) = arctan(ST(1) / ST(0)) in −π…π (the angle of the point (ST(0), ST(1))),
/// then pop.
pub(super) fn fpatan(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    let x = &mut cpu.state.x87;
    let Some(ops) = sources(x, 2, 1, true) else { return Ok(()) };
    let (a, y) = (ops[0], ops[1]);
    if !a.sign() && (sf::is_zero(y) || (sf::is_inf(a) && !sf::is_inf(y))) {
        // ±0 over a positive number or +0, a finite number over +∞: ±0, exactly.
        store(x, 1, sf::zero(y.sign()), 0, false, true);
        return Ok(());
    }
    working_precision();
    // |y / x|; the two indeterminate forms take the ratio of their limits on the diagonal.
    let ratio = if sf::is_inf(a) && sf::is_inf(y) {
        int(1) // arctan(±∞ / ±∞): π/4 or 3π/4
    } else if sf::is_zero(a) && sf::is_zero(y) {
        int(0) // arctan(±0 / −0): π
    } else {
        F128::from_f80(y).abs() / F128::from_f80(a).abs()
    };
    let angle = atan(ratio);
    let angle = if a.sign() { pi() - angle } else { angle };
    store_computed(x, 1, if y.sign() { angle.neg() } else { angle }, true, true);
    Ok(())
}

/// F2XM1: 2^ST(0) − 1 (the SDM's domain is −1…1; other values are computed the same way).
pub(super) fn f2xm1(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    let x = &mut cpu.state.x87;
    let Some(ops) = sources(x, 1, 0, false) else { return Ok(()) };
    let a = ops[0];
    if sf::is_zero(a) || sf::is_inf(a) {
        // 2^±0 − 1 = ±0, 2^+∞ − 1 = +∞, 2^−∞ − 1 = −1: exact.
        let v = if sf::is_inf(a) && a.sign() { sf::one(true) } else { a };
        store(x, 0, v, 0, false, false);
        return Ok(());
    }
    working_precision();
    // 2^x − 1 is rational only at integers x, where the working value is exact too.
    store_computed(x, 0, exp2m1(F128::from_f80(a)), false, false);
    Ok(())
}

/// FYL2X: ST(1) = ST(1) × log2(ST(0)), then pop.
pub(super) fn fyl2x(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    log_op(cpu, false);
    Ok(())
}

/// FYL2XP1: ST(1) = ST(1) × log2(ST(0) + 1), then pop.
pub(super) fn fyl2xp1(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    log_op(cpu, true);
    Ok(())
}

/// FYL2X and FYL2XP1: y × log2(arg), arg being x or x + 1.
fn log_op(cpu: &mut Cpu, plus_one: bool) {
    let x = &mut cpu.state.x87;
    // The invalid and zero-divide cases come before the denormal check (as on the host: a
    // negative denormal x is only invalid, a denormal y over x = 0 only divides by zero).
    let Some(ops) = operands(x, 2, 1, true) else { return };
    let (a, y) = (ops[0], ops[1]);
    let (one, minus_one) = (sf::one(false), sf::one(true));
    // Where the logarithm's argument stands: below 0, at 0, at 1, at +∞.
    let (arg_negative, arg_zero, arg_one) = if plus_one {
        (sf::lt_quiet(a, minus_one), sf::eq(a, minus_one), sf::is_zero(a))
    } else {
        (a.sign() && !sf::is_zero(a), sf::is_zero(a), sf::eq(a, one))
    };
    let arg_inf = sf::is_inf(a) && !a.sign();
    let (y_zero, y_inf) = (sf::is_zero(y), sf::is_inf(y));
    // log of a negative number, 0 × ∞ (log 0 = −∞, log ∞ = ∞, log 1 = 0).
    if arg_negative || ((arg_zero || arg_inf) && y_zero) || (arg_one && y_inf) {
        if commit_flags(x, fsw::IE, false) {
            x.set_st(1, F80::INDEFINITE);
            x.pop();
        }
        return;
    }
    // The logarithm is negative below 1 (−∞ at 0); log2(1 + ±0) is ±0.
    let log_negative = if plus_one { a.sign() } else { sf::lt_quiet(a, one) };
    let negative = y.sign() ^ log_negative;
    if arg_zero && !y_inf {
        store(x, 1, sf::inf(negative), fsw::ZE, false, true); // y × log 0, y finite
        return;
    }
    if !denormals_go_on(x, &ops) {
        return;
    }
    if arg_zero || arg_inf || y_inf {
        store(x, 1, sf::inf(negative), 0, false, true);
        return;
    }
    if arg_one || y_zero {
        store(x, 1, sf::zero(negative), 0, false, true);
        return;
    }
    working_precision();
    let (a_exp, a, y) = (a.exp(), F128::from_f80(a), F128::from_f80(y));
    let v = if plus_one && a_exp < 0x3fff - 16000 {
        // |x| < 2^-16000: log2(1 + x) = x / ln 2 far beyond 113 bits; x is scaled up first,
        // as the quotient would otherwise be subnormal and lose bits before the product.
        y * (a * pow2(256) / ln2()) * pow2(-256)
    } else {
        y * if plus_one { log2_1p(a) } else { log2(a) }
    };
    // Inexact even where the value is exact (x a power of two and y × log2 x fitting 64
    // bits), as on the host, whose internal log2 is an approximation there too.
    store_computed(x, 1, v, true, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f80(v: f64) -> F80 {
        sf::from_f64(v.to_bits())
    }

    fn to_f64(v: F128) -> f64 {
        sf::begin(0, 80);
        f64::from_bits(sf::to_f64(v.to_f80()))
    }

    #[test]
    fn the_reduction_uses_the_x87_pi() {
        working_precision();
        // Near π_x87: the nearest extended value is 0xC90FDAA22168C235 × 2^-62 (the 66-bit
        // value rounded up), 2^-64 above it; the true π is about 2^-66.4 above π_x87.
        let pi_rounded = F80 { signif: 0xc90f_daa2_2168_c235, sign_exp: 0x4000 };
        let (quadrant, r) = reduce(pi_rounded);
        assert_eq!(quadrant, 2);
        // The remainder is exact: (0xC90FDAA22168C235 × 16 − 0xC90FDAA22168C234C) × 2^-66.
        assert_eq!(r, F128::from_parts(false, 0xc90f_daa2_2168_c235 * 16 - PI_X87, -66));
        // A negative operand: quadrant and remainder mirrored.
        let (quadrant, r) = reduce(sf::neg(pi_rounded));
        assert_eq!((quadrant, r.lt(int(0))), (2, true));
    }

    #[test]
    fn the_series_agree_with_the_double_precision_functions() {
        working_precision();
        for v in [0.1, 0.5, 1.0, 2.0, 3.0, -1.3, 10.0, 100.0] {
            let (s, c) = sin_cos(f80(v));
            assert!((to_f64(s) - v.sin()).abs() < 1e-15, "sin {v}");
            assert!((to_f64(c) - v.cos()).abs() < 1e-15, "cos {v}");
        }
        for t in [0.0, 0.01, 0.3, 1.0, 2.5, 1e10] {
            assert!((to_f64(atan(F128::from_f80(f80(t)))) - t.atan()).abs() < 1e-15, "atan {t}");
        }
        for v in [-1.0f64, -0.3, 1e-10, 0.5, 1.0, 3.5, -7.25] {
            let expect = v.exp2() - 1.0;
            assert!(
                (to_f64(exp2m1(F128::from_f80(f80(v)))) - expect).abs() < 1e-15 * expect.abs().max(1.0),
                "2^{v} − 1"
            );
        }
        for v in [1e-300, 0.1, 0.7, 1.0, 1.5, 8.0, 1e300] {
            assert!((to_f64(log2(F128::from_f80(f80(v)))) - v.log2()).abs() < 1e-13, "log2 {v}");
        }
        for v in [-0.9f64, -0.2, 1e-12, 0.25, 3.0] {
            let expect = v.ln_1p() / core::f64::consts::LN_2;
            assert!(
                (to_f64(log2_1p(F128::from_f80(f80(v)))) - expect).abs() < 1e-15 * expect.abs().max(1.0),
                "log2(1 + {v})"
            );
        }
    }

    #[test]
    fn the_constants_are_right() {
        working_precision();
        // π/4 = arctan 1 computed from the series; ln 2 = 2·ln √2, and
        // ln √2 = 2·atanh((√2 − 1)/(√2 + 1)).
        let pi_from_atan = atan(int(1)) * int(4);
        assert!((pi_from_atan - pi()).abs().lt(pow2(-109)), "{pi_from_atan:?}");
        let root2 = int(2).sqrt();
        let ln2_from_atanh = two_atanh((root2 - int(1)) / (root2 + int(1))) * int(2);
        assert!((ln2_from_atanh - ln2()).abs().lt(pow2(-111)), "{ln2_from_atanh:?}");
        // π_x87 is π to 66 bits.
        let pi66 = F128::from_parts(false, PI_X87 >> 2, -64);
        assert!((pi66 - pi()).abs().lt(pow2(-65)));
    }
}
