/*
 * Lab 8: a Multiboot kernel from nothing. Fill in the TODOs. `make` builds kernel.elf,
 * `make run` boots it under popek, `make check` grades it (`popek lab check 8`).
 *
 * What it must print on COM1, one line each, then end the run with exit(0):
 *     lab8: hello from my kernel
 *     magic: ok                    (or "magic: bad")
 *     mem_upper: N KiB             (from the Multiboot information)
 *     cmdline: TEXT                (the kernel's command line)
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

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) {
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

/* One byte to COM1: wait until the line status register (COM1 + 5) says the transmitter
 * holding register is empty (bit 5), then write the byte to COM1. */
static void putc(char c) {
    /* TODO */
    (void)c;
}

static void puts(const char *s) {
    while (*s)
        putc(*s++);
}

/* v in decimal. */
static void putu(uint32_t v) {
    /* TODO */
    (void)v;
}

/* Ends the run: a write of code to the debug-exit port makes popek (and QEMU with
 * -device isa-debug-exit,iobase=0xf4,iosize=4) exit with status (code << 1) | 1. */
static void exit(uint32_t code) {
    /* TODO */
    (void)code;
    for (;;)
        __asm__ volatile("cli; hlt");
}

void kmain(uint32_t magic, struct multiboot_info *mbi) {
    puts("lab8: hello from my kernel\n");
    /* TODO: "magic: ok" if magic is 0x2BADB002, else "magic: bad" */
    /* TODO: "mem_upper: N KiB" if flags bit 0 is set */
    /* TODO: "cmdline: TEXT" if flags bit 2 is set */
    (void)magic;
    (void)mbi;
    (void)putu;
    exit(0);
}
