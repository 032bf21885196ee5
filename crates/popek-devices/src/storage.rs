//! What a disk controller reads and writes: a [`BlockStorage`] of 512-byte sectors.
//!
//! ```text
//!   ide::Ide (ATA registers, PIO) ── read / write / flush sectors ──► dyn BlockStorage
//!                                                                      ├─ MemoryStorage (here: tests)
//!                                                                      └─ raw file, snapshot overlay
//!                                                                         (popek-machine's disk module)
//! ```
//!
//! The controller never sees a file: the machine hands it storage. A storage error is a
//! host-side failure (an I/O error of the image file, say); the controller turns it into
//! ATA error bits for the guest and keeps it for the machine to report.

/// Bytes in a sector.
pub const SECTOR_SIZE: usize = 512;

/// A host-side storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Sectors asked for beyond the end of the storage.
    #[error("sectors {lba}..{end} are beyond the end of the disk ({sectors} sectors)")]
    OutOfRange {
        /// First sector asked for.
        lba: u64,
        /// One past the last sector asked for.
        end: u64,
        /// Sectors the storage holds.
        sectors: u64,
    },
    /// A buffer that is not a whole number of sectors.
    #[error("a transfer of {len} bytes is not a whole number of 512-byte sectors")]
    PartialSector {
        /// The buffer's length.
        len: usize,
    },
    /// The host's I/O failed (the cause is the error's source).
    #[error("{what}")]
    Io {
        /// What was being done, e.g. "cannot write disk image `fs.img`".
        what: String,
        /// The host's error.
        #[source]
        source: std::io::Error,
    },
}

/// Result of a storage operation.
pub type StorageResult<T> = std::result::Result<T, StorageError>;

/// A disk as a device sees it: a fixed number of 512-byte sectors.
pub trait BlockStorage: Send {
    /// Number of sectors.
    fn sectors(&self) -> u64;
    /// Reads `buf.len() / 512` sectors starting at sector `lba` into `buf`.
    fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> StorageResult<()>;
    /// Writes `buf.len() / 512` sectors starting at sector `lba`.
    fn write_sectors(&mut self, lba: u64, buf: &[u8]) -> StorageResult<()>;
    /// Makes every write so far durable (a guest's FLUSH CACHE, and the end of a run).
    fn flush(&mut self) -> StorageResult<()>;
}

/// Checks that `len` bytes at sector `lba` are whole sectors inside a storage of
/// `sectors` sectors; the byte offset of `lba` on success.
pub fn check_range(lba: u64, len: usize, sectors: u64) -> StorageResult<u64> {
    if !len.is_multiple_of(SECTOR_SIZE) {
        return Err(StorageError::PartialSector { len });
    }
    let end = lba.saturating_add((len / SECTOR_SIZE) as u64);
    if end > sectors {
        return Err(StorageError::OutOfRange { lba, end, sectors });
    }
    Ok(lba * SECTOR_SIZE as u64)
}

/// A disk held in memory (tests, and built-in guests' disks). Counts flushes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryStorage {
    /// The disk's bytes (a whole number of sectors).
    pub bytes: Vec<u8>,
    /// Flushes asked for so far.
    pub flushes: u64,
}

impl MemoryStorage {
    /// A disk holding `bytes`, rounded up to a whole number of sectors with zeros.
    pub fn new(mut bytes: Vec<u8>) -> Self {
        bytes.resize(bytes.len().next_multiple_of(SECTOR_SIZE), 0);
        MemoryStorage { bytes, flushes: 0 }
    }
}

#[allow(clippy::cast_possible_truncation, reason = "the offset is inside `bytes`, a Vec indexed by usize")]
impl BlockStorage for MemoryStorage {
    fn sectors(&self) -> u64 {
        (self.bytes.len() / SECTOR_SIZE) as u64
    }

    fn read_sectors(&mut self, lba: u64, buf: &mut [u8]) -> StorageResult<()> {
        let at = check_range(lba, buf.len(), self.sectors())? as usize;
        buf.copy_from_slice(&self.bytes[at..at + buf.len()]);
        Ok(())
    }

    fn write_sectors(&mut self, lba: u64, buf: &[u8]) -> StorageResult<()> {
        let at = check_range(lba, buf.len(), self.sectors())? as usize;
        self.bytes[at..at + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> StorageResult<()> {
        self.flushes += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_storage_reads_writes_and_refuses_out_of_range() {
        let mut m = MemoryStorage::new(vec![1; 1000]);
        assert_eq!(m.sectors(), 2);
        let mut buf = [0u8; 512];
        m.read_sectors(1, &mut buf).unwrap();
        assert_eq!(buf[..488], [1; 488]);
        assert_eq!(buf[488..], [0; 24]);
        m.write_sectors(0, &[9; 512]).unwrap();
        assert_eq!(m.bytes[511], 9);
        let e = m.read_sectors(1, &mut [0; 1024]).unwrap_err();
        assert_eq!(e.to_string(), "sectors 1..3 are beyond the end of the disk (2 sectors)");
        assert!(matches!(m.write_sectors(0, &[0; 5]), Err(StorageError::PartialSector { len: 5 })));
        m.flush().unwrap();
        assert_eq!(m.flushes, 1);
    }
}
