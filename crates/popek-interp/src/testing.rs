//! A tiny bare machine for instruction tests: RAM, a CPU in the Multiboot state,
//! code at [`CODE_BASE`], a stack below [`STACK_TOP`], and a [`NullBus`].

use crate::Interpreter;
use popek_cpu::ExecResult;
use popek_cpu::block::DECODER_OPTIONS;
use popek_cpu::exception::Event;
use popek_cpu::iced_x86::Decoder;
use popek_cpu::state::gpr::ESP;
use popek_cpu::{Cpu, GuestMemory, NullBus, PhysAddr};

/// Where test code is loaded.
pub const CODE_BASE: u32 = 0x1000;
/// Initial ESP.
pub const STACK_TOP: u32 = 0x9000;
/// Scratch data area tests may use.
pub const DATA_BASE: u32 = 0x10000;
/// GDT installed by [`TestBox::install_exception_handlers`].
pub const GDT_BASE: u32 = 0x600;
/// IDT installed by [`TestBox::install_exception_handlers`].
pub const IDT_BASE: u32 = 0x800;
/// Exception handlers: vector `v` halts at `HANDLER_BASE + 8 * v`.
pub const HANDLER_BASE: u32 = 0xa000;
/// RAM size of the test machine.
pub const RAM_SIZE: u64 = 1 << 20;

/// A small deterministic random number generator (xorshift64) for randomized tests:
/// the same seed gives the same cases in every run.
#[derive(Clone, Debug)]
pub struct XorShift(pub u64);

impl XorShift {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A random element of `xs` (which must not be empty).
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next_u64() % xs.len() as u64) as usize]
    }
}

/// A CPU + bus + interpreter with some code loaded.
pub struct TestBox {
    /// The CPU.
    pub cpu: Cpu,
    /// The bus (records port writes).
    pub bus: NullBus,
    /// The interpreter.
    pub interp: Interpreter,
    /// End of the loaded code: running stops when EIP gets there.
    pub code_end: u32,
}

impl TestBox {
    /// Loads `code` followed by a HLT at [`CODE_BASE`] and points EIP at it.
    pub fn new(code: &[u8]) -> Self {
        let mem = GuestMemory::new(RAM_SIZE).expect("1 MiB of RAM");
        let mut cpu = Cpu::new(mem);
        assert!(cpu.mem.load(PhysAddr(CODE_BASE), code), "test code fits");
        assert!(cpu.mem.load(PhysAddr(CODE_BASE + code.len() as u32), &[0xf4]), "test code fits");
        cpu.state.eip = CODE_BASE;
        cpu.state.gpr[ESP] = STACK_TOP;
        TestBox { cpu, bus: NullBus::default(), interp: Interpreter::new(), code_end: CODE_BASE + code.len() as u32 }
    }

    /// Runs until the CPU halts or EIP reaches the end of the code, at most
    /// `max_blocks` blocks. Returns the number of instructions retired
    /// (including the final HLT).
    pub fn run(&mut self, max_blocks: usize) -> Result<u64, Event> {
        let mut n = 0;
        for _ in 0..max_blocks {
            if self.cpu.state.eip == self.code_end || self.cpu.state.halted || self.cpu.state.shutdown {
                break;
            }
            n += self.interp.run_block(&mut self.cpu, &mut self.bus)? as u64;
        }
        Ok(n)
    }

    /// Installs a flat GDT (null, ring-0 code 0x08, ring-0 data 0x10) and an IDT whose 256
    /// interrupt gates point at one-byte HLT handlers, vector `v` at
    /// [`HANDLER_BASE`]` + 8 * v`. After an exception the CPU halts in its handler:
    /// [`TestBox::halted_vector`] tells which, and the frame is on the stack.
    pub fn install_exception_handlers(&mut self) {
        let gdt: [u64; 3] = [0, 0x00cf_9a00_0000_ffff, 0x00cf_9200_0000_ffff];
        for (i, d) in gdt.iter().enumerate() {
            self.poke(GDT_BASE + 8 * i as u32, &d.to_le_bytes());
        }
        for v in 0..256u32 {
            let handler = HANDLER_BASE + 8 * v;
            let lo = (handler & 0xffff) | 0x08 << 16;
            let hi = (handler & 0xffff_0000) | 0x8e00; // present, DPL 0, 32-bit interrupt gate
            self.poke(IDT_BASE + 8 * v, &lo.to_le_bytes());
            self.poke(IDT_BASE + 8 * v + 4, &hi.to_le_bytes());
            self.poke(handler, &[0xf4]);
        }
        self.cpu.state.gdtr = popek_cpu::state::TableReg { base: GDT_BASE, limit: 8 * 3 - 1 };
        self.cpu.state.idtr = popek_cpu::state::TableReg { base: IDT_BASE, limit: 8 * 256 - 1 };
    }

    /// The vector whose handler (installed by [`TestBox::install_exception_handlers`]) the CPU halted in.
    pub fn halted_vector(&self) -> Option<u8> {
        let eip = self.cpu.state.eip.checked_sub(HANDLER_BASE + 1)?;
        (self.cpu.state.halted && eip.is_multiple_of(8) && eip / 8 < 256).then_some((eip / 8) as u8)
    }

    /// The dword `index` slots above ESP (0 = top of stack).
    pub fn stack(&self, index: u32) -> u32 {
        self.peek32(self.cpu.state.gpr[ESP] + 4 * index)
    }

    /// Decodes the first instruction of `bytes` as if at [`CODE_BASE`] and runs its handler
    /// directly (no block, no exception delivery): the handler's own result.
    pub fn exec_one(&mut self, bytes: &[u8]) -> ExecResult {
        let insn = Decoder::with_ip(32, bytes, CODE_BASE as u64, DECODER_OPTIONS).decode();
        self.cpu.state.eip = CODE_BASE + insn.len() as u32;
        (crate::dispatch::handler_for(&insn))(&mut self.cpu, &mut self.bus, &insn)
    }

    /// Writes `bytes` to physical memory.
    pub fn poke(&mut self, addr: u32, bytes: &[u8]) {
        assert!(self.cpu.mem.load(PhysAddr(addr), bytes));
    }

    /// Reads a little-endian dword of physical memory.
    pub fn peek32(&self, addr: u32) -> u32 {
        u32::from_le_bytes(self.cpu.mem.read_ram::<4>(addr as usize).expect("in RAM"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use popek_cpu::state::flags::{CF, ZF};
    use popek_cpu::state::gpr::*;

    #[test]
    fn add_and_flags() {
        // add eax, ebx ; sub ecx, 1 ; adc dl, 0xff ; not esi
        let mut t = TestBox::new(&[0x01, 0xd8, 0x83, 0xe9, 0x01, 0x80, 0xd2, 0xff, 0xf7, 0xd6]);
        t.cpu.state.gpr[EAX] = 0xffff_ffff;
        t.cpu.state.gpr[EBX] = 1;
        t.cpu.state.gpr[ECX] = 1;
        t.cpu.state.gpr[EDX] = 0x1234_5601;
        assert_eq!(t.run(10).unwrap(), 5);
        assert_eq!(t.cpu.state.gpr[EAX], 0);
        assert_eq!(t.cpu.state.gpr[ECX], 0);
        assert_eq!(t.cpu.state.gpr[EDX], 0x1234_5600);
        assert_eq!(t.cpu.state.gpr[ESI], 0xffff_ffff);
        assert_eq!(t.cpu.state.eflags & (CF | ZF), CF | ZF);
    }

    #[test]
    fn exceptions_reach_the_installed_handlers() {
        // mov eax, 0 ; div eax → #DE, a fault: the frame holds the DIV's EIP.
        let mut t = TestBox::new(&[0xb8, 0, 0, 0, 0, 0xf7, 0xf0]);
        t.install_exception_handlers();
        t.run(10).unwrap();
        assert_eq!(t.halted_vector(), Some(0));
        assert_eq!(t.stack(0), CODE_BASE + 5, "EIP of the faulting DIV");
        assert_eq!(t.stack(1), 0x08, "CS");
    }

    #[test]
    fn unsupported_reports_address_and_bytes() {
        // addps xmm0, xmm1 (SSE: not implemented)
        let mut t = TestBox::new(&[0x40, 0x0f, 0x58, 0xc1]);
        let Err(Event::Unsupported(u)) = t.run(10) else { panic!("expected unsupported") };
        assert_eq!(u.eip, CODE_BASE + 1);
        assert_eq!(u.bytes, vec![0x0f, 0x58, 0xc1]);
        assert!(u.to_string().contains("addps"), "{u}");
    }
}
