//! `answers.txt`: `key: value` lines, and how an answer is compared with what popek
//! computes.

use super::Outcome;
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The answers of a solution, by key (lower case).
pub struct Answers(BTreeMap<String, String>);

impl Answers {
    /// Reads `key: value` lines; blank lines and `#` comments are skipped. A line that is
    /// neither fails the test of no key: it is reported as unreadable when a key is missing.
    pub fn read(path: &Path) -> Result<Answers> {
        // Answers files are a few lines: a larger one is not an answers file.
        let meta = std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        anyhow::ensure!(meta.len() <= 1 << 20, "`{}` is larger than an answers file can be (1 MiB)", path.display());
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        Ok(Answers::parse(&text))
    }

    /// Parses the text of an answers file.
    pub fn parse(text: &str) -> Answers {
        let mut map = BTreeMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if let Some((key, value)) = line.split_once(':') {
                map.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
            }
        }
        Answers(map)
    }

    /// The answer to `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// What the answer to a question must be.
pub enum Expected {
    /// A whole number (the answer may be decimal or 0x-hex, with `_` or `,` separators).
    Number(u64),
    /// A word, compared without regard to case.
    Word(String),
    /// A set of words, in any order, separated by commas or spaces.
    Set(BTreeSet<String>),
    /// A set of whole numbers, in any order (each as [`Expected::Number`] takes it).
    Numbers(BTreeSet<String>),
    /// A measured number that must exceed this bound (a measurement varies from machine
    /// to machine; what is checked is that it shows what the lab is about).
    Above(f64, &'static str),
}

/// A question: the key in `answers.txt`, its points, and the expected answer.
pub struct Question {
    /// The key.
    pub key: &'static str,
    /// Its points.
    pub points: u32,
    /// What popek computes for it.
    pub expected: Expected,
}

/// A number as a student may write it: `1234`, `1,234`, `1_234`, `0x4d2`.
pub fn parse_number(text: &str) -> Option<u64> {
    let t: String = text.chars().filter(|c| !matches!(c, '_' | ',')).collect();
    let t = t.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// A set of words: split at commas and white space, lower case.
pub fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| c == ',' || c.is_whitespace()).filter(|w| !w.is_empty()).map(str::to_ascii_lowercase).collect()
}

/// Grades every question against the answers. A wrong answer is reported without the
/// expected value: the grader says what is wrong, the lab says how to find it.
pub fn grade(answers: &Answers, questions: Vec<Question>) -> Vec<Outcome> {
    questions
        .into_iter()
        .map(|q| {
            let result = match answers.get(q.key) {
                None => Err(format!("no `{}:` line in the answers", q.key)),
                Some(given) => compare(given, &q.expected),
            };
            Outcome::new(q.key, q.points, result)
        })
        .collect()
}

fn compare(given: &str, expected: &Expected) -> std::result::Result<(), String> {
    match expected {
        Expected::Number(want) => match parse_number(given) {
            None => Err(format!("`{given}` is not a number")),
            Some(n) if n == *want => Ok(()),
            Some(_) => Err(format!("answered {given}: not what popek computes")),
        },
        Expected::Word(want) if given.eq_ignore_ascii_case(want) => Ok(()),
        Expected::Word(_) => Err(format!("answered `{given}`: not what popek computes")),
        Expected::Set(want) => {
            let got = words(given);
            let missing = want.difference(&got).count();
            let extra: Vec<&String> = got.difference(want).collect();
            match (missing, extra.is_empty()) {
                (0, true) => Ok(()),
                (0, false) => Err(format!("{} not in the set: {}", extra.len(), join(&extra))),
                (m, true) => Err(format!("{m} missing from the set")),
                (m, false) => Err(format!("{m} missing from the set, and not in it: {}", join(&extra))),
            }
        }
        Expected::Numbers(want) => {
            let want: BTreeSet<u64> = want.iter().filter_map(|w| parse_number(w)).collect();
            let mut got = BTreeSet::new();
            for w in words(given) {
                got.insert(parse_number(&w).ok_or_else(|| format!("`{w}` is not a number"))?);
            }
            match (want.difference(&got).count(), got.difference(&want).count()) {
                (0, 0) => Ok(()),
                (missing, extra) => Err(format!("{missing} missing from the set, {extra} not in it")),
            }
        }
        Expected::Above(bound, what) => match given.trim().trim_end_matches(['x', '×']).parse::<f64>() {
            Ok(x) if x.is_finite() && x > *bound => Ok(()),
            Ok(_) => Err(format!("answered {given}: {what} should be above {bound}")),
            Err(_) => Err(format!("`{given}` is not a number")),
        },
    }
}

fn join(words: &[&String]) -> String {
    words.iter().map(|w| w.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_students_write_them() {
        assert_eq!(parse_number("1,234"), Some(1234));
        assert_eq!(parse_number("0x4D2"), Some(1234));
        assert_eq!(parse_number(" 1_234 "), Some(1234));
        assert_eq!(parse_number("twelve"), None);
    }

    #[test]
    fn answers_and_comparisons() {
        let a = Answers::parse("# lab\nviews: 12  # counted\nSet: b, a c\nempty:\nspeedup: 14.5x\n");
        assert_eq!(a.get("views"), Some("12"));
        assert_eq!(a.get("empty"), None);
        let q = |key, expected| Question { key, points: 5, expected };
        let out = grade(
            &a,
            vec![
                q("views", Expected::Number(12)),
                q("set", Expected::Set(words("a,b,c"))),
                q("speedup", Expected::Above(1.0, "the speed-up")),
                q("views", Expected::Number(13)),
                q("set", Expected::Set(words("a,b"))),
                q("missing", Expected::Word("x".into())),
            ],
        );
        let ok: Vec<bool> = out.iter().map(|o| o.result.is_ok()).collect();
        assert_eq!(ok, [true, true, true, false, false, false]);
        assert_eq!(out[4].result, Err("1 not in the set: c".into()));
        assert_eq!(out[5].result, Err("no `missing:` line in the answers".into()));
    }
}
