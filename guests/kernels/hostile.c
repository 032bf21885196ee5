/*
 * hostile: what a guest sees when it reaches for what is not there. Physical memory
 * beyond the end of RAM (read, written, read again), a dword that straddles the top of
 * the 4 GiB address space, a page table beyond RAM, ICEBP (F1), and a segment load
 * through a GDT whose limit is too small. Each case prints what the guest observed;
 * nothing here may crash the emulator or touch host memory.
 */
#include "rt.h"

const char guest_name[] = "hostile";

#define BEYOND_RAM 0x10000000u /* 256 MiB: the guest runs with 128 MiB */
#define PT_BEYOND_VA 0x40000000u

static volatile uint32_t db_count, db_eip, ud_count, gp_count, gp_err, pf_count, pf_err;
static volatile uint32_t resume_at;

static void debug_trap(struct regs *r) {
    db_count++;
    db_eip = r->eip;
}

/* #UD: where ICEBP is not a debug exception; skip the one-byte instruction. */
static void invalid_opcode(struct regs *r) {
    if (*(volatile uint8_t *)r->eip != 0xf1) fail("#UD at %x", r->eip);
    ud_count++;
    r->eip++;
}

/* #GP and #PF: record, then continue at resume_at (set before each probe). */
static void general_protection(struct regs *r) {
    gp_count++;
    gp_err = r->err;
    r->eip = resume_at;
}

static void page_fault(struct regs *r) {
    pf_count++;
    pf_err = r->err;
    r->eip = resume_at;
}

static uint32_t rd(uint32_t pa) {
    __asm__("" : "+r"(pa)); /* hide address 0 from the compiler (a null dereference to gcc) */
    return *(volatile uint32_t *)pa;
}
static void wr(uint32_t pa, uint32_t v) { *(volatile uint32_t *)pa = v; }

/* Reads the dword at linear address `at`; faults resume with EAX = 0xdeadbeef. */
static uint32_t probe_read(uint32_t at) {
    uint32_t v;
    __asm__ volatile("movl $1f, resume_at\n"
                     "movl $0xdeadbeef, %%eax\n"
                     "movl (%1), %%eax\n"
                     "1:\n"
                     : "=&a"(v)
                     : "r"(at)
                     : "memory");
    return v;
}

int kmain(void) {
    set_handler(1, debug_trap);
    set_handler(6, invalid_opcode);
    set_handler(13, general_protection);
    set_handler(14, page_fault);

    /* 1. Beyond RAM, paging off. */
    uint32_t before = rd(BEYOND_RAM);
    wr(BEYOND_RAM, 0x12345678);
    uint32_t after = rd(BEYOND_RAM);
    printf("read beyond RAM: %08x, after a write: %08x\n", before, after);

    /* 2. A dword at 0xFFFFFFFE in a 4 GiB flat segment: bytes 0xFFFFFFFE..0x1. */
    gp_count = 0;
    uint32_t straddle = probe_read(0xfffffffeu);
    if (gp_count)
        printf("dword straddling 4 GiB: #GP(%x)\n", gp_err);
    else
        printf("dword straddling 4 GiB: no fault, high half = word at 0: %s\n",
               (straddle >> 16) == (rd(0) & 0xffff) ? "yes" : "no");

    /* 3. A page directory entry whose page table lies beyond RAM. */
    uint32_t *pd = pd_identity(PTE_P | PTE_W);
    pd[PT_BEYOND_VA >> 22] = BEYOND_RAM | PTE_P | PTE_W;
    paging_enable(pd);
    pf_count = 0;
    uint32_t through = probe_read(PT_BEYOND_VA);
    if (pf_count)
        printf("page table beyond RAM: #PF(%x)\n", pf_err);
    else
        printf("page table beyond RAM: read %08x\n", through);
    write_cr0(read_cr0() & ~CR0_PG);

    /* 4. ICEBP (F1): a debug exception, a trap (EIP after the instruction). */
    uint32_t after_icebp;
    __asm__ volatile("movl $1f, %0\n.byte 0xf1\n1:\n" : "=&r"(after_icebp)::"memory");
    if (ud_count)
        printf("ICEBP: #UD\n");
    else
        printf("ICEBP: #DB %u time(s), a trap (EIP after it): %s\n", db_count, db_eip == after_icebp ? "yes" : "no");

    /* 5. A segment load through a GDT too short for the selector: LGDT with limit 0x17
     *    (null, kernel code and data descriptors only), then MOV DS with selector 0x18.
     *    The handler's own selectors (0x08, 0x10) are still inside the limit. */
    struct __attribute__((packed)) {
        uint16_t limit;
        uint32_t base;
    } gdtr, small;
    __asm__ volatile("sgdt %0" : "=m"(gdtr));
    small = gdtr;
    small.limit = 0x17;
    gp_count = 0;
    __asm__ volatile("lgdt %0\n"
                     "movl $1f, resume_at\n"
                     "movw $0x18, %%ax\n"
                     "movw %%ax, %%ds\n"
                     "1:\n"
                     "lgdt %1\n"
                     :
                     : "m"(small), "m"(gdtr)
                     : "eax", "memory");
    printf("MOV DS, 0x18 with GDT limit 0x17: #GP(%x), %u time(s)\n", gp_err, gp_count);
    return 0;
}
