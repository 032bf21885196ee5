//! Checks on the built images and the expected outputs. Values come from the ELF and Multiboot
//! v1 specifications, not from the images themselves.

use super::*;

/// Multiboot v1 header magic (Multiboot spec 3.1.1).
const MB_MAGIC: u32 = 0x1BAD_B002;
/// The header must lie entirely in the first 8192 bytes of the image, 32-bit aligned.
const MB_SEARCH: usize = 8192;

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Offset of a valid Multiboot header (magic, flags, checksum summing to zero).
fn multiboot_header(elf: &[u8]) -> Option<usize> {
    (0..MB_SEARCH.min(elf.len()).saturating_sub(11)).step_by(4).find(|&off| {
        u32_at(elf, off) == MB_MAGIC
            && MB_MAGIC.wrapping_add(u32_at(elf, off + 4)).wrapping_add(u32_at(elf, off + 8)) == 0
    })
}

#[test]
fn every_image_is_an_elf32_i386_executable() {
    for g in GUESTS {
        let e = g.elf;
        assert!(e.len() > 52, "{}: too short", g.name);
        assert_eq!(&e[..4], b"\x7fELF", "{}: ELF magic", g.name);
        assert_eq!(e[4], 1, "{}: EI_CLASS must be ELFCLASS32", g.name);
        assert_eq!(e[5], 1, "{}: EI_DATA must be little-endian", g.name);
        assert_eq!(u16_at(e, 16), 2, "{}: e_type must be ET_EXEC", g.name);
        assert_eq!(u16_at(e, 18), 3, "{}: e_machine must be EM_386", g.name);
        let entry = u32_at(e, 24);
        let (phoff, phentsize, phnum) = (u32_at(e, 28) as usize, u16_at(e, 42) as usize, u16_at(e, 44) as usize);
        assert_eq!(phentsize, 32, "{}: Elf32_Phdr size", g.name);
        assert!(phnum > 0 && phoff + phnum * phentsize <= e.len(), "{}: program headers", g.name);
        let mut entry_loaded = false;
        for i in 0..phnum {
            let ph = phoff + i * phentsize;
            if u32_at(e, ph) != 1 {
                continue; // not PT_LOAD
            }
            let (offset, paddr, filesz, memsz) =
                (u32_at(e, ph + 4), u32_at(e, ph + 12), u32_at(e, ph + 16), u32_at(e, ph + 20));
            assert!(offset as usize + filesz as usize <= e.len(), "{}: segment {i} beyond the file", g.name);
            assert!(filesz <= memsz, "{}: segment {i} filesz > memsz", g.name);
            assert!(paddr >= 0x10_0000 && paddr + memsz <= 0x80_0000, "{}: segment {i} at {paddr:#x}", g.name);
            entry_loaded |= (paddr..paddr + filesz).contains(&entry);
        }
        assert!(entry_loaded, "{}: entry {entry:#x} not in a loaded segment", g.name);
    }
}

#[test]
fn every_image_has_a_multiboot_header_in_the_first_8k() {
    for g in GUESTS {
        let off = multiboot_header(g.elf).unwrap_or_else(|| panic!("{}: no Multiboot v1 header", g.name));
        let flags = u32_at(g.elf, off + 4);
        assert_eq!(flags & (1 << 16), 0, "{}: a.out kludge set; the ELF headers must be used", g.name);
        assert_ne!(flags & 2, 0, "{}: should ask for memory information", g.name);
    }
}

#[test]
fn multiboot_header_check_rejects_a_bad_checksum() {
    let mut img = vec![0u8; 64];
    img[8..12].copy_from_slice(&MB_MAGIC.to_le_bytes());
    img[12..16].copy_from_slice(&3u32.to_le_bytes());
    img[16..20].copy_from_slice(&0u32.wrapping_sub(MB_MAGIC + 3).to_le_bytes());
    assert_eq!(multiboot_header(&img), Some(8));
    img[16] ^= 1;
    assert_eq!(multiboot_header(&img), None);
}

#[test]
fn every_guest_has_a_passing_expected_output() {
    for g in GUESTS {
        let out = g.expected_output;
        assert!(!out.is_empty(), "{}: empty expected output", g.name);
        // A guest that is another's image under another command line passes under that name.
        let image = GUESTS.iter().find(|h| h.elf == g.elf).map_or(g.name, |h| h.name);
        assert!(out.ends_with(&format!("{image}: PASS\n")), "{}: expected output must end with PASS", g.name);
        assert!(!out.contains("FAIL"), "{}: expected output contains FAIL", g.name);
        assert!(!out.contains('\r'), "{}: the guests print bare \\n", g.name);
        assert_eq!(g.expected_exit_status, 1, "{}: exit(0) gives status 1", g.name);
        assert!(!g.description.is_empty() && !g.description.contains('\n'), "{}: one-line description", g.name);
    }
}

#[test]
fn names_are_unique_and_findable() {
    for (i, g) in GUESTS.iter().enumerate() {
        assert!(GUESTS[..i].iter().all(|h| h.name != g.name), "duplicate {}", g.name);
        assert_eq!(find(g.name).map(|f| f.name), Some(g.name));
    }
    assert!(find("no-such-guest").is_none());
    for name in ["hello", "interrupts", "paging", "usermode", "exceptions", "smc", "compute", "nanobench"] {
        assert!(find(name).is_some(), "missing guest {name}");
    }
}

#[test]
fn every_kernel_source_is_a_listed_guest() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels");
    for entry in std::fs::read_dir(dir).expect("kernels/") {
        let path = entry.expect("dir entry").path();
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("file name");
        assert!(find(stem).is_some(), "kernels/{stem}.* is not in GUESTS (and build.rs)");
    }
}

/// Where QEMU is wrong, `expected/NAME.qemu.txt` holds its output for `qemu-check.sh`. For
/// `windows` it differs from popek's only where an OUT to the 8259A unmasks IRQ0 or EOIs
/// the one in service, with IF=1 and IRQ0 pending. The SDM (Vol. 1 18.6, I/O ordering)
/// has I/O writes complete before the next instruction starts, so the PIC's INTR is up at
/// the next instruction boundary, where an enabled interrupt is recognized (Vol. 3A 6.6:
/// interrupts are taken at instruction boundaries): popek takes it right after the OUT.
/// QEMU's TCG looks at interrupt requests only between its translated blocks and the OUT
/// does not end one, so the CLI two instructions later closes the window first.
#[test]
fn windows_differs_from_qemu_only_after_an_out_to_the_pic() {
    let popek = find("windows").expect("windows guest").expected_output;
    let qemu = include_str!("../expected/windows.qemu.txt");
    let (a, b): (Vec<_>, Vec<_>) = (popek.lines().collect(), qemu.lines().collect());
    assert_eq!(a.len(), b.len());
    let mut differing = 0;
    for (p, q) in a.iter().zip(&b) {
        if p != q {
            differing += 1;
            assert!(p.starts_with("out ("), "only the OUT windows may differ: {p:?} vs {q:?}");
            assert!(p.ends_with("taken after 0 instructions") && q.ends_with("not taken"), "{p:?} vs {q:?}");
        }
    }
    assert_eq!(differing, 2, "the unmask and the EOI window");
}

/// `hostile` differs from QEMU's output in five lines, each where popek follows the
/// hardware and QEMU does not:
/// - **Memory beyond RAM** reads all ones on popek, zeros on QEMU. On a PC nothing claims
///   those addresses, and a read that no device claims ends in a master abort, which
///   returns all ones (PCI Local Bus Specification 3.0, 3.3.3.1); the SDM leaves it to the
///   platform. Writes there go nowhere in both.
/// - **A page table beyond RAM** follows from that: its entries read all ones on popek
///   (present, frame 0xFFFFF000, whose bytes also read all ones), zeros on QEMU (not
///   present, so #PF).
/// - **REP MOVSB across the end of RAM, and into the space beyond it**, follow from the
///   first: the bytes beyond RAM read all ones on popek, zeros on QEMU.
/// - **ICEBP** (F1) raises a debug exception as a trap on popek ("INT1 ... generates a
///   debug exception", SDM Vol. 2A INT n/INTO/INT3/INT1 and Vol. 3B 18.2); QEMU 7.2's TCG
///   raises #UD.
///
/// The page table in VGA memory, read through the bus as on a PC, and the REP LODSB of 4 G
/// elements that the timer interrupts between elements, are the same in both. The dword
/// across 4 GiB is the same in both: the SDM (Vol. 3A 5.3) leaves an access past
/// a 4 GiB limit implementation-specific, and popek wraps it to address 0 as QEMU does.
#[test]
fn hostile_differs_from_qemu_only_beyond_ram_and_on_icebp() {
    let popek = find("hostile").expect("hostile guest").expected_output;
    let qemu = include_str!("../expected/hostile.qemu.txt");
    let (a, b): (Vec<_>, Vec<_>) = (popek.lines().collect(), qemu.lines().collect());
    assert_eq!(a.len(), b.len());
    let differing: Vec<(&str, &str)> = a.iter().zip(&b).filter(|(p, q)| p != q).map(|(p, q)| (*p, *q)).collect();
    assert_eq!(
        differing,
        [
            (
                "read beyond RAM: ffffffff, after a write: ffffffff",
                "read beyond RAM: 00000000, after a write: 00000000"
            ),
            ("page table beyond RAM: read ffffffff", "page table beyond RAM: #PF(0)"),
            ("ICEBP: #DB 1 time(s), a trap (EIP after it): yes", "ICEBP: #UD"),
            (
                "rep movsb across the end of RAM: a0 a1 a2 a3 a4 a5 a6 a7 ff ff ff ff ff ff ff ff",
                "rep movsb across the end of RAM: a0 a1 a2 a3 a4 a5 a6 a7 00 00 00 00 00 00 00 00"
            ),
            (
                "rep movsb beyond RAM, read back: ffffffff ffffffff",
                "rep movsb beyond RAM, read back: 00000000 00000000"
            ),
        ]
    );
}

/// `expected/apic_timer.qemu.txt`: QEMU's local APIC neither sets the LVT mask bits when
/// software clears SVR bit 8 nor keeps them from being cleared while it is disabled; the
/// SDM (Vol. 3A 10.4.7.2, "Local APIC State After It Has Been Software Disabled") says
/// both happen, and popek follows it. Every other line is the same.
#[test]
fn apic_timer_differs_from_qemu_only_in_software_disable() {
    let popek = find("apic_timer").expect("apic_timer guest").expected_output;
    let qemu = include_str!("../expected/apic_timer.qemu.txt");
    let (a, b): (Vec<_>, Vec<_>) = (popek.lines().collect(), qemu.lines().collect());
    assert_eq!(a.len(), b.len());
    let differing: Vec<_> = a.iter().zip(&b).filter(|(p, q)| p != q).collect();
    assert_eq!(
        differing,
        [(
            &"software disable masks the LVTs, they stay masked: yes",
            &"software disable masks the LVTs, they stay masked: no"
        )]
    );
}

/// `disk` differs from QEMU's output in the model string of IDENTIFY DEVICE alone (words
/// 27–46: every emulator names its own disk). Everything else — statuses without DSC, IRQ
/// counts, the data, the reset signature — is the same.
#[test]
fn disk_differs_from_qemu_only_in_the_model_string() {
    let popek = find("disk").expect("disk guest").expected_output;
    let qemu = include_str!("../expected/disk.qemu.txt");
    let differing: Vec<(&str, &str)> = popek.lines().zip(qemu.lines()).filter(|(p, q)| p != q).collect();
    assert_eq!(popek.lines().count(), qemu.lines().count());
    assert_eq!(differing, [("identify: model \"POPEK HARDDISK\"", "identify: model \"QEMU HARDDISK\"")]);
}

#[test]
fn the_disk_image_is_the_documented_pattern() {
    let img = disk_image("disk").expect("the disk guest has a disk");
    assert_eq!(img.len(), DISK_SECTORS as usize * 512);
    let sector = |n: usize| &img[n * 512..(n + 1) * 512];
    assert_eq!(sector(0)[..6], [0, 0, 0, 0, 4, 5]);
    assert_eq!(sector(0x0234)[..5], [0x34, 0x02, 0, 0, 0x38]);
    assert_eq!(sector(4095)[511], ((4095 + 511) & 0xff) as u8);
    assert!(disk_image("hello").is_none());
    assert!(GUESTS.iter().filter(|g| g.disk.is_some()).all(|g| g.name == "disk"));
}

/// `expected/fpu.qemu.txt`: QEMU 7.2's TCG x87 neither detects stack overflow (a ninth
/// push overwrites ST(7) and raises nothing; SDM Vol. 1 8.5.1.1: IE and SF set, C1 = 1,
/// the masked response pushes the real indefinite) nor leaves the stack alone on an
/// unmasked zero-divide (it stores and pops; SDM Vol. 1 8.5.3 and 4.9.2: with the
/// exception unmasked the destination and the stack are unchanged), and its FXSAVE leaves
/// the six reserved bytes above each register of the area as they were (a real x87 writes
/// zeros there). popek follows the SDM and the hardware, and the host-differential test
/// (`popek-interp/tests/x87_differential.rs`) checks all three against a real x87. Every
/// other line, the transcendental results to 9 digits included, is the same.
#[test]
fn fpu_differs_from_qemu_only_in_stack_overflow_unmasked_responses_and_fxsave_padding() {
    let popek = find("fpu").expect("fpu guest").expected_output;
    let qemu = include_str!("../expected/fpu.qemu.txt");
    let (a, b): (Vec<_>, Vec<_>) = (popek.lines().collect(), qemu.lines().collect());
    assert_eq!(a.len(), b.len());
    let differing: Vec<(&str, &str)> = a.iter().zip(&b).filter(|(p, q)| p != q).map(|(p, q)| (*p, *q)).collect();
    assert_eq!(
        differing,
        [
            ("9th push (masked)        fff8000000000000", "9th push (masked)        3ff0000000000000"),
            ("  status 3a41 (IE SF C1)", "  status 3800 (IE SF C1)"),
            (
                "1/0 with ZE unmasked: status b084 (ES, B), no fault yet (count 0)",
                "1/0 with ZE unmasked: status b884 (ES, B), no fault yet (count 0)"
            ),
            (
                "#MF at the FWAIT: status in the handler b084, FNCLEX, FWAIT restarted",
                "#MF at the FWAIT: status in the handler b884, FNCLEX, FWAIT restarted"
            ),
            ("  status after 3000", "  status after 3800"),
            ("  st0: 3fff 8000000000000000", "  st0: 3fff 8000000000000000 (upper bytes not zero)"),
            ("  st1: 0000 0000000000000000", "  st1: 0000 0000000000000000 (upper bytes not zero)"),
            ("  st2: 4000 8000000000000000", "  st2: 4000 8000000000000000 (upper bytes not zero)"),
            ("  st3: 4000 c90fdaa22168c235", "  st3: 4000 c90fdaa22168c235 (upper bytes not zero)"),
        ]
    );
}

/// `nanobench_pv` is `nanobench` with `pv=1`: the same image. `expected/nanobench_pv.qemu.txt`
/// is not a QEMU bug but the fallback: QEMU has no popek hypervisor leaf, so the guest says
/// so and runs the native instructions — exactly `nanobench`'s output after that one line.
/// Under popek (the interface on) it checks the ABI first; its loop lines are the same.
#[test]
fn nanobench_pv_falls_back_to_nanobench_without_the_leaf() {
    let pv = find("nanobench_pv").expect("nanobench_pv guest");
    let native = find("nanobench").expect("nanobench guest");
    assert_eq!(pv.elf, native.elf, "one image, two command lines");
    assert_eq!(pv.cmdline, "pv=1");
    let qemu = include_str!("../expected/nanobench_pv.qemu.txt");
    assert_eq!(
        qemu.strip_prefix("paravirt: no popek hypervisor leaf: native instructions\n"),
        Some(native.expected_output)
    );
    let checks: Vec<&str> = pv.expected_output.lines().take_while(|l| !l.starts_with("syscall")).collect();
    assert_eq!(checks[0], "paravirt: CPUID 0x40000000 says popekpopekpv: hypercalls");
    assert_eq!(checks.len(), 10, "the header and nine lines of ABI checks: {checks:#?}");
    let rest = &pv.expected_output[checks.iter().map(|l| l.len() + 1).sum::<usize>()..];
    assert_eq!(rest, native.expected_output, "the loops print the same with hypercalls");
}
