//! The form table: every instruction shape the differential test runs, with the
//! flags the SDM leaves undefined for it (SDM Vol. 2 "Flags Affected" of each
//! instruction page; Vol. 1 Appendix A summarises them).
//!
//! A form is built once and then run with many random cases. Forms are grouped by
//! the interpreter module that implements them; each form carries its SDM rule in
//! one line next to the [`Undef`] it uses.
//!
//! Not here, on purpose: DAA/DAS/AAA/AAS/AAM/AAD (invalid in 64-bit mode, so the host
//! cannot run them), anything using the stack (the host snippet may not touch RSP),
//! control transfers, and segment/system instructions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use popek_cpu::iced_x86::{Code, Register, RepPrefixKind};
use popek_cpu::state::flags::{AF, ARITH, CF, OF, PF, SF, ZF};

/// An operand template; each case picks a concrete value for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A random 8-bit GPR (AL..BH, never one aliasing a pointer register).
    R8,
    /// A random 16-bit GPR (never SP, never a pointer register).
    R16,
    /// A random 32-bit GPR (never ESP, never a pointer register).
    R32,
    /// An operand the encoding fixes (AL/AX/EAX of the short forms).
    Fixed(Register),
    /// CL as a shift count: the case walks CL through 0..=63 systematically.
    Cl,
    /// Memory at `[EBX]` in the guest, `[RBX]` on the host (EBX is a pointer register).
    M,
    /// An 8-bit immediate (8-bit operations, bit offsets).
    I8,
    /// An 8-bit immediate sign-extended to the operand size.
    I8s,
    /// A 16-bit immediate.
    I16,
    /// A 32-bit immediate.
    I32,
    /// An imm8 shift count walking 0..=63 systematically.
    Count,
    /// The implicit count 1 of the D0/D1 shift forms.
    One,
    /// A random `[base + index*scale + disp32]` with 32-bit addressing (LEA only).
    Lea,
}

/// The string instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrOp {
    /// MOVS.
    Movs,
    /// CMPS.
    Cmps,
    /// SCAS.
    Scas,
    /// LODS.
    Lods,
    /// STOS.
    Stos,
}

/// How a form is encoded.
#[derive(Clone, Debug)]
pub enum Shape {
    /// An instruction built from its iced `Code` and operands. `host` is the code used
    /// in 64-bit mode; it differs only where the 32-bit encoding does not exist there
    /// (the one-byte INC/DEC 0x40-0x4F are REX prefixes in 64-bit mode).
    Ops {
        /// Code in 32-bit mode (the guest).
        code: Code,
        /// Code in 64-bit mode (the host).
        host: Code,
        /// Operand templates in iced operand order.
        ops: Vec<Op>,
    },
    /// A string instruction with 32-bit addressing in the guest and 64-bit on the host.
    Str {
        /// Which instruction.
        op: StrOp,
        /// Element size in bytes.
        width: u32,
        /// REP/REPE (F3), REPNE (F2) or none.
        rep: RepPrefixKind,
    },
}

/// Which parts of the result the SDM leaves undefined, as a rule over the case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undef {
    /// Everything is defined.
    None,
    /// These flags are undefined.
    Flags(u32),
    /// SHL/SAL/SHR/SAR (SDM Vol. 2 "SAL/SAR/SHL/SHR" Flags Affected): count = last
    /// operand & 0x1F; count 0 changes nothing; otherwise AF is undefined, OF is
    /// undefined unless count = 1, and for SHL/SHR (`logical`) CF is undefined when
    /// count >= the operand width.
    Shift {
        /// SHL/SHR (CF undefined for count >= width); false for SAR.
        logical: bool,
    },
    /// ROL/ROR/RCL/RCR (SDM Vol. 2 "RCL/RCR/ROL/ROR" Flags Affected): OF is undefined
    /// unless the masked count (last operand & 0x1F) is 0 or 1.
    Rotate,
    /// SHLD/SHRD (SDM Vol. 2 "SHLD"/"SHRD" Operation): count = last operand & 0x1F;
    /// count 0 changes nothing; count > width leaves the destination and all six flags
    /// undefined; otherwise AF is undefined, and OF unless count = 1.
    DoubleShift,
    /// BSF/BSR (SDM Vol. 2 "BSF"/"BSR"): CF OF SF AF PF undefined; ZF defined; the
    /// destination is undefined when the source is 0.
    BitScan,
}

/// Extra shaping of a case's random inputs (constraints and useful biases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prep {
    /// Plain random inputs.
    None,
    /// DIV/IDIV: non-zero divisor and a quotient that fits (no #DE on the host).
    Div {
        /// IDIV.
        signed: bool,
    },
    /// BT* m, r: keep the register bit offset within ±1024 bits (inside the data window).
    BtMem,
    /// CMPXCHG: make the accumulator equal to the destination half of the time.
    Cmpxchg,
    /// BSF/BSR: a zero source one case in eight.
    BitScan,
    /// String ops: small counts, pointers inside the window, data that REPE/REPNE can match.
    Str,
}

/// One instruction shape of the table.
#[derive(Clone, Debug)]
pub struct Form {
    /// Human-readable, unique name (`POPEK_DIFF_ONLY` matches substrings of it).
    pub name: String,
    /// The table group (`alu`, `shift`, `muldiv`, `bits`, `data`, `string`).
    pub group: &'static str,
    /// Encoding.
    pub shape: Shape,
    /// Destination (or element) width in bytes; 0 for forms without operands.
    pub width: u32,
    /// What the SDM leaves undefined.
    pub undef: Undef,
    /// One-line SDM reference for the undefined-flags rule.
    pub sdm: &'static str,
    /// Input shaping.
    pub prep: Prep,
    /// DF forced to this value (string forms); random otherwise.
    pub df: Option<bool>,
}

/// iced `Code` by its Rust name ("Add_rm32_r32"), so the table can be written compactly.
pub fn code(name: &str) -> Code {
    static BY_NAME: OnceLock<BTreeMap<String, Code>> = OnceLock::new();
    let map = BY_NAME.get_or_init(|| Code::values().map(|c| (format!("{c:?}"), c)).collect());
    *map.get(name).unwrap_or_else(|| panic!("no iced Code named {name}"))
}

/// Builds the table.
struct Table {
    forms: Vec<Form>,
    group: &'static str,
}

/// The eight 8-bit, 16-bit and 32-bit widths' spelling in iced `Code` names.
const WIDTHS: [u32; 3] = [8, 16, 32];

fn r(bits: u32) -> Op {
    match bits {
        8 => Op::R8,
        16 => Op::R16,
        _ => Op::R32,
    }
}

fn acc(bits: u32) -> (&'static str, Register) {
    match bits {
        8 => ("AL", Register::AL),
        16 => ("AX", Register::AX),
        _ => ("EAX", Register::EAX),
    }
}

fn imm(bits: u32) -> Op {
    match bits {
        8 => Op::I8,
        16 => Op::I16,
        _ => Op::I32,
    }
}

impl Table {
    /// Adds a form; the name and width are filled in by [`finish`](Self::finish).
    fn add(&mut self, code_name: &str, ops: &[Op], undef: Undef, sdm: &'static str, prep: Prep) {
        self.add_host(code_name, code_name, ops, undef, sdm, prep);
    }

    fn add_host(&mut self, code_name: &str, host: &str, ops: &[Op], undef: Undef, sdm: &'static str, prep: Prep) {
        self.forms.push(Form {
            name: String::new(),
            group: self.group,
            shape: Shape::Ops { code: code(code_name), host: code(host), ops: ops.to_vec() },
            width: 0,
            undef,
            sdm,
            prep,
            df: None,
        });
    }

    /// ALU: ADD OR ADC SBB AND SUB XOR CMP TEST INC DEC NEG NOT.
    fn alu(&mut self) {
        const ARITH_SDM: &str = "SDM Vol.2 ADD/ADC/SUB/SBB/CMP: OF SF ZF AF CF PF set by the result, none undefined";
        const LOGIC_SDM: &str = "SDM Vol.2 AND/OR/XOR/TEST: OF=CF=0, SF ZF PF by the result, AF undefined";
        for op in ["Add", "Or", "Adc", "Sbb", "And", "Sub", "Xor", "Cmp"] {
            let (undef, sdm) = if matches!(op, "And" | "Or" | "Xor") {
                (Undef::Flags(AF), LOGIC_SDM)
            } else {
                (Undef::None, ARITH_SDM)
            };
            for w in WIDTHS {
                let (a, areg) = acc(w);
                self.add(&format!("{op}_rm{w}_r{w}"), &[r(w), r(w)], undef, sdm, Prep::None);
                self.add(&format!("{op}_rm{w}_r{w}"), &[Op::M, r(w)], undef, sdm, Prep::None);
                self.add(&format!("{op}_r{w}_rm{w}"), &[r(w), r(w)], undef, sdm, Prep::None);
                self.add(&format!("{op}_r{w}_rm{w}"), &[r(w), Op::M], undef, sdm, Prep::None);
                self.add(&format!("{op}_{a}_imm{w}"), &[Op::Fixed(areg), imm(w)], undef, sdm, Prep::None);
                self.add(&format!("{op}_rm{w}_imm{w}"), &[r(w), imm(w)], undef, sdm, Prep::None);
                self.add(&format!("{op}_rm{w}_imm{w}"), &[Op::M, imm(w)], undef, sdm, Prep::None);
                if w != 8 {
                    self.add(&format!("{op}_rm{w}_imm8"), &[r(w), Op::I8s], undef, sdm, Prep::None);
                    self.add(&format!("{op}_rm{w}_imm8"), &[Op::M, Op::I8s], undef, sdm, Prep::None);
                }
            }
        }
        for w in WIDTHS {
            let (a, areg) = acc(w);
            let undef = Undef::Flags(AF);
            self.add(&format!("Test_rm{w}_r{w}"), &[r(w), r(w)], undef, LOGIC_SDM, Prep::None);
            self.add(&format!("Test_rm{w}_r{w}"), &[Op::M, r(w)], undef, LOGIC_SDM, Prep::None);
            self.add(&format!("Test_{a}_imm{w}"), &[Op::Fixed(areg), imm(w)], undef, LOGIC_SDM, Prep::None);
            self.add(&format!("Test_rm{w}_imm{w}"), &[r(w), imm(w)], undef, LOGIC_SDM, Prep::None);
            self.add(&format!("Test_rm{w}_imm{w}"), &[Op::M, imm(w)], undef, LOGIC_SDM, Prep::None);
        }
        const INC_SDM: &str = "SDM Vol.2 INC/DEC: CF unaffected; OF SF ZF AF PF by the result, none undefined";
        const NEG_SDM: &str = "SDM Vol.2 NEG: CF = (src != 0); OF SF ZF AF PF by the result, none undefined";
        const NOT_SDM: &str = "SDM Vol.2 NOT: no flags affected";
        for w in WIDTHS {
            for (op, sdm) in [("Inc", INC_SDM), ("Dec", INC_SDM), ("Neg", NEG_SDM), ("Not", NOT_SDM)] {
                self.add(&format!("{op}_rm{w}"), &[r(w)], Undef::None, sdm, Prep::None);
                self.add(&format!("{op}_rm{w}"), &[Op::M], Undef::None, sdm, Prep::None);
            }
        }
        for w in [16, 32] {
            for op in ["Inc", "Dec"] {
                // 0x40-0x4F: the host (64-bit mode) runs the equivalent FF /0, FF /1.
                let (guest, host) = (format!("{op}_r{w}"), format!("{op}_rm{w}"));
                self.add_host(&guest, &host, &[r(w)], Undef::None, INC_SDM, Prep::None);
            }
        }
    }

    /// Shifts and rotates, SHLD/SHRD.
    fn shift(&mut self) {
        const SH_SDM: &str = "SDM Vol.2 SAL/SAR/SHL/SHR: count 0 no flags; else AF undef, OF undef if count!=1, CF undef SHL/SHR count>=width";
        const ROT_SDM: &str =
            "SDM Vol.2 RCL/RCR/ROL/ROR: only CF/OF affected; OF undefined unless masked count is 0 or 1";
        const DSH_SDM: &str =
            "SDM Vol.2 SHLD/SHRD: count 0 no flags; count>width dest+flags undef; else AF undef, OF undef if count!=1";
        for op in ["Rol", "Ror", "Rcl", "Rcr", "Shl", "Shr", "Sar"] {
            let (undef, sdm) = match op {
                "Shl" | "Shr" => (Undef::Shift { logical: true }, SH_SDM),
                "Sar" => (Undef::Shift { logical: false }, SH_SDM),
                _ => (Undef::Rotate, ROT_SDM),
            };
            for w in WIDTHS {
                self.add(&format!("{op}_rm{w}_1"), &[r(w), Op::One], undef, sdm, Prep::None);
                self.add(&format!("{op}_rm{w}_imm8"), &[r(w), Op::Count], undef, sdm, Prep::None);
                self.add(&format!("{op}_rm{w}_CL"), &[r(w), Op::Cl], undef, sdm, Prep::None);
                self.add(&format!("{op}_rm{w}_CL"), &[Op::M, Op::Cl], undef, sdm, Prep::None);
            }
        }
        for op in ["Shld", "Shrd"] {
            for w in [16, 32] {
                let u = Undef::DoubleShift;
                self.add(&format!("{op}_rm{w}_r{w}_imm8"), &[r(w), r(w), Op::Count], u, DSH_SDM, Prep::None);
                self.add(&format!("{op}_rm{w}_r{w}_CL"), &[r(w), r(w), Op::Cl], u, DSH_SDM, Prep::None);
                self.add(&format!("{op}_rm{w}_r{w}_CL"), &[Op::M, r(w), Op::Cl], u, DSH_SDM, Prep::None);
            }
        }
    }

    /// MUL, IMUL (1, 2 and 3 operands), DIV, IDIV.
    fn muldiv(&mut self) {
        const MUL_SDM: &str = "SDM Vol.2 MUL/IMUL: OF=CF by the high half; SF ZF AF PF undefined";
        const DIV_SDM: &str = "SDM Vol.2 DIV/IDIV: CF OF SF ZF AF PF undefined";
        let mul = Undef::Flags(SF | ZF | AF | PF);
        let div = Undef::Flags(ARITH);
        for w in WIDTHS {
            for (op, undef, sdm, prep) in [
                ("Mul", mul, MUL_SDM, Prep::None),
                ("Imul", mul, MUL_SDM, Prep::None),
                ("Div", div, DIV_SDM, Prep::Div { signed: false }),
                ("Idiv", div, DIV_SDM, Prep::Div { signed: true }),
            ] {
                self.add(&format!("{op}_rm{w}"), &[r(w)], undef, sdm, prep);
                self.add(&format!("{op}_rm{w}"), &[Op::M], undef, sdm, prep);
            }
        }
        for w in [16, 32] {
            self.add(&format!("Imul_r{w}_rm{w}"), &[r(w), r(w)], mul, MUL_SDM, Prep::None);
            self.add(&format!("Imul_r{w}_rm{w}"), &[r(w), Op::M], mul, MUL_SDM, Prep::None);
            self.add(&format!("Imul_r{w}_rm{w}_imm8"), &[r(w), r(w), Op::I8s], mul, MUL_SDM, Prep::None);
            self.add(&format!("Imul_r{w}_rm{w}_imm8"), &[r(w), Op::M, Op::I8s], mul, MUL_SDM, Prep::None);
            self.add(&format!("Imul_r{w}_rm{w}_imm{w}"), &[r(w), r(w), imm(w)], mul, MUL_SDM, Prep::None);
            self.add(&format!("Imul_r{w}_rm{w}_imm{w}"), &[r(w), Op::M, imm(w)], mul, MUL_SDM, Prep::None);
        }
    }

    /// BT BTS BTR BTC, BSF BSR, BSWAP, SETcc, XADD, CMPXCHG.
    fn bits(&mut self) {
        const BT_SDM: &str = "SDM Vol.2 BT/BTS/BTR/BTC: CF = the bit; ZF unaffected; OF SF AF PF undefined";
        const BS_SDM: &str = "SDM Vol.2 BSF/BSR: ZF = (src == 0); CF OF SF AF PF undefined; dest undefined if src == 0";
        let bt = Undef::Flags(OF | SF | AF | PF);
        for op in ["Bt", "Bts", "Btr", "Btc"] {
            for w in [16, 32] {
                self.add(&format!("{op}_rm{w}_r{w}"), &[r(w), r(w)], bt, BT_SDM, Prep::None);
                self.add(&format!("{op}_rm{w}_r{w}"), &[Op::M, r(w)], bt, BT_SDM, Prep::BtMem);
                self.add(&format!("{op}_rm{w}_imm8"), &[r(w), Op::I8], bt, BT_SDM, Prep::None);
                self.add(&format!("{op}_rm{w}_imm8"), &[Op::M, Op::I8], bt, BT_SDM, Prep::None);
            }
        }
        for op in ["Bsf", "Bsr"] {
            for w in [16, 32] {
                self.add(&format!("{op}_r{w}_rm{w}"), &[r(w), r(w)], Undef::BitScan, BS_SDM, Prep::BitScan);
                self.add(&format!("{op}_r{w}_rm{w}"), &[r(w), Op::M], Undef::BitScan, BS_SDM, Prep::BitScan);
            }
        }
        self.add("Bswap_r32", &[Op::R32], Undef::None, "SDM Vol.2 BSWAP: no flags affected", Prep::None);
        const SET_SDM: &str = "SDM Vol.2 SETcc: no flags affected";
        for cc in CONDITIONS {
            self.add(&format!("Set{cc}_rm8"), &[Op::R8], Undef::None, SET_SDM, Prep::None);
            self.add(&format!("Set{cc}_rm8"), &[Op::M], Undef::None, SET_SDM, Prep::None);
        }
        const XADD_SDM: &str = "SDM Vol.2 XADD: flags as ADD, none undefined";
        const CX_SDM: &str = "SDM Vol.2 CMPXCHG: flags as CMP, none undefined";
        for w in WIDTHS {
            self.add(&format!("Xadd_rm{w}_r{w}"), &[r(w), r(w)], Undef::None, XADD_SDM, Prep::None);
            self.add(&format!("Xadd_rm{w}_r{w}"), &[Op::M, r(w)], Undef::None, XADD_SDM, Prep::None);
            self.add(&format!("Cmpxchg_rm{w}_r{w}"), &[r(w), r(w)], Undef::None, CX_SDM, Prep::Cmpxchg);
            self.add(&format!("Cmpxchg_rm{w}_r{w}"), &[Op::M, r(w)], Undef::None, CX_SDM, Prep::Cmpxchg);
        }
    }

    /// Data movement: CMOVcc, MOV, MOVZX/MOVSX, LEA, XCHG, CBW/CWDE/CWD/CDQ, flag ops.
    fn data(&mut self) {
        const CMOV_SDM: &str = "SDM Vol.2 CMOVcc: no flags affected";
        for cc in CONDITIONS {
            self.add(&format!("Cmov{cc}_r32_rm32"), &[Op::R32, Op::R32], Undef::None, CMOV_SDM, Prep::None);
            self.add(&format!("Cmov{cc}_r16_rm16"), &[Op::R16, Op::M], Undef::None, CMOV_SDM, Prep::None);
        }
        const MOV_SDM: &str = "SDM Vol.2 MOV/MOVZX/MOVSX/LEA/XCHG: no flags affected";
        for (name, ops) in [
            ("Mov_rm8_r8", &[Op::R8, Op::R8][..]),
            ("Mov_rm8_r8", &[Op::M, Op::R8]),
            ("Mov_r8_rm8", &[Op::R8, Op::M]),
            ("Mov_rm16_r16", &[Op::M, Op::R16]),
            ("Mov_rm32_r32", &[Op::R32, Op::R32]),
            ("Mov_rm32_r32", &[Op::M, Op::R32]),
            ("Mov_r32_rm32", &[Op::R32, Op::M]),
            ("Mov_r8_imm8", &[Op::R8, Op::I8]),
            ("Mov_r16_imm16", &[Op::R16, Op::I16]),
            ("Mov_r32_imm32", &[Op::R32, Op::I32]),
            ("Mov_rm32_imm32", &[Op::M, Op::I32]),
        ] {
            self.add(name, ops, Undef::None, MOV_SDM, Prep::None);
        }
        for op in ["Movzx", "Movsx"] {
            for (d, s) in [(16, 8), (32, 8), (32, 16)] {
                self.add(&format!("{op}_r{d}_rm{s}"), &[r(d), r(s)], Undef::None, MOV_SDM, Prep::None);
                self.add(&format!("{op}_r{d}_rm{s}"), &[r(d), Op::M], Undef::None, MOV_SDM, Prep::None);
            }
        }
        self.add("Lea_r32_m", &[Op::R32, Op::Lea], Undef::None, MOV_SDM, Prep::None);
        self.add("Lea_r16_m", &[Op::R16, Op::Lea], Undef::None, MOV_SDM, Prep::None);
        for w in WIDTHS {
            self.add(&format!("Xchg_rm{w}_r{w}"), &[r(w), r(w)], Undef::None, MOV_SDM, Prep::None);
            self.add(&format!("Xchg_rm{w}_r{w}"), &[Op::M, r(w)], Undef::None, MOV_SDM, Prep::None);
        }
        self.add("Xchg_r16_AX", &[Op::R16, Op::Fixed(Register::AX)], Undef::None, MOV_SDM, Prep::None);
        self.add("Xchg_r32_EAX", &[Op::R32, Op::Fixed(Register::EAX)], Undef::None, MOV_SDM, Prep::None);
        const CONV_SDM: &str = "SDM Vol.2 CBW/CWDE/CWD/CDQ: no flags affected";
        for name in ["Cbw", "Cwde", "Cwd", "Cdq"] {
            self.add(name, &[], Undef::None, CONV_SDM, Prep::None);
        }
        const FLAG_SDM: &str = "SDM Vol.2 CLC/STC/CMC/CLD/STD: only CF (or DF) affected";
        for name in ["Clc", "Stc", "Cmc", "Cld", "Std"] {
            self.add(name, &[], Undef::None, FLAG_SDM, Prep::None);
        }
    }

    /// MOVS CMPS SCAS LODS STOS, with and without REP/REPE/REPNE, DF = 0 and 1.
    fn string(&mut self) {
        const STR_SDM: &str = "SDM Vol.2 MOVS/LODS/STOS: no flags; CMPS/SCAS: flags as CMP, none undefined";
        let plain_rep = [RepPrefixKind::None, RepPrefixKind::Repe];
        let cond_rep = [RepPrefixKind::None, RepPrefixKind::Repe, RepPrefixKind::Repne];
        for (op, reps) in [
            (StrOp::Movs, &plain_rep[..]),
            (StrOp::Cmps, &cond_rep[..]),
            (StrOp::Scas, &cond_rep[..]),
            (StrOp::Lods, &plain_rep[..]),
            (StrOp::Stos, &plain_rep[..]),
        ] {
            for &rep in reps {
                for width in [1, 2, 4] {
                    for df in [false, true] {
                        let base = format!("{op:?}").to_lowercase();
                        let suffix = match width {
                            1 => 'b',
                            2 => 'w',
                            _ => 'd',
                        };
                        let prefix = match (rep, op) {
                            (RepPrefixKind::None, _) => "",
                            (RepPrefixKind::Repne, _) => "repne ",
                            (_, StrOp::Cmps | StrOp::Scas) => "repe ",
                            _ => "rep ",
                        };
                        self.forms.push(Form {
                            name: format!("{prefix}{base}{suffix} df={}", df as u8),
                            group: self.group,
                            shape: Shape::Str { op, width, rep },
                            width,
                            undef: Undef::None,
                            sdm: STR_SDM,
                            prep: Prep::Str,
                            df: Some(df),
                        });
                    }
                }
            }
        }
    }
}

/// The 16 condition codes as spelled in iced `Code` names.
pub const CONDITIONS: [&str; 16] =
    ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];

/// Every form of the table, in a fixed order, with unique names.
pub fn table() -> Vec<Form> {
    let mut t = Table { forms: Vec::new(), group: "" };
    type Group = (&'static str, fn(&mut Table));
    let groups: [Group; 6] = [
        ("alu", Table::alu),
        ("shift", Table::shift),
        ("muldiv", Table::muldiv),
        ("bits", Table::bits),
        ("data", Table::data),
        ("string", Table::string),
    ];
    for (name, build) in groups {
        t.group = name;
        build(&mut t);
    }
    for form in &mut t.forms {
        if let Shape::Ops { code, ops, .. } = &form.shape {
            form.name = crate::case::describe(*code, ops);
            form.width = crate::case::dest_width(*code, ops);
        }
    }
    // Two opcodes with the same operand shape (01 /r and 03 /r with two registers, FF /0
    // and 40+r) read alike: the first keeps the plain name, the others get their iced Code.
    let mut seen = BTreeSet::new();
    for form in &mut t.forms {
        if !seen.insert(form.name.clone())
            && let Shape::Ops { code, .. } = &form.shape
        {
            form.name = format!("{} [{code:?}]", form.name);
        }
    }
    t.forms
}

/// The name of the flags in `f`, e.g. "CF ZF".
pub fn flag_names(f: u32) -> String {
    use popek_cpu::state::flags::DF;
    let names = [(CF, "CF"), (PF, "PF"), (AF, "AF"), (ZF, "ZF"), (SF, "SF"), (DF, "DF"), (OF, "OF")];
    let v: Vec<&str> = names.iter().filter(|(bit, _)| f & bit != 0).map(|(_, n)| *n).collect();
    if v.is_empty() { "-".into() } else { v.join(" ") }
}
