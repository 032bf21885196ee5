//! The interactive console, as `qemu -nographic` gives one: when stdin is a terminal,
//! it goes into raw mode and what the user types goes to the guest's COM1, byte for byte
//! (Ctrl-C included). Ctrl-A is the escape: Ctrl-A x quits, Ctrl-A Ctrl-A sends one
//! Ctrl-A, Ctrl-A h prints the keys. The terminal is restored however popek ends: the
//! guard's drop on every return path, and a panic hook.

use popek::machine::console::Console;
use std::io::{IsTerminal, Read, Write};

/// The escape byte (Ctrl-A).
pub const ESCAPE: u8 = 0x01;

/// What one typed byte means to the escape decoder.
#[derive(Debug, PartialEq, Eq)]
pub enum Key {
    /// Send these bytes to the guest.
    Send(Vec<u8>),
    /// Quit popek.
    Quit,
    /// Show the escape keys.
    Help,
    /// Nothing yet (the escape byte, waiting for the next one).
    Nothing,
}

/// Turns typed bytes into [`Key`]s: Ctrl-A starts an escape sequence of one more byte.
#[derive(Debug, Default)]
pub struct EscapeDecoder {
    escaped: bool,
}

impl EscapeDecoder {
    /// The meaning of byte `b`.
    pub fn feed(&mut self, b: u8) -> Key {
        if std::mem::take(&mut self.escaped) {
            return match b {
                b'x' | b'X' => Key::Quit,
                ESCAPE => Key::Send(vec![ESCAPE]),
                b'h' | b'H' | b'?' => Key::Help,
                // Anything else: the escape and the byte are dropped, as QEMU does.
                _ => Key::Nothing,
            };
        }
        if b == ESCAPE {
            self.escaped = true;
            return Key::Nothing;
        }
        Key::Send(vec![b])
    }
}

/// COM1's output at a raw terminal: every byte written and flushed at once (a prompt
/// without a newline must show), and `\n` sent as `\r\n` (raw mode turns off the
/// terminal's own output processing; QEMU keeps it on).
#[derive(Debug, Default)]
pub struct TerminalSink;

impl popek::devices::sink::ByteSink for TerminalSink {
    fn write_byte(&mut self, byte: u8) {
        let mut out = std::io::stdout().lock();
        let _ = if byte == b'\n' { out.write_all(b"\r\n") } else { out.write_all(&[byte]) };
        let _ = out.flush();
    }
    fn flush(&mut self) {
        let _ = std::io::stdout().flush();
    }
}

/// The terminal in raw mode, restored when dropped.
pub struct RawTerminal(());

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// If stdin is a terminal: raw mode, a thread that feeds what is typed to a new
/// [`Console`], and a short line on stderr saying how to quit. `None` otherwise (piped
/// stdin stays for `--input -`, which reads it before the run).
pub fn interactive() -> Option<(Console, RawTerminal)> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    crossterm::terminal::enable_raw_mode().ok()?;
    let guard = RawTerminal(());
    // A panic must not leave the terminal raw either.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::terminal::disable_raw_mode();
        previous(info);
    }));
    let _ = write!(std::io::stderr(), "popek: interactive console on COM1 (Ctrl-A x quits, Ctrl-A h for help)\r\n");
    let console = Console::new();
    let typist = console.clone();
    std::thread::spawn(move || {
        let mut decoder = EscapeDecoder::default();
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin().lock();
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            for &b in &buf[..n] {
                match decoder.feed(b) {
                    Key::Send(bytes) => typist.type_bytes(&bytes),
                    Key::Quit => {
                        typist.quit();
                        return;
                    }
                    Key::Help => {
                        let _ = write!(
                            std::io::stderr(),
                            "\r\npopek: Ctrl-A x  quit\r\npopek: Ctrl-A Ctrl-A  send Ctrl-A\r\npopek: Ctrl-A h  this help\r\n"
                        );
                    }
                    Key::Nothing => {}
                }
            }
        }
    });
    Some((console, guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keys() {
        let mut d = EscapeDecoder::default();
        assert_eq!(d.feed(b'l'), Key::Send(vec![b'l']));
        assert_eq!(d.feed(0x03), Key::Send(vec![0x03]), "Ctrl-C goes to the guest");
        assert_eq!(d.feed(ESCAPE), Key::Nothing);
        assert_eq!(d.feed(ESCAPE), Key::Send(vec![ESCAPE]));
        assert_eq!(d.feed(ESCAPE), Key::Nothing);
        assert_eq!(d.feed(b'q'), Key::Nothing, "an unknown escape is dropped");
        assert_eq!(d.feed(b'x'), Key::Send(vec![b'x']), "and the escape is over");
        assert_eq!(d.feed(ESCAPE), Key::Nothing);
        assert_eq!(d.feed(b'h'), Key::Help);
        assert_eq!(d.feed(ESCAPE), Key::Nothing);
        assert_eq!(d.feed(b'x'), Key::Quit);
    }
}
