//! Exception and interrupt delivery through the IDT (SDM Vol. 3A 6.12).
//!
//! STUB: to be filled in by the system-instructions work. The signatures are fixed.

use crate::Cpu;
use crate::exception::{Event, Exception, Unsupported};
use crate::state::flags;
use popek_memory::Bus;

impl Cpu {
    /// True if an external interrupt may be taken now (IF=1 and no STI/MOV SS shadow).
    #[inline]
    pub fn interrupts_enabled(&self) -> bool {
        self.state.eflags & flags::IF != 0 && !self.state.interrupt_shadow
    }

    /// Delivers exception `e` through the IDT. `state.eip` must already hold the EIP
    /// to push (the faulting instruction for faults, the next one for traps).
    /// A fault during delivery escalates per the double-fault rules; a fault while
    /// delivering #DF is `Err(Event::TripleFault)`.
    pub fn deliver_exception(&mut self, bus: &mut dyn Bus, e: Exception) -> Result<(), Event> {
        let _ = bus;
        Err(Event::Unsupported(Unsupported {
            what: format!("exception delivery ({e})"),
            eip: self.state.eip,
            bytes: vec![],
        }))
    }

    /// INT n / INT3 / INTO: delivers `vector` as a software interrupt (gate DPL is
    /// checked against CPL). `state.eip` holds the next instruction.
    pub fn deliver_software_interrupt(&mut self, bus: &mut dyn Bus, vector: u8) -> Result<(), Event> {
        let _ = bus;
        Err(Event::Unsupported(Unsupported {
            what: format!("software interrupt {vector:#x}"),
            eip: self.state.eip,
            bytes: vec![],
        }))
    }

    /// Delivers external interrupt `vector` (the caller checked [`Cpu::interrupts_enabled`]).
    /// Clears `halted`.
    pub fn deliver_external(&mut self, bus: &mut dyn Bus, vector: u8) -> Result<(), Event> {
        let _ = bus;
        Err(Event::Unsupported(Unsupported {
            what: format!("external interrupt {vector:#x}"),
            eip: self.state.eip,
            bytes: vec![],
        }))
    }
}
