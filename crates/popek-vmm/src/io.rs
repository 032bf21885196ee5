//! Port I/O: IN, OUT, INS, OUTS and the I/O permission check (SDM Vol. 1 ch. 19
//! "Input/Output" 19.5; Vol. 2 IN, OUT, INS/INSB/INSW/INSD, OUTS/OUTSB/OUTSW/OUTSD).
//!
//! Every port access goes through [`Bus::port_read`] / [`Bus::port_write`]. When
//! CPL > IOPL the access is allowed only if the TSS I/O permission bit map clears
//! every bit of the ports it touches ([`check_io_permission`]).

use popek_cpu::access::{Width, size_of_width};
use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::{Instruction, Mnemonic, OpKind, Register};
use popek_cpu::operand::{gpr_slot, mask, seg_of};
use popek_cpu::state::gpr::{ECX, EDI, ESI};
use popek_cpu::state::{Seg, access, flags};
use popek_cpu::{Bus, Cpu, ExecResult, Handler, Port};

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    // F2 (REPNE) acts as REP on INS/OUTS, like F3.
    let rep = insn.has_rep_prefix() || insn.has_repne_prefix();
    Some(match (insn.mnemonic(), rep) {
        (Mnemonic::In, _) => in_,
        (Mnemonic::Out, _) => out,
        (Mnemonic::Insb | Mnemonic::Insw | Mnemonic::Insd, false) => ins::<false>,
        (Mnemonic::Insb | Mnemonic::Insw | Mnemonic::Insd, true) => ins::<true>,
        (Mnemonic::Outsb | Mnemonic::Outsw | Mnemonic::Outsd, false) => outs::<false>,
        (Mnemonic::Outsb | Mnemonic::Outsw | Mnemonic::Outsd, true) => outs::<true>,
        _ => return None,
    })
}

/// Offset of the I/O map base field in a 32-bit TSS.
const TSS_IOMAP_BASE: u32 = 0x66;
/// Smallest limit of a valid 32-bit TSS.
const TSS32_MIN_LIMIT: u32 = 0x67;

/// The I/O permission check (SDM Vol. 1 19.5.1–19.5.2): nothing to check when
/// CPL <= IOPL; otherwise TR must hold a 32-bit TSS (type 9 or 11) whose limit
/// is at least 0x67, and the bits for `port..port+width-1` in the I/O permission bit map
/// (at the 16-bit offset stored at TSS+0x66) must all be 0, else #GP(0).
///
/// Like the hardware, the check reads the two bytes of the map at
/// `base + port/8` (a 1–4 port access spans at most two bytes), and both must
/// lie within the TSS limit: this is why the SDM asks for an all-ones byte
/// after the map. The map is read with supervisor rights, so it can #PF.
pub fn check_io_permission(cpu: &mut Cpu, bus: &mut dyn Bus, port: u16, width: Width) -> Result<(), Exception> {
    if cpu.state.cpl <= cpu.state.iopl() {
        return Ok(());
    }
    let tr = cpu.state.tr;
    let ty = tr.access & access::TYPE;
    let tss32 = tr.usable() && tr.access & access::S == 0 && (ty == 0x9 || ty == 0xb);
    if !tss32 || tr.limit < TSS32_MIN_LIMIT {
        return Err(Exception::GeneralProtection(0));
    }
    let map_base = cpu.read_system(bus, tr.base.wrapping_add(TSS_IOMAP_BASE), 2)?;
    let byte = map_base + (port as u32 >> 3);
    // Both bytes read by the check must be inside the TSS.
    if byte as u64 + 1 > tr.limit as u64 {
        return Err(Exception::GeneralProtection(0));
    }
    let bits = cpu.read_system(bus, tr.base.wrapping_add(byte), 2)?;
    let wanted = ((1u32 << width) - 1) << (port & 7);
    if bits & wanted != 0 {
        return Err(Exception::GeneralProtection(0));
    }
    Ok(())
}

/// The port of an IN/OUT: the imm8 operand, or DX.
#[inline]
fn port_operand(cpu: &Cpu, insn: &Instruction, n: u32) -> u16 {
    match insn.op_kind(n) {
        OpKind::Register => cpu.read_gpr(Register::DX) as u16,
        _ => insn.immediate8() as u16,
    }
}

/// Width of the AL/AX/EAX operand `n`.
#[inline]
fn acc_width(insn: &Instruction, n: u32) -> Width {
    gpr_slot(insn.op_register(n)).map_or(4, |s| s.width)
}

/// IN AL/AX/EAX, imm8/DX.
fn in_(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let port = port_operand(cpu, insn, 1);
    Ok(port_in(cpu, bus, port, acc_width(insn, 0))?)
}

/// IN of `width` bytes (1, 2 or 4) from `port` into AL, AX or EAX, after the permission
/// check (IN's "Operation"; the translator's fast path for a pure port calls it too).
pub fn port_in(cpu: &mut Cpu, bus: &mut dyn Bus, port: u16, width: Width) -> Result<(), Exception> {
    check_io_permission(cpu, bus, port, width)?;
    let v = bus.port_read(Port(port), size_of_width(width)) & mask(width);
    let acc = match width {
        1 => Register::AL,
        2 => Register::AX,
        _ => Register::EAX,
    };
    cpu.write_gpr(acc, v);
    Ok(())
}

/// OUT imm8/DX, AL/AX/EAX.
fn out(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = acc_width(insn, 1);
    let port = port_operand(cpu, insn, 0);
    check_io_permission(cpu, bus, port, w)?;
    let v = cpu.read_gpr(insn.op_register(1));
    bus.port_write(Port(port), size_of_width(w), v);
    Ok(())
}

/// Element width of a string I/O instruction.
#[inline]
fn string_width(insn: &Instruction) -> Width {
    match insn.mnemonic() {
        Mnemonic::Insb | Mnemonic::Outsb => 1,
        Mnemonic::Insw | Mnemonic::Outsw => 2,
        _ => 4,
    }
}

/// The index/count registers of a string instruction under its address size.
#[derive(Clone, Copy)]
struct StringRegs {
    /// 0xffff for 16-bit addressing (SI/DI/CX), else all ones.
    amask: u32,
}

impl StringRegs {
    fn of(insn: &Instruction, n: u32) -> Self {
        let a16 = matches!(insn.op_kind(n), OpKind::MemoryESDI | OpKind::MemorySegSI);
        StringRegs { amask: if a16 { 0xffff } else { 0xffff_ffff } }
    }
    fn get(self, cpu: &Cpu, r: usize) -> u32 {
        cpu.state.gpr[r] & self.amask
    }
    /// Writes the low address-size bits of register `r`, keeping the rest.
    fn set(self, cpu: &mut Cpu, r: usize, v: u32) {
        let g = &mut cpu.state.gpr[r];
        *g = (*g & !self.amask) | (v & self.amask);
    }
    /// Moves index register `r` by one element in the DF direction.
    fn step(self, cpu: &mut Cpu, r: usize, w: Width) {
        let d = if cpu.state.eflags & flags::DF != 0 { w.wrapping_neg() } else { w };
        let v = self.get(cpu, r).wrapping_add(d);
        self.set(cpu, r, v);
    }
}

/// INS/INSB/INSW/INSD (optionally REP): port DX → ES:(E)DI.
///
/// Each element: permission check, then a probe of the destination (so a
/// faulting write does not consume device data), then the port read and the store.
/// A fault in the middle of a REP leaves the registers at the completed iterations,
/// so the instruction restarts where it stopped.
fn ins<const REP: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = string_width(insn);
    let r = StringRegs::of(insn, 0);
    let port = cpu.read_gpr(Register::DX) as u16;
    repeat::<REP>(cpu, bus, insn, r, |cpu, bus| {
        check_io_permission(cpu, bus, port, w)?;
        let di = r.get(cpu, EDI);
        // ES cannot be overridden for INS.
        cpu.probe_write(bus, Seg::Es, di, w)?;
        let v = bus.port_read(Port(port), size_of_width(w));
        cpu.write(bus, Seg::Es, di, w, v)?;
        r.step(cpu, EDI, w);
        Ok(())
    })
}

/// OUTS/OUTSB/OUTSW/OUTSD (optionally REP): DS(overridable):(E)SI → port DX.
fn outs<const REP: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = string_width(insn);
    let r = StringRegs::of(insn, 1);
    let seg = seg_of(insn.memory_segment()).unwrap_or(Seg::Ds);
    let port = cpu.read_gpr(Register::DX) as u16;
    repeat::<REP>(cpu, bus, insn, r, |cpu, bus| {
        check_io_permission(cpu, bus, port, w)?;
        let si = r.get(cpu, ESI);
        let v = cpu.read(bus, seg, si, w)?;
        bus.port_write(Port(port), size_of_width(w), v);
        r.step(cpu, ESI, w);
        Ok(())
    })
}

/// Runs `element` once, or (REP) (E)CX times counting (E)CX down after each, yielding
/// after [`Cpu::rep_limit`] elements with EIP back at the instruction; each element counts as
/// a retired instruction ([`Cpu::retire_rep`]). A fault leaves the registers at the completed
/// elements, so the instruction restarts where it stopped.
fn repeat<const REP: bool>(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    insn: &Instruction,
    r: StringRegs,
    mut element: impl FnMut(&mut Cpu, &mut dyn Bus) -> Result<(), Exception>,
) -> ExecResult {
    if !REP {
        return Ok(element(cpu, bus)?);
    }
    let limit = cpu.rep_limit.max(1);
    let mut done = 0;
    while done < limit {
        if r.get(cpu, ECX) == 0 {
            cpu.retire_rep(done, false);
            return Ok(());
        }
        if let Err(e) = element(cpu, bus) {
            cpu.retire_rep(done, true);
            return Err(e.into());
        }
        let c = r.get(cpu, ECX).wrapping_sub(1);
        r.set(cpu, ECX, c);
        done += 1;
    }
    if r.get(cpu, ECX) != 0 {
        cpu.restart_insn(insn); // yield part-way, like the interpreter's REP MOVS
    }
    cpu.retire_rep(done, false);
    Ok(())
}
