/*
 * Lab 8, reference solution: a Multiboot kernel from nothing. `make` builds kernel.elf,
 * `make run` boots it under popek, `make check` grades it (`popek lab check 8`).
 */
#include <stdint.h>

/* The start of the Multiboot v1 information (the specification's section 3.3). */
struct multiboot_info {
    uint32_t flags;       /* which of the fields below are valid */
    uint32_t mem_lower;   /* bit 0: KiB of memory below 1 MiB */
    uint32_t mem_upper;   /* bit 0: KiB of memory from 1 MiB up to the first hole */
    uint32_t boot_device; /* bit 1 */
    uint32_t cmdline;     /* bit 2: physical address of a NUL-terminated string */
};

#define COM1 0x3f8
#define DEBUG_EXIT 0xf4
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) {
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static void putc(char c) {
    while (!(inb(COM1 + 5) & 0x20))
        ;
    outb(COM1, (uint8_t)c);
}

static void puts(const char *s) {
    while (*s)
        putc(*s++);
}

static void putu(uint32_t v) {
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        putc(digits[--n]);
}

static void exit(uint32_t code) {
    outl(DEBUG_EXIT, code);
    for (;;)
        __asm__ volatile("cli; hlt");
}

void kmain(uint32_t magic, struct multiboot_info *mbi) {
    puts("lab8: hello from my kernel\n");
    puts(magic == MULTIBOOT_BOOTLOADER_MAGIC ? "magic: ok\n" : "magic: bad\n");
    if (mbi->flags & 1) {
        puts("mem_upper: ");
        putu(mbi->mem_upper);
        puts(" KiB\n");
    }
    if (mbi->flags & 4) {
        puts("cmdline: ");
        puts((const char *)mbi->cmdline);
        puts("\n");
    }
    exit(0);
}
