//! Undefined outputs (SDM Vol. 1 Appendix A, and each instruction page's "Flags Affected"):
//! what popek gives every flag and register result the SDM leaves undefined.
//!
//! Real CPUs differ here: Intel and AMD make different choices, and so do generations of
//! each. popek's guests must see the same thing on every host, so the choice is popek's,
//! written once in [`TABLE`]:
//! - the interpreter computes these outputs with the functions below ([`of_left`],
//!   [`of_right`], [`low_half_szp`]) or as the table's [`Choice`] says;
//! - the translator runs some instructions as host twins, whose undefined outputs come
//!   from the host; it fixes each one up to the table's choice (`popek-jit`'s `FlagFix`,
//!   derived from [`choice`]), and a test checks that every undefined flag iced-x86
//!   reports for every twin form is covered.
//!
//! The choices follow Bochs's model of Intel P6-and-later CPUs, which QEMU's TCG also
//! implements for all of them but the multiply flags.

use popek_cpu::iced_x86::Mnemonic;
use popek_cpu::operand::sign_bit;
use popek_cpu::state::flags::{AF, CF, OF, PF, SF, ZF};

/// What popek gives an undefined output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// The flag reads 0.
    Clear,
    /// The flag (or register) keeps the value it had before the instruction.
    Unchanged,
    /// OF = CF XOR MSB(result): the count-1 definition of the left shifts and rotates,
    /// applied to every count ([`of_left`]).
    OfLeft,
    /// OF = MSB(result) XOR MSB-1(result): the count-1 definition of the right shifts and
    /// rotates, applied to every count ([`of_right`]).
    OfRight,
    /// SF, ZF and PF of the low half of the product, as a TEST of it would set them
    /// ([`low_half_szp`]).
    LowHalf,
    /// A register result, described in the entry's `when`.
    Result,
}

/// One entry of [`TABLE`].
#[derive(Clone, Copy, Debug)]
pub struct Undefined {
    /// The instructions it applies to.
    pub mnemonics: &'static [Mnemonic],
    /// The flags (x86 EFLAGS bits) it fixes; 0 for a register result.
    pub flags: u32,
    /// When the SDM leaves them undefined.
    pub when: &'static str,
    /// popek's choice.
    pub choice: Choice,
    /// What real CPUs and other emulators do.
    pub cpus: &'static str,
}

use Mnemonic::*;

/// Every undefined output popek fixes, with its choice.
pub static TABLE: &[Undefined] = &[
    Undefined {
        mnemonics: &[And, Or, Xor, Test],
        flags: AF,
        when: "always",
        choice: Choice::Clear,
        cpus: "AMD Zen clears it (measured on the development host); Bochs and QEMU clear it",
    },
    Undefined {
        mnemonics: &[Shl, Sal, Shr, Sar, Shld, Shrd],
        flags: AF,
        when: "a non-zero masked count",
        choice: Choice::Clear,
        cpus: "AMD Zen sets it (measured on the development host); Bochs and QEMU clear it",
    },
    Undefined {
        mnemonics: &[Shl, Sal, Shld, Rol, Rcl],
        flags: OF,
        when: "a masked count other than 1",
        choice: Choice::OfLeft,
        cpus: "AMD Zen agrees (measured); Intel differs on rotates (ROL of a word by 23 leaves OF \
               clear where this formula sets it); QEMU and Bochs use this formula",
    },
    Undefined {
        mnemonics: &[Shr, Shrd, Ror, Rcr],
        flags: OF,
        when: "a masked count other than 1",
        choice: Choice::OfRight,
        cpus: "AMD Zen agrees (measured); QEMU and Bochs use this formula (for SHR by 2 or more \
               it is always 0)",
    },
    Undefined {
        mnemonics: &[Sar],
        flags: OF,
        when: "a masked count other than 1 (the SDM clears it for 1)",
        choice: Choice::Clear,
        cpus: "AMD Zen agrees (measured); QEMU and Bochs clear it",
    },
    Undefined {
        mnemonics: &[Shl, Sal, Shr],
        flags: CF,
        when: "a count of at least the operand width (8- and 16-bit operands)",
        choice: Choice::Result,
        cpus: "the bit a wider shift would move out, i.e. 0: P6 and later (Bochs); the translator \
               never runs these as twins",
    },
    Undefined {
        mnemonics: &[Mul, Imul],
        flags: SF | ZF | PF,
        when: "always",
        choice: Choice::LowHalf,
        cpus: "Bochs's Intel model; AMD Zen computes them otherwise (agrees on about 1 input in 8, \
               measured); QEMU derives them from its own lazy flag state",
    },
    Undefined {
        mnemonics: &[Mul, Imul],
        flags: AF,
        when: "always",
        choice: Choice::Clear,
        cpus: "Bochs clears it; AMD Zen sets it about half the time (measured)",
    },
    Undefined {
        mnemonics: &[Div, Idiv],
        flags: CF | PF | AF | ZF | SF | OF,
        when: "always",
        choice: Choice::Unchanged,
        cpus: "CPUs differ by generation; Bochs leaves them; never a twin",
    },
    Undefined {
        mnemonics: &[Bt, Bts, Btr, Btc],
        flags: OF | SF | AF | PF,
        when: "always",
        choice: Choice::Unchanged,
        cpus: "P6 and later leave them (Bochs); never a twin",
    },
    Undefined {
        mnemonics: &[Bsf, Bsr],
        flags: CF | OF | SF | AF | PF,
        when: "always",
        choice: Choice::Unchanged,
        cpus: "Intel and AMD leave them in practice (Bochs); never a twin",
    },
    Undefined {
        mnemonics: &[Bsf, Bsr],
        flags: 0,
        when: "a zero source: the destination is left unchanged",
        choice: Choice::Result,
        cpus: "AMD documents it; Intel CPUs do it (Linux relies on it); never a twin",
    },
    Undefined {
        mnemonics: &[Daa, Das],
        flags: OF,
        when: "always",
        choice: Choice::Clear,
        cpus: "Bochs clears it; never a twin",
    },
    Undefined {
        mnemonics: &[Aaa, Aas],
        flags: OF | SF | ZF | PF,
        when: "always",
        choice: Choice::Unchanged,
        cpus: "Bochs leaves them; never a twin",
    },
    Undefined {
        mnemonics: &[Aam, Aad],
        flags: OF | AF | CF,
        when: "always",
        choice: Choice::Clear,
        cpus: "Bochs clears them; never a twin",
    },
    Undefined {
        mnemonics: &[Shld, Shrd],
        flags: 0,
        when: "16-bit operands and a count of 17 to 31: the result and CF of the 48-bit shift \
               of dst:src:src (SHLD) or dst:src:dst (SHRD)",
        choice: Choice::Result,
        cpus: "P6 and later (Bochs); never a twin",
    },
    Undefined {
        mnemonics: &[Bswap],
        flags: 0,
        when: "a 16-bit operand: the register is cleared",
        choice: Choice::Result,
        cpus: "Intel and Bochs clear it; never a twin",
    },
];

/// popek's choice for `flag` (one x86 EFLAGS bit) after `m`, where the SDM leaves it undefined.
pub fn choice(m: Mnemonic, flag: u32) -> Option<Choice> {
    TABLE.iter().find(|u| u.flags & flag != 0 && u.mnemonics.contains(&m)).map(|u| u.choice)
}

/// [`Choice::OfLeft`]: OF = CF XOR MSB of the `width`-byte result `r` (`cf` is 0 or 1).
#[inline]
pub fn of_left(r: u32, cf: u32, width: u32) -> u32 {
    if (cf != 0) != (r & sign_bit(width) != 0) { OF } else { 0 }
}

/// [`Choice::OfRight`]: OF = the two most significant bits of the `width`-byte result `r`
/// XORed.
#[inline]
pub fn of_right(r: u32, width: u32) -> u32 {
    if (r ^ (r << 1)) & sign_bit(width) != 0 { OF } else { 0 }
}

/// [`Choice::LowHalf`]: SF, ZF and PF of the `width`-byte low half `lo` of a product.
#[inline]
pub fn low_half_szp(lo: u32, width: u32) -> u32 {
    crate::flags::szp(lo, width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_flag_of_each_mnemonic_has_one_choice() {
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                for m in a.mnemonics {
                    assert!(
                        !b.mnemonics.contains(m) || a.flags & b.flags == 0,
                        "{m:?}: two entries fix the same flag ({:#x}, {:#x})",
                        a.flags,
                        b.flags
                    );
                }
            }
        }
    }

    #[test]
    fn formulas() {
        // shl al, 2 of 0x70 → 0xc0, CF=1: OF = 1 ^ 1 = 0; of 0x30 → 0xc0, CF=0: OF = 1.
        assert_eq!(of_left(0xc0, 1, 1), 0);
        assert_eq!(of_left(0xc0, 0, 1), OF);
        // ror eax: 0x4000_0000 → MSB 0, MSB-1 1: OF.
        assert_eq!(of_right(0x4000_0000, 4), OF);
        assert_eq!(of_right(0xc000_0000, 4), 0);
        assert_eq!(low_half_szp(0x80, 1), SF);
        assert_eq!(choice(Rol, OF), Some(Choice::OfLeft));
        assert_eq!(choice(Sar, OF), Some(Choice::Clear));
        assert_eq!(choice(Add, AF), None, "ADD defines AF");
    }
}
