//! Disk images for the ATA controller: the storage behind `--disk`.
//!
//! ```text
//!   --disk FILE            RawImage       reads and writes go to the file at once (the host
//!                                         kernel holds them even if popek dies); flush =
//!                                         fdatasync, at a guest's FLUSH CACHE and at the end
//!                                         of every run
//!   --disk FILE,snapshot   SnapshotImage  reads from the file, writes kept in memory, the
//!                                         file never written (QEMU's snapshot=on)
//!   tests, built-in guests MemoryDisk     all in memory
//! ```
//!
//! An image is checked when it is opened: a regular file, not empty, a whole number of
//! 512-byte sectors, at most what 28-bit LBA reaches (128 GiB), and writable unless it is
//! a snapshot. Each refusal is a [`DiskError`] with a one-line message.

use popek_devices::ide::MAX_LBA28_SECTORS;
use popek_devices::storage::{BlockStorage, SECTOR_SIZE, StorageError, StorageResult, check_range};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The in-memory disk (tests and built-in guests).
pub type MemoryDisk = popek_devices::storage::MemoryStorage;

/// Why a disk image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The file cannot be opened (the cause is the error's source).
    #[error("cannot open disk image `{}`", path.display())]
    Open {
        /// The image.
        path: PathBuf,
        /// The host's error.
        #[source]
        source: std::io::Error,
    },
    /// Not a regular file.
    #[error("disk image `{}` is not a regular file", path.display())]
    NotRegular {
        /// The image.
        path: PathBuf,
    },
    /// An empty file.
    #[error("disk image `{}` is empty", path.display())]
    Empty {
        /// The image.
        path: PathBuf,
    },
    /// A length that is not a whole number of sectors.
    #[error("disk image `{}` is {len} bytes, not a whole number of 512-byte sectors", path.display())]
    PartialSector {
        /// The image.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },
    /// More than 28-bit LBA reaches.
    #[error("disk image `{}` is {len} bytes, more than the 128 GiB that 28-bit LBA reaches", path.display())]
    TooLarge {
        /// The image.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },
    /// A read-only file without `snapshot`.
    #[error(
        "disk image `{}` is read-only: make it writable, or add `,snapshot` to keep the guest's writes in memory",
        path.display()
    )]
    ReadOnly {
        /// The image.
        path: PathBuf,
    },
}

/// Opens the image at `path`: written in place, or (`snapshot`) with the guest's writes
/// kept in memory.
pub fn open(path: &Path, snapshot: bool) -> Result<Box<dyn BlockStorage>, DiskError> {
    let meta = std::fs::metadata(path).map_err(|source| DiskError::Open { path: path.into(), source })?;
    if !meta.is_file() {
        return Err(DiskError::NotRegular { path: path.into() });
    }
    let len = meta.len();
    if len == 0 {
        return Err(DiskError::Empty { path: path.into() });
    }
    if !len.is_multiple_of(SECTOR_SIZE as u64) {
        return Err(DiskError::PartialSector { path: path.into(), len });
    }
    if len / SECTOR_SIZE as u64 > MAX_LBA28_SECTORS {
        return Err(DiskError::TooLarge { path: path.into(), len });
    }
    // Root may open a file without write permission for writing: the mode bits decide.
    if !snapshot && meta.permissions().readonly() {
        return Err(DiskError::ReadOnly { path: path.into() });
    }
    let file =
        OpenOptions::new().read(true).write(!snapshot).open(path).map_err(|source| match source.raw_os_error() {
            Some(code) if code == EROFS && !snapshot => DiskError::ReadOnly { path: path.into() },
            _ => DiskError::Open { path: path.into(), source },
        })?;
    let image = RawImage { file, path: path.into(), sectors: len / SECTOR_SIZE as u64 };
    Ok(if snapshot { Box::new(SnapshotImage { image, overlay: BTreeMap::new() }) } else { Box::new(image) })
}

/// Linux's "read-only file system" errno.
const EROFS: i32 = 30;

/// A raw image file, read and written in place.
#[derive(Debug)]
pub struct RawImage {
    file: File,
    path: PathBuf,
    sectors: u64,
}

impl RawImage {
    fn io(&self, what: &str, source: std::io::Error) -> StorageError {
        StorageError::Io { what: format!("cannot {what} disk image `{}`", self.path.display()), source }
    }
}

impl BlockStorage for RawImage {
    fn sectors(&self) -> u64 {
        self.sectors
    }

    fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> StorageResult<()> {
        let at = check_range(lba, buf.len(), self.sectors)?;
        self.file.read_exact_at(buf, at).map_err(|e| self.io("read", e))
    }

    fn write_sectors(&mut self, lba: u64, buf: &[u8]) -> StorageResult<()> {
        let at = check_range(lba, buf.len(), self.sectors)?;
        self.file.write_all_at(buf, at).map_err(|e| self.io("write", e))
    }

    fn flush(&mut self) -> StorageResult<()> {
        self.file.sync_data().map_err(|e| self.io("flush", e))
    }
}

/// A raw image opened read-only, with the guest's writes in memory, sector by sector.
#[derive(Debug)]
pub struct SnapshotImage {
    image: RawImage,
    overlay: BTreeMap<u64, Box<[u8; SECTOR_SIZE]>>,
}

impl SnapshotImage {
    /// Sectors the guest has written so far (held in memory).
    pub fn written_sectors(&self) -> usize {
        self.overlay.len()
    }
}

impl BlockStorage for SnapshotImage {
    fn sectors(&self) -> u64 {
        self.image.sectors
    }

    fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> StorageResult<()> {
        check_range(lba, buf.len(), self.image.sectors)?;
        for (i, sector) in buf.chunks_exact_mut(SECTOR_SIZE).enumerate() {
            let n = lba + i as u64;
            match self.overlay.get(&n) {
                Some(data) => sector.copy_from_slice(&data[..]),
                None => self.image.read_sectors(n, sector)?,
            }
        }
        Ok(())
    }

    fn write_sectors(&mut self, lba: u64, buf: &[u8]) -> StorageResult<()> {
        check_range(lba, buf.len(), self.image.sectors)?;
        for (i, sector) in buf.chunks_exact(SECTOR_SIZE).enumerate() {
            let mut data = Box::new([0u8; SECTOR_SIZE]);
            data.copy_from_slice(sector);
            self.overlay.insert(lba + i as u64, data);
        }
        Ok(())
    }

    fn flush(&mut self) -> StorageResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("popek-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn raw_writes_reach_the_file_and_snapshots_do_not() {
        let p = temp("raw.img", &[7u8; 2048]);
        let mut d = open(&p, false).unwrap();
        assert_eq!(d.sectors(), 4);
        d.write_sectors(1, &[1u8; 1024]).unwrap();
        d.flush().unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!((bytes[511], bytes[512], bytes[1535], bytes[1536]), (7, 1, 1, 7));
        let mut s = open(&p, true).unwrap();
        s.write_sectors(0, &[9u8; 512]).unwrap();
        let mut buf = [0u8; 1024];
        s.read_sectors(0, &mut buf).unwrap();
        assert_eq!((buf[0], buf[512]), (9, 1));
        s.flush().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), bytes, "the snapshot left the file alone");
        assert!(s.read_sectors(4, &mut buf[..512]).is_err());
    }

    #[test]
    fn refusals_are_one_line() {
        let odd = temp("odd.img", &[0u8; 1000]);
        let empty = temp("empty.img", &[]);
        let ro = temp("ro.img", &[0u8; 512]);
        let mut perms = std::fs::metadata(&ro).unwrap().permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(&ro, perms).unwrap();
        let msg = |p: &Path, snapshot| open(p, snapshot).err().unwrap().to_string();
        assert!(msg(&odd, false).ends_with("is 1000 bytes, not a whole number of 512-byte sectors"));
        assert!(msg(&empty, true).ends_with("is empty"));
        assert!(msg(&ro, false).contains("is read-only: make it writable, or add `,snapshot`"));
        assert!(open(&ro, true).is_ok(), "a snapshot of a read-only image is fine");
        assert!(msg(Path::new("/no/such.img"), false).starts_with("cannot open disk image `/no/such.img`"));
        assert!(msg(Path::new("/tmp"), false).ends_with("is not a regular file"));
        for m in [msg(&odd, false), msg(&ro, false)] {
            assert!(!m.contains('\n'), "{m}");
        }
    }
}
