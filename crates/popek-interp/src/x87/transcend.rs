//! x87 transcendental instructions (SDM Vol. 1 8.3.9–8.3.10): FSIN FCOS FSINCOS FPTAN
//! FPATAN F2XM1 FYL2X FYL2XP1.
//!
//! For now they are computed in double precision by the pure-Rust `libm` crate (a port of
//! musl's), so the results are the same on every host, whatever its CPU or C library: the
//! operand is rounded to double (round to nearest), the function evaluated, and the
//! double result widened. They are therefore accurate to about 53 bits, not to the x87's
//! 64 (its own results differ from the correctly rounded ones in the last bits too). PE
//! is set for every result that is not an exact special case; C1 is 0.

use super::{Fpu, commit_flags, sf};
use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::Instruction;
use popek_cpu::state::{F80, X87State, fsw};
use popek_cpu::{Bus, Cpu};

fn to_host(a: F80) -> f64 {
    sf::begin(0, 80);
    f64::from_bits(sf::to_f64(a))
}

fn from_host(v: f64) -> F80 {
    sf::begin(0, 80);
    sf::from_f64(v.to_bits())
}

/// Checks `n` source registers ST(0)…: empty (stack underflow), unsupported or NaN
/// operands, denormals. Returns the operands when the operation is to go on; otherwise
/// the response (`Some(value)` to write to the destination `dst`) has been given.
fn sources(x: &mut X87State, n: usize, dst: usize, pop: bool) -> Option<Vec<F80>> {
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
    let respond = |x: &mut X87State, v: F80, flags: u16| {
        if commit_flags(x, flags, false) {
            x.set_cc(fsw::C2, false);
            x.set_st(dst, v);
            if pop {
                x.pop();
            }
        }
    };
    if ops.iter().any(|&v| sf::is_unsupported(v)) {
        respond(x, F80::INDEFINITE, fsw::IE);
        return None;
    }
    if ops.iter().any(|&v| sf::is_nan(v)) {
        let (a, b) = (ops[0], ops[n - 1]);
        let ie = if sf::is_snan(a) || sf::is_snan(b) { fsw::IE } else { 0 };
        respond(x, sf::propagate(a, b), ie);
        return None;
    }
    if ops.iter().any(|&v| sf::is_denormal(v)) && !x.raise(fsw::DE) {
        return None;
    }
    Some(ops)
}

/// Writes a computed result to `dst` (PE unless `exact`), popping if asked.
fn result(x: &mut X87State, dst: usize, v: f64, exact: bool, extra: u16, pop: bool) {
    let flags = extra | if exact { 0 } else { fsw::PE };
    if commit_flags(x, flags, false) {
        x.set_cc(fsw::C2, false);
        x.set_st(dst, from_host(v));
        if pop {
            x.pop();
        }
    }
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

fn trig(cpu: &mut Cpu, f: fn(f64) -> f64, zero_exact: bool) {
    let x = &mut cpu.state.x87;
    let Some(ops) = sources(x, 1, 0, false) else { return };
    if !in_range(x, ops[0]) {
        return;
    }
    let exact = zero_exact && sf::is_zero(ops[0]);
    let v = if exact { to_host(ops[0]) } else { f(to_host(ops[0])) };
    result(x, 0, v, exact, 0, false);
}

/// FSIN.
pub(super) fn fsin(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    trig(cpu, libm::sin, true);
    Ok(())
}

/// FCOS.
pub(super) fn fcos(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    trig(cpu, libm::cos, false);
    Ok(())
}

/// FSINCOS: ST(0) = sin, then cos pushed.
pub(super) fn fsincos(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    two_results(cpu, |v| (libm::sin(v), libm::cos(v)));
    Ok(())
}

/// FPTAN: ST(0) = tan, then 1.0 pushed.
pub(super) fn fptan(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    two_results(cpu, |v| (libm::tan(v), 1.0));
    Ok(())
}

fn two_results(cpu: &mut Cpu, f: fn(f64) -> (f64, f64)) {
    let x = &mut cpu.state.x87;
    if !x.is_empty(0) && !x.is_empty(7) {
        if x.overflow() {
            x.set_st(0, F80::INDEFINITE);
            x.push(F80::INDEFINITE);
        }
        return;
    }
    let Some(ops) = sources(x, 1, 0, false) else { return };
    if !in_range(x, ops[0]) {
        return;
    }
    let (first, second) = f(to_host(ops[0]));
    let exact = sf::is_zero(ops[0]);
    let first = if exact { to_host(ops[0]) } else { first };
    if commit_flags(x, if exact { 0 } else { fsw::PE }, false) {
        x.set_cc(fsw::C2, false);
        x.set_st(0, from_host(first));
        x.push(from_host(second));
    }
}

/// FPATAN: ST(1) = arctan(ST(1) / ST(0)), then pop.
pub(super) fn fpatan(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    let x = &mut cpu.state.x87;
    let Some(ops) = sources(x, 2, 1, true) else { return Ok(()) };
    let v = libm::atan2(to_host(ops[1]), to_host(ops[0]));
    let exact = sf::is_zero(ops[1]) && !ops[0].sign();
    result(x, 1, v, exact, 0, true);
    Ok(())
}

/// F2XM1: 2^ST(0) − 1 (the SDM's domain is −1…1; other values are computed the same way).
pub(super) fn f2xm1(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> Result<(), Exception> {
    let x = &mut cpu.state.x87;
    let Some(ops) = sources(x, 1, 0, false) else { return Ok(()) };
    let a = to_host(ops[0]);
    let exact = a == 0.0 || a.is_infinite();
    let v =
        if exact { if a == f64::NEG_INFINITY { -1.0 } else { a } } else { libm::expm1(a * core::f64::consts::LN_2) };
    result(x, 0, v, exact, 0, false);
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

fn log_op(cpu: &mut Cpu, plus_one: bool) {
    let x = &mut cpu.state.x87;
    let Some(ops) = sources(x, 2, 1, true) else { return };
    let (a, y) = (to_host(ops[0]), to_host(ops[1]));
    let arg = if plus_one { a + 1.0 } else { a };
    let l = if plus_one { libm::log1p(a) / core::f64::consts::LN_2 } else { libm::log2(a) };
    let invalid =
        arg < 0.0 || (arg == 0.0 && y == 0.0) || (l.is_infinite() && y == 0.0) || (arg == 1.0 && y.is_infinite());
    if invalid {
        if commit_flags(x, fsw::IE, false) {
            x.set_st(1, F80::INDEFINITE);
            x.pop();
        }
        return;
    }
    let ze = if arg == 0.0 && y.is_finite() { fsw::ZE } else { 0 };
    let v = y * l;
    let exact = ze != 0 || v == 0.0 || v.is_infinite();
    result(x, 1, v, exact, ze, true);
}
