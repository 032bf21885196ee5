//! Instruction → handler, chosen once per instruction when its block is decoded.

use popek_cpu::exception::{Exception, Unsupported};
use popek_cpu::iced_x86::{Formatter, Instruction, IntelFormatter, Mnemonic};
use popek_cpu::{Bus, Cpu, ExecResult, Handler};

/// The handler that executes `insn`: a VMM handler for sensitive instructions,
/// an interpreter group handler otherwise, #UD for invalid encodings, and an
/// "unsupported" error for anything popek does not implement.
pub fn handler_for(insn: &Instruction) -> Handler {
    classify(insn).1
}

/// Which group claims `insn` (`"vmm"`, `"alu"`, …, `"invalid"`, `"unsupported"`) and its handler.
pub fn classify(insn: &Instruction) -> (&'static str, Handler) {
    if insn.is_invalid() || undefined_here(insn) {
        return ("invalid", invalid_opcode);
    }
    GROUPS.iter().find_map(|&(name, lookup)| lookup(insn).map(|h| (name, h))).unwrap_or(("unsupported", unsupported))
}

/// True if popek implements `insn` (it is not routed to the "unsupported" handler).
pub fn is_supported(insn: &Instruction) -> bool {
    classify(insn).0 != "unsupported"
}

/// Instructions iced-x86 decodes that popek's CPU does not have and answers with #UD:
/// - POPCNT (F3 0F B8), "#UD if CPUID.01H:ECX.POPCNT [bit 23] = 0" (SDM Vol. 2B, POPCNT),
///   and popek's CPUID reports ECX = 0;
/// - the VMX instructions (VMXON, VMREAD, …): "#UD if executed outside VMX
///   operation" (SDM Vol. 3C 31.3, "VMX Instructions"), and VMXON itself is #UD when
///   CPUID.1:ECX.VMX is 0; and AMD's SVM instructions (VMMCALL, VMRUN, …), #UD when
///   EFER.SVME is 0. Guests that test for a hypervisor call one of these and expect #UD.
///   VMCALL is the VMM's: popek's hypercall while the paravirtual interface is on, and
///   #UD like the others while it is off (`popek_vmm::hypercall`);
/// - FISTTP (SSE3: CPUID.1:ECX.SSE3 is not reported).
///
/// (The other F3-prefixed encodings newer CPUs gave a meaning run as a P6 runs them: see
/// [`popek_cpu::block::DECODER_OPTIONS`] and the hint NOPs in `data`.)
fn undefined_here(insn: &Instruction) -> bool {
    use popek_cpu::iced_x86::CpuidFeature;
    insn.mnemonic() == Mnemonic::Popcnt
        || (insn.mnemonic() != Mnemonic::Vmcall
            && insn.cpuid_features().iter().any(|f| matches!(f, CpuidFeature::VMX | CpuidFeature::SVM)))
        || crate::x87::undefined_here(insn)
}

type Lookup = fn(&Instruction) -> Option<Handler>;

/// The instruction groups, asked in order: sensitive instructions go to the VMM first.
const GROUPS: [(&str, Lookup); 11] = [
    ("vmm", popek_vmm::lookup),
    ("alu", crate::alu::lookup),
    ("data", crate::data::lookup),
    ("shift", crate::shift::lookup),
    ("muldiv", crate::muldiv::lookup),
    ("bits", crate::bits::lookup),
    ("bcd", crate::bcd::lookup),
    ("control", crate::control::lookup),
    ("stack", crate::stack::lookup),
    ("string", crate::string::lookup),
    ("x87", crate::x87::lookup),
];

fn invalid_opcode(_: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    Err(Exception::InvalidOpcode.into())
}

fn unsupported(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let mut text = String::new();
    IntelFormatter::new().format(insn, &mut text);
    Err(Unsupported {
        what: format!("instruction `{text}`"),
        eip: cpu.state.eip.wrapping_sub(insn.len() as u32),
        bytes: Vec::new(),
    }
    .into())
}

/// Encodings a newer CPU reads differently from popek's (a P6 without BMI1, LZCNT,
/// POPCNT or CET): bytes in, the state a P6 leaves out.
#[cfg(test)]
mod tests {
    use crate::data::tests::{Case, F, M, R, run_cases};
    use crate::testing::{DATA_BASE, TestBox};
    use popek_cpu::exception::{Event, Exception};
    use popek_cpu::iced_x86::{Decoder, Mnemonic};
    use popek_cpu::state::flags::{ARITH, CF, DF, FIXED1, ZF};
    use popek_cpu::state::gpr::*;

    const D: u32 = DATA_BASE;

    /// TZCNT/LZCNT encodings run as BSF/BSR: the F3 prefix is ignored. The inputs are the
    /// ones where the two differ (bit 0 or bit 31 set, zero); CF is left alone by BSF/BSR
    /// (TZCNT/LZCNT would compute it).
    #[test]
    fn tzcnt_and_lzcnt_encodings_run_as_bsf_and_bsr() {
        const OTHERS: u32 = ARITH & !(ZF | CF);
        run_cases(&[
            Case {
                name: "f3 0f bc: bsf eax,ebx of 1 (tzcnt: ZF=1)",
                bytes: &[0xf3, 0x0f, 0xbc, 0xc3],
                init: &[R(EAX, 0x1234), R(EBX, 1), F(OTHERS, 0)],
                expect: &[R(EAX, 0), F(ARITH, OTHERS)],
            },
            Case {
                name: "f3 0f bc: bsf eax,ebx of 0x80",
                bytes: &[0xf3, 0x0f, 0xbc, 0xc3],
                init: &[R(EAX, 0x1234), R(EBX, 0x80), F(ZF | CF, 0)],
                expect: &[R(EAX, 7), F(ZF | CF, CF)],
            },
            Case {
                name: "f3 0f bc: bsf eax,ebx of 0 (tzcnt: EAX=32, CF=1)",
                bytes: &[0xf3, 0x0f, 0xbc, 0xc3],
                init: &[R(EAX, 0x1234), R(EBX, 0), F(0, 0)],
                expect: &[R(EAX, 0x1234), F(ZF | CF, ZF)],
            },
            Case {
                name: "f3 0f bd: bsr eax,ebx of 1 (lzcnt: 31)",
                bytes: &[0xf3, 0x0f, 0xbd, 0xc3],
                init: &[R(EAX, 0x1234), R(EBX, 1), F(ZF, 0)],
                expect: &[R(EAX, 0), F(ZF, 0)],
            },
            Case {
                name: "f3 0f bd: bsr eax,ebx of 0x8000_0000 (lzcnt: 0, ZF=1)",
                bytes: &[0xf3, 0x0f, 0xbd, 0xc3],
                init: &[R(EAX, 0x1234), R(EBX, 0x8000_0000), F(CF, 0)],
                expect: &[R(EAX, 31), F(ZF | CF, CF)],
            },
            Case {
                name: "f3 0f bd: bsr eax,ebx of 0 (lzcnt: EAX=32, CF=1)",
                bytes: &[0xf3, 0x0f, 0xbd, 0xc3],
                init: &[R(EAX, 0x1234), R(EBX, 0), F(0, 0)],
                expect: &[R(EAX, 0x1234), F(ZF | CF, ZF)],
            },
            Case {
                name: "66 f3 0f bc: bsf ax,bx",
                bytes: &[0x66, 0xf3, 0x0f, 0xbc, 0xc3],
                init: &[R(EAX, 0xdead_1234), R(EBX, 0x0100)],
                expect: &[R(EAX, 0xdead_0008), F(ZF, 0)],
            },
            Case {
                name: "f3 0f bc: bsf eax,[ebx]",
                bytes: &[0xf3, 0x0f, 0xbc, 0x03],
                init: &[R(EBX, D), M(D, 0x0001_0000)],
                expect: &[R(EAX, 16), F(ZF, 0)],
            },
            Case {
                name: "f2 0f bd: bsr eax,ebx (F2 ignored too)",
                bytes: &[0xf2, 0x0f, 0xbd, 0xc3],
                init: &[R(EBX, 0x10)],
                expect: &[R(EAX, 4), F(ZF, 0)],
            },
        ]);
    }

    /// The hint-NOP space 0F 18–0F 1F: ENDBR, RDSSP, PREFETCHh, CLDEMOTE and the reserved
    /// NOPs change nothing, and their memory operands are not accessed (EBX points past
    /// guest RAM).
    #[test]
    fn hint_nops_change_nothing() {
        const ALL: u32 = ARITH | DF;
        let init = &[R(EAX, 1), R(EBX, 0xfff0_0000), F(ALL, 0)];
        let same = &[R(EAX, 1), R(EBX, 0xfff0_0000), F(ALL | FIXED1, ALL | FIXED1)];
        let nops: [(&str, &'static [u8]); 12] = [
            ("f3 0f 1e fb endbr32", &[0xf3, 0x0f, 0x1e, 0xfb]),
            ("f3 0f 1e fa endbr64", &[0xf3, 0x0f, 0x1e, 0xfa]),
            ("f3 0f 1e c8 rdsspd eax", &[0xf3, 0x0f, 0x1e, 0xc8]),
            ("f3 0f 1e 03 reserved nop [ebx]", &[0xf3, 0x0f, 0x1e, 0x03]),
            ("0f 1e c8 reserved nop", &[0x0f, 0x1e, 0xc8]),
            ("0f 18 03 prefetchnta [ebx]", &[0x0f, 0x18, 0x03]),
            ("0f 18 0b prefetcht0 [ebx]", &[0x0f, 0x18, 0x0b]),
            ("0f 18 3b prefetchit0 [ebx]", &[0x0f, 0x18, 0x3b]),
            ("0f 1c 03 cldemote [ebx]", &[0x0f, 0x1c, 0x03]),
            ("0f 19 03 reserved nop [ebx]", &[0x0f, 0x19, 0x03]),
            ("66 0f 1a 03 reserved nop [ebx]", &[0x66, 0x0f, 0x1a, 0x03]),
            ("f2 0f 1b 03 reserved nop [ebx]", &[0xf2, 0x0f, 0x1b, 0x03]),
        ];
        let cases: Vec<Case> = nops.iter().map(|&(name, bytes)| Case { name, bytes, init, expect: same }).collect();
        run_cases(&cases);
    }

    /// F3 and F2 on instructions that have no use for them: ignored (`rep ret`, the
    /// MPX `bnd` branches, XACQUIRE/XRELEASE on a locked instruction, REP on an ADD).
    #[test]
    fn ignored_rep_and_bnd_prefixes() {
        run_cases(&[
            Case {
                // jmp 4 ; 2: rep ret ; 4: call 2 ; inc eax ; (hlt)
                name: "f3 c3 rep ret",
                bytes: &[0xeb, 0x02, 0xf3, 0xc3, 0xe8, 0xf9, 0xff, 0xff, 0xff, 0x40],
                init: &[R(EAX, 0)],
                expect: &[R(EAX, 1)],
            },
            Case {
                // jmp 4 ; 2: bnd ret ; 4: bnd call 2 ; inc eax ; (hlt)
                name: "f2 e8 bnd call, f2 c3 bnd ret",
                bytes: &[0xeb, 0x02, 0xf2, 0xc3, 0xf2, 0xe8, 0xf8, 0xff, 0xff, 0xff, 0x40],
                init: &[R(EAX, 0)],
                expect: &[R(EAX, 1)],
            },
            Case {
                // xor eax, eax ; bnd je +1 ; inc eax ; bnd jmp +1 ; inc eax ; nop
                name: "f2 74 bnd je, f2 eb bnd jmp",
                bytes: &[0x31, 0xc0, 0xf2, 0x74, 0x01, 0x40, 0xf2, 0xeb, 0x01, 0x40, 0x90],
                init: &[R(EAX, 5)],
                expect: &[R(EAX, 0)],
            },
            Case {
                name: "f3 01 d8 rep add eax,ebx",
                bytes: &[0xf3, 0x01, 0xd8],
                init: &[R(EAX, 2), R(EBX, 3)],
                expect: &[R(EAX, 5)],
            },
            Case {
                name: "f2 f0 01 03 xacquire lock add [ebx],eax ; f3 f0 01 03 xrelease",
                bytes: &[0xf2, 0xf0, 0x01, 0x03, 0xf3, 0xf0, 0x01, 0x03],
                init: &[R(EAX, 2), R(EBX, D), M(D, 10)],
                expect: &[M(D, 14)],
            },
        ]);
    }

    /// POPCNT (F3 0F B8) is #UD on a CPU whose CPUID does not report it (SDM Vol. 2B,
    /// POPCNT); F3 0F 09 is WBINVD (the VMM's), not WBNOINVD.
    #[test]
    fn popcnt_raises_ud_and_wbnoinvd_is_wbinvd() {
        let mut t = TestBox::new(&[]);
        t.cpu.state.gpr[EAX] = 0x1234;
        t.cpu.state.gpr[EBX] = 0xff;
        assert_eq!(t.exec_one(&[0xf3, 0x0f, 0xb8, 0xc3]), Err(Event::Exception(Exception::InvalidOpcode)));
        // VMCALL (the VMM's, #UD while the paravirtual interface is off, as on a bare
        // `Cpu`), VMMCALL, VMXON [eax], VMREAD eax, ecx: no VMX or SVM here.
        for bytes in [&[0x0f, 0x01, 0xc1][..], &[0x0f, 0x01, 0xd9], &[0xf3, 0x0f, 0xc7, 0x30], &[0x0f, 0x78, 0xc8]] {
            assert_eq!(t.exec_one(bytes), Err(Event::Exception(Exception::InvalidOpcode)), "{bytes:02x?}");
        }
        assert_eq!(t.cpu.state.gpr[EAX], 0x1234);
        let vmcall = Decoder::with_ip(32, &[0x0f, 0x01, 0xc1], 0, popek_cpu::block::DECODER_OPTIONS).decode();
        assert_eq!(super::classify(&vmcall).0, "vmm", "VMCALL is the hypercall instruction");
        let mut t = TestBox::new(&[0xf3, 0x0f, 0xb8, 0xc3]);
        t.install_exception_handlers();
        let _ = t.run(4);
        assert_eq!(t.halted_vector(), Some(6), "#UD delivered");
        assert_eq!(t.stack(0), crate::testing::CODE_BASE, "EIP of the POPCNT");

        let insn = Decoder::with_ip(32, &[0xf3, 0x0f, 0x09], 0, popek_cpu::block::DECODER_OPTIONS).decode();
        assert_eq!(insn.mnemonic(), Mnemonic::Wbinvd);
        assert_eq!(super::classify(&insn).0, "vmm");
        assert_eq!(TestBox::new(&[]).exec_one(&[0xf3, 0x0f, 0x09]), Ok(()), "WBINVD at CPL 0");
    }
}
