//! Run short x86-64 snippets natively on the host CPU, for differential tests.
//!
//! ```text
//!   test harness ──(code, HostState)──► HostRunner::run ──► [prologue | snippet | epilogue]
//!        ▲                                                       (W^X code mapping)
//!        └────────────────(HostState after the snippet)──────────────┘
//! ```
//!
//! Test support only: it sits beside the crate graph and no emulator crate depends on
//! it. The harness compares popek's 32-bit interpreter against the real CPU for
//! ALU, shift, multiply, divide, bit and string instructions, whose 64-bit-mode
//! encodings with 8/16/32-bit operands behave exactly as in 32-bit mode.
//!
//! # What a snippet may do
//! - Use every GPR except RSP. RSP points at the runner's own stack frame; the
//!   snippet may not read, write or implicitly use it (PUSH/POP/CALL/RET are refused
//!   by [`HostRunner::run`] with [`HostCpuError::UsesStackPointer`] or
//!   [`HostCpuError::ControlFlow`]).
//! - Access memory only through pointers the caller put into registers, normally
//!   into [`HostRunner::scratch`].
//! - Branch only within itself (to an instruction start or to its very end).
//!
//! # Faults kill the process
//! The snippet runs natively with no signal handler: `DIV` by zero or with a
//! quotient overflow, a wild memory access, a privileged instruction (`HLT`, `CLI`,
//! `IN`/`OUT`…) terminates the whole test process. Callers must filter out
//! faulting inputs before calling [`HostRunner::run`].

mod stub;
mod validate;

use memmap2::{Mmap, MmapMut};

/// Errors from preparing or running a snippet.
#[derive(Debug, thiserror::Error)]
pub enum HostCpuError {
    /// The host is not x86-64, so snippets cannot run natively.
    #[error("native snippet execution needs an x86-64 host")]
    Unsupported,
    /// Creating or re-protecting a mapping failed.
    #[error("mapping host memory failed: {0}")]
    Map(#[from] std::io::Error),
    /// Assembling the entry/exit stub failed (a bug in this crate).
    #[error("assembling the entry/exit stub failed: {0}")]
    Stub(#[from] iced_x86::IcedError),
    /// The snippet does not fit in the code mapping.
    #[error("snippet is {len} bytes, at most {max} fit")]
    CodeTooLarge {
        /// Snippet length in bytes.
        len: usize,
        /// Largest snippet length accepted.
        max: usize,
    },
    /// The snippet holds bytes that do not decode, or ends in the middle of an instruction.
    #[error("snippet does not decode at offset {offset}: {bytes:02x?}")]
    InvalidCode {
        /// Offset of the undecodable instruction in the snippet.
        offset: usize,
        /// Up to 15 bytes starting at `offset`.
        bytes: Vec<u8>,
    },
    /// An instruction reads or writes RSP, explicitly or implicitly.
    #[error("snippet uses RSP at offset {offset}: {instr}")]
    UsesStackPointer {
        /// Offset of the instruction in the snippet.
        offset: usize,
        /// The instruction, disassembled.
        instr: String,
    },
    /// An instruction could leave the snippet (call, return, interrupt, indirect or
    /// far branch, or a branch that does not land on an instruction of the snippet).
    #[error("snippet transfers control out of itself at offset {offset}: {instr}")]
    ControlFlow {
        /// Offset of the instruction in the snippet.
        offset: usize,
        /// The instruction, disassembled.
        instr: String,
    },
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, HostCpuError>;

/// RFLAGS bits (Intel SDM Vol. 1 §3.4.3).
pub mod flags {
    /// Carry flag.
    pub const CF: u64 = 1 << 0;
    /// Parity flag.
    pub const PF: u64 = 1 << 2;
    /// Auxiliary carry flag.
    pub const AF: u64 = 1 << 4;
    /// Zero flag.
    pub const ZF: u64 = 1 << 6;
    /// Sign flag.
    pub const SF: u64 = 1 << 7;
    /// Trap flag (never set by the runner).
    pub const TF: u64 = 1 << 8;
    /// Direction flag.
    pub const DF: u64 = 1 << 10;
    /// Overflow flag.
    pub const OF: u64 = 1 << 11;
    /// Alignment-check flag (never set by the runner).
    pub const AC: u64 = 1 << 18;
    /// The flags a snippet receives from and reports to the caller.
    pub const ARITH: u64 = CF | PF | AF | ZF | SF | DF | OF;
}

/// GPRs and flags before or after a snippet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostState {
    /// GPRs in x86-64 encoding order (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15).
    /// The RSP slot is ignored on input and echoed unchanged on output.
    pub gpr: [u64; 16],
    /// RFLAGS; only the [`flags::ARITH`] bits are used on input and reported on output.
    pub rflags: u64,
}

#[allow(missing_docs)] // Index names are the register names.
impl HostState {
    pub const RAX: usize = 0;
    pub const RCX: usize = 1;
    pub const RDX: usize = 2;
    pub const RBX: usize = 3;
    pub const RSP: usize = 4;
    pub const RBP: usize = 5;
    pub const RSI: usize = 6;
    pub const RDI: usize = 7;
    pub const R8: usize = 8;
    pub const R9: usize = 9;
    pub const R10: usize = 10;
    pub const R11: usize = 11;
    pub const R12: usize = 12;
    pub const R13: usize = 13;
    pub const R14: usize = 14;
    pub const R15: usize = 15;
}

/// Size of the code mapping (prologue + snippet + epilogue).
pub const CODE_SIZE: usize = 64 * 1024;
/// Size of the scratch data area.
pub const SCRATCH_SIZE: usize = 64 * 1024;

/// The code mapping, writable or executable, never both (W^X).
enum CodeArea {
    Writable(MmapMut),
    Executable(Mmap),
}

/// Runs snippets on the host CPU, reusing one code mapping and one scratch area.
pub struct HostRunner {
    /// `None` only if re-protecting failed mid-run; the next run maps afresh.
    code: Option<CodeArea>,
    scratch: MmapMut,
    prologue: Vec<u8>,
    epilogue: Vec<u8>,
}

impl HostRunner {
    /// Maps the code and scratch areas and assembles the stub.
    pub fn new() -> Result<Self> {
        if !cfg!(target_arch = "x86_64") {
            return Err(HostCpuError::Unsupported);
        }
        Ok(Self {
            code: Some(CodeArea::Writable(MmapMut::map_anon(CODE_SIZE)?)),
            scratch: MmapMut::map_anon(SCRATCH_SIZE)?,
            prologue: stub::prologue()?,
            epilogue: stub::epilogue()?,
        })
    }

    /// The scratch area ([`SCRATCH_SIZE`] bytes, zeroed at creation, kept between runs).
    pub fn scratch(&mut self) -> &mut [u8] {
        &mut self.scratch
    }

    /// Host address of the scratch area, for pointers passed to snippets in registers.
    pub fn scratch_base(&self) -> u64 {
        self.scratch.as_ptr() as u64
    }

    /// Largest snippet [`run`](Self::run) accepts.
    pub fn max_code_len(&self) -> usize {
        CODE_SIZE - self.prologue.len() - self.epilogue.len()
    }

    /// Runs `code` (raw x86-64 bytes, no `ret`) with `input` and returns the state after it.
    ///
    /// See the crate docs for what a snippet may do; a snippet that faults kills the process.
    pub fn run(&mut self, code: &[u8], input: &HostState) -> Result<HostState> {
        let max = self.max_code_len();
        if code.len() > max {
            return Err(HostCpuError::CodeTooLarge { len: code.len(), max });
        }
        validate::check(code)?;

        let mut buf = match self.code.take() {
            Some(CodeArea::Writable(buf)) => buf,
            Some(CodeArea::Executable(buf)) => buf.make_mut()?,
            None => MmapMut::map_anon(CODE_SIZE)?,
        };
        let (pro, epi) = (self.prologue.len(), self.epilogue.len());
        buf[..pro].copy_from_slice(&self.prologue);
        buf[pro..pro + code.len()].copy_from_slice(code);
        buf[pro + code.len()..pro + code.len() + epi].copy_from_slice(&self.epilogue);
        let exec = buf.make_exec()?;

        let mut output = *input;
        let entry_ptr = exec.as_ptr();
        // SAFETY: `exec` is a live executable mapping holding prologue + snippet +
        // epilogue, which together form a function with this signature that follows the
        // SysV ABI: it saves/restores the callee-saved registers, keeps RSP balanced and
        // aligned, and returns with DF clear. `validate::check` proved the snippet decodes
        // completely, never touches RSP and cannot branch out of itself, so control reaches
        // the epilogue. Its memory accesses go through caller-chosen registers; the crate
        // docs make avoiding faults and wild accesses the caller's duty (test-only code).
        let entry: unsafe extern "sysv64" fn(*const HostState, *mut HostState) =
            unsafe { core::mem::transmute(entry_ptr) };
        // SAFETY: see above; `input` and `output` are valid, distinct `HostState`s.
        unsafe { entry(input, &mut output) };
        self.code = Some(CodeArea::Executable(exec));

        output.gpr[HostState::RSP] = input.gpr[HostState::RSP];
        output.rflags &= flags::ARITH;
        Ok(output)
    }
}

#[cfg(test)]
mod tests;
