//! Differential test: popek's interpreter against the real host CPU.
//!
//! ```text
//!   forms::table() ─► for each form: N random cases (case.rs, fixed-seed xorshift)
//!        │                 ├─► 32-bit encoding ─► popek TestBox (guest)
//!        │                 └─► 64-bit encoding ─► popek_hostcpu::HostRunner (host CPU)
//!        └─► run.rs: compare GPRs (low 32 bits), EFLAGS minus the SDM's undefined
//!                    flags for the form, and the data window
//! ```
//!
//! The same encodings with 8/16/32-bit operands mean the same thing in 32-bit and
//! 64-bit mode, so the host CPU is the reference. Memory operands sit at the same
//! offset of the guest's `DATA_BASE` window and the host's scratch area; pointer
//! registers (EBX for `[EBX]`, ESI/EDI for string ops) are compared as offsets.
//!
//! Environment:
//! - `POPEK_DIFF_CASES=N`: cases per form (default 1000).
//! - `POPEK_DIFF_ONLY=a,b`: only forms matching one of the comma-separated tokens
//!   (case-insensitive): a group name (`alu`, `shift`, `muldiv`, `bits`, `data`,
//!   `string`), `^prefix` of the form name, or a substring of it; e.g.
//!   `POPEK_DIFF_ONLY=add`, `POPEK_DIFF_ONLY=alu` or `POPEK_DIFF_ONLY="^shl ,^rcl "`.
//! - `POPEK_DIFF_LIST=1`: print every form with its SDM rule.
//!
//! `cargo test -p popek-interp --test differential -- --nocapture` shows the summary
//! on success; a failing run prints it on stderr and panics with the first mismatches.

// The harness builds values of every width from random 64-bit numbers and slices
// them into bytes, words and register lanes on purpose; each cast is that truncation.
#![allow(clippy::cast_possible_truncation)]

#[path = "differential/case.rs"]
mod case;
#[path = "differential/forms.rs"]
mod forms;
#[path = "differential/run.rs"]
mod run;

use std::collections::BTreeSet;
use std::io::Write;

use popek_cpu::iced_x86::{Code, Decoder, DecoderOptions};
use popek_interp::testing::CODE_BASE;

use forms::{Form, Op, Prep, Shape, Undef};
use run::{FormReport, run_form};

/// Default number of cases per form.
const DEFAULT_CASES: usize = 1000;
/// Detailed mismatches shown in a failure message.
const SHOWN_DETAILS: usize = 12;
/// Failing forms listed in a failure message.
const SHOWN_FORMS: usize = 80;

fn cases_per_form() -> usize {
    match std::env::var("POPEK_DIFF_CASES") {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("POPEK_DIFF_CASES={v}: not a number")),
        Err(_) => DEFAULT_CASES,
    }
}

/// The forms selected by `POPEK_DIFF_ONLY` (all of them if it is unset).
fn selected(table: &[Form]) -> (Vec<&Form>, Option<String>) {
    let only = std::env::var("POPEK_DIFF_ONLY").ok().filter(|s| !s.trim().is_empty());
    let forms = match &only {
        None => table.iter().collect(),
        Some(filter) => {
            let wanted: Vec<String> = filter.split(',').filter(|s| !s.is_empty()).map(|s| s.to_lowercase()).collect();
            table.iter().filter(|f| wanted.iter().any(|w| matches(f, w))).collect()
        }
    };
    (forms, only)
}

/// One `POPEK_DIFF_ONLY` token: a group name (`alu`), `^prefix` of the form name, or a substring of it.
fn matches(form: &Form, token: &str) -> bool {
    let name = form.name.to_lowercase();
    match token.strip_prefix('^') {
        Some(prefix) => name.starts_with(prefix),
        None => form.group == token || name.contains(token),
    }
}

#[test]
fn interpreter_matches_host_cpu() {
    let table = forms::table();
    let (forms, only) = selected(&table);
    let cases = cases_per_form();
    assert!(!forms.is_empty(), "POPEK_DIFF_ONLY={only:?} matches no form");
    assert!(cases > 0, "POPEK_DIFF_CASES must be at least 1");
    if std::env::var_os("POPEK_DIFF_LIST").is_some() {
        for f in &forms {
            println!("{:<7} {:<36} {}", f.group, f.name, f.sdm);
        }
    }

    let start = std::time::Instant::now();
    let reports: Vec<FormReport> = forms.iter().map(|f| run_form(f, cases)).collect();

    // No silent skipping: every selected form ran, and without a filter that is the whole table.
    let ran = reports.iter().filter(|r| r.cases > 0).count();
    assert_eq!(ran, forms.len(), "forms run != forms selected");
    if only.is_none() {
        assert_eq!(ran, table.len(), "forms run != table size");
    }
    for (r, f) in reports.iter().zip(&forms) {
        assert!(r.cases == cases || r.fatal.is_some(), "form `{}` ran {} of {cases} cases", f.name, r.cases);
    }

    let total: usize = reports.iter().map(|r| r.cases).sum();
    let mismatches: usize = reports.iter().map(|r| r.mismatches).sum();
    let failed: Vec<&FormReport> = reports.iter().filter(|r| r.failed()).collect();
    let summary = format!(
        "differential: {} forms, {total} cases, {mismatches} mismatches{} ({:.1} s{})",
        reports.len(),
        if failed.is_empty() { String::new() } else { format!(", {} forms FAILED", failed.len()) },
        start.elapsed().as_secs_f64(),
        only.as_ref().map(|o| format!(", POPEK_DIFF_ONLY={o}, table has {} forms", table.len())).unwrap_or_default(),
    );
    // Written straight to the process's stderr: the test harness captures `eprintln!`
    // of passing tests, and the counts belong in every run's log.
    let _ = writeln!(std::io::stderr(), "{summary}");
    if failed.is_empty() {
        return;
    }

    let mut msg = String::new();
    msg.push_str("by group (failed/run):");
    let mut groups: Vec<&str> = forms.iter().map(|f| f.group).collect();
    groups.dedup();
    for g in groups {
        let in_group = || reports.iter().zip(&forms).filter(move |(_, f)| f.group == g);
        let bad = in_group().filter(|(r, _)| r.failed()).count();
        msg.push_str(&format!(" {g} {bad}/{}", in_group().count()));
    }
    msg.push_str("\nfailing forms:\n");
    for r in failed.iter().take(SHOWN_FORMS) {
        match &r.fatal {
            Some(why) => msg.push_str(&format!("  {:<36} stopped after {} case(s): {why}\n", r.name, r.cases)),
            None => msg.push_str(&format!("  {:<36} {} of {} cases differ\n", r.name, r.mismatches, r.cases)),
        }
    }
    if failed.len() > SHOWN_FORMS {
        msg.push_str(&format!("  ... and {} more (narrow the run with POPEK_DIFF_ONLY)\n", failed.len() - SHOWN_FORMS));
    }
    // The first mismatches, at most two per form so that different forms show.
    let details: Vec<&String> = failed.iter().flat_map(|r| r.details.iter().take(2)).take(SHOWN_DETAILS).collect();
    msg.push_str(&format!("\nfirst {} mismatches:\n", details.len()));
    for d in details {
        msg.push_str(d);
        msg.push_str("\n\n");
    }
    panic!("{summary}\n{msg}");
}

/// The table's names are unique, every form has an SDM line, and every form encodes
/// in both modes to the intended instruction.
#[test]
fn form_table_is_well_formed() {
    let table = forms::table();
    let mut names = BTreeSet::new();
    for form in &table {
        assert!(names.insert(form.name.clone()), "duplicate form name `{}`", form.name);
        assert!(form.sdm.starts_with("SDM Vol."), "form `{}` lacks its SDM reference", form.name);
        let mut rng = case::Rng::for_name(&form.name);
        for index in 0..64 {
            let c = case::generate(form, &mut rng, index);
            let what = || format!("form `{}` case {c:?}", form.name);
            let g = case::instruction(form, &c, 32).unwrap_or_else(|e| panic!("{}: {e}", what()));
            let h = case::instruction(form, &c, 64).unwrap_or_else(|e| panic!("{}: {e}", what()));
            let gb = case::encode(&g, 32, CODE_BASE as u64).unwrap_or_else(|e| panic!("{}: {e}", what()));
            let hb = case::encode(&h, 64, 0).unwrap_or_else(|e| panic!("{}: {e}", what()));
            let gd = Decoder::with_ip(32, &gb, CODE_BASE as u64, DecoderOptions::NONE).decode();
            let hd = Decoder::with_ip(64, &hb, 0, DecoderOptions::NONE).decode();
            assert_eq!(gd.len(), gb.len(), "{}: guest bytes {gb:02x?} decode as {gd}", what());
            assert_eq!(hd.len(), hb.len(), "{}: host bytes {hb:02x?} decode as {hd}", what());
            assert!(!hd.is_ip_rel_memory_operand(), "{}: host encoding {hd} is RIP-relative", what());
            // Same operation in both worlds (xchg eax,eax is NOP in both).
            assert_eq!(gd.mnemonic(), hd.mnemonic(), "{}: guest {gd} vs host {hd}", what());
            assert_eq!(gd.op_count(), hd.op_count(), "{}: guest {gd} vs host {hd}", what());
        }
    }
    // Every group of the brief is present.
    for needle in [
        "add r32, r32",
        "adc m8, r8",
        "shl r8, cl",
        "rcl m32, cl",
        "shld r32, r32, cl",
        "imul r16, m16, imm8",
        "div m32",
        "bt m32, r32",
        "bsf r32, r32",
        "bswap r32",
        "xadd m16, r16",
        "cmpxchg m32, r32",
        "cmovne r32, r32",
        "setg m8",
        "movsx r32, m16",
        "lea r32, m",
        "xchg m8, r8",
        "cdq",
        "rep movsb df=1",
        "repne scasw df=0",
        "repe cmpsd df=1",
    ] {
        assert!(table.iter().any(|f| f.name == needle), "form `{needle}` missing");
    }
    println!("form table: {} forms", table.len());
}

/// The harness must report a difference when the two worlds compute different things:
/// here the guest runs ADD and the host SUB.
#[test]
fn harness_reports_a_wrong_result() {
    let form = Form {
        name: "add r32, r32 vs host sub".into(),
        group: "self-test",
        shape: Shape::Ops {
            code: forms::code("Add_rm32_r32"),
            host: forms::code("Sub_rm32_r32"),
            ops: vec![Op::R32, Op::R32],
        },
        width: 4,
        undef: Undef::None,
        sdm: "SDM Vol.2 ADD (self-test)",
        prep: Prep::None,
        df: None,
    };
    let report = run_form(&form, 50);
    assert!(report.fatal.is_none(), "{:?}", report.fatal);
    assert!(report.mismatches > 25, "only {} of 50 cases differ", report.mismatches);
    assert!(report.details[0].contains("DIFF"), "{}", report.details[0]);
}

/// An instruction the interpreter does not implement (`Event::Unsupported`) fails its
/// form instead of being skipped.
#[test]
fn unsupported_instruction_fails_the_form() {
    // Harmless on the host; the first one popek does not implement is used.
    let candidates = [Code::Fnop, Code::Emms, Code::Fincstp, Code::Fdecstp];
    let code = candidates
        .into_iter()
        .find(|&c| {
            let insn = popek_cpu::iced_x86::Instruction::with(c);
            !popek_interp::dispatch::is_supported(&insn)
        })
        .expect("popek implements every candidate: add another unimplemented instruction here");
    let form = Form {
        name: format!("{code:?} (unsupported self-test)"),
        group: "self-test",
        shape: Shape::Ops { code, host: code, ops: Vec::new() },
        width: 0,
        undef: Undef::None,
        sdm: "SDM Vol.2 (self-test)",
        prep: Prep::None,
        df: None,
    };
    let report = run_form(&form, 10);
    assert!(report.failed(), "unsupported instruction did not fail the form");
    let why = report.fatal.as_deref().unwrap_or("");
    assert!(why.contains("Unsupported"), "{why}");
    assert_eq!(report.cases, 1, "the form stops at the first unsupported case");
}
