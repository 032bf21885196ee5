//! `popek explain` golden files: guest blocks with their treatments and host code.
//! Re-bless after an intended change with `POPEK_BLESS=1 cargo test --test explain`
//! and review the diff.

use std::path::PathBuf;
use std::process::Command;

fn golden(name: &str, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_popek")).args(args).output().expect("popek runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("UTF-8 listing");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.txt"));
    if std::env::var_os("POPEK_BLESS").is_some() {
        std::fs::write(&path, &text).expect("golden file written");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if text != want {
        let first = text.lines().zip(want.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "{} differs from the listing at line {} (POPEK_BLESS=1 to accept):\n  got:  {}\n  want: {}",
            path.display(),
            first + 1,
            text.lines().nth(first).unwrap_or("<end>"),
            want.lines().nth(first).unwrap_or("<end>")
        );
    }
}

#[test]
fn explain_hello_hottest_blocks() {
    golden("explain_hello", &["explain", "hello", "--hottest", "2"]);
}

#[test]
fn explain_compute_hottest_block() {
    golden("explain_compute", &["explain", "compute", "--hottest", "1"]);
}

#[test]
fn explain_usermode_block_at_entry() {
    golden("explain_usermode_entry", &["explain", "usermode", "--at", "0x10000c"]);
}

/// The book's "Binary translation" chapter quotes the golden listing: it must stay true.
#[test]
fn book_quotes_the_current_listing() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let book = std::fs::read_to_string(root.join("book/src/binary-translation.md")).expect("chapter");
    let golden = std::fs::read_to_string(root.join("tests/golden/explain_hello.txt")).expect("golden file");
    let quote = book.split("```text\n").nth(1).and_then(|s| s.split("```").next()).expect("a text block");
    assert!(golden.contains(quote.trim_end_matches('\n')), "book/src/binary-translation.md quotes an outdated listing");
}

/// `--at` takes a symbol with an offset, and any address inside a block: the block is
/// shown whole, named by its symbol; an unknown name is one error line.
#[test]
fn explain_at_a_symbol_inside_a_block() {
    let explain = |at: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_popek"))
            .args(["explain", "usermode", "--at", at])
            .output()
            .expect("popek runs");
        (
            out.status.code(),
            String::from_utf8(out.stdout).expect("utf-8"),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The entry block is one CLI; the next block starts at _start+1.
    let (code, by_symbol, _) = explain("_start+1");
    assert_eq!(code, Some(0));
    assert!(by_symbol.contains("<_start+0x1>\nblock at 0x0010000d "), "{by_symbol}");
    // Its third instruction's address, from the listing.
    let third = by_symbol
        .lines()
        .filter_map(|l| l.strip_prefix("  0x"))
        .nth(2)
        .and_then(|l| l.split_whitespace().next())
        .expect("a third instruction");
    let (_, by_inner_address, _) = explain(&format!("0x{third}"));
    assert_eq!(by_inner_address, by_symbol);
    let (code, _, err) = explain("no_such_symbol");
    assert_eq!(code, Some(2));
    assert_eq!(err, "popek: `no_such_symbol` is neither an address nor a symbol of the kernel\n");
}
