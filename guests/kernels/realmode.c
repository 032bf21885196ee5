/*
 * realmode: a protected-mode kernel that drops to real-address mode and comes back
 * (realmode.S): INT n through the interrupt vector table at 0 and IRET, CS, SP and FLAGS
 * as real mode shows them, segment arithmetic (selector × 16 + offset), and protected mode
 * again with the GDT and IDT it left. Interrupts stay disabled throughout.
 */
#include "rt.h"

const char guest_name[] = "realmode";

extern uint32_t real_mode_round_trip(void);
extern char rm_int50[];

int kmain(void) {
    uint32_t handler = (uint32_t)rm_int50;
    CHECK(handler >= 0xffff0 && handler < 0x10fff0, "real-mode code at %x is out of CS = 0xFFFF's reach", handler);
    /* GDT 0x30: 16-bit code, base 0xFFFF0, limit 64 KiB; 0x38: 16-bit data, base 0. */
    gdt_set(6, 0xffff0, 0xffff, 0x9a, 0x0);
    gdt_set(7, 0, 0xffff, 0x92, 0x0);
    /* The vector for INT 0x50: offset, then segment. */
    uint32_t vector = (0xffffu << 16) | (handler - 0xffff0);
    __asm__ volatile("movl %0, 0x140" ::"r"(vector) : "memory"); /* address 0: out of C's reach */
    volatile uint16_t *data = (volatile uint16_t *)0x6000;
    *(volatile uint16_t *)0x12350 = 0xbeef;
    cli();
    real_mode_round_trip();
    printf("INT 0x50 twice through the vector table, IRET back: count %u\n", data[0]);
    printf("real mode: CS %x, SP %x after the INT/IRET pairs, IF %u\n", data[1], data[2], (data[3] >> 9) & 1);
    printf("segment 0x1234, offset 0x10 reads linear 0x12350: %x\n", data[4]);
    uint16_t cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    printf("back in protected mode: CS %x, CR0.PE %u\n", cs, read_cr0() & 1);
    CHECK(data[0] == 2 && data[1] == 0xffff && data[2] == 0x7000 && data[4] == 0xbeef, "real-mode results");
    return 0;
}
