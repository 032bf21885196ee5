//! VGA text-mode frame buffer: the legacy window 0xA0000–0xBFFFF with the
//! 32 KiB colour text memory at 0xB8000 stored, rendered as 80x25 text.
//! Follows the IBM VGA technical reference, "Memory Map" (B8000h colour text, character/attribute
//! byte pairs) and code page 437 for the characters. No CRTC/sequencer registers.

#![allow(
    clippy::cast_possible_truncation,
    reason = "bytes of a little-endian access are taken with shifts and `as u8`"
)]

use popek_memory::{AccessSize, PhysAddr};

use crate::bus::{DeviceContext, MmioDevice};

/// Start of the legacy VGA window.
pub const VGA_WINDOW: PhysAddr = PhysAddr(0xa0000);
/// Length of the legacy VGA window.
pub const VGA_WINDOW_LEN: u32 = 0x20000;
/// Offset of the colour text buffer (0xB8000) inside the window.
const TEXT_OFFSET: u32 = 0x18000;
const TEXT_LEN: usize = 0x8000;
/// Text screen geometry.
pub const COLUMNS: usize = 80;
/// Text screen geometry.
pub const ROWS: usize = 25;

/// Code page 437, bytes 0x00–0x1F and 0x7F–0xFF (0x00 shown as a space).
const CP437_LOW: &str = " ☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼";
const CP437_HIGH: &str = "⌂ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

/// The character a CP437 byte shows.
pub fn cp437(b: u8) -> char {
    match b {
        0x20..=0x7e => char::from(b),
        0x00..=0x1f => CP437_LOW.chars().nth(usize::from(b)).unwrap_or(' '),
        _ => CP437_HIGH.chars().nth(usize::from(b - 0x7f)).unwrap_or(' '),
    }
}

/// The VGA window with its text memory.
#[derive(Clone)]
pub struct VgaText {
    text: Box<[u8; TEXT_LEN]>,
}

impl std::fmt::Debug for VgaText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VgaText").finish_non_exhaustive()
    }
}

impl Default for VgaText {
    fn default() -> Self {
        Self::new()
    }
}

impl VgaText {
    /// Blank text memory (all zero).
    pub fn new() -> Self {
        VgaText { text: Box::new([0; TEXT_LEN]) }
    }

    /// The raw text memory (character, attribute pairs from 0xB8000).
    pub fn text_memory(&self) -> &[u8] {
        &self.text[..]
    }

    /// The first 80x25 screen as text: one line per row, trailing spaces
    /// trimmed, each line ending in a newline.
    pub fn render_text(&self) -> String {
        let mut s = String::with_capacity(COLUMNS * ROWS);
        for row in self.text[..COLUMNS * ROWS * 2].chunks(COLUMNS * 2) {
            let line: String = row.iter().step_by(2).map(|&c| cp437(c)).collect();
            s.push_str(line.trim_end_matches(' '));
            s.push('\n');
        }
        s
    }

    fn text_index(offset: u32) -> Option<usize> {
        let i = offset.checked_sub(TEXT_OFFSET)?;
        let i = usize::try_from(i).ok()?;
        (i < TEXT_LEN).then_some(i)
    }
}

impl MmioDevice for VgaText {
    fn name(&self) -> &'static str {
        "vga-text"
    }

    fn read(&mut self, _: &mut DeviceContext<'_>, _: PhysAddr, offset: u32, size: AccessSize) -> u32 {
        (0..size.bytes()).fold(0, |acc, i| {
            let b = Self::text_index(offset.wrapping_add(i)).map_or(0xff, |j| self.text[j]);
            acc | u32::from(b) << (8 * i)
        })
    }

    fn write(&mut self, _: &mut DeviceContext<'_>, _: PhysAddr, offset: u32, size: AccessSize, value: u32) {
        for i in 0..size.bytes() {
            if let Some(j) = Self::text_index(offset.wrapping_add(i)) {
                self.text[j] = (value >> (8 * i)) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;

    #[test]
    fn code_page_437() {
        assert_eq!(CP437_LOW.chars().count(), 32);
        assert_eq!(CP437_HIGH.chars().count(), 129);
        assert_eq!(cp437(b'A'), 'A');
        assert_eq!(cp437(0x01), '☺');
        assert_eq!(cp437(0x7f), '⌂');
        assert_eq!(cp437(0x80), 'Ç');
        assert_eq!(cp437(0xb3), '│');
        assert_eq!(cp437(0xc4), '─');
        assert_eq!(cp437(0xdb), '█');
        assert_eq!(cp437(0xe1), 'ß');
        assert_eq!(cp437(0xfe), '■');
    }

    #[test]
    fn text_memory_and_render() {
        let mut v = VgaText::new();
        let mut h = Harness::default();
        let base = VGA_WINDOW;
        // "Hi" with attribute 0x07 at row 0, column 0, as a guest would store it.
        v.write(&mut h.ctx(), base, 0x18000, AccessSize::Dword, 0x0769_0748);
        // 'X' at row 1, column 79, 'Y' at row 24 column 0.
        v.write(&mut h.ctx(), base, 0x18000 + 2 * (80 + 79), AccessSize::Word, 0x1f58);
        v.write(&mut h.ctx(), base, 0x18000 + 2 * (24 * 80), AccessSize::Byte, u32::from(b'Y'));
        v.write(&mut h.ctx(), base, 0x18000 + 4, AccessSize::Word, 0x07c4);
        assert_eq!(v.read(&mut h.ctx(), base, 0x18000, AccessSize::Word), 0x0748);
        assert_eq!(v.read(&mut h.ctx(), base, 0x18001, AccessSize::Byte), 0x07);
        // Outside the text memory: reads all ones, writes dropped.
        v.write(&mut h.ctx(), base, 0, AccessSize::Dword, 0);
        assert_eq!(v.read(&mut h.ctx(), base, 0, AccessSize::Dword), 0xffff_ffff);
        // The last byte of the buffer, and a dword straddling its end.
        v.write(&mut h.ctx(), base, 0x1fffe, AccessSize::Dword, 0x4433_2211);
        assert_eq!(v.read(&mut h.ctx(), base, 0x1fffe, AccessSize::Dword), 0xffff_2211);
        let screen = v.render_text();
        let lines: Vec<&str> = screen.lines().collect();
        assert_eq!(lines.len(), 25);
        assert_eq!(lines[0], "Hi─");
        assert_eq!(lines[1], format!("{}X", " ".repeat(79)));
        assert_eq!(lines[2], "");
        assert_eq!(lines[24], "Y");
    }
}
