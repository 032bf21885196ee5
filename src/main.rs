//! The `popek` command line.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use popek::cpu::iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
use popek::cpu::state::gpr::{EAX, EDX};
use popek::demo;
use popek::interp::dispatch;
use popek::interp::testing::TestBox;
use std::time::Instant;

/// popek: an educational x86 full-virtualization emulator built on binary translation.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the built-in demo: a counting loop on a bare CPU under the interpreter,
    /// showing how each instruction is classified and how fast it runs.
    Demo {
        /// Loop iterations (4 guest instructions each).
        #[arg(long, default_value_t = 5_000_000)]
        iterations: u32,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Demo { iterations: 5_000_000 }) {
        Command::Demo { iterations } => run_demo(iterations),
    }
}

fn run_demo(iterations: u32) -> Result<()> {
    let code = demo::counting_loop(iterations).context("assembling the demo")?;
    println!("popek demo: a counting loop at {:#x}, {} bytes of 32-bit code", demo::CODE_BASE, code.len());
    println!();
    println!("  {:<10} {:<22} {:<22} handler group", "eip", "bytes", "instruction");
    let mut decoder = Decoder::with_ip(32, &code, demo::CODE_BASE as u64, DecoderOptions::NONE);
    let mut fmt = IntelFormatter::new();
    let mut start = 0usize;
    for insn in &mut decoder {
        let mut text = String::new();
        fmt.format(&insn, &mut text);
        let bytes: Vec<String> = code[start..start + insn.len()].iter().map(|b| format!("{b:02x}")).collect();
        start += insn.len();
        let (group, _) = dispatch::classify(&insn);
        println!("  {:#010x} {:<22} {:<22} {group}", insn.ip(), bytes.join(" "), text);
    }
    let mut t = TestBox::new(&code);
    let start = Instant::now();
    let retired = t.run(usize::MAX).map_err(|e| anyhow::anyhow!("guest stopped: {e:?}"))?;
    let secs = start.elapsed().as_secs_f64();
    let (eax, edx) = (t.cpu.state.gpr[EAX], t.cpu.state.gpr[EDX]);
    let expected = demo::counting_loop_expected(iterations);
    println!();
    println!(
        "interpreter: {retired} instructions in {} blocks, {:.3} s, {:.1} MIPS",
        t.interp.stats.blocks,
        secs,
        retired as f64 / secs / 1e6
    );
    println!(
        "result: eax={eax:#010x} edx={edx:#010x} (expected {:#010x} {:#010x}: {})",
        expected.0,
        expected.1,
        if (eax, edx) == expected { "ok" } else { "MISMATCH" }
    );
    anyhow::ensure!((eax, edx) == expected, "demo computed a wrong result");
    Ok(())
}
