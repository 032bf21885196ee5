//! The device bus: port and MMIO range maps, device traits, interrupt lines,
//! virtual time and stop requests.
//!
//! Devices register for ranges of ports or physical addresses; an access is
//! routed to the device whose range holds the first byte and the device is
//! called with the range's base, the offset inside the range, the access size
//! and (for writes) the data. Unclaimed ports read all ones and ignore writes
//! (like an empty ISA bus), and are counted per port.
//!
//! An optional access log ([`DeviceBus::set_access_log`]) records every access the CPU
//! makes, as it made it (`popek run --trace io` prints it); off, it costs one predictable
//! branch per access.

use std::any::Any;
use std::collections::BTreeMap;

use popek_memory::{AccessSize, Bus, PhysAddr, Port};

use crate::intc::InterruptControllers;
use crate::ioapic::{IOAPIC_BASE, IOAPIC_LEN, IoApic};
use crate::lapic::{LAPIC_BASE, LAPIC_LEN, Lapic};
use crate::pic::PicPair;

/// A bus registration error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// A port range overlaps a range that is already registered.
    #[error("{device}: ports {base}+{len:#x} overlap {existing} at {existing_base}+{existing_len:#x}")]
    PortOverlap {
        /// Name of the device being registered.
        device: &'static str,
        /// First port of the new range.
        base: Port,
        /// Number of ports in the new range.
        len: u16,
        /// Name of the device already there.
        existing: &'static str,
        /// First port of the existing range.
        existing_base: Port,
        /// Number of ports in the existing range.
        existing_len: u16,
    },
    /// An MMIO range overlaps a range that is already registered.
    #[error("{device}: MMIO {base}+{len:#x} overlaps {existing} at {existing_base}+{existing_len:#x}")]
    MmioOverlap {
        /// Name of the device being registered.
        device: &'static str,
        /// First address of the new range.
        base: PhysAddr,
        /// Length of the new range in bytes.
        len: u32,
        /// Name of the device already there.
        existing: &'static str,
        /// First address of the existing range.
        existing_base: PhysAddr,
        /// Length of the existing range in bytes.
        existing_len: u32,
    },
    /// A range is empty or runs past the end of the port / address space.
    #[error("{device}: invalid range {base:#x}+{len:#x}")]
    BadRange {
        /// Name of the device being registered.
        device: &'static str,
        /// First port or address.
        base: u32,
        /// Length.
        len: u32,
    },
}

/// Result of bus registration.
pub type Result<T> = std::result::Result<T, BusError>;

/// Why a device asks the run loop to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRequest {
    /// A write of `value` to the debug-exit port (QEMU `isa-debug-exit`).
    DebugExit {
        /// The value written (all bytes of the access).
        value: u32,
    },
    /// A system reset (i8042 command 0xFE / output-port bit 0, or port 0xCF9).
    Reset,
}

impl StopRequest {
    /// The process exit status QEMU uses for this stop: `(value << 1) | 1` for
    /// debug-exit (the host OS keeps the low 8 bits), `None` for a reset.
    pub fn exit_status(self) -> Option<i32> {
        match self {
            StopRequest::DebugExit { value } => Some(((value << 1) | 1) as i32),
            StopRequest::Reset => None,
        }
    }
}

/// Where devices drive their interrupt request lines (ISA IRQ 0–15).
///
/// A device sets the *level* of its line; edge detection is the interrupt
/// controller's business (8259A edge mode latches a low-to-high transition).
pub trait IrqSink {
    /// Drive ISA line `irq` (0–15) to `level` (true = asserted).
    fn set_irq(&mut self, irq: u8, level: bool);
}

/// What a device may see and do during an access or a time step.
pub struct DeviceContext<'a> {
    now_ns: u64,
    irq: &'a mut dyn IrqSink,
    stop: &'a mut Option<StopRequest>,
}

impl<'a> DeviceContext<'a> {
    /// A context at virtual time `now_ns` with the given IRQ sink and stop slot.
    pub fn new(now_ns: u64, irq: &'a mut dyn IrqSink, stop: &'a mut Option<StopRequest>) -> Self {
        DeviceContext { now_ns, irq, stop }
    }
    /// Virtual time in nanoseconds since power-on.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }
    /// Drive interrupt line `irq` to `level`.
    #[inline]
    pub fn set_irq(&mut self, irq: u8, level: bool) {
        self.irq.set_irq(irq, level);
    }
    /// Ask the run loop to stop; the first request stands until it is taken.
    pub fn request_stop(&mut self, why: StopRequest) {
        if self.stop.is_none() {
            *self.stop = Some(why);
        }
    }
}

/// A device reached through I/O ports.
pub trait PortDevice: Any + Send {
    /// Short name for errors and listings.
    fn name(&self) -> &'static str;
    /// Read `size` bytes at `offset` inside the range registered at `base`.
    fn read(&mut self, ctx: &mut DeviceContext<'_>, base: Port, offset: u16, size: AccessSize) -> u32;
    /// Write the low `size` bytes of `value` at `offset` inside the range at `base`.
    fn write(&mut self, ctx: &mut DeviceContext<'_>, base: Port, offset: u16, size: AccessSize, value: u32);
    /// True if the device's registers are 8 bits wide: the bus then splits a
    /// 16/32-bit access into byte accesses at consecutive ports (as the ISA
    /// bus does), each routed on its own. Default: true.
    fn byte_wide(&self) -> bool {
        true
    }
    /// Virtual time moved to `ctx.now_ns()`: update timers, raise or lower lines.
    ///
    /// Contract: the bus calls this after any access to the device or to
    /// its `&mut` (see [`DeviceBus::port_device_at_mut`]), and otherwise only
    /// once time reaches [`PortDevice::next_deadline`]. So a device must
    /// report as a deadline every moment at which it would change a line on
    /// its own, and must derive time-dependent register values from
    /// `ctx.now_ns()` at the access rather than from the last `advance`.
    fn advance(&mut self, _ctx: &mut DeviceContext<'_>) {}
    /// The earliest virtual time (ns) at which the device will change an
    /// interrupt line on its own, if any.
    fn next_deadline(&self) -> Option<u64> {
        None
    }
    /// Push buffered output to its sink (the machine calls this at exit).
    fn flush(&mut self) {}
    /// The CPU's FERR# output changed ([`Bus::set_ferr`]). Only the chipset's x87 error
    /// logic ([`crate::ferr::FpuErrorLatch`]) listens; the default ignores it.
    fn ferr_changed(&mut self, _ctx: &mut DeviceContext<'_>, _asserted: bool) {}
    /// True if the device drives the CPU's IGNNE# input active ([`Bus::ignne`]). Default:
    /// false.
    fn drives_ignne(&self) -> bool {
        false
    }
    /// True if a read at `offset` changes nothing: no register, no line, no deadline
    /// ([`Bus::port_read_is_pure`]). Default: false.
    fn read_is_pure(&self, _offset: u16) -> bool {
        false
    }
}

/// A device reached through physical memory addresses that are not RAM.
pub trait MmioDevice: Any + Send {
    /// Short name for errors and listings.
    fn name(&self) -> &'static str;
    /// Read `size` bytes at `offset` inside the range registered at `base`.
    fn read(&mut self, ctx: &mut DeviceContext<'_>, base: PhysAddr, offset: u32, size: AccessSize) -> u32;
    /// Write the low `size` bytes of `value` at `offset` inside the range at `base`.
    fn write(&mut self, ctx: &mut DeviceContext<'_>, base: PhysAddr, offset: u32, size: AccessSize, value: u32);
}

/// Which address space an access of the log went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessSpace {
    /// Port I/O (IN, OUT, INS, OUTS).
    Port,
    /// Memory-mapped I/O: a physical address that is not RAM.
    Mmio,
}

/// One access of the bus's access log ([`DeviceBus::set_access_log`]), as the CPU made it:
/// before the bus splits it into byte accesses for a byte-wide device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Port or MMIO.
    pub space: AccessSpace,
    /// The port, or the physical address.
    pub addr: u32,
    /// The width.
    pub size: AccessSize,
    /// The value written, or the value the read returned.
    pub value: u32,
    /// True for a write (OUT, a store), false for a read.
    pub write: bool,
    /// The device at the address (for an access that spans byte-wide ports, the one at its
    /// first port); `None`: nothing is there (a read gives all ones, a write is dropped).
    pub device: Option<&'static str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PortTarget {
    Pic,
    Device(usize),
}

#[derive(Clone, Copy, Debug)]
struct PortRange {
    base: u16,
    /// Last port of the range (inclusive), so 0xFFFF can be covered.
    last: u16,
    target: PortTarget,
}

#[derive(Clone, Copy, Debug)]
struct MmioRange {
    base: u32,
    last: u32,
    device: usize,
}

/// The PC's port I/O and MMIO bus, with the interrupt controllers built in: the
/// 8259A pair, the I/O APIC and the local APIC ([`InterruptControllers`]).
///
/// The interrupt controllers are part of the bus (not registered devices)
/// because the machine talks to them directly: [`DeviceBus::interrupt_pending`],
/// [`DeviceBus::pending_interrupt_vector`] and [`DeviceBus::acknowledge_interrupt`]
/// (the INTA cycle) merge the local APIC's fixed interrupts and the 8259A's
/// (through LINT0) into one answer. They still answer their ports (0x20/0x21,
/// 0xA0/0xA1, ELCR 0x4D0/0x4D1) through the port map, and their MMIO pages (local
/// APIC at 0xFEE00000, I/O APIC at 0xFEC00000, 4 KiB each) before the registered
/// MMIO map. Every ISA line a device drives reaches both the 8259A pair and the
/// I/O APIC (see [`crate::ioapic`] for the pin mapping).
pub struct DeviceBus {
    now_ns: u64,
    intc: InterruptControllers,
    stop: Option<StopRequest>,
    port_devices: Vec<Box<dyn PortDevice>>,
    /// The port ranges, in the order they were registered.
    port_map: Vec<PortRange>,
    /// For each port, 1 + the index in `port_map` of the range that holds it, or 0: the
    /// lookup of every port access, one load.
    port_slot: Box<[u16]>,
    mmio_devices: Vec<Box<dyn MmioDevice>>,
    mmio_map: Vec<MmioRange>,
    unclaimed: BTreeMap<u16, u64>,
    unclaimed_mmio: u64,
    /// Cached minimum of the devices' deadlines (`u64::MAX`: none), valid
    /// unless `deadline_stale`.
    cached_deadline: u64,
    /// A device may have changed since `cached_deadline` was computed.
    deadline_stale: bool,
    /// The access log, when it is on.
    access_log: Option<Vec<Access>>,
    /// [`Bus::port_read_is_pure`]'s answers, by port, as it worked them out (asked for at
    /// every IN): bit 7 set once known, bits 0–2 for a byte, word and dword read. Emptied
    /// when a device is registered.
    pure_reads: Box<[std::cell::Cell<u8>]>,
    /// Some answer is in `pure_reads`.
    pure_reads_used: std::cell::Cell<bool>,
}

impl std::fmt::Debug for DeviceBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ports: Vec<String> = self
            .sorted_port_map()
            .iter()
            .map(|r| format!("{:#06x}-{:#06x} {}", r.base, r.last, self.target_name(r.target)))
            .collect();
        f.debug_struct("DeviceBus")
            .field("now_ns", &self.now_ns)
            .field("ports", &ports)
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

impl Default for DeviceBus {
    fn default() -> Self {
        Self::new()
    }
}

impl DeviceBus {
    /// A bus with only the interrupt controllers — the 8259A pair (at 0x20, 0xA0 and
    /// ELCR 0x4D0) in its power-on state, the I/O APIC and the local APIC in their
    /// reset states — at time 0.
    pub fn new() -> Self {
        Self::with_pic(PicPair::new())
    }

    /// A bus with the given 8259A pair state (and the APICs in their reset states;
    /// [`DeviceBus::interrupt_controllers_mut`] changes those).
    pub fn with_pic(pic: PicPair) -> Self {
        let mut bus = DeviceBus {
            port_slot: vec![0u16; 0x1_0000].into_boxed_slice(),
            now_ns: 0,
            intc: InterruptControllers::with_pic(pic),
            stop: None,
            port_devices: Vec::new(),
            port_map: Vec::new(),
            mmio_devices: Vec::new(),
            mmio_map: Vec::new(),
            unclaimed: BTreeMap::new(),
            unclaimed_mmio: 0,
            cached_deadline: u64::MAX,
            deadline_stale: true,
            access_log: None,
            pure_reads: (0..0x1_0000).map(|_| std::cell::Cell::new(0)).collect(),
            pure_reads_used: std::cell::Cell::new(false),
        };
        for (base, len) in PicPair::PORT_RANGES {
            bus.add_port_range(PortRange { base, last: base + (len - 1), target: PortTarget::Pic });
        }
        bus
    }

    /// Turns the access log on (empty) or off. While it is on, every port and MMIO access
    /// the CPU makes through [`Bus`] is recorded as an [`Access`] until
    /// [`DeviceBus::take_accesses`] takes it; what the machine does to a device directly
    /// (through `&mut`) is not.
    pub fn set_access_log(&mut self, on: bool) {
        self.access_log = on.then(Vec::new);
    }

    /// The accesses recorded since the last call, oldest first (none while the log is off).
    pub fn take_accesses(&mut self) -> Vec<Access> {
        self.access_log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// A port access made while the access log is on (`value`: the data of a write),
    /// recorded: out of line, off the path of a run without the log.
    #[cold]
    #[inline(never)]
    fn logged_port(&mut self, port: u16, size: AccessSize, value: Option<u32>) -> u32 {
        let device = self.find_port(port).map(|r| self.target_name(r.target));
        let read = self.port_access(port, size, value);
        let (addr, value, write) = (port.into(), value.unwrap_or(read) & size.ones(), value.is_some());
        self.record(Access { space: AccessSpace::Port, addr, size, value, write, device });
        read
    }

    /// An MMIO access made while the access log is on, recorded (see `logged_port`).
    #[cold]
    #[inline(never)]
    fn logged_mmio(&mut self, addr: PhysAddr, size: AccessSize, value: Option<u32>) -> u32 {
        let device = Self::BUILTIN_MMIO
            .iter()
            .find(|&&(_, base, len)| addr.0.wrapping_sub(base) < len)
            .map(|&(name, _, _)| name)
            .or_else(|| self.find_mmio(addr.0).map(|r| self.mmio_devices[r.device].name()));
        let read = match value {
            Some(v) => {
                self.mmio_access_write(addr, size, v);
                0
            }
            None => self.mmio_access_read(addr, size),
        };
        let (value, write) = (value.unwrap_or(read) & size.ones(), value.is_some());
        self.record(Access { space: AccessSpace::Mmio, addr: addr.0, size, value, write, device });
        read
    }

    /// Adds an access to the log.
    fn record(&mut self, access: Access) {
        if let Some(log) = &mut self.access_log {
            log.push(access);
        }
    }

    fn target_name(&self, t: PortTarget) -> &'static str {
        match t {
            PortTarget::Pic => "pic",
            PortTarget::Device(i) => self.port_devices[i].name(),
        }
    }

    /// Register `device` for the port ranges `(base, len)`. Every range is
    /// checked before anything is inserted; an overlap is an error.
    pub fn register_ports(&mut self, device: Box<dyn PortDevice>, ranges: &[(Port, u16)]) -> Result<()> {
        let name = device.name();
        let mut new = Vec::with_capacity(ranges.len());
        for &(base, len) in ranges {
            let last = u32::from(base.0) + u32::from(len);
            if len == 0 || last > 0x1_0000 {
                return Err(BusError::BadRange { device: name, base: base.value(), len: len.into() });
            }
            // No overflow: base + len <= 0x10000 was just checked.
            let last = base.0 + (len - 1);
            let clash =
                self.port_map.iter().chain(new.iter()).find(|r: &&PortRange| base.0 <= r.last && r.base <= last);
            if let Some(r) = clash {
                let existing = match r.target {
                    PortTarget::Device(i) if i == self.port_devices.len() => name,
                    t => self.target_name(t),
                };
                return Err(BusError::PortOverlap {
                    device: name,
                    base,
                    len,
                    existing,
                    existing_base: Port(r.base),
                    existing_len: r.last - r.base + 1,
                });
            }
            new.push(PortRange { base: base.0, last, target: PortTarget::Device(self.port_devices.len()) });
        }
        self.port_devices.push(device);
        new.into_iter().for_each(|r| self.add_port_range(r));
        if self.pure_reads_used.take() {
            self.pure_reads.iter().for_each(|c| c.set(0));
        }
        // Let the device publish its initial line levels (e.g. the PIT's OUT 0
        // is high from power-on), so that later updates are true edges.
        if let Some(dev) = self.port_devices.last_mut() {
            let mut ctx = DeviceContext::new(self.now_ns, &mut self.intc, &mut self.stop);
            dev.advance(&mut ctx);
        }
        Ok(())
    }

    /// Adds `r` (which overlaps no range) to `port_map` and `port_slot`.
    fn add_port_range(&mut self, r: PortRange) {
        self.port_map.push(r);
        let slot = u16::try_from(self.port_map.len()).expect("fewer port ranges than ports");
        self.port_slot[usize::from(r.base)..=usize::from(r.last)].fill(slot);
    }

    /// The port ranges by port.
    fn sorted_port_map(&self) -> Vec<PortRange> {
        let mut ranges = self.port_map.clone();
        ranges.sort_by_key(|r| r.base);
        ranges
    }

    /// Register `device` for the physical address range `base..base+len` (which
    /// must not overlap the built-in APIC pages either).
    pub fn register_mmio(&mut self, device: Box<dyn MmioDevice>, base: PhysAddr, len: u32) -> Result<()> {
        let name = device.name();
        let end = u64::from(base.0) + u64::from(len);
        if len == 0 || end > 1 << 32 {
            return Err(BusError::BadRange { device: name, base: base.0, len });
        }
        let last = base.0 + (len - 1);
        for (existing, b, l) in Self::BUILTIN_MMIO {
            if base.0 <= b + (l - 1) && b <= last {
                return Err(BusError::MmioOverlap {
                    device: name,
                    base,
                    len,
                    existing,
                    existing_base: PhysAddr(b),
                    existing_len: l,
                });
            }
        }
        if let Some(r) = self.mmio_map.iter().find(|r| base.0 <= r.last && r.base <= last) {
            return Err(BusError::MmioOverlap {
                device: name,
                base,
                len,
                existing: self.mmio_devices[r.device].name(),
                existing_base: PhysAddr(r.base),
                existing_len: r.last - r.base + 1,
            });
        }
        self.mmio_map.push(MmioRange { base: base.0, last, device: self.mmio_devices.len() });
        self.mmio_map.sort_by_key(|r| r.base);
        self.mmio_devices.push(device);
        Ok(())
    }

    /// The port map as `(base, count, device name)`, in port order (for
    /// listings such as `--stats`).
    pub fn port_map(&self) -> Vec<(Port, u32, &'static str)> {
        self.sorted_port_map()
            .iter()
            .map(|r| (Port(r.base), u32::from(r.last - r.base) + 1, self.target_name(r.target)))
            .collect()
    }

    /// The MMIO pages of the built-in interrupt controllers: (name, base, length).
    pub const BUILTIN_MMIO: [(&'static str, u32, u32); 2] =
        [("ioapic", IOAPIC_BASE, IOAPIC_LEN), ("lapic", LAPIC_BASE, LAPIC_LEN)];

    /// The MMIO ranges as `(base, len)`, registered and built in, in address
    /// order (the machine carves these out of RAM as holes).
    pub fn mmio_ranges(&self) -> Vec<(PhysAddr, u32)> {
        let mut v: Vec<(PhysAddr, u32)> =
            self.mmio_map.iter().map(|r| (PhysAddr(r.base), r.last - r.base + 1)).collect();
        v.extend(Self::BUILTIN_MMIO.iter().map(|&(_, b, l)| (PhysAddr(b), l)));
        v.sort_by_key(|&(b, _)| b.0);
        v
    }

    fn find_port(&self, port: u16) -> Option<PortRange> {
        let slot = self.port_slot[usize::from(port)];
        (slot != 0).then(|| self.port_map[usize::from(slot) - 1])
    }

    fn find_mmio(&self, addr: u32) -> Option<MmioRange> {
        let i = self.mmio_map.partition_point(|r| r.last < addr);
        self.mmio_map.get(i).filter(|r| r.base <= addr).copied()
    }

    /// The device of type `T` whose port range holds `port`.
    pub fn port_device_at<T: PortDevice>(&self, port: Port) -> Option<&T> {
        match self.find_port(port.0)?.target {
            PortTarget::Device(i) => {
                let dev: &dyn Any = self.port_devices[i].as_ref();
                dev.downcast_ref::<T>()
            }
            PortTarget::Pic => None,
        }
    }

    /// The device of type `T` whose port range holds `port`, mutably.
    pub fn port_device_at_mut<T: PortDevice>(&mut self, port: Port) -> Option<&mut T> {
        self.deadline_stale = true;
        match self.find_port(port.0)?.target {
            PortTarget::Device(i) => {
                let dev: &mut dyn Any = self.port_devices[i].as_mut();
                dev.downcast_mut::<T>()
            }
            PortTarget::Pic => None,
        }
    }

    /// The device of type `T` whose MMIO range holds `addr`.
    pub fn mmio_device_at<T: MmioDevice>(&self, addr: PhysAddr) -> Option<&T> {
        let r = self.find_mmio(addr.0)?;
        let dev: &dyn Any = self.mmio_devices[r.device].as_ref();
        dev.downcast_ref::<T>()
    }

    /// The device of type `T` whose MMIO range holds `addr`, mutably.
    pub fn mmio_device_at_mut<T: MmioDevice>(&mut self, addr: PhysAddr) -> Option<&mut T> {
        self.deadline_stale = true;
        let r = self.find_mmio(addr.0)?;
        let dev: &mut dyn Any = self.mmio_devices[r.device].as_mut();
        dev.downcast_mut::<T>()
    }

    /// The 8259A pair.
    pub fn pic(&self) -> &PicPair {
        &self.intc.pic
    }

    /// The 8259A pair, mutably (e.g. to raise a line from a test).
    pub fn pic_mut(&mut self) -> &mut PicPair {
        self.deadline_stale = true;
        &mut self.intc.pic
    }

    /// The local APIC.
    pub fn lapic(&self) -> &Lapic {
        &self.intc.lapic
    }

    /// The I/O APIC.
    pub fn ioapic(&self) -> &IoApic {
        &self.intc.ioapic
    }

    /// All the interrupt controllers, mutably (a line raised through this reaches
    /// both the 8259A pair and the I/O APIC, as a device's would).
    pub fn interrupt_controllers_mut(&mut self) -> &mut InterruptControllers {
        self.deadline_stale = true;
        &mut self.intc
    }

    /// Current virtual time in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Move virtual time forward to `now_ns` (earlier values are ignored: time
    /// never goes back) and let every device update its timers and lines.
    ///
    /// Cheap enough for every block boundary: unless a device was accessed
    /// (or handed out mutably) since the last full update, the devices are
    /// only visited once `now_ns` reaches the earliest deadline. Devices
    /// change their lines on their own only at deadlines, and compute
    /// time-dependent register values from the time of each access, so
    /// skipping the visits in between changes nothing the guest can see.
    pub fn advance_to(&mut self, now_ns: u64) {
        if now_ns < self.now_ns {
            return;
        }
        self.now_ns = now_ns;
        if !self.deadline_stale && now_ns < self.cached_deadline {
            return;
        }
        for dev in &mut self.port_devices {
            let mut ctx = DeviceContext::new(now_ns, &mut self.intc, &mut self.stop);
            dev.advance(&mut ctx);
        }
        self.intc.lapic.advance(now_ns);
        self.cached_deadline = self.compute_deadline().unwrap_or(u64::MAX);
        self.deadline_stale = false;
    }

    /// Flush every device's output sink (call at exit, before printing
    /// anything else).
    pub fn flush(&mut self) {
        for dev in &mut self.port_devices {
            dev.flush();
        }
    }

    /// The earliest virtual time at which some device has something to do
    /// (so a halted CPU can skip ahead to it), or `None` if nothing is armed.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.deadline_stale {
            // Up to date since the last visit: no access has happened since.
            return (self.cached_deadline != u64::MAX).then_some(self.cached_deadline);
        }
        self.compute_deadline()
    }

    /// Asks every device (and the local APIC's timer) for its next deadline.
    fn compute_deadline(&self) -> Option<u64> {
        let devices = self.port_devices.iter().filter_map(|d| d.next_deadline()).min();
        match (devices, self.intc.lapic.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// True if an NMI waits for the CPU (an NMI IPI to the local APIC).
    pub fn nmi_pending(&self) -> bool {
        self.intc.lapic.nmi_pending()
    }

    /// The CPU takes the pending NMI (true if there was one).
    pub fn take_nmi(&mut self) -> bool {
        self.intc.lapic.take_nmi()
    }

    /// True if the CPU's INTR is asserted: the local APIC has a deliverable fixed
    /// interrupt, or the 8259A pair has an unmasked request that reaches the CPU
    /// (LINT0 in ExtINT mode, or the APIC globally disabled).
    pub fn interrupt_pending(&self) -> bool {
        self.intc.intr()
    }

    /// The vector the next INTA cycle would deliver, without side effects.
    pub fn pending_interrupt_vector(&self) -> Option<u8> {
        self.intc.pending_vector()
    }

    /// The INTA cycle: if INTR is asserted, return the vector and move the
    /// request from IRR to ISR (of the local APIC, or of the 8259As when the
    /// vector comes from them).
    pub fn acknowledge_interrupt(&mut self) -> Option<u8> {
        self.intc.acknowledge()
    }

    /// The pending stop request, if any.
    pub fn stop_request(&self) -> Option<StopRequest> {
        self.stop
    }

    /// Take (and clear) the pending stop request.
    pub fn take_stop_request(&mut self) -> Option<StopRequest> {
        self.stop.take()
    }

    /// Accesses to unclaimed ports, per port, in port order.
    pub fn unclaimed_ports(&self) -> &BTreeMap<u16, u64> {
        &self.unclaimed
    }

    /// Number of accesses to unclaimed MMIO addresses.
    pub fn unclaimed_mmio_accesses(&self) -> u64 {
        self.unclaimed_mmio
    }

    /// [`Bus::port_read_is_pure`], worked out: ports no device claims (all ones) and
    /// devices that say so ([`PortDevice::read_is_pure`]); never the PICs (a read may
    /// acknowledge).
    fn port_read_is_pure_uncached(&self, port: Port, size: AccessSize) -> bool {
        let Some(r) = self.find_port(port.0) else {
            return true;
        };
        match r.target {
            PortTarget::Pic => false,
            PortTarget::Device(i) => {
                let dev = &self.port_devices[i];
                if size != AccessSize::Byte && dev.byte_wide() {
                    // Split into byte accesses, each routed on its own.
                    let mut bytes =
                        std::iter::successors(Some(port.0), |p| Some(p.wrapping_add(1))).take(size.bytes() as usize);
                    bytes.all(|p| self.port_read_is_pure_uncached(Port(p), AccessSize::Byte))
                } else {
                    dev.read_is_pure(port.0 - r.base)
                }
            }
        }
    }

    fn port_access(&mut self, port: u16, size: AccessSize, value: Option<u32>) -> u32 {
        // A pure read leaves every deadline where it was, unless one may be due now.
        if value.is_some() || self.now_ns >= self.cached_deadline || !self.port_read_is_pure(Port(port), size) {
            self.deadline_stale = true;
        }
        let Some(r) = self.find_port(port) else {
            *self.unclaimed.entry(port).or_insert(0) += 1;
            return size.ones();
        };
        let offset = port - r.base;
        match r.target {
            PortTarget::Pic => {
                if size != AccessSize::Byte {
                    return self.split_port_access(port, size, value);
                }
                match value {
                    Some(v) => {
                        self.intc.pic.write_port(Port(r.base), offset, v.to_le_bytes()[0]);
                        0
                    }
                    None => self.intc.pic.read_port(Port(r.base), offset).into(),
                }
            }
            PortTarget::Device(i) => {
                let dev = &mut self.port_devices[i];
                if size != AccessSize::Byte && dev.byte_wide() {
                    return self.split_port_access(port, size, value);
                }
                let mut ctx = DeviceContext::new(self.now_ns, &mut self.intc, &mut self.stop);
                match value {
                    Some(v) => {
                        dev.write(&mut ctx, Port(r.base), offset, size, v & size.ones());
                        0
                    }
                    None => dev.read(&mut ctx, Port(r.base), offset, size) & size.ones(),
                }
            }
        }
    }

    /// A 16/32-bit access to byte-wide registers: one byte access per port,
    /// little-endian, each routed on its own.
    fn split_port_access(&mut self, port: u16, size: AccessSize, value: Option<u32>) -> u32 {
        let mut result = 0;
        let mut p = port;
        for i in 0..size.bytes() {
            let byte = value.map(|v| (v >> (8 * i)) & 0xff);
            result |= (self.port_access(p, AccessSize::Byte, byte) & 0xff) << (8 * i);
            p = p.wrapping_add(1); // wraps at 0xFFFF like the ISA bus
        }
        result
    }

    fn mmio_access_read(&mut self, addr: PhysAddr, size: AccessSize) -> u32 {
        // A pure read leaves every deadline where it was, unless one may be due now (the
        // local APIC brings its timer up to date as it is read).
        if !self.mmio_read_is_pure(addr) || self.now_ns >= self.cached_deadline {
            self.deadline_stale = true;
        }
        match addr.0 & !0xfff {
            LAPIC_BASE => return self.intc.lapic_read(self.now_ns, addr.0 - LAPIC_BASE) & size.ones(),
            IOAPIC_BASE => return self.intc.ioapic_read(addr.0 - IOAPIC_BASE) & size.ones(),
            _ => {}
        }
        let Some(r) = self.find_mmio(addr.0) else {
            self.unclaimed_mmio += 1;
            return size.ones();
        };
        let mut ctx = DeviceContext::new(self.now_ns, &mut self.intc, &mut self.stop);
        self.mmio_devices[r.device].read(&mut ctx, PhysAddr(r.base), addr.0 - r.base, size) & size.ones()
    }

    fn mmio_access_write(&mut self, addr: PhysAddr, size: AccessSize, value: u32) {
        self.deadline_stale = true;
        let value = value & size.ones();
        match addr.0 & !0xfff {
            LAPIC_BASE => return self.intc.lapic_write(self.now_ns, addr.0 - LAPIC_BASE, value),
            IOAPIC_BASE => return self.intc.ioapic_write(addr.0 - IOAPIC_BASE, value),
            _ => {}
        }
        let Some(r) = self.find_mmio(addr.0) else {
            self.unclaimed_mmio += 1;
            return;
        };
        let mut ctx = DeviceContext::new(self.now_ns, &mut self.intc, &mut self.stop);
        self.mmio_devices[r.device].write(&mut ctx, PhysAddr(r.base), addr.0 - r.base, size, value);
    }
}

impl Bus for DeviceBus {
    fn advance_to(&mut self, now_ns: u64) {
        DeviceBus::advance_to(self, now_ns);
    }

    fn interrupt_may_be_pending(&self) -> bool {
        self.interrupt_pending() || self.nmi_pending()
    }

    // With the access log on, each access goes through a cold `logged_*` path; off, the
    // only cost is the test of `access_log`, before the access as it always was.
    fn port_read(&mut self, port: Port, size: AccessSize) -> u32 {
        if self.access_log.is_some() {
            return self.logged_port(port.0, size, None);
        }
        self.port_access(port.0, size, None)
    }

    fn port_write(&mut self, port: Port, size: AccessSize, value: u32) {
        if self.access_log.is_some() {
            self.logged_port(port.0, size, Some(value));
            return;
        }
        self.port_access(port.0, size, Some(value));
    }

    fn mmio_read(&mut self, addr: PhysAddr, size: AccessSize) -> u32 {
        if self.access_log.is_some() {
            return self.logged_mmio(addr, size, None);
        }
        self.mmio_access_read(addr, size)
    }

    fn mmio_write(&mut self, addr: PhysAddr, size: AccessSize, value: u32) {
        if self.access_log.is_some() {
            self.logged_mmio(addr, size, Some(value));
            return;
        }
        self.mmio_access_write(addr, size, value);
    }

    /// Writes to the local APIC's page (TPR, EOI, ICR, SVR, LVTs…) and to the I/O
    /// APIC's window may make an interrupt deliverable.
    fn write_may_open_interrupt_window(&self, addr: PhysAddr) -> bool {
        matches!(addr.0 & !0xfff, LAPIC_BASE | IOAPIC_BASE)
    }

    /// Reads of the local APIC's registers (all but an undefined offset, which flags an
    /// error and may raise the error interrupt) and of the I/O APIC's window.
    fn mmio_read_is_pure(&self, addr: PhysAddr) -> bool {
        match addr.0 & !0xfff {
            LAPIC_BASE => crate::lapic::read_is_pure(addr.0 - LAPIC_BASE),
            IOAPIC_BASE => true,
            _ => false,
        }
    }

    /// Reads of ports no device claims (all ones) and of devices that say so
    /// ([`PortDevice::read_is_pure`]); never the PICs (a read may acknowledge). Worked out
    /// once per port ([`DeviceBus::port_read_is_pure_uncached`]) and remembered.
    fn port_read_is_pure(&self, port: Port, size: AccessSize) -> bool {
        let bit = |size: AccessSize| 1u8 << (size.bytes().trailing_zeros());
        let cached = &self.pure_reads[usize::from(port.0)];
        if cached.get() & 0x80 == 0 {
            let sizes = [AccessSize::Byte, AccessSize::Word, AccessSize::Dword];
            let known =
                sizes.into_iter().filter(|&s| self.port_read_is_pure_uncached(port, s)).fold(0x80, |a, s| a | bit(s));
            cached.set(known);
            self.pure_reads_used.set(true);
        }
        cached.get() & bit(size) != 0
    }

    fn read_msr(&mut self, msr: u32) -> Option<u64> {
        self.intc.read_msr(msr)
    }

    fn write_msr(&mut self, msr: u32, value: u64) -> bool {
        self.deadline_stale = true;
        self.intc.write_msr(msr, value)
    }

    /// The CPU's FERR# pin goes to every port device (the x87 error latch is the one that
    /// listens; it drives IRQ 13).
    fn set_ferr(&mut self, asserted: bool) {
        self.deadline_stale = true;
        for dev in &mut self.port_devices {
            let mut ctx = DeviceContext::new(self.now_ns, &mut self.intc, &mut self.stop);
            dev.ferr_changed(&mut ctx, asserted);
        }
    }

    /// IGNNE# is active if a device drives it.
    fn ignne(&mut self) -> bool {
        self.port_devices.iter().any(|d| d.drives_ignne())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device that records every call and returns a value derived from it.
    struct Probe {
        name: &'static str,
        calls: Vec<(u16, u16, AccessSize, Option<u32>)>,
        wide: bool,
    }

    impl Probe {
        fn new(name: &'static str, wide: bool) -> Box<Self> {
            Box::new(Probe { name, calls: Vec::new(), wide })
        }
    }

    impl PortDevice for Probe {
        fn name(&self) -> &'static str {
            self.name
        }
        fn read(&mut self, _: &mut DeviceContext<'_>, base: Port, off: u16, size: AccessSize) -> u32 {
            self.calls.push((base.0, off, size, None));
            0x1234_5600 | u32::from(off)
        }
        fn write(&mut self, ctx: &mut DeviceContext<'_>, base: Port, off: u16, size: AccessSize, v: u32) {
            self.calls.push((base.0, off, size, Some(v)));
            if v == 0xdead {
                ctx.request_stop(StopRequest::Reset);
            }
        }
        fn byte_wide(&self) -> bool {
            !self.wide
        }
    }

    #[test]
    fn unclaimed_ports_read_all_ones_and_are_counted() {
        let mut bus = DeviceBus::new();
        assert_eq!(bus.port_read(Port(0x300), AccessSize::Byte), 0xff);
        assert_eq!(bus.port_read(Port(0x300), AccessSize::Word), 0xffff);
        assert_eq!(bus.port_read(Port(0x300), AccessSize::Dword), 0xffff_ffff);
        bus.port_write(Port(0x301), AccessSize::Byte, 0x12);
        // An unclaimed access is counted once, at its first port.
        let expect: BTreeMap<u16, u64> = [(0x300, 3), (0x301, 1)].into();
        assert_eq!(bus.unclaimed_ports(), &expect);
        assert_eq!(bus.mmio_read(PhysAddr(0xfed0_0000), AccessSize::Dword), 0xffff_ffff);
        assert_eq!(bus.unclaimed_mmio_accesses(), 1);
        // The APIC pages are built in: the local APIC's ID reads 0, its version 0x14.
        assert_eq!(bus.mmio_read(PhysAddr(0xfee0_0020), AccessSize::Dword), 0);
        assert_eq!(bus.mmio_read(PhysAddr(0xfee0_0030), AccessSize::Byte), 0x14);
        assert_eq!(bus.unclaimed_mmio_accesses(), 1);
    }

    #[test]
    fn device_called_with_base_offset_size_data() {
        let mut bus = DeviceBus::new();
        bus.register_ports(Probe::new("wide", true), &[(Port(0x100), 8), (Port(0x200), 2)]).unwrap();
        assert_eq!(bus.port_read(Port(0x105), AccessSize::Word), 0x5605);
        bus.port_write(Port(0x201), AccessSize::Dword, 0xdead);
        let probe = bus.port_device_at::<Probe>(Port(0x200)).unwrap();
        assert_eq!(probe.calls, vec![(0x100, 5, AccessSize::Word, None), (0x200, 1, AccessSize::Dword, Some(0xdead))]);
        assert_eq!(bus.take_stop_request(), Some(StopRequest::Reset));
        assert_eq!(bus.take_stop_request(), None);
    }

    #[test]
    fn byte_wide_devices_see_split_accesses() {
        let mut bus = DeviceBus::new();
        bus.register_ports(Probe::new("narrow", false), &[(Port(0x100), 2)]).unwrap();
        // 0x100 and 0x101 hit the device (offsets 0 and 1), 0x102/0x103 are unclaimed.
        assert_eq!(bus.port_read(Port(0x100), AccessSize::Dword), 0xffff_0100);
        bus.port_write(Port(0x100), AccessSize::Word, 0xbeef);
        let probe = bus.port_device_at::<Probe>(Port(0x101)).unwrap();
        assert_eq!(
            probe.calls,
            vec![
                (0x100, 0, AccessSize::Byte, None),
                (0x100, 1, AccessSize::Byte, None),
                (0x100, 0, AccessSize::Byte, Some(0xef)),
                (0x100, 1, AccessSize::Byte, Some(0xbe)),
            ]
        );
    }

    #[test]
    fn overlaps_are_rejected() {
        let mut bus = DeviceBus::new();
        bus.register_ports(Probe::new("a", false), &[(Port(0x100), 8)]).unwrap();
        let err = bus.register_ports(Probe::new("b", false), &[(Port(0x107), 2)]).unwrap_err();
        assert_eq!(
            err,
            BusError::PortOverlap {
                device: "b",
                base: Port(0x107),
                len: 2,
                existing: "a",
                existing_base: Port(0x100),
                existing_len: 8
            }
        );
        // Overlap with the built-in PIC.
        let err = bus.register_ports(Probe::new("c", false), &[(Port(0x21), 1)]).unwrap_err();
        assert!(matches!(err, BusError::PortOverlap { existing: "pic", .. }), "{err}");
        // Overlap between two ranges of the same registration.
        let err = bus.register_ports(Probe::new("d", false), &[(Port(0x400), 4), (Port(0x402), 1)]).unwrap_err();
        assert!(matches!(err, BusError::PortOverlap { existing: "d", .. }), "{err}");
        // Nothing of the failed registrations was inserted.
        assert_eq!(bus.port_read(Port(0x400), AccessSize::Byte), 0xff);
        // Adjacent ranges are fine; empty and wrapping ones are not.
        bus.register_ports(Probe::new("e", false), &[(Port(0x108), 1)]).unwrap();
        assert!(matches!(
            bus.register_ports(Probe::new("f", false), &[(Port(0x500), 0)]),
            Err(BusError::BadRange { .. })
        ));
        assert!(matches!(
            bus.register_ports(Probe::new("g", false), &[(Port(0xffff), 2)]),
            Err(BusError::BadRange { .. })
        ));
        bus.register_ports(Probe::new("h", false), &[(Port(0xffff), 1)]).unwrap();
        assert_eq!(bus.port_read(Port(0xffff), AccessSize::Byte), 0x00);
    }

    struct Mem(Vec<u8>);
    impl MmioDevice for Mem {
        fn name(&self) -> &'static str {
            "mem"
        }
        fn read(&mut self, _: &mut DeviceContext<'_>, _: PhysAddr, off: u32, _: AccessSize) -> u32 {
            self.0[off as usize].into()
        }
        fn write(&mut self, _: &mut DeviceContext<'_>, _: PhysAddr, off: u32, _: AccessSize, v: u32) {
            self.0[off as usize] = v.to_le_bytes()[0];
        }
    }

    #[test]
    fn mmio_routing_and_overlap() {
        let mut bus = DeviceBus::new();
        bus.register_mmio(Box::new(Mem(vec![0; 16])), PhysAddr(0x1000), 16).unwrap();
        bus.mmio_write(PhysAddr(0x100f), AccessSize::Byte, 0x1ab);
        assert_eq!(bus.mmio_read(PhysAddr(0x100f), AccessSize::Byte), 0xab);
        assert_eq!(bus.mmio_read(PhysAddr(0x1010), AccessSize::Byte), 0xff);
        let err = bus.register_mmio(Box::new(Mem(vec![])), PhysAddr(0xff0), 0x11).unwrap_err();
        assert!(matches!(err, BusError::MmioOverlap { existing: "mem", .. }), "{err}");
        bus.register_mmio(Box::new(Mem(vec![0; 1])), PhysAddr(0xffff_ffff), 1).unwrap();
        assert!(bus.register_mmio(Box::new(Mem(vec![])), PhysAddr(0xffff_fff0), 0x11).is_err());
        assert_eq!(
            bus.mmio_ranges(),
            vec![
                (PhysAddr(0x1000), 16),
                (PhysAddr(0xfec0_0000), 0x1000),
                (PhysAddr(0xfee0_0000), 0x1000),
                (PhysAddr(0xffff_ffff), 1)
            ]
        );
        let err = bus.register_mmio(Box::new(Mem(vec![])), PhysAddr(0xfee0_0ff0), 0x10).unwrap_err();
        assert!(matches!(err, BusError::MmioOverlap { existing: "lapic", .. }), "{err}");
        assert!(bus.mmio_device_at::<Mem>(PhysAddr(0x1008)).is_some());
    }

    #[test]
    fn the_access_log_records_accesses_as_the_cpu_made_them() {
        let mut bus = DeviceBus::new();
        bus.register_ports(Probe::new("narrow", false), &[(Port(0x100), 2)]).unwrap();
        bus.register_mmio(Box::new(Mem(vec![0; 16])), PhysAddr(0x1000), 16).unwrap();
        bus.port_write(Port(0x100), AccessSize::Byte, 0x41);
        assert!(bus.take_accesses().is_empty(), "off: nothing recorded");
        bus.set_access_log(true);
        bus.port_write(Port(0x100), AccessSize::Word, 0x1_beef);
        assert_eq!(bus.port_read(Port(0x101), AccessSize::Byte), 0x01);
        assert_eq!(bus.port_read(Port(0x300), AccessSize::Byte), 0xff);
        bus.mmio_write(PhysAddr(0x1003), AccessSize::Byte, 0x7f);
        assert_eq!(bus.mmio_read(PhysAddr(0x1003), AccessSize::Byte), 0x7f);
        assert_eq!(bus.mmio_read(PhysAddr(0xfee0_0030), AccessSize::Dword), 0x0005_0014);
        bus.mmio_write(PhysAddr(0x2000), AccessSize::Dword, 1);
        let a = |space, addr, size, value, write, device| Access { space, addr, size, value, write, device };
        use AccessSpace::{Mmio, Port as Io};
        assert_eq!(
            bus.take_accesses(),
            vec![
                // One word access, though the byte-wide device saw two byte accesses.
                a(Io, 0x100, AccessSize::Word, 0xbeef, true, Some("narrow")),
                a(Io, 0x101, AccessSize::Byte, 0x01, false, Some("narrow")),
                a(Io, 0x300, AccessSize::Byte, 0xff, false, None),
                a(Mmio, 0x1003, AccessSize::Byte, 0x7f, true, Some("mem")),
                a(Mmio, 0x1003, AccessSize::Byte, 0x7f, false, Some("mem")),
                a(Mmio, 0xfee0_0030, AccessSize::Dword, 0x0005_0014, false, Some("lapic")),
                a(Mmio, 0x2000, AccessSize::Dword, 1, true, None),
            ]
        );
        assert!(bus.take_accesses().is_empty(), "taken");
        bus.set_access_log(false);
        bus.port_read(Port(0x100), AccessSize::Byte);
        assert!(bus.take_accesses().is_empty());
    }

    #[test]
    fn bus_can_move_to_another_thread() {
        fn is_send<T: Send>() {}
        is_send::<DeviceBus>();
    }

    /// A device with a timer deadline that counts its `advance` calls; a read of offset 0
    /// is pure, of offset 1 not.
    struct Ticker {
        advances: u32,
    }

    impl PortDevice for Ticker {
        fn name(&self) -> &'static str {
            "ticker"
        }
        fn read(&mut self, _: &mut DeviceContext<'_>, _: Port, off: u16, _: AccessSize) -> u32 {
            off.into()
        }
        fn write(&mut self, _: &mut DeviceContext<'_>, _: Port, _: u16, _: AccessSize, _: u32) {}
        fn advance(&mut self, _: &mut DeviceContext<'_>) {
            self.advances += 1;
        }
        fn next_deadline(&self) -> Option<u64> {
            Some(1_000_000)
        }
        fn read_is_pure(&self, offset: u16) -> bool {
            offset == 0
        }
    }

    #[test]
    fn pure_port_reads_leave_the_devices_alone() {
        let mut bus = DeviceBus::new();
        bus.register_ports(Box::new(Ticker { advances: 0 }), &[(Port(0x100), 2)]).unwrap();
        let advances = |bus: &DeviceBus| bus.port_device_at::<Ticker>(Port(0x100)).unwrap().advances;
        // Unclaimed ports and pure offsets are pure, for every width whose bytes all are;
        // the PICs never (a read of the ISR/IRR is harmless, of the poll word not).
        assert!(bus.port_read_is_pure(Port(0x300), AccessSize::Dword));
        assert!(bus.port_read_is_pure(Port(0x100), AccessSize::Byte));
        assert!(!bus.port_read_is_pure(Port(0x101), AccessSize::Byte));
        assert!(!bus.port_read_is_pure(Port(0x100), AccessSize::Word));
        assert!(bus.port_read_is_pure(Port(0xff), AccessSize::Word));
        assert!(!bus.port_read_is_pure(Port(0x20), AccessSize::Byte));
        bus.advance_to(10);
        let before = advances(&bus);
        // A pure read: the next block boundary before the deadline visits no device.
        assert_eq!(bus.port_read(Port(0x100), AccessSize::Byte), 0);
        bus.advance_to(20);
        assert_eq!(advances(&bus), before);
        // Any other read: the devices are brought up to date at the next boundary.
        assert_eq!(bus.port_read(Port(0x101), AccessSize::Byte), 1);
        bus.advance_to(30);
        assert_eq!(advances(&bus), before + 1);
        // The answers are remembered, and forgotten when a device comes: 0x300 was free.
        bus.register_ports(Box::new(Ticker { advances: 0 }), &[(Port(0x2ff), 2)]).unwrap();
        assert!(!bus.port_read_is_pure(Port(0x300), AccessSize::Byte));
        assert!(bus.port_read_is_pure(Port(0x2ff), AccessSize::Byte), "its offset 0");
    }

    #[test]
    fn time_never_goes_back() {
        let mut bus = DeviceBus::new();
        bus.advance_to(500);
        bus.advance_to(400);
        assert_eq!(bus.now_ns(), 500);
        assert_eq!(bus.next_deadline(), None);
    }

    #[test]
    fn debug_exit_status_is_qemus() {
        assert_eq!(StopRequest::DebugExit { value: 0 }.exit_status(), Some(1));
        assert_eq!(StopRequest::DebugExit { value: 1 }.exit_status(), Some(3));
        assert_eq!(StopRequest::DebugExit { value: 0x20 }.exit_status(), Some(0x41));
        assert_eq!(StopRequest::Reset.exit_status(), None);
    }
}
