//! Condition codes of Jcc, SETcc and CMOVcc (SDM Vol. 1 Appendix B, "EFLAGS Condition Codes").

use popek_cpu::iced_x86::ConditionCode;
use popek_cpu::state::flags::{CF, OF, PF, SF, ZF};

/// Every condition code, indexed by its `u8` value (for handlers that take the
/// condition as a const generic).
pub(crate) const ALL: [ConditionCode; 17] = {
    use ConditionCode as C;
    let all = [
        C::None,
        C::o,
        C::no,
        C::b,
        C::ae,
        C::e,
        C::ne,
        C::be,
        C::a,
        C::s,
        C::ns,
        C::p,
        C::np,
        C::l,
        C::ge,
        C::le,
        C::g,
    ];
    let mut i = 0;
    while i < all.len() {
        assert!(all[i] as usize == i, "ConditionCode values are 0..=16 in this order");
        i += 1;
    }
    all
};

/// True if condition `cc` holds for `eflags`. `ConditionCode::None` (an instruction
/// without a condition) always holds.
#[inline]
pub(crate) fn holds(eflags: u32, cc: ConditionCode) -> bool {
    let set = |bit: u32| eflags & bit != 0;
    let less = set(SF) != set(OF);
    match cc {
        ConditionCode::None => true,
        ConditionCode::o => set(OF),
        ConditionCode::no => !set(OF),
        ConditionCode::b => set(CF),
        ConditionCode::ae => !set(CF),
        ConditionCode::e => set(ZF),
        ConditionCode::ne => !set(ZF),
        ConditionCode::be => set(CF) || set(ZF),
        ConditionCode::a => !set(CF) && !set(ZF),
        ConditionCode::s => set(SF),
        ConditionCode::ns => !set(SF),
        ConditionCode::p => set(PF),
        ConditionCode::np => !set(PF),
        ConditionCode::l => less,
        ConditionCode::ge => !less,
        ConditionCode::le => set(ZF) || less,
        ConditionCode::g => !set(ZF) && !less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use popek_cpu::iced_x86::ConditionCode as C;

    /// Every condition against the SDM's table (Vol. 1 B.1), with flag patterns that
    /// make each one true and false.
    #[test]
    fn sdm_condition_table() {
        #[rustfmt::skip]
        let table: &[(u32, C, bool)] = &[
            (OF, C::o, true), (0, C::o, false), (ZF | CF | SF | PF, C::o, false),
            (0, C::no, true), (OF, C::no, false),
            (CF, C::b, true), (ZF, C::b, false),
            (ZF, C::ae, true), (CF, C::ae, false),
            (ZF, C::e, true), (CF | SF, C::e, false),
            (CF, C::ne, true), (ZF, C::ne, false),
            (CF, C::be, true), (ZF, C::be, true), (CF | ZF, C::be, true), (SF | OF | PF, C::be, false),
            (0, C::a, true), (SF | OF, C::a, true), (CF, C::a, false), (ZF, C::a, false),
            (SF, C::s, true), (ZF | OF, C::s, false),
            (0, C::ns, true), (SF, C::ns, false),
            (PF, C::p, true), (ZF, C::p, false),
            (CF, C::np, true), (PF, C::np, false),
            (SF, C::l, true), (OF, C::l, true), (SF | OF, C::l, false), (ZF, C::l, false),
            (0, C::ge, true), (SF | OF, C::ge, true), (SF, C::ge, false), (OF, C::ge, false),
            (ZF, C::le, true), (SF, C::le, true), (OF, C::le, true), (ZF | SF | OF, C::le, true),
            (SF | OF, C::le, false), (CF, C::le, false),
            (0, C::g, true), (SF | OF, C::g, true), (ZF, C::g, false), (SF, C::g, false), (OF, C::g, false),
            (0, C::None, true), (ZF | SF, C::None, true),
        ];
        for &(flags, cc, want) in table {
            assert_eq!(holds(flags | 2, cc), want, "flags {flags:#x} cc {cc:?}");
        }
    }

    /// Each condition and its negation (the odd/even pairs of the encoding) disagree
    /// for every combination of the five flags involved.
    #[test]
    fn pairs_are_complements() {
        let pairs = [
            (C::o, C::no),
            (C::b, C::ae),
            (C::e, C::ne),
            (C::be, C::a),
            (C::s, C::ns),
            (C::p, C::np),
            (C::l, C::ge),
            (C::le, C::g),
        ];
        for bits in 0..32u32 {
            let f = [CF, PF, ZF, SF, OF]
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .fold(0, |a, (_, b)| a | b);
            for (cc, negated) in pairs {
                assert_ne!(holds(f, cc), holds(f, negated), "flags {f:#x} {cc:?}/{negated:?}");
            }
        }
    }
}
