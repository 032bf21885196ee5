/*
 * The guest runtime's 64-bit division helpers, the ones gcc calls for 64-bit / and % on i386
 * (libgcc's names: the guests link no libgcc). A bit at a time, restoring shift-and-subtract.
 * rt.c includes this file in place; benches/lib.sh compiles it into the native build of the
 * guest workloads too, so that div64 runs the guest's own division natively as well.
 */
#include <stdint.h>

uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *rem) {
    if (d == 0) {
        /* Divide by zero: raise #DE like hardware would. */
        volatile uint32_t zero = 0;
        return (uint32_t)n / zero;
    }
    uint64_t q = 0, r = 0;
    if (rem) *rem = 0;
    for (int i = 63; i >= 0; i--) {
        r = (r << 1) | ((n >> i) & 1);
        if (r >= d) {
            r -= d;
            q |= 1ull << i;
        }
    }
    if (rem) *rem = r;
    return q;
}

uint64_t __udivdi3(uint64_t n, uint64_t d) { return __udivmoddi4(n, d, 0); }

uint64_t __umoddi3(uint64_t n, uint64_t d) {
    uint64_t r = 0;
    __udivmoddi4(n, d, &r);
    return r;
}

int64_t __divdi3(int64_t n, int64_t d) {
    int neg = (n < 0) ^ (d < 0);
    uint64_t q = __udivdi3(n < 0 ? -(uint64_t)n : (uint64_t)n, d < 0 ? -(uint64_t)d : (uint64_t)d);
    return neg ? -(int64_t)q : (int64_t)q;
}

int64_t __moddi3(int64_t n, int64_t d) {
    uint64_t r = __umoddi3(n < 0 ? -(uint64_t)n : (uint64_t)n, d < 0 ? -(uint64_t)d : (uint64_t)d);
    return n < 0 ? -(int64_t)r : (int64_t)r;
}
