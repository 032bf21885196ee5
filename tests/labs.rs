//! The lab book: `popek lab check N` passes every reference solution and fails every
//! deliberately wrong one (naming the failing test), and every command a lab chapter shows
//! in a ```console block prints exactly what the chapter says it prints.
//!
//! Console blocks (`book/src/labs/*.md`): a line `$ COMMAND` is run with `sh -c` in the
//! repository's root, with the built `popek` first on PATH; its stdout and stderr (in that
//! order) must be the lines below it, up to the next `$` line or the end of the block. A
//! line `...` stands for any number of lines (none included). `POPEK_BLESS=1` rewrites the
//! blocks with what the commands print now (review the diff!).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn popek(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_popek")).args(args).current_dir(root()).output().expect("popek runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `popek lab check N --solution DIR`: its exit status and stdout.
fn check(n: u32, dir: &str) -> (Option<i32>, String) {
    let o = popek(&["lab", "check", &n.to_string(), "--solution", dir]);
    assert!(o.stderr.is_empty() || o.status.code() == Some(2), "lab {n}, {dir}: {}", text(&o.stderr));
    (o.status.code(), text(&o.stdout))
}

/// The reference solution passes: every test OK, full score, exit status 0.
fn passes(n: u32) {
    let (status, out) = check(n, &format!("book/labs/solutions/lab{n}"));
    assert_eq!(status, Some(0), "lab {n}:\n{out}");
    let tests: Vec<&str> = out.lines().filter(|l| l.contains(" pts)")).collect();
    assert!(tests.len() >= 3, "lab {n} has tests:\n{out}");
    assert!(tests.iter().all(|l| l.contains(": OK (")), "lab {n}:\n{out}");
    let total: u32 = tests.iter().filter_map(|l| l.rsplit('(').next()?.split(' ').next()?.parse::<u32>().ok()).sum();
    assert!(out.ends_with(&format!("Score: {total}/{total}\n")), "lab {n}:\n{out}");
}

/// The wrong solution fails: exit status 1, and `test` is among the FAIL lines.
fn fails(n: u32, test: &str) {
    let (status, out) = check(n, &format!("book/labs/wrong/lab{n}"));
    assert_eq!(status, Some(1), "lab {n}:\n{out}");
    assert!(out.lines().any(|l| l.starts_with(&format!("{test}: FAIL (0/"))), "lab {n}: `{test}` fails:\n{out}");
    let score = out.lines().last().and_then(|l| l.strip_prefix("Score: ")).expect("a score line");
    let (got, total) = score.split_once('/').expect("x/y");
    assert!(got.parse::<u32>().unwrap() < total.parse::<u32>().unwrap(), "lab {n}: {score}");
}

macro_rules! lab_tests {
    ($($pass:ident, $fail:ident, $n:literal, $test:literal;)*) => {$(
        #[test]
        fn $pass() {
            passes($n);
        }

        #[test]
        fn $fail() {
            fails($n, $test);
        }
    )*};
}

lab_tests! {
    lab1_reference_passes, lab1_wrong_fails, 1, "hello_status";
    lab2_reference_passes, lab2_wrong_fails, 2, "silent_instructions";
    lab3_reference_passes, lab3_wrong_fails, 3, "callout_insn";
    lab4_reference_passes, lab4_wrong_fails, 4, "user_pf_errors";
    lab5_reference_passes, lab5_wrong_fails, 5, "retired_mips10";
    lab6_reference_passes, lab6_wrong_fails, 6, "patch_translations_dropped";
    lab7_reference_passes, lab7_wrong_fails, 7, "speedup";
    lab8_reference_passes, lab8_wrong_fails, 8, "mem_upper (64 MiB)";
    lab9_reference_passes, lab9_wrong_fails, 9, "kmain_caller";
    lab10_reference_passes, lab10_wrong_fails, 10, "native_mov_traps";
}

#[test]
fn lab8_template_builds_but_fails() {
    let (status, out) = check(8, "book/labs/lab8");
    assert_eq!(status, Some(1), "{out}");
    assert!(out.contains("builds: OK") && out.contains("greets: FAIL"), "{out}");
}

#[test]
fn lab7_without_its_plot_fails_that_test() {
    let dir = std::env::temp_dir().join(format!("popek-lab7-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(root().join("book/labs/solutions/lab7/answers.txt"), dir.join("answers.txt")).unwrap();
    let (status, out) = check(7, dir.to_str().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(status, Some(1), "{out}");
    assert!(out.contains("plot: FAIL (0/5 pts): cannot read"), "{out}");
    assert!(out.contains("speedup: OK"), "{out}");
}

#[test]
fn list_names_every_lab() {
    let o = popek(&["lab", "list"]);
    assert_eq!(o.status.code(), Some(0));
    let out = text(&o.stdout);
    assert!(out.lines().count() >= 8, "{out}");
    assert!(out.lines().next().unwrap().trim_start().starts_with("1  The machine and its guests"), "{out}");
}

#[test]
fn bad_lab_numbers_and_missing_solutions_are_one_line_errors() {
    for args in [
        &["lab", "check", "99"][..],
        &["lab", "check", "0", "--solution", "book/labs/solutions/lab1"],
        &["lab", "check", "1", "--solution", "no/such/dir"],
        &["lab", "check", "2", "--solution", "book/labs/lab8"],
        &["lab", "check", "8", "--solution", "book/labs/solutions/lab1/answers.txt"],
        &["lab", "check", "x"],
    ] {
        let o = popek(args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("popek: ") && !err.contains("panicked"), "{args:?}: {err}");
    }
    assert_eq!(
        text(&popek(&["lab", "check", "99"]).stderr),
        "popek: there is no lab 99 (`popek lab list` lists labs 1 to 10)\n"
    );
}

/// A command of a console block and the lines the book shows for it.
struct Shown {
    command: String,
    lines: Vec<String>,
    /// Where in the chapter: the line of the command.
    line: usize,
}

/// The console blocks of a chapter, as commands with their shown output.
fn console_blocks(text: &str) -> Vec<Shown> {
    let mut shown: Vec<Shown> = Vec::new();
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        if !inside {
            inside = line.trim_end() == "```console";
            continue;
        }
        if line.starts_with("```") {
            inside = false;
        } else if let Some(cmd) = line.strip_prefix("$ ") {
            shown.push(Shown { command: cmd.to_string(), lines: Vec::new(), line: i + 1 });
        } else if let Some(last) = shown.last_mut() {
            last.lines.push(line.to_string());
        } else {
            panic!("line {}: a console block starts with a `$ ` command", i + 1);
        }
    }
    shown
}

/// `actual` matches `shown`, where a `...` line in `shown` stands for any lines.
fn matches(shown: &[String], actual: &[&str]) -> bool {
    match shown.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => (0..=actual.len()).any(|k| matches(rest, &actual[k..])),
        Some((first, rest)) => actual.first().is_some_and(|a| a == first) && matches(rest, &actual[1..]),
    }
}

/// Runs a shown command as the book's reader would, `popek` being the built one.
fn run_shown(command: &str) -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_popek")).parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let o = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(root())
        .env("PATH", path)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("sh runs");
    text(&o.stdout) + &text(&o.stderr)
}

#[test]
fn every_console_block_of_the_labs_prints_what_the_book_shows() {
    let dir = root().join("book/src/labs");
    let mut chapters: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("book/src/labs")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    chapters.sort();
    let bless = std::env::var_os("POPEK_BLESS").is_some();
    let mut failures = Vec::new();
    let mut commands = 0;
    for chapter in &chapters {
        let source = std::fs::read_to_string(chapter).unwrap();
        let blocks = console_blocks(&source);
        let mut blessed: Vec<(usize, String)> = Vec::new();
        for s in &blocks {
            commands += 1;
            let actual = run_shown(&s.command);
            let lines: Vec<&str> = actual.lines().collect();
            if !matches(&s.lines, &lines) {
                failures.push(format!(
                    "{}:{}: `$ {}` printed:\n{actual}--- the book shows:\n{}\n",
                    chapter.display(),
                    s.line,
                    s.command,
                    s.lines.join("\n")
                ));
                blessed.push((s.line, actual));
            }
        }
        if bless && !blessed.is_empty() {
            write_blessed(chapter, &source, &blessed);
        }
    }
    assert!(commands >= 20, "the labs show {commands} commands");
    assert!(failures.is_empty() || bless, "{} commands differ:\n{}", failures.len(), failures.join("\n"));
}

/// Rewrites the output under each command at `(line, output)` (1-based command lines).
fn write_blessed(chapter: &Path, source: &str, outputs: &[(usize, String)]) {
    let mut out = Vec::new();
    let mut skipping = false;
    for (i, line) in source.lines().enumerate() {
        if skipping {
            if line.starts_with("$ ") || line.starts_with("```") {
                skipping = false;
            } else {
                continue;
            }
        }
        out.push(line.to_string());
        if let Some((_, actual)) = outputs.iter().find(|(l, _)| *l == i + 1) {
            out.extend(actual.lines().map(str::to_string));
            skipping = true;
        }
    }
    std::fs::write(chapter, out.join("\n") + "\n").unwrap();
}

#[test]
fn console_blocks_parse_and_ellipses_match() {
    let blocks = console_blocks("text\n```console\n$ a\none\n...\n$ b\n```\n```text\n$ c\n```\n");
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].lines, ["one", "..."]);
    assert!(blocks[1].lines.is_empty());
    let shown: Vec<String> = ["one", "...", "four"].map(String::from).to_vec();
    assert!(matches(&shown, &["one", "four"]));
    assert!(matches(&shown, &["one", "two", "three", "four"]));
    assert!(!matches(&shown, &["one", "two"]));
    assert!(!matches(&shown, &["zero", "four"]));
}
