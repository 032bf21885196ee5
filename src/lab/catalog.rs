//! The labs: each one's questions and how popek computes their answers. The chapters are
//! `book/src/labs/labN-*.md`; the reference solutions `book/labs/solutions/labN/`.

use super::answers::{self, Answers, Expected, Question};
use super::run::{Spec, mnemonic};
use super::{Lab, Outcome, gdb, kernel};
use anyhow::{Context, Result, anyhow, bail};
use popek::cpu::state::gpr::ESP;
use popek::jit::Treatment;
use popek::machine::debug::{self, DebugStop};
use popek::machine::{Engine, EngineKind};
use std::path::Path;

/// Every lab, in the book's order.
pub static LABS: &[Lab] = &[
    Lab { number: 1, title: "The machine and its guests", hands_in: "answers.txt", also: "", grade: lab1 },
    Lab { number: 2, title: "Sensitive is not privileged", hands_in: "answers.txt", also: "", grade: lab2 },
    Lab { number: 3, title: "Anatomy of a translated block", hands_in: "answers.txt", also: "", grade: lab3 },
    Lab { number: 4, title: "The soft-MMU and page faults", hands_in: "answers.txt", also: "", grade: lab4 },
    Lab { number: 5, title: "Interrupts and virtual time", hands_in: "answers.txt", also: "", grade: lab5 },
    Lab { number: 6, title: "Self-modifying code", hands_in: "answers.txt", also: "", grade: lab6 },
    Lab {
        number: 7,
        title: "Translation against interpretation, measured",
        hands_in: "answers.txt",
        also: " + lab7.svg",
        grade: lab7,
    },
    Lab {
        number: 8,
        title: "Writing a guest kernel",
        hands_in: "DIR/",
        also: " with *.c, *.S and link.ld",
        grade: kernel::grade,
    },
    Lab { number: 9, title: "Debugging a kernel", hands_in: "answers.txt", also: " + lab9.gdb", grade: lab9 },
    Lab {
        number: 10,
        title: "Paravirtualization against translation",
        hands_in: "answers.txt",
        also: "",
        grade: lab10,
    },
];

fn q(key: &'static str, points: u32, expected: Expected) -> Question {
    Question { key, points, expected }
}

fn number(key: &'static str, points: u32, n: u64) -> Question {
    q(key, points, Expected::Number(n))
}

/// Grades `answers.txt` against questions computed by `questions`.
fn with_answers(path: &Path, questions: impl FnOnce() -> Result<Vec<Question>>) -> Result<Vec<Outcome>> {
    let answers = Answers::read(path)?;
    let questions = questions().context("computing the expected answers")?;
    Ok(answers::grade(&answers, questions))
}

/// The translator's state after a run.
fn jit(engine: &Engine) -> Result<&popek::jit::Jit> {
    match engine {
        Engine::Jit(j) => Ok(j),
        _ => bail!("the run did not use the translator"),
    }
}

/// Lab 1: what the built-in guests are and what a run reports.
fn lab1(path: &Path) -> Result<Vec<Outcome>> {
    with_answers(path, || {
        let hello = Spec::new("hello").mem(256 << 20).run()?;
        let compute = Spec::new("compute").engine(EngineKind::Interp).run()?;
        Ok(vec![
            number("guests", 5, popek::guests::GUESTS.len() as u64),
            number("hello_status", 5, hello.status()),
            number("mem_upper_256m", 5, hello.number_after("mem_upper:")?),
            number("compute_insns_interp", 5, compute.machine.stats.retired),
        ])
    })
}

/// Lab 2: `sensitive` under the trap-and-emulate engine.
fn lab2(path: &Path) -> Result<Vec<Outcome>> {
    with_answers(path, || {
        let ran = Spec::new("sensitive").engine(EngineKind::Trap).run()?;
        let Engine::Trap(e) = &ran.machine.engine else { bail!("the run did not use the trap engine") };
        let t = &e.trap_stats;
        let silent = t.silent().iter().map(|(m, _)| mnemonic(*m)).collect();
        let most = t.traps().first().map(|(m, _)| mnemonic(*m)).ok_or_else(|| anyhow!("no traps"))?;
        Ok(vec![
            number("wrong_views", 5, ran.number_after("FAIL:")?),
            number("trap_status", 5, ran.status()),
            number("traps", 5, t.total_traps()),
            number("silent", 5, t.total_silent()),
            q("silent_instructions", 10, Expected::Set(silent)),
            q("most_trapped", 5, Expected::Word(most)),
        ])
    })
}

/// Lab 3: the most executed block of `hello` that calls out to the VMM.
fn lab3(path: &Path) -> Result<Vec<Outcome>> {
    with_answers(path, || {
        let spec = Spec::new("hello");
        let (mut m, _) = spec.boot()?;
        if let Engine::Jit(j) = &mut m.engine {
            j.set_profiling(true);
        }
        m.run(&spec.run_config());
        let j = jit(&m.engine)?;
        let treatment = |d: &popek::cpu::block::DecodedInsn<popek::jit::JitInsn>| d.exec.treatment;
        let block = j
            .hottest_blocks(usize::MAX)
            .into_iter()
            .find(|b| b.insns.iter().any(|d| treatment(d) == Treatment::Callout))
            .ok_or_else(|| anyhow!("no block with a callout"))?;
        let count = |t: Treatment| block.insns.iter().filter(|d| treatment(d) == t).count() as u64;
        let callout = block.insns.iter().find(|d| treatment(d) == Treatment::Callout).map(|d| d.insn.mnemonic());
        Ok(vec![
            number("callout_block", 5, u64::from(block.eip)),
            number("block_insns", 5, block.insns.len() as u64),
            number("ident", 5, count(Treatment::Ident)),
            number("rewritten", 5, count(Treatment::Rewritten)),
            q("callout_insn", 5, Expected::Word(callout.map(mnemonic).unwrap_or_default())),
        ])
    })
}

/// Every interrupt and exception delivered in a run of `spec`, in order, and CR2 after
/// the first page fault.
fn deliveries(spec: &Spec) -> Result<(Vec<popek::cpu::interrupt::Delivery>, Option<u32>)> {
    let mut d = spec.debugger()?;
    let (mut all, mut cr2) = (Vec::new(), None);
    loop {
        let stop = d.step_block();
        for e in d.take_deliveries() {
            if e.vector == 14 && cr2.is_none() {
                cr2 = Some(d.cpu().state.cr2);
            }
            all.push(e);
        }
        match stop {
            DebugStop::Machine(_) => break,
            DebugStop::Interrupted => bail!("interrupted"),
            _ => {}
        }
    }
    Ok((all, cr2))
}

/// Lab 4: page faults and protection faults, as the guest sees them.
fn lab4(path: &Path) -> Result<Vec<Outcome>> {
    use popek::cpu::interrupt::Source;
    with_answers(path, || {
        let (user, _) = deliveries(&Spec::new("usermode"))?;
        let exceptions = |v: u8| user.iter().filter(move |e| e.source == Source::Exception && e.vector == v);
        let errors = exceptions(14).filter_map(|e| e.error).map(|c| format!("{c:#x}")).collect();
        let (_, cr2) = deliveries(&Spec::new("paging"))?;
        Ok(vec![
            number("user_page_faults", 5, exceptions(14).count() as u64),
            q("user_pf_errors", 5, Expected::Numbers(errors)),
            number("user_gp_faults", 5, exceptions(13).count() as u64),
            number("paging_first_cr2", 10, u64::from(cr2.ok_or_else(|| anyhow!("paging took no #PF"))?)),
        ])
    })
}

/// Lab 5: the PIT's ticks in virtual time, at a slower virtual CPU.
fn lab5(path: &Path) -> Result<Vec<Outcome>> {
    with_answers(path, || {
        let slow = Spec::new("interrupts").mips(10).run()?;
        let apic = Spec::new("apic_timer").run()?;
        Ok(vec![
            number("retired_mips10", 5, slow.machine.stats.retired),
            number("interrupts_mips10", 5, slow.machine.stats.interrupts),
            number("halts_mips10", 5, slow.machine.stats.halts),
            number("virtual_us_mips10", 5, (slow.machine.stats.virtual_ns + 500) / 1000),
            number("apic_timer_interrupts", 5, apic.machine.stats.interrupts),
        ])
    })
}

/// Lab 6: what stores into code cost the translator.
fn lab6(path: &Path) -> Result<Vec<Outcome>> {
    with_answers(path, || {
        let smc = Spec::new("smc").run()?;
        let j = jit(&smc.machine.engine)?;
        let patch = Spec::new("nanobench").cmdline("only=patch n=100").run()?;
        let p = jit(&patch.machine.engine)?;
        Ok(vec![
            number("jit_stores_into_code", 5, smc.machine.cpu.smc_stats.code),
            number("jit_translations_dropped", 5, j.stats.invalidated),
            number("jit_chains_unlinked", 5, j.stats.unlinked),
            number("patch_translations_dropped", 5, p.stats.invalidated),
        ])
    })
}

/// Lab 7: a measured speed-up, a plot, and the instruction count both engines share.
fn lab7(path: &Path) -> Result<Vec<Outcome>> {
    let mut out = with_answers(path, || {
        let compute = Spec::new("compute").cmdline("iters=3").run()?;
        Ok(vec![
            number("compute_insns_iters3", 5, compute.machine.stats.retired),
            q("speedup", 5, Expected::Above(1.0, "the translator's speed-up over the interpreter")),
        ])
    })?;
    let plot = path.with_file_name("lab7.svg");
    let result = match std::fs::read(&plot) {
        Err(e) => Err(format!("cannot read {}: {e}", plot.display())),
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            if !text.contains("<svg") {
                Err(format!("{} is not an SVG file", plot.display()))
            } else if !(text.contains("jit") && text.contains("interp")) {
                Err(format!("{} does not show both engines (popek bench --plot)", plot.display()))
            } else {
                Ok(())
            }
        }
    };
    out.push(Outcome::new("plot", 5, result));
    Ok(out)
}

/// Lab 9: where `hello`'s kmain starts, as a debugger sees it.
fn lab9(path: &Path) -> Result<Vec<Outcome>> {
    let mut expected = (0, 0);
    let mut out = with_answers(path, || {
        let spec = Spec::new("hello");
        let symbols = popek::machine::symbols::Symbols::from_elf(spec.image()?);
        let kmain = symbols.lookup("kmain").ok_or_else(|| anyhow!("hello has no kmain"))?;
        let mut d = spec.debugger()?;
        match d.run_to(kmain) {
            DebugStop::Machine(s) => bail!("hello stopped before kmain: {s:?}"),
            _ if d.cpu().state.eip != kmain => bail!("hello did not reach kmain"),
            _ => {}
        }
        let esp = d.cpu().state.gpr[ESP];
        let bytes: Vec<u8> = (0..4).filter_map(|i| debug::peek(d.cpu(), esp.wrapping_add(i))).collect();
        let ret = u32::from_le_bytes(bytes.try_into().map_err(|_| anyhow!("the stack is not mapped"))?);
        let caller = symbols.containing(ret).map(|s| s.name.clone()).unwrap_or_default();
        expected = (esp, ret);
        Ok(vec![
            number("kmain_esp", 5, u64::from(esp)),
            number("kmain_return", 5, u64::from(ret)),
            q("kmain_caller", 5, Expected::Word(caller)),
            number("insns_to_kmain", 5, d.position()),
        ])
    })?;
    // The script shows, in gdb's words, where kmain starts: ESP and the word on top of it.
    let script = path.with_file_name("lab9.gdb");
    let result = if !script.is_file() {
        Err(format!("no {}", script.display()))
    } else {
        gdb::run_script(&script).and_then(|text| {
            let (esp, ret) = expected;
            let shows = |n: u32| text.contains(&format!("{n:#x}")) || text.contains(&format!("{n:#010x}"));
            if !text.contains("kmain") {
                Err("gdb's output does not show a stop in kmain".to_string())
            } else if !shows(esp) {
                Err("gdb's output does not show kmain's ESP".to_string())
            } else if !shows(ret) {
                Err("gdb's output does not show the return address on top of the stack".to_string())
            } else {
                Ok(())
            }
        })
    };
    out.push(Outcome::new("gdb script (lab9.gdb)", 10, result));
    Ok(out)
}

/// Lab 10: `nanobench_pv`'s CR3 loop, paravirtualized and native, under the classic VMM.
fn lab10(path: &Path) -> Result<Vec<Outcome>> {
    with_answers(path, || {
        let cmdline = "pv=1 only=cr3 n=1000";
        let traps = |spec: Spec, m: &str| -> Result<u64> {
            let ran = spec.engine(EngineKind::Trap).run()?;
            let Engine::Trap(e) = &ran.machine.engine else { bail!("the run did not use the trap engine") };
            Ok(e.trap_stats.traps().iter().filter(|(x, _)| mnemonic(*x) == m).map(|(_, n)| n).sum())
        };
        let pv = Spec::new("nanobench_pv").cmdline(cmdline);
        let jit_run = pv.clone().run()?;
        let vmcalls = jit(&jit_run.machine.engine)?
            .callouts_by_instruction()
            .iter()
            .filter(|(m, _)| mnemonic(*m) == "vmcall")
            .map(|(_, n)| n)
            .sum();
        Ok(vec![
            number("pv_vmcall_traps", 5, traps(pv.clone(), "vmcall")?),
            number("native_mov_traps", 5, traps(pv.clone().paravirt_off(), "mov")?),
            number("pv_mov_traps", 5, traps(pv.clone(), "mov")?),
            number("jit_vmcall_callouts", 5, vmcalls),
        ])
    })
}
