//! Running guests for the graders: a machine booted and run to its end, as `popek run`
//! would, with its output kept.

use anyhow::{Context, Result, anyhow};
use popek::devices::clock::InstructionClock;
use popek::devices::sink::SharedBuffer;
use popek::devices::storage::BlockStorage;
use popek::machine::debug::Debugger;
use popek::machine::{EngineKind, Machine, MachineConfig, RunConfig, StopReason};
use std::time::Duration;

/// How to run a guest: `popek run`'s options that the labs use.
#[derive(Clone)]
pub struct Spec {
    /// A built-in guest's name.
    pub guest: &'static str,
    /// The command line (`None`: the guest's own).
    pub cmdline: Option<String>,
    /// The engine.
    pub engine: EngineKind,
    /// Guest RAM in bytes.
    pub mem: u64,
    /// `--mips`.
    pub mips: u64,
    /// `--paravirt`.
    pub paravirt: bool,
}

impl Spec {
    /// `popek run GUEST` with its defaults: the translator, 128 MiB, 1000 MIPS.
    pub fn new(guest: &'static str) -> Spec {
        Spec { guest, cmdline: None, engine: EngineKind::Jit, mem: 128 << 20, mips: 1000, paravirt: true }
    }

    /// With `--engine`.
    pub fn engine(mut self, engine: EngineKind) -> Spec {
        self.engine = engine;
        self
    }

    /// With `--cmdline`.
    pub fn cmdline(mut self, cmdline: &str) -> Spec {
        self.cmdline = Some(cmdline.to_string());
        self
    }

    /// With `--mem`.
    pub fn mem(mut self, bytes: u64) -> Spec {
        self.mem = bytes;
        self
    }

    /// With `--mips`.
    pub fn mips(mut self, mips: u64) -> Spec {
        self.mips = mips;
        self
    }

    /// With `--paravirt off`.
    pub fn paravirt_off(mut self) -> Spec {
        self.paravirt = false;
        self
    }

    /// The guest's ELF image.
    pub fn image(&self) -> Result<&'static [u8]> {
        Ok(guest(self.guest)?.elf)
    }

    /// The machine's configuration, its COM1 output going to `out`.
    fn config(&self, g: &popek::guests::Guest, out: &SharedBuffer) -> MachineConfig {
        let disks: [Option<Box<dyn BlockStorage>>; 2] =
            [g.disk.map(|d| Box::new(popek::machine::disk::MemoryDisk::new(d())) as Box<dyn BlockStorage>), None];
        MachineConfig {
            ram_size: self.mem,
            cmdline: self.cmdline.clone().unwrap_or_else(|| g.cmdline.to_string()),
            serial: Box::new(out.clone()),
            engine: self.engine,
            disks,
            paravirt: self.paravirt,
            ..MachineConfig::default()
        }
    }

    /// The booted machine, not run yet, and its output buffer.
    pub fn boot(&self) -> Result<(Machine, SharedBuffer)> {
        let g = guest(self.guest)?;
        let out = SharedBuffer::new();
        let m = Machine::boot(self.config(g, &out), g.elf).with_context(|| format!("booting `{}`", self.guest))?;
        Ok((m, out))
    }

    /// The guest under the debugger core (on the interpreter, as `popek debug` runs it).
    pub fn debugger(&self) -> Result<Debugger> {
        let g = guest(self.guest)?;
        let spec = self.clone().engine(EngineKind::Interp);
        let boot = Box::new(move || Machine::boot(spec.config(g, &SharedBuffer::new()), g.elf));
        Debugger::new(boot, self.run_config()).with_context(|| format!("booting `{}`", self.guest))
    }

    /// The run configuration: `--mips`, and a generous wall-clock limit.
    pub fn run_config(&self) -> RunConfig {
        RunConfig {
            timeout: Some(Duration::from_secs(300)),
            clock: InstructionClock { insns_per_sec: self.mips * 1_000_000 },
            ..RunConfig::default()
        }
    }

    /// Boots and runs the guest to its end.
    pub fn run(&self) -> Result<Ran> {
        let (mut machine, out) = self.boot()?;
        let stop = machine.run(&self.run_config());
        machine.flush_output();
        if matches!(stop, StopReason::Timeout) {
            return Err(anyhow!("`{}` did not finish", self.guest));
        }
        Ok(Ran { stop, output: out.text(), machine })
    }
}

/// A finished run.
pub struct Ran {
    /// How it stopped.
    pub stop: StopReason,
    /// What the guest wrote to COM1.
    pub output: String,
    /// The machine, for its statistics.
    pub machine: Machine,
}

impl Ran {
    /// The process exit status `popek run` gives this stop.
    pub fn status(&self) -> u64 {
        match self.stop {
            StopReason::Exit(v) => u64::try_from(v).unwrap_or_default(),
            StopReason::TripleFault(_) => 4,
            StopReason::Unsupported(_) => 6,
            StopReason::InstructionLimit | StopReason::Timeout => 8,
            _ => 0,
        }
    }

    /// The number after `prefix` on the first output line that starts with it.
    pub fn number_after(&self, prefix: &str) -> Result<u64> {
        number_after(&self.output, prefix).ok_or_else(|| anyhow!("no `{prefix}` line in the guest's output"))
    }
}

/// The number (decimal) right after `prefix` on the first line of `text` that starts with it.
pub fn number_after(text: &str, prefix: &str) -> Option<u64> {
    let line = text.lines().find_map(|l| l.strip_prefix(prefix))?;
    let digits: String = line.trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The built-in guest `name`.
pub fn guest(name: &str) -> Result<&'static popek::guests::Guest> {
    popek::guests::find(name).ok_or_else(|| anyhow!("no built-in guest `{name}`"))
}

/// `Mnemonic` as popek prints it (`pushfd`, `in`).
pub fn mnemonic(m: popek::cpu::iced_x86::Mnemonic) -> String {
    format!("{m:?}").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_after_a_prefix() {
        let text = "mem_lower: 639 KiB\nmem_upper: 129920 KiB\nFAIL: 12 of the views\n";
        assert_eq!(number_after(text, "mem_upper:"), Some(129920));
        assert_eq!(number_after(text, "FAIL:"), Some(12));
        assert_eq!(number_after(text, "cmdline:"), None);
    }
}
