//! Every input in the fuzz corpus (`fuzz/corpus/TARGET/`) and every input that ever made a
//! target crash (`fuzz/regressions/TARGET/`) runs through the target's body on stable Rust,
//! so CI keeps them all: `popek::fuzzing` holds the bodies the fuzzer runs.

use std::path::Path;

/// The files of `fuzz/{corpus,regressions}/target`, sorted by name.
fn inputs(target: &str) -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files: Vec<_> = ["corpus", "regressions"]
        .iter()
        .filter_map(|kind| std::fs::read_dir(root.join(kind).join(target)).ok())
        .flatten()
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, body: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "fuzz/corpus/{target} has inputs");
    for f in &files {
        let data = std::fs::read(f).expect("a corpus file");
        let r = std::panic::catch_unwind(|| body(&data));
        assert!(r.is_ok(), "{}: the target panics on this input", f.display());
    }
}

#[test]
fn loaders_corpus() {
    replay("loaders", popek::fuzzing::loaders);
}

#[test]
fn engines_corpus() {
    replay("engines", popek::fuzzing::engines);
}

#[test]
fn cli_corpus() {
    replay("cli", popek::fuzzing::cli);
}
