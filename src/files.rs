//! The files named on the command line — the kernel, `--module` files, `--input` — read
//! into memory, and only when that is safe: each must be a regular file, and together
//! they must fit in guest RAM. And the files popek writes (`--serial file:PATH`, `bench
//! --plot`, `guests --extract`), opened so that a FIFO nobody reads cannot hang it.
//!
//! ```text
//!   admit(path)   metadata only, nothing opened: a directory, FIFO, device or socket is
//!                 refused by name; its length is charged to the RAM budget (refused if over)
//!   read()        opened non-blocking, checked again, read through `take(len + 1)`:
//!                 a file that grew since `admit` is refused, never read past its budget
//! ```
//!
//! This module is part of the CLI: errors are `anyhow`, one line each, exit status 2.

use anyhow::{Context, Result, bail};
use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The bytes of guest RAM not yet promised to a file.
pub struct Budget {
    ram: u64,
    left: u64,
    /// Whether the RAM size came from `--mem` (so the messages can point at it).
    mem_flag: bool,
}

/// A file that passed [`Budget::admit`]: a regular file of `len` bytes.
pub struct Admitted {
    what: &'static str,
    path: PathBuf,
    len: u64,
}

impl Budget {
    /// A budget of `ram` bytes (the guest's RAM size); `mem_flag` if `--mem` sets it.
    pub fn new(ram: u64, mem_flag: bool) -> Self {
        Budget { ram, left: ram, mem_flag }
    }

    fn hint(&self) -> &'static str {
        if self.mem_flag { " (see --mem)" } else { "" }
    }

    /// Checks `path` by its metadata alone (it is not opened) and charges its length to the
    /// budget. `what` names it in messages ("kernel", "module", "input file").
    pub fn admit(&mut self, what: &'static str, path: &Path) -> Result<Admitted> {
        let meta = std::fs::metadata(path).with_context(|| format!("cannot read {what} `{}`", path.display()))?;
        let len = regular_len(what, path, &meta)?;
        if len > self.left {
            let room = if self.left == self.ram {
                format!("the {} of guest RAM", size_text(self.ram))
            } else {
                format!(
                    "the {} of the {} guest RAM left after the files before it",
                    size_text(self.left),
                    size_text(self.ram)
                )
            };
            bail!("{what} `{}` is {}, more than {room}{}", path.display(), size_text(len), self.hint());
        }
        self.left -= len;
        Ok(Admitted { what, path: path.to_path_buf(), len })
    }

    /// Reads standard input to its end, refusing more bytes than the budget has left.
    pub fn read_stdin(&mut self) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(self.left.saturating_add(1))
            .read_to_end(&mut bytes)
            .context("cannot read stdin")?;
        let len = bytes.len() as u64;
        if len > self.left {
            bail!(
                "input from stdin is more than the {} of the {} guest RAM left for it{}",
                size_text(self.left),
                size_text(self.ram),
                self.hint()
            );
        }
        self.left -= len;
        Ok(bytes)
    }
}

impl Admitted {
    /// Reads the file: opened non-blocking (a FIFO swapped in since [`Budget::admit`]
    /// cannot block the open), checked to be the same kind of file, and never read beyond
    /// the length admitted.
    pub fn read(&self) -> Result<Vec<u8>> {
        let (what, path) = (self.what, self.path.display());
        let file: File = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path)
            .with_context(|| format!("cannot read {what} `{path}`"))?;
        let meta = file.metadata().with_context(|| format!("cannot read {what} `{path}`"))?;
        regular_len(what, &self.path, &meta)?;
        let mut bytes = Vec::new();
        file.take(self.len.saturating_add(1))
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {what} `{path}`"))?;
        if bytes.len() as u64 > self.len {
            bail!("{what} `{path}` grew while it was being read (it was {})", size_text(self.len));
        }
        Ok(bytes)
    }
}

/// The length of a regular file; anything else is refused, saying what it is.
fn regular_len(what: &str, path: &Path, meta: &Metadata) -> Result<u64> {
    let t = meta.file_type();
    if !t.is_file() {
        bail!("{what} `{}` is {}, not a regular file", path.display(), kind(t));
    }
    Ok(meta.len())
}

/// What a file that is not a regular file is, in words.
fn kind(t: FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// A byte count as people read it: "3 MiB", "1536 KiB", "100 bytes".
fn size_text(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n.is_multiple_of(1 << 20) => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n.is_multiple_of(1 << 10) => format!("{} KiB", n >> 10),
        1 => "1 byte".into(),
        n => format!("{n} bytes"),
    }
}

/// Opens `path` for writing (created if missing, truncated), named `what` in messages. A
/// FIFO with no process reading it is refused at once: a blocking open would wait for a
/// reader for ever. A FIFO with a reader, a terminal or `/dev/null` is then opened again
/// without `O_NONBLOCK` (while the first descriptor is still open), so that writes wait
/// for a slow reader instead of failing; a regular file is used as it is (`O_NONBLOCK`
/// means nothing to one).
pub fn create_output(what: &str, path: &Path) -> Result<File> {
    let name = path.display();
    let probe =
        match OpenOptions::new().write(true).create(true).truncate(true).custom_flags(libc::O_NONBLOCK).open(path) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                let socket = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket());
                if socket {
                    bail!("{what} `{name}` is a socket: popek writes files, FIFOs and devices");
                }
                bail!("{what} `{name}` is a FIFO that no process is reading: start its reader first");
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create {what} `{name}`")),
        };
    let meta = probe.metadata().with_context(|| format!("cannot create {what} `{name}`"))?;
    if meta.is_file() {
        return Ok(probe);
    }
    OpenOptions::new().write(true).open(path).with_context(|| format!("cannot open {what} `{name}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_words() {
        assert_eq!(size_text(2 << 20), "2 MiB");
        assert_eq!(size_text(1536 << 10), "1536 KiB");
        assert_eq!(size_text(100), "100 bytes");
        assert_eq!(size_text(0), "0 bytes");
    }

    #[test]
    fn the_budget_is_shared_and_refuses_what_does_not_fit() {
        let dir = std::env::temp_dir().join(format!("popek-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        std::fs::write(&f, [7u8; 3000]).unwrap();
        let mut budget = Budget::new(4096, false);
        let a = budget.admit("kernel", &f).unwrap();
        assert_eq!(a.read().unwrap(), vec![7u8; 3000]);
        let err = budget.admit("module", &f).err().unwrap().to_string();
        assert!(
            err.contains(
                "is 3000 bytes, more than the 1096 bytes of the 4 KiB guest RAM left after the files before it"
            ),
            "{err}"
        );
        let err = budget.admit("module", &dir).err().unwrap().to_string();
        assert!(err.ends_with("is a directory, not a regular file"), "{err}");
        // A file that grows after it was admitted is not read past its admitted length.
        let g = dir.join("g");
        std::fs::write(&g, [1u8; 10]).unwrap();
        let b = Budget::new(4096, false).admit("input file", &g).unwrap();
        std::fs::write(&g, [1u8; 20]).unwrap();
        assert!(b.read().err().unwrap().to_string().contains("grew while it was being read"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
