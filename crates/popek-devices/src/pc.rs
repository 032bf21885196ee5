//! The standard PC wiring: every device of this crate at its usual ports.
//!
//! | ports / addresses | device | IRQ |
//! |---|---|---|
//! | 0x20–0x21, 0xA0–0xA1, 0x4D0–0x4D1 | 8259A pair + ELCR (built into the bus) | – |
//! | 0x40–0x43, 0x61 | 8254 PIT, port B | 0 |
//! | 0x60, 0x64 | i8042 keyboard controller | 1 (12) |
//! | 0x70–0x71 | MC146818 CMOS/RTC | 8 |
//! | 0x80 | POST port | – |
//! | 0xE9 | debugcon | – |
//! | 0xF0 | x87 error latch: the CPU's FERR# to IRQ 13, IGNNE# after a write | 13 |
//! | 0xF4–0xF7 | isa-debug-exit | – |
//! | 0x1F0–0x1F7, 0x3F6 | primary ATA channel (PIO), master and slave disks | 14 |
//! | 0x3F8–0x3FF | COM1 16550A | 4 |
//! | 0xCF8–0xCFF | PCI configuration (empty bus), 0xCF9 reset | – |
//! | 0x3B4–0x3B5, 0x3BA, 0x3C0–0x3DF | VGA registers (CRTC, sequencer, graphics, attribute, DAC) | – |
//! | 0x510–0x511 | QEMU fw_cfg (selector, data) | – |
//! | 0xA0000–0xBFFFF | VGA window, text at 0xB8000 | – |
//! | 0xE0–0xE3, 0x2000–0x2017, 0xFF000000–0xFF00FFFF | QEMU's pc-testdev, only with [`PcConfig::testdev`] | – |
//! | 0xFEC00000–0xFEC00FFF | I/O APIC, 24 pins (built into the bus) | – |
//! | 0xFED00000–0xFED003FF | HPET: the main counter (its one timer never fires) | – |
//! | 0xFEE00000–0xFEE00FFF | local APIC of the CPU, timer, `IA32_APIC_BASE` (built into the bus) | – |
//!
//! COM2–COM4 are absent (their ports read all ones, so probes find nothing).
//!
//! Every ISA line goes both to the 8259A pair (IRQ n) and to the I/O APIC:
//!
//! | ISA IRQ | device | 8259A input | I/O APIC pin |
//! |---|---|---|---|
//! | – | the 8259A's INTR (ExtINT) | – | 0 |
//! | 0 | PIT channel 0 | master IR0 | 2 (interrupt source override, as on PCs and QEMU) |
//! | 1 | i8042 keyboard | master IR1 | 1 |
//! | 4 | COM1 | master IR4 | 4 |
//! | 8 | CMOS/RTC | slave IR0 | 8 |
//! | 12 | i8042 mouse | slave IR4 | 12 |
//! | 13 | x87 error (FERR#, CR0.NE = 0) | slave IR5 | 13 |
//! | 14 | primary ATA channel | slave IR6 | 14 |
//! | n (3–15) | any other ISA device | IRn | n |
//!
//! Pins 16–23 have nothing on them. The 8259A reaches the CPU through the local
//! APIC's LINT0 (ExtINT, as the BIOS leaves it), and is usually masked by a kernel
//! that uses the I/O APIC.

use popek_memory::{PhysAddr, Port};

use crate::bus::DeviceBus;
use crate::cmos::{Cmos, DEFAULT_EPOCH};
use crate::ferr::FpuErrorLatch;
use crate::fw_cfg::FwCfg;
use crate::hpet::Hpet;
use crate::i8042::I8042;
use crate::ide::{self, Ide};
use crate::lapic::Lapic;
use crate::misc::{DebugExit, Debugcon, PciConfig, PostPort};
use crate::pic::PicPair;
use crate::pit::Pit;
use crate::sink::{ByteSink, StdoutSink};
use crate::storage::BlockStorage;
use crate::testdev::{TestdevIrq, TestdevMemory, TestdevPort};
use crate::uart::Uart;
use crate::vga::{VGA_WINDOW, VGA_WINDOW_LEN, VgaText};
use crate::vga_regs::VgaRegisters;

/// COM1's base port.
pub const COM1: Port = Port(0x3f8);
/// COM1's interrupt line.
pub const COM1_IRQ: u8 = 4;

/// What the standard PC is built from.
pub struct PcConfig {
    /// Guest RAM size in bytes (for the CMOS memory-size bytes).
    pub ram_size: u64,
    /// Seconds since 1970-01-01 UTC that the RTC shows at virtual time 0.
    pub epoch_secs: i64,
    /// Where COM1's output goes.
    pub serial: Box<dyn ByteSink>,
    /// Where debugcon (0xE9) output goes.
    pub debugcon: Box<dyn ByteSink>,
    /// Start with the 8259A pair and the local APIC programmed as SeaBIOS leaves
    /// them (8259A: vectors 0x08/0x70, all masked but the cascade; local APIC:
    /// software-enabled, LINT0 ExtINT, LINT1 NMI) instead of in their reset states.
    pub bios_pic: bool,
    /// The primary ATA channel's master and slave disks (either may be absent; the
    /// channel is there without disks too, as on every PC).
    pub disks: [Option<Box<dyn BlockStorage>>; 2],
    /// Attach QEMU's `pc-testdev` ([`crate::testdev`]): port 0xE0 and the memory
    /// window at 0xFF000000, which kvm-unit-tests use.
    pub testdev: bool,
}

impl Default for PcConfig {
    /// 128 MiB, the fixed default epoch (2000-01-01), COM1 and debugcon on
    /// stdout, the PIC as the BIOS leaves it.
    fn default() -> Self {
        PcConfig {
            ram_size: 128 << 20,
            epoch_secs: DEFAULT_EPOCH,
            serial: Box::new(StdoutSink),
            debugcon: Box::new(StdoutSink),
            bios_pic: true,
            disks: [None, None],
            testdev: false,
        }
    }
}

impl std::fmt::Debug for PcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcConfig")
            .field("ram_size", &self.ram_size)
            .field("epoch_secs", &self.epoch_secs)
            .field("bios_pic", &self.bios_pic)
            .field("testdev", &self.testdev)
            .field("disks", &self.disks.each_ref().map(|d| d.as_ref().map(|s| s.sectors())))
            .finish_non_exhaustive()
    }
}

/// A bus with every standard PC device at its usual place.
pub fn standard_bus(config: PcConfig) -> DeviceBus {
    let [master, slave] = config.disks;
    let pic = if config.bios_pic { PicPair::bios_initialised() } else { PicPair::new() };
    let mut bus = DeviceBus::with_pic(pic);
    if config.bios_pic {
        bus.interrupt_controllers_mut().lapic = Lapic::bios_initialised();
    }
    let p = |(base, len): (u16, u16)| (Port(base), len);
    let layout = [
        bus.register_ports(Box::new(Pit::new()), &Pit::PORT_RANGES.map(p)),
        bus.register_ports(Box::new(I8042::new()), &I8042::PORT_RANGES.map(p)),
        bus.register_ports(Box::new(Cmos::new(config.ram_size, config.epoch_secs)), &[p(Cmos::PORTS)]),
        bus.register_ports(Box::new(PostPort::default()), &[p(PostPort::PORTS)]),
        bus.register_ports(Box::new(Debugcon::new(config.debugcon)), &[p(Debugcon::PORTS)]),
        bus.register_ports(Box::new(DebugExit), &[p(DebugExit::PORTS)]),
        bus.register_ports(Box::new(FpuErrorLatch::default()), &[p(FpuErrorLatch::PORTS)]),
        bus.register_ports(Box::new(Uart::new(COM1_IRQ, config.serial)), &[p(Uart::COM1)]),
        bus.register_ports(Box::new(Ide::new(master, slave)), &[p(ide::PRIMARY_PORTS), p(ide::PRIMARY_CONTROL_PORT)]),
        bus.register_ports(Box::new(PciConfig::default()), &[p(PciConfig::PORTS)]),
        bus.register_ports(Box::new(VgaRegisters::new()), &VgaRegisters::PORT_RANGES.map(p)),
        bus.register_ports(Box::new(FwCfg::new(config.ram_size)), &[p(FwCfg::PORTS)]),
        bus.register_mmio(Box::new(VgaText::new()), VGA_WINDOW, VGA_WINDOW_LEN),
        bus.register_mmio(Box::new(Hpet::default()), Hpet::BASE, Hpet::LEN),
    ];
    for r in layout {
        // A fixed layout without overlaps (checked by the tests below).
        r.expect("the standard PC layout has no overlapping ranges");
    }
    if config.testdev {
        let port = bus.register_ports(Box::new(TestdevPort::default()), &[p(TestdevPort::PORTS)]);
        let irq = bus.register_ports(Box::new(TestdevIrq), &[p(TestdevIrq::PORTS)]);
        let window = bus.register_mmio(Box::new(TestdevMemory::default()), TestdevMemory::BASE, TestdevMemory::LEN);
        port.and(irq).and(window).expect("pc-testdev's ports and window are free on the standard PC");
    }
    bus
}

/// COM1 on a standard bus.
pub fn com1(bus: &mut DeviceBus) -> Option<&mut Uart> {
    bus.port_device_at_mut::<Uart>(COM1)
}

/// The primary ATA channel on a standard bus.
pub fn ide(bus: &mut DeviceBus) -> Option<&mut Ide> {
    bus.port_device_at_mut::<Ide>(Port(ide::PRIMARY_PORTS.0))
}

/// The VGA text screen of a standard bus (for `--vga`).
pub fn vga_text(bus: &DeviceBus) -> Option<String> {
    bus.mmio_device_at::<VgaText>(PhysAddr(0xb8000)).map(VgaText::render_text)
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, reason = "test bytes")]
mod tests {
    use popek_memory::{AccessSize, Bus};

    use super::*;
    use crate::bus::StopRequest;
    use crate::clock::ticks_to_ns;
    use crate::pit::PIT_HZ;
    use crate::sink::SharedBuffer;

    fn test_bus() -> (DeviceBus, SharedBuffer) {
        let out = SharedBuffer::new();
        let bus = standard_bus(PcConfig {
            ram_size: 64 << 20,
            serial: Box::new(out.clone()),
            debugcon: Box::new(out.clone()),
            ..PcConfig::default()
        });
        (bus, out)
    }

    fn outb(bus: &mut DeviceBus, port: u16, v: u8) {
        bus.port_write(Port(port), AccessSize::Byte, v.into());
    }

    fn inb(bus: &mut DeviceBus, port: u16) -> u8 {
        bus.port_read(Port(port), AccessSize::Byte) as u8
    }

    #[test]
    fn timer_interrupt_end_to_end() {
        let (mut bus, _) = test_bus();
        // Remap the PIC like a kernel, unmask IRQ 0 only.
        for (port, v) in [
            (0x20, 0x11),
            (0x21, 0x20),
            (0x21, 0x04),
            (0x21, 0x01),
            (0xa0, 0x11),
            (0xa1, 0x28),
            (0xa1, 0x02),
            (0xa1, 0x01),
            (0x21, 0xfe),
            (0xa1, 0xff),
        ] {
            outb(&mut bus, port, v);
        }
        // PIT channel 0, mode 2, 1000 Hz-ish (count 1193).
        outb(&mut bus, 0x43, 0x34);
        outb(&mut bus, 0x40, (1193 & 0xff) as u8);
        outb(&mut bus, 0x40, (1193 >> 8) as u8);
        assert_eq!(bus.acknowledge_interrupt(), None);
        let deadline = bus.next_deadline().unwrap();
        assert_eq!(deadline, ticks_to_ns(1193, PIT_HZ));
        bus.advance_to(deadline - 1);
        assert_eq!(bus.pending_interrupt_vector(), None);
        bus.advance_to(deadline);
        assert_eq!(bus.pending_interrupt_vector(), Some(0x20));
        assert_eq!(bus.acknowledge_interrupt(), Some(0x20));
        assert_eq!(bus.acknowledge_interrupt(), None, "IRQ 0 in service");
        // Count ticks over 100 periods, with EOIs.
        let mut ticks = 1;
        for _ in 0..99 {
            outb(&mut bus, 0x20, 0x20);
            let d = bus.next_deadline().unwrap();
            bus.advance_to(d);
            if bus.acknowledge_interrupt() == Some(0x20) {
                ticks += 1;
            }
        }
        assert_eq!(ticks, 100);
        assert_eq!(bus.now_ns(), ticks_to_ns(100 * 1193, PIT_HZ));
    }

    /// Every offset of the local APIC's page at every width, read and written as a guest
    /// that probes registers that are not there might (SDM Vol. 3A 11.4.1 asks for aligned
    /// dwords and leaves the rest undefined): no panic, absent registers read 0, the
    /// registers that exist keep working, and the APIC reports the illegal accesses in
    /// its ESR.
    #[test]
    fn absent_and_misaligned_apic_registers_read_zero_and_change_nothing() {
        let (mut bus, _) = test_bus();
        let base = 0xfee0_0000u32;
        let present = [
            0x20, 0x30, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0, 0x280, 0x300, 0x310, 0x320, 0x330, 0x340,
            0x350, 0x360, 0x370, 0x380, 0x390, 0x3e0,
        ];
        let in_register_sets = |r: u32| (0x100..0x280).contains(&r); // ISR, TMR, IRR
        for off in (0..0x1000u32).step_by(0x10) {
            if present.contains(&off) || in_register_sets(off) {
                continue;
            }
            for size in [AccessSize::Byte, AccessSize::Word, AccessSize::Dword] {
                assert_eq!(bus.mmio_read(PhysAddr(base + off), size), 0, "absent register {off:#x}");
            }
            // Writes to it are dropped (the write of an absurd value to each is harmless).
            bus.mmio_write(PhysAddr(base + off), AccessSize::Dword, u32::MAX);
            assert_eq!(bus.mmio_read(PhysAddr(base + off), AccessSize::Dword), 0, "absent register {off:#x}");
        }
        // The ESR latches "illegal register address" on the next write to it.
        bus.mmio_write(PhysAddr(base + 0x280), AccessSize::Dword, 0);
        assert_ne!(bus.mmio_read(PhysAddr(base + 0x280), AccessSize::Dword) & (1 << 7), 0, "ESR illegal register");
        // Misaligned reads of every width inside every register: answered, no panic.
        for off in 0..0x1000u32 {
            for size in [AccessSize::Byte, AccessSize::Word, AccessSize::Dword] {
                let _ = bus.mmio_read(PhysAddr(base + off), size);
            }
        }
        // The APIC still works: its ID, version and a self-IPI.
        assert_eq!(bus.mmio_read(PhysAddr(base + 0x20), AccessSize::Dword), 0);
        assert_eq!(bus.mmio_read(PhysAddr(base + 0x30), AccessSize::Dword) & 0xff, 0x14);
        bus.mmio_write(PhysAddr(base + 0x300), AccessSize::Dword, 0x4_0041);
        assert_eq!(bus.acknowledge_interrupt(), Some(0x41));
    }

    #[test]
    fn lapic_timer_and_ioapic_end_to_end() {
        let (mut bus, _) = test_bus();
        let lapic =
            |bus: &mut DeviceBus, reg: u32, v: u32| bus.mmio_write(PhysAddr(0xfee0_0000 + reg), AccessSize::Dword, v);
        assert_eq!(bus.read_msr(0x1b), Some(0xfee0_0900));
        assert_eq!(bus.mmio_read(PhysAddr(0xfee0_00f0), AccessSize::Dword), 0x1ff, "as SeaBIOS leaves it");
        assert!(bus.write_may_open_interrupt_window(PhysAddr(0xfee0_00b0)));
        assert!(bus.write_may_open_interrupt_window(PhysAddr(0xfec0_0010)));
        assert!(!bus.write_may_open_interrupt_window(PhysAddr(0xb8000)));
        lapic(&mut bus, 0x350, 0x1_0000); // LINT0 masked: the 8259A is cut off
        lapic(&mut bus, 0x3e0, 0xb); // ÷1
        lapic(&mut bus, 0x320, 0x2_0030); // periodic, vector 0x30
        bus.advance_to(500);
        lapic(&mut bus, 0x380, 1000);
        assert_eq!(bus.next_deadline(), Some(1500), "the timer is a bus deadline");
        bus.advance_to(1499);
        assert!(!bus.interrupt_pending());
        assert_eq!(bus.mmio_read(PhysAddr(0xfee0_0390), AccessSize::Dword), 1);
        bus.advance_to(1500);
        assert_eq!(bus.pending_interrupt_vector(), Some(0x30));
        assert_eq!(bus.acknowledge_interrupt(), Some(0x30));
        lapic(&mut bus, 0xb0, 0);
        assert_eq!(bus.next_deadline(), Some(2500));
        lapic(&mut bus, 0x380, 0);
        assert!(bus.next_deadline().is_none_or(|t| t > 1_000_000), "only the PIT's power-on count is left");
        // COM1's THRE interrupt through I/O APIC pin 4 (the 8259A masks IRQ 4).
        bus.mmio_write(PhysAddr(0xfec0_0000), AccessSize::Byte, 0x18);
        bus.mmio_write(PhysAddr(0xfec0_0010), AccessSize::Dword, 0x34);
        outb(&mut bus, 0x3fc, 0x08); // OUT2
        outb(&mut bus, 0x3f9, 0x02); // IER: THR empty
        assert_eq!(bus.acknowledge_interrupt(), Some(0x34));
        assert_eq!(inb(&mut bus, 0x3fa) & 0x0f, 0x02, "IIR: THRE");
        lapic(&mut bus, 0xb0, 0);
        assert!(!bus.interrupt_pending());
        // A global disable through the MSR wires the 8259A straight to INTR.
        assert!(bus.write_msr(0x1b, 0xfee0_0100));
        outb(&mut bus, 0x21, 0xef);
        outb(&mut bus, 0x3f9, 0x00);
        outb(&mut bus, 0x3f9, 0x02);
        assert_eq!(bus.acknowledge_interrupt(), Some(0x0c));
        assert!(!bus.write_msr(0x1b, 1 << 40), "reserved bits: #GP");
    }

    #[test]
    fn host_input_reaches_the_guest_after_advance() {
        let (mut bus, _) = test_bus();
        outb(&mut bus, 0x3f9, 0x01); // IER: received data
        outb(&mut bus, 0x3fc, 0x08); // MCR: OUT2
        outb(&mut bus, 0x21, 0xef); // unmask IRQ 4 (vector 0x0c)
        bus.advance_to(1000);
        bus.advance_to(2000); // nothing changed: the devices are not visited
        assert_eq!(bus.pending_interrupt_vector(), None);
        com1(&mut bus).unwrap().queue_input(b"k");
        // The byte arrives one character time (10 bits at 9600 baud) after the guest
        // enabled the receiver's interrupt at time 0.
        let char_ns = 12 * (10 * 1_000_000_000 / 115_200);
        assert_eq!(bus.next_deadline(), Some(char_ns));
        bus.advance_to(char_ns - 1);
        assert_eq!(bus.pending_interrupt_vector(), None);
        bus.advance_to(char_ns);
        assert_eq!(bus.acknowledge_interrupt(), Some(0x0c));
        assert_eq!(inb(&mut bus, 0x3f8), b'k');
    }

    #[test]
    fn coarse_and_fine_time_steps_agree() {
        // The same guest-visible interrupts whether the machine advances
        // every 10 µs or jumps from deadline to deadline.
        let run = |fine: bool| {
            let (mut bus, _) = test_bus();
            outb(&mut bus, 0x21, 0xfe);
            outb(&mut bus, 0x43, 0x36);
            outb(&mut bus, 0x40, 0x00);
            outb(&mut bus, 0x40, 0x10); // 4096 ticks, mode 3
            let mut seen = Vec::new();
            let end = 20_000_000;
            while bus.now_ns() < end {
                // Like a run loop: take interrupts, then let time pass.
                if let Some(v) = bus.acknowledge_interrupt() {
                    seen.push(v);
                    outb(&mut bus, 0x20, 0x20);
                }
                let next = if fine { bus.now_ns() + 10_000 } else { bus.next_deadline().unwrap() };
                bus.advance_to(next.min(end));
            }
            seen.len()
        };
        // 20 ms / (4096 / 1.193182 MHz = 3.433 ms) = 5 full periods, plus the
        // power-on edge latched before the mask was set.
        assert_eq!(run(true), 6);
        assert_eq!(run(false), 6);
    }

    #[test]
    fn serial_debugcon_exit_and_unclaimed() {
        let (mut bus, out) = test_bus();
        for &b in b"COM1 " {
            outb(&mut bus, 0x3f8, b);
        }
        for &b in b"E9" {
            outb(&mut bus, 0xe9, b);
        }
        assert_eq!(out.text(), "COM1 E9");
        assert_eq!(inb(&mut bus, 0x3fd), 0x60);
        // COM2 is absent: its scratch register does not hold a value.
        outb(&mut bus, 0x2ff, 0x5a);
        assert_eq!(inb(&mut bus, 0x2ff), 0xff);
        assert_eq!(bus.port_read(Port(0x2f8), AccessSize::Dword), 0xffff_ffff);
        // PCI: the address register reads back, the data window is empty.
        bus.port_write(Port(0xcf8), AccessSize::Dword, 0x8000_0000);
        assert_eq!(bus.port_read(Port(0xcf8), AccessSize::Dword), 0x8000_0000);
        assert_eq!(bus.port_read(Port(0xcfc), AccessSize::Dword), 0xffff_ffff);
        // CMOS memory size: 63 MiB extended = 64512 KiB = 0xFC00.
        outb(&mut bus, 0x70, 0x17);
        assert_eq!(inb(&mut bus, 0x71), 0x00);
        outb(&mut bus, 0x70, 0x18);
        assert_eq!(inb(&mut bus, 0x71), 0xfc);
        // i8042 self-test through the bus.
        outb(&mut bus, 0x64, 0xaa);
        assert_eq!(inb(&mut bus, 0x64) & 1, 1);
        assert_eq!(inb(&mut bus, 0x60), 0x55);
        assert_eq!(bus.stop_request(), None);
        bus.port_write(Port(0xf4), AccessSize::Dword, 0x10);
        assert_eq!(bus.take_stop_request(), Some(StopRequest::DebugExit { value: 0x10 }));
        assert_eq!(StopRequest::DebugExit { value: 0x10 }.exit_status(), Some(0x21));
    }

    #[test]
    fn vga_and_layout() {
        let (mut bus, _) = test_bus();
        bus.mmio_write(PhysAddr(0xb8000), AccessSize::Word, 0x0741);
        assert!(vga_text(&bus).unwrap().starts_with("A\n\n"));
        assert_eq!(
            bus.mmio_ranges(),
            vec![
                (PhysAddr(0xa0000), 0x20000),
                (PhysAddr(0xfec0_0000), 0x1000),
                (PhysAddr(0xfed0_0000), 0x400),
                (PhysAddr(0xfee0_0000), 0x1000)
            ]
        );
        let map: Vec<(u16, u32, &str)> = bus.port_map().into_iter().map(|(p, n, d)| (p.0, n, d)).collect();
        assert_eq!(
            map,
            vec![
                (0x20, 2, "pic"),
                (0x40, 4, "pit"),
                (0x60, 1, "i8042"),
                (0x61, 1, "pit"),
                (0x64, 1, "i8042"),
                (0x70, 2, "cmos-rtc"),
                (0x80, 1, "post"),
                (0xa0, 2, "pic"),
                (0xe9, 1, "debugcon"),
                (0xf0, 1, "fpu-error"),
                (0xf4, 4, "isa-debug-exit"),
                (0x1f0, 8, "ide"),
                (0x3b4, 2, "vga"),
                (0x3ba, 1, "vga"),
                (0x3c0, 32, "vga"),
                (0x3f6, 1, "ide"),
                (0x3f8, 8, "uart16550"),
                (0x4d0, 2, "pic"),
                (0x510, 2, "fw-cfg"),
                (0xcf8, 8, "pci-config"),
            ]
        );
        assert!(com1(&mut bus).is_some());
        // The BIOS-like PIC: IRQ 0 masked, vectors 0x08 / 0x70.
        assert_eq!(inb(&mut bus, 0x21), 0xfb);
        bus.pic_mut().master.imr = 0;
        crate::bus::IrqSink::set_irq(bus.pic_mut(), 1, true);
        // The PIT's OUT 0 went high at power-on and was latched while masked.
        assert_eq!(bus.acknowledge_interrupt(), Some(0x08));
        outb(&mut bus, 0x20, 0x20);
        assert_eq!(bus.acknowledge_interrupt(), Some(0x09));
        bus.flush();
    }

    /// The CPU's FERR# through the standard bus: IRQ 13 at the slave 8259A, INT 75h with
    /// the BIOS's vectors (as on a PC, whose BIOS sends it on to the NMI handler); the
    /// OUT to 0xF0 drops it and asserts IGNNE# until FERR# goes away.
    #[test]
    fn ferr_raises_irq13_and_port_f0_answers_with_ignne() {
        let (mut bus, _) = test_bus();
        bus.pic_mut().master.imr = 0xfb; // cascade only
        bus.pic_mut().slave.imr = !(1 << 5);
        assert!(!bus.ignne());
        bus.set_ferr(true);
        assert_eq!(bus.acknowledge_interrupt(), Some(0x75));
        outb(&mut bus, 0xf0, 0);
        assert!(bus.ignne(), "IGNNE# after the write, FERR# still asserted");
        outb(&mut bus, 0xa0, 0x20);
        outb(&mut bus, 0x20, 0x20);
        assert_eq!(bus.acknowledge_interrupt(), None, "the line is down");
        bus.set_ferr(false);
        assert!(!bus.ignne());
        bus.set_ferr(true);
        assert_eq!(bus.acknowledge_interrupt(), Some(0x75), "the next error interrupts again");
    }
}
