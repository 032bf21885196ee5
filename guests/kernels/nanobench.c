/*
 * nanobench: tight loops of the operations whose cost a virtualizer cares about: a system
 * call round trip from ring 3, port IN, CR3 writes (TLB flushes), page faults (fault, map,
 * resume, unmap), call/ret, stores beside and into code, a CLI/STI pair, INVLPG and console
 * writes. Each prints only its iteration count, so the output is deterministic; time it from
 * outside (popek --stats, perf, benches/). "scale=N" multiplies the counts; "only=NAME" runs
 * just one loop and "n=N" sets the iteration count of every loop that runs, for measuring
 * one operation at a time.
 *
 * "pv=1" makes it a paravirtualized kernel (the built-in guest nanobench_pv): if CPUID leaf
 * 0x40000000 says "popekpopekpv", it checks the hypercall ABI once and its loops use
 * hypercalls instead of the sensitive instructions -- irq (CLI/STI), cr3 (MOV CR3), invlpg
 * and pagefault (INVLPG), console (OUT to COM1, polling LSR) -- with the rest of each loop
 * unchanged. Without the leaf (QEMU, `popek run --paravirt off`) it says so and runs the
 * native instructions.
 */
#include "rt.h"
#include "apic.h"
#include "pv.h"

const char guest_name[] = "nanobench";

#define FAULT_VA 0x00800000u

static uint8_t user_stack[PAGE_SIZE] __attribute__((aligned(16)));
static uint8_t fault_frame[PAGE_SIZE] __attribute__((aligned(4096)));
static uint32_t *pd;
static volatile uint32_t user_loops, pf_count;

static void user_syscall_loop(void) {
    uint32_t n = user_loops, ok = 0;
    for (uint32_t i = 0; i < n; i++) ok += syscall1(SYS_NOP, i) == i + 1;
    syscall1(SYS_EXIT, ok);
}

static void page_fault(struct regs *r) {
    uint32_t cr2 = read_cr2();
    if ((cr2 & ~0xFFFu) != FAULT_VA || r->err != 2) fail("unexpected #PF at %x err %x", cr2, r->err);
    pf_count++;
    *pte_of(pd, FAULT_VA) = (uint32_t)fault_frame | PTE_P | PTE_W;
}

__attribute__((noinline)) static uint32_t leaf(uint32_t x) {
    __asm__ volatile("" : "+r"(x));
    return x + 1;
}

#define NLOOPS 10
static const char *const loops[NLOOPS] = {"syscall",  "portin", "cr3", "pagefault", "callret",
                                          "datacode", "patch",  "irq", "invlpg",    "console"};

/* Hypercalls instead of sensitive instructions (pv=1 and the interface is there). */
static int use_pv;

static void flush_page(uint32_t va) {
    if (use_pv)
        pv_invlpg(va);
    else
        invlpg(va);
}

static uint8_t scratch[PAGE_SIZE] __attribute__((aligned(4096)));

/* One console line: 32 bytes. */
static const char console_line[] = "console line: 32 bytes of text.\n";

static volatile uint32_t ticks, irq_eip;

static void timer_irq_pv(struct regs *r) {
    ticks++;
    irq_eip = r->eip;
    pv_eoi_pic(0);
}

/* A self-IPI's vector (the slave 8259A's range, masked there) and what its handler saw. */
#define V_SELF 40
static volatile uint32_t self_ipis, self_in_service;

static void self_ipi(struct regs *r) {
    (void)r;
    self_ipis++;
    self_in_service += lapic_bit(LAPIC_ISR, V_SELF);
    pv_eoi_lapic();
}

/* Busy-waits (bounded) until IRQ0 is raised at the PIC or `ticks` moves past t0. */
static int wait_irq0(uint32_t t0) {
    for (uint32_t i = 0; i < 10000000u; i++)
        if ((pic_read_irr() & 1) || ticks != t0) return 1;
    return 0;
}

/* The ABI, checked once: version and features, errors, a console write, and the
 * interrupt flag with a pending IRQ0 (EOI by hypercall). Only booleans and fixed values
 * are printed: no timing. */
static void pv_checks(void) {
    uint32_t features, version = pv_version(&features);
    printf("hypercall VERSION: ABI %u, features %08x\n", version, features);
    printf("hypercall 99: %d (-ENOSYS)\n", (int)hypercall0(99));
    printf("console write of an unmapped buffer: %d (-EFAULT)\n", (int)pv_console_write((void *)FAULT_VA, 8));
    printf("console write of %u bytes: %d (-EINVAL)\n", PV_CONSOLE_MAX + 1,
           (int)pv_console_write(scratch, PV_CONSOLE_MAX + 1));
    static const char msg[] = "this line is one CONSOLE_WRITE hypercall\n";
    int32_t wrote = pv_console_write(msg, sizeof msg - 1);
    CHECK(wrote == (int32_t)(sizeof msg - 1), "console write: %d", (int)wrote);

    /* IRQ0 at about 10 kHz; held pending while the hypercall has interrupts off. */
    set_handler(32, timer_irq_pv);
    pit_set_periodic(119);
    uint32_t was = pv_irq_disable();
    pic_set_mask(0xFFFE);
    int raised = wait_irq0(0);
    CHECK(raised && ticks == 0, "IRQ0 during IRQ_DISABLE: %s", raised ? "taken" : "never raised");
    printf("IRQ_DISABLE (IF was %u): IRQ0 raised and held pending\n", was);
    /* IRQ_ENABLE; HLT: as with STI; HLT, the interrupt comes after the HLT, which wakes. */
    uint32_t after_hlt, nr = PV_IRQ_ENABLE;
    __asm__ volatile("movl $1f, %1\n\tvmcall\n\thlt\n1:" : "+a"(nr), "=&d"(after_hlt)::"memory");
    CHECK(ticks == 1, "IRQ_ENABLE: %u interrupts", ticks);
    printf("IRQ_ENABLE (IF was %u); HLT: IRQ0 taken after the HLT: %s\n", nr,
           irq_eip == after_hlt ? "yes" : "no, before it");
    /* Interrupts are on now. The handler's EOI hypercall ended IRQ0's service at the
     * 8259A, so the next IRQ0 arrives (without the EOI it never would). */
    for (uint32_t i = 0; i < 10000000u && ticks < 2; i++) barrier();
    pv_irq_disable();
    printf("EOI hypercall in the handler: IRQ0 taken again: %s\n", ticks >= 2 ? "yes" : "no");
    pic_set_mask(0xFFFF);
    set_handler(32, 0);

    /* Two self-IPIs at one vector, each handler ending with the local APIC EOI hypercall:
     * without it the second would wait in IRR behind the first's ISR bit. */
    map_page(pd, LAPIC_BASE, LAPIC_BASE, PTE_P | PTE_W);
    lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | 0xFF);
    set_handler(V_SELF, self_ipi);
    pv_irq_enable();
    for (int k = 0; k < 2; k++) {
        lapic_write(LAPIC_ICRLO, ICR_SELF | V_SELF);
        for (volatile int i = 0; i < 100; i++) {
        }
    }
    pv_irq_disable();
    printf("EOI hypercall to the local APIC: self-IPIs taken %u of 2, in service in the handler %u, now %u\n",
           self_ipis, self_in_service, lapic_bit(LAPIC_ISR, V_SELF));
    set_handler(V_SELF, 0);
}

uint32_t nb_datacode(uint32_t n);
uint32_t nb_patch(uint32_t n);

int kmain(void) {
    uint32_t scale = arg_uint("scale", 1);
    if (arg_uint("pv", 0)) {
        use_pv = pv_detect();
        if (use_pv)
            printf("paravirt: CPUID 0x40000000 says popekpopekpv: hypercalls\n");
        else
            printf("paravirt: no popek hypervisor leaf: native instructions\n");
    }
    /* "n" absent: each loop's own count times scale. */
    uint32_t n_arg = arg_uint("n", 0xFFFFFFFFu);
    char only[16];
    int sel = -1;
    if (arg_str("only", only, sizeof only)) {
        for (int k = 0; k < NLOOPS; k++)
            if (!strcmp(only, loops[k])) sel = k;
        CHECK(sel >= 0,
              "only=%s: no such loop (syscall, portin, cr3, pagefault, callret, datacode, patch, irq, invlpg, "
              "console)",
              only);
    }
#define WANT(k) (sel < 0 || sel == (k))
#define COUNT(base) (n_arg != 0xFFFFFFFFu ? n_arg : (base) * scale)
    pd = pd_identity(PTE_P | PTE_W | PTE_U);
    map_page(pd, FAULT_VA, 0, 0); /* page table present, page not */
    paging_enable(pd);
    syscalls_install();
    set_handler(14, page_fault);
    if (use_pv && sel < 0) pv_checks(); /* not when timing one loop */

    uint32_t n;
    if (WANT(0)) {
        n = COUNT(10000);
        user_loops = n;
        uint32_t ok = user_run(user_syscall_loop, (uint32_t)(user_stack + sizeof user_stack));
        CHECK(ok == n, "syscall: %u of %u round trips returned the right value", ok, n);
        printf("syscall (int 0x80 from ring 3): %u iterations\n", n);
    }

    if (WANT(1)) {
        n = COUNT(10000);
        uint32_t acc = 0;
        for (uint32_t i = 0; i < n; i++) acc += inb(0x80);
        (void)acc;
        printf("port in (inb 0x80): %u iterations\n", n);
    }

    if (WANT(2)) {
        n = COUNT(10000);
        if (use_pv)
            for (uint32_t i = 0; i < n; i++) pv_set_cr3(read_cr3());
        else
            for (uint32_t i = 0; i < n; i++) write_cr3(read_cr3());
        printf("cr3 write: %u iterations\n", n);
    }

    if (WANT(3)) {
        n = COUNT(1000);
        for (uint32_t i = 0; i < n; i++) {
            *(volatile uint32_t *)(FAULT_VA + (i & 0x3FF) * 4) = i; /* faults, handler maps, resumes */
            *pte_of(pd, FAULT_VA) = 0;                             /* unmap again */
            flush_page(FAULT_VA);
        }
        CHECK(pf_count == n, "page fault: %u faults for %u iterations", pf_count, n);
        printf("page fault (fault, map, resume, unmap): %u iterations\n", n);
    }

    if (WANT(4)) {
        n = COUNT(100000);
        uint32_t x = 0;
        for (uint32_t i = 0; i < n; i++) x = leaf(x);
        CHECK(x == n, "call/ret: %u", x);
        printf("call/ret: %u iterations\n", n);
    }

    if (WANT(5)) {
        n = COUNT(10000);
        uint32_t sum = nb_datacode(n);
        CHECK(sum == (uint32_t)((uint64_t)n * (n + 1) / 2), "data beside code: %u", sum);
        printf("data beside code (a counter in the loop's page): %u iterations\n", n);
    }

    if (WANT(6)) {
        n = COUNT(10000);
        uint32_t sum = nb_patch(n);
        CHECK(sum == (uint32_t)((uint64_t)n * (n + 1) / 2), "patch: %u", sum);
        printf("patch and call (an imm32 in another page): %u iterations\n", n);
    }

    if (WANT(7)) {
        n = COUNT(10000);
        /* local_irq_disable(); local_irq_enable(): interrupts on around the loop, the PIC
         * masked, so none arrives. */
        if (use_pv) {
            pv_irq_enable();
            for (uint32_t i = 0; i < n; i++) {
                pv_irq_disable();
                pv_irq_enable();
            }
            pv_irq_disable();
        } else {
            sti();
            for (uint32_t i = 0; i < n; i++) {
                cli();
                sti();
            }
            cli();
        }
        printf("irq off/on (cli; sti): %u iterations\n", n);
    }

    if (WANT(8)) {
        n = COUNT(10000);
        uint32_t va = (uint32_t)scratch, sum = 0;
        for (uint32_t i = 0; i < n; i++) {
            flush_page(va);
            sum += *(volatile uint8_t *)(va + (i & 0xFFF)); /* refills the TLB entry */
        }
        CHECK(sum == 0, "invlpg: %u", sum);
        printf("invlpg and touch: %u iterations\n", n);
    }

    if (WANT(9)) {
        n = COUNT(4);
        for (uint32_t i = 0; i < n; i++) {
            if (use_pv)
                pv_console_write(console_line, sizeof console_line - 1);
            else
                puts(console_line);
        }
        printf("console write (32-byte lines): %u iterations\n", n);
    }
    return 0;
}
