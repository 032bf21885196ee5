/*
 * ferr: the PC's legacy x87 error reporting, CR0.NE = 0 (SDM Vol. 1 Appendix D, Vol. 3A
 * Interrupt 16). An unmasked exception drives the CPU's FERR# pin, the chipset turns it
 * into IRQ 13 (slave 8259A IR5), and the handler writes port 0xF0, which drops the line
 * and asserts IGNNE# so that waiting x87 instructions run in the handler though the error
 * is still pending; FNCLEX clears it. A P6 asserts FERR# as soon as the failing
 * instruction completes, and a waiting instruction that meets the error before the
 * interrupt could be taken freezes until it comes, then runs again. With CR0.NE = 1 the
 * same error is #MF at the next waiting instruction, and IRQ 13 stays quiet.
 *
 * For each error the handler records the EIP it interrupted and the guest prints where
 * that is: QEMU asserts FERR# only at the FWAIT and does not freeze, so it takes the
 * interrupt after the FWAIT (expected/ferr.qemu.txt, src/tests.rs).
 */
#include "rt.h"

const char guest_name[] = "ferr";

#define CR0_MP (1u << 1)
#define CR0_EM (1u << 2)
#define CR0_TS (1u << 3)
#define CR0_NE (1u << 5)
#define IRQ13_VECTOR (0x28 + 5)

/* Intel's FDIVP ST(1), ST(0) (see fpu.c). */
#define FDIVP ".byte 0xde, 0xf9"

static volatile uint16_t cw = 0x037b; /* ZE unmasked */
static volatile uint32_t irq13_count, irq13_eip, mf_count;
static volatile uint16_t sw_before, sw_after;

static void irq13(struct regs *r) {
    irq13_count += 1;
    irq13_eip = r->eip;
    __asm__ volatile("fnstsw %0" : "=m"(sw_before));
    outb(0xf0, 0); /* IRQ 13 drops, IGNNE# goes up while the error is pending */
    /* A waiting instruction: with IGNNE# asserted it runs, error or not. */
    __asm__ volatile("fwait; fnstsw %0" : "=m"(sw_after));
    __asm__ volatile("fnclex"); /* ES clear: FERR#, and with it IGNNE#, go away */
    pic_eoi(13);
}

static void mf(struct regs *r) {
    (void)r;
    mf_count += 1;
    __asm__ volatile("fnclex");
}

extern char a_fdiv[], a_fwait[], a_after[];
extern char b_fdiv[], b_fwait[], b_after[];

static const char *where(uint32_t eip, const char *fdiv, const char *fwait, const char *after) {
    if (eip == (uint32_t)fdiv) return "right after the FDIV";
    if (eip == (uint32_t)fwait) return "at the FWAIT, which then ran again";
    if (eip == (uint32_t)after) return "after the FWAIT";
    return "elsewhere";
}

int kmain(void) {
    set_handler(IRQ13_VECTOR, irq13);
    set_handler(16, mf);
    pic_set_mask((uint16_t) ~(1u << 2 | 1u << 13)); /* the cascade and IRQ 13 */
    write_cr0((read_cr0() & ~(CR0_EM | CR0_TS | CR0_NE)) | CR0_MP);
    printf("CR0.NE = 0, IRQ 13 unmasked\n");

    /* 1. Interrupts on: the error interrupts at once. */
    __asm__ volatile("fninit; fldcw %0; sti\n"
                     "fld1; fldz\n" FDIVP "\n"
                     "a_fdiv: nop\n"
                     "a_fwait: fwait\n"
                     "a_after: nop\n"
                     "cli; fninit" ::"m"(cw));
    printf("1/0, IF=1: IRQ 13 count %u, taken %s\n", irq13_count, where(irq13_eip, a_fdiv, a_fwait, a_after));
    printf("  handler: status %04x; a waiting FNSTSW after OUT 0xF0 ran: %04x\n", sw_before, sw_after);

    /* 2. Interrupts off at the error: the FWAIT after STI meets it first. */
    __asm__ volatile("fninit; fldcw %0\n"
                     "fld1; fldz\n" FDIVP "\n"
                     "b_fdiv: nop\n"
                     "sti\n"
                     "b_fwait: fwait\n"
                     "b_after: nop\n"
                     "cli; fninit" ::"m"(cw));
    printf("1/0, IF=0, then STI; FWAIT: IRQ 13 count %u, taken %s\n", irq13_count,
           where(irq13_eip, b_fdiv, b_fwait, b_after));

    /* 3. CR0.NE = 1: #MF at the FWAIT, no IRQ 13. */
    write_cr0(read_cr0() | CR0_NE);
    __asm__ volatile("fninit; fldcw %0; sti\n"
                     "fld1; fldz\n" FDIVP "\n"
                     "nop; fwait; nop\n"
                     "cli; fninit" ::"m"(cw));
    printf("1/0 with CR0.NE = 1: #MF count %u, IRQ 13 count %u\n", mf_count, irq13_count);
    CHECK(mf_count == 1, "#MF count %u", mf_count);
    CHECK(irq13_count == 2, "IRQ 13 count %u", irq13_count);
    return 0;
}
