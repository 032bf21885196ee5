/*
 * Local APIC (0xFEE00000) and I/O APIC (0xFEC00000) access for the APIC guests
 * (SDM Vol. 3A ch. 10; 82093AA datasheet). Paging is off in these guests, so the
 * physical addresses are used directly.
 */
#ifndef POPEK_APIC_H
#define POPEK_APIC_H

#include <stdint.h>

#define LAPIC_BASE 0xFEE00000u
#define LAPIC_ID 0x020
#define LAPIC_VER 0x030
#define LAPIC_TPR 0x080
#define LAPIC_PPR 0x0A0
#define LAPIC_EOI 0x0B0
#define LAPIC_SVR 0x0F0
#define LAPIC_ISR 0x100 /* + 0x10 * (vector / 32) */
#define LAPIC_TMR 0x180
#define LAPIC_IRR 0x200
#define LAPIC_ESR 0x280
#define LAPIC_ICRLO 0x300
#define LAPIC_ICRHI 0x310
#define LAPIC_TIMER 0x320
#define LAPIC_LINT0 0x350
#define LAPIC_LINT1 0x360
#define LAPIC_ERROR 0x370
#define LAPIC_TICR 0x380
#define LAPIC_TCCR 0x390
#define LAPIC_TDCR 0x3E0

#define LAPIC_SVR_ENABLE 0x100u
#define LVT_MASKED 0x10000u
#define LVT_PERIODIC 0x20000u
#define ICR_SELF 0x40000u /* destination shorthand "self" */
#define ICR_NMI 0x400u    /* delivery mode NMI (the vector field is ignored) */
#define MSR_APIC_BASE 0x1Bu

static inline uint32_t lapic_read(uint32_t reg) { return *(volatile uint32_t *)(LAPIC_BASE + reg); }
static inline void lapic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(LAPIC_BASE + reg) = v; }
static inline void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }
/* 1 if `vector`'s bit is set in the 256-bit register starting at `reg` (ISR, TMR, IRR). */
static inline int lapic_bit(uint32_t reg, int vector) {
    return (lapic_read(reg + 0x10u * (uint32_t)(vector / 32)) >> (vector % 32)) & 1;
}

#define IOAPIC_BASE 0xFEC00000u
#define IOAPIC_MASKED 0x10000u
#define IOAPIC_LEVEL 0x8000u
#define IOAPIC_REMOTE_IRR 0x4000u

static inline uint32_t ioapic_read(uint32_t reg) {
    *(volatile uint32_t *)IOAPIC_BASE = reg;
    return *(volatile uint32_t *)(IOAPIC_BASE + 0x10);
}
static inline void ioapic_write(uint32_t reg, uint32_t v) {
    *(volatile uint32_t *)IOAPIC_BASE = reg;
    *(volatile uint32_t *)(IOAPIC_BASE + 0x10) = v;
}
/* Redirection entry for `pin`: low half (vector, flags), destination APIC 0. */
static inline void ioapic_route(int pin, uint32_t low) {
    ioapic_write(0x11u + 2u * (uint32_t)pin, 0);
    ioapic_write(0x10u + 2u * (uint32_t)pin, low);
}

static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d) {
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}
static inline uint64_t rdmsr(uint32_t msr) {
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

#endif
