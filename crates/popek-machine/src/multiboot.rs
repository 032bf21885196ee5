//! Multiboot v1 loader for ELF32 kernels and a.out-kludge images
//! (Multiboot Specification 0.6.96, sections 3.1–3.3).
//!
//! The loader copies the kernel into guest RAM, builds the Multiboot information
//! structure (memory sizes, a memory map, the command line, boot modules, the boot
//! loader name) and returns the machine state for the hand-over: EAX = 0x2BADB002,
//! EBX = the information structure, EIP = the entry point. Every malformed image is a
//! typed [`LoadError`] with a one-line message; the loader never panics on input.

use crate::firmware;
use popek_memory::{GuestMemory, PhysAddr};

/// Magic in the Multiboot header.
pub const HEADER_MAGIC: u32 = 0x1bad_b002;
/// Magic the loader passes in EAX.
pub const BOOTLOADER_MAGIC: u32 = 0x2bad_b002;
/// The header must lie within this many bytes of the image start.
pub const HEADER_SEARCH: usize = 8192;

/// Where the loader's own structures live: information structure, memory map,
/// strings and module list (inside conventional memory, below the EBDA). A kernel
/// that loads a segment there (kvm-unit-tests' `realmode` runs from 0x8000) gets
/// them in as many bytes right after its last segment instead, page-aligned, which
/// is where QEMU's Multiboot loader always puts them.
pub const LOADER_AREA: std::ops::Range<u32> = 0x9000..0x10000;

pub use crate::firmware::TOP_RESERVED_KIB;

/// Header flag bits (spec 3.1.2).
#[allow(missing_docs)]
pub mod header_flags {
    pub const PAGE_ALIGN: u32 = 1 << 0;
    pub const MEMORY_INFO: u32 = 1 << 1;
    pub const VIDEO_MODE: u32 = 1 << 2;
    pub const AOUT_KLUDGE: u32 = 1 << 16;
}

/// Information structure flag bits (spec 3.3).
#[allow(missing_docs)]
pub mod info_flags {
    pub const MEMORY: u32 = 1 << 0;
    pub const CMDLINE: u32 = 1 << 2;
    pub const MODS: u32 = 1 << 3;
    pub const MMAP: u32 = 1 << 6;
    pub const LOADER_NAME: u32 = 1 << 9;
}

/// What popek boots, as the errors about other kinds of file say.
const ACCEPTS: &str =
    "popek boots Multiboot v1 kernels (ELF32 i386, or any image with the a.out-kludge address fields)";

/// Why an image cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// No Multiboot header in the first 8 KiB (and not a kind of file popek recognises).
    #[error("no Multiboot header (magic 0x1BADB002) in the first 8 KiB of the image: {}", ACCEPTS)]
    NoHeader,
    /// A Linux kernel in the x86 boot protocol's format ("HdrS" at offset 0x202).
    #[error(
        "this is a Linux bzImage (x86 boot protocol {}.{}), not a Multiboot kernel: {}",
        .protocol >> 8,
        .protocol & 0xff,
        ACCEPTS
    )]
    LinuxBzImage {
        /// The boot protocol version (major in the high byte).
        protocol: u16,
    },
    /// A 64-bit ELF file without the a.out-kludge address fields.
    #[error("this is a 64-bit ELF file (ELFCLASS64): {}", ACCEPTS)]
    Elf64,
    /// Header checksum does not add up.
    #[error("Multiboot header at offset {offset:#x} has a bad checksum")]
    BadChecksum {
        /// Offset of the header in the file.
        offset: usize,
    },
    /// The header asks for something this loader cannot do.
    #[error("Multiboot header requires unsupported features (flags {0:#x})")]
    UnsupportedFlags(u32),
    /// Not an ELF file and no a.out-kludge address fields.
    #[error("not an ELF image and the Multiboot header has no address fields (flag 16)")]
    NotElf,
    /// ELF, but not 32-bit little-endian.
    #[error("ELF image is not 32-bit little-endian (ELFCLASS32, ELFDATA2LSB)")]
    WrongClass,
    /// ELF for another machine.
    #[error("ELF image is for machine {0}, not i386 (3)")]
    WrongMachine(u16),
    /// ELF file type is not EXEC.
    #[error("ELF image is not an executable (e_type {0})")]
    NotExecutable(u16),
    /// The ELF headers contradict themselves.
    #[error("malformed ELF image: {0}")]
    BadElf(&'static str),
    /// The a.out-kludge address fields contradict themselves or the file.
    #[error("Multiboot a.out-kludge address fields are inconsistent: {0}")]
    BadAoutKludge(&'static str),
    /// The file ends before a structure it describes.
    #[error("image is truncated: {0}")]
    Truncated(&'static str),
    /// A segment lies (partly) outside guest RAM.
    #[error("segment at {start:#x}..{end:#x} lies outside guest RAM ({ram:#x} bytes)")]
    OutsideRam {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
        /// RAM size.
        ram: u32,
    },
    /// No loadable segment.
    #[error("image has no loadable segments")]
    NothingToLoad,
    /// The entry point is not inside a loaded segment.
    #[error("entry point {0:#x} is not inside the loaded image")]
    BadEntry(u32),
    /// The command line, module list or modules do not fit.
    #[error("boot information does not fit: {0}")]
    TooLarge(&'static str),
}

/// A boot module: its bytes and its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Contents.
    pub data: Vec<u8>,
    /// Command line (usually the file name plus arguments).
    pub cmdline: String,
}

/// What the CPU must be given at the hand-over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootInfo {
    /// Entry point (EIP).
    pub entry: u32,
    /// Physical address of the Multiboot information structure (EBX).
    pub info_addr: u32,
    /// One past the highest byte the kernel image occupies.
    pub kernel_end: u32,
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

/// The Multiboot header: its offset in the file and its fields.
#[derive(Debug, Clone, Copy)]
struct Header {
    offset: usize,
    flags: u32,
    /// header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr (flag 16).
    addrs: Option<[u32; 5]>,
}

fn find_header(image: &[u8]) -> Result<Header, LoadError> {
    let limit = image.len().min(HEADER_SEARCH);
    let mut off = 0;
    while off + 12 <= limit {
        if u32_at(image, off) == Some(HEADER_MAGIC) {
            let flags = u32_at(image, off + 4).ok_or(LoadError::NoHeader)?;
            let sum = u32_at(image, off + 8).ok_or(LoadError::NoHeader)?;
            if HEADER_MAGIC.wrapping_add(flags).wrapping_add(sum) != 0 {
                return Err(LoadError::BadChecksum { offset: off });
            }
            let addrs = if flags & header_flags::AOUT_KLUDGE != 0 {
                let mut a = [0u32; 5];
                for (i, v) in a.iter_mut().enumerate() {
                    *v = u32_at(image, off + 12 + 4 * i)
                        .ok_or(LoadError::Truncated("the file ends inside the Multiboot header's address fields"))?;
                }
                Some(a)
            } else {
                None
            };
            return Ok(Header { offset: off, flags, addrs });
        }
        off += 4;
    }
    Err(LoadError::NoHeader)
}

/// What an image without a Multiboot header is, if popek recognises it: a Linux bzImage
/// (the x86 boot protocol's "HdrS" at 0x202) or a 64-bit ELF file.
fn not_multiboot(image: &[u8]) -> LoadError {
    if image.get(0x202..0x206) == Some(b"HdrS".as_slice()) {
        return LoadError::LinuxBzImage { protocol: u16_at(image, 0x206).unwrap_or(0) };
    }
    if image.starts_with(b"\x7fELF") && image.get(4) == Some(&2) {
        return LoadError::Elf64;
    }
    LoadError::NoHeader
}

/// One piece of the image to place in RAM: `file[offset..offset+filesz]` at `addr`,
/// followed by `memsz - filesz` zero bytes.
#[derive(Debug, Clone, Copy)]
struct Segment {
    addr: u32,
    offset: usize,
    filesz: usize,
    memsz: u64,
}

fn elf_segments(image: &[u8]) -> Result<(Vec<Segment>, u32), LoadError> {
    if image.get(0..4) != Some(b"\x7fELF".as_slice()) {
        return Err(LoadError::NotElf);
    }
    if image.get(4) == Some(&2) {
        return Err(LoadError::Elf64);
    }
    if image.get(4) != Some(&1) || image.get(5) != Some(&1) {
        return Err(LoadError::WrongClass);
    }
    const SHORT: LoadError = LoadError::Truncated("the file ends inside the ELF header");
    let e_type = u16_at(image, 16).ok_or(SHORT)?;
    let machine = u16_at(image, 18).ok_or(SHORT)?;
    if machine != 3 {
        return Err(LoadError::WrongMachine(machine));
    }
    if e_type != 2 {
        return Err(LoadError::NotExecutable(e_type));
    }
    let entry = u32_at(image, 24).ok_or(SHORT)?;
    let phoff = u32_at(image, 28).ok_or(SHORT)? as usize;
    let phentsize = u16_at(image, 42).ok_or(SHORT)? as usize;
    let phnum = u16_at(image, 44).ok_or(SHORT)? as usize;
    if phnum > 0 && phentsize < 32 {
        return Err(LoadError::BadElf("program header entries are shorter than 32 bytes (e_phentsize)"));
    }
    let mut segs = Vec::new();
    for i in 0..phnum {
        const SHORT: LoadError = LoadError::Truncated("the program headers run past the end of the file");
        let ph = phoff.checked_add(i * phentsize).ok_or(SHORT)?;
        let field = |k: usize| u32_at(image, ph + 4 * k).ok_or(SHORT);
        if field(0)? != 1 {
            continue; // not PT_LOAD
        }
        let (offset, paddr, filesz, memsz) = (field(1)? as usize, field(3)?, field(4)? as usize, field(5)? as u64);
        if filesz as u64 > memsz {
            return Err(LoadError::BadElf("a segment's file size exceeds its memory size (p_filesz > p_memsz)"));
        }
        if offset.checked_add(filesz).is_none_or(|end| end > image.len()) {
            return Err(LoadError::Truncated("a segment's data runs past the end of the file"));
        }
        if memsz > 0 {
            segs.push(Segment { addr: paddr, offset, filesz, memsz });
        }
    }
    Ok((segs, entry))
}

fn aout_segments(image: &[u8], h: &Header, addrs: [u32; 5]) -> Result<(Vec<Segment>, u32), LoadError> {
    let [header_addr, load_addr, load_end, bss_end, entry] = addrs;
    // The file offset of load_addr: the header sits at header_addr in memory and at h.offset in the file.
    let start_in_file = (h.offset as u64 + load_addr as u64)
        .checked_sub(header_addr as u64)
        .ok_or(LoadError::BadAoutKludge("load_addr lies before the start of the file"))?;
    let past_end =
        LoadError::Truncated("the file ends before the a.out-kludge text and data (load_addr..load_end_addr)");
    let start_in_file = usize::try_from(start_in_file).map_err(|_| past_end.clone())?;
    let filesz = if load_end == 0 {
        image.len().checked_sub(start_in_file).ok_or(past_end.clone())?
    } else {
        load_end.checked_sub(load_addr).ok_or(LoadError::BadAoutKludge("load_end_addr is below load_addr"))? as usize
    };
    if start_in_file.checked_add(filesz).is_none_or(|e| e > image.len()) {
        return Err(past_end);
    }
    let end = load_addr as u64 + filesz as u64;
    let memsz = if bss_end == 0 { filesz as u64 } else { (bss_end as u64).max(end) - load_addr as u64 };
    Ok((vec![Segment { addr: load_addr, offset: start_in_file, filesz, memsz }], entry))
}

/// Loads `image` into `mem` with `cmdline` and `modules`, and returns where to start.
pub fn load(mem: &mut GuestMemory, image: &[u8], cmdline: &str, modules: &[Module]) -> Result<BootInfo, LoadError> {
    let header = find_header(image).map_err(|e| if e == LoadError::NoHeader { not_multiboot(image) } else { e })?;
    let supported = header_flags::PAGE_ALIGN | header_flags::MEMORY_INFO;
    let required = header.flags & 0xffff;
    if required & !supported != 0 {
        return Err(LoadError::UnsupportedFlags(required & !supported));
    }
    let (segs, entry) = match header.addrs {
        // Flag 16: the header's address fields win over any executable format (spec 3.1.3;
        // QEMU does the same).
        Some(a) => aout_segments(image, &header, a)?,
        None => elf_segments(image)?,
    };
    if segs.is_empty() {
        return Err(LoadError::NothingToLoad);
    }
    let ram = mem.size();
    let mut kernel_end = 0u64;
    for s in &segs {
        let (start, end) = (s.addr as u64, s.addr as u64 + s.memsz);
        if end > ram as u64 {
            return Err(LoadError::OutsideRam { start, end, ram });
        }
        kernel_end = kernel_end.max(end);
    }
    if !segs.iter().any(|s| entry as u64 >= s.addr as u64 && (entry as u64) < s.addr as u64 + s.memsz) {
        return Err(LoadError::BadEntry(entry));
    }
    for s in &segs {
        let (start, end) = (s.addr as u64, s.addr as u64 + s.memsz);
        let outside = LoadError::OutsideRam { start, end, ram };
        let range = usize::try_from(start).ok().zip(usize::try_from(end).ok()).ok_or(outside.clone())?;
        let dst = mem.as_mut_slice().get_mut(range.0..range.1).ok_or(outside)?;
        let (file_part, bss) = dst.split_at_mut(s.filesz);
        file_part.copy_from_slice(&image[s.offset..s.offset + s.filesz]);
        bss.fill(0);
    }
    let kernel_end = u32::try_from(kernel_end).map_err(|_| LoadError::TooLarge("kernel end"))?;
    let overlaps = |a: &std::ops::Range<u32>| {
        segs.iter().any(|s| (s.addr as u64) < a.end as u64 && s.addr as u64 + s.memsz > a.start as u64)
    };
    let area = if overlaps(&LOADER_AREA) {
        let start = kernel_end.checked_next_multiple_of(4096).ok_or(LoadError::TooLarge("kernel end"))?;
        let end = start
            .checked_add(LOADER_AREA.end - LOADER_AREA.start)
            .filter(|&e| e <= ram)
            .ok_or(LoadError::TooLarge("boot information above the kernel"))?;
        start..end
    } else {
        LOADER_AREA
    };
    let info_addr = write_info(mem, area, kernel_end, cmdline, modules)?;
    Ok(BootInfo { entry, info_addr, kernel_end })
}

/// A bump allocator inside the loader's area ([`LOADER_AREA`] or the bytes above the kernel).
struct Area {
    next: u32,
    end: u32,
}

impl Area {
    fn alloc(&mut self, len: usize, what: &'static str) -> Result<u32, LoadError> {
        let len = u32::try_from(len).map_err(|_| LoadError::TooLarge(what))?;
        let at = self.next;
        let end = at.checked_add(len).filter(|&e| e <= self.end).ok_or(LoadError::TooLarge(what))?;
        self.next = end.next_multiple_of(4);
        Ok(at)
    }
}

fn put(mem: &mut GuestMemory, at: u32, bytes: &[u8], what: &'static str) -> Result<(), LoadError> {
    if mem.load(PhysAddr(at), bytes) { Ok(()) } else { Err(LoadError::TooLarge(what)) }
}

/// Writes the information structure, memory map, strings and modules. Returns its address.
fn write_info(
    mem: &mut GuestMemory,
    loader_area: std::ops::Range<u32>,
    kernel_end: u32,
    cmdline: &str,
    modules: &[Module],
) -> Result<u32, LoadError> {
    let ram = mem.size();
    let mut area = Area { next: loader_area.start, end: loader_area.end };
    let info = area.alloc(88, "information structure")?;
    let mut fields = [0u32; 22];
    fields[0] =
        info_flags::MEMORY | info_flags::CMDLINE | info_flags::MODS | info_flags::MMAP | info_flags::LOADER_NAME;
    // Memory sizes in KiB, as QEMU's Multiboot loader reports them: conventional memory
    // below the EBDA, and memory from 1 MiB up to the firmware area at the top of RAM.
    fields[1] = 639;
    fields[2] = (ram / 1024).saturating_sub(1024 + TOP_RESERVED_KIB);
    // Command line.
    let mut c = cmdline.as_bytes().to_vec();
    c.push(0);
    let at = area.alloc(c.len(), "command line")?;
    put(mem, at, &c, "command line")?;
    fields[4] = at;
    // Modules: page-aligned after the kernel, each with its own command line.
    let mods = area.alloc(16 * modules.len(), "module list")?;
    let mut next = kernel_end.max(loader_area.end).next_multiple_of(4096);
    let mut slot = mods;
    for m in modules {
        let len = u32::try_from(m.data.len()).map_err(|_| LoadError::TooLarge("module"))?;
        let end =
            next.checked_add(len).filter(|&e| e <= ram).ok_or(LoadError::TooLarge("module does not fit in RAM"))?;
        put(mem, next, &m.data, "module")?;
        let mut s = m.cmdline.as_bytes().to_vec();
        s.push(0);
        let sat = area.alloc(s.len(), "module command line")?;
        put(mem, sat, &s, "module command line")?;
        let entry: Vec<u8> = [next, end, sat, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
        put(mem, slot, &entry, "module list")?;
        slot += 16;
        next = end.next_multiple_of(4096);
    }
    fields[5] = u32::try_from(modules.len()).map_err(|_| LoadError::TooLarge("module list"))?;
    fields[6] = mods;
    // Memory map (the firmware's E820 map): each entry is size (20), base (u64), length
    // (u64), type (1 = RAM, 2 = reserved).
    let mut bytes = Vec::new();
    for r in firmware::memory_map(ram) {
        bytes.extend_from_slice(&20u32.to_le_bytes());
        bytes.extend_from_slice(&r.base.to_le_bytes());
        bytes.extend_from_slice(&r.len.to_le_bytes());
        bytes.extend_from_slice(&(r.kind as u32).to_le_bytes());
    }
    let at = area.alloc(bytes.len(), "memory map")?;
    put(mem, at, &bytes, "memory map")?;
    fields[11] = u32::try_from(bytes.len()).map_err(|_| LoadError::TooLarge("memory map"))?;
    fields[12] = at;
    let name = b"popek\0";
    let at = area.alloc(name.len(), "boot loader name")?;
    put(mem, at, name, "boot loader name")?;
    fields[16] = at;
    let raw: Vec<u8> = fields.iter().flat_map(|v| v.to_le_bytes()).collect();
    put(mem, info, &raw, "information structure")?;
    Ok(info)
}

/// A minimal Multiboot ELF32 i386 executable, for tests and examples: one PT_LOAD at
/// `addr` holding a Multiboot header (flags `mb_flags`) followed by `code` (the entry
/// point) and `bss` zero bytes.
#[allow(clippy::cast_possible_truncation)] // small test images
pub fn minimal_elf(addr: u32, mb_flags: u32, code: &[u8], bss: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&HEADER_MAGIC.to_le_bytes());
    body.extend_from_slice(&mb_flags.to_le_bytes());
    body.extend_from_slice(&(HEADER_MAGIC.wrapping_add(mb_flags)).wrapping_neg().to_le_bytes());
    body.extend_from_slice(code);
    let phoff = 52u32;
    let data_off = phoff + 32;
    let mut f = Vec::new();
    f.extend_from_slice(b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0");
    f.extend_from_slice(&2u16.to_le_bytes()); // e_type EXEC
    f.extend_from_slice(&3u16.to_le_bytes()); // e_machine i386
    f.extend_from_slice(&1u32.to_le_bytes()); // e_version
    f.extend_from_slice(&(addr + 12).to_le_bytes()); // e_entry: just past the header
    f.extend_from_slice(&phoff.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes()); // e_shoff
    f.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    f.extend_from_slice(&52u16.to_le_bytes()); // e_ehsize
    f.extend_from_slice(&32u16.to_le_bytes()); // e_phentsize
    f.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    f.extend_from_slice(&[0; 6]); // shentsize, shnum, shstrndx
    let memsz = body.len() as u32 + bss;
    for v in [1, data_off, addr, addr, body.len() as u32, memsz, 5, 0x1000] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    f.extend_from_slice(&body);
    f
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // test images are small; the fuzzer truncates random words on purpose
mod tests {
    use super::*;

    fn elf(addr: u32, mb_flags: u32, code: &[u8], bss: u32) -> Vec<u8> {
        minimal_elf(addr, mb_flags, code, bss)
    }

    fn ram() -> GuestMemory {
        GuestMemory::new(4 << 20).unwrap()
    }

    fn read32(mem: &GuestMemory, a: u32) -> u32 {
        u32::from_le_bytes(mem.read_ram::<4>(a as usize).unwrap())
    }

    fn cstr(mem: &GuestMemory, a: u32) -> String {
        let s = &mem.as_slice()[a as usize..];
        String::from_utf8_lossy(&s[..s.iter().position(|&b| b == 0).unwrap()]).into_owned()
    }

    #[test]
    fn loads_elf_and_builds_info() {
        let mut mem = ram();
        let img = elf(0x10_0000, header_flags::MEMORY_INFO, &[0xf4, 0x90, 0x90, 0x90], 0x100);
        let mods = [Module { data: b"module one".to_vec(), cmdline: "mod1 arg".into() }];
        let b = load(&mut mem, &img, "kernel iters=3", &mods).unwrap();
        assert_eq!(b.entry, 0x10_000c);
        assert_eq!(b.kernel_end, 0x10_0000 + 16 + 0x100);
        assert_eq!(mem.as_slice()[0x10_000c], 0xf4);
        let i = b.info_addr;
        let flags = read32(&mem, i);
        assert_eq!(flags & 0x24d, 0x24d, "mem, cmdline, mods, mmap, loader name");
        assert_eq!(read32(&mem, i + 4), 639);
        assert_eq!(read32(&mem, i + 8), 4096 - 1024 - 128);
        assert_eq!(cstr(&mem, read32(&mem, i + 16)), "kernel iters=3");
        assert_eq!(read32(&mem, i + 20), 1);
        let m = read32(&mem, i + 24);
        let (ms, me) = (read32(&mem, m), read32(&mem, m + 4));
        assert_eq!(ms % 4096, 0);
        assert_eq!(&mem.as_slice()[ms as usize..me as usize], b"module one");
        assert_eq!(cstr(&mem, read32(&mem, m + 8)), "mod1 arg");
        let (len, map) = (read32(&mem, i + 44), read32(&mem, i + 48));
        assert_eq!(len, 6 * 24);
        // Fourth entry: RAM above 1 MiB, up to the reserved top 128 KiB.
        let high = map + 3 * 24;
        assert_eq!(read32(&mem, high), 20);
        assert_eq!(read32(&mem, high + 4), 0x10_0000);
        assert_eq!(read32(&mem, high + 12), (4 << 20) - 0x10_0000 - 0x2_0000);
        assert_eq!(read32(&mem, high + 20), 1);
        assert_eq!(read32(&mem, high + 24 + 20), 2, "top 128 KiB reserved");
        assert_eq!(read32(&mem, high + 2 * 24 + 4), 0xfffc_0000, "BIOS flash reserved");
        assert_eq!(cstr(&mem, read32(&mem, i + 64)), "popek");
    }

    #[test]
    fn loads_aout_kludge() {
        // header at file offset 0 = address 0x200000; load everything; bss to 0x201000; entry after header.
        let mut img = Vec::new();
        let flags = header_flags::AOUT_KLUDGE;
        for v in [
            HEADER_MAGIC,
            flags,
            HEADER_MAGIC.wrapping_add(flags).wrapping_neg(),
            0x20_0000,
            0x20_0000,
            0,
            0x20_1000,
            0x20_0020,
        ] {
            img.extend_from_slice(&v.to_le_bytes());
        }
        img.extend_from_slice(&[0xf4; 8]);
        let mut mem = ram();
        let b = load(&mut mem, &img, "", &[]).unwrap();
        assert_eq!(b.entry, 0x20_0020);
        assert_eq!(mem.as_slice()[0x20_0020], 0xf4);
        assert_eq!(b.kernel_end, 0x20_1000);
    }

    #[test]
    fn malformed_images_are_errors() {
        let good = elf(0x10_0000, 0, &[0xf4; 4], 0);
        let mut mem = ram();
        assert_eq!(load(&mut mem, b"", "", &[]), Err(LoadError::NoHeader));
        assert_eq!(load(&mut mem, &[0u8; 100], "", &[]), Err(LoadError::NoHeader));
        let mut bad_sum = good.clone();
        bad_sum[84 + 8] ^= 1;
        assert!(matches!(load(&mut mem, &bad_sum, "", &[]), Err(LoadError::BadChecksum { .. })));
        let mut class64 = good.clone();
        class64[4] = 2;
        assert_eq!(load(&mut mem, &class64, "", &[]), Err(LoadError::Elf64));
        let mut big_endian = good.clone();
        big_endian[5] = 2;
        assert_eq!(load(&mut mem, &big_endian, "", &[]), Err(LoadError::WrongClass));
        let mut arm = good.clone();
        arm[18] = 40;
        assert_eq!(load(&mut mem, &arm, "", &[]), Err(LoadError::WrongMachine(40)));
        let mut not_elf = good.clone();
        not_elf[0] = b'X';
        assert_eq!(load(&mut mem, &not_elf, "", &[]), Err(LoadError::NotElf));
        assert!(matches!(load(&mut mem, &good[..good.len() - 2], "", &[]), Err(LoadError::Truncated(_))));
        let high = elf(0x3f_fff0, 0, &[0xf4; 4], 0x100);
        assert!(matches!(load(&mut mem, &high, "", &[]), Err(LoadError::OutsideRam { .. })));
        // A kernel over the loader's usual area gets the information right above it.
        let low = elf(0x8000, 0, &[0xf4; 4], 0x2000);
        let info = load(&mut mem, &low, "low", &[]).expect("a kernel at 0x8000 loads").info_addr;
        assert!((0xb000..0xb000 + 0x7000).contains(&info), "info at {info:#x}");
        assert_eq!(cstr(&mem, read32(&mem, info + 16)), "low", "the command line is in the same area");
        let high_low = elf(0x8000, 0, &[0xf4; 4], 0x3f_2000);
        assert_eq!(load(&mut mem, &high_low, "", &[]), Err(LoadError::TooLarge("boot information above the kernel")));
        let video = elf(0x10_0000, header_flags::VIDEO_MODE, &[0xf4; 4], 0);
        assert_eq!(load(&mut mem, &video, "", &[]), Err(LoadError::UnsupportedFlags(4)));
        let mut short_phdrs = good.clone();
        short_phdrs[42] = 16; // e_phentsize
        assert!(matches!(load(&mut mem, &short_phdrs, "", &[]), Err(LoadError::BadElf(_))));
        let mut filesz_over_memsz = good.clone();
        filesz_over_memsz[52 + 20] = 0; // p_memsz below p_filesz
        assert!(matches!(load(&mut mem, &filesz_over_memsz, "", &[]), Err(LoadError::BadElf(_))));
        let long_cmdline = "x".repeat(70_000);
        assert!(matches!(load(&mut mem, &good, &long_cmdline, &[]), Err(LoadError::TooLarge(_))));
    }

    /// Files without a Multiboot header that popek recognises are named in the error.
    #[test]
    fn other_kinds_of_kernel_are_recognised() {
        let mut mem = ram();
        let mut bzimage = vec![0u8; 0x1000];
        bzimage[0x202..0x206].copy_from_slice(b"HdrS");
        bzimage[0x206..0x208].copy_from_slice(&0x020cu16.to_le_bytes());
        assert_eq!(load(&mut mem, &bzimage, "", &[]), Err(LoadError::LinuxBzImage { protocol: 0x020c }));
        let text = LoadError::LinuxBzImage { protocol: 0x020c }.to_string();
        assert!(text.contains("boot protocol 2.12") && text.contains("Multiboot v1"), "{text}");
        let mut elf64 = b"\x7fELF\x02\x01\x01".to_vec();
        elf64.resize(64, 0);
        assert_eq!(load(&mut mem, &elf64, "", &[]), Err(LoadError::Elf64));
        let mut elf32 = elf64.clone();
        elf32[4] = 1;
        assert_eq!(load(&mut mem, &elf32, "", &[]), Err(LoadError::NoHeader));
    }

    /// A Multiboot header with the a.out-kludge fields: what is wrong with them.
    #[test]
    fn inconsistent_aout_kludge_fields_are_named() {
        let image = |header_addr: u32, load_addr: u32, load_end: u32| {
            let flags = header_flags::AOUT_KLUDGE;
            let fields = [
                HEADER_MAGIC,
                flags,
                HEADER_MAGIC.wrapping_add(flags).wrapping_neg(),
                header_addr,
                load_addr,
                load_end,
                0,
                load_addr + 0x20,
            ];
            let mut v: Vec<u8> = fields.iter().flat_map(|f| f.to_le_bytes()).collect();
            v.resize(64, 0xf4);
            v
        };
        let mut mem = ram();
        let before_file = image(0x20_0000, 0x1f_0000, 0);
        assert!(matches!(load(&mut mem, &before_file, "", &[]), Err(LoadError::BadAoutKludge(_))));
        let end_below = image(0x20_0000, 0x20_0000, 0x1f_0000);
        assert!(matches!(load(&mut mem, &end_below, "", &[]), Err(LoadError::BadAoutKludge(_))));
        let past_eof = image(0x20_0000, 0x20_0000, 0x20_1000);
        assert!(matches!(load(&mut mem, &past_eof, "", &[]), Err(LoadError::Truncated(_))));
        let mut header_cut = image(0x20_0000, 0x20_0000, 0);
        header_cut.truncate(20);
        assert!(matches!(load(&mut mem, &header_cut, "", &[]), Err(LoadError::Truncated(_))));
    }

    /// Random and mutated images never panic the loader.
    #[test]
    fn fuzz_random_and_mutated_images() {
        let good = elf(0x10_0000, header_flags::MEMORY_INFO, &[0xf4; 64], 0x1000);
        let mut mem = ram();
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut loaded = 0;
        for round in 0..20_000 {
            let mut img = if round % 4 == 0 {
                (0..(next() % 300) as usize).map(|_| next() as u8).collect::<Vec<u8>>()
            } else {
                good.clone()
            };
            if round % 4 != 0 {
                for _ in 0..1 + next() % 4 {
                    let i = (next() as usize) % img.len();
                    img[i] = next() as u8;
                }
                if next() % 8 == 0 {
                    img.truncate((next() as usize) % img.len());
                }
            }
            if load(&mut mem, &img, "fuzz", &[]).is_ok() {
                loaded += 1;
            }
        }
        // Mutations that hit padding still load: the fuzzer exercised both paths.
        assert!(loaded > 0);
    }
}
