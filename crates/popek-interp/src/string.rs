//! String instructions MOVS, CMPS, SCAS, LODS, STOS with REP / REPE / REPNE
//! (SDM Vol. 2 instruction pages and "REP/REPE/REPZ/REPNE/REPNZ"; Vol. 1 7.3.9).
//!
//! The address size (0x67) picks SI/DI/CX or ESI/EDI/ECX; the source is DS:(E)SI (segment
//! overridable), the destination ES:(E)DI (never overridable); EFLAGS.DF picks the direction.
//! A REP instruction runs to completion inside one handler call, but it keeps the registers
//! describing the work left after every element: a fault in the middle returns with
//! (E)CX/(E)SI/(E)DI at the faulting element and the interpreter rewinds EIP to the
//! instruction, so the guest's fault handler can fix things and restart it (SDM 7.3.9.3).
//!
//! REP MOVS, REP STOS and REPE/REPNE CMPS/SCAS work on whole runs of elements that stay
//! inside one page of source and destination, with a single segment check and a single
//! translation per page ([`movs_chunk`], [`stos_chunk`], [`compare_chunk`]); whatever the
//! fast path declines (page-straddling elements, MMIO, anything that would fault) goes
//! through the one-element path, which raises the fault at the precise element.
//! INS/OUTS are port I/O and live in `popek-vmm`.

use crate::flags;
use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::{Code, Instruction, OpKind};
use popek_cpu::mmu::AccessKind;
use popek_cpu::operand::{mask, seg_of};
use popek_cpu::state::flags::{DF, ZF};
use popek_cpu::state::gpr::{EAX, ECX, EDI, ESI};
use popek_cpu::{Bus, Cpu, ExecResult, Handler, PhysAddr, Seg};

const MOVS: u8 = 0;
const CMPS: u8 = 1;
const SCAS: u8 = 2;
const LODS: u8 = 3;
const STOS: u8 = 4;

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    macro_rules! pick {
        ($op:expr, $w:literal) => {
            string::<{ $op }, $w>
        };
    }
    Some(match insn.code() {
        Code::Movsb_m8_m8 => pick!(MOVS, 1),
        Code::Movsw_m16_m16 => pick!(MOVS, 2),
        Code::Movsd_m32_m32 => pick!(MOVS, 4),
        Code::Cmpsb_m8_m8 => pick!(CMPS, 1),
        Code::Cmpsw_m16_m16 => pick!(CMPS, 2),
        Code::Cmpsd_m32_m32 => pick!(CMPS, 4),
        Code::Scasb_AL_m8 => pick!(SCAS, 1),
        Code::Scasw_AX_m16 => pick!(SCAS, 2),
        Code::Scasd_EAX_m32 => pick!(SCAS, 4),
        Code::Lodsb_AL_m8 => pick!(LODS, 1),
        Code::Lodsw_AX_m16 => pick!(LODS, 2),
        Code::Lodsd_EAX_m32 => pick!(LODS, 4),
        Code::Stosb_m8_AL => pick!(STOS, 1),
        Code::Stosw_m16_AX => pick!(STOS, 2),
        Code::Stosd_m32_EAX => pick!(STOS, 4),
        _ => return None,
    })
}

/// Address-size and direction facts fixed for one execution of the instruction.
#[derive(Clone, Copy)]
struct Mode {
    /// 0xffff for 16-bit addressing, else 0xffff_ffff.
    amask: u32,
    /// DF=1: the pointers move down.
    down: bool,
}

impl Mode {
    /// The pointer after `n` elements of `w` bytes.
    #[inline]
    fn advance(self, ptr: u32, n: u32, w: u32) -> u32 {
        let delta = n.wrapping_mul(w);
        let v = if self.down { ptr.wrapping_sub(delta) } else { ptr.wrapping_add(delta) };
        v & self.amask
    }

    /// How many `w`-byte elements starting at offset `off` (in the direction of travel)
    /// fit before the offset would wrap around the address size. 0 if the first one wraps.
    #[inline]
    fn offset_room(self, off: u32, w: u32) -> u32 {
        let (off, top) = (off as u64, self.amask as u64);
        if off + w as u64 - 1 > top {
            0
        } else if self.down {
            (off / w as u64 + 1).min(u32::MAX as u64) as u32
        } else {
            ((top - off + 1) / w as u64).min(u32::MAX as u64) as u32
        }
    }
}

/// How many `w`-byte elements starting at linear `lin` stay within its 4 KiB page
/// (0 if the first element straddles the page end).
#[inline]
fn page_room(lin: u32, w: u32, down: bool) -> u32 {
    let in_page = lin & 0xfff;
    if in_page + w > 0x1000 {
        0
    } else if down {
        in_page / w + 1
    } else {
        (0x1000 - in_page) / w
    }
}

/// The string registers: (E)SI, (E)DI and the count, each already masked to the address size.
#[derive(Clone, Copy)]
struct Ptrs {
    si: u32,
    di: u32,
    count: u32,
}

impl Ptrs {
    #[inline]
    fn load(cpu: &Cpu, m: Mode) -> Self {
        let g = &cpu.state.gpr;
        Ptrs { si: g[ESI] & m.amask, di: g[EDI] & m.amask, count: g[ECX] & m.amask }
    }

    /// Writes the pointers (and, if `rep`, the count) back; 16-bit addressing keeps the upper halves.
    #[inline]
    fn store(self, cpu: &mut Cpu, m: Mode, rep: bool) {
        let g = &mut cpu.state.gpr;
        let set = |r: &mut u32, v: u32| *r = (*r & !m.amask) | v;
        set(&mut g[ESI], self.si);
        set(&mut g[EDI], self.di);
        if rep {
            set(&mut g[ECX], self.count);
        }
    }
}

/// One string instruction of kind `OP` on `W`-byte elements, with or without a REP prefix.
fn string<const OP: u8, const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    // The operand kinds tell the address size: MemorySegSI / MemoryESDI are 16-bit forms.
    let a16 = (0..insn.op_count()).any(|i| matches!(insn.op_kind(i), OpKind::MemorySegSI | OpKind::MemoryESDI));
    let m = Mode { amask: if a16 { 0xffff } else { 0xffff_ffff }, down: cpu.state.eflags & DF != 0 };
    let src = seg_of(insn.segment_prefix()).unwrap_or(Seg::Ds);
    let mut p = Ptrs::load(cpu, m);
    let rep = insn.has_rep_prefix() || insn.has_repne_prefix();
    if !rep {
        element::<OP, W>(cpu, bus, src, &mut p, m)?;
        p.store(cpu, m, false);
        return Ok(());
    }
    // REPE/REPZ is F3, REPNE/REPNZ is F2; they matter only for CMPS and SCAS.
    let until_zf = if insn.has_repne_prefix() { ZF } else { 0 };
    // Yield after `cpu.rep_limit` elements (see REP_BUDGET): the registers describe the
    // remaining work and EIP points back at this instruction. Each element counts as one
    // retired instruction (`Cpu::retire_rep`).
    let start = p.count;
    let stop_at = p.count.saturating_sub(cpu.rep_limit.max(1));
    while p.count != 0 {
        if p.count <= stop_at {
            p.store(cpu, m, true);
            cpu.restart_insn(insn);
            cpu.retire_rep(start - p.count, false);
            return Ok(());
        }
        let room = p.count - stop_at;
        if OP != LODS && room > 1 {
            let (n, stop) = match OP {
                MOVS => (movs_chunk::<W>(cpu, bus, src, &p, m, room), false),
                STOS => (stos_chunk::<W>(cpu, bus, &p, m, room), false),
                _ => compare_chunk::<OP, W>(cpu, bus, src, &p, m, until_zf, room),
            };
            if n > 0 {
                if OP == MOVS || OP == CMPS {
                    p.si = m.advance(p.si, n, W);
                }
                p.di = m.advance(p.di, n, W);
                p.count -= n;
                if stop {
                    break;
                }
                continue;
            }
        }
        if let Err(e) = element::<OP, W>(cpu, bus, src, &mut p, m) {
            p.store(cpu, m, true);
            cpu.retire_rep(start - p.count, true);
            return Err(e.into());
        }
        p.count -= 1;
        if (OP == CMPS || OP == SCAS) && cpu.state.eflags & ZF == until_zf {
            break; // REPE stops on ZF=0, REPNE on ZF=1
        }
    }
    p.store(cpu, m, true);
    cpu.retire_rep(start - p.count, false);
    Ok(())
}

/// One element of the string operation; advances the pointers only if it succeeded.
#[inline(always)]
fn element<const OP: u8, const W: u32>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    src: Seg,
    p: &mut Ptrs,
    m: Mode,
) -> Result<(), Exception> {
    match OP {
        MOVS => {
            let v = cpu.read(bus, src, p.si, W)?;
            cpu.write(bus, Seg::Es, p.di, W, v)?;
            p.si = m.advance(p.si, 1, W);
            p.di = m.advance(p.di, 1, W);
        }
        STOS => {
            cpu.write(bus, Seg::Es, p.di, W, cpu.state.gpr[EAX])?;
            p.di = m.advance(p.di, 1, W);
        }
        LODS => {
            let v = cpu.read(bus, src, p.si, W)?;
            let mk = mask(W);
            let a = &mut cpu.state.gpr[EAX];
            *a = (*a & !mk) | v;
            p.si = m.advance(p.si, 1, W);
        }
        SCAS => {
            let v = cpu.read(bus, Seg::Es, p.di, W)?;
            let (_, f) = flags::sub(cpu.state.gpr[EAX], v, 0, W);
            flags::commit_arith(cpu, f);
            p.di = m.advance(p.di, 1, W);
        }
        _ => {
            // CMPS: [src:(E)SI] - [ES:(E)DI]
            let a = cpu.read(bus, src, p.si, W)?;
            let b = cpu.read(bus, Seg::Es, p.di, W)?;
            let (_, f) = flags::sub(a, b, 0, W);
            flags::commit_arith(cpu, f);
            p.si = m.advance(p.si, 1, W);
            p.di = m.advance(p.di, 1, W);
        }
    }
    Ok(())
}

/// Checks and translates a run of `n` elements starting at offset `first` of `seg`
/// (the lowest-addressed byte is `first` going up, `first - (n-1)*w` going down), which the
/// caller has already kept inside one page and the address size. Returns the physical
/// address of the lowest byte, or `None` if anything would fault or the page is not RAM.
#[inline]
#[allow(clippy::too_many_arguments)]
fn run_phys(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    seg: Seg,
    first: u32,
    n: u32,
    w: u32,
    m: Mode,
    kind: AccessKind,
) -> Option<PhysAddr> {
    let low = if m.down { first - (n - 1) * w } else { first };
    let lin = cpu.seg_check(seg, low, n * w, kind).ok()?;
    let user = cpu.user_mode();
    let phys = cpu.translate(bus, lin, kind, user).ok()?;
    (cpu.mem.page_is_ram(phys) && !(kind == AccessKind::Write && cpu.mem.is_rom(phys.0))).then_some(phys)
}

/// The REP MOVS fast path: copies as many elements as stay within the current source and
/// destination pages (and the remaining count) straight in guest RAM. Returns how many it
/// copied (at most `room`); 0 means "do one element the slow way". Nothing is touched unless
/// the whole run is known not to fault. A write over decoded code is recorded
/// ([`Cpu::note_write`]).
fn movs_chunk<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, src: Seg, p: &Ptrs, m: Mode, room: u32) -> u32 {
    let src_lin = cpu.state.seg[src as usize].base.wrapping_add(p.si);
    let dst_lin = cpu.state.seg[Seg::Es as usize].base.wrapping_add(p.di);
    let n = room
        .min(m.offset_room(p.si, W))
        .min(m.offset_room(p.di, W))
        .min(page_room(src_lin, W, m.down))
        .min(page_room(dst_lin, W, m.down));
    if n < 2 {
        return 0;
    }
    let Some(s) = run_phys(cpu, bus, src, p.si, n, W, m, AccessKind::Read) else { return 0 };
    let Some(d) = run_phys(cpu, bus, Seg::Es, p.di, n, W, m, AccessKind::Write) else { return 0 };
    let (s, d, len, w) = (s.0 as usize, d.0 as usize, (n * W) as usize, W as usize);
    cpu.note_write(PhysAddr(d as u32), len as u32);
    let ram = cpu.mem.as_mut_slice();
    // Element-by-element order matters only when a later element reads bytes an earlier one
    // wrote: destination ahead of the source in the direction of travel, within reach.
    let overlap = s < d + len && d < s + len;
    let clobbers = overlap && if m.down { d < s } else { d > s };
    if !clobbers {
        ram.copy_within(s..s + len, d);
    } else if m.down {
        for k in (0..len / w).rev() {
            ram.copy_within(s + k * w..s + k * w + w, d + k * w);
        }
    } else {
        for k in 0..len / w {
            ram.copy_within(s + k * w..s + k * w + w, d + k * w);
        }
    }
    n
}

/// The REP STOS fast path: fills as many elements as stay within the destination page
/// (at most `room`).
fn stos_chunk<const W: u32>(cpu: &mut Cpu, bus: &mut dyn Bus, p: &Ptrs, m: Mode, room: u32) -> u32 {
    let dst_lin = cpu.state.seg[Seg::Es as usize].base.wrapping_add(p.di);
    let n = room.min(m.offset_room(p.di, W)).min(page_room(dst_lin, W, m.down));
    if n < 2 {
        return 0;
    }
    let Some(d) = run_phys(cpu, bus, Seg::Es, p.di, n, W, m, AccessKind::Write) else { return 0 };
    let value = cpu.state.gpr[EAX].to_le_bytes();
    cpu.note_write(d, n * W);
    let (d, len) = (d.0 as usize, (n * W) as usize);
    let dst = &mut cpu.mem.as_mut_slice()[d..d + len];
    if W == 1 {
        dst.fill(value[0]);
    } else {
        for e in dst.chunks_exact_mut(W as usize) {
            e.copy_from_slice(&value[..W as usize]);
        }
    }
    n
}

/// The REPE/REPNE CMPS and SCAS fast path: compares elements in guest RAM while they stay
/// within the current page(s) (at most `room`) and the termination condition does not hold. Returns how many
/// elements were compared and whether the ZF condition stopped the repetition; EFLAGS get
/// the flags of the last comparison.
fn compare_chunk<const OP: u8, const W: u32>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    src: Seg,
    p: &Ptrs,
    m: Mode,
    until_zf: u32,
    room: u32,
) -> (u32, bool) {
    let dst_lin = cpu.state.seg[Seg::Es as usize].base.wrapping_add(p.di);
    let mut n = room.min(m.offset_room(p.di, W)).min(page_room(dst_lin, W, m.down));
    if OP == CMPS {
        let src_lin = cpu.state.seg[src as usize].base.wrapping_add(p.si);
        n = n.min(m.offset_room(p.si, W)).min(page_room(src_lin, W, m.down));
    }
    if n < 2 {
        return (0, false);
    }
    // CMPS reads the source first, then the destination, as the one-element path does.
    let s = if OP == CMPS {
        match run_phys(cpu, bus, src, p.si, n, W, m, AccessKind::Read) {
            Some(s) => s.0 as usize,
            None => return (0, false),
        }
    } else {
        0
    };
    let Some(d) = run_phys(cpu, bus, Seg::Es, p.di, n, W, m, AccessKind::Read) else { return (0, false) };
    let (d, w) = (d.0 as usize, W as usize);
    let ram = cpu.mem.as_slice();
    let load = |at: usize| {
        let mut b = [0u8; 4];
        b[..w].copy_from_slice(&ram[at..at + w]);
        u32::from_le_bytes(b)
    };
    let eax = cpu.state.gpr[EAX];
    let mut f = 0;
    let mut done = 0;
    let mut stop = false;
    while done < n {
        // Element `done` in the order of travel; the run's lowest element is at offset 0.
        let k = if m.down { (n - 1 - done) as usize } else { done as usize };
        let a = if OP == CMPS { load(s + k * w) } else { eax };
        f = flags::sub(a, load(d + k * w), 0, W).1;
        done += 1;
        if f & ZF == until_zf {
            stop = true;
            break;
        }
    }
    flags::commit_arith(cpu, f);
    (done, stop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{CODE_BASE, DATA_BASE, TestBox};
    use popek_cpu::exception::pf;
    use popek_cpu::iced_x86::{Decoder, DecoderOptions};
    use popek_cpu::mmu::pte;
    use popek_cpu::state::cr0;
    use popek_cpu::state::flags::{AF, ARITH, CF, OF, PF, SF};
    use popek_cpu::{Event, REP_BUDGET};

    fn peek(t: &TestBox, a: u32, len: usize) -> Vec<u8> {
        t.cpu.mem.as_slice()[a as usize..a as usize + len].to_vec()
    }

    /// A recognisable byte pattern.
    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect()
    }

    const SRC: u32 = DATA_BASE;
    const DST: u32 = DATA_BASE + 0x8000;

    /// REP MOVS cases: (bytes, count, DF, byte length) copying SRC.. to DST.. (forward) or
    /// ending there (backward); expected registers computed from the SDM's per-element steps.
    #[test]
    fn rep_movs_forward_and_backward() {
        struct Case {
            bytes: &'static [u8],
            w: u32,
            count: u32,
            down: bool,
        }
        let cases = [
            Case { bytes: &[0xf3, 0xa4], w: 1, count: 10, down: false },
            Case { bytes: &[0xf3, 0xa4], w: 1, count: 10, down: true },
            Case { bytes: &[0xf3, 0xa5], w: 4, count: 7, down: false },
            Case { bytes: &[0xf3, 0xa5], w: 4, count: 7, down: true },
            Case { bytes: &[0xf3, 0x66, 0xa5], w: 2, count: 9, down: false },
            // Many pages, starting mid-page and unaligned: exercises the chunked fast path.
            Case { bytes: &[0xf3, 0xa4], w: 1, count: 0x2345, down: false },
            Case { bytes: &[0xf3, 0xa4], w: 1, count: 0x2345, down: true },
            Case { bytes: &[0xf3, 0xa5], w: 4, count: 0x0abc, down: false },
            Case { bytes: &[0xf3, 0xa5], w: 4, count: 0x0abc, down: true },
            // F2 on MOVS repeats like F3.
            Case { bytes: &[0xf2, 0xa5], w: 4, count: 3, down: false },
        ];
        for c in cases {
            let len = c.w * c.count;
            let data = pattern(len as usize, 3);
            let (src0, dst0) = (SRC + 0x123, DST + 0x321);
            let mut t = TestBox::new(&[]);
            t.poke(src0, &data);
            t.poke(dst0 - 4, &[0xee; 4]);
            t.poke(dst0 + len, &[0xee; 4]);
            t.cpu.state.gpr[ECX] = c.count;
            // Going down, (E)SI/(E)DI start at the last element.
            let (si, di) = if c.down { (src0 + len - c.w, dst0 + len - c.w) } else { (src0, dst0) };
            t.cpu.state.gpr[ESI] = si;
            t.cpu.state.gpr[EDI] = di;
            if c.down {
                t.cpu.state.eflags |= DF;
            }
            let flags = t.cpu.state.eflags;
            t.exec_one(c.bytes).unwrap();
            assert_eq!(peek(&t, dst0, len as usize), data, "{:02x?} count {:#x}", c.bytes, c.count);
            assert_eq!(peek(&t, dst0 - 4, 4), [0xee; 4], "nothing written before");
            assert_eq!(peek(&t, dst0 + len, 4), [0xee; 4], "nothing written after");
            assert_eq!(t.cpu.state.gpr[ECX], 0);
            let (esi, edi) = if c.down { (src0 - c.w, dst0 - c.w) } else { (src0 + len, dst0 + len) };
            assert_eq!((t.cpu.state.gpr[ESI], t.cpu.state.gpr[EDI]), (esi, edi), "{:02x?}", c.bytes);
            assert_eq!(t.cpu.state.eflags, flags);
        }
    }

    #[test]
    fn rep_movsb_overlapping_forward_replicates() {
        // dst = src + 1: each byte copies the one just written (a classic fill idiom).
        let mut t = TestBox::new(&[]);
        t.poke(SRC, &[0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        t.cpu.state.gpr[ESI] = SRC;
        t.cpu.state.gpr[EDI] = SRC + 1;
        t.cpu.state.gpr[ECX] = 9;
        t.exec_one(&[0xf3, 0xa4]).unwrap();
        assert_eq!(peek(&t, SRC, 11), [0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0]);
        // Going down with dst = src - 2 (dwords overlapping): each element is read before it is written.
        let mut t = TestBox::new(&[]);
        t.poke(SRC, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        t.cpu.state.eflags |= DF;
        t.cpu.state.gpr[ESI] = SRC + 8;
        t.cpu.state.gpr[EDI] = SRC + 6;
        t.cpu.state.gpr[ECX] = 2;
        t.exec_one(&[0xf3, 0xa5]).unwrap();
        // Element 1: [8..12) -> [6..10) gives 0,1,2,3,4,5,8,9,10,11,10,11;
        // element 2: [4..8) = 4,5,8,9 -> [2..6).
        assert_eq!(peek(&t, SRC, 12), [0, 1, 4, 5, 8, 9, 8, 9, 10, 11, 10, 11]);
    }

    #[test]
    fn movs_without_rep_and_16_bit_addressing() {
        // movsd: one element, ECX untouched
        let mut t = TestBox::new(&[]);
        t.poke(SRC, &0x1122_3344u32.to_le_bytes());
        t.cpu.state.gpr[ESI] = SRC;
        t.cpu.state.gpr[EDI] = DST;
        t.cpu.state.gpr[ECX] = 0;
        t.exec_one(&[0xa5]).unwrap();
        assert_eq!(t.peek32(DST), 0x1122_3344);
        assert_eq!((t.cpu.state.gpr[ESI], t.cpu.state.gpr[EDI], t.cpu.state.gpr[ECX]), (SRC + 4, DST + 4, 0));

        // a16 rep movsb: CX/SI/DI, upper halves untouched; SI wraps from 0xffff to 0.
        let mut t = TestBox::new(&[]);
        t.poke(0xfffe, &[0xa0, 0xa1]);
        t.poke(0x0000, &[0xa2, 0xa3]);
        t.cpu.state.gpr[ESI] = 0x7777_fffe;
        t.cpu.state.gpr[EDI] = 0x8888_3000;
        t.cpu.state.gpr[ECX] = 0xabcd_0004;
        t.exec_one(&[0x67, 0xf3, 0xa4]).unwrap();
        assert_eq!(peek(&t, 0x3000, 5), [0xa0, 0xa1, 0xa2, 0xa3, 0]);
        assert_eq!(t.cpu.state.gpr[ESI], 0x7777_0002);
        assert_eq!(t.cpu.state.gpr[EDI], 0x8888_3004);
        assert_eq!(t.cpu.state.gpr[ECX], 0xabcd_0000);
    }

    #[test]
    fn source_segment_is_overridable_destination_is_not() {
        let mut t = TestBox::new(&[]);
        t.cpu.state.seg[Seg::Fs as usize].base = 0x100;
        t.poke(SRC, &0xaaaa_aaaau32.to_le_bytes());
        t.poke(SRC + 0x100, &0x1234_5678u32.to_le_bytes());
        t.cpu.state.gpr[ESI] = SRC;
        t.cpu.state.gpr[EDI] = DST;
        t.exec_one(&[0x64, 0xa5]).unwrap(); // movsd fs:[esi] -> es:[edi]
        assert_eq!(t.peek32(DST), 0x1234_5678);
        assert_eq!(t.peek32(DST + 0x100), 0);

        // stosd with an FS prefix still writes through ES.
        t.cpu.state.gpr[EAX] = 0xfeed_beef;
        t.exec_one(&[0x64, 0xab]).unwrap();
        assert_eq!(t.peek32(DST + 4), 0xfeed_beef);
        assert_eq!(t.peek32(DST + 0x104), 0);

        // lodsd with an FS prefix reads through FS.
        t.cpu.state.gpr[ESI] = SRC;
        t.exec_one(&[0x64, 0xad]).unwrap();
        assert_eq!(t.cpu.state.gpr[EAX], 0x1234_5678);
    }

    #[test]
    fn repe_cmpsb_stops_at_first_difference() {
        struct Case {
            a: &'static [u8],
            b: &'static [u8],
            bytes: &'static [u8],
            count: u32,
            /// Elements compared.
            done: u32,
            flags: u32,
        }
        let cases = [
            // 'd' (0x64) - 'X' (0x58) = 0x0c: no borrow, AF (0x4 - 0x8 borrows), PF (two bits set)
            Case { a: b"abcdef", b: b"abcXef", bytes: &[0xf3, 0xa6], count: 6, done: 4, flags: AF | PF },
            // equal strings: runs out with ZF=1 (last compare 'f'-'f')
            Case { a: b"abcdef", b: b"abcdef", bytes: &[0xf3, 0xa6], count: 6, done: 6, flags: ZF | PF },
            // 0x01 - 0x02 = 0xff: CF, SF, AF, PF
            Case { a: b"\x00\x01", b: b"\x00\x02", bytes: &[0xf3, 0xa6], count: 2, done: 2, flags: CF | SF | AF | PF },
            // REPNE CMPSB stops at the first equal pair
            Case { a: b"abcdef", b: b"xyzdef", bytes: &[0xf2, 0xa6], count: 6, done: 4, flags: ZF | PF },
            // count shorter than the strings
            Case { a: b"aaaa", b: b"aaaa", bytes: &[0xf3, 0xa6], count: 2, done: 2, flags: ZF | PF },
        ];
        for c in cases {
            let mut t = TestBox::new(&[]);
            t.poke(SRC, c.a);
            t.poke(DST, c.b);
            t.cpu.state.gpr[ESI] = SRC;
            t.cpu.state.gpr[EDI] = DST;
            t.cpu.state.gpr[ECX] = c.count;
            t.cpu.state.eflags |= OF; // cleared by the compare
            t.exec_one(c.bytes).unwrap();
            let g = &t.cpu.state.gpr;
            assert_eq!((g[ECX], g[ESI], g[EDI]), (c.count - c.done, SRC + c.done, DST + c.done), "{:?}", c.a);
            assert_eq!(t.cpu.state.eflags & ARITH, c.flags, "{:?} vs {:?}", c.a, c.b);
        }
    }

    #[test]
    fn cmpsd_backward() {
        let mut t = TestBox::new(&[]);
        t.poke(SRC, &[1, 0, 0, 0, 2, 0, 0, 0]);
        t.poke(DST, &[9, 0, 0, 0, 2, 0, 0, 0]);
        t.cpu.state.eflags |= DF;
        t.cpu.state.gpr[ESI] = SRC + 4;
        t.cpu.state.gpr[EDI] = DST + 4;
        t.cpu.state.gpr[ECX] = 5;
        t.exec_one(&[0xf3, 0xa7]).unwrap();
        // Equal at +4, then 1 - 9 = -8 at +0: CF SF (AF: 1 - 9 borrows from bit 4), PF (0xf8 has 5 bits: odd -> no)
        let g = &t.cpu.state.gpr;
        assert_eq!((g[ECX], g[ESI], g[EDI]), (3, SRC - 4, DST - 4));
        assert_eq!(t.cpu.state.eflags & ARITH, CF | SF | AF);
    }

    #[test]
    fn repne_scasb_finds_the_terminator() {
        let mut t = TestBox::new(&[]);
        t.poke(DST, b"hello\0world\0");
        t.cpu.state.gpr[EDI] = DST;
        t.cpu.state.gpr[ECX] = 0xffff_ffff;
        t.cpu.state.gpr[EAX] = 0x1234_5600; // AL = 0
        t.exec_one(&[0xf2, 0xae]).unwrap();
        // strlen idiom: 6 bytes scanned (including the NUL).
        assert_eq!(t.cpu.state.gpr[ECX], 0xffff_ffff - 6);
        assert_eq!(t.cpu.state.gpr[EDI], DST + 6);
        assert_eq!(t.cpu.state.eflags & ARITH, ZF | PF);

        // REPE SCASW: skip leading 0x2020 words.
        let mut t = TestBox::new(&[]);
        t.poke(DST, &[0x20, 0x20, 0x20, 0x20, 0x41, 0x20, 0x20, 0x20]);
        t.cpu.state.gpr[EDI] = DST;
        t.cpu.state.gpr[ECX] = 4;
        t.cpu.state.gpr[EAX] = 0x2020;
        t.exec_one(&[0xf3, 0x66, 0xaf]).unwrap();
        assert_eq!((t.cpu.state.gpr[ECX], t.cpu.state.gpr[EDI]), (1, DST + 6));
        // 0x2020 - 0x2041 = 0xffdf: CF SF AF, PF of 0xdf (7 bits: odd -> no)
        assert_eq!(t.cpu.state.eflags & ARITH, CF | SF | AF);
    }

    /// Long compares and scans across pages, both directions: the position of the first
    /// mismatch (or match) is placed by the test, so the expected registers follow from it.
    #[test]
    fn long_compares_and_scans_across_pages() {
        struct Case {
            bytes: &'static [u8],
            w: u32,
            count: u32,
            down: bool,
            /// Element index (in the order of travel) where the prefix stops; None: runs out.
            stop_at: Option<u32>,
        }
        let cases = [
            Case { bytes: &[0xf3, 0xa6], w: 1, count: 0x2800, down: false, stop_at: Some(0x2345) },
            Case { bytes: &[0xf3, 0xa6], w: 1, count: 0x2800, down: true, stop_at: Some(0x1fff) },
            Case { bytes: &[0xf3, 0xa7], w: 4, count: 0x900, down: false, stop_at: None },
            Case { bytes: &[0xf3, 0xa7], w: 4, count: 0x900, down: true, stop_at: Some(0x400) },
            Case { bytes: &[0xf2, 0xae], w: 1, count: 0x3000, down: false, stop_at: Some(0x2ffe) },
            Case { bytes: &[0xf2, 0xae], w: 1, count: 0x3000, down: true, stop_at: None },
            Case { bytes: &[0xf3, 0x66, 0xaf], w: 2, count: 0x1000, down: false, stop_at: Some(0x7ff) },
            Case { bytes: &[0xf3, 0x66, 0xaf], w: 2, count: 0x1000, down: true, stop_at: Some(0) },
        ];
        for c in cases {
            let scas = c.bytes.last() == Some(&0xae) || c.bytes.last() == Some(&0xaf);
            let repne = c.bytes[0] == 0xf2;
            let len = c.w * c.count;
            let (src0, dst0) = (SRC + 0x0ab, DST + 0x135);
            let mut t = TestBox::new(&[]);
            // Equal data everywhere (REPE continues; REPNE SCAS of AL=0x41 over 0x5a continues)...
            let fill = if scas && repne { 0x5a } else { 0x41 };
            t.poke(src0, &vec![0x41; len as usize]);
            t.poke(dst0, &vec![fill; len as usize]);
            // ...except at the stop element.
            let elem = |base: u32, i: u32| if c.down { base + len - c.w - i * c.w } else { base + i * c.w };
            if let Some(i) = c.stop_at {
                t.poke(elem(dst0, i), &vec![if repne { 0x41 } else { 0x40 }; c.w as usize]);
            }
            t.cpu.state.gpr[EAX] = 0x4141_4141;
            t.cpu.state.gpr[ESI] = elem(src0, 0);
            t.cpu.state.gpr[EDI] = elem(dst0, 0);
            t.cpu.state.gpr[ECX] = c.count;
            if c.down {
                t.cpu.state.eflags |= DF;
            }
            t.exec_one(c.bytes).unwrap();
            let done = c.stop_at.map_or(c.count, |i| i + 1);
            let g = &t.cpu.state.gpr;
            assert_eq!(g[ECX], c.count - done, "{:02x?} {:?}", c.bytes, c.stop_at);
            assert_eq!(g[EDI], elem(dst0, done), "{:02x?} {:?}", c.bytes, c.stop_at);
            let want_si = if scas { elem(src0, 0) } else { elem(src0, done) };
            assert_eq!(g[ESI], want_si, "{:02x?} {:?}", c.bytes, c.stop_at);
            // Last comparison: equal (ZF PF) for a REPE run-out or a REPNE hit; 0x41.. - 0x40..
            // = 0x01.. (no flag: PF counts the low byte 0x01) for a REPE stop; 0x41 - 0x5a = 0xe7
            // (CF SF AF, PF: six bits) for a REPNE run-out.
            let want = match (repne, c.stop_at.is_some()) {
                (false, true) => 0,
                (false, false) | (true, true) => ZF | PF,
                (true, false) => CF | SF | AF | PF,
            };
            assert_eq!(t.cpu.state.eflags & ARITH, want, "{:02x?} {:?}", c.bytes, c.stop_at);
        }
    }

    #[test]
    fn rep_stos_and_lods() {
        // rep stosd
        let mut t = TestBox::new(&[]);
        t.cpu.state.gpr[EAX] = 0xdead_beef;
        t.cpu.state.gpr[EDI] = DST;
        t.cpu.state.gpr[ECX] = 5;
        t.exec_one(&[0xf3, 0xab]).unwrap();
        for i in 0..5 {
            assert_eq!(t.peek32(DST + 4 * i), 0xdead_beef);
        }
        assert_eq!(t.peek32(DST + 20), 0);
        assert_eq!((t.cpu.state.gpr[ECX], t.cpu.state.gpr[EDI]), (0, DST + 20));

        // rep stosw backward
        let mut t = TestBox::new(&[]);
        t.cpu.state.eflags |= DF;
        t.cpu.state.gpr[EAX] = 0x1234_abcd;
        t.cpu.state.gpr[EDI] = DST + 4;
        t.cpu.state.gpr[ECX] = 3;
        t.exec_one(&[0xf3, 0x66, 0xab]).unwrap();
        assert_eq!(peek(&t, DST - 2, 10), [0, 0, 0xcd, 0xab, 0xcd, 0xab, 0xcd, 0xab, 0, 0]);
        assert_eq!(t.cpu.state.gpr[EDI], DST - 2);

        // rep stosb over several pages
        let mut t = TestBox::new(&[]);
        t.cpu.state.gpr[EAX] = 0x77;
        t.cpu.state.gpr[EDI] = DST + 0x10;
        t.cpu.state.gpr[ECX] = 0x3000;
        t.exec_one(&[0xf3, 0xaa]).unwrap();
        assert!(peek(&t, DST + 0x10, 0x3000).iter().all(|&b| b == 0x77));
        assert_eq!(peek(&t, DST + 0x3010, 1), [0]);
        assert_eq!(t.cpu.state.gpr[EDI], DST + 0x3010);

        // lodsb / lodsd (forward and backward)
        let mut t = TestBox::new(&[]);
        t.poke(SRC, &[0x11, 0x22, 0x33, 0x44, 0x55]);
        t.cpu.state.gpr[EAX] = 0xffff_ffff;
        t.cpu.state.gpr[ESI] = SRC;
        t.exec_one(&[0xac]).unwrap();
        assert_eq!((t.cpu.state.gpr[EAX], t.cpu.state.gpr[ESI]), (0xffff_ff11, SRC + 1));
        t.exec_one(&[0xad]).unwrap();
        assert_eq!((t.cpu.state.gpr[EAX], t.cpu.state.gpr[ESI]), (0x5544_3322, SRC + 5));
        t.cpu.state.eflags |= DF;
        t.exec_one(&[0x66, 0xad]).unwrap();
        assert_eq!((t.cpu.state.gpr[EAX], t.cpu.state.gpr[ESI]), (0x5544_0000, SRC + 3));
        // rep lodsb: the last element wins
        t.cpu.state.eflags &= !DF;
        t.cpu.state.gpr[ESI] = SRC;
        t.cpu.state.gpr[ECX] = 3;
        t.exec_one(&[0xf3, 0xac]).unwrap();
        assert_eq!((t.cpu.state.gpr[EAX], t.cpu.state.gpr[ESI], t.cpu.state.gpr[ECX]), (0x5544_0033, SRC + 3, 0));
    }

    #[test]
    fn long_rep_yields_to_the_run_loop_and_resumes() {
        // rep stosb over 3 × REP_BUDGET + 5 bytes at 0x20000 (DF=0).
        let n = 3 * REP_BUDGET + 5;
        let mut t = TestBox::new(&[0xf3, 0xaa]);
        t.cpu.state.gpr[EDI] = 0x20000;
        t.cpu.state.gpr[ECX] = n;
        t.cpu.state.gpr[EAX] = 0x5a;
        let first = t.interp.run_block(&mut t.cpu, &mut t.bus).unwrap();
        assert_eq!(first, REP_BUDGET, "each element retires as an instruction");
        assert_eq!(t.cpu.state.eip, CODE_BASE, "EIP back at the REP");
        assert_eq!(t.cpu.state.gpr[ECX], n - REP_BUDGET);
        assert_eq!(t.cpu.state.gpr[EDI], 0x20000 + REP_BUDGET);
        t.run(100).unwrap();
        assert_eq!(t.cpu.state.eip, CODE_BASE + 2, "the REP completed");
        assert_eq!(t.cpu.state.gpr[ECX], 0);
        assert_eq!(t.cpu.state.gpr[EDI], 0x20000 + n);
        assert!(peek(&t, 0x20000, n as usize).iter().all(|&b| b == 0x5a));
        assert_eq!(peek(&t, 0x20000 + n, 1), [0]);
    }

    #[test]
    fn rep_elements_stop_where_the_room_ends_and_count_as_instructions() {
        // nop ; nop ; rep movsd / rep stosw / repe cmpsb / rep lodsb, 1,000 elements, with room
        // for 10 instructions: the two NOPs and 8 elements, then EIP back at the REP.
        for (op, w) in [(&[0xf3, 0xa5][..], 4), (&[0x66, 0xf3, 0xab], 2), (&[0xf3, 0xa6], 1), (&[0xf3, 0xac], 1)] {
            let mut code = vec![0x90, 0x90];
            code.extend_from_slice(op);
            let mut t = TestBox::new(&code);
            t.cpu.state.gpr[ESI] = DATA_BASE;
            t.cpu.state.gpr[EDI] = DATA_BASE; // CMPS compares a run with itself: all equal
            t.cpu.state.gpr[ECX] = 1000;
            let ran = t.interp.run_block_within(&mut t.cpu, &mut t.bus, 10).unwrap();
            assert_eq!(ran, 10, "{op:02x?}");
            assert_eq!(t.cpu.state.eip, CODE_BASE + 2, "{op:02x?}: EIP at the REP");
            assert_eq!(t.cpu.state.gpr[ECX], 992, "{op:02x?}");
            assert_eq!(t.cpu.state.gpr[EDI], if op[op.len() - 1] == 0xac { DATA_BASE } else { DATA_BASE + 8 * w });
            // No room left at all: still one element (progress), counted as one.
            let ran = t.interp.run_block_within(&mut t.cpu, &mut t.bus, 0).unwrap();
            assert_eq!((ran, t.cpu.state.gpr[ECX]), (1, 991), "{op:02x?}");
            // The rest in one go: 991 instructions.
            let ran = t.interp.run_block_within(&mut t.cpu, &mut t.bus, u64::MAX).unwrap();
            assert_eq!((ran, t.cpu.state.gpr[ECX], t.cpu.state.eip), (991, 0, CODE_BASE + 2 + op.len() as u32));
        }
    }

    #[test]
    fn a_fault_part_way_counts_the_elements_before_it() {
        // The NOP and three elements retired, the fourth faulted (#GP).
        let mut t = movsb_cut_short_by_es_limit();
        assert_eq!(t.interp.run_block(&mut t.cpu, &mut t.bus).unwrap(), 4);
        assert_eq!(t.cpu.state.gpr[ECX], 5);
    }

    #[test]
    fn zero_count_rep_does_nothing() {
        let cases: &[&[u8]] = &[
            &[0xf3, 0xa4],       // rep movsb
            &[0xf3, 0xa5],       // rep movsd
            &[0xf3, 0xa6],       // repe cmpsb
            &[0xf2, 0xa7],       // repne cmpsd
            &[0xf2, 0xae],       // repne scasb
            &[0xf3, 0xac],       // rep lodsb
            &[0xf3, 0xab],       // rep stosd
            &[0x67, 0xf3, 0xaa], // rep stosb with CX = 0 (ECX upper half non-zero)
        ];
        for bytes in cases {
            let mut t = TestBox::new(&[]);
            t.poke(SRC, &[1, 2, 3, 4]);
            t.cpu.state.gpr = [0x55, if bytes[0] == 0x67 { 0x1_0000 } else { 0 }, 0, 0, 0x9000, 0, SRC, DST];
            t.cpu.state.eflags = 2 | CF | OF;
            let before = t.cpu.state.clone();
            t.exec_one(bytes).unwrap();
            let mut after = t.cpu.state.clone();
            after.eip = before.eip;
            assert_eq!(after, before, "{bytes:02x?}");
            assert_eq!(t.peek32(DST), 0, "{bytes:02x?}");
        }
    }

    #[test]
    fn segment_limit_fault_halfway_leaves_resumable_state() {
        for (bytes, w) in [(&[0xf3, 0xa4][..], 1u32), (&[0xf3, 0xa5][..], 4)] {
            let data = pattern(40, 9);
            let mut t = TestBox::new(&[]);
            t.poke(SRC, &data);
            t.cpu.state.gpr[ESI] = SRC;
            t.cpu.state.gpr[EDI] = DST;
            t.cpu.state.gpr[ECX] = 10;
            // ES ends after the 6th element.
            t.cpu.state.seg[Seg::Es as usize].limit = DST + 6 * w - 1;
            let r = t.exec_one(bytes);
            assert_eq!(r, Err(Event::Exception(Exception::GeneralProtection(0))), "{bytes:02x?}");
            let g = &t.cpu.state.gpr;
            assert_eq!((g[ECX], g[ESI], g[EDI]), (4, SRC + 6 * w, DST + 6 * w), "{bytes:02x?}");
            assert_eq!(peek(&t, DST, (6 * w) as usize), data[..(6 * w) as usize], "{bytes:02x?}");
            assert_eq!(t.peek32(DST + 6 * w), 0, "{bytes:02x?}: nothing past the fault");
            // The "handler" grows the segment; re-executing finishes the copy.
            t.cpu.state.seg[Seg::Es as usize].limit = 0xffff_ffff;
            t.exec_one(bytes).unwrap();
            assert_eq!(peek(&t, DST, (10 * w) as usize), data[..(10 * w) as usize]);
            assert_eq!(t.cpu.state.gpr[ECX], 0);
        }
    }

    /// `nop ; rep movsb` of 8 bytes, with ES's limit cutting the copy short after three.
    fn movsb_cut_short_by_es_limit() -> TestBox {
        let mut t = TestBox::new(&[0x90, 0xf3, 0xa4]);
        t.install_exception_handlers();
        t.cpu.state.gpr[ESI] = SRC;
        t.cpu.state.gpr[EDI] = DST;
        t.cpu.state.gpr[ECX] = 8;
        t.cpu.state.seg[Seg::Es as usize].limit = DST + 2;
        t
    }

    #[test]
    fn fault_through_the_interpreter_rewinds_eip_to_the_rep_instruction() {
        let mut t = movsb_cut_short_by_es_limit();
        t.run(10).unwrap();
        assert_eq!(t.halted_vector(), Some(13), "#GP");
        assert_eq!(t.stack(0), 0, "error code");
        assert_eq!(t.stack(1), CODE_BASE + 1, "EIP of the REP MOVSB");
        let g = &t.cpu.state.gpr;
        assert_eq!((g[ECX], g[ESI], g[EDI]), (5, SRC + 3, DST + 3), "the remaining work");
    }

    /// Identity-maps the 1 MiB test RAM with 4 KiB pages (PD at 0x20000, PT at 0x21000),
    /// except `missing`, and turns paging on.
    fn enable_paging(t: &mut TestBox, missing: &[u32]) {
        t.poke(0x20000, &(0x21000 | pte::P | pte::RW).to_le_bytes());
        for page in 0..256u32 {
            let e = if missing.contains(&page) { 0 } else { (page << 12) | pte::P | pte::RW };
            t.poke(0x21000 + 4 * page, &e.to_le_bytes());
        }
        t.cpu.state.cr3 = 0x20000;
        t.cpu.state.cr0 |= cr0::PG;
        t.cpu.tlb.flush_all();
    }

    #[test]
    fn page_fault_halfway_leaves_resumable_state() {
        struct Case {
            bytes: &'static [u8],
            w: u32,
            src: u32,
            dst: u32,
            count: u32,
            down: bool,
            missing: u32,
            /// Elements done before the fault.
            done: u32,
            fault: Exception,
        }
        let cases = [
            // source runs into the missing page 0x12 after 0x100 bytes
            Case {
                bytes: &[0xf3, 0xa4],
                w: 1,
                src: 0x11f00,
                dst: 0x30000,
                count: 0x200,
                down: false,
                missing: 0x12,
                done: 0x100,
                fault: Exception::PageFault { addr: 0x12000, code: 0 },
            },
            // destination runs into the missing page 0x31 (write fault)
            Case {
                bytes: &[0xf3, 0xa5],
                w: 4,
                src: 0x11000,
                dst: 0x30f80,
                count: 0x100,
                down: false,
                missing: 0x31,
                done: 0x20,
                fault: Exception::PageFault { addr: 0x31000, code: pf::W },
            },
            // going down into the missing page 0x11 below the source
            Case {
                bytes: &[0xf3, 0xa4],
                w: 1,
                src: 0x1200f,
                dst: 0x3080f,
                count: 0x40,
                down: true,
                missing: 0x11,
                done: 0x10,
                fault: Exception::PageFault { addr: 0x11fff, code: 0 },
            },
            // rep stosd into a missing page
            Case {
                bytes: &[0xf3, 0xab],
                w: 4,
                src: 0,
                dst: 0x30ff0,
                count: 0x10,
                down: false,
                missing: 0x31,
                done: 4,
                fault: Exception::PageFault { addr: 0x31000, code: pf::W },
            },
        ];
        for c in cases {
            let len = c.w * c.count;
            let stos = c.bytes[1] == 0xab;
            let mut t = TestBox::new(&[]);
            let (lo_src, lo_dst) = if c.down { (c.src + c.w - len, c.dst + c.w - len) } else { (c.src, c.dst) };
            let data = pattern(len as usize, 1);
            if !stos {
                t.poke(lo_src, &data);
            }
            enable_paging(&mut t, &[c.missing]);
            t.cpu.state.gpr[EAX] = 0x0102_0304;
            t.cpu.state.gpr[ESI] = c.src;
            t.cpu.state.gpr[EDI] = c.dst;
            t.cpu.state.gpr[ECX] = c.count;
            if c.down {
                t.cpu.state.eflags |= DF;
            }
            let r = t.exec_one(c.bytes);
            assert_eq!(r, Err(Event::Exception(c.fault)), "{:02x?} {:#x}", c.bytes, c.dst);
            let adv = |p: u32| if c.down { p - c.done * c.w } else { p + c.done * c.w };
            let g = &t.cpu.state.gpr;
            let want_si = if stos { c.src } else { adv(c.src) };
            assert_eq!((g[ECX], g[ESI], g[EDI]), (c.count - c.done, want_si, adv(c.dst)), "{:02x?}", c.bytes);
            // Map the page and restart: the whole copy is there.
            enable_paging(&mut t, &[]);
            t.exec_one(c.bytes).unwrap();
            assert_eq!(t.cpu.state.gpr[ECX], 0);
            let got = peek(&t, lo_dst, len as usize);
            if stos {
                assert!(got.chunks(4).all(|e| e == [4, 3, 2, 1]), "{got:02x?}");
            } else {
                assert_eq!(got, data, "{:02x?}", c.bytes);
            }
        }
    }

    #[test]
    fn rep_movsd_through_scattered_pages() {
        // Linear 0x40000..0x43000 maps to physical 0x52000, 0x50000, 0x51000.
        let mut t = TestBox::new(&[]);
        let pages: [Vec<u8>; 3] = [pattern(0x1000, 10), pattern(0x1000, 20), pattern(0x1000, 30)];
        t.poke(0x52000, &pages[0]);
        t.poke(0x50000, &pages[1]);
        t.poke(0x51000, &pages[2]);
        enable_paging(&mut t, &[]);
        for (i, phys) in [0x52u32, 0x50, 0x51].into_iter().enumerate() {
            t.poke(0x21000 + 4 * (0x40 + i as u32), &((phys << 12) | pte::P | pte::RW).to_le_bytes());
        }
        t.cpu.state.gpr[ESI] = 0x40000;
        t.cpu.state.gpr[EDI] = 0x60000;
        t.cpu.state.gpr[ECX] = 0xc00;
        t.exec_one(&[0xf3, 0xa5]).unwrap();
        assert_eq!(peek(&t, 0x60000, 0x1000), pages[0]);
        assert_eq!(peek(&t, 0x61000, 0x1000), pages[1]);
        assert_eq!(peek(&t, 0x62000, 0x1000), pages[2]);
    }

    #[test]
    fn rep_movs_into_decoded_code_is_noticed() {
        // rep movsb over the bytes of the block being run: the SMC machinery must see it.
        let mut t = TestBox::new(&[0xf3, 0xa4]);
        t.poke(SRC, &[0x90; 16]);
        t.cpu.state.gpr[ESI] = SRC;
        t.cpu.state.gpr[EDI] = CODE_BASE;
        t.cpu.state.gpr[ECX] = 2;
        t.interp.run_block(&mut t.cpu, &mut t.bus).unwrap();
        assert_eq!(t.interp.cache.stats.invalidated, 1, "the block holding the written bytes was dropped");
        assert_eq!(peek(&t, CODE_BASE, 2), [0x90; 2]);
        assert_eq!(t.cpu.smc_stats.code, 1);
    }

    #[test]
    fn rep_movs_beside_decoded_code_drops_nothing() {
        // The same page, but not the block's bytes: nothing is dropped.
        let mut t = TestBox::new(&[0xf3, 0xa4]);
        t.poke(SRC, &[0x90; 16]);
        t.cpu.state.gpr[ESI] = SRC;
        t.cpu.state.gpr[EDI] = CODE_BASE + 0x100;
        t.cpu.state.gpr[ECX] = 16;
        t.interp.run_block(&mut t.cpu, &mut t.bus).unwrap();
        assert_eq!(t.interp.cache.stats.invalidated, 0);
        assert_eq!(peek(&t, CODE_BASE + 0x100, 16), [0x90; 16]);
        assert_eq!((t.cpu.smc_stats.code, t.cpu.smc_stats.data), (0, 1));
    }

    #[test]
    fn ins_outs_are_not_ours() {
        for bytes in [&[0x6c][..], &[0x6d], &[0x6e], &[0x6f], &[0xf3, 0x6c]] {
            let insn = Decoder::with_ip(32, bytes, CODE_BASE as u64, DecoderOptions::NONE).decode();
            assert!(lookup(&insn).is_none(), "{bytes:02x?}");
        }
    }
}
