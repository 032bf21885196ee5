/*
 * codesize: 8,192 distinct small functions, for measuring how a translator copes with much
 * code run once per pass (translation cache size, block lookup, indirect calls).
 * "funcs=N iters=M" (defaults 8192 and 1) calls functions 0..N-1, in order, through a table
 * of pointers, M times over; each pass folds the results into a checksum, which must be the
 * same every pass and is printed once. Each function is a few arithmetic operations on its
 * own constants (derived from its index), so no two have the same code.
 */
#include "rt.h"

const char guest_name[] = "codesize";

#define NFUNCS 8192

/*
 * Function number K is f_1bbbbbbbbbbbbb, its 13 binary digits b those of K: the macros below
 * paste digits onto a leading 1, thirteen levels deep, so the preprocessor writes all 8,192.
 * K = 0b1bbb... - 8192. The constants: an odd multiplier times K (distinct for every K), a
 * rotation count and an addend that move with K.
 */
#define K_OF(b) (0b##b - NFUNCS)
#define FN(b)                                                                \
    static uint32_t f_##b(uint32_t x) {                                      \
        uint32_t k = (uint32_t)K_OF(b);                                      \
        x ^= k * 0x9E3779B1u;                                                \
        x = (x << (k % 29 + 1)) | (x >> (31 - k % 29));                      \
        return x * (2 * k + 3) + (k * 0x85EBCA77u ^ 0x27D4EB2Fu);            \
    }
#define FN1(b) FN(b##0) FN(b##1)
#define FN2(b) FN1(b##0) FN1(b##1)
#define FN3(b) FN2(b##0) FN2(b##1)
#define FN4(b) FN3(b##0) FN3(b##1)
#define FN5(b) FN4(b##0) FN4(b##1)
#define FN6(b) FN5(b##0) FN5(b##1)
#define FN7(b) FN6(b##0) FN6(b##1)
#define FN8(b) FN7(b##0) FN7(b##1)
#define FN9(b) FN8(b##0) FN8(b##1)
#define FN10(b) FN9(b##0) FN9(b##1)
#define FN11(b) FN10(b##0) FN10(b##1)
#define FN12(b) FN11(b##0) FN11(b##1)
#define FN13(b) FN12(b##0) FN12(b##1)
FN13(1)

/* The table, in the same order: entry K is f_ with K's digits. */
#define TAB(b) f_##b,
#define TAB1(b) TAB(b##0) TAB(b##1)
#define TAB2(b) TAB1(b##0) TAB1(b##1)
#define TAB3(b) TAB2(b##0) TAB2(b##1)
#define TAB4(b) TAB3(b##0) TAB3(b##1)
#define TAB5(b) TAB4(b##0) TAB4(b##1)
#define TAB6(b) TAB5(b##0) TAB5(b##1)
#define TAB7(b) TAB6(b##0) TAB6(b##1)
#define TAB8(b) TAB7(b##0) TAB7(b##1)
#define TAB9(b) TAB8(b##0) TAB8(b##1)
#define TAB10(b) TAB9(b##0) TAB9(b##1)
#define TAB11(b) TAB10(b##0) TAB10(b##1)
#define TAB12(b) TAB11(b##0) TAB11(b##1)
#define TAB13(b) TAB12(b##0) TAB12(b##1)
static uint32_t (*const funcs[NFUNCS])(uint32_t) = {TAB13(1)};

/* One pass: every function 0..n-1 once, each fed the running checksum. */
static uint32_t pass(uint32_t n) {
    uint32_t sum = 0x12345678u;
    for (uint32_t i = 0; i < n; i++) sum = (sum << 5 | sum >> 27) ^ funcs[i](sum + i);
    return sum;
}

int kmain(void) {
    uint32_t n = arg_uint("funcs", NFUNCS);
    uint32_t iters = arg_uint("iters", 1);
    CHECK(n >= 1 && n <= NFUNCS, "funcs=%u: must be 1 to %u", n, NFUNCS);
    CHECK(iters >= 1, "iters must be at least 1");
    printf("codesize: funcs=%u iters=%u\n", n, iters);
    uint32_t first = pass(n);
    for (uint32_t it = 1; it < iters; it++) {
        uint32_t sum = pass(n);
        CHECK(sum == first, "pass %u: checksum %08x != %08x", it, sum, first);
    }
    printf("checksum: %08x\n", first);
    return 0;
}
