//! Test doubles: a fake IRQ sink that records line levels and rising edges,
//! and a harness holding a fake clock and a stop slot.

use crate::bus::{DeviceContext, IrqSink, StopRequest};

/// Records the level of every line and counts rising edges per line.
#[derive(Debug, Default)]
pub struct FakeIrq {
    /// Current level of each line.
    pub level: [bool; 16],
    /// Low-to-high transitions seen per line.
    pub rising: [u32; 16],
}

impl IrqSink for FakeIrq {
    fn set_irq(&mut self, irq: u8, level: bool) {
        let i = usize::from(irq);
        if level && !self.level[i] {
            self.rising[i] += 1;
        }
        self.level[i] = level;
    }
}

/// A fake clock, a fake IRQ sink and a stop slot.
#[derive(Debug, Default)]
pub struct Harness {
    /// Virtual time in ns.
    pub now: u64,
    /// The IRQ lines.
    pub irq: FakeIrq,
    /// The stop slot.
    pub stop: Option<StopRequest>,
}

impl Harness {
    /// A context at the current fake time.
    pub fn ctx(&mut self) -> DeviceContext<'_> {
        DeviceContext::new(self.now, &mut self.irq, &mut self.stop)
    }
}
