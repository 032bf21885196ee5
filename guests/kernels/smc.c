/*
 * smc: self-modifying code. Patches an instruction's immediate and runs it (also in a hot
 * loop), a store that rewrites the very next instruction, writes through a second virtual
 * alias of the code page (and execution through the alias), and REP STOSB / REP MOVSB that
 * overwrite the instructions right after themselves. The CPU must always run the new bytes.
 */
#include "rt.h"

const char guest_name[] = "smc";

extern char smc_page[], smc_imm_value[], smc_stos_patch[], smc_movs_dst[], smc_sled_start[];
extern uint32_t smc_imm(void), smc_next(uint32_t), smc_stos(void), smc_movs(void), smc_sled(void);

#define ALIAS_VA 0x00800000u

static uint8_t stos_orig[2], movs_orig[5], sled_orig[64];

static void patch32(volatile uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void restore(void) {
    memcpy(smc_stos_patch, stos_orig, sizeof stos_orig);
    memcpy(smc_movs_dst, movs_orig, sizeof movs_orig);
    memcpy(smc_sled_start, sled_orig, sizeof sled_orig);
}

int kmain(void) {
    memcpy(stos_orig, smc_stos_patch, sizeof stos_orig);
    memcpy(movs_orig, smc_movs_dst, sizeof movs_orig);
    memcpy(sled_orig, smc_sled_start, sizeof sled_orig);

    /* 1. Patch the immediate of MOV EAX, imm32 and run it again. */
    uint32_t a = smc_imm();
    patch32((volatile uint8_t *)smc_imm_value, 0x22222222);
    uint32_t b = smc_imm();
    printf("patched immediate: %x -> %x\n", a, b);
    CHECK(a == 0x11111111 && b == 0x22222222, "patched immediate not seen");

    /* 2. Hot loop: the function is patched between every call. */
    uint32_t sum = 0, bad = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        patch32((volatile uint8_t *)smc_imm_value, i * 7 + 1);
        uint32_t v = smc_imm();
        bad += v != i * 7 + 1;
        sum += v;
    }
    printf("1000 patch+call rounds: sum %u, stale results %u\n", sum, bad);
    CHECK(bad == 0, "stale code executed");

    /* 3. A store that rewrites the next instruction. */
    uint32_t n1 = smc_next(0x1234), n2 = smc_next(0x5678);
    printf("store into the next instruction: %x, %x\n", n1, n2);
    CHECK(n1 == 0x1234 && n2 == 0x5678, "store to the next instruction not seen");

    /* 4. String stores over the instructions that follow them (run each three times). */
    for (int round = 0; round < 3; round++) {
        restore();
        uint32_t s = smc_stos(), m = smc_movs(), l = smc_sled();
        printf("round %d: rep stosb over JMP -> %x, rep movsb over MOV -> %x, rep stosb over INC sled -> %u\n", round,
               s, m, l);
        CHECK(s == 0x600d && m == 0x600d && l == 0, "string store over following code not seen");
    }

    /* 5. A second virtual alias of the code page: patch through one address, run the other. */
    uint32_t *pd = pd_identity(PTE_P | PTE_W);
    map_page(pd, ALIAS_VA, (uint32_t)smc_page, PTE_P | PTE_W);
    paging_enable(pd);
    uint32_t off = (uint32_t)smc_imm_value - (uint32_t)smc_page;
    uint32_t (*imm_alias)(void) = (uint32_t(*)(void))(ALIAS_VA + ((uint32_t)smc_imm - (uint32_t)smc_page));
    for (uint32_t i = 0; i < 3; i++) {
        patch32((volatile uint8_t *)(ALIAS_VA + off), 0xa0000000 + i);
        uint32_t via_identity = smc_imm();
        patch32((volatile uint8_t *)smc_imm_value, 0xb0000000 + i);
        uint32_t via_alias = imm_alias();
        printf("alias round %u: patched via alias, ran identity: %x; patched via identity, ran alias: %x\n", i,
               via_identity, via_alias);
        CHECK(via_identity == 0xa0000000 + i && via_alias == 0xb0000000 + i, "patch through alias not seen");
    }
    return 0;
}
