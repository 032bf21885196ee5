//! Guest physical memory and the bus interface.
//!
//! ```text
//!   CPU / MMU ──(PhysAddr)──► GuestMemory ──► RAM (one anonymous memmap2 mapping)
//!                                  │
//!                                  └──► not RAM (MMIO hole or unbacked) ──► Bus::mmio_*
//! ```
//!
//! This crate sits at the bottom of the popek crate graph. It owns guest RAM and
//! defines the [`Bus`] trait through which the CPU reaches port I/O and MMIO
//! without ever seeing a concrete device. The one rule that keeps the host safe:
//! every access is checked against the mapping's length before it touches host
//! memory, so no guest address can reach host memory outside the mapping.

mod addr;
mod bus;
mod ram;

pub use addr::{LinearAddr, PhysAddr, Port};
pub use bus::{AccessSize, Bus, NullBus};
pub use ram::{DEFAULT_RAM_SIZE, GuestMemory, MemoryError, Region, STORE_MAP_BYTES, STORE_MAP_PAGE0};
