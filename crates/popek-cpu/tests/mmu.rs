//! 32-bit paging and the TLB (SDM Vol. 3A 4.3 "32-bit paging", 4.6 access rights,
//! 4.7 page-fault error codes, 4.8 accessed and dirty flags, 4.10 TLBs), with page
//! directories and tables built by hand in guest RAM. Expected physical addresses,
//! entry values and error codes are worked out from the SDM's formulas.

use popek_cpu::exception::{Exception, pf};
use popek_cpu::mmu::pte::{A, D, G, P, PS, RW, US};
use popek_cpu::state::{Seg, access, cr0, cr4};
use popek_cpu::{AccessKind, CodeWrite, Cpu, GuestMemory, LinearAddr, NullBus, PhysAddr, SmcStats};

/// Page directory.
const PD: u32 = 0x1000;
/// Page table for linear 0..4 MiB (PDE 0).
const PT: u32 = 0x2000;

fn rd(cpu: &Cpu, a: u32) -> u32 {
    u32::from_le_bytes(cpu.mem.read_ram::<4>(a as usize).unwrap())
}

fn wr(cpu: &mut Cpu, a: u32, v: u32) {
    assert!(cpu.mem.write_ram(a as usize, v.to_le_bytes()));
}

/// Address of the PTE for `lin` in the table at `PT`.
fn pte_addr(lin: u32) -> u32 {
    PT + ((lin >> 12) & 0x3ff) * 4
}

/// Address of the PDE for `lin`.
fn pde_addr(lin: u32) -> u32 {
    PD + (lin >> 22) * 4
}

/// A CPU with paging on (CR3 = PD), PDE 0 → PT with `pde_flags`, nothing else mapped.
fn paged(ram: u64, pde_flags: u32) -> Cpu {
    let mut cpu = Cpu::new(GuestMemory::new(ram).unwrap());
    wr(&mut cpu, PD, PT | pde_flags);
    cpu.state.cr3 = PD;
    cpu.state.cr0 |= cr0::PG;
    cpu
}

fn map(cpu: &mut Cpu, lin: u32, phys: u32, flags: u32) {
    wr(cpu, pte_addr(lin), phys | flags);
}

fn tr(cpu: &mut Cpu, lin: u32, kind: AccessKind, user: bool) -> Result<u32, Exception> {
    cpu.translate(&mut popek_cpu::NullBus::default(), LinearAddr(lin), kind, user).map(|p| p.0)
}

fn page_fault(addr: u32, code: u32) -> Result<u32, Exception> {
    Err(Exception::PageFault { addr, code })
}

#[test]
fn small_page_walk_sets_accessed_on_read_and_dirty_on_write() {
    let mut cpu = paged(1 << 20, P | RW | US);
    map(&mut cpu, 0x5000, 0x8000, P | RW | US);
    assert_eq!(tr(&mut cpu, 0x5123, AccessKind::Read, false), Ok(0x8123));
    assert_eq!(rd(&cpu, PD), PT | P | RW | US | A, "PDE: A set, D never set on a PDE for a 4 KiB page");
    assert_eq!(rd(&cpu, pte_addr(0x5000)), 0x8000 | P | RW | US | A, "PTE: A on read, no D");
    assert_eq!(tr(&mut cpu, 0x5ffc, AccessKind::Write, false), Ok(0x8ffc));
    assert_eq!(rd(&cpu, pte_addr(0x5000)), 0x8000 | P | RW | US | A | D, "PTE: D on write");
    assert_eq!(rd(&cpu, PD), PT | P | RW | US | A, "PDE still without D");
}

#[test]
fn big_page_with_pse() {
    let mut cpu = paged(1 << 20, P | RW);
    cpu.state.cr4 |= cr4::PSE;
    // PDE 1 maps linear 4 MiB..8 MiB onto physical 0..4 MiB.
    wr(&mut cpu, pde_addr(0x40_0000), P | RW | PS);
    assert_eq!(tr(&mut cpu, 0x41_2345, AccessKind::Read, false), Ok(0x1_2345));
    assert_eq!(rd(&cpu, pde_addr(0x40_0000)), P | RW | PS | A);
    assert_eq!(tr(&mut cpu, 0x4f_fff0, AccessKind::Write, false), Ok(0xf_fff0));
    assert_eq!(rd(&cpu, pde_addr(0x40_0000)), P | RW | PS | A | D, "the 4 MiB PDE is the leaf: it gets D");
}

#[test]
fn ps_is_ignored_without_cr4_pse() {
    let mut cpu = paged(1 << 20, P | RW);
    // Without PSE the PDE (frame 0) points at a page table at physical 0.
    wr(&mut cpu, pde_addr(0x40_0000), P | RW | PS);
    // PTE index 0x12 of that table lives at physical 0x48.
    wr(&mut cpu, 0x48, 0x9000 | P | RW);
    assert_eq!(tr(&mut cpu, 0x41_2345, AccessKind::Read, false), Ok(0x9345));
}

#[test]
fn user_access_to_supervisor_page() {
    let mut cpu = paged(1 << 20, P | RW | US);
    map(&mut cpu, 0x5000, 0x8000, P | RW); // supervisor page
    assert_eq!(tr(&mut cpu, 0x5010, AccessKind::Read, true), page_fault(0x5010, pf::U | pf::P));
    assert_eq!(tr(&mut cpu, 0x5010, AccessKind::Write, true), page_fault(0x5010, pf::U | pf::W | pf::P));
    assert_eq!(tr(&mut cpu, 0x5010, AccessKind::Read, false), Ok(0x8010), "supervisor may");

    // U/S must be set in both levels: a user PTE under a supervisor PDE is still supervisor.
    let mut cpu = paged(1 << 20, P | RW);
    map(&mut cpu, 0x6000, 0x9000, P | RW | US);
    assert_eq!(tr(&mut cpu, 0x6000, AccessKind::Read, true), page_fault(0x6000, pf::U | pf::P));
}

#[test]
fn user_write_to_read_only_page() {
    let mut cpu = paged(1 << 20, P | RW | US);
    map(&mut cpu, 0x5000, 0x8000, P | US);
    assert_eq!(tr(&mut cpu, 0x5004, AccessKind::Read, true), Ok(0x8004));
    assert_eq!(tr(&mut cpu, 0x5004, AccessKind::Write, true), page_fault(0x5004, pf::U | pf::W | pf::P));
    assert_eq!(rd(&cpu, pte_addr(0x5000)) & D, 0, "a faulting write sets no D");

    // R/W clear in the PDE alone makes the page read-only too.
    let mut cpu = paged(1 << 20, P | US);
    map(&mut cpu, 0x5000, 0x8000, P | RW | US);
    assert_eq!(tr(&mut cpu, 0x5004, AccessKind::Write, true), page_fault(0x5004, pf::U | pf::W | pf::P));
}

#[test]
fn supervisor_write_to_read_only_page_depends_on_wp() {
    let mut cpu = paged(1 << 20, P | RW | US);
    map(&mut cpu, 0x5000, 0x8000, P | US);
    assert_eq!(tr(&mut cpu, 0x5008, AccessKind::Write, false), Ok(0x8008), "WP=0: supervisor ignores R/W");
    cpu.state.cr0 |= cr0::WP;
    cpu.tlb.flush_all(); // what MOV CR0 does when WP changes
    assert_eq!(tr(&mut cpu, 0x5008, AccessKind::Write, false), page_fault(0x5008, pf::W | pf::P));
    assert_eq!(tr(&mut cpu, 0x5008, AccessKind::Read, false), Ok(0x8008));
}

#[test]
fn not_present_faults_have_no_p_bit() {
    // Empty PDE.
    let mut cpu = paged(1 << 20, P | RW | US);
    assert_eq!(tr(&mut cpu, 0x80_0123, AccessKind::Read, false), page_fault(0x80_0123, 0));
    assert_eq!(tr(&mut cpu, 0x80_0123, AccessKind::Write, true), page_fault(0x80_0123, pf::W | pf::U));
    // Present PDE, empty PTE.
    assert_eq!(tr(&mut cpu, 0x7abc, AccessKind::Write, false), page_fault(0x7abc, pf::W));
    assert_eq!(tr(&mut cpu, 0x7abc, AccessKind::Read, true), page_fault(0x7abc, pf::U));
    // CR2 is written by delivery, not by the walk.
    assert_eq!(cpu.state.cr2, 0);
}

#[test]
fn user_mode_segment_accesses_use_user_rights() {
    let mut cpu = paged(1 << 20, P | RW | US);
    map(&mut cpu, 0x5000, 0x8000, P | RW); // supervisor page
    let mut bus = NullBus::default();
    wr(&mut cpu, 0x8010, 0xdead_beef);
    assert_eq!(cpu.read(&mut bus, Seg::Ds, 0x5010, 4), Ok(0xdead_beef), "CPL 0");
    cpu.state.cpl = 3;
    cpu.state.seg[Seg::Ds as usize].access |= 3 << access::DPL_SHIFT;
    assert_eq!(cpu.read(&mut bus, Seg::Ds, 0x5010, 4), Err(Exception::PageFault { addr: 0x5010, code: pf::U | pf::P }));
    // Implicit system accesses are supervisor accesses even at CPL 3.
    assert_eq!(cpu.read_system(&mut bus, 0x5010, 4), Ok(0xdead_beef));
}

#[test]
fn global_pages_survive_cr3_flushes_but_not_flush_all() {
    let mut cpu = paged(1 << 20, P | RW);
    cpu.state.cr4 |= cr4::PGE;
    map(&mut cpu, 0x5000, 0x8000, P | RW | G);
    map(&mut cpu, 0x6000, 0x9000, P | RW);
    assert_eq!(tr(&mut cpu, 0x5000, AccessKind::Read, false), Ok(0x8000));
    assert_eq!(tr(&mut cpu, 0x6000, AccessKind::Read, false), Ok(0x9000));
    // Remap both pages in memory.
    map(&mut cpu, 0x5000, 0xa000, P | RW | G);
    map(&mut cpu, 0x6000, 0xb000, P | RW);
    cpu.tlb.flush_non_global();
    assert_eq!(tr(&mut cpu, 0x5000, AccessKind::Read, false), Ok(0x8000), "global entry kept");
    assert_eq!(tr(&mut cpu, 0x6000, AccessKind::Read, false), Ok(0xb000), "non-global entry dropped");
    cpu.tlb.flush_all();
    assert_eq!(tr(&mut cpu, 0x5000, AccessKind::Read, false), Ok(0xa000), "flush_all drops globals");
}

/// A CR3 flush visits only the slots filled since the last flush, or all of them once more
/// were filled than the TLB holds: either way every non-global entry goes and every global
/// one stays, through any number of flushes.
#[test]
fn cr3_flushes_drop_every_non_global_entry_however_many_were_filled() {
    let mut cpu = paged(8 << 20, P | RW);
    cpu.state.cr4 |= cr4::PGE;
    // 1,000 pages (more fills than the TLB's 512 slots), every tenth global.
    let pages: Vec<u32> = (0..1000).map(|i| 0x1000 * (16 + i)).collect();
    let global = |lin: u32| (lin >> 12).is_multiple_of(10);
    let flags = |lin: u32| P | RW | if global(lin) { G } else { 0 };
    for few in [false, true] {
        let used = if few { &pages[..20] } else { &pages[..] };
        for &lin in used {
            map(&mut cpu, lin, lin + 0x10_0000, flags(lin));
            assert_eq!(tr(&mut cpu, lin, AccessKind::Read, false), Ok(lin + 0x10_0000));
        }
        // Remap every page, then flush: the next translation shows what the TLB kept.
        for &lin in used {
            map(&mut cpu, lin, lin + 0x20_0000, flags(lin));
        }
        cpu.tlb.flush_non_global();
        cpu.tlb.flush_non_global();
        for &lin in used {
            let kept = cpu.tlb.entries[0][popek_cpu::Tlb::index(lin)].read_tag == lin;
            assert!(!kept || global(lin), "{lin:#x}: a non-global entry survived");
            assert!(kept || !global(lin) || !few, "{lin:#x}: a global entry went");
            let expected = if kept { lin + 0x10_0000 } else { lin + 0x20_0000 };
            assert_eq!(tr(&mut cpu, lin, AccessKind::Read, false), Ok(expected), "{lin:#x}");
        }
        cpu.tlb.flush_all();
    }
}

#[test]
fn g_bit_without_cr4_pge_is_not_global() {
    let mut cpu = paged(1 << 20, P | RW);
    map(&mut cpu, 0x5000, 0x8000, P | RW | G);
    assert_eq!(tr(&mut cpu, 0x5000, AccessKind::Read, false), Ok(0x8000));
    map(&mut cpu, 0x5000, 0xa000, P | RW | G);
    cpu.tlb.flush_non_global();
    assert_eq!(tr(&mut cpu, 0x5000, AccessKind::Read, false), Ok(0xa000));
}

#[test]
fn flush_page_drops_a_stale_translation() {
    let mut cpu = paged(1 << 20, P | RW);
    map(&mut cpu, 0x5000, 0x8000, P | RW);
    map(&mut cpu, 0x6000, 0x9000, P | RW);
    assert_eq!(tr(&mut cpu, 0x5000, AccessKind::Read, false), Ok(0x8000));
    assert_eq!(tr(&mut cpu, 0x6000, AccessKind::Read, false), Ok(0x9000));
    map(&mut cpu, 0x5000, 0xa000, P | RW);
    map(&mut cpu, 0x6000, 0xb000, P | RW);
    assert_eq!(tr(&mut cpu, 0x5abc, AccessKind::Read, false), Ok(0x8abc), "stale until flushed");
    cpu.tlb.flush_page(0x5fff);
    assert_eq!(tr(&mut cpu, 0x5abc, AccessKind::Read, false), Ok(0xaabc));
    assert_eq!(tr(&mut cpu, 0x6000, AccessKind::Read, false), Ok(0x9000), "other pages untouched");
}

#[test]
fn flush_page_on_a_big_page_drops_all_of_it() {
    let mut cpu = paged(8 << 20, P | RW);
    cpu.state.cr4 |= cr4::PSE;
    wr(&mut cpu, pde_addr(0x40_0000), P | RW | PS); // → physical 0
    assert_eq!(tr(&mut cpu, 0x40_1000, AccessKind::Read, false), Ok(0x1000));
    assert_eq!(tr(&mut cpu, 0x43_5000, AccessKind::Read, false), Ok(0x3_5000));
    wr(&mut cpu, pde_addr(0x40_0000), 0x40_0000 | P | RW | PS); // → physical 4 MiB
    cpu.tlb.flush_page(0x40_1000);
    // INVLPG invalidates the whole 4 MiB page (SDM Vol. 2 INVLPG), not one 4 KiB slice.
    assert_eq!(tr(&mut cpu, 0x40_1000, AccessKind::Read, false), Ok(0x40_1000));
    assert_eq!(tr(&mut cpu, 0x43_5000, AccessKind::Read, false), Ok(0x43_5000));
}

#[test]
fn a_tlb_hit_does_not_walk_again() {
    let mut cpu = paged(1 << 20, P | RW);
    map(&mut cpu, 0x5000, 0x8000, P | RW);
    assert_eq!(tr(&mut cpu, 0x5000, AccessKind::Write, false), Ok(0x8000));
    // Change the PTE (new frame, A and D cleared) without any flush.
    map(&mut cpu, 0x5000, 0xa000, P | RW);
    wr(&mut cpu, PD, PT | P | RW);
    assert_eq!(tr(&mut cpu, 0x5010, AccessKind::Read, false), Ok(0x8010));
    assert_eq!(tr(&mut cpu, 0x5010, AccessKind::Write, false), Ok(0x8010));
    assert_eq!(rd(&cpu, pte_addr(0x5000)), 0xa000 | P | RW, "no walk: A/D not set again");
    assert_eq!(rd(&cpu, PD), PT | P | RW);
    // Even a now not-present PTE keeps translating until a flush.
    map(&mut cpu, 0x5000, 0, 0);
    assert_eq!(tr(&mut cpu, 0x5010, AccessKind::Read, false), Ok(0x8010));
    cpu.tlb.flush_page(0x5000);
    assert_eq!(tr(&mut cpu, 0x5010, AccessKind::Read, false), page_fault(0x5010, 0));
}

#[test]
fn first_write_after_a_read_hit_still_sets_dirty() {
    let mut cpu = paged(1 << 20, P | RW);
    map(&mut cpu, 0x5000, 0x8000, P | RW);
    assert_eq!(tr(&mut cpu, 0x5000, AccessKind::Read, false), Ok(0x8000));
    assert_eq!(tr(&mut cpu, 0x5000, AccessKind::Write, false), Ok(0x8000));
    assert_eq!(rd(&cpu, pte_addr(0x5000)), 0x8000 | P | RW | A | D);
}

#[test]
fn page_crossing_accesses_translate_both_pages() {
    let mut cpu = paged(1 << 20, P | RW);
    let mut bus = NullBus::default();
    map(&mut cpu, 0x5000, 0x8000, P | RW);
    map(&mut cpu, 0x6000, 0xc000, P | RW); // not physically contiguous
    cpu.write_linear(&mut bus, LinearAddr(0x5ffe), 4, 0x1122_3344, false).unwrap();
    assert_eq!(cpu.mem.read_ram::<2>(0x8ffe), Some([0x44, 0x33]));
    assert_eq!(cpu.mem.read_ram::<2>(0xc000), Some([0x22, 0x11]));
    assert_eq!(cpu.read_linear(&mut bus, LinearAddr(0x5fff), 2, false), Ok(0x2233));

    // Second page not present: #PF on the second page's address, first page untouched.
    map(&mut cpu, 0x7000, 0xd000, P | RW);
    wr(&mut cpu, 0xdffc, 0x5555_5555);
    let r = cpu.write_linear(&mut bus, LinearAddr(0x7ffd), 4, 0xaabb_ccdd, false);
    assert_eq!(r, Err(Exception::PageFault { addr: 0x8000, code: pf::W }));
    assert_eq!(rd(&cpu, 0xdffc), 0x5555_5555, "nothing written to the first page");
    // Second page read-only for a user write.
    map(&mut cpu, 0x7000, 0xd000, P | RW | US);
    wr(&mut cpu, PD, PT | P | RW | US);
    map(&mut cpu, 0x8000, 0xe000, P | US);
    cpu.tlb.flush_all();
    let r = cpu.write_linear(&mut bus, LinearAddr(0x7fff), 2, 0xbeef, true);
    assert_eq!(r, Err(Exception::PageFault { addr: 0x8000, code: pf::U | pf::W | pf::P }));
    assert_eq!(rd(&cpu, 0xdffc), 0x5555_5555);
}

#[test]
fn writes_to_code_bytes_are_recorded() {
    let mut cpu = paged(1 << 20, P | RW);
    let mut bus = NullBus::default();
    map(&mut cpu, 0x5000, 0x8000, P | RW);
    // Fill the TLB with a writable entry first, then bytes 0x8004..0x8010 become code.
    cpu.write_linear(&mut bus, LinearAddr(0x5000), 4, 1, false).unwrap();
    assert!(cpu.code_writes.is_empty());
    cpu.mark_code(0x8004, 12);
    cpu.write_linear(&mut bus, LinearAddr(0x5004), 1, 0x90, false).unwrap();
    assert_eq!(cpu.code_writes, vec![CodeWrite { phys: 0x8004, len: 1 }]);
    assert_eq!(cpu.mem.read_ram::<1>(0x8004), Some([0x90]));
    // Data beside the code: counted, nothing to drop.
    cpu.write_linear(&mut bus, LinearAddr(0x5000), 4, 7, false).unwrap();
    cpu.write_linear(&mut bus, LinearAddr(0x5010), 4, 7, false).unwrap();
    assert_eq!(cpu.code_writes.len(), 1);
    assert_eq!(cpu.smc_stats, SmcStats { code: 1, data: 2 });
    // A dword that ends in the code.
    cpu.write_linear(&mut bus, LinearAddr(0x5001), 4, 0, false).unwrap();
    assert_eq!(cpu.code_writes[1], CodeWrite { phys: 0x8001, len: 4 });
    // Without paging too, and across a page boundary into code.
    let mut cpu = Cpu::new(GuestMemory::new(1 << 20).unwrap());
    cpu.mark_code(0x4000, 2);
    cpu.write_phys(&mut bus, PhysAddr(0x3ffe), 4, 0);
    assert_eq!(cpu.code_writes, vec![CodeWrite { phys: 0x4000, len: 2 }]);
}

/// An 8-byte descriptor-table entry: one translation inside a page, both pages (in order,
/// low dword first) across one, and a fault on the second page for the high dword.
#[test]
fn descriptor_pairs_read_as_two_dwords_would() {
    let mut cpu = paged(1 << 20, P | RW);
    map(&mut cpu, 0x5000, 0x8000, P | RW);
    map(&mut cpu, 0x6000, 0xa000, P | RW);
    let mut bus = NullBus::default();
    wr(&mut cpu, 0x8010, 0x1122_3344);
    wr(&mut cpu, 0x8014, 0x5566_7788);
    assert_eq!(cpu.read_system_pair(&mut bus, 0x5010), Ok((0x1122_3344, 0x5566_7788)));
    // Across the page boundary: the low dword from linear 0x5ffc (physical 0x8ffc), the
    // high one from 0x6000 (physical 0xa000).
    wr(&mut cpu, 0x8ffc, 0xaabb_ccdd);
    wr(&mut cpu, 0xa000, 0x0102_0304);
    assert_eq!(cpu.read_system_pair(&mut bus, 0x5ffc), Ok((0xaabb_ccdd, 0x0102_0304)));
    // Straddling into an unmapped page: the high dword's page faults, at its address; with
    // the low dword's page unmapped too, that one faults first.
    map(&mut cpu, 0x7000, 0xb000, P | RW);
    assert_eq!(cpu.read_system_pair(&mut bus, 0x7ffc), Err(Exception::PageFault { addr: 0x8000, code: 0 }));
    assert_eq!(cpu.read_system_pair(&mut bus, 0x8ffc), Err(Exception::PageFault { addr: 0x8ffc, code: 0 }));
}

/// The quick accesses hit only what the TLB holds: a read hit for reads, a write hit (a
/// dirty RAM page) for writes, for the same privilege, inside the page; anything else is
/// left to the full access, with nothing done.
#[test]
fn quick_accesses_hit_only_what_the_tlb_holds() {
    let mut cpu = paged(1 << 20, P | RW);
    map(&mut cpu, 0x5000, 0x8000, P | RW);
    let mut bus = NullBus::default();
    assert_eq!(cpu.read_quick::<4>(0x5010, false), None, "nothing filled yet");
    assert!(!cpu.write_quick::<4>(0x5010, 1, false));
    assert_eq!(cpu.read(&mut bus, Seg::Ds, 0x5010, 4), Ok(0));
    assert_eq!(cpu.read_quick::<4>(0x5010, false), Some(0), "a read filled the read tag");
    assert!(!cpu.write_quick::<4>(0x5010, 1, false), "the page is not dirty yet: no write hit");
    assert_eq!(cpu.write(&mut bus, Seg::Ds, 0x5010, 4, 0x1234_5678), Ok(()));
    assert!(cpu.write_quick::<2>(0x5012, 0xabcd, false), "the write filled the write tag");
    assert_eq!(rd(&cpu, 0x8010), 0xabcd_5678);
    assert_eq!(cpu.read_quick::<8>(0x5010, false), Some(0xabcd_5678));
    assert_eq!(cpu.read_quick::<4>(0x5ffe, false), None, "crosses the page");
    assert!(!cpu.write_quick::<4>(0x5ffe, 0, false), "crosses the page");
    assert_eq!(cpu.read_quick::<4>(0x5010, true), None, "the user set was not filled");
}

#[test]
fn quick_runs_of_values_hit_only_what_the_tlb_holds() {
    let mut cpu = paged(1 << 20, P | RW);
    map(&mut cpu, 0x5000, 0x8000, P | RW);
    let mut bus = NullBus::default();
    let mut v = [0u32; 3];
    assert!(!cpu.read_quick_values(0x5010, 4, false, &mut v), "nothing filled yet");
    assert!(!cpu.write_quick_values(0x5010, 4, false, &[1, 2, 3]));
    assert_eq!(cpu.write(&mut bus, Seg::Ds, 0x5010, 4, 0), Ok(()));
    assert!(cpu.write_quick_values(0x5010, 4, false, &[0x1111_2222, 0x3333_4444, 0x5555_6666]));
    assert_eq!((rd(&cpu, 0x8010), rd(&cpu, 0x8014), rd(&cpu, 0x8018)), (0x1111_2222, 0x3333_4444, 0x5555_6666));
    assert!(cpu.read_quick_values(0x5012, 2, false, &mut v));
    assert_eq!(v, [0x1111, 0x4444, 0x3333], "2-byte values, lowest address first");
    assert!(!cpu.read_quick_values(0x5ff8, 4, false, &mut v), "12 bytes from 0x5ff8 cross the page");
    assert!(!cpu.write_quick_values(0x5ffc, 2, false, &[0, 0, 0]), "crosses the page");
    assert!(!cpu.read_quick_values(0x5010, 4, true, &mut v), "the user set was not filled");
    assert_eq!(rd(&cpu, 0x8ffc), 0, "nothing written where it would have crossed");
}

/// A device's page keeps its translation in the TLB as a RAM page does (until INVLPG), and
/// only for the kind of access that needs no walk: a write to a page not yet dirty walks
/// and sets D. No RAM fast path ever hits it.
#[test]
fn a_device_page_keeps_its_translation_until_invlpg() {
    let mut mem = GuestMemory::new(1 << 20).unwrap();
    mem.add_hole(0xa0000, 0xc0000).unwrap();
    let mut cpu = Cpu::new(mem);
    wr(&mut cpu, PD, PT | P | RW);
    cpu.state.cr3 = PD;
    cpu.state.cr0 |= cr0::PG;
    map(&mut cpu, 0x5000, 0xa0000, P | RW);
    assert_eq!(tr(&mut cpu, 0x5010, AccessKind::Read, false), Ok(0xa0010));
    assert_eq!(rd(&cpu, pte_addr(0x5000)), 0xa0000 | P | RW | A, "the walk set A");
    // The PTE moves the page elsewhere without an INVLPG: the TLB still holds the old one.
    map(&mut cpu, 0x5000, 0xb0000, P | RW | A);
    assert_eq!(tr(&mut cpu, 0x5010, AccessKind::Read, false), Ok(0xa0010));
    assert_eq!(cpu.read_quick::<4>(0x5010, false), None, "a device's page is no RAM hit");
    // A write walks (D is clear), finds the new mapping and sets D.
    assert_eq!(tr(&mut cpu, 0x5010, AccessKind::Write, false), Ok(0xb0010));
    assert_eq!(rd(&cpu, pte_addr(0x5000)), 0xb0000 | P | RW | A | D);
    map(&mut cpu, 0x5000, 0xa0000, P | RW | A | D);
    assert_eq!(tr(&mut cpu, 0x5010, AccessKind::Write, false), Ok(0xb0010), "now cached for writes too");
    cpu.tlb.flush_page(0x5000);
    assert_eq!(tr(&mut cpu, 0x5010, AccessKind::Read, false), Ok(0xa0010), "INVLPG dropped it");
}
