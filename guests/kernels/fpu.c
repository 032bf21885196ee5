/*
 * fpu: the x87 FPU. CPUID's FPU bit, Linux's probe (FNINIT; FNSTSW; FNSTCW), arithmetic
 * printed as the bits of doubles and as scaled integers, rounding and precision control,
 * FIST/FBSTP, compares, masked exception responses, an FNSAVE/FRSTOR round trip, #NM
 * from CR0.TS (the handler does CLTS and the instruction is restarted) and from CR0.EM,
 * #MF from an unmasked zero-divide at the next waiting instruction with CR0.NE = 1, and
 * FXSAVE/FXRSTOR (CPUID's FXSR bit, CR4.OSFXSR, the x87 fields of the 512-byte area, the
 * abridged tag word made whole again by FXRSTOR, #GP for a misaligned area, #NM with
 * CR0.TS). Only the fields a CPU without SSE defines are printed: QEMU's CPU has SSE and
 * writes MXCSR and the XMM registers there too.
 * The transcendental results are printed to 9 digits only: popek computes them in double
 * precision, the x87 (and QEMU) in extended precision.
 * The runtime is built with -mgeneral-regs-only, so all FPU work is inline assembly on
 * memory operands.
 */
#include "rt.h"

const char guest_name[] = "fpu";

#define CR0_MP (1u << 1)
#define CR0_EM (1u << 2)
#define CR0_TS (1u << 3)
#define CR0_NE (1u << 5)

/* Intel's FDIVP ST(1), ST(0): ST(1) = ST(1) / ST(0), pop (spelled in bytes: the AT&T
 * mnemonics of the reversed divides are swapped). */
#define FDIVP ".byte 0xde, 0xf9"

static volatile uint16_t sw, cw;
static volatile uint64_t q;
static volatile uint32_t d;

static void put_q(const char *what, uint64_t v) {
    printf("%-24s %08x%08x\n", what, (uint32_t)(v >> 32), (uint32_t)v);
}

static uint16_t status(void) {
    uint16_t s;
    __asm__ volatile("fnstsw %0" : "=m"(s));
    return s;
}

static void set_cw(uint16_t v) {
    cw = v;
    __asm__ volatile("fldcw %0" ::"m"(cw));
}

static void probe(void) {
    uint32_t a = 1, b, c, dx;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(dx));
    printf("CPUID.1:EDX FPU bit: %s\n", (dx & 1) ? "yes" : "no");
    write_cr0((read_cr0() & ~(CR0_EM | CR0_TS)) | CR0_MP | CR0_NE);
    sw = 0x5a5a;
    cw = 0x5a5a;
    __asm__ volatile("fninit; fnstsw %0; fnstcw %1" : "=m"(sw), "=m"(cw));
    printf("probe: sw=%04x cw=%04x (Linux wants sw 0, cw & 103f = 3f)\n", sw, cw);
}

static void arithmetic(void) {
    __asm__ volatile("fninit; fld1; fadd %%st(0), %%st(0); fsqrt; fstpl %0" : "=m"(q));
    put_q("sqrt(2)", q);
    __asm__ volatile("fldpi; fstpl %0" : "=m"(q));
    put_q("pi", q);
    __asm__ volatile("fldl2e; fstpl %0" : "=m"(q));
    put_q("log2(e)", q);
    __asm__ volatile("fldln2; fstpl %0" : "=m"(q));
    put_q("ln(2)", q);
    static const uint32_t three = 3;
    static const char *const pcs[] = {"single", "reserved", "double", "extended"};
    for (int pc = 0; pc < 4; pc += 1) {
        if (pc == 1) continue;
        set_cw((uint16_t)(0x007f | pc << 8));
        __asm__ volatile("fld1; fidivl %1; fstpl %0" : "=m"(q) : "m"(three));
        char what[32];
        snprintf(what, sizeof what, "1/3, PC=%s", pcs[pc]);
        put_q(what, q);
    }
    set_cw(0x037f);
    static const uint32_t billion = 1000000000;
    __asm__ volatile("fldpi; fimull %1; fistpll %0" : "=m"(q) : "m"(billion));
    printf("pi * 1e9 = %u\n", (uint32_t)q);
    /* 2^62 + 1 through FILD/FISTP m64 stays exact. */
    q = (1ull << 62) + 1;
    __asm__ volatile("fildll %0; fistpll %0" : "+m"(q));
    put_q("fild/fistp 2^62+1", q);
}

static void rounding(void) {
    static const uint32_t minus_2_5 = 0xc0200000; /* -2.5f */
    static const char *const rcs[] = {"nearest", "down", "up", "chop"};
    for (int rc = 0; rc < 4; rc += 1) {
        set_cw((uint16_t)(0x037f | rc << 10));
        __asm__ volatile("flds %1; fistpl %0" : "=m"(d) : "m"(minus_2_5));
        printf("fist -2.5, RC=%-7s = %d\n", rcs[rc], (int)d);
    }
    set_cw(0x037f);
    static const uint64_t big = 123456789012345678ull;
    static uint8_t bcd[10];
    __asm__ volatile("fildll %1; fchs; fbstp %0" : "=m"(bcd) : "m"(big));
    printf("fbstp -123456789012345678:");
    for (int i = 9; i >= 0; i -= 1) printf(" %02x", bcd[i]);
    printf("\n");
    __asm__ volatile("fbld %1; fistpll %0" : "=m"(q) : "m"(bcd));
    put_q("fbld back (two's compl.)", q);
}

static void compares(void) {
    uint32_t fl;
    __asm__ volatile("fninit; fldpi; fld1; fcomip %%st(1), %%st; fstp %%st(0); pushfl; popl %0" : "=r"(fl));
    printf("fcomip 1 vs pi: CF=%u ZF=%u PF=%u\n", fl & 1, (fl >> 6) & 1, (fl >> 2) & 1);
    __asm__ volatile("fldz; fldz; fucompp; fnstsw %0" : "=m"(sw));
    printf("fucompp 0 vs 0: C3 C2 C0 = %u %u %u\n", (sw >> 14) & 1, (sw >> 10) & 1, (sw >> 8) & 1);
    static const uint32_t classes[] = {0x00000000, 0x00000001, 0x3f800000, 0x7f800000, 0x7fc00000, 0xff800000};
    /* The single-precision denormal is a normal number in 80 bits. */
    static const char *const names[] = {"+0", "tiny", "1.0", "+inf", "NaN", "-inf"};
    for (int i = 0; i < 6; i += 1) {
        __asm__ volatile("flds %1; fxam; fnstsw %0; fstp %%st(0)" : "=m"(sw) : "m"(classes[i]));
        printf("fxam %-8s: C3 C2 C1 C0 = %u %u %u %u\n", names[i], (sw >> 14) & 1, (sw >> 10) & 1, (sw >> 9) & 1,
               (sw >> 8) & 1);
    }
}

static void transcendental(void) {
    static const uint32_t half = 0x3f000000, billion = 1000000000;
    int32_t r;
    __asm__ volatile("fninit; flds %1; fsin; fimull %2; fistpl %0" : "=m"(r) : "m"(half), "m"(billion));
    printf("sin(0.5) * 1e9 = %d\n", r);
    __asm__ volatile("flds %1; fcos; fimull %2; fistpl %0" : "=m"(r) : "m"(half), "m"(billion));
    printf("cos(0.5) * 1e9 = %d\n", r);
    __asm__ volatile("flds %1; fptan; fstp %%st(0); fimull %2; fistpl %0" : "=m"(r) : "m"(half), "m"(billion));
    printf("tan(0.5) * 1e9 = %d\n", r);
    __asm__ volatile("fld1; fld1; fpatan; fimull %1; fistpl %0" : "=m"(r) : "m"(billion));
    printf("atan(1) * 1e9 = %d\n", r);
    __asm__ volatile("fld1; fldl2t; fyl2x; fimull %1; fistpl %0" : "=m"(r) : "m"(billion));
    printf("log2(log2(10)) * 1e9 = %d\n", r);
    __asm__ volatile("flds %1; f2xm1; fimull %2; fistpl %0" : "=m"(r) : "m"(half), "m"(billion));
    printf("(2^0.5 - 1) * 1e9 = %d\n", r);
}

static void masked_exceptions(void) {
    __asm__ volatile("fninit; fld1; fldz; " FDIVP "; fstpl %0; fnstsw %1" : "=m"(q), "=m"(sw));
    put_q("1/0 (masked)", q);
    printf("  status %04x (ZE)\n", sw);
    __asm__ volatile("fninit; fldz; fldz; " FDIVP "; fstpl %0; fnstsw %1" : "=m"(q), "=m"(sw));
    put_q("0/0 (masked)", q);
    printf("  status %04x (IE)\n", sw);
    __asm__ volatile("fninit; fld1; fchs; fsqrt; fistpl %0; fnstsw %1" : "=m"(d), "=m"(sw));
    printf("fistp sqrt(-1) (masked) = %08x, exception flags %02x\n", d, sw & 0x3f);
    __asm__ volatile("fninit\n"
                     "fld1; fld1; fld1; fld1; fld1; fld1; fld1; fld1; fld1\n"
                     "fnstsw %0\n"
                     "fstpl %1\n"
                     "fninit"
                     : "=m"(sw), "=m"(q));
    put_q("9th push (masked)", q);
    printf("  status %04x (IE SF C1)\n", sw);
}

static uint8_t area[108];

static void save_restore(void) {
    static const uint32_t two = 2;
    __asm__ volatile("fninit; fldpi; fildl %0; fld1" ::"m"(two));
    __asm__ volatile("fnsave %0" : "=m"(area));
    uint16_t after = status();
    printf("fnsave: cw=%04x sw=%04x tags=%04x; after: sw=%04x\n", area[0] | area[1] << 8, area[4] | area[5] << 8,
           area[8] | area[9] << 8, after);
    __asm__ volatile("fld1; fld1; frstor %0" ::"m"(area));
    uint64_t a, b, c;
    __asm__ volatile("fstpl %0; fstpl %1; fstpl %2" : "=m"(a), "=m"(b), "=m"(c));
    put_q("frstor: st0", a);
    put_q("frstor: st1", b);
    put_q("frstor: st2", c);
}

static volatile uint32_t nm_count, nm_eip, mf_count, mf_eip;
static volatile uint16_t mf_sw;

static void nm_handler(struct regs *r) {
    nm_count += 1;
    nm_eip = r->eip;
    __asm__ volatile("clts");
}

static void mf_handler(struct regs *r) {
    mf_count += 1;
    mf_eip = r->eip;
    __asm__ volatile("fnstsw %0; fnclex" : "=m"(mf_sw));
}

extern char nm_at[], mf_at[], em_at[];

static void device_not_available(void) {
    set_handler(7, nm_handler);
    __asm__ volatile("fninit");
    write_cr0(read_cr0() | CR0_TS);
    __asm__ volatile("nm_at: fld1; fistpl %0" : "=m"(d));
    CHECK(nm_count == 1, "#NM count %u", nm_count);
    CHECK(nm_eip == (uint32_t)nm_at, "#NM at %x, expected %x", nm_eip, (uint32_t)nm_at);
    printf("#NM with CR0.TS: handler ran once at the FLD1, CLTS, restarted: result %u\n", d);
    /* WAIT with TS but not MP does not fault. */
    write_cr0((read_cr0() & ~CR0_MP) | CR0_TS);
    __asm__ volatile("fwait");
    printf("fwait with TS, MP clear: no #NM (count %u)\n", nm_count);
    write_cr0((read_cr0() & ~CR0_TS) | CR0_MP);
    set_handler(7, 0);
    /* CR0.EM: every x87 instruction is #NM (software emulation's hook). */
    write_cr0(read_cr0() | CR0_EM);
    uint32_t n = last_fault.count;
    __asm__ volatile("em_at: fninit\n" EXTABLE("em_at", "1f") "1:");
    CHECK(last_fault.count == n + 1 && last_fault.vector == 7 && last_fault.eip == (uint32_t)em_at,
          "#NM with CR0.EM: vector %u", last_fault.vector);
    write_cr0(read_cr0() & ~CR0_EM);
    printf("#NM with CR0.EM: fninit faults, recovered\n");
}

static void math_fault(void) {
    set_handler(16, mf_handler);
    __asm__ volatile("fninit");
    set_cw(0x037b); /* ZE unmasked */
    __asm__ volatile("fld1; fldz; " FDIVP "; fnstsw %0" : "=m"(sw));
    printf("1/0 with ZE unmasked: status %04x (ES, B), no fault yet (count %u)\n", sw, mf_count);
    __asm__ volatile("mf_at: fwait");
    CHECK(mf_count == 1, "#MF count %u", mf_count);
    CHECK(mf_eip == (uint32_t)mf_at, "#MF at %x, expected %x", mf_eip, (uint32_t)mf_at);
    printf("#MF at the FWAIT: status in the handler %04x, FNCLEX, FWAIT restarted\n", mf_sw);
    __asm__ volatile("fnstsw %0; fstp %%st(0); fstpl %1; fninit" : "=m"(sw), "=m"(q));
    put_q("destination kept (1.0)", q);
    printf("  status after %04x\n", sw);
    set_handler(16, 0);
}

static uint8_t fxarea[512 + 16] __attribute__((aligned(16)));
extern char fx_misaligned[], fx_ts[];

static void fxsr(void) {
    uint32_t a = 1, b, c, dx;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(dx));
    printf("CPUID.1:EDX FXSR bit: %s\n", (dx >> 24) & 1 ? "yes" : "no");
    write_cr4(read_cr4() | (1u << 9)); /* OSFXSR */
    static const uint32_t two = 2;
    /* ST(0) = 1, ST(1) = 0, ST(2) = 2, ST(3) = pi; C3 from FTST of the 0; RC = chop. */
    __asm__ volatile("fninit; fldpi; fildl %0; fldz; ftst; fld1" ::"m"(two));
    set_cw(0x0f7f);
    for (int i = 0; i < 512; i += 1) fxarea[i] = 0xa5;
    __asm__ volatile("fxsave %0" : "=m"(fxarea));
    uint16_t fcw = fxarea[0] | fxarea[1] << 8, fsw = fxarea[2] | fxarea[3] << 8;
    printf("fxsave: fcw=%04x fsw=%04x abridged tags=%02x; FPU kept: sw=%04x\n", fcw, fsw, fxarea[4], status());
    for (int i = 0; i < 4; i += 1) {
        uint8_t *r = &fxarea[32 + 16 * i];
        int zero = 1;
        for (int k = 10; k < 16; k += 1) zero &= r[k] == 0;
        printf("  st%d: %02x%02x %02x%02x%02x%02x%02x%02x%02x%02x%s\n", i, r[9], r[8], r[7], r[6], r[5], r[4], r[3],
               r[2], r[1], r[0], zero ? "" : " (upper bytes not zero)");
    }
    /* Empty the stack, then bring it back from the area: the full tag word is made from
     * the registers' contents (valid, zero, special, empty). */
    __asm__ volatile("fninit; fld1; fld1; fxrstor %0" ::"m"(fxarea));
    __asm__ volatile("fnsave %0" : "=m"(area));
    printf("fxrstor: cw=%04x sw=%04x full tags=%04x\n", area[0] | area[1] << 8, area[4] | area[5] << 8,
           area[8] | area[9] << 8);
    __asm__ volatile("frstor %0" ::"m"(area));
    uint64_t x, y, z;
    __asm__ volatile("fstpl %0; fstpl %1; fstpl %2; fninit" : "=m"(x), "=m"(y), "=m"(z));
    put_q("fxrstor: st0", x);
    put_q("fxrstor: st1", y);
    put_q("fxrstor: st2", z);
    /* A misaligned area is #GP(0), before anything is written. */
    uint32_t n = last_fault.count;
    fxarea[8] = 0x5a;
    __asm__ volatile("fx_misaligned: fxsave 8(%0)\n" EXTABLE("fx_misaligned", "1f") "1:" ::"r"(fxarea) : "memory");
    CHECK(last_fault.count == n + 1 && last_fault.vector == 13 && last_fault.err == 0 &&
              last_fault.eip == (uint32_t)fx_misaligned,
          "misaligned FXSAVE: vector %u err %u", last_fault.vector, last_fault.err);
    printf("fxsave to a misaligned area: #GP(%u), area untouched: %s\n", last_fault.err,
           fxarea[8] == 0x5a ? "yes" : "no");
    /* CR0.TS: #NM, and the handler's CLTS lets it run again. */
    set_handler(7, nm_handler);
    uint32_t before = nm_count;
    write_cr0(read_cr0() | CR0_TS);
    __asm__ volatile("fx_ts: fxsave %0" : "=m"(fxarea));
    CHECK(nm_count == before + 1 && nm_eip == (uint32_t)fx_ts, "#NM count %u at %x", nm_count - before, nm_eip);
    printf("fxsave with CR0.TS: #NM once, restarted after CLTS\n");
    set_handler(7, 0);
}

int kmain(void) {
    probe();
    arithmetic();
    rounding();
    compares();
    transcendental();
    masked_exceptions();
    save_restore();
    device_not_available();
    math_fault();
    fxsr();
    return 0;
}
