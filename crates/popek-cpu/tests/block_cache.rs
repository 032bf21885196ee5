//! The block cache's jump table (CS base + EIP → block): it must never hand out a
//! block that the slow path (segment limit, page walk with U/S checks, physical
//! key) would not, after TLB flushes (SDM Vol. 3A 4.10.4), privilege changes or
//! writes to the code (SMC). Code bytes: `B8 id` is MOV EAX, imm32 and `C3` is RET.

use popek_cpu::block::BlockCache;
use popek_cpu::exception::{Exception, pf};
use popek_cpu::iced_x86::Instruction;
use popek_cpu::mmu::pte::{P, RW, US};
use popek_cpu::state::{Seg, cr0};
use popek_cpu::{Cpu, GuestMemory, NullBus, PhysAddr};

/// Page directory, and the page table for linear 0..4 MiB.
const PD: u32 = 0x1000;
const PT: u32 = 0x2000;
/// Where the code under test is mapped, and two physical pages it can map to.
const LIN: u32 = 0x5000;
const PHYS_A: u32 = 0x8000;
const PHYS_B: u32 = 0x9000;

fn wr(cpu: &mut Cpu, a: u32, v: u32) {
    assert!(cpu.mem.write_ram(a as usize, v.to_le_bytes()));
}

/// `mov eax, imm ; ret` at physical `at`.
fn code(cpu: &mut Cpu, at: u32, imm: u32) {
    let mut bytes = vec![0xb8];
    bytes.extend_from_slice(&imm.to_le_bytes());
    bytes.push(0xc3);
    assert!(cpu.mem.load(PhysAddr(at), &bytes));
}

/// Paging on, LIN → PHYS_A with `pte_flags`; PHYS_A holds `mov eax, 0xa`, PHYS_B `mov eax, 0xb`.
fn setup(pte_flags: u32) -> Cpu {
    let mut cpu = Cpu::new(GuestMemory::new(1 << 20).unwrap());
    wr(&mut cpu, PD, PT | P | RW | US);
    wr(&mut cpu, PT + (LIN >> 12) * 4, PHYS_A | pte_flags);
    code(&mut cpu, PHYS_A, 0xa);
    code(&mut cpu, PHYS_B, 0xb);
    cpu.state.cr3 = PD;
    cpu.state.cr0 |= cr0::PG;
    cpu.state.eip = LIN;
    cpu
}

/// Looks up the block at CS:EIP; returns the immediate of its first instruction.
fn run(cache: &mut BlockCache<()>, cpu: &mut Cpu) -> Result<u32, Exception> {
    let b = cache.lookup(cpu, &mut NullBus::default(), &mut |_: &Instruction, _: &popek_cpu::block::BlockKey| ())?;
    Ok(b.insns[0].insn.immediate32())
}

#[test]
fn a_second_lookup_is_a_jump_table_hit() {
    let mut cpu = setup(P | RW | US);
    let mut cache = BlockCache::default();
    assert_eq!(run(&mut cache, &mut cpu), Ok(0xa));
    assert_eq!(run(&mut cache, &mut cpu), Ok(0xa));
    assert_eq!((cache.stats.decoded, cache.stats.hits, cache.stats.jump_hits), (1, 1, 1));
}

/// Remapping LIN to PHYS_B and invalidating in each of the ways the SDM provides
/// (INVLPG, MOV CR3, CR0/CR4 paging-mode changes) makes the next lookup run PHYS_B.
#[test]
fn every_tlb_flush_reaches_the_jump_table() {
    type Flush = fn(&mut Cpu);
    let flushes: [(&str, Flush); 3] = [
        ("INVLPG", |cpu| cpu.tlb.flush_page(LIN)),
        ("MOV CR3", |cpu| cpu.tlb.flush_non_global()),
        ("CR0/CR4 change", |cpu| cpu.tlb.flush_all()),
    ];
    for (name, flush) in flushes {
        let mut cpu = setup(P | RW | US);
        let mut cache = BlockCache::default();
        assert_eq!(run(&mut cache, &mut cpu), Ok(0xa), "{name}");
        assert_eq!(run(&mut cache, &mut cpu), Ok(0xa), "{name}: from the jump table");
        wr(&mut cpu, PT + (LIN >> 12) * 4, PHYS_B | P | RW | US);
        flush(&mut cpu);
        assert_eq!(run(&mut cache, &mut cpu), Ok(0xb), "{name}: the remapped page runs");
    }
}

/// INVLPG of a page no code was looked up on keeps the jump table (and the JIT's chains:
/// the same TLB generation); of the code's page, or of any page of its 4 MiB region while
/// 4 MiB pages may be cached, it does not.
#[test]
fn invlpg_of_a_data_page_keeps_the_jump_table() {
    let mut cpu = setup(P | RW | US);
    let mut cache = BlockCache::default();
    assert_eq!(run(&mut cache, &mut cpu), Ok(0xa));
    let generation = cpu.tlb.generation;
    cpu.tlb.flush_page(LIN + 0x1000);
    assert_eq!(cpu.tlb.generation, generation, "a data page");
    assert_eq!(run(&mut cache, &mut cpu), Ok(0xa));
    assert_eq!(cache.stats.jump_hits, 1, "still in the jump table");
    cpu.tlb.large = true;
    cpu.tlb.flush_page(LIN + 0x1000);
    assert_ne!(cpu.tlb.generation, generation, "the same 4 MiB region, with 4 MiB pages about");
    cpu.tlb.large = false;
    assert_eq!(run(&mut cache, &mut cpu), Ok(0xa));
    let generation = cpu.tlb.generation;
    wr(&mut cpu, PT + (LIN >> 12) * 4, PHYS_B | P | RW | US);
    cpu.tlb.flush_page(LIN + 0x123);
    assert_ne!(cpu.tlb.generation, generation, "the code's page");
    assert_eq!(run(&mut cache, &mut cpu), Ok(0xb));
}

/// A supervisor-only page cached at CPL 0 still faults for a CPL-3 fetch
/// (#PF, error code P | U: present, user, read/execute).
#[test]
fn cpl_is_part_of_the_key() {
    let mut cpu = setup(P | RW);
    let mut cache = BlockCache::default();
    assert_eq!(run(&mut cache, &mut cpu), Ok(0xa));
    cpu.state.cpl = 3;
    assert_eq!(run(&mut cache, &mut cpu), Err(Exception::PageFault { addr: LIN, code: pf::P | pf::U }));
    cpu.state.cpl = 0;
    assert_eq!(run(&mut cache, &mut cpu), Ok(0xa));
}

/// The CS limit is checked on a jump-table hit too (#GP(0), SDM Vol. 3A 5.3).
#[test]
fn cs_limit_is_checked_on_a_hit() {
    let mut cpu = setup(P | RW | US);
    let mut cache = BlockCache::default();
    assert_eq!(run(&mut cache, &mut cpu), Ok(0xa));
    cpu.state.seg[Seg::Cs as usize].limit = LIN - 1;
    assert_eq!(run(&mut cache, &mut cpu), Err(Exception::GeneralProtection(0)));
}

/// A write to the code drops the block: the jump table's entry to it is dead and
/// the next lookup decodes the new bytes.
#[test]
fn written_code_is_decoded_again() {
    let mut cpu = setup(P | RW | US);
    let mut cache = BlockCache::default();
    assert_eq!(run(&mut cache, &mut cpu), Ok(0xa));
    assert_eq!(run(&mut cache, &mut cpu), Ok(0xa), "from the jump table");
    cpu.write_phys(&mut NullBus::default(), PhysAddr(PHYS_A + 1), 4, 0xc);
    assert_eq!(cache.invalidate_written(&mut cpu).len(), 1);
    assert_eq!(run(&mut cache, &mut cpu), Ok(0xc));
    assert_eq!((cache.stats.decoded, cache.stats.invalidated), (2, 1));
}

/// A write to the page but not to the block's bytes drops nothing; the page stays code.
#[test]
fn data_beside_code_drops_nothing() {
    let mut cpu = setup(P | RW | US);
    let mut cache = BlockCache::default();
    assert_eq!(run(&mut cache, &mut cpu), Ok(0xa));
    cpu.write_phys(&mut NullBus::default(), PhysAddr(PHYS_A + 0x800), 4, 0xc);
    assert!(cpu.code_writes.is_empty());
    assert!(cache.invalidate_written(&mut cpu).is_empty());
    assert!(cpu.code_pages.contains(PHYS_A >> 12));
    assert_eq!(run(&mut cache, &mut cpu), Ok(0xa));
    assert_eq!((cache.stats.decoded, cache.stats.invalidated), (1, 0));
}
