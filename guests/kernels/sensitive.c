/*
 * sensitive: what a kernel sees of its own privileged state through the x86 instructions
 * that are sensitive but not privileged (Popek & Goldberg 1974; Robin & Irvine 2000).
 * At ring 0 -- on QEMU, popek's interpreter and JIT -- every line is right and the guest
 * passes. Under `popek run sensitive --engine trap`, a classic trap-and-emulate VMM runs this
 * kernel in ring 1: the privileged instructions trap and are emulated, but these do not trap
 * and answer for ring 1, so the kernel sees the wrong thing and fails
 * (expected/sensitive.trap.txt):
 *   - MOV from CS/SS: the selectors' RPL (the CPL the kernel thinks it runs at);
 *   - PUSHF after CLI: IF (a kernel's irqs_disabled());
 *   - POPF in local_irq_restore(): enables interrupts again (a pending IRQ0 is taken right
 *     after it), and POPF of a saved IF=0 disables them (a raised IRQ0 stays pending);
 *   - SGDT/SIDT/STR: the tables the kernel loaded; SMSW: CR0's low word, as MOV from CR0;
 *   - LAR/LSL/VERR/VERW on the kernel's own DPL-0 selectors.
 * Output depends on no timing: IRQ0 (PIT, 1 kHz) is only looked at as pending or taken.
 */
#include "rt.h"

const char guest_name[] = "sensitive";

static volatile uint32_t ticks;
static unsigned wrong;

static void timer_irq(struct regs *r) {
    (void)r;
    ticks++;
    pic_eoi(0);
}

/* One observation: prints the line, and counts it wrong unless `ok`. */
#define SEE(ok, ...)                   \
    do {                               \
        printf(__VA_ARGS__);           \
        if (!(ok)) {                   \
            wrong++;                   \
            printf("  ^ wrong\n");     \
        }                              \
    } while (0)

struct dt_ptr {
    uint16_t limit;
    uint32_t base;
} __attribute__((packed));

/* Busy-waits (bounded) until IRQ0 is raised at the PIC or taken; 1 if either happened. */
static int wait_irq0(uint32_t ticks0) {
    for (uint32_t i = 0; i < 10000000u; i++)
        if ((pic_read_irr() & 1) || ticks != ticks0) return 1;
    return 0;
}

static void selectors(void) {
    uint16_t cs, ss;
    __asm__ volatile("mov %%cs, %0; mov %%ss, %1" : "=r"(cs), "=r"(ss));
    uint32_t pushed;
    __asm__ volatile("push %%cs; popl %0" : "=r"(pushed));
    SEE((cs & 3) == 0 && (ss & 3) == 0 && (pushed & 3) == 0,
        "mov from cs/ss, push cs: %04x %04x %04x, CPL %u\n", cs, ss, pushed & 0xffff, cs & 3);
}

static void flags(void) {
    cli();
    uint32_t f = read_eflags();
    SEE(!(f & EFLAGS_IF), "after cli, pushf shows IF=%u IOPL=%u\n", !!(f & EFLAGS_IF), (f & EFLAGS_IOPL) >> 12);

    /* local_irq_save(): pushf; cli. Interrupts were on. */
    sti();
    uint32_t saved;
    __asm__ volatile("pushfl; popl %0; cli" : "=r"(saved)::"memory");
    SEE(saved & EFLAGS_IF, "irq_save: saved flags have IF=%u\n", !!(saved & EFLAGS_IF));
    uint32_t inside = read_eflags();
    SEE(!(inside & EFLAGS_IF), "inside the critical section, pushf shows IF=%u\n", !!(inside & EFLAGS_IF));

    /* IRQ0 becomes pending while interrupts are off; local_irq_restore() must take it. */
    ticks = 0;
    pic_set_mask(0xFFFE);
    int raised = wait_irq0(0);
    SEE(raised && ticks == 0, "IRQ0 raised during the critical section: %s\n",
        !raised ? "never" : ticks ? "taken (interrupts were on)" : "pending");
    __asm__ volatile("pushl %0; popfl" ::"r"(saved) : "memory", "cc");
    for (volatile int i = 0; i < 100; i++) {
    }
    uint32_t taken = ticks;
    SEE(taken > 0, "irq_restore (popf of IF=1): the pending IRQ0 was %s\n",
        taken ? "taken" : "not taken: interrupts are still off");

    /* The other way: interrupts on, then popf of flags with IF=0 must turn them off. */
    pic_set_mask(0xFFFF);
    sti();
    uint32_t off = read_eflags() & ~EFLAGS_IF;
    __asm__ volatile("pushl %0; popfl" ::"r"(off) : "memory", "cc");
    uint32_t t0 = ticks;
    pic_set_mask(0xFFFE);
    raised = wait_irq0(t0);
    SEE(raised && ticks == t0, "popf of IF=0, then IRQ0 raised: %s\n",
        !raised ? "never" : ticks != t0 ? "taken: interrupts are still on" : "held pending");
    cli();
    pic_set_mask(0xFFFF);
    sti();
    cli(); /* the pending edge, if any, is taken here or stays masked: either way, gone */
}

static void tables(void) {
    struct dt_ptr g, i;
    uint16_t tr;
    __asm__ volatile("sgdt %0; sidt %1; str %2" : "=m"(g), "=m"(i), "=r"(tr));
    /* Entry 1 of the GDT is the runtime's kernel code segment (bit 40, accessed, may be set). */
    const volatile uint64_t *gdt = (const volatile uint64_t *)g.base;
    int gdt_ours = g.limit == 0x7f && (gdt[1] & ~(1ull << 40)) == 0x00cf9a000000ffffull;
    if (gdt_ours)
        SEE(1, "sgdt: limit %04x, the GDT we loaded\n", g.limit);
    else
        SEE(0, "sgdt: limit %04x, base %08x: not the GDT we loaded\n", g.limit, g.base);
    /* Gate 0x80 of the IDT points at the runtime's system-call stub. */
    const volatile uint32_t *idt = (const volatile uint32_t *)i.base;
    uint32_t off80 = (idt[2 * 0x80] & 0xffff) | (idt[2 * 0x80 + 1] & 0xffff0000u);
    if (i.limit == 0x7ff && off80 == isr_stub(0x80))
        SEE(1, "sidt: limit %04x, the IDT we loaded\n", i.limit);
    else
        SEE(0, "sidt: limit %04x, base %08x: not the IDT we loaded\n", i.limit, i.base);
    SEE(tr == 0x28, "str: %04x\n", tr);

    uint16_t msw;
    __asm__ volatile("smsw %0" : "=r"(msw));
    uint16_t cr0 = (uint16_t)read_cr0();
    SEE(msw == cr0, "smsw: %04x, mov from cr0: %04x\n", msw, cr0);
}

static void access_checks(void) {
    uint32_t ar = 0, limit = 0;
    uint8_t lar_ok, lsl_ok, verr_ok, verw_ok;
    __asm__ volatile("lar %2, %0; setz %1" : "+r"(ar), "=q"(lar_ok) : "r"(0x08u) : "cc");
    __asm__ volatile("lsl %2, %0; setz %1" : "+r"(limit), "=q"(lsl_ok) : "r"(0x10u) : "cc");
    __asm__ volatile("verr %w1; setz %0" : "=q"(verr_ok) : "r"(0x10u) : "cc");
    __asm__ volatile("verw %w1; setz %0" : "=q"(verw_ok) : "r"(0x10u) : "cc");
    if (lar_ok)
        SEE(1, "lar 0x08: ok, present %u, DPL %u, %s\n", (ar >> 15) & 1, (ar >> 13) & 3, ar & 0x800 ? "code" : "data");
    else
        SEE(0, "lar 0x08: ZF=0, not accessible\n");
    if (lsl_ok)
        SEE(limit == 0xffffffffu, "lsl 0x10: ok, limit %08x\n", limit);
    else
        SEE(0, "lsl 0x10: ZF=0, not accessible\n");
    SEE(verr_ok && verw_ok, "verr 0x10: %s, verw 0x10: %s\n", verr_ok ? "readable" : "no", verw_ok ? "writable" : "no");
}

int kmain(void) {
    set_handler(32, timer_irq);
    pit_set_periodic((uint16_t)(PIT_HZ / 1000)); /* 1 kHz */
    printf("a kernel looks at its own privileged state\n");
    selectors();
    flags();
    tables();
    access_checks();
    CHECK(wrong == 0, "%u of the kernel's views were wrong: it does not run at ring 0", wrong);
    return 0;
}
