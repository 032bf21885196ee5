//! Data transfer and flag control: MOV MOVZX MOVSX LEA XCHG XLAT CBW/CWDE/CWD/CDQ NOP
//! CLC/STC/CMC/CLD/STD LAHF/SAHF SETcc CMOVcc XADD CMPXCHG CMPXCHG8B (SDM Vol. 2, each
//! instruction's page; condition codes per Vol. 1 Appendix B).
//!
//! MOV to or from a segment, control or debug register is not here: it is
//! sensitive and belongs to `popek-vmm`, so [`lookup`] declines any MOV with a
//! non-general register operand.
//!
//! Precise exceptions: every handler does its memory reads and memory writes
//! before it changes a register or a flag, so a fault leaves the CPU as it was.

use crate::{cond, flags};
use popek_cpu::access::Width;
use popek_cpu::exception::Exception;
use popek_cpu::iced_x86::{Instruction, Mnemonic, OpKind, Register};
use popek_cpu::operand::{gpr_slot, gpr32_index, is_mem32_op, is_reg32_op, mask, op_width, sign_bit, sign_extend};
use popek_cpu::state::flags::{AF, CF, DF, PF, SF, ZF};
use popek_cpu::{Bus, Cpu, ExecResult, Handler};

/// The handler for `insn` if it belongs to this group.
pub(crate) fn lookup(insn: &Instruction) -> Option<Handler> {
    Some(match insn.mnemonic() {
        Mnemonic::Mov if only_gprs(insn) => mov_form(insn),
        Mnemonic::Movzx => movzx::<false>,
        Mnemonic::Movsx => movzx::<true>,
        Mnemonic::Lea => lea,
        Mnemonic::Xchg => xchg,
        Mnemonic::Xlatb => xlat,
        Mnemonic::Cbw => cbw,
        Mnemonic::Cwde => cwde,
        Mnemonic::Cwd => cwd::<2>,
        Mnemonic::Cdq => cwd::<4>,
        Mnemonic::Nop | Mnemonic::Pause | Mnemonic::Reservednop => nop,
        // 0F 18–0F 1F is the hint-NOP space (SDM Vol. 2B, NOP; Vol. 2D, A.3 opcode map:
        // "Reserved-NOP"): what iced-x86 decodes there as a newer instruction is a NOP on
        // popek's CPU too. PREFETCHh and CLDEMOTE are hints without architectural effect;
        // ENDBR32/64 and RDSSP (F3 0F 1E) are NOPs without CET, which CPUID does not report.
        Mnemonic::Prefetchnta
        | Mnemonic::Prefetcht0
        | Mnemonic::Prefetcht1
        | Mnemonic::Prefetcht2
        | Mnemonic::Prefetchit0
        | Mnemonic::Prefetchit1
        | Mnemonic::Cldemote
        | Mnemonic::Endbr32
        | Mnemonic::Endbr64
        | Mnemonic::Rdsspd => nop,
        Mnemonic::Clc => set_flag::<CF, false>,
        Mnemonic::Stc => set_flag::<CF, true>,
        Mnemonic::Cmc => cmc,
        Mnemonic::Cld => set_flag::<DF, false>,
        Mnemonic::Std => set_flag::<DF, true>,
        Mnemonic::Lahf => lahf,
        Mnemonic::Salc => salc,
        Mnemonic::Sahf => sahf,
        Mnemonic::Seto
        | Mnemonic::Setno
        | Mnemonic::Setb
        | Mnemonic::Setae
        | Mnemonic::Sete
        | Mnemonic::Setne
        | Mnemonic::Setbe
        | Mnemonic::Seta
        | Mnemonic::Sets
        | Mnemonic::Setns
        | Mnemonic::Setp
        | Mnemonic::Setnp
        | Mnemonic::Setl
        | Mnemonic::Setge
        | Mnemonic::Setle
        | Mnemonic::Setg => setcc,
        Mnemonic::Cmovo
        | Mnemonic::Cmovno
        | Mnemonic::Cmovb
        | Mnemonic::Cmovae
        | Mnemonic::Cmove
        | Mnemonic::Cmovne
        | Mnemonic::Cmovbe
        | Mnemonic::Cmova
        | Mnemonic::Cmovs
        | Mnemonic::Cmovns
        | Mnemonic::Cmovp
        | Mnemonic::Cmovnp
        | Mnemonic::Cmovl
        | Mnemonic::Cmovge
        | Mnemonic::Cmovle
        | Mnemonic::Cmovg => cmovcc,
        Mnemonic::Xadd => xadd,
        Mnemonic::Cmpxchg => cmpxchg,
        Mnemonic::Cmpxchg8b if insn.op0_kind() == OpKind::Memory => cmpxchg8b,
        _ => return None,
    })
}

/// True if every register operand of `insn` is a general-purpose register
/// (MOV with a segment, control or debug register is the VMM's).
fn only_gprs(insn: &Instruction) -> bool {
    (0..insn.op_count()).all(|n| insn.op_kind(n) != OpKind::Register || gpr_slot(insn.op_register(n)).is_some())
}

/// The MOV handler for `insn`: specialised plumbing for the 32-bit register,
/// immediate and dword-memory forms, the generic one otherwise.
fn mov_form(insn: &Instruction) -> Handler {
    if is_reg32_op(insn, 0) {
        if is_reg32_op(insn, 1) {
            return mov_r32_r32;
        }
        if insn.op1_kind() == OpKind::Immediate32 {
            return mov_r32_imm32;
        }
        if is_mem32_op(insn, 1) {
            return mov_r32_m32;
        }
    } else if is_mem32_op(insn, 0) && is_reg32_op(insn, 1) {
        return mov_m32_r32;
    }
    mov
}

/// [`mov`] for `MOV r32, r32`.
fn mov_r32_r32(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    cpu.state.gpr[gpr32_index(insn.op0_register())] = cpu.state.gpr[gpr32_index(insn.op1_register())];
    Ok(())
}

/// [`mov`] for `MOV r32, imm32`.
fn mov_r32_imm32(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    cpu.state.gpr[gpr32_index(insn.op0_register())] = insn.immediate32();
    Ok(())
}

/// [`mov`] for `MOV r32, m32`.
fn mov_r32_m32(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let v = cpu.read_mem32(bus, insn)?;
    cpu.state.gpr[gpr32_index(insn.op0_register())] = v;
    Ok(())
}

/// [`mov`] for `MOV m32, r32`.
fn mov_m32_r32(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let v = cpu.state.gpr[gpr32_index(insn.op1_register())];
    Ok(cpu.write_mem32(bus, insn, v)?)
}

/// MOV: `dst = src` (register, memory, immediate and moffs forms); no flags.
fn mov(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let v = cpu.read_op(bus, insn, 1, w)?;
    Ok(cpu.write_op(bus, insn, 0, w, v)?)
}

/// MOVZX / MOVSX (`SIGNED`): widen the source into a 16- or 32-bit register.
fn movzx<const SIGNED: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let ws = op_width(insn, 1);
    let v = cpu.read_op(bus, insn, 1, ws)?;
    cpu.write_gpr(insn.op0_register(), if SIGNED { sign_extend(v, ws) } else { v });
    Ok(())
}

/// LEA: the effective address (already 16 bits for 16-bit addressing) truncated to
/// the operand size. No memory is accessed.
fn lea(cpu: &mut Cpu, _: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    if insn.op1_kind() != OpKind::Memory {
        return Err(Exception::InvalidOpcode.into());
    }
    let ea = cpu.effective_address(insn);
    cpu.write_gpr(insn.op0_register(), ea);
    Ok(())
}

/// XCHG: swaps the operands; a memory operand is written before the register.
fn xchg(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let a = cpu.read_op(bus, insn, 0, w)?;
    let b = cpu.read_op(bus, insn, 1, w)?;
    if insn.op0_kind() == OpKind::Memory {
        cpu.write_op(bus, insn, 0, w, b)?;
        cpu.write_op(bus, insn, 1, w, a)?;
    } else {
        cpu.write_op(bus, insn, 1, w, a)?;
        cpu.write_op(bus, insn, 0, w, b)?;
    }
    Ok(())
}

/// XLAT: `AL = seg:[EBX + AL]` (BX + AL, wrapped to 16 bits, with 16-bit addressing);
/// the segment is DS unless overridden.
fn xlat(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let (seg, _) = cpu.memory_operand(insn);
    let base = insn.memory_base();
    let mut off = cpu.read_gpr(base).wrapping_add(cpu.read_gpr(Register::AL));
    if base == Register::BX {
        off &= 0xffff;
    }
    let v = cpu.read(bus, seg, off, 1)?;
    cpu.write_gpr(Register::AL, v);
    Ok(())
}

/// CBW: `AX = sign-extended AL`.
fn cbw(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    let v = sign_extend(cpu.read_gpr(Register::AL), 1);
    cpu.write_gpr(Register::AX, v);
    Ok(())
}

/// CWDE: `EAX = sign-extended AX`.
fn cwde(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    let v = sign_extend(cpu.read_gpr(Register::AX), 2);
    cpu.write_gpr(Register::EAX, v);
    Ok(())
}

/// CWD (`W` = 2) / CDQ (`W` = 4): fill DX / EDX with the sign of AX / EAX.
fn cwd<const W: Width>(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    let (acc, ext) = if W == 2 { (Register::AX, Register::DX) } else { (Register::EAX, Register::EDX) };
    let v = if cpu.read_gpr(acc) & sign_bit(W) != 0 { mask(W) } else { 0 };
    cpu.write_gpr(ext, v);
    Ok(())
}

/// NOP, multi-byte NOP (0F 1F /0, whose memory operand is not accessed), the reserved
/// hint NOPs (0F 18–0F 1F, whatever newer CPUs made of them) and PAUSE (F3 90).
fn nop(_: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    Ok(())
}

/// CLC/STC/CLD/STD: clear or set one flag.
fn set_flag<const FLAG: u32, const ON: bool>(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    flags::commit(cpu, FLAG, if ON { FLAG } else { 0 });
    Ok(())
}

/// CMC: complement CF.
fn cmc(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    cpu.state.eflags ^= CF;
    Ok(())
}

/// The EFLAGS bits LAHF and SAHF transfer (SF ZF AF PF CF; bit 1 reads as 1).
const AH_FLAGS: u32 = SF | ZF | AF | PF | CF;

/// LAHF: `AH = SF:ZF:0:AF:0:PF:1:CF`.
fn lahf(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    let v = (cpu.state.eflags & AH_FLAGS) | 2;
    cpu.write_gpr(Register::AH, v);
    Ok(())
}

/// SALC (D6, outside 64-bit mode): AL = 0xFF if CF is set, else 0; no flag changes.
/// Undocumented by Intel (the SDM's opcode map leaves D6 blank) but executed by every
/// x86 CPU since the 8086, and by QEMU; real-mode test suites (kvm-unit-tests) use it.
fn salc(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    let v = if cpu.state.eflags & CF != 0 { 0xff } else { 0 };
    cpu.write_gpr(Register::AL, v);
    Ok(())
}

/// SAHF: SF ZF AF PF CF from AH.
fn sahf(cpu: &mut Cpu, _: &mut dyn Bus, _: &Instruction) -> ExecResult {
    let ah = cpu.read_gpr(Register::AH);
    flags::commit(cpu, AH_FLAGS, ah);
    Ok(())
}

/// SETcc: the byte operand becomes 1 if the condition holds, else 0.
fn setcc(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let v = cond::holds(cpu.state.eflags, insn.condition_code()) as u32;
    Ok(cpu.write_op(bus, insn, 0, 1, v)?)
}

/// CMOVcc: the source is always read (a memory source can fault even when the
/// condition is false); the destination is written only if the condition holds.
fn cmovcc(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let v = cpu.read_op(bus, insn, 1, w)?;
    if cond::holds(cpu.state.eflags, insn.condition_code()) {
        cpu.write_gpr(insn.op0_register(), v);
    }
    Ok(())
}

/// XADD: `tmp = dst + src; src = dst; dst = tmp`, flags as ADD. With the same
/// register as both operands the sum wins (the destination is written last).
fn xadd(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let d = cpu.read_op(bus, insn, 0, w)?;
    let s = cpu.read_op(bus, insn, 1, w)?;
    let (sum, f) = flags::add(d, s, 0, w);
    if insn.op0_kind() == OpKind::Memory {
        cpu.write_op(bus, insn, 0, w, sum)?;
        cpu.write_gpr(insn.op1_register(), d);
    } else {
        cpu.write_gpr(insn.op1_register(), d);
        cpu.write_gpr(insn.op0_register(), sum);
    }
    flags::commit_arith(cpu, f);
    Ok(())
}

/// The accumulator of a `width`-byte operation: AL, AX or EAX.
fn accumulator(width: Width) -> Register {
    match width {
        1 => Register::AL,
        2 => Register::AX,
        _ => Register::EAX,
    }
}

/// CMPXCHG: compare the accumulator with the destination (flags as `CMP acc, dst`);
/// if equal, `dst = src`, else `acc = dst`. A memory destination is written either
/// way (with its own value on a mismatch), as the locked cycle does.
fn cmpxchg(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    let w = op_width(insn, 0);
    let acc_reg = accumulator(w);
    let d = cpu.read_op(bus, insn, 0, w)?;
    let s = cpu.read_op(bus, insn, 1, w)?;
    let acc = cpu.read_gpr(acc_reg);
    let (_, f) = flags::sub(acc, d, 0, w);
    let equal = f & ZF != 0;
    if insn.op0_kind() == OpKind::Memory {
        cpu.write_op(bus, insn, 0, w, if equal { s } else { d })?;
    } else if equal {
        cpu.write_gpr(insn.op0_register(), s);
    }
    if !equal {
        cpu.write_gpr(acc_reg, d);
    }
    flags::commit_arith(cpu, f);
    Ok(())
}

/// CMPXCHG8B: if `EDX:EAX == m64`, `m64 = ECX:EBX` and ZF=1; else `EDX:EAX = m64` and
/// ZF=0. Only ZF changes. The quadword is always written back (probed first, so a
/// fault in either half leaves memory untouched).
fn cmpxchg8b(cpu: &mut Cpu, bus: &mut dyn Bus, insn: &Instruction) -> ExecResult {
    use popek_cpu::state::gpr::{EAX, EBX, ECX, EDX};
    let (seg, off) = cpu.memory_operand(insn);
    cpu.seg_check(seg, off, 8, popek_cpu::AccessKind::Read)?;
    let lo = cpu.read(bus, seg, off, 4)?;
    let hi = cpu.read(bus, seg, off.wrapping_add(4), 4)?;
    cpu.probe_write(bus, seg, off, 8)?;
    let equal = lo == cpu.reg(EAX) && hi == cpu.reg(EDX);
    let (new_lo, new_hi) = if equal { (cpu.reg(EBX), cpu.reg(ECX)) } else { (lo, hi) };
    cpu.write(bus, seg, off, 4, new_lo)?;
    cpu.write(bus, seg, off.wrapping_add(4), 4, new_hi)?;
    if !equal {
        cpu.set_reg(EAX, lo);
        cpu.set_reg(EDX, hi);
    }
    flags::commit(cpu, ZF, if equal { ZF } else { 0 });
    Ok(())
}

/// Shared instruction-test harness (also used by `bits.rs`): table-driven cases run on
/// a [`TestBox`](crate::testing::TestBox), and single instructions run directly
/// through their handler to check faults.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::{DATA_BASE, TestBox};
    use popek_cpu::iced_x86::{ConditionCode, Decoder, DecoderOptions};
    use popek_cpu::state::flags::{ARITH, FIXED1, OF};
    use popek_cpu::state::gpr::*;
    use popek_cpu::{Event, Seg};
    use popek_hostcpu::{HostRunner, HostState};

    /// One piece of initial or expected state.
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum S {
        /// A general register (index, 32-bit value).
        R(usize, u32),
        /// A dword of memory at a physical address.
        M(u32, u32),
        /// Init: EFLAGS (FIXED1 is added). Expect: `(eflags & mask) == value`.
        F(u32, u32),
    }
    pub(crate) use S::{F, M, R};

    /// A table-driven instruction test.
    pub(crate) struct Case {
        /// What is being tested.
        pub name: &'static str,
        /// Machine code (32-bit code segment).
        pub bytes: &'static [u8],
        /// Initial state.
        pub init: &'static [S],
        /// Expected state afterwards.
        pub expect: &'static [S],
    }

    /// Runs every case and checks its expectations; panics naming the failing case.
    pub(crate) fn run_cases(cases: &[Case]) {
        for c in cases {
            let mut t = TestBox::new(c.bytes);
            for s in c.init {
                match *s {
                    R(i, v) => t.cpu.state.gpr[i] = v,
                    M(a, v) => t.poke(a, &v.to_le_bytes()),
                    F(f, _) => t.cpu.state.eflags = f | FIXED1,
                }
            }
            match t.run(16) {
                Ok(_) => {}
                Err(e) => panic!("{}: stopped with {e:?}", c.name),
            }
            assert!(t.cpu.state.halted, "{}: did not reach the HLT (faulted?) at {:#x}", c.name, t.cpu.state.eip);
            for s in c.expect {
                match *s {
                    R(i, v) => assert_eq!(t.cpu.state.gpr[i], v, "{}: gpr[{i}]", c.name),
                    M(a, v) => assert_eq!(t.peek32(a), v, "{}: memory at {a:#x}", c.name),
                    F(m, v) => assert_eq!(t.cpu.state.eflags & m, v, "{}: eflags {:#x}", c.name, t.cpu.state.eflags),
                }
            }
        }
    }

    /// Decodes the instruction in `bytes` (32-bit code at [`CODE_BASE`]) and runs its
    /// handler once on `t`, as the interpreter would.
    /// Shrinks DS to 0x10000 bytes so that DATA_BASE + 0x10000 and above fault.
    pub(crate) fn small_ds(t: &mut TestBox) {
        t.cpu.state.seg[Seg::Ds as usize].limit = 0xffff;
    }

    /// A small deterministic generator of operand values, biased towards edge cases.
    pub(crate) struct Rng(pub u64);

    impl Rng {
        /// 32 random bits (xorshift64*).
        pub(crate) fn next(&mut self) -> u32 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
        }

        /// An operand value: often 0, all ones, a sign bit, a single bit or a small number.
        pub(crate) fn value(&mut self) -> u32 {
            match self.next() % 10 {
                0 => 0,
                1 => 0xffff_ffff,
                2 => 0x8000_0000 >> (8 * (self.next() % 4)),
                3 => 1 << (self.next() % 32),
                4 => self.next() & 0xff,
                5 => self.next() & 0xffff,
                6 => 0x7fff_ffff >> (8 * (self.next() % 4)),
                _ => self.next(),
            }
        }
    }

    /// Runs register-only `code` on popek (32-bit) and natively on the host (64-bit
    /// mode, same bytes, which mean the same with 8/16/32-bit operands) from the same
    /// registers and arithmetic flags; compares the low 32 bits of every GPR but ESP
    /// and the EFLAGS bits in `flag_mask`.
    pub(crate) fn differential(host: &mut HostRunner, code: &[u8], regs: [u32; 8], eflags: u32, flag_mask: u32) {
        let mut t = TestBox::new(code);
        for (i, &v) in regs.iter().enumerate() {
            if i != ESP {
                t.cpu.state.gpr[i] = v;
            }
        }
        t.cpu.state.eflags = (eflags & ARITH) | FIXED1;
        t.run(4).unwrap();
        assert!(t.cpu.state.halted, "{code:02x?} did not finish");
        let mut input = HostState { rflags: (eflags & ARITH) as u64, ..HostState::default() };
        for (i, &v) in regs.iter().enumerate() {
            input.gpr[i] = v as u64;
        }
        let out = host.run(code, &input).expect("host run");
        for i in (0..8).filter(|&i| i != ESP) {
            assert_eq!(
                t.cpu.state.gpr[i], out.gpr[i] as u32,
                "{code:02x?} gpr[{i}] from {regs:08x?} flags {eflags:#x}"
            );
        }
        assert_eq!(
            t.cpu.state.eflags & flag_mask,
            out.rflags as u32 & flag_mask,
            "{code:02x?} flags from {regs:08x?} flags {eflags:#x}"
        );
    }

    /// Random registers for a differential run; EAX equals ECX half the time (so that
    /// CMPXCHG sees both outcomes).
    pub(crate) fn random_regs(rng: &mut Rng) -> [u32; 8] {
        let mut r = [0u32; 8];
        for v in r.iter_mut() {
            *v = rng.value();
        }
        if rng.next().is_multiple_of(2) {
            r[EAX] = r[ECX];
        }
        r
    }

    #[test]
    fn differential_against_host() {
        let mut host = HostRunner::new().expect("the host CPU runner is available on x86-64 Linux");
        #[rustfmt::skip]
        let codes: &[(&[u8], u32)] = &[
            (&[0x0f, 0xc1, 0xca], ARITH),       // xadd edx, ecx
            (&[0x66, 0x0f, 0xc1, 0xca], ARITH), // xadd dx, cx
            (&[0x0f, 0xc0, 0xca], ARITH),       // xadd dl, cl
            (&[0x0f, 0xc0, 0xee], ARITH),       // xadd dh, ch
            (&[0x0f, 0xc1, 0xc0], ARITH),       // xadd eax, eax
            (&[0x0f, 0xb1, 0xd1], ARITH),       // cmpxchg ecx, edx
            (&[0x66, 0x0f, 0xb1, 0xd1], ARITH), // cmpxchg cx, dx
            (&[0x0f, 0xb0, 0xd1], ARITH),       // cmpxchg cl, dl
            (&[0x0f, 0xb0, 0xf5], ARITH),       // cmpxchg ch, dh
            (&[0x0f, 0xb1, 0xc2], ARITH),       // cmpxchg edx, eax
            (&[0x98], ARITH), (&[0x66, 0x98], ARITH), (&[0x99], ARITH), (&[0x66, 0x99], ARITH),
            (&[0x9f], ARITH), (&[0x9e], ARITH), // lahf, sahf
            (&[0xf5], ARITH), (&[0xf8], ARITH), (&[0xf9], ARITH),
            (&[0x0f, 0xbe, 0xcd], ARITH), (&[0x0f, 0xbf, 0xca], ARITH), (&[0x66, 0x0f, 0xbe, 0xca], ARITH),
            (&[0x0f, 0xb6, 0xcd], ARITH), (&[0x0f, 0xb7, 0xca], ARITH), (&[0x66, 0x0f, 0xb6, 0xca], ARITH),
            (&[0x86, 0xe9], ARITH), (&[0x66, 0x87, 0xca], ARITH), (&[0x8d, 0x44, 0x8a, 0x7f], ARITH),
            (&[0x66, 0x8d, 0x44, 0x8a, 0x80], ARITH),
        ];
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for &(code, mask) in codes {
            for _ in 0..300 {
                let regs = random_regs(&mut rng);
                differential(&mut host, code, regs, rng.next() & ARITH, mask);
            }
        }
        for tttn in 0..16u8 {
            for _ in 0..64 {
                let regs = random_regs(&mut rng);
                let f = rng.next() & ARITH;
                differential(&mut host, &[0x0f, 0x90 + tttn, 0xc1], regs, f, ARITH); // setcc cl
                differential(&mut host, &[0x0f, 0x90 + tttn, 0xf5], regs, f, ARITH); // setcc ch
                differential(&mut host, &[0x0f, 0x40 + tttn, 0xd1], regs, f, ARITH); // cmovcc edx, ecx
                differential(&mut host, &[0x66, 0x0f, 0x40 + tttn, 0xd1], regs, f, ARITH); // cmovcc dx, cx
            }
        }
    }

    const D: u32 = DATA_BASE;

    #[test]
    fn mov_forms() {
        run_cases(&[
            Case {
                name: "mov eax,ebx",
                bytes: &[0x89, 0xd8],
                init: &[R(EBX, 0x1234_5678)],
                expect: &[R(EAX, 0x1234_5678)],
            },
            Case {
                name: "mov ax,bx",
                bytes: &[0x66, 0x89, 0xd8],
                init: &[R(EAX, 0xaaaa_aaaa), R(EBX, 0x1234_5678)],
                expect: &[R(EAX, 0xaaaa_5678)],
            },
            Case {
                name: "mov ah,bl",
                bytes: &[0x88, 0xdc],
                init: &[R(EAX, 0xaaaa_aaaa), R(EBX, 0x77)],
                expect: &[R(EAX, 0xaaaa_77aa)],
            },
            Case {
                name: "mov al,bh",
                bytes: &[0x8a, 0xc7],
                init: &[R(EAX, 0xaaaa_aaaa), R(EBX, 0x7700)],
                expect: &[R(EAX, 0xaaaa_aa77)],
            },
            Case {
                name: "mov [ebx],ecx",
                bytes: &[0x89, 0x0b],
                init: &[R(EBX, D), R(ECX, 0xdead_beef)],
                expect: &[M(D, 0xdead_beef)],
            },
            Case {
                name: "mov [ebx+4],cx",
                bytes: &[0x66, 0x89, 0x4b, 0x04],
                init: &[R(EBX, D), R(ECX, 0xdead_beef), M(D + 4, 0x1111_1111)],
                expect: &[M(D + 4, 0x1111_beef)],
            },
            Case {
                name: "mov [ebx],cl",
                bytes: &[0x88, 0x0b],
                init: &[R(EBX, D), R(ECX, 0xef), M(D, 0x1111_1111)],
                expect: &[M(D, 0x1111_11ef)],
            },
            Case {
                name: "mov edx,[ebx+esi*4+8]",
                bytes: &[0x8b, 0x54, 0xb3, 0x08],
                init: &[R(EBX, D), R(ESI, 2), M(D + 16, 0xcafe_f00d)],
                expect: &[R(EDX, 0xcafe_f00d)],
            },
            Case {
                name: "mov dx,[ebx]",
                bytes: &[0x66, 0x8b, 0x13],
                init: &[R(EBX, D), R(EDX, 0xffff_ffff), M(D, 0xcafe_f00d)],
                expect: &[R(EDX, 0xffff_f00d)],
            },
            Case {
                name: "mov dh,[ebx]",
                bytes: &[0x8a, 0x33],
                init: &[R(EBX, D), R(EDX, 0xffff_ffff), M(D, 0xcafe_f00d)],
                expect: &[R(EDX, 0xffff_0dff)],
            },
            Case {
                name: "mov esi,imm32",
                bytes: &[0xbe, 0x78, 0x56, 0x34, 0x12],
                init: &[],
                expect: &[R(ESI, 0x1234_5678)],
            },
            Case {
                name: "mov si,imm16",
                bytes: &[0x66, 0xbe, 0x34, 0x12],
                init: &[R(ESI, 0xffff_ffff)],
                expect: &[R(ESI, 0xffff_1234)],
            },
            Case { name: "mov ch,imm8", bytes: &[0xb5, 0x9c], init: &[R(ECX, 0)], expect: &[R(ECX, 0x9c00)] },
            Case {
                name: "mov dword [ebx],imm32",
                bytes: &[0xc7, 0x03, 0x44, 0x33, 0x22, 0x11],
                init: &[R(EBX, D)],
                expect: &[M(D, 0x1122_3344)],
            },
            Case {
                name: "mov word [ebx],imm16",
                bytes: &[0x66, 0xc7, 0x03, 0x22, 0x11],
                init: &[R(EBX, D), M(D, 0xffff_ffff)],
                expect: &[M(D, 0xffff_1122)],
            },
            Case {
                name: "mov byte [ebx],imm8",
                bytes: &[0xc6, 0x03, 0x80],
                init: &[R(EBX, D), M(D, 0xffff_ffff)],
                expect: &[M(D, 0xffff_ff80)],
            },
            Case {
                name: "mov eax,reg (flags untouched)",
                bytes: &[0x8b, 0xc1],
                init: &[R(ECX, 0), F(CF | OF, 0)],
                expect: &[R(EAX, 0), F(ARITH, CF | OF)],
            },
        ]);
    }

    #[test]
    fn mov_moffs() {
        run_cases(&[
            Case {
                name: "A0 mov al,[moffs32]",
                bytes: &[0xa0, 0x01, 0x00, 0x01, 0x00],
                init: &[R(EAX, 0xffff_ffff), M(D, 0x4433_2211)],
                expect: &[R(EAX, 0xffff_ff22)],
            },
            Case {
                name: "A1 mov eax,[moffs32]",
                bytes: &[0xa1, 0x00, 0x00, 0x01, 0x00],
                init: &[M(D, 0x4433_2211)],
                expect: &[R(EAX, 0x4433_2211)],
            },
            Case {
                name: "66 A1 mov ax,[moffs32]",
                bytes: &[0x66, 0xa1, 0x02, 0x00, 0x01, 0x00],
                init: &[R(EAX, 0xffff_ffff), M(D, 0x4433_2211)],
                expect: &[R(EAX, 0xffff_4433)],
            },
            Case {
                name: "A2 mov [moffs32],al",
                bytes: &[0xa2, 0x03, 0x00, 0x01, 0x00],
                init: &[R(EAX, 0x99), M(D, 0x4433_2211)],
                expect: &[M(D, 0x9933_2211)],
            },
            Case {
                name: "A3 mov [moffs32],eax",
                bytes: &[0xa3, 0x04, 0x00, 0x01, 0x00],
                init: &[R(EAX, 0x8765_4321)],
                expect: &[M(D + 4, 0x8765_4321)],
            },
            Case {
                name: "66 A3 mov [moffs32],ax",
                bytes: &[0x66, 0xa3, 0x04, 0x00, 0x01, 0x00],
                init: &[R(EAX, 0x8765_4321), M(D + 4, 0xffff_ffff)],
                expect: &[M(D + 4, 0xffff_4321)],
            },
            Case {
                // 67 A1 moffs16: offset 0x2000, 16-bit address size.
                name: "67 A1 mov eax,[moffs16]",
                bytes: &[0x67, 0xa1, 0x00, 0x20],
                init: &[M(0x2000, 0x0bad_cafe)],
                expect: &[R(EAX, 0x0bad_cafe)],
            },
        ]);
    }

    #[test]
    fn mov_with_segment_override() {
        // mov eax, fs:[ebx] with FS based at 0x100.
        let mut t = TestBox::new(&[0x64, 0x8b, 0x03]);
        t.cpu.state.seg[Seg::Fs as usize].base = 0x100;
        t.cpu.state.gpr[EBX] = D;
        t.poke(D + 0x100, &0x5555_aaaau32.to_le_bytes());
        t.run(4).unwrap();
        assert_eq!(t.cpu.state.gpr[EAX], 0x5555_aaaa);
    }

    #[test]
    fn mov_system_registers_are_not_ours() {
        let decode = |bytes: &[u8]| Decoder::with_ip(32, bytes, 0, DecoderOptions::NONE).decode();
        for bytes in [
            &[0x8e, 0xd8][..],   // mov ds, ax
            &[0x8c, 0xd8],       // mov eax, ds
            &[0x8c, 0x1b],       // mov [ebx], ds
            &[0x8e, 0x13],       // mov ss, [ebx]
            &[0x0f, 0x20, 0xc0], // mov eax, cr0
            &[0x0f, 0x22, 0xd8], // mov cr3, eax
            &[0x0f, 0x21, 0xf8], // mov eax, dr7
            &[0x0f, 0x23, 0xc0], // mov dr0, eax
        ] {
            let insn = decode(bytes);
            assert_eq!(insn.mnemonic(), Mnemonic::Mov, "{bytes:02x?}");
            assert!(lookup(&insn).is_none(), "{bytes:02x?} must go to the VMM");
        }
        for bytes in [&[0x89, 0xd8][..], &[0xa1, 0, 0, 0, 0], &[0xc6, 0x03, 0x80]] {
            assert!(lookup(&decode(bytes)).is_some(), "{bytes:02x?}");
        }
    }

    #[test]
    fn movzx_movsx() {
        run_cases(&[
            Case {
                name: "movzx eax,bl",
                bytes: &[0x0f, 0xb6, 0xc3],
                init: &[R(EAX, 0xffff_ffff), R(EBX, 0x1234_5680)],
                expect: &[R(EAX, 0x80)],
            },
            Case {
                name: "movzx eax,bh",
                bytes: &[0x0f, 0xb6, 0xc7],
                init: &[R(EAX, 0xffff_ffff), R(EBX, 0x1234_f680)],
                expect: &[R(EAX, 0xf6)],
            },
            Case {
                name: "movzx eax,bx",
                bytes: &[0x0f, 0xb7, 0xc3],
                init: &[R(EAX, 0xffff_ffff), R(EBX, 0x1234_8680)],
                expect: &[R(EAX, 0x8680)],
            },
            Case {
                name: "movzx ax,bl",
                bytes: &[0x66, 0x0f, 0xb6, 0xc3],
                init: &[R(EAX, 0xffff_ffff), R(EBX, 0x1234_8680)],
                expect: &[R(EAX, 0xffff_0080)],
            },
            Case {
                name: "movzx ecx,byte [ebx]",
                bytes: &[0x0f, 0xb6, 0x0b],
                init: &[R(EBX, D), M(D, 0x1234_56ff)],
                expect: &[R(ECX, 0xff)],
            },
            Case {
                name: "movzx ecx,word [ebx]",
                bytes: &[0x0f, 0xb7, 0x0b],
                init: &[R(EBX, D), M(D, 0x1234_f6ff)],
                expect: &[R(ECX, 0xf6ff)],
            },
            Case {
                name: "movsx eax,bl",
                bytes: &[0x0f, 0xbe, 0xc3],
                init: &[R(EBX, 0x1234_5680)],
                expect: &[R(EAX, 0xffff_ff80)],
            },
            Case { name: "movsx eax,bl +", bytes: &[0x0f, 0xbe, 0xc3], init: &[R(EBX, 0x7f)], expect: &[R(EAX, 0x7f)] },
            Case {
                name: "movsx eax,bx",
                bytes: &[0x0f, 0xbf, 0xc3],
                init: &[R(EBX, 0x1234_8680)],
                expect: &[R(EAX, 0xffff_8680)],
            },
            Case {
                name: "movsx ax,bl",
                bytes: &[0x66, 0x0f, 0xbe, 0xc3],
                init: &[R(EAX, 0x1111_1111), R(EBX, 0x80)],
                expect: &[R(EAX, 0x1111_ff80)],
            },
            Case {
                name: "movsx ecx,byte [ebx]",
                bytes: &[0x0f, 0xbe, 0x0b],
                init: &[R(EBX, D), M(D, 0x1234_56fe)],
                expect: &[R(ECX, 0xffff_fffe)],
            },
            Case {
                name: "movsx ecx,word [ebx]",
                bytes: &[0x0f, 0xbf, 0x0b],
                init: &[R(EBX, D), M(D, 0x1234_7ffe)],
                expect: &[R(ECX, 0x7ffe)],
            },
        ]);
    }

    #[test]
    fn lea_forms() {
        run_cases(&[
            Case {
                name: "lea eax,[ebx+esi*8+0x10]",
                bytes: &[0x8d, 0x44, 0xf3, 0x10],
                init: &[R(EBX, 0x1000), R(ESI, 3)],
                expect: &[R(EAX, 0x1000 + 24 + 0x10)],
            },
            Case {
                name: "lea eax,[ebx-1] wraps",
                bytes: &[0x8d, 0x43, 0xff],
                init: &[R(EBX, 0)],
                expect: &[R(EAX, 0xffff_ffff)],
            },
            Case {
                name: "lea ax,[ebx+ecx] truncates",
                bytes: &[0x66, 0x8d, 0x04, 0x0b],
                init: &[R(EAX, 0xaaaa_aaaa), R(EBX, 0x1234_ffff), R(ECX, 2)],
                expect: &[R(EAX, 0xaaaa_0001)],
            },
            Case {
                // 67: [bx+si+0x10] is computed modulo 64 KiB, then zero-extended.
                name: "lea eax,[bx+si+0x10] (16-bit address)",
                bytes: &[0x67, 0x8d, 0x40, 0x10],
                init: &[R(EAX, 0xaaaa_aaaa), R(EBX, 0x1234_fff0), R(ESI, 0x0001_0005)],
                expect: &[R(EAX, 0x0005)],
            },
            Case {
                name: "lea ax,[bp+di] (both 16)",
                bytes: &[0x66, 0x67, 0x8d, 0x03],
                init: &[R(EAX, 0xaaaa_aaaa), R(EBP, 0x8000), R(EDI, 0x9000)],
                expect: &[R(EAX, 0xaaaa_1000)],
            },
            Case {
                // LEA never touches memory: an address far outside RAM is fine.
                name: "lea esi,[0xfffffff0]",
                bytes: &[0x8d, 0x35, 0xf0, 0xff, 0xff, 0xff],
                init: &[],
                expect: &[R(ESI, 0xffff_fff0)],
            },
        ]);
    }

    #[test]
    fn lea_does_not_access_memory() {
        let mut t = TestBox::new(&[]);
        small_ds(&mut t);
        t.cpu.state.gpr[EBX] = 0x20_0000;
        t.exec_one(&[0x8d, 0x03]).unwrap(); // lea eax, [ebx]
        assert_eq!(t.cpu.state.gpr[EAX], 0x20_0000);
    }

    #[test]
    fn xchg_forms() {
        run_cases(&[
            Case {
                name: "xchg eax,ecx (short)",
                bytes: &[0x91],
                init: &[R(EAX, 1), R(ECX, 2)],
                expect: &[R(EAX, 2), R(ECX, 1)],
            },
            Case {
                name: "xchg ax,cx (short)",
                bytes: &[0x66, 0x91],
                init: &[R(EAX, 0x1111_0001), R(ECX, 0x2222_0002)],
                expect: &[R(EAX, 0x1111_0002), R(ECX, 0x2222_0001)],
            },
            Case {
                name: "xchg ebx,edx",
                bytes: &[0x87, 0xda],
                init: &[R(EBX, 5), R(EDX, 6)],
                expect: &[R(EBX, 6), R(EDX, 5)],
            },
            Case {
                name: "xchg ah,al",
                bytes: &[0x86, 0xc4],
                init: &[R(EAX, 0x1234_5678)],
                expect: &[R(EAX, 0x1234_7856)],
            },
            Case {
                name: "xchg [ebx],ecx",
                bytes: &[0x87, 0x0b],
                init: &[R(EBX, D), R(ECX, 0xaaaa_aaaa), M(D, 0x5555_5555)],
                expect: &[R(ECX, 0x5555_5555), M(D, 0xaaaa_aaaa)],
            },
            Case {
                name: "xchg [ebx],cx",
                bytes: &[0x66, 0x87, 0x0b],
                init: &[R(EBX, D), R(ECX, 0xaaaa_aaaa), M(D, 0x5555_1234)],
                expect: &[R(ECX, 0xaaaa_1234), M(D, 0x5555_aaaa)],
            },
            Case {
                name: "xchg [ebx],ch",
                bytes: &[0x86, 0x2b],
                init: &[R(EBX, D), R(ECX, 0xaaaa_bbcc), M(D, 0x5555_1234)],
                expect: &[R(ECX, 0xaaaa_34cc), M(D, 0x5555_12bb)],
            },
        ]);
    }

    #[test]
    fn xchg_memory_fault_is_precise() {
        let mut t = TestBox::new(&[]);
        small_ds(&mut t);
        t.cpu.state.gpr[EBX] = 0xfffe; // a dword here crosses the limit
        t.cpu.state.gpr[ECX] = 7;
        let before = t.cpu.state.clone();
        let r = t.exec_one(&[0x87, 0x0b]);
        assert_eq!(r, Err(Event::Exception(Exception::GeneralProtection(0))));
        assert_eq!(t.cpu.state.gpr, before.gpr);
    }

    #[test]
    fn xlat_forms() {
        run_cases(&[
            Case {
                name: "xlat",
                bytes: &[0xd7],
                init: &[R(EBX, D), R(EAX, 0xaaaa_aa05), M(D + 4, 0x0000_9900)],
                expect: &[R(EAX, 0xaaaa_aa99)],
            },
            Case {
                // AL is unsigned: 0xff indexes forwards.
                name: "xlat al=0xff",
                bytes: &[0xd7],
                init: &[R(EBX, D), R(EAX, 0xff), M(D + 0xfc, 0x4200_0000)],
                expect: &[R(EAX, 0x42)],
            },
            Case {
                // 67 D7: [BX+AL] wraps within 64 KiB; EBX's upper half is ignored.
                name: "xlat (16-bit address)",
                bytes: &[0x67, 0xd7],
                init: &[R(EBX, 0x0001_fff0), R(EAX, 0x20), M(0x10, 0x0000_0077)],
                expect: &[R(EAX, 0x77)],
            },
        ]);
    }

    #[test]
    fn xlat_segment_override() {
        // es xlat, ES based at 0x300.
        let mut t = TestBox::new(&[0x26, 0xd7]);
        t.cpu.state.seg[Seg::Es as usize].base = 0x300;
        t.cpu.state.gpr[EBX] = D;
        t.cpu.state.gpr[EAX] = 1;
        t.poke(D + 0x300, &[0x10, 0x66]);
        t.poke(D + 1, &[0x11]);
        t.run(4).unwrap();
        assert_eq!(t.cpu.state.gpr[EAX], 0x66);
    }

    #[test]
    fn sign_extensions() {
        run_cases(&[
            Case { name: "cbw -", bytes: &[0x66, 0x98], init: &[R(EAX, 0x1234_5680)], expect: &[R(EAX, 0x1234_ff80)] },
            Case { name: "cbw +", bytes: &[0x66, 0x98], init: &[R(EAX, 0x1234_ff7f)], expect: &[R(EAX, 0x1234_007f)] },
            Case { name: "cwde -", bytes: &[0x98], init: &[R(EAX, 0x1234_8000)], expect: &[R(EAX, 0xffff_8000)] },
            Case { name: "cwde +", bytes: &[0x98], init: &[R(EAX, 0x1234_7fff)], expect: &[R(EAX, 0x7fff)] },
            Case {
                name: "cwd -",
                bytes: &[0x66, 0x99],
                init: &[R(EAX, 0x0000_8000), R(EDX, 0x1234_5678)],
                expect: &[R(EDX, 0x1234_ffff), R(EAX, 0x8000)],
            },
            Case {
                name: "cwd +",
                bytes: &[0x66, 0x99],
                init: &[R(EAX, 0x8000_7fff), R(EDX, 0x1234_5678)],
                expect: &[R(EDX, 0x1234_0000)],
            },
            Case {
                name: "cdq -",
                bytes: &[0x99],
                init: &[R(EAX, 0x8000_0000), R(EDX, 0x1234_5678)],
                expect: &[R(EDX, 0xffff_ffff)],
            },
            Case {
                name: "cdq +",
                bytes: &[0x99],
                init: &[R(EAX, 0x7fff_ffff), R(EDX, 0x1234_5678)],
                expect: &[R(EDX, 0)],
            },
        ]);
    }

    #[test]
    fn nops() {
        const ALL: u32 = ARITH | DF;
        let same = &[R(EAX, 1), R(EBX, D), F(ALL | FIXED1, ALL | FIXED1)];
        let init = &[R(EAX, 1), R(EBX, D), F(ALL, 0)];
        run_cases(&[
            Case { name: "90", bytes: &[0x90], init, expect: same },
            Case { name: "66 90", bytes: &[0x66, 0x90], init, expect: same },
            Case { name: "f3 90 pause", bytes: &[0xf3, 0x90], init, expect: same },
            Case { name: "0f 1f 00", bytes: &[0x0f, 0x1f, 0x00], init, expect: same },
            Case { name: "0f 1f 40 00", bytes: &[0x0f, 0x1f, 0x40, 0x00], init, expect: same },
            Case { name: "0f 1f 44 00 00", bytes: &[0x0f, 0x1f, 0x44, 0x00, 0x00], init, expect: same },
            Case { name: "66 0f 1f 44 00 00", bytes: &[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00], init, expect: same },
            Case { name: "0f 1f 80 +disp32", bytes: &[0x0f, 0x1f, 0x80, 0, 0, 0, 0], init, expect: same },
            Case {
                name: "66 2e 0f 1f 84 00 +disp32",
                bytes: &[0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0],
                init,
                expect: same,
            },
            Case { name: "0f 1f c0 (register form)", bytes: &[0x0f, 0x1f, 0xc0], init, expect: same },
        ]);
    }

    #[test]
    fn multi_byte_nop_does_not_access_memory() {
        let mut t = TestBox::new(&[]);
        small_ds(&mut t);
        t.cpu.state.gpr[EAX] = 0x20_0000;
        t.exec_one(&[0x0f, 0x1f, 0x00]).unwrap(); // nop dword [eax]
    }

    #[test]
    fn flag_control() {
        run_cases(&[
            Case { name: "clc", bytes: &[0xf8], init: &[F(ARITH, 0)], expect: &[F(ARITH | DF, ARITH & !CF)] },
            Case { name: "stc", bytes: &[0xf9], init: &[F(0, 0)], expect: &[F(ARITH | DF, CF)] },
            Case { name: "cmc 0", bytes: &[0xf5], init: &[F(ZF, 0)], expect: &[F(ARITH | DF, ZF | CF)] },
            Case { name: "cmc 1", bytes: &[0xf5], init: &[F(CF | SF, 0)], expect: &[F(ARITH | DF, SF)] },
            Case { name: "cld", bytes: &[0xfc], init: &[F(DF | CF, 0)], expect: &[F(ARITH | DF, CF)] },
            Case { name: "std", bytes: &[0xfd], init: &[F(OF, 0)], expect: &[F(ARITH | DF, DF | OF)] },
        ]);
    }

    #[test]
    fn salc_copies_cf_into_al() {
        run_cases(&[
            Case {
                name: "salc CF=1",
                bytes: &[0xd6],
                init: &[R(EAX, 0x1234_5600), F(CF, 0)],
                expect: &[R(EAX, 0x1234_56ff), F(ARITH, CF)],
            },
            Case {
                name: "salc CF=0",
                bytes: &[0xd6],
                init: &[R(EAX, 0x1234_56aa), F(ARITH & !CF, 0)],
                expect: &[R(EAX, 0x1234_5600), F(ARITH, ARITH & !CF)],
            },
        ]);
    }

    #[test]
    fn lahf_sahf() {
        run_cases(&[
            Case {
                name: "lahf all",
                bytes: &[0x9f],
                init: &[R(EAX, 0x1234_0078), F(ARITH | DF, 0)],
                expect: &[R(EAX, 0x1234_d778)],
            },
            Case {
                // OF and DF are not transferred; bit 1 always reads as 1.
                name: "lahf none",
                bytes: &[0x9f],
                init: &[R(EAX, 0x1234_ff78), F(OF | DF, 0)],
                expect: &[R(EAX, 0x1234_0278)],
            },
            Case {
                name: "sahf",
                bytes: &[0x9e],
                init: &[R(EAX, 0x0000_ff00), F(OF, 0)],
                expect: &[F(0xffff, SF | ZF | AF | PF | CF | OF | FIXED1)],
            },
            Case {
                name: "sahf clears",
                bytes: &[0x9e],
                init: &[R(EAX, 0x0000_2800), F(ARITH | DF, 0)],
                expect: &[F(0xffff, OF | DF | FIXED1)],
            },
        ]);
    }

    /// (flags, condition, holds) for every condition, from the SDM's table (Vol. 1 B.1).
    #[rustfmt::skip]
    const CONDITIONS: &[(u32, ConditionCode, bool)] = {
        use ConditionCode as C;
        &[
            (OF, C::o, true), (0, C::o, false),
            (0, C::no, true), (OF, C::no, false),
            (CF, C::b, true), (ZF, C::b, false),
            (0, C::ae, true), (CF, C::ae, false),
            (ZF, C::e, true), (0, C::e, false),
            (0, C::ne, true), (ZF, C::ne, false),
            (ZF, C::be, true), (CF, C::be, true), (0, C::be, false),
            (0, C::a, true), (CF, C::a, false), (ZF, C::a, false),
            (SF, C::s, true), (0, C::s, false),
            (0, C::ns, true), (SF, C::ns, false),
            (PF, C::p, true), (0, C::p, false),
            (0, C::np, true), (PF, C::np, false),
            (SF, C::l, true), (OF, C::l, true), (SF | OF, C::l, false), (0, C::l, false),
            (0, C::ge, true), (SF | OF, C::ge, true), (SF, C::ge, false),
            (ZF, C::le, true), (OF, C::le, true), (SF | OF, C::le, false),
            (0, C::g, true), (SF | OF, C::g, true), (ZF | SF | OF, C::g, false), (SF, C::g, false),
        ]
    };

    /// The low opcode nibble (the `cc` of 0F 9x / 0F 4x) of a condition (SDM Vol. 2 B.1.4.7).
    fn tttn(cc: ConditionCode) -> u8 {
        cc as u8 - 1
    }

    #[test]
    fn setcc_every_condition() {
        for &(f, cc, want) in CONDITIONS {
            // setcc cl ; setcc byte [ebx]
            let code = [0x0f, 0x90 + tttn(cc), 0xc1, 0x0f, 0x90 + tttn(cc), 0x03];
            let mut t = TestBox::new(&code);
            t.cpu.state.eflags = f | FIXED1;
            t.cpu.state.gpr[ECX] = 0xaaaa_aaaa;
            t.cpu.state.gpr[EBX] = D;
            t.poke(D, &0x5555_5555u32.to_le_bytes());
            t.run(4).unwrap();
            let b = want as u32;
            assert_eq!(t.cpu.state.gpr[ECX], 0xaaaa_aa00 | b, "set{cc:?} cl, flags {f:#x}");
            assert_eq!(t.peek32(D), 0x5555_5500 | b, "set{cc:?} [ebx], flags {f:#x}");
            assert_eq!(t.cpu.state.eflags, f | FIXED1, "set{cc:?} changed flags");
        }
    }

    #[test]
    fn cmovcc_every_condition() {
        for &(f, cc, want) in CONDITIONS {
            // cmovcc eax, ecx ; cmovcc edx, [ebx] ; cmovcc si, di
            let code = [0x0f, 0x40 + tttn(cc), 0xc1, 0x0f, 0x40 + tttn(cc), 0x13, 0x66, 0x0f, 0x40 + tttn(cc), 0xf7];
            let mut t = TestBox::new(&code);
            t.cpu.state.eflags = f | FIXED1;
            let g = &mut t.cpu.state.gpr;
            (g[EAX], g[ECX], g[EDX], g[EBX], g[ESI], g[EDI]) = (1, 2, 3, D, 0x1111_1111, 0x2222_2222);
            t.poke(D, &0x4444_4444u32.to_le_bytes());
            t.run(4).unwrap();
            let g = t.cpu.state.gpr;
            let pick = |yes, no| if want { yes } else { no };
            assert_eq!(g[EAX], pick(2, 1), "cmov{cc:?} eax,ecx flags {f:#x}");
            assert_eq!(g[EDX], pick(0x4444_4444, 3), "cmov{cc:?} edx,[ebx] flags {f:#x}");
            assert_eq!(g[ESI], pick(0x1111_2222, 0x1111_1111), "cmov{cc:?} si,di flags {f:#x}");
            assert_eq!(t.cpu.state.eflags, f | FIXED1);
        }
    }

    #[test]
    fn cmov_false_still_reads_memory() {
        // cmove eax, [ebx] with ZF=0 and [ebx] beyond the DS limit: #GP(0), EAX kept.
        let mut t = TestBox::new(&[]);
        small_ds(&mut t);
        t.cpu.state.gpr[EBX] = 0x1_0000;
        t.cpu.state.gpr[EAX] = 0x1234;
        let r = t.exec_one(&[0x0f, 0x44, 0x03]);
        assert_eq!(r, Err(Event::Exception(Exception::GeneralProtection(0))));
        assert_eq!(t.cpu.state.gpr[EAX], 0x1234);
    }

    #[test]
    fn xadd_forms() {
        run_cases(&[
            Case {
                name: "xadd eax,ecx",
                bytes: &[0x0f, 0xc1, 0xc8],
                init: &[R(EAX, 0xffff_ffff), R(ECX, 1), F(0, 0)],
                expect: &[R(EAX, 0), R(ECX, 0xffff_ffff), F(ARITH, ZF | CF | AF | PF)],
            },
            Case {
                name: "xadd eax,eax",
                bytes: &[0x0f, 0xc1, 0xc0],
                init: &[R(EAX, 3)],
                expect: &[R(EAX, 6), F(ARITH, PF)],
            },
            Case {
                name: "xadd ax,cx",
                bytes: &[0x66, 0x0f, 0xc1, 0xc8],
                init: &[R(EAX, 0x1111_7fff), R(ECX, 0x2222_0001)],
                expect: &[R(EAX, 0x1111_8000), R(ECX, 0x2222_7fff), F(ARITH, SF | OF | AF | PF)],
            },
            Case {
                name: "xadd al,ch",
                bytes: &[0x0f, 0xc0, 0xe8],
                init: &[R(EAX, 0x80), R(ECX, 0x8000)],
                expect: &[R(EAX, 0), R(ECX, 0x8000), F(ARITH, CF | OF | ZF | PF)],
            },
            Case {
                name: "xadd [ebx],ecx",
                bytes: &[0x0f, 0xc1, 0x0b],
                init: &[R(EBX, D), R(ECX, 5), M(D, 10)],
                expect: &[R(ECX, 10), M(D, 15), F(ARITH, PF)],
            },
            Case {
                name: "xadd [ebx],cx",
                bytes: &[0x66, 0x0f, 0xc1, 0x0b],
                init: &[R(EBX, D), R(ECX, 0xaaaa_0001), M(D, 0x5555_ffff)],
                expect: &[R(ECX, 0xaaaa_ffff), M(D, 0x5555_0000), F(ARITH, ZF | CF | AF | PF)],
            },
            Case {
                name: "xadd [ebx],cl",
                bytes: &[0x0f, 0xc0, 0x0b],
                init: &[R(EBX, D), R(ECX, 0x02), M(D, 0x1234_5607)],
                expect: &[R(ECX, 0x07), M(D, 0x1234_5609), F(ARITH, PF)],
            },
        ]);
    }

    #[test]
    fn cmpxchg_forms() {
        run_cases(&[
            Case {
                name: "cmpxchg ecx,edx equal",
                bytes: &[0x0f, 0xb1, 0xd1],
                init: &[R(EAX, 7), R(ECX, 7), R(EDX, 9)],
                expect: &[R(EAX, 7), R(ECX, 9), R(EDX, 9), F(ARITH, ZF | PF)],
            },
            Case {
                // Flags of CMP EAX, ECX = 5 - 7.
                name: "cmpxchg ecx,edx differ",
                bytes: &[0x0f, 0xb1, 0xd1],
                init: &[R(EAX, 5), R(ECX, 7), R(EDX, 9)],
                expect: &[R(EAX, 7), R(ECX, 7), R(EDX, 9), F(ARITH, CF | SF | AF)],
            },
            Case {
                name: "cmpxchg cx,dx equal",
                bytes: &[0x66, 0x0f, 0xb1, 0xd1],
                init: &[R(EAX, 0xaaaa_1234), R(ECX, 0xbbbb_1234), R(EDX, 0xcccc_5678)],
                expect: &[R(EAX, 0xaaaa_1234), R(ECX, 0xbbbb_5678), F(ARITH, ZF | PF)],
            },
            Case {
                name: "cmpxchg cx,dx differ",
                bytes: &[0x66, 0x0f, 0xb1, 0xd1],
                init: &[R(EAX, 0xaaaa_1235), R(ECX, 0xbbbb_1234), R(EDX, 0xcccc_5678)],
                expect: &[R(EAX, 0xaaaa_1234), R(ECX, 0xbbbb_1234), F(ARITH, 0)],
            },
            Case {
                name: "cmpxchg cl,dl equal",
                bytes: &[0x0f, 0xb0, 0xd1],
                init: &[R(EAX, 0x80), R(ECX, 0x1180), R(EDX, 0x01)],
                expect: &[R(EAX, 0x80), R(ECX, 0x1101), F(ARITH, ZF | PF)],
            },
            Case {
                // 0x00 - 0x80 (8-bit): 0x80, CF SF OF.
                name: "cmpxchg cl,dl differ",
                bytes: &[0x0f, 0xb0, 0xd1],
                init: &[R(EAX, 0xff00), R(ECX, 0x1180), R(EDX, 0x01)],
                expect: &[R(EAX, 0xff80), R(ECX, 0x1180), F(ARITH, CF | SF | OF)],
            },
            Case {
                name: "cmpxchg [ebx],ecx equal",
                bytes: &[0x0f, 0xb1, 0x0b],
                init: &[R(EBX, D), R(EAX, 0x1000), R(ECX, 0x2000), M(D, 0x1000)],
                expect: &[R(EAX, 0x1000), M(D, 0x2000), F(ARITH, ZF | PF)],
            },
            Case {
                // 0x1001 - 0x1000 = 1.
                name: "cmpxchg [ebx],ecx differ",
                bytes: &[0x0f, 0xb1, 0x0b],
                init: &[R(EBX, D), R(EAX, 0x1001), R(ECX, 0x2000), M(D, 0x1000)],
                expect: &[R(EAX, 0x1000), M(D, 0x1000), F(ARITH, 0)],
            },
            Case {
                name: "cmpxchg [ebx],cx differ",
                bytes: &[0x66, 0x0f, 0xb1, 0x0b],
                init: &[R(EBX, D), R(EAX, 0xffff_0000), R(ECX, 0x2000), M(D, 0x9999_0001)],
                expect: &[R(EAX, 0xffff_0001), M(D, 0x9999_0001), F(ARITH, CF | SF | AF | PF)],
            },
            Case {
                name: "cmpxchg [ebx],cl equal",
                bytes: &[0x0f, 0xb0, 0x0b],
                init: &[R(EBX, D), R(EAX, 0x42), R(ECX, 0x24), M(D, 0x9999_0042)],
                expect: &[R(EAX, 0x42), M(D, 0x9999_0024), F(ARITH, ZF | PF)],
            },
        ]);
    }

    #[test]
    fn cmpxchg_mismatch_writes_memory_back() {
        // A mismatching CMPXCHG to a read-only segment still faults (the write happens)
        // and leaves the accumulator and flags alone.
        let mut t = TestBox::new(&[]);
        t.cpu.state.seg[Seg::Ds as usize].access &= !popek_cpu::state::access::RW;
        t.cpu.state.gpr[EBX] = D;
        t.cpu.state.gpr[EAX] = 1;
        t.poke(D, &2u32.to_le_bytes());
        let flags_before = t.cpu.state.eflags;
        let r = t.exec_one(&[0x0f, 0xb1, 0x0b]);
        assert_eq!(r, Err(Event::Exception(Exception::GeneralProtection(0))));
        assert_eq!(t.cpu.state.gpr[EAX], 1);
        assert_eq!(t.cpu.state.eflags, flags_before);
    }

    #[test]
    fn cmpxchg8b_both_outcomes() {
        run_cases(&[
            Case {
                name: "cmpxchg8b equal",
                bytes: &[0x0f, 0xc7, 0x0e],
                init: &[
                    R(ESI, D),
                    M(D, 0x1111_1111),
                    M(D + 4, 0x2222_2222),
                    R(EAX, 0x1111_1111),
                    R(EDX, 0x2222_2222),
                    R(EBX, 0x3333_3333),
                    R(ECX, 0x4444_4444),
                    F(CF | SF | OF, 0),
                ],
                expect: &[
                    M(D, 0x3333_3333),
                    M(D + 4, 0x4444_4444),
                    R(EAX, 0x1111_1111),
                    R(EDX, 0x2222_2222),
                    F(ARITH, ZF | CF | SF | OF),
                ],
            },
            Case {
                // Only the high halves differ.
                name: "cmpxchg8b differ",
                bytes: &[0x0f, 0xc7, 0x0e],
                init: &[
                    R(ESI, D),
                    M(D, 0x1111_1111),
                    M(D + 4, 0x2222_2222),
                    R(EAX, 0x1111_1111),
                    R(EDX, 0x2222_2223),
                    R(EBX, 0x3333_3333),
                    R(ECX, 0x4444_4444),
                    F(ZF | PF, 0),
                ],
                expect: &[
                    M(D, 0x1111_1111),
                    M(D + 4, 0x2222_2222),
                    R(EAX, 0x1111_1111),
                    R(EDX, 0x2222_2222),
                    R(EBX, 0x3333_3333),
                    R(ECX, 0x4444_4444),
                    F(ARITH, PF),
                ],
            },
            Case {
                name: "cmpxchg8b [disp32] differ low",
                bytes: &[0x0f, 0xc7, 0x0d, 0x08, 0x00, 0x01, 0x00],
                init: &[M(D + 8, 5), M(D + 12, 6), R(EAX, 4), R(EDX, 6), F(ZF, 0)],
                expect: &[M(D + 8, 5), M(D + 12, 6), R(EAX, 5), R(EDX, 6), F(ZF, 0)],
            },
        ]);
    }

    #[test]
    fn cmpxchg8b_straddling_the_limit_faults_before_writing() {
        let mut t = TestBox::new(&[]);
        small_ds(&mut t);
        t.cpu.state.gpr[ESI] = 0xfffc; // low dword fits, high dword does not
        let r = t.exec_one(&[0x0f, 0xc7, 0x0e]);
        assert_eq!(r, Err(Event::Exception(Exception::GeneralProtection(0))));
    }

    #[test]
    fn cmpxchg8b_register_operand_is_not_ours() {
        let insn = Decoder::with_ip(32, &[0x0f, 0xc7, 0xc8], 0, DecoderOptions::NONE).decode();
        assert!(insn.is_invalid() || lookup(&insn).is_none());
    }
}
