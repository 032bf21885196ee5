//! The local APIC of the (only) CPU, in xAPIC mode at 0xFEE00000 (SDM Vol. 3A ch. 10
//! "Advanced Programmable Interrupt Controller (APIC)").
//!
//! A plain state machine like every device of this crate: it never sees the CPU. The
//! bus owns it next to the 8259A pair and the I/O APIC (see
//! [`crate::intc::InterruptControllers`]) and asks it for "the highest deliverable
//! vector" ([`Lapic::deliverable`]) and to run the INTA cycle ([`Lapic::inta`]).
//!
//! | offset | register | access |
//! |---|---|---|
//! | 0x020 | ID (bits 24–31; 0 at reset) | R/W |
//! | 0x030 | version: 0x0005_0014 (version 0x14, max LVT entry 5, no EOI-broadcast suppression) | R |
//! | 0x080 | TPR | R/W |
//! | 0x090 / 0x0A0 | APR / PPR | R |
//! | 0x0B0 | EOI | W |
//! | 0x0D0 / 0x0E0 | LDR (bits 24–31) / DFR (bits 28–31) | R/W |
//! | 0x0F0 | SVR: spurious vector (bits 0–7), APIC software enable (bit 8), focus check (bit 9) | R/W |
//! | 0x100–0x170 / 0x180–0x1F0 / 0x200–0x270 | ISR / TMR / IRR, 32 vectors per register | R |
//! | 0x280 | ESR (a write latches the errors seen since the last write, and clears them) | R/W |
//! | 0x300 / 0x310 | ICR low / high | R/W |
//! | 0x320–0x370 | LVT timer, thermal, perf, LINT0, LINT1, error | R/W |
//! | 0x380 / 0x390 / 0x3E0 | timer initial count / current count / divide configuration | R/W, R, R/W |
//!
//! Every other offset is reserved: it reads 0, ignores writes and sets the ESR's
//! "illegal register address" bit. Writes to read-only registers are ignored.
//! Registers are 32 bits at 16-byte strides; a narrower read returns the addressed
//! bytes of the register, a write anywhere but the register's first byte is ignored.
//!
//! **Reset state.** [`Lapic::new`] is the bootstrap processor as QEMU resets it: ID 0,
//! `IA32_APIC_BASE` = 0xFEE00900 (BSP, globally enabled), SVR 0xFF (software-disabled),
//! LINT0 = 0x700 (ExtINT, unmasked: the virtual wire that carries the 8259A's INTR to
//! the CPU), every other LVT masked, TPR 0, timer stopped. [`Lapic::bios_initialised`]
//! is what SeaBIOS leaves before it boots a `-kernel` (read back under QEMU by the
//! `apic_timer` guest): the same but SVR 0x1FF (software-enabled, spurious vector
//! 0xFF), LINT0 = 0x8700 (ExtINT, level) and LINT1 = 0x8400 (NMI, level); the standard
//! PC starts so. Either way a kernel that ignores the APIC sees a PC with only an 8259A.
//!
//! **Software disable** (SVR bit 8 = 0, written): every LVT is masked and stays masked
//! whatever is written to it; no fixed interrupt is accepted or delivered. (The reset
//! state is the one exception, as on QEMU: LINT0 there reads unmasked.)
//!
//! **Global disable** (`IA32_APIC_BASE` bit 11 = 0, [`Lapic::write_apic_base`]): the
//! APIC goes back to its power-up state (every LVT masked) and accepts nothing; the bus
//! then wires the 8259A straight to INTR as on a CPU without an APIC. Setting the bit
//! again re-enables it (as Pentium 4 and later allow), still in the power-up state. The
//! registers keep answering at 0xFEE00000 meanwhile (real CPUs stop decoding them).
//! The base cannot be moved: writes of another base are accepted but the APIC stays at
//! 0xFEE00000 (and the MSR keeps reading that base).
//!
//! **Timer.** The APIC bus clock is 1 GHz (as QEMU's), so one tick is 1 ns of virtual
//! time before the divider (1, 2, 4, …, 128). The current count is computed from the
//! virtual time of the read; expirations are deadlines ([`Lapic::next_deadline`]). A
//! one-shot timer counts to 0 and stays there; a periodic one reloads the initial
//! count. An initial count of 0 stops the timer. Changing the divider or the timer mode
//! while it runs restarts the count from its current value at the new setting (the
//! fraction of a tick already elapsed is dropped). TSC-deadline mode is not offered
//! (CPUID.1:ECX bit 24 is 0): LVT timer bit 18 is reserved and reads 0.
//!
//! **Interrupt-command register.** A fixed interrupt to this CPU (shorthand "self",
//! "all including self", or a destination that names this APIC) is accepted at once; an
//! NMI to it waits for the CPU as a pending NMI ([`Lapic::take_nmi`]); everything else
//! (INIT, start-up, SMI, IPIs to absent processors) is dropped.
//! The delivery-status bit always reads idle.

/// Physical base address of the local APIC's registers.
pub const LAPIC_BASE: u32 = 0xfee0_0000;
/// Size of the local APIC's register page.
pub const LAPIC_LEN: u32 = 0x1000;
/// The APIC bus clock (ticks per second before the divider): 1 GHz, as QEMU's.
pub const APIC_BUS_HZ: u64 = 1_000_000_000;
/// The version register: version 0x14 (integrated xAPIC), max LVT entry 5 (six LVTs).
pub const LAPIC_VERSION: u32 = 0x0005_0014;

/// `IA32_APIC_BASE` (MSR 0x1B).
pub const MSR_IA32_APIC_BASE: u32 = 0x1b;
/// `IA32_APIC_BASE` bit 8: this is the bootstrap processor.
pub const APIC_BASE_BSP: u64 = 1 << 8;
/// `IA32_APIC_BASE` bit 11: the APIC is globally enabled.
pub const APIC_BASE_ENABLE: u64 = 1 << 11;
/// The bits of `IA32_APIC_BASE` a write may set: BSP (ignored), enable and the base
/// (bits 12–31; the CPU has 32 physical address bits). Others are reserved (#GP).
const APIC_BASE_WRITABLE: u64 = 0xffff_f000 | APIC_BASE_ENABLE | APIC_BASE_BSP;

/// LVT mask bit.
pub const LVT_MASKED: u32 = 1 << 16;
/// LVT timer mode bit 17: periodic (0 = one-shot).
pub const LVT_TIMER_PERIODIC: u32 = 1 << 17;
/// LVT delivery mode ExtINT (bits 8–10 = 0b111).
pub const LVT_EXTINT: u32 = 0b111 << 8;
/// ICR delivery mode NMI (bits 8–10).
const DELIVERY_NMI: u32 = 0b100;
/// LVT delivery mode NMI (bits 8–10 = 0b100).
pub const LVT_NMI: u32 = 0b100 << 8;
/// LVT trigger mode bit 15 (LINT0/LINT1): level.
pub const LVT_LEVEL: u32 = 1 << 15;

/// ESR bit 5: an IPI with an illegal vector (0–15) was sent.
pub const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
/// ESR bit 6: an interrupt with an illegal vector (0–15) was received.
pub const ESR_RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
/// ESR bit 7: a reserved register was accessed.
pub const ESR_ILLEGAL_REGISTER: u32 = 1 << 7;

/// Index of each LVT in [`Lapic`]'s table (register 0x320 + 0x10 × index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Lvt {
    /// 0x320.
    Timer = 0,
    /// 0x330.
    Thermal = 1,
    /// 0x340.
    Perf = 2,
    /// 0x350.
    Lint0 = 3,
    /// 0x360.
    Lint1 = 4,
    /// 0x370.
    Error = 5,
}

/// Writable bits of each LVT, in [`Lvt`] order: vector and mask everywhere, the timer
/// mode for the timer, delivery mode for thermal/perf/LINTs, polarity and trigger mode
/// for the LINTs. Delivery status (bit 12) and remote IRR (bit 14) read 0.
const LVT_WRITABLE: [u32; 6] = [0x300ff, 0x107ff, 0x107ff, 0x1a7ff, 0x1a7ff, 0x100ff];

/// The local APIC's state. Plain data: clone it to snapshot it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lapic {
    apic_base: u64,
    id: u32,
    tpr: u8,
    ldr: u32,
    dfr: u32,
    svr: u32,
    isr: [u32; 8],
    tmr: [u32; 8],
    irr: [u32; 8],
    /// The ESR as the guest reads it (latched by the last write).
    esr: u32,
    /// Errors seen since the last ESR write.
    esr_pending: u32,
    icr_lo: u32,
    icr_hi: u32,
    lvt: [u32; 6],
    divide_conf: u32,
    initial_count: u32,
    /// The count was `timer_base_count` at `timer_base_ns`; 0 means stopped.
    timer_base_ns: u64,
    timer_base_count: u32,
    /// Expirations at or before this time have been handled.
    timer_done_until: u64,
    /// An NMI sent to this APIC (an IPI with delivery mode NMI) that the CPU has not
    /// taken yet. NMIs do not queue: a second one before the CPU takes the first is lost.
    nmi_pending: bool,
}

impl Default for Lapic {
    fn default() -> Self {
        Self::new()
    }
}

/// The highest set bit of a 256-bit vector register, as a vector number.
fn highest(bits: &[u32; 8]) -> Option<u8> {
    (0u8..8).rev().find_map(|i| {
        let w = bits[usize::from(i)];
        // At most 7 × 32 + 31 = 255: the low byte is the whole value.
        (w != 0).then(|| low_byte(u32::from(i) * 32 + 31 - w.leading_zeros()))
    })
}

fn bit(bits: &[u32; 8], v: u8) -> bool {
    bits[usize::from(v >> 5)] & (1 << (v & 31)) != 0
}

fn set_bit(bits: &mut [u32; 8], v: u8, on: bool) {
    let (w, m) = (usize::from(v >> 5), 1u32 << (v & 31));
    if on {
        bits[w] |= m;
    } else {
        bits[w] &= !m;
    }
}

/// The low 8 bits of a register value.
fn low_byte(v: u32) -> u8 {
    v.to_le_bytes()[0]
}

impl Lapic {
    /// The bootstrap processor's local APIC after reset (see the module docs).
    pub fn new() -> Self {
        let mut l = Self::power_up();
        l.lvt[Lvt::Lint0 as usize] = LVT_EXTINT;
        l
    }

    /// The state SeaBIOS leaves for the kernel (see the module docs): software-enabled,
    /// LINT0 ExtINT and LINT1 NMI, both level-triggered.
    pub fn bios_initialised() -> Self {
        let mut l = Self::new();
        l.svr = 0x1ff;
        l.lvt[Lvt::Lint0 as usize] = LVT_EXTINT | LVT_LEVEL;
        l.lvt[Lvt::Lint1 as usize] = LVT_NMI | LVT_LEVEL;
        l
    }

    /// The SDM's power-up state (Vol. 3A 10.4.7.1): everything masked, software-disabled.
    fn power_up() -> Self {
        Lapic {
            apic_base: u64::from(LAPIC_BASE) | APIC_BASE_BSP | APIC_BASE_ENABLE,
            id: 0,
            tpr: 0,
            ldr: 0,
            dfr: 0xffff_ffff,
            svr: 0xff,
            isr: [0; 8],
            tmr: [0; 8],
            irr: [0; 8],
            esr: 0,
            esr_pending: 0,
            icr_lo: 0,
            icr_hi: 0,
            lvt: [LVT_MASKED; 6],
            divide_conf: 0,
            initial_count: 0,
            timer_base_ns: 0,
            timer_base_count: 0,
            timer_done_until: 0,
            nmi_pending: false,
        }
    }

    /// The value of `IA32_APIC_BASE`.
    pub fn apic_base(&self) -> u64 {
        self.apic_base
    }

    /// WRMSR `IA32_APIC_BASE`: false (the CPU raises #GP) if a reserved bit is set.
    /// Clearing the enable bit disables the APIC globally (see the module docs); the
    /// BSP bit and the base are kept.
    pub fn write_apic_base(&mut self, value: u64) -> bool {
        if value & !APIC_BASE_WRITABLE != 0 {
            return false;
        }
        let enable = value & APIC_BASE_ENABLE != 0;
        if enable != self.globally_enabled() {
            let mut fresh = Self::power_up();
            fresh.timer_done_until = self.timer_done_until;
            fresh.apic_base = self.apic_base & !APIC_BASE_ENABLE | if enable { APIC_BASE_ENABLE } else { 0 };
            *self = fresh;
        }
        true
    }

    /// `IA32_APIC_BASE` bit 11.
    pub fn globally_enabled(&self) -> bool {
        self.apic_base & APIC_BASE_ENABLE != 0
    }

    /// SVR bit 8.
    pub fn software_enabled(&self) -> bool {
        self.svr & 0x100 != 0
    }

    fn enabled(&self) -> bool {
        self.globally_enabled() && self.software_enabled()
    }

    /// The LVT entry `which`.
    pub fn lvt(&self, which: Lvt) -> u32 {
        self.lvt[which as usize]
    }

    /// True if the 8259A's INTR reaches the CPU through LINT0: the APIC is globally
    /// disabled (no APIC in the way), or LINT0 is unmasked in ExtINT mode.
    pub fn lint0_passes_extint(&self) -> bool {
        let lint0 = self.lvt[Lvt::Lint0 as usize];
        !self.globally_enabled() || (lint0 & LVT_MASKED == 0 && lint0 & 0x700 == LVT_EXTINT)
    }

    /// True if the message's destination names this APIC (physical: its ID or the
    /// broadcast 0xFF; logical: flat model, any common LDR bit, or cluster model).
    pub fn matches_destination(&self, dest: u8, logical: bool) -> bool {
        if !logical {
            return dest == 0xff || u32::from(dest) == self.id >> 24;
        }
        let ldr = low_byte(self.ldr >> 24);
        if self.dfr >> 28 == 0xf {
            dest & ldr != 0
        } else {
            // Cluster model: cluster in the high nibble, members in the low one.
            (dest >> 4 == ldr >> 4 || dest >> 4 == 0xf) && dest & ldr & 0x0f != 0
        }
    }

    /// A fixed interrupt arrives (from the I/O APIC, an IPI or a local source): set
    /// its IRR bit and its TMR bit (`level`). Dropped if the APIC is disabled; an
    /// illegal vector (0–15) sets the ESR. Returns true if it was accepted.
    pub fn accept(&mut self, vector: u8, level: bool) -> bool {
        if !self.enabled() {
            return false;
        }
        if vector < 16 {
            self.error(ESR_RECEIVE_ILLEGAL_VECTOR);
            return false;
        }
        set_bit(&mut self.irr, vector, true);
        set_bit(&mut self.tmr, vector, level);
        true
    }

    /// Records an error; the LVT error entry, if unmasked, raises its interrupt.
    fn error(&mut self, bits: u32) {
        self.esr_pending |= bits;
        let lvt = self.lvt[Lvt::Error as usize];
        let vector = low_byte(lvt);
        if lvt & LVT_MASKED == 0 && vector >= 16 && self.enabled() {
            set_bit(&mut self.irr, vector, true);
            set_bit(&mut self.tmr, vector, false);
        }
    }

    /// The processor priority (SDM 10.8.3.1): the TPR if its class is at least the
    /// class of the highest in-service vector, else that class.
    pub fn ppr(&self) -> u8 {
        let isrv = highest(&self.isr).unwrap_or(0);
        if self.tpr >> 4 >= isrv >> 4 { self.tpr } else { isrv & 0xf0 }
    }

    /// The arbitration priority (P6 rule): the TPR if its class is at least the
    /// classes of the highest requested and in-service vectors, else the higher class.
    fn apr(&self) -> u8 {
        let top = highest(&self.isr).unwrap_or(0).max(highest(&self.irr).unwrap_or(0));
        if self.tpr >> 4 >= top >> 4 { self.tpr } else { top & 0xf0 }
    }

    /// The vector the CPU would take now: the highest requested one whose priority
    /// class is above the PPR's, if the APIC is enabled.
    pub fn deliverable(&self) -> Option<u8> {
        if !self.enabled() {
            return None;
        }
        let irrv = highest(&self.irr)?;
        (irrv >> 4 > self.ppr() >> 4).then_some(irrv)
    }

    /// The INTA cycle: moves the deliverable vector from IRR to ISR and returns it,
    /// or returns the spurious vector (SVR bits 0–7, no ISR bit set) if nothing is
    /// deliverable any more.
    pub fn inta(&mut self) -> u8 {
        match self.deliverable() {
            Some(v) => {
                set_bit(&mut self.irr, v, false);
                set_bit(&mut self.isr, v, true);
                v
            }
            None => low_byte(self.svr),
        }
    }

    /// An EOI: clears the highest in-service vector. Returns it if it was accepted as
    /// level-triggered (TMR bit set): the I/O APIC is then told (EOI broadcast).
    pub fn eoi(&mut self) -> Option<u8> {
        let v = highest(&self.isr)?;
        set_bit(&mut self.isr, v, false);
        bit(&self.tmr, v).then_some(v)
    }

    /// The timer's divider: 1, 2, 4, …, 128.
    pub fn timer_divisor(&self) -> u64 {
        // Bits 0, 1 and 3: 0b000 = ÷2, …, 0b110 = ÷128, 0b111 = ÷1.
        let code = (self.divide_conf & 3) | ((self.divide_conf >> 1) & 4);
        1 << ((code + 1) & 7)
    }

    fn periodic(&self) -> bool {
        self.lvt[Lvt::Timer as usize] & LVT_TIMER_PERIODIC != 0
    }

    /// The current-count register at virtual time `now_ns`.
    pub fn current_count(&self, now_ns: u64) -> u32 {
        if self.timer_base_count == 0 || self.initial_count == 0 {
            return 0;
        }
        let elapsed = now_ns.saturating_sub(self.timer_base_ns) / self.timer_divisor();
        let base = u64::from(self.timer_base_count);
        if elapsed < base {
            // Less than a u32 count: the difference fits.
            return u32::try_from(base - elapsed).unwrap_or(0);
        }
        if !self.periodic() {
            return 0;
        }
        let initial = u64::from(self.initial_count);
        u32::try_from(initial - (elapsed - base) % initial).unwrap_or(0)
    }

    /// The next timer expiration after those already handled, if the timer runs.
    fn timer_next_expiry(&self) -> Option<u64> {
        if self.timer_base_count == 0 || self.initial_count == 0 {
            return None;
        }
        let div = self.timer_divisor();
        // An expiry beyond the end of u64 time never comes.
        let first = self.timer_base_ns.checked_add(u64::from(self.timer_base_count) * div)?;
        if first > self.timer_done_until {
            return Some(first);
        }
        if !self.periodic() {
            return None;
        }
        let period = u64::from(self.initial_count) * div;
        let k = (self.timer_done_until - first) / period + 1;
        first.checked_add(k.checked_mul(period)?)
    }

    /// The earliest virtual time at which the timer will raise its interrupt: none
    /// while its LVT entry is masked (the count still runs — it is computed from the
    /// time of each read — but an expiry then changes nothing the guest can see, and
    /// unmasking is a register write, after which the bus asks again).
    pub fn next_deadline(&self) -> Option<u64> {
        if self.lvt[Lvt::Timer as usize] & LVT_MASKED != 0 {
            return None;
        }
        self.timer_next_expiry()
    }

    /// Virtual time moved to `now_ns`: a timer that expired (once or many times)
    /// raises its interrupt once, if its LVT entry is unmasked.
    pub fn advance(&mut self, now_ns: u64) {
        if now_ns < self.timer_done_until {
            return;
        }
        let fired = self.timer_next_expiry().is_some_and(|t| t <= now_ns);
        if fired && !self.periodic() {
            // A one-shot timer stays at 0.
            self.timer_base_count = 0;
        }
        self.timer_done_until = now_ns;
        let lvt = self.lvt[Lvt::Timer as usize];
        if fired && lvt & LVT_MASKED == 0 {
            self.accept(low_byte(lvt), false);
        }
    }

    /// Restarts the count from its value at `now_ns` (after a divider or mode change).
    fn timer_rebase(&mut self, now_ns: u64) {
        self.timer_base_count = self.current_count(now_ns);
        self.timer_base_ns = now_ns;
    }

    /// Reads the register at `offset` (any size; the addressed bytes of the register
    /// are returned, the bus masks them to the access size).
    pub fn read(&mut self, now_ns: u64, offset: u32) -> u32 {
        self.advance(now_ns);
        let reg = offset & 0xff0;
        let v = match reg {
            0x020 => self.id,
            0x030 => LAPIC_VERSION,
            0x080 => self.tpr.into(),
            0x090 => self.apr().into(),
            0x0a0 => self.ppr().into(),
            0x0b0 | 0x0c0 => 0, // EOI is write-only; remote read is not supported
            0x0d0 => self.ldr,
            0x0e0 => self.dfr,
            0x0f0 => self.svr,
            0x100..=0x170 => self.isr[((reg - 0x100) >> 4) as usize],
            0x180..=0x1f0 => self.tmr[((reg - 0x180) >> 4) as usize],
            0x200..=0x270 => self.irr[((reg - 0x200) >> 4) as usize],
            0x280 => self.esr,
            0x300 => self.icr_lo,
            0x310 => self.icr_hi,
            0x320..=0x370 => self.lvt[((reg - 0x320) >> 4) as usize],
            0x380 => self.initial_count,
            0x390 => self.current_count(now_ns),
            0x3e0 => self.divide_conf,
            _ => {
                self.error(ESR_ILLEGAL_REGISTER);
                0
            }
        };
        if offset & 0xf >= 4 { 0 } else { v >> (8 * (offset & 3)) }
    }

    /// Writes the register at `offset`. Returns the vector of an EOI that must be
    /// broadcast to the I/O APIC (a level-triggered interrupt ended).
    pub fn write(&mut self, now_ns: u64, offset: u32, value: u32) -> Option<u8> {
        self.advance(now_ns);
        if offset & 0xf != 0 {
            return None;
        }
        match offset {
            0x020 => self.id = value & 0xff00_0000,
            0x030 | 0x090 | 0x0a0 | 0x0c0 | 0x100..=0x270 | 0x390 => {} // read-only
            0x080 => self.tpr = low_byte(value),
            0x0b0 => return self.eoi(),
            0x0d0 => self.ldr = value & 0xff00_0000,
            0x0e0 => self.dfr = value | 0x0fff_ffff,
            0x0f0 => {
                self.svr = value & 0x3ff;
                if !self.software_enabled() {
                    for lvt in &mut self.lvt {
                        *lvt |= LVT_MASKED;
                    }
                }
            }
            0x280 => {
                self.esr = std::mem::take(&mut self.esr_pending);
            }
            0x300 => {
                self.icr_lo = value & 0x000c_cfff; // delivery status (bit 12) reads idle
                self.send_ipi();
            }
            0x310 => self.icr_hi = value & 0xff00_0000,
            0x320..=0x370 => {
                let i = ((offset - 0x320) >> 4) as usize;
                let mut v = value & LVT_WRITABLE[i];
                if !self.software_enabled() {
                    v |= LVT_MASKED;
                }
                if i == Lvt::Timer as usize {
                    self.timer_rebase(now_ns);
                }
                self.lvt[i] = v;
            }
            0x380 => {
                self.initial_count = value;
                self.timer_base_ns = now_ns;
                self.timer_base_count = value;
            }
            0x3e0 => {
                self.timer_rebase(now_ns);
                self.divide_conf = value & 0xb;
            }
            _ => self.error(ESR_ILLEGAL_REGISTER),
        }
        None
    }

    /// An NMI is waiting for the CPU (see [`Lapic::take_nmi`]).
    pub fn nmi_pending(&self) -> bool {
        self.nmi_pending
    }

    /// The CPU takes the pending NMI: true if there was one.
    pub fn take_nmi(&mut self) -> bool {
        std::mem::take(&mut self.nmi_pending)
    }

    /// Sends the IPI just written to ICR low: a fixed interrupt or an NMI to this APIC
    /// has an effect (an NMI ignores the vector field, SDM Vol. 3A 11.6.1).
    fn send_ipi(&mut self) {
        let lo = self.icr_lo;
        let vector = low_byte(lo);
        let mode = (lo >> 8) & 7;
        let to_self = match (lo >> 18) & 3 {
            0 => self.matches_destination(low_byte(self.icr_hi >> 24), lo & (1 << 11) != 0),
            1 | 2 => true, // self, all including self
            _ => false,    // all excluding self: nobody else is there
        };
        if to_self && mode == DELIVERY_NMI {
            self.nmi_pending = true;
            return;
        }
        if mode != 0 || !to_self {
            return; // INIT, start-up, SMI, or nobody: dropped
        }
        if vector < 16 {
            self.error(ESR_SEND_ILLEGAL_VECTOR);
            return;
        }
        self.accept(vector, false);
    }
}

/// True if reading the register at `offset` changes no state: every register [`Lapic::read`]
/// knows (an undefined offset sets ESR's illegal-register bit and may raise the error
/// interrupt).
pub(crate) fn read_is_pure(offset: u32) -> bool {
    matches!(offset & 0xff0, 0x020 | 0x030 | 0x080..=0x0f0 | 0x100..=0x280 | 0x300 | 0x310 | 0x320..=0x390 | 0x3e0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVR_ON: u32 = 0x1ff;

    fn enabled() -> Lapic {
        let mut l = Lapic::new();
        l.write(0, 0xf0, SVR_ON);
        l
    }

    /// `read_is_pure` says "pure" exactly for the offsets whose read flags no error: every
    /// 16-byte register slot of the page, read from an enabled APIC.
    #[test]
    fn pure_reads_are_the_reads_that_flag_no_error() {
        for offset in (0..0x1000).step_by(0x10) {
            let mut l = enabled();
            l.read(0, offset);
            assert_eq!(read_is_pure(offset), l.esr_pending == 0, "offset {offset:#x}");
        }
    }

    #[test]
    fn reset_state_is_qemus_bsp() {
        let mut l = Lapic::new();
        assert_eq!(l.apic_base(), 0xfee0_0900);
        assert_eq!(l.read(0, 0x20), 0);
        assert_eq!(l.read(0, 0x30), 0x0005_0014);
        assert_eq!(l.read(0, 0xf0), 0xff);
        assert_eq!(l.read(0, 0xe0), 0xffff_ffff);
        assert_eq!(l.read(0, 0x350), 0x700);
        for off in [0x320, 0x330, 0x340, 0x360, 0x370] {
            assert_eq!(l.read(0, off), LVT_MASKED, "{off:#x}");
        }
        assert!(l.lint0_passes_extint());
        assert_eq!(l.deliverable(), None);
        // Disabled: nothing is accepted.
        assert!(!l.accept(0x40, false));
        // Narrow reads return the addressed bytes; the padding reads 0.
        assert_eq!(l.read(0, 0x31), 0x0000_0500);
        assert_eq!(l.read(0, 0x34), 0);
    }

    #[test]
    fn bios_state_is_seabioss() {
        let mut l = Lapic::bios_initialised();
        assert_eq!(l.read(0, 0xf0), 0x1ff);
        assert_eq!(l.read(0, 0x350), 0x8700);
        assert_eq!(l.read(0, 0x360), 0x8400);
        assert!(l.lint0_passes_extint());
        assert!(l.accept(0x40, false), "software-enabled");
    }

    #[test]
    fn software_disable_masks_lvts_for_good() {
        let mut l = enabled();
        l.write(0, 0x320, 0x40);
        assert_eq!(l.read(0, 0x320), 0x40);
        l.write(0, 0xf0, 0xff);
        assert_eq!(l.read(0, 0x320), LVT_MASKED | 0x40);
        assert_eq!(l.read(0, 0x350), LVT_MASKED | 0x700);
        assert!(!l.lint0_passes_extint());
        l.write(0, 0x370, 0x41);
        assert_eq!(l.read(0, 0x370), LVT_MASKED | 0x41, "cannot be unmasked");
        l.write(0, 0xf0, SVR_ON);
        l.write(0, 0x370, 0x41);
        assert_eq!(l.read(0, 0x370), 0x41);
    }

    #[test]
    fn priority_tpr_and_eoi_order() {
        let mut l = enabled();
        assert!(l.accept(0x31, false));
        assert!(l.accept(0x52, false));
        assert_eq!(l.read(0, 0x200 + 0x10), 1 << 17, "IRR bit 0x31");
        assert_eq!(l.read(0, 0x200 + 0x20), 1 << 18, "IRR bit 0x52");
        // TPR class 5 blocks class 5 and below.
        l.write(0, 0x80, 0x50);
        assert_eq!(l.deliverable(), None);
        assert_eq!(l.read(0, 0xa0), 0x50);
        l.write(0, 0x80, 0x4f);
        assert_eq!(l.deliverable(), Some(0x52));
        l.write(0, 0x80, 0);
        assert_eq!(l.inta(), 0x52);
        assert_eq!(l.read(0, 0xa0), 0x50, "PPR = ISRV class");
        // 0x31 (class 3) waits for 0x52's EOI.
        assert_eq!(l.deliverable(), None);
        assert!(l.accept(0x61, false));
        assert_eq!(l.inta(), 0x61, "a higher class nests");
        assert_eq!(l.read(0, 0x100 + 0x30), 1 << 1);
        assert_eq!(l.write(0, 0xb0, 0), None);
        assert_eq!(l.read(0, 0x130), 0, "EOI clears the highest ISR bit");
        assert_eq!(l.read(0, 0x120), 1 << 18);
        assert_eq!(l.deliverable(), None);
        l.write(0, 0xb0, 0);
        assert_eq!(l.inta(), 0x31);
        l.write(0, 0xb0, 0);
        assert_eq!(l.read(0, 0xa0), 0);
        // Nothing deliverable at INTA: the spurious vector, no ISR bit.
        l.write(0, 0xf0, 0x1e7);
        assert_eq!(l.inta(), 0xe7);
        assert_eq!(l.read(0, 0x170), 0);
        assert_eq!(l.read(0, 0xf0), 0x1e7);
    }

    #[test]
    fn same_class_does_not_nest_and_level_eoi_is_reported() {
        let mut l = enabled();
        l.accept(0x45, true);
        assert_eq!(l.inta(), 0x45);
        assert_eq!(l.read(0, 0x180 + 0x20), 1 << 5, "TMR");
        l.accept(0x4a, false);
        assert_eq!(l.deliverable(), None, "same class as the one in service");
        assert_eq!(l.read(0, 0x90), 0x40, "APR");
        assert_eq!(l.write(0, 0xb0, 0), Some(0x45));
        assert_eq!(l.inta(), 0x4a);
        assert_eq!(l.write(0, 0xb0, 0), None);
        assert_eq!(l.write(0, 0xb0, 0), None, "EOI with nothing in service");
    }

    #[test]
    fn illegal_vectors_and_esr() {
        let mut l = enabled();
        l.write(0, 0x370, 0xfe); // LVT error -> 0xFE
        assert!(!l.accept(5, false));
        assert_eq!(l.read(0, 0x280), 0, "ESR shows errors only after a write");
        l.write(0, 0x280, 0);
        assert_eq!(l.read(0, 0x280), ESR_RECEIVE_ILLEGAL_VECTOR);
        l.write(0, 0x280, 0);
        assert_eq!(l.read(0, 0x280), 0);
        assert_eq!(l.inta(), 0xfe, "the error interrupt");
        l.write(0, 0xb0, 0);
        // Reserved registers read 0 and set the illegal-register bit.
        assert_eq!(l.read(0, 0x3f0), 0);
        l.write(0, 0x2f0, 0x1234);
        assert_eq!(l.read(0, 0x2f0), 0);
        l.write(0, 0x280, 0);
        assert_eq!(l.read(0, 0x280), ESR_ILLEGAL_REGISTER);
        // Read-only registers ignore writes.
        l.write(0, 0x30, 0);
        assert_eq!(l.read(0, 0x30), LAPIC_VERSION);
    }

    #[test]
    fn self_ipi_and_absent_destinations() {
        let mut l = enabled();
        l.write(0, 0x300, 0x0004_0050); // shorthand self, fixed, vector 0x50
        assert_eq!(l.deliverable(), Some(0x50));
        assert_eq!(l.read(0, 0x300) & (1 << 12), 0, "delivery status idle");
        l.inta();
        l.write(0, 0xb0, 0);
        // INIT and start-up to everybody else, and a fixed IPI to APIC 3: dropped.
        l.write(0, 0x310, 3 << 24);
        for icr in [0x000c_4500, 0x000c_4600 | 0x9f, 0x0000_0060] {
            l.write(0, 0x300, icr);
        }
        assert_eq!(l.deliverable(), None);
        // Physical destination 0 is this APIC.
        l.write(0, 0x310, 0);
        l.write(0, 0x300, 0x61);
        assert_eq!(l.deliverable(), Some(0x61));
        // Illegal vector sent to self.
        l.write(0, 0x300, 0x0004_0003);
        l.write(0, 0x280, 0);
        assert_eq!(l.read(0, 0x280), ESR_SEND_ILLEGAL_VECTOR);
    }

    #[test]
    fn nmi_ipi_waits_for_the_cpu_and_does_not_queue() {
        let mut l = enabled();
        assert!(!l.take_nmi());
        // NMI to APIC 3 (absent): dropped.
        l.write(0, 0x310, 3 << 24);
        l.write(0, 0x300, 0x0000_0400);
        assert!(!l.nmi_pending());
        // NMI to self, twice before the CPU looks: one NMI, no fixed interrupt, vector ignored.
        l.write(0, 0x300, 0x0004_0400 | 0x03);
        l.write(0, 0x300, 0x0004_0400);
        assert!(l.nmi_pending());
        assert_eq!(l.deliverable(), None, "an NMI is not a fixed interrupt");
        l.write(0, 0x280, 0);
        assert_eq!(l.read(0, 0x280), 0, "vector 3 is no error for an NMI");
        assert!(l.take_nmi());
        assert!(!l.take_nmi(), "taken once");
    }

    #[test]
    fn logical_destinations() {
        let mut l = enabled();
        assert!(!l.matches_destination(0x01, true), "LDR 0 matches nothing");
        l.write(0, 0xd0, 0x0100_0000);
        assert!(l.matches_destination(0x01, true));
        assert!(l.matches_destination(0xff, true));
        assert!(!l.matches_destination(0x02, true));
        l.write(0, 0xe0, 0x0fff_ffff); // cluster model
        l.write(0, 0xd0, 0x2100_0000);
        assert!(l.matches_destination(0x21, true));
        assert!(!l.matches_destination(0x31, true));
        assert!(l.matches_destination(0x0, false) && l.matches_destination(0xff, false));
        assert!(!l.matches_destination(0x1, false));
    }

    #[test]
    fn divide_values() {
        let mut l = enabled();
        for (conf, div) in [(0x0, 2), (0x1, 4), (0x2, 8), (0x3, 16), (0x8, 32), (0x9, 64), (0xa, 128), (0xb, 1)] {
            l.write(0, 0x3e0, conf | 0xf0);
            assert_eq!(l.read(0, 0x3e0), conf);
            assert_eq!(l.timer_divisor(), div, "{conf:#x}");
        }
    }

    #[test]
    fn one_shot_timer() {
        let mut l = enabled();
        l.write(0, 0x3e0, 0x0); // ÷2
        l.write(0, 0x320, 0x40);
        assert_eq!(l.next_deadline(), None);
        l.write(1000, 0x380, 100);
        assert_eq!(l.read(1000, 0x390), 100);
        assert_eq!(l.read(1001, 0x390), 100);
        assert_eq!(l.read(1002, 0x390), 99);
        assert_eq!(l.read(1150, 0x390), 25);
        assert_eq!(l.next_deadline(), Some(1200));
        l.advance(1199);
        assert_eq!(l.deliverable(), None);
        l.advance(1200);
        assert_eq!(l.deliverable(), Some(0x40));
        assert_eq!(l.read(1200, 0x390), 0);
        assert_eq!(l.read(5000, 0x390), 0);
        assert_eq!(l.next_deadline(), None, "one-shot: fired once");
        // Switching to periodic after expiry does not restart it.
        l.write(6000, 0x320, 0x40 | LVT_TIMER_PERIODIC);
        assert_eq!(l.next_deadline(), None);
        assert_eq!(l.read(7000, 0x390), 0);
        assert_eq!(l.read(7000, 0x380), 100);
    }

    #[test]
    fn periodic_timer_and_coarse_steps() {
        let mut l = enabled();
        l.write(0, 0x3e0, 0xb); // ÷1
        l.write(0, 0x320, 0x41 | LVT_TIMER_PERIODIC);
        l.write(0, 0x380, 1000);
        let mut ticks = 0;
        let mut t = 0;
        while t < 10_000 {
            t = l.next_deadline().unwrap();
            l.advance(t);
            if l.deliverable().is_some() {
                l.inta();
                l.write(t, 0xb0, 0);
                ticks += 1;
            }
        }
        assert_eq!(ticks, 10);
        assert_eq!(l.read(10_000, 0x390), 1000);
        assert_eq!(l.read(10_250, 0x390), 750);
        // A coarse step over many periods raises one interrupt; the next deadline is
        // the next period boundary.
        l.advance(55_500);
        assert_eq!(l.inta(), 0x41);
        assert_eq!(l.deliverable(), None);
        assert_eq!(l.next_deadline(), Some(56_000));
        assert_eq!(l.read(55_500, 0x390), 500);
        // Masked: the count runs, no interrupt, no deadline; unmasked, the next
        // period boundary is the deadline again (and the masked expiries are lost).
        l.write(55_500, 0x320, 0x41 | LVT_TIMER_PERIODIC | LVT_MASKED);
        l.write(55_500, 0xb0, 0);
        assert_eq!(l.next_deadline(), None);
        l.advance(60_000);
        assert_eq!(l.deliverable(), None);
        assert_eq!(l.read(60_250, 0x390), 750);
        l.write(60_250, 0x320, 0x41 | LVT_TIMER_PERIODIC);
        assert_eq!(l.deliverable(), None);
        assert_eq!(l.next_deadline(), Some(61_000));
        // Initial count 0 stops it.
        l.write(60_000, 0x380, 0);
        assert_eq!(l.next_deadline(), None);
        assert_eq!(l.read(70_000, 0x390), 0);
    }

    #[test]
    fn absurd_timer_values_do_not_overflow() {
        let mut l = enabled();
        l.write(0, 0x3e0, 0xa); // ÷128
        l.write(0, 0x320, 0x40 | LVT_TIMER_PERIODIC);
        let start = u64::MAX - 1000;
        l.write(start, 0x380, u32::MAX);
        assert_eq!(l.read(start, 0x390), u32::MAX);
        assert_eq!(l.next_deadline(), None, "beyond the end of time");
        l.advance(u64::MAX);
        assert_eq!(l.deliverable(), None);
        assert_eq!(l.read(u64::MAX, 0x390), u32::MAX - 7);
        let mut l = enabled();
        l.write(0, 0x3e0, 0xa);
        l.write(0, 0x320, 0x40 | LVT_TIMER_PERIODIC);
        l.write(0, 0x380, u32::MAX);
        let period = u64::from(u32::MAX) * 128;
        assert_eq!(l.next_deadline(), Some(period));
        l.advance(period * 3 + 5);
        assert_eq!(l.next_deadline(), Some(period * 4));
        assert_eq!(l.inta(), 0x40);
        // A divider change restarts from the current count.
        l.write(period * 3 + 128, 0x3e0, 0xb);
        assert_eq!(l.read(period * 3 + 128, 0x390), u32::MAX - 1);
        assert_eq!(l.read(period * 3 + 138, 0x390), u32::MAX - 11);
    }

    #[test]
    fn global_disable_and_apic_base() {
        let mut l = enabled();
        l.accept(0x40, false);
        assert!(!l.write_apic_base(0xfee0_0900 | 1 << 10), "x2APIC enable is reserved");
        assert!(!l.write_apic_base(1 << 32));
        assert!(l.write_apic_base(0xfee0_0100));
        assert!(!l.globally_enabled());
        assert_eq!(l.apic_base(), 0xfee0_0100);
        assert!(l.lint0_passes_extint(), "8259A wired straight to INTR");
        assert_eq!(l.deliverable(), None);
        assert!(!l.accept(0x40, false));
        // Moving the base is ignored; enabling again gives the power-up state.
        assert!(l.write_apic_base(0x1000_0900));
        assert_eq!(l.apic_base(), 0xfee0_0900);
        assert_eq!(l.read(0, 0xf0), 0xff);
        assert_eq!(l.read(0, 0x350), LVT_MASKED);
        assert!(!l.lint0_passes_extint());
    }
}
