//! The Linux x86 boot protocol, 32-bit entry (the kernel's Documentation/arch/x86/boot.rst):
//! a bzImage's protected-mode kernel, an initial ramdisk and a command line placed in RAM,
//! and the "zero page" (`struct boot_params`) that tells the kernel where they are, with
//! the firmware's memory map as an E820 table.
//!
//! ```text
//!   bzImage file:  [boot sector + setup: (setup_sects + 1) × 512 bytes][protected-mode kernel]
//!                              └─ setup header at 0x1F1 ("HdrS" at 0x202)
//!   guest RAM:     0x9000 zero page · 0xA000 boot GDT · 0xB000 command line
//!                  pref_address (or 1 MiB): the protected-mode kernel (init_size bytes room)
//!                  initrd: page-aligned, as high as RAM and initrd_addr_max allow
//!   CPU:           protected mode, paging off, CS = 0x10 and DS = ES = SS = 0x18 (flat),
//!                  ESI = zero page, IF = 0, EIP = the kernel's load address
//! ```
//!
//! Every malformed or unsupported image is a [`LinuxError`] with a one-line message, found
//! before anything is written to guest RAM.

use crate::firmware;
use popek_memory::{GuestMemory, PhysAddr};

/// Offset of the setup header in the image (and in the zero page).
pub const SETUP_HEADER: usize = 0x1f1;
/// The oldest boot protocol popek loads: 2.06 (Linux 2.6.22) has `cmdline_size` and
/// `initrd_addr_max`, and the 32-bit entry is documented for it.
pub const MIN_PROTOCOL: u16 = 0x0206;
/// Where the zero page goes.
pub const ZERO_PAGE: u32 = 0x9000;
/// Where the boot GDT goes (null, null, code 0x10, data 0x18).
pub const BOOT_GDT: u32 = 0xa000;
/// Where the command line goes (it may take 0xB000..0x10000, well below the EBDA).
pub const CMDLINE: u32 = 0xb000;
/// Room for the command line, NUL included.
pub const CMDLINE_ROOM: u32 = 0x5000;
/// The boot code segment selector of the 32-bit protocol (`__BOOT_CS`).
pub const BOOT_CS: u16 = 0x10;
/// The boot data segment selector (`__BOOT_DS`).
pub const BOOT_DS: u16 = 0x18;

/// `loadflags` bits.
mod loadflags {
    /// The protected-mode code is loaded at 1 MiB (a bzImage, not a zImage).
    pub const LOADED_HIGH: u8 = 1 << 0;
}
/// `xloadflags` bit: the kernel has the 64-bit entry point (an x86-64 kernel).
const XLF_KERNEL_64: u16 = 1 << 0;

/// Why a bzImage cannot be booted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinuxError {
    /// No "HdrS" setup header at 0x202.
    #[error("not a Linux bzImage (no \"HdrS\" boot header at offset 0x202)")]
    NotBzImage,
    /// The file ends before the part the header describes.
    #[error("the bzImage is truncated: {0}")]
    Truncated(&'static str),
    /// A boot protocol older than [`MIN_PROTOCOL`].
    #[error("the kernel speaks x86 boot protocol {}.{:02}: popek needs 2.06 or later (Linux 2.6.22+)", .0 >> 8, .0 & 0xff)]
    TooOld(u16),
    /// A zImage: its kernel wants to run at 0x10000, below 1 MiB.
    #[error("a zImage (loaded low, at 0x10000): popek boots bzImages only")]
    LoadedLow,
    /// An x86-64 kernel: it switches to long mode, which a 32-bit CPU does not have.
    #[error(
        "a 64-bit (x86-64) kernel: popek emulates a 32-bit CPU; use an i386 kernel (e.g. Debian's linux-image-686)"
    )]
    Kernel64,
    /// The kernel does not fit in guest RAM.
    #[error(
        "the kernel needs RAM up to {end:#x} (loaded at {at:#x}, {size:#x} bytes of room) but --mem gives {ram:#x}"
    )]
    KernelTooLarge {
        /// Load address.
        at: u32,
        /// Room the kernel needs from there (`init_size`, at least the file's kernel part).
        size: u64,
        /// One past the last byte it needs.
        end: u64,
        /// RAM size.
        ram: u32,
    },
    /// The initrd does not fit where the header allows.
    #[error("the initrd ({size} bytes) does not fit in RAM between the kernel's end {low:#x} and {high:#x}")]
    InitrdTooLarge {
        /// Its size.
        size: usize,
        /// The lowest address it may use (past the kernel).
        low: u64,
        /// One past the highest (RAM's usable top or initrd_addr_max).
        high: u64,
    },
    /// The command line is longer than the kernel accepts.
    #[error("the command line is {len} bytes; this kernel accepts at most {max}")]
    CmdlineTooLong {
        /// Its length.
        len: usize,
        /// The kernel's `cmdline_size` (or popek's room, if smaller).
        max: u32,
    },
}

/// What the CPU must be given at the hand-over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinuxBoot {
    /// EIP: the protected-mode kernel's first byte.
    pub entry: u32,
    /// ESI: the zero page.
    pub boot_params: u32,
    /// GDTR base and limit (code at 0x10, data at 0x18).
    pub gdt: (u32, u16),
    /// Where the initrd went, and its size (0 without one).
    pub initrd: (u32, u32),
}

/// True if `image` carries the boot protocol's setup header.
pub fn is_bzimage(image: &[u8]) -> bool {
    image.get(0x202..0x206) == Some(b"HdrS".as_slice())
}

fn u8_at(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}
fn u16_at(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2).map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4).map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from(u32_at(b, off)) | u64::from(u32_at(b, off + 4)) << 32
}

/// The setup header fields the loader reads (boot.rst, "The Real-Mode Kernel Header").
#[derive(Debug, Clone, Copy)]
struct Header {
    setup_sects: u8,
    loadflags: u8,
    initrd_addr_max: u32,
    kernel_alignment: u32,
    relocatable: bool,
    xloadflags: u16,
    cmdline_size: u32,
    pref_address: u64,
    init_size: u32,
    /// The header's own length: 0x202 + the byte at 0x201 (the jump's displacement).
    len: usize,
}

fn header(image: &[u8]) -> Result<Header, LinuxError> {
    if !is_bzimage(image) {
        return Err(LinuxError::NotBzImage);
    }
    let protocol = u16_at(image, 0x206);
    if protocol < MIN_PROTOCOL {
        return Err(LinuxError::TooOld(protocol));
    }
    let h = Header {
        setup_sects: match u8_at(image, 0x1f1) {
            0 => 4,
            n => n,
        },
        loadflags: u8_at(image, 0x211),
        initrd_addr_max: u32_at(image, 0x22c),
        kernel_alignment: u32_at(image, 0x230),
        relocatable: u8_at(image, 0x234) != 0,
        xloadflags: if protocol >= 0x020c { u16_at(image, 0x236) } else { 0 },
        cmdline_size: u32_at(image, 0x238),
        pref_address: if protocol >= 0x020a { u64_at(image, 0x258) } else { 0x10_0000 },
        init_size: if protocol >= 0x020a { u32_at(image, 0x260) } else { 0 },
        len: 0x202 + usize::from(u8_at(image, 0x201)),
    };
    if h.loadflags & loadflags::LOADED_HIGH == 0 {
        return Err(LinuxError::LoadedLow);
    }
    if h.xloadflags & XLF_KERNEL_64 != 0 {
        return Err(LinuxError::Kernel64);
    }
    Ok(h)
}

/// Where the protected-mode kernel goes: its preferred address if that fits (a relocatable
/// kernel also runs elsewhere, but then decompresses itself there anyway), else 1 MiB
/// rounded up to its alignment.
fn load_address(h: &Header) -> u32 {
    match u32::try_from(h.pref_address) {
        Ok(a) if a >= 0x10_0000 => a,
        _ if h.relocatable && h.kernel_alignment.is_power_of_two() => 0x10_0000u32.next_multiple_of(h.kernel_alignment),
        _ => 0x10_0000,
    }
}

/// Loads the bzImage `image` with `cmdline` and an optional `initrd` into `mem`.
pub fn load(
    mem: &mut GuestMemory,
    image: &[u8],
    cmdline: &str,
    initrd: Option<&[u8]>,
) -> Result<LinuxBoot, LinuxError> {
    let h = header(image)?;
    let setup_len = (usize::from(h.setup_sects) + 1) * 512;
    let kernel = image
        .get(setup_len..)
        .filter(|k| !k.is_empty())
        .ok_or(LinuxError::Truncated("the file ends inside the real-mode setup code (setup_sects says more)"))?;
    let setup_header =
        image.get(SETUP_HEADER..h.len).ok_or(LinuxError::Truncated("the file ends in the setup header"))?;
    let ram = mem.size();
    // Usable RAM ends where the firmware's map says (below the top reserved KiB).
    let usable_top = firmware::memory_map(ram)
        .iter()
        .filter(|r| r.kind == firmware::MemoryKind::Ram)
        .map(|r| r.base + r.len)
        .max()
        .unwrap_or(0);
    let at = load_address(&h);
    let size = u64::from(h.init_size).max(kernel.len() as u64);
    let end = u64::from(at) + size;
    if end > usable_top {
        return Err(LinuxError::KernelTooLarge { at, size, end, ram });
    }
    let max_cmdline = h.cmdline_size.min(CMDLINE_ROOM - 1);
    if cmdline.len() > max_cmdline as usize {
        return Err(LinuxError::CmdlineTooLong { len: cmdline.len(), max: max_cmdline });
    }
    // The initrd: page-aligned, as high as allowed, above the kernel's room.
    let initrd_at = match initrd {
        None => None,
        Some(rd) => {
            let high = usable_top.min(u64::from(h.initrd_addr_max) + 1);
            let low = end.next_multiple_of(4096);
            let len = rd.len() as u64;
            let start = high.checked_sub(len).map(|s| s & !0xfff).filter(|&s| s >= low && !rd.is_empty());
            match start {
                Some(s) => {
                    Some(u32::try_from(s).map_err(|_| LinuxError::InitrdTooLarge { size: rd.len(), low, high })?)
                }
                None if rd.is_empty() => None,
                None => return Err(LinuxError::InitrdTooLarge { size: rd.len(), low, high }),
            }
        }
    };

    // Everything checked: write. The kernel, then the initrd.
    let put = |mem: &mut GuestMemory, at: u32, bytes: &[u8]| {
        let ok = mem.load(PhysAddr(at), bytes);
        debug_assert!(ok, "checked against the memory map above");
    };
    put(mem, at, kernel);
    if let (Some(rd_at), Some(rd)) = (initrd_at, initrd) {
        put(mem, rd_at, rd);
    }
    // The command line.
    let mut c = cmdline.as_bytes().to_vec();
    c.push(0);
    put(mem, CMDLINE, &c);
    // The boot GDT: 0x10 flat code (execute/read), 0x18 flat data (read/write), 4 GiB.
    let mut gdt = [0u8; 32];
    gdt[16..24].copy_from_slice(&0x00cf_9a00_0000_ffffu64.to_le_bytes());
    gdt[24..32].copy_from_slice(&0x00cf_9200_0000_ffffu64.to_le_bytes());
    put(mem, BOOT_GDT, &gdt);
    // The zero page.
    // It fits below 4 GiB (checked above), so its length fits in 32 bits.
    let rd = initrd_at.zip(initrd).map_or((0, 0), |(a, r)| (a, u32::try_from(r.len()).unwrap_or(u32::MAX)));
    put(mem, ZERO_PAGE, &zero_page(&h, setup_header, ram, rd));
    Ok(LinuxBoot { entry: at, boot_params: ZERO_PAGE, gdt: (BOOT_GDT, 31), initrd: rd })
}

/// `struct boot_params` (the kernel's arch/x86/include/uapi/asm/bootparam.h): the image's
/// setup header with the loader's fields filled in, a text-mode `screen_info`, the
/// extended memory size and the E820 table.
fn zero_page(h: &Header, setup_header: &[u8], ram: u32, initrd: (u32, u32)) -> Vec<u8> {
    let mut zp = vec![0u8; 4096];
    let mut set = |off: usize, bytes: &[u8]| zp[off..off + bytes.len()].copy_from_slice(bytes);
    // screen_info: cursor 0,0, mode 3, 80 columns, 25 lines, VGA, 16-line font.
    set(0x06, &[3]);
    set(0x07, &[80]);
    set(0x0e, &[25]);
    set(0x0f, &[1]);
    set(0x10, &16u16.to_le_bytes());
    // alt_mem_k: KiB of memory above 1 MiB.
    set(0x1e0, &(ram / 1024).saturating_sub(1024).to_le_bytes());
    set(SETUP_HEADER, setup_header);
    // The loader's fields of the setup header.
    set(0x210, &[0xff]); // type_of_loader: undefined
    set(0x211, &[h.loadflags]);
    set(0x218, &initrd.0.to_le_bytes());
    set(0x21c, &initrd.1.to_le_bytes());
    set(0x228, &CMDLINE.to_le_bytes());
    // The E820 table.
    let map = firmware::memory_map(ram);
    let entries = u8::try_from(map.len()).expect("a handful of entries");
    set(0x1e8, &[entries]);
    for (i, r) in map.iter().enumerate() {
        let at = 0x2d0 + 20 * i;
        set(at, &r.base.to_le_bytes());
        set(at + 8, &r.len.to_le_bytes());
        set(at + 16, &(r.kind as u32).to_le_bytes());
    }
    zp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bzImage with protocol `protocol`, 2 setup sectors and `kernel` as its payload.
    fn bzimage(protocol: u16, kernel: &[u8]) -> Vec<u8> {
        let mut img = vec![0u8; 3 * 512];
        img[0x1f1] = 2;
        img[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
        img[0x200] = 0xeb;
        img[0x201] = 0x6a; // header up to 0x26C
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x206..0x208].copy_from_slice(&protocol.to_le_bytes());
        img[0x211] = loadflags::LOADED_HIGH;
        img[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
        img[0x22c..0x230].copy_from_slice(&0x37ff_ffffu32.to_le_bytes());
        img[0x230..0x234].copy_from_slice(&0x20_0000u32.to_le_bytes());
        img[0x234] = 1;
        img[0x238..0x23c].copy_from_slice(&255u32.to_le_bytes());
        img[0x258..0x260].copy_from_slice(&0x20_0000u64.to_le_bytes());
        img[0x260..0x264].copy_from_slice(&0x10_0000u32.to_le_bytes());
        img.extend_from_slice(kernel);
        img
    }

    fn read32(mem: &GuestMemory, a: u32) -> u32 {
        let s = &mem.as_slice()[a as usize..a as usize + 4];
        u32::from_le_bytes([s[0], s[1], s[2], s[3]])
    }

    #[test]
    fn loads_kernel_initrd_cmdline_and_zero_page() {
        let mut mem = GuestMemory::new(64 << 20).unwrap();
        let img = bzimage(0x020f, b"\xf4kernel");
        let rd = vec![0x5a; 10_000];
        let b = load(&mut mem, &img, "console=ttyS0", Some(&rd)).unwrap();
        assert_eq!(b.entry, 0x20_0000, "pref_address");
        assert_eq!(&mem.as_slice()[0x20_0000..0x20_0007], b"\xf4kernel");
        let (rd_at, rd_len) = b.initrd;
        assert_eq!(rd_len, 10_000);
        assert_eq!(rd_at % 4096, 0);
        assert!(u64::from(rd_at) + 10_000 <= (64 << 20) - 128 * 1024, "below the reserved top");
        assert!(rd_at >= 0x30_0000, "above the kernel's init_size");
        assert_eq!(mem.as_slice()[rd_at as usize + 9_999], 0x5a);
        let zp = ZERO_PAGE;
        assert_eq!(read32(&mem, zp + 0x202), u32::from_le_bytes(*b"HdrS"));
        assert_eq!(mem.as_slice()[zp as usize + 0x210], 0xff, "type_of_loader");
        assert_eq!(read32(&mem, zp + 0x218), rd_at);
        assert_eq!(read32(&mem, zp + 0x21c), 10_000);
        let c = read32(&mem, zp + 0x228);
        assert_eq!(&mem.as_slice()[c as usize..c as usize + 14], b"console=ttyS0\0");
        let n = mem.as_slice()[zp as usize + 0x1e8];
        assert_eq!(usize::from(n), firmware::memory_map(64 << 20).len());
        // The fourth E820 entry is RAM from 1 MiB.
        assert_eq!(read32(&mem, zp + 0x2d0 + 3 * 20), 0x10_0000);
        assert_eq!(read32(&mem, zp + 0x2d0 + 3 * 20 + 16), 1);
        assert_eq!(b.gdt, (BOOT_GDT, 31));
        assert_eq!(
            &mem.as_slice()[BOOT_GDT as usize + 16..BOOT_GDT as usize + 24],
            &[0xff, 0xff, 0, 0, 0, 0x9a, 0xcf, 0]
        );
    }

    #[test]
    fn refuses_what_it_cannot_boot_with_one_line() {
        let mut mem = GuestMemory::new(4 << 20).unwrap();
        let ok = bzimage(0x020f, b"k");
        let mut cases: Vec<(Vec<u8>, LinuxError)> = vec![
            (vec![0; 4096], LinuxError::NotBzImage),
            (bzimage(0x0204, b"k"), LinuxError::TooOld(0x0204)),
            (
                ok[..3 * 512].to_vec(),
                LinuxError::Truncated("the file ends inside the real-mode setup code (setup_sects says more)"),
            ),
        ];
        let mut low = ok.clone();
        low[0x211] = 0;
        cases.push((low, LinuxError::LoadedLow));
        let mut x64 = ok.clone();
        x64[0x236] = 1;
        cases.push((x64, LinuxError::Kernel64));
        for (img, want) in cases {
            let e = load(&mut mem, &img, "", None).unwrap_err();
            assert_eq!(e, want);
            assert!(!e.to_string().contains('\n'));
        }
        // 4 MiB of RAM: the kernel at 2 MiB needs 1 MiB, fits; an initrd of 2 MiB does not.
        let e = load(&mut mem, &ok, "", Some(&vec![0; 2 << 20])).unwrap_err();
        assert!(matches!(e, LinuxError::InitrdTooLarge { size, .. } if size == 2 << 20), "{e}");
        let e = load(&mut mem, &ok, &"x".repeat(300), None).unwrap_err();
        assert_eq!(e, LinuxError::CmdlineTooLong { len: 300, max: 255 });
        let mut huge = ok.clone();
        huge[0x260..0x264].copy_from_slice(&0x80_0000u32.to_le_bytes());
        assert!(matches!(load(&mut mem, &huge, "", None), Err(LinuxError::KernelTooLarge { .. })));
    }
}
