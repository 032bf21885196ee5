//! The soft-float layer: Berkeley SoftFloat 3's 80-bit extended type, with the x87's
//! rounding control and precision control, wrapped in safe functions.
//!
//! SoftFloat keeps its rounding mode, rounding precision and exception flags in
//! thread-local variables; [`begin`] sets them for one x87 operation and [`flags`] reads
//! what it raised. Built with the `8086-SSE` specialisation, its NaN rules are the x87's
//! (the default NaN is the real indefinite, a NaN operand is quieted, of two NaNs the one
//! with the larger significand wins) and tininess is detected after rounding.

use popek_cpu::state::F80;
use softfloat_sys as sf;

/// SoftFloat's invalid-operation flag.
pub(crate) const INVALID: u8 = sf::softfloat_flag_invalid;
/// SoftFloat's divide-by-zero flag.
pub(crate) const INFINITE: u8 = sf::softfloat_flag_infinite;
/// SoftFloat's overflow flag.
pub(crate) const OVERFLOW: u8 = sf::softfloat_flag_overflow;
/// SoftFloat's underflow flag (tiny and inexact).
pub(crate) const UNDERFLOW: u8 = sf::softfloat_flag_underflow;
/// SoftFloat's inexact flag.
pub(crate) const INEXACT: u8 = sf::softfloat_flag_inexact;

/// SoftFloat's rounding mode for an x87 RC field (00 nearest, 01 down, 10 up, 11 chop).
pub(crate) fn rounding_mode(rc: u16) -> u8 {
    match rc & 3 {
        0 => sf::softfloat_round_near_even,
        1 => sf::softfloat_round_min,
        2 => sf::softfloat_round_max,
        _ => sf::softfloat_round_minMag,
    }
}

/// SoftFloat's rounding precision for an x87 PC field: 00 single (24-bit significand),
/// 10 double (53), 11 extended (64). The reserved 01 rounds as extended.
pub(crate) fn rounding_precision(pc: u16) -> u8 {
    match pc & 3 {
        0 => 32,
        2 => 64,
        _ => 80,
    }
}

/// Sets the rounding mode and precision for the next operations and clears the flags.
pub(crate) fn begin(rc: u16, precision: u8) {
    let mode = rounding_mode(rc);
    // SAFETY: the helpers only write SoftFloat's thread-local globals of this thread.
    unsafe {
        sf::softfloat_roundingMode_write_helper(mode);
        sf::extF80_roundingPrecision_write_helper(precision);
        sf::softfloat_detectTininess_write_helper(sf::softfloat_tininess_afterRounding);
        sf::softfloat_exceptionFlags_write_helper(0);
    }
}

/// The flags raised since [`begin`].
pub(crate) fn flags() -> u8 {
    // SAFETY: reads a thread-local global of this thread.
    unsafe { sf::softfloat_exceptionFlags_read_helper() }
}

/// A pseudo-denormal (exponent 0, integer bit set) has the value of the same
/// significand with exponent 1; SoftFloat is handed that form.
fn to_sf(f: F80) -> sf::extFloat80_t {
    let pseudo_denormal = f.exp() == 0 && f.signif >> 63 == 1;
    sf::extFloat80_t { signif: f.signif, signExp: f.sign_exp | pseudo_denormal as u16 }
}

fn from_sf(e: sf::extFloat80_t) -> F80 {
    F80 { signif: e.signif, sign_exp: e.signExp }
}

/// Defines safe wrappers of pure SoftFloat functions of extended operands.
macro_rules! binary {
    ($($(#[$doc:meta])* $name:ident = $f:ident;)*) => {$(
        $(#[$doc])*
        pub(crate) fn $name(a: F80, b: F80) -> F80 {
            // SAFETY: a pure function of its operands (plus this thread's SoftFloat globals).
            from_sf(unsafe { sf::$f(to_sf(a), to_sf(b)) })
        }
    )*};
}

binary! {
    /// a + b.
    add = extF80_add;
    /// a − b.
    sub = extF80_sub;
    /// a × b.
    mul = extF80_mul;
    /// a ÷ b.
    div = extF80_div;
}

/// √a.
pub(crate) fn sqrt(a: F80) -> F80 {
    // SAFETY: a pure function of its operand (plus this thread's SoftFloat globals).
    from_sf(unsafe { sf::extF80_sqrt(to_sf(a)) })
}

/// a rounded to an integer in the current rounding mode (inexact raised if it changed).
pub(crate) fn round_to_int(a: F80, rc: u16) -> F80 {
    // SAFETY: a pure function of its operands.
    from_sf(unsafe { sf::extF80_roundToInt(to_sf(a), rounding_mode(rc), true) })
}

/// a < b, raising invalid only for a signaling NaN.
pub(crate) fn lt_quiet(a: F80, b: F80) -> bool {
    // SAFETY: a pure function of its operands.
    unsafe { sf::extF80_lt_quiet(to_sf(a), to_sf(b)) }
}

/// a == b, raising invalid only for a signaling NaN.
pub(crate) fn eq(a: F80, b: F80) -> bool {
    // SAFETY: a pure function of its operands.
    unsafe { sf::extF80_eq(to_sf(a), to_sf(b)) }
}

/// A single-precision value widened (exact; a signaling NaN raises invalid and is quieted).
pub(crate) fn from_f32(v: u32) -> F80 {
    // SAFETY: a pure function of its operand.
    from_sf(unsafe { sf::f32_to_extF80(sf::float32_t { v }) })
}

/// A double-precision value widened.
pub(crate) fn from_f64(v: u64) -> F80 {
    // SAFETY: a pure function of its operand.
    from_sf(unsafe { sf::f64_to_extF80(sf::float64_t { v }) })
}

/// An integer converted (exact).
pub(crate) fn from_i64(v: i64) -> F80 {
    // SAFETY: a pure function of its operand.
    from_sf(unsafe { sf::i64_to_extF80(v) })
}

/// Rounded to single precision in the current rounding mode.
pub(crate) fn to_f32(a: F80) -> u32 {
    // SAFETY: a pure function of its operand (plus this thread's SoftFloat globals).
    unsafe { sf::extF80_to_f32(to_sf(a)) }.v
}

/// Rounded to double precision in the current rounding mode.
pub(crate) fn to_f64(a: F80) -> u64 {
    // SAFETY: a pure function of its operand (plus this thread's SoftFloat globals).
    unsafe { sf::extF80_to_f64(to_sf(a)) }.v
}

/// Rounded to a 64-bit integer with rounding control `rc`; out of range or NaN raises
/// invalid and gives `i64::MIN` (the integer indefinite).
pub(crate) fn to_i64(a: F80, rc: u16) -> i64 {
    // SAFETY: a pure function of its operands.
    unsafe { sf::extF80_to_i64(to_sf(a), rounding_mode(rc), true) }
}

/// A quadruple-precision value (SoftFloat's `float128_t`: sign, 15-bit exponent biased by
/// 16383, 112-bit fraction), the working precision of the transcendental instructions: its
/// 113-bit significand leaves 49 bits of margin over the extended format's 64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct F128(u128);

impl F128 {
    fn to_sf(self) -> sf::float128_t {
        // The low 64 bits first (SoftFloat's little-endian layout).
        sf::float128_t { v: [self.0 as u64, (self.0 >> 64) as u64] }
    }

    fn from_sf(v: sf::float128_t) -> F128 {
        F128(u128::from(v.v[1]) << 64 | u128::from(v.v[0]))
    }

    /// `±magnitude × 2^exp`, exactly: `magnitude` has at most 113 significant bits and the
    /// value is in the normal range.
    pub(crate) fn from_parts(negative: bool, magnitude: u128, exp: i32) -> F128 {
        if magnitude == 0 {
            return F128(u128::from(negative) << 127);
        }
        let top = 127 - magnitude.leading_zeros() as i32; // the integer bit's position
        assert!(top <= 112, "{magnitude:#x} does not fit a 113-bit significand");
        let biased = top + exp + 16383;
        assert!((1..0x7fff).contains(&biased), "2^{} is out of the normal range", top + exp);
        let fraction = (magnitude << (112 - top)) & ((1 << 112) - 1);
        F128(u128::from(negative) << 127 | (biased as u128) << 112 | fraction)
    }

    /// The exact value of an extended operand.
    pub(crate) fn from_f80(a: F80) -> F128 {
        // SAFETY: a pure function of its operand.
        F128::from_sf(unsafe { sf::extF80_to_f128(to_sf(a)) })
    }

    /// An integer, exactly.
    pub(crate) fn from_i64(v: i64) -> F128 {
        // SAFETY: a pure function of its operand.
        F128::from_sf(unsafe { sf::i64_to_f128(v) })
    }

    /// Rounded to the extended format in the current rounding mode and precision.
    pub(crate) fn to_f80(self) -> F80 {
        // SAFETY: a pure function of its operand (plus this thread's SoftFloat globals).
        from_sf(unsafe { sf::f128_to_extF80(self.to_sf()) })
    }

    /// Whether the sign bit is set (−0 included).
    pub(crate) fn is_negative(self) -> bool {
        self.0 >> 127 != 0
    }

    /// The absolute value.
    pub(crate) fn abs(self) -> F128 {
        F128(self.0 & !(1 << 127))
    }

    /// The value with its sign flipped.
    pub(crate) fn neg(self) -> F128 {
        F128(self.0 ^ 1 << 127)
    }

    /// The unbiased binary exponent (of the integer bit; for normal values).
    pub(crate) fn exponent(self) -> i32 {
        ((self.0 >> 112) & 0x7fff) as i32 - 16383
    }

    /// The significand as a value in 1…2 (for normal values): `self` = ±2^exponent × it.
    pub(crate) fn significand(self) -> F128 {
        F128(self.0 & ((1 << 112) - 1) | 16383 << 112)
    }

    /// self < b.
    pub(crate) fn lt(self, b: F128) -> bool {
        // SAFETY: a pure function of its operands.
        unsafe { sf::f128_lt_quiet(self.to_sf(), b.to_sf()) }
    }

    /// The nearest integer (ties to even), as an `i64` (the value must fit).
    pub(crate) fn round_to_i64(self) -> i64 {
        // SAFETY: a pure function of its operands.
        unsafe { sf::f128_to_i64(self.to_sf(), sf::softfloat_round_near_even, false) }
    }

    /// √self.
    pub(crate) fn sqrt(self) -> F128 {
        // SAFETY: a pure function of its operand (plus this thread's SoftFloat globals).
        F128::from_sf(unsafe { sf::f128_sqrt(self.to_sf()) })
    }
}

/// Defines the arithmetic operators of [`F128`] on SoftFloat's functions (rounded in the
/// current rounding mode, which the transcendental instructions keep at nearest-even).
macro_rules! f128_operator {
    ($($trait:ident $method:ident = $f:ident;)*) => {$(
        impl core::ops::$trait for F128 {
            type Output = F128;
            fn $method(self, b: F128) -> F128 {
                // SAFETY: a pure function of its operands (plus this thread's SoftFloat globals).
                F128::from_sf(unsafe { sf::$f(self.to_sf(), b.to_sf()) })
            }
        }
    )*};
}

f128_operator! {
    Add add = f128_add;
    Sub sub = f128_sub;
    Mul mul = f128_mul;
    Div div = f128_div;
}

/// Whether a value is a NaN (exponent all ones, fraction non-zero, integer bit set).
pub(crate) fn is_nan(a: F80) -> bool {
    a.exp() == 0x7fff && a.signif << 1 != 0
}

/// Whether a value is a signaling NaN.
pub(crate) fn is_snan(a: F80) -> bool {
    is_nan(a) && a.signif & (1 << 62) == 0
}

/// Whether a value is an infinity.
pub(crate) fn is_inf(a: F80) -> bool {
    a.exp() == 0x7fff && a.signif == 1 << 63
}

/// Whether a value is ±0.
pub(crate) fn is_zero(a: F80) -> bool {
    a.exp() == 0 && a.signif == 0
}

/// A denormal or pseudo-denormal (exponent 0, significand non-zero).
pub(crate) fn is_denormal(a: F80) -> bool {
    a.exp() == 0 && a.signif != 0
}

/// A format the 80387 and later reject (invalid operand): an unnormal, pseudo-NaN or
/// pseudo-infinity, i.e. a non-zero exponent with the integer bit clear.
pub(crate) fn is_unsupported(a: F80) -> bool {
    a.exp() != 0 && a.signif >> 63 == 0
}

/// The x87's NaN result of an operation with at least one NaN operand (SDM Vol. 1
/// Table 4-7), quieted: of a QNaN and an SNaN the QNaN, of two of a kind the one with
/// the larger significand (the first operand on a tie), otherwise the NaN.
pub(crate) fn propagate(a: F80, b: F80) -> F80 {
    let r = match (is_nan(a), is_nan(b)) {
        (true, true) => {
            if is_snan(a) != is_snan(b) {
                if is_snan(a) { b } else { a }
            } else if b.signif > a.signif {
                b
            } else {
                a
            }
        }
        (true, false) => a,
        _ => b,
    };
    quiet(r)
}

/// The value with its sign flipped.
pub(crate) fn neg(a: F80) -> F80 {
    F80 { signif: a.signif, sign_exp: a.sign_exp ^ 0x8000 }
}

/// The quiet version of a NaN.
pub(crate) fn quiet(a: F80) -> F80 {
    F80 { signif: a.signif | 1 << 62, sign_exp: a.sign_exp }
}

/// +1.0 or −1.0.
pub(crate) fn one(negative: bool) -> F80 {
    F80 { signif: 1 << 63, sign_exp: 0x3fff | if negative { 0x8000 } else { 0 } }
}

/// ±∞.
pub(crate) fn inf(negative: bool) -> F80 {
    F80 { signif: 1 << 63, sign_exp: 0x7fff | if negative { 0x8000 } else { 0 } }
}

/// ±0.
pub(crate) fn zero(negative: bool) -> F80 {
    F80 { signif: 0, sign_exp: if negative { 0x8000 } else { 0 } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_control_rounds_the_significand() {
        // 1 + 2^-30: exact in extended and double, rounds to 1 in single.
        let a = one(false);
        let b = F80 { signif: 1 << 63, sign_exp: 0x3fff - 30 };
        begin(0, 32);
        assert_eq!(add(a, b), a);
        assert_eq!(flags(), INEXACT);
        begin(0, 64);
        assert_eq!(add(a, b).signif, (1 << 63) | (1 << 33));
        assert_eq!(flags(), 0);
    }

    #[test]
    fn invalid_gives_the_real_indefinite() {
        begin(0, 80);
        assert_eq!(sub(inf(false), inf(false)), F80::INDEFINITE);
        assert_eq!(flags(), INVALID);
    }
}
