//! Random cases: a deterministic PRNG, the input state of one case, and the
//! encoding of a form with a case's operands for the guest (32-bit) and the host (64-bit).

use popek_cpu::iced_x86::{Code, Encoder, IcedError, Instruction, MemoryOperand, Register};
use popek_cpu::state::flags::{ARITH, DF};

use crate::forms::{Form, Op, Prep, Shape, StrOp};

/// Size of the data window: guest `DATA_BASE..+WINDOW`, host `scratch[..WINDOW]`.
pub const WINDOW: usize = 1024;
/// Where memory operands live in the window (plus a random 0..8 misalignment).
pub const MEM_OFF: u32 = 512;

/// GPR indices (x86 encoding order, identical in both worlds for the low eight).
pub const EAX: usize = 0;
/// ECX.
pub const ECX: usize = 1;
/// EBX.
pub const EBX: usize = 3;
/// ESP (never used by a form).
pub const ESP: usize = 4;
/// ESI.
pub const ESI: usize = 6;
/// EDI.
pub const EDI: usize = 7;
/// Register names for reports.
pub const GPR_NAMES: [&str; 8] = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];

/// xorshift64* with a fixed seed per form: the same form always gets the same cases.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `name` (FNV-1a), so a filtered run repeats the full run's cases.
    pub fn for_name(name: &str) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h | 1)
    }

    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * n as u64) >> 32) as u32
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next() >> 63 != 0
    }

    /// 32 random bits.
    pub fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }

    /// A 32-bit value biased towards the edges of 8-, 16- and 32-bit arithmetic.
    pub fn value(&mut self) -> u32 {
        const EDGES: [u32; 26] = [
            0,
            1,
            2,
            0x7e,
            0x7f,
            0x80,
            0x81,
            0xfe,
            0xff,
            0x100,
            0x7ffe,
            0x7fff,
            0x8000,
            0x8001,
            0xfffe,
            0xffff,
            0x1_0000,
            0x7fff_fffe,
            0x7fff_ffff,
            0x8000_0000,
            0x8000_0001,
            0xffff_fffe,
            0xffff_ffff,
            0xffff_ff80,
            0xffff_8000,
            0x0f0f_0f0f,
        ];
        let edge = EDGES[self.below(EDGES.len() as u32) as usize];
        let noise = self.u32();
        match self.below(10) {
            0..=2 => noise,
            3 | 4 => edge,
            5 => (noise & !0xff) | (edge & 0xff),
            6 => (noise & !0xffff) | (edge & 0xffff),
            7 => (noise & !0xff00) | ((edge & 0xff) << 8),
            8 => self.below(256),
            _ => noise >> self.below(32),
        }
    }
}

/// A concrete operand of one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A register (the same name in both modes).
    Reg(Register),
    /// `[EBX]` / `[RBX]`.
    Mem,
    /// An immediate, as iced takes it (imm8 as 0..=255 or sign-extended for imm8-to-16/32).
    Imm(i32),
    /// `[base + index*scale + disp]`, 32-bit addressing in both modes (LEA).
    Addr {
        /// Base register or `Register::None`.
        base: Register,
        /// Index register or `Register::None`.
        index: Register,
        /// 1, 2, 4 or 8.
        scale: u32,
        /// Displacement.
        disp: i32,
    },
}

/// The input state of one case.
#[derive(Clone, Debug)]
pub struct Case {
    /// GPR values; for a pointer register, the offset into the data window.
    pub gpr: [u32; 8],
    /// Bit i set: `gpr[i]` is a pointer (window offset) rather than a value.
    pub ptr: u8,
    /// CF PF AF ZF SF OF DF.
    pub flags: u32,
    /// The data window.
    pub mem: Vec<u8>,
    /// The operands.
    pub args: Vec<Arg>,
}

/// GPR index, value mask and shift of a register operand.
pub fn reg_slot(r: Register) -> (usize, u32, u32) {
    use Register::*;
    let regs32 = [EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI];
    let regs16 = [AX, CX, DX, BX, SP, BP, SI, DI];
    let regs8 = [AL, CL, DL, BL, AH, CH, DH, BH];
    if let Some(i) = regs32.iter().position(|&x| x == r) {
        (i, 0xffff_ffff, 0)
    } else if let Some(i) = regs16.iter().position(|&x| x == r) {
        (i, 0xffff, 0)
    } else if let Some(i) = regs8.iter().position(|&x| x == r) {
        if i < 4 { (i, 0xff, 0) } else { (i - 4, 0xff, 8) }
    } else {
        panic!("not a GPR operand: {r:?}")
    }
}

/// Width in bytes of a register operand.
fn reg_width(r: Register) -> u32 {
    match reg_slot(r).1 {
        0xff => 1,
        0xffff => 2,
        _ => 4,
    }
}

impl Case {
    /// The value of register `r` (not for pointer registers).
    pub fn reg(&self, r: Register) -> u32 {
        let (i, mask, shift) = reg_slot(r);
        (self.gpr[i] >> shift) & mask
    }

    /// Sets register `r`, keeping the other bits of its GPR.
    pub fn set_reg(&mut self, r: Register, v: u32) {
        let (i, mask, shift) = reg_slot(r);
        self.gpr[i] = (self.gpr[i] & !(mask << shift)) | ((v & mask) << shift);
    }

    /// Window offset of the `[EBX]` memory operand.
    pub fn mem_off(&self) -> usize {
        self.gpr[EBX] as usize
    }

    fn read_mem(&self, off: usize, width: u32) -> u32 {
        let mut v = 0u32;
        for i in (0..width as usize).rev() {
            v = (v << 8) | self.mem[off + i] as u32;
        }
        v
    }

    fn write_mem(&mut self, off: usize, width: u32, v: u32) {
        for i in 0..width as usize {
            self.mem[off + i] = (v >> (8 * i)) as u8;
        }
    }

    /// Value of operand `n` (register or `[EBX]`) at `width` bytes.
    fn operand(&self, n: usize, width: u32) -> u32 {
        match self.args[n] {
            Arg::Reg(r) => self.reg(r),
            Arg::Mem => self.read_mem(self.mem_off(), width),
            other => panic!("operand {n} is not a register or memory: {other:?}"),
        }
    }

    /// Sets operand `n` (register or `[EBX]`).
    fn set_operand(&mut self, n: usize, width: u32, v: u32) {
        match self.args[n] {
            Arg::Reg(r) => self.set_reg(r, v),
            Arg::Mem => self.write_mem(self.mem_off(), width, v),
            other => panic!("operand {n} is not a register or memory: {other:?}"),
        }
    }

    /// The shift/rotate count of the case: the last operand's value.
    pub fn count(&self) -> u32 {
        match self.args.last() {
            Some(Arg::Imm(v)) => *v as u32 & 0xff,
            Some(Arg::Reg(r)) => self.reg(*r),
            other => panic!("no count operand: {other:?}"),
        }
    }

    /// Source operand of BSF/BSR (operand 1) at `width` bytes.
    pub fn source(&self, width: u32) -> u32 {
        self.operand(1, width)
    }
}

fn mask(width: u32) -> u32 {
    if width >= 4 { u32::MAX } else { (1 << (8 * width)) - 1 }
}

/// A random register of `width` bytes, avoiding ESP and the pointer registers.
fn pick_reg(rng: &mut Rng, width: u32, ptr: u8) -> Register {
    use Register::*;
    let choices: &[(Register, usize)] = match width {
        1 => &[(AL, 0), (CL, 1), (DL, 2), (BL, 3), (AH, 0), (CH, 1), (DH, 2), (BH, 3)],
        2 => &[(AX, 0), (CX, 1), (DX, 2), (BX, 3), (BP, 5), (SI, 6), (DI, 7)],
        _ => &[(EAX, 0), (ECX, 1), (EDX, 2), (EBX, 3), (EBP, 5), (ESI, 6), (EDI, 7)],
    };
    loop {
        let (r, i) = choices[rng.below(choices.len() as u32) as usize];
        if ptr & (1 << i) == 0 {
            return r;
        }
    }
}

/// A shift count for case `index`: the low 6 bits walk 0..=63, the top two bits are
/// random one case in four (the CPU masks them away).
fn count(rng: &mut Rng, index: usize) -> u32 {
    let hi = if rng.below(4) == 0 { rng.below(4) << 6 } else { 0 };
    (index % 64) as u32 | hi
}

/// A random LEA address operand.
fn lea_addr(rng: &mut Rng) -> Arg {
    use Register::*;
    let regs = [EAX, ECX, EDX, EBX, EBP, ESI, EDI];
    let pick = |rng: &mut Rng| {
        if rng.below(5) == 0 { Register::None } else { regs[rng.below(regs.len() as u32) as usize] }
    };
    let base = pick(rng);
    let index = pick(rng);
    let scale = 1 << rng.below(4);
    let disp = match rng.below(4) {
        0 => 0,
        1 => rng.below(256) as i32 - 128,
        _ => rng.value() as i32,
    };
    Arg::Addr { base, index, scale, disp }
}

/// Generates case `index` of `form`.
pub fn generate(form: &Form, rng: &mut Rng, index: usize) -> Case {
    for _ in 0..1000 {
        let mut case = random_case(form, rng, index);
        if prep(form, &mut case, rng) {
            return case;
        }
    }
    panic!("form `{}`: could not generate a valid case", form.name)
}

fn random_case(form: &Form, rng: &mut Rng, index: usize) -> Case {
    let ops: &[Op] = match &form.shape {
        Shape::Ops { ops, .. } => ops,
        Shape::Str { .. } => &[],
    };
    let mut ptr = 0u8;
    if ops.contains(&Op::M) {
        ptr |= 1 << EBX;
    }
    if matches!(form.shape, Shape::Str { .. }) {
        ptr |= 1 << ESI | 1 << EDI;
    }
    let mut gpr = [0u32; 8];
    for (i, g) in gpr.iter_mut().enumerate() {
        *g = if i == ESP { 0 } else { rng.value() };
    }
    if ptr & (1 << EBX) != 0 {
        gpr[EBX] = MEM_OFF + rng.below(8);
    }
    let mut flags = rng.u32() & ARITH;
    let df = form.df.unwrap_or_else(|| rng.coin());
    if df {
        flags |= DF;
    }
    let mut mem = vec![0u8; WINDOW];
    for chunk in mem.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
    }
    let mut case = Case { gpr, ptr, flags, mem, args: Vec::with_capacity(ops.len()) };
    for &op in ops {
        let arg = match op {
            Op::R8 => Arg::Reg(pick_reg(rng, 1, ptr)),
            Op::R16 => Arg::Reg(pick_reg(rng, 2, ptr)),
            Op::R32 => Arg::Reg(pick_reg(rng, 4, ptr)),
            Op::Fixed(r) => Arg::Reg(r),
            Op::Cl => {
                let c = count(rng, index);
                case.set_reg(Register::CL, c);
                Arg::Reg(Register::CL)
            }
            Op::M => {
                let (off, v) = (case.mem_off(), rng.value());
                case.write_mem(off, 4, v);
                Arg::Mem
            }
            Op::I8 => Arg::Imm((rng.value() & 0xff) as i32),
            Op::I8s => Arg::Imm(rng.value() as u8 as i8 as i32),
            Op::I16 => Arg::Imm((rng.value() & 0xffff) as i32),
            Op::I32 => Arg::Imm(rng.value() as i32),
            Op::Count => Arg::Imm(count(rng, index) as i32),
            Op::One => Arg::Imm(1),
            Op::Lea => lea_addr(rng),
        };
        case.args.push(arg);
    }
    case
}

/// Applies the form's input shaping; false if the case must be regenerated.
fn prep(form: &Form, case: &mut Case, rng: &mut Rng) -> bool {
    let w = form.width;
    match form.prep {
        Prep::None => true,
        Prep::Div { signed } => prep_div(case, rng, w, signed),
        Prep::BtMem => {
            // Bit offset in [-1024, 1023]: the accessed unit stays within ±132 bytes of EBX.
            let off = rng.below(2048) as i32 - 1024;
            case.set_operand(1, w, off as u32);
            true
        }
        Prep::Cmpxchg => {
            if rng.coin() {
                let dest = case.operand(0, w);
                let acc = match w {
                    1 => Register::AL,
                    2 => Register::AX,
                    _ => Register::EAX,
                };
                case.set_reg(acc, dest);
            }
            true
        }
        Prep::BitScan => {
            if rng.below(8) == 0 {
                case.set_operand(1, w, 0);
            }
            true
        }
        Prep::Str => {
            prep_string(form, case, rng);
            true
        }
    }
}

/// Dividend (high, low) registers of DIV/IDIV at `w` bytes.
fn dividend_regs(w: u32) -> (Register, Register) {
    match w {
        1 => (Register::AH, Register::AL),
        2 => (Register::DX, Register::AX),
        _ => (Register::EDX, Register::EAX),
    }
}

/// True if DIV/IDIV of the case neither divides by zero nor overflows the quotient.
pub fn div_ok(case: &Case, w: u32, signed: bool) -> bool {
    let (hi_r, lo_r) = dividend_regs(w);
    let bits = 8 * w;
    let (hi, lo, d) = (case.reg(hi_r) as u64, case.reg(lo_r) as u64, case.operand(0, w) as u64);
    if d == 0 {
        return false;
    }
    let dividend = (hi << bits) | lo;
    if signed {
        let sx = |v: u64, b: u32| ((v << (64 - b)) as i64 >> (64 - b)) as i128;
        let q = sx(dividend, 2 * bits) / sx(d, bits);
        let lim = 1i128 << (bits - 1);
        -lim <= q && q < lim
    } else {
        dividend / d < (1u64 << bits)
    }
}

fn prep_div(case: &mut Case, rng: &mut Rng, w: u32, signed: bool) -> bool {
    let (hi_r, lo_r) = dividend_regs(w);
    if case.operand(0, w) & mask(w) == 0 {
        let v = rng.value() & mask(w);
        case.set_operand(0, w, if v == 0 { 1 } else { v });
    }
    if !div_ok(case, w, signed) {
        let d = case.operand(0, w) & mask(w);
        if signed {
            // Dividend = sign-extended low half: |quotient| <= |low half|.
            let lo = case.reg(lo_r);
            let neg = lo & (1 << (8 * w - 1)) != 0;
            case.set_reg(hi_r, if neg { u32::MAX } else { 0 });
        } else if d != 0 {
            let hi = rng.u32() & mask(w);
            case.set_reg(hi_r, hi % d);
        }
    }
    div_ok(case, w, signed)
}

/// Window layout of string cases: source pointers in the lower half, destination in the upper.
fn prep_string(form: &Form, case: &mut Case, rng: &mut Rng) {
    let Shape::Str { op, width, .. } = form.shape else { unreachable!() };
    let df = case.flags & DF != 0;
    case.gpr[ECX] = match rng.below(8) {
        0 => 0,
        1 => 1,
        _ => rng.below(21),
    };
    // At most 20 elements of 4 bytes move a pointer by 80 bytes either way.
    let (esi, edi) = if df { (448, 960) } else { (64, 576) };
    case.gpr[ESI] = esi + rng.below(8);
    case.gpr[EDI] = edi + rng.below(8);
    let (si, di) = (case.gpr[ESI] as i64, case.gpr[EDI] as i64);
    match rng.below(3) {
        // Same bytes around both pointers with a mutation or two: REPE runs for a while.
        0 => {
            let span = if df { -92i64..12 } else { -8i64..96 };
            for k in span {
                case.mem[(di + k) as usize] = case.mem[(si + k) as usize];
            }
            for _ in 0..rng.below(3) {
                let k = rng.below(96) as i64 - if df { 88 } else { 0 };
                case.mem[(di + k) as usize] ^= 1 << rng.below(8);
            }
        }
        // A two-letter alphabet: matches and mismatches everywhere.
        1 => {
            for b in case.mem.iter_mut() {
                *b &= 1;
            }
            case.gpr[EAX] &= 0x0101_0101;
        }
        _ => {}
    }
    if op == StrOp::Scas && rng.coin() {
        // Compare against an element actually present at some position.
        let k = rng.below(case.gpr[ECX].max(1)) as i64 * width as i64;
        let at = (if df { di - k } else { di + k }) as usize;
        let v = case.read_mem(at, width);
        let m = mask(width);
        case.gpr[EAX] = (case.gpr[EAX] & !m) | v;
    }
}

/// An operand as iced takes it.
enum IArg {
    R(Register),
    M(MemoryOperand),
    I(i32),
}

fn iced_args(case: &Case, bitness: u32) -> Vec<IArg> {
    case.args
        .iter()
        .map(|a| match *a {
            Arg::Reg(r) => IArg::R(r),
            Arg::Mem => IArg::M(MemoryOperand::with_base(if bitness == 64 { Register::RBX } else { Register::EBX })),
            Arg::Imm(v) => IArg::I(v),
            Arg::Addr { base, index, scale, disp } => {
                let size = if base == Register::None || i8::try_from(disp).is_err() {
                    4
                } else if disp == 0 {
                    0
                } else {
                    1
                };
                IArg::M(MemoryOperand::with_base_index_scale_displ_size(base, index, scale, disp as i64, size))
            }
        })
        .collect()
}

/// Builds the instruction `code` with `args`.
fn create(code: Code, args: &[IArg]) -> Result<Instruction, IcedError> {
    use IArg::*;
    match args {
        [] => Ok(Instruction::with(code)),
        [R(a)] => Instruction::with1(code, *a),
        [M(a)] => Instruction::with1(code, *a),
        [R(a), R(b)] => Instruction::with2(code, *a, *b),
        [R(a), M(b)] => Instruction::with2(code, *a, *b),
        [M(a), R(b)] => Instruction::with2(code, *a, *b),
        [R(a), I(b)] => Instruction::with2(code, *a, *b),
        [M(a), I(b)] => Instruction::with2(code, *a, *b),
        [R(a), R(b), R(c)] => Instruction::with3(code, *a, *b, *c),
        [M(a), R(b), R(c)] => Instruction::with3(code, *a, *b, *c),
        [R(a), R(b), I(c)] => Instruction::with3(code, *a, *b, *c),
        [R(a), M(b), I(c)] => Instruction::with3(code, *a, *b, *c),
        [M(a), R(b), I(c)] => Instruction::with3(code, *a, *b, *c),
        _ => panic!("harness: operand combination of {code:?} not supported"),
    }
}

/// The instruction of `form` with `case`'s operands for `bitness` (32: guest, 64: host).
pub fn instruction(form: &Form, case: &Case, bitness: u32) -> Result<Instruction, IcedError> {
    match &form.shape {
        Shape::Ops { code, host, .. } => create(if bitness == 64 { *host } else { *code }, &iced_args(case, bitness)),
        &Shape::Str { op, width, rep } => {
            let (a, seg) = (bitness, Register::None);
            match (op, width) {
                (StrOp::Movs, 1) => Instruction::with_movsb(a, seg, rep),
                (StrOp::Movs, 2) => Instruction::with_movsw(a, seg, rep),
                (StrOp::Movs, _) => Instruction::with_movsd(a, seg, rep),
                (StrOp::Cmps, 1) => Instruction::with_cmpsb(a, seg, rep),
                (StrOp::Cmps, 2) => Instruction::with_cmpsw(a, seg, rep),
                (StrOp::Cmps, _) => Instruction::with_cmpsd(a, seg, rep),
                (StrOp::Scas, 1) => Instruction::with_scasb(a, rep),
                (StrOp::Scas, 2) => Instruction::with_scasw(a, rep),
                (StrOp::Scas, _) => Instruction::with_scasd(a, rep),
                (StrOp::Lods, 1) => Instruction::with_lodsb(a, seg, rep),
                (StrOp::Lods, 2) => Instruction::with_lodsw(a, seg, rep),
                (StrOp::Lods, _) => Instruction::with_lodsd(a, seg, rep),
                (StrOp::Stos, 1) => Instruction::with_stosb(a, rep),
                (StrOp::Stos, 2) => Instruction::with_stosw(a, rep),
                (StrOp::Stos, _) => Instruction::with_stosd(a, rep),
            }
        }
    }
}

/// Machine code of `insn` for `bitness`, as if placed at `ip`.
pub fn encode(insn: &Instruction, bitness: u32, ip: u64) -> Result<Vec<u8>, IcedError> {
    let mut enc = Encoder::new(bitness);
    enc.encode(insn, ip)?;
    Ok(enc.take_buffer())
}

/// A case with harmless operands for `ops`, for naming and sizing a form.
fn sample(ops: &[Op]) -> Case {
    let args = ops
        .iter()
        .map(|op| match *op {
            Op::R8 => Arg::Reg(Register::CL),
            Op::R16 => Arg::Reg(Register::CX),
            Op::R32 => Arg::Reg(Register::ECX),
            Op::Fixed(r) => Arg::Reg(r),
            Op::Cl => Arg::Reg(Register::CL),
            Op::M => Arg::Mem,
            Op::I8 | Op::I8s | Op::I16 | Op::I32 | Op::Count => Arg::Imm(0),
            Op::One => Arg::Imm(1),
            Op::Lea => Arg::Addr { base: Register::EAX, index: Register::None, scale: 1, disp: 0 },
        })
        .collect();
    Case { gpr: [0; 8], ptr: 0, flags: 0, mem: Vec::new(), args }
}

/// Destination width in bytes of a `code` form with `ops` (0 if it has no operands).
pub fn dest_width(code: Code, ops: &[Op]) -> u32 {
    let insn = create(code, &iced_args(&sample(ops), 32)).unwrap_or_else(|e| panic!("{code:?} {ops:?}: {e}"));
    match ops.first() {
        None => 0,
        Some(Op::M) => insn.memory_size().size() as u32,
        Some(_) => reg_width(insn.op0_register()),
    }
}

/// A form's human-readable name, e.g. "add m32, imm8" or "shl r8, cl".
pub fn describe(code: Code, ops: &[Op]) -> String {
    let insn = create(code, &iced_args(&sample(ops), 32)).unwrap_or_else(|e| panic!("{code:?} {ops:?}: {e}"));
    let mnemonic = format!("{:?}", code.mnemonic()).to_lowercase();
    let operands: Vec<String> = ops
        .iter()
        .map(|op| match op {
            Op::R8 => "r8".into(),
            Op::R16 => "r16".into(),
            Op::R32 => "r32".into(),
            Op::Fixed(r) => format!("{r:?}").to_lowercase(),
            Op::Cl => "cl".into(),
            Op::M => format!("m{}", insn.memory_size().size() * 8),
            Op::I8 | Op::I8s | Op::Count => "imm8".into(),
            Op::I16 => "imm16".into(),
            Op::I32 => "imm32".into(),
            Op::One => "1".into(),
            Op::Lea => "m".into(),
        })
        .collect();
    if operands.is_empty() { mnemonic } else { format!("{mnemonic} {}", operands.join(", ")) }
}
