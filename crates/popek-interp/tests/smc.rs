//! Self-modifying code: the decoded-block cache must never run stale bytes.

#![allow(clippy::cast_possible_truncation)] // code snippets are a few bytes long

use popek_cpu::iced_x86::code_asm::*;
use popek_cpu::state::cr0;
use popek_cpu::state::gpr::EAX;
use popek_interp::testing::{CODE_BASE, TestBox};

fn assemble(f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    f(&mut a).unwrap();
    a.assemble(CODE_BASE as u64).unwrap()
}

/// A store that patches the immediate of the very next instruction of the same block.
#[test]
fn store_into_the_same_block_is_seen() {
    // add byte [imm_addr], 1 ; add eax, 5  → the add must use 6.
    let probe = assemble(|a| {
        a.add(byte_ptr(0u32), 1)?;
        a.add(eax, 5i32)
    });
    let imm_addr = CODE_BASE + probe.len() as u32 - 4; // low byte of the imm32 (05 id)
    let code = assemble(|a| {
        a.add(byte_ptr(imm_addr), 1)?;
        a.add(eax, 5i32)
    });
    let mut t = TestBox::new(&code);
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.gpr[EAX], 6);
    assert!(t.interp.cache.stats.invalidated >= 1, "the block was dropped");
}

/// A block that ran once, then got patched, runs its new bytes the second time.
#[test]
fn patched_block_is_decoded_again() {
    // Two passes over `add eax, 1`, patched to `add eax, 0x11` after the first pass.
    let code = assemble(|a| {
        let mut top = a.create_label();
        let mut done = a.create_label();
        a.set_label(&mut top)?;
        a.add(eax, 1i32)?; // 05 01 00 00 00 at CODE_BASE, imm at +1
        a.cmp(eax, 0x12i32)?;
        a.jae(done)?;
        a.mov(byte_ptr(CODE_BASE + 1), 0x11)?;
        a.jmp(top)?;
        a.set_label(&mut done)?;
        a.hlt()
    });
    let mut t = TestBox::new(&code);
    t.run(20).unwrap();
    assert_eq!(t.cpu.state.gpr[EAX], 0x12, "1 from the first pass, 0x11 from the patched one");
}

/// A write through a second virtual alias of a code page is seen too.
#[test]
fn store_through_an_alias_is_seen() {
    // Identity-map the first 4 MiB with one PSE page, and map linear 8 MiB to the
    // same physical 4 MiB: two virtual addresses for every code byte.
    let probe = assemble(|a| {
        a.add(byte_ptr(0u32), 1)?;
        a.add(eax, 5i32)
    });
    let imm_phys = CODE_BASE + probe.len() as u32 - 4;
    let code = assemble(|a| {
        a.add(byte_ptr(0x80_0000 + imm_phys), 1)?;
        a.add(eax, 5i32)
    });
    let mut t = TestBox::new(&code);
    let pd = 0x2_0000u32;
    t.poke(pd, &0x0000_0083u32.to_le_bytes()); // PDE 0: 4 MiB page at 0, P | RW | PS
    t.poke(pd + 8, &0x0000_0083u32.to_le_bytes()); // PDE 2: linear 8 MiB → physical 0
    t.cpu.state.cr3 = pd;
    t.cpu.state.cr4 |= popek_cpu::state::cr4::PSE;
    t.cpu.state.cr0 |= cr0::PG;
    t.run(10).unwrap();
    assert_eq!(t.cpu.state.gpr[EAX], 6);
}
