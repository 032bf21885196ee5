//! `popek lab`: the graders of the lab book (`book/src/labs/`), in the spirit of xv6's
//! `make grade`. Each lab is a list of tests with points; `popek lab check N` runs them
//! on a student's solution, prints one line per test and the score, and succeeds only if
//! every test passes.
//!
//! ```text
//!   solution (answers.txt, a plot, kernel sources)
//!        │
//!        ▼
//!   lab N's tests ──► expected values: computed now, by booting and running popek's own
//!        │            machine (never numbers written into the grader, which could drift
//!        ▼            from the code)
//!   "name: OK (5 pts)" / "name: FAIL (0/5 pts): why"  …  "Score: x/y"
//! ```
//!
//! Most labs hand in `answers.txt`: `key: value` lines (`#` starts a comment). Lab 7 adds
//! a plot, lab 8 is a kernel the grader builds and boots.

mod answers;
mod catalog;
mod gdb;
mod kernel;
mod run;

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

pub use catalog::LABS;

/// One lab of the book.
pub struct Lab {
    /// Its number (`popek lab check N`).
    pub number: u32,
    /// Its title, as the book's chapter has it.
    pub title: &'static str,
    /// The file a solution hands in, looked for inside a solution directory.
    pub hands_in: &'static str,
    /// Other files handed in beside it (in the same directory), for `popek lab list`.
    pub also: &'static str,
    /// Runs the tests on the solution (the path of the handed-in file or directory).
    grade: fn(&Path) -> Result<Vec<Outcome>>,
}

/// One test's result.
pub struct Outcome {
    /// The test's name.
    pub name: String,
    /// What it is worth.
    pub points: u32,
    /// `Err(why)` if it failed.
    pub result: std::result::Result<(), String>,
}

impl Outcome {
    /// A passed or failed test.
    fn new(name: impl Into<String>, points: u32, result: std::result::Result<(), String>) -> Outcome {
        Outcome { name: name.into(), points, result }
    }
}

/// What `popek lab check` found: the report's lines and whether every test passed.
pub struct Report {
    /// The report, one line per test, then `Score: x/y`.
    pub text: String,
    /// True if every test passed.
    pub passed: bool,
}

/// `popek lab list`.
pub fn list() -> String {
    let mut out = String::new();
    for lab in LABS {
        out.push_str(&format!("{:>2}  {:<44} hands in {}{}\n", lab.number, lab.title, lab.hands_in, lab.also));
    }
    out
}

/// The lab numbered `n`, or a one-line error.
pub fn find(n: u32) -> Result<&'static Lab> {
    match LABS.iter().find(|l| l.number == n) {
        Some(lab) => Ok(lab),
        None => bail!("there is no lab {n} (`popek lab list` lists labs 1 to {})", LABS.len()),
    }
}

/// Where the solution is: `--solution` (a file, or a directory holding the lab's file),
/// or `labN` in the current directory.
fn locate(lab: &Lab, solution: Option<&Path>) -> Result<PathBuf> {
    let given = solution.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(format!("lab{}", lab.number)));
    let meta = match std::fs::metadata(&given) {
        Ok(m) => m,
        Err(e) => bail!("solution `{}`: {e} (give --solution PATH)", given.display()),
    };
    // Lab 8 hands in a directory of sources: the directory is the solution.
    if meta.is_dir() && lab.hands_in.ends_with('/') {
        return Ok(given);
    }
    let file = if meta.is_dir() { given.join(lab.hands_in) } else { given };
    match std::fs::metadata(&file) {
        Ok(m) if m.is_file() => Ok(file),
        Ok(_) => bail!("solution `{}` is not a regular file", file.display()),
        Err(e) => bail!("solution `{}`: {e} (lab {} hands in {})", file.display(), lab.number, lab.hands_in),
    }
}

/// `popek lab check N [--solution PATH]`: grades the solution. An error is a bad lab
/// number or a missing solution (exit status 2); failed tests are in the report.
pub fn check(n: u32, solution: Option<&Path>) -> Result<Report> {
    let lab = find(n)?;
    let path = locate(lab, solution)?;
    let outcomes = (lab.grade)(&path)?;
    let mut text = format!("lab {}: {} ({})\n", lab.number, lab.title, path.display());
    let (mut score, mut total) = (0, 0);
    for o in &outcomes {
        total += o.points;
        match &o.result {
            Ok(()) => {
                score += o.points;
                text.push_str(&format!("{}: OK ({} pts)\n", o.name, o.points));
            }
            Err(why) => text.push_str(&format!("{}: FAIL (0/{} pts): {why}\n", o.name, o.points)),
        }
    }
    text.push_str(&format!("Score: {score}/{total}\n"));
    Ok(Report { text, passed: score == total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labs_are_numbered_in_order_and_found_by_number() {
        for (i, lab) in LABS.iter().enumerate() {
            assert_eq!(lab.number as usize, i + 1, "{}", lab.title);
            assert_eq!(find(lab.number).map(|l| l.title).ok(), Some(lab.title));
        }
        assert!(LABS.len() >= 8);
        let err = find(0).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(err, format!("there is no lab 0 (`popek lab list` lists labs 1 to {})", LABS.len()));
    }
}
