use iced_x86::IcedError;
use iced_x86::code_asm::*;

use super::*;

/// Assembles a 64-bit-mode snippet.
fn asm(build: impl FnOnce(&mut CodeAssembler) -> std::result::Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(64).expect("64-bit assembler");
    build(&mut a).expect("snippet assembles");
    a.assemble(0).expect("snippet assembles")
}

fn state(regs: &[(usize, u64)], rflags: u64) -> HostState {
    let mut s = HostState { rflags, ..HostState::default() };
    for &(index, value) in regs {
        s.gpr[index] = value;
    }
    s
}

fn run(code: &[u8], input: &HostState) -> HostState {
    HostRunner::new().expect("runner").run(code, input).expect("run")
}

#[test]
fn add_32_sets_result_and_flags() {
    let code = asm(|a| a.add(eax, ebx));
    let out = run(&code, &state(&[(HostState::RAX, 0xdead_beef_ffff_ffff), (HostState::RBX, 1)], 0));
    assert_eq!(out.gpr[HostState::RAX], 0, "32-bit result zero-extends into rax");
    assert_eq!(out.rflags, flags::CF | flags::PF | flags::AF | flags::ZF);

    let out = run(&code, &state(&[(HostState::RAX, 0x7fff_ffff), (HostState::RBX, 1)], 0));
    assert_eq!(out.gpr[HostState::RAX], 0x8000_0000);
    assert_eq!(out.rflags, flags::PF | flags::AF | flags::SF | flags::OF);
}

#[test]
fn input_flags_reach_the_snippet() {
    let code = asm(|a| a.adc(eax, 0));
    let out = run(&code, &state(&[(HostState::RAX, 41)], flags::CF));
    assert_eq!(out.gpr[HostState::RAX], 42);
    let out = run(&code, &state(&[(HostState::RAX, 41)], 0));
    assert_eq!(out.gpr[HostState::RAX], 41);
}

#[test]
fn stc_and_clc() {
    assert_eq!(run(&asm(|a| a.stc()), &HostState::default()).rflags, flags::CF);
    assert_eq!(run(&asm(|a| a.clc()), &state(&[], flags::CF | flags::ZF)).rflags, flags::ZF);
}

#[test]
fn std_is_reported_and_host_stays_sane() {
    let mut runner = HostRunner::new().unwrap();
    let out = runner.run(&asm(|a| a.std()), &HostState::default()).unwrap();
    assert_eq!(out.rflags, flags::DF);
    // The stub must return with DF clear, as the ABI requires.
    let host_rflags: u64;
    // SAFETY: PUSHFQ/POP only reads RFLAGS into a register, using the stack that asm!
    // provides (no `nostack`), and leaves flags and memory unchanged.
    unsafe { core::arch::asm!("pushfq", "pop {}", out(reg) host_rflags) };
    assert_eq!(host_rflags & flags::DF, 0, "DF leaked to the host");
    // DF from the input reaches the snippet and is not left over from the previous run.
    let out = runner.run(&[], &HostState::default()).unwrap();
    assert_eq!(out.rflags, 0);
    let out = runner.run(&[], &state(&[], flags::DF)).unwrap();
    assert_eq!(out.rflags, flags::DF);
}

#[test]
fn mul_32_writes_edx_eax() {
    let code = asm(|a| a.mul(ecx));
    let out = run(&code, &state(&[(HostState::RAX, 0xffff_ffff), (HostState::RCX, 0x1_0000)], 0));
    assert_eq!(out.gpr[HostState::RAX], 0xffff_0000);
    assert_eq!(out.gpr[HostState::RDX], 0xffff);
    assert_eq!(out.rflags & (flags::CF | flags::OF), flags::CF | flags::OF);
}

#[test]
fn rep_movsb_copies_scratch() {
    let mut runner = HostRunner::new().unwrap();
    let base = runner.scratch_base();
    runner.scratch()[..16].copy_from_slice(b"popek hostcpu ok");
    let code = asm(|a| a.rep().movsb());
    let input = state(&[(HostState::RSI, base), (HostState::RDI, base + 0x100), (HostState::RCX, 16)], 0);
    let out = runner.run(&code, &input).unwrap();
    assert_eq!(&runner.scratch()[0x100..0x110], b"popek hostcpu ok");
    assert_eq!(runner.scratch()[0x110], 0);
    assert_eq!(out.gpr[HostState::RCX], 0);
    assert_eq!(out.gpr[HostState::RSI], base + 16);
    assert_eq!(out.gpr[HostState::RDI], base + 0x110);
}

#[test]
fn op16_keeps_upper_bits() {
    // add ax, bx
    let input = state(&[(HostState::RAX, 0x1234_5678_9abc_ffff), (HostState::RBX, 2)], 0);
    let out = run(&[0x66, 0x01, 0xd8], &input);
    assert_eq!(out.gpr[HostState::RAX], 0x1234_5678_9abc_0001);
    assert_eq!(out.rflags & flags::CF, flags::CF);
}

#[test]
fn registers_round_trip_and_extra_flags_are_ignored() {
    let mut input = HostState { rflags: u64::MAX, ..HostState::default() };
    for (i, r) in input.gpr.iter_mut().enumerate() {
        *r = 0x0101_0101_0101_0101 * (i as u64 + 1);
    }
    let out = run(&[], &input);
    assert_eq!(out.gpr, input.gpr);
    assert_eq!(out.rflags, flags::ARITH);
}

#[test]
fn loops_inside_the_snippet_are_allowed() {
    let code = asm(|a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.add(eax, 3)?;
        a.dec(ecx)?;
        a.jnz(top)
    });
    let out = run(&code, &state(&[(HostState::RCX, 5)], 0));
    assert_eq!(out.gpr[HostState::RAX], 15);
}

#[test]
fn unsafe_snippets_are_refused() {
    let mut runner = HostRunner::new().unwrap();
    let s = HostState::default();
    let mut err = |code: &[u8]| runner.run(code, &s).unwrap_err();
    assert!(matches!(err(&asm(|a| a.push(rax))), HostCpuError::UsesStackPointer { offset: 0, .. }));
    assert!(matches!(err(&asm(|a| a.mov(rax, rsp))), HostCpuError::UsesStackPointer { .. }));
    assert!(matches!(err(&[0x90, 0xc3]), HostCpuError::UsesStackPointer { offset: 1, .. })); // ret
    assert!(matches!(err(&[0x90, 0xcc]), HostCpuError::ControlFlow { offset: 1, .. })); // int3
    assert!(matches!(err(&[0xff, 0xe0]), HostCpuError::ControlFlow { .. })); // jmp rax
    assert!(matches!(err(&[0xeb, 0x10]), HostCpuError::ControlFlow { .. })); // jmp past end
    assert!(matches!(err(&[0x75, 0xff]), HostCpuError::ControlFlow { .. })); // jnz mid-insn
    assert!(matches!(err(&[0x90, 0x66]), HostCpuError::InvalidCode { offset: 1, .. }));
    assert!(matches!(err(&[0x01]), HostCpuError::InvalidCode { offset: 0, .. }));
    let big = vec![0x90; CODE_SIZE];
    assert!(matches!(err(&big), HostCpuError::CodeTooLarge { len: CODE_SIZE, .. }));
    // A refused snippet leaves the runner usable.
    assert_eq!(runner.run(&[0xf9], &s).unwrap().rflags, flags::CF);
}
