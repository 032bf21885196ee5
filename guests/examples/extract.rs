//! Writes every built-in guest to a directory as `NAME.elf`, plus `NAME.expected` and
//! `NAME.cmdline` (and `NAME.img`, the disk of a guest that has one), so the very same images can be run under QEMU (see `qemu-check.sh`).
//!
//! Usage: `cargo run -p popek-guests --example extract -- DIR`

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "guests-out".into()));
    std::fs::create_dir_all(&dir)?;
    for g in popek_guests::GUESTS {
        std::fs::write(dir.join(format!("{}.elf", g.name)), g.elf)?;
        std::fs::write(dir.join(format!("{}.expected", g.name)), g.expected_output)?;
        std::fs::write(dir.join(format!("{}.cmdline", g.name)), g.cmdline)?;
        if let Some(disk) = g.disk {
            std::fs::write(dir.join(format!("{}.img", g.name)), disk())?;
        }
        println!("{}", g.name);
    }
    Ok(())
}
