//! Architectural state of one x86 CPU (SDM Vol. 3A ch. 2–3).
//!
//! `CpuState` is `#[repr(C)]` so generated code can reach its fields by
//! `offset_of!`.

/// Index of a general-purpose register in [`CpuState::gpr`] (x86 encoding order).
#[allow(missing_docs)]
pub mod gpr {
    pub const EAX: usize = 0;
    pub const ECX: usize = 1;
    pub const EDX: usize = 2;
    pub const EBX: usize = 3;
    pub const ESP: usize = 4;
    pub const EBP: usize = 5;
    pub const ESI: usize = 6;
    pub const EDI: usize = 7;
}

/// A segment register, in x86 encoding order (ES, CS, SS, DS, FS, GS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seg {
    /// ES
    Es = 0,
    /// CS
    Cs = 1,
    /// SS
    Ss = 2,
    /// DS
    Ds = 3,
    /// FS
    Fs = 4,
    /// GS
    Gs = 5,
}

impl Seg {
    /// All six, in encoding order.
    pub const ALL: [Seg; 6] = [Seg::Es, Seg::Cs, Seg::Ss, Seg::Ds, Seg::Fs, Seg::Gs];
    /// Assembly name.
    pub fn name(self) -> &'static str {
        ["es", "cs", "ss", "ds", "fs", "gs"][self as usize]
    }
}

/// EFLAGS bits (SDM 3.4.3).
#[allow(missing_docs)]
pub mod flags {
    pub const CF: u32 = 1 << 0;
    pub const FIXED1: u32 = 1 << 1;
    pub const PF: u32 = 1 << 2;
    pub const AF: u32 = 1 << 4;
    pub const ZF: u32 = 1 << 6;
    pub const SF: u32 = 1 << 7;
    pub const TF: u32 = 1 << 8;
    pub const IF: u32 = 1 << 9;
    pub const DF: u32 = 1 << 10;
    pub const OF: u32 = 1 << 11;
    pub const IOPL: u32 = 3 << 12;
    pub const IOPL_SHIFT: u32 = 12;
    pub const NT: u32 = 1 << 14;
    pub const RF: u32 = 1 << 16;
    pub const VM: u32 = 1 << 17;
    pub const AC: u32 = 1 << 18;
    pub const VIF: u32 = 1 << 19;
    pub const VIP: u32 = 1 << 20;
    pub const ID: u32 = 1 << 21;
    /// The six arithmetic status flags.
    pub const ARITH: u32 = CF | PF | AF | ZF | SF | OF;
    /// The bits PUSHF/PUSHFD clear in the image they push (SDM Vol. 2B PUSHF: VM and RF).
    pub const PUSHF_CLEARS: u32 = VM | RF;
}

/// CR0 bits.
#[allow(missing_docs)]
pub mod cr0 {
    pub const PE: u32 = 1 << 0;
    pub const MP: u32 = 1 << 1;
    pub const EM: u32 = 1 << 2;
    pub const TS: u32 = 1 << 3;
    pub const ET: u32 = 1 << 4;
    pub const NE: u32 = 1 << 5;
    pub const WP: u32 = 1 << 16;
    pub const AM: u32 = 1 << 18;
    pub const NW: u32 = 1 << 29;
    pub const CD: u32 = 1 << 30;
    pub const PG: u32 = 1 << 31;
}

/// CR4 bits.
#[allow(missing_docs)]
pub mod cr4 {
    pub const VME: u32 = 1 << 0;
    pub const PVI: u32 = 1 << 1;
    pub const TSD: u32 = 1 << 2;
    pub const DE: u32 = 1 << 3;
    pub const PSE: u32 = 1 << 4;
    pub const PAE: u32 = 1 << 5;
    pub const MCE: u32 = 1 << 6;
    pub const PGE: u32 = 1 << 7;
    pub const PCE: u32 = 1 << 8;
    /// The OS uses FXSAVE/FXRSTOR (SDM Vol. 3A 2.5). CPUID.1:EDX.FXSR says it may be set;
    /// on this CPU without SSE it changes nothing (see the interpreter's `x87/fxsr.rs`).
    pub const OSFXSR: u32 = 1 << 9;
    /// Bits this CPU lets software set (no VME/PVI: virtual-8086 extensions are not
    /// implemented; no OSXMMEXCPT: no SSE).
    pub const SUPPORTED: u32 = TSD | DE | PSE | PGE | PCE | OSFXSR;
}

/// Access-rights bits of a descriptor as kept in [`SegmentCache::access`]
/// (descriptor byte 5 in bits 0–7, the flags nibble of byte 6 in bits 12–15).
#[allow(missing_docs)]
pub mod access {
    pub const ACCESSED: u16 = 1 << 0;
    /// Data: writable. Code: readable.
    pub const RW: u16 = 1 << 1;
    /// Data: expand-down. Code: conforming.
    pub const DC: u16 = 1 << 2;
    pub const CODE: u16 = 1 << 3;
    /// 1 = code/data, 0 = system.
    pub const S: u16 = 1 << 4;
    pub const DPL_SHIFT: u16 = 5;
    pub const DPL: u16 = 3 << 5;
    pub const P: u16 = 1 << 7;
    pub const AVL: u16 = 1 << 12;
    pub const L: u16 = 1 << 13;
    /// Default operand size (code) / big (stack, expand-down bound).
    pub const DB: u16 = 1 << 14;
    pub const G: u16 = 1 << 15;
    /// The 4-bit type field.
    pub const TYPE: u16 = 0xf;
}

/// A segment register with its hidden descriptor cache (SDM 3.4.3).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SegmentCache {
    /// Visible selector.
    pub selector: u16,
    /// Access rights; see [`access`]. Zero means "unusable" (null selector loaded).
    pub access: u16,
    /// Linear base address.
    pub base: u32,
    /// Limit in bytes (already scaled by the granularity bit).
    pub limit: u32,
}

impl SegmentCache {
    /// A flat 4 GiB segment with the given access byte (descriptor byte 5) and DPL.
    pub const fn flat(access_byte: u16, selector: u16) -> Self {
        SegmentCache { selector, access: access_byte | access::DB | access::G, base: 0, limit: 0xffff_ffff }
    }
    /// Descriptor privilege level.
    #[inline]
    pub const fn dpl(&self) -> u8 {
        ((self.access & access::DPL) >> access::DPL_SHIFT) as u8
    }
    /// Present and usable (a null selector leaves a data segment unusable).
    #[inline]
    pub const fn usable(&self) -> bool {
        self.access & access::P != 0
    }
    /// Code segment?
    #[inline]
    pub const fn is_code(&self) -> bool {
        self.access & (access::S | access::CODE) == (access::S | access::CODE)
    }
    /// A usable, writable, expand-up data segment with a 4 GiB limit (see
    /// [`CpuState::four_gib_data`]).
    #[inline]
    pub const fn is_4gib_data(&self) -> bool {
        let want = access::P | access::S | access::RW;
        (self.limit == u32::MAX) & (self.access & (want | access::CODE | access::DC) == want)
    }
    /// D/B bit: 32-bit default operand size (code) or 32-bit stack (SS).
    #[inline]
    pub const fn big(&self) -> bool {
        self.access & access::DB != 0
    }
    /// Builds the cache from the two dwords of a descriptor.
    #[inline]
    pub fn from_descriptor(selector: u16, lo: u32, hi: u32) -> Self {
        let base = (lo >> 16) | ((hi & 0xff) << 16) | (hi & 0xff00_0000);
        let raw_limit = (lo & 0xffff) | (hi & 0x000f_0000);
        let access = ((hi >> 8) & 0xff) as u16 | (((hi >> 20) & 0xf) as u16) << 12;
        let limit = if access & access::G != 0 { (raw_limit << 12) | 0xfff } else { raw_limit };
        SegmentCache { selector, access, base, limit }
    }
}

/// GDTR / IDTR: base and limit of a descriptor table.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TableReg {
    /// Linear base.
    pub base: u32,
    /// Limit in bytes (last valid byte offset).
    pub limit: u16,
}

/// An x87 80-bit register image: a 64-bit significand (explicit integer bit 63) and
/// sign (bit 15) with a 15-bit biased exponent (SDM Vol. 1 4.2.2, 8.1.2).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct F80 {
    /// Significand, integer bit included.
    pub signif: u64,
    /// Sign (bit 15) and biased exponent (bits 0–14).
    pub sign_exp: u16,
}

impl F80 {
    /// +0.0.
    pub const ZERO: F80 = F80 { signif: 0, sign_exp: 0 };
    /// The QNaN floating-point indefinite, the masked response to an invalid operation.
    pub const INDEFINITE: F80 = F80 { signif: 0xc000_0000_0000_0000, sign_exp: 0xffff };
    /// The 10 bytes as stored in memory (little-endian).
    pub fn to_bytes(self) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&self.signif.to_le_bytes());
        b[8..].copy_from_slice(&self.sign_exp.to_le_bytes());
        b
    }
    /// The register image of 10 bytes of memory.
    pub fn from_bytes(b: [u8; 10]) -> F80 {
        let mut lo = [0u8; 8];
        lo.copy_from_slice(&b[..8]);
        F80 { signif: u64::from_le_bytes(lo), sign_exp: u16::from_le_bytes([b[8], b[9]]) }
    }
    /// The biased exponent.
    pub const fn exp(self) -> u16 {
        self.sign_exp & 0x7fff
    }
    /// The sign bit.
    pub const fn sign(self) -> bool {
        self.sign_exp & 0x8000 != 0
    }
}

/// x87 FPU control word bits (SDM Vol. 1 8.1.5).
#[allow(missing_docs)]
pub mod fcw {
    /// Exception masks IM DM ZM OM UM PM (bits 0–5).
    pub const MASKS: u16 = 0x3f;
    pub const PC_SHIFT: u16 = 8;
    pub const PC: u16 = 3 << 8;
    pub const RC_SHIFT: u16 = 10;
    pub const RC: u16 = 3 << 10;
    /// Infinity control: kept but ignored since the 80287.
    pub const X: u16 = 1 << 12;
    /// The value FNINIT loads.
    pub const INIT: u16 = 0x037f;
    /// The value at power-up and reset (SDM Vol. 3A Table 9-1).
    pub const RESET: u16 = 0x0040;
}

/// x87 FPU status word bits (SDM Vol. 1 8.1.3).
#[allow(missing_docs)]
pub mod fsw {
    pub const IE: u16 = 1 << 0;
    pub const DE: u16 = 1 << 1;
    pub const ZE: u16 = 1 << 2;
    pub const OE: u16 = 1 << 3;
    pub const UE: u16 = 1 << 4;
    pub const PE: u16 = 1 << 5;
    /// Stack fault (with IE: C1 = 1 overflow, 0 underflow).
    pub const SF: u16 = 1 << 6;
    /// Exception summary status.
    pub const ES: u16 = 1 << 7;
    pub const C0: u16 = 1 << 8;
    pub const C1: u16 = 1 << 9;
    pub const C2: u16 = 1 << 10;
    pub const TOP_SHIFT: u16 = 11;
    pub const TOP: u16 = 7 << 11;
    pub const C3: u16 = 1 << 14;
    /// Busy: mirrors ES.
    pub const B: u16 = 1 << 15;
    /// The six exception flags.
    pub const EXC: u16 = 0x3f;
    /// C0–C3.
    pub const CC: u16 = C0 | C1 | C2 | C3;
}

/// The x87 FPU's architectural state (SDM Vol. 1 8.1).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct X87State {
    /// Physical data registers R0–R7 (ST(i) is R((TOP + i) mod 8)).
    pub regs: [F80; 8],
    /// Control word.
    pub fcw: u16,
    /// Status word, TOP in bits 11–13.
    pub fsw: u16,
    /// The abridged tag: bit i set = physical register Ri is in use (tag 00, 01 or 10;
    /// the full two-bit tags are computed from the contents when stored, as the
    /// P6 family does).
    pub valid: u8,
    /// The FERR# output pin: asserted while an unmasked exception is pending (ES) and
    /// CR0.NE = 0, the PC's legacy error reporting (the interpreter's `x87` module).
    pub ferr: bool,
    /// Last instruction opcode (11 bits: low 3 bits of the first opcode byte, ModR/M).
    pub fop: u16,
    /// Last instruction pointer: offset and CS selector.
    pub fip: u32,
    /// CS selector of the last instruction.
    pub fcs: u16,
    /// Last data (operand) pointer: DS-relative offset and selector.
    pub fds: u16,
    /// Offset of the last memory operand.
    pub fdp: u32,
}

impl X87State {
    /// The state at power-up and reset (SDM Vol. 3A Table 9-1): control word 0x0040,
    /// status 0, all tags valid (0x5555), registers +0.0.
    pub const fn reset() -> Self {
        X87State {
            regs: [F80::ZERO; 8],
            fcw: fcw::RESET,
            fsw: 0,
            valid: 0xff,
            ferr: false,
            fop: 0,
            fip: 0,
            fcs: 0,
            fds: 0,
            fdp: 0,
        }
    }
    /// TOP.
    #[inline]
    pub const fn top(&self) -> usize {
        ((self.fsw & fsw::TOP) >> fsw::TOP_SHIFT) as usize
    }
    /// Sets TOP.
    #[inline]
    pub fn set_top(&mut self, top: usize) {
        // `top & 7` fits in three bits.
        #[allow(clippy::cast_possible_truncation)]
        let top = (top & 7) as u16;
        self.fsw = (self.fsw & !fsw::TOP) | (top << fsw::TOP_SHIFT);
    }
    /// The physical register number of ST(i).
    #[inline]
    pub const fn phys(&self, i: usize) -> usize {
        (self.top() + i) & 7
    }
    /// ST(i).
    #[inline]
    pub fn st(&self, i: usize) -> F80 {
        self.regs[self.phys(i)]
    }
    /// True if ST(i) is empty.
    #[inline]
    pub fn is_empty(&self, i: usize) -> bool {
        self.valid & (1 << self.phys(i)) == 0
    }
    /// The full tag word (SDM Vol. 1 8.1.7): 00 valid, 01 zero, 10 special
    /// (NaN, infinity, denormal, unsupported), 11 empty; two bits per physical register.
    pub fn full_tag_word(&self) -> u16 {
        let mut tw = 0u16;
        for (i, r) in self.regs.iter().enumerate() {
            let tag = if self.valid & (1 << i) == 0 {
                3
            } else if r.exp() == 0x7fff || (r.exp() != 0 && r.signif >> 63 == 0) {
                2
            } else if r.exp() == 0 {
                if r.signif == 0 { 1 } else { 2 }
            } else {
                0
            };
            tw |= tag << (2 * i);
        }
        tw
    }
}

/// Architectural state of the CPU.
#[repr(C)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuState {
    /// EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI.
    pub gpr: [u32; 8],
    /// Instruction pointer (offset in CS).
    pub eip: u32,
    /// EFLAGS.
    pub eflags: u32,
    /// ES, CS, SS, DS, FS, GS with their descriptor caches.
    pub seg: [SegmentCache; 6],
    /// LDTR.
    pub ldtr: SegmentCache,
    /// Task register.
    pub tr: SegmentCache,
    /// GDTR.
    pub gdtr: TableReg,
    /// IDTR.
    pub idtr: TableReg,
    /// CR0.
    pub cr0: u32,
    /// CR2: linear address of the last page fault.
    pub cr2: u32,
    /// CR3: page directory base.
    pub cr3: u32,
    /// CR4.
    pub cr4: u32,
    /// DR0–DR7 (DR4/DR5 alias DR6/DR7).
    pub dr: [u32; 8],
    /// Virtual time in instruction periods, set by the run loop (not the guest) between
    /// steps, and kept exact by both engines at each instruction that reads it: RDTSC
    /// sees the count of the instruction periods before it, wherever either engine put
    /// its block boundaries.
    pub tsc: u64,
    /// What the guest reads as its time-stamp counter minus [`CpuState::tsc`]: a WRMSR to
    /// IA32_TSC sets it, so that the counter reads what was written and goes on counting
    /// from there (SDM Vol. 3B 18.17, "Time-Stamp Counter").
    pub tsc_offset: u64,
    /// IA32_SYSENTER_CS.
    pub sysenter_cs: u32,
    /// IA32_SYSENTER_ESP.
    pub sysenter_esp: u32,
    /// IA32_SYSENTER_EIP.
    pub sysenter_eip: u32,
    /// Current privilege level (CS.RPL in protected mode).
    pub cpl: u8,
    /// Interrupts are inhibited until the next instruction retires (after STI or MOV SS/POP SS).
    pub interrupt_shadow: bool,
    /// The CPU is halted (HLT) until an interrupt arrives.
    pub halted: bool,
    /// The CPU shut down: a fault while delivering #DF (a triple fault; SDM 6.15,
    /// interrupt 8). Only a reset leaves this state; popek's run loop stops on it.
    pub shutdown: bool,
    /// NMIs are blocked: from the delivery of an NMI to the next IRET (SDM Vol. 3A 6.7.1).
    pub nmi_blocked: bool,
    /// The x87 FPU.
    pub x87: X87State,
}

impl Default for CpuState {
    fn default() -> Self {
        Self::multiboot()
    }
}

impl CpuState {
    /// The state a Multiboot loader hands over (Multiboot 1 spec, 3.2): protected mode,
    /// paging off, flat 4 GiB code (selector 0x08) and data (0x10) segments, IF=0.
    pub fn multiboot() -> Self {
        let code = SegmentCache::flat(access::P | access::S | access::CODE | access::RW | access::ACCESSED, 0x08);
        let data = SegmentCache::flat(access::P | access::S | access::RW | access::ACCESSED, 0x10);
        CpuState {
            gpr: [0; 8],
            eip: 0,
            eflags: flags::FIXED1,
            seg: [data, code, data, data, data, data],
            ldtr: SegmentCache::default(),
            tr: SegmentCache { selector: 0, access: access::P | 0xb, base: 0, limit: 0xffff },
            gdtr: TableReg::default(),
            idtr: TableReg { base: 0, limit: 0x3ff },
            cr0: cr0::PE | cr0::ET,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            dr: [0, 0, 0, 0, 0, 0, 0xffff_0ff0, 0x400],
            tsc: 0,
            tsc_offset: 0,
            sysenter_cs: 0,
            sysenter_esp: 0,
            sysenter_eip: 0,
            cpl: 0,
            interrupt_shadow: false,
            halted: false,
            shutdown: false,
            nmi_blocked: false,
            x87: X87State::reset(),
        }
    }

    /// A segment register's cache.
    #[inline]
    pub fn seg(&self, s: Seg) -> &SegmentCache {
        &self.seg[s as usize]
    }

    /// True if the code segment is 32-bit.
    #[inline]
    pub fn code32(&self) -> bool {
        self.seg[Seg::Cs as usize].big()
    }

    /// True if the stack segment is 32-bit (ESP vs SP).
    #[inline]
    pub fn stack32(&self) -> bool {
        self.seg[Seg::Ss as usize].big()
    }

    /// True if paging is enabled.
    #[inline]
    pub fn paging(&self) -> bool {
        self.cr0 & cr0::PG != 0
    }

    /// True if CS, DS, ES and SS are all flat: base 0, limit 4 GiB, usable, DS, ES and SS
    /// writable expand-up data, and a 32-bit stack. Then an access through them needs no
    /// segment arithmetic or check: linear address = offset, and PUSH/POP move ESP (the
    /// JIT keys translations on it).
    #[inline]
    pub fn flat_segments(&self) -> bool {
        let c = self.seg(Seg::Cs);
        // Non-short-circuit `&`: a few compares and no branches (the JIT asks on every
        // data-segment load).
        let data = |s: Seg| (self.seg(s).base == 0) & self.four_gib_data(s);
        (c.base == 0)
            & (c.limit == u32::MAX)
            & c.usable()
            & data(Seg::Ds)
            & data(Seg::Es)
            & data(Seg::Ss)
            & self.seg(Seg::Ss).big()
    }

    /// True if segment register `s` holds a usable, writable, expand-up data segment with
    /// a 4 GiB limit: every offset is valid for reads and writes, and the linear address
    /// is its base plus the offset (what Linux's per-CPU FS segment is). Any base.
    #[inline]
    pub fn four_gib_data(&self, s: Seg) -> bool {
        self.seg(s).is_4gib_data()
    }

    /// Current I/O privilege level.
    #[inline]
    pub fn iopl(&self) -> u8 {
        ((self.eflags & flags::IOPL) >> flags::IOPL_SHIFT) as u8
    }

    /// A one-screen dump of the registers (for triple faults and lockstep reports).
    pub fn dump(&self) -> String {
        use std::fmt::Write;
        let g = &self.gpr;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "EAX={:08x} EBX={:08x} ECX={:08x} EDX={:08x} ESI={:08x} EDI={:08x} EBP={:08x} ESP={:08x}",
            g[0], g[3], g[1], g[2], g[6], g[7], g[5], g[4]
        );
        let _ = writeln!(s, "EIP={:08x} EFL={:08x} CPL={} HLT={}", self.eip, self.eflags, self.cpl, self.halted as u8);
        for sg in Seg::ALL {
            let c = self.seg(sg);
            let _ = writeln!(
                s,
                "{}  ={:04x} base={:08x} limit={:08x} access={:04x}",
                sg.name().to_uppercase(),
                c.selector,
                c.base,
                c.limit,
                c.access
            );
        }
        let _ =
            writeln!(s, "LDT ={:04x} base={:08x} limit={:08x}", self.ldtr.selector, self.ldtr.base, self.ldtr.limit);
        let _ = writeln!(s, "TR  ={:04x} base={:08x} limit={:08x}", self.tr.selector, self.tr.base, self.tr.limit);
        let _ = writeln!(
            s,
            "GDT=     {:08x} {:04x}   IDT= {:08x} {:04x}",
            self.gdtr.base, self.gdtr.limit, self.idtr.base, self.idtr.limit
        );
        let _ = writeln!(s, "CR0={:08x} CR2={:08x} CR3={:08x} CR4={:08x}", self.cr0, self.cr2, self.cr3, self.cr4);
        let x = &self.x87;
        let _ = writeln!(
            s,
            "FCW={:04x} FSW={:04x} FTW={:04x} FOP={:04x} FIP={:04x}:{:08x} FDP={:04x}:{:08x}",
            x.fcw,
            x.fsw,
            x.full_tag_word(),
            x.fop,
            x.fcs,
            x.fip,
            x.fds,
            x.fdp
        );
        for i in 0..8 {
            if !x.is_empty(i) {
                let r = x.st(i);
                let _ = writeln!(s, "ST{i}={:04x}_{:016x}", r.sign_exp, r.signif);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_decoding() {
        // Flat ring-0 code: base 0, limit 0xfffff, G=1, D=1, access 0x9a.
        let c = SegmentCache::from_descriptor(0x08, 0x0000_ffff, 0x00cf_9a00);
        assert_eq!(c.base, 0);
        assert_eq!(c.limit, 0xffff_ffff);
        assert!(c.is_code() && c.big() && c.usable());
        assert_eq!(c.dpl(), 0);
        // Byte-granular ring-3 data at base 0x12345678, limit 0x1234.
        let d = SegmentCache::from_descriptor(0x23, 0x5678_1234, 0x1240_f234);
        assert_eq!(d.base, 0x1234_5678);
        assert_eq!(d.limit, 0x1234);
        assert_eq!(d.dpl(), 3);
        assert!(d.big() && !d.is_code());
    }
}
