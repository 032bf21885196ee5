//! x87 instruction tests: bytes in, FPU state and memory out. (The host-differential
//! tests are in `tests/x87_differential.rs`.)

use crate::testing::{CODE_BASE, DATA_BASE, TestBox};
use popek_cpu::state::flags::{CF, PF, ZF};
use popek_cpu::state::{F80, cr0, fsw};

const D: u32 = DATA_BASE;

/// `[D]` as a 32-bit displacement ModR/M operand: mod 00, r/m 101.
fn m(reg: u8) -> [u8; 5] {
    let d = D.to_le_bytes();
    [reg << 3 | 5, d[0], d[1], d[2], d[3]]
}

/// Runs `code` (then HLT) on a fresh box and returns it.
fn run(code: &[u8]) -> TestBox {
    let mut t = TestBox::new(code);
    t.install_exception_handlers();
    t.run(100).expect("runs");
    assert!(t.cpu.state.halted);
    t
}

/// Concatenates byte pieces.
fn cat(pieces: &[&[u8]]) -> Vec<u8> {
    pieces.concat()
}

#[test]
fn linux_fpu_probe_sees_an_fpu() {
    // fninit ; fnstsw [D] ; fnstcw [D+2]  (Linux's fpu__init_system_early_generic)
    let mut sw = vec![0xdd];
    sw.extend_from_slice(&m(7));
    let d2 = (D + 2).to_le_bytes();
    let cw = [0xd9, 7 << 3 | 5, d2[0], d2[1], d2[2], d2[3]];
    let mut t = TestBox::new(&[]);
    t.poke(D, &[0x5a, 0x5a, 0x5a, 0x5a]);
    let code = cat(&[&[0xdb, 0xe3], &sw, &cw]);
    let mut t2 = TestBox::new(&code);
    t2.poke(D, &[0x5a, 0x5a, 0x5a, 0x5a]);
    t2.run(10).unwrap();
    let v = t2.peek32(D);
    assert_eq!(v & 0xffff, 0, "status word");
    assert_eq!(v >> 16, 0x037f, "control word");
    assert_eq!(t.cpu.state.x87.fcw, 0x0040, "power-on control word");
}

#[test]
fn add_and_store_integer() {
    // fninit ; fld1 ; fld1 ; faddp ; fistp dword [D]
    let mut fistp = vec![0xdb];
    fistp.extend_from_slice(&m(3));
    let t = run(&cat(&[&[0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xe8, 0xde, 0xc1], &fistp]));
    assert_eq!(t.peek32(D), 2);
    assert_eq!(t.cpu.state.x87.valid, 0, "stack empty again");
    assert_eq!(t.cpu.state.x87.fsw & fsw::EXC, 0);
}

#[test]
fn sqrt_two_and_pi() {
    // fninit ; fldpi ; fld1 ; fadd st0,st0 ; fsqrt
    let t = run(&[0xdb, 0xe3, 0xd9, 0xeb, 0xd9, 0xe8, 0xd8, 0xc0, 0xd9, 0xfa]);
    let x = &t.cpu.state.x87;
    assert_eq!(x.st(0), F80 { signif: 0xb504_f333_f9de_6484, sign_exp: 0x3fff }, "√2 rounded to nearest");
    assert_eq!(x.st(1), F80 { signif: 0xc90f_daa2_2168_c235, sign_exp: 0x4000 }, "π rounded to nearest");
    assert_ne!(x.fsw & fsw::PE, 0);
    assert_eq!(x.top(), 6);
}

#[test]
fn precision_control_single() {
    // fninit ; fldcw [D] (PC=00) ; fld1 ; fld dword? — 1/3 in single precision:
    // fld1 ; fld1 ; fadd st0,st0 ; fadd st0,st1 (3) ; fdivp st1,st0 (1/3) ; fstp qword [D+8]
    let mut ldcw = vec![0xd9];
    ldcw.extend_from_slice(&m(5));
    let d8 = (D + 8).to_le_bytes();
    let stp = [0xdd, 3 << 3 | 5, d8[0], d8[1], d8[2], d8[3]];
    let code = cat(&[&[0xdb, 0xe3], &ldcw, &[0xd9, 0xe8, 0xd9, 0xe8, 0xd8, 0xc0, 0xd8, 0xc1, 0xde, 0xf9], &stp]);
    let mut t = TestBox::new(&code);
    t.poke(D, &0x007fu16.to_le_bytes());
    t.run(10).unwrap();
    let v = u64::from_le_bytes(t.cpu.mem.read_ram::<8>((D + 8) as usize).unwrap());
    assert_eq!(f64::from_bits(v), (1.0f32 / 3.0) as f64);
}

#[test]
fn stack_overflow_pushes_the_indefinite() {
    // fninit ; 9 × fld1
    let mut code = vec![0xdb, 0xe3];
    for _ in 0..9 {
        code.extend_from_slice(&[0xd9, 0xe8]);
    }
    let t = run(&code);
    let x = &t.cpu.state.x87;
    assert_eq!(x.st(0), F80::INDEFINITE);
    assert_eq!(x.fsw & (fsw::IE | fsw::SF | fsw::C1), fsw::IE | fsw::SF | fsw::C1);
}

#[test]
fn fist_follows_the_rounding_control() {
    // For RC = 0..3: fninit ; fldcw [D] ; fld dword [D+4] (-2.5f) ; fistp dword [D+8]
    for (rc, want) in [(0u16, -2i32), (1, -3), (2, -2), (3, -2)] {
        let d4 = (D + 4).to_le_bytes();
        let d8 = (D + 8).to_le_bytes();
        let mut ldcw = vec![0xd9];
        ldcw.extend_from_slice(&m(5));
        let code = cat(&[
            &[0xdb, 0xe3],
            &ldcw,
            &[0xd9, 5, d4[0], d4[1], d4[2], d4[3]],
            &[0xdb, 3 << 3 | 5, d8[0], d8[1], d8[2], d8[3]],
        ]);
        let mut t = TestBox::new(&code);
        t.poke(D, &(0x037f | rc << 10).to_le_bytes());
        t.poke(D + 4, &(-2.5f32).to_bits().to_le_bytes());
        t.run(10).unwrap();
        assert_eq!(t.peek32(D + 8) as i32, want, "rc {rc}");
        assert_ne!(t.cpu.state.x87.fsw & fsw::PE, 0);
    }
}

#[test]
fn fcomi_sets_eflags() {
    // fninit ; fldz ; fld1 ; fcomi st0,st1 (1 > 0) ; then fucomip st0,st0 of a NaN
    let t = run(&[0xdb, 0xe3, 0xd9, 0xee, 0xd9, 0xe8, 0xdb, 0xf1]);
    assert_eq!(t.cpu.state.eflags & (ZF | PF | CF), 0);
    // fninit ; fld1 ; fldz ; fcomip st0,st1 (0 < 1)
    let t = run(&[0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xee, 0xdf, 0xf1]);
    assert_eq!(t.cpu.state.eflags & (ZF | PF | CF), CF);
    assert_eq!(t.cpu.state.x87.top(), 7, "popped once");
}

#[test]
fn fnsave_frstor_round_trip() {
    // fninit ; fldpi ; fld1 ; fnsave [D] ; fld1 (changes state) ; frstor [D]
    let mut save = vec![0xdd];
    save.extend_from_slice(&m(6));
    let mut rstor = vec![0xdd];
    rstor.extend_from_slice(&m(4));
    let code = cat(&[&[0xdb, 0xe3, 0xd9, 0xeb, 0xd9, 0xe8], &save, &[0xd9, 0xe8], &rstor]);
    let mut t = TestBox::new(&code);
    t.run(10).unwrap();
    let x = t.cpu.state.x87;
    assert_eq!(x.top(), 6);
    assert_eq!(x.st(0), F80 { signif: 1 << 63, sign_exp: 0x3fff });
    assert_eq!(x.st(1).signif, 0xc90f_daa2_2168_c235);
    assert_eq!(x.valid, 0xc0);
    assert_eq!(t.peek32(D) & 0xffff, 0x037f, "FCW in the image");
    assert_eq!(t.peek32(D + 8) & 0xffff, 0x0fff, "tag word: R7, R6 valid, the rest empty");
    assert_eq!(t.peek32(D + 12), CODE_BASE + 4, "FIP: the FLD1 before the FNSAVE");
}

#[test]
fn em_and_ts_raise_nm() {
    for bit in [cr0::EM, cr0::TS] {
        let mut t = TestBox::new(&[0xd9, 0xe8]);
        t.install_exception_handlers();
        t.cpu.state.cr0 |= bit;
        t.run(10).unwrap();
        assert_eq!(t.halted_vector(), Some(7), "cr0 bit {bit:#x}");
        assert_eq!(t.stack(0), CODE_BASE);
    }
    // WAIT: #NM only with MP and TS.
    let mut t = TestBox::new(&[0x9b]);
    t.install_exception_handlers();
    t.cpu.state.cr0 |= cr0::TS;
    t.run(10).unwrap();
    assert_eq!(t.halted_vector(), None);
    let mut t = TestBox::new(&[0x9b]);
    t.install_exception_handlers();
    t.cpu.state.cr0 |= cr0::TS | cr0::MP;
    t.run(10).unwrap();
    assert_eq!(t.halted_vector(), Some(7));
}

#[test]
fn unmasked_zero_divide_raises_mf_at_the_next_waiting_instruction() {
    // fninit ; fldcw [D] (ZM clear) ; fldz ; fld1 ; fdiv st0,st1 ; fnstsw ax ; fwait
    let mut ldcw = vec![0xd9];
    ldcw.extend_from_slice(&m(5));
    let code = cat(&[&[0xdb, 0xe3], &ldcw, &[0xd9, 0xee, 0xd9, 0xe8, 0xd8, 0xf1, 0xdf, 0xe0, 0x9b]]);
    let mut t = TestBox::new(&code);
    t.install_exception_handlers();
    t.cpu.state.cr0 |= cr0::NE;
    t.poke(D, &0x037bu16.to_le_bytes());
    t.run(10).unwrap();
    assert_eq!(t.halted_vector(), Some(16));
    let fwait_at = CODE_BASE + code.len() as u32 - 1;
    assert_eq!(t.stack(0), fwait_at, "#MF is a fault on the FWAIT");
    let sw = t.cpu.state.gpr[0] as u16;
    assert_eq!(sw & (fsw::ZE | fsw::ES | fsw::B), fsw::ZE | fsw::ES | fsw::B);
    assert_eq!(t.cpu.state.x87.st(0), F80 { signif: 1 << 63, sign_exp: 0x3fff }, "destination unchanged");
}

#[test]
fn fisttp_is_undefined() {
    let mut t = TestBox::new(&[]);
    // fisttp dword [eax]
    assert_eq!(
        t.exec_one(&[0xdb, 0x08]),
        Err(popek_cpu::exception::Event::Exception(popek_cpu::exception::Exception::InvalidOpcode))
    );
}

/// `fxsave [D+disp]` / `fxrstor [D+disp]` (0F AE /0, /1 with a 32-bit displacement).
fn fx(reg: u8, disp: u32) -> Vec<u8> {
    let a = (D + disp).to_le_bytes();
    vec![0x0f, 0xae, reg << 3 | 5, a[0], a[1], a[2], a[3]]
}

#[test]
fn fxsave_writes_the_x87_image_and_keeps_the_fpu() {
    // fninit ; fldpi ; fld1 ; fldz ; fxsave [D] ; (then the FPU is still loaded)
    let code = cat(&[&[0xdb, 0xe3, 0xd9, 0xeb, 0xd9, 0xe8, 0xd9, 0xee], &fx(0, 0)]);
    let mut t = TestBox::new(&code);
    t.poke(D, &[0xa5; 512]);
    t.run(10).unwrap();
    let b = |i: u32| t.cpu.mem.read_ram::<1>((D + i) as usize).unwrap()[0];
    let w = |i: u32| u16::from_le_bytes([b(i), b(i + 1)]);
    assert_eq!(w(0), 0x037f, "FCW");
    assert_eq!(w(2), 0x2800, "FSW: TOP = 5");
    assert_eq!(b(4), 0xe0, "abridged FTW: R5, R6, R7 in use");
    assert_eq!(b(5), 0, "reserved");
    assert_eq!(w(6), 0x1ee, "FOP of the FLDZ (D9 EE)");
    assert_eq!(t.peek32(D + 8), CODE_BASE + 6, "FIP: the FLDZ");
    assert_eq!(w(12), 0x08, "FCS");
    assert_eq!(w(14), 0, "reserved");
    assert_eq!(t.peek32(D + 24), 0xa5a5_a5a5, "MXCSR: not written (no SSE)");
    assert_eq!(t.peek32(D + 28), 0xa5a5_a5a5, "MXCSR_MASK: not written");
    let st = |i: u32| (0..10).map(|k| b(32 + 16 * i + k)).collect::<Vec<u8>>();
    assert_eq!(st(0), F80::ZERO.to_bytes());
    assert_eq!(st(1), F80 { signif: 1 << 63, sign_exp: 0x3fff }.to_bytes());
    assert_eq!(&st(2)[8..], &[0x00, 0x40], "pi's exponent");
    for i in 0..8 {
        assert!((10..16).all(|k| b(32 + 16 * i + k) == 0), "ST({i})'s reserved bytes are zero");
    }
    assert!((160..512).all(|i| b(i) == 0xa5), "XMM area and beyond: not written");
    assert_eq!(t.cpu.state.x87.valid, 0xe0, "FXSAVE does not initialise the FPU");
    assert_eq!(t.cpu.state.x87.st(1), F80 { signif: 1 << 63, sign_exp: 0x3fff });
}

#[test]
fn fxrstor_loads_the_image_and_makes_the_full_tags() {
    // fninit ; fxrstor [D] ; fnsave [D+0x200]
    let mut save = vec![0xdd];
    save.extend_from_slice(&{
        let a = (D + 0x200).to_le_bytes();
        [6 << 3 | 5, a[0], a[1], a[2], a[3]]
    });
    let code = cat(&[&[0xdb, 0xe3], &fx(1, 0), &save]);
    let mut t = TestBox::new(&code);
    let mut img = [0u8; 512];
    img[0..2].copy_from_slice(&0x0f7fu16.to_le_bytes()); // RC = up, PC = extended
    img[2..4].copy_from_slice(&(6u16 << 11 | fsw::C3).to_le_bytes()); // TOP = 6
    img[4] = 0b1100_0001; // R0, R6, R7 in use
    img[24..28].copy_from_slice(&0xffff_ffffu32.to_le_bytes()); // no MXCSR: never looked at
    // ST(0) = R6: 1.0; ST(1) = R7: +0; ST(2) = R0: +inf.
    img[32..42].copy_from_slice(&F80 { signif: 1 << 63, sign_exp: 0x3fff }.to_bytes());
    img[48..58].copy_from_slice(&F80::ZERO.to_bytes());
    img[64..74].copy_from_slice(&F80 { signif: 1 << 63, sign_exp: 0x7fff }.to_bytes());
    img[80..90].copy_from_slice(&[0x11; 10]); // R1: tagged empty, its contents kept
    t.poke(D, &img);
    t.run(10).unwrap();
    let saved = |i: u32| t.peek32(D + 0x200 + i) & 0xffff;
    assert_eq!(saved(0), 0x0f7f, "FCW");
    assert_eq!(saved(4), 6 << 11 | u32::from(fsw::C3), "FSW");
    assert_eq!(saved(8), 0b0100_1111_1111_1110, "tag word: R7 zero, R6 valid, R1-R5 empty, R0 special");
    let st2 = t.cpu.mem.read_ram::<10>((D + 0x200 + 28 + 20) as usize).unwrap();
    assert_eq!(st2, F80 { signif: 1 << 63, sign_exp: 0x7fff }.to_bytes(), "ST(2) = +inf");
}

#[test]
fn fxsave_and_fxrstor_fault_on_a_misaligned_area_and_on_cr0_ts() {
    for reg in [0, 1] {
        let mut t = TestBox::new(&fx(reg, 8));
        t.install_exception_handlers();
        t.run(10).unwrap();
        assert_eq!(t.halted_vector(), Some(13), "/{reg} misaligned: #GP");
        for bit in [cr0::TS, cr0::EM] {
            let mut t = TestBox::new(&fx(reg, 0));
            t.install_exception_handlers();
            t.cpu.state.cr0 |= bit;
            t.run(10).unwrap();
            assert_eq!(t.halted_vector(), Some(7), "/{reg} with cr0 bit {bit:#x}: #NM");
        }
    }
}

#[test]
fn fxsave_and_fxrstor_ignore_a_pending_exception() {
    // fninit ; fldcw [D] (ZM clear) ; fldz ; fld1 ; fdiv st0,st1 ; fxsave [D+0x400] ;
    // fxrstor [D+0x400]: no #MF, ES still set after both.
    let mut ldcw = vec![0xd9];
    ldcw.extend_from_slice(&m(5));
    let code = cat(&[&[0xdb, 0xe3], &ldcw, &[0xd9, 0xee, 0xd9, 0xe8, 0xd8, 0xf1], &fx(0, 0x400), &fx(1, 0x400)]);
    let mut t = TestBox::new(&code);
    t.install_exception_handlers();
    t.cpu.state.cr0 |= cr0::NE;
    t.poke(D, &0x037bu16.to_le_bytes());
    t.run(10).unwrap();
    assert_eq!(t.halted_vector(), None);
    assert_eq!(t.cpu.state.x87.fsw & (fsw::ZE | fsw::ES), fsw::ZE | fsw::ES);
    assert!(t.cpu.state.eip >= CODE_BASE + code.len() as u32, "ran to the end");
}

#[test]
fn fbld_fbstp_round_trip() {
    // fninit ; fbld [D] ; fchs ; fbstp [D+16]
    let d16 = (D + 16).to_le_bytes();
    let mut bld = vec![0xdf];
    bld.extend_from_slice(&m(4));
    let code = cat(&[&[0xdb, 0xe3], &bld, &[0xd9, 0xe0], &[0xdf, 6 << 3 | 5, d16[0], d16[1], d16[2], d16[3]]]);
    let mut t = TestBox::new(&code);
    t.poke(D, &[0x89, 0x67, 0x45, 0x23, 0x01, 0x99, 0, 0, 0x12, 0]);
    t.run(10).unwrap();
    assert_eq!(
        t.cpu.mem.read_ram::<10>((D + 16) as usize).unwrap(),
        [0x89, 0x67, 0x45, 0x23, 0x01, 0x99, 0, 0, 0x12, 0x80]
    );
}

#[test]
fn fprem_gives_the_remainder_and_quotient_bits() {
    // fninit ; fild dword [D] (3) ; fild dword [D+4] (17) ; fprem → 17 mod 3 = 2, q = 5
    let d4 = (D + 4).to_le_bytes();
    let mut ild = vec![0xdb];
    ild.extend_from_slice(&m(0));
    let code = cat(&[&[0xdb, 0xe3], &ild, &[0xdb, 5, d4[0], d4[1], d4[2], d4[3]], &[0xd9, 0xf8]]);
    let mut t = TestBox::new(&code);
    t.poke(D, &3u32.to_le_bytes());
    t.poke(D + 4, &17u32.to_le_bytes());
    t.run(10).unwrap();
    let x = &t.cpu.state.x87;
    assert_eq!(x.st(0), F80 { signif: 1 << 63, sign_exp: 0x4000 });
    // q = 5 = 0b101: C0 = 1, C3 = 0, C1 = 1, C2 = 0.
    assert_eq!(x.fsw & fsw::CC, fsw::C0 | fsw::C1);
}

#[test]
fn a_page_fault_on_the_operand_leaves_the_fpu_as_it_was() {
    // fninit ; fld1 ; fadd dword [0x00200000], with paging on and nothing mapped there.
    let mut t = TestBox::new(&[0xdb, 0xe3, 0xd9, 0xe8, 0xd8, 0x05, 0x00, 0x00, 0x20, 0x00]);
    t.install_exception_handlers();
    // Identity-map the first 1 MiB with one page table; 2 MiB is not present.
    const PD: u32 = 0x20000;
    const PT: u32 = 0x21000;
    t.poke(PD, &(PT | 3).to_le_bytes());
    for page in 0..256u32 {
        t.poke(PT + 4 * page, &((page << 12) | 3).to_le_bytes());
    }
    t.cpu.state.cr3 = PD;
    t.cpu.state.cr0 |= cr0::PG;
    t.run(10).unwrap();
    assert_eq!(t.halted_vector(), Some(14));
    let x = &t.cpu.state.x87;
    assert_eq!(x.fip, CODE_BASE + 2, "FIP still the FLD1's");
    assert_eq!(x.st(0), F80 { signif: 1 << 63, sign_exp: 0x3fff });
}

#[test]
fn fnstenv_with_a_16_bit_operand_size_stores_14_bytes_then_masks_all() {
    // fninit ; fldcw [D+32] (0x0372: IM, ZM clear) ; fld1 ; o16 fnstenv [D] ; fldenv back
    let d32 = (D + 32).to_le_bytes();
    let mut env = vec![0x66, 0xd9];
    env.extend_from_slice(&m(6));
    let code = cat(&[&[0xdb, 0xe3, 0xd9, 0x2d, d32[0], d32[1], d32[2], d32[3], 0xd9, 0xe8], &env]);
    let mut t = TestBox::new(&code);
    t.poke(D, &[0xee; 16]);
    t.poke(D + 32, &0x0372u16.to_le_bytes());
    t.run(10).unwrap();
    let b = t.cpu.mem.read_ram::<16>(D as usize).unwrap();
    let w = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    assert_eq!(w(0), 0x0372, "FCW");
    assert_eq!(w(2), 0x3800, "FSW: TOP 7");
    assert_eq!(w(4), 0x3fff, "FTW: R7 valid");
    assert_eq!(w(6), (CODE_BASE + 8) as u16, "FIP offset: the FLD1");
    assert_eq!(w(8), 0x08, "FCS");
    assert_eq!(w(14), 0xeeee, "14 bytes only");
    assert_eq!(t.cpu.state.x87.fcw, 0x037f, "all exceptions masked after FNSTENV");
}

#[test]
fn waiting_forms_check_pending_exceptions_first() {
    // 9B DB E2 (fclex, waiting) with an unmasked pending exception and CR0.NE: #MF, at
    // the start of the instruction; DB E2 (fnclex) clears it without a fault.
    for (bytes, vector) in [(&[0x9b, 0xdb, 0xe2][..], Some(16)), (&[0xdb, 0xe2][..], None)] {
        let mut t = TestBox::new(bytes);
        t.install_exception_handlers();
        t.cpu.state.cr0 |= cr0::NE;
        t.cpu.state.x87.fcw = 0x037b;
        t.cpu.state.x87.fsw = fsw::ZE | fsw::ES | fsw::B;
        t.run(10).unwrap();
        assert_eq!(t.halted_vector(), vector, "{bytes:02x?}");
        if vector.is_some() {
            assert_eq!(t.stack(0), CODE_BASE);
        } else {
            assert_eq!(t.cpu.state.x87.fsw, 0);
        }
    }
}

/// A bus that records the FERR# levels the CPU drives and answers IGNNE# as told.
#[derive(Default)]
struct PinBus {
    ferr: Vec<bool>,
    ignne: bool,
}

impl popek_cpu::Bus for PinBus {
    fn port_read(&mut self, _: popek_cpu::Port, size: popek_cpu::AccessSize) -> u32 {
        size.ones()
    }
    fn port_write(&mut self, _: popek_cpu::Port, _: popek_cpu::AccessSize, _: u32) {}
    fn mmio_read(&mut self, _: popek_cpu::PhysAddr, size: popek_cpu::AccessSize) -> u32 {
        size.ones()
    }
    fn mmio_write(&mut self, _: popek_cpu::PhysAddr, _: popek_cpu::AccessSize, _: u32) {}
    fn set_ferr(&mut self, asserted: bool) {
        self.ferr.push(asserted);
    }
    fn ignne(&mut self) -> bool {
        self.ignne
    }
}

/// `fninit ; fldcw [D] (ZM clear) ; fldz ; fld1 ; fdiv st0,st1 ; nop ; fwait ; fnclex ; fwait`
/// with CR0.NE = 0, in a box whose exception handlers halt. Returns the box and the address
/// of the first FWAIT.
fn legacy_box() -> (TestBox, u32) {
    let mut ldcw = vec![0xd9];
    ldcw.extend_from_slice(&m(5));
    let code = cat(&[&[0xdb, 0xe3], &ldcw, &[0xd9, 0xee, 0xd9, 0xe8, 0xd8, 0xf1, 0x90, 0x9b, 0xdb, 0xe2, 0x9b]]);
    let mut t = TestBox::new(&code);
    t.install_exception_handlers();
    t.poke(D, &0x037bu16.to_le_bytes());
    (t, CODE_BASE + code.len() as u32 - 4)
}

/// CR0.NE = 0: the FDIV that sets ES asserts FERR# and ends its block (the NOP after it
/// runs in the next one); the FWAIT then freezes (no #MF, EIP on it, halted) because
/// IGNNE# is inactive; with IGNNE# asserted it runs, and FNCLEX takes FERR# away.
#[test]
fn legacy_reporting_asserts_ferr_and_freezes_at_the_next_waiting_instruction() {
    let (mut t, fwait) = legacy_box();
    let mut bus = PinBus::default();
    t.interp.run_block(&mut t.cpu, &mut bus).unwrap();
    assert_eq!(bus.ferr, [true], "FERR# asserted by the FDIV");
    assert!(t.cpu.state.x87.ferr);
    assert_eq!(t.cpu.state.eip, fwait - 1, "the block ended after the FDIV");
    t.interp.run_block(&mut t.cpu, &mut bus).unwrap();
    assert_eq!(t.halted_vector(), None, "no #MF with NE = 0");
    assert!(t.cpu.state.halted, "frozen");
    assert_eq!(t.cpu.state.eip, fwait, "EIP on the FWAIT");
    // An interrupt would come here; the FWAIT runs again, and freezes again.
    t.cpu.state.halted = false;
    t.interp.run_block(&mut t.cpu, &mut bus).unwrap();
    assert_eq!((t.cpu.state.halted, t.cpu.state.eip), (true, fwait));
    // The handler wrote port 0xF0: IGNNE# asserted, the FWAIT goes on, FNCLEX clears ES.
    t.cpu.state.halted = false;
    bus.ignne = true;
    t.interp.run_block(&mut t.cpu, &mut bus).unwrap();
    assert_eq!(bus.ferr, [true, false], "FERR# follows ES away");
    assert!(!t.cpu.state.x87.ferr);
    assert_eq!(t.cpu.state.x87.fsw & fsw::ES, 0);
    assert_eq!(t.halted_vector(), None);
}

/// CR0.NE = 1: no FERR#, the #MF of native reporting.
#[test]
fn native_reporting_never_asserts_ferr() {
    let (mut t, fwait) = legacy_box();
    t.cpu.state.cr0 |= cr0::NE;
    let mut bus = PinBus::default();
    for _ in 0..4 {
        if t.cpu.state.halted {
            break;
        }
        t.interp.run_block(&mut t.cpu, &mut bus).unwrap();
    }
    assert_eq!(t.halted_vector(), Some(16), "#MF");
    assert_eq!(t.stack(0), fwait);
    assert!(bus.ferr.is_empty());
}
