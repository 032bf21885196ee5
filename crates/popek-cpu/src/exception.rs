//! Architectural exceptions (SDM Vol. 3A 6.15) and the events that stop an instruction.
//!
//! Guest faults are not Rust errors in the host sense: they are values handed to
//! [`crate::Cpu::deliver`], which vectors them through the guest's IDT. Host-side
//! conditions (an instruction popek does not implement, a triple fault) are
//! [`Event`]s the run loop reports to the user.

use std::fmt;

/// An exception the CPU raises, with its error code where the SDM gives one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exception {
    /// #DE, vector 0.
    DivideError,
    /// #DB, vector 1.
    Debug,
    /// #BP, vector 3 (INT3).
    Breakpoint,
    /// #OF, vector 4 (INTO).
    Overflow,
    /// #BR, vector 5 (BOUND).
    BoundRange,
    /// #UD, vector 6.
    InvalidOpcode,
    /// #NM, vector 7.
    DeviceNotAvailable,
    /// #DF, vector 8 (error code 0).
    DoubleFault,
    /// #TS, vector 10, with the error code (selector-format).
    InvalidTss(u16),
    /// #NP, vector 11.
    SegmentNotPresent(u16),
    /// #SS, vector 12.
    StackFault(u16),
    /// #GP, vector 13.
    GeneralProtection(u16),
    /// #PF, vector 14: the faulting linear address (goes to CR2) and the error code.
    PageFault {
        /// Linear address that faulted.
        addr: u32,
        /// P | W/R | U/S | RSVD | I/D bits.
        code: u32,
    },
    /// #MF, vector 16.
    FloatingPoint,
    /// #AC, vector 17.
    AlignmentCheck,
}

/// Page-fault error code bits (SDM 4.7).
#[allow(missing_docs)]
pub mod pf {
    pub const P: u32 = 1 << 0;
    pub const W: u32 = 1 << 1;
    pub const U: u32 = 1 << 2;
    pub const RSVD: u32 = 1 << 3;
    pub const ID: u32 = 1 << 4;
}

/// How a double-fault decision classifies an exception (SDM Table 6-4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionClass {
    /// Handled serially.
    Benign,
    /// #DE, #TS, #NP, #SS, #GP.
    Contributory,
    /// #PF.
    PageFault,
    /// #DF itself.
    DoubleFault,
}

impl Exception {
    /// The IDT vector.
    pub const fn vector(self) -> u8 {
        match self {
            Exception::DivideError => 0,
            Exception::Debug => 1,
            Exception::Breakpoint => 3,
            Exception::Overflow => 4,
            Exception::BoundRange => 5,
            Exception::InvalidOpcode => 6,
            Exception::DeviceNotAvailable => 7,
            Exception::DoubleFault => 8,
            Exception::InvalidTss(_) => 10,
            Exception::SegmentNotPresent(_) => 11,
            Exception::StackFault(_) => 12,
            Exception::GeneralProtection(_) => 13,
            Exception::PageFault { .. } => 14,
            Exception::FloatingPoint => 16,
            Exception::AlignmentCheck => 17,
        }
    }

    /// The error code pushed on the handler's stack, if this vector has one.
    pub const fn error_code(self) -> Option<u32> {
        match self {
            Exception::DoubleFault | Exception::AlignmentCheck => Some(0),
            Exception::InvalidTss(c)
            | Exception::SegmentNotPresent(c)
            | Exception::StackFault(c)
            | Exception::GeneralProtection(c) => Some(c as u32),
            Exception::PageFault { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Class for the double-fault rules.
    pub const fn class(self) -> ExceptionClass {
        match self {
            Exception::DivideError
            | Exception::InvalidTss(_)
            | Exception::SegmentNotPresent(_)
            | Exception::StackFault(_)
            | Exception::GeneralProtection(_) => ExceptionClass::Contributory,
            Exception::PageFault { .. } => ExceptionClass::PageFault,
            Exception::DoubleFault => ExceptionClass::DoubleFault,
            _ => ExceptionClass::Benign,
        }
    }

    /// Traps report the address of the next instruction; everything else here is a fault.
    pub const fn is_trap(self) -> bool {
        matches!(self, Exception::Breakpoint | Exception::Overflow)
    }

    /// Short mnemonic, e.g. `#GP`.
    pub const fn mnemonic(self) -> &'static str {
        match self {
            Exception::DivideError => "#DE",
            Exception::Debug => "#DB",
            Exception::Breakpoint => "#BP",
            Exception::Overflow => "#OF",
            Exception::BoundRange => "#BR",
            Exception::InvalidOpcode => "#UD",
            Exception::DeviceNotAvailable => "#NM",
            Exception::DoubleFault => "#DF",
            Exception::InvalidTss(_) => "#TS",
            Exception::SegmentNotPresent(_) => "#NP",
            Exception::StackFault(_) => "#SS",
            Exception::GeneralProtection(_) => "#GP",
            Exception::PageFault { .. } => "#PF",
            Exception::FloatingPoint => "#MF",
            Exception::AlignmentCheck => "#AC",
        }
    }
}

impl fmt::Display for Exception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.error_code()) {
            (Exception::PageFault { addr, code }, _) => {
                write!(f, "#PF(addr={addr:#010x}, code={code:#x})")
            }
            (_, Some(c)) => write!(f, "{}({c:#x})", self.mnemonic()),
            (_, None) => f.write_str(self.mnemonic()),
        }
    }
}

/// Why an instruction (or a block) did not simply run to completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An architectural exception to deliver to the guest.
    Exception(Exception),
    /// The guest used something popek does not implement: a host-side error.
    Unsupported(Unsupported),
}

impl From<Exception> for Event {
    #[inline]
    fn from(e: Exception) -> Self {
        Event::Exception(e)
    }
}

impl From<Unsupported> for Event {
    fn from(u: Unsupported) -> Self {
        Event::Unsupported(u)
    }
}

/// An instruction or feature popek does not implement, with where the guest used it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsupported {what} at eip {eip:#010x} (bytes: {})", hex_bytes(.bytes))]
pub struct Unsupported {
    /// What is missing, e.g. "task gate" or "instruction FSIN".
    pub what: String,
    /// EIP of the instruction.
    pub eip: u32,
    /// Its bytes (may be empty if unknown).
    pub bytes: Vec<u8>,
}

fn hex_bytes(b: &[u8]) -> String {
    if b.is_empty() {
        return "unknown".into();
    }
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

/// Result of executing one instruction.
pub type ExecResult = Result<(), Event>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_and_codes() {
        assert_eq!(Exception::GeneralProtection(0x10).vector(), 13);
        assert_eq!(Exception::GeneralProtection(0x10).error_code(), Some(0x10));
        assert_eq!(Exception::InvalidOpcode.error_code(), None);
        assert_eq!(Exception::DoubleFault.error_code(), Some(0));
        assert_eq!(Exception::PageFault { addr: 1, code: 7 }.error_code(), Some(7));
        assert_eq!(Exception::PageFault { addr: 0x1000, code: 2 }.to_string(), "#PF(addr=0x00001000, code=0x2)");
    }

    #[test]
    fn unsupported_message_names_address_and_bytes() {
        let u = Unsupported { what: "instruction FSIN".into(), eip: 0x1234, bytes: vec![0xd9, 0xfe] };
        assert_eq!(u.to_string(), "unsupported instruction FSIN at eip 0x00001234 (bytes: d9 fe)");
    }
}
