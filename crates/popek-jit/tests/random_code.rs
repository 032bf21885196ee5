//! Random bytes as guest code, run block by block under the interpreter and the JIT:
//! whatever they decode to, both engines end in the same state (and neither panics).

#![allow(clippy::cast_possible_truncation)] // random words cut to bytes and registers on purpose

use popek_cpu::exception::Event;
use popek_interp::testing::{TestBox, XorShift};
use popek_jit::Jit;

/// Runs `blocks` blocks (or until the CPU halts or stops); the outcome as text.
///
/// Between blocks it sets `state.tsc` to the instructions retired so far, as the
/// machine's run loop does before every block: inside a block each engine keeps it at
/// the instruction that reads it (RDTSC), and what it holds after a block's last
/// instruction is scratch that the run loop overwrites, so it is set the same way at
/// the end too.
fn run(t: &mut TestBox, mut step: impl FnMut(&mut TestBox) -> Result<u32, Event>, blocks: usize) -> String {
    let mut retired = 0u64;
    let mut outcome = "ran".to_string();
    for _ in 0..blocks {
        if t.cpu.state.shutdown {
            outcome = "shutdown".into();
            break;
        }
        if t.cpu.state.halted {
            break;
        }
        t.cpu.state.tsc = retired;
        match step(t) {
            Ok(n) => retired += u64::from(n),
            Err(e) => {
                outcome = format!("{e:?}");
                break;
            }
        }
    }
    t.cpu.state.tsc = retired;
    outcome
}

#[test]
fn random_code_agrees_under_both_engines() {
    random_code(false, 0x00c0_ffee_1234_5678);
}

/// The same with every undefined flag flipped on the host right after each host twin
/// (`Jit::set_flip_undefined`), as a host of the other vendor might leave it: the fix-ups
/// must hide it, so a missing one fails here whatever the host.
#[test]
fn random_code_agrees_with_undefined_flags_flipped() {
    random_code(true, 0x5eed_00ff_11b5_eed0);
}

/// `POPEK_RANDOM_CODE_CASES` (default 2000) pages of random bytes from `seed`.
fn random_code(flip: bool, seed: u64) {
    let cases: usize = std::env::var("POPEK_RANDOM_CODE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let mut rng = XorShift(seed);
    for case in 0..cases {
        let code: Vec<u8> = (0..48).map(|_| rng.next_u64() as u8).collect();
        let regs: Vec<u32> = (0..8).map(|_| rng.next_u64() as u32).collect();
        let mut boxes = [TestBox::new(&code), TestBox::new(&code)];
        for t in &mut boxes {
            t.install_exception_handlers();
            for (r, v) in regs.iter().enumerate() {
                if r != 4 {
                    t.cpu.state.gpr[r] = *v;
                }
            }
            t.cpu.state.gpr[1] &= 0xfff; // keep REP counts small
        }
        let [interp, jitted] = &mut boxes;
        let a = run(interp, |t| t.interp.run_block(&mut t.cpu, &mut t.bus), 32);
        let mut jit = Jit::new(1 << 20).expect("code cache");
        jit.set_flip_undefined(flip);
        let b = run(jitted, |t| jit.run_block(&mut t.cpu, &mut t.bus), 32);
        assert_eq!(a, b, "case {case}: outcome");
        assert_eq!(interp.cpu.state, jitted.cpu.state, "case {case}: state, code {code:02x?}, regs {regs:08x?}");
        let (x, y) = (interp.cpu.mem.as_slice(), jitted.cpu.mem.as_slice());
        if let Some(i) = x.iter().zip(y).position(|(p, q)| p != q) {
            panic!(
                "case {case}: memory differs at {i:#x}: interp {:02x?} jit {:02x?}\ncode {code:02x?}\nregs {regs:08x?}\n{}",
                &x[i..i + 8],
                &y[i..i + 8],
                interp.cpu.state.dump()
            );
        }
    }
}
