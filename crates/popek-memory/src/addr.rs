//! Address newtypes: a guest address is never a bare integer.

use std::fmt;

/// A guest physical address (what the MMU produces, what RAM and MMIO see).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PhysAddr(pub u32);

/// A guest linear address (segment base + offset, before paging).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LinearAddr(pub u32);

/// An I/O port number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Port(pub u16);

macro_rules! addr_impls {
    ($t:ident, $prefix:literal, $width:literal) => {
        impl $t {
            /// The raw value.
            #[inline]
            pub const fn value(self) -> u32 {
                self.0 as u32
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{:#0", $width, "x}"), self.0)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!("{:#0", $width, "x}"), self.0)
            }
        }
    };
}

addr_impls!(PhysAddr, "P:", 10);
addr_impls!(LinearAddr, "L:", 10);
addr_impls!(Port, "port ", 6);

impl PhysAddr {
    /// The address `delta` bytes further on (wrapping at 4 GiB like the address bus).
    #[inline]
    pub const fn add(self, delta: u32) -> Self {
        PhysAddr(self.0.wrapping_add(delta))
    }
    /// The 4 KiB page frame number.
    #[inline]
    pub const fn page(self) -> u32 {
        self.0 >> 12
    }
}

impl LinearAddr {
    /// The address `delta` bytes further on (wrapping at 4 GiB).
    #[inline]
    pub const fn add(self, delta: u32) -> Self {
        LinearAddr(self.0.wrapping_add(delta))
    }
    /// The 4 KiB virtual page number.
    #[inline]
    pub const fn page(self) -> u32 {
        self.0 >> 12
    }
}
