//! The entry/exit stub wrapped around a snippet.
//!
//! Called as `extern "sysv64" fn(input: *const HostState, output: *mut HostState)`.
//! The prologue saves the SysV callee-saved registers and the output pointer on the
//! host stack, merges the input's arithmetic flags into the live RFLAGS and loads every
//! GPR except RSP. The epilogue captures RFLAGS first (PUSHFQ does not change flags),
//! stores every GPR except RSP, executes CLD (the ABI requires DF=0 on return),
//! restores the callee-saved registers and returns. Both halves are position
//! independent, so they are assembled once and copied around each snippet.

use core::mem::offset_of;

use iced_x86::IcedError;
use iced_x86::code_asm::*;

use crate::{HostState, flags};

/// RFLAGS bits the stub always clears in the live flags: TF (single-step trap) and
/// AC (alignment check), on top of the bits taken from the input.
const FORCE_CLEAR: u64 = flags::TF | flags::AC;

/// GPRs loaded and stored by the stub, by index, except RDI (the struct pointer,
/// handled last on load and first on store) and RSP (never touched).
const PLAIN_GPRS: [(usize, AsmRegister64); 14] = [
    (HostState::RAX, rax),
    (HostState::RCX, rcx),
    (HostState::RDX, rdx),
    (HostState::RBX, rbx),
    (HostState::RBP, rbp),
    (HostState::RSI, rsi),
    (HostState::R8, r8),
    (HostState::R9, r9),
    (HostState::R10, r10),
    (HostState::R11, r11),
    (HostState::R12, r12),
    (HostState::R13, r13),
    (HostState::R14, r14),
    (HostState::R15, r15),
];

/// SysV callee-saved registers, in push order.
const CALLEE_SAVED: [AsmRegister64; 6] = [rbx, rbp, r12, r13, r14, r15];

/// Byte offset of `gpr[index]` inside [`HostState`].
#[expect(clippy::cast_possible_truncation, reason = "offsets inside the 136-byte HostState fit in i32")]
fn gpr_offset(index: usize) -> i32 {
    (offset_of!(HostState, gpr) + index * 8) as i32
}

/// Byte offset of `rflags` inside [`HostState`].
#[expect(clippy::cast_possible_truncation, reason = "offsets inside the 136-byte HostState fit in i32")]
fn rflags_offset() -> i32 {
    offset_of!(HostState, rflags) as i32
}

/// Machine code placed before the snippet. Entry: RDI = input, RSI = output.
pub(crate) fn prologue() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(64)?;
    for reg in CALLEE_SAVED {
        a.push(reg)?;
    }
    // 7 pushes after the return address: RSP is 16-byte aligned from here on.
    a.push(rsi)?;
    // rflags = (live & !(ARITH | TF | AC)) | (input & ARITH)
    a.mov(rax, qword_ptr(rdi + rflags_offset()))?;
    a.mov(rdx, flags::ARITH)?;
    a.and(rax, rdx)?;
    a.pushfq()?;
    a.pop(rcx)?;
    a.mov(rdx, !(flags::ARITH | FORCE_CLEAR))?;
    a.and(rcx, rdx)?;
    a.or(rcx, rax)?;
    a.push(rcx)?;
    a.popfq()?;
    // MOV leaves flags alone from here to the snippet.
    for (index, reg) in PLAIN_GPRS {
        a.mov(reg, qword_ptr(rdi + gpr_offset(index)))?;
    }
    a.mov(rdi, qword_ptr(rdi + gpr_offset(HostState::RDI)))?;
    a.assemble(0)
}

/// Machine code placed after the snippet.
pub(crate) fn epilogue() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(64)?;
    a.pushfq()?;
    a.push(rdi)?;
    // [rsp] = snippet RDI, [rsp+8] = RFLAGS, [rsp+16] = output pointer.
    a.mov(rdi, qword_ptr(rsp + 16))?;
    for (index, reg) in PLAIN_GPRS {
        a.mov(qword_ptr(rdi + gpr_offset(index)), reg)?;
    }
    a.pop(rax)?;
    a.mov(qword_ptr(rdi + gpr_offset(HostState::RDI)), rax)?;
    a.pop(rax)?;
    a.mov(qword_ptr(rdi + rflags_offset()), rax)?;
    a.cld()?;
    a.pop(rsi)?; // discard the output pointer
    for reg in CALLEE_SAVED.iter().rev() {
        a.pop(*reg)?;
    }
    a.ret()?;
    a.assemble(0)
}
