/*
 * The guest side of popek's paravirtual interface (book: "Paravirtualization"; the VMM
 * side is crates/popek-vmm/src/hypercall.rs).
 *
 *   detection: CPUID 0x40000000 -> EAX = highest hypervisor leaf, EBX:ECX:EDX = "popekpopekpv"
 *              CPUID 0x40000001 -> EAX = ABI version, EBX = feature bits (bit n: call n)
 *   call:      VMCALL (0F 01 C1) at CPL 0; EAX = number, EBX/ECX/EDX = arguments,
 *              EAX = result (negative: -errno), everything else preserved
 *
 * Without the interface (a real CPU, QEMU, `popek run --paravirt off`) VMCALL is #UD, so
 * a kernel calls pv_detect() once and falls back to the native instructions.
 */
#ifndef POPEK_PV_H
#define POPEK_PV_H

#include <stdint.h>

#define PV_VERSION 0       /* EAX = ABI version, EBX = features */
#define PV_IRQ_DISABLE 1   /* CLI; EAX = previous IF */
#define PV_IRQ_ENABLE 2    /* STI (with its shadow); EAX = previous IF */
#define PV_SET_CR3 3       /* EBX = new CR3 */
#define PV_INVLPG 4        /* EBX = linear address */
#define PV_EOI 5           /* EBX = PV_EOI_PIC (ECX = IRQ) or PV_EOI_LAPIC */
#define PV_CONSOLE_WRITE 6 /* EBX = buffer (linear), ECX = length; EAX = bytes written */

#define PV_EOI_PIC 0
#define PV_EOI_LAPIC 1
#define PV_CONSOLE_MAX 4096

#define PV_EPERM 1
#define PV_EFAULT 14
#define PV_EINVAL 22
#define PV_ENOSYS 38

static inline uint32_t hypercall2(uint32_t nr, uint32_t a, uint32_t b) {
    uint32_t ret;
    __asm__ volatile("vmcall" : "=a"(ret) : "a"(nr), "b"(a), "c"(b) : "memory");
    return ret;
}
static inline uint32_t hypercall0(uint32_t nr) { return hypercall2(nr, 0, 0); }

/* 1 if CPUID leaf 0x40000000 carries popek's signature and leaf 0x40000001 exists. */
static inline int pv_detect(void) {
    uint32_t a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x40000000u));
    /* "popekpopekpv" as EBX, ECX, EDX, little-endian. */
    return b == 0x65706f70u && c == 0x706f706bu && d == 0x76706b65u && a >= 0x40000001u;
}

static inline uint32_t pv_version(uint32_t *features) {
    uint32_t ret, f;
    __asm__ volatile("vmcall" : "=a"(ret), "=b"(f) : "a"(PV_VERSION), "b"(0) : "memory");
    *features = f;
    return ret;
}
static inline uint32_t pv_irq_disable(void) { return hypercall0(PV_IRQ_DISABLE); }
static inline uint32_t pv_irq_enable(void) { return hypercall0(PV_IRQ_ENABLE); }
static inline void pv_set_cr3(uint32_t cr3) { hypercall2(PV_SET_CR3, cr3, 0); }
static inline void pv_invlpg(uint32_t va) { hypercall2(PV_INVLPG, va, 0); }
static inline void pv_eoi_pic(uint32_t irq) { hypercall2(PV_EOI, PV_EOI_PIC, irq); }
static inline void pv_eoi_lapic(void) { hypercall2(PV_EOI, PV_EOI_LAPIC, 0); }
static inline int32_t pv_console_write(const void *buf, uint32_t len) {
    return (int32_t)hypercall2(PV_CONSOLE_WRITE, (uint32_t)buf, len);
}

#endif
