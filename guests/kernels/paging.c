/*
 * paging: two-level page tables, a PSE 4 MiB page, aliases (one frame at two virtual
 * addresses), INVLPG and CR3 reloads after remapping, accessed/dirty bits, and #PF
 * handling that maps the missing page and resumes the faulting instruction.
 */
#include "rt.h"

const char guest_name[] = "paging";

#define ALIAS_VA 0x00800000u /* 4 KiB page, remapped between two frames */
#define PSE_VA 0x00400000u   /* 4 MiB page, identity */
#define PSE_ALIAS 0x00C00000u /* 4 MiB page mapping the same frame as PSE_VA */
#define DEMAND_VA 0x01000000u /* nothing mapped until the #PF handler maps it */

static uint8_t frame_a[PAGE_SIZE] __attribute__((aligned(4096)));
static uint8_t frame_b[PAGE_SIZE] __attribute__((aligned(4096)));
static uint32_t *pd;

static volatile uint32_t pf_count, pf_err, pf_cr2;

static void page_fault(struct regs *r) {
    uint32_t cr2 = read_cr2();
    pf_count++;
    pf_err = r->err;
    pf_cr2 = cr2;
    if (cr2 < DEMAND_VA || cr2 >= DEMAND_VA + 0x10000) fail("unexpected #PF at %x err %x eip %x", cr2, r->err, r->eip);
    uint32_t *pte = pte_of(pd, cr2);
    if (pte && (*pte & PTE_P))
        *pte |= PTE_W; /* protection fault: make the page writable */
    else
        map_page(pd, cr2, (uint32_t)page_alloc(), PTE_P | PTE_W); /* demand-map a fresh frame */
    invlpg(cr2);
    /* Return without touching EIP: the faulting instruction runs again. */
}

static uint32_t rd(uint32_t va) { return *(volatile uint32_t *)va; }
static void wr(uint32_t va, uint32_t v) { *(volatile uint32_t *)va = v; }
static const char *yn(int b) { return b ? "yes" : "NO"; }

int kmain(void) {
    pd = pd_identity(PTE_P | PTE_W);
    pd[PSE_VA >> 22] = PSE_VA | PTE_P | PTE_W | PTE_PS;
    pd[PSE_ALIAS >> 22] = PSE_VA | PTE_P | PTE_W | PTE_PS;
    map_page(pd, ALIAS_VA, (uint32_t)frame_a, PTE_P | PTE_W);
    write_cr4(read_cr4() | CR4_PSE);
    paging_enable(pd);
    CHECK(read_cr0() & CR0_PG, "CR0.PG not set");
    printf("paging on: 0-4 MiB identity (4 KiB pages), 4-8 MiB one PSE 4 MiB page\n");

    /* 1. Aliasing: frame_a is at its identity address and at ALIAS_VA. */
    wr(ALIAS_VA + 0x10, 0x12345678);
    CHECK(*(volatile uint32_t *)(frame_a + 0x10) == 0x12345678, "alias write not seen at identity address");
    *(volatile uint32_t *)(frame_a + 0x20) = 0x9abcdef0;
    CHECK(rd(ALIAS_VA + 0x20) == 0x9abcdef0, "identity write not seen through alias");
    printf("alias 4 KiB: write through one address, read through the other: %s\n", yn(1));

    /* 2. PSE: the 4 MiB page at 4 MiB is also mapped at 12 MiB. */
    wr(PSE_VA + 0x1234, 0xcafebabe);
    CHECK(rd(PSE_ALIAS + 0x1234) == 0xcafebabe, "PSE alias read %x", rd(PSE_ALIAS + 0x1234));
    wr(PSE_ALIAS + 0x3ffffc, 0x0badf00d);
    CHECK(rd(PSE_VA + 0x3ffffc) == 0x0badf00d, "PSE alias write not seen");
    printf("alias 4 MiB PSE page: %x %x\n", rd(PSE_ALIAS + 0x1234), rd(PSE_VA + 0x3ffffc));

    /* 3. Remap ALIAS_VA from frame_a to frame_b: INVLPG, then CR3 reload. */
    *(volatile uint32_t *)frame_a = 0xaaaaaaaa;
    *(volatile uint32_t *)frame_b = 0xbbbbbbbb;
    uint32_t before = rd(ALIAS_VA);
    *pte_of(pd, ALIAS_VA) = (uint32_t)frame_b | PTE_P | PTE_W;
    invlpg(ALIAS_VA);
    uint32_t after = rd(ALIAS_VA);
    CHECK(before == 0xaaaaaaaa && after == 0xbbbbbbbb, "INVLPG remap: %x -> %x", before, after);
    printf("remap + INVLPG: %x -> %x\n", before, after);
    *pte_of(pd, ALIAS_VA) = (uint32_t)frame_a | PTE_P | PTE_W;
    write_cr3(read_cr3());
    after = rd(ALIAS_VA);
    CHECK(after == 0xaaaaaaaa, "CR3 reload remap: %x", after);
    printf("remap + CR3 reload: %x -> %x\n", 0xbbbbbbbbu, after);

    /* 4. Accessed and dirty bits, 4 KiB page and 4 MiB page. */
    uint32_t *pte = pte_of(pd, ALIAS_VA);
    *pte &= ~(PTE_A | PTE_D);
    pd[ALIAS_VA >> 22] &= ~PTE_A;
    invlpg(ALIAS_VA);
    printf("4 KiB PTE after clearing: A=%u D=%u\n", !!(*pte & PTE_A), !!(*pte & PTE_D));
    (void)rd(ALIAS_VA + 8);
    printf("4 KiB PTE after a read:   A=%u D=%u (PDE A=%u)\n", !!(*pte & PTE_A), !!(*pte & PTE_D),
           !!(pd[ALIAS_VA >> 22] & PTE_A));
    CHECK((*pte & (PTE_A | PTE_D)) == PTE_A && (pd[ALIAS_VA >> 22] & PTE_A), "A/D after read");
    wr(ALIAS_VA + 8, 1);
    printf("4 KiB PTE after a write:  A=%u D=%u\n", !!(*pte & PTE_A), !!(*pte & PTE_D));
    CHECK((*pte & (PTE_A | PTE_D)) == (PTE_A | PTE_D), "A/D after write");
    uint32_t *pde = &pd[PSE_ALIAS >> 22];
    *pde &= ~(PTE_A | PTE_D);
    invlpg(PSE_ALIAS);
    (void)rd(PSE_ALIAS + 0x5000);
    printf("4 MiB PDE after a read:   A=%u D=%u\n", !!(*pde & PTE_A), !!(*pde & PTE_D));
    CHECK((*pde & (PTE_A | PTE_D)) == PTE_A, "PSE A/D after read");
    wr(PSE_ALIAS + 0x5000, 2);
    printf("4 MiB PDE after a write:  A=%u D=%u\n", !!(*pde & PTE_A), !!(*pde & PTE_D));
    CHECK((*pde & (PTE_A | PTE_D)) == (PTE_A | PTE_D), "PSE A/D after write");

    /* 5. Page faults fixed up by the handler; the faulting instruction is restarted. */
    set_handler(14, page_fault);
    wr(DEMAND_VA + 0x10, 0x11111111);
    printf("#PF write, no page table:   cr2=%x err=%x, resumed, read back %x\n", pf_cr2, pf_err, rd(DEMAND_VA + 0x10));
    CHECK(pf_count == 1 && pf_cr2 == DEMAND_VA + 0x10 && pf_err == 2, "first #PF");
    uint32_t v = rd(DEMAND_VA + 0x1020);
    printf("#PF read, PTE not present:  cr2=%x err=%x, resumed, read %x\n", pf_cr2, pf_err, v);
    CHECK(pf_count == 2 && pf_cr2 == DEMAND_VA + 0x1020 && pf_err == 0 && v == 0, "second #PF");
    map_page(pd, DEMAND_VA + 0x2000, (uint32_t)page_alloc(), PTE_P); /* read-only */
    CHECK(rd(DEMAND_VA + 0x2000) == 0 && pf_count == 2, "read of a read-only page faulted");
    wr(DEMAND_VA + 0x2ffc, 0x22222222);
    printf("#PF write, read-only (WP=1): cr2=%x err=%x, resumed, read back %x\n", pf_cr2, pf_err,
           rd(DEMAND_VA + 0x2ffc));
    CHECK(pf_count == 3 && pf_cr2 == DEMAND_VA + 0x2ffc && pf_err == 3, "third #PF");
    /* A 4-byte access that straddles into an unmapped page faults on the second page. */
    uint32_t straddle = DEMAND_VA + 0x3ffe;
    map_page(pd, DEMAND_VA + 0x3000, (uint32_t)page_alloc(), PTE_P | PTE_W);
    wr(straddle, 0x44332211);
    printf("#PF write straddling into an unmapped page: cr2=%x err=%x, resumed\n", pf_cr2, pf_err);
    CHECK(pf_count == 4 && pf_cr2 == DEMAND_VA + 0x4000 && pf_err == 2, "fourth #PF");
    CHECK(rd(straddle) == 0x44332211, "straddling write lost");
    printf("page faults handled: %u\n", pf_count);

    /* The BIOS area 0xF0000-0xFFFFF is ROM on a PC: stores of every kind change nothing
     * (identity-mapped, writable in the page tables). */
    volatile uint32_t *bios = (volatile uint32_t *)0xF0010;
    uint32_t rom_word = *bios;
    *bios = ~rom_word;
    *(volatile uint8_t *)0xFFFFF = (uint8_t)~*(volatile uint8_t *)0xFFFFF;
    uint8_t last = *(volatile uint8_t *)0xFFFFF;
    __asm__ volatile("cld; rep stosb" : : "D"(0xF0100u), "c"(64u), "a"(0x5Au) : "memory");
    int same = *bios == rom_word && *(volatile uint8_t *)0xF0100 != 0x5A && last == *(volatile uint8_t *)0xFFFFF;
    printf("BIOS area 0xF0000-0xFFFFF is read-only: %s\n", same ? "yes" : "no");
    return 0;
}
