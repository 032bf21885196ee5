/*
 * windows: exactly where a pending interrupt arrives as interrupts open up (SDM Vol. 3A
 * 6.8.3 and the STI, MOV SS and POPF pages; the 8259A's IMR and EOI): after STI one more
 * instruction runs first (and a STI or MOV SS/POP SS in that shadow opens none of its own),
 * after POPF or IRET that set IF and after an OUT that unmasks or EOIs the IRQ none does.
 * For each window the handler records the EIP it interrupted, and the guest prints the
 * label it matches: the number of instructions that ran after the one that opened it.
 */
#include "rt.h"

const char guest_name[] = "windows";

static volatile uint32_t hits, hit_eip, eoi = 1;

static void timer_irq(struct regs *r) {
    hits++;
    if (!hit_eip) hit_eip = r->eip;
    if (eoi) pic_eoi(0);
}

/* Waits with IF=0 until IRQ0 is pending in the IRR. */
static void wait_pending(void) {
    for (uint32_t i = 0; i < 100000000u; i++)
        if (pic_read_irr() & 1) return;
    fail("IRQ0 never became pending");
}

#define LABELS(w) extern void w(void), w##_1(void), w##_2(void), w##_3(void)
LABELS(win_sti);
LABELS(win_sti_sti);
LABELS(win_sti_movss);
LABELS(win_sti_popss);
extern void win_sti_cli(void), win_sti_cli_1(void), win_sti_cli_2(void);
extern void win_popf(void), win_popf_1(void), win_popf_2(void);
extern void win_iret(void), win_iret_1(void), win_iret_2(void);
extern void win_unmask(void), win_unmask_1(void), win_unmask_2(void);
extern void win_eoi(void), win_eoi_1(void), win_eoi_2(void);
extern void win_hlt(void), win_hlt_1(void), win_hlt_2(void);

/* Waits for IRQ0 to be pending, runs window `w` and prints where the interrupt arrived among `at` (`at[k]`: after k
 * instructions past the one that opened the window). */
static void run(const char *what, void (*w)(void), void (*const at[])(void), int n) {
    wait_pending();
    hits = 0;
    hit_eip = 0;
    w();
    if (!hits) {
        printf("%s: not taken\n", what);
        return;
    }
    for (int k = 0; k < n; k++) {
        if (hit_eip == (uint32_t)at[k]) {
            printf("%s: taken after %d instruction%s\n", what, k, k == 1 ? "" : "s");
            return;
        }
    }
    printf("%s: taken elsewhere (%d bytes into the window)\n", what, (int)(hit_eip - (uint32_t)w));
}

int kmain(void) {
    set_handler(32, timer_irq);
    pit_set_periodic((uint16_t)(PIT_HZ / 1000));
    pic_set_mask(0xFFFE);

    static void (*const sti[])(void) = {win_sti_1, win_sti_2, win_sti_3};
    static void (*const sti_cli[])(void) = {win_sti_cli_1, win_sti_cli_2};
    static void (*const sti_sti[])(void) = {win_sti_sti_1, win_sti_sti_2, win_sti_sti_3};
    static void (*const movss[])(void) = {win_sti_movss_1, win_sti_movss_2, win_sti_movss_3};
    static void (*const popss[])(void) = {win_sti_popss_1, win_sti_popss_2, win_sti_popss_3};
    static void (*const popf[])(void) = {win_popf_1, win_popf_2};
    static void (*const iret[])(void) = {win_iret_1, win_iret_2};
    static void (*const unmask[])(void) = {win_unmask_1, win_unmask_2};
    static void (*const eoi_at[])(void) = {win_eoi_1, win_eoi_2};
    static void (*const hlt_at[])(void) = {win_hlt_1, win_hlt_2};

    run("sti; nop; nop", win_sti, sti, 3);
    run("sti; cli", win_sti_cli, sti_cli, 2);
    /* The STI;CLI window left IRQ0 pending: it is still there for the next one. */
    run("sti; sti; nop", win_sti_sti, sti_sti, 3);
    run("sti; mov ss; nop", win_sti_movss, movss, 3);
    run("sti; pop ss; nop", win_sti_popss, popss, 3);
    run("popf (IF=1); nop", win_popf, popf, 2);
    run("iret (IF=1); nop", win_iret, iret, 2);

    /* Masked at the PIC, pending in the IRR: the unmasking OUT opens the window. */
    pic_set_mask(0xFFFF);
    run("out (unmask IRQ0); nop", win_unmask, unmask, 2);

    /* IRQ0 in service (no EOI) and pending again: the EOI opens the window. */
    eoi = 0;
    run("sti; nop; nop (no EOI)", win_sti, sti, 3);
    CHECK(pic_read_isr() & 1, "IRQ0 not in service");
    eoi = 1;
    run("out (EOI); nop", win_eoi, eoi_at, 2);

    run("sti; hlt", win_hlt, hlt_at, 2);
    pic_set_mask(0xFFFF);
    return 0;
}
