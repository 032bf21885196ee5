//! The VMM's machine-state instructions: port I/O and the TSS I/O bitmap (SDM
//! Vol. 1 19.5), CLI/STI/PUSHF/POPF, CPUID, RDTSC, MSRs, control and debug
//! registers, LMSW/SMSW, INVLPG (SDM Vol. 2 instruction pages).
//!
//! Code runs either through the interpreter ([`TestBox`]) or, where a fault must be
//! seen before IDT delivery exists, by calling the VMM handler directly the way the
//! interpreter does (EIP already at the next instruction). Expected values come from
//! the SDM's rules, worked out by hand in the comments.

use popek_cpu::exception::{Event, Exception};
use popek_cpu::iced_x86::{Decoder, DecoderOptions};
use popek_cpu::mmu::pte;
use popek_cpu::state::gpr::{EAX, EBX, ECX, EDI, EDX, ESI, ESP};
use popek_cpu::state::{Seg, SegmentCache, access, cr0, cr4, flags};
use popek_cpu::{AccessKind, AccessSize, Bus, Cpu, ExecResult, LinearAddr, PhysAddr, Port};
use popek_interp::testing::{CODE_BASE, DATA_BASE, TestBox};
use std::collections::VecDeque;

/// A bus that records every port access and answers reads from a queue.
#[derive(Default)]
struct RecBus {
    /// (port, size) of each read, in order.
    reads: Vec<(u16, AccessSize)>,
    /// (port, size, value) of each write, in order.
    writes: Vec<(u16, AccessSize, u32)>,
    /// Values returned by the next reads (all ones when empty).
    answers: VecDeque<u32>,
}

impl RecBus {
    fn answering(values: &[u32]) -> Self {
        RecBus { answers: values.iter().copied().collect(), ..Default::default() }
    }
}

impl Bus for RecBus {
    fn port_read(&mut self, port: Port, size: AccessSize) -> u32 {
        self.reads.push((port.0, size));
        self.answers.pop_front().unwrap_or(size.ones()) & size.ones()
    }
    fn port_write(&mut self, port: Port, size: AccessSize, value: u32) {
        self.writes.push((port.0, size, value));
    }
    fn mmio_read(&mut self, _: PhysAddr, size: AccessSize) -> u32 {
        size.ones()
    }
    fn mmio_write(&mut self, _: PhysAddr, _: AccessSize, _: u32) {}
}

/// Runs the TestBox code with `bus` until the HLT at its end.
fn run(t: &mut TestBox, bus: &mut RecBus) {
    for _ in 0..100 {
        if t.cpu.state.halted || t.cpu.state.eip == t.code_end {
            return;
        }
        t.interp.run_block(&mut t.cpu, bus).expect("runs without host-side events");
    }
    panic!("did not finish");
}

/// Decodes one 32-bit instruction at EIP and runs its VMM handler as the
/// interpreter would (EIP = next instruction on entry). On a fault, checks the
/// instruction was precise: nothing but EIP changed. Returns the handler's result.
fn exec(cpu: &mut Cpu, bus: &mut dyn Bus, bytes: &[u8]) -> ExecResult {
    let eip = cpu.state.eip;
    let insn = Decoder::with_ip(32, bytes, eip as u64, DecoderOptions::NONE).decode();
    assert!(!insn.is_invalid(), "{bytes:02x?} decodes");
    assert_eq!(insn.len(), bytes.len(), "{bytes:02x?} is one instruction");
    let handler = popek_vmm::lookup(&insn).unwrap_or_else(|| panic!("{insn} is a VMM instruction"));
    let before = cpu.state.clone();
    cpu.state.eip = insn.next_ip32();
    let r = handler(cpu, bus, &insn);
    if r.is_err() {
        cpu.state.eip = eip;
        assert_eq!(cpu.state, before, "a faulting {insn} leaves the state as it was");
    }
    r
}

fn gp0() -> ExecResult {
    Err(Event::Exception(Exception::GeneralProtection(0)))
}

fn ud() -> ExecResult {
    Err(Event::Exception(Exception::InvalidOpcode))
}

/// A CPU with 1 MiB of RAM in the Multiboot state, EIP at CODE_BASE, ESP at 0x9000.
fn cpu() -> Cpu {
    let t = TestBox::new(&[]);
    t.cpu
}

/// Puts the CPU at CPL 3 with ring-3 flat segments.
fn ring3(cpu: &mut Cpu) {
    cpu.state.cpl = 3;
    let dpl3 = 3 << access::DPL_SHIFT;
    for s in Seg::ALL {
        let c = &mut cpu.state.seg[s as usize];
        c.access |= dpl3;
        c.selector |= 3;
    }
}

fn set_iopl(cpu: &mut Cpu, iopl: u32) {
    cpu.state.eflags = (cpu.state.eflags & !flags::IOPL) | (iopl << flags::IOPL_SHIFT);
}

// ---------------------------------------------------------------- port I/O

#[test]
fn in_and_out_reach_the_bus() {
    struct Case {
        bytes: &'static [u8],
        eax: u32,
        edx: u32,
        answer: u32,
        read: Option<(u16, AccessSize)>,
        write: Option<(u16, AccessSize, u32)>,
        eax_after: u32,
    }
    const B: AccessSize = AccessSize::Byte;
    const W: AccessSize = AccessSize::Word;
    const D: AccessSize = AccessSize::Dword;
    let cases = [
        // out 0x80, al
        Case {
            bytes: &[0xe6, 0x80],
            eax: 0x1122_3344,
            edx: 0,
            answer: 0,
            read: None,
            write: Some((0x80, B, 0x44)),
            eax_after: 0x1122_3344,
        },
        // out dx, ax
        Case {
            bytes: &[0x66, 0xef],
            eax: 0x1122_3344,
            edx: 0xffff_01f0,
            answer: 0,
            read: None,
            write: Some((0x1f0, W, 0x3344)),
            eax_after: 0x1122_3344,
        },
        // out dx, eax
        Case {
            bytes: &[0xef],
            eax: 0x1122_3344,
            edx: 0xcf8,
            answer: 0,
            read: None,
            write: Some((0xcf8, D, 0x1122_3344)),
            eax_after: 0x1122_3344,
        },
        // out 0x71, eax (imm8 port, dword)
        Case {
            bytes: &[0xe7, 0x71],
            eax: 0xcafe_f00d,
            edx: 0,
            answer: 0,
            read: None,
            write: Some((0x71, D, 0xcafe_f00d)),
            eax_after: 0xcafe_f00d,
        },
        // in al, 0x60: only AL changes
        Case {
            bytes: &[0xe4, 0x60],
            eax: 0x1122_3344,
            edx: 0,
            answer: 0xab,
            read: Some((0x60, B)),
            write: None,
            eax_after: 0x1122_33ab,
        },
        // in ax, dx: only AX changes
        Case {
            bytes: &[0x66, 0xed],
            eax: 0x1122_3344,
            edx: 0x1f0,
            answer: 0xbeef,
            read: Some((0x1f0, W)),
            write: None,
            eax_after: 0x1122_beef,
        },
        // in eax, dx
        Case {
            bytes: &[0xed],
            eax: 0x1122_3344,
            edx: 0xcfc,
            answer: 0x8086_1237,
            read: Some((0xcfc, D)),
            write: None,
            eax_after: 0x8086_1237,
        },
        // in ax, 0x40
        Case {
            bytes: &[0x66, 0xe5, 0x40],
            eax: 0xffff_ffff,
            edx: 0,
            answer: 0x0102,
            read: Some((0x40, W)),
            write: None,
            eax_after: 0xffff_0102,
        },
    ];
    for c in cases {
        let mut t = TestBox::new(c.bytes);
        t.cpu.state.gpr[EAX] = c.eax;
        t.cpu.state.gpr[EDX] = c.edx;
        let mut bus = RecBus::answering(&[c.answer]);
        run(&mut t, &mut bus);
        assert_eq!(bus.reads, c.read.into_iter().collect::<Vec<_>>(), "{:02x?}", c.bytes);
        assert_eq!(bus.writes, c.write.into_iter().collect::<Vec<_>>(), "{:02x?}", c.bytes);
        assert_eq!(t.cpu.state.gpr[EAX], c.eax_after, "{:02x?}", c.bytes);
        assert_eq!(t.cpu.state.gpr[EDX], c.edx, "{:02x?}", c.bytes);
    }
}

/// Where the test TSS lives (paging is off: linear = physical).
const TSS: u32 = 0x20000;
/// I/O map offset inside it: right after the 0x68-byte 32-bit TSS.
const IOMAP: u32 = 0x68;

/// A 32-bit busy TSS at [`TSS`] whose I/O map covers ports 0..`ports` (all denied
/// except `allowed`), followed by the all-ones byte; TR points at it.
fn tss_with_bitmap(cpu: &mut Cpu, ports: u32, allowed: &[u16]) {
    let map_bytes = ports / 8;
    let mut map = vec![0xffu8; map_bytes as usize + 1];
    for &p in allowed {
        map[p as usize / 8] &= !(1 << (p % 8));
    }
    assert!(cpu.mem.load(PhysAddr(TSS + 0x66), &u16::try_from(IOMAP).unwrap().to_le_bytes()));
    assert!(cpu.mem.load(PhysAddr(TSS + IOMAP), &map));
    cpu.state.tr = SegmentCache { selector: 0x28, access: access::P | 0xb, base: TSS, limit: IOMAP + map_bytes };
}

#[test]
fn io_permission_by_iopl_and_tss_bitmap() {
    struct Case {
        bytes: &'static [u8],
        edx: u32,
        cpl: u8,
        iopl: u32,
        allowed: bool,
    }
    let cases = [
        // CPL <= IOPL: no bitmap consulted (the TSS denies everything here).
        Case { bytes: &[0xe6, 0x80], edx: 0, cpl: 0, iopl: 0, allowed: true },
        Case { bytes: &[0xe6, 0x80], edx: 0, cpl: 3, iopl: 3, allowed: true },
        Case { bytes: &[0xe6, 0x80], edx: 0, cpl: 1, iopl: 2, allowed: true },
        // CPL > IOPL: the bitmap decides. Ports 0x3f8..0x3ff are allowed.
        Case { bytes: &[0xe6, 0x80], edx: 0, cpl: 3, iopl: 0, allowed: false },
        Case { bytes: &[0xe6, 0x80], edx: 0, cpl: 3, iopl: 2, allowed: false },
        Case { bytes: &[0xee], edx: 0x3f8, cpl: 3, iopl: 0, allowed: true },
        Case { bytes: &[0xee], edx: 0x3ff, cpl: 3, iopl: 0, allowed: true },
        Case { bytes: &[0xee], edx: 0x3f7, cpl: 3, iopl: 0, allowed: false },
        // out dx, ax at 0x3fe: bits 0x3fe, 0x3ff clear.
        Case { bytes: &[0x66, 0xef], edx: 0x3fe, cpl: 3, iopl: 0, allowed: true },
        // out dx, eax at 0x3fc: 0x3fc..0x3ff clear.
        Case { bytes: &[0xef], edx: 0x3fc, cpl: 3, iopl: 0, allowed: true },
        // out dx, eax at 0x3fe: 0x400, 0x401 are set (they are in the next map byte).
        Case { bytes: &[0xef], edx: 0x3fe, cpl: 3, iopl: 0, allowed: false },
        // in al, dx at 0x3fd.
        Case { bytes: &[0xec], edx: 0x3fd, cpl: 3, iopl: 0, allowed: true },
        // Beyond the map (which covers ports 0..0x7ff): denied.
        Case { bytes: &[0xee], edx: 0xffff, cpl: 3, iopl: 0, allowed: false },
        Case { bytes: &[0xee], edx: 0x800, cpl: 3, iopl: 0, allowed: false },
        // CPL 1 > IOPL 0 uses the bitmap too.
        Case { bytes: &[0xee], edx: 0x3f9, cpl: 1, iopl: 0, allowed: true },
        Case { bytes: &[0xee], edx: 0x3f0, cpl: 1, iopl: 0, allowed: false },
    ];
    for c in cases {
        let mut cpu = cpu();
        tss_with_bitmap(&mut cpu, 0x800, &[0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff]);
        if c.cpl == 3 {
            ring3(&mut cpu);
        }
        cpu.state.cpl = c.cpl;
        set_iopl(&mut cpu, c.iopl);
        cpu.state.gpr[EDX] = c.edx;
        let mut bus = RecBus::default();
        let r = exec(&mut cpu, &mut bus, c.bytes);
        let what = format!("{:02x?} port {:#x} cpl {} iopl {}", c.bytes, c.edx, c.cpl, c.iopl);
        if c.allowed {
            assert_eq!(r, Ok(()), "{what}");
            assert_eq!(bus.reads.len() + bus.writes.len(), 1, "{what}");
        } else {
            assert_eq!(r, gp0(), "{what}");
            assert!(bus.reads.is_empty() && bus.writes.is_empty(), "{what}: no bus access");
        }
    }
}

#[test]
fn io_bitmap_needs_a_32_bit_tss_and_two_readable_map_bytes() {
    let out_dx_al: &[u8] = &[0xee];
    let setup = |port: u32| {
        let mut cpu = cpu();
        ring3(&mut cpu);
        cpu.state.gpr[EDX] = port;
        // Map of 0x80 bytes (ports 0..0x3ff), everything allowed, TSS limit right
        // after the map: no terminating byte inside the limit.
        assert!(cpu.mem.load(PhysAddr(TSS + 0x66), &u16::try_from(IOMAP).unwrap().to_le_bytes()));
        cpu.state.tr = SegmentCache { selector: 0x28, access: access::P | 0xb, base: TSS, limit: IOMAP + 0x80 - 1 };
        cpu
    };
    let mut bus = RecBus::default();
    // Port 0x3f0 is in map byte 0x7e: both bytes read (0x7e, 0x7f) are within the limit.
    assert_eq!(exec(&mut setup(0x3f0), &mut bus, out_dx_al), Ok(()));
    // Port 0x3f8 is in the last map byte 0x7f: the processor reads 2 bytes, the
    // second is past the limit: #GP (SDM Vol. 1 19.5.2).
    assert_eq!(exec(&mut setup(0x3f8), &mut bus, out_dx_al), gp0());

    // Available 32-bit TSS (type 9) is as good as busy (type 11).
    let mut cpu = setup(0x10);
    cpu.state.tr.access = access::P | 0x9;
    assert_eq!(exec(&mut cpu, &mut bus, out_dx_al), Ok(()));
    // A 16-bit TSS (type 3) has no I/O map.
    let mut cpu = setup(0x10);
    cpu.state.tr.access = access::P | 0x3;
    assert_eq!(exec(&mut cpu, &mut bus, out_dx_al), gp0());
    // Limit below 0x67.
    let mut cpu = setup(0x10);
    cpu.state.tr.limit = 0x66;
    assert_eq!(exec(&mut cpu, &mut bus, out_dx_al), gp0());
    // Map base beyond the limit: no map at all.
    let mut cpu = setup(0x10);
    assert!(cpu.mem.load(PhysAddr(TSS + 0x66), &0x1000u16.to_le_bytes()));
    assert_eq!(exec(&mut cpu, &mut bus, out_dx_al), gp0());
    assert_eq!(bus.writes.len(), 2, "only the two allowed OUTs reached the bus");
}

#[test]
fn rep_outsb_and_insb() {
    // rep outsb (f3 6e) ; rep insb (f3 6c)
    let mut t = TestBox::new(&[0xf3, 0x6e, 0xf3, 0x6c]);
    t.poke(DATA_BASE, b"hello");
    t.cpu.state.gpr[ESI] = DATA_BASE;
    t.cpu.state.gpr[EDI] = DATA_BASE + 0x100;
    t.cpu.state.gpr[ECX] = 5;
    t.cpu.state.gpr[EDX] = 0xe9;
    let mut bus = RecBus::answering(&[0x61, 0x62, 0x63, 0x64, 0x65]);
    run(&mut t, &mut bus);
    let bytes: Vec<u32> = bus
        .writes
        .iter()
        .map(|&(p, s, v)| {
            assert_eq!((p, s), (0xe9, AccessSize::Byte));
            v
        })
        .collect();
    assert_eq!(bytes, b"hello".iter().map(|&b| b as u32).collect::<Vec<_>>());
    assert_eq!(t.cpu.state.gpr[ESI], DATA_BASE + 5);
    // ECX is 0 after the OUTS, so the REP INSB does nothing.
    assert_eq!(t.cpu.state.gpr[ECX], 0);
    assert!(bus.reads.is_empty());
    assert_eq!(t.cpu.state.gpr[EDI], DATA_BASE + 0x100);

    // Now REP INSB with a count.
    let mut t = TestBox::new(&[0xf3, 0x6c]);
    t.cpu.state.gpr[EDI] = DATA_BASE;
    t.cpu.state.gpr[ECX] = 3;
    t.cpu.state.gpr[EDX] = 0x60;
    let mut bus = RecBus::answering(&[0x11, 0x22, 0x33]);
    run(&mut t, &mut bus);
    assert_eq!(bus.reads, vec![(0x60, AccessSize::Byte); 3]);
    assert_eq!(t.peek32(DATA_BASE), 0x0033_2211);
    assert_eq!(t.cpu.state.gpr[EDI], DATA_BASE + 3);
    assert_eq!(t.cpu.state.gpr[ECX], 0);
}

#[test]
fn string_io_direction_width_address_size_and_segments() {
    // std-free: DF set by hand. rep outsw (f3 66 6f) backwards.
    let mut t = TestBox::new(&[0xf3, 0x66, 0x6f]);
    t.poke(DATA_BASE, &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06]);
    t.cpu.state.eflags |= flags::DF;
    t.cpu.state.gpr[ESI] = DATA_BASE + 4;
    t.cpu.state.gpr[ECX] = 3;
    t.cpu.state.gpr[EDX] = 0x1f0;
    let mut bus = RecBus::default();
    run(&mut t, &mut bus);
    let w = AccessSize::Word;
    assert_eq!(bus.writes, vec![(0x1f0, w, 0x0605), (0x1f0, w, 0x0403), (0x1f0, w, 0x0201)]);
    assert_eq!(t.cpu.state.gpr[ESI], DATA_BASE - 2);

    // 16-bit addressing (67): rep insd uses CX and DI and keeps the upper halves.
    let mut t = TestBox::new(&[0x67, 0xf3, 0x6d]);
    t.cpu.state.gpr[EDI] = 0xabcd_2000;
    t.cpu.state.gpr[ECX] = 0x1234_0002;
    t.cpu.state.gpr[EDX] = 0xcfc;
    let mut bus = RecBus::answering(&[0x1111_1111, 0x2222_2222]);
    run(&mut t, &mut bus);
    assert_eq!(t.peek32(0x2000), 0x1111_1111);
    assert_eq!(t.peek32(0x2004), 0x2222_2222);
    assert_eq!(t.cpu.state.gpr[EDI], 0xabcd_2008);
    assert_eq!(t.cpu.state.gpr[ECX], 0x1234_0000);

    // 16-bit addressing for OUTS too: (67) rep outsb reads DS:SI and counts CX.
    let mut t = TestBox::new(&[0x67, 0xf3, 0x6e]);
    t.poke(0x3000, &[0x41, 0x42]);
    t.cpu.state.gpr[ESI] = 0xabcd_3000;
    t.cpu.state.gpr[ECX] = 0xffff_0002;
    t.cpu.state.gpr[EDX] = 0xe9;
    let mut bus = RecBus::default();
    run(&mut t, &mut bus);
    assert_eq!(bus.writes, vec![(0xe9, AccessSize::Byte, 0x41), (0xe9, AccessSize::Byte, 0x42)]);
    assert_eq!((t.cpu.state.gpr[ESI], t.cpu.state.gpr[ECX]), (0xabcd_3002, 0xffff_0000));

    // OUTS honours a segment override: fs rep outsb (64 f3 6e) with FS base 0x100.
    let mut t = TestBox::new(&[0x64, 0xf3, 0x6e]);
    t.poke(DATA_BASE + 0x100, &[0x7a, 0x7b]);
    t.poke(DATA_BASE, &[0xee, 0xee]);
    t.cpu.state.seg[Seg::Fs as usize].base = 0x100;
    t.cpu.state.gpr[ESI] = DATA_BASE;
    t.cpu.state.gpr[ECX] = 2;
    t.cpu.state.gpr[EDX] = 0x3f8;
    let mut bus = RecBus::default();
    run(&mut t, &mut bus);
    assert_eq!(bus.writes, vec![(0x3f8, AccessSize::Byte, 0x7a), (0x3f8, AccessSize::Byte, 0x7b)]);

    // Single (non-REP) insw ignores ECX.
    let mut t = TestBox::new(&[0x66, 0x6d]);
    t.cpu.state.gpr[EDI] = DATA_BASE;
    t.cpu.state.gpr[ECX] = 0;
    t.cpu.state.gpr[EDX] = 0x1f0;
    let mut bus = RecBus::answering(&[0x5a5a]);
    run(&mut t, &mut bus);
    assert_eq!(t.peek32(DATA_BASE) & 0xffff, 0x5a5a);
    assert_eq!(t.cpu.state.gpr[EDI], DATA_BASE + 2);
    assert_eq!(t.cpu.state.gpr[ECX], 0);
}

#[test]
fn ins_faults_before_reading_the_port_and_rep_stops_where_it_faulted() {
    // ES limit ends 2 bytes into the buffer: rep insb with ECX = 4 does 2 iterations.
    let mut cpu = cpu();
    cpu.state.seg[Seg::Es as usize].limit = DATA_BASE + 1;
    cpu.state.seg[Seg::Es as usize].access &= !access::G;
    cpu.state.gpr[EDI] = DATA_BASE;
    cpu.state.gpr[ECX] = 4;
    cpu.state.gpr[EDX] = 0x60;
    let mut bus = RecBus::answering(&[0xa1, 0xa2, 0xa3, 0xa4]);
    let insn = Decoder::with_ip(32, &[0xf3, 0x6c], CODE_BASE as u64, DecoderOptions::NONE).decode();
    let h = popek_vmm::lookup(&insn).unwrap();
    cpu.state.eip = insn.next_ip32();
    assert_eq!(h(&mut cpu, &mut bus, &insn), gp0());
    assert_eq!(bus.reads.len(), 2, "the third port read never happened: the store was checked first");
    assert_eq!(cpu.state.gpr[ECX], 2, "two iterations completed");
    assert_eq!(cpu.state.gpr[EDI], DATA_BASE + 2);
    assert_eq!(cpu.mem.read_ram::<3>(DATA_BASE as usize), Some([0xa1, 0xa2, 0]));

    // Denied by the bitmap: nothing at all happens.
    let mut cpu = self::cpu();
    tss_with_bitmap(&mut cpu, 0x400, &[]);
    ring3(&mut cpu);
    cpu.state.gpr[ESI] = DATA_BASE;
    cpu.state.gpr[ECX] = 4;
    cpu.state.gpr[EDX] = 0x60;
    let mut bus = RecBus::default();
    assert_eq!(exec(&mut cpu, &mut bus, &[0xf3, 0x6e]), gp0());
    assert!(bus.writes.is_empty());
}

// ---------------------------------------------------------------- flags

#[test]
fn popf_follows_the_sdm_rules() {
    struct Case {
        /// 2 for POPF (66 9d), 4 for POPFD (9d).
        width: u32,
        cpl: u8,
        old: u32,
        popped: u32,
        expect: u32,
    }
    // Bits POPFD may write at CPL 0: CF PF AF ZF SF TF IF DF OF IOPL NT AC ID
    // = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800 | 0x3000 | 0x4000 | 0x4_0000 | 0x20_0000
    // = 0x0024_7fd5; with the fixed bit 1 that is 0x0024_7fd7.
    let cases = [
        // CPL 0: everything writable; RF, VM, VIF, VIP and the reserved bits are not set.
        Case { width: 4, cpl: 0, old: 0x2, popped: 0xffff_ffff, expect: 0x0024_7fd7 },
        Case { width: 4, cpl: 0, old: 0x0000_3202, popped: 0x0000_0000, expect: 0x0000_0002 },
        // RF (bit 16) is cleared by POPFD.
        Case { width: 4, cpl: 0, old: 0x0001_0002, popped: 0x0001_0000, expect: 0x0000_0002 },
        // VM, VIF, VIP never come from the stack.
        Case { width: 4, cpl: 0, old: 0x2, popped: 0x001b_0000, expect: 0x2 },
        // Bits 3, 5 and 15 stay 0, bit 1 stays 1.
        Case { width: 4, cpl: 0, old: 0x2, popped: 0x0000_8028, expect: 0x2 },
        // The Popek-Goldberg case: CPL 3, IOPL 0, IF=1 in EFLAGS, 0 popped: IF silently kept.
        Case { width: 4, cpl: 3, old: 0x0000_0202, popped: 0x0000_0000, expect: 0x0000_0202 },
        // ... and IF=0 stays 0 when 1 is popped; IOPL 3 popped is ignored.
        // 0x0024_7fd7 without IF (0x200) and IOPL (0x3000) = 0x0024_4dd7.
        Case { width: 4, cpl: 3, old: 0x2, popped: 0xffff_ffff, expect: 0x0024_4dd7 },
        // CPL 3 = IOPL 3: IF writable, IOPL still not.
        Case { width: 4, cpl: 3, old: 0x0000_3002, popped: 0x0000_0200, expect: 0x0000_3202 },
        // CPL 1 = IOPL 1: IF writable, IOPL not (popped IOPL 3 ignored).
        Case { width: 4, cpl: 1, old: 0x0000_1002, popped: 0x0000_3200, expect: 0x0000_1202 },
        // CPL 2 > IOPL 1: IF kept.
        Case { width: 4, cpl: 2, old: 0x0000_1202, popped: 0x0000_0000, expect: 0x0000_1202 },
        // CPL 0 lowers IOPL and enables AC and ID.
        Case { width: 4, cpl: 0, old: 0x0000_3002, popped: 0x0024_0000, expect: 0x0024_0002 },
        // 16-bit POPF only touches bits 0-15: RF and AC above stay.
        Case { width: 2, cpl: 0, old: 0x0005_0202, popped: 0x0000_0000, expect: 0x0005_0002 },
        // 16-bit at CPL 3, IOPL 0: low-16 writable bits 0x7fd5 minus IF and IOPL = 0x4dd5, plus old IF and bit 1.
        Case { width: 2, cpl: 3, old: 0x0000_0202, popped: 0x0000_ffff, expect: 0x0000_4fd7 },
    ];
    for c in cases {
        let mut cpu = cpu();
        if c.cpl == 3 {
            ring3(&mut cpu);
        }
        cpu.state.cpl = c.cpl;
        cpu.state.eflags = c.old;
        let esp = cpu.state.gpr[ESP];
        assert!(cpu.mem.load(PhysAddr(esp), &c.popped.to_le_bytes()));
        let bytes: &[u8] = if c.width == 2 { &[0x66, 0x9d] } else { &[0x9d] };
        let mut bus = RecBus::default();
        assert_eq!(exec(&mut cpu, &mut bus, bytes), Ok(()));
        assert_eq!(
            cpu.state.eflags, c.expect,
            "width {} cpl {} old {:#x} popped {:#x}",
            c.width, c.cpl, c.old, c.popped
        );
        assert_eq!(cpu.state.gpr[ESP], esp + c.width);
    }
}

#[test]
fn ring3_popf_cannot_disable_interrupts_and_does_not_fault() {
    // Run the instruction through the interpreter: pushfd-free, the popped value is on the stack.
    let mut t = TestBox::new(&[0x9d]); // popfd
    ring3(&mut t.cpu);
    t.cpu.state.eflags = flags::FIXED1 | flags::IF;
    t.poke(0x9000, &0u32.to_le_bytes());
    let mut bus = RecBus::default();
    // POPFD ends its block; the HLT after it would fault at CPL 3, so run one block.
    assert_eq!(t.interp.run_block(&mut t.cpu, &mut bus), Ok(1));
    assert_eq!(t.cpu.state.eflags, flags::FIXED1 | flags::IF, "IF silently kept");
    assert_eq!(t.cpu.state.eip, CODE_BASE + 1);
    assert_eq!(t.interp.stats.exceptions, 0);
}

#[test]
fn pushf_clears_vm_and_rf_in_the_image() {
    let mut c = cpu();
    // VM | RF | AC | IF | ZF | PF | bit 1
    c.state.eflags = 0x0007_0246;
    let mut bus = RecBus::default();
    assert_eq!(exec(&mut c, &mut bus, &[0x9c]), Ok(()));
    assert_eq!(c.state.gpr[ESP], 0x9000 - 4);
    assert_eq!(u32::from_le_bytes(c.mem.read_ram::<4>(0x9000 - 4).unwrap()), 0x0004_0246);
    assert_eq!(c.state.eflags, 0x0007_0246, "PUSHF changes no flags");
    // pushf (16-bit): the low word only.
    assert_eq!(exec(&mut c, &mut bus, &[0x66, 0x9c]), Ok(()));
    assert_eq!(c.state.gpr[ESP], 0x9000 - 6);
    assert_eq!(c.mem.read_ram::<2>(0x9000 - 6), Some([0x46, 0x02]));
}

#[test]
fn cli_and_sti_obey_iopl() {
    struct Case {
        bytes: &'static [u8],
        cpl: u8,
        iopl: u32,
        if_before: bool,
        /// None: #GP(0).
        if_after: Option<bool>,
        shadow: bool,
    }
    let (cli, sti): (&[u8], &[u8]) = (&[0xfa], &[0xfb]);
    let cases = [
        Case { bytes: cli, cpl: 0, iopl: 0, if_before: true, if_after: Some(false), shadow: false },
        Case { bytes: sti, cpl: 0, iopl: 0, if_before: false, if_after: Some(true), shadow: true },
        // STI with IF already 1 opens no new shadow.
        Case { bytes: sti, cpl: 0, iopl: 0, if_before: true, if_after: Some(true), shadow: false },
        Case { bytes: cli, cpl: 3, iopl: 0, if_before: true, if_after: None, shadow: false },
        Case { bytes: sti, cpl: 3, iopl: 0, if_before: false, if_after: None, shadow: false },
        Case { bytes: cli, cpl: 3, iopl: 3, if_before: true, if_after: Some(false), shadow: false },
        Case { bytes: sti, cpl: 3, iopl: 3, if_before: false, if_after: Some(true), shadow: true },
        Case { bytes: cli, cpl: 2, iopl: 1, if_before: true, if_after: None, shadow: false },
        Case { bytes: cli, cpl: 1, iopl: 1, if_before: true, if_after: Some(false), shadow: false },
    ];
    for c in cases {
        let mut cpu = cpu();
        if c.cpl == 3 {
            ring3(&mut cpu);
        }
        cpu.state.cpl = c.cpl;
        set_iopl(&mut cpu, c.iopl);
        if c.if_before {
            cpu.state.eflags |= flags::IF;
        }
        let mut bus = RecBus::default();
        let r = exec(&mut cpu, &mut bus, c.bytes);
        let what = format!("{:02x?} cpl {} iopl {}", c.bytes, c.cpl, c.iopl);
        match c.if_after {
            None => assert_eq!(r, gp0(), "{what}"),
            Some(f) => {
                assert_eq!(r, Ok(()), "{what}");
                assert_eq!(cpu.state.eflags & flags::IF != 0, f, "{what}");
                assert_eq!(cpu.state.interrupt_shadow, c.shadow, "{what}");
            }
        }
    }
}

// ---------------------------------------------------------------- CPUID, TSC, MSRs

#[test]
fn cpuid_describes_an_honest_p6() {
    struct Case {
        leaf: u32,
        expect: [u32; 4], // EAX EBX ECX EDX
    }
    let cases = [
        // Max leaf 1, "Genu" "ntel" "ineI" in EBX ECX EDX (little-endian ASCII).
        Case { leaf: 0, expect: [1, 0x756e_6547, 0x6c65_746e, 0x4965_6e69] },
        // Family 6 model 5 stepping 0; EDX = FPU 0x1 | PSE 0x8 | TSC 0x10 | MSR 0x20 | CX8 0x100
        // | APIC 0x200 | PGE 0x2000 | CMOV 0x8000 | FXSR 0x100_0000.
        Case { leaf: 1, expect: [0x0000_0650, 0, 0, 0x0100_a339] },
        Case { leaf: 2, expect: [0; 4] },
        Case { leaf: 0x8000_0000, expect: [0; 4] },
    ];
    for c in cases {
        let mut cpu = cpu();
        ring3(&mut cpu); // CPUID is not privileged
        cpu.state.gpr = [c.leaf, 0xdead, 0xdead, 0xdead, 0x9000, 0, 0, 0];
        let mut bus = RecBus::default();
        assert_eq!(exec(&mut cpu, &mut bus, &[0x0f, 0xa2]), Ok(()));
        let g = cpu.state.gpr;
        assert_eq!([g[EAX], g[EBX], g[ECX], g[EDX]], c.expect, "leaf {:#x}", c.leaf);
    }
    // The FPU bit and FXSR (bit 24): popek has an x87 and FXSAVE/FXRSTOR; not MMX (bit 23)
    // or SSE (bit 25).
    assert_eq!(popek_vmm_cpuid_edx() & (1 | 7 << 23), 1 | 1 << 24);
}

fn popek_vmm_cpuid_edx() -> u32 {
    let mut cpu = cpu();
    cpu.state.gpr[EAX] = 1;
    exec(&mut cpu, &mut RecBus::default(), &[0x0f, 0xa2]).unwrap();
    cpu.state.gpr[EDX]
}

#[test]
fn rdtsc_and_tsd() {
    let rdtsc: &[u8] = &[0x0f, 0x31];
    let mut c = cpu();
    c.state.tsc = 0x0123_4567_89ab_cdef;
    assert_eq!(exec(&mut c, &mut RecBus::default(), rdtsc), Ok(()));
    assert_eq!((c.state.gpr[EDX], c.state.gpr[EAX]), (0x0123_4567, 0x89ab_cdef));
    // CPL 3 may, unless CR4.TSD.
    let mut c = cpu();
    ring3(&mut c);
    c.state.tsc = 42;
    assert_eq!(exec(&mut c, &mut RecBus::default(), rdtsc), Ok(()));
    assert_eq!(c.state.gpr[EAX], 42);
    c.state.cr4 |= cr4::TSD;
    assert_eq!(exec(&mut c, &mut RecBus::default(), rdtsc), gp0());
    // CPL 0 with TSD still may.
    let mut c = cpu();
    c.state.cr4 |= cr4::TSD;
    c.state.tsc = 7;
    assert_eq!(exec(&mut c, &mut RecBus::default(), rdtsc), Ok(()));
    assert_eq!(c.state.gpr[EAX], 7);
}

#[test]
fn rdmsr_and_wrmsr() {
    let (rdmsr, wrmsr): (&[u8], &[u8]) = (&[0x0f, 0x32], &[0x0f, 0x30]);
    let mut bus = RecBus::default();
    let mut c = cpu();
    // IA32_TIME_STAMP_COUNTER: reads what was written, then counts on with virtual time
    // (the run loop moves `state.tsc`; a write sets the offset), for RDMSR and RDTSC alike.
    c.state.tsc = 1000;
    c.state.gpr[ECX] = 0x10;
    c.state.gpr[EDX] = 0x0000_0001;
    c.state.gpr[EAX] = 0x8000_0000;
    assert_eq!(exec(&mut c, &mut bus, wrmsr), Ok(()));
    assert_eq!(exec(&mut c, &mut bus, rdmsr), Ok(()));
    assert_eq!((c.state.gpr[EDX], c.state.gpr[EAX]), (1, 0x8000_0000));
    c.state.tsc = 1500;
    assert_eq!(exec(&mut c, &mut bus, rdmsr), Ok(()));
    assert_eq!((c.state.gpr[EDX], c.state.gpr[EAX]), (1, 0x8000_0000 + 500));
    assert_eq!(exec(&mut c, &mut bus, &[0x0f, 0x31]), Ok(())); // rdtsc
    assert_eq!((c.state.gpr[EDX], c.state.gpr[EAX]), (1, 0x8000_0000 + 500));
    // Back to 0: the offset wraps.
    c.state.gpr[ECX] = 0x10;
    (c.state.gpr[EDX], c.state.gpr[EAX]) = (0, 0);
    assert_eq!(exec(&mut c, &mut bus, wrmsr), Ok(()));
    c.state.tsc = 1501;
    assert_eq!(exec(&mut c, &mut bus, rdmsr), Ok(()));
    assert_eq!((c.state.gpr[EDX], c.state.gpr[EAX]), (0, 1));
    // SYSENTER_CS/ESP/EIP
    for (msr, v) in [(0x174u32, 0x10u32), (0x175, 0xc000_8000), (0x176, 0xc010_0000)] {
        c.state.gpr[ECX] = msr;
        c.state.gpr[EAX] = v;
        c.state.gpr[EDX] = 0;
        assert_eq!(exec(&mut c, &mut bus, wrmsr), Ok(()));
        c.state.gpr[EAX] = 0;
        c.state.gpr[EDX] = 0xffff_ffff;
        assert_eq!(exec(&mut c, &mut bus, rdmsr), Ok(()));
        assert_eq!((c.state.gpr[EDX], c.state.gpr[EAX]), (0, v), "MSR {msr:#x}");
    }
    assert_eq!((c.state.sysenter_cs, c.state.sysenter_esp, c.state.sysenter_eip), (0x10, 0xc000_8000, 0xc010_0000));
    // IA32_BIOS_SIGN_ID: writable (Linux writes 0 before CPUID), reads 0 (no microcode).
    c.state.gpr[ECX] = 0x8b;
    (c.state.gpr[EDX], c.state.gpr[EAX]) = (0, 0);
    assert_eq!(exec(&mut c, &mut bus, wrmsr), Ok(()));
    c.state.gpr[EDX] = 0x1234;
    assert_eq!(exec(&mut c, &mut bus, rdmsr), Ok(()));
    assert_eq!((c.state.gpr[EDX], c.state.gpr[EAX]), (0, 0));
    // MSRs neither the CPU nor the bus has (RecBus has no IA32_APIC_BASE 0x1b) and CPL 3: #GP(0).
    c.state.gpr[ECX] = 0x1b;
    assert_eq!(exec(&mut c, &mut bus, rdmsr), gp0());
    assert_eq!(exec(&mut c, &mut bus, wrmsr), gp0());
    ring3(&mut c);
    c.state.gpr[ECX] = 0x10;
    assert_eq!(exec(&mut c, &mut bus, rdmsr), gp0());
    assert_eq!(exec(&mut c, &mut bus, wrmsr), gp0());
}

/// A bus that owns one platform MSR (like the PC's IA32_APIC_BASE), refusing writes
/// with bit 0 set.
#[derive(Default)]
struct MsrBus {
    value: u64,
}

impl Bus for MsrBus {
    fn port_read(&mut self, _: Port, size: AccessSize) -> u32 {
        size.ones()
    }
    fn port_write(&mut self, _: Port, _: AccessSize, _: u32) {}
    fn mmio_read(&mut self, _: PhysAddr, size: AccessSize) -> u32 {
        size.ones()
    }
    fn mmio_write(&mut self, _: PhysAddr, _: AccessSize, _: u32) {}
    fn read_msr(&mut self, msr: u32) -> Option<u64> {
        (msr == 0x1b).then_some(self.value)
    }
    fn write_msr(&mut self, msr: u32, value: u64) -> bool {
        let ok = msr == 0x1b && value & 1 == 0;
        if ok {
            self.value = value;
        }
        ok
    }
}

#[test]
fn platform_msrs_go_to_the_bus() {
    let (rdmsr, wrmsr): (&[u8], &[u8]) = (&[0x0f, 0x32], &[0x0f, 0x30]);
    let mut bus = MsrBus { value: 0xfee0_0900 };
    let mut c = cpu();
    c.state.gpr[ECX] = 0x1b;
    assert_eq!(exec(&mut c, &mut bus, rdmsr), Ok(()));
    assert_eq!((c.state.gpr[EDX], c.state.gpr[EAX]), (0, 0xfee0_0900));
    c.state.gpr[EAX] = 0xfee0_0100;
    c.state.gpr[EDX] = 1;
    assert_eq!(exec(&mut c, &mut bus, wrmsr), Ok(()));
    assert_eq!(bus.value, 0x1_fee0_0100, "EDX:EAX reaches the bus whole");
    c.state.gpr[EAX] = 1;
    assert_eq!(exec(&mut c, &mut bus, wrmsr), gp0(), "the bus refuses: #GP(0)");
    assert_eq!(bus.value, 0x1_fee0_0100);
    c.state.gpr[ECX] = 0x1c;
    assert_eq!(exec(&mut c, &mut bus, rdmsr), gp0());
    ring3(&mut c);
    c.state.gpr[ECX] = 0x1b;
    assert_eq!(exec(&mut c, &mut bus, rdmsr), gp0(), "CPL 3");
}

#[test]
fn cache_instructions_clts_and_ud2() {
    let mut bus = RecBus::default();
    for bytes in [&[0x0f, 0x09][..], &[0x0f, 0x08], &[0x0f, 0x06]] {
        // wbinvd, invd, clts: CPL 0 only
        let mut c = cpu();
        c.state.cr0 |= cr0::TS;
        assert_eq!(exec(&mut c, &mut bus, bytes), Ok(()), "{bytes:02x?}");
        ring3(&mut c);
        assert_eq!(exec(&mut c, &mut bus, bytes), gp0(), "{bytes:02x?}");
    }
    let mut c = cpu();
    c.state.cr0 |= cr0::TS | cr0::MP;
    exec(&mut c, &mut bus, &[0x0f, 0x06]).unwrap();
    assert_eq!(c.state.cr0, cr0::PE | cr0::ET | cr0::MP, "CLTS clears TS only");
    // ud2 at any CPL
    assert_eq!(exec(&mut c, &mut bus, &[0x0f, 0x0b]), ud());
    ring3(&mut c);
    assert_eq!(exec(&mut c, &mut bus, &[0x0f, 0x0b]), ud());
}

// ---------------------------------------------------------------- control registers

/// mov cr0, eax / mov eax, cr0 / ... as bytes: 0f 22 /r (to CR) and 0f 20 /r (from CR).
fn mov_to_cr(n: u8) -> [u8; 3] {
    [0x0f, 0x22, 0xc0 | (n << 3)] // mov crN, eax
}
fn mov_from_cr(n: u8) -> [u8; 3] {
    [0x0f, 0x20, 0xc0 | (n << 3) | 3] // mov ebx, crN
}

#[test]
fn mov_cr0_checks_and_masks() {
    struct Case {
        value: u32,
        /// None: #GP(0).
        expect: Option<u32>,
    }
    let cases = [
        // PG | PE, ET forced to 1 (P6: ET is hard-wired).
        Case { value: 0x8000_0001, expect: Some(0x8000_0011) },
        // Every defined bit: PG CD NW AM WP NE ET TS EM MP PE.
        Case { value: 0xe005_003f, expect: Some(0xe005_003f) },
        // Reserved bits (6-15, 17, 19-28) are ignored, not faulted: SDM Vol. 2 MOV CR
        // "attempts to set them have no impact".
        Case { value: 0x1ffa_ffc1, expect: Some(0x0000_0011) },
        // PG without PE.
        Case { value: 0x8000_0000, expect: None },
        // NW without CD.
        Case { value: 0x2000_0011, expect: None },
        Case { value: 0x6000_0011, expect: Some(0x6000_0011) },
    ];
    for c in cases {
        let mut cpu = cpu();
        cpu.state.gpr[EAX] = c.value;
        let r = exec(&mut cpu, &mut RecBus::default(), &mov_to_cr(0));
        match c.expect {
            None => assert_eq!(r, gp0(), "{:#x}", c.value),
            Some(v) => {
                assert_eq!(r, Ok(()), "{:#x}", c.value);
                assert_eq!(cpu.state.cr0, v, "{:#x}", c.value);
                assert_eq!(exec(&mut cpu, &mut RecBus::default(), &mov_from_cr(0)), Ok(()));
                assert_eq!(cpu.state.gpr[EBX], v);
            }
        }
    }
}

/// Clearing CR0.PE enters real-address mode (SDM Vol. 3A 10.9.2): the segment caches keep
/// what protected mode left in them until a register is loaded again, a load then gives
/// base = selector × 16 and keeps the limit ("big real mode"), interrupts go through the
/// vector table at IDTR, and setting PE again returns to protected mode.
#[test]
fn clearing_pe_enters_real_mode_and_setting_it_returns() {
    let mut bus = RecBus::default();
    let mut c = cpu();
    let before = c.state.seg;
    c.state.gpr[EAX] = cr0::ET;
    assert_eq!(exec(&mut c, &mut bus, &mov_to_cr(0)), Ok(()));
    assert_eq!(c.state.cr0, cr0::ET);
    assert!(!c.protected_mode());
    assert_eq!(c.state.seg, before, "caches kept");
    assert_eq!(c.state.cpl, 0);
    // mov ds, ax
    c.state.gpr[EAX] = 0x1234;
    assert_eq!(exec(&mut c, &mut bus, &[0x8e, 0xd8]), Ok(()));
    let ds = c.state.seg(Seg::Ds);
    assert_eq!((ds.selector, ds.base, ds.limit), (0x1234, 0x12340, u32::MAX), "base from the selector, limit kept");
    // INT 0x21 through the vector table: FLAGS, CS, IP pushed, IF cleared, CS:IP from the table.
    c.state.idtr = popek_cpu::state::TableReg { base: 0, limit: 0x3ff };
    assert!(c.mem.load(PhysAddr(0x21 * 4), &[0x00, 0x05, 0x40, 0x00])); // 0040:0500
    c.state.eflags |= flags::IF;
    let (sp, ip, cs) = (c.state.gpr[ESP], c.state.eip, c.state.seg(Seg::Cs).selector);
    c.deliver_software_interrupt(&mut bus, 0x21).expect("delivered");
    assert_eq!((c.state.seg(Seg::Cs).selector, c.state.seg(Seg::Cs).base, c.state.eip), (0x40, 0x400, 0x500));
    assert_eq!(c.state.gpr[ESP], sp - 6);
    let word = |c: &Cpu, a: u32| u16::from_le_bytes(c.mem.read_ram::<2>(a as usize).expect("in RAM"));
    assert_eq!(u32::from(word(&c, sp - 6)), ip & 0xffff);
    assert_eq!(word(&c, sp - 4), cs);
    assert_ne!(u32::from(word(&c, sp - 2)) & flags::IF, 0, "the old FLAGS");
    assert_eq!(c.state.eflags & flags::IF, 0);
    // Back to protected mode.
    c.state.gpr[EAX] = cr0::ET | cr0::PE;
    assert_eq!(exec(&mut c, &mut bus, &mov_to_cr(0)), Ok(()));
    assert!(c.protected_mode());
}

#[test]
fn control_registers_are_privileged_and_cr1_cr5_do_not_exist() {
    let mut bus = RecBus::default();
    for n in [0, 2, 3, 4] {
        let mut c = cpu();
        ring3(&mut c);
        assert_eq!(exec(&mut c, &mut bus, &mov_to_cr(n)), gp0(), "mov cr{n}, eax at CPL 3");
        assert_eq!(exec(&mut c, &mut bus, &mov_from_cr(n)), gp0(), "mov ebx, cr{n} at CPL 3");
    }
    // CR1, CR5-CR7: #UD. iced already rejects these encodings, so the interpreter's
    // dispatch (which the VMM is part of) must turn them into #UD.
    for n in [1, 5, 6, 7] {
        for bytes in [mov_to_cr(n), mov_from_cr(n)] {
            let insn = Decoder::with_ip(32, &bytes, CODE_BASE as u64, DecoderOptions::NONE).decode();
            let mut c = cpu();
            let r = popek_interp::dispatch::handler_for(&insn)(&mut c, &mut bus, &insn);
            assert_eq!(r, ud(), "{bytes:02x?}");
        }
    }
    // CR2 is a plain register.
    let mut c = cpu();
    c.state.gpr[EAX] = 0xc012_3456;
    exec(&mut c, &mut bus, &mov_to_cr(2)).unwrap();
    exec(&mut c, &mut bus, &mov_from_cr(2)).unwrap();
    assert_eq!((c.state.cr2, c.state.gpr[EBX]), (0xc012_3456, 0xc012_3456));
}

#[test]
fn mov_cr4_rejects_unsupported_bits() {
    struct Case {
        value: u32,
        ok: bool,
    }
    let cases = [
        Case { value: cr4::PSE | cr4::PGE | cr4::TSD | cr4::DE, ok: true },
        Case { value: 0, ok: true },
        Case { value: cr4::PAE, ok: false },
        Case { value: cr4::MCE, ok: false },
        Case { value: cr4::OSFXSR | cr4::PGE, ok: true }, // FXSR is reported
        Case { value: 1 << 10, ok: false },               // OSXMMEXCPT: no SSE
        Case { value: 0x8000_0000, ok: false },
    ];
    for c in cases {
        let mut cpu = cpu();
        cpu.state.gpr[EAX] = c.value;
        let r = exec(&mut cpu, &mut RecBus::default(), &mov_to_cr(4));
        if c.ok {
            assert_eq!(r, Ok(()), "{:#x}", c.value);
            assert_eq!(cpu.state.cr4, c.value);
        } else {
            assert_eq!(r, gp0(), "{:#x}", c.value);
        }
    }
}

/// Paging on with identity-mapped low memory except linear 0x5000/0x6000, which
/// map to 0x8000/0x9000 (0x6000 global); both translations are in the TLB.
/// Then the PTEs are changed to 0xa000/0xb000 without a flush.
fn paged_with_stale_tlb() -> Cpu {
    const PD: u32 = 0x30000;
    const PT: u32 = 0x31000;
    let mut c = cpu();
    let put = |c: &mut Cpu, a: u32, v: u32| assert!(c.mem.write_ram(a as usize, v.to_le_bytes()));
    put(&mut c, PD, PT | pte::P | pte::RW);
    for page in 0..256 {
        put(&mut c, PT + page * 4, (page << 12) | pte::P | pte::RW);
    }
    put(&mut c, PT + 5 * 4, 0x8000 | pte::P | pte::RW);
    put(&mut c, PT + 6 * 4, 0x9000 | pte::P | pte::RW | pte::G);
    c.state.cr3 = PD;
    c.state.cr4 = cr4::PGE;
    c.state.cr0 |= cr0::PG;
    assert_eq!(
        c.translate(&mut popek_cpu::NullBus::default(), LinearAddr(0x5000), AccessKind::Read, false),
        Ok(PhysAddr(0x8000))
    );
    assert_eq!(
        c.translate(&mut popek_cpu::NullBus::default(), LinearAddr(0x6000), AccessKind::Read, false),
        Ok(PhysAddr(0x9000))
    );
    put(&mut c, PT + 5 * 4, 0xa000 | pte::P | pte::RW);
    put(&mut c, PT + 6 * 4, 0xb000 | pte::P | pte::RW | pte::G);
    c
}

fn phys_of(c: &mut Cpu, lin: u32) -> u32 {
    c.translate(&mut popek_cpu::NullBus::default(), LinearAddr(lin), AccessKind::Read, false).unwrap().0
}

#[test]
fn control_register_writes_flush_the_tlb_as_the_sdm_says() {
    let mut bus = RecBus::default();
    // CR3 load: non-global entries go, global ones stay. Reserved CR3 bits read as 0.
    let mut c = paged_with_stale_tlb();
    c.state.gpr[EAX] = c.state.cr3 | 0xfff;
    exec(&mut c, &mut bus, &mov_to_cr(3)).unwrap();
    assert_eq!(c.state.cr3, 0x30018, "base | PCD | PWT");
    assert_eq!((phys_of(&mut c, 0x5000), phys_of(&mut c, 0x6000)), (0xa000, 0x9000));

    // CR0 write that changes none of PG/WP/PE (here TS): no flush.
    let mut c = paged_with_stale_tlb();
    c.state.gpr[EAX] = c.state.cr0 | cr0::TS;
    exec(&mut c, &mut bus, &mov_to_cr(0)).unwrap();
    assert_eq!((phys_of(&mut c, 0x5000), phys_of(&mut c, 0x6000)), (0x8000, 0x9000));
    // Setting WP flushes everything, globals included.
    c.state.gpr[EAX] = c.state.cr0 | cr0::WP;
    exec(&mut c, &mut bus, &mov_to_cr(0)).unwrap();
    assert_eq!((phys_of(&mut c, 0x5000), phys_of(&mut c, 0x6000)), (0xa000, 0xb000));

    // CR4: toggling PGE flushes everything; a write changing neither PSE nor PGE does not.
    let mut c = paged_with_stale_tlb();
    c.state.gpr[EAX] = cr4::PGE | cr4::TSD;
    exec(&mut c, &mut bus, &mov_to_cr(4)).unwrap();
    assert_eq!((phys_of(&mut c, 0x5000), phys_of(&mut c, 0x6000)), (0x8000, 0x9000));
    c.state.gpr[EAX] = 0;
    exec(&mut c, &mut bus, &mov_to_cr(4)).unwrap();
    assert_eq!((phys_of(&mut c, 0x5000), phys_of(&mut c, 0x6000)), (0xa000, 0xb000));
}

#[test]
fn invlpg_flushes_the_linear_page_of_its_operand() {
    let mut bus = RecBus::default();
    let mut c = paged_with_stale_tlb();
    // DS base 0x1000, tiny limit: INVLPG neither checks nor touches memory.
    let ds = &mut c.state.seg[Seg::Ds as usize];
    ds.base = 0x1000;
    ds.limit = 0xff;
    ds.access &= !access::G;
    c.state.gpr[EAX] = 0x4000;
    // invlpg [eax+0x10] → linear 0x1000 + 0x4010 = 0x5010
    assert_eq!(exec(&mut c, &mut bus, &[0x0f, 0x01, 0x78, 0x10]), Ok(()));
    assert_eq!((phys_of(&mut c, 0x5000), phys_of(&mut c, 0x6000)), (0xa000, 0x9000));
    // Global pages are flushed by INVLPG too.
    c.state.gpr[EAX] = 0x5000;
    assert_eq!(exec(&mut c, &mut bus, &[0x0f, 0x01, 0x38]), Ok(())); // invlpg [eax] → 0x6000
    assert_eq!(phys_of(&mut c, 0x6000), 0xb000);
    // Privileged.
    let mut c = paged_with_stale_tlb();
    ring3(&mut c);
    assert_eq!(exec(&mut c, &mut bus, &[0x0f, 0x01, 0x38]), gp0());
}

#[test]
fn lmsw_and_smsw() {
    let mut bus = RecBus::default();
    // lmsw ax (0f 01 f0): loads MP, EM, TS; PE stays set even when the source clears it.
    let mut c = cpu();
    c.state.gpr[EAX] = 0xffff_000e;
    exec(&mut c, &mut bus, &[0x0f, 0x01, 0xf0]).unwrap();
    assert_eq!(c.state.cr0, cr0::PE | cr0::MP | cr0::EM | cr0::TS | cr0::ET);
    c.state.gpr[EAX] = 0xfff0; // bits above the MSW bits are ignored
    exec(&mut c, &mut bus, &[0x0f, 0x01, 0xf0]).unwrap();
    assert_eq!(c.state.cr0, cr0::PE | cr0::ET, "PE cannot be cleared by LMSW");
    // lmsw [ebx] from memory; high CR0 bits untouched.
    c.state.cr0 |= cr0::WP;
    c.state.gpr[EBX] = DATA_BASE;
    assert!(c.mem.load(PhysAddr(DATA_BASE), &[0x08, 0x00]));
    exec(&mut c, &mut bus, &[0x0f, 0x01, 0x33]).unwrap();
    assert_eq!(c.state.cr0, cr0::WP | cr0::PE | cr0::ET | cr0::TS);
    ring3(&mut c);
    assert_eq!(exec(&mut c, &mut bus, &[0x0f, 0x01, 0xf0]), gp0());

    // smsw: not privileged.
    let mut c = cpu();
    ring3(&mut c);
    c.state.cr0 = 0x6005_0033; // CD NW AM WP NE ET MP PE
    c.state.gpr[EAX] = 0xdead_beef;
    exec(&mut c, &mut bus, &[0x0f, 0x01, 0xe0]).unwrap(); // smsw eax
    assert_eq!(c.state.gpr[EAX], 0x6005_0033, "32-bit register: the whole CR0");
    c.state.gpr[EAX] = 0xdead_beef;
    exec(&mut c, &mut bus, &[0x66, 0x0f, 0x01, 0xe0]).unwrap(); // smsw ax
    assert_eq!(c.state.gpr[EAX], 0xdead_0033);
    c.state.gpr[EBX] = DATA_BASE;
    assert!(c.mem.load(PhysAddr(DATA_BASE), &[0xaa; 4]));
    exec(&mut c, &mut bus, &[0x0f, 0x01, 0x23]).unwrap(); // smsw [ebx]: 16 bits
    assert_eq!(c.mem.read_ram::<4>(DATA_BASE as usize), Some([0x33, 0x00, 0xaa, 0xaa]));
}

#[test]
fn debug_registers() {
    let mut bus = RecBus::default();
    let to_dr = |n: u8| [0x0f, 0x23, 0xc0 | (n << 3)]; // mov drN, eax
    let from_dr = |n: u8| [0x0f, 0x21, 0xc0 | (n << 3) | 3]; // mov ebx, drN
    let mut c = cpu();
    c.state.gpr[EAX] = 0xc000_1000;
    exec(&mut c, &mut bus, &to_dr(0)).unwrap();
    exec(&mut c, &mut bus, &from_dr(0)).unwrap();
    assert_eq!(c.state.gpr[EBX], 0xc000_1000);
    // DR6: bits 4-11 and 16-31 read as 1, bit 12 as 0.
    c.state.gpr[EAX] = 0;
    exec(&mut c, &mut bus, &to_dr(6)).unwrap();
    assert_eq!(c.state.dr[6], 0xffff_0ff0);
    c.state.gpr[EAX] = 0xffff_ffff;
    exec(&mut c, &mut bus, &to_dr(6)).unwrap();
    assert_eq!(c.state.dr[6], 0xffff_eff0 | 0xf);
    // DR7: bit 10 reads 1; bits 11, 12, 14, 15 read 0.
    c.state.gpr[EAX] = 0;
    exec(&mut c, &mut bus, &to_dr(7)).unwrap();
    assert_eq!(c.state.dr[7], 0x400);
    c.state.gpr[EAX] = 0xffff_ffff;
    exec(&mut c, &mut bus, &to_dr(7)).unwrap();
    assert_eq!(c.state.dr[7], 0xffff_27ff);
    // DR4/DR5 alias DR6/DR7 while CR4.DE = 0.
    exec(&mut c, &mut bus, &from_dr(5)).unwrap();
    assert_eq!(c.state.gpr[EBX], 0xffff_27ff);
    c.state.gpr[EAX] = 0x1;
    exec(&mut c, &mut bus, &to_dr(4)).unwrap();
    assert_eq!(c.state.dr[6], 0xffff_0ff1);
    // ... and are #UD with CR4.DE = 1.
    c.state.cr4 |= cr4::DE;
    assert_eq!(exec(&mut c, &mut bus, &to_dr(4)), ud());
    assert_eq!(exec(&mut c, &mut bus, &from_dr(5)), ud());
    // Privileged.
    ring3(&mut c);
    assert_eq!(exec(&mut c, &mut bus, &to_dr(0)), gp0());
    assert_eq!(exec(&mut c, &mut bus, &from_dr(7)), gp0());
}

#[test]
fn enabling_paging_through_the_interpreter() {
    // mov eax, cr0 ; or eax, 0x80000000 ; mov cr0, eax ; or eax, 2 ; hlt   (with an identity map)
    const PD: u32 = 0x30000;
    const PT: u32 = 0x31000;
    let code = [0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0x83, 0xc8, 0x02];
    let mut t = TestBox::new(&code);
    t.poke(PD, &(PT | pte::P | pte::RW).to_le_bytes());
    for page in 0..256u32 {
        t.poke(PT + page * 4, &((page << 12) | pte::P | pte::RW).to_le_bytes());
    }
    t.cpu.state.cr3 = PD;
    let mut bus = RecBus::default();
    run(&mut t, &mut bus);
    assert!(t.cpu.state.halted, "{}", t.cpu.state.dump());
    assert_eq!(t.cpu.state.eip, CODE_BASE + u32::try_from(code.len()).unwrap() + 1);
    assert_eq!(t.cpu.state.cr0, cr0::PG | cr0::ET | cr0::PE);
    assert_eq!(t.cpu.state.gpr[EAX], 0x8000_0013);
    // MOV CR0 ended its block; the OR and HLT were fetched through the page tables,
    // so the code page's PTE and the PDE are now accessed.
    assert_eq!(t.peek32(PT + 4), 0x1000 | pte::P | pte::RW | pte::A);
    assert_eq!(t.peek32(PD), PT | pte::P | pte::RW | pte::A);
    assert_eq!(t.peek32(PT + 8), 0x2000 | pte::P | pte::RW, "an untouched page stays clean");
}

/// A long REP OUTSB yields after `REP_BUDGET` elements with EIP back at itself, and
/// finishes on the next run.
#[test]
fn long_rep_outs_yields_and_resumes() {
    use popek_cpu::REP_BUDGET;
    use popek_interp::testing::{CODE_BASE, TestBox};
    let mut t = TestBox::new(&[0xf3, 0x6e]); // rep outsb
    t.cpu.state.gpr[popek_cpu::state::gpr::ECX] = REP_BUDGET + 3;
    t.cpu.state.gpr[popek_cpu::state::gpr::ESI] = 0x20000;
    t.cpu.state.gpr[popek_cpu::state::gpr::EDX] = 0x80;
    // Each element retires as an instruction.
    assert_eq!(t.interp.run_block(&mut t.cpu, &mut t.bus).unwrap(), REP_BUDGET);
    assert_eq!(t.cpu.state.eip, CODE_BASE);
    assert_eq!(t.cpu.state.gpr[popek_cpu::state::gpr::ECX], 3);
    assert_eq!(t.bus.port_writes.len(), REP_BUDGET as usize);
    // With room for two instructions, two elements.
    assert_eq!(t.interp.run_block_within(&mut t.cpu, &mut t.bus, 2).unwrap(), 2);
    assert_eq!(t.cpu.state.gpr[popek_cpu::state::gpr::ECX], 1);
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.eip, CODE_BASE + 2);
    assert_eq!(t.bus.port_writes.len(), REP_BUDGET as usize + 3);
}
