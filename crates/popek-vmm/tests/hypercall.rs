//! The paravirtual interface (`popek_vmm::hypercall`): the CPUID leaves, VMCALL's #UD while
//! the interface is off, and every hypercall's result, side effects and errors — bad
//! pointers and bad arguments are error codes, never faults.

use popek_cpu::exception::{Event, Exception};
use popek_cpu::iced_x86::Decoder;
use popek_cpu::mmu::pte;
use popek_cpu::state::gpr::{EAX, EBX, ECX, EDI, EDX, ESI};
use popek_cpu::state::{cr0, flags};
use popek_cpu::{AccessKind, AccessSize, Bus, Cpu, ExecResult, GuestMemory, LinearAddr, PhysAddr, Port};
use popek_vmm::hypercall::{ABI_VERSION, CONSOLE_MAX, FEATURES, SIGNATURE, eoi, errno, nr};

const VMCALL: [u8; 3] = [0x0f, 0x01, 0xc1];
const CPUID: [u8; 2] = [0x0f, 0xa2];

/// A bus that records port and MMIO writes and answers `IA32_APIC_BASE`.
#[derive(Default)]
struct RecBus {
    ports: Vec<(u16, u32)>,
    mmio: Vec<(u32, u32)>,
    apic_base: Option<u64>,
}

impl Bus for RecBus {
    fn port_read(&mut self, _: Port, size: AccessSize) -> u32 {
        size.ones()
    }
    fn port_write(&mut self, port: Port, size: AccessSize, value: u32) {
        assert_eq!(size, AccessSize::Byte);
        self.ports.push((port.0, value));
    }
    fn mmio_read(&mut self, _: PhysAddr, size: AccessSize) -> u32 {
        size.ones()
    }
    fn mmio_write(&mut self, addr: PhysAddr, size: AccessSize, value: u32) {
        assert_eq!(size, AccessSize::Dword);
        self.mmio.push((addr.0, value));
    }
    fn read_msr(&mut self, msr: u32) -> Option<u64> {
        if msr == 0x1b { self.apic_base } else { None }
    }
}

/// A CPU with 1 MiB of RAM at CPL 0, paging off, the interface on or off.
fn cpu(paravirt: bool) -> Cpu {
    let mut cpu = Cpu::new(GuestMemory::new(1 << 20).expect("RAM"));
    cpu.paravirt = paravirt;
    cpu.state.eip = 0x1000;
    cpu
}

/// Runs one instruction's handler the way the interpreter does (EIP at the next one).
fn exec(cpu: &mut Cpu, bus: &mut dyn Bus, bytes: &[u8]) -> ExecResult {
    let insn = Decoder::with_ip(32, bytes, cpu.state.eip as u64, popek_cpu::block::DECODER_OPTIONS).decode();
    assert_eq!(insn.len(), bytes.len());
    let handler = popek_vmm::lookup(&insn).expect("a VMM instruction");
    cpu.state.eip = insn.next_ip32();
    handler(cpu, bus, &insn)
}

/// Hypercall `number` with EBX, ECX: the result in EAX.
fn call(cpu: &mut Cpu, bus: &mut RecBus, number: u32, ebx: u32, ecx: u32) -> u32 {
    cpu.state.gpr[EAX] = number;
    cpu.state.gpr[EBX] = ebx;
    cpu.state.gpr[ECX] = ecx;
    exec(cpu, bus, &VMCALL).expect("a hypercall never faults");
    cpu.state.gpr[EAX]
}

fn err(e: u32) -> u32 {
    e.wrapping_neg()
}

fn cpuid(cpu: &mut Cpu, leaf: u32) -> [u32; 4] {
    cpu.state.gpr[EAX] = leaf;
    exec(cpu, &mut RecBus::default(), &CPUID).expect("CPUID");
    [cpu.state.gpr[EAX], cpu.state.gpr[EBX], cpu.state.gpr[ECX], cpu.state.gpr[EDX]]
}

#[test]
fn off_vmcall_is_ud_and_the_hypervisor_leaves_read_zeros() {
    let mut c = cpu(false);
    c.state.gpr[EAX] = nr::VERSION;
    let before = c.state.clone();
    assert_eq!(exec(&mut c, &mut RecBus::default(), &VMCALL), Err(Event::Exception(Exception::InvalidOpcode)));
    c.state.eip = before.eip;
    assert_eq!(c.state, before, "#UD changes nothing");
    assert_eq!(cpuid(&mut c, 0x4000_0000), [0; 4]);
    assert_eq!(cpuid(&mut c, 0x4000_0001), [0; 4]);
}

#[test]
fn on_the_signature_leaf_answers_and_leaves_0_and_1_are_unchanged() {
    let (mut on, mut off) = (cpu(true), cpu(false));
    let [max, b, c, d] = cpuid(&mut on, 0x4000_0000);
    assert_eq!(max, 0x4000_0001);
    let sig: Vec<u8> = [b, c, d].iter().flat_map(|r| r.to_le_bytes()).collect();
    assert_eq!(sig, SIGNATURE);
    assert_eq!(&SIGNATURE, b"popekpopekpv");
    assert_eq!(cpuid(&mut on, 0x4000_0001), [ABI_VERSION, FEATURES, 0, 0]);
    for leaf in [0, 1, 2, 0x4000_0002, 0x8000_0000] {
        assert_eq!(cpuid(&mut on, leaf), cpuid(&mut off, leaf), "leaf {leaf:#x}");
    }
    assert_eq!(cpuid(&mut on, 1)[2] >> 31, 0, "no hypervisor-present bit: leaf 1 is the P6's");
}

#[test]
fn version_answers_and_unknown_numbers_are_enosys_preserving_everything_else() {
    let mut c = cpu(true);
    let mut bus = RecBus::default();
    c.state.gpr[EDX] = 0x1111;
    c.state.gpr[ESI] = 0x2222;
    c.state.gpr[EDI] = 0x3333;
    c.state.eflags |= flags::CF | flags::ZF | flags::IF;
    let flags_before = c.state.eflags;
    assert_eq!(call(&mut c, &mut bus, nr::VERSION, 0, 0), ABI_VERSION);
    assert_eq!(c.state.gpr[EBX], FEATURES);
    assert_eq!(FEATURES, 0b111_1111, "calls 0 to 6");
    for n in [7, 99, 0x8000_0000, u32::MAX] {
        assert_eq!(call(&mut c, &mut bus, n, 5, 6), err(errno::ENOSYS), "call {n:#x}");
        assert_eq!((c.state.gpr[EBX], c.state.gpr[ECX]), (5, 6), "arguments untouched");
    }
    assert_eq!([c.state.gpr[EDX], c.state.gpr[ESI], c.state.gpr[EDI]], [0x1111, 0x2222, 0x3333]);
    assert_eq!(c.state.eflags, flags_before, "flags preserved");
    assert!(bus.ports.is_empty() && bus.mmio.is_empty());
}

#[test]
fn a_hypercall_from_cpl_3_is_eperm_and_does_nothing() {
    let mut c = cpu(true);
    let mut bus = RecBus::default();
    c.state.cpl = 3;
    c.state.eflags |= flags::IF;
    for n in [nr::VERSION, nr::IRQ_DISABLE, nr::SET_CR3, nr::EOI, nr::CONSOLE_WRITE, 99] {
        assert_eq!(call(&mut c, &mut bus, n, 0, 0), err(errno::EPERM), "call {n}");
    }
    assert_ne!(c.state.eflags & flags::IF, 0, "IF kept");
    assert_eq!(c.state.cr3, 0);
    assert!(bus.ports.is_empty());
}

#[test]
fn irq_disable_and_enable_are_cli_and_sti_with_its_shadow() {
    let mut c = cpu(true);
    let mut bus = RecBus::default();
    c.state.eflags |= flags::IF;
    assert_eq!(call(&mut c, &mut bus, nr::IRQ_DISABLE, 0, 0), 1, "was on");
    assert_eq!(c.state.eflags & flags::IF, 0);
    assert_eq!(call(&mut c, &mut bus, nr::IRQ_DISABLE, 0, 0), 0, "was off");
    assert!(!c.state.interrupt_shadow);
    assert_eq!(call(&mut c, &mut bus, nr::IRQ_ENABLE, 0, 0), 0, "was off");
    assert_ne!(c.state.eflags & flags::IF, 0);
    assert!(c.state.interrupt_shadow, "as after STI: one more instruction before an interrupt");
    assert!(c.interrupt_window, "the engine ends the block: a pending interrupt may be taken");
    c.state.interrupt_shadow = false;
    assert_eq!(call(&mut c, &mut bus, nr::IRQ_ENABLE, 0, 0), 1, "was on");
    assert!(!c.state.interrupt_shadow, "no shadow when IF was already 1 (as STI)");
}

/// Paging on: the page directory at 0x20000, one page table at 0x21000 for 0x400000..,
/// mapping `(linear page, physical page)` pairs; everything else not present.
fn paged(maps: &[(u32, u32)]) -> Cpu {
    let mut c = cpu(true);
    let pd = 0x20000;
    let pt = 0x21000;
    let pde = pd + 4; // 0x400000 >> 22 = 1
    assert!(c.mem.load(PhysAddr(pde), &(pt | pte::P | pte::RW).to_le_bytes()));
    for &(lin, phys) in maps {
        let e = phys | pte::P | pte::RW;
        assert!(c.mem.load(PhysAddr(pt + ((lin >> 12) & 0x3ff) * 4), &e.to_le_bytes()));
    }
    c.state.cr3 = pd;
    c.state.cr0 |= cr0::PG | cr0::PE;
    c
}

#[test]
fn set_cr3_and_invlpg_flush_as_the_instructions_do() {
    let mut c = paged(&[(0x400000, 0x30000), (0x401000, 0x31000)]);
    let mut bus = RecBus::default();
    for lin in [0x400000, 0x401000] {
        c.translate(&mut bus, LinearAddr(lin), AccessKind::Read, false).expect("mapped");
    }
    let cached = |c: &Cpu, lin: u32| c.tlb.entries[0][popek_cpu::Tlb::index(lin)].read_tag == lin;
    assert!(cached(&c, 0x400000) && cached(&c, 0x401000));
    assert_eq!(call(&mut c, &mut bus, nr::INVLPG, 0x400123, 0), 0);
    assert!(!cached(&c, 0x400000) && cached(&c, 0x401000), "only the page of EBX");
    // Reserved bits are dropped, as by MOV CR3; PWT/PCD kept.
    assert_eq!(call(&mut c, &mut bus, nr::SET_CR3, 0x20000 | 0x18 | 0x7, 0), 0);
    assert_eq!(c.state.cr3, 0x20018);
    assert!(!cached(&c, 0x401000), "non-global entries flushed");
}

#[test]
fn eoi_reaches_the_8259a_pair_or_the_local_apic() {
    let mut c = cpu(true);
    let mut bus = RecBus { apic_base: Some(0xfee0_0900), ..RecBus::default() };
    assert_eq!(call(&mut c, &mut bus, nr::EOI, eoi::PIC, 3), 0);
    assert_eq!(bus.ports, [(0x20, 0x20)]);
    assert!(c.interrupt_window);
    bus.ports.clear();
    assert_eq!(call(&mut c, &mut bus, nr::EOI, eoi::PIC, 10), 0);
    assert_eq!(bus.ports, [(0xa0, 0x20), (0x20, 0x20)], "slave first, then the cascade on the master");
    bus.ports.clear();
    assert_eq!(call(&mut c, &mut bus, nr::EOI, eoi::PIC, 16), err(errno::EINVAL));
    assert_eq!(call(&mut c, &mut bus, nr::EOI, 2, 0), err(errno::EINVAL));
    assert!(bus.ports.is_empty());
    assert_eq!(call(&mut c, &mut bus, nr::EOI, eoi::LAPIC, 0), 0);
    assert_eq!(bus.mmio, [(0xfee0_00b0, 0)]);
    let mut no_apic = RecBus::default();
    assert_eq!(call(&mut c, &mut no_apic, nr::EOI, eoi::LAPIC, 0), err(errno::EINVAL));
}

#[test]
fn console_write_copies_the_buffer_through_the_guest_page_tables() {
    // Two linear pages back to back on physical pages in the other order.
    let mut c = paged(&[(0x400000, 0x51000), (0x401000, 0x50000)]);
    let mut bus = RecBus::default();
    let text = b"hello from a paravirtual guest\n";
    let split = 10;
    assert!(c.mem.load(PhysAddr(0x52000 - split), &text[..split as usize]));
    assert!(c.mem.load(PhysAddr(0x50000), &text[split as usize..]));
    let len = u32::try_from(text.len()).expect("short");
    assert_eq!(call(&mut c, &mut bus, nr::CONSOLE_WRITE, 0x401000 - split, len), len);
    let out: Vec<u8> = bus
        .ports
        .iter()
        .map(|&(p, v)| {
            assert_eq!(p, 0x3f8);
            u8::try_from(v).expect("a byte")
        })
        .collect();
    assert_eq!(out, text);
    assert_eq!(call(&mut c, &mut bus, nr::CONSOLE_WRITE, 0x400000, 0), 0, "nothing to write");
}

#[test]
fn a_bad_console_buffer_is_an_error_and_writes_nothing() {
    // 0x402000 is not present; 0x403000 maps beyond RAM (1 MiB).
    let mut c = paged(&[(0x400000, 0x50000), (0x401000, 0x51000), (0x403000, 0x20_0000)]);
    let mut bus = RecBus::default();
    let cr2 = c.state.cr2;
    for (addr, len, e) in [
        (0x401ff0, 0x20, errno::EFAULT),    // runs into the page that is not present
        (0x402000, 1, errno::EFAULT),       // not present
        (0x403000, 4, errno::EFAULT),       // maps to no RAM
        (0x0000_1000, 4, errno::EFAULT),    // no page table
        (0xffff_fff0, 0x20, errno::EFAULT), // wraps past 4 GiB
        (0x400000, CONSOLE_MAX + 1, errno::EINVAL),
    ] {
        assert_eq!(call(&mut c, &mut bus, nr::CONSOLE_WRITE, addr, len), err(e), "{addr:#x}+{len:#x}");
    }
    assert!(bus.ports.is_empty(), "all or nothing");
    assert_eq!(c.state.cr2, cr2, "no page fault");
    assert_eq!(call(&mut c, &mut bus, nr::CONSOLE_WRITE, 0x400000, CONSOLE_MAX), CONSOLE_MAX, "a whole page");

    // Paging off: linear is physical, and what is not RAM is refused.
    let mut c = cpu(true);
    let mut bus = RecBus::default();
    assert_eq!(call(&mut c, &mut bus, nr::CONSOLE_WRITE, 0xff800, 0x1000), err(errno::EFAULT), "past the end of RAM");
    let mut holed = GuestMemory::new(1 << 20).expect("RAM");
    holed.add_hole(0xa0000, 0xc0000).expect("hole");
    c.mem = holed;
    assert_eq!(call(&mut c, &mut bus, nr::CONSOLE_WRITE, 0xa0000, 1), err(errno::EFAULT), "device memory");
    assert!(bus.ports.is_empty());
    assert_eq!(call(&mut c, &mut bus, nr::CONSOLE_WRITE, 0x9ffff, 1), 1, "the last byte of RAM below it");
}

#[test]
fn the_hypercall_handler_is_the_vmm_group_in_every_engine() {
    let insn = Decoder::with_ip(32, &VMCALL, 0, popek_cpu::block::DECODER_OPTIONS).decode();
    assert!(popek_vmm::lookup(&insn).is_some());
    assert!(popek_cpu::block::ends_block(&insn), "the run loop looks for interrupts after it");
}
