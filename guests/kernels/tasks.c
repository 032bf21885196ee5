/*
 * tasks: hardware task switches (SDM Vol. 3A chapter 7). Two more 32-bit TSSs beside the
 * runtime's: a far JMP to a TSS and back, a far CALL through a task gate (the callee sees
 * NT and its back link, IRET returns and clears the busy bit), INT n through a task gate
 * in the IDT, #GP through a task gate (the error code on the handler task's stack; the
 * handler repairs the register the fault came from in the interrupted task's TSS, and
 * IRET re-runs the faulting instruction), CR0.TS after each switch, and a JMP to a busy
 * TSS (#GP with its selector). Each task has its own stack and page directory (CR3).
 */
#include "rt.h"

const char guest_name[] = "tasks";

#define SEL_MAIN 0x28 /* the runtime's TSS */
#define SEL_A 0x30
#define SEL_B 0x38
#define SEL_GATE_B 0x40 /* task gate in the GDT leading to B */
#define VEC_INT 0x81    /* INT 0x81 through a task gate to B */
#define VEC_GP 13
#define BAD_SEL 0x1234
#define TSS_BUSY 0x0200u /* type bit 1 in the descriptor's high dword */

static struct tss tss_a __attribute__((aligned(128)));
static struct tss tss_b __attribute__((aligned(128)));
static uint8_t stack_a[4096] __attribute__((aligned(16)));
static uint8_t stack_b[4096] __attribute__((aligned(16)));

volatile uint32_t log_tr, log_eflags, log_link, log_err, runs;

static inline uint16_t str(void) {
    uint16_t v;
    __asm__ volatile("str %0" : "=r"(v));
    return v;
}

static inline void clts(void) { __asm__ volatile("clts"); }

/* The GDT entry for `sel`, as the CPU sees it. */
static volatile uint32_t *gdt_entry(uint16_t sel) {
    struct {
        uint16_t limit;
        uint32_t base;
    } __attribute__((packed)) g;
    __asm__ volatile("sgdt %0" : "=m"(g));
    return (volatile uint32_t *)(g.base + sel);
}

static uint32_t gdt_hi(uint16_t sel) { return gdt_entry(sel)[1]; }

static void task_init(struct tss *t, void (*entry)(void), uint8_t *stack) {
    for (unsigned i = 0; i < sizeof *t; i++) ((volatile uint8_t *)t)[i] = 0;
    t->eip = (uint32_t)entry;
    t->eflags = 0x2; /* interrupts off in the task */
    t->esp = (uint32_t)(stack + 4096);
    t->cs = 0x08;
    t->ss = t->ds = t->es = t->fs = t->gs = 0x10;
    t->cr3 = read_cr3();
    t->iomap_base = sizeof *t;
}

/* Task A: entered by JMP; notes what it sees and JMPs back to the main task. */
static void task_a(void) {
    for (;;) {
        log_tr = str();
        log_eflags = read_eflags();
        runs++;
        __asm__ volatile("ljmp $0x28, $0" ::: "memory");
    }
}

/* Task B: entered by CALL or INT through a gate; returns with IRET (NT set). */
static void task_b(void) {
    for (;;) {
        log_tr = str();
        log_eflags = read_eflags();
        log_link = ((volatile struct tss *)&tss_b)->link;
        runs++;
        __asm__ volatile("iret" ::: "memory");
    }
}

/* The #GP task: takes the error code from its stack, repairs the faulting MOV's
 * source register (EAX) in the interrupted task's TSS, and returns. In assembly: the
 * error code is the first thing on the task's stack. */
extern void task_gp(void);
__asm__(".text\n"
        "task_gp:\n"
        "    popl log_err\n"
        "    str %ax\n"
        "    movzwl %ax, %eax\n"
        "    movl %eax, log_tr\n"
        "    movl $0x10, rt_tss + 40\n" /* the EAX field */
        "    incl runs\n"
        "    iret\n"
        "    jmp task_gp\n");

int kmain(void) {
    /* One page directory per task would do; the same CR3 value is what a kernel uses
     * for kernel tasks. Paging is off here, so CR3 is saved and not loaded. */
    task_init(&tss_a, task_a, stack_a);
    task_init(&tss_b, task_b, stack_b);
    gdt_set(SEL_A / 8, (uint32_t)&tss_a, sizeof tss_a - 1, 0x89, 0);
    gdt_set(SEL_B / 8, (uint32_t)&tss_b, sizeof tss_b - 1, 0x89, 0);
    /* A task gate: the TSS selector in bits 16-31 of the low dword; type 5, present, DPL 0. */
    gdt_entry(SEL_GATE_B)[0] = (uint32_t)SEL_B << 16;
    gdt_entry(SEL_GATE_B)[1] = 0x8500;
    CHECK(str() == SEL_MAIN, "TR is %x at start", str());

    /* JMP to a TSS: the old task is no longer busy, the new one is; no nesting. */
    clts();
    __asm__ volatile("ljmp $0x30, $0" ::: "memory");
    CHECK(runs == 1, "task A did not run");
    CHECK(log_tr == SEL_A, "TR in task A: %x", log_tr);
    CHECK(!(log_eflags & 0x4000), "NT set in a task entered by JMP");
    CHECK(str() == SEL_MAIN, "TR back in main: %x", str());
    CHECK(read_cr0() & 8, "CR0.TS clear after a task switch");
    CHECK(!(gdt_hi(SEL_A) & TSS_BUSY), "task A still busy after it jumped away");
    CHECK(gdt_hi(SEL_MAIN) & TSS_BUSY, "main TSS not busy while running");
    printf("jmp to a TSS and back: TR %x then %x, no NT, CR0.TS set\n", log_tr, str());

    /* JMP again: A resumes where it left off (after its own JMP). */
    __asm__ volatile("ljmp $0x30, $0" ::: "memory");
    CHECK(runs == 2, "task A did not resume");
    printf("jmp again: task A resumes after its own jmp\n");

    /* CALL through a task gate: B is nested (NT, back link), IRET returns. */
    __asm__ volatile("lcall $0x40, $0" ::: "memory");
    CHECK(runs == 3, "task B did not run");
    CHECK(log_tr == SEL_B, "TR in task B: %x", log_tr);
    CHECK(log_eflags & 0x4000, "NT clear in a called task");
    CHECK(log_link == SEL_MAIN, "back link %x", log_link);
    CHECK(!(gdt_hi(SEL_B) & TSS_BUSY), "task B busy after its IRET");
    CHECK(!(read_eflags() & 0x4000), "NT set in main after the return");
    printf("call through a task gate: NT set, back link %x, iret returns\n", log_link);

    /* INT n through a task gate in the IDT. */
    idt_set_gate(VEC_INT, 0, SEL_B, 0x85);
    __asm__ volatile("int $0x81" ::: "memory");
    CHECK(runs == 4, "INT 0x81 did not reach task B");
    CHECK(log_eflags & 0x4000, "NT clear in a task entered by INT");
    printf("int 0x81 through a task gate: task B runs nested\n");

    /* #GP through a task gate: error code on the new task's stack; the handler fixes EAX
     * in the interrupted task's TSS and the MOV is re-run. */
    static struct tss tss_gp __attribute__((aligned(128)));
    static uint8_t stack_gp[4096] __attribute__((aligned(16)));
    task_init(&tss_gp, task_gp, stack_gp);
    gdt_set(9, (uint32_t)&tss_gp, sizeof tss_gp - 1, 0x89, 0);
    idt_set_gate(VEC_GP, 0, 9 * 8, 0x85);
    uint32_t es, sel = BAD_SEL;
    __asm__ volatile("mov %1, %%es\n\tmov %%es, %0" : "=r"(es), "+a"(sel) : : "memory");
    CHECK(runs == 5, "#GP did not reach its task");
    CHECK(log_err == (BAD_SEL & ~3u), "#GP error code %x", log_err);
    CHECK(log_tr == 9 * 8, "TR in the #GP task: %x", log_tr);
    CHECK(es == 0x10 && sel == 0x10, "ES after the repaired MOV: %x (EAX %x)", es, sel);
    __asm__ volatile("mov %0, %%es" ::"r"(0x10));
    idt_set_gate(VEC_GP, isr_stub(VEC_GP), 0x08, IDT_GATE_INT);
    printf("#GP through a task gate: error code %x on the task's stack, MOV re-run\n", log_err);

    /* JMP to a busy TSS (the one running): #GP(selector). */
    uint32_t n = last_fault.count;
    __asm__ volatile("1: ljmp $0x28, $0\n2:\n" EXTABLE("1b", "2b") ::: "memory");
    CHECK(last_fault.count == n + 1 && last_fault.vector == 13, "no #GP for a busy TSS");
    CHECK(last_fault.err == SEL_MAIN, "#GP error code %x", last_fault.err);
    printf("jmp to the busy TSS: #GP(%x)\n", last_fault.err);
    return 0;
}
