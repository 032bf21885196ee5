/*
 * compute: an integer benchmark. Sieve of Eratosthenes, table-driven CRC32, quicksort of an
 * LCG sequence, integer matrix multiply, string operations (REP MOVS/STOS and byte loops) and
 * 64-bit division, each printing a checksum. "iters=N" on the command line repeats the whole
 * set N times (default 1); every round must give the same checksums. "only=NAME" (sieve, crc32,
 * sort, matmul, string, div64) runs just that workload, for measuring one at a time.
 */
#include "rt.h"

const char guest_name[] = "compute";

#define SIEVE_N 200000
#define CRC_BYTES 65536
#define SORT_N 20000
#define MAT_N 48
#define STR_BYTES 32768

static uint8_t composite[SIEVE_N];
static uint8_t crc_buf[CRC_BYTES];
static uint32_t crc_table[256];
static int32_t sort_buf[SORT_N];
static int32_t ma[MAT_N][MAT_N], mb[MAT_N][MAT_N], mc[MAT_N][MAT_N];
static char str_a[STR_BYTES], str_b[STR_BYTES];

static uint32_t lcg_state;
static uint32_t lcg(void) { return lcg_state = lcg_state * 1103515245u + 12345u; }

static uint32_t sieve(void) {
    memset(composite, 0, sizeof composite);
    uint32_t count = 0;
    for (uint32_t i = 2; i < SIEVE_N; i++) {
        if (composite[i]) continue;
        count++;
        for (uint32_t j = i * 2; j < SIEVE_N; j += i) composite[j] = 1;
    }
    return count;
}

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32(const uint8_t *p, uint32_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n--) c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static void quicksort(int32_t *a, int lo, int hi) {
    while (lo < hi) {
        int32_t pivot = a[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                int32_t t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        /* Recurse into the smaller half, loop on the larger one. */
        if (j - lo < hi - i) {
            quicksort(a, lo, j);
            lo = i;
        } else {
            quicksort(a, i, hi);
            hi = j;
        }
    }
}

static uint32_t sort_bench(int *sorted) {
    lcg_state = 42;
    for (int i = 0; i < SORT_N; i++) sort_buf[i] = (int32_t)lcg() >> 4;
    quicksort(sort_buf, 0, SORT_N - 1);
    uint32_t sum = 0;
    *sorted = 1;
    for (int i = 0; i < SORT_N; i++) {
        sum = sum * 31 + (uint32_t)sort_buf[i];
        if (i && sort_buf[i - 1] > sort_buf[i]) *sorted = 0;
    }
    return sum;
}

static uint32_t matmul(void) {
    lcg_state = 7;
    for (int i = 0; i < MAT_N; i++)
        for (int j = 0; j < MAT_N; j++) {
            ma[i][j] = (int32_t)(lcg() >> 20) - 2048;
            mb[i][j] = (int32_t)(lcg() >> 20) - 2048;
        }
    for (int i = 0; i < MAT_N; i++)
        for (int j = 0; j < MAT_N; j++) {
            int32_t s = 0;
            for (int k = 0; k < MAT_N; k++) s += ma[i][k] * mb[k][j];
            mc[i][j] = s;
        }
    uint32_t sum = 0;
    for (int i = 0; i < MAT_N; i++)
        for (int j = 0; j < MAT_N; j++) sum = (sum << 3 | sum >> 29) ^ (uint32_t)mc[i][j];
    return sum;
}

static uint32_t string_bench(void) {
    uint32_t sum = 0;
    memset(str_a, 'x', STR_BYTES - 1);
    str_a[STR_BYTES - 1] = 0;
    for (uint32_t cut = 1; cut < STR_BYTES; cut = cut * 3 + 1) {
        str_a[cut] = 0;
        sum += (uint32_t)strlen(str_a);
        str_a[cut] = 'x';
    }
    for (uint32_t i = 0; i < STR_BYTES; i++) str_b[i] = (char)('a' + i % 26);
    for (uint32_t len = 1; len < STR_BYTES; len *= 2) {
        memcpy(str_a, str_b + (len & 7), len);
        sum = sum * 33 + crc32((const uint8_t *)str_a, len);
    }
    /* Doubleword string moves and stores. */
    uint32_t n = STR_BYTES / 4;
    void *d = str_a, *s = str_b;
    __asm__ volatile("cld; rep movsl" : "+D"(d), "+S"(s), "+c"(n)::"memory");
    sum ^= crc32((const uint8_t *)str_a, STR_BYTES);
    n = STR_BYTES / 8, d = str_a;
    __asm__ volatile("cld; rep stosl" : "+D"(d), "+c"(n) : "a"(0x41424344u) : "memory");
    sum ^= crc32((const uint8_t *)str_a, STR_BYTES);
    sum += (uint32_t)memcmp(str_a, str_b, STR_BYTES) + (uint32_t)strcmp("popek", "popel");
    return sum;
}

static uint32_t div64_bench(uint32_t *q_lo, uint32_t *r) {
    uint64_t n = 1000000000000000000ull; /* 10^18 */
    uint64_t q = n / 7;
    *q_lo = (uint32_t)(q % 1000000000u);
    *r = (uint32_t)(n % 7);
    uint64_t acc = 0;
    lcg_state = 99;
    for (int i = 0; i < 200; i++) {
        uint64_t hi = lcg();
        uint64_t a = (hi << 32) | lcg();
        uint64_t b = (lcg() >> 8) + 1;
        int64_t sa = (int64_t)a, sb = -(int64_t)b;
        acc += a / b + a % b + (uint64_t)(sa / sb) + (uint64_t)(sa % sb);
    }
    return (uint32_t)acc ^ (uint32_t)(acc >> 32);
}

/* The workloads, in the order they run and print; "only=NAME" runs just one of them. */
static const char *const workloads[6] = {"sieve", "crc32", "sort", "matmul", "string", "div64"};
static uint32_t sorted, q_lo, rem;

static uint32_t run_workload(int k) {
    switch (k) {
    case 0:
        return sieve();
    case 1:
        lcg_state = 1;
        for (int i = 0; i < CRC_BYTES; i++) crc_buf[i] = (uint8_t)(lcg() >> 24);
        return crc32(crc_buf, CRC_BYTES);
    case 2: {
        int ok;
        uint32_t sum = sort_bench(&ok);
        sorted = (uint32_t)ok;
        return sum;
    }
    case 3:
        return matmul();
    case 4:
        return string_bench();
    default:
        return div64_bench(&q_lo, &rem);
    }
}

int kmain(void) {
    uint32_t iters = arg_uint("iters", 1);
    CHECK(iters >= 1, "iters must be at least 1");
    char only[16];
    int sel = -1;
    if (arg_str("only", only, sizeof only)) {
        for (int k = 0; k < 6; k++)
            if (!strcmp(only, workloads[k])) sel = k;
        CHECK(sel >= 0, "only=%s: no such workload (sieve, crc32, sort, matmul, string, div64)", only);
        printf("compute: iters=%u only=%s\n", iters, only);
    } else {
        printf("compute: iters=%u\n", iters);
    }
    crc_init();
    const char *check = "123456789";
    uint32_t crc_check = crc32((const uint8_t *)check, 9);
    CHECK(crc_check == 0xCBF43926u, "CRC32 check value %x", crc_check);

    uint32_t first[6] = {0};
    for (uint32_t it = 0; it < iters; it++) {
        for (int k = 0; k < 6; k++) {
            if (sel >= 0 && k != sel) continue;
            uint32_t r = run_workload(k);
            if (it == 0) first[k] = r;
            CHECK(r == first[k], "round %u: result %d changed: %x != %x", it, k, r, first[k]);
        }
    }
#define WANT(k) (sel < 0 || sel == (k))
    if (WANT(0)) CHECK(first[0] == 17984, "sieve found %u primes below %u", first[0], SIEVE_N);
    if (WANT(2)) CHECK(sorted, "quicksort output is not sorted");
    if (WANT(5)) CHECK(q_lo == 857142857u && rem == 1, "10^18 / 7 low digits %u rem %u", q_lo, rem);
    if (WANT(0)) printf("sieve:  primes below %u: %u\n", SIEVE_N, first[0]);
    if (WANT(1)) printf("crc32:  \"123456789\" -> %08x, %u LCG bytes -> %08x\n", crc_check, CRC_BYTES, first[1]);
    if (WANT(2)) printf("sort:   %u values, sorted, checksum %08x\n", SORT_N, first[2]);
    if (WANT(3)) printf("matmul: %ux%u, checksum %08x\n", MAT_N, MAT_N, first[3]);
    if (WANT(4)) printf("string: checksum %08x\n", first[4]);
    if (WANT(5)) printf("div64:  10^18 / 7 = ...%u rem %u, checksum %08x\n", q_lo, rem, first[5]);
    return 0;
}
