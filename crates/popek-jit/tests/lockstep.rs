//! Random valid instruction sequences run under the interpreter and under the JIT
//! must leave identical CPU state and memory.

#![allow(clippy::cast_possible_truncation)] // random words cut to immediates on purpose

use popek_cpu::iced_x86::code_asm::*;
use popek_interp::testing::{CODE_BASE, DATA_BASE, TestBox, XorShift};
use popek_jit::{Jit, JitStats};

/// Destinations (not ESP: the stack; not EBX: the data pointer).
const DST: [AsmRegister32; 6] = [eax, ecx, edx, esi, edi, ebp];
const SRC: [AsmRegister32; 8] = [eax, ecx, edx, ebx, esi, edi, ebp, esp];
const R8: [AsmRegister8; 8] = [al, cl, dl, bl, ah, ch, dh, bh];

/// One random instruction; EBX points at the data area.
fn random_insn(a: &mut CodeAssembler, r: &mut XorShift) -> Result<(), IcedError> {
    let d = r.pick(&DST);
    let s = r.pick(&SRC);
    let imm = r.next_u64() as i32;
    let disp = (r.next_u64() % 64) as i32 * 4;
    match r.next_u64() % 60 {
        26 | 27 => {
            // A call to a little subroutine and back.
            let mut sub = a.create_label();
            let mut over = a.create_label();
            a.call(sub)?;
            a.jmp(over)?;
            a.set_label(&mut sub)?;
            a.add(d, s)?;
            a.ret()?;
            a.set_label(&mut over)?;
            a.nop()
        }
        24 | 25 => {
            // A forward branch over one instruction: taken or not by the flags so far (or ECX).
            let mut skip = a.create_label();
            match r.next_u64() % 3 {
                0 => a.jne(skip)?,
                1 => a.jl(skip)?,
                _ => a.loop_(skip)?,
            }
            a.add(d, s)?;
            a.set_label(&mut skip)?;
            a.nop()
        }
        0 => a.add(d, s),
        1 => a.sub(d, imm),
        2 => a.adc(d, s),
        3 => a.sbb(d, s),
        4 => a.and(d, s),
        5 => a.or(d, imm),
        6 => a.xor(d, s),
        7 => a.cmp(d, s),
        8 => a.test(d, s),
        9 => a.inc(d),
        10 => a.neg(d),
        11 => a.mov(d, s),
        12 => a.mov(d, dword_ptr(ebx + disp)),
        13 => a.mov(dword_ptr(ebx + disp), s),
        14 => a.add(d, dword_ptr(ebx + disp)),
        15 => a.lea(d, dword_ptr(s + d * 4 + disp)),
        16 => a.shl(d, (imm & 31) as u32),
        17 => a.imul_2(d, s),
        18 => a.sete(r.pick(&R8)),
        19 => a.cmovl(d, s),
        20 => a.xchg(d, r.pick(&DST)),
        21 => a.movzx(d, r.pick(&R8)),
        22 => {
            a.push(s)?;
            a.pop(d)
        }
        28 => a.shr(d, (imm & 31) as u32),
        29 => a.sar(d, (imm & 31) as u32),
        30 => a.imul_3(d, s, imm),
        31 => a.mul(s),
        32 => a.shld(d, s, (imm & 31) as u32),
        33 => a.shrd(dword_ptr(ebx + disp), s, (imm & 31) as u32),
        34 => a.shl(r.pick(&R8), (imm & 7) as u32),
        35 => a.imul(dword_ptr(ebx + disp)),
        36 => a.shr(d, cl),
        37 => a.shrd(d, s, cl),
        38 => a.sar(dword_ptr(ebx + disp), cl),
        39 => a.rol(d, (imm & 31) as u32),
        40 => a.ror(r.pick(&R8), (imm & 31) as u32),
        41 => a.rol(d, cl),
        42 => a.ror(dword_ptr(ebx + disp), cl),
        43 => a.rol(word_ptr(ebx + disp), (imm & 31) as u32),
        44 => a.ror(d, 1u32),
        45 => a.shl(d, cl),
        46 => a.sal(dword_ptr(ebx + disp), (imm & 31) as u32),
        47 => a.rol(r.pick(&R8), cl),
        48 => a.ror(word_ptr(ebx + disp), cl),
        49 => {
            // An undefined OF read right away, or after CF changed on its own.
            a.shl(d, (imm & 31) as u32)?;
            match r.next_u64() % 4 {
                0 => a.seto(r.pick(&R8)),
                1 => a.cmc(),
                2 => a.stc(),
                _ => a.clc(),
            }
        }
        50 => a.and(dword_ptr(ebx + disp), s),
        51 => a.xor(byte_ptr(ebx + disp), r.pick(&R8)),
        52 => a.shrd(d, s, (imm & 31) as u32),
        53 => a.shld(dword_ptr(ebx + disp), s, cl),
        54 => a.mul(byte_ptr(ebx + disp)),
        55 => a.imul_3(d, dword_ptr(ebx + disp), imm),
        56 => a.rol(byte_ptr(ebx + disp), (imm & 31) as u32),
        57 => a.ror(word_ptr(ebx + disp), (imm & 31) as u32),
        58 => a.sar(d, (imm & 31) as u32),
        59 => a.shr(dword_ptr(ebx + disp), cl),
        _ => a.add(r.pick(&R8), r.pick(&R8)),
    }
}

/// Runs `code` (followed by HLT) from the given registers, flags and data in both
/// engines (a fresh translator: it belongs to one CPU and its memory); the two final
/// states, or `None` if they agree; `Err` if an engine stopped with an error. Adds the
/// translator's counters to `stats`.
fn diverges(
    flip: bool,
    stats: &mut JitStats,
    code: &[u8],
    regs: &[u32],
    flags: u32,
    data: &[u8],
) -> Result<Option<String>, String> {
    let mut jit = Jit::new(64 << 10).expect("code cache");
    jit.set_flip_undefined(flip);
    let mut boxes = [TestBox::new(code), TestBox::new(code)];
    for t in &mut boxes {
        for (i, v) in regs.iter().enumerate() {
            if i != 4 {
                t.cpu.state.gpr[i] = *v;
            }
        }
        t.cpu.state.gpr[3] = DATA_BASE;
        t.cpu.state.eflags = flags;
        t.poke(DATA_BASE, data);
    }
    let [interp, jitted] = &mut boxes;
    // Both run through the HLT after the code (the translator may go on past the code's
    // end within one call, as it does in a machine).
    while !interp.cpu.state.halted && !interp.cpu.state.shutdown {
        interp.interp.run_block(&mut interp.cpu, &mut interp.bus).map_err(|e| format!("interpreter: {e:?}"))?;
    }
    while !jitted.cpu.state.halted && !jitted.cpu.state.shutdown {
        jit.run(&mut jitted.cpu, &mut jitted.bus, 1 << 20, &|_| 0).map_err(|e| format!("JIT: {e:?}"))?;
    }
    stats.ident += jit.stats.ident;
    stats.callouts += jit.stats.callouts;
    let mem = |t: &TestBox| t.cpu.mem.as_slice()[..DATA_BASE as usize + 0x1000].to_vec();
    Ok((jitted.cpu.state != interp.cpu.state || mem(jitted) != mem(interp))
        .then(|| format!("interp:\n{}jit:\n{}", interp.cpu.state.dump(), jitted.cpu.state.dump())))
}

#[test]
fn random_sequences_agree() {
    random_sequences(false, 0x1234_5678_9abc_def1);
}

/// The same with every undefined flag flipped on the host right after each host twin
/// (`Jit::set_flip_undefined`): what a host of the other vendor could leave there. The
/// JIT's fix-ups must hide it, so a missing fix-up fails this test on any host.
#[test]
fn random_sequences_agree_with_undefined_flags_flipped() {
    random_sequences(true, 0x0bad_cafe_f00d_1234);
}

/// `POPEK_LOCKSTEP_CASES` (default 400) random sequences of 40 instructions from `seed`.
fn random_sequences(flip: bool, seed: u64) {
    use popek_cpu::iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
    let cases = std::env::var("POPEK_LOCKSTEP_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let mut r = XorShift(seed);
    let mut stats = JitStats::default();
    for case in 0..cases {
        let mut a = CodeAssembler::new(32).unwrap();
        for _ in 0..40 {
            random_insn(&mut a, &mut r).unwrap();
        }
        let code = a.assemble(CODE_BASE as u64).unwrap();
        let regs: Vec<u32> = (0..8).map(|_| r.next_u64() as u32).collect();
        let flags = (r.next_u64() as u32 & 0x8d5) | 2;
        let data: Vec<u8> = (0..256).map(|_| r.next_u64() as u8).collect();
        match diverges(flip, &mut stats, &code, &regs, flags, &data) {
            Ok(None) => continue,
            Ok(Some(_)) => {}
            Err(e) => panic!("case {case}: {e}"),
        }
        // Find the shortest prefix that diverges and name its last instruction.
        let insns: Vec<_> = Decoder::with_ip(32, &code, CODE_BASE as u64, DecoderOptions::NONE).into_iter().collect();
        let mut end = 0;
        for insn in &insns {
            end += insn.len();
            // A prefix may cut a CALL from its subroutine and run off into the void: skip it.
            if let Ok(Some(states)) = diverges(flip, &mut stats, &code[..end], &regs, flags, &data) {
                let mut text = String::new();
                IntelFormatter::new().format(insn, &mut text);
                panic!("case {case}: the engines diverge after `{text}` at {:#x}\n{states}", insn.ip());
            }
        }
        panic!("case {case}: the engines diverge");
    }
    assert!(stats.ident > 0, "some instructions ran as ident");
    assert!(stats.callouts > 0, "some instructions ran as callouts");
}
