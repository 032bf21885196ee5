//! Symbols from a kernel's ELF symbol table: names for addresses wherever the debugger,
//! `--trace` and `popek explain` show one, and addresses for names a user types.

use object::{Object, ObjectSymbol, SymbolKind};

/// One symbol: a function or a data object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// Its name.
    pub name: String,
    /// Its address (a virtual address, as the kernel was linked).
    pub addr: u32,
    /// Its size in bytes (0 if the symbol table does not say).
    pub size: u32,
}

/// A kernel's symbols, sorted by address. Empty for an image without a symbol table
/// (a stripped ELF, a bzImage).
#[derive(Clone, Debug, Default)]
pub struct Symbols {
    sorted: Vec<Symbol>,
}

impl Symbols {
    /// The function and object symbols of an ELF image; none if `image` is not an ELF
    /// file or has no symbol table.
    pub fn from_elf(image: &[u8]) -> Symbols {
        let Ok(file) = object::File::parse(image) else { return Symbols::default() };
        let mut sorted: Vec<Symbol> = file
            .symbols()
            .filter(|s| matches!(s.kind(), SymbolKind::Text | SymbolKind::Data | SymbolKind::Unknown))
            .filter(|s| !s.is_undefined() && s.section_index().is_some() && s.address() != 0)
            .filter_map(|s| {
                let name = s.name().ok()?.to_string();
                let addr = u32::try_from(s.address()).ok()?;
                (!name.is_empty()).then(|| Symbol { name, addr, size: u32::try_from(s.size()).unwrap_or(0) })
            })
            .collect();
        sorted.sort_by(|a, b| (a.addr, &a.name).cmp(&(b.addr, &b.name)));
        sorted.dedup_by(|b, a| a.addr == b.addr && a.name == b.name);
        Symbols { sorted }
    }

    /// True if there are no symbols.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// Every symbol, by address.
    pub fn iter(&self) -> impl Iterator<Item = &Symbol> {
        self.sorted.iter()
    }

    /// The address of the symbol called `name`.
    pub fn lookup(&self, name: &str) -> Option<u32> {
        self.sorted.iter().find(|s| s.name == name).map(|s| s.addr)
    }

    /// The symbol that holds `addr`: the one at or below it that is nearest, if `addr`
    /// is within its size (or, for a symbol without a size, below the next symbol).
    pub fn containing(&self, addr: u32) -> Option<&Symbol> {
        let i = self.sorted.partition_point(|s| s.addr <= addr).checked_sub(1)?;
        let s = &self.sorted[i];
        let end = match s.size {
            0 => self.sorted.get(i + 1).map_or(u64::from(s.addr) + 0x1000, |n| u64::from(n.addr)),
            n => u64::from(s.addr) + u64::from(n),
        };
        (u64::from(addr) < end).then_some(s)
    }

    /// `addr` as `name` or `name+0xOFF`, if a symbol holds it.
    pub fn describe(&self, addr: u32) -> Option<String> {
        self.containing(addr).map(|s| match addr - s.addr {
            0 => s.name.clone(),
            off => format!("{}+{off:#x}", s.name),
        })
    }

    /// `addr` in hex, followed by ` <name+off>` when a symbol holds it.
    pub fn annotate(&self, addr: u32) -> String {
        match self.describe(addr) {
            Some(d) => format!("{addr:#010x} <{d}>"),
            None => format!("{addr:#010x}"),
        }
    }

    /// An address a user typed: hex (`0x1000f0`, `1000f0`), or a symbol, either with an
    /// optional `+OFFSET`.
    pub fn parse_address(&self, text: &str) -> Option<u32> {
        let (base, off) = match text.split_once('+') {
            Some((b, o)) => (b.trim(), Some(parse_number(o.trim())?)),
            None => (text.trim(), None),
        };
        let addr = self.lookup(base).or_else(|| parse_number(base))?;
        Some(addr.wrapping_add(off.unwrap_or(0)))
    }
}

/// A number as a user types it: `0x…` hex, or decimal, or bare hex digits.
pub fn parse_number(text: &str) -> Option<u32> {
    let t = text.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u32::from_str_radix(h, 16).ok();
    }
    t.parse::<u32>().ok().or_else(|| u32::from_str_radix(t, 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in `hello` guest has a symbol table: its entry and kmain are found both
    /// ways, and an address inside kmain is described relative to it.
    #[test]
    fn hello_has_kmain() {
        let g = popek_guests::find("hello").expect("hello guest");
        let syms = Symbols::from_elf(g.elf);
        let kmain = syms.lookup("kmain").expect("kmain");
        assert_eq!(syms.describe(kmain).as_deref(), Some("kmain"));
        assert_eq!(syms.describe(kmain + 3).as_deref(), Some("kmain+0x3"));
        assert_eq!(syms.parse_address("kmain+0x3"), Some(kmain + 3));
        assert_eq!(syms.parse_address("0x100000"), Some(0x100000));
        assert!(syms.annotate(kmain).ends_with("<kmain>"));
    }

    /// Bytes that are no ELF file have no symbols, and no address is described.
    #[test]
    fn not_elf_means_no_symbols() {
        let syms = Symbols::from_elf(b"\x7fELF but not really");
        assert!(syms.is_empty());
        assert_eq!(syms.describe(0x100000), None);
        assert_eq!(syms.parse_address("nothing"), None);
    }
}
