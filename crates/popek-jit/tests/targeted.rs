//! Targeted properties of the translator, each checked against the interpreter: a precise
//! page fault inside a block, code that modifies its own block, chaining across pages, a
//! code cache too small for the program, the same code run at two addresses, and a block
//! ended by a store to an interrupt controller.

use popek_cpu::state::cr0;
use popek_interp::testing::{CODE_BASE, DATA_BASE, TestBox};
use popek_jit::Jit;

/// Runs until the CPU halts (at the end, or in an exception handler).
fn run_interp(t: &mut TestBox) {
    for _ in 0..100_000 {
        if t.cpu.state.halted {
            return;
        }
        t.interp.run_block(&mut t.cpu, &mut t.bus).expect("runs");
    }
    panic!("the interpreter did not halt");
}

fn run_jit(t: &mut TestBox, jit: &mut Jit) {
    for _ in 0..100_000 {
        if t.cpu.state.halted {
            return;
        }
        jit.run(&mut t.cpu, &mut t.bus, 1 << 20, &|_| 0).expect("runs");
    }
    panic!("the JIT did not halt");
}

/// Both engines on copies of the same set-up; asserts identical CPU state and RAM, and
/// returns the JIT's box and translator for more checks.
fn both(code: &[u8], setup: impl Fn(&mut TestBox), code_cache: usize) -> (TestBox, Jit) {
    let (mut a, mut b) = (TestBox::new(code), TestBox::new(code));
    setup(&mut a);
    setup(&mut b);
    run_interp(&mut a);
    let mut jit = Jit::new(code_cache).expect("code cache");
    run_jit(&mut b, &mut jit);
    assert_eq!(a.cpu.state, b.cpu.state, "interp:\n{}jit:\n{}", a.cpu.state.dump(), b.cpu.state.dump());
    assert!(a.cpu.mem.as_slice() == b.cpu.mem.as_slice(), "RAM differs");
    (b, jit)
}

/// Maps the first MiB with 4 KiB pages: linear page `lin` to `pte(lin)`.
fn paging(t: &mut TestBox, pte: impl Fn(u32) -> u32) {
    const PD: u32 = 0x20000;
    const PT: u32 = 0x21000;
    t.poke(PD, &(PT | 3).to_le_bytes());
    for page in 0..256u32 {
        t.poke(PT + 4 * page, &pte(page << 12).to_le_bytes());
    }
    t.cpu.state.cr3 = PD;
    t.cpu.state.cr0 |= cr0::PG;
}

/// Identity-maps the first MiB with 4 KiB pages, except the page at `hole`.
fn paging_with_hole(t: &mut TestBox, hole: u32) {
    paging(t, |lin| if lin == hole { 0 } else { lin | 3 });
}

/// Exception handlers that halt, and paging with a hole at `hole`.
fn faulting_with_hole(t: &mut TestBox, hole: u32) {
    t.install_exception_handlers();
    paging_with_hole(t, hole);
}

#[test]
fn page_fault_inside_a_block_is_precise() {
    let hole = DATA_BASE + 0x1000;
    // mov eax, 5 ; cmp eax, 7 (CF, SF, AF set) ; mov [hole+8], ecx (#PF) ; mov eax, 9
    let mut code = vec![0xb8, 5, 0, 0, 0, 0x83, 0xf8, 0x07, 0x89, 0x0d];
    code.extend((hole + 8).to_le_bytes());
    code.extend([0xb8, 9, 0, 0, 0]);
    let (t, jit) = both(
        &code,
        |t| {
            faulting_with_hole(t, hole);
        },
        1 << 20,
    );
    assert_eq!(t.halted_vector(), Some(14), "#PF");
    assert_eq!(t.cpu.state.cr2, hole + 8);
    assert_eq!(t.stack(0), 2, "error code: write, not present, supervisor");
    assert_eq!(t.stack(1), CODE_BASE + 8, "EIP of the faulting MOV");
    let frame_flags = t.stack(3);
    assert_eq!(frame_flags & 0x8d5, 0x91, "flags as CMP left them: CF, AF, SF");
    assert_eq!(t.cpu.state.gpr[0], 5, "the MOV after the fault did not run");
    assert!(jit.stats.rewritten > 0, "the store was translated inline");
}

#[test]
fn a_store_into_its_own_block_takes_effect() {
    // mov byte [CODE_BASE + 7], 0x42 ; mov eax, 1 — whose immediate the store replaces.
    let target = CODE_BASE + 7 + 1;
    let mut code = vec![0xc6, 0x05];
    code.extend(target.to_le_bytes());
    code.push(0x42);
    code.extend([0xb8, 1, 0, 0, 0]);
    let (t, _) = both(&code, |_| {}, 1 << 20);
    assert_eq!(t.cpu.state.gpr[0], 0x42, "the patched instruction ran");
}

#[test]
fn chains_cross_pages() {
    // page 1: mov ecx, 1000 ; jmp page2
    // page 1 + 0x800: back: add eax, ecx ; jmp page2
    // page 2: dec ecx ; jnz back ; hlt
    let mut code = vec![0x90; 0x1010];
    let jmp = |from: u32, to: u32| {
        let mut v = vec![0xe9];
        v.extend(to.wrapping_sub(from + 5).to_le_bytes());
        v
    };
    let page2 = CODE_BASE + 0x1000;
    let back = CODE_BASE + 0x800;
    let mut put = |at: u32, bytes: &[u8]| {
        let o = (at - CODE_BASE) as usize;
        code[o..o + bytes.len()].copy_from_slice(bytes);
    };
    put(CODE_BASE, &[0xb9, 0xe8, 0x03, 0, 0]);
    put(CODE_BASE + 5, &jmp(CODE_BASE + 5, page2));
    put(back, &[0x01, 0xc8]);
    put(back + 2, &jmp(back + 2, page2));
    let mut tail = vec![0x49, 0x0f, 0x85];
    tail.extend(back.wrapping_sub(page2 + 7).to_le_bytes());
    tail.push(0xf4);
    put(page2, &tail);
    let (t, jit) = both(&code, |_| {}, 1 << 20);
    assert_eq!(t.cpu.state.gpr[0], (1..1000).sum::<u32>(), "EAX = 999 + 998 + … + 1");
    assert!(jit.stats.links >= 2, "both directions chained: {:?}", jit.stats);
    assert!(jit.stats.exits_chain_miss < 10, "the loop ran chained, not through the run loop");
}

#[test]
fn a_full_code_cache_evicts_and_the_program_still_runs() {
    // 300 blocks: add eax, i ; jmp next — far more translation than 16 KiB holds.
    let mut code = Vec::new();
    for i in 0..300u32 {
        code.extend([0x05]);
        code.extend(i.to_le_bytes());
        code.extend([0xeb, 0x00]); // jmp to the next instruction: ends the block
    }
    let (t, jit) = both(&code, |_| {}, 16 << 10);
    assert_eq!(t.cpu.state.gpr[0], (0..300).sum::<u32>());
    assert!(jit.stats.evicted_regions > 0 && jit.stats.evicted > 0, "the cache filled up: {:?}", jit.stats);
    assert_eq!(jit.stats.flushes, 0, "it evicted, never flushed: {:?}", jit.stats);
}

#[test]
fn the_same_code_at_two_addresses_runs_at_each() {
    // Linear page ALIAS maps the code's physical page too. The first block runs at
    // CODE_BASE and then at ALIAS, where CALL must push an ALIAS return address.
    //   +0:  inc ebx ; cmp ebx, 2 ; je done
    //   +6:  jmp ALIAS
    //   +11: done: call next
    //   +16: next: pop edx ; hlt
    const ALIAS: u32 = 0x80000;
    let mut code = vec![0x43, 0x83, 0xfb, 0x02, 0x74, 0x05, 0xe9];
    code.extend(ALIAS.wrapping_sub(CODE_BASE + 11).to_le_bytes());
    code.extend([0xe8, 0, 0, 0, 0, 0x5a, 0xf4]);
    let (t, jit) = both(&code, |t| paging(t, |lin| if lin == ALIAS { CODE_BASE | 3 } else { lin | 3 }), 1 << 20);
    assert_eq!(t.cpu.state.gpr[3], 2, "EBX: the block ran twice");
    assert_eq!(t.cpu.state.gpr[2], ALIAS + 16, "EDX: the return address at the alias");
    assert_eq!(t.cpu.state.eip, ALIAS + 18, "halted at the alias");
    assert!(jit.stats.translated >= 4, "the first block was translated for each address: {:?}", jit.stats);
}

/// The translation log (`popek run --trace translate`) has every translation, in order,
/// at the EIP it runs at: the same code reached at an alias is listed at the alias.
#[test]
fn the_translation_log_has_each_translation_at_its_eip() {
    const ALIAS: u32 = 0x80000;
    let mut code = vec![0x43, 0x83, 0xfb, 0x02, 0x74, 0x05, 0xe9];
    code.extend(ALIAS.wrapping_sub(CODE_BASE + 11).to_le_bytes());
    code.extend([0xe8, 0, 0, 0, 0, 0x5a, 0xf4]);
    let mut t = TestBox::new(&code);
    paging(&mut t, |lin| if lin == ALIAS { CODE_BASE | 3 } else { lin | 3 });
    let mut jit = Jit::new(1 << 20).expect("code cache");
    jit.set_translation_log(true);
    run_jit(&mut t, &mut jit);
    let log = jit.take_translations();
    assert!(jit.take_translations().is_empty(), "taken");
    assert_eq!(log.len() as u64, jit.stats.translated);
    let eips: Vec<u32> = log.iter().map(|l| l.eip).collect();
    assert_eq!(eips[..3], [CODE_BASE, CODE_BASE + 6, ALIAS], "in the order they were made");
    let lines = log[2].instruction_lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with(&format!("  {ALIAS:#010x}  43 ")), "{lines:?}");
    assert!(
        lines[0].ends_with("inc ebx                        ident     register-only: runs as its host twin"),
        "{lines:?}"
    );
    assert!(lines[2].contains("rewritten relative branch"), "{lines:?}");
    assert!(log.iter().all(|l| l.host_bytes > 0 && l.evicted == 0 && l.after_deliveries == 0));
    assert_eq!(log[0].mode(), "32-bit code, CPL 0, paging on, flat segments");
}

#[test]
fn indirect_jumps_and_calls_chain_through_the_target_table() {
    //        mov ecx, 500 ; mov ebx, tail ; mov esi, leaf
    //  loop: jmp ebx
    //  tail: call esi ; dec ecx ; jnz loop ; hlt
    //  leaf: add eax, ecx ; ret
    let leaf = CODE_BASE + 0x40;
    let tail = CODE_BASE + 0x20;
    let mut code = vec![0x90; 0x48];
    let mut put = |at: u32, bytes: &[u8]| {
        let o = (at - CODE_BASE) as usize;
        code[o..o + bytes.len()].copy_from_slice(bytes);
    };
    put(CODE_BASE, &[0xb9, 0xf4, 0x01, 0, 0]); // mov ecx, 500
    put(CODE_BASE + 5, &[0xbb]);
    put(CODE_BASE + 6, &tail.to_le_bytes()); // mov ebx, tail
    put(CODE_BASE + 10, &[0xbe]);
    put(CODE_BASE + 11, &leaf.to_le_bytes()); // mov esi, leaf
    put(CODE_BASE + 15, &[0xff, 0xe3]); // loop: jmp ebx
    put(tail, &[0xff, 0xd6, 0x49]); // tail: call esi ; dec ecx
    put(tail + 3, &[0x75, (CODE_BASE + 15).wrapping_sub(tail + 5).to_le_bytes()[0], 0xf4]); // jnz loop ; hlt
    put(leaf, &[0x01, 0xc8, 0xc3]); // leaf: add eax, ecx ; ret
    let (t, jit) = both(&code, |_| {}, 1 << 20);
    assert_eq!(t.cpu.state.gpr[0], (1..=500).sum::<u32>(), "EAX = 500 + 499 + … + 1");
    let exits = jit.stats.exits_chain_miss + jit.stats.exits_end;
    assert!(exits < 20, "the loop ran chained, not through the run loop: {:?}", jit.stats);
}

#[test]
fn rep_string_elements_count_against_the_chaining_budget() {
    //        mov ebx, 100
    //  loop: mov edi, DATA_BASE ; mov ecx, 4096 ; rep stosb ; dec ebx ; jnz loop ; hlt
    const N: u32 = 4096;
    let mut code = vec![0xbb, 100, 0, 0, 0, 0xbf];
    code.extend(DATA_BASE.to_le_bytes());
    code.push(0xb9);
    code.extend(N.to_le_bytes());
    code.extend([0xf3, 0xaa, 0x4b, 0x75, 0xf1, 0xf4]);
    both(&code, |_| {}, 1 << 20);
    // A call of translated code does no more work than MAX_BUDGET ordinary instructions
    // (elements, here), so that the run loop, which looks at the wall clock between calls,
    // gets control back often: each element counts as an instruction against the budget.
    let mut t = TestBox::new(&code);
    let mut jit = Jit::new(1 << 20).expect("code cache");
    let mut most = 0;
    while !t.cpu.state.halted && !t.cpu.state.shutdown {
        let before = i64::from(t.cpu.state.gpr[3]); // EBX: copies left (0 before the first MOV)
        jit.run(&mut t.cpu, &mut t.bus, popek_jit::MAX_BUDGET, &|_| 0).expect("runs");
        most = most.max(before - i64::from(t.cpu.state.gpr[3]));
    }
    assert!(
        most * i64::from(N) <= (popek_jit::MAX_BUDGET + u64::from(N)) as i64,
        "{most} copies of {N} bytes in one call"
    );
}

/// Encodings a newer CPU reads differently run as popek's CPU (a P6) runs them, under the
/// translator as under the interpreter: TZCNT/LZCNT encodings as BSF/BSR (a host twin
/// would be TZCNT/LZCNT again: the F3 stays on the decoded instruction), the hint NOPs,
/// `rep ret` and the MPX `bnd` branches, and POPCNT as #UD.
#[test]
fn prefix_repurposed_encodings_agree_with_the_interpreter() {
    use popek_cpu::block::DECODER_OPTIONS;
    use popek_cpu::iced_x86::Decoder;
    use popek_cpu::state::flags::{CF, ZF};
    use popek_jit::Treatment;
    let cases: [(&str, &[u8], u32); 11] = [
        ("f3 0f bc: bsf of 1", &[0xf3, 0x0f, 0xbc, 0xc3], 1),
        ("f3 0f bc: bsf of 0", &[0xf3, 0x0f, 0xbc, 0xc3], 0),
        ("f3 0f bd: bsr of 1", &[0xf3, 0x0f, 0xbd, 0xc3], 1),
        ("f3 0f bd: bsr of 0x8000_0000", &[0xf3, 0x0f, 0xbd, 0xc3], 0x8000_0000),
        ("f3 0f bd: bsr of 0", &[0xf3, 0x0f, 0xbd, 0xc3], 0),
        ("66 f3 0f bc: bsf ax,bx", &[0x66, 0xf3, 0x0f, 0xbc, 0xc3], 0x0100),
        ("f3 0f bc: bsf eax,[ebx]", &[0xf3, 0x0f, 0xbc, 0x03], DATA_BASE),
        (
            "hint NOPs and PAUSE",
            &[
                0xf3, 0x0f, 0x1e, 0xfb, 0xf3, 0x0f, 0x1e, 0xc8, 0x0f, 0x18, 0x03, 0x0f, 0x1c, 0x03, 0x0f, 0x19, 0x03,
                0xf3, 0x90,
            ],
            DATA_BASE,
        ),
        ("f3 c3 rep ret", &[0xeb, 0x02, 0xf3, 0xc3, 0xe8, 0xf9, 0xff, 0xff, 0xff, 0x40], 0),
        (
            "f2 bnd call, ret, je",
            &[0xeb, 0x02, 0xf2, 0xc3, 0xf2, 0xe8, 0xf8, 0xff, 0xff, 0xff, 0xf2, 0x74, 0x01, 0x40],
            0,
        ),
        ("f3 0f b8: popcnt is #UD", &[0x40, 0xf3, 0x0f, 0xb8, 0xc3, 0x40], 0xff),
    ];
    for (name, code, ebx) in cases {
        let (t, _) = both(
            code,
            |t| {
                t.install_exception_handlers();
                t.poke(DATA_BASE, &0x0001_0000u32.to_le_bytes());
                t.cpu.state.gpr[0] = 0x1234;
                t.cpu.state.gpr[3] = ebx;
                t.cpu.state.eflags |= CF; // BSF/BSR leave CF alone; TZCNT/LZCNT would not
            },
            1 << 20,
        );
        let vector = t.halted_vector();
        if name.contains("popcnt") {
            assert_eq!(vector, Some(6), "{name}: #UD");
            assert_eq!(t.cpu.state.gpr[0], 0x1235, "{name}: the INC before ran, the one after did not");
        } else {
            assert_eq!(vector, None, "{name}: no exception");
        }
        if name.contains("bsf of 1") {
            assert_eq!((t.cpu.state.gpr[0], t.cpu.state.eflags & (ZF | CF)), (0, CF), "{name}: BSF, not TZCNT");
        }
    }
    for bytes in [[0xf3, 0x0f, 0xbc, 0xc3], [0xf3, 0x0f, 0xbd, 0xc3]] {
        let insn = Decoder::with_ip(32, &bytes, 0, DECODER_OPTIONS).decode();
        assert_ne!(
            popek_jit::classify(&insn, popek_cpu::block::BlockKey::FLAT),
            Treatment::Ident,
            "{insn}: no host twin with its F3"
        );
    }
}

/// The rel8 of a short jump to offset `target` from the instruction ending at `next`.
fn rel8(target: usize, next: usize) -> u8 {
    i8::try_from(target as isize - next as isize).expect("a short jump").to_le_bytes()[0]
}

/// The guest address of the next byte appended to `code` (loaded at `CODE_BASE`).
fn at(code: &[u8]) -> u32 {
    CODE_BASE + u32::try_from(code.len()).expect("a small program")
}

/// Little-endian bytes of `v` appended to `code`.
fn le(code: &mut Vec<u8>, v: u32) {
    code.extend(v.to_le_bytes());
}

/// NOPs up to guest address `addr`, then a function there: an instruction `opcode imm32`
/// (`add eax` or `mov eax`, say) and RET.
fn function_at(code: &mut Vec<u8>, addr: u32, opcode: u8, imm: u32) {
    code.resize((addr - CODE_BASE) as usize, 0x90);
    code.push(opcode);
    le(code, imm);
    code.push(0xc3);
}

/// `call target` (rel32) appended to `code`.
fn call(code: &mut Vec<u8>, target: u32) {
    code.push(0xe8);
    let next = at(code) + 4;
    le(code, target.wrapping_sub(next));
}

/// A counter beside the loop's code, in the same page: each store reaches the slow path
/// (the page holds code) but overlaps no decoded byte, so nothing is invalidated and the
/// loop keeps running chained.
#[test]
fn data_beside_code_invalidates_nothing() {
    let counter = CODE_BASE + 0x800;
    // mov ecx, 1000 ; L: inc dword [counter] ; add eax, [counter] ; dec ecx ; jnz L ; hlt
    let mut code = vec![0xb9];
    le(&mut code, 1000);
    let l = code.len();
    code.extend([0xff, 0x05]);
    le(&mut code, counter);
    code.extend([0x03, 0x05]);
    le(&mut code, counter);
    code.extend([0x49, 0x75, rel8(l, code.len() + 3), 0xf4]);
    let (t, jit) = both(&code, |_| {}, 1 << 20);
    assert_eq!(t.cpu.state.gpr[0], (1..=1000).sum::<u32>());
    assert_eq!((jit.stats.invalidated, jit.stats.flushes), (0, 0), "{:?}", jit.stats);
    assert_eq!(t.cpu.smc_stats.code, 0);
    assert!(t.cpu.smc_stats.data >= 1000, "{:?}", t.cpu.smc_stats);
    assert!(jit.stats.exits_chain_miss < 10, "the loop ran chained: {:?}", jit.stats);
}

/// A loop patches the immediate of a function in another page and calls it: each patch
/// invalidates that function's translation alone, and the chain (CALL) and the
/// indirect-target entry (RET) that led into it are unlinked, so the next call runs the
/// new bytes. Nothing is flushed; once f has been rewritten twice it is interpreted.
#[test]
fn patching_a_function_invalidates_it_alone_and_unlinks_its_chains() {
    let f = CODE_BASE + 0x1000;
    // mov ecx, 100 ; L: mov [f+1], ecx ; call f ; dec ecx ; jnz L ; hlt
    let mut code = vec![0xb9];
    le(&mut code, 100);
    let l = code.len();
    code.extend([0x89, 0x0d]);
    le(&mut code, f + 1);
    call(&mut code, f);
    code.extend([0x49, 0x75, rel8(l, code.len() + 3), 0xf4]);
    // f: add eax, imm32 ; ret
    function_at(&mut code, f, 0x05, 0);
    let (t, jit) = both(&code, |_| {}, 1 << 20);
    assert_eq!(t.cpu.state.gpr[0], (1..=100).sum::<u32>(), "every call ran the patched immediate");
    assert_eq!(jit.stats.flushes, 0);
    // The first call links the CALL to f's translation; the first patch unlinks it. (The
    // loop's block then runs on past each store into f without chaining, so later
    // translations of f are not linked to before they are dropped.)
    assert!(jit.stats.invalidated >= 2 && jit.stats.unlinked >= 1, "links into f unlinked: {:?}", jit.stats);
    // Rewritten again and again, f is interpreted from then on instead of translated,
    // decoded afresh for each call and no longer cached (nothing left to drop)...
    assert!(jit.stats.interpreted_blocks >= 90, "{:?}", jit.stats);
    let cache = jit.cache_stats();
    assert!(cache.decoded >= 100 && cache.invalidated <= 3, "{cache:?}");
    // ... and the store into it no longer ends the translated loop block: no translation
    // is made from f's page.
    assert!(jit.stats.exits_stopped <= 3, "{:?}", jit.stats);
}

/// A function that patches its own next instruction on every call: once it is decoded
/// afresh for every run (never cached), the store into the running block still ends the
/// block after the store, and the ADD runs with the new immediate.
#[test]
fn code_decoded_for_every_run_still_sees_its_own_store() {
    let f = CODE_BASE + 0x1000;
    // mov ecx, 100 ; L: call f ; dec ecx ; jnz L ; hlt
    let mut code = vec![0xb9];
    le(&mut code, 100);
    let l = code.len();
    call(&mut code, f);
    code.extend([0x49, 0x75, rel8(l, code.len() + 3), 0xf4]);
    code.resize(0x1000, 0x90);
    // f: mov [f+7], ecx ; add eax, imm32 (at f+7) ; ret
    code.extend([0x89, 0x0d]);
    le(&mut code, f + 7);
    code.push(0x05);
    le(&mut code, 0);
    code.push(0xc3);
    let (t, jit) = both(&code, |_| {}, 1 << 20);
    assert_eq!(t.cpu.state.gpr[0], (1..=100).sum::<u32>(), "each ADD ran with the immediate just stored");
    let cache = jit.cache_stats();
    assert!(jit.stats.interpreted_blocks >= 90 && cache.invalidated <= 6, "{:?} {cache:?}", jit.stats);
}

/// The same within one page: the loop reaches the patched block by a `jmp rel32` that
/// linking patched in place; invalidating the target puts the jump back to its miss stub.
#[test]
fn a_patched_jump_into_an_invalidated_block_is_put_back() {
    // mov ecx, 50 ; L: mov [g+1], ecx ; jmp g ; ... g: add eax, imm32 ; dec ecx ; jnz L ; hlt
    let g = CODE_BASE + 0x400;
    let mut code = vec![0xb9];
    le(&mut code, 50);
    let l = at(&code);
    code.extend([0x89, 0x0d]);
    le(&mut code, g + 1);
    code.push(0xe9);
    let next = at(&code) + 4;
    le(&mut code, g.wrapping_sub(next));
    code.resize(0x400, 0x90);
    code.push(0x05);
    le(&mut code, 0);
    code.extend([0x49, 0x0f, 0x85]);
    let next = at(&code) + 4;
    le(&mut code, l.wrapping_sub(next));
    code.push(0xf4);
    let (t, jit) = both(&code, |_| {}, 1 << 20);
    assert_eq!(t.cpu.state.gpr[0], (1..=50).sum::<u32>());
    assert_eq!(jit.stats.flushes, 0);
    assert!(jit.stats.invalidated >= 2 && jit.stats.unlinked >= 1, "{:?}", jit.stats);
}

/// A bus whose local-APIC page (0xFEE00000) is an interrupt controller: a store there
/// may open an interrupt window.
#[derive(Default)]
struct ApicBus {
    stores: Vec<(u32, u32)>,
}

impl popek_cpu::Bus for ApicBus {
    fn port_read(&mut self, _: popek_cpu::Port, size: popek_cpu::AccessSize) -> u32 {
        size.ones()
    }
    fn port_write(&mut self, _: popek_cpu::Port, _: popek_cpu::AccessSize, _: u32) {}
    fn mmio_read(&mut self, _: popek_cpu::PhysAddr, size: popek_cpu::AccessSize) -> u32 {
        size.ones()
    }
    fn mmio_write(&mut self, addr: popek_cpu::PhysAddr, _: popek_cpu::AccessSize, value: u32) {
        self.stores.push((addr.0, value));
    }
    fn write_may_open_interrupt_window(&self, addr: popek_cpu::PhysAddr) -> bool {
        addr.0 & !0xfff == 0xfee0_0000
    }
}

/// A store to an interrupt controller ends the block right after it, in both engines (the
/// run loop then looks for an interrupt, as after an OUT); a store to other MMIO does not.
#[test]
fn a_store_to_an_interrupt_controller_ends_the_block() {
    for (addr, retired) in [(0xfee0_00b0u32, 1u64), (0xfed0_0000, 4)] {
        // mov [addr], eax ; inc eax ; inc eax ; (hlt)
        let mut code = vec![0xa3];
        code.extend(addr.to_le_bytes());
        code.extend([0x40, 0x40]);
        let (mut a, mut b) = (TestBox::new(&code), TestBox::new(&code));
        let (mut bus_a, mut bus_b) = (ApicBus::default(), ApicBus::default());
        let n = a.interp.run_block(&mut a.cpu, &mut bus_a).expect("runs");
        let mut jit = Jit::new(1 << 20).expect("code cache");
        let m = jit.run(&mut b.cpu, &mut bus_b, 1 << 20, &|_| 0).expect("runs");
        assert_eq!((u64::from(n), u64::from(m)), (retired, retired), "store to {addr:#x}");
        assert_eq!(a.cpu.state.eip, b.cpu.state.eip);
        assert_eq!(bus_a.stores, vec![(addr, 0)]);
        assert_eq!(bus_b.stores, bus_a.stores);
        assert!(!a.cpu.interrupt_window && !b.cpu.interrupt_window, "the flag is consumed");
    }
}

/// x87 instructions run as helpers inside translated blocks: the FPU state, EFLAGS written
/// by FCOMI and read by an inline Jcc and SETcc after it, memory stores, and the #MF of a
/// pending unmasked exception agree with the interpreter's.
#[test]
fn x87_helpers_agree_with_the_interpreter() {
    let d = DATA_BASE.to_le_bytes();
    let d8 = (DATA_BASE + 8).to_le_bytes();
    let mut code = vec![
        0xdb, 0xe3, // fninit
        0xd9, 0xeb, // fldpi
        0xd9, 0xe8, // fld1
        0xdb, 0xf1, // fcomi st0, st1 (1 < pi: CF)
        0x72, 0x01, // jb +1
        0x40, // inc eax (skipped)
        0x0f, 0x92, 0xc3, // setb bl
        0xde, 0xf9, // fdivp st1, st0 (pi / 1)
        0xd9, 0xfa, // fsqrt
        0xdd, 0x1d, d8[0], d8[1], d8[2], d8[3], // fstp qword [D+8]
        0xd9, 0x2d, d[0], d[1], d[2], d[3], // fldcw [D] (ZM clear)
        0xd9, 0xee, // fldz
        0xd9, 0xe8, // fld1
        0xd8, 0xf1, // fdiv st0, st1 (ZE, unmasked)
        0xdf, 0xe0, // fnstsw ax
        0x9b, // fwait: #MF
    ];
    code.extend([0x90; 4]);
    let (t, _) = both(
        &code,
        |t| {
            t.install_exception_handlers();
            t.cpu.state.cr0 |= cr0::NE;
            t.poke(DATA_BASE, &0x037bu16.to_le_bytes());
        },
        1 << 20,
    );
    assert_eq!(t.halted_vector(), Some(16), "#MF");
    assert_eq!(t.cpu.state.gpr[3] & 0xff, 1, "SETB after FCOMI");
    assert_eq!(t.cpu.state.gpr[0] & 0xffff_0000, 0, "INC skipped, FNSTSW in AX");
    let v = u64::from_le_bytes(t.cpu.mem.read_ram::<8>((DATA_BASE + 8) as usize).unwrap());
    // √π of the 80-bit π, rounded to double: one ulp above the double-precision √π.
    assert_eq!(v, std::f64::consts::PI.sqrt().to_bits() + 1);
}

/// Accesses through FS and GS holding 4 GiB data segments with non-zero bases (Linux's
/// per-CPU segment) are rewritten inline with the base added, and agree with the
/// interpreter; a page fault through one reports the linear address (base + offset). The
/// offsets alone fall in a page the soft-TLB holds, so a missing base would read there.
#[test]
fn fs_and_gs_with_a_base_are_rewritten_and_agree() {
    use popek_cpu::Seg;
    let hole = DATA_BASE + 0x3000;
    // twice (the first round fills the soft-TLB, the second takes the inline path):
    //   mov edi, [DATA_BASE] ; mov eax, fs:[ebx] ; inc dword fs:[DATA_BASE]
    //   lock dec dword gs:[ecx+4] ; mov gs:[DATA_BASE+0x10], eax ; dec edx ; jnz back
    // mov al, fs:[hole - 0x1000] (#PF at the hole: FS's base is 0x1000)
    let mut code = vec![0x8b, 0x3d];
    code.extend(DATA_BASE.to_le_bytes());
    code.extend([0x64, 0x8b, 0x03, 0x64, 0xff, 0x05]);
    code.extend(DATA_BASE.to_le_bytes());
    code.extend([0xf0, 0x65, 0xff, 0x49, 0x04, 0x65, 0xa3]);
    code.extend((DATA_BASE + 0x10).to_le_bytes());
    code.extend([0x4a, 0x75, 0xe2, 0x64, 0xa0]);
    code.extend((hole - 0x1000).to_le_bytes());
    let setup = |t: &mut TestBox| {
        faulting_with_hole(t, hole);
        t.cpu.state.seg[Seg::Fs as usize].base = 0x1000;
        t.cpu.state.seg[Seg::Gs as usize].base = 0x2000;
        t.cpu.state.gpr[3] = DATA_BASE + 0x18; // EBX
        t.cpu.state.gpr[1] = DATA_BASE + 0x40; // ECX
        t.cpu.state.gpr[2] = 2; // EDX: two rounds
        t.poke(DATA_BASE + 0x1018, &0x1234_5678u32.to_le_bytes());
        t.poke(DATA_BASE + 0x1000, &41u32.to_le_bytes());
        t.poke(DATA_BASE + 0x2044, &7u32.to_le_bytes());
    };
    let (t, jit) = both(&code, setup, 1 << 20);
    assert!(t.cpu.state.four_gib_data(Seg::Fs) && t.cpu.state.four_gib_data(Seg::Gs), "the test's segments");
    assert_eq!(t.cpu.state.gpr[0] & 0xffff_ff00, 0x1234_5600);
    assert_eq!(t.peek32(DATA_BASE + 0x1000), 43, "inc dword fs:[DATA_BASE], twice");
    assert_eq!(t.peek32(DATA_BASE + 0x2044), 5, "lock dec dword gs:[ecx+4], twice");
    assert_eq!(t.peek32(DATA_BASE + 0x2010), 0x1234_5678, "mov gs:[DATA_BASE+0x10], eax");
    assert_eq!(t.halted_vector(), Some(14), "#PF through FS");
    assert_eq!(t.cpu.state.cr2, hole);
    assert!(jit.stats.rewritten >= 5, "rewritten inline: {:?}", jit.stats);
}

/// RDTSC, computed inline: at CPL 3 with CR4.TSD set it raises #GP(0) as in the
/// interpreter; otherwise both give EDX:EAX = the TSC at the instruction plus the offset.
#[test]
fn inline_rdtsc_agrees_and_honours_cr4_tsd() {
    use popek_cpu::state::cr4;
    // nop ; nop ; rdtsc ; hlt
    let code = [0x90, 0x90, 0x0f, 0x31, 0xf4];
    for (cpl, tsd) in [(0u8, false), (0, true), (3, false), (3, true)] {
        let (mut a, mut b) = (TestBox::new(&code), TestBox::new(&code));
        for t in [&mut a, &mut b] {
            t.cpu.state.cpl = cpl;
            t.cpu.state.tsc = 1000;
            t.cpu.state.tsc_offset = 0x1_0000_0000;
            if tsd {
                t.cpu.state.cr4 |= cr4::TSD;
            }
        }
        let interp = a.interp.run_block(&mut a.cpu, &mut a.bus);
        let mut jit = Jit::new(1 << 20).expect("code cache");
        let jitted = jit.run_block(&mut b.cpu, &mut b.bus);
        assert_eq!(format!("{interp:?}"), format!("{jitted:?}"), "CPL {cpl}, TSD {tsd}");
        assert_eq!(a.cpu.state, b.cpu.state, "CPL {cpl}, TSD {tsd}");
        if cpl == 3 && tsd {
            // #GP(0) delivered: EAX untouched, the error code 0 on the handler's stack.
            assert_eq!(b.cpu.state.gpr[0], 0);
            assert_ne!(b.cpu.state.eip, CODE_BASE + 4, "not past the RDTSC");
        } else {
            assert_eq!((b.cpu.state.gpr[0], b.cpu.state.gpr[2]), (1002, 1), "TSC 1000 + 2 instructions, offset 2^32");
        }
    }
}

/// FXSAVE and FXRSTOR as helpers inside a translated block: the area written, the state
/// brought back after FNINIT, and the #GP of a misaligned area (precise: the instructions
/// before it retired) agree with the interpreter's.
#[test]
fn fxsave_and_fxrstor_agree_with_the_interpreter() {
    let a = (DATA_BASE + 0x100).to_le_bytes();
    let b = (DATA_BASE + 0x308).to_le_bytes();
    let d8 = (DATA_BASE + 8).to_le_bytes();
    let mut code = vec![
        0xdb, 0xe3, // fninit
        0xd9, 0xeb, // fldpi
        0xd9, 0xe8, // fld1
        0xd9, 0xee, // fldz
        0x0f, 0xae, 0x05, a[0], a[1], a[2], a[3], // fxsave [D+0x100]
        0xdb, 0xe3, // fninit
        0x0f, 0xae, 0x0d, a[0], a[1], a[2], a[3], // fxrstor [D+0x100]
        0xde, 0xc1, // faddp (0 + 1)
        0xde, 0xc9, // fmulp (1 * pi)
        0xdd, 0x1d, d8[0], d8[1], d8[2], d8[3], // fstp qword [D+8]
        0x40,  // inc eax
        0x0f, 0xae, 0x05, b[0], b[1], b[2], b[3], // fxsave [D+0x308]: #GP(0)
    ];
    code.extend([0x90; 4]);
    let (t, _) = both(
        &code,
        |t| {
            t.install_exception_handlers();
            t.poke(DATA_BASE, &[0xa5; 0x600]);
        },
        1 << 20,
    );
    assert_eq!(t.halted_vector(), Some(13), "#GP");
    assert_eq!(t.cpu.state.gpr[0], 1, "the INC before it retired");
    let v = u64::from_le_bytes(t.cpu.mem.read_ram::<8>((DATA_BASE + 8) as usize).unwrap());
    assert_eq!(v, std::f64::consts::PI.to_bits());
    assert_eq!(t.cpu.mem.read_ram::<1>((DATA_BASE + 0x100 + 4) as usize).unwrap()[0], 0xe0, "abridged tags");
    assert_eq!(t.cpu.mem.read_ram::<1>((DATA_BASE + 0x308) as usize).unwrap()[0], 0xa5, "nothing written");
}

/// CR0.NE = 0: the FDIV that leaves an unmasked exception pending asserts FERR# and ends
/// the translated block there (the run loop must look for the IRQ 13 at once); the FWAIT
/// that follows freezes, EIP on it, with no #MF. The same state as the interpreter's.
#[test]
fn legacy_fpu_error_reporting_agrees_with_the_interpreter() {
    let d = DATA_BASE.to_le_bytes();
    let mut code = vec![
        0xdb, 0xe3, // fninit
        0xd9, 0x2d, d[0], d[1], d[2], d[3], // fldcw [D] (ZM clear)
        0xd9, 0xee, // fldz
        0xd9, 0xe8, // fld1
        0xd8, 0xf1, // fdiv st0, st1 (ZE, unmasked): FERR#
        0x40, // inc eax
        0x9b, // fwait: frozen
        0x40, // inc eax
    ];
    code.extend([0x90; 4]);
    let fwait = CODE_BASE + 15;
    let (t, _) = both(
        &code,
        |t| {
            t.install_exception_handlers();
            t.poke(DATA_BASE, &0x037bu16.to_le_bytes());
        },
        1 << 20,
    );
    assert_eq!(t.halted_vector(), None, "no #MF");
    assert_eq!((t.cpu.state.eip, t.cpu.state.gpr[0]), (fwait, 1), "frozen on the FWAIT");
    assert!(t.cpu.state.x87.ferr);
}

/// A bus whose port 0x80 reads purely (as the PC's POST port) and 0x81 not; it counts reads.
#[derive(Default)]
struct PortBus {
    reads: u32,
}

impl popek_cpu::Bus for PortBus {
    fn port_read(&mut self, port: popek_cpu::Port, _: popek_cpu::AccessSize) -> u32 {
        self.reads += 1;
        u32::from(port.0) + 1
    }
    fn port_write(&mut self, _: popek_cpu::Port, _: popek_cpu::AccessSize, _: u32) {}
    fn mmio_read(&mut self, _: popek_cpu::PhysAddr, size: popek_cpu::AccessSize) -> u32 {
        size.ones()
    }
    fn mmio_write(&mut self, _: popek_cpu::PhysAddr, _: popek_cpu::AccessSize, _: u32) {}
    fn port_read_is_pure(&self, port: popek_cpu::Port, _: popek_cpu::AccessSize) -> bool {
        port.0 == 0x80
    }
}

/// An `IN` of a port the bus calls pure does not return to the run loop: the loop around
/// it runs chained in one call. Any other `IN` returns after each read. Both agree with
/// the interpreter.
#[test]
fn a_pure_port_read_chains_on() {
    for (port, pure) in [(0x80u8, true), (0x81, false)] {
        // mov ecx, 100 ; back: in al, port ; add ebx, eax ; dec ecx ; jnz back ; hlt
        let code = [0xb9, 100, 0, 0, 0, 0xe4, port, 0x01, 0xc3, 0x49, 0x75, 0xf9, 0xf4];
        let (mut a, mut b) = (TestBox::new(&code), TestBox::new(&code));
        let (mut bus_a, mut bus_b) = (PortBus::default(), PortBus::default());
        while !a.cpu.state.halted {
            a.interp.run_block(&mut a.cpu, &mut bus_a).expect("runs");
        }
        let mut jit = Jit::new(1 << 20).expect("code cache");
        let mut calls = 0;
        while !b.cpu.state.halted && calls < 1000 {
            jit.run(&mut b.cpu, &mut bus_b, 1 << 20, &|_| 0).expect("runs");
            calls += 1;
        }
        assert_eq!(a.cpu.state, b.cpu.state, "port {port:#x}");
        assert_eq!(b.cpu.state.gpr[3], 100 * (u32::from(port) + 1), "EBX summed every read");
        assert_eq!((bus_a.reads, bus_b.reads), (100, 100));
        if pure {
            assert!(calls <= 3, "port {port:#x}: {calls} calls, {:?}", jit.stats);
        } else {
            assert!(calls >= 100, "port {port:#x}: {calls} calls, {:?}", jit.stats);
        }
    }
}

/// Appends `n` blocks `add reg, i ; jmp next` (`add_opcode`: the ModRM-less `add eax`
/// form 0x05, or 0x81 with `modrm`), each 0x90 bytes after the last, so that some chain
/// to the next on the same page (a patched jump) and some across pages (a checked link);
/// the last one jumps on to what is appended next.
fn filler(code: &mut Vec<u8>, n: u32, add: &[u8]) {
    for i in 0..n {
        let start = at(code);
        code.extend(add);
        le(code, i);
        code.push(0xe9);
        let next = at(code) + 4;
        le(code, (start + 0x90).wrapping_sub(next));
        code.resize((start + 0x90 - CODE_BASE) as usize, 0x90);
    }
}

/// A loop over far more code than the cache holds: the cache evicts its oldest region
/// again and again (never flushing), and the chains into and out of evicted code are
/// dropped and made again, so the program computes what the interpreter does.
#[test]
fn a_loop_larger_than_the_code_cache_evicts_region_by_region() {
    // mov ecx, 20 ; L: 300 × (add eax, i ; jmp next) ; dec ecx ; jnz L ; hlt
    let mut code = vec![0xb9];
    le(&mut code, 20);
    let l = at(&code);
    filler(&mut code, 300, &[0x05]);
    code.extend([0x49, 0x0f, 0x85]);
    let next = at(&code) + 4;
    le(&mut code, l.wrapping_sub(next));
    let (t, jit) = both(&code, |_| {}, 16 << 10);
    assert_eq!(t.cpu.state.gpr[0], 20 * (0..300).sum::<u32>());
    let s = jit.stats;
    assert!(s.evicted_regions > 16 && s.evicted >= s.evicted_regions, "many passes over the regions: {s:?}");
    assert_eq!(s.flushes, 0, "{s:?}");
    assert!(s.translated > 300 && s.links > 300, "{s:?}");
}

/// Code writes while the cache evicts: each pass of a loop runs through more code than
/// the cache holds (evicting region after region), calls a function, patches the
/// function's immediate and calls it again. The write invalidates the translation just
/// made among the evicting ones (and the chain and return-target entry into it), and
/// the next call sees the new bytes.
#[test]
fn code_writes_while_the_cache_evicts() {
    let g = CODE_BASE + 0xc000;
    // mov ecx, 10 ; L: 150 × (add ebx, i ; jmp next) ; call g ; mov [g+1], ecx ; call g
    //   ; dec ecx ; jnz L ; hlt
    let mut code = vec![0xb9];
    le(&mut code, 10);
    let l = at(&code);
    filler(&mut code, 150, &[0x81, 0xc3]);
    for store in [false, true, false] {
        if store {
            code.extend([0x89, 0x0d]);
            le(&mut code, g + 1);
        } else {
            call(&mut code, g);
        }
    }
    code.extend([0x49, 0x0f, 0x85]);
    let next = at(&code) + 4;
    le(&mut code, l.wrapping_sub(next));
    code.push(0xf4);
    // g: add eax, imm32 ; ret
    function_at(&mut code, g, 0x05, 0);
    let (t, jit) = both(&code, |_| {}, 16 << 10);
    let (mut eax, mut imm) = (0u32, 0u32);
    for ecx in (1..=10).rev() {
        eax += imm;
        imm = ecx;
        eax += imm;
    }
    assert_eq!(t.cpu.state.gpr[0], eax, "every call of g ran the immediate last stored");
    assert_eq!(t.cpu.state.gpr[3], 10 * (0..150).sum::<u32>());
    let s = jit.stats;
    assert!(s.evicted_regions > 16 && s.invalidated >= 2 && s.unlinked >= 1, "{s:?}");
    assert_eq!(s.flushes, 0, "{s:?}");
}

/// An explicit flush drops every translation; the program goes on, translated afresh.
#[test]
fn a_flush_drops_every_translation_and_the_run_goes_on() {
    // mov ecx, 200 ; L: add eax, ecx ; dec ecx ; jnz L ; hlt
    let code = [0xb9, 200, 0, 0, 0, 0x01, 0xc8, 0x49, 0x75, 0xfb, 0xf4];
    let mut t = TestBox::new(&code);
    let mut jit = Jit::new(1 << 20).expect("code cache");
    let mut flushed = false;
    for _ in 0..100_000 {
        if t.cpu.state.halted {
            break;
        }
        jit.run(&mut t.cpu, &mut t.bus, 50, &|_| 0).expect("runs");
        if !flushed && t.cpu.state.gpr[1] < 100 {
            jit.flush_code_cache();
            flushed = true;
        }
    }
    assert!(t.cpu.state.halted && flushed);
    assert_eq!(t.cpu.state.gpr[0], (1..=200).sum::<u32>());
    assert_eq!(jit.stats.flushes, 1);
    assert!(jit.stats.translated >= 3, "the loop was translated again after the flush: {:?}", jit.stats);
}

/// `mov eax, [ebx] ; mov ecx, [ebx + 8] ; add eax, ecx ; mov [ebx + 4], eax ; mov edx, [ebx + 12]`:
/// four accesses through EBX that share one page check ([`PageGroup`]).
fn page_group_code() -> Vec<u8> {
    vec![0x8b, 0x03, 0x8b, 0x4b, 0x08, 0x01, 0xc8, 0x89, 0x43, 0x04, 0x8b, 0x53, 0x0c]
}

/// Accesses that share one page check agree with the interpreter: inside one page (no
/// handler runs), across a page boundary (with paging on the check misses: the group's
/// instructions run in their handlers, and the block goes on; with paging off the store
/// map's byte covers the next page too), and on a page that is not mapped (a precise #PF
/// at the first access, with the flags of the instruction before it).
#[test]
fn accesses_sharing_a_page_check_agree_with_the_interpreter() {
    // mov esi, 2 ; again: <the group> ; dec esi ; jnz again
    let mut twice = vec![0xbe, 2, 0, 0, 0];
    twice.extend(page_group_code());
    twice.extend([0x4e, 0x75, 0xf0]);
    for paged in [false, true] {
        for (ebx, crossing) in [(DATA_BASE + 0x100, false), (DATA_BASE + 0xffc, true)] {
            let (t, jit) = both(
                &twice,
                |t| {
                    if paged {
                        paging(t, |lin| lin | 3);
                    }
                    t.cpu.state.gpr[3] = ebx;
                    for k in 0..4u32 {
                        t.poke(ebx + 4 * k, &(0x1111_1111 * (k + 1)).to_le_bytes());
                    }
                },
                1 << 20,
            );
            assert_eq!(t.cpu.state.gpr[0], 0x1111_1111 + 0x3333_3333, "EAX at {ebx:#x}");
            assert_eq!(t.cpu.state.gpr[2], 0x4444_4444, "EDX at {ebx:#x}");
            // With paging on a miss runs the group's five instructions in their handlers
            // (four MOVs, the ADD between them): across a page every time, inside one
            // page only the first time (the TLB was empty). With paging off the first
            // miss opens the page in the store map (a refill), and the check hits.
            let movs =
                jit.callouts_by_instruction().iter().find(|c| c.0 == popek_cpu::iced_x86::Mnemonic::Mov).map(|c| c.1);
            let want = match (paged, crossing) {
                (false, _) => None,
                (true, false) => Some(4),
                (true, true) => Some(8),
            };
            assert_eq!(movs, want, "{ebx:#x}, paging {paged}: {:?}", jit.callouts_by_instruction());
            assert_eq!(jit.stats.exits_stopped, 0, "{ebx:#x}: {:?}", jit.stats);
        }
    }
    let hole = DATA_BASE + 0x3000;
    let mut code = vec![0x83, 0xf9, 0x07]; // cmp ecx, 7: CF, SF, AF
    code.extend(page_group_code());
    let (t, _) = both(
        &code,
        |t| {
            faulting_with_hole(t, hole);
            t.cpu.state.gpr[3] = hole + 0x10;
            t.cpu.state.gpr[1] = 5;
        },
        1 << 20,
    );
    assert_eq!(t.halted_vector(), Some(14), "#PF");
    assert_eq!(t.cpu.state.cr2, hole + 0x10);
    assert_eq!(t.stack(1), CODE_BASE + 3, "EIP of the first access");
    assert_eq!(t.stack(3) & 0x8d5, 0x91, "flags as CMP left them: CF, AF, SF");
}

/// Lazy flags: a block that ends right after a CMP leaves its operands, not its flags,
/// and the next block agrees with the interpreter whether it reads them (ADC, after an
/// INC that keeps CF), takes a fault with them in its exception frame, or calls out.
#[test]
fn flags_left_lazy_by_a_cmp_agree_with_the_interpreter() {
    // mov ecx, 5 ; again: cmp ecx, 3 ; jmp next ; next: inc eax ; adc ebx, 0 ;
    // dec ecx ; jnz again
    let code = [
        0xb9, 5, 0, 0, 0, // mov ecx, 5
        0x83, 0xf9, 0x03, // cmp ecx, 3
        0xeb, 0x00, // jmp next
        0x40, // inc eax
        0x83, 0xd3, 0x00, // adc ebx, 0
        0x49, // dec ecx
        0x75, 0xf4, // jnz again
    ];
    let (t, _) = both(&code, |t| (t.cpu.state.gpr[0], t.cpu.state.gpr[3]) = (0, 0), 1 << 20);
    assert_eq!(t.cpu.state.gpr[3], 2, "EBX counts the CMPs that borrowed (ECX = 2, 1)");
    assert_eq!(t.cpu.state.gpr[0], 5);
    // cmp ecx, 7 (ECX = 5: CF, SF, AF) ; jmp next ; next: mov eax, [hole] (#PF), or
    // inc dword [hole] (#PF in an instruction that sets all flags but CF), or add [hole], 1
    let hole = DATA_BASE + 0x3000;
    for (access, nop_after) in [(&[0xa1][..], false), (&[0xff, 0x05][..], true), (&[0x83, 0x05][..], true)] {
        let mut code = vec![0x83, 0xf9, 0x07, 0xeb, 0x00];
        code.extend(access);
        code.extend((hole + 4).to_le_bytes());
        if access[0] == 0x83 {
            code.push(1);
        }
        if nop_after {
            code.extend([0x31, 0xc0]); // xor eax, eax: every flag set again
        }
        let (t, _) = both(
            &code,
            |t| {
                faulting_with_hole(t, hole);
                t.cpu.state.gpr[1] = 5;
            },
            1 << 20,
        );
        assert_eq!(t.halted_vector(), Some(14), "#PF at {access:02x?}");
        assert_eq!(t.stack(1), CODE_BASE + 5, "EIP of the access");
        assert_eq!(t.stack(3) & 0x8d5, 0x91, "flags as CMP left them: CF, AF, SF ({access:02x?})");
    }
    // test eax, eax (EAX = 0: ZF, PF) ; jmp next ; next: pushfd (a callout off a flat
    // stack, or its inline form on one) ; pop edx
    let code = [0x85, 0xc0, 0xeb, 0x00, 0x9c, 0x5a];
    let (t, _) = both(&code, |t| t.cpu.state.gpr[0] = 0, 1 << 20);
    assert_eq!(t.cpu.state.gpr[2] & 0x8d5, 0x44, "ZF and PF, as TEST left them");
}

/// CALL through a register and through memory, rewritten inline (the target into EIP, the
/// return address pushed through the soft TLB), agree with the interpreter: on to the
/// target and back, again and again; and, with the stack's page not mapped, a precise #PF
/// at the CALL with nothing pushed.
#[test]
fn indirect_calls_agree_with_the_interpreter() {
    let func = CODE_BASE + 0x40;
    let table = DATA_BASE + 0x20;
    // mov ecx, 10 ; again: mov eax, func ; call eax ; call [table] ; dec ecx ; jnz again ;
    // (hlt) ... func: inc ebx ; ret
    let mut code = vec![0xb9, 10, 0, 0, 0, 0xb8];
    code.extend(func.to_le_bytes());
    code.extend([0xff, 0xd0, 0xff, 0x15]);
    code.extend(table.to_le_bytes());
    code.extend([0x49, 0x75, 0xf0, 0xf4]);
    code.resize(0x40, 0x90);
    code.extend([0x43, 0xc3]);
    let (t, jit) = both(
        &code,
        |t| {
            t.poke(table, &func.to_le_bytes());
            t.cpu.state.gpr[3] = 0;
        },
        1 << 20,
    );
    assert_eq!(t.cpu.state.gpr[3], 20, "EBX: two calls per round, ten rounds");
    let calls =
        jit.callouts_by_instruction().iter().find(|c| c.0 == popek_cpu::iced_x86::Mnemonic::Call).map_or(0, |c| c.1);
    assert!(calls <= 2, "the calls ran inline, but for the first lookups: {calls} in handlers");
    // mov ecx, 3 ; again: jmp [table] → at func2: dec ecx ; jnz again ; hlt, and
    // jmp eax to the same place.
    let func2 = CODE_BASE + 0x20;
    for jmp in [vec![0xff, 0x25], vec![0xff, 0xe0]] {
        let mut code = vec![0xb9, 3, 0, 0, 0, 0xb8];
        code.extend(func2.to_le_bytes());
        code.extend(&jmp);
        if jmp[1] == 0x25 {
            code.extend(table.to_le_bytes());
        }
        code.resize(0x20, 0x90);
        let back = (10i8 - (0x20 + 3)).to_le_bytes()[0];
        code.extend([0x49, 0x75, back, 0xf4]);
        let (t, _) = both(&code, |t| t.poke(table, &func2.to_le_bytes()), 1 << 20);
        assert_eq!(t.cpu.state.gpr[1], 0, "the loop through JMP {jmp:02x?} ran out");
    }
    // call [hole]: #PF at the CALL, for the target's address, nothing pushed.
    let hole = DATA_BASE + 0x5000;
    let mut code = vec![0xff, 0x15];
    code.extend((hole + 8).to_le_bytes());
    let (t, _) = both(
        &code,
        |t| {
            faulting_with_hole(t, hole);
        },
        1 << 20,
    );
    assert_eq!(t.halted_vector(), Some(14), "#PF");
    assert_eq!(t.cpu.state.cr2, hole + 8, "the target's address");
    assert_eq!(t.stack(1), CODE_BASE, "EIP of the CALL");
}

/// Flags that only a fault would see (no later instruction reads them before they are all
/// set again) are pushed before a memory access instead of spilled: a #PF there still shows
/// them in its frame, and without a fault the block agrees with the interpreter.
#[test]
fn flags_only_a_fault_sees_are_right_in_its_frame() {
    let hole = DATA_BASE + 0x1000;
    for (ebx, faults) in [(hole, true), (DATA_BASE, false)] {
        // cmp eax, 7 (EAX = 5: CF, SF, AF) ; mov [ebx + 8], ecx ; add edx, 1 ; mov eax, 9
        let code = [0x83, 0xf8, 0x07, 0x89, 0x4b, 0x08, 0x83, 0xc2, 0x01, 0xb8, 9, 0, 0, 0];
        let (t, _) = both(
            &code,
            |t| {
                faulting_with_hole(t, hole);
                (t.cpu.state.gpr[0], t.cpu.state.gpr[3]) = (5, ebx);
            },
            1 << 20,
        );
        if faults {
            assert_eq!(t.halted_vector(), Some(14), "#PF");
            assert_eq!(t.stack(1), CODE_BASE + 3, "EIP of the store");
            assert_eq!(t.stack(3) & 0x8d5, 0x91, "flags as CMP left them: CF, AF, SF");
        } else {
            assert_eq!(t.cpu.state.gpr[0], 9, "ran to the end");
        }
    }
    // The same after ADD and SUB of a constant, whose flags the slow path sets again from
    // the register (ECX - 0x10, ECX + 0x10) instead of saving them: the frame (in RAM,
    // which `both` compares) agrees with the interpreter's.
    for (op, ecx) in [(0xc1u8, 0xffff_fff8u32), (0xe9, 0x0000_0008), (0xc1, 0x7fff_fff8)] {
        // add/sub ecx, 0x10 ; mov [ebx + 8], ecx ; add edx, 1
        let code = [0x83, op, 0x10, 0x89, 0x4b, 0x08, 0x83, 0xc2, 0x01];
        let (t, _) = both(
            &code,
            |t| {
                faulting_with_hole(t, hole);
                (t.cpu.state.gpr[1], t.cpu.state.gpr[3]) = (ecx, hole);
            },
            1 << 20,
        );
        assert_eq!(t.halted_vector(), Some(14), "#PF after {op:#x} on {ecx:#x}");
        assert_ne!(t.stack(3) & 0x8d5, 0, "some flag set by {op:#x} on {ecx:#x}");
    }
}

/// PUSHAD and POPAD, one inline lookup for all 32 bytes, agree with the interpreter: with
/// the span inside a page, and across two (the handler stores them one by one).
#[test]
fn pushad_and_popad_agree_with_the_interpreter() {
    for esp in [DATA_BASE + 0x800, DATA_BASE + 0x1010] {
        // pushad ; xor eax, eax ; mov ebx, 7 ; popad ; pushad ; pop ecx (the EDI slot)
        let code = [0x60, 0x31, 0xc0, 0xbb, 7, 0, 0, 0, 0x61, 0x60, 0x59];
        let (t, _) = both(
            &code,
            |t| {
                t.cpu.state.gpr = [1, 2, 3, 4, esp, 6, 7, 8];
            },
            1 << 20,
        );
        assert_eq!(t.cpu.state.gpr[0], 1, "EAX back from the stack ({esp:#x})");
        assert_eq!(t.cpu.state.gpr[3], 4, "EBX back from the stack");
        assert_eq!(t.cpu.state.gpr[1], 8, "ECX = the EDI slot of the second PUSHAD");
        assert_eq!(t.cpu.state.gpr[4], esp - 28, "ESP");
    }
}

/// PUSH Sreg inline: the selector as 16 bits, the slot's upper half kept, ESP down by 4, as
/// in the interpreter; across a page boundary through the handler.
#[test]
fn push_segment_registers_agree_with_the_interpreter() {
    for esp in [DATA_BASE + 0x800, DATA_BASE + 0x1001] {
        // push es ; push cs ; push ss ; push ds ; push fs ; push gs ; pop eax ; pop ebx
        let code = [0x06, 0x0e, 0x16, 0x1e, 0x0f, 0xa0, 0x0f, 0xa8, 0x58, 0x5b];
        let (t, _) = both(
            &code,
            |t| {
                t.cpu.state.gpr[4] = esp;
                for k in 1..=6u32 {
                    t.poke(esp - 4 * k, &0xdead_0000u32.to_le_bytes());
                }
            },
            1 << 20,
        );
        let gs = u32::from(t.cpu.state.seg[popek_cpu::Seg::Gs as usize].selector);
        assert_eq!(t.cpu.state.gpr[0], 0xdead_0000 | gs, "GS's selector under the slot's old upper half ({esp:#x})");
        assert_eq!(t.cpu.state.gpr[4], esp - 16);
    }
}

/// A bus on which an interrupt is always waiting (for [`iret_goes_on_unless_an_interrupt_waits`]).
#[derive(Default)]
struct Waiting(popek_cpu::NullBus);

impl popek_cpu::Bus for Waiting {
    fn port_read(&mut self, port: popek_cpu::Port, size: popek_cpu::AccessSize) -> u32 {
        self.0.port_read(port, size)
    }
    fn port_write(&mut self, port: popek_cpu::Port, size: popek_cpu::AccessSize, value: u32) {
        self.0.port_write(port, size, value)
    }
    fn mmio_read(&mut self, addr: popek_cpu::PhysAddr, size: popek_cpu::AccessSize) -> u32 {
        self.0.mmio_read(addr, size)
    }
    fn mmio_write(&mut self, addr: popek_cpu::PhysAddr, size: popek_cpu::AccessSize, value: u32) {
        self.0.mmio_write(addr, size, value)
    }
    fn interrupt_may_be_pending(&self) -> bool {
        true
    }
}

/// A guest that enters a handler with INT 0x40 100 times (the handler saves DS, loads it,
/// pops it back and IRETs), then loads DS with a segment based at 0x10000 (the block mode
/// changes), ES with a descriptor whose Accessed bit is clear, and FS with a selector
/// beyond the GDT (#GP). GDT: 0x08 code, 0x10 data, 0x18 data at 0x10000, 0x20 data not
/// yet accessed.
fn segment_loads_setup(t: &mut TestBox) {
    use popek_interp::testing::GDT_BASE;
    t.install_exception_handlers();
    t.poke(GDT_BASE + 0x18, &0x00cf_9301_0000_ffffu64.to_le_bytes());
    t.poke(GDT_BASE + 0x20, &0x00cf_9200_0000_ffffu64.to_le_bytes());
    t.cpu.state.gdtr.limit = 8 * 5 - 1;
    // Gate 0x40 → 0xb000 (32-bit interrupt gate, DPL 0).
    const HANDLER: u32 = 0xb000;
    let gate = u64::from((HANDLER & 0xffff) | 0x08 << 16) | u64::from((HANDLER & 0xffff_0000) | 0x8e00) << 32;
    t.poke(popek_interp::testing::IDT_BASE + 8 * 0x40, &gate.to_le_bytes());
    // push ds ; mov dx, 0x10 ; mov ds, dx ; pop ds ; inc ebx ; iretd
    t.poke(HANDLER, &[0x1e, 0x66, 0xba, 0x10, 0x00, 0x8e, 0xda, 0x1f, 0x43, 0xcf]);
    t.poke(DATA_BASE + 0x20, &0x1234_5678u32.to_le_bytes());
    t.cpu.state.eflags |= popek_cpu::state::flags::IF;
}

fn segment_loads_code() -> Vec<u8> {
    vec![
        0xb9, 100, 0, 0, 0, // mov ecx, 100
        0xcd, 0x40, // L: int 0x40
        0x49, // dec ecx
        0x75, 0xfb, // jnz L
        0xb8, 0x18, 0, 0, 0, // mov eax, 0x18
        0x8e, 0xd8, // mov ds, ax
        0xa1, 0x20, 0, 0, 0, // mov eax, [0x20]
        0xba, 0x20, 0, 0, 0, // mov edx, 0x20
        0x8e, 0xc2, // mov es, dx
        0x6a, 0x58, // push 0x58
        0x0f, 0xa1, // pop fs
    ]
}

/// MOV and POP to DS, ES and FS take the translator's fast path, or its callout where that
/// declines (the mode changes, the Accessed bit is set, a #GP): the same in both engines.
#[test]
fn segment_loads_agree_with_the_interpreter() {
    let (t, jit) = both(&segment_loads_code(), segment_loads_setup, 1 << 20);
    assert_eq!(t.halted_vector(), Some(13), "POP FS of 0x58 raised #GP");
    assert_eq!(t.stack(0), 0x58, "error code: the selector");
    assert_eq!(t.cpu.state.gpr[3], 100, "EBX: the handler ran 100 times");
    assert_eq!(t.cpu.state.gpr[0], 0x1234_5678, "EAX: read through DS based at 0x10000");
    assert_eq!(t.cpu.state.seg[popek_cpu::Seg::Es as usize].selector, 0x20);
    let es_hi = t.peek32(popek_interp::testing::GDT_BASE + 0x24);
    assert_ne!(es_hi & 1 << 8, 0, "ES's descriptor is marked accessed");
    let s = jit.stats;
    let exits = s.exits_end + s.exits_chain_miss + s.exits_stopped;
    assert!(exits < 30, "translated code went on by itself after each INT and IRET: {s:?}");
}

/// After an IRET that sets IF the engine goes on by itself only if no interrupt waits:
/// otherwise it returns to the run loop, which delivers it.
#[test]
fn iret_goes_on_unless_an_interrupt_waits() {
    fn calls(bus: &mut dyn popek_cpu::Bus) -> u32 {
        let mut t = TestBox::new(&segment_loads_code());
        segment_loads_setup(&mut t);
        let mut jit = Jit::new(1 << 20).expect("code cache");
        let mut n = 0;
        while !t.cpu.state.halted {
            jit.run(&mut t.cpu, bus, 1 << 20, &|_| 0).expect("runs");
            n += 1;
        }
        assert_eq!(t.cpu.state.gpr[3], 100);
        n
    }
    let quiet = calls(&mut popek_cpu::NullBus::default());
    let waiting = calls(&mut Waiting::default());
    assert!(quiet < 20, "{quiet} calls with no interrupt waiting");
    assert!(waiting >= 100, "{waiting} calls with an interrupt waiting: one per IRET at least");
}

/// Flags a block leaves as `lahf` and `seto` gave them (after anything but a CMP, TEST,
/// AND, OR or XOR), or as the operands of `cmp result, 0` (after AND, OR, XOR): the next
/// block's readers (SETcc, PUSHFD) and a fault's frame see what the interpreter
/// computes, the flags popek's table fixes (AF after AND, OF after a shift by 2) too.
#[test]
fn flags_left_raw_at_a_block_end_agree_with_the_interpreter() {
    let setters: [(&[u8], u32); 7] = [
        (&[0x83, 0xc0, 0x01], 0x7fff_ffff), // add eax, 1: OF, SF, AF, PF
        (&[0x83, 0xe8, 0x01], 0),           // sub eax, 1: CF, SF, AF, PF
        (&[0x25, 0x80, 0, 0, 0], 0xff),     // and eax, 0x80 (as cmp eax, 0): AF undefined (0)
        (&[0x31, 0xc0], 5),                 // xor eax, eax (as cmp eax, 0): ZF, PF
        (&[0x0d, 0, 0, 0, 0x80], 1),        // or eax, 0x80000000 (as cmp eax, 0): SF
        (&[0xc1, 0xe8, 0x02], 0x8000_0003), // shr eax, 2: CF; OF and AF undefined (0)
        (&[0x0f, 0xaf, 0xc0], 0x0001_0001), // imul eax, eax: CF, OF
    ];
    for (setter, eax) in setters {
        // mov ecx, 3 ; again: mov eax, EAX ; <setter> ; jmp next ; next: seto bl ;
        // setc bh ; pushfd ; pop edx ; dec ecx ; jnz again (the later rounds run chained:
        // the next block sets the flags again from what the first left)
        let mut code = vec![0xb9, 3, 0, 0, 0, 0xb8];
        code.extend(eax.to_le_bytes());
        code.extend(setter);
        code.extend([0xeb, 0x00, 0x0f, 0x90, 0xc3, 0x0f, 0x92, 0xc7, 0x9c, 0x5a, 0x49, 0x75]);
        code.push(rel8(5, code.len() + 1));
        let (t, jit) = both(&code, |_| {}, 1 << 20);
        assert!(jit.stats.links >= 2, "the blocks chained: {:?}", jit.stats);
        let edx = t.cpu.state.gpr[2];
        assert_eq!(edx & 1, t.cpu.state.gpr[3] >> 8 & 0xff, "CF: setc and pushfd agree ({setter:02x?})");
        assert_eq!(edx >> 11 & 1, t.cpu.state.gpr[3] & 0xff, "OF: seto and pushfd agree ({setter:02x?})");
    }
    // add eax, 1 (OF, SF, AF, PF) ; jmp next ; next: mov ebx, [hole] (#PF)
    let hole = DATA_BASE + 0x3000;
    let mut code = vec![0x83, 0xc0, 0x01, 0xeb, 0x00, 0x8b, 0x1d];
    code.extend(hole.to_le_bytes());
    let (t, _) = both(
        &code,
        |t| {
            faulting_with_hole(t, hole);
            t.cpu.state.gpr[0] = 0x7fff_ffff;
        },
        1 << 20,
    );
    assert_eq!(t.halted_vector(), Some(14));
    assert_eq!(t.stack(3) & 0x8d5, 0x894, "OF, SF, AF and PF, as ADD left them");
}

/// A loop that unmaps a data page (PTE store, INVLPG) and touches it; the #PF handler maps
/// it again (PTE store, INVLPG) and IRETs. Both engines agree, and translated code goes on
/// by itself after each INVLPG (of a page no code was looked up on), each #PF delivered
/// and each IRET: the run loop is not needed once per iteration.
#[test]
fn page_faults_and_invlpg_go_on_without_the_run_loop() {
    const HANDLER: u32 = 0xb000;
    let hole = DATA_BASE + 0x3000;
    let pte = 0x21000 + 4 * (hole >> 12);
    let setup = |t: &mut TestBox| {
        t.install_exception_handlers();
        paging(t, |lin| lin | 3);
        let gate = u64::from((HANDLER & 0xffff) | 0x08 << 16) | u64::from((HANDLER & 0xffff_0000) | 0x8e00) << 32;
        t.poke(popek_interp::testing::IDT_BASE + 8 * 14, &gate.to_le_bytes());
        // mov dword [pte], hole | 3 ; invlpg [hole] ; add esp, 4 ; iretd
        let mut h = vec![0xc7, 0x05];
        h.extend(pte.to_le_bytes());
        h.extend((hole | 3).to_le_bytes());
        h.extend([0x0f, 0x01, 0x3d]);
        h.extend(hole.to_le_bytes());
        h.extend([0x83, 0xc4, 0x04, 0xcf]);
        t.poke(HANDLER, &h);
    };
    // mov ecx, 50 ; L: mov dword [pte], 0 ; invlpg [hole] ; add ebx, [hole] ; dec ecx ; jnz L
    let mut code = vec![0xb9, 50, 0, 0, 0, 0xc7, 0x05];
    code.extend(pte.to_le_bytes());
    code.extend(0u32.to_le_bytes());
    code.extend([0x0f, 0x01, 0x3d]);
    code.extend(hole.to_le_bytes());
    code.extend([0x03, 0x1d]);
    code.extend(hole.to_le_bytes());
    code.extend([0x49, 0x75]);
    code.push(rel8(5, code.len() + 1));
    let (t, _) = both(&code, setup, 1 << 20);
    assert_eq!(t.cpu.state.gpr[1], 0, "the loop ran to its end");
    let mut t = TestBox::new(&code);
    setup(&mut t);
    let mut jit = Jit::new(1 << 20).expect("code cache");
    let mut calls = 0;
    while !t.cpu.state.halted {
        jit.run(&mut t.cpu, &mut t.bus, 1 << 20, &|_| 0).expect("runs");
        calls += 1;
    }
    assert!(calls < 10, "{calls} returns to the run loop for 50 page faults: {:?}", jit.stats);
}

/// With paging off and flat segments a load or store cannot fault, so flags only a fault
/// could see are neither saved before its lookup nor stored on its slow path (a TLB miss
/// here, on each first touch of a page): the run still agrees with the interpreter.
#[test]
fn flags_no_fault_can_see_are_not_saved_with_paging_off() {
    // mov ecx, 8 ; L: cmp ecx, 5 ; mov eax, [ecx*8 + DATA_BASE] (a TLB miss the first
    // time) ; add ebx, eax ; xor edx, edx ; dec ecx ; jnz L
    let mut code = vec![0xb9, 8, 0, 0, 0, 0x83, 0xf9, 0x05, 0x8b, 0x04, 0xcd];
    code.extend(DATA_BASE.to_le_bytes());
    code.extend([0x01, 0xc3, 0x31, 0xd2, 0x49, 0x75]);
    code.push(rel8(5, code.len() + 1));
    let (t, _) = both(
        &code,
        |t| {
            for i in 1..=8u32 {
                t.poke(DATA_BASE + 8 * i, &i.to_le_bytes());
            }
        },
        1 << 20,
    );
    assert_eq!(t.cpu.state.gpr[3], (1..=8).sum::<u32>(), "EBX summed the loads");
}

/// A store may end its block right after it (here into an interrupt controller), so the
/// flags an instruction before it left must be in `CpuState` then, though the next
/// instruction would have set them all again: even with paging off, where the store
/// cannot fault, they are not dropped.
#[test]
fn flags_before_a_store_that_ends_the_block_are_kept() {
    // xor eax, eax (ZF, PF) ; mov [0xfee000b0], edx ; add ecx, 1 ; (hlt)
    let mut code = vec![0x31, 0xc0, 0x89, 0x15];
    code.extend(0xfee0_00b0u32.to_le_bytes());
    code.extend([0x83, 0xc1, 0x01]);
    let (mut a, mut b) = (TestBox::new(&code), TestBox::new(&code));
    let (mut bus_a, mut bus_b) = (ApicBus::default(), ApicBus::default());
    let n = a.interp.run_block(&mut a.cpu, &mut bus_a).expect("runs");
    let mut jit = Jit::new(1 << 20).expect("code cache");
    let m = jit.run(&mut b.cpu, &mut bus_b, 1 << 20, &|_| 0).expect("runs");
    assert_eq!((n, m), (2, 2), "the block ended after the store");
    assert_eq!(a.cpu.state.eflags & 0x8d5, 0x44, "ZF and PF, as XOR left them");
    assert_eq!(b.cpu.state, a.cpu.state);
}

/// Six loads a loop makes with paging off, with an MMIO hole at 0x30000..0x31000 in the
/// test machine's 1 MiB: the plain span of RAM is 0x31000..0x100000. In it (its first and
/// its last four bytes) a load reads RAM directly; across the hole's end or the end of RAM,
/// below the span, or in the hole, it takes its slow path (RAM or the bus, byte by byte).
/// `mov ecx, 50 ; L: (mov edx, [addr] ; add ebx, edx) x 6 ; dec ecx ; jnz L ; hlt`
fn plain_span_loads() -> (Vec<u8>, [u32; 6]) {
    let addrs = [0x31000, 0xffffc, 0x30ffe, 0xffffe, 0x2f000, 0x30800];
    let mut body = Vec::new();
    for a in addrs {
        body.extend([0x8b, 0x15]);
        le(&mut body, a);
        body.extend([0x01, 0xd3]);
    }
    body.push(0x49);
    (looped(&[0xb9, 50, 0, 0, 0], &body), addrs)
}

fn plain_span_setup(t: &mut TestBox, hole: bool) {
    if hole {
        t.cpu.mem.add_hole(0x30000, 0x31000).expect("hole");
    }
    for (i, a) in (1u32..).zip([0x2f000u32, 0x30800, 0x30ffc, 0x31000, 0xffff8, 0xffffc]) {
        t.poke(a, &((0x1111_1111 * i) ^ 0x0f0f_0f0f).to_le_bytes());
    }
}

/// `prelude`, then `body` run as a loop: `body` ends with the instruction that sets ZF for
/// the `jnz` back to its start appended here.
fn looped(prelude: &[u8], body: &[u8]) -> Vec<u8> {
    let mut code = prelude.to_vec();
    let top = code.len();
    code.extend(body);
    code.extend([0x75, 0]);
    let n = code.len();
    code[n - 1] = rel8(top, n);
    code
}

/// How many times instructions `m` ran in their handler (slow paths included).
fn handler_runs(jit: &Jit, m: popek_cpu::iced_x86::Mnemonic) -> u64 {
    jit.callouts_by_instruction().into_iter().filter(|&(x, _)| x == m).map(|(_, n)| n).sum()
}

#[test]
fn loads_with_paging_off_read_plain_ram_directly() {
    let (code, addrs) = plain_span_loads();
    let (t, jit) = both(&code, |t| plain_span_setup(t, true), 1 << 20);
    assert!(t.cpu.state.halted);
    // Only the four loads outside the span went to their handler, each time round.
    let slow = handler_runs(&jit, popek_cpu::iced_x86::Mnemonic::Mov);
    assert_eq!(slow, 4 * 50, "{:?} for loads of {addrs:x?}", jit.callouts_by_instruction());
}

#[test]
fn translations_for_another_memory_are_flushed() {
    // Run first on a machine without the hole, where 0x30800 is plain RAM, then on one
    // with it: the loads of the first translations must not run on the second.
    let (code, _) = plain_span_loads();
    let mut jit = Jit::new(1 << 20).expect("code cache");
    let mut first = TestBox::new(&code);
    plain_span_setup(&mut first, false);
    run_jit(&mut first, &mut jit);
    let (mut interp, mut second) = (TestBox::new(&code), TestBox::new(&code));
    plain_span_setup(&mut interp, true);
    plain_span_setup(&mut second, true);
    run_interp(&mut interp);
    run_jit(&mut second, &mut jit);
    assert_eq!(jit.stats.flushes, 1);
    assert_ne!(first.cpu.state.gpr[3], second.cpu.state.gpr[3], "the hole reads differently");
    assert_eq!(interp.cpu.state, second.cpu.state);
}

/// With paging off a load cannot fault, so the CF an INC leaves alone is dead across it if
/// an ADD sets CF again next, and is not loaded from the lazy flags the block was entered
/// with; an ADC after the load still sees it. Some of the loads lie in an MMIO hole (their
/// slow path).
/// `mov ecx, 20 ; mov eax, 0x30ff0 ; L: cmp ecx, 10 ; jmp M ; M: inc ebp ; mov edx, [eax] ;
/// adc esi, 0 ; inc ebp ; mov edx, [eax] ; add eax, 4 ; dec ecx ; jnz L ; hlt`
#[test]
fn cf_left_by_inc_is_dead_across_a_load_that_cannot_fault() {
    let code = looped(
        &[0xb9, 20, 0, 0, 0, 0xb8, 0xf0, 0x0f, 0x03, 0x00],
        &[0x83, 0xf9, 0x0a, 0xeb, 0x00, 0x45, 0x8b, 0x10, 0x83, 0xd6, 0x00, 0x45, 0x8b, 0x10, 0x83, 0xc0, 0x04, 0x49],
    );
    let (t, _) = both(&code, |t| plain_span_setup(t, true), 1 << 20);
    assert!(t.cpu.state.halted);
    assert_eq!(t.cpu.state.gpr[6], 9, "ADC added CF (ECX < 10) nine times");
    assert_eq!(t.cpu.state.gpr[5], 40, "EBP counted");
}

/// A load of DS, ES, FS or GS runs inside its block, and ends it only if it changes the
/// block's mode (here, a null ES: no longer flat segments), in both engines alike.
/// `mov ax, 10h ; mov ds, ax ; mov es, ax ; inc ebx ; xor eax, eax ; mov es, ax ; inc ebx ; hlt`
#[test]
fn a_segment_load_ends_its_block_only_if_it_changes_the_mode() {
    let code = [0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xc0, 0x43, 0x31, 0xc0, 0x8e, 0xc0, 0x43];
    let (mut a, mut b) = (TestBox::new(&code), TestBox::new(&code));
    a.install_exception_handlers();
    b.install_exception_handlers();
    let mut jit = Jit::new(1 << 20).expect("code cache");
    let first = (a.interp.run_block(&mut a.cpu, &mut a.bus), jit.run_block(&mut b.cpu, &mut b.bus));
    assert_eq!(first, (Ok(6), Ok(6)), "the first block runs up to the load of the null ES");
    assert_eq!(a.cpu.state, b.cpu.state);
    assert_eq!(b.cpu.state.seg[popek_cpu::Seg::Es as usize].selector, 0);
    run_interp(&mut a);
    run_jit(&mut b, &mut jit);
    assert_eq!(a.cpu.state, b.cpu.state);
    assert_eq!(b.cpu.state.gpr[3], 2);
}

/// A page group of loads with paging off checks only that its span lies in the plain span
/// of RAM: in it, no handler runs; across the hole's end, both loads run in theirs.
/// `mov ebx, 0x30ff8 ; mov esi, 2 ; L: mov eax, [ebx] ; mov ecx, [ebx + 8] ; add edx, eax ;
/// add edx, ecx ; add ebx, 0x100 ; dec esi ; jnz L ; hlt`: the span [0x30ff8, 0x31004) once,
/// then [0x310f8, 0x31104).
#[test]
fn a_group_of_loads_with_paging_off_checks_the_plain_span() {
    let code = looped(
        &[0xbb, 0xf8, 0x0f, 0x03, 0x00, 0xbe, 2, 0, 0, 0],
        &[0x8b, 0x03, 0x8b, 0x4b, 0x08, 0x01, 0xc2, 0x01, 0xca, 0x81, 0xc3, 0x00, 0x01, 0x00, 0x00, 0x4e],
    );
    let (t, jit) = both(&code, |t| plain_span_setup(t, true), 1 << 20);
    assert!(t.cpu.state.halted);
    assert_eq!(handler_runs(&jit, popek_cpu::iced_x86::Mnemonic::Mov), 2, "only the first time round, both loads");
}

/// With paging off a load's address is worked out in 64 bits and checked against the
/// plain span: an address that wraps at 4 GiB into the span is not in it in 64 bits, and
/// takes the slow path (where it wraps, as the guest's address does), while the same
/// bytes read through an address that does not wrap are read directly.
/// `mov ebx, 0xfffffff0 ; mov ecx, 0xc806 ; mov esi, 0x32000 ; mov edi, 3 ;
/// L: mov eax, [ebx + ecx*4 - 8] ; add edx, eax ; mov eax, [esi] ; add edx, eax ; dec edi ;
/// jnz L ; hlt`
#[test]
fn a_load_whose_address_wraps_takes_the_slow_path() {
    let code = looped(
        &[0xbb, 0xf0, 0xff, 0xff, 0xff, 0xb9, 0x06, 0xc8, 0, 0, 0xbe, 0, 0x20, 0x03, 0, 0xbf, 3, 0, 0, 0],
        &[0x8b, 0x44, 0x8b, 0xf8, 0x01, 0xc2, 0x8b, 0x06, 0x01, 0xc2, 0x4f],
    );
    let (t, jit) = both(&code, |t| t.poke(0x32000, &0x0102_0304u32.to_le_bytes()), 1 << 20);
    assert!(t.cpu.state.halted);
    assert_eq!(t.cpu.state.gpr[2], 6 * 0x0102_0304);
    assert_eq!(handler_runs(&jit, popek_cpu::iced_x86::Mnemonic::Mov), 3, "the wrapping load, each time round");
}

/// With paging off a page group's accesses add their base register in 64 bits, so its
/// check makes sure the span's address does not wrap at 4 GiB: one that does (EBX =
/// 0xfffffff0, [ebx + 0x20] is address 0x10) takes the miss path, both loads in their
/// handlers, and reads what the interpreter reads.
/// `mov ebx, 0xfffffff0 ; mov esi, 2 ; L: mov eax, [ebx + 0x20] ; mov ecx, [ebx + 0x24] ;
/// add edx, eax ; add edx, ecx ; dec esi ; jnz L ; hlt`
#[test]
fn a_group_whose_address_wraps_takes_its_miss_path() {
    let code = looped(
        &[0xbb, 0xf0, 0xff, 0xff, 0xff, 0xbe, 2, 0, 0, 0],
        &[0x8b, 0x43, 0x20, 0x8b, 0x4b, 0x24, 0x01, 0xc2, 0x01, 0xca, 0x4e],
    );
    let setup = |t: &mut TestBox| {
        t.poke(0x10, &0x1111_0000u32.to_le_bytes());
        t.poke(0x14, &0x0000_2222u32.to_le_bytes());
    };
    let (t, jit) = both(&code, setup, 1 << 20);
    assert!(t.cpu.state.halted);
    assert_eq!(t.cpu.state.gpr[2], 2 * 0x1111_2222);
    assert_eq!(handler_runs(&jit, popek_cpu::iced_x86::Mnemonic::Mov), 4, "both loads, each time round");
}

/// MOVSB, MOVSW and MOVSD without REP move their element inline (with DF clear), and take
/// their handler with DF set, across a page, or on a soft-TLB miss: either way as the
/// interpreter does.
/// `mov esi, 0x20000 ; mov edi, 0x20ff0 ; mov ecx, 4 ; L: movsb ; movsw ; movsd ; dec ecx ;
/// jnz L ; std ; movsb ; movsd ; cld ; movsd ; hlt` (the third round's MOVSW writes across
/// the page at 0x21000)
#[test]
fn string_moves_without_rep_agree_with_the_interpreter() {
    let mut code = looped(
        &[0xbe, 0x00, 0x00, 0x02, 0x00, 0xbf, 0xf0, 0x0f, 0x02, 0x00, 0xb9, 4, 0, 0, 0],
        &[0xa4, 0x66, 0xa5, 0xa5, 0x49],
    );
    code.extend([0xfd, 0xa4, 0xa5, 0xfc, 0xa5]);
    let bytes: Vec<u8> = (0u8..64).map(|b| b.wrapping_mul(37) ^ 0x5a).collect();
    let (t, jit) = both(&code, |t| t.poke(0x20000, &bytes), 1 << 20);
    assert!(t.cpu.state.halted);
    // The loop copied the first 28 bytes in order (1 + 2 + 4 bytes a round, 4 rounds).
    let copied: Vec<u8> = (0..28).map(|i| t.cpu.mem.as_slice()[0x20ff0 + i]).collect();
    assert_eq!(copied, bytes[..28]);
    use popek_cpu::iced_x86::Mnemonic::{Movsb, Movsd, Movsw};
    let slow = handler_runs(&jit, Movsb) + handler_runs(&jit, Movsw) + handler_runs(&jit, Movsd);
    assert!(slow <= 8, "the loop's moves ran inline after the first round: {slow} in handlers");
}

/// With paging on, a load or store whose soft-TLB check misses on a RAM page walks the
/// page tables from its slow path (setting Accessed and Dirty as the access would), fills
/// the entry and makes the check again inline: no handler runs. One that faults still
/// goes to its handler, which raises the fault.
/// `mov ebx, 0x40000 ; mov esi, 64 ; L: add eax, [ebx] ; lea edi, [ebx + 4] ; mov [edi], esi ;
/// add ebx, 0x1000 ; dec esi ; jnz L ; mov edx, [0x90000] ; hlt` (0x90000 is not mapped: #PF;
/// the two accesses go through different registers, so each is checked alone)
#[test]
fn a_soft_tlb_miss_on_ram_is_refilled_without_the_handler() {
    let mut code = looped(
        &[0xbb, 0x00, 0x00, 0x04, 0x00, 0xbe, 64, 0, 0, 0],
        &[0x03, 0x03, 0x8d, 0x7b, 0x04, 0x89, 0x37, 0x81, 0xc3, 0x00, 0x10, 0x00, 0x00, 0x4e],
    );
    code.extend([0x8b, 0x15, 0x00, 0x00, 0x09, 0x00]);
    let setup = |t: &mut TestBox| {
        t.install_exception_handlers();
        paging(t, |lin| if lin == 0x90000 { 0 } else { lin | 3 });
        for page in 0..64u32 {
            t.poke(0x40000 + page * 0x1000, &(page * 3 + 1).to_le_bytes());
        }
    };
    let (t, jit) = both(&code, setup, 1 << 20);
    assert_eq!(t.halted_vector(), Some(14), "the unmapped load faulted");
    assert_eq!(t.cpu.state.gpr[0], (0..64u32).map(|p| p * 3 + 1).sum::<u32>());
    assert_eq!(t.peek32(0x40000 + 63 * 0x1000 + 4), 1, "the stores went through");
    assert_eq!(handler_runs(&jit, popek_cpu::iced_x86::Mnemonic::Add), 0, "every miss was refilled");
    assert_eq!(handler_runs(&jit, popek_cpu::iced_x86::Mnemonic::Mov), 1, "only the faulting load");
}

/// Stores with paging off check their page's byte in the store map: after a first refill a
/// store to plain RAM goes straight to it, while one to a page just before a hole or the
/// end of RAM (its byte covers the next page too), or into a hole, runs its handler every
/// time round.
#[test]
fn stores_with_paging_off_check_the_store_map() {
    // mov ecx, 50 ; L: mov [a], ecx ... ; dec ecx ; jnz L ; hlt
    let addrs = [0x20000u32, 0x2f800, 0x30800, 0x31000, 0xffff0];
    let mut body = Vec::new();
    for a in addrs {
        body.extend([0x89, 0x0d]);
        le(&mut body, a);
    }
    body.push(0x49);
    let mut code = looped(&[0xb9, 50, 0, 0, 0], &body);
    code.push(0xf4);
    let (t, jit) = both(&code, |t| plain_span_setup(t, true), 1 << 20);
    assert!(t.cpu.state.halted);
    assert_eq!(t.cpu.mem.read_ram::<4>(0x20000), Some(1u32.to_le_bytes()));
    // 0x2f800: the next page is the hole; 0x30800: the hole; 0xffff0: the last page.
    let slow = handler_runs(&jit, popek_cpu::iced_x86::Mnemonic::Mov);
    assert_eq!(slow, 3 * 50, "{:?}", jit.callouts_by_instruction());
    for (page, open) in [(0x20, true), (0x2f, false), (0x30, false), (0x31, true), (0xff, false)] {
        assert_eq!(t.cpu.mem.open_to_stores(page), open, "page {page:#x}");
    }
}

/// A page opened to plain stores is closed when the next page starts to hold code: a store
/// from it that runs into a translated function's first instruction is seen, and the next
/// call runs the new bytes.
#[test]
fn a_store_across_into_new_code_is_seen() {
    let f = CODE_BASE + 0x2000;
    // mov ecx, 20 ; L: mov [f - 0x10], ecx ; dec ecx ; jnz L   (opens f's page's neighbour)
    let mut code = looped(&[0xb9, 20, 0, 0, 0], &{
        let mut b = vec![0x89, 0x0d];
        le(&mut b, f - 0x10);
        b.push(0x49);
        b
    });
    // call f ; mov ebx, eax ; mov dword [f - 2], 0x42b8_0000 (bytes 00 00 b8 42) ; call f ; hlt
    call(&mut code, f);
    code.extend([0x89, 0xc3, 0xc7, 0x05]);
    le(&mut code, f - 2);
    le(&mut code, 0x42b8_0000);
    call(&mut code, f);
    code.push(0xf4);
    // f: mov eax, 0x11111111 ; ret
    function_at(&mut code, f, 0xb8, 0x1111_1111);
    let (t, jit) = both(&code, |_| {}, 1 << 20);
    assert_eq!(t.cpu.state.gpr[3], 0x1111_1111, "the first call");
    assert_eq!(t.cpu.state.gpr[0], 0x1111_1142, "the second call ran the new byte");
    // The loop's stores went straight to RAM after the first; the store across into f
    // ran its handler (its page was closed when f was decoded), which saw the code write.
    assert_eq!(handler_runs(&jit, popek_cpu::iced_x86::Mnemonic::Mov), 1, "{:?}", jit.callouts_by_instruction());
    assert!(t.cpu.smc_stats.code >= 1, "{:?}", t.cpu.smc_stats);
    assert!(jit.stats.invalidated >= 1, "{:?}", jit.stats);
}

/// A loop onto its own block goes back without storing the flags of its CMP: its copy of
/// the loop's first instructions runs with them pending, and joins the body where an
/// instruction loads them (here the ADC, after a load: the CMP again, in host EFLAGS).
/// With CMP EDX, EBX the ADC sees CF = 0, with CMP EBX, EDX CF = 1 (XOR left 0 before the
/// first round). Run with the budget running out every few rounds too, so that the way
/// out is taken (it stores them first), and the next entry reads them from `CpuState`.
#[test]
fn a_loop_goes_back_with_its_flags_pending() {
    let value = |i: u32| 0xffff_fff0u32.wrapping_add(i * 0x0123_4567);
    for (cmp, carry) in [([0x39, 0xd3], 1u32), ([0x39, 0xda], 0)] {
        // mov ebx, DATA_BASE ; mov edx, DATA_BASE + 400 ; xor eax, eax ; jmp L
        let mut prelude = vec![0xbb];
        le(&mut prelude, DATA_BASE);
        prelude.push(0xba);
        le(&mut prelude, DATA_BASE + 400);
        prelude.extend([0x31, 0xc0, 0xeb, 0x00]);
        // L: mov esi, [ebx] ; adc eax, esi ; lea ebx, [ebx+4] ; cmp ; jnz L ; hlt
        let mut body = vec![0x8b, 0x33, 0x11, 0xf0, 0x8d, 0x5b, 0x04];
        body.extend(cmp);
        let mut code = looped(&prelude, &body);
        code.push(0xf4);
        let setup = |t: &mut TestBox| {
            for i in 0..100u32 {
                t.poke(DATA_BASE + 4 * i, &value(i).to_le_bytes());
            }
        };
        let (t, jit) = both(&code, setup, 1 << 20);
        let want = (0..100u32).fold(0u32, |sum, i| sum.wrapping_add(value(i)).wrapping_add(carry * u32::from(i > 0)));
        assert_eq!(t.cpu.state.gpr[0], want, "CF {carry}");
        assert!(jit.stats.exits_chain_miss < 5, "the loop ran chained: {:?}", jit.stats);
        // Out of budget every 7 instructions: the loop leaves through its exit stub.
        let (mut a, mut b) = (TestBox::new(&code), TestBox::new(&code));
        setup(&mut a);
        setup(&mut b);
        run_interp(&mut a);
        let mut jit = Jit::new(1 << 20).expect("code cache");
        for _ in 0..100_000 {
            if b.cpu.state.halted {
                break;
            }
            jit.run(&mut b.cpu, &mut b.bus, 7, &|_| 0).expect("runs");
        }
        assert_eq!(a.cpu.state, b.cpu.state, "interp:\n{}jit:\n{}", a.cpu.state.dump(), b.cpu.state.dump());
    }
}

/// The loop's copy of its first instructions takes a page fault with the flags still
/// pending: its slow path stores them first, and the exception frame holds those of the
/// loop's CMP in the round before.
#[test]
fn a_fault_in_a_loop_going_back_sees_its_cmp_flags() {
    let hole = DATA_BASE + 0x4000;
    // L: mov [ebx], ecx ; add ebx, 0x400 ; cmp ebx, edx ; jnz L
    let code = looped(&[], &[0x89, 0x0b, 0x81, 0xc3, 0x00, 0x04, 0x00, 0x00, 0x39, 0xd3]);
    let (t, _) = both(
        &code,
        |t| {
            faulting_with_hole(t, hole);
            t.cpu.state.gpr[3] = hole - 0x2000;
            t.cpu.state.gpr[2] = hole + 0x2000;
        },
        1 << 20,
    );
    assert_eq!(t.halted_vector(), Some(14), "#PF");
    assert_eq!(t.cpu.state.cr2, hole);
    // cmp hole, hole + 0x2000: CF, PF, SF.
    assert_eq!(t.stack(3) & 0x8d5, 0x85, "{:#x}", t.stack(3));
}

/// A loop whose first instruction is not one its way back can copy (a PUSH) stores its
/// CMP's flags and goes back to the body's start.
#[test]
fn a_loop_that_cannot_keep_its_flags_pending_stores_them() {
    // mov ecx, 100 ; xor eax, eax ; L: push ecx ; pop esi ; add eax, esi ; dec ecx ; test ecx, ecx ; jnz L ; hlt
    let mut code = looped(&[0xb9, 100, 0, 0, 0, 0x31, 0xc0], &[0x51, 0x5e, 0x01, 0xf0, 0x49, 0x85, 0xc9]);
    code.push(0xf4);
    let (t, jit) = both(&code, |_| {}, 1 << 20);
    assert_eq!(t.cpu.state.gpr[0], (1..=100).sum::<u32>());
    assert!(jit.stats.exits_chain_miss < 5, "the loop ran chained: {:?}", jit.stats);
}

/// Flags that only the slow paths of a run of stores can see (an INC before two stores,
/// then a CMP) are saved once, before the first store's check: a fault in either store
/// shows them in its frame, the CF of the CMP before the INC among them.
#[test]
fn flags_saved_for_a_run_of_stores_are_in_either_fault_frame() {
    let hole = DATA_BASE + 0x3000;
    let ok = DATA_BASE + 0x100;
    for (first, second) in [(ok, hole), (hole, ok)] {
        // mov [edi], eax (the good page's TLB entry, for a store) ; cmp ecx, 7 ; inc esi ;
        // mov [ebx], ecx ; mov [edx], ecx ; cmp eax, eax ; hlt
        let code = [0x89, 0x07, 0x83, 0xf9, 0x07, 0x46, 0x89, 0x0b, 0x89, 0x0a, 0x39, 0xc0, 0xf4];
        let (t, _) = both(
            &code,
            |t| {
                faulting_with_hole(t, hole);
                t.cpu.state.gpr[1] = 5;
                t.cpu.state.gpr[3] = first;
                t.cpu.state.gpr[2] = second;
                t.cpu.state.gpr[6] = 0x7fff_ffff;
                t.cpu.state.gpr[7] = ok;
            },
            1 << 20,
        );
        assert_eq!(t.halted_vector(), Some(14), "#PF");
        // INC of 0x7fffffff: OF, SF, AF, PF; CF from cmp 5, 7.
        assert_eq!(
            t.stack(3) & 0x8d5,
            0x895,
            "{:#x} with the hole at the {} store",
            t.stack(3),
            if first == hole { "first" } else { "second" }
        );
    }
}

/// Stores with paging off whose address wraps at 4 GiB (a base register plus a
/// displacement, alone or in a page group): their 64-bit address is outside the store map's
/// pages, so they take their slow path every time, where they wrap as the guest's do (and
/// no refill opens a page for them).
#[test]
fn stores_that_wrap_at_4_gib_agree_with_the_interpreter() {
    // mov ecx, 5 ; L: mov [ebx+0x10], ecx ; mov [esi-0x10], ecx ; mov [edi+0x10], ecx ;
    // mov [edi+0x14], ecx ; dec ecx ; jnz L ; hlt
    let body = [0x89, 0x4b, 0x10, 0x89, 0x4e, 0xf0, 0x89, 0x4f, 0x10, 0x89, 0x4f, 0x14, 0x49];
    let mut code = looped(&[0xb9, 5, 0, 0, 0], &body);
    code.push(0xf4);
    let (t, jit) = both(
        &code,
        |t| {
            t.cpu.state.gpr[3] = 0xffff_fffc;
            t.cpu.state.gpr[6] = 8;
            t.cpu.state.gpr[7] = 0xffff_fff0;
        },
        1 << 20,
    );
    assert!(t.cpu.state.halted);
    assert_eq!(t.cpu.mem.read_ram::<4>(0xc), Some(1u32.to_le_bytes()), "mov [ebx+0x10] wrapped to 0xc");
    assert_eq!(t.cpu.mem.read_ram::<8>(0), Some([1, 0, 0, 0, 1, 0, 0, 0]), "the group wrapped to 0");
    // The three of them (the group's two as one) ran in their handlers every round.
    assert_eq!(handler_runs(&jit, popek_cpu::iced_x86::Mnemonic::Mov), 4 * 5, "{:?}", jit.callouts_by_instruction());
}

/// A loop whose first instructions change the second operand of its CMP without touching
/// the flags (NOT ECX ; MOV EDX, ECX), then read them (ADC): its way back stores the CMP's
/// flags first, for they are no longer those of `cmp ebx, edx` on the registers. Without
/// a MOVSB the way back is a whole copy of the block; with one, a copy of its first
/// instructions.
#[test]
fn a_loop_that_changes_its_cmp_operand_first_keeps_its_flags() {
    for movs in [false, true] {
        // mov ebx, 100 ; xor ecx, ecx ; mov esi, DATA_BASE ; mov edi, DATA_BASE + 0x800 ;
        // xor eax, eax ; jmp L
        let mut prelude = vec![0xbb, 100, 0, 0, 0, 0x31, 0xc9, 0xbe];
        le(&mut prelude, DATA_BASE);
        prelude.push(0xbf);
        le(&mut prelude, DATA_BASE + 0x800);
        prelude.extend([0x31, 0xc0, 0xeb, 0x00]);
        // L: not ecx ; mov edx, ecx ; (movsb) ; adc eax, 7 ; dec ebx ; cmp ebx, edx ; jnz L
        let mut body = vec![0xf7, 0xd1, 0x89, 0xca];
        if movs {
            body.push(0xa4);
        }
        body.extend([0x83, 0xd0, 0x07, 0x4b, 0x39, 0xd3]);
        let mut code = looped(&prelude, &body);
        code.push(0xf4);
        let (t, jit) = both(&code, |_| {}, 1 << 20);
        let (mut ebx, mut ecx, mut eax, mut cf) = (100u32, 0u32, 0u32, false);
        loop {
            ecx = !ecx;
            eax = eax.wrapping_add(7 + u32::from(cf));
            ebx -= 1;
            cf = ebx < ecx;
            if ebx == ecx {
                break;
            }
        }
        assert_eq!(t.cpu.state.gpr[0], eax, "movsb {movs}");
        assert!(jit.stats.exits_chain_miss < 5, "the loop ran chained: {:?}", jit.stats);
    }
}
