//! Built-in demo programs: small flat 32-bit code images that run on a bare CPU
//! (no devices), used by `popek` with no arguments and by the benchmarks.

use popek_cpu::iced_x86::IcedError;
use popek_cpu::iced_x86::code_asm::*;

/// Load address of demo code.
pub const CODE_BASE: u32 = 0x1000;

/// A counting loop: `ecx` iterations of `add eax, ecx; xor edx, eax; dec ecx; jnz`,
/// then HLT. Four instructions per iteration, plus three.
pub fn counting_loop(iterations: u32) -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(32)?;
    let mut top = a.create_label();
    a.mov(eax, 0u32)?;
    a.mov(ecx, iterations)?;
    a.set_label(&mut top)?;
    a.add(eax, ecx)?;
    a.xor(edx, eax)?;
    a.dec(ecx)?;
    a.jnz(top)?;
    a.hlt()?;
    a.assemble(CODE_BASE as u64)
}

/// Expected (eax, edx) after [`counting_loop`], computed in Rust.
pub fn counting_loop_expected(iterations: u32) -> (u32, u32) {
    let (mut sum, mut mix) = (0u32, 0u32);
    for count in (1..=iterations).rev() {
        sum = sum.wrapping_add(count);
        mix ^= sum;
    }
    (sum, mix)
}
