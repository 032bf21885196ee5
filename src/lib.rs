//! popek: an educational x86 full-virtualization emulator built on binary translation.
//!
//! This is the thin library facade that the CLI, `tests/` and `benches/` use. It
//! re-exports the component crates and offers [`demo`], a tiny built-in program.
//!
//! ```text
//!   popek (this crate) ─► popek-interp ─► popek-vmm ─► popek-cpu ─► popek-memory
//! ```

pub use popek_cpu as cpu;
pub use popek_devices as devices;
pub use popek_gdb as gdb;
pub use popek_guests as guests;
pub use popek_interp as interp;
pub use popek_jit as jit;
pub use popek_machine as machine;
pub use popek_memory as memory;
pub use popek_vmm as vmm;

pub mod cli;
pub mod demo;
pub mod fuzzing;
