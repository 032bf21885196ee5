//! Random bytes as guest code: whatever they decode to, the interpreter raises guest
//! exceptions or reports "unsupported"; it never panics and never touches memory outside
//! guest RAM (the process would crash).

#![allow(clippy::cast_possible_truncation)] // random words cut to bytes and registers on purpose

use popek_cpu::exception::Event;
use popek_interp::testing::{TestBox, XorShift};

#[test]
fn random_code_never_panics() {
    let cases: usize = std::env::var("POPEK_RANDOM_CODE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let mut rng = XorShift(0x005e_ed0f_c0de);
    let (mut halted, mut unsupported, mut other) = (0, 0, 0);
    for _ in 0..cases {
        let code: Vec<u8> = (0..48).map(|_| rng.next_u64() as u8).collect();
        let mut t = TestBox::new(&code);
        t.install_exception_handlers();
        for r in 0..8 {
            if r != 4 {
                // Registers point anywhere, often far outside the 1 MiB of RAM.
                t.cpu.state.gpr[r] = rng.next_u64() as u32;
            }
        }
        // Keep REP counts small: a REP over billions of elements is legal but slow.
        t.cpu.state.gpr[1] &= 0xfff;
        match t.run(64) {
            Ok(_) if t.cpu.state.halted => halted += 1,
            Ok(_) => other += 1,
            Err(Event::Unsupported(u)) => {
                assert!(!u.bytes.is_empty(), "bytes reported: {u}");
                unsupported += 1;
            }
            Err(e) => panic!("exception escaped delivery: {e:?}"),
        }
    }
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("random code: {cases} cases: {halted} halted, {unsupported} unsupported, {other} other\n").as_bytes(),
    );
    assert!(halted > cases / 2, "most random code faults into a handler and halts");
}
