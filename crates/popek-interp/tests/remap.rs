//! A guest that remaps a code page and invalidates the translation (INVLPG or
//! MOV CR3, SDM Vol. 3A 4.10.4.1) runs the new physical code at the same linear
//! address, even though the old block was reached through the jump table before.
//! (The guest's PTE stores are plain data writes; the page tables are not code.)

use popek_cpu::iced_x86::code_asm::*;
use popek_cpu::state::cr0;
use popek_cpu::state::gpr::EBX;
use popek_interp::testing::{CODE_BASE, TestBox};

/// Page directory and the page table for linear 0..4 MiB (identity-mapped).
const PD: u32 = 0x2_0000;
const PT: u32 = 0x2_1000;
/// The linear page of the callee, first mapped to PHYS_A, then to PHYS_B.
const LIN: u32 = 0x5_0000;
const PHYS_A: u32 = 0x3_0000;
const PHYS_B: u32 = 0x3_1000;

/// `mov eax, imm ; ret`.
fn callee(imm: u32) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    a.mov(eax, imm).unwrap();
    a.ret().unwrap();
    a.assemble(LIN as u64).unwrap()
}

/// Four times: call LIN and shift its EAX into EBX, then toggle LIN's PTE between
/// PHYS_A and PHYS_B and invalidate with `flush`. From the second iteration on every
/// block has run before, so a jump table that missed the flush would hand out the
/// previous callee at LIN.
fn program(flush: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    let pte = PT + (LIN >> 12) * 4;
    (|| -> Result<(), IcedError> {
        let mut top = a.create_label();
        a.mov(ebx, 0u32)?;
        a.mov(edi, 4u32)?;
        a.set_label(&mut top)?;
        a.call(LIN as u64)?;
        a.shl(ebx, 8)?;
        a.or(ebx, eax)?;
        a.xor(dword_ptr(pte), PHYS_A ^ PHYS_B)?;
        flush(&mut a)?;
        a.dec(edi)?;
        a.jnz(top)
    })()
    .unwrap();
    a.assemble(CODE_BASE as u64).unwrap()
}

#[test]
fn remapped_code_page_runs_its_new_code() {
    type Flush = fn(&mut CodeAssembler) -> Result<(), IcedError>;
    let flushes: [(&str, Flush); 2] = [
        ("invlpg", |a| a.invlpg(byte_ptr(LIN))),
        ("mov cr3", |a| {
            a.mov(ecx, cr3)?;
            a.mov(cr3, ecx)
        }),
    ];
    for (name, flush) in flushes {
        let mut t = TestBox::new(&program(flush));
        // Identity-map the 1 MiB of RAM, except LIN → PHYS_A.
        t.poke(PD, &(PT | 3).to_le_bytes());
        for page in 0..256u32 {
            let phys = if page == LIN >> 12 { PHYS_A } else { page << 12 };
            t.poke(PT + page * 4, &(phys | 3).to_le_bytes());
        }
        t.poke(PHYS_A, &callee(0xa));
        t.poke(PHYS_B, &callee(0xb));
        t.cpu.state.cr3 = PD;
        t.cpu.state.cr0 |= cr0::PG;
        t.run(100).unwrap();
        assert_eq!(t.cpu.state.gpr[EBX], 0x0a0b_0a0b, "{name}: A, B, A, B");
    }
}
