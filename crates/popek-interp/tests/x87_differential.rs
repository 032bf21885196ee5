//! Differential test of the x87 FPU: popek's interpreter against the host's x87.
//!
//! ```text
//!   random FSAVE image (FCW with random RC/PC/masks, TOP, tags, registers) + memory operand
//!     ├─► guest: frstor [ebx] ; INSN ; fnsave [ebx+0x200]   (TestBox, popek interpreter)
//!     └─► host:  frstor [rbx] ; INSN ; fnsave [rbx+0x200]   (popek_hostcpu, 64-bit mode)
//!   compare: FCW, FSW, full tag word, ST(0)–ST(7), the memory operand, ZF/PF/CF
//! ```
//!
//! The x87 behaves the same in 64-bit mode, and FRSTOR/FNSAVE without REX.W use the
//! 32-bit protected-mode image, so the host is the reference for every result bit and
//! status flag. Not compared: FIP/FCS/FOP/FDP/FDS (addresses differ between the worlds).
//! Exceptions are masked or not at random (the unmasked responses included: no store for
//! invalid, zero-divide and denormal, the exponent wrapped by 24576 for overflow and
//! underflow). FNSAVE is
//! non-waiting and leaves the host FPU initialised, so an unmasked exception never traps
//! on the host. The transcendental instructions are compared by their own test below
//! (`x87_transcendentals_match_the_host`): the host's results are only within 1 ulp of
//! the correctly rounded ones, which popek computes.
//!
//! `POPEK_X87_CASES=N` sets the cases per form (default 2000); `POPEK_X87_ONLY=name`
//! runs the forms whose name contains it.

#![allow(clippy::cast_possible_truncation)]

use popek_cpu::state::flags::{CF, PF, ZF};
use popek_hostcpu::{HostRunner, HostState};
use popek_interp::testing::{DATA_BASE, TestBox, XorShift};

/// Where the memory operand sits in the data window (`[ebx+0x70]` / `[rbx+0x70]`, after the input image).
const OPERAND: usize = 0x70;
/// Where FNSAVE writes the result image.
const OUT: usize = 0x100;
/// The bytes compared at the memory operand (an environment is 28).
const WINDOW: usize = 28;

/// How a form's memory operand (if any) is filled.
#[derive(Clone, Copy, Debug)]
enum Mem {
    None,
    F32,
    F64,
    F80,
    I16,
    I32,
    I64,
    Bcd,
    /// A destination: filled with a fixed pattern.
    Out,
    /// A control word.
    Cw,
    /// A 28-byte environment (random control, status and tag words; zero pointers).
    Env,
}

struct Form {
    name: &'static str,
    bytes: &'static [u8],
    mem: Mem,
}

const fn f(name: &'static str, bytes: &'static [u8], mem: Mem) -> Form {
    Form { name, bytes, mem }
}

/// ModR/M byte for `[ebx+disp8]` with reg field `r`, then the displacement.
macro_rules! m {
    ($op:expr, $r:expr) => {
        &[$op, 0x43 | ($r << 3), OPERAND as u8]
    };
}

const FORMS: &[Form] = &[
    f("fadd st0,st1", &[0xd8, 0xc1], Mem::None),
    f("fsub st0,st1", &[0xd8, 0xe1], Mem::None),
    f("fsubr st0,st1", &[0xd8, 0xe9], Mem::None),
    f("fmul st0,st1", &[0xd8, 0xc9], Mem::None),
    f("fdiv st0,st1", &[0xd8, 0xf1], Mem::None),
    f("fdivr st0,st1", &[0xd8, 0xf9], Mem::None),
    f("fadd st1,st0", &[0xdc, 0xc1], Mem::None),
    f("fsub st1,st0", &[0xdc, 0xe9], Mem::None),
    f("fdivr st1,st0", &[0xdc, 0xf1], Mem::None),
    f("faddp st1,st0", &[0xde, 0xc1], Mem::None),
    f("fsubp st1,st0", &[0xde, 0xe9], Mem::None),
    f("fmulp st2,st0", &[0xde, 0xca], Mem::None),
    f("fdivp st1,st0", &[0xde, 0xf9], Mem::None),
    f("fadd m32", m!(0xd8, 0), Mem::F32),
    f("fmul m32", m!(0xd8, 1), Mem::F32),
    f("fsub m64", m!(0xdc, 4), Mem::F64),
    f("fdivr m64", m!(0xdc, 7), Mem::F64),
    f("fiadd m16", m!(0xde, 0), Mem::I16),
    f("fidiv m32", m!(0xda, 6), Mem::I32),
    f("fsqrt", &[0xd9, 0xfa], Mem::None),
    f("frndint", &[0xd9, 0xfc], Mem::None),
    f("fscale", &[0xd9, 0xfd], Mem::None),
    f("fprem", &[0xd9, 0xf8], Mem::None),
    f("fprem1", &[0xd9, 0xf5], Mem::None),
    f("fxtract", &[0xd9, 0xf4], Mem::None),
    f("fchs", &[0xd9, 0xe0], Mem::None),
    f("fabs", &[0xd9, 0xe1], Mem::None),
    f("ftst", &[0xd9, 0xe4], Mem::None),
    f("fxam", &[0xd9, 0xe5], Mem::None),
    f("fcom st1", &[0xd8, 0xd1], Mem::None),
    f("fcomp st2", &[0xd8, 0xda], Mem::None),
    f("fcompp", &[0xde, 0xd9], Mem::None),
    f("fucom st1", &[0xdd, 0xe1], Mem::None),
    f("fucompp", &[0xda, 0xe9], Mem::None),
    f("fcomi st0,st1", &[0xdb, 0xf1], Mem::None),
    f("fucomi st0,st1", &[0xdb, 0xe9], Mem::None),
    f("fcomip st0,st1", &[0xdf, 0xf1], Mem::None),
    f("fucomip st0,st1", &[0xdf, 0xe9], Mem::None),
    f("fcom m32", m!(0xd8, 2), Mem::F32),
    f("fcomp m64", m!(0xdc, 3), Mem::F64),
    f("ficom m16", m!(0xde, 2), Mem::I16),
    f("ficomp m32", m!(0xda, 3), Mem::I32),
    f("fld m32", m!(0xd9, 0), Mem::F32),
    f("fld m64", m!(0xdd, 0), Mem::F64),
    f("fld m80", m!(0xdb, 5), Mem::F80),
    f("fld st1", &[0xd9, 0xc1], Mem::None),
    f("fild m16", m!(0xdf, 0), Mem::I16),
    f("fild m32", m!(0xdb, 0), Mem::I32),
    f("fild m64", m!(0xdf, 5), Mem::I64),
    f("fbld", m!(0xdf, 4), Mem::Bcd),
    f("fst m32", m!(0xd9, 2), Mem::Out),
    f("fstp m64", m!(0xdd, 3), Mem::Out),
    f("fstp m80", m!(0xdb, 7), Mem::Out),
    f("fst st2", &[0xdd, 0xd2], Mem::None),
    f("fstp st1", &[0xdd, 0xd9], Mem::None),
    f("fist m16", m!(0xdf, 2), Mem::Out),
    f("fist m32", m!(0xdb, 2), Mem::Out),
    f("fistp m64", m!(0xdf, 7), Mem::Out),
    f("fbstp", m!(0xdf, 6), Mem::Out),
    f("fxch st1", &[0xd9, 0xc9], Mem::None),
    f("fld1", &[0xd9, 0xe8], Mem::None),
    f("fldpi", &[0xd9, 0xeb], Mem::None),
    f("fldl2e", &[0xd9, 0xea], Mem::None),
    f("fldl2t", &[0xd9, 0xe9], Mem::None),
    f("fldlg2", &[0xd9, 0xec], Mem::None),
    f("fldln2", &[0xd9, 0xed], Mem::None),
    f("fldz", &[0xd9, 0xee], Mem::None),
    f("fcmovb st0,st1", &[0xda, 0xc1], Mem::None),
    f("fcmovnbe st0,st1", &[0xdb, 0xd1], Mem::None),
    f("ffree st1", &[0xdd, 0xc1], Mem::None),
    f("fincstp", &[0xd9, 0xf7], Mem::None),
    f("fdecstp", &[0xd9, 0xf6], Mem::None),
    f("fnclex", &[0xdb, 0xe2], Mem::None),
    f("fnstsw m16", m!(0xdd, 7), Mem::Out),
    f("fnstcw m16", m!(0xd9, 7), Mem::Out),
    f("fldcw m16", m!(0xd9, 5), Mem::Cw),
    f("fnstenv", m!(0xd9, 6), Mem::Out),
    f("fldenv", m!(0xd9, 4), Mem::Env),
];

/// A random 80-bit value, biased toward the special cases.
fn value(r: &mut XorShift) -> [u8; 10] {
    let sign = (r.next_u64() & 1) as u16 * 0x8000;
    let mant = r.next_u64();
    let (sig, exp): (u64, u16) = match r.next_u64() % 16 {
        0 => (0, 0),
        1 => (mant >> 1 >> (r.next_u64() % 63), 0),            // denormal
        2 => (mant | 1 << 63, 0),                              // pseudo-denormal
        3 => (1 << 63, 0x7fff),                                // infinity
        4 => (mant | 3 << 62, 0x7fff),                         // QNaN
        5 => ((mant | 1 << 63) & !(1 << 62) | 1, 0x7fff),      // SNaN
        6 => (u64::MAX, 0x7ffe),                               // near max
        7 => (mant | 1 << 63, 1 + (r.next_u64() % 80) as u16), // near the denormal range
        8 => (mant | 1 << 63, 0x7ffe - (r.next_u64() % 80) as u16), // near overflow
        9 => {
            // a small integer, or a half
            let n = r.next_u64() % 1000;
            let v = n as f64 / if r.next_u64() & 1 == 0 { 1.0 } else { 2.0 };
            return f64_to_80(if sign != 0 { -v } else { v });
        }
        10 => (mant >> 1, 1 + (r.next_u64() % 0x7ffe) as u16), // unnormal
        11 => (mant | 1 << 63, (r.next_u64() % 0x7fff) as u16 | 1), // anywhere
        _ => (mant | 1 << 63, 0x3fff - 70 + (r.next_u64() % 140) as u16), // near 1
    };
    let mut b = [0u8; 10];
    b[..8].copy_from_slice(&sig.to_le_bytes());
    b[8..].copy_from_slice(&(exp | sign).to_le_bytes());
    b
}

fn f64_to_80(v: f64) -> [u8; 10] {
    let bits = v.to_bits();
    let sign = ((bits >> 63) as u16) << 15;
    let mut b = [0u8; 10];
    if v == 0.0 {
        b[8..].copy_from_slice(&sign.to_le_bytes());
        return b;
    }
    let e = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let sig = (1u64 << 63) | ((bits & ((1 << 52) - 1)) << 11);
    b[..8].copy_from_slice(&sig.to_le_bytes());
    b[8..].copy_from_slice(&(sign | (e + 0x3fff) as u16).to_le_bytes());
    b
}

/// A random memory operand of the given kind.
fn operand(r: &mut XorShift, mem: Mem) -> Vec<u8> {
    let x = r.next_u64();
    match mem {
        Mem::F32 => {
            let v: u32 = match x % 8 {
                0 => 0x7f80_0000,
                1 => 0x7fc0_0000 | (x >> 40) as u32 & 0x3f_ffff,
                2 => 0x7f80_0001 | (x >> 40) as u32 & 0x1f_ffff,
                3 => (x >> 40) as u32 & 0x7f_ffff,
                4 => 0,
                _ => (x >> 20) as u32,
            };
            (v | ((x & 1) as u32) << 31).to_le_bytes().to_vec()
        }
        Mem::F64 => {
            let v: u64 = match x % 8 {
                0 => 0x7ff0_0000_0000_0000,
                1 => 0x7ff8_0000_0000_0000 | r.next_u64() >> 13,
                2 => 0x7ff0_0000_0000_0001 | r.next_u64() >> 14,
                3 => r.next_u64() >> 12,
                4 => 0,
                _ => r.next_u64() >> 1,
            };
            (v | (x & 1) << 63).to_le_bytes().to_vec()
        }
        Mem::F80 => value(r).to_vec(),
        Mem::I16 => ((x >> 7) as u16 >> (x % 16)).to_le_bytes().to_vec(),
        Mem::I32 => ((x >> 7) as u32 >> (x % 32)).to_le_bytes().to_vec(),
        Mem::I64 => (r.next_u64() >> (x % 64)).to_le_bytes().to_vec(),
        Mem::Bcd => {
            let mut b: Vec<u8> =
                (0..9).map(|_| ((r.next_u64() % 100) as u8 / 10) << 4 | (r.next_u64() % 10) as u8).collect();
            b.push(if x & 1 == 0 { 0 } else { 0x80 });
            b
        }
        Mem::Out => vec![0xa5; WINDOW],
        Mem::Cw => ((x >> 16) as u16 & 0x1f7f | 0x40).to_le_bytes().to_vec(),
        Mem::Env => {
            let mut e = Vec::new();
            for w in [(x >> 16) as u16 & 0x1f7f | 0x40, (x >> 32) as u16, r.next_u64() as u16] {
                e.extend_from_slice(&(w as u32 | 0xffff_0000).to_le_bytes());
            }
            e.resize(28, 0);
            e
        }
        Mem::None => Vec::new(),
    }
}

/// A random FSAVE image (32-bit protected-mode layout).
fn image(r: &mut XorShift) -> Vec<u8> {
    let x = r.next_u64();
    // Random RC and PC (PC 01 is reserved: skipped), the exception masks all set in three
    // cases of four, random otherwise.
    let pc = [0u16, 2, 3][(x % 3) as usize];
    let masks = if x & 0x30 == 0 { (x >> 8) as u16 & 0x3f } else { 0x3f };
    let fcw = 0x40 | masks | pc << 8 | (((x >> 16) & 3) as u16) << 10;
    let top = ((x >> 20) & 7) as u16;
    let cc = ((x >> 24) as u16) & 0x4700;
    let fsw = top << 11 | cc;
    // Tags: ST(0), ST(1) valid most of the time, ST(7) empty most of the time.
    let mut tw = 0u16;
    for st in 0..8u16 {
        let p = (top + st) & 7;
        let empty = match st {
            0 | 1 => r.next_u64().is_multiple_of(16),
            2 => r.next_u64().is_multiple_of(4),
            7 => !r.next_u64().is_multiple_of(8),
            _ => r.next_u64().is_multiple_of(2),
        };
        if empty {
            tw |= 3 << (2 * p);
        }
    }
    let mut img = Vec::with_capacity(108);
    for w in [fcw, fsw, tw] {
        img.extend_from_slice(&(w as u32 | 0xffff_0000).to_le_bytes());
    }
    img.extend_from_slice(&[0; 16]);
    for _ in 0..8 {
        img.extend_from_slice(&value(r));
    }
    img
}

/// Status-word bits not compared for a form: the SDM leaves them undefined, or AMD
/// processors (which the host may be) set them differently from the SDM, which popek
/// follows.
fn fsw_ignored(name: &str) -> u16 {
    const C0: u16 = 1 << 8;
    const C1: u16 = 1 << 9;
    const C2: u16 = 1 << 10;
    const C3: u16 = 1 << 14;
    if name.starts_with("ffree") {
        C0 | C1 | C2 | C3 // undefined
    } else if name.starts_with("fcomi") || name.starts_with("fucomi") || name.starts_with("fcmov") {
        C1 // SDM: 0 (without a stack fault); AMD: unchanged
    } else {
        0
    }
}

/// The compared part of an FNSAVE image: FCW, FSW, tag word, registers.
fn compared(img: &[u8], fsw_ignore: u16) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&img[0..2]);
    let fsw = u16::from_le_bytes([img[4], img[5]]) & !fsw_ignore;
    v.extend_from_slice(&fsw.to_le_bytes());
    v.extend_from_slice(&img[8..10]);
    v.extend_from_slice(&img[28..108]);
    v
}

fn describe(img: &[u8]) -> String {
    let w = |i: usize| u16::from_le_bytes([img[i], img[i + 1]]);
    let mut s = format!("fcw={:04x} fsw={:04x} ftw={:04x}", w(0), w(4), w(8));
    for i in 0..8 {
        let r = &img[28 + 10 * i..38 + 10 * i];
        let sig = u64::from_le_bytes(r[..8].try_into().unwrap());
        s += &format!(" st{i}={:04x}_{sig:016x}", u16::from_le_bytes([r[8], r[9]]));
    }
    s
}

struct Outcome {
    image: Vec<u8>,
    operand: Vec<u8>,
    flags: u32,
}

fn code(form: &Form) -> Vec<u8> {
    // frstor [ebx] ; INSN ; fnsave [ebx+OUT]
    let mut c = vec![0xdd, 0x23];
    c.extend_from_slice(form.bytes);
    c.extend_from_slice(&[0xdd, 0xb3]);
    c.extend_from_slice(&(OUT as u32).to_le_bytes());
    c
}

fn guest(form: &Form, img: &[u8], op: &[u8], flags_in: u32) -> Outcome {
    let mut t = TestBox::new(&code(form));
    t.poke(DATA_BASE, img);
    if !op.is_empty() {
        t.poke(DATA_BASE + OPERAND as u32, op);
    }
    t.cpu.state.gpr[3] = DATA_BASE;
    t.cpu.state.eflags = (t.cpu.state.eflags & !(ZF | PF | CF)) | flags_in;
    t.run(10).expect("runs");
    assert!(t.cpu.state.halted, "{}: ran to the end", form.name);
    let read = |t: &TestBox, at: usize, n: usize| -> Vec<u8> {
        (0..n).map(|i| t.cpu.mem.read_ram::<1>(DATA_BASE as usize + at + i).unwrap()[0]).collect()
    };
    Outcome {
        image: read(&t, OUT, 108),
        operand: read(&t, OPERAND, WINDOW),
        flags: t.cpu.state.eflags & (ZF | PF | CF),
    }
}

fn host(runner: &mut HostRunner, form: &Form, img: &[u8], op: &[u8], flags_in: u32) -> Outcome {
    let base = runner.scratch_base();
    let s = runner.scratch();
    s[..0x200].fill(0);
    s[..img.len()].copy_from_slice(img);
    s[OPERAND..OPERAND + op.len()].copy_from_slice(op);
    let mut input = HostState::default();
    input.gpr[HostState::RBX] = base;
    input.rflags = flags_in as u64;
    let out = runner.run(&code(form), &input).expect("host run");
    let s = runner.scratch();
    Outcome {
        image: s[OUT..OUT + 108].to_vec(),
        operand: s[OPERAND..OPERAND + WINDOW].to_vec(),
        flags: out.rflags as u32 & (ZF | PF | CF),
    }
}

/// Runs one case in both worlds: `None` if they agree, else a description of both.
fn difference(runner: &mut HostRunner, form: &Form, img: &[u8], op: &[u8], flags_in: u32) -> Option<String> {
    let g = guest(form, img, op, flags_in);
    let h = host(runner, form, img, op, flags_in);
    let ignore = fsw_ignored(form.name);
    // FNSTENV's instruction and data pointers differ between the worlds.
    let op_len = if form.name == "fnstenv" { 12 } else { WINDOW };
    let same = compared(&g.image, ignore) == compared(&h.image, ignore)
        && g.operand[..op_len] == h.operand[..op_len]
        && g.flags == h.flags;
    (!same).then(|| {
        format!(
            "{}: operand {op:02x?} flags {flags_in:#x}\n  in:    {}\n  popek: {} op {:02x?} flags {:#x}\n  host:  {} op {:02x?} flags {:#x}",
            form.name,
            describe(img),
            describe(&g.image),
            g.operand,
            g.flags,
            describe(&h.image),
            h.operand,
            h.flags
        )
    })
}

#[test]
fn x87_matches_the_host() {
    let Ok(mut runner) = HostRunner::new() else {
        eprintln!("x87 differential: SKIP (not an x86-64 host)");
        return;
    };
    let cases: usize = std::env::var("POPEK_X87_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let only = std::env::var("POPEK_X87_ONLY").ok();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (n, form) in FORMS.iter().enumerate() {
        if only.as_ref().is_some_and(|o| !form.name.contains(o.as_str())) {
            continue;
        }
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ (n as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1));
        let mut bad = 0;
        for _ in 0..cases {
            let img = image(&mut rng);
            let op = operand(&mut rng, form.mem);
            let flags_in = [0, CF, ZF, PF, CF | ZF][(rng.next_u64() % 5) as usize];
            ran += 1;
            if let Some(f) = difference(&mut runner, form, &img, &op, flags_in) {
                bad += 1;
                if bad <= 3 {
                    failures.push(f);
                }
            }
        }
        if bad > 0 {
            failures.push(format!("{}: {bad} of {cases} differ", form.name));
        }
    }
    assert!(ran > 0, "no form selected");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The FSAVE image a failure report's `in:` line describes (`fcw=… fsw=… ftw=… st0=se_sig …`,
/// registers in stack order), so that a failing input can be kept as it was printed.
fn parse_image(desc: &str) -> Vec<u8> {
    let mut img = vec![0u8; 108];
    for field in desc.split_whitespace() {
        let (name, value) = field.split_once('=').expect("name=value");
        let hex = |v: &str| u64::from_str_radix(v, 16).expect("hex");
        match name {
            "fcw" | "fsw" | "ftw" => {
                let at = match name {
                    "fcw" => 0,
                    "fsw" => 4,
                    _ => 8,
                };
                img[at..at + 4].copy_from_slice(&(hex(value) as u32 | 0xffff_0000).to_le_bytes());
            }
            st => {
                let i: usize = st.strip_prefix("st").expect("stN").parse().expect("N");
                let (se, sig) = value.split_once('_').expect("se_sig");
                img[28 + 10 * i..36 + 10 * i].copy_from_slice(&hex(sig).to_le_bytes());
                img[36 + 10 * i..38 + 10 * i].copy_from_slice(&(hex(se) as u16).to_le_bytes());
            }
        }
    }
    img
}

/// A regression: form, `in:` line, operand, EFLAGS in, the SDM's result where hosts differ.
type Regression = (&'static str, &'static str, &'static [u8], u32, Option<&'static str>);

/// Inputs on which popek once differed from the host, as the failure report printed them:
/// (form, `in:` line, operand, EFLAGS in, and where hosts differ among themselves, what the
/// SDM says and an Intel host gives, recorded from one). Each was a bug, fixed; they run on
/// every `cargo test`, whatever `POPEK_X87_CASES` says.
///
/// AMD hosts differ on the first nine: for FSCALE by ±0 and FPREM/FPREM1 by ±∞ of a
/// denormal with UE unmasked they raise UE and store the result with its exponent wrapped
/// (by 24576), where the SDM's tables leave ST(0) as it is with DE only (FSCALE: "If the
/// scaling factor is ±0, ST(0) is unchanged"; FPREM: a finite ST(0) divided by ±∞ is the
/// result) and an Intel host does so.
#[rustfmt::skip]
const REGRESSIONS: &[Regression] = &[
    // The 10^6-case run (POPEK_X87_CASES=1000000): FSCALE by ±0 and FPREM/FPREM1 by ±∞ of
    // a denormal with UE unmasked raised UE and wrapped the exponent; the x87 leaves
    // ST(0) as it is, with DE only (the SDM's tables for both).
    ("fscale", "fcw=0f66 fsw=7f00 ftw=3cc0 st0=0000_00000000000e9b6e st1=0000_0000000000000000 st2=87d2_4ecc9c7666a7fb6b st3=8c7e_408a9ae79da83a41 st4=8000_0000000000000000 st5=7fff_8000000000000000 st6=9555_2e74a950a659df73 st7=8000_0000000033e35aaf", &[], 0x0,
     Some("fcw=0f66 fsw=7d02 ftw=bee9 st0=0000_00000000000e9b6e st1=0000_0000000000000000 st2=87d2_4ecc9c7666a7fb6b st3=8c7e_408a9ae79da83a41 st4=8000_0000000000000000 st5=7fff_8000000000000000 st6=9555_2e74a950a659df73 st7=8000_0000000033e35aaf")),
    ("fscale", "fcw=0442 fsw=6e00 ftw=03cc st0=8000_0000f873ad05f3c4 st1=8000_0000000000000000 st2=3ff6_de367b7ad059802d st3=8000_cd2b43c09c159b95 st4=8000_001f444b557bbcdd st5=8000_cd862afe2f66f8f3 st6=ffb3_db5d87359f700512 st7=ffcb_a5b85fad0703396a", &[], 0x1,
     Some("fcw=0442 fsw=6c02 ftw=1bee st0=8000_0000f873ad05f3c4 st1=8000_0000000000000000 st2=3ff6_de367b7ad059802d st3=8000_cd2b43c09c159b95 st4=8000_001f444b557bbcdd st5=8000_cd862afe2f66f8f3 st6=ffb3_db5d87359f700512 st7=ffcb_a5b85fad0703396a")),
    ("fscale", "fcw=044b fsw=6b00 ftw=c3c3 st0=8000_00000000000039e7 st1=0000_0000000000000000 st2=c008_82c0000000000000 st3=7ffe_ffffffffffffffff st4=ffff_982a8d152f7ba689 st5=4008_ee00000000000000 st6=4000_f911b88d83ff288d st7=db45_b3afd52fd92a18ea", &[], 0x1,
     Some("fcw=044b fsw=6902 ftw=dbcb st0=8000_00000000000039e7 st1=0000_0000000000000000 st2=c008_82c0000000000000 st3=7ffe_ffffffffffffffff st4=ffff_982a8d152f7ba689 st5=4008_ee00000000000000 st6=4000_f911b88d83ff288d st7=db45_b3afd52fd92a18ea")),
    ("fprem", "fcw=0c6a fsw=7c00 ftw=3330 st0=0000_000000677d078290 st1=ffff_8000000000000000 st2=ffff_c40c3efdea49d0f5 st3=4005_a100000000000000 st4=c022_e3993c59259b91fd st5=0000_000000000000001d st6=8049_ac130d0d45f0b58c st7=7fff_a9cd68e6b6e56d1f", &[], 0x0,
     Some("fcw=0c6a fsw=3802 ftw=b33a st0=0000_000000677d078290 st1=ffff_8000000000000000 st2=ffff_c40c3efdea49d0f5 st3=4005_a100000000000000 st4=c022_e3993c59259b91fd st5=0000_000000000000001d st6=8049_ac130d0d45f0b58c st7=7fff_a9cd68e6b6e56d1f")),
    ("fprem", "fcw=0b67 fsw=1200 ftw=cc0c st0=0000_000000000015246c st1=ffff_8000000000000000 st2=ffba_f3879d9ac4660068 st3=ffff_8000000000000000 st4=7fff_8000000000000000 st5=c020_87b57ccb3b441c45 st6=eb2b_af1eddcb91f7135d st7=402a_8507c555ed6f3ba9", &[], 0x4,
     Some("fcw=0b67 fsw=1002 ftw=ecac st0=0000_000000000015246c st1=ffff_8000000000000000 st2=ffba_f3879d9ac4660068 st3=ffff_8000000000000000 st4=7fff_8000000000000000 st5=c020_87b57ccb3b441c45 st6=eb2b_af1eddcb91f7135d st7=402a_8507c555ed6f3ba9")),
    ("fprem", "fcw=0246 fsw=1600 ftw=fc0f st0=8000_00000009f05de62c st1=ffff_8000000000000000 st2=c016_981ae8c109ba0f21 st3=0022_e500fb80073c8ae2 st4=7fff_b44c00cb1fc93cbd st5=733d_d03f03dcfd192637 st6=8000_cb9f749ff1106da9 st7=7fff_bd4c44ec5509ff4b", &[], 0x1,
     Some("fcw=0246 fsw=1002 ftw=fcaf st0=8000_00000009f05de62c st1=ffff_8000000000000000 st2=c016_981ae8c109ba0f21 st3=0022_e500fb80073c8ae2 st4=7fff_b44c00cb1fc93cbd st5=733d_d03f03dcfd192637 st6=8000_cb9f749ff1106da9 st7=7fff_bd4c44ec5509ff4b")),
    ("fprem1", "fcw=004e fsw=2c00 ftw=03cc st0=0000_00000000000007f9 st1=ffff_8000000000000000 st2=6d17_e7a30e74e5fc0188 st3=0000_0000000fe80dcfa7 st4=c002_eda681b2d8fa8772 st5=803a_dd27189e60308d6d st6=7fff_f9d68377be7636c9 st7=ffd8_d565fd6584abab8f", &[], 0x41,
     Some("fcw=004e fsw=2802 ftw=2bce st0=0000_00000000000007f9 st1=ffff_8000000000000000 st2=6d17_e7a30e74e5fc0188 st3=0000_0000000fe80dcfa7 st4=c002_eda681b2d8fa8772 st5=803a_dd27189e60308d6d st6=7fff_f9d68377be7636c9 st7=ffd8_d565fd6584abab8f")),
    ("fprem1", "fcw=036f fsw=0300 ftw=f3c0 st0=0000_000000000103bbb7 st1=ffff_8000000000000000 st2=4019_f96645cafc9b54d6 st3=4006_c180000000000000 st4=8000_0000000000003ec9 st5=3fbc_e42965568710c1ff st6=c13d_3342d1fe1a28fbfa st7=c031_e679275e41a82e90", &[], 0x1,
     Some("fcw=036f fsw=0002 ftw=f3ca st0=0000_000000000103bbb7 st1=ffff_8000000000000000 st2=4019_f96645cafc9b54d6 st3=4006_c180000000000000 st4=8000_0000000000003ec9 st5=3fbc_e42965568710c1ff st6=c13d_3342d1fe1a28fbfa st7=c031_e679275e41a82e90")),
    ("fprem1", "fcw=076e fsw=0400 ftw=fcc0 st0=8000_00327d5917c5649a st1=7fff_8000000000000000 st2=4007_d7a158dcdebe12db st3=bfc1_e0369ba8c08f4ae9 st4=8000_00b406216216e954 st5=c006_bb00000000000000 st6=8000_0000000000000000 st7=8000_0000000000000000", &[], 0x4,
     Some("fcw=076e fsw=0002 ftw=feca st0=8000_00327d5917c5649a st1=7fff_8000000000000000 st2=4007_d7a158dcdebe12db st3=bfc1_e0369ba8c08f4ae9 st4=8000_00b406216216e954 st5=c006_bb00000000000000 st6=8000_0000000000000000 st7=8000_0000000000000000")),
    // Found while fixing those: a pseudo-denormal scaled by ±0 is written with exponent 1
    // (as FPREM by ±∞ writes it), whatever the masks.
    ("fscale", "fcw=0f66 fsw=7f00 ftw=3cc0 st0=8000_8000000000001234 st1=0000_0000000000000000 st2=87d2_4ecc9c7666a7fb6b st3=8c7e_408a9ae79da83a41 st4=8000_0000000000000000 st5=7fff_8000000000000000 st6=9555_2e74a950a659df73 st7=8000_0000000033e35aaf", &[], 0x0, None),
    ("fscale", "fcw=0f7f fsw=7f00 ftw=3cc0 st0=0000_c000000000000000 st1=8000_0000000000000000 st2=87d2_4ecc9c7666a7fb6b st3=8c7e_408a9ae79da83a41 st4=8000_0000000000000000 st5=7fff_8000000000000000 st6=9555_2e74a950a659df73 st7=8000_0000000033e35aaf", &[], 0x0, None),
    ("fprem", "fcw=0f66 fsw=7f00 ftw=3cc0 st0=8000_8000000000001234 st1=7fff_8000000000000000 st2=87d2_4ecc9c7666a7fb6b st3=8c7e_408a9ae79da83a41 st4=8000_0000000000000000 st5=7fff_8000000000000000 st6=9555_2e74a950a659df73 st7=8000_0000000033e35aaf", &[], 0x0, None),
];

#[test]
fn x87_regressions_match_the_host() {
    let Ok(mut runner) = HostRunner::new() else {
        eprintln!("x87 regressions: SKIP (not an x86-64 host)");
        return;
    };
    let intel = host_is_intel();
    let mut failures = Vec::new();
    for &(name, input, op, flags_in, sdm) in REGRESSIONS {
        let form = FORMS.iter().find(|f| f.name == name).expect("a form of that name");
        let img = parse_image(input);
        assert_eq!(describe(&img), input, "the input parses back");
        if let Some(want) = sdm {
            // The SDM's (and Intel's) result, on any host.
            let got = describe(&guest(form, &img, op, flags_in).image);
            if got != want {
                failures.push(format!("{name}: {input}\n  popek: {got}\n  SDM:   {want}"));
            }
            if !intel {
                eprintln!("x87 regressions: {name} on {input}: the SDM's result; this host's is its own");
                continue;
            }
        }
        if let Some(f) = difference(&mut runner, form, &img, op, flags_in) {
            failures.push(f);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// True on an Intel host ("GenuineIntel"), whose x87 is the reference where the SDM leaves
/// a choice or AMD's differs from the SDM.
fn host_is_intel() -> bool {
    let r = std::arch::x86_64::__cpuid(0);
    let vendor: Vec<u8> = [r.ebx, r.edx, r.ecx].iter().flat_map(|w| w.to_le_bytes()).collect();
    vendor == b"GenuineIntel"
}

/// A random double in `lo..hi`.
fn uniform(r: &mut XorShift, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * ((r.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
}

/// An extended value near the double `v`, its significand's low 11 bits (beyond the
/// double's 53) random: an operand using all 64 bits.
fn extended(v: f64, noise: u64) -> [u8; 10] {
    let mut b = f64_to_80(v);
    if v != 0.0 {
        let sig = u64::from_le_bytes(b[..8].try_into().unwrap()) | (noise & 0x7ff);
        b[..8].copy_from_slice(&sig.to_le_bytes());
    }
    b
}

/// ±m × 2^-e for a random m in 1..2 and e in `lo..hi`, all 64 bits random.
fn tiny(r: &mut XorShift, lo: u64, hi: u64) -> f64 {
    let e = lo + r.next_u64() % (hi - lo);
    let v = uniform(r, 1.0, 2.0) * 2f64.powi(-(e as i32));
    if r.next_u64() & 1 == 0 { v } else { -v }
}

/// The x87's internal π (SDM Vol. 1 8.3.8) in units of 2^-66.
const PI_X87: u128 = 0xc_90fd_aa22_168c_234c;

/// The extended value nearest k·π_x87/2, moved by a (`noise`) number of ulps up to ±`spread`:
/// the operands whose sine or cosine is close to 0, the hardest for the reduction.
fn near_half_pi_multiple(k: i64, spread: u64, noise: u64) -> [u8; 10] {
    let product = u128::from(k.unsigned_abs()) * PI_X87; // × 2^-67
    let shift = 64 - product.leading_zeros() as i32; // bits beyond 64
    let sig = ((product + (1 << (shift - 1))) >> shift) as u64;
    let sig = (sig as i64 + (noise % (2 * spread + 1)) as i64 - spread as i64) as u64;
    let exp = (16383 + 63 + shift - 67) as u16 | if k < 0 { 0x8000 } else { 0 };
    let mut b = [0u8; 10];
    b[..8].copy_from_slice(&sig.to_le_bytes());
    b[8..].copy_from_slice(&exp.to_le_bytes());
    b
}

/// A non-zero multiple, −64…64.
fn multiple(r: &mut XorShift) -> i64 {
    let k = 1 + (r.next_u64() % 64) as i64;
    if r.next_u64() & 1 == 0 { k } else { -k }
}

/// One case in sixteen, a special operand (of `value`'s kinds: zeros, denormals,
/// infinities, NaNs, unnormals…) in place of `v`.
fn or_special(r: &mut XorShift, v: [u8; 10]) -> [u8; 10] {
    if r.next_u64().is_multiple_of(16) { value(r) } else { v }
}

/// F2XM1 with a finite |x| > 1, FYL2XP1 with a finite |x| ≥ 1 − √2/2 (≈ 0.29): the SDM
/// leaves the results undefined (the host returns x unchanged for large ones).
fn outside_the_domain(name: &str, x: &[u8; 10]) -> bool {
    let se = u16::from_le_bytes([x[8], x[9]]);
    let finite = se & 0x7fff != 0x7fff;
    match name {
        "f2xm1" => finite && se & 0x7fff >= 0x3fff && ordinal(x).abs() > ordinal(&f64_to_80(1.0)),
        "fyl2xp1" => finite && ordinal(x).abs() >= ordinal(&f64_to_80(0.29)),
        _ => false,
    }
}

/// A random extended value with |x| < 2^63 (the trigonometric instructions' range).
fn large(r: &mut XorShift) -> [u8; 10] {
    let sig = r.next_u64() | 1 << 63;
    let exp = (16383 + r.next_u64() % 63) as u16 | ((r.next_u64() & 1) as u16) << 15;
    let mut b = [0u8; 10];
    b[..8].copy_from_slice(&sig.to_le_bytes());
    b[8..].copy_from_slice(&exp.to_le_bytes());
    b
}

/// A register's position among the extended values (consecutive values differ by one;
/// negative for negative values), to measure distances in ulps of the 64-bit significand.
fn ordinal(reg: &[u8]) -> i128 {
    let sig = u64::from_le_bytes(reg[..8].try_into().unwrap());
    let se = u16::from_le_bytes([reg[8], reg[9]]);
    let magnitude = (i128::from(se & 0x7fff) << 63) + i128::from(sig & !(1 << 63));
    if se & 0x8000 != 0 { -magnitude } else { magnitude }
}

/// Operands (ST(0), ST(1)) for one case: half from the SDM's domain at random, half
/// around the instruction's special points.
type Operands = fn(&mut XorShift) -> ([u8; 10], [u8; 10]);

const ZERO: [u8; 10] = [0; 10];

fn trig_operands(r: &mut XorShift) -> ([u8; 10], [u8; 10]) {
    let x = match r.next_u64() % 4 {
        0 | 1 => extended(uniform(r, -100.0, 100.0), r.next_u64()),
        2 => near_half_pi_multiple(multiple(r), 1 << 12, r.next_u64()),
        _ if r.next_u64() & 1 == 0 => large(r),
        _ => extended(tiny(r, 1, 40), r.next_u64()),
    };
    (x, ZERO)
}

fn fptan_operands(r: &mut XorShift) -> ([u8; 10], [u8; 10]) {
    let x = match r.next_u64() % 4 {
        0 | 1 => extended(uniform(r, -0.785, 0.785), r.next_u64()),
        2 => near_half_pi_multiple(multiple(r), 1 << 12, r.next_u64()),
        _ => extended(tiny(r, 1, 40), r.next_u64()),
    };
    (x, ZERO)
}

fn fpatan_operands(r: &mut XorShift) -> ([u8; 10], [u8; 10]) {
    let x = uniform(r, -1e3, 1e3);
    let y = match r.next_u64() % 4 {
        0 | 1 => uniform(r, -1e3, 1e3),
        2 => x * uniform(r, -1.0 - 1e-9, -1.0 + 1e-9).copysign(uniform(r, -1.0, 1.0)), // near the diagonals
        _ => x * tiny(r, 1, 80) * if r.next_u64() & 1 == 0 { 1.0 } else { 2f64.powi(90) }, // far from them
    };
    (extended(x, r.next_u64()), extended(y, r.next_u64()))
}

fn f2xm1_operands(r: &mut XorShift) -> ([u8; 10], [u8; 10]) {
    let x = match r.next_u64() % 4 {
        0 | 1 => uniform(r, -1.0, 1.0),
        2 => tiny(r, 1, 60),
        _ => (1.0 - tiny(r, 1, 50).abs()).copysign(uniform(r, -1.0, 1.0)),
    };
    (extended(x, r.next_u64()), ZERO)
}

fn fyl2x_operands(r: &mut XorShift) -> ([u8; 10], [u8; 10]) {
    let y = if r.next_u64() & 1 == 0 { 1.0 } else { uniform(r, -10.0, 10.0) };
    let x = match r.next_u64() % 8 {
        0..=3 => uniform(r, 1e-3, 1e3),
        4 | 5 => 1.0 + tiny(r, 1, 50),
        6 => uniform(r, 1e-300, 1e-200),
        _ => return (f64_to_80(2f64.powi((r.next_u64() % 41) as i32 - 20)), extended(y, r.next_u64())), // log2 exact
    };
    (extended(x, r.next_u64()), extended(y, r.next_u64()))
}

fn fyl2xp1_operands(r: &mut XorShift) -> ([u8; 10], [u8; 10]) {
    let y = if r.next_u64() & 1 == 0 { 1.0 } else { uniform(r, -10.0, 10.0) };
    let x = match r.next_u64() % 2 {
        0 => uniform(r, -0.29, 0.29),
        _ => tiny(r, 1, 70),
    };
    (extended(x, r.next_u64()), extended(y, r.next_u64()))
}

/// The transcendental instructions against the host's, at precision control 64 bits,
/// rounding to nearest and then in the directed modes, over random operands in each
/// instruction's domain, near its special points (multiples of π/2 for the trigonometric
/// ones, 0 and ±1 for F2XM1, 1 and powers of two for FYL2X, 0 for FYL2XP1), and one case in
/// sixteen a special operand (zero, denormal, ∞, NaN, unnormal…), one in twenty-one a stack
/// fault: the same stack, tags and status word but C1, and every result within `MAX_ULPS`
/// of the host's, in ulps of the 64-bit significand. Prints, per instruction and mode, how
/// many results are bit-identical and how often C1 is the same.
///
/// popek rounds the function's value (of the operand reduced by the x87's π, for the
/// trigonometric instructions) correctly; the host's results are within 1 ulp of that
/// (SDM Vol. 1 8.3.10). Observed on an Intel Xeon host, POPEK_X87_CASES=100000: never more
/// than 1 ulp apart in any mode; bit-identical results rounding to nearest: FSIN 98.3%,
/// FCOS 98.4%, FSINCOS 96.7%, FPTAN 96.3%, FPATAN 97.3%, F2XM1 94.2%, FYL2X 92.1%, FYL2XP1
/// 91.0% (the same in the directed modes, but FPTAN's 80.9%: near multiples of π, where
/// tan r = r + r³/3 with r³/3 below the host's internal precision, the host may round r
/// either way). C1 says whether the result was rounded up in magnitude, on the host relative
/// to its own internal approximation: rounding to nearest, the same as popek's in 96.5%
/// (FSIN FCOS FSINCOS), 95% (FPATAN), 88.6% (F2XM1), 82% (FYL2X, FYL2XP1) and 77% (FPTAN,
/// whose C1 is 1 for every result near a multiple of π) of the cases; over 99% in the
/// directed modes.
#[test]
fn x87_transcendentals_match_the_host() {
    let Ok(mut runner) = HostRunner::new() else {
        eprintln!("x87 transcendentals: SKIP (not an x86-64 host)");
        return;
    };
    const MAX_ULPS: i128 = 1;
    const MIN_C1_AGREEMENT: f64 = 70.0;
    let forms: [(&str, &[u8], Operands); 8] = [
        ("fsin", &[0xd9, 0xfe], trig_operands),
        ("fcos", &[0xd9, 0xff], trig_operands),
        ("fsincos", &[0xd9, 0xfb], trig_operands),
        ("fptan", &[0xd9, 0xf2], fptan_operands),
        ("fpatan", &[0xd9, 0xf3], fpatan_operands),
        ("f2xm1", &[0xd9, 0xf0], f2xm1_operands),
        ("fyl2x", &[0xd9, 0xf1], fyl2x_operands),
        ("fyl2xp1", &[0xd9, 0xf9], fyl2xp1_operands),
    ];
    let cases: usize = std::env::var("POPEK_X87_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let only = std::env::var("POPEK_X87_ONLY").ok();
    let mut failures = Vec::new();
    for (n, (name, bytes, operands)) in forms.iter().enumerate() {
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let form = Form { name, bytes, mem: Mem::None };
        for directed in [false, true] {
            let mode = if directed { "directed rounding" } else { "to nearest" };
            let seed = 0x2545_f491_4f6c_dd1d ^ (2 * n as u64 + 1 + u64::from(directed)).wrapping_mul(0x9e37_79b9);
            let mut rng = XorShift(seed);
            let (mut identical, mut worst, mut off, mut c1_agrees, mut ran) = (0, 0, 0, 0, 0);
            for _ in 0..cases {
                let (x, y) = operands(&mut rng);
                let (x, y) = (or_special(&mut rng, x), or_special(&mut rng, y));
                if outside_the_domain(name, &x) {
                    continue; // the SDM leaves the result undefined
                }
                ran += 1;
                let top = (rng.next_u64() & 7) as u16;
                let mut img = Vec::with_capacity(108);
                // ST(0) and ST(1) valid, the others empty; one case in twenty-one, one of ST(0),
                // ST(1) empty (stack underflow) or ST(7) valid (stack overflow, for FSINCOS and
                // FPTAN).
                let mut empty: Vec<u16> = (2..7).collect();
                match rng.next_u64() % 64 {
                    0 => empty.extend([0, 7]),
                    1 => empty.extend([1, 7]),
                    2 => {}
                    _ => empty.push(7),
                }
                let tw: u16 = empty.iter().fold(0, |t, st| t | 3 << (2 * ((top + st) & 7)));
                // Precision control 64 bits, all exceptions masked, the rounding control asked for.
                let rc = if directed { 1 + rng.next_u64() % 3 } else { 0 };
                let fcw = 0x037f | (rc as u16) << 10;
                for w in [fcw, top << 11, tw] {
                    img.extend_from_slice(&(w as u32 | 0xffff_0000).to_le_bytes());
                }
                img.extend_from_slice(&[0; 16]);
                img.extend_from_slice(&x);
                img.extend_from_slice(&y);
                img.extend_from_slice(&[0; 60]);
                let g = guest(&form, &img, &[], 0);
                let h = host(&mut runner, &form, &img, &[], 0);
                let w = |i: &[u8], at: usize| u16::from_le_bytes([i[at], i[at + 1]]);
                const C1: u16 = 1 << 9;
                let fsw_same = w(&g.image, 4) & !C1 == w(&h.image, 4) & !C1;
                if w(&g.image, 4) & C1 == w(&h.image, 4) & C1 {
                    c1_agrees += 1;
                }
                let mut ulps = 0;
                for st in 0..8 {
                    let (gr, hr) = (&g.image[28 + 10 * st..38 + 10 * st], &h.image[28 + 10 * st..38 + 10 * st]);
                    ulps = ulps.max((ordinal(gr) - ordinal(hr)).abs());
                }
                worst = worst.max(ulps);
                if ulps == 0 {
                    identical += 1;
                }
                if ulps > MAX_ULPS || !fsw_same || w(&g.image, 8) != w(&h.image, 8) {
                    off += 1;
                    if off <= 3 {
                        failures.push(format!(
                            "{name} {}: {ulps} ulps\n  popek: {}\n  host:  {}",
                            describe(&img),
                            describe(&g.image),
                            describe(&h.image)
                        ));
                    }
                }
            }
            let percent = |n: usize| 100.0 * n as f64 / ran as f64;
            eprintln!(
                "{name:8} {mode:17}: {ran} cases, {:.2}% identical, at most {worst} ulp apart, C1 the same in {:.2}%",
                percent(identical),
                percent(c1_agrees)
            );
            if off > 0 {
                failures.push(format!("{name}, {mode}: {off} of {ran} beyond {MAX_ULPS} ulp or with another status"));
            }
            // Which of FSINCOS's two roundings C1 reports the SDM does not say ("set if
            // result was rounded up"): the threshold holds popek to an Intel host's
            // choice, with which it agrees in more than 70% of cases; an AMD host's
            // agrees in only about two in three (66% to 69% here), and is reported only.
            let c1_is_the_hosts_choice = *name == "fsincos" && !host_is_intel();
            if percent(c1_agrees) < MIN_C1_AGREEMENT && !c1_is_the_hosts_choice {
                failures.push(format!("{name}, {mode}: C1 the same in only {:.2}% of {ran}", percent(c1_agrees)));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Where the FXSAVE/FXRSTOR tests put the 512-byte area (16-byte aligned in both worlds:
/// the data window and the host's scratch area are page-aligned).
const FX_AREA: usize = 0x200;
/// Where their FNSAVE writes.
const FX_OUT: usize = 0x400;
/// Where the host keeps its own MXCSR across the FXRSTOR (which loads one).
const FX_MXCSR: usize = 0x600;

/// `op [rbx/ebx + disp32]` for 0F AE /`reg` (FXSAVE /0, FXRSTOR /1, LDMXCSR /2, STMXCSR /3).
fn fx_insn(reg: u8, disp: usize) -> Vec<u8> {
    let mut c = vec![0x0f, 0xae, 0x83 | reg << 3];
    c.extend_from_slice(&(disp as u32).to_le_bytes());
    c
}

/// `fnsave [rbx/ebx + disp32]`.
fn fnsave_at(disp: usize) -> Vec<u8> {
    let mut c = vec![0xdd, 0xb3];
    c.extend_from_slice(&(disp as u32).to_le_bytes());
    c
}

/// A random FXSAVE image: random control and status words (exception flags, ES and B
/// included), abridged tags and registers; junk in the reserved bytes and the register
/// slots' upper six bytes (FXRSTOR ignores them); MXCSR 0x1F80, which the host's FXRSTOR
/// loads (and must not find reserved bits in); zero pointers.
fn fx_image(r: &mut XorShift) -> Vec<u8> {
    let mut img = vec![0u8; 512];
    let x = r.next_u64();
    let pc = [0u16, 2, 3][(x % 3) as usize];
    let masks = if x & 0x30 == 0 { (x >> 8) as u16 & 0x3f } else { 0x3f };
    let fcw = 0x40 | masks | pc << 8 | (((x >> 16) & 3) as u16) << 10;
    let fsw = (x >> 24) as u16;
    img[0..2].copy_from_slice(&fcw.to_le_bytes());
    img[2..4].copy_from_slice(&fsw.to_le_bytes());
    img[4] = (x >> 40) as u8;
    img[5] = (x >> 48) as u8;
    img[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
    for i in 0..8 {
        img[32 + 16 * i..42 + 16 * i].copy_from_slice(&value(r));
        let junk = r.next_u64().to_le_bytes();
        img[42 + 16 * i..48 + 16 * i].copy_from_slice(&junk[..6]);
    }
    img
}

/// FXSAVE after a random FRSTOR (compared: FCW, FSW, the abridged tag and its reserved
/// byte, every register slot with its six upper bytes, and the FPU state after it through
/// FNSAVE), and FXRSTOR of a random image (compared through FNSAVE: FCW, FSW, the full
/// tag word FXRSTOR made from the abridged one, the registers). Not compared: FOP and
/// the pointers (they differ between the worlds, and AMD processors save them only while
/// an exception is pending), MXCSR and the XMM area (the host has SSE, popek does not).
#[test]
fn fxsave_and_fxrstor_match_the_host() {
    let Ok(mut runner) = HostRunner::new() else {
        eprintln!("fxsave differential: SKIP (not an x86-64 host)");
        return;
    };
    let cases: usize = std::env::var("POPEK_X87_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let only = std::env::var("POPEK_X87_ONLY").ok();
    // frstor [ebx] ; fxsave [ebx+FX_AREA] ; fnsave [ebx+FX_OUT]
    let save: Vec<u8> = [&[0xdd, 0x23][..], &fx_insn(0, FX_AREA), &fnsave_at(FX_OUT)].concat();
    // fxrstor [ebx+FX_AREA] ; fnsave [ebx+FX_OUT]
    let restore: Vec<u8> = [fx_insn(1, FX_AREA), fnsave_at(FX_OUT)].concat();
    // The host keeps its MXCSR around the FXRSTOR: stmxcsr ; … ; ldmxcsr.
    let host_restore: Vec<u8> = [fx_insn(3, FX_MXCSR), restore.clone(), fx_insn(2, FX_MXCSR)].concat();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (n, name) in ["fxsave", "fxrstor"].into_iter().enumerate() {
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let mut rng = XorShift(0x5851_f42d_4c95_7f2d ^ (n as u64 + 1).wrapping_mul(0x1405_7b7e_f767_814f));
        let mut bad = 0;
        for _ in 0..cases {
            let (input, at) = if name == "fxsave" { (image(&mut rng), 0) } else { (fx_image(&mut rng), FX_AREA) };
            // popek
            let code = if name == "fxsave" { &save } else { &restore };
            let mut t = TestBox::new(code);
            t.poke(DATA_BASE, &[0xa5; 0x600]);
            t.poke(DATA_BASE + at as u32, &input);
            t.cpu.state.gpr[3] = DATA_BASE;
            t.run(10).expect("runs");
            let read = |at: usize, n: usize| -> Vec<u8> {
                (0..n).map(|i| t.cpu.mem.read_ram::<1>(DATA_BASE as usize + at + i).unwrap()[0]).collect()
            };
            let (g_area, g_out) = (read(FX_AREA, 512), read(FX_OUT, 108));
            // host
            let base = runner.scratch_base();
            let s = runner.scratch();
            s[..0x700].fill(0xa5);
            s[at..at + input.len()].copy_from_slice(&input);
            let mut hs = HostState::default();
            hs.gpr[HostState::RBX] = base;
            runner.run(if name == "fxsave" { &save } else { &host_restore }, &hs).expect("host run");
            let s = runner.scratch();
            let (h_area, h_out) = (s[FX_AREA..FX_AREA + 512].to_vec(), s[FX_OUT..FX_OUT + 108].to_vec());
            ran += 1;
            let same = if name == "fxsave" {
                g_area[..6] == h_area[..6]
                    && g_area[32..160] == h_area[32..160]
                    && compared(&g_out, 0) == compared(&h_out, 0)
            } else {
                compared(&g_out, 0) == compared(&h_out, 0)
            };
            if !same {
                bad += 1;
                if bad <= 3 {
                    failures.push(format!(
                        "{name}: input {:02x?}\n  popek: area {:02x?}\n         {}\n  host:  area {:02x?}\n         {}",
                        &input[..if name == "fxsave" { 108 } else { 160 }],
                        &g_area[..160],
                        describe(&g_out),
                        &h_area[..160],
                        describe(&h_out)
                    ));
                }
            }
        }
        if bad > 0 {
            failures.push(format!("{name}: {bad} of {cases} differ"));
        }
    }
    assert!(ran > 0 || only.is_some(), "no form ran");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
