/*
 * popek guest runtime: the small "libc + kernel" every guest links against.
 * Freestanding: only gcc's own stdint.h/stddef.h/stdarg.h are used.
 */
#ifndef POPEK_RT_H
#define POPEK_RT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "asm.h"

/* ---- Port I/O ---- */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) {
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint16_t inw(uint16_t port) {
    uint16_t v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint32_t inl(uint16_t port) {
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

/* ---- Control registers and flags ---- */
#define CR0_PE 0x00000001u
#define CR0_WP 0x00010000u
#define CR0_PG 0x80000000u
#define CR4_PSE 0x00000010u
#define EFLAGS_CF 0x0001u
#define EFLAGS_TF 0x0100u
#define EFLAGS_IF 0x0200u
#define EFLAGS_OF 0x0800u
#define EFLAGS_IOPL 0x3000u

#define DEFINE_CR(n)                                                   \
    static inline uint32_t read_cr##n(void) {                          \
        uint32_t v;                                                    \
        __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v));              \
        return v;                                                      \
    }                                                                  \
    static inline void write_cr##n(uint32_t v) {                       \
        __asm__ volatile("mov %0, %%cr" #n ::"r"(v) : "memory");       \
    }
DEFINE_CR(0)
DEFINE_CR(2)
DEFINE_CR(3)
DEFINE_CR(4)

static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" ::: "memory"); }
/* STI;HLT: the STI shadow makes sure no interrupt slips in between. */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }
static inline void invlpg(uint32_t va) { __asm__ volatile("invlpg (%0)" ::"r"(va) : "memory"); }
static inline uint32_t read_eflags(void) {
    uint32_t v;
    __asm__ volatile("pushfl; popl %0" : "=r"(v));
    return v;
}
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

/* ---- Interrupt frame (built by isr_common in boot.S) ---- */
struct regs {
    uint32_t gs, fs, es, ds;
    uint32_t edi, esi, ebp, esp_unused, ebx, edx, ecx, eax;
    uint32_t vector, err;
    uint32_t eip, cs, eflags;
    uint32_t user_esp, user_ss; /* only valid when the interrupt came from ring 3 */
};

typedef void (*handler_fn)(struct regs *r);

/* Install a C handler for a vector (0..47, 0x80, 0x81). NULL restores the default. */
void set_handler(int vector, handler_fn fn);
/* Write an IDT gate. type_attr: 0x8E interrupt gate DPL0, 0xEE DPL3, 0x8F trap gate, bit 7 = present. */
void idt_set_gate(int vector, uint32_t offset, uint16_t selector, uint8_t type_attr);
/* Address of the stub for a vector, for re-installing gates. */
uint32_t isr_stub(int vector);
/* Reload IDTR with the given limit (the table stays the same). */
void idt_reload(uint16_t limit);
#define IDT_GATE_INT 0x8E
#define IDT_GATE_INT_USER 0xEE

/* GDT entries 6..15 are free for guests (selector = index * 8). */
void gdt_set(int index, uint32_t base, uint32_t limit, uint8_t access, uint8_t flags);

/* The TSS (32-bit). esp0/ss0 point at the runtime's interrupt stack. */
struct tss {
    uint32_t link, esp0, ss0, esp1, ss1, esp2, ss2, cr3, eip, eflags;
    uint32_t eax, ecx, edx, ebx, esp, ebp, esi, edi;
    uint32_t es, cs, ss, ds, fs, gs, ldt;
    uint16_t trap, iomap_base;
};
extern struct tss rt_tss;

/*
 * The last fault recovered through the exception table. A fault (or trap) whose EIP is
 * listed in .extable and has no registered handler is recorded here and resumed at the
 * fixup address; anything else unexpected prints FAIL and exits.
 */
struct fault_record {
    uint32_t vector, err, eip, cr2, cs;
    uint32_t count;
};
extern volatile struct fault_record last_fault;
/* Look up an EIP in the exception table; returns the fixup address or 0. */
uint32_t extable_lookup(uint32_t eip);
/* Record a fault in last_fault and apply the exception-table fixup; returns 0 if none. */
int fault_fixup(struct regs *r);
/* In inline assembly: "1: insn\n2:\n" EXTABLE("1b", "2b") */
#define EXTABLE(from, to) ".pushsection .extable, \"a\"\n.long " from ", " to "\n.popsection\n"

/* ---- Ring 3 ---- */
uint32_t user_run(void (*fn)(void), uint32_t user_esp);
void user_return(uint32_t value) __attribute__((noreturn));
#define SYS_WRITE 1 /* ebx = NUL-terminated string */
#define SYS_EXIT 2  /* ebx = value returned by user_run */
#define SYS_NOP 3   /* returns ebx + 1 */
static inline uint32_t syscall1(uint32_t nr, uint32_t a) {
    uint32_t ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a) : "memory");
    return ret;
}
/* Registers the default int 0x80 handler (SYS_WRITE/SYS_EXIT/SYS_NOP). */
void syscalls_install(void);
extern volatile uint32_t syscall_count;

/* ---- Serial console and printf ---- */
void serial_init(void);
void putc(char c);
void puts(const char *s);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- Exit through isa-debug-exit: QEMU/popek exit status is (code << 1) | 1 ---- */
void exit(uint32_t code) __attribute__((noreturn));
/* Print "FAIL: ..." and exit with code 1 (process status 3). */
void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) fail(__VA_ARGS__);                                    \
    } while (0)

/* ---- 8259A PIC and 8254 PIT ---- */
void pic_remap(uint8_t master_base, uint8_t slave_base);
void pic_set_mask(uint16_t mask); /* bit n masks IRQ n */
uint16_t pic_get_mask(void);
void pic_eoi(int irq);
uint16_t pic_read_irr(void);
uint16_t pic_read_isr(void);
#define PIT_HZ 1193182u
void pit_set_periodic(uint16_t divisor); /* channel 0, mode 2 */

/* ---- Multiboot ---- */
struct multiboot_info {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
    uint32_t mods_count, mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr;
};
extern struct multiboot_info *boot_info;
/* The command line without the leading image name (GRUB and QEMU pass the kernel path
 * as the first word; a first word without '=' is treated as that name and skipped). */
extern const char *boot_args;
/* Value of "key=N" on the command line, or def. */
uint32_t arg_uint(const char *key, uint32_t def);
/* Copies the word after "key=" into buf (NUL-terminated, cut to size - 1 bytes);
 * returns 1 if the key is on the command line, else 0 (buf untouched). */
int arg_str(const char *key, char *buf, size_t size);

/* ---- Paging helpers ---- */
#define PTE_P 0x001u
#define PTE_W 0x002u
#define PTE_U 0x004u
#define PTE_A 0x020u
#define PTE_D 0x040u
#define PTE_PS 0x080u
#define PAGE_SIZE 4096u
/* A zeroed, page-aligned page from a static pool. */
void *page_alloc(void);
/* A new page directory identity-mapping 0..4 MiB with 4 KiB pages (PTE flags given). */
uint32_t *pd_identity(uint32_t flags);
/* Map one 4 KiB page (allocating its page table, PDE flags P|W|U). */
void map_page(uint32_t *pd, uint32_t va, uint32_t pa, uint32_t flags);
/* Pointer to the PTE for va, or NULL if its page table is missing. */
uint32_t *pte_of(uint32_t *pd, uint32_t va);
/* Load CR3 and set CR0.PG|WP. */
void paging_enable(uint32_t *pd);

/* ---- Strings (also used by gcc for struct copies) ---- */
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* ---- Provided by each guest ---- */
extern const char guest_name[];
/* Runs the guest; return 0 for PASS. */
int kmain(void);

#endif
