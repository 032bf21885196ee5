//! ATA disk controller, primary channel: ports 0x1F0–0x1F7 and 0x3F6, IRQ 14, PIO only.
//! Implements ATA/ATAPI-6 (T13/1410D): section 7 (register descriptions), 8 (commands
//! used here: IDENTIFY DEVICE, READ/WRITE SECTORS and MULTIPLE, READ VERIFY, SET MULTIPLE
//! MODE, FLUSH CACHE, SET FEATURES, INITIALIZE DEVICE PARAMETERS, EXECUTE DEVICE
//! DIAGNOSTIC) and 9 (PIO data-in / data-out protocols, software reset).
//!
//! ```text
//!   0x1F0 data (8/16/32-bit)   0x1F1 error / features   0x1F2 sector count
//!   0x1F3–0x1F5 LBA 7:0, 15:8, 23:16 (or sector, cylinder low/high)
//!   0x1F6 device: bit 6 LBA, bit 4 DEV (0 master, 1 slave), bits 3:0 LBA 27:24 or head
//!   0x1F7 status (read: clears the pending interrupt) / command (write)
//!   0x3F6 alternate status (read: no side effect) / device control (nIEN bit 1, SRST bit 2)
//! ```
//!
//! Commands complete at once, in the OUT that issues them (or in the data access that
//! ends a sector): the guest never sees BSY, and every run is deterministic. The
//! interrupt line follows the selected device's pending interrupt unless nIEN is set;
//! reading the status register (not the alternate status) or writing a command clears
//! it. IRQ 14 goes to the 8259A and to I/O APIC pin 14 like every ISA line.
//!
//! Absent devices follow QEMU, so that kernels written against it probe the same way:
//! with no disk at all, or with the slave selected and absent, the status and error
//! registers read 0 and commands are ignored. With only a slave, the master reads as
//! ready (DRDY) and aborts every command — xv6 waits for the master's DRDY before it
//! looks for its file-system disk, the slave.
//!
//! Only 28-bit addressing (LBA or CHS); no DMA, no LBA48. A storage error (the host's
//! I/O failed) sets ERR (with UNC for a read, DF and ABRT for a write or a flush) and
//! is kept for the machine to report ([`Ide::take_host_errors`]).

#![allow(clippy::cast_possible_truncation, reason = "8-bit registers take the low byte of the data bus")]

use popek_memory::{AccessSize, Port};

use crate::bus::{DeviceContext, PortDevice};
use crate::storage::{BlockStorage, SECTOR_SIZE, StorageError};

/// Status register bits (ATA-6 7.15).
pub mod status {
    /// Busy.
    pub const BSY: u8 = 0x80;
    /// Device ready.
    pub const DRDY: u8 = 0x40;
    /// Device fault.
    pub const DF: u8 = 0x20;
    /// Device seek complete (obsolete in ATA-6; set as drives and QEMU do).
    pub const DSC: u8 = 0x10;
    /// Data request.
    pub const DRQ: u8 = 0x08;
    /// Error.
    pub const ERR: u8 = 0x01;
}

/// Error register bits (ATA-6 7.9).
pub mod error {
    /// Uncorrectable data error.
    pub const UNC: u8 = 0x40;
    /// ID not found (address out of range).
    pub const IDNF: u8 = 0x10;
    /// Command aborted.
    pub const ABRT: u8 = 0x04;
}

/// Device control register bits (ATA-6 7.8).
pub mod control {
    /// Software reset.
    pub const SRST: u8 = 0x04;
    /// Interrupt disabled.
    pub const NIEN: u8 = 0x02;
}

/// The primary channel's command block ports.
pub const PRIMARY_PORTS: (u16, u16) = (0x1f0, 8);
/// The primary channel's control block port (alternate status / device control).
pub const PRIMARY_CONTROL_PORT: (u16, u16) = (0x3f6, 1);
/// The primary channel's interrupt line.
pub const PRIMARY_IRQ: u8 = 14;
/// Largest block of READ/WRITE MULTIPLE, in sectors (IDENTIFY word 47).
pub const MAX_MULTIPLE: u16 = 16;
/// Largest disk 28-bit LBA reaches, in sectors.
pub const MAX_LBA28_SECTORS: u64 = 1 << 28;

/// Model string in IDENTIFY DEVICE (words 27–46).
pub const MODEL: &str = "POPEK HARDDISK";
/// Firmware revision in IDENTIFY DEVICE (words 23–26).
pub const FIRMWARE: &str = "0.1";
/// Status of an idle, ready device.
const READY: u8 = status::DRDY | status::DSC;

/// Cylinders, heads and sectors per track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chs {
    /// Cylinders (at most 16383).
    pub cylinders: u16,
    /// Heads (at most 16).
    pub heads: u16,
    /// Sectors per track (at most 63).
    pub sectors: u16,
}

impl Chs {
    /// The default geometry of a disk of `total` sectors: 16 heads of 63 sectors once the
    /// disk holds a cylinder of those (as BIOSes and QEMU translate), fewer heads (or a
    /// shorter track) on a smaller disk, never more cylinders than the disk fills or 16383.
    pub fn for_sectors(total: u64) -> Chs {
        let (heads, sectors) = match total {
            t if t >= 16 * 63 => (16, 63),
            t if t >= 63 => (t / 63, 63),
            t => (1, t.max(1)),
        };
        let cylinders = (total / (heads * sectors)).clamp(1, 16383);
        Chs { cylinders: cylinders as u16, heads: heads as u16, sectors: sectors as u16 }
    }
}

/// What the guest did with the channel's disks (for `--stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdeStats {
    /// Commands issued to a present device.
    pub commands: u64,
    /// Sectors moved to the guest.
    pub sectors_read: u64,
    /// Sectors written to storage.
    pub sectors_written: u64,
    /// FLUSH CACHE commands.
    pub flushes: u64,
    /// Commands that ended with ERR.
    pub errors: u64,
}

/// A PIO transfer in progress.
#[derive(Debug)]
struct Transfer {
    /// Data-out (WRITE) rather than data-in.
    write: bool,
    /// First sector of the block in the buffer (data-in) or being filled (data-out).
    lba: u64,
    /// Sectors left, the current block included.
    left: u32,
    /// Sectors per DRQ block.
    block: u32,
    /// The IDENTIFY data rather than sectors.
    identify: bool,
}

/// One device (master or slave) on the channel.
struct Drive {
    storage: Option<Box<dyn BlockStorage>>,
    status: u8,
    error: u8,
    irq_pending: bool,
    transfer: Option<Transfer>,
    buffer: Vec<u8>,
    /// Next byte of `buffer` to transfer.
    pos: usize,
    /// Bytes of `buffer` the current block holds.
    len: usize,
    /// READ/WRITE MULTIPLE block size (0: not set).
    multiple: u16,
    /// Default geometry.
    chs: Chs,
    /// Current CHS translation (INITIALIZE DEVICE PARAMETERS): heads, sectors per track.
    translation: (u16, u16),
    /// Serial number (words 10–19).
    serial: String,
}

impl Drive {
    fn new(storage: Option<Box<dyn BlockStorage>>, index: usize) -> Drive {
        let total = storage.as_ref().map_or(0, |s| s.sectors().min(MAX_LBA28_SECTORS));
        let chs = Chs::for_sectors(total);
        Drive {
            storage,
            status: READY,
            error: 0x01,
            irq_pending: false,
            transfer: None,
            buffer: vec![0; usize::from(MAX_MULTIPLE) * SECTOR_SIZE],
            pos: 0,
            len: 0,
            multiple: 0,
            chs,
            translation: (chs.heads, chs.sectors),
            serial: format!("POPEK-{index:04}"),
        }
    }

    fn present(&self) -> bool {
        self.storage.is_some()
    }

    /// Sectors the guest can address.
    fn total(&self) -> u64 {
        self.storage.as_ref().map_or(0, |s| s.sectors().min(MAX_LBA28_SECTORS))
    }

    /// The 256 words of IDENTIFY DEVICE (ATA-6 8.15, table 16).
    fn identify(&self) -> [u16; 256] {
        let mut w = [0u16; 256];
        let total = self.total();
        let chs = self.chs;
        let (heads, spt) = self.translation;
        w[0] = 0x0040; // fixed device, ATA
        w[1] = chs.cylinders;
        w[3] = chs.heads;
        w[6] = chs.sectors;
        put_string(&mut w[10..20], &self.serial);
        put_string(&mut w[23..27], FIRMWARE);
        put_string(&mut w[27..47], MODEL);
        w[47] = 0x8000 | MAX_MULTIPLE;
        w[49] = 1 << 9; // LBA supported (no DMA)
        w[50] = 0x4000;
        w[51] = 0x0200; // PIO mode 2 timing (obsolete word)
        w[53] = 0x0003; // words 54–58 and 64–70 valid
        let cylinders = if heads == 0 || spt == 0 {
            0
        } else {
            (total / (u64::from(heads) * u64::from(spt))).min(u64::from(chs.cylinders)) as u16
        };
        let capacity = u32::from(cylinders) * u32::from(heads) * u32::from(spt);
        w[54] = cylinders;
        w[55] = heads;
        w[56] = spt;
        w[57] = capacity as u16;
        w[58] = (capacity >> 16) as u16;
        w[59] = if self.multiple > 0 { 0x0100 | self.multiple } else { 0 };
        w[60] = total as u16;
        w[61] = (total >> 16) as u16;
        w[64] = 0x0003; // PIO modes 3 and 4
        w[65..=68].copy_from_slice(&[120; 4]);
        w[80] = 0x007e; // ATA-1 to ATA-6
        w[82] = 1 << 5; // write cache
        w[83] = 0x4000 | (1 << 12); // FLUSH CACHE
        w[84] = 0x4000;
        w[85] = 1 << 5; // write cache enabled
        w[86] = 1 << 12;
        w[87] = 0x4000;
        // Integrity word: signature 0xA5, then a checksum making the 512 bytes sum to 0.
        w[255] = 0x00a5;
        let sum = w.iter().flat_map(|x| x.to_le_bytes()).fold(0u8, u8::wrapping_add);
        w[255] |= u16::from(0u8.wrapping_sub(sum)) << 8;
        w
    }
}

/// ATA strings: two characters per word, the first in the high byte, padded with spaces.
fn put_string(words: &mut [u16], s: &str) {
    let mut bytes = s.bytes().chain(std::iter::repeat(b' '));
    for w in words {
        let (hi, lo) = (bytes.next().unwrap_or(b' '), bytes.next().unwrap_or(b' '));
        *w = u16::from_be_bytes([hi, lo]);
    }
}

/// The primary ATA channel with up to two devices.
pub struct Ide {
    drives: [Drive; 2],
    /// Features register (written to both devices).
    features: u8,
    count: u8,
    lba_low: u8,
    lba_mid: u8,
    lba_high: u8,
    /// Device register: DEV (bit 4), LBA (bit 6), bits 3:0.
    device: u8,
    control: u8,
    irq_level: bool,
    host_errors: Vec<StorageError>,
    stats: IdeStats,
}

impl std::fmt::Debug for Ide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ide")
            .field("master", &self.drives[0].total())
            .field("slave", &self.drives[1].total())
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl Ide {
    /// A channel with `master` and `slave` storage (either may be absent).
    pub fn new(master: Option<Box<dyn BlockStorage>>, slave: Option<Box<dyn BlockStorage>>) -> Self {
        Ide {
            drives: [Drive::new(master, 0), Drive::new(slave, 1)],
            features: 0,
            count: 1,
            lba_low: 1,
            lba_mid: 0,
            lba_high: 0,
            device: 0,
            control: 0,
            irq_level: false,
            host_errors: Vec::new(),
            stats: IdeStats::default(),
        }
    }

    /// The host-side storage errors seen since the last call (the guest saw ERR for each).
    pub fn take_host_errors(&mut self) -> Vec<StorageError> {
        std::mem::take(&mut self.host_errors)
    }

    /// Flushes every present device's storage; the first error (all are tried).
    pub fn flush_disks(&mut self) -> Result<(), StorageError> {
        let mut first = None;
        for d in &mut self.drives {
            if let Some(s) = &mut d.storage
                && let Err(e) = s.flush()
            {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// What the guest did with the disks so far.
    pub fn stats(&self) -> IdeStats {
        self.stats
    }

    /// Sectors of device `index` (0 master, 1 slave), if present.
    pub fn sectors(&self, index: usize) -> Option<u64> {
        self.drives.get(index).and_then(|d| d.storage.as_ref()).map(|s| s.sectors())
    }

    fn selected(&self) -> usize {
        usize::from(self.device >> 4 & 1)
    }

    /// The selected device does not answer: its registers read 0 (see the module docs).
    fn silent(&self) -> bool {
        let d = self.selected();
        !self.drives[d].present() && (d == 1 || !self.drives[1].present())
    }

    fn update_irq(&mut self, ctx: &mut DeviceContext<'_>) {
        let level = self.control & control::NIEN == 0 && self.drives[self.selected()].irq_pending;
        if level != self.irq_level {
            self.irq_level = level;
            ctx.set_irq(PRIMARY_IRQ, level);
        }
    }

    fn status(&self) -> u8 {
        if self.silent() { 0 } else { self.drives[self.selected()].status }
    }

    /// The starting sector of a command: LBA bits from the task file, or CHS translated
    /// with the current geometry; `None` for a CHS address outside it.
    fn address(&self, d: usize) -> Option<u64> {
        let low = u64::from(self.lba_low);
        let mid = u64::from(self.lba_mid);
        let high = u64::from(self.lba_high);
        let head = u64::from(self.device & 0x0f);
        if self.device & 0x40 != 0 {
            return Some(head << 24 | high << 16 | mid << 8 | low);
        }
        let (heads, spt) = self.drives[d].translation;
        let (heads, spt) = (u64::from(heads), u64::from(spt));
        if low == 0 || low > spt || head >= heads {
            return None;
        }
        Some(((high << 8 | mid) * heads + head) * spt + low - 1)
    }

    fn sector_count(&self) -> u32 {
        if self.count == 0 { 256 } else { u32::from(self.count) }
    }

    fn finish(&mut self, d: usize, status: u8, error: u8) {
        if status & status::ERR != 0 {
            self.stats.errors += 1;
        }
        let drive = &mut self.drives[d];
        drive.status = status;
        drive.error = error;
        drive.transfer = None;
        drive.irq_pending = true;
    }

    fn complete(&mut self, d: usize) {
        self.finish(d, READY, 0);
    }

    fn abort(&mut self, d: usize) {
        self.finish(d, READY | status::ERR, error::ABRT);
    }

    fn host_error(&mut self, d: usize, e: StorageError, status: u8, error: u8) {
        self.host_errors.push(e);
        self.finish(d, READY | status::ERR | status, error);
    }

    fn command(&mut self, cmd: u8) {
        let d = self.selected();
        if !self.drives[d].present() {
            if d == 0 && self.drives[1].present() {
                self.abort(0);
            }
            // An absent slave (or an empty channel) ignores commands.
            return;
        }
        self.stats.commands += 1;
        if cmd == 0xe7 {
            self.stats.flushes += 1;
        }
        let drive = &mut self.drives[d];
        drive.irq_pending = false;
        drive.transfer = None;
        match cmd {
            0xec => {
                let words = drive.identify();
                for (i, w) in words.iter().enumerate() {
                    drive.buffer[2 * i..2 * i + 2].copy_from_slice(&w.to_le_bytes());
                }
                drive.transfer = Some(Transfer { write: false, lba: 0, left: 1, block: 1, identify: true });
                drive.pos = 0;
                drive.len = SECTOR_SIZE;
                drive.status = READY | status::DRQ;
                drive.error = 0;
                drive.irq_pending = true;
            }
            0x20 | 0x21 => self.start(d, false, 1),
            0x30 | 0x31 => self.start(d, true, 1),
            0xc4 | 0xc5 => match self.drives[d].multiple {
                0 => self.abort(d),
                m => self.start(d, cmd == 0xc5, u32::from(m)),
            },
            0x40 | 0x41 => match self.address(d) {
                Some(lba) if lba + u64::from(self.sector_count()) <= self.drives[d].total() => self.complete(d),
                _ => self.finish(d, READY | status::ERR, error::IDNF),
            },
            0xc6 => {
                let n = u16::from(self.count);
                if n <= MAX_MULTIPLE && (n == 0 || n.is_power_of_two()) {
                    self.drives[d].multiple = n;
                    self.complete(d);
                } else {
                    self.abort(d);
                }
            }
            0xe7 => match self.drives[d].storage.as_mut().map(|s| s.flush()) {
                Some(Err(e)) => self.host_error(d, e, status::DF, error::ABRT),
                _ => self.complete(d),
            },
            0x91 => {
                let heads = u16::from(self.device & 0x0f) + 1;
                let spt = u16::from(self.count);
                self.drives[d].translation = (heads, spt);
                self.complete(d);
            }
            0x90 => {
                for drive in &mut self.drives {
                    drive.error = 0x01;
                    drive.status = READY;
                }
                self.signature();
                self.drives[0].irq_pending = true;
            }
            // SET FEATURES (accepted: write cache, transfer mode…), SEEK, RECALIBRATE.
            0xef | 0x70 | 0x10..=0x1f => self.complete(d),
            0xe5 => {
                self.count = 0xff; // CHECK POWER MODE: active or idle
                self.complete(d);
            }
            _ => self.abort(d),
        }
    }

    /// True if the next block of the transfer lies inside the disk. A transfer that runs
    /// past the end moves the blocks before it and then fails with IDNF (as QEMU does:
    /// ATA-6 lets a command end at the sector it cannot find).
    fn block_in_range(&mut self, d: usize) -> bool {
        let drive = &self.drives[d];
        let Some(t) = &drive.transfer else { return false };
        if t.lba + u64::from(t.left.min(t.block)) <= drive.total() {
            return true;
        }
        self.finish(d, READY | status::ERR, error::IDNF);
        false
    }

    /// READ or WRITE SECTORS / MULTIPLE: the first DRQ block.
    fn start(&mut self, d: usize, write: bool, block: u32) {
        let Some(lba) = self.address(d) else {
            self.finish(d, READY | status::ERR, error::IDNF);
            return;
        };
        let left = self.sector_count();
        let drive = &mut self.drives[d];
        drive.transfer = Some(Transfer { write, lba, left, block, identify: false });
        drive.error = 0;
        drive.pos = 0;
        drive.len = left.min(block) as usize * SECTOR_SIZE;
        if write {
            // PIO data-out: DRQ for the first block, no interrupt before it.
            if self.block_in_range(d) {
                self.drives[d].status = READY | status::DRQ;
            }
        } else {
            self.load_block(d);
        }
    }

    /// Data-in: reads the next block into the buffer, DRQ and an interrupt.
    fn load_block(&mut self, d: usize) {
        if !self.block_in_range(d) {
            return;
        }
        let drive = &mut self.drives[d];
        let (Some(t), Some(storage)) = (&drive.transfer, &mut drive.storage) else { return };
        let len = t.left.min(t.block) as usize * SECTOR_SIZE;
        match storage.read_sectors(t.lba, &mut drive.buffer[..len]) {
            Ok(()) => {
                drive.pos = 0;
                drive.len = len;
                drive.status = READY | status::DRQ;
                drive.irq_pending = true;
            }
            Err(e) => self.host_error(d, e, 0, error::UNC),
        }
    }

    /// A block was transferred: the next one, or the end of the command.
    fn block_done(&mut self, d: usize) {
        let drive = &mut self.drives[d];
        let Some(t) = &mut drive.transfer else { return };
        let n = (drive.len / SECTOR_SIZE) as u32;
        if t.write {
            let (lba, storage) = (t.lba, drive.storage.as_mut());
            if let Some(Err(e)) = storage.map(|s| s.write_sectors(lba, &drive.buffer[..drive.len])) {
                self.host_error(d, e, status::DF, error::ABRT);
                return;
            }
        }
        let drive = &mut self.drives[d];
        let Some(t) = &mut drive.transfer else { return };
        if !t.identify {
            let moved = if t.write { &mut self.stats.sectors_written } else { &mut self.stats.sectors_read };
            *moved += u64::from(n);
        }
        t.left -= n;
        t.lba += u64::from(n);
        if t.left == 0 || t.identify {
            // Data-out interrupts at the end of the command; data-in does not.
            drive.irq_pending |= t.write;
            drive.transfer = None;
            drive.status = READY;
            return;
        }
        if t.write {
            drive.pos = 0;
            drive.len = t.left.min(t.block) as usize * SECTOR_SIZE;
            drive.irq_pending = true;
            self.block_in_range(d);
        } else {
            self.load_block(d);
        }
    }

    fn data_read_byte(&mut self) -> u8 {
        let d = self.selected();
        let drive = &mut self.drives[d];
        match &drive.transfer {
            Some(t) if !t.write && drive.status & status::DRQ != 0 => {
                let b = drive.buffer[drive.pos];
                drive.pos += 1;
                if drive.pos == drive.len {
                    self.block_done(d);
                }
                b
            }
            _ => 0,
        }
    }

    fn data_write_byte(&mut self, b: u8) {
        let d = self.selected();
        let drive = &mut self.drives[d];
        if let Some(t) = &drive.transfer
            && t.write
            && drive.status & status::DRQ != 0
        {
            drive.buffer[drive.pos] = b;
            drive.pos += 1;
            if drive.pos == drive.len {
                self.block_done(d);
            }
        }
    }

    /// The reset signature (ATA-6 9.12): count 1, LBA 1/0/0, device 0 selected.
    fn signature(&mut self) {
        self.count = 1;
        self.lba_low = 1;
        self.lba_mid = 0;
        self.lba_high = 0;
        self.device = 0;
    }

    fn write_control(&mut self, v: u8) {
        let was = self.control;
        self.control = v;
        if v & control::SRST != 0 && was & control::SRST == 0 {
            for drive in self.drives.iter_mut().filter(|d| d.present()) {
                drive.status = status::BSY;
                drive.transfer = None;
                drive.irq_pending = false;
            }
        } else if v & control::SRST == 0 && was & control::SRST != 0 {
            for drive in &mut self.drives {
                drive.status = READY;
                drive.error = 0x01; // diagnostics passed
            }
            self.signature();
        }
    }

    fn read_reg(&mut self, offset: u16) -> u8 {
        match offset {
            1 if self.silent() => 0,
            1 => self.drives[self.selected()].error,
            2 => self.count,
            3 => self.lba_low,
            4 => self.lba_mid,
            5 => self.lba_high,
            6 => self.device | 0xa0,
            _ => {
                let v = self.status();
                let d = self.selected();
                self.drives[d].irq_pending = false;
                v
            }
        }
    }

    fn write_reg(&mut self, offset: u16, v: u8) {
        match offset {
            1 => self.features = v,
            2 => self.count = v,
            3 => self.lba_low = v,
            4 => self.lba_mid = v,
            5 => self.lba_high = v,
            6 => self.device = v & 0x5f,
            _ => self.command(v),
        }
    }
}

impl PortDevice for Ide {
    fn name(&self) -> &'static str {
        "ide"
    }

    fn byte_wide(&self) -> bool {
        // The data port is 16 bits wide (and takes 32-bit accesses as two words).
        false
    }

    fn read(&mut self, ctx: &mut DeviceContext<'_>, base: Port, offset: u16, size: AccessSize) -> u32 {
        let mut v = 0u32;
        for i in 0..size.bytes() {
            let b = if base.0 == PRIMARY_CONTROL_PORT.0 {
                // Alternate status: no side effect; the port past it is not ours.
                if i == 0 { self.status() } else { 0xff }
            } else if offset == 0 {
                self.data_read_byte()
            } else {
                match offset + i as u16 {
                    o @ 1..=7 => self.read_reg(o),
                    _ => 0xff,
                }
            };
            v |= u32::from(b) << (8 * i);
        }
        self.update_irq(ctx);
        v
    }

    fn write(&mut self, ctx: &mut DeviceContext<'_>, base: Port, offset: u16, size: AccessSize, value: u32) {
        for (i, b) in value.to_le_bytes().into_iter().take(size.bytes() as usize).enumerate() {
            if base.0 == PRIMARY_CONTROL_PORT.0 {
                if i == 0 {
                    self.write_control(b);
                }
            } else if offset == 0 {
                self.data_write_byte(b);
            } else if let o @ 1..=7 = offset + i as u16 {
                self.write_reg(o, b);
            }
        }
        self.update_irq(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;
    use crate::testing::Harness;

    /// A disk whose sector n is filled with byte n (mod 256), but for its first byte which
    /// is n / 256.
    fn pattern(sectors: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(sectors * SECTOR_SIZE);
        for n in 0..sectors {
            v.push((n >> 8) as u8);
            v.extend(std::iter::repeat_n(n as u8, SECTOR_SIZE - 1));
        }
        v
    }

    struct T {
        ide: Ide,
        h: Harness,
    }

    impl T {
        fn new(master: Option<usize>, slave: Option<usize>) -> T {
            let disk = |n: Option<usize>| n.map(|n| Box::new(MemoryStorage::new(pattern(n))) as Box<dyn BlockStorage>);
            T { ide: Ide::new(disk(master), disk(slave)), h: Harness::default() }
        }
        fn outb(&mut self, port: u16, v: u8) {
            let (base, off) = if port == 0x3f6 { (0x3f6, 0) } else { (0x1f0, port - 0x1f0) };
            self.ide.write(&mut self.h.ctx(), Port(base), off, AccessSize::Byte, v.into());
        }
        fn inb(&mut self, port: u16) -> u8 {
            let (base, off) = if port == 0x3f6 { (0x3f6, 0) } else { (0x1f0, port - 0x1f0) };
            self.ide.read(&mut self.h.ctx(), Port(base), off, AccessSize::Byte) as u8
        }
        fn inw(&mut self) -> u16 {
            self.ide.read(&mut self.h.ctx(), Port(0x1f0), 0, AccessSize::Word) as u16
        }
        fn inl(&mut self) -> u32 {
            self.ide.read(&mut self.h.ctx(), Port(0x1f0), 0, AccessSize::Dword)
        }
        fn outl(&mut self, v: u32) {
            self.ide.write(&mut self.h.ctx(), Port(0x1f0), 0, AccessSize::Dword, v);
        }
        fn lba(&mut self, dev: u8, lba: u32, count: u8) {
            self.outb(0x1f2, count);
            self.outb(0x1f3, lba as u8);
            self.outb(0x1f4, (lba >> 8) as u8);
            self.outb(0x1f5, (lba >> 16) as u8);
            self.outb(0x1f6, 0xe0 | dev << 4 | (lba >> 24) as u8 & 0x0f);
        }
        fn read_sector(&mut self) -> Vec<u8> {
            (0..128).flat_map(|_| self.inl().to_le_bytes()).collect()
        }
        fn irq(&self) -> bool {
            self.h.irq.level[14]
        }
    }

    fn ata_string(words: &[u16]) -> String {
        words.iter().flat_map(|w| w.to_be_bytes()).map(char::from).collect::<String>().trim_end().to_string()
    }

    #[test]
    fn identify_block() {
        let mut t = T::new(Some(4096), None);
        assert_eq!(t.inb(0x1f7), 0x50, "DRDY | DSC after power-on");
        t.outb(0x1f6, 0xa0);
        t.outb(0x1f7, 0xec);
        assert!(t.irq(), "IRQ 14 with the data");
        assert_eq!(t.inb(0x3f6), 0x58, "alternate status: DRQ, and the IRQ stays");
        assert!(t.irq());
        assert_eq!(t.inb(0x1f7), 0x58);
        assert!(!t.irq(), "reading the status register clears it");
        let w: Vec<u16> = (0..256).map(|_| t.inw()).collect();
        assert_eq!(t.inb(0x1f7), 0x50, "DRQ off after 256 words");
        assert_eq!(ata_string(&w[27..47]), "POPEK HARDDISK");
        assert_eq!(ata_string(&w[10..20]), "POPEK-0000");
        assert_eq!(ata_string(&w[23..27]), "0.1");
        assert_eq!((w[1], w[3], w[6]), (4, 16, 63));
        assert_eq!(u32::from(w[60]) | u32::from(w[61]) << 16, 4096);
        assert_ne!(w[49] & (1 << 9), 0, "LBA");
        assert_eq!(w[255] & 0xff, 0xa5);
        let sum = w.iter().flat_map(|x| x.to_le_bytes()).fold(0u8, u8::wrapping_add);
        assert_eq!(sum, 0, "integrity word");
    }

    #[test]
    fn read_write_multi_sector_and_count_zero() {
        let mut t = T::new(Some(600), None);
        t.lba(0, 3, 2);
        t.outb(0x1f7, 0x20);
        assert_eq!(t.inb(0x1f7), 0x58);
        let s = t.read_sector();
        assert_eq!((s[0], s[1], s[511]), (0, 3, 3));
        assert!(t.irq(), "the second sector's data interrupts");
        assert_eq!(t.inb(0x1f7), 0x58);
        assert_eq!(t.read_sector()[1], 4);
        assert_eq!(t.inb(0x1f7), 0x50);
        assert!(!t.irq(), "no interrupt after the last sector of a read");
        // Write two sectors at 260: DRQ without an interrupt, then one per sector.
        t.lba(0, 260, 2);
        t.outb(0x1f7, 0x30);
        assert_eq!(t.inb(0x1f7), 0x58);
        assert!(!t.irq());
        for _ in 0..128 {
            t.outl(0xaaaa_aaaa);
        }
        assert!(t.irq());
        assert_eq!(t.inb(0x1f7), 0x58, "ready for the second sector");
        for _ in 0..128 {
            t.outl(0xbbbb_bbbb);
        }
        assert!(t.irq(), "completion interrupt");
        assert_eq!(t.inb(0x1f7), 0x50);
        t.lba(0, 259, 3);
        t.outb(0x1f7, 0x20);
        let got: Vec<u8> = (0..3).map(|_| t.read_sector()[100]).collect();
        assert_eq!(got, [3, 0xaa, 0xbb]);
        // Count 0 is 256 sectors.
        t.lba(0, 1, 0);
        t.outb(0x1f7, 0x20);
        for n in 1..=256u32 {
            assert_eq!(t.inb(0x1f7), 0x58, "sector {n}");
            let s = t.read_sector();
            assert_eq!((s[0], s[1]), ((n >> 8) as u8, n as u8));
        }
        assert_eq!(t.inb(0x1f7), 0x50);
        let st = t.ide.stats();
        assert_eq!((st.commands, st.sectors_read, st.sectors_written, st.errors), (4, 261, 2, 0));
        // Across the end: the sector inside, then IDNF.
        t.lba(0, 599, 2);
        t.outb(0x1f7, 0x20);
        assert_eq!(t.inb(0x1f7), 0x58);
        assert_eq!(t.read_sector()[1], 599u32 as u8);
        assert!(t.irq());
        assert_eq!((t.inb(0x1f7), t.inb(0x1f1)), (0x51, error::IDNF));
        t.lba(0, 600, 1);
        t.outb(0x1f7, 0x30);
        assert_eq!((t.inb(0x1f7), t.inb(0x1f1)), (0x51, error::IDNF), "a write beyond the end asks for no data");
    }

    #[test]
    fn read_write_multiple_and_chs() {
        let mut t = T::new(Some(2048), None);
        t.lba(0, 0, 4);
        t.outb(0x1f7, 0xc4);
        assert_eq!((t.inb(0x1f7), t.inb(0x1f1)), (0x51, error::ABRT), "no multiple mode yet");
        t.outb(0x1f2, 3);
        t.outb(0x1f7, 0xc6);
        assert_eq!(t.inb(0x1f7), 0x51, "3 is not a power of two");
        t.outb(0x1f2, 2);
        t.outb(0x1f7, 0xc6);
        assert_eq!(t.inb(0x1f7), 0x50);
        t.lba(0, 10, 3);
        t.outb(0x1f7, 0xc4);
        let first: Vec<u8> = (0..2).map(|_| t.read_sector()[1]).collect();
        assert_eq!(first, [10, 11]);
        assert_eq!(t.inb(0x1f7), 0x58, "a block of one left");
        assert_eq!(t.read_sector()[1], 12);
        assert_eq!(t.inb(0x1f7), 0x50);
        // CHS: cylinder 1, head 2, sector 5 = (1 * 16 + 2) * 63 + 4 = 1138.
        t.outb(0x1f2, 1);
        t.outb(0x1f3, 5);
        t.outb(0x1f4, 1);
        t.outb(0x1f5, 0);
        t.outb(0x1f6, 0xa2);
        t.outb(0x1f7, 0x20);
        let s = t.read_sector();
        assert_eq!((s[0], s[1]), ((1138 >> 8) as u8, 1138u32 as u8));
        // Sector 0 does not exist in CHS.
        t.outb(0x1f3, 0);
        t.outb(0x1f7, 0x20);
        assert_eq!((t.inb(0x1f7), t.inb(0x1f1)), (0x51, error::IDNF));
    }

    #[test]
    fn nien_unknown_command_flush_and_absent_devices() {
        let mut t = T::new(Some(64), None);
        t.outb(0x3f6, control::NIEN);
        t.outb(0x1f7, 0xe7);
        assert!(!t.irq(), "nIEN masks the line");
        t.outb(0x3f6, 0);
        assert!(t.irq(), "the interrupt was pending all along");
        assert_eq!(t.inb(0x1f7), 0x50);
        t.outb(0x1f7, 0xff);
        assert_eq!((t.inb(0x1f7), t.inb(0x1f1)), (0x51, error::ABRT));
        t.outb(0x1f7, 0xef);
        t.outb(0x1f7, 0x91);
        assert_eq!(t.inb(0x1f7), 0x50, "SET FEATURES, INITIALIZE DEVICE PARAMETERS");
        // The absent slave reads 0 and ignores commands.
        t.outb(0x1f6, 0xf0);
        assert_eq!((t.inb(0x1f7), t.inb(0x3f6), t.inb(0x1f1)), (0, 0, 0));
        t.outb(0x1f7, 0xec);
        assert!(!t.irq());
        assert_eq!(t.inb(0x1f7), 0);
        // Software reset: BSY while SRST is set, then the signature, master selected.
        t.outb(0x3f6, control::SRST);
        t.outb(0x1f6, 0xe0);
        assert_eq!(t.inb(0x1f7), status::BSY);
        t.outb(0x3f6, 0);
        assert_eq!(t.inb(0x1f7), 0x50);
        assert_eq!([t.inb(0x1f1), t.inb(0x1f2), t.inb(0x1f3), t.inb(0x1f4), t.inb(0x1f5)], [1, 1, 1, 0, 0]);
        // Only a slave: the master reads ready and aborts commands.
        let mut t = T::new(None, Some(64));
        assert_eq!(t.inb(0x1f7), 0x50);
        t.outb(0x1f7, 0xec);
        assert_eq!((t.inb(0x1f7), t.inb(0x1f1)), (0x51, error::ABRT));
        t.outb(0x1f6, 0xb0);
        t.outb(0x1f7, 0xec);
        assert_eq!(t.inb(0x1f7), 0x58);
        // No disk at all: everything reads 0.
        let mut t = T::new(None, None);
        assert_eq!(t.inb(0x1f7), 0);
    }

    /// A storage whose writes and flushes fail.
    struct Broken;
    impl BlockStorage for Broken {
        fn sectors(&self) -> u64 {
            8
        }
        fn read_sectors(&mut self, _: u64, buf: &mut [u8]) -> crate::storage::StorageResult<()> {
            buf.fill(0);
            Ok(())
        }
        fn write_sectors(&mut self, _: u64, _: &[u8]) -> crate::storage::StorageResult<()> {
            Err(StorageError::Io { what: "cannot write".into(), source: std::io::Error::other("disk full") })
        }
        fn flush(&mut self) -> crate::storage::StorageResult<()> {
            Err(StorageError::Io { what: "cannot flush".into(), source: std::io::Error::other("gone") })
        }
    }

    #[test]
    fn host_errors_reach_the_guest_and_are_kept() {
        let mut t = T { ide: Ide::new(Some(Box::new(Broken)), None), h: Harness::default() };
        t.lba(0, 0, 1);
        t.outb(0x1f7, 0x30);
        for _ in 0..256 {
            t.ide.write(&mut t.h.ctx(), Port(0x1f0), 0, AccessSize::Word, 0);
        }
        assert!(t.irq());
        assert_eq!((t.inb(0x1f7), t.inb(0x1f1)), (0x71, error::ABRT), "DRDY DF DSC ERR");
        t.outb(0x1f7, 0xe7);
        assert_eq!(t.inb(0x1f7), 0x71);
        let errors: Vec<String> = t.ide.take_host_errors().iter().map(ToString::to_string).collect();
        assert_eq!(errors, ["cannot write", "cannot flush"]);
        assert!(t.ide.flush_disks().is_err());
        assert!(t.ide.take_host_errors().is_empty());
        let st = t.ide.stats();
        assert_eq!((st.commands, st.sectors_written, st.flushes, st.errors), (2, 0, 1, 2));
    }

    #[test]
    fn small_disk_geometry() {
        assert_eq!(Chs::for_sectors(1000), Chs { cylinders: 1, heads: 15, sectors: 63 });
        assert_eq!(Chs::for_sectors(10), Chs { cylinders: 1, heads: 1, sectors: 10 });
        assert_eq!(Chs::for_sectors(1 << 28), Chs { cylinders: 16383, heads: 16, sectors: 63 });
    }
}
