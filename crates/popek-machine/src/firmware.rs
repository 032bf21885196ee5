//! What a PC's firmware leaves in memory for the operating system: the BIOS data area,
//! the extended BIOS data area, an Intel MultiProcessor Specification 1.4 table, and the
//! memory map that INT 15h E820 would report.
//!
//! popek has no BIOS: it starts the kernel directly, as `qemu-system-i386 -kernel` does
//! after SeaBIOS. A kernel written for PCs still looks for what the BIOS would have set
//! up, so the machine writes it before the kernel runs. Both loaders (Multiboot, and
//! the Linux boot protocol) use [`memory_map`].
//!
//! ```text
//!   0x00000 ┌────────────────────┐ interrupt vector table: every vector at a stub in the BIOS area
//!   0x00400 │ BIOS data area     │ COM1 at 0x400, EBDA segment 0x40E, 639 KiB at 0x413
//!   0x00500 │ RAM                │
//!   0x9FC00 │ EBDA (1 KiB)       │ reserved in the memory map
//!   0xA0000 │ VGA window         │ device bus, not RAM
//!   0xC0000 │ RAM                │
//!   0xF0000 │ BIOS area (ROM)    │ MP floating pointer and configuration table; at
//!           │                    │ 0xFF000 the interrupt stubs (IRET; EOI; the timer tick)
//!  0x100000 │ RAM ...            │
//! ```
//!
//! The MP table describes this machine: one processor (local APIC 0 at 0xFEE00000, the
//! bootstrap processor), an ISA bus, one I/O APIC ([`IOAPIC_ID`] at 0xFEC00000) and an
//! I/O interrupt entry for each ISA IRQ (IRQ 0, the PIT, on I/O APIC pin 2 as on PCs and
//! QEMU; the other IRQs on the pin of their number), plus the local interrupts of virtual
//! wire mode (ExtINT on LINT0, NMI on LINT1). MultiProcessor Specification 1.4, chapter 4.
//!
//! The devices are left as a BIOS leaves them too ([`program_devices`]): the 8259A pair
//! initialised with vectors 0x08 and 0x70 and only the timer (IRQ 0, through the cascade)
//! unmasked, and the PIT's channel 0 counting 65,536 (18.2 Hz). A kernel that enables
//! interrupts in real mode before programming them (kvm-unit-tests' `realmode`) finds the
//! timer ticking into the BIOS's IRQ 0 handler ([`BIOS_STUBS`]), which counts the ticks in
//! the BIOS data area (0x46C) and acknowledges the interrupt, as on a PC.

use popek_memory::GuestMemory;

/// Physical address of the BIOS data area.
pub const BDA: u32 = 0x400;
/// Segment of the extended BIOS data area (the last KiB of conventional memory).
pub const EBDA_SEGMENT: u16 = 0x9fc0;
/// Physical address of the extended BIOS data area.
pub const EBDA: u32 = (EBDA_SEGMENT as u32) << 4;
/// Conventional memory below the EBDA, in KiB (what the BDA reports at 0x413).
pub const BASE_MEMORY_KIB: u16 = 639;
/// Where the MP floating pointer structure lies (inside the BIOS area, 16-byte aligned;
/// MP spec 4.1 lists the BIOS ROM 0xF0000–0xFFFFF among the places to search).
pub const MP_FLOATING_POINTER: u32 = 0xf5a00;
/// Where the MP configuration table follows it.
pub const MP_CONFIG_TABLE: u32 = MP_FLOATING_POINTER + 16;
/// The local APIC's physical address.
pub const LAPIC_BASE: u32 = 0xfee0_0000;
/// The I/O APIC's physical address.
pub const IOAPIC_BASE: u32 = 0xfec0_0000;
/// The I/O APIC's APIC ID, as the MP table reports it: what its ID register reads after
/// reset (0, as QEMU's does; a kernel such as xv6 compares the two).
pub const IOAPIC_ID: u8 = 0;
/// Where the real-mode interrupt handlers the vector table points at lie (segment 0xF000,
/// offset 0xF000): [`STUB_IRET`], then [`STUB_EOI_MASTER`], [`STUB_EOI_SLAVE`] and
/// [`STUB_TIMER`] at the offsets their constants give.
pub const BIOS_STUBS: u32 = 0xff000;
/// Any vector that no device raises: `iret`.
pub const STUB_IRET: &[u8] = &[0xcf];
/// IRQ 1–7 (vectors 0x09–0x0F): `push ax ; mov al, 0x20 ; out 0x20, al ; pop ax ; iret`.
pub const STUB_EOI_MASTER: &[u8] = &[0x50, 0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf];
/// IRQ 8–15 (vectors 0x70–0x77): a non-specific EOI to the slave, then to the master.
pub const STUB_EOI_SLAVE: &[u8] = &[0x50, 0xb0, 0x20, 0xe6, 0xa0, 0xe6, 0x20, 0x58, 0xcf];
/// IRQ 0 (vector 0x08): `push ax ; push ds ; xor ax, ax ; mov ds, ax ; inc dword [0x46C] ;
/// pop ds ; mov al, 0x20 ; out 0x20, al ; pop ax ; iret` — the BIOS's tick count, then EOI.
pub const STUB_TIMER: &[u8] =
    &[0x50, 0x1e, 0x31, 0xc0, 0x8e, 0xd8, 0x66, 0xff, 0x06, 0x6c, 0x04, 0x1f, 0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf];
/// Offsets of the stubs from [`BIOS_STUBS`]: IRET, master EOI, slave EOI, timer.
const STUB_OFFSETS: [u16; 4] = [0x00, 0x10, 0x20, 0x30];

/// The real-mode vector table a BIOS leaves: vector `v`'s far pointer (offset, segment
/// 0xF000) to its stub.
fn vector_table() -> Vec<u8> {
    let base = (BIOS_STUBS & 0xffff) as u16;
    (0..=255u8)
        .flat_map(|v| {
            let stub = match v {
                0x08 => STUB_OFFSETS[3],
                0x09..=0x0f => STUB_OFFSETS[1],
                0x70..=0x77 => STUB_OFFSETS[2],
                _ => STUB_OFFSETS[0],
            };
            let mut far = (base + stub).to_le_bytes().to_vec();
            far.extend(0xf000u16.to_le_bytes());
            far
        })
        .collect()
}

/// Leaves the interrupt controllers and the timer as a BIOS does before it starts a
/// kernel (SeaBIOS's `pic_setup` and `pit_setup`): ICW1–ICW4 to both 8259As (vectors
/// 0x08 and 0x70, cascade on IRQ 2, 8086 mode), every IRQ masked but the timer and the
/// cascade, and the PIT's channel 0 in mode 3 with the count 0 (65,536: 18.2 Hz).
/// Interrupts stay disabled in the CPU (IF = 0), as every boot protocol hands over.
pub fn program_devices(bus: &mut dyn popek_memory::Bus) {
    use popek_memory::{AccessSize, Port};
    let mut out = |port: u16, value: u8| bus.port_write(Port(port), AccessSize::Byte, value.into());
    for (command, data, vector, cascade) in [(0x20, 0x21, 0x08, 0x04), (0xa0, 0xa1, 0x70, 0x02)] {
        out(command, 0x11); // ICW1: edge-triggered, cascade, ICW4 follows
        out(data, vector); // ICW2
        out(data, cascade); // ICW3: slave on IRQ 2 / slave ID 2
        out(data, 0x01); // ICW4: 8086 mode
    }
    out(0x21, 0xfa); // OCW1: IRQ 0 and the cascade unmasked
    out(0xa1, 0xff);
    out(0x43, 0x36); // channel 0, low then high byte, mode 3, binary
    out(0x40, 0x00);
    out(0x40, 0x00);
}

/// KiB at the top of RAM reported as reserved (QEMU's firmware keeps them), so that the
/// memory sizes a guest sees match what it sees under `qemu-system-i386 -kernel`.
pub const TOP_RESERVED_KIB: u32 = 128;

/// The kind of a memory map entry (the E820 type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MemoryKind {
    /// Usable RAM (type 1).
    Ram = 1,
    /// Reserved by the firmware or the chipset (type 2).
    Reserved = 2,
}

/// One entry of the memory map: `len` bytes from `base`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRange {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
    /// What is there.
    pub kind: MemoryKind,
}

/// The memory map of a PC with `ram` bytes of RAM, in address order, as INT 15h E820
/// reports it under QEMU with SeaBIOS: conventional memory up to the EBDA, the EBDA and
/// the BIOS area reserved, RAM from 1 MiB up to [`TOP_RESERVED_KIB`] below its end, that
/// top reserved, and the BIOS flash below 4 GiB reserved. (The VGA window and option ROMs
/// 0xA0000–0xEFFFF are in no entry, as on a PC.) Holes of the APICs are not RAM, and an
/// operating system finds them from the MP table.
pub fn memory_map(ram: u32) -> Vec<MemoryRange> {
    let ram = u64::from(ram);
    let top = ram.saturating_sub(u64::from(TOP_RESERVED_KIB) * 1024).max(0x10_0000);
    let r = |base, len, kind| MemoryRange { base, len, kind };
    vec![
        r(0, u64::from(EBDA), MemoryKind::Ram),
        r(u64::from(EBDA), 0xa0000 - u64::from(EBDA), MemoryKind::Reserved),
        r(0xf0000, 0x10000, MemoryKind::Reserved),
        r(0x10_0000, top - 0x10_0000, MemoryKind::Ram),
        r(top, ram.saturating_sub(top), MemoryKind::Reserved),
        r(0xfffc_0000, 0x4_0000, MemoryKind::Reserved),
    ]
}

/// What the firmware reports about the machine's devices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Platform {
    /// Number of hard disks (BDA 0x475).
    pub hard_disks: u8,
}

/// Writes the BIOS data area, the EBDA and the MP tables into `mem`. Call before the
/// BIOS area becomes ROM. RAM too small for a region skips it (a guest with less than
/// 1 MiB finds no tables, as on a machine without them).
pub fn write(mem: &mut GuestMemory, platform: Platform) {
    let mut put = |at: u32, bytes: &[u8]| {
        // A region beyond the end of a small RAM is left out (see above).
        let _ = mem.load(popek_memory::PhysAddr(at), bytes);
    };
    for (off, bytes) in bios_data_area(platform) {
        put(BDA + off, &bytes);
    }
    // EBDA: its first word is its size in KiB.
    put(EBDA, &1u16.to_le_bytes());
    put(0, &vector_table());
    for (stub, off) in [STUB_IRET, STUB_EOI_MASTER, STUB_EOI_SLAVE, STUB_TIMER].into_iter().zip(STUB_OFFSETS) {
        put(BIOS_STUBS + u32::from(off), stub);
    }
    let (pointer, table) = mp_tables();
    put(MP_FLOATING_POINTER, &pointer);
    put(MP_CONFIG_TABLE, &table);
}

/// The fields of the BIOS data area that a kernel reads, as `(offset from 0x400, bytes)`.
/// IBM PC/AT Technical Reference, BIOS data area; the values SeaBIOS leaves.
fn bios_data_area(platform: Platform) -> Vec<(u32, Vec<u8>)> {
    // Equipment word (0x410): one serial port (bits 9–11), 80×25 colour video (bits 4–5 =
    // 10b), no floppy, an x87 coprocessor (bit 1).
    let equipment: u16 = (1 << 9) | (0b10 << 4) | (1 << 1);
    vec![
        // COM1..COM4 I/O bases: only COM1.
        (0x00, [0x3f8u16, 0, 0, 0].iter().flat_map(|p| p.to_le_bytes()).collect()),
        // LPT1..LPT3: none.
        (0x08, vec![0; 6]),
        // EBDA segment.
        (0x0e, EBDA_SEGMENT.to_le_bytes().to_vec()),
        (0x10, equipment.to_le_bytes().to_vec()),
        // Conventional memory in KiB.
        (0x13, BASE_MEMORY_KIB.to_le_bytes().to_vec()),
        // Video: mode 3, 80 columns, page size 4000, CRTC at 0x3D4, 25 rows (rows − 1).
        (0x49, vec![3]),
        (0x4a, 80u16.to_le_bytes().to_vec()),
        (0x4c, 4000u16.to_le_bytes().to_vec()),
        (0x63, 0x3d4u16.to_le_bytes().to_vec()),
        (0x75, vec![platform.hard_disks]),
        (0x84, vec![24]),
        (0x85, 16u16.to_le_bytes().to_vec()),
    ]
}

/// The MP floating pointer structure and the configuration table (MP spec 4.1, 4.2, 4.3).
fn mp_tables() -> (Vec<u8>, Vec<u8>) {
    // Entries (MP spec 4.3): processor, bus, I/O APIC, I/O interrupts, local interrupts.
    let mut entries = Vec::new();
    let mut count: u16 = 0;
    // Processor: local APIC 0, version 0x14, enabled bootstrap processor, family 6
    // signature and the CPUID.1 feature flags.
    let [signature, _, _, features] = popek_vmm::cpuid_leaf(1);
    entries.extend_from_slice(&[0, 0, 0x14, 0b11]);
    entries.extend_from_slice(&signature.to_le_bytes());
    entries.extend_from_slice(&features.to_le_bytes());
    entries.extend_from_slice(&[0; 8]);
    count += 1;
    // Bus 0: ISA.
    entries.extend_from_slice(&[1, 0]);
    entries.extend_from_slice(b"ISA   ");
    count += 1;
    // The I/O APIC: version 0x11, enabled.
    entries.extend_from_slice(&[2, IOAPIC_ID, 0x11, 1]);
    entries.extend_from_slice(&IOAPIC_BASE.to_le_bytes());
    count += 1;
    // I/O interrupts: type 0 (INT), polarity and trigger as the bus defines (ISA: edge,
    // active high), source bus 0, IRQ, destination I/O APIC and pin. IRQ 2 is the 8259
    // cascade and goes nowhere; IRQ 0 arrives on pin 2. Pin 0 takes the 8259's INTR
    // (type 3, ExtINT).
    entries.extend_from_slice(&[3, 3, 0, 0, 0, 0, IOAPIC_ID, 0]);
    count += 1;
    for irq in (0..16u8).filter(|&i| i != 2) {
        let pin = if irq == 0 { 2 } else { irq };
        entries.extend_from_slice(&[3, 0, 0, 0, 0, irq, IOAPIC_ID, pin]);
        count += 1;
    }
    // Local interrupts: ExtINT on LINT0, NMI on LINT1, for every local APIC (0xFF).
    entries.extend_from_slice(&[4, 3, 0, 0, 0, 0, 0xff, 0]);
    entries.extend_from_slice(&[4, 1, 0, 0, 0, 0, 0xff, 1]);
    count += 2;

    let mut table = Vec::with_capacity(44 + entries.len());
    table.extend_from_slice(b"PCMP");
    let len = u16::try_from(44 + entries.len()).expect("the MP table is a few hundred bytes");
    table.extend_from_slice(&len.to_le_bytes());
    table.push(4); // specification revision 1.4
    table.push(0); // checksum, below
    table.extend_from_slice(b"POPEK   "); // OEM ID, 8 bytes
    table.extend_from_slice(b"PC          "); // product ID, 12 bytes
    table.extend_from_slice(&0u32.to_le_bytes()); // no OEM table
    table.extend_from_slice(&0u16.to_le_bytes());
    table.extend_from_slice(&count.to_le_bytes());
    table.extend_from_slice(&LAPIC_BASE.to_le_bytes());
    table.extend_from_slice(&0u16.to_le_bytes()); // no extended table
    table.push(0);
    table.push(0);
    table.extend_from_slice(&entries);
    table[7] = checksum(&table);

    let mut pointer = Vec::with_capacity(16);
    pointer.extend_from_slice(b"_MP_");
    pointer.extend_from_slice(&MP_CONFIG_TABLE.to_le_bytes());
    pointer.push(1); // length in 16-byte units
    pointer.push(4); // revision 1.4
    pointer.push(0); // checksum, below
    // Feature bytes: 0 = a configuration table is present; IMCRP clear = virtual wire mode
    // (no IMCR to program).
    pointer.extend_from_slice(&[0; 5]);
    pointer[10] = checksum(&pointer);
    (pointer, table)
}

/// The byte that makes `bytes` sum to zero (modulo 256).
fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, &b| s.wrapping_sub(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use popek_memory::PhysAddr;

    fn byte(mem: &GuestMemory, at: u32) -> u8 {
        mem.as_slice()[at as usize]
    }
    fn word(mem: &GuestMemory, at: u32) -> u16 {
        u16::from_le_bytes([byte(mem, at), byte(mem, at + 1)])
    }
    fn dword(mem: &GuestMemory, at: u32) -> u32 {
        u32::from(word(mem, at)) | u32::from(word(mem, at + 2)) << 16
    }
    fn sum(mem: &GuestMemory, at: u32, len: u32) -> u8 {
        (at..at + len).fold(0u8, |s, a| s.wrapping_add(byte(mem, a)))
    }

    /// Searches as a kernel does (MP spec 4.1): the first KiB of the EBDA, the last KiB
    /// of base memory, then the BIOS ROM, for "_MP_" on a 16-byte boundary with a valid
    /// checksum.
    fn mp_search(mem: &GuestMemory) -> Option<u32> {
        let ebda = u32::from(word(mem, 0x40e)) << 4;
        let base_top = u32::from(word(mem, 0x413)) * 1024 - 1024;
        [(ebda, 1024), (base_top, 1024), (0xf0000, 0x10000)].into_iter().find_map(|(start, len)| {
            (start..start + len)
                .step_by(16)
                .find(|&a| mem.as_slice()[a as usize..a as usize + 4] == *b"_MP_" && sum(mem, a, 16) == 0)
        })
    }

    /// Every real-mode vector leads to a stub that ends in IRET: the timer's (0x08) counts
    /// the tick and acknowledges IRQ 0, IRQ 1–7 and 8–15 acknowledge their 8259A(s).
    #[test]
    fn every_vector_leads_to_a_bios_stub() {
        let mut mem = GuestMemory::new(2 << 20).unwrap();
        write(&mut mem, Platform::default());
        let target = |v: u32| {
            let (off, seg) = (word(&mem, 4 * v), word(&mem, 4 * v + 2));
            (u32::from(seg) << 4) + u32::from(off)
        };
        let at = |addr: u32, len: usize| mem.as_slice()[addr as usize..addr as usize + len].to_vec();
        for v in 0..256 {
            let stub = match v {
                0x08 => STUB_TIMER,
                0x09..=0x0f => STUB_EOI_MASTER,
                0x70..=0x77 => STUB_EOI_SLAVE,
                _ => STUB_IRET,
            };
            let t = target(v);
            assert!((0xf0000..0x100000).contains(&t), "vector {v:#x} → {t:#x}");
            assert_eq!(at(t, stub.len()), stub, "vector {v:#x}");
            assert_eq!(stub.last(), Some(&0xcf), "ends in IRET");
        }
        // The timer's stub increments the dword at 0x46C and sends EOI to port 0x20.
        let timer = at(target(8), STUB_TIMER.len());
        assert!(timer.windows(5).any(|w| w == [0x66, 0xff, 0x06, 0x6c, 0x04]));
        assert!(timer.windows(4).any(|w| w == [0xb0, 0x20, 0xe6, 0x20]));
    }

    /// After `program_devices` the 8259As deliver IRQ 0 at vector 8 (the only IRQ unmasked
    /// with the cascade) and the PIT's channel 0 raises it every 65,536 ticks.
    #[test]
    fn devices_are_left_as_a_bios_leaves_them() {
        use popek_devices::pc::{PcConfig, standard_bus};
        use popek_memory::{AccessSize, Bus, Port};
        let mut bus = standard_bus(PcConfig::default());
        program_devices(&mut bus);
        assert_eq!(bus.port_read(Port(0x21), AccessSize::Byte), 0xfa, "master IMR");
        assert_eq!(bus.port_read(Port(0xa1), AccessSize::Byte), 0xff, "slave IMR");
        assert!(!bus.interrupt_pending());
        // One PIT period (65,536 / 1,193,182 Hz = 54.9 ms) later, IRQ 0 is pending at vector 8.
        bus.advance_to(55_000_000);
        assert!(bus.interrupt_pending(), "the timer ticked");
        assert_eq!(bus.pending_interrupt_vector(), Some(0x08));
    }

    #[test]
    fn a_kernel_finds_the_bda_and_the_mp_table_where_it_looks() {
        let mut mem = GuestMemory::new(64 << 20).unwrap();
        write(&mut mem, Platform { hard_disks: 2 });
        assert_eq!(word(&mem, 0x400), 0x3f8, "COM1");
        assert_eq!(word(&mem, 0x402), 0, "no COM2");
        assert_eq!(word(&mem, 0x40e), 0x9fc0, "EBDA segment");
        assert_eq!(word(&mem, 0x413), 639, "base memory");
        assert_eq!(word(&mem, 0x463), 0x3d4, "CRTC");
        assert_eq!(byte(&mem, 0x475), 2, "hard disks");
        let fp = mp_search(&mem).expect("MP floating pointer");
        assert_eq!(fp, MP_FLOATING_POINTER);
        assert_eq!(byte(&mem, fp + 8), 1, "length: 16 bytes");
        assert_eq!(byte(&mem, fp + 9), 4, "revision 1.4");
        assert_eq!(byte(&mem, fp + 11), 0, "a configuration table follows");
        let table = dword(&mem, fp + 4);
        assert_eq!(&mem.as_slice()[table as usize..table as usize + 4], b"PCMP");
        let len = u32::from(word(&mem, table + 4));
        assert_eq!(sum(&mem, table, len), 0, "table checksum");
        assert_eq!(dword(&mem, table + 36), LAPIC_BASE);
        // Walk the entries as a kernel does: each type has its length.
        let (mut at, mut seen, mut irq_pin) = (table + 44, Vec::new(), Vec::new());
        for _ in 0..word(&mem, table + 34) {
            let kind = byte(&mem, at);
            seen.push(kind);
            match kind {
                0 => {
                    assert_eq!(byte(&mem, at + 1), 0, "local APIC ID");
                    assert_eq!(byte(&mem, at + 3), 3, "enabled bootstrap processor");
                    at += 20;
                }
                2 => {
                    assert_eq!(byte(&mem, at + 1), IOAPIC_ID);
                    assert_eq!(dword(&mem, at + 4), IOAPIC_BASE);
                    at += 8;
                }
                3 => {
                    irq_pin.push((byte(&mem, at + 1), byte(&mem, at + 5), byte(&mem, at + 7)));
                    at += 8;
                }
                1 | 4 => at += 8,
                other => panic!("unknown entry type {other}"),
            }
        }
        assert_eq!(at, table + len, "entries fill the table exactly");
        assert_eq!(seen.iter().filter(|&&k| k == 0).count(), 1, "one processor");
        assert_eq!(seen.iter().filter(|&&k| k == 3).count(), 16, "ExtINT + 15 ISA IRQs");
        // (interrupt type, ISA IRQ, pin): the 8259 on pin 0, IRQ 0 on pin 2, IRQ 4 on
        // pin 4, the cascade IRQ 2 nowhere.
        assert!(irq_pin.contains(&(3, 0, 0)) && irq_pin.contains(&(0, 0, 2)) && irq_pin.contains(&(0, 4, 4)));
        assert!(!irq_pin.iter().any(|&(t, i, _)| t == 0 && i == 2));
    }

    #[test]
    fn memory_map_is_ordered_and_covers_all_ram() {
        for ram in [1u32 << 20, 2 << 20, 64 << 20, 256 << 20, 3 << 30] {
            let map = memory_map(ram);
            for w in map.windows(2) {
                assert!(w[0].base + w[0].len <= w[1].base, "{ram:#x}: {w:?}");
            }
            let usable: u64 = map.iter().filter(|r| r.kind == MemoryKind::Ram).map(|r| r.len).sum();
            assert!(usable <= u64::from(ram));
            assert_eq!(map[3].base + map[3].len + map[4].len, u64::from(ram).max(0x10_0000));
        }
    }

    #[test]
    fn small_ram_gets_what_fits() {
        let mut mem = GuestMemory::new(64 << 10).unwrap();
        write(&mut mem, Platform::default());
        assert_eq!(word(&mem, 0x400), 0x3f8);
        assert!(!mem.load(PhysAddr(MP_FLOATING_POINTER), &[0]));
    }
}
