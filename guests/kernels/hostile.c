/*
 * hostile: what a guest sees when it reaches for what is not there. Physical memory
 * beyond the end of RAM (read, written, read again), a dword that straddles the top of
 * the 4 GiB address space, a page table beyond RAM, ICEBP (F1), a segment load
 * through a GDT whose limit is too small, a page table in VGA memory (MMIO), REP MOVS off
 * the end of RAM and into nothing, and a REP LODSB of 4 G elements that the timer
 * interrupts. Each case prints what the guest observed; nothing here may crash the
 * emulator or touch host memory.
 */
#include "rt.h"

const char guest_name[] = "hostile";

#define BEYOND_RAM 0x10000000u /* 256 MiB: the guest runs with 128 MiB */
#define PT_BEYOND_VA 0x40000000u
#define RAM_END 0x08000000u   /* 128 MiB */
#define VGA_TEXT 0x000b8000u
#define PT_VGA_VA 0x40400000u /* the next PDE's 4 MiB */

static volatile uint32_t ticks, ecx_at_stop;

/* IRQ 0: count; at the third tick end the REP LODSB underneath by zeroing its ECX. */
static void timer_tick(struct regs *r) {
    if (++ticks == 3) {
        ecx_at_stop = r->ecx;
        r->ecx = 0;
    }
    pic_eoi(0);
}

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

    /* 6. A page table in VGA text memory (MMIO): the walk reads it like any memory. The
     *    accessed bits are set beforehand: QEMU (8.x) loops for ever when its walk must set
     *    one in MMIO, and the SDM leaves a paging structure outside RAM to
     *    the platform (Vol. 3A 4.1.1: paging structures are "in physical memory"). */
    volatile uint32_t *vga_pt = (volatile uint32_t *)VGA_TEXT;
    uint32_t saved_vga = vga_pt[0];
    vga_pt[0] = 0x00300000u | PTE_P | PTE_W | PTE_A;
    wr(0x00300000u, 0x600dcafe);
    pd[PT_VGA_VA >> 22] = VGA_TEXT | PTE_P | PTE_W | PTE_A;
    paging_enable(pd);
    pf_count = 0;
    uint32_t via_vga = probe_read(PT_VGA_VA);
    write_cr0(read_cr0() & ~CR0_PG);
    vga_pt[0] = saved_vga;
    printf("page table in VGA memory: read %08x, %u #PF\n", via_vga, pf_count);

    /* 7. REP MOVSB across the end of RAM: 8 bytes of RAM, then 8 beyond it; and a copy
     *    into the space beyond RAM, read back. */
    static uint8_t buf[16];
    for (int i = 0; i < 8; i++) *(volatile uint8_t *)(RAM_END - 8 + i) = (uint8_t)(0xa0 + i);
    __asm__ volatile("cld; rep movsb" : : "S"(RAM_END - 8), "D"(buf), "c"(16) : "memory");
    printf("rep movsb across the end of RAM:");
    for (int i = 0; i < 16; i++) printf(" %02x", buf[i]);
    printf("\n");
    __asm__ volatile("cld; rep movsb" : : "S"(buf), "D"(BEYOND_RAM), "c"(16) : "memory");
    printf("rep movsb beyond RAM, read back: %08x %08x\n", rd(BEYOND_RAM), rd(BEYOND_RAM + 12));

    /* 8. REP LODSB over 4 G bytes with the PIT at 1 kHz: each element is interruptible, so
     *    the ticks arrive during it, and the third ends it. */
    set_handler(32, timer_tick);
    pit_set_periodic((uint16_t)(PIT_HZ / 1000));
    pic_set_mask(0xfffe);
    uint32_t ecx_after;
    __asm__ volatile("sti; cld; rep lodsb; cli" : "=c"(ecx_after) : "S"(0), "c"(0xffffffffu) : "eax", "memory");
    pic_set_mask(0xffff);
    printf("rep lodsb of 4 G bytes: ended by the timer at tick %u, with %s of its elements left, ECX then %u\n",
           ticks, ecx_at_stop > 0xff000000u ? "nearly all" : "few", ecx_after);
    return 0;
}
