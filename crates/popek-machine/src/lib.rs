//! The PC board: wires guest RAM, the CPU and the device bus, loads kernels and
//! runs them.
//!
//! ```text
//!   popek CLI ─► popek-machine ─┬─► multiboot / linux loaders ─► GuestMemory
//!                               ├─► firmware tables (BDA, MP table, E820 map)
//!                               ├─► engine (interpreter / JIT) ─► Cpu
//!                               ├─► device bus (PIC, PIT, UART, IDE, …)
//!                               └─► disk images behind the IDE disks (file, snapshot, memory)
//! ```

pub mod console;
pub mod debug;
pub mod disk;
pub mod firmware;
pub mod linux;
pub mod lockstep;
pub mod machine;
pub mod multiboot;
pub mod symbols;

pub use machine::{
    Engine, EngineKind, MAX_CODE_CACHE, MIN_CODE_CACHE, Machine, MachineConfig, MachineError, Prelude, RunConfig,
    RunStats, StopReason,
};
