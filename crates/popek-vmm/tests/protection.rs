//! Protected-mode system mechanisms end to end (SDM Vol. 3A ch. 5–6): a tiny guest with a
//! GDT, an IDT and a TSS, run by the interpreter. Expected values (frames, error codes,
//! descriptor bits) are worked out from the SDM, not from running the code under test.

// Guest images here are a few bytes: lengths and indices always fit in u32.
#![allow(clippy::cast_possible_truncation)]

use popek_cpu::Seg;
use popek_cpu::exception::Event;
use popek_cpu::state::flags::{CF, FIXED1, IF, RF, ZF};
use popek_cpu::state::gpr::*;
use popek_cpu::state::{SegmentCache, TableReg};
use popek_interp::testing::{CODE_BASE, TestBox};

const GDT: u32 = 0x20000;
const TSS: u32 = 0x21000;
const IDT: u32 = 0x22000;
const HANDLERS: u32 = 0x3000;
/// ESP0 in the TSS.
const ESP0: u32 = 0x8000;
/// Ring-3 stack top.
const ESP3: u32 = 0x6000;
/// Scratch memory.
const DATA: u32 = 0x10000;

// Selectors.
const CODE0: u16 = 0x08;
const DATA0: u16 = 0x10;
const CODE3: u16 = 0x1b;
const DATA3: u16 = 0x23;
const TSS_SEL: u16 = 0x28;
const NOT_PRESENT: u16 = 0x30;
const READ_ONLY: u16 = 0x38;
const UNACCESSED: u16 = 0x40;
const CONFORMING: u16 = 0x48;
const CODE_AT_1000: u16 = 0x50;
const GDT_LIMIT: u16 = 0x57;

/// A segment descriptor from its fields (SDM Figure 3-8): (low dword, high dword).
fn desc(base: u32, limit: u32, access: u8, flags: u8) -> (u32, u32) {
    let lo = (base & 0xffff) << 16 | (limit & 0xffff);
    let hi =
        (base >> 16) & 0xff | (access as u32) << 8 | (limit & 0xf_0000) | (flags as u32) << 20 | (base & 0xff00_0000);
    (lo, hi)
}

/// The GDT: index → descriptor.
fn gdt() -> Vec<(u32, u32)> {
    vec![
        (0, 0),
        desc(0, 0xfffff, 0x9b, 0xc),     // 0x08 ring-0 code
        desc(0, 0xfffff, 0x93, 0xc),     // 0x10 ring-0 data
        desc(0, 0xfffff, 0xfb, 0xc),     // 0x18 ring-3 code
        desc(0, 0xfffff, 0xf3, 0xc),     // 0x20 ring-3 data
        desc(TSS, 0x67, 0x89, 0x0),      // 0x28 32-bit TSS, available
        desc(0, 0xfffff, 0x13, 0xc),     // 0x30 writable data, not present
        desc(0, 0xfffff, 0x91, 0xc),     // 0x38 read-only data
        desc(0, 0xfffff, 0x92, 0xc),     // 0x40 writable data, Accessed clear
        desc(0, 0xfffff, 0x9f, 0xc),     // 0x48 ring-0 conforming code
        desc(0x1000, 0xffff, 0x9b, 0x4), // 0x50 ring-0 code at base 0x1000, byte limit 0xffff
    ]
}

fn gate(sel: u16, offset: u32, type_attr: u8) -> (u32, u32) {
    ((sel as u32) << 16 | (offset & 0xffff), (offset & 0xffff_0000) | (type_attr as u32) << 8)
}

/// Handler address of vector `v`: HLT, then (pop the error code), IRETD.
fn handler(v: u8) -> u32 {
    HANDLERS + v as u32 * 16
}

fn has_error_code(v: u8) -> bool {
    matches!(v, 8 | 10 | 11 | 12 | 13 | 14 | 17)
}

fn put(t: &mut TestBox, addr: u32, (lo, hi): (u32, u32)) {
    t.poke(addr, &lo.to_le_bytes());
    t.poke(addr + 4, &hi.to_le_bytes());
}

fn cache(sel: u16) -> SegmentCache {
    let (lo, hi) = gdt()[(sel >> 3) as usize];
    SegmentCache::from_descriptor(sel, lo, hi)
}

/// A machine at CPL 0 with the GDT, a full IDT of ring-0 interrupt gates (0x80 and 0x83 with
/// DPL 3, 0x82 not present, 0x83 a trap gate), TR loaded with ESP0:SS0 = 0x8000:0x10.
fn machine(code: &[u8]) -> TestBox {
    let mut t = TestBox::new(code);
    for (i, d) in gdt().into_iter().enumerate() {
        put(&mut t, GDT + i as u32 * 8, d);
    }
    t.cpu.state.gdtr = TableReg { base: GDT, limit: GDT_LIMIT };
    for v in 0..=255u8 {
        let type_attr = match v {
            0x80 => 0xee,
            0x82 => 0x0e,
            0x83 => 0xef,
            _ => 0x8e,
        };
        put(&mut t, IDT + v as u32 * 8, gate(CODE0, handler(v), type_attr));
        let body: &[u8] = if has_error_code(v) { &[0xf4, 0x83, 0xc4, 0x04, 0xcf] } else { &[0xf4, 0xcf] };
        t.poke(handler(v), body);
    }
    t.cpu.state.idtr = TableReg { base: IDT, limit: 0x7ff };
    t.poke(TSS + 4, &ESP0.to_le_bytes());
    t.poke(TSS + 8, &(DATA0 as u32).to_le_bytes());
    t.cpu.state.tr = cache(TSS_SEL);
    t.cpu.state.eflags = FIXED1;
    t
}

/// Puts the CPU at CPL 3 with ring-3 CS/SS (flat) and ESP = [`ESP3`].
fn enter_ring3(t: &mut TestBox) {
    t.cpu.state.seg[Seg::Cs as usize] = cache(CODE3);
    t.cpu.state.seg[Seg::Ss as usize] = cache(DATA3);
    t.cpu.state.cpl = 3;
    t.cpu.state.gpr[ESP] = ESP3;
}

/// `n` dwords at SS:ESP (flat SS).
fn stack(t: &TestBox, n: u32) -> Vec<u32> {
    let esp = t.cpu.state.gpr[ESP];
    (0..n).map(|i| t.peek32(esp + 4 * i)).collect()
}

/// Runs until the guest halts in the handler for `v` and returns its error code (if any).
#[track_caller]
fn expect_exception(t: &mut TestBox, v: u8) -> Option<u32> {
    t.run(20).expect("no host-side event");
    assert!(t.cpu.state.halted, "expected to halt in handler {v:#x}\n{}", t.cpu.state.dump());
    assert_eq!(t.cpu.state.eip, handler(v) + 1, "in the handler of vector {v:#x}\n{}", t.cpu.state.dump());
    has_error_code(v).then(|| stack(t, 1)[0])
}

/// Appends `jmp far sel:<end of code>` so a block ends before the HLT that follows the code
/// (at CPL 3 that HLT would fault); returns the end address.
fn jmp_far_to_end(code: &mut Vec<u8>, sel: u16) -> u32 {
    let end = CODE_BASE + code.len() as u32 + 7;
    code.push(0xea);
    code.extend_from_slice(&end.to_le_bytes());
    code.extend_from_slice(&sel.to_le_bytes());
    end
}

/// After straight-line code, the HLT that follows it may run in the same block.
#[track_caller]
fn assert_ran_to(t: &TestBox, end: u32) {
    let s = &t.cpu.state;
    assert!(s.eip == end || (s.halted && s.eip == end + 1), "ran to {end:#x}\n{}", s.dump());
}

/// Writes an IRETD/RETF frame of dwords at `esp` and points ESP there.
fn preload_stack(t: &mut TestBox, esp: u32, dwords: &[u32]) {
    for (i, d) in dwords.iter().enumerate() {
        t.poke(esp + 4 * i as u32, &d.to_le_bytes());
    }
    t.cpu.state.gpr[ESP] = esp;
}

#[test]
fn int_from_ring0_pushes_same_privilege_frame() {
    // int 0x80 ; (next) end
    let mut t = machine(&[0xcd, 0x80]);
    t.cpu.state.eflags = FIXED1 | IF | CF;
    assert_eq!(expect_exception(&mut t, 0x80), None);
    // EIP, CS, EFLAGS on the same stack (SDM Figure 6-4, no privilege change).
    assert_eq!(t.cpu.state.gpr[ESP], 0x9000 - 12);
    assert_eq!(stack(&t, 3), vec![CODE_BASE + 2, CODE0 as u32, FIXED1 | IF | CF]);
    assert_eq!(t.cpu.state.eflags & (IF | CF), CF, "interrupt gate clears IF");
    assert_eq!(t.cpu.state.cpl, 0);
    // IRETD returns to the instruction after INT and restores IF.
    t.cpu.state.halted = false;
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.eip, CODE_BASE + 2);
    assert_eq!(t.cpu.state.gpr[ESP], 0x9000);
    assert_eq!(t.cpu.state.eflags, FIXED1 | IF | CF);
}

#[test]
fn ring3_to_ring0_through_dpl3_gate_and_back() {
    // iretd (to ring 3 at 0x1001) ; int 0x80 ; add ebx, 1 ; jmp far 0x1b:end
    let mut code = vec![0xcf, 0xcd, 0x80, 0x83, 0xc3, 0x01];
    let end = jmp_far_to_end(&mut code, CODE3);
    let mut t = machine(&code);
    preload_stack(&mut t, 0x9000 - 20, &[CODE_BASE + 1, CODE3 as u32, FIXED1 | IF, ESP3, DATA3 as u32]);
    assert_eq!(expect_exception(&mut t, 0x80), None);
    // Now in ring 0 on the TSS stack: SS, ESP, EFLAGS, CS, EIP (SDM Figure 6-4).
    assert_eq!(t.cpu.state.cpl, 0);
    assert_eq!(t.cpu.state.seg(Seg::Cs).selector, CODE0);
    assert_eq!(t.cpu.state.seg(Seg::Ss).selector, DATA0);
    assert_eq!(t.cpu.state.gpr[ESP], ESP0 - 20);
    assert_eq!(stack(&t, 5), vec![CODE_BASE + 3, CODE3 as u32, FIXED1 | IF, ESP3, DATA3 as u32]);
    assert_eq!(t.cpu.state.eflags & IF, 0);
    // The IRETD to ring 3 nulled DS/ES/FS/GS (DPL 0 data is not usable at CPL 3).
    for s in [Seg::Ds, Seg::Es, Seg::Fs, Seg::Gs] {
        assert_eq!(t.cpu.state.seg(s).selector, 0, "{s:?}");
        assert!(!t.cpu.state.seg(s).usable(), "{s:?}");
    }
    // Back to ring 3.
    t.cpu.state.halted = false;
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.eip, end);
    assert_eq!(t.cpu.state.cpl, 3);
    assert_eq!(t.cpu.state.seg(Seg::Cs).selector, CODE3);
    assert_eq!(t.cpu.state.seg(Seg::Ss).selector, DATA3);
    assert_eq!(t.cpu.state.gpr[ESP], ESP3);
    assert_eq!(t.cpu.state.gpr[EBX], 1);
    assert_eq!(t.cpu.state.eflags & IF, IF);
}

#[test]
fn iret_from_ring3_cannot_change_if_or_iopl() {
    // At CPL 3 with IOPL 0: iretd to ring 3 with IF=0 and IOPL=3 in the image.
    let mut t = machine(&[0xcf]);
    enter_ring3(&mut t);
    t.cpu.state.eflags = FIXED1 | IF;
    preload_stack(&mut t, ESP3 - 12, &[CODE_BASE + 1, CODE3 as u32, FIXED1 | CF | 0x3000]);
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.eip, CODE_BASE + 1);
    assert_eq!(t.cpu.state.eflags, FIXED1 | IF | CF);
    assert_eq!(t.cpu.state.gpr[ESP], ESP3);
}

#[test]
fn trap_gate_keeps_if() {
    let mut t = machine(&[0xcd, 0x83]);
    t.cpu.state.eflags = FIXED1 | IF;
    expect_exception(&mut t, 0x83);
    assert_eq!(t.cpu.state.eflags & IF, IF);
}

#[test]
fn software_int_through_dpl0_gate_from_ring3_is_gp() {
    // int 0x81 at CPL 3: gate DPL 0 < CPL → #GP(0x81*8+2), delivered on the ring-0 stack.
    let mut t = machine(&[0xcd, 0x81]);
    enter_ring3(&mut t);
    t.cpu.state.eflags = FIXED1 | IF;
    assert_eq!(expect_exception(&mut t, 13), Some(0x81 * 8 + 2));
    // Error code, EIP of the INT (a fault), CS, EFLAGS (RF=1 for faults, SDM 17.3.1.1), ESP, SS.
    assert_eq!(t.cpu.state.gpr[ESP], ESP0 - 24);
    assert_eq!(stack(&t, 6), vec![0x40a, CODE_BASE, CODE3 as u32, FIXED1 | IF | RF, ESP3, DATA3 as u32]);
    assert_eq!(t.cpu.state.eflags & RF, 0);
}

#[test]
fn not_present_gate_is_np() {
    let mut t = machine(&[0xcd, 0x82]);
    assert_eq!(expect_exception(&mut t, 11), Some(0x82 * 8 + 2));
    assert_eq!(stack(&t, 3)[1..], [CODE_BASE, CODE0 as u32]);
}

#[test]
fn int3_and_into_are_traps() {
    // int3 ; into (OF=0: nothing) — the #BP frame points after INT3.
    let mut t = machine(&[0xcc]);
    expect_exception(&mut t, 3);
    assert_eq!(stack(&t, 1), vec![CODE_BASE + 1]);
    // into with OF=1 → vector 4, EIP after INTO.
    let mut t = machine(&[0xce]);
    t.cpu.state.eflags = FIXED1 | 1 << 11;
    expect_exception(&mut t, 4);
    assert_eq!(stack(&t, 1), vec![CODE_BASE + 1]);
    let mut t = machine(&[0xce]);
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.eip, CODE_BASE + 1, "INTO with OF=0 does nothing");
}

#[test]
fn icebp_is_a_debug_trap_without_the_gate_dpl_check() {
    // ICEBP (F1) at CPL 3: vector 1's gate has DPL 0, yet #DB is delivered (INT n would
    // be #GP), on the ring-0 stack, EIP after F1, RF clear, DR6 untouched.
    let mut t = machine(&[0xf1]);
    enter_ring3(&mut t);
    t.cpu.state.eflags = FIXED1 | IF;
    t.cpu.state.dr[6] = 0xffff_0ff1; // B0, as if left by an earlier breakpoint
    assert_eq!(expect_exception(&mut t, 1), None);
    assert_eq!(t.cpu.state.cpl, 0);
    assert_eq!(t.cpu.state.gpr[ESP], ESP0 - 20);
    assert_eq!(stack(&t, 5), vec![CODE_BASE + 1, CODE3 as u32, FIXED1 | IF, ESP3, DATA3 as u32]);
    assert_eq!(t.cpu.state.dr[6], 0xffff_0ff1, "INT1 sets no DR6 bit and clears none");
    // `int 1` (CD 01) from ring 3 through the same gate is a #GP(vector 1, IDT).
    let mut t = machine(&[0xcd, 0x01]);
    enter_ring3(&mut t);
    assert_eq!(expect_exception(&mut t, 13), Some(8 + 2));
    // At CPL 0: a same-privilege frame, and the handler's IRETD returns after F1.
    let mut t = machine(&[0xf1]);
    t.cpu.state.eflags = FIXED1 | CF;
    assert_eq!(expect_exception(&mut t, 1), None);
    assert_eq!(stack(&t, 3), vec![CODE_BASE + 1, CODE0 as u32, FIXED1 | CF]);
    t.cpu.state.halted = false;
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.eip, CODE_BASE + 1);
}

/// Segment loads: `mov <sreg>, ax` with AX = selector → the exception and error code, or `None`.
struct LoadCase {
    what: &'static str,
    bytes: &'static [u8],
    selector: u16,
    expect: Option<(u8, Option<u32>)>,
}

#[test]
fn segment_load_checks() {
    const MOV_DS: &[u8] = &[0x8e, 0xd8];
    const MOV_SS: &[u8] = &[0x8e, 0xd0];
    const MOV_CS: &[u8] = &[0x8e, 0xc8];
    let cases = [
        LoadCase { what: "beyond GDT limit", bytes: MOV_DS, selector: 0x0103, expect: Some((13, Some(0x100))) },
        LoadCase { what: "LDT without LDTR", bytes: MOV_DS, selector: 0x000c, expect: Some((13, Some(0x0c))) },
        LoadCase { what: "not-present data", bytes: MOV_DS, selector: NOT_PRESENT, expect: Some((11, Some(0x30))) },
        LoadCase { what: "system segment", bytes: MOV_DS, selector: TSS_SEL, expect: Some((13, Some(0x28))) },
        LoadCase { what: "null DS is fine", bytes: MOV_DS, selector: 0, expect: None },
        LoadCase { what: "readable code in DS", bytes: MOV_DS, selector: CODE3, expect: None },
        LoadCase { what: "null SS", bytes: MOV_SS, selector: 0, expect: Some((13, Some(0))) },
        LoadCase { what: "read-only SS", bytes: MOV_SS, selector: READ_ONLY, expect: Some((13, Some(0x38))) },
        LoadCase { what: "ring-3 SS at CPL 0", bytes: MOV_SS, selector: DATA3, expect: Some((13, Some(0x20))) },
        LoadCase { what: "RPL != CPL for SS", bytes: MOV_SS, selector: DATA0 | 3, expect: Some((13, Some(0x10))) },
        LoadCase { what: "not-present SS", bytes: MOV_SS, selector: NOT_PRESENT, expect: Some((12, Some(0x30))) },
        LoadCase { what: "MOV CS", bytes: MOV_CS, selector: CODE0, expect: Some((6, None)) },
    ];
    for c in cases {
        let mut t = machine(c.bytes);
        t.cpu.state.gpr[EAX] = c.selector as u32;
        match c.expect {
            Some((v, code)) => {
                assert_eq!(expect_exception(&mut t, v), code, "{}", c.what);
                let frame = stack(&t, 2 + code.is_some() as u32);
                assert_eq!(frame[code.is_some() as usize], CODE_BASE, "{}: fault EIP", c.what);
            }
            None => {
                t.run(10).unwrap();
                assert_eq!(t.cpu.state.eip, CODE_BASE + 2, "{}", c.what);
                assert_eq!(t.cpu.state.seg(Seg::Ds).selector, c.selector, "{}", c.what);
            }
        }
    }
}

#[test]
fn data_segment_privilege_at_cpl3() {
    // mov ds, ax at CPL 3: DPL 0 data → #GP(0x10); ring-3 data is fine.
    let mut t = machine(&[0x8e, 0xd8]);
    enter_ring3(&mut t);
    t.cpu.state.gpr[EAX] = DATA0 as u32;
    assert_eq!(expect_exception(&mut t, 13), Some(0x10));
    let mut t = machine(&[0x8e, 0xd8]);
    enter_ring3(&mut t);
    t.cpu.state.gpr[EAX] = DATA3 as u32;
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.seg(Seg::Ds).selector, DATA3);
    assert_eq!(t.cpu.state.seg(Seg::Ds).dpl(), 3);
}

#[test]
fn segment_load_sets_accessed_bit() {
    // mov es, ax (AX = 0x40, a descriptor with A clear)
    let mut t = machine(&[0x8e, 0xc0]);
    t.cpu.state.gpr[EAX] = UNACCESSED as u32;
    t.run(10).unwrap();
    assert_eq!(t.peek32(GDT + 0x40 + 4) >> 8 & 0xff, 0x93, "descriptor in memory now accessed");
    assert_eq!(t.cpu.state.seg(Seg::Es).selector, UNACCESSED);
    assert_eq!(t.cpu.state.seg(Seg::Es).limit, 0xffff_ffff);
}

#[test]
fn mov_ss_sets_the_interrupt_shadow() {
    let mut t = machine(&[0x8e, 0xd0]); // mov ss, ax
    t.cpu.state.gpr[EAX] = DATA0 as u32;
    t.run(1).unwrap();
    assert!(t.cpu.state.interrupt_shadow);
    assert!(!t.cpu.interrupts_enabled());
    let mut t = machine(&[0x8e, 0xd8]); // mov ds, ax
    t.cpu.state.gpr[EAX] = DATA0 as u32;
    t.run(1).unwrap();
    assert!(!t.cpu.state.interrupt_shadow);
    let mut t = machine(&[0x1e, 0x17]); // push ds ; pop ss
    t.run(2).unwrap();
    assert!(t.cpu.state.interrupt_shadow);
    assert_eq!(t.cpu.state.gpr[ESP], 0x9000);
}

#[test]
fn push_pop_sreg_and_mov_from_sreg() {
    // push cs ; pop es? (not allowed: code not writable... ES accepts readable code) ;
    // mov ecx, ss ; push ds ; pop fs
    let mut t = machine(&[0x0e, 0x07, 0x8c, 0xd1, 0x1e, 0x0f, 0xa1]);
    t.cpu.state.gpr[ECX] = 0xffff_ffff;
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.seg(Seg::Es).selector, CODE0);
    assert_eq!(t.cpu.state.gpr[ECX], DATA0 as u32, "32-bit register destination is zero-extended");
    assert_eq!(t.cpu.state.seg(Seg::Fs).selector, DATA0);
    assert_eq!(t.cpu.state.gpr[ESP], 0x9000);
}

#[test]
fn lss_and_lds() {
    // lss esp, [DATA] ; lds ebx, [DATA+8]
    let mut code = vec![0x0f, 0xb2, 0x25];
    code.extend_from_slice(&DATA.to_le_bytes());
    code.extend_from_slice(&[0xc5, 0x1d]);
    code.extend_from_slice(&(DATA + 8).to_le_bytes());
    let mut t = machine(&code);
    t.poke(DATA, &[0x00, 0x70, 0, 0, 0x10, 0x00]);
    t.poke(DATA + 8, &[0x78, 0x56, 0x34, 0x12, 0x40, 0x00]);
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.gpr[ESP], 0x7000);
    assert_eq!(t.cpu.state.seg(Seg::Ss).selector, DATA0);
    assert_eq!(t.cpu.state.gpr[EBX], 0x1234_5678);
    assert_eq!(t.cpu.state.seg(Seg::Ds).selector, UNACCESSED);
    // A faulting LDS changes neither the register nor DS.
    let mut t = machine(&[0xc5, 0x1d, 0x00, 0x00, 0x01, 0x00]);
    t.poke(DATA, &[0x78, 0x56, 0x34, 0x12, 0x30, 0x00]);
    assert_eq!(expect_exception(&mut t, 11), Some(0x30));
    assert_eq!(t.cpu.state.gpr[EBX], 0);
    assert_eq!(t.cpu.state.seg(Seg::Ds).selector, DATA0);
}

#[test]
fn tss_with_bad_ss0_is_ts() {
    // ss0 = 0x18 (a code segment): INT 0x80 from ring 3 → #TS(0x18) (EXT=0, software).
    // Vector 10 goes to a conforming ring-0 segment, so it runs at CPL 3 on the ring-3 stack.
    let mut t = machine(&[0xcd, 0x80]);
    t.poke(TSS + 8, &0x18u32.to_le_bytes());
    put(&mut t, IDT + 10 * 8, gate(CONFORMING, handler(10), 0x8e));
    enter_ring3(&mut t);
    t.run(1).unwrap();
    assert_eq!(t.cpu.state.eip, handler(10));
    assert_eq!(t.cpu.state.cpl, 3);
    assert_eq!(t.cpu.state.seg(Seg::Cs).selector, CONFORMING | 3);
    assert_eq!(t.cpu.state.gpr[ESP], ESP3 - 16);
    assert_eq!(stack(&t, 4), vec![0x18, CODE_BASE, CODE3 as u32, FIXED1 | RF]);
}

#[test]
fn external_interrupt_sets_ext_in_error_codes() {
    // An external interrupt through vector 0x80 with a bad ss0: #TS(0x18 | EXT).
    let mut t = machine(&[]);
    t.poke(TSS + 8, &0x18u32.to_le_bytes());
    put(&mut t, IDT + 10 * 8, gate(CONFORMING, handler(10), 0x8e));
    enter_ring3(&mut t);
    t.cpu.deliver_external(&mut t.bus, 0x80).unwrap();
    assert_eq!(t.cpu.state.eip, handler(10));
    assert_eq!(stack(&t, 1), vec![0x19]);
    // External interrupt through a not-present gate: #NP(vector*8 + 2 + EXT).
    let mut t = machine(&[]);
    t.cpu.state.halted = true;
    t.cpu.deliver_external(&mut t.bus, 0x82).unwrap();
    assert_eq!(t.cpu.state.eip, handler(11));
    assert_eq!(stack(&t, 1), vec![0x82 * 8 + 3]);
    assert!(!t.cpu.state.halted);
}

#[test]
fn tss_limit_too_small_is_ts_with_tr_selector() {
    let mut t = machine(&[0xcd, 0x80]);
    t.cpu.state.tr.limit = 0x07; // ESP0/SS0 at 4..10 do not fit
    put(&mut t, IDT + 10 * 8, gate(CONFORMING, handler(10), 0x8e));
    enter_ring3(&mut t);
    t.run(1).unwrap();
    assert_eq!(t.cpu.state.eip, handler(10));
    assert_eq!(stack(&t, 1), vec![TSS_SEL as u32]);
}

#[test]
fn gp_with_not_present_gp_gate_is_double_fault() {
    // mov ds, ax (0x103: beyond the GDT) → #GP(0x100); the #GP gate is not present →
    // #NP(13*8+2+EXT) while delivering a contributory fault → #DF(0).
    let mut t = machine(&[0x8e, 0xd8]);
    t.cpu.state.gpr[EAX] = 0x103;
    put(&mut t, IDT + 13 * 8, gate(CODE0, handler(13), 0x0e));
    assert_eq!(expect_exception(&mut t, 8), Some(0));
    assert_eq!(stack(&t, 3)[1..], [CODE_BASE, CODE0 as u32]);
    assert_eq!(t.cpu.state.seg(Seg::Ds).selector, DATA0, "nothing committed by the failed load");
}

#[test]
fn benign_then_contributory_is_serial() {
    // #UD through a not-present gate: #NP(6*8+2+EXT) is delivered normally (benign, then
    // contributory: serial, SDM Table 6-5).
    let mut t = machine(&[]);
    put(&mut t, IDT + 6 * 8, gate(CODE0, handler(6), 0x0e));
    t.cpu.deliver_exception(&mut t.bus, popek_cpu::Exception::InvalidOpcode).unwrap();
    assert_eq!(t.cpu.state.eip, handler(11));
    assert_eq!(stack(&t, 1), vec![6 * 8 + 3]);
}

#[test]
fn no_idt_is_triple_fault() {
    let mut t = machine(&[0xcd, 0x80]);
    t.cpu.state.idtr = TableReg { base: IDT, limit: 0 };
    assert_eq!(t.run(10), Ok(0), "the INT retires nothing");
    assert!(t.cpu.state.shutdown, "the CPU shut down");
}

#[test]
fn page_fault_sets_cr2_and_contributory_after_pf_is_double_fault() {
    // Deliver #PF directly; the #PF gate points at a not-present code segment... use a
    // not-present gate instead: #PF then #NP → #DF, CR2 holds the address.
    let mut t = machine(&[]);
    put(&mut t, IDT + 14 * 8, gate(CODE0, handler(14), 0x0e));
    t.cpu.deliver_exception(&mut t.bus, popek_cpu::Exception::PageFault { addr: 0xdead_b000, code: 2 }).unwrap();
    assert_eq!(t.cpu.state.cr2, 0xdead_b000);
    assert_eq!(t.cpu.state.eip, handler(8));
    // And a normal #PF pushes its error code.
    let mut t = machine(&[]);
    t.cpu.deliver_exception(&mut t.bus, popek_cpu::Exception::PageFault { addr: 0x1234, code: 6 }).unwrap();
    assert_eq!(t.cpu.state.eip, handler(14));
    assert_eq!(stack(&t, 1), vec![6]);
    assert_eq!(t.cpu.state.cr2, 0x1234);
}

#[test]
fn far_jmp_call_ret_round_trip() {
    // 0x1000: call far 0x50:0x100   (linear 0x1100)
    // 0x1007: jmp far 0x50:0x200    (linear 0x1200)
    // 0x1100: mov ecx, cs ; retf
    // 0x1200: mov edx, cs ; jmp far 0x08:0x100e (end of code)
    let code = [0x9a, 0x00, 0x01, 0x00, 0x00, 0x50, 0x00, 0xea, 0x00, 0x02, 0x00, 0x00, 0x50, 0x00];
    let end = CODE_BASE + code.len() as u32;
    let mut far = vec![0x8c, 0xca, 0xea];
    far.extend_from_slice(&end.to_le_bytes());
    far.extend_from_slice(&[0x08, 0x00]);
    let mut t = machine(&code);
    t.poke(0x1100, &[0x8c, 0xc9, 0xcb]);
    t.poke(0x1200, &far);
    t.run(20).unwrap();
    assert_eq!(t.cpu.state.eip, end);
    assert_eq!(t.cpu.state.seg(Seg::Cs).selector, CODE0);
    assert_eq!(t.cpu.state.gpr[ECX], CODE_AT_1000 as u32);
    assert_eq!(t.cpu.state.gpr[EDX], CODE_AT_1000 as u32);
    assert_eq!(t.cpu.state.gpr[ESP], 0x9000);
    // The CALL pushed CS then EIP.
    assert_eq!(t.peek32(0x9000 - 4), CODE0 as u32);
    assert_eq!(t.peek32(0x9000 - 8), CODE_BASE + 7);
}

#[test]
fn far_jmp_checks() {
    // jmp far sel:0 for each selector.
    let cases: [(u16, u8, Option<u32>); 5] = [
        (CODE3, 13, Some(0x18)),     // non-conforming DPL 3 from CPL 0
        (DATA0, 13, Some(0x10)),     // not code
        (0, 13, Some(0)),            // null
        (0x0203, 13, Some(0x200)),   // beyond the GDT
        (CODE_AT_1000, 13, Some(0)), // offset beyond the limit (0x10000 > 0xffff)
    ];
    for (sel, v, code) in cases {
        let off: u32 = if sel == CODE_AT_1000 { 0x10000 } else { 0 };
        let mut bytes = vec![0xea];
        bytes.extend_from_slice(&off.to_le_bytes());
        bytes.extend_from_slice(&sel.to_le_bytes());
        let mut t = machine(&bytes);
        assert_eq!(expect_exception(&mut t, v), code, "selector {sel:#x}");
    }
    // A call gate is not implemented: a host-side event, not a guest fault.
    let mut t = machine(&[0xea, 0, 0, 0, 0, 0x58, 0]);
    t.cpu.state.gdtr.limit = 0x5f;
    put(&mut t, GDT + 0x58, gate(CODE0, 0x1000, 0xec));
    let Err(Event::Unsupported(u)) = t.run(10) else { panic!("call gate must be unsupported") };
    assert!(u.what.contains("call gate"), "{u}");
    // A conforming segment keeps CPL: jmp far 0x48:0x1007 from CPL 3.
    let mut t = machine(&[0xea, 0x07, 0x10, 0, 0, 0x48, 0x00]);
    enter_ring3(&mut t);
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.cpl, 3);
    assert_eq!(t.cpu.state.seg(Seg::Cs).selector, CONFORMING | 3);
}

#[test]
fn retf_imm_to_outer_level() {
    // retf 8 from ring 0 to ring 3: pops EIP, CS, skips 8 bytes, pops ESP, SS; ESP += 8.
    let mut t = machine(&[0xca, 0x08, 0x00]);
    t.cpu.state.gpr[EBX] = 0;
    preload_stack(&mut t, 0x8f00, &[CODE_BASE + 3, CODE3 as u32, 0xaaaa, 0xbbbb, ESP3, DATA3 as u32]);
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.eip, CODE_BASE + 3);
    assert_eq!(t.cpu.state.cpl, 3);
    assert_eq!(t.cpu.state.gpr[ESP], ESP3 + 8);
    assert_eq!(t.cpu.state.seg(Seg::Ss).selector, DATA3);
    assert_eq!(t.cpu.state.seg(Seg::Ds).selector, 0, "DPL-0 DS nulled");
    // Returning to a more privileged level is #GP(selector).
    let mut t = machine(&[0xcb]);
    enter_ring3(&mut t);
    preload_stack(&mut t, ESP3 - 8, &[CODE_BASE + 1, CODE0 as u32]);
    assert_eq!(expect_exception(&mut t, 13), Some(CODE0 as u32));
}

/// LAR/LSL/VERR/VERW with the selector in BX at CPL 0 (or 3).
struct VerifyCase {
    what: &'static str,
    bytes: &'static [u8],
    selector: u16,
    cpl3: bool,
    zf: bool,
    /// Destination register and its expected value (0x5555_5555 = untouched).
    dest: Option<(usize, u32)>,
}

#[test]
fn lar_lsl_verr_verw() {
    const LAR: &[u8] = &[0x0f, 0x02, 0xc3]; // lar eax, ebx
    const LSL: &[u8] = &[0x0f, 0x03, 0xcb]; // lsl ecx, ebx
    const LSL16: &[u8] = &[0x66, 0x0f, 0x03, 0xcb]; // lsl cx, bx
    const VERR: &[u8] = &[0x0f, 0x00, 0xe3]; // verr bx
    const VERW: &[u8] = &[0x0f, 0x00, 0xeb]; // verw bx
    const KEEP: u32 = 0x5555_5555;
    let c = |what, bytes, selector, cpl3, zf, dest| VerifyCase { what, bytes, selector, cpl3, zf, dest };
    let cases = [
        c("lar code", LAR, CODE0, false, true, Some((EAX, 0x00c0_9b00))),
        c("lar tss", LAR, TSS_SEL, false, true, Some((EAX, 0x0000_8900))),
        c("lar beyond limit", LAR, 0x0103, false, false, Some((EAX, KEEP))),
        c("lar null", LAR, 0, false, false, Some((EAX, KEEP))),
        c("lar rpl 3 vs dpl 0", LAR, CODE0 | 3, false, false, Some((EAX, KEEP))),
        c("lar conforming ignores rpl", LAR, CONFORMING | 3, false, true, Some((EAX, 0x00c0_9f00))),
        c("lar dpl 0 at cpl 3", LAR, DATA0, true, false, Some((EAX, KEEP))),
        c("lsl flat", LSL, CODE0, false, true, Some((ECX, 0xffff_ffff))),
        c("lsl tss", LSL, TSS_SEL, false, true, Some((ECX, 0x67))),
        c("lsl byte-granular", LSL, CODE_AT_1000, false, true, Some((ECX, 0xffff))),
        c("lsl 16-bit", LSL16, CODE0, false, true, Some((ECX, 0x5555_ffff))),
        c("lsl beyond limit", LSL, 0x0203, false, false, Some((ECX, KEEP))),
        c("verr code", VERR, CODE0, false, true, None),
        c("verr tss", VERR, TSS_SEL, false, false, None),
        c("verr not present still ok", VERR, NOT_PRESENT, false, true, None),
        c("verw data", VERW, DATA0, false, true, None),
        c("verw code", VERW, CODE0, false, false, None),
        c("verw read-only", VERW, READ_ONLY, false, false, None),
        c("verw null", VERW, 0, false, false, None),
        c("verw beyond limit", VERW, 0x0203, false, false, None),
        c("verw dpl 0 at cpl 3", VERW, DATA0, true, false, None),
        c("verw ring-3 data at cpl 3", VERW, DATA3, true, true, None),
    ];
    for k in cases {
        let mut code = k.bytes.to_vec();
        let end = jmp_far_to_end(&mut code, if k.cpl3 { CODE3 } else { CODE0 });
        let mut t = machine(&code);
        if k.cpl3 {
            enter_ring3(&mut t);
        }
        t.cpu.state.gpr[EAX] = KEEP;
        t.cpu.state.gpr[ECX] = KEEP;
        t.cpu.state.gpr[EBX] = k.selector as u32;
        t.cpu.state.eflags = FIXED1 | if k.zf { 0 } else { ZF };
        t.run(10).unwrap();
        assert_eq!(t.cpu.state.eip, end, "{}: no fault", k.what);
        assert_eq!(t.cpu.state.eflags & ZF != 0, k.zf, "{}: ZF", k.what);
        if let Some((reg, v)) = k.dest {
            assert_eq!(t.cpu.state.gpr[reg], v, "{}: destination", k.what);
        }
    }
}

#[test]
fn descriptor_table_registers() {
    // lgdt [DATA] ; lidt [DATA+8] ; sgdt [DATA+16] ; sidt [DATA+24] ; ltr ax ; str ecx ; sldt edx
    let mut code = vec![];
    for (op, at) in [(0x15u8, DATA), (0x1d, DATA + 8), (0x05, DATA + 16), (0x0d, DATA + 24)] {
        code.extend_from_slice(&[0x0f, 0x01, op]);
        code.extend_from_slice(&at.to_le_bytes());
    }
    code.extend_from_slice(&[0x0f, 0x00, 0xd8, 0x0f, 0x00, 0xc9, 0x0f, 0x00, 0xc2]);
    let mut t = machine(&code);
    t.cpu.state.gdtr = TableReg::default();
    t.cpu.state.idtr = TableReg::default();
    t.cpu.state.tr = SegmentCache::default();
    t.poke(DATA, &[0x57, 0x00, 0x00, 0x00, 0x02, 0x00]);
    t.poke(DATA + 8, &[0xff, 0x07, 0x00, 0x20, 0x02, 0x00]);
    t.cpu.state.gpr[EAX] = TSS_SEL as u32;
    t.cpu.state.gpr[ECX] = 0xffff_ffff;
    t.cpu.state.gpr[EDX] = 0xffff_ffff;
    t.run(20).unwrap();
    assert_ran_to(&t, CODE_BASE + code.len() as u32);
    assert_eq!(t.cpu.state.gdtr, TableReg { base: GDT, limit: GDT_LIMIT });
    assert_eq!(t.cpu.state.idtr, TableReg { base: IDT, limit: 0x7ff });
    let mut stored = [0u8; 6];
    stored.copy_from_slice(&t.cpu.mem.as_slice()[(DATA + 16) as usize..(DATA + 22) as usize]);
    assert_eq!(stored, [0x57, 0x00, 0x00, 0x00, 0x02, 0x00]);
    stored.copy_from_slice(&t.cpu.mem.as_slice()[(DATA + 24) as usize..(DATA + 30) as usize]);
    assert_eq!(stored, [0xff, 0x07, 0x00, 0x20, 0x02, 0x00]);
    // LTR marked the TSS busy (type 9 → 0xb) in the GDT and in TR.
    assert_eq!(t.peek32(GDT + 0x28 + 4) >> 8 & 0xff, 0x8b);
    assert_eq!(t.cpu.state.tr.base, TSS);
    assert_eq!(t.cpu.state.tr.limit, 0x67);
    assert_eq!(t.cpu.state.gpr[ECX], TSS_SEL as u32);
    assert_eq!(t.cpu.state.gpr[EDX], 0);
    // LTR of a busy TSS is #GP(selector).
    let mut t = machine(&[0x0f, 0x00, 0xd8]);
    t.cpu.state.gpr[EAX] = TSS_SEL as u32;
    t.poke(GDT + 0x28 + 5, &[0x8b]);
    assert_eq!(expect_exception(&mut t, 13), Some(0x28));
}

#[test]
fn lgdt_16bit_operand_loads_24_bit_base() {
    // o16 lgdt [DATA]
    let mut code = vec![0x66, 0x0f, 0x01, 0x15];
    code.extend_from_slice(&DATA.to_le_bytes());
    let mut t = machine(&code);
    t.poke(DATA, &[0x57, 0x00, 0x00, 0x00, 0x02, 0xff]);
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.gdtr, TableReg { base: 0x0002_0000, limit: 0x57 });
}

#[test]
fn privileged_at_cpl3_sensitive_not() {
    // lgdt [DATA] at CPL 3 → #GP(0); sgdt [DATA] at CPL 3 works.
    let mut code = vec![0x0f, 0x01, 0x15];
    code.extend_from_slice(&DATA.to_le_bytes());
    let mut t = machine(&code);
    enter_ring3(&mut t);
    assert_eq!(expect_exception(&mut t, 13), Some(0));
    let mut code = vec![0x0f, 0x01, 0x05];
    code.extend_from_slice(&DATA.to_le_bytes());
    let end = jmp_far_to_end(&mut code, CODE3);
    let mut t = machine(&code);
    enter_ring3(&mut t);
    t.cpu.state.seg[Seg::Ds as usize] = cache(DATA3);
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.eip, end);
    assert_eq!(t.peek32(DATA), (GDT & 0xffff) << 16 | GDT_LIMIT as u32);
    // ltr ax at CPL 3 → #GP(0).
    let mut t = machine(&[0x0f, 0x00, 0xd8]);
    enter_ring3(&mut t);
    assert_eq!(expect_exception(&mut t, 13), Some(0));
}

#[test]
fn arpl_raises_rpl() {
    // arpl ax, bx
    let cases = [(0x10u32, 3u32, 0x13u32, true), (0x13, 1, 0x13, false), (0xabcd_0010, 2, 0xabcd_0012, true)];
    for (ax, bx, want, zf) in cases {
        let mut t = machine(&[0x66, 0x63, 0xd8]);
        t.cpu.state.gpr[EAX] = ax;
        t.cpu.state.gpr[EBX] = bx;
        t.run(10).unwrap();
        assert_eq!(t.cpu.state.gpr[EAX], want, "arpl {ax:#x}, {bx:#x}");
        assert_eq!(t.cpu.state.eflags & ZF != 0, zf);
    }
}

#[test]
fn lldt_and_ldt_selectors() {
    // An LDT (GDT slot 0x58) with one ring-0 data descriptor; lldt ax ; mov ds, cx (0x04).
    let mut t = machine(&[0x0f, 0x00, 0xd0, 0x8e, 0xd9]);
    t.cpu.state.gdtr.limit = 0x5f;
    put(&mut t, GDT + 0x58, desc(0x24000, 0x0f, 0x82, 0));
    put(&mut t, 0x24000, desc(0x5000, 0xfff, 0x93, 0x4));
    t.cpu.state.gpr[EAX] = 0x58;
    t.cpu.state.gpr[ECX] = 0x04;
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.ldtr.base, 0x24000);
    assert_eq!(t.cpu.state.seg(Seg::Ds).base, 0x5000);
    assert_eq!(t.cpu.state.seg(Seg::Ds).limit, 0xfff);
    // LLDT with a non-LDT descriptor → #GP(selector).
    let mut t = machine(&[0x0f, 0x00, 0xd0]);
    t.cpu.state.gpr[EAX] = DATA0 as u32;
    assert_eq!(expect_exception(&mut t, 13), Some(0x10));
}

fn peek16(t: &TestBox, addr: u32) -> u32 {
    u16::from_le_bytes(t.cpu.mem.read_ram::<2>(addr as usize).expect("in RAM")) as u32
}

#[test]
fn sixteen_bit_gate_and_iretw() {
    // int 0x84 through a 16-bit interrupt gate (type 6): FLAGS, CS, IP pushed as words.
    // Handler: hlt ; iretw.
    let mut t = machine(&[0xcd, 0x84]);
    put(&mut t, IDT + 0x84 * 8, gate(CODE0, handler(0x84), 0x86));
    t.poke(handler(0x84), &[0xf4, 0x66, 0xcf]);
    t.cpu.state.eflags = FIXED1 | CF | IF;
    expect_exception(&mut t, 0x84);
    let esp = t.cpu.state.gpr[ESP];
    assert_eq!(esp, 0x9000 - 6);
    assert_eq!(
        [peek16(&t, esp), peek16(&t, esp + 2), peek16(&t, esp + 4)],
        [CODE_BASE + 2, CODE0 as u32, FIXED1 | CF | IF]
    );
    assert_eq!(t.cpu.state.eflags & IF, 0);
    t.cpu.state.halted = false;
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.eip, CODE_BASE + 2);
    assert_eq!(t.cpu.state.gpr[ESP], 0x9000);
    assert_eq!(t.cpu.state.eflags, FIXED1 | CF | IF);
}

#[test]
fn sixteen_bit_far_call_and_retf() {
    // o16 call far 0x50:0x0100 (linear 0x1100: o16 retf) ; end
    let mut t = machine(&[0x66, 0x9a, 0x00, 0x01, 0x50, 0x00]);
    t.poke(0x1100, &[0x66, 0xcb]);
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.eip, CODE_BASE + 6);
    assert_eq!(t.cpu.state.seg(Seg::Cs).selector, CODE0);
    assert_eq!(t.cpu.state.gpr[ESP], 0x9000);
    assert_eq!(peek16(&t, 0x9000 - 2), CODE0 as u32);
    assert_eq!(peek16(&t, 0x9000 - 4), CODE_BASE + 6);
}

#[test]
fn far_call_with_faulting_push_changes_nothing() {
    // SS limit 0xfff (byte granular, expand-up), ESP = 0x1002: pushing CS at 0xffe..0x1001
    // exceeds the limit → #SS(0). Its delivery on the same stack faults again (#SS, then #DF,
    // then a triple fault), and through all of it CS, EIP and ESP stay as they were.
    let mut t = machine(&[0x9a, 0x00, 0x01, 0x00, 0x00, 0x50, 0x00]);
    put(&mut t, GDT + UNACCESSED as u32, desc(0, 0xfff, 0x93, 0x4));
    t.cpu.state.seg[Seg::Ss as usize] = SegmentCache::from_descriptor(UNACCESSED, 0x0000_0fff, 0x0040_9300);
    t.cpu.state.gpr[ESP] = 0x1002;
    // #SS handler runs on the same (faulting) stack → #SS again → #DF → and again → triple fault.
    assert_eq!(t.run(10), Ok(0), "the far call retires nothing");
    assert!(t.cpu.state.shutdown, "the CPU shut down");
    assert_eq!(t.cpu.state.gpr[ESP], 0x1002);
    assert_eq!(t.cpu.state.seg(Seg::Cs).selector, CODE0);
    assert_eq!(t.cpu.state.eip, CODE_BASE);
}

#[test]
fn iret_to_outer_level_checks_the_new_ss() {
    // SS selector 0x20 has RPL 0 but the return CS has RPL 3 → #GP(0x20); nothing changes.
    let mut t = machine(&[0xcf]);
    preload_stack(&mut t, 0x9000 - 20, &[CODE_BASE + 1, CODE3 as u32, FIXED1, ESP3, 0x20]);
    assert_eq!(expect_exception(&mut t, 13), Some(0x20));
    assert_eq!(stack(&t, 2)[1], CODE_BASE);
    assert_eq!(t.cpu.state.cpl, 0);
    assert_eq!(t.cpu.state.seg(Seg::Ds).selector, DATA0);
    // A not-present return CS is #NP(selector).
    let mut t = machine(&[0xcf]);
    put(&mut t, GDT + 0x18, desc(0, 0xfffff, 0x7b, 0xc));
    preload_stack(&mut t, 0x9000 - 20, &[CODE_BASE + 1, CODE3 as u32, FIXED1, ESP3, DATA3 as u32]);
    assert_eq!(expect_exception(&mut t, 11), Some(0x18));
}

#[test]
fn real_mode_interrupt_uses_the_ivt() {
    // CR0.PE = 0, 16-bit CS at 0: int 0x80 → IVT[0x80] = 0000:3800, FLAGS/CS/IP pushed as words.
    let mut t = machine(&[0xcd, 0x80]);
    t.cpu.state.cr0 &= !1;
    t.cpu.state.seg[Seg::Cs as usize] = SegmentCache { selector: 0, access: 0x9b, base: 0, limit: 0xffff };
    t.cpu.state.idtr = TableReg { base: 0, limit: 0x3ff };
    t.poke(0x80 * 4, &[0x00, 0x38, 0x00, 0x00]);
    t.cpu.state.eflags = FIXED1 | IF | CF;
    expect_exception(&mut t, 0x80);
    let esp = t.cpu.state.gpr[ESP];
    assert_eq!(esp, 0x9000 - 6);
    assert_eq!([peek16(&t, esp), peek16(&t, esp + 2), peek16(&t, esp + 4)], [CODE_BASE + 2, 0, FIXED1 | IF | CF]);
    assert_eq!(t.cpu.state.eflags & IF, 0);
}
