/*
 * nanobench: tight loops of the operations whose cost a virtualizer cares about: a system
 * call round trip from ring 3, port IN, CR3 writes (TLB flushes), page faults (fault, map,
 * resume, unmap) and call/ret. Each prints only its iteration count, so the output is
 * deterministic; time it from outside (popek --stats, perf). "scale=N" multiplies the counts;
 * "only=NAME" (syscall, portin, cr3, pagefault, callret) runs just one loop and "n=N" sets the
 * iteration count of every loop that runs, for measuring one operation at a time.
 */
#include "rt.h"

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

static const char *const loops[7] = {"syscall", "portin", "cr3", "pagefault", "callret", "datacode", "patch"};

uint32_t nb_datacode(uint32_t n);
uint32_t nb_patch(uint32_t n);

int kmain(void) {
    uint32_t scale = arg_uint("scale", 1);
    /* "n" absent: each loop's own count times scale. */
    uint32_t n_arg = arg_uint("n", 0xFFFFFFFFu);
    char only[16];
    int sel = -1;
    if (arg_str("only", only, sizeof only)) {
        for (int k = 0; k < 7; k++)
            if (!strcmp(only, loops[k])) sel = k;
        CHECK(sel >= 0, "only=%s: no such loop (syscall, portin, cr3, pagefault, callret, datacode, patch)", only);
    }
#define WANT(k) (sel < 0 || sel == (k))
#define COUNT(base) (n_arg != 0xFFFFFFFFu ? n_arg : (base) * scale)
    pd = pd_identity(PTE_P | PTE_W | PTE_U);
    map_page(pd, FAULT_VA, 0, 0); /* page table present, page not */
    paging_enable(pd);
    syscalls_install();
    set_handler(14, page_fault);

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
        for (uint32_t i = 0; i < n; i++) write_cr3(read_cr3());
        printf("cr3 write: %u iterations\n", n);
    }

    if (WANT(3)) {
        n = COUNT(1000);
        for (uint32_t i = 0; i < n; i++) {
            *(volatile uint32_t *)(FAULT_VA + (i & 0x3FF) * 4) = i; /* faults, handler maps, resumes */
            *pte_of(pd, FAULT_VA) = 0;                             /* unmap again */
            invlpg(FAULT_VA);
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
    return 0;
}
