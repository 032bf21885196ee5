/*
 * usermode: ring 3 entered with IRET, int 0x80 system calls, privileged instructions from
 * ring 3 (CLI, IN, OUT, HLT, MOV CR3 -> #GP(0)), INT to a DPL 0 gate (#GP with an IDT error
 * code), user access to a supervisor page (#PF with U|P in the error code), and the
 * Popek-Goldberg POPF case: ring-3 POPF that tries to clear IF leaves IF set, with no fault.
 */
#include "rt.h"

const char guest_name[] = "usermode";

static uint8_t user_stack[2 * PAGE_SIZE] __attribute__((aligned(4096)));
static volatile uint32_t kernel_secret[PAGE_SIZE / 4] __attribute__((aligned(4096)));

/* Faults taken in ring 3: the kernel handler prints them, then resumes via the exception table. */
static void user_fault(struct regs *r) {
    uint32_t eip = r->eip;
    if ((r->cs & 3) != 3) fail("kernel fault vector %u err %x eip %x", r->vector, r->err, eip);
    if (!fault_fixup(r)) fail("ring-3 fault vector %u err %x eip %x not in the exception table", r->vector, r->err, eip);
    if (r->vector == 14)
        printf("  kernel: #PF from CPL %u, err=%x (%s%s%s), cr2 is kernel_secret+%x\n", r->cs & 3, r->err,
               r->err & 4 ? "U" : "S", r->err & 2 ? "|W" : "|R", r->err & 1 ? "|P" : "|NP",
               read_cr2() - (uint32_t)kernel_secret);
    else
        printf("  kernel: #GP from CPL %u, err=%x\n", r->cs & 3, r->err);
}

static void usys_write(const char *s) { syscall1(SYS_WRITE, (uint32_t)s); }

/* Everything below runs in ring 3; it may only print through the syscall. */
static void user_main(void) {
    char buf[96];
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    snprintf(buf, sizeof buf, "ring 3: hello via int 0x80, CPL=%u\n", cs & 3);
    usys_write(buf);
    uint32_t r = syscall1(SYS_NOP, 41);
    snprintf(buf, sizeof buf, "ring 3: SYS_NOP(41) returned %u\n", r);
    usys_write(buf);

    usys_write("ring 3: CLI\n");
    __asm__ volatile("1: cli\n2:\n" EXTABLE("1b", "2b"));
    usys_write("ring 3: IN from port 0x80\n");
    __asm__ volatile("1: inb $0x80, %%al\n2:\n" EXTABLE("1b", "2b")::: "eax");
    usys_write("ring 3: OUT to port 0x80\n");
    __asm__ volatile("1: outb %%al, $0x80\n2:\n" EXTABLE("1b", "2b")::"a"(0));
    usys_write("ring 3: HLT\n");
    __asm__ volatile("1: hlt\n2:\n" EXTABLE("1b", "2b"));
    usys_write("ring 3: MOV CR3\n");
    __asm__ volatile("1: mov %%cr3, %%eax\n2:\n" EXTABLE("1b", "2b")::: "eax");
    usys_write("ring 3: INT 0x81 (gate DPL 0)\n");
    __asm__ volatile("1: int $0x81\n2:\n" EXTABLE("1b", "2b"));

    usys_write("ring 3: read a supervisor page\n");
    uint32_t v = 0;
    __asm__ volatile("1: movl (%1), %0\n2:\n" EXTABLE("1b", "2b") : "+r"(v) : "r"(&kernel_secret[3]));
    usys_write("ring 3: write a supervisor page\n");
    __asm__ volatile("1: movl %0, (%1)\n2:\n" EXTABLE("1b", "2b")::"r"(0x666u), "r"(&kernel_secret[5]) : "memory");

    /* POPF: CPL 3 > IOPL 0, so IF (and IOPL) are silently left alone. */
    uint32_t before = read_eflags(), after;
    __asm__ volatile("pushl %1\n popfl\n pushfl\n popl %0" : "=r"(after) : "r"(before & ~(EFLAGS_IF | EFLAGS_IOPL)) : "cc");
    snprintf(buf, sizeof buf, "ring 3: POPF clearing IF: IF before=%u after=%u\n", !!(before & EFLAGS_IF),
             !!(after & EFLAGS_IF));
    usys_write(buf);
    int ok = v == 0 && (after & EFLAGS_IF);
    __asm__ volatile("pushl %1\n popfl\n pushfl\n popl %0" : "=r"(after) : "r"(before | EFLAGS_IOPL) : "cc");
    ok = ok && !(after & EFLAGS_IOPL);
    snprintf(buf, sizeof buf, "ring 3: POPF setting IOPL=3: IOPL after=%u\n", (after & EFLAGS_IOPL) >> 12);
    usys_write(buf);
    syscall1(SYS_EXIT, ok ? 0x600d : 0xbad);
}

int kmain(void) {
    uint32_t *pd = pd_identity(PTE_P | PTE_W | PTE_U);
    *pte_of(pd, (uint32_t)kernel_secret) &= ~PTE_U;
    kernel_secret[3] = 0x5ec12e7;
    paging_enable(pd);
    printf("paging on: everything user-accessible except one supervisor page\n");
    syscalls_install();
    set_handler(13, user_fault);
    set_handler(14, user_fault);

    printf("entering ring 3 with IRET (IF=1, IOPL=0)\n");
    uint32_t ret = user_run(user_main, (uint32_t)(user_stack + sizeof user_stack));
    printf("back in ring 0, user_run returned %x\n", ret);
    CHECK(ret == 0x600d, "ring-3 checks failed (supervisor page read or POPF changed IF/IOPL)");
    CHECK(last_fault.count == 8, "expected 8 faults from ring 3, got %u", last_fault.count);
    CHECK(kernel_secret[5] == 0, "user write reached the supervisor page");
    printf("faults from ring 3: %u, syscalls: %u\n", last_fault.count, syscall_count);
    return 0;
}
